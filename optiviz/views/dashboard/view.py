"""TrainingDashboard: watch and steer a CIFAR-10 net live, the way the lectures babysit a run.

The view a lecturer uses in front of a class: Start, and the loss, accuracy (with the train/val
gap), lr, per-layer update/weight ratios, gradient norms, dead units and activation histograms
update as the net trains; drag the lr, momentum or dropout slider and the running net uses the
new value from its next step, marked on the curves; a health line applies the lectures'
checklist (training/health.py) to the live records. Compare mode trains several optimizers from
the same initial weights on the same batches, curves overlaid.

Structure (the same streaming layer as the surface explorer): a `LiveRunner` steps the trainers
in a daemon worker thread (`_step_chunk`: one step of every run), applies control requests at
step boundaries (`_apply`), and hands records to `_publish` at a bounded frame rate, which
appends them to per-run SeriesBuffers (views/dashboard_series.py) and redraws the marks whose
data changed (views/dashboard_panels.py). Observers only record requests. Every engine call and
every mark update happens under the runner's cycle lock, in the worker or, for `.step(n)` and
requests made while nothing runs, in the caller's thread. Errors are shown in the widget's error
line; nothing is raised into the notebook from a control and nothing is printed from a thread.
"""
from __future__ import annotations

import collections
import html
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch

from optiviz.engine.schedules import schedule_spec
from optiviz.stream.runner import DONE, LiveRunner
from optiviz.training.data import CIFAR10, load_cifar10
from optiviz.training.health import BAD, INFO, OK, WARN, Finding, check_health, health_line
from optiviz.training.probes import DEAD_KIND
from optiviz.training.trainer import Snapshot
from optiviz.views.common import theme
from optiviz.views.common.controls import Quiet, apply_control, on_value
from optiviz.views.dashboard.controls import DEFAULT_INIT, Controls
from optiviz.views.dashboard.panels import Panels
from optiviz.views.common.widget_tree import owned_widgets
from optiviz.training.runs import (
    LIVE_KEYS, RESTART_KEYS, ResourceError, Run, RunSpec, build_runs, out_of_memory_text, validate_spec,
    with_changes,
)
from optiviz.views.dashboard.series import RunSeries

HEALTH_EVERY = 0.5  # seconds between health checks while playing (each reads only the records' tails)
RATE_WINDOW = 3.0  # seconds of frames the images/s figure averages over
_DATA_CACHE: dict[str, CIFAR10] = {}


@dataclass
class _Frame:
    """One chunk: a StepRecord (or None) per run, tagged with the run set it belongs to."""

    generation: int
    records: list[Any]
    time: float


@dataclass
class _Snap:
    label: str
    step: int
    states: list[Snapshot]


