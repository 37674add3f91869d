"""What a dashboard run is built from: settings, model presets, building trainers, compare groups.

No widgets here (plain torch and the trainer), so the rules are testable on their own:
- a `RunSpec` says everything one run is built from; live settings (lr, momentum, betas, dropout,
  weight decay) change a running net, the others start a new run;
- compared runs share the net, its initial weights (copied from the first run, not just seeded
  alike) and the minibatch order (same seed, same batch size): only what `COMPARE_KEYS` names differs;
- a model that would not fit in memory is refused before anything is allocated (the model is
  built on torch's meta device to count parameters and activations), and a real out-of-memory
  error (torch.OutOfMemoryError, MemoryError: `OUT_OF_MEMORY`) while building becomes a
  ResourceError a view can show;
- a run's live settings live in its Trainer: `Run.spec` reads them from there, so a Reset or a
  compare starts from what the net runs with now.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from optiviz._validate import check_choice, check_int, shown
from optiviz.engine.devices import MEMORY_HEADROOM, free_memory
from optiviz.engine.hparams import DASHBOARD_SGD_LR, HPARAMS, LIVE_TRAINING_HPARAMS, TRAINING_LR
from optiviz.engine.optimizers import OPTIMIZERS
from optiviz.engine.schedules import make_schedule, schedule_spec
from optiviz.labels import format_value
from optiviz.training.data import CIFAR10
from optiviz.training.models import ACTIVATIONS, INITS, build_model
from optiviz.training.trainer import Trainer

# key -> (what the dropdown says, build_model arguments)
MODEL_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "convnet": ("convnet (3 conv blocks, batch norm)", dict(model="convnet")),
    "small_convnet": ("small convnet (2 conv blocks)", dict(model="convnet", width=8, depth=2)),
    "mlp": ("2-layer net (50 hidden)", dict(model="mlp", width=50, depth=2)),
    "deep_mlp": ("deep net (6 layers)", dict(model="deep_mlp")),
}
BATCH_SIZES = (16, 32, 64, 128, 256)
LIVE_KEYS = LIVE_TRAINING_HPARAMS  # act on a running net (engine/hparams.py)
RESTART_KEYS = ("model", "optimizer", "batch_size", "batch_norm", "activation", "init", "schedule",
                "width", "depth", "seed")
COMPARE_KEYS = ("optimizer", "lr", "momentum", "betas", "dropout", "weight_decay", "schedule", "label")
KEEP_PROBES = 1000  # a dashboard run keeps its newest probe records (histograms), not an hour of them
OUT_OF_MEMORY = (torch.OutOfMemoryError, MemoryError)  # the exception types that mean "does not fit"


class ResourceError(ValueError):
    """The run does not fit in memory: a ValueError (a view shows it) a caller can tell apart."""


@dataclass
class RunSpec:
    """Everything one run is built from. None means "the default for this model / optimizer"."""

    model: str = "convnet"
    optimizer: str = "nesterov"
    lr: float | None = None
    momentum: float | None = None
    betas: tuple[float, float] | None = None
    dropout: float | None = None
    weight_decay: float = 0.0
    batch_size: int = 128
    batch_norm: bool | None = None
    activation: str = "relu"
    init: str | None = None
    schedule: tuple[str, dict[str, Any]] = ("constant", {})
    width: int | None = None
    depth: int | None = None
    seed: int = 0
    label: str | None = None

    def setting(self) -> dict[str, Any]:
        """The spec as a shared setting holds it: every field but the label (compared runs keep theirs)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "label"}

    def build_kwargs(self) -> dict[str, Any]:
        """build_model() arguments (the architecture name under "name"): the preset's, then this spec's."""
        _title, preset = MODEL_PRESETS[self.model]
        kw = dict(preset)
        kw["name"] = kw.pop("model")
        for key in ("width", "depth", "batch_norm", "init"):
            if getattr(self, key) is not None:
                kw[key] = getattr(self, key)
        kw["activation"] = self.activation
        return kw

    @property
    def default_lr(self) -> float:
        if self.optimizer in ("sgd", "momentum", "nesterov"):
            return DASHBOARD_SGD_LR[MODEL_PRESETS[self.model][1]["model"]]
        return TRAINING_LR[self.optimizer]

    @property
    def effective_lr(self) -> float:
        return self.default_lr if self.lr is None else self.lr


