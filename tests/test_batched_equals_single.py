"""Batched runs equal the same runs done one at a time, bit for bit, in float32 too.

With a scalar hyperparameter the step's scalars (Adam's lr/(1-beta1^t), AdaGrad's
lr/(1+(t-1) lr_decay), a schedule's lr * factor) are worked out in float64 on the host and rounded
to the run's dtype once, as torch.optim does; per-run values take the same path, in float64
tensors rounded once. With more than `_BiasCorrection.EXACT_MAX` distinct betas the per-run bias
corrections come from exp(t log beta): approximate, within float32 rounding (tested below).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from optiviz.engine.hparams import HPARAMS, OPTIMIZERS
from optiviz.engine.optimizers import _BiasCorrection, make_optimizer
from optiviz.engine.surfaces import get_surface

F32 = torch.float32
N, STEPS = 8, 200
SURFACE = get_surface("rotated_quadratic", condition=20.0)

# per-run values to sweep for each hyperparameter (N distinct values each, inside torch's ranges)
SWEEPS = {
    "lr": lambda name: np.geomspace(1e-3, 5e-2, N) if name in ("sgd", "momentum", "nesterov") else np.geomspace(1e-3, 0.3, N),
    "momentum": lambda name: np.linspace(0.05 if name == "nesterov" else 0.0, 0.95, N),
    "dampening": lambda name: np.linspace(0.0, 0.9, N),
    "weight_decay": lambda name: np.geomspace(1e-4, 0.5, N),
    "alpha": lambda name: np.linspace(0.5, 0.999, N),
    "eps": lambda name: np.geomspace(1e-10, 1e-2, N),
    "lr_decay": lambda name: np.geomspace(1e-4, 0.5, N),
    "initial_accumulator_value": lambda name: np.linspace(0.0, 1.0, N),
    "beta1": lambda name: np.linspace(0.0, 0.99, N),
    "beta2": lambda name: 1 - np.geomspace(1e-4, 0.1, N),
}


def _cases():
    for name in OPTIMIZERS:
        for hp, spec in HPARAMS[name].items():
            if spec.kind == "bool":
                continue
            if hp == "betas":
                yield name, "beta1"
                yield name, "beta2"
            elif hp in SWEEPS and not (name == "nesterov" and hp == "dampening"):  # nesterov needs dampening 0
                yield name, hp


def _run(name, hparams, n, steps=STEPS, schedule=None):
    opt = make_optimizer(name, n, 2, dtype=F32, **hparams)
    x = torch.tensor(SURFACE.start, dtype=F32).repeat(n, 1)
    for t in range(steps):
        scale = 1.0 if schedule is None else schedule(t)
        opt.step(x, SURFACE.gradient(x), lr_scale=scale)
    return x


def _as_kwargs(name, hp, values):
    if hp in ("beta1", "beta2"):
        b1, b2 = HPARAMS[name]["betas"].default
        return {"betas": (values, b2) if hp == "beta1" else (b1, values)}
    return {hp: values}


def _single(name, hp, v):
    return _as_kwargs(name, hp, float(v))


@pytest.mark.parametrize("name,hp", list(_cases()))
def test_float32_batched_equals_single_runs(name, hp):
    values = SWEEPS[hp](name)
    batched = _run(name, _as_kwargs(name, hp, values), N)
    singles = torch.cat([_run(name, _single(name, hp, v), 1) for v in values])
    assert torch.isfinite(singles).all()
    torch.testing.assert_close(batched, singles, rtol=0, atol=0)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_batched_equals_single_under_a_schedule(name):
    """A schedule's factor times a per-run lr: one rounding, as lr * factor in Python then cast."""
    values = SWEEPS["lr"](name)
    schedule = lambda t: 0.5 ** (t // 50) * 0.97  # noqa: E731 - a step decay with a non-round factor
    batched = _run(name, {"lr": values}, N, schedule=schedule)
    singles = torch.cat([_run(name, {"lr": float(v)}, 1, schedule=schedule) for v in values])
    torch.testing.assert_close(batched, singles, rtol=0, atol=0)


def test_many_distinct_betas_are_close_not_exact():
    """More than EXACT_MAX distinct betas: exp(t log beta) in float64 stands in for beta ** t."""
    n = _BiasCorrection.EXACT_MAX + 44
    b1 = np.linspace(0.5, 0.99, n)
    batched = _run("adam", {"betas": (b1, 0.999), "lr": 0.01}, n, steps=100)
    pick = np.arange(0, n, 25)
    singles = torch.cat([_run("adam", {"betas": (float(b1[i]), 0.999), "lr": 0.01}, 1, steps=100) for i in pick])
    torch.testing.assert_close(batched[pick], singles, rtol=1e-5, atol=1e-6)
