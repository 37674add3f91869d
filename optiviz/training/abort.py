"""The lectures' early-abort rule for training runs: stop once the loss is not finite or is above
`factor` x the first step's loss (3x by default). One place for it, so one net and K nets at once
abort alike. (2D surfaces measure the same 3x above the surface's minimum: see
`Surface.divergence_threshold`.)"""
from __future__ import annotations

import math
from typing import Any

import torch

from optiviz._validate import check_range

DIVERGENCE_FACTOR = 3.0


def check_divergence_factor(value: Any) -> float | None:
    """None (never abort for size) or a number above 1."""
    return None if value is None else float(check_range("divergence_factor", value, 1.0, low_inclusive=False))


def diverging(loss: torch.Tensor, initial: torch.Tensor, factor: float | None) -> torch.Tensor:
    """Per run, whether this loss calls for an abort (a bool tensor shaped like loss)."""
    bad = ~torch.isfinite(loss)
    if factor is not None:
        bad |= loss > factor * initial
    return bad


def divergence_reason(loss: float, initial: float, factor: float | None, step: int) -> str | None:
    """For one run: why it aborts at this step, in words, or None when it goes on."""
    if not math.isfinite(loss):
        return f"loss is {loss} at step {step}"
    if bool(diverging(torch.tensor(loss), torch.tensor(initial), factor)):
        return f"loss {loss:.4g} at step {step} exceeded {factor:g}x the initial loss {initial:.4g}"
    return None
