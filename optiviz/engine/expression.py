"""Turn a user's formula in x and y into a Surface, safely.

The text is never evaluated: `ast.parse(mode="eval")` gives a tree, and only a whitelist of
nodes (numbers, x, y, + - * / **, unary minus, pi, e and a fixed table of functions) is turned
into torch operations. Anything else is a ValueError saying what is allowed. Gradients come from
torch.autograd, so any formula built from the table is differentiable without hand work.
"""
from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, Union

import numpy as np
import torch

from optiviz._validate import check_finite_float, check_range
from optiviz.rounding import nice_round
from optiviz.engine.surface import Domain, Surface, suggested_lrs

Tensor = torch.Tensor

MAX_LENGTH = 500  # characters
MAX_DEPTH = 64  # nodes from the root to the deepest leaf
MAX_EXPONENT = 100.0  # largest |constant exponent|
MAX_DOMAIN = 1e6  # largest |domain bound|
DEFAULT_DOMAIN: Domain = ((-5.0, 5.0), (-5.0, 5.0))

VARIABLES = ("x", "y")
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def _binary(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Any, Any], Tensor]:
    """A two-argument torch function that also accepts one Python float."""

    def call(a: Any, b: Any) -> Tensor:
        if not isinstance(a, Tensor):
            a = torch.as_tensor(a, dtype=b.dtype, device=b.device)
        elif not isinstance(b, Tensor):
            b = torch.as_tensor(b, dtype=a.dtype, device=a.device)
        return fn(a, b)

    return call


# name -> (number of arguments, torch function)
FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
    "sin": (1, torch.sin),
    "cos": (1, torch.cos),
    "tan": (1, torch.tan),
    "arcsin": (1, torch.asin),
    "asin": (1, torch.asin),
    "arccos": (1, torch.acos),
    "acos": (1, torch.acos),
    "arctan": (1, torch.atan),
    "atan": (1, torch.atan),
    "sinh": (1, torch.sinh),
    "cosh": (1, torch.cosh),
    "tanh": (1, torch.tanh),
    "exp": (1, torch.exp),
    "log": (1, torch.log),
    "ln": (1, torch.log),
    "log2": (1, torch.log2),
    "log10": (1, torch.log10),
    "sqrt": (1, torch.sqrt),
    "abs": (1, torch.abs),
    "sign": (1, torch.sign),
    "sigmoid": (1, torch.sigmoid),
    "relu": (1, torch.relu),
    "softplus": (1, torch.nn.functional.softplus),
    "arctan2": (2, _binary(torch.atan2)),
    "atan2": (2, _binary(torch.atan2)),
    "hypot": (2, _binary(torch.hypot)),
    "min": (2, _binary(torch.minimum)),
    "max": (2, _binary(torch.maximum)),
}

ALLOWED = (
    "allowed: the variables x and y, numbers, + - * / and ** (or ^), parentheses, the constants "
    f"{', '.join(CONSTANTS)}, and the functions {', '.join(FUNCTIONS)}"
)

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}

_REFUSED: dict[type, str] = {  # what to call a refused node in the message
    ast.Attribute: "attribute access ('.') is",
    ast.Subscript: "indexing ('[...]') is",
    ast.Lambda: "lambda is",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "comprehensions are",
    ast.Compare: "comparisons are",
    ast.BoolOp: "and/or are",
    ast.IfExp: "if/else is",
    ast.NamedExpr: "assignment (':=') is",
    ast.Starred: "starred arguments are",
    ast.List: "lists are",
    ast.Tuple: "tuples are",
    ast.Set: "sets are",
    ast.Dict: "dicts are",
    ast.JoinedStr: "strings are",
    ast.Await: "await is",
    ast.Yield: "yield is",
    ast.YieldFrom: "yield is",
}

# A compiled node is either a Python float (a folded constant) or a function of the tensors x, y.
Compiled = Union[float, Callable[[Tensor, Tensor], Tensor]]


def _refuse(what: str) -> ValueError:
    return ValueError(f"expression: {what} not allowed; {ALLOWED}")


