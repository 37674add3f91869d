"""Pure helpers that turn the explorer's series into what one frame sends to bqplot.

Kept apart from the widget so each piece can be read (and tested) on its own: readable ticks
for log axes, round bounds for a log value axis, and the caption's HTML. (Trajectory
decimation, which needs no widget, is in race.py.)
"""
from __future__ import annotations

import html
import math
from contextlib import ExitStack

import bqplot as bq
import numpy as np

from optiviz.rounding import linear_ticks, log_ticks, nice_ceil, nice_floor, nice_round
from optiviz.views.common import theme


def decade_ticks(axis: bq.Axis, y: np.ndarray, stack: ExitStack) -> None:
    """Readable ticks on a log axis (d3 labels 2x..9x too, unreadably crowded): `log_ticks`'s
    decades or 1-2-5 steps, at most six; d3's own when not even two 1-2-5 values fit (the ".0e"
    labels of round linear ticks inside one decade would repeat). Sent only on change."""
    if not isinstance(axis.scale, bq.LogScale):
        return
    finite = y[np.isfinite(y) & (y > 0)]
    if not finite.size:
        return
    values = log_ticks(float(finite.min()), float(finite.max()))
    readable = values is not None and len(values) >= 2 and all(math.isclose(nice_round(v), v) for v in values)
    ticks = np.asarray(values) if readable else None
    current = axis.tick_values
    if (current is None and ticks is None) or (
            current is not None and ticks is not None and np.array_equal(np.asarray(current), ticks)):
        return
    stack.enter_context(axis.hold_sync())
    axis.tick_values = ticks


def linear_range(axis: bq.Axis, y: np.ndarray, stack: ExitStack) -> None:
    """A linear value axis (a surface with no known minimum) spans round bounds around the data
    with round ticks, both set here: after a live switch from a log loss axis, bqplot's automatic
    domain left every tick label of the new linear axis piled at one spot. Sent only on change."""
    scale = axis.scale
    if not isinstance(scale, bq.LinearScale):
        return
    finite = y[np.isfinite(y)]
    if not finite.size:
        return
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 1.0, hi + 1.0
    ticks = linear_ticks(lo, hi, 5)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else hi - lo
    span = (math.floor(lo / step) * step, math.ceil(hi / step) * step)  # whole tick steps around the data
    ticks_arr = np.asarray(linear_ticks(*span, 5), dtype=np.float64)
    current = axis.tick_values
    if current is None or not np.array_equal(np.asarray(current), ticks_arr):
        stack.enter_context(axis.hold_sync())
        axis.tick_values = ticks_arr
    if (scale.min, scale.max) != span:
        stack.enter_context(scale.hold_sync())  # entered last, sent first
        scale.min, scale.max = span


def log_span(values: np.ndarray) -> tuple[float, float] | None:
    """Round bounds (1, 2 or 5 x 10^k) around the positive data, for a log value axis; None when
    there is none.

    The scale is pinned to them rather than left to bqplot's autoscaling: a domain that follows the
    data changes every frame, and each change redraws every mark and axis on the scale in the page.
    These change only when the data crosses one. A one-value row (step 0) still gets a span: bqplot
    cannot draw an axis over a one-value domain (its guessed tick format is ".undefinedg", d3
    throws, and the mark's view stays undrawn for the rest of the run).
    """
    finite = values[np.isfinite(values) & (values > 0)]
    if not finite.size:
        return None  # no data: the empty-mark placeholder in the view sets the span
    lo, hi = nice_floor(float(finite.min())), nice_ceil(float(finite.max()))
    if lo >= hi:
        lo, hi = nice_floor(lo * 0.99), nice_ceil(hi * 1.01)
    return lo, hi


def pin_scale(scale: bq.Scale, span: tuple[float, float] | None, stack: ExitStack) -> None:
    """Set scale.min/max to span (None: follow the data again); sends a message only on change."""
    lo, hi = (None, None) if span is None else span
    if scale.min == lo and scale.max == hi:
        return
    stack.enter_context(scale.hold_sync())
    scale.min, scale.max = lo, hi


def caption_html(title: str, caption: str) -> str:
    return (f'<div style="font-size:{theme.title_px()}px;font-weight:bold">{html.escape(title)}</div>'
            f'<div style="font-size:{theme.font_px()}px;max-width:1100px">{html.escape(caption)}</div>')
