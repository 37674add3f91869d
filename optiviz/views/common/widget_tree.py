"""What every view needs of the widget tree it built: pack ragged rows for one multi-line mark, and
find (to close) every widget it made, so a closed view leaves no comm open in the kernel."""
from __future__ import annotations

from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np


def pad_rows(rows: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Stack rows of different lengths into (K, m) float32 arrays for one multi-line mark.

    A short row (a diverged run stops early; min/max views vary in length; a lone start point) is
    padded by repeating its last point, which draws nothing, so no NaN or made-up value reaches the
    mark or its autoscaled axes. A row with no points at all repeats another row's first point.
    """
    counts = tuple(len(x) for x, _ in rows)
    m = max(counts, default=0)
    if m == 0:  # bqplot cannot build a Lines view from (K, 0) arrays; empty 1-D ones are fine
        return np.zeros(0, np.float32), np.zeros(0, np.float32), counts
    m = max(m, 2)  # bqplot squeezes its arrays: (K, 1) would turn into one line through K points
    x = np.empty((len(rows), m), dtype=np.float32)
    y = np.empty((len(rows), m), dtype=np.float32)
    donor = next(((rx[0], ry[0]) for rx, ry in rows if len(rx)), (0.0, 0.0))
    for k, (rx, ry) in enumerate(rows):
        c = len(rx)
        x[k, :c], y[k, :c] = rx, ry
        x[k, c:], y[k, c:] = (rx[-1], ry[-1]) if c else donor
    return x, y, counts


def owned_widgets(root: Any, skip: Any = None) -> list[widgets.Widget]:
    """Every widget reachable from root (children, marks, axes, scales, layouts, images), children first."""
    seen: list[widgets.Widget] = []
    ids: set[int] = set()

    def walk(w: Any) -> None:
        if not isinstance(w, widgets.Widget) or id(w) in ids or w is skip:
            return
        ids.add(id(w))
        for attr in ("children", "marks", "axes"):
            for child in getattr(w, attr, ()) or ():
                walk(child)
        for attr in ("scales", "scale", "scale_x", "scale_y", "layout", "style"):
            value = getattr(w, attr, None)
            for child in (value.values() if isinstance(value, dict) else [value]):
                walk(child)
        if isinstance(w, bq.Image):
            walk(w.image)
        seen.append(w)

    walk(root)
    return seen


def close_tree(root: Any, skip: Any = None) -> None:
    """Close a widget and everything it holds, children first (`skip`: a widget to leave open,
    such as the view whose own close() is running)."""
    for w in owned_widgets(root, skip=skip):
        w.close()
