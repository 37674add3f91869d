"""Step a Simulator with the native kernel: its tensors in, many steps, its tensors out.

The kernel reads and writes the simulator's own state (positions, losses, gradients, statuses and
their steps, each optimizer's buffers and step count), so a native chunk and an eager one can
follow each other in any order. `native_problem` says why a simulator cannot use it; the
simulator then steps with torch as before and says so in `Simulator.last_mode`.
"""
from __future__ import annotations

import ctypes
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from optiviz.engine.native import build
from optiviz.engine.native.kernel_source import LANES, OPTIMIZER_IDS, kernel_source
from optiviz.engine.native.surface_code import Unsupported, surface_source
from optiviz.engine.native.torch_sqrt import one_mkl_thread, sqrt_function

from optiviz.engine.optimizers import BatchedOptimizer

# The simulator imports this module, so its type is named, not imported (no import cycle).
Simulator = Any

# Below this much work (rows x steps) in one advance the automatic choice steps with torch: a cold
# build (~1 to 3 s, once per surface and optimizer set) would cost more than it saves.
AUTO_MIN_WORK = 20_000_000
_P = ctypes.c_void_p


class _Args(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int64), ("steps", ctypes.c_int64), ("t0", ctypes.c_int64), ("threads", ctypes.c_int64),
                ("x", _P), ("loss", _P), ("grad", _P), ("x_prev", _P), ("loss_prev", _P),
                ("status", _P), ("conv_at", _P), ("div_at", _P), ("running", _P), ("active", _P), ("started", _P),
                ("hp", _P), ("hp64", _P), ("table", _P), ("table_index", _P), ("scale", _P), ("noise", _P), ("noise_std", _P), ("state0", _P), ("state1", _P), ("state2", _P),
                ("cx", ctypes.c_double), ("cy", ctypes.c_double), ("bound_sq", ctypes.c_double),
                ("gtol_sq", ctypes.c_double), ("ftol", ctypes.c_double), ("sqrt32", _P), ("sqrt64", _P),
                ("flags", ctypes.c_int32)]
_ROOTED = ("adagrad", "rmsprop", "adam")  # the optimizers that take square roots


def native_problem(sim: Simulator) -> str | None:
    """Why this simulator cannot step natively now (a readable reason), or None when it can."""
    if sim.device.type != "cpu":
        return f"the native kernel runs on the CPU, this run is on {sim.device.type}"
    if sim.form != "torch":
        return "form='lecture' is stepped with torch"
    if sim.transforms is not None:
        return "gradient transforms are stepped with torch"
    if build.compiler() is None:
        return "no C++ compiler found (set CXX or install g++)"
    for opt in sim._opts:
        if not (isinstance(opt.lr_scale, float) and opt.lr_scale == 1.0):
            return "an lr scale is stepped with torch"
        if opt.name in _ROOTED and sqrt_function(sim.dtype) is None:
            return f"torch's sqrt here is neither IEEE's nor MKL's, so {opt.name} is stepped with torch"
        if opt.name == "adam" and any(bc is not None and not bc.exact for bc in (opt._bc1, opt._bc2)):
            return f"more than {opt._bc1.EXACT_MAX if opt._bc1 else opt._bc2.EXACT_MAX} distinct betas are stepped with torch"
    try:
        surface_source(sim.surface)
    except Unsupported as err:
        return f"surface {sim.surface.name!r} uses {err}"
    return None


def wants_native(sim: Simulator, steps: int) -> bool:
    """Whether `advance(steps, record=False)` should use the kernel (sim.native: True, False or
    None = automatic, which takes it for chunks of at least AUTO_MIN_WORK row-steps)."""
    if sim.native is False or steps == 0:
        return False
    if sim.native is None and sim.rows * steps < AUTO_MIN_WORK:
        return False
    return native_problem(sim) is None


def _source(sim: Simulator) -> str:
    return kernel_source(surface_source(sim.surface), sim.optimizers, sim.dtype == torch.float64)


_failed: set[str] = set()  # sources whose build failed in this process (warned once, not retried)
_MAX_PIECE = 4096  # steps per kernel call: bounds Adam's per-step table for many distinct betas
_NOISE_BYTES = 1 << 27  # gradient-noise draws held for one kernel call (128 MiB): bounds its steps


