"""Issue 12, class 5: a long run's history stays within a bound (SeriesBuffer's max_rows, Markers'
max_events, the explorer's RaceSeries, the dashboard's RunSeries and its trainer's probe records),
keeping what the marks and the legend need: the first steps, the newest value, the spikes."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import optiviz as ov
from optiviz.stream.series import Markers, SeriesBuffer
from optiviz.training.runs import RunSpec
from optiviz.views.dashboard.controller import DashboardController
from optiviz.views.explorer.controller import Chunk, ExplorerController
from optiviz.views.explorer.race import HEAD_ROWS, HISTORY_ROWS


def _feed(buf: SeriesBuffer, steps: np.ndarray, values: np.ndarray, seed: int = 0) -> None:
    """In chunks of random sizes, as frames arrive (some single appends)."""
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(steps):
        k = int(rng.integers(1, 700))
        if k < 5:
            buf.append(steps[i], values[i])
            i += 1
        else:
            buf.extend(steps[i:i + k], values[i:i + k])
            i += k


@pytest.mark.parametrize("minmax, width", [(False, 2), (True, None), (False, None), (True, 3)])
def test_a_capped_buffer_stays_bounded_and_keeps_what_is_drawn(minmax, width):
    n = 60_000
    steps = np.arange(n, dtype=float)
    col = np.sin(steps / 700.0)
    col[41_234] = 50.0  # a spike
    values = col if width is None else np.repeat(col[:, None], width, axis=1)
    buf = SeriesBuffer(width, minmax=minmax, max_rows=512, keep_first=64)
    _feed(buf, steps, values)
    held, kept = buf.arrays()
    assert len(buf) <= 512 + 4 and buf.samples == n and buf.compactions > 0
    assert buf._value_rows.data.shape[0] <= 516  # capacity too, not only the rows in use
    np.testing.assert_array_equal(held[:64], steps[:64])  # the first steps as they came
    assert np.all(np.diff(held) >= 0)
    assert buf.last == (n - 1.0, values[-1] if width is None else pytest.approx(values[-1]))
    vs, vv = buf.view(100)
    assert len(vs) <= 100 and vs[-1] == n - 1  # the newest point is drawn
    if minmax:
        assert float(np.max(vv)) == 50.0 and buf.value_at(41_234) == pytest.approx(50.0 if width is None else [50.0] * 3)
    else:
        gaps = np.diff(held[64:])
        assert gaps.max() <= 2 * gaps.min()  # evenly in step, not only the recent part
        assert vs[len(vs) // 2] == pytest.approx(n / 2, rel=0.05)
    buf.clear()
    assert len(buf) == 0 and buf.samples == 0 and buf.compactions == 0 and buf.last is None


def test_an_uncapped_buffer_is_unchanged():
    buf = SeriesBuffer(minmax=True)
    buf.extend(np.arange(5000), np.arange(5000.0))
    assert len(buf) == buf.samples == 5000 and buf.compactions == 0
    assert buf.value_at(1234.5) == 1234.0 and buf.value_at(-1) is None
    with pytest.raises(ValueError, match="max_rows must be in"):
        SeriesBuffer(max_rows=10)
    with pytest.raises(ValueError, match="multiples of 4"):
        SeriesBuffer(max_rows=130, keep_first=8)
    with pytest.raises(ValueError, match="keep_first must be in"):
        SeriesBuffer(max_rows=128, keep_first=100)


def test_markers_keep_the_newest():
    m = Markers(max_events=50)
    for i in range(10_000):
        m.add(i, f"lr {i}")
    assert len(m) == 50 and m.added == 10_000 and m.last == (9999.0, "lr 9999")
    steps, labels = m.view(5)
    assert list(steps) == [9995, 9996, 9997, 9998, 9999] and labels[0] == "lr 9995"
    m.clear()
    assert len(m) == 0 and m.added == 0 and Markers().view(3)[0].size == 0
    with pytest.raises(ValueError, match="max_events"):
        Markers(max_events=0)


def test_the_explorer_history_is_bounded_over_a_long_run():
    c = ExplorerController("quadratic", ("sgd", "adam"), grad_noise=0.5, speed=500)
    try:
        c.step(500)
        rec = c.sim.advance(2000)  # real records, handed on again with their steps moved on (as frames)
        done = c.t
        for i in range(60):  # 120,000 steps
            c.publish([Chunk(c.generation, replace(rec, steps=rec.steps + (done - int(rec.steps[0]) + 1)))])
            done += 2000
            if i % 7 == 0:
                c.set("sgd", lr=0.01 + 1e-4 * i)
        for kind, bufs in c.race.buffers.items():
            for b in bufs.values():
                assert len(b) <= HISTORY_ROWS + 4 and b.samples > 100_000, kind
        path = c.race.buffers["path"]["sgd"]
        held = path.arrays()[0]
        np.testing.assert_array_equal(held[:501], np.arange(501))  # the start of the race, step by step
        assert np.all(np.diff(held[501:HEAD_ROWS]) == 1)
        steps, xy = c.race.rows("path", 800)[0]
        assert len(steps) <= 800 and c.race.head("sgd") == pytest.approx(tuple(rec.points[-1, 0]), rel=1e-6)
        assert c.race.lengths("loss")[0] == c.race.buffers["loss"]["sgd"].samples
        pts = c.race.marker_points()
        assert len(pts) == 9 and all(np.isfinite(p[2]) for p in pts)
        c.step(10)  # still runs and draws
        assert c.state != "error"
    finally:
        c.close()


def test_the_dashboard_keeps_its_newest_probes_and_bounded_series(cifar, monkeypatch):
    from optiviz.training import runs
    from optiviz.views.dashboard import series

    monkeypatch.setattr(runs, "KEEP_PROBES", 5)
    monkeypatch.setattr(series, "STEP_ROWS", 128)
    monkeypatch.setattr(series, "EVENT_ROWS", 64)
    c = DashboardController(RunSpec(model="mlp", optimizer="sgd", batch_size=16, width=8), cifar.subset(64, 16, 0),
                            probe_every=2)
    try:
        c.step(400)
        t, s = c.trainer, c.series[0]
        assert len(t.probe_records) == 5 and t.probe_records[-1].step == 398
        assert len(t.history["step"]) == 400  # the trainer's scalar history is whole (8 bytes a value)
        assert len(s.loss) <= 132 and s.loss.samples == 400 and s.loss.last[0] == 399
        assert len(s.ratio) <= 68 and s.ratio.samples == 200
        c.request("snapshot", sync=True)
        c.step(4)
        c.request("rewind", 0, sync=True)
        assert c.trainer.step_count == 400 and c.series[0].loss.last[0] == 399
    finally:
        c.close()


def test_trainer_history_is_compact_and_snapshots_copy_it(cifar):
    t = ov.Trainer("mlp", cifar.subset(64, 16, 0), optimizer="sgd", lr=1e-3, batch_size=16, width=8, max_probes=2,
                   probe_every=1, divergence_factor=None)
    t.run(steps=6)
    assert len(t.probe_records) == 2 and [p.step for p in t.probe_records] == [4, 5]
    snap = t.snapshot()
    h = t.history
    t.run(steps=3)  # a view of the history must not stop it from growing
    assert len(h["step"]) == 6 and len(t.history["step"]) == 9
    t.restore(snap)
    assert list(t.history["step"]) == list(range(6))
    with pytest.raises(ValueError, match="max_probes must be in"):
        ov.Trainer("mlp", cifar.subset(64, 16, 0), max_probes=0)
