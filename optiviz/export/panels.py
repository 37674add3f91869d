"""Still pictures of the other panels, from their records: curves (a dashboard's loss, accuracy,
lr), a stability map, a basin map. Each returns a matplotlib Figure; `deps.save_figure` writes it."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from optiviz.export.deps import figure
from optiviz.palette import MINIMUM_COLOR, fallback_color


def curves_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str, ylabel: str,
                  log: bool = False, colors: Mapping[str, str] | None = None):
    """One line per label: (steps, values)."""
    fig = figure(768, 480)
    ax = fig.subplots()
    for i, (label, (x, y)) in enumerate(curves.items()):
        ax.plot(np.asarray(x), np.asarray(y), "-", linewidth=2, label=label,
                color=(colors or {}).get(label, fallback_color(i)))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def stability_map_figure(smap):  # StabilityMap -> Figure
    """The map's measured convergence rate per cell (diverged cells dark), on its axes' scales."""
    fig = figure(768, 640)
    ax = fig.subplots()
    rate = np.where(smap.diverged, np.nan, smap.rate)
    mesh = ax.pcolormesh(smap.x.values, smap.y.values, np.ma.masked_invalid(rate), shading="nearest",
                         cmap="viridis_r", vmin=0.0, vmax=1.0)
    ax.set_facecolor("#3b0f0f")  # diverged / NaN cells
    for axis, setter in ((smap.x, ax.set_xscale), (smap.y, ax.set_yscale)):
        setter("log" if axis.scale == "log" else "linear")
    ax.set_xlabel(smap.x.name)
    ax.set_ylabel(smap.y.name)
    ax.set_title(f"{smap.optimizer} on {smap.surface.title}: rate per step (dark: diverged)")
    fig.colorbar(mesh, ax=ax, label="convergence rate (lower is faster)")
    fig.tight_layout()
    return fig


def basin_map_figure(bmap):  # BasinMap -> Figure
    """Per optimizer, which minimum each start point ends in (grey: unsettled, dark: diverged)."""
    k = len(bmap.optimizers)
    fig = figure(384 * k, 416)
    axes = np.atleast_1d(fig.subplots(1, k))
    m = len(bmap.minima)
    palette = [fallback_color(i + 1) for i in range(max(m, 1))]
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(["#3b0f0f", "#bbbbbb", *palette])
    for ax, name, labels in zip(axes, bmap.optimizers, bmap.labels):
        ax.pcolormesh(bmap.xs, bmap.ys, labels + 2, shading="nearest", cmap=cmap, vmin=-0.5, vmax=m + 1.5)
        ax.plot(bmap.minima[:, 0], bmap.minima[:, 1], "*", color=MINIMUM_COLOR, markersize=12)
        ax.set_title(name)
        ax.set_xlabel("x start")
    axes[0].set_ylabel("y start")
    fig.suptitle(f"basins of attraction on {bmap.surface.title}")
    fig.tight_layout()
    return fig


__all__ = ["curves_figure", "stability_map_figure", "basin_map_figure"]
