"""Paths drawn as a settled and a live mark (views/common/split_lines.py): a frame resends only the
points since the last settling, and the two marks together draw the whole path."""
from contextlib import ExitStack

import bqplot as bq
import numpy as np
import pytest

import optiviz as ov
from optiviz.stream.series import SeriesBuffer
from optiviz.views.common.pixels import CELL_PX, plot_area_px
from optiviz.views.common.split_lines import LIVE_POINTS, SplitLines
from test_pixels import _distance_to_polyline


def _identity(rows):
    return rows


def test_buffer_since_returns_every_row_from_a_step_with_the_newest_kept_aside():
    buf = SeriesBuffer(2, max_rows=64, keep_first=16)
    steps = np.arange(200, dtype=float)
    buf.extend(steps, np.stack([steps, -steps], -1))
    s, v = buf.since(150)
    assert s[0] >= 150 and s[-1] == 199 and np.all(np.diff(s) > 0)
    assert np.array_equal(v[:, 0], s) and np.array_equal(v[:, 1], -s)
    assert len(buf.since(199)[0]) == 1 and len(buf.since(500)[0]) == 0
    assert s.dtype == np.float32


def test_live_rows_grow_then_every_row_resettles_and_the_joined_rows_are_the_whole_path():
    t = np.arange(500, dtype=np.float32)
    paths = [(t, np.sin(t / 30), np.cos(t / 30)), (t, t / 100, -t / 50)]
    n = {"k": 1}

    def whole():
        return [(s[: n["k"]], x[: n["k"]], y[: n["k"]]) for s, x, y in paths]

    def since(splits):
        return [(s[(s >= a) & (s < n["k"])], x[(s >= a) & (s < n["k"])], y[(s >= a) & (s < n["k"])])
                for (s, x, y), a in zip(paths, splits)]

    lines = SplitLines({"x": bq.LinearScale(), "y": bq.LinearScale()}, live_points=16)
    settles, live_sizes = [], []
    for k in range(1, 500, 3):
        n["k"] = k
        with ExitStack() as stack:
            settles.append(lines.draw(whole, since, _identity, stack))
        live_sizes.append(max(len(x) for x, _ in lines._drawn["live"]))
        for (s, x, y), (jx, jy) in zip(paths, lines.rows()):
            assert np.array_equal(jx, x[:k]) and np.array_equal(jy, y[:k])  # nothing lost, nothing twice
    assert max(live_sizes) <= 16
    assert 20 < sum(settles) < 40  # a re-settle about every 5 frames of 3 new points, not every frame
    assert lines.settles == sum(settles)


def test_explorer_frames_resend_only_the_live_part_and_draw_every_visited_point():
    e = ov.SurfaceExplorer("rosenbrock", ("sgd", "momentum", "adam"))
    f = e.figures
    e.step(100)
    settled_msgs = []
    settled = f.trajectories.settled
    settled.observe(lambda change: settled_msgs.append(1), names="x")
    live_lengths = []
    for _ in range(150):
        e.step(2)
        live_lengths.append(np.asarray(f.trajectories.live.x).shape[-1])
    assert max(live_lengths) <= LIVE_POINTS
    assert len(settled_msgs) < 150 // 4  # most frames leave the settled part alone
    (w, h), sx, sy = plot_area_px(f.surface_figure), f.plot.x_scale, f.plot.y_scale

    def to_px(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[:, 0] - sx.min) / (sx.max - sx.min) * w, (p[:, 1] - sy.min) / (sy.max - sy.min) * h], -1)

    xs, ys = f.rows("path", e.optimizers)
    for o in e.optimizers:
        _s, visited = e.controller.race.buffers["path"][o].arrays()  # 401 points: none decimated yet
        assert len(visited) == 401
        drawn = np.stack([xs[o], ys[o]], -1)
        assert np.allclose(drawn[0], visited[0]) and np.allclose(drawn[-1], visited[-1])
        assert e.heads[o] == pytest.approx(tuple(drawn[-1]))
        assert _distance_to_polyline(to_px(visited), to_px(drawn)).max() <= CELL_PX * np.sqrt(2) + 1e-3


def test_a_reset_settles_anew_with_both_parts_in_the_run_colours():
    e = ov.SurfaceExplorer("quadratic", ("sgd", "adam"))
    e.step(50)
    for _ in range(5):
        e.step(2)
    e.reset()
    xs, _ys = e.figures.rows("path", e.optimizers)
    assert all(len(xs[o]) == 1 for o in e.optimizers)  # the start point only: nothing of the old run
    assert list(e.figures.trajectories.live.colors) == list(e.figures.trajectories.settled.colors)
