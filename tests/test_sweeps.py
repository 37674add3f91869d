"""Many runs at once: stability and basin maps equal the same runs done one by one."""
import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz.engine.sweeps import iter_stability_map, make_axis

F64 = torch.float64


def test_stability_map_cells_equal_single_runs():
    m = ov.stability_map("quadratic", "momentum", "lr", "momentum", resolution=(12, 10), steps=150, dtype=F64)
    assert m.final_loss.shape == (10, 12) and m.status.shape == (10, 12)
    for i, j in [(0, 0), (3, 7), (9, 11), (5, 2)]:
        single = ov.simulate("quadratic", "momentum", steps=150, dtype=F64, **m.setting(i, j))
        assert m.final_loss[i, j] == single.loss[-1]
        assert (m.status[i, j] == 2) == (single.status == "diverged")


def test_stability_map_has_a_sharp_edge_in_lr():
    m = ov.stability_map("quadratic", "sgd", "lr", make_axis("weight_decay", [0.0]), resolution=(60, 1), steps=200)
    div = m.diverged[0]
    assert not div[0] and div[-1]
    # too small / just right / too large: divergence is monotone in lr
    first = int(np.argmax(div))
    assert div[first:].all() and not div[:first].any()
    colour = m.colour("loss")
    assert np.isnan(colour[0, first:]).all() and np.isfinite(colour[0, :first]).all()


def test_stability_map_streams_progress():
    maps = list(iter_stability_map("rosenbrock", "adam", "lr", "beta2", resolution=8, steps=100, every=25))
    assert [m.steps_done for m in maps] == [25, 50, 75, 100]
    assert maps[-1].progress == 1.0
    assert maps[0].y.scale == "log1m" and maps[0].y.values.max() < 1


def test_axis_defaults_come_from_the_hyperparameter_table():
    """Default ranges are the table's (engine/hparams.py), per optimizer: nesterov's momentum axis
    starts above 0, which torch requires, so its default map runs instead of raising."""
    from optiviz.engine.hparams import sweep_axes
    from optiviz.engine.sweeps import axis_names

    assert axis_names("adam") == ["lr", "eps", "weight_decay", "beta1", "beta2"]
    assert list(sweep_axes("sgd")) == ["lr", "weight_decay"]
    beta2 = make_axis("beta2", num=3)
    assert beta2.scale == "log1m" and beta2.values[0] == pytest.approx(0.9) and beta2.values[-1] == pytest.approx(0.9999)
    assert make_axis("momentum", num=3).values[0] == 0.0
    assert make_axis("momentum", num=3, optimizer="nesterov").values[0] == pytest.approx(0.01)
    m = ov.stability_map("quadratic", "nesterov", resolution=4, steps=20)
    assert m.y.name == "momentum" and m.y.values.min() > 0 and m.status.shape == (4, 4)


def test_stability_map_keeps_a_fixed_beta_the_axis_does_not_sweep():
    kw = {"betas": (0.5, 0.999)}
    m = ov.stability_map("quadratic", "adam", "lr", "beta2", resolution=3, steps=10, dtype=F64, **kw)
    single = ov.simulate("quadratic", "adam", steps=10, dtype=F64, lr=m.x.values[1], betas=(0.5, m.y.values[2]))
    assert m.final_loss[2, 1] == single.loss[-1]
    assert kw == {"betas": (0.5, 0.999)}


def test_stability_map_bad_axis():
    with pytest.raises(ValueError, match="momentum"):
        ov.stability_map("quadratic", "adam", "lr", "momentum", resolution=4, steps=5)


def test_basin_map_himmelblau_finds_four_minima():
    b = ov.basin_map("himmelblau", ["sgd", "adam"], resolution=24, steps=400)
    assert b.labels.shape == (2, 24, 24)
    found = set(np.unique(b.labels[0])) - {-1, -2}
    assert found == {0, 1, 2, 3}
    # a start right next to a minimum ends in that minimum
    minima = np.asarray(ov.get_surface("himmelblau").minima)
    for k, (mx, my) in enumerate(minima):
        j = int(np.abs(b.xs - mx).argmin())
        i = int(np.abs(b.ys - my).argmin())
        assert b.labels[0, i, j] == k


def test_basin_map_rastrigin_finds_its_many_local_minima():
    b = ov.basin_map("rastrigin", "sgd", resolution=22, steps=300)
    labels = b.labels[0]
    assert (labels >= 0).mean() > 0.95  # float32 runs settle by gradient even when gtol is out of reach
    used = np.unique(labels[labels >= 0])
    assert len(used) >= 60  # a grid of local minima near the integer points, not just the global one
    ends = b.minima[used]
    np.testing.assert_allclose(ends, np.round(ends), atol=0.05)
