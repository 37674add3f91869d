"""Many nets at once equal the same runs done one by one (float32 rounding), on tiny slices."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import optiviz as ov
from optiviz.training.batched import ManyTrainer, StackedNet, train_many
from optiviz.training.data import make_generator
from optiviz.training.models import build_model

TOL = 2e-5


@pytest.fixture(scope="module")
def data(cifar):
    return cifar.subset(192, 64, 64)


def one_by_one(data, model, *, seed, steps, lr, momentum, weight_decay, dropout, batch_size=32, optimizer="sgd",
               dtype=torch.float32, **kw):
    """The plain torch loop for net k: its own init and dropout streams, the shared batch order."""
    out = []
    for k in range(len(lr)):
        net = build_model(model, seed=seed + k, dropout=dropout[k], **kw).to(dtype)
        net.set_generator(make_generator(data.device, seed + k + 1))
        if optimizer == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=lr[k], weight_decay=weight_decay[k], betas=(momentum[k], 0.999))
        else:
            opt = torch.optim.SGD(net.parameters(), lr=lr[k], momentum=momentum[k], weight_decay=weight_decay[k])
        gen = make_generator(data.device, seed)
        n, losses, perm, pos = data.n_train, [], None, 0
        for _ in range(steps):
            if perm is None:
                perm = torch.randperm(n, generator=gen, device=data.device)
            idx = perm[pos * batch_size:(pos + 1) * batch_size]
            pos += 1
            if pos >= n // batch_size:
                pos, perm = 0, None
            loss = F.cross_entropy(net(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out.append((net, np.asarray(losses)))
    return out


def assert_same_nets(trainer, reference, tol=TOL, nets=None):
    for k, (net, losses) in enumerate(reference):
        if nets is not None and k not in nets:
            continue
        np.testing.assert_allclose(trainer.result().train_loss[:, k], losses, rtol=tol, atol=tol)
        mine = trainer.module(k).state_dict()
        for key, value in net.state_dict().items():
            np.testing.assert_allclose(mine[key].double().numpy(), value.double().numpy(), rtol=tol, atol=tol,
                                       err_msg=f"net {k} {key}")


def test_mlp_at_once_equals_one_by_one(data):
    hp = dict(lr=[0.01, 0.05, 0.02], momentum=[0.9, 0.0, 0.5], weight_decay=[0.0, 1e-3, 1e-2], dropout=[0.0, 0.3, 0.5])
    trainer = ManyTrainer("mlp", data, optimizer="momentum", batch_size=32, seed=3, **hp)
    trainer.run(steps=9)  # crosses an epoch end (6 steps each): the second permutation matches too
    assert_same_nets(trainer, one_by_one(data, "mlp", seed=3, steps=9, **hp))
    # evaluation: each net's val accuracy is its own module's
    _, acc = trainer.evaluate("val")
    for k in range(3):
        net = trainer.module(k).eval()
        with torch.no_grad():
            assert acc[k] == pytest.approx(float((net(data.x_val).argmax(1) == data.y_val).float().mean()))


def test_convnet_with_batch_norm_equals_one_by_one(data):
    hp = dict(lr=[0.02, 0.05], momentum=[0.9, 0.5], weight_decay=[1e-3, 0.0], dropout=[0.2, 0.0])
    trainer = ManyTrainer("convnet", data, optimizer="momentum", batch_size=32, seed=1, width=4, depth=2, **hp)
    trainer.run(steps=4)
    assert_same_nets(trainer, one_by_one(data, "convnet", seed=1, steps=4, width=4, depth=2, **hp))


def test_float64_convnet_matches_to_the_last_bits(data):
    """In float64 the rounding that float32 amplifies (weights before batch norm, lr 0.1) is gone:
    grouped convolutions and stacked batch norm give the single nets' numbers."""
    d64 = replace(data, x_train=data.x_train.double(), x_val=data.x_val.double(), x_test=data.x_test.double())
    hp = dict(lr=[0.02, 0.1], momentum=[0.9, 0.5], weight_decay=[1e-3, 0.0], dropout=[0.2, 0.0])
    nets = [build_model("convnet", seed=1 + k, width=4, depth=2, dropout=hp["dropout"][k]).double() for k in range(2)]
    trainer = ManyTrainer(nets, d64, optimizer="momentum", batch_size=32, seed=1, **hp)
    trainer.run(steps=4)
    ref = one_by_one(d64, "convnet", seed=1, steps=4, width=4, depth=2, dtype=torch.float64, **hp)
    assert_same_nets(trainer, ref, tol=1e-12)


