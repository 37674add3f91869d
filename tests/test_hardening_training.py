"""Issue 12, training side: the trainers, the searches and the model builder refuse by name what they
cannot run (classes 1 and 2), and a snapshot restores only into a trainer like the one that took it
(class 10)."""
from __future__ import annotations

import pytest
import torch

import optiviz as ov
from optiviz.training.batched import ManyTrainer


@pytest.fixture(scope="module")
def data(cifar):
    return cifar.subset(64, 16, 16)


# ------------------------------------------------------------------ class 1: the weights' dtype
@pytest.mark.parametrize("optimizer, kw, match", [
    ("sgd", dict(lr=1e39), r"lr must be in \(0, 3.40282e\+38\].*float32"),
    ("adam", dict(eps=1e39), "eps must be in .*float32"),
    ("adam", dict(lr=1e38), r"lr / \(1 - beta1\)"),
    ("nesterov", dict(weight_decay=1e300), "weight_decay must be in .*float32"),
    ("sgd", dict(clip_value=1e39), "clip_value must be in .*float32"),
    ("sgd", dict(clip_norm=1e39), "clip_norm must be in"),
    ("sgd", dict(sign=1e39), "sign must be in"),
    ("sgd", dict(grad_noise=1e39), "grad_noise must be in"),
])
def test_trainer_refuses_what_float32_cannot_hold(data, optimizer, kw, match):
    with pytest.raises(ValueError, match=match):
        ov.Trainer("mlp", data, optimizer=optimizer, **kw)


@pytest.mark.parametrize("optimizer, change, match", [
    ("sgd", dict(lr=1e39), "lr must be in"),
    ("adam", dict(lr=1e38), r"lr / \(1 - beta1\)"),
    ("adam", dict(betas=(1 - 1e-12, 0.999)), r"lr / \(1 - beta1\)"),  # a beta1 this close to 1 makes the step huge
    ("momentum", dict(clip_value=1e39), "clip_value"),
])
def test_trainer_set_refuses_and_changes_nothing(data, optimizer, change, match):
    t = ov.Trainer("mlp", data, optimizer=optimizer, lr=1e-3 if optimizer != "adam" else 1e27)
    before = t.hparams
    with pytest.raises(ValueError, match=match):
        t.set(**change)
    assert t.hparams == before
    t.step()  # still trains


def test_many_trainer_refuses_per_net_values_beyond_float32(data):
    for kw, match in ((dict(lr=1e39), "lr must be in"), (dict(lr=[0.1, 1e39]), "lr must be in .*got 1e\\+39"),
                      (dict(optimizer="adam", lr=[1e-3, 1e38]), r"lr / \(1 - beta1\)")):
        with pytest.raises(ValueError, match=match):
            ManyTrainer("mlp", data, **{"optimizer": "sgd", **kw})


def test_float64_nets_hold_more(data):
    net = ov.build_model("mlp", width=8).double()
    t = ov.Trainer(net, data.subset(64, 16, 16), optimizer="sgd", lr=1e39, divergence_factor=None)
    assert t.dtype == torch.float64  # 1e39 fits float64; the step may blow the net up, but nothing raises


# ------------------------------------------------------------------ class 2: types, names, sizes
@pytest.mark.parametrize("kw, error, match", [
    (dict(optimizer=None), ValueError, "unknown optimizer None"),
    (dict(optimizer="adam", betas=0.9), ValueError, r"betas must be a pair \(beta1, beta2\)"),
    (dict(seed="a"), ValueError, "seed must be an integer"),
    (dict(device="tpu"), ValueError, "device 'tpu' is not available here"),
    (dict(device=3), TypeError, "device must be a name"),
    (dict(model=None), ValueError, "model must be a name"),
    (dict(model="resnet"), ValueError, "unknown model 'resnet'"),
    (dict(width=10**9), ValueError, r"model 'mlp' with width=1,000,000,000 .* free: choose a smaller width"),
    (dict(model="convnet", width=10**5), ValueError, "model 'convnet' with width=100,000"),
    (dict(width=0), ValueError, r"width must be in \[1, inf\)"),
    (dict(batch_size="big"), ValueError, "batch_size must be an integer"),
    (dict(probe_every=-1), ValueError, "probe_every must be in"),
    (dict(lr=None, momentum="x", optimizer="momentum"), ValueError, "momentum must be a number"),
])
def test_trainer_names_what_is_wrong(data, kw, error, match):
    kw = dict(kw)
    model = kw.pop("model", "mlp")
    with pytest.raises(error, match=match):
        ov.Trainer(model, data, **kw)


