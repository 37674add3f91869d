"""Many runs at once, drawn: stability maps over two hyperparameters and basin maps over start points.

The maps are computed by `optiviz.engine.sweeps` (one batched simulator); these views stream the
partial maps through a LiveRunner while they compute, with a progress bar, and turn a click on a
cell into that run's trajectory on the surface.
"""
from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.simulator import simulate
from optiviz.engine.surfaces import SURFACES, get_surface
from optiviz.engine.sweeps import (
    RATE_COLOUR_MAX,
    Axis,
    BasinMap,
    StabilityMap,
    axis_names,
    iter_basin_map,
    iter_stability_map,
    make_axis,
)
from optiviz.views.common import theme
from optiviz.views.maps.args import BASIN_STEPS, GRID, STABILITY_STEPS, check_basin_args, check_stability_args
from optiviz.views.common.share import Shareable, ShareControl, keyword_args, open_shared
from optiviz.views.common.streamed import StreamedView
from optiviz.views.maps.exports import MapExports
from optiviz.views.common.surface_plot import SurfacePlot, click_target, path_on_plot

COLOUR_BY = {"loss": "final loss", "rate": "rate", "steps": "steps", "diverged": "diverged"}  # the buttons
COLOUR_LABELS = {"loss": "log10 (loss − f*)", "rate": "rate per step", "steps": "steps to converge",
                 "diverged": "diverged (1) or not (0)"}  # the colour bar
MAP_SCHEMES = {"loss": ("#0d0887", "#7e03a8", "#cc4778", "#f89540", "#f0f921"),
               "rate": ("#08306b", "#4292c6", "#deebf7", "#fdae61", "#a50026"),  # fast .. 1 (pale) .. growing
               "steps": ("#00441b", "#41ab5d", "#c7e9c0", "#fff7bc"),
               "diverged": ("#f7f7f7", "#b2182b")}
BASIN_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def axis_coordinates(axis: Axis, values: Any = None) -> tuple[np.ndarray, str]:
    """Where an axis's values (or other `values` on it) sit on the plot: log10 for log axes,
    log10(1 - v) for betas near 1."""
    v = axis.values if values is None else np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if axis.scale == "log":
            return np.log10(v), f"log10 {axis.name}"
        if axis.scale == "log1m":
            return np.log10(1.0 - v), f"log10 (1 − {axis.name})"
    return v.astype(float), axis.name


class _MapMixin:
    """Maps say "compute": the same as StreamedView.start / run_sync."""

    def compute(self) -> None:
        self.start()  # type: ignore[attr-defined]

    def compute_sync(self) -> Any:
        return self.run_sync()  # type: ignore[attr-defined]


