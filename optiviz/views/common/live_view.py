"""LiveView: what every live widget repeats around its controller (error line, close, redraw hooks).

The widget holds no copy of any setting: it draws `self.controller`'s state when the controller
says something changed, and turns a person's input into `controller.request(...)`.
"""
from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as widgets

from optiviz.views.common import registry, theme
from optiviz.views.common.controls import Looks
from optiviz.views.common.frame_ack import FrameAck
from optiviz.views.common.live_controller import LiveController
from optiviz.views.common.widget_tree import close_tree


TEXT_S = 0.25  # while playing, numbers in texts (losses, steps, images seen): at most 4 redraws a second


class LiveView(widgets.VBox):
    """Base of the live widgets. Subclasses build their widgets, then call `attach(controller)`,
    and implement `on_frame()`, `on_config()` and `on_status()` (each draws from the controller)."""

    controller: LiveController

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        theme.mark_view(self)
        self.looks = Looks()  # one Layout / Style model per look in this view (controls.py's Looks)
        self.error_html = widgets.HTML(layout=self.looks.layout(), style=self.looks.style(widgets.HTML))
        self.error_html.add_class("optiviz-error-line")
        self.frame_ack = FrameAck()  # the page's answers keep the worker within a few frames of it
        self._closed = False
        self._drawn_at: dict[str, float] = {}  # what a playing frame drew last, and when (see due)
        registry.register(self)  # a view of an earlier run of this cell is closed (registry.py's rule)

    def attach(self, controller: LiveController) -> None:
        self.controller = controller
        controller.subscribe(self._on_event)

    def _on_event(self, event: str) -> None:
        if self._closed:
            return
        if event == "frame":
            self.frame_ack.wait_for_room()  # in the worker only: never ahead of what a page draws
            self.on_frame()
            self.frame_ack.frame_sent()
        elif event == "config":
            self.on_config()
        elif event == "status":
            self.on_status()
        elif event == "error":
            self.draw_error()

    def due(self, part: str, interval: float) -> bool:
        """While playing, `part` is redrawn at most every `interval` s; every other frame (a step,
        a reset) draws it, and so does every change of state (a view's on_status draws all). The
        page's main thread limits the frames a second it draws, and each message costs it: numbers
        changing 30 times a second cannot be read, and curves that grow a pixel a frame look the
        same at 15."""
        if self.controller.state != "playing":
            return True
        now = time.monotonic()
        if now - self._drawn_at.get(part, -float("inf")) < interval:
            return False
        self._drawn_at[part] = now
        return True

    def on_frame(self) -> None:  # pragma: no cover - every view draws frames
        raise NotImplementedError

    def on_config(self) -> None:
        """Controls re-read the controller's settings (default: nothing to sync)."""

    def on_status(self) -> None:
        """The runner's state changed (default: nothing shown)."""

    def draw_error(self) -> None:
        message = self.controller.error
        value = f'<span class="optiviz-error">\u26a0 {html.escape(message)}</span>' if message else ""
        if self.error_html.value != value:
            self.error_html.value = value

    @property
    def error(self) -> str:
        """The message the error line shows ('' when none)."""
        return self.controller.error

    def close(self) -> None:
        """Stop the controller's worker, then close every widget this view made. Afterwards the
        view ignores every call (nothing runs, nothing is drawn, nothing raises). Safe on a view
        whose constructor failed half way (ipywidgets calls close() from __del__)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        registry.forget(self)
        controller = getattr(self, "controller", None)
        if controller is not None:
            controller.close()
        for child in self.children:
            close_tree(child, skip=self)
        ack = getattr(self, "frame_ack", None)
        if ack is not None:
            ack.close()
        super().close()
        self.layout.close()  # the root's own Layout, which closing a widget leaves open


__all__ = ["LiveView"]
