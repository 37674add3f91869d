"""A surface's loss and gradient as C++, generated from the surface's own torch code.

The surface is not written twice: its `loss_and_gradient_fn` (a built-in's hand-derived gradient,
or a typed formula's torch.autograd backward) is run once on a small tensor under a dispatch mode
that records the aten ops eager runs (make_fx would do the same, after seconds of warming up), and each op becomes the C++ operation that rounds the same way (a float32 tensor times a
Python float multiplies by the float rounded to float32; ``x ** 2`` is ``x * x``; ``1 / x`` is a
reciprocal). Only ops whose torch CPU kernel is correctly rounded are accepted (+ - * /, abs, small
integer powers; not sqrt, see torch_sqrt.py), so the generated code gives torch's values bit for bit; a surface using
anything else (sin, exp, ...) is refused with the op's name and the simulator steps it with torch.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from optiviz.engine.surface import Surface

aten = torch.ops.aten


class Unsupported(Exception):
    """Why a surface, optimizer or setting cannot run in the native kernel (a readable reason)."""


# A traced value: ("s", name) one number per row, ("p", (a, b)) a row's pair, ("k", literal) a
# constant, ("dead", None) a value only the autograd machinery used (the loss's sum).
Value = tuple[str, Any]

_IDENTITY = {aten.detach.default, aten.clone.default, aten.alias.default, aten.lift_fresh_copy.default}
_BINARY = {
    aten.add.Tensor: "+", aten.add.Scalar: "+", aten.sub.Tensor: "-", aten.sub.Scalar: "-",
    aten.mul.Tensor: "*", aten.mul.Scalar: "*", aten.div.Tensor: "/", aten.div.Scalar: "/",
}
_UNARY = {aten.neg.default: "-({})", aten.reciprocal.default: "T(1) / ({})",
          aten.abs.default: "std::fabs({})"}
# torch's pow_tensor_scalar special cases, each correctly rounded (other exponents call std::pow;
# 0.5 is torch.sqrt, which with MKL is not IEEE's: see torch_sqrt.py)
_POWERS = {1.0: "{a}", 2.0: "{a} * {a}", 3.0: "{a} * {a} * {a}", -1.0: "T(1) / {a}",
           -2.0: "T(1) / ({a} * {a})", 0.0: "T(1)"}

_cache: "weakref.WeakKeyDictionary[Surface, str | Unsupported]" = weakref.WeakKeyDictionary()


def surface_source(surface: Surface) -> str:
    """C++ for ``template <class T> void surface_fg(T x0, T x1, T& f, T& g0, T& g1)``, the
    surface's loss and gradient at one point; raises Unsupported naming the op it cannot take."""
    if surface not in _cache:
        try:
            _cache[surface] = _generate(surface)
        except Unsupported as err:
            _cache[surface] = err
    out = _cache[surface]
    if isinstance(out, Unsupported):
        raise out
    return out


def _literal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unsupported(f"a constant {value!r} that is not a number")
    return f"T({float(value).hex()})"


