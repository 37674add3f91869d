"""K optimizers x N settings racing on one 2D surface, as one (K*N, 2) device tensor.

The simulator is the single source of every trajectory optiviz draws: `simulate()` runs it to the
end for scripts and tests, and live views call `advance()` a chunk at a time. Rows that diverge stop
where they last were finite, so no NaN or inf ever leaves this module.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from optiviz._validate import check_choice, check_fits, check_int, check_range
from optiviz.engine import preflight
from optiviz.engine.devices import pick_device
from optiviz.engine.fusion import as_graph_inputs, fused
from optiviz.engine.hparams import HPARAMS
from optiviz.engine.native import runner as native_runner
from optiviz.engine.optimizers import OPTIMIZERS, make_optimizer
from optiviz.engine.per_run import per_run
from optiviz.engine.schedules import as_schedule
from optiviz.engine.rates import run_rate
from optiviz.engine.row_block import RowBlock, coordinate_major
from optiviz.engine.surface import Surface
from optiviz.engine.surfaces import SURFACES, get_surface
from optiviz.engine.transforms import chain, check_dtype

RUNNING, CONVERGED, DIVERGED = 0, 1, 2
STATUS_NAMES = ("running", "converged", "diverged")

# Divergence, as what it is: an iterate the dtype cannot hold (non-finite loss, or a gradient too big
# to square), or one further than this many half-widths from the domain's centre. No convergent run
# goes there: heavy ball's transient overshoot on the quadratic, the worst case of the lectures'
# surfaces, stays within ~33 units (~3 half-widths) of the centre for every converging
# (lr, momentum) up to 0.999 (tests/test_divergence.py checks whole maps). The lectures' "3x the
# initial loss" is an abort tip for training runs (training/abort.py), not a definition: on a
# surface it called converging momentum runs diverged.
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

    @property
    def rate(self) -> Any:
        """The measured factor per step by which the distance to the minimum shrinks (from the loss
        excess, engine/rates.py): compare it with `rates.predicted_rate`. NaN for a diverged run."""
        rate = np.where(np.asarray(self.status) == "diverged", np.nan,
                        run_rate(self.loss, self.surface.f_ref, self.loss.dtype))
        return float(rate) if rate.ndim == 0 else rate


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
    `compile=True` fuses each step with torch.compile (see `fusion.py`): for big, long sweeps.
    `native` (None: automatic, True, False): `advance(record=False)` runs in the native C++ kernel
    (engine/native/) where the surface, optimizers and options allow, bit for bit the same runs;
    automatic takes it for chunks of 2e7 row-steps or more. `last_mode` says how the last advance
    stepped ("native", "compiled" or "eager"); `native_problem(sim)` says why not.
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
        compile: bool = False,
        native: bool | None = None,
        **shared: Any,
    ) -> None:
        self.surface = resolve_surface(surface)
        names = preflight.optimizer_names(optimizers)
        if not names:
            raise ValueError(f"optimizers must name at least one of {', '.join(OPTIMIZERS)}")
        self.optimizers = tuple(check_choice("optimizer", o, OPTIMIZERS) for o in names)
        if len(set(self.optimizers)) != len(self.optimizers):
            raise ValueError(f"optimizers must not repeat, got {list(names)}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.device = pick_device(device)
        self.dtype = dtype
        preflight.check_surface_dtype(self.surface, dtype)
        self.seed = check_int("seed", seed, 0)
        self.gtol = float(check_range("gtol", gtol, 0.0))
        self.ftol = float(check_range("ftol", ftol, 0.0))
        self.form = form
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be True or False, got {compile!r}")
        self.compiled = compile
        if native is not None and not isinstance(native, bool):
            raise ValueError(f"native must be None (automatic), True or False, got {native!r}")
        self.native = native
        self.last_mode = "eager"  # how the last advance stepped: "native", "compiled" or "eager"
        self._fused_step = fused(self._block_step, self.device) if compile else self._block_step
        self.transforms = _as_transform(transforms)
        check_dtype(self.transforms, dtype)
        self.schedule = as_schedule(schedule)

        preflight.check_hparams_arg(hparams, shared)
        per_opt = {name: dict(hparams.get(name, {})) if hparams else {} for name in self.optimizers}
        if hparams:
            unknown = set(hparams) - set(self.optimizers)
            if unknown:
                raise ValueError(f"hparams names optimizers not in the race: {sorted(unknown)}; racing: {list(self.optimizers)}")
        self._opt_kwargs = _distribute(self.optimizers, shared, per_opt, self.surface if use_surface_lrs else None)
        start_arr = self.surface.start if start is None else start
        preflight.check_start(start_arr)
        self.n, self.per_run = _infer_n(n, start_arr, self._opt_kwargs, grad_noise)
        self.rows = len(self.optimizers) * self.n
        preflight.check_rows(self.rows, self.n, len(self.optimizers), dtype, self.device)
        self._start = self._start_tensor(start_arr)
        self.set_grad_noise(grad_noise)
        self._generator = torch.Generator(device=self.device)
        self._reset_state()

    # ----------------------------------------------------------------- setup helpers
    def _per_row(self, name: str, value: Any, check: Callable[[str, Any], Any]) -> torch.Tensor:
        """A scalar or per-run value as an (R, 1) column: each optimizer's rows get the same N values."""
        v = per_run(name, value, self.n, check)
        if isinstance(v, float):
            return torch.full((self.rows, 1), v, dtype=self.dtype, device=self.device)
        t = torch.as_tensor(v, dtype=self.dtype, device=self.device)
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
        # Eager, the (R, 2) state lies one coordinate after the other: the surface reads and writes
        # whole columns. Compiled, row after row: inductor fuses the step either way, and with the
        # other layout a restarted compiled run did not repeat its first (test_compiled_simulator).
        layout = (lambda t: t.clone(memory_format=torch.contiguous_format)) if self.compiled else coordinate_major
        self.x = layout(self._start)
        self._x_prev = self.x.clone()
        self._opts = [
            make_optimizer(name, self.n, 2, device=self.device, dtype=self.dtype, form=self.form,
                           column_major=not self.compiled, **self._opt_kwargs[name])
            for name in self.optimizers
        ]
        self.grad = torch.empty_like(self.x)
        self.loss = self.surface.loss_and_gradient_into(self.x, self.grad).contiguous()
        self._loss_prev = self.loss.clone()
        (x0, x1), (y0, y1) = self.surface.domain
        self._center = ((x0 + x1) / 2, (y0 + y1) / 2)
        self._bound_sq = (_BOUND_HALF_WIDTHS * max(x1 - x0, y1 - y0) / 2) ** 2
        self._gtol_sq = self.gtol**2
        self.status = torch.zeros(self.rows, dtype=torch.int8, device=self.device)
        self.converged_at = torch.full((self.rows,), -1, dtype=torch.int64, device=self.device)
        self.diverged_at = torch.full((self.rows,), -1, dtype=torch.int64, device=self.device)
        self._running = torch.ones(self.rows, dtype=torch.bool, device=self.device)
        # (R, 2), both columns alike: a select over (R, 2) with an (R, 1) mask compiles to a slow
        # per-row loop, while a same-shape mask fuses into the flat update loop
        self._active = layout(torch.ones(self.rows, 2, dtype=torch.bool, device=self.device))
        self._steered = torch.empty_like(self.grad)
        self._blocks = [self._block(rows, ks) for rows, ks in self._plan_blocks()]
        for block in self._blocks:  # a start outside the bound or non-finite diverges at step 0
            self._check_block(block)
            block.resync()

    def _plan_blocks(self) -> list[tuple[slice, list[int]]]:
        """Row blocks stepped one after another: small races in one block (fewer kernel calls),
        big sweeps one optimizer at a time so each block's tensors stay in cache."""
        k = len(self.optimizers)
        if k == 1 or self.rows * 2 <= _ONE_BLOCK_ELEMENTS:
            return [(slice(0, self.rows), list(range(k)))]
        return [(slice(i * self.n, (i + 1) * self.n), [i]) for i in range(k)]

    def _block(self, rows: slice, ks: list[int]) -> RowBlock:
        return RowBlock(
            rows=rows, ks=ks, n=self.n, x=self.x[rows], x_prev=self._x_prev[rows], loss=self.loss[rows],
            loss_prev=self._loss_prev[rows], grad=self.grad[rows],
            active=self._active[rows], running=self._running[rows], grad_noise=self.grad_noise[rows],
            steered=self._steered[rows],
        )

    # ----------------------------------------------------------------- public control
    def set_hparams(self, optimizer: str, **hparams: Any) -> None:
        """Change hyperparameters of one optimizer; the next step uses them (state is kept)."""
        k = self.optimizers.index(check_choice("optimizer", optimizer, self.optimizers))
        self._opts[k].set_hparams(**hparams)
        self._opt_kwargs[self.optimizers[k]].update(hparams)  # a restart keeps what the user chose

    def get_hparams(self, optimizer: str) -> dict[str, Any]:
        k = self.optimizers.index(check_choice("optimizer", optimizer, self.optimizers))
        return {name: _readable(v) for name, v in self._opts[k].hparams.items()}

    def set_grad_noise(self, value: Any) -> None:
        """Gaussian noise of this std added to every gradient, to mimic minibatch SGD (seeded)."""
        self.grad_noise = self._per_row("grad_noise", value, lambda name, v: check_fits(name, check_range(name, v, 0.0), self.dtype))
        self._noise_on = bool(self.grad_noise.abs().max() > 0)
        for block in getattr(self, "_blocks", ()):
            block.grad_noise = self.grad_noise[block.rows]

    def set_transforms(self, transforms: Any) -> None:
        transform = _as_transform(transforms)
        check_dtype(transform, self.dtype)
        self.transforms = transform

    def set_schedule(self, schedule: Any) -> None:
        self.schedule = as_schedule(schedule)

    def restart(self, start: Any = None) -> None:
        """Every row back to `start` (or the previous start), optimizer state and status cleared."""
        if start is not None:
            self._start = self._start_tensor(start)
        self._reset_state()

    # ----------------------------------------------------------------- stepping
    def advance(self, steps: int = 1, *, record: bool = True) -> SimRecord | None:
        """Take `steps` steps; with record=True return every new point (else only the end state)."""
        steps = check_int("steps", steps, 0)
        if record:
            preflight.check_record(steps, self.rows, self.dtype, self.device)
        if not record and native_runner.wants_native(self, steps) and native_runner.run_native(self, steps):
            self.last_mode = "native"
            return None
        self.last_mode = "compiled" if self.compiled and steps else "eager"
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
        lr_scale = self._lr_factor(t - 1)
        # Step 1 is always eager: it starts momentum buffers, a one-off branch not worth compiling.
        fused_now = self.compiled and t > 1
        advance = self._fused_step if fused_now else self._block_step
        for block in self._blocks:
            constants = [self._opts[k].begin_step(lr_scale) for k in block.ks]
            if fused_now:
                constants = [as_graph_inputs(c, block.x) for c in constants]
            all_in, any_small = advance(block, constants, self._gradients(block, t))
            if not bool(all_in):
                self._mark_diverged(block)
                any_small = self._small_gradient(block).any()  # a diverging row's NaN hid the rest
            if bool(any_small):
                self._mark_converged(block)

    def _lr_factor(self, taken: int) -> float:
        """The schedule's lr factor for the step after `taken` steps (schedules count from 0); the
        native runner takes its factors from here too."""
        return 1.0 if self.schedule is None else float(self.schedule(taken))

    def _noise_draw(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """One optimizer's (n, 2) gradient-noise draw, the next from the seeded generator (the native
        runner makes its draws here too, in the same order)."""
        return torch.randn((self.n, 2), generator=self._generator, dtype=self.dtype, device=self.device, out=out)

    def _gradients(self, block: RowBlock, t: int) -> torch.Tensor | None:
        """What the block's optimizers step on, when that is not the plain gradient: plus seeded
        noise, then through the transforms. Done here, eagerly, outside any compiled code: random
        generators and user transforms stay plain Python, identical in both modes."""
        if not self._noise_on and self.transforms is None:
            return None
        out = block.steered
        for i in range(len(block.ks)):
            r = slice(i * block.n, (i + 1) * block.n)
            g = block.grad[r]
            if self._noise_on:
                noise = self._noise_draw()
                g = g + block.grad_noise[r] * noise
            if self.transforms is not None:
                g = self.transforms(g, t - 1)  # t = 0 for the first gradient, as in optax
            out[r].copy_(g)  # a transform reuses its output buffer on its next call
        return out

    def _block_step(self, block: RowBlock, constants: list[tuple[Any, ...]],
                    steered: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of one row block, as pure tensor work with no data-dependent branch, so that
        `compile=True` can fuse it into a few kernels. Returns two flags (0-d tensors): whether every
        row is within the allowed region, and whether one may have converged; the rare work those
        flags call for happens eagerly in `_mark_diverged` / `_mark_converged`."""
        x = block.x
        block.x_prev.copy_(x)
        block.loss_prev.copy_(block.loss)
        g = block.grad if steered is None else steered
        for i, k in enumerate(block.ks):
            # a block of one optimizer is used whole: a compiled graph then knows x[r] is all of x
            # (slicing by a size it treats as dynamic hid that and cost a third of the speed)
            r = slice(None) if len(block.ks) == 1 else slice(i * block.n, (i + 1) * block.n)
            self._opts[k].apply(x[r], g[r], constants[i])
        # Diverged rows stay where they last were finite. Compiled, a select over all rows is free
        # (fused into the update) and its graph never changes; eager, touching only them is cheaper.
        if self.compiled:
            x.copy_(torch.where(block.active, x, block.x_prev))
        else:
            block.frozen.restore(x)
        block.loss.copy_(self.surface.loss_and_gradient_into(x, block.grad))
        return self._screens(block)

    def _screens(self, block: RowBlock) -> tuple[torch.Tensor, torch.Tensor]:
        """`_in_bounds(block).all()` and `_small_gradient(block).any()` from a few reductions over
        the block (a NaN anywhere makes the first false, and the caller then redoes the second row
        by row). Exactly those two answers: each row's test is a comparison with a bound, and the
        block passes when its extreme value does. (The corner of the rows' bounding box, two
        reductions, would bound the distances, but the far last points of diverged rows push it
        past the bound every step.)"""
        nsq = _row_norm_sq(block.grad)
        low, high = torch.aminmax(block.loss)
        reach = self._distance_sq(block.x).amax()
        all_in = (low > -math.inf) & (high < math.inf) & (nsq.amax() < math.inf) & (reach <= self._bound_sq)
        return all_in, (nsq + block.settled).amin() <= self._gtol_sq

    def _distance_sq(self, xy: torch.Tensor) -> torch.Tensor:
        """Squared distance of each row of an (R, 2) tensor from the domain's centre."""
        cx, cy = self._center
        dx, dy = xy[:, 0] - cx, xy[:, 1] - cy  # per column: fuses into the surface's row loop
        return torch.addcmul(dx * dx, dy, dy)

    def _in_bounds(self, block: RowBlock) -> torch.Tensor:
        """Rows that have not diverged: finite loss, a gradient the dtype can square (Adam's second
        moment would overflow to inf and freeze the run) and inside the bound. Frozen rows always
        are: they sit at their last finite point."""
        ok = torch.isfinite(block.loss) & torch.isfinite(_row_norm_sq(block.grad))
        ok &= self._distance_sq(block.x) <= self._bound_sq
        return ok

    def _small_gradient(self, block: RowBlock) -> torch.Tensor:
        """Running rows whose gradient is below gtol: the only ones the loss-change test can settle."""
        return (_row_norm_sq(block.grad) <= self._gtol_sq) & block.running

    def _check_block(self, block: RowBlock) -> None:
        """Both status checks, eagerly (at a (re)start, where a start may already be out)."""
        if not bool(self._in_bounds(block).all()):
            self._mark_diverged(block)
        if self.t and bool(self._small_gradient(block).any()):
            self._mark_converged(block)

    def _mark_diverged(self, block: RowBlock) -> None:
        """Rows out at this step diverge now: back to their last finite point, frozen there."""
        new = torch.nonzero(~self._in_bounds(block) & block.active[:, 0]).reshape(-1)
        # by index: usually a few rows of many, and per-row selects over all of them cost more
        block.x.index_copy_(0, new, block.x_prev.index_select(0, new))
        block.loss.index_copy_(0, new, block.loss_prev.index_select(0, new))
        block.grad.index_fill_(0, new, 0.0)
        block.active.index_fill_(0, new, False)
        block.running.index_fill_(0, new, False)
        block.settled.index_fill_(0, new, math.inf)
        self.status[block.rows].index_fill_(0, new, DIVERGED)
        self.diverged_at[block.rows].index_fill_(0, new, self.t)
        block.frozen.add(new, block.x)

    def _mark_converged(self, block: RowBlock) -> None:
        """Rows with a small gradient whose loss also stopped changing converge now."""
        small = self._small_gradient(block)
        small &= (block.loss - block.loss_prev).abs() <= self.ftol * (1.0 + block.loss.abs())
        if bool(small.any()):
            block.running &= ~small
            block.settled.masked_fill_(small, math.inf)
            self.status[block.rows].masked_fill_(small, CONVERGED)
            self.converged_at[block.rows].masked_fill_(small, self.t)

    # ----------------------------------------------------------------- whole runs
    def run(self, steps: int) -> Run:
        """Run `steps` steps from the current state and return the whole path (start included)."""
        steps = check_int("steps", steps, 0)
        preflight.check_record(steps + 1, self.rows, self.dtype, self.device)
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
