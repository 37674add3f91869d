"""What a person sees in headless Chromium: frames drawn, slider latency, dashboard updates, outside requests.

Everything is measured from the page itself, as the browser tests drive it (tests/browser/
browser_helpers.py): JupyterLab is started on 127.0.0.1, small notebooks are written to a tmp
folder, Debian's chromium opens them, and a script inside the page polls the SVG paths' ``d`` on
every requestAnimationFrame (headless chromium runs ~60 a second, so a count below that is what
the kernel sent, not what the browser could do).

- explorer frames drawn per second (the trajectories' paths changing), gap median and p90, for
  2 and 6 optimizers from step 0, and 6 from step 3,000 (what a class sees half a minute in: each
  path ~200-500 points on screen); target >= 30/s, p90 <= 50 ms;
- slider change -> marker on screen: from the Enter on SGD's lr readout to the first animation
  frame whose loss panel shows the "lr ..." marker; target <= 100 ms;
- dashboard loss-line updates per second and their gap p90; target >= 10/s, steady;
- dashboard images/s with the page open (its progress line's "images seen" over wall time) vs
  the same trainer headless in this process; target >= 0.7x;
- requests to hosts other than 127.0.0.1 from every page (they are aborted and counted); target 0.
- ``--voila``: also measures ``optiviz present --preheat 1``: URL printed -> first figure on the page, kernels
  running before any visitor, outside requests from the page.

    python benchmarks/bench_browser.py [--seconds 6] [--voila] [--only explorer dashboard voila]

The machine is shared: figures vary with other processes' load; the loadavg is printed with them.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from browser_helpers import (  # noqa: E402
    BQPLOT_FIGURE,
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    EXTERNAL_URL,
    VIEWPORT,
    click_button,
    open_notebook_and_run_all,
    start_jupyter_lab,
    wait_for,
    widget_text,
)

SIX = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
EXPLORER_CELL = """import optiviz as ov
explorer = ov.SurfaceExplorer("rosenbrock", {optimizers!r}, speed=2)
explorer.step({steps})  # 0: a fresh race
explorer"""
DASHBOARD_CELL = """import torch
torch.set_num_threads(1)
import optiviz as ov
data = ov.load_cifar10().subset(1024, 256)
dash = ov.TrainingDashboard("small_convnet", data=data, batch_size=32, probe_every=4)
dash"""

# Counts changes of the selected paths' d on every animation frame for `ms`; returns their times.
_SAMPLE_JS = """async ([selector, figure, ms]) => {
    const fig = document.querySelectorAll('.bqplot.figure')[figure];
    const read = () => Array.from(fig.querySelectorAll(selector)).map(p => p.getAttribute('d')).join('|');
    let last = read(); const times = []; const t0 = performance.now();
    await new Promise(done => { const tick = (now) => {
        const d = read(); if (d !== last) { times.push(now); last = d; }
        if (now - t0 < ms) requestAnimationFrame(tick); else done(); };
        requestAnimationFrame(tick); });
    return {times, elapsed: performance.now() - t0};
}"""
# Arms a watcher: the time of the next Enter keydown, and of the first frame after it whose figure
# shows one more `label` (a new "lr ..." marker; the slider snaps the typed value to its grid).
_ARM_MARKER_JS = """([figure, label]) => {
    window.__lat = {enter: null, seen: null};
    const fig = document.querySelectorAll('.bqplot.figure')[figure];
    const count = () => (fig.textContent || '').split(label).length;
    const before = count();
    const onKey = (e) => { if (e.key === 'Enter' && window.__lat.enter === null) window.__lat.enter = performance.now(); };
    document.addEventListener('keydown', onKey, true);
    const tick = (now) => {
        if (window.__lat.enter !== null && count() > before) {
            window.__lat.seen = now; document.removeEventListener('keydown', onKey, true); return; }
        requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
}"""


def gap_stats(times: list[float], elapsed_ms: float) -> tuple[float, float, float]:
    """(changes per second, median gap ms, p90 gap ms) from change times in ms."""
    if len(times) < 3:
        return len(times) / (elapsed_ms / 1000.0), float("nan"), float("nan")
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    rate = (len(times) - 1) / ((times[-1] - times[0]) / 1000.0)
    return rate, statistics.median(gaps), gaps[min(len(gaps) - 1, int(round(0.9 * (len(gaps) - 1))))]


def write_notebook(folder: Path, name: str, source: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / name)
    return name


class Pages:
    """A chromium with one context per page; counts (and aborts) requests to outside hosts."""

    def __init__(self, pw) -> None:
        self.browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
        self.outside: list[str] = []

    def new(self, viewport: dict | None = None):
        context = self.browser.new_context(viewport=viewport or VIEWPORT)
        context.set_default_timeout(30_000)
        context.route(EXTERNAL_URL, lambda route: (self.outside.append(route.request.url), route.abort()))
        return context.new_page()

    def close(self) -> None:
        self.browser.close()


def measure_explorer(pages: Pages, lab, folder: Path, optimizers: tuple[str, ...], seconds: float, steps: int = 0) -> dict:
    name = write_notebook(folder, f"bench_explorer_{len(optimizers)}_{steps}.ipynb",
                          EXPLORER_CELL.format(optimizers=optimizers, steps=steps))
    page = pages.new({"width": 1920, "height": 1200})
    try:
        open_notebook_and_run_all(page, lab, name, timeout=180, expect=BQPLOT_FIGURE)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:hide-all-cell-code')")
        click_button(page, "Play")
        page.wait_for_timeout(1500)  # past the first frames
        sample = page.evaluate(_SAMPLE_JS, ["path.line", 0, seconds * 1000])
        rate, med, p90 = gap_stats(sample["times"], sample["elapsed"])
        latencies = []
        for lr in (0.0009, 0.0008, 0.0007, 0.0006, 0.0005):  # below the default: no divergence
            page.wait_for_timeout(1200)  # the previous change's echo has settled in the readout
            page.evaluate(_ARM_MARKER_JS, [1, "lr "])
            readout = page.locator(".optiviz-row-sgd .widget-slider .widget-readout").first
            readout.click()
            readout.press("ControlOrMeta+a")
            readout.press_sequentially(repr(lr))
            readout.press("Enter")
            try:
                lat = wait_for(lambda: page.evaluate("() => window.__lat.seen !== null && window.__lat"), 15,
                               message=f"a marker for lr {lr} on the loss panel")
                latencies.append(lat["seen"] - lat["enter"])
            except TimeoutError:
                print(f"  no marker for lr {lr} within 15 s; the loss panel reads "
                      f"{page.locator(BQPLOT_FIGURE).nth(1).text_content()!r}", flush=True)
        click_button(page, "Pause")
        return {"rate": rate, "median": med, "p90": p90, "slider": statistics.median(latencies or [float("nan")]),
                "slider_max": max(latencies or [float("nan")])}
    finally:
        page.context.close()
        lab.shutdown_kernels()


def images_seen(page) -> int:
    match = re.search(r"([\d,]+) images seen", widget_text(page, "optiviz-dash-progress"))
    return int(match.group(1).replace(",", "")) if match else 0


def headless_images_per_s(seconds: float) -> float:
    """The dashboard notebook's trainer, with no view, in this process (one torch thread, as there)."""
    import torch

    torch.set_num_threads(1)
    import optiviz as ov

    data = ov.load_cifar10().subset(1024, 256)
    dash = ov.TrainingDashboard("small_convnet", data=data, batch_size=32, probe_every=4)  # never displayed
    trainer = dash.trainer
    trainer.run(steps=5)  # warm
    n0, t0 = trainer.step_count, time.monotonic()
    while time.monotonic() - t0 < seconds:
        trainer.run(steps=10)
    rate = (trainer.step_count - n0) * 32 / (time.monotonic() - t0)
    dash.close()
    return rate


def measure_dashboard(pages: Pages, lab, folder: Path, seconds: float) -> dict:
    name = write_notebook(folder, "bench_dashboard.ipynb", DASHBOARD_CELL)
    page = pages.new({"width": 1920, "height": 1200})
    try:
        open_notebook_and_run_all(page, lab, name, timeout=180, expect=BQPLOT_FIGURE)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:hide-all-cell-code')")
        click_button(page, "Start")
        wait_for(lambda: images_seen(page) > 0, 60, message="training to start")
        page.wait_for_timeout(1500)
        n0, t0 = images_seen(page), time.monotonic()
        sample = page.evaluate(_SAMPLE_JS, ["path.line", 0, seconds * 1000])
        n1, t1 = images_seen(page), time.monotonic()
        click_button(page, "Stop")
        rate, med, p90 = gap_stats(sample["times"], sample["elapsed"])
    finally:
        page.context.close()
        lab.shutdown_kernels()
    open_rate = (n1 - n0) / (t1 - t0)
    headless = headless_images_per_s(min(seconds, 6.0))
    return {"rate": rate, "median": med, "p90": p90, "open": open_rate, "headless": headless}


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kernels_under(pid: int) -> int:
    """ipykernel processes below `pid` (Voila's kernels)."""
    count = 0
    for child in _descendants(pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        count += b"ipykernel" in cmd
    return count


PREHEAT = 1  # `present`'s default: one kernel warm before the first visitor (issue 20's preheating)


def measure_voila(pages: Pages, notebook: Path) -> dict:
    """`optiviz present NOTEBOOK`: from the URL printed to the first figure drawn in a page opened then."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen([sys.executable, "-m", "optiviz.cli", "present", str(notebook), "--no-browser",
                             "--preheat", str(PREHEAT)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            start_new_session=True)
    started = time.monotonic()
    try:
        url = None
        for line in proc.stdout:
            found = re.search(r"https?://127\.0\.0\.1:\d+\S*", line)
            if found:
                url = found.group(0)
                break
        if url is None:
            raise RuntimeError("optiviz present printed no URL")
        printed = time.monotonic()
        time.sleep(2.0)
        idle_kernels = kernels_under(proc.pid)
        page = pages.new()
        before = len(pages.outside)
        opened = time.monotonic()
        page.goto(url, wait_until="domcontentloaded", timeout=180_000)
        page.locator(BQPLOT_FIGURE).first.wait_for(state="visible", timeout=180_000)
        shown = time.monotonic()
        page.wait_for_timeout(1000)
        outside = len(pages.outside) - before
        page.context.close()
        return {"start_to_url": printed - started, "url_to_figure": shown - printed,
                "open_to_figure": shown - opened, "idle_kernels": idle_kernels, "outside": outside}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="sampling window per measurement")
    ap.add_argument("--voila", action="store_true", help="also measure `optiviz present` (notebook 1)")
    ap.add_argument("--only", nargs="+", choices=("explorer", "dashboard", "voila"), default=None)
    args = ap.parse_args()
    parts = set(args.only or ("explorer", "dashboard") + (("voila",) if args.voila else ()))
    from playwright.sync_api import sync_playwright

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine: figures vary)")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        folder, state = Path(tmp) / "notebooks", Path(tmp) / "state"
        folder.mkdir()
        pages = Pages(pw)
        lab = start_jupyter_lab(folder, state) if parts & {"explorer", "dashboard"} else None
        try:
            if "explorer" in parts:
                for optimizers, steps in ((("sgd", "momentum"), 0), (SIX, 0), (SIX, 3000)):
                    r = measure_explorer(pages, lab, folder, optimizers, args.seconds, steps)
                    since = f" from step {steps:,}" if steps else ""
                    print(f"explorer, {len(optimizers)} optimizers{since}: {r['rate']:.1f} frames drawn/s "
                          f"(target >= 30), gap median {r['median']:.0f} ms, p90 {r['p90']:.0f} ms (target <= 50); "
                          f"slider -> marker on screen median {r['slider']:.0f} ms, max {r['slider_max']:.0f} ms "
                          f"(target <= 100)", flush=True)
            if "dashboard" in parts:
                r = measure_dashboard(pages, lab, folder, args.seconds)
                print(f"dashboard: {r['rate']:.1f} loss-line updates/s (target >= 10), gap median {r['median']:.0f} ms, "
                      f"p90 {r['p90']:.0f} ms; images/s page open {r['open']:,.0f} vs headless {r['headless']:,.0f}: "
                      f"{r['open'] / r['headless']:.2f}x (target >= 0.7x)", flush=True)
            if lab is not None:
                print(f"JupyterLab pages: {len(pages.outside)} requests to outside hosts (target 0)"
                      + (f": {sorted(set(pages.outside))[:5]}" if pages.outside else ""), flush=True)
            if "voila" in parts:
                r = measure_voila(pages, ROOT / "notebooks" / "01_optimizers_on_surfaces.ipynb")
                print(f"voila (optiviz present, notebook 1): URL printed {r['start_to_url']:.1f} s after start; "
                      f"URL printed -> first figure {r['url_to_figure']:.1f} s (target <= 10; page open -> figure "
                      f"{r['open_to_figure']:.1f} s); {r['idle_kernels']} kernels before any visitor (target: the {PREHEAT} preheated "
                      f"as asked, none more: the readiness check renders nothing); "
                      f"{r['outside']} requests to outside hosts (target 0)", flush=True)
        finally:
            if lab is not None:
                lab.stop()
            pages.close()


if __name__ == "__main__":
    main()
