"""The dashboard's runs for slides and other tools: a panel as PNG/SVG, the histories as CSV/JSON or
TensorBoard event files. Plain Python: read from each run's trainer history (the one record of it)."""
from __future__ import annotations

from typing import Any

import numpy as np

from optiviz.export import panels, records
from optiviz.palette import fallback_color, optimizer_color
from optiviz.views.common.pictures import SavesPictures

# panel -> (history series, step key, y label, log axis)
CURVES = {"loss": ("train_loss", "step", "training loss", True),
          "accuracy": ("val_acc", "val_step", "validation accuracy", False),
          "lr": ("lr", "step", "learning rate", True)}


class DashboardExports(SavesPictures):
    """Mixin of TrainingDashboard: needs `self.controller` (a DashboardController)."""

    PANELS = tuple(CURVES)

    def histories(self) -> dict[str, dict[str, np.ndarray]]:
        """Per run label, its trainer's history (numpy copies)."""
        return {r.label: r.trainer.history for r in self.controller.runs}

    def picture(self, panel: str) -> Any:
        series, step_key, ylabel, log = CURVES[panel]
        hist = self.histories()
        runs = self.controller.runs
        colors = {r.label: optimizer_color(r.spec.optimizer, i) if len(runs) == 1 else fallback_color(i)
                  for i, r in enumerate(runs)}
        curves = {label: (h[step_key][: len(h[series])], h[series]) for label, h in hist.items()}
        return panels.curves_figure(curves, title=ylabel, ylabel=ylabel, log=log, colors=colors)

    def save_records(self, path: str) -> str:
        """Every run's history in long format (run, series, step, value) as .csv or .json."""
        meta = {r.label: {"optimizer": r.spec.optimizer, "model": r.spec.model} for r in self.controller.runs}
        return records.write_rows(records.history_rows(self.histories()), path, {"runs": meta})

    def save_tensorboard(self, logdir: str) -> list[str]:
        """Every run as TensorBoard event files, one folder per run; returns the folders."""
        from optiviz.export.tensorboard import write_history_events

        return write_history_events(self.histories(), logdir)


__all__ = ["DashboardExports", "CURVES"]
