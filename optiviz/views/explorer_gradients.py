"""Turn the explorer's gradient controls (clip kind and size, lr schedule) into engine objects.

"none" and "constant" map to None, which the simulator treats as no work at all.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optiviz._validate import check_choice, check_positive
from optiviz.engine.schedules import SCHEDULES

CLIP_KINDS = ("none", "value", "norm", "sign")
SCHEDULE_KINDS = tuple(SCHEDULES)


def build_transform(kind: str, amount: float) -> Any:
    """None (no transform: the simulator's fast path), or clip_by_value / clip_by_norm / sign at `amount`."""
    from optiviz.engine import transforms

    kind = check_choice("clip", kind, CLIP_KINDS)
    if kind == "none":
        return None
    amount = float(check_positive("clip at", amount))
    return {"value": transforms.clip_by_value, "norm": transforms.clip_by_norm, "sign": transforms.sign}[kind](amount)


def build_schedule(kind: str, params: Mapping[str, Any] | None = None) -> Any:
    """None for a constant lr (the simulator's fast path), else the engine's validated schedule."""
    from optiviz.engine.schedules import make_schedule

    kind = check_choice("lr schedule", kind, SCHEDULE_KINDS)
    if kind == "constant":
        return None
    return make_schedule(kind, **dict(params or {}))
