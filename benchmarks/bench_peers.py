"""optiviz against JAX + optax on the same sweep, in one process: trajectory-steps/s and the ratio.

The work, on both sides: 6 optimizers (SGD, momentum 0.9, Nesterov 0.9, AdaGrad, RMSprop, Adam,
torch.optim's defaults otherwise) x N settings x S steps on Rosenbrock (a=1, b=100) from the
surface's start (-1.2, 1), one lr per setting drawn log-uniform in [1e-3, 1e-1] (the same array on
both sides), float32. JAX: jit of a `lax.scan` over the steps of a `vmap` over the settings, each
setting's lr held by `optax.inject_hyperparams`; loss and gradient from `jax.value_and_grad`.
optiviz: one Simulator of all six (it also tracks each run's status and the step it changed, and
freezes diverged runs at their last finite point; JAX does none of that).

optax's AdaGrad and RMSprop are set to torch's forms (initial accumulator 0, eps 1e-10 for AdaGrad;
eps outside the square root for RMSprop); its AdaGrad still adds eps inside the square root, which
moves nothing visible. The final iterates are compared: runs optiviz finished without diverging
must end where JAX's do (float32 rounding apart), and the runs JAX blew up must be the ones
optiviz called diverged.

Modes: native (optiviz's fused C++ kernel, what a big sweep uses by default), eager (torch ops,
native=False), compiled (torch.compile, native=False; slow to compile, so not run by default), and
floor: the eager step's optimizer updates and surface passes alone (the same `make_optimizer` and
surface functions on the same column-major state, no statuses, diverged runs not held), what
op-by-op torch costs before the simulator adds anything. Run it after another mode (the default
order): first in a fresh process its temporaries come fresh from the OS at every op (glibc's
malloc has not yet raised its mmap threshold), which cost it 4x here.
Compile times are cold: a fresh kernel cache and a fresh inductor cache (pass --warm-cache to
reuse them).

    python benchmarks/bench_peers.py [--small] [--n 100000] [--steps 1000] [--repeats 3]
                                     [--modes native eager floor] [--warm-cache] [--schedule]
                                     [--grad-noise STD]

--schedule puts the same learning-rate schedule on both sides (halving every 100 steps: each
step's lr is the setting's lr times the factor; JAX's injected lr is set to that at every step).
--grad-noise STD adds seeded gradient noise to optiviz's runs and times the native kernel against
the torch path on them (JAX is not run: its noise would be other draws, with nothing to compare).

Needs the `bench` extra (pip install -e ".[bench]"); without jax/optax it times optiviz alone and
says so.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

if "--warm-cache" not in sys.argv:  # before torch and optiviz build anything: cold compile times
    os.environ["OPTIVIZ_KERNEL_CACHE"] = tempfile.mkdtemp(prefix="optiviz-bench-kernels-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="optiviz-bench-inductor-")

import numpy as np
import torch

import optiviz as ov

START = (-1.2, 1.0)
SCHEDULE = ("step", {"step_size": 100, "gamma": 0.5})  # --schedule: halve the lr every 100 steps


def lrs(n: int) -> np.ndarray:
    return 10 ** np.random.default_rng(0).uniform(-3, -1, size=n)


# ----------------------------------------------------------------------------------- optiviz
def factors(scheduled: bool, steps: int) -> np.ndarray | None:
    """The schedule's lr factor at each step (None: no schedule)."""
    if not scheduled:
        return None
    schedule = ov.make_schedule(SCHEDULE[0], **SCHEDULE[1])
    return np.array([float(schedule(t)) for t in range(steps)])


def run_optiviz(mode: str, lr: np.ndarray, steps: int, scheduled: bool = False,
                grad_noise: float = 0.0) -> tuple[float, float, ov.Simulator]:
    """(seconds of the first call, which holds any compiling; seconds of `steps` more; simulator)."""
    kw = {"native": True} if mode == "native" else {"native": False, "compile": mode == "compiled"}
    kw["grad_noise"] = grad_noise
    sim = ov.Simulator("rosenbrock", ov.OPTIMIZERS, start=START, lr=lr, schedule=SCHEDULE if scheduled else None, **kw)
    t0 = time.perf_counter()
    sim.advance(1, record=False)  # builds (or loads) the kernel / compiles
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim.advance(steps - 1, record=False)
    seconds = (time.perf_counter() - t0) * steps / (steps - 1)
    assert sim.last_mode == mode, f"asked for {mode}, ran {sim.last_mode}"
    return first, seconds, sim


