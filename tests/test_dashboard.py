"""TrainingDashboard at the Python level: build it, train a few steps, move controls, read the marks.

What a lecturer would see is what is checked: a slider moved mid-run changes the net from the next
step and is marked there, compared runs start from the same weights on the same batches, the
health line names the problem of a diverging run and of a dead layer, and bad input shows a
message while the dashboard keeps working. Tiny slices and the 2-layer net keep it fast.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from optiviz.views.dashboard.view import TrainingDashboard


@pytest.fixture(scope="module")
def data(cifar):
    return cifar.subset(256, 64, 0)


@pytest.fixture
def make(data):
    made: list[TrainingDashboard] = []

    def build(model="mlp", **kw) -> TrainingDashboard:
        kw.setdefault("data", data)
        kw.setdefault("batch_size", 32)
        kw.setdefault("probe_every", 2)
        d = TrainingDashboard(model, **kw)
        made.append(d)
        return d

    yield build
    for d in made:
        d.close()


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def mark_arrays(dash):
    for name, mark in dash.marks.items():
        for m in (mark if isinstance(mark, list) else [mark]):
            for trait in ("x", "y"):
                yield name, np.asarray(getattr(m, trait), dtype=np.float64)


# ------------------------------------------------------------------ a short run draws every panel
def test_a_short_run_fills_every_panel(make):
    dash = make("small_convnet", batch_size=32)
    assert dash.layers == ("conv1", "conv2", "fc1", "fc2") and dash.run_state == "idle"
    dash.step(10)  # 256 images / 32 = 8 steps an epoch: one epoch end, one validation
    h = dash.trainer.history
    (x, y), = dash.loss_curves.values()
    assert x.tolist() == list(range(10)) and np.allclose(y, h["train_loss"], rtol=1e-6)
    assert np.allclose(dash.lr_curves["nesterov"][1], 0.02)
    acc = dash.accuracy_curves["nesterov"]
    assert acc["train"][0].tolist() == [8] and acc["val"][0].tolist() == [8]
    gx, gtrain, gval = dash.gap
    assert gx[0] == 8 and gtrain[0] == pytest.approx(h["train_acc"][0]) and gval[0] == pytest.approx(h["val_acc"][0])
    assert set(dash.ratio_curves) == {"conv1", "conv2", "fc1", "fc2"} and set(dash.dead_curves) == {"conv1", "conv2", "fc1"}
    probes = dash.trainer.probe_records
    assert dash.ratio_curves["fc1"][0].tolist() == [p.step for p in probes]
    assert np.allclose(dash.grad_norm_curves["conv1"][1], [p.grad_norm[0] for p in probes])
    # histograms: the newest probe's device-binned fractions, one small figure per layer
    assert dash.histogram_step == probes[-1].step == 8
    centres, frac = dash.histograms["conv2"]
    assert np.allclose(frac, probes[-1].act_hist[1]) and len(centres) == 40
    assert "epoch 1 · step 10" in dash.progress and "images/s" in dash.progress
    assert dash.health and dash.error == ""
    for name, arr in mark_arrays(dash):
        if name not in ("ratio", "grad", "dead"):  # per-layer lines may break at NaN by design
            assert np.all(np.isfinite(arr)), name


# ------------------------------------------------------------------ sliders act from the next step
def test_lr_and_dropout_sliders_act_from_the_next_step_and_are_marked(make):
    dash = make("mlp", dropout=0.0)
    dash.step(4)
    dash.controls.lr.value = 0.002  # what a person dragging the slider does
    dash.controls.dropout.value = 0.4
    assert dash.trainer.history["lr"].tolist() == [0.01] * 4  # nothing changed in the past
    dash.step(3)
    h = dash.trainer.history
    assert h["lr"].tolist() == [0.01] * 4 + [0.002] * 3
    assert dash.trainer.model.dropouts()[0].p == pytest.approx(0.4)
    assert (4, "lr", 0.002) in dash.trainer.events and (4, "dropout", 0.4) in dash.trainer.events
    assert dash.markers == [(4.0, "lr 0.002"), (4.0, "dropout 0.4")]
    # the typed box acts the same way, and the slider follows it
    dash.controls.lr_text.value = 0.0005
    dash.controls.momentum.value = 0.5
    dash.step(1)
    assert dash.trainer.history["lr"][-1] == 0.0005 and dash.controls.lr.value == pytest.approx(0.0005)
    assert dash.trainer.optimizer.param_groups[0]["momentum"] == 0.5 and (7.0, "momentum 0.5") in dash.markers


def test_moving_the_lr_slider_while_it_trains_in_the_worker(make):
    dash = make("mlp", fps=50)
    dash.start()
    assert wait_until(lambda: dash.trainer.step_count >= 3)
    dash.controls.lr.value = 0.003
    assert wait_until(lambda: (0.003 in dash.trainer.history["lr"]) and dash.trainer.step_count >= 8)
    dash.pause()
    h, events = dash.trainer.history, dash.trainer.events
    ((s, name, value),) = [e for e in events if e[1] == "lr"]
    assert value == 0.003 and np.all(h["lr"][:s] == 0.01) and np.all(h["lr"][s:] == 0.003)
    assert (float(s), "lr 0.003") in dash.markers and dash.run_state == "paused"
    n = len(dash.loss_curves["nesterov"][0])
    assert n == dash.trainer.step_count  # the last frame was drawn on pause


# ------------------------------------------------------------------ compare mode
def test_compare_trains_from_identical_weights_on_identical_batches(make):
    dash = make("small_convnet", dropout=0.0)
    dash.compare(["sgd", "momentum", {"optimizer": "adam", "lr": 3e-4}])
    assert dash.runs == ("sgd", "momentum", "adam lr 0.0003")
    states = [t.model.state_dict() for t in dash.trainers]
    assert all(torch.equal(states[0][k], s[k]) for s in states[1:] for k in states[0])
    dash.step(3)
    first = [t.history["train_loss"][0] for t in dash.trainers]
    assert first[0] == first[1] == first[2]  # same weights, same first batch
    assert len({t.history["train_loss"][2] for t in dash.trainers}) == 3  # then the optimizers differ
    curves = dash.loss_curves
    assert list(curves) == list(dash.runs) and all(len(x) == 3 for x, _ in curves.values())
    assert len(set(dash.marks["loss"].colors)) == 3
    # the per-layer panels and the sliders follow the focused run
    dash.focus_run("adam lr 0.0003")
    assert dash.controls.lr.value == pytest.approx(3e-4) and dash.controls.beta1.layout.display is None
    dash.controls.lr.value = 1e-4
    dash.step(1)
    assert [t.history["lr"][-1] for t in dash.trainers] == [0.02, 0.02, 1e-4]
    dash.set(dropout=0.2)  # the API without run= steers every run
    dash.step(1)
    assert all(t.model.dropouts()[0].p == 0.2 for t in dash.trainers)
    dash.compare(None)
    assert dash.runs == ("nesterov",)


def test_the_compare_tab_buttons(make):
    dash = make()
    c = dash.controls
    for o, box in c.compare_boxes.items():
        box.value = o in ("sgd", "rmsprop")
    c.compare_btn.click()
    assert dash.runs == ("sgd", "rmsprop") and c.run.layout.display is None and c.optimizer.disabled
    c.run.value = 1  # steer and show the second run
    assert dash.controls.lr.value == pytest.approx(1e-3) and dash.trainer.optimizer_name == "rmsprop"
    c.single_btn.click()
    assert dash.runs == ("nesterov",) and c.run.layout.display == "none"


def test_compare_refuses_settings_that_would_change_the_net_or_the_batches(make):
    dash = make()
    dash.compare(["sgd", {"optimizer": "adam", "batch_size": 64}])
    assert "batch_size" in dash.error and dash.runs == ("nesterov",)


# ------------------------------------------------------------------ the health line
def test_health_line_fires_on_a_diverging_run_then_it_can_go_on(make):
    dash = make("mlp", optimizer="sgd", lr=5.0)
    dash.step(10)
    assert dash.run_state == "done" and dash.trainer.stopped
    assert dash.findings["sgd"][0].code == "diverging" and "lower the learning rate" in dash.health
    assert "exceeded 3x the initial loss" in dash.error
    assert "Lower the lr, then Reset" in dash.error
    dash.set(lr=0.01)  # the blown-up weights stay blown up: a new run with the lower lr
    assert dash.error == ""
    dash.reset()
    dash.step(3)
    assert dash.trainer.step_count == 3 and not dash.trainer.stopped and dash.run_state == "paused"
    assert dash.trainer.history["lr"].tolist() == [0.01] * 3 and dash.findings["sgd"][0].code != "diverging"


def test_health_line_fires_on_a_dead_layer(make):
    dash = make("mlp", init="zero")
    dash.step(8)
    codes = [f.code for f in dash.findings["nesterov"]]
    assert codes[0] == "dead" and "100% of fc1's units are dead" in dash.health
    assert dash.dead_curves["fc1"][1][-1] == 1.0
    assert np.all(dash.ratio_curves["fc1"][1] <= 1e-7)  # "no update at all" drawn at the floor, not dropped


# ------------------------------------------------------------------ bad input never raises
def test_bad_values_show_a_message_and_change_nothing(make):
    dash = make()
    dash.step(2)
    dash.controls.lr_text.value = -1.0
    assert "lr" in dash.error and dash.controls.lr_text.value == pytest.approx(0.01)  # snapped back
    dash.controls.weight_decay.value = -0.5
    assert "weight_decay" in dash.error and dash.controls.weight_decay.value == 0.0
    dash.set(momentum=1.5)
    assert "momentum" in dash.error
    dash.set(dropout=1.0)
    assert "dropout" in dash.error
    dash.set(flux=3)
    assert "unknown setting 'flux'" in dash.error
    dash.set(model="resnet")
    assert "unknown model" in dash.error and dash.layers == ("fc1", "fc2")
    dash.show_histograms(99)
    assert "probe must be" in dash.error
    dash.step(2)
    assert dash.trainer.history["lr"].tolist() == [0.01] * 4 and dash.trainer.step_count == 4


def test_a_model_too_big_for_memory_is_refused_and_the_dashboard_keeps_working(make):
    dash = make("mlp", width=10**7)  # ~370 GB: refused before anything is allocated
    assert "choose a smaller model" in dash.error and dash.layers == ("conv1", "conv2", "fc1", "fc2")
    dash.step(1)
    dash.set(width=10**7)  # while a run exists: it goes on untouched
    assert "choose a smaller model" in dash.error and dash.trainer.step_count == 1


def test_out_of_memory_during_a_step_is_a_message(make, monkeypatch):
    dash = make()
    dash.step(2)

    def boom():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(dash.trainer, "step", boom)
    dash.step(3)
    assert "out of memory" in dash.error and "press Reset" in dash.error and dash.run_state == "done"
    monkeypatch.undo()
    dash.reset()
    dash.step(2)
    assert dash.trainer.step_count == 2 and dash.error == ""


# ------------------------------------------------------------------ snapshots, rewind, histograms
def test_rewind_restores_the_run_and_its_curves_and_replays_exactly(make):
    dash = make()
    dash.step(5)
    i = dash.snapshot()
    dash.step(3)
    after = dash.trainer.history["train_loss"][5:].copy()
    dash.set(lr=0.05)
    dash.step(2)
    dash.rewind(i)
    assert dash.trainer.step_count == 5 and len(dash.loss_curves["nesterov"][0]) == 5 and dash.markers == []
    assert dash.snapshots == ["#1: step 5 (epoch 0)"]
    dash.step(3)
    assert np.array_equal(dash.trainer.history["train_loss"][5:], after)


def test_histograms_can_be_stepped_back(make):
    dash = make()
    dash.step(9)
    steps = [p.step for p in dash.trainer.probe_records]
    assert steps == [0, 2, 4, 6, 8] and dash.histogram_step == 8
    dash.show_histograms(1)
    assert dash.histogram_step == 2 and not dash.controls.hist_live.value
    assert np.allclose(dash.histograms["fc1"][1], dash.trainer.probe_records[1].act_hist[0])
    dash.step(2)
    assert dash.histogram_step == 2  # held while stepped back
    dash.controls.hist_probe.value = 0  # the slider
    assert dash.histogram_step == 0
    dash.show_histograms(None)
    assert dash.histogram_step == 10 and dash.controls.hist_live.value


# ------------------------------------------------------------------ new runs, stop, close
def test_settings_that_change_the_net_start_a_new_run(make):
    dash = make()
    dash.step(3)
    dash.controls.activation.value = "tanh"
    assert dash.trainer.step_count == 0 and dash.loss_curves["nesterov"][0].size == 0
    assert dash.trainer.model.config["activation"] == "tanh" and dash.panels.dead_fig.title.startswith("saturated")
    dash.set(optimizer="adam")
    assert dash.runs == ("adam",) and dash.controls.lr.value == pytest.approx(1e-3)
    assert dash.controls.momentum.layout.display == "none" and dash.controls.beta1.layout.display is None


def test_stop_then_start_is_a_new_run_and_close_ends_the_worker(make):
    dash = make()
    dash.step(3)
    dash.stop()
    assert dash.run_state == "stopped" and "stopped" in dash.progress
    dash.start()
    assert wait_until(lambda: dash.trainer.step_count >= 2)
    dash.close()
    assert dash.runner.state == "stopped"
    assert dash.runner._thread is None or not dash.runner._thread.is_alive()
    dash.step(1)  # closed: does nothing, raises nothing


# ------------------------------------------------------------------ stale state (each failed before the controller split)
def test_rewind_past_an_lr_change_moves_the_slider_back_and_reset_starts_from_it(make):
    """The lr lives in the trainer only: after a rewind to before an lr change, the slider and the
    typed box show the restored lr, and Reset starts from it (before: both kept the newer 0.002)."""
    dash = make("mlp")
    dash.step(2)
    dash.snapshot()
    dash.controls.lr.value = 0.002
    dash.step(2)
    dash.rewind(0)
    assert dash.trainer.hparams["lr"] == 0.01
    assert dash.controls.lr.value == pytest.approx(0.01) and dash.controls.lr_text.value == pytest.approx(0.01)
    dash.step(1)
    assert dash.trainer.history["lr"].tolist() == [0.01] * 3
    dash.reset()
    assert dash.trainer.hparams["lr"] == 0.01 and dash.controls.lr.value == pytest.approx(0.01)


def test_a_rewound_diverged_run_reads_paused_in_the_status_and_the_legend(make):
    """After rewinding a run the divergence check stopped, it can go on: state and progress line
    say so, as the legend does (before: "done" / "halted" next to a legend without "diverged")."""
    dash = make("mlp", lr=0.01)
    dash.step(1)
    dash.snapshot()
    dash.set(lr=80.0)
    dash.step(30)
    assert dash.trainer.stopped and dash.run_state == "done" and dash.progress.endswith("halted")
    assert "diverged" in dash._runs_html.value
    dash.rewind(0)
    assert not dash.trainer.stopped and dash.run_state == "paused" and dash.progress.endswith("paused")
    assert "diverged" not in dash._runs_html.value
    assert dash.controls.lr.value == pytest.approx(0.01)  # the snapshot's lr, not the 80 that diverged


def test_switching_optimizer_shows_that_optimizers_settings(make):
    dash = make("mlp", optimizer="nesterov")
    dash.controls.momentum.value = 0.5
    dash.step(1)
    dash.set(optimizer="adam")
    assert dash.controls.momentum.layout.display == "none" and dash.controls.beta1.layout.display is None
    assert (dash.controls.beta1.value, dash.controls.beta2.value) == (0.9, 0.999) == dash.trainer.hparams["betas"]
    dash.controls.beta1.value = 0.8
    dash.step(1)
    assert dash.trainer.hparams["betas"] == (0.8, 0.999)
    dash.set(optimizer="momentum")  # a new optimizer gets its own defaults, shown as they are
    assert dash.controls.momentum.value == pytest.approx(0.9) == dash.trainer.hparams["momentum"]
    assert dash.controls.lr.value == pytest.approx(dash.trainer.hparams["lr"])
