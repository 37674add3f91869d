"""The native kernel (engine/native/) gives the eager path's runs bit for bit.

Positions, losses, gradients, statuses and the steps they changed, and every optimizer's state
must be identical, float32 and float64, for every optimizer, on built-in surfaces and a typed
formula, with per-run hyperparameters, rows that diverge and rows that converge, and native and
eager chunks following each other. Each (surface, optimizers, dtype) is one g++ build (~1 s,
cached on disk), so the cases share builds: every simulator races all six optimizers.
"""
import os

import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz.engine.native import build, runner

needs_compiler = pytest.mark.skipif(build.compiler() is None and not os.environ.get("CI"),
                                    reason="the native kernel needs g++")
FIELDS = ("x", "loss", "grad", "status", "converged_at", "diverged_at")
N = 23  # not a multiple of the kernel's 64 lanes: the last block is a partial one


def pair(chunks, **kwargs):
    """The same race stepped eagerly and natively, chunk by chunk; `chunks` items are a number of
    steps or (steps, 'eager') for a chunk the native one also steps eagerly."""
    sims = []
    for native in (False, True):
        sim = ov.Simulator(native=native, **kwargs)
        for chunk in chunks:
            steps, how = chunk if isinstance(chunk, tuple) else (chunk, "native")
            if how == "eager" or not native:
                sim.native = False
            sim.advance(steps, record=False)
            assert sim.last_mode == ("native" if native and how == "native" else "eager")
            sim.native = native
        sims.append(sim)
    return sims


def assert_identical(eager, native):
    for name in FIELDS:
        a, b = getattr(eager, name), getattr(native, name)
        assert torch.equal(a, b), f"{name}: {int((a != b).sum())} values differ"
    for opt_e, opt_n in zip(eager._opts, native._opts):
        assert opt_e.t == opt_n.t
        for key in opt_e._state:
            assert torch.equal(opt_e._state[key], opt_n._state[key]), f"{opt_e.name} {key}"


@needs_compiler
@pytest.mark.parametrize("surface,dtype", [
    ("quadratic", torch.float32), ("rosenbrock", torch.float32),
    ("x**2 + 10*y**2 + x*y - 3/(1+x**2)", torch.float32), ("quadratic", torch.float64)])
def test_every_optimizer_bit_for_bit_with_statuses(surface, dtype):
    lr = np.geomspace(1e-4, 0.6, N)  # timid to explosive: some rows converge, some diverge
    eager, native = pair([60, (40, "eager"), 100], surface=surface, optimizers=ov.OPTIMIZERS, lr=lr,
                         dtype=dtype, gtol=1e-4, ftol=1e-7)
    assert_identical(eager, native)
    status = set(eager.status_names())
    assert "diverged" in status and ("converged" in status or surface == "rosenbrock"), status


@needs_compiler
def test_per_run_hyperparameters_and_options():
    rng = np.random.default_rng(1)
    momentum = rng.uniform(0, 0.95, N)
    momentum[::4] = 0.0  # runs with no momentum: torch leaves their buffer alone
    hparams = {
        "sgd": {"weight_decay": rng.uniform(0, 0.1, N)},
        "momentum": {"momentum": momentum, "dampening": 0.3},
        "nesterov": {"momentum": rng.uniform(0.1, 0.99, N), "weight_decay": 0.01},
        "adagrad": {"lr_decay": rng.uniform(0, 0.05, N), "initial_accumulator_value": 0.1},
        "rmsprop": {"centered": True, "momentum": np.where(np.arange(N) % 3 == 0, 0.0, 0.5),
                    "alpha": rng.uniform(0.9, 0.999, N)},
        "adam": {"amsgrad": True, "betas": (rng.choice([0.8, 0.9], N), rng.choice([0.99, 0.999], N))},
    }
    eager, native = pair([(1, "eager"), 120, 80], surface="quadratic", optimizers=ov.OPTIMIZERS,
                         lr=np.geomspace(1e-4, 0.6, N), hparams=hparams, gtol=1e-4, ftol=1e-7)
    assert_identical(eager, native)


@needs_compiler
def test_hyperparameters_changed_between_native_chunks():
    eager, native = pair([50], surface="quadratic", optimizers=ov.OPTIMIZERS, lr=np.geomspace(1e-3, 0.1, N))
    for sim in (eager, native):
        sim.set_hparams("adam", lr=0.05, betas=(0.5, 0.9))
        sim.set_hparams("momentum", momentum=0.0)
        sim.advance(70, record=False)
    assert native.last_mode == "native"
    assert_identical(eager, native)


