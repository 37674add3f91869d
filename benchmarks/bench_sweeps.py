"""Stability map of 40,000 runs x 500 steps: seconds, and the ratio to the same runs one by one.

The one-by-one figure times a sample of single-run simulations in the same process and scales it.

    python benchmarks/bench_sweeps.py [--device cuda] [--resolution 200] [--steps 500]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import optiviz as ov
from optiviz.engine.devices import pick_device, synchronize


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default=None)
    ap.add_argument("--surface", default="rosenbrock")
    ap.add_argument("--optimizer", default="momentum")
    ap.add_argument("--resolution", type=int, default=200)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--sample", type=int, default=20, help="single runs timed for the one-by-one baseline")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's; 1 is steadier on a loaded, shared 2-core box)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.set_grad_enabled(False)
    runs = args.resolution**2

    ov.stability_map(args.surface, args.optimizer, "lr", "momentum", resolution=8, steps=5, device=device)  # warm-up
    synchronize(device)
    t0 = time.perf_counter()
    m = ov.stability_map(args.surface, args.optimizer, "lr", "momentum", resolution=args.resolution,
                         steps=args.steps, device=device)
    synchronize(device)
    batched = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(args.sample):
        i, j = rng.integers(0, args.resolution, size=2)
        ov.simulate(m.surface, args.optimizer, steps=args.steps, device=device, **m.setting(i, j))
    one_by_one = (time.perf_counter() - t0) / args.sample * runs

    print(f"device={device} threads={torch.get_num_threads()} surface={args.surface} optimizer={args.optimizer}")
    print(f"stability map {args.resolution}x{args.resolution} = {runs:,} runs x {args.steps} steps")
    print(f"  batched:    {batched:8.2f} s  ({runs * args.steps / batched:.3e} trajectory-steps/s)")
    print(f"  one by one: {one_by_one:8.1f} s  (estimated from {args.sample} runs)")
    print(f"  speed-up:   {one_by_one / batched:8.0f}x")
    print(f"  diverged {int(m.diverged.sum()):,}, converged {int((m.converged_at >= 0).sum()):,}")


if __name__ == "__main__":
    main()
