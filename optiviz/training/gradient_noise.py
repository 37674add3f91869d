"""The gradient-noise table (Neelakantan et al. 2015, in the lectures): noise rescues bad initializations.

A deep ReLU MLP with a bad initialization (the lectures' simple N(0, 0.01^2), or all zeros) barely
trains: its signal vanishes layer by layer, and zero weights never break symmetry (every hidden
gradient is exactly 0; only the output bias learns, so it stays near chance). Annealed Gaussian
noise g += N(0, eta / (1 + t)^0.55) on the gradient kicks the weights off that dead point, and the
net trains; with a good initialization (He) the noise does not help (on the bundled data it costs
a few points: one noise size for every weight is large next to the He first layer's, whose std is
sqrt(2 / 3072) = 0.026). Every cell (init x clipping x noise x seed) is one row of a single
ManyTrainer stack, trained at once on the same minibatches.

Order of the transforms: clipping by norm first (it tames the backprop gradient's monster steps),
then the noise is added. Noise first would mostly be clipped away: its norm, sqrt(eta * P), is
about 50 for this net at eta = 0.03, far above a threshold of 10.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from optiviz._validate import check_choice, check_int, check_positive, check_range, shown
from optiviz.engine.transforms import NOISE_GAMMA, annealed_noise, chain, clip_by_norm
from optiviz.training.batched import ManyTrainer
from optiviz.training.data import CIFAR10, load_cifar10
from optiviz.training.models import INITS, build_model

# The lecture's table (MNIST, 20-layer ReLU net, best test accuracy over 40 runs):
# (init, clipping, without noise, with noise)
LECTURE_NOISE_TABLE: tuple[tuple[str, float | None, float, float], ...] = (
    ("small_normal", None, 0.899, 0.967),
    ("zero", 10.0, 0.114, 0.945),
    ("he", 10.0, 0.974, 0.972),
)
INIT_NAMES = {"small_normal": "simple init", "zero": "zero init", "he": "good init (He)", "xavier": "Xavier init",
              "torch": "torch default init"}
NO_CLIP = 1e30  # clip_by_norm at this norm leaves every gradient as it is (scale exactly 1): "no clipping" per row


@dataclass(frozen=True)
class NoiseRow:
    """One row: an initialization and clipping, test accuracy per seed without and with the noise."""

    init: str
    clip: float | None
    without: np.ndarray  # (seeds,) test accuracy, no noise
    with_noise: np.ndarray  # (seeds,) test accuracy, annealed noise
    lecture: tuple[float, float] | None  # the lecture's (without, with), where it has this row

    @property
    def label(self) -> str:
        return f"{INIT_NAMES.get(self.init, self.init)}, " + ("no clipping" if self.clip is None else f"clipping {self.clip:g}")

    @property
    def gain(self) -> float:
        """Mean test accuracy with noise minus without: what the noise bought."""
        return float(self.with_noise.mean() - self.without.mean())


@dataclass(frozen=True)
class NoiseTable:
    rows: tuple[NoiseRow, ...]
    eta: float
    steps: int
    depth: int
    width: int

    def row(self, init: str, clip: float | None = None) -> NoiseRow:
        for r in self.rows:
            if r.init == init and r.clip == clip:
                return r
        raise ValueError(f"no row for init={init!r}, clip={clip!r}; rows: {', '.join(r.label for r in self.rows)}")

    def table(self) -> str:
        """Mean (best) test accuracy over the seeds, next to the lecture's numbers."""
        lines = [f"{'':34} {'without noise':>15} {'with noise':>15}   {'lecture (MNIST, 20 layers)':>26}"]
        for r in self.rows:
            lecture = "" if r.lecture is None else f"{r.lecture[0]:.3f} -> {r.lecture[1]:.3f}"
            lines.append(f"{r.label:<34} {r.without.mean():>7.3f} ({r.without.max():.3f}) "
                         f"{r.with_noise.mean():>7.3f} ({r.with_noise.max():.3f})   {lecture:>26}")
        lines.append(f"mean (best) over {len(self.rows[0].without)} seeds; {self.depth}-layer ReLU MLP, width "
                     f"{self.width}, {self.steps} steps; noise eta = {self.eta:g}, gamma = {NOISE_GAMMA}")
        return "\n".join(lines)


def gradient_noise_table(
    data: CIFAR10 | None = None,
    *,
    inits: Sequence[str] = ("small_normal", "zero", "he"),
    clips: Sequence[float | None] = (None, 10.0),
    eta: float = 0.03,
    seeds: int = 3,
    steps: int = 150,
    depth: int = 6,
    width: int = 100,
    lr: float = 0.01,
    momentum: float = 0.9,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> NoiseTable:
    """Train every (init, clip, noise off/on, seed) net at once and return the table of test accuracies.

    Defaults: the deep MLP (6 ReLU layers of 100), SGD with momentum, 150 steps, eta = 0.03 (the
    lectures list 0.01, 0.3 and 1.0 for long runs; in 150 steps 0.01 has not yet broken a zero
    init's symmetry, and 0.3 already hurts the He net).
    """
    if isinstance(inits, str) or not inits:
        raise ValueError(f"inits must be a non-empty sequence of {', '.join(INITS)}, got {shown(inits)}")
    inits = tuple(check_choice("inits", i, INITS) for i in inits)
    if isinstance(clips, (str, float, int)) or clips is None or not clips:
        raise ValueError(f"clips must be a non-empty sequence of clipping norms (None: no clipping), got {shown(clips)}")
    clips = tuple(None if c is None else float(check_positive("clips", c)) for c in clips)
    eta = float(check_positive("eta", eta))
    seeds = check_int("seeds", seeds, 1)
    steps = check_int("steps", steps, 1)
    check_range("momentum", momentum, 0.0, 1.0, high_inclusive=False)
    data = load_cifar10(device=device) if data is None else data
    cells = [(init, clip, noisy, s) for init in inits for clip in clips for noisy in (False, True) for s in range(seeds)]
    nets = [build_model("deep_mlp", depth=depth, width=width, init=init, seed=seed + s) for init, _c, _n, s in cells]
    etas = np.array([eta if noisy else 0.0 for _i, _c, noisy, _s in cells])
    norms = np.array([NO_CLIP if clip is None else clip for _i, clip, _n, _s in cells])
    transform = chain(clip_by_norm(norms), annealed_noise(etas, seed=seed))
    trainer = ManyTrainer(nets, data, optimizer="momentum", lr=lr, momentum=momentum, batch_size=batch_size, seed=seed,
                          val_every=0, divergence_factor=None, transform=transform, device=device)
    trainer.run(steps)
    _loss, acc = trainer.evaluate("test")
    lecture = {(i, c): (a, b) for i, c, a, b in LECTURE_NOISE_TABLE}
    rows = []
    for init in inits:
        for clip in clips:
            pick = [k for k, (i, c, _n, _s) in enumerate(cells) if (i, c) == (init, clip)]
            off = np.array([acc[k] for k in pick if not cells[k][2]])
            on = np.array([acc[k] for k in pick if cells[k][2]])
            rows.append(NoiseRow(init, clip, off, on, lecture.get((init, clip))))
    return NoiseTable(tuple(rows), eta, steps, depth, width)


__all__ = ["LECTURE_NOISE_TABLE", "NoiseRow", "NoiseTable", "gradient_noise_table"]