def _fold(fn: Callable[..., Any], *values: float, source: ast.AST) -> float:
    """Evaluate a constant subexpression once, in float64 torch (no Python big-number arithmetic)."""
    out = fn(*(torch.tensor(v, dtype=torch.float64) for v in values))
    value = float(out)
    if not math.isfinite(value):
        raise ValueError(f"expression: the constant part {ast.unparse(source)!r} is not a finite number; {ALLOWED}")
    return value


def _lift(fn: Callable[..., Any], parts: list[Compiled]) -> Compiled:
    """Apply fn to compiled parts (at least one not constant) as a closure over x, y."""
    if len(parts) == 1:
        (a,) = parts
        return lambda x, y: fn(a(x, y))
    a, b = parts
    if isinstance(a, float):
        return lambda x, y: fn(a, b(x, y))
    if isinstance(b, float):
        return lambda x, y: fn(a(x, y), b)
    return lambda x, y: fn(a(x, y), b(x, y))


def _contains_pow(node: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) for n in ast.walk(node))


def _compile(node: ast.AST, depth: int) -> Compiled:
    if depth > MAX_DEPTH:
        raise ValueError(f"expression: nesting deeper than {MAX_DEPTH} levels is not allowed; {ALLOWED}")
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, (str, bytes)):
            raise _refuse("strings are")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _refuse(f"the constant {v!r} is")
        try:
            value = float(v)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise ValueError(f"expression: a number in it is too large for a float (max about 1.8e308); {ALLOWED}")
        return value
    if isinstance(node, ast.Name):
        if node.id == "x":
            return lambda x, y: x
        if node.id == "y":
            return lambda x, y: y
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise ValueError(f"expression: {node.id} is a function: call it, as in {node.id}(x); {ALLOWED}")
        raise ValueError(f"expression: unknown name {node.id!r}; {ALLOWED}")
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise _refuse(f"the operator {type(node.op).__name__} is")
        a = _compile(node.operand, depth + 1)
        if isinstance(node.op, ast.UAdd):
            return a
        return _fold(operator.neg, a, source=node) if isinstance(a, float) else _lift(operator.neg, [a])
    if isinstance(node, ast.BinOp):
        fn = _BINOPS.get(type(node.op))
        if fn is None:
            raise _refuse(f"the operator {type(node.op).__name__} is")
        if isinstance(node.op, ast.Pow):
            _check_power(node)
        a, b = _compile(node.left, depth + 1), _compile(node.right, depth + 1)
        if isinstance(node.op, ast.Pow) and isinstance(b, float) and abs(b) > MAX_EXPONENT:
            raise ValueError(f"expression: exponents larger than {MAX_EXPONENT:g} in size are not allowed, got {b:g}; {ALLOWED}")
        if isinstance(a, float) and isinstance(b, float):
            return _fold(fn, a, b, source=node)
        return _lift(fn, [a, b])
    if isinstance(node, ast.Call):
        return _compile_call(node, depth)
    raise _refuse(_REFUSED.get(type(node), f"{type(node).__name__} is"))


def _check_power(node: ast.BinOp) -> None:
    """No power towers (x**y**z, 2**(x**2)); (x**a)**b only with constant a, b and |a*b| bounded."""
    if _contains_pow(node.right):
        raise ValueError(f"expression: power towers such as {ast.unparse(node)!r} are not allowed; {ALLOWED}")
    base = node.left
    if isinstance(base, ast.BinOp) and isinstance(base.op, ast.Pow):
        try:
            p = _compile(base.right, 0)
            q = _compile(node.right, 0)
        except ValueError:
            p = q = None
        if not (isinstance(p, float) and isinstance(q, float) and abs(p * q) <= MAX_EXPONENT):
            raise ValueError(f"expression: power towers such as {ast.unparse(node)!r} are not allowed; {ALLOWED}")


