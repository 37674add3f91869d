"""LiveRunner: run an engine in a daemon worker thread, steer it at step boundaries, draw at a bounded rate.

A notebook cell that loops blocks slider messages until it ends, so views run their engine here
instead: `play()` returns at once and a worker thread repeats one cycle,

    drain control requests -> apply(changes) -> record = step() -> publish(records) when a frame is due

Observers only call `request(name, value)` (a dict store under a tiny lock), so they never touch
the engine's tensors; the worker applies what arrived at the next step boundary. Frames go out
at most `fps` times a second, plus one more when the run pauses, finishes or stops so the final
state is drawn. The runner knows nothing about optimizers, models or widgets.

Errors never kill the worker silently: a ValueError from `apply` (a bad control value) is sent
to `on_error(message)` and the run goes on; any other exception from apply, step or publish is
sent to `on_error`, sets state "error" and pauses. The worker never prints.

Lifetime: the worker is a daemon thread holding only a weak reference to its runner, so it never
keeps the process alive, and it exits when the runner is stopped, closed or garbage collected.
Views should still call `close()` in their own `close()`: a runner whose callbacks are bound
methods of its view is only collected by the cyclic garbage collector, at some later time.
"""
from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from optiviz._validate import check_int, check_positive

STATES = ("idle", "playing", "paused", "done", "stopped", "error")


class _Done:
    """The value `step()` returns when the run is finished (raising StopIteration works too)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LiveRunner.DONE"


DONE = _Done()


class FrameClock:
    """At most `fps` frames a second on an injectable clock (tests pass a fake one).

    `due()` is true once 1/fps has passed since the last `mark()`; the first frame is due at once.
    A paced runner (one chunk per frame: the explorer, whose speed means steps per frame) instead
    waits for each tick with `wait_tick()` and publishes every chunk: one clock decides. Two clocks
    at the same rate (a pacing sleep in the step and this one deciding when to publish) beat
    against each other and drew ~12 of 20 frames a second.
    """

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] | None = None) -> None:
        self.fps = fps
        self._clock = clock
        self._last = -math.inf
        self._next = -math.inf  # the next tick of a paced run
        self._wake = threading.Event()
        self._sleep = sleep or self._wake.wait

    def wait_tick(self) -> None:
        """Block until the next tick (at once for the first, or after falling behind: ticks never
        bunch up after a slow chunk)."""
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._clock()
        following = self._next + self.interval  # on time: the grid of ticks, no drift
        self._next = following if following > now else now + self.interval  # late: one interval from now

    def restart(self) -> None:
        """The next tick is at once (after a pause the first frame should not lag)."""
        self._next = -math.inf
        self._wake.clear()

    def interrupt(self) -> None:
        """Cut a tick's sleep short (stopping should not wait for a tick)."""
        self._wake.set()

    @property
    def fps(self) -> float:
        return self._fps

    @fps.setter
    def fps(self, fps: float) -> None:
        check_positive("fps", fps)
        self._fps = float(fps)
        self.interval = 1.0 / self._fps

    def due(self) -> bool:
        return self._clock() - self._last >= self.interval

    def mark(self) -> None:
        self._last = self._clock()


