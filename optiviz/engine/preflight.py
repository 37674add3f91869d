"""What a simulation's arguments must satisfy before anything is allocated or stepped.

The Simulator (and through it simulate, the stability and basin maps and the explorer) calls these
in its constructor and before recording a path, so a bad argument is a ValueError (TypeError for a
value of the wrong type) that names the argument and what it may be, never a raw torch or numpy
error or an allocation that takes the machine down. No status or divergence logic lives here.

A surface whose loss over its domain exceeds what the run's dtype holds (``x**100 + y**2`` reaches
1e70 on the default domain; float32 holds 3.4e38) is refused in that dtype with what to do: run it
in float64 (``dtype=torch.float64``) or give a smaller domain. It would otherwise start at an
infinite loss and read "diverged at step 0", which says nothing about the optimizer.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from optiviz._validate import dtype_limit, shown
from optiviz.engine.devices import check_allocation
from optiviz.engine.hparams import HPARAMS, OPTIMIZERS
from optiviz.engine.surface import Surface

FIT_GRID = 64  # points a side where a surface's values are checked against the dtype
# floats a row of the simulator holds (x, its previous value, gradient, steered gradient, loss,
# optimizer state and work buffers), a generous count: the estimate only has to be the right size
_FLOATS_PER_ROW = 40


def optimizer_names(optimizers: Any) -> tuple[str, ...]:
    """A name or a sequence of names as a tuple (not yet checked against OPTIMIZERS)."""
    if isinstance(optimizers, str):
        return (optimizers,)
    if isinstance(optimizers, Sequence) and all(isinstance(o, str) for o in optimizers):
        return tuple(optimizers)
    raise TypeError(f"optimizers must be a name or a list of names of {', '.join(OPTIMIZERS)}, got {shown(optimizers)}")


def check_hparams_arg(hparams: Any, shared: Mapping[str, Any]) -> None:
    """hparams={"adam": {"lr": 0.1}} is a mapping of mappings, and every `betas` given (shared or
    per optimizer) is a pair: the rest is checked by the optimizers themselves."""
    if hparams is not None:
        if not isinstance(hparams, Mapping) or not all(isinstance(v, Mapping) for v in hparams.values()):
            raise TypeError(f'hparams must map optimizer names to dicts of settings, e.g. {{"adam": {{"lr": 0.1}}}}, '
                            f"got {shown(hparams)}")
    givens = [shared] + ([] if hparams is None else list(hparams.values()))
    for given in givens:
        if "betas" in given:
            HPARAMS["adam"]["betas"].pair(given["betas"])  # ValueError: betas must be a pair (beta1, beta2)


def check_start(start: Any) -> None:
    """A start is one point or a non-empty (N, 2) array (the rest of its checks are the simulator's)."""
    try:
        arr = np.asarray(start, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"start must be a point (x, y) or an (N, 2) array of points, got {shown(start)}") from None
    if arr.size == 0:
        raise ValueError(f"start must hold at least one point (x, y), got an empty array of shape {arr.shape}")


def check_surface_dtype(surface: Surface, dtype: torch.dtype, fix: str | None = None) -> None:
    """The surface's loss over its domain (a FIT_GRID x FIT_GRID grid, in float64) fits `dtype`;
    `fix` replaces the advice (a view that always runs float32 has no dtype to offer)."""
    largest, name = dtype_limit(dtype)
    z = surface.grid(FIT_GRID)[2]
    z = np.abs(z[np.isfinite(z)])
    top = float(z.max()) if z.size else 0.0
    if top > largest:
        (x0, x1), (y0, y1) = surface.domain
        where = f"x in [{x0:g}, {x1:g}], y in [{y0:g}, {y1:g}]"
        if fix is None:
            fix = "a smaller domain (domain=((x0, x1), (y0, y1)))"
            if top <= dtype_limit(torch.float64)[0] and dtype != torch.float64:
                fix = f"dtype=torch.float64, or {fix}"
        label = surface.title if surface.name == "expression" else surface.name  # the formula, for a user's
        raise ValueError(f"surface {shown(label)} reaches {top:.3g} on its domain ({where}), more than {name} "
                         f"holds ({largest:.3g}): the run would start from an infinite loss; use {fix}")


def check_rows(rows: int, n: int, k: int, dtype: torch.dtype, device: torch.device) -> None:
    """The simulator's state for `rows` runs fits in free memory."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    check_allocation(f"{_runs(rows)} ({k} optimizer(s) x n={n:,})", rows * (_FLOATS_PER_ROW * itemsize + 16) + n * 16,
                     device, "run fewer settings or start points at once")


def check_record(steps: int, rows: int, dtype: torch.dtype, device: torch.device) -> None:
    """Recording `steps` steps of every row (points, losses and their host copies) fits in free memory."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    check_allocation(f"steps={steps:,} recorded for {_runs(rows)}", 2.0 * steps * rows * 4 * itemsize, device,
                     "ask for fewer steps at a time (the map functions and advance(record=False) keep no path)")


def _runs(rows: int) -> str:
    return f"{rows:,} run" + ("" if rows == 1 else "s")


__all__ = ["optimizer_names", "check_hparams_arg", "check_start", "check_surface_dtype", "check_rows", "check_record"]
