"""Share a setting: view.state() -> Cls.from_state(s) rebuilds the same runs; bad strings get clear errors.

Round trips change settings away from the defaults first (so a setting that was dropped would show),
then compare the original's runs, restarted from its start, with the rebuilt view's: exactly.
"""
from __future__ import annotations

import base64
import json
import zlib

import numpy as np
import pytest

import optiviz as ov
from optiviz import state as st
from optiviz.views.common import share


@pytest.fixture
def tiny():
    return ov.load_cifar10().subset(256, 128, 128)


def pack(doc) -> str:
    """A compact string made by hand, as a hostile or future writer could."""
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return st.PREFIX + base64.urlsafe_b64encode(zlib.compress(raw)).decode().rstrip("=")


def explorer_doc(**setting):
    return {"optiviz_state": 1, "view": "SurfaceExplorer", "setting": setting}


# ====================================================================== round trips, one per view
def test_explorer_round_trip_gives_the_same_paths_and_holds_only_what_was_set():
    a = ov.SurfaceExplorer("rosenbrock", ["adam", "rmsprop", "momentum"], hparams={"adam": {"lr": 0.05}},
                           grad_noise=0.3, clip=("norm", 2.0), schedule=("step", {"step_size": 50}), seed=3, speed=7)
    a.set("momentum", momentum=0.8)
    a.set("adam", betas=(0.8, 0.99))
    a.click(-1.0, 2.0)
    s = a.state()
    setting = a.state("dict")["setting"]
    assert s.startswith("ov1.") and len(s) < 400
    # only what differs from the surface's suggestions; nothing derived (rmsprop keeps its defaults)
    assert setting["hparams"] == {"adam": {"lr": 0.05, "betas": [0.8, 0.99]}, "momentum": {"momentum": 0.8}}
    assert setting["start"] == [-1.0, 2.0] and setting["seed"] == 3 and setting["speed"] == 7
    a.reset()
    a.step(150)
    for form in (s, a.state("json"), a.state("dict")):
        b = ov.SurfaceExplorer.from_state(form, grid=40)
        b.step(150)
        assert np.array_equal(a.sim.x.numpy(), b.sim.x.numpy())  # the noise is seeded: bit for bit
        assert all(np.array_equal(a.paths[o], b.paths[o]) for o in a.optimizers)
        assert b.config == a.config and b.state() == s
        b.close()
    a.close()


def test_explorer_round_trip_of_a_preset_and_a_formula_keeps_caption_and_surface():
    story = ov.SurfaceExplorer(preset="narrow_valley")
    copy = ov.SurfaceExplorer.from_state(story.state())
    assert copy.controller.preset == "narrow_valley" and copy.controller.caption == story.controller.caption
    assert copy.config == story.config and copy.surface.lrs == story.surface.lrs
    mine = ov.SurfaceExplorer("x**2 + 10*y**2 + sin(3*x)", "adam", lr=0.1, start=(2.0, 1.0))
    again = ov.SurfaceExplorer.from_state(mine.state())
    mine.step(60)
    again.step(60)
    assert again.config.shared_lr == 0.1 and np.array_equal(mine.paths["adam"], again.paths["adam"])
    for v in (story, copy, mine, again):
        v.close()


def test_dashboard_round_trip_gives_the_same_records_with_compare_and_a_live_change(tiny):
    a = ov.TrainingDashboard("mlp", "momentum", data=tiny, batch_size=32, probe_every=2, seed=4, patience=5)
    a.compare(["sgd", {"optimizer": "adam", "lr": 1e-3}])
    a.set(lr=0.02, run=0)  # a live change: what a Reset keeps, so the state keeps it
    s = a.state()
    a.reset()
    a.step(4)
    b = ov.TrainingDashboard.from_state(s)
    b.step(4)
    assert b.runs == a.runs == ("sgd lr 0.02", "adam")
    for ta, tb in zip(a.trainers, b.trainers):
        assert np.array_equal(ta.history["train_loss"], tb.history["train_loss"])
        assert len(ta.probe_records) == len(tb.probe_records) == 2
        assert all(np.array_equal(p.update_ratio, q.update_ratio) for p, q in zip(ta.probe_records, tb.probe_records))
    assert b.state() == s and b.run_state == "paused"
    assert b.controller.patience == 5  # early stopping's look-ahead is part of the setting
    with pytest.raises(ov.StateError, match="data this setting was made with"):
        ov.TrainingDashboard.from_state(s, data=tiny.subset(128, 64, 64))
    a.close()
    b.close()


