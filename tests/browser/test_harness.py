"""Proves the browser harness end to end on tests/browser/notebooks/harness_check.ipynb.

The notebook shows a FloatLogSlider "slope", a Button "Start", two HTML lines tagged with CSS
classes (``harness-echo``: the value the slider observer saw; ``harness-status``: what the worker
thread last drew) and a bqplot Lines mark that a daemon thread extends ~10 times a second.
"""

from __future__ import annotations

import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    bqplot_line_paths,
    bqplot_line_point_counts,
    cell_outputs,
    click_button,
    copy_notebook,
    hide_all_code,
    nudge_slider,
    open_notebook_and_run_all,
    open_voila,
    path_points,
    screenshot,
    set_slider_value,
    wait_for,
    widget_text,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "harness_check.ipynb"


def line_points(page) -> int:
    counts = bqplot_line_point_counts(page)
    return counts[0] if counts else 0


def wait_until_line_grows(page, by: int = 5, timeout: float = 30) -> int:
    """Wait until the line has ``by`` more vertices than now; returns the new count."""
    start = line_points(page)
    return wait_for(lambda: (n := line_points(page)) >= start + by and n, timeout,
                    message=lambda: f"line to grow past {start + by} points "
                                    f"(has {line_points(page)})")


def test_jupyterlab_slider_button_and_live_line(jupyter_lab_server, page, tmp_path):
    name = copy_notebook(NOTEBOOK, jupyter_lab_server, "harness_lab.ipynb")
    open_notebook_and_run_all(page, jupyter_lab_server, name, timeout=120, expect=BQPLOT_FIGURE)
    assert line_points(page) == 1, "the line starts with one point before Start is clicked"

    click_button(page, "Start")
    wait_until_line_grows(page)
    wait_until_line_grows(page)  # still growing: the worker streams while the cell is done

    set_slider_value(page.locator(".harness-controls"), "slope", 10)  # lookups can be scoped
    wait_for(lambda: widget_text(page, "harness-echo") == "slope=10", 30,
             message=lambda: f"kernel echo of slope=10, saw {widget_text(page, 'harness-echo')!r}")
    wait_for(lambda: "slope=10" in widget_text(page, "harness-status"), 30,
             message="the worker to apply the new slope")
    wait_until_line_grows(page, by=3)

    # The drawing shows it: the newest segment climbs 10x as steeply as the first one
    # (same frame, same scale, so pixel rises compare directly).
    points = path_points(bqplot_line_paths(page)[0][0])
    first_rise = points[0][1] - points[1][1]
    last_rise = points[-2][1] - points[-1][1]
    assert first_rise > 0 and last_rise / first_rise == pytest.approx(10, rel=0.05)

    nudge_slider(page, "slope", 5)  # arrow keys on the handle: 5 steps of 0.01 in log10
    wait_for(lambda: widget_text(page, "harness-echo") == "slope=11.22", 30,
             message=lambda: f"echo of slope=11.22, saw {widget_text(page, 'harness-echo')!r}")

    hide_all_code(page)
    shot = screenshot(cell_outputs(page).last, "harness_lab_output", tmp_path)
    assert shot.stat().st_size > 2_000


def test_voila_renders_and_streams(voila_server, page, tmp_path):
    name = copy_notebook(NOTEBOOK, voila_server, "harness_voila.ipynb")
    open_voila(page, voila_server, name, timeout=120, expect=BQPLOT_FIGURE)
    assert line_points(page) == 1

    click_button(page, "Start")
    wait_until_line_grows(page)
    assert page.get_by_text("import threading").count() == 0, "Voila must not show code"

    shot = screenshot(page, "harness_voila_page", tmp_path)
    assert shot.stat().st_size > 2_000
