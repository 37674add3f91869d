"""Hyperparameter search and ensembles, drawn as they compute.

SearchView streams the points of a random and a grid search with the same budget into a scatter of
validation accuracy over (lr, weight decay) on log axes, and warns when the best value sits at the
edge of the range. EnsembleView fills the lectures' ensemble table row by row. The numbers come from
`optiviz.training.search` / `ensembles`; these views only draw them.
"""
from __future__ import annotations

import contextlib
import html
import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from optiviz._validate import shown
from optiviz.rounding import log_ticks
from optiviz.training.ensembles import EnsembleRow, iter_ensemble_table
from optiviz.training.search import (
    COARSE_TO_FINE,
    LECTURE_SPACE,
    SearchPoint,
    Stage,
    best_point,
    edge_warning,
    iter_grid_search,
    iter_random_search,
    make_space,
)
from optiviz.views.common import theme
from optiviz.views.common.data import data_args, data_setting
from optiviz.views.common.share import Shareable, ShareControl, keyword_args, open_shared
from optiviz.views.common.streamed import StreamedView
from optiviz.views.maps.args import BUDGET, check_search_args

METHOD_MARKERS = {"random": "circle", "grid": "square"}
ACC_SCHEME = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")


def _span(value: Any) -> tuple[float, float] | None:
    """The (low, high) a hyperparameter is searched over, or a decade each side of a fixed value;
    None for anything else (refused when the search runs; the axis is then d3's own)."""
    try:
        lo, hi = (float(value), float(value)) if np.isscalar(value) else (float(value[0]), float(value[1]))
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
        return None
    return (lo / 10, hi * 10) if lo == hi else (lo, hi)


