"""The lectures' ensemble table on tiny slices: every row, streamed, deterministic, combined correctly."""
from __future__ import annotations

import pytest
import torch

import optiviz as ov
from optiviz.training.ensembles import (LECTURE_ENSEMBLE_TABLE, ROW_KEYS, ParameterEMA, average_probabilities,
                                        average_states, ensemble_table, iter_ensemble_table, snapshot_steps,
                                        table_text, vote)

TINY = dict(k=3, epochs=2, snapshots=4, batch_size=32, width=8, lr=0.01)


@pytest.fixture(scope="module")
def data(cifar):
    return cifar.subset(128, 32, 64)


@pytest.fixture(scope="module")
def rows(data):
    return ensemble_table("mlp", data, **TINY)


def test_every_row_is_there_with_the_lectures_numbers(rows):
    assert [r.key for r in rows] == list(ROW_KEYS)
    assert [r.lecture for r in rows] == [row[2] for row in LECTURE_ENSEMBLE_TABLE] + [None]
    assert [r.prediction for r in rows[:6]] == [row[1] for row in LECTURE_ENSEMBLE_TABLE]
    assert rows[1].model == "true ensemble of 3 models" and rows[3].model == "4 snapshots over 2 epochs"
    assert [r.members for r in rows] == [1, 3, 3, 4, 4, 4, 1]
    assert all(0.0 <= r.test_acc <= 1.0 for r in rows)
    assert "true ensemble of 3 models" in table_text(rows) and "0.855" in table_text(rows)


def test_rows_stream_with_progress_and_are_deterministic(data, rows):
    seen = []
    streamed = iter_ensemble_table("mlp", data, progress=lambda step, total: seen.append((step, total)), **TINY)
    first = next(streamed)  # training is done by the time the first row arrives
    assert seen == [(s, 8) for s in range(1, 9)]
    assert [first, *streamed] == rows


def test_progress_returning_false_stops_without_rows(data):
    seen = []
    rows = list(iter_ensemble_table("mlp", data, progress=lambda step, total: seen.append(step) or step < 3, **TINY))
    assert rows == [] and seen == [1, 2, 3]


def test_baseline_is_net_zero_and_net_zero_is_the_trainer_run(data, rows):
    single = ov.Trainer("mlp", data, optimizer="momentum", lr=0.01, momentum=0.9, weight_decay=1e-3, batch_size=32,
                        width=8, seed=0, probe_every=0, divergence_factor=None)
    single.run(epochs=2)
    assert rows[0].test_acc == pytest.approx(single.evaluate("test")[1])


def test_voting_and_averaging():
    # three members, two samples, three classes
    logits = torch.tensor([
        [[5.0, 0.0, 0.0], [0.0, 2.0, 0.0]],
        [[0.0, 0.1, 0.0], [0.0, 0.0, 2.1]],
        [[0.0, 0.1, 0.0], [9.0, 0.0, 0.0]],
    ])
    # sample 0: class 1 wins the vote 2 to 1, but member 0 is so sure that the average says class 0
    assert vote(logits)[0] == 1 and average_probabilities(logits)[0] == 0
    # sample 1: a three-way tie goes to the class with the highest mean probability
    assert vote(logits)[1] == 0


def test_snapshot_steps_and_averages():
    assert snapshot_steps(100, 4, 0.5) == [62, 75, 88, 100]  # 62.5 rounds to even
    assert snapshot_steps(10, 10, 0.0) == list(range(1, 11))
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(6)}
    avg = average_states([a, b])
    assert avg["w"].tolist() == [2.0, 4.0] and int(avg["n"]) == 6
    ema = ParameterEMA(a, decay=0.5)
    ema.update(b)  # first update: d = min(0.5, 1/10) = 0.1, so mostly the new value
    assert ema.state["w"].tolist() == pytest.approx([2.8, 4.8]) and int(ema.state["n"]) == 6
    assert a["w"].tolist() == [1.0, 3.0]  # the EMA holds its own copy


def test_bad_inputs(data):
    with pytest.raises(ValueError, match=r"snapshots must be in \[1, 4\]"):
        snapshot_steps(8, 5, 0.5)
    with pytest.raises(ValueError, match=r"snapshot_from must be in \[0, 1\)"):
        snapshot_steps(8, 2, 1.0)
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        ParameterEMA({}, decay=1.0)
    with pytest.raises(ValueError, match=r"k must be in \[1, inf\)"):
        ensemble_table("mlp", data, k=0)
    with pytest.raises(ValueError, match="snapshots must be in"):
        ensemble_table("mlp", data, **{**TINY, "snapshots": 50})
