"""SurfaceExplorer in a real browser: JupyterLab and Voila, headless Debian chromium.

A person presses Play and watches the trajectories grow, drags SGD's learning rate mid-run and
sees the change marked on the loss curve by the worker, and clicks the map to restart from
there. The screenshots saved here are the ones the README shows (written to docs/screenshots/
only with OPTIVIZ_UPDATE_SCREENSHOTS=1; otherwise to the git-ignored test-artifacts/).
"""
from __future__ import annotations

import pytest

from browser_helpers import (
    BQPLOT_FIGURE,
    bqplot_line_paths,
    click_button,
    close_page,
    copy_notebook,
    hide_all_code,
    open_notebook_and_run_all,
    open_voila,
    path_point_count,
    race_path_counts,
    race_paths,
    path_points,
    screenshot,
    wait_for,
    widget_text,
)

from optiviz.views.explorer.presets import PRESETS

pytestmark = pytest.mark.browser

NOTEBOOK = "explorer.ipynb"
SURFACE_FIG = 0  # figures in DOM order: surface, loss, step length
LOSS_FIG = 1


def trajectory_counts(page) -> list[int]:
    """Vertices of the SGD and momentum trajectories (settled and live parts joined)."""
    return race_path_counts(page, SURFACE_FIG, racing=2)


def wait_until_paths_grow(page, by: int = 10, timeout: float = 30) -> list[int]:
    start = min(wait_for(lambda: trajectory_counts(page), 30, message="both trajectories drawn"))
    return wait_for(lambda: min(c := trajectory_counts(page)) >= start + by and c, timeout,
                    message=lambda: f"trajectories to grow past {start + by} points (have {trajectory_counts(page)})")


def set_row_slider(page, row_class: str, value: float) -> None:
    """Type a value into the readout of the slider in the row tagged ``row_class`` and press Enter
    (browser_helpers.set_slider_value finds sliders by label; every optimizer's row says "lr")."""
    readout = page.locator(f".{row_class} .widget-slider .widget-readout").first
    readout.click()
    readout.press("ControlOrMeta+a")
    readout.press_sequentially(repr(float(value)))
    readout.press("Enter")


def assert_loss_curves_drawn(page, racing: int = 2, min_points: int = 10) -> None:
    """The loss panel draws one line per racing optimizer, each through many distinct points.

    Python-level tests only see the mark's data; here the browser has to have drawn it. (A step
    axis over a one-step domain at step 0 once made bqplot throw "invalid format: .undefinedg"
    and leave the loss lines stuck on their first point for the whole run.)
    """
    def drawn():
        paths = bqplot_line_paths(page)[LOSS_FIG]
        points = [path_points(d) for d in paths]
        return (len(paths) == racing and all(len(p) >= min_points and len(set(p)) >= min_points for p in points)
                and not any("NaN" in d for d in paths) and paths)
    wait_for(drawn, 30, message=lambda: f"{racing} loss curves of >= {min_points} points "
                                        f"(have {[path_point_count(d) for d in bqplot_line_paths(page)[LOSS_FIG]]})")


def assert_no_plot_errors(page) -> None:
    """No bqplot errors in the console: an axis over a NaN or one-value domain logs
    "invalid format: .undefinedg" (and stops that update), ticks before their range "NaN"."""
    bad = [e for e in page.console_errors if "invalid format" in e or "NaN" in e or "Error setting state" in e]
    assert not bad, f"{len(bad)} plot errors in the console, e.g. {bad[:3]}"


def figure_text(page, index: int) -> str:
    return page.locator(BQPLOT_FIGURE).nth(index).text_content() or ""


def test_jupyterlab_play_then_steer_the_learning_rate(jupyter_lab_server, page):
    name = copy_notebook(NOTEBOOK, jupyter_lab_server, "explorer_lab.ipynb")
    open_notebook_and_run_all(page, jupyter_lab_server, name, timeout=120, expect=BQPLOT_FIGURE)
    wait_for(lambda: len(bqplot_line_paths(page)[SURFACE_FIG]) == 5, 30,
             message="contours + 2 trajectories (settled and live parts)")
    assert max(trajectory_counts(page)) <= 2, "nothing moves before Play"
    assert "step 0" in widget_text(page, "optiviz-status")

    click_button(page, "Play")
    wait_until_paths_grow(page)
    assert "lr 0.01" not in figure_text(page, LOSS_FIG)

    set_row_slider(page, "optiviz-row-sgd", 0.01)
    # the worker applies it at a step boundary and marks it on the loss curve
    wait_for(lambda: "lr 0.01" in figure_text(page, LOSS_FIG), 30, message="the lr change marked on the loss curve")
    wait_until_paths_grow(page, by=5)  # and the run goes on
    assert "running" in widget_text(page, "optiviz-legend")
    assert widget_text(page, "optiviz-error-line").strip() == ""
    assert_loss_curves_drawn(page)
    assert_no_plot_errors(page)

    hide_all_code(page)
    page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
    shot = screenshot(page.locator(".optiviz-explorer-main").first, "explorer")
    assert shot.stat().st_size > 20_000