class StabilityMapView(Shareable, MapExports, _MapMixin, StreamedView):
    """A grid of (x, y) hyperparameter settings coloured by final loss, steps to converge or divergence.

    Click a cell to see that run's trajectory on the surface; `send_to(explorer)` hands the setting
    to a SurfaceExplorer. `state()` / `StabilityMapView.from_state(s)`: the same map, cell for cell.
    """

    STATE_VIEW = "StabilityMapView"
    KEYS = ("surface", "optimizer", "x", "y", "resolution", "steps", "every", "colour")

    def __init__(self, surface: str = "quadratic", optimizer: str = "momentum", x: str = "lr",
                 y: str = "momentum", *, resolution: int = 80, steps: int = 300, every: int = 25,
                 colour: str = "loss", **fixed: Any) -> None:
        note = open_shared(self, StabilityMapView.__init__, {})
        if note is None:
            return  # built from a shared link's setting
        a = check_stability_args(surface, optimizer, x, y, resolution, steps, every, colour, COLOUR_BY)
        surface, optimizer, x, y, resolution, steps, every, colour = (
            a["surface"], a["optimizer"], a["x"], a["y"], a["resolution"], a["steps"], a["every"], a["colour"])
        super().__init__(fps=8)  # only now, with every argument checked: nothing is left half built
        self.start_button.description = "Compute"
        self.result: StabilityMap | None = None
        self.selected: dict[str, Any] | None = None
        self.selected_cell: tuple[int, int] | None = None  # (row, column) of the cell clicked on this map
        self._cell_to_select: tuple[int, int] | None = None  # a shared setting's cell, once its map is done
        self.fixed = fixed
        self.surface_w = widgets.Dropdown(options=list(SURFACES), value=surface, description="surface")
        self.optimizer_w = widgets.Dropdown(options=list(OPTIMIZERS), value=optimizer, description="optimizer")
        self.x_w = widgets.Dropdown(options=axis_names(optimizer), value=x, description="x axis")
        self.y_w = widgets.Dropdown(options=axis_names(optimizer), value=y, description="y axis")
        self.resolution_w = widgets.IntSlider(value=resolution, min=GRID[0], max=GRID[1], step=4, description="grid",
                                              continuous_update=False)
        self.steps_w = widgets.IntSlider(value=steps, min=STABILITY_STEPS[0], max=STABILITY_STEPS[1], step=20,
                                         description="steps",
                                         continuous_update=False)
        self.every = every
        self.colour_w = widgets.ToggleButtons(options=[(v, k) for k, v in COLOUR_BY.items()], value=colour)
        self.optimizer_w.observe(self._optimizer_changed, "value")
        self.colour_w.observe(lambda _c: self._draw_map(), "value")

        self._cs = bq.ColorScale(colors=list(MAP_SCHEMES[colour]))
        self._mx, self._my = bq.LinearScale(), bq.LinearScale()
        self.heatmap = bq.HeatMap(x=np.zeros(2), y=np.zeros(2), color=np.full((2, 2), np.nan),
                                  scales={"x": self._mx, "y": self._my, "color": self._cs}, null_color="#000000")
        self._pick = bq.Scatter(x=[], y=[], scales={"x": self._mx, "y": self._my}, marker="square",
                                colors=["#ffffff"], stroke="#000000", stroke_width=2, default_size=140)
        self.click_target = click_target({"x": self._mx, "y": self._my}, self._map_clicked)
        # the theory, where it is exact (engine/sweep_theory.py): analytic edge, fastest setting
        self.edge_line = bq.Lines(x=[], y=[], scales={"x": self._mx, "y": self._my}, colors=["#000000"],
                                  stroke_width=2.5, line_style="dashed")
        self.best_line = bq.Lines(x=[], y=[], scales={"x": self._mx, "y": self._my}, colors=["#000000"],
                                  stroke_width=2.5, line_style="dotted")
        self.best_mark = bq.Scatter(x=[], y=[], scales={"x": self._mx, "y": self._my}, marker="cross",
                                    colors=["#00e5ff"], stroke="#000000", default_size=220)
        self.theory_html = widgets.HTML("")
        self._drawn_theory: Any = ()  # the MapTheory drawn last: its marks are sent once per computation
        self._ax_x = theme.axis(self._mx, "x")
        self._ax_y = theme.axis(self._my, "y", vertical=True)
        # the colour bar's meaning goes in the title: a ColorAxis label sits over the map's right edge
        self._ax_c = bq.ColorAxis(scale=self._cs, side="right")
        self.map_figure = theme.figure([self.heatmap, self.edge_line, self.best_line, self.best_mark, self._pick,
                                        self.click_target], [self._ax_x, self._ax_y, self._ax_c],
                                       title="stability map", width="620px", height="540px")
        self.map_figure.fig_margin = {**self.map_figure.fig_margin, "right": 110}
        self.plot = SurfacePlot(get_surface(surface))
        self.path = bq.Lines(x=[], y=[], scales=self.plot.scales, stroke_width=3, colors=["#D55E00"])
        self.surface_figure = theme.figure(self.plot.background + [self.path],
                                           [theme.axis(self.plot.x_scale, "x"),
                                            theme.axis(self.plot.y_scale, "y", vertical=True)],
                                           title="selected run", width="480px", height="460px")
        self.selection = widgets.HTML("Click a cell to see its run.")
        self.selection.add_class("optiviz-map-selection")
        self.share = ShareControl(self.state, self.STATE_VIEW)
        self.share.follow(self.surface_w, self.optimizer_w, self.x_w, self.y_w, self.resolution_w, self.steps_w,
                          self.colour_w)
        controls = widgets.VBox([widgets.HBox([self.surface_w, self.optimizer_w]), widgets.HBox([self.x_w, self.y_w]),
                                 widgets.HBox([self.resolution_w, self.steps_w]), self.colour_w,
                                 widgets.HBox([self.start_button, self.stop_button, self.progress]), self.status,
                                 self.share.box])
        self.children = [theme.style_widget(), controls,
                         widgets.HBox([widgets.VBox([self.map_figure, self.theory_html]),
                                       widgets.VBox([self.surface_figure, self.selection])])]
        if note:
            self._show_error(note)

    # -------------------------------------------------------------- sharing (Shareable)
    def setting(self) -> dict[str, Any]:
        """What the controls are set to now (they hold this view's setting) and the fixed hyperparameters."""
        return {"surface": self.surface_w.value, "optimizer": self.optimizer_w.value, "x": self.x_w.value,
                "y": self.y_w.value, "resolution": self.resolution_w.value, "steps": self.steps_w.value,
                "every": self.every, "colour": self.colour_w.value, "fixed": dict(self.fixed),
                "selected": self.selected_cell}

    @classmethod
    def setting_args(cls, setting: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return keyword_args(setting, cls.KEYS, "fixed")

    def after_state(self, setting: dict[str, Any]) -> None:
        """The cell that was selected is selected again when the map is computed."""
        self._cell_to_select = setting.get("selected")

    # -------------------------------------------------------------- controls
    def _optimizer_changed(self, change: dict) -> None:
        names = axis_names(change["new"])
        x, y = self.x_w.value, self.y_w.value
        self.x_w.options = names
        self.y_w.options = names
        self.x_w.value = x if x in names else names[0]
        self.y_w.value = y if y in names and y != self.x_w.value else next(n for n in names if n != self.x_w.value)

    def _start(self) -> Iterator[StabilityMap]:
        if self.x_w.value == self.y_w.value:
            raise ValueError(f"x and y axes must differ, both are {self.x_w.value!r}")
        res = self.resolution_w.value
        self.selected_cell = None  # a cell of the map being replaced
        self.share.refresh()
        self.plot.set_surface(get_surface(self.surface_w.value))
        self.path.x, self.path.y = [], []
        return iter_stability_map(self.surface_w.value, self.optimizer_w.value,
                                  make_axis(self.x_w.value, num=res, optimizer=self.optimizer_w.value),
                                  make_axis(self.y_w.value, num=res, optimizer=self.optimizer_w.value),
                                  steps=self.steps_w.value, every=self.every, **self.fixed)

    # -------------------------------------------------------------- drawing
    def _publish(self, records: list[StabilityMap]) -> None:
        maps = [r for r in records if isinstance(r, StabilityMap)]
        if not maps:
            return
        self.result = maps[-1]
        self.progress.value = self.result.progress
        self._draw_map()
        if self._cell_to_select is not None and self.result.steps_done >= self.result.steps:
            cell, self._cell_to_select = self._cell_to_select, None
            try:
                self.select(*cell)
            except ValueError as exc:
                self._show_error(f"the shared setting's cell: {exc}")
        m = self.result
        n_div, n_conv = int(m.diverged.sum()), int((m.converged_at >= 0).sum())
        self.status.value = (f"step {m.steps_done} / {m.steps} · {m.final_loss.size:,} runs · "
                             f"{n_conv:,} converged · {n_div:,} diverged")

    def _draw_map(self) -> None:
        m = self.result
        if m is None:
            return
        by = self.colour_w.value
        xs, xlabel = axis_coordinates(m.x)
        ys, ylabel = axis_coordinates(m.y)
        colour = m.colour(by).astype(np.float32)
        hold = [self.heatmap.hold_sync(), self._cs.hold_sync(), self._ax_x.hold_sync(), self._ax_y.hold_sync(),
                self._ax_c.hold_sync(), self.map_figure.hold_sync(), self.click_target.hold_sync(), self._mx.hold_sync(), self._my.hold_sync()]
        with contextlib.ExitStack() as stack:
            for h in hold:
                stack.enter_context(h)
            self._cs.colors = list(MAP_SCHEMES[by])
            if by == "rate":  # pale at 1: blue converges (darker is faster), red grows, deepest red diverged
                self._cs.min, self._cs.mid, self._cs.max = 0.0, 1.0, RATE_COLOUR_MAX
            else:
                self._cs.min = self._cs.mid = self._cs.max = None
            self.map_figure.title = f"stability map · {COLOUR_LABELS[by]}"
            self._ax_x.label, self._ax_y.label = xlabel, ylabel
            self._mx.min, self._mx.max = float(xs.min()), float(xs.max())
            self._my.min, self._my.max = float(ys.min()), float(ys.max())
            self.heatmap.x, self.heatmap.y = xs.astype(np.float32), ys.astype(np.float32)
            self.heatmap.color = colour
            self.click_target.x, self.click_target.y = [float(xs.min()), float(xs.max())], [float(ys.min()), float(ys.max())]
        self._draw_theory(m)

    def _draw_theory(self, m: StabilityMap) -> None:
        """The analytic edge and the fastest setting over the map, and the theory's one line."""
        theory = m.theory()
        if theory is self._drawn_theory:
            return  # the partial maps of one computation share their theory: drawn already
        self._drawn_theory = theory
        lines = {self.edge_line: ([], []), self.best_line: ([], []), self.best_mark: ([], [])}
        if theory is not None:
            def plot(xv: np.ndarray, yv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return axis_coordinates(m.x, xv)[0].astype(np.float32), axis_coordinates(m.y, yv)[0].astype(np.float32)

            lines[self.edge_line] = plot(theory.edge_x, theory.edge_y)
            best = plot(theory.best_x, theory.best_y)
            lines[self.best_mark if theory.best is not None else self.best_line] = best
        for mark, (x, y) in lines.items():
            with mark.hold_sync():
                mark.x, mark.y = x, y
        drawn = "dashed: the edge" + ("; cross: the fastest setting" if theory is not None and theory.best is not None
                                      else "; dotted: the fastest lr")
        self.theory_html.value = (f'<span class="optiviz-theory">{html.escape(theory.note)} ({drawn})</span>'
                                  if theory is not None
                                  else '<span class="optiviz-theory">No exact theory for this map: it needs a quadratic '
                                       'surface, sgd, momentum or nesterov, and axes among lr, momentum, weight_decay.</span>')

    # -------------------------------------------------------------- selection
    def _map_clicked(self, x: float, y: float) -> None:
        """A click at (x, y) in plot coordinates selects the nearest cell."""
        if self.result is None or self.closed:
            return
        xs, _ = axis_coordinates(self.result.x)
        ys, _ = axis_coordinates(self.result.y)
        self.select(int(np.abs(ys - y).argmin()), int(np.abs(xs - x).argmin()))

    def select(self, i: int, j: int) -> dict[str, Any] | None:
        """Show the run of cell (row i, column j) on the surface; returns its hyperparameters (None
        after close(), which ignores it)."""
        m = self.result
        if self.closed:
            return None
        if m is None:
            raise ValueError("compute the map first")
        if not (0 <= i < m.final_loss.shape[0] and 0 <= j < m.final_loss.shape[1]):
            raise ValueError(f"cell ({i}, {j}) is outside the {m.final_loss.shape[0]} x {m.final_loss.shape[1]} map")
        setting = m.setting(i, j)
        run = simulate(m.surface, m.optimizer, steps=m.steps, **self.fixed, **setting)
        xs, _ = axis_coordinates(m.x)
        ys, _ = axis_coordinates(m.y)
        with self.path.hold_sync(), self._pick.hold_sync():
            shown_path = path_on_plot(run.path, m.surface.domain)
            self.path.x, self.path.y = shown_path[:, 0].astype(np.float32), shown_path[:, 1].astype(np.float32)
            self._pick.x, self._pick.y = [float(xs[j])], [float(ys[i])]
        shown = ", ".join(f"{k} = {_fmt(v)}" for k, v in setting.items())
        outcome = {"converged": f"converged at step {run.converged_at}", "diverged": f"diverged at step {run.diverged_at}",
                   "running": f"still running after {m.steps} steps"}[run.status]
        rate = f"measured rate {m.rate[i, j]:.4f}" if np.isfinite(m.rate[i, j]) else "no measured rate"
        theory = m.theory()
        if theory is not None:
            rate += f", predicted {theory.predicted[i, j]:.4f}"
        self.selection.value = (f"<b>{m.optimizer}</b>: {shown} — {outcome}, final loss {theme.format_loss(run.loss[-1])}"
                                f"<br>{rate} per step")
        self.selected = {"optimizer": m.optimizer, **setting}
        self.selected_cell = (i, j)
        self.share.refresh()
        return self.selected

    def send_to(self, explorer: Any) -> None:
        """Give the selected setting to a SurfaceExplorer (same surface, that optimizer's sliders)."""
        if self.closed:
            return
        if self.selected is None:
            raise ValueError("select a cell first")
        hp = dict(self.selected)
        explorer.set(hp.pop("optimizer"), **hp)


class BasinMapView(Shareable, MapExports, _MapMixin, StreamedView):
    """Start points over the domain, coloured by the minimum each optimizer ends in; one map per optimizer.
    `state()` / `BasinMapView.from_state(s)`: the same maps, start for start."""

    STATE_VIEW = "BasinMapView"
    KEYS = ("surface", "optimizers", "resolution", "steps", "every")

    def __init__(self, surface: str = "himmelblau", optimizers: tuple[str, ...] = ("sgd", "momentum", "adam"), *,
                 resolution: int = 60, steps: int = 400, every: int = 25, **kwargs: Any) -> None:
        note = open_shared(self, BasinMapView.__init__, {})
        if note is None:
            return  # built from a shared link's setting
        a = check_basin_args(surface, optimizers, resolution, steps, every)
        surface, optimizers, resolution, steps, every = (
            a["surface"], a["optimizers"], a["resolution"], a["steps"], a["every"])
        super().__init__(fps=8)  # only now, with every argument checked: nothing is left half built
        self.start_button.description = "Compute"
        self.result: BasinMap | None = None
        self.kwargs = kwargs
        self.every = every
        self.surface_w = widgets.Dropdown(options=list(SURFACES), value=surface, description="surface")
        self.optimizers_w = widgets.SelectMultiple(options=list(OPTIMIZERS), value=tuple(optimizers),
                                                   description="optimizers", rows=6)
        self.resolution_w = widgets.IntSlider(value=resolution, min=GRID[0], max=GRID[1], step=4, description="grid",
                                              continuous_update=False)
        self.steps_w = widgets.IntSlider(value=steps, min=BASIN_STEPS[0], max=BASIN_STEPS[1], step=20,
                                         description="steps",
                                         continuous_update=False)
        self.legend = widgets.HTML("")
        self.maps_box = widgets.HBox([])
        self._figures: dict[str, tuple[bq.Figure, bq.HeatMap, bq.ColorScale, SurfacePlot]] = {}
        self.share = ShareControl(self.state, self.STATE_VIEW)
        self.share.follow(self.surface_w, self.optimizers_w, self.resolution_w, self.steps_w)
        controls = widgets.VBox([widgets.HBox([self.surface_w, self.optimizers_w]),
                                 widgets.HBox([self.resolution_w, self.steps_w]),
                                 widgets.HBox([self.start_button, self.stop_button, self.progress]), self.status,
                                 self.share.box])
        self.children = [theme.style_widget(), controls, self.maps_box, self.legend]
        if note:
            self._show_error(note)

    def setting(self) -> dict[str, Any]:
        """What the controls are set to now (they hold this view's setting) and the other keywords."""
        return {"surface": self.surface_w.value, "optimizers": list(self.optimizers_w.value),
                "resolution": self.resolution_w.value, "steps": self.steps_w.value, "every": self.every,
                "options": dict(self.kwargs)}

    @classmethod
    def setting_args(cls, setting: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return keyword_args(setting, cls.KEYS, "options")

    def _start(self) -> Iterator[BasinMap]:
        names = tuple(self.optimizers_w.value)
        if not names:
            raise ValueError(f"optimizers: choose at least one of {', '.join(OPTIMIZERS)}")
        surface = get_surface(self.surface_w.value)
        self._build_figures(surface, names)
        return iter_basin_map(surface, names, resolution=self.resolution_w.value, steps=self.steps_w.value,
                              every=self.every, **self.kwargs)

    def _build_figures(self, surface: Any, names: tuple[str, ...]) -> None:
        self._figures.clear()
        figs = []
        for name in names:
            plot = SurfacePlot(surface, grid=64)
            cs = bq.ColorScale(colors=list(BASIN_COLORS), min=0, max=len(BASIN_COLORS) - 1)
            hm = bq.HeatMap(x=np.zeros(2), y=np.zeros(2), color=np.full((2, 2), np.nan),
                            scales={**plot.scales, "color": cs}, null_color="#000000")
            fig = theme.figure([hm, plot.contours, plot.minima],
                               [theme.axis(plot.x_scale, "x"), theme.axis(plot.y_scale, "y", vertical=True)],
                               title=name, width="420px", height="420px")
            self._figures[name] = (fig, hm, cs, plot)
            figs.append(fig)
        self.maps_box.children = figs

    def _publish(self, records: list[BasinMap]) -> None:
        maps = [r for r in records if isinstance(r, BasinMap)]
        if not maps:
            return
        b = self.result = maps[-1]
        self.progress.value = b.progress
        for k, name in enumerate(b.optimizers):
            _fig, hm, _cs, _plot = self._figures[name]
            colour = np.where(b.labels[k] >= 0, b.labels[k] % len(BASIN_COLORS), np.nan).astype(np.float32)
            with hm.hold_sync():
                hm.x, hm.y = b.xs.astype(np.float32), b.ys.astype(np.float32)
                hm.color = colour
        rows = []
        for m, (mx, my) in enumerate(b.minima[: len(BASIN_COLORS)]):
            share = [(b.labels[k] == m).mean() for k in range(len(b.optimizers))]
            swatch = f'<span style="color:{BASIN_COLORS[m % len(BASIN_COLORS)]}">■</span>'
            rows.append(f"<tr><td>{swatch} ({mx:.2f}, {my:.2f})</td>" + "".join(f"<td>{s:.0%}</td>" for s in share) + "</tr>")
        head = "<tr><th>minimum</th>" + "".join(f"<th>{n}</th>" for n in b.optimizers) + "</tr>"
        self.legend.value = f'<table class="optiviz-legend">{head}{"".join(rows)}</table>' \
                            '<small>black: did not settle or diverged</small>'
        self.status.value = f"step {b.steps_done} / {b.steps} · {b.labels[0].size:,} starts per optimizer"


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return f"{float(v):.3g}"
