"""Fine-tuning (lecture 7 recap, CSE176): features learned on one task, reused on another.

Pretrain a net on five CIFAR-10 classes, then move it to the other five with few examples:
  - from scratch: the same net, randomly initialized, trained on the new classes only;
  - frozen features: the pretrained layers fixed (their outputs computed once), a new last
    layer trained on top: cheap, and good when the new data are few;
  - fine-tuning: every layer trained, the pretrained ones at a tenth of the lr (small steps keep
    what they learned) and the new last layer at the full lr.
Accuracy is on held-out images (validation and test splits) of the new classes only.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from optiviz._validate import check_choice, check_int, check_positive, shown
from optiviz.training.data import CIFAR10, load_cifar10
from optiviz.training.models import MODELS, build_model
from optiviz.training.plain import accuracy, fit, predict

METHODS = ("scratch", "frozen", "fine_tune")
METHOD_NAMES = {"scratch": "from scratch", "frozen": "frozen features, new last layer",
                "fine_tune": "fine-tune all layers at lr/10"}


def class_split(x: torch.Tensor, y: torch.Tensor, classes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of these classes, relabelled 0..len(classes)-1 in the order given."""
    keep = torch.isin(y, torch.as_tensor(list(classes), device=y.device))
    remap = torch.full((int(y.max()) + 1,), -1, dtype=torch.long, device=y.device)
    remap[torch.as_tensor(list(classes), device=y.device)] = torch.arange(len(classes), device=y.device)
    return x[keep], remap[y[keep]]


def _last_linear(net: nn.Module) -> str:
    return [name for name, m in net.named_children() if isinstance(m, nn.Linear)][-1]


@dataclass(frozen=True)
class FineTuneRow:
    method: str
    val_acc: float  # on held-out images of the new classes
    trained: int  # parameters trained on the new classes

    @property
    def label(self) -> str:
        return METHOD_NAMES[self.method]


@dataclass(frozen=True)
class FineTuning:
    rows: tuple[FineTuneRow, ...]
    pretrain_acc: float  # held-out accuracy on the pretraining classes
    n_source: int  # classes pretrained on
    n_classes: int  # new classes
    n_target: int
    n_heldout: int
    lr: float

    def row(self, method: str) -> FineTuneRow:
        for r in self.rows:
            if r.method == method:
                return r
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {shown(method)}")

    def table(self) -> str:
        lines = [f"{'':34} {'held-out acc':>12} {'trained params':>15}"]
        lines += [f"{r.label:<34} {r.val_acc:>12.3f} {r.trained:>15,}" for r in self.rows]
        lines.append(f"pretrained on {self.n_source} classes (held-out acc {self.pretrain_acc:.3f}); {self.n_target} "
                     f"training and {self.n_heldout} held-out images of the {self.n_classes} new ones; lr {self.lr:g}")
        return "\n".join(lines)


def fine_tuning(
    data: CIFAR10 | None = None,
    *,
    source: Sequence[int] = (0, 1, 2, 3, 4),
    target: Sequence[int] = (5, 6, 7, 8, 9),
    n_target: int = 250,
    pretrain_epochs: int = 6,
    epochs: int = 10,
    lr: float = 0.01,
    batch_size: int = 32,
    model: str = "convnet",
    width: int | None = None,
    n_pretrain: int | None = None,
    seed: int = 0,
) -> FineTuning:
    """Pretrain `model` on `source` classes (n_pretrain images; None: all), then compare the three
    ways onto `target` (n_target images).

    Every run on the new classes has the same epochs, minibatches and lr (the pretrained layers'
    lr/10 when fine-tuning); the scratch net has the same architecture and a fresh init.
    """
    for name, classes in (("source", source), ("target", target)):
        if isinstance(classes, (str, int)) or len(classes) < 2 or len(set(map(int, classes))) < len(classes) \
                or any(not 0 <= int(c) < 10 for c in classes):
            raise ValueError(f"{name} must be two or more distinct CIFAR-10 classes in [0, 9], got {shown(classes)}")
    if set(map(int, source)) & set(map(int, target)):
        raise ValueError(f"source and target must not share classes, got {shown(source)} and {shown(target)}")
    n_target = check_int("n_target", n_target, 1)
    pretrain_epochs, epochs = check_int("pretrain_epochs", pretrain_epochs, 1), check_int("epochs", epochs, 1)
    lr = float(check_positive("lr", lr))
    data = load_cifar10(device="cpu") if data is None else data.to("cpu")
    held_x = torch.cat([data.x_val, data.x_test])
    held_y = torch.cat([data.y_val, data.y_test])
    kw = dict(width=width, n_classes=len(source), seed=seed)
    model = check_choice("model", model, MODELS)

    xs, ys = class_split(data.x_train, data.y_train, source)
    if n_pretrain is not None:
        xs, ys = xs[:check_int("n_pretrain", n_pretrain, 1)], ys[:n_pretrain]
    pre = build_model(model, **kw)
    fit(pre, xs, ys, epochs=pretrain_epochs, lr=lr, batch_size=batch_size, seed=seed)
    hx, hy = class_split(held_x, held_y, source)
    pretrain_acc = accuracy(predict(pre, hx), hy)

    xt, yt = class_split(data.x_train, data.y_train, target)
    xt, yt = xt[:n_target], yt[:n_target]
    hx, hy = class_split(held_x, held_y, target)
    head = _last_linear(pre)
    rows = []

    scratch = build_model(model, **{**kw, "n_classes": len(target), "seed": seed + 1})
    fit(scratch, xt, yt, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    rows.append(FineTuneRow("scratch", accuracy(predict(scratch, hx), hy), sum(p.numel() for p in scratch.parameters())))

    with torch.random.fork_rng():  # one new last layer, the same for both ways, from the seed
        torch.manual_seed(seed)
        new_head = nn.Linear(getattr(pre, head).in_features, len(target))
    tuned = copy.deepcopy(pre)
    setattr(tuned, head, copy.deepcopy(new_head))

    body = copy.deepcopy(pre)
    setattr(body, head, nn.Identity())
    body.eval()
    feats, held_feats = predict(body, xt), predict(body, hx)
    fit(new_head, feats, yt, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    rows.append(FineTuneRow("frozen", accuracy(predict(new_head, held_feats), hy), sum(p.numel() for p in new_head.parameters())))

    groups = [{"params": [p for n, p in tuned.named_parameters() if not n.startswith(f"{head}.")], "lr": lr / 10},
              {"params": list(getattr(tuned, head).parameters()), "lr": lr}]
    fit(tuned, xt, yt, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, param_groups=groups)
    rows.append(FineTuneRow("fine_tune", accuracy(predict(tuned, hx), hy), sum(p.numel() for p in tuned.parameters())))
    return FineTuning(tuple(rows), pretrain_acc, len(source), len(target), len(yt), len(hy), lr)


__all__ = ["METHODS", "FineTuneRow", "FineTuning", "class_split", "fine_tuning"]
