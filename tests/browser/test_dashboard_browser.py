"""TrainingDashboard in a real browser: JupyterLab, headless Debian chromium.

A person presses Start and watches the loss curve grow and the activation histograms change as
the net trains, then drags the learning rate mid-run and sees the change marked on the loss
curve by the worker at the step it took effect. The screenshot saved here is the README's.
"""
from __future__ import annotations

import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    bqplot_line_paths,
    click_button,
    copy_notebook,
    hide_all_code,
    open_notebook_and_run_all,
    path_point_count,
    screenshot,
    set_slider_value,
    wait_for,
    widget_text,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "dashboard.ipynb"
LOSS_FIG, ACC_FIG, HIST_FIG = 0, 1, 6  # figures in DOM order: loss, accuracy, ratio, grad, dead, lr, histograms

_BAR_HEIGHTS_JS = """
(index) => {
    const fig = document.querySelectorAll('.bqplot.figure')[index];
    return fig ? Array.from(fig.querySelectorAll('.bargroup rect')).map(r => r.getAttribute('height')).join(',') : '';
}
"""


def loss_points(page) -> int:
    """Vertices of the train-loss line (the loss figure's first path)."""
    paths = bqplot_line_paths(page)[LOSS_FIG]
    return path_point_count(paths[0]) if paths else 0


def bar_heights(page, figure: int = HIST_FIG) -> str:
    return page.evaluate(_BAR_HEIGHTS_JS, figure)


def epoch(page) -> int:
    text = widget_text(page, "optiviz-dash-progress")
    return int(text.split("epoch ")[1].split()[0]) if "epoch " in text else 0


def figure_text(page, index: int) -> str:
    return page.locator(BQPLOT_FIGURE).nth(index).text_content() or ""


def test_jupyterlab_start_watch_and_steer_the_learning_rate(jupyter_lab_server, page):
    name = copy_notebook(NOTEBOOK, jupyter_lab_server, "dashboard_lab.ipynb")
    open_notebook_and_run_all(page, jupyter_lab_server, name, timeout=120, expect=BQPLOT_FIGURE)
    # the whole width for the dashboard (and the README screenshot): no file browser beside it
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    wait_for(lambda: len(page.locator(BQPLOT_FIGURE).all()) >= HIST_FIG + 4, 30, message="every panel rendered")
    assert loss_points(page) == 0, "nothing trains before Start"
    assert "step 0" in widget_text(page, "optiviz-dash-progress")

    click_button(page, "Start")
    wait_for(lambda: loss_points(page) >= 15, 60, message=lambda: f"the loss line to grow (has {loss_points(page)})")
    assert "running" in widget_text(page, "optiviz-dash-progress")

    # the activation histograms follow the probes as the net trains
    first = wait_for(lambda: bar_heights(page), 30, message="histogram bars")
    wait_for(lambda: bar_heights(page) not in ("", first), 30, message="the histograms to change")

    # drag the lr: the worker applies it at the next step and marks it on the loss curve
    assert "lr 0.005" not in figure_text(page, LOSS_FIG)
    set_slider_value(page, "lr", 0.005)
    wait_for(lambda: "lr 0.005" in figure_text(page, LOSS_FIG), 30, message="the lr change marked on the loss curve")
    before = loss_points(page)
    wait_for(lambda: loss_points(page) > before, 30, message="training to go on after the change")
    assert widget_text(page, "optiviz-dash-error").strip() == ""

    # a few epochs in, the accuracy panel has its train/val gap: that is the README picture
    wait_for(lambda: "gap" in figure_text(page, ACC_FIG), 60, message="train/val accuracy with the gap")
    wait_for(lambda: epoch(page) >= 6, 60, message=lambda: f"six epochs (at {epoch(page)})")
    health = widget_text(page, "optiviz-dash-health")
    assert health.strip(), "the health line says something"
    hide_all_code(page)
    page.set_viewport_size({"width": 1400, "height": 1700})  # the whole dashboard inside the notebook's scroller
    page.locator(".optiviz-dashboard").first.scroll_into_view_if_needed()
    shot = screenshot(page.locator(".optiviz-dashboard").first, "dashboard")
    assert shot.stat().st_size > 50_000
    click_button(page, "Stop")
    wait_for(lambda: "stopped" in widget_text(page, "optiviz-dash-progress"), 30, message="the run to stop")
    # compare mode: SGD, momentum and Adam from the same initial weights, curves overlaid
    page.locator(".lm-TabBar-tab", has_text="compare").first.click()
    click_button(page, "Compare")
    wait_for(lambda: "adam" in widget_text(page, "optiviz-dash-runs"), 30, message="three compared runs")
    click_button(page, "Start")
    wait_for(lambda: epoch(page) >= 4, 90, message=lambda: f"four epochs of the compared runs (at {epoch(page)})")
    assert len([d for d in bqplot_line_paths(page)[LOSS_FIG] if path_point_count(d) > 20]) >= 3
    page.locator(".optiviz-dashboard").first.scroll_into_view_if_needed()
    screenshot(page.locator(".optiviz-dashboard").first, "dashboard_compare")
    click_button(page, "Stop")

    # every frame reached bqplot in a form it could draw (no NaN positions, no state it refused)
    broken = [e for e in page.console_errors if "NaN" in e or "Error setting state" in e or "Could not create a view" in e]
    assert not broken, broken[:5]
