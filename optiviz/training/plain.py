"""A plain minibatch SGD loop for the lecture demos that compare inputs or test-time rules.

Why not Trainer: these demos feed tensors the CIFAR10 object never holds (raw [0, 255] pixels,
mean-subtracted ones) and want nothing of the trainer's probes, records or aborts; a dozen lines
keep what they measure visible. Deterministic for a seed (the batch order and dropout masks come
from private generators).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from optiviz._validate import check_int, check_positive, check_range, shown


def fit(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 1,
    steps: int | None = None,
    lr: float = 0.01,
    momentum: float = 0.9,
    batch_size: int = 128,
    seed: int = 0,
    param_groups: list[dict] | None = None,
) -> list[float]:
    """Train `net` in place with SGD + momentum on cross-entropy; return the loss of every step.

    param_groups: torch.optim parameter groups (e.g. pretrained layers at a tenth of the lr; a
    group without "lr" uses `lr`); default: every parameter of `net` at `lr`.

    `steps` (if given) caps the number of steps. A non-finite loss stops the run there (the rest of
    the budget would be spent on NaNs); the returned list then ends with that loss.
    """
    if not isinstance(net, nn.Module):
        raise ValueError(f"net must be a torch.nn.Module, got {shown(net)}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError("x and y must be tensors with the same, non-zero number of rows")
    epochs = check_int("epochs", epochs, 1)
    if steps is not None:
        steps = check_int("steps", steps, 1)
    check_positive("lr", lr)
    check_range("momentum", momentum, 0.0, 1.0, high_inclusive=False)
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if hasattr(m, "generator"):
            m.generator = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.SGD(net.parameters() if param_groups is None else param_groups, lr=float(lr),
                          momentum=float(momentum))
    net.train()
    losses: list[float] = []
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            losses.append(value)
            if not math.isfinite(value) or (steps is not None and len(losses) >= steps):
                net.eval()
                return losses
    net.eval()
    return losses


@torch.no_grad()
def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose arg-max matches y."""
    return float((logits.argmax(dim=1) == y).double().mean())


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits of `net` on x in its current mode, in chunks."""
    batch_size = check_int("batch_size", batch_size, 1)
    return torch.cat([net(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
