"""Random vs grid search on tiny slices: one budget, log-space sampling, coarse to fine, abort, streaming."""
from __future__ import annotations

import numpy as np
import pytest

from optiviz.training.search import (COARSE_TO_FINE, Dim, SearchPoint, Stage, edge_warning, grid_search, grid_shape,
                                     iter_random_search, make_space, plan_stages, random_search)

SPACE = {"lr": (1e-3, 1e2), "weight_decay": (1e-5, 1e-1), "momentum": 0.9}


@pytest.fixture(scope="module")
def data(cifar):
    return cifar.subset(96, 32, 32)


def small(**kw):
    return dict(batch_size=32, width=8, **kw)  # 3 steps an epoch


def test_random_and_grid_spend_the_same_budget(data):
    rand = random_search(20, SPACE, COARSE_TO_FINE, data=data, **small())
    grid = grid_search(20, SPACE, data=data, **small())
    assert rand.budget_used == grid.budget_used == 20
    assert sum(p.epochs for p in rand.points) == sum(p.epochs for p in grid.points) == 20
    assert rand.plan == [(11, 1), (3, 3)] and grid.plan == [(20, 1)]
    # the grid is 5 x 4, both ends of each range included; random tries 14 distinct lrs, the grid 5
    assert len(np.unique(grid.values("lr"))) == 5 and len(np.unique(grid.values("weight_decay"))) == 4
    assert grid.values("lr").min() == pytest.approx(1e-3) and grid.values("lr").max() == pytest.approx(1e2)
    assert len(np.unique(rand.values("lr"))) == 14
    assert all(p.hparams["momentum"] == 0.9 for p in rand.points + grid.points)


def test_huge_lr_runs_are_aborted_and_never_best(data):
    res = random_search(12, {"lr": (1e-3, 1e3), "momentum": 0.9}, data=data, **small())
    aborted = [p for p in res.points if p.aborted]
    assert aborted and all(p.hparams["lr"] > 1 for p in aborted)
    for p in aborted:
        assert p.abort_step >= 0 and np.isnan(p.val_acc)
        assert np.isnan(p.train_loss[p.abort_step + 1:]).all()
    assert not res.best.aborted and np.isfinite(res.best.val_acc)
    assert all(p.abort_step == -1 for p in res.points if not p.aborted)


def test_coarse_to_fine_narrows_around_the_best(data):
    stages = [Stage(epochs=1, share=0.5), Stage(epochs=2, share=0.5, shrink=0.25)]
    res = random_search(16, SPACE, stages, data=data, **small())
    coarse = [p for p in res.points if p.stage == 0]
    fine = [p for p in res.points if p.stage == 1]
    assert len(coarse) == 8 and len(fine) == 4 and all(p.epochs == 2 for p in fine)
    best = max((p for p in coarse if not p.aborted), key=lambda p: p.val_acc)
    for name in ("lr", "weight_decay"):
        low, high = fine[0].ranges[name]
        full = Dim(name, *SPACE[name])
        assert np.log10(high / low) == pytest.approx(0.25 * np.log10(full.high / full.low))
        assert full.low <= low <= best.hparams[name] <= high <= full.high
        assert all(low <= p.hparams[name] <= high for p in fine)


def test_results_stream_in_arrival_order_and_are_deterministic(data):
    seen: list[SearchPoint] = []
    a = random_search(10, SPACE, data=data, parallel=4, callback=seen.append, seed=7, **small())
    assert [p.index for p in seen] == list(range(10)) and seen == a.points
    streamed = list(iter_random_search(10, SPACE, data=data, parallel=10, seed=7, **small()))
    for p, q in zip(a.points, streamed):  # how many run at once changes nothing but rounding
        assert p.hparams == q.hparams and p.aborted == q.aborted and p.seed == q.seed
        np.testing.assert_allclose(p.train_loss, q.train_loss, rtol=1e-4)
    b = random_search(10, SPACE, data=data, parallel=4, seed=7, **small())
    assert [p.hparams for p in a.points] == [p.hparams for p in b.points]
    np.testing.assert_array_equal(a.val_acc, b.val_acc)
    c = random_search(10, SPACE, data=data, parallel=4, seed=8, **small())
    assert [p.hparams for p in a.points] != [p.hparams for p in c.points]


