"""Headless exports for slides and other tools: the race as a GIF or MP4, any panel as PNG or SVG,
records as CSV or JSON, a run as TensorBoard event files.

Everything here draws from records (a `Run`, a `RaceTrack`, a map, a trainer's history), never from
widgets, with matplotlib's Agg backend (no browser, no display). It needs the optional extra:
`pip install "optiviz[export]"` (matplotlib, Pillow, imageio with ffmpeg, tensorboard).
"""
