"""Share a LandscapeView's setting: state() -> from_state(s) rebuilds the same race, path for path;
bad, stale, other-view and out-of-range strings each get a clear error; a shared link opens one.

Same format and checks as the other views (tests/test_state.py); the race is tiny so that stepping
three views through their controllers stays within a few seconds.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz import cli
from optiviz import state as st
from optiviz.views.common import share
from test_state import pack

SMALL = dict(n_train=128, batch_size=32, epochs=1, resolution=5, points=5, refit_every=2, snapshots=6)


@pytest.fixture(scope="module")
def tiny():
    return ov.load_cifar10().subset(256, 64, 64)


def landscape_doc(**setting):
    return {"optiviz_state": 1, "view": "LandscapeView", "setting": setting}


def assert_same_race(a, b):
    """Snapshots, drawn paths, the landscape grid and the interpolation curves: equal, not close."""
    ca, cb = a.controller, b.controller
    assert ca.race.step_count == cb.race.step_count
    for name in ca.race.optimizers:
        (steps_a, vec_a), (steps_b, vec_b) = ca.race.trajectory(name), cb.race.trajectory(name)
        assert np.array_equal(steps_a, steps_b) and torch.equal(vec_a, vec_b)
        assert len(ca.path(name)) and np.array_equal(ca.path(name), cb.path(name))
        assert np.array_equal(ca.interpolations[name].loss, cb.interpolations[name].loss)
    assert np.array_equal(ca.landscape.loss, cb.landscape.loss)


def test_landscape_round_trip_gives_the_same_race_path_for_path(tiny):
    a = ov.LandscapeView("mlp", ("sgd", "adam"), data=tiny, seed=3, hparams={"adam": {"lr": 0.003}},
                         plane=("init", "sgd", "adam"), span=((-0.5, 2.0), (-0.5, 2.0)), **SMALL)
    a.set("sgd", lr=0.02)  # a slider's change is part of the setting (the lr lives in the sgd Trainer)
    s = a.state()
    setting = a.state("dict")["setting"]
    assert s.startswith("ov1.") and len(s) < 600
    assert setting["hparams"] == {"adam": {"lr": 0.003}, "sgd": {"lr": 0.02}}  # adam's default lr: not repeated
    assert setting["plane"] == ["init", "sgd", "adam"] and setting["seed"] == 3 and setting["refit_every"] == 2
    assert setting["data"]["n_train"] == 256 and setting["data"]["fingerprint"] == tiny.fingerprint()
    rebuilt = [ov.LandscapeView.from_state(s),  # the data by name: the bundled subset's first images
               ov.LandscapeView.from_state(a.state("json"), data=tiny)]
    for views_step in (3, 1):  # step 3: a point appended between refits; step 4: a refit
        for v in (a, *rebuilt):
            v.step(views_step)
        for b in rebuilt:
            assert_same_race(a, b)
    assert a.controller.race.step_count == 4 and a.state() == s  # progress is not part of a setting
    for b in rebuilt:  # the live lr became the rebuilt run's from step 0
        assert b.state() == s and b.controller.config.plane == ("init", "sgd", "adam")
        assert b.controller.lr("sgd") == 0.02 and b.controller.config.hparams["sgd"] == {"lr": 0.02}
    a.share.button.click()
    assert a.share.value == s and "readonly" in a.share.field.value
    a.set("adam", lr=0.004)  # the field follows: it never shows an old setting
    assert ov.read_state(a.share.value)[1]["hparams"]["adam"] == {"lr": 0.004}
    for v in (a, *rebuilt):
        v.close()


def test_landscape_bad_strings_and_settings_each_get_a_clear_error(tiny):
    view = ov.LandscapeView("mlp", ("sgd", "adam"), data=tiny, **SMALL)
    s, js, doc = view.state(), view.state("json"), view.state("dict")
    view.close()
    setting = doc["setting"]
    explorer = ov.SurfaceExplorer("quadratic", ["sgd"], grid=20)
    other = explorer.state()
    explorer.close()
    cases = {
        "ov1.abc$%": "not an optiviz state string",  # malformed
        s[: len(s) // 2]: "cut short",  # truncated
        js[: len(js) // 2]: "JSON cannot be read",
        "ov2." + s[4:]: r"newer optiviz \(format 2",  # future version
        js.replace('"optiviz_state": 1', '"optiviz_state": 3'): r"newer optiviz \(format 3",
        "ov1." + "A" * 9000: "too long",  # oversized
        pack(b'{"a": "' + b"x" * 200_000 + b'"}'): "inflates past",
        other: "for a SurfaceExplorer, not a LandscapeView: open it with ov.SurfaceExplorer",  # another view's
    }
    bad_settings = [  # the schema (keys and types), then the view's own range checks, each naming the setting
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"resolution": "high"}, "setting.resolution must be a whole number"),
        ({"plane": ["init", "sgd"]}, "setting.plane must be .*three points"),
        ({"plane": ["init", "sgd", [0.1, 0.2]]}, r"setting.plane\[2\] must be a text"),
        ({"span": [[1.0, 0.0], [0.0, 1.0]]}, "x0 < x1"),
        ({"span": -1.0}, "span must be"),
        ({"plane": ["init", "sgd", "rmsprop"]}, r"unknown plane\[2\] 'rmsprop'; allowed: init, sgd, adam"),
        ({"resolution": 1000}, "resolution must be"),
        ({"hparams": {"adam": {"lr": -1.0}}}, "lr"),
        ({"data": {**setting["data"], "fingerprint": "00000000"}}, "data this setting was made with"),
    ]
    for changes, message in bad_settings:
        bad = landscape_doc(**{**setting, **changes})
        cases[json.dumps(bad)] = message
        cases[pack(bad)] = message
    for bad, message in cases.items():
        with pytest.raises(ov.StateError, match=message):
            ov.LandscapeView.from_state(bad)
    with pytest.raises(ov.StateError, match="for a LandscapeView, not a SurfaceExplorer: open it with ov.LandscapeView"):
        ov.SurfaceExplorer.from_state(s)
    with pytest.raises(TypeError, match="takes only device, data"):
        ov.LandscapeView.from_state(s, epochs=3)
    by_vector = ov.LandscapeView("mlp", ("sgd", "adam"), data=tiny, plane=(torch.zeros(3), "sgd", "adam"), **SMALL)
    with pytest.raises(ov.StateError, match=r"plane'\]\[0\] is a Tensor, which a shared setting cannot hold"):
        by_vector.state()
    by_vector.share.show()  # said in the control, not raised into the widget
    assert by_vector.share.value == "" and "cannot share" in by_vector.share.field.value
    ov.close_all()


def test_a_shared_landscape_link_opens_the_first_landscape_view(tiny, monkeypatch, capsys):
    s = ov.LandscapeView("mlp", ("momentum", "adam"), data=tiny, seed=7, **SMALL).state()
    ov.close_all()
    monkeypatch.setitem(share._shared, "taken", False)
    monkeypatch.setenv(st.STATE_ENV, "")  # undone after the test, though share_state sets it itself
    monkeypatch.setenv("QUERY_STRING", "")
    cli.share_state(argparse.ArgumentParser(), s)  # what `optiviz present NB --state s` checks and hands on
    assert "first LandscapeView opens with the shared setting" in capsys.readouterr().out
    explorer = ov.SurfaceExplorer("quadratic", ["sgd"], grid=20)  # another kind: not its setting
    first = ov.LandscapeView("mlp", ("sgd", "adam"), data=tiny, **SMALL)
    second = ov.LandscapeView("mlp", ("sgd", "adam"), data=tiny, **SMALL)
    assert explorer.config.surface == "quadratic"
    assert first.controller.race.optimizers == ("momentum", "adam") and first.state() == s and not first.error
    assert second.controller.race.optimizers == ("sgd", "adam")  # one setting opens one view
    monkeypatch.setitem(share._shared, "taken", False)
    monkeypatch.setenv("QUERY_STRING", f"{st.QUERY_PARAM}=ov1.broken")  # the page's link wins, and is said
    fallback = ov.LandscapeView("mlp", ("sgd", "adam"), data=tiny, **SMALL)
    assert fallback.controller.race.optimizers == ("sgd", "adam") and "shared setting was not used" in fallback.error
    ov.close_all()
