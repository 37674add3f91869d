"""Batched optimizers against a loop of real torch.optim instances, in float64, over 1,000+ steps.

Both sides run on OPTIVIZ_TEST_DEVICE (default cpu) in OPTIVIZ_TEST_DTYPE (default float64), so
scripts/gpu_check.sh can run the same parity on CUDA, and in float32 with a float32 tolerance.

Reference runs use one torch optimizer with one param group per run (each group holds that run's
hyperparameters), stepping all runs with a single ``opt.step()`` so the tests stay light.
The error measure is max over steps and runs of |x - x_torch| / |x_torch| (minima sit away from
the origin, so |x_torch| never approaches 0).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from optiviz.engine.hparams import HPARAMS, defaults
from optiviz.engine.optimizers import OPTIMIZERS, make_optimizer, torch_optimizer

STEPS = 1000
DTYPES = {"float64": torch.float64, "float32": torch.float32}
_dtype_name = os.environ.get("OPTIVIZ_TEST_DTYPE", "float64")
if _dtype_name not in DTYPES:
    raise ValueError(f"OPTIVIZ_TEST_DTYPE must be one of {', '.join(DTYPES)}, got {_dtype_name!r}")
DTYPE = DTYPES[_dtype_name]
DEVICE = torch.device(os.environ.get("OPTIVIZ_TEST_DEVICE", "cpu"))
# float32: both sides round each op to 24 bits in their own order; over 1,000 steps that stays
# well within TOL32 (2.3e-7 at worst, measured on the CPU), far below any difference in update rule
TOL32 = 1e-4
TOL = 1e-9 if DTYPE == torch.float64 else TOL32
# The lecture form is torch's update in other arithmetic (v = mu v - lr g): equal in float64, while
# in float32 the two roundings drift apart, by 2.2e-3 at worst over 1,000 steps (measured on the CPU)
LECTURE_TOL = 1e-9 if DTYPE == torch.float64 else 1e-2


@pytest.fixture(scope="module", autouse=True)
def no_tf32():
    """On CUDA, parity is asserted with full float32 matmuls and convolutions (TF32 off)."""
    if DEVICE.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ----------------------------------------------------------------------------- test functions
def quadratic(xy: torch.Tensor) -> torch.Tensor:
    """Gradient of 0.5*((x - 1)^2 + 25*(y + 0.5)^2): the lectures' narrow valley."""
    return torch.stack([xy[..., 0] - 1.0, 25.0 * (xy[..., 1] + 0.5)], -1)


def rosenbrock(xy: torch.Tensor) -> torch.Tensor:
    """Gradient of (1 - x)^2 + 100*(y - x^2)^2."""
    x, y = xy[..., 0], xy[..., 1]
    return torch.stack([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)], -1)


_C, _S = math.cos(0.5), math.sin(0.5)


def rotated(xy: torch.Tensor) -> torch.Tensor:
    """Gradient of a quadratic with curvatures 1 and 10 along axes rotated by 0.5 rad, minimum (-1, 2)."""
    dx, dy = xy[..., 0] + 1.0, xy[..., 1] - 2.0
    u, w = _C * dx + _S * dy, -_S * dx + _C * dy
    gu, gw = u, 10.0 * w
    return torch.stack([_C * gu - _S * gw, _S * gu + _C * gw], -1)


SURFACES = (quadratic, rosenbrock, rotated)
STARTS = ((-2.0, 1.0), (-1.2, 1.0), (2.0, -1.0))

TORCH = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {}),
    "nesterov": (torch.optim.SGD, {"nesterov": True}),
    "adagrad": (torch.optim.Adagrad, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adam": (torch.optim.Adam, {}),
}


