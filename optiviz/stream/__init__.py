"""The one streaming mechanism every view uses: decimated series and a steerable worker loop.

Plain numpy and threading: nothing here imports torch, ipywidgets, bqplot or IPython.
"""
from optiviz.stream.runner import DONE, FrameClock, LiveRunner
from optiviz.stream.series import Markers, SeriesBuffer

__all__ = ["DONE", "FrameClock", "LiveRunner", "Markers", "SeriesBuffer"]
