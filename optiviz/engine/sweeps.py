"""Many runs at once: stability maps over two hyperparameters and basin maps over start points.

Both are one batched Simulator (a 200 x 200 grid is 40,000 rows of one tensor). The `iter_*`
forms yield the partial map every few steps so a view can stream it; the plain forms return the
finished map.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optiviz._validate import check_choice, check_int, check_positive, check_range, shown
from optiviz.engine.hparams import HPARAMS, OPTIMIZERS, SCALES, from_scale, sweep_axes, to_scale
from optiviz.engine.preflight import optimizer_names
from optiviz.engine.rates import log_excess, log_excess_floor, measured_rate
from optiviz.engine.simulator import CONVERGED, DIVERGED, Simulator, resolve_surface
from optiviz.engine.surface import Surface
from optiviz.engine.sweep_theory import MapTheory, map_theory

COLOUR_BY = ("loss", "rate", "steps", "diverged")
_NOT_YET = object()  # StabilityMap._theory before theory() first runs
RATE_COLOUR_MAX = 2.0  # colour("rate") runs 0 .. 2 (1: neither converging nor growing); diverged cells get 2


@dataclass
class Axis:
    name: str
    values: np.ndarray  # (n,)
    scale: str


@dataclass
class StabilityMap:
    """Final state of a grid of runs; arrays are (len(y.values), len(x.values))."""

    surface: Surface
    optimizer: str
    x: Axis
    y: Axis
    steps_done: int
    steps: int
    final_loss: np.ndarray  # loss at the last step (last finite loss for diverged runs)
    converged_at: np.ndarray  # step or -1
    diverged_at: np.ndarray  # step or -1
    status: np.ndarray  # codes: 0 running, 1 converged, 2 diverged
    rate: np.ndarray  # measured distance-to-minimum factor per step (engine/rates.py); NaN if diverged
    fixed: dict[str, Any] = field(default_factory=dict)  # the settings every cell shares
    # theory() once per map: the partial maps of one computation share it (it needs no runs)
    _theory: Any = field(default=_NOT_YET, repr=False, compare=False)

    @property
    def diverged(self) -> np.ndarray:
        return self.status == DIVERGED

    def theory(self) -> MapTheory | None:
        """What the theory predicts for this map, where it is exact (see `map_theory`), else None."""
        if self._theory is _NOT_YET:
            self._theory = map_theory(self.surface, self.optimizer, self.x.name, self.x.values, self.y.name,
                                      self.y.values, self.fixed)
        return self._theory

    @property
    def progress(self) -> float:
        return self.steps_done / max(self.steps, 1)

    def setting(self, i: int, j: int) -> dict[str, float]:
        """The hyperparameters of cell (row i, column j), ready for `simulate(**...)`."""
        return _hparams_for(self.optimizer, {self.x.name: self.x.values[j], self.y.name: self.y.values[i]})

    def colour(self, by: str = "loss") -> np.ndarray:
        """What a map view colours by: log10 loss excess, the measured rate (clipped to 0 .. 2;
        diverged cells 2, cells too fast to measure 0), steps to converge, or diverged (NaN where not
        defined)."""
        by = check_choice("colour by", by, COLOUR_BY)
        if by == "rate":  # a colour for every cell: diverged at the top, too fast to measure at 0
            out = np.clip(np.nan_to_num(self.rate.astype(float), nan=0.0), 0.0, RATE_COLOUR_MAX)
            out[self.diverged] = RATE_COLOUR_MAX
            return out
        if by == "loss":
            excess = np.maximum(self.final_loss - self.surface.f_ref, 1e-12)
            out = np.log10(excess)
            out[self.diverged] = np.nan
            return out
        if by == "steps":
            out = self.converged_at.astype(float)
            out[self.converged_at < 0] = np.nan
            return out
        return self.diverged.astype(float)


@dataclass
class BasinMap:
    """For each optimizer and start point: which minimum the run ends in (labels index `minima`)."""

    surface: Surface
    optimizers: tuple[str, ...]
    xs: np.ndarray  # (nx,)
    ys: np.ndarray  # (ny,)
    steps_done: int
    steps: int
    minima: np.ndarray  # (M, 2): the known minima first, then other end points found
    labels: np.ndarray  # (K, ny, nx): index into minima, -1 unsettled, -2 diverged
    final_points: np.ndarray  # (K, ny, nx, 2)

    @property
    def progress(self) -> float:
        return self.steps_done / max(self.steps, 1)


def make_axis(name: str, values: Any = None, *, low: float | None = None, high: float | None = None,
              num: int = 200, scale: str | None = None, optimizer: str | None = None) -> Axis:
    """An axis of hyperparameter values: given outright, or `num` values from low to high on a scale.

    Missing low, high and scale come from the hyperparameter table (engine/hparams.py): the
    optimizer's own range when one is named (nesterov's momentum starts above 0), else the usual one.
    """
    if values is not None:
        arr = np.asarray(values, dtype=float).reshape(-1)
        if arr.size == 0:
            raise ValueError(f"{name} values must not be empty")
        return Axis(name, arr, scale or "linear")
    default = sweep_axes(optimizer).get(name)
    low = default.low if low is None and default is not None else low
    high = default.high if high is None and default is not None else high
    if low is None or high is None:
        raise ValueError(f"{name}: give low and high (no default range for this hyperparameter)")
    scale = check_choice("scale", scale or (default.scale if default is not None else "linear"), SCALES)
    num = check_int("num", num, 1, 2000)
    if not low < high:
        raise ValueError(f"{name}: low must be < high, got {low:g} >= {high:g}")
    if scale == "log":
        check_positive(f"{name} low", low)
    elif scale == "log1m":
        check_range(f"{name} high", high, None, 1.0, high_inclusive=False)
    vals = from_scale(np.linspace(to_scale(low, scale), to_scale(high, scale), num), scale)
    return Axis(name, vals, scale)


def iter_stability_map(
    surface: str | Surface,
    optimizer: str,
    x: str | Axis = "lr",
    y: str | Axis = "momentum",
    *,
    resolution: int | tuple[int, int] = 200,
    steps: int = 500,
    every: int = 50,
    start: Any = None,
    **kwargs: Any,
) -> Iterator[StabilityMap]:
    """Yield the map every `every` steps (the last one is the finished map)."""
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    steps = check_int("steps", steps, 1)
    every = check_int("every", every, 1)
    nx, ny = grid_shape(resolution, 1, 2000)  # a single row or column is a line sweep
    names = []
    for label, axis in (("x", x), ("y", y)):
        name = axis.name if isinstance(axis, Axis) else axis
        if not isinstance(name, str):
            raise TypeError(f"{label} must be a hyperparameter name or an Axis, got {shown(axis)}")
        base = "betas" if name in ("beta1", "beta2") else name
        if base not in HPARAMS[optimizer]:
            raise ValueError(f"{optimizer} has no hyperparameter {shown(name)} for {label}; allowed: "
                             f"{', '.join(axis_names(optimizer))}")
        names.append(name)
    if names[0] == names[1]:
        raise ValueError(f"x and y must be two different hyperparameters, both are {names[0]!r}; "
                         f"allowed: {', '.join(axis_names(optimizer))}")
    ax = x if isinstance(x, Axis) else make_axis(x, num=nx, optimizer=optimizer)
    ay = y if isinstance(y, Axis) else make_axis(y, num=ny, optimizer=optimizer)
    gx, gy = np.meshgrid(ax.values, ay.values)
    hp = _hparams_for(optimizer, {ax.name: gx.reshape(-1), ay.name: gy.reshape(-1)}, kwargs.get("betas"))
    fixed = {k: v for k, v in kwargs.items() if k not in hp}  # the axes' values win over fixed ones
    surf = resolve_surface(surface)
    sim = Simulator(surf, optimizer, start=start, n=gx.size, **fixed, **hp)
    shape = gx.shape
    done = 0
    # log loss excess at every chunk's end: the measured rate's checkpoints (float32, (C, rows))
    checkpoints, log_excesses = [0], [log_excess(sim.loss.cpu().numpy(), surf.f_ref)]
    log_floor = log_excess_floor(sim.dtype, surf.f_ref)
    theory = map_theory(surf, optimizer, ax.name, ax.values, ay.name, ay.values, fixed)
    while done < steps:
        chunk = min(every, steps - done)
        sim.advance(chunk, record=False)
        done += chunk
        loss = sim.loss.cpu().numpy()
        checkpoints.append(done)
        log_excesses.append(log_excess(loss, surf.f_ref))
        status = sim.status.cpu().numpy()
        rate = np.where(status == DIVERGED, np.nan, measured_rate(checkpoints, np.stack(log_excesses), log_floor))
        yield StabilityMap(
            surface=surf, optimizer=optimizer, x=ax, y=ay, steps_done=done, steps=steps,
            final_loss=loss.reshape(shape).astype(float),
            converged_at=sim.converged_at.cpu().numpy().reshape(shape),
            diverged_at=sim.diverged_at.cpu().numpy().reshape(shape),
            status=status.reshape(shape), rate=rate.reshape(shape), fixed=dict(fixed),
            _theory=theory,
        )


def stability_map(surface: str | Surface, optimizer: str, x: str | Axis = "lr", y: str | Axis = "momentum",
                  **kwargs: Any) -> StabilityMap:
    """A grid of (x, y) hyperparameter settings run as one batch; see `iter_stability_map`."""
    return _finished(iter_stability_map(surface, optimizer, x, y, **_in_one_go(kwargs, 500)))


def iter_basin_map(
    surface: str | Surface,
    optimizers: str | Sequence[str] = ("sgd", "momentum", "adam"),
    *,
    resolution: int | tuple[int, int] = 100,
    steps: int = 500,
    every: int = 50,
    tol: float | None = None,
    settle_gtol: float = 1e-2,
    hparams: dict[str, dict[str, Any]] | None = None,
    **kwargs: Any,
) -> Iterator[BasinMap]:
    """Yield, every `every` steps, which minimum each start point's run is heading into.

    A run counts as settled once it converged or its gradient norm is below `settle_gtol`; settled
    end points near no known minimum are grouped into new minima (local ones)."""
    surf = resolve_surface(surface)
    names = optimizer_names(optimizers)
    steps = check_int("steps", steps, 1)
    every = check_int("every", every, 1)
    nx, ny = grid_shape(resolution, 2, 1000)
    (x0, x1), (y0, y1) = surf.domain
    xs, ys = np.linspace(x0, x1, nx), np.linspace(y0, y1, ny)
    gx, gy = np.meshgrid(xs, ys)
    starts = np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1)
    tol = 0.02 * max(x1 - x0, y1 - y0) if tol is None else float(check_positive("tol", tol))
    sim = Simulator(surf, names, start=starts, hparams=hparams, **{"use_surface_lrs": True, **kwargs})
    done = 0
    while done < steps:
        chunk = min(every, steps - done)
        sim.advance(chunk, record=False)
        done += chunk
        final = sim.x.cpu().numpy().astype(float)
        status = sim.status.cpu().numpy()
        # float32 runs into a local minimum (Rastrigin's many) rarely meet gtol; a small gradient settles them
        slow = np.linalg.norm(sim.grad.cpu().numpy().astype(float), axis=1) <= settle_gtol
        minima, labels = label_minima(final, status, surf, tol, settled=(status == CONVERGED) | ((status != DIVERGED) & slow))
        k = len(sim.optimizers)
        yield BasinMap(
            surface=surf, optimizers=sim.optimizers, xs=xs, ys=ys, steps_done=done, steps=steps,
            minima=minima, labels=labels.reshape(k, ny, nx), final_points=final.reshape(k, ny, nx, 2),
        )


def basin_map(surface: str | Surface, optimizers: str | Sequence[str] = ("sgd", "momentum", "adam"),
              **kwargs: Any) -> BasinMap:
    """Start points on a grid over the domain, coloured by the minimum each optimizer ends in."""
    return _finished(iter_basin_map(surface, optimizers, **_in_one_go(kwargs, 500)))


def grid_shape(resolution: Any, low: int, high: int) -> tuple[int, int]:
    """resolution as (nx, ny): one whole number for a square grid or a pair, each in [low, high]."""
    if isinstance(resolution, (tuple, list)):
        if len(resolution) != 2:
            raise ValueError(f"resolution must be a whole number or a pair (nx, ny), got {shown(resolution)}")
        return (check_int("resolution[0] (x cells)", resolution[0], low, high),
                check_int("resolution[1] (y cells)", resolution[1], low, high))
    n = check_int("resolution", resolution, low, high)
    return n, n


def _in_one_go(kwargs: dict[str, Any], default_steps: int) -> dict[str, Any]:
    """The plain forms yield once, at the end: no partial maps to build (a copy: kwargs is kept)."""
    return {"every": kwargs.get("steps", default_steps), **kwargs}


def _finished(maps: Iterator[Any]) -> Any:
    result = None
    for result in maps:
        pass
    return result


def label_minima(points: np.ndarray, status: np.ndarray, surface: Surface, tol: float,
                 settled: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest known minimum within tol; other settled end points (converged, unless `settled` says
    otherwise) are grouped into new minima."""
    known = np.asarray(surface.minima, dtype=float).reshape(-1, 2)
    labels = np.full(points.shape[0], -1, dtype=np.int64)
    centres = [tuple(m) for m in known]
    if len(known):
        dist = np.linalg.norm(points[:, None, :] - known[None, :, :], axis=-1)
        near = dist.min(axis=1) <= tol
        labels[near] = dist.argmin(axis=1)[near]
    # group settled end points that match no known minimum (local minima of Rastrigin, Ackley, ...)
    settled = (labels < 0) & ((status == CONVERGED) if settled is None else settled)
    if settled.any():
        keys = np.round(points[settled] / tol).astype(np.int64)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        for u in range(len(uniq)):
            centres.append(tuple(points[settled][inverse.reshape(-1) == u].mean(axis=0)))
        labels[np.flatnonzero(settled)] = len(known) + inverse.reshape(-1)
    labels[status == DIVERGED] = -2
    return np.asarray(centres, dtype=float).reshape(-1, 2), labels


def axis_names(optimizer: str) -> list[str]:
    """The hyperparameters of `optimizer` a stability map can put on an axis (betas as beta1, beta2)."""
    return list(sweep_axes(check_choice("optimizer", optimizer, OPTIMIZERS)))


def _hparams_for(optimizer: str, values: dict[str, Any], betas: Any = None) -> dict[str, Any]:
    """Map axis names onto optimizer keyword arguments: beta1/beta2 become betas, the other part
    taken from `betas` (the fixed pair, if one was given) or the default."""
    out = {k: v for k, v in values.items() if k not in ("beta1", "beta2")}
    if "beta1" in values or "beta2" in values:
        default_b1, default_b2 = HPARAMS[optimizer]["betas"].default if betas is None else betas
        out["betas"] = (values.get("beta1", default_b1), values.get("beta2", default_b2))
    return out