class _Recorder(TorchDispatchMode):
    """Every aten op run under it, in order, with its arguments and result (the tensors are kept
    alive, so their ids name them): the same ops eager runs, autograd's backward included."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[Any, tuple, dict, Any]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        self.ops.append((func, args, kwargs or {}, out))
        return out


def _generate(surface: Surface) -> str:
    xy = torch.zeros(8, 2)
    recorder = _Recorder()
    try:
        with torch.no_grad(), recorder:
            loss, grad = surface.loss_and_gradient_fn(xy)
    except Exception as err:  # a surface function the recorder cannot follow
        raise Unsupported(f"its function could not be traced ({type(err).__name__})") from None
    lines: list[str] = []
    env: dict[int, Value] = {id(xy): ("p", ("x0", "x1"))}
    for func, args, kwargs, out in recorder.ops:
        if not isinstance(out, torch.Tensor):
            raise Unsupported(f"{func} returns {type(out).__name__}")
        env[id(out)] = _op(func, args, kwargs, out, env, lines)
    values = [env.get(id(t), ("missing", None)) for t in (loss, grad)]
    if values[0][0] != "s" or values[1][0] != "p":
        raise Unsupported("its loss and gradient do not have one value and one pair per point")
    lines += [f"f = {values[0][1]};", f"g0 = {values[1][1][0]};", f"g1 = {values[1][1][1]};"]
    body = "\n    ".join(lines)
    return ("template <class T>\nstatic inline void surface_fg(T x0, T x1, T& f, T& g0, T& g1) {\n"
            f"    {body}\n}}\n")


def _op(target: Any, args: tuple, kwargs: dict, val: torch.Tensor, env: dict[int, Value], lines: list[str]) -> Value:
    if not val.dtype.is_floating_point:
        raise Unsupported(f"{target} gives {val.dtype} values")
    node_kwargs = kwargs

    def arg(a: Any) -> Value:
        if isinstance(a, torch.Tensor):
            if id(a) in env:
                return env[id(a)]
            if a.ndim == 0:  # a constant made outside the traced ops (a formula's number)
                return ("k", _literal(a.item()))
            raise Unsupported(f"a tensor argument of {target} from outside the surface's ops")
        return ("k", _literal(a))

    def emit(expr: str) -> Value:
        name = f"v{len(lines)}"
        lines.append(f"const T {name} = {expr};")
        return ("s", name)

    def elementwise(fn: Any, *values: Value) -> Value:
        if any(v[0] == "dead" for v in values):
            raise Unsupported(f"{target} on a reduced value")
        pairs = [v for v in values if v[0] == "p"]
        if not pairs:
            return emit(fn(*(v[1] for v in values)))
        if any(v[0] == "s" for v in values):
            raise Unsupported(f"{target} broadcasting one value per point over a pair")
        return ("p", tuple(emit(fn(*(v[1][i] if v[0] == "p" else v[1] for v in values)))[1] for i in range(2)))

    if target in _IDENTITY:
        return arg(args[0])
    if target == aten.select.int:
        src, dim, index = arg(args[0]), args[1], args[2]
        if src[0] != "p" or dim not in (1, -1) or index not in (0, 1, -1, -2):
            raise Unsupported("an index other than x or y")
        return ("s", src[1][index % 2])
    if target == aten.stack.default:
        parts = [arg(a) for a in args[0]]
        if len(parts) != 2 or (args[1] if len(args) > 1 else 0) not in (1, -1) or any(p[0] != "s" for p in parts):
            raise Unsupported("a stack other than (gx, gy)")
        return ("p", (parts[0][1], parts[1][1]))
    if target == aten.select_backward.default:
        grad, dim, index = arg(args[0]), args[2], args[3]
        if grad[0] != "s" or dim not in (1, -1):
            raise Unsupported("a select_backward other than over (x, y)")
        parts = [grad[1], "T(0)"] if index % 2 == 0 else ["T(0)", grad[1]]
        return ("p", tuple(parts))
    if target == aten.sum.default:
        return ("dead", None)
    if target in (aten.ones_like.default, aten.zeros_like.default):
        return ("k", "T(1)" if target == aten.ones_like.default else "T(0)")
    if target == aten.expand.default:
        src = arg(args[0])
        if src[0] not in ("k", "s") or len(args[1]) != 1:
            raise Unsupported("an expand other than of the loss's seed")
        return src
    if target in _BINARY:
        if node_kwargs.get("alpha", 1) != 1 or len(args) > 2:
            raise Unsupported(f"{target} with alpha")
        op = _BINARY[target]
        return elementwise(lambda a, b: f"{a} {op} {b}", arg(args[0]), arg(args[1]))
    if target == aten.rsub.Scalar:
        if node_kwargs.get("alpha", 1) != 1 or len(args) > 2:
            raise Unsupported(f"{target} with alpha")
        return elementwise(lambda a, b: f"{b} - {a}", arg(args[0]), arg(args[1]))
    if target in _UNARY:
        pattern = _UNARY[target]
        return elementwise(lambda a: pattern.format(a), arg(args[0]))
    if target == aten.pow.Tensor_Scalar:
        exponent = float(args[1])
        if exponent not in _POWERS:
            raise Unsupported(f"a power {args[1]!r} (torch's std::pow is not correctly rounded)")
        pattern = _POWERS[exponent]
        return elementwise(lambda a: pattern.format(a=a), arg(args[0]))
    raise Unsupported(f"the op {target} (only + - * /, abs and small integer powers are "
                      "generated bit-exact)")
