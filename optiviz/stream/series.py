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

import collections
import itertools
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

    def reserve(self, n: int, limit: int | None = None) -> None:
        """Room for n rows (the rows in use kept); doubling stops at `limit` rows (when n fits it)."""
        cap = self.data.shape[0]
        if n > cap:
            while cap < n:
                cap *= 2
            if limit is not None:
                cap = max(n, min(cap, limit))
            grown = np.empty((cap,) + self.data.shape[1:], dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown


def even_indices(n: int, k: int) -> np.ndarray:
    """At most k indices into range(n), evenly spaced, the first and the last included, none twice
    (all of them when n <= k): how a series, a race's export frames or a seed cloud is thinned."""
    return np.unique(np.rint(np.linspace(0, n - 1, min(k, n))).astype(np.intp))


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


class _Cap:
    """What keeps a SeriesBuffer at most about `max_rows` rows over a run of any length.

    The first `head` samples are kept as they came. After them the history is decimated evenly in
    step: each retained row stands for a group of `group` samples (1 until the buffer first fills).
    When the buffer fills, the rows after the head are halved, and the group doubles for what comes
    next: a stride buffer keeps every other row (a sample every `group` from then on); a minmax
    buffer keeps, of each four rows, the lowest and the highest (by the first value, in time order:
    two rows a group), so every spike survives. The newest sample (and, for minmax, the extremes of
    the group still filling) is kept aside, exact: `last`, views and legends read it. A compaction
    costs O(max_rows) once per ~max_rows / 2 rows: amortized O(1) a sample.
    """

    def __init__(self, buf: SeriesBuffer, max_rows: int, head: int) -> None:
        if max_rows % 4 or head % 4:
            raise ValueError(f"max_rows and keep_first must be multiples of 4, got {max_rows} and {head}")
        self.buf, self.max_rows, self.head = buf, max_rows, head
        self.reset()

    def reset(self) -> None:
        self.seen = 0  # samples appended
        self.group = 1  # samples per retained row (stride) or per pair of rows (minmax)
        self.compactions = 0
        self.latest: tuple[float, np.ndarray] | None = None
        self.stage: tuple[int, int, np.ndarray, np.ndarray] | None = None  # minmax: the filling group's extremes

    def add(self, steps: np.ndarray, values: np.ndarray) -> None:
        self.latest = (float(steps[-1]), values[-1].copy())
        pos = 0
        while pos < len(steps):
            pos += self._take(steps[pos:], values[pos:])
            n = self.buf._n
            if n >= self.max_rows and (not self.buf.minmax or (n - self.head) % 4 == 0):
                self._compact()

    def _take(self, s: np.ndarray, v: np.ndarray) -> int:
        """Store what the first samples of (s, v) leave; returns how many samples were used."""
        buf, h, k, n = self.buf, self.head, len(s), self.buf._n
        if self.seen < h or self.group == 1:
            t = min(k, h - self.seen) if self.seen < h else min(k, self.max_rows - n)
            buf._write(s[:t], v[:t])
            self.seen += t
            return t
        g, rel = self.group, self.seen - h
        if not buf.minmax:
            keep = np.flatnonzero((rel + np.arange(k)) % g == 0)
            room = self.max_rows - n
            t = int(keep[room]) if len(keep) > room else k
            keep = keep[:room]
            buf._write(s[keep], v[keep])
            self.seen += t
            return t
        if rel % g == 0 and self.stage is None and k >= g:  # whole groups at once, up to the next compaction
            groups = -(-(self.max_rows - n) // 2)
            if ((n - h) // 2 + groups) % 2:
                groups += 1  # compact at an even number of groups, so the doubled groups stay aligned
            m = min(k // g, max(groups, 1))
            col = v[: m * g, 0].reshape(m, g)
            lo, hi = _min_key(col).argmin(axis=1), _max_key(col).argmax(axis=1)
            base = g * np.arange(m)
            idx = np.stack([base + np.minimum(lo, hi), base + np.maximum(lo, hi)], axis=1).reshape(-1)
            buf._write(s[idx], v[idx])
            self.seen += m * g
            return m * g
        t = min(k, g - rel % g)  # finish (or go on filling) the current group
        lo, hi = int(_min_key(v[:t, 0]).argmin()), int(_max_key(v[:t, 0]).argmax())
        cand = (s[lo], s[hi], v[lo].copy(), v[hi].copy())
        if self.stage is not None:  # ties keep the earlier sample
            old = self.stage
            cand = (old[0] if _min_key(old[2][:1]) <= _min_key(cand[2][:1]) else cand[0],
                    old[1] if _max_key(old[3][:1]) >= _max_key(cand[3][:1]) else cand[1],
                    old[2] if _min_key(old[2][:1]) <= _min_key(cand[2][:1]) else cand[2],
                    old[3] if _max_key(old[3][:1]) >= _max_key(cand[3][:1]) else cand[3])
        self.seen += t
        if (rel + t) % g:
            self.stage = cand
            return t
        self.stage = None
        first = 0 if cand[0] <= cand[1] else 1
        buf._write(np.array([cand[first], cand[1 - first]]), np.stack([cand[2 + first], cand[3 - first]]))
        return t

    def _compact(self) -> None:
        buf, h, n = self.buf, self.head, self.buf._n
        if buf.minmax:
            col = buf._values[h:n, 0].reshape(-1, 4)
            lo, hi = _min_key(col).argmin(axis=1), _max_key(col).argmax(axis=1)
            base = h + 4 * np.arange(col.shape[0])
            tail = np.stack([base + np.minimum(lo, hi), base + np.maximum(lo, hi)], axis=1).reshape(-1)
            self.group = 4 if self.group == 1 else 2 * self.group
        else:
            tail = np.arange(h, n, 2)
            self.group *= 2
        idx = np.concatenate([np.arange(h), tail])
        buf._steps[: len(idx)] = buf._steps[idx]  # fancy indexing copies first: the overlap is safe
        buf._values[: len(idx)] = buf._values[idx]
        buf._n = len(idx)
        if buf._pyramid is not None:
            buf._pyramid = _MinMaxPyramid(buf._w)
            buf._pyramid.update(buf._values, buf._n)
        self.compactions += 1

    def pending(self, after: float) -> tuple[np.ndarray, np.ndarray]:
        """Rows not stored yet, newer than `after`: the filling group's extremes, then the newest."""
        rows: list[tuple[float, np.ndarray]] = []
        if self.stage is not None:
            rows += sorted([(float(self.stage[0]), self.stage[2]), (float(self.stage[1]), self.stage[3])],
                           key=lambda r: r[0])
        if self.latest is not None:
            rows.append(self.latest)
        rows = [r for r in rows if r[0] > after]
        rows = [r for i, r in enumerate(rows) if i == 0 or r[0] > rows[i - 1][0]]
        w = self.buf._w
        return (np.array([r[0] for r in rows], dtype=np.float64),
                np.array([r[1] for r in rows], dtype=np.float64).reshape(-1, w))


class SeriesBuffer:
    """Append-only (step, values) history with O(max_points) decimated float32 views.

    width=None stores one scalar per step (a loss curve); width=k stores rows of k values
    ((x, y) points of a trajectory, one value per layer). minmax=True keeps a min/max pyramid
    so `view()` shows every spike of a long curve; leave it off for trajectories, where mixing
    the extremes of x and y would draw points that were never visited.

    Steps are stored as float64 and must be finite; values are stored as float64 as given.

    max_rows (a multiple of 4; None: keep every row) bounds what a run of any length holds: past it
    the history is decimated evenly in step, the first `keep_first` rows kept as they came and the
    newest sample always exact (see _Cap). Steps must then come in increasing order (views append
    them so). `len()` counts the rows held, `samples` the rows appended.
    """

    def __init__(self, width: int | None = None, *, minmax: bool = False, capacity: int = 1024,
                 max_rows: int | None = None, keep_first: int = 0) -> None:
        if width is not None:
            width = check_int("width", width, 1)
        capacity = check_int("capacity", capacity, 1)
        if max_rows is not None:
            max_rows = check_int("max_rows", max_rows, 64)
            keep_first = check_int("keep_first", keep_first, 0, max_rows // 4)
            capacity = min(capacity, max_rows)
        self._width = width
        self._w = 1 if width is None else width
        self._step_rows = Growable((), np.float64, capacity)
        self._value_rows = Growable((self._w,), np.float64, capacity)
        self._steps, self._values = self._step_rows.data, self._value_rows.data  # what reads index
        self._n = 0
        self._pyramid = _MinMaxPyramid(self._w) if minmax else None
        self._cap = None if max_rows is None else _Cap(self, max_rows, keep_first)

    # ---- writing ---------------------------------------------------------------------------
    @property
    def width(self) -> int | None:
        return self._width

    @property
    def minmax(self) -> bool:
        return self._pyramid is not None

    def __len__(self) -> int:
        return self._n

    @property
    def samples(self) -> int:
        """Rows appended since the last clear(); len() once the history is decimated (max_rows)."""
        return self._n if self._cap is None else self._cap.seen

    @property
    def compactions(self) -> int:
        """How often the history was halved to stay within max_rows (0: every row is held)."""
        return 0 if self._cap is None else self._cap.compactions

    def _reserve(self, n: int) -> None:
        if n <= self._steps.shape[0]:
            return
        limit = None if self._cap is None else self._cap.max_rows + 4
        for rows in (self._step_rows, self._value_rows):
            rows.n = self._n
            rows.reserve(n, limit)
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
        if self._cap is not None:
            self._cap.add(np.array([step]), row.reshape(1, self._w))
            return
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
        if self._cap is not None:
            self._cap.add(s, v.reshape(k, self._w))
        else:
            self._write(s, v.reshape(k, self._w))

    def _write(self, s: np.ndarray, v: np.ndarray) -> None:
        """Store rows as they are (the capped path decides which first)."""
        n, k = self._n, len(s)
        self._reserve(n + k)
        self._steps[n : n + k] = s
        self._values[n : n + k] = v
        self._n = n + k
        if self._pyramid is not None:
            self._pyramid.update(self._values, self._n)

    def clear(self) -> None:
        """Forget everything (a restarted run) but keep the allocated capacity."""
        self._n = 0
        if self._pyramid is not None:
            self._pyramid = _MinMaxPyramid(self._w)
        if self._cap is not None:
            self._cap.reset()

    # ---- reading ---------------------------------------------------------------------------
    @property
    def last(self) -> tuple[float, Any] | None:
        """(step, values) of the newest row, exactly as appended, or None when empty."""
        if self._cap is not None and self._cap.latest is not None:
            step, row = self._cap.latest
        elif self._n == 0:
            return None
        else:
            step, row = float(self._steps[self._n - 1]), self._values[self._n - 1]
        return step, (float(row[0]) if self._width is None else row.copy())

    def value_at(self, step: float) -> Any:
        """The value at `step`, or at the nearest step before it that is held (a decimated history
        holds fewer); None before the first row. Steps in increasing order; O(log len)."""
        last = self.last
        if last is not None and step >= last[0]:
            return last[1]
        i = int(np.searchsorted(self._steps[: self._n], float(step), side="right")) - 1
        if i < 0:
            return None
        row = self._values[i]
        return float(row[0]) if self._width is None else row.copy()

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
        extra = None
        if self._cap is not None:  # what is not stored yet: the newest sample (and a filling group)
            extra = self._cap.pending(self._steps[n - 1] if n else -np.inf)
            max_points = max(2, max_points - len(extra[0]))
        if n <= max_points:
            idx = np.arange(n)
            steps, values = self._steps[idx], self._values[idx]
        elif self._pyramid is not None and max_points >= 6:
            steps, values = self._minmax_rows(self._pyramid, n, max_points)
        elif self.compactions:  # the first rows are denser than the decimated rest: pick evenly in step
            targets = np.linspace(self._steps[0], self._steps[n - 1], max_points)
            idx = np.unique(np.searchsorted(self._steps[:n], targets).clip(0, n - 1))
            steps, values = self._steps[idx], self._values[idx]
        else:
            idx = even_indices(n, max_points)
            steps, values = self._steps[idx], self._values[idx]
        if extra is not None and len(extra[0]):
            steps, values = np.concatenate([steps, extra[0]]), np.concatenate([values, extra[1]])
        return self._finish(steps, values, breaks)

    def since(self, step: float, *, breaks: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Every row held from `step` on (the newest kept aside included), undecimated, as a float32
        copy like view(): the newest stretch of a series, which a live line draws (cost per row
        returned plus O(log len))."""
        n = self._n
        i = int(np.searchsorted(self._steps[:n], float(step), side="left"))
        steps, values = self._steps[i:n], self._values[i:n]
        if self._cap is not None:
            extra_s, extra_v = self._cap.pending(self._steps[n - 1] if n else -np.inf)
            keep = extra_s >= step
            if keep.any():
                steps, values = np.concatenate([steps, extra_s[keep]]), np.concatenate([values, extra_v[keep]])
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

    `view()` bounds what one frame sends; max_events (None: all) bounds what is kept: a slider
    dragged for an hour adds a marker a step boundary, and only the newest max_events stay.
    `added` counts every event since the last clear() (what a frame compares to redraw).
    """

    def __init__(self, max_events: int | None = None) -> None:
        limit = None if max_events is None else check_int("max_events", max_events, 1)
        self._steps: collections.deque[float] = collections.deque(maxlen=limit)
        self._labels: collections.deque[str] = collections.deque(maxlen=limit)
        self.added = 0

    def add(self, step: float, label: str) -> None:
        step = float(step)
        if not np.isfinite(step):
            raise ValueError(f"step must be finite, got {step!r}")
        self._steps.append(step)
        self._labels.append(str(label))
        self.added += 1

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
        self.added = 0

    def view(self, max_markers: int = 100) -> tuple[np.ndarray, list[str]]:
        """The newest `max_markers` events: steps float32 and their labels, in order of arrival."""
        max_markers = check_int("max_markers", max_markers, 0)
        start = max(0, len(self._steps) - max_markers)
        return (np.asarray(list(itertools.islice(self._steps, start, None)), dtype=np.float32),
                list(itertools.islice(self._labels, start, None)))


__all__ = ["SeriesBuffer", "Markers", "even_indices"]
