"""Every control of the surface explorer, built from the engine's specs.

Observers here do one thing: turn a person's input into a control request (`request(key,
value)` of the ExplorerController), which is applied at the next step boundary. The widgets hold
no setting of their own: `sync` moves them to the controller's config without sending anything
back, after every change the controller makes (a preset, a new surface, a rejected value
snapping back).

Request keys: ("hparam", optimizer, name), "shared_lr", "optimizers", "grad_noise", "clip",
"schedule", "speed", "surface".
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from optiviz.engine.hparams import HPARAMS
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.schedules import SCHEDULE_PARAMS
from optiviz.engine.surface import Surface
from optiviz.engine.surfaces import SURFACES
from optiviz.views.common import theme
from optiviz.views.common.controls import (DESCRIPTION_WIDTH, Looks, Quiet, linear_slider, log_slider,
                                           looks_or_own, on_value, set_quietly, spec_widgets)
from optiviz.views.explorer.config import CLIP_KINDS, SCHEDULE_KINDS, ExplorerConfig
from optiviz.views.explorer.presets import PRESETS

CUSTOM = "custom expression"
WITH_CONDITION = ("quadratic", "rotated_quadratic")


class ExplorerControls:
    """Buttons, preset menu and four tabs (optimizers, hyperparameters, gradient, surface).

    `request(key, value)` records a change; `actions` maps "play", "pause", "step", "reset" and
    "preset" (called with the preset's name) to what the buttons and the preset menu do. `looks`:
    the view's shared Layouts and Styles (the controls shown and hidden alone keep their own).
    """

    def __init__(self, cfg: ExplorerConfig, request: Callable[[Any, Any], None],
                 actions: dict[str, Callable[..., Any]], preset: str | None = None,
                 looks: Looks | None = None) -> None:
        self.quiet = Quiet()
        self.looks = looks_or_own(looks)
        self._request = request
        self._build_buttons(cfg, actions, preset)
        optimizer_panel = self._build_optimizers(cfg)
        hp_panel = self._build_hparams(cfg)
        gradient_panel = self._build_gradient(cfg)
        surface_panel = self._build_surface(cfg)
        self.panels = widgets.Tab(children=[optimizer_panel, hp_panel, gradient_panel, surface_panel],
                                  titles=["optimizers", "hyperparameters", "gradient", "surface"],
                                  layout=self.looks.layout())

    # ------------------------------------------------------------------ building
    def _build_buttons(self, cfg: ExplorerConfig, actions: dict[str, Callable[..., Any]], preset: str | None) -> None:
        looks = self.looks
        big = {"layout": looks.layout(width="110px", height="40px"), "style": looks.style(widgets.Button)}
        self.play_button = widgets.Button(description="Play", icon="play", button_style="success", **big)
        self.pause_button = widgets.Button(description="Pause", icon="pause", **big)
        self.step_button = widgets.Button(description="Step", icon="step-forward", **big)
        self.reset_button = widgets.Button(description="Reset", icon="undo", **big)
        for button, name in ((self.play_button, "play"), (self.pause_button, "pause"),
                             (self.step_button, "step"), (self.reset_button, "reset")):
            button.on_click(lambda _b, name=name: actions[name]())
        self.speed = widgets.IntSlider(value=cfg.speed, min=1, max=500, description="steps/frame",
                                       continuous_update=False, layout=looks.layout(width="380px"),
                                       style=looks.style(widgets.FloatSlider, description_width=DESCRIPTION_WIDTH))
        on_value(self.speed, self.quiet, lambda v: self._request("speed", v))
        self.buttons = widgets.HBox([self.play_button, self.pause_button, self.step_button, self.reset_button,
                                     self.speed], layout=looks.layout())
        self.preset = widgets.Dropdown(
            options=[("choose a story…", "")] + [(p.title, k) for k, p in PRESETS.items()],
            value=preset or "", description="preset", layout=looks.layout(width="560px"),
            style=looks.style(widgets.Dropdown, description_width="70px"))
        on_value(self.preset, self.quiet, lambda v: v and actions["preset"](v))

    def _build_optimizers(self, cfg: ExplorerConfig) -> widgets.Widget:
        """A checkbox and a log lr slider per optimizer, always in sight; a shared-lr switch."""
        self.racing: dict[str, widgets.Checkbox] = {}
        self.lr: dict[str, widgets.FloatLogSlider] = {}
        looks = self.looks
        rows = []
        for o in OPTIMIZERS:
            box = widgets.Checkbox(value=o in cfg.optimizers, description=o, indent=False,
                                   layout=looks.layout(width="130px"), style=looks.style(widgets.Checkbox))
            on_value(box, self.quiet, lambda _v: self._request("optimizers", self.checked()))
            lr = log_slider("lr", cfg.hparams[o]["lr"], *HPARAMS[o]["lr"].slider, looks=looks, description_width="30px")
            on_value(lr, self.quiet, lambda v, o=o: self._request(("hparam", o, "lr"), v))
            swatch = widgets.HTML(f'<span style="display:inline-block;width:28px;height:6px;'
                                  f'background:{theme.optimizer_color(o)};margin-top:14px"></span>',
                                  layout=looks.layout(), style=looks.style(widgets.HTML))
            row = widgets.HBox([swatch, box, lr], layout=looks.layout())
            row.add_class(f"optiviz-row-{o}")
            self.racing[o], self.lr[o] = box, lr
            rows.append(row)
        self.shared = widgets.Checkbox(value=cfg.shared_lr is not None, description="shared lr", indent=False,
                                       layout=looks.layout(), style=looks.style(widgets.Checkbox))
        self.shared_lr = log_slider("lr (all)", cfg.shared_lr or 0.01, *HPARAMS["sgd"]["lr"].slider, looks=looks)
        on_value(self.shared, self.quiet, lambda v: self._request("shared_lr", self.shared_lr.value if v else None))
        on_value(self.shared_lr, self.quiet, lambda v: self.shared.value and self._request("shared_lr", v))
        return widgets.VBox(rows + [widgets.HBox([self.shared, self.shared_lr], layout=looks.layout())],
                            layout=looks.layout())

    def _build_hparams(self, cfg: ExplorerConfig) -> widgets.Widget:
        """One tab per optimizer: an exact lr box, then every other spec as a slider or checkbox."""
        self.hparams: dict[tuple[str, str], widgets.Widget] = {}
        self.lr_text: dict[str, widgets.FloatText] = {}
        looks = self.looks
        tabs = []
        for o in OPTIMIZERS:
            # the slider spans the useful range; this box takes any value, and rejects bad ones visibly
            text = widgets.FloatText(value=cfg.hparams[o]["lr"], description="lr =", continuous_update=False,
                                     layout=looks.layout(width="260px"),
                                     style=looks.style(widgets.FloatText, description_width=DESCRIPTION_WIDTH))
            on_value(text, self.quiet, lambda v, o=o: self._request(("hparam", o, "lr"), v))
            self.lr_text[o] = text
            items: list[widgets.Widget] = [text]
            for name, spec in HPARAMS[o].items():
                if name == "lr":
                    continue
                for key, w in spec_widgets(spec, cfg.hparams[o][name], looks).items():
                    w.tooltip = spec.description
                    on_value(w, self.quiet, lambda v, o=o, key=key: self._on_hparam(o, key, v))
                    self.hparams[(o, key)] = w
                    items.append(w)
            tabs.append(widgets.VBox(items, layout=looks.layout()))
        return widgets.Tab(children=tabs, titles=list(OPTIMIZERS), layout=looks.layout())

    def _build_gradient(self, cfg: ExplorerConfig) -> widgets.Widget:
        """Gradient noise, clipping and the lr schedule (its parameters from the schedule specs)."""
        looks = self.looks
        wide = looks.style(widgets.Dropdown, description_width=DESCRIPTION_WIDTH)
        self.noise = linear_slider("grad noise", cfg.grad_noise, 0.0, 10.0, step=0.01, looks=looks)
        on_value(self.noise, self.quiet, lambda v: self._request("grad_noise", v))
        self.clip_kind = widgets.Dropdown(options=list(CLIP_KINDS), value=cfg.clip[0], description="clip",
                                          style=wide, layout=looks.layout(width="300px"))
        self.clip_value = log_slider("clip at", cfg.clip[1], 1e-3, 1e3, looks=looks)
        for w in (self.clip_kind, self.clip_value):
            on_value(w, self.quiet, lambda _v: self._request("clip", (self.clip_kind.value, self.clip_value.value)))
        self.schedule_kind = widgets.Dropdown(options=list(SCHEDULE_KINDS), value=cfg.schedule[0],
                                              description="lr schedule", style=wide,
                                              layout=looks.layout(width="300px"))
        self.schedule_params: dict[tuple[str, str], widgets.Widget] = {}
        for kind, specs in SCHEDULE_PARAMS.items():
            for pname, spec in specs.items():
                value = cfg.schedule[1].get(pname, spec.default) if kind == cfg.schedule[0] else spec.default
                # its own layout: shown only with its schedule
                (w,) = spec_widgets(spec, value, looks.own_layouts()).values()
                w.tooltip = spec.description
                self.schedule_params[(kind, pname)] = w
        for w in (self.schedule_kind, *self.schedule_params.values()):
            on_value(w, self.quiet, lambda _v: self._request("schedule", self.schedule()))
        self._show_schedule_params(cfg.schedule[0])
        return widgets.VBox([self.noise, self.clip_kind, self.clip_value, self.schedule_kind,
                             *self.schedule_params.values()], layout=looks.layout())

    def _build_surface(self, cfg: ExplorerConfig) -> widgets.Widget:
        """Built-in surfaces, the quadratic's condition number, and a box for a formula."""
        looks = self.looks
        self.surface = widgets.Dropdown(options=list(SURFACES) + [CUSTOM], description="surface",
                                        style=looks.style(widgets.Dropdown, description_width=DESCRIPTION_WIDTH),
                                        layout=looks.layout(width="400px"))
        # its own layout: shown only for the surfaces with a condition number
        self.condition = log_slider("condition", cfg.surface_params.get("condition", 30.0), 1.0, 1000.0,
                                    looks=looks.own_layouts())
        self.expression = widgets.Text(value="", placeholder="e.g. x**2 + 10*y**2 + sin(3*x)",
                                       description="f(x, y) =", continuous_update=False,
                                       style=looks.style(widgets.Text, description_width=DESCRIPTION_WIDTH),
                                       layout=looks.layout(width="560px"))
        on_value(self.surface, self.quiet, self._on_surface)
        on_value(self.condition, self.quiet, lambda v: self._request(
            "surface", ("quadratic" if self.surface.value == CUSTOM else self.surface.value, {"condition": v})))
        on_value(self.expression, self.quiet, lambda v: v.strip() and self._request("surface", (v.strip(), {})))
        hint = widgets.HTML("<i>Click on the surface to start every optimizer there.</i>", layout=looks.layout(),
                            style=looks.style(widgets.HTML))
        return widgets.VBox([self.surface, self.condition, self.expression, hint], layout=looks.layout())

    # ------------------------------------------------------------------ reading
    def checked(self) -> tuple[str, ...]:
        return tuple(o for o in OPTIMIZERS if self.racing[o].value)

    def schedule(self) -> tuple[str, dict[str, Any]]:
        kind = self.schedule_kind.value
        self._show_schedule_params(kind)
        return (kind, {p: w.value for (k, p), w in self.schedule_params.items() if k == kind})

    def _show_schedule_params(self, kind: str) -> None:
        for (k, _p), w in self.schedule_params.items():
            w.layout.display = None if k == kind else "none"

    def _on_hparam(self, optimizer: str, key: str, value: Any) -> None:
        if key.startswith("betas."):
            b = (self.hparams[(optimizer, "betas.0")].value, self.hparams[(optimizer, "betas.1")].value)
            self._request(("hparam", optimizer, "betas"), b)
        else:
            self._request(("hparam", optimizer, key), value)

    def _on_surface(self, name: str) -> None:
        self.condition.layout.display = None if name in WITH_CONDITION else "none"
        if name == CUSTOM:
            text = self.expression.value.strip()
            if text:
                self._request("surface", (text, {}))
            return
        self._request("surface", (name, {"condition": self.condition.value} if name in WITH_CONDITION else {}))

    # ------------------------------------------------------------------ following the engine
    def sync_hparam(self, optimizer: str, hp: str, value: Any) -> None:
        q = self.quiet
        if hp == "lr":
            set_quietly(q, self.lr[optimizer], value)
            set_quietly(q, self.lr_text[optimizer], value)
        elif hp == "betas":
            for i in range(2):
                set_quietly(q, self.hparams[(optimizer, f"betas.{i}")], value[i])
        elif (optimizer, hp) in self.hparams:
            set_quietly(q, self.hparams[(optimizer, hp)], value)

    def sync_gradient(self, cfg: ExplorerConfig) -> None:
        q = self.quiet
        set_quietly(q, self.noise, cfg.grad_noise)
        set_quietly(q, self.clip_kind, cfg.clip[0])
        set_quietly(q, self.clip_value, cfg.clip[1])
        set_quietly(q, self.schedule_kind, cfg.schedule[0])
        for (kind, pname), w in self.schedule_params.items():
            if kind == cfg.schedule[0] and pname in cfg.schedule[1]:
                set_quietly(q, w, cfg.schedule[1][pname])
        self._show_schedule_params(cfg.schedule[0])

    def sync(self, cfg: ExplorerConfig, surface: Surface, preset: str | None) -> None:
        """Every control shows what the engine now runs (after a preset, a new surface, an error)."""
        q = self.quiet
        for o in OPTIMIZERS:
            set_quietly(q, self.racing[o], o in cfg.optimizers)
            for hp, value in cfg.hparams[o].items():
                self.sync_hparam(o, hp, value)
        set_quietly(q, self.shared, cfg.shared_lr is not None)
        if cfg.shared_lr is not None:
            set_quietly(q, self.shared_lr, cfg.shared_lr)
        self.sync_gradient(cfg)
        set_quietly(q, self.speed, cfg.speed)
        set_quietly(q, self.preset, preset or "")
        builtin = surface.name in SURFACES and cfg.surface in SURFACES
        set_quietly(q, self.surface, cfg.surface if builtin else CUSTOM)
        if not builtin:
            set_quietly(q, self.expression, cfg.surface)
        if "condition" in surface.params:
            set_quietly(q, self.condition, surface.params["condition"])
        self.condition.layout.display = None if cfg.surface in WITH_CONDITION else "none"
