"""Surface: a 2D loss with its analytic gradient and what a view needs to draw it.

Its own module so that the built-ins (surfaces.py) and a user's expression (expression.py) both
build on it without importing each other.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from optiviz.engine.hparams import OPTIMIZERS

Tensor = torch.Tensor
Domain = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, eq=False)
class Surface:
    """A 2D loss with its analytic gradient and what a view needs to draw it.

    `loss_fn`, `gradient_fn` and `loss_and_gradient_fn` take an (..., 2) tensor; call them through
    `loss`, `gradient` and `loss_and_gradient`. Compared by identity (it holds functions).
    """

    name: str
    title: str
    caption: str
    domain: Domain
    minima: tuple[tuple[float, float], ...]
    f_min: float | None
    start: tuple[float, float]
    lrs: Mapping[str, float]
    params: Mapping[str, Any]
    log_color: bool
    loss_fn: Callable[[Tensor], Tensor] = field(repr=False)
    gradient_fn: Callable[[Tensor], Tensor] = field(repr=False)
    loss_and_gradient_fn: Callable[[Tensor], tuple[Tensor, Tensor]] = field(repr=False)
    # The Hessian's eigenvalues where it is the same everywhere (the quadratics), else None: with
    # them engine/theory.py predicts rates, stability edges and optimal settings for this surface.
    curvatures: tuple[float, ...] | None = None
    # (x, y) -> (f, df/dx, df/dy) on coordinate tensors, where the surface has it (the built-ins):
    # `loss_and_gradient_into` then writes each partial straight into a column of its output
    coordinates_fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]] | None = field(default=None, repr=False)

    def loss(self, xy: Tensor) -> Tensor:
        """f at each point: (..., 2) -> (...)."""
        return self.loss_fn(as_points(xy))

    def gradient(self, xy: Tensor) -> Tensor:
        """grad f at each point: (..., 2) -> (..., 2)."""
        return self.gradient_fn(as_points(xy))

    def loss_and_gradient(self, xy: Tensor) -> tuple[Tensor, Tensor]:
        """Both in one pass, sharing subexpressions (what a simulator step needs)."""
        return self.loss_and_gradient_fn(as_points(xy))

    def loss_and_gradient_into(self, xy: Tensor, grad: Tensor) -> Tensor:
        """f at each row of an (R, 2) tensor, its gradient written into `grad` (R, 2): what a
        simulator step needs, without a stacked gradient to copy (stacking two columns into rows
        costs more than the surface itself on the CPU)."""
        if self.coordinates_fn is None:
            loss, g = self.loss_and_gradient_fn(xy)
            grad.copy_(g)
            return loss
        loss, gx, gy = self.coordinates_fn(xy[:, 0], xy[:, 1])
        grad[:, 0].copy_(gx)
        grad[:, 1].copy_(gy)
        return loss

    def grid(self, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xs (n,), ys (n,), Z (n, n)) in float64 over the domain; Z[i, j] = f(xs[j], ys[i])."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= 4000:
            raise ValueError(f"n must be an integer in [2, 4000], got {n!r}")
        (x0, x1), (y0, y1) = self.domain
        xs = torch.linspace(x0, x1, int(n), dtype=torch.float64)
        ys = torch.linspace(y0, y1, int(n), dtype=torch.float64)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        with torch.no_grad():
            z = self.loss_fn(torch.stack((gx, gy), dim=-1))
        return xs.numpy(), ys.numpy(), z.numpy()

    @cached_property
    def f_ref(self) -> float:
        """f_min when known, else the lowest finite value on the plotting grid."""
        if self.f_min is not None:
            return float(self.f_min)
        z = self.grid(200)[2]
        return float(np.min(z[np.isfinite(z)]))


def suggested_lrs(surface: str, lrs: Mapping[str, float]) -> Mapping[str, float]:
    """A surface's suggested lr per optimizer, read-only: exactly one positive lr for each of
    OPTIMIZERS (a new optimizer in engine/hparams.py needs one on every surface)."""
    missing = [o for o in OPTIMIZERS if o not in lrs]
    unknown = sorted(set(lrs) - set(OPTIMIZERS))
    if missing or unknown:
        raise ValueError(f"surface {surface!r}: lrs must give one lr for each of {', '.join(OPTIMIZERS)}; "
                         f"missing: {', '.join(missing) or 'none'}, unknown: {', '.join(unknown) or 'none'}")
    bad = [o for o in OPTIMIZERS if not (isinstance(lrs[o], (int, float)) and lrs[o] > 0)]
    if bad:
        raise ValueError(f"surface {surface!r}: lrs must be positive numbers, got {bad[0]}={lrs[bad[0]]!r}")
    return MappingProxyType({o: float(lrs[o]) for o in OPTIMIZERS})


def as_points(xy: Any) -> Tensor:
    if not isinstance(xy, torch.Tensor):
        xy = torch.as_tensor(np.asarray(xy, dtype=np.float64))
    if xy.ndim == 0 or xy.shape[-1] != 2:
        raise ValueError(f"xy must have shape (..., 2), got {tuple(xy.shape)}")
    return xy


__all__ = ["Surface", "Domain", "suggested_lrs", "as_points"]