def test_adam_per_net_betas_equal_torch(data):
    hp = dict(lr=[1e-3, 3e-3], momentum=[0.9, 0.5], weight_decay=[0.0, 1e-2], dropout=[0.1, 0.0])
    trainer = ManyTrainer("mlp", data, optimizer="adam", lr=hp["lr"], weight_decay=hp["weight_decay"],
                          dropout=hp["dropout"], betas=(hp["momentum"], 0.999), batch_size=32, seed=0, width=8)
    trainer.run(steps=4)
    assert_same_nets(trainer, one_by_one(data, "mlp", seed=0, steps=4, optimizer="adam", width=8, **hp))
    assert trainer.per_model["beta1"].tolist() == [0.9, 0.5]


def test_net_zero_is_the_trainer_run(data):
    run = train_many("mlp", "momentum", steps=7, data=data, lr=[0.02, 0.05], momentum=0.9, dropout=0.3, batch_size=32, seed=5)
    single = ov.train(model="mlp", optimizer="momentum", steps=7, data=data, lr=0.02, momentum=0.9, dropout=0.3,
                      batch_size=32, seed=5, probe_every=0)
    np.testing.assert_allclose(run.train_loss[:, 0], single.history["train_loss"], rtol=TOL, atol=TOL)
    assert run.train_loss.shape == (7, 2) and run.k == 2 and run.seeds.tolist() == [5, 6]


def test_a_per_net_transform_clips_each_nets_whole_gradient_as_the_trainer_does(data):
    """clip_by_norm([0.5, 1e30]): net 0 is the Trainer run with clip_norm=0.5, net 1 is not clipped at all."""
    kw = dict(steps=6, data=data, lr=0.05, momentum=0.9, batch_size=32, seed=5)
    run = train_many("mlp", "momentum", k=2, transform=ov.clip_by_norm(np.array([0.5, 1e30])), **kw)
    single = ov.train(model="mlp", optimizer="momentum", clip_norm=0.5, probe_every=0, **kw)
    np.testing.assert_allclose(run.train_loss[:, 0], single.history["train_loss"], rtol=TOL, atol=TOL)
    plain = train_many("mlp", "momentum", k=2, **kw)
    np.testing.assert_allclose(run.train_loss[:, 1], plain.train_loss[:, 1], rtol=TOL, atol=TOL)
    assert abs(run.train_loss[-1, 0] - plain.train_loss[-1, 0]) > 1e-3  # the clip did act on net 0
    noisy = train_many("mlp", "momentum", k=2, transform=ov.annealed_noise(np.array([0.0, 0.1]), seed=1), **kw)
    np.testing.assert_array_equal(noisy.train_loss[:, 0], plain.train_loss[:, 0])  # eta 0: exactly no noise
    assert abs(noisy.train_loss[-1, 1] - plain.train_loss[-1, 1]) > 1e-3
    with pytest.raises(ValueError, match="transform must be"):
        ManyTrainer("mlp", data, transform=0.5)


def test_early_abort_freezes_the_diverging_net(data):
    records = []
    trainer = ManyTrainer("mlp", data, optimizer="momentum", lr=[0.01, 50.0], momentum=0.9, batch_size=32, seed=0, val_every=3)
    run = trainer.run(steps=6, callback=records.append)
    assert run.aborted.tolist() == [False, True]
    step = int(run.abort_step[1])
    assert 0 < step < 6 and run.abort_step[0] == -1
    # the loss that tripped the rule is kept, nothing after it; the other net trains on
    assert run.train_loss[step, 1] > 3 * run.initial_loss[1] or not np.isfinite(run.train_loss[step, 1])
    assert np.isnan(run.train_loss[step + 1:, 1]).all() and np.isfinite(run.train_loss[:, 0]).all()
    # the aborted net left the stack: the rest train on alone, it stays frozen and has no accuracy
    assert trainer.live.tolist() == [0] and trainer.net.k == 1
    frozen = trainer.state_of(1)
    trainer.run(steps=2)
    assert all(torch.equal(frozen[k], v) for k, v in trainer.state_of(1).items())
    assert np.isnan(trainer.evaluate("val")[1][1]) and np.isfinite(trainer.evaluate("val")[1][0])
    assert trainer.logits(data.x_val).shape == (2, 64, 10)
    # streamed records: one per validation pass, with the abort once it happened
    assert [r.steps.tolist() for r in records] == [[0, 1, 2], [3, 4, 5]]
    assert records[-1].aborted.tolist() == [False, True] and records[-1].val_acc.shape == (2,)


