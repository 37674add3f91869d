"""The map and search views' constructor arguments, checked before a widget is built.

A slider or dropdown given a value outside its range either raises a TraitError (a dropdown) or
quietly moves it to the nearest end (an IntSlider: resolution=0 became 8, steps=-1 became 20).
These checks refuse such a value instead, with a ValueError/TypeError naming the argument and its
range, and the views build their sliders from the same ranges.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from optiviz._validate import check_choice, check_int, shown
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.preflight import optimizer_names
from optiviz.engine.surfaces import SURFACES
from optiviz.engine.sweeps import axis_names

GRID = (8, 200)  # the grid slider: cells a side
STABILITY_STEPS = (20, 2000)
BASIN_STEPS = (20, 3000)
BUDGET = (4, 512)  # the search view's budget slider, run-epochs per search


def check_stability_args(surface: Any, optimizer: Any, x: Any, y: Any, resolution: Any, steps: Any, every: Any,
                         colour: Any, colours: Iterable[str]) -> dict[str, Any]:
    """StabilityMapView's arguments, checked; returns them as the widgets take them."""
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    names = axis_names(optimizer)
    x, y = check_choice("x", x, names), check_choice("y", y, names)
    if x == y:
        raise ValueError(f"x and y must be two different hyperparameters, both are {x!r}; allowed: {', '.join(names)}")
    return dict(surface=check_choice("surface", surface, SURFACES), optimizer=optimizer, x=x, y=y,
                resolution=check_int("resolution", resolution, *GRID), steps=check_int("steps", steps, *STABILITY_STEPS),
                every=check_int("every", every, 1), colour=check_choice("colour", colour, colours))


def check_basin_args(surface: Any, optimizers: Any, resolution: Any, steps: Any, every: Any) -> dict[str, Any]:
    """BasinMapView's arguments, checked; returns them as the widgets take them."""
    names = tuple(check_choice("optimizer", o, OPTIMIZERS) for o in optimizer_names(optimizers))
    if not names:
        raise ValueError(f"optimizers must name at least one of {', '.join(OPTIMIZERS)}")
    return dict(surface=check_choice("surface", surface, SURFACES), optimizers=names,
                resolution=check_int("resolution", resolution, *GRID), steps=check_int("steps", steps, *BASIN_STEPS),
                every=check_int("every", every, 1))


def check_search_args(budget: Any, space: Mapping[str, Any], x: Any, y: Any) -> tuple[int, str, str]:
    """SearchView's budget and axes: x and y name hyperparameters of `space` (searched or fixed; the
    space's values are checked when it runs). None: lr and weight_decay where the space has them, else
    its first names (a space of one name is drawn on the diagonal). Returns (budget, x, y)."""
    budget = check_int("budget", budget, *BUDGET)
    names = [n for n in space if isinstance(n, str)]
    for label, name in (("x", x), ("y", y)):
        if name is not None and name not in names:
            raise ValueError(f"{label} must name a hyperparameter of the space ({', '.join(names)}), got {shown(name)}")
    if x is not None and x == y:
        raise ValueError(f"x and y must be two different hyperparameters, both are {x!r}")
    if x is None:
        x = "lr" if "lr" in names and y != "lr" else next((n for n in names if n != y), y)
    if y is None:
        y = "weight_decay" if "weight_decay" in names and x != "weight_decay" else next((n for n in names if n != x), x)
    return budget, x, y


__all__ = ["GRID", "STABILITY_STEPS", "BASIN_STEPS", "BUDGET", "check_stability_args", "check_basin_args",
           "check_search_args"]
