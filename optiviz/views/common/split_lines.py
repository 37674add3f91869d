"""A growing multi-row line drawn as two marks, so that a frame costs the page what changed.

bqplot redraws a whole Lines mark whenever its data changes (a d3 transition that parses the old
and the new path), at a cost per point (pixels.py). A race's paths grow by a few points a frame but
hold hundreds, so one mark per panel made every frame cost the whole history. `SplitLines` draws
each row in two parts:
- a settled part, redrawn only when the rows are re-settled;
- a live part, redrawn every frame: the settled part's last point, then every point since it.
When a live row outgrows `live_points` (or its source outgrows `max_source`), every row is
re-settled at once. That is one full redraw in many frames, instead of one in every frame.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import bqplot as bq
import numpy as np

from optiviz.views.common.widget_tree import pad_rows

# (positions, x, y) of one row; positions (steps) increase along the row
Row = tuple[np.ndarray, np.ndarray, np.ndarray]
XY = tuple[np.ndarray, np.ndarray]
LIVE_POINTS = 64  # points a live row may hold (after thinning) before every row is re-settled
MAX_SOURCE = 1024  # points a live row's source may hold: bounds the kernel's work per frame


class SplitLines:
    """One multi-row line as a settled and a live bqplot Lines mark with the same scales and style."""

    def __init__(self, scales: dict[str, bq.Scale], *, live_points: int = LIVE_POINTS,
                 max_source: int = MAX_SOURCE, **style: Any) -> None:
        self.settled = bq.Lines(x=[], y=[], scales=scales, **style)
        self.live = bq.Lines(x=[], y=[], scales=scales, **style)
        self.live_points, self.max_source = live_points, max_source
        self.settles = 0  # re-settles since construction: what a test or benchmark counts
        self._split: list[float] | None = None  # per row, the position the live part starts at
        self._joints: list[XY] = []  # per row, the settled part's last point (the live part's first)
        self._drawn: dict[str, list[XY]] = {"settled": [], "live": []}

    @property
    def marks(self) -> tuple[bq.Lines, bq.Lines]:
        """Settled first: in a figure's marks the live part draws on top of it."""
        return self.settled, self.live

    @property
    def scales(self) -> dict[str, bq.Scale]:
        return self.settled.scales

    def restyle(self, stack: ExitStack, **traits: Any) -> None:
        """Set traits (colors, visible) on both marks alike."""
        for mark in self.marks:
            stack.enter_context(mark.hold_sync())
            for name, value in traits.items():
                setattr(mark, name, value)

    def reset(self) -> None:
        """A new run: the next draw settles every row anew."""
        self._split = None

    def draw(self, whole: Callable[[], list[Row]], since: Callable[[Sequence[float]], list[Row]],
             thin: Callable[[list[XY]], list[XY]], stack: ExitStack) -> bool:
        """Draw the rows' newest state; returns whether the settled part was redrawn.

        `whole()` gives every row as it should be drawn settled (decimated as the caller likes),
        `since(positions)` every row's points from a position on, and `thin` what of a list of rows
        differs on screen."""
        live = self._live(since, thin) if self._split is not None else None
        resettle = live is None
        # the live mark is entered first, so sent last: a re-settled row is never missing its newest part
        stack.enter_context(self.live.hold_sync())
        if resettle:
            rows = whole()
            settled = thin([(x, y) for _, x, y in rows])
            self._split = [float(s[-1]) if len(s) else -np.inf for s, _, _ in rows]
            self._joints = [(x[-1:], y[-1:]) for x, y in settled]
            live = list(self._joints)
            self._set(self.settled, "settled", settled, stack)
            self.settles += 1
        self._set(self.live, "live", live, stack)
        return resettle

    def _live(self, since: Callable[[Sequence[float]], list[Row]], thin: Callable[[list[XY]], list[XY]]) -> list[XY] | None:
        """The live rows, or None when they outgrew their bounds (or the rows changed): re-settle."""
        rows = since(self._split)
        if len(rows) != len(self._split) or any(len(s) > self.max_source for s, _, _ in rows):
            return None
        joined = []
        for (s, x, y), split, (jx, jy) in zip(rows, self._split, self._joints):
            newer = s > split  # the joint may no longer be held as such in a decimated history
            joined.append((np.concatenate([jx, x[newer]]), np.concatenate([jy, y[newer]])))
        live = thin(joined)
        return None if any(len(x) > self.live_points for x, _ in live) else live

    def _set(self, mark: bq.Lines, part: str, rows: list[XY], stack: ExitStack) -> None:
        stack.enter_context(mark.hold_sync())
        x, y, _counts = pad_rows(rows)
        mark.x, mark.y = x, y
        self._drawn[part] = rows

    def rows(self) -> list[XY]:
        """Per row, the points both marks draw together: settled, then live after the joint."""
        out = []
        for k, (sx, sy) in enumerate(self._drawn["settled"]):
            lx, ly = self._drawn["live"][k] if k < len(self._drawn["live"]) else (sx[:0], sy[:0])
            out.append((np.concatenate([sx, lx[1:]]), np.concatenate([sy, ly[1:]])))
        return out


__all__ = ["SplitLines", "LIVE_POINTS", "MAX_SOURCE"]
