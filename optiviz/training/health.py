"""The lectures' babysitting checklist applied to a run's records, in plain language.

Pure Python and numpy over what the trainer emits (history arrays and ProbeRecords), so the
dashboard's health line is testable without widgets and a notebook can call it on a finished run:

    findings = check_health(run.history, run.probes, stop_reason=run.stop_reason)
    print(health_line(findings))

Every check reads only the tail of the records (a few dozen values), so calling it once a frame
costs the same at step 100 and at step 100,000.

Thresholds are the lectures' rules made concrete, calibrated on the bundled nets (see
`Thresholds`): the update/weight ratio target is ~1e-3, but these small nets train well at
1e-2..5e-2 (the reference convnet recipe sits at 2-5e-2) and runs that blew up within a few steps
sat at 0.1-0.4, so "far above" means 100x and "far below" 10x.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiviz.training.probes import ProbeRecord

# severities, most urgent first in sorted output
BAD, WARN, INFO, OK = 3, 2, 1, 0


@dataclass(frozen=True)
class Thresholds:
    """Where each check fires. Defaults: see the module docstring for how they were chosen."""

    ratio_target: float = 1e-3
    ratio_high: float = 1e-1  # median of the last probes above this: lr too high for the layer
    ratio_low: float = 1e-4  # below this (or no update at all): the layer barely learns
    dead: float = 0.5  # fraction of ReLU units never active on the probed batch
    saturated: float = 0.5  # fraction of tanh / sigmoid activations in the flat tails
    rising: float = 1.5  # recent loss this many times the starting loss: diverging
    gap: float = 0.15  # train - val accuracy above this: overfitting
    no_gap: float = 0.05  # |train - val| below this ...
    low_acc: float = 0.5  # ... with train accuracy below this, once the loss has plateaued: underfitting
    plateau: float = 0.03  # relative drop of the epoch train loss below this counts as a plateau
    stalled: float = 0.05  # loss fell less than this fraction after `stalled_steps` steps: lr too low?
    stalled_steps: int = 100
    min_steps: int = 10  # fewer steps: too early to tell
    probes: int = 5  # probes whose median a per-layer check reads


DEFAULT = Thresholds()


@dataclass(frozen=True)
class Finding:
    """One checklist item that fired: a code for programs, a sentence for people.

    code: diverging, rising, ratio_high, ratio_low, dead, saturated, overfitting, underfitting,
    stalled, healthy, too_early. layer is set for the per-layer checks.
    """

    code: str
    severity: int
    message: str
    layer: str | None = None


def check_health(
    history: Mapping[str, Any],
    probes: Sequence[ProbeRecord] = (),
    *,
    stop_reason: str | None = None,
    thresholds: Thresholds = DEFAULT,
) -> list[Finding]:
    """Findings for one run, most urgent first; never empty (a "healthy" or "too_early" finding at least).

    history: the trainer's history keys (train_loss per step; val_step / val_acc; epoch_step /
    train_acc / epoch_train_loss per epoch), as arrays or lists; missing keys mean "not measured".
    probes: ProbeRecords in step order (only the last `thresholds.probes` are read).
    stop_reason: the trainer's, when it stopped the run (a diverged loss).
    """
    t = thresholds
    n = len(history.get("train_loss", ()))
    found: list[Finding] = []
    found += _divergence(history, n, stop_reason, t)
    diverging = any(f.code == "diverging" for f in found)
    # the first update is atypical (empty momentum buffers, Adam's bias correction): skip step 0
    recent = [p for p in list(probes[-t.probes - 1:]) if p.step > 0][-t.probes:] if len(probes) else []
    if recent:
        found += _units(recent, t)
        if not diverging and len(recent) >= 2:
            found += _ratios(recent, t)
    if not diverging:
        found += _stalled(history, n, found, t)
        found += _generalization(history, t, underfit=not found)
    if not found:
        if n < t.min_steps:
            found.append(Finding("too_early", INFO, f"Too early to tell ({n} step{'s' * (n != 1)} so far)."))
        else:
            found.append(Finding("healthy", OK, _healthy_text(history, recent, t)))
    found.sort(key=lambda f: -f.severity)
    return found


def check_run(run: Any, thresholds: Thresholds = DEFAULT) -> list[Finding]:
    """check_health on a TrainRun (what ov.train() and Trainer.run() return)."""
    return check_health(run.history, run.probes, stop_reason=run.stop_reason, thresholds=thresholds)


def health_line(findings: Sequence[Finding], max_items: int = 2) -> str:
    """The most urgent findings as one line of text (what the dashboard shows)."""
    if not findings:
        return ""
    top = sorted(findings, key=lambda f: -f.severity)[:max(1, max_items)]
    return " ".join(f.message for f in top)


# ---------------------------------------------------------------------------------- checks
def _divergence(history: Mapping[str, Any], n: int, stop_reason: str | None, t: Thresholds) -> list[Finding]:
    loss = _tail(history.get("train_loss", ()), 40)
    if stop_reason and "loss" in stop_reason:
        return [Finding("diverging", BAD, f"Loss is diverging ({stop_reason}): lower the learning rate "
                                          "(or check the backprop), then go on.")]
    if len(loss) and not np.all(np.isfinite(loss[-5:])):
        return [Finding("diverging", BAD, "Loss is not finite: the run diverged; lower the learning rate.")]
    if n < t.min_steps:
        return []
    first = float(np.median(_head(history.get("train_loss", ()), 5)))
    w = max(3, min(20, n // 3))
    recent = float(np.median(loss[-w:]))
    if math.isfinite(first) and first > 0 and recent > t.rising * first:
        return [Finding("diverging", BAD, f"Loss is rising ({_num(first)} at the start, {_num(recent)} now): "
                                          "lower the learning rate.")]
    return []


def _units(recent: list[ProbeRecord], t: Thresholds) -> list[Finding]:
    last = recent[-1]
    frac = np.median(np.stack([np.asarray(p.dead_fraction, dtype=float) for p in recent]), axis=0)  # NaN: logits
    out = []
    for name, kind, f in zip(last.layers, last.dead_kind, frac):
        if not np.isfinite(f):
            continue
        if kind == "dead" and f > t.dead:
            out.append(Finding("dead", BAD, f"{_pct(f)} of {name}'s units are dead (the ReLU never fires): "
                                            "check the init and biases, lower the lr, or try leaky ReLU.", name))
        elif kind == "saturated" and f > t.saturated:
            out.append(Finding("saturated", BAD, f"{_pct(f)} of {name}'s activations are saturated: gradients "
                                                 "vanish there; try Xavier init, batch norm or ReLU.", name))
    return out


def _ratios(recent: list[ProbeRecord], t: Thresholds) -> list[Finding]:
    last = recent[-1]
    rows = np.stack([np.asarray(p.update_ratio, dtype=float) for p in recent])
    rows = np.where(np.isfinite(rows), rows, 0.0)  # 0/0: zero weights that never move
    ratio = np.median(rows, axis=0)
    high = [(r, name) for r, name in zip(ratio, last.layers) if r > t.ratio_high]
    low = [(r, name) for r, name in zip(ratio, last.layers) if r < t.ratio_low]
    out = []
    if high:
        r, name = max(high)
        where = _layers_text([nm for _, nm in high])
        out.append(Finding("ratio_high", WARN, f"Update/weight ratio {_num(r)} in {where}, "
                                               f"{_times(r / t.ratio_target)} the ~1e-3 target: the lr is too high.", name))
    if low:
        r, name = min(low)
        where = _layers_text([nm for _, nm in low])
        what = "no update at all" if r == 0 else f"update/weight ratio {_num(r)}"
        those = "that layer barely learns" if len(low) == 1 else "those layers barely learn"
        out.append(Finding("ratio_low", WARN, f"{what[0].upper()}{what[1:]} in {where}, far below ~1e-3: "
                                              f"{those} (lr too low, or dead units / a zero init).", name))
    return out


def _epoch_gaps(history: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(train_acc, val_acc) at each epoch end that has a validation at or before it."""
    e_step = np.asarray(history.get("epoch_step", ()), dtype=float)[-4:]
    e_acc = np.asarray(history.get("train_acc", ()), dtype=float)[-4:]
    v_step = np.asarray(history.get("val_step", ()), dtype=float)
    v_acc = np.asarray(history.get("val_acc", ()), dtype=float)
    if not len(e_step) or not len(v_step):
        return np.zeros(0), np.zeros(0)
    idx = np.searchsorted(v_step, e_step, side="right") - 1
    ok = idx >= 0
    return e_acc[ok], v_acc[idx[ok]]


