"""A row block of the simulator's state and the diverged rows it holds still.

The simulator steps its (R, 2) state one block of rows after another (small races as one block, big
sweeps one optimizer at a time so the block stays in cache); a block is the set of views a step
reads and writes, made once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


def coordinate_major(t: torch.Tensor) -> torch.Tensor:
    """A copy of an (R, 2) tensor laid out one column after the other (still indexed [row, coordinate]):
    the surfaces read and write whole columns, and torch's ops mixing layouts cost several times
    more on the CPU than ops over one layout."""
    return torch.empty((t.shape[1], t.shape[0]), dtype=t.dtype, device=t.device).T.copy_(t)


class FrozenRows:
    """A block's diverged rows and their last finite points, where the eager step puts them back
    after every update. Kept in storage made once and appended to (rows diverge a few at a time,
    and regathering all of them at each divergence cost more than the restoring)."""

    def __init__(self, size: int, dtype: torch.dtype, device: torch.device) -> None:
        self._index = torch.empty(size, dtype=torch.int64, device=device)
        self._points = torch.empty((2, size), dtype=dtype, device=device)  # per coordinate: contiguous copies
        self.count = 0

    def add(self, rows: torch.Tensor, x: torch.Tensor) -> None:
        """Rows `rows` (indices, none of them frozen yet) stay where `x` has them now."""
        k = int(rows.numel())
        if k:
            self._index[self.count:self.count + k] = rows
            self._points[:, self.count:self.count + k] = x.index_select(0, rows).T
            self.count += k

    def clear(self) -> None:
        self.count = 0

    def restore(self, x: torch.Tensor) -> None:
        """Frozen rows of `x` back to their points (one coordinate at a time: contiguous columns)."""
        if self.count:
            index = self._index[:self.count]
            for c in range(2):
                x[:, c].index_copy_(0, index, self._points[c, :self.count])


@dataclass(eq=False)
class RowBlock:
    """One row block's views into the simulator's state, made once: a step reads and writes only
    these. A compiled step then sees each as a tensor of its own (slicing the whole state inside
    the graph made it copy all of it back, every block, every step)."""

    rows: slice
    ks: list[int]  # the optimizers whose rows these are, in order, n rows each
    n: int
    x: torch.Tensor
    x_prev: torch.Tensor
    loss: torch.Tensor
    loss_prev: torch.Tensor
    grad: torch.Tensor
    active: torch.Tensor  # (rows, 2) bool: not diverged
    running: torch.Tensor  # neither diverged nor converged
    grad_noise: torch.Tensor
    steered: torch.Tensor  # the gradient after noise and transforms, when there are any
    # 0 where a row is running, inf where not: min(|g|^2 + settled) <= gtol^2 says whether any
    # running row has a small gradient in two float passes (per-row booleans cost 4-5x a float op)
    settled: torch.Tensor = field(init=False)
    frozen: FrozenRows = field(init=False)

    def __post_init__(self) -> None:
        size = self.x.shape[0]
        self.settled = torch.zeros(size, dtype=self.x.dtype, device=self.x.device)
        self.frozen = FrozenRows(size, self.x.dtype, self.x.device)

    def resync(self) -> None:
        """Frozen rows and `settled` from `active` and `running`, after something else (a restart,
        the native kernel) wrote them."""
        self.frozen.clear()
        self.frozen.add(torch.nonzero(~self.active[:, 0]).reshape(-1), self.x)
        self.settled.zero_().masked_fill_(~self.running, math.inf)
