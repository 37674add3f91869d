"""Training throughput with the TrainingDashboard attached and drawing vs the headless trainer.

Both train the same net with the same settings (the dashboard's defaults unless told otherwise:
the reference convnet on the bundled subset, Nesterov, batch 128, every probe on at its cadence,
validation at each epoch end), in the same process, in interleaved chunks so that load from other
processes hits both alike. The dashboard runs live: its LiveRunner worker trains and draws frames
at its frame rate into real widgets, whose messages go through a fake comm that serializes them
as a kernel would (JSON + binary buffers) and counts the bytes. Goal: >= 0.85x.

    python benchmarks/bench_dashboard.py [--seconds 8] [--rounds 3] [--model convnet] [--threads 1]

The machine is shared: chunk-to-chunk speed varies by +-30% with other processes' load, so it
also prints a load-independent figure: the share of the dashboard's wall time spent outside the
trainer's own steps (drawing, health checks, the runner), which bounds the slowdown.
"""
from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each timed chunk")
    parser.add_argument("--rounds", type=int, default=6, help="chunks of each kind, interleaved")
    parser.add_argument("--model", default="convnet", help="dashboard model preset")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded 2-core box)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    counting_comm.install()
    import torch

    torch.set_num_threads(args.threads)
    from optiviz.training.data import load_cifar10
    from optiviz.views.dashboard.view import TrainingDashboard
    from optiviz.training.runs import RunSpec, build_trainer

    data = load_cifar10(device=args.device)
    dash = TrainingDashboard(args.model, data=data, batch_size=args.batch_size, fps=args.fps)
    spec = RunSpec(model=args.model, optimizer=dash.trainer.optimizer_name, batch_size=args.batch_size)
    headless = build_trainer(spec, data, probe_every=dash.trainer.probe_every, val_every=dash.trainer.val_every)
    bs = min(args.batch_size, data.n_train)

    # time every frame the worker draws
    frame_ms: list[float] = []
    frame_bytes: list[int] = []
    frame_msgs: list[int] = []
    # a frame is the controller folding the records in, then the view drawing them (both public hooks)
    ctl = dash.controller
    add_records, on_frame = ctl.add_records, dash.on_frame
    frame_t0 = [0.0]

    def timed_add(records):  # noqa: ANN001
        CountingComm.sent.clear()
        frame_t0[0] = time.perf_counter()
        add_records(records)

    def timed_frame():  # noqa: ANN202
        on_frame()
        frame_ms.append(1e3 * (time.perf_counter() - frame_t0[0]))
        frame_bytes.append(sum(CountingComm.sent))
        frame_msgs.append(len(CountingComm.sent))

    ctl.add_records, dash.on_frame = timed_add, timed_frame

    # time the trainer's own steps inside the dashboard: what is left is the dashboard's cost
    step_s: list[float] = []
    trainer_step = dash.trainer.step

    def timed_step():  # noqa: ANN202
        t0 = time.perf_counter()
        record = trainer_step()
        step_s.append(time.perf_counter() - t0)
        return record

    dash.trainer.step = timed_step

    def run_headless(seconds: float) -> tuple[int, float]:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            headless.step()
            n += 1
        return n, time.perf_counter() - t0

    def run_dashboard(seconds: float) -> tuple[int, float]:
        n0, t0 = dash.trainer.step_count, time.perf_counter()
        dash.start()
        time.sleep(seconds)
        dash.pause()
        return dash.trainer.step_count - n0, time.perf_counter() - t0

    # warm up both (first steps allocate, first probe sets histogram edges)
    run_headless(1.0)
    run_dashboard(1.0)
    frame_ms.clear(), frame_bytes.clear(), frame_msgs.clear(), step_s.clear()

    rates: dict[str, list[float]] = {"headless": [], "dashboard": []}
    dash_wall = 0.0
    for r in range(args.rounds):
        order = (("headless", run_headless), ("dashboard", run_dashboard))
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            steps, wall = fn(args.seconds)
            rates[name].append(steps * bs / wall)
            dash_wall += wall if name == "dashboard" else 0.0

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    h, d = sum(rates["headless"]) / len(rates["headless"]), sum(rates["dashboard"]) / len(rates["dashboard"])
    print(f"model {args.model}, batch {args.batch_size}, probes every {headless.probe_every} steps, "
          f"{args.threads} torch thread(s), device {data.device}, load average {load:.1f}")
    print(f"headless trainer with probes: {h:,.0f} images/s  (chunks: {', '.join(f'{v:,.0f}' for v in rates['headless'])})")
    print(f"dashboard attached, drawing:  {d:,.0f} images/s  (chunks: {', '.join(f'{v:,.0f}' for v in rates['dashboard'])})")
    paired = [dv / hv for dv, hv in zip(rates["dashboard"], rates["headless"])]
    print(f"ratio dashboard / headless: {d / h:.2f}x overall, {statistics.median(paired):.2f}x median of "
          f"adjacent chunk pairs (goal >= 0.85x)")
    outside = 1.0 - sum(step_s) / dash_wall
    print(f"dashboard wall time outside the trainer's steps: {100 * outside:.1f}% "
          f"(so its throughput is >= {1 - outside:.2f}x of the same steps run bare)")
    if frame_ms:
        print(f"frames drawn: {len(frame_ms)} ({len(frame_ms) / dash_wall:.1f}/s at fps {args.fps:g}); per frame "
              f"{statistics.median(frame_ms):.1f} ms median (p90 {sorted(frame_ms)[int(0.9 * len(frame_ms))]:.1f}), "
              f"{statistics.median(frame_msgs):.0f} messages, {statistics.median(frame_bytes) / 1e3:.1f} kB; "
              f"drawing took {100 * sum(frame_ms) / 1e3 / dash_wall:.1f}% of the dashboard's wall time")
    dash.close()


if __name__ == "__main__":
    main()
