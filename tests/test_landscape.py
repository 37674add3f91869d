"""The race on a real net, loss landscapes and interpolation: checked against a plain nn.Module loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import optiviz as ov
from optiviz.training import planes
from optiviz.training.net_race import SnapshotLog
from optiviz.training.planes import evaluate_one_by_one, load_flat


@pytest.fixture(scope="module")
def data():
    return ov.load_cifar10().subset(256, 64, 64)


@pytest.fixture(scope="module")
def race(data):
    return ov.race_on_net("mlp", ("sgd", "adam"), data, epochs=2, batch_size=64, snapshots=6,
                          hparams={"sgd": {"lr": 0.05}})


def _module_loss(template, vector, data):
    net = load_flat(__import__("copy").deepcopy(template), vector).eval()
    with torch.no_grad():
        return float(F.cross_entropy(net(data.x_train), data.y_train))


def test_race_shares_init_and_batches(race):
    first = [race.loss_history(n)[0] for n in race.optimizers]
    assert first[0] == pytest.approx(first[1], abs=1e-6)  # same weights, same first batch
    assert race.step_count == 8
    for n in race.optimizers:
        steps, traj = race.trajectory(n)
        assert steps[0] == 0 and steps[-1] == 8 and len(steps) <= 7
        assert torch.equal(traj[0], race.init)
    assert not torch.equal(race.final("sgd"), race.final("adam"))


def test_snapshot_log_is_bounded_and_even():
    log = SnapshotLog(limit=8)
    net = torch.nn.Linear(2, 1)
    for step in range(1000):
        log.offer(step, net)
    assert 4 <= len(log.steps) <= 8
    gaps = np.diff(log.steps)
    assert log.steps[0] == 0 and len(set(gaps)) == 1


def test_pca_grid_equals_one_module_per_point(race, data):
    land = ov.loss_landscape(race, "pca", resolution=7)
    assert land.loss.shape == land.acc.shape == (7, 7)
    rows, cols = [0, 3, 6, 2], [0, 3, 6, 5]
    coords = np.array([[land.xs[j], land.ys[i]] for i, j in zip(rows, cols)])
    ref = evaluate_one_by_one(land.plane, coords, data)
    np.testing.assert_allclose(land.loss[rows, cols], ref, rtol=1e-4)
    # every path starts at the shared init (the plane's origin) and the plane holds most of them
    for path in land.paths.values():
        np.testing.assert_allclose(path[0], [0.0, 0.0], atol=1e-5)
    assert land.explained_variance == pytest.approx(float(land.pca_shares[:2].sum()), rel=1e-4)
    assert 0.5 < land.explained_variance <= 1.0
    # the clicked point is evaluated exactly: the net at (x, y), not the nearest cell
    loss, acc = land.evaluate(0.3 * land.xs[-1], 0.2 * land.ys[-1], data)
    assert loss == pytest.approx(_module_loss(race.template, land.plane.point(0.3 * land.xs[-1], 0.2 * land.ys[-1]),
                                              data), rel=1e-4)
    assert 0.0 <= acc <= 1.0


def test_conv_net_grid_equals_one_module_per_point(data):
    race = ov.race_on_net("convnet", ("sgd", "momentum"), data, steps=3, batch_size=64, width=4, depth=1)
    land = ov.loss_landscape(race, "pca", resolution=3)
    coords = np.array([[land.xs[0], land.ys[2]], [land.xs[2], land.ys[1]]])
    ref = evaluate_one_by_one(land.plane, coords, data)
    np.testing.assert_allclose([land.loss[2, 0], land.loss[1, 2]], ref, rtol=1e-4)


def test_random_plane_is_filter_normalized(race):
    land = ov.loss_landscape(race, "random", resolution=3, seed=3)
    center = race.final("sgd")
    for name, (where, shape) in planes.param_slices(race.template).items():
        d, w = land.plane.d1[where].view(shape), center[where].view(shape)
        if len(shape) < 2:
            assert float(d.abs().max()) == 0.0  # biases get no direction
        else:
            np.testing.assert_allclose(d.reshape(shape[0], -1).norm(dim=1), w.reshape(shape[0], -1).norm(dim=1),
                                       rtol=1e-4)
    assert land.explained_variance < 0.05  # a random plane holds almost none of the paths
    assert land.xs[0] <= -1.0 and land.xs[-1] >= 1.0


def test_plane_through_three_points(race):
    land = ov.loss_landscape(race, ("init", "sgd", "adam"), resolution=3, span=((-0.5, 2.0), (-0.5, 2.0)))
    a, b = race.final("sgd") - race.init, race.final("adam") - race.init
    np.testing.assert_allclose(land.paths["sgd"][-1], [float(a.norm()), 0.0], atol=1e-4)
    assert land.paths["adam"][-1][1] > 0
    np.testing.assert_allclose(np.linalg.norm(land.paths["adam"][-1]), float(b.norm()), rtol=1e-4)
    assert land.xs[0] == -0.5 and land.ys[-1] == 2.0


def test_interpolate_ends_and_barrier(race, data):
    line = ov.interpolate(race.init, race.final("adam"), data, points=11, model=race)
    assert line.loss[0] == pytest.approx(_module_loss(race.template, race.init, data), rel=1e-5)
    assert line.loss[-1] == pytest.approx(_module_loss(race.template, race.final("adam"), data), rel=1e-5)
    chord = line.loss[0] + line.t * (line.loss[-1] - line.loss[0])
    assert line.barrier == pytest.approx(max(0.0, float(np.max(line.loss - chord))), abs=1e-6)
    modules = ov.interpolate(race.module("sgd"), race.module("adam"), data, points=5, t_range=(-0.5, 1.5))
    assert modules.t[0] == -0.5 and modules.t[-1] == 1.5 and modules.loss.shape == (5,)


def test_bad_input_is_refused_with_what_is_allowed(race, data, monkeypatch):
    with pytest.raises(ValueError, match="unknown plane 'diagonal'; allowed: pca, random"):
        ov.loss_landscape(race, "diagonal")
    with pytest.raises(ValueError, match="resolution must be"):
        ov.loss_landscape(race, resolution=1000)
    one = ov.race_on_net("mlp", "sgd", data, steps=2, batch_size=64)
    with pytest.raises(ValueError, match="at least two optimizers.*plane='random'"):
        ov.loss_landscape(one, "pca")
    with pytest.raises(ValueError, match="points must be"):
        ov.interpolate(race.init, race.final("sgd"), data, points=1, model=race)
    with pytest.raises(ValueError, match="needs the architecture"):
        ov.interpolate(race.init, race.final("sgd"), data)
    with pytest.raises(ValueError, match="a has 3 weights"):
        ov.interpolate([1.0, 2.0, 3.0], race.final("sgd"), data, model=race)
    with pytest.raises(ValueError, match="on one line"):
        ov.loss_landscape(race, ("init", "sgd", "init"))
    with pytest.raises(ValueError, match="snapshots must be"):
        ov.race_on_net("mlp", ("sgd", "adam"), data, steps=1, snapshots=10**6)
    with pytest.raises(ValueError, match="no optimizer in the race .* takes 'centred'"):
        ov.race_on_net("mlp", ("sgd", "adam"), data, steps=1, centred=True)
    shared = ov.race_on_net("mlp", ("sgd", "adam"), data, steps=1, betas=(0.8, 0.99), weight_decay=1e-3)
    assert shared.trainers["adam"].hparams["betas"] == (0.8, 0.99)
    assert shared.trainers["sgd"].hparams["weight_decay"] == 1e-3 and "betas" not in shared.trainers["sgd"].hparams
    bn = ov.build_model("mlp", batch_norm=True)
    with pytest.raises(ValueError, match="batch_norm=False"):
        ov.interpolate(bn, bn, data)
    monkeypatch.setattr(planes, "free_memory", lambda _device: 2 * 2**20)
    monkeypatch.setattr("optiviz.engine.devices.free_memory", lambda _device: 2 * 2**20)
    with pytest.raises(ValueError, match="resolution=201 .* needs about .* lower resolution"):
        ov.loss_landscape(race, resolution=201)


# ------------------------------------------------------------------------------- the view
def test_view_paths_grow_live_and_follow_the_refitted_plane(data):
    view = ov.LandscapeView("mlp", ("sgd", "adam"), data=data, n_train=128, batch_size=32, epochs=2, resolution=5,
                            points=5, refit_every=3)
    c = view.controller
    try:
        view.step(1)  # the first step fits a plane: the paths are the projected snapshots, init first
        assert c.landscape is not None and c.path("sgd").shape == (2, 2)
        view.step(1)  # between refits each step adds one point: where the run is now, on the current plane
        assert c.path("sgd").shape == (3, 2)
        np.testing.assert_allclose(c.path("adam")[-1], c.landscape.project(c.race.current("adam")[None])[0], atol=1e-6)
        np.testing.assert_allclose(view.path_lines["adam"].x[-1], c.path("adam")[-1, 0], rtol=1e-5)
        first = c.landscape
        view.step(1)  # step 3: refit
        assert c.landscape is not first and c.race.step_count == 3
        view.set("adam", lr=0.004)
        assert c.lr("adam") == 0.004 and c.race.trainers["adam"].hparams["lr"] == 0.004
        assert view.lr_sliders["adam"].value == pytest.approx(0.004, rel=1e-6)
        view.set("sgd", lr=-1.0)
        assert "lr" in view.error and c.lr("sgd") > 0
        point = view.select(0.2 * c.landscape.xs[-1], 0.1)
        assert point.loss == pytest.approx(c.landscape.evaluate(point.x, point.y, c.data)[0], rel=1e-6)
        assert "training loss" in view.selection_html.value
        view.step(100)  # runs to the end (8 steps) and stops there
        assert c.done and c.race.step_count == 8 and view.start_button.description == "Done"
        for name, curve in c.interpolations.items():
            assert curve.loss[0] == pytest.approx(c.interpolations["sgd"].loss[0], rel=1e-6)  # all start at the init
        assert "the plane holds" in view.status_html.value
    finally:
        view.close()
    view.step(5)  # ignored after close
    assert c.race.step_count == 8


def test_view_refuses_bad_settings_before_building(data):
    with pytest.raises(ValueError, match="at least two optimizers"):
        ov.LandscapeView("mlp", ("adam",), data=data, plane="pca")
    with pytest.raises(ValueError, match="resolution must be"):
        ov.LandscapeView("mlp", data=data, resolution=2)
    with pytest.raises(ValueError, match="unknown plane"):
        ov.LandscapeView("mlp", data=data, plane="hessian")
