"""One prepared check of the CUDA path: install, then every check and benchmark inside one budget.

Device time is short (a lease of minutes), so this is one script that fits with room for a rerun.
It installs what it needs, says plainly when CUDA is missing (exit 2; --cpu runs the same steps on
the CPU at small sizes), then runs each step (gpu_check_plan.py) with its own timeout inside the
whole budget: a failing or slow step is recorded and the next one runs. Every figure goes to one
JSON results file, rewritten after each step so that a killed run still leaves what it measured;
the goals are printed beside the figures, not asserted.

    scripts/gpu_check.sh [--cpu] [--tiny] [--out results.json] [--budget S] [--no-install]
                         [--wheels DIR] [--threads N] [--only STEP ...] [--skip STEP ...]

Stdlib only here: torch is imported by the steps, never by this process, so installing may replace it.
Exit status: 0 all ran steps passed, 1 some failed or timed out (install steps excepted), 2 no CUDA.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_check_parse import MARK, PARSERS, headline  # noqa: E402
from gpu_check_plan import PROFILES, Step, build_plan, with_sizes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(tempfile.gettempdir()) / "optiviz-gpu-check" / "results.json"
TAIL = 4000  # characters of a step's output kept in the results file
INSTALL_STEPS = ("install_torch", "install_package")
VERDICT = {True: "met", False: "NOT met", None: "n/a here"}


class Results:
    """The one results file: what ran where, each step's record, the goals; rewritten whole each time."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta, self.t0 = path, meta, time.monotonic()  # t0: the budget counts from here
        self.steps: list[dict[str, Any]] = []
        self.goals: list[dict[str, Any]] = []
        self.summary: list[str] = []
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, record: dict[str, Any], index: int, total: int) -> None:
        self.steps.append(record)
        error = (record.get("error") or "").strip().splitlines()
        note = headline(record["name"], record.get("figures") or {}) or (error[0][:200] if error else "")
        line = f"[{index:>2}/{total}] {record['name']:<19} {record['status']:<8} {record['seconds']:6.1f} s  {note}"
        self.summary.append(line)
        print(line, flush=True)
        self.write()

    def by_name(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in self.steps}

    def write(self) -> None:
        data = {**self.meta, "elapsed_s": round(time.monotonic() - self.t0, 1), "steps": self.steps,
                "goals": self.goals, "summary": self.summary}
        tmp = self.path.with_suffix(self.path.suffix + ".part")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        tmp.replace(self.path)


def _env(step: Step) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **step.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return env


