"""What the trainer emits: plain dataclasses of numbers and numpy arrays, nothing that needs torch or widgets."""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optiviz.training.probes import ProbeRecord

# history keys, by how often they get a value
STEP_KEYS = ("step", "train_loss", "lr", "grad_norm")
VAL_KEYS = ("val_step", "val_loss", "val_acc")
EPOCH_KEYS = ("epoch", "epoch_step", "train_acc", "epoch_train_loss", "test_loss", "test_acc")
HISTORY_KEYS = STEP_KEYS + VAL_KEYS + EPOCH_KEYS
_INT_KEYS = {"step", "val_step", "epoch", "epoch_step"}


@dataclass
class EvalRecord:
    """Evaluation after a step. `step` counts updates done; NaN marks what was not measured this time.

    train_loss / train_acc are running means over the minibatches of the epoch that just ended
    (training mode, dropout on), so they are free; the val and test numbers are in eval mode.
    """

    step: int
    epoch: int
    val_loss: float = float("nan")
    val_acc: float = float("nan")
    test_loss: float = float("nan")
    test_acc: float = float("nan")
    train_loss: float = float("nan")
    train_acc: float = float("nan")


@dataclass
class StepRecord:
    """One minibatch step. `step` is its 0-based index; `changes` are the control changes applied just before it.

    A step that tripped the divergence check has `stop_reason` set and made no update.
    grad_norm is the global L2 norm of the raw gradients, before clipping, sign or noise.
    """

    step: int
    epoch: int
    loss: float
    lr: float
    grad_norm: float
    changes: dict[str, Any] = field(default_factory=dict)
    probe: ProbeRecord | None = None
    eval: EvalRecord | None = None
    epoch_end: bool = False
    stop_reason: str | None = None


@dataclass
class TrainRun:
    """The outcome of a training run as data: history arrays, probe records, control events, why it stopped.

    `train()` and `Trainer.run()` return a `trainer.TrainedRun`, this plus the Trainer that made it."""

    history: dict[str, np.ndarray]
    probes: list[ProbeRecord]
    events: list[tuple[int, str, Any]]
    stop_reason: str | None
    config: dict[str, Any]

    @property
    def test_acc(self) -> float:
        """Test accuracy after the last completed epoch (NaN before the first)."""
        acc = self.history["test_acc"]
        return float(acc[-1]) if len(acc) else float("nan")

def new_history() -> dict[str, array]:
    """The trainer's growing history: one compact array per key, 8 bytes a value instead of a
    Python float's ~32 in a list (a long dashboard run appends four a step)."""
    return {k: array("q" if k in _INT_KEYS else "d") for k in HISTORY_KEYS}


def copy_history(history: dict[str, Any]) -> dict[str, array]:
    """A copy for a snapshot, or back from one (lists are taken too)."""
    return {k: array("q" if k in _INT_KEYS else "d", history.get(k, ())) for k in HISTORY_KEYS}


def history_arrays(history: dict[str, Any]) -> dict[str, np.ndarray]:
    """Copies as numpy arrays (a view of an array.array would stop it from growing)."""
    return {k: np.array(v, dtype=np.int64 if k in _INT_KEYS else np.float64, copy=True) for k, v in history.items()}
