"""Stability maps: 200 x 200 runs x 500 steps (seconds, and the ratio to the same runs one by one),
then a 1000 x 1000 momentum map x 500 steps (1e6 runs, 5e8 trajectory-steps; seconds).

The one-by-one figure times a sample of single-run simulations in the same process and scales it.
Both maps step the way `stability_map` chooses (the native kernel where it applies, see
engine/native/; the mode is printed); the kernel's one-off build is warmed up first.

    python benchmarks/bench_sweeps.py [--device cuda] [--resolution 200] [--steps 500]
                                      [--big-resolution 1000] [--no-big]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import optiviz as ov
from optiviz.engine.devices import pick_device, synchronize
from optiviz.engine.native.runner import native_problem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default=None)
    ap.add_argument("--surface", default="rosenbrock")
    ap.add_argument("--optimizer", default="momentum")
    ap.add_argument("--resolution", type=int, default=200)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--sample", type=int, default=20, help="single runs timed for the one-by-one baseline")
    ap.add_argument("--big-resolution", type=int, default=1000, help="the big map's side (0: skip it)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's; 1 is steadier on a loaded, shared 2-core box)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.set_grad_enabled(False)
    runs = args.resolution**2

    ov.stability_map(args.surface, args.optimizer, "lr", "momentum", resolution=8, steps=5, device=device)  # warm-up
    # the native kernel's build for this surface and optimizer, paid once (cached on disk)
    warm = ov.Simulator(args.surface, args.optimizer, n=4, device=device, native=True)
    warm.advance(1, record=False)
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
    if args.big_resolution:
        big = args.big_resolution
        t0 = time.perf_counter()
        mb = ov.stability_map(args.surface, args.optimizer, "lr", "momentum", resolution=big, steps=args.steps,
                              device=device)
        synchronize(device)
        seconds = time.perf_counter() - t0
        problem = native_problem(warm)
        mode = "native kernel" if problem is None else f"torch ({problem})"
        print(f"stability map {big}x{big} = {big * big:,} runs x {args.steps} steps, {mode}: {seconds:.2f} s "
              f"({big * big * args.steps / seconds:.3e} trajectory-steps/s); diverged {int(mb.diverged.sum()):,}")


if __name__ == "__main__":
    main()
