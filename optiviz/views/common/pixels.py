"""What a figure's data amounts to on screen: its plot area in pixels, and lines thinned to it.

A page redraws a bqplot line in time proportional to its points (measured in Chromium on two
cores: 6 lines of 40, 400 and 800 points cost 2.7, 12.7 and 20.7 ms a redraw), and a path that
crawls along a valley sends hundreds of points that land on the same pixel. `screen_thin` keeps
the first point of every run of points that fall in one cell of a grid finer than a pixel, and
the last point: a dropped point lies in the cell of the point kept before it, so the line drawn is
within `cell * sqrt(2)` pixels of every point the run visited.
"""
from __future__ import annotations

import math

import bqplot as bq
import numpy as np

CELL_PX = 0.5  # grid cell, in pixels: what is dropped moves the line by at most 0.71 px


def _px(size: str | None) -> float | None:
    if not size or not size.endswith("px"):
        return None
    try:
        return float(size[:-2])
    except ValueError:
        return None


def plot_area_px(figure: bq.Figure) -> tuple[float, float] | None:
    """(width, height) of the figure's plot area in pixels; None unless its layout sizes are in px."""
    w, h = _px(figure.layout.width), _px(figure.layout.height)
    if w is None or h is None:
        return None
    m = figure.fig_margin
    return max(1.0, w - m["left"] - m["right"]), max(1.0, h - m["top"] - m["bottom"])


def cell_size(scale: bq.Scale, values: np.ndarray, pixels: float) -> float | None:
    """CELL_PX in the scale's data units (log10 units on a log scale), from its pinned bounds or,
    unpinned, from the values' range; None when there is no finite span."""
    log = isinstance(scale, bq.LogScale)
    lo, hi = scale.min, scale.max
    if lo is None or hi is None:
        v = values[np.isfinite(values) & ((values > 0) if log else True)]
        if not v.size:
            return None
        lo, hi = float(v.min()), float(v.max())
    if log:
        if lo <= 0 or hi <= 0:
            return None
        lo, hi = math.log10(lo), math.log10(hi)
    span = abs(hi - lo)
    return span * CELL_PX / pixels if span > 0 and math.isfinite(span) else None


def screen_thin(x: np.ndarray, y: np.ndarray, cell_x: float | None, cell_y: float | None,
                log_y: bool = False) -> np.ndarray:
    """Indices of the points to draw: the first of each run in one grid cell, every non-finite
    point and its neighbours, and the last point. All of them when a cell size is unknown."""
    n = len(x)
    if n <= 2 or cell_x is None or cell_y is None:
        return np.arange(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        yy = np.log10(y) if log_y else y
        cx, cy = np.floor(x / cell_x), np.floor(yy / cell_y)
    bad = ~(np.isfinite(cx) & np.isfinite(cy))
    keep = np.empty(n, dtype=bool)
    keep[0] = keep[-1] = True
    keep[1:-1] = (cx[1:-1] != cx[:-2]) | (cy[1:-1] != cy[:-2]) | bad[1:-1] | bad[:-2] | bad[2:]
    return np.flatnonzero(keep)


__all__ = ["CELL_PX", "plot_area_px", "cell_size", "screen_thin"]
