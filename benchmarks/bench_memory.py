"""Memory over long runs and threads after re-run cells (issue 12, classes 5 and 6).

Prints:
1. RSS growth of an explorer over 1,000,000 steps (three optimizers on a noisy quadratic, so no
   run ever finishes; ExplorerController without widgets, frames of --chunk steps through its
   publish as the worker hands them over), measured after a warm-up, with what its series hold.
   Target: <= 50 MB.
2. RSS growth of a long dashboard run (DashboardController, the 2-layer net on the bundled subset,
   probes every 10 steps), with what its series and its trainer's records hold.
3. Threads and views alive in a real kernel after the same cell (one cell id, as JupyterLab sends
   it) built and played an explorer 8 times, then a dashboard 8 times; and, for comparison, after 8
   different cells did (no view is closed then: each cell keeps its own).

    python benchmarks/bench_memory.py [--steps 1000000] [--dashboard-steps 40000] [--skip-kernel] [--simulate]

A few minutes on 2 CPU cores (the kernel part starts one ipykernel).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

import numpy as np
import torch

MB = 2**20


def rss() -> int:
    """Resident set size of this process, bytes (Linux /proc)."""
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def held(buffers) -> int:
    """Bytes the arrays of these SeriesBuffers hold (capacity, not only the rows in use)."""
    total = 0
    for b in buffers:
        total += b._step_rows.data.nbytes + b._value_rows.data.nbytes
        if b._pyramid is not None:
            total += sum(g.data.nbytes for g in b._pyramid.lo + b._pyramid.hi)
    return total


def bench_explorer(steps: int, chunk: int, simulate: bool) -> None:
    """Frames of `chunk` steps through the controller's publish (what the worker does each frame).
    The records are the simulator's own: one chunk simulated, then handed on again with its step
    numbers moved on (simulating 1e6 steps of 3 rows takes ~30 min on 2 busy cores); --simulate
    runs the simulator for every frame instead."""
    from dataclasses import replace

    from optiviz.views.explorer.controller import Chunk, ExplorerController

    c = ExplorerController("quadratic", ("sgd", "momentum", "adam"), grad_noise=0.5, speed=chunk)
    c.step(chunk)
    rec = c.sim.advance(chunk)  # a real chunk of records, not drawn yet

    def frame(done: int) -> None:
        if simulate:
            c.step(chunk)
        else:
            c.publish([Chunk(c.generation, replace(rec, steps=rec.steps + (done - int(rec.steps[0]) + 1)))])

    done = c.t
    for _ in range(5):  # warm-up: the allocator, the buffers' first growth
        frame(done)
        done += chunk
    base, t0 = rss(), time.perf_counter()
    marks = {}
    while done < steps:
        frame(done)
        done += chunk
        if done % max(steps // 4, 1) < chunk:
            marks[done] = (rss() - base) / MB
    seconds = time.perf_counter() - t0
    grown = (rss() - base) / MB
    bufs = [b for kind in c.race.buffers.values() for b in kind.values()]
    rows = sum(len(b) for b in bufs)
    how = "simulated" if simulate else "a simulated chunk's records published again and again"
    print(f"explorer, {done:,} steps of 3 optimizers in {seconds:.0f} s ({how}, frames of {chunk}):")
    print("  RSS growth after warm-up: " + ", ".join(f"{k:,} steps {v:+.1f} MB" for k, v in marks.items()))
    print(f"  RSS growth at the end: {grown:+.1f} MB (target <= 50 MB)")
    print(f"  series hold {rows:,} rows in {held(bufs) / MB:.1f} MB ({len(bufs)} buffers, "
          f"{bufs[0].samples:,} samples each, halved {bufs[0].compactions} times)")
    c.close()


def bench_dashboard(steps: int) -> None:
    import optiviz as ov
    from optiviz.training.runs import RunSpec
    from optiviz.views.dashboard.controller import DashboardController

    data = ov.load_cifar10().subset(2048, 256, 0)
    c = DashboardController(RunSpec(model="mlp", optimizer="sgd", batch_size=32), data, probe_every=10)
    c.step(200)
    base, t0 = rss(), time.perf_counter()
    done = 200
    marks = {}
    while done < steps:
        c.step(500)
        done += 500
        if done % max(steps // 4, 1) < 500:
            marks[done] = (rss() - base) / MB
    seconds = time.perf_counter() - t0
    grown = (rss() - base) / MB
    s = c.series[0]
    bufs = [s.loss, s.lr, s.val, s.epoch, s.ratio, s.grad, s.dead]
    t = c.trainer
    print(f"dashboard, {done:,} steps of the 2-layer net in {seconds:.0f} s:")
    print("  RSS growth after warm-up: " + ", ".join(f"{k:,} steps {v:+.1f} MB" for k, v in marks.items()))
    print(f"  RSS growth at the end: {grown:+.1f} MB, {grown * MB / max(done - 200, 1):.0f} bytes a step")
    print(f"  series hold {sum(len(b) for b in bufs):,} rows in {held(bufs) / MB:.1f} MB; the trainer keeps "
          f"{len(t.probe_records):,} probe records and {len(t.history['step']):,} steps of history "
          f"({sum(a.itemsize * len(a) for a in t._history.values()) / MB:.1f} MB)")
    c.close()


KERNEL_CELL = {
    "explorer": "import optiviz as ov, time\nv = ov.SurfaceExplorer(preset='narrow_valley')\nv.play(); time.sleep(0.3); v.pause()\nv",
    "dashboard": ("import optiviz as ov, time\nv = ov.TrainingDashboard('mlp', 'sgd', n_train=512, n_val=64)\n"
                  "v.start(); time.sleep(0.3); v.pause()\nv"),
}
PROBE = ("import threading, gc, os, json\nfrom optiviz.views.common import registry\ngc.collect()\n"
         "print(json.dumps({'threads': threading.active_count(), 'open_views': len(registry.open_views()), "
         "'rss_mb': int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20}))")


def run_cell(kc, code: str, cell_id: str | None) -> list[str]:
    """Execute code as a front end does, with the cell id in the request's metadata; stdout lines."""
    content = dict(code=code, silent=False, store_history=True, user_expressions={}, allow_stdin=False,
                   stop_on_error=True)
    msg = kc.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
    kc.shell_channel.send(msg)
    out = []
    while True:
        reply = kc.get_iopub_msg(timeout=120)
        if reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        kind = reply["msg_type"]
        if kind == "stream":
            out.append(reply["content"]["text"])
        elif kind == "error":
            raise RuntimeError("\n".join(reply["content"]["traceback"]))
        elif kind == "status" and reply["content"]["execution_state"] == "idle":
            return "".join(out).splitlines()


