"""The GPU check's own checks (scripts/gpu_check.sh), run one after another in one worker process.

Each check is a function (device, **sizes) -> figures: plain numbers, strings and bools, and
"passed" where the check compares something. The worker runs the checks its plan names, each under
its own alarm, and prints one line per check as it finishes (`@@gpu-check {json}`), so what
finished is kept even if the orchestrator has to kill a hung worker. A failing check is recorded
and the next one runs; sharing one process saves a torch import per check (seconds on 2 cores).

    python benchmarks/gpu_check_steps.py --device cuda --plan '[{"name": "env", "timeout": 60}]'
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_check_parse import MARK  # noqa: E402


class CheckTimeout(Exception):
    """Raised by the alarm when a check runs past its own timeout."""


def plain(value: Any) -> Any:
    """A figure as JSON can hold it (numpy scalars and arrays become Python ones; NaN stays a float)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (torch.device, torch.dtype)):
        return str(value)
    return value


# ----------------------------------------------------------------------------- checks
def check_env(device: torch.device) -> dict[str, Any]:
    """What this machine is: torch and its CUDA build, the GPU, whether compile=True can work."""
    from optiviz.engine.fusion import compile_problem

    cuda = torch.cuda.is_available()
    figures: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__, "torch_cuda_build": torch.version.cuda,
        "numpy": np.__version__, "cuda_available": cuda, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": str(device), "device_available": device.type != "cuda" or cuda,
    }
    if cuda:
        props = torch.cuda.get_device_properties(0)
        figures.update(gpu=props.name, gpu_count=torch.cuda.device_count(), capability=f"{props.major}.{props.minor}",
                       gpu_memory_gib=round(props.total_memory / 2**30, 1))
    try:
        import triton
        figures["triton"] = triton.__version__
    except ImportError:
        figures["triton"] = None
    if figures["device_available"]:
        figures["compile_problem"] = compile_problem(device)
    return figures


def check_simulator(device: torch.device, *, compile: bool, n: int, steps: int,
                    surfaces: tuple[str, ...] = ("quadratic", "rosenbrock")) -> dict[str, Any]:
    """Six optimizers x n learning rates (timid to explosive: rows converge, diverge and run on) on
    `device`, eager or compiled, against the same runs eagerly on the CPU, in float64. Statuses
    must be equal; the steps they were reached at and the end points are reported beside them."""
    import optiviz as ov
    from optiviz.engine.devices import synchronize

    lr = np.geomspace(1e-4, 1.0, n)
    out: dict[str, Any] = {"rows": 0, "steps": steps, "compile": compile, "status_mismatches": 0,
                           "step_mismatches": 0, "max_point_diff": 0.0, "seconds": 0.0, "cpu_seconds": 0.0,
                           "first_steps_seconds": 0.0, "counts": {"running": 0, "converged": 0, "diverged": 0}}
    for surface in surfaces:
        # the torch path on both sides (native=False): the native kernel has its own bit-for-bit tests
        kw = dict(surface=surface, optimizers=ov.OPTIMIZERS, lr=lr, dtype=torch.float64, gtol=1e-4, ftol=1e-6,
                  native=False)
        ref = ov.Simulator(device="cpu", **kw)
        t0 = time.perf_counter()
        ref.advance(steps, record=False)
        out["cpu_seconds"] += time.perf_counter() - t0
        sim = ov.Simulator(device=device, compile=compile, **kw)
        t0 = time.perf_counter()
        sim.advance(2, record=False)  # step 1 is eager, step 2 compiles (compile=True)
        synchronize(device)
        t1 = time.perf_counter()
        sim.advance(steps - 2, record=False)
        synchronize(device)
        out["first_steps_seconds"] += t1 - t0
        out["seconds"] += time.perf_counter() - t1
        status, ref_status = sim.status.cpu().numpy(), ref.status.numpy()
        out["rows"] += status.size
        out["status_mismatches"] += int((status != ref_status).sum())
        for name in ("converged_at", "diverged_at"):
            out["step_mismatches"] += int((getattr(sim, name).cpu().numpy() != getattr(ref, name).numpy()).sum())
        diff = np.abs(sim.x.cpu().numpy() - ref.x.numpy()) / (1.0 + np.abs(ref.x.numpy()))
        out["max_point_diff"] = max(out["max_point_diff"], float(diff.max()))
        for name, count in zip(*np.unique(ref.status_names(), return_counts=True)):
            out["counts"][str(name)] += int(count)
    out["passed"] = out["status_mismatches"] == 0
    out["row_steps_per_s"] = out["rows"] * (steps - 2) / out["seconds"] if out["seconds"] > 0 else float("nan")
    return out


