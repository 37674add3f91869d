"""Simulator(compile=True): the fused path gives the eager path's runs, statuses and steps.

Each compiled race costs seconds of compiling, so the cases are few and each covers a lot:
per-run hyperparameters, rows that diverge and rows that converge, a schedule, noise and a
transform, a change mid-run, and the fallbacks when compiling cannot work.
"""
import os
import warnings

import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz.engine import fusion

F64 = torch.float64
# scripts/test.sh installs g++, so CI always runs these; elsewhere they need a compiler
needs_compiler = pytest.mark.skipif(
    fusion.compile_problem(torch.device("cpu")) is not None and not os.environ.get("CI"),
    reason=f"compile=True cannot run here: {fusion.compile_problem(torch.device('cpu'))}")


def race(compile, steps=300, after=None, **kwargs):
    """Record a race; `after(sim)` runs once halfway (to steer it mid-run)."""
    sim = ov.Simulator(compile=compile, **kwargs)
    first = sim.advance(steps // 2)
    if after is not None:
        after(sim)
    second = sim.advance(steps - steps // 2)
    return sim, np.concatenate([first.points, second.points]), np.concatenate([first.loss, second.loss])


def assert_same_runs(eager, fused, rtol):
    (sim_e, pts_e, loss_e), (sim_c, pts_c, loss_c) = eager, fused
    np.testing.assert_array_equal(sim_c.status.numpy(), sim_e.status.numpy())
    np.testing.assert_array_equal(sim_c.diverged_at.numpy(), sim_e.diverged_at.numpy())
    np.testing.assert_array_equal(sim_c.converged_at.numpy(), sim_e.converged_at.numpy())
    np.testing.assert_allclose(pts_c, pts_e, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(loss_c, loss_e, rtol=rtol, atol=rtol)
    assert np.isfinite(pts_c).all() and np.isfinite(loss_c).all()


@needs_compiler
def test_compiled_race_equals_eager_with_divergence_and_convergence():
    # lrs from timid to explosive on the ill-conditioned quadratic: some rows converge, some diverge
    lr = np.geomspace(1e-3, 0.5, 12)
    kw = dict(surface="quadratic", optimizers=ov.OPTIMIZERS, lr=lr, dtype=F64, gtol=1e-4, ftol=1e-6)
    eager, fused = race(False, **kw), race(True, **kw)
    status = eager[0].status_names()
    assert {"diverged", "converged"} <= set(status), status  # the case covers both
    assert_same_runs(eager, fused, rtol=1e-9)


@needs_compiler
def test_compiled_matches_with_schedule_noise_transform_and_mid_run_change():
    kw = dict(surface="rosenbrock", optimizers=("momentum", "adam"), lr=np.array([1e-3, 3e-3, 1e-2]),
              dtype=F64, grad_noise=0.5, seed=3, transforms=[ov.clip_by_norm(5.0)],
              schedule=ov.make_schedule("step", step_size=40, gamma=0.5))

    def steer(sim):
        sim.set_hparams("momentum", momentum=0.5)
        sim.set_hparams("adam", lr=np.array([2e-2, 1e-3, 5e-3]))

    eager, fused = race(False, after=steer, **kw), race(True, after=steer, **kw)
    # inductor may fuse a multiply and an add into one fma: last-bit differences, which noisy
    # Rosenbrock runs grow to ~1e-7 over 300 steps
    assert_same_runs(eager, fused, rtol=1e-5)
    # the change applied: after it, momentum's rows are not where an unsteered run goes
    _, plain_pts, _ = race(False, **kw)
    assert np.abs(plain_pts[-1] - eager[1][-1]).max() > 1e-3


@needs_compiler
def test_compiled_big_blocks_float32_and_restart():
    # over 65,536 elements the rows are stepped one optimizer's block at a time
    n = 20_000
    rng = np.random.default_rng(0)
    kw = dict(surface="rosenbrock", optimizers=("sgd", "rmsprop"), lr=10 ** rng.uniform(-4, -1, n))
    eager, fused = race(False, steps=120, **kw), race(True, steps=120, **kw)
    assert len(fused[0]._blocks) == 2
    assert (eager[0].status_names() == "diverged").any()
    np.testing.assert_array_equal(fused[0].diverged_at.numpy(), eager[0].diverged_at.numpy())
    # rows thrown against Rosenbrock's x^4 walls (lr too big, yet short of diverging) are chaotic:
    # they grow an fma's last-bit difference without bound. Rows that descend calmly (loss never
    # above 3x the start's) agree.
    sim = eager[0]
    f0 = float(sim.surface.loss(torch.tensor(sim.surface.start, dtype=torch.float64)))
    calm = (eager[2] <= 3 * f0).all(axis=0)
    assert calm.mean() > 0.5
    np.testing.assert_allclose(fused[1][:, calm], eager[1][:, calm], rtol=1e-4, atol=1e-4)
    sim = fused[0]
    sim.restart()
    again = sim.advance(120)
    np.testing.assert_array_equal(again.points, fused[1])


@needs_compiler
def test_simulate_and_maps_take_compile():
    run = ov.simulate("rosenbrock", "adam", start=(-1.5, 2.0), steps=200, lr=0.01, dtype=F64, compile=True)
    ref = ov.simulate("rosenbrock", "adam", start=(-1.5, 2.0), steps=200, lr=0.01, dtype=F64)
    np.testing.assert_allclose(run.path, ref.path, rtol=1e-9, atol=1e-12)
    m = ov.stability_map("quadratic", "momentum", steps=60, resolution=(6, 5), compile=True)
    ref_m = ov.stability_map("quadratic", "momentum", steps=60, resolution=(6, 5))
    np.testing.assert_array_equal(m.status, ref_m.status)


def test_no_compiler_warns_and_steps_eagerly(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    with pytest.warns(RuntimeWarning, match=r"compile=True: no C\+\+ compiler found .*stepping eagerly"):
        sim = ov.Simulator("beale", "adam", lr=0.01, dtype=F64, compile=True)
    got = sim.advance(50).points
    ref = ov.Simulator("beale", "adam", lr=0.01, dtype=F64).advance(50).points
    np.testing.assert_array_equal(got, ref)  # eager, bit for bit


def test_a_failed_compile_falls_back_without_losing_a_step(monkeypatch):
    def fail(*args, **kwargs):
        raise torch._dynamo.exc.TorchDynamoException("no backend today")

    monkeypatch.setattr(fusion, "compile_problem", lambda device: None)
    monkeypatch.setattr(fusion.torch, "compile", lambda fn, **kw: fail)
    sim = ov.Simulator("himmelblau", ("sgd", "adam"), lr=0.01, dtype=F64, compile=True)
    with pytest.warns(RuntimeWarning, match="compiling failed"):
        got = sim.advance(40).points
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not every step
        got = np.concatenate([got, sim.advance(10).points])
    ref = ov.Simulator("himmelblau", ("sgd", "adam"), lr=0.01, dtype=F64).advance(50).points
    np.testing.assert_array_equal(got, ref)


def test_compile_flag_is_checked():
    with pytest.raises(ValueError, match="compile must be True or False"):
        ov.Simulator("quadratic", "sgd", compile="yes")
