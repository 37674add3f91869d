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

FONT_PX = 18  # body text: legends, captions, controls
TICK_PX = 16
TITLE_PX = 20

CSS_CLASS = "optiviz-view"
STYLE_HTML = f"""<style>
.{CSS_CLASS} {{ font-size: {FONT_PX}px; }}
.{CSS_CLASS} .widget-label, .{CSS_CLASS} .widget-readout, .{CSS_CLASS} .widget-button,
.{CSS_CLASS} .widget-dropdown select, .{CSS_CLASS} .widget-text input, .{CSS_CLASS} .widget-checkbox label,
.{CSS_CLASS} .widget-toggle-button {{ font-size: {FONT_PX - 2}px; }}
.{CSS_CLASS} .axislabel {{ font-size: {FONT_PX}px !important; }}
.{CSS_CLASS} .tick text {{ font-size: {TICK_PX}px !important; }}
.{CSS_CLASS} .optiviz-error {{ color: #b00020; font-weight: bold; }}
.{CSS_CLASS} .optiviz-legend td {{ padding: 2px 10px 2px 0; }}
.{CSS_CLASS} .dot_text {{ font-size: {TICK_PX}px !important; font-weight: bold; }}
.{CSS_CLASS} .lm-TabBar-tab {{ font-size: {FONT_PX - 2}px; min-height: 32px; }}
</style>"""


def style_widget() -> widgets.HTML:
    """A widget carrying the CSS that enlarges fonts inside views marked with CSS_CLASS."""
    return widgets.HTML(STYLE_HTML, layout=widgets.Layout(display="none"))


def axis(scale: bq.Scale, label: str, *, vertical: bool = False, **kw: Any) -> bq.Axis:
    """An axis with projector-sized ticks and label."""
    return bq.Axis(
        scale=scale,
        label=label,
        side="left" if vertical else "bottom",
        tick_style={"font-size": f"{TICK_PX}px"},
        label_offset="50px" if vertical else "40px",
        **kw,
    )


def figure(marks: Sequence[bq.Mark], axes: Sequence[bq.Axis], *, title: str = "", width: str = "560px",
           height: str = "520px", **kw: Any) -> bq.Figure:
    """A streaming-friendly figure: no animation (frames replace each other), big title, no toolbar."""
    fig = bq.Figure(
        marks=list(marks),
        axes=list(axes),
        title=title,
        animation_duration=0,
        display_toolbar=False,
        title_style={"font-size": f"{TITLE_PX}px"},
        fig_margin={"top": 50, "bottom": 60, "left": 75, "right": 20},
        layout=widgets.Layout(width=width, height=height),
        **kw,
    )
    fig.add_class(CSS_CLASS)
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
