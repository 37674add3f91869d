"""ExplorerController without a widget: the explorer's run is scriptable, and plain Python.

What a person does through the controls is a request to the controller; these tests make the
same requests and read the state the widget would draw.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import optiviz as ov
from optiviz.engine.hparams import HParamSpec
from optiviz.views.explorer.controller import ExplorerController
from optiviz.views.explorer.presets import PRESETS


@pytest.fixture
def make():
    made: list[ExplorerController] = []

    def build(*args, **kw) -> ExplorerController:
        c = ExplorerController(*args, **kw)
        made.append(c)
        return c

    yield build
    for c in made:
        c.close()


def test_importing_the_controller_loads_no_widget_library():
    code = ("import sys, optiviz.views.explorer.controller; "
            "print(sorted(m for m in ('ipywidgets', 'bqplot', 'IPython', 'traitlets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_scripted_race_is_simulates_race(make):
    hp = {"sgd": {"lr": 1e-3}, "adam": {"lr": 0.05}}
    c = make("rosenbrock", ("sgd", "adam"), start=(-1.5, 2.0), hparams=hp)
    c.step(150)
    assert c.t == 150 and c.state == "paused"
    for o in ("sgd", "adam"):
        run = ov.simulate("rosenbrock", o, start=(-1.5, 2.0), steps=150, **hp[o])
        steps, path = c.race.buffers["path"][o].arrays()
        np.testing.assert_array_equal(path.astype(np.float32), run.path.astype(np.float32))
        assert c.race.head(o) == pytest.approx(tuple(run.path[-1]), rel=1e-6)
        assert c.race.last_loss(o) == pytest.approx(float(run.loss[-1]), rel=1e-5)
    (xs, ys), _ = c.race.rows("path", 50)
    assert len(xs) <= 50 and xs.dtype == np.float32


def test_requests_go_through_the_handler_table_and_land_in_the_one_config(make):
    c = make("quadratic", ("sgd", "momentum"), condition=30.0)
    events: list[str] = []
    c.subscribe(events.append)
    c.step(10)
    c.request(("hparam", "sgd", "lr"), 0.05)
    assert c.sim.get_hparams("sgd")["lr"] == pytest.approx(0.05) and c.config.hparams["sgd"]["lr"] == 0.05
    assert type(c.config.hparams["sgd"]["lr"]) is float
    assert c.markers == {"sgd": [(10.0, "lr 0.05")], "momentum": []}
    assert events.count("frame") == 1 and events[-1] == "config"  # the step drew; the change says so
    c.request(("hparam", "adam", "lr"), 0.2)  # not racing: kept for when it is ticked
    c.request("optimizers", ("sgd", "adam"))
    assert c.sim.get_hparams("adam")["lr"] == pytest.approx(0.2) and c.sim.get_hparams("sgd")["lr"] == pytest.approx(0.05)
    c.request("hp:sgd:lr", 0.1)  # the old string form is not a control any more
    assert c.error.startswith("unknown control 'hp:sgd:lr'") and c.config.hparams["sgd"]["lr"] == 0.05
    c.request("clip", 5)  # a value of the wrong kind is a message, not a crash of the worker
    assert c.error.startswith("clip must be a kind (none, value, norm, sign) or (kind, amount)") and \
        c.config.clip == ("none", 1.0)
    c.request("speed", 0)
    assert "speed (steps per frame) must be in [1, 100000]" in c.error and c.config.speed == 2
    c.set("adam", betas=(0.8, 0.99), amsgrad=True)
    assert c.error == "" and c.sim.get_hparams("adam")["betas"] == pytest.approx((0.8, 0.99))
    assert [label for _, label in c.markers["adam"]] == ["betas (0.8, 0.99)", "amsgrad on"]


def test_an_lr_change_is_validated_once_by_the_optimizer(make, monkeypatch):
    c = make("quadratic", ("sgd",))
    calls: list[str] = []
    for method in ("check", "check_number"):  # every way a spec validates a value
        original = getattr(HParamSpec, method)

        def counted(self, *args, _original=original):
            calls.append(self.name)
            return _original(self, *args)

        monkeypatch.setattr(HParamSpec, method, counted)
    c.request(("hparam", "sgd", "lr"), 0.02)
    assert calls == ["lr"] and c.sim.get_hparams("sgd")["lr"] == pytest.approx(0.02)
    calls.clear()
    c.request(("hparam", "sgd", "lr"), -1.0)
    assert calls == ["lr"] and c.error == "sgd lr must be in (0, inf), got -1"
    assert c.config.hparams["sgd"]["lr"] == pytest.approx(0.02)  # the config holds what runs


def test_state_and_statuses_agree_through_finish_and_restart(make):
    c = make("quadratic", ("sgd",))
    c.step(3000)
    c.step(1)
    assert list(c.statuses) == ["sgd"] and c.statuses["sgd"].startswith("converged")
    assert c.runner.state == "done" and c.state == "done" and "every optimizer converged" in c.status_line
    c.request("surface", ("himmelblau", {}))
    assert c.statuses == {"sgd": "running"} and c.state == "paused" and c.status_line == "step 0 · paused"
    c.step(2)
    c.request("start", (1.0, 1.0))
    assert c.t == 0 and c.state == "paused" and c.race.head("sgd") == (1.0, 1.0)


def test_caption_is_the_presets_then_the_surfaces_that_runs(make):
    c = make(preset="narrow_valley")
    story = PRESETS["narrow_valley"]
    assert c.caption == (story.title, story.caption)
    c.request(("hparam", "sgd", "lr"), 0.01)  # steering the story keeps its caption
    assert c.preset == "narrow_valley"
    c.set(condition=1)  # a new surface: its own caption, which says what it is
    assert c.preset is None and c.caption == (c.surface.title, c.surface.caption)
    assert "round bowl" in c.caption[1] and "Round" in c.caption[0]


def test_no_optimizer_is_an_error_and_the_race_is_unchanged(make):
    c = make("quadratic", ("sgd", "adam"))
    c.step(5)
    c.set(optimizers=())
    assert c.error == "choose at least one optimizer" and c.optimizers == ("sgd", "adam") and c.t == 5
    c.set(optimizers=("sgd", "nosuch"))
    assert "nosuch" in c.error and c.optimizers == ("sgd", "adam")
    c.set(optimizers="momentum")
    assert c.error == "" and c.optimizers == ("momentum",) and c.config.optimizers == ("momentum",)
