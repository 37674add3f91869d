"""Built-in surfaces: analytic gradients agree with autograd, minima are minima, the suggested
learning rates give the pictures their captions promise, and bad input is a clear ValueError."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from optiviz.engine.hparams import OPTIMIZERS
from optiviz.engine.optimizers import torch_optimizer
from optiviz.engine.surface import Surface, suggested_lrs
from optiviz.engine.surfaces import SURFACE_PARAMS, SURFACES, get_surface

F64 = torch.float64
REQUIRED = (
    "quadratic", "rotated_quadratic", "rosenbrock", "beale", "himmelblau", "saddle",
    "monkey_saddle", "rastrigin", "ackley", "six_hump_camel", "cliff",
)
# every surface with defaults, plus non-default parameters for those that take any
VARIANTS = [(name, {}) for name in REQUIRED] + [
    ("quadratic", {"condition": 7.0}),
    ("rotated_quadratic", {"condition": 200.0, "angle": -63.0}),
    ("rosenbrock", {"a": 0.5, "b": 20.0}),
    ("rastrigin", {"amplitude": 3.0}),
    ("cliff", {"steepness": 20.0}),
]
IDS = [name + "".join(f"-{k}={v:g}" for k, v in p.items()) for name, p in VARIANTS]


def _random_points(surface: Surface, n: int, seed: int, dtype=F64) -> torch.Tensor:
    """Uniform over the domain widened by 20% (the optimizer wanders off the plot too)."""
    g = torch.Generator().manual_seed(seed)
    (x0, x1), (y0, y1) = surface.domain
    lo = torch.tensor([x0 - 0.1 * (x1 - x0), y0 - 0.1 * (y1 - y0)], dtype=F64)
    span = torch.tensor([1.2 * (x1 - x0), 1.2 * (y1 - y0)], dtype=F64)
    return (lo + span * torch.rand(n, 2, generator=g, dtype=F64)).to(dtype)


def _autograd(surface: Surface, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = xy.clone().requires_grad_(True)
    f = surface.loss(p)
    (g,) = torch.autograd.grad(f.sum(), p)
    return f.detach(), g


def test_all_required_surfaces_are_listed():
    assert set(REQUIRED) <= set(SURFACES)
    assert len(SURFACES) == len(list(SURFACES))
    for name, s in SURFACES.items():
        assert isinstance(s, Surface) and s.name == name
        assert SURFACES[name] is s  # built once
        assert s.title and s.caption and "\n" not in s.caption


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_gradient_matches_autograd(name, params):
    s = get_surface(name, **params)
    xy = _random_points(s, 500, seed=len(name))
    f_ad, g_ad = _autograd(s, xy)
    g = s.gradient(xy)
    f2, g2 = s.loss_and_gradient(xy)
    scale = 1.0 + g_ad.abs()
    assert g.shape == xy.shape and g.dtype == F64
    assert torch.all((g - g_ad).abs() / scale < 1e-10)
    assert torch.equal(g, g2)
    assert torch.allclose(f2, f_ad, rtol=1e-14, atol=1e-12)


@pytest.mark.parametrize("name", REQUIRED)
def test_batched_float32_matches_float64(name):
    s = SURFACES[name]
    xy64 = _random_points(s, 60, seed=3).reshape(3, 4, 5, 2)
    xy32 = xy64.float()
    f32, g32 = s.loss_and_gradient(xy32)
    assert f32.shape == (3, 4, 5) and g32.shape == (3, 4, 5, 2)
    assert f32.dtype == torch.float32 and g32.dtype == torch.float32
    assert s.loss(xy32).dtype == torch.float32 and s.gradient(xy32).dtype == torch.float32
    f64, g64 = s.loss_and_gradient(xy32.double())  # same points, exact arithmetic
    fscale = 1.0 + f64.abs().max()
    gscale = 1.0 + g64.abs().max()
    assert torch.all((f32.double() - f64).abs() < 1e-5 * fscale)
    assert torch.all((g32.double() - g64).abs() < 1e-4 * gscale)


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_minima_are_stationary_and_reach_f_min(name, params):
    s = get_surface(name, **params)
    if s.f_min is None:
        assert s.minima == ()
        return
    assert s.minima, "a bounded surface lists its known minima"
    pts = torch.tensor(s.minima, dtype=F64)
    f, g = s.loss_and_gradient(pts)
    assert torch.all(g.abs() < 1e-9), g
    assert torch.allclose(f, torch.full_like(f, s.f_min), rtol=0, atol=1e-12)
    assert s.f_ref == s.f_min
    z = s.grid(200)[2]
    assert np.nanmin(z) >= s.f_min - 1e-12  # nothing on the plot is lower than the minimum


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_domain_holds_start_and_minima(name, params):
    s = get_surface(name, **params)
    (x0, x1), (y0, y1) = s.domain
    assert x0 < x1 and y0 < y1
    for x, y in (s.start, *s.minima):
        assert x0 <= x <= x1 and y0 <= y <= y1
    f0 = float(s.loss(torch.tensor(s.start, dtype=F64)))
    assert math.isfinite(f0) and f0 > s.f_ref


def test_results_do_not_alias_the_points():
    """The simulator updates its points in place after reading the loss: no views allowed."""
    for s in SURFACES.values():
        xy = torch.tensor([list(s.start)], dtype=F64)
        f, g = s.loss_and_gradient(xy)
        loss = s.loss(xy)
        before = (f.clone(), g.clone(), loss.clone())
        xy.add_(0.5)
        assert torch.equal(f, before[0]) and torch.equal(g, before[1]) and torch.equal(loss, before[2]), s.name


def test_himmelblau_has_four_minima():
    s = SURFACES["himmelblau"]
    assert len(s.minima) == 4 and len({(round(x, 3), round(y, 3)) for x, y in s.minima}) == 4
    assert (3.0, 2.0) in s.minima


def test_unbounded_surfaces_use_the_grid_minimum():
    for name in ("saddle", "monkey_saddle"):
        s = SURFACES[name]
        assert s.f_min is None and s.minima == () and not s.log_color
        assert s.f_ref == pytest.approx(float(np.min(s.grid(200)[2])))
    assert SURFACES["saddle"].f_ref == pytest.approx(-4.0, abs=1e-3)  # x^2 - y^2 on [-2, 2]^2


def test_grid_layout():
    s = SURFACES["rosenbrock"]
    xs, ys, z = s.grid(50)
    assert xs.shape == (50,) and ys.shape == (50,) and z.shape == (50, 50)
    assert xs.dtype == ys.dtype == z.dtype == np.float64
    (x0, x1), (y0, y1) = s.domain
    assert (xs[0], xs[-1], ys[0], ys[-1]) == (x0, x1, y0, y1)
    i, j = 7, 31  # rows follow y, columns follow x (what contour and heatmap marks expect)
    assert z[i, j] == pytest.approx(float(s.loss(torch.tensor([xs[j], ys[i]], dtype=F64))))
    with pytest.raises(ValueError, match="n must be"):
        s.grid(1)


def picture_limit(s: Surface, f0: float) -> float:
    """A readable picture: the loss stays within 3x its start's excess over f* (the lectures'
    abort tip, used here as a test of the suggested lrs, not as the simulator's divergence)."""
    return s.f_ref + 3.0 * (f0 - s.f_ref)


