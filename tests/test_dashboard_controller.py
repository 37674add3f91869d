"""DashboardController without widgets: the dashboard's state and steering, scripted from Python."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from optiviz.training.runs import RunSpec, validate_spec, with_changes
from optiviz.views.dashboard.controller import DashboardController, Frame


@pytest.fixture(scope="module")
def data(cifar):
    return cifar.subset(256, 64, 0)


@pytest.fixture
def make(data):
    made = []

    def build(compare=None, **spec):
        spec.setdefault("model", "mlp")
        spec.setdefault("batch_size", 32)
        c = DashboardController(RunSpec(**spec), data, compare=compare, probe_every=2)
        made.append(c)
        return c

    yield build
    for c in made:
        c.close()


def test_requests_are_keyed_by_kind_and_the_lr_lives_in_the_trainer(make):
    c = make()
    assert set(c.handlers()) == {"live", "spec", "reset", "compare", "resume", "snapshot", "rewind", "focus", "hist",
                                 "patience", "restore_best"}
    events = []
    c.subscribe(events.append)
    c.step(2)
    c.request(("live", "lr", 0), 0.004, sync=True)
    assert c.trainer.lr == 0.004 and c.runs[0].spec.lr == 0.004  # the spec reads the trainer
    assert c.runs[0].built.lr is None  # how it was built stays as it was
    c.step(1)
    assert c.trainer.history["lr"].tolist() == [0.01, 0.01, 0.004] and "config" in events and "frame" in events
    assert list(c.series[0].markers) == [(2, "lr 0.004")]  # the marker the view draws
    c.request(("live", "lr", 0), -1.0, sync=True)
    assert "lr must be in (0, inf)" in c.error and c.trainer.lr == 0.004  # refused, the run goes on
    c.request("nonsense", 1)
    assert "unknown control 'nonsense'" in c.error


def test_compare_live_changes_and_reset_keep_the_changed_lr(make):
    c = make(compare=["sgd", "adam"])
    assert [r.label for r in c.runs] == ["sgd", "adam"] and c.compare_base is not None
    c.set(run="adam", lr=3e-4)
    c.set(momentum=0.5)  # no compared run has momentum: said so, nothing changes
    assert "no run has momentum" in c.error
    c.step(1)
    c.reset()
    assert [r.label for r in c.runs] == ["sgd", "adam lr 0.0003"] and c.runs[1].trainer.lr == 3e-4
    assert torch.equal(c.runs[0].trainer.model.fc1.weight, c.runs[1].trainer.model.fc1.weight)  # same init
    c.set(batch_size=64)  # a new-run setting keeps the compared runs and their live changes
    assert [r.trainer.batch_size for r in c.runs] == [64, 64] and c.runs[1].trainer.lr == 3e-4
    c.request("compare", None, sync=True)
    assert [r.label for r in c.runs] == ["nesterov"] and c.compare_base is None


def test_a_run_that_fails_is_reported_and_the_others_go_on(make, monkeypatch):
    """Out of memory is told by its type, any other RuntimeError is a failure of that run: both
    are shown, the other runs go on, and a frame holds records only of runs that stepped."""
    c = make(compare=["sgd", "adam"])

    def oom():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(c.runs[0].trainer, "step", oom)
    frame = c.step_chunk()
    assert isinstance(frame, Frame) and [k for k, _ in frame.records] == [1]
    assert c.runs[0].failed.startswith("out of memory") and "sgd: out of memory" in c.error
    c.step(2)
    assert c.runs[1].trainer.step_count == 3 and c.run_status(0) == "failed"

    d = make(compare=["sgd", "adam"])
    monkeypatch.setattr(d.runs[1].trainer, "step", lambda: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    d.step(1)
    assert d.runs[1].failed == "step failed: RuntimeError: shape mismatch" and d.runs[0].trainer.step_count == 1
    assert "adam: step failed: RuntimeError: shape mismatch; press Reset." == d.error


def test_spec_helpers_never_change_the_callers_spec():
    spec = RunSpec(model="mlp", optimizer="adam", lr=1e-3, betas=[0.8, 0.99], schedule="exponential")
    before = dataclasses.asdict(spec)
    checked = validate_spec(spec)
    changed = with_changes(spec, optimizer="sgd")
    assert dataclasses.asdict(spec) == before
    assert checked.betas == (0.8, 0.99) and checked.schedule[0] == "exponential"
    assert changed.optimizer == "sgd" and changed.lr is None and changed.betas is None


def test_sgd_is_plain_in_the_dashboard_too(make):
    c = make(optimizer="sgd")
    c.set(momentum=0.9)
    assert "'sgd' has no momentum" in c.error and "momentum" not in c.trainer.hparams
    c.set(optimizer="momentum")
    assert c.trainer.hparams["momentum"] == 0.9 and c.error == ""
