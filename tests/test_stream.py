"""optiviz.stream: decimated series views and the steerable LiveRunner.

No timing asserts: view cost is checked by counting the elements it reads, the frame rate with a
fake clock, and threads only with generous timeouts on events and joins.
"""
from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from optiviz.stream import DONE, FrameClock, LiveRunner, Markers, SeriesBuffer
from optiviz.stream.series import LEAF

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


# ---------------------------------------------------------------------------------------------
# LiveRunner

WAIT = 20.0  # generous: a loaded 2-core CI machine may stall a thread for a while


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Engine:
    """A counting engine: step() returns the chunk number, DONE after `total` chunks."""

    def __init__(self, total: int | None = None, *, fail_at: int | None = None, clock: FakeClock | None = None,
                 tick: float = 0.0) -> None:
        self.n = 0
        self.total = total
        self.fail_at = fail_at
        self.clock = clock
        self.tick = tick
        self.events: list = []
        self.reached: dict[int, threading.Event] = {}

    def at(self, n: int) -> threading.Event:
        return self.reached.setdefault(n, threading.Event())

    def step(self):
        if self.total is not None and self.n >= self.total:
            return DONE
        if self.fail_at is not None and self.n + 1 == self.fail_at:
            self.fail_at = None  # fail once
            raise ZeroDivisionError("boom")
        self.n += 1
        if self.clock is not None:
            self.clock.t += self.tick
        self.events.append(("step", self.n))
        if self.n in self.reached:
            self.reached[self.n].set()
        return self.n

    def apply(self, changes):
        assert isinstance(changes, dict) and len(changes) == 1
        (name, value), = changes.items()
        if name == "bad":
            raise ValueError(f"bad must be positive, got {value}")
        if name == "bug":
            raise RuntimeError("not a validation error")
        self.events.append((name, value))


class Sink:
    def __init__(self) -> None:
        self.frames: list[list] = []
        self.errors: list[str] = []
        self.states: list[str] = []

    def publish(self, records):
        self.frames.append(list(records))

    @property
    def records(self) -> list:
        return [r for f in self.frames for r in f]


def make(engine: Engine, sink: Sink, **kw) -> LiveRunner:
    return LiveRunner(engine.step, apply=engine.apply, publish=sink.publish, on_error=sink.errors.append,
                      on_status=sink.states.append, **kw)


def test_frame_clock_bounds_the_rate():
    clock = FakeClock()
    frames = FrameClock(10, clock)
    assert frames.due()  # the first frame goes out at once
    frames.mark()
    clock.t = 0.09
    assert not frames.due()
    clock.t = 0.1
    assert frames.due()
    with pytest.raises(ValueError, match="fps"):
        FrameClock(0)
    with pytest.raises(ValueError, match="fps"):
        LiveRunner(lambda: None, publish=print, fps=-1)


def test_requests_apply_at_the_next_boundary_in_order_latest_value_wins():
    engine, sink = Engine(), Sink()
    runner = make(engine, sink)
    runner.request("lr", 0.1)
    runner.request("momentum", 0.5)
    runner.request("lr", 0.3)  # replaces 0.1 and moves behind momentum
    assert engine.events == []  # nothing happens in the observer
    assert runner.step_once()
    assert engine.events == [("momentum", 0.5), ("lr", 0.3), ("step", 1)]
    assert sink.records == [1] and runner.state == "paused" and runner._thread is None


def test_request_made_during_a_step_applies_before_the_next_step_in_the_worker():
    engine, sink = Engine(total=5), Sink()
    runner = make(engine, sink)
    original = engine.step

    def step():
        out = original()
        if out == 2:
            runner.request("lr", 1.0)  # as a slider observer would, mid-chunk
            runner.request("lr", 2.0)
        return out

    runner._step = step
    runner.play()
    assert runner.wait(WAIT) and runner.state == "done"
    assert engine.events == [("step", 1), ("step", 2), ("lr", 2.0), ("step", 3), ("step", 4), ("step", 5)]
    assert sink.records == [1, 2, 3, 4, 5]
    assert runner.stop(WAIT)


