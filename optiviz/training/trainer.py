"""The steerable trainer: one minibatch step at a time, settings changed between steps.

A synchronous object: `step()` does one update, `run(steps=|epochs=)` is a plain loop that ends
early on divergence, and `set(...)` validates and applies a change at once. Call it between steps;
a view that trains in a worker thread goes through its LiveRunner (the only thread boundary),
which applies requests at step boundaries. The record of the next step says what changed.
The whole state (model, optimizer, random generators, data position, records) can be
snapshotted and restored to rewind a run or branch it.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optiviz._validate import check_choice, check_int
from optiviz.engine.devices import pick_device
from optiviz.engine.hparams import (
    TRAINING_SETTINGS, check_first_step, check_training_hparams, torch_hparams, training_spec,
)
from optiviz.engine.optimizers import OPTIMIZERS, torch_optimizer
from optiviz.engine.schedules import as_schedule
from optiviz.engine.transforms import Transform, annealed_noise, apply_to_tensors, chain, clip_by_norm, clip_by_value
from optiviz.engine.transforms import sign as sign_transform
from optiviz.training.abort import DIVERGENCE_FACTOR, check_divergence_factor, divergence_reason
from optiviz.training.data import CIFAR10, EpochOrder, load_cifar10, make_generator
from optiviz.training.early_stopping import BestWeights
from optiviz.training.models import Net, build_model
from optiviz.training.probes import Probes
from optiviz.training.records import EvalRecord, StepRecord, TrainRun, copy_history, history_arrays, new_history

OPTIMIZER_SETTINGS = ("lr", "momentum", "betas", "weight_decay")
SETTABLE = OPTIMIZER_SETTINGS + tuple(TRAINING_SETTINGS)


@dataclass(frozen=True)
class Snapshot:
    """The whole trainer state at a step boundary; restore it as often as you like."""

    step: int
    epoch: int
    state: dict


@dataclass
class TrainedRun(TrainRun):
    """A TrainRun (the data) with the Trainer that made it: `run.trainer` can go on or be snapshotted."""

    trainer: Trainer | None = field(default=None, repr=False)

    @property
    def model(self) -> nn.Module | None:
        return None if self.trainer is None else self.trainer.model


class Trainer:
    """Train a small net on CIFAR-10 one step at a time, with settings that change between steps.

    optimizer: one of OPTIMIZERS, with the engine's meanings (engine/hparams.py): "sgd" is plain SGD
    (a momentum for it is refused: use "momentum" or "nesterov", momentum 0.9 by default); all run
    on torch.optim (torch's SGD for the three). Other torch hyperparameters (eps, alpha, centered,
    amsgrad, lr_decay, dampening...) pass as keywords; lr defaults to hparams.TRAINING_LR.
    schedule: a name, (name, params) or callable step -> multiplier of the base lr (optiviz.engine.schedules;
    step counts updates already taken, as there).
    Gradient transforms run after backprop, in this order, as engine/transforms.py's over the whole
    net's gradient as one vector: noise N(0, grad_noise / (1 + t)^0.55), clip by value, clip by
    norm, sign (g = sign * sign(g)); weight decay stays inside the optimizer.
    probe_every: steps between per-layer probes (0: off); max_probes: how many of the newest probe
    records to keep (None: all; a dashboard keeps 1,000). val_every: steps between validation
    evaluations (None: at each epoch end). The test split is evaluated at each epoch end unless
    test_each_epoch is False (then history["test_acc"] stays empty; call evaluate("test")).
    divergence_factor: stop when the loss exceeds this many times the first step's loss (None: never).
    """

    def __init__(
        self,
        model: str | nn.Module = "convnet",
        data: CIFAR10 | None = None,
        *,
        optimizer: str = "nesterov",
        lr: float | None = None,
        momentum: float | None = None,
        betas: tuple[float, float] | None = None,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        schedule: Any = None,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        sign: float | None = None,
        grad_noise: float = 0.0,
        dropout: float | None = None,
        dropout_mode: str = "inverted",
        width: int | None = None,
        depth: int | None = None,
        batch_norm: bool | None = None,
        activation: str = "relu",
        init: str | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        probe_every: int = 10,
        max_probes: int | None = None,
        val_every: int | None = None,
        eval_batch_size: int = 500,
        test_each_epoch: bool = True,
        divergence_factor: float | None = DIVERGENCE_FACTOR,
        callback: Callable[[StepRecord], Any] | None = None,
        **hparams: Any,
    ) -> None:
        self.optimizer_name = check_choice("optimizer", optimizer, OPTIMIZERS)
        self.seed = check_int("seed", seed)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.probe_every = check_int("probe_every", probe_every, 0)
        self.max_probes = None if max_probes is None else check_int("max_probes", max_probes, 1)
        self.val_every = None if val_every is None else check_int("val_every", val_every, 1)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1)
        self.test_each_epoch = bool(test_each_epoch)
        self.divergence_factor = check_divergence_factor(divergence_factor)
        self.callback = callback
        self._schedule = as_schedule(schedule)

        # data and model on one device
        if data is None:
            data = load_cifar10(device=device)
        elif not isinstance(data, CIFAR10):
            raise ValueError(f"data must be a CIFAR10 from ov.load_cifar10(), got {type(data).__name__}")
        self.device = pick_device(device) if device is not None else data.device
        self.data = data.to(self.device)
        if isinstance(model, str):
            model = build_model(model, width=width, depth=depth, batch_norm=batch_norm, dropout=dropout,
                                dropout_mode=dropout_mode, activation=activation, init=init, seed=self.seed)
        elif not isinstance(model, nn.Module):
            raise ValueError(f"model must be a name ({', '.join(('mlp', 'deep_mlp', 'convnet'))}) or a torch module, got {model!r}")
        elif dropout is not None and isinstance(model, Net):
            model.set_dropout(dropout)
        self.model = model.to(self.device)
        self._dropout_gen = make_generator(self.device, self.seed + 1)
        if isinstance(self.model, Net):
            self.model.set_generator(self._dropout_gen)
        self._data_gen = make_generator(self.device, self.seed)
        self._noise_gen = make_generator(self.device, self.seed + 2)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.dtype = self.params[0].dtype if self.params else torch.float32  # every setting must fit it

        # optimizer and gradient transforms
        given = dict(lr=lr, momentum=momentum, betas=betas, weight_decay=weight_decay, **hparams)
        opt_kwargs = {k: _one_value(k, v) for k, v in check_training_hparams(self.optimizer_name, given, self.dtype).items()}
        self._base_lr = opt_kwargs.pop("lr")  # the one place the base lr lives (the optimizer's group lr is scheduled)
        self.optimizer = torch_optimizer(self.optimizer_name, self.params, lr=self._base_lr, **opt_kwargs)
        self._tx: dict[str, Any] = {}
        for name, value in dict(grad_noise=grad_noise, clip_value=clip_value, clip_norm=clip_norm, sign=sign).items():
            self._tx[name] = self._check_setting(name, value)
        self._transform = _gradient_transform(self._tx, self._noise_gen)

        self.probes = Probes(self.model)
        self.n_train = self.data.n_train
        self.batches = EpochOrder(self.n_train, self.batch_size, self._data_gen, self.device)
        self.steps_per_epoch = self.batches.steps_per_epoch

        # run state (everything below is in snapshots)
        self.step_count = 0
        self.epoch = 0
        self._initial_loss: float | None = None
        self._halted = False
        self.stop_reason: str | None = None
        self._ep_loss = 0.0
        self._ep_correct = 0.0
        self._ep_seen = 0
        self._history = new_history()
        self.probe_records: list = []
        self.events: list[tuple[int, str, Any]] = []  # (step it acts from, setting, value)
        self._changes: dict[str, Any] = {}  # set() since the last step: the next StepRecord's `changes`
        self.best = BestWeights("min")  # the weights of the lowest validation loss so far (restore_best)

        # what the run was started with (later changes are in self.events)
        self.config = dict(
            model=dict(getattr(self.model, "config", {"model": type(self.model).__name__})),
            optimizer=self.optimizer_name, **self.hparams,
            batch_size=self.batch_size, schedule=schedule if schedule is None or isinstance(schedule, (str, tuple)) else repr(schedule),
            seed=self.seed, device=str(self.device), probe_every=self.probe_every, val_every=self.val_every,
            divergence_factor=self.divergence_factor,
        )

    # ------------------------------------------------------------------ settings

    def set(self, **changes: Any) -> None:
        """Change settings now; the next step uses them and its record lists them in `changes`.

        Validated first, all or nothing: an out-of-range value raises ValueError and nothing changes.
        Settable: lr (the base lr, before any schedule), momentum, betas, weight_decay (those the
        optimizer has), dropout, grad_noise, clip_value, clip_norm, sign (None turns the last three off).
        """
        checked = {name: self._check_setting(name, value) for name, value in changes.items()}
        check_first_step(self.optimizer_name, {**self.hparams, **checked}, self.dtype)
        for name, value in checked.items():
            if name == "lr":
                self._base_lr = value
            elif name in OPTIMIZER_SETTINGS:
                for group in self.optimizer.param_groups:
                    group[name] = value
                if name == "momentum" and self.optimizer_name == "rmsprop" and value > 0:
                    _ensure_rmsprop_buffers(self.optimizer)
            elif name == "dropout":
                self.model.set_dropout(value)
            else:
                self._tx[name] = value
                self._transform = _gradient_transform(self._tx, self._noise_gen)
            self._changes[name] = value
            self.events = [e for e in self.events if e[:2] != (self.step_count, name)]  # the last value at a step counts
            self.events.append((self.step_count, name, value))

    def resume(self) -> None:
        """Clear a divergence stop: the next step is tried again (lower the lr first)."""
        self._halted, self.stop_reason = False, None

    @property
    def stopped(self) -> bool:
        """True after the divergence check stopped the run (until resume() or restore())."""
        return self._halted

    @property
    def lr(self) -> float:
        """The base lr (before any schedule)."""
        return self._base_lr

    @property
    def hparams(self) -> dict[str, Any]:
        """Current settings: base lr, the optimizer's torch hyperparameters, dropout and gradient transforms."""
        group = self.optimizer.param_groups[0]
        out = {"lr": self._base_lr}
        out.update({k: group[k] for k in torch_hparams(self.optimizer_name) if k in group})
        drops = self.model.dropouts() if isinstance(self.model, Net) else []
        if drops:
            out["dropout"] = drops[0].p
        out.update(self._tx)
        return out

    def _check_setting(self, name: str, value: Any) -> Any:
        if name not in SETTABLE:
            raise ValueError(f"unknown setting {name!r}; allowed: {', '.join(SETTABLE)}")
        if name == "dropout" and (not isinstance(self.model, Net) or not self.model.dropouts()):
            raise ValueError("dropout cannot be set: this model has no optiviz Dropout modules")
        spec = training_spec(self.optimizer_name, name)  # ValueError if this optimizer has no such setting
        if value is None and spec.default is None:
            return None
        return _one_value(name, spec.check(value, name, self.dtype))

    # ------------------------------------------------------------------ stepping

    def step(self) -> StepRecord:
        """One minibatch update (or none, if the loss trips the divergence check) and its record."""
        if self._halted:
            raise RuntimeError(f"the run has stopped ({self.stop_reason}); call resume() or restore() first")
        record = self._step()
        if self.callback is not None:
            self.callback(record)
        return record

    def run(self, steps: int | None = None, *, epochs: int | None = None,
            callback: Callable[[StepRecord], Any] | None = None) -> TrainedRun:
        """Run `steps` steps, or until `epochs` more epoch ends; returns early on divergence."""
        if (steps is None) == (epochs is None):
            raise ValueError("give exactly one of steps or epochs")
        steps = None if steps is None else check_int("steps", steps, 0)
        target_epoch = None if epochs is None else self.epoch + check_int("epochs", epochs, 0)
        done = 0
        while not self._halted and (done < steps if steps is not None else self.epoch < target_epoch):
            record = self.step()
            done += 1
            if callback is not None:
                callback(record)
        return self.result()

    def _step(self) -> StepRecord:
        changes, self._changes = self._changes, {}
        t = self.step_count
        idx = self.batches.indices()
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        lr = self._base_lr * (1.0 if self._schedule is None else float(self._schedule(t)))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        probing = self.probe_every > 0 and t % self.probe_every == 0
        if not self.model.training:  # train() walks every module: skip it when nothing changed
            self.model.train()
        if probing:
            self.probes.begin()
        try:
            logits = self.model(x)
        finally:
            if probing:
                self.probes.end_forward()
        loss = F.cross_entropy(logits, y)
        loss_value = float(loss.item())
        if self._initial_loss is None:
            self._initial_loss = loss_value

        reason = divergence_reason(loss_value, self._initial_loss, self.divergence_factor, t)
        if reason is not None:  # no update: the model stays at its last good state
            if probing:
                self.probes.cancel()
            self._halted = True
            self.stop_reason = reason
            self._append_step(t, loss_value, lr, float("nan"))
            return StepRecord(t, self.epoch, loss_value, lr, float("nan"), changes, stop_reason=reason)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if probing:
            self.probes.after_backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        grad_norm = _global_norm(grads)
        if self._transform is not None:
            with torch.no_grad():
                apply_to_tensors(self._transform, grads, t)
        self.optimizer.step()
        probe = self.probes.finish(t) if probing else None
        correct = (logits.detach().argmax(dim=1) == y).sum()
        grad_norm_value, correct_value = torch.stack([grad_norm.float(), correct.float()]).tolist()

        self.step_count += 1
        self._ep_loss += loss_value * len(y)
        self._ep_correct += correct_value
        self._ep_seen += len(y)
        self._append_step(t, loss_value, lr, grad_norm_value)
        epoch_end = self.batches.advance()
        evaluation = self._evaluate_after_step(epoch_end)
        if probe is not None:
            self.probe_records.append(probe)
            del self.probe_records[: max(0, len(self.probe_records) - (self.max_probes or len(self.probe_records)))]
        return StepRecord(t, self.epoch - int(epoch_end), loss_value, lr, grad_norm_value, changes,
                          probe=probe, eval=evaluation, epoch_end=epoch_end)

    def _append_step(self, t: int, loss: float, lr: float, grad_norm: float) -> None:
        for key, value in (("step", t), ("train_loss", loss), ("lr", lr), ("grad_norm", grad_norm)):
            self._history[key].append(value)

    # ------------------------------------------------------------------ evaluation

    @torch.inference_mode()
    def evaluate(self, split: str = "val") -> tuple[float, float]:
        """Mean cross-entropy and accuracy on a split, in eval mode (batch-norm running stats, no dropout)."""
        x, y = self.data.split(split)
        n = int(y.shape[0])
        if n == 0:
            return float("nan"), float("nan")
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        try:
            for i in range(0, n, self.eval_batch_size):
                logits = self.model(x[i:i + self.eval_batch_size])
                target = y[i:i + self.eval_batch_size]
                total += F.cross_entropy(logits, target, reduction="sum").float()
                correct += (logits.argmax(dim=1) == target).sum()
        finally:
            self.model.train(was_training)
        loss_sum, n_correct = torch.stack([total, correct]).tolist()
        return loss_sum / n, n_correct / n

    def _evaluate_after_step(self, epoch_end: bool) -> EvalRecord | None:
        due_val = (self.val_every is not None and self.step_count % self.val_every == 0) or \
                  (self.val_every is None and epoch_end)
        if not (due_val or epoch_end):
            return None
        if epoch_end:
            self.epoch += 1
        record = EvalRecord(step=self.step_count, epoch=self.epoch)
        h = self._history
        if due_val:
            record.val_loss, record.val_acc = self.evaluate("val")
            self.best.offer(self.step_count, record.val_loss, self.model)
            h["val_step"].append(self.step_count)
            h["val_loss"].append(record.val_loss)
            h["val_acc"].append(record.val_acc)
        if epoch_end:
            if self.test_each_epoch:
                record.test_loss, record.test_acc = self.evaluate("test")
            record.train_loss = self._ep_loss / max(self._ep_seen, 1)
            record.train_acc = self._ep_correct / max(self._ep_seen, 1)
            for key, value in (("epoch", self.epoch), ("epoch_step", self.step_count), ("train_acc", record.train_acc),
                               ("epoch_train_loss", record.train_loss)):
                h[key].append(value)
            if self.test_each_epoch:
                for key in ("test_loss", "test_acc"):
                    h[key].append(getattr(record, key))
            self._ep_loss, self._ep_correct, self._ep_seen = 0.0, 0.0, 0
        return record

    # ------------------------------------------------------------------ snapshot / restore

    def snapshot(self) -> Snapshot:
        """Copy the whole state at the current step boundary."""
        state = dict(
            model={k: v.detach().clone() for k, v in self.model.state_dict().items()},
            optimizer=copy.deepcopy(self.optimizer.state_dict()), optimizer_name=self.optimizer_name,
            generators={name: g.get_state() for name, g in self._generators().items()},
            order=self.batches.state(), step_count=self.step_count, epoch=self.epoch, base_lr=self._base_lr,
            dropout=[m.p for m in self.model.dropouts()] if isinstance(self.model, Net) else [],
            tx=dict(self._tx), initial_loss=self._initial_loss, halted=self._halted, stop_reason=self.stop_reason,
            epoch_acc=(self._ep_loss, self._ep_correct, self._ep_seen),
            history=copy_history(self._history),
            probe_records=list(self.probe_records), events=list(self.events), changes=dict(self._changes),
            probes=copy.deepcopy(self.probes.state_dict()), best=self.best.copy())
        return Snapshot(self.step_count, self.epoch, state)

    def restore(self, snap: Snapshot) -> None:
        """Go back to a snapshot, settings included: the next steps replay exactly what followed it."""
        if not isinstance(snap, Snapshot):
            raise ValueError(f"snap must be a Snapshot from Trainer.snapshot(), got {type(snap).__name__}")
        s = snap.state
        check_snapshot_fits(s, self.model, self.optimizer_name)  # before anything changes
        self.model.load_state_dict(s["model"])
        self.optimizer.load_state_dict(copy.deepcopy(s["optimizer"]))
        for name, g in self._generators().items():
            g.set_state(s["generators"][name])
        self.batches.load_state(s["order"])
        self.step_count, self.epoch, self._base_lr = s["step_count"], s["epoch"], s["base_lr"]
        if isinstance(self.model, Net):
            for m, p in zip(self.model.dropouts(), s["dropout"]):
                m.p = p
        self._tx = dict(s["tx"])
        self._transform = _gradient_transform(self._tx, self._noise_gen)
        self._initial_loss, self._halted, self.stop_reason = s["initial_loss"], s["halted"], s["stop_reason"]
        self._ep_loss, self._ep_correct, self._ep_seen = s["epoch_acc"]
        self._history = copy_history(s["history"])
        self.probe_records = list(s["probe_records"])
        self.events = list(s["events"])
        self._changes = dict(s["changes"])
        self.probes.load_state_dict(copy.deepcopy(s["probes"]))
        self.best = s["best"].copy()

    def restore_best(self) -> int:
        """Load the weights of the lowest validation loss so far (early stopping's kept weights) into
        the model; returns their step. The optimizer state and the records stay as they are."""
        return self.best.restore(self.model)

    def _generators(self) -> dict[str, torch.Generator]:
        return {"data": self._data_gen, "dropout": self._dropout_gen, "noise": self._noise_gen}

    # ------------------------------------------------------------------ results

    @property
    def history(self) -> dict:
        """Copies as numpy arrays: per step (step, train_loss, lr, grad_norm), per validation (val_*),
        per epoch (epoch, epoch_step, train_acc, epoch_train_loss, test_loss, test_acc)."""
        return history_arrays(self._history)

    def result(self) -> TrainedRun:
        return TrainedRun(history=history_arrays(self._history), probes=list(self.probe_records),
                          events=list(self.events), stop_reason=self.stop_reason, config=dict(self.config), trainer=self)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.probes.names


