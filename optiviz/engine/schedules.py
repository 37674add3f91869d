"""Learning-rate schedules from the lectures, as multipliers of the base lr.

``make_schedule(kind, **params)`` returns a callable ``step -> multiplier``; the optimizer's lr at
a step is ``lr * multiplier`` (pass it as ``opt.step(x, g, lr_scale=...)``), which is what torch's
``group['lr']`` holds under ``LambdaLR(opt, schedule)``.

Step index: ``step`` is the number of steps already taken, 0 for the first update (torch's
``LambdaLR`` evaluates lambda(0) for the first ``opt.step()``; the optimizer's ``opt.t`` before the
step). Every schedule starts at multiplier 1, i.e. at the base lr ``a0``:

- constant:      1
- step:          gamma ** (step // step_size)          (default: halve every 100 steps)
- exponential:   exp(-k * step)                         (a = a0 exp(-k t))
- inverse_time:  1 / (1 + k * step)                     (a = a0 / (1 + k t))
- linear:        (1 - step/tau) + (step/tau) * end_factor until tau, then end_factor

A schedule also accepts a numpy array of steps and returns an array (for drawing the curve).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from optiviz._validate import check_choice
from optiviz.engine.hparams import HParamSpec

SCHEDULES = ("constant", "step", "exponential", "inverse_time", "linear")

_K = HParamSpec("k", 0.01, "decay rate per step", low=0.0, slider=(0.0, 0.1))

SCHEDULE_PARAMS: Mapping[str, Mapping[str, HParamSpec]] = MappingProxyType({
    "constant": MappingProxyType({}),
    "step": MappingProxyType({
        "step_size": HParamSpec("step_size", 100, "steps between drops", low=1, slider=(1, 1000), kind="int"),
        "gamma": HParamSpec("gamma", 0.5, "factor applied at each drop (0.5 halves)", low=0.0, high=1.0,
                            low_inclusive=False, slider=(0.01, 1.0)),
    }),
    "exponential": MappingProxyType({"k": _K}),
    "inverse_time": MappingProxyType({"k": _K}),
    "linear": MappingProxyType({
        "tau": HParamSpec("tau", 1000, "steps over which lr falls linearly", low=1, slider=(1, 10000), kind="int"),
        "end_factor": HParamSpec("end_factor", 0.01, "multiplier reached at step tau and kept after",
                                 low=0.0, high=1.0, slider=(0.0, 1.0)),
    }),
})


def _constant(p: Mapping[str, Any], t: Any, xp: Any) -> Any:
    return t * 0.0 + 1.0


def _step(p: Mapping[str, Any], t: Any, xp: Any) -> Any:
    return p["gamma"] ** (t // p["step_size"])


def _exponential(p: Mapping[str, Any], t: Any, xp: Any) -> Any:
    return xp.exp(-p["k"] * t)


def _inverse_time(p: Mapping[str, Any], t: Any, xp: Any) -> Any:
    return 1.0 / (1.0 + p["k"] * t)


def _linear(p: Mapping[str, Any], t: Any, xp: Any) -> Any:
    tau, end = p["tau"], p["end_factor"]
    frac = xp.minimum(t / tau, 1.0) if xp is np else min(t / tau, 1.0)
    return (1.0 - frac) + frac * end


# kind -> rule(params, t, xp): the lr factor at step t, with xp = math for a number, np for an array
_RULES: Mapping[str, Callable[[Mapping[str, Any], Any, Any], Any]] = MappingProxyType({
    "constant": _constant, "step": _step, "exponential": _exponential, "inverse_time": _inverse_time,
    "linear": _linear,
})


class Schedule:
    """A validated lr multiplier ``step -> float`` (or array -> array)."""

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.kind = kind
        self.params = params
        self._rule = _RULES[kind]

    def __call__(self, step: Any) -> Any:
        if isinstance(step, np.ndarray):
            if np.any(step < 0):
                raise ValueError(f"step must be in [0, inf) (steps already taken), got {step.min():g}")
            return self._rule(self.params, step.astype(np.float64), np)
        if step < 0:
            raise ValueError(f"step must be in [0, inf) (steps already taken), got {step}")
        return float(self._rule(self.params, step, math))

    def __repr__(self) -> str:
        args = "".join(f", {k}={v:g}" for k, v in self.params.items())
        return f"make_schedule({self.kind!r}{args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and (self.kind, self.params) == (other.kind, other.params)


def make_schedule(kind: str, **params: Any) -> Schedule:
    """A validated schedule; unknown kinds or parameters raise ValueError listing the allowed ones."""
    kind = check_choice("schedule", kind, SCHEDULES)
    specs = SCHEDULE_PARAMS[kind]
    unknown = [k for k in params if k not in specs]
    if unknown:
        allowed = ", ".join(specs) if specs else "(none)"
        raise ValueError(f"unknown parameter {unknown[0]!r} for schedule {kind}; allowed: {allowed}")
    values = {}
    for name, spec in specs.items():
        value = params.get(name, spec.default)
        if spec.kind == "float" and np.ndim(value) != 0:
            raise ValueError(f"{name} must be a single number, got {value!r}")
        spec.check(value)
        values[name] = int(value) if spec.kind == "int" else float(value)
    return Schedule(kind, values)


def schedule_spec(schedule: Any) -> tuple[str, dict[str, Any]]:
    """None, a name, or (name, params) -> (name, params), what controls show and a view's state
    keeps; the name is checked here, the parameters by make_schedule."""
    if schedule is None:
        return ("constant", {})
    if isinstance(schedule, str):
        return (check_choice("schedule", schedule, SCHEDULES), {})
    if isinstance(schedule, (tuple, list)) and len(schedule) == 2 and isinstance(schedule[0], str) \
            and isinstance(schedule[1], Mapping):
        return (check_choice("schedule", schedule[0], SCHEDULES), dict(schedule[1]))
    raise ValueError(f"schedule must be a name ({', '.join(SCHEDULES)}) or (name, params), got {schedule!r}")


def as_schedule(schedule: Any) -> Callable[[int], float] | None:
    """Every form a schedule argument takes: None, a name, (name, params) or a callable step -> lr factor."""
    if schedule is None:
        return None
    if callable(schedule) and not isinstance(schedule, (str, tuple, list)):
        return schedule
    try:
        kind, params = schedule_spec(schedule)
    except ValueError:
        raise ValueError(f"schedule must be a name ({', '.join(SCHEDULES)}), (name, params) or a callable "
                         f"step -> lr factor, got {schedule!r}") from None
    return make_schedule(kind, **params)