def run_processes(jobs: list[tuple[list[str], dict[str, str], float]]) -> list[tuple[int | None, str, float]]:
    """Start every (command, env, timeout) at once; for each, (exit status or None on timeout, output,
    seconds). On timeout the whole process group it started (compile workers too) is killed, by its
    id, and its output so far is kept. Output goes to a file, so no pipe can fill while another runs."""
    t0 = time.monotonic()
    started = []
    for cmd, env, _timeout in jobs:
        log = tempfile.TemporaryFile(mode="w+")
        started.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                                         start_new_session=True), log))
    results: list[tuple[int | None, str, float]] = []
    for (proc, log), (_cmd, _env, timeout) in zip(started, jobs):
        try:
            rc: int | None = proc.wait(timeout=max(t0 + timeout - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # it ended just now
                pass
            proc.wait()
            rc = None
        seconds = time.monotonic() - t0
        log.seek(0)
        results.append((rc, log.read(), seconds))
        log.close()
    return results


def run_process(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str, float]:
    return run_processes([(cmd, env, timeout)])[0]


def finish(step: Step, timeout: float, rc: int | None, out: str, seconds: float) -> dict[str, Any]:
    """A command step's record: its status, figures read from its output, and the output's tail."""
    figures = PARSERS[step.parser](out) if step.parser else {}
    if rc is None:
        status, error = "timeout", f"ran past its {timeout:.0f} s"
    elif rc != 0:
        status, error = "failed", f"exit status {rc}: " + (out.strip().splitlines() or [""])[-1][:300]
    elif step.parser and not figures:
        status, error = "failed", "no figures in its output"
    else:
        status, error = "ok", None
    return {"command": shlex.join(step.command), "env": step.env, "timeout_s": round(timeout, 1), "status": status,
            "seconds": seconds, "exit_status": rc, "figures": figures, "error": error, "output_tail": out[-TAIL:]}


def run_command(step: Step, timeout: float) -> dict[str, Any]:
    """One command; if it fails and the step has a fallback, the fallback in the time left."""
    rc, out, seconds = run_process(step.command, _env(step), timeout)
    if rc in (0, None) or not step.fallback:
        return finish(step, timeout, rc, out, seconds)
    first = {"command": shlex.join(step.command), "exit_status": rc, "output_tail": out[-TAIL:]}
    rc, out, more = run_process(step.fallback, _env(step), max(timeout - seconds, 30.0))
    record = finish(step, timeout, rc, out, seconds + more)
    record.update(command=shlex.join(step.fallback), first_try=first)
    return record


def run_checks(group: list[Step], py: str, device: str, threads: int | None, left: float) -> list[dict[str, Any]]:
    """Consecutive checks of gpu_check_steps.py in one worker, each under its own alarm there; the
    worker is killed if it outlives them all (a hung kernel ignores alarms)."""
    plan = [{"name": s.check["name"], "timeout": min(s.timeout, left), "args": s.check.get("args", {})} for s in group]
    cmd = [py, "-u", "benchmarks/gpu_check_steps.py", "--device", device, "--plan", json.dumps(plan)]
    cmd += ["--threads", str(threads)] if threads else []
    rc, out, seconds = run_process(cmd, _env(group[0]), min(sum(p["timeout"] for p in plan) + 30.0, left))
    done = {}
    for line in out.splitlines():
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
            done.setdefault(result["name"], result)
    other = "\n".join(ln for ln in out.splitlines() if not ln.startswith(MARK))[-TAIL:]
    records = []
    for step, item in zip(group, plan):
        r = done.get(step.name) or {"status": "timeout" if rc is None else "failed", "seconds": 0.0, "figures": {},
                                    "error": f"the worker {'was killed' if rc is None else f'exited ({rc})'} before it finished"}
        r.update(name=step.name, timeout_s=round(item["timeout"], 1), command=shlex.join(cmd[:5] + ["..."]))
        if r["status"] != "ok":
            r["output_tail"] = other
        records.append(r)
    return records


def goals(steps: dict[str, dict[str, Any]], device: str) -> list[dict[str, Any]]:
    """The issue's three goals against what was measured here (printed, not asserted)."""
    def figs(name: str) -> dict[str, Any]:
        return (steps.get(name) or {}).get("figures") or {}

    out = []
    table = figs("bench_engine").get("table", [])
    if table:
        n = max(r["n"] for r in table)
        best = max((r for r in table if r["n"] == n), key=lambda r: r["traj_steps_per_s"])
        figure = f"{best['traj_steps_per_s']:.3e} at N={n:,} ({best['mode']})"
        met = best["traj_steps_per_s"] >= 1e10 if n == 1_000_000 and device == "cuda" else None
    else:
        figure, met = "not measured", None
    out.append({"goal": ">= 1e10 trajectory-steps/s for 6 optimizers x 1e6 rows (bench_engine, N=1e6 each)",
                "figure": figure, "met": met})
    sw = figs("bench_sweeps")
    if sw:
        figure = f"{sw['batched_s']:.2f} s for {sw['resolution']}x{sw['resolution']} x {sw['steps']} steps"
        met = sw["batched_s"] <= 2.0 if (sw["resolution"], sw["steps"], device) == (1000, 500, "cuda") else None
    else:
        figure, met = "not measured", None
    out.append({"goal": "1000 x 1000 stability map x 500 steps in <= 2 s (bench_sweeps)", "figure": figure, "met": met})
    on, cpu = figs("bench_trainer").get("trainer_images_per_s"), figs("bench_trainer_cpu").get("trainer_images_per_s")
    if on and cpu:
        figure, met = f"{on / cpu:.1f}x ({on:,.0f} vs {cpu:,.0f} images/s on 2 CPU threads)", on / cpu >= 10
    else:
        figure = f"{on:,.0f} images/s; no CPU baseline here" if on else "not measured"
        met = None
    out.append({"goal": "convnet Trainer >= 10x its 2-core CPU images/s (bench_trainer)", "figure": figure, "met": met})
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="steps: " + ", ".join(
        s.name for s in build_plan("python", "cuda", PROFILES["gpu"], install=True, wheels=None, threads=None)))
    ap.add_argument("--cpu", action="store_true", help="run on the CPU at small sizes (no GPU needed)")
    ap.add_argument("--tiny", action="store_true",
                    help="seconds per step, benchmarks two at a time (tests/test_gpu_check.py's sizes; timings mean nothing)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the results file (default {DEFAULT_OUT})")
    ap.add_argument("--budget", type=float, default=None, help="seconds for everything (default: the profile's)")
    ap.add_argument("--no-install", action="store_true", help="use the torch and optiviz found here")
    ap.add_argument("--wheels", default=None, help="install from this folder of wheels only (no index)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads in every step")
    ap.add_argument("--only", nargs="+", default=None, metavar="STEP")
    ap.add_argument("--skip", nargs="+", default=(), metavar="STEP")
    ap.add_argument("--python", default=sys.executable, help="the interpreter the steps run with")
    return ap.parse_args(argv)


def _run_of(plan: list[Step], i: int, same: Any) -> list[Step]:
    """plan[i] and the steps right after it that `same` accepts (none of them skipped)."""
    group = [plan[i]]
    while i + len(group) < len(plan) and not plan[i + len(group)].skip and same(plan[i + len(group)]):
        group.append(plan[i + len(group)])
    return group


def _stop_reason(records: list[dict[str, Any]], device: str) -> str | None:
    """Why nothing after these records can run: the device is missing, or the environment is broken."""
    env = next((r for r in records if r["name"] == "env"), None)
    if env is None:
        return None
    if (env.get("figures") or {}).get("device_available") is False:
        return f"{device} is not available"
    return None if env["status"] == "ok" else "the environment check failed (see its record)"


def run_plan(plan: list[Step], results: Results, budget: float, py: str, device: str,
             threads: int | None) -> str | None:
    """Every step in order, each inside what is left of the budget; returns why it stopped early."""
    i, stop = 0, None
    while i < len(plan):
        step, left = plan[i], budget - (time.monotonic() - results.t0)
        if step.skip or left < 5 or stop:
            group = [step]
            records = [{"name": step.name, "status": "skipped", "seconds": 0.0,
                        "error": step.skip or stop or "the budget is spent"}]
        elif step.check is not None:
            group = _run_of(plan, i, lambda s: s.check is not None)
            records = run_checks(group, py, device, threads, left)
        elif step.together is not None:  # steps that check, not time, may run side by side
            group = _run_of(plan, i, lambda s, tag=step.together: s.together == tag)
            outs = run_processes([(s.command, _env(s), min(s.timeout, left)) for s in group])
            records = [{"name": s.name, **finish(s, min(s.timeout, left), *out)} for s, out in zip(group, outs)]
        else:
            group = [step]
            records = [{"name": step.name, **run_command(step, min(step.timeout, left))}]
        for k, (s, record) in enumerate(zip(group, records)):
            results.add({"what": s.what, **record}, i + k + 1, len(plan))
        stop = stop or _stop_reason(records, device)
        i += len(group)
    return stop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = "cpu" if args.cpu else "cuda"
    profile = "tiny" if args.tiny else ("cpu" if args.cpu else "gpu")
    sizes = PROFILES[profile] if args.budget is None else with_sizes(PROFILES[profile], budget_s=args.budget)
    plan = build_plan(args.python, device, sizes, install=not args.no_install, wheels=args.wheels, threads=args.threads)
    for step in plan:
        if args.only is not None and step.name not in args.only:
            step.skip = step.skip or "not named in --only"
        if step.name in args.skip:
            step.skip = "named in --skip"
    results = Results(args.out.resolve(), {
        "check": "optiviz GPU check (scripts/gpu_check.sh)", "device": device, "profile": profile,
        "budget_s": sizes.budget_s, "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv})
    print(f"optiviz GPU check: device {device}, profile {profile}, budget {sizes.budget_s:.0f} s; results in {results.path}",
          flush=True)
    stop = run_plan(plan, results, sizes.budget_s, args.python, device, args.threads)
    results.goals = goals(results.by_name(), device)
    results.write()
    print("goals (printed, not asserted):")
    for g in results.goals:
        print(f"  {g['goal']}: {g['figure']} [{VERDICT[g['met']]}]")
    print(f"results: {results.path}")
    if stop == f"{device} is not available":
        env = results.by_name().get("env", {}).get("figures", {})
        print(f"CUDA is not available here (torch {env.get('torch')}, CUDA build {env.get('torch_cuda_build')}): "
              "nothing ran on a GPU. scripts/gpu_check.sh --cpu runs the same steps on the CPU.", file=sys.stderr)
        return 2
    bad = [r["name"] for r in results.steps if r["status"] in ("failed", "timeout") and r["name"] not in INSTALL_STEPS]
    if bad:
        print(f"failed or timed out: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