def rows_grad(fns):
    """Gradient of run i under its own surface fns[i]."""
    def grad(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([f(x[i]) for i, f in enumerate(fns)])
    return grad


def torch_run(name, settings, fns, starts, steps=STEPS, scale=None, changes=None):
    """Reference: one param group per run; scale(k) multiplies each group's lr at step k."""
    cls, extra = TORCH[name]
    params = [torch.tensor(s, dtype=DTYPE, device=DEVICE, requires_grad=True) for s in starts]
    groups = [{"params": [p], **{**defaults(name), **extra, **kw}} for p, kw in zip(params, settings)]
    opt = cls(groups, foreach=False)
    if name == "adagrad":
        # torch.optim.Adagrad fills state['sum'] from its constructor argument, not the group's
        # value: do what one Adagrad(initial_accumulator_value=v) per run would do.
        for grp in opt.param_groups:
            opt.state[grp["params"][0]]["sum"].fill_(grp["initial_accumulator_value"])
    base = [g["lr"] for g in opt.param_groups]
    out = torch.empty((steps, len(params), 2), dtype=DTYPE, device=DEVICE)
    for k in range(steps):
        if changes and k in changes:
            for i, grp in enumerate(opt.param_groups):
                grp.update({key: v[i] if isinstance(v, list) else v for key, v in changes[k].items()})
            base = [g["lr"] for g in opt.param_groups]
        if scale is not None:
            for grp, b, s in zip(opt.param_groups, base, np.broadcast_to(scale(k), (len(params),))):
                grp["lr"] = b * float(s)
        for p, f in zip(params, fns):
            p.grad = f(p.detach())
        opt.step()
        out[k] = torch.stack([p.detach() for p in params])
    return out.cpu().numpy().astype(np.float64)  # one copy off the device, not one per step


def our_run(name, hp, fns, starts, steps=STEPS, scale=None, changes=None, form="torch"):
    x = torch.tensor(starts, dtype=DTYPE, device=DEVICE)
    opt = make_optimizer(name, len(starts), 2, device=DEVICE, dtype=DTYPE, form=form, **hp)
    grad = rows_grad(fns)
    out = torch.empty((steps, len(starts), 2), dtype=DTYPE, device=DEVICE)
    for k in range(steps):
        if changes and k in changes:
            opt.set_hparams(**{key: np.array(v) if isinstance(v, list) else v for key, v in changes[k].items()})
        s = scale(k) if scale is not None else None
        if isinstance(s, np.ndarray):
            s = torch.as_tensor(s, dtype=DTYPE, device=DEVICE)
        opt.step(x, grad(x), lr_scale=s)
        out[k] = x
    return out.cpu().numpy().astype(np.float64)


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(a - ref, axis=-1) / np.linalg.norm(ref, axis=-1)))


def per_run(settings):
    """Column-wise hyperparameters for make_optimizer from a list of per-run torch kwargs."""
    hp = {}
    for key in settings[0]:
        vals = [s[key] for s in settings]
        if isinstance(vals[0], bool):
            hp[key] = vals[0]
        elif isinstance(vals[0], tuple):
            hp[key] = tuple(np.array(v) for v in zip(*vals))
        else:
            hp[key] = np.array(vals)
    return hp


# ----------------------------------------------------------------------------- exactness
SETTINGS = [
    ("sgd", dict(lr=1e-3)),
    ("sgd", dict(lr=2e-3, weight_decay=0.1)),
    ("momentum", dict(lr=1e-3)),
    ("momentum", dict(lr=5e-4, momentum=0.95, dampening=0.3, weight_decay=0.05)),
    ("momentum", dict(lr=1e-3, momentum=0.0, dampening=0.5)),  # torch skips the buffer: no dampening
    ("nesterov", dict(lr=1e-3)),
    ("nesterov", dict(lr=5e-4, momentum=0.7, weight_decay=0.01)),
    ("adagrad", dict(lr=0.5)),
    ("adagrad", dict(lr=0.3, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01, eps=1e-6)),
    ("rmsprop", dict(lr=1e-3)),
    ("rmsprop", dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.01)),
    ("rmsprop", dict(lr=5e-4, alpha=0.95, eps=1e-4, momentum=0.9)),
    ("adam", dict(lr=1e-2)),
    ("adam", dict(lr=2e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True)),
    ("adam", dict(lr=5e-3, betas=(0.5, 0.9), amsgrad=True)),
]


@pytest.mark.parametrize("name,hp", SETTINGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SETTINGS)])
def test_matches_torch_on_three_surfaces(name, hp):
    ref = torch_run(name, [hp] * 3, SURFACES, STARTS)
    ours = our_run(name, hp, SURFACES, STARTS)
    assert np.all(np.isfinite(ref))
    assert rel_err(ours, ref) <= TOL


