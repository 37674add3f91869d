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

SLIDER_WIDTH = "420px"
DESCRIPTION_WIDTH = "110px"
DESCRIPTION_STYLE = {"description_width": DESCRIPTION_WIDTH}  # a widget's own style (views without shared looks)


class Looks:
    """One Layout and one Style model per distinct look within one view.

    Every widget otherwise brings its own Layout and Style model, and a page loads each (an
    explorer held 124 Layouts for 18 distinct looks). Widgets of one view may share them: ipywidgets
    lets several widgets reference one Layout or Style model. So share only a look no code changes
    for one widget alone (a control shown and hidden through `layout.display` gets its own), and
    only within one view: closing a view closes its looks with it.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[type, tuple[tuple[str, Any], ...]], widgets.Widget] = {}
        self._share_layouts = True

    def own_layouts(self) -> Looks:
        """These looks' Styles, but a new Layout for each widget: for controls shown and hidden alone."""
        own = Looks()
        own._models, own._share_layouts = self._models, False
        return own

    def layout(self, **traits: Any) -> widgets.Layout:
        """The view's Layout with these traits (no traits: the default look of boxes and texts)."""
        return self._shared(widgets.Layout, traits) if self._share_layouts else widgets.Layout(**traits)

    def style(self, widget: type[widgets.Widget], **traits: Any) -> Any:
        """The view's Style for this kind of widget (widgets.FloatSlider: a SliderStyle) with these traits;
        kinds with one Style class (Dropdown, FloatText: DescriptionStyle) share it."""
        return self._shared(widget.class_traits()["style"].klass, traits)

    def _shared(self, kind: type[widgets.Widget], traits: dict[str, Any]) -> Any:
        key = (kind, tuple(sorted(traits.items())))
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = kind(**traits)
        return model


def looks_or_own(looks: Looks | None) -> Looks:
    """The looks given, or new ones: a widget built without a view's looks has its own."""
    return looks if looks is not None else Looks()


def log_slider(description: str, value: float, low: float, high: float, *, fmt: str = ".3g",
               continuous: bool = False, looks: Looks | None = None,
               description_width: str = DESCRIPTION_WIDTH) -> widgets.FloatLogSlider:
    """A base-10 log slider over [low, high] (lr, eps, condition number): even steps per decade.

    looks: the view's shared looks (none: the slider's own Layout and Style)."""
    lo, hi = math.log10(low), math.log10(high)
    value = min(max(float(value), low), high)
    looks = looks_or_own(looks)
    return widgets.FloatLogSlider(
        value=value, base=10, min=lo, max=hi, step=(hi - lo) / 400, description=description,
        readout_format=fmt, continuous_update=continuous, layout=looks.layout(width=SLIDER_WIDTH),
        style=looks.style(widgets.FloatLogSlider, description_width=description_width),
    )


def linear_slider(description: str, value: float, low: float, high: float, *, step: float | None = None,
                  fmt: str = ".3g", continuous: bool = False, looks: Looks | None = None) -> widgets.FloatSlider:
    """A plain slider; the step resolves 0.999 on a [0, 1) range (momentum, betas)."""
    step = step if step is not None else (high - low) / 10000 if high - low <= 1 else (high - low) / 1000
    value = min(max(float(value), low), high)
    looks = looks_or_own(looks)
    return widgets.FloatSlider(
        value=value, min=low, max=high, step=step, description=description, readout_format=fmt,
        continuous_update=continuous, layout=looks.layout(width=SLIDER_WIDTH),
        style=looks.style(widgets.FloatSlider, description_width=DESCRIPTION_WIDTH),
    )


def spec_widgets(spec: HParamSpec, value: Any, looks: Looks | None = None) -> dict[str, widgets.Widget]:
    """Widgets for one hyperparameter, keyed by the name a control request uses.

    An "int" gives an IntSlider; a "pair" (betas) gives two sliders keyed "betas.0" and "betas.1" described by its parts.
    looks: the view's shared looks; leave it out for widgets whose layout changes alone (shown, hidden).
    """
    looks = looks_or_own(looks)
    if spec.kind == "bool":
        return {spec.name: widgets.Checkbox(value=bool(value), description=spec.name, indent=False,
                                            layout=looks.layout(width="240px"),
                                            style=looks.style(widgets.Checkbox))}
    low, high = spec.slider if spec.slider is not None else (0.0, 1.0)
    if spec.kind == "int":
        return {spec.name: widgets.IntSlider(
            value=int(value), min=int(low), max=int(high), description=spec.name, continuous_update=False,
            layout=looks.layout(width=SLIDER_WIDTH),
            style=looks.style(widgets.FloatSlider, description_width=DESCRIPTION_WIDTH))}
    if spec.kind == "pair":
        values = tuple(value)
        return {
            f"{spec.name}.{i}": linear_slider(part, values[i], low, high, fmt=".4f", looks=looks)
            for i, part in enumerate(spec.parts)
        }
    if spec.log and low > 0:
        return {spec.name: log_slider(spec.name, value, low, high, looks=looks)}
    return {spec.name: linear_slider(spec.name, value, low, high, looks=looks)}


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
