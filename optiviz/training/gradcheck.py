"""Gradient checking (the lectures' "check backprop numerically"): backprop against centred differences.

For every checked entry w of a parameter, the numerical gradient is
`(L(w + eps) - L(w - eps)) / (2 eps)` and the relative error is
`|a - n| / max(|a|, |n|)` (a: backprop, n: numerical), 0 where both are below `floor`
(an exactly zero gradient, e.g. a dead ReLU's bias, is not a disagreement). A parameter's
figure is the maximum over its checked entries.

Why float64: the centred difference's truncation error is O(eps^2) and its rounding error
O(machine eps * |L| / eps). In float32 (machine eps 1e-7) at eps=1e-5 the rounding term alone is
~1e-2 relative, so a correct layer looks broken; in float64 (2e-16) correct layers sit near 1e-8
or below. Why a ReLU kink breaks it: if a pre-activation lies within eps of 0, w + eps and w - eps
straddle the kink and the difference quotient mixes the two slopes.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from optiviz._validate import check_finite_float, check_int, shown

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class GradientCheck:
    """What a gradient check found: per parameter name, the max relative error over its checked entries."""

    relative_error: dict[str, float]
    checked: dict[str, int]  # entries checked per parameter
    dtype: torch.dtype
    eps: float
    loss: float
    analytic: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    numerical: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    @property
    def worst(self) -> tuple[str, float]:
        """The parameter with the largest relative error, and that error."""
        name = max(self.relative_error, key=self.relative_error.__getitem__)
        return name, self.relative_error[name]

    def failing(self, tolerance: float = 1e-6) -> list[str]:
        """Names of the parameters whose relative error exceeds `tolerance`."""
        tolerance = check_finite_float("tolerance", tolerance)
        return [k for k, v in self.relative_error.items() if v > tolerance]

    def table(self) -> str:
        """One line per parameter: name, entries checked, max relative error."""
        width = max(len(k) for k in self.relative_error)
        lines = [f"{'parameter':<{width}}  entries  max rel. error   ({str(self.dtype).replace('torch.', '')}, eps={self.eps:g})"]
        for k, v in self.relative_error.items():
            lines.append(f"{k:<{width}}  {self.checked[k]:>7}  {v:.2e}")
        return "\n".join(lines)


def relative_error(analytic: torch.Tensor, numerical: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
    """Entry-wise |a - n| / max(|a|, |n|); 0 where both magnitudes are below `floor`."""
    floor = check_finite_float("floor", floor)
    if analytic.shape != numerical.shape:
        raise ValueError(f"numerical must have the analytic gradient's shape {tuple(analytic.shape)}, got {tuple(numerical.shape)}")
    scale = torch.maximum(analytic.abs(), numerical.abs())
    err = (analytic - numerical).abs() / scale.clamp_min(floor)
    return torch.where(scale < floor, torch.zeros_like(err), err)


def gradient_check(
    module: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float64,
    eps: float = 1e-5,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    max_entries: int | None = None,
    seed: int = 0,
    floor: float = 1e-12,
) -> GradientCheck:
    """Compare backprop with centred differences for every parameter of `module` (a copy; the original is untouched).

    Why: a wrong backward pass still trains, just worse; this is the check that tells.
    loss_fn(outputs, targets) defaults to cross-entropy. `max_entries` checks that many entries per
    parameter (a seeded random draw; None: all), which keeps big layers affordable. Random layers
    (dropout) see the same random state in every pass, so their masks are the same.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {shown(module)}")
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs must be a tensor, got {shown(inputs)}")
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"targets must be a tensor, got {shown(targets)}")
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(str(d) for d in FLOAT_DTYPES)}, got {shown(dtype)}")
    eps = check_finite_float("eps", eps)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps:g}")
    if max_entries is not None:
        max_entries = check_int("max_entries", max_entries, 1)
    seed = check_int("seed", seed)
    floor = check_finite_float("floor", floor)
    if loss_fn is None:
        loss_fn = F.cross_entropy
    elif not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable (outputs, targets) -> scalar, got {shown(loss_fn)}")

    net = copy.deepcopy(module).to(dtype)
    for m in net.modules():  # dropout with its own generator would draw a new mask per pass
        if getattr(m, "generator", None) is not None:
            m.generator = None
    x = inputs.detach().to(dtype) if inputs.is_floating_point() else inputs.detach()
    y = targets.detach().to(dtype) if targets.is_floating_point() else targets.detach()
    params = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("module must have at least one parameter that requires grad")

    def loss() -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = loss_fn(net(x), y)
        if out.numel() != 1:
            raise ValueError(f"loss_fn must return a scalar, got shape {tuple(out.shape)}")
        return out

    net.zero_grad(set_to_none=True)
    value = loss()
    value.backward()
    gen = torch.Generator().manual_seed(seed)
    errors, checked, analytic, numerical = {}, {}, {}, {}
    with torch.no_grad():
        for name, p in params:
            grad = torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
            flat = p.view(-1)
            n = flat.numel()
            idx = torch.arange(n) if max_entries is None or max_entries >= n else torch.randperm(n, generator=gen)[:max_entries]
            num = torch.empty(len(idx), dtype=dtype)
            for j, i in enumerate(idx.tolist()):
                orig = flat[i].item()
                flat[i] = orig + eps
                plus = loss().item()
                flat[i] = orig - eps
                minus = loss().item()
                flat[i] = orig
                num[j] = (plus - minus) / (2 * eps)
            a = grad.view(-1)[idx].to(dtype)
            errors[name] = float(relative_error(a, num, floor).max())
            checked[name] = len(idx)
            analytic[name], numerical[name] = a, num
    return GradientCheck(errors, checked, dtype, eps, float(value.detach()), analytic, numerical)