def _generalization(history: Mapping[str, Any], t: Thresholds, underfit: bool = True) -> list[Finding]:
    """Overfitting always; underfitting only when nothing else explains a flat, low curve."""
    train, val = _epoch_gaps(history)
    if len(train) < 2:
        return []
    gap = train - val
    if gap[-1] > t.gap:
        trend = " and widening" if gap[-1] > gap[-2] + 0.01 else ""
        return [Finding("overfitting", WARN, f"Train/val accuracy gap {gap[-1]:.2f}{trend} (train {train[-1]:.2f}, "
                                             f"val {val[-1]:.2f}): overfitting; regularize (dropout, weight decay, "
                                             "more data) or stop early.")]
    losses = np.asarray(history.get("epoch_train_loss", ()), dtype=float)[-3:]
    if underfit and len(train) >= 3 and len(losses) >= 2 and abs(gap[-1]) < t.no_gap and train[-1] < t.low_acc:
        drop = (losses[-2] - losses[-1]) / max(abs(losses[-2]), 1e-12)
        if drop < t.plateau:
            return [Finding("underfitting", WARN, f"No train/val gap ({abs(gap[-1]):.2f}) and low accuracy "
                                                  f"({train[-1]:.2f}) with the loss flat: underfitting; "
                                                  "increase capacity (wider or deeper net).")]
    return []


