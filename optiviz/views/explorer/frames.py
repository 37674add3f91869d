"""Pure helpers that turn the explorer's series into what one frame sends to bqplot.

Kept apart from the widget so each piece can be read (and tested) on its own: log-dense
trajectory decimation, stacking rows of different lengths into one multi-line mark without NaN,
decade ticks for log axes, and the small texts (marker labels, captions).
"""
from __future__ import annotations

import html
from contextlib import ExitStack
from typing import Any

import bqplot as bq
import numpy as np

from optiviz.stream.series import SeriesBuffer
from optiviz.views.common import theme


def trajectory_view(buf: SeriesBuffer, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """A decimated float32 copy of a path, dense where runs move most: at the start.

    An even stride over 100,000 steps would keep one point of the first hundred, where the
    zigzags the lectures talk about happen; half the points here are spaced evenly in log(step)
    and half evenly in step. O(max_points), like SeriesBuffer.view (whose arrays() it reads).
    """
    n = len(buf)
    if n <= max_points:
        return buf.view(max_points)
    steps, values = buf.arrays()
    half = max_points // 2
    idx = np.unique(np.concatenate([
        np.rint(np.geomspace(1, n, max_points - half)).astype(np.intp) - 1,
        np.rint(np.linspace(0, n - 1, half)).astype(np.intp),
    ]))
    return steps[idx].astype(np.float32), values[idx].astype(np.float32)


def decade_ticks(axis: bq.Axis, y: np.ndarray, stack: ExitStack) -> None:
    """Ticks at powers of ten on a log axis (d3 labels 2x..9x too, unreadably crowded), at most
    six of them, or at 1-2-5 steps while the data spans under two decades; sent only on change."""
    if not isinstance(axis.scale, bq.LogScale):
        return
    finite = y[np.isfinite(y) & (y > 0)]
    if not finite.size:
        return
    # bqplot draws tick values outside the domain too: only the decades inside the data
    lo, hi = int(np.ceil(np.log10(finite.min()))), int(np.floor(np.log10(finite.max())))
    stride = max(1, -(-(hi - lo) // 5))
    if hi - lo >= 1:
        ticks = 10.0 ** np.arange(lo, hi + 1, stride)
    else:  # under two decades d3 labels every 1x..9x, overlapping: 1-2-5 steps instead, if two fit
        lo_d, hi_d = int(np.floor(np.log10(finite.min()))), int(np.ceil(np.log10(finite.max())))
        ticks = np.array([m * 10.0 ** d for d in range(lo_d, hi_d + 1) for m in (1, 2, 5)])
        ticks = ticks[(ticks >= finite.min()) & (ticks <= finite.max())]
        ticks = ticks if len(ticks) >= 2 else None  # within a factor of ~2: d3's own
    current = axis.tick_values
    if (current is None and ticks is None) or (
            current is not None and ticks is not None and np.array_equal(np.asarray(current), ticks)):
        return
    stack.enter_context(axis.hold_sync())
    axis.tick_values = ticks


def flat_span(values: np.ndarray, scale: bq.Scale) -> tuple[float, float] | None:
    """A range to pin `scale` to while the data it autoscales to has zero span, else None.

    bqplot cannot draw an axis over a one-value domain: at step 0 every loss row is a single
    point, so the step axis's domain is [0, 0], its six ticks come out as none and the axis's
    guessed tick format is ".undefinedg" - d3 throws ("invalid format"), and that exception
    leaves the loss mark's view undrawn for the rest of the run. A pinned span draws; the data
    then replaces it (the caller frees the scale) once it spans something.
    """
    finite = values[np.isfinite(values)]
    if not finite.size or finite.min() != finite.max():
        return None  # no data: the empty-mark placeholder in the view sets the span
    v = float(finite[0])
    if isinstance(scale, bq.LogScale):
        return (v / 10, v * 10) if v > 0 else (1e-3, 1.0)
    return v, v + 1.0


def pin_scale(scale: bq.Scale, span: tuple[float, float] | None, stack: ExitStack) -> None:
    """Set scale.min/max to span (None: follow the data again); sends a message only on change."""
    lo, hi = (None, None) if span is None else span
    if scale.min == lo and scale.max == hi:
        return
    stack.enter_context(scale.hold_sync())
    scale.min, scale.max = lo, hi


def event_label(name: str, value: Any) -> str:
    if isinstance(value, tuple):
        return f"{name} ({', '.join(f'{v:.3g}' for v in value)})"
    if isinstance(value, bool):
        return f"{name} {'on' if value else 'off'}"
    return f"{name} {value:.3g}"


def caption_html(title: str, caption: str) -> str:
    return (f'<div style="font-size:{theme.TITLE_PX}px;font-weight:bold">{html.escape(title)}</div>'
            f'<div style="font-size:{theme.FONT_PX}px;max-width:1100px">{html.escape(caption)}</div>')
