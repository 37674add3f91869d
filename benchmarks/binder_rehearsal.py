"""Binder, rehearsed here: the image `binder/` defines, built as repo2docker builds it, then every
lecture notebook executed under Binder's memory cap, with each one's peak memory.

    python benchmarks/binder_rehearsal.py [--venv /tmp/optiviz-binder] [--cap-gb 2] [--fast] [--reuse]

1. A fresh virtualenv with the Python binder/runtime.txt names (this interpreter must be it).
2. `pip install --no-cache-dir -r binder/requirements.txt`, as repo2docker runs it. (Here PyTorch's
   CPU index cannot be reached; pip finds the same torch==2.13.0+cpu wheel in the machine's local
   wheel folder, and gives up on the index at once: PIP_RETRIES=0.)
3. A copy of the repository's tracked files (what repo2docker copies into the image), and
   `binder/postBuild` run in it with the venv first on PATH.
4. Each notebook in notebooks/ executed top to bottom by that venv's `jupyter nbconvert --execute`
   (its own ipykernel), one at a time as the README advises on Binder, in a memory cgroup limited to
   --cap-gb (mybinder.org gives 1 to 2 GB; the kernel is killed at the cap as there). Where no
   cgroup can be made, the process tree's RSS is sampled and killed past the cap instead.

Prints per notebook: wall time, peak RSS of the kernel (sampled every 0.2 s), the cgroup's peak
(RSS and page cache, what the cap counts), and whether it finished; the last line reads
`binder rehearsal: N of M notebooks ran under a X GB cap, peak kernel RSS P MB (NOTEBOOK)`.
Nothing outside /tmp is written; the cgroups are removed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CGROUP = Path("/sys/fs/cgroup/memory")


def run(cmd: list[str], **kwargs) -> None:
    print("  $", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def build(venv: Path, reuse: bool) -> Path:
    """The image's environment: a venv with binder/requirements.txt, then postBuild in a copy."""
    wanted = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not have.startswith(wanted):
        raise SystemExit(f"binder/runtime.txt asks for Python {wanted}; run this with that Python (this is {have})")
    repo = venv.parent / f"{venv.name}-repo"
    if reuse and (venv / "bin" / "jupyter").exists():
        return repo
    shutil.rmtree(venv, ignore_errors=True)
    shutil.rmtree(repo, ignore_errors=True)
    t0 = time.monotonic()
    run([sys.executable, "-m", "venv", str(venv)])
    env = dict(os.environ, PIP_RETRIES="0", PIP_TIMEOUT="5")
    env.pop("PYTHONPATH", None)  # the image has no checkout on the path: postBuild installs optiviz
    run([str(venv / "bin" / "pip"), "install", "--no-cache-dir", "-r", str(ROOT / "binder" / "requirements.txt")],
        env=env)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    run([str(repo / "binder" / "postBuild")], cwd=repo, env=env)
    print(f"  built in {time.monotonic() - t0:.0f} s", flush=True)
    return repo