def validate_spec(spec: RunSpec) -> RunSpec:
    """A checked copy (the caller's spec is not changed) of the fields a trainer does not check
    itself; the trainer checks the rest while building."""
    if not isinstance(spec.model, str) or spec.model not in MODEL_PRESETS:
        raise ValueError(f"unknown model {shown(spec.model)}; presets: {', '.join(MODEL_PRESETS)}")
    kind, params = schedule_spec(spec.schedule)
    make_schedule(kind, **params)  # ValueError names the bad parameter
    return dataclasses.replace(
        spec,
        optimizer=check_choice("optimizer", spec.optimizer, OPTIMIZERS),
        activation=check_choice("activation", spec.activation, ACTIVATIONS),
        init=None if spec.init is None else check_choice("init", spec.init, INITS),
        batch_size=check_int("batch_size", spec.batch_size, 1, 65536),
        seed=check_int("seed", spec.seed),
        schedule=(kind, dict(params)),
        betas=None if spec.betas is None else tuple(float(b) for b in HPARAMS["adam"]["betas"].check(spec.betas)),
    )


def with_changes(spec: RunSpec, **changes: Any) -> RunSpec:
    """A copy with `changes`; a new optimizer drops the old one's lr / momentum / betas unless given."""
    unknown = sorted(set(changes) - set(f.name for f in dataclasses.fields(RunSpec)))
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; settings: {', '.join(LIVE_KEYS + RESTART_KEYS)}")
    dropped: dict[str, Any] = {}
    if "optimizer" in changes and changes["optimizer"] != spec.optimizer:
        dropped.update(lr=None, momentum=None, betas=None)
    if "model" in changes and changes["model"] != spec.model:
        dropped.update(width=None, depth=None, batch_norm=None, init=None, dropout=None, lr=None)
    return validate_spec(dataclasses.replace(spec, **{**dropped, **changes}))


# ------------------------------------------------------------------------------- building
@dataclass
class Run:
    """One trainer of the dashboard with its label; `built` is the spec it was built from,
    `failed` holds why it cannot go on."""

    label: str
    built: RunSpec
    trainer: Trainer
    failed: str | None = None

    @property
    def spec(self) -> RunSpec:
        """The settings this run has now: how it was built, with what changed live since read from its
        trainer (the one place a live setting is held)."""
        now, started = self.trainer.hparams, self.trainer.config
        changed = {key: now[key] for key in LIVE_KEYS if key in now and now[key] != started.get(key)}
        return dataclasses.replace(self.built, **changed)

    @property
    def halted(self) -> bool:
        return self.failed is not None or self.trainer.stopped


def build_trainer(spec: RunSpec, data: CIFAR10, *, probe_every: int, val_every: int | None,
                  init_from: torch.nn.Module | None = None) -> Trainer:
    """A Trainer for `spec`; ValueError (never an allocation that kills the process) if it cannot be built."""
    check_memory(spec, data)
    kind, params = spec.schedule
    try:
        model = build_model(**spec.build_kwargs(), dropout=spec.dropout, seed=spec.seed).to(data.device)
        if init_from is not None:
            model.load_state_dict(init_from.state_dict())
        return Trainer(
            model, data, optimizer=spec.optimizer, lr=spec.effective_lr, momentum=spec.momentum, betas=spec.betas,
            weight_decay=spec.weight_decay, batch_size=spec.batch_size,
            schedule=None if kind == "constant" else (kind, params), seed=spec.seed,
            probe_every=probe_every, max_probes=KEEP_PROBES, val_every=val_every, test_each_epoch=False,
        )
    except OUT_OF_MEMORY as exc:
        raise ResourceError(out_of_memory_text(spec, exc)) from None
    except RuntimeError as exc:  # any other failure of torch while building: say so in the view
        raise ValueError(f"cannot build {describe(spec)}: {type(exc).__name__}: {exc}") from None