def test_value_error_in_apply_is_reported_and_the_run_goes_on():
    engine, sink = Engine(total=4), Sink()
    runner = make(engine, sink)
    runner.request("bad", -1)
    runner.request("lr", 0.5)  # still applies after the bad one
    runner.play()
    assert runner.wait(WAIT) and runner.state == "done"
    assert sink.errors == ["bad must be positive, got -1"]
    assert ("lr", 0.5) in engine.events and engine.n == 4
    assert runner.last_error == "bad must be positive, got -1"
    runner.close()


def test_other_exception_in_apply_is_an_error_and_unapplied_changes_wait():
    engine, sink = Engine(), Sink()
    runner = make(engine, sink)
    for name, value in (("lr", 1), ("bug", 0), ("momentum", 0.9)):
        runner.request(name, value)
    assert not runner.step_once()
    assert runner.state == "error" and engine.n == 0
    assert sink.errors and "apply 'bug' failed: RuntimeError" in sink.errors[0]
    assert runner.step_once()  # the change after the failing one was kept, applied now
    assert engine.events == [("lr", 1), ("momentum", 0.9), ("step", 1)] and runner.state == "paused"


def test_publish_rate_is_bounded_on_a_fake_clock():
    clock = FakeClock()
    engine, sink = Engine(total=400, clock=clock, tick=0.01), Sink()  # 4 s of fake time
    runner = make(engine, sink, fps=20, clock=clock)
    runner.play()
    assert runner.wait(WAIT) and runner.state == "done"
    assert sink.records == list(range(1, 401))  # every record once, in order
    assert 60 <= len(sink.frames) <= 4 * 20 + 2  # ~one frame per 1/20 s of fake time, plus the final
    runner.close()


def test_pause_wait_step_once_resume_stop():
    engine, sink = Engine(), Sink()
    runner = make(engine, sink)
    reached = engine.at(20)
    runner.play()
    assert runner.is_running and runner._thread.daemon
    assert reached.wait(WAIT)
    runner.pause()
    assert runner.wait(WAIT) and runner.state == "paused" and not runner.is_running
    paused_at = engine.n
    assert sink.records == list(range(1, paused_at + 1))  # the final frame went out on pause
    time.sleep(0.05)
    assert engine.n == paused_at  # no busy work while paused
    assert runner.step_once() and engine.n == paused_at + 1 and sink.records[-1] == paused_at + 1
    later = engine.at(paused_at + 20)
    runner.toggle()  # play
    assert later.wait(WAIT)
    thread = runner._thread
    assert runner.stop(WAIT) and not thread.is_alive() and runner.state == "stopped"
    assert sink.records == list(range(1, engine.n + 1))  # ...and on stop
    with pytest.raises(RuntimeError, match="stopped"):
        runner.play()
    assert not runner.step_once()
    assert sink.states[:3] == ["playing", "paused", "playing"] and sink.states[-1] == "stopped"


def test_step_once_while_playing_pauses_first():
    engine, sink = Engine(), Sink()
    runner = make(engine, sink)
    reached = engine.at(5)
    runner.play()
    assert reached.wait(WAIT)
    assert runner.step_once()
    assert runner.wait(WAIT) and runner.state == "paused"
    n = engine.n
    time.sleep(0.02)
    assert engine.n == n and sink.records == list(range(1, n + 1))
    runner.close()


def test_exception_in_step_sets_error_keeps_the_thread_and_play_resumes():
    engine, sink = Engine(total=6, fail_at=3), Sink()
    runner = make(engine, sink)
    runner.play()
    assert runner.wait(WAIT) and runner.state == "error"
    assert sink.errors == ["step failed: ZeroDivisionError: boom"]
    assert isinstance(runner.last_exception, ZeroDivisionError)
    assert sink.records == [1, 2]  # what ran before the failure is drawn
    assert runner._thread.is_alive()
    runner.play()  # the user fixed things: go on
    assert runner.wait(WAIT) and runner.state == "done" and sink.records == [1, 2, 3, 4, 5, 6]
    runner.close()


def test_exception_in_publish_sets_error():
    engine = Engine(total=100)

    def publish(records):
        raise KeyError("mark gone")

    errors: list[str] = []
    runner = LiveRunner(engine.step, publish=publish, on_error=errors.append)
    runner.play()
    assert runner.wait(WAIT) and runner.state == "error"
    assert errors[0].startswith("publish failed: KeyError")
    runner.close()


