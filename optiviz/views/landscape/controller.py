"""LandscapeController: the race on a net drawn on its loss landscape, in plain Python (no widgets).

It owns the race (training/net_race.NetRace: one Trainer per optimizer, same init, same batches),
the landscape the paths are drawn on, the interpolation curves, the clicked point and the one
LiveRunner. A chunk is one step of every run; every `refit_every` steps (and at the end) the plane
is fitted again to the paths so far and its grid recomputed (training/landscape.loss_landscape), so
the picture follows the runs: each optimizer's path grows by one point a step in between.

Requests, applied at a step boundary through the handler table: ("lr", name) -> value steers one
run (validated by its Trainer, the one place its lr lives); "refit" recomputes the plane now;
"select" -> (x, y) evaluates the net at that point of the plane exactly.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from optiviz.stream.runner import DONE
from optiviz.training.data import CIFAR10
from optiviz.training.landscape import Interpolation, Landscape, interpolate, loss_landscape
from optiviz.training.net_race import NetRace, default_lr
from optiviz.views.common.data import data_setting, loaded
from optiviz.views.common.live_controller import LiveController
from optiviz.views.landscape.config import LandscapeConfig


@dataclass
class LandscapeFrame:
    """One chunk: the step reached, each run's point on the current plane, and a new landscape
    (with its interpolation curves) when the plane was refitted at this step."""

    step: int
    points: dict[str, tuple[float, float]]
    landscape: Landscape | None = None
    interpolations: dict[str, Interpolation] | None = None


@dataclass
class Selection:
    x: float
    y: float
    loss: float
    acc: float


class LandscapeController(LiveController):
    """Train the race live, refit its landscape as it goes; everything the view draws is here."""

    def __init__(self, config: LandscapeConfig, data: CIFAR10 | None = None, *, device: Any = None,
                 fps: float = 10.0) -> None:
        self.config = config.checked()
        if data is None:
            data = loaded("subset", device)  # the bundled subset, loaded once per device like the other views'
        elif not isinstance(data, CIFAR10):
            raise TypeError(f"data must be a CIFAR10 from ov.load_cifar10(), got {type(data).__name__}")
        c = self.config
        self.named_data = data_setting(data)  # what a state names: the data as given, so from_state(s, data=it) fits
        self.data = data.subset(min(c.n_train, data.n_train), min(256, data.n_val), 0)
        self.race = NetRace(c.model, c.optimizers, self.data, hparams=c.hparams, batch_size=c.batch_size,
                            seed=c.seed, snapshots=c.snapshots, device=device)
        self.total_steps = c.epochs * self.race.steps_per_epoch
        self.refit_every = c.refit_every or self.race.steps_per_epoch
        self.landscape: Landscape | None = None
        self.interpolations: dict[str, Interpolation] = {}
        self.paths: dict[str, list[tuple[float, float]]] = {n: [] for n in c.optimizers}
        self.selection: Selection | None = None
        self.last_loss: dict[str, float] = {}
        self._fitted_at = -1
        self._fitted: Landscape | None = None  # the worker's newest plane (drawn state catches up at publish)
        super().__init__(fps=fps, name="landscape-view")

    # ---- the table of requests ---------------------------------------------------------------
    def handlers(self) -> Mapping[str, Callable[..., Any]]:
        return {"lr": self._set_lr, "refit": self._refit_now, "select": self._select}

    def _set_lr(self, name: str, value: Any) -> None:
        self.race.set(name, lr=value)

    def _refit_now(self, _value: Any = True) -> None:
        self.add_records([self._refit()])
        self.emit("frame")

    def _select(self, value: Any) -> None:
        if self.landscape is None:
            raise ValueError("the landscape is not computed yet: press Start (or step) first")
        x, y = (float(v) for v in value)
        loss, acc = self.landscape.evaluate(x, y, self.data)
        self.selection = Selection(x, y, loss, acc)
        self.emit("frame")

    # ---- stepping -----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return (self.race.step_count >= self.total_steps or not self.race.running()) and \
            self._fitted_at == self.race.step_count

    def step_chunk(self) -> Any:
        if self.closed or self.done:
            return DONE
        if self.race.step_count < self.total_steps and self.race.running():
            self.last_loss.update(self.race.step(1))
        t = self.race.step_count
        if t == 1 or t % self.refit_every == 0 or t >= self.total_steps or not self.race.running():
            return self._refit()
        return LandscapeFrame(t, self._points())

    def _points(self) -> dict[str, tuple[float, float]]:
        if self._fitted is None:
            return {}
        return {n: tuple(self._fitted.project(self.race.current(n)[None])[0]) for n in self.race.optimizers}

    def _refit(self) -> LandscapeFrame:
        """The plane fitted to the paths so far, its grid, and the curves from the init to each run."""
        c = self.config
        land = loss_landscape(self.race, c.plane, resolution=c.resolution, span=c.span)
        curves = {n: interpolate(self.race.init, self.race.current(n), self.data, points=c.points, model=self.race)
                  for n in self.race.optimizers}
        self._fitted_at, self._fitted = self.race.step_count, land
        return LandscapeFrame(self.race.step_count, {}, land, curves)

    def add_records(self, records: list[Any]) -> None:
        for frame in records:
            if not isinstance(frame, LandscapeFrame):
                continue
            if frame.landscape is not None:
                self.landscape = frame.landscape
                self.interpolations = dict(frame.interpolations or {})
                self.paths = {n: [tuple(p) for p in path] for n, path in frame.landscape.paths.items()}
                self.selection = None  # a new plane: the old point means nothing on it
            for name, point in frame.points.items():
                self.paths[name].append(point)

    def step(self, n: int = 1) -> None:
        """n chunks (steps of every run) in the caller's thread, then draw (notebooks, tests)."""
        if not self.closed:
            self.runner.run_sync(max(int(n), 0))

    # ---- reading ------------------------------------------------------------------------------
    def lr(self, name: str) -> float:
        return float(self.race.trainers[name].hparams["lr"])

    def setting(self) -> dict[str, Any]:
        """What `LandscapeView.state()` holds: the config with each run's lr as its slider has it now
        (a changed one in hparams; the lrs live in the Trainers), and the data by name, not copied.
        A rebuilt view trains from step 0 with that lr: mid-run history is not replayed."""
        c = self.config
        hparams = {n: dict(h) for n, h in c.hparams.items()}
        for name in c.optimizers:
            given = hparams.get(name, {}).get("lr", default_lr(self.race.model_name, name))
            if self.lr(name) != given:
                hparams.setdefault(name, {})["lr"] = self.lr(name)
        return {**{f.name: getattr(c, f.name) for f in fields(c)}, "hparams": hparams, "data": self.named_data}

    def path(self, name: str) -> np.ndarray:
        """(T, 2) the run's path on the current plane, as drawn."""
        return np.asarray(self.paths.get(name, []), dtype=np.float64).reshape(-1, 2)

    @property
    def status_line(self) -> str:
        t, c = self.race.step_count, self.config
        parts = [f"step {t} / {self.total_steps} (epoch {t / self.race.steps_per_epoch:.1f} of {c.epochs})"]
        parts += [f"{n} loss {self.last_loss[n]:.3f}" + (" (stopped)" if self.race.trainers[n].stopped else "")
                  for n in self.race.optimizers if n in self.last_loss]
        if self.landscape is not None:
            parts.append(f"the plane holds {self.landscape.explained_variance:.0%} of the paths' movement "
                         f"(fitted at step {self._fitted_at})")
        return " · ".join(parts)


__all__ = ["LandscapeController", "LandscapeFrame", "Selection"]
