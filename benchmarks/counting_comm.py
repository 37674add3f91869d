"""A comm that goes nowhere but counts bytes as a kernel would serialize them: widget benchmarks
measure the kernel-side cost of a frame without a browser."""
from __future__ import annotations

import json

import comm
from comm.base_comm import BaseComm


class CountingComm(BaseComm):
    """Serializes every message like a kernel session and counts its bytes."""

    sent: list[int] = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):  # noqa: ANN001
        size = len(json.dumps(data or {}, default=str).encode()) + sum(memoryview(b).nbytes for b in buffers or ())
        CountingComm.sent.append(size)


def install() -> type[CountingComm]:
    """Route every widget created from now on through CountingComm."""
    comm.create_comm = lambda **kw: CountingComm(**kw)
    return CountingComm