@pytest.mark.parametrize("name,params", [("quadratic", {"condition": 7.0}), ("rotated_quadratic", {"angle": 20.0})])
def test_quadratic_curvatures_are_the_hessian_eigenvalues(name, params):
    q = get_surface(name, **params)
    hessian = q.gradient(torch.eye(2, dtype=F64)).numpy()  # columns: H e_i (the gradient is linear)
    np.testing.assert_allclose(sorted(np.linalg.eigvalsh((hessian + hessian.T) / 2)), sorted(q.curvatures), rtol=1e-12)
    assert get_surface("rosenbrock").curvatures is None  # not constant: no exact rate theory


def test_quadratic_condition_number():
    for c in (1.0, 30.0, 500.0):
        q = get_surface("quadratic", condition=c)
        g = q.gradient(torch.eye(2, dtype=F64))  # the Hessian's columns
        assert torch.allclose(g, torch.diag(torch.tensor([1.0, c], dtype=F64)))
        r = get_surface("rotated_quadratic", condition=c, angle=40.0)
        h = r.gradient(torch.eye(2, dtype=F64))
        eig = torch.linalg.eigvalsh((h + h.T) / 2)
        assert torch.allclose(eig, torch.tensor([1.0, c], dtype=F64))
    assert SURFACES["quadratic"].params["condition"] >= 20
    # the lectures' picture: steep vertically, shallow horizontally
    assert SURFACES["quadratic"].gradient(torch.tensor([0.0, 1.0])).abs().max() > 20


