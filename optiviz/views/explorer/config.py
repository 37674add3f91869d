"""The explorer's settings as plain data, and how they become engine objects.

`ExplorerConfig` is what the worker runs; a preset, the constructor's arguments and every control
change produce one. Clip kinds and schedules map to the engine's transforms and schedules here;
"none" and "constant" map to None, which the simulator treats as no work at all.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optiviz._validate import check_choice, check_positive
from optiviz.engine.hparams import HPARAMS
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine import transforms
from optiviz.engine.schedules import SCHEDULES, make_schedule
from optiviz.engine.surface import Surface
from optiviz.views.explorer.presets import PRESETS, Preset

CLIP_KINDS = ("none", "value", "norm", "sign")
SCHEDULE_KINDS = tuple(SCHEDULES)


def build_transform(kind: str, amount: float) -> Any:
    """None (no transform: the simulator's fast path), or clip_by_value / clip_by_norm / sign at `amount`."""
    kind = check_choice("clip", kind, CLIP_KINDS)
    if kind == "none":
        return None
    amount = float(check_positive("clip at", amount))
    return {"value": transforms.clip_by_value, "norm": transforms.clip_by_norm, "sign": transforms.sign}[kind](amount)


def build_schedule(kind: str, params: Mapping[str, Any] | None = None) -> Any:
    """None for a constant lr (the simulator's fast path), else the engine's validated schedule."""
    kind = check_choice("lr schedule", kind, SCHEDULE_KINDS)
    if kind == "constant":
        return None
    return make_schedule(kind, **dict(params or {}))


@dataclass
class ExplorerConfig:
    """What the engine runs: owned by the worker (changed only in `_apply`)."""

    surface: str = "quadratic"
    surface_params: dict[str, Any] = field(default_factory=dict)
    optimizers: tuple[str, ...] = ("sgd", "momentum")
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    start: tuple[float, float] | None = None
    grad_noise: float = 0.0
    clip: tuple[str, float] = ("none", 1.0)
    schedule: tuple[str, dict[str, Any]] = ("constant", {})
    speed: int = 2
    shared_lr: float | None = None  # a number: every optimizer uses it


def get_preset(name: str) -> Preset:
    """A preset by name; ValueError listing them otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_config(p: Preset) -> ExplorerConfig:
    """The settings a story runs (hyperparameters not named take the defaults later)."""
    return ExplorerConfig(
        surface=p.surface, surface_params=dict(p.surface_params), optimizers=tuple(p.optimizers),
        hparams={o: dict(hp) for o, hp in p.hparams.items()}, start=p.start, grad_noise=p.grad_noise,
        clip=tuple(p.clip), schedule=(p.schedule[0], dict(p.schedule[1])), speed=p.speed,
    )


def full_hparams(surface: Surface, names: Sequence[str], given: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every optimizer's complete hyperparameters: spec defaults, the surface's lr, then `given`."""
    unknown = set(given) - set(OPTIMIZERS)
    if unknown:
        raise ValueError(f"hparams names unknown optimizers {sorted(unknown)}; known: {', '.join(OPTIMIZERS)}")
    out = {}
    for o in names:
        hp = {name: spec.default for name, spec in HPARAMS[o].items()}
        if o in surface.lrs:
            hp["lr"] = surface.lrs[o]
        hp.update(given.get(o, {}))
        out[o] = hp
    return out


