"""ov.presenter(True): every view built afterwards carries the presenter size (larger ticks, labels,
titles and text, for the back of a lecture hall); presenter(False) gives the normal size back."""
from __future__ import annotations

import bqplot as bq
import pytest

import optiviz as ov
from optiviz.views.common import theme


@pytest.fixture
def presenting():
    ov.presenter(True)
    yield
    ov.presenter(False)


def _figures(widget) -> list[bq.Figure]:
    found, todo = [], [widget]
    while todo:
        w = todo.pop()
        if isinstance(w, bq.Figure):
            found.append(w)
        todo.extend(getattr(w, "children", ()) or ())
    return found


def _views():
    data = ov.load_cifar10().subset(64, 32, 32)
    return [ov.SurfaceExplorer(optimizers=("sgd", "adam")),
            ov.TrainingDashboard("mlp", data=data, batch_size=32),
            ov.StabilityMapView("quadratic", "momentum", resolution=20, steps=50),
            ov.SearchView(budget=4, data=data),
            ov.LandscapeView(data=data, resolution=9, epochs=1, batch_size=32)]


def _sizes(view) -> set[tuple[str, str]]:
    figs = _figures(view)
    assert len(figs) >= 1
    ticks = {a.tick_style.get("font-size") for f in figs for a in f.axes if isinstance(a, bq.Axis)
             and not isinstance(a, bq.ColorAxis)}
    titles = {f.title_style.get("font-size") for f in figs}
    return {("tick", t) for t in ticks} | {("title", t) for t in titles}


def test_presenter_size_reaches_every_view(presenting):
    for view in _views():
        try:
            assert theme.PRESENTER_CLASS in view._dom_classes, type(view).__name__
            assert _sizes(view) == {("tick", "22px"), ("title", "28px")}, type(view).__name__
            assert all(theme.PRESENTER_CLASS in f._dom_classes for f in _figures(view))
        finally:
            view.close()


def test_normal_size_again_after_presenter_false():
    ov.presenter(True)
    ov.presenter(False)
    explorer = ov.SurfaceExplorer()
    try:
        assert theme.PRESENTER_CLASS not in explorer._dom_classes
        assert _sizes(explorer) == {("tick", "16px"), ("title", "20px")}
        assert f"font-size:{theme.FONT_PX}px" in explorer.legend_html.value
    finally:
        explorer.close()


def test_the_style_sheet_sizes_presenter_views_over_normal_ones():
    # one sheet for the page: a presenter view's rules are more specific than the normal ones
    css = theme.STYLE_HTML
    assert f".{theme.CSS_CLASS}.{theme.PRESENTER_CLASS} .tick text {{ font-size: 22px !important; }}" in css
    assert f".{theme.CSS_CLASS} .tick text {{ font-size: 16px !important; }}" in css


def test_presenter_refuses_what_is_not_a_bool():
    with pytest.raises(TypeError, match="presenter"):
        ov.presenter("yes")
