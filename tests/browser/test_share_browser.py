"""The Share control in JupyterLab: the field shows a string that from_state accepts and rebuilds the
explorer the page shows, and after a slider moves it shows the new setting (drawn from the controller)."""
from __future__ import annotations

import pytest

from browser_helpers import BQPLOT_FIGURE, click_button, copy_notebook, open_notebook_and_run_all, wait_for

import optiviz as ov
from test_explorer_browser import set_row_slider

pytestmark = pytest.mark.browser

SHARE_FIELD = "input.optiviz-share-text"


def shared_string(page, not_equal: str = "") -> str:
    return wait_for(lambda: (v := page.locator(SHARE_FIELD).first.input_value()) and v != not_equal and v, 30,
                    message="the share field to show a new state string")


def test_jupyterlab_share_shows_a_state_that_rebuilds_the_explorer(jupyter_lab_server, page):
    name = copy_notebook("explorer.ipynb", jupyter_lab_server, "explorer_share.ipynb")
    open_notebook_and_run_all(page, jupyter_lab_server, name, timeout=120, expect=BQPLOT_FIGURE)
    assert page.locator(SHARE_FIELD).count() == 0, "no string before Share is pressed"
    click_button(page, "Share")
    first = shared_string(page)
    assert page.locator(SHARE_FIELD).first.get_attribute("readonly") is not None
    page_view = ov.SurfaceExplorer(preset="narrow_valley", speed=1, grid=20)  # what the notebook built
    rebuilt = ov.SurfaceExplorer.from_state(first, grid=20)
    assert rebuilt.config == page_view.config and rebuilt.controller.preset == "narrow_valley"

    set_row_slider(page, "optiviz-row-sgd", 0.01)  # the field follows the controller
    after = shared_string(page, not_equal=first)
    assert ov.SurfaceExplorer.from_state(after, grid=20).config.hparams["sgd"]["lr"] == 0.01
    ov.close_all()
