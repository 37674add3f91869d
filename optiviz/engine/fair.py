"""A fair race: every optimizer gets the same step budget, its own tuned lr, and the same noisy
gradients over several seeds, so a comparison says something beyond one lucky path.

Optimizer comparisons are criticised for three things (Dupont's race gives each optimizer a
different budget; plots tune only the lr of one of them; one seed): here the budget is one
`steps` for all by construction; `tune=True` runs a batched lr sweep per optimizer (every lr x
every seed in one Simulator) and starts each at its best, reporting what was searched; and with
`grad_noise` (noise standing in for minibatches) every optimizer runs the same `seeds` noise
draws (common random numbers: each optimizer's simulator is seeded alike and draws per step),
so differences are the optimizers', not the noise's. Tuning uses other draws (seed + 1) than the
race it is scored on.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optiviz._validate import check_choice, check_int, check_range
from optiviz.engine.hparams import HPARAMS
from optiviz.engine.noise_theory import expected_excess
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.preflight import optimizer_names
from optiviz.engine.simulator import Simulator, resolve_surface
from optiviz.engine.surface import Surface
from optiviz.labels import format_value

DEFAULT_LRS = np.logspace(-4.0, 1.0, 21)  # 1e-4 .. 10, four values a decade
MAX_SEEDS = 256
MAX_STEPS = 100_000


@dataclass
class LrSweep:
    """What tuning one optimizer searched and found: the score of every lr (the race's criterion,
    averaged over the tuning seeds; inf where any seed diverged)."""

    optimizer: str
    lrs: np.ndarray
    score: np.ndarray
    best_lr: float
    at_edge: bool  # the best is the smallest or largest lr searched: widen the range

    def describe(self) -> str:
        edge = " (at the edge of the range: widen it)" if self.at_edge else ""
        return (f"{self.optimizer}: lr {format_value(self.lrs.min())}..{format_value(self.lrs.max())} "
                f"({len(self.lrs)} values) -> {format_value(self.best_lr)}{edge}")


@dataclass
class FairRace:
    """The race's numbers: every path of every seed, the mean path, scores and the ranking."""

    surface: Surface
    optimizers: tuple[str, ...]
    steps: int  # the one budget every optimizer had
    seeds: int
    grad_noise: float
    hparams: dict[str, dict[str, Any]]  # what each optimizer ran with (its tuned lr included)
    paths: np.ndarray  # (K, seeds, steps + 1, 2)
    loss: np.ndarray  # (K, seeds, steps + 1)
    status: np.ndarray  # (K, seeds): running / converged / diverged
    tail: int  # steps at the end whose mean excess is the score
    tuning: dict[str, LrSweep] = field(default_factory=dict)

    @property
    def mean_path(self) -> np.ndarray:
        """(K, steps + 1, 2): the average over seeds of each optimizer's position at each step."""
        return self.paths.mean(axis=1)

    @property
    def excess(self) -> np.ndarray:
        """(K, seeds, steps + 1): loss above the minimum f* (the loss itself where f* is unknown)."""
        return self.loss - self.surface.f_ref

    @property
    def mean_excess(self) -> np.ndarray:
        """(K, steps + 1): the loss curve averaged over seeds (what the theory's expectation predicts)."""
        return self.excess.mean(axis=1)

    @property
    def score(self) -> np.ndarray:
        """(K,): the mean excess over the last `tail` steps and every seed (lower is better; inf if a
        seed diverged). Averaging the tail, not one step, keeps one noisy step from deciding it."""
        return _score(self.excess, self.status, self.tail)

    @property
    def spread(self) -> np.ndarray:
        """(K,): the standard deviation over seeds of each seed's tail-mean excess."""
        return self.excess[..., -self.tail:].mean(axis=-1).std(axis=1)

    @property
    def ranking(self) -> tuple[str, ...]:
        """Optimizers from best score to worst."""
        return tuple(self.optimizers[k] for k in np.argsort(self.score, kind="stable"))

    def expected(self, optimizer: str) -> np.ndarray | None:
        """The exact expected excess curve E[f - f*] of a linear optimizer on an axis-aligned quadratic
        (engine/noise_theory.py), to hold the seeds' mean against; None where there is no such theory."""
        s = self.surface
        if s.name != "quadratic" or optimizer not in ("sgd", "momentum", "nesterov"):
            return None
        hp = self.hparams[optimizer]
        start = self.paths[self.optimizers.index(optimizer), 0, 0]
        return expected_excess(optimizer, s.curvatures, hp["lr"], start=start, steps=self.steps,
                               momentum=hp.get("momentum"), grad_noise=self.grad_noise)

    def summary(self) -> str:
        """A few lines a lecturer can read out: the budget, what was tuned, and the ranking."""
        lines = [f"{self.steps} steps each, {self.seeds} seed(s), gradient noise {format_value(self.grad_noise)}, "
                 f"score: mean loss above f* over the last {self.tail} steps"]
        lines += [f"  tuned {sweep.describe()}" for sweep in self.tuning.values()]
        score, spread = self.score, self.spread
        for rank, o in enumerate(self.ranking, 1):
            k = self.optimizers.index(o)
            lines.append(f"  {rank}. {o:9s} lr={format_value(self.hparams[o]['lr']):7s} score {score[k]:.3g} "
                         f"± {spread[k]:.2g} (over seeds)")
        return "\n".join(lines)


def _score(excess: np.ndarray, status: np.ndarray, tail: int) -> np.ndarray:
    value = excess[..., -tail:].mean(axis=-1)
    value = np.where((status == "diverged") | ~np.isfinite(value), np.inf, value)
    return value.mean(axis=-1)


