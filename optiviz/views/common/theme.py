"""Look and shared drawing helpers for every optiviz view: colours, projector-sized fonts, figures.

Views are shown on a projector, so defaults are big and high-contrast. The surface helpers here
turn a grid of losses into what bqplot can draw: log-scaled heatmap colours (so narrow valleys read)
and contour lines from contourpy joined by NaN into one `Lines` path.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any

import bqplot as bq
import contourpy
import ipywidgets as widgets
import numpy as np

from optiviz.palette import (  # re-exported: views use theme.optimizer_color etc.
    CONTOUR_COLOR,
    FALLBACK_COLORS,
    MINIMUM_COLOR,
    OPTIMIZER_COLORS,
    SURFACE_SCHEME,
    contour_levels,
    fallback_color,
    format_loss,
    optimizer_color,
    surface_colors,
)
from optiviz.views.common.controls import Looks, looks_or_own

FONT_PX = 18  # body text: legends, captions, controls
TICK_PX = 16
TITLE_PX = 20
# Presenter size, for the back of a lecture hall: (body, ticks, titles) px, and the figure margins
# and axis-label offsets the larger ticks need.
PRESENTER_PX = (24, 22, 28)

CSS_CLASS = "optiviz-view"
PRESENTER_CLASS = "optiviz-presenter"
_presenter = False


def presenter(on: bool = True) -> None:
    """Presenter size (larger tick labels, axis labels, titles and text) for every view built after
    this call, or the normal size again with `presenter(False)`. Views already shown keep theirs."""
    global _presenter
    if not isinstance(on, bool):
        raise TypeError(f"presenter(on) takes True or False, got {on!r}")
    _presenter = on


def is_presenter() -> bool:
    return _presenter


def font_px() -> int:
    return PRESENTER_PX[0] if _presenter else FONT_PX


def tick_px() -> int:
    return PRESENTER_PX[1] if _presenter else TICK_PX


def title_px() -> int:
    return PRESENTER_PX[2] if _presenter else TITLE_PX


def view_classes() -> list[str]:
    """The CSS classes a view's root and figures carry: the presenter class when built in presenter size."""
    return [CSS_CLASS, PRESENTER_CLASS] if _presenter else [CSS_CLASS]


def _style_rules(scope: str, font: int, tick: int) -> str:
    return f"""
{scope} {{ font-size: {font}px; }}
{scope} .widget-label, {scope} .widget-readout, {scope} .widget-button,
{scope} .widget-dropdown select, {scope} .widget-text input, {scope} .widget-checkbox label,
{scope} .widget-toggle-button {{ font-size: {font - 2}px; }}
{scope} .axislabel {{ font-size: {font}px !important; }}
{scope} .tick text {{ font-size: {tick}px !important; }}
{scope} .dot_text {{ font-size: {tick}px !important; font-weight: bold; }}
{scope} .lm-TabBar-tab {{ font-size: {font - 2}px; min-height: 32px; }}"""


# Both sizes in one sheet: the sheet applies to the whole page, so each view picks its size by class
# (a presenter view's rules are more specific), whatever order views were built in.
STYLE_HTML = ("<style>" + _style_rules(f".{CSS_CLASS}", FONT_PX, TICK_PX)
              + _style_rules(f".{CSS_CLASS}.{PRESENTER_CLASS}", PRESENTER_PX[0], PRESENTER_PX[1]) + f"""
.{CSS_CLASS} .optiviz-error {{ color: #b00020; font-weight: bold; }}
.{CSS_CLASS} .optiviz-legend td {{ padding: 2px 10px 2px 0; }}
</style>""")


def mark_view(view: widgets.DOMWidget) -> None:
    """Give a view's root its CSS classes (the size it was built in)."""
    for name in view_classes():
        view.add_class(name)


def style_widget(looks: Looks | None = None) -> widgets.HTML:
    """A widget carrying the CSS that enlarges fonts inside views marked with CSS_CLASS
    (looks: the view's shared Layouts and Styles; none: its own)."""
    looks = looks_or_own(looks)
    return widgets.HTML(STYLE_HTML, layout=looks.layout(display="none"), style=looks.style(widgets.HTML))


def axis(scale: bq.Scale, label: str, *, vertical: bool = False, **kw: Any) -> bq.Axis:
    """An axis with projector-sized ticks and label (presenter size: larger, further out)."""
    big = _presenter
    return bq.Axis(
        scale=scale,
        label=label,
        side="left" if vertical else "bottom",
        tick_style={"font-size": f"{tick_px()}px"},
        label_offset=("66px" if big else "50px") if vertical else ("52px" if big else "40px"),
        **kw,
    )


def figure(marks: Sequence[bq.Mark], axes: Sequence[bq.Axis], *, title: str = "", width: str = "560px",
           height: str = "520px", **kw: Any) -> bq.Figure:
    """A streaming-friendly figure: no animation (frames replace each other), big title, no toolbar."""
    margin = ({"top": 60, "bottom": 75, "left": 95, "right": 24} if _presenter
              else {"top": 50, "bottom": 60, "left": 75, "right": 20})
    fig = bq.Figure(
        marks=list(marks),
        axes=list(axes),
        title=title,
        animation_duration=0,
        display_toolbar=False,
        title_style={"font-size": f"{title_px()}px"},
        fig_margin=kw.pop("fig_margin", margin),
        layout=widgets.Layout(width=width, height=height),
        **kw,
    )
    mark_view(fig)
    return fig


def contour_paths(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """All contour lines as one x and one y float32 array, separate lines joined by NaN.

    bqplot has no contour mark; a single `Lines` path breaks at non-finite values, so one mark
    (one DOM node) draws every level.
    """
    zf = np.asarray(z, dtype=np.float64)
    if not np.isfinite(zf).all():
        zf = np.ma.masked_invalid(zf)
    gen = contourpy.contour_generator(np.asarray(xs, float), np.asarray(ys, float), zf, line_type="ChunkCombinedNan")
    pieces: list[np.ndarray] = []
    for level in levels:
        for chunk in gen.lines(float(level))[0]:
            if chunk is not None and len(chunk):
                pieces.append(chunk)
                pieces.append(np.array([[np.nan, np.nan]]))
    if not pieces:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    xy = np.concatenate(pieces[:-1]).astype(np.float32)
    return xy[:, 0], xy[:, 1]


def transparent_png(width: int = 1, height: int = 1) -> bytes:
    """A fully transparent PNG: an invisible bqplot Image mark that reports clicks in data units."""
    raw = b"".join(b"\x00" + b"\x00\x00\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
