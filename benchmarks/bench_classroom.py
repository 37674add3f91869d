"""A class opens the link at once: `optiviz present` on notebook 1 with N visitors.

    python benchmarks/bench_classroom.py --visitors 1 5 10 20 [--preheat K] [--max-visitors M] [--browsers B]
    python benchmarks/bench_classroom.py --imports     # what torch, bqplot and the engine cost a kernel

For each N it starts `optiviz present notebooks/01_optimizers_on_surfaces.ipynb` on 127.0.0.1
(preheating N kernels unless --preheat says otherwise), waits for the URL it prints and for the
pool to be warm (a lecturer starts it before the class; --arrive-now: at once), then opens N
headless chromium contexts at once (Debian's /usr/bin/chromium; requests to any other host are
aborted and counted), waits for each one's first figure (the surface with its trajectories), presses
Play in each and counts, inside each page, the animation frames in which SGD's trajectory changed
over --play-s seconds. Then it reads every kernel's resident memory from /proc, stops the server as
Ctrl-C does and prints, per N:

    visitors N: first figure p90 X s, failures F, kernel RSS median M MB

with the median first-figure time, frames per second per visitor, the kernels' max and total RSS
above it. A visitor past the cap counts as "class full" (what the N+1st sees), not as a failure;
a failure is a visitor with no figure, no frames after Play, or a kernel that died. Loopback only,
a bounded number of pages and seconds; it stops what it started.

`--browsers B`: only B of the N visitors are Chromium pages; the other N - B are protocol visitors
(benchmarks/protocol_visitor.py) that send and answer on the wire what a page does (page, kernel
websocket, the widgets' states, the frame window's answers, Play) and draw nothing, as if their
browsers ran on laptops of their own. Their first figure is when the states of the first surface
figure and its marks have arrived; their frames are the updates of its trajectory mark. Then the
server's CPU seconds during the visit (Voila's process, and all kernels) are printed as well.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_optimizers_on_surfaces.ipynb"
CHROMIUM = os.environ.get("OPTIVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
OUTSIDE = re.compile(r"^(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost)[:/])(?:https?|wss?)://")

# Frames in which the first figure's SGD path changed, counted on requestAnimationFrame (one per
# frame drawn at most) for `ms` milliseconds.
COUNT_FRAMES_JS = """
(ms) => new Promise(resolve => {
    const fig = document.querySelectorAll('.bqplot.figure')[0];
    const sgd = () => { const p = fig.querySelectorAll('path.line'); return p.length > 1 ? p[p.length - 2].getAttribute('d') : ''; };
    let last = sgd(), frames = 0; const t0 = performance.now();
    const tick = () => {
        const d = sgd(); if (d !== last) { frames++; last = d; }
        if (performance.now() - t0 < ms) requestAnimationFrame(tick); else resolve(frames);
    };
    requestAnimationFrame(tick);
})
"""
FIRST_FIGURE_JS = """
() => { const fig = document.querySelectorAll('.bqplot.figure')[0];
        return !!fig && !!fig.querySelector('image.heatmap') && fig.querySelectorAll('path.line').length >= 3; }
"""


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree(pid: int) -> dict[int, str]:
    """Every live process below pid: pid -> command line."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parent[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                continue
    found, todo = {}, [pid]
    while todo:
        current = todo.pop()
        for child, ppid in parent.items():
            if ppid == current and child not in found:
                try:
                    found[child] = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode())
                except OSError:
                    continue
                todo.append(child)
    return found


def kernels(pid: int) -> list[int]:
    return [p for p, cmd in tree(pid).items() if "ipykernel_launcher" in cmd]


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> tuple[float, dict[int, float]]:
    """Voila's own CPU seconds, and each kernel's."""
    voila = [p for p, cmd in tree(pid).items() if "optiviz.serve.voila" in cmd]
    return sum(cpu_s(p) for p in voila), {p: cpu_s(p) for p in kernels(pid)}


def start_present(preheat: int, max_visitors: int | None, port: int) -> tuple[subprocess.Popen, str, float]:
    """`optiviz present` as a lecturer runs it; returns it, the URL it printed and when."""
    cmd = [sys.executable, "-m", "optiviz.cli", "present", str(NOTEBOOK), "--no-browser", f"--port={port}",
           f"--preheat={preheat}"] + ([f"--max-visitors={max_visitors}"] if max_visitors else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, env=env, start_new_session=True)
    started = time.monotonic()
    for line in proc.stdout:
        match = re.search(r"http://127\.0\.0\.1:\d+\S*", line)
        if match:
            printed = time.monotonic()
            print(f"  URL printed {printed - started:.1f} s after the command started", flush=True)
            return proc, match.group(0), printed
    raise RuntimeError(f"optiviz present exited with {proc.wait()} before printing a URL")


def wait_until_warm(url: str, preheat: int, limit: float = 600.0) -> float:
    """Seconds until every preheated kernel has rendered the notebook (/optiviz/ready's count)."""
    import json
    import urllib.error
    import urllib.request

    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            body = urllib.request.urlopen(url.rstrip("/") + "/optiviz/ready", timeout=5).read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
        except OSError:
            body = b"{}"
        if json.loads(body or b"{}").get("warm", 0) >= preheat:
            break
        time.sleep(1)
    return time.monotonic() - t0


