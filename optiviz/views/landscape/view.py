"""LandscapeView: optimizers racing on a real net's loss landscape, drawn live.

Left: the landscape of the net's training loss on a plane of its weights (the explorer's surface
plot: heatmap and contours), each optimizer's path growing as the nets train; click a point for
the loss and accuracy of the net there. Right: the loss along the straight line from the initial
weights to each run's weights now (Goodfellow et al. 2015). The controller (plain Python) owns the
race; this widget draws its state and sends requests.
"""
from __future__ import annotations

import html
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from optiviz.engine.hparams import training_spec
from optiviz.training.data import CIFAR10
from optiviz.views.common import theme
from optiviz.views.common.controls import Quiet, log_slider, on_value, set_quietly
from optiviz.views.common.data import data_args
from optiviz.views.common.live_view import LiveView
from optiviz.views.common.share import Shareable, ShareControl, open_shared
from optiviz.views.common.surface_plot import SurfacePlot
from optiviz.views.landscape.config import LandscapeConfig
from optiviz.views.landscape.controller import LandscapeController


class LandscapeView(Shareable, LiveView):
    """The race on a net's loss landscape. Keywords are LandscapeConfig's (model, optimizers,
    hparams, n_train, batch_size, epochs, plane, resolution, span, refit_every, points, seed,
    snapshots); data: a CIFAR10 (default: the bundled subset); device: where the nets train.
    `state()` / `LandscapeView.from_state(s)`: the same race, path for path (the data is named, not copied)."""

    STATE_VIEW = "LandscapeView"
    OPTIONS = ("device", "data")

    def __init__(self, model: str = "mlp", optimizers: Any = ("sgd", "momentum", "adam"), *,
                 data: CIFAR10 | None = None, device: Any = None, **settings: Any) -> None:
        note = open_shared(self, LandscapeView.__init__, dict(device=device))
        if note is None:
            return  # built from a shared link's setting
        config = LandscapeConfig(model=model, optimizers=optimizers, **settings)
        controller = LandscapeController(config, data, device=device)  # checks everything before a widget exists
        super().__init__()
        self._quiet = Quiet()
        self._drawn_landscape: Any = None
        names = controller.race.optimizers
        colors = {n: theme.optimizer_color(n, i) for i, n in enumerate(names)}
        self.plot = SurfacePlot(None, on_click=lambda x, y: self.controller.request("select", (x, y)))
        self.path_lines = {n: bq.Lines(x=[], y=[], scales=self.plot.scales, colors=[colors[n]], stroke_width=3,
                                       labels=[n], display_legend=True) for n in names}
        self.heads = bq.Scatter(x=[], y=[], scales=self.plot.scales, colors=[colors[n] for n in names],
                                stroke="#000000", default_size=90)
        self.start_mark = bq.Scatter(x=[0.0], y=[0.0], scales=self.plot.scales, marker="diamond",
                                     colors=["#ffffff"], stroke="#000000", default_size=110)
        self.picked = bq.Scatter(x=[], y=[], scales=self.plot.scales, marker="square", colors=["#ffffff"],
                                 stroke="#000000", stroke_width=2, default_size=120)
        self.x_axis = theme.axis(self.plot.x_scale, "a")
        self.y_axis = theme.axis(self.plot.y_scale, "b", vertical=True)
        self.figure = theme.figure(self.plot.background + list(self.path_lines.values()) +
                                   [self.start_mark, self.heads, self.picked, self.plot.click_target],
                                   [self.x_axis, self.y_axis], title="loss landscape", width="600px",
                                   height="540px", legend_location="top-left")
        self._tx, self._ty = bq.LinearScale(), bq.LinearScale()
        self.curves = {n: bq.Lines(x=[], y=[], scales={"x": self._tx, "y": self._ty}, colors=[colors[n]],
                                   stroke_width=3, labels=[n], display_legend=True) for n in names}
        self.line_figure = theme.figure(list(self.curves.values()),
                                        [theme.axis(self._tx, "t (0: init, 1: the run's weights now)"),
                                         theme.axis(self._ty, "training loss", vertical=True)],
                                        title="loss on the straight line from the init", width="480px",
                                        height="400px", legend_location="top-right")
        self.start_button = widgets.Button(description="Start", button_style="primary", icon="play")
        self.start_button.on_click(lambda _b: self.toggle())
        self.refit_button = widgets.Button(description="Refit plane", icon="refresh",
                                           tooltip="fit the plane to the paths so far and recompute its grid")
        self.refit_button.on_click(lambda _b: self.controller.request("refit"))
        self.lr_sliders = {}
        for n in names:
            spec = training_spec(n, "lr")
            slider = log_slider(f"{n} lr", controller.lr(n), *spec.slider)
            slider.tooltip = spec.description + " (acts at the next step)"
            on_value(slider, self._quiet, lambda v, n=n: self.controller.request(("lr", n), v))
            self.lr_sliders[n] = slider
        self.status_html = widgets.HTML("")
        self.status_html.add_class("optiviz-landscape-status")
        self.selection_html = widgets.HTML("Click the landscape to see the loss and accuracy of the net there.")
        self.selection_html.add_class("optiviz-landscape-selection")
        self.note_html = widgets.HTML("", layout=widgets.Layout(width="480px"))
        self.share = ShareControl(self.state, self.STATE_VIEW)
        self.children = [theme.style_widget(), widgets.HBox([self.start_button, self.refit_button, self.share.box]),
                         widgets.VBox(list(self.lr_sliders.values())), self.error_html, self.status_html,
                         widgets.HBox([widgets.VBox([self.figure, self.selection_html],
                                                    layout=widgets.Layout(min_width="600px")),
                                       widgets.VBox([self.line_figure, self.note_html])])]
        self.add_class("optiviz-landscape")
        self.attach(controller)
        self.on_status()
        if note:
            controller.show_error(note)
        self.draw_error()

    # ---- scripting ----------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """Train n steps of every run in this thread, then draw (what Start does, headless)."""
        self.controller.step(n)

    def set(self, optimizer: str, *, lr: float) -> None:
        """Change one run's lr as its slider does (a bad value shows in the error line)."""
        self.controller.request(("lr", optimizer), lr)

    def select(self, x: float, y: float) -> Any:
        """What a click does: the net at (x, y) of the plane, evaluated exactly."""
        self.controller.request("select", (x, y))
        return self.controller.selection

    def toggle(self) -> None:
        runner = self.controller.runner
        if runner.is_running:
            runner.pause()
        elif not self.controller.done:
            runner.play()

    @property
    def landscape(self) -> Any:
        return self.controller.landscape

    # ---- sharing (Shareable) --------------------------------------------------------------------
    def setting(self) -> dict[str, Any]:
        return self.controller.setting()

    @classmethod
    def setting_args(cls, setting: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in setting.items() if k != "data"}, **data_args(setting, options)}

    # ---- drawing ------------------------------------------------------------------------------
    def on_frame(self) -> None:
        c = self.controller
        with self.figure.hold_sync():
            if c.landscape is not None and c.landscape is not self._drawn_landscape:
                self._draw_landscape()
            heads = []
            for name, line in self.path_lines.items():
                path = c.path(name).astype(np.float32)
                with line.hold_sync():
                    line.x, line.y = path[:, 0], path[:, 1]
                if len(path):
                    heads.append(path[-1])
            heads_xy = np.asarray(heads, dtype=np.float32).reshape(-1, 2)
            with self.heads.hold_sync():
                self.heads.x, self.heads.y = heads_xy[:, 0], heads_xy[:, 1]
            s = c.selection
            with self.picked.hold_sync():
                self.picked.x, self.picked.y = ([s.x], [s.y]) if s is not None else ([], [])
        if s is not None:
            self.selection_html.value = (f"At ({s.x:.3g}, {s.y:.3g}): training loss <b>{theme.format_loss(s.loss)}</b>, "
                                         f"accuracy <b>{s.acc:.1%}</b> on {c.landscape.n_images:,} images")
        self.on_status()

    def _draw_landscape(self) -> None:
        c = self.controller
        land = c.landscape
        self._drawn_landscape = land
        finite = land.loss[np.isfinite(land.loss)]
        f_ref = float(finite.min()) - 0.05 * max(float(np.ptp(finite)), 1e-6) if finite.size else 0.0
        self.plot.set_grid(land.xs, land.ys, land.loss, f_ref, log=True)
        self.x_axis.label, self.y_axis.label = land.plane.axis_labels
        self.figure.title = f"training loss on the {land.plane.kind} plane"
        for name, curve in self.curves.items():
            line = c.interpolations.get(name)
            if line is not None:
                with curve.hold_sync():
                    curve.x, curve.y = line.t.astype(np.float32), np.minimum(line.loss, 1e6).astype(np.float32)
        self.note_html.value = html.escape(
            f"The plane holds {land.explained_variance:.0%} of the squared distance the runs moved from the init: "
            "the rest of their movement is off the page, in the other directions of the weights.")
        self.selection_html.value = "Click the landscape to see the loss and accuracy of the net there."

    def on_config(self) -> None:
        for name, slider in self.lr_sliders.items():
            set_quietly(self._quiet, slider, self.controller.lr(name))
        self.share.refresh()

    def on_status(self) -> None:
        c = self.controller
        playing = c.runner.is_running
        self.start_button.description = "Pause" if playing else ("Done" if c.done else "Start")
        self.start_button.icon = "pause" if playing else "play"
        self.start_button.disabled = c.done and not playing
        line = html.escape(c.status_line)
        if self.status_html.value != line:
            self.status_html.value = line


__all__ = ["LandscapeView"]
