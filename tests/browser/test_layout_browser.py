"""Layouts that fit the screens a class uses (JupyterLab, headless chromium; nothing timed).

Every panel of the explorer (six optimizers) and of the dashboard lies inside its output box with
its title whole, at 1280 px with JupyterLab's file browser open and at 1920 px; at 1000 px height
the explorer's surface and its Play button are on screen together; and no Lab page asks anything
of a host other than 127.0.0.1.
"""
from __future__ import annotations

import nbformat
import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    EXTERNAL_URL,
    open_notebook_and_run_all,
    screenshot,
    wait_for,
)

pytestmark = pytest.mark.browser

CELLS = [
    "import torch\ntorch.set_num_threads(1)\nimport optiviz as ov\n"
    "explorer = ov.SurfaceExplorer('quadratic', ov.OPTIMIZERS, condition=100)\nexplorer",
    "dash = ov.TrainingDashboard('mlp', n_train=256, n_val=64)\ndash",
]

# Each drawn figure of the output of `selector`'s views: its box, its title's, and its output box's.
_GEOMETRY_JS = """(selector) => Array.from(document.querySelectorAll(selector)).flatMap(view => {
    const box = view.closest('.jp-OutputArea-output').getBoundingClientRect();
    return Array.from(view.querySelectorAll('.bqplot.figure')).map(fig => {
        const r = fig.getBoundingClientRect();
        const t = fig.querySelector('.mainheading');
        const tr = t ? t.getBoundingClientRect() : r;
        return {view: selector, title: t ? t.textContent : '', left: r.left, right: r.right, width: r.width,
                titleLeft: tr.left, titleRight: tr.right, boxLeft: box.left, boxRight: Math.min(box.right, innerWidth)};
    }).filter(f => f.width > 0);   // figures in a hidden tab are not drawn
})"""


def misplaced(page) -> list[str]:
    """Figures (by title) that stick out of their output box, or whose title sticks out of them."""
    bad = []
    for selector in (".optiviz-explorer-main", ".optiviz-dashboard"):
        figures = page.evaluate(_GEOMETRY_JS, selector)
        assert figures, f"no figures drawn in {selector}"
        for f in figures:
            if f["left"] < f["boxLeft"] - 1 or f["right"] > f["boxRight"] + 1:
                bad.append(f"{selector} {f['title']!r}: figure [{f['left']:.0f}, {f['right']:.0f}] outside "
                           f"its box [{f['boxLeft']:.0f}, {f['boxRight']:.0f}]")
            if f["titleLeft"] < f["left"] - 1 or f["titleRight"] > f["right"] + 1:
                bad.append(f"{selector} {f['title']!r}: title cut (figure [{f['left']:.0f}, {f['right']:.0f}], "
                           f"title [{f['titleLeft']:.0f}, {f['titleRight']:.0f}])")
    return bad


def test_panels_fit_their_boxes_and_play_stays_by_the_surface(jupyter_lab_server, page):
    outside: list[str] = []
    page.context.route(EXTERNAL_URL, lambda route: (outside.append(route.request.url), route.abort()))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, jupyter_lab_server.root_dir / "layout.ipynb")

    page.set_viewport_size({"width": 1280, "height": 1000})
    open_notebook_and_run_all(page, jupyter_lab_server, "layout.ipynb", timeout=180, expect=BQPLOT_FIGURE)
    # six panels and the MLP's two layers' histograms
    wait_for(lambda: page.locator(f".optiviz-dashboard {BQPLOT_FIGURE}").count() >= 8, 60,
             message=lambda: f"every dashboard panel (have {page.locator(f'.optiviz-dashboard {BQPLOT_FIGURE}').count()})")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:hide-all-cell-code')")

    # 1280 px with the file browser open: panels wrap under each other rather than being cut
    page.evaluate("() => { window.jupyterapp.shell.expandLeft(); window.jupyterapp.shell.activateById('filebrowser'); }")
    wait_for(lambda: page.locator(".jp-FileBrowser").first.is_visible(), 10, message="the file browser open")
    page.wait_for_timeout(500)  # the notebook re-lays out beside it
    assert misplaced(page) == []
    screenshot(page, "layout_1280_file_browser")

    # 1920 px, the sidebar closed: side by side, still inside
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(500)
    assert misplaced(page) == []

    # 1000 px height, six optimizers racing: with the explorer scrolled to its top, Play and the
    # whole surface are on screen together
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.locator(".optiviz-explorer-main").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    play = page.locator(".optiviz-explorer-main button.jupyter-button", has_text="Play").first.bounding_box()
    surface = page.locator(f".optiviz-explorer-main {BQPLOT_FIGURE}").first.bounding_box()
    for what, b in (("Play", play), ("the surface", surface)):
        assert b["y"] >= 0 and b["y"] + b["height"] <= 1000, f"{what} off screen: {b}"
    screenshot(page, "layout_1000px_six_optimizers")
    assert outside == [], f"requests to outside hosts: {outside[:5]}"
