"""Slider and checkbox factories built from the engine's hyperparameter specs.

Views never hard-code ranges: `engine/hparams.py` says what is valid and what a slider should
span, and these helpers turn a spec into the right ipywidget (log slider for lr and eps, plain
slider for momentum, a checkbox for flags, two sliders for Adam's betas).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets

from optiviz.engine.hparams import HParamSpec

SLIDER_LAYOUT = {"width": "420px"}
DESCRIPTION_STYLE = {"description_width": "110px"}


def log_slider(description: str, value: float, low: float, high: float, *, fmt: str = ".3g",
               continuous: bool = False) -> widgets.FloatLogSlider:
    """A base-10 log slider over [low, high] (lr, eps, condition number): even steps per decade."""
    lo, hi = math.log10(low), math.log10(high)
    value = min(max(float(value), low), high)
    return widgets.FloatLogSlider(
        value=value, base=10, min=lo, max=hi, step=(hi - lo) / 400, description=description,
        readout_format=fmt, continuous_update=continuous,
        layout=widgets.Layout(**SLIDER_LAYOUT), style=DESCRIPTION_STYLE,
    )


def linear_slider(description: str, value: float, low: float, high: float, *, step: float | None = None,
                  fmt: str = ".3g", continuous: bool = False) -> widgets.FloatSlider:
    """A plain slider; the step resolves 0.999 on a [0, 1) range (momentum, betas)."""
    step = step if step is not None else (high - low) / 10000 if high - low <= 1 else (high - low) / 1000
    value = min(max(float(value), low), high)
    return widgets.FloatSlider(
        value=value, min=low, max=high, step=step, description=description, readout_format=fmt,
        continuous_update=continuous, layout=widgets.Layout(**SLIDER_LAYOUT), style=DESCRIPTION_STYLE,
    )


def spec_widgets(spec: HParamSpec, value: Any) -> dict[str, widgets.Widget]:
    """Widgets for one hyperparameter, keyed by the name a control request uses.

    An "int" gives an IntSlider; a "pair" (betas) gives two sliders keyed "betas.0" and "betas.1" described by its parts.
    """
    if spec.kind == "bool":
        return {spec.name: widgets.Checkbox(value=bool(value), description=spec.name, indent=False,
                                            layout=widgets.Layout(width="240px"))}
    low, high = spec.slider if spec.slider is not None else (0.0, 1.0)
    if spec.kind == "int":
        return {spec.name: widgets.IntSlider(
            value=int(value), min=int(low), max=int(high), description=spec.name, continuous_update=False,
            layout=widgets.Layout(**SLIDER_LAYOUT), style=DESCRIPTION_STYLE)}
    if spec.kind == "pair":
        values = tuple(value)
        return {
            f"{spec.name}.{i}": linear_slider(part, values[i], low, high, fmt=".4f")
            for i, part in enumerate(spec.parts)
        }
    if spec.log and low > 0:
        return {spec.name: log_slider(spec.name, value, low, high)}
    return {spec.name: linear_slider(spec.name, value, low, high)}


def describe(spec: HParamSpec) -> str:
    """Tooltip text: what it does and what values are valid."""
    return f"{spec.description}; valid {spec.range_text}"


class Quiet:
    """Mark programmatic widget updates so observers can tell them from a person's input.

    ipywidgets calls observers synchronously in the thread that set the value, so a thread-local
    flag is exact: a slider the worker moves is ignored, one a person moves at the same moment
    (on another thread) is not.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def active(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1


def on_value(widget: widgets.Widget, quiet: Quiet, callback: Callable[[Any], None]) -> None:
    """Call callback(new value) when a person changes the widget (not while `quiet` is active)."""

    def handler(change: dict[str, Any]) -> None:
        if not quiet.active:
            callback(change["new"])

    widget.observe(handler, names="value")


def set_quietly(quiet: Quiet, widget: widgets.Widget, value: Any) -> None:
    """Move a widget without its observers sending a request (the engine already has the value)."""
    with quiet():
        if isinstance(widget, (widgets.FloatLogSlider, widgets.FloatSlider, widgets.IntSlider)):
            if isinstance(widget, widgets.FloatLogSlider):
                low, high = widget.base ** widget.min, widget.base ** widget.max
            else:
                low, high = widget.min, widget.max
            value = min(max(value, low), high)
        widget.value = value
