"""Preprocessing (CSE176): raw [0, 255] pixels vs mean-subtracted vs per-channel standardized inputs.

Why it matters: the first layer's pre-activations scale with the inputs, so raw pixels (mean ~120,
std ~60) make the loss hundreds of times more sensitive to a small change of the first weights
than standardized ones (mean 0, std 1): the learning rate that trains one diverges on the other,
and within a fixed budget the raw net gets much less done. Not subtracting the mean has a second
cost, the zig-zag: a layer fed all-positive inputs h (raw pixels, or a sigmoid layer's outputs)
gets, per example, the weight gradient delta_j * h for output unit j, so every entry of unit j's
gradient row has the sign of delta_j; an update can only move all of a unit's weights up or all
down, and reaching weights of mixed signs takes a zig-zag path.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from optiviz._validate import check_choice, check_int, check_positive, shown
from optiviz.training.data import CIFAR10, load_cifar10
from optiviz.training.models import build_model
from optiviz.training.plain import accuracy, fit, predict

PREPROCESSING = ("raw", "mean_subtracted", "standardized")


def preprocess(data: CIFAR10, kind: str) -> dict[str, torch.Tensor]:
    """The train / val inputs as `kind`: raw [0, 255], minus the training per-channel mean, or standardized (the loader's)."""
    kind = check_choice("kind", kind, PREPROCESSING)
    mean = torch.tensor(data.mean).view(1, 3, 1, 1)
    std = torch.tensor(data.std).view(1, 3, 1, 1)
    out = {}
    for split, x in (("train", data.x_train), ("val", data.x_val)):
        x = x.cpu()
        if kind == "raw":
            x = (x * std + mean) * 255.0
        elif kind == "mean_subtracted":
            x = x * std * 255.0
        out[split] = x
    return out


@dataclass(frozen=True)
class PreprocessingRow:
    kind: str
    input_mean: float
    input_std: float
    sensitivity: float  # mean |L(W + d) - L(W)| for first-layer perturbations d ~ N(0, sigma^2), at init
    final_loss: dict[float, float]  # lr -> mean training loss of the last tenth of the steps (inf: diverged)
    val_acc: dict[float, float]  # lr -> validation accuracy after the budget

    @property
    def best_lr(self) -> float:
        return max(self.val_acc, key=self.val_acc.__getitem__)

    @property
    def best_acc(self) -> float:
        """Validation accuracy at the best learning rate: what the budget bought."""
        return self.val_acc[self.best_lr]


@dataclass(frozen=True)
class PreprocessingComparison:
    rows: dict[str, PreprocessingRow]
    lrs: tuple[float, ...]
    steps: int
    sigma: float

    def table(self) -> str:
        head = "inputs           mean     std  sensitivity  " + "  ".join(f"acc@{lr:g}" for lr in self.lrs)
        lines = [head]
        for r in self.rows.values():
            accs = "  ".join(f"{r.val_acc[lr]:>{len(f'acc@{lr:g}')}.3f}" for lr in self.lrs)
            lines.append(f"{r.kind:<15} {r.input_mean:6.1f} {r.input_std:7.2f}  {r.sensitivity:11.3g}  {accs}")
        return "\n".join(lines)


def loss_sensitivity(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sigma: float = 1e-3, draws: int = 8, seed: int = 0) -> float:
    """Mean |L(W1 + d) - L(W1)| over `draws` Gaussian perturbations d (std sigma) of the first weight matrix."""
    check_positive("sigma", sigma)
    draws = check_int("draws", draws, 1)
    first = next(m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    gen = torch.Generator().manual_seed(check_int("seed", seed))
    with torch.no_grad():
        base = float(F.cross_entropy(net(x), y))
        w0 = first.weight.clone()
        diffs = []
        for _ in range(draws):
            first.weight.copy_(w0 + sigma * torch.randn(w0.shape, generator=gen))
            diffs.append(abs(float(F.cross_entropy(net(x), y)) - base))
        first.weight.copy_(w0)
    return float(np.mean(diffs))


def compare_preprocessing(
    data: CIFAR10 | None = None,
    *,
    lrs: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2),
    steps: int = 100,
    width: int = 50,
    n_train: int | None = None,
    sigma: float = 1e-3,
    seed: int = 0,
) -> PreprocessingComparison:
    """Train the lectures' 2-layer net on each preprocessing at each lr for `steps` steps (same init, same batches).

    Why: side by side, the standardized inputs train at the usual learning rates while raw pixels
    need a far smaller one (and still lag), and the loss's sensitivity to the first layer's weights
    at initialization says why.
    """
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, Sequence) or not lrs:
        raise ValueError(f"lrs must be a non-empty sequence of learning rates, got {shown(lrs)}")
    lrs = tuple(float(check_positive("lrs", lr)) for lr in lrs)
    steps = check_int("steps", steps, 1)
    width = check_int("width", width, 1)
    check_positive("sigma", sigma)
    seed = check_int("seed", seed)
    data = load_cifar10(device="cpu") if data is None else data.to("cpu")
    if n_train is not None:
        data = data.subset(check_int("n_train", n_train, 1))
    rows = {}
    for kind in PREPROCESSING:
        x = preprocess(data, kind)
        probe = build_model("mlp", width=width, seed=seed)
        sens = loss_sensitivity(probe, x["train"][:500], data.y_train[:500], sigma=sigma, seed=seed)
        final, acc = {}, {}
        for lr in lrs:
            net = build_model("mlp", width=width, seed=seed)
            losses = fit(net, x["train"], data.y_train, epochs=10**6, steps=steps, lr=lr, seed=seed)
            tail = losses[-max(1, len(losses) // 10):]
            diverged = len(losses) < steps or not all(math.isfinite(v) for v in tail)
            final[lr] = math.inf if diverged else float(np.mean(tail))
            acc[lr] = 0.1 if diverged else accuracy(predict(net, x["val"]), data.y_val)
        rows[kind] = PreprocessingRow(kind, float(x["train"].mean()), float(x["train"].std()), sens, final, acc)
    return PreprocessingComparison(rows, lrs, steps, float(sigma))


@dataclass(frozen=True)
class SignShare:
    """Share of weight-gradient rows whose entries all share one sign, for inputs from each activation."""

    per_example: dict[str, float]  # activation -> share over (example, output unit) rows, batch size 1
    per_batch: dict[str, float]  # activation -> share over output units, gradient of a whole batch


def gradient_sign_share(x: torch.Tensor, y: torch.Tensor, *, hidden: int = 32, seed: int = 0) -> SignShare:
    """The zig-zag in numbers: fc2's weight-gradient rows when fc2 is fed sigmoid (all > 0) vs tanh (centred) outputs.

    Why: a row whose entries all share a sign can only move all of that unit's weights the same way.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError("x and y must be tensors with the same, non-zero number of rows")
    hidden = check_int("hidden", hidden, 2)
    per_example, per_batch = {}, {}
    x = x.reshape(x.shape[0], -1)
    for act in ("sigmoid", "tanh"):
        torch.manual_seed(check_int("seed", seed))
        fc1, fc2 = nn.Linear(x.shape[1], hidden), nn.Linear(hidden, 10)
        h = getattr(torch, act)(fc1(x)).detach()
        rows_same = []
        for i in range(x.shape[0]):
            fc2.zero_grad()
            F.cross_entropy(fc2(h[i:i + 1]), y[i:i + 1]).backward()
            g = fc2.weight.grad
            rows_same.append(((g > 0).all(dim=1) | (g < 0).all(dim=1)).double().mean().item())
        fc2.zero_grad()
        F.cross_entropy(fc2(h), y).backward()
        g = fc2.weight.grad
        per_example[act] = float(np.mean(rows_same))
        per_batch[act] = float(((g > 0).all(dim=1) | (g < 0).all(dim=1)).double().mean())
    return SignShare(per_example, per_batch)


def zigzag_path(*, centred: bool, steps: int = 200, lr: float = 0.05, seed: int = 0) -> tuple[np.ndarray, float]:
    """SGD on one linear unit w . x in 2D towards w* = (1, -1), inputs all positive or centred.

    Returns the path (steps + 1, 2) and the share of updates whose two components share a sign
    (1.0 for all-positive inputs: the path can only move along (+, +) or (-, -), a zig-zag).
    """
    steps = check_int("steps", steps, 1)
    check_positive("lr", lr)
    rng = np.random.default_rng(check_int("seed", seed))
    target = np.array([1.0, -1.0])
    w = np.zeros(2)
    path, same = [w.copy()], 0
    for _ in range(steps):
        xi = rng.uniform(0.1, 1.0, 2) if not centred else rng.uniform(-1.0, 1.0, 2)
        update = -lr * (w @ xi - target @ xi) * xi
        same += int(np.sign(update[0]) == np.sign(update[1]) and update[0] != 0)
        w = w + update
        path.append(w.copy())
    return np.asarray(path), same / steps