def check_dashboard(device: torch.device, *, steps: int, n_train: int, model: str = "convnet",
                    batch_size: int = 64) -> dict[str, Any]:
    """The dashboard's controller (no widgets) training on `device`, stepped as Start would."""
    import optiviz as ov
    from optiviz.engine.devices import synchronize
    from optiviz.training.runs import RunSpec
    from optiviz.views.dashboard.controller import DashboardController

    data = ov.load_cifar10(device=device)
    quarter = max(1, n_train // 4)
    data = data.subset(min(n_train, data.n_train), min(quarter, data.n_val), min(quarter, data.n_test))
    c = DashboardController(RunSpec(model=model, optimizer="momentum", batch_size=batch_size), data, probe_every=5)
    try:
        c.step(2)  # warm-up: allocator, cudnn's choice of kernels, the first probe
        synchronize(device)
        t0 = time.perf_counter()
        c.step(steps)
        synchronize(device)
        seconds = time.perf_counter() - t0
        trainer = c.trainer
        loss = float(trainer.history["train_loss"][-1])
        figures = {
            "model": model, "steps": int(trainer.step_count), "seconds": seconds,
            "images_per_s": steps * trainer.batches.batch_size / seconds, "train_loss": loss,
            "probe_records": len(trainer.probe_records), "state": c.state, "error": c.error,
            "param_device": str(next(trainer.model.parameters()).device), "progress": c.progress_text(),
        }
    finally:
        c.close()
    figures["passed"] = (figures["steps"] == steps + 2 and np.isfinite(loss) and not figures["error"]
                         and figures["param_device"].split(":")[0] == device.type)
    return figures


def check_explorer(device: torch.device, *, steps: int, preset: str = "narrow_valley") -> dict[str, Any]:
    """The explorer's controller (no widgets) racing on `device` and on the CPU: the same outcome per
    optimizer (float32: the step it came at may differ by rounding, so that is reported, not required)."""
    from optiviz.views.explorer.controller import ExplorerController

    runs = {}
    for dev in ("cpu", str(device)):
        c = ExplorerController(preset=preset, device=dev)
        try:
            t0 = time.perf_counter()
            c.step(steps)
            runs[dev] = (dict(c.statuses), c.t, time.perf_counter() - t0, c.state, c.error, str(c.sim.x.device))
        finally:
            c.close()
    statuses, t, seconds, state, error, where = runs[str(device)]
    cpu = runs["cpu"][0]

    def kinds(texts: dict[str, str]) -> dict[str, str]:
        return {name: text.split(" at ")[0] for name, text in texts.items()}  # "converged at step 312"

    return {"preset": preset, "steps": t, "seconds": seconds, "statuses": statuses, "cpu_statuses": cpu,
            "same_steps": statuses == cpu, "state": state, "error": error, "sim_device": where,
            "passed": kinds(statuses) == kinds(cpu) and t == steps and not error}


CHECKS: dict[str, Callable[..., dict[str, Any]]] = {
    "env": check_env, "simulator_eager": lambda d, **kw: check_simulator(d, compile=False, **kw),
    "simulator_compiled": lambda d, **kw: check_simulator(d, compile=True, **kw),
    "dashboard": check_dashboard, "explorer": check_explorer,
}


# ----------------------------------------------------------------------------- worker
def _alarm(_signum: int, _frame: Any) -> None:
    raise CheckTimeout()


def run_check(name: str, device: torch.device, timeout: float, args: dict[str, Any]) -> dict[str, Any]:
    """One check under its own alarm; an exception or a timeout is its result, not the worker's end."""
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, max(float(timeout), 0.1))
    try:
        figures = plain(CHECKS[name](device, **args))
        status = "failed" if figures.get("passed") is False else "ok"
        error = None
    except CheckTimeout:
        figures, status, error = {}, "timeout", f"ran past its {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure of one check is recorded, the next one runs
        figures, status = {}, "failed"
        error = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exc(limit=8)[-3000:])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"name": name, "status": status, "seconds": time.perf_counter() - t0, "figures": figures, "error": error}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", required=True)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--plan", required=True, help='JSON list of {"name", "timeout", "args"}')
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    plan = json.loads(args.plan)
    stop: str | None = None
    for item in plan:
        if stop is not None:
            result = {"name": item["name"], "status": "skipped", "seconds": 0.0, "figures": {}, "error": stop}
        else:
            result = run_check(item["name"], device, item.get("timeout", 60), item.get("args", {}))
            if item["name"] == "env" and result["figures"].get("device_available") is False:
                stop = f"{device} is not available here"
        print(MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
