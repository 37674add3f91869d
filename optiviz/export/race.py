"""The race on a surface as a picture or a movie, for slides: heatmap, contours, paths growing, legend.

Drawn headless with matplotlib (Agg) from a `RaceTrack`, the record of a race: a `Run` from
`ov.simulate` / `Simulator.run`, or what a live explorer has drawn (`RaceSeries.track()`). Frames
are encoded with Pillow (GIF) or imageio's ffmpeg (MP4).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optiviz._validate import check_int, check_range
from optiviz.engine.surface import Surface
from optiviz.export.deps import figure, require, save_figure
from optiviz.labels import format_value
from optiviz.palette import CONTOUR_COLOR, MINIMUM_COLOR, SURFACE_SCHEME, contour_levels, optimizer_color, surface_colors
from optiviz.stream.series import even_indices

WIDTH_PX, HEIGHT_PX = 1152, 576  # 16:8, both multiples of 16 (what H.264 encoders want)
MAX_FRAMES = 2000


@dataclass
class RaceTrack:
    """A race as records: per optimizer the point and loss at each recorded step (rows of one
    optimizer that diverged repeat their last finite point, as the engine freezes them)."""

    surface: Surface
    optimizers: tuple[str, ...]
    steps: np.ndarray  # (T,) step of each row, 0 = the start
    path: np.ndarray  # (K, T, 2)
    loss: np.ndarray  # (K, T)
    labels: dict[str, str] = field(default_factory=dict)  # legend text per optimizer (e.g. its lr)
    status: dict[str, str] = field(default_factory=dict)  # "converged at step 312", ...

    @classmethod
    def from_run(cls, run: Any) -> "RaceTrack":
        """From a `Run` of K optimizers with one setting each (path (K, T, 2) or (T, 2))."""
        path = np.asarray(run.path, dtype=np.float64)
        loss = np.asarray(run.loss, dtype=np.float64)
        if path.ndim == 2:
            path, loss = path[None], loss[None]
        if path.ndim != 3 or path.shape[0] != len(run.optimizers):
            raise ValueError(f"a race is one path per optimizer; got a path of shape {path.shape} for "
                             f"{len(run.optimizers)} optimizer(s) (use one setting each)")
        status = np.atleast_1d(np.asarray(run.status, dtype=object))
        conv, div = np.atleast_1d(run.converged_at), np.atleast_1d(run.diverged_at)
        texts = {}
        for k, o in enumerate(run.optimizers):
            texts[o] = {"converged": f"converged at step {int(conv[k])}",
                        "diverged": f"diverged at step {int(div[k])}"}.get(str(status[k]), "running")
        labels = {o: hparam_label(run.hparams.get(o, {})) for o in run.optimizers}
        return cls(run.surface, tuple(run.optimizers), np.arange(path.shape[1]), path, loss, labels, texts)

    def at(self, step: float) -> int:
        """Index of the last recorded row at or before `step`."""
        return int(np.clip(np.searchsorted(self.steps, step, side="right") - 1, 0, len(self.steps) - 1))


def hparam_label(hp: Mapping[str, Any]) -> str:
    """What the legend says of a setting: its lr, and its momentum when it has one."""
    parts = [f"lr={format_value(hp['lr'])}"] if "lr" in hp else []
    if "momentum" in hp and float(np.max(hp["momentum"])) > 0:
        parts.append(f"μ={format_value(hp['momentum'])}")
    return ", ".join(parts)


class RaceFigure:
    """One matplotlib figure of a race whose lines can be cut at any step (a frame)."""

    def __init__(self, track: RaceTrack, *, with_loss: bool = True, grid: int = 160, title: str | None = None,
                 width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX, dpi: int = 96) -> None:
        self.fig = figure(width_px if with_loss else height_px + 16 * 6, height_px, dpi)  # names the extra if missing
        from matplotlib.colors import LinearSegmentedColormap

        self.track = track
        s = track.surface
        axes = self.fig.subplots(1, 2 if with_loss else 1, squeeze=False,
                                 gridspec_kw={"width_ratios": [1, 1] if with_loss else [1]})[0]
        ax = self.ax = axes[0]
        xs, ys, z = s.grid(grid)
        (x0, x1), (y0, y1) = s.domain
        log = s.log_color  # the live surface plot's colour scale (the loss axis's log is f_min's, in _log)
        cmap = LinearSegmentedColormap.from_list("optiviz_surface", list(SURFACE_SCHEME))
        ax.imshow(surface_colors(z, s.f_ref, log), origin="lower", extent=(x0, x1, y0, y1), aspect="auto",
                  cmap=cmap, interpolation="bilinear")
        levels = np.unique(contour_levels(z, s.f_ref, log=log))
        if levels.size:
            ax.contour(xs, ys, np.ma.masked_invalid(z), levels=levels, colors=CONTOUR_COLOR, linewidths=0.7)
        if s.minima:
            m = np.asarray(s.minima, dtype=float)
            ax.plot(m[:, 0], m[:, 1], "*", color=MINIMUM_COLOR, markersize=12, zorder=4)
        start = track.path[0, 0]
        ax.plot([start[0]], [start[1]], "o", color="black", markersize=9, markerfacecolor="white", zorder=5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        self.colors = [optimizer_color(o, k) for k, o in enumerate(track.optimizers)]
        self.lines = [ax.plot([], [], "-", color=c, linewidth=2.2, label=self._legend(o), zorder=6)[0]
                      for o, c in zip(track.optimizers, self.colors)]
        self.heads = [ax.plot([], [], "o", color=c, markersize=9, markeredgecolor="white", zorder=7)[0]
                      for c in self.colors]
        ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
        self.title = title if title is not None else s.title
        ax.set_title(self.title)
        self.loss_ax = axes[1] if with_loss else None
        self.curves = []
        if self.loss_ax is not None:
            la = self.loss_ax
            excess = self._loss_axis_values()
            self.curves = [la.plot([], [], "-", color=c, linewidth=2)[0] for c in self.colors]
            la.set_xlim(0, max(float(track.steps[-1]), 1.0))
            finite = excess[np.isfinite(excess)]
            if self._log:
                la.set_yscale("log")
                lo, hi = (finite.min(), finite.max()) if finite.size else (1e-3, 1.0)
                la.set_ylim(max(lo, 1e-30) / 2, hi * 2 if hi > 0 else 1.0)
            elif finite.size:
                pad = 0.05 * (finite.max() - finite.min() or 1.0)
                la.set_ylim(finite.min() - pad, finite.max() + pad)
            la.set_xlabel("step")
            la.set_ylabel("loss − f*" if self._log else "loss")
            la.set_title("loss")
            la.grid(True, alpha=0.3)
        self.fig.tight_layout()
        # Blitting: the surface, contours and axes are drawn once; a frame redraws only the lines
        self._moving = [*self.lines, *self.heads, *self.curves, ax.title]
        for artist in self._moving:
            artist.set_animated(True)
        self._background = None

    @property
    def _log(self) -> bool:
        return self.track.surface.f_min is not None

    def _loss_axis_values(self) -> np.ndarray:
        """What the loss panel plots: loss above f* (floored for a log axis) or the loss itself."""
        loss = self.track.loss
        return np.maximum(loss - self.track.surface.f_ref, 1e-30) if self._log else loss

    def _legend(self, optimizer: str) -> str:
        label = self.track.labels.get(optimizer, "")
        return f"{optimizer} ({label})" if label else optimizer

    def draw(self, step: float) -> None:
        """Cut every line at `step` (the last recorded row at or before it)."""
        t = self.track
        i = t.at(step)
        values = self._loss_axis_values() if self.curves else None
        for k in range(len(t.optimizers)):
            self.lines[k].set_data(t.path[k, : i + 1, 0], t.path[k, : i + 1, 1])
            self.heads[k].set_data([t.path[k, i, 0]], [t.path[k, i, 1]])
            if values is not None:
                self.curves[k].set_data(t.steps[: i + 1], values[k, : i + 1])
        self.ax.set_title(f"{self.title} · step {int(t.steps[i])}")

    def rgb(self) -> np.ndarray:
        """The figure as it is now, an (H, W, 3) uint8 image (the still parts drawn once, then reused)."""
        canvas = self.fig.canvas
        if self._background is None:
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        else:
            canvas.restore_region(self._background)
        for artist in self._moving:
            artist.axes.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def finish(self) -> None:
        """Back to a plain figure (every artist drawn by savefig), after the frames."""
        for artist in self._moving:
            artist.set_animated(False)

    def frame_steps(self, frames: int) -> np.ndarray:
        """`frames` steps spread evenly over the race (fewer when it has fewer rows), the last included."""
        return even_indices(len(self.track.steps), frames)


def render_frames(track: RaceTrack, *, frames: int = 60, with_loss: bool = True, grid: int = 160) -> list[np.ndarray]:
    """The race as `frames` RGB images, the paths growing from the start to the last step."""
    frames = check_int("frames", frames, 2, MAX_FRAMES)
    rf = RaceFigure(track, with_loss=with_loss, grid=grid)
    out = []
    for i in rf.frame_steps(frames):
        rf.draw(float(track.steps[i]))
        out.append(rf.rgb())
    return out


def save_race_png(track: RaceTrack, path: str, *, fmt: str | None = None, with_loss: bool = True,
                  grid: int = 160) -> str:
    """The whole race as one picture (PNG or SVG, from the suffix or `fmt`)."""
    rf = RaceFigure(track, with_loss=with_loss, grid=grid)
    rf.draw(float(track.steps[-1]))
    rf.finish()
    return save_figure(rf.fig, path, fmt)


def save_race_gif(track: RaceTrack, path: str, *, frames: int = 60, fps: float = 15.0, hold: float = 2.0,
                  with_loss: bool = True, grid: int = 160) -> "ExportTiming":
    """An animated GIF of the race (Pillow; one palette for every frame, so colours do not flicker);
    the last frame is held `hold` seconds. Returns how long drawing and encoding took."""
    Image = require("PIL.Image", "save_gif")
    fps = float(check_range("fps", fps, 0.5, 100.0))
    hold = float(check_range("hold", hold, 0.0, 60.0))
    t0 = time.perf_counter()
    images = render_frames(track, frames=frames, with_loss=with_loss, grid=grid)
    t1 = time.perf_counter()
    palette = Image.fromarray(images[-1]).quantize(colors=255, method=Image.Quantize.FASTOCTREE)  # keeps line colours apart
    pics = [Image.fromarray(a).quantize(palette=palette, dither=Image.Dither.NONE) for a in images]
    ms = round(1000.0 / fps)
    durations = [ms] * (len(pics) - 1) + [ms + round(1000.0 * hold)]
    pics[0].save(path, save_all=True, append_images=pics[1:], duration=durations, loop=0, optimize=False)
    return ExportTiming(str(path), len(pics), t1 - t0, time.perf_counter() - t1)


def save_race_mp4(track: RaceTrack, path: str, *, frames: int = 120, fps: float = 30.0, hold: float = 2.0,
                  with_loss: bool = True, grid: int = 160) -> "ExportTiming":
    """An H.264 MP4 of the race (imageio with its ffmpeg binary); the last frame held `hold` seconds."""
    imageio = require("imageio.v2", "save_mp4")
    require("imageio_ffmpeg", "save_mp4")
    fps = float(check_range("fps", fps, 1.0, 120.0))
    hold = float(check_range("hold", hold, 0.0, 60.0))
    t0 = time.perf_counter()
    images = render_frames(track, frames=frames, with_loss=with_loss, grid=grid)
    t1 = time.perf_counter()
    images += [images[-1]] * int(round(hold * fps))
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=16,
                            ffmpeg_log_level="error") as writer:
        for a in images:
            writer.append_data(a)
    return ExportTiming(str(path), len(images), t1 - t0, time.perf_counter() - t1)


@dataclass(frozen=True)
class ExportTiming:
    """What an export wrote and how long it took (drawing the frames, encoding them)."""

    path: str
    frames: int
    draw_s: float
    encode_s: float

    @property
    def seconds(self) -> float:
        return self.draw_s + self.encode_s

    def __str__(self) -> str:
        return (f"{self.path}: {self.frames} frames in {self.seconds:.1f} s "
                f"(drawing {self.draw_s:.1f} s, encoding {self.encode_s:.1f} s)")


def track_of(surface: Surface, optimizers: Sequence[str], steps: np.ndarray, path: np.ndarray, loss: np.ndarray,
             labels: Mapping[str, str] | None = None, status: Mapping[str, str] | None = None) -> RaceTrack:
    """A RaceTrack from arrays (what a live view's records hold)."""
    return RaceTrack(surface, tuple(optimizers), np.asarray(steps, float), np.asarray(path, float),
                     np.asarray(loss, float), dict(labels or {}), dict(status or {}))


__all__ = ["RaceTrack", "RaceFigure", "ExportTiming", "hparam_label", "render_frames", "save_race_png", "save_race_gif",
           "save_race_mp4", "track_of"]
