"""A run as TensorBoard event files (one sub-folder per optimizer or trained run, so TensorBoard
overlays them), written with torch.utils.tensorboard (the tensorboard package, in the export extra)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from optiviz.export.deps import require
from optiviz.export.race import RaceTrack
from optiviz.export.records import HISTORY_STEPS


def _writer(logdir: Path, name: str) -> Any:
    require("tensorboard", "writing TensorBoard event files")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(logdir / name))


def write_race_events(track: RaceTrack, logdir: str) -> list[str]:
    """Per optimizer: loss, x and y at every recorded step. Returns the folders written."""
    root, out = Path(logdir), []
    for k, o in enumerate(track.optimizers):
        w = _writer(root, o)
        for i, step in enumerate(track.steps):
            for tag, value in (("loss", track.loss[k, i]), ("x", track.path[k, i, 0]), ("y", track.path[k, i, 1])):
                w.add_scalar(f"race/{tag}", float(value), int(step))
        w.close()
        out.append(str(root / o))
    return out


def write_history_events(histories: Mapping[str, Mapping[str, Any]], logdir: str) -> list[str]:
    """Per trained run: every history series at its own steps (train loss and lr per step,
    validation at val steps, epoch accuracies at epoch ends). Returns the folders written."""
    root, out = Path(logdir), []
    for label, history in histories.items():
        w = _writer(root, _folder(label))
        for name, step_key in HISTORY_STEPS.items():
            values, steps = np.asarray(history.get(name, ())), np.asarray(history.get(step_key, ()))
            for step, value in zip(steps[: len(values)], values):
                if np.isfinite(value):
                    w.add_scalar(f"train/{name}", float(value), int(step))
        w.close()
        out.append(str(root / _folder(label)))
    return out


def _folder(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in str(label)) or "run"


__all__ = ["write_race_events", "write_history_events"]
