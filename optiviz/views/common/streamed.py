"""The one base for views that stream a generator of partial results (maps, searches, tables).

Nothing here knows what is computed: a subclass builds a generator from its controls and draws
what it yields; this class runs it through a LiveRunner (background thread, bounded frame rate),
and turns bad settings into a message on the status line instead of a traceback.
"""
from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets

from optiviz.stream.runner import DONE, LiveRunner
from optiviz.views.common import theme
from optiviz.views.common.widget_tree import close_tree


class StreamedView(widgets.VBox):
    """A generator of partial results drained by a LiveRunner, with start/stop, progress and a status line.

    Subclasses give `_start()` (build the generator from their controls; a ValueError there is
    shown, not raised) and `_publish(records)` (draw what arrived).
    """

    def __init__(self, *, fps: float = 5, **kw: Any) -> None:
        super().__init__(**kw)
        self.add_class(theme.CSS_CLASS)
        self._iter: Iterator[Any] | None = None
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress")
        self.status = widgets.HTML("")
        self.start_button = widgets.Button(description="Start", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.start_button.on_click(lambda _b: self.start())
        self.stop_requested = False  # long steps (training) poll this to end early
        self.stop_button.on_click(lambda _b: self.stop())
        self.runner = LiveRunner(self._next, publish=self._publish, on_error=self._show_error, fps=fps,
                                 name=type(self).__name__)

    def _next(self) -> Any:
        try:
            return next(self._iter) if self._iter is not None else DONE
        except StopIteration:
            return DONE

    def _show_error(self, message: str) -> None:
        self.status.value = f'<span class="optiviz-error">{html.escape(message)}</span>'

    def stop(self) -> None:
        """Stop after the step in progress (a step that polls `stop_requested` ends sooner)."""
        self.stop_requested = True
        self.runner.pause()

    def _prepare(self) -> bool:
        self.stop_requested = False
        try:
            self._iter = self._start()
        except ValueError as err:
            self._show_error(str(err))
            return False
        self.progress.value = 0.0
        self.status.value = "running…"
        return True

    def start(self) -> None:
        """Compute in the background; results stream in."""
        self.runner.pause()
        if self._prepare():
            self.runner.play()

    result: Any = None  # what subclasses have drawn last (a map, the points, the rows)

    def run_sync(self) -> Any:
        """Compute to the end in this thread (scripts, tests, notebooks executed headless)."""
        self.runner.pause()
        if self._prepare():
            try:
                while self.runner.run_sync(1, publish_each=True):
                    pass
            except ValueError:
                pass  # already on the status line, as in a live run (generators check their input lazily)
        return self.result

    def close(self) -> None:
        """Stop the worker, then close every widget this view made."""
        self.runner.close()
        for child in self.children:
            close_tree(child)
        super().close()

    def _start(self) -> Iterator[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _publish(self, records: list[Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
