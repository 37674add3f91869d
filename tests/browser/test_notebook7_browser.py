"""The explorer and the dashboard in Jupyter Notebook 7 (the `notebook` package), headless chromium.

Many students open notebooks there, not in Lab: Notebook 7 is built on JupyterLab's components and
loads the same prebuilt widget extensions, and this is the check that bqplot draws and streams in
it. As the Lab tests do: press Play and watch the trajectories grow; press Start and watch the loss
line grow.
"""
from __future__ import annotations

import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    bqplot_line_paths,
    click_button,
    copy_notebook,
    open_notebook_and_run_all,
    path_point_count,
    race_path_counts,
    screenshot,
    wait_for,
    widget_text,
)

pytestmark = pytest.mark.browser


def test_notebook7_plays_the_explorer_and_starts_the_dashboard(notebook7_server, page):
    name = copy_notebook("explorer.ipynb", notebook7_server, "explorer_nb7.ipynb")
    open_notebook_and_run_all(page, notebook7_server, name, timeout=150, expect=BQPLOT_FIGURE)
    assert "step 0" in widget_text(page, "optiviz-status")
    wait_for(lambda: len(bqplot_line_paths(page)[0]) == 5, 30, message="contours + 2 trajectories (settled and live)")
    click_button(page, "Play")
    wait_for(lambda: min(race_path_counts(page, 0, 2) or [0]) >= 15, 60,
             message=lambda: f"the trajectories to grow (have {race_path_counts(page, 0, 2)})")
    assert "running" in widget_text(page, "optiviz-legend")
    click_button(page, "Pause")
    screenshot(page.locator(".optiviz-explorer-main").first, "explorer_notebook7")
    assert not [e for e in page.console_errors if "NaN" in e or "invalid format" in e or "Error setting state" in e]

    name = copy_notebook("dashboard.ipynb", notebook7_server, "dashboard_nb7.ipynb")
    open_notebook_and_run_all(page, notebook7_server, name, timeout=150, expect=BQPLOT_FIGURE)
    assert "step 0" in widget_text(page, "optiviz-dash-progress")
    click_button(page, "Start")
    wait_for(lambda: (bqplot_line_paths(page)[0] or [""]) and path_point_count(bqplot_line_paths(page)[0][0]) >= 10,
             90, message="the dashboard's loss line to grow")
    assert "running" in widget_text(page, "optiviz-dash-progress")
    click_button(page, "Stop")
    wait_for(lambda: "stopped" in widget_text(page, "optiviz-dash-progress"), 30, message="the run to stop")
    screenshot(page.locator(".optiviz-dashboard").first, "dashboard_notebook7")
    broken = [e for e in page.console_errors if "NaN" in e or "Error setting state" in e or "Could not create a view" in e]
    assert not broken, broken[:5]
