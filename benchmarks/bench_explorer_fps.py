"""Frames the explorer's kernel side sends per second while playing, against the fps asked for.

The browser can draw only what the kernel sends; with two clocks at the same rate (a pacing sleep
and the runner's frame clock) the explorer sent ~12.7 of 20 frames a second. Prints, per optimizer
count, frames sent per second, the ratio to the fps asked for, and the gap median / p90.

    python benchmarks/bench_explorer_fps.py [--seconds 4] [--fps 20 30]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from optiviz.views.explorer.controller import ExplorerController

RACES = {2: ("sgd", "momentum"), 6: ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")}


def measure(optimizers: tuple[str, ...], fps: float, seconds: float) -> tuple[float, float, float]:
    """(frames per second sent, median gap ms, p90 gap ms) over `seconds` of play, the first 0.5 s dropped."""
    c = ExplorerController("rosenbrock", optimizers, speed=2, fps=fps)
    frames: list[float] = []
    c.subscribe(lambda event: event == "frame" and frames.append(time.monotonic()))
    try:
        c.play()
        time.sleep(seconds)
        c.pause()
    finally:
        c.close()
    f = np.asarray(frames)
    f = f[f > f[0] + 0.5]
    gaps = np.diff(f) * 1000.0
    return (len(f) - 1) / (f[-1] - f[0]), float(np.median(gaps)), float(np.percentile(gaps, 90))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--fps", type=float, nargs="+", default=[20.0, 30.0])
    args = ap.parse_args()
    print(f"{'optimizers':>10} {'fps asked':>9} {'frames/s sent':>13} {'ratio':>6} {'gap median':>10} {'gap p90':>8}")
    for k, names in RACES.items():
        for fps in args.fps:
            rate, med, p90 = measure(names, fps, args.seconds)
            print(f"{k:>10} {fps:>9g} {rate:>13.1f} {rate / fps:>6.2f} {med:>8.0f} ms {p90:>5.0f} ms")


if __name__ == "__main__":
    main()
