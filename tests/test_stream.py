"""optiviz.stream: decimated series views and the steerable LiveRunner.

No timing asserts: view cost is checked by counting the elements it reads, the frame rate with a
fake clock, and threads only with generous timeouts on events and joins.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from optiviz.stream.series import LEAF, Markers, SeriesBuffer

# ---------------------------------------------------------------------------------------------
# SeriesBuffer


def filled(n: int, width: int | None = None, *, minmax: bool = False, seed: int = 0) -> tuple[SeriesBuffer, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n,) if width is None else (n, width))
    buf = SeriesBuffer(width, minmax=minmax)
    buf.extend(np.arange(n), values)
    return buf, values


@pytest.mark.parametrize("minmax", [False, True])
@pytest.mark.parametrize("width", [None, 1, 3])
@pytest.mark.parametrize("n", [0, 1, 2, 17, 1999, 2000, 2001, 50_000])
def test_view_bounds(n, width, minmax):
    buf, values = filled(n, width, minmax=minmax)
    for max_points in (2, 6, 101, 2000):
        steps, vals = buf.view(max_points)
        assert steps.dtype == np.float32 and vals.dtype == np.float32
        assert len(steps) == len(vals) <= max(max_points, 0)
        assert vals.shape[1:] == (() if width is None else (width,))
        if n == 0:
            assert len(steps) == 0
            continue
        assert steps[0] == 0 and steps[-1] == np.float32(n - 1)  # first and last always kept
        assert np.all(np.diff(steps) >= 0)
        if n <= max_points:
            np.testing.assert_array_equal(steps, np.arange(n, dtype=np.float32))
            np.testing.assert_array_equal(vals, values.astype(np.float32))
        elif not minmax or max_points < 6:
            assert len(steps) == max_points  # stride: exactly max_points, evenly spaced
        else:
            assert len(steps) >= max_points // 4


def test_stride_rows_are_real_samples_evenly_spaced():
    buf, values = filled(100_000)
    steps, vals = buf.view(1000)
    idx = steps.astype(np.int64)
    np.testing.assert_array_equal(vals, values[idx].astype(np.float32))
    gaps = np.diff(idx)
    assert gaps.min() >= 99 and gaps.max() <= 101


def test_minmax_keeps_spikes_that_stride_misses():
    n = 1_000_003
    values = np.ones(n)
    values[123_457] = 50.0  # one spike
    values[777_777] = -20.0  # one dip
    for minmax, expect in ((True, True), (False, False)):
        buf = SeriesBuffer(minmax=minmax)
        buf.extend(np.arange(n), values)
        steps, vals = buf.view(500)
        assert (vals.max() == 50.0 and vals.min() == -20.0) == expect
        if minmax:
            assert steps[vals.argmax()] == 123_457 and steps[vals.argmin()] == 777_777


@pytest.mark.parametrize("width", [None, 4])
def test_minmax_per_column_extremes_and_real_values(width):
    buf, values = filled(100_000 + 7, width, minmax=True, seed=3)
    steps, vals = buf.view(300)
    v = values.reshape(len(values), -1)
    out = vals.reshape(len(vals), -1)
    np.testing.assert_array_equal(out.max(axis=0), v.max(axis=0).astype(np.float32))
    np.testing.assert_array_equal(out.min(axis=0), v.min(axis=0).astype(np.float32))
    for c in range(v.shape[1]):  # every drawn value was a sample of its column
        assert np.isin(out[:, c], v[:, c].astype(np.float32)).all()


def test_pyramid_matches_brute_force_with_appends_and_extends():
    rng = np.random.default_rng(1)
    buf = SeriesBuffer(2, minmax=True)
    rows = []
    for k in rng.integers(0, 40, size=200):  # mix single appends and blocks of odd sizes
        block = rng.normal(size=(k, 2))
        block[rng.random(block.shape) < 0.02] = np.inf
        if k % 3 == 0:
            for row in block:
                buf.append(len(rows), row)
                rows.append(row)
        else:
            buf.extend(np.arange(len(rows), len(rows) + k), block)
            rows.extend(block)
    values = np.asarray(rows)
    pyr = buf._pyramid
    for j in range(len(pyr.lo)):
        size = LEAF << j
        count = len(values) // size
        assert pyr.lo[j].n == count
        blocks = values[: count * size].reshape(count, size, 2)
        key_lo = np.where(np.isfinite(blocks), blocks, np.inf)
        key_hi = np.where(np.isfinite(blocks), blocks, -np.inf)
        offset = (np.arange(count) * size)[:, None]
        np.testing.assert_array_equal(pyr.lo[j].data[:count], key_lo.argmin(axis=1) + offset)
        np.testing.assert_array_equal(pyr.hi[j].data[:count], key_hi.argmax(axis=1) + offset)


class Counting(np.ndarray):
    """An array that counts the elements any read of it touches (indexing, ufuncs, np.* calls)."""

    touched = 0

    def __getitem__(self, key):
        out = np.asarray(super().__getitem__(key))
        Counting.touched += out.size
        return out

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        Counting.touched += sum(x.size for x in inputs if isinstance(x, Counting))
        inputs = tuple(np.asarray(x) if isinstance(x, Counting) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        Counting.touched += sum(x.size for x in args if isinstance(x, Counting))
        args = tuple(np.asarray(x) if isinstance(x, Counting) else x for x in args)
        return func(*args, **kwargs)


def elements_read_by_view(buf: SeriesBuffer, max_points: int) -> int:
    """Swap every array the buffer owns for a counting view of it, then draw once."""
    buf._steps = buf._steps.view(Counting)
    buf._values = buf._values.view(Counting)
    if buf._pyramid is not None:
        for level in buf._pyramid.lo + buf._pyramid.hi:
            level.data = level.data.view(Counting)
    Counting.touched = 0
    buf.view(max_points)
    return Counting.touched


@pytest.mark.parametrize("minmax", [False, True])
@pytest.mark.parametrize("width", [None, 3])
def test_view_work_is_bounded_by_max_points_not_length(minmax, width):
    """Structure, not timing: the elements a view reads stay O(max_points + log n)."""
    max_points = 500
    reads = {}
    for n in (1_000, 30_000, 1_000_000):
        buf, _ = filled(n, width, minmax=minmax)
        reads[n] = elements_read_by_view(buf, max_points)
    w = 1 if width is None else width
    assert max(reads.values()) <= 8 * max_points * w + 64 * w, reads
    assert reads[1_000_000] <= 2 * reads[30_000] + 64 * w, reads


def test_counting_array_does_catch_a_full_scan():
    """The counting probe itself works: a full scan of the history is seen."""
    buf, _ = filled(10_000)
    buf._values = buf._values.view(Counting)
    Counting.touched = 0
    np.isfinite(buf._values[: len(buf)])
    assert Counting.touched >= 10_000


def test_non_finite_values_are_dropped_by_default_and_nan_with_breaks():
    buf = SeriesBuffer()
    buf.extend(np.arange(6), [1.0, np.inf, 2.0, np.nan, 1e39, -np.inf])
    steps, vals = buf.view()
    np.testing.assert_array_equal(steps, [0, 2])
    np.testing.assert_array_equal(vals, [1, 2])
    steps, vals = buf.view(breaks=True)
    np.testing.assert_array_equal(steps, np.arange(6))
    assert vals[0] == 1 and vals[2] == 2
    assert np.isnan(vals[[1, 3, 4, 5]]).all()  # 1e39 overflows float32: never sent as inf
    assert not np.isinf(vals).any()


def test_non_finite_rows_of_width_k():
    buf = SeriesBuffer(2)
    buf.extend([0, 1, 2], [[1, 2], [np.inf, 3], [4, 5]])
    steps, vals = buf.view()
    np.testing.assert_array_equal(steps, [0, 2])
    steps, vals = buf.view(breaks=True)
    assert np.isnan(vals[1, 0]) and vals[1, 1] == 3


def test_minmax_ignores_inf_spikes_but_shows_a_diverged_tail_as_a_break():
    n = 100_000
    values = np.linspace(0, 1, n)
    values[5_000] = np.inf
    values[90_000:] = np.inf  # diverged
    buf = SeriesBuffer(minmax=True)
    buf.extend(np.arange(n), values)
    steps, vals = buf.view(200)
    assert np.isfinite(vals).all() and steps[-1] < 90_000
    steps, vals = buf.view(200, breaks=True)
    assert not np.isinf(vals).any()
    assert np.isnan(vals[steps >= 90_000]).all() and np.isfinite(vals[steps < 90_000]).all()


def test_append_grows_by_doubling_and_keeps_everything():
    buf = SeriesBuffer(2, capacity=1)
    for i in range(1000):
        buf.append(i, (i, -i))
    assert len(buf) == 1000 and buf._steps.shape[0] == 1024
    steps, values = buf.arrays()
    np.testing.assert_array_equal(steps, np.arange(1000))
    np.testing.assert_array_equal(values[:, 1], -np.arange(1000))
    assert not values.flags.writeable
    assert buf.last[0] == 999.0 and list(buf.last[1]) == [999, -999]


def test_last_len_clear():
    buf = SeriesBuffer(minmax=True)
    assert buf.last is None and len(buf) == 0
    buf.append(3, 0.5)
    assert buf.last == (3.0, 0.5)
    buf.extend(np.arange(4, 100), np.zeros(96))
    buf.clear()
    assert len(buf) == 0 and buf.last is None and len(buf.view()[0]) == 0
    buf.extend(np.arange(40), np.arange(40.0))
    assert buf.view(6)[1].max() == 39


def test_bad_input_names_the_parameter():
    buf = SeriesBuffer(2)
    with pytest.raises(ValueError, match="values"):
        buf.append(0, [1, 2, 3])
    with pytest.raises(ValueError, match="values"):
        buf.extend([0, 1], [1, 2])
    with pytest.raises(ValueError, match="step"):
        buf.append(float("nan"), [1, 2])
    with pytest.raises(ValueError, match="steps"):
        buf.extend([0, np.inf], [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="max_points"):
        buf.view(1)
    with pytest.raises(ValueError, match="width"):
        SeriesBuffer(0)
    with pytest.raises(ValueError, match="values"):
        SeriesBuffer().append(0, [1, 2])


def test_markers():
    marks = Markers()
    assert marks.last is None and len(marks) == 0
    marks.add(10, "lr 0.01 -> 0.1")
    marks.add(25, "restart")
    marks.add(40, "lr 0.1 -> 0.01")
    assert list(marks)[0] == (10.0, "lr 0.01 -> 0.1") and marks.last == (40.0, "lr 0.1 -> 0.01")
    steps, labels = marks.view(2)
    assert steps.dtype == np.float32
    np.testing.assert_array_equal(steps, [25, 40])
    assert labels == ["restart", "lr 0.1 -> 0.01"]
    with pytest.raises(ValueError, match="step"):
        marks.add(float("inf"), "x")
    marks.clear()
    assert len(marks) == 0


def test_stream_imports_no_widgets_or_torch():
    code = (
        "import sys, optiviz.stream; "
        "print(sorted(m for m in ('torch','ipywidgets','bqplot','IPython') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
