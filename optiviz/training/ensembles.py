"""Ensembles as in the lectures' table: K independent nets, snapshots of one run, a moving average.

One batched run (optiviz.training.batched) trains K independently initialized nets at once; net 0
is the baseline, and its own trajectory gives the snapshots (copies of its weights at evenly spaced
steps) and the exponential moving average of its parameters (one extra copy, updated every step).
Then, on the test split:
  - true ensemble: average the K nets' predicted probabilities, or let them vote;
  - snapshots: the same two over the snapshots, plus averaging the snapshots' parameters into
    one net (this works for snapshots of one run, which stay in one basin, and almost never for
    independent nets);
  - the moving average of the parameters, which needs no snapshots at all.
The K nets share minibatches (that is what makes training them at once cheap), so they differ by
initialization and dropout only: a little less diverse than nets trained on separately shuffled data.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from optiviz._validate import check_int, check_range
from optiviz.training.batched import ManyTrainer, StackedNet
from optiviz.training.data import CIFAR10

# The lectures' table (VGGNet on CIFAR-10): (model, prediction, test accuracy)
LECTURE_ENSEMBLE_TABLE: tuple[tuple[str, str, float], ...] = (
    ("baseline, 10 epochs", "single model", 0.837),
    ("true ensemble of 10 models", "average predictions", 0.855),
    ("true ensemble of 10 models", "voting", 0.851),
    ("25 snapshots over 10 epochs", "average predictions", 0.865),
    ("25 snapshots over 10 epochs", "voting", 0.861),
    ("25 snapshots over 10 epochs", "parameter averaging", 0.864),
)
# row keys in table order, with the lecture's row each matches (None: not in the lecture's table)
ROW_KEYS = ("baseline", "ensemble_average", "ensemble_vote", "snapshot_average", "snapshot_vote", "snapshot_params",
            "ema")
_LECTURE_ROW = dict(zip(ROW_KEYS, (*range(6), None)))


@dataclass(frozen=True)
class EnsembleRow:
    """One row of the table: what was combined, how, its test accuracy and the lecture's number."""

    key: str
    model: str
    prediction: str
    test_acc: float
    lecture: float | None
    members: int


def snapshot_steps(total: int, snapshots: int, start: float = 0.5) -> list[int]:
    """Steps (counted in updates done) at which to copy the weights: evenly spaced over the part of
    the run after `start` (a fraction), the last at the end of the run."""
    total = check_int("total", total, 1)
    snapshots = check_int("snapshots", snapshots, 1)
    check_range("snapshot_from", start, 0.0, 1.0, high_inclusive=False)
    first = int(start * total)
    if snapshots > total - first:
        raise ValueError(f"snapshots must be in [1, {total - first}] (one per step at most over the last "
                         f"{total - first} of {total} steps), got {snapshots}")
    return [first + round((i + 1) * (total - first) / snapshots) for i in range(snapshots)]


def average_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(M, N, C) logits of M members -> (N,) classes of the averaged softmax probabilities."""
    return logits.softmax(dim=2).mean(dim=0).argmax(dim=1)


def vote(logits: torch.Tensor) -> torch.Tensor:
    """(M, N, C) logits -> (N,) majority class; ties go to the tied class with the higher mean probability."""
    m, n, c = logits.shape
    counts = torch.zeros(n, c, device=logits.device, dtype=torch.float64)
    counts.scatter_add_(1, logits.argmax(dim=2).T, torch.ones(n, m, device=logits.device, dtype=torch.float64))
    return (counts + 0.5 * logits.softmax(dim=2).mean(dim=0).double()).argmax(dim=1)


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Mean of float tensors over several state dicts (parameters and batch-norm statistics); integer
    buffers (batch counts) are taken from the last."""
    out = {}
    for key, last in states[-1].items():
        out[key] = torch.stack([s[key] for s in states]).mean(dim=0) if last.is_floating_point() else last.clone()
    return out


class ParameterEMA:
    """One extra copy of a net's state: ema = d * ema + (1 - d) * current after every update.

    d = min(decay, (1 + t) / (10 + t)) at update t (TensorFlow's ExponentialMovingAverage with
    num_updates), so the average is not dragged towards the initial weights early in short runs.
    """

    def __init__(self, state: dict[str, torch.Tensor], decay: float = 0.99) -> None:
        self.decay = float(check_range("ema_decay", decay, 0.0, 1.0, high_inclusive=False))
        self.state = {k: v.detach().clone() for k, v in state.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self, state: dict[str, torch.Tensor]) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in state.items():
            if value.is_floating_point():
                self.state[key].lerp_(value.detach(), 1.0 - d)
            else:
                self.state[key].copy_(value)
        self.updates += 1


