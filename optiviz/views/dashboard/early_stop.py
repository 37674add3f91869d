"""Early stopping drawn on the dashboard's loss panel: where patience p would stop the validation
curve (a red cross) and which evaluation's weights it keeps (a green diamond), with a patience box.

The numbers come from the controller (`DashboardController.early_stop()`, training/early_stopping.py);
this module only draws them and sends the patience a person types as a request.
"""
from __future__ import annotations

from contextlib import ExitStack

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from optiviz.training.early_stopping import EarlyStop
from optiviz.views.common import theme
from optiviz.views.common.controls import DESCRIPTION_STYLE

STOP_COLOR, KEPT_COLOR = "#b00020", "#1b7837"


class EarlyStopMarks:
    """Two marks on the loss figure's scales and the patience box; draw(result) moves them."""

    def __init__(self, figure: bq.Figure, scales: dict[str, bq.Scale], patience: int) -> None:
        def mark(marker: str, color: str) -> bq.Scatter:
            return bq.Scatter(x=[], y=[], scales=scales, marker=marker, colors=[color], default_size=260, names=[],
                              display_names=True, stroke="#000000")

        self.stop = mark("cross", STOP_COLOR)
        self.kept = mark("diamond", KEPT_COLOR)
        figure.marks = [*figure.marks, self.kept, self.stop]
        self.patience = widgets.BoundedIntText(value=patience, min=1, max=1000, description="patience",
                                               style=DESCRIPTION_STYLE, layout=widgets.Layout(width="220px"))
        self.restore = widgets.Button(description="Restore best", layout=widgets.Layout(width="120px"),
                                      tooltip="load the weights of the lowest validation loss so far; training goes on from them")
        self.text = widgets.HTML()
        self._drawn: tuple | None = None

    def box(self) -> widgets.HBox:
        return widgets.HBox([self.patience, self.restore, self.text])

    def draw(self, result: EarlyStop | None, values: tuple[np.ndarray, np.ndarray], stack: ExitStack) -> None:
        """result: the controller's early_stop(); values: the focused run's (val steps, val losses)."""
        key = None if result is None else (result.patience, result.stop, result.kept, result.kept_value, len(values[0]))
        if key == self._drawn:
            return
        self._drawn = key
        for m in (self.stop, self.kept):
            stack.enter_context(m.hold_sync())
        if result is None:
            self.stop.x = self.stop.y = self.kept.x = self.kept.y = np.zeros(0, np.float32)
            self.stop.names = self.kept.names = []
            self.text.value = ""
            return
        steps, loss = values
        self.kept.x, self.kept.y = np.array([result.kept_at], np.float32), np.array([result.kept_value], np.float32)
        # unlabelled while not stopped: the best so far sits at the right edge, and the line below says it
        self.kept.names = ["kept"] if result.stopped else [""]
        if result.stopped:
            self.stop.x = np.array([result.stop_at], np.float32)
            self.stop.y = np.array([loss[result.stop]], np.float32)
            self.stop.names = [f"stop (p={result.patience})"]
        else:
            self.stop.x = self.stop.y = np.zeros(0, np.float32)
            self.stop.names = []
        said = (f"stops at step {result.stop_at:g}, keeps step {result.kept_at:g}" if result.stopped
                else f"not yet; best so far step {result.kept_at:g}")
        self.text.value = f'<span style="font-size:{theme.font_px()}px">early stopping: {said}</span>'

    @property
    def marks(self) -> dict[str, bq.Scatter]:
        return {"early_stop": self.stop, "early_kept": self.kept}


__all__ = ["EarlyStopMarks"]
