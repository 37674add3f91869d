"""The lectures' stories as one-click settings of the surface explorer.

Each preset is plain data (surface, optimizers, hyperparameters, gradient transforms) plus the
one-line caption the explorer shows, so a lecturer can tell the story without touching a slider.
Learning rates were chosen by running them (tests/test_surface_explorer.py checks the outcome
each caption promises).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


@dataclass(frozen=True)
class Preset:
    """Everything a story sets; what it leaves out takes the explorer's defaults."""

    title: str
    caption: str
    surface: str
    optimizers: tuple[str, ...]
    hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    surface_params: Mapping[str, Any] = field(default_factory=dict)
    start: tuple[float, float] | None = None
    grad_noise: float = 0.0
    clip: tuple[str, float] = ("none", 1.0)
    schedule: tuple[str, Mapping[str, Any]] = ("constant", {})
    speed: int = 2


PRESETS: Mapping[str, Preset] = MappingProxyType({
    "narrow_valley": Preset(
        "Narrow valley: SGD vs momentum",
        "Same lr: SGD jitters across the steep direction and crawls along the shallow one; "
        "momentum overshoots, then gets there almost three times sooner.",
        "quadratic", ("sgd", "momentum"),
        {"sgd": {"lr": 0.018}, "momentum": {"lr": 0.018, "momentum": 0.9}},
        surface_params={"condition": 100.0}, start=(-8.0, 2.0), speed=2,
    ),
    "nesterov_overshoot": Preset(
        "Nesterov vs momentum: looking ahead brakes earlier",
        "Same lr and momentum: classical momentum swings far past the valley floor; Nesterov's "
        "look-ahead gradient brakes sooner, overshoots less and arrives first.",
        "quadratic", ("momentum", "nesterov"),
        {"momentum": {"lr": 0.05, "momentum": 0.9}, "nesterov": {"lr": 0.05, "momentum": 0.9}},
        surface_params={"condition": 10.0}, start=(-8.0, 2.0), speed=1,
    ),
    "adagrad_dies": Preset(
        "AdaGrad's steps die out; RMSProp keeps moving",
        "AdaGrad divides by the sum of every squared gradient so far, so its step length (right) "
        "only shrinks and it stalls in the valley; RMSProp's decaying average forgets the steep "
        "start and keeps striding.",
        "rosenbrock", ("adagrad", "rmsprop"),
        {"adagrad": {"lr": 0.1}, "rmsprop": {"lr": 0.01, "alpha": 0.99}},
        start=(-1.5, 2.0), speed=5,
    ),
    "adam_rosenbrock": Preset(
        "Adam on Rosenbrock's banana valley",
        "Adam's normalized, bias-corrected steps follow the curved valley all the way to the "
        "minimum at (1, 1), while SGD and momentum creep along its floor.",
        "rosenbrock", ("sgd", "momentum", "adam"),
        {"sgd": {"lr": 1e-3}, "momentum": {"lr": 2e-4, "momentum": 0.9}, "adam": {"lr": 0.05}},
        start=(-1.5, 2.0), speed=5,
    ),
    "saddle_escape": Preset(
        "Escaping a saddle point",
        "Started almost on the ridge of x\u00b2 - y\u00b2, SGD lingers near the saddle while "
        "momentum and the adaptive methods roll off it. The surface is unbounded below: a run that "
        "escapes eventually leaves the map and reads 'diverged'.",
        "saddle", ("sgd", "momentum", "rmsprop", "adam"),
        {"sgd": {"lr": 0.02}, "momentum": {"lr": 0.02, "momentum": 0.9}, "rmsprop": {"lr": 0.01},
         "adam": {"lr": 0.05}},
        start=(-1.8, 1e-3), speed=1,
    ),
    "cliff_clipping": Preset(
        "Clipping on a cliff: thrown off, then tamed",
        "A gentle slope ends in a wall 100x steeper: the step that lands on the cliff face gets a "
        "huge gradient and throws SGD and momentum far back. Now set gradient > clip: norm (1) "
        "and Reset: clipped, the same steps walk down the wall into the ravine.",
        "cliff", ("sgd", "momentum"),
        {"sgd": {"lr": 0.1}, "momentum": {"lr": 0.02, "momentum": 0.8}},
        start=(-3.0, 1.5), speed=1,
    ),
    "lr_too_large": Preset(
        "Learning rate too large: bouncing, then diverging",
        "lr just above 2 / (steep curvature): SGD slides along the valley while every bounce "
        "across it grows by 4%, until it leaves the plot and, far outside, diverges. Drag lr below 0.066 "
        "and Reset.",
        "quadratic", ("sgd",),
        {"sgd": {"lr": 0.068}},
        surface_params={"condition": 30.0}, start=(-8.0, 0.5), speed=1,
    ),
})