def _compile_call(node: ast.Call, depth: int) -> Compiled:
    if not isinstance(node.func, ast.Name):
        raise _refuse("calling anything but the listed functions (by name) is")
    name = node.func.id
    if name not in FUNCTIONS:
        raise ValueError(f"expression: unknown function {name!r}; {ALLOWED}")
    if node.keywords:
        raise _refuse("keyword arguments are")
    if any(isinstance(a, ast.Starred) for a in node.args):
        raise _refuse("starred arguments are")
    arity, fn = FUNCTIONS[name]
    if len(node.args) != arity:
        raise ValueError(f"expression: {name} takes {arity} argument{'s' if arity > 1 else ''}, got {len(node.args)}; {ALLOWED}")
    parts = [_compile(a, depth + 1) for a in node.args]
    if all(isinstance(p, float) for p in parts):
        return _fold(fn, *parts, source=node)
    return _lift(fn, parts)


def parse_expression(text: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The checked formula as a function of the tensors x and y (no eval: a whitelisted AST walk)."""
    if not isinstance(text, str):
        raise ValueError(f"expression: must be a string, got {type(text).__name__}; {ALLOWED}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression: longer than {MAX_LENGTH} characters ({len(text)}); {ALLOWED}")
    # users type ^ for power, and ** has the precedence they mean; line breaks are just spaces
    source = " ".join(text.split()).replace("^", "**")
    if not source:
        raise ValueError(f"expression: empty; {ALLOWED}")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError) as err:
        raise ValueError(f"expression: cannot parse {text.strip()!r} ({getattr(err, 'msg', err)}); {ALLOWED}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"expression: nested too deeply; {ALLOWED}") from None
    try:
        compiled = _compile(tree.body, 0)
    except RecursionError:
        raise ValueError(f"expression: nested too deeply; {ALLOWED}") from None
    if isinstance(compiled, float):
        raise ValueError(f"expression: {text.strip()!r} is a constant; use x and/or y so there is something to descend")
    body = tree.body
    while isinstance(body, ast.UnaryOp) and isinstance(body.op, ast.UAdd):
        body = body.operand
    if isinstance(body, ast.Name):  # "x" alone would hand back a view of the caller's points
        bare = compiled
        return lambda x, y: bare(x, y).clone()
    return compiled


def _check_domain(domain: Any) -> Domain:
    try:
        (x0, x1), (y0, y1) = domain
    except (TypeError, ValueError):
        raise ValueError(f"domain must be ((xmin, xmax), (ymin, ymax)), got {domain!r}") from None
    out = []
    for axis, lo, hi in (("x", x0, x1), ("y", y0, y1)):
        lo = check_finite_float(f"domain {axis}min", lo)
        hi = check_finite_float(f"domain {axis}max", hi)
        check_range(f"domain {axis}min", lo, -MAX_DOMAIN, MAX_DOMAIN)
        check_range(f"domain {axis}max", hi, -MAX_DOMAIN, MAX_DOMAIN)
        if not lo < hi:
            raise ValueError(f"domain {axis}min must be less than {axis}max, got ({lo:g}, {hi:g})")
        out.append((lo, hi))
    return (out[0], out[1])


def compile_expression(text: str, *, domain: Any = None, name: str | None = None) -> Surface:
    """A Surface for a formula in x and y; its gradient comes from torch.autograd.

    `domain` ((xmin, xmax), (ymin, ymax)) defaults to (-5, 5)^2. A formula that is constant, or not
    finite anywhere on the domain, is a ValueError.
    """
    f = parse_expression(text)
    dom = DEFAULT_DOMAIN if domain is None else _check_domain(domain)
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    shown = " ".join(text.split())

    def loss_fn(xy: Tensor) -> Tensor:
        return f(xy[..., 0], xy[..., 1])

    def loss_and_gradient_fn(xy: Tensor) -> tuple[Tensor, Tensor]:
        # Works under no_grad and inference_mode too: the simulator's step may run in either.
        with torch.inference_mode(False), torch.enable_grad():
            p = (xy.clone() if xy.is_inference() else xy).detach().requires_grad_(True)
            v = loss_fn(p)
            (g,) = torch.autograd.grad(v.sum(), p, allow_unused=True)
        if g is None:
            g = torch.zeros_like(p)
        return v.detach(), g

    def gradient_fn(xy: Tensor) -> Tensor:
        return loss_and_gradient_fn(xy)[1]

    probe = Surface(
        name=name or "expression",
        title=f"f(x, y) = {shown}",
        caption=f"Your own surface f(x, y) = {shown}; gradients come from torch.autograd.",
        domain=dom,
        minima=(),
        f_min=None,
        start=(0.0, 0.0),
        lrs={},
        params={"expression": shown, "domain": dom},
        log_color=False,
        loss_fn=loss_fn,
        gradient_fn=gradient_fn,
        loss_and_gradient_fn=loss_and_gradient_fn,
    )
    z = probe.grid(200)[2]
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        raise ValueError(f"expression: {shown!r} is not finite anywhere on the domain {dom}; choose another domain or formula")
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):
        raise ValueError(f"expression: {shown!r} is constant on the domain {dom}; there is nothing to descend")
    start, gnorm = _pick_start(probe)
    # SGD's first step moves 2% of the domain, or less where the gradient is typically larger
    # than at the start (so that e**x started on the flat side does not explode on the steep one)
    gscale = max(gnorm, _median_gradient_norm(probe))
    width = min(dom[0][1] - dom[0][0], dom[1][1] - dom[1][0])
    sgd = nice_round(0.02 * width / gscale) if math.isfinite(gscale) and gscale > 0 else nice_round(1e-3 * width)
    lrs = {
        "sgd": sgd,
        "momentum": nice_round(sgd / 5),
        "nesterov": nice_round(sgd / 5),
        "adagrad": nice_round(0.02 * width),
        "rmsprop": nice_round(0.002 * width),
        "adam": nice_round(0.02 * width),
    }
    # log colours when most of the domain sits in the bottom 1% of the range (Rosenbrock-like)
    low = float(np.quantile(finite, 0.1)) - lo
    log_color = bool((hi - lo) > 100 * low)
    return Surface(
        name=probe.name,
        title=probe.title,
        caption=probe.caption,
        domain=dom,
        minima=(),
        f_min=None,
        start=start,
        lrs=suggested_lrs(probe.name, lrs),
        params=MappingProxyType(dict(probe.params)),
        log_color=log_color,
        loss_fn=loss_fn,
        gradient_fn=gradient_fn,
        loss_and_gradient_fn=loss_and_gradient_fn,
    )


def _pick_start(surface: Surface) -> tuple[tuple[float, float], float]:
    """A corner-ish point 60% of the way to the domain's edge (top left first), or the nearest
    alternative where the loss and gradient are finite and the gradient is not zero."""
    (x0, x1), (y0, y1) = surface.domain
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    cands = [(cx + sx * r * hx, cy + sy * r * hy) for r in (0.6, 0.3, 0.8, 0.1) for sx, sy in ((-1, 1), (1, 1), (-1, -1), (1, -1))]
    pts = torch.tensor(cands, dtype=torch.float64)
    v, g = surface.loss_and_gradient(pts)
    gn = torch.linalg.vector_norm(g, dim=-1)
    ok = torch.isfinite(v) & torch.isfinite(gn) & (gn > 0)
    if bool(ok.any()):
        i = int(torch.nonzero(ok)[0])
        return (round(cands[i][0], 6), round(cands[i][1], 6)), float(gn[i])
    xs, ys, z = surface.grid(41)
    good = np.argwhere(np.isfinite(z))
    i, j = good[len(good) // 2]
    pt = (float(xs[j]), float(ys[i]))
    gn0 = float(torch.linalg.vector_norm(surface.gradient(torch.tensor(pt, dtype=torch.float64))))
    return pt, gn0


def _median_gradient_norm(surface: Surface, n: int = 41) -> float:
    (x0, x1), (y0, y1) = surface.domain
    gx, gy = torch.meshgrid(torch.linspace(x0, x1, n, dtype=torch.float64), torch.linspace(y0, y1, n, dtype=torch.float64), indexing="xy")
    g = surface.gradient(torch.stack((gx, gy), dim=-1))
    norms = torch.linalg.vector_norm(g, dim=-1)
    norms = norms[torch.isfinite(norms)]
    return float(norms.median()) if norms.numel() else math.nan
