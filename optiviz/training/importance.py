"""Which hyperparameter matters (deep-learning course, week 3), read from a random search's results.

The importance measure, stated: for each hyperparameter, its values (on its search scale: log10
for lr and weight decay, log10(1 - v) for momentum and betas, linear otherwise) are cut into
`bins` equal-count bins, and the measure is the share of the variance of validation accuracy
explained by the bin means (the correlation ratio eta^2 = between-bin sum of squares / total sum
of squares; 0: the bins look alike, 1: the bin says it all). Next to it, Spearman's rank
correlation says the direction. Random search is what makes this readable: every point draws
every parameter independently, so one parameter's bins average over the others.
The lecture's tiers: lr first; momentum, hidden units, batch size second; layers, lr decay third;
Adam's betas and eps almost never worth tuning.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from optiviz._validate import check_int, shown
from optiviz.engine.hparams import to_scale
from optiviz.training.search import DEFAULT_SCALE, Dim, SearchPoint, SearchResult

LECTURE_TIERS: dict[str, int] = {
    "lr": 1, "momentum": 2, "width": 2, "hidden_units": 2, "batch_size": 2,
    "depth": 3, "layers": 3, "lr_decay": 3, "weight_decay": 3, "dropout": 3,
    "beta1": 4, "beta2": 4, "eps": 4,
}
TIER_NAMES = {1: "first", 2: "second", 3: "third", 4: "almost never"}


@dataclass(frozen=True)
class Importance:
    """One hyperparameter's effect on validation accuracy."""

    name: str
    eta2: float  # share of the accuracy's variance explained by the parameter's bins
    spearman: float  # rank correlation with accuracy (sign: direction)
    bin_means: tuple[float, ...]  # mean accuracy per bin, low values first
    tier: int | None  # the lecture's tier, None if it does not name this parameter


@dataclass(frozen=True)
class ImportanceTable:
    """Hyperparameters ranked by eta^2, most important first, and how many points were used."""

    rows: tuple[Importance, ...]
    n_points: int
    n_dropped: int
    bins: int

    @property
    def ranking(self) -> list[str]:
        return [r.name for r in self.rows]

    def table(self) -> str:
        width = max(9, *(len(r.name) for r in self.rows))
        lines = [f"{'parameter':<{width}}  eta^2  spearman  lecture tier   mean val acc per bin (low -> high)"]
        for r in self.rows:
            tier = "-" if r.tier is None else f"{r.tier} ({TIER_NAMES[r.tier]})"
            lines.append(f"{r.name:<{width}}  {r.eta2:5.2f}  {r.spearman:+8.2f}  {tier:<13}  "
                         + " ".join(f"{m:.3f}" for m in r.bin_means))
        lines.append(f"({self.n_points} points, {self.bins} equal-count bins; {self.n_dropped} aborted or NaN points left out)")
        return "\n".join(lines)


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v), dtype=np.float64)
    for value in np.unique(v):  # ties share their mean rank
        tie = v == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson's on the ranks; 0 when either is constant)."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(((ra - ra.mean()) * (rb - rb.mean())).mean() / (sa * sb))


def eta_squared(values: np.ndarray, target: np.ndarray, bins: int) -> tuple[float, tuple[float, ...]]:
    """Correlation ratio of `target` on `bins` equal-count bins of `values`, and the per-bin means."""
    bins = check_int("bins", bins, 2)
    values, target = np.asarray(values, dtype=np.float64), np.asarray(target, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, len(values))) if len(g)]
    total = ((target - target.mean()) ** 2).sum()
    means = tuple(float(target[g].mean()) for g in groups)
    if total == 0:
        return 0.0, means
    between = sum(len(g) * (target[g].mean() - target.mean()) ** 2 for g in groups)
    return float(between / total), means


def hyperparameter_importance(
    results: SearchResult | Iterable[SearchPoint] | Mapping[str, Iterable[float]],
    val_acc: Iterable[float] | None = None,
    *,
    bins: int = 4,
    scales: Mapping[str, str] | None = None,
) -> ImportanceTable:
    """Rank the searched hyperparameters by the share of validation-accuracy variance their bins explain.

    Why: the lecture's advice (tune lr first) is a claim about this number; a random search's
    own results check it. `results`: a SearchResult, its points, or a mapping name -> values with
    `val_acc` given. Aborted runs (NaN accuracy) are left out and counted. `scales` overrides the
    scale a parameter is binned on (default: the search's own, else DEFAULT_SCALE, else linear).
    """
    bins = check_int("bins", bins, 2)
    if scales is not None and not isinstance(scales, Mapping):
        raise ValueError(f"scales must be a mapping name -> scale, got {shown(scales)}")
    scale_of = dict(scales or {})
    if isinstance(results, Mapping):
        if val_acc is None:
            raise ValueError("val_acc must be given with a mapping of hyperparameter values")
        columns = {k: np.asarray(list(v), dtype=np.float64) for k, v in results.items()}
        acc = np.asarray(list(val_acc), dtype=np.float64)
    else:
        if val_acc is not None:
            raise ValueError("val_acc must be None for search results (their points carry it)")
        if isinstance(results, SearchResult):
            for k, d in results.space.items():
                if isinstance(d, Dim):
                    scale_of.setdefault(k, d.scale)
            points = list(results.points)
        else:
            points = list(results)
        if not points or not all(isinstance(p, SearchPoint) for p in points):
            raise ValueError(f"results must be a SearchResult, SearchPoints or a mapping, got {shown(results)}")
        names = list(points[0].hparams)
        columns = {k: np.asarray([p.hparams[k] for p in points], dtype=np.float64) for k in names}
        acc = np.asarray([p.val_acc for p in points], dtype=np.float64)
    if not columns:
        raise ValueError("results must name at least one hyperparameter")
    for k, v in columns.items():
        if v.shape != acc.shape:
            raise ValueError(f"val_acc must have one value per point ({len(v)} for {k!r}), got {len(acc)}")
    keep = np.isfinite(acc)
    if keep.sum() < 2:
        raise ValueError(f"results must hold at least 2 finished points, got {int(keep.sum())}")
    rows = []
    for k, v in columns.items():
        v = v[keep]
        if np.all(v == v[0]):
            continue  # held fixed: nothing to explain
        scale = scale_of.get(k, DEFAULT_SCALE.get(k, "linear"))
        on_scale = np.asarray(to_scale(v, scale), dtype=np.float64)
        eta2, means = eta_squared(on_scale, acc[keep], bins)
        # a log1m scale runs backwards (large v, small 1 - v): order bins and sign by the value itself
        if len(means) > 1 and spearman(on_scale, v) < 0:
            means = means[::-1]
        rows.append(Importance(k, eta2, spearman(v, acc[keep]), means, LECTURE_TIERS.get(k)))
    rows.sort(key=lambda r: -r.eta2)
    return ImportanceTable(tuple(rows), int(keep.sum()), int((~keep).sum()), bins)
