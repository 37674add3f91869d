"""Issue 12, engine side: every bad input to a public entry point is a ValueError or TypeError that
names the parameter and what is allowed (classes 1, 2, 3 and the engine's part of 10).

Class 1: values the checks accepted but the run's dtype cannot hold (a raw "value cannot be
converted to type float without overflow" before). Class 2: raw Python/torch errors. Class 3: the
wrong parameter named or a meaningless request accepted.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz._validate import MAX_SHOWN, check_choice, check_fits, shown
from optiviz.engine.optimizers import make_optimizer

F64 = torch.float64


# ------------------------------------------------------------------ class 1: the dtype's range
@pytest.mark.parametrize("optimizer, kw, match", [
    ("sgd", dict(lr=1e39), r"lr must be in \(0, 3.40282e\+38\].*float32"),
    ("adam", dict(eps=1e39), r"eps must be in .*float32"),
    ("momentum", dict(weight_decay=1e39), r"weight_decay must be in .*float32"),
    ("adagrad", dict(initial_accumulator_value=1e39), r"initial_accumulator_value must be in .*float32"),
    ("adagrad", dict(lr_decay=1e300), r"lr_decay must be in .*float32"),
    ("rmsprop", dict(lr=[0.1, 1e39]), r"lr must be in .*got 1e\+39"),  # one value per run: the same rule
    ("adam", dict(lr=1e38), r"adam's first step lr / \(1 - beta1\).*lower lr"),
    ("adam", dict(lr=[1e-3, 1e37], betas=(0.999, 0.999)), r"lr / \(1 - beta1\)"),
    ("sgd", dict(grad_noise=1e39), r"grad_noise must be at most .*float32"),
    ("sgd", dict(transforms=ov.clip_by_value(1e39)), r"clip_by_value g_max must be at most"),
    ("sgd", dict(transforms=[ov.clip_by_norm(1.0), ov.sign(1e39)]), r"sign g_max must be at most"),
])
def test_values_the_dtype_cannot_hold_are_refused_by_name(optimizer, kw, match):
    with pytest.raises(ValueError, match=match):
        ov.simulate("quadratic", optimizer, steps=3, **kw)


def test_float64_holds_what_float32_cannot():
    run = ov.simulate("quadratic", "sgd", steps=3, lr=1e39, dtype=F64)  # far too big a step: it diverges
    assert run.status == "diverged"
    assert ov.simulate("quadratic", "adam", steps=3, lr=1e38, dtype=F64).status in ("diverged", "running", "converged")


def test_set_hparams_refuses_and_keeps_the_old_value():
    opt = make_optimizer("adam", 2, 2, device="cpu", dtype=torch.float32, lr=0.1)
    for bad in (dict(lr=1e39), dict(eps=1e39), dict(lr=1e38)):
        with pytest.raises(ValueError, match="lr|eps"):
            opt.set_hparams(**bad)
    assert float(opt.hparams["lr"][0, 0]) == pytest.approx(0.1)
    sim = ov.Simulator("quadratic", ["sgd", "adam"])
    with pytest.raises(ValueError, match="lr must be in"):
        sim.set_hparams("sgd", lr=1e39)
    with pytest.raises(ValueError, match="clip_by_norm max_norm"):
        sim.set_transforms(ov.clip_by_norm(1e39))
    assert sim.transforms is None
    sim.advance(3)  # still runs


@pytest.mark.parametrize("formula", ["x**100 + y**2", "exp(1000*x)", "1e39 * x**2 + y**2", "cosh(100*x) + y**2"])
def test_a_surface_beyond_float32_is_refused_with_what_to_do(formula):
    with pytest.raises(ValueError, match=r"surface .* reaches .* more than float32 holds .*dtype=torch.float64"):
        ov.simulate(formula, "sgd", steps=3)
    ov.simulate(formula, "sgd", steps=3, dtype=F64)  # float64 holds it: it runs (diverging or not)


def test_a_smaller_domain_fits():
    surface = ov.get_surface("x**100 + y**2", domain=((-2, 2), (-2, 2)))  # 2**100 fits float32
    assert ov.simulate(surface, "sgd", steps=3, start=(0.5, 0.5)).status in ("running", "converged")


def test_check_fits_names_the_parameter():
    with pytest.raises(ValueError, match="eta must be at most"):
        check_fits("eta", np.array([1.0, -1e39]), torch.float32)
    assert check_fits("eta", 1e39, torch.float64) == 1e39
    check_fits("x", 3e38, np.float32)


# ------------------------------------------------------------------ class 2: types and sizes
@pytest.mark.parametrize("kw, error, match", [
    (dict(optimizer=None), TypeError, "optimizers must be a name or a list of names"),
    (dict(optimizer=[None]), TypeError, "optimizers"),
    (dict(optimizer=5), TypeError, "optimizers"),
    (dict(optimizer=[]), ValueError, "optimizers must name at least one"),
    (dict(optimizer="sgd ", betas=(0.9, 0.99)), ValueError, "optimizer"),
    (dict(optimizer="adam", betas=0.9), ValueError, r"betas must be a pair \(beta1, beta2\)"),
    (dict(optimizer="adam", betas=[0.9, 0.9, 0.9]), ValueError, "betas must be a pair"),
    (dict(optimizer="adam", hparams={"adam": {"betas": "ab"}}), ValueError, "betas must be a pair"),
    (dict(optimizer="sgd", start=[]), ValueError, "start must hold at least one point"),
    (dict(optimizer="sgd", start=np.zeros((0, 2))), ValueError, "start must hold at least one point"),
    (dict(optimizer="sgd", start="origin"), ValueError, "start must be a point"),
    (dict(optimizer="sgd", steps=10**12), ValueError, r"steps=1,000,000,000,001 recorded .* free"),
    (dict(optimizer="sgd", steps=-1), ValueError, r"steps must be in \[0, inf\)"),
    (dict(optimizer="sgd", steps="10"), ValueError, "steps must be an integer"),
    (dict(optimizer="sgd", n=10**12), ValueError, r"1,000,000,000,000 runs .* free"),
    (dict(optimizer="sgd", device="tpu"), ValueError, r"device 'tpu' is not available here; allowed: 'cpu'"),
    (dict(optimizer="sgd", device="cuda:7"), ValueError, "device 'cuda:7'"),
    (dict(optimizer="sgd", device=5), TypeError, "device must be a name"),
    (dict(optimizer="sgd", seed="a"), ValueError, "seed must be an integer"),
    (dict(optimizer="sgd", seed=-1), ValueError, "seed must be in"),
    (dict(optimizer="sgd", hparams=5), TypeError, "hparams must map optimizer names to dicts"),
    (dict(optimizer="sgd", hparams={"sgd": 0.1}), TypeError, "hparams must map"),
    (dict(optimizer="sgd", dtype="float32"), ValueError, "dtype must be torch.float32 or torch.float64"),
    (dict(optimizer="sgd", schedule=5), ValueError, "schedule must be a name"),
    (dict(optimizer="sgd", lr="fast"), ValueError, "lr must be a number"),
    (dict(optimizer="sgd", lr=None), ValueError, "lr must be a number"),
])
def test_simulate_names_what_is_wrong(kw, error, match):
    kw = dict(kw)
    optimizer = kw.pop("optimizer")
    steps = kw.pop("steps", 3)
    with pytest.raises(error, match=match):
        ov.simulate("quadratic", optimizer, steps=steps, **kw)


def test_simulator_and_its_methods_preflight_sizes():
    sim = ov.Simulator("quadratic", ["sgd", "adam"], n=4)
    with pytest.raises(ValueError, match="steps=10,000,000,001 recorded for 8 runs"):
        sim.run(10**10)
    with pytest.raises(ValueError, match="steps=10,000,000,000 recorded"):
        sim.advance(10**10)
    assert sim.advance(0, record=False) is None and sim.t == 0  # nothing was stepped
    with pytest.raises(TypeError, match="optimizers"):
        ov.Simulator("quadratic", {"sgd": 1})


@pytest.mark.parametrize("call, error, match", [
    (lambda: ov.stability_map("quadratic", "momentum", resolution=2.5), ValueError, "resolution must be an integer"),
    (lambda: ov.stability_map("quadratic", "momentum", resolution=(4,)), ValueError, "resolution must be a whole number or a pair"),
    (lambda: ov.stability_map("quadratic", "momentum", resolution=(4, "a")), ValueError, r"resolution\[1\] \(y cells\)"),
    (lambda: ov.stability_map("quadratic", "momentum", resolution=10**7), ValueError, r"resolution must be in \[1, 2000\]"),
    (lambda: ov.stability_map("quadratic", "momentum", x=5), TypeError, "x must be a hyperparameter name"),
    (lambda: ov.stability_map("quadratic", "momentum", y="betas"), ValueError, "no hyperparameter 'betas' for y"),
    (lambda: ov.stability_map("quadratic", None), ValueError, "unknown optimizer None"),
    (lambda: ov.basin_map("himmelblau", "sgd", resolution=2.5), ValueError, "resolution must be an integer"),
    (lambda: ov.basin_map("himmelblau", "sgd", resolution=(8, 10**6)), ValueError, r"resolution\[1\]"),
    (lambda: ov.basin_map("himmelblau", None), TypeError, "optimizers"),
    (lambda: ov.basin_map("himmelblau", "sgd", resolution=4, steps=5, device="tpu"), ValueError, "device 'tpu'"),
])
def test_maps_name_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_pick_device():
    assert ov.pick_device("cpu").type == "cpu"
    for bad in ("tpu", "CPU", "", "cuda:99", "meta"):
        with pytest.raises(ValueError, match="is not available here; allowed: 'cpu'"):
            ov.pick_device(bad)
    with pytest.raises(TypeError, match="device must be a name"):
        ov.pick_device(1.5)


# ------------------------------------------------------------------ class 3: the right name, no meaningless map
@pytest.mark.parametrize("call, match", [
    (lambda: ov.stability_map("quadratic", "momentum", resolution=0), r"resolution must be in \[1, 2000\], got 0"),
    (lambda: ov.stability_map("quadratic", "momentum", resolution=-3), "resolution must be in"),
    (lambda: ov.stability_map("quadratic", "momentum", x="lr", y="lr"), "x and y must be two different hyperparameters, both are 'lr'"),
    (lambda: ov.stability_map("quadratic", "adam", x="beta1", y="beta1"), "x and y must be two different"),
    (lambda: ov.stability_map("quadratic", "sgd", ov.engine.sweeps.make_axis("lr", [0.1, 0.2]), "lr"), "x and y must be two different"),
    (lambda: ov.stability_map("quadratic", "momentum", resolution=4, steps=-1), r"steps must be in \[1, inf\)"),
    (lambda: ov.stability_map("quadratic", "momentum", resolution=4, steps=5, every=0), r"every must be in \[1, inf\)"),
    (lambda: ov.basin_map("himmelblau", "sgd", resolution=0), r"resolution must be in \[2, 1000\], got 0"),
    (lambda: ov.basin_map("himmelblau", "sgd", resolution=4, steps=-1), r"steps must be in \[1, inf\)"),
])
def test_maps_refuse_meaningless_requests_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_line_sweep_is_still_a_map():
    m = ov.stability_map("quadratic", "sgd", "lr", ov.engine.sweeps.make_axis("weight_decay", [0.0]),
                         resolution=(5, 1), steps=10)
    assert m.status.shape == (1, 5)


# ------------------------------------------------------------------ class 10: no megabyte echoed back
@pytest.mark.parametrize("text", ["a" * 1_000_000, "x" * 100_000, "quadratic" * 50_000])
def test_a_huge_surface_name_is_not_echoed_whole(text):
    with pytest.raises(ValueError, match="unknown surface") as err:
        ov.get_surface(text)
    message = str(err.value)
    assert len(message) < 600 and f"({len(text) + 2:,} characters)" in message


def test_messages_cut_long_values():
    with pytest.raises(ValueError) as err:
        check_choice("optimizer", "b" * 10_000, ["sgd"])
    assert len(str(err.value)) < 200 and "10,002 characters" in str(err.value)
    with pytest.raises(ValueError, match="lr must be a number") as err:
        ov.simulate("quadratic", "sgd", lr="c" * 10_000)
    assert len(str(err.value)) < 300
    assert len(shown("d" * 500)) <= MAX_SHOWN + 30 and shown("ok") == "'ok'"