def torch_floor(lr: np.ndarray, steps: int, scale: np.ndarray | None = None) -> float:
    """Seconds for `steps` steps of only the eager step's tensor work (see the module docstring)."""
    from optiviz.engine.optimizers import make_optimizer
    from optiviz.engine.row_block import coordinate_major

    surface = ov.get_surface("rosenbrock")
    runs = []
    for name in ov.OPTIMIZERS:
        x = coordinate_major(torch.tensor([START], dtype=torch.float32).expand(len(lr), 2))
        g = torch.empty_like(x)
        surface.loss_and_gradient_into(x, g)
        runs.append((make_optimizer(name, len(lr), 2, lr=lr, column_major=True), x, g))
    flushed = torch.set_flush_denormal(True)  # as the simulator steps
    t0 = time.perf_counter()
    for t in range(steps):
        for opt, x, g in runs:
            opt.step(x, g, None if scale is None else float(scale[t]))
            surface.loss_and_gradient_into(x, g)
    seconds = time.perf_counter() - t0
    if flushed:
        torch.set_flush_denormal(False)
    return seconds


# --------------------------------------------------------------------------------------- JAX
def jax_problem() -> str | None:
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError as err:
        return f"{err.name} is not installed (pip install -e '.[bench]')"
    return None


def jax_sweep(lr: np.ndarray, steps: int, scale: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
    """(compile seconds, run seconds, final points (6, N, 2)) of the same sweep in JAX + optax."""
    import jax
    import jax.numpy as jnp
    import optax

    def rosenbrock(p: jax.Array) -> jax.Array:
        x, y = p[0], p[1]
        return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2

    value_and_grad = jax.value_and_grad(rosenbrock)
    # torch.optim's defaults, as optax spells them (the lr is injected per setting)
    makers = {
        "sgd": (optax.sgd, {}),
        "momentum": (optax.sgd, {"momentum": 0.9}),
        "nesterov": (optax.sgd, {"momentum": 0.9, "nesterov": True}),
        "adagrad": (optax.adagrad, {"initial_accumulator_value": 0.0, "eps": 1e-10}),
        "rmsprop": (optax.rmsprop, {"decay": 0.99, "eps": 1e-8, "eps_in_sqrt": False}),
        "adam": (optax.adam, {"b1": 0.9, "b2": 0.999, "eps": 1e-8}),
    }

    def one(name: str):  # noqa: ANN202
        """The sweep of one optimizer: vmap over the settings inside a scan over the steps."""
        fn, fixed = makers[name]
        inject = optax.inject_hyperparams(fn, static_args=tuple(k for k, v in fixed.items() if isinstance(v, bool)))
        tx = inject(learning_rate=0.0, **fixed)  # its update reads each setting's lr from that setting's state

        def step(p: jax.Array, state):  # noqa: ANN001, ANN202
            _, g = value_and_grad(p)
            updates, state = tx.update(g, state, p)
            return optax.apply_updates(p, updates), state

        def run(rates: jax.Array) -> jax.Array:
            p0 = jnp.broadcast_to(jnp.asarray(START, jnp.float32), (rates.shape[0], 2))
            states = jax.vmap(lambda rate, p: inject(learning_rate=rate, **fixed).init(p))(rates, p0)

            def body(carry, factor):  # noqa: ANN001, ANN202
                p, states = carry
                if factor is not None:  # this step's lr: each setting's lr times the schedule's factor
                    states = states._replace(hyperparams={**states.hyperparams, "learning_rate": rates * factor})
                return jax.vmap(step)(p, states), None

            xs = None if scale is None else jnp.asarray(scale, jnp.float32)
            (p, _), _ = jax.lax.scan(body, (p0, states), xs, length=steps)
            return p

        return run

    def sweep(rates: jax.Array) -> jax.Array:
        return jnp.stack([one(name)(rates) for name in ov.OPTIMIZERS])

    rates = jnp.asarray(lr, jnp.float32)
    t0 = time.perf_counter()
    compiled = jax.jit(sweep).lower(rates).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = compiled(rates).block_until_ready()
    return compile_s, time.perf_counter() - t0, np.asarray(out)


def agreement(sim: ov.Simulator, jax_points: np.ndarray) -> str:
    """How closely JAX's final iterates match optiviz's, and whether the blown-up runs agree."""
    ours = sim.x.numpy().reshape(jax_points.shape)
    diverged = (sim.status.numpy() == 2).reshape(jax_points.shape[:2])
    blown = ~np.isfinite(jax_points).all(-1) | (np.abs(jax_points) > 1e6).any(-1)
    kept = ~diverged & ~blown
    with np.errstate(over="ignore", invalid="ignore"):
        dist = np.linalg.norm(ours - jax_points, axis=-1)[kept]
    close = float(np.mean(dist <= 1e-3)) if dist.size else float("nan")
    return (f"agreement: {kept.sum():,} runs finished on both sides, {close:.2%} end within 1e-3 of JAX's point "
            f"(median distance {np.median(dist):.1e}); diverged: optiviz {diverged.sum():,}, JAX blew up "
            f"{blown.sum():,}, both {(diverged & blown).sum():,}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="a quick run: N = 2,000 settings x 200 steps")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=1, help="time each side this many times; medians are printed")
    ap.add_argument("--modes", nargs="+", choices=("native", "eager", "compiled", "floor"), default=["native", "eager"])
    ap.add_argument("--warm-cache", action="store_true", help="reuse the kernel and inductor caches")
    ap.add_argument("--schedule", action="store_true", help="the same lr schedule on both sides (halving every 100 steps)")
    ap.add_argument("--grad-noise", type=float, default=0.0, help="gradient noise std: native against the torch path, no JAX")
    args = ap.parse_args()
    n, steps = (2000, 200) if args.small else (args.n, args.steps)
    torch.set_grad_enabled(False)
    lr = lrs(n)
    work = 6 * n * steps
    scale = factors(args.schedule, steps)
    print(f"6 optimizers x {n:,} settings x {steps:,} steps on Rosenbrock, per-setting lr{', halved every 100 steps' if args.schedule else ''}"
          f"{f', gradient noise std {args.grad_noise:g}' if args.grad_noise else ''}, float32; "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})")
    rates: dict[str, float] = {}
    sims: dict[str, ov.Simulator] = {}
    problem = jax_problem() if not args.grad_noise else "not run with --grad-noise"
    if args.grad_noise:
        args.modes = [m for m in args.modes if m != "floor"]
    if problem is not None:
        print(f"JAX + optax: skipped, {problem}")
    for r in range(args.repeats):
        for mode in args.modes:
            if mode == "floor":
                seconds = torch_floor(lr, steps, scale)
                rates.setdefault(mode, []).append(work / seconds)
                print(f"  torch ops alone : {work / seconds:.3e} trajectory-steps/s ({seconds:.2f} s)", flush=True)
                continue
            first, seconds, sims[mode] = run_optiviz(mode, lr, steps, args.schedule, args.grad_noise)
            rates.setdefault(mode, []).append(work / seconds)
            print(f"  optiviz {mode:>8}: {work / seconds:.3e} trajectory-steps/s ({seconds:.2f} s), first step "
                  f"{first:.2f} s{' (cold build/compile)' if r == 0 else ''}", flush=True)
        if problem is None:
            compile_s, seconds, points = jax_sweep(lr, steps, scale)
            rates.setdefault("jax", []).append(work / seconds)
            print(f"  JAX + optax     : {work / seconds:.3e} trajectory-steps/s ({seconds:.2f} s), compile "
                  f"{compile_s:.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print("medians: " + ", ".join(f"{k} {v:.3e}" for k, v in med.items()))
    if "native" in med and "eager" in med:
        same = all(torch.equal(getattr(sims["native"], f), getattr(sims["eager"], f)) for f in ("x", "status", "diverged_at"))
        print(f"ratio optiviz native / torch path: {med['native'] / med['eager']:.2f}x; the same runs bit for bit: {same}")
    if "jax" in med:
        for mode in args.modes:
            print(f"ratio optiviz {mode} / JAX + optax: {med[mode] / med['jax']:.2f}x")
        if sims:
            print(agreement(sims[next(m for m in args.modes if m in sims)], points))


if __name__ == "__main__":
    main()
