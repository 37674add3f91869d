"""A plane in a net's weight space, and the losses on it evaluated many points at once.

A point of the plane is `origin + a * d1 + b * d2` (flat parameter vectors in the order of
`module.named_parameters()`). Evaluating a grid of such points is what makes a loss landscape
slow: Li et al. 2018 evaluate one net per point. Two things make it fast here:

- the first weight layer is linear in its weights and its input is the data itself, so
  `x W(a, b)^T = x W0^T + a x D1^T + b x D2^T`: three products with the images per data chunk,
  after which every grid point's first-layer output is a sum of three precomputed arrays (exact,
  up to float32 rounding);
- the layers after it run for many points at once on the stacked-nets machinery
  (training/batched.StackedNet: batched matmuls, grouped convolutions), chunked to a memory budget.

Nets with batch norm are refused: their running statistics are not weights on the plane.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optiviz._validate import check_choice
from optiviz.engine.devices import check_allocation, free_memory
from optiviz.training.batched import StackedNet
from optiviz.training.data import CIFAR10

EVAL_BUDGET = 256 * 2**20  # bytes of activations one chunk of grid points may use
EVAL_BATCH = 1024  # images per data chunk


def flat_params(module: nn.Module) -> torch.Tensor:
    """A module's parameters as one detached float32 vector (named_parameters order)."""
    return torch.cat([p.detach().reshape(-1).float() for p in module.parameters()])


def param_slices(template: nn.Module) -> dict[str, tuple[slice, torch.Size]]:
    """Where each named parameter sits in a flat vector, and its shape."""
    out, at = {}, 0
    for name, p in template.named_parameters():
        out[name] = (slice(at, at + p.numel()), p.shape)
        at += p.numel()
    return out


def load_flat(template: nn.Module, vector: torch.Tensor) -> nn.Module:
    """`template` with its parameters set to `vector` (in place; returns it)."""
    with torch.no_grad():
        for (_name, (where, shape)), p in zip(param_slices(template).items(), template.parameters()):
            p.copy_(vector[where].view(shape).to(p.dtype))
    return template


def check_plane_net(template: nn.Module) -> None:
    """A net whose state is all weights (no batch-norm running statistics) and that can be stacked."""
    params = {k for k, _ in template.named_parameters()}
    buffers = [k for k in template.state_dict() if k not in params]
    if buffers:
        raise ValueError(f"a loss landscape needs a net whose state is all weights, and this one has batch-norm "
                         f"statistics ({buffers[0]!r}) that are not on any plane of weights: build it with "
                         "batch_norm=False")
    StackedNet.from_stacked(template, {k: p.detach()[None] for k, p in template.named_parameters()})