def run_native(sim: Simulator, steps: int) -> bool:
    """`steps` steps of every row in the kernel (the caller checked `native_problem`); False, with a
    warning the first time, when the kernel cannot be built: the caller then steps with torch."""
    source = _source(sim)
    if source in _failed:
        return False
    try:
        lib = build.load(source)
    except (RuntimeError, OSError) as err:
        _failed.add(source)
        warnings.warn(f"native kernel: {str(err).splitlines()[0]}; stepping with torch", RuntimeWarning, stacklevel=3)
        return False
    most = _MAX_PIECE
    if sim._noise_on:
        most = max(1, min(most, _NOISE_BYTES // (sim.rows * 2 * sim.x.element_size())))
    pool = _NoisePool(sim, min(most, steps)) if sim._noise_on else None
    rows = _RowMajor()
    done = 0
    try:  # a schedule that raises stops the run after the calls made so far, their state all written
        while done < steps:
            piece = min(most, steps - done)
            _run(sim, lib, piece, rows, pool)
            done += piece
    finally:
        rows.copy_back()
        for block in sim._blocks:
            block.resync()
    return True


def _run(sim: Simulator, lib: ctypes.CDLL, steps: int, row_major: _RowMajor, pool: _NoisePool | None) -> None:
    """One kernel call per optimizer over its rows. The preparation is numpy (single-threaded):
    on a busy machine torch's small parallel ops wait at barriers for milliseconds each."""
    n = sim.n
    (x0, x1), (y0, y1) = sim.surface.domain
    active = np.ascontiguousarray(sim._active.numpy()[:, 0], dtype=np.uint8)
    keep: list[Any] = []  # arrays the kernel reads, alive until it returns
    x, grad, x_prev = (row_major(t) for t in (sim.x, sim.grad, sim._x_prev))
    scale = _schedule_factors(sim, steps)
    noise = None if pool is None else pool.draw(steps)
    keep += [scale, noise]
    for k, opt in enumerate(sim._opts):
        rows = slice(k * n, (k + 1) * n)
        hp, hp64, flags, table, index = _hparams(opt, steps)
        buffers = [_ptr(row_major(b)) if b is not None else None for b in _buffers(opt)]
        scratch = np.zeros((opt.n, 2), dtype=hp.dtype)
        started = _started(opt)
        keep += [hp, hp64, table, index, scratch, started]
        state = [b if b is not None else scratch.ctypes.data for b in buffers]
        args = _Args(n=n, steps=steps, t0=opt.t, threads=torch.get_num_threads(),
                     x=_ptr(x[rows]), loss=_ptr(sim.loss[rows]), grad=_ptr(grad[rows]),
                     x_prev=_ptr(x_prev[rows]), loss_prev=_ptr(sim._loss_prev[rows]),
                     status=_ptr(sim.status[rows]), conv_at=_ptr(sim.converged_at[rows]),
                     div_at=_ptr(sim.diverged_at[rows]), running=_ptr(sim._running[rows]),
                     active=active[rows].ctypes.data, started=started.ctypes.data, hp=hp.ctypes.data,
                     hp64=hp64.ctypes.data, table=table.ctypes.data,
                     table_index=index.ctypes.data if index.any() else None,
                     scale=None if scale is None else scale.ctypes.data,
                     noise=None if noise is None else _ptr(noise[k]),
                     noise_std=None if noise is None else _ptr(sim.grad_noise[rows]),
                     state0=state[0], state1=state[1], state2=state[2],
                     cx=(x0 + x1) / 2, cy=(y0 + y1) / 2, bound_sq=sim._bound_sq, gtol_sq=sim._gtol_sq,
                     ftol=sim.ftol, flags=flags, sqrt32=_sqrt(torch.float32), sqrt64=_sqrt(torch.float64))
        _run_blocks(lib, args, OPTIMIZER_IDS[opt.name], int(sim.dtype == torch.float64), n)
        _write_back(opt, started, steps)
    sim._active.numpy()[:] = active.astype(bool)[:, None]
    sim.t += steps


def _schedule_factors(sim: Simulator, steps: int) -> np.ndarray | None:
    """The schedule's lr factor for each of the next `steps` steps, as the torch step takes it
    (`Simulator._lr_factor`), or None without a schedule."""
    if sim.schedule is None:
        return None
    return np.array([sim._lr_factor(sim.t + s) for s in range(steps)], dtype=np.float64)


class _NoisePool:
    """The gradient-noise draws for one kernel call, in memory reused from call to call (fresh
    pages for each call cost more than the kernel). `draw(steps)` makes the draws the torch path
    would make for the next `steps` steps, from the simulator's generator and in its order (each
    step, block by block, an (n, 2) draw per optimizer), so the generator ends where it would have.
    Per optimizer they lie as (lane blocks, steps, LANES, 2): a block of lanes reads one contiguous
    piece per step (a (steps, n, 2) layout made the kernel slower than the draws themselves)."""

    def __init__(self, sim: Simulator, most_steps: int) -> None:
        self.sim = sim
        self.blocks = -(-sim.n // LANES)
        kw = {"dtype": sim.dtype, "device": sim.device}
        self._store = torch.empty((len(sim.optimizers), self.blocks * most_steps * LANES * 2), **kw)
        self._step = torch.zeros((self.blocks * LANES, 2), **kw)  # one draw, padded to whole blocks

    def draw(self, steps: int) -> list[torch.Tensor]:
        sim, n = self.sim, self.sim.n
        size = self.blocks * steps * LANES * 2
        draws = [self._store[k, :size].view(self.blocks, steps, LANES, 2) for k in range(len(sim.optimizers))]
        for s in range(steps):
            for block in sim._blocks:
                for k in block.ks:
                    sim._noise_draw(out=self._step[:n])
                    draws[k][:, s].copy_(self._step.view(self.blocks, LANES, 2))
        return draws


def _run_blocks(lib: ctypes.CDLL, args: _Args, opt: int, float64: int, n: int) -> None:
    """The kernel over all rows, split into ranges of lane blocks run by `threads` Python threads
    (ctypes releases the GIL). Several ranges per thread, taken as threads come free: on a shared
    machine a thread that loses its core leaves its work to the others instead of making them wait
    (OpenMP threads spinning at a barrier cost 4x here)."""
    blocks = -(-n // LANES)
    threads = max(1, min(args.threads, blocks))
    if threads == 1:
        lib.optiviz_run(ctypes.byref(args), opt, float64, 0, blocks)
        return
    pieces = min(blocks, 4 * threads)
    bounds = [blocks * i // pieces for i in range(pieces + 1)]
    list(_pool(threads).map(lambda i: lib.optiviz_run(ctypes.byref(args), opt, float64, bounds[i], bounds[i + 1]),
                            range(pieces)))


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    if threads not in _pools:
        _pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="optiviz-native",
                                             initializer=one_mkl_thread)
    return _pools[threads]


def _sqrt(dtype: torch.dtype) -> int | None:
    fn = sqrt_function(dtype)
    return fn or None  # 0 (std::sqrt) and None (not used) both pass a null pointer


class _RowMajor:
    """Row-major stand-ins for the simulator's column-major state (the kernel reads rows; the
    simulator keeps its state one coordinate after the other for torch's ops): made at the first
    kernel call of a run, kept for the rest, copied back once at the end."""

    def __init__(self) -> None:
        self._copies: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.is_contiguous():
            return t
        if id(t) not in self._copies:
            self._copies[id(t)] = (t, t.contiguous())
        return self._copies[id(t)][1]

    def copy_back(self) -> None:
        for mine, theirs in self._copies.values():
            mine.copy_(theirs)


def _ptr(t: torch.Tensor) -> int:
    if not t.is_contiguous():
        raise RuntimeError("the native kernel needs contiguous tensors")
    return t.data_ptr()


def _column(opt: BatchedOptimizer, c: Any, dtype: Any) -> np.ndarray:
    """A prepared kernel constant (a float, or an (N, P) tensor) as one value per row, rounded as
    eager rounds it (a float rounded once to the run's dtype, as torch casts a scalar)."""
    if isinstance(c, torch.Tensor):
        return c.numpy()[:, 0] if c.ndim == 2 and c.shape[1] != 1 else c.numpy().reshape(-1)
    return np.full(opt.n, c, dtype=dtype)


def _hparams(opt: BatchedOptimizer, steps: int) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """(hp (6, N) in the run's dtype, hp64 (2, N), flags, Adam's table, its per-row index)."""
    zero = 0.0
    cols = [opt._lr, opt._wd]
    decay64: Any = zero
    flags = 2 if isinstance(opt._wd, float) and opt._wd == 0.0 else 0
    table, index = np.zeros(2 * steps), np.zeros(opt.n, dtype=np.int32)
    if opt.name in ("sgd", "momentum", "nesterov"):
        mu = getattr(opt, "_mu", 0.0)
        if isinstance(mu, float) and mu == 0.0:
            flags |= 1
        cols += [mu, opt._omd, zero, zero]
    elif opt.name == "adagrad":
        cols += [opt._eps, zero, zero, zero]
        decay64 = opt._lr_decay64
    elif opt.name == "rmsprop":
        cols += [opt._alpha, opt._oma, opt._eps, opt._mom]
        flags |= 4 if opt._centered else 0
    else:
        cols += [opt._omb1, opt._b2_k, opt._omb2, opt._eps]
        flags |= 8 if opt._amsgrad else 0
        table, index = _adam_table(opt, steps)
    dtype = np.float64 if opt.dtype == torch.float64 else np.float32
    hp = np.ascontiguousarray(np.stack([_column(opt, c, dtype) for c in cols]), dtype=dtype)
    hp64 = np.ascontiguousarray(np.stack([_column(opt, opt._lr64, np.float64), _column(opt, decay64, np.float64)]),
                                dtype=np.float64)
    return hp, hp64, flags, table, index


def _adam_table(opt: BatchedOptimizer, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct (beta1, beta2) and step: 1 - beta1^t and (1 - beta2^t) ** 0.5, in Python's
    float64 arithmetic as optimizers.Adam works them out (t counted as a float)."""
    b1 = np.broadcast_to(np.asarray(opt._b1, dtype=np.float64), (opt.n,))
    b2 = np.broadcast_to(np.asarray(opt._b2, dtype=np.float64), (opt.n,))
    if isinstance(opt._b1, float) and isinstance(opt._b2, float):
        pairs, index = np.array([[opt._b1, opt._b2]]), np.zeros(opt.n, dtype=np.int32)
    else:
        pairs, index = np.unique(np.stack([b1, b2], axis=1), axis=0, return_inverse=True)
    ts = [float(t) for t in range(opt.t + 1, opt.t + steps + 1)]
    table = np.array([[(1 - p1**t, (1 - p2**t) ** 0.5) for t in ts] for p1, p2 in pairs.tolist()], dtype=np.float64)
    return np.ascontiguousarray(table), np.ascontiguousarray(index.reshape(-1), dtype=np.int32)


def _buffers(opt: BatchedOptimizer) -> list[torch.Tensor | None]:
    """The three state slots the kernel uses, per optimizer, in its order."""
    s = opt._state
    if opt.name in ("sgd", "momentum", "nesterov"):
        return [s.get("momentum_buffer"), None, None]
    if opt.name == "adagrad":
        return [s["sum"], None, None]
    if opt.name == "rmsprop":
        return [s["square_avg"], s["grad_avg"], s["momentum_buffer"]]
    return [s["exp_avg"], s["exp_avg_sq"], s["max_exp_avg_sq"]]


def _started(opt: BatchedOptimizer) -> np.ndarray:
    rows = getattr(opt, "_started_rows", None)
    if rows is not None:
        return np.ascontiguousarray(rows.numpy()[:, 0], dtype=np.uint8)
    return np.full(opt.n, int(bool(getattr(opt, "_started", False))), dtype=np.uint8)


def _write_back(opt: BatchedOptimizer, started: np.ndarray, steps: int) -> None:
    opt.t += steps
    if opt.name in ("momentum", "nesterov") and not (isinstance(opt._mu, float) and opt._mu == 0.0):
        if opt._idle is None:  # every run has momentum: all started, as eager's first step makes them
            opt._started, opt._started_rows = True, None
        else:
            opt._started_rows = opt._tensor(torch.bool).copy_(torch.from_numpy(started.astype(bool)).reshape(-1, 1).expand(opt.shape))
