"""Predict, then reveal: a classroom round for the explorer, as plain Python (no widgets).

The paths are hidden; the class says where each optimizer will be after N steps (a click per
optimizer) or which one arrives first (at a minimum); Reveal plays the race to step N and the
round compares: how far each guess was from where the optimizer really got, whose guess was
closest, and the order of arrival. The outcome is computed from the engine (a fresh run of the
setting by the same `build_simulator` the live race uses, so it is exactly what the race then
shows), not from what the widget drew.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optiviz._validate import check_choice, check_int
from optiviz.engine.simulator import CONVERGED

MODES = ("where", "first")  # where each optimizer is after N steps / which arrives first
MAX_ROUND_STEPS = 100_000
ARRIVAL_RADIUS = 0.02  # "arrived": within this fraction of the plot's diagonal of a minimum


@dataclass
class RoundResult:
    """What happened against what was predicted."""

    mode: str
    steps: int
    actual: dict[str, tuple[float, float]]  # where each optimizer was at step `steps`
    guesses: dict[str, tuple[float, float]]
    distance: dict[str, float]  # guess to actual, in plot units (only optimizers with a guess)
    arrival: dict[str, int | None]  # first step at a minimum (None: not within `steps`)
    order: tuple[str, ...]  # arrival order; those that never arrived last, nearest first
    pick: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def closest(self) -> tuple[str, ...]:
        """Optimizers whose position was guessed, best guess first."""
        return tuple(sorted(self.distance, key=self.distance.get))

    @property
    def pick_right(self) -> bool | None:
        """Whether the optimizer picked to arrive first did (None when nothing was picked)."""
        if self.pick is None:
            return None
        return bool(self.order) and self.order[0] == self.pick and self.arrival.get(self.pick) is not None

    def lines(self) -> list[str]:
        """The result as a lecturer reads it out, one line per optimizer."""
        out = []
        for o in self.order:
            a = self.arrival[o]
            where = f"at ({self.actual[o][0]:.2f}, {self.actual[o][1]:.2f}) after {self.steps} steps"
            arrived = f"arrived at step {a}" if a is not None else f"not arrived in {self.steps} steps"
            guess = f"; guess off by {self.distance[o]:.2f}" if o in self.distance else ""
            out.append(f"{o}: {where}, {arrived}{guess}")
        if self.pick is not None:
            out.append(f"picked {self.pick} to arrive first: {'right' if self.pick_right else 'wrong'}")
        return out


class PredictRound:
    """One round at a time on an ExplorerController. `hidden` says whether paths are to be hidden."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.active = False
        self.mode = "where"
        self.steps = 100
        self.guesses: dict[str, tuple[float, float]] = {}
        self.pick: str | None = None
        self.result: RoundResult | None = None

    @property
    def hidden(self) -> bool:
        """Trajectories are hidden while the class predicts (a round begun, not yet revealed)."""
        return self.active and self.result is None

    @property
    def target(self) -> str | None:
        """The optimizer the next click places: the first without a guess (None when all have one)."""
        return next((o for o in self.controller.optimizers if o not in self.guesses), None)

    def begin(self, steps: int = 100, mode: str = "where") -> None:
        """Start a round: the race back at its start, paused, its paths hidden; guesses cleared."""
        self.steps = check_int("steps", steps, 1, MAX_ROUND_STEPS)
        self.mode = check_choice("mode", mode, MODES)
        c = self.controller
        c.pause()
        c.request("reset")
        self.active, self.guesses, self.pick, self.result = True, {}, None, None
        c.request("redraw")

    def place(self, x: float, y: float, optimizer: str | None = None) -> str | None:
        """A guess of where `optimizer` (default: `target`) will be after `steps` steps; returns its name.
        Clicking again once every optimizer has a guess moves the first one's."""
        self._check_open()
        names = self.controller.optimizers
        name = optimizer or self.target or names[0]
        name = check_choice("optimizer", name, names)
        if not (math.isfinite(float(x)) and math.isfinite(float(y))):
            raise ValueError(f"a guess must be a finite point, got ({x}, {y})")
        if optimizer is None and self.target is None:  # all placed: start over with the first
            self.guesses = {}
        self.guesses[name] = (float(x), float(y))
        self.controller.request("redraw")
        return name

    def choose(self, optimizer: str) -> None:
        """The class's pick of which optimizer arrives first."""
        self._check_open()
        self.pick = check_choice("optimizer", optimizer, self.controller.optimizers)
        self.controller.request("redraw")

    def outcome(self) -> RoundResult:
        """What the race will do in `steps` steps, from a fresh run of its setting (the live run untouched)."""
        c = self.controller
        run = c.fresh_simulator().run(self.steps)
        path = run.path  # (K, steps + 1, 2)
        actual = {o: (float(path[k, -1, 0]), float(path[k, -1, 1])) for k, o in enumerate(c.optimizers)}
        arrival = _arrivals(c.surface, c.optimizers, path, run)
        guesses = {o: g for o, g in self.guesses.items() if o in actual}  # an optimizer unticked mid-round
        distance = {o: float(np.hypot(*np.subtract(g, actual[o]))) for o, g in guesses.items()}
        far = {o: _to_minimum(c.surface, path[k, -1]) for k, o in enumerate(c.optimizers)}
        order = tuple(sorted(c.optimizers, key=lambda o: (arrival[o] is None, arrival[o] or 0, far[o])))
        pick = self.pick if self.pick in actual else None
        return RoundResult(self.mode, self.steps, actual, guesses, distance, arrival, order, pick)

    def reveal(self, sync: bool = False) -> RoundResult:
        """Show what happened: the outcome now, and the race played from its start to step `steps`
        (in the worker, paced as Play; sync=True steps it in this thread, for scripts and tests)."""
        self._check_open(allow_revealed=True)
        result = self.outcome()
        c = self.controller
        c.pause()
        c.request("reset")
        self.result = result
        c.request("redraw")
        if sync:
            c.step(self.steps)
        else:
            c.play(until=self.steps)
        return result

    def end(self) -> None:
        """Leave classroom mode: paths shown, guesses gone."""
        self.active, self.guesses, self.pick, self.result = False, {}, None, None
        self.controller.request("redraw")

    def _check_open(self, allow_revealed: bool = False) -> None:
        if not self.active:
            raise ValueError("no round is open: begin(steps, mode) first")
        if self.result is not None and not allow_revealed:
            raise ValueError("this round is revealed: begin a new one")


