"""One place for the checks that turn bad input into a ValueError naming the parameter and the allowed range.

Every public entry point (engine, trainer, views) validates through these helpers so the
messages read the same everywhere and a widget can show them verbatim.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

MAX_SHOWN = 80  # characters of a value a message repeats: a pasted megabyte must not come back whole


def shown(value: Any) -> str:
    """repr(value) for a message, cut to MAX_SHOWN characters (with the full length said)."""
    text = repr(value)
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[:MAX_SHOWN - 24]}... ({len(text):,} characters)"


def dtype_limit(dtype: Any) -> tuple[float, str]:
    """The largest finite number of a floating dtype (a torch or numpy one) and the dtype's name."""
    name = str(dtype).removeprefix("torch.")
    if type(dtype).__module__ == "torch":  # a torch.dtype: torch is imported already
        import torch

        return float(torch.finfo(dtype).max), name
    return float(np.finfo(dtype).max), name


def check_fits(name: str, value: Any, dtype: Any) -> Any:
    """A number (or per-run array) that a run computing in `dtype` can hold: |value| at most the
    dtype's largest finite number (torch refuses to turn a bigger Python float into a float32
    tensor's scalar, and a bigger array element becomes inf). Returns it unchanged."""
    largest, dtype_name = dtype_limit(dtype)
    arr = _as_array(name, value)
    big = np.abs(arr) > largest
    if np.any(big):
        raise ValueError(f"{name} must be at most {largest:g} in size (the largest {dtype_name} number: "
                         f"the run computes in {dtype_name}), got {arr[big].flat[0]:g}")
    return value


def _as_array(name: str, value: Any) -> np.ndarray:
    if value is None:
        raise ValueError(f"{name} must be a number or an array of numbers, got None")
    try:
        arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {shown(value)}") from None
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array (one value per run), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {shown(value)}")
    return arr


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    note: str = "",
) -> Any:
    """Check a scalar or per-run array lies in [low, high] (ends open or closed); return it unchanged.

    note: why the range is what it is, added to the out-of-range message (e.g. torch's rule)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {shown(value)}")
    arr = _as_array(name, value)
    bad = np.zeros(arr.shape, dtype=bool)
    if low is not None:
        bad |= (arr < low) if low_inclusive else (arr <= low)
    if high is not None:
        bad |= (arr > high) if high_inclusive else (arr >= high)
    if np.any(bad):
        first = arr[bad].flat[0]
        why = f" ({note})" if note else ""
        raise ValueError(f"{name} must be in {describe_range(low, high, low_inclusive, high_inclusive)}, got {first:g}{why}")
    return value


def describe_range(low: float | None, high: float | None, low_inclusive: bool = True, high_inclusive: bool = True) -> str:
    lo = "(-inf" if low is None else ("[" if low_inclusive else "(") + f"{low:g}"
    hi = "inf)" if high is None else f"{high:g}" + ("]" if high_inclusive else ")")
    return f"{lo}, {hi}"


def check_positive(name: str, value: Any) -> Any:
    """lr, eps, batch size...: strictly greater than zero."""
    return check_range(name, value, 0.0, None, low_inclusive=False)


def check_unit_interval(name: str, value: Any) -> Any:
    """momentum, betas, dropout p: in [0, 1)."""
    return check_range(name, value, 0.0, 1.0, high_inclusive=False)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {shown(value)}")
    check_range(name, value, low, high)
    return int(value)


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"unknown {name} {shown(value)}; allowed: {', '.join(allowed)}")
    return value.lower()


def check_finite_float(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {shown(value)}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {shown(value)}")
    return out
