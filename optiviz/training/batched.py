"""K small nets trained at once on one device: stacked weights, one big matmul per layer.

K nets of one architecture become one set of stacked tensors ("fc1.weight" is (K, out, in)).
All K see the same minibatch, so the first layer of every net is one matmul (or one convolution)
over the shared input against the K weight matrices laid side by side: (B, D) x (D, K*H) instead
of K small (B, D) x (D, H) products, the batch is gathered once instead of K times, and the Python
overhead of a step is paid once. Later layers are batched matmuls (torch.baddbmm) and grouped
convolutions (groups=K). Gradients come from autograd on the sum of the K mean losses, which
separates per net, so each net gets exactly its own gradient.

Each net has its own lr, weight decay, momentum (any torch.optim hyperparameter, through the
engine's batched torch.optim-exact update rules with one row per net), dropout p and dropout
random stream. Seeds follow the Trainer's convention (data from `seed`, net k initialized from
`seed + k` and dropping from the stream `seed + k + 1`), so net 0 is exactly `ov.Trainer(seed=seed)`
and every net equals the same run done one by one within float32 rounding.

A net whose loss exceeds `divergence_factor` x its first loss (or is not finite) is aborted as the
Trainer stops: that step makes no update, and the net leaves the stack, frozen (its weights kept
aside, `state_of(i)` / `module(i)`), so the nets left train on at the cost of a smaller K: an
aborted run stops costing compute, which is the point of aborting early.

Where it pays (benchmarks/bench_many_nets.py, 2 CPU cores): the lectures' 2-layer MLP, 16 nets at
once take about half the time of 16 plain torch loops one after another, since the work is a few
large matmuls. The convnet is correct here too but slower at once on a CPU (about 2.6x at width
8): grouped convolutions are slow on CPU and K-times-larger activations fall out of cache. There,
train convnets one at a time (search/ensembles: parallel=1) unless a GPU is at hand.
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optiviz._validate import check_choice, check_int, check_unit_interval
from optiviz.engine.devices import check_allocation, pick_device
from optiviz.engine.optimizers import make_optimizer
from optiviz.engine.transforms import Transform
from optiviz.training.abort import DIVERGENCE_FACTOR, check_divergence_factor, diverging
from optiviz.training.data import CIFAR10, EpochOrder, load_cifar10, make_generator
from optiviz.training.models import Dropout, Net, build_model
from optiviz.engine.hparams import check_training_hparams
from optiviz.engine.optimizers import OPTIMIZERS

# Modules applied unchanged whatever the layout (elementwise, or per channel over (B, K*C, H, W)).
_PASS_THROUGH = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.Identity, nn.MaxPool2d, nn.AvgPool2d)
class StackedNet:
    """K nets of one architecture as stacked tensors; `forward(x)` gives (K, B, classes) logits.

    Layouts between layers: "shared" (B, ...) before the first weight layer, "chan" (B, K*C, H, W)
    for convolution features (net k owns channels k*C..(k+1)*C-1, so batch norm and pooling per
    channel are per net), "feat" (K, B, F) for flat features.
    """

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        nets = list(nets)
        if not nets:
            raise ValueError("nets must hold at least one model, got none")
        self.template = copy.deepcopy(nets[0]).cpu()
        keys = [tuple((k, tuple(v.shape)) for k, v in n.state_dict().items()) for n in nets]
        if any(k != keys[0] for k in keys[1:]):
            raise ValueError("nets must share one architecture (the same state_dict keys and shapes)")
        self.k = len(nets)
        self.device = next(nets[0].parameters()).device
        states = [n.state_dict() for n in nets]
        self.state: dict[str, torch.Tensor] = {
            key: torch.stack([st[key].detach() for st in states]).to(self.device).clone() for key in states[0]}
        self._ops = self._compile(self.template)
        param_keys = {k for k, _ in self.template.named_parameters()}
        self.param_names = [k for k in self.state if k in param_keys]
        for k in self.param_names:
            self.state[k].requires_grad_(True)
        drops = [m for m in nets[0].modules() if isinstance(m, Dropout)]
        p = [next((m.p for m in n.modules() if isinstance(m, Dropout)), 0.0) for n in nets]
        self.dropout = np.asarray(p, dtype=np.float64)
        self.dropout_mode = drops[0].mode if drops else "inverted"
        self.generators: list[torch.Generator | None] = [None] * self.k

    @classmethod
    def from_state(cls, template: nn.Module, state: dict[str, torch.Tensor], dropout: Any = None) -> StackedNet:
        """Rows of a stacked state dict (snapshots, averages) as a StackedNet on the state's device."""
        n = next(iter(state.values())).shape[0]
        nets = []
        for i in range(n):
            net = copy.deepcopy(template)
            net.load_state_dict({k: v[i] for k, v in state.items()})
            nets.append(net.to(next(iter(state.values())).device))
        out = cls(nets)
        if dropout is not None:
            out.dropout = np.broadcast_to(np.asarray(dropout, dtype=np.float64), (n,)).copy()
        return out

    @classmethod
    def from_stacked(cls, template: nn.Module, state: dict[str, torch.Tensor]) -> StackedNet:
        """K nets straight from stacked tensors (K, ...) of `template`'s state, with no per-net module
        built: many points of a loss landscape at once. Keys the forward pass never reads (a first
        layer computed elsewhere) may be left out. Dropout keeps the template's p."""
        out = cls.__new__(cls)
        out.template = template
        out.k = int(next(iter(state.values())).shape[0])
        out.device = next(iter(state.values())).device
        out.state = dict(state)
        out._ops = out._compile(template)
        out.param_names = [k for k, _ in template.named_parameters() if k in state]
        drops = [m for m in template.modules() if isinstance(m, Dropout)]
        out.dropout = np.full(out.k, drops[0].p if drops else 0.0)
        out.dropout_mode = drops[0].mode if drops else "inverted"
        out.generators = [None] * out.k
        return out

    @property
    def ops(self) -> list[tuple[str, str, nn.Module]]:
        """The layers as (kind, module name, module): "linear", "conv", "bn", "dropout", "flatten", "pass"."""
        return list(self._ops)

    # ----------------------------------------------------------------- structure
    def _compile(self, net: nn.Module) -> list[tuple[str, str, nn.Module]]:
        ops = []
        for name, module in net.named_children():
            if isinstance(module, nn.Linear):
                ops.append(("linear", name, module))
            elif isinstance(module, nn.Conv2d) and module.padding_mode == "zeros":
                ops.append(("conv", name, module))
            elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                ops.append(("bn", name, module))
            elif isinstance(module, Dropout):
                ops.append(("dropout", name, module))
            elif isinstance(module, nn.Flatten):
                ops.append(("flatten", name, module))
            elif isinstance(module, _PASS_THROUGH):
                ops.append(("pass", name, module))
            else:
                raise ValueError(f"model has a {type(module).__name__} layer ({name!r}) that cannot be stacked; "
                                 "supported: Linear, Conv2d (zero padding), BatchNorm1d/2d, optiviz Dropout, Flatten, "
                                 "ReLU/LeakyReLU/Tanh/Sigmoid/ELU, MaxPool2d/AvgPool2d")
        return ops

    @property
    def params(self) -> list[torch.Tensor]:
        return [self.state[k] for k in self.param_names]

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, *, train: bool = True, start: int = 0, layout: str = "shared") -> torch.Tensor:
        """Logits (K, B, classes) of the K nets on one shared batch x (B, ...).

        start / layout: begin at op `start` (of `ops`) on features already in that layout ("feat"
        (K, B, F) or "chan" (B, K*C, H, W)): the loss landscape computes the first layer itself."""
        k = self.k
        for kind, name, module in self._ops[start:]:
            if kind == "linear":
                w, b = self.state[f"{name}.weight"], self.state.get(f"{name}.bias")
                if layout != "feat" and (layout == "chan" or x.dim() != 2):
                    raise ValueError(f"layer {name!r}: a Linear layer on {x.dim()}-D input cannot be stacked "
                                     "(put a Flatten before it)")
                if layout == "shared":  # one (B, D) x (D, K*out) matmul for all K nets
                    y = F.linear(x, w.reshape(-1, w.shape[-1]), None if b is None else b.reshape(-1))
                    x = y.view(x.shape[0], k, -1).transpose(0, 1)
                elif b is None:
                    x = torch.bmm(x, w.transpose(1, 2))
                else:
                    x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
                layout = "feat"
            elif kind == "conv":
                w, b = self.state[f"{name}.weight"], self.state.get(f"{name}.bias")
                groups = module.groups * (1 if layout == "shared" else k)
                if layout == "feat":
                    raise ValueError(f"layer {name!r}: a convolution after flat features cannot be stacked")
                x = F.conv2d(x, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1),
                             module.stride, module.padding, module.dilation, groups)
                layout = "chan"
            elif kind == "bn":
                x = self._batch_norm(x, name, module, layout, train)
            elif kind == "dropout":
                x = self._dropout(x, layout, train, name)
            elif kind == "flatten":
                if layout == "chan":
                    x = x.reshape(x.shape[0], k, -1).transpose(0, 1)
                    layout = "feat"
                elif layout == "feat":
                    x = x.flatten(2)
                else:
                    x = module(x)
            else:
                x = module(x)
        if layout != "feat":
            raise ValueError("the model must end in a Linear layer to be stacked")
        return x

    __call__ = forward

    def _batch_norm(self, x, name, module, layout, train):
        s = self.state
        w, b = s.get(f"{name}.weight"), s.get(f"{name}.bias")
        rm, rv = s.get(f"{name}.running_mean"), s.get(f"{name}.running_var")
        momentum = module.momentum
        if train and module.track_running_stats and rm is not None:
            tracked = s[f"{name}.num_batches_tracked"]
            tracked.add_(1)
            if momentum is None:  # cumulative average, as torch does
                momentum = 1.0 / float(tracked[0])
        use_batch = train or rm is None
        flat = lambda t: None if t is None else t.reshape(-1)  # noqa: E731
        if layout == "chan":
            return F.batch_norm(x, flat(rm), flat(rv), flat(w), flat(b), use_batch, momentum or 0.0, module.eps)
        if layout != "feat":
            raise ValueError(f"layer {name!r}: batch norm before the first weight layer cannot be stacked")
        kk, bsz = x.shape[0], x.shape[1]
        y = x.transpose(0, 1).reshape(bsz, -1)
        y = F.batch_norm(y, flat(rm), flat(rv), flat(w), flat(b), use_batch, momentum or 0.0, module.eps)
        return y.view(bsz, kk, -1).transpose(0, 1)

    def _dropout(self, x, layout, train, name):
        p = self.dropout
        if not np.any(p > 0):
            return x
        keep = 1.0 - p
        if layout == "shared":
            raise ValueError(f"layer {name!r}: dropout before the first weight layer cannot be stacked")
        if not train:
            if self.dropout_mode == "inverted":
                return x
            scale = torch.as_tensor(keep, dtype=x.dtype, device=x.device)
            return x * (scale.view(-1, 1, 1) if layout == "feat" else scale.repeat_interleave(x.shape[1] // self.k).view(1, -1, 1, 1))
        # each net draws its own mask from its own stream, with the shape and call its single net makes
        shape = tuple(x.shape[1:]) if layout == "feat" else (x.shape[0], x.shape[1] // self.k, *x.shape[2:])
        masks = []
        for i in range(self.k):
            if p[i] == 0.0:
                masks.append(torch.ones(shape, dtype=x.dtype, device=x.device))
                continue
            m = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep[i], generator=self.generators[i])
            masks.append(m.div_(keep[i]) if self.dropout_mode == "inverted" else m)
        return x * torch.stack(masks) if layout == "feat" else x * torch.cat(masks, dim=1)

    # ----------------------------------------------------------------- rows
    def row_state(self, i: int) -> dict[str, torch.Tensor]:
        """Net i's state dict (copies, detached)."""
        return {k: v[i].detach().clone() for k, v in self.state.items()}

    def net(self, i: int) -> nn.Module:
        """Row i as an ordinary module (a copy): for one-by-one checks, probes, or saving."""
        i = check_int("i", i, 0, self.k - 1)
        net = copy.deepcopy(self.template)
        net.load_state_dict(self.row_state(i))
        if isinstance(net, Net):
            net.set_dropout(float(self.dropout[i]))
        return net.to(self.device)

    def keep_rows(self, rows: Sequence[int]) -> None:
        """Keep only these nets (in this order): what is left of the stack after some were aborted."""
        idx = torch.as_tensor(list(rows), dtype=torch.long, device=self.device)
        params = set(self.param_names)
        for key, value in self.state.items():
            self.state[key] = value.detach()[idx].clone().requires_grad_(key in params)
        self.dropout = self.dropout[idx.cpu().numpy()]
        self.generators = [self.generators[i] for i in rows]
        self.k = len(rows)

    def stacked_state(self) -> dict[str, torch.Tensor]:
        """A detached copy of every stacked tensor (parameters and batch-norm buffers)."""
        return {k: v.detach().clone() for k, v in self.state.items()}

    @torch.no_grad()
    def logits(self, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
        """Eval-mode logits (K, N, classes) over x in chunks."""
        out = [self.forward(x[i:i + batch_size], train=False) for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out, dim=1) if out else torch.empty(self.k, 0, 0, device=self.device)


@dataclass
class ManyRecord:
    """What `ManyTrainer.run` hands its callback: the steps since the last record, then per-net status.

    train_loss is (len(steps), K); NaN where a net had already been aborted. val_acc / val_loss are
    (K,) when a validation pass happened at this record, else None.
    """

    steps: np.ndarray
    epoch: int
    train_loss: np.ndarray
    val_acc: np.ndarray | None
    val_loss: np.ndarray | None
    aborted: np.ndarray
    abort_step: np.ndarray


@dataclass
class ManyRun:
    """K runs trained at once. Arrays have one column per net.

    train_loss (steps, K): loss per step, NaN after the step that aborted a net (that step's loss
    is kept: it is what tripped the rule). val_step (V,), val_acc / val_loss (V, K), NaN for a net
    once aborted. abort_step is -1 for nets that were never aborted.
    """

    hparams: dict[str, np.ndarray]
    seeds: np.ndarray
    train_loss: np.ndarray
    val_step: np.ndarray
    val_acc: np.ndarray
    val_loss: np.ndarray
    initial_loss: np.ndarray
    aborted: np.ndarray
    abort_step: np.ndarray
    steps: int
    epochs: int
    config: dict[str, Any]
    trainer: ManyTrainer | None = field(default=None, repr=False)

    @property
    def k(self) -> int:
        return int(self.seeds.shape[0])

    @property
    def final_val_acc(self) -> np.ndarray:
        """(K,) validation accuracy at the last validation pass (NaN before the first)."""
        return self.val_acc[-1] if len(self.val_acc) else np.full(self.k, np.nan)


class ManyTrainer:
    """Train K nets of one architecture at once on shared minibatches, each with its own hyperparameters.

    model: a name from optiviz.training.models (built K times with the model keywords) or a list of
    K nets of one architecture. lr, weight_decay, momentum, dropout and any other torch.optim
    hyperparameter of `optimizer` (betas, eps, alpha...) take a scalar or one value per net; K is
    `k`, else the longest per-net list, else len(model). dropout None keeps the model's default.
    seed: minibatch order (as the Trainer's); net k is initialized from init_seeds[k] (default
    seed + k; `same_init=True` gives every net the weights of seed) and drops from the stream
    init_seeds[k] + 1. val_every: steps between validation passes (None: at each epoch end; 0: never).
    transform: a row-wise gradient transform (engine/transforms.py) applied to each net's whole
    gradient as one row of a (K, P) tensor before the update, as the Trainer does for one net, so
    clip_by_norm clips each net's global norm and annealed_noise(eta=[...]) gives each net its own noise.
    Per-net values there are one per row of the whole stack: give them with divergence_factor=None
    (an aborted net leaves the stack, and the rows would no longer match).
    """

    def __init__(
        self,
        model: str | Sequence[nn.Module] = "mlp",
        data: CIFAR10 | None = None,
        *,
        k: int | None = None,
        optimizer: str = "sgd",
        lr: Any = None,
        weight_decay: Any = 0.0,
        momentum: Any = None,
        dropout: Any = None,
        batch_size: int = 128,
        seed: int = 0,
        init_seeds: Sequence[int] | None = None,
        same_init: bool = False,
        val_every: int | None = None,
        eval_batch_size: int = 500,
        divergence_factor: float | None = DIVERGENCE_FACTOR,
        transform: Transform | None = None,
        device: str | torch.device | None = None,
        width: int | None = None,
        depth: int | None = None,
        batch_norm: bool | None = None,
        activation: str = "relu",
        init: str | None = None,
        dropout_mode: str = "inverted",
        **hparams: Any,
    ) -> None:
        self.optimizer_name = check_choice("optimizer", optimizer, OPTIMIZERS)
        self.seed = check_int("seed", seed)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.val_every = None if val_every is None else check_int("val_every", val_every, 0)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1)
        self.divergence_factor = check_divergence_factor(divergence_factor)
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be a gradient transform (callable g, t -> g), got {transform!r}")
        self.transform = transform
        if data is None:
            data = load_cifar10(device=device)
        elif not isinstance(data, CIFAR10):
            raise ValueError(f"data must be a CIFAR10 from ov.load_cifar10(), got {type(data).__name__}")
        self.device = pick_device(device) if device is not None else data.device
        self.data = data.to(self.device)

        given = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, dropout=dropout, **hparams)
        self.k = _count(k, given, None if isinstance(model, str) else model)
        kw = dict(width=width, depth=depth, batch_norm=batch_norm, activation=activation, init=init,
                  dropout_mode=dropout_mode)
        if isinstance(model, str):  # K nets must fit (k=10**9 would build nets until the kernel dies)
            with torch.device("meta"):
                weights = sum(p.numel() for p in build_model(model, **kw).parameters())
            check_allocation(f"k={self.k:,} nets of {weights:,} weights", 16 * weights * self.k + 64 * self.k,
                             self.device, "train fewer nets at once")
        if init_seeds is None:
            seeds = [self.seed + i for i in range(self.k)]
        else:
            seeds = [check_int("init_seeds", s) for s in init_seeds]
            if len(seeds) != self.k:
                raise ValueError(f"init_seeds must have one seed per net (length {self.k}), got length {len(seeds)}")
        self.seeds = np.asarray(seeds, dtype=np.int64)

        if isinstance(model, str):
            nets = [build_model(model, seed=self.seed if same_init else s, **kw) for s in seeds]
        else:
            nets = list(model)
            if not all(isinstance(n, nn.Module) for n in nets):
                raise ValueError("model must be a name ('mlp', 'deep_mlp', 'convnet') or a list of torch modules")
        self.net = StackedNet([n.to(self.device) for n in nets])
        if dropout is not None:
            p = np.broadcast_to(_per_model("dropout", dropout, self.k), (self.k,)).copy()
            check_unit_interval("dropout", p)
            if not any(isinstance(m, Dropout) for m in nets[0].modules()) and np.any(p > 0):
                raise ValueError("dropout cannot be set: this model has no optiviz Dropout modules")
            self.net.dropout = p
        self.net.generators = [make_generator(self.device, int(s) + 1) for s in self.seeds]

        self.hparams = self._optimizer_hparams(lr, weight_decay, momentum, hparams)
        self.optimizers = [
            make_optimizer(self.optimizer_name, self.k, p[0].numel(), device=self.device, dtype=p.dtype, **self.hparams)
            for p in self.net.params
        ]

        self._data_gen = make_generator(self.device, self.seed)
        self.batches = EpochOrder(self.data.n_train, self.batch_size, self._data_gen, self.device)  # the Trainer's order
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.step_count = 0
        self.epoch = 0
        self._dropout = self.net.dropout.copy()
        self._live = np.arange(self.k)  # which nets the rows of self.net are; aborted nets leave the stack
        self._live_t = torch.arange(self.k, device=self.device)
        self._frozen: dict[int, dict[str, torch.Tensor]] = {}
        self._alive = torch.ones(self.k, dtype=torch.bool, device=self.device)
        self._initial: torch.Tensor | None = None
        self._abort_step = torch.full((self.k,), -1, dtype=torch.int64, device=self.device)
        self._losses: list[torch.Tensor] = []
        self._stop = threading.Event()
        self._val: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.config = dict(model=dict(getattr(nets[0], "config", {"model": type(nets[0]).__name__})),
                           optimizer=self.optimizer_name, batch_size=self.batch_size, seed=self.seed,
                           same_init=bool(same_init), device=str(self.device), val_every=self.val_every,
                           divergence_factor=self.divergence_factor)

    # ----------------------------------------------------------------- settings
    def _optimizer_hparams(self, lr, weight_decay, momentum, extra) -> dict[str, Any]:
        """The Trainer's checks (engine/hparams.check_training_hparams), then one value or one per net."""
        dtype = self.net.params[0].dtype if self.net.params else torch.float32  # values must fit the weights'
        hp = check_training_hparams(self.optimizer_name, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, **extra),
                                    dtype)
        out = {}
        for key, value in hp.items():
            if key == "betas":
                out[key] = tuple(_per_model(f"betas[{i}]", v, self.k) for i, v in enumerate(value)) \
                    if isinstance(value, (tuple, list)) and len(value) == 2 else value
            elif isinstance(value, bool):
                out[key] = value
            else:
                out[key] = _per_model(key, value, self.k)
        return out

    @property
    def per_model(self) -> dict[str, np.ndarray]:
        """(K,) arrays of lr, weight_decay, momentum (0 where the optimizer has none) and dropout."""
        out = {}
        for key in ("lr", "weight_decay", "momentum"):
            v = self.hparams.get(key, 0.0)
            out[key] = np.broadcast_to(np.asarray(v, dtype=np.float64), (self.k,)).copy()
        out["dropout"] = self._dropout.copy()
        for key, v in self.hparams.items():
            if key == "betas":
                for i, part in enumerate(v):
                    out[f"beta{i + 1}"] = np.broadcast_to(np.asarray(part, dtype=np.float64), (self.k,)).copy()
            elif key not in out and not isinstance(v, bool):
                out[key] = np.broadcast_to(np.asarray(v, dtype=np.float64), (self.k,)).copy()
        return out

    # ----------------------------------------------------------------- stepping
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.batches.indices()
        return self.data.x_train[idx], self.data.y_train[idx]

    def step(self) -> torch.Tensor:
        """One update of every live net on the next minibatch; returns the (K,) losses on the device
        (NaN for nets aborted before this step)."""
        if not len(self._live):
            raise RuntimeError("every net has been aborted; nothing left to train")
        x, y = self._batch()
        t = self.step_count
        logits = self.net.forward(x, train=True)
        n, b, c = logits.shape
        losses = F.cross_entropy(logits.reshape(n * b, c), y.repeat(n), reduction="none").view(n, b).mean(dim=1)
        with torch.no_grad():
            loss = losses.detach()
            if self._initial is None:
                self._initial = loss.clone()
            bad = diverging(loss, self._initial[self._live_t], self.divergence_factor)
            recorded = torch.full((self.k,), float("nan"), device=self.device, dtype=loss.dtype)
            recorded[self._live_t] = loss
            any_bad = bool(bad.any())
            if any_bad:
                self._abort_step[self._live_t[bad]] = t
                self._alive[self._live_t[bad]] = False
        for p in self.net.params:
            p.grad = None
        losses.sum().backward()
        with torch.no_grad():
            if self.transform is not None:
                self._transform_gradients(n, t)
            dead = bad.view(-1, 1) if any_bad else None
            scale = (~bad).to(loss.dtype).view(-1, 1) if any_bad else None
            for p, opt in zip(self.net.params, self.optimizers):
                g = p.grad.view(n, -1)
                if dead is not None:
                    g.masked_fill_(dead, 0.0)  # the aborting step updates nothing (NaN gradients included)
                opt.step(p.detach().view(n, -1), g, lr_scale=scale)
        if any_bad:
            self._drop(bad.cpu().numpy())
        self._losses.append(recorded)
        self.step_count += 1
        if self.batches.advance():
            self.epoch += 1
        return recorded

    def _transform_gradients(self, n: int, t: int) -> None:
        """Each live net's gradient as one row of (n, P) through the transform, written back in place."""
        grads = [p.grad.view(n, -1) for p in self.net.params]
        out = self.transform(torch.cat(grads, dim=1), t)
        offset = 0
        for g in grads:
            g.copy_(out[:, offset:offset + g.shape[1]])
            offset += g.shape[1]

    def _drop(self, bad: np.ndarray) -> None:
        """Move aborted nets out of the stack (their state kept aside, frozen), so they cost nothing more."""
        for row in np.flatnonzero(bad):
            self._frozen[int(self._live[row])] = self.net.row_state(int(row))
        keep = np.flatnonzero(~bad)
        self._live = self._live[keep]
        self._live_t = torch.as_tensor(self._live, device=self.device)
        if not len(keep):
            return
        self.net.keep_rows(keep.tolist())
        self.optimizers = [_keep_optimizer_rows(opt, self.optimizer_name, keep) for opt in self.optimizers]

    @property
    def live(self) -> np.ndarray:
        """Indices (0..K-1) of the nets still training, in the order of self.net's rows."""
        return self._live.copy()

    def state_of(self, i: int) -> dict[str, torch.Tensor]:
        """Net i's state dict (a copy), whether it is still training or was aborted and frozen."""
        i = check_int("i", i, 0, self.k - 1)
        if i in self._frozen:
            return {k: v.clone() for k, v in self._frozen[i].items()}
        return self.net.row_state(int(np.flatnonzero(self._live == i)[0]))

    def module(self, i: int) -> nn.Module:
        """Net i as an ordinary module (a copy), with its dropout p: for one-by-one checks, probes, saving."""
        net = copy.deepcopy(self.net.template)
        net.load_state_dict(self.state_of(i))
        if isinstance(net, Net):
            net.set_dropout(float(self._dropout[i]))
        return net.to(self.device)

    @property
    def alive(self) -> np.ndarray:
        return self._alive.cpu().numpy().copy()

    @property
    def abort_step(self) -> np.ndarray:
        return self._abort_step.cpu().numpy().copy()

    def run(self, steps: int | None = None, *, epochs: int | None = None,
            callback: Callable[[ManyRecord], Any] | None = None, record_every: int = 0,
            step_callback: Callable[[ManyTrainer], Any] | None = None) -> ManyRun:
        """Run `steps` steps or `epochs` epochs; ends early when every net is aborted, when
        step_callback returns False, or at the step boundary after stop() (from any thread).

        callback gets a ManyRecord at each validation pass, every `record_every` steps (0: no
        more) and at the end; losses move to the host only then. step_callback(trainer) runs after
        every step (snapshots, moving averages).
        """
        record_every = check_int("record_every", record_every, 0)
        if (steps is None) == (epochs is None):
            raise ValueError("give exactly one of steps or epochs")
        total = check_int("steps", steps, 0) if steps is not None else \
            check_int("epochs", epochs, 0) * self.steps_per_epoch
        self._stop.clear()
        start_loss = len(self._losses)
        for _ in range(total):
            if self._stop.is_set():
                break
            self.step()
            if step_callback is not None and step_callback(self) is False:
                self._stop.set()
            due = (self.val_every is None and self.batches.pos == 0) or \
                  (bool(self.val_every) and self.step_count % self.val_every == 0)
            if due:
                self._validate()
            if callback is not None and (due or (record_every and self.step_count % record_every == 0)):
                callback(self._record(start_loss, due))
                start_loss = len(self._losses)
            if not len(self._live):
                break
        if callback is not None and len(self._losses) > start_loss:
            callback(self._record(start_loss, False))
        return self.result()

    def stop(self) -> None:
        """End `run()` at the next step boundary (a widget's stop button; safe from another thread)."""
        self._stop.set()

    def _validate(self) -> None:
        loss, acc = self.evaluate("val")
        self._val.append((self.step_count, loss, acc))

    def _record(self, start: int, with_val: bool) -> ManyRecord:
        chunk = self._losses[start:]
        losses = torch.stack(chunk).cpu().numpy().astype(np.float64) if chunk else np.zeros((0, self.k))
        val = self._val[-1] if with_val else None
        return ManyRecord(steps=np.arange(start, start + len(chunk)), epoch=self.epoch, train_loss=losses,
                          val_acc=None if val is None else val[2], val_loss=None if val is None else val[1],
                          aborted=~self.alive, abort_step=self.abort_step)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode logits (K, N, classes) of all K nets on x, aborted (frozen) nets included."""
        if not self._frozen:
            return self.net.logits(x, batch_size=self.eval_batch_size)
        states = [self.state_of(i) for i in range(self.k)]
        stacked = {key: torch.stack([st[key] for st in states]) for key in states[0]}
        return StackedNet.from_state(self.net.template, stacked, self._dropout).logits(x, batch_size=self.eval_batch_size)

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> tuple[np.ndarray, np.ndarray]:
        """(K,) mean cross-entropy and (K,) accuracy on a split, eval mode; NaN on an empty split and
        for aborted nets (their numbers mean nothing; `module(i)` still gives the frozen net)."""
        x, y = self.data.split(split)
        n = int(y.shape[0])
        loss_out, acc_out = np.full(self.k, np.nan), np.full(self.k, np.nan)
        if n == 0 or not len(self._live):
            return loss_out, acc_out
        rows = self.net.k
        total = torch.zeros(rows, device=self.device, dtype=torch.float64)
        correct = torch.zeros(rows, device=self.device, dtype=torch.float64)
        for i in range(0, n, self.eval_batch_size):
            logits = self.net.forward(x[i:i + self.eval_batch_size], train=False)
            target = y[i:i + self.eval_batch_size]
            _, b, c = logits.shape
            ce = F.cross_entropy(logits.reshape(rows * b, c), target.repeat(rows), reduction="none").view(rows, b)
            total += ce.sum(dim=1).double()
            correct += (logits.argmax(dim=2) == target).sum(dim=1).double()
        loss_out[self._live] = (total / n).cpu().numpy()
        acc_out[self._live] = (correct / n).cpu().numpy()
        return loss_out, acc_out

    def result(self) -> ManyRun:
        losses = torch.stack(self._losses).cpu().numpy().astype(np.float64) if self._losses else np.zeros((0, self.k))
        val_step = np.asarray([v[0] for v in self._val], dtype=np.int64)
        val_loss = np.stack([v[1] for v in self._val]) if self._val else np.zeros((0, self.k))
        val_acc = np.stack([v[2] for v in self._val]) if self._val else np.zeros((0, self.k))
        initial = self._initial.cpu().numpy().astype(np.float64) if self._initial is not None else np.full(self.k, np.nan)
        return ManyRun(hparams=self.per_model, seeds=self.seeds.copy(), train_loss=losses, val_step=val_step,
                       val_acc=val_acc, val_loss=val_loss, initial_loss=initial, aborted=~self.alive,
                       abort_step=self.abort_step, steps=self.step_count, epochs=self.epoch, config=dict(self.config),
                       trainer=self)


def _keep_optimizer_rows(opt: Any, engine: str, keep: np.ndarray) -> Any:
    """The same batched optimizer for a subset of its rows: state, step count and per-row settings kept."""
    idx = torch.as_tensor(keep, dtype=torch.long, device=opt.device)

    def rows(v: Any) -> Any:
        if isinstance(v, tuple):
            return tuple(rows(x) for x in v)
        if isinstance(v, np.ndarray):
            v = v[keep]
            return float(v[0]) if np.all(v == v[0]) else v  # equal settings go back to torch's scalar path
        return v

    sd = opt.state_dict()
    hp = {k: rows(v) for k, v in sd["hparams"].items()}
    new = make_optimizer(engine, len(keep), opt.p, device=opt.device, dtype=opt.dtype, **hp)
    scale = sd["lr_scale"]
    new.load_state_dict({
        **sd, "shape": (len(keep), opt.p), "hparams": hp,
        "state": {k: v[idx] for k, v in sd["state"].items()},
        "started_rows": None if sd["started_rows"] is None else sd["started_rows"][idx],
        "lr_scale": scale[idx] if isinstance(scale, torch.Tensor) and scale.shape[0] == opt.n else scale,
    })
    return new


def _count(k: int | None, given: dict[str, Any], nets: Sequence[nn.Module] | None) -> int:
    """K from k=, else the per-net lists, else the list of nets; every list must agree."""
    lengths = {}
    for name, value in given.items():
        if name == "betas" and isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                if np.ndim(v) == 1:
                    lengths[f"betas[{i}]"] = len(v)
        elif value is not None and not isinstance(value, bool) and np.ndim(value) == 1:
            lengths[name] = len(value)
    if nets is not None:
        lengths["model"] = len(nets)
    if k is not None:
        k = check_int("k", k, 1)
    else:
        k = max(lengths.values(), default=1)
    for name, n in lengths.items():
        if n != k:
            raise ValueError(f"{name} must be a scalar or have one value per net (length {k}), got length {n}")
    return k


def _per_model(name: str, value: Any, k: int) -> float | np.ndarray:
    arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim != 1 or arr.shape[0] != k:
        raise ValueError(f"{name} must be a scalar or have one value per net (length {k}), got shape {arr.shape}")
    return arr


def train_many(
    model: str | Sequence[nn.Module] = "mlp",
    optimizer: str = "sgd",
    *,
    epochs: int | None = None,
    steps: int | None = None,
    data: CIFAR10 | None = None,
    callback: Callable[[ManyRecord], Any] | None = None,
    **kwargs: Any,
) -> ManyRun:
    """Train K nets at once (one epoch unless epochs or steps say otherwise) and return the runs.

    Keywords are ManyTrainer's: lr, weight_decay, momentum, dropout (scalar or one per net), k,
    seed, init_seeds, same_init, batch_size, val_every, divergence_factor, model keywords.
    `run.trainer.module(i)` is net i as an ordinary module.
    """
    if epochs is not None and steps is not None:
        raise ValueError("give epochs or steps, not both")
    trainer = ManyTrainer(model, data, optimizer=optimizer, **kwargs)
    if steps is not None:
        return trainer.run(steps, callback=callback)
    return trainer.run(epochs=1 if epochs is None else epochs, callback=callback)


__all__ = ["StackedNet", "ManyTrainer", "ManyRun", "ManyRecord", "train_many"]
