"""Kernel-side cost of one SurfaceExplorer frame at step 1,000 and at step 100,000 (6 optimizers).

A frame is what the worker does every 1/20 s while playing: append one chunk of steps to the
series, build decimated float32 views, and send one state message per changed mark. Messages go
through a fake comm that serializes them as the kernel would (JSON + binary buffers), so the
time includes serialization and the byte count is what would cross the websocket.

Usage: python benchmarks/bench_explorer_frame.py [--frames 60] [--speed 5] [--far 100000]
Decimation should make the frame cost and size the same at both points of the run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import counting_comm  # noqa: E402
from counting_comm import CountingComm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames timed at each point")
    parser.add_argument("--speed", type=int, default=5, help="steps per frame")
    parser.add_argument("--near", type=int, default=1_000)
    parser.add_argument("--far", type=int, default=100_000)
    args = parser.parse_args()

    counting_comm.install()
    from optiviz.engine.optimizers import OPTIMIZERS
    from optiviz.views.explorer.controller import Chunk
    from optiviz.views.explorer.view import SurfaceExplorer

    # small lrs on a wide bowl: all six keep moving for 100,000 steps (nobody diverges or stops)
    hp = {o: {"lr": 1e-4} for o in OPTIMIZERS}
    hp["adagrad"] = {"lr": 0.02}
    t0 = time.perf_counter()
    explorer = SurfaceExplorer("quadratic", OPTIMIZERS, condition=10.0, hparams=hp, start=(-9.0, 3.5))
    controller = explorer.controller
    print(f"build: {1e3 * (time.perf_counter() - t0):.0f} ms, {len(CountingComm.sent)} widget messages, "
          f"{sum(CountingComm.sent) / 1e3:.0f} kB (surface heatmap and contours included)")

    def measure(label: str) -> None:
        engine, frame, sizes = [], [], []
        for _ in range(args.frames):
            t1 = time.perf_counter()
            record = controller.sim.advance(args.speed)
            t2 = time.perf_counter()
            CountingComm.sent.clear()
            controller.publish([Chunk(controller.generation, record)])  # what LiveRunner calls per frame
            t3 = time.perf_counter()
            engine.append(t2 - t1)
            frame.append(t3 - t2)
            sizes.append(sum(CountingComm.sent))
            messages = len(CountingComm.sent)
        points = {o: len(p) for o, p in explorer.paths.items()}
        print(f"{label:>14}: frame {1e3 * statistics.median(frame):.2f} ms median "
              f"(p90 {1e3 * sorted(frame)[int(0.9 * len(frame))]:.2f}), "
              f"{statistics.median(sizes) / 1e3:.1f} kB in {messages} messages; "
              f"engine {1e3 * statistics.median(engine):.2f} ms for {args.speed} steps; "
              f"path points drawn {max(points.values())}, statuses {set(explorer.statuses.values())}")

    explorer.step(args.near)
    measure(f"step {explorer.t:,}")
    t0 = time.perf_counter()
    explorer.step(args.far - explorer.t)
    print(f"(ran to step {explorer.t:,} in {time.perf_counter() - t0:.1f} s)")
    measure(f"step {explorer.t:,}")
    explorer.close()


if __name__ == "__main__":
    main()
