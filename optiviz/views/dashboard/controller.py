"""DashboardController: the training dashboard's runs, records and steering, in plain Python.

It owns what the dashboard shows: the runs (a RunSpec and a Trainer each), the data, the
snapshots, the focused run, the histogram choice, the drawing series, the health findings, the
images/s figure, the error line and the one LiveRunner (the only thread boundary). Changes arrive
as requests keyed by kind, `("live", "lr", 0)` (run 0; None: every run that has it), "spec",
"reset", "compare", "resume", "snapshot", "rewind", "focus", "hist", "patience", "restore_best", and apply at a step boundary
through the handler table. A live setting lives in its run's Trainer only: `Run.spec` and the
controls read it from there. No widgets here, so everything the dashboard does is scriptable.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optiviz._validate import check_int, shown
from optiviz.engine.schedules import schedule_spec
from optiviz.stream.runner import DONE
from optiviz.training.data import CIFAR10
from optiviz.training.early_stopping import EarlyStop, early_stopping
from optiviz.training.health import Finding, check_health, health_line
from optiviz.training.probes import DEAD_KIND, ProbeRecord
from optiviz.training.records import StepRecord
from optiviz.training.runs import (
    COMPARE_KEYS, LIVE_KEYS, OUT_OF_MEMORY, RESTART_KEYS, ResourceError, Run, RunSpec, build_runs, build_specs,
    compare_spec, out_of_memory_text, validate_spec, with_changes,
)
from optiviz.training.trainer import Snapshot, Trainer
from optiviz.views.common.data import data_setting
from optiviz.views.common.live_controller import LiveController
from optiviz.views.dashboard.series import RunSeries

DEFAULT_PATIENCE = 3  # evaluations without a new best validation loss before early stopping would stop
HEALTH_EVERY = 0.5  # seconds between health checks while playing (each reads only the records' tails)
RATE_WINDOW = 3.0  # seconds of frames the images/s figure averages over


@dataclass
class Frame:
    """One chunk: (run index, StepRecord) of each run that stepped, tagged with its run set."""

    generation: int
    records: list[tuple[int, StepRecord]]
    time: float


@dataclass
class SnapshotSet:
    label: str
    step: int
    states: list[Snapshot]


def compare_overrides(settings: Sequence[str | Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """compare=[...] as a list of dicts ("adam" is {"optimizer": "adam"}); None or [] is a single run."""
    if settings is None or (isinstance(settings, (list, tuple)) and not settings):
        return None
    if isinstance(settings, (str, Mapping)) or not isinstance(settings, Sequence) or \
            not all(isinstance(v, (str, Mapping)) for v in settings):
        raise TypeError(f"compare must be a list of optimizer names or dicts of settings, e.g. "
                        f"['sgd', {{'optimizer': 'adam', 'lr': 3e-4}}], got {shown(settings)}")
    return [{"optimizer": v} if isinstance(v, str) else dict(v) for v in settings]


class DashboardController(LiveController):
    """Train one run, or several compared runs, of a small CIFAR-10 net; steer them between steps."""

    def __init__(self, spec: RunSpec, data: CIFAR10, *, compare: Sequence[str | Mapping[str, Any]] | None = None,
                 probe_every: int = 10, val_every: int | None = None, fps: float = 15.0,
                 patience: int = DEFAULT_PATIENCE) -> None:
        if not isinstance(data, CIFAR10):
            raise TypeError(f"data must be a CIFAR10 from ov.load_cifar10(), got {type(data).__name__}")
        self.data = data
        self.probe_every = check_int("probe_every", probe_every, 0)
        self.val_every = None if val_every is None else check_int("val_every", val_every, 1)
        self.patience = check_int("patience", patience, 1)  # the look-ahead early_stop() marks
        self.runs: list[Run] = []
        self.series: list[RunSeries] = []
        self.snapshots: list[SnapshotSet] = []
        self.focus = 0
        self.hist_index: int | None = None  # None: follow the newest probe
        self.findings: list[list[Finding]] = []
        self.images_per_s = float("nan")
        self.generation = 0  # a new run set (or a rewind) makes records still in flight void
        self.stopped = False
        self.compare_base: RunSpec | None = None  # compare mode: what the compared runs differ from
        self.layer_kinds: tuple[str, ...] = ()
        self._rate: collections.deque[tuple[float, int]] = collections.deque()
        self._health_at = -math.inf
        self._restart: dict[str, Any] = {}  # new-run settings merged until the next boundary rebuilds once
        self._restart_lock = threading.Lock()
        super().__init__(fps=fps, name="training-dashboard")
        spec = validate_spec(spec)
        overrides = compare_overrides(compare)
        try:
            runs = build_runs(spec, overrides, data, probe_every=self.probe_every, val_every=val_every)
        except ResourceError as exc:  # too big for memory: say so, and show a net that fits
            spec, overrides = RunSpec(model="small_convnet", optimizer=spec.optimizer, batch_size=64, seed=spec.seed), None
            runs = build_runs(spec, None, data, probe_every=self.probe_every, val_every=val_every)
            self.error = f"{exc}. Showing a small convnet instead."
        self._install(runs, spec if overrides else None)

    # ================================================================== scripting (any thread)
    def start(self) -> None:
        """Train live in the runner's worker; returns at once. After stop(), starts a new run."""
        if self.closed:
            return
        if self.stopped:
            self.stopped = False
            self.request("reset", sync=True)
        self.request("resume", sync=True)
        self._rate.clear()
        self.runner.play()

    def pause(self) -> None:
        if self.closed:
            return
        self.runner.pause()
        self.runner.wait(10.0)
        self.runner.apply_pending()

    def stop(self) -> None:
        """End the run: the curves stay; start() or reset() begins a new one from the same initial weights."""
        if self.closed:
            return
        self.pause()
        self.stopped = True
        self.emit("status")

    def close(self) -> None:
        """Stop the worker for good; the snapshots (whole copies of the nets) are let go, since a
        closed view rewinds nothing, while IPython's output history may keep the view itself."""
        super().close()
        self.snapshots = []

    def stop_soon(self) -> None:
        """The Stop button: like stop(), without waiting for the step in flight."""
        self.runner.pause()
        self.stopped = True
        self.emit("status")

    def step(self, n: int = 1) -> None:
        """n steps of every run in the caller's thread; a failure is shown in `error` and raised."""
        if self.closed:
            return
        if self.runner.is_running:
            self.pause()
        if self.stopped:
            self.stopped = False
            self.request("reset", sync=True)
        self.request("resume", sync=True)
        self._rate.clear()
        self.runner.run_sync(max(int(n), 0))

    def reset(self, sync: bool = True) -> None:
        self.stopped = False
        self.request("reset", sync=sync)

    def set(self, run: int | str | None = None, **values: Any) -> None:
        """Live settings act on the running nets (every run that has them, or only `run`); the
        others start new runs. A bad value shows in `error` instead of raising."""
        if self.closed:
            return
        try:
            target = None if run is None else self.run_index(run)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        unknown = [k for k in values if k not in LIVE_KEYS and k not in RESTART_KEYS]
        for name, value in values.items():
            if name in LIVE_KEYS:
                self.request(("live", name, target), value, sync=True)
        restart = {k: v for k, v in values.items() if k in RESTART_KEYS}
        if restart:
            self.request_restart(restart, sync=True)
        if unknown:
            self.show_error(f"unknown setting {unknown[0]!r}; live: {', '.join(LIVE_KEYS)}; "
                            f"new run: {', '.join(RESTART_KEYS)}")

    def request_restart(self, changes: Mapping[str, Any], sync: bool = False) -> None:
        """Settings that start a new run: merged until the next step boundary rebuilds once for all."""
        with self._restart_lock:
            self._restart.update(changes)
        self.request("spec", True, sync=sync)

    def setting(self) -> dict[str, Any]:
        """What `TrainingDashboard.state()` holds: what Reset would rebuild (live changes included), the
        data (named, not copied), the probe cadence and early stopping's patience."""
        compare = None if self.compare_base is None else [self._override_of(r) for r in self.runs]
        return {"run": self.base.setting(), "compare": compare, "data": data_setting(self.data),
                "probe_every": self.probe_every, "val_every": self.val_every, "patience": self.patience}

    def run_index(self, run: int | str) -> int:
        labels = [r.label for r in self.runs]
        if isinstance(run, str):
            if run not in labels:
                raise ValueError(f"unknown run {run!r}; runs: {', '.join(labels)}")
            return labels.index(run)
        i = int(run)
        if not -len(labels) <= i < len(labels):
            raise ValueError(f"run must be in [0, {len(labels) - 1}], got {run!r}")
        return i % len(labels)

    # ================================================================== state the view draws
    @property
    def state(self) -> str:
        """"idle", "playing", "paused", "done" (every run halted), "stopped" or "error"."""
        if self.stopped:
            return "stopped"
        state = self.runner.state
        if state == "done" and not all(r.halted for r in self.runs):
            return "paused"  # a rewind or resume after the last run halted: it can go on
        return state

    @property
    def trainer(self) -> Trainer:
        """The focused run's Trainer."""
        return self.runs[self.focus].trainer

    @property
    def base(self) -> RunSpec:
        """The settings the model tab shows: the compare base, or the single run's spec."""
        return self.compare_base if self.compare_base is not None else self.runs[0].spec

    def run_status(self, k: int) -> str:
        r = self.runs[k]
        return "failed" if r.failed else ("diverged" if r.trainer.stopped else "")

    def health_lines(self) -> list[tuple[str, str]]:
        return [(r.label, health_line(f)) for r, f in zip(self.runs, self.findings)]

    def progress_text(self) -> str:
        t = self.trainer
        shown = {"playing": "running", "done": "halted"}.get(self.state, self.state)
        rate = "—" if not math.isfinite(self.images_per_s) else f"{self.images_per_s:,.0f}"
        images = sum(s.images for s in self.series)
        return (f"epoch {t.epoch} · step {t.step_count} ({t.step_count % t.steps_per_epoch}/{t.steps_per_epoch} "
                f"of this epoch) · {rate} images/s · {images:,} images seen · {shown}")

    def histogram_probe(self) -> tuple[ProbeRecord | None, int | None, int]:
        """(the probe shown, its index, how many there are) for the focused run."""
        probes = self.trainer.probe_records
        n = len(probes)
        i = (n - 1 if n else None) if self.hist_index is None else min(self.hist_index, n - 1)
        return (probes[i] if i is not None and i >= 0 else None), i, n

    def early_stop(self) -> EarlyStop | None:
        """Where patience would stop the focused run's validation loss, and which evaluation's weights
        it keeps (None before the first validation)."""
        steps, val = self.series[self.focus].val.arrays()
        return early_stopping(val[:, 0], self.patience, steps=steps) if len(steps) else None

    def update_health(self) -> None:
        self._health_at = time.monotonic()
        self.findings = [check_health(s.health_history(), r.trainer.probe_records[-6:], stop_reason=r.trainer.stop_reason)
                         for r, s in zip(self.runs, self.series)]

    # ================================================================== the runner's side
    def handlers(self) -> Mapping[str, Callable[..., Any]]:
        return {"live": self._apply_live, "spec": self._apply_restart, "reset": self._apply_reset,
                "compare": self._apply_compare, "resume": self._apply_resume, "snapshot": self._apply_snapshot,
                "rewind": self._apply_rewind, "focus": self._apply_focus, "hist": self._apply_hist,
                "restore_best": self._apply_restore_best,
                "patience": self._apply_patience}

    def step_chunk(self) -> Any:
        """One training step of every run that can go on (DONE when none can)."""
        records: list[tuple[int, StepRecord]] = []
        stepping = [(k, r) for k, r in enumerate(self.runs) if not r.halted]
        if not stepping:
            return DONE
        for k, r in stepping:
            try:
                records.append((k, r.trainer.step()))
            except OUT_OF_MEMORY as exc:
                self._fail_run(r, out_of_memory_text(r.spec, exc))
            except RuntimeError as exc:  # a failure of this run: the others go on; say so
                self._fail_run(r, f"step failed: {type(exc).__name__}: {exc}")
        return Frame(self.generation, records, time.perf_counter())

    def _fail_run(self, run: Run, message: str) -> None:
        run.failed = message
        self.show_error(f"{run.label}: {message}; press Reset." if len(self.runs) > 1 else f"{message}; press Reset.")

    def add_records(self, frames: list[Frame]) -> None:
        """Fold a frame's records into the series; images/s; health when due."""
        for f in frames:
            if f.generation != self.generation:
                continue
            images = 0
            for k, rec in f.records:
                run = self.runs[k]
                bs = run.trainer.batches.batch_size
                self.series[k].add(rec, bs)
                if rec.stop_reason is None:
                    images += bs
                else:
                    who = f"{run.label}: " if len(self.runs) > 1 else ""
                    self.show_error(f"{who}stopped: {rec.stop_reason}. Lower the lr, then Reset (or Rewind "
                                    "to a snapshot); Start goes on from here.")
            self._rate.append((f.time, (self._rate[-1][1] if self._rate else 0) + images))
        while len(self._rate) > 2 and self._rate[-1][0] - self._rate[0][0] > RATE_WINDOW:
            self._rate.popleft()
        if len(self._rate) >= 2:
            (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
            if t1 > t0:
                self.images_per_s = (n1 - n0) / (t1 - t0)
        if not self.runner.is_running or time.monotonic() - self._health_at >= HEALTH_EVERY:
            self.update_health()

    # ---- handlers (at a step boundary) --------------------------------------------------------
    def _apply_live(self, name: str, target: int | None, value: Any) -> None:
        runs = self.runs if target is None else [self.runs[target]]
        applied = 0
        for r in runs:
            if target is None and len(runs) > 1 and name not in r.trainer.hparams:
                continue  # compare mode: the runs that have it (one run: its trainer says why not)
            r.trainer.set(**{name: value})  # ValueError names the setting and its range
            applied += 1
        if not applied:
            raise ValueError(f"no run has {name}: {', '.join(sorted({r.spec.optimizer for r in runs}))}")

    def _apply_restart(self, _value: Any) -> None:
        with self._restart_lock:
            changes, self._restart = self._restart, {}
        if not changes:
            return
        if "schedule" in changes:
            changes["schedule"] = schedule_spec(changes["schedule"])
        if self.compare_base is None:
            self._rebuild([with_changes(self.runs[0].spec, **changes)], None)
            return
        base = with_changes(self.compare_base, **changes)
        self._rebuild([compare_spec(base, self._override_of(r)) for r in self.runs], base)

    def _override_of(self, run: Run) -> dict[str, Any]:
        """What a compared run differs in from the compare base, live changes included."""
        spec, base = run.spec, self.compare_base
        return {key: getattr(spec, key) for key in COMPARE_KEYS if getattr(spec, key) != getattr(base, key)}

    def _apply_reset(self, _value: Any) -> None:
        self._rebuild([r.spec for r in self.runs], self.compare_base)

    def _apply_compare(self, value: Any) -> None:
        overrides = compare_overrides(value)
        base = self.base
        if overrides is None:
            self._rebuild([validate_spec(base)], None)
        else:
            self._rebuild([compare_spec(base, o) for o in overrides], base)

    def _apply_resume(self, _value: Any) -> None:
        """Before playing or stepping: a run stopped by the divergence check goes on (with a lowered lr)."""
        for r in self.runs:
            if r.failed is None and r.trainer.stopped:
                r.trainer.resume()

    def _apply_snapshot(self, _value: Any) -> None:
        states = [r.trainer.snapshot() for r in self.runs]
        step, epoch = max(s.step for s in states), max(s.epoch for s in states)
        self.snapshots.append(SnapshotSet(f"#{len(self.snapshots) + 1}: step {step} (epoch {epoch})", step, states))

    def _apply_rewind(self, value: Any) -> None:
        if not self.snapshots:
            raise ValueError("no snapshot to rewind to: press Snapshot first")
        i = int(value)
        if not -len(self.snapshots) <= i < len(self.snapshots):
            raise ValueError(f"snapshot must be in [0, {len(self.snapshots) - 1}], got {value!r}")
        for r, state in zip(self.runs, self.snapshots[i].states):
            r.trainer.restore(state)
            r.failed = None
        self.generation += 1  # records of steps after the snapshot that wait for a frame are void
        for s, r in zip(self.series, self.runs):
            s.rebuild(r.trainer)
        self.hist_index = None
        self.update_health()

    def _apply_focus(self, value: Any) -> None:
        self.focus = int(value) % len(self.runs)
        self.hist_index = None
        self.update_health()

    def _apply_restore_best(self, _value: Any) -> None:
        """Early stopping's restore-best: the focused run's model gets the weights of its lowest validation
        loss so far and trains on from them; a marker on the curves says so (the records stay)."""
        r = self.runs[self.focus]
        kept = r.trainer.restore_best()  # ValueError before the first validation: the error line says it
        self.series[self.focus].markers.add(r.trainer.step_count, f"restored step {kept}")

    def _apply_patience(self, value: Any) -> None:
        self.patience = check_int("patience", value, 1)

    def _apply_hist(self, value: Any) -> None:
        probes = self.trainer.probe_records
        if value is None:
            self.hist_index = None
            return
        i = int(value)
        if not probes or not -len(probes) <= i < len(probes):
            raise ValueError(f"probe must be in [0, {max(len(probes) - 1, 0)}], got {value!r}")
        self.hist_index = i % len(probes)

    # ---- run sets -----------------------------------------------------------------------------
    def _rebuild(self, specs: list[RunSpec], base: RunSpec | None) -> None:
        """New runs from the first one's initial weights (ValueError: the old ones go on untouched)."""
        runs = build_specs(specs, base, self.data, probe_every=self.probe_every, val_every=self.val_every)
        self._install(runs, base)

    def _install(self, runs: list[Run], base: RunSpec | None) -> None:
        self.generation += 1
        self.runs = runs
        self.compare_base = base
        self.focus = min(self.focus, len(runs) - 1)
        layers = runs[0].trainer.layer_names
        self.layer_kinds = tuple(DEAD_KIND.get(layer.nonlinearity or "", "") for layer in runs[0].trainer.probes.layers)
        self.series = [RunSeries(layers) for _ in runs]
        self.snapshots = []
        self.hist_index = None
        self._rate.clear()
        self.images_per_s = float("nan")
        self.update_health()


__all__ = ["DashboardController", "Frame", "SnapshotSet", "compare_overrides", "HEALTH_EVERY", "DEFAULT_PATIENCE"]