def _simulate(surface: Surface, optimizer: str, hp: Mapping[str, Any], start: Any, n: int, steps: int,
              grad_noise: float, seed: int, device: Any, engine: Mapping[str, Any]) -> Any:
    sim = Simulator(surface, optimizer, start=np.broadcast_to(np.asarray(start, float), (n, 2)), n=n,
                    hparams={optimizer: dict(hp)}, grad_noise=grad_noise, seed=seed, device=device, **engine)
    return sim.run(steps)


def tune_lr(surface: str | Surface, optimizer: str, *, steps: int = 300, seeds: int = 8, grad_noise: float = 0.0,
            lrs: Sequence[float] | None = None, hparams: Mapping[str, Any] | None = None, start: Any = None,
            seed: int = 1, tail: int | None = None, device: Any = None, transforms: Any = None,
            schedule: Any = None) -> LrSweep:
    """One batched sweep: every lr in `lrs` x `seeds` noise draws as rows of one Simulator, scored
    like the race (mean excess over the last `tail` steps, averaged over seeds)."""
    surface = resolve_surface(surface)
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    grid = np.asarray(DEFAULT_LRS if lrs is None else lrs, dtype=np.float64).reshape(-1)
    if grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"lrs must be at least two positive finite learning rates, got {list(grid)!r}")
    grid = np.unique(grid)
    tail = _tail(steps, tail)
    start = surface.start if start is None else start
    hp = {**dict(hparams or {}), "lr": np.repeat(grid, seeds)}
    run = _simulate(surface, optimizer, hp, start, grid.size * seeds, steps, grad_noise, seed, device,
                    {"transforms": transforms, "schedule": schedule})
    excess = run.loss.reshape(grid.size, seeds, -1) - surface.f_ref
    score = _score(excess, np.asarray(run.status).reshape(grid.size, seeds), tail)
    best = int(np.argmin(score))
    if not np.isfinite(score[best]):
        raise ValueError(f"every lr searched for {optimizer} diverged ({grid.min():.3g}..{grid.max():.3g}): "
                         "search smaller ones (lrs=...)")
    return LrSweep(optimizer, grid, score, float(grid[best]), best in (0, grid.size - 1))


def _tail(steps: int, tail: int | None) -> int:
    return max(1, steps // 10) if tail is None else check_int("tail", tail, 1, steps)


def fair_race(surface: str | Surface = "quadratic", optimizers: str | Sequence[str] = OPTIMIZERS, *,
              steps: int = 300, seeds: int = 8, grad_noise: float = 0.0, tune: bool = True,
              lrs: Sequence[float] | None = None, hparams: Mapping[str, Mapping[str, Any]] | None = None,
              start: Any = None, seed: int = 0, tail: int | None = None, device: Any = None,
              transforms: Any = None, schedule: Any = None, **surface_params: Any) -> FairRace:
    """Race `optimizers` on `surface` for the same `steps`, over `seeds` noisy-gradient seeds.

    tune: each optimizer's lr is the best of `lrs` (default 1e-4..10, 21 values) for this budget,
    found by `tune_lr` on other noise draws; else each uses `hparams` (default the surface's
    suggested lr). Other settings (momentum 0.9, Adam's betas, ...) are `hparams` or torch's defaults:
    only the lr is searched. transforms / schedule: as in `simulate`, for every run. Returns a FairRace: paths of every seed, mean paths, scores, ranking.
    """
    surface = resolve_surface(surface, **surface_params)
    names = tuple(check_choice("optimizer", o, OPTIMIZERS) for o in optimizer_names(optimizers))
    if not names or len(set(names)) != len(names):
        raise ValueError(f"optimizers must name distinct optimizers of {', '.join(OPTIMIZERS)}, got {list(names)}")
    steps = check_int("steps", steps, 1, MAX_STEPS)
    seeds = check_int("seeds", seeds, 1, MAX_SEEDS)
    grad_noise = float(check_range("grad_noise", grad_noise, 0.0, 1e6))
    seed = check_int("seed", seed, 0)
    tail = _tail(steps, tail)
    given = dict(hparams or {})
    unknown = set(given) - set(names)
    if unknown:
        raise ValueError(f"hparams names optimizers not in the race: {sorted(unknown)}; racing: {list(names)}")
    start = np.asarray(surface.start if start is None else start, dtype=np.float64)
    chosen: dict[str, dict[str, Any]] = {}
    tuning: dict[str, LrSweep] = {}
    for o in names:
        hp = {name: spec.default for name, spec in HPARAMS[o].items()}
        hp["lr"] = surface.lrs.get(o, hp["lr"])
        hp.update(given.get(o, {}))
        if tune:
            fixed = {k: v for k, v in given.get(o, {}).items() if k != "lr"}
            tuning[o] = tune_lr(surface, o, steps=steps, seeds=seeds, grad_noise=grad_noise, lrs=lrs, hparams=fixed,
                                start=start, seed=seed + 1, tail=tail, device=device, transforms=transforms,
                                schedule=schedule)
            hp["lr"] = tuning[o].best_lr
        chosen[o] = hp
    engine = {"transforms": transforms, "schedule": schedule}
    runs = [_simulate(surface, o, chosen[o], start, seeds, steps, grad_noise, seed, device, engine) for o in names]
    return FairRace(surface, names, steps, seeds, grad_noise, chosen,
                    np.stack([r.path for r in runs]).astype(np.float64),
                    np.stack([r.loss for r in runs]).astype(np.float64),
                    np.stack([np.asarray(r.status) for r in runs]), tail, tuning)


__all__ = ["fair_race", "tune_lr", "FairRace", "LrSweep", "DEFAULT_LRS"]
