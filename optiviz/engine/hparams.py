"""Hyperparameter specs per optimizer: torch.optim's names and defaults, valid ranges, slider hints.

One table (``HPARAMS``) serves every reader: its keys are the optimizer names (``OPTIMIZERS``), the
optimizers validate with it, views build sliders from it (``slider``, ``log``, ``description``),
the stability maps take their default axes from it (``sweep``), and docs list it. Names and defaults are
torch.optim's, except that "momentum" and "nesterov" default momentum to 0.9 (torch's 0 would make
them plain SGD).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from optiviz._validate import check_choice, check_int, check_range, describe_range, dtype_limit, shown


SCALES = ("linear", "log", "log1m")  # log1m: 1 - value in log space (betas, momentum near 1)


def to_scale(values: Any, scale: str) -> np.ndarray:
    """Where values sit on a scale, where even spacing is meant: log10 v, -log10(1 - v) or v."""
    v = np.asarray(values, dtype=np.float64)
    if scale == "log":
        return np.log10(v)
    if scale == "log1m":
        return -np.log10(1.0 - v)
    return v


def from_scale(positions: Any, scale: str) -> np.ndarray:
    """The inverse of `to_scale`: values from positions on the scale."""
    s = np.asarray(positions, dtype=np.float64)
    if scale == "log":
        return 10.0 ** s
    if scale == "log1m":
        return 1.0 - 10.0 ** (-s)
    return s


@dataclass(frozen=True)
class SweepAxis:
    """The default range of a stability-map axis: `low` to `high` spaced on `scale` (one of SCALES)."""

    low: float
    high: float
    scale: str = "linear"


@dataclass(frozen=True)
class HParamSpec:
    """One hyperparameter: default, valid range (for validation) and slider range (for views).

    kind is "float" (scalar or one value per run), "int" (one whole number, e.g. a schedule's
    step_size), "bool" (a flag, one value for all runs) or "pair" (torch's ``betas``: two floats,
    each scalar or per run, each in [low, high)).
    """

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    log: bool = False
    slider: tuple[float, float] | None = None
    kind: str = "float"
    parts: tuple[str, ...] = ()
    note: str = ""  # why the range is what it is (torch's rule), added to an out-of-range message
    sweep: tuple[SweepAxis, ...] = ()  # default stability-map axis: one per value (per part of a pair)

    @property
    def range_text(self) -> str:
        return describe_range(self.low, self.high, self.low_inclusive, self.high_inclusive)

    def pair(self, value: Any, name: str | None = None) -> tuple[Any, Any]:
        """The two parts of a "pair" value, each still to be checked with `check_number`."""
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ValueError(f"{name or self.name} must be a pair ({', '.join(self.parts)}), "
                             f"each in {self.range_text}, got {shown(value)}")
        return value[0], value[1]

    def check(self, value: Any, name: str | None = None, dtype: Any = None) -> Any:
        """Validate a value (scalar or 1-D per-run array; a pair for kind "pair"); return it unchanged.
        dtype: what the run computes in (torch.float32...): a number must also fit it."""
        name = name or self.name
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {shown(value)}")
            return value
        if self.kind == "int":
            return check_int(name, value, None if self.low is None else int(self.low),
                             None if self.high is None else int(self.high))
        if self.kind == "pair":
            for i, (part, v) in enumerate(zip(self.parts, self.pair(value, name))):
                self.check_number(f"{name}[{i}] ({part})", v, dtype)
            return value
        return self.check_number(name, value, dtype)

    def check_number(self, name: str, value: Any, dtype: Any = None) -> Any:
        """One number or per-run array in this range (a part of a pair, for kind "pair"). With a
        dtype the range ends where the dtype's numbers end (torch refuses a bigger Python float as a
        float32 tensor's scalar, a bigger array element becomes inf): lr=1e39 is refused in float32."""
        check_range(name, value, self.low, self.high, low_inclusive=self.low_inclusive,
                    high_inclusive=self.high_inclusive, note=self.note)
        if dtype is not None:
            largest, dtype_name = dtype_limit(dtype)
            if self.high is None or largest < self.high:
                check_range(name, value, self.low, largest, low_inclusive=self.low_inclusive,
                            note=f"the largest {dtype_name} number: the run computes in {dtype_name}")
        return value


def _lr(default: float) -> HParamSpec:
    return HParamSpec("lr", default, "learning rate: the step size", low=0.0, low_inclusive=False,
                      log=True, slider=(1e-5, 10.0), sweep=(SweepAxis(1e-4, 1.0, "log"),))


_WD = HParamSpec("weight_decay", 0.0, "L2 penalty: adds weight_decay * x to the gradient (torch's, not AdamW's)",
                 low=0.0, slider=(0.0, 1.0), sweep=(SweepAxis(1e-6, 1.0, "log"),))


def _momentum(default: float, *, positive: bool = False, what: str = "velocity kept from the last step",
              note: str = "") -> HParamSpec:
    # a map over nesterov's momentum starts just above 0, which torch refuses for nesterov
    sweep = (SweepAxis(0.01 if positive else 0.0, 0.99),)
    return HParamSpec("momentum", default, f"momentum: fraction of the {what}", low=0.0, high=1.0,
                      low_inclusive=not positive, high_inclusive=False, slider=(0.0, 0.999), note=note,
                      sweep=sweep)


