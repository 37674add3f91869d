"""The steerable trainer on tiny slices: controls at step boundaries, snapshots, divergence, probes."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz.engine.hparams import TRAINING_LR
from optiviz.training.records import StepRecord


@pytest.fixture(scope="module")
def data(cifar):
    return cifar.subset(256, 64, 64)


def small_conv(data, **kw):
    kw.setdefault("width", 4)
    kw.setdefault("depth", 2)
    kw.setdefault("batch_size", 32)
    return ov.Trainer("convnet", data, **kw)


def test_train_contract_history_lengths(data):
    run = ov.train(model="mlp", optimizer="momentum", lr=0.05, momentum=0.9, dropout=0.3, epochs=2, batch_size=64, seed=0, data=data)
    h = run.history
    assert len(h["train_loss"]) == len(h["lr"]) == len(h["step"]) == 2 * (256 // 64)
    assert h["step"].tolist() == list(range(8))
    assert len(h["test_acc"]) == len(h["val_acc"]) == len(h["train_acc"]) == 2 and h["epoch"].tolist() == [1, 2]
    assert h["epoch_step"].tolist() == [4, 8] and h["val_step"].tolist() == [4, 8]
    assert np.all((h["test_acc"] >= 0) & (h["test_acc"] <= 1)) and np.all(np.isfinite(h["train_loss"]))
    assert run.stop_reason is None and run.test_acc == h["test_acc"][-1]
    assert run.config["optimizer"] == "momentum" and run.config["momentum"] == 0.9 and run.config["model"]["dropout"] == 0.3
    # test accuracy is what evaluate() says on the test split after the last epoch
    assert run.trainer.evaluate("test")[1] == pytest.approx(h["test_acc"][-1])


def test_lr_change_takes_effect_exactly_at_the_next_step(data):
    tr = ov.Trainer("mlp", data, optimizer="sgd", lr=0.01, batch_size=32)
    tr.step()
    tr.set(lr=0.123)
    assert tr.lr == tr.hparams["lr"] == 0.123  # applied at once: the trainer is the one place it lives
    assert tr.optimizer.param_groups[0]["lr"] == 0.01  # the group gets lr * schedule at the start of a step
    before = [p.detach().clone() for p in tr.params]
    rec = tr.step()
    assert rec.lr == 0.123 and rec.changes == {"lr": 0.123} and rec.step == 1
    assert tr.optimizer.param_groups[0]["lr"] == 0.123 and tr.history["lr"].tolist() == [0.01, 0.123]
    # plain SGD: the update that step was exactly -0.123 * grad
    for p, b in zip(tr.params, before):
        torch.testing.assert_close(p.detach() - b, -0.123 * p.grad, rtol=1e-4, atol=1e-7)
    assert tr.step().changes == {} and tr.events == [(1, "lr", 0.123)]


def test_schedule_multiplies_the_base_lr_and_set_changes_the_base(data):
    tr = ov.Trainer("mlp", data, optimizer="momentum", lr=0.1, batch_size=32, schedule=lambda t: 0.5 ** t)
    tr.run(3)
    tr.set(lr=1.0)
    tr.run(2)
    np.testing.assert_allclose(tr.history["lr"], [0.1, 0.05, 0.025, 0.125, 0.0625])
    named = ov.Trainer("mlp", data, optimizer="sgd", lr=0.01, batch_size=32, schedule=("exponential", {"k": 0.1}))
    named.run(3)
    np.testing.assert_allclose(named.history["lr"], 0.01 * np.exp(-0.1 * np.arange(3)))


def test_dropout_momentum_betas_weight_decay_change_at_the_next_step(data):
    tr = ov.Trainer("mlp", data, optimizer="adam", dropout=0.0, batch_size=32)
    tr.step()
    tr.set(dropout=0.5, betas=(0.8, 0.99), weight_decay=1e-3)
    assert tr.model.drop1.p == 0.5 and tr.optimizer.param_groups[0]["betas"] == (0.8, 0.99)  # applied at once
    assert tr.history["step"].tolist() == [0]  # ...and the next step is the first to use them
    seen = {}
    tr.model.drop1.register_forward_hook(
        lambda m, i, o: seen.update(zeros=(o[i[0] != 0] == 0).float().mean().item(), p=m.p))
    rec = tr.step()
    assert seen["p"] == 0.5 and 0.3 < seen["zeros"] < 0.7  # the forward pass of that very step dropped units
    assert rec.changes == {"dropout": 0.5, "betas": (0.8, 0.99), "weight_decay": 1e-3}
    assert tr.optimizer.param_groups[0]["betas"] == (0.8, 0.99) and tr.optimizer.param_groups[0]["weight_decay"] == 1e-3
    assert tr.hparams["dropout"] == 0.5
    sgd = ov.Trainer("mlp", data, optimizer="rmsprop", batch_size=32)
    sgd.step()
    sgd.set(momentum=0.9)  # torch's RMSprop made no momentum buffer at its first step: the trainer adds one
    sgd.run(2)
    assert sgd.optimizer.param_groups[0]["momentum"] == 0.9 and np.all(np.isfinite(sgd.history["train_loss"]))


def test_out_of_range_changes_are_refused_and_the_run_goes_on(data):
    tr = ov.Trainer("mlp", data, optimizer="nesterov", lr=0.01, batch_size=32)
    tr.step()
    for bad, match in [(dict(lr=-1.0), "lr"), (dict(lr=0), "lr"), (dict(dropout=1.0), "dropout"),
                       (dict(momentum=1.5), "momentum"), (dict(momentum=0.0), "momentum"),  # nesterov needs > 0
                       (dict(betas=(0.9, 0.99)), "betas"), (dict(weight_decay=-1), "weight_decay"),
                       (dict(clip_norm=0), "clip_norm"), (dict(grad_noise=-0.1), "grad_noise"),
                       (dict(colour="red"), "allowed"), (dict(lr=0.5, dropout=2.0), "dropout")]:
        with pytest.raises(ValueError, match=match):
            tr.set(**bad)
    rec = tr.step()
    assert rec.changes == {} and rec.lr == 0.01 and not tr.stopped  # nothing half-applied, lr=0.5 included


def test_snapshot_restore_replays_the_same_steps(data):
    tr = small_conv(data, dropout=0.3, grad_noise=0.01, optimizer="adam")
    tr.run(5)
    snap = tr.snapshot()
    first = tr.run(9).history  # crosses an epoch boundary (8 steps an epoch)
    tr.restore(snap)
    assert tr.step_count == 5 and len(tr.history["train_loss"]) == 5
    again = tr.run(9).history
    for key in ("train_loss", "grad_norm", "test_acc", "val_loss"):
        np.testing.assert_array_equal(first[key], again[key])
    assert [p.step for p in tr.probe_records] == [0, 10]
    # a branch: same start, different lr from there
    tr.restore(snap)
    tr.set(lr=0.01)
    branch = tr.run(3).history["train_loss"]
    assert branch[:5].tolist() == first["train_loss"][:5].tolist() and branch[5] == first["train_loss"][5]
    assert branch[6] != first["train_loss"][6]
    # the snapshot is untouched by what followed: restore twice, same weights
    tr.restore(snap)
    w1 = tr.model.conv1.weight.detach().clone()
    tr.run(2)
    tr.restore(snap)
    assert torch.equal(tr.model.conv1.weight, w1)


def test_same_seed_same_history(data):
    kw = dict(dropout=0.2, grad_noise=0.05, clip_norm=5.0, seed=3)
    a, b = small_conv(data, **kw).run(10).history, small_conv(data, **kw).run(10).history
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    c = small_conv(data, **{**kw, "seed": 4}).run(10).history
    assert not np.array_equal(a["train_loss"], c["train_loss"])


def test_divergence_stops_the_run_with_a_reason(data):
    tr = ov.Trainer("mlp", data, optimizer="sgd", lr=50.0, batch_size=32)
    start = tr.snapshot()
    run = tr.run(50)
    assert run.stop_reason is not None and ("3x the initial loss" in run.stop_reason or "not finite" in run.stop_reason
                                            or "nan" in run.stop_reason or "inf" in run.stop_reason)
    last = len(run.history["train_loss"])
    assert last < 50 and tr.stopped
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())  # the bad step made no update
    with pytest.raises(RuntimeError, match="stopped"):
        tr.step()
    tr.resume()  # clears the stop: the next step is tried (and here trips the check again)
    assert not tr.stopped and tr.step().step == last - 1
    # rewind, lower the lr, go on
    tr.restore(start)
    tr.set(lr=1e-3)
    assert tr.run(3).stop_reason is None and len(tr.history["train_loss"]) == 3


def test_non_finite_loss_is_reported(data):
    tr = ov.Trainer("mlp", data, optimizer="sgd", lr=0.01, batch_size=32, divergence_factor=None)
    tr.step()
    with torch.no_grad():
        tr.model.fc1.weight[0, 0] = float("nan")
    rec = tr.step()
    assert rec.stop_reason == "loss is nan at step 1" and tr.stop_reason == rec.stop_reason


def test_zero_init_never_breaks_symmetry(data):
    zero = ov.Trainer("mlp", data, optimizer="sgd", lr=0.1, batch_size=32, init="zero", activation="sigmoid")
    zero.run(6)
    w = zero.model.fc1.weight.detach()
    assert w.abs().sum() > 0  # the weights did move...
    assert torch.equal(w, w[:1].expand_as(w))  # ...but every hidden unit is the same unit
    he = ov.Trainer("mlp", data, optimizer="sgd", lr=0.1, batch_size=32, init="xavier", activation="sigmoid")
    he.run(1)
    assert not torch.equal(he.model.fc1.weight[0], he.model.fc1.weight[1])


def test_gradient_transforms(data):
    def grads_after(**kw):
        tr = ov.Trainer("mlp", data, optimizer="sgd", lr=0.01, batch_size=32, probe_every=0, **kw)
        tr.step()  # the optimizer leaves p.grad as the transformed gradient it used
        return [p.grad.clone() for p in tr.params], tr

    raw, tr = grads_after()
    clipped, _ = grads_after(clip_value=1e-3)
    assert max(g.abs().max().item() for g in clipped) == pytest.approx(1e-3)
    assert max(g.abs().max().item() for g in raw) > 1e-3
    normed, _ = grads_after(clip_norm=0.5)
    total = math.sqrt(sum(g.pow(2).sum().item() for g in normed))
    raw_total = math.sqrt(sum(g.pow(2).sum().item() for g in raw))
    assert raw_total > 0.5 and total == pytest.approx(0.5, rel=1e-5)
    assert tr.history["grad_norm"][0] == pytest.approx(raw_total, rel=1e-5)  # recorded before clipping
    signed, _ = grads_after(sign=0.01)
    assert set(torch.cat([g.flatten() for g in signed]).unique().tolist()) <= {-np.float32(0.01).item(), 0.0, np.float32(0.01).item()}
    noisy, _ = grads_after(grad_noise=0.3)
    diff = torch.cat([(a - b).flatten() for a, b in zip(noisy, raw)])
    assert diff.std().item() == pytest.approx(math.sqrt(0.3), rel=0.02)  # t = 0: variance eta


def test_all_six_optimizers_map_onto_torch(data):
    expect = {"sgd": (torch.optim.SGD, 0.0), "momentum": (torch.optim.SGD, 0.9), "nesterov": (torch.optim.SGD, 0.9),
              "adagrad": (torch.optim.Adagrad, None), "rmsprop": (torch.optim.RMSprop, 0.0), "adam": (torch.optim.Adam, None)}
    for name, (cls, momentum) in expect.items():
        tr = ov.Trainer("mlp", data, optimizer=name, batch_size=64, probe_every=0)
        group = tr.optimizer.param_groups[0]
        assert type(tr.optimizer) is cls and group.get("momentum") == momentum
        assert group.get("nesterov", False) == (name == "nesterov")
        tr.run(2)
        assert np.all(np.isfinite(tr.history["train_loss"]))
    assert ov.Trainer("mlp", data, optimizer="adam", eps=1e-6, amsgrad=True).optimizer.param_groups[0]["amsgrad"] is True


def test_probes_at_their_cadence(data):
    tr = small_conv(data, probe_every=3, optimizer="sgd", lr=0.05)
    records: list[StepRecord] = []
    tr.run(7, callback=records.append)
    assert [r.step for r in records if r.probe is not None] == [0, 3, 6]
    assert all(not m._forward_hooks for m in tr.model.modules())  # hooks exist only during a probe's forward
    p0, p1 = records[0].probe, records[3].probe
    L = 4
    assert p0.layers == ("conv1", "conv2", "fc1", "fc2") and p0.dead_kind == ("dead", "dead", "dead", "")
    assert p0.act_hist.shape == (L, 40) and p0.act_edges.shape == (L, 41) and p0.grad_hist.shape == (L, 44)
    np.testing.assert_array_equal(p0.act_edges, p1.act_edges)  # edges fixed per layer
    np.testing.assert_allclose(p0.act_hist.sum(1) + p0.act_outside, 1.0, atol=1e-5)
    np.testing.assert_allclose(p0.grad_hist.sum(1), 1.0, atol=1e-5)
    assert p0.act_edges[0, 0] == 0.0 and p0.act_edges[3, 0] == -p0.act_edges[3, -1]  # relu from 0, logits symmetric
    assert np.isnan(p0.dead_fraction[-1]) and np.all((p0.dead_fraction[:-1] >= 0) & (p0.dead_fraction[:-1] <= 1))
    assert p0.act_hist.dtype == np.float32 and p0.weight_norm.dtype == np.float32
    assert len(tr.probe_records) == 3


def test_probe_values_match_direct_computation(data):
    tr = ov.Trainer("mlp", data, optimizer="sgd", lr=0.05, batch_size=32, probe_every=1)
    w_before = tr.model.fc1.weight.detach().clone()
    x = tr.data.x_train
    rec = tr.step()
    p = rec.probe
    g = tr.model.fc1.weight.grad
    assert p.grad_norm[0] == pytest.approx(g.norm().item(), rel=1e-5)
    assert p.weight_norm[0] == pytest.approx(tr.model.fc1.weight.norm().item(), rel=1e-5)
    assert p.update_ratio[0] == pytest.approx((0.05 * g.norm() / w_before.norm()).item(), rel=1e-4)
    # activation stats of the batch that step used
    idx = torch.randperm(256, generator=torch.Generator().manual_seed(0))[:32]
    h = torch.relu(x[idx].flatten(1) @ w_before.T + 0)
    assert p.act_mean[0] == pytest.approx(h.mean().item(), rel=1e-4)
    assert p.act_std[0] == pytest.approx(h.std(unbiased=False).item(), rel=1e-4)
    assert p.dead_fraction[0] == pytest.approx((h.amax(0) <= 0).float().mean().item())


def test_dead_and_saturated_units_are_counted(data):
    tr = ov.Trainer("mlp", data, optimizer="sgd", lr=1e-6, batch_size=32, probe_every=1, width=10)
    with torch.no_grad():
        tr.model.fc1.bias[:4] = -1e3  # 4 of 10 units can never fire
    assert tr.step().probe.dead_fraction[0] == pytest.approx(0.4)
    sat = ov.Trainer("mlp", data, optimizer="sgd", lr=1e-6, batch_size=32, probe_every=1, activation="tanh")
    with torch.no_grad():
        sat.model.fc1.weight.mul_(100.0)
    p = sat.step().probe
    assert p.dead_kind[0] == "saturated" and p.dead_fraction[0] > 0.9
    np.testing.assert_array_equal(p.act_edges[0, [0, -1]], [-1.0, 1.0])


def test_a_live_runner_is_the_only_thread_boundary(data):
    """The trainer has no threads, queues or events of its own: a LiveRunner steps it in a worker
    and applies set() between steps; pausing the runner is what pauses training."""
    from optiviz.stream.runner import LiveRunner

    tr = ov.Trainer("mlp", data, optimizer="sgd", lr=0.01, batch_size=32, probe_every=0, val_every=10_000)
    records, errors = [], []
    runner = LiveRunner(tr.step, apply=lambda change: tr.set(**change), publish=records.extend,
                        on_error=errors.append, fps=50)

    def wait_for(n):
        deadline = time.monotonic() + 30
        while tr.step_count < n and time.monotonic() < deadline:
            time.sleep(0.005)

    try:
        runner.play()
        wait_for(3)
        runner.request("momentum", 0.9)  # refused in the worker (plain SGD): reported, the run goes on
        runner.request("lr", 0.02)
        n = tr.step_count
        wait_for(n + 3)
        runner.pause()
        assert runner.wait(30)
        n = tr.step_count
        time.sleep(0.2)
        assert tr.step_count == n  # nothing moves while the runner rests
    finally:
        runner.close()
    lrs = tr.history["lr"].tolist()
    k = lrs.index(0.02)
    assert set(lrs[:k]) == {0.01} and set(lrs[k:]) == {0.02} and tr.events == [(k, "lr", 0.02)]
    assert records[k].changes == {"lr": 0.02} and [r.step for r in records] == list(range(n))
    assert len(errors) == 1 and "has no momentum" in errors[0]
    snap = tr.snapshot()  # usable at once: the run is at a step boundary
    assert snap.step == tr.step_count


def test_sgd_is_plain_sgd_as_in_the_engine(data):
    with pytest.raises(ValueError, match=r"'sgd' has no momentum \(plain SGD has none: use optimizer \"momentum\""):
        ov.Trainer("mlp", data, optimizer="sgd", momentum=0.9)
    tr = ov.Trainer("mlp", data, optimizer="sgd", batch_size=32, probe_every=0)
    with pytest.raises(ValueError, match="'sgd' has no momentum"):
        tr.set(momentum=0.5)
    assert "momentum" not in tr.hparams and tr.hparams["lr"] == TRAINING_LR["sgd"] == 0.05
    heavy = ov.Trainer("mlp", data, optimizer="momentum", batch_size=32, probe_every=0)
    assert heavy.hparams["momentum"] == 0.9 and type(heavy.optimizer) is torch.optim.SGD


def test_set_twice_before_a_step_keeps_the_last_value_once(data):
    tr = ov.Trainer("mlp", data, optimizer="adam", batch_size=32, probe_every=0, dropout=0.0)
    tr.step()
    tr.set(lr=0.1)
    tr.set(lr=0.002, dropout=0.25)
    rec = tr.step()
    assert rec.changes == {"lr": 0.002, "dropout": 0.25} and tr.events == [(1, "lr", 0.002), (1, "dropout", 0.25)]
    # a snapshot taken between a set() and the step keeps both the value and the change to report
    tr.set(lr=0.003)
    snap = tr.snapshot()
    tr.set(lr=0.5)
    tr.restore(snap)
    assert tr.lr == 0.003 and tr.step().changes == {"lr": 0.003} and tr.events[-1] == (2, "lr", 0.003)


def test_transforms_are_the_engines_and_the_noise_replays(data):
    """Clip by value, clip by norm and sign act on the whole net's gradient as one (1, P) row of
    engine/transforms.py; the seeded noise stream is part of snapshots."""
    from optiviz.engine.transforms import clip_by_norm, clip_by_value, sign

    def first_grads(**kw):
        tr = ov.Trainer("mlp", data, optimizer="sgd", lr=0.01, batch_size=32, probe_every=0, **kw)
        tr.step()
        return torch.cat([p.grad.flatten() for p in tr.params]).view(1, -1)

    raw = first_grads()
    for kw, tx in ((dict(clip_value=1e-3), clip_by_value(1e-3)), (dict(clip_norm=0.5), clip_by_norm(0.5)),
                   (dict(sign=0.01), sign(0.01))):
        assert torch.equal(first_grads(**kw), tx(raw, 0)), kw
    tr = ov.Trainer("mlp", data, optimizer="sgd", lr=0.01, batch_size=32, probe_every=0, grad_noise=0.5)
    tr.run(2)
    snap = tr.snapshot()
    tr.step()
    noisy = [p.grad.clone() for p in tr.params]
    tr.restore(snap)
    tr.step()
    assert all(torch.equal(a, p.grad) for a, p in zip(noisy, tr.params))


@pytest.mark.parametrize("kwargs, match", [
    (dict(model="resnet"), "model"),
    (dict(optimizer="lbfgs"), "optimizer"),
    (dict(activation="swish"), "activation"),
    (dict(init="orthogonal"), "init"),
    (dict(dropout=1.0), "dropout"),
    (dict(lr=0.0), "lr"),
    (dict(lr=-1.0), "lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=-5), "batch_size"),
    (dict(optimizer="adam", momentum=0.9), "momentum"),
    (dict(optimizer="sgd", betas=(0.9, 0.9)), "betas"),
    (dict(optimizer="sgd", alpha=0.9), "alpha"),
    (dict(clip_value=-1.0), "clip_value"),
    (dict(schedule="cosine"), "schedule"),
    (dict(probe_every=-1), "probe_every"),
    (dict(data="cifar"), "data"),
])
def test_bad_arguments(data, kwargs, match):
    kwargs.setdefault("data", data)
    model = kwargs.pop("model", "mlp")
    with pytest.raises(ValueError, match=match):
        ov.Trainer(model, **kwargs)
    with pytest.raises(ValueError, match="steps"):
        ov.Trainer("mlp", data).run()
