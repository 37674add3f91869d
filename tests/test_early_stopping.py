"""Early stopping with look-ahead: where patience p stops a validation curve, which evaluation's
weights it keeps, the trainer's copy of the best weights, and the dashboard's marks of both."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz.training.early_stopping import BestWeights, early_stopping, patience_table

CURVE = [1.0, 0.8, 0.7, 0.75, 0.72, 0.71, 0.9, 0.65]  # best 0.7 at index 2, then three worse, a last new best


def test_patience_stops_after_p_evaluations_without_a_new_best_and_keeps_the_best():
    one, two, four, many = patience_table(CURVE, (1, 2, 4, 5))
    assert (one.stop, one.kept) == (3, 2)  # the first rise stops it
    assert (two.stop, two.kept) == (4, 2)
    assert (four.stop, four.kept, four.kept_value) == (6, 2, 0.7)
    assert not many.stopped and many.kept == 7 and many.kept_value == 0.65  # look-ahead 5 reaches the later best
    assert (two.stop_at, two.kept_at) == (5.0, 3.0)  # epochs count from 1 by default
    r = early_stopping(CURVE, 2, steps=np.arange(8) * 100 + 50)
    assert (r.stop_at, r.kept_at) == (450.0, 250.0)


def test_modes_min_delta_and_nan():
    acc = [0.2, 0.4, 0.39, 0.41, 0.405, 0.3]
    r = early_stopping(acc, 2, mode="max")
    assert (r.stop, r.kept) == (5, 3)
    assert early_stopping(acc, 2, mode="max", min_delta=0.02).kept == 1  # 0.41 is not 0.02 better than 0.4
    r = early_stopping([math.nan, 2.0, math.nan, math.nan], 2)
    assert (r.stop, r.kept, r.kept_value) == (3, 1, 2.0)  # NaN never improves


@pytest.mark.parametrize("kwargs, message", [
    (dict(val_curve=[], patience=2), "val_curve"),
    (dict(val_curve=[1.0], patience=0), "patience must be in"),
    (dict(val_curve=[1.0], patience=2, mode="up"), "mode"),
    (dict(val_curve=[1.0, 2.0], patience=2, steps=[1]), "steps"),
    (dict(val_curve=[1.0], patience=2, min_delta=-1.0), "min_delta"),
])
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        early_stopping(**kwargs)


def test_the_trainer_keeps_the_weights_of_its_best_validation_and_restores_them(cifar):
    data = cifar.subset(256, 128, 0)
    trainer = ov.Trainer("mlp", data, optimizer="momentum", lr=0.01, batch_size=32, val_every=4, probe_every=0,
                         test_each_epoch=False)
    trainer.run(steps=48)
    h = trainer.history
    best = int(np.argmin(h["val_loss"]))
    assert best < len(h["val_loss"]) - 1, "this lr should overfit 256 images: the best is not the last evaluation"
    assert trainer.best.step == h["val_step"][best]
    snap = trainer.snapshot()
    last_loss, _ = trainer.evaluate("val")
    assert trainer.restore_best() == h["val_step"][best]
    loss, _ = trainer.evaluate("val")
    assert loss == pytest.approx(h["val_loss"][best], rel=1e-5) and loss < last_loss - 0.05
    kept = early_stopping(h["val_loss"], len(h["val_loss"]), steps=h["val_step"])
    assert kept.kept_at == trainer.best.step  # patience longer than the run keeps the trainer's best
    trainer.restore(snap)
    trainer.run(steps=4)  # the snapshot took the best weights with it
    assert trainer.best.step == h["val_step"][best]


def test_best_weights_refuse_to_restore_before_any_evaluation():
    with pytest.raises(ValueError, match="no weights kept"):
        BestWeights().restore(torch.nn.Linear(2, 2))


def test_the_dashboard_marks_where_patience_stops_and_what_it_keeps(cifar):
    dash = ov.TrainingDashboard("mlp", "momentum", lr=0.01, data=cifar.subset(256, 128, 0), batch_size=32,
                                val_every=4, probe_every=0, patience=2)
    try:
        dash.step(48)
        h = dash.trainer.history
        expected = early_stopping(h["val_loss"], 2, steps=h["val_step"])
        assert expected.stopped
        marks = dash.early_stop_marks
        x, y, names = marks["early_stop"]
        assert x.tolist() == [expected.stop_at] and names == ["stop (p=2)"]
        assert y[0] == pytest.approx(h["val_loss"][expected.stop], rel=1e-5)
        x, y, names = marks["early_kept"]
        assert x.tolist() == [expected.kept_at] and y[0] == pytest.approx(expected.kept_value, rel=1e-5)
        assert f"keeps step {expected.kept_at:g}" in dash.early.text.value
        dash.early.patience.value = 1000  # a person types a longer look-ahead: nothing stops it any more
        dash.step(1)
        assert dash.controller.patience == 1000 and dash.early_stop_marks["early_stop"][0].size == 0
        assert dash.early_stop_marks["early_kept"][2] == [""] and "not yet; best so far step" in dash.early.text.value
        dash.controller.request("patience", 0, sync=True)
        assert "patience must be in [1" in dash.error and dash.controller.patience == 1000
        before, _ = dash.trainer.evaluate("val")
        dash.early.restore.click()  # restore-best: the lowest validation loss's weights, and a marker says so
        dash.step(0)
        after, _ = dash.trainer.evaluate("val")
        best = int(h["val_loss"].argmin())
        assert after == pytest.approx(h["val_loss"][best], rel=1e-5) and after < before
        at = float(dash.trainer.step_count)
        dash.step(1)
        assert (at, f"restored step {h['val_step'][best]}") in dash.markers
    finally:
        dash.close()