def test_cliff_gradient_explodes_at_the_wall():
    s = get_surface("cliff", steepness=100.0)
    xs = torch.linspace(-4.0, 2.0, 2001, dtype=F64)
    g = s.gradient(torch.stack((xs, torch.zeros_like(xs)), dim=-1))[:, 0]
    slope, wall = g[xs < 0.5], g[xs > 1.05]
    assert torch.all((slope.abs() - 1.0).abs() < 1e-6)  # a gentle slope of 1
    assert torch.all(wall > 99.0)  # then a wall a hundred times steeper
    assert torch.all(torch.isfinite(s.gradient(torch.tensor([[1e6, 0.0], [-1e6, 0.0]]))))


# --- the suggested learning rates, checked the way the lectures would run them -----------------

@functools.lru_cache(maxsize=None)
def _run(s: Surface, opt: str, steps: int = 300, clip: float | None = None, lr: float | None = None):
    """A plain torch.optim loop from the surface's start: (path (steps+1, 2), losses (steps+1,)).
    Cached: several tests look at the same runs."""
    p = torch.tensor(s.start, dtype=F64, requires_grad=True)
    o = torch_optimizer(opt, [p], lr=s.lrs[opt] if lr is None else lr)
    path, losses = [p.detach().clone()], [float(s.loss(p.detach()))]
    for _ in range(steps):
        g = s.gradient(p.detach())
        if clip is not None:
            g = g * (clip / max(float(g.norm()), clip))
        p.grad = g
        o.step()
        path.append(p.detach().clone())
        losses.append(float(s.loss(p.detach())))
    return torch.stack(path).numpy(), np.array(losses)


def _inside(s: Surface, path: np.ndarray) -> np.ndarray:
    (x0, x1), (y0, y1) = s.domain
    return (path[:, 0] >= x0) & (path[:, 0] <= x1) & (path[:, 1] >= y0) & (path[:, 1] <= y1)


@pytest.mark.parametrize("name", REQUIRED)
def test_suggested_lrs_make_a_sane_picture(name):
    """From the default start, 300 steps at each suggested lr never trip the lectures' 3x rule
    while on the plot, and make progress (the unbounded saddles are left through a valley)."""
    s = SURFACES[name]
    assert set(s.lrs) == set(OPTIMIZERS)
    for opt in OPTIMIZERS:
        lr = s.lrs[opt]
        assert isinstance(lr, float) and 0 < lr < 10
        path, losses = _run(s, opt)
        f0 = losses[0]
        inside = _inside(s, path)
        on_plot = np.cumprod(inside).astype(bool)  # until it first leaves the plot
        assert np.all(np.isfinite(losses[on_plot])), opt
        assert np.all(losses[on_plot] <= picture_limit(s, f0)), opt
        assert np.nanmin(losses) < f0, opt
        if name != "cliff":  # the cliff throws SGD and momentum off the plot: that is the lesson
            assert inside.mean() > 0.1, opt
    if s.f_min is not None and name not in ("rastrigin", "ackley", "six_hump_camel", "cliff", "rosenbrock"):
        for opt in OPTIMIZERS:  # the convex-ish ones: everybody gets close
            losses = _run(s, opt)[1]
            assert losses[-1] - s.f_ref < 0.05 * (losses[0] - s.f_ref), opt


def test_suggested_lrs_name_every_optimizer_once():
    """A surface gives one positive lr per optimizer of engine/hparams.py: a forgotten or unknown
    optimizer is a ValueError naming the surface (it used to be an assert)."""
    full = {o: 0.1 for o in OPTIMIZERS}
    assert dict(suggested_lrs("bowl", full)) == full
    with pytest.raises(ValueError, match=r"surface 'bowl': lrs must give one lr .*missing: adam, unknown: none"):
        suggested_lrs("bowl", {o: 0.1 for o in OPTIMIZERS if o != "adam"})
    with pytest.raises(ValueError, match=r"missing: none, unknown: lion"):
        suggested_lrs("bowl", {**full, "lion": 0.1})
    with pytest.raises(ValueError, match=r"lrs must be positive numbers, got sgd=0"):
        suggested_lrs("bowl", {**full, "sgd": 0})


