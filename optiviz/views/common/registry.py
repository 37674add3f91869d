"""The open optiviz views: re-running a notebook cell closes the views its previous run built, and
`ov.close_all()` closes every one.

The rule (also in the README): a view built while the kernel runs a cell closes every optiviz view
(of any kind) that an *earlier run of the same cell* built. A cell is known by the id the front end
sends with each execution (JupyterLab, Notebook 7 and VS Code send one; Binder runs JupyterLab).
Views built by the same run of a cell (two explorers side by side) keep each other, and views of
other cells are never touched, so a notebook with one explorer per cell keeps them all. Where no
cell id comes with the code (a script, nbclient, Voila, which runs each cell once), nothing is
closed on its own: call `view.close()` or `ov.close_all()`.

Why: ipywidgets' registry keeps every widget alive until it is closed, so a view whose cell was run
again kept its worker thread, its tensors and its comms for the rest of the session although its
output was gone from the page.
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

CellRun = tuple[str | None, str | None]  # (cell id, id of this run of it)


def kernel_cell() -> CellRun:
    """The cell the kernel is running now and this run's message id, from the execute request's
    metadata; (None, None) outside a kernel or when the front end sends no cell id."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None, None
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return None, None
    try:
        parent = kernel.get_parent()
    except Exception:  # an older ipykernel, or no message in flight
        return None, None
    if not isinstance(parent, dict):
        return None, None
    metadata = parent.get("metadata") or {}
    header = parent.get("header") or {}
    cell = metadata.get("cellId") if isinstance(metadata, dict) else None
    return (str(cell), str(header.get("msg_id"))) if cell else (None, None)


# what tells the cell a view is built in; tests and benchmarks may put another function here
current_cell: Callable[[], CellRun] = kernel_cell

_lock = threading.Lock()
_open: "weakref.WeakSet[Any]" = weakref.WeakSet()  # every view not yet closed
_by_cell: dict[str, tuple[str | None, list[weakref.ReferenceType[Any]]]] = {}  # cell -> (its run, views)


def register(view: Any) -> None:
    """Call at the end of a view's constructor: remember it, and close the views an earlier run of
    the same cell built."""
    cell, run = current_cell()
    stale: list[Any] = []
    with _lock:
        _open.add(view)
        if cell is not None:
            previous_run, views = _by_cell.get(cell, (None, []))
            if previous_run != run:
                stale = [v for v in (ref() for ref in views) if v is not None and v is not view]
                views = []
            views.append(weakref.ref(view))
            _by_cell[cell] = (run, views)
    for old in stale:
        old.close()  # outside the lock: close() may wait for a worker's step


def forget(view: Any) -> None:
    """A view's close() calls this (closing twice is harmless)."""
    with _lock:
        _open.discard(view)


def open_views() -> list[Any]:
    with _lock:
        return list(_open)


def close_all() -> int:
    """Close every optiviz view that is still open (their workers stop, their widgets close);
    returns how many were closed."""
    views = open_views()
    for view in views:
        view.close()
    with _lock:
        _by_cell.clear()
    return len(views)


__all__ = ["close_all", "register", "forget", "open_views", "kernel_cell", "current_cell"]
