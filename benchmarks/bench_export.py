"""How long save_gif takes for the issue's race: 300 steps of all six optimizers, headless.

Target (issue 15): under 30 s on two cores. Prints the time of the whole export and, as a
baseline measured in the same process, the time of the simulation alone (so the ratio says how
much of it is drawing and encoding). Shared machines: other work on the CPU inflates both.
Run: PYTHONPATH=. python benchmarks/bench_export.py
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import optiviz as ov


def main() -> None:
    explorer = ov.SurfaceExplorer("quadratic", list(ov.OPTIMIZERS))
    t0 = time.perf_counter()
    explorer.controller.fresh_simulator().run(300)
    simulate_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        for frames in (30, 60):
            timing = explorer.save_gif(str(Path(tmp) / "race.gif"), steps=300, frames=frames)
            size = (Path(tmp) / "race.gif").stat().st_size
            print(f"save_gif 300 steps x 6 optimizers, {timing.frames} frames: {timing.seconds:.2f} s "
                  f"(draw {timing.draw_s:.2f} s, encode {timing.encode_s:.2f} s, {size / 1e6:.1f} MB); "
                  f"simulation alone {simulate_s:.3f} s, ratio {timing.seconds / simulate_s:.0f}x; target < 30 s")
    explorer.close()


if __name__ == "__main__":
    main()
