"""Preprocessing (issue 16, item 4): standardized inputs train faster; all-positive inputs share gradient signs."""
import math

import numpy as np
import pytest

from optiviz.training.preprocessing import compare_preprocessing, gradient_sign_share, preprocess, zigzag_path


@pytest.fixture(scope="module")
def comparison(cifar):
    return compare_preprocessing(cifar, lrs=(1e-4, 1e-2), steps=40, n_train=1500)


def test_inputs_are_what_they_say(cifar):
    raw, centred, std = (preprocess(cifar.subset(200), k)["train"] for k in ("raw", "mean_subtracted", "standardized"))
    assert 0 <= float(raw.min()) and float(raw.max()) <= 255.0 + 1e-3 and 100 < float(raw.mean()) < 140
    assert abs(float(centred.mean())) < 5 and float(centred.std()) > 40
    assert abs(float(std.mean())) < 0.2 and 0.8 < float(std.std()) < 1.2


def test_standardized_trains_faster_within_the_budget(comparison):
    rows = comparison.rows
    assert rows["standardized"].best_acc > rows["raw"].best_acc + 0.1
    assert rows["standardized"].best_acc > rows["mean_subtracted"].best_acc
    assert rows["standardized"].best_lr == 1e-2
    assert math.isfinite(rows["standardized"].final_loss[1e-2]) and rows["standardized"].final_loss[1e-2] < 2.1


def test_raw_inputs_make_the_loss_far_more_sensitive(comparison):
    rows = comparison.rows
    assert rows["raw"].sensitivity > 30 * rows["standardized"].sensitivity
    assert rows["mean_subtracted"].sensitivity > 30 * rows["standardized"].sensitivity
    assert "sensitivity" in comparison.table()


def test_all_positive_inputs_share_a_gradient_sign(cifar):
    share = gradient_sign_share(cifar.x_train[:32], cifar.y_train[:32])
    assert share.per_example["sigmoid"] == 1.0  # delta_j * h with h > 0: one sign per row, always
    assert share.per_example["tanh"] < 0.05
    assert share.per_batch["sigmoid"] > share.per_batch["tanh"]


def test_zigzag_in_two_dimensions():
    path, same = zigzag_path(centred=False)
    centred_path, centred_same = zigzag_path(centred=True)
    assert same == 1.0 and 0.3 < centred_same < 0.7
    target = np.array([1.0, -1.0])
    assert np.linalg.norm(centred_path[-1] - target) < np.linalg.norm(path[-1] - target)


def test_bad_input_names_the_parameter(cifar):
    for kwargs, name in ((dict(lrs=()), "lrs"), (dict(lrs=(-1.0,)), "lrs"), (dict(steps=0), "steps"), (dict(width=0), "width"),
                         (dict(sigma=0.0), "sigma")):
        with pytest.raises(ValueError, match=name):
            compare_preprocessing(cifar, **kwargs)
    with pytest.raises(ValueError, match="kind"):
        preprocess(cifar, "whitened")
    with pytest.raises(ValueError, match="steps"):
        zigzag_path(centred=True, steps=0)
    with pytest.raises(ValueError, match="hidden"):
        gradient_sign_share(cifar.x_train[:4], cifar.y_train[:4], hidden=1)
