"""Built-in 2D loss surfaces: the pictures the lectures draw, as fast batched torch functions.

Every built-in has a hand-derived gradient (no autograd): the simulator evaluates it on
(100,000, 2) tensors each step, so each one is a handful of elementwise torch ops that work on
any batch shape, in float32 or float64, on any device.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from optiviz._validate import check_choice, check_range
from optiviz.engine.expression import compile_expression
from optiviz.engine.surface import Domain, Surface, Tensor, suggested_lrs

XYLoss = Callable[[Tensor, Tensor], Tensor]
XYBoth = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


def _make(
    name: str,
    title: str,
    caption: str,
    domain: Domain,
    minima: tuple[tuple[float, float], ...],
    f_min: float | None,
    start: tuple[float, float],
    lrs: dict[str, float],
    params: dict[str, Any],
    log_color: bool,
    f: XYLoss,
    fg: XYBoth,
    curvatures: tuple[float, ...] | None = None,
) -> Surface:
    """Wrap an (x, y) loss and an (x, y) -> (f, gx, gy) pass into a Surface."""

    def loss_fn(xy: Tensor) -> Tensor:
        return f(xy[..., 0], xy[..., 1])

    def loss_and_gradient_fn(xy: Tensor) -> tuple[Tensor, Tensor]:
        v, gx, gy = fg(xy[..., 0], xy[..., 1])
        return v, torch.stack((gx, gy), dim=-1)

    def gradient_fn(xy: Tensor) -> Tensor:
        return loss_and_gradient_fn(xy)[1]

    return Surface(
        name=name,
        title=title,
        caption=caption,
        domain=domain,
        minima=minima,
        f_min=f_min,
        start=start,
        lrs=suggested_lrs(name, lrs),
        params=MappingProxyType(dict(params)),
        log_color=log_color,
        loss_fn=loss_fn,
        gradient_fn=gradient_fn,
        loss_and_gradient_fn=loss_and_gradient_fn,
        curvatures=curvatures,
        coordinates_fn=fg,
    )


# ---------------------------------------------------------------------------------------------
# The surfaces. Each builder takes its parameters as keywords and validates them.
# ---------------------------------------------------------------------------------------------


def _sig2(value: float) -> float:
    return float(f"{value:.2g}")


def _quadratic_lrs(condition: float) -> dict[str, float]:
    """lrs that keep the lectures' picture at any condition number: SGD at lr*c = 1.8 (jitters
    across the valley, crawls along it), momentum at lr*c = 0.5 (overshoots, arrives sooner)."""
    return {
        "sgd": _sig2(1.8 / condition),
        "momentum": _sig2(0.5 / condition),
        "nesterov": _sig2(0.5 / condition),
        "adagrad": 1.0,
        "rmsprop": 0.1,
        "adam": 0.5,
    }


ROUND_BELOW = 2.0  # condition numbers under this draw a round bowl, not a valley


def _quadratic_texts(c: float, what: str, valley: str, rotated: bool = False) -> tuple[str, str]:
    """(title, caption) of a quadratic that says what condition c draws: a valley, or a round bowl."""
    if c >= ROUND_BELOW:
        return f"{'Rotated ill' if rotated else 'Ill'}-conditioned {what.format(c=c)}", valley
    return (f"Round {what.format(c=c)}",
            "A round bowl: every direction is about equally steep, so SGD walks almost straight to "
            "the minimum and momentum only adds overshoot. Raise the condition number to get the "
            "lectures' long narrow valley.")


def quadratic(condition: float = 50.0) -> Surface:
    """0.5 * (x^2 + condition * y^2): steep vertically, shallow horizontally."""
    check_range("condition", condition, 1.0, 1000.0)
    c = float(condition)

    def f(x: Tensor, y: Tensor) -> Tensor:
        return 0.5 * (x * x + c * y * y)

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        gy = c * y
        return 0.5 * (x * x + y * gy), x, gy

    return _make(
        "quadratic",
        *_quadratic_texts(c, "quadratic (condition {c:g})",
                          "A long narrow valley, steep vertically and shallow horizontally: SGD jitters across "
                          "it and crawls along it; momentum overshoots but gets there much faster."),
        ((-10.0, 10.0), (-4.0, 4.0)),
        ((0.0, 0.0),),
        0.0,
        (-8.0, 2.0),
        _quadratic_lrs(c),
        {"condition": c},
        True,
        f,
        fg,
        (1.0, c),
    )


def rotated_quadratic(condition: float = 50.0, angle: float = 30.0) -> Surface:
    """The same valley turned by `angle` degrees, so it no longer lies along a coordinate axis."""
    check_range("condition", condition, 1.0, 1000.0)
    check_range("angle", angle, -180.0, 180.0)
    c, a = float(condition), float(angle)
    cs, sn = math.cos(math.radians(a)), math.sin(math.radians(a))

    def f(x: Tensor, y: Tensor) -> Tensor:
        u = cs * x + sn * y
        v = cs * y - sn * x
        return 0.5 * (u * u + c * v * v)

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        u = cs * x + sn * y
        v = cs * y - sn * x
        cv = c * v
        return 0.5 * (u * u + cv * v), cs * u - sn * cv, sn * u + cs * cv

    u0, v0 = -7.0, 1.5  # along the valley, a little off its floor, in rotated coordinates
    start = (round(cs * u0 - sn * v0, 6), round(sn * u0 + cs * v0, 6))
    return _make(
        "rotated_quadratic",
        *_quadratic_texts(c, f"quadratic (condition {{c:g}}, {a:g} degrees)",
                          "The same narrow valley turned off the axes: per-coordinate methods like AdaGrad, "
                          "RMSProp and Adam lose the advantage they had when the valley was axis-aligned.",
                          rotated=True),
        ((-8.0, 8.0), (-8.0, 8.0)),
        ((0.0, 0.0),),
        0.0,
        start,
        _quadratic_lrs(c),
        {"condition": c, "angle": a},
        True,
        f,
        fg,
        (1.0, c),
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """(a - x)^2 + b (y - x^2)^2: a curved banana valley, easy to find, hard to follow."""
    check_range("a", a, 0.0, 2.0, low_inclusive=False)
    check_range("b", b, 0.0, 1000.0, low_inclusive=False)
    a, b = float(a), float(b)

    def f(x: Tensor, y: Tensor) -> Tensor:
        t = y - x * x
        return (a - x) ** 2 + b * t * t

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        d = a - x
        t = y - x * x
        bt = b * t
        return d * d + bt * t, -2.0 * d - 4.0 * x * bt, 2.0 * bt

    return _make(
        "rosenbrock",
        f"Rosenbrock (a={a:g}, b={b:g})",
        "A curved banana-shaped valley: every method finds the valley fast, then the flat, bending "
        "floor is slow to follow; SGD crawls while momentum and Adam follow it to (a, a\u00b2).",
        ((-2.0, 2.0), (-1.0, max(3.0, a * a + 0.5))),
        ((a, a * a),),
        0.0,
        (-1.2, 1.0),
        _rosenbrock_lrs(b),
        {"a": a, "b": b},
        True,
        f,
        fg,
    )


def _rosenbrock_lrs(b: float) -> dict[str, float]:
    """SGD and momentum scale with 1/b (the curvature across the valley); the adaptive methods do
    not, and their first step (about lr per coordinate, 10x lr for RMSProp) must not climb the
    valley wall past 3x the starting loss."""
    s = 100.0 / b
    return {
        "sgd": _sig2(1e-3 * s),
        "momentum": _sig2(1e-3 * s),
        "nesterov": _sig2(1e-3 * s),
        "adagrad": 0.2,
        "rmsprop": 0.02,
        "adam": 0.2,
    }


def beale() -> Surface:
    """Beale's function: flat plateaus and sharp ridges around a minimum at (3, 0.5)."""

    def f(x: Tensor, y: Tensor) -> Tensor:
        y2 = y * y
        t1 = 1.5 - x + x * y
        t2 = 2.25 - x + x * y2
        t3 = 2.625 - x + x * (y2 * y)
        return t1 * t1 + t2 * t2 + t3 * t3

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y2 = y * y
        y3 = y2 * y
        t1 = 1.5 - x + x * y
        t2 = 2.25 - x + x * y2
        t3 = 2.625 - x + x * y3
        v = t1 * t1 + t2 * t2 + t3 * t3
        gx = 2.0 * (t1 * (y - 1.0) + t2 * (y2 - 1.0) + t3 * (y3 - 1.0))
        gy = 2.0 * x * (t1 + 2.0 * y * t2 + 3.0 * y2 * t3)
        return v, gx, gy

    return _make(
        "beale",
        "Beale's function",
        "Broad flat plateaus next to steep ridges: plain SGD crawls on the flats, adaptive methods "
        "rescale the step and get across.",
        ((-4.5, 4.5), (-4.5, 4.5)),
        ((3.0, 0.5),),
        0.0,
        (1.0, 1.5),
        {"sgd": 0.01, "momentum": 2e-3, "nesterov": 2e-3, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1},
        {},
        True,
        f,
        fg,
    )


HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286169),
    (3.5844283403304917, -1.8481265269644034),
)


def himmelblau() -> Surface:
    """(x^2 + y - 11)^2 + (x + y^2 - 7)^2: four equal minima; which one you reach depends on the
    optimizer and the start."""

    def f(x: Tensor, y: Tensor) -> Tensor:
        p = x * x + y - 11.0
        q = x + y * y - 7.0
        return p * p + q * q

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p = x * x + y - 11.0
        q = x + y * y - 7.0
        return p * p + q * q, 4.0 * x * p + 2.0 * q, 2.0 * p + 4.0 * y * q

    return _make(
        "himmelblau",
        "Himmelblau's function",
        "Four minima of equal depth: from the same start, SGD and momentum roll into one basin "
        "while AdaGrad, RMSProp and Adam head for another.",
        ((-5.0, 5.0), (-5.0, 5.0)),
        HIMMELBLAU_MINIMA,
        0.0,
        (0.0, -1.0),
        {"sgd": 5e-3, "momentum": 2e-3, "nesterov": 2e-3, "adagrad": 0.5, "rmsprop": 0.02, "adam": 0.1},
        {},
        True,
        f,
        fg,
    )


def saddle() -> Surface:
    """x^2 - y^2: a saddle point at the origin, unbounded below."""

    def f(x: Tensor, y: Tensor) -> Tensor:
        return x * x - y * y

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return x * x - y * y, 2.0 * x, -2.0 * y

    return _make(
        "saddle",
        "Saddle point  x\u00b2 - y\u00b2",
        "Started almost on the ridge, the gradient barely points off it: SGD lingers near the saddle "
        "point, momentum escapes sooner, and the adaptive methods, which rescale the tiny sideways "
        "gradient, leave at once.",
        ((-2.0, 2.0), (-2.0, 2.0)),
        (),
        None,
        (-1.8, 1e-3),
        {"sgd": 0.02, "momentum": 5e-3, "nesterov": 5e-3, "adagrad": 0.1, "rmsprop": 0.01, "adam": 0.05},
        {},
        False,
        f,
        fg,
    )