def rss_of_tree(pid: int) -> tuple[float, float]:
    """(RSS of the whole tree, RSS of its largest process), MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
            except (OSError, ValueError):
                continue
    total = largest = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            line = [l for l in Path(f"/proc/{current}/status").read_text().splitlines() if l.startswith("VmRSS")]
            mb = int(line[0].split()[1]) / 1024 if line else 0.0
        except OSError:
            continue
        total += mb
        largest = max(largest, mb)
    return total, largest


def make_cgroup(name: str, cap_bytes: int) -> Path | None:
    group = CGROUP / name
    try:
        group.mkdir(exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(cap_bytes))
        try:
            (group / "memory.memsw.limit_in_bytes").write_text(str(cap_bytes))  # no swap past the cap
        except OSError:
            pass
        return group
    except OSError:
        return None


def execute(notebook: Path, venv: Path, repo: Path, out: Path, cap_gb: float, fast: bool) -> dict:
    cap = int(cap_gb * 2**30)
    group = make_cgroup(f"optiviz-binder-{os.getpid()}-{notebook.stem}", cap)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPTIVIZ_FAST", "JUPYTER_PATH")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(venv), OMP_NUM_THREADS="1",
               JUPYTER_CONFIG_DIR=str(out / "jupyter-config"), JUPYTER_DATA_DIR=str(out / "jupyter-data"),
               IPYTHONDIR=str(out / "ipython"))
    if fast:
        env["OPTIVIZ_FAST"] = "1"

    def enter_cgroup() -> None:
        if group is not None:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    cmd = [str(venv / "bin" / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
           "--ExecutePreprocessor.timeout=900", "--output-dir", str(out), str(repo / "notebooks" / notebook.name)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=repo / "notebooks", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=enter_cgroup)
    peak = {"tree": 0.0, "kernel": 0.0, "killed": False}

    def sample() -> None:
        while proc.poll() is None:
            tree, largest = rss_of_tree(proc.pid)
            peak["tree"], peak["kernel"] = max(peak["tree"], tree), max(peak["kernel"], largest)
            if group is None and tree > cap / 2**20:
                peak["killed"] = True
                proc.kill()
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    log = proc.communicate()[0]
    sampler.join()
    result = {"name": notebook.name, "seconds": time.monotonic() - t0, "ok": proc.returncode == 0,
              "kernel_mb": peak["kernel"], "tree_mb": peak["tree"], "cgroup_mb": None, "oom": peak["killed"],
              "log": log[-1500:]}
    if group is not None:
        result["cgroup_mb"] = int((group / "memory.max_usage_in_bytes").read_text()) / 2**20
        oom = (group / "memory.oom_control").read_text()
        result["oom"] = "oom_kill 0" not in oom if "oom_kill" in oom else int((group / "memory.failcnt").read_text()) > 0
        try:
            group.rmdir()
        except OSError:
            pass
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/optiviz-binder"))
    parser.add_argument("--cap-gb", type=float, default=2.0)
    parser.add_argument("--fast", action="store_true", help="OPTIVIZ_FAST=1 (the test suite's shorter runs)")
    parser.add_argument("--reuse", action="store_true", help="keep an already built venv")
    parser.add_argument("--build-only", action="store_true", help="build the environment, run nothing")
    parser.add_argument("--only", nargs="*", default=None, help="notebook name prefixes (default: all)")
    args = parser.parse_args()
    print(f"on {os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    repo = build(args.venv, args.reuse)
    if args.build_only:
        return
    out = args.venv.parent / f"{args.venv.name}-out"
    out.mkdir(exist_ok=True)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.only:
        notebooks = [n for n in notebooks if n.name.startswith(tuple(args.only))]
    results = []
    for notebook in notebooks:
        r = execute(notebook, args.venv, repo, out, args.cap_gb, args.fast)
        results.append(r)
        cg = f"{r['cgroup_mb']:.0f} MB" if r["cgroup_mb"] is not None else "n/a"
        print(f"  {r['name']:40s} {'ok ' if r['ok'] else 'FAILED'} {r['seconds']:6.0f} s  peak kernel RSS "
              f"{r['kernel_mb']:5.0f} MB, whole tree {r['tree_mb']:5.0f} MB, cgroup peak {cg}"
              f"{', killed at the cap' if r['oom'] else ''}", flush=True)
        if not r["ok"]:
            print("    " + r["log"].replace("\n", "\n    "))
    worst = max(results, key=lambda r: r["kernel_mb"])
    ran = sum(r["ok"] and not r["oom"] for r in results)
    print(f"binder rehearsal: {ran} of {len(results)} notebooks ran under a {args.cap_gb:g} GB cap"
          f"{' (OPTIVIZ_FAST=1)' if args.fast else ''}, peak kernel RSS {worst['kernel_mb']:.0f} MB ({worst['name']})")


if __name__ == "__main__":
    main()
