"""Pick the fastest device present so the same code runs on a laptop CPU, a GPU box or a Mac."""
from __future__ import annotations

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """cuda, then mps, then cpu; an explicit choice wins (and is checked to exist)."""
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} is not available here; allowed: 'cpu'" + (", 'mps'" if _mps() else ""))
        if dev.type == "mps" and not _mps():
            raise ValueError(f"device {str(device)!r} is not available here; allowed: 'cpu'" + (", 'cuda'" if torch.cuda.is_available() else ""))
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps():
        return torch.device("mps")
    return torch.device("cpu")


def _mps() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so timings and host reads are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
