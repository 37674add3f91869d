"""Convergence rates: measured from runs, and predicted on a quadratic, so a map can show both.

The rate is the factor by which the distance to the minimum shrinks per step (Goh, "Why Momentum
Really Works", Distill 2017): below 1 a run converges, above 1 it grows. On a quadratic with
Hessian eigenvalues `curvatures`, SGD, heavy-ball momentum and Nesterov are linear iterations, so
the rate is the spectral radius of their iteration matrix, exactly; torch.optim's forms
(`v = momentum * v + g; x -= lr * v`, and Nesterov's `x -= lr * (g + momentum * v)`) are the
iterations used here. Weight decay adds to every curvature, as it does to the gradient.

Measured rates come from the loss excess f - f*, which near a minimum falls as distance squared:
rate = (excess_b / excess_a) ** (1 / (2 (t_b - t_a))) between two checkpoints, the later one the
last where the excess is still above the dtype's floor and the earlier one about half-way there,
so the first steps' transient (torch's first momentum step is a plain gradient step) counts little.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from optiviz._validate import check_choice

LINEAR_OPTIMIZERS = ("sgd", "momentum", "nesterov")  # linear iterations on a quadratic: exact theory


def _check(optimizer: str, curvatures: Sequence[float]) -> tuple[str, np.ndarray]:
    optimizer = check_choice("optimizer", optimizer, LINEAR_OPTIMIZERS)
    h = np.asarray(curvatures, dtype=np.float64).reshape(-1)
    if h.size == 0 or not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise ValueError(f"curvatures must be positive finite numbers, got {list(curvatures)!r}")
    return optimizer, h


def predicted_rate(optimizer: str, curvatures: Sequence[float], lr: Any, momentum: Any = None,
                   weight_decay: Any = 0.0) -> np.ndarray:
    """Spectral radius of the optimizer's iteration on the quadratic (broadcast over lr, momentum
    and weight_decay).

    momentum None means the optimizer's default (0 for sgd, 0.9 for momentum and nesterov)."""
    optimizer, h = _check(optimizer, curvatures)
    if momentum is None:
        momentum = 0.0 if optimizer == "sgd" else 0.9
    lr, beta, wd = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (lr, momentum, weight_decay)))
    if optimizer == "sgd":
        beta = np.zeros_like(beta)
    a, b = lr[..., None], beta[..., None]
    hh = h + wd[..., None]
    if optimizer == "nesterov":  # state (x, v): x' = (1 - a h (1+b)) x - a b^2 v
        trace, det = 1.0 + b - a * hh * (1.0 + b), b * (1.0 - a * hh)
    else:  # heavy ball: z^2 - (1 + b - a h) z + b
        trace, det = 1.0 + b - a * hh, b
    disc = np.sqrt((trace * trace - 4.0 * det).astype(np.complex128))
    radius = np.maximum(np.abs((trace + disc) / 2.0), np.abs((trace - disc) / 2.0))
    return radius.max(axis=-1)


def stability_edge(optimizer: str, curvatures: Sequence[float], momentum: Any = None,
                   weight_decay: Any = 0.0) -> np.ndarray:
    """The largest lr that still converges: 2/L (sgd), 2(1+beta)/L (momentum),
    2(1+beta)/((1+2 beta) L) (nesterov), with L the largest curvature plus weight decay."""
    optimizer, h = _check(optimizer, curvatures)
    if momentum is None:
        momentum = 0.0 if optimizer == "sgd" else 0.9
    b, wd = np.broadcast_arrays(np.asarray(momentum, dtype=np.float64), np.asarray(weight_decay, dtype=np.float64))
    top = float(h.max()) + wd
    if optimizer == "sgd":
        return 2.0 / top
    if optimizer == "momentum":
        return 2.0 * (1.0 + b) / top
    return 2.0 * (1.0 + b) / ((1.0 + 2.0 * b) * top)


