"""The lectures' checklist on records, without widgets: each item fires on the runs it describes.

Synthetic records pin each rule down; two tiny real runs (one made to diverge, one with a dead
layer) check the rules read the trainer's records as it writes them.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

import optiviz as ov
from optiviz.training.health import BAD, OK, WARN, Thresholds, check_health, check_run, health_line
from optiviz.training.probes import ProbeRecord


def probe(step, ratio=(1e-3, 1e-3), dead=(0.0, np.nan), kinds=("dead", ""), layers=("fc1", "fc2")) -> ProbeRecord:
    L = len(layers)
    f = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731
    return ProbeRecord(step=step, layers=tuple(layers), dead_kind=tuple(kinds), act_mean=f([0] * L),
                       act_std=f([1] * L), dead_fraction=f(dead), act_outside=f([0] * L),
                       act_hist=np.full((L, 4), 0.25, np.float32), act_edges=np.tile(np.linspace(0, 1, 5), (L, 1)),
                       grad_norm=f([1] * L), grad_hist=np.zeros((L, 3), np.float32), grad_edges=f([0, 1, 2, 3]),
                       weight_norm=f([1] * L), update_ratio=f(ratio))


def falling(n=60, start=2.3, end=1.2):
    return {"train_loss": np.linspace(start, end, n)}


def codes(findings):
    return [f.code for f in findings]


def with_epochs(train_acc, val_acc, losses=None, per_epoch=20):
    n = len(train_acc)
    steps = np.arange(1, n + 1) * per_epoch
    h = falling(n * per_epoch)
    h.update(epoch_step=steps, train_acc=np.asarray(train_acc), val_step=steps, val_acc=np.asarray(val_acc),
             epoch_train_loss=np.asarray(losses if losses is not None else np.linspace(2, 1, n)))
    return h


# ---------------------------------------------------------------------------------- rules
def test_a_healthy_run_says_so_with_its_numbers():
    found = check_health(with_epochs([0.3, 0.4], [0.3, 0.38]), [probe(s) for s in (10, 20, 30)])
    assert codes(found) == ["healthy"] and found[0].severity == OK
    assert "Looks healthy" in found[0].message and "gap +0.02" in found[0].message


def test_too_early_before_ten_steps():
    assert codes(check_health({"train_loss": [2.3, 2.2]})) == ["too_early"]


def test_divergence_from_the_stop_reason_a_non_finite_loss_or_a_rising_curve():
    reason = "loss 9.6 at step 19 exceeded 3x the initial loss 3.1"
    found = check_health(falling(20), stop_reason=reason)
    assert codes(found)[0] == "diverging" and found[0].severity == BAD and "lower the learning rate" in found[0].message
    assert codes(check_health({"train_loss": [2.3] * 20 + [np.inf]}))[0] == "diverging"
    rising = {"train_loss": np.r_[np.full(10, 2.3), np.linspace(2.3, 6.0, 30)]}
    assert codes(check_health(rising))[0] == "diverging"
    # a diverging run is not also told about its ratios or its gap
    assert codes(check_health(falling(20), [probe(s, ratio=(1.0, 1.0)) for s in (5, 10)], stop_reason=reason)) == ["diverging"]


def test_update_ratio_far_above_or_below_the_target_names_the_layer():
    high = check_health(falling(), [probe(s, ratio=(0.3, 1e-3)) for s in (10, 20, 30)])
    assert codes(high) == ["ratio_high"] and high[0].layer == "fc1" and "lr is too high" in high[0].message
    low = check_health(falling(), [probe(s, ratio=(1e-3, 1e-6)) for s in (10, 20, 30)])
    assert codes(low) == ["ratio_low"] and low[0].layer == "fc2" and low[0].severity == WARN
    # 0/0 (zero weights that never move) reads as no update at all
    none = check_health(falling(), [probe(s, ratio=(np.nan, np.nan)) for s in (10, 20, 30)])
    assert "No update at all in fc1 and fc2" in none[0].message
    # the median of recent probes: one spike does not fire it, and step 0 is ignored
    spike = [probe(0, ratio=(5.0, 5.0))] + [probe(s, ratio=(r, 1e-3)) for s, r in ((10, 1e-3), (20, 0.5), (30, 1e-3))]
    assert codes(check_health(falling(), spike)) == ["healthy"]


def test_dead_and_saturated_units():
    dead = check_health(falling(), [probe(s, dead=(0.9, np.nan)) for s in (10, 20)])
    assert codes(dead)[0] == "dead" and "90% of fc1's units are dead" in dead[0].message
    sat = check_health(falling(), [probe(s, dead=(0.7, np.nan), kinds=("saturated", "")) for s in (10, 20)])
    assert codes(sat)[0] == "saturated" and "saturated" in sat[0].message
    assert codes(check_health(falling(), [probe(10, dead=(0.2, np.nan))])) == ["healthy"]


def test_a_big_train_val_gap_is_overfitting_and_says_if_it_widens():
    found = check_health(with_epochs([0.5, 0.7, 0.9], [0.45, 0.5, 0.52]))
    assert codes(found) == ["overfitting"] and "gap 0.38 and widening" in found[0].message
    assert "regularize" in found[0].message
    assert codes(check_health(with_epochs([0.5, 0.6], [0.45, 0.55]))) == ["healthy"]
    # validation every few steps instead of at epoch ends: the last one before each epoch end counts
    h = with_epochs([0.5, 0.9], [0.0, 0.0])
    h.update(val_step=np.array([5, 15, 25, 35]), val_acc=np.array([0.3, 0.45, 0.5, 0.5]))
    assert codes(check_health(h)) == ["overfitting"]


def test_no_gap_low_accuracy_and_a_flat_loss_is_underfitting():
    flat = with_epochs([0.30, 0.31, 0.31], [0.30, 0.31, 0.30], losses=[1.90, 1.89, 1.89])
    found = check_health(flat)
    assert codes(found) == ["underfitting"] and "increase capacity" in found[0].message
    # still improving: not yet
    assert codes(check_health(with_epochs([0.30, 0.31, 0.31], [0.30, 0.31, 0.30], losses=[2.2, 2.0, 1.8]))) == ["healthy"]
    # explained by a tiny lr: the ratio is the finding, not capacity
    assert codes(check_health(flat, [probe(s, ratio=(1e-6, 1e-6)) for s in (10, 20)])) == ["ratio_low"]


def test_health_line_puts_the_worst_first_and_thresholds_can_change():
    found = check_health(with_epochs([0.5, 0.9], [0.4, 0.5]), [probe(s, dead=(0.9, np.nan)) for s in (10, 20)])
    assert codes(found) == ["dead", "overfitting"]
    assert health_line(found, max_items=1) == found[0].message
    assert health_line(found).startswith(found[0].message) and found[1].message in health_line(found)
    assert codes(check_health(with_epochs([0.5, 0.9], [0.4, 0.5]), thresholds=Thresholds(gap=0.6))) == ["healthy"]


def test_reads_only_the_tails_so_it_costs_the_same_on_a_long_run():
    n = 1_000_000
    h = {"train_loss": np.linspace(2.3, 1.0, n), "epoch_step": np.arange(1, 1001) * 1000,
         "train_acc": np.full(1000, 0.5), "val_step": np.arange(1, 1001) * 1000, "val_acc": np.full(1000, 0.45),
         "epoch_train_loss": np.linspace(2, 1, 1000)}
    probes = [probe(s) for s in range(10, 100_000, 10)]
    check_health(h, probes)
    t0 = time.perf_counter()
    for _ in range(20):
        check_health(h, probes)
    assert (time.perf_counter() - t0) / 20 < 0.005


# ---------------------------------------------------------------------------------- real runs
@pytest.fixture(scope="module")
def data(cifar):
    return cifar.subset(256, 64, 0)


def test_a_run_made_to_diverge(data):
    run = ov.train("mlp", "sgd", lr=5.0, steps=20, batch_size=32, data=data, probe_every=2, test_each_epoch=False)
    assert run.stop_reason is not None
    found = check_run(run)
    assert found[0].code == "diverging" and "lower the learning rate" in health_line(found)


def test_a_run_with_a_dead_layer(data):
    # zero init: every pre-activation of fc1 is 0, the ReLU never fires, and nothing ever moves
    run = ov.train("mlp", "sgd", lr=0.01, steps=12, batch_size=32, data=data, probe_every=2, init="zero",
                   test_each_epoch=False)
    found = check_run(run)
    assert [f.code for f in found][:2] == ["dead", "ratio_low"] and found[0].layer == "fc1"
    assert "100% of fc1's units are dead" in health_line(found)
