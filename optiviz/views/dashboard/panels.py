"""The training dashboard's plots: bqplot figures built once, redrawn from RunSeries each frame.

Per-run panels overlay every run (compare mode): train and validation loss (log y) with control
changes marked, train and validation accuracy with the gap shaded, the lr in use. Per-layer panels
show one run (the focused one): update/weight ratio (log y, the lectures' 1e-3 band), gradient
norm, dead or saturated fraction, and activation histograms as small multiples (Bars fed with
counts the probes binned on the device).

A frame sends one message per mark whose data changed (`_changed` compares cheap signatures),
each array a decimated float32 view, so a frame costs the same at step 100 and step 100,000.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from optiviz.training.health import Thresholds
from optiviz.training.probes import ProbeRecord
from optiviz.rounding import log_ticks, nice_ceil
from optiviz.views.common.axes import STEP_FORMAT, set_step_range
from optiviz.views.common import theme
from optiviz.views.common.widget_tree import close_tree, pad_rows
from optiviz.views.dashboard.series import RunSeries

# viridis stops, first layer darkest (the last stop darkened: pale yellow vanishes on a projector)
LAYER_COLORS = ("#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#7fbc41", "#b8a51a")
LOSS_FLOOR = 1e-4  # log axes cannot show 0
RATIO_FLOOR = 1e-8  # "no update at all" sits here, visibly at the bottom
GRAD_FLOOR = 1e-10
RATIO_TARGET = Thresholds().ratio_target  # the lectures' ~1e-3, the health checks' value
RATIO_BAND = (RATIO_TARGET / 3, RATIO_TARGET * 3)
PANEL_W, PANEL_H = "400px", "280px"
SMALL_W, SMALL_H = "250px", "210px"
UNIT_TICKS = np.linspace(0.0, 1.0, 6)
# Ticks are given as tick_values: on linear and log scales bqplot's num_ticks spaces ticks evenly
# over the domain (7.50627, 467.753, ...), and d3's defaults crowd a 400 px panel. Only ordinal
# axes (histogram bins) use num_ticks, which there picks every k-th category.


def layer_colors(n: int) -> list[str]:
    """n colours from dark (first layer) to light (last), spread over the palette."""
    if n <= 1:
        return [LAYER_COLORS[0]]
    idx = np.rint(np.linspace(0, len(LAYER_COLORS) - 1, n)).astype(int)
    return [LAYER_COLORS[i] for i in idx]


def run_colors(optimizers: Sequence[str]) -> list[str]:
    """Each optimizer's own colour when they are all different, else one colour per run."""
    if len(set(optimizers)) == len(optimizers):
        return [theme.optimizer_color(o, i) for i, o in enumerate(optimizers)]
    return [theme.fallback_color(i) if i else theme.optimizer_color(optimizers[0]) for i in range(len(optimizers))]


def _lines(scales: dict, **kw: Any) -> bq.Lines:
    return bq.Lines(x=[], y=[], scales=scales, stroke_width=2.5, **kw)


