"""LandscapeConfig: every setting a LandscapeView is built from, in one plain object.

The live learning rates are not here: each lives in its run's Trainer (read through
`controller.lr(name)`). This object is what a new view (or a saved state) rebuilds from.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optiviz._validate import check_int
from optiviz.engine.preflight import optimizer_names
from optiviz.training.landscape import POINTS, RESOLUTION, check_plane_choice, check_span

N_TRAIN = (64, 4577)  # images the nets train (and the landscape is evaluated) on


@dataclass
class LandscapeConfig:
    """model / optimizers / hparams / batch_size / seed / snapshots: the race (training/net_race.py);
    n_train: training images (the landscape's too); epochs: how long Start trains; plane, resolution,
    span: the landscape (training/landscape.py); refit_every: steps between recomputing the plane and
    its grid while training (None: once an epoch); points: samples of each interpolation curve."""

    model: str = "mlp"
    optimizers: tuple[str, ...] = ("sgd", "momentum", "adam")
    hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    n_train: int = 1024
    batch_size: int = 128
    epochs: int = 6
    plane: Any = "pca"
    resolution: int = 31
    span: Any = None
    refit_every: int | None = None
    points: int = 31
    seed: int = 0
    snapshots: int = 40

    def checked(self) -> LandscapeConfig:
        """A checked copy; ValueError naming the setting and its range."""
        names = optimizer_names(self.optimizers)
        check_plane_choice(self.plane, len(names), names)
        check_span(self.span)
        return LandscapeConfig(
            model=self.model, optimizers=names, hparams=dict(self.hparams),
            n_train=check_int("n_train", self.n_train, *N_TRAIN), batch_size=check_int("batch_size", self.batch_size, 1, 4096),
            epochs=check_int("epochs", self.epochs, 1, 1000), plane=self.plane,
            resolution=check_int("resolution", self.resolution, *RESOLUTION), span=self.span,
            refit_every=None if self.refit_every is None else check_int("refit_every", self.refit_every, 1),
            points=check_int("points", self.points, *POINTS), seed=check_int("seed", self.seed),
            snapshots=self.snapshots)


__all__ = ["LandscapeConfig", "N_TRAIN"]