def monkey_saddle() -> Surface:
    """x^3 - 3 x y^2: a degenerate saddle with three valleys (zero curvature at the origin)."""

    def f(x: Tensor, y: Tensor) -> Tensor:
        return x * (x * x - 3.0 * y * y)

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x2, y2 = x * x, y * y
        return x * (x2 - 3.0 * y2), 3.0 * (x2 - y2), -6.0 * x * y

    return _make(
        "monkey_saddle",
        "Monkey saddle  x\u00b3 - 3xy\u00b2",
        "A flat saddle with three downhill valleys: the gradient fades like r\u00b2 towards the "
        "centre, so SGD slows and turns off late, momentum coasts straight through, and the "
        "adaptive methods head for a valley at once.",
        ((-2.0, 2.0), (-2.0, 2.0)),
        (),
        None,
        (1.8, 0.01),
        {"sgd": 0.01, "momentum": 2e-3, "nesterov": 2e-3, "adagrad": 0.05, "rmsprop": 5e-3, "adam": 0.02},
        {},
        False,
        f,
        fg,
    )


def rastrigin(amplitude: float = 10.0) -> Surface:
    """2A + sum(x^2 - A cos(2 pi x)): a bowl covered in regularly spaced local minima."""
    check_range("amplitude", amplitude, 0.0, 50.0)
    amp = float(amplitude)
    w = 2.0 * math.pi

    def f(x: Tensor, y: Tensor) -> Tensor:
        return x * x + y * y + amp * (2.0 - torch.cos(w * x) - torch.cos(w * y))

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        wx, wy = w * x, w * y
        v = x * x + y * y + amp * (2.0 - torch.cos(wx) - torch.cos(wy))
        k = w * amp
        return v, 2.0 * x + k * torch.sin(wx), 2.0 * y + k * torch.sin(wy)

    return _make(
        "rastrigin",
        f"Rastrigin (A={amp:g})",
        "A bowl covered in local minima: small steps are trapped by the nearest dimple; larger "
        "adaptive steps hop a few dimples towards the centre, and none reliably reaches it.",
        ((-5.12, 5.12), (-5.12, 5.12)),
        ((0.0, 0.0),),
        0.0,
        (-3.3, 3.1),
        _rastrigin_lrs(amp),
        {"amplitude": amp},
        False,
        f,
        fg,
    )


