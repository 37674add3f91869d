"""Records as tables for other tools: CSV (one row per step and series) or JSON (the same rows
with the run's settings), from a race (`RaceTrack`) or trainers' histories."""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from optiviz.export.race import RaceTrack

# per history series, the step column it is measured at (training/records.py's keys)
HISTORY_STEPS = {"train_loss": "step", "lr": "step", "grad_norm": "step", "val_loss": "val_step",
                 "val_acc": "val_step", "train_acc": "epoch_step", "epoch_train_loss": "epoch_step",
                 "test_loss": "epoch_step", "test_acc": "epoch_step"}


def race_rows(track: RaceTrack) -> list[dict[str, Any]]:
    """One row per optimizer and recorded step: optimizer, step, x, y, loss."""
    rows = []
    for k, o in enumerate(track.optimizers):
        for i, step in enumerate(track.steps):
            rows.append({"optimizer": o, "step": int(step), "x": float(track.path[k, i, 0]),
                         "y": float(track.path[k, i, 1]), "loss": float(track.loss[k, i])})
    return rows


def history_rows(histories: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Long format from trainers' histories: one row per run, series and step (run, series, step, value)."""
    rows = []
    for label, history in histories.items():
        for name, step_key in HISTORY_STEPS.items():
            values, steps = np.asarray(history.get(name, ())), np.asarray(history.get(step_key, ()))
            for step, value in zip(steps[: len(values)], values):
                rows.append({"run": label, "series": name, "step": int(step), "value": float(value)})
    return rows


def write_rows(rows: list[dict[str, Any]], path: str, meta: Mapping[str, Any] | None = None) -> str:
    """CSV or JSON by the file's suffix; JSON also carries `meta` (non-finite numbers become null)."""
    kind = str(path).rpartition(".")[2].lower()
    if kind == "csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
            writer.writeheader()
            writer.writerows(rows)
    elif kind == "json":
        with open(path, "w") as f:
            json.dump(_finite({"meta": dict(meta or {}), "records": rows}), f, allow_nan=False)
    else:
        raise ValueError(f"path must end in .csv or .json, got {path!r}")
    return str(path)


def track_meta(track: RaceTrack) -> dict[str, Any]:
    """What a race's JSON says about it: the surface, each optimizer's settings and outcome."""
    s = track.surface
    return {"surface": s.name, "title": s.title, "params": dict(getattr(s, "params", {}) or {}),
            "optimizers": {o: {"settings": track.labels.get(o, ""), "status": track.status.get(o, "")}
                           for o in track.optimizers}}


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


__all__ = ["race_rows", "history_rows", "write_rows", "track_meta", "HISTORY_STEPS"]
