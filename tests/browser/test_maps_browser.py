"""The stability map as a class sees it in Voila: coloured by measured rate, the theory's edge and
optimum drawn inside the plot, a click showing a cell's measured and predicted rate, and the
panels inside a 1280 px wide window."""
from __future__ import annotations

import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    REPO_ROOT,
    bqplot_line_paths,
    copy_notebook,
    open_voila,
    path_points,
    screenshot,
    wait_for,
    widget_text,
)

pytestmark = pytest.mark.browser

NOTEBOOK = REPO_ROOT / "tests" / "browser" / "notebooks" / "maps.ipynb"


def test_voila_stability_map_with_the_theory(voila_server, page, tmp_path):
    page.set_viewport_size({"width": 1280, "height": 1000})
    name = copy_notebook(NOTEBOOK, voila_server)
    open_voila(page, voila_server, name, timeout=240, expect=BQPLOT_FIGURE)
    wait_for(lambda: page.locator(BQPLOT_FIGURE).count() >= 2, 60, message="the map and the surface figures")
    map_fig = page.locator(BQPLOT_FIGURE).nth(0)
    heatmap = map_fig.locator("image.heatmap")
    wait_for(lambda: heatmap.count() == 1 and len(heatmap.get_attribute("href") or "") > 1000, 30,
             message="the map drawn as an image")
    assert "rate 0.752" in page.locator(".optiviz-theory").first.inner_text()

    # the dashed edge: one vertex per momentum row (40), all inside the heatmap's box
    edge = wait_for(lambda: (p := bqplot_line_paths(page)) and p[0] and p[0][0], 30, message="the edge line")
    points = path_points(edge)
    assert len(points) == 40
    hm_box, fig_box = heatmap.bounding_box(), map_fig.bounding_box()
    # path coordinates are relative to the plot area: the figure less its margins (maps.py)
    width, height = fig_box["width"] - 75 - 110, fig_box["height"] - 50 - 60
    for x, y in points:
        assert -2 <= x <= width + 2 and -2 <= y <= height + 2, (x, y, width, height)

    # click the middle of the map: the selected cell's measured rate beside the predicted one
    map_fig.locator("image").last.click(position={"x": hm_box["width"] * 0.5 + (hm_box["x"] - fig_box["x"]),
                                                   "y": hm_box["height"] * 0.5 + (hm_box["y"] - fig_box["y"])})
    wait_for(lambda: "measured rate" in widget_text(page, "optiviz-map-selection"), 30,
             message=lambda: f"the clicked cell's rates (shows {widget_text(page, 'optiviz-map-selection')!r})")
    assert "predicted" in widget_text(page, "optiviz-map-selection")

    # both panels inside the window
    for k in range(2):
        box = page.locator(BQPLOT_FIGURE).nth(k).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1280, box
    shot = screenshot(page, "stability_map_rate", tmp_path)
    assert shot.stat().st_size > 5_000
    assert not [e for e in page.console_errors if "Failed to load resource" not in e], page.console_errors
