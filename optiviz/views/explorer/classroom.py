"""The explorer's classroom tab: predict then reveal, and the fair race (tune each, seeds).

Widgets only: the round's logic is predict.py's PredictRound, the fair race's fair.py's
FairRaceTool (both plain Python, held by the controller); this draws their state on the surface
(guesses, guess-to-outcome links, the seeds' cloud and mean paths) and turns buttons into calls.
Overlay marks join the surface figure only while there is something to show.
"""
from __future__ import annotations

import html
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from optiviz.views.common import theme
from optiviz.views.common.controls import DESCRIPTION_WIDTH, Looks, looks_or_own
from optiviz.views.explorer.figures import ExplorerFigures
from optiviz.views.explorer.fair import MAX_CLOUD_SEEDS

MODE_LABELS = [("where after N steps", "where"), ("which arrives first", "first")]


class ClassroomPanel:
    """The "classroom" tab and the overlay marks; `draw(stack)` after each frame of the race.

    The cloud, mean-path and link marks are made when first shown (most races never show them, and
    a page loads every model the kernel holds), and closed with the panel (`close`) whether they are
    in the figure then or not. `looks`: the view's shared Layouts and Styles.
    """

    def __init__(self, controller: Any, figures: ExplorerFigures, looks: Looks | None = None) -> None:
        self.c = controller
        self.figures = figures
        self.looks = looks_or_own(looks)
        self._overlays: dict[str, bq.Lines] = {}
        xy = figures.trajectories.scales
        self.guesses = bq.Scatter(x=[], y=[], scales=xy, marker="cross", default_size=260, stroke="#ffffff",
                                  names=[], display_names=True)
        fig = figures.surface_figure  # the guesses' mark stays (a click must never hit a figure being rebuilt)
        fig.marks = [*fig.marks[:-1], self.guesses, fig.marks[-1]]  # under the click target, which stays last
        self._build_predict()
        self._build_fair()
        looks = self.looks
        self.panel = widgets.VBox([self._html("<b>Predict, then reveal</b>"), self.predict_box,
                                   self._html("<b>A fair race</b>"), self.fair_box], layout=looks.layout())
        self._drawn: Any = None

    def overlay(self, name: str) -> bq.Lines:
        """The "cloud", "mean" or "links" mark, made on first use."""
        mark = self._overlays.get(name)
        if mark is None:
            xy = self.figures.trajectories.scales
            kw: dict[str, Any] = {"cloud": dict(stroke_width=1.2, opacities=[0.3]),
                                  "mean": dict(stroke_width=4, line_style="dashed"),
                                  "links": dict(stroke_width=2, line_style="dotted", colors=["#111111"])}[name]
            mark = self._overlays[name] = bq.Lines(x=[], y=[], scales=xy, **kw)
        return mark

    def close(self) -> None:
        """Close the overlay marks (one no longer in the figure is not in the view's tree)."""
        for mark in self._overlays.values():
            mark.close()
        self._overlays.clear()

    # ------------------------------------------------------------------ building
    def _html(self, value: str = "") -> widgets.HTML:
        return widgets.HTML(value, layout=self.looks.layout(), style=self.looks.style(widgets.HTML))

    def _box(self, kind: type[widgets.Box], children: list[widgets.Widget]) -> widgets.Box:
        return kind(children, layout=self.looks.layout())

    def _button(self, description: str, action: Callable[[], Any], **kw: Any) -> widgets.Button:
        b = widgets.Button(description=description, layout=self.looks.layout(width="150px", height="36px"),
                           style=self.looks.style(widgets.Button), **kw)
        b.on_click(lambda _b: self.safely(action))
        return b

    def _build_predict(self) -> None:
        p, looks = self.c.predict, self.looks
        wide = looks.style(widgets.BoundedIntText, description_width=DESCRIPTION_WIDTH)
        self.mode = widgets.ToggleButtons(options=MODE_LABELS, value=p.mode, description="predict",
                                          style={"description_width": "60px", "button_width": "170px"},
                                          layout=looks.layout())
        self.round_steps = widgets.BoundedIntText(value=p.steps, min=1, max=100_000, description="after N steps",
                                                  style=wide, layout=looks.layout(width="230px"))
        self.round_steps.add_class("optiviz-round-steps")
        self.pick = widgets.Dropdown(options=[], description="first will be", style=wide,
                                     layout=looks.layout(width="300px"))
        self.pick.observe(lambda ch: ch["new"] and self.c.predict.active and self.safely(
            lambda: self.c.predict.choose(ch["new"])), names="value")
        self.begin_button = self._button("New round", lambda: self.c.predict.begin(self.round_steps.value,
                                                                                   self.mode.value), icon="eye-slash")
        self.reveal_button = self._button("Reveal", lambda: self.c.predict.reveal(), button_style="warning", icon="eye")
        self.end_button = self._button("Show paths", self.c.predict.end)
        self.predict_html = self._html()
        self.predict_html.add_class("optiviz-predict")
        self.predict_box = self._box(widgets.VBox, [
            self.mode, self._box(widgets.HBox, [self.round_steps, self.pick]),
            self._box(widgets.HBox, [self.begin_button, self.reveal_button, self.end_button]), self.predict_html])

    def _build_fair(self) -> None:
        looks = self.looks
        self.budget = widgets.BoundedIntText(
            value=300, min=1, max=100_000, description="budget (steps)", layout=looks.layout(width="230px"),
            style=looks.style(widgets.BoundedIntText, description_width=DESCRIPTION_WIDTH))
        self.seed_count = widgets.IntSlider(
            value=8, min=1, max=MAX_CLOUD_SEEDS, description="seeds", continuous_update=False,
            style=looks.style(widgets.FloatSlider, description_width=DESCRIPTION_WIDTH),
            layout=looks.layout(width="380px"))
        self.seed_count.add_class("optiviz-seed-count")
        self.tune_button = self._button("Tune each", lambda: self.c.fair.tune_each(self.budget.value,
                                                                                   min(self.seed_count.value, 8)))
        self.seeds_button = self._button("Seeds", lambda: self.c.fair.seeds(self.seed_count.value, self.budget.value))
        self.fair_html = self._html()
        self.fair_html.add_class("optiviz-fair")
        self.fair_box = self._box(widgets.VBox, [self._box(widgets.HBox, [self.budget, self.seed_count]),
                                                 self._box(widgets.HBox, [self.tune_button, self.seeds_button]),
                                                 self.fair_html])

    def safely(self, action: Callable[[], Any]) -> None:
        """A refused action shows in the error line; the run goes on."""
        try:
            action()
        except ValueError as exc:
            self.c.show_error(str(exc))

    # ------------------------------------------------------------------ drawing
    def draw(self, stack: ExitStack) -> None:
        c, f, p = self.c, self.figures, self.c.predict
        hidden = p.hidden
        for mark in (*f.trajectories.marks, f.heads):
            stack.enter_context(mark.hold_sync())
            mark.visible = not hidden
        for fig in (f.loss_figure, f.step_length_figure):
            fig.layout.visibility = "hidden" if hidden else "visible"
        names = list(c.optimizers)
        if list(self.pick.options) != names:
            self.pick.options = names
            self.pick.value = None
        state = (c.generation, hidden, tuple(p.guesses.items()), p.pick, id(p.result), id(c.fair.cloud), c.fair.note,
                 p.target, p.active)
        if state == self._drawn:
            return
        self._drawn = state
        self._draw_overlays(stack)
        self._draw_texts()

    def _draw_overlays(self, stack: ExitStack) -> None:
        c, p = self.c, self.c.predict
        overlays = []
        x, y, owners, mx, my = c.fair.cloud_lines()
        if owners:
            cloud, mean = self.overlay("cloud"), self.overlay("mean")
            for mark in (cloud, mean):
                stack.enter_context(mark.hold_sync())
            cloud.x, cloud.y = x, y
            cloud.colors = [theme.optimizer_color(o) for o in owners]
            mean.x, mean.y = mx, my
            mean.colors = [theme.optimizer_color(o) for o in c.fair.cloud.optimizers]
            overlays += [cloud, mean]
        stack.enter_context(self.guesses.hold_sync())
        shown = p.guesses if p.active else {}
        g = np.array(list(shown.values()), dtype=np.float32).reshape(-1, 2)
        self.guesses.x, self.guesses.y = g[:, 0], g[:, 1]
        self.guesses.colors = [theme.optimizer_color(o) for o in shown] or ["#000000"]
        self.guesses.names = list(shown)
        if shown:
            if p.result is not None and p.result.guesses:
                links = self.overlay("links")
                stack.enter_context(links.hold_sync())
                pairs = [(g, p.result.actual[o]) for o, g in p.result.guesses.items()]
                links.x = np.array([[a[0], b[0]] for a, b in pairs], dtype=np.float32)
                links.y = np.array([[a[1], b[1]] for a, b in pairs], dtype=np.float32)
                overlays.insert(0, links)
        fig = self.figures.surface_figure
        base = [m for m in fig.marks if m not in self._overlays.values()]
        at = base.index(self.figures.trajectories.settled)
        marks = base[:at] + overlays + base[at:]  # the cloud, mean paths and links under the race's paths
        if list(fig.marks) != marks:
            stack.enter_context(fig.hold_sync())
            fig.marks = marks

    def _draw_texts(self) -> None:
        p, c = self.c.predict, self.c
        if p.result is not None:
            rows = "".join(f"<li>{html.escape(line)}</li>" for line in p.result.lines())
            best = p.result.closest
            lead = f"closest guess: <b>{html.escape(best[0])}</b>. " if best else ""
            text = f"{lead}<ul style='margin:2px 0'>{rows}</ul>"
        elif p.active:
            target = p.target
            if p.mode == "where":
                ask = (f"Click where <b>{html.escape(target)}</b> will be after {p.steps} steps." if target else
                       "Every optimizer has a guess: Reveal (or click again to move them).")
            else:
                ask = f"Which arrives first (within 2% of the plot of a minimum, in {p.steps} steps)? Pick it, then Reveal."
            text = f"Paths hidden. {ask}"
        else:
            text = "New round hides the paths; the class predicts; Reveal plays the race."
        html_text = f'<div style="font-size:{theme.font_px() - 2}px;white-space:normal">{text}</div>'
        if self.predict_html.value != html_text:
            self.predict_html.value = html_text
        note = f'<div style="font-size:{theme.font_px() - 2}px;white-space:normal">{html.escape(c.fair.note)}</div>'
        if self.fair_html.value != note:
            self.fair_html.value = note


__all__ = ["ClassroomPanel"]
