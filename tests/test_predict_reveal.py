"""Predict, then reveal, and the fair-race tools, on the explorer: the logic without a widget
(PredictRound, FairRaceTool on an ExplorerController), then what the widget shows."""
from __future__ import annotations

import numpy as np
import pytest

import optiviz as ov
from optiviz.views.explorer.controller import ExplorerController


@pytest.fixture
def controller():
    c = ExplorerController("quadratic", ("sgd", "momentum", "adam"))
    yield c
    c.close()


def test_a_round_hides_then_reveals_what_the_engine_does(controller):
    c, p = controller, controller.predict
    c.step(30)
    p.begin(steps=80, mode="where")
    assert p.hidden and c.t == 0 and p.target == "sgd"
    assert p.place(-2.0, 0.0) == "sgd" and p.target == "momentum"
    p.place(0.5, 0.1, optimizer="adam")
    run = ov.simulate("quadratic", list(c.optimizers), start=c.surface.start, steps=80,
                      hparams={o: dict(c.config.hparams[o]) for o in c.optimizers})
    result = p.reveal(sync=True)
    assert not p.hidden and c.t == 80  # the live race played to step N ...
    for k, o in enumerate(c.optimizers):  # ... and ended where the outcome says, which is the engine's run
        np.testing.assert_allclose(result.actual[o], run.path[k, -1], atol=1e-6)
        np.testing.assert_allclose(c.race.head(o), run.path[k, -1], atol=1e-6)
    assert result.distance["sgd"] == pytest.approx(np.hypot(*(np.array([-2.0, 0.0]) - run.path[0, -1])))
    assert set(result.distance) == {"sgd", "adam"}
    assert result.closest == tuple(sorted(result.distance, key=result.distance.get))


def test_which_arrives_first_follows_the_distance_to_the_minimum(controller):
    c, p = controller, controller.predict
    p.begin(steps=400, mode="first")
    p.choose("sgd")
    result = p.reveal(sync=True)
    run = ov.simulate("quadratic", list(c.optimizers), start=c.surface.start, steps=400,
                      hparams={o: dict(c.config.hparams[o]) for o in c.optimizers})
    radius = 0.02 * np.hypot(20.0, 8.0)  # the quadratic's plot is 20 x 8
    for k, o in enumerate(c.optimizers):
        inside = np.nonzero(np.hypot(*run.path[k].T) <= radius)[0]
        assert result.arrival[o] == (int(inside[0]) if inside.size else None)
    arrived = [o for o in result.order if result.arrival[o] is not None]
    assert [result.arrival[o] for o in arrived] == sorted(result.arrival[o] for o in arrived)
    assert result.pick_right == (result.order[0] == "sgd")
    assert any(line.startswith("picked sgd to arrive first") for line in result.lines())


def test_a_round_refuses_what_makes_no_sense(controller):
    p = controller.predict
    with pytest.raises(ValueError, match="begin"):
        p.place(0.0, 0.0)
    with pytest.raises(ValueError, match="mode"):
        p.begin(10, mode="guess")
    with pytest.raises(ValueError, match="steps"):
        p.begin(0)
    p.begin(10)
    with pytest.raises(ValueError, match="optimizer"):
        p.place(0.0, 0.0, optimizer="nesterov")  # not racing
    p.reveal(sync=True)
    with pytest.raises(ValueError, match="revealed"):
        p.place(0.0, 0.0)


def test_a_guess_for_an_optimizer_taken_out_of_the_race_is_dropped(controller):
    p = controller.predict
    p.begin(20)
    p.place(-1.0, 0.0)  # sgd
    p.place(0.0, 0.0)   # momentum
    controller.set(optimizers=("momentum", "adam"))
    result = p.reveal(sync=True)
    assert set(result.distance) == {"momentum"} and set(result.actual) == {"momentum", "adam"}


def test_tune_each_requests_every_best_lr_and_says_what_it_searched():
    c = ExplorerController("quadratic", ("sgd", "momentum"), grad_noise=0.5)
    try:
        sweeps = c.fair.tune_each(steps=150, seeds=2)
        for o in c.optimizers:
            assert c.config.hparams[o]["lr"] == pytest.approx(sweeps[o].best_lr)
            assert c.sim.get_hparams(o)["lr"] == pytest.approx(sweeps[o].best_lr, rel=1e-6)
            assert c.markers[o] == [] and c.t == 0  # restarted at the new lrs
        assert "0.0001..10 (21 values" in c.fair.note and "150 steps, 2 seed(s), noise 0.5" in c.fair.note
        race = c.fair.seeds(seeds=6, steps=150)
        assert race.paths.shape == (2, 6, 151, 2) and c.fair.cloud is race
        x, y, owners, mx, my = c.fair.cloud_lines(max_points=50)
        assert x.shape == (12, 50) and owners == ["sgd"] * 6 + ["momentum"] * 6
        np.testing.assert_allclose(mx[0, -1], race.mean_path[0, -1, 0], rtol=1e-6)
        c.reset()
        assert c.fair.cloud is None  # a restart drops the cloud of the old run
    finally:
        c.close()


def test_the_widget_hides_the_paths_places_guesses_by_click_and_reveals():
    e = ov.SurfaceExplorer("quadratic", ("sgd", "momentum"))
    try:
        base = len(e.figures.surface_figure.marks)
        e.classroom.round_steps.value = 60
        e.classroom.begin_button.click()
        assert not e.marks["trajectories"].visible and not e.marks["trajectories_live"].visible and e.figures.loss_figure.layout.visibility == "hidden"
        e._surface_clicked(-3.0, 0.5)  # what a click on the map does now: a guess, not a restart
        assert e.controller.predict.guesses == {"sgd": (-3.0, 0.5)} and e.config.start is None
        assert "momentum" in e.classroom.predict_html.value
        assert list(e.classroom.guesses.names) == ["sgd"]
        e.controller.predict.reveal(sync=True)
        assert e.marks["trajectories"].visible and e.marks["trajectories_live"].visible and e.t == 60
        assert "closest guess" in e.classroom.predict_html.value
        assert len(e.figures.surface_figure.marks) == base + 1  # the guesses' links to the outcome
        e.classroom.end_button.click()
        assert len(e.figures.surface_figure.marks) == base
        e._surface_clicked(-3.0, 0.5)  # out of the round a click restarts the race there
        assert e.config.start == (-3.0, 0.5)
    finally:
        e.close()
