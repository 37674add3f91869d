"""How many visitors one machine can serve: a kernel per visitor, each costing memory.

Plain Python (no Voila, no widgets) so the numbers the server acts on can be computed and tested
on their own. A visitor's kernel is notebook 1 rendered and its explorers ready to play: about
0.45 GB of resident memory with torch (benchmarks/bench_classroom.py measures it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .._validate import check_int
from ..system_memory import available_bytes

KERNEL_MB = 450  # one visitor's kernel: notebook 1 rendered is ~330 MB (benchmarks/bench_classroom.py), with room
# for its runs to grow; notebooks 5 to 7 peak at 790 to 940 MB (benchmarks/binder_rehearsal.py): `--kernel-mb`
RESERVE_MB = 1536  # the server, the lecturer's browser, the system: kept free whatever the cap says
CULL_IDLE_S = 900  # a kernel nobody has used for this long, with no page connected, is shut down


def memory_available_mb() -> int:
    """Memory the system can give without swapping (Linux: MemAvailable), in MB; the total
    physical memory elsewhere."""
    available = available_bytes()
    if available is not None:
        return available // 2**20
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        return 4096


@dataclass(frozen=True)
class ClassSize:
    """The visitor cap and the preheated pool, and why: what `optiviz present` prints at start."""

    max_visitors: int
    preheat: int
    available_mb: int
    kernel_mb: int
    reserve_mb: int

    @property
    def describe(self) -> str:
        return (f"{self.max_visitors} visitors at most ({self.available_mb} MB free, {self.reserve_mb} MB kept "
                f"back, {self.kernel_mb} MB a kernel); {self.preheat} kernel(s) preheated")


def class_size(max_visitors: int | None = None, preheat: int = 1, *, available_mb: int | None = None,
               kernel_mb: int = KERNEL_MB, reserve_mb: int = RESERVE_MB) -> ClassSize:
    """The visitor cap from free memory (or `max_visitors` when given: it may not exceed what memory
    allows), and a preheated pool no larger than the cap. Preheated kernels count against the cap:
    each one is a future visitor's kernel, started before they arrive."""
    check_int("preheat", preheat, 0, 1000)
    check_int("kernel_mb", kernel_mb, 1, 10**6)
    free = memory_available_mb() if available_mb is None else available_mb
    fits = max(0, (free - reserve_mb) // kernel_mb)
    if max_visitors is None:
        cap = fits
    else:
        check_int("max_visitors", max_visitors, 1, 10**5)
        if max_visitors > fits:
            raise ValueError(f"max_visitors={max_visitors} does not fit in memory: {free} MB free, {reserve_mb} MB "
                             f"kept back and {kernel_mb} MB a kernel leave room for {fits}")
        cap = max_visitors
    if cap < 1:
        raise ValueError(f"not enough memory for one visitor: {free} MB free, {reserve_mb} MB kept back, "
                         f"{kernel_mb} MB a kernel")
    return ClassSize(cap, min(preheat, cap), free, kernel_mb, reserve_mb)