class LatestRequests:
    """Control changes waiting for the next step boundary, safe from any thread: only the latest
    value per name is kept, in the order of each name's latest arrival."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._lock = threading.Lock()

    def put(self, name: str, value: Any) -> None:
        with self._lock:
            self._items.pop(name, None)
            self._items[name] = value

    def take(self) -> list[tuple[str, Any]]:
        """Everything queued, oldest first; the queue is empty afterwards."""
        with self._lock:
            items, self._items = list(self._items.items()), {}
        return items

    def put_back(self, items: list[tuple[str, Any]]) -> None:
        """Changes that were never applied go back in front of anything newer."""
        with self._lock:
            newer = self._items
            self._items = {name: value for name, value in items if name not in newer}
            self._items.update(newer)


def _wake_to_exit(play: threading.Event, stop: threading.Event) -> None:
    """Finalizer of a collected runner: let its worker leave the wait and exit."""
    stop.set()
    play.set()


def _worker(ref: weakref.ReferenceType[LiveRunner], play: threading.Event, stop: threading.Event) -> None:
    """Worker loop; holds the runner strongly only for one cycle at a time, so it can be collected."""
    try:
        while not stop.is_set():
            if not play.is_set():
                runner = ref()
                if runner is None:
                    return
                runner._rest()
                del runner
                play.wait()
                continue
            runner = ref()
            if runner is None:
                return
            if runner.paced:
                runner._frames.wait_tick()  # outside the cycle lock: requests still get in
            runner._worker_cycle()
            del runner
        runner = ref()
        if runner is not None:
            runner._rest()
    except BaseException as exc:  # SystemExit from a step, a bug of ours: say so, don't vanish
        runner = ref()
        if runner is not None:
            runner._fail("runner failed", exc)
            runner._notify()


class LiveRunner:
    """Drive `step()` from a daemon worker thread (or synchronously), apply controls between steps.

    step()            advances the engine by one chunk and returns a record, None (nothing to
                      record, still counts as progress) or LiveRunner.DONE (raising StopIteration
                      also means done: `step=lambda: next(iterator)` works).
    apply(changes)    gets a one-item dict {name: latest value} per control, in order of arrival
                      of each name's latest value, so a ValueError from one change is reported and
                      the other changes still apply. None: requests are dropped.
    publish(records)  gets the list of non-None records since the last publish (possibly empty
                      when step returned None), at most `fps` times a second while playing, and
                      once more on pause, done and stop. Records of a publish that raised are lost.
    on_error(message) gets the ValueError's text verbatim, or "<what> failed: Type: text".
    on_status(state)  gets each new state, in order (under a lock that keeps them in order).
                      Both error and status callbacks may run on any thread and must not wait for
                      the runner; step_once/run_sync/apply_pending refuse to run inside them.

    Calls to step, apply and publish never overlap: they run under one lock, in the worker or in
    the thread that called step_once / run_sync / apply_pending.
    """

    DONE = DONE

    def __init__(
        self,
        step: Callable[[], Any],
        *,
        apply: Callable[[dict[str, Any]], Any] | None = None,
        publish: Callable[[list[Any]], Any],
        on_error: Callable[[str], Any] | None = None,
        on_status: Callable[[str], Any] | None = None,
        fps: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "runner",
        paced: bool = False,
    ) -> None:
        for label, fn in (("step", step), ("publish", publish), ("apply", apply), ("on_error", on_error), ("on_status", on_status)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{label} must be callable, got {fn!r}")
        self._step = step
        self._apply = apply
        self._publish = publish
        self._on_error = on_error
        self._on_status = on_status
        self._frames = FrameClock(fps, clock)
        self.paced = bool(paced)  # one chunk per frame tick, each published (see FrameClock)
        self.name = name

        self._requests = LatestRequests()
        self._cycle_lock = threading.Lock()  # step/apply/publish never overlap
        self._cycle_owner: int | None = None  # thread id holding _cycle_lock: defers on_status
        self._state_cond = threading.Condition(threading.Lock())
        self._notify_lock = threading.RLock()
        self._play = threading.Event()
        self._stop = threading.Event()
        self._state = "idle"
        self._notified = "idle"
        self._thread: threading.Thread | None = None

        self._pending: list[Any] = []
        self._unpublished = 0  # chunks stepped since the last publish
        self.chunks = 0  # chunks stepped in total
        self.last_error: str | None = None
        self.last_exception: BaseException | None = None  # the last fatal one (step, publish, apply)
        self.callback_exception: BaseException | None = None  # on_error / on_status raised
        self._finalizer = weakref.finalize(self, _wake_to_exit, self._play, self._stop)

    # ---- public state ------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """One of "idle", "playing", "paused", "done", "stopped", "error"."""
        return self._state

    @property
    def is_running(self) -> bool:
        """True while the worker is (or is about to be) advancing the engine."""
        return self._state == "playing"

    @property
    def fps(self) -> float:
        return self._frames.fps

    @fps.setter
    def fps(self, fps: float) -> None:
        self._frames.fps = fps

    # ---- controls ----------------------------------------------------------------------------
    def request(self, name: str, value: Any) -> None:
        """Record a control change; applied at the next step boundary. Safe from any thread.

        Only the latest value per name is kept, and it takes the place of the name's latest
        arrival in the order of changes.
        """
        self._requests.put(name, value)

    def play(self) -> None:
        """Start or resume the worker (started lazily on the first call). Returns at once."""
        with self._state_cond:
            if self._state == "stopped":
                raise RuntimeError(f"{self.name} was stopped; build a new LiveRunner")
            self._ensure_thread()
            self._set_state_locked("playing")
            self._frames.restart()
            self._play.set()
        self._notify()

    def pause(self) -> None:
        """Ask the worker to stop after the current chunk; state turns "paused" once it rests.

        Use `wait()` to block until then (the final frame has been published by that time).
        """
        with self._state_cond:
            self._play.clear()
            if self._state == "playing" and not self._thread_alive():
                self._set_state_locked("paused")
        self._notify()

    def toggle(self) -> None:
        """Play when not playing, pause when playing (what a single Play/Pause button wants)."""
        if self._play.is_set():
            self.pause()
        else:
            self.play()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the runner is not playing; True if that happened within `timeout`.

        On True, what ran has been published and on_status has been told the new state.
        """
        with self._state_cond:
            rested = self._state_cond.wait_for(lambda: self._state != "playing", timeout)
        if rested:
            self._notify()  # deliver it now if the worker has not yet
        return rested

    def step_once(self) -> bool:
        """Pause, then run one cycle (requests, step, publish) in the caller's thread.

        Safe whether or not the worker runs: it waits for the worker's step boundary. Errors are
        reported like the worker's (never raised), so a Step button can call it. Returns whether
        the engine advanced (False when it is done, failed or stopped).
        """
        self._not_from_worker("step_once")
        if self._state == "stopped":
            return False
        self.pause()
        with self._cycling():
            outcome = self._cycle()
            published = self._flush()
            self._settle(outcome if published else "error")
        return outcome == "ok" and published

    def run_sync(self, chunks: int, *, publish_each: bool = False) -> int:
        """Run up to `chunks` cycles in the caller's thread, with no thread and no throttling.

        For tests, benchmarks and notebooks executed headless. publish_each=True publishes after
        every chunk, else once at the end. Stops early when step says DONE. A ValueError from
        apply goes to on_error as usual; any other exception is reported, sets state "error" and
        is re-raised. Returns the number of chunks that advanced.
        """
        chunks = check_int("chunks", chunks, 0)
        self._not_from_worker("run_sync")
        if self._state == "stopped":
            raise RuntimeError(f"{self.name} was stopped; build a new LiveRunner")
        self.pause()
        done = 0
        outcome = "ok"
        with self._cycling():
            for _ in range(chunks):
                outcome = self._cycle()
                if outcome != "ok":
                    break
                done += 1
                if publish_each and not self._flush():
                    outcome = "error"
                    break
            # what ran before a failure is still drawn (a failed publish has dropped its records)
            if not self._flush():
                outcome = "error"
            self._settle(outcome)
        if outcome == "error" and self.last_exception is not None:
            raise self.last_exception
        return done

    def apply_pending(self) -> int:
        """Apply queued requests now in the caller's thread, without stepping (e.g. while paused).

        Waits for the worker's step boundary. Returns how many changes were handed to apply.
        """
        self._not_from_worker("apply_pending")
        with self._cycling():
            return self._apply_requests()[0]

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop for good: the worker publishes what is pending and exits. True if it has exited.

        Joins the worker for up to `timeout` seconds (not when called from the worker itself);
        a step that runs longer finishes in the background, then the worker exits.
        """
        with self._state_cond:
            self._stop.set()
            self._play.set()  # wake a resting worker so it sees the stop
            self._frames.interrupt()  # and a paced one waiting for its tick
            self._set_state_locked("stopped")
        self._notify()
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def close(self) -> bool:
        """Same as stop(); what a view's close() calls."""
        return self.stop()

    def __enter__(self) -> LiveRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<LiveRunner {self.name!r} {self._state} chunks={self.chunks}>"

    # ---- the cycle (callers hold _cycle_lock) ------------------------------------------------
    @contextmanager
    def _cycling(self) -> Iterator[None]:
        """Hold the cycle lock; state changes made meanwhile reach on_status after release.

        So on_status never runs under the cycle lock, and a handler that waits for the runner
        cannot deadlock against the worker.
        """
        with self._cycle_lock:
            self._cycle_owner = threading.get_ident()
            try:
                yield
            finally:
                self._cycle_owner = None
        self._notify()

    def _apply_requests(self) -> tuple[int, bool]:
        """Hand queued changes to apply one by one; (how many, False if one failed fatally)."""
        items = self._requests.take()
        if not items or self._apply is None:
            return 0, True
        for i, (name, value) in enumerate(items):
            try:
                self._apply({name: value})
            except ValueError as exc:
                self._report(str(exc))
            except Exception as exc:
                self._requests.put_back(items[i + 1 :])
                self._flush()  # draw what ran before the failure
                self._fail(f"apply {name!r} failed", exc)
                return i + 1, False
        return len(items), True

    def _cycle(self) -> str:
        """drain -> apply -> step; returns "ok", "done" or "error"."""
        if not self._apply_requests()[1]:
            return "error"
        try:
            record = self._step()
        except StopIteration:
            record = DONE
        except Exception as exc:
            self._flush()  # draw what ran before the failure, then say so
            self._fail("step failed", exc)
            return "error"
        if record is DONE:
            return "done"
        self.chunks += 1
        self._unpublished += 1
        if record is not None:
            self._pending.append(record)
        return "ok"

    def _flush(self) -> bool:
        """Publish what accumulated since the last publish; False if publish raised."""
        if self._unpublished == 0:
            return True
        records, self._pending = self._pending, []
        self._unpublished = 0
        self._frames.mark()
        try:
            self._publish(records)
        except Exception as exc:
            self._fail("publish failed", exc)
            return False
        return True

    # ---- worker side -------------------------------------------------------------------------
    def _worker_cycle(self) -> None:
        try:
            with self._cycling():
                if not self._play.is_set() or self._stop.is_set():
                    return  # paused or stopped while waiting for the lock
                outcome = self._cycle()
                if outcome == "done":
                    self._flush()
                    self._settle("done")
                elif outcome == "ok" and (self.paced or self._frames.due()):
                    self._flush()
        except Exception as exc:  # a bug of ours: still never die silently
            self._fail("runner failed", exc)
            self._notify()

    def _rest(self) -> None:
        """Before the worker waits: publish what is pending, then say "paused"."""
        try:
            with self._cycling():
                self._flush()
        except Exception as exc:
            self._fail("runner failed", exc)
        with self._state_cond:
            if self._state == "playing" and not self._play.is_set():
                self._set_state_locked("paused")
        self._notify()

    def _settle(self, outcome: str) -> None:
        """State after a cycle run outside the worker's loop (or the worker's "done")."""
        with self._state_cond:
            if outcome == "done":
                self._play.clear()
                self._set_state_locked("done")
            elif outcome == "ok" and not self._play.is_set():
                self._set_state_locked("paused")
        self._notify()

    # ---- state, errors -----------------------------------------------------------------------
    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _ensure_thread(self) -> None:
        if self._thread_alive():
            return
        self._thread = threading.Thread(
            target=_worker,
            args=(weakref.ref(self), self._play, self._stop),
            name=f"optiviz-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def _not_from_worker(self, what: str) -> None:
        """Refuse what would deadlock: a cycle inside a cycle (step, apply, publish, callbacks)."""
        if threading.current_thread() is self._thread or self._cycle_owner == threading.get_ident():
            raise RuntimeError(f"{what}() cannot be called from inside step, apply, publish or a callback")

    def _set_state_locked(self, new: str) -> None:
        """Caller holds _state_cond. "stopped" is final."""
        if self._state != "stopped" and new != self._state:
            self._state = new
            self._state_cond.notify_all()

    def _notify(self) -> None:
        """Tell on_status about the current state, in order, once per change.

        Deferred while this thread holds the cycle lock; `_cycling` calls it again on release.
        """
        if self._on_status is None:
            self._notified = self._state
            return
        if self._cycle_owner == threading.get_ident():
            return
        with self._notify_lock:
            state = self._state
            if state == self._notified:
                return
            self._notified = state
            try:
                self._on_status(state)
            except Exception as exc:
                self.callback_exception = exc
                self._report(f"on_status failed: {type(exc).__name__}: {exc}")

    def _fail(self, what: str, exc: BaseException) -> None:
        """Pause, tell on_error, then enter "error" (so wait() returns after the report)."""
        self._play.clear()
        self.last_exception = exc
        self._report(f"{what}: {type(exc).__name__}: {exc}")
        with self._state_cond:
            self._play.clear()
            self._set_state_locked("error")
        self._notify()

    def _report(self, message: str) -> None:
        self.last_error = message
        if self._on_error is None:
            return
        try:
            self._on_error(message)
        except Exception as exc:  # nowhere left to report: keep it for inspection
            self.callback_exception = exc


__all__ = ["LiveRunner", "LatestRequests", "FrameClock", "DONE", "STATES"]
