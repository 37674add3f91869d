"""FrameAck: a live view's worker stays within WINDOW frames of what a page says it applied, and never
waits when no page answers (scripts, nbclient) or in the caller's thread."""
from __future__ import annotations

import threading
import time

from optiviz.views.common import frame_ack
from optiviz.views.common.frame_ack import FrameAck


def _in_worker(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("s", (time.monotonic(), fn(), time.monotonic())))
    t.start()
    t.join(5)
    start, _, end = out["s"]
    return end - start


def test_no_page_no_wait():
    ack = FrameAck()
    for _ in range(5):
        ack.frame_sent()
    assert _in_worker(ack.wait_for_room) < 0.15  # nothing ever answered: frames go out at the run's rate
    ack.close()


def test_a_page_that_answers_holds_the_worker_within_the_window(monkeypatch):
    monkeypatch.setattr(frame_ack, "WAIT_S", 0.6)
    every, window = frame_ack.ACK_EVERY, frame_ack.WINDOW
    assert 1 < every < window  # else the worker would wait for each answer, or never be held
    ack = FrameAck()
    asked = []
    ack._sent.observe(lambda c: asked.append(c["new"]), "value")
    for _ in range(2 * every + 1):
        ack.frame_sent()
    assert asked == [every, 2 * every]  # only every ACK_EVERY-th frame asks the page to answer
    ack._answers.value = every  # the page drew frame `every`
    assert ack.sent - ack.drawn == every + 1 < window
    assert _in_worker(ack.wait_for_room) < 0.15  # room for the next
    while ack.sent - ack.drawn < window:
        ack.frame_sent()
    assert 0.55 < _in_worker(ack.wait_for_room) < 1.5  # a window in flight: waits, at most WAIT_S
    timer = threading.Timer(0.1, lambda: setattr(ack._answers, "value", ack._sent.value))
    timer.start()
    assert 0.08 < _in_worker(ack.wait_for_room) < 0.5  # goes on when the answer comes, not at WAIT_S
    ack._answers.value = 10 ** 6  # an answer past what was asked counts as what was asked
    assert ack.drawn == ack._sent.value
    ack.close()


def test_the_callers_thread_and_a_closed_page_never_wait(monkeypatch):
    monkeypatch.setattr(frame_ack, "GONE_S", 0.2)
    ack = FrameAck()
    ack._on_answer({"new": 0})
    for _ in range(3):
        ack.frame_sent()
    t0 = time.monotonic()
    ack.wait_for_room()  # the main thread reads the answers: it must not block on them
    assert time.monotonic() - t0 < 0.15
    time.sleep(0.25)  # no answer for GONE_S: the tab is gone
    assert _in_worker(ack.wait_for_room) < 0.15
    ack._on_answer({"new": "x"})  # a malformed answer is ignored
    assert ack.drawn == 0
    ack.close()