def optimal_setting(optimizer: str, curvatures: Sequence[float], weight_decay: float = 0.0) -> dict[str, float]:
    """The lr (and momentum) with the fastest rate, and that rate.

    sgd: lr = 2/(L+mu), rate (k-1)/(k+1); momentum (Polyak, as in Distill): lr = (2/(sqrt L + sqrt mu))^2,
    beta = ((sqrt k - 1)/(sqrt k + 1))^2, rate sqrt(beta); nesterov (Lessard, Recht, Packard 2016):
    lr = 4/(3L + mu), beta = (sqrt(3k+1) - 2)/(sqrt(3k+1) + 2), rate 1 - 2/sqrt(3k+1); k = L/mu."""
    optimizer, h = _check(optimizer, curvatures)
    big, small = float(h.max()) + float(weight_decay), float(h.min()) + float(weight_decay)
    k = big / small
    if optimizer == "sgd":
        return {"lr": 2.0 / (big + small), "momentum": 0.0, "rate": (k - 1.0) / (k + 1.0)}
    if optimizer == "momentum":
        beta = ((math.sqrt(k) - 1.0) / (math.sqrt(k) + 1.0)) ** 2
        return {"lr": (2.0 / (math.sqrt(big) + math.sqrt(small))) ** 2, "momentum": beta, "rate": math.sqrt(beta)}
    s = math.sqrt(3.0 * k + 1.0)
    return {"lr": 4.0 / (3.0 * big + small), "momentum": (s - 2.0) / (s + 2.0), "rate": 1.0 - 2.0 / s}


def log_excess_floor(dtype: Any, f_ref: float) -> float:
    """log of the excess below which f - f* is round-off, not progress: the dtype's smallest normal
    (the quadratics compute their excess exactly) or its rounding of f* (a surface with f* != 0)."""
    info = np.finfo(np.float64 if "64" in str(dtype) else np.float32)
    return math.log(max(float(info.tiny) * 1e8, 64.0 * float(info.eps) * abs(float(f_ref))))


def log_excess(loss: Any, f_ref: float) -> np.ndarray:
    """log(f - f*) as float32 (what a map keeps per checkpoint); -inf at or below f*."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.asarray(loss, dtype=np.float64) - float(f_ref)).astype(np.float32)


def measured_rate(steps: Sequence[int], log_excesses: Any, log_floor: float) -> np.ndarray:
    """Per run, the distance-to-minimum factor per step measured from the loss excess.

    `steps` (C,) are checkpoint steps in increasing order (step 0 first), `log_excesses` (C, R)
    log(f - f*) there. NaN where fewer than two checkpoints are finite and above `log_floor`."""
    t = np.asarray(steps, dtype=np.float64)
    e = np.asarray(log_excesses, dtype=np.float64).reshape(len(t), -1)
    good = np.isfinite(e) & (e > log_floor)
    rows = np.arange(e.shape[1])
    last = np.where(good.any(axis=0), len(t) - 1 - np.argmax(good[::-1], axis=0), -1)
    t_last = t[np.maximum(last, 0)]
    mid = np.clip(np.searchsorted(t, t_last / 2.0), 0, np.maximum(last - 1, 0))  # about half-way, before it
    ok = (last > 0) & good[mid, rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.exp((e[np.maximum(last, 0), rows] - e[mid, rows]) / (2.0 * (t_last - t[mid])))
    return np.where(ok, rate, np.nan)


def run_rate(loss: Any, f_ref: float, dtype: Any) -> np.ndarray:
    """measured_rate of whole runs: loss (..., steps + 1) with every step a checkpoint."""
    loss = np.asarray(loss, dtype=np.float64)
    flat = loss.reshape(-1, loss.shape[-1]).T
    rate = measured_rate(np.arange(flat.shape[0]), log_excess(flat, f_ref), log_excess_floor(dtype, f_ref))
    return rate.reshape(loss.shape[:-1])


__all__ = ["LINEAR_OPTIMIZERS", "predicted_rate", "stability_edge", "optimal_setting", "log_excess_floor",
           "log_excess", "measured_rate", "run_rate"]
