"""K optimizers x N settings racing on one 2D surface, as one (K*N, 2) device tensor.

The simulator is the single source of every trajectory optiviz draws: `simulate()` runs it to the
end for scripts and tests, and live views call `advance()` a chunk at a time. Rows that diverge stop
where they last were finite, so no NaN or inf ever leaves this module.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
import weakref

import numpy as np
import torch

from optiviz._validate import check_choice, check_int, check_range
from optiviz.engine.devices import pick_device
from optiviz.engine.hparams import HPARAMS
from optiviz.engine.optimizers import OPTIMIZERS, make_optimizer
from optiviz.engine.schedules import as_schedule
from optiviz.engine.surfaces import SURFACES, Surface, get_surface
from optiviz.engine.transforms import chain

RUNNING, CONVERGED, DIVERGED = 0, 1, 2
STATUS_NAMES = ("running", "converged", "diverged")

# Divergence bound: a run further than this many half-widths from the domain's centre has left.
_BOUND_HALF_WIDTHS = 100.0
# Below this many elements all rows are stepped as one block; above, one optimizer's rows at a time.
_ONE_BLOCK_ELEMENTS = 1 << 16


@dataclass
class SimRecord:
    """What one `advance()` produced: every new point, its loss, and the status after the chunk."""

    steps: np.ndarray  # (s,) step index of each row of points, 1-based
    points: np.ndarray  # (s, R, 2)
    loss: np.ndarray  # (s, R)
    status: np.ndarray  # (R,) codes RUNNING / CONVERGED / DIVERGED
    converged_at: np.ndarray  # (R,) step or -1
    diverged_at: np.ndarray  # (R,) step or -1
    step_length: np.ndarray  # (s, R) |x_t - x_{t-1}|


@dataclass
class Run:
    """A finished simulation: arrays shaped like the request (see `simulate`)."""

    surface: Surface
    optimizers: tuple[str, ...]
    path: np.ndarray
    loss: np.ndarray
    status: Any  # "running" | "converged" | "diverged", or an array of them
    diverged_at: Any
    converged_at: Any
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def final_loss(self) -> np.ndarray:
        return self.loss[..., -1]


def resolve_surface(surface: str | Surface, **params: Any) -> Surface:
    """A Surface, a built-in name, or a user's expression in x and y."""
    if isinstance(surface, Surface):
        return surface
    if not isinstance(surface, str):
        raise ValueError(f"surface must be a name ({', '.join(SURFACES)}) or an expression in x and y, got {surface!r}")
    return get_surface(surface, **params)


