"""scripts/gpu_check.sh, tested where no GPU is: --cpu --tiny runs every step and writes each section.

The GPU run itself needs a lent device; here the same script runs at tiny sizes on the CPU, and its
parts (a failing or hung step recorded, not fatal; no CUDA said plainly) are checked on their own.
The results file goes to tmp_path: the check writes nothing into the working tree.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402
import gpu_check_parse  # noqa: E402
import gpu_check_steps  # noqa: E402
from gpu_check_plan import Step  # noqa: E402

SECTIONS = ("env", "simulator_eager", "simulator_compiled", "dashboard", "explorer", "parity_float64",
            "parity_float32", "bench_engine", "bench_sweeps", "bench_trainer", "bench_trainer_cpu", "bench_many_nets")


@pytest.mark.slow
def test_cpu_mode_runs_every_section_with_plausible_figures(tmp_path):
    out = tmp_path / "results.json"
    t0 = time.monotonic()
    # a generous timeout: on a quiet 2-core machine this takes about a minute, a loaded one is slower
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--cpu", "--tiny", "--no-install",
                           "--threads", "1", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    steps = {s["name"]: s for s in data["steps"]}
    assert set(SECTIONS) <= set(steps) and data["device"] == "cpu" and data["profile"] == "tiny"
    assert steps["install_torch"]["status"] == steps["install_package"]["status"] == "skipped"
    assert steps["simulator_compiled"]["status"] == "skipped" and "compile" in steps["simulator_compiled"]["error"]
    assert steps["bench_trainer_cpu"]["status"] == "skipped"  # the device is the CPU: no baseline
    ran = [name for name in SECTIONS if steps[name]["status"] != "skipped"]
    assert all(steps[name]["status"] == "ok" for name in ran), {n: steps[n].get("error") for n in ran}
    f = {name: steps[name]["figures"] for name in ran}

    assert f["env"]["torch"] == torch.__version__ and f["env"]["device_available"] is True
    for dtype in ("float64", "float32"):
        assert f[f"parity_{dtype}"]["passed"] >= 1 and f[f"parity_{dtype}"]["failed"] == 0
    sim = f["simulator_eager"]
    assert sim["passed"] and sim["status_mismatches"] == 0 and sim["rows"] == 2 * 6 * 6 and sim["row_steps_per_s"] > 0
    assert sim["counts"]["diverged"] > 0 and sim["counts"]["running"] > 0  # the sweep covers more than one outcome
    assert f["dashboard"]["steps"] == 3 + 2 and f["dashboard"]["images_per_s"] > 0
    assert math.isfinite(f["dashboard"]["train_loss"]) and f["dashboard"]["param_device"] == "cpu"
    assert f["dashboard"]["model"] == "mlp"  # the convnet at the other sizes
    assert f["explorer"]["statuses"] == f["explorer"]["cpu_statuses"] and f["explorer"]["steps"] == 100
    table = f["bench_engine"]["table"]
    assert [r["n"] for r in table] == [100, 1000] and all(r["traj_steps_per_s"] > 0 for r in table)
    assert f["bench_sweeps"]["batched_s"] > 0 and f["bench_sweeps"]["runs"] == 400
    assert f["bench_trainer"]["trainer_images_per_s"] > 0 and 0 <= f["bench_trainer"]["test_acc_per_epoch"][0] <= 1
    assert f["bench_many_nets"]["ratio_medians"] > 0 and f["bench_many_nets"]["k"] == 2

    assert [g["met"] for g in data["goals"]] == [None, None, None]  # goals are for a GPU: n/a on the CPU
    assert "goals (printed, not asserted)" in proc.stdout and len(data["summary"]) == len(data["steps"])
    print(f"gpu_check.sh --cpu --tiny: {wall:.0f} s wall")


def test_a_failing_or_hung_step_is_recorded_and_the_run_goes_on():
    py = sys.executable
    failing = Step("x", "fails", 30, command=[py, "-c", "import sys; print('boom'); sys.exit(3)"])
    record = gpu_check.run_command(failing, 30)
    assert record["status"] == "failed" and record["exit_status"] == 3 and "boom" in record["error"]
    hung = Step("y", "hangs", 1, command=[py, "-c", "print('started', flush=True); import time; time.sleep(60)"])
    t0 = time.monotonic()
    record = gpu_check.run_command(hung, 1)
    assert record["status"] == "timeout" and "started" in record["output_tail"] and time.monotonic() - t0 < 20
    rescued = Step("z", "falls back", 30, command=[py, "-c", "raise SystemExit(1)"], fallback=[py, "-c", "print('ok')"])
    record = gpu_check.run_command(rescued, 30)
    assert record["status"] == "ok" and record["first_try"]["exit_status"] == 1
    # a worker check that runs past its own timeout is one timed-out record, not the worker's end
    result = gpu_check_steps.run_check("simulator_eager", torch.device("cpu"), 0.3, {"n": 200, "steps": 100_000})
    assert result["status"] == "timeout" and result["seconds"] < 10


def test_without_cuda_it_says_so_and_exits_2(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is here")
    out = tmp_path / "results.json"
    rc = gpu_check.main(["--no-install", "--only", "env", "bench_engine", "--out", str(out)])
    assert rc == 2 and "CUDA is not available here" in capsys.readouterr().err
    steps = {s["name"]: s for s in json.loads(out.read_text())["steps"]}
    assert steps["env"]["figures"]["cuda_available"] is False
    assert steps["bench_engine"]["status"] == "skipped" and "not available" in steps["bench_engine"]["error"]


def test_parsers_read_the_benchmarks_lines():
    engine = gpu_check_parse.bench_engine(
        "device=cuda threads=16 surface=rosenbrock steps=1000\n"
        "torch.optim Python loop: 3,999 trajectory-steps/s (250 us a step)\n"
        "     mode  N per optimizer     rows   seconds   traj-steps/s    x loop  warm-up s\n"
        "    eager        1,000,000 6,000,000     0.512      1.172e+10   2930000      0.31\n"
        " compiled        1,000,000 6,000,000     0.250      2.400e+10   6000000     25.10\n")
    assert [r["traj_steps_per_s"] for r in engine["table"]] == [1.172e10, 2.4e10] and engine["steps"] == 1000
    goals = gpu_check.goals({"bench_engine": {"figures": engine}}, "cuda")
    assert goals[0]["met"] is True and "compiled" in goals[0]["figure"]
    assert gpu_check_parse.pytest_summary("F.\nFAILED tests/t.py::a - x\n1 failed, 83 passed in 4.2s\n") == {
        "passed": 83, "failed": 1, "errors": 0, "skipped": 0, "deselected": 0, "seconds": 4.2,
        "failures": ["tests/t.py::a"]}
    assert gpu_check_parse.bench_sweeps("nothing here") == {}
