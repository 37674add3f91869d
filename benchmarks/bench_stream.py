"""Cost of the stream layer: SeriesBuffer views at growing lengths, appends, LiveRunner overhead.

Prints, in one process:
- SeriesBuffer.view(2000) time at lengths 1e3, 1e5 and 1e6 (stride and min/max buffers, 1-D and
  (x, y) rows) and the 1e6 / 1e3 ratio: a frame should cost the same however long the run;
- amortized append / extend cost per row;
- LiveRunner overhead per chunk for a step that does nothing: run_sync, the worker thread
  (publishing at 20 fps), and the worker with a control request every chunk.

    python benchmarks/bench_stream.py [--max-points 2000] [--chunks 200000]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

from optiviz.stream import DONE, LiveRunner, SeriesBuffer


def best_of(fn, repeats: int = 7, inner: int = 20) -> float:
    """Seconds per call: the median over `repeats` of the mean of `inner` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def bench_views(max_points: int) -> None:
    print(f"SeriesBuffer.view({max_points}) per call")
    rng = np.random.default_rng(0)
    lengths = (1_000, 100_000, 1_000_000)
    for label, width, minmax in (("loss, stride", None, False), ("loss, min/max", None, True),
                                 ("(x, y), stride", 2, False), ("8 layers, min/max", 8, True)):
        costs = []
        for n in lengths:
            buf = SeriesBuffer(width, minmax=minmax)
            values = rng.normal(size=(n,) if width is None else (n, width)).cumsum(axis=0)
            buf.extend(np.arange(n), values)
            costs.append(best_of(lambda: buf.view(max_points)))
        cells = "  ".join(f"n={n:>9,}: {c * 1e6:7.1f} us" for n, c in zip(lengths, costs))
        print(f"  {label:<18} {cells}   1e6/1e3: {costs[2] / costs[0]:.2f}  1e6/1e5: {costs[2] / costs[1]:.2f}")
    print("  (below max_points a view copies every row; above it the work is O(max_points) and what")
    print("   grows with n is only cache misses of the gather over a larger array)")


def bench_appends() -> None:
    print("SeriesBuffer writes, amortized per row (1e6 rows)")
    n = 1_000_000
    values = np.random.default_rng(1).normal(size=n)
    for minmax in (False, True):
        buf = SeriesBuffer(minmax=minmax)
        t0 = time.perf_counter()
        for i in range(200_000):
            buf.append(i, values[i])
        per_append = (time.perf_counter() - t0) / 200_000
        buf = SeriesBuffer(minmax=minmax)
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            buf.extend(np.arange(start, start + 1000), values[start : start + 1000])
        per_row = (time.perf_counter() - t0) / n
        print(f"  minmax={minmax!s:<5}  append(): {per_append * 1e6:5.2f} us   extend(1000 rows): {per_row * 1e9:6.1f} ns/row")


def bench_runner(chunks: int) -> None:
    print(f"LiveRunner overhead per chunk, step() doing nothing ({chunks:,} chunks)")

    def counting_step(total: int):
        left = [total]

        def step():
            if left[0] == 0:
                return DONE
            left[0] -= 1
            return left[0]

        return step

    frames = [0]

    def publish(records):
        frames[0] += 1

    runner = LiveRunner(counting_step(chunks), publish=publish)
    t0 = time.perf_counter()
    runner.run_sync(chunks)
    sync = (time.perf_counter() - t0) / chunks
    print(f"  run_sync:                              {sync * 1e6:5.2f} us")

    for label, with_requests in (("worker thread, 20 fps:", False), ("worker, one request every chunk:", True)):
        frames[0] = 0
        step = counting_step(chunks)
        holder: dict = {}

        def stepping(step=step, with_requests=with_requests):
            out = step()
            if with_requests:
                holder["runner"].request("lr", out)
            return out

        runner = LiveRunner(stepping, apply=lambda changes: None, publish=publish, fps=20)
        holder["runner"] = runner
        finished = threading.Event()
        runner._on_status = lambda state: finished.set() if state == "done" else None
        t0 = time.perf_counter()
        runner.play()
        finished.wait(600)
        elapsed = time.perf_counter() - t0
        runner.close()
        holder.clear()
        print(f"  {label:<38} {elapsed / chunks * 1e6:5.2f} us   ({frames[0]} frames in {elapsed:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-points", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=200_000)
    args = parser.parse_args()
    bench_views(args.max_points)
    bench_appends()
    bench_runner(args.chunks)


if __name__ == "__main__":
    main()
