"""ExplorerController: the surface explorer's run, settings and change log, with no widgets.

It owns the `Simulator`, the one `ExplorerConfig` (the only place the explorer keeps a
hyperparameter besides the engine running it), the run's series (`RaceSeries`) and the
`LiveRunner` (through `LiveController`). `SurfaceExplorer` draws its state and sends it requests;
tests, notebooks and benchmarks can drive it without a widget.

Requests (`request(key, value)`; handled at a step boundary, in the worker while playing):
("hparam", optimizer, name), "shared_lr", "grad_noise", "clip", "schedule", "speed", "start",
"reset", "optimizers", "surface", "preset", "redraw". Values are validated once, by the engine object that
takes them (an optimizer's `set_hparams` checks the spec in engine/hparams.py); the controller
only checks what no engine object sees (a hyperparameter of an optimizer not racing, the speed).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiviz._validate import check_choice, check_finite_float, check_int
from optiviz.engine.hparams import HPARAMS
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.schedules import schedule_spec
from optiviz.engine.simulator import CONVERGED, DIVERGED, Simulator, SimRecord, resolve_surface
from optiviz.engine.surface import Surface
from optiviz.engine.surfaces import SURFACE_PARAMS
from optiviz.labels import change_label
from optiviz.stream.runner import DONE
from optiviz.views.common.live_controller import LiveController
from optiviz.views.explorer.config import (
    ExplorerConfig,
    build_schedule,
    build_simulator,
    build_transform,
    checked_start,
    clip_spec,
    full_hparams,
    get_preset,
    optimizer_list,
    preset_config,
    setting_of,
)
from optiviz.views.explorer.fair import FairRaceTool
from optiviz.views.explorer.predict import PredictRound
from optiviz.views.explorer.presets import PRESETS
from optiviz.views.explorer.race import RaceSeries, status_texts

SURFACE_KEYS = frozenset({"surface", "expression"} | {p for ps in SURFACE_PARAMS.values() for p in ps})
MAX_SPEED = 100_000
MAX_POINTS = 100_000  # points one frame may send per line (max_path_points, max_curve_points)
FPS, PATH_POINTS, CURVE_POINTS = 40.0, 800, 400  # defaults of fps, max_path_points, max_curve_points
DONE_NOTE = " (every optimizer converged or diverged: Reset, or click to start elsewhere)"


def _as_kind(kind: str, value: Any) -> Any:
    """An accepted value as plain Python: a float, int, bool or a pair of floats."""
    if kind == "pair":
        return tuple(float(v) for v in value)
    if kind == "float":
        return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])  # N=1: one value per run is one
    return {"int": int, "bool": bool}.get(kind, lambda v: v)(value)


@dataclass(frozen=True)
class Chunk:
    """A SimRecord tagged with the run it belongs to (records of a restarted run are dropped)."""

    generation: int
    record: SimRecord


class ExplorerController(LiveController):
    """Optimizers racing on a 2D surface, steerable while they run; see SurfaceExplorer for the
    arguments. Constructor arguments are checked at once (ValueError); later changes that are
    rejected become `error` and the run goes on."""

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
        max_path_points: int = PATH_POINTS,
        max_curve_points: int = CURVE_POINTS,
        device: str = "cpu",
        seed: int = 0,
        **surface_params: Any,
    ) -> None:
        # every argument is checked here, before anything is built (ValueError / TypeError naming it)
        self.max_path_points = check_int("max_path_points", max_path_points, 2, MAX_POINTS)
        self.max_curve_points = check_int("max_curve_points", max_curve_points, 2, MAX_POINTS)
        self._device = device
        self._seed = check_int("seed", seed, 0)
        self.generation = 0  # one per (re)start: records of an older run are dropped
        self.playing = False
        self._sync_steps: int | None = None  # .step(n): the next chunk's size, instead of speed
        self.stop_at: int | None = None  # play(until=N): the live run pauses at step N
        speed = None if speed is None else check_int("speed", speed, 1, MAX_SPEED)  # 0 is refused, not replaced
        if preset is not None:
            cfg = preset_config(get_preset(preset))
            cfg.speed = cfg.speed if speed is None else speed
            built = resolve_surface(cfg.surface, **cfg.surface_params)
        else:
            if isinstance(surface, Surface) and surface_params:
                raise ValueError(f"parameters {sorted(surface_params)} cannot be applied to an already built surface")
            built = surface if isinstance(surface, Surface) else resolve_surface(surface, **surface_params)
            cfg = ExplorerConfig(
                surface=surface if isinstance(surface, str) else surface.name,
                surface_params=dict(surface_params), optimizers=optimizer_list(optimizers),
                start=None if start is None else checked_start(built, start),  # the rule set() and a click follow
                grad_noise=check_finite_float("grad_noise", grad_noise), clip=clip_spec(clip),
                schedule=schedule_spec(schedule), speed=2 if speed is None else speed, shared_lr=lr,
                given_surface=isinstance(surface, Surface),
            )
        cfg.hparams = full_hparams(built, OPTIMIZERS, hparams or cfg.hparams)
        self.config = cfg
        self.surface = built
        self.preset = preset
        self.sim = self._new_simulator(cfg, built)  # errors here are the caller's to see
        # paced: a chunk of `speed` steps per frame tick, every one drawn (the runner's one clock)
        super().__init__(fps=fps, name="surface-explorer", paced=True)
        self._start_run()
        self.fair = FairRaceTool(self)  # classroom tools, each its own module: tune each, seeds
        self.predict = PredictRound(self)  # predict, then reveal

    # ================================================================== what the view draws
    @property
    def optimizers(self) -> tuple[str, ...]:
        return self.sim.optimizers

    @property
    def t(self) -> int:
        """Steps taken since the last (re)start."""
        return int(self.sim.t)

    @property
    def statuses(self) -> dict[str, str]:
        """Per optimizer: "running", "converged at step 312", "diverged at step 17"."""
        return dict(self.race.statuses)

    @property
    def state(self) -> str:
        """The run's state as the status line says it; agrees with `statuses` by construction:
        "done" exactly when every optimizer has finished, and a restarted run is never "done"."""
        runner = self.runner.state
        if runner in ("stopped", "error"):
            return runner
        if self.race.finished:
            return "done"
        return "paused" if runner == "done" else runner

    @property
    def status_line(self) -> str:
        state = self.state
        return f"step {self.t} · {state}{DONE_NOTE if state == 'done' else ''}"

    @property
    def caption(self) -> tuple[str, str]:
        """(title, text): the story's while a preset runs, else the running surface's own."""
        story = PRESETS.get(self.preset or "")
        return (story.title, story.caption) if story else (self.surface.title, self.surface.caption)

    @property
    def markers(self) -> dict[str, list[tuple[float, str]]]:
        """Hyperparameter changes per racing optimizer: (step, label)."""
        return {o: list(self.race.markers[o]) for o in self.optimizers}

    # ================================================================== public actions
    def play(self, until: int | None = None) -> None:
        """Run live in the worker thread; returns at once. until: pause at that step (a reveal)."""
        if self.closed:
            return
        self.stop_at = None if until is None else check_int("until", until, 0)
        self.playing = True
        self.runner.play()

    def pause(self) -> None:
        """Stop after the current chunk (its frame is drawn), then apply what is pending."""
        self.playing = False
        self.runner.pause()
        self.runner.wait(2.0)
        if not self.closed:
            self.runner.apply_pending()

    def step(self, n: int = 1) -> None:
        """Advance n steps synchronously in the caller's thread, as one chunk."""
        if self.closed:
            return
        n = int(n)
        if self.runner.is_running:
            self.pause()  # the worker must be resting before this thread takes over
        self.playing = False
        self._sync_steps = max(n, 0)
        try:
            self.runner.run_sync(1 if n > 0 else 0)
        finally:
            self._sync_steps = None

    def step_once(self) -> None:
        """What the Step button does: one chunk of `speed` steps."""
        self.playing = False
        self.runner.step_once()

    def reset(self) -> None:
        """Every optimizer back to the start point, state and curves cleared."""
        self.request("reset")

    def click(self, x: float, y: float) -> None:
        """Restart every optimizer from (x, y)."""
        self.request("start", (x, y))

    def load_preset(self, name: str) -> None:
        """Set everything a lecture story needs (see PRESETS) and restart."""
        self.request("preset", name)

    def setting(self) -> dict[str, Any]:
        """Everything set that changes the run, as plain data (what `SurfaceExplorer.state()` encodes)."""
        return setting_of(self.config, self.surface, self._seed, self.preset)

    def show_as_preset(self, name: str | None) -> None:
        """Caption and preset menu of a story whose setting was given (by a shared state) rather than loaded."""
        if name is not None:
            get_preset(name)  # ValueError listing the presets
        self.preset = name
        self.emit("config")

    def set(self, optimizer: str | None = None, **values: Any) -> None:
        """Change settings as the controls would: set(lr=0.1), set("adam", betas=(0.9, 0.99)),
        set(surface="rosenbrock", condition=...), set(grad_noise=0.5, clip=("norm", 1.0), speed=10).

        Hyperparameters without `optimizer` go to every racing optimizer that takes them. A bad
        value becomes `error` instead of raising.
        """
        surface_change = {k: values.pop(k) for k in list(values) if k in SURFACE_KEYS}
        if surface_change:
            name = surface_change.pop("surface", surface_change.pop("expression", self.config.surface))
            params = {**(self.config.surface_params if name == self.config.surface else {}), **surface_change}
            self.request("surface", (name, params))
        for key in ("grad_noise", "clip", "schedule", "speed", "optimizers", "start"):
            if key in values:
                self.request(key, values.pop(key))
        unknown = []
        for name, value in values.items():
            targets = [optimizer] if optimizer is not None else [o for o in self.optimizers if name in HPARAMS[o]]
            unknown += [] if targets else [name]
            for o in targets:
                self.request(("hparam", o, name), value)
        if unknown:  # after the requests, which clear the error line
            known = sorted(set().union(*(HPARAMS[o] for o in self.optimizers)))
            self.show_error(f"unknown setting {unknown[0]!r}; hyperparameters of {', '.join(self.optimizers)}: "
                            f"{', '.join(known)}")

    # ================================================================== LiveController parts
    def handlers(self) -> Mapping[str, Callable[..., Any]]:
        return {
            "hparam": self._set_hparam, "shared_lr": self._set_shared_lr, "grad_noise": self._set_grad_noise,
            "clip": self._set_clip, "schedule": self._set_schedule, "speed": self._set_speed,
            "start": self._set_start, "reset": self._reset, "optimizers": self._set_optimizers,
            "surface": self._set_surface, "preset": self._set_preset,
            "redraw": lambda _value: None,  # a classroom tool changed what is drawn: "config" follows
        }

    def step_chunk(self) -> Any:
        """Runner's step: one frame's worth of steps (the runner paces them to its frame clock)."""
        if all(int(s) in (CONVERGED, DIVERGED) for s in self.sim.status.tolist()):
            return DONE
        steps = self._sync_steps
        if steps is None:
            steps = self.config.speed if self.stop_at is None else min(self.config.speed, self.stop_at - self.t)
        if steps <= 0:
            return DONE if self._sync_steps is None and self.stop_at is not None else None  # reached until
        return Chunk(self.generation, self.sim.advance(steps))

    def add_records(self, records: list[Chunk]) -> None:
        for chunk in records:
            if chunk.generation == self.generation:
                self.race.extend(chunk.record)

    def close(self) -> None:
        self.playing = False
        super().close()

    # ================================================================== handlers
    def _set_hparam(self, optimizer: str, name: str, value: Any) -> None:
        """One optimizer's hyperparameter; setting one lr ends a shared lr."""
        self._apply_hparam(optimizer, name, value)
        if name == "lr" and self.config.shared_lr is not None and self.config.hparams[optimizer]["lr"] != self.config.shared_lr:
            self.config.shared_lr = None

    def _apply_hparam(self, optimizer: str, name: str, value: Any) -> None:
        optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
        spec = HPARAMS[optimizer].get(name)
        if spec is None:
            raise ValueError(f"{optimizer} has no hyperparameter {name!r}; it has {', '.join(HPARAMS[optimizer])}")
        if optimizer in self.sim.optimizers:
            try:  # the optimizer checks the value against its spec (engine/hparams.py): once
                self.sim.set_hparams(optimizer, **{name: value})
            except ValueError as exc:
                raise ValueError(f"{optimizer} {exc}") from None
        else:  # not racing: no optimizer sees it until it is ticked, so the spec check is here
            spec.check(tuple(value) if spec.kind == "pair" else value, f"{optimizer} {name}")
        value = _as_kind(spec.kind, value)  # accepted: kept as plain Python, as the controls show it
        if optimizer in self.sim.optimizers:
            self.race.markers[optimizer].add(self.sim.t, change_label(name, value))
        self.config.hparams[optimizer][name] = value

    def _set_shared_lr(self, value: Any) -> None:
        if value is None:
            self.config.shared_lr = None
            return
        for o in self.optimizers:
            self._apply_hparam(o, "lr", value)
        self.config.shared_lr = self.config.hparams[self.optimizers[0]]["lr"]

    def _set_grad_noise(self, value: Any) -> None:
        self.sim.set_grad_noise(value)
        self.config.grad_noise = float(value)

    def _set_clip(self, value: Any) -> None:
        kind, amount = clip_spec(value, self.config.clip[1])
        self.sim.set_transforms(build_transform(kind, amount))
        self.config.clip = (kind, amount)

    def _set_schedule(self, value: Any) -> None:
        spec = schedule_spec(value)
        self.sim.set_schedule(build_schedule(*spec))
        self.config.schedule = spec

    def _set_speed(self, value: Any) -> None:
        self.config.speed = check_int("speed (steps per frame)", value, 1, MAX_SPEED)

    def _set_start(self, value: Any) -> None:
        x, y = checked_start(self.surface, value)
        self.sim.restart(np.array([[x, y]]))
        self.config.start = (x, y)
        self._start_run()

    def _reset(self, _value: Any = True) -> None:
        self.sim.restart()
        self._start_run()

    def _set_optimizers(self, value: Any) -> None:
        names = optimizer_list(value)
        if not names:
            raise ValueError("choose at least one optimizer")
        self._swap(dataclasses.replace(self.config, optimizers=names), self.surface, self.preset)

    def _set_surface(self, value: Any) -> None:
        name, params = value
        surface = resolve_surface(name, **dict(params))  # ValueError: shown inline, old surface kept
        cfg = dataclasses.replace(self.config, surface=name, surface_params=dict(params), start=None, shared_lr=None,
                                  given_surface=False)
        cfg.hparams = {o: dict(hp, lr=surface.lrs.get(o, hp["lr"])) for o, hp in self.config.hparams.items()}
        self._swap(cfg, surface, None)

    def _set_preset(self, name: str) -> None:
        cfg = preset_config(get_preset(name))
        surface = resolve_surface(cfg.surface, **cfg.surface_params)
        cfg.hparams = full_hparams(surface, OPTIMIZERS, cfg.hparams)
        self._swap(cfg, surface, name)

    # ================================================================== runs
    def _swap(self, cfg: ExplorerConfig, surface: Surface, preset: str | None) -> None:
        """Replace the simulator; if the new settings are rejected, the old run keeps going."""
        sim = self._new_simulator(cfg, surface)
        self.sim, self.config, self.surface, self.preset = sim, cfg, surface, preset
        self._start_run()

    def _new_simulator(self, cfg: ExplorerConfig, surface: Surface) -> Simulator:
        sim = build_simulator(cfg, surface, device=self._device, seed=self._seed)
        if cfg.shared_lr is not None:
            for o in cfg.optimizers:
                cfg.hparams[o]["lr"] = cfg.shared_lr
        return sim

    def fresh_simulator(self) -> Simulator:
        """A new simulator of the current setting at its start; the live run is untouched (exports)."""
        return build_simulator(self.config, self.surface, device=self._device, seed=self._seed)

    def _start_run(self) -> None:
        """A fresh record of self.sim's run: new series with the start point, statuses from the engine."""
        self.generation += 1
        sim = self.sim
        self.race = RaceSeries(
            sim.optimizers, sim.x.detach().cpu().numpy(), sim.loss.detach().cpu().numpy(),
            f_ref=float(self.surface.f_ref), loss_log=self.surface.f_min is not None,
            statuses=status_texts(sim.optimizers, sim.status.cpu().numpy(), sim.converged_at.cpu().numpy(),
                                  sim.diverged_at.cpu().numpy(), sim.x.detach().cpu().numpy(), self.surface.domain),
            domain=self.surface.domain)


__all__ = ["ExplorerController", "Chunk"]
