"""Step axes that read like a person's: 0, 100, 200 (not "-13, 125, 262"), never clipped.

bqplot's `num_ticks` spaces ticks evenly over whatever domain the data gives (padded below 0), and
d3's defaults crowd a 400 px panel; so every step axis spans [0, a round number at or past the
last step] with round ticks from `rounding.linear_ticks`, sent only when they change. The span
grows in round steps (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k), not with every step: a domain that
changes redraws every mark and axis on the scale in the page, and at one change a frame that was
the larger part of what a playing explorer cost the browser.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

import bqplot as bq
import numpy as np

from optiviz.rounding import GROWTH_MANTISSAS, linear_ticks, nice_ceil

STEP_FORMAT = ",.6~g"  # 30, 1,500, 100,000: no "3e+1"


def set_step_range(axes: Sequence[bq.Axis], scale: bq.LinearScale, last: float, stack: ExitStack) -> None:
    """Span [0, the first growth step at or past last] (at least [0, 1]) with round ticks on every
    axis of `scale`."""
    hi = nice_ceil(max(float(last), 1.0), GROWTH_MANTISSAS)
    ticks = np.asarray(linear_ticks(0.0, hi, 5), dtype=np.float64)
    for axis in axes:
        current = axis.tick_values
        if current is None or not np.array_equal(np.asarray(current), ticks):
            stack.enter_context(axis.hold_sync())
            axis.tick_values = ticks
            axis.tick_format = STEP_FORMAT
    if (scale.min, scale.max) != (0.0, hi):
        stack.enter_context(scale.hold_sync())  # entered last, sent first: ticks never meet an old domain
        scale.min, scale.max = 0.0, hi


__all__ = ["STEP_FORMAT", "set_step_range"]
