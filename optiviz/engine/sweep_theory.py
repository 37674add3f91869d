"""The theory drawn on a stability map: predicted rate per cell, the analytic edge, the optimum.

Only where it is exact: a surface with constant curvatures (the quadratics), SGD, momentum or
Nesterov (linear iterations there), axes among lr, momentum and weight_decay, and nothing that
the iteration matrix does not describe (gradient noise, clipping, schedules, dampening).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiviz.engine.hparams import HPARAMS
from optiviz.engine.rates import LINEAR_OPTIMIZERS, optimal_setting, predicted_rate, stability_edge
from optiviz.engine.surface import Surface

THEORY_AXES = ("lr", "momentum", "weight_decay")
# fixed settings under which the theory no longer holds, with the value that keeps it
_NEUTRAL = {"grad_noise": 0.0, "dampening": 0.0, "transforms": None, "schedule": None, "noise_seed": None}


@dataclass(frozen=True)
class MapTheory:
    """Arrays are in axis values (not plot coordinates); `predicted` is (ny, nx) like the map."""

    curvatures: tuple[float, ...]
    predicted: np.ndarray  # the theory's rate per cell: < 1 converges
    edge_x: np.ndarray  # the largest lr that converges, as a line over the other axis (empty: no lr axis)
    edge_y: np.ndarray
    best_x: np.ndarray  # the fastest setting: a point (momentum, nesterov) or a line of best lrs (sgd)
    best_y: np.ndarray
    best: dict[str, float] | None  # lr, momentum and rate of the optimum when it is one point
    note: str  # one line a view can show


def map_theory(surface: Surface, optimizer: str, x_name: str, x_values: np.ndarray, y_name: str,
               y_values: np.ndarray, fixed: Mapping[str, Any]) -> MapTheory | None:
    """The map's theory, or None where the theory does not describe these runs exactly."""
    if surface.curvatures is None or optimizer not in LINEAR_OPTIMIZERS:
        return None
    if x_name not in THEORY_AXES or y_name not in THEORY_AXES:
        return None
    if any(k in fixed and fixed[k] not in (v, 0, None) for k, v in _NEUTRAL.items()):
        return None
    curv = tuple(float(c) for c in surface.curvatures)
    gx, gy = np.meshgrid(np.asarray(x_values, float), np.asarray(y_values, float))
    spec = HPARAMS[optimizer]

    def grid(name: str) -> np.ndarray:
        if name == x_name:
            return gx
        if name == y_name:
            return gy
        if name in fixed:
            return np.full(gx.shape, float(fixed[name]))
        return np.full(gx.shape, float(spec[name].default) if name in spec else 0.0)

    lr, mom, wd = grid("lr"), grid("momentum"), grid("weight_decay")
    if optimizer == "sgd":
        mom = np.zeros_like(mom)
    predicted = predicted_rate(optimizer, curv, lr, mom, weight_decay=wd)
    edge_x = edge_y = best_x = best_y = np.zeros(0)
    best = None
    other = y_name if x_name == "lr" else x_name if y_name == "lr" else None
    if other is not None:
        along = np.asarray(y_values if x_name == "lr" else x_values, float)
        m = along if other == "momentum" else np.full(along.shape, float(grid("momentum").flat[0]))
        w = along if other == "weight_decay" else np.full(along.shape, float(grid("weight_decay").flat[0]))
        if optimizer == "sgd":
            m = np.zeros_like(m)
        edge = stability_edge(optimizer, curv, m, weight_decay=w)
        edge_x, edge_y = (edge, along) if x_name == "lr" else (along, edge)
        if optimizer == "sgd":
            line = np.array([optimal_setting("sgd", curv, weight_decay=b)["lr"] for b in w])
            best_x, best_y = (line, along) if x_name == "lr" else (along, line)
    if optimizer != "sgd" and {x_name, y_name} == {"lr", "momentum"}:
        best = optimal_setting(optimizer, curv, weight_decay=float(wd.flat[0]))
        best_x = np.array([best["lr" if x_name == "lr" else "momentum"]])
        best_y = np.array([best["momentum" if x_name == "lr" else "lr"]])
    note = _note(optimizer, curv, best)
    return MapTheory(curv, predicted, edge_x, edge_y, best_x, best_y, best, note)


def _note(optimizer: str, curv: tuple[float, ...], best: dict[str, float] | None) -> str:
    big, small = max(curv), min(curv)
    edge = {"sgd": f"lr < 2/{big:g}", "momentum": f"lr < 2(1+β)/{big:g}",
            "nesterov": f"lr < 2(1+β)/((1+2β)·{big:g})"}[optimizer]
    text = f"quadratic, curvatures {small:g} and {big:g}: converges iff {edge}"
    if optimizer == "sgd":
        text += f"; fastest lr = 2/({big:g}+{small:g}) = {2 / (big + small):.4g}"
    if best is not None:
        text += f"; fastest lr = {best['lr']:.4g}, β = {best['momentum']:.3g}, rate {best['rate']:.3f}"
    return text


__all__ = ["MapTheory", "map_theory", "THEORY_AXES"]