_DAMPENING = HParamSpec("dampening", 0.0, "dampening: the new gradient enters the buffer scaled by (1 - dampening)",
                        low=0.0, high=1.0, slider=(0.0, 1.0), sweep=(SweepAxis(0.0, 0.9),))


def _eps(default: float) -> HParamSpec:
    return HParamSpec("eps", default, "eps: added to the denominator (outside the square root) so it is never 0",
                      low=0.0, low_inclusive=False, log=True, slider=(1e-12, 1.0),
                      sweep=(SweepAxis(1e-10, 1e-1, "log"),))


def _table(*specs: HParamSpec) -> Mapping[str, HParamSpec]:
    return MappingProxyType({s.name: s for s in specs})


HPARAMS: Mapping[str, Mapping[str, HParamSpec]] = MappingProxyType({
    "sgd": _table(_lr(1e-3), _WD),
    "momentum": _table(_lr(1e-3), _momentum(0.9), _DAMPENING, _WD),
    # torch's rule for nesterov: momentum > 0 and dampening == 0 (the latter checked in optimizers.py).
    "nesterov": _table(_lr(1e-3), _momentum(0.9, positive=True, note="nesterov needs momentum > 0, torch.optim.SGD's rule"),
                       _DAMPENING, _WD),
    "adagrad": _table(
        _lr(1e-2),
        HParamSpec("lr_decay", 0.0, "lr decay: the step uses lr / (1 + (t - 1) * lr_decay)",
                   low=0.0, slider=(0.0, 1.0), sweep=(SweepAxis(1e-6, 1e-1, "log"),)),
        _WD,
        HParamSpec("initial_accumulator_value", 0.0,
                   "starting value of the sum of squared gradients (applies when the state is (re)set)",
                   low=0.0, slider=(0.0, 1.0)),
        _eps(1e-10),
    ),
    "rmsprop": _table(
        _lr(1e-2),
        HParamSpec("alpha", 0.99, "alpha: decay rate of the running mean of squared gradients",
                   low=0.0, high=1.0, high_inclusive=False, slider=(0.0, 0.999),
                   sweep=(SweepAxis(0.5, 0.999, "log1m"),)),
        _eps(1e-8),
        _WD,
        _momentum(0.0, what="previous normalized step kept"),
        HParamSpec("centered", False, "centered: divide by the estimated variance (subtract the squared mean gradient)",
                   kind="bool"),
    ),
    "adam": _table(
        _lr(1e-3),
        HParamSpec("betas", (0.9, 0.999), "betas: decay rates of the first and second moment estimates",
                   low=0.0, high=1.0, high_inclusive=False, slider=(0.0, 0.9999), kind="pair",
                   parts=("beta1", "beta2"), sweep=(SweepAxis(0.0, 0.99), SweepAxis(0.9, 0.9999, "log1m"))),
        _eps(1e-8),
        _WD,
        HParamSpec("amsgrad", False, "amsgrad: normalize by the running maximum of the second moment",
                   kind="bool"),
    ),
})

# The optimizer names, in the order views list them: the one list every module reads.
OPTIMIZERS: tuple[str, ...] = tuple(HPARAMS)


def defaults(optimizer: str) -> dict[str, Any]:
    """Default hyperparameters of an optimizer (torch.optim's, momentum 0.9 for momentum/nesterov)."""
    return {name: spec.default for name, spec in specs(optimizer).items()}


def specs(optimizer: str) -> Mapping[str, HParamSpec]:
    """The spec table of one optimizer; ValueError listing the known optimizers otherwise."""
    return HPARAMS[check_choice("optimizer", optimizer, HPARAMS)]


def sweep_axes(optimizer: str | None = None) -> dict[str, SweepAxis]:
    """Axis name -> default range of every hyperparameter a stability map can sweep, betas as
    "beta1" and "beta2" (the names a map's axes take), pairs last. optimizer None: every name any
    optimizer sweeps, with the first optimizer's range."""
    out: dict[str, SweepAxis] = {}
    for name in (OPTIMIZERS if optimizer is None else (optimizer,)):
        table = specs(name).values()
        for spec in sorted(table, key=lambda sp: sp.kind == "pair"):
            for axis, part in zip(spec.sweep, spec.parts or (spec.name,)):
                out.setdefault(part, axis)
    return out