def test_stop_from_inside_publish_does_not_deadlock():
    engine = Engine()
    holder: dict = {}

    def publish(records):
        if records and records[-1] >= 3:
            holder["joined"] = holder["runner"].stop()

    runner = LiveRunner(engine.step, publish=publish, fps=1000)
    holder["runner"] = runner
    runner.play()
    thread = runner._thread
    thread.join(WAIT)
    assert not thread.is_alive() and holder["joined"] is False and runner.state == "stopped"
    holder.clear()


def test_cycle_methods_refuse_to_run_inside_the_worker():
    engine = Engine(total=3)
    errors: list[str] = []
    holder: dict = {}
    runner = LiveRunner(engine.step, publish=lambda r: holder["runner"].step_once(), on_error=errors.append)
    holder["runner"] = runner
    runner.play()
    assert runner.wait(WAIT) and runner.state == "error"
    assert "RuntimeError: step_once() cannot be called from inside" in errors[0]
    runner.close()
    holder.clear()


def test_run_sync_publishes_at_the_end_or_each_chunk_and_stops_at_done():
    engine, sink = Engine(total=5), Sink()
    runner = make(engine, sink)
    runner.request("lr", 2)
    assert runner.run_sync(3) == 3
    assert sink.frames == [[1, 2, 3]] and engine.events[0] == ("lr", 2) and runner.state == "paused"
    assert runner.run_sync(10, publish_each=True) == 2
    assert sink.frames == [[1, 2, 3], [4], [5]] and runner.state == "done"
    assert runner._thread is None  # no thread in synchronous mode
    with pytest.raises(ValueError, match="chunks"):
        runner.run_sync(-1)


def test_run_sync_raises_the_engine_error_and_accepts_stop_iteration():
    engine, sink = Engine(fail_at=2), Sink()
    runner = make(engine, sink)
    with pytest.raises(ZeroDivisionError):
        runner.run_sync(5)
    assert runner.state == "error" and sink.records == [1]

    it = iter(range(3))
    frames: list = []
    runner = LiveRunner(lambda: next(it), publish=frames.append)
    assert runner.run_sync(10) == 3 and frames == [[0, 1, 2]] and runner.state == "done"


def test_none_records_still_publish_and_apply_pending_works_while_paused():
    frames: list = []
    applied: list = []
    runner = LiveRunner(lambda: None, apply=applied.append, publish=frames.append)
    runner.run_sync(2)
    assert frames == [[]]  # progress without records still redraws once
    runner.request("surface", "rosenbrock")
    assert runner.apply_pending() == 1 and applied == [{"surface": "rosenbrock"}]
    assert runner.apply_pending() == 0


def test_worker_exits_when_runner_is_garbage_collected():
    engine, sink = Engine(), Sink()
    runner = LiveRunner(engine.step, publish=sink.publish)
    reached = engine.at(3)
    runner.play()
    assert reached.wait(WAIT)
    thread = runner._thread
    del runner
    gc.collect()
    thread.join(WAIT)
    assert not thread.is_alive()


def test_close_and_context_manager_end_the_thread():
    engine = Engine(total=10)
    with LiveRunner(engine.step, publish=lambda r: None) as runner:
        runner.play()
        thread = runner._thread
        assert runner.wait(WAIT)
    thread.join(WAIT)
    assert not thread.is_alive() and runner.state == "stopped"


def test_two_runners_work_independently():
    a, b = Engine(), Engine(total=50)
    sa, sb = Sink(), Sink()
    ra, rb = make(a, sa), make(b, sb)
    reached = a.at(10)
    ra.play()
    rb.play()
    assert reached.wait(WAIT) and rb.wait(WAIT)
    assert rb.state == "done" and ra.state == "playing"
    ra.pause()
    assert ra.wait(WAIT) and ra.state == "paused"
    assert sb.records == list(range(1, 51)) and sa.records == list(range(1, a.n + 1))
    assert ra._thread is not rb._thread
    assert ra.stop(WAIT) and rb.stop(WAIT)


