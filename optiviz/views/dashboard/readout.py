"""What the dashboard's panels hold, read back as numpy: the public API tests and scripts use to check
what the class sees (every curve, mark and histogram a panel draws)."""
from __future__ import annotations

from typing import Any

import numpy as np

from optiviz.training.early_stopping import EarlyStop

_EMPTY = (np.zeros(0, np.float32), np.zeros(0, np.float32))


class PanelReadout:
    """Mixin for TrainingDashboard: needs `panels`, `runs`, `layers` and `early` (the early-stopping marks)."""

    @property
    def loss_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(steps, train loss) per run, as the loss mark holds them."""
        return self._per_run("loss")

    @property
    def val_loss_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self._per_run("val_loss")

    @property
    def accuracy_curves(self) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """{"train": (steps, acc), "val": (steps, acc)} per run."""
        train, val = self._per_run("train_acc"), self._per_run("val_acc")
        return {label: {"train": train.get(label, _EMPTY), "val": val.get(label, _EMPTY)} for label in self.runs}

    @property
    def gap(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shaded train/val gap of the focused run: (epoch-end steps, train acc, val acc)."""
        x, y = np.asarray(self.panels.gap.x), np.asarray(self.panels.gap.y)
        if y.ndim != 2 or not np.any(y):
            return np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32)
        return x, y[0], y[1]

    @property
    def lr_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self._per_run("lr")

    @property
    def ratio_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Update/weight ratio per layer of the focused run: (probe steps, ratio)."""
        return self._per_layer("ratio", self.layers)

    @property
    def grad_norm_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self._per_layer("grad", self.layers)

    @property
    def dead_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Dead (ReLU) or saturated (tanh/sigmoid) fraction per hidden layer of the focused run."""
        names = tuple(n for n, k in zip(self.layers, self.panels.dead_kinds) if k)
        return self._per_layer("dead", names)

    @property
    def histograms(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per layer, the bin centres and fractions the Bars mark holds."""
        return {name: (np.asarray(b.x), np.asarray(b.y)) for name, b in zip(self.layers, self.panels.hist_bars)}

    @property
    def histogram_step(self) -> int | None:
        """The training step whose histograms are shown (None before the first probe)."""
        return self.panels.hist_step

    @property
    def markers(self) -> list[tuple[float, str]]:
        """(step, label) of every change marked on the loss curves, as the marker mark holds them."""
        m = self.panels.markers
        return [(float(x), str(n)) for x, n in zip(np.asarray(m.x), list(m.names))]

    @property
    def early_stop(self) -> EarlyStop | None:
        """Where patience would stop the focused run's validation loss and which step's weights it keeps."""
        return self.controller.early_stop()

    @property
    def early_stop_marks(self) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
        """(x, y, labels) the early-stopping marks hold: "early_stop" (the stop) and "early_kept"."""
        return {k: (np.asarray(m.x), np.asarray(m.y), [str(n) for n in m.names]) for k, m in self.early.marks.items()}

    @property
    def marks(self) -> dict[str, Any]:
        return {**self.panels.marks, **self.early.marks}

    def _per_run(self, key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {label: row for label, row in zip(self.runs, self.panels.rows(key))}

    def _per_layer(self, key: str, names: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {name: row for name, row in zip(names, self.panels.rows(key))}
