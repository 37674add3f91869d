"""The steerable trainer: one minibatch step at a time, controls applied at step boundaries.

Observers (a slider, another thread) only call `set(...)`, which validates and records the
request; the trainer applies everything pending at the start of its next step, so a change
never lands halfway through an update and the record of that step says what changed.
The whole state (model, optimizer, random generators, data position, records) can be
snapshotted and restored to rewind a run or branch it.
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from optiviz._validate import check_choice, check_int, check_positive, check_range, check_unit_interval
from optiviz.engine.devices import pick_device
from optiviz.training.data import CIFAR10, load_cifar10, make_generator
from optiviz.engine.optimizers import torch_optimizer
from optiviz.engine.schedules import as_schedule
from optiviz.engine.transforms import noise_std, norm_clip_scale
from optiviz.training.abort import DIVERGENCE_FACTOR, check_divergence_factor, divergence_reason
from optiviz.training.models import Net, build_model
from optiviz.training.probes import Probes
from optiviz.training.records import HISTORY_KEYS, EvalRecord, StepRecord, TrainRun, history_arrays

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
# torch.optim's lr defaults except the SGD family (torch's 1e-3 barely moves these nets in a
# lecture's few minutes; 0.05 is the reference convnet recipe) and RMSprop (1e-3, as Keras).
DEFAULT_LR = {"sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.01, "rmsprop": 1e-3, "adam": 1e-3}
# torch.optim hyperparameters each optimizer accepts besides lr
TORCH_HPARAMS = {
    "sgd": ("momentum", "dampening", "weight_decay"),
    "momentum": ("momentum", "dampening", "weight_decay"),
    "nesterov": ("momentum", "weight_decay"),
    "adagrad": ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
    "rmsprop": ("alpha", "eps", "weight_decay", "momentum", "centered"),
    "adam": ("betas", "eps", "weight_decay", "amsgrad"),
}
SETTABLE = ("lr", "momentum", "betas", "dropout", "weight_decay", "clip_value", "clip_norm", "sign", "grad_noise")


@dataclass(frozen=True)
class Snapshot:
    """The whole trainer state at a step boundary; restore it as often as you like."""

    step: int
    epoch: int
    state: dict


class Trainer:
    """Train a small net on CIFAR-10 one step at a time, steerable from another thread.

    optimizer: one of OPTIMIZERS, mapped onto torch.optim ("momentum" and "nesterov" are SGD with
    momentum 0.9 by default; "sgd" takes momentum too, as torch's SGD does). Other torch
    hyperparameters (eps, alpha, centered, amsgrad, lr_decay, dampening...) pass as keywords.
    schedule: a name, (name, params) or callable step -> multiplier of the base lr (optiviz.engine.schedules;
    step counts updates already taken, as there).
    Gradient transforms run after backprop, in this order: noise N(0, grad_noise / (1 + t)^0.55),
    clip by value, clip by norm, sign (g = sign * sign(g)); weight decay stays inside the optimizer.
    probe_every: steps between per-layer probes (0: off). val_every: steps between validation
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

        # optimizer
        opt_kwargs = self._optimizer_kwargs(lr, momentum, betas, weight_decay, hparams)
        self._base_lr = opt_kwargs.pop("lr")
        self.optimizer = torch_optimizer(self.optimizer_name, self.params, lr=self._base_lr, **opt_kwargs)
        self._tx = {"clip_value": None, "clip_norm": None, "sign": None, "grad_noise": 0.0}
        for name, value in dict(clip_value=clip_value, clip_norm=clip_norm, sign=sign, grad_noise=grad_noise).items():
            self._tx[name] = _check_setting(self, name, value)

        self.probes = Probes(self.model)
        self.n_train = self.data.n_train
        self._bs = min(self.batch_size, self.n_train)
        self.steps_per_epoch = max(1, self.n_train // self._bs)

        # run state (everything below is in snapshots)
        self.step_count = 0
        self.epoch = 0
        self._pos = 0
        self._perm: torch.Tensor | None = None
        self._initial_loss: float | None = None
        self._halted = False
        self.stop_reason: str | None = None
        self._ep_loss = 0.0
        self._ep_correct = 0.0
        self._ep_seen = 0
        self._history: dict[str, list] = {k: [] for k in HISTORY_KEYS}
        self.probe_records: list = []
        self.events: list[tuple[int, str, Any]] = []

        # control
        self._lock = threading.RLock()  # held for a whole step; snapshot/restore wait for the boundary
        self._pending: dict[str, Any] = {}
        self._pending_lock = threading.Lock()
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()

        # what the run was started with (later changes are in self.events)
        self.config = dict(
            model=dict(getattr(self.model, "config", {"model": type(self.model).__name__})),
            optimizer=self.optimizer_name, lr=self._base_lr, **opt_kwargs, **self._tx,
            batch_size=self.batch_size, schedule=schedule if schedule is None or isinstance(schedule, (str, tuple)) else repr(schedule),
            seed=self.seed, device=str(self.device), probe_every=self.probe_every, val_every=self.val_every,
            divergence_factor=self.divergence_factor,
        )

    # ------------------------------------------------------------------ controls (any thread)

    def set(self, **changes: Any) -> None:
        """Request control changes; they apply at the start of the next step.

        Validated here, all or nothing: an out-of-range value raises ValueError in the caller and the
        run goes on untouched. Settable: lr (the base lr, before any schedule), momentum, betas,
        dropout, weight_decay, clip_value, clip_norm, sign (None turns the last three off), grad_noise.
        """
        checked = {name: _check_setting(self, name, value) for name, value in changes.items()}
        with self._pending_lock:
            self._pending.update(checked)

    def pause(self) -> None:
        """Make `run()` wait at the next step boundary."""
        self._running.clear()

    def resume(self) -> None:
        """Let `run()` go on; also clears a stop (after a divergence, lower lr and resume)."""
        with self._lock:
            self._halted = False
            self.stop_reason = None
        self._stop.clear()
        self._running.set()

    def stop(self) -> None:
        """End `run()` at the next step boundary (a paused run ends too)."""
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._halted

    # ------------------------------------------------------------------ stepping

    def step(self) -> StepRecord:
        """One minibatch update (or none, if the loss trips the divergence check) and its record."""
        with self._lock:
            if self._halted:
                raise RuntimeError(f"the run has stopped ({self.stop_reason}); call resume() or restore() first")
            record = self._step()
        if self.callback is not None:
            self.callback(record)
        return record

    def run(self, steps: int | None = None, *, epochs: int | None = None,
            callback: Callable[[StepRecord], Any] | None = None) -> TrainRun:
        """Run `steps` steps, or until `epochs` more epoch ends; returns early on stop() or divergence.

        pause() / resume() / stop() from another thread take effect at step boundaries.
        """
        if (steps is None) == (epochs is None):
            raise ValueError("give exactly one of steps or epochs")
        if steps is not None:
            steps = check_int("steps", steps, 0)
        else:
            epochs = check_int("epochs", epochs, 0)
        self._stop.clear()
        if not self._halted:
            self.stop_reason = None  # a past "stopped by user" does not describe this run
        done, target_epoch = 0, None if epochs is None else self.epoch + epochs
        while (steps is not None and done < steps) or (target_epoch is not None and self.epoch < target_epoch):
            while not self._running.wait(0.05):
                if self._stop.is_set():
                    break
            if self._stop.is_set():
                self.stop_reason = "stopped by user"
                break
            if self._halted:
                break
            record = self.step()
            done += 1
            if callback is not None:
                callback(record)
            if record.stop_reason is not None:
                break
        return self.result()

    def _step(self) -> StepRecord:
        changes = self._apply_pending()
        t = self.step_count
        if self._perm is None:
            self._perm = torch.randperm(self.n_train, generator=self._data_gen, device=self.device)
        idx = self._perm[self._pos * self._bs:(self._pos + 1) * self._bs]
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

        reason = self._divergence(loss_value, t)
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
        self._transform(grads, t, grad_norm)
        self.optimizer.step()
        probe = self.probes.finish(t) if probing else None
        correct = (logits.detach().argmax(dim=1) == y).sum()
        grad_norm_value, correct_value = torch.stack([grad_norm.float(), correct.float()]).tolist()

        self.step_count += 1
        self._pos += 1
        self._ep_loss += loss_value * len(y)
        self._ep_correct += correct_value
        self._ep_seen += len(y)
        self._append_step(t, loss_value, lr, grad_norm_value)
        epoch_end = self._pos >= self.steps_per_epoch
        evaluation = self._evaluate_after_step(epoch_end)
        if probe is not None:
            self.probe_records.append(probe)
        return StepRecord(t, self.epoch - int(epoch_end), loss_value, lr, grad_norm_value, changes,
                          probe=probe, eval=evaluation, epoch_end=epoch_end)

    def _append_step(self, t: int, loss: float, lr: float, grad_norm: float) -> None:
        h = self._history
        h["step"].append(t)
        h["train_loss"].append(loss)
        h["lr"].append(lr)
        h["grad_norm"].append(grad_norm)

    def _divergence(self, loss: float, t: int) -> str | None:
        initial = loss if self._initial_loss is None else self._initial_loss
        return divergence_reason(loss, initial, self.divergence_factor, t)

    def _transform(self, grads: list[torch.Tensor], t: int, grad_norm: torch.Tensor) -> None:
        tx = self._tx
        with torch.no_grad():
            if tx["grad_noise"] > 0:
                std = noise_std(tx["grad_noise"], t)
                for g in grads:
                    g.add_(torch.randn(g.shape, generator=self._noise_gen, device=g.device, dtype=g.dtype), alpha=std)
            if tx["clip_value"] is not None:
                for g in grads:
                    g.clamp_(-tx["clip_value"], tx["clip_value"])
            if tx["clip_norm"] is not None:
                norm = grad_norm if tx["grad_noise"] == 0 and tx["clip_value"] is None else _global_norm(grads)
                factor = norm_clip_scale(norm.clone(), tx["clip_norm"])
                for g in grads:
                    g.mul_(factor)
            if tx["sign"] is not None:
                for g in grads:
                    g.sign_().mul_(tx["sign"])

    # ------------------------------------------------------------------ evaluation

    @torch.inference_mode()
    def evaluate(self, split: str = "val") -> tuple[float, float]:
        """Mean cross-entropy and accuracy on a split, in eval mode (batch-norm running stats, no dropout)."""
        with self._lock:
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
                h["test_loss"].append(record.test_loss)
                h["test_acc"].append(record.test_acc)
            self._pos, self._perm = 0, None
            self._ep_loss, self._ep_correct, self._ep_seen = 0.0, 0.0, 0
        return record

    # ------------------------------------------------------------------ changes

    def _apply_pending(self) -> dict[str, Any]:
        with self._pending_lock:
            changes, self._pending = self._pending, {}
        for name, value in changes.items():
            if name == "lr":
                self._base_lr = value
            elif name in ("momentum", "betas", "weight_decay"):
                for group in self.optimizer.param_groups:
                    group[name] = value
                if name == "momentum" and self.optimizer_name == "rmsprop" and value > 0:
                    _ensure_rmsprop_buffers(self.optimizer)
            elif name == "dropout":
                self.model.set_dropout(value)
            else:
                self._tx[name] = value
            self.events.append((self.step_count, name, value))
        return changes

    @property
    def hparams(self) -> dict[str, Any]:
        """Current settings: base lr, the optimizer's torch hyperparameters, dropout and gradient transforms."""
        group = self.optimizer.param_groups[0]
        out = {"lr": self._base_lr}
        out.update({k: group[k] for k in TORCH_HPARAMS[self.optimizer_name] if k in group})
        drops = self.model.dropouts() if isinstance(self.model, Net) else []
        if drops:
            out["dropout"] = drops[0].p
        out.update(self._tx)
        return out

    # ------------------------------------------------------------------ snapshot / restore

    def snapshot(self) -> Snapshot:
        """Copy the whole state at the current step boundary (waits for a step in flight)."""
        with self._lock:
            state = dict(
                model={k: v.detach().clone() for k, v in self.model.state_dict().items()},
                optimizer=copy.deepcopy(self.optimizer.state_dict()),
                generators={name: g.get_state() for name, g in self._generators().items()},
                perm=None if self._perm is None else self._perm.clone(),
                pos=self._pos, step_count=self.step_count, epoch=self.epoch, base_lr=self._base_lr,
                dropout=[m.p for m in self.model.dropouts()] if isinstance(self.model, Net) else [],
                tx=dict(self._tx), initial_loss=self._initial_loss, halted=self._halted, stop_reason=self.stop_reason,
                epoch_acc=(self._ep_loss, self._ep_correct, self._ep_seen),
                history={k: list(v) for k, v in self._history.items()},
                probe_records=list(self.probe_records), events=list(self.events),
                probes=copy.deepcopy(self.probes.state_dict()),
            )
            return Snapshot(self.step_count, self.epoch, state)

    def restore(self, snap: Snapshot) -> None:
        """Go back to a snapshot: the next steps replay exactly what followed it (pending set() requests are kept)."""
        if not isinstance(snap, Snapshot):
            raise ValueError(f"snap must be a Snapshot from Trainer.snapshot(), got {type(snap).__name__}")
        s = snap.state
        with self._lock:
            self.model.load_state_dict(s["model"])
            self.optimizer.load_state_dict(copy.deepcopy(s["optimizer"]))
            for name, g in self._generators().items():
                g.set_state(s["generators"][name])
            self._perm = None if s["perm"] is None else s["perm"].clone()
            self._pos, self.step_count, self.epoch, self._base_lr = s["pos"], s["step_count"], s["epoch"], s["base_lr"]
            if isinstance(self.model, Net):
                for m, p in zip(self.model.dropouts(), s["dropout"]):
                    m.p = p
            self._tx = dict(s["tx"])
            self._initial_loss, self._halted, self.stop_reason = s["initial_loss"], s["halted"], s["stop_reason"]
            self._ep_loss, self._ep_correct, self._ep_seen = s["epoch_acc"]
            self._history = {k: list(v) for k, v in s["history"].items()}
            self.probe_records = list(s["probe_records"])
            self.events = list(s["events"])
            self.probes.load_state_dict(copy.deepcopy(s["probes"]))

    def _generators(self) -> dict[str, torch.Generator]:
        return {"data": self._data_gen, "dropout": self._dropout_gen, "noise": self._noise_gen}

    # ------------------------------------------------------------------ results

    @property
    def history(self) -> dict:
        """Copies as numpy arrays: per step (step, train_loss, lr, grad_norm), per validation (val_*),
        per epoch (epoch, epoch_step, train_acc, epoch_train_loss, test_loss, test_acc)."""
        with self._lock:
            return history_arrays(self._history)

    def result(self) -> TrainRun:
        with self._lock:
            return TrainRun(history=history_arrays(self._history), probes=list(self.probe_records),
                            events=list(self.events), stop_reason=self.stop_reason, config=dict(self.config), trainer=self)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.probes.names

    # ------------------------------------------------------------------ construction helpers

    def _optimizer_kwargs(self, lr, momentum, betas, weight_decay, extra) -> dict[str, Any]:
        name = self.optimizer_name
        allowed = TORCH_HPARAMS[name]
        unknown = sorted(set(extra) - set(allowed))
        if unknown:
            raise ValueError(f"unknown hyperparameter {unknown[0]!r} for optimizer {name!r}; allowed: lr, {', '.join(allowed)}")
        kw: dict[str, Any] = {"lr": DEFAULT_LR[name] if lr is None else lr, **extra}
        if momentum is not None:
            if "momentum" not in allowed:
                raise ValueError(f"optimizer {name!r} has no momentum; allowed: lr, {', '.join(allowed)}")
            kw["momentum"] = momentum
        elif name in ("momentum", "nesterov"):
            kw["momentum"] = 0.9
        if betas is not None:
            if "betas" not in allowed:
                raise ValueError(f"optimizer {name!r} has no betas; allowed: lr, {', '.join(allowed)}")
            kw["betas"] = betas
        kw["weight_decay"] = weight_decay
        for key, value in kw.items():
            kw[key] = _check_hparam(name, key, value)
        return kw


def _check_hparam(optimizer: str, name: str, value: Any) -> Any:
    """Ranges from the engine's table (torch's rules); SGD's momentum is checked like "momentum"'s."""
    from optiviz.engine.hparams import specs

    table = specs("momentum" if optimizer == "sgd" and name in ("momentum", "dampening") else optimizer)
    spec = table.get(name)
    if spec is None:
        raise ValueError(f"unknown hyperparameter {name!r} for optimizer {optimizer!r}; allowed: {', '.join(table)}")
    spec.check(value, name)
    if spec.kind == "pair":
        return tuple(float(v) for v in value)
    return value if spec.kind == "bool" else float(value)


def _check_setting(trainer: Trainer, name: str, value: Any) -> Any:
    if name not in SETTABLE:
        raise ValueError(f"unknown setting {name!r}; allowed: {', '.join(SETTABLE)}")
    if name == "lr":
        return float(check_positive("lr", value))
    if name == "dropout":
        if not isinstance(trainer.model, Net) or not trainer.model.dropouts():
            raise ValueError("dropout cannot be set: this model has no optiviz Dropout modules")
        return float(check_unit_interval("dropout", value))
    if name in ("momentum", "betas", "weight_decay"):
        allowed = TORCH_HPARAMS[trainer.optimizer_name]
        if name not in allowed:
            raise ValueError(f"optimizer {trainer.optimizer_name!r} has no {name}; settable: "
                             f"{', '.join(s for s in SETTABLE if s not in ('momentum', 'betas', 'weight_decay') or s in allowed)}")
        return _check_hparam(trainer.optimizer_name, name, value)
    if name == "grad_noise":
        return float(check_range("grad_noise", value, 0.0))
    return None if value is None else float(check_positive(name, value))


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
) -> TrainRun:
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
