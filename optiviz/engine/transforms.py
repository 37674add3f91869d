"""Gradient transforms from the lectures, applied row-wise to an (N, P) gradient before the optimizer.

Each transform is a tiny object: ``g2 = transform(g, t)`` (like ``clip_grad_*_`` before
``opt.step()``; weight decay stays inside the optimizer, as in torch). Parameters may be a scalar
or one value per run (length N), so a sweep can clip every run differently in one tensor op.

Step index: ``t`` is the number of steps already taken, 0 for the first gradient (optax's
``state.count`` before its increment; the optimizer's ``opt.t`` before ``opt.step``). With it the
lectures' noise variance ``eta / (1 + t)^gamma`` gives the first gradient variance ``eta``, exactly
as ``optax.add_noise`` does.

The caller's gradient is never modified: each transform writes into a buffer it owns and reuses
(no allocation per step), so copy the result if you keep it past the next call.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from optiviz._validate import check_fits, check_int, check_positive, check_range
from optiviz.engine.per_run import check_runs, per_run

Transform = Callable[[torch.Tensor, int], torch.Tensor]

NOISE_GAMMA = 0.55  # the lectures' annealing exponent for gradient noise


def noise_std(eta: float, t: int, gamma: float = NOISE_GAMMA) -> float:
    """Standard deviation of annealed gradient noise at step t (0 for the first gradient):
    sqrt(eta / (1 + t)^gamma). The simulator's transform and the trainer both draw with it."""
    return math.sqrt(eta / (1.0 + t) ** gamma)


def norm_clip_scale(norm: torch.Tensor, max_norm: float | torch.Tensor) -> torch.Tensor:
    """max_norm / max(norm, max_norm): the factor that brings a gradient of this norm down to
    max_norm and leaves a shorter one alone (exactly 1, and no division by a zero norm). Per run
    here, over a whole net's parameters in the trainer. Writes into `norm`."""
    if isinstance(max_norm, float):
        return torch.div(max_norm, norm.clamp_(min=max_norm), out=norm)
    return torch.div(max_norm, torch.maximum(norm, max_norm, out=norm), out=norm)


class _Param:
    """A scalar or per-run parameter, turned into a float or a device tensor matching g."""

    def __init__(self, name: str, value: Any, check: Callable[[str, Any], Any]) -> None:
        self.name = name
        self.value: float | np.ndarray = per_run(name, value, check=check)
        self._cache: dict[tuple, torch.Tensor] = {}

    def like(self, g: torch.Tensor, *, full: bool = True) -> float | torch.Tensor:
        """The float, or an (N, P) (full) / (N, 1) tensor on g's device and dtype, cached."""
        if isinstance(self.value, float):
            return self.value
        n = g.shape[0]
        shape = tuple(g.shape) if full else (n, 1)
        key = (shape, g.device, g.dtype)
        if key not in self._cache:
            check_runs(self.name, len(self.value), n)  # the runs are g's rows: checked once per shape
            col = torch.as_tensor(self.value, dtype=torch.float64).to(g.dtype).to(g.device).reshape(n, 1)
            self._cache[key] = col.expand(shape).contiguous()
        return self._cache[key]

    def __repr__(self) -> str:
        v = self.value
        return f"{v:g}" if isinstance(v, float) else f"[{v.min():g}..{v.max():g}] (N={len(v)})"