def test_stability_and_basin_map_round_trips_give_the_same_maps():
    a = ov.StabilityMapView("rosenbrock", "momentum", "lr", "momentum", resolution=8, steps=40, every=20,
                            colour="rate", dampening=0.1)
    a.resolution_w.value = 12  # the controls hold the setting: the state reads them
    b = ov.StabilityMapView.from_state(a.state())
    assert b.resolution_w.value == 12 and b.colour_w.value == "rate" and b.fixed == {"dampening": 0.1}
    ma, mb = a.compute_sync(), b.compute_sync()
    assert ma.final_loss.shape == (12, 12) and np.array_equal(ma.final_loss, mb.final_loss, equal_nan=True)
    picked = a.select(3, 7)  # a clicked cell is part of the setting: selected again once computed
    again = ov.StabilityMapView.from_state(a.state())
    assert again.selected is None and again.compute_sync() is not None
    assert again.selected_cell == (3, 7) and again.selected == picked
    assert np.array_equal(again.path.x, a.path.x) and again.selection.value == a.selection.value
    again.close()
    c = ov.BasinMapView("himmelblau", ("sgd", "adam"), resolution=8, steps=40, every=20)
    d = ov.BasinMapView.from_state(c.state())
    assert np.array_equal(c.compute_sync().labels, d.compute_sync().labels)
    for v in (a, b, c, d):
        v.close()


def test_search_and_ensemble_round_trips_give_the_same_points_and_rows(tiny):
    a = ov.SearchView(budget=4, space={"lr": (1e-3, 1e-1), "weight_decay": (1e-5, 1e-2), "momentum": 0.9},
                      coarse_to_fine=False, data=tiny, parallel=4, batch_size=64, seed=2)
    b = ov.SearchView.from_state(a.state())
    ra, rb = a.run_sync(), b.run_sync()
    for method in ("random", "grid"):
        assert [p.hparams for p in ra[method]] == [p.hparams for p in rb[method]]
        assert np.array_equal([p.val_acc for p in ra[method]], [p.val_acc for p in rb[method]], equal_nan=True)
    e = ov.EnsembleView("mlp", tiny, k=2, epochs=1, snapshots=2, batch_size=64)
    f = ov.EnsembleView.from_state(e.state())
    assert [r.test_acc for r in e.run_sync()] == [r.test_acc for r in f.run_sync()]
    for v in (a, b, e, f):
        v.close()


# ====================================================================== the share control
def test_share_control_shows_the_state_and_follows_changes():
    v = ov.SurfaceExplorer("quadratic", ["sgd"], grid=40)
    assert v.share.value == ""  # nothing until asked
    v.share.button.click()
    first = v.share.value
    assert ov.SurfaceExplorer.from_state(first).config == v.config and 'readonly' in v.share.field.value
    v.set(lr=0.01)
    assert v.share.value != first and ov.read_state(v.share.value)[1]["hparams"] == {"sgd": {"lr": 0.01}}
    built = ov.SurfaceExplorer(ov.get_surface("quadratic", condition=100), ["sgd"], grid=40)
    built.share.show()  # a Surface object has no name to share: said, not raised
    assert built.share.value == "" and "cannot share" in built.share.field.value
    with pytest.raises(ValueError, match="Surface object"):
        built.state()
    v.close()
    built.close()


