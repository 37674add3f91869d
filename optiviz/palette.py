"""Colours and colour scales every optiviz picture shares, live or exported (no widget library).

The live views (views/common/theme.py) and the headless exports (optiviz/export) draw with the same
colour per optimizer and the same log-scaled surface colours and contour levels, from here.
"""
from __future__ import annotations

import numpy as np

# Okabe-Ito based: distinguishable with common colour-vision deficiencies, dark enough on the pale map.
OPTIMIZER_COLORS: dict[str, str] = {
    "sgd": "#D55E00",
    "momentum": "#0072B2",
    "nesterov": "#009E73",
    "adagrad": "#E69F00",
    "rmsprop": "#CC79A7",
    "adam": "#6A3D9A",
}
# For lines that are not one optimizer each (an unknown name, compared runs of one optimizer).
FALLBACK_COLORS = ("#000000", "#56B4E9", "#8C510A", "#01665E", "#E69F00", "#999999")

# Pale grey-blue ramp: low loss is white so trajectories in saturated colours stand out.
SURFACE_SCHEME: tuple[str, ...] = ("#ffffff", "#eef1f5", "#d3dae4", "#aab5c4", "#7a8799")
CONTOUR_COLOR = "#4a5568"
MINIMUM_COLOR = "#111111"

def fallback_color(index: int) -> str:
    """The index-th colour for a line that has no optimizer colour of its own (cycles)."""
    return FALLBACK_COLORS[index % len(FALLBACK_COLORS)]


def optimizer_color(name: str, index: int = 0) -> str:
    """The one colour an optimizer has in every view (else `fallback_color(index)`)."""
    return OPTIMIZER_COLORS.get(name) or fallback_color(index)



def surface_colors(z: np.ndarray, f_ref: float, log: bool = True) -> np.ndarray:
    """Colour values for a heatmap: log10(f - f_ref) so valleys read; finite float32 always.

    The top is capped at the 98th percentile so a few huge corner values (Rosenbrock, cliffs) do
    not wash the whole map into one colour.
    """
    z = np.asarray(z, dtype=np.float64)
    finite = np.isfinite(z)
    if not finite.any():
        return np.zeros(z.shape, dtype=np.float32)
    excess = np.where(finite, z - f_ref, np.nan)
    if log:
        positive = excess[np.isfinite(excess) & (excess > 0)]
        top = float(np.percentile(positive, 98)) if positive.size else 1.0
        floor = max(top * 1e-6, np.finfo(np.float32).tiny)
        c = np.log10(np.clip(np.nan_to_num(excess, nan=top, posinf=top), floor, top))
    else:
        vals = excess[np.isfinite(excess)]
        lo, hi = float(np.min(vals)), float(np.percentile(vals, 98))
        c = np.clip(np.nan_to_num(excess, nan=hi, posinf=hi, neginf=lo), lo, hi)
    return c.astype(np.float32)


def contour_levels(z: np.ndarray, f_ref: float, n: int = 14, log: bool = True) -> np.ndarray:
    """Levels evenly spaced in log(f - f_ref) (or in f) over the map's visible range."""
    z = np.asarray(z, dtype=np.float64)
    excess = (z - f_ref)[np.isfinite(z)]
    if log:
        positive = excess[excess > 0]
        if positive.size == 0:
            return np.array([], dtype=np.float64)
        lo, hi = np.percentile(positive, [0.5, 95])
        if not hi > lo:
            return np.array([f_ref + hi])
        return f_ref + np.geomspace(lo, hi, n)
    if excess.size == 0:
        return np.array([], dtype=np.float64)
    lo, hi = np.percentile(excess, [1, 95])
    return f_ref + np.linspace(lo, hi, n + 2)[1:-1]


def format_loss(value: float) -> str:
    """Losses span many decades: three significant digits, scientific when small or large."""
    if not np.isfinite(value):
        return "—"
    a = abs(value)
    if a != 0 and (a < 1e-3 or a >= 1e4):
        return f"{value:.2e}"
    return f"{value:.4g}"