def _scratch(buf: torch.Tensor | None, g: torch.Tensor, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """buf if it fits (shape, device, dtype of g), else a fresh one: allocation only when g changes."""
    shape = tuple(g.shape) if shape is None else shape
    if buf is None or tuple(buf.shape) != shape or buf.device != g.device or buf.dtype != g.dtype:
        buf = torch.empty(shape, device=g.device, dtype=g.dtype)
    return buf


class GradientTransform:
    """Base: an output buffer per gradient shape, a readable repr, reset() for stateful ones."""

    kind = "transform"

    def __init__(self, **params: _Param) -> None:
        self.params = params
        self._buf: torch.Tensor | None = None

    def _out(self, g: torch.Tensor) -> torch.Tensor:
        self._buf = _scratch(self._buf, g)
        return self._buf

    def __call__(self, g: torch.Tensor, t: int) -> torch.Tensor:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget any state (e.g. reseed the noise) so a restarted run repeats itself."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.kind}({args})"


class ClipByValue(GradientTransform):
    """g_i = min(g_max, max(-g_max, g_i)): caps each coordinate, so the direction can change."""

    kind = "clip_by_value"

    def __init__(self, g_max: Any) -> None:
        super().__init__(g_max=_Param("g_max", g_max, check_positive))
        self._neg: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, g: torch.Tensor, t: int) -> torch.Tensor:
        gm = self.params["g_max"].like(g)
        if isinstance(gm, float):
            return torch.clamp(g, -gm, gm, out=self._out(g))
        if self._neg is None or self._neg[0] is not gm:
            self._neg = (gm, gm.neg())
        return torch.clamp(g, min=self._neg[1], max=gm, out=self._out(g))


class ClipByNorm(GradientTransform):
    """g = g * max_norm / max(|g|, max_norm) per run (norm over its P coordinates): keeps the direction."""

    kind = "clip_by_norm"

    def __init__(self, max_norm: Any) -> None:
        super().__init__(max_norm=_Param("max_norm", max_norm, check_positive))
        self._scale: torch.Tensor | None = None

    def __call__(self, g: torch.Tensor, t: int) -> torch.Tensor:
        scale = self._scale = _scratch(self._scale, g, (g.shape[0], 1))
        torch.linalg.vector_norm(g, dim=1, keepdim=True, out=scale)
        norm_clip_scale(scale, self.params["max_norm"].like(g, full=False))
        return torch.mul(g, scale, out=self._out(g))


class Sign(GradientTransform):
    """One-bit gradients: g = g_max * sign(g) (clip everything, keep only the sign)."""

    kind = "sign"

    def __init__(self, g_max: Any = 1.0) -> None:
        super().__init__(g_max=_Param("g_max", g_max, check_positive))

    def __call__(self, g: torch.Tensor, t: int) -> torch.Tensor:
        return torch.sign(g, out=self._out(g)).mul_(self.params["g_max"].like(g))


class AnnealedNoise(GradientTransform):
    """g + N(0, s_t^2) with s_t^2 = eta / (1 + t)^gamma, t = 0 for the first gradient (optax.add_noise).

    The noise comes from a torch.Generator on g's device seeded with ``seed``: the same seed, shapes
    and device give the same sequence; reset() starts it over. A caller that snapshots its random
    state (the trainer) passes its own ``generator`` instead: then the state is the caller's.
    """

    kind = "annealed_noise"

    def __init__(self, eta: Any, gamma: Any = NOISE_GAMMA, seed: int = 0,
                 generator: torch.Generator | None = None) -> None:
        def nonneg(name: str, v: Any) -> Any:
            return check_range(name, v, 0.0, None)

        super().__init__(eta=_Param("eta", eta, nonneg), gamma=_Param("gamma", gamma, nonneg))
        self.seed = check_int("seed", seed, 0)
        self._own_gen = generator is None
        self._gen: torch.Generator | None = generator
        self._noise: torch.Tensor | None = None
        self._std: torch.Tensor | None = None

    def reset(self) -> None:
        if self._gen is not None and self._own_gen:
            self._gen.manual_seed(self.seed)

    def __call__(self, g: torch.Tensor, t: int) -> torch.Tensor:
        if t < 0:
            raise ValueError(f"t must be in [0, inf) (steps already taken), got {t}")
        if self._own_gen and (self._gen is None or self._gen.device != g.device):
            self._gen = torch.Generator(device=g.device)
            self._gen.manual_seed(self.seed)
        noise = self._noise = _scratch(self._noise, g)
        torch.randn(g.shape, generator=self._gen, out=noise)
        eta, gamma = self.params["eta"].value, self.params["gamma"].value
        out = self._out(g)
        if isinstance(eta, float) and isinstance(gamma, float):
            return torch.add(g, noise, alpha=noise_std(eta, t, gamma), out=out)
        std = self._std = _scratch(self._std, g)
        eta_t, gamma_t = self.params["eta"].like(g), self.params["gamma"].like(g)
        if isinstance(gamma_t, float):
            torch.div(eta_t, (1.0 + t) ** gamma_t, out=std)
        else:
            torch.pow(1.0 + t, gamma_t, out=std)
            if isinstance(eta_t, float):
                std.reciprocal_().mul_(eta_t)
            else:
                torch.div(eta_t, std, out=std)
        std.sqrt_()
        return torch.addcmul(g, noise, std, out=out)

    def __repr__(self) -> str:
        return f"annealed_noise(eta={self.params['eta']!r}, gamma={self.params['gamma']!r}, seed={self.seed})"