def stop_present(proc: subprocess.Popen) -> float:
    """Ctrl-C, as a terminal sends it; returns the seconds it took to stop."""
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return time.monotonic() - t0


async def visitor(browser, url: str, t_url: float, timeout: float, play_s: float, result: dict) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    outside = []

    async def refuse(route):
        outside.append(route.request.url)
        await route.abort()

    await context.route(OUTSIDE, refuse)  # only outside hosts: a route on every request delays the unload
    page = await context.new_page()
    result.update(outside=outside, figure_s=None, frames=0, full=False, error="")
    try:
        response = await page.goto(url, wait_until="commit", timeout=timeout * 1000)
        result["commit_s"] = time.monotonic() - t_url
        if response is not None and response.status == 503:
            result["full"] = "class is full" in (await page.content()).lower()
            return
        await page.wait_for_load_state("load", timeout=timeout * 1000)
        result["html_s"] = time.monotonic() - t_url
        await page.wait_for_function(FIRST_FIGURE_JS, timeout=timeout * 1000, polling=200)
        result["figure_s"] = time.monotonic() - t_url
        await page.locator("button.jupyter-button", has_text=re.compile(r"^\s*Play\s*$")).first.click(timeout=30_000)
        result["frames"] = await page.evaluate(COUNT_FRAMES_JS, play_s * 1000)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what went wrong per visitor
        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    finally:
        result["page"] = page
        result["context"] = context


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))] if ordered else float("nan")


