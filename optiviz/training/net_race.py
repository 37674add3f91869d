"""The race on a real net: several optimizers train one net from the same weights on the same batches.

Each optimizer gets its own Trainer (torch.optim underneath), built from one set of initial
weights (copied, not just seeded alike) and one seed, so the minibatch order is the same for all:
only the optimizer differs. Along the way each run keeps flattened parameter snapshots, a bounded
number of them: every `every` steps, and when the log is full every other snapshot is dropped
and `every` doubles, so a run of any length keeps between half of `snapshots` and `snapshots`
evenly spaced points (the first, the init, always kept).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from optiviz._validate import check_choice, check_int, shown
from optiviz.engine.devices import check_allocation
from optiviz.engine.hparams import DASHBOARD_SGD_LR, TRAINING_LR, torch_hparams
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.preflight import check_hparams_arg, optimizer_names
from optiviz.training.data import CIFAR10, load_cifar10
from optiviz.training.models import build_model
from optiviz.training.planes import flat_params
from optiviz.training.trainer import Trainer

SNAPSHOTS = (4, 1000)  # the range of snapshots= (per optimizer)


@dataclass
class SnapshotLog:
    """Bounded, evenly spaced snapshots of one run: (step, flat parameters)."""

    limit: int
    every: int = 1
    steps: list[int] = field(default_factory=list)
    vectors: list[torch.Tensor] = field(default_factory=list, repr=False)

    def offer(self, step: int, params: Any) -> None:
        """Keep a snapshot of `params` (a module) at `step` if it is due."""
        if step % self.every:
            return
        self.steps.append(int(step))
        self.vectors.append(flat_params(params))
        if len(self.steps) > self.limit:
            self.steps, self.vectors = self.steps[::2], self.vectors[::2]
            self.every *= 2


def default_lr(model: str, optimizer: str) -> float:
    """The SGD family at the dashboard's lr for this architecture (MLPs blow up at 0.05), others at TRAINING_LR."""
    if optimizer in ("sgd", "momentum", "nesterov"):
        return DASHBOARD_SGD_LR.get(model, TRAINING_LR[optimizer])
    return TRAINING_LR[optimizer]


