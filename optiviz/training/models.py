"""The small nets of the lectures, built so that each toggle the lectures talk about is one argument.

Every module has a readable name ("conv1", "bn1", "act1", "drop1", "fc2") so views can label
layers, and `Net.probe_layers` says which module's output counts as each layer's activation.
Initialization is written out with the lectures' formulas and a private generator, so a seed
gives the same weights whatever else uses torch's global random state.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from optiviz.engine.devices import check_allocation
from optiviz._validate import check_choice, check_int, check_unit_interval

MODELS = ("mlp", "deep_mlp", "convnet")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "elu")
INITS = ("xavier", "he", "small_normal", "zero", "torch")
DROPOUT_MODES = ("inverted", "vanilla")

# width, depth, batch_norm, dropout, init per model (init None: he for the ReLU family, xavier for
# tanh / sigmoid). mlp is the lectures' 2-layer net with 50 hidden units; convnet is the reference
# measured on the bundled subset (0.57 test accuracy in 8 epochs), with torch's default init as
# measured: with he the unnormalized head starts with logits ~2x larger (first loss ~3.4 instead of
# ~2.4) and ends ~0.07 lower after 10 epochs at the reference lr.
DEFAULTS: dict[str, dict] = {
    "mlp": dict(width=50, depth=2, batch_norm=False, dropout=0.0, init=None),
    "deep_mlp": dict(width=100, depth=6, batch_norm=False, dropout=0.0, init=None),
    "convnet": dict(width=16, depth=3, batch_norm=True, dropout=0.3, init="torch"),
}
CONVNET_HEAD = 128
SMALL_NORMAL_STD = 0.01  # the lectures' W = 0.01 * randn(...)


class Dropout(nn.Module):
    """Dropout with drop probability `p` that can be changed between steps, inverted or vanilla.

    inverted: training multiplies by mask / (1 - p); evaluation is the identity.
    vanilla:  training multiplies by the mask; evaluation scales by the keep probability 1 - p.
    Both give the same expected activation in training and at test time; only where the
    scaling happens differs (what the lectures contrast).
    """

    def __init__(self, p: float = 0.0, mode: str = "inverted") -> None:
        super().__init__()
        self.p = float(check_unit_interval("dropout", p))
        self.mode = check_choice("dropout_mode", mode, DROPOUT_MODES)
        self.generator: torch.Generator | None = None  # set by the trainer for reproducible masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        if p == 0.0:
            return x
        keep = 1.0 - p
        if not self.training:
            return x if self.mode == "inverted" else x * keep
        mask = torch.empty_like(x).bernoulli_(keep, generator=self.generator)
        if self.mode == "inverted":
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


@dataclass(frozen=True)
class ProbeLayer:
    """One weight layer as views see it: its name, the weight module, and where its activation is read."""

    name: str
    module: str  # name of the Linear / Conv2d module
    output: str  # module whose output is this layer's activation (nonlinearity, or the layer for logits)
    nonlinearity: str | None  # activation name, None for the output logits


class Net(nn.Sequential):
    """nn.Sequential with named children plus what the probes need to know about the layers."""

    def __init__(self, modules: OrderedDict, *, name: str, activation: str, probe_layers: list[ProbeLayer], config: dict):
        super().__init__(modules)
        self.name = name
        self.activation = activation
        self.probe_layers = tuple(probe_layers)
        self.config = config

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.probe_layers)

    def dropouts(self) -> list[Dropout]:
        return [m for m in self.modules() if isinstance(m, Dropout)]

    def set_dropout(self, p: float) -> None:
        """Change p in every dropout module; the next forward pass uses it."""
        p = float(check_unit_interval("dropout", p))
        for m in self.dropouts():
            m.p = p

    def set_generator(self, generator: torch.Generator | None) -> None:
        for m in self.dropouts():
            m.generator = generator


def build_model(
    name: str = "convnet",
    *,
    width: int | None = None,
    depth: int | None = None,
    batch_norm: bool | None = None,
    dropout: float | None = None,
    dropout_mode: str = "inverted",
    activation: str = "relu",
    init: str | None = None,
    seed: int = 0,
    in_shape: tuple[int, int, int] = (3, 32, 32),
    n_classes: int = 10,
) -> Net:
    """Build one of MODELS; None means the model's default (see DEFAULTS).

    width: hidden units (MLPs) or channels of the first conv block (doubling per block).
    depth: number of Linear layers (MLPs; 2 is the lectures' 2-layer net) or conv blocks (convnet).
    init: xavier (U[-b, b], b = sqrt(6 / (fan_in + fan_out))), he (N(0, 2 / fan_in)),
    small_normal (N(0, 0.01^2)), zero (never breaks symmetry) or torch (torch.nn's default,
    U[-1/sqrt(fan_in), 1/sqrt(fan_in)] for weights and biases). Default: the model's DEFAULTS
    entry, else he for the ReLU family and xavier for tanh / sigmoid. Biases start at zero (except
    with torch), batch-norm scale at one.
    Dropout modules are always present (p = 0 is free) so p can be raised mid-run.
    """
    name = check_choice("model", name, MODELS)
    activation = check_choice("activation", activation, ACTIVATIONS)
    dropout_mode = check_choice("dropout_mode", dropout_mode, DROPOUT_MODES)
    d = DEFAULTS[name]
    min_depth = 1 if name == "convnet" else 2
    width = check_int("width", d["width"] if width is None else width, 1)
    depth = check_int("depth", d["depth"] if depth is None else depth, min_depth)
    batch_norm = bool(d["batch_norm"] if batch_norm is None else batch_norm)
    dropout = float(check_unit_interval("dropout", d["dropout"] if dropout is None else dropout))
    if init is None:
        init = d["init"]
    if init is None:
        init = "xavier" if activation in ("tanh", "sigmoid") else "he"
    init = check_choice("init", init, INITS)
    seed = check_int("seed", seed)
    check_int("n_classes", n_classes, 2)
    config = dict(model=name, width=width, depth=depth, batch_norm=batch_norm, dropout=dropout,
                  dropout_mode=dropout_mode, activation=activation, init=init, seed=seed)

    make = _convnet if name == "convnet" else _mlp
    args = (in_shape, n_classes, width, depth, batch_norm, dropout, dropout_mode, activation)
    if torch.get_default_device().type != "meta":  # (a net counted on the meta device allocates nothing)
        with torch.device("meta"):  # count the weights first, allocating nothing: width=10**9 must not take the machine
            n_weights = sum(p.numel() for m in make(*args)[0].values() for p in m.parameters())
        # at least the weights and their gradients, in float32 (a trainer's fuller estimate is its own)
        check_allocation(f"model {name!r} with width={width:,} and depth={depth}", 8 * n_weights,
                         torch.device("cpu"), "choose a smaller width or depth")
    modules, layers = make(*args)
    net = Net(modules, name=name, activation=activation, probe_layers=layers, config=config)
    initialize(net, init, seed=seed)
    return net


def _act(activation: str) -> nn.Module:
    return {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "elu": nn.ELU,
    }[activation]()


def _mlp(in_shape, n_classes, width, depth, batch_norm, dropout, dropout_mode, activation):
    modules: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    layers = []
    fan_in = math.prod(in_shape)
    for i in range(1, depth):
        modules[f"fc{i}"] = nn.Linear(fan_in, width)
        if batch_norm:
            modules[f"bn{i}"] = nn.BatchNorm1d(width)
        modules[f"act{i}"] = _act(activation)
        modules[f"drop{i}"] = Dropout(dropout, dropout_mode)
        layers.append(ProbeLayer(f"fc{i}", f"fc{i}", f"act{i}", activation))
        fan_in = width
    modules[f"fc{depth}"] = nn.Linear(fan_in, n_classes)
    layers.append(ProbeLayer(f"fc{depth}", f"fc{depth}", f"fc{depth}", None))
    return modules, layers


def _convnet(in_shape, n_classes, width, depth, batch_norm, dropout, dropout_mode, activation):
    """conv3x3 - [bn] - act - maxpool2 per block, then a 128-unit head with dropout before the logits."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    layers = []
    channels, h, w = in_shape
    for i in range(1, depth + 1):
        out = width * 2 ** (i - 1)
        modules[f"conv{i}"] = nn.Conv2d(channels, out, 3, padding=1, bias=not batch_norm)
        if batch_norm:
            modules[f"bn{i}"] = nn.BatchNorm2d(out)
        modules[f"act{i}"] = _act(activation)
        layers.append(ProbeLayer(f"conv{i}", f"conv{i}", f"act{i}", activation))
        if h >= 2 and w >= 2:
            modules[f"pool{i}"] = nn.MaxPool2d(2)
            h, w = h // 2, w // 2
        channels = out
    modules["flatten"] = nn.Flatten()
    modules["fc1"] = nn.Linear(channels * h * w, CONVNET_HEAD)
    modules[f"act{depth + 1}"] = _act(activation)
    modules["drop1"] = Dropout(dropout, dropout_mode)
    modules["fc2"] = nn.Linear(CONVNET_HEAD, n_classes)
    layers.append(ProbeLayer("fc1", "fc1", f"act{depth + 1}", activation))
    layers.append(ProbeLayer("fc2", "fc2", "fc2", None))
    return modules, layers


@torch.no_grad()
def initialize(net: nn.Module, init: str, *, seed: int = 0) -> None:
    """(Re)initialize every Linear / Conv2d weight with the lectures' formulas from a private generator."""
    init = check_choice("init", init, INITS)
    gen = torch.Generator().manual_seed(int(seed))
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            w = module.weight
            fan_out, fan_in = w.shape[0], w[0].numel()
            if isinstance(module, nn.Conv2d):
                fan_out = w.shape[0] * w[0, 0].numel()
            if init == "zero":
                new = torch.zeros(w.shape)
            elif init == "small_normal":
                new = torch.randn(w.shape, generator=gen) * SMALL_NORMAL_STD
            elif init == "torch":  # torch.nn's default: kaiming_uniform(a=sqrt(5)) = U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
                bound = 1.0 / math.sqrt(fan_in)
                new = torch.rand(w.shape, generator=gen) * (2 * bound) - bound
            elif init == "he":
                new = torch.randn(w.shape, generator=gen) * math.sqrt(2.0 / fan_in)
            else:  # xavier / glorot uniform
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                new = torch.rand(w.shape, generator=gen) * (2 * bound) - bound
            w.copy_(new)
            if module.bias is not None:
                if init == "torch":
                    bound = 1.0 / math.sqrt(fan_in)
                    module.bias.copy_(torch.rand(module.bias.shape, generator=gen) * (2 * bound) - bound)
                else:
                    module.bias.zero_()
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.reset_parameters()
            module.reset_running_stats()


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


__all__ = ["MODELS", "ACTIVATIONS", "INITS", "DROPOUT_MODES", "Dropout", "Net", "ProbeLayer", "build_model",
           "initialize", "count_parameters"]
