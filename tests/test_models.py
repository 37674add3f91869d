"""Model builders: structure and names, the init formulas, dropout semantics, bad input."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import optiviz as ov
from optiviz.training.models import Dropout


def test_models_build_and_name_their_layers():
    x = torch.randn(4, 3, 32, 32)
    for name in ov.MODELS:
        net = ov.build_model(name)
        assert net(x).shape == (4, 10)
    mlp = ov.build_model("mlp")
    assert mlp.layer_names == ("fc1", "fc2") and mlp.fc1.out_features == 50  # the lectures' 2-layer net
    deep = ov.build_model("deep_mlp", depth=4, width=20)
    assert deep.layer_names == ("fc1", "fc2", "fc3", "fc4") and deep.fc3.in_features == 20


def test_convnet_default_is_the_reference_net():
    net = ov.build_model("convnet")
    assert net.layer_names == ("conv1", "conv2", "conv3", "fc1", "fc2")
    assert [net.get_submodule(f"conv{i}").out_channels for i in (1, 2, 3)] == [16, 32, 64]
    assert all(isinstance(net.get_submodule(f"bn{i}"), nn.BatchNorm2d) for i in (1, 2, 3))
    assert all(isinstance(net.get_submodule(f"pool{i}"), nn.MaxPool2d) for i in (1, 2, 3))
    assert net.fc1.in_features == 64 * 4 * 4 and net.fc1.out_features == 128
    assert [d.p for d in net.dropouts()] == [0.3]
    plain = ov.build_model("convnet", batch_norm=False, dropout=0.0, width=8, depth=2)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert plain.conv2.out_channels == 16 and plain.fc1.in_features == 16 * 8 * 8


def test_activation_choice_and_probe_points():
    for act, cls in [("relu", nn.ReLU), ("leaky_relu", nn.LeakyReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid), ("elu", nn.ELU)]:
        net = ov.build_model("deep_mlp", activation=act, depth=3)
        assert isinstance(net.act1, cls) and isinstance(net.act2, cls)
        assert [(p.name, p.output, p.nonlinearity) for p in net.probe_layers] == [
            ("fc1", "act1", act), ("fc2", "act2", act), ("fc3", "fc3", None)]
    assert ov.build_model("mlp", activation="leaky_relu").act1.negative_slope == 0.01


def test_init_formulas():
    net = ov.build_model("deep_mlp", init="he", width=400, depth=3)
    assert net.fc2.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    net = ov.build_model("deep_mlp", init="xavier", width=400, depth=3)
    bound = math.sqrt(6 / (400 + 400))
    w = net.fc2.weight
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    net = ov.build_model("mlp", init="small_normal")
    assert net.fc1.weight.std().item() == pytest.approx(0.01, rel=0.02)
    net = ov.build_model("convnet", init="zero").requires_grad_(False)
    assert all(m.weight.abs().sum().item() == 0 for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    conv = ov.build_model("convnet", init="he", batch_norm=False).requires_grad_(False)
    assert conv.conv2.weight.std().item() == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.05)
    assert all(m.bias.abs().sum().item() == 0 for m in conv.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    # default: he for the ReLU family, xavier for tanh / sigmoid
    assert ov.build_model("mlp").config["init"] == "he"
    assert ov.build_model("mlp", activation="tanh").config["init"] == "xavier"
    # torch.nn's own default, the convnet's (the reference accuracy was measured with it)
    net = ov.build_model("convnet").requires_grad_(False)
    assert net.config["init"] == "torch"
    b = 1 / math.sqrt(1024)
    assert b * 0.99 < net.fc1.weight.abs().max().item() <= b and 0 < net.fc1.bias.abs().max().item() <= b
    assert net.fc1.weight.std().item() == pytest.approx(b / math.sqrt(3), rel=0.02)


def test_seed_fixes_the_weights_and_ignores_global_rng():
    torch.manual_seed(123)
    a = ov.build_model("convnet", seed=5)
    torch.manual_seed(456)
    b = ov.build_model("convnet", seed=5)
    c = ov.build_model("convnet", seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_dropout_inverted_and_vanilla_expected_values():
    x = torch.ones(4000, 50)
    gen = torch.Generator().manual_seed(0)
    for mode, train_mean, eval_scale in [("inverted", 1.0, 1.0), ("vanilla", 0.6, 0.6)]:
        d = Dropout(0.4, mode)
        d.generator = gen
        d.train()
        out = d(x)
        assert out.mean().item() == pytest.approx(train_mean, rel=0.01)
        assert (out == 0).float().mean().item() == pytest.approx(0.4, abs=0.01)
        kept = out[out != 0]
        assert torch.allclose(kept, torch.full_like(kept, 1 / 0.6 if mode == "inverted" else 1.0))
        d.eval()
        assert torch.equal(d(x), x * eval_scale)  # test time: identity (inverted) or scaled by keep prob (vanilla)
        # the same expectation in training and at test time, in both modes
        assert out.mean().item() == pytest.approx(d(x).mean().item(), rel=0.01)


def test_dropout_p_changes_between_calls():
    net = ov.build_model("mlp", dropout=0.0)
    net.set_generator(torch.Generator().manual_seed(0))
    net.train()
    h = torch.ones(2000, 50)
    assert torch.equal(net.drop1(h), h)
    net.set_dropout(0.75)
    assert (net.drop1(h) == 0).float().mean().item() == pytest.approx(0.75, abs=0.02)
    with pytest.raises(ValueError, match="dropout"):
        net.set_dropout(1.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="resnet"), "model"),
    (dict(activation="swish"), "activation"),
    (dict(init="orthogonal"), "unknown init .*allowed: xavier, he, small_normal, zero, torch"),
    (dict(dropout=1.0), "dropout"),
    (dict(dropout=-0.1), "dropout"),
    (dict(dropout_mode="gaussian"), "dropout_mode"),
    (dict(width=0), "width"),
    (dict(name="mlp", depth=1), "depth"),
    (dict(seed=1.5), "seed"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ov.build_model(**kwargs)