@dataclass
class Plane:
    """origin + a * d1 + b * d2 in the weight space of `template`'s architecture.

    kind: "pca", "random", "points" or "line"; axis_labels say what a and b measure.
    """

    kind: str
    origin: torch.Tensor
    d1: torch.Tensor
    d2: torch.Tensor
    template: nn.Module = field(repr=False)
    axis_labels: tuple[str, str] = ("a", "b")

    @property
    def basis(self) -> torch.Tensor:
        """(3, P): origin, d1, d2."""
        return torch.stack([self.origin, self.d1, self.d2])

    def point(self, a: float, b: float) -> torch.Tensor:
        return self.origin + float(a) * self.d1 + float(b) * self.d2

    def module(self, a: float, b: float) -> nn.Module:
        """The net at (a, b) as an ordinary module (a copy)."""
        return load_flat(copy.deepcopy(self.template), self.point(a, b))

    def coordinates(self, points: torch.Tensor) -> np.ndarray:
        """(T, 2) least-squares coordinates of (T, P) points on the plane (their shadow on it)."""
        d = torch.stack([self.d1, self.d2]).cpu().double()  # float64 on the host (MPS has none)
        gram = d @ d.T
        rhs = d @ (points.cpu().double() - self.origin.cpu().double()).T
        keep = torch.diagonal(gram) > 0
        out = torch.zeros(2, points.shape[0], dtype=torch.float64)
        if bool(keep.all()):
            out = torch.linalg.solve(gram, rhs)
        elif bool(keep.any()):  # a line: d2 is zero
            i = int(torch.nonzero(keep)[0])
            out[i] = rhs[i] / gram[i, i]
        return out.T.cpu().numpy()

    def held_share(self, displacements: torch.Tensor) -> float:
        """The share of sum ||delta||^2 of (T, P) displacements that lies in the plane's directions."""
        d = torch.stack([self.d1, self.d2]).cpu().double()
        displacements = displacements.cpu().double()
        gram = d @ d.T
        rhs = d @ displacements.T
        total = float((displacements ** 2).sum())
        if total == 0.0:
            return float("nan")
        try:
            coef = torch.linalg.solve(gram, rhs)
        except RuntimeError:  # singular (a line)
            coef = torch.linalg.lstsq(gram, rhs).solution
        held = float((coef * (gram @ coef)).sum())
        return min(max(held / total, 0.0), 1.0)

    def evaluate(self, coords: np.ndarray, data: CIFAR10, *, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """(M,) mean cross-entropy and (M,) accuracy at (M, 2) coordinates, on every image of the split."""
        return evaluate_points(self, coords, data, split=split)


# ------------------------------------------------------------------------------- planes
def pca_plane(template: nn.Module, origin: torch.Tensor, displacements: torch.Tensor) -> tuple[Plane, np.ndarray]:
    """The two directions that hold most of (T, P) displacements from `origin` (uncentred PCA:
    the plane through the origin that best fits the paths); also every direction's share."""
    d = displacements.cpu().double()  # float64 on the host (MPS has none); the plane goes back to the device
    gram = d @ d.T
    values, vectors = torch.linalg.eigh(gram)
    values, vectors = values.flip(0).clamp_min(0.0), vectors.flip(1)
    if values.shape[0] < 2 or float(values[1]) <= 1e-12 * max(float(values[0]), 1e-300):
        raise ValueError("plane='pca' needs trajectories that move in at least two directions (more snapshots, "
                         "or more than one optimizer); use plane='random' or a plane through three points")
    dirs = (vectors[:, :2].T @ d) / values[:2].sqrt().unsqueeze(1)
    proj = d @ dirs.T
    dirs = dirs * torch.where(proj.sum(0) < 0, -1.0, 1.0).to(dirs.dtype).unsqueeze(1)  # paths go to +a, +b
    share = (values / values.sum()).cpu().numpy()
    dirs = dirs.float().to(origin.device)
    return Plane("pca", origin.float(), dirs[0], dirs[1], template,
                 ("PC1 (weight-space distance)", "PC2 (weight-space distance)")), share


def random_plane(template: nn.Module, center: torch.Tensor, seed: int = 0) -> Plane:
    """Two Gaussian directions, filter-normalized (Li et al. 2018): each filter (a weight row: one
    output unit or channel) scaled to the norm of the centre's same filter; biases get no direction,
    as their code's default. One unit on an axis is then one filter-norm."""
    gen = torch.Generator().manual_seed(int(seed))
    dirs = []
    for _ in range(2):
        parts = []
        for name, (where, shape) in param_slices(template).items():
            w = center[where].view(shape).cpu()
            if len(shape) < 2:
                parts.append(torch.zeros(w.numel()))
                continue
            r = torch.randn(shape, generator=gen)
            rows, wrows = r.reshape(shape[0], -1), w.reshape(shape[0], -1)
            rows = rows * (wrows.norm(dim=1, keepdim=True) / (rows.norm(dim=1, keepdim=True) + 1e-10))
            parts.append(rows.reshape(-1))
        dirs.append(torch.cat(parts).to(center.device))
    return Plane("random", center.float(), dirs[0], dirs[1], template,
                 ("a (filter-normalized)", "b (filter-normalized)"))


def points_plane(template: nn.Module, p0: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor) -> Plane:
    """The plane through three points: p0 at (0, 0), p1 on the a axis; units are weight-space distance."""
    device = p0.device
    p0, p1, p2 = p0.cpu(), p1.cpu(), p2.cpu()
    e1 = (p1 - p0).double()
    n1 = float(e1.norm())
    if n1 == 0.0:
        raise ValueError("plane: the first two points are the same point; give three distinct points")
    e1 = e1 / n1
    e2 = (p2 - p0).double()
    e2 = e2 - (e2 @ e1) * e1
    n2 = float(e2.norm())
    if n2 <= 1e-9 * max(n1, float((p2 - p0).norm())):
        raise ValueError("plane: the three points lie on one line; give three points that span a plane")
    return Plane("points", p0.float().to(device), e1.float().to(device), (e2 / n2).float().to(device), template,
                 ("a (weight-space distance)", "b (weight-space distance)"))


# ------------------------------------------------------------------------------- evaluation
@dataclass
class _FirstLayer:
    index: int
    kind: str
    name: str
    module: nn.Module


def _split_ops(stacked: StackedNet) -> tuple[list[nn.Module], _FirstLayer]:
    ops = stacked.ops
    before = []
    for i, (kind, name, module) in enumerate(ops):
        if kind in ("linear", "conv"):
            return before, _FirstLayer(i, kind, name, module)
        if kind not in ("flatten", "pass"):
            raise ValueError(f"layer {name!r} before the first weight layer cannot be evaluated on a plane")
        before.append(module)
    raise ValueError("the model has no Linear or Conv2d layer")


def _per_point_bytes(template: nn.Module, in_shape: tuple[int, ...], batch: int) -> int:
    """Bytes one grid point's forward pass needs on `batch` images: the activations from the first
    weight layer on (with temporaries) and its later weights; what comes before is shared."""
    sizes: list[int] = []
    first = next((n for n, m in template.named_children() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
    with torch.device("meta"):
        net = copy.deepcopy(template).to("meta")
        after, hooks = False, []
        for name, module in net.named_children():
            after = after or name == first
            if after:
                hooks.append(module.register_forward_hook(lambda _m, _i, out: sizes.append(out[0].numel())))
        try:
            net(torch.empty((1, *in_shape)))
        finally:
            for h in hooks:
                h.remove()
    weights = sum(p.numel() for n, p in template.named_parameters() if not n.startswith(f"{first}."))
    return 4 * (3 * batch * sum(sizes) + weights)


def check_evaluation_fits(plane: Plane, points: int, data: CIFAR10, split: str, what: str) -> int:
    """Preflight: refuse before allocating what cannot fit; returns grid points per chunk."""
    x, _y = data.split(split)
    batch = min(EVAL_BATCH, max(1, int(x.shape[0])))
    per_point = _per_point_bytes(plane.template, tuple(x.shape[1:]), batch)
    fixed = 4 * 3 * plane.origin.numel() + per_point + 16 * points  # the basis, the first layer's three outputs
    free = free_memory(plane.origin.device)
    budget = EVAL_BUDGET if free is None else min(EVAL_BUDGET, int(0.3 * free))
    chunk = max(1, min(points, budget // max(per_point, 1)))
    check_allocation(what, fixed + per_point * chunk, plane.origin.device,
                     "ask for a lower resolution, fewer images or a smaller net")
    return chunk


@torch.no_grad()
def evaluate_points(plane: Plane, coords: np.ndarray, data: CIFAR10, *, split: str = "train",
                    chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(M,) mean cross-entropy and (M,) accuracy of the nets at (M, 2) plane coordinates."""
    split = check_choice("split", split, ("train", "val", "test"))
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    m = coords.shape[0]
    device = plane.origin.device
    x_all, y_all = data.to(device).split(split)
    n = int(y_all.shape[0])
    if n == 0:
        raise ValueError(f"the {split} split holds no images to evaluate on")
    if chunk is None:
        chunk = check_evaluation_fits(plane, m, data, split, f"evaluating {m:,} points on {n:,} images")
    slices = param_slices(plane.template)
    probe = StackedNet.from_stacked(plane.template, {k: plane.origin[s].view(1, *shape) for k, (s, shape) in slices.items()})
    before, first = _split_ops(probe)
    w_key, b_key = f"{first.name}.weight", f"{first.name}.bias"
    rest = [k for k in slices if k not in (w_key, b_key)]
    rest_idx = torch.cat([torch.arange(slices[k][0].start, slices[k][0].stop, device=device) for k in rest]) \
        if rest else torch.zeros(0, dtype=torch.long, device=device)
    basis = plane.basis.to(device)
    rest_basis = basis[:, rest_idx]
    coef = torch.cat([torch.ones(m, 1, dtype=torch.float64), torch.as_tensor(coords)], dim=1).float().to(device)
    loss_sum = torch.zeros(m, dtype=torch.float64)  # on the host: float64 everywhere (MPS has none)
    correct = torch.zeros(m, dtype=torch.float64)
    w_slice, w_shape = slices[w_key]
    b_entry = slices.get(b_key)
    for start in range(0, n, EVAL_BATCH):
        h, y = x_all[start:start + EVAL_BATCH], y_all[start:start + EVAL_BATCH]
        for module in before:
            h = module(h)
        z = []
        for j in range(3):  # the first layer at origin, d1 and d2: the only products with the images
            w = basis[j, w_slice].view(w_shape)
            b = None if b_entry is None else basis[j, b_entry[0]]
            z.append(F.linear(h, w, b) if first.kind == "linear" else
                     F.conv2d(h, w, b, first.module.stride, first.module.padding, first.module.dilation,
                              first.module.groups))
        z3 = torch.stack(z).reshape(3, -1)
        bsz = h.shape[0]
        for lo in range(0, m, chunk):
            c = coef[lo:lo + chunk]
            k = c.shape[0]
            feats = (c @ z3).view(k, bsz, *z[0].shape[1:])
            if first.kind == "linear":
                layout = "feat"
            else:  # (B, K*C, H, W): net k owns channels k*C..(k+1)*C-1
                feats = feats.transpose(0, 1).reshape(bsz, k * z[0].shape[1], *z[0].shape[2:])
                layout = "chan"
            flat = c @ rest_basis
            state, at = {}, 0
            for key in rest:
                size = slices[key][0].stop - slices[key][0].start
                state[key] = flat[:, at:at + size].view(k, *slices[key][1])
                at += size
            logits = StackedNet.from_stacked(plane.template, state).forward(
                feats, train=False, start=first.index + 1, layout=layout)
            _k, b, classes = logits.shape
            ce = F.cross_entropy(logits.reshape(k * b, classes), y.repeat(k), reduction="none").view(k, b)
            loss_sum[lo:lo + k] += ce.sum(dim=1).cpu().double()
            correct[lo:lo + k] += (logits.argmax(dim=2) == y).sum(dim=1).cpu().double()
    loss = (loss_sum / n).numpy()
    return np.where(np.isfinite(loss), loss, np.inf), (correct / n).numpy()


def evaluate_one_by_one(plane: Plane, coords: np.ndarray, data: CIFAR10, *, split: str = "train") -> np.ndarray:
    """The reference: each point loaded into a plain nn.Module and evaluated alone (benchmarks, tests)."""
    net = copy.deepcopy(plane.template).eval()
    x, y = data.to(plane.origin.device).split(split)
    out = np.empty(len(coords))
    with torch.no_grad():
        for i, (a, b) in enumerate(np.asarray(coords, dtype=np.float64).reshape(-1, 2)):
            load_flat(net, plane.point(a, b))
            out[i] = float(F.cross_entropy(net(x), y))
    return out


__all__ = ["Plane", "flat_params", "param_slices", "load_flat", "check_plane_net", "pca_plane", "random_plane",
           "points_plane", "evaluate_points", "evaluate_one_by_one", "check_evaluation_fits", "EVAL_BUDGET"]