def bench_kernel() -> None:
    from jupyter_client.manager import start_new_kernel

    for view, code in KERNEL_CELL.items():
        for label, ids in (("the same cell run 8 times", ["cell-a"] * 8),
                           ("8 different cells", [f"cell-{i}" for i in range(8)])):
            km, kc = start_new_kernel(kernel_name="python3")
            try:
                run_cell(kc, "import torch; torch.set_num_threads(1)", None)
                before = json.loads(run_cell(kc, PROBE, None)[-1])
                run_cell(kc, code, ids[0])
                first = json.loads(run_cell(kc, PROBE, None)[-1])
                for cell_id in ids[1:]:
                    run_cell(kc, code, cell_id)
                after = json.loads(run_cell(kc, PROBE, None)[-1])
                run_cell(kc, "ov.close_all()", None)
                closed = json.loads(run_cell(kc, PROBE, None)[-1])
            finally:
                kc.stop_channels()
                km.shutdown_kernel(now=True)
            print(f"{view}, {label}: threads {before['threads']} before, {first['threads']} after the first, "
                  f"{after['threads']} after the 8th; open views {after['open_views']}; RSS {after['rss_mb'] - first['rss_mb']:+.0f} MB "
                  f"from the first run to the 8th; after ov.close_all(): threads {closed['threads']}, "
                  f"open views {closed['open_views']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=2_000, help="explorer steps per frame")
    parser.add_argument("--dashboard-steps", type=int, default=40_000)
    parser.add_argument("--skip-kernel", action="store_true")
    parser.add_argument("--simulate", action="store_true", help="run the simulator for every explorer frame (slow)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    np.random.seed(0)
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    bench_explorer(args.steps, args.chunk, args.simulate)
    bench_dashboard(args.dashboard_steps)
    if not args.skip_kernel:
        bench_kernel()


if __name__ == "__main__":
    main()
