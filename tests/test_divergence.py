"""Divergence means divergence, and the maps agree with the theory (Goh, "Why Momentum Really Works").

A run is diverged when its iterate is one the dtype cannot hold or it is 100 plot half-widths away,
never because its loss passed 3x the start (torch's first momentum step is a plain gradient step
that overshoots, then converges). Checked three ways: against the exact theory on the quadratic
(every diverged cell has spectral radius >= 1), by continuing the runs 10x longer without any
divergence check, and at Distill's optimal setting.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz.engine.optimizers import make_optimizer
from optiviz.engine.rates import optimal_setting, predicted_rate, stability_edge
from optiviz.engine.sweeps import make_axis

F64 = torch.float64
L, MU = 50.0, 1.0
LR_STAR = (2 / (1 + math.sqrt(50))) ** 2  # 0.0614
BETA_STAR = ((math.sqrt(50) - 1) / (math.sqrt(50) + 1)) ** 2  # 0.566
RATE_STAR = (math.sqrt(50) - 1) / (math.sqrt(50) + 1)  # 0.752


def test_the_optimal_setting_is_distills():
    best = optimal_setting("momentum", (MU, L))
    assert best["lr"] == pytest.approx(LR_STAR, rel=1e-12)
    assert best["momentum"] == pytest.approx(BETA_STAR, rel=1e-12)
    assert best["rate"] == pytest.approx(RATE_STAR, rel=1e-12)
    assert float(predicted_rate("momentum", (MU, L), LR_STAR, BETA_STAR)) == pytest.approx(RATE_STAR, rel=1e-9)
    # nothing on a fine grid beats it
    lr, beta = np.meshgrid(np.linspace(0.01, 0.08, 300), np.linspace(0.0, 0.95, 300))
    assert predicted_rate("momentum", (MU, L), lr, beta).min() >= RATE_STAR - 1e-3


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_the_edge_is_where_the_spectral_radius_reaches_one(optimizer):
    for beta in (0.0, 0.3, 0.6, 0.9, 0.99):
        m = 0.0 if optimizer == "sgd" else beta
        for wd in (0.0, 0.5):
            edge = float(stability_edge(optimizer, (MU, L), m, weight_decay=wd))
            assert predicted_rate(optimizer, (MU, L), edge * (1 - 1e-6), m, weight_decay=wd) < 1
            assert predicted_rate(optimizer, (MU, L), edge * (1 + 1e-6), m, weight_decay=wd) > 1
    assert float(stability_edge("momentum", (MU, L), 0.5)) == pytest.approx(2 * 1.5 / 50)


def test_distills_optimum_converges_at_its_rate():
    """It read 'diverged at step 1' under the 3x rule (the first step overshoots to 3.5x the start)."""
    run = ov.simulate("quadratic", "momentum", steps=500, lr=LR_STAR, momentum=BETA_STAR, dtype=F64)
    assert run.loss[1] > 3 * run.loss[0]
    assert run.status == "converged"
    assert run.rate == pytest.approx(RATE_STAR, rel=0.01)
    assert ov.simulate("quadratic", "momentum", steps=500, lr=LR_STAR, momentum=BETA_STAR).status == "converged"


def test_momentum_map_edge_within_one_cell_of_theory():
    """120 x 40 (lr x beta) in float64: each beta row's first diverged cell is within one cell of
    2(1 + beta)/L, and the measured rates agree with the spectral radius."""
    m = ov.stability_map("quadratic", "momentum", make_axis("lr", num=120, optimizer="momentum"),
                         make_axis("momentum", num=40, optimizer="momentum"), steps=500, dtype=F64)
    lrs = m.x.values
    for i, beta in enumerate(m.y.values):
        diverged = np.flatnonzero(m.status[i] == 2)
        assert diverged.size, beta
        first_above = int(np.searchsorted(lrs, 2 * (1 + beta) / L))
        assert abs(int(diverged[0]) - first_above) <= 1, (beta, lrs[diverged[0]], 2 * (1 + beta) / L)
    theory = m.theory()
    assert theory is not None and theory.best == pytest.approx(optimal_setting("momentum", (MU, L)))
    np.testing.assert_allclose(theory.edge_x, 2 * (1 + m.y.values) / L)
    converging = np.isfinite(m.rate) & (theory.predicted < 0.999)
    err = np.abs(m.rate - theory.predicted)[converging] / theory.predicted[converging]
    assert converging.sum() > 1000 and np.median(err) < 0.005 and err.max() < 0.02


@pytest.mark.parametrize("optimizer,y", [("momentum", "momentum"), ("nesterov", "momentum"), ("sgd", "weight_decay")])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_no_converging_setting_is_called_diverged(optimizer, y, dtype):
    """Over whole maps on the quadratic: a diverged cell's spectral radius is >= 1, a converged one's < 1."""
    m = ov.stability_map("quadratic", optimizer, make_axis("lr", num=60, optimizer=optimizer),
                         make_axis(y, num=20, optimizer=optimizer), steps=300, dtype=dtype)
    predicted = m.theory().predicted
    assert m.diverged.sum() > 100
    assert np.all(predicted[m.diverged] >= 1.0)
    assert np.all(predicted[m.status == 1] < 1.0)


def _continue_raw(surface, optimizer, settings, steps):
    """The same runs with no divergence check at all, float64: the optimizer and the gradient only."""
    n = len(next(iter(settings.values())))
    opt = make_optimizer(optimizer, n, 2, dtype=F64, **{k: torch.as_tensor(v, dtype=F64) for k, v in settings.items()})
    x = torch.tensor(surface.start, dtype=F64).repeat(n, 1)
    with torch.no_grad():
        for _ in range(steps):
            opt.step(x, surface.gradient(x))
    return x, surface.loss(x)


@pytest.mark.parametrize("surface,optimizer,x,y", [
    ("rosenbrock", "momentum", "lr", "momentum"),
    ("rosenbrock", "nesterov", "lr", "momentum"),
    ("himmelblau", "sgd", "lr", "weight_decay"),
    ("quadratic", "nesterov", "lr", "momentum"),
    ("six_hump_camel", "sgd", "lr", "weight_decay"),
    ("himmelblau", "momentum", "lr", "momentum"),
])
def test_a_diverged_cell_does_not_converge_when_continued_ten_times_longer(surface, optimizer, x, y):
    steps = 150
    m = ov.stability_map(surface, optimizer, make_axis(x, num=24, optimizer=optimizer),
                         make_axis(y, num=8, optimizer=optimizer), steps=steps, dtype=F64)
    cells = np.argwhere(m.diverged)
    assert len(cells) > 5
    settings = [m.setting(int(i), int(j)) for i, j in cells]
    keys = settings[0].keys()
    stacked = {k: np.array([s[k] for s in settings], dtype=float) for k in keys}
    if "betas" in stacked:
        stacked["betas"] = tuple(stacked["betas"].T)
    surf = m.surface
    x_end, loss_end = _continue_raw(surf, optimizer, stacked, 10 * steps)
    grad = surf.gradient(x_end)
    settled = torch.isfinite(loss_end) & (torch.linalg.norm(grad, dim=1) < 1e-3)
    assert not bool(settled.any()), [settings[k] for k in torch.nonzero(settled).reshape(-1).tolist()]


def test_a_run_that_can_no_longer_move_is_not_running_forever():
    """Adam on -exp(x^2 + y^2): the gradient grows until its square overflows float32, Adam's
    second moment becomes inf and its update 0. That run has left what the dtype holds: diverged."""
    run = ov.simulate("-exp(x**2+y**2)", "adam", steps=3000, start=(0.1, 0.1), lr=0.1)
    assert run.status == "diverged" and 0 < run.diverged_at < 3000
    assert np.isfinite(run.path).all() and np.isfinite(run.loss).all()


def test_the_theory_is_offered_only_where_it_is_exact():
    quad = dict(resolution=(6, 4), steps=20)
    assert ov.stability_map("rosenbrock", "momentum", **quad).theory() is None  # curvature not constant
    assert ov.stability_map("quadratic", "adam", "lr", "beta1", **quad).theory() is None  # not linear
    assert ov.stability_map("quadratic", "momentum", grad_noise=0.5, **quad).theory() is None
    sgd = ov.stability_map("quadratic", "sgd", "lr", "weight_decay", **quad).theory()
    assert sgd is not None and sgd.best is None and len(sgd.best_x) == 4  # a line of best lrs
    assert "2/50" in sgd.note
