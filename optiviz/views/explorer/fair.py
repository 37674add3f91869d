"""The explorer's fair-race tools as plain Python: "tune each" and a cloud of seeds.

Both run the engine's fair race (engine/fair.py) on the explorer's current setting (surface,
start, racing optimizers, their other hyperparameters, gradient noise, clipping, schedule): tune
each finds every optimizer's best lr for a budget and requests it (the one way a setting
changes, so sliders and markers follow); seeds runs `seeds` noise draws of the setting and keeps
the paths and their mean for the view to draw. The result is dropped when the run restarts.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from optiviz._validate import check_int
from optiviz.engine.fair import FairRace, LrSweep, fair_race, tune_lr
from optiviz.labels import format_value
from optiviz.stream.series import even_indices
from optiviz.views.explorer.config import build_schedule, build_transform

MAX_CLOUD_SEEDS = 64


class FairRaceTool:
    """Tune each / seeds on an ExplorerController; `note` says what was last done, for the view."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.race: FairRace | None = None  # the last seeds cloud
        self.generation = -1  # the run it belongs to: a restart drops it
        self.tuning: dict[str, LrSweep] = {}
        self.note = ""

    def _setting(self) -> dict[str, Any]:
        c = self.controller
        cfg = c.config
        start = cfg.start if cfg.start is not None else c.surface.start
        return dict(start=start, grad_noise=cfg.grad_noise, transforms=build_transform(*cfg.clip),
                    schedule=build_schedule(*cfg.schedule))

    def tune_each(self, steps: int = 300, seeds: int = 4, lrs: Any = None) -> dict[str, LrSweep]:
        """Every racing optimizer's best lr for `steps` steps (over `seeds` noise draws), requested."""
        c = self.controller
        steps = check_int("budget (steps)", steps, 1, 100_000)
        seeds = check_int("seeds", seeds, 1, MAX_CLOUD_SEEDS)
        setting = self._setting()
        self.tuning = {}
        for o in c.optimizers:
            fixed = {k: v for k, v in c.config.hparams[o].items() if k != "lr"}
            self.tuning[o] = tune_lr(c.surface, o, steps=steps, seeds=seeds, lrs=lrs, hparams=fixed,
                                     seed=1, **setting)
        c.request("shared_lr", None)
        for o, sweep in self.tuning.items():
            c.request(("hparam", o, "lr"), sweep.best_lr)
        c.request("reset")
        first = next(iter(self.tuning.values()))
        self.note = (f"tuned each lr over {format_value(first.lrs.min())}..{format_value(first.lrs.max())} "
                     f"({len(first.lrs)} values, log-spaced), {steps} steps, {seeds} seed(s), noise "
                     f"{format_value(c.config.grad_noise)}: "
                     + ", ".join(f"{o} {format_value(s.best_lr)}{' (edge)' if s.at_edge else ''}"
                                 for o, s in self.tuning.items()))
        c.request("redraw")
        return self.tuning

    def seeds(self, seeds: int = 8, steps: int = 300) -> FairRace:
        """`seeds` noise draws of the current setting for `steps` steps: the cloud and its mean path."""
        c = self.controller
        seeds = check_int("seeds", seeds, 1, MAX_CLOUD_SEEDS)
        steps = check_int("budget (steps)", steps, 1, 100_000)
        hp = {o: dict(c.config.hparams[o]) for o in c.optimizers}
        self.race = fair_race(c.surface, c.optimizers, steps=steps, seeds=seeds, tune=False, hparams=hp,
                              seed=0, **self._setting())
        self.generation = c.generation
        r = self.race
        self.note = (f"{seeds} seeds x {steps} steps each, noise {format_value(r.grad_noise)}; mean loss above f* "
                     f"over the last {r.tail} steps: "
                     + ", ".join(f"{o} {r.score[k]:.3g}" for k, o in enumerate(r.optimizers)))
        if r.grad_noise == 0:
            self.note += " (no gradient noise: every seed runs the same path; raise grad noise)"
        c.request("redraw")
        return r

    @property
    def cloud(self) -> FairRace | None:
        """The seeds cloud of the run on screen (None after a restart or before any)."""
        c = self.controller
        if self.race is None or self.generation != c.generation or self.race.optimizers != c.optimizers:
            return None
        return self.race

    def cloud_lines(self, max_points: int = 300) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
        """What the view draws: every seed's path (rows of x, y, their optimizers) and the mean paths,
        each cut to at most `max_points` evenly spaced steps."""
        r = self.cloud
        if r is None:
            return np.zeros((0, 0)), np.zeros((0, 0)), [], np.zeros((0, 0)), np.zeros((0, 0))
        idx = even_indices(r.steps + 1, max_points)
        k, s = r.paths.shape[:2]
        paths = r.paths[:, :, idx].reshape(k * s, len(idx), 2)
        owners = [o for o in r.optimizers for _ in range(s)]
        mean = r.mean_path[:, idx]
        return (paths[..., 0].astype(np.float32), paths[..., 1].astype(np.float32), owners,
                mean[..., 0].astype(np.float32), mean[..., 1].astype(np.float32))


__all__ = ["FairRaceTool", "MAX_CLOUD_SEEDS"]
