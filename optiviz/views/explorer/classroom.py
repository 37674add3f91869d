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
from optiviz.views.explorer.figures import ExplorerFigures
from optiviz.views.explorer.fair import MAX_CLOUD_SEEDS

_WIDE = {"description_width": "110px"}
MODE_LABELS = [("where after N steps", "where"), ("which arrives first", "first")]


class ClassroomPanel:
    """The "classroom" tab and the overlay marks; `draw(stack)` after each frame of the race."""

    def __init__(self, controller: Any, figures: ExplorerFigures) -> None:
        self.c = controller
        self.figures = figures
        xy = figures.trajectories.scales
        self.cloud = bq.Lines(x=[], y=[], scales=xy, stroke_width=1.2, opacities=[0.3])
        self.mean = bq.Lines(x=[], y=[], scales=xy, stroke_width=4, line_style="dashed")
        self.links = bq.Lines(x=[], y=[], scales=xy, stroke_width=2, line_style="dotted", colors=["#111111"])
        self.guesses = bq.Scatter(x=[], y=[], scales=xy, marker="cross", default_size=260, stroke="#ffffff",
                                  names=[], display_names=True)
        fig = figures.surface_figure  # the guesses' mark stays (a click must never hit a figure being rebuilt)
        fig.marks = [*fig.marks[:-1], self.guesses, fig.marks[-1]]  # under the click target, which stays last
        self._build_predict()
        self._build_fair()
        self.panel = widgets.VBox([widgets.HTML("<b>Predict, then reveal</b>"), self.predict_box,
                                   widgets.HTML("<b>A fair race</b>"), self.fair_box])
        self._drawn: Any = None

    # ------------------------------------------------------------------ building
    def _button(self, description: str, action: Callable[[], Any], **kw: Any) -> widgets.Button:
        b = widgets.Button(description=description, layout=widgets.Layout(width="150px", height="36px"), **kw)
        b.on_click(lambda _b: self.safely(action))
        return b

    def _build_predict(self) -> None:
        p = self.c.predict
        self.mode = widgets.ToggleButtons(options=MODE_LABELS, value=p.mode, description="predict",
                                          style={"description_width": "60px", "button_width": "170px"})
        self.round_steps = widgets.BoundedIntText(value=p.steps, min=1, max=100_000, description="after N steps",
                                                  style=_WIDE, layout=widgets.Layout(width="230px"))
        self.round_steps.add_class("optiviz-round-steps")
        self.pick = widgets.Dropdown(options=[], description="first will be", style=_WIDE,
                                     layout=widgets.Layout(width="300px"))
        self.pick.observe(lambda ch: ch["new"] and self.c.predict.active and self.safely(
            lambda: self.c.predict.choose(ch["new"])), names="value")
        self.begin_button = self._button("New round", lambda: self.c.predict.begin(self.round_steps.value,
                                                                                   self.mode.value), icon="eye-slash")
        self.reveal_button = self._button("Reveal", lambda: self.c.predict.reveal(), button_style="warning", icon="eye")
        self.end_button = self._button("Show paths", self.c.predict.end)
        self.predict_html = widgets.HTML()
        self.predict_html.add_class("optiviz-predict")
        self.predict_box = widgets.VBox([self.mode, widgets.HBox([self.round_steps, self.pick]),
                                         widgets.HBox([self.begin_button, self.reveal_button, self.end_button]),
                                         self.predict_html])

    def _build_fair(self) -> None:
        self.budget = widgets.BoundedIntText(value=300, min=1, max=100_000, description="budget (steps)",
                                             style=_WIDE, layout=widgets.Layout(width="230px"))
        self.seed_count = widgets.IntSlider(value=8, min=1, max=MAX_CLOUD_SEEDS, description="seeds", style=_WIDE,
                                            continuous_update=False, layout=widgets.Layout(width="380px"))
        self.seed_count.add_class("optiviz-seed-count")
        self.tune_button = self._button("Tune each", lambda: self.c.fair.tune_each(self.budget.value,
                                                                                   min(self.seed_count.value, 8)))
        self.seeds_button = self._button("Seeds", lambda: self.c.fair.seeds(self.seed_count.value, self.budget.value))
        self.fair_html = widgets.HTML()
        self.fair_html.add_class("optiviz-fair")
        self.fair_box = widgets.VBox([widgets.HBox([self.budget, self.seed_count]),
                                      widgets.HBox([self.tune_button, self.seeds_button]), self.fair_html])

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
        for mark in (f.trajectories, f.heads):
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
            for mark in (self.cloud, self.mean):
                stack.enter_context(mark.hold_sync())
            self.cloud.x, self.cloud.y = x, y
            self.cloud.colors = [theme.optimizer_color(o) for o in owners]
            self.mean.x, self.mean.y = mx, my
            self.mean.colors = [theme.optimizer_color(o) for o in c.fair.cloud.optimizers]
            overlays += [self.cloud, self.mean]
        stack.enter_context(self.guesses.hold_sync())
        shown = p.guesses if p.active else {}
        g = np.array(list(shown.values()), dtype=np.float32).reshape(-1, 2)
        self.guesses.x, self.guesses.y = g[:, 0], g[:, 1]
        self.guesses.colors = [theme.optimizer_color(o) for o in shown] or ["#000000"]
        self.guesses.names = list(shown)
        if shown:
            if p.result is not None and p.result.guesses:
                stack.enter_context(self.links.hold_sync())
                pairs = [(g, p.result.actual[o]) for o, g in p.result.guesses.items()]
                self.links.x = np.array([[a[0], b[0]] for a, b in pairs], dtype=np.float32)
                self.links.y = np.array([[a[1], b[1]] for a, b in pairs], dtype=np.float32)
                overlays.insert(0, self.links)
        fig = self.figures.surface_figure
        base = [m for m in fig.marks if m not in (self.cloud, self.mean, self.links)]
        at = base.index(self.figures.trajectories)
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
