"""The dashboard's drawing cache: one set of SeriesBuffers per run, fed with the trainer's records.

Plain Python and numpy (no widgets): the dashboard's controller keeps them. The trainer's
records are the truth; these buffers only make drawing cheap (decimated float32
views whose cost does not grow with the run). After a rewind they are rebuilt from the restored
trainer, so what is drawn is always what the trainer's history says.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from optiviz.labels import change_label
from optiviz.stream.series import Markers, SeriesBuffer
from optiviz.training.records import StepRecord
from optiviz.training.trainer import Trainer


# What one run's drawing cache holds per series, however long it trains (SeriesBuffer's max_rows):
# past it a series is decimated evenly in step, its first rows kept as they came (the health
# checks read the first steps' loss), the newest exact. The trainer's own records are the truth.
STEP_ROWS = 1 << 15  # per-step series (loss, lr)
EVENT_ROWS = 1 << 12  # per-validation, per-epoch and per-probe series
MAX_MARKERS = 1000


class RunSeries:
    """Per-step, per-evaluation, per-epoch and per-probe series of one run, plus its change markers."""

    def __init__(self, layers: tuple[str, ...]) -> None:
        self.layers = layers
        width = max(1, len(layers))
        steps = dict(max_rows=STEP_ROWS, keep_first=min(1 << 10, STEP_ROWS // 4))
        events = dict(max_rows=EVENT_ROWS, keep_first=min(64, EVENT_ROWS // 4))
        self.loss = SeriesBuffer(minmax=True, **steps)  # train loss per step
        self.lr = SeriesBuffer(minmax=True, **steps)  # lr in use per step (schedule included)
        self.val = SeriesBuffer(2, **events)  # (val_loss, val_acc) at val_step
        self.epoch = SeriesBuffer(3, **events)  # (train_acc, epoch train loss, epoch) at epoch_step
        self.ratio = SeriesBuffer(width, **events)  # per-layer update/weight ratio at probe steps
        self.grad = SeriesBuffer(width, **events)  # per-layer gradient norm
        self.dead = SeriesBuffer(width, **events)  # per-layer dead / saturated fraction
        self.markers = Markers(MAX_MARKERS)  # control changes at the step they took effect
        self.images = 0  # training images seen (progress / throughput)

    def add(self, rec: StepRecord, batch_size: int) -> None:
        """Append what one step's record measured."""
        self.loss.append(rec.step, rec.loss)
        self.lr.append(rec.step, rec.lr)
        for name, value in rec.changes.items():
            self.markers.add(rec.step, change_label(name, value))
        ev = rec.eval
        if ev is not None:
            if np.isfinite(ev.val_acc):
                self.val.append(ev.step, (ev.val_loss, ev.val_acc))
            if np.isfinite(ev.train_acc):
                self.epoch.append(ev.step, (ev.train_acc, ev.train_loss, ev.epoch))
        if rec.probe is not None:
            self._add_probe(rec.probe)
        if rec.stop_reason is None:
            self.images += batch_size

    def _add_probe(self, p: Any) -> None:
        self.ratio.append(p.step, p.update_ratio)
        self.grad.append(p.step, p.grad_norm)
        self.dead.append(p.step, p.dead_fraction)

    def rebuild(self, trainer: Trainer) -> None:
        """Start over from the trainer's own records (after a rewind)."""
        for buf in (self.loss, self.lr, self.val, self.epoch, self.ratio, self.grad, self.dead):
            buf.clear()
        self.markers.clear()
        h = trainer.history
        self.loss.extend(h["step"], h["train_loss"])
        self.lr.extend(h["step"], h["lr"])
        self.val.extend(h["val_step"], np.stack([h["val_loss"], h["val_acc"]], axis=-1).reshape(-1, 2))
        self.epoch.extend(h["epoch_step"], np.stack([h["train_acc"], h["epoch_train_loss"], h["epoch"]],
                                                    axis=-1).reshape(-1, 3))
        for p in trainer.probe_records:
            self._add_probe(p)
        for step, name, value in trainer.events:
            self.markers.add(step, change_label(name, value))
        done = h["train_loss"][np.isfinite(h["grad_norm"])]
        self.images = len(done) * min(trainer.batch_size, trainer.n_train)

    def health_history(self) -> dict[str, np.ndarray]:
        """The trainer's history keys health.check_health reads, as views (no copies)."""
        _s, loss = self.loss.arrays()
        vs, val = self.val.arrays()
        es, ep = self.epoch.arrays()
        return {"train_loss": loss, "val_step": vs, "val_loss": val[:, 0], "val_acc": val[:, 1],
                "epoch_step": es, "train_acc": ep[:, 0], "epoch_train_loss": ep[:, 1]}

    @property
    def last_step(self) -> int:
        last = self.loss.last
        return -1 if last is None else int(last[0])


__all__ = ["RunSeries", "STEP_ROWS", "EVENT_ROWS", "MAX_MARKERS"]
