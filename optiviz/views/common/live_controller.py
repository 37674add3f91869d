"""LiveController: the plain-Python owner of one live run (no widgets, bqplot or IPython here).

A live view is two objects. Its controller owns the engine, the configuration, the log of
changes and the one `LiveRunner` (the only thread boundary); the widget only draws the
controller's state and sends requests. Everything a view can do is therefore scriptable
through its controller, in tests, notebooks and benchmarks, without a widget.

Requests are `(kind, *args)` tuples (or a plain kind string) with a value, for example
`("hparam", "adam", "lr"), 0.01`. The runner keeps the latest value per key and hands them to
`apply` at the next step boundary, where `handlers[kind](*args, value)` does the change: a
table, not string prefixes and getattr. A ValueError (or a TypeError: a value of the wrong
kind from a script) from a handler is the user's mistake: it becomes `error` (shown in the view's
error line), the controls snap back to what runs, and the run goes on. The error line is cleared
by the person's next request, not by the next change that happens to succeed: a rejected change
followed by another in the same step boundary stays visible.

Listeners (`subscribe`) hear, in the thread that caused it: "frame" (new records were added),
"config" (a setting changed: controls re-read the controller), "status" (the runner's state),
"error" (the error line changed).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

from optiviz.stream.runner import LiveRunner

Request = Hashable
Listener = Callable[[str], Any]
EVENTS = ("frame", "config", "status", "error")


class LiveController:
    """Base of every live view's controller: runner, handler table, error, listeners.

    Subclasses give `handlers()` (kind -> callable(*args, value)), `step_chunk()` (one chunk of
    the engine, a record or LiveRunner.DONE) and `add_records(records)` (fold a frame's records
    into the state the view draws).
    """

    def __init__(self, *, fps: float, name: str, paced: bool = False) -> None:
        self._handlers: Mapping[str, Callable[..., Any]] = self.handlers()
        self._listeners: list[Listener] = []
        self.error = ""
        self.closed = False
        self.runner = LiveRunner(self.step_chunk, apply=self._apply, publish=self.publish,
                                 on_error=self.show_error, on_status=self._on_status, fps=fps, name=name,
                                 paced=paced)

    # ---- what subclasses provide -------------------------------------------------------------
    def handlers(self) -> Mapping[str, Callable[..., Any]]:
        raise NotImplementedError

    def step_chunk(self) -> Any:
        raise NotImplementedError

    def add_records(self, records: list[Any]) -> None:
        raise NotImplementedError

    # ---- requests ----------------------------------------------------------------------------
    def request(self, key: Request, value: Any = True, *, sync: bool = False) -> None:
        """Record a change; it applies at the next step boundary, or now when nothing runs
        (sync=True: now in any case, after the step in flight)."""
        if self.closed:
            return
        kind = key[0] if isinstance(key, tuple) else key
        if kind not in self._handlers:
            self.show_error(f"unknown control {kind!r}; known: {', '.join(sorted(self._handlers))}")
            return
        self.clear_error()  # a new request answers the old message
        self.runner.request(key, value)
        if sync or not self.runner.is_running:
            self.runner.apply_pending()

    def _apply(self, changes: dict[Request, Any]) -> None:
        """Runner's apply: one change at a time, through the handler table."""
        for key, value in changes.items():
            kind, args = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
            try:
                self._handlers[kind](*args, value)
            except ValueError:
                self.emit("config")  # rejected: controls snap back to what runs
                raise
            except TypeError as exc:
                self.emit("config")
                raise ValueError(f"{' '.join(map(str, (kind, *args)))}: cannot use {value!r} ({exc})") from None
            self.emit("config")

    # ---- events ------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: str) -> None:
        for listener in list(self._listeners):
            listener(event)

    def publish(self, records: list[Any]) -> None:
        """The runner's publish: fold records into the state, then tell the view to draw a frame
        (benchmarks call it to time one frame)."""
        self.add_records(records)
        self.emit("frame")

    def _on_status(self, _state: str) -> None:
        if not self.closed:
            self.emit("status")

    def show_error(self, message: str) -> None:
        self.error = str(message)
        self.emit("error")

    def clear_error(self) -> None:
        if self.error:
            self.error = ""
            self.emit("error")

    @property
    def state(self) -> str:
        return self.runner.state

    # ---- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the worker for good; later requests are ignored."""
        if self.closed:
            return
        self.closed = True
        self.runner.close()
        self._listeners.clear()


__all__ = ["LiveController", "EVENTS", "Request"]