class NetRace:
    """K optimizers training one net from the same initial weights on the same batches, stepped together.

    hparams: {"adam": {"lr": 1e-3}} per optimizer; shared keywords (weight_decay, momentum...) go to
    every optimizer that has them. `step()` advances every run that has not stopped (a run whose loss
    passes 3x its first stops, as the Trainer does); `set(name, lr=...)` steers one at the next step.
    """

    def __init__(self, model: str = "mlp", optimizers: Any = ("sgd", "momentum", "adam"), data: CIFAR10 | None = None,
                 *, hparams: Mapping[str, Mapping[str, Any]] | None = None, batch_size: int = 128, seed: int = 0,
                 snapshots: int = 40, device: str | torch.device | None = None, width: int | None = None,
                 depth: int | None = None, activation: str = "relu", init: str | None = None, **shared: Any) -> None:
        names = optimizer_names(optimizers)
        if not names:
            raise ValueError(f"optimizers must name at least one of {', '.join(OPTIMIZERS)}")
        names = tuple(check_choice("optimizers", n, OPTIMIZERS) for n in names)
        if len(set(names)) != len(names):
            raise ValueError(f"optimizers must not repeat a name, got {list(names)}")
        check_hparams_arg(hparams, shared)
        unknown = sorted(set(hparams or {}) - set(names))
        if unknown:
            raise ValueError(f"hparams names {unknown[0]!r}, which is not in the race ({', '.join(names)})")
        self.snapshots = check_int("snapshots", snapshots, *SNAPSHOTS)
        if data is None:
            data = load_cifar10(device=device).subset(1024, 256, 256)
        elif not isinstance(data, CIFAR10):
            raise TypeError(f"data must be a CIFAR10 from ov.load_cifar10(), got {shown(data)}")
        self.model_name = check_choice("model", model, ("mlp", "deep_mlp", "convnet"))
        kw = dict(width=width, depth=depth, activation=activation, init=init)
        if self.model_name == "convnet":
            kw["batch_norm"] = False  # a landscape's points are weights only (training/planes.py)
        net = build_model(self.model_name, seed=check_int("seed", seed), **kw)
        n_weights = sum(p.numel() for p in net.parameters())
        check_allocation(f"snapshots={self.snapshots} of {len(names)} run(s) of {n_weights:,} weights",
                         4.0 * n_weights * (self.snapshots + 2) * len(names), data.device if device is None
                         else torch.device(device), "keep fewer snapshots (snapshots=) or race a smaller net")
        self.optimizers = names
        self.template = copy.deepcopy(net).eval()
        self.trainers: dict[str, Trainer] = {}
        takes = {n: {"lr", *torch_hparams(n)} for n in names}
        unused = sorted(set(shared) - set().union(*takes.values()))
        if unused:
            raise ValueError(f"no optimizer in the race ({', '.join(names)}) takes {unused[0]!r}")
        for name in names:
            given = {k: v for k, v in shared.items() if k in takes[name]}  # weight_decay for all, betas for adam
            given.update((hparams or {}).get(name, {}))
            given.setdefault("lr", default_lr(self.model_name, name))
            self.trainers[name] = Trainer(copy.deepcopy(net), data, optimizer=name, batch_size=batch_size, seed=seed,
                                          device=device, probe_every=0, test_each_epoch=False, **given)
        self.data = self.trainers[names[0]].data
        self.device = self.trainers[names[0]].device
        self.template = self.template.to(self.device)
        self.init = flat_params(net).to(self.device)
        self.logs = {name: SnapshotLog(self.snapshots) for name in names}
        for name in names:
            self.logs[name].offer(0, self.trainers[name].model)

    # ------------------------------------------------------------------ stepping
    @property
    def step_count(self) -> int:
        return max(t.step_count for t in self.trainers.values())

    @property
    def steps_per_epoch(self) -> int:
        return self.trainers[self.optimizers[0]].steps_per_epoch

    def running(self) -> list[str]:
        return [n for n, t in self.trainers.items() if not t.stopped]

    def step(self, steps: int = 1) -> dict[str, float]:
        """`steps` minibatch steps of every run still going; the last training loss of each."""
        last: dict[str, float] = {}
        for _ in range(check_int("steps", steps, 0)):
            for name in self.running():
                trainer = self.trainers[name]
                record = trainer.step()
                last[name] = float(record.loss)
                self.logs[name].offer(trainer.step_count, trainer.model)
        return last

    def run(self, *, epochs: int | None = None, steps: int | None = None) -> NetRace:
        """Train to `epochs` epochs (or `steps` steps) more; returns self."""
        if (steps is None) == (epochs is None):
            raise ValueError("give exactly one of steps or epochs")
        total = check_int("steps", steps, 0) if steps is not None else \
            check_int("epochs", epochs, 0) * self.steps_per_epoch
        self.step(total)
        return self

    def set(self, optimizer: str, **changes: Any) -> None:
        """Steer one run (validated now, used by its next step): lr, momentum, betas, weight_decay."""
        self.trainers[check_choice("optimizer", optimizer, self.optimizers)].set(**changes)

    # ------------------------------------------------------------------ reading
    def current(self, optimizer: str) -> torch.Tensor:
        """The run's weights now, as a flat vector."""
        return flat_params(self.trainers[check_choice("optimizer", optimizer, self.optimizers)].model)

    def final(self, optimizer: str) -> torch.Tensor:
        return self.current(optimizer)

    def module(self, optimizer: str) -> nn.Module:
        """The run's net now (a copy, eval mode)."""
        return copy.deepcopy(self.trainers[check_choice("optimizer", optimizer, self.optimizers)].model).eval()

    def trajectory(self, optimizer: str) -> tuple[np.ndarray, torch.Tensor]:
        """(steps (T,), flat parameters (T, P)) of one run: its snapshots, then where it is now."""
        log = self.logs[check_choice("optimizer", optimizer, self.optimizers)]
        steps, vectors = list(log.steps), list(log.vectors)
        now = self.trainers[optimizer].step_count
        if not steps or steps[-1] != now:
            steps.append(now)
            vectors.append(self.current(optimizer))
        return np.asarray(steps, dtype=np.int64), torch.stack(vectors)

    def loss_history(self, optimizer: str) -> np.ndarray:
        return np.asarray(self.trainers[optimizer].history["train_loss"], dtype=np.float64)

    def val_acc(self, optimizer: str) -> float:
        hist = self.trainers[optimizer].history.get("val_acc", [])
        return float(hist[-1]) if len(hist) else float("nan")


def race_on_net(model: str = "mlp", optimizers: Sequence[str] | str = ("sgd", "momentum", "adam"),
                data: CIFAR10 | None = None, *, epochs: int | None = None, steps: int | None = None,
                **kwargs: Any) -> NetRace:
    """Train the same net with each optimizer from the same initial weights and batches (2 epochs
    unless epochs or steps say otherwise), keeping bounded parameter snapshots of every run.

    Keywords are NetRace's: hparams={"adam": {"lr": 3e-3}}, shared settings, batch_size, seed,
    snapshots (per run, 4..1000), device, and the model's width, depth, activation, init.
    Data: the bundled subset's first 1,024 training images unless given.
    """
    race = NetRace(model, optimizers, data, **kwargs)
    if steps is None and epochs is None:
        epochs = 2
    return race.run(epochs=epochs, steps=steps)


__all__ = ["NetRace", "SnapshotLog", "race_on_net", "default_lr", "SNAPSHOTS"]