# ---------------------------------------------------------------- a layer whose backward is wrong


class _WrongTanh(torch.autograd.Function):
    """tanh forward, but a backward that forgets the square: grad * (1 - y) instead of grad * (1 - y^2)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return grad * (1 - y)


class WrongTanh(nn.Module):
    """A tanh layer with a buggy hand-written backward (what a gradient check exists to catch)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _WrongTanh.apply(x)


def tiny_net(activation: str = "tanh", *, n_in: int = 12, hidden: int = 8, n_out: int = 4, seed: int = 0) -> nn.Sequential:
    """fc1 - activation - fc2: small enough to check every entry. activation: tanh, relu or wrong_tanh."""
    acts: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "wrong_tanh": WrongTanh}
    if activation not in acts:
        raise ValueError(f"activation must be one of {', '.join(acts)}, got {shown(activation)}")
    for name, v in (("n_in", n_in), ("hidden", hidden), ("n_out", n_out)):
        check_int(name, v, 1)
    gen = torch.Generator().manual_seed(check_int("seed", seed))
    net = nn.Sequential()
    net.add_module("fc1", nn.Linear(n_in, hidden))
    net.add_module("act1", acts[activation]())
    net.add_module("fc2", nn.Linear(hidden, n_out))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return net


def relu_kink(*, distance: float, eps: float = 1e-5, dtype: torch.dtype = torch.float64, seed: int = 0) -> GradientCheck:
    """Gradient check of a ReLU net whose first hidden pre-activation sits `distance` from the kink.

    Why: the lecture warns that kinks (ReLU, max) break numerical gradients; with distance < eps the
    centred difference straddles the kink and fc1's error jumps, with distance >> eps it does not.
    """
    distance = check_finite_float("distance", distance)
    net = tiny_net("relu", seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(1, 12, generator=gen)
    with torch.no_grad():  # move unit 0's pre-activation to +distance by its bias
        pre = net.fc1(x)[0, 0]
        net.fc1.bias[0] += distance - pre
        net.fc2.weight[:, 0] = torch.tensor([1.0, -1.0, 0.5, -0.5])  # make unit 0 matter for the loss
    return gradient_check(net, x, torch.tensor([0]), dtype=dtype, eps=eps, seed=seed)
