"""Early stopping with look-ahead (patience): stop when the validation curve has not improved for p
evaluations, and keep the weights of its best evaluation.

The lectures: "stop when validation error starts to rise (with some look-ahead)". A curve is noisy,
so stopping at its first rise would stop too soon; patience p waits p evaluations for a new best.
The weights kept are those of the best evaluation before the stop, not the last ones: the
trainer keeps a copy of them (BestWeights) so they can be restored at the end.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from optiviz._validate import check_choice, check_finite_float, check_int, shown

MODES = ("min", "max")  # min: a loss or an error; max: an accuracy


@dataclass(frozen=True)
class EarlyStop:
    """Where patience p stops a curve and which evaluation's weights it keeps.

    stop / kept are indices into the curve (stop None: patience never ran out, the run goes to its
    end); stop_at / kept_at are the same evaluations on the curve's x axis (steps or epochs).
    """

    patience: int
    mode: str
    stop: int | None
    kept: int
    kept_value: float
    stop_at: float | None
    kept_at: float

    @property
    def stopped(self) -> bool:
        return self.stop is not None

    def describe(self) -> str:
        where = f"stops at {self.stop_at:g}" if self.stopped else "never stops (patience not exhausted)"
        return f"patience {self.patience}: {where}, keeps the weights of {self.kept_at:g} ({self.kept_value:.4g})"


def _better(mode: str, value: float, best: float, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if not math.isfinite(best):
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def early_stopping(
    val_curve: Sequence[float] | np.ndarray,
    patience: int = 5,
    *,
    steps: Sequence[float] | np.ndarray | None = None,
    mode: str = "min",
    min_delta: float = 0.0,
) -> EarlyStop:
    """Where patience `patience` would stop `val_curve` and which evaluation it keeps.

    An evaluation improves on the best so far when it is lower by more than min_delta (mode "min",
    a loss) or higher (mode "max", an accuracy); NaN never improves. The run stops at the
    evaluation that makes `patience` evaluations in a row without improvement (patience 1: at the
    first one; Keras's EarlyStopping and Goodfellow et al.'s algorithm 7.1). steps: the curve's x values (default 1, 2, ...: epochs).
    """
    curve = np.asarray(val_curve, dtype=np.float64).reshape(-1)
    if curve.size == 0:
        raise ValueError("val_curve must hold at least one evaluation, got none")
    patience = check_int("patience", patience, 1)
    mode = check_choice("mode", mode, MODES)
    min_delta = check_finite_float("min_delta", min_delta)
    if min_delta < 0:
        raise ValueError(f"min_delta must be in [0, inf), got {shown(min_delta)}")
    xs = np.arange(1, curve.size + 1, dtype=np.float64) if steps is None else np.asarray(steps, dtype=np.float64).reshape(-1)
    if xs.shape != curve.shape:
        raise ValueError(f"steps must have one value per evaluation ({curve.size}), got {xs.size}")
    best, best_value, wait, stop = 0, math.nan, 0, None
    for i, value in enumerate(curve):
        if _better(mode, float(value), best_value, min_delta):
            best, best_value, wait = i, float(value), 0
        else:
            wait += 1
        if wait >= patience:
            stop = i
            break
    return EarlyStop(patience, mode, stop, best, float(curve[best]), None if stop is None else float(xs[stop]),
                     float(xs[best]))


class BestWeights:
    """A copy of a model's state at its best evaluation so far: offer() after each one, restore() at the end."""

    def __init__(self, mode: str = "min") -> None:
        self.mode = check_choice("mode", mode, MODES)
        self.state: dict[str, torch.Tensor] | None = None
        self.step: int | None = None
        self.value = math.nan

    def offer(self, step: int, value: float, model: nn.Module) -> bool:
        """Keep the model's weights if `value` is the best so far; True when it was."""
        if not _better(self.mode, float(value), self.value, 0.0):
            return False
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.step, self.value = int(step), float(value)
        return True

    def restore(self, model: nn.Module) -> int:
        """Load the kept weights into `model`; returns the step they are from."""
        if self.state is None or self.step is None:
            raise ValueError("no weights kept yet: there has been no validation with a finite value")
        model.load_state_dict(self.state)
        return self.step

    def copy(self) -> BestWeights:
        out = BestWeights(self.mode)
        out.state = None if self.state is None else {k: v.clone() for k, v in self.state.items()}
        out.step, out.value = self.step, self.value
        return out

    def __repr__(self) -> str:
        return f"BestWeights(mode={self.mode!r}, step={self.step}, value={self.value:.4g})"


def patience_table(val_curve: Any, patiences: Sequence[int], *, steps: Any = None, mode: str = "min") -> list[EarlyStop]:
    """early_stopping for each patience: how far the look-ahead lets a run go, and what it keeps."""
    return [early_stopping(val_curve, p, steps=steps, mode=mode) for p in patiences]


__all__ = ["MODES", "EarlyStop", "early_stopping", "BestWeights", "patience_table"]
