"""The early-abort rule shared by Trainer and ManyTrainer (and the noise/clip formulas they share
with the simulator's transforms)."""
import math

import pytest
import torch

from optiviz.engine.transforms import noise_std, norm_clip_scale
from optiviz.training.abort import check_divergence_factor, divergence_reason, diverging


def test_diverging_per_run():
    loss = torch.tensor([1.0, 2.9, 3.1, float("nan"), float("inf"), 0.5])
    first = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert diverging(loss, first, 3.0).tolist() == [False, False, True, True, True, False]
    # no factor: only non-finite losses abort
    assert diverging(loss, first, None).tolist() == [False, False, False, True, True, False]


def test_divergence_reason_says_why():
    assert divergence_reason(2.0, 1.0, 3.0, 7) is None
    assert divergence_reason(3.5, 1.0, 3.0, 7) == "loss 3.5 at step 7 exceeded 3x the initial loss 1"
    assert divergence_reason(math.nan, 1.0, None, 2) == "loss is nan at step 2"


def test_divergence_factor_must_exceed_one():
    assert check_divergence_factor(None) is None
    assert check_divergence_factor(2) == 2.0
    with pytest.raises(ValueError, match="divergence_factor"):
        check_divergence_factor(1.0)


def test_shared_noise_and_clip_formulas():
    assert noise_std(0.3, 0) == pytest.approx(math.sqrt(0.3))
    assert noise_std(0.3, 9) == pytest.approx(math.sqrt(0.3 / 10 ** 0.55))
    scale = norm_clip_scale(torch.tensor([[0.0], [0.5], [4.0]]), 2.0)
    assert scale.flatten().tolist() == [1.0, 1.0, 0.5]  # short or zero: exactly 1
    per_run = norm_clip_scale(torch.tensor([[4.0], [4.0]]), torch.tensor([[1.0], [8.0]]))
    assert per_run.flatten().tolist() == [0.25, 1.0]
