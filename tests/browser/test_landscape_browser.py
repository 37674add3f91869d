"""LandscapeView in a real browser (JupyterLab, headless chromium): the landscape is drawn, each
optimizer's path grows while the nets train, and a click on the landscape shows the net there."""
from __future__ import annotations

import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    bqplot_line_point_counts,
    click_button,
    copy_notebook,
    hide_all_code,
    open_notebook_and_run_all,
    screenshot,
    wait_for,
    widget_text,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "landscape.ipynb"
LANDSCAPE_FIG = 0  # figures in DOM order: the landscape, then the interpolation curves


def path_counts(page) -> list[int]:
    """Vertices of the three paths (the landscape figure's lines after its contours)."""
    return bqplot_line_point_counts(page, LANDSCAPE_FIG)[1:4]


def test_jupyterlab_landscape_draws_and_paths_grow(jupyter_lab_server, page):
    name = copy_notebook(NOTEBOOK, jupyter_lab_server, "landscape_lab.ipynb")
    open_notebook_and_run_all(page, jupyter_lab_server, name, timeout=120, expect=BQPLOT_FIGURE)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    wait_for(lambda: page.locator(BQPLOT_FIGURE).count() >= 2, 30, message="the landscape and the curves")
    assert max(path_counts(page) or [0]) <= 1, "nothing trains before Start"

    click_button(page, "Start")
    fig = page.locator(BQPLOT_FIGURE).nth(LANDSCAPE_FIG)
    heatmap = fig.locator("image.heatmap")
    wait_for(lambda: heatmap.count() == 1 and len(heatmap.get_attribute("href") or "") > 500, 60,
             message="the landscape drawn as an image")
    wait_for(lambda: len(path_counts(page)) == 3 and min(path_counts(page)) >= 3, 60,
             message=lambda: f"three paths with a few points (have {path_counts(page)})")
    first = path_counts(page)
    wait_for(lambda: max(path_counts(page)) > max(first), 60,
             message=lambda: f"the paths to grow past {first} (have {path_counts(page)})")
    assert "the plane holds" in widget_text(page, "optiviz-landscape-status")
    assert bqplot_line_point_counts(page, 0)[0] > 10, "contour lines over the heatmap"

    # click the middle of the landscape: the loss and accuracy of the net at that point of the plane
    box, fig_box = heatmap.bounding_box(), fig.bounding_box()
    fig.locator("image").last.click(position={"x": box["x"] - fig_box["x"] + 0.5 * box["width"],
                                              "y": box["y"] - fig_box["y"] + 0.5 * box["height"]})
    wait_for(lambda: "training loss" in widget_text(page, "optiviz-landscape-selection"), 60,
             message=lambda: f"the clicked point's loss (shows {widget_text(page, 'optiviz-landscape-selection')!r})")
    assert "accuracy" in widget_text(page, "optiviz-landscape-selection")
    wait_for(lambda: "Done" in page.locator(".optiviz-landscape button").first.inner_text(), 120,
             message="the race to finish")
    hide_all_code(page)
    page.set_viewport_size({"width": 1400, "height": 1200})
    page.locator(".optiviz-landscape").first.scroll_into_view_if_needed()
    shot = screenshot(page.locator(".optiviz-landscape").first, "landscape")
    assert shot.stat().st_size > 30_000
    broken = [e for e in page.console_errors if "NaN" in e or "Error setting state" in e or "Could not create a view" in e]
    assert not broken, broken[:5]
