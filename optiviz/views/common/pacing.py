"""Pace a live run to the frame rate: one chunk of `speed` steps per frame.

LiveRunner bounds how often frames are drawn but steps as fast as it can, which is right for
training and wrong for a 2D race that finishes in milliseconds: the explorer's speed control
means "steps per frame", so its worker sleeps until the next frame is due before each chunk.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from optiviz._validate import check_positive


class Pacer:
    """Sleep until the next tick of a `fps` clock; never bunch up ticks after a slow chunk."""

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.interval = 1.0 / float(check_positive("fps", fps))  # fps=0 is refused by name
        self._clock = clock
        self._wake = threading.Event()
        self._sleep = sleep or (lambda s: self._wake.wait(s))
        self._next = -float("inf")

    def wait(self) -> None:
        """Block until the next tick (at once for the first one or after falling behind)."""
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._clock()
        self._next = max(now, self._next + self.interval) if self._next > -float("inf") else now + self.interval

    def reset(self) -> None:
        """The next wait returns at once (after a pause the first frame should not lag)."""
        self._next = -float("inf")

    def interrupt(self) -> None:
        """Cut a sleep short (closing the view should not wait for a tick)."""
        self._wake.set()
