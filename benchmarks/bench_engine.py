"""Trajectory-steps per second of the batched simulator vs a Python loop of torch.optim.

Prints, in one process: for N = 1, 1,000 and 100,000 settings of each of the six optimizers
(6N rows) and 1,000 steps, the simulator's trajectory-steps/s and its ratio to a loop of
torch.optim instances doing the same work (a sample of the loop is timed and scaled).

    python benchmarks/bench_engine.py [--device cuda] [--steps 1000] [--sizes 1 1000 100000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import optiviz as ov
from optiviz.engine.devices import pick_device, synchronize

TORCH_OPTIM = {
    "sgd": lambda p, lr: torch.optim.SGD([p], lr=lr),
    "momentum": lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9),
    "nesterov": lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9, nesterov=True),
    "adagrad": lambda p, lr: torch.optim.Adagrad([p], lr=lr),
    "rmsprop": lambda p, lr: torch.optim.RMSprop([p], lr=lr),
    "adam": lambda p, lr: torch.optim.Adam([p], lr=lr),
}


def time_simulator(surface: str, n: int, steps: int, device: torch.device, repeats: int = 2) -> float:
    """Seconds for `steps` steps of all six optimizers with n settings each (best of `repeats`)."""
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-3, -1, size=n) if n > 1 else 0.01
    best = float("inf")
    for _ in range(repeats):
        sim = ov.Simulator(surface, ov.OPTIMIZERS, lr=lr, device=device)
        sim.advance(5, record=False)  # warm-up: allocations, kernels
        synchronize(device)
        t0 = time.perf_counter()
        sim.advance(steps, record=False)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def time_torch_loop(surface: str, sample_steps: int) -> float:
    """Seconds per trajectory-step of a Python loop of torch.optim, one instance per optimizer."""
    surf = ov.get_surface(surface)
    total = 0.0
    for name, make in TORCH_OPTIM.items():
        p = torch.tensor([list(surf.start)], dtype=torch.float32, requires_grad=False)
        p.grad = torch.zeros_like(p)
        opt = make(p, 0.01)
        t0 = time.perf_counter()
        for _ in range(sample_steps):
            p.grad.copy_(surf.gradient(p))
            opt.step()
        total += time.perf_counter() - t0
    return total / (sample_steps * len(TORCH_OPTIM))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--surface", default="rosenbrock")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 1000, 100_000])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's; 1 is steadier on a loaded, shared 2-core box)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.set_grad_enabled(False)
    loop_per_step = time_torch_loop(args.surface, sample_steps=300)
    print(f"device={device} threads={torch.get_num_threads()} surface={args.surface} steps={args.steps}")
    print(f"torch.optim Python loop: {1 / loop_per_step:,.0f} trajectory-steps/s ({loop_per_step * 1e6:.0f} us a step)")
    print(f"{'N per optimizer':>16} {'rows':>8} {'seconds':>9} {'traj-steps/s':>14} {'x loop':>9}")
    for n in args.sizes:
        seconds = time_simulator(args.surface, n, args.steps, device)
        rate = 6 * n * args.steps / seconds
        print(f"{n:>16,} {6 * n:>8,} {seconds:>9.3f} {rate:>14.3e} {rate * loop_per_step:>9.0f}")


if __name__ == "__main__":
    main()