def check_snapshot_fits(state: dict, model: nn.Module, optimizer: str) -> None:
    """A snapshot restores only into a trainer of the same net (every weight's name and shape) and
    optimizer: ValueError saying what differs otherwise (torch's own error names neither)."""
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state["model"].items()}
    taken = state.get("optimizer_name", optimizer)
    if taken != optimizer:
        raise ValueError(f"the snapshot was taken with optimizer {taken!r} and this trainer runs {optimizer!r}: "
                         "restore it into a Trainer built like the one that took it")
    if mine != theirs:
        diff = next((k for k in theirs if mine.get(k) != theirs[k]), None) or next(k for k in mine if k not in theirs)
        raise ValueError(f"the snapshot is of another architecture: its {diff} is {theirs.get(diff, 'missing')}, "
                         f"this model's is {mine.get(diff, 'missing')}; restore it into a Trainer built like the "
                         "one that took it")


def _one_value(name: str, value: Any) -> Any:
    """One value as torch.optim takes it (a Trainer trains one net; per-net values are ManyTrainer's)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_one_value(f"{name}[{i}]", v) for i, v in enumerate(value))
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be one number for a Trainer (one value per net: ov.ManyTrainer), got {value!r}")
    return float(value)


def _gradient_transform(tx: dict[str, Any], noise_gen: torch.Generator) -> Transform | None:
    """engine/transforms.py's transforms for these settings, in the trainer's order (None: no transform)."""
    parts: list[Transform] = []
    if tx["grad_noise"] > 0:
        parts.append(annealed_noise(tx["grad_noise"], generator=noise_gen))
    for name, make in (("clip_value", clip_by_value), ("clip_norm", clip_by_norm), ("sign", sign_transform)):
        if tx[name] is not None:
            parts.append(make(tx[name]))
    return chain(*parts) if parts else None


def _global_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def _ensure_rmsprop_buffers(optimizer: torch.optim.Optimizer) -> None:
    """torch's RMSprop creates momentum buffers only if momentum > 0 at its first step; raising it later needs them."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state and "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def train(
    model: str | nn.Module = "convnet",
    optimizer: str = "nesterov",
    *,
    epochs: int | None = None,
    steps: int | None = None,
    data: CIFAR10 | None = None,
    callback: Callable[[StepRecord], Any] | None = None,
    **kwargs: Any,
) -> TrainedRun:
    """Train to completion (one epoch unless epochs or steps say otherwise) and return the run.

    Keywords are Trainer's. `run.history["train_loss"]` has one value per step,
    `run.history["test_acc"]` one per epoch; `run.trainer` can go on or be snapshotted.
    """
    if epochs is not None and steps is not None:
        raise ValueError("give epochs or steps, not both")
    trainer = Trainer(model, data, optimizer=optimizer, callback=callback, **kwargs)
    if steps is not None:
        return trainer.run(steps)
    return trainer.run(epochs=1 if epochs is None else epochs)


__all__ = ["Trainer", "TrainedRun", "Snapshot", "train", "OPTIMIZERS", "SETTABLE"]
