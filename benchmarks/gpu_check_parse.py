"""Figures out of what the benchmarks and pytest print, for the GPU check's results file.

The benchmarks stay plain scripts that print for a person; these read their lines back (each
parser returns {} when its lines are missing, which the check reports as a failure). Stdlib only:
the orchestrator imports no torch, so an install step may still replace it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MARK = "@@gpu-check "  # gpu_check_steps.py's result lines start with this
NUMBER = r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def pytest_summary(out: str) -> dict[str, Any]:
    """Counts from pytest's last line: '84 passed, 1 failed in 60.63s'."""
    lines = [ln for ln in out.splitlines() if re.search(r"\b(passed|failed|error|errors|no tests ran)\b", ln)]
    if not lines:
        return {}
    last = lines[-1]
    figures: dict[str, Any] = {k: 0 for k in ("passed", "failed", "errors", "skipped", "deselected")}
    for count, word in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)", last):
        figures["errors" if word.startswith("error") else word] = int(count)
    took = re.search(rf"in ({NUMBER})s", last)
    if took:
        figures["seconds"] = _num(took.group(1))
    figures["failures"] = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, flags=re.M)[:20]
    return figures


def bench_engine(out: str) -> dict[str, Any]:
    """bench_engine.py's table: one row per mode and N, and the torch.optim loop's rate."""
    rows = [
        {"mode": m.group(1), "n": int(_num(m.group(2))), "rows": int(_num(m.group(3))), "seconds": _num(m.group(4)),
         "traj_steps_per_s": _num(m.group(5)), "x_loop": _num(m.group(6)), "warmup_s": _num(m.group(7))}
        for m in re.finditer(rf"^\s*(eager|compiled)\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s*$",
                             out, flags=re.M)
    ]
    if not rows:
        return {}
    figures: dict[str, Any] = {"table": rows}
    loop = re.search(rf"torch\.optim Python loop: ({NUMBER}) trajectory-steps/s", out)
    if loop:
        figures["torch_loop_traj_steps_per_s"] = _num(loop.group(1))
    skipped = re.search(r"^compiled: skipped, (.*)$", out, flags=re.M)
    if skipped:
        figures["compiled_skipped"] = skipped.group(1)
    steps = re.search(r"steps=(\d+)", out)
    if steps:
        figures["steps"] = int(steps.group(1))
    return figures


def bench_sweeps(out: str) -> dict[str, Any]:
    """bench_sweeps.py: the map's size, the batched seconds and the one-by-one estimate."""
    size = re.search(r"stability map (\d+)x(\d+) = ([\d,]+) runs x (\d+) steps", out)
    batched = re.search(rf"batched:\s+({NUMBER}) s\s+\(({NUMBER}) trajectory-steps/s\)", out)
    if not (size and batched):
        return {}
    figures: dict[str, Any] = {"resolution": int(size.group(1)), "runs": int(_num(size.group(3))),
                               "steps": int(size.group(4)), "batched_s": _num(batched.group(1)),
                               "traj_steps_per_s": _num(batched.group(2))}
    for key, pattern in (("one_by_one_s", rf"one by one:\s+({NUMBER}) s"), ("speedup", rf"speed-up:\s+({NUMBER})x"),
                         ("diverged", rf"diverged ({NUMBER})"), ("converged", rf"converged ({NUMBER})")):
        m = re.search(pattern, out)
        if m:
            figures[key] = _num(m.group(1))
    return figures


def bench_trainer(out: str) -> dict[str, Any]:
    """bench_trainer.py: accuracy per epoch and its wall time; images/s of each loop (wall medians)."""
    figures: dict[str, Any] = {}
    device = re.search(r"device (\S+), (\d+) threads", out)
    if device:
        figures["device"], figures["threads"] = device.group(1).rstrip(","), int(device.group(2))
    acc = re.search(r"test acc per epoch \[([^\]]*)\]", out)
    if acc:
        figures["test_acc_per_epoch"] = [_num(a) for a in acc.group(1).split(",") if a.strip()]
    wall = re.search(rf"({NUMBER}) s for (\d+) epochs \((\d+) steps", out)
    if wall:
        figures["accuracy_wall_s"], figures["epochs"] = _num(wall.group(1)), int(wall.group(2))
    rates = {m.group(1).strip(): _num(m.group(2))
             for m in re.finditer(rf"^\s{{4}}(plain loop.*?|Trainer.*?)\s+({NUMBER}) images/s wall", out, flags=re.M)}
    if rates:
        figures["images_per_s"] = rates
        trainer = [v for k, v in rates.items() if k.startswith("Trainer, all monitoring")]
        if trainer:
            figures["trainer_images_per_s"] = trainer[0]
    return figures if ("test_acc_per_epoch" in figures or rates) else {}


