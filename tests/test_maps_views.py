"""Stability and basin map widgets: they draw what the headless sweeps compute, and stay alive on bad input."""
import numpy as np
import pytest

import optiviz as ov
from optiviz.engine.sweeps import make_axis


@pytest.fixture
def view():
    v = ov.StabilityMapView("quadratic", "sgd", "lr", "weight_decay", resolution=12, steps=60, every=20)
    yield v
    v.close()


def test_stability_view_draws_the_headless_map(view):
    m = view.compute_sync()
    assert m.steps_done == 60
    ref = ov.stability_map("quadratic", "sgd", make_axis("lr", num=12), make_axis("weight_decay", num=12), steps=60)
    np.testing.assert_array_equal(m.final_loss, ref.final_loss)
    colour = np.asarray(view.heatmap.color)
    assert colour.shape == (12, 12)
    np.testing.assert_allclose(colour, ref.colour("loss").astype(np.float32), equal_nan=True)
    np.testing.assert_allclose(view.heatmap.x, np.log10(ref.x.values).astype(np.float32))
    assert view.progress.value == 1.0
    assert "diverged" in view.status.value


def test_stability_view_streams_partial_maps(view):
    seen = []
    original = view._publish
    view.runner._publish = lambda recs: (seen.extend(r.steps_done for r in recs), original(recs))
    view.compute_sync()
    assert seen == [20, 40, 60]


def test_click_a_cell_shows_its_run(view):
    view.compute_sync()
    setting = view.select(3, 5)
    run = ov.simulate("quadratic", "sgd", steps=60, lr=setting["lr"], weight_decay=setting["weight_decay"])
    np.testing.assert_allclose(view.path.x, run.path[:, 0].astype(np.float32))
    assert "sgd" in view.selection.value
    # a click in data coordinates picks the nearest cell
    xs = np.asarray(view.heatmap.x)
    ys = np.asarray(view.heatmap.y)
    click = {"event": "element_click", "data": {"click_x": float(xs[7]) + 1e-3, "click_y": float(ys[2])}}
    view.click_target._handle_custom_msgs(None, click)  # what the browser sends
    assert view.selected["lr"] == pytest.approx(view.result.x.values[7])


def test_colour_by_switches_scheme(view):
    view.compute_sync()
    view.colour_w.value = "diverged"
    assert set(np.unique(np.asarray(view.heatmap.color))) <= {0.0, 1.0}
    assert view.map_figure.title == "stability map · diverged (1) or not (0)"


def test_bad_settings_show_a_message_not_a_traceback(view):
    view.y_w.value = "lr"
    view.compute_sync()
    assert "must differ" in view.status.value
    assert view.result is None
    with pytest.raises(ValueError, match="compute the map first"):
        view.select(0, 0)
    view.y_w.value = "weight_decay"
    view.compute_sync()
    with pytest.raises(ValueError, match="outside"):
        view.select(12, 0)


def test_optimizer_change_updates_axes(view):
    view.optimizer_w.value = "adam"
    assert "beta2" in view.x_w.options and view.x_w.value != view.y_w.value


def test_basin_view_labels_himmelblau():
    v = ov.BasinMapView("himmelblau", ("sgd", "adam"), resolution=16, steps=300, every=100)
    try:
        b = v.compute_sync()
        assert b.labels.shape == (2, 16, 16)
        hm = v._figures["sgd"][1]
        colour = np.asarray(hm.color)
        assert colour.shape == (16, 16) and np.isfinite(colour).sum() > 200
        assert v.legend.value.count("<tr>") == 1 + len(b.minima[:8])
    finally:
        v.close()


def test_rate_colouring_with_the_theory_drawn_on_the_map():
    v = ov.StabilityMapView("quadratic", "momentum", resolution=30, steps=300, colour="rate")
    try:
        m = v.compute_sync()
        theory = m.theory()
        colour = np.asarray(v.heatmap.color)
        np.testing.assert_allclose(colour, m.colour("rate").astype(np.float32))
        assert np.isfinite(colour).all()  # no NaN cell: the browser drew those with a neighbour's colour
        assert np.all(colour[m.diverged] == 2.0) and np.allclose(colour[~m.diverged], np.nan_to_num(m.rate[~m.diverged]))
        assert (v._cs.min, v._cs.mid, v._cs.max) == (0.0, 1.0, 2.0)  # pale at 1: converging blue, growing red
        # the analytic edge 2(1 + beta)/50 over every beta row, in the plot's log10 lr coordinates
        np.testing.assert_allclose(v.edge_line.x, np.log10(2 * (1 + m.y.values) / 50).astype(np.float32), rtol=1e-6)
        np.testing.assert_allclose(v.edge_line.y, m.y.values.astype(np.float32))
        np.testing.assert_allclose(v.best_mark.x, [np.log10(theory.best["lr"])], rtol=1e-6)
        assert "rate 0.752" in v.theory_html.value
        i, j = 12, 10
        v.select(i, j)
        assert f"measured rate {m.rate[i, j]:.4f}" in v.selection.value
        assert f"predicted {theory.predicted[i, j]:.4f}" in v.selection.value
        v.colour_w.value = "loss"  # another colouring frees the scale's fixed range
        assert v._cs.min is None and v._cs.mid is None
    finally:
        v.close()


def test_a_map_without_exact_theory_says_so_and_draws_no_edge():
    v = ov.StabilityMapView("rosenbrock", "adam", "lr", "beta1", resolution=8, steps=20)
    try:
        v.compute_sync()
        assert len(v.edge_line.x) == 0 and len(v.best_mark.x) == 0
        assert "No exact theory" in v.theory_html.value
    finally:
        v.close()


def test_a_diverged_cells_run_is_drawn_until_it_leaves_the_plot():
    v = ov.StabilityMapView("quadratic", "momentum", resolution=10, steps=200)
    try:
        m = v.compute_sync()
        i, j = np.argwhere(m.diverged)[0]
        v.select(int(i), int(j))
        ys = np.asarray(v.path.y)
        assert np.abs(ys[:-1]).max() <= 4 * 1.5 + 1e-6  # inside the plot (|y| <= 4) grown by a quarter each side
        assert abs(ys[-1]) > 6 and len(ys) < 200  # the point that left is shown, the 100-widths tail is not
    finally:
        v.close()


def test_the_partial_maps_of_one_computation_share_one_theory():
    """The theory needs no runs: worked out once per computation, its marks sent once, not per frame."""
    from optiviz.engine.sweeps import iter_stability_map

    maps = list(iter_stability_map("quadratic", "momentum", resolution=8, steps=60, every=20))
    assert len(maps) == 3 and maps[0].theory() is not None
    assert all(m.theory() is maps[0].theory() for m in maps)
