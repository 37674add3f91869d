"""A loss landscape's grid, batched vs one nn.Module per point (prints numbers; not a test).

The lectures' 2-layer MLP (3072-50-10, 154k weights) raced by sgd, momentum and adam for 2 epochs
on 1,024 bundled CIFAR-10 images; then the 41 x 41 PCA plane through the race evaluated on the same
1,024 images:
- batched: ov.loss_landscape's evaluation (training/planes.evaluate_points: the first layer's three
  products with the images, then every point's later layers stacked);
- one by one: the loop one would write by hand, each point's weights loaded into a plain nn.Module
  and the 1,024 images forwarded (training/planes.evaluate_one_by_one).
Both in this process, in interleaved rounds; the median of each and their ratio are printed, and the
largest difference between the two grids (float32 rounding). Targets (issue 14): batched <= 10 s on
2 CPU cores, and >= 5x the loop.

    python benchmarks/bench_landscape.py [--resolution 41] [--images 1024] [--rounds 3] [--device cpu]
                                         [--threads N] [--model mlp] [--no-loop]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import optiviz as ov
from optiviz.engine.devices import synchronize
from optiviz.training.landscape import loss_landscape
from optiviz.training.planes import evaluate_one_by_one, evaluate_points


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=int, default=41)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--no-loop", action="store_true", help="time the batched grid only (the loop takes minutes)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = ov.load_cifar10(device=args.device).subset(args.images, 256, 256)
    race = ov.race_on_net(args.model, ("sgd", "momentum", "adam"), data, epochs=2)
    t0, c0 = time.perf_counter(), time.process_time()
    land = loss_landscape(race, "pca", resolution=args.resolution)
    synchronize(race.device)
    whole, whole_cpu = time.perf_counter() - t0, time.process_time() - c0
    gx, gy = np.meshgrid(land.xs, land.ys)
    coords = np.stack([gx.ravel(), gy.ravel()], axis=1)
    batched, loop, cpu = [], [], []
    for r in range(args.rounds):
        order = (0,) if args.no_loop else (0, 1) if r % 2 == 0 else (1, 0)
        for which in order:
            t0, c0 = time.perf_counter(), time.process_time()
            if which == 0:
                grid = evaluate_points(land.plane, coords, data)[0]
            else:
                ref = evaluate_one_by_one(land.plane, coords, data)
            synchronize(race.device)
            (batched if which == 0 else loop).append(time.perf_counter() - t0)
            if which == 0:
                cpu.append(time.process_time() - c0)
    tb = statistics.median(batched)
    print(f"device {race.device}, torch threads {torch.get_num_threads()}, {args.model} "
          f"({race.init.numel():,} weights), {args.resolution}x{args.resolution} plane, {args.images:,} images")
    print(f"loss_landscape (plane fit + grid + paths): {whole:.2f} s (CPU time {whole_cpu:.2f} s)")
    print(f"grid batched: {tb:.2f} s (best {min(batched):.2f}; CPU time {statistics.median(cpu):.2f} s over all threads)")
    if loop:
        tl = statistics.median(loop)
        print(f"one nn.Module per point: {tl:.2f} s (best {min(loop):.2f}); ratio {tl / tb:.1f}x")
        print(f"largest |batched - loop| loss difference: {float(np.max(np.abs(grid - ref))):.2e}")


if __name__ == "__main__":
    main()