def build_runs(base: RunSpec, overrides: Sequence[Mapping[str, Any]] | None, data: CIFAR10, *,
               probe_every: int, val_every: int | None) -> list[Run]:
    """One run of `base`, or one per override sharing the first run's initial weights and batches."""
    if not overrides:
        return build_specs([validate_spec(base)], None, data, probe_every=probe_every, val_every=val_every)
    return build_specs([compare_spec(base, o) for o in overrides], base, data, probe_every=probe_every,
                       val_every=val_every)


def build_specs(specs: Sequence[RunSpec], base: RunSpec | None, data: CIFAR10, *, probe_every: int,
                val_every: int | None) -> list[Run]:
    """A run per spec, all from the first run's initial weights; labels say how each differs from `base`."""
    trainers: list[Trainer] = []
    for spec in specs:
        init = trainers[0].model if trainers else None
        trainers.append(build_trainer(spec, data, probe_every=probe_every, val_every=val_every, init_from=init))
    labels = unique_labels([s.label or run_label(s, base) for s in specs])
    return [Run(label, spec, trainer) for label, spec, trainer in zip(labels, specs, trainers)]


def compare_spec(base: RunSpec, override: Mapping[str, Any] | str) -> RunSpec:
    """base with one compared run's differences; only COMPARE_KEYS may differ (same net, same batches)."""
    if isinstance(override, str):
        override = {"optimizer": override}
    elif not isinstance(override, Mapping):
        raise ValueError(f"each compared run is an optimizer name or a dict of settings, got {override!r}")
    bad = sorted(set(override) - set(COMPARE_KEYS))
    if bad:
        raise ValueError(f"compared runs share the net, its initial weights and the batches, so {bad[0]!r} "
                         f"cannot differ between them; they may differ in: {', '.join(COMPARE_KEYS)}")
    return with_changes(base, **dict(override))


def run_label(spec: RunSpec, base: RunSpec | None) -> str:
    """The optimizer, plus whatever a compared run changes besides it."""
    parts = [spec.optimizer]
    if base is not None:
        for key in ("lr", "momentum", "betas", "dropout", "weight_decay"):
            value = getattr(spec, key)
            if value is not None and value != getattr(base, key) and not (key == "lr" and value == spec.default_lr):
                parts.append(f"{key} {format_value(value)}")
        if spec.schedule != base.schedule:
            parts.append(spec.schedule[0])
    return " ".join(parts)


def unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def describe(spec: RunSpec) -> str:
    kw = spec.build_kwargs()
    size = f" width {kw['width']}" if "width" in kw else ""
    return f"{kw['name']}{size} at batch size {spec.batch_size}"


# ------------------------------------------------------------------------------- memory
def estimate_bytes(spec: RunSpec, data: CIFAR10) -> int:
    """Rough peak memory of one training step: parameters with gradients and optimizer state, plus
    the activations kept for backprop. Built on the meta device, so nothing is allocated."""
    with torch.device("meta"):
        net = build_model(**spec.build_kwargs(), dropout=spec.dropout, seed=spec.seed)
        sizes: list[int] = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()))
                 for m in net.modules() if not list(m.children())]
        try:
            net(torch.empty((spec.batch_size, *data.x_train.shape[1:])))
        finally:
            for h in hooks:
                h.remove()
    params = sum(p.numel() for p in net.parameters())
    states = 2 if spec.optimizer == "adam" else 1
    return 4 * (params * (2 + states) + 2 * sum(sizes))


def check_memory(spec: RunSpec, data: CIFAR10) -> None:
    need = estimate_bytes(spec, data)
    free = free_memory(data.device)
    if free is not None and need > MEMORY_HEADROOM * free:
        raise ResourceError(f"{describe(spec)} needs about {_gb(need)} of memory and {data.device.type} has "
                         f"{_gb(free)} free: choose a smaller model or batch size")


def out_of_memory_text(spec: RunSpec, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"out of memory with {describe(spec)} ({first[:160]}): choose a smaller model or batch size"


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**28 else f"{n / 2**20:.0f} MB"


__all__ = ["ResourceError", "MODEL_PRESETS", "BATCH_SIZES", "LIVE_KEYS", "RESTART_KEYS", "COMPARE_KEYS", "OUT_OF_MEMORY",
           "RunSpec", "Run", "validate_spec", "with_changes", "build_trainer", "build_runs", "build_specs", "compare_spec",
           "run_label", "estimate_bytes", "check_memory", "out_of_memory_text"]
