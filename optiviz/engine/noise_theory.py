"""What gradient noise does on a quadratic, exactly: the expected loss curve and its noise floor.

With g = H x + sigma * xi (xi standard normal per coordinate, the simulator's `grad_noise`), SGD,
heavy ball and Nesterov in torch.optim's form are linear iterations z' = A z + b xi per eigen-
direction of H (z = (x, v)), so the mean follows A and the covariance P' = A P A^T + b b^T.
E[f - f*] = 1/2 sum_i h_i (mean_i^2 + var_i): a transient that shrinks at the spectral radius
(rates.predicted_rate) plus a floor that noise builds. Momentum's acceleration is in the transient;
near the floor, heavy ball at lr a and momentum b sits where SGD at a / (1 - b) would (for small a),
which is why tuned against each other under noise their advantage shrinks.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from optiviz._validate import check_int, check_range
from optiviz.engine.rates import LINEAR_OPTIMIZERS, predicted_rate


def _system(optimizer: str, h: float, lr: float, momentum: float) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) of one eigen-direction with curvature h, state (x, v), noise entering as b * sigma * xi."""
    a, m = lr, momentum
    if optimizer == "sgd":
        return np.array([[1.0 - a * h, 0.0], [0.0, 0.0]]), np.array([-a, 0.0])
    if optimizer == "momentum":  # v' = m v + g; x' = x - a v'
        return np.array([[1.0 - a * h, -a * m], [h, m]]), np.array([-a, 1.0])
    # nesterov: v' = m v + g; x' = x - a (g + m v')
    return np.array([[1.0 - a * h * (1.0 + m), -a * m * m], [h, m]]), np.array([-a * (1.0 + m), 1.0])


def _checked(optimizer: str, curvatures: Sequence[float], lr: float, momentum: float | None,
             grad_noise: float) -> tuple[str, np.ndarray, float, float, float]:
    if optimizer not in LINEAR_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(LINEAR_OPTIMIZERS)} (linear iterations on a "
                         f"quadratic, where the theory is exact), got {optimizer!r}")
    h = np.asarray(curvatures, dtype=np.float64).reshape(-1)
    if h.size == 0 or not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise ValueError(f"curvatures must be positive finite numbers, got {list(curvatures)!r}")
    m = (0.0 if optimizer == "sgd" else 0.9) if momentum is None else float(check_range("momentum", momentum, 0.0, 1.0,
                                                                                         high_inclusive=False))
    return optimizer, h, float(check_range("lr", lr, 0.0, low_inclusive=False)), m, float(
        check_range("grad_noise", grad_noise, 0.0))


def expected_excess(optimizer: str, curvatures: Sequence[float], lr: float, *, start: Sequence[float],
                    steps: int, momentum: float | None = None, grad_noise: float = 0.0) -> np.ndarray:
    """E[f(x_t) - f*] for t = 0..steps from `start` (coordinates along the curvatures' axes)."""
    optimizer, h, lr, m, sigma = _checked(optimizer, curvatures, lr, momentum, grad_noise)
    steps = check_int("steps", steps, 0, 10_000_000)
    x0 = np.asarray(start, dtype=np.float64).reshape(-1)
    if x0.shape != h.shape:
        raise ValueError(f"start must have one coordinate per curvature ({h.size}), got {x0.size}")
    out = np.zeros(steps + 1)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging setting's curve runs to inf
        for hi, xi in zip(h, x0):
            out += _direction_curve(optimizer, hi, xi, lr, m, sigma, steps)
    return np.where(np.isfinite(out), out, np.inf)


def _direction_curve(optimizer: str, hi: float, xi: float, lr: float, m: float, sigma: float,
                     steps: int) -> np.ndarray:
    """h/2 E[x_t^2] along one eigen-direction: its mean and variance carried step by step."""
    A, b = _system(optimizer, hi, lr, m)
    mean, cov, noise = np.array([xi, 0.0]), np.zeros((2, 2)), sigma * sigma * np.outer(b, b)
    curve = np.empty(steps + 1)
    curve[0] = xi * xi
    for t in range(1, steps + 1):
        mean = A @ mean
        cov = A @ cov @ A.T + noise
        curve[t] = mean[0] * mean[0] + cov[0, 0]
    return 0.5 * hi * curve


def noise_floor(optimizer: str, curvatures: Sequence[float], lr: float, *, momentum: float | None = None,
                grad_noise: float = 0.0) -> float:
    """The stationary E[f - f*] that noise holds a converging run at (inf where the iteration diverges):
    the Lyapunov equation P = A P A^T + b b^T sigma^2 solved per eigen-direction."""
    optimizer, h, lr, m, sigma = _checked(optimizer, curvatures, lr, momentum, grad_noise)
    if float(predicted_rate(optimizer, h, lr, m)) >= 1.0:
        return float("inf")
    total = 0.0
    for hi in h:
        A, b = _system(optimizer, hi, lr, m)
        vec = np.linalg.solve(np.eye(4) - np.kron(A, A), (sigma * sigma * np.outer(b, b)).reshape(-1))
        total += 0.5 * hi * float(vec[0])
    return total


__all__ = ["expected_excess", "noise_floor"]
