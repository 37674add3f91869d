"""Dropout at test time (CS231n): three ways to predict with a net trained with dropout, side by side.

Training with dropout samples a thinned net per minibatch; at test time we want the average of all
those nets. Monte Carlo dropout averages the predictions of T masked passes (exact in the limit,
T times the cost). Weight scaling (vanilla dropout) replaces every mask by its expectation: a unit
kept with probability q = 1 - p outputs q x on average during training, so the test pass
multiplies by q. Inverted dropout divides by q during training instead, so the expected training
output is already x and the test pass is left unchanged. "What is the expected output at training
time?" -- E[m x] = q x for vanilla, E[m x / q] = x for inverted -- is measured here on the trained
net's own hidden activations, next to the test pass's output.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from optiviz._validate import check_int, check_range, shown
from optiviz.training.data import CIFAR10, load_cifar10
from optiviz.training.models import DROPOUT_MODES, Dropout, Net, build_model
from optiviz.training.plain import accuracy, fit, predict


@dataclass(frozen=True)
class ExpectedOutput:
    """Mean over units and images of one dropout layer's input x, its training-time output averaged over masks, and its test output."""

    mode: str
    x: float
    train: float  # E over masks of the training-time output (averaged over `masks` draws)
    test: float
    masks: int

    @property
    def answer(self) -> str:
        q = "q x" if self.mode == "vanilla" else "x"
        return f"{self.mode}: E[train output] = {q} = {self.train:.4f}; test output {self.test:.4f}; x = {self.x:.4f}"


@dataclass(frozen=True)
class DropoutTestTime:
    """Test accuracy and loss of each prediction rule, Monte Carlo curves, and the expected outputs."""

    p: float
    rows: dict[str, tuple[float, float]]  # rule -> (test accuracy, test loss)
    mc: dict[str, list[tuple[int, float]]]  # mode -> (T, accuracy of the average of T masked passes)
    expected: dict[str, ExpectedOutput]

    def accuracy(self, rule: str) -> float:
        if rule not in self.rows:
            raise ValueError(f"rule must be one of {', '.join(self.rows)}, got {shown(rule)}")
        return self.rows[rule][0]

    def table(self) -> str:
        width = max(len(k) for k in self.rows)
        lines = [f"{'prediction rule (p = ' + format(self.p, 'g') + ')':<{width}}  test acc  test loss"]
        lines += [f"{k:<{width}}  {a:8.3f}  {l:9.3f}" for k, (a, l) in self.rows.items()]
        return "\n".join(lines)


def _dropouts(net: Net) -> list[Dropout]:
    return [m for m in net.modules() if isinstance(m, Dropout)]


@torch.no_grad()
def mc_probabilities(net: Net, x: torch.Tensor, samples: int, *, seed: int = 0) -> torch.Tensor:
    """Average softmax over `samples` passes with dropout masks on (every other layer in eval mode)."""
    samples = check_int("samples", samples, 1)
    net.eval()
    drops = _dropouts(net)
    gen = torch.Generator().manual_seed(check_int("seed", seed))
    saved = [(d.training, d.generator) for d in drops]
    try:
        for d in drops:
            d.train()
            d.generator = gen
        total = torch.zeros(x.shape[0], net(x[:1]).shape[1])
        for _ in range(samples):
            total += F.softmax(predict(net, x), dim=1)
    finally:
        for d, (training, generator) in zip(drops, saved):
            d.train(training)
            d.generator = generator
        net.eval()
    return total / samples


@torch.no_grad()
def expected_output(net: Net, x: torch.Tensor, *, masks: int = 200, seed: int = 0) -> ExpectedOutput:
    """The first dropout layer's input, its output averaged over `masks` training-time masks, and its test output."""
    masks = check_int("masks", masks, 1)
    drops = _dropouts(net)
    if not drops:
        raise ValueError("net must contain a Dropout module")
    drop = drops[0]
    seen: list[torch.Tensor] = []
    handle = drop.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    net.eval()
    try:
        net(x)
    finally:
        handle.remove()
    h = seen[0]
    gen = torch.Generator().manual_seed(check_int("seed", seed))
    saved = drop.generator
    drop.generator = gen
    drop.train()
    try:
        train = sum(drop(h) for _ in range(masks)) / masks
    finally:
        drop.eval()
        drop.generator = saved
    test = drop(h)
    return ExpectedOutput(drop.mode, float(h.mean()), float(train.mean()), float(test.mean()), masks)


def dropout_test_time(
    data: CIFAR10 | None = None,
    *,
    p: float = 0.5,
    epochs: int = 4,
    width: int = 128,
    depth: int = 3,
    lr: float = 0.01,
    samples: Sequence[int] = (1, 10, 100),
    n_train: int | None = None,
    seed: int = 0,
) -> DropoutTestTime:
    """Train one MLP per dropout mode (same seed, same batches) and compare the test-time rules.

    Why: the lecture's three answers to "how do we predict with a dropout net" give almost the same
    accuracy, and forgetting vanilla dropout's scaling shows up in the loss (over-confident logits).
    """
    check_range("p", p, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    epochs = check_int("epochs", epochs, 1)
    if isinstance(samples, (str, bytes)) or not isinstance(samples, Sequence) or not samples:
        raise ValueError(f"samples must be a non-empty sequence of pass counts, got {shown(samples)}")
    samples = [check_int("samples", t, 1) for t in samples]
    seed = check_int("seed", seed)
    data = load_cifar10(device="cpu") if data is None else data.to("cpu")
    if n_train is not None:
        data = data.subset(check_int("n_train", n_train, 1))
    xt, yt = data.x_test, data.y_test

    def row(logits_or_probs: torch.Tensor, probs: bool = False) -> tuple[float, float]:
        logp = torch.log(logits_or_probs.clamp_min(1e-12)) if probs else F.log_softmax(logits_or_probs, dim=1)
        return accuracy(logp, yt), float(F.nll_loss(logp, yt))

    rows: dict[str, tuple[float, float]] = {}
    mc: dict[str, list[tuple[int, float]]] = {}
    expected: dict[str, ExpectedOutput] = {}
    for mode in DROPOUT_MODES[::-1]:  # vanilla first: the lecture's order
        net = build_model("mlp", width=width, depth=depth, dropout=p, dropout_mode=mode, seed=seed)
        fit(net, data.x_train, data.y_train, epochs=epochs, lr=lr, seed=seed)
        if mode == "vanilla":
            rows["vanilla: weight scaling (x q at test)"] = row(predict(net, xt))
            for d in _dropouts(net):
                d.mode = "inverted"  # the test pass without the scaling: what forgetting it gives
            rows["vanilla: test pass not scaled (wrong)"] = row(predict(net, xt))
            for d in _dropouts(net):
                d.mode = "vanilla"
        else:
            rows["inverted: unchanged test pass"] = row(predict(net, xt))
        mc[mode] = []
        for t in samples:
            probs = mc_probabilities(net, xt, t, seed=seed)
            rows[f"{mode}: Monte Carlo, {t} masked passes"] = row(probs, probs=True)
            mc[mode].append((t, rows[f"{mode}: Monte Carlo, {t} masked passes"][0]))
        expected[mode] = expected_output(net, xt[:256], seed=seed)
    return DropoutTestTime(float(p), rows, mc, expected)
