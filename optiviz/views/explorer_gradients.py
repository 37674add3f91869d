"""Turn the explorer's gradient controls (clip kind and size, lr schedule) into engine objects.

The engine's transforms act on every row; a lecture story wants to compare an optimizer with and
without clipping on the same cliff, so `build_transform` can restrict a transform to the rows of
chosen optimizers.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from optiviz._validate import check_choice, check_positive
from optiviz.engine.schedules import SCHEDULES

CLIP_KINDS = ("none", "value", "norm", "sign")
SCHEDULE_KINDS = tuple(SCHEDULES)


class OnlyRows:
    """Apply `transform` to some rows of the (R, 2) gradient and leave the others as they are."""

    def __init__(self, transform: Callable[[torch.Tensor, int], torch.Tensor], mask: torch.Tensor) -> None:
        self.transform = transform
        self.mask = mask  # (R, 1) bool

    def __call__(self, g: torch.Tensor, step: int) -> torch.Tensor:
        return torch.where(self.mask, self.transform(g, step), g)

    def __repr__(self) -> str:
        return f"OnlyRows({self.transform!r}, rows={self.mask[:, 0].nonzero().flatten().tolist()})"


def build_transform(kind: str, amount: float, sim: Any, only: Sequence[str] | None = None) -> Any:
    """None, or clip_by_value / clip_by_norm / sign at `amount`, optionally for some optimizers only."""
    from optiviz.engine import transforms

    kind = check_choice("clip", kind, CLIP_KINDS)
    if kind == "none":
        return None
    amount = float(check_positive("clip at", amount))
    transform = {"value": transforms.clip_by_value, "norm": transforms.clip_by_norm, "sign": transforms.sign}[kind](amount)
    if not only:
        return transform
    missing = [o for o in only if o not in sim.optimizers]
    if missing:
        raise ValueError(f"clip only: {', '.join(missing)} is not racing; racing: {', '.join(sim.optimizers)}")
    mask = torch.zeros(sim.rows, 1, dtype=torch.bool, device=sim.x.device)
    for o in only:
        mask[sim.rows_of(o)] = True
    return OnlyRows(transform, mask)


def build_schedule(kind: str, params: Mapping[str, Any] | None = None) -> Any:
    """None for a constant lr (the simulator's fast path), else the engine's validated schedule."""
    from optiviz.engine.schedules import make_schedule

    kind = check_choice("lr schedule", kind, SCHEDULE_KINDS)
    if kind == "constant":
        return None
    return make_schedule(kind, **dict(params or {}))
