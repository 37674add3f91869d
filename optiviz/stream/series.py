"""Growing time series whose drawn view costs the same at step 1,000 and at step 1,000,000.

Views append every record they receive and redraw from `SeriesBuffer.view(max_points)`, so a
frame never sends more than `max_points` float32 rows, and building it never walks the whole
history: stride views pick evenly spaced indices, min/max views read a coarse pyramid of
per-block extrema kept up to date on append (amortized O(1) work per sample).

Non-finite values (a diverged loss) are stored as they came, because the history is the truth,
but never leave `view()`: by default rows holding any non-finite value are dropped (the line
ends at the last finite point); with `breaks=True` they become NaN, which bqplot draws as a
break in the path. Inf never reaches a mark either way.

Not thread-safe: one writer, and readers on the same thread. `LiveRunner` calls `publish` from
one thread at a time, so views that append and redraw inside `publish` need no lock.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from optiviz._validate import check_int

# Samples per leaf block of the min/max pyramid: the tail below one leaf is scanned directly,
# and the pyramid costs 2 / LEAF index rows per sample instead of 2.
LEAF = 16


class Growable:
    """Rows of shape `row` (() for numbers) in an array that doubles when full, so appends are
    amortized O(1). `data[:n]` are the rows in use; the owner writes rows and sets `n`."""

    def __init__(self, row: tuple[int, ...], dtype: Any, capacity: int) -> None:
        self.data = np.empty((max(capacity, 1), *row), dtype=dtype)
        self.n = 0

    def reserve(self, n: int) -> None:
        """Room for n rows (the rows in use kept)."""
        cap = self.data.shape[0]
        if n > cap:
            while cap < n:
                cap *= 2
            grown = np.empty((cap,) + self.data.shape[1:], dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown


def _min_key(v: np.ndarray) -> np.ndarray:
    """Non-finite values lose every comparison: a spike to inf must not hide the finite extremes."""
    return np.where(np.isfinite(v), v, np.inf)


def _max_key(v: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(v), v, -np.inf)


class _MinMaxPyramid:
    """Per-column argmin/argmax of aligned blocks of LEAF * 2**level samples.

    Level j holds one (argmin, argmax) index row per complete block; a block is added when its
    last sample arrives, built from its two children (or from LEAF samples at level 0), so the
    total work over n appends is O(n) and a query reads O(blocks asked for + log n) rows.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.lo: list[Growable] = []
        self.hi: list[Growable] = []
        self._cols = np.arange(width)

    def _level(self, j: int) -> tuple[Growable, Growable]:
        while len(self.lo) <= j:
            self.lo.append(Growable((self.width,), np.intp, 64))
            self.hi.append(Growable((self.width,), np.intp, 64))
        return self.lo[j], self.hi[j]

    def update(self, values: np.ndarray, n: int) -> None:
        """Add every block completed by the first n samples of `values` ((capacity, width))."""
        lo, hi = self._level(0)
        b0, b1 = lo.n, n // LEAF
        if b1 <= b0:
            return
        seg = values[b0 * LEAF : b1 * LEAF].reshape(b1 - b0, LEAF, self.width)
        offset = (np.arange(b0, b1) * LEAF)[:, None]
        self._push(lo, hi, b1, _min_key(seg).argmin(axis=1) + offset, _max_key(seg).argmax(axis=1) + offset)
        j = 1
        while True:
            clo, chi = self.lo[j - 1], self.hi[j - 1]
            lo, hi = self._level(j)
            b0, b1 = lo.n, clo.n // 2
            if b1 <= b0:
                return
            new_lo = self._pick(values, clo.data[2 * b0 : 2 * b1 : 2], clo.data[2 * b0 + 1 : 2 * b1 : 2], _min_key, np.less)
            new_hi = self._pick(values, chi.data[2 * b0 : 2 * b1 : 2], chi.data[2 * b0 + 1 : 2 * b1 : 2], _max_key, np.greater)
            self._push(lo, hi, b1, new_lo, new_hi)
            j += 1

    @staticmethod
    def _push(lo: Growable, hi: Growable, b1: int, new_lo: np.ndarray, new_hi: np.ndarray) -> None:
        lo.reserve(b1)
        hi.reserve(b1)
        lo.data[lo.n : b1] = new_lo
        hi.data[hi.n : b1] = new_hi
        lo.n = hi.n = b1

    def _pick(self, values: np.ndarray, left: np.ndarray, right: np.ndarray, key: Any, better: Any) -> np.ndarray:
        """Per column, the index of the better of two candidates; ties keep the earlier one."""
        lv, rv = key(values[left, self._cols]), key(values[right, self._cols])
        return np.where(better(rv, lv), right, left)

    def blocks(self, j: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Index rows (count, width) of the first `count` blocks at level j."""
        return self.lo[j].data[:count], self.hi[j].data[:count]

    def span(self, values: np.ndarray, start: int, stop: int, top: int) -> tuple[np.ndarray, np.ndarray]:
        """argmin/argmax rows (width,) over [start, stop) where start is aligned to LEAF * 2**top.

        The range is covered by at most one block per level below `top` plus fewer than LEAF raw
        samples, so this reads O(log n) rows whatever its length.
        """
        cand_lo: list[np.ndarray] = []
        cand_hi: list[np.ndarray] = []
        s = start
        for j in range(top - 1, -1, -1):
            size = LEAF << j
            if s + size <= stop:
                cand_lo.append(self.lo[j].data[s // size])
                cand_hi.append(self.hi[j].data[s // size])
                s += size
        if s < stop:
            raw = values[s:stop]
            cand_lo.append(_min_key(raw).argmin(axis=0) + s)
            cand_hi.append(_max_key(raw).argmax(axis=0) + s)
        los, his = np.stack(cand_lo), np.stack(cand_hi)
        best_lo = _min_key(values[los, self._cols]).argmin(axis=0)
        best_hi = _max_key(values[his, self._cols]).argmax(axis=0)
        return los[best_lo, self._cols], his[best_hi, self._cols]


class SeriesBuffer:
    """Append-only (step, values) history with O(max_points) decimated float32 views.

    width=None stores one scalar per step (a loss curve); width=k stores rows of k values
    ((x, y) points of a trajectory, one value per layer). minmax=True keeps a min/max pyramid
    so `view()` shows every spike of a long curve; leave it off for trajectories, where mixing
    the extremes of x and y would draw points that were never visited.

    Steps are stored as float64 and must be finite; values are stored as float64 as given.
    """

    def __init__(self, width: int | None = None, *, minmax: bool = False, capacity: int = 1024) -> None:
        if width is not None:
            width = check_int("width", width, 1)
        capacity = check_int("capacity", capacity, 1)
        self._width = width
        self._w = 1 if width is None else width
        self._step_rows = Growable((), np.float64, capacity)
        self._value_rows = Growable((self._w,), np.float64, capacity)
        self._steps, self._values = self._step_rows.data, self._value_rows.data  # what reads index
        self._n = 0
        self._pyramid = _MinMaxPyramid(self._w) if minmax else None

    # ---- writing ---------------------------------------------------------------------------
    @property
    def width(self) -> int | None:
        return self._width

    @property
    def minmax(self) -> bool:
        return self._pyramid is not None

    def __len__(self) -> int:
        return self._n

    def _reserve(self, n: int) -> None:
        if n <= self._steps.shape[0]:
            return
        for rows in (self._step_rows, self._value_rows):
            rows.n = self._n
            rows.reserve(n)
        self._steps, self._values = self._step_rows.data, self._value_rows.data

    def _row(self, values: Any) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        if self._width is None:
            if v.size != 1:
                raise ValueError(f"values must be one number for a series of width None, got shape {v.shape}")
            return v.reshape(1)
        if v.shape != (self._width,):
            raise ValueError(f"values must have shape ({self._width},), got {v.shape}")
        return v

    def append(self, step: float, values: Any) -> None:
        """Add one row: a number (width None) or `width` numbers. Amortized O(1)."""
        step = float(step)
        if not np.isfinite(step):
            raise ValueError(f"step must be finite, got {step!r}")
        row = self._row(values)
        n = self._n
        if n == self._steps.shape[0]:
            self._reserve(n + 1)
        self._steps[n] = step
        self._values[n] = row
        self._n = n + 1
        if self._pyramid is not None and self._n % LEAF == 0:
            self._pyramid.update(self._values, self._n)

    def extend(self, steps: Any, values: Any) -> None:
        """Add k rows at once: steps (k,), values (k,) for width None or (k, width)."""
        s = np.asarray(steps, dtype=np.float64).reshape(-1)
        v = np.asarray(values, dtype=np.float64)
        k = s.shape[0]
        expected = (k,) if self._width is None else (k, self._width)
        if v.shape != expected:
            raise ValueError(f"values must have shape {expected} for {k} steps, got {v.shape}")
        if k == 0:
            return
        if not np.all(np.isfinite(s)):
            raise ValueError("steps must be finite")
        n = self._n
        self._reserve(n + k)
        self._steps[n : n + k] = s
        self._values[n : n + k] = v.reshape(k, self._w)
        self._n = n + k
        if self._pyramid is not None:
            self._pyramid.update(self._values, self._n)

    def clear(self) -> None:
        """Forget everything (a restarted run) but keep the allocated capacity."""
        self._n = 0
        if self._pyramid is not None:
            self._pyramid = _MinMaxPyramid(self._w)

    # ---- reading ---------------------------------------------------------------------------
    @property
    def last(self) -> tuple[float, Any] | None:
        """(step, values) of the newest row, exactly as stored, or None when empty."""
        if self._n == 0:
            return None
        row = self._values[self._n - 1]
        return float(self._steps[self._n - 1]), (float(row[0]) if self._width is None else row.copy())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Read-only float64 views of the whole history (no copy): for export and tests, not drawing."""
        steps = self._steps[: self._n].view()
        values = self._values[: self._n, 0] if self._width is None else self._values[: self._n]
        values = values.view()
        steps.flags.writeable = values.flags.writeable = False
        return steps, values

    def view(self, max_points: int = 2000, *, breaks: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """A decimated float32 copy to draw: at most `max_points` rows, first and last always kept.

        Stride buffers pick evenly spaced rows (exactly max_points once longer than that).
        minmax buffers cut the history into buckets (aligned power-of-two blocks of the pyramid)
        and keep each bucket's min and max in time order, so spikes survive: between about
        max_points / 2 and max_points rows (fewer where a bucket's min and max coincide). With
        width > 1 each column's extremes are found separately and a bucket's two rows are drawn
        at its extreme steps, so a value may shift by less than a bucket (exact for width 1).
        Rows with a non-finite value are dropped, or with breaks=True set to NaN (per value).
        Cost is O(max_points * width + log len), never O(len).
        """
        if type(max_points) is not int or max_points < 2:  # the full check costs ~10 us a frame
            max_points = check_int("max_points", max_points, 2)
        n = self._n
        if n <= max_points:
            idx = np.arange(n)
            steps, values = self._steps[idx], self._values[idx]
        elif self._pyramid is not None and max_points >= 6:
            steps, values = self._minmax_rows(self._pyramid, n, max_points)
        else:
            idx = np.rint(np.linspace(0, n - 1, max_points)).astype(np.intp)
            steps, values = self._steps[idx], self._values[idx]
        return self._finish(steps, values, breaks)

    def _minmax_rows(self, pyr: _MinMaxPyramid, n: int, max_points: int) -> tuple[np.ndarray, np.ndarray]:
        buckets = (max_points - 2) // 2  # two rows each, plus the first and last rows
        if n < (LEAF // 2) * buckets:
            # Too short for leaf blocks to give enough buckets: scan it, n < 4 * max_points.
            lo, hi = self._scan_buckets(n, -(-n // buckets))
        else:
            j = 0
            while n // (LEAF << j) + 1 > buckets:
                j += 1
            size = LEAF << j
            full = n // size
            lo, hi = pyr.blocks(j, full)
            if full * size < n:
                tlo, thi = pyr.span(self._values, full * size, n, j)
                lo, hi = np.vstack([lo, tlo[None]]), np.vstack([hi, thi[None]])
        a, b = np.minimum(lo, hi), np.maximum(lo, hi)
        if self._w == 1:
            # buckets are consecutive, so 0, a0, b0, a1, b1, ..., n-1 is already sorted
            idx = np.empty(2 * len(a) + 2, dtype=np.intp)
            idx[0], idx[1:-1:2], idx[2:-1:2], idx[-1] = 0, a[:, 0], b[:, 0], n - 1
            idx = idx[np.concatenate(([True], idx[1:] != idx[:-1]))]
            return self._steps[idx], self._values[idx]
        cols = np.arange(self._w)
        k = a.shape[0]
        steps = np.empty(2 * k + 2)
        values = np.empty((2 * k + 2, self._w))
        steps[0], values[0] = self._steps[0], self._values[0]
        flat = self._values.reshape(-1)  # flat gathers are ~25% faster than values[a, cols]
        # (reducing the transposed copy is ~8x faster than a.min(axis=1) over short rows)
        steps[1:-1:2], values[1:-1:2] = self._steps[np.ascontiguousarray(a.T).min(axis=0)], flat[a * self._w + cols]
        steps[2:-1:2], values[2:-1:2] = self._steps[np.ascontiguousarray(b.T).max(axis=0)], flat[b * self._w + cols]
        steps[-1], values[-1] = self._steps[n - 1], self._values[n - 1]
        return steps, values

    def _scan_buckets(self, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """argmin/argmax rows of consecutive buckets of `size` samples, straight from the data."""
        k = -(-n // size)
        raw = self._values[:n]
        pad = ((0, k * size - n), (0, 0))
        key_lo = np.pad(_min_key(raw), pad, constant_values=np.inf).reshape(k, size, self._w)
        key_hi = np.pad(_max_key(raw), pad, constant_values=-np.inf).reshape(k, size, self._w)
        offset = (np.arange(k) * size)[:, None]  # ties pick the earliest sample: never padding
        return key_lo.argmin(axis=1) + offset, key_hi.argmax(axis=1) + offset

    def _finish(self, steps: np.ndarray, values: np.ndarray, breaks: bool) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore"):
            s32 = steps.astype(np.float32)
            v32 = values.astype(np.float32)  # a finite 1e39 overflows to inf here: caught below
        finite = np.isfinite(v32)
        keep = np.isfinite(s32)
        if breaks:
            v32[~finite] = np.nan
        else:
            keep &= finite.all(axis=1)
        if not keep.all():
            s32, v32 = s32[keep], v32[keep]
        if self._width is None:
            v32 = v32[:, 0]
        return np.ascontiguousarray(s32), np.ascontiguousarray(v32)


class Markers:
    """Events on a run's time axis ("lr 0.01 -> 0.1" at step 1200) that views draw on curves.

    Events are rare, so a plain list is enough; `view()` bounds what one frame sends.
    """

    def __init__(self) -> None:
        self._steps: list[float] = []
        self._labels: list[str] = []

    def add(self, step: float, label: str) -> None:
        step = float(step)
        if not np.isfinite(step):
            raise ValueError(f"step must be finite, got {step!r}")
        self._steps.append(step)
        self._labels.append(str(label))

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[tuple[float, str]]:
        return iter(zip(self._steps, self._labels))

    @property
    def last(self) -> tuple[float, str] | None:
        return (self._steps[-1], self._labels[-1]) if self._steps else None

    def clear(self) -> None:
        self._steps.clear()
        self._labels.clear()

    def view(self, max_markers: int = 100) -> tuple[np.ndarray, list[str]]:
        """The newest `max_markers` events: steps float32 and their labels, in order of arrival."""
        max_markers = check_int("max_markers", max_markers, 0)
        start = max(0, len(self._steps) - max_markers)
        return np.asarray(self._steps[start:], dtype=np.float32), list(self._labels[start:])


__all__ = ["SeriesBuffer", "Markers"]
