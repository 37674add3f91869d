"""Batch norm's noise (week 3): normalizing by a batch's statistics regularizes, less as the batch grows.

In training, batch norm normalizes each example by the mean and variance of the examples it is
batched with, so the same image is shifted a little differently every step: noise that works
against memorizing the training set. The smaller that batch, the noisier its statistics (their
error shrinks like 1 / sqrt(batch)), and the smaller the train - validation gap.

How it is measured: the same net (an MLP with batch norm, same init, same minibatches of
`batch_size`, same lr and steps) with batch norm computing its statistics over groups of
`bn_batch` examples of each minibatch ("ghost batches", Hoffer et al. 2017). Changing the
minibatch itself would change the gradient's noise and the number of steps too; with ghost
batches only batch norm's noise changes. bn_batch = batch_size is ordinary batch norm.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from optiviz._validate import check_int, shown
from optiviz.training.data import CIFAR10, load_cifar10
from optiviz.training.models import build_model
from optiviz.training.plain import accuracy, fit, predict


class GhostBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics come from groups of `ghost` rows of the batch.

    Running statistics (used in eval mode) are updated once per batch with the batch mean and the
    mean of the groups' unbiased variances. A last group of one row joins the group before it.
    """

    def __init__(self, num_features: int, ghost: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.ghost = check_int("bn_batch", ghost, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if not self.training or b <= self.ghost:
            return super().forward(x)
        g = self.ghost
        k, r = divmod(b, g)
        if r == 1:
            k, r = k - 1, g + 1
        groups = ([x[:k * g].view(k, g, x.shape[1])] if k else []) + ([x[k * g:].unsqueeze(0)] if r else [])
        out, means, variances = [], [], []
        for part in groups:
            var, mean = torch.var_mean(part, dim=1, keepdim=True, correction=0)
            out.append(((part - mean) / torch.sqrt(var + self.eps)).reshape(-1, x.shape[1]))
            means.append(mean.reshape(-1, x.shape[1]))
            variances.append((var * part.shape[1] / (part.shape[1] - 1)).reshape(-1, x.shape[1]))
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(x.detach().mean(dim=0), m)
            self.running_var.lerp_(torch.cat(variances).detach().mean(dim=0), m)
        return torch.cat(out) * self.weight + self.bias


def ghost_batch_norm(net: nn.Module, bn_batch: int) -> nn.Module:
    """Replace every BatchNorm1d child of `net` by a GhostBatchNorm1d over groups of bn_batch (in place)."""
    for name, module in list(net.named_children()):
        if isinstance(module, nn.BatchNorm1d) and not isinstance(module, GhostBatchNorm1d):
            ghost = GhostBatchNorm1d(module.num_features, bn_batch, eps=module.eps, momentum=module.momentum)
            ghost.load_state_dict(module.state_dict())
            setattr(net, name, ghost)
    return net


@dataclass(frozen=True)
class BatchNormNoiseRow:
    bn_batch: int | None  # None: no batch norm (the reference)
    train_acc: float  # eval mode, on the whole training set
    val_acc: float

    @property
    def gap(self) -> float:
        return self.train_acc - self.val_acc

    @property
    def label(self) -> str:
        return "no batch norm" if self.bn_batch is None else f"batch norm over {self.bn_batch}"


@dataclass(frozen=True)
class BatchNormNoise:
    rows: tuple[BatchNormNoiseRow, ...]
    batch_size: int
    epochs: int

    def row(self, bn_batch: int | None) -> BatchNormNoiseRow:
        for r in self.rows:
            if r.bn_batch == bn_batch:
                return r
        raise ValueError(f"no row for bn_batch={bn_batch!r}; rows: {', '.join(r.label for r in self.rows)}")

    def table(self) -> str:
        lines = [f"{'':24} {'train acc':>9} {'val acc':>8} {'gap':>7}"]
        for r in self.rows:
            lines.append(f"{r.label:<24} {r.train_acc:>9.3f} {r.val_acc:>8.3f} {r.gap:>+7.3f}")
        lines.append(f"minibatch {self.batch_size}, {self.epochs} epochs, same init and batches in every row")
        return "\n".join(lines)


def batchnorm_noise(
    data: CIFAR10 | None = None,
    *,
    bn_batches: Sequence[int] = (4, 16, 128),
    batch_size: int = 128,
    epochs: int = 15,
    n_train: int | None = 1000,
    width: int = 128,
    depth: int = 3,
    lr: float = 0.01,
    reference: bool = True,
    seed: int = 0,
) -> BatchNormNoise:
    """Train the same batch-norm MLP with each bn_batch (and, with `reference`, without batch norm);
    train and validation accuracy and their gap per row. n_train: a small training set, so the net
    can memorize it and the gap shows (None: all of `data`)."""
    if isinstance(bn_batches, (str, int)) or not bn_batches:
        raise ValueError(f"bn_batches must be a non-empty sequence of group sizes, got {shown(bn_batches)}")
    batch_size = check_int("batch_size", batch_size, 2)
    bn_batches = tuple(check_int("bn_batches", b, 2, batch_size) for b in bn_batches)
    epochs = check_int("epochs", epochs, 1)
    data = load_cifar10(device="cpu") if data is None else data.to("cpu")
    if n_train is not None:
        data = data.subset(check_int("n_train", n_train, 1))
    rows = []
    for bn_batch in ((None,) if reference else ()) + bn_batches:
        net = build_model("mlp", depth=depth, width=width, batch_norm=bn_batch is not None, seed=seed)
        if bn_batch is not None and bn_batch < batch_size:
            ghost_batch_norm(net, bn_batch)
        fit(net, data.x_train, data.y_train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
        rows.append(BatchNormNoiseRow(bn_batch, accuracy(predict(net, data.x_train), data.y_train),
                                      accuracy(predict(net, data.x_val), data.y_val)))
    return BatchNormNoise(tuple(rows), batch_size, epochs)


__all__ = ["GhostBatchNorm1d", "ghost_batch_norm", "BatchNormNoiseRow", "BatchNormNoise", "batchnorm_noise"]
