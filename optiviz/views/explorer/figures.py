"""The explorer's three figures (surface, loss, step length) and how one frame is drawn into them.

`ExplorerFigures` holds bqplot marks only: it draws what an `ExplorerController` holds (its
surface, its `RaceSeries`) and keeps no setting. Every curve panel is one multi-line mark with a
row per racing optimizer, so a frame sends one message per changed panel; the paths are a
`SplitLines` (a settled and a live mark), so a frame redraws the points since the last settling,
not every path whole.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import bqplot as bq
import numpy as np

from optiviz.engine.surface import Surface
from optiviz.views.common import theme
from optiviz.views.common.surface_plot import SurfacePlot
from optiviz.views.common.pixels import cell_size, plot_area_px, screen_thin
from optiviz.views.common.split_lines import SplitLines
from optiviz.views.common.widget_tree import pad_rows
from optiviz.views.common.axes import STEP_FORMAT, set_step_range
from optiviz.views.explorer.frames import decade_ticks, linear_range, log_span, pin_scale
from optiviz.views.explorer.race import RaceSeries

MAX_MARKERS = 20  # per optimizer on the loss panel


class ExplorerFigures:
    """Marks and figures of one explorer; `draw_*` send only what changed."""

    def __init__(self, surface: Surface, on_click: Callable[[float, float], None], grid: int) -> None:
        self.plot = SurfacePlot(surface, on_click=on_click, grid=grid)
        xy = self.plot.scales
        self.start = bq.Scatter(x=[], y=[], scales=xy, marker="circle", colors=["#ffffff"],
                                stroke="#111111", stroke_width=2, default_size=110)
        self._lsx, self._lsy = bq.LinearScale(), bq.LogScale()
        self._ssx, self._ssy = bq.LinearScale(), bq.LogScale()
        self.trajectories = SplitLines(xy, stroke_width=3)
        self.loss = bq.Lines(x=[], y=[], scales={"x": self._lsx, "y": self._lsy}, stroke_width=2.5)
        self.step_length = bq.Lines(x=[], y=[], scales={"x": self._ssx, "y": self._ssy}, stroke_width=2.5)
        self.heads = bq.Scatter(x=[], y=[], scales=xy, colors=["#000000"], stroke="#ffffff",
                                stroke_width=1.5, default_size=160)
        self.loss_markers = bq.Scatter(x=[], y=[], scales={"x": self._lsx, "y": self._lsy},
                                       marker="triangle-down", colors=["#000000"], default_size=120,
                                       names=[], display_names=True)
        self.surface_figure = theme.figure(
            [*self.plot.background, *self.trajectories.marks, self.start, self.heads, self.plot.click_target],
            [theme.axis(self.plot.x_scale, "x"), theme.axis(self.plot.y_scale, "y", vertical=True)],
            title=surface.title, width="560px", height="540px", padding_y=0.0,
        )
        self.loss_axis = theme.axis(self._lsy, "loss − f*", vertical=True, tick_format=".0e")  # see draw_surface
        self.step_axes = {"loss": theme.axis(self._lsx, "step", tick_format=STEP_FORMAT),
                          "len": theme.axis(self._ssx, "step", tick_format=STEP_FORMAT)}
        self.loss_figure = theme.figure(
            [self.loss, self.loss_markers], [self.step_axes["loss"], self.loss_axis],
            title="loss", width="440px", height="270px",
        )
        self.step_length_axis = theme.axis(self._ssy, "|Δx|", vertical=True, tick_format=".0e")
        self.step_length_figure = theme.figure(
            [self.step_length], [self.step_axes["len"], self.step_length_axis],
            title="step length", width="440px", height="270px",
        )
        self._panels = {"loss": (self.loss, self.loss_axis),
                        "len": (self.step_length, self.step_length_axis)}
        self._row_counts: dict[str, tuple[int, ...]] = {}
        self._drawn: dict[str, Any] = {}
        self._retired: list[bq.Axis] = []  # loss axes replaced by a switch of scale type
        self.surface: Surface | None = None
        self.race: RaceSeries | None = None

    @property
    def marks(self) -> dict[str, Any]:
        p = self.plot
        return {"surface": p.heatmap, "contours": p.contours, "minima": p.minima, "start": self.start,
                "click": p.click_target, "heads": self.heads, "trajectories": self.trajectories.settled,
                "trajectories_live": self.trajectories.live,
                "loss": self.loss, "step_length": self.step_length, "loss_markers": self.loss_markers}

    def close_retired(self) -> None:
        """Close the loss axes that switches of scale type replaced (no longer in the widget tree)."""
        for axis in self._retired:
            axis.close()
        self._retired.clear()

    # ---- a new surface, a new run ------------------------------------------------------------
    def draw_surface(self, surface: Surface, stack: ExitStack) -> None:
        """Heatmap, contours, title, and a log or linear loss axis (log when f* is known).

        Switching between the two builds a new scale and a new axis: re-pointing the old axis at
        a new scale left bqplot drawing every tick label of it at one spot (and NaN translations)."""
        self.surface = surface
        log = surface.f_min is not None
        stack.enter_context(self.surface_figure.hold_sync())
        self.plot.set_surface(surface)
        self.surface_figure.title = surface.title
        if isinstance(self._lsy, bq.LogScale) != log:
            # The retired axis's view lingers in the front end a moment and redraws when its scale loses
            # the marks: pinned, its scale keeps a finite domain (else ~20 "translate(0,NaN)" errors).
            retiring = self._lsy
            # a linear scale starts with a span (bqplot draws an axis without one at NaN); linear_range sets it
            self._lsy = bq.LogScale() if log else bq.LinearScale(min=0.0, max=1.0)
            old = self.loss_axis
            self.loss_axis = theme.axis(self._lsy, "loss − f*" if log else "loss", vertical=True,
                                        tick_format=".0e" if log else ".3~g")
            self._panels["loss"] = (self.loss, self.loss_axis)
            self._drawn.pop("loss", None)
            for mark in (self.loss, self.loss_markers):
                stack.enter_context(mark.hold_sync())
                mark.scales = {"x": self._lsx, "y": self._lsy}
            # entered last, sent first: the old axis is gone before the marks leave its scale
            stack.enter_context(self.loss_figure.hold_sync())
            self.loss_figure.axes = [self.step_axes["loss"], self.loss_axis]
            stack.enter_context(retiring.hold_sync())  # entered last of all: sent first
            retiring.min, retiring.max = (1e-3, 1.0) if isinstance(retiring, bq.LogScale) else (0.0, 1.0)
            self._retired.append(old)  # closed with the view: the front end may still draw it this frame
        else:
            stack.enter_context(self.loss_axis.hold_sync())
            self.loss_axis.tick_values = None  # automatic again; decade_ticks / linear_range set them

    def start_run(self, race: RaceSeries, stack: ExitStack) -> None:
        """A fresh run: its colours and start point; every panel is drawn anew."""
        self.race = race
        self._drawn = {}
        colors = [theme.optimizer_color(o, i) for i, o in enumerate(race.optimizers)]
        self.trajectories.reset()
        self.trajectories.restyle(stack, colors=colors)
        for mark in (self.loss, self.step_length):
            stack.enter_context(mark.hold_sync())
            mark.colors = colors
        x0, y0 = (np.array([v], np.float32) for v in race.head(race.optimizers[0]))
        stack.enter_context(self.start.hold_sync())
        self.start.x, self.start.y = x0, y0

    # ---- one frame ---------------------------------------------------------------------------
    def draw_frame(self, max_path_points: int, max_curve_points: int, stack: ExitStack,
                   curves: bool = True) -> None:
        """Decimated float32 views of every series, one message per changed mark; the loss and
        step-length panels (and their markers) only when `curves`."""
        race = self.race
        stack.enter_context(self.heads.hold_sync())  # entered first, sent last: after the paths
        for key in ("path", "loss", "len") if curves else ("path",):
            lengths = race.lengths(key)
            if self._drawn.get(key) == lengths:
                continue  # nothing new (paused, or every row finished): send nothing
            self._drawn[key] = lengths
            if key == "path":
                self.trajectories.draw(lambda: race.path_rows(max_path_points), race.path_since, self._on_screen, stack)
            else:
                self._draw_panel(key, race.rows(key, max_curve_points), stack)
        heads = np.array([race.head(o) for o in race.optimizers], dtype=np.float32)
        self.heads.x, self.heads.y = heads[:, 0], heads[:, 1]
        self.heads.colors = [theme.optimizer_color(o, i) for i, o in enumerate(race.optimizers)]
        if curves:
            self._draw_markers(stack)

    def _draw_panel(self, key: str, rows: list[tuple[np.ndarray, np.ndarray]], stack: ExitStack) -> None:
        """A curve panel ("loss" or "len"); the paths are drawn by their SplitLines."""
        mark, axis = self._panels[key]
        x, y, counts = pad_rows(rows)
        self._row_counts[key] = counts
        # a curve's step axis grows in round steps (axes.set_step_range); a log value axis spans round
        # bounds around the data (frames.log_span) and a linear one round tick steps (linear_range):
        # pinned, so the page redraws axes only when a bound is crossed, not every frame
        y_scale = mark.scales["y"]
        span = log_span(y) if isinstance(y_scale, bq.LogScale) else None
        # hold_syncs exit last-in first-out: the axis's ticks go out after the data (entered
        # first), the scale's new span before it (entered last)
        stack.enter_context(axis.hold_sync())
        stack.enter_context(mark.hold_sync())
        if span is not None:
            pin_scale(y_scale, span, stack)
        finite = x[np.isfinite(x)]
        set_step_range([self.step_axes[key]], mark.scales["x"], float(finite.max()) if finite.size else 0.0, stack)
        mark.x, mark.y = x, y
        self._placeholder_domain(mark, empty=not any(counts))
        if span is not None and any(counts):
            decade_ticks(axis, np.asarray(span), stack)  # ticks of the pinned span: they change with it
        if any(counts):
            linear_range(axis, y, stack)

    def _on_screen(self, rows: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The paths thinned to the surface's pixels (pixels.screen_thin): a path crawling along a
        valley holds hundreds of points on one pixel, and the page's redraw costs per point."""
        area = plot_area_px(self.surface_figure)
        if area is None:
            return rows
        # one grid for every row, as the rows share the scales (a scale without bounds spans them all)
        xs, ys = (np.concatenate([r[i] for r in rows]) if rows else np.zeros(0) for i in (0, 1))
        cx, cy = cell_size(self.plot.x_scale, xs, area[0]), cell_size(self.plot.y_scale, ys, area[1])
        out = []
        for x, y in rows:
            keep = screen_thin(x, y, cx, cy)
            out.append((x[keep], y[keep]) if len(keep) < len(x) else (x, y))
        return out

    @staticmethod
    def _placeholder_domain(mark: bq.Lines, empty: bool) -> None:
        """An empty mark gives its scales a NaN domain and bqplot then fails to draw the axes
        ("invalid format: .undefinedg") - at step 0 no step has a length yet. While empty, the
        mark is hidden and holds a placeholder span, so its axes still draw; data replaces it
        in the same message."""
        if empty:
            mark.x = np.array([0.0, 1.0], np.float32)
            mark.y = np.array([1e-3, 1.0], np.float32)
        mark.visible = not empty

    def _draw_markers(self, stack: ExitStack) -> None:
        signature = self.race.marker_signature()
        if self._drawn.get("markers") == signature:
            return
        self._drawn["markers"] = signature
        points = self.race.marker_points(MAX_MARKERS)
        index = {o: i for i, o in enumerate(self.race.optimizers)}
        stack.enter_context(self.loss_markers.hold_sync())
        self.loss_markers.x = np.asarray([p[1] for p in points], dtype=np.float32)
        self.loss_markers.y = np.asarray([p[2] for p in points], dtype=np.float32)
        self.loss_markers.colors = [theme.optimizer_color(p[0], index[p[0]]) for p in points] or ["#000000"]
        self.loss_markers.names = [p[3] for p in points]

    # ---- what the marks hold -----------------------------------------------------------------
    def rows(self, key: str, optimizers: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per optimizer, the x and y a panel's mark holds for it (its padding removed; the paths'
        settled and live parts joined)."""
        if key == "path":
            rows = self.trajectories.rows()
            empty = np.zeros(0, np.float32)
            xy = [rows[k] if k < len(rows) else (empty, empty) for k in range(len(optimizers))]
            return {o: xy[k][0] for k, o in enumerate(optimizers)}, {o: xy[k][1] for k, o in enumerate(optimizers)}
        mark = self._panels[key][0]
        x, y = np.asarray(mark.x), np.asarray(mark.y)
        counts = self._row_counts.get(key, ())
        xs, ys = {}, {}
        for k, o in enumerate(optimizers):
            c = counts[k] if k < len(counts) else 0
            xs[o] = x[k, :c] if x.ndim == 2 else x[:c]
            ys[o] = y[k, :c] if y.ndim == 2 else y[:c]
        return xs, ys


__all__ = ["ExplorerFigures"]