# ====================================================================== bad strings
def test_malformed_truncated_future_and_oversized_strings_each_get_a_clear_error():
    good = ov.SurfaceExplorer("quadratic", ["sgd"], grid=40)
    s, js = good.state(), good.state("json")
    good.close()
    cases = {
        "hello": "not an optiviz state string",
        "ov1.abc$%": "not an optiviz state string",
        "ov1.AAAA": "damaged or cut short",
        s[: len(s) // 2]: "cut short",
        js[: len(js) // 2]: "JSON cannot be read",
        "ov2." + s[4:]: r"newer optiviz \(format 2",
        js.replace('"optiviz_state": 1', '"optiviz_state": 7'): r"newer optiviz \(format 7",
        "ov1." + "A" * 9000: "too long",
        "{" + " " * 40_000 + "}": "too long",
        pack(b'{"a": "' + b"x" * 200_000 + b'"}'): "inflates past",
        '{"optiviz_state": 1, "view": "SurfaceExplorer", "setting": {"speed": NaN}}': "not a number",
        '{"a": ' + "[" * 5000 + "]" * 5000 + "}": "nested too deeply",
        pack(b"\x80\x04\x95 pickle"): "JSON cannot be read|not text",
    }
    for bad, message in cases.items():
        with pytest.raises(ov.StateError, match=message):
            ov.SurfaceExplorer.from_state(bad)
    with pytest.raises(ov.StateError, match="must be a string"):
        ov.SurfaceExplorer.from_state(42)


def test_hostile_and_wrong_settings_are_refused_by_name_and_never_evaluated(monkeypatch):
    calls = []
    monkeypatch.setattr("builtins.eval", lambda *a, **k: calls.append(a))
    cases = [
        (explorer_doc(surface="__import__('os').system('echo owned')"), "calling anything but the listed"),
        (explorer_doc(surface="x.__class__"), "attribute access"),
        (explorer_doc(speed="fast"), r"setting.speed must be a whole number"),
        (explorer_doc(speed=0), "speed must be in"),
        (explorer_doc(hparams={"adam": {"lr": -1.0}}, optimizers=["adam"]), "lr"),
        (explorer_doc(colour="red"), "unknown key 'colour'"),
        (explorer_doc(surface_params={"fps": 1}), "unknown parameter 'fps'"),
        (explorer_doc(surface="x" * 600), "at most 500 characters"),
        ({**explorer_doc(), "extra": 1}, "unknown key 'extra'"),
        ({"optiviz_state": 1, "view": "Evil", "setting": {}}, "view must be one of"),
        ({"view": "SurfaceExplorer"}, "not an optiviz state"),
        ({"optiviz_state": 1, "view": "StabilityMapView", "setting": {}}, "for a StabilityMapView, not a Surface"),
    ]
    for doc, message in cases:
        for form in (doc, json.dumps(doc), pack(doc)):
            with pytest.raises(ov.StateError, match=message):
                ov.SurfaceExplorer.from_state(form)
    assert calls == []
    doc = {"optiviz_state": 1, "view": "StabilityMapView", "setting": {"fixed": {"steps": 5}}}
    with pytest.raises(ov.StateError, match="fixed cannot set 'steps'"):
        ov.StabilityMapView.from_state(doc)
    with pytest.raises(TypeError, match="takes only fps, grid"):
        ov.SurfaceExplorer.from_state(explorer_doc(), speed=3)


# ====================================================================== a shared link in a kernel
def test_a_shared_link_opens_the_first_view_of_its_kind_and_a_bad_one_is_said(monkeypatch):
    s = ov.SurfaceExplorer("himmelblau", ["adam"], seed=5, grid=40).state()
    monkeypatch.setitem(share._shared, "taken", False)
    monkeypatch.setenv(st.STATE_ENV, s)
    monkeypatch.setenv("QUERY_STRING", "")
    other = ov.StabilityMapView(resolution=8, steps=40)  # another kind: not this one's setting
    first = ov.SurfaceExplorer("quadratic", ["sgd"], grid=40)
    second = ov.SurfaceExplorer("quadratic", ["sgd"], grid=40)
    assert other.surface_w.value == "quadratic"
    assert first.config.surface == "himmelblau" and first.optimizers == ("adam",) and first.state() == s
    assert second.config.surface == "quadratic"  # one setting opens one view
    link = ov.SurfaceExplorer("rosenbrock", ["sgd"], grid=40).state()
    monkeypatch.setitem(share._shared, "taken", False)
    monkeypatch.setenv("QUERY_STRING", f"x=1&{st.QUERY_PARAM}={link}")  # the page's link wins over --state
    assert ov.SurfaceExplorer(grid=40).config.surface == "rosenbrock"
    monkeypatch.setitem(share._shared, "taken", False)
    monkeypatch.setenv("QUERY_STRING", f"{st.QUERY_PARAM}=ov1.broken")
    fallback = ov.SurfaceExplorer("quadratic", ["sgd"], grid=40)
    assert fallback.config.surface == "quadratic" and "shared setting was not used" in fallback.error
    ov.close_all()
