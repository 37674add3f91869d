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
from optiviz.views.common import registry, theme
from optiviz.views.common.widget_tree import close_tree


class StreamedView(widgets.VBox):
    """A generator of partial results drained by a LiveRunner, with start/stop, progress and a status line.

    Subclasses give `_start()` (build the generator from their controls; a ValueError there is
    shown, not raised) and `_publish(records)` (draw what arrived).
    """

    def __init__(self, *, fps: float = 5, **kw: Any) -> None:
        super().__init__(**kw)
        self.closed = False
        theme.mark_view(self)
        self._iter: Iterator[Any] | None = None
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress")
        self.status = widgets.HTML("")
        self.start_button = widgets.Button(description="Start", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.start_button.on_click(lambda _b: self.start())
        self.stop_requested = False  # long steps (training) poll this to end early
        self.stop_button.on_click(lambda _b: self.stop())
        self.runner = LiveRunner(self._next, publish=self._drain, on_error=self._show_error, fps=fps,
                                 name=type(self).__name__)
        registry.register(self)  # a view of an earlier run of this cell is closed (registry.py's rule)

    def _next(self) -> Any:
        try:
            return next(self._iter) if self._iter is not None else DONE
        except StopIteration:
            return DONE

    def _show_error(self, message: str) -> None:
        if not self.closed:
            self.status.value = f'<span class="optiviz-error">{html.escape(message)}</span>'

    def _drain(self, records: list[Any]) -> None:
        """The runner's publish: what arrived is drawn, unless the view was closed meanwhile."""
        if not self.closed:
            self._publish(records)

    def stop(self) -> None:
        """Stop after the step in progress (a step that polls `stop_requested` ends sooner)."""
        self.stop_requested = True
        if not self.closed:
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
        """Compute in the background; results stream in. Ignored after close()."""
        if self.closed:
            return
        self.runner.pause()
        if self._prepare():
            self.runner.play()

    result: Any = None  # what subclasses have drawn last (a map, the points, the rows)

    def run_sync(self) -> Any:
        """Compute to the end in this thread (scripts, tests, notebooks executed headless). After
        close() nothing runs: the last result is returned as it was."""
        if self.closed:
            return self.result
        self.runner.pause()
        if self._prepare():
            try:
                while self.runner.run_sync(1, publish_each=True):
                    pass
            except ValueError:
                pass  # already on the status line, as in a live run (generators check their input lazily)
        return self.result

    def close(self) -> None:
        """Stop the worker, then close every widget this view made. Afterwards the view ignores every
        call (nothing runs, nothing is drawn, nothing raises), as the live views do. Safe on a view
        whose constructor failed half way (ipywidgets calls close() from __del__)."""
        if getattr(self, "closed", False):
            return
        self.closed = True
        registry.forget(self)
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
        for child in self.children:
            close_tree(child)
        super().close()

    def _start(self) -> Iterator[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _publish(self, records: list[Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
