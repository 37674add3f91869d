"""SurfaceExplorer: optimizers racing live across a 2D loss surface, steerable while they run.

The lectures' first picture (a long narrow valley, SGD jittering, momentum overshooting) made
live. The explorer is only a view: a `Simulator` (engine) advances every optimizer in one batch,
a `LiveRunner` (stream) runs it in a worker thread and hands over records at a bounded rate, and
this module draws them into bqplot marks and turns clicks and slider moves into control requests.

Threading: widget observers only record requests (`LiveRunner.request`); the worker applies them
at the next step boundary, so a slider moved mid-run changes that optimizer from its current
point. Every engine call and every mark update happens under the runner's cycle lock (in
`_apply`, `_step_chunk`, `_publish`), in the worker or in the caller's thread for `.step(n)`.
"""
from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import torch

from optiviz._validate import check_choice
from optiviz.engine.hparams import HPARAMS
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.schedules import schedule_spec
from optiviz.engine.simulator import CONVERGED, DIVERGED, Simulator, resolve_surface
from optiviz.engine.surface import Surface
from optiviz.engine.surfaces import SURFACE_PARAMS
from optiviz.stream.runner import DONE, LiveRunner
from optiviz.stream.series import Markers, SeriesBuffer
from optiviz.views.common import theme
from optiviz.views.common.surface_plot import SurfacePlot
from optiviz.views.common.controls import apply_control, set_quietly
from optiviz.views.explorer.config import (
    ExplorerConfig,
    build_schedule,
    build_transform,
    full_hparams,
    get_preset,
    preset_config,
)
from optiviz.views.explorer.controls import ExplorerControls
from optiviz.views.explorer.frames import (
    caption_html,
    decade_ticks,
    event_label,
    flat_span,
    pin_scale,
    trajectory_view,
)
from optiviz.views.common.widget_tree import owned_widgets, pad_rows
from optiviz.views.explorer.presets import PRESETS
from optiviz.views.common.pacing import Pacer

LOSS_FLOOR = 1e-30  # log axes cannot show 0: an exactly converged run sits on the floor


@dataclass
class _Chunk:
    """A SimRecord tagged with the run it belongs to (records of a restarted run are dropped)."""

    generation: int
    record: Any


