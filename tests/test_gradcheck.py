"""Gradient check (issue 16, item 1): backprop vs centred differences catches a wrong backward."""
import pytest
import torch

import optiviz as ov
from optiviz.training.gradcheck import relative_error, relu_kink, tiny_net


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(16, 12, generator=g), torch.randint(0, 4, (16,), generator=g)


def test_correct_layers_pass_in_float64(batch):
    for act in ("tanh", "relu"):
        r = ov.gradient_check(tiny_net(act), *batch)
        assert set(r.relative_error) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
        assert max(r.relative_error.values()) < 1e-6, (act, r.relative_error)
        assert r.checked["fc1.weight"] == 12 * 8  # every entry by default
        assert r.failing() == []


def test_wrong_backward_is_caught_and_only_upstream(batch):
    r = ov.gradient_check(tiny_net("wrong_tanh"), *batch)
    # the broken activation sits between fc1 and fc2: fc1's gradients go through its backward
    assert r.relative_error["fc1.weight"] > 1e-3 and r.relative_error["fc1.bias"] > 1e-3
    assert r.relative_error["fc2.weight"] < 1e-6 and r.relative_error["fc2.bias"] < 1e-6
    assert set(r.failing(1e-3)) == {"fc1.weight", "fc1.bias"}
    assert r.worst[0].startswith("fc1")


def test_float32_makes_a_correct_net_look_wrong(batch):
    r32 = ov.gradient_check(tiny_net("tanh"), *batch, dtype=torch.float32)
    r64 = ov.gradient_check(tiny_net("tanh"), *batch, dtype=torch.float64)
    assert r32.worst[1] > 1e-3 > 1e-6 > r64.worst[1]


def test_relu_kink_breaks_the_numerical_gradient():
    near = relu_kink(distance=1e-6)  # inside eps = 1e-5: the difference straddles the kink
    far = relu_kink(distance=1e-2)
    assert near.relative_error["fc1.weight"] > 1e-2
    assert far.relative_error["fc1.weight"] < 1e-6


def test_the_original_module_is_untouched_and_sampling_works(batch):
    net = ov.build_model("mlp", width=6, in_shape=(3, 4, 4), n_classes=3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    r = ov.gradient_check(net, x, torch.tensor([0, 1, 2, 0, 1]), max_entries=10)
    assert r.checked["fc1.weight"] == 10 and r.checked["fc2.bias"] == 3
    assert r.worst[1] < 1e-6
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert next(net.parameters()).dtype == torch.float32


def test_bad_input_names_the_parameter(batch):
    net = tiny_net()
    for kwargs, name in ((dict(eps=0.0), "eps"), (dict(dtype=torch.int64), "dtype"), (dict(max_entries=0), "max_entries"),
                         (dict(loss_fn=3), "loss_fn")):
        with pytest.raises(ValueError, match=name):
            ov.gradient_check(net, *batch, **kwargs)
    with pytest.raises(ValueError, match="module"):
        ov.gradient_check("net", *batch)
    with pytest.raises(ValueError, match="inputs"):
        ov.gradient_check(net, [1.0], batch[1])
    with pytest.raises(ValueError, match="numerical"):
        relative_error(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="activation"):
        tiny_net("gelu")
