"""Notebook 1 as a class sees it: rendered by the Voila `optiviz present` runs (optiviz/serve/voila.py).

Voila runs every cell before it sends the page, so the narrow-valley explorer arrives with the
surface drawn (heatmap and contours) and both trajectories already 300 steps long; no code is shown;
the explorer is live: Play makes SGD's trajectory grow; and the page asks no outside host for
anything (an offline lecture hall sees it whole, the buttons' icons included).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    EXTERNAL_URL,
    REPO_ROOT,
    bqplot_line_paths,
    click_button,
    copy_notebook,
    open_voila,
    path_point_count,
    race_path_counts,
    screenshot,
    wait_for,
)

pytestmark = pytest.mark.browser

NOTEBOOK = REPO_ROOT / "notebooks" / "01_optimizers_on_surfaces.ipynb"
SURFACE_FIG = 0  # the first explorer's figures in DOM order: surface, loss, step length


def surface_figure(page):
    return page.locator(BQPLOT_FIGURE).nth(SURFACE_FIG)


def trajectory_points(page) -> list[int]:
    """Distinct vertices of the first explorer's SGD and momentum trajectories (settled and live
    parts joined; the surface figure's first line path is the contour lines)."""
    return race_path_counts(page, SURFACE_FIG, racing=2)


ICON_FONT_JS = """
(button) => {
    const icon = button.querySelector('i.fa, i.fas, i[class*="fa-"]');
    if (!icon) return 'no icon element';
    const before = getComputedStyle(icon, '::before');
    const family = getComputedStyle(icon).fontFamily;
    if (!before.content || before.content === 'none' || before.content === '""') return 'no glyph';
    return document.fonts.check(`${getComputedStyle(icon).fontWeight} 16px ${family}`) ? 'ok' : `font ${family} not loaded`;
}
"""


def test_voila_renders_notebook_1_with_a_live_explorer(voila_server, page, tmp_path):
    outside: list[str] = []  # every request the page makes to anything but the local server
    page.on("request", lambda request: outside.append(request.url) if EXTERNAL_URL.match(request.url) else None)
    name = copy_notebook(NOTEBOOK, voila_server)
    open_voila(page, voila_server, name, timeout=240, expect=BQPLOT_FIGURE)

    # the lecture's text and its explorers, no code
    assert page.get_by_text("Optimizers on 2D surfaces").first.is_visible()
    assert page.get_by_text("Questions to try").count() >= 1
    assert page.get_by_text("import optiviz as ov").count() == 0, "Voila must not show code"
    # the update rules' formulas typeset by the MathJax bundled in Voila's page (nothing from a CDN)
    wait_for(lambda: page.locator("mjx-container").count() >= 10, 60, message="the notebook's formulas typeset")
    assert "\\nabla" not in page.locator(".jp-MarkdownOutput").first.inner_text(), "raw TeX on the page"
    figures = wait_for(lambda: (n := page.locator(BQPLOT_FIGURE).count()) >= 4 * 3 and n, 60,
                       message="four explorers with three figures each")
    assert figures >= 12

    # the surface: a heatmap image, contour lines, and both trajectories as computed headless
    surface = surface_figure(page)
    assert "Ill-conditioned quadratic" in (surface.text_content() or "")
    heatmap = surface.locator("image.heatmap")
    wait_for(lambda: heatmap.count() == 1 and len(heatmap.get_attribute("href") or "") > 1000, 30,
             message="the surface heatmap drawn as an image")
    paths = wait_for(lambda: len(bqplot_line_paths(page)[SURFACE_FIG]) >= 5 and bqplot_line_paths(page)[SURFACE_FIG],
                     30, message="contour lines and two trajectories")
    contours = paths[0]
    assert path_point_count(contours) > 100, "the contour lines are drawn"
    sgd, momentum = trajectory_points(page)
    assert sgd > 100 and momentum > 100, f"300 headless steps drawn, got {sgd} and {momentum} vertices"
    legend = page.locator(".optiviz-legend").first.inner_text()
    assert "converged at step 282" in legend, legend  # momentum, as the notebook prints

    # live: Play (the first explorer's) keeps SGD going; it had not converged after 300 steps
    legend_before = page.locator(".optiviz-legend").first.inner_text()
    before = trajectory_points(page)[0]
    click_button(page, "Play")  # the first Play button on the page is the first explorer's
    wait_for(lambda: trajectory_points(page)[0] > before
             and page.locator(".optiviz-legend").first.inner_text() != legend_before, 60,
             message=lambda: f"SGD's trajectory to grow after Play (had {before} vertices, has {trajectory_points(page)[0]})")
    click_button(page, "Pause")

    assert outside == [], f"the Voila page asked outside hosts for {outside}"
    play = page.locator("button.jupyter-button").filter(has_text="Play").first
    assert wait_for(lambda: play.evaluate(ICON_FONT_JS) == "ok", 20,
                    message=lambda: f"the Play button's icon drawn from a loaded font ({play.evaluate(ICON_FONT_JS)})")

    shot = screenshot(surface, "voila_notebook1_surface", tmp_path)
    assert shot.stat().st_size > 5_000
    assert not [e for e in page.console_errors if "Failed to load resource" not in e], page.console_errors