class Panels:
    """Every figure of the dashboard and how records become mark data."""

    def __init__(self, max_points: int = 500) -> None:
        self.max_points = int(max_points)
        self._sig: dict[str, Any] = {}
        self._counts: dict[str, tuple[int, ...]] = {}
        self.layers: tuple[str, ...] = ()
        self.dead_kinds: tuple[str, ...] = ()
        self.run_labels: tuple[str, ...] = ()
        self.colors: list[str] = []

        # one step scale for every panel: all six share the x range [0, current step] and line up
        x = self.step_scale = bq.LinearScale(min=0.0, max=1.0)
        self.step_axes: list[bq.Axis] = []

        # per-run panels
        y = bq.LogScale()
        self.loss = _lines({"x": x, "y": y})
        self.val_loss = _lines({"x": x, "y": y}, line_style="dashed", marker="circle", marker_size=40)
        self.markers = bq.Scatter(x=[], y=[], scales={"x": x, "y": y}, marker="triangle-down", colors=["#000000"],
                                  default_size=110, names=[], display_names=True)
        self.loss_axis = theme.axis(y, "loss", vertical=True, tick_format=".2g")
        self.loss_fig = self._figure([self.loss, self.val_loss, self.markers], self.loss_axis,
                                     "loss (train —, validation - -)")

        y = bq.LinearScale(min=0.0, max=1.0)
        self.gap = bq.Lines(x=[], y=[], scales={"x": x, "y": y}, fill="between", fill_colors=["#888888"],
                            fill_opacities=[0.25], opacities=[0.0, 0.0], stroke_width=0)
        self.train_acc = _lines({"x": x, "y": y}, marker="circle", marker_size=30)
        self.val_acc = _lines({"x": x, "y": y}, line_style="dashed", marker="circle", marker_size=30)
        self.acc_fig = self._figure([self.gap, self.train_acc, self.val_acc],
                                    theme.axis(y, "accuracy", vertical=True, tick_format=".1f", tick_values=UNIT_TICKS),
                                    "accuracy (train —, val - -)")

        y = bq.LogScale()
        self.lr = _lines({"x": x, "y": y})
        self.lr_axis = theme.axis(y, "lr", vertical=True, tick_format=".2~e")  # 1.5e-2, not two "2e-2"
        self.lr_fig = self._figure([self.lr], self.lr_axis, "learning rate in use")

        # per-layer panels
        y = bq.LogScale()
        # the band spans far past any run; the shared step scale (explicit min/max) clips it to the panel
        self.band = bq.Lines(x=[0.0, 1e9], y=[[RATIO_BAND[0]] * 2, [RATIO_BAND[1]] * 2], scales={"x": x, "y": y},
                             fill="between", fill_colors=["#2ca25f"], fill_opacities=[0.18], opacities=[0.0, 0.0])
        self.target = bq.Lines(x=[0.0, 1e9], y=[RATIO_TARGET] * 2, scales={"x": x, "y": y}, colors=["#2ca25f"],
                               line_style="dashed", stroke_width=2)
        self.ratio = _lines({"x": x, "y": y})
        self.ratio_axis = theme.axis(y, "‖ΔW‖ / ‖W‖", vertical=True, tick_format=".0e")
        self.ratio_fig = self._figure([self.band, self.target, self.ratio], self.ratio_axis,
                                      "update / weight ratio (want ~1e-3)")

        y = bq.LogScale()
        self.grad = _lines({"x": x, "y": y})
        self.grad_axis = theme.axis(y, "‖∇W‖", vertical=True, tick_format=".0e")
        self.grad_fig = self._figure([self.grad], self.grad_axis, "gradient norm per layer")

        y = bq.LinearScale(min=0.0, max=1.0)
        self.dead = _lines({"x": x, "y": y})
        self.dead_fig = self._figure([self.dead], theme.axis(y, "fraction", vertical=True, tick_format=".0%",
                                                             tick_values=UNIT_TICKS), "dead units per layer")

        self.layer_legend = widgets.HTML()
        self.hist_box = widgets.Box(layout=widgets.Layout(flex_flow="row wrap"))
        self.hist_bars: list[bq.Bars] = []
        self.hist_figs: list[bq.Figure] = []
        self.hist_step: int | None = None

    # ------------------------------------------------------------------ structure
    def _figure(self, marks: list[bq.Mark], y_axis: bq.Axis, title: str) -> bq.Figure:
        x_axis = theme.axis(self.step_scale, "step", tick_format=STEP_FORMAT)
        self.step_axes.append(x_axis)
        return theme.figure(marks, [x_axis, y_axis], title=title, width=PANEL_W, height=PANEL_H)

    @property
    def figures(self) -> list[bq.Figure]:
        return [self.loss_fig, self.acc_fig, self.lr_fig, self.ratio_fig, self.grad_fig, self.dead_fig, *self.hist_figs]

    def set_runs(self, labels: Sequence[str], optimizers: Sequence[str]) -> None:
        self.run_labels = tuple(labels)
        self.colors = run_colors(list(optimizers))
        for mark in (self.loss, self.val_loss, self.train_acc, self.val_acc, self.lr):
            mark.colors = list(self.colors)
        self.invalidate()

    def set_layers(self, layers: Sequence[str], dead_kinds: Sequence[str], stack: ExitStack) -> None:
        """New layer structure (a new model): colours, legend and one small histogram figure per layer."""
        layers, dead_kinds = tuple(layers), tuple(dead_kinds)
        if (layers, dead_kinds) == (self.layers, self.dead_kinds):
            return
        self.layers, self.dead_kinds = layers, dead_kinds
        colors = layer_colors(len(layers))
        self.ratio.colors = self.grad.colors = colors
        self.dead.colors = [c for c, k in zip(colors, dead_kinds) if k]
        kinds = {k for k in dead_kinds if k}
        self.dead_fig.title = "saturated units per layer" if kinds == {"saturated"} else \
            "dead units per layer (never active)" if kinds == {"dead"} else "dead / saturated units per layer"
        self.layer_legend.value = "".join(
            f'<span style="display:inline-block;margin-right:18px;font-size:{theme.font_px()}px">'
            f'<span style="display:inline-block;width:26px;height:8px;background:{c};margin-right:6px"></span>{n}</span>'
            for n, c in zip(layers, colors))
        old = list(self.hist_figs)
        self.hist_bars, self.hist_figs = [], []
        for name, color in zip(layers, colors):
            # bins as categories (bqplot's Bars lay bars out on an ordinal scale); a few labelled by value
            sx, sy = bq.OrdinalScale(), bq.LinearScale(min=0.0, max=1.0)
            bars = bq.Bars(x=np.zeros(1), y=np.zeros(1, np.float32), scales={"x": sx, "y": sy},
                           colors=[color], padding=0.1, stroke_width=0)
            # an ordinal axis labels every category unless num_ticks subsamples them (every 20th bin here)
            fig = theme.figure([bars], [theme.axis(sx, "", tick_format=".2g", num_ticks=3),
                                        theme.axis(sy, "", vertical=True, tick_format=".0%",
                                                   tick_values=[0.0, 0.5, 1.0])],
                               title=name, width=SMALL_W, height=SMALL_H)
            fig.fig_margin = {"top": 40, "bottom": 40, "left": 60, "right": 12}
            self.hist_bars.append(bars)
            self.hist_figs.append(fig)
        self.hist_box.children = self.hist_figs
        for fig in old:
            close_tree(fig)
        self.hist_step = None
        self.invalidate()

    def invalidate(self) -> None:
        """Redraw everything at the next frame (new run, rewind, other focus)."""
        self._sig.clear()

    # ------------------------------------------------------------------ frames
    def draw(self, series: Sequence[RunSeries], focus: int, stack: ExitStack) -> None:
        """One frame: every mark whose data changed since the last frame gets one message."""
        n = self.max_points
        lengths = tuple(s.loss.samples for s in series)  # rows appended: a decimated series holds fewer
        last = max((s.last_step for s in series), default=-1)
        if self._changed("steps", last):
            set_step_range(self.step_axes, self.step_scale, max(last, 1), stack)
        if self._changed("loss", lengths):
            views = [s.loss.view(n) for s in series]
            loss = [(x, np.maximum(y, LOSS_FLOOR)) for x, y in views]
            self._rows("loss", self.loss, loss, stack)
            lrs = [(x, np.maximum(y, 1e-12)) for x, y in (s.lr.view(n) for s in series)]
            self._rows("lr", self.lr, lrs, stack)
            self._ticks(self.lr_axis, [y for _, y in lrs], stack)
        if self._changed("loss_ticks", (lengths, tuple(s.val.samples for s in series))):
            rows = [s.loss.view(n)[1] for s in series] + [s.val.view(n)[1][:, 0] for s in series]
            self._ticks(self.loss_axis, [np.maximum(r, LOSS_FLOOR) for r in rows], stack)
        if self._changed("loss_markers", (lengths, tuple(s.markers.added for s in series))):
            self._draw_markers(series, stack)
        vlen = tuple(s.val.samples for s in series)
        elen = tuple(s.epoch.samples for s in series)
        if self._changed("val", vlen):
            views = [s.val.view(n) for s in series]
            self._rows("val_loss", self.val_loss, [(x, np.maximum(v[:, 0], LOSS_FLOOR)) for x, v in views], stack)
            self._rows("val_acc", self.val_acc, [(x, v[:, 1]) for x, v in views], stack)
        if self._changed("epoch", elen):
            self._rows("train_acc", self.train_acc, [(x, v[:, 0]) for x, v in (s.epoch.view(n) for s in series)], stack)
        if series and self._changed("gap", (vlen, elen, focus)):
            self._draw_gap(series[focus], stack)
        if series and self._changed("layers", (series[focus].ratio.samples, focus)):
            self._draw_layers(series[focus], stack)

    def _ticks(self, axis: bq.Axis, rows: list[np.ndarray], stack: ExitStack) -> None:
        """A log axis over what the rows span: round bounds (a constant lr would give the log scale an
        empty domain, which bqplot draws at NaN) and decade or 1-2-5 ticks; sent only when they change."""
        finite = [r[np.isfinite(r) & (r > 0)] for r in rows if len(r)]
        finite = [r for r in finite if len(r)]
        if not finite:
            return
        lo, hi = log_range(min(float(r.min()) for r in finite), max(float(r.max()) for r in finite))
        ticks = np.asarray(log_ticks(lo, hi) or [lo, hi], dtype=np.float64)
        current = axis.tick_values
        if current is None or not np.array_equal(np.asarray(current), ticks):
            stack.enter_context(axis.hold_sync())
            axis.tick_values = ticks
        scale = axis.scale
        # Entered last, so its message goes out first: bqplot drew new ticks against the old domain
        # at NaN (console errors "translate(0,NaN)") when the axis message came first.
        if (scale.min, scale.max) != (lo, hi):
            stack.enter_context(scale.hold_sync())
            scale.min, scale.max = lo, hi

    def _changed(self, key: str, sig: Any) -> bool:
        if self._sig.get(key) == sig:
            return False
        self._sig[key] = sig
        return True

    def _rows(self, key: str, mark: bq.Lines, rows: list[tuple[np.ndarray, np.ndarray]], stack: ExitStack) -> None:
        x, y, counts = pad_rows(rows)
        self._counts[key] = counts
        stack.enter_context(mark.hold_sync())
        mark.x, mark.y = x, y

    def _draw_markers(self, series: Sequence[RunSeries], stack: ExitStack) -> None:
        xs, ys, colors, names = [], [], [], []
        for k, s in enumerate(series):
            steps, labels = s.markers.view(30)
            if not len(steps):
                continue
            hist_steps, hist_loss = s.loss.arrays()
            for step, label in zip(steps, labels):
                i = int(np.searchsorted(hist_steps, step))
                if i >= len(hist_loss):
                    continue  # its step has not run yet: drawn next frame
                value = hist_loss[i]
                xs.append(float(step))
                ys.append(float(max(value, LOSS_FLOOR)) if np.isfinite(value) else np.nan)
                colors.append(self.colors[k] if k < len(self.colors) else "#000000")
                names.append(label)
        keep = [i for i, v in enumerate(ys) if np.isfinite(v)]
        stack.enter_context(self.markers.hold_sync())
        self.markers.x = np.asarray([xs[i] for i in keep], dtype=np.float32)
        self.markers.y = np.asarray([ys[i] for i in keep], dtype=np.float32)
        self.markers.colors = [colors[i] for i in keep] or ["#000000"]
        self.markers.names = [names[i] for i in keep]

    def _draw_gap(self, s: RunSeries, stack: ExitStack) -> None:
        es, ep = s.epoch.arrays()
        vs, val = s.val.arrays()
        x, train, valid = epoch_gap(es, ep[:, 0], vs, val[:, 1])
        stack.enter_context(self.gap.hold_sync())
        if len(x) >= 1:
            x2 = x if len(x) > 1 else np.repeat(x, 2)
            self.gap.x = x2.astype(np.float32)
            self.gap.y = np.stack([np.resize(train, len(x2)), np.resize(valid, len(x2))]).astype(np.float32)
            title = f"accuracy · train − val gap {train[-1] - valid[-1]:+.2f}"
        else:
            self.gap.x, self.gap.y = np.zeros(2, np.float32), np.zeros((2, 2), np.float32)
            title = "accuracy (train —, val - -)"
        if self.acc_fig.title != title:
            stack.enter_context(self.acc_fig.hold_sync())
            self.acc_fig.title = title

    def _draw_layers(self, s: RunSeries, stack: ExitStack) -> None:
        n = self.max_points
        L = len(self.layers)

        def columns(buf: Any) -> tuple[np.ndarray, np.ndarray]:
            x, v = buf.view(n, breaks=True)
            return x, v.reshape(len(x), buf.width or 1)[:, :L]

        for key, buf, mark, floor in (("ratio", s.ratio, self.ratio, RATIO_FLOOR), ("grad", s.grad, self.grad, GRAD_FLOOR)):
            x, v = columns(buf)
            v = np.maximum(np.nan_to_num(v, nan=0.0), floor)  # 0/0 (zero weights, no update): at the floor
            self._layer_rows(key, mark, x, v.T, stack)
            extra = [np.array(RATIO_BAND)] if key == "ratio" else []
            self._ticks(self.ratio_axis if key == "ratio" else self.grad_axis, [v.ravel(), *extra], stack)
        x, v = columns(s.dead)
        cols = [i for i, k in enumerate(self.dead_kinds) if k]
        self._layer_rows("dead", self.dead, x, v[:, cols].T, stack)

    def _layer_rows(self, key: str, mark: bq.Lines, x: np.ndarray, y: np.ndarray, stack: ExitStack) -> None:
        stack.enter_context(mark.hold_sync())
        self._counts[key] = (len(x),) * len(y)
        if len(x) == 0 or len(y) == 0:  # bqplot cannot build a view from (K, 0) arrays; empty 1-D is fine
            mark.x, mark.y = np.zeros(0, np.float32), np.zeros(0, np.float32)
            return
        if len(x) == 1:  # bqplot squeezes a one-point row into a different shape: repeat it
            x, y = np.repeat(x, 2), np.repeat(y, 2, axis=1)
        mark.x = x.astype(np.float32)
        mark.y = y.astype(np.float32)

    def draw_histograms(self, probe: ProbeRecord | None, stack: ExitStack) -> None:
        """Activation histograms of one probe step, one small figure per layer."""
        step = None if probe is None else probe.step
        if step == self.hist_step and step is not None:
            return
        self.hist_step = step
        for i, (bars, fig) in enumerate(zip(self.hist_bars, self.hist_figs)):
            stack.enter_context(bars.hold_sync())
            if probe is None or i >= len(probe.layers):
                bars.x, bars.y = np.zeros(1, np.float32), np.zeros(1, np.float32)
                continue
            edges = np.asarray(probe.act_edges[i], dtype=np.float64)
            counts = np.nan_to_num(np.asarray(probe.act_hist[i], dtype=np.float32), nan=0.0)
            if not np.all(np.isfinite(edges)):
                continue
            sy = bars.scales["y"]
            y_axis = fig.axes[1]
            # bin centres, rounded so the few labelled ones read well
            centres = np.asarray([float(f"{c:.3g}") for c in 0.5 * (edges[:-1] + edges[1:])])
            top = nice_ceil(float(counts.max()) if counts.size else 0.0)
            if sy.max != top:  # the y range only grows by round steps, so it rarely changes
                for w in (y_axis, sy):  # the scale's message goes out first (see _ticks)
                    stack.enter_context(w.hold_sync())
                sy.max = top
                y_axis.tick_values = np.array([0.0, top / 2, top])
            bars.x = centres
            bars.y = counts

    # ------------------------------------------------------------------ what the marks hold
    def rows(self, key: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per row (run or layer), the x and y a mark holds, padding removed."""
        mark = {"loss": self.loss, "val_loss": self.val_loss, "train_acc": self.train_acc, "val_acc": self.val_acc,
                "lr": self.lr, "ratio": self.ratio, "grad": self.grad, "dead": self.dead}[key]
        x, y = np.asarray(mark.x), np.asarray(mark.y)
        counts = self._counts.get(key, ())
        out = []
        for k, c in enumerate(counts):
            xs = x[k, :c] if x.ndim == 2 else x[:c]
            ys = y[k, :c] if y.ndim == 2 else y[:c]
            out.append((xs, ys))
        return out

    @property
    def marks(self) -> dict[str, Any]:
        return {"loss": self.loss, "val_loss": self.val_loss, "markers": self.markers, "gap": self.gap,
                "train_acc": self.train_acc, "val_acc": self.val_acc, "lr": self.lr, "ratio": self.ratio,
                "ratio_band": self.band, "ratio_target": self.target, "grad": self.grad, "dead": self.dead,
                "histograms": list(self.hist_bars)}


def log_range(lo: float, hi: float) -> tuple[float, float]:
    """Bounds for a log axis: round values (1, 1.5, 2, 3, 5, 7 x 10^k) around [lo, hi], never an empty range."""
    steps = (1, 1.5, 2, 3, 5, 7, 10)
    mag = 10.0 ** math.floor(math.log10(lo))
    low = max(m * mag for m in steps if m * mag <= lo * (1 + 1e-9))
    mag = 10.0 ** math.floor(math.log10(hi))
    high = min(m * mag for m in steps if m * mag >= hi * (1 - 1e-9))
    if high <= low:
        low, high = low / 2, high * 2
    return low, high


def epoch_gap(epoch_steps: np.ndarray, train_acc: np.ndarray, val_steps: np.ndarray,
              val_acc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, train_acc, val_acc) at each epoch end with a validation at or before it."""
    if not len(epoch_steps) or not len(val_steps):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    idx = np.searchsorted(val_steps, epoch_steps, side="right") - 1
    ok = idx >= 0
    return np.asarray(epoch_steps)[ok], np.asarray(train_acc)[ok], np.asarray(val_acc)[idx[ok]]


__all__ = ["Panels", "log_range", "layer_colors", "run_colors", "epoch_gap"]
