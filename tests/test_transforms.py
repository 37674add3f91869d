"""Gradient transforms: the lectures' formulas, row-wise, per-run parameters, seeded noise."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from optiviz.engine.transforms import annealed_noise, chain, clip_by_norm, clip_by_value, sign

G = torch.tensor([[3.0, -4.0], [0.1, 0.2], [-10.0, 0.0], [0.0, 0.0]], dtype=torch.float64)


def test_clip_by_value_is_min_max_and_leaves_the_input_alone():
    g = G.clone()
    out = clip_by_value(1.0)(g, 0)
    assert torch.equal(out, torch.minimum(torch.tensor(1.0), torch.maximum(torch.tensor(-1.0), G)).double())
    assert torch.equal(g, G)


def test_clip_by_value_per_run():
    out = clip_by_value(np.array([1.0, 0.15, 5.0, 1.0]))(G, 0)
    expected = torch.tensor([[1.0, -1.0], [0.1, 0.15], [-5.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(out, expected)


def test_clip_by_norm_rescales_long_rows_only_and_keeps_direction():
    out = clip_by_norm(1.0)(G, 0)
    norms = torch.linalg.vector_norm(out, dim=1)
    assert torch.allclose(norms[:3], torch.tensor([1.0, float(torch.linalg.vector_norm(G[1])), 1.0],
                                                  dtype=torch.float64))
    assert torch.allclose(out[0], G[0] / 5.0)
    assert torch.equal(out[1], G[1])            # already short: unchanged
    assert torch.equal(out[3], G[3])            # zero gradient: no division by zero
    # the lectures' formula g * clip / max(|g|, clip)
    expected = G * 1.0 / torch.clamp(torch.linalg.vector_norm(G, dim=1, keepdim=True), min=1.0)
    assert torch.allclose(out, expected, rtol=1e-15, atol=0)


def test_clip_by_norm_per_run():
    clip = torch.tensor([10.0, 0.1, 5.0, 1.0])
    out = clip_by_norm(clip)(G, 0)
    assert torch.equal(out[0], G[0])
    assert torch.allclose(torch.linalg.vector_norm(out[1:3], dim=1), torch.tensor([0.1, 5.0], dtype=torch.float64))


def test_sign_is_one_bit():
    assert torch.equal(sign(0.5)(G, 0), 0.5 * torch.sign(G))
    out = sign([1.0, 2.0, 3.0, 4.0])(G, 0)
    assert torch.equal(out, torch.sign(G) * torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64))


def test_annealed_noise_is_seeded_and_repeatable():
    g = torch.zeros(1000, 2)
    a = annealed_noise(0.3, seed=7)
    first = [a(g, t).clone() for t in range(3)]
    a.reset()
    again = [a(g, t).clone() for t in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    b = annealed_noise(0.3, seed=7)
    assert torch.equal(b(g, 0), first[0])
    assert not torch.equal(annealed_noise(0.3, seed=8)(g, 0), first[0])
    assert not torch.equal(first[0], first[1])


def test_annealed_noise_variance_schedule_matches_optax_add_noise():
    """t = 0 is the first gradient: variance eta (optax: count_inc = 1), then eta / (1 + t)^gamma."""
    g = torch.zeros(200_000, 2, dtype=torch.float64)
    eta, gamma = 0.3, 0.55
    noise = annealed_noise(eta, gamma, seed=0)
    for t in (0, 9, 99):
        var = float(noise(g, t).var())
        assert var == pytest.approx(eta / (1 + t) ** gamma, rel=0.02)


def test_annealed_noise_adds_to_the_gradient_and_per_run_eta():
    noise = annealed_noise(np.array([0.3, 0.0, 1.0, 0.0]), gamma=np.array([0.55, 0.55, 0.0, 1.0]), seed=1)
    out = noise(G, 5)
    assert torch.equal(out[1], G[1]) and torch.equal(out[3], G[3])   # eta = 0: no noise
    assert not torch.equal(out[0], G[0]) and not torch.equal(out[2], G[2])
    # same draws as the scalar form, scaled per run
    scalar = annealed_noise(1.0, gamma=0.0, seed=1)(torch.zeros_like(G), 5)
    assert torch.allclose(out[2] - G[2], scalar[2])
    assert torch.allclose(out[0] - G[0], scalar[0] * (0.3 / 6 ** 0.55) ** 0.5)


def test_chain_applies_in_order_and_resets():
    tr = chain(clip_by_norm(1.0), sign(0.1), annealed_noise(0.01, seed=3))
    expected = annealed_noise(0.01, seed=3)(sign(0.1)(clip_by_norm(1.0)(G, 4), 4), 4)
    assert torch.equal(tr(G, 4), expected)
    tr.reset()
    assert torch.equal(tr(G, 4), expected)
    assert torch.equal(chain()(G, 0), G)


def test_reprs_are_readable():
    assert repr(clip_by_value(1.0)) == "clip_by_value(g_max=1)"
    assert repr(clip_by_norm([0.5, 2.0])) == "clip_by_norm(max_norm=[0.5..2] (N=2))"
    assert repr(sign(0.01)) == "sign(g_max=0.01)"
    assert repr(annealed_noise(0.3)) == "annealed_noise(eta=0.3, gamma=0.55, seed=0)"
    assert repr(chain(clip_by_norm(10), annealed_noise(1.0, seed=2))) == \
        "chain(clip_by_norm(max_norm=10), annealed_noise(eta=1, gamma=0.55, seed=2))"


def test_output_buffer_is_reused_and_input_untouched():
    g = G.clone()
    for tr in (clip_by_value(1.0), clip_by_norm(1.0), sign(1.0), annealed_noise(0.1)):
        a = tr(g, 0)
        b = tr(g, 1)
        assert a is b and a is not g
        assert torch.equal(g, G)


@pytest.mark.parametrize("make,match", [
    (lambda: clip_by_value(0.0), r"g_max must be in \(0, inf\)"),
    (lambda: clip_by_value(-1.0), r"g_max must be in \(0, inf\)"),
    (lambda: clip_by_value([1.0, -1.0]), r"g_max must be in \(0, inf\)"),
    (lambda: clip_by_norm(0.0), r"max_norm must be in \(0, inf\)"),
    (lambda: sign(0.0), r"g_max must be in \(0, inf\)"),
    (lambda: annealed_noise(-0.1), r"eta must be in \[0, inf\)"),
    (lambda: annealed_noise(0.1, gamma=-1.0), r"gamma must be in \[0, inf\)"),
    (lambda: annealed_noise(0.1, seed=-1), r"seed must be in \[0, inf\)"),
    (lambda: annealed_noise(0.1, seed=1.5), r"seed must be an integer"),
    (lambda: clip_by_norm("big"), r"max_norm must be a number"),
    (lambda: chain(clip_by_norm(1.0), 3), r"chain argument 1 must be a transform"),
])
def test_invalid_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_per_run_length_must_match_the_gradient():
    with pytest.raises(ValueError, match=r"g_max must be a scalar or have one value per run \(length 4\), got length 3"):
        clip_by_value([1.0, 2.0, 3.0])(G, 0)
    with pytest.raises(ValueError, match="t must be in"):
        annealed_noise(0.1)(G, -1)
