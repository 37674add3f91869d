"""The export extra's libraries, imported on first use with an error that names the extra."""
from __future__ import annotations

import importlib
from types import ModuleType

EXTRA = 'pip install "optiviz[export]"'


def require(module: str, feature: str) -> ModuleType:
    """Import `module` or raise ImportError saying which feature needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{feature} needs {module.split('.')[0]}, part of the optional export extra: "
                          f"{EXTRA}") from exc


def figure(width_px: int, height_px: int, dpi: int = 96):  # -> matplotlib.figure.Figure
    """A standalone Agg figure (not registered with pyplot, so nothing leaks between exports)."""
    require("matplotlib", "drawing a picture")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str, fmt: str | None = None) -> str:
    """Write a figure as PNG or SVG (from `fmt`, else the path's suffix); returns the path."""
    kind = (fmt or str(path).rpartition(".")[2]).lower()
    if kind not in ("png", "svg"):
        raise ValueError(f"format must be png or svg (from fmt or the file's suffix), got {kind!r}")
    fig.savefig(path, format=kind, dpi=fig.dpi, facecolor="white")
    return str(path)
