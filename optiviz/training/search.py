"""Hyperparameter search the lectures' way: random vs grid with one budget, log-space sampling,
coarse to fine, early abort, results streamed as they arrive.

The budget counts run-epochs (runs x epochs each), so a random and a grid search given the same
number train the same amount. Runs are trained `parallel` at a time with the batched engine
(optiviz.training.batched), all on the same minibatches: differences between points come from
the hyperparameters and the initialization, not from the batch order. Run i (counted over the
whole search) is initialized from `seed + i` in both methods, so grid point i and random point i
start from the same weights.

Scales: "log" samples 10**uniform(log10(low), log10(high)) (lr, weight decay: the lectures'
`lr = 10**uniform(-6, -3)`); "log1m" samples 1 - value in log space, for values near 1
(momentum, betas: `1 - beta = 10**r`); "linear" samples uniformly (dropout).
weight_decay is torch's (it adds weight_decay * w to the gradient): the lectures' `reg` with a
penalty reg * sum(w^2) is weight_decay / 2.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from optiviz._validate import check_choice, check_finite_float, check_int, check_range, shown
from optiviz.engine.devices import check_allocation
from optiviz.engine.hparams import HPARAMS, SCALES, HParamSpec, from_scale, to_scale
from optiviz.training.abort import DIVERGENCE_FACTOR
from optiviz.training.batched import ManyTrainer
from optiviz.training.data import CIFAR10, load_cifar10

# default scale per known hyperparameter (a search's, which may differ from a stability map's)
DEFAULT_SCALE = {"lr": "log", "weight_decay": "log", "momentum": "log1m", "dropout": "linear",
                 "beta1": "log1m", "beta2": "log1m"}
# the allowed range of each known hyperparameter: the optimizers' table, plus the nets' dropout
_RANGES: dict[str, HParamSpec] = {
    "lr": HPARAMS["sgd"]["lr"], "weight_decay": HPARAMS["sgd"]["weight_decay"],
    "momentum": HPARAMS["momentum"]["momentum"],
    "beta1": HPARAMS["adam"]["betas"], "beta2": HPARAMS["adam"]["betas"],
    "dropout": HParamSpec("dropout", 0.0, "drop probability", low=0.0, high=1.0, high_inclusive=False),
}
# a wide first range for the lectures' 2-layer net under SGD with momentum 0.9 on normalized CIFAR-10
LECTURE_SPACE = {"lr": (1e-4, 1.0), "weight_decay": (1e-6, 1e-1), "momentum": 0.9}
RUN_BYTES = 4096  # what one search point keeps (its settings, val curve and per-step losses), generously


@dataclass(frozen=True)
class Dim:
    """One searched hyperparameter: sampled between low and high on `scale` (see the module doc)."""

    name: str
    low: float
    high: float
    scale: str = "log"

    def fwd(self, v: Any) -> np.ndarray:
        return to_scale(v, self.scale)

    def inv(self, s: Any) -> np.ndarray:
        return np.clip(from_scale(s, self.scale), self.low, self.high)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.inv(rng.uniform(self.fwd(self.low), self.fwd(self.high), size=n))

    def grid(self, n: int) -> np.ndarray:
        """n values evenly spaced on the scale, both ends included (one value: the middle)."""
        if n == 1:
            return self.inv([(self.fwd(self.low) + self.fwd(self.high)) / 2])
        return self.inv(np.linspace(self.fwd(self.low), self.fwd(self.high), n))

    def position(self, v: Any) -> np.ndarray:
        """Where v sits in the range on its scale: 0 at low, 1 at high."""
        lo, hi = self.fwd(self.low), self.fwd(self.high)
        return (self.fwd(v) - lo) / (hi - lo)

    def around(self, v: float, shrink: float) -> Dim:
        """A range `shrink` times as wide (on the scale) centred on v, moved to stay inside this one."""
        lo, hi = float(self.fwd(self.low)), float(self.fwd(self.high))
        width = shrink * (hi - lo)
        start = min(max(float(self.fwd(v)) - width / 2, lo), hi - width)
        low, high = (float(x) for x in self.inv([start, start + width]))
        return Dim(self.name, low, high, self.scale)


@dataclass(frozen=True)
class Stage:
    """One round of a coarse-to-fine search: `share` of the budget spent on runs of `epochs` epochs,
    sampled over the range shrunk `shrink` times (on each scale) around the best run so far."""

    epochs: int = 1
    share: float = 1.0
    shrink: float = 1.0


# a few short runs over the whole range, then longer runs over a quarter of it around the best
COARSE_TO_FINE = (Stage(epochs=1, share=0.5), Stage(epochs=3, share=0.5, shrink=0.25))


@dataclass
class SearchPoint:
    """One finished run. val_acc is the last validation accuracy (NaN for an aborted run, whose
    accuracy means nothing); val_curve has one value per epoch (NaN once aborted); train_loss one
    per planned step (NaN after the aborting step). ranges: the range each searched value was drawn from."""

    index: int
    method: str
    stage: int
    hparams: dict[str, float]
    val_acc: float
    val_curve: np.ndarray
    train_loss: np.ndarray
    aborted: bool
    abort_step: int
    epochs: int
    seed: int
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class SearchResult:
    """All points of a search, in arrival order, and what was spent (run-epochs)."""

    method: str
    points: list[SearchPoint]
    space: dict[str, Dim | float]
    budget: int
    budget_used: int
    plan: list[tuple[int, int]]  # (runs, epochs) per stage

    @property
    def best(self) -> SearchPoint | None:
        return best_point(self.points)

    @property
    def val_acc(self) -> np.ndarray:
        return np.asarray([p.val_acc for p in self.points], dtype=np.float64)

    def values(self, name: str) -> np.ndarray:
        """One hyperparameter over the points (what a scatter's axis needs)."""
        return np.asarray([p.hparams[name] for p in self.points], dtype=np.float64)

    @property
    def warning(self) -> str | None:
        return edge_warning(self, self.space)


# ------------------------------------------------------------------------------------ space


def make_space(space: Mapping[str, Any]) -> dict[str, Dim | float]:
    """Validate a search space: name -> (low, high), (low, high, scale), a Dim, or a fixed number."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"space must be a non-empty mapping name -> (low, high[, scale]) or a number, got {shown(space)}")
    out: dict[str, Dim | float] = {}
    for name, spec in space.items():
        if isinstance(spec, Dim):
            dim = spec
        elif isinstance(spec, (tuple, list)) and len(spec) in (2, 3):
            scale = spec[2] if len(spec) == 3 else DEFAULT_SCALE.get(name)
            if scale is None:
                raise ValueError(f"space[{name!r}] needs a scale, (low, high, scale) with scale one of {', '.join(SCALES)}")
            dim = Dim(name, check_finite_float(f"space[{name!r}] low", spec[0]),
                      check_finite_float(f"space[{name!r}] high", spec[1]), scale)
        elif isinstance(spec, (int, float, np.floating, np.integer)) and not isinstance(spec, bool):
            value = check_finite_float(f"space[{name!r}]", spec)
            _check_allowed(name, value)
            out[name] = value
            continue
        else:
            raise ValueError(f"space[{name!r}] must be (low, high), (low, high, scale), a Dim or a number, got {shown(spec)}")
        check_choice(f"space[{name!r}] scale", dim.scale, SCALES)
        if not dim.low < dim.high:
            raise ValueError(f"space[{name!r}] needs low < high, got ({dim.low:g}, {dim.high:g})")
        if dim.scale == "log":
            check_range(f"space[{name!r}] low", dim.low, 0.0, low_inclusive=False)
        if dim.scale == "log1m":
            check_range(f"space[{name!r}] high", dim.high, None, 1.0, high_inclusive=False)
        _check_allowed(name, dim.low)
        _check_allowed(name, dim.high)
        out[name] = dim
    if not any(isinstance(v, Dim) for v in out.values()):
        raise ValueError("space must search at least one hyperparameter: give one as (low, high)")
    return out


def _check_allowed(name: str, value: float) -> None:
    if name in _RANGES:
        _RANGES[name].check_number(name, value, torch.float32)  # the searched nets are float32


def _stages(stages: Any) -> list[Stage]:
    if isinstance(stages, Stage):
        stages = [stages]
    out = []
    for s in stages:
        if isinstance(s, (tuple, list)):
            s = Stage(*s)
        if not isinstance(s, Stage):
            raise ValueError(f"stages must be Stage(epochs, share, shrink) or (epochs, share[, shrink]) tuples, got {s!r}")
        check_int("stage epochs", s.epochs, 1)
        check_range("stage share", s.share, 0.0, low_inclusive=False)
        check_range("stage shrink", s.shrink, 0.0, 1.0, low_inclusive=False)
        out.append(Stage(int(s.epochs), float(s.share), float(s.shrink)))
    if not out:
        raise ValueError("stages must hold at least one Stage")
    return out


def plan_stages(budget: int, stages: Sequence[Stage]) -> list[int]:
    """Runs per stage: each stage gets its share of the run-epochs; what rounding leaves goes to the
    stage with the shortest runs (all of it when that stage's runs last one epoch)."""
    total = sum(s.share for s in stages)
    runs = [math.floor(round(budget * s.share / total / s.epochs, 9)) for s in stages]
    cheapest = min(range(len(stages)), key=lambda i: stages[i].epochs)
    left = budget - sum(r * s.epochs for r, s in zip(runs, stages))
    runs[cheapest] += left // stages[cheapest].epochs
    if min(runs) < 1:
        need = max(math.ceil(s.epochs * total / s.share) for s in stages)
        raise ValueError(f"budget must give every stage at least one run; got {budget} run-epochs, "
                         f"these stages need at least {need}")
    return runs


def grid_shape(runs: int, d: int) -> tuple[int, ...]:
    """Values per searched dimension for a grid of at most `runs` points: the most points with no
    dimension over twice another; larger counts go to the dimensions listed first."""
    runs, d = check_int("runs", runs, 1), check_int("d", d, 1)
    best: tuple[int, ...] = (1,) * d

    def extend(combo: tuple[int, ...], prod: int) -> None:
        nonlocal best
        if len(combo) == d:
            if prod > math.prod(best) or (prod == math.prod(best) and combo[-1] < max(best)):
                best = combo
            return
        low = combo[-1] if combo else 1
        high = 2 * combo[0] if combo else runs
        for a in range(low, high + 1):  # nondecreasing, so the rest is at least a ** (left)
            if prod * a ** (d - len(combo)) > runs:
                break
            extend(combo + (a,), prod * a)

    extend((), 1)
    return tuple(sorted(best, reverse=True))


# ------------------------------------------------------------------------------------ searches


def iter_random_search(
    budget: int,
    space: Mapping[str, Any],
    stages: Any = (Stage(),),
    **kwargs: Any,
) -> Iterator[SearchPoint]:
    """Random search as a generator of points in arrival order (a widget draws each as it comes).

    Keywords are random_search's except callback.
    """
    budget = check_int("budget", budget, 1)
    dims = make_space(space)
    stages = _stages(stages)
    runs = plan_stages(budget, stages)
    _check_runs(sum(runs), budget)
    ctx = _Context(**kwargs)
    rng = np.random.default_rng(ctx.seed)
    best, index = None, 0
    for s, (stage, n) in enumerate(zip(stages, runs)):
        stage_dims = {k: v for k, v in dims.items() if isinstance(v, Dim)}
        if s > 0 and best is not None and stage.shrink < 1.0:
            stage_dims = {k: d.around(best.hparams[k], stage.shrink) for k, d in stage_dims.items()}
        samples = {k: d.sample(rng, n) for k, d in stage_dims.items()}
        ranges = {k: (d.low, d.high) for k, d in stage_dims.items()}
        for point in ctx.train(samples, dims, "random", s, index, stage.epochs, ranges):
            if not point.aborted and (best is None or point.val_acc > best.val_acc):
                best = point
            yield point
        index += n


def iter_grid_search(budget: int, space: Mapping[str, Any], *, epochs: int = 1, **kwargs: Any) -> Iterator[SearchPoint]:
    """Grid search as a generator of points in arrival order. Keywords are grid_search's except callback."""
    budget = check_int("budget", budget, 1)
    epochs = check_int("epochs", epochs, 1)
    dims = make_space(space)
    searched = {k: d for k, d in dims.items() if isinstance(d, Dim)}
    runs = budget // epochs
    if runs < 1:
        raise ValueError(f"budget must be at least epochs ({epochs}) run-epochs for one run, got {budget}")
    _check_runs(runs, budget)
    shape = grid_shape(runs, len(searched))
    axes = [d.grid(n) for d, n in zip(searched.values(), shape)]
    combos = np.asarray(list(itertools.product(*axes)), dtype=np.float64).reshape(-1, len(searched))
    samples = {k: combos[:, i] for i, k in enumerate(searched)}
    ranges = {k: (d.low, d.high) for k, d in searched.items()}
    ctx = _Context(**kwargs)
    yield from ctx.train(samples, dims, "grid", 0, 0, epochs, ranges)


def random_search(
    budget: int,
    space: Mapping[str, Any],
    stages: Any = (Stage(),),
    *,
    model: str = "mlp",
    data: CIFAR10 | None = None,
    optimizer: str = "momentum",
    batch_size: int = 128,
    parallel: int = 16,
    seed: int = 0,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    device: str | torch.device | None = None,
    callback: Callable[[SearchPoint], Any] | None = None,
    **model_kwargs: Any,
) -> SearchResult:
    """Random search spending `budget` run-epochs; each point goes to `callback` as it arrives.

    space: name -> (low, high[, scale]) searched, or a number held fixed (LECTURE_SPACE is a start).
    stages: one Stage (default: runs of one epoch over the whole range) or several for coarse to
    fine (COARSE_TO_FINE: half the budget on 1-epoch runs over the whole range, half on 3-epoch
    runs over a quarter of each range around the best). Runs whose loss passes
    `divergence_factor` x their first loss are aborted. Deterministic for a seed.
    """
    kw = dict(model=model, data=data, optimizer=optimizer, batch_size=batch_size, parallel=parallel, seed=seed,
              divergence_factor=divergence_factor, device=device, **model_kwargs)
    budget = check_int("budget", budget, 1)
    checked = _stages(stages)
    plan = [(runs, s.epochs) for runs, s in zip(plan_stages(budget, checked), checked)]
    points = _collect(iter_random_search(budget, space, checked, **kw), callback)
    return SearchResult("random", points, make_space(space), budget, sum(r * e for r, e in plan), plan)


def grid_search(
    budget: int,
    space: Mapping[str, Any],
    *,
    epochs: int = 1,
    model: str = "mlp",
    data: CIFAR10 | None = None,
    optimizer: str = "momentum",
    batch_size: int = 128,
    parallel: int = 16,
    seed: int = 0,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    device: str | torch.device | None = None,
    callback: Callable[[SearchPoint], Any] | None = None,
    **model_kwargs: Any,
) -> SearchResult:
    """Grid search over `budget` run-epochs: budget // epochs runs laid out as an even grid on each
    scale, ends included (see grid_shape; a run count with no such grid, e.g. a prime, leaves a few
    runs unspent: budget_used says how many run-epochs were). Other arguments as random_search."""
    kw = dict(model=model, data=data, optimizer=optimizer, batch_size=batch_size, parallel=parallel, seed=seed,
              divergence_factor=divergence_factor, device=device, **model_kwargs)
    points = _collect(iter_grid_search(budget, space, epochs=epochs, **kw), callback)
    return SearchResult("grid", points, make_space(space), int(budget), len(points) * int(epochs),
                        [(len(points), int(epochs))])


def _check_runs(runs: int, budget: int) -> None:
    """The points of `runs` runs (settings, curves, losses: about RUN_BYTES each) fit in memory."""
    check_allocation(f"budget={budget:,} ({runs:,} runs)", runs * RUN_BYTES, torch.device("cpu"),
                     "give a smaller budget")


def _collect(points: Iterable[SearchPoint], callback: Callable[[SearchPoint], Any] | None) -> list[SearchPoint]:
    out = []
    for p in points:
        out.append(p)
        if callback is not None:
            callback(p)
    return out


class _Context:
    """What every run of one search shares: data, model, optimizer, batches, seeds, chunk size."""

    def __init__(self, *, model: str = "mlp", data: CIFAR10 | None = None, optimizer: str = "momentum",
                 batch_size: int = 128, parallel: int = 16, seed: int = 0, divergence_factor: float | None = DIVERGENCE_FACTOR,
                 device: str | torch.device | None = None, **model_kwargs: Any) -> None:
        self.parallel = check_int("parallel", parallel, 1)
        self.seed = check_int("seed", seed)
        self.data = load_cifar10(device=device) if data is None else data
        self.common = dict(optimizer=optimizer, batch_size=check_int("batch_size", batch_size, 1), seed=self.seed,
                           divergence_factor=divergence_factor, device=device, **model_kwargs)
        self.model = model

    def train(self, samples: dict[str, np.ndarray], dims: dict[str, Dim | float], method: str, stage: int,
              first: int, epochs: int, ranges: dict[str, tuple[float, float]]) -> Iterator[SearchPoint]:
        n = len(next(iter(samples.values())))
        fixed = {k: float(v) for k, v in dims.items() if not isinstance(v, Dim)}
        for start in range(0, n, self.parallel):
            chunk = {k: v[start:start + self.parallel] for k, v in samples.items()}
            k = len(next(iter(chunk.values())))
            seeds = [self.seed + first + start + j for j in range(k)]
            trainer = ManyTrainer(self.model, self.data, k=k, init_seeds=seeds, **self.common,
                                  **_trainer_hparams({**fixed, **chunk}))
            run = trainer.run(epochs=epochs)
            planned = epochs * trainer.steps_per_epoch  # a chunk whose runs all aborted stops early: pad with NaN
            losses = np.full((planned, k), np.nan)
            losses[:len(run.train_loss)] = run.train_loss
            epoch_ends = np.arange(1, epochs + 1) * trainer.steps_per_epoch
            curves = np.full((epochs, k), np.nan)
            curves[:len(run.val_acc)] = run.val_acc
            for j in range(k):
                aborted, at = bool(run.aborted[j]), int(run.abort_step[j])
                curve = curves[:, j].copy()
                if aborted:
                    curve[epoch_ends > at] = np.nan
                hp = {**fixed, **{name: float(v[j]) for name, v in chunk.items()}}
                yield SearchPoint(index=first + start + j, method=method, stage=stage, hparams=hp,
                                  val_acc=float("nan") if aborted else float(curve[-1]),
                                  val_curve=curve, train_loss=losses[:, j].copy(), aborted=aborted,
                                  abort_step=at, epochs=epochs, seed=seeds[j], ranges=dict(ranges))


def _trainer_hparams(hp: dict[str, Any]) -> dict[str, Any]:
    """beta1 / beta2 become torch's betas pair; the rest pass as they are (scalars or one per net)."""
    hp = dict(hp)
    if "beta1" in hp or "beta2" in hp:
        hp["betas"] = (hp.pop("beta1", 0.9), hp.pop("beta2", 0.999))
    return hp


# ------------------------------------------------------------------------------------ reading results


def best_point(points: Iterable[SearchPoint]) -> SearchPoint | None:
    """The run with the highest validation accuracy among those not aborted (None if there is none)."""
    live = [p for p in points if not p.aborted and math.isfinite(p.val_acc)]
    return max(live, key=lambda p: p.val_acc) if live else None


def edge_warning(results: SearchResult | Iterable[SearchPoint], space: Mapping[str, Any] | None = None,
                 *, margin: float = 0.1) -> str | None:
    """Say when the best value of a searched hyperparameter sits at the edge of its range (None if not).

    The lectures' "why is this worrying?": a best value within `margin` of either end (on the
    range's scale) suggests better values may lie beyond the range, so widen it that way and search
    again. space defaults to the search's own.
    """
    check_range("margin", margin, 0.0, 0.5)
    if space is None:
        if not isinstance(results, SearchResult):
            raise ValueError("space is needed when results is a list of points")
        space = results.space
    dims = {k: v for k, v in make_space(space).items() if isinstance(v, Dim)}
    points = results.points if isinstance(results, SearchResult) else list(results)
    best = best_point(points)
    if best is None:
        return None
    notes = []
    for name, dim in dims.items():
        if name not in best.hparams:
            continue
        value = best.hparams[name]
        pos = float(dim.position(value))
        if pos <= margin or pos >= 1 - margin:
            side, way = ("lower", "below") if pos <= margin else ("upper", "above")
            notes.append(f"best {name} = {value:.3g} sits at the {side} edge of the searched range "
                         f"[{dim.low:.3g}, {dim.high:.3g}] ({dim.scale} scale)")
            notes[-1] += f": better values may lie {way} it; widen the range that way and search again."
    return " ".join(notes) if notes else None


__all__ = ["Dim", "Stage", "COARSE_TO_FINE", "LECTURE_SPACE", "SearchPoint", "SearchResult", "make_space",
           "plan_stages", "grid_shape", "iter_random_search", "iter_grid_search", "random_search", "grid_search",
           "best_point", "edge_warning"]