class Simulator:
    """Incremental, batched optimisation on a 2D surface.

    Rows are laid out optimizer-major: rows [k*N, (k+1)*N) belong to `optimizers[k]`.
    Hyperparameters are shared keyword arguments (applied to every optimizer that takes them)
    overridden by `hparams={"adam": {"lr": 0.1}}`; any of them may be a length-N array.
    """

    def __init__(
        self,
        surface: str | Surface,
        optimizers: str | Sequence[str],
        *,
        start: Any = None,
        n: int | None = None,
        hparams: Mapping[str, Mapping[str, Any]] | None = None,
        form: str = "torch",
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        grad_noise: Any = 0.0,
        transforms: Any = None,
        schedule: Any = None,
        gtol: float = 1e-5,
        ftol: float = 1e-9,
        use_surface_lrs: bool = False,
        **shared: Any,
    ) -> None:
        self.surface = resolve_surface(surface)
        names = (optimizers,) if isinstance(optimizers, str) else tuple(optimizers)
        if not names:
            raise ValueError(f"optimizers must name at least one of {', '.join(OPTIMIZERS)}")
        self.optimizers = tuple(check_choice("optimizer", o, OPTIMIZERS) for o in names)
        if len(set(self.optimizers)) != len(self.optimizers):
            raise ValueError(f"optimizers must not repeat, got {list(names)}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.device = pick_device(device)
        self.dtype = dtype
        self.seed = check_int("seed", seed, 0)
        self.gtol = float(check_range("gtol", gtol, 0.0))
        self.ftol = float(check_range("ftol", ftol, 0.0))
        self.form = form
        self.transforms = _as_transform(transforms)
        self.schedule = as_schedule(schedule)

        per_opt = {name: dict(hparams.get(name, {})) if hparams else {} for name in self.optimizers}
        if hparams:
            unknown = set(hparams) - set(self.optimizers)
            if unknown:
                raise ValueError(f"hparams names optimizers not in the race: {sorted(unknown)}; racing: {list(self.optimizers)}")
        self._opt_kwargs = _distribute(self.optimizers, shared, per_opt, self.surface if use_surface_lrs else None)
        start_arr = self.surface.start if start is None else start
        self.n, self.per_run = _infer_n(n, start_arr, self._opt_kwargs, grad_noise)
        self.rows = len(self.optimizers) * self.n
        self._start = self._start_tensor(start_arr)
        self.set_grad_noise(grad_noise)
        self._generator = torch.Generator(device=self.device)
        self.events: list[tuple[int, str, str, Any, Any]] = []  # (step, optimizer, name, old, new)
        self._reset_state()

    # ----------------------------------------------------------------- setup helpers
    def _per_row(self, name: str, value: Any) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(value, dtype=float), dtype=self.dtype, device=self.device).reshape(-1)
        if t.numel() == 1:
            return t.expand(self.rows).reshape(self.rows, 1).contiguous()
        if t.numel() != self.n:
            raise ValueError(f"{name} must be a scalar or have one value per run (N={self.n}), got {t.numel()}")
        return t.repeat(len(self.optimizers)).reshape(self.rows, 1)

    def _start_tensor(self, start: Any) -> torch.Tensor:
        try:
            arr = np.asarray(start, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"start must be a point (x, y) or an (N, 2) array of points, got {start!r}") from None
        if arr.shape == (2,):
            arr = np.broadcast_to(arr, (self.n, 2))
        if arr.shape != (self.n, 2):
            raise ValueError(f"start must have shape (2,) or (N, 2) with N={self.n}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("start must be finite")
        t = torch.tensor(np.array(arr), dtype=self.dtype, device=self.device)
        return t.repeat(len(self.optimizers), 1)

    def _reset_state(self) -> None:
        self.t = 0
        self._generator.manual_seed(self.seed)
        self.x = self._start.clone()
        self._x_prev = self.x.clone()
        self._opts = [
            make_optimizer(name, self.n, 2, device=self.device, dtype=self.dtype, form=self.form, **self._opt_kwargs[name])
            for name in self.optimizers
        ]
        loss, grad = self.surface.loss_and_gradient(self.x)
        self.loss, self.grad = loss.contiguous(), grad.contiguous()
        self._loss_prev = self.loss.clone()
        (x0, x1), (y0, y1) = self.surface.domain
        self._center = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2], dtype=self.dtype, device=self.device)
        self._bound = _BOUND_HALF_WIDTHS * max(x1 - x0, y1 - y0) / 2
        # the lectures' 3x rule, with a floor so a start at the minimum does not "diverge" on round-off
        f0 = torch.nan_to_num(self.loss, nan=0.0, posinf=0.0, neginf=0.0)
        floor = self.surface.f_ref + 1e-3 * _loss_span(self.surface)
        self._loss_limit = torch.clamp(self.surface.divergence_threshold(f0), min=floor)
        self.status = torch.zeros(self.rows, dtype=torch.int8, device=self.device)
        self.converged_at = torch.full((self.rows,), -1, dtype=torch.int64, device=self.device)
        self.diverged_at = torch.full((self.rows,), -1, dtype=torch.int64, device=self.device)
        self._running = torch.ones(self.rows, dtype=torch.bool, device=self.device)
        self._active = torch.ones(self.rows, 1, dtype=torch.bool, device=self.device)
        self._frozen: dict[int, torch.Tensor] = {}  # block start -> indices of its diverged rows
        self._blocks = self._plan_blocks()
        for rows, _ in self._blocks:  # a start outside the bound or non-finite diverges at step 0
            self._check_block(rows)

    def _plan_blocks(self) -> list[tuple[slice, list[int]]]:
        """Row blocks stepped one after another: small races in one block (fewer kernel calls),
        big sweeps one optimizer at a time so each block's tensors stay in cache."""
        k = len(self.optimizers)
        if k == 1 or self.rows * 2 <= _ONE_BLOCK_ELEMENTS:
            return [(slice(0, self.rows), list(range(k)))]
        return [(slice(i * self.n, (i + 1) * self.n), [i]) for i in range(k)]

    # ----------------------------------------------------------------- public control
    def set_hparams(self, optimizer: str, **hparams: Any) -> None:
        """Change hyperparameters of one optimizer; the next step uses them (state is kept)."""
        k = self.optimizers.index(check_choice("optimizer", optimizer, self.optimizers))
        opt = self._opts[k]
        old = {name: _readable(opt.hparams.get(name)) for name in hparams}
        opt.set_hparams(**hparams)
        self._opt_kwargs[optimizer].update(hparams)  # a restart keeps what the user chose
        for name, value in hparams.items():
            self.events.append((self.t, optimizer, name, old[name], _readable(value)))

    def get_hparams(self, optimizer: str) -> dict[str, Any]:
        k = self.optimizers.index(check_choice("optimizer", optimizer, self.optimizers))
        return {name: _readable(v) for name, v in self._opts[k].hparams.items()}

    def set_grad_noise(self, value: Any) -> None:
        """Gaussian noise of this std added to every gradient, to mimic minibatch SGD (seeded)."""
        self.grad_noise = self._per_row("grad_noise", check_range("grad_noise", value, 0.0))
        self._noise_on = bool(self.grad_noise.abs().max() > 0)

    def set_transforms(self, transforms: Any) -> None:
        self.transforms = _as_transform(transforms)

    def set_schedule(self, schedule: Any) -> None:
        self.schedule = as_schedule(schedule)

    def restart(self, start: Any = None) -> None:
        """Every row back to `start` (or the previous start), optimizer state and status cleared."""
        if start is not None:
            self._start = self._start_tensor(start)
        self.events.clear()
        self._reset_state()

    def rows_of(self, optimizer: str) -> slice:
        k = self.optimizers.index(optimizer)
        return slice(k * self.n, (k + 1) * self.n)

    # ----------------------------------------------------------------- stepping
    def advance(self, steps: int = 1, *, record: bool = True) -> SimRecord | None:
        """Take `steps` steps; with record=True return every new point (else only the end state)."""
        steps = check_int("steps", steps, 0)
        before = self.x.clone() if record else None
        pts = torch.empty((steps, self.rows, 2), dtype=self.dtype, device=self.device) if record else None
        losses = torch.empty((steps, self.rows), dtype=self.dtype, device=self.device) if record else None
        with _flush_denormals():
            for i in range(steps):
                self._step()
                if record:
                    pts[i] = self.x
                    losses[i] = self.loss
        if not record:
            return None
        first = self.t - steps
        prev = torch.cat([before.unsqueeze(0), pts[:-1]])
        length = torch.linalg.vector_norm(pts - prev, dim=-1)
        return SimRecord(
            steps=np.arange(first + 1, self.t + 1),
            points=pts.cpu().numpy(),
            loss=losses.cpu().numpy(),
            status=self.status.cpu().numpy(),
            converged_at=self.converged_at.cpu().numpy(),
            diverged_at=self.diverged_at.cpu().numpy(),
            step_length=length.cpu().numpy(),
        )

    def _step(self) -> None:
        self.t += 1
        t = self.t
        lr_scale = 1.0 if self.schedule is None else float(self.schedule(t - 1))  # schedules count from 0
        for rows, ks in self._blocks:
            x = self.x[rows]
            self._x_prev[rows].copy_(x)
            self._loss_prev[rows].copy_(self.loss[rows])
            for k in ks:
                r = slice(k * self.n, (k + 1) * self.n)
                g = self.grad[r]
                if self._noise_on:
                    noise = torch.randn(g.shape, generator=self._generator, dtype=self.dtype, device=self.device)
                    g = g + self.grad_noise[r] * noise
                if self.transforms is not None:
                    g = self.transforms(g, t - 1)  # t = 0 for the first gradient, as in optax
                self._opts[k].step(self.x[r], g, lr_scale=lr_scale)
            frozen = self._frozen.get(rows.start)
            if frozen is not None:  # diverged rows stay where they last were finite
                x.index_copy_(0, frozen, self._x_prev[rows].index_select(0, frozen))
            loss, grad = self.surface.loss_and_gradient(x)
            self.loss[rows] = loss
            self.grad[rows] = grad
            self._check_block(rows)

    def _check_block(self, rows: slice) -> None:
        """Mark rows that diverged (restoring their last finite point) or converged at this step."""
        x, loss, grad = self.x[rows], self.loss[rows], self.grad[rows]
        ok = loss <= self._loss_limit[rows]  # False for NaN and +inf too
        ok &= _row_norm_sq(x - self._center) <= self._bound**2
        if not bool(ok.all()):
            new = ~ok & self._active[rows, 0]
            if bool(new.any()):
                col = new[:, None]
                x.copy_(torch.where(col, self._x_prev[rows], x))
                loss.copy_(torch.where(new, self._loss_prev[rows], loss))
                grad.masked_fill_(col, 0.0)
                self._active[rows] &= ~col
                self._running[rows] &= ~new
                self.status[rows].masked_fill_(new, DIVERGED)
                self.diverged_at[rows].masked_fill_(new, self.t)
                self._frozen[rows.start] = torch.nonzero(~self._active[rows, 0]).reshape(-1)
        if self.t == 0:
            return
        small = _row_norm_sq(grad) <= self.gtol**2
        small &= self._running[rows]
        if not bool(small.any()):  # the usual case: skip the loss-change test
            return
        small &= (loss - self._loss_prev[rows]).abs() <= self.ftol * (1.0 + loss.abs())
        if bool(small.any()):
            self._running[rows] &= ~small
            self.status[rows].masked_fill_(small, CONVERGED)
            self.converged_at[rows].masked_fill_(small, self.t)

    # ----------------------------------------------------------------- whole runs
    def run(self, steps: int) -> Run:
        """Run `steps` steps from the current state and return the whole path (start included)."""
        steps = check_int("steps", steps, 0)
        start_pts = self.x.clone()
        start_loss = self.loss.clone()
        rec_pts = torch.empty((steps + 1, self.rows, 2), dtype=self.dtype, device=self.device)
        rec_loss = torch.empty((steps + 1, self.rows), dtype=self.dtype, device=self.device)
        rec_pts[0], rec_loss[0] = start_pts, start_loss
        with _flush_denormals():
            for i in range(1, steps + 1):
                self._step()
                rec_pts[i] = self.x
                rec_loss[i] = self.loss
        path = rec_pts.permute(1, 0, 2).cpu().numpy()  # (R, steps+1, 2)
        loss = rec_loss.T.cpu().numpy()
        status = self.status_names()
        return Run(
            surface=self.surface,
            optimizers=self.optimizers,
            path=path,
            loss=loss,
            status=status,
            diverged_at=self.diverged_at.cpu().numpy(),
            converged_at=self.converged_at.cpu().numpy(),
            hparams={name: self.get_hparams(name) for name in self.optimizers},
        )

    def status_names(self) -> np.ndarray:
        return np.array(STATUS_NAMES, dtype=object)[self.status.cpu().numpy()]


