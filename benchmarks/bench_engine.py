"""Trajectory-steps per second of the batched simulator vs a Python loop of torch.optim.

Prints, in one process: for N = 1, 1,000 and 100,000 settings of each of the six optimizers
(6N rows) and 1,000 steps, the simulator's trajectory-steps/s and its ratio to a loop of
torch.optim instances doing the same work (a sample of the loop is timed and scaled), stepping
eagerly with torch ops (native=False), with compile=True (torch.compile, native=False) and in the
native kernel (native=True, what big sweeps use by default). Compiling happens in the warm-up and
is printed apart: it is paid once per surface and optimizer set (fresh inductor and kernel caches
are used, so it is the cold cost).

    python benchmarks/bench_engine.py [--device cuda] [--steps 1000] [--sizes 1 1000 100000]
                                      [--modes eager compiled native] [--warm-cache]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

if "--warm-cache" not in sys.argv:  # before torch is imported: compile times below are cold ones
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="optiviz-bench-inductor-")
    os.environ["OPTIVIZ_KERNEL_CACHE"] = tempfile.mkdtemp(prefix="optiviz-bench-kernels-")

import numpy as np
import torch

import optiviz as ov
from optiviz.engine.devices import pick_device, synchronize
from optiviz.engine.fusion import compile_problem


def time_simulator(surface: str, n: int, steps: int, device: torch.device, mode: str,
                   repeats: int = 2) -> tuple[float, float]:
    """(seconds for `steps` steps of all six optimizers with n settings each, best of `repeats`;
    seconds of the first warm-up, which holds the compiling)."""
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-3, -1, size=n) if n > 1 else 0.01
    best, first_warmup = float("inf"), None
    for _ in range(repeats):
        sim = ov.Simulator(surface, ov.OPTIMIZERS, lr=lr, device=device, compile=mode == "compiled",
                           native=mode == "native")
        t0 = time.perf_counter()
        sim.advance(5, record=False)  # warm-up: allocations, kernels, compiling
        synchronize(device)
        first_warmup = time.perf_counter() - t0 if first_warmup is None else first_warmup
        t0 = time.perf_counter()
        sim.advance(steps, record=False)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best, first_warmup


def time_torch_loop(surface: str, sample_steps: int) -> float:
    """Seconds per trajectory-step of a Python loop of torch.optim, one instance per optimizer."""
    surf = ov.get_surface(surface)
    total = 0.0
    for name in ov.OPTIMIZERS:
        p = torch.tensor([list(surf.start)], dtype=torch.float32, requires_grad=False)
        p.grad = torch.zeros_like(p)
        opt = ov.torch_optimizer(name, [p], lr=0.01)
        t0 = time.perf_counter()
        for _ in range(sample_steps):
            p.grad.copy_(surf.gradient(p))
            opt.step()
        total += time.perf_counter() - t0
    return total / (sample_steps * len(ov.OPTIMIZERS))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--surface", default="rosenbrock")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 1000, 100_000])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's; 1 is steadier on a loaded, shared 2-core box)")
    ap.add_argument("--modes", nargs="+", choices=("eager", "compiled", "native"), default=["eager", "compiled", "native"])
    ap.add_argument("--warm-cache", action="store_true", help="reuse the inductor cache (compile times then are warm ones)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.set_grad_enabled(False)
    loop_per_step = time_torch_loop(args.surface, sample_steps=300)
    print(f"device={device} threads={torch.get_num_threads()} surface={args.surface} steps={args.steps}")
    print(f"torch.optim Python loop: {1 / loop_per_step:,.0f} trajectory-steps/s ({loop_per_step * 1e6:.0f} us a step)")
    modes = list(args.modes)
    problem = compile_problem(device)
    if "compiled" in modes and problem is not None:
        print(f"compiled: skipped, {problem}")
        modes.remove("compiled")
    print(f"{'mode':>9} {'N per optimizer':>16} {'rows':>8} {'seconds':>9} {'traj-steps/s':>14} {'x loop':>9} {'warm-up s':>10}")
    for n in args.sizes:
        for mode in modes:
            seconds, warmup = time_simulator(args.surface, n, args.steps, device, mode)
            rate = 6 * n * args.steps / seconds
            print(f"{mode:>9} {n:>16,} {6 * n:>8,} {seconds:>9.3f} {rate:>14.3e} {rate * loop_per_step:>9.0f} {warmup:>10.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