class SearchView(Shareable, StreamedView):
    """Random vs grid search with the same budget: validation accuracy over (lr, weight decay).

    x, y: the hyperparameters on the axes, names of `space` (default: lr and weight_decay where it has them).
    `state()` / `SearchView.from_state(s)`: the same searches, point for point (the data is named, not copied).
    """

    STATE_VIEW = "SearchView"
    OPTIONS = ("device", "data")

    def __init__(self, budget: int = 32, space: dict[str, Any] | None = None, *, coarse_to_fine: bool = True,
                 x: str | None = None, y: str | None = None, **train_kwargs: Any) -> None:
        # a shared setting names its own data: the notebook's is not the one it was made with
        note = open_shared(self, SearchView.__init__, {k: train_kwargs[k] for k in ("device",) if k in train_kwargs})
        if note is None:
            return  # built from a shared link's setting
        space = LECTURE_SPACE if space is None else space
        if not isinstance(space, Mapping):
            raise TypeError(f"space must map hyperparameter names to (low, high) or a number, got {shown(space)}")
        budget, x, y = check_search_args(budget, space, x, y)  # the space's values: when it runs (status line)
        super().__init__()  # only now, with the arguments checked: nothing is left half built
        self.space = dict(space)
        self.x_name, self.y_name = x, y
        self.train_kwargs = train_kwargs
        self.points: dict[str, list[SearchPoint]] = {"random": [], "grid": []}
        self.result = self.points
        self.budget_w = widgets.IntSlider(value=budget, min=BUDGET[0], max=BUDGET[1], step=4, description="budget",
                                          continuous_update=False)
        self.c2f_w = widgets.Checkbox(value=coarse_to_fine, description="random: coarse to fine")
        # the axes span the searched ranges with decade ticks: points never move them, and d3's own
        # log ticks ran together ("5e-11e+0")
        # (padded by a factor 1.4: a point on a range's edge is drawn whole)
        self._sx, self._sy = (bq.LogScale(**dict(zip(("min", "max"), (s[0] / 1.4, s[1] * 1.4) if s else ())))
                              for s in (_span(space[x]), _span(space[y])))
        self._sc = bq.ColorScale(colors=list(ACC_SCHEME))
        self.marks = {
            method: bq.Scatter(x=[], y=[], color=[], scales={"x": self._sx, "y": self._sy, "color": self._sc},
                               marker=marker, stroke="#000000", default_size=110)
            for method, marker in METHOD_MARKERS.items()
        }
        self.aborted = bq.Scatter(x=[], y=[], scales={"x": self._sx, "y": self._sy}, marker="cross",
                                  colors=["#999999"], default_size=90)
        self.best_mark = bq.Scatter(x=[], y=[], scales={"x": self._sx, "y": self._sy}, marker="diamond",
                                    colors=["#ff0000"], default_size=260)
        self.figure = theme.figure(
            [*self.marks.values(), self.aborted, self.best_mark],
            [theme.axis(self._sx, x, tick_values=self._decades(x), tick_format=".0e"),
             theme.axis(self._sy, y, vertical=True, tick_values=self._decades(y), tick_format=".0e"),
             bq.ColorAxis(scale=self._sc, side="right")],  # its meaning goes in the title: a label overlapped the map
            title="validation accuracy (colour)", width="640px", height="520px")
        self.figure.fig_margin = {**self.figure.fig_margin, "right": 90}
        # the key under the figure, not over it: a bqplot legend covered the points in its corner
        self.legend = widgets.HTML(
            '<span style="white-space:nowrap">● random search &nbsp; ■ grid search &nbsp; '
            '<span style="color:#999999">✕</span> aborted (3x loss) &nbsp; '
            '<span style="color:#ff0000">◆</span> best</span>')
        self.table = widgets.HTML("")
        self.warning = widgets.HTML("")
        self.share = ShareControl(self.state, self.STATE_VIEW)
        self.share.follow(self.budget_w, self.c2f_w)
        controls = widgets.HBox([self.budget_w, self.c2f_w, self.start_button, self.stop_button, self.progress])
        self.children = [theme.style_widget(), controls, self.status, self.share.box,
                         widgets.HBox([widgets.VBox([self.figure, self.legend]), widgets.VBox([self.table, self.warning])],
                                      layout=widgets.Layout(flex_flow="row wrap"))]
        if note:
            self._show_error(note)

    def setting(self) -> dict[str, Any]:
        """The budget and coarse-to-fine choice as the controls hold them, the space, the axes, the
        training keywords, and the data by name."""
        train = {k: v for k, v in self.train_kwargs.items() if k not in self.OPTIONS}
        return {"budget": self.budget_w.value, "space": dict(self.space), "coarse_to_fine": self.c2f_w.value,
                "x": self.x_name, "y": self.y_name, "train": train, "data": _data_of(self.train_kwargs)}

    @classmethod
    def setting_args(cls, setting: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        args = keyword_args(setting, ("budget", "space", "coarse_to_fine", "x", "y"), "train")
        return {**args, **data_args(setting, options)}

    def _decades(self, name: str) -> list[float] | None:
        span = _span(self.space[name])
        return log_ticks(*span) if span else None

    def _start(self) -> Iterator[SearchPoint]:
        budget = self.budget_w.value
        make_space(self.space)  # generators check lazily: say what is wrong before the run starts
        stages = COARSE_TO_FINE if self.c2f_w.value else (Stage(),)
        self.points = self.result = {"random": [], "grid": []}
        random = iter_random_search(budget, self.space, stages, **self.train_kwargs)
        grid = iter_grid_search(budget, self.space, epochs=1, **self.train_kwargs)
        self._budget = 2 * budget
        self._spent = 0
        self._draw()
        return itertools.chain(random, grid)

    def _publish(self, records: list[Any]) -> None:
        new = [r for r in records if isinstance(r, SearchPoint)]
        for p in new:
            self.points[p.method].append(p)
            self._spent += p.epochs
        self.progress.value = min(1.0, self._spent / max(self._budget, 1))
        self._draw()

    def _draw(self) -> None:
        everything = self.points["random"] + self.points["grid"]
        live = [p for p in everything if not p.aborted]
        accs = np.array([p.val_acc for p in live], dtype=float)
        with contextlib.ExitStack() as stack:
            for w in [*self.marks.values(), self.aborted, self.best_mark, self._sc]:
                stack.enter_context(w.hold_sync())
            if accs.size:
                self._sc.min, self._sc.max = float(np.nanmin(accs)), float(max(np.nanmax(accs), np.nanmin(accs) + 1e-3))
            for method, mark in self.marks.items():
                pts = [p for p in self.points[method] if not p.aborted]
                mark.x = np.array([p.hparams[self.x_name] for p in pts], dtype=np.float32)
                mark.y = np.array([p.hparams[self.y_name] for p in pts], dtype=np.float32)
                mark.color = np.array([p.val_acc for p in pts], dtype=np.float32)
            dead = [p for p in everything if p.aborted]
            self.aborted.x = np.array([p.hparams[self.x_name] for p in dead], dtype=np.float32)
            self.aborted.y = np.array([p.hparams[self.y_name] for p in dead], dtype=np.float32)
            best = best_point(everything)
            self.best_mark.x = np.array([best.hparams[self.x_name]] if best else [], dtype=np.float32)
            self.best_mark.y = np.array([best.hparams[self.y_name]] if best else [], dtype=np.float32)
        rows = []
        for method, pts in self.points.items():
            b = best_point(pts)
            n_abort = sum(p.aborted for p in pts)
            best_text = f"{b.val_acc:.3f} at {self.x_name} {b.hparams[self.x_name]:.2g}, " \
                        f"{self.y_name} {b.hparams[self.y_name]:.2g}" if b else "—"
            rows.append(f"<tr><td>{method}</td><td>{len(pts)}</td><td>{n_abort}</td><td>{best_text}</td></tr>")
        self.table.value = ('<table class="optiviz-legend"><tr><th>search</th><th>runs</th><th>aborted</th>'
                            f'<th>best val acc</th></tr>{"".join(rows)}</table>')
        warn = edge_warning(everything, self.space) if live else None
        self.warning.value = f'<span class="optiviz-error">⚠ {html.escape(warn)}</span>' if warn else ""
        if everything:
            self.status.value = f"{len(everything)} runs · {self._spent} of {self._budget} run-epochs"


class EnsembleView(Shareable, StreamedView):
    """The lectures' ensemble table, filled row by row next to the lecture's numbers.
    `state()` / `EnsembleView.from_state(s)`: the same table (the data is named, not copied)."""

    STATE_VIEW = "EnsembleView"
    OPTIONS = ("device", "data")

    def __init__(self, model: str = "mlp", data: Any = None, **kwargs: Any) -> None:
        note = open_shared(self, EnsembleView.__init__, {k: kwargs[k] for k in ("device",) if k in kwargs})
        if note is None:
            return  # built from a shared link's setting
        super().__init__()
        self.model, self.data, self.kwargs = model, data, kwargs
        self.rows: list[EnsembleRow] = []
        self.result = self.rows
        self.table = widgets.HTML("")
        self.share = ShareControl(self.state, self.STATE_VIEW)
        self.children = [theme.style_widget(), widgets.HBox([self.start_button, self.stop_button, self.progress]),
                         self.status, self.share.box, self.table]
        self._draw()
        if note:
            self._show_error(note)

    def setting(self) -> dict[str, Any]:
        options = {k: v for k, v in self.kwargs.items() if k != "device"}
        return {"model": self.model, "options": options, "data": _data_of({"data": self.data})}

    @classmethod
    def setting_args(cls, setting: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return {**keyword_args(setting, ("model",), "options"), **data_args(setting, options)}

    def _start(self) -> Iterator[Any]:
        self.rows = self.result = []
        self._draw()

        def report(step: int, total: int) -> bool:
            self.progress.value = 0.9 * step / max(total, 1)  # training is most of the work
            return not self.stop_requested

        return iter_ensemble_table(self.model, self.data, progress=report, **self.kwargs)

    def _publish(self, records: list[Any]) -> None:
        self.rows.extend(r for r in records if isinstance(r, EnsembleRow))
        if self.rows:
            self.progress.value = max(self.progress.value, 0.9 + 0.1 * len(self.rows) / 7)
        self._draw()

    def _draw(self) -> None:
        body = "".join(
            f"<tr><td>{html.escape(r.model)}</td><td>{html.escape(r.prediction)}</td><td><b>{r.test_acc:.3f}</b></td>"
            f"<td>{'' if r.lecture is None else f'{r.lecture:.3f}'}</td></tr>"
            for r in self.rows)
        self.table.value = ('<table class="optiviz-legend"><tr><th>model</th><th>prediction</th>'
                            '<th>test acc (here)</th><th>lecture (VGG, full CIFAR-10)</th></tr>'
                            f'{body}</table>')
        if self.rows:
            self.status.value = f"{len(self.rows)} rows"


def _data_of(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The data a search or table trains on, by name (None: the default, the bundled subset)."""
    return None if kwargs.get("data") is None else data_setting(kwargs["data"])
