"""How many widget models a SurfaceExplorer opens: a Voila page loads every one (`request_states`),
so 20 pages at once on 2 cores hit ipywidgets' 4 s answer limit when each holds hundreds."""
from __future__ import annotations

import json
import warnings
from collections import defaultdict

import bqplot as bq
import ipywidgets as widgets
import pytest

import optiviz as ov
from optiviz.views.common.controls import Looks
from optiviz.views.common.widget_tree import owned_widgets

# measured 198 (375 when every widget had its own Layout and Style); a little room for a new control
MAX_MODELS = 215


def open_models() -> dict[str, widgets.Widget]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Widget.widgets: still the registry in ipywidgets 8
        return dict(widgets.Widget.widgets)


@pytest.fixture
def opened():
    """(explorer, the models its constructor opened); closed afterwards."""
    before = set(open_models())
    view = ov.SurfaceExplorer(preset="narrow_valley")
    new = {k: w for k, w in open_models().items() if k not in before}
    yield view, new
    view.close()


def test_an_explorer_opens_a_bounded_number_of_models(opened):
    view, new = opened
    assert len(new) < MAX_MODELS
    layouts = [w for w in new.values() if isinstance(w, widgets.Layout)]
    assert len(layouts) < 35  # 124 before sharing


def test_equal_layouts_and_styles_are_one_model_where_shared(opened):
    view, _new = opened
    c = view.controls
    own = {id(w) for w in (view, c.condition, *c.schedule_params.values())}  # shown and hidden alone
    groups: dict[str, set[str]] = defaultdict(set)
    for w in owned_widgets(view):
        # figures (theme.figure's own, closed alone) and the surface's picture (surface_plot's)
        if id(w) in own or isinstance(w, (bq.Figure, widgets.Image)):
            continue
        for attr in ("layout", "style"):
            look = getattr(w, attr, None)
            if isinstance(look, widgets.Widget):
                state = {k: v for k, v in look.get_state().items() if k != "_view_count"}
                groups[json.dumps(state, sort_keys=True)].add(look.model_id)
    duplicated = {k: ids for k, ids in groups.items() if len(ids) > 1}
    assert not duplicated
    sliders = [w for w in owned_widgets(view) if isinstance(w, (widgets.FloatSlider, widgets.FloatLogSlider))
               and id(w) not in own and w.layout.width == "420px"]
    assert len(sliders) > 20 and len({s.layout.model_id for s in sliders}) == 1


def test_a_control_hidden_alone_does_not_hide_the_ones_sharing_its_look(opened):
    view, _new = opened
    c = view.controls
    view.set(schedule=("step", {"step_size": 50}))
    shown = [w for (kind, _p), w in c.schedule_params.items() if kind == "step"]
    hidden = [w for (kind, _p), w in c.schedule_params.items() if kind != "step"]
    assert shown and hidden
    assert all(w.layout.display is None for w in shown) and all(w.layout.display == "none" for w in hidden)
    assert c.noise.layout.display is None and c.clip_value.layout.display is None  # same width, shared look
    view.set(surface="rosenbrock")
    assert c.condition.layout.display == "none" and c.lr["sgd"].layout.display is None


def test_looks_share_by_kind_and_traits():
    looks = Looks()
    assert looks.layout(width="9px") is looks.layout(width="9px") is not looks.layout(width="8px")
    assert looks.style(widgets.Dropdown, description_width="5px") is looks.style(widgets.FloatText,
                                                                                 description_width="5px")
    assert looks.style(widgets.FloatSlider) is not looks.style(widgets.Dropdown)
    own = looks.own_layouts()
    assert own.layout(width="9px") is not own.layout(width="9px")
    assert own.style(widgets.HTML) is looks.style(widgets.HTML)


def test_classroom_overlays_exist_only_once_shown_and_close_with_the_view():
    before = set(open_models())
    view = ov.SurfaceExplorer("quadratic", ["sgd", "momentum"], grad_noise=1.0)
    lines = [w for k, w in open_models().items() if k not in before and isinstance(w, bq.Lines)]
    in_figures = {m.model_id for f in (view.figures.surface_figure, view.figures.loss_figure,
                                       view.figures.step_length_figure) for m in f.marks}
    assert all(m.model_id in in_figures for m in lines)  # no mark waits unreferenced
    view.fair.seeds(seeds=4, steps=50)
    cloud, mean = view.classroom.overlay("cloud"), view.classroom.overlay("mean")
    assert cloud in view.figures.surface_figure.marks and mean in view.figures.surface_figure.marks
    links = view.classroom.overlay("links")  # made, never shown
    view.close()
    assert cloud.comm is None and mean.comm is None and links.comm is None
    left = [type(w).__name__ for k, w in open_models().items() if k not in before]
    assert "Lines" not in left and len(left) <= 4, left  # the frame window's IntTexts leave their looks


def test_a_frame_window_closes_all_it_opened():
    from optiviz.views.common.frame_ack import FrameAck

    before = set(open_models())
    ack = FrameAck()
    assert len(set(open_models()) - before) >= 5  # two IntTexts, their Layouts and Styles, the link
    ack.close()
    assert set(open_models()) - before == set()