def test_voila_play_and_click_to_restart(voila_server, page):
    name = copy_notebook(NOTEBOOK, voila_server, "explorer_voila.ipynb")
    try:
        open_voila(page, voila_server, name, timeout=120, expect=BQPLOT_FIGURE)
        assert page.get_by_text("import optiviz").count() == 0, "Voila must not show code"
        click_button(page, "Play")
        wait_until_paths_grow(page)

        # click a quarter of the way in from the top-left corner of the map: data (-5, 2)
        plot = page.locator(f"{BQPLOT_FIGURE} .plotarea_background").first
        box = plot.bounding_box()
        x, y = box["x"] + 0.25 * box["width"], box["y"] + 0.25 * box["height"]
        page.mouse.click(x, y)
        origin = page.locator(f"{BQPLOT_FIGURE} .plotarea_background").first.bounding_box()

        def starts_at_click() -> bool:  # momentum's first vertex (a playing run passes 8 vertices in 4 frames)
            first = path_points(race_paths(page, SURFACE_FIG, racing=2)[-1][0])[0]
            return abs(first[0] + origin["x"] - x) <= 4 and abs(first[1] + origin["y"] - y) <= 4

        wait_for(starts_at_click, 30, message="the run to restart from the click")
        wait_until_paths_grow(page, by=5)
        assert starts_at_click()
        assert widget_text(page, "optiviz-error-line").strip() == ""
        assert_loss_curves_drawn(page, min_points=5)  # restarted by the click: fewer steps so far
        assert_no_plot_errors(page)
        screenshot(page.locator(".optiviz-explorer-main").first, "explorer_voila")
    finally:
        close_page(page)


def _loss_tick_boxes(page) -> list[dict]:
    """Bounding boxes of the loss axis's tick labels (the loss figure's vertical axis)."""
    fig = page.locator(BQPLOT_FIGURE).nth(LOSS_FIG)
    return fig.evaluate("""f => Array.from(f.querySelectorAll('.axis'))
        .filter(a => a.querySelector('.tick') && a.getAttribute('transform') !== null)
        .map(a => Array.from(a.querySelectorAll('.tick text')).map(t => t.getBoundingClientRect()))
        .map(rs => rs.map(r => ({x: r.x, y: r.y, w: r.width, h: r.height})))""")


def _overlapping(boxes: list[dict]) -> list[tuple[dict, dict]]:
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a["w"] and b["w"] and a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] \
                    and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]:
                out.append((a, b))
    return out


def test_voila_live_surface_and_preset_switches_keep_the_axes_readable(voila_server, page):
    """Notebook 1's questions ask students to switch live: to a typed formula, to the saddle preset,
    from there to the cliff. No NaN or invalid-format errors, and no loss tick labels on top of
    each other afterwards."""
    name = copy_notebook(NOTEBOOK, voila_server, "explorer_switches.ipynb")
    open_voila(page, voila_server, name, timeout=180, expect=BQPLOT_FIGURE)
    page.evaluate("""() => { window.__nan = []; const orig = Element.prototype.setAttribute;
        Element.prototype.setAttribute = function (name, value) {
            if (name === 'transform' && String(value).includes('NaN')) {
                const fig = this.closest && this.closest('.bqplot.figure');
                const ax = this.closest && this.closest('.axis');
                window.__nan.push([fig && fig.querySelector('.mainheading') && fig.querySelector('.mainheading').textContent,
                    ax && ax.querySelector('.axislabel') && ax.querySelector('.axislabel').textContent,
                    this.getAttribute('class'), this.textContent, this.isConnected]);
            }
            return orig.call(this, name, value); }; }""")
    click_button(page, "Play")
    wait_until_paths_grow(page)
    preset = page.locator("select").first  # the preset dropdown comes first
    formula = page.get_by_placeholder("e.g. x**2 + 10*y**2 + sin(3*x)")
    steps = [("formula", "x**2 + 3*y**2 + sin(2*x)"), ("preset", "saddle_escape"), ("preset", "cliff_clipping"),
             ("formula", "abs(x) + abs(y)"), ("preset", "adam_rosenbrock")]
    for kind, value in steps:
        if kind == "formula":
            page.locator(".lm-TabBar-tab", has_text="surface").first.click()  # the formula box's tab
            formula.fill(value)
            formula.press("Enter")
        else:
            labels = [t.replace("\xa0", " ") for t in preset.evaluate("s => Array.from(s.options).map(o => o.textContent)")]
            preset.select_option(index=labels.index(PRESETS[value].title))  # ipywidgets writes spaces as nbsp
        page.wait_for_timeout(2500)  # a few dozen frames on the new surface
        boxes = [b for axis in _loss_tick_boxes(page) for b in axis]
        assert boxes, f"no loss ticks after {kind} {value}"
        assert not _overlapping(boxes), f"loss tick labels overlap after {kind} {value}"
        bad = [e for e in page.console_errors if "invalid format" in e or "NaN" in e or "Error setting state" in e]
        where = page.evaluate("() => window.__nan.slice(0, 6)")
        assert not bad, f"{len(bad)} plot errors after {kind} {value}, e.g. {bad[:2]}; NaN now at {where}"
    assert widget_text(page, "optiviz-error-line").strip() == ""
    assert not [e for e in page.console_errors if "Failed to load resource" not in e], page.console_errors[:5]
