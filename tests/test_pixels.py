"""Lines thinned to the screen (views/common/pixels.py): what is dropped moves the line by less than
a pixel, and the explorer's trajectories mark holds that subset of its paths."""
import bqplot as bq
import ipywidgets as widgets
import numpy as np
import pytest

import optiviz as ov
from optiviz.views.common.pixels import CELL_PX, cell_size, plot_area_px, screen_thin


def _distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest segment of `line` (both in pixels)."""
    a, b = line[:-1], line[1:]
    ab = b - a
    ap = points[:, None, :] - a[None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-300), 0.0, 1.0)
    nearest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None, :] - nearest, axis=-1).min(axis=1)


def test_thinned_line_stays_within_a_cell_diagonal_of_every_point():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0.0, 0.05, size=(5000, 2)), axis=0)  # mostly sub-pixel moves, in pixels
    keep = screen_thin(walk[:, 0], walk[:, 1], CELL_PX, CELL_PX)
    assert keep[0] == 0 and keep[-1] == len(walk) - 1 and np.all(np.diff(keep) > 0)
    assert len(keep) < len(walk) / 2  # a crawl: most points share a cell with the one before
    worst = _distance_to_polyline(walk, walk[keep]).max()
    assert 0 < worst <= CELL_PX * np.sqrt(2) + 1e-9


def test_points_a_pixel_apart_and_non_finite_ones_are_all_kept():
    x = np.arange(10.0)
    y = np.array([0, 1, 2, np.inf, 4, 5, np.nan, 7, 8, 9.0])
    assert list(screen_thin(x, y, CELL_PX, CELL_PX)) == list(range(10))
    flat_x, flat_y = np.linspace(0, 0.1, 50), np.zeros(50)
    flat_y[20] = np.nan  # a gap in a crawl keeps its neighbours, so the line breaks where it did
    keep = set(screen_thin(flat_x, flat_y, CELL_PX, CELL_PX))
    assert {0, 19, 20, 21, 49} <= keep and len(keep) == 5
    assert list(screen_thin(flat_x, np.zeros(50), None, CELL_PX)) == list(range(50))  # no span known: all


def test_log_axis_cells_are_in_decades():
    loss = np.geomspace(1.0, 1e-6, 1000)  # six decades
    steps = np.zeros(1000)  # one column: only y decides
    scale = bq.LogScale(min=1e-6, max=1.0)
    cell = cell_size(scale, loss, pixels=120.0)  # 20 px a decade
    assert cell == pytest.approx(6 * CELL_PX / 120.0)
    keep = screen_thin(steps, loss, 1.0, cell, log_y=True)
    assert 230 <= len(keep) <= 250  # 240 half-pixel cells over 120 px
    assert cell_size(bq.LinearScale(), np.array([2.0, 4.0]), pixels=100.0) == pytest.approx(2 * CELL_PX / 100)
    assert cell_size(bq.LinearScale(), np.array([3.0, 3.0]), pixels=100.0) is None


def test_plot_area_is_the_layout_less_the_margins():
    fig = bq.Figure(layout=widgets.Layout(width="560px", height="540px"),
                    fig_margin={"top": 50, "bottom": 60, "left": 90, "right": 20})
    assert plot_area_px(fig) == (450.0, 430.0)
    assert plot_area_px(bq.Figure(layout=widgets.Layout(width="100%", height="300px"))) is None


def test_explorer_draws_the_screen_subset_of_each_path():
    e = ov.SurfaceExplorer("quadratic", ("sgd", "adam"), condition=100.0,
                           hparams={"sgd": {"lr": 0.0005}, "adam": {"lr": 0.05}})
    e.step(600)
    f = e.figures
    (w, h), sx, sy = plot_area_px(f.surface_figure), f.plot.x_scale, f.plot.y_scale
    xs, ys = f.rows("path", e.optimizers)

    def to_px(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[:, 0] - sx.min) / (sx.max - sx.min) * w, (p[:, 1] - sy.min) / (sy.max - sy.min) * h], -1)

    for o in e.optimizers:
        path = e.paths[o]
        drawn = np.stack([xs[o], ys[o]], -1)
        assert len(drawn) < len(path)  # sgd at this lr crawls: hundreds of its points share pixels
        index = [int(np.flatnonzero(np.all(path == p, axis=1))[0]) for p in drawn]
        assert index[0] == 0 and index[-1] == len(path) - 1 and index == sorted(index)
        assert _distance_to_polyline(to_px(path), to_px(drawn)).max() <= CELL_PX * np.sqrt(2) + 1e-3
    assert e.heads["sgd"] == pytest.approx(tuple(e.paths["sgd"][-1]))
