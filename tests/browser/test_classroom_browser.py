"""The explorer's classroom tab in JupyterLab, headless chromium: a predict-then-reveal round.

A lecturer starts a round (the paths vanish), the class clicks where SGD and momentum will be
after N steps (crosses appear, named), Reveal plays the race to step N and the tab says how far
each guess was; the guesses stay linked to where the optimizers really got.
"""
from __future__ import annotations

import re

import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    bqplot_line_paths,
    click_button,
    copy_notebook,
    open_notebook_and_run_all,
    path_point_count,
    screenshot,
    wait_for,
    widget_text,
)

pytestmark = pytest.mark.browser

SURFACE_FIG = 0


def visible_trajectory_counts(page) -> list[int]:
    """Vertices of the surface figure's visible line paths after the contours (the trajectories)."""
    counts = page.locator(BQPLOT_FIGURE).nth(SURFACE_FIG).evaluate("""f => Array.from(f.querySelectorAll('path.line'))
        .filter(p => { for (let n = p; n && n !== f; n = n.parentElement)  // bqplot hides a mark: display none
                           if (getComputedStyle(n).display === 'none') return false;
                       return true; })
        .map(p => p.getAttribute('d') || '')""")
    return [path_point_count(d) for d in counts[1:]]


def test_jupyterlab_predict_then_reveal(jupyter_lab_server, page):
    name = copy_notebook("explorer.ipynb", jupyter_lab_server, "classroom_lab.ipynb")
    open_notebook_and_run_all(page, jupyter_lab_server, name, timeout=120, expect=BQPLOT_FIGURE)
    wait_for(lambda: len(bqplot_line_paths(page)[SURFACE_FIG]) == 5, 30,
             message="contours + 2 trajectories (settled and live parts)")
    page.locator(".lm-TabBar-tab", has_text=re.compile(r"^\s*classroom\s*$")).first.click()  # not the notebook's tab
    steps = page.locator(".optiviz-round-steps input").first
    steps.fill("60")
    steps.press("Enter")
    click_button(page, "New round")
    wait_for(lambda: "Click where sgd" in widget_text(page, "optiviz-predict"), 30, message="the round to ask for sgd")
    wait_for(lambda: visible_trajectory_counts(page) == [] or max(visible_trajectory_counts(page)) == 0, 30,
             message=lambda: f"the paths hidden (visible: {visible_trajectory_counts(page)})")

    plot = page.locator(f"{BQPLOT_FIGURE} .plotarea_background").first
    plot.scroll_into_view_if_needed()  # the classroom tab sits below the map
    page.wait_for_timeout(300)
    box = plot.bounding_box()
    for (fx, fy), then in (((0.35, 0.45), "Click where momentum"), ((0.55, 0.5), "Every optimizer has a guess")):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])  # a guess for sgd, then momentum
        wait_for(lambda: then in widget_text(page, "optiviz-predict"), 30,
                 message=lambda: f"{then!r} after a click (says {widget_text(page, 'optiviz-predict')!r})")
    surface_text = page.locator(BQPLOT_FIGURE).nth(SURFACE_FIG).text_content() or ""
    assert "sgd" in surface_text and "momentum" in surface_text, "the guesses are drawn with their names"
    assert "step 0" in widget_text(page, "optiviz-status"), "a guess does not restart or move the race"

    click_button(page, "Reveal")
    wait_for(lambda: "closest guess" in widget_text(page, "optiviz-predict"), 30, message="the round's result")
    wait_for(lambda: "step 60" in widget_text(page, "optiviz-status"), 60,
             message=lambda: f"the race played to step 60 (status {widget_text(page, 'optiviz-status')!r})")
    result = widget_text(page, "optiviz-predict")
    assert "sgd: at (" in result and "guess off by" in result
    counts = visible_trajectory_counts(page)
    assert len(counts) >= 3 and sorted(counts)[-2] > 20, f"paths shown again and grown, plus the links: {counts}"
    assert widget_text(page, "optiviz-error-line").strip() == ""

    # the fair race's seeds: every seed's path faint, each optimizer's mean path on top (4 seeds x 2 + 2)
    readout = page.locator(".optiviz-seed-count .widget-readout").first
    readout.click()
    readout.press("ControlOrMeta+a")
    readout.press_sequentially("4")
    readout.press("Enter")
    click_button(page, "Seeds")
    wait_for(lambda: "4 seeds x 300 steps" in widget_text(page, "optiviz-fair"), 60, message="the seeds' scores")
    wait_for(lambda: len(visible_trajectory_counts(page)) >= len(counts) + 10, 30,
             message=lambda: f"10 more paths (have {visible_trajectory_counts(page)})")
    page.locator(BQPLOT_FIGURE).nth(SURFACE_FIG).scroll_into_view_if_needed()
    screenshot(page.locator(BQPLOT_FIGURE).nth(SURFACE_FIG), "explorer_classroom")
    bad = [e for e in page.console_errors if "invalid format" in e or "NaN" in e or "Error setting state" in e]
    assert not bad, bad[:3]
