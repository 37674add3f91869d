"""Search and ensemble widgets draw what the headless searches compute, as they arrive."""
import numpy as np
import pytest

import optiviz as ov
from optiviz.training.search import random_search


@pytest.fixture(scope="module")
def tiny(cifar):
    return cifar.subset(256, 128, 128)


def test_search_view_streams_random_then_grid_with_one_budget(tiny):
    view = ov.SearchView(budget=8, coarse_to_fine=False, data=tiny, parallel=8, batch_size=64)
    try:
        seen = []
        original = view._publish
        view.runner._publish = lambda recs: (seen.append(len(recs)), original(recs))
        view.run_sync()
        assert len(view.points["random"]) == 8 and len(view.points["grid"]) == 8
        assert sum(seen) == 16 and len(seen) == 16  # one point per frame, as they arrive
        ref = random_search(8, ov.training.search.LECTURE_SPACE, data=tiny, parallel=8, batch_size=64)
        got = sorted(p.val_acc for p in view.points["random"])
        np.testing.assert_allclose(got, sorted(ref.val_acc), equal_nan=True)
        live = [p for p in view.points["grid"] if not p.aborted]
        np.testing.assert_allclose(view.marks["grid"].x, [p.hparams["lr"] for p in live], rtol=1e-6)
        assert view.progress.value == pytest.approx(1.0)
        assert "random" in view.table.value and "grid" in view.table.value
        assert len(view.best_mark.x) == 1
    finally:
        view.close()


def test_search_view_warns_at_the_edge(tiny):
    # a range whose best lr is surely its top: everything is far too small
    view = ov.SearchView(budget=4, space={"lr": (1e-6, 1e-4), "weight_decay": (1e-5, 1e-4), "momentum": 0.9},
                         coarse_to_fine=False, data=tiny, parallel=4, batch_size=64)
    try:
        view.run_sync()
        assert "edge" in view.warning.value
    finally:
        view.close()


def test_search_view_bad_space_is_a_message(tiny):
    view = ov.SearchView(budget=4, space={"lr": (-1.0, 1.0)}, data=tiny)
    try:
        view.run_sync()
        assert "lr" in view.status.value and "optiviz-error" in view.status.value
    finally:
        view.close()


def test_ensemble_view_fills_every_row(tiny):
    view = ov.EnsembleView("mlp", tiny, k=3, epochs=2, snapshots=3, batch_size=64)
    try:
        view.run_sync()
        assert [r.key for r in view.rows] == list(ov.training.ensembles.ROW_KEYS)
        assert view.table.value.count("<tr>") == 1 + len(view.rows)
        assert "0.837" in view.table.value  # the lecture's baseline beside ours
        assert view.progress.value == pytest.approx(1.0)
    finally:
        view.close()


def test_ensemble_view_bad_setting_is_a_message(tiny):
    view = ov.EnsembleView("mlp", tiny, k=2, epochs=1, snapshots=50, batch_size=64)
    try:
        view.run_sync()
        assert "snapshots" in view.status.value and "optiviz-error" in view.status.value
        assert view.rows == []
    finally:
        view.close()


def test_ensemble_view_stop_ends_training_early(tiny):
    view = ov.EnsembleView("mlp", tiny, k=2, epochs=3, snapshots=3, batch_size=64)
    try:
        view._iter = view._start()
        view.stop_requested = True  # Stop pressed while the nets train
        view.runner.run_sync(3)
        assert view.rows == [] and 0 < view.progress.value < 0.9
    finally:
        view.close()


def test_search_axes_span_the_space_with_decade_ticks_and_no_legend_over_the_points():
    view = ov.SearchView(budget=4, space={"lr": (1e-4, 1.0), "weight_decay": (1e-6, 1e-1), "momentum": 0.9})
    try:
        x_axis, y_axis, color_axis = view.figure.axes
        assert (view._sx.min, view._sx.max) == pytest.approx((1e-4 / 1.4, 1.4))  # the range, a point on its edge whole
        assert (view._sy.min, view._sy.max) == pytest.approx((1e-6 / 1.4, 1.4e-1))
        assert list(x_axis.tick_values) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]  # d3's own read "5e-11e+0"
        assert list(y_axis.tick_values) == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
        assert x_axis.tick_format == ".0e" and not color_axis.label  # the colour's meaning is in the title
        assert "colour" in view.figure.title
        assert not any(m.display_legend for m in view.figure.marks)  # the key sits under the figure
        assert "random search" in view.legend.value and "best" in view.legend.value
    finally:
        view.close()