def test_on_status_handler_may_wait_for_the_runner_without_deadlock():
    engine = Engine(total=200)
    holder: dict = {}
    seen: list[str] = []

    def on_status(state):
        seen.append(state)
        if state == "playing" and threading.current_thread() is threading.main_thread():
            holder["runner"].apply_pending()  # waits for the worker's step boundary

    runner = LiveRunner(engine.step, apply=lambda c: None, publish=lambda r: None, on_status=on_status)
    holder["runner"] = runner
    runner.play()
    assert runner.wait(WAIT) and runner.state == "done" and seen[-1] == "done"
    runner.close()
    holder.clear()


def test_system_exit_in_step_is_reported_not_silent():
    def step():
        raise SystemExit(3)

    errors: list[str] = []
    runner = LiveRunner(step, publish=lambda r: None, on_error=errors.append)
    runner.play()
    assert runner.wait(WAIT) and runner.state == "error"
    runner._thread.join(WAIT)
    assert errors == ["runner failed: SystemExit: 3"]
    runner.play()  # a fresh worker starts
    assert runner.wait(WAIT) and runner.state == "error" and len(errors) == 2
    runner.close()


def test_a_callback_that_steps_again_is_refused_not_deadlocked():
    holder: dict = {}
    errors: list[str] = []

    def apply(changes):
        raise ValueError("lr must be positive")

    def on_error(message):
        errors.append(message)
        if len(errors) == 1:
            try:
                holder["runner"].step_once()
            except RuntimeError as exc:
                errors.append(str(exc))

    runner = LiveRunner(lambda: 1, apply=apply, publish=lambda r: None, on_error=on_error)
    holder["runner"] = runner
    runner.request("lr", -1)
    assert runner.step_once()
    assert errors[0] == "lr must be positive" and "cannot be called from inside" in errors[1]
    holder.clear()


def test_frame_clock_ticks_never_bunch_up_after_a_slow_chunk():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 6))
        now[0] += s

    clock = FrameClock(10.0, clock=lambda: now[0], sleep=sleep)
    clock.wait_tick()  # the first tick is at once
    assert slept == [] and now[0] == 0.0
    now[0] += 0.03  # a 30 ms chunk
    clock.wait_tick()
    assert slept == [0.07]  # the tick 100 ms after the first
    now[0] += 0.35  # a slow chunk: 3.5 ticks late
    clock.wait_tick()  # at once, and the next tick is one interval later, not three at once
    now[0] += 0.01
    clock.wait_tick()
    assert slept == [0.07, 0.09]
    clock.restart()
    clock.wait_tick()
    assert slept == [0.07, 0.09]  # after a pause the first frame does not lag


def test_a_paced_runner_draws_every_chunk_on_one_clock():
    """The explorer's pacing sleep and the runner's frame clock at the same rate beat against
    each other (~12 of 20 frames drawn); a paced runner publishes every chunk at its ticks."""
    for paced in (True, False):
        published = []
        runner = LiveRunner(lambda: 1, publish=lambda recs: published.append(len(recs)), fps=50.0, paced=paced)
        runner.play()
        time.sleep(0.6)
        runner.pause()
        runner.wait(2.0)
        chunks = runner.chunks
        runner.stop()
        if paced:
            assert 5 <= chunks <= 40  # about 30: one chunk per 20 ms tick, not as fast as it can
            assert published and max(published) == 1 and sum(published) == chunks  # every chunk its own frame
        else:
            assert chunks > 100 and len(published) < chunks / 10  # unpaced: many chunks per frame


def test_a_paced_runner_stops_without_waiting_for_its_tick():
    runner = LiveRunner(lambda: 1, publish=lambda recs: None, fps=0.5, paced=True)  # a tick every 2 s
    runner.play()
    time.sleep(0.2)  # the worker now sleeps toward its second tick
    t0 = time.monotonic()
    assert runner.stop(timeout=5.0)
    assert time.monotonic() - t0 < 1.5


def test_even_indices_thin_evenly_keep_both_ends_and_never_repeat():
    from optiviz.stream.series import even_indices

    assert even_indices(5, 10).tolist() == [0, 1, 2, 3, 4]  # fewer than asked: all
    assert even_indices(1000, 4).tolist() == [0, 333, 666, 999]
    assert even_indices(1, 3).tolist() == [0]
    for n, k in ((7, 6), (1001, 300), (50, 49)):
        idx = even_indices(n, k)
        assert idx[0] == 0 and idx[-1] == n - 1 and len(idx) == min(n, k) and (np.diff(idx) > 0).all()