def iter_ensemble_table(
    model: str = "mlp",
    data: CIFAR10 | None = None,
    *,
    k: int = 10,
    epochs: int = 10,
    snapshots: int = 25,
    snapshot_from: float = 0.5,
    ema_decay: float = 0.99,
    optimizer: str = "momentum",
    lr: float = 0.01,
    momentum: float | None = 0.9,
    weight_decay: float = 1e-3,
    dropout: float | None = None,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: Callable[[int, int], Any] | None = None,
    **model_kwargs: Any,
) -> Iterator[EnsembleRow]:
    """The table's rows as a generator, in ROW_KEYS order, each as soon as it is computed.

    Training (all K nets at once, net 0 the baseline, `snapshots` snapshots of net 0 spread over the
    run after the fraction `snapshot_from`, and its parameter EMA) comes first; `progress(step,
    total)` is called after every update meanwhile, and returning False from it stops the training
    and ends the generator with no rows (a widget's stop button). Keywords are ManyTrainer's
    (model keywords too).
    """
    k = check_int("k", k, 1)
    epochs = check_int("epochs", epochs, 1)
    trainer = ManyTrainer(model, data, k=k, optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                          dropout=dropout, batch_size=batch_size, seed=seed, device=device, divergence_factor=None,
                          val_every=0, **model_kwargs)
    total = epochs * trainer.steps_per_epoch
    at = set(snapshot_steps(total, snapshots, snapshot_from))
    ema = ParameterEMA(trainer.state_of(0), ema_decay)
    kept: list[dict[str, torch.Tensor]] = []

    stopped = False

    def after_step(tr: ManyTrainer) -> bool:
        nonlocal stopped
        if tr.live[:1].tolist() == [0]:  # net 0 is row 0 while it trains (a non-finite loss would freeze it)
            ema.update({key: v[0] for key, v in tr.net.state.items()})
        if tr.step_count in at:
            kept.append(tr.state_of(0))
        if progress is not None and progress(tr.step_count, total) is False:
            stopped = True
        return not stopped

    trainer.run(steps=total, step_callback=after_step)
    if stopped:
        return
    x, y = trainer.data.split("test")
    template, dropout_p = trainer.net.template, trainer.per_model["dropout"][:1]

    def acc(pred: torch.Tensor) -> float:
        return float((pred == y).double().mean()) if len(y) else float("nan")

    def row(key: str, model_text: str, prediction: str, pred: torch.Tensor, members: int) -> EnsembleRow:
        i = _LECTURE_ROW[key]
        return EnsembleRow(key, model_text, prediction, acc(pred), None if i is None else LECTURE_ENSEMBLE_TABLE[i][2],
                           members)

    with torch.no_grad():
        logits = trainer.logits(x)  # (K, N, C)
        yield row("baseline", f"baseline, {epochs} epochs", "single model", logits[0].argmax(dim=1), 1)
        name = f"true ensemble of {k} models"
        yield row("ensemble_average", name, "average predictions", average_probabilities(logits), k)
        yield row("ensemble_vote", name, "voting", vote(logits), k)
        stacked = {key: torch.stack([s[key] for s in kept]) for key in kept[0]}
        snap = StackedNet.from_state(template, stacked, dropout_p).logits(x)
        name = f"{len(kept)} snapshots over {epochs} epochs"
        yield row("snapshot_average", name, "average predictions", average_probabilities(snap), len(kept))
        yield row("snapshot_vote", name, "voting", vote(snap), len(kept))
        mean = {key: v.unsqueeze(0) for key, v in average_states(kept).items()}
        averaged = StackedNet.from_state(template, mean, dropout_p).logits(x)[0]
        yield row("snapshot_params", name, "parameter averaging", averaged.argmax(dim=1), len(kept))
        moving = {key: v.unsqueeze(0) for key, v in ema.state.items()}
        ema_logits = StackedNet.from_state(template, moving, dropout_p).logits(x)[0]
        yield row("ema", f"moving average of parameters (decay {ema.decay:g})", "parameter EMA",
                  ema_logits.argmax(dim=1), 1)


def ensemble_table(model: str = "mlp", data: CIFAR10 | None = None, **kwargs: Any) -> list[EnsembleRow]:
    """Every row of the lectures' ensemble table (plus the parameter EMA), computed on `data`.

    Defaults follow the lecture's shape with the 2-layer net: 10 nets, 10 epochs, 25 snapshots; the
    bundled subset makes this a few seconds on 2 CPU cores. See iter_ensemble_table for keywords.
    """
    return list(iter_ensemble_table(model, data, **kwargs))


def table_text(rows: list[EnsembleRow]) -> str:
    """The rows as the lecture prints them, with its numbers alongside."""
    lines = [f"{'model':<44} {'prediction':<22} {'test acc':>8} {'lecture':>8}"]
    for r in rows:
        lecture = "" if r.lecture is None else f"{r.lecture:.3f}"
        lines.append(f"{r.model:<44} {r.prediction:<22} {r.test_acc:>8.3f} {lecture:>8}")
    return "\n".join(lines)


__all__ = ["LECTURE_ENSEMBLE_TABLE", "ROW_KEYS", "EnsembleRow", "ParameterEMA", "snapshot_steps",
           "average_probabilities", "vote", "average_states", "iter_ensemble_table", "ensemble_table", "table_text"]
