"""The map views' computed map as a PNG or SVG, drawn headless from the map's record (no widgets)."""
from __future__ import annotations

from typing import Any

from optiviz.export import panels
from optiviz.views.common.pictures import SavesPictures


class MapExports(SavesPictures):
    """Mixin of StabilityMapView and BasinMapView: the computed map (`self.result`) as a picture."""

    PANELS = ("map",)

    def picture(self, panel: str) -> Any:
        from optiviz.engine.sweeps import StabilityMap

        result = self.result
        if result is None:
            raise ValueError("nothing to save yet: compute the map first (Compute, or compute_sync())")
        if isinstance(result, StabilityMap):
            return panels.stability_map_figure(result)
        return panels.basin_map_figure(result)


__all__ = ["MapExports"]
