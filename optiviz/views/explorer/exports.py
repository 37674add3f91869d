"""The explorer's race for slides and other tools: GIF, MP4, PNG/SVG, CSV/JSON, TensorBoard.

Plain Python (no widgets). A race comes from the engine's records: `steps=None` is what the live
race has drawn so far (its RaceSeries, fed by the simulator's SimRecords, mid-run changes
included); `steps=N` is the current setting run afresh from its start for N steps by the same
`build_simulator` the live run uses (the live run is untouched).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from optiviz._validate import check_int
from optiviz.export import race as race_export
from optiviz.export import records
from optiviz.export.race import ExportTiming, RaceTrack
from optiviz.views.common.pictures import SavesPictures
from optiviz.views.explorer.race import RaceSeries

MAX_EXPORT_STEPS = 1_000_000


def drawn_track(race: RaceSeries, surface: Any, labels: dict[str, str]) -> RaceTrack:
    """The race as drawn so far: every recorded step (exact up to HISTORY_ROWS, then decimated as
    the live view's history is); a row that stopped early (diverged) holds its last point."""
    steps = np.unique(np.concatenate([_arrays(race, "path", o)[0] for o in race.optimizers]))
    path = np.empty((len(race.optimizers), len(steps), 2))
    loss = np.empty((len(race.optimizers), len(steps)))
    for k, o in enumerate(race.optimizers):
        s, xy = _arrays(race, "path", o)
        ls, lv = _arrays(race, "loss", o)
        idx = np.clip(np.searchsorted(s, steps, side="right") - 1, 0, len(s) - 1)
        path[k] = xy[idx]
        lidx = np.clip(np.searchsorted(ls, steps, side="right") - 1, 0, len(ls) - 1)
        loss[k] = lv[lidx] + (race.f_ref if race.loss_log else 0.0)  # the buffer holds loss - f* on a log axis
    return race_export.track_of(surface, race.optimizers, steps, path, loss, labels, race.statuses)


def _arrays(race: RaceSeries, kind: str, optimizer: str) -> tuple[np.ndarray, np.ndarray]:
    buf = race.buffers[kind][optimizer]
    steps, values = buf.arrays()
    last_step, last = buf.last
    if not len(steps) or steps[-1] < last_step:  # the newest sample may be held aside
        steps, values = np.append(steps, last_step), np.concatenate([values, np.asarray(last)[None]])
    return steps, values


class RaceExports(SavesPictures):
    """Mixin of SurfaceExplorer: needs `self.controller` (an ExplorerController)."""

    PANELS = ("race", "surface")  # race: surface and loss side by side; surface: the surface alone

    def race_track(self, steps: int | None = None) -> RaceTrack:
        """The race as records: drawn so far (steps=None) or the current setting for `steps` steps."""
        c = self.controller
        labels = {o: race_export.hparam_label(c.config.hparams[o]) for o in c.optimizers}
        if steps is None:
            return drawn_track(c.race, c.surface, labels)
        run = c.fresh_simulator().run(check_int("steps", steps, 1, MAX_EXPORT_STEPS))
        track = RaceTrack.from_run(run)
        track.labels = labels
        return track

    def save_gif(self, path: str, steps: int | None = None, *, frames: int = 60, fps: float = 15.0,
                 hold: float = 2.0, with_loss: bool = True) -> ExportTiming:
        """The race as an animated GIF for slides (headless): `frames` frames of the paths growing,
        the last held `hold` s. steps=None: the race drawn so far; else the setting run for `steps`."""
        return race_export.save_race_gif(self.race_track(steps), path, frames=frames, fps=fps, hold=hold,
                                         with_loss=with_loss)

    def save_mp4(self, path: str, steps: int | None = None, *, frames: int = 120, fps: float = 30.0,
                 hold: float = 2.0, with_loss: bool = True) -> ExportTiming:
        """The race as an H.264 MP4 (headless, imageio's ffmpeg); arguments as save_gif's."""
        return race_export.save_race_mp4(self.race_track(steps), path, frames=frames, fps=fps, hold=hold,
                                         with_loss=with_loss)

    def picture(self, panel: str) -> Any:
        rf = race_export.RaceFigure(self.race_track(), with_loss=panel == "race")
        rf.draw(float(rf.track.steps[-1]))
        rf.finish()
        return rf.fig

    def save_records(self, path: str, steps: int | None = None) -> str:
        """The race's records (optimizer, step, x, y, loss) as .csv or .json (with each optimizer's settings)."""
        track = self.race_track(steps)
        return records.write_rows(records.race_rows(track), path, records.track_meta(track))

    def save_tensorboard(self, logdir: str, steps: int | None = None) -> list[str]:
        """The race as TensorBoard event files, one folder per optimizer; returns the folders."""
        from optiviz.export.tensorboard import write_race_events

        return write_race_events(self.race_track(steps), logdir)


__all__ = ["RaceExports", "drawn_track", "MAX_EXPORT_STEPS"]