def _rastrigin_lrs(amplitude: float) -> dict[str, float]:
    """SGD and momentum at lr = 0.8 / (curvature of a dimple, 2 + 4 pi^2 A): stable in the dimple."""
    plain = _sig2(0.8 / (2.0 + 4.0 * math.pi**2 * amplitude))
    return {"sgd": plain, "momentum": plain, "nesterov": plain, "adagrad": 1.0, "rmsprop": 0.1, "adam": 0.1}


def ackley() -> Surface:
    """Ackley's function: a nearly flat, bumpy plateau with a narrow hole at the origin."""
    w = 2.0 * math.pi
    tiny = 1e-30  # the cone at the origin has a subgradient 0 there; avoid 0/0

    def f(x: Tensor, y: Tensor) -> Tensor:
        r = torch.sqrt(0.5 * (x * x + y * y))
        e2 = torch.exp(0.5 * (torch.cos(w * x) + torch.cos(w * y)))
        return 20.0 * (1.0 - torch.exp(-0.2 * r)) + (math.e - e2)

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        wx, wy = w * x, w * y
        r = torch.sqrt(0.5 * (x * x + y * y))
        e1 = torch.exp(-0.2 * r)
        e2 = torch.exp(0.5 * (torch.cos(wx) + torch.cos(wy)))
        v = 20.0 * (1.0 - e1) + (math.e - e2)
        k = 2.0 * e1 / torch.clamp(r, min=tiny)
        pe = math.pi * e2
        return v, k * x + pe * torch.sin(wx), k * y + pe * torch.sin(wy)

    return _make(
        "ackley",
        "Ackley's function",
        "An egg-crate plateau around one deep hole: SGD stops in the first dimple, momentum and "
        "Adam wander along a row of them, AdaGrad and RMSProp find the centre.",
        ((-5.0, 5.0), (-5.0, 5.0)),
        ((0.0, 0.0),),
        0.0,
        (3.5, -3.2),
        {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 1.0, "rmsprop": 0.1, "adam": 0.5},
        {},
        False,
        f,
        fg,
    )


SIX_HUMP_CAMEL_MINIMA = ((0.08984201310031806, -0.7126564030207396), (-0.08984201310031806, 0.7126564030207396))
SIX_HUMP_CAMEL_F_MIN = -1.0316284534898774


def six_hump_camel() -> Surface:
    """(4 - 2.1x^2 + x^4/3) x^2 + xy + (4y^2 - 4) y^2: six local minima, two of them global."""

    def f(x: Tensor, y: Tensor) -> Tensor:
        x2, y2 = x * x, y * y
        return (4.0 - 2.1 * x2 + x2 * x2 / 3.0) * x2 + x * y + (4.0 * y2 - 4.0) * y2

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x2, y2 = x * x, y * y
        v = (4.0 - 2.1 * x2 + x2 * x2 / 3.0) * x2 + x * y + (4.0 * y2 - 4.0) * y2
        gx = x * (8.0 - 8.4 * x2 + 2.0 * x2 * x2) + y
        gy = x + y * (16.0 * y2 - 8.0)
        return v, gx, gy

    return _make(
        "six_hump_camel",
        "Six-hump camel",
        "Six local minima, two of them global: from the corner, momentum rolls through a shallow "
        "local minimum that traps SGD and the adaptive methods, into a deeper one.",
        ((-2.0, 2.0), (-1.2, 1.2)),
        SIX_HUMP_CAMEL_MINIMA,
        SIX_HUMP_CAMEL_F_MIN,
        (1.8, 1.1),
        {"sgd": 0.01, "momentum": 5e-3, "nesterov": 5e-3, "adagrad": 0.3, "rmsprop": 0.01, "adam": 0.05},
        {},
        True,
        f,
        fg,
    )