@pytest.mark.parametrize("call, match", [
    (lambda d: ov.train("mlp", "sgd", data=d, steps=-1), r"steps must be in \[0, inf\)"),
    (lambda d: ov.train("mlp", "sgd", data=d, epochs="a"), "epochs must be an integer"),
    (lambda d: ov.train("mlp", "sgd", data=d, steps=1, epochs=1), "give epochs or steps, not both"),
    (lambda d: ov.train_many("mlp", None, data=d, steps=1), "unknown optimizer None"),
    (lambda d: ov.train_many("mlp", "adam", data=d, steps=1, betas=0.9), "betas must be a pair"),
    (lambda d: ov.train_many("mlp", "sgd", data=d, steps=1, seed="a"), "seed must be an integer"),
    (lambda d: ov.train_many("mlp", "sgd", data=d, steps=1, device="tpu"), "device 'tpu'"),
    (lambda d: ov.train_many("mlp", "sgd", data=d, steps=1, k=0), r"k must be in \[1, inf\)"),
    (lambda d: ov.train_many("mlp", "sgd", data=d, steps=1, width=10**9), r"k=1 nets of 3,083,000,000,010 weights .* free"),
    (lambda d: ov.random_search(0, {"lr": (1e-3, 1e-1)}, data=d), r"budget must be in \[1, inf\)"),
    (lambda d: ov.random_search(None, {"lr": (1e-3, 1e-1)}, data=d), "budget must be an integer"),
    (lambda d: ov.random_search(2, None, data=d), "space must be a non-empty mapping"),
    (lambda d: ov.random_search(2, {"lr": (1e-3, 1e39)}, data=d), r"lr must be in .*float32"),
    (lambda d: ov.random_search(10**12, {"lr": (1e-3, 1e-1)}, data=d), r"budget=1,000,000,000,000 .* free"),
    (lambda d: ov.grid_search(10**12, {"lr": (1e-3, 1e-1)}, data=d), r"budget=1,000,000,000,000 .* free"),
    (lambda d: ov.grid_search("a", {"lr": (1e-3, 1e-1)}, data=d), "budget must be an integer"),
    (lambda d: ov.random_search(2, {"lr": (1e-3, 1e-1)}, data=d, parallel=0), "parallel must be in"),
    (lambda d: ov.random_search(2, {"lr": (1e-3, 1e-1)}, data=d, optimizer="xx"), "unknown optimizer 'xx'"),
    (lambda d: d.subset(0), r"n_train must be in \[1, 64\]"),
    (lambda d: ov.load_cifar10(device="tpu"), "device 'tpu'"),
])
def test_training_entry_points_name_what_is_wrong(data, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(data)


# ------------------------------------------------------------------ class 10: a snapshot of another net
@pytest.mark.parametrize("other, match", [
    (dict(width=20), r"another architecture: its fc1.weight is \(50, 3072\), this model's is \(20, 3072\)"),
    (dict(depth=3), "another architecture"),
    (dict(model="convnet", width=4), "another architecture"),
    (dict(optimizer="adam"), "taken with optimizer 'sgd' and this trainer runs 'adam'"),
])
def test_a_snapshot_restores_only_into_the_same_kind_of_trainer(data, other, match):
    t = ov.Trainer("mlp", data, optimizer="sgd")
    t.step()
    snap = t.snapshot()
    kw = {"optimizer": "sgd", **other}
    target = ov.Trainer(kw.pop("model", "mlp"), data, **kw)
    before = {k: v.clone() for k, v in target.model.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        target.restore(snap)
    assert all(torch.equal(before[k], v) for k, v in target.model.state_dict().items())  # untouched
    assert target.step_count == 0
    same = ov.Trainer("mlp", data, optimizer="sgd")
    same.restore(snap)
    assert same.step_count == 1
