"""Hyperparameter specs per optimizer: torch.optim's names and defaults, valid ranges, slider hints.

One table (``HPARAMS``) serves three readers: the optimizers validate with it, views build sliders
from it (``slider``, ``log``, ``description``), and docs list it. Names and defaults are
torch.optim's, except that "momentum" and "nesterov" default momentum to 0.9 (torch's 0 would make
them plain SGD).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from optiviz._validate import check_choice, check_int, check_range, describe_range


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

    @property
    def range_text(self) -> str:
        return describe_range(self.low, self.high, self.low_inclusive, self.high_inclusive)

    def check(self, value: Any, name: str | None = None) -> Any:
        """Validate a value (scalar or 1-D per-run array; a pair for kind "pair"); return it unchanged."""
        name = name or self.name
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
            return value
        if self.kind == "int":
            return check_int(name, value, None if self.low is None else int(self.low),
                             None if self.high is None else int(self.high))
        if self.kind == "pair":
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ValueError(f"{name} must be a pair ({', '.join(self.parts)}), each in {self.range_text}, got {value!r}")
            for i, (part, v) in enumerate(zip(self.parts, value)):
                self._check_number(f"{name}[{i}] ({part})", v)
            return value
        return self._check_number(name, value)

    def _check_number(self, name: str, value: Any) -> Any:
        return check_range(name, value, self.low, self.high,
                           low_inclusive=self.low_inclusive, high_inclusive=self.high_inclusive)


def _lr(default: float) -> HParamSpec:
    return HParamSpec("lr", default, "learning rate: the step size", low=0.0, low_inclusive=False,
                      log=True, slider=(1e-5, 10.0))


_WD = HParamSpec("weight_decay", 0.0, "L2 penalty: adds weight_decay * x to the gradient (torch's, not AdamW's)",
                 low=0.0, slider=(0.0, 1.0))


def _momentum(default: float, *, positive: bool = False, what: str = "velocity kept from the last step") -> HParamSpec:
    return HParamSpec("momentum", default, f"momentum: fraction of the {what}", low=0.0, high=1.0,
                      low_inclusive=not positive, high_inclusive=False, slider=(0.0, 0.999))


_DAMPENING = HParamSpec("dampening", 0.0, "dampening: the new gradient enters the buffer scaled by (1 - dampening)",
                        low=0.0, high=1.0, slider=(0.0, 1.0))


def _eps(default: float) -> HParamSpec:
    return HParamSpec("eps", default, "eps: added to the denominator (outside the square root) so it is never 0",
                      low=0.0, low_inclusive=False, log=True, slider=(1e-12, 1.0))


def _table(*specs: HParamSpec) -> Mapping[str, HParamSpec]:
    return MappingProxyType({s.name: s for s in specs})


HPARAMS: Mapping[str, Mapping[str, HParamSpec]] = MappingProxyType({
    "sgd": _table(_lr(1e-3), _WD),
    "momentum": _table(_lr(1e-3), _momentum(0.9), _DAMPENING, _WD),
    # torch's rule for nesterov: momentum > 0 and dampening == 0 (checked in optimizers.py).
    "nesterov": _table(_lr(1e-3), _momentum(0.9, positive=True), _DAMPENING, _WD),
    "adagrad": _table(
        _lr(1e-2),
        HParamSpec("lr_decay", 0.0, "lr decay: the step uses lr / (1 + (t - 1) * lr_decay)",
                   low=0.0, slider=(0.0, 1.0)),
        _WD,
        HParamSpec("initial_accumulator_value", 0.0,
                   "starting value of the sum of squared gradients (applies when the state is (re)set)",
                   low=0.0, slider=(0.0, 1.0)),
        _eps(1e-10),
    ),
    "rmsprop": _table(
        _lr(1e-2),
        HParamSpec("alpha", 0.99, "alpha: decay rate of the running mean of squared gradients",
                   low=0.0, high=1.0, high_inclusive=False, slider=(0.0, 0.999)),
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
                   parts=("beta1", "beta2")),
        _eps(1e-8),
        _WD,
        HParamSpec("amsgrad", False, "amsgrad: normalize by the running maximum of the second moment",
                   kind="bool"),
    ),
})


def defaults(optimizer: str) -> dict[str, Any]:
    """Default hyperparameters of an optimizer (torch.optim's, momentum 0.9 for momentum/nesterov)."""
    return {name: spec.default for name, spec in specs(optimizer).items()}


def specs(optimizer: str) -> Mapping[str, HParamSpec]:
    """The spec table of one optimizer; ValueError listing the known optimizers otherwise."""
    return HPARAMS[check_choice("optimizer", optimizer, HPARAMS)]