def _softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def cliff(steepness: float = 100.0) -> Surface:
    """A gentle slope (gradient 1) ending in a wall `steepness` times steeper, after Goodfellow et
    al.'s cliff figure (Deep Learning, fig. 10.17): f = [sp(k(xw - x)) + W sp(k(x - xw))] / k +
    y^2 / 2 with sp = softplus, so the ravine at the foot of the wall is the minimum. The corner
    is sharp (k = 200): no plain lr above 0.01 can settle in the ravine, so SGD keeps hitting the
    wall unless the gradient is clipped."""
    check_range("steepness", steepness, 1.0, 10000.0, low_inclusive=False)
    wall = float(steepness)
    k, xw, q = 200.0, 1.0, 1.0  # corner sharpness, wall position, curvature across
    # minimum: sigmoid(k(xw - x)) = W sigmoid(k(x - xw))  <=>  k (x - xw) = -log W
    u = -math.log(wall)
    x_min = xw + u / k
    f_min = (_softplus(-u) + wall * _softplus(u)) / k
    a, c = (1.0 + wall) / k, 1.0 / k

    def sp(z: Tensor) -> Tensor:  # torch's default threshold=20 is off by 2e-9 past z = 20
        return torch.nn.functional.softplus(z, threshold=40.0)

    # one softplus instead of two: sp(-d) = sp(d) - d
    def f(x: Tensor, y: Tensor) -> Tensor:
        d = k * (x - xw)
        return a * sp(d) - c * d + (0.5 * q) * y * y

    def fg(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        d = k * (x - xw)
        v = a * sp(d) - c * d + (0.5 * q) * y * y
        return v, (1.0 + wall) * torch.sigmoid(d) - 1.0, q * y  # -sigmoid(-d) + W sigmoid(d)

    return _make(
        "cliff",
        f"Cliff (wall {wall:g}x steeper than the slope)",
        "A gentle slope ends in a steep wall: a step that lands on the cliff face gets a huge "
        "gradient and is thrown off the plot; clipping the gradient (or Adam's normalised step) "
        "keeps it at the foot of the wall.",
        ((-4.0, 2.0), (-2.0, 2.0)),
        ((x_min, 0.0),),
        f_min,
        (-3.0, 1.5),
        {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.5, "rmsprop": 0.01, "adam": 0.1},
        {"steepness": wall},
        True,
        f,
        fg,
    )


_BUILDERS: dict[str, Callable[..., Surface]] = {
    "quadratic": quadratic,
    "rotated_quadratic": rotated_quadratic,
    "rosenbrock": rosenbrock,
    "beale": beale,
    "himmelblau": himmelblau,
    "saddle": saddle,
    "monkey_saddle": monkey_saddle,
    "rastrigin": rastrigin,
    "ackley": ackley,
    "six_hump_camel": six_hump_camel,
    "cliff": cliff,
}

SURFACE_PARAMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        name: tuple(builder.__code__.co_varnames[: builder.__code__.co_argcount])
        for name, builder in _BUILDERS.items()
    }
)


class _Surfaces(Mapping[str, Surface]):
    """Read-only name -> Surface with default parameters, built on first access."""

    def __getitem__(self, name: str) -> Surface:
        if name not in _BUILDERS:
            raise KeyError(name)
        return _default(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_BUILDERS)

    def __len__(self) -> int:
        return len(_BUILDERS)

    def __repr__(self) -> str:
        return f"SURFACES({', '.join(_BUILDERS)})"


_defaults: dict[str, Surface] = {}


def _default(name: str) -> Surface:
    if name not in _defaults:
        _defaults[name] = _BUILDERS[name]()
    return _defaults[name]


SURFACES: Mapping[str, Surface] = _Surfaces()

_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_\- ]*")


def get_surface(name_or_expression: str | Surface, **params: Any) -> Surface:
    """A built-in surface by name (with parameters), or a user's expression in x and y compiled to
    one (parameters `domain` and `name`). Unknown names and bad parameters raise ValueError."""
    if isinstance(name_or_expression, Surface):
        if params:
            raise ValueError(f"parameters {sorted(params)} cannot be applied to an already built surface")
        return name_or_expression
    if not isinstance(name_or_expression, str):
        raise ValueError(f"surface must be a name or an expression string, got {name_or_expression!r}")
    text = name_or_expression.strip()
    key = text.lower().replace("-", "_").replace(" ", "_")
    if key in _BUILDERS:
        allowed = SURFACE_PARAMS[key]
        for p in params:
            if p not in allowed:
                choices = ", ".join(allowed) if allowed else "none"
                raise ValueError(f"unknown parameter {p!r} for surface {key!r}; allowed: {choices}")
        return _BUILDERS[key](**params) if params else _default(key)
    if _NAME_LIKE.fullmatch(text) and key not in ("x", "y"):
        check_choice("surface", text, _BUILDERS)  # raises: lists the allowed names
    for p in params:
        if p not in ("domain", "name"):
            raise ValueError(f"unknown parameter {p!r} for an expression surface; allowed: domain, name")
    try:
        return compile_expression(text, **params)
    except ValueError as err:
        raise ValueError(f"{err} (or name a built-in surface: {', '.join(_BUILDERS)})") from None


__all__ = ["SURFACES", "SURFACE_PARAMS", "get_surface"] + list(_BUILDERS)