def simulate(
    surface: str | Surface,
    optimizer: str | Sequence[str],
    start: Any = None,
    steps: int = 100,
    **kwargs: Any,
) -> Run:
    """Run optimizer(s) on a surface; arrays shaped by what was asked.

    One optimizer, scalar hyperparameters: path (steps+1, 2), loss (steps+1,), status a string.
    A length-N hyperparameter or an (N, 2) start adds a leading N axis; a list of optimizers adds a
    leading K axis before that.
    """
    steps = check_int("steps", steps, 0)
    sim = Simulator(surface, optimizer, start=start, **kwargs)
    run = sim.run(steps)
    k, n = len(sim.optimizers), sim.n
    lead = ((k,) if not isinstance(optimizer, str) else ()) + ((n,) if n > 1 or sim.per_run else ())

    def shape(a: np.ndarray) -> Any:
        out = a.reshape(lead + a.shape[1:]) if lead else a[0]
        return out

    run.path = shape(run.path)
    run.loss = shape(run.loss)
    run.status = shape(run.status)
    run.diverged_at = shape(run.diverged_at)
    run.converged_at = shape(run.converged_at)
    if not lead:
        run.status = str(run.status)
        run.diverged_at = int(run.diverged_at)
        run.converged_at = int(run.converged_at)
    return run


