"""FrameAck: the browser says which frame it has drawn, so a live view never runs ahead of it.

A worker thread can send frames faster than a loaded browser draws them; the websocket then queues
them, and the page falls seconds behind the run (a slider's change showed 9 s late, at 3 frames
drawn a second, on a loaded 2-core machine). After each frame the view bumps `sent`; the front end
answers, on the next animation frame after applying it (messages arrive in order, so the frame's
marks are applied by then), with that number. Before drawing frame n+2 the worker waits for the
answer to frame n: at most two frames are ever in flight.

No front end, no wait: until a page has answered once (a script, nbclient, a view never shown), or
once none has answered for `GONE_S` (the tab was closed), frames go out at the run's own rate.
The caller's thread never waits (`.step(n)` runs in the kernel's main thread, which is the one
that would read the answer).
"""
from __future__ import annotations

import threading
import time
from typing import Any

import anywidget
import traitlets

WINDOW = 2  # frames in flight
WAIT_S = 0.5  # longest wait for one answer
GONE_S = 2.0  # no answer for this long: no page is drawing


class FrameAck(anywidget.AnyWidget):
    """Invisible widget: `frame_sent()` after each frame, `wait_for_room()` before the next (worker only)."""

    _esm = """
    function render({ model, el }) {
      el.style.display = "none";
      const answer = () => requestAnimationFrame(() => model.send({ drawn: model.get("sent") }));
      model.on("change:sent", answer);
      return () => model.off("change:sent", answer);
    }
    export default { render };
    """
    sent = traitlets.Int(0).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout.display = "none"
        self._drawn = 0
        self._answered_at = -float("inf")
        self._answer = threading.Condition()
        self.on_msg(self._on_answer)

    def _on_answer(self, _widget: Any, content: Any, _buffers: Any) -> None:
        drawn = content.get("drawn") if isinstance(content, dict) else None
        if isinstance(drawn, int):
            with self._answer:
                self._drawn = max(self._drawn, drawn)
                self._answered_at = time.monotonic()
                self._answer.notify_all()

    @property
    def drawn(self) -> int:
        """The newest frame a page has said it drew."""
        return self._drawn

    def frame_sent(self) -> None:
        """A frame's marks have been sent."""
        self.sent += 1

    def wait_for_room(self) -> None:
        """In a worker: wait (at most WAIT_S) until at most WINDOW - 1 frames are undrawn."""
        if threading.current_thread() is threading.main_thread():
            return
        deadline = time.monotonic() + WAIT_S
        with self._answer:
            while (self.sent - self._drawn >= WINDOW
                   and time.monotonic() - self._answered_at < GONE_S):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._answer.wait(left)


__all__ = ["FrameAck", "WINDOW", "WAIT_S", "GONE_S"]
