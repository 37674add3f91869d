"""SurfaceExplorer: optimizers racing live across a 2D loss surface, steerable while they run.

The lectures' first picture (a long narrow valley, SGD jittering, momentum overshooting) made
live. This widget only draws: the `ExplorerController` (controller.py, no widgets) owns the
simulator, the settings, the change log and the `LiveRunner`; the widget turns clicks and slider
moves into the controller's requests and redraws when the controller says something changed.

Threading: requests are applied at the next step boundary (in the worker while playing); the
controller's "frame" and "config" events, and so every mark update, come under the runner's
cycle lock, in the worker or in the caller's thread for `.step(n)`.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import ipywidgets as widgets
import numpy as np

from optiviz._validate import check_int
from optiviz.engine.simulator import Simulator
from optiviz.engine.surface import Surface
from optiviz.stream.runner import LiveRunner
from optiviz.views.common import theme
from optiviz.views.common.live_view import TEXT_S, LiveView
from optiviz.views.common.share import Shareable, ShareControl, open_shared
from optiviz.views.explorer.config import ExplorerConfig, setting_args
from optiviz.views.explorer.controller import CURVE_POINTS, FPS, PATH_POINTS, ExplorerController
from optiviz.views.explorer.classroom import ClassroomPanel
from optiviz.views.explorer.controls import ExplorerControls
from optiviz.views.explorer.exports import RaceExports
from optiviz.views.explorer.fair import FairRaceTool
from optiviz.views.explorer.figures import ExplorerFigures
from optiviz.views.explorer.frames import caption_html
from optiviz.views.explorer.predict import PredictRound
from optiviz.views.explorer.presets import PRESETS

CURVES_S = 0.1  # while playing, the loss and step-length panels: at most 10 redraws a second (the surface: every frame)


class SurfaceExplorer(Shareable, RaceExports, LiveView):
    """Optimizers racing on a 2D surface; sliders steer them while they run.

    Display it as the last expression of a cell. Python API (also what the tests use):
    `play()`, `pause()`, `step(n)` (synchronous), `set(...)`, `click(x, y)`, `reset()`,
    `load_preset(name)`, `close()`; mark data through `paths`, `heads`, `loss_curves`,
    `step_lengths`, `markers`, `statuses`, `error`; the run itself through `controller`. For slides:
    `save_gif`, `save_mp4`, `save_png`, `save_svg`, `save_records`, `save_tensorboard` (exports.py).

    surface: a built-in name, an expression in x and y, or a Surface; its parameters (e.g.
        condition=100 for "quadratic") as extra keywords.
    optimizers: which of OPTIMIZERS race, one row each (N=1).
    preset: a key of PRESETS; sets surface, optimizers and hyperparameters (speed may still be given).
    start: (x, y), else the surface's start. hparams: {"adam": {"lr": 0.1, "betas": (0.9, 0.99)}};
        lrs not given are the surface's suggestions. lr: one shared lr for every optimizer.
    grad_noise, clip (("norm", 1.0); kinds none/value/norm/sign), schedule ("exponential" or
        ("step", {"step_size": 50})): as in the engine. speed: steps per frame; fps: frames a second.
    grid: heatmap resolution; max_path_points / max_curve_points: points a frame sends per line.
    Constructor arguments are checked at once (ValueError); everything after that - controls,
    clicks, set() - reports problems in the widget's error line instead of raising.
    `state()` gives the whole setting as a string (the Share button shows it) and
    `SurfaceExplorer.from_state(s)` rebuilds it: the same races, path for path.
    """

    controller: ExplorerController
    STATE_VIEW = "SurfaceExplorer"
    OPTIONS = ("fps", "grid", "max_path_points", "max_curve_points", "device")

    def __init__(
        self,
        surface: str | Surface = "quadratic",
        optimizers: str | Sequence[str] = ("sgd", "momentum"),
        *,
        preset: str | None = None,
        start: Sequence[float] | None = None,
        hparams: Mapping[str, Mapping[str, Any]] | None = None,
        lr: float | None = None,
        grad_noise: float = 0.0,
        clip: tuple[str, float] | None = None,
        schedule: tuple[str, Mapping[str, Any]] | str | None = None,
        speed: int | None = None,
        fps: float = FPS,
        grid: int = 160,
        max_path_points: int = PATH_POINTS,
        max_curve_points: int = CURVE_POINTS,
        device: str = "cpu",
        seed: int = 0,
        **surface_params: Any,
    ) -> None:
        note = open_shared(self, SurfaceExplorer.__init__, dict(fps=fps, grid=grid, max_path_points=max_path_points,
                                                                max_curve_points=max_curve_points, device=device))
        if note is None:
            return  # built from a shared link's setting
        # every argument is checked before a widget exists: a refused one leaves nothing half built
        grid = check_int("grid", grid, 2, 1000)
        c = ExplorerController(surface, optimizers, preset=preset, start=start, hparams=hparams, lr=lr,
                               grad_noise=grad_noise, clip=clip, schedule=schedule, speed=speed, fps=fps,
                               max_path_points=max_path_points, max_curve_points=max_curve_points,
                               device=device, seed=seed, **surface_params)
        super().__init__()
        self.figures = ExplorerFigures(c.surface, on_click=self._surface_clicked, grid=grid)
        looks = self.looks  # LiveView's: one Layout / Style model per look in this view
        self.caption_html, self.legend_html, self.status_html = (
            widgets.HTML(layout=looks.layout(), style=looks.style(widgets.HTML)) for _ in range(3))
        self.legend_html.add_class("optiviz-legend")
        self.status_html.add_class("optiviz-status")
        self.controls = ExplorerControls(
            c.config, c.request, {"play": c.play, "pause": c.pause, "step": c.step_once, "reset": c.reset,
                                  "preset": c.load_preset}, c.preset, looks=looks)
        self.share = ShareControl(self.state, self.STATE_VIEW, looks)
        self.classroom = ClassroomPanel(c, self.figures, looks=looks)
        tabs = self.controls.panels  # the classroom tab joins the controls' tabs
        tabs.children, tabs.titles = (*tabs.children, self.classroom.panel), (*tabs.titles, "classroom")
        self._drawn_generation = 0
        self.attach(c)
        self.on_config()
        self.children = self._layout()
        if note:
            c.show_error(note)

    def _layout(self) -> list[widgets.Widget]:
        c, f, looks = self.controls, self.figures, self.looks
        # Play sits right above the surface, so both fit a 1000 px screen whatever the legend's length;
        # the curves wrap under the surface when the notebook is narrow (a file browser open at 1280 px)
        plots = widgets.HBox([widgets.VBox([f.surface_figure, self.legend_html], layout=looks.layout()),
                              widgets.VBox([f.loss_figure, f.step_length_figure], layout=looks.layout())],
                             layout=looks.layout(flex_flow="row wrap"))
        main = widgets.VBox([c.preset, self.caption_html, c.buttons, plots,
                             widgets.HBox([self.status_html, self.error_html], layout=looks.layout()),
                             self.share.box], layout=looks.layout())
        main.add_class("optiviz-explorer-main")  # what a screenshot of the race shows
        return [theme.style_widget(looks), main, c.panels]

    def _surface_clicked(self, x: float, y: float) -> None:
        """A click restarts the race there, except while the class predicts: then it places a guess."""
        c = self.controller
        if c.predict.hidden and c.predict.mode == "where":
            self.classroom.safely(lambda: c.predict.place(x, y))
        else:
            c.click(x, y)

    # ================================================================== public API
    def play(self) -> None:
        """Run live in a worker thread; returns at once."""
        self.controller.play()

    def pause(self) -> None:
        """Stop after the current chunk (the last frame is drawn), and apply what is pending."""
        self.controller.pause()

    def step(self, n: int = 1) -> None:
        """Advance n steps synchronously in the caller's thread and draw (for notebooks and tests)."""
        self.controller.step(n)

    def reset(self) -> None:
        """Every optimizer back to the start point, state and curves cleared."""
        self.controller.reset()

    def click(self, x: float, y: float) -> None:
        """What a click on the surface does: restart every optimizer from (x, y)."""
        self.controller.click(x, y)

    def load_preset(self, name: str) -> None:
        """Set everything a lecture story needs (see PRESETS) and restart."""
        self.controller.load_preset(name)

    def set(self, optimizer: str | None = None, **values: Any) -> None:
        """Change settings as the controls would, e.g. set(lr=0.1), set("adam", betas=(0.9, 0.99)),
        set(surface="rosenbrock"), set(grad_noise=0.5, clip=("norm", 1.0), speed=10).

        Hyperparameters without `optimizer` go to every racing optimizer that takes them. A bad value
        shows an error in the widget (and in `.error`) instead of raising.
        """
        self.controller.set(optimizer, **values)

    # ---- sharing (Shareable) --------------------------------------------------------------------
    def setting(self) -> dict[str, Any]:
        return self.controller.setting()

    @classmethod
    def setting_args(cls, setting: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return {**setting_args(setting), **options}

    def after_state(self, setting: dict[str, Any]) -> None:
        self.controller.show_as_preset(setting.get("preset"))

    # ---- what the marks show (tests and notebooks read these) --------------------------------
    @property
    def optimizers(self) -> tuple[str, ...]:
        return self.controller.optimizers

    @property
    def surface(self) -> Surface:
        return self.controller.surface

    @property
    def predict(self) -> PredictRound:
        """The classroom tab's predict-then-reveal round (begin, place, choose, reveal, end)."""
        return self.controller.predict

    @property
    def fair(self) -> FairRaceTool:
        """The classroom tab's fair-race tools: tune_each(steps, seeds) and seeds(seeds, steps)."""
        return self.controller.fair

    @property
    def sim(self) -> Simulator:
        return self.controller.sim

    @property
    def config(self) -> ExplorerConfig:
        return self.controller.config

    @property
    def t(self) -> int:
        """Steps taken since the last (re)start."""
        return self.controller.t

    @property
    def runner(self) -> LiveRunner:
        return self.controller.runner

    @property
    def paths(self) -> dict[str, np.ndarray]:
        """Each racing optimizer's path: (points, 2) float32, start and newest point included,
        decimated to max_path_points. The trajectories marks draw it thinned to the screen
        (pixels.screen_thin), their settled part as decimated when it was last settled and their
        live part every point since (figures.rows("path") gives what they hold)."""
        c = self.controller
        rows = c.race.rows("path", c.max_path_points)
        return {o: np.stack(rows[k], axis=-1) for k, o in enumerate(self.optimizers)}

    @property
    def heads(self) -> dict[str, tuple[float, float]]:
        heads = self.figures.heads
        xs, ys = np.asarray(heads.x), np.asarray(heads.y)
        return {o: (float(xs[i]), float(ys[i])) for i, o in enumerate(self.optimizers) if i < len(xs)}

    @property
    def loss_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(steps, loss above f_ref) per optimizer, as the loss mark holds them."""
        x, y = self.figures.rows("loss", self.optimizers)
        return {o: (x[o], y[o]) for o in self.optimizers}

    @property
    def step_lengths(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x, y = self.figures.rows("len", self.optimizers)
        return {o: (x[o], y[o]) for o in self.optimizers}

    @property
    def markers(self) -> dict[str, list[tuple[float, str]]]:
        """Hyperparameter changes per optimizer: (step, label), as marked on the loss curve."""
        return self.controller.markers

    @property
    def statuses(self) -> dict[str, str]:
        """What the legend says per optimizer: "running", "converged at step 312", "diverged at step 17"."""
        return self.controller.statuses

    @property
    def marks(self) -> dict[str, Any]:
        """The bqplot marks by role, for tests that look at raw traits."""
        return self.figures.marks

    # ================================================================== drawing the controller
    def close(self) -> None:
        """Close the view, the loss axes a live switch of scale type left outside its tree, and the
        classroom overlays not in the figure now."""
        super().close()
        figures = getattr(self, "figures", None)  # none when the constructor refused its arguments
        if figures is not None:
            figures.close_retired()
        classroom = getattr(self, "classroom", None)
        if classroom is not None:
            classroom.close()

    def on_config(self) -> None:
        """A setting changed: a new surface or run is drawn anew; the controls follow the config."""
        c, f = self.controller, self.figures
        with ExitStack() as stack:
            if f.surface is not c.surface:
                f.draw_surface(c.surface, stack)
            if self._drawn_generation != c.generation:
                self._drawn_generation = c.generation
                f.start_run(c.race, stack)
            title, text = c.caption
            self._set_html(self.caption_html, caption_html(title, text))
            self.controls.sync(c.config, c.surface, c.preset)
            self._draw(stack)
        self.share.refresh()

    def on_frame(self) -> None:
        with ExitStack() as stack:
            self._draw(stack, curves=self.due("curves", CURVES_S), text=self.due("text", TEXT_S))

    def on_status(self) -> None:
        """Paused, done, stopped: the panels and texts show the run's last frame (a playing frame
        may have left them out)."""
        if self.figures.race is None:
            self._draw_status()
            return
        with ExitStack() as stack:
            self._draw(stack)

    def _draw(self, stack: ExitStack, curves: bool = True, text: bool = True) -> None:
        c = self.controller
        self.figures.draw_frame(c.max_path_points, c.max_curve_points, stack, curves=curves)
        self.classroom.draw(stack)
        if text:
            self._draw_legend()
            self._draw_status()

    def _draw_legend(self) -> None:
        c = self.controller
        rows = []
        for i, (o, status) in enumerate(c.statuses.items()):
            hint = " (lower its lr, Reset)" if status.startswith("diverged") else ""
            rows.append(
                f'<tr><td><span style="display:inline-block;width:26px;height:8px;background:'
                f'{theme.optimizer_color(o, i)}"></span></td><td><b>{o}</b></td>'
                f'<td>loss {theme.format_loss(c.race.last_loss(o))}</td>'
                f'<td style="white-space:normal">{html.escape(status)}{hint}</td></tr>')
        self._set_html(self.legend_html, f'<table class="optiviz-legend" style="font-size:{theme.font_px()}px;'
                                         f'white-space:nowrap">' + "".join(rows) + "</table>")

    def _draw_status(self) -> None:
        line = html.escape(self.controller.status_line)
        self._set_html(self.status_html, f'<span style="font-size:{theme.font_px()}px">{line}</span>')

    @staticmethod
    def _set_html(widget: widgets.HTML, value: str) -> None:
        if widget.value != value:
            widget.value = value


__all__ = ["SurfaceExplorer", "PRESETS", "ExplorerConfig", "ExplorerController"]
