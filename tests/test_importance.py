"""Which hyperparameter matters (issue 16, item 5): eta^2 of binned values ranks a planted strong parameter first."""
import numpy as np
import pytest

import optiviz as ov
from optiviz.training.importance import eta_squared, spearman
from optiviz.training.search import SearchPoint


def synthetic(n=60, seed=0):
    rng = np.random.default_rng(seed)
    cols = {"lr": 10 ** rng.uniform(-4, 0, n), "weight_decay": 10 ** rng.uniform(-6, -1, n),
            "momentum": 1 - 10 ** rng.uniform(-2, -0.5, n)}
    # lr matters (an inverted U in log lr: rank correlation alone misses it), momentum a little, wd not at all
    acc = 0.45 - 0.08 * (np.log10(cols["lr"]) + 2) ** 2 + 0.02 * (cols["momentum"] > 0.95) + rng.normal(0, 0.005, n)
    return cols, acc


def test_planted_strong_parameter_ranks_first():
    cols, acc = synthetic()
    table = ov.hyperparameter_importance(cols, acc)
    assert table.ranking[0] == "lr"
    lr = table.rows[0]
    assert lr.eta2 > 0.6 and lr.tier == 1
    assert abs(lr.spearman) < 0.4  # the U shape: eta^2 sees what a rank correlation does not
    assert lr.bin_means[1] > lr.bin_means[0] and lr.bin_means[2] > lr.bin_means[3]
    assert {r.name: r.eta2 for r in table.rows}["weight_decay"] < 0.2
    assert "eta^2" in table.table() and "1 (first)" in table.table()


def test_from_search_points_leaves_aborted_runs_out():
    cols, acc = synthetic(40, seed=1)
    acc[:5] = np.nan
    points = [SearchPoint(i, "random", 0, {k: float(v[i]) for k, v in cols.items()}, float(acc[i]), np.zeros(1),
                          np.zeros(1), bool(np.isnan(acc[i])), -1, 1, i) for i in range(40)]
    table = ov.hyperparameter_importance(points)
    assert table.n_points == 35 and table.n_dropped == 5 and table.ranking[0] == "lr"


def test_measures():
    x = np.arange(8.0)
    assert eta_squared(x, np.repeat([0.0, 1.0], 4), 2)[0] == pytest.approx(1.0)
    assert eta_squared(x, np.tile([0.0, 1.0], 4), 2)[0] == pytest.approx(0.0)
    assert spearman(x, x ** 3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)


def test_bad_input_names_the_parameter():
    cols, acc = synthetic(10)
    with pytest.raises(ValueError, match="bins"):
        ov.hyperparameter_importance(cols, acc, bins=1)
    with pytest.raises(ValueError, match="val_acc"):
        ov.hyperparameter_importance(cols)
    with pytest.raises(ValueError, match="val_acc"):
        ov.hyperparameter_importance(cols, acc[:5])
    with pytest.raises(ValueError, match="results"):
        ov.hyperparameter_importance([1, 2, 3])
    with pytest.raises(ValueError, match="scales"):
        ov.hyperparameter_importance(cols, acc, scales=3)