def _stalled(history: Mapping[str, Any], n: int, found: list[Finding], t: Thresholds) -> list[Finding]:
    if n < t.stalled_steps or any(f.code in ("ratio_low", "dead", "saturated") for f in found):
        return []
    first = float(np.median(_head(history.get("train_loss", ()), 10)))
    recent = float(np.median(_tail(history.get("train_loss", ()), 20)))
    if first > 0 and (first - recent) / first < t.stalled:
        return [Finding("stalled", WARN, f"Loss has barely moved in {n} steps ({_num(first)} -> {_num(recent)}): "
                                         "raise the learning rate, or check the loss.")]
    return []


def _healthy_text(history: Mapping[str, Any], recent: list[ProbeRecord], t: Thresholds) -> str:
    parts = []
    first = _head(history.get("train_loss", ()), 5)
    last = _tail(history.get("train_loss", ()), 10)
    if len(first) and len(last):
        parts.append(f"loss {_num(float(np.median(first)))} -> {_num(float(np.median(last)))}")
    if recent:
        r = np.asarray(recent[-1].update_ratio, dtype=float)
        r = r[np.isfinite(r)]
        if len(r):
            parts.append(f"update/weight ratios {_num(float(r.min()))} to {_num(float(r.max()))}")
    train, val = _epoch_gaps(history)
    if len(train):
        parts.append(f"train/val gap {train[-1] - val[-1]:+.2f}")
    return "Looks healthy" + (": " + ", ".join(parts) if parts else "") + "."


# ---------------------------------------------------------------------------------- helpers
def _tail(values: Any, k: int | None) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr if k is None else arr[-k:]


def _head(values: Any, k: int) -> np.ndarray:
    arr = np.asarray(values[:k] if hasattr(values, "__getitem__") else list(values)[:k], dtype=float)
    return arr[np.isfinite(arr)] if len(arr) else arr


def _num(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    return f"{v:.1e}" if a and (a < 1e-2 or a >= 1e4) else f"{v:.3g}"


def _pct(f: float) -> str:
    return f"{100 * f:.0f}%"


def _times(x: float) -> str:
    return f"~{x:.0f}x" if x >= 10 else f"{x:.1f}x"


def _layers_text(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


__all__ = ["Finding", "Thresholds", "DEFAULT", "check_health", "check_run", "health_line", "BAD", "WARN", "INFO", "OK"]