def test_sampling_is_uniform_in_log_space():
    rng = np.random.default_rng(0)
    lr = Dim("lr", 1e-6, 1e-3).sample(rng, 20000)
    assert lr.min() >= 1e-6 and lr.max() <= 1e-3
    assert np.mean(lr < 1e-5) == pytest.approx(1 / 3, abs=0.02)  # a third of the decades, a third of the draws
    mom = Dim("momentum", 0.9, 0.999, "log1m").sample(rng, 20000)
    assert np.mean(mom > 0.99) == pytest.approx(0.5, abs=0.02)  # 1 - beta = 10**uniform(-3, -1)
    drop = Dim("dropout", 0.0, 0.5, "linear").sample(rng, 20000)
    assert np.mean(drop < 0.25) == pytest.approx(0.5, abs=0.02)
    assert make_space({"momentum": (0.5, 0.99)})["momentum"].scale == "log1m"


def point(lr, wd, acc, aborted=False):
    return SearchPoint(0, "random", 0, {"lr": lr, "weight_decay": wd}, acc, np.zeros(0), np.zeros(0), aborted, -1, 1, 0)


def test_edge_warning_says_when_the_best_sits_at_an_edge():
    space = {"lr": (1e-6, 1e-3), "weight_decay": (1e-5, 1e5)}
    inside = [point(1e-5, 1.0, 0.4), point(2e-4, 1e3, 0.3)]
    assert edge_warning(inside, space) is None
    at_top = inside + [point(9e-4, 1.0, 0.5)]
    msg = edge_warning(at_top, space)
    assert "best lr = 0.0009 sits at the upper edge" in msg and "weight_decay" not in msg
    # an aborted run at the edge is not the best, whatever its number says
    assert edge_warning(inside + [point(9e-4, 1.0, 0.9, aborted=True)], space) is None
    low = edge_warning([point(1e-5, 2e-5, 0.5)], space)
    assert "weight_decay" in low and "lower edge" in low
    beta = edge_warning([point(0, 0, 0.5) for _ in range(0)] + [
        SearchPoint(0, "grid", 0, {"momentum": 0.999}, 0.5, np.zeros(0), np.zeros(0), False, -1, 1, 0)],
        {"momentum": (0.9, 0.999, "log1m")})
    assert "upper edge" in beta


def test_grid_shape_and_budget_plans():
    assert grid_shape(16, 2) == (4, 4) and grid_shape(20, 2) == (5, 4) and grid_shape(17, 2) == (4, 4)
    assert grid_shape(1000, 3) == (10, 10, 10) and grid_shape(7, 1) == (7,)
    assert plan_stages(32, COARSE_TO_FINE) == [17, 5]  # 17 x 1 + 5 x 3 = 32
    assert plan_stages(9, [Stage(3)]) == [3]


def test_bad_inputs(data):
    with pytest.raises(ValueError, match=r"budget must be in \[1, inf\)"):
        random_search(0, SPACE, data=data)
    with pytest.raises(ValueError, match="space must be a non-empty mapping"):
        grid_search(4, {}, data=data)
    with pytest.raises(ValueError, match="needs low < high"):
        random_search(4, {"lr": (1e-1, 1e-3)}, data=data)
    with pytest.raises(ValueError, match=r"space\['lr'\] low must be in \(0, inf\)"):
        random_search(4, {"lr": (0.0, 1.0)}, data=data)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        random_search(4, {"lr": (1e-3, 1.0), "momentum": (0.5, 1.5, "linear")}, data=data)
    with pytest.raises(ValueError, match="unknown space"):
        random_search(4, {"lr": (1e-3, 1.0, "cubic")}, data=data)
    with pytest.raises(ValueError, match="at least one hyperparameter"):
        random_search(4, {"lr": 0.1}, data=data)
    with pytest.raises(ValueError, match=r"stage shrink must be in \(0, 1\]"):
        random_search(4, SPACE, [Stage(1, 1.0, 0.0)], data=data)
    with pytest.raises(ValueError, match="every stage at least one run"):
        random_search(3, SPACE, COARSE_TO_FINE, data=data)
    with pytest.raises(ValueError, match="at least epochs"):
        grid_search(2, SPACE, epochs=3, data=data)
    with pytest.raises(ValueError, match=r"margin must be in \[0, 0.5\]"):
        edge_warning([], SPACE, margin=0.7)