class Chain(GradientTransform):
    """Apply transforms in order: chain(clip_by_norm(1.0), annealed_noise(0.3))."""

    kind = "chain"

    def __init__(self, *transforms: Transform) -> None:
        super().__init__()
        for i, tr in enumerate(transforms):
            if not callable(tr):
                raise ValueError(f"chain argument {i} must be a transform (callable g, t -> g), got {tr!r}")
        self.transforms = tuple(transforms)

    def __call__(self, g: torch.Tensor, t: int) -> torch.Tensor:
        for tr in self.transforms:
            g = tr(g, t)
        return g

    def reset(self) -> None:
        for tr in self.transforms:
            reset = getattr(tr, "reset", None)
            if reset is not None:
                reset()

    def __repr__(self) -> str:
        return f"chain({', '.join(repr(tr) for tr in self.transforms)})"


def apply_to_tensors(transform: Transform, tensors: list[torch.Tensor], t: int) -> None:
    """Apply a row-wise transform to several tensors as ONE row, in place: a whole net's gradients
    transformed as one (1, P) vector, so clip_by_norm clips the global norm (what the trainer does)."""
    if not tensors:
        return
    out = transform(torch.cat([x.reshape(1, -1) for x in tensors], dim=1), t)
    offset = 0
    for x in tensors:
        n = x.numel()
        x.copy_(out[0, offset:offset + n].view_as(x))
        offset += n


def check_dtype(transform: Any, dtype: torch.dtype) -> None:
    """Every parameter of a transform (a chain's members included) fits `dtype`, the gradients'
    (clip_by_value(1e39) cannot clamp a float32 gradient: torch refuses the bound). A callable
    of the user's own is the user's to check."""
    if isinstance(transform, Chain):
        for member in transform.transforms:
            check_dtype(member, dtype)
    elif isinstance(transform, GradientTransform):
        for param in transform.params.values():
            check_fits(f"{transform.kind} {param.name}", param.value, dtype)


def clip_by_value(g_max: Any) -> ClipByValue:
    """Clip every coordinate to [-g_max, g_max] (g_max > 0, scalar or per run)."""
    return ClipByValue(g_max)


def clip_by_norm(max_norm: Any) -> ClipByNorm:
    """Rescale each run's gradient to norm at most max_norm (> 0, scalar or per run)."""
    return ClipByNorm(max_norm)


def sign(g_max: Any = 1.0) -> Sign:
    """One-bit gradient g_max * sign(g) (g_max > 0, scalar or per run)."""
    return Sign(g_max)


def annealed_noise(eta: Any, gamma: Any = NOISE_GAMMA, seed: int = 0,
                   generator: torch.Generator | None = None) -> AnnealedNoise:
    """Add N(0, eta / (1 + t)^gamma) noise (eta, gamma >= 0, scalar or per run), seeded (or drawn from `generator`)."""
    return AnnealedNoise(eta, gamma, seed, generator)


def chain(*transforms: Transform) -> Chain:
    """Compose transforms left to right; chain() is the identity."""
    return Chain(*transforms)