class SurfaceExplorer(widgets.VBox):
    """Optimizers racing on a 2D surface; sliders steer them while they run.

    Display it as the last expression of a cell. Python API (also what the tests use):
    `play()`, `pause()`, `step(n)` (synchronous), `set(...)`, `click(x, y)`, `reset()`,
    `load_preset(name)`, `close()`; mark data through `paths`, `heads`, `loss_curves`,
    `step_lengths`, `markers`, `statuses`, `error`.

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
    """

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
        fps: float = 20.0,
        grid: int = 160,
        max_path_points: int = 800,
        max_curve_points: int = 400,
        device: str = "cpu",
        seed: int = 0,
        **surface_params: Any,
    ) -> None:
        super().__init__()
        self.add_class(theme.CSS_CLASS)
        self._grid = int(grid)
        self.max_path_points = int(max_path_points)
        self.max_curve_points = int(max_curve_points)
        self._device = device
        self._seed = int(seed)
        self._generation = 0
        self._closed = False
        self._error = ""
        self._playing = False
        self._sync_steps: int | None = None  # .step(n): the next chunk's size, instead of speed
        self._pacer = Pacer(fps)

        if preset is not None:
            cfg = preset_config(get_preset(preset))
            if speed is not None:
                cfg.speed = int(speed)
        else:
            names = (optimizers,) if isinstance(optimizers, str) else tuple(optimizers)
            cfg = ExplorerConfig(
                surface=surface if isinstance(surface, str) else surface.name,
                surface_params=dict(surface_params), optimizers=tuple(n.lower() for n in names),
                start=None if start is None else (float(start[0]), float(start[1])),
                grad_noise=float(grad_noise), clip=clip or ("none", 1.0),
                schedule=schedule_spec(schedule), speed=int(speed or 2), shared_lr=lr,
            )
        self._surface = surface if isinstance(surface, Surface) and preset is None else \
            resolve_surface(cfg.surface, **cfg.surface_params)
        cfg.hparams = full_hparams(self._surface, OPTIMIZERS, hparams or cfg.hparams)
        self._cfg = cfg
        self._preset_name = preset

        self._build_plots()
        self._build_texts()
        self.controls = ExplorerControls(
            cfg, self._request, {"play": self.play, "pause": self.pause, "step": self._on_step_button,
                                 "reset": self.reset, "preset": self.load_preset}, preset)
        self._runner = LiveRunner(self._step_chunk, apply=self._apply, publish=self._publish,
                                  on_error=self._show_error, on_status=self._on_status, fps=fps,
                                  name="surface-explorer")
        self.sim = self._new_simulator(cfg, self._surface)  # errors here are the caller's to see
        self._start_run(surface_changed=True)
        self._sync_widgets()
        self.children = self._layout()

    # ================================================================== public API
    def play(self) -> None:
        """Run live in a worker thread; returns at once."""
        if self._closed:
            return
        self._playing = True
        self._pacer.reset()
        self._runner.play()

    def pause(self) -> None:
        """Stop after the current chunk (the last frame is drawn), and apply what is pending."""
        self._playing = False
        self._runner.pause()
        self._runner.wait(2.0)
        if not self._closed:
            self._runner.apply_pending()

    def step(self, n: int = 1) -> None:
        """Advance n steps synchronously in the caller's thread and draw (for notebooks and tests)."""
        if self._closed:
            return
        n = int(n)
        if self._runner.is_running:
            self.pause()  # the worker must be resting before this thread takes over
        self._playing = False
        self._sync_steps = max(n, 0)
        try:
            self._runner.run_sync(1 if n > 0 else 0)
        finally:
            self._sync_steps = None

    def reset(self) -> None:
        """Every optimizer back to the start point, state and curves cleared."""
        self._request("reset", True)

    def click(self, x: float, y: float) -> None:
        """What a click on the surface does: restart every optimizer from (x, y)."""
        self._request("start", (x, y))

    def load_preset(self, name: str) -> None:
        """Set everything a lecture story needs (see PRESETS) and restart."""
        try:
            get_preset(name)  # a bad name is a message here, not an error in the worker
        except ValueError as exc:
            self._show_error(str(exc))
            return
        self._request("preset", name)

    def set(self, optimizer: str | None = None, **values: Any) -> None:
        """Change settings as the controls would, e.g. set(lr=0.1), set("adam", betas=(0.9, 0.99)),
        set(surface="rosenbrock"), set(grad_noise=0.5, clip=("norm", 1.0), speed=10).

        Hyperparameters without `optimizer` go to every racing optimizer that takes them. A bad value
        shows an error in the widget (and in `.error`) instead of raising.
        """
        surface_keys = {"surface", "expression"} | {p for ps in SURFACE_PARAMS.values() for p in ps}
        surface_change = {k: values.pop(k) for k in list(values) if k in surface_keys}
        if surface_change:
            name = surface_change.pop("surface", surface_change.pop("expression", self._cfg.surface))
            params = {**(self._cfg.surface_params if name == self._cfg.surface else {}), **surface_change}
            self._request("surface", (name, params))
        for key in ("grad_noise", "clip", "schedule", "speed", "optimizers", "start"):
            if key in values:
                value = values.pop(key)
                if key == "schedule":
                    value = schedule_spec(value)
                if key == "start":
                    self._request("start", value)
                    continue
                self._request(key, value)
        targets = [optimizer] if optimizer is not None else None
        for name, value in values.items():
            opts = targets or [o for o in self._cfg.optimizers if name in HPARAMS[o]] or [None]
            for opt in opts:
                if opt is None:
                    self._show_error(f"unknown setting {name!r}; hyperparameters of "
                                     f"{', '.join(self._cfg.optimizers)}: "
                                     f"{', '.join(sorted(set().union(*(HPARAMS[o] for o in self._cfg.optimizers))))}")
                    continue
                self._request(f"hp:{opt}:{name}", value)

    def close(self) -> None:
        """Stop the worker, then close every widget this view made."""
        if self._closed:
            return
        self._closed = True
        self._playing = False
        self._pacer.interrupt()
        self._runner.close()
        for child in self.children:
            for w in owned_widgets(child, skip=self):
                w.close()
        super().close()

    # ---- what the marks show (tests and notebooks read these) --------------------------------
    @property
    def optimizers(self) -> tuple[str, ...]:
        return self.sim.optimizers

    @property
    def surface(self) -> Surface:
        return self._surface

    @property
    def t(self) -> int:
        """Steps taken since the last (re)start."""
        return int(self.sim.t)

    @property
    def paths(self) -> dict[str, np.ndarray]:
        """Trajectory mark data per racing optimizer: (points, 2) float32, start included."""
        x, y = self._rows("path")
        return {o: np.stack([x[o], y[o]], axis=-1) for o in self.optimizers}

    @property
    def heads(self) -> dict[str, tuple[float, float]]:
        xs, ys = np.asarray(self._heads.x), np.asarray(self._heads.y)
        return {o: (float(xs[i]), float(ys[i])) for i, o in enumerate(self.optimizers) if i < len(xs)}

    @property
    def loss_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(steps, loss above f_ref) per optimizer, as the loss mark holds them."""
        x, y = self._rows("loss")
        return {o: (x[o], y[o]) for o in self.optimizers}

    @property
    def step_lengths(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x, y = self._rows("len")
        return {o: (x[o], y[o]) for o in self.optimizers}

    @property
    def markers(self) -> dict[str, list[tuple[float, str]]]:
        """Hyperparameter changes per optimizer: (step, label), as marked on the loss curve."""
        return {o: list(self._events[o]) for o in self.optimizers}

    @property
    def statuses(self) -> dict[str, str]:
        """What the legend says per optimizer: "running", "converged at step 312", "diverged at step 17"."""
        return dict(self._status_text)

    @property
    def error(self) -> str:
        """The message the error line shows ('' when none)."""
        return self._error

    @property
    def marks(self) -> dict[str, Any]:
        """The bqplot marks by role, for tests that look at raw traits."""
        return {"surface": self._heatmap, "contours": self._contours, "minima": self._minima,
                "start": self._start_mark, "click": self._click_target, "heads": self._heads,
                "trajectories": self._traj, "loss": self._loss, "step_length": self._steplen,
                "loss_markers": self._marker_mark}

    @property
    def runner(self) -> LiveRunner:
        return self._runner

    # ================================================================== building
    def _build_plots(self) -> None:
        s = self._surface
        self._plot = SurfacePlot(s, on_click=lambda x, y: self._request("start", (x, y)), grid=self._grid)
        self._sx, self._sy = self._plot.x_scale, self._plot.y_scale
        xy = self._plot.scales
        self._heatmap, self._contours, self._minima = self._plot.heatmap, self._plot.contours, self._plot.minima
        self._click_target = self._plot.click_target
        self._start_mark = bq.Scatter(x=[], y=[], scales=xy, marker="circle", colors=["#ffffff"],
                                      stroke="#111111", stroke_width=2, default_size=110)
        # One Lines mark per panel, one row per racing optimizer: one message per panel per frame.
        self._lsx, self._lsy = bq.LinearScale(), bq.LogScale()
        self._ssx, self._ssy = bq.LinearScale(), bq.LogScale()
        self._traj = bq.Lines(x=[], y=[], scales=xy, stroke_width=3)
        self._loss = bq.Lines(x=[], y=[], scales={"x": self._lsx, "y": self._lsy}, stroke_width=2.5)
        self._steplen = bq.Lines(x=[], y=[], scales={"x": self._ssx, "y": self._ssy}, stroke_width=2.5)
        self._row_counts: dict[str, tuple[int, ...]] = {}
        self._heads = bq.Scatter(x=[], y=[], scales=xy, colors=["#000000"], stroke="#ffffff",
                                 stroke_width=1.5, default_size=160)
        self._marker_mark = bq.Scatter(x=[], y=[], scales={"x": self._lsx, "y": self._lsy},
                                       marker="triangle-down", colors=["#000000"], default_size=120,
                                       names=[], display_names=True)

        self._surface_fig = theme.figure(
            [self._heatmap, self._contours, self._minima, self._traj, self._start_mark,
             self._heads, self._click_target],
            [theme.axis(self._sx, "x"), theme.axis(self._sy, "y", vertical=True)],
            title=s.title, width="560px", height="540px", padding_y=0.0,
        )
        self._loss_axis = theme.axis(self._lsy, "loss − f*", vertical=True, tick_format=".0e")
        self._loss_fig = theme.figure(
            [self._loss, self._marker_mark],
            [theme.axis(self._lsx, "step", num_ticks=6), self._loss_axis],
            title="loss", width="440px", height="270px",
        )
        self._steplen_axis = theme.axis(self._ssy, "|Δx|", vertical=True, tick_format=".0e")
        self._steplen_fig = theme.figure(
            [self._steplen],
            [theme.axis(self._ssx, "step", num_ticks=6), self._steplen_axis],
            title="step length", width="440px", height="270px",
        )

    def _build_texts(self) -> None:
        self._caption = widgets.HTML()
        self._legend = widgets.HTML()
        self._legend.add_class("optiviz-legend")
        self._status = widgets.HTML()
        self._status.add_class("optiviz-status")
        self._error_html = widgets.HTML()
        self._error_html.add_class("optiviz-error-line")

    def _layout(self) -> list[widgets.Widget]:
        c = self.controls
        plots = widgets.HBox([widgets.VBox([self._surface_fig, self._legend]),
                              widgets.VBox([self._loss_fig, self._steplen_fig])])
        main = widgets.VBox([c.preset, self._caption, plots, c.buttons, widgets.HBox([self._status, self._error_html])])
        main.add_class("optiviz-explorer-main")  # what a screenshot of the race shows
        return [theme.style_widget(), main, c.panels]

    # ================================================================== input -> requests
    def _request(self, name: str, value: Any) -> None:
        """What every observer does: record the change; when nothing runs, apply it now."""
        if self._closed:
            return
        self._runner.request(name, value)
        if not self._runner.is_running:
            self._runner.apply_pending()

    def _on_step_button(self) -> None:
        self._playing = False
        self._runner.step_once()

    # ================================================================== worker side
    def _step_chunk(self) -> Any:
        """Runner's step: one frame's worth of steps (paced when playing live)."""
        if all(int(s) in (CONVERGED, DIVERGED) for s in self.sim.status.tolist()):
            return DONE
        steps = self._sync_steps
        if steps is None:
            steps = self._cfg.speed
            if self._playing:
                self._pacer.wait()
        if steps <= 0:
            return None
        return _Chunk(self._generation, self.sim.advance(steps))

    def _apply(self, changes: dict[str, Any]) -> None:
        """Runner's apply: one change at a time, at a step boundary; ValueError -> error line."""
        apply_control(self, changes, on_reject=self._sync_widgets)  # rejected: controls snap back to what runs
        self._clear_error()

    def _apply_hp(self, rest: str, value: Any) -> None:
        optimizer, _, hp = rest.partition(":")
        spec = HPARAMS[optimizer].get(hp)
        if spec is None:
            raise ValueError(f"{optimizer} has no hyperparameter {hp!r}; it has {', '.join(HPARAMS[optimizer])}")
        if spec.kind == "pair":
            value = tuple(float(v) for v in value)
        elif spec.kind == "float":
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{optimizer} {hp} must be a number, got {value!r}") from None
        spec.check(value, f"{optimizer} {hp}")
        if optimizer in self.sim.optimizers:
            self.sim.set_hparams(optimizer, **{hp: value})
            self._events[optimizer].add(self.sim.t, event_label(hp, value))
        self._cfg.hparams[optimizer][hp] = value
        self.controls.sync_hparam(optimizer, hp, value)
        self._draw()

    def _apply_shared_lr(self, _rest: str, value: Any) -> None:
        if value is None:
            self._cfg.shared_lr = None
            return
        value = float(value)
        for o in self.sim.optimizers:
            HPARAMS[o]["lr"].check(value, f"{o} lr")
        self._cfg.shared_lr = value
        for o in self.sim.optimizers:
            self._apply_hp(f"{o}:lr", value)

    def _apply_grad_noise(self, _rest: str, value: Any) -> None:
        self.sim.set_grad_noise(float(value))
        self._cfg.grad_noise = float(value)
        self.controls.sync_gradient(self._cfg)

    def _apply_clip(self, _rest: str, value: Any) -> None:
        kind, amount = (value, self._cfg.clip[1]) if isinstance(value, str) else value
        self.sim.set_transforms(build_transform(kind, amount))
        self._cfg.clip = (kind, float(amount))
        self.controls.sync_gradient(self._cfg)

    def _apply_schedule(self, _rest: str, value: Any) -> None:
        spec = schedule_spec(value)
        self.sim.set_schedule(build_schedule(*spec))
        self._cfg.schedule = spec
        self.controls.sync_gradient(self._cfg)

    def _apply_speed(self, _rest: str, value: Any) -> None:
        speed = int(value)
        if not 1 <= speed <= 100_000:
            raise ValueError(f"speed (steps per frame) must be in [1, 100000], got {value!r}")
        self._cfg.speed = speed
        set_quietly(self.controls.quiet, self.controls.speed, speed)

    def _apply_start(self, _rest: str, value: Any) -> None:
        try:
            x, y = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"start must be a point (x, y), got {value!r}") from None
        (x0, x1), (y0, y1) = self._surface.domain
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            raise ValueError(f"start ({x:.3g}, {y:.3g}) is outside the surface's domain "
                             f"x in [{x0:g}, {x1:g}], y in [{y0:g}, {y1:g}]: click inside the map")
        self._cfg.start = (x, y)
        self.sim.restart(np.array([[x, y]]))
        self._start_run(surface_changed=False)

    def _apply_reset(self, _rest: str, _value: Any) -> None:
        self.sim.restart()
        self._start_run(surface_changed=False)

    def _apply_optimizers(self, _rest: str, value: Any) -> None:
        names = (value,) if isinstance(value, str) else tuple(value)
        if not names:
            raise ValueError("choose at least one optimizer")
        names = tuple(check_choice("optimizer", n, OPTIMIZERS) for n in names)
        cfg = dataclasses.replace(self._cfg, optimizers=tuple(n.lower() for n in names))
        self._swap(cfg, self._surface)

    def _apply_surface(self, _rest: str, value: Any) -> None:
        name, params = value
        surface = resolve_surface(name, **dict(params))  # ValueError: shown inline, old surface kept
        cfg = dataclasses.replace(self._cfg, surface=name, surface_params=dict(params), start=None)
        cfg.hparams = {o: dict(hp, lr=surface.lrs.get(o, hp["lr"])) for o, hp in self._cfg.hparams.items()}
        if cfg.shared_lr is not None:
            cfg.shared_lr = None
        self._swap(cfg, surface)

    def _apply_preset(self, _rest: str, name: str) -> None:
        cfg = preset_config(get_preset(name))
        surface = resolve_surface(cfg.surface, **cfg.surface_params)
        cfg.hparams = full_hparams(surface, OPTIMIZERS, cfg.hparams)
        self._swap(cfg, surface, preset=name)

    def _swap(self, cfg: ExplorerConfig, surface: Surface, preset: str | None = None) -> None:
        """Replace the simulator; if the new settings are rejected, the old run keeps going."""
        sim = self._new_simulator(cfg, surface)
        changed = surface is not self._surface
        self.sim, self._cfg, self._surface = sim, cfg, surface
        if preset is not None or changed:
            self._preset_name = preset
        self._start_run(surface_changed=changed)
        self._update_caption()
        self._sync_widgets()

    def _new_simulator(self, cfg: ExplorerConfig, surface: Surface) -> Simulator:
        hparams = {o: dict(cfg.hparams[o]) for o in cfg.optimizers}
        if cfg.shared_lr is not None:
            for hp in hparams.values():
                hp["lr"] = cfg.shared_lr
        start = np.array([cfg.start if cfg.start is not None else surface.start], dtype=np.float64)
        sim = Simulator(surface, cfg.optimizers, start=start, n=1, hparams=hparams,
                        grad_noise=cfg.grad_noise, schedule=build_schedule(*cfg.schedule),
                        device=self._device, dtype=torch.float32, seed=self._seed)
        sim.set_transforms(build_transform(*cfg.clip))
        return sim

    # ================================================================== drawing
    def _start_run(self, surface_changed: bool) -> None:
        """A fresh run of self.sim: new series (start point included) and a full redraw."""
        self._generation += 1
        self._loss_log = self._surface.f_min is not None  # unbounded surfaces: linear loss axis
        self._path = {o: SeriesBuffer(2) for o in self.sim.optimizers}
        self._lossbuf = {o: SeriesBuffer(minmax=True) for o in self.sim.optimizers}
        self._lenbuf = {o: SeriesBuffer(minmax=True) for o in self.sim.optimizers}
        self._events = {o: Markers() for o in self.sim.optimizers}
        self._drawn: dict[tuple[str, str], int] = {}
        self._finished = {o: False for o in self.sim.optimizers}
        x0 = self.sim.x.detach().cpu().numpy().astype(np.float64)
        l0 = self.sim.loss.detach().cpu().numpy().astype(np.float64)
        f_ref = float(self._surface.f_ref)
        for k, o in enumerate(self.sim.optimizers):
            self._path[o].append(0, x0[k])
            self._lossbuf[o].append(0, self._loss_value(l0[k], f_ref))
        self._last_status = self._status_of(None)
        with ExitStack() as stack:
            if surface_changed:
                self._draw_surface(stack)
            colors = [theme.optimizer_color(o, i) for i, o in enumerate(self.sim.optimizers)]
            for mark in (self._traj, self._loss, self._steplen):
                stack.enter_context(mark.hold_sync())
                mark.colors = colors
            stack.enter_context(self._start_mark.hold_sync())
            self._start_mark.x, self._start_mark.y = x0[:1, 0].astype(np.float32), x0[:1, 1].astype(np.float32)
            self._draw(stack)

    def _draw_surface(self, stack: ExitStack) -> None:
        s = self._surface
        for w in (self._surface_fig, self._lsy, self._loss_axis):
            stack.enter_context(w.hold_sync())
        self._plot.set_surface(s)
        self._surface_fig.title = s.title
        self._loss_log = s.f_min is not None
        self._loss_axis.label = "loss − f*" if self._loss_log else "loss"
        self._loss_axis.tick_format = ".0e" if self._loss_log else None
        self._loss_axis.tick_values = None  # back to automatic; _decade_ticks sets them on log axes
        new_scale = bq.LogScale() if self._loss_log else bq.LinearScale()
        if type(new_scale) is not type(self._lsy):
            self._lsy = new_scale
            self._loss_axis.scale = new_scale
            for mark in (self._loss, self._marker_mark):
                mark.scales = {"x": self._lsx, "y": new_scale}
        self._update_caption()

    def _update_caption(self) -> None:
        """The story's caption while a preset runs, else the surface's own."""
        preset = PRESETS.get(self._preset_name or "")
        s = self._surface
        self._caption.value = caption_html(*((preset.title, preset.caption) if preset else (s.title, s.caption)))

    def _loss_value(self, loss: float, f_ref: float) -> float:
        return max(loss - f_ref, LOSS_FLOOR) if self._loss_log else loss

    def _publish(self, records: list[Any]) -> None:
        """Runner's publish: append this frame's records to the series, then draw one frame."""
        f_ref = float(self._surface.f_ref)
        fresh = [c.record for c in records if c.generation == self._generation]
        for rec in fresh:
            steps = rec.steps
            for k, o in enumerate(self.sim.optimizers):
                d = int(rec.diverged_at[k])
                keep = steps < d if d >= 0 else slice(None)  # a diverged row is frozen: stop its lines
                s = steps[keep]
                if len(s) == 0:
                    continue
                self._path[o].extend(s, rec.points[keep, k].astype(np.float64))
                loss = rec.loss[keep, k].astype(np.float64)
                excess = np.maximum(loss - f_ref, LOSS_FLOOR) if self._loss_log else loss
                self._lossbuf[o].extend(s, excess)
                self._lenbuf[o].extend(s, np.maximum(rec.step_length[keep, k].astype(np.float64), LOSS_FLOOR))
        if fresh:
            self._last_status = self._status_of(fresh[-1])
        self._draw()

    def _draw(self, stack: ExitStack | None = None) -> None:
        """One frame: decimated float32 views of every series, one message per changed mark."""
        with ExitStack() as own:
            stack = stack or own
            opts = self.sim.optimizers
            stack.enter_context(self._heads.hold_sync())  # entered first, sent last: after the paths
            for key, bufs, mark, n in (("path", self._path, self._traj, self.max_path_points),
                                       ("loss", self._lossbuf, self._loss, self.max_curve_points),
                                       ("len", self._lenbuf, self._steplen, self.max_curve_points)):
                lengths = tuple(len(bufs[o]) for o in opts)
                if self._drawn.get(key) == lengths:
                    continue  # nothing new (paused, or every row finished): send nothing
                self._drawn[key] = lengths
                views = [trajectory_view(bufs[o], n) if key == "path" else bufs[o].view(n) for o in opts]
                if key == "path":
                    rows = [(v[:, 0], v[:, 1]) for _, v in views]
                else:
                    rows = list(views)
                x, y, counts = pad_rows(rows)
                self._row_counts[key] = counts
                axis = {"loss": self._loss_axis, "len": self._steplen_axis}.get(key)
                pins = {} if axis is None else {
                    s: flat_span(d, s) for s, d in ((mark.scales["x"], x), (mark.scales["y"], y))}
                # hold_syncs exit last-in first-out. A scale being freed, and the axis's ticks, go
                # out after the data (entered first); a scale being pinned goes out before it.
                for scale, pin in pins.items():
                    if pin is None:
                        pin_scale(scale, None, stack)
                if axis is not None:
                    stack.enter_context(axis.hold_sync())
                stack.enter_context(mark.hold_sync())
                for scale, pin in pins.items():
                    if pin is not None:
                        pin_scale(scale, pin, stack)
                mark.x, mark.y = x, y
                self._placeholder_domain(mark, stack, empty=not any(counts))
                if axis is not None and any(counts):
                    decade_ticks(axis, y, stack)
            heads = np.array([self._path[o].last[1] for o in opts], dtype=np.float32)
            self._heads.x, self._heads.y = heads[:, 0], heads[:, 1]
            self._heads.colors = [theme.optimizer_color(o) for o in opts]
            self._draw_markers(stack)
            self._draw_legend()

    def _placeholder_domain(self, mark: bq.Lines, stack: ExitStack, empty: bool) -> None:
        """An empty mark gives its scales a NaN domain and bqplot then fails to draw the axes
        ("invalid format: .undefinedg") - at step 0 no step has a length yet. While empty, the
        mark is hidden and holds a placeholder span, so its axes still draw; data replaces it
        in the same message."""
        if empty:
            mark.x = np.array([0.0, 1.0], np.float32)
            mark.y = np.array([1e-3, 1.0], np.float32)
        mark.visible = not empty

    def _rows(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per optimizer, the x and y a panel's mark holds for it (its padding removed)."""
        mark = {"path": self._traj, "loss": self._loss, "len": self._steplen}[key]
        x, y = np.asarray(mark.x), np.asarray(mark.y)
        counts = self._row_counts.get(key, ())
        xs, ys = {}, {}
        for k, o in enumerate(self.optimizers):
            c = counts[k] if k < len(counts) else 0
            xs[o] = x[k, :c] if x.ndim == 2 else x[:c]
            ys[o] = y[k, :c] if y.ndim == 2 else y[:c]
        return xs, ys

    def _draw_markers(self, stack: ExitStack) -> None:
        # a marker's height is the loss at its step, which may arrive a frame after the marker
        sig = tuple((len(self._events[o]), min(len(self._lossbuf[o]), int(self._events[o].last[0]) + 1))
                    for o in self.sim.optimizers if len(self._events[o]))
        if self._drawn.get("markers") == sig:
            return
        self._drawn["markers"] = sig
        xs, ys, colors, names = [], [], [], []
        for o in self.sim.optimizers:
            steps, labels = self._events[o].view(20)
            if not len(steps):
                continue
            hist_steps, hist_loss = self._lossbuf[o].arrays()
            for s, label in zip(steps, labels):
                i = int(min(max(s, 0), len(hist_loss) - 1))
                xs.append(float(s))
                ys.append(float(hist_loss[i]))
                colors.append(theme.optimizer_color(o))
                names.append(label)
        stack.enter_context(self._marker_mark.hold_sync())
        self._marker_mark.x = np.asarray(xs, dtype=np.float32)
        self._marker_mark.y = np.asarray(ys, dtype=np.float32)
        self._marker_mark.colors = colors or ["#000000"]
        self._marker_mark.names = names

    def _status_of(self, rec: Any) -> dict[str, str]:
        status = self.sim.status.cpu().numpy() if rec is None else rec.status
        conv = self.sim.converged_at.cpu().numpy() if rec is None else rec.converged_at
        div = self.sim.diverged_at.cpu().numpy() if rec is None else rec.diverged_at
        out = {}
        for k, o in enumerate(self.sim.optimizers):
            if int(status[k]) == DIVERGED:
                out[o] = f"diverged at step {int(div[k])}"
            elif int(status[k]) == CONVERGED:
                out[o] = f"converged at step {int(conv[k])}"
            else:
                out[o] = "running"
        return out

    @property
    def _status_text(self) -> dict[str, str]:
        return self._last_status

    def _draw_legend(self) -> None:
        f_ref = float(self._surface.f_ref)
        rows = []
        for o in self.sim.optimizers:
            loss = self._lossbuf[o].last[1]
            value = loss + f_ref if self._loss_log else loss
            status = self._last_status.get(o, "running")
            hint = " (lower its lr, Reset)" if status.startswith("diverged") else ""
            rows.append(
                f'<tr><td><span style="display:inline-block;width:26px;height:8px;background:'
                f'{theme.optimizer_color(o)}"></span></td><td><b>{o}</b></td>'
                f'<td>loss {theme.format_loss(value)}</td><td style="white-space:normal">{html.escape(status)}{hint}</td></tr>')
        self._legend.value = (f'<table class="optiviz-legend" style="font-size:{theme.FONT_PX}px;white-space:nowrap">'
                              + "".join(rows) + "</table>")
        self._status.value = (f'<span style="font-size:{theme.FONT_PX}px">step {self.sim.t} · '
                              f"{self._runner.state if hasattr(self, '_runner') else 'idle'}</span>")

    def _on_status(self, state: str) -> None:
        note = " (every optimizer converged or diverged: Reset, or click to start elsewhere)" if state == "done" else ""
        self._status.value = f'<span style="font-size:{theme.FONT_PX}px">step {self.sim.t} · {state}{note}</span>'

    def _show_error(self, message: str) -> None:
        self._error = str(message)
        self._error_html.value = f'<span class="optiviz-error">\u26a0 {html.escape(self._error)}</span>'

    def _clear_error(self) -> None:
        if self._error:
            self._error = ""
            self._error_html.value = ""

    # ================================================================== widgets follow the engine
    def _sync_widgets(self) -> None:
        self.controls.sync(self._cfg, self._surface, self._preset_name)


__all__ = ["SurfaceExplorer", "PRESETS", "ExplorerConfig"]
