"""The explorer's settings as plain data, and how they become engine objects.

`ExplorerConfig` is what the worker runs; a preset, the constructor's arguments and every control
change produce one. Clip kinds and schedules map to the engine's transforms and schedules here;
"none" and "constant" map to None, which the simulator treats as no work at all.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from optiviz._validate import check_choice, check_positive, shown
from optiviz.engine.hparams import HPARAMS
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.preflight import check_surface_dtype, optimizer_names
from optiviz.engine.simulator import Simulator
from optiviz.engine import transforms
from optiviz.engine.schedules import SCHEDULES, make_schedule
from optiviz.engine.surface import Surface
from optiviz.engine.surfaces import SURFACE_PARAMS
from optiviz.state import StateError
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


def clip_spec(value: Any, amount: float = 1.0) -> tuple[str, float]:
    """What a clip argument means as (kind, amount): None is ("none", 1.0), a kind alone keeps `amount`,
    else (kind, amount > 0); ValueError naming clip otherwise."""
    if value is None:
        return ("none", 1.0)
    if isinstance(value, str):
        return (check_choice("clip", value, CLIP_KINDS), float(amount))
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"clip must be a kind ({', '.join(CLIP_KINDS)}) or (kind, amount), e.g. ('norm', 1.0), "
                         f"got {shown(value)}")
    return (check_choice("clip", value[0], CLIP_KINDS), float(check_positive("clip amount", value[1])))


def optimizer_list(value: Any) -> tuple[str, ...]:
    """A name or a list of names of OPTIMIZERS, checked (an empty list is the simulator's to refuse)."""
    return tuple(check_choice("optimizer", name, OPTIMIZERS) for name in optimizer_names(value))


def checked_start(surface: Surface, value: Any) -> tuple[float, float]:
    """A start point (x, y) inside the surface's domain, the same rule for the constructor, set() and a click."""
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"start must be a point (x, y), got {shown(value)}") from None
    (x0, x1), (y0, y1) = surface.domain
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        raise ValueError(f"start ({x:.3g}, {y:.3g}) is outside the surface's domain "
                         f"x in [{x0:g}, {x1:g}], y in [{y0:g}, {y1:g}]: click inside the map")
    return (x, y)


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
    given_surface: bool = False  # a Surface object was given: its settings are not known by name


def get_preset(name: str) -> Preset:
    """A preset by name; ValueError listing them otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {shown(name)}; presets: {', '.join(PRESETS)}")
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
    if not isinstance(given, Mapping) or not all(isinstance(v, Mapping) for v in given.values()):
        raise TypeError(f'hparams must map optimizer names to dicts of settings, e.g. {{"adam": {{"lr": 0.1}}}}, '
                        f"got {shown(given)}")
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


def setting_of(cfg: ExplorerConfig, surface: Surface, seed: int, preset: str | None) -> dict[str, Any]:
    """What a shared explorer setting holds: the config, with only the hyperparameters that differ from
    what the surface suggests (the rest is derived), the seed, and the story's name for its caption."""
    if cfg.given_surface:
        raise ValueError("this explorer runs a Surface object, which a shared setting cannot name: build it "
                         "with the surface's name and parameters or its formula, e.g. "
                         "SurfaceExplorer('quadratic', condition=100)")
    defaults = full_hparams(surface, OPTIMIZERS, {})
    changed = {o: {k: v for k, v in hp.items() if v != defaults[o].get(k)} for o, hp in cfg.hparams.items()}
    if cfg.shared_lr is not None:  # one lr for every racing optimizer: said once, as "lr"
        for o in cfg.optimizers:
            changed[o].pop("lr", None)
    return {"surface": cfg.surface, "surface_params": dict(cfg.surface_params), "optimizers": list(cfg.optimizers),
            "hparams": {o: hp for o, hp in changed.items() if hp}, "lr": cfg.shared_lr, "start": cfg.start,
            "grad_noise": cfg.grad_noise, "clip": list(cfg.clip), "schedule": [cfg.schedule[0], dict(cfg.schedule[1])],
            "speed": cfg.speed, "seed": seed, "preset": preset}


def setting_args(setting: Mapping[str, Any]) -> dict[str, Any]:
    """The explorer constructor's arguments for a checked setting (keys not given keep its defaults)."""
    known = {p for ps in SURFACE_PARAMS.values() for p in ps}  # no other keyword gets in
    params = dict(setting.get("surface_params", {}))
    unknown = sorted(set(params) - known)
    if unknown:
        raise StateError(f"state: surface_params has an unknown parameter {unknown[0]!r}; surfaces take "
                         f"{', '.join(sorted(known))}")
    args = {k: setting[k] for k in ("surface", "optimizers", "hparams", "lr", "start", "grad_noise", "speed", "seed")
            if k in setting}
    if "clip" in setting:
        args["clip"] = tuple(setting["clip"])
    if "schedule" in setting:
        args["schedule"] = (setting["schedule"][0], dict(setting["schedule"][1]))
    return {**args, **params}


def build_simulator(cfg: ExplorerConfig, surface: Surface, *, device: str = "cpu", seed: int = 0) -> Simulator:
    """The explorer's engine for a setting: one row per racing optimizer (N=1), float32, from its start
    (a shared lr given to every optimizer). Live runs and exports are built here, so they agree."""
    hparams = {o: dict(cfg.hparams[o]) for o in cfg.optimizers}
    if cfg.shared_lr is not None:
        for hp in hparams.values():
            hp["lr"] = cfg.shared_lr
    check_surface_dtype(surface, torch.float32, fix="a formula whose values stay within float32 on the plot "
                        "(a lower power, a smaller factor)")
    start = np.array([cfg.start if cfg.start is not None else surface.start], dtype=np.float64)
    return Simulator(surface, cfg.optimizers, start=start, n=1, hparams=hparams, grad_noise=cfg.grad_noise,
                     schedule=build_schedule(*cfg.schedule), transforms=build_transform(*cfg.clip),
                     device=device, dtype=torch.float32, seed=seed)
