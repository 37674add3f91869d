"""Loss landscapes of a real net: the race drawn on a plane of its weight space, and 1D interpolations.

`loss_landscape(race, plane=...)` evaluates the training loss (and accuracy) on a grid of a plane
(training/planes.py, all points batched) and projects every optimizer's snapshots onto it:
- "pca": through the shared initial weights, along the two directions that hold most of the
  paths' displacement (Li et al. 2018, section 7, with the init as origin so every path starts at 0);
- "random": two filter-normalized Gaussian directions through one run's weights (Li et al.);
- three points (vectors, or "init" / an optimizer's name for its weights now): the plane through them.
A plane of a 100k-dimensional space is a shadow: `explained_variance` says how much of the paths'
squared displacement from the init lies in it (near 1 for PCA, near 0 for random directions).

`interpolate(a, b, data)` is Goodfellow et al. 2015's picture: the loss along the straight line
between two weight vectors, with the barrier above the chord between its ends.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from optiviz._validate import check_choice, check_int, check_positive, shown
from optiviz.training.data import CIFAR10
from optiviz.training.net_race import NetRace
from optiviz.training.planes import (
    Plane, check_evaluation_fits, check_plane_net, evaluate_points, flat_params, pca_plane, points_plane, random_plane,
)

PLANES = ("pca", "random")  # or a sequence of three points
RESOLUTION = (3, 201)
POINTS = (2, 1001)
MARGIN = 0.25  # an automatic span grows the paths' extent by this share of it on each side


@dataclass
class Landscape:
    """Loss and accuracy on a grid of a plane, with every run's path projected onto it.

    loss / acc are (resolution, resolution): row i is ys[i], column j is xs[j] (a heatmap's layout).
    paths: optimizer -> (T, 2) coordinates of its snapshots (and where it is now); steps: their step
    numbers. explained_variance: the share of the paths' squared displacement from the init that the
    plane holds. pca_shares: each principal direction's share (plane="pca" only).
    """

    loss: np.ndarray
    acc: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    paths: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    explained_variance: float
    plane: Plane = field(repr=False)
    split: str = "train"
    n_images: int = 0
    pca_shares: np.ndarray | None = None

    @property
    def span(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return (float(self.xs[0]), float(self.xs[-1])), (float(self.ys[0]), float(self.ys[-1]))

    def nearest(self, x: float, y: float) -> tuple[int, int]:
        """(row, column) of the grid cell nearest to (x, y)."""
        return int(np.abs(self.ys - y).argmin()), int(np.abs(self.xs - x).argmin())

    def project(self, vectors: torch.Tensor) -> np.ndarray:
        """(T, 2) coordinates of (T, P) weight vectors on this plane."""
        return self.plane.coordinates(vectors.to(self.plane.origin.device))

    def evaluate(self, x: float, y: float, data: CIFAR10) -> tuple[float, float]:
        """Loss and accuracy of the net at (x, y) exactly (not the nearest grid cell)."""
        loss, acc = evaluate_points(self.plane, np.array([[x, y]]), data, split=self.split)
        return float(loss[0]), float(acc[0])


def _named_point(race: NetRace, point: Any, what: str) -> torch.Tensor:
    if isinstance(point, str):
        if point == "init":
            return race.init
        return race.current(check_choice(what, point, ("init",) + race.optimizers))
    return _vector(point, what, race.init.numel(), race.device)


def _vector(value: Any, what: str, size: int | None, device: torch.device) -> torch.Tensor:
    if isinstance(value, nn.Module):
        value = flat_params(value)
    try:
        vec = torch.as_tensor(np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value,
                                         dtype=np.float32)).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a weight vector, a module or a name, got {shown(value)}") from None
    if size is not None and vec.numel() != size:
        raise ValueError(f"{what} has {vec.numel():,} weights; the net has {size:,}")
    if not bool(torch.isfinite(vec).all()):
        raise ValueError(f"{what} holds weights that are not finite")
    return vec.to(device)


def make_plane(race: NetRace, plane: Any = "pca", *, center: str | None = None, seed: int = 0) -> tuple[Plane, Any]:
    """The plane a landscape is drawn on (see the module's docstring), and PCA's shares (else None)."""
    check_plane_choice(plane, len(race.optimizers), race.optimizers)
    if isinstance(plane, str):
        plane = plane.lower()
        if plane == "pca":
            moves = torch.cat([race.trajectory(n)[1] for n in race.optimizers]) - race.init
            return pca_plane(race.template, race.init, moves)
        anchor = race.optimizers[0] if center is None else center
        return random_plane(race.template, _named_point(race, anchor, "center"), seed=seed), None
    p = [_named_point(race, v, f"plane[{i}]") for i, v in enumerate(plane)]
    return points_plane(race.template, *p), None


def check_plane_choice(plane: Any, n_optimizers: int, names: Sequence[str] = ()) -> None:
    """plane is "pca" (with two or more optimizers), "random", or three points."""
    if isinstance(plane, str) and plane.lower() in PLANES:
        if plane.lower() == "pca" and n_optimizers < 2:
            one = f" ({names[0]!r})" if names else ""
            raise ValueError(f"plane='pca' compares the paths of at least two optimizers, and this race has one{one}: "
                             "race two or more (optimizers=('sgd', 'adam')), or draw one run on plane='random' or on "
                             "a plane through three of its points")
        return
    if not isinstance(plane, str) and isinstance(plane, (Sequence, np.ndarray, torch.Tensor)) and len(plane) == 3:
        if names and isinstance(plane, Sequence):  # a point by name is checked now, not at the first refit
            for i, point in enumerate(plane):
                if isinstance(point, str):
                    check_choice(f"plane[{i}]", point, ("init", *names))
        return
    raise ValueError(f"unknown plane {shown(plane)}; allowed: {', '.join(PLANES)}, or three points "
                     "(weight vectors, 'init' or an optimizer's name)")


def check_span(span: Any) -> None:
    """span is None, a positive half-width or ((x0, x1), (y0, y1)) with x0 < x1 and y0 < y1."""
    if span is not None:
        _axis_spans(span, {}, "pca")


def _axis_spans(span: Any, paths: dict[str, np.ndarray], kind: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """span: None (the paths' extent grown by MARGIN; at least [-1, 1] on a random plane), a half-width
    s ([-s, s] on both axes) or ((x0, x1), (y0, y1))."""
    if span is None:
        pts = np.concatenate([p for p in paths.values()] + [np.zeros((1, 2))])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        if kind == "random":
            lo, hi = np.minimum(lo, -1.0), np.maximum(hi, 1.0)
        size = np.maximum(hi - lo, 1e-3 * max(float(np.abs(pts).max()), 1.0))
        lo, hi = lo - MARGIN * size, hi + MARGIN * size
        return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))
    if np.ndim(span) == 0:
        s = float(check_positive("span", span))
        return (-s, s), (-s, s)
    try:
        (x0, x1), (y0, y1) = span
        x0, x1, y0, y1 = float(x0), float(x1), float(y0), float(y1)
    except (TypeError, ValueError):
        raise ValueError(f"span must be a half-width or ((x0, x1), (y0, y1)), got {shown(span)}") from None
    if not (np.isfinite([x0, x1, y0, y1]).all() and x0 < x1 and y0 < y1):
        raise ValueError(f"span must give finite ranges with x0 < x1 and y0 < y1, got {shown(span)}")
    return (x0, x1), (y0, y1)


def loss_landscape(race: NetRace, plane: Any = "pca", *, resolution: int = 41, span: Any = None,
                   data: CIFAR10 | None = None, split: str = "train", center: str | None = None,
                   seed: int = 0) -> Landscape:
    """A resolution x resolution grid of losses and accuracies on a plane through the race, evaluated
    batched on the race's device, with every run's path projected onto it.

    plane: "pca", "random" (centred on `center`: an optimizer's name, default the first, or "init";
    `seed` draws the directions) or three points. span: see _axis_spans. data: the race's unless given
    (all images of `split` are used).
    """
    if not isinstance(race, NetRace):
        raise TypeError(f"race must come from ov.race_on_net(...), got {shown(race)}")
    resolution = check_int("resolution", resolution, *RESOLUTION)
    split = check_choice("split", split, ("train", "val", "test"))
    data = race.data if data is None else data
    if not isinstance(data, CIFAR10):
        raise TypeError(f"data must be a CIFAR10 from ov.load_cifar10(), got {shown(data)}")
    check_plane_net(race.template)
    the_plane, shares = make_plane(race, plane, center=center, seed=seed)
    chunk = check_evaluation_fits(the_plane, resolution * resolution, data, split,
                                  f"resolution={resolution} ({resolution * resolution:,} points) on "
                                  f"{int(data.split(split)[1].shape[0]):,} images")
    trajectories = {n: race.trajectory(n) for n in race.optimizers}
    paths = {n: the_plane.coordinates(v) for n, (_s, v) in trajectories.items()}
    (x0, x1), (y0, y1) = _axis_spans(span, paths, the_plane.kind)
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    gx, gy = np.meshgrid(xs, ys)
    loss, acc = evaluate_points(the_plane, np.stack([gx.ravel(), gy.ravel()], axis=1), data, split=split, chunk=chunk)
    moves = torch.cat([v for _s, v in trajectories.values()]) - race.init
    return Landscape(loss=loss.reshape(resolution, resolution), acc=acc.reshape(resolution, resolution), xs=xs, ys=ys,
                     paths=paths, steps={n: s for n, (s, _v) in trajectories.items()},
                     explained_variance=the_plane.held_share(moves), plane=the_plane, split=split,
                     n_images=int(data.split(split)[1].shape[0]), pca_shares=shares)


@dataclass
class Interpolation:
    """The loss along (1 - t) a + t b. barrier: the most the loss rises above the straight chord
    between its values at t = 0 and t = 1 (0 when the line never climbs above it)."""

    t: np.ndarray
    loss: np.ndarray
    acc: np.ndarray
    barrier: float


def interpolate(a: Any, b: Any, data: CIFAR10, points: int = 51, *, model: nn.Module | NetRace | None = None,
                split: str = "train", t_range: tuple[float, float] = (0.0, 1.0)) -> Interpolation:
    """The 1D loss between two nets (modules) or weight vectors of one architecture (give `model`, a
    module or the race, when both are vectors), at `points` evenly spaced t over t_range."""
    points = check_int("points", points, *POINTS)
    if not isinstance(data, CIFAR10):
        raise TypeError(f"data must be a CIFAR10 from ov.load_cifar10(), got {shown(data)}")
    template = model.template if isinstance(model, NetRace) else model
    if template is None:
        template = a if isinstance(a, nn.Module) else b if isinstance(b, nn.Module) else None
    if not isinstance(template, nn.Module):
        raise ValueError("interpolate needs the architecture: pass modules as a and b, or model= (a module or the race)")
    check_plane_net(template)
    device = next(template.parameters()).device
    size = sum(p.numel() for p in template.parameters())
    va, vb = _vector(a, "a", size, device), _vector(b, "b", size, device)
    try:
        t0, t1 = (float(v) for v in t_range)
    except (TypeError, ValueError):
        raise ValueError(f"t_range must be (t0, t1), got {shown(t_range)}") from None
    if not (np.isfinite([t0, t1]).all() and t0 < t1):
        raise ValueError(f"t_range must be finite with t0 < t1, got {shown(t_range)}")
    line = Plane("line", va, vb - va, torch.zeros_like(va), template, ("t", ""))
    t = np.linspace(t0, t1, points)
    coords = np.stack([t, np.zeros_like(t)], axis=1)
    chunk = check_evaluation_fits(line, points + 2, data, split, f"points={points} on the {split} split")
    ends_too = np.concatenate([coords, [[0.0, 0.0], [1.0, 0.0]]])  # the chord's ends, in the same pass
    loss, acc = evaluate_points(line, ends_too, data, split=split, chunk=chunk)
    loss, acc, ends = loss[:points], acc[:points], loss[points:]
    chord = ends[0] + t * (ends[1] - ends[0])
    inside = (t >= 0.0) & (t <= 1.0)
    barrier = float(max(0.0, np.max(loss[inside] - chord[inside]))) if inside.any() else float("nan")
    return Interpolation(t=t, loss=loss, acc=acc, barrier=barrier)


__all__ = ["Landscape", "Interpolation", "loss_landscape", "interpolate", "make_plane", "check_plane_choice", "PLANES", "POINTS", "RESOLUTION"]