def bench_many_nets(out: str) -> dict[str, Any]:
    """bench_many_nets.py: seconds of each round and the time ratio (at once / one after another)."""
    ratio = re.search(rf"time ratio \(at once / one after another\): ({NUMBER}) \(medians\), best round ({NUMBER})", out)
    if not ratio:
        return {}
    rounds = [(_num(a), _num(b)) for a, b in re.findall(rf"at once ({NUMBER}) s, one after another ({NUMBER}) s", out)]
    head = re.search(r"^(\S+) x (\d+),", out, flags=re.M)
    figures: dict[str, Any] = {"ratio_medians": _num(ratio.group(1)), "ratio_best": _num(ratio.group(2)),
                               "at_once_s": [a for a, _ in rounds], "one_after_another_s": [b for _, b in rounds]}
    if head:
        figures["model"], figures["k"] = head.group(1), int(head.group(2))
    return figures


PARSERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "pytest": pytest_summary, "bench_engine": bench_engine, "bench_sweeps": bench_sweeps,
    "bench_trainer": bench_trainer, "bench_many_nets": bench_many_nets,
}


def headline(name: str, figures: dict[str, Any]) -> str:
    """The few figures of a step that a person reads first, on one line."""
    f = figures
    if not f:
        return ""
    if "passed" in f and "deselected" in f:  # pytest
        return f"{f['passed']} passed, {f['failed']} failed, {f['errors']} errors"
    if name == "env":
        gpu = f"{f['gpu']} ({f['gpu_memory_gib']} GiB, sm {f['capability']})" if f.get("gpu") else "no GPU"
        return f"torch {f['torch']} (CUDA build {f['torch_cuda_build']}), {gpu}, triton {f['triton']}, {f['cpus']} cpus"
    if name.startswith("simulator"):
        return (f"{f['rows']} rows x {f['steps']} steps: {f['status_mismatches']} status and {f['step_mismatches']} "
                f"step differences from the CPU, max point diff {f['max_point_diff']:.1e}, {f['row_steps_per_s']:.3e} "
                f"row-steps/s, first 2 steps {f['first_steps_seconds']:.1f} s; CPU run {f['counts']}")
    if name == "bench_engine":
        return "; ".join(f"{r['mode']} N={r['n']:,}: {r['traj_steps_per_s']:.3e} traj-steps/s ({r['x_loop']:,.0f}x loop, "
                         f"warm-up {r['warmup_s']:.1f} s)" for r in f["table"])
    if name == "bench_sweeps":
        return (f"{f['resolution']}x{f['resolution']} map x {f['steps']} steps in {f['batched_s']:.2f} s "
                f"({f['traj_steps_per_s']:.3e} traj-steps/s, {f.get('speedup', float('nan')):,.0f}x one by one)")
    if name.startswith("bench_trainer"):
        acc = f.get("test_acc_per_epoch")
        parts = [f"test acc {acc[-1]:.3f} after {len(acc)} epochs in {f.get('accuracy_wall_s', float('nan')):.1f} s"] if acc else []
        if "trainer_images_per_s" in f:
            parts.append(f"Trainer (all monitoring) {f['trainer_images_per_s']:,.0f} images/s")
        return "; ".join(parts)
    if name == "bench_many_nets":
        return f"{f.get('model')} x {f.get('k')}: time ratio {f['ratio_medians']:.2f} (best {f['ratio_best']:.2f})"
    if name == "dashboard":
        return f"{f['model']}: {f['steps']} steps, {f['images_per_s']:,.0f} images/s, loss {f['train_loss']:.3f}, on {f['param_device']}"
    if name == "explorer":
        return f"{f['preset']}: {f['steps']} steps in {f['seconds']:.2f} s, {f['statuses']} (CPU: {f['cpu_statuses']})"
    return ", ".join(f"{k}={v}" for k, v in f.items() if not isinstance(v, (dict, list)))[:300]