def test_nets_left_after_an_abort_still_equal_one_by_one(data):
    """Dropping an aborted net slices the stack, the optimizer state and the dropout streams."""
    hp = dict(lr=[0.01, 50.0, 0.02, 0.03], momentum=[0.9, 0.9, 0.0, 0.5], weight_decay=[0.0, 0.0, 1e-3, 1e-2],
              dropout=[0.3, 0.0, 0.5, 0.0])
    trainer = ManyTrainer("mlp", data, optimizer="momentum", batch_size=32, seed=2, width=16, **hp)
    trainer.run(steps=8)
    assert trainer.live.tolist() == [0, 2, 3]
    ref = one_by_one(data, "mlp", seed=2, steps=8, width=16, **hp)
    assert 0 < trainer.abort_step[1] < 7  # the others trained on for several steps after it left
    assert_same_nets(trainer, ref, nets=(0, 2, 3))


def test_all_aborted_ends_the_run(data):
    run = train_many("mlp", "momentum", steps=20, data=data, lr=[80.0, 120.0], momentum=0.9, batch_size=32)
    assert run.aborted.all() and run.steps < 20 and run.steps == int(run.abort_step.max()) + 1


def test_stop_at_a_step_boundary(data):
    trainer = ManyTrainer("mlp", data, k=2, lr=0.01, batch_size=32, width=8, val_every=0)
    run = trainer.run(steps=10, step_callback=lambda tr: tr.step_count < 3)
    assert run.steps == 3 and run.train_loss.shape == (3, 2) and len(run.val_step) == 0
    trainer.stop()  # a stop requested before run() starts is forgotten, as Trainer.run does
    records = []
    assert trainer.run(steps=5, callback=records.append, record_every=2).steps == 8
    assert [r.steps.tolist() for r in records] == [[3], [4, 5], [6, 7]] and records[0].val_acc is None


def test_same_init_shares_weights_but_not_dropout(data):
    trainer = ManyTrainer("mlp", data, k=3, lr=0.01, dropout=0.5, same_init=True, batch_size=32, width=8)
    first = trainer.net.row_state(0)
    assert all(torch.equal(first[k], trainer.net.row_state(i)[k]) for i in (1, 2) for k in first)
    losses = trainer.step().numpy()
    assert len(set(losses.tolist())) == 3  # each net drew its own dropout mask
    other = ManyTrainer("mlp", data, k=2, lr=0.01, batch_size=32, width=8)
    assert not torch.equal(other.net.row_state(0)["fc1.weight"], other.net.row_state(1)["fc1.weight"])


def test_stacked_net_round_trip(data):
    nets = [build_model("mlp", seed=s, width=8) for s in (0, 1)]
    stacked = StackedNet(nets)
    with torch.no_grad():
        logits = stacked.logits(data.x_val)
        for i, net in enumerate(nets):
            assert torch.allclose(logits[i], net.eval()(data.x_val), atol=1e-5)
    again = StackedNet.from_state(stacked.template, stacked.stacked_state())
    assert torch.allclose(again.logits(data.x_val), logits)


def test_bad_inputs(data):
    with pytest.raises(ValueError, match="lr must be a scalar or have one value per net"):
        ManyTrainer("mlp", data, optimizer="momentum", lr=[0.1, 0.2], momentum=[0.9, 0.9, 0.9])
    with pytest.raises(ValueError, match=r"lr must be in \(0, inf\)"):
        ManyTrainer("mlp", data, lr=[0.1, -1.0])
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        ManyTrainer("mlp", data, lr=0.1, dropout=[0.2, 1.0])
    with pytest.raises(ValueError, match="momentum must be in"):
        ManyTrainer("mlp", data, optimizer="momentum", lr=0.1, momentum=[0.9, 1.5])
    with pytest.raises(ValueError, match="unknown optimizer"):
        ManyTrainer("mlp", data, optimizer="lbfgs")
    with pytest.raises(ValueError, match="has no momentum"):
        ManyTrainer("mlp", data, optimizer="adam", momentum=0.9)
    with pytest.raises(ValueError, match=r"'sgd' has no momentum \(plain SGD has none: use optimizer \"momentum\" or \"nesterov\"\)"):
        ManyTrainer("mlp", data, optimizer="sgd", momentum=0.9)  # the names mean what they mean on the surfaces
    with pytest.raises(ValueError, match="init_seeds must have one seed per net"):
        ManyTrainer("mlp", data, k=3, init_seeds=[1, 2])
    with pytest.raises(ValueError, match=r"k must be in \[1, inf\)"):
        ManyTrainer("mlp", data, k=0)
    with pytest.raises(ValueError, match="divergence_factor"):
        ManyTrainer("mlp", data, divergence_factor=0.5)
    with pytest.raises(ValueError, match="give exactly one of steps or epochs"):
        ManyTrainer("mlp", data, k=2).run(steps=1, epochs=1)
    with pytest.raises(ValueError, match="one architecture"):
        StackedNet([build_model("mlp", width=8), build_model("mlp", width=9)])
