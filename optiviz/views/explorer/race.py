"""What one explorer run has drawn so far, as plain data: series, change markers, statuses.

`RaceSeries` is the explorer controller's record of a run (no widgets): per racing optimizer a
path, a loss curve and a step-length curve (`SeriesBuffer`s, so a frame costs the same at step
1,000 and 1,000,000), the change markers (`Markers`) and what the legend says. A restart builds a
new one, so nothing of an old run can leak into the next.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from optiviz.engine.simulator import CONVERGED, DIVERGED
from optiviz.stream.series import Markers, SeriesBuffer

LOSS_FLOOR = 1e-30  # log axes cannot show 0: an exactly converged run sits on the floor
SERIES = ("path", "loss", "len")
# What one run holds per optimizer and series, whatever its length (SeriesBuffer's max_rows): past
# it the history is decimated evenly in step, the first HEAD_ROWS steps kept as they came (the
# zigzags at the start), the newest exact; about 2 MB per optimizer in all (bench_memory.py).
HISTORY_ROWS = 1 << 15
HEAD_ROWS = 1 << 12
MAX_MARKERS = 1000  # change markers kept per optimizer (the newest)


def trajectory_view(buf: SeriesBuffer, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """A decimated float32 copy of a path, dense where runs move most: at the start.

    An even stride over 100,000 steps would keep one point of the first hundred, where the
    zigzags the lectures talk about happen; half the points here are spaced evenly in log(step)
    and half evenly in step (picked by step, so a history decimated past HISTORY_ROWS reads the
    same), and the newest point is always last. O(max_points log len), like SeriesBuffer.view.
    """
    n = len(buf)
    if n < max_points:  # everything held, plus the newest sample if the buffer keeps it aside
        return buf.view(max_points)
    steps, values = buf.arrays()
    last_step, last_xy = buf.last
    half = max_points // 2
    span = last_step - steps[0] + 1.0
    targets = np.concatenate([steps[0] - 1.0 + np.geomspace(1.0, span, max_points - half - 1),
                              np.linspace(steps[0], last_step, half)])
    idx = np.unique(np.searchsorted(steps, targets, side="left").clip(0, n - 1))
    out_s, out_v = steps[idx], values[idx]
    if out_s[-1] < last_step:
        out_s, out_v = np.append(out_s, last_step), np.vstack([out_v, last_xy])
    return out_s.astype(np.float32), out_v.astype(np.float32)


RUNNING_TEXT = "running"


def status_texts(optimizers: Sequence[str], status: np.ndarray, converged_at: np.ndarray,
                 diverged_at: np.ndarray, heads: np.ndarray | None = None,
                 domain: tuple[tuple[float, float], tuple[float, float]] | None = None) -> dict[str, str]:
    """What the legend says per optimizer: "running", "running, off the plot" (a run heading out
    that has not diverged: it may still come back), "converged at step N", "diverged at step N"."""
    out = {}
    for k, o in enumerate(optimizers):
        if int(status[k]) == DIVERGED:
            out[o] = f"diverged at step {int(diverged_at[k])}"
        elif int(status[k]) == CONVERGED:
            out[o] = f"converged at step {int(converged_at[k])}"
        elif heads is not None and domain is not None and not _on_plot(heads[k], domain):
            out[o] = f"{RUNNING_TEXT}, off the plot"
        else:
            out[o] = RUNNING_TEXT
    return out


def _on_plot(xy: np.ndarray, domain: tuple[tuple[float, float], tuple[float, float]]) -> bool:
    (x0, x1), (y0, y1) = domain
    return bool(x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1)


class RaceSeries:
    """Series, markers and statuses of one run; `extend(record)` folds in a SimRecord."""

    def __init__(self, optimizers: Sequence[str], x0: np.ndarray, loss0: np.ndarray, *, f_ref: float,
                 loss_log: bool, statuses: dict[str, str],
                 domain: tuple[tuple[float, float], tuple[float, float]] | None = None) -> None:
        self.optimizers = tuple(optimizers)
        self.domain = domain  # the plot's extent: a run outside it reads "running, off the plot"
        self.f_ref = float(f_ref)
        self.loss_log = bool(loss_log)  # unbounded surfaces (no f_min): a linear loss axis
        bounded = dict(max_rows=HISTORY_ROWS, keep_first=HEAD_ROWS)
        self.buffers: dict[str, dict[str, SeriesBuffer]] = {
            "path": {o: SeriesBuffer(2, **bounded) for o in self.optimizers},
            "loss": {o: SeriesBuffer(minmax=True, **bounded) for o in self.optimizers},
            "len": {o: SeriesBuffer(minmax=True, **bounded) for o in self.optimizers},
        }
        self.markers = {o: Markers(MAX_MARKERS) for o in self.optimizers}
        self.statuses = dict(statuses)
        for k, o in enumerate(self.optimizers):
            self.buffers["path"][o].append(0, np.asarray(x0[k], dtype=np.float64))
            self.buffers["loss"][o].append(0, self._excess(np.float64(loss0[k])))

    def _excess(self, loss: Any) -> Any:
        """What the loss axis shows: loss - f* above a floor on a log axis, else the loss itself."""
        return np.maximum(loss - self.f_ref, LOSS_FLOOR) if self.loss_log else loss

    def extend(self, rec: Any) -> None:
        """Append a SimRecord; a diverged row's lines stop at its last finite point."""
        steps = rec.steps
        for k, o in enumerate(self.optimizers):
            d = int(rec.diverged_at[k])
            keep = steps < d if d >= 0 else slice(None)
            s = steps[keep]
            if len(s) == 0:
                continue
            self.buffers["path"][o].extend(s, rec.points[keep, k].astype(np.float64))
            self.buffers["loss"][o].extend(s, self._excess(rec.loss[keep, k].astype(np.float64)))
            self.buffers["len"][o].extend(s, np.maximum(rec.step_length[keep, k].astype(np.float64), LOSS_FLOOR))
        heads = rec.points[-1] if len(steps) else None
        self.statuses = status_texts(self.optimizers, rec.status, rec.converged_at, rec.diverged_at, heads, self.domain)

    # ---- what a frame draws ------------------------------------------------------------------
    def lengths(self, kind: str) -> tuple[int, ...]:
        """Samples per optimizer in one series: a frame redraws a panel only when these change."""
        return tuple(self.buffers[kind][o].samples for o in self.optimizers)

    def rows(self, kind: str, max_points: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Decimated float32 (x, y) per optimizer: path points, or (step, value) of a curve."""
        if kind == "path":
            return [(x, y) for _, x, y in self.path_rows(max_points)]
        return [self.buffers[kind][o].view(max_points) for o in self.optimizers]

    def path_rows(self, max_points: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(steps, x, y) float32 per optimizer: each path decimated as trajectory_view does."""
        out = []
        for o in self.optimizers:
            s, v = trajectory_view(self.buffers["path"][o], max_points)
            out.append((s, v[:, 0], v[:, 1]))
        return out

    def path_since(self, steps: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(steps, x, y) float32 per optimizer of every held path point from that optimizer's step on."""
        out = []
        for o, step in zip(self.optimizers, steps):
            s, v = self.buffers["path"][o].since(step)
            out.append((s, v[:, 0], v[:, 1]))
        return out

    def head(self, optimizer: str) -> tuple[float, float]:
        _step, xy = self.buffers["path"][optimizer].last
        return float(xy[0]), float(xy[1])

    def last_loss(self, optimizer: str) -> float:
        """The newest loss as the surface gives it (f* added back on a log axis)."""
        value = self.buffers["loss"][optimizer].last[1]
        return value + self.f_ref if self.loss_log else value

    def marker_signature(self) -> tuple[tuple[int, int], ...]:
        """Changes when a marker is added or the loss at a marker's step arrives (a frame later)."""
        return tuple((self.markers[o].added, int(self.buffers["loss"][o].last[0] >= self.markers[o].last[0]))
                     for o in self.optimizers if len(self.markers[o]))

    def marker_points(self, max_markers: int = 20) -> list[tuple[str, float, float, str]]:
        """(optimizer, step, loss at that step, label) of the newest markers, per optimizer."""
        out = []
        for o in self.optimizers:
            steps, labels = self.markers[o].view(max_markers)
            if not len(steps):
                continue
            loss = self.buffers["loss"][o]
            for s, label in zip(steps, labels):  # the loss at the marker's step (the newest, if not yet run)
                value = loss.value_at(max(float(s), 0.0))
                out.append((o, float(s), float(loss.last[1] if value is None else value), label))
        return out

    @property
    def finished(self) -> bool:
        """Every optimizer converged or diverged (as far as the records drawn so far say)."""
        return not any(s.startswith(RUNNING_TEXT) for s in self.statuses.values())


__all__ = ["RaceSeries", "trajectory_view", "status_texts", "RUNNING_TEXT", "LOSS_FLOOR", "SERIES", "HISTORY_ROWS",
           "HEAD_ROWS", "MAX_MARKERS"]
