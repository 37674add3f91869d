"""`save_png` / `save_svg` for every view: a view says how to draw a panel from its records
(`picture(panel)`, a matplotlib Figure from optiviz.export), this writes it. Plain Python, no widgets."""
from __future__ import annotations

from typing import Any


class SavesPictures:
    """Mixin of views whose panels can be saved as pictures; `PANELS` names them, the first is the default."""

    PANELS: tuple[str, ...] = ()

    def picture(self, panel: str) -> Any:  # -> matplotlib.figure.Figure
        raise NotImplementedError

    def save_png(self, path: str, panel: str | None = None) -> str:
        """The panel (see PANELS) as a PNG, drawn headless from the view's records; returns the path."""
        return self._save(path, panel, "png")

    def save_svg(self, path: str, panel: str | None = None) -> str:
        """The panel (see PANELS) as an SVG, drawn headless from the view's records; returns the path."""
        return self._save(path, panel, "svg")

    def _save(self, path: str, panel: str | None, fmt: str) -> str:
        from optiviz._validate import check_choice
        from optiviz.export.deps import save_figure

        name = self.PANELS[0] if panel is None else check_choice("panel", panel, self.PANELS)
        return save_figure(self.picture(name), path, fmt)


__all__ = ["SavesPictures"]
