"""Batched, torch.optim-exact update rules over (N, P) tensors: N independent runs of P parameters.

torch.optim takes one scalar lr per param group, so a sweep of 10,000 (lr, momentum) pairs would
be 10,000 optimizers. Here every hyperparameter may be a scalar or one value per run, and one
step is a handful of in-place tensor ops over all runs at once.

Exactness: each update follows torch's ``_single_tensor_*`` kernel op for op (lerp for Adam's
first moment, ``addcmul`` for second moments, ``sqrt`` then divide by ``sqrt(1 - beta2^t)`` then
add eps, the first momentum step sets ``buf = g``...). A hyperparameter equal across runs stays a
Python float and goes through the very call torch makes; one that varies per run is stored
expanded to a contiguous (N, P) tensor (broadcasting an (N, 1) column over P = 2 is several times
slower on CPU) and goes through the tensor form of the same op, which rounds the same way
(``addcmul_(x, a)`` is the same fused multiply-add as ``add_(x, alpha=a)``). In float64 the tests
find iterates bit-identical to a loop of torch.optim instances over 1,000 steps, per-run
hyperparameters and schedules included (the tests require <= 1e-9 relative).

Schedules: ``lr_scale`` (a float or per-run (N, 1) tensor) multiplies lr, so the effective lr is
what torch's ``group['lr']`` holds after a scheduler set it. Step index ``opt.t`` counts the steps
taken (torch's ``state['step']``); a schedule is evaluated at ``opt.t`` before the step (0-based,
like ``LambdaLR``).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from optiviz._validate import check_choice, check_int
from optiviz.engine.devices import pick_device
from optiviz.engine.hparams import HPARAMS, OPTIMIZERS, HParamSpec, check_first_step, defaults
from optiviz.engine.per_run import per_run

FORMS = ("torch", "lecture")

# A kernel constant: a Python float when every run shares it, else a contiguous (N, P) tensor.
Const = float | torch.Tensor


def _axpy_(y: torch.Tensor, x: torch.Tensor, a: Const) -> torch.Tensor:
    """y += a * x."""
    return y.add_(x, alpha=a) if isinstance(a, float) else y.addcmul_(x, a)


def _axmy_(y: torch.Tensor, x: torch.Tensor, a: Const) -> torch.Tensor:
    """y -= a * x (torch writes this as ``add_(x, alpha=-a)``)."""
    return y.add_(x, alpha=-a) if isinstance(a, float) else y.addcmul_(x, a, value=-1)


class BatchedOptimizer:
    """Shared machinery: hyperparameter storage/validation, weight decay, lr scaling, state."""

    name = ""
    _buffer_names: tuple[str, ...] = ()

    def __init__(self, n: int, p: int, *, device: torch.device, dtype: torch.dtype, form: str,
                 hparams: dict[str, Any], column_major: bool = False) -> None:
        self.n, self.p = n, p
        self.shape = (n, p)
        self.device, self.dtype, self.form = device, dtype, form
        self.column_major = column_major
        self.t = 0
        self.lr_scale: float | torch.Tensor = 1.0
        self._specs = HPARAMS[self.name]
        self._raw: dict[str, Any] = {}
        self._started = False  # whether the momentum buffer holds a value (torch: buffer is not None)
        self._started_rows: torch.Tensor | None = None  # the same per run, once runs differ

        # Work buffers so a step allocates nothing.
        self._gw, self._elr, self._c, self._tmp, self._u, self._w = (self._tensor() for _ in range(6))
        # A step's scalars (lr after a schedule, bias corrections, AdaGrad's decayed lr) are worked out
        # in float64 and rounded to the run's dtype once, per run as torch does for one run with
        # Python floats; (N, 1) float64 work columns for that (MPS has no float64: the run's dtype).
        self._host_dtype = dtype if torch.device(device).type == "mps" else torch.float64
        self._h1, self._h2 = (torch.empty((n, 1), device=device, dtype=self._host_dtype) for _ in range(2))
        self._state = {k: self._tensor().zero_() for k in self._buffer_names}
        self.set_hparams(**{**defaults(self.name), **hparams})
        self.reset()

    def _tensor(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """An uninitialised (N, P) tensor laid out as the x this optimizer steps: an op mixing
        layouts (row after row with coordinate after coordinate) costs several times one that does
        not, on the CPU."""
        shape = (self.p, self.n) if self.column_major else self.shape
        t = torch.empty(shape, device=self.device, dtype=self.dtype if dtype is None else dtype)
        return t.T if self.column_major else t

    # ----------------------------------------------------------------- hyperparameters
    def set_hparams(self, **hparams: Any) -> None:
        """Validate all, then apply all (nothing changes on error); state such as buffers is kept."""
        unknown = [k for k in hparams if k not in self._specs]
        if unknown:
            raise ValueError(f"unknown hyperparameter {unknown[0]!r} for {self.name}; "
                             f"allowed: {', '.join(self._specs)}")
        new = dict(self._raw)
        for key, value in hparams.items():
            new[key] = self._canonical(self._specs[key], value)
        self._check_combination(new)
        self._raw = new
        self._prepare()
        self._hparams_view = {k: self._column(v) for k, v in self._raw.items()}

    @property
    def hparams(self) -> dict[str, Any]:
        """name -> (N, 1) tensor on the device; flags are bools; ``betas`` is a pair of (N, 1) tensors."""
        return dict(self._hparams_view)

    def _canonical(self, spec: HParamSpec, value: Any) -> Any:
        """Validated value as a bool, a float (same for all runs), a float64 (N,) array, or a pair."""
        if spec.kind == "bool":
            return spec.check(value)
        if spec.kind == "pair":
            return tuple(self._per_run(f"{spec.name}[{i}] ({part})", v, spec)
                         for i, (part, v) in enumerate(zip(spec.parts, spec.pair(value))))
        return self._per_run(spec.name, value, spec)

    def _per_run(self, name: str, value: Any, spec: HParamSpec) -> float | np.ndarray:
        # in range, and a number the run's dtype holds (lr=1e39 is refused in float32)
        v = per_run(name, value, self.n, lambda nm, x: spec.check_number(nm, x, self.dtype))
        return v if isinstance(v, float) else _uniform(v)

    def _check_combination(self, raw: dict[str, Any]) -> None:
        """Rules that involve more than one hyperparameter (overridden where torch has them)."""

    def _column(self, v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, tuple):
            return tuple(self._column(x) for x in v)
        if isinstance(v, float):
            return torch.full((self.n, 1), v, dtype=self.dtype, device=self.device)
        return torch.tensor(v, dtype=torch.float64).to(self.dtype).to(self.device).reshape(self.n, 1)

    def _const(self, v: float | np.ndarray) -> Const:
        """Kernel constant: floats stay floats (torch's exact call); arrays become (N, P) tensors."""
        if isinstance(v, float):
            return v
        col = torch.as_tensor(v, dtype=torch.float64).to(self.dtype).to(self.device)
        return self._tensor().copy_(col.reshape(self.n, 1).expand(self.shape))

    def _prepare(self) -> None:
        """Derive the per-step constants once per set_hparams, not once per step."""
        self._lr = self._const(self._raw["lr"])
        self._lr64 = self._host(self._raw["lr"])
        self._wd = self._const(self._raw["weight_decay"])

    def _host(self, v: float | np.ndarray) -> float | torch.Tensor:
        """A value for the step's scalar arithmetic: floats stay floats, per-run values become an
        (N, 1) float64 column (rounded to the run's dtype only at the end, by `_rounded`)."""
        if isinstance(v, float):
            return v
        return torch.as_tensor(np.asarray(v, dtype=np.float64), device=self.device).to(self._host_dtype).reshape(self.n, 1)

    def _rounded(self, v: float | torch.Tensor, out: torch.Tensor) -> Const:
        """A step scalar worked out in float64, rounded once to the run's dtype (as torch's kernels
        cast a Python float): floats stay floats, a column becomes `out` (N, P)."""
        if isinstance(v, float):
            return v
        if v is self._lr64:
            return self._lr  # the same values, rounded once already
        return out.copy_(v.expand(self.shape))

    # ----------------------------------------------------------------- stepping
    @torch.no_grad()
    def step(self, x: torch.Tensor, g: torch.Tensor, lr_scale: float | torch.Tensor | None = None) -> torch.Tensor:
        """One update of x (N, P) in place from the (already transformed) gradient g; returns x.

        lr_scale (default ``self.lr_scale``) multiplies lr: a float or one value per run.
        """
        return self.apply(x, g, self.begin_step(lr_scale))

    def begin_step(self, lr_scale: float | torch.Tensor | None = None) -> tuple[Const, ...]:
        """The host half of a step: count it and work out its scalars (lr after the schedule, bias
        corrections) once, in Python as torch does. Kept apart from `apply` so a compiled `apply`
        takes them as inputs instead of recomputing them inside its loops."""
        lr = self._effective_lr(self.lr_scale if lr_scale is None else lr_scale)
        self.t += 1
        return self._step_constants(lr)

    @torch.no_grad()
    def apply(self, x: torch.Tensor, g: torch.Tensor, constants: tuple[Const, ...]) -> torch.Tensor:
        """The tensor half of a step: weight decay and the update, with what `begin_step` returned."""
        if x.shape != self.shape or g.shape != self.shape:
            raise ValueError(f"x and g must have shape {self.shape}, got {tuple(x.shape)} and {tuple(g.shape)}")
        wd = self._wd
        if isinstance(wd, float):
            if wd != 0.0:
                g = torch.add(g, x, alpha=wd, out=self._gw)
        else:
            g = torch.addcmul(g, x, wd, out=self._gw)
        self._update(x, g, *constants)
        return x

    def _step_constants(self, lr: float | torch.Tensor) -> tuple[Const, ...]:
        """This step's scalars, in the order `_update` takes them after (x, g); `lr` is the
        effective lr from `_effective_lr` (a float or a float64 column)."""
        return (self._rounded(lr, self._elr),)

    def _effective_lr(self, scale: Any) -> float | torch.Tensor:
        """lr times the schedule's factor, in float64: a float, or an (N, 1) column."""
        lr = self._lr64
        if isinstance(scale, (int, float)):
            if isinstance(lr, float):
                return lr * scale
            return lr if scale == 1.0 else torch.mul(lr, scale, out=self._h1)
        s = torch.as_tensor(scale, device=self.device).to(self._host_dtype).reshape(-1, 1)
        if s.shape[0] not in (1, self.n):
            raise ValueError(f"lr_scale must be a number or have one value per run (length {self.n}), "
                             f"got length {s.shape[0]}")
        return torch.mul(s.expand(self.n, 1), lr, out=self._h1)

    def _update(self, x: torch.Tensor, g: torch.Tensor, lr: Const) -> None:
        raise NotImplementedError

    def _lr_times(self, lr: Const, c: Const) -> Const:
        """lr * c as a float or a tensor in a work buffer (never modifies lr, which may be self._lr)."""
        if isinstance(lr, float) and isinstance(c, float):
            return lr * c
        if isinstance(lr, float):
            return torch.mul(c, lr, out=self._c)
        return torch.mul(lr, c, out=self._c)

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """Back to step 0 with fresh state (buffers zero); hyperparameters are kept."""
        self.t = 0
        self._started, self._started_rows = False, None
        for buf in self._state.values():
            buf.zero_()

    def state_dict(self) -> dict[str, Any]:
        """A deep copy: restoring it later gives bit-identical continuation."""
        scale = self.lr_scale.clone() if isinstance(self.lr_scale, torch.Tensor) else self.lr_scale
        return {
            "optimizer": self.name, "form": self.form, "shape": self.shape, "t": self.t,
            "started": self._started, "lr_scale": scale,
            "started_rows": None if self._started_rows is None else self._started_rows.clone(), "hparams": copy.deepcopy(self._raw),
            "state": {k: v.clone() for k, v in self._state.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned (copied in, so the snapshot stays reusable)."""
        mine = (self.name, self.form, self.shape)
        theirs = (state.get("optimizer"), state.get("form"), tuple(state.get("shape", ())))
        if mine != theirs:
            raise ValueError(f"state is for (optimizer, form, shape) {theirs}, this optimizer is {mine}")
        for k, buf in self._state.items():
            buf.copy_(state["state"][k])
        self.t = int(state["t"])
        self._started = bool(state["started"])
        rows = state.get("started_rows")
        self._started_rows = None if rows is None else rows.clone().to(self.device)
        scale = state["lr_scale"]
        self.lr_scale = scale.clone() if isinstance(scale, torch.Tensor) else scale
        self._raw = copy.deepcopy(state["hparams"])
        self._prepare()
        self._hparams_view = {k: self._column(v) for k, v in self._raw.items()}

    def __repr__(self) -> str:
        def show(v: Any) -> str:
            if isinstance(v, np.ndarray):
                return f"[{v.min():g}..{v.max():g}]"
            if isinstance(v, tuple):
                return "(" + ", ".join(show(x) for x in v) + ")"
            return repr(v) if isinstance(v, bool) else f"{v:g}"

        hp = ", ".join(f"{k}={show(v)}" for k, v in self._raw.items())
        form = "" if self.form == "torch" else ", form='lecture'"
        return f"make_optimizer({self.name!r}, n={self.n}, p={self.p}{form}, {hp})"


def _zero_rows(opt: BatchedOptimizer, value: float | np.ndarray) -> torch.Tensor | None:
    """(N, P) bool mask of runs where a per-run value is 0, or None when no run needs one."""
    if isinstance(value, float) or not np.any(value == 0.0):
        return None
    mask = torch.as_tensor(value == 0.0, device=opt.device).reshape(opt.n, 1)
    return opt._tensor(torch.bool).copy_(mask.expand(opt.shape))


def _uniform(arr: np.ndarray) -> float | np.ndarray:
    """A per-run array whose values are all equal is a float: torch's own scalar call, and faster."""
    return float(arr[0]) if arr.size and np.all(arr == arr[0]) else arr


class SGD(BatchedOptimizer):
    """sgd / momentum / nesterov = torch.optim.SGD(momentum, dampening, nesterov, weight_decay).

    torch form (``_single_tensor_sgd``)::

        buf = g at the first momentum step, else buf = mu*buf + (1 - dampening)*g
        x -= lr * buf                     (momentum)
        x -= lr * (g + mu*buf)            (nesterov)

    Lecture form::

        v = mu*v - lr*dx; x += v                                 (momentum)
        v_prev = v; v = mu*v - lr*dx; x += -mu*v_prev + (1+mu)*v  (nesterov, phi = x + mu*v)

    Under a constant lr the two forms give the same iterates (v = -lr*buf). Under a schedule they
    differ: torch's buffer holds raw gradients and the *current* lr multiplies the whole buffer,
    while the lecture velocity holds each past gradient times the lr *of its own step*. When lr
    drops, torch's step shrinks at once; the lecture's keeps the momentum gathered at the old lr.
    """

    @property
    def _buffer_names(self) -> tuple[str, ...]:  # type: ignore[override]
        if self.name == "sgd":
            return ()
        return ("velocity",) if self.form == "lecture" else ("momentum_buffer",)

    def _check_combination(self, raw: dict[str, Any]) -> None:
        if self.name == "nesterov" and np.any(np.asarray(raw["dampening"]) != 0):
            raise ValueError("dampening must be 0 for nesterov (torch.optim.SGD's rule: nesterov needs "
                             f"momentum > 0 and zero dampening), got {np.max(raw['dampening']):g}")

    def _prepare(self) -> None:
        super()._prepare()
        mu = self._raw.get("momentum", 0.0)
        damp = self._raw.get("dampening", 0.0)
        self._mu = self._const(mu)
        # torch skips the momentum branch where momentum == 0, so dampening never scales g there.
        omd = np.where(np.asarray(mu) == 0.0, 1.0, 1.0 - np.asarray(damp, dtype=np.float64))
        self._omd = self._const(_uniform(np.atleast_1d(omd)) if omd.ndim else float(omd))
        self._opmu = self._const(_uniform(1.0 + np.atleast_1d(mu)) if np.ndim(mu) else 1.0 + mu)
        self._idle = _zero_rows(self, mu)

    def _update(self, x: torch.Tensor, g: torch.Tensor, lr: Const) -> None:
        mu = self._mu
        if self.form == "lecture":
            self._lecture(x, g, lr, mu)
            return
        if isinstance(mu, float) and mu == 0.0:
            _axmy_(x, g, lr)  # torch: no buffer at all
            return
        buf = self._state["momentum_buffer"]
        if self._idle is None and self._started_rows is None:
            if not self._started:
                buf.copy_(g)
                self._started = True
            else:
                buf.mul_(mu)
                _axpy_(buf, g, self._omd)
        else:
            self._masked_buffer_update(buf, g, mu)
        if self.name == "nesterov":
            d = torch.add(g, buf, alpha=mu, out=self._tmp) if isinstance(mu, float) else \
                torch.addcmul(g, buf, mu, out=self._tmp)
        elif self._idle is not None:
            d = torch.where(self._idle, g, buf, out=self._tmp)
        else:
            d = buf
        _axmy_(x, d, lr)

    def _masked_buffer_update(self, buf: torch.Tensor, g: torch.Tensor, mu: Const) -> None:
        """torch per run: momentum 0 leaves the buffer alone; the first step with momentum sets it to g.

        Needed only when some runs have momentum 0 (or had, and never started a buffer), so that
        switching their momentum on later starts from buf = g, as a fresh torch buffer would.
        """
        started = self._started_rows
        if started is None:
            started = self._started_rows = self._tensor(torch.bool).fill_(self._started)
        new = torch.mul(buf, mu, out=self._w)
        _axpy_(new, g, self._omd)
        torch.where(started, new, g, out=new)
        if self._idle is None:
            buf.copy_(new)
            self._started_rows, self._started = None, True
        else:
            torch.where(self._idle, buf, new, out=buf)
            started.logical_or_(~self._idle)

    def _lecture(self, x: torch.Tensor, g: torch.Tensor, lr: Const, mu: Const) -> None:
        v = self._state["velocity"]
        # Dampening (like torch) skips the first step: v = -lr*g there, matching torch's buf = g.
        c = self._lr_times(lr, self._omd) if self._started else lr
        self._started = True
        if self.name == "nesterov":
            _axmy_(x, v, mu)                 # x += -mu * v_prev
            v.mul_(mu)
            _axmy_(v, g, c)                  # v = mu*v - lr*dx
            _axpy_(x, v, self._opmu)         # x += (1 + mu) * v
        else:
            v.mul_(mu)
            _axmy_(v, g, c)                  # v = mu*v - lr*dx
            x.add_(v)                        # x += v


class Adagrad(BatchedOptimizer):
    """torch.optim.Adagrad: clr = lr/(1 + (t-1)*lr_decay); sum += g^2; x -= clr*g/(sqrt(sum) + eps).

    initial_accumulator_value is the value ``sum`` starts from: changing it applies at once before
    the first step, otherwise at the next reset() (torch also reads it only when creating state).
    """

    name = "adagrad"
    _buffer_names = ("sum",)

    def _prepare(self) -> None:
        super()._prepare()
        self._lr_decay64 = self._host(self._raw["lr_decay"])
        self._eps = self._const(self._raw["eps"])

    def set_hparams(self, **hparams: Any) -> None:
        super().set_hparams(**hparams)
        if self.t == 0 and "initial_accumulator_value" in hparams:
            self._fill_sum()

    def _fill_sum(self) -> None:
        iav = self._const(self._raw["initial_accumulator_value"])
        if isinstance(iav, float):
            self._state["sum"].fill_(iav)
        else:
            self._state["sum"].copy_(iav)

    def reset(self) -> None:
        super().reset()
        self._fill_sum()

    def _step_constants(self, lr: float | torch.Tensor) -> tuple[Const, ...]:
        """clr = lr / (1 + (t - 1) lr_decay), in float64, rounded once."""
        decay = self._lr_decay64
        if isinstance(decay, float):
            if isinstance(lr, float) or decay == 0.0:
                return (self._rounded(lr if decay == 0.0 else lr / (1 + (self.t - 1) * decay), self._c),)
            return (self._rounded(torch.div(lr, 1 + (self.t - 1) * decay, out=self._h2), self._c),)
        den = torch.mul(decay, self.t - 1, out=self._h2).add_(1)
        return (self._rounded(torch.div(lr, den, out=self._h2), self._c),)

    def _update(self, x: torch.Tensor, g: torch.Tensor, clr: Const) -> None:
        s = self._state["sum"]
        s.addcmul_(g, g, value=1)
        std = torch.sqrt(s, out=self._tmp).add_(self._eps)
        _addcdiv_neg_(x, g, std, clr, self._u)


def _addcmul_sq_(v: torch.Tensor, g: torch.Tensor, c: Const, work: torch.Tensor) -> None:
    """v += c * g * g as torch's ``v.addcmul_(g, g, value=c)`` rounds it: fma(c*g, g, v)."""
    if isinstance(c, float):
        v.addcmul_(g, g, value=c)
    else:
        v.addcmul_(torch.mul(g, c, out=work), g)


def _addcdiv_neg_(x: torch.Tensor, num: torch.Tensor, den: torch.Tensor, c: Const, work: torch.Tensor) -> None:
    """x -= c * num / den, as torch's ``x.addcdiv_(num, den, value=-c)`` computes it: (c*num)/den."""
    if isinstance(c, float):
        x.addcdiv_(num, den, value=-c)
    else:
        x.sub_(torch.mul(num, c, out=work).div_(den))


class RMSprop(BatchedOptimizer):
    """torch.optim.RMSprop: v = alpha*v + (1-alpha)*g^2 (centered: minus the squared mean of g),
    denominator sqrt(v) + eps, optional momentum on the normalized step; no bias correction.

    ``centered`` switched on mid-run starts its mean gradient from wherever it was (zeros at first);
    torch does not support switching it at all.
    """

    name = "rmsprop"
    _buffer_names = ("square_avg", "grad_avg", "momentum_buffer")

    def _prepare(self) -> None:
        super()._prepare()
        alpha = self._raw["alpha"]
        self._alpha = self._const(alpha)
        self._oma = self._const(1.0 - alpha)  # torch passes 1 - alpha computed in double
        self._eps = self._const(self._raw["eps"])
        mom = self._raw["momentum"]
        self._mom = self._const(mom)
        # Runs with momentum 0 take torch's other branch (addcdiv straight into x): a different
        # rounding, which a jittery run amplifies, so mixed batches select per run.
        self._plain_rows = _zero_rows(self, mom)
        self._centered = self._raw["centered"]

    def _update(self, x: torch.Tensor, g: torch.Tensor, lr: Const) -> None:
        sq = self._state["square_avg"]
        sq.mul_(self._alpha)
        _addcmul_sq_(sq, g, self._oma, self._u)
        if self._centered:
            ga = self._state["grad_avg"]
            ga.lerp_(g, self._oma)
            avg = torch.addcmul(sq, ga, ga, value=-1, out=self._tmp).sqrt_()
        else:
            avg = torch.sqrt(sq, out=self._tmp)
        avg.add_(self._eps)
        mom = self._mom
        if isinstance(mom, float) and mom == 0.0:
            _addcdiv_neg_(x, g, avg, lr, self._u)
        elif self._plain_rows is None:
            buf = self._state["momentum_buffer"]
            buf.mul_(mom).addcdiv_(g, avg)
            _axmy_(x, buf, lr)
        else:  # some runs have momentum 0: torch's other branch, buffer left alone
            buf = self._state["momentum_buffer"]
            new = torch.mul(buf, mom, out=self._w).addcdiv_(g, avg)
            torch.where(self._plain_rows, buf, new, out=buf)
            plain = self._u.copy_(x)
            _addcdiv_neg_(plain, g, avg, lr, self._c)                  # momentum 0: x.addcdiv_
            _axmy_(x, buf, lr)                                         # momentum > 0: x -= lr*buf
            torch.where(self._plain_rows, plain, x, out=x)


class Adam(BatchedOptimizer):
    """torch.optim.Adam (L2 weight decay, optional amsgrad)::

        m.lerp_(g, 1 - b1); v = b2*v + (1 - b2)*g^2
        denom = sqrt(v) / sqrt(1 - b2^t) + eps;  x -= lr/(1 - b1^t) * m / denom
    """

    name = "adam"
    _buffer_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _check_combination(self, raw: dict[str, Any]) -> None:
        check_first_step(self.name, raw, self.dtype)  # lr / (1 - beta1) must fit the dtype too

    def _prepare(self) -> None:
        super()._prepare()
        b1, b2 = self._raw["betas"]
        self._b1, self._b2 = b1, b2  # floats or (N,) arrays, for the bias corrections
        self._b2_k = self._const(b2)
        self._bc1 = None if isinstance(b1, float) else _BiasCorrection(b1, self, sqrt=False)
        self._bc2 = None if isinstance(b2, float) else _BiasCorrection(b2, self, sqrt=True)
        self._omb1, self._omb2 = self._const(1.0 - b1), self._const(1.0 - b2)
        self._eps = self._const(self._raw["eps"])
        self._amsgrad = self._raw["amsgrad"]

    def _step_constants(self, lr: Const) -> tuple[Const, ...]:
        """step_size = lr / (1 - b1^t) and bias_correction2_sqrt = (1 - b2^t) ** 0.5, as torch
        computes them (t as a float, Python's pow); per-run ones in buffers of their own."""
        t = float(self.t)  # torch: step = state['step'].item()
        b1, b2 = self._b1, self._b2
        if self._bc1 is None and isinstance(lr, float):
            step_size: Const = lr / (1 - b1**t)
        else:  # in float64, rounded once
            bc1 = 1 - b1**t if self._bc1 is None else self._bc1.at(t, out=self._h2)
            num = self._h1.fill_(lr) if isinstance(lr, float) else lr
            step_size = self._rounded(torch.div(num, bc1, out=self._h1), self._c)
        bc2_sqrt = (1 - b2**t) ** 0.5 if self._bc2 is None else self._bc2.at(t, out=self._h2)
        return step_size, self._rounded(bc2_sqrt, self._bc2.buffer) if self._bc2 is not None else bc2_sqrt

    def _update(self, x: torch.Tensor, g: torch.Tensor, step_size: Const, bc2_sqrt: Const) -> None:
        m, v = self._state["exp_avg"], self._state["exp_avg_sq"]
        m.lerp_(g, self._omb1)
        v.mul_(self._b2_k)
        _addcmul_sq_(v, g, self._omb2, self._u)
        if self._amsgrad:
            vmax = self._state["max_exp_avg_sq"]
            torch.maximum(vmax, v, out=vmax)
            v = vmax
        denom = torch.sqrt(v, out=self._tmp).div_(bc2_sqrt).add_(self._eps)
        _addcdiv_neg_(x, m, denom, step_size, self._u)


class PlainSGD(SGD):
    name = "sgd"


class Momentum(SGD):
    name = "momentum"


class Nesterov(SGD):
    name = "nesterov"


class _BiasCorrection:
    """Per-run ``1 - beta**t`` (or its square root) for per-run betas, as an (N, 1) float64 column
    (the caller rounds what it derives from it once, to the run's dtype).

    torch computes ``beta ** step`` in Python (the C library's pow). A sweep usually has few
    distinct betas, so up to ``EXACT_MAX`` of them are done exactly that way and gathered over
    the runs. With more (a random search), ``exp(t * log(beta))`` in float64 stands in (within
    ~1e-14 relative, so after rounding to float32 it is almost always the same number). The
    exponent is floored at -50, where ``1 - beta**t`` is already exactly 1, so no denormals appear.
    """

    EXACT_MAX = 256

    def __init__(self, beta: np.ndarray, opt: BatchedOptimizer, *, sqrt: bool) -> None:
        self.sqrt = sqrt
        self.buffer = opt._tensor()  # its rounded (N, P) form
        uniq, inv = np.unique(beta, return_inverse=True)
        self.exact = len(uniq) <= self.EXACT_MAX
        self.host_dtype = opt._host_dtype
        if self.exact:
            self.values = [float(b) for b in uniq]
            self.index = torch.as_tensor(inv.reshape(-1), device=opt.device)
        else:
            with np.errstate(divide="ignore"):
                self.log_beta = opt._host(np.log(beta))

    def at(self, t: float, out: torch.Tensor) -> torch.Tensor:
        """The (N, 1) column at step t, written into `out` (N, 1) of the host dtype."""
        if not self.exact:
            torch.mul(self.log_beta, t, out=out).clamp_(min=-50.0).exp_().neg_().add_(1.0)
            return out.sqrt_() if self.sqrt else out
        vals = [(1 - b**t) ** 0.5 if self.sqrt else 1 - b**t for b in self.values]
        table = torch.tensor(vals, dtype=torch.float64).to(self.host_dtype).to(out.device)
        torch.index_select(table, 0, self.index, out=out.view(-1))
        return out


_CLASSES: dict[str, type[BatchedOptimizer]] = {
    "sgd": PlainSGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def torch_optimizer(name: str, params: Any, **hparams: Any) -> torch.optim.Optimizer:
    """The torch.optim optimizer that `make_optimizer(name, ...)` matches, with the same names and
    defaults (momentum 0.9 for "momentum" and "nesterov"): what the parity tests, the benchmarks and
    the trainer step with."""
    name = check_choice("optimizer", name, OPTIMIZERS)
    kw = {**defaults(name), **hparams}
    if name in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(params, nesterov=name == "nesterov", **kw)
    cls = {"adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}[name]
    return cls(params, **kw)


def make_optimizer(name: str, n: int, p: int, *, device: str | torch.device | None = None,
                   dtype: torch.dtype = torch.float32, form: str = "torch", column_major: bool = False,
                   **hparams: Any) -> BatchedOptimizer:
    """A batched optimizer over (n, p) tensors; hyperparameters as in torch.optim (scalar or length n).
    `column_major`: its state laid out coordinate after coordinate, for an x laid out so (the
    simulator's); any layout steps correctly, a matching one is faster."""
    name = check_choice("optimizer", name, OPTIMIZERS)
    form = check_choice("form", form, FORMS)
    if form == "lecture" and name not in ("momentum", "nesterov"):
        raise ValueError(f"form 'lecture' exists for momentum and nesterov only, got optimizer {name!r}; "
                         f"allowed forms for {name}: 'torch'")
    n = check_int("n", n, 1)
    p = check_int("p", p, 1)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch dtype (torch.float32 or torch.float64), got {dtype!r}")
    if not isinstance(column_major, bool):
        raise ValueError(f"column_major must be True or False, got {column_major!r}")
    return _CLASSES[name](n, p, device=pick_device(device), dtype=dtype, form=form, hparams=hparams,
                          column_major=column_major)
