"""Short texts for settings: a value as a person reads it, and the label of a change marker.

Plain Python (no torch, no widgets), so the explorer's and the dashboard's controllers and the
training run labels all say "lr 0.05", "betas (0.9, 0.99)", "amsgrad on" the same way.
"""
from __future__ import annotations

from typing import Any

SHORT_NAMES = {"weight_decay": "wd", "grad_noise": "noise", "clip_value": "clip", "clip_norm": "clip norm"}


def format_value(value: Any) -> str:
    """A setting's value in a few characters: floats to 3 significant digits, flags on/off."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def change_label(name: str, value: Any) -> str:
    """What a marker on the curves says: "lr 0.01", "wd 0.0005", "betas (0.9, 0.99)", "clip off"."""
    return f"{SHORT_NAMES.get(name, name)} {'off' if value is None else format_value(value)}"


__all__ = ["format_value", "change_label", "SHORT_NAMES"]