PER_RUN = {
    "sgd": [dict(lr=lr, weight_decay=wd) for lr, wd in [(1e-3, 0.0), (2e-3, 0.1), (5e-4, 0.01), (1e-3, 0.0)]],
    "momentum": [dict(lr=lr, momentum=m, dampening=d, weight_decay=wd) for lr, m, d, wd in
                 [(1e-3, 0.9, 0.0, 0.0), (5e-4, 0.0, 0.3, 0.01), (2e-4, 0.95, 0.1, 0.0), (1e-3, 0.5, 0.0, 0.1)]],
    "nesterov": [dict(lr=lr, momentum=m, weight_decay=wd) for lr, m, wd in
                 [(1e-3, 0.9, 0.0), (5e-4, 0.3, 0.01), (2e-4, 0.95, 0.0), (1e-3, 0.5, 0.1)]],
    "adagrad": [dict(lr=lr, lr_decay=ld, initial_accumulator_value=a, eps=e, weight_decay=wd) for lr, ld, a, e, wd in
                [(0.5, 0.0, 0.0, 1e-10, 0.0), (0.3, 0.01, 0.1, 1e-6, 0.01), (0.1, 0.001, 1.0, 1e-10, 0.0),
                 (0.2, 0.1, 0.5, 1e-3, 0.1)]],
    "rmsprop": [dict(lr=lr, alpha=a, eps=e, momentum=m, weight_decay=wd, centered=True) for lr, a, e, m, wd in
                [(1e-3, 0.9, 1e-8, 0.0, 0.0), (5e-4, 0.99, 1e-6, 0.5, 0.01), (2e-4, 0.5, 1e-8, 0.9, 0.0),
                 (1e-3, 0.999, 1e-4, 0.0, 0.1)]],
    "adam": [dict(lr=lr, betas=b, eps=e, weight_decay=wd, amsgrad=True) for lr, b, e, wd in
             [(1e-2, (0.9, 0.999), 1e-8, 0.0), (5e-3, (0.8, 0.99), 1e-6, 0.01), (2e-2, (0.5, 0.9), 1e-8, 0.0),
              (1e-3, (0.0, 0.5), 1e-4, 0.1)]],
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_per_run_hyperparameters_each_row_equals_its_torch_run(name):
    settings = PER_RUN[name]
    fns = (rosenbrock, quadratic, rotated, rosenbrock)
    starts = ((-1.2, 1.0), (-2.0, 1.0), (2.0, -1.0), (0.0, 0.0))
    ref = torch_run(name, settings, fns, starts)
    ours = our_run(name, per_run(settings), fns, starts)
    assert np.all(np.isfinite(ref))
    assert rel_err(ours, ref) <= TOL


def test_many_distinct_betas_stay_within_tolerance(monkeypatch):
    """Past EXACT_MAX distinct betas the bias corrections use exp(t log beta): still ~1e-14."""
    from optiviz.engine import optimizers

    monkeypatch.setattr(optimizers._BiasCorrection, "EXACT_MAX", 0)
    settings = PER_RUN["adam"]
    fns = (rosenbrock, quadratic, rotated, rosenbrock)
    starts = ((-1.2, 1.0), (-2.0, 1.0), (2.0, -1.0), (0.0, 0.0))
    ref = torch_run("adam", settings, fns, starts)
    ours = our_run("adam", per_run(settings), fns, starts)
    assert rel_err(ours, ref) <= TOL


def _halving(k: int) -> float:
    return 0.5 ** (k // 250)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_lr_schedule_matches_torch_group_lr(name):
    hp = PER_RUN[name][1]
    ref = torch_run(name, [hp] * 3, SURFACES, STARTS, scale=_halving)
    ours = our_run(name, hp, SURFACES, STARTS, scale=_halving)
    assert rel_err(ours, ref) <= TOL


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_per_run_lr_scale_and_per_run_lr(name):
    settings = PER_RUN[name]
    fns = (rosenbrock, quadratic, rotated, rosenbrock)
    starts = ((-1.2, 1.0), (-2.0, 1.0), (2.0, -1.0), (0.0, 0.0))

    def scale(k):
        return np.array([1.0, 0.5 ** (k // 200), 1.0 / (1.0 + 0.01 * k), math.exp(-0.002 * k)])

    ref = torch_run(name, settings, fns, starts, scale=scale)
    ours = our_run(name, per_run(settings), fns, starts, scale=scale)
    assert rel_err(ours, ref) <= TOL


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_set_hparams_mid_run_keeps_state_like_torch(name):
    hp = PER_RUN[name][1]
    change = {"lr": hp["lr"] / 2}
    if "momentum" in hp:
        change["momentum"] = 0.6
    if "betas" in hp:
        change["betas"] = (0.7, 0.95)
    changes = {300: change, 700: {"weight_decay": 0.0}}
    ref = torch_run(name, [hp] * 3, SURFACES, STARTS, changes=changes)
    ours = our_run(name, hp, SURFACES, STARTS, changes=changes)
    assert rel_err(ours, ref) <= TOL


@pytest.mark.parametrize("name", ["momentum", "rmsprop"])
def test_momentum_switched_on_and_off_per_run_like_torch(name):
    """Momentum 0 leaves torch's buffer alone; switched on later, SGD's never-used buffer starts at g.

    (torch's RMSprop creates its buffer only for momentum > 0 at the first step and raises a
    KeyError if momentum is switched on later; ours starts that buffer at zeros, as torch's
    would have been.)
    """
    first = (0.9, 0.0, 0.5, 0.0) if name == "momentum" else (0.9, 0.2, 0.5, 0.4)
    settings = [dict(s, momentum=m) for s, m in zip(PER_RUN[name], first)]
    changes = {200: {"momentum": 0.6}, 400: {"momentum": [0.0, 0.3, 0.0, 0.9]}, 600: {"momentum": 0.0},
               800: {"momentum": [0.5, 0.5, 0.0, 0.0]}}
    fns = (rosenbrock, quadratic, rotated, quadratic)
    starts = ((-1.2, 1.0), (-2.0, 1.0), (2.0, -1.0), (0.5, 0.5))
    ref = torch_run(name, settings, fns, starts, changes=changes)
    ours = our_run(name, per_run(settings), fns, starts, changes=changes)
    assert np.all(np.isfinite(ref))
    assert rel_err(ours, ref) <= TOL


# ----------------------------------------------------------------------------- lecture form
@pytest.mark.parametrize("name,hp", [
    ("momentum", dict(lr=1e-3, momentum=0.9)),
    ("momentum", dict(lr=5e-4, momentum=0.95, dampening=0.3, weight_decay=0.05)),
    ("nesterov", dict(lr=1e-3, momentum=0.9)),
    ("nesterov", dict(lr=5e-4, momentum=0.7, weight_decay=0.01)),
])
def test_lecture_form_equals_torch_under_constant_lr(name, hp):
    ref = torch_run(name, [hp] * 3, SURFACES, STARTS)
    lecture = our_run(name, hp, SURFACES, STARTS, form="lecture")
    assert rel_err(lecture, ref) <= LECTURE_TOL


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_lecture_form_differs_from_torch_under_a_schedule(name):
    hp = dict(lr=1e-3, momentum=0.9)
    torch_form = our_run(name, hp, SURFACES, STARTS, scale=_halving)
    lecture = our_run(name, hp, SURFACES, STARTS, scale=_halving, form="lecture")
    assert rel_err(torch_form, torch_run(name, [hp] * 3, SURFACES, STARTS, scale=_halving)) <= TOL
    # Identical until the first lr drop, measurably different after it.
    assert rel_err(lecture[:250], torch_form[:250]) <= LECTURE_TOL
    assert rel_err(lecture[250:], torch_form[250:]) > 1e-4


def test_lecture_form_only_for_momentum_methods():
    with pytest.raises(ValueError, match="lecture"):
        make_optimizer("adam", 2, 2, device="cpu", form="lecture")
    with pytest.raises(ValueError, match="form"):
        make_optimizer("momentum", 2, 2, device="cpu", form="textbook")


# ----------------------------------------------------------------------------- state
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_snapshot_restore_is_bit_identical(name):
    hp = per_run(PER_RUN[name])
    x = torch.tensor(((-1.2, 1.0), (-2.0, 1.0), (2.0, -1.0), (0.0, 0.0)), dtype=DTYPE, device=DEVICE)
    opt = make_optimizer(name, 4, 2, device=DEVICE, dtype=DTYPE, **hp)
    grad = rows_grad((rosenbrock, quadratic, rotated, rosenbrock))
    for _ in range(100):
        opt.step(x, grad(x))
    snap, x_snap = opt.state_dict(), x.clone()
    for _ in range(50):
        opt.step(x, grad(x))
    first = x.clone()
    opt.set_hparams(lr=1.0)  # restored along with the rest, as torch's state_dict holds param_groups
    opt.load_state_dict(snap)
    assert opt.t == 100
    x.copy_(x_snap)
    for _ in range(50):
        opt.step(x, grad(x))
    assert torch.isfinite(x).all() and torch.equal(x, first)
    # The snapshot was not aliased: loading it again still gives step 100.
    opt.load_state_dict(snap)
    assert opt.t == 100 and all(torch.equal(a, b) for a, b in zip(opt.state_dict()["state"].values(),
                                                                  snap["state"].values()))


def test_load_state_dict_rejects_another_optimizer():
    a = make_optimizer("adam", 3, 2, device="cpu")
    b = make_optimizer("rmsprop", 3, 2, device="cpu")
    with pytest.raises(ValueError, match="state"):
        b.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="state"):
        make_optimizer("adam", 4, 2, device="cpu").load_state_dict(a.state_dict())


def test_reset_returns_to_step_zero():
    x0 = torch.tensor([[1.5, -0.5]] * 2, dtype=DTYPE, device=DEVICE)
    opt = make_optimizer("adagrad", 2, 2, device=DEVICE, dtype=DTYPE, initial_accumulator_value=0.3)
    x = x0.clone()
    opt.step(x, quadratic(x))
    first = x.clone()
    opt.step(x, quadratic(x))
    opt.reset()
    x = x0.clone()
    opt.step(x, quadratic(x))
    assert opt.t == 1 and torch.equal(x, first)


# ----------------------------------------------------------------------------- hparams
def test_hparams_are_columns_and_defaults_are_torchs():
    opt = make_optimizer("adam", 5, 2, device="cpu", lr=np.linspace(1e-3, 1e-1, 5))
    hp = opt.hparams
    assert set(hp) == {"lr", "betas", "eps", "weight_decay", "amsgrad"}
    assert hp["lr"].shape == (5, 1) and hp["lr"].dtype == torch.float32
    assert torch.allclose(hp["lr"][:, 0], torch.linspace(1e-3, 1e-1, 5))
    assert hp["amsgrad"] is False
    b1, b2 = hp["betas"]
    assert b1.shape == (5, 1) and float(b1[0]) == pytest.approx(0.9) and float(b2[0]) == pytest.approx(0.999)
    assert float(make_optimizer("momentum", 1, 2, device="cpu").hparams["momentum"]) == pytest.approx(0.9)
    assert float(make_optimizer("nesterov", 1, 2, device="cpu").hparams["momentum"]) == pytest.approx(0.9)
    assert float(make_optimizer("rmsprop", 1, 2, device="cpu").hparams["alpha"]) == pytest.approx(0.99)
    assert float(make_optimizer("adagrad", 1, 2, device="cpu").hparams["eps"]) == pytest.approx(1e-10)


def test_hparams_round_trip_through_set_hparams():
    opt = make_optimizer("rmsprop", 3, 2, device="cpu", lr=[0.1, 0.2, 0.3], centered=True)
    before = opt.hparams
    opt.set_hparams(**before)
    assert all(torch.equal(before[k], v) if isinstance(v, torch.Tensor) else before[k] == v
               for k, v in opt.hparams.items())


def test_spec_table_covers_every_optimizer_with_torch_names():
    assert set(HPARAMS) == set(OPTIMIZERS)
    for name, table in HPARAMS.items():
        assert "lr" in table and "weight_decay" in table
        for spec in table.values():
            assert spec.description
            assert spec.kind == "bool" or spec.slider is not None
    assert HPARAMS["adam"]["betas"].parts == ("beta1", "beta2")
    assert HPARAMS["adam"]["lr"].log


def test_float32_default_and_in_place_step():
    opt = make_optimizer("sgd", 3, 2, device="cpu", lr=0.1)
    x = torch.ones(3, 2)
    g = torch.ones(3, 2)
    out = opt.step(x, g)
    assert out is x and x.dtype == torch.float32
    assert torch.allclose(x, torch.full((3, 2), 0.9))
    assert torch.equal(g, torch.ones(3, 2))  # the gradient is never modified


def test_weight_decay_does_not_touch_the_callers_gradient():
    opt = make_optimizer("adam", 2, 2, device="cpu", weight_decay=0.1)
    x, g = torch.ones(2, 2), torch.ones(2, 2)
    opt.step(x, g)
    assert torch.equal(g, torch.ones(2, 2))


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("name,hp,match", [
    ("sgd", dict(lr=0.0), r"lr must be in \(0, inf\)"),
    ("sgd", dict(lr=-1.0), r"lr must be in \(0, inf\)"),
    ("sgd", dict(lr=[0.1, -0.1, 0.1]), r"lr must be in \(0, inf\)"),
    ("momentum", dict(momentum=1.0), r"momentum must be in \[0, 1\)"),
    ("momentum", dict(momentum=-0.1), r"momentum must be in \[0, 1\)"),
    ("momentum", dict(dampening=1.5), r"dampening must be in \[0, 1\]"),
    ("nesterov", dict(momentum=0.0), r"momentum must be in \(0, 1\).*nesterov needs momentum > 0"),
    ("nesterov", dict(dampening=0.1), r"dampening must be 0 for nesterov"),
    ("adam", dict(betas=(0.9, 1.0)), r"betas\[1\] \(beta2\) must be in \[0, 1\)"),
    ("adam", dict(betas=(-0.1, 0.9)), r"betas\[0\] \(beta1\) must be in \[0, 1\)"),
    ("adam", dict(betas=0.9), r"betas must be a pair"),
    ("adam", dict(eps=0.0), r"eps must be in \(0, inf\)"),
    ("adam", dict(amsgrad=1), r"amsgrad must be True or False"),
    ("rmsprop", dict(weight_decay=-0.1), r"weight_decay must be in \[0, inf\)"),
    ("rmsprop", dict(alpha=1.0), r"alpha must be in \[0, 1\)"),
    ("adagrad", dict(lr_decay=-1.0), r"lr_decay must be in \[0, inf\)"),
    ("adagrad", dict(initial_accumulator_value=-1.0), r"initial_accumulator_value must be in \[0, inf\)"),
    ("sgd", dict(momentum=0.9), r"unknown hyperparameter 'momentum' for sgd; allowed: lr, weight_decay"),
    ("adam", dict(beta1=0.9), r"allowed: lr, betas, eps, weight_decay, amsgrad"),
    ("sgd", dict(lr=[0.1, 0.2]), r"lr must be a scalar or have one value per run \(length 3\), got length 2"),
    ("adam", dict(betas=(np.full(4, 0.9), 0.999)), r"betas\[0\] \(beta1\).*length 3"),
    ("sgd", dict(lr="fast"), r"lr must be a number"),
    ("sgd", dict(lr=float("nan")), r"lr must be finite"),
])
def test_invalid_hyperparameters_name_the_parameter_and_range(name, hp, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(name, 3, 2, device="cpu", **hp)
    opt = make_optimizer(name, 3, 2, device="cpu")
    before = opt.hparams
    with pytest.raises(ValueError, match=match):
        opt.set_hparams(lr=0.5, **hp) if "lr" not in hp else opt.set_hparams(**hp)
    assert float(opt.hparams["lr"][0]) == float(before["lr"][0])  # nothing applied on error


def test_unknown_optimizer_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'; allowed: sgd, momentum, nesterov"):
        make_optimizer("lbfgs", 2, 2, device="cpu")


def test_bad_shapes_and_sizes():
    with pytest.raises(ValueError, match="n must be"):
        make_optimizer("sgd", 0, 2, device="cpu")
    with pytest.raises(ValueError, match="dtype"):
        make_optimizer("sgd", 2, 2, device="cpu", dtype=torch.int64)
    opt = make_optimizer("sgd", 2, 2, device="cpu")
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        opt.step(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="lr_scale"):
        opt.step(torch.zeros(2, 2), torch.zeros(2, 2), lr_scale=torch.ones(3))


def test_torch_optimizer_is_the_matching_torch_optim_with_our_defaults():
    p = [torch.zeros(2, requires_grad=True)]
    nesterov = torch_optimizer("nesterov", p, lr=0.1)
    assert type(nesterov) is torch.optim.SGD
    group = nesterov.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["dampening"]) == (0.1, 0.9, True, 0.0)
    assert torch_optimizer("sgd", p).param_groups[0]["momentum"] == 0
    adam = torch_optimizer("adam", p, betas=(0.8, 0.99))
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["betas"] == (0.8, 0.99)
    assert type(torch_optimizer("adagrad", p)) is torch.optim.Adagrad
    assert type(torch_optimizer("rmsprop", p)) is torch.optim.RMSprop
    with pytest.raises(ValueError, match="optimizer"):
        torch_optimizer("lbfgs", p)