# ------------------------------------------------------------------------------- training
# The CIFAR-10 trainer, the batched trainer and the training dashboard read the block below. The
# optimizer names mean what they mean above: "sgd" is plain SGD (no momentum: give "momentum" or
# "nesterov" for that), "momentum" heavy ball, "nesterov" Nesterov; torch.optim implements all
# three (torch's SGD). Only the default lrs differ, on purpose: torch's 1e-3 barely moves these nets
# in a lecture's few minutes, so the SGD family starts at 0.05 (the reference convnet recipe) and
# RMSprop at 1e-3 (as Keras).
TRAINING_LR: Mapping[str, float] = MappingProxyType(
    {"sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.01, "rmsprop": 1e-3, "adam": 1e-3})
# SGD-family lr per architecture in the dashboard (measured on the bundled subset, Nesterov 0.9, 6
# epochs): the convnet reaches the same validation accuracy at 0.02 as at 0.05 with ~0.28 instead of
# ~0.48 of its fc1 units dead, so the health line starts green; MLPs without batch norm blow up at 0.05.
DASHBOARD_SGD_LR: Mapping[str, float] = MappingProxyType({"convnet": 0.02, "mlp": 0.01, "deep_mlp": 0.01})

# the trainer's own settings besides the optimizer's (dropout, and the gradient transforms applied
# after backprop in this order: noise, clip by value, clip by norm, sign; None turns the last three off)
TRAINING_SETTINGS: Mapping[str, HParamSpec] = _table(
    HParamSpec("dropout", 0.0, "drop probability p of the dropout layers", low=0.0, high=1.0,
               high_inclusive=False, slider=(0.0, 0.95)),
    HParamSpec("grad_noise", 0.0, "gradient noise: N(0, grad_noise / (1 + t)^0.55) added to each gradient", low=0.0,
               slider=(0.0, 1.0)),
    HParamSpec("clip_value", None, "clip every gradient coordinate to [-clip_value, clip_value]", low=0.0,
               low_inclusive=False, log=True, slider=(1e-4, 10.0)),
    HParamSpec("clip_norm", None, "rescale the whole gradient to norm at most clip_norm", low=0.0,
               low_inclusive=False, log=True, slider=(1e-3, 100.0)),
    HParamSpec("sign", None, "one-bit gradients: g = sign * sign(g)", low=0.0, low_inclusive=False, log=True,
               slider=(1e-5, 1.0)),
)
# what a running net takes at its next step (the dashboard's "steer" tab); the rest starts a new run
LIVE_TRAINING_HPARAMS = ("lr", "momentum", "betas", "dropout", "weight_decay")


def torch_hparams(optimizer: str) -> tuple[str, ...]:
    """The torch.optim keywords `optimizer` takes besides lr (the names of its table)."""
    return tuple(name for name in specs(optimizer) if name != "lr")


def training_spec(optimizer: str, name: str) -> HParamSpec:
    """The spec of one setting of a training run: the optimizer's (lr with the training default) or the
    trainer's own; ValueError naming the optimizer and what it takes otherwise."""
    table = specs(optimizer)
    if name == "lr":
        return dataclasses.replace(table["lr"], default=TRAINING_LR[optimizer])
    if name in table:
        return table[name]
    if name in TRAINING_SETTINGS:
        return TRAINING_SETTINGS[name]
    hint = ' (plain SGD has none: use optimizer "momentum" or "nesterov")' if optimizer == "sgd" and name in (
        "momentum", "dampening") else ""
    raise ValueError(f"optimizer {optimizer!r} has no {name}{hint}; it takes: {', '.join(table)}, "
                     f"{', '.join(TRAINING_SETTINGS)}")


def check_first_step(optimizer: str, hparams: Mapping[str, Any], dtype: Any) -> None:
    """Adam's first step is lr / (1 - beta1) (torch's step_size: a Python float handed to the
    parameters' dtype), so it must fit the dtype too, not only lr. The other optimizers scale their
    steps by lr itself (or less). hparams: lr and betas (missing: the defaults), scalars or per run."""
    if optimizer != "adam" or dtype is None:
        return
    lr = hparams.get("lr", HPARAMS["adam"]["lr"].default)
    beta1 = (hparams.get("betas") or HPARAMS["adam"]["betas"].default)[0]
    with np.errstate(divide="ignore", over="ignore"):
        step = np.asarray(lr, dtype=np.float64) / (1.0 - np.asarray(beta1, dtype=np.float64))
    largest, dtype_name = dtype_limit(dtype)
    if np.any(step > largest):
        raise ValueError(f"adam's first step lr / (1 - beta1) must be at most {largest:g} (the largest "
                         f"{dtype_name} number: the run computes in {dtype_name}), got {np.max(step):g}: "
                         "lower lr (or beta1)")


def check_training_hparams(optimizer: str, given: Mapping[str, Any], dtype: Any = None) -> dict[str, Any]:
    """The torch.optim keywords of a training run of `optimizer`: each name checked against the
    optimizer's table and each value (scalar, or one per net for the batched trainer) against its
    range, and against `dtype` (the nets' parameters') when given; None means the default and is
    left out, except lr, which gets TRAINING_LR's. A new dict: `given` is not changed. What the
    Trainer and the ManyTrainer both build their optimizers from."""
    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        spec = training_spec(optimizer, name)
        if name in TRAINING_SETTINGS:
            raise ValueError(f"{name} is a trainer setting, not an optimizer keyword")
        out[name] = spec.check(value, name, dtype)
    out.setdefault("lr", TRAINING_LR[optimizer])
    check_first_step(optimizer, out, dtype)
    return out