def test_cliff_clipping_visibly_matters():
    s = SURFACES["cliff"]
    path, _ = _run(s, "sgd")
    assert not _inside(s, path).all()  # thrown off the plot by the wall
    clipped, losses = _run(s, "sgd", clip=1.0)
    assert _inside(s, clipped).all()
    assert losses[-1] - s.f_min < 0.2
    adam, _ = _run(s, "adam")
    assert _inside(s, adam).all()  # Adam's normalised step does not get thrown


def test_himmelblau_optimizers_pick_different_basins():
    s = SURFACES["himmelblau"]
    ends = {opt: tuple(np.round(_run(s, opt)[0][-1], 2)) for opt in ("sgd", "momentum", "adam", "rmsprop")}
    assert ends["sgd"] == ends["momentum"] == (3.58, -1.85)
    assert ends["adam"] == ends["rmsprop"] == (3.0, 2.0)


def test_quadratic_momentum_beats_sgd():
    s = SURFACES["quadratic"]
    sgd, mom = _run(s, "sgd", 120)[1], _run(s, "momentum", 120)[1]
    assert mom[-1] < 0.1 * sgd[-1]
    assert np.any(np.diff(_run(s, "sgd", 10)[0][:, 1] > 0))  # SGD jitters across the valley


# --- get_surface -------------------------------------------------------------------------------

def test_get_surface_by_name():
    assert get_surface("rosenbrock") is SURFACES["rosenbrock"]
    assert get_surface(" Six-Hump Camel ") is SURFACES["six_hump_camel"]
    s = get_surface("quadratic", condition=10)
    assert s.params == {"condition": 10.0} and s is not SURFACES["quadratic"]
    assert get_surface(s) is s
    assert set(SURFACE_PARAMS) == set(SURFACES)
    assert SURFACE_PARAMS["rotated_quadratic"] == ("condition", "angle")


def test_get_surface_unknown_name_lists_allowed():
    with pytest.raises(ValueError) as err:
        get_surface("rosenbrok")
    for name in REQUIRED:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="surface"):
        get_surface(42)


@pytest.mark.parametrize(
    "name,params,needle",
    [
        ("quadratic", {"condition": 0.5}, r"condition must be in \[1, 1000\]"),
        ("quadratic", {"condition": float("nan")}, "condition must be finite"),
        ("quadratic", {"condition": True}, "condition must be a number"),
        ("rotated_quadratic", {"angle": 400}, r"angle must be in \[-180, 180\]"),
        ("rosenbrock", {"b": -1}, r"b must be in \(0, 1000\]"),
        ("rosenbrock", {"a": 0}, r"a must be in \(0, 2\]"),
        ("rastrigin", {"amplitude": -1}, "amplitude must be in"),
        ("cliff", {"steepness": 1}, r"steepness must be in \(1, 10000\]"),
        ("quadratic", {"angle": 3}, "unknown parameter 'angle' for surface 'quadratic'; allowed: condition"),
        ("beale", {"a": 1}, "unknown parameter 'a' for surface 'beale'; allowed: none"),
    ],
)
def test_bad_parameters_name_the_parameter(name, params, needle):
    with pytest.raises(ValueError, match=needle):
        get_surface(name, **params)


def test_get_surface_compiles_expressions():
    s = get_surface("x^2 + 3*y^2", domain=((-2, 2), (-1, 1)))
    assert s.domain == ((-2.0, 2.0), (-1.0, 1.0)) and s.f_min is None
    assert float(s.loss(torch.tensor([1.0, 1.0]))) == pytest.approx(4.0)
    assert get_surface("x").params["expression"] == "x"
    with pytest.raises(ValueError, match="unknown parameter 'condition' for an expression"):
        get_surface("x^2 + y^2", condition=3)
    with pytest.raises(ValueError) as err:
        get_surface("x^2 + + ")
    assert str(err.value).startswith("expression:") and "rosenbrock" in str(err.value)


def test_xy_shape_is_checked():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        SURFACES["beale"].loss(torch.zeros(4, 3))
    assert float(SURFACES["beale"].loss([3.0, 0.5])) == 0.0  # array-likes are accepted