async def classroom(n: int, preheat: int, max_visitors: int | None, timeout: float, play_s: float,
                    arrive_now: bool, browsers: int | None = None) -> str:
    from playwright.async_api import async_playwright

    from protocol_visitor import visit

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, url, t_url = start_present(preheat, max_visitors, port)
    try:
        if not arrive_now and preheat > 1:
            print(f"  all {preheat} preheated kernels warm {wait_until_warm(url, preheat):.0f} s after the URL "
                  f"(the class arrives then; --arrive-now: at once)", flush=True)
            t_url = time.monotonic()
        pages = n if browsers is None else browsers
        async with async_playwright() as pw:
            browser = (await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                       if pages else None)
            results = [dict(kind="chromium" if i < pages else "protocol") for i in range(n)]
            voila_cpu0, kernel_cpu0 = server_cpu(proc.pid)
            own_cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.gather(*(visitor(browser, url, time.monotonic(), timeout, play_s, r)
                                   if r["kind"] == "chromium" else visit(url, time.monotonic(), timeout, play_s, r)
                                   for r in results))
            voila_cpu1, kernel_cpu1 = server_cpu(proc.pid)
            own_cpu, wall = time.process_time() - own_cpu0, time.monotonic() - wall0
            pids = kernels(proc.pid)
            kernel_rss = [rss_mb(p) for p in pids]
            total_rss = sum(rss_mb(p) for p in [proc.pid, *tree(proc.pid)])
            for r in results:  # leaving a page sends Voila its kernel's shutdown (a beacon on unload)
                try:
                    if r["kind"] == "chromium":
                        await r["page"].goto("about:blank", timeout=10_000)
                    else:
                        await r["leave"]()
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(2)  # closing the browser at once would drop the beacons in flight
            if browser is not None:
                await browser.close()
        deadline = time.monotonic() + 20  # the kernels that ran during the visit should go with their pages
        while set(pids) & set(kernels(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.5)
        left_after_leaving = len(set(pids) & set(kernels(proc.pid)))
    finally:
        stop_s = stop_present(proc)
    served = [r for r in results if not r["full"]]
    figures = [r["figure_s"] for r in served if r["figure_s"] is not None]
    fps = [r["frames"] / play_s for r in served if r["figure_s"] is not None]
    failed = [r for r in served if r["figure_s"] is None or r["frames"] == 0]
    lost = max(0, len(served) - len(kernel_rss))  # kernels fewer than served visitors: one died
    outside = sum(len(r["outside"]) for r in results)
    for r in failed:
        print(f"  failed ({r['kind']}): {r['error'] or 'no frames after Play'}")
    for kind in ("chromium", "protocol"):
        mine = [r for r in served if r["kind"] == kind]
        if mine and (len(mine) < len(served) or kind == "protocol"):
            f = [r["figure_s"] for r in mine if r["figure_s"] is not None]
            rates = [r["frames"] / play_s for r in mine if r["figure_s"] is not None]
            extra = ""
            if kind == "protocol":
                sizes = [r["state_bytes"] for r in mine if r.get("state_bytes")]
                largest = next((r["largest"] for r in mine if r.get("largest")), [])
                extra = (f"; widget states {statistics.median(sizes) / 1e6 if sizes else 0:.2f} MB a page (largest: "
                         + ", ".join(f"{name} {b / 1e3:.0f} kB" for b, name in largest)
                         + f"); per-widget fallback after 4 s: {sum(r['fallback'] for r in mine)}")
            print(f"  {kind} visitors {len(mine)}: first figure median "
                  f"{statistics.median(f) if f else float('nan'):.1f} s, p90 {percentile(f, 0.9):.1f} s; frames/s "
                  f"median {statistics.median(rates) if rates else 0:.1f} (min {min(rates, default=0):.1f}){extra}")
    kernel_cpu = sum(kernel_cpu1.get(p, 0.0) - c for p, c in kernel_cpu0.items()) + sum(
        c for p, c in kernel_cpu1.items() if p not in kernel_cpu0)
    print(f"  CPU during the visit ({wall:.0f} s wall, load average {os.getloadavg()[0]:.1f}): Voila's process "
          f"{voila_cpu1 - voila_cpu0:.1f} s, kernels {kernel_cpu:.1f} s, this benchmark's process {own_cpu:.1f} s")
    html = [r["html_s"] for r in served if r.get("html_s") is not None]
    print(f"  page loaded (HTML, scripts): median {statistics.median(html) if html else float('nan'):.1f} s, "
          f"p90 {percentile(html, 0.9):.1f} s after the visitors arrived")
    print(f"  N {n} (load average {os.getloadavg()[0]:.1f}): first figure median {statistics.median(figures) if figures else float('nan'):.1f} s, "
          f"p90 {percentile(figures, 0.9):.1f} s; frames per second per visitor median "
          f"{statistics.median(fps) if fps else 0:.1f} (min {min(fps, default=0):.1f}) over {play_s:.0f} s of Play")
    print(f"  kernels {len(kernel_rss)} (preheat {preheat}): RSS median {statistics.median(kernel_rss) if kernel_rss else 0:.0f} MB, "
          f"max {max(kernel_rss, default=0):.0f} MB; server, kernels and all: {total_rss / 1024:.2f} GB")
    print(f"  class full pages {sum(r['full'] for r in results)}, kernels lost {lost}, requests to outside hosts "
          f"{outside}, of the {len(pids)} kernels of the visit {left_after_leaving} still ran 20 s after every page left, "
          f"stopped in {stop_s:.1f} s")
    median_rss = statistics.median(kernel_rss) if kernel_rss else 0
    return (f"visitors {n}: first figure p90 {percentile(figures, 0.9):.1f} s, failures {len(failed) + lost}, "
            f"kernel RSS median {median_rss:.0f} MB")


IMPORT_STEPS = [
    ("a python process", ""),
    ("+ ipykernel (a bare kernel)", "import ipykernel.kernelapp"),
    ("+ numpy", "import numpy"),
    ("+ torch", "import torch"),
    ("+ ipywidgets and bqplot", "import ipywidgets, bqplot"),
    ("+ the optiviz engine", "import optiviz as ov; ov.simulate('quadratic', 'sgd', steps=10)"),
    ("+ notebook 1's four explorers", "[ov.SurfaceExplorer(preset=p).step(300) for p in "
                                      "('narrow_valley', 'nesterov_overshoot', 'lr_too_large', 'adagrad_dies')]"),
]


def import_costs() -> None:
    """Resident memory after each import, in one process, as a kernel takes them in turn."""
    code = ["import os, sys", "def rss():", " return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) / 1024"]
    for label, stmt in IMPORT_STEPS:
        if stmt:
            code.append(stmt)
        code.append(f"print({label!r}, round(rss()), flush=True)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, env=env, timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    previous = 0.0
    for line in out.stdout.splitlines():
        label, value = line.rsplit(" ", 1)
        mb = float(value)
        print(f"  {label:32s} {mb:6.0f} MB  ({mb - previous:+.0f} MB)")
        previous = mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, nargs="*", default=[1, 5, 10, 20])
    parser.add_argument("--preheat", type=int, default=None, help="preheated kernels (default: N)")
    parser.add_argument("--max-visitors", type=int, default=None, help="the visitor cap (default: from memory)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds a visitor waits for a figure")
    parser.add_argument("--play-s", type=float, default=5.0, help="seconds of Play whose frames are counted")
    parser.add_argument("--arrive-now", action="store_true",
                        help="visitors arrive as the URL is printed, not once the preheated pool is warm")
    parser.add_argument("--browsers", type=int, default=None,
                        help="visitors that are Chromium pages (default: all); the rest are protocol visitors")
    parser.add_argument("--imports", action="store_true", help="only measure what each import costs a kernel")
    args = parser.parse_args()
    print(f"on {os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    if args.imports:
        import_costs()
        return
    for n in args.visitors:
        if not 1 <= n <= 40:
            parser.error(f"--visitors must be 1 to 40 each, got {n}")
        if args.browsers is not None and not 0 <= args.browsers <= n:
            parser.error(f"--browsers must be 0 to the number of visitors ({n}), got {args.browsers}")
        line = asyncio.run(classroom(n, n if args.preheat is None else args.preheat, args.max_visitors,
                                     args.timeout, args.play_s, args.arrive_now, args.browsers))
        print(line, flush=True)


if __name__ == "__main__":
    main()