@needs_compiler
@pytest.mark.parametrize("schedule", [("step", {"step_size": 7, "gamma": 0.5}), ("inverse_time", {"k": 0.03}),
                                      lambda step: 1.0 + 0.5 * np.sin(step / 5.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_schedules_bit_for_bit(schedule, dtype):
    """The lr each step takes is lr * factor, worked out as the torch step does, for every optimizer
    (uniform and per-run lr, AdaGrad's lr_decay on top); chunks after eager ones pick up the schedule
    at the right step, and factors above 1 push some rows over."""
    hparams = {"adagrad": {"lr_decay": 0.02}, "adam": {"lr": 0.05}, "rmsprop": {"momentum": 0.5}}
    eager, native = pair([(1, "eager"), 30, (13, "eager"), 57], surface="quadratic", optimizers=ov.OPTIMIZERS,
                         lr=np.geomspace(1e-3, 0.7, N), hparams=hparams, schedule=schedule, dtype=dtype,
                         gtol=1e-4, ftol=1e-7)
    assert native.last_mode == "native" and native.t == 101
    assert_identical(eager, native)
    assert "diverged" in set(eager.status_names())


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_noise_bit_for_bit(dtype, monkeypatch):
    """The kernel steps on the draws the torch path would make (same generator, same order, per-run
    stds, one of them 0), split into several kernel calls when the draws would not fit, and leaves
    the generator where the torch path does: the next eager chunk draws the same noise."""
    monkeypatch.setattr(runner, "_NOISE_BYTES", 6 * N * 2 * 8 * 7)  # 7 steps of draws (float64) per call
    std = np.linspace(0.0, 2.0, N)
    eager, native = pair([(1, "eager"), 45, (6, "eager"), 25], surface="rosenbrock", optimizers=ov.OPTIMIZERS,
                         lr=np.geomspace(1e-4, 0.05, N), grad_noise=std, seed=5, dtype=dtype,
                         schedule=("exponential", {"k": 0.01}), gtol=1e-4, ftol=1e-7)
    assert native.last_mode == "native" and native.t == 77
    assert_identical(eager, native)
    assert torch.equal(eager._generator.get_state(), native._generator.get_state())
    quiet = ov.Simulator("rosenbrock", ov.OPTIMIZERS, n=N, lr=np.geomspace(1e-4, 0.05, N), dtype=dtype,
                         schedule=("exponential", {"k": 0.01}), gtol=1e-4, ftol=1e-7, native=False)
    quiet.advance(77, record=False)
    assert not torch.equal(quiet.x, native.x)  # the noise did move the runs
    assert torch.equal(quiet.x.view(6, N, 2)[:, 0], native.x.view(6, N, 2)[:, 0])  # std 0: no noise at all


@needs_compiler
def test_a_schedule_that_raises_mid_run_leaves_the_calls_before_it_whole(monkeypatch):
    monkeypatch.setattr(runner, "_MAX_PIECE", 10)

    def schedule(step):
        if step >= 35:
            raise ValueError("schedule gave up")
        return 0.5

    eager, native = pair([20], surface="quadratic", optimizers=ov.OPTIMIZERS, lr=np.geomspace(1e-3, 0.5, N), schedule=schedule)
    with pytest.raises(ValueError, match="gave up"):
        native.advance(30, record=False)
    assert native.t == 30  # one more call of 10 steps ran; the next asked for step 35's factor first
    eager.advance(10, record=False)
    assert_identical(eager, native)


def test_what_the_kernel_refuses_runs_with_torch_and_says_why():
    sim = ov.Simulator("rastrigin", "adam", native=True, n=4)
    assert "aten.cos" in runner.native_problem(sim)
    sim.advance(20, record=False)
    assert sim.last_mode == "eager"
    clipped = ov.Simulator("quadratic", "sgd", native=True, transforms=[ov.clip_by_norm(1.0)])
    assert "transforms" in runner.native_problem(clipped)
    lecture = ov.Simulator("quadratic", "momentum", native=True, form="lecture")
    assert "lecture" in runner.native_problem(lecture)
    small = ov.Simulator("quadratic", "sgd", n=3)  # automatic: a small run never waits for a build
    assert not runner.wants_native(small, 10)
    with pytest.raises(ValueError, match="native must be None"):
        ov.Simulator("quadratic", "sgd", native="yes")


def test_a_failed_build_warns_and_the_run_goes_on_with_torch(monkeypatch):
    def broken(source):
        raise RuntimeError("g++ failed: simulated")

    monkeypatch.setattr(build, "load", broken)
    monkeypatch.setattr(runner, "_failed", set())
    sim = ov.Simulator("saddle", "sgd", native=True, n=5, start=(-1.0, 0.1))
    reference = ov.Simulator("saddle", "sgd", native=False, n=5, start=(-1.0, 0.1))
    with pytest.warns(RuntimeWarning, match="simulated; stepping with torch"):
        sim.advance(30, record=False)
    reference.advance(30, record=False)
    assert sim.last_mode == "eager"
    assert torch.equal(sim.x, reference.x) and sim.t == 30