def _to_minimum(surface: Any, xy: np.ndarray) -> float:
    if not surface.minima:
        return 0.0
    return float(np.min(np.hypot(*(np.asarray(surface.minima, float) - xy).T)))


def _arrivals(surface: Any, optimizers: tuple[str, ...], path: np.ndarray, run: Any) -> dict[str, int | None]:
    """First step within ARRIVAL_RADIUS of the plot's diagonal of a known minimum; on a surface
    without known minima, the step the engine says it converged."""
    out: dict[str, int | None] = {}
    if surface.minima:
        (x0, x1), (y0, y1) = surface.domain
        radius = ARRIVAL_RADIUS * math.hypot(x1 - x0, y1 - y0)
        m = np.asarray(surface.minima, dtype=float)  # (M, 2)
        for k, o in enumerate(optimizers):
            d = np.min(np.linalg.norm(path[k][:, None, :] - m[None], axis=-1), axis=1)
            hit = np.nonzero(d <= radius)[0]
            out[o] = int(hit[0]) if hit.size else None
        return out
    status, conv = np.atleast_1d(run.status), np.atleast_1d(run.converged_at)
    for k, o in enumerate(optimizers):
        out[o] = int(conv[k]) if status[k] == "converged" or status[k] == CONVERGED else None
    return out


__all__ = ["PredictRound", "RoundResult", "MODES", "ARRIVAL_RADIUS"]
