"""A 2D loss surface as bqplot marks: log-coloured heatmap, contour lines, known minima, click target.

Every view that draws a surface (the explorer, the stability and basin maps) builds it from here,
so they look alike and a surface is turned into colours and contours in one place. `click_target`
is the one invisible click-catching image (the explorer's surface, the maps' heatmap).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from optiviz.engine.surface import Surface
from optiviz.views.common import theme

GRID = 160  # heatmap cells a side: canvas-drawn, cheap at this size


class SurfacePlot:
    """Scales + background marks for one surface; `set_surface` redraws them for another."""

    def __init__(self, surface: Surface | None, *, on_click: Callable[[float, float], None] | None = None,
                 grid: int = GRID) -> None:
        self.grid = grid
        self.x_scale = bq.LinearScale()
        self.y_scale = bq.LinearScale()
        self.scales = {"x": self.x_scale, "y": self.y_scale}
        self.heatmap = bq.HeatMap(x=np.zeros(2), y=np.zeros(2), color=np.zeros((2, 2)),
                                  scales={**self.scales, "color": bq.ColorScale(colors=list(theme.SURFACE_SCHEME))},
                                  null_color="#ffffff")
        self.contours = bq.Lines(x=[], y=[], scales=self.scales, colors=[theme.CONTOUR_COLOR], stroke_width=1,
                                 opacities=[0.55])
        self.minima = bq.Scatter(x=[], y=[], scales=self.scales, marker="cross", colors=[theme.MINIMUM_COLOR],
                                 default_size=140)
        self.click_target = click_target(self.scales, on_click)
        self.surface = surface
        if surface is not None:  # None: values come later through set_grid
            self.set_surface(surface)

    @property
    def background(self) -> list[bq.Mark]:
        return [self.heatmap, self.contours, self.minima]

    def set_surface(self, surface: Surface) -> None:
        self.surface = surface
        xs, ys, z = surface.grid(self.grid)
        self.set_grid(xs, ys, z, surface.f_ref, log=surface.log_color, minima=surface.minima)

    def set_grid(self, xs: np.ndarray, ys: np.ndarray, z: np.ndarray, f_ref: float, *, log: bool = True,
                 minima: Any = ()) -> None:
        """Draw values z (len(ys), len(xs)) computed elsewhere (a net's loss landscape), the same way."""
        x0, x1, y0, y1 = float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])
        cx, cy = theme.contour_paths(xs, ys, z, theme.contour_levels(z, f_ref, log=log))
        minima = np.asarray(minima, dtype=np.float32).reshape(-1, 2)
        with self.heatmap.hold_sync(), self.contours.hold_sync(), self.minima.hold_sync(), \
                self.x_scale.hold_sync(), self.y_scale.hold_sync(), self.click_target.hold_sync():
            self.x_scale.min, self.x_scale.max = x0, x1
            self.y_scale.min, self.y_scale.max = y0, y1
            self.heatmap.x = np.asarray(xs, dtype=np.float32)
            self.heatmap.y = np.asarray(ys, dtype=np.float32)
            self.heatmap.color = theme.surface_colors(z, f_ref, log=log)
            self.contours.x, self.contours.y = cx, cy
            self.minima.x, self.minima.y = minima[:, 0], minima[:, 1]
            self.click_target.x, self.click_target.y = [x0, x1], [y0, y1]


def click_target(scales: dict[str, bq.Scale], on_click: Callable[[float, float], None] | None) -> bq.Image:
    """An invisible image mark over a figure's data area: a click on it calls on_click(x, y) in
    data coordinates (bqplot's other marks only report clicks on what they draw). Set its x and y
    to the domain's [min, max] so it covers the map."""
    target = bq.Image(image=widgets.Image(value=theme.transparent_png(), format="png"),
                      x=[0, 1], y=[0, 1], scales=scales)

    def clicked(_mark: bq.Image, event: Any) -> None:
        point = click_point(event)
        if on_click is not None and point is not None:
            on_click(*point)

    target.on_element_click(clicked)
    return target


def click_point(event: Any) -> tuple[float, float] | None:
    """(x, y) of a click message from the browser, or None for anything malformed (no data, a
    string, NaN, a list): a message from the page is never trusted to be well formed, and a bad one
    is ignored, not raised into the kernel's log."""
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict):
        return None
    x, y = data.get("click_x"), data.get("click_y")
    if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
        return None
    try:
        x, y = float(x), float(y)
    except OverflowError:  # an integer beyond any float
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


__all__ = ["SurfacePlot", "click_target", "click_point", "GRID"]


def path_on_plot(path: np.ndarray, domain: tuple[tuple[float, float], tuple[float, float]],
                 margin: float = 0.25) -> np.ndarray:
    """A run's path up to the first point past the plot (its domain grown by `margin` of its size
    on each side), that point included: a diverging run then leaves the plot visibly, without a
    line to 100 plot widths away drawn over the axes and titles."""
    (x0, x1), (y0, y1) = domain
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    inside = ((path[:, 0] >= x0 - mx) & (path[:, 0] <= x1 + mx) & (path[:, 1] >= y0 - my) & (path[:, 1] <= y1 + my))
    out = np.flatnonzero(~inside)
    return path if not out.size else path[: out[0] + 1]