# --------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _flush_denormals() -> Iterator[None]:
    """Runs converging in float32 sink into denormals, which make CPU ops ~100x slower; flush them
    to zero while stepping (this thread only), then restore torch's default."""
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


def _row_norm_sq(v: torch.Tensor) -> torch.Tensor:
    """|v|^2 per row of an (R, 2) tensor from its two columns (a reduction over a length-2 axis,
    or a complex abs, is several times slower on CPU)."""
    return torch.addcmul(v[:, 0] * v[:, 0], v[:, 1], v[:, 1])


_SPANS: "weakref.WeakKeyDictionary[Surface, float]" = weakref.WeakKeyDictionary()


def _loss_span(surface: Surface) -> float:
    """max - min of the loss over the plotting domain: the scale the divergence floor is measured in."""
    if surface not in _SPANS:
        z = surface.grid(64)[2]
        z = z[np.isfinite(z)]
        _SPANS[surface] = float(z.max() - z.min()) if z.size else 1.0
    return _SPANS[surface]


def _as_transform(transforms: Any) -> Callable | None:
    if transforms is None or transforms == ():
        return None
    if isinstance(transforms, (list, tuple)):
        return chain(*transforms)
    if callable(transforms):
        return transforms
    raise ValueError(f"transforms must be a transform (e.g. ov.clip_by_norm(1.0)) or a list of them, got {transforms!r}")


