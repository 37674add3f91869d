"""TrainingDashboard: watch and steer a CIFAR-10 net live, the way the lectures babysit a run.

The view a lecturer uses in front of a class: Start, and the loss, accuracy (with the train/val
gap), lr, per-layer update/weight ratios, gradient norms, dead units and activation histograms
update as the net trains; drag the lr, momentum or dropout slider and the running net uses the
new value from its next step, marked on the curves; a health line applies the lectures'
checklist (training/health.py) to the live records. Compare mode trains several optimizers from
the same initial weights on the same batches, curves overlaid.

Two objects: a `DashboardController` (views/dashboard/controller.py, no widgets) owns the runs,
their records, the snapshots and the LiveRunner that trains in a worker thread; this widget draws
the controller's state (views/dashboard/panels.py for the plots) when the controller says a frame,
a setting, the status or the error changed, and turns a person's input into controller requests.
Widgets hold no copy of a setting: after every change they are moved (quietly) to what the focused
run's trainer has. Errors are shown in the error line; nothing is raised into the notebook from a
control and nothing is printed from a thread.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import ipywidgets as widgets
import torch

from optiviz._validate import check_int
from optiviz.engine.schedules import schedule_spec
from optiviz.stream.runner import LiveRunner
from optiviz.training.data import CIFAR10
from optiviz.training.health import BAD, INFO, OK, WARN, Finding
from optiviz.training.runs import RunSpec
from optiviz.views.common import theme
from optiviz.views.common.controls import Quiet, on_value, set_quietly
from optiviz.views.common.data import data_args, prepare_data
from optiviz.views.common.share import Shareable, ShareControl, open_shared
from optiviz.views.common.live_view import TEXT_S, LiveView
from optiviz.views.dashboard.controller import DEFAULT_PATIENCE, DashboardController
from optiviz.views.dashboard.early_stop import EarlyStopMarks
from optiviz.views.dashboard.controls import DEFAULT_INIT, Controls
from optiviz.views.dashboard.exports import DashboardExports
from optiviz.views.dashboard.panels import Panels
from optiviz.views.dashboard.readout import PanelReadout


class TrainingDashboard(Shareable, DashboardExports, PanelReadout, LiveView):
    """Train a small net on CIFAR-10 live, steer it, and see the lectures' diagnostics.

    Display it as the last expression of a cell, then press Start. Python API (also what the
    tests use): `start()`, `pause()`, `stop()`, `reset()`, `step(n)` (synchronous), `set(...)`,
    `snapshot()`, `rewind(i)`, `compare([...])`, `focus_run(run)`, `show_histograms(i)`, `close()`;
    what the marks hold through `loss_curves`, `val_loss_curves`, `accuracy_curves`, `gap`,
    `lr_curves`, `ratio_curves`, `grad_norm_curves`, `dead_curves`, `histograms`, `markers`;
    and `health`, `findings`, `progress`, `error`, `run_state`, `runs`, `trainers`; `controller` is
    the widget-free state behind all of it.

    model: a preset ("convnet", "small_convnet", "mlp", "deep_mlp"); width / depth override it.
    optimizer: as in the engine ("sgd" is plain SGD; "momentum" / "nesterov" take a momentum).
    data: a CIFAR10 from ov.load_cifar10() (default: the bundled subset), sliced to n_train / n_val.
    compare: optimizer names or dicts of settings (see `compare`) to start in compare mode.
    `state()` gives the whole setting as a string (the Share button shows it) and
    `TrainingDashboard.from_state(s)` rebuilds it: the same runs, record for record (on one device).
    patience: early stopping's look-ahead; the loss panel marks where it would stop the validation
    loss and which evaluation's weights it keeps (`early_stop`; `trainer.restore_best()` loads them).
    """

    STATE_VIEW = "TrainingDashboard"
    OPTIONS = ("device", "fps", "max_points", "data")

    def __init__(
        self,
        model: str = "convnet",
        optimizer: str = "nesterov",
        *,
        lr: float | None = None,
        momentum: float | None = None,
        betas: tuple[float, float] | None = None,
        dropout: float | None = None,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        batch_norm: bool | None = None,
        activation: str = "relu",
        init: str | None = None,
        schedule: Any = None,
        width: int | None = None,
        depth: int | None = None,
        seed: int = 0,
        data: CIFAR10 | None = None,
        n_train: int | None = None,
        n_val: int | None = None,
        device: str | torch.device | None = None,
        probe_every: int = 10,
        val_every: int | None = None,
        compare: Sequence[str | Mapping[str, Any]] | None = None,
        fps: float = 15.0,
        max_points: int = 500,
        patience: int = DEFAULT_PATIENCE,
    ) -> None:
        note = open_shared(self, TrainingDashboard.__init__, dict(device=device, fps=fps, max_points=max_points))
        if note is None:
            return  # built from a shared link's setting
        # every argument is checked before a widget exists: a refused one leaves nothing half built
        max_points = check_int("max_points", max_points, 2, 100_000)
        spec = RunSpec(model=model, optimizer=optimizer, lr=lr, momentum=momentum, betas=betas, dropout=dropout,
                       weight_decay=weight_decay, batch_size=batch_size, batch_norm=batch_norm, activation=activation,
                       init=init, schedule=schedule_spec(schedule), width=width, depth=depth, seed=seed)
        controller = DashboardController(spec, prepare_data(data, n_train, n_val, device), compare=compare,
                                         probe_every=probe_every, val_every=val_every, fps=fps, patience=patience)
        super().__init__()
        self.add_class("optiviz-dashboard")
        self._quiet = Quiet()
        self._drawn_generation = -1
        self.panels = Panels(max_points)
        self.controls = Controls(controller.runs[0].spec)
        p = self.panels
        self.early = EarlyStopMarks(p.loss_fig, {"x": p.step_scale, "y": p.loss.scales["y"]}, controller.patience)
        self.error_html.add_class("optiviz-dash-error")
        self._health_html = self._html("optiviz-dash-health")
        self._progress_html = self._html("optiviz-dash-progress")
        self._runs_html = self._html("optiviz-dash-runs")
        self.share = ShareControl(self.state, self.STATE_VIEW)
        self._wire()
        self.attach(controller)
        self.controller: DashboardController = controller
        self.on_config()
        if note:
            controller.show_error(note)
        self.draw_error()
        self.children = self._layout()

    @staticmethod
    def _html(css: str) -> widgets.HTML:
        w = widgets.HTML()
        w.add_class(css)
        return w

    # ================================================================== public API (the controller's)
    def start(self) -> None:
        """Train live in a worker thread; returns at once. After stop(), starts a new run."""
        self.controller.start()

    def pause(self) -> None:
        """Stop after the current step (the last frame is drawn); start() goes on from there."""
        self.controller.pause()

    def stop(self) -> None:
        """End the run: the curves stay; start() or Reset begins a new run from the same initial weights."""
        self.controller.stop()

    def step(self, n: int = 1) -> None:
        """Train n steps (of every run) synchronously in the caller's thread, then draw (notebooks, tests)."""
        self.controller.step(n)

    def reset(self) -> None:
        """A new run with the current settings, from the same initial weights (same seed)."""
        self.controller.reset()

    def set(self, run: int | str | None = None, **values: Any) -> None:
        """Change settings as the controls do, e.g. set(lr=0.01), set(dropout=0.5), set(model="mlp").

        lr, momentum, betas, dropout and weight_decay act on the running net from its next step
        (in compare mode on every run that has them, or only on `run`: an index or a label).
        model, optimizer, batch_size, batch_norm, activation, init, schedule, width, depth and seed
        start a new run. A bad value shows a message in the widget (and in `.error`) instead of raising.
        """
        self.controller.set(run, **values)

    def snapshot(self) -> int:
        """Copy every run's whole state now (at a step boundary); returns the index rewind() takes."""
        self.controller.request("snapshot", sync=True)
        return len(self.controller.snapshots) - 1

    def rewind(self, index: int = -1) -> None:
        """Go back to a snapshot: weights, optimizer state, settings, data order and curves as they were then."""
        self.controller.request("rewind", int(index), sync=True)

    def compare(self, settings: Sequence[str | Mapping[str, Any]] | None = None) -> None:
        """Train several runs of the same net from the same initial weights on the same batches.

        settings: optimizer names, or dicts of what differs (optimizer, lr, momentum, betas, dropout,
        weight_decay, schedule, label), e.g. compare(["sgd", "momentum", {"optimizer": "adam", "lr": 3e-4}]).
        None or [] goes back to a single run.
        """
        self.controller.request("compare", None if not settings else list(settings), sync=True)

    def focus_run(self, run: int | str) -> None:
        """Which run the sliders steer and the per-layer panels show (an index or a label)."""
        try:
            self.controller.request("focus", self.controller.run_index(run), sync=True)
        except ValueError as exc:
            self.controller.show_error(str(exc))

    def show_histograms(self, probe: int | None = None) -> None:
        """Show the activation histograms of probe number `probe` (negative counts from the end); None: live."""
        self.controller.request("hist", probe, sync=True)

    # ---- state and what the marks hold (tests and notebooks read these) ----------------------
    @property
    def runs(self) -> tuple[str, ...]:
        return tuple(r.label for r in self.controller.runs)

    @property
    def trainers(self) -> list[Any]:
        return [r.trainer for r in self.controller.runs]

    @property
    def trainer(self) -> Any:
        """The focused run's Trainer (its history, events and probe_records are the records)."""
        return self.controller.trainer

    @property
    def layers(self) -> tuple[str, ...]:
        return self.panels.layers

    @property
    def run_state(self) -> str:
        """"idle", "playing", "paused", "done" (every run halted), "stopped" or "error"."""
        return self.controller.state

    # ---- sharing (Shareable) --------------------------------------------------------------------
    def setting(self) -> dict[str, Any]:
        return self.controller.setting()

    @classmethod
    def setting_args(cls, setting: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        run = dict(setting.get("run", {}))
        if "schedule" in run:
            run["schedule"] = (run["schedule"][0], dict(run["schedule"][1]))
        extra = {k: setting[k] for k in ("compare", "probe_every", "val_every", "patience") if k in setting}
        return {**run, **extra, **data_args(setting, options)}

    @property
    def health(self) -> str:
        """The health line's text (one line per run in compare mode)."""
        lines = self.controller.health_lines()
        return "\n".join(f"{label}: {line}" if len(lines) > 1 else line for label, line in lines)

    @property
    def findings(self) -> dict[str, list[Finding]]:
        return {r.label: list(f) for r, f in zip(self.controller.runs, self.controller.findings)}

    @property
    def progress(self) -> str:
        return self.controller.progress_text()

    @property
    def snapshots(self) -> list[str]:
        return [s.label for s in self.controller.snapshots]

    @property
    def runner(self) -> LiveRunner:
        return self.controller.runner

    # ================================================================== building
    def _layout(self) -> list[widgets.Widget]:
        """Controls on the left, six panels in two columns on the right, histograms underneath (~1,260 px)."""
        c, p = self.controls, self.panels
        header = widgets.VBox([self._health_html, widgets.HBox([self._progress_html, self.error_html]), self.share.box])
        left = widgets.VBox([self._runs_html, c.tabs()], layout=widgets.Layout(width="460px", min_width="460px"))
        wrap = widgets.Layout(flex_flow="row wrap")  # narrow (a file browser open): panels go under, never cut
        plots = widgets.VBox([widgets.HBox([p.loss_fig, p.acc_fig], layout=wrap), self.early.box(), p.layer_legend,
                              widgets.HBox([p.ratio_fig, p.grad_fig], layout=wrap),
                              widgets.HBox([p.dead_fig, p.lr_fig], layout=wrap)])
        hist_title = widgets.HTML(f'<b style="font-size:{theme.title_px()}px">activation histograms&nbsp;&nbsp;</b>')
        return [theme.style_widget(), header, c.buttons(), widgets.HBox([left, plots], layout=wrap),
                widgets.HBox([hist_title, c.histogram_bar()]), p.hist_box]

    def _wire(self) -> None:
        """Each control sends one request; none keeps a value of its own."""
        c, q = self.controls, self._quiet
        ask = lambda key, value=True: self.controller.request(key, value)  # noqa: E731
        live = lambda name, value: ask(("live", name, self.controller.focus), value)  # noqa: E731 - steer what is shown
        c.start_btn.on_click(lambda _b: self.controller.start())
        c.pause_btn.on_click(lambda _b: self.controller.runner.pause())
        c.stop_btn.on_click(lambda _b: self.controller.stop_soon())
        c.step_btn.on_click(lambda _b: (ask("resume"), self.controller.runner.step_once()))
        c.reset_btn.on_click(lambda _b: self.controller.reset(sync=False))
        c.snapshot_btn.on_click(lambda _b: ask("snapshot"))
        c.rewind_btn.on_click(lambda _b: c.rewind_to.value >= 0 and ask("rewind", c.rewind_to.value))
        c.compare_btn.on_click(lambda _b: ask("compare", c.compare_choice() or None))
        c.single_btn.on_click(lambda _b: ask("compare", None))
        for name, w in (("lr", c.lr), ("lr", c.lr_text), ("momentum", c.momentum), ("dropout", c.dropout),
                        ("weight_decay", c.weight_decay)):
            on_value(w, q, lambda v, name=name: live(name, v))
        for w in (c.beta1, c.beta2):
            on_value(w, q, lambda _v: live("betas", (c.beta1.value, c.beta2.value)))
        on_value(c.run, q, lambda v: v is not None and ask("focus", v))
        for key, w in (("model", c.model), ("optimizer", c.optimizer), ("batch_size", c.batch_size),
                       ("batch_norm", c.batch_norm), ("activation", c.activation)):
            on_value(w, q, lambda v, key=key: self.controller.request_restart({key: v}))
        on_value(c.init, q, lambda v: self.controller.request_restart({"init": None if v == DEFAULT_INIT else v}))
        for w in (c.schedule, *c.schedule_params.values()):
            on_value(w, q, lambda _v: self.controller.request_restart({"schedule": c.schedule_value()}))
        on_value(c.hist_live, q, lambda v: ask("hist", None if v else c.hist_probe.value))
        on_value(c.hist_probe, q, lambda v: ask("hist", v))
        on_value(self.early.patience, q, lambda v: ask("patience", v))
        self.early.restore.on_click(lambda _b: ask("restore_best"))

    # ================================================================== drawing the controller's state
    def on_frame(self) -> None:
        self._draw(health=self.controller.findings is not self._drawn_findings, text=self.due("text", TEXT_S))

    def on_config(self) -> None:
        """Something changed: a new run set re-lays the panels; every control shows what runs now."""
        ctl = self.controller
        if ctl.generation != self._drawn_generation:
            self._drawn_generation = ctl.generation
            with ExitStack() as stack:
                self.panels.set_layers(ctl.runs[0].trainer.layer_names, ctl.layer_kinds, stack)
                self.panels.set_runs([r.label for r in ctl.runs], [r.spec.optimizer for r in ctl.runs])
            self.controls.show_snapshots(self._quiet, [])
        self.controls.show(self._quiet, ctl)
        set_quietly(self._quiet, self.early.patience, ctl.patience)
        self.controls.show_snapshots(self._quiet, [s.label for s in ctl.snapshots])
        self.panels.invalidate()
        self._draw(health=True)
        self.share.refresh()

    def on_status(self) -> None:
        """Paused, stopped, done: every text shows the last frame (a playing frame may have left them out)."""
        self._draw(health=self.controller.findings is not self._drawn_findings)

    _drawn_findings: Any = None

    def _draw(self, health: bool = True, text: bool = True) -> None:
        """The panels; and, when `text`, the legend of runs, the progress line and the histogram's
        step and slider (while playing at most every TEXT_S: LiveView.due)."""
        with ExitStack() as stack:
            self.panels.draw(self.controller.series, self.controller.focus, stack)
            steps, val = self.controller.series[self.controller.focus].val.arrays()
            self.early.draw(self.controller.early_stop(), (steps, val[:, 0]), stack)
            self._draw_histograms(stack, text)
            if text:
                self._draw_runs()
                self._draw_progress()
            if health:
                self._draw_health()

    def _draw_histograms(self, stack: ExitStack, text: bool = True) -> None:
        probe, i, n = self.controller.histogram_probe()
        live = self.controller.hist_index is None
        c = self.controls
        self.panels.draw_histograms(probe, stack)
        if not text:
            return
        with self._quiet():
            if c.hist_probe.max != max(n - 1, 0):
                c.hist_probe.max = max(n - 1, 0)
            if i is not None and c.hist_probe.value != i:
                c.hist_probe.value = i
            if c.hist_live.value != live:
                c.hist_live.value = live
        step = self.panels.hist_step
        text = "no probe yet" if step is None else f"step {step}" + (" (live)" if live else "")
        _set_html(c.hist_label, f'<span style="font-size:{theme.font_px()}px">{text}</span>')

    def _draw_runs(self) -> None:
        """Legend of the runs: colour, label, last loss and validation accuracy, status."""
        ctl = self.controller
        rows = []
        for k, (r, s) in enumerate(zip(ctl.runs, ctl.series)):
            color = self.panels.colors[k] if k < len(self.panels.colors) else "#000"
            last, val = s.loss.last, s.val.last
            focus = " ◀" if k == ctl.focus and len(ctl.runs) > 1 else ""
            rows.append(f'<tr><td><span style="display:inline-block;width:26px;height:8px;background:{color}"></span></td>'
                        f"<td><b>{html.escape(r.label)}</b>{focus}</td>"
                        f"<td>loss {theme.format_loss(last[1]) if last else '—'}</td>"
                        f"<td>val acc {f'{val[1][1]:.3f}' if val else '—'}</td><td>{ctl.run_status(k)}</td></tr>")
        _set_html(self._runs_html, f'<table class="optiviz-legend" style="font-size:{theme.font_px()}px;white-space:nowrap">'
                  + "".join(rows) + "</table>")

    def _draw_health(self) -> None:
        ctl = self.controller
        self._drawn_findings = ctl.findings
        lines = []
        for (label, line), found in zip(ctl.health_lines(), ctl.findings):
            worst = max((f.severity for f in found), default=OK)
            icon, color = ("✖", "#b00020") if worst >= BAD else ("⚠", "#a05a00") if worst >= WARN else \
                ("•", "#555555") if worst == INFO else ("✔", "#1b7837")
            who = f"<b>{html.escape(label)}</b>: " if len(ctl.runs) > 1 else ""
            lines.append(f'<div style="font-size:{theme.title_px()}px;color:{color}">{icon} {who}{html.escape(line)}</div>')
        _set_html(self._health_html, "".join(lines))

    def _draw_progress(self) -> None:
        _set_html(self._progress_html,
                  f'<span style="font-size:{theme.font_px()}px">{html.escape(self.controller.progress_text())}</span>')


def _set_html(w: widgets.HTML, value: str) -> None:
    if w.value != value:  # one message only when the text changed
        w.value = value


__all__ = ["TrainingDashboard"]
