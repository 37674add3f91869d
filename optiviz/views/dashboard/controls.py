"""The training dashboard's control widgets, and how they show a run's settings.

Built from the same specs as every view (engine/hparams.py: names, ranges, slider hints;
engine/schedules.py) through views/common/controls.py. Nothing here talks to the trainer: the
dashboard wires each widget's observer to a controller request, and calls `Controls.show(...)`
(quietly) after every change, which moves each widget to what the focused run's trainer has.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from optiviz.engine.hparams import HPARAMS, TRAINING_SETTINGS, torch_hparams, training_spec
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.schedules import SCHEDULE_PARAMS, SCHEDULES
from optiviz.training.models import ACTIVATIONS, INITS
from optiviz.training.runs import BATCH_SIZES, MODEL_PRESETS, RunSpec
from optiviz.views.common.controls import DESCRIPTION_STYLE, Quiet, linear_slider, log_slider, set_quietly, spec_widgets

if TYPE_CHECKING:  # pragma: no cover - only the type; the view passes its controller in
    from optiviz.views.dashboard.controller import DashboardController

MOMENTUM = HPARAMS["momentum"]["momentum"]
BETAS = HPARAMS["adam"]["betas"]
DROPOUT = TRAINING_SETTINGS["dropout"]


def _button(description: str, icon: str, style: str = "") -> widgets.Button:
    """A big button (each its own Layout: a shared one would be closed with the first view)."""
    return widgets.Button(description=description, icon=icon, button_style=style,
                          layout=widgets.Layout(width="130px" if len(description) > 6 else "112px", height="40px"))
DEFAULT_INIT = "model default"


def _dropdown(description: str, options: Any, value: Any) -> widgets.Dropdown:
    return widgets.Dropdown(options=options, value=value, description=description, style=DESCRIPTION_STYLE,
                            layout=widgets.Layout(width="420px"))


class Controls:
    """Every control widget of the dashboard, by role. `live` are the ones that steer a running net."""

    def __init__(self, spec: RunSpec) -> None:
        lr_spec = training_spec(spec.optimizer, "lr")
        self.lr = log_slider("lr", spec.effective_lr, *lr_spec.slider)
        self.lr.tooltip = lr_spec.description + " (acts at the next step)"
        self.lr_text = widgets.FloatText(value=spec.effective_lr, description="lr =", style=DESCRIPTION_STYLE,
                                         layout=widgets.Layout(width="260px"))
        self.lr_text.tooltip = "type any lr; bad values are refused with a message"
        self.momentum = linear_slider("momentum", MOMENTUM.default, *MOMENTUM.slider, fmt=".3f")
        self.momentum.tooltip = MOMENTUM.description
        self.beta1, self.beta2 = (linear_slider(part, BETAS.default[i], *BETAS.slider, fmt=".4f")
                                  for i, part in enumerate(BETAS.parts))
        self.dropout = linear_slider("dropout", DROPOUT.default, *DROPOUT.slider, step=0.01, fmt=".2f")
        self.dropout.tooltip = DROPOUT.description + " (acts at the next step)"
        self.weight_decay = widgets.FloatText(value=spec.weight_decay, description="weight decay",
                                              style=DESCRIPTION_STYLE, layout=widgets.Layout(width="260px"))
        self.weight_decay.tooltip = training_spec(spec.optimizer, "weight_decay").description
        self.run = _dropdown("run", [("run 1", 0)], 0)
        self.run.tooltip = "the run the sliders steer and the layer panels show"
        self.live_note = widgets.HTML("<i>These act on the running net at the next step, marked on the curves.</i>")

        self.model = _dropdown("model", [(title, key) for key, (title, _) in MODEL_PRESETS.items()], spec.model)
        self.optimizer = _dropdown("optimizer", list(OPTIMIZERS), spec.optimizer)
        self.batch_size = _dropdown("batch size", list(BATCH_SIZES), spec.batch_size)
        self.batch_norm = widgets.Checkbox(value=bool(spec.batch_norm), description="batch norm", indent=False,
                                           layout=widgets.Layout(width="200px"))
        self.activation = _dropdown("activation", list(ACTIVATIONS), spec.activation)
        self.init = _dropdown("init", [DEFAULT_INIT, *INITS], spec.init or DEFAULT_INIT)
        self.schedule = _dropdown("lr schedule", list(SCHEDULES), spec.schedule[0])
        self.schedule_params: dict[tuple[str, str], widgets.Widget] = {}
        for kind, params in SCHEDULE_PARAMS.items():
            for name, pspec in params.items():
                (w,) = spec_widgets(pspec, spec.schedule[1].get(name, pspec.default) if kind == spec.schedule[0]
                                    else pspec.default).values()
                w.tooltip = pspec.description
                self.schedule_params[(kind, name)] = w
        self.restart_note = widgets.HTML("<i>Changing these starts a new run (same seed: same initial weights).</i>")

        self.compare_boxes = {o: widgets.Checkbox(value=o in ("sgd", "momentum", "adam"), description=o, indent=False,
                                                  layout=widgets.Layout(width="130px")) for o in OPTIMIZERS}
        self.compare_btn = _button("Compare", "columns", "info")
        self.single_btn = _button("Single run", "square")
        self.compare_note = widgets.HTML("<i>Each ticked optimizer trains the same net from the same initial "
                                         "weights on the same batches (its default lr); curves overlaid.</i>")

        self.start_btn = _button("Start", "play", "success")
        self.pause_btn = _button("Pause", "pause")
        self.stop_btn = _button("Stop", "stop", "danger")
        self.step_btn = _button("Step", "step-forward")
        self.reset_btn = _button("Reset", "undo")
        self.snapshot_btn = _button("Snapshot", "camera")
        self.rewind_to = widgets.Dropdown(options=[("no snapshots", -1)], value=-1,
                                          layout=widgets.Layout(width="230px"))
        self.rewind_btn = _button("Rewind", "history")

        self.hist_live = widgets.Checkbox(value=True, description="live", indent=False,
                                          layout=widgets.Layout(width="80px"))
        self.hist_probe = widgets.IntSlider(value=0, min=0, max=0, description="probe", continuous_update=True,
                                            style=DESCRIPTION_STYLE, layout=widgets.Layout(width="420px"))
        self.hist_probe.tooltip = "step back through the probes (activation histograms)"
        self.hist_label = widgets.HTML()
        for w, cls in ((self.lr, "optiviz-dash-lr"), (self.lr_text, "optiviz-dash-lr-text"),
                       (self.dropout, "optiviz-dash-dropout"), (self.hist_probe, "optiviz-dash-probe")):
            w.add_class(cls)
        self._show_schedule_params(spec.schedule[0])

    # ------------------------------------------------------------------ layout
    def buttons(self) -> widgets.Widget:
        return widgets.HBox([self.start_btn, self.pause_btn, self.stop_btn, self.step_btn, self.reset_btn,
                             widgets.HTML("&nbsp;" * 4), self.snapshot_btn, self.rewind_to, self.rewind_btn],
                            layout=widgets.Layout(flex_flow="row wrap"))

    def tabs(self) -> widgets.Tab:
        live = widgets.VBox([self.run, self.lr, self.lr_text, self.momentum, self.beta1, self.beta2, self.dropout,
                             self.weight_decay, self.live_note])
        model = widgets.VBox([self.model, self.optimizer, self.batch_size, self.batch_norm, self.activation, self.init,
                              self.schedule, *self.schedule_params.values(), self.restart_note])
        compare = widgets.VBox([widgets.HBox(list(self.compare_boxes.values())[:3]),
                                widgets.HBox(list(self.compare_boxes.values())[3:]),
                                widgets.HBox([self.compare_btn, self.single_btn]), self.compare_note])
        tabs = widgets.Tab(children=[live, model, compare], titles=["steer", "model", "compare"],
                           layout=widgets.Layout(width="450px"))
        return tabs

    def histogram_bar(self) -> widgets.Widget:
        return widgets.HBox([self.hist_probe, self.hist_live, self.hist_label])

    # ------------------------------------------------------------------ show settings
    def show(self, quiet: Quiet, ctl: DashboardController) -> None:
        """Every control shows what the engine runs now: the live ones the focused trainer's
        settings, the others the run's spec (moved quietly: no requests)."""
        runs, focus, base = ctl.runs, ctl.focus, ctl.base
        run = runs[focus]
        spec, trainer = run.spec, run.trainer
        hp = trainer.hparams
        options = [(f"{i + 1}: {r.label}", i) for i, r in enumerate(runs)]
        with quiet():
            if list(self.run.options) != options:
                self.run.options = options
            self.run.value = focus
        self.run.layout.display = None if len(runs) > 1 else "none"
        set_quietly(quiet, self.lr, hp["lr"])
        set_quietly(quiet, self.lr_text, hp["lr"])
        allowed = torch_hparams(spec.optimizer)
        self.momentum.layout.display = None if "momentum" in allowed else "none"
        if "momentum" in allowed:
            set_quietly(quiet, self.momentum, hp["momentum"])
        for i, w in enumerate((self.beta1, self.beta2)):
            w.layout.display = None if "betas" in allowed else "none"
            if "betas" in allowed:
                set_quietly(quiet, w, hp["betas"][i])
        set_quietly(quiet, self.dropout, hp.get("dropout", 0.0))
        set_quietly(quiet, self.weight_decay, hp["weight_decay"])

        config = getattr(trainer.model, "config", {})
        set_quietly(quiet, self.model, base.model)
        set_quietly(quiet, self.optimizer, spec.optimizer)
        self.optimizer.disabled = len(runs) > 1
        if base.batch_size not in self.batch_size.options:
            with quiet():
                self.batch_size.options = sorted({*BATCH_SIZES, base.batch_size})
        set_quietly(quiet, self.batch_size, base.batch_size)
        set_quietly(quiet, self.batch_norm, bool(config.get("batch_norm", base.batch_norm)))
        set_quietly(quiet, self.activation, base.activation)
        set_quietly(quiet, self.init, base.init or DEFAULT_INIT)
        kind, params = base.schedule
        set_quietly(quiet, self.schedule, kind)
        for (k, name), w in self.schedule_params.items():
            if k == kind and name in params:
                set_quietly(quiet, w, params[name])
        self._show_schedule_params(kind)

    def schedule_value(self) -> tuple[str, dict[str, Any]]:
        kind = self.schedule.value
        self._show_schedule_params(kind)
        return (kind, {name: w.value for (k, name), w in self.schedule_params.items() if k == kind})

    def _show_schedule_params(self, kind: str) -> None:
        for (k, _name), w in self.schedule_params.items():
            w.layout.display = None if k == kind else "none"

    def show_snapshots(self, quiet: Quiet, labels: list[str]) -> None:
        with quiet():
            if labels:
                self.rewind_to.options = [(label, i) for i, label in enumerate(labels)]
                self.rewind_to.value = len(labels) - 1
            else:
                self.rewind_to.options = [("no snapshots", -1)]
                self.rewind_to.value = -1

    def compare_choice(self) -> list[str]:
        return [o for o, box in self.compare_boxes.items() if box.value]


__all__ = ["Controls", "DEFAULT_INIT"]
