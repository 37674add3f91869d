"""Learning-rate schedules: the lectures' formulas, torch's step indexing, validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optiviz.engine.schedules import SCHEDULE_PARAMS, SCHEDULES, make_schedule


def test_every_schedule_starts_at_the_base_lr():
    for kind in SCHEDULES:
        assert make_schedule(kind)(0) == 1.0


def test_formulas():
    assert make_schedule("constant")(12345) == 1.0
    s = make_schedule("step")  # default: halve every 100 steps
    assert [s(t) for t in (0, 99, 100, 199, 200, 350)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
    assert make_schedule("step", step_size=10, gamma=0.1)(25) == pytest.approx(0.01)
    assert make_schedule("exponential", k=0.02)(50) == pytest.approx(math.exp(-1.0))
    assert make_schedule("inverse_time", k=0.1)(30) == pytest.approx(0.25)
    lin = make_schedule("linear", tau=100, end_factor=0.2)
    assert lin(50) == pytest.approx(0.6)
    assert lin(100) == pytest.approx(0.2) and lin(10_000) == pytest.approx(0.2)


def test_arrays_of_steps_give_the_curve():
    steps = np.arange(0, 300)
    for kind in SCHEDULES:
        s = make_schedule(kind)
        curve = s(steps)
        assert curve.shape == steps.shape
        assert np.allclose(curve, [s(int(t)) for t in steps], rtol=1e-15, atol=0)


@pytest.mark.parametrize("kind,params,torch_scheduler", [
    ("step", dict(step_size=30, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 30, 0.5)),
    ("exponential", dict(k=0.01), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, math.exp(-0.01))),
    ("linear", dict(tau=80, end_factor=0.1),
     lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=80)),
])
def test_multiplier_times_lr_is_what_torch_schedulers_put_in_group_lr(kind, params, torch_scheduler):
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.3)
    sched = torch_scheduler(opt)
    ours = make_schedule(kind, **params)
    for t in range(200):  # t = steps already taken when opt.step() reads group['lr']
        assert opt.param_groups[0]["lr"] == pytest.approx(0.3 * ours(t), rel=1e-12)
        p.grad = torch.ones(2)
        opt.step()
        sched.step()


def test_lambda_lr_with_our_schedule_matches_exactly():
    ours = make_schedule("inverse_time", k=0.05)
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, ours)
    for t in range(100):
        assert opt.param_groups[0]["lr"] == 0.3 * ours(t)
        p.grad = torch.ones(2)
        opt.step()
        sched.step()


def test_specs_cover_every_schedule():
    assert set(SCHEDULE_PARAMS) == set(SCHEDULES)
    for kind, specs in SCHEDULE_PARAMS.items():
        make_schedule(kind, **{name: spec.default for name, spec in specs.items()})


def test_repr():
    assert repr(make_schedule("step", step_size=50)) == "make_schedule('step', step_size=50, gamma=0.5)"


@pytest.mark.parametrize("kind,params,match", [
    ("cosine", {}, r"unknown schedule 'cosine'; allowed: constant, step, exponential, inverse_time, linear"),
    ("step", dict(step_size=0), r"step_size must be in \[1, inf\)"),
    ("step", dict(step_size=2.5), r"step_size must be an integer"),
    ("step", dict(gamma=0.0), r"gamma must be in \(0, 1\]"),
    ("step", dict(gamma=1.5), r"gamma must be in \(0, 1\]"),
    ("exponential", dict(k=-0.1), r"k must be in \[0, inf\)"),
    ("inverse_time", dict(k="fast"), r"k must be a number"),
    ("linear", dict(tau=0), r"tau must be in \[1, inf\)"),
    ("linear", dict(end_factor=1.5), r"end_factor must be in \[0, 1\]"),
    ("linear", dict(k=0.1), r"unknown parameter 'k' for schedule linear; allowed: tau, end_factor"),
    ("constant", dict(k=0.1), r"unknown parameter 'k' for schedule constant; allowed: \(none\)"),
    ("exponential", dict(k=[0.1, 0.2]), r"k must be a single number"),
])
def test_invalid(kind, params, match):
    with pytest.raises(ValueError, match=match):
        make_schedule(kind, **params)


def test_negative_step_is_rejected():
    with pytest.raises(ValueError, match="step must be in"):
        make_schedule("exponential")(-1)