class TrainingDashboard(widgets.VBox):
    """Train a small net on CIFAR-10 live, steer it, and see the lectures' diagnostics.

    Display it as the last expression of a cell, then press Start. Python API (also what the
    tests use): `start()`, `pause()`, `stop()`, `reset()`, `step(n)` (synchronous), `set(...)`,
    `snapshot()`, `rewind(i)`, `compare([...])`, `focus_run(run)`, `show_histograms(i)`, `close()`;
    what the marks hold through `loss_curves`, `val_loss_curves`, `accuracy_curves`, `gap`,
    `lr_curves`, `ratio_curves`, `grad_norm_curves`, `dead_curves`, `histograms`, `markers`;
    and `health`, `findings`, `progress`, `error`, `state`, `runs`, `trainers`.

    model: a preset ("convnet", "small_convnet", "mlp", "deep_mlp"); width / depth override it.
    data: a CIFAR10 from ov.load_cifar10() (default: the bundled subset), sliced to n_train / n_val.
    compare: optimizer names or dicts of settings (see `compare`) to start in compare mode.
    """

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
        fps: float = 10.0,
        max_points: int = 500,
    ) -> None:
        super().__init__()
        self.add_class(theme.CSS_CLASS)
        self.add_class("optiviz-dashboard")
        spec = validate_spec(RunSpec(
            model=model, optimizer=optimizer, lr=lr, momentum=momentum, betas=betas, dropout=dropout,
            weight_decay=weight_decay, batch_size=batch_size, batch_norm=batch_norm, activation=activation,
            init=init, schedule=schedule_spec(schedule), width=width, depth=depth, seed=seed))
        self._data = _prepare_data(data, n_train, n_val, device)
        self._probe_every = int(probe_every)
        self._val_every = val_every
        self._quiet = Quiet()
        self._closed = False
        self._stopped = False
        self._error = ""
        self._generation = 0
        self._focus = 0
        self._spec = spec
        self._overrides: list[Mapping[str, Any]] | None = None
        self._runs: list[Run] = []
        self._series: list[RunSeries] = []
        self._snaps: list[_Snap] = []
        self._spec_pending: dict[str, Any] = {}
        self._spec_lock = threading.Lock()
        self._hist_index: int | None = None  # None: follow the newest probe
        self._rate: collections.deque[tuple[float, int]] = collections.deque()
        self._images_per_s = float("nan")
        self._findings: list[list[Finding]] = []
        self._health_at = -float("inf")

        self.panels = Panels(max_points)
        self.controls = Controls(spec)
        self._health_html = widgets.HTML()
        self._health_html.add_class("optiviz-dash-health")
        self._progress_html = widgets.HTML()
        self._progress_html.add_class("optiviz-dash-progress")
        self._error_html = widgets.HTML()
        self._error_html.add_class("optiviz-dash-error")
        self._runs_html = widgets.HTML()
        self._runs_html.add_class("optiviz-dash-runs")
        self._wire()
        self._runner = LiveRunner(self._step_chunk, apply=self._apply, publish=self._publish,
                                  on_error=self._show_error, on_status=self._on_status, fps=fps,
                                  name="training-dashboard")
        overrides = [{"optimizer": v} if isinstance(v, str) else dict(v) for v in compare] if compare else None
        try:
            runs = build_runs(spec, overrides, self._data, probe_every=self._probe_every, val_every=val_every)
        except ResourceError as exc:  # too big for memory: say so, and show a net that fits
            fallback = RunSpec(model="small_convnet", optimizer=spec.optimizer, batch_size=64, seed=spec.seed)
            runs = build_runs(fallback, None, self._data, probe_every=self._probe_every, val_every=val_every)
            spec, overrides = fallback, None
            self._show_error(f"{exc}. Showing a small convnet instead.")
        self._spec, self._overrides = spec, overrides
        self._install(runs)
        self.children = self._layout()

    # ================================================================== public API
    def start(self) -> None:
        """Train live in a worker thread; returns at once. After stop(), starts a new run."""
        if self._closed:
            return
        if self._stopped:
            self._stopped = False
            self._request("reset", True, sync=True)
        self._request("resume", True, sync=True)
        self._rate.clear()
        self._runner.play()

    def pause(self) -> None:
        """Stop after the current step (the last frame is drawn); start() goes on from there."""
        if self._closed:
            return
        self._runner.pause()
        self._runner.wait(10.0)
        self._runner.apply_pending()

    def stop(self) -> None:
        """End the run: the curves stay; start() or Reset begins a new run from the same initial weights."""
        if self._closed:
            return
        self.pause()
        self._stopped = True
        self._on_status("stopped")

    def step(self, n: int = 1) -> None:
        """Train n steps (of every run) synchronously in the caller's thread, then draw (notebooks, tests)."""
        if self._closed:
            return
        if self._runner.is_running:
            self.pause()
        if self._stopped:
            self._stopped = False
            self._request("reset", True, sync=True)
        self._request("resume", True, sync=True)
        self._rate.clear()
        try:
            self._runner.run_sync(max(int(n), 0))
        except Exception:  # noqa: BLE001 - already shown in the error line by the runner
            pass

    def reset(self) -> None:
        """A new run with the current settings, from the same initial weights (same seed)."""
        self._stopped = False
        self._request("reset", True, sync=True)

    def set(self, run: int | str | None = None, **values: Any) -> None:
        """Change settings as the controls do, e.g. set(lr=0.01), set(dropout=0.5), set(model="mlp").

        lr, momentum, betas, dropout and weight_decay act on the running net from its next step
        (in compare mode on every run that has them, or only on `run`: an index or a label).
        model, optimizer, batch_size, batch_norm, activation, init, schedule, width, depth and seed
        start a new run. A bad value shows a message in the widget (and in `.error`) instead of raising.
        """
        if self._closed:
            return
        try:
            target = "all" if run is None else str(self._run_index(run))
        except ValueError as exc:
            self._show_error(str(exc))
            return
        restart = {k: values.pop(k) for k in list(values) if k in RESTART_KEYS}
        for name, value in values.items():
            if name not in LIVE_KEYS:
                self._show_error(f"unknown setting {name!r}; live: {', '.join(LIVE_KEYS)}; "
                                 f"new run: {', '.join(RESTART_KEYS)}")
                continue
            self._request(f"live:{name}:{target}", value, sync=True)
        if restart:
            self._request_spec(restart, sync=True)

    def snapshot(self) -> int:
        """Copy every run's whole state now (at a step boundary); returns the index rewind() takes."""
        self._request("snapshot", True, sync=True)
        return len(self._snaps) - 1

    def rewind(self, index: int = -1) -> None:
        """Go back to a snapshot: weights, optimizer state, data order and curves as they were then."""
        self._request("rewind", int(index), sync=True)

    def compare(self, settings: Sequence[str | Mapping[str, Any]] | None = None) -> None:
        """Train several runs of the same net from the same initial weights on the same batches.

        settings: optimizer names, or dicts of what differs (optimizer, lr, momentum, betas, dropout,
        weight_decay, schedule, label), e.g. compare(["sgd", "momentum", {"optimizer": "adam", "lr": 3e-4}]).
        None or [] goes back to a single run.
        """
        self._request("compare", None if not settings else list(settings), sync=True)

    def focus_run(self, run: int | str) -> None:
        """Which run the sliders steer and the per-layer panels show (an index or a label)."""
        try:
            self._request("focus", self._run_index(run), sync=True)
        except ValueError as exc:
            self._show_error(str(exc))

    def show_histograms(self, probe: int | None = None) -> None:
        """Show the activation histograms of probe number `probe` (negative counts from the end); None: live."""
        self._request("hist", probe, sync=True)

    def close(self) -> None:
        """Stop the worker, then close every widget this view made."""
        if self._closed:
            return
        self._closed = True
        self._runner.close()
        for child in self.children:
            for w in owned_widgets(child):
                w.close()
        super().close()

    # ---- state and what the marks hold (tests and notebooks read these) ----------------------
    @property
    def runs(self) -> tuple[str, ...]:
        return tuple(r.label for r in self._runs)

    @property
    def trainers(self) -> list[Any]:
        return [r.trainer for r in self._runs]

    @property
    def trainer(self) -> Any:
        """The focused run's Trainer (its history, events and probe_records are the records)."""
        return self._runs[self._focus].trainer

    @property
    def layers(self) -> tuple[str, ...]:
        return self.panels.layers

    @property
    def state(self) -> str:
        """"idle", "playing", "paused", "done" (every run halted), "stopped" or "error"."""
        return "stopped" if self._stopped else self._runner.state

    @property
    def error(self) -> str:
        """The message the error line shows ('' when none)."""
        return self._error

    @property
    def health(self) -> str:
        """The health line's text (one line per run in compare mode)."""
        return "\n".join(f"{r.label}: {health_line(f)}" if len(self._runs) > 1 else health_line(f)
                         for r, f in zip(self._runs, self._findings))

    @property
    def findings(self) -> dict[str, list[Finding]]:
        return {r.label: list(f) for r, f in zip(self._runs, self._findings)}

    @property
    def progress(self) -> str:
        return html.unescape(_strip_tags(self._progress_html.value))

    @property
    def snapshots(self) -> list[str]:
        return [s.label for s in self._snaps]

    @property
    def loss_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(steps, train loss) per run, as the loss mark holds them."""
        return self._per_run("loss")

    @property
    def val_loss_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self._per_run("val_loss")

    @property
    def accuracy_curves(self) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """{"train": (steps, acc), "val": (steps, acc)} per run."""
        train, val = self._per_run("train_acc"), self._per_run("val_acc")
        return {label: {"train": train.get(label, _EMPTY), "val": val.get(label, _EMPTY)} for label in self.runs}

    @property
    def gap(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shaded train/val gap of the focused run: (epoch-end steps, train acc, val acc)."""
        x, y = np.asarray(self.panels.gap.x), np.asarray(self.panels.gap.y)
        if y.ndim != 2 or not np.any(y):
            return np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32)
        return x, y[0], y[1]

    @property
    def lr_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self._per_run("lr")

    @property
    def ratio_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Update/weight ratio per layer of the focused run: (probe steps, ratio)."""
        return self._per_layer("ratio", self.layers)

    @property
    def grad_norm_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self._per_layer("grad", self.layers)

    @property
    def dead_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Dead (ReLU) or saturated (tanh/sigmoid) fraction per hidden layer of the focused run."""
        names = tuple(n for n, k in zip(self.layers, self.panels.dead_kinds) if k)
        return self._per_layer("dead", names)

    @property
    def histograms(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per layer, the bin centres and fractions the Bars mark holds."""
        return {name: (np.asarray(b.x), np.asarray(b.y)) for name, b in zip(self.layers, self.panels.hist_bars)}

    @property
    def histogram_step(self) -> int | None:
        """The training step whose histograms are shown (None before the first probe)."""
        return self.panels.hist_step

    @property
    def markers(self) -> list[tuple[float, str]]:
        """(step, label) of every change marked on the loss curves, as the marker mark holds them."""
        m = self.panels.markers
        return [(float(x), str(n)) for x, n in zip(np.asarray(m.x), list(m.names))]

    @property
    def marks(self) -> dict[str, Any]:
        return self.panels.marks

    @property
    def runner(self) -> LiveRunner:
        return self._runner

    def _per_run(self, key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {label: row for label, row in zip(self.runs, self.panels.rows(key))}

    def _per_layer(self, key: str, names: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {name: row for name, row in zip(names, self.panels.rows(key))}

    # ================================================================== building
    def _layout(self) -> list[widgets.Widget]:
        """Controls on the left, six panels in two columns on the right, histograms underneath (~1,260 px)."""
        c, p = self.controls, self.panels
        header = widgets.VBox([self._health_html, widgets.HBox([self._progress_html, self._error_html])])
        left = widgets.VBox([self._runs_html, c.tabs()], layout=widgets.Layout(width="460px", min_width="460px"))
        plots = widgets.VBox([widgets.HBox([p.loss_fig, p.acc_fig]), p.layer_legend,
                              widgets.HBox([p.ratio_fig, p.grad_fig]), widgets.HBox([p.dead_fig, p.lr_fig])])
        hist_title = widgets.HTML(f'<b style="font-size:{theme.TITLE_PX}px">activation histograms&nbsp;&nbsp;</b>')
        return [theme.style_widget(), header, c.buttons(), widgets.HBox([left, plots]),
                widgets.HBox([hist_title, c.histogram_bar()]), p.hist_box]

    def _wire(self) -> None:
        c, q = self.controls, self._quiet
        c.start_btn.on_click(lambda _b: self.start())
        c.pause_btn.on_click(lambda _b: self._runner.pause())
        c.stop_btn.on_click(lambda _b: self._on_stop_button())
        c.step_btn.on_click(lambda _b: self._on_step_button())
        c.reset_btn.on_click(lambda _b: self._on_reset_button())
        c.snapshot_btn.on_click(lambda _b: self._request("snapshot", True))
        c.rewind_btn.on_click(lambda _b: c.rewind_to.value >= 0 and self._request("rewind", c.rewind_to.value))
        c.compare_btn.on_click(lambda _b: self._request("compare", c.compare_choice() or None))
        c.single_btn.on_click(lambda _b: self._request("compare", None))
        target = lambda: str(self._focus)  # noqa: E731 - the UI steers the run it shows
        on_value(c.lr, q, lambda v: self._request(f"live:lr:{target()}", v))
        on_value(c.lr_text, q, lambda v: self._request(f"live:lr:{target()}", v))
        on_value(c.momentum, q, lambda v: self._request(f"live:momentum:{target()}", v))
        on_value(c.beta1, q, lambda _v: self._request(f"live:betas:{target()}", (c.beta1.value, c.beta2.value)))
        on_value(c.beta2, q, lambda _v: self._request(f"live:betas:{target()}", (c.beta1.value, c.beta2.value)))
        on_value(c.dropout, q, lambda v: self._request(f"live:dropout:{target()}", v))
        on_value(c.weight_decay, q, lambda v: self._request(f"live:weight_decay:{target()}", v))
        on_value(c.run, q, lambda v: v is not None and self._request("focus", v))
        for key, w in (("model", c.model), ("optimizer", c.optimizer), ("batch_size", c.batch_size),
                       ("batch_norm", c.batch_norm), ("activation", c.activation)):
            on_value(w, q, lambda v, key=key: self._request_spec({key: v}))
        on_value(c.init, q, lambda v: self._request_spec({"init": None if v == DEFAULT_INIT else v}))
        for w in (c.schedule, *c.schedule_params.values()):
            on_value(w, q, lambda _v: self._request_spec({"schedule": c.schedule_value()}))
        on_value(c.hist_live, q, lambda v: self._request("hist", None if v else c.hist_probe.value))
        on_value(c.hist_probe, q, lambda v: self._request("hist", v))

    # ================================================================== input -> requests
    def _request(self, name: str, value: Any, sync: bool = False) -> None:
        """What every control does: record the change; apply it now unless the worker will (sync: wait for it)."""
        if self._closed:
            return
        self._runner.request(name, value)
        if sync or not self._runner.is_running:
            self._runner.apply_pending()

    def _request_spec(self, changes: dict[str, Any], sync: bool = False) -> None:
        """Settings that start a new run: merged until the worker rebuilds once for all of them."""
        with self._spec_lock:
            self._spec_pending.update(changes)
        self._request("spec", True, sync)

    def _on_stop_button(self) -> None:
        self._runner.pause()
        self._stopped = True
        self._on_status("stopped")

    def _on_step_button(self) -> None:
        self._request("resume", True)
        self._runner.step_once()

    def _on_reset_button(self) -> None:
        self._stopped = False
        self._request("reset", True)

    def _run_index(self, run: int | str) -> int:
        labels = self.runs
        if isinstance(run, str):
            if run not in labels:
                raise ValueError(f"unknown run {run!r}; runs: {', '.join(labels)}")
            return labels.index(run)
        i = int(run)
        if not -len(labels) <= i < len(labels):
            raise ValueError(f"run must be in [0, {len(labels) - 1}], got {run!r}")
        return i % len(labels)

    # ================================================================== worker side: step
    def _step_chunk(self) -> Any:
        """Runner's step: one training step of every run that can go on."""
        runs = self._runs
        if all(r.halted for r in runs):
            return DONE
        records: list[Any] = []
        for r in runs:
            if r.halted:
                records.append(None)
                continue
            try:
                records.append(r.trainer.step())
            except (torch.OutOfMemoryError, MemoryError) as exc:
                records.append(self._fail_run(r, out_of_memory_text(r.spec, exc)))
            except RuntimeError as exc:
                if "memory" not in str(exc).lower() and "alloc" not in str(exc).lower():
                    raise
                records.append(self._fail_run(r, out_of_memory_text(r.spec, exc)))
        return _Frame(self._generation, records, time.perf_counter())

    def _fail_run(self, run: Run, message: str) -> None:
        run.failed = message
        self._show_error(f"{run.label}: {message}; press Reset." if len(self._runs) > 1 else f"{message}; press Reset.")
        return None

    # ================================================================== worker side: controls
    def _apply(self, changes: dict[str, Any]) -> None:
        """Runner's apply: one change at a time, at a step boundary; ValueError -> the error line."""
        kind = apply_control(self, changes)
        if kind not in ("hist", "focus", "snapshot", "resume"):
            self._clear_error()

    def _apply_live(self, rest: str, value: Any) -> None:
        name, _, target = rest.partition(":")
        runs = self._runs if target == "all" else [self._runs[int(target)]]
        if name == "betas" and value is not None:
            value = tuple(float(v) for v in value)
        applied = []
        try:
            for r in runs:
                if name in ("momentum", "betas") and name not in r.trainer.hparams:
                    if target != "all":
                        raise ValueError(f"{r.spec.optimizer} has no {name}; "
                                         f"{'use betas' if name == 'momentum' else 'use momentum'}")
                    continue
                r.trainer.set(**{name: value})  # validated here: ValueError names the setting and its range
                value = value if name == "betas" else float(value)
                setattr(r.spec, name, value)
                self._remember(self._runs.index(r), name, value)
                applied.append(r)
            if not applied:
                raise ValueError(f"no run has {name}: {', '.join(sorted({r.spec.optimizer for r in runs}))}")
        finally:
            self._show_settings()

    def _remember(self, k: int, name: str, value: Any) -> None:
        """A live change is part of "the current settings" a Reset starts from."""
        if self._overrides is None:
            setattr(self._spec, name, value)
        else:
            self._overrides[k] = {**self._overrides[k], name: value}

    def _apply_spec(self, _rest: str, _value: Any) -> None:
        with self._spec_lock:
            changes, self._spec_pending = self._spec_pending, {}
        if not changes:
            return
        if "schedule" in changes:
            changes["schedule"] = schedule_spec(changes["schedule"])
        try:
            spec = with_changes(self._spec, **changes)
            self._rebuild(spec, self._overrides)
        finally:
            self._show_settings()

    def _apply_reset(self, _rest: str, _value: Any) -> None:
        self._rebuild(self._spec, self._overrides)

    def _apply_compare(self, _rest: str, value: Any) -> None:
        overrides = None if not value else [{"optimizer": v} if isinstance(v, str) else dict(v) for v in value]
        self._rebuild(self._spec, overrides)

    def _apply_resume(self, _rest: str, _value: Any) -> None:
        """Before playing or stepping: a run stopped by the divergence check goes on (with a lowered lr)."""
        for r in self._runs:
            if r.failed is None and r.trainer.stopped:
                r.trainer.resume()

    def _apply_snapshot(self, _rest: str, _value: Any) -> None:
        states = [r.trainer.snapshot() for r in self._runs]
        step = max(s.step for s in states)
        epoch = max(s.epoch for s in states)
        self._snaps.append(_Snap(f"#{len(self._snaps) + 1}: step {step} (epoch {epoch})", step, states))
        self.controls.show_snapshots(self._quiet, [s.label for s in self._snaps])

    def _apply_rewind(self, _rest: str, value: Any) -> None:
        if not self._snaps:
            raise ValueError("no snapshot to rewind to: press Snapshot first")
        i = int(value)
        if not -len(self._snaps) <= i < len(self._snaps):
            raise ValueError(f"snapshot must be in [0, {len(self._snaps) - 1}], got {value!r}")
        snap = self._snaps[i]
        for r, state in zip(self._runs, snap.states):
            r.trainer.restore(state)
            r.failed = None
        self._generation += 1  # records of steps after the snapshot that wait for a frame are void
        for s, r in zip(self._series, self._runs):
            s.rebuild(r.trainer)
        self._hist_index = None
        self._redraw()

    def _apply_focus(self, _rest: str, value: Any) -> None:
        self._focus = int(value) % len(self._runs)
        self._hist_index = None
        self._show_settings()
        self.panels.invalidate()
        self._draw(health=True)

    def _apply_hist(self, _rest: str, value: Any) -> None:
        probes = self.trainer.probe_records
        if value is None:
            self._hist_index = None
        else:
            i = int(value)
            if not probes or not -len(probes) <= i < len(probes):
                raise ValueError(f"probe must be in [0, {max(len(probes) - 1, 0)}], got {value!r}")
            self._hist_index = i % len(probes)
        self._draw_histograms()

    # ================================================================== runs
    def _rebuild(self, spec: RunSpec, overrides: list[Any] | None) -> None:
        """New runs (ValueError: the old ones go on untouched)."""
        runs = build_runs(spec, overrides, self._data, probe_every=self._probe_every, val_every=self._val_every)
        self._spec, self._overrides = spec, overrides
        self._install(runs)

    def _install(self, runs: list[Run]) -> None:
        self._generation += 1
        self._runs = runs
        self._focus = min(self._focus, len(runs) - 1) if runs else 0
        layers = runs[0].trainer.layer_names
        self._series = [RunSeries(layers) for _ in runs]
        self._snaps = []
        self._hist_index = None
        self._findings = [[] for _ in runs]
        self._rate.clear()
        self.controls.show_snapshots(self._quiet, [])
        with ExitStack() as stack:
            kinds = tuple(DEAD_KIND.get(layer.nonlinearity or "", "") for layer in runs[0].trainer.probes.layers)
            self.panels.set_layers(layers, kinds, stack)
            self.panels.set_runs([r.label for r in runs], [r.spec.optimizer for r in runs])
        self._show_settings()
        self._redraw()

    def _redraw(self) -> None:
        self.panels.invalidate()
        self._draw(health=True)

    def _show_settings(self) -> None:
        if self._runs:
            self.controls.show(self._quiet, self._runs, self._focus, self._spec)

    # ================================================================== worker side: drawing
    def _publish(self, frames: list[_Frame]) -> None:
        """Runner's publish: append this frame's records to the series, then draw one frame."""
        fresh = [f for f in frames if f.generation == self._generation]
        for f in fresh:
            images = 0
            for k, rec in enumerate(f.records):
                if rec is None or k >= len(self._series):
                    continue
                run = self._runs[k]
                bs = min(run.trainer.batch_size, run.trainer.n_train)
                self._series[k].add(rec, bs)
                if rec.stop_reason is None:
                    images += bs
                else:
                    who = f"{run.label}: " if len(self._runs) > 1 else ""
                    self._show_error(f"{who}stopped: {rec.stop_reason}. Lower the lr, then Reset (or Rewind "
                                     "to a snapshot); Start goes on from here.")
            total = (self._rate[-1][1] if self._rate else 0) + images
            self._rate.append((f.time, total))
        while len(self._rate) > 2 and self._rate[-1][0] - self._rate[0][0] > RATE_WINDOW:
            self._rate.popleft()
        if len(self._rate) >= 2:
            (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
            if t1 > t0:
                self._images_per_s = (n1 - n0) / (t1 - t0)
        self._draw(health=not self._runner.is_running or time.monotonic() - self._health_at >= HEALTH_EVERY)

    def _draw(self, health: bool = True) -> None:
        with ExitStack() as stack:
            self.panels.draw(self._series, self._focus, stack)
            self._draw_histograms(stack)
            self._draw_runs(stack)
            if health:
                self._health_at = time.monotonic()
                self._draw_health(stack)
            self._draw_progress()

    def _draw_histograms(self, stack: ExitStack | None = None) -> None:
        with ExitStack() as own:
            stack = stack or own
            probes = self.trainer.probe_records
            c = self.controls
            n = len(probes)
            i = (n - 1 if n else None) if self._hist_index is None else min(self._hist_index, n - 1)
            self.panels.draw_histograms(probes[i] if i is not None and i >= 0 else None, stack)
            with self._quiet():
                if c.hist_probe.max != max(n - 1, 0):
                    c.hist_probe.max = max(n - 1, 0)
                if i is not None and c.hist_probe.value != i:
                    c.hist_probe.value = i
                if c.hist_live.value != (self._hist_index is None):
                    c.hist_live.value = self._hist_index is None
            step = self.panels.hist_step
            text = "no probe yet" if step is None else f"step {step}" + (" (live)" if self._hist_index is None else "")
            value = f'<span style="font-size:{theme.FONT_PX}px">{text}</span>'
            if c.hist_label.value != value:
                c.hist_label.value = value

    def _draw_runs(self, stack: ExitStack) -> None:
        """Legend of the runs: colour, label, last loss and validation accuracy, status."""
        rows = []
        for k, (r, s) in enumerate(zip(self._runs, self._series)):
            color = self.panels.colors[k] if k < len(self.panels.colors) else "#000"
            last = s.loss.last
            val = s.val.last
            status = "failed" if r.failed else ("diverged" if r.trainer.stopped else "")
            focus = " ◀" if k == self._focus and len(self._runs) > 1 else ""
            rows.append(f'<tr><td><span style="display:inline-block;width:26px;height:8px;background:{color}"></span></td>'
                        f"<td><b>{html.escape(r.label)}</b>{focus}</td>"
                        f"<td>loss {theme.format_loss(last[1]) if last else '—'}</td>"
                        f"<td>val acc {f'{val[1][1]:.3f}' if val else '—'}</td><td>{status}</td></tr>")
        value = (f'<table class="optiviz-legend" style="font-size:{theme.FONT_PX}px;white-space:nowrap">'
                 + "".join(rows) + "</table>")
        if self._runs_html.value != value:
            self._runs_html.value = value

    def _draw_health(self, stack: ExitStack) -> None:
        self._findings = [check_health(s.health_history(), r.trainer.probe_records[-6:], stop_reason=r.trainer.stop_reason)
                          for r, s in zip(self._runs, self._series)]
        lines = []
        for k, (r, found) in enumerate(zip(self._runs, self._findings)):
            worst = max((f.severity for f in found), default=OK)
            icon, color = ("✖", "#b00020") if worst >= BAD else ("⚠", "#a05a00") if worst >= WARN else \
                ("•", "#555555") if worst == INFO else ("✔", "#1b7837")
            who = f"<b>{html.escape(r.label)}</b>: " if len(self._runs) > 1 else ""
            lines.append(f'<div style="font-size:{theme.TITLE_PX}px;color:{color}">{icon} {who}'
                         f"{html.escape(health_line(found))}</div>")
        value = "".join(lines)
        if self._health_html.value != value:
            self._health_html.value = value

    def _draw_progress(self, state: str | None = None) -> None:
        run = self._runs[self._focus]
        t = run.trainer
        state = state or self.state
        shown = {"playing": "running", "done": "halted"}.get(state, state)
        rate = "—" if not np.isfinite(self._images_per_s) else f"{self._images_per_s:,.0f}"
        images = sum(s.images for s in self._series)
        text = (f"epoch {t.epoch} · step {t.step_count} ({t.step_count % t.steps_per_epoch}/{t.steps_per_epoch} "
                f"of this epoch) · {rate} images/s · {images:,} images seen · {shown}")
        value = f'<span style="font-size:{theme.FONT_PX}px">{html.escape(text)}</span>'
        if self._progress_html.value != value:
            self._progress_html.value = value

    def _on_status(self, state: str) -> None:
        if self._closed:
            return
        try:
            self._draw_progress("stopped" if self._stopped else state)
        except Exception:  # noqa: BLE001 - a status line must never break the runner
            pass

    def _show_error(self, message: str) -> None:
        self._error = str(message)
        self._error_html.value = f'<span class="optiviz-error">⚠ {html.escape(self._error)}</span>'

    def _clear_error(self) -> None:
        if self._error:
            self._error = ""
            self._error_html.value = ""


_EMPTY = (np.zeros(0, np.float32), np.zeros(0, np.float32))


def _prepare_data(data: CIFAR10 | None, n_train: int | None, n_val: int | None,
                  device: str | torch.device | None) -> CIFAR10:
    """The bundled subset (loaded once per device and process), sliced to n_train / n_val."""
    if data is None:
        key = str(device)
        if key not in _DATA_CACHE:
            _DATA_CACHE[key] = load_cifar10(device=device)
        data = _DATA_CACHE[key]
    elif not isinstance(data, CIFAR10):
        raise ValueError(f"data must be a CIFAR10 from ov.load_cifar10(), got {type(data).__name__}")
    elif device is not None:
        data = data.to(device)
    if n_train is not None or n_val is not None:
        data = data.subset(n_train or data.n_train, n_val, 0)
    return data


def _strip_tags(text: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", text)


__all__ = ["TrainingDashboard"]
