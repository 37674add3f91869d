""""A scalar or one value per run": how every engine parameter may be given, read in one place.

The optimizers (lr, momentum, ...), the gradient transforms (g_max, max_norm, eta, ...) and the
simulator (grad_noise) all accept a number for every run or one value per run, so a sweep is one
tensor op. They all turn what they were given into a float or a float64 (N,) array here, with the
same error messages.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from optiviz._validate import check_range


def per_run(name: str, value: Any, n: int | None = None,
            check: Callable[[str, Any], Any] | None = None) -> float | np.ndarray:
    """`value` as a float (same for every run) or a float64 (N,) array (one value per run).

    Accepts numbers, sequences, numpy arrays and tensors, and (N, 1) columns (what an optimizer's
    ``hparams`` returns). `check(name, value)` validates the range first (default: any finite
    number); with `n`, an array must have exactly n values.
    """
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] == 1:
        value = value[:, 0]
    (check or check_range)(name, value)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return float(arr)
    check_runs(name, arr.shape[0], n)
    return arr


def check_runs(name: str, length: int, n: int | None) -> None:
    """A per-run array must have one value per run: n of them (n None: any length)."""
    if n is not None and length != n:
        raise ValueError(f"{name} must be a scalar or have one value per run (length {n}), got length {length}")


__all__ = ["per_run", "check_runs"]