def _distribute(
    optimizers: tuple[str, ...],
    shared: Mapping[str, Any],
    per_opt: Mapping[str, dict[str, Any]],
    surface: Surface | None,
) -> dict[str, dict[str, Any]]:
    """Shared kwargs go to every optimizer that takes them; a kwarg none of them takes is an error."""
    out: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for name in optimizers:
        accepted = set(HPARAMS[name])
        kw = {k: v for k, v in shared.items() if k in accepted}
        used |= set(kw)
        if surface is not None and "lr" not in kw and name in surface.lrs:
            kw["lr"] = surface.lrs[name]
        kw.update(per_opt.get(name, {}))
        out[name] = kw
    unused = set(shared) - used
    if unused:
        allowed = sorted(set().union(*(HPARAMS[o] for o in optimizers)))
        raise ValueError(
            f"unknown hyperparameter(s) {sorted(unused)} for {', '.join(optimizers)}; allowed: {', '.join(allowed)}, "
            "plus device, dtype, seed, grad_noise, transforms, schedule, form, start, n"
        )
    return out


def _length(value: Any) -> int:
    if isinstance(value, (bool, str)) or value is None:
        return 1
    if isinstance(value, torch.Tensor):
        return int(value.numel()) if value.ndim >= 1 else 1
    arr = np.asarray(value, dtype=object)
    return int(arr.shape[0]) if arr.ndim >= 1 else 1


def _is_per_run(value: Any) -> bool:
    """A value given as an array (one per run), as opposed to a scalar, a flag or a name."""
    if isinstance(value, torch.Tensor):
        return value.ndim >= 1
    return isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) >= 1


def _infer_n(n: int | None, start: Any, kwargs: dict[str, dict[str, Any]], grad_noise: Any) -> tuple[int, bool]:
    """N, the one length every per-run array shares, and whether anything was given per run
    (then results keep their N axis even when N is 1)."""
    lengths: dict[str, int] = {}
    per_run = n is not None or _is_per_run(grad_noise)
    for opt_kw in kwargs.values():
        for name, value in opt_kw.items():
            parts = value if name == "betas" else (value,)
            for part in parts:
                per_run |= _is_per_run(part)
                if _length(part) > 1:
                    lengths[name] = _length(part)
    if _length(grad_noise) > 1:
        lengths["grad_noise"] = _length(grad_noise)
    try:
        start_arr = np.asarray(start, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"start must be a point (x, y) or an (N, 2) array of points, got {start!r}") from None
    if start_arr.ndim == 2:
        lengths["start"] = start_arr.shape[0]
        per_run = True
    if n is not None:
        n = check_int("n", n, 1)
        lengths["n"] = n
    distinct = set(lengths.values())
    if len(distinct) > 1:
        raise ValueError(f"per-run arrays must all have the same length N; got lengths {lengths}")
    return (distinct.pop() if distinct else 1), per_run


def _readable(value: Any) -> Any:
    """A hyperparameter as a user would read it: a float, or a numpy array when per-run."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().reshape(-1).cpu()
        if flat.numel() == 1 or bool((flat == flat[0]).all()):
            return float(flat[0])
        return flat.numpy()
    if isinstance(value, (tuple, list)):
        return type(value)(_readable(v) for v in value)
    return value
