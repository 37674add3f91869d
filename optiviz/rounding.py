"""1-2-5 rounding and readable axis ticks: numbers a person would pick or read off a projector.

Plain math (no torch, no widgets), shared by the engine (suggested lrs), the probes (histogram
ranges) and the views (log and linear axis ticks).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MANTISSAS = (1.0, 2.0, 5.0, 10.0)
# Finer round numbers for a span that grows with a run: ~10 changes a decade instead of 3.
GROWTH_MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_round(value: float) -> float:
    """The nearest (in ratio) 1, 2 or 5 times a power of ten, e.g. 0.0137 -> 0.01, 0.04 -> 0.05."""
    exp = math.floor(math.log10(value))
    mant = value / 10**exp
    step = min(MANTISSAS, key=lambda m: abs(math.log(mant / m)))
    return float(f"{step * 10**exp:.3g}")


def nice_ceil(value: float, mantissas: Sequence[float] = MANTISSAS) -> float:
    """1, 2 or 5 (or one of `mantissas`, which run from 1 to 10) times a power of ten at or above
    value (value <= 0 or not finite: 1)."""
    return _nice(value, mantissas, up=True)


def nice_floor(value: float, mantissas: Sequence[float] = MANTISSAS) -> float:
    """The same at or below value."""
    return _nice(value, mantissas, up=False)


def _nice(value: float, mantissas: Sequence[float], up: bool) -> float:
    if not np.isfinite(value) or value <= 0:
        return 1.0
    mag = 10.0 ** math.floor(math.log10(value))
    if up:
        nice = next(m * mag for m in mantissas if m * mag >= value * (1 - 1e-9))
    else:
        nice = max(m * mag for m in mantissas if m * mag <= value * (1 + 1e-9))
    return float(f"{nice:.12g}")


def linear_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round ticks (1, 2 or 5 times a power of ten apart) inside [lo, hi]."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [float(lo)] if np.isfinite(lo) else []
    step = nice_ceil((hi - lo) / max(n - 1, 1))
    first = math.ceil(lo / step - 1e-9) * step
    return [round(float(v), 12) for v in np.arange(first, hi + step * 1e-9, step)]


def log_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float] | None:
    """Readable ticks for a log axis over [lo, hi]: decades, else 1-2-5 steps, else round linear ones.

    d3 puts a tick at every k * 10^i on a log axis spanning a few decades, and bqplot labels each
    one, so the labels overlap. Every tick returned is positive (0 has no place on a log axis).
    None when [lo, hi] is not a positive finite range.
    """
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
        return None
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = [10.0 ** e for e in range(a, b + 1) if lo <= 10.0 ** e <= hi]
    if len(decades) >= 3:
        return decades[::math.ceil(len(decades) / max_ticks)]
    nice = [m * 10.0 ** e for e in range(a, b + 1) for m in MANTISSAS[:3] if lo <= m * 10.0 ** e <= hi]
    if len(nice) >= 2:
        return nice[::math.ceil(len(nice) / max_ticks)]
    ticks = [v for v in linear_ticks(lo, hi, 4) if v > 0]
    return ticks if len(ticks) >= 2 else [float(f"{lo:.2g}"), float(f"{hi:.2g}")] if hi > lo else [lo]


__all__ = ["GROWTH_MANTISSAS", "nice_round", "nice_ceil", "nice_floor", "linear_ticks", "log_ticks"]
