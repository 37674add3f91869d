"""FrameAck: the page says which frame it has applied, so a live view never runs ahead of it.

A worker thread can send frames faster than a loaded browser draws them; the websocket then queues
them, and the page falls seconds behind the run (a slider's change showed 9 s late, at 3 frames
drawn a second, on a loaded 2-core machine). After each frame the view bumps `sent`, an integer
widget that a front-end link (`jsdlink`, in the page, not the kernel) copies into `drawn`, which the
page then sends back: messages are applied in order, so when `drawn` reaches n every mark of frame
n has been applied. Built-in widgets only: no front-end extension to install (a custom widget's
extension broke Voila's module loading).

Only every ACK_EVERY-th frame asks for an answer: each answer is a message to the kernel, which
then reports busy and idle, and JupyterLab redraws its toolbar's kernel indicator and swaps the tab's
favicon (a fetch and an image decode) for each: at one answer a frame, a 4 s trace of a playing
explorer held 133 favicon fetches; at one every 8th (5 a second at 40 frames a second) the page still
drew fewer frames than at one every 16th (paired Chromium runs of 6 optimizers from step 3,000: 25-31
drawn/s against 33-34). The worker stays within WINDOW frames of the newest answered one: 0.8 s of
the explorer's frames at its default 40 a second.

No front end, no wait: until a page has answered once (a script, nbclient), or once none has
answered for `GONE_S` (the tab was closed), frames go out at the run's own rate. The caller's
thread never waits (`.step(n)` runs in the kernel's main thread, which is the one that reads the
answers).
"""
from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as widgets

from optiviz.views.common.widget_tree import close_tree

ACK_EVERY = 16  # frames per answer asked of the page
WINDOW = 32  # frames in flight past the newest answered one (> ACK_EVERY, else it would wait for each answer)
WAIT_S = 0.5  # longest wait for one answer
GONE_S = 2.0  # no answer for this long: no page is drawing


class FrameAck:
    """`frame_sent()` after each frame, `wait_for_room()` before the next (waits in a worker only)."""

    def __init__(self) -> None:
        self._sent = widgets.IntText(0)
        self._answers = widgets.IntText(0)
        self._link = widgets.jsdlink((self._sent, "value"), (self._answers, "value"))
        self._frames = 0
        self._drawn = 0
        self._answered_at = -float("inf")
        self._answer = threading.Condition()
        self._answers.observe(self._on_answer, "value")

    def _on_answer(self, change: dict[str, Any]) -> None:
        drawn = change.get("new")
        if isinstance(drawn, int) and not isinstance(drawn, bool):
            with self._answer:
                self._drawn = max(self._drawn, min(drawn, self._sent.value))
                self._answered_at = time.monotonic()
                self._answer.notify_all()

    @property
    def sent(self) -> int:
        """Frames sent so far (the page is asked to answer every ACK_EVERY-th)."""
        return self._frames

    @property
    def drawn(self) -> int:
        """The newest frame a page has said it applied."""
        return self._drawn

    def frame_sent(self) -> None:
        """A frame's marks have been sent."""
        self._frames += 1
        if self._frames - self._sent.value >= ACK_EVERY:
            self._sent.value = self._frames

    def wait_for_room(self) -> None:
        """In a worker: wait (at most WAIT_S) until at most WINDOW - 1 frames are unanswered."""
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

    def close(self) -> None:
        for w in (self._link, self._sent, self._answers):
            close_tree(w)  # the IntTexts' Layouts and Styles too


__all__ = ["FrameAck", "ACK_EVERY", "WINDOW", "WAIT_S", "GONE_S"]
