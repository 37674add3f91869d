"""Pick the fastest device present so the same code runs on a laptop CPU, a GPU box or a Mac."""
from __future__ import annotations

import torch

from optiviz._validate import shown
from optiviz.system_memory import available_bytes

MEMORY_HEADROOM = 0.8  # refuse an allocation estimated to need more than this share of free memory


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """cuda, then mps, then cpu; an explicit choice wins (and is checked to exist)."""
    if device is not None:
        if not isinstance(device, (str, torch.device)):
            raise TypeError(f"device must be a name such as 'cpu' or 'cuda:0' (or a torch.device), got {shown(device)}")
        try:
            dev = torch.device(device)
        except RuntimeError:
            dev = None
        here = dev is not None and (
            dev.type == "cpu"
            or (dev.type == "cuda" and torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count())
            or (dev.type == "mps" and _mps()))
        if not here:
            raise ValueError(f"device {shown(str(device))} is not available here; allowed: {', '.join(_present())}")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps():
        return torch.device("mps")
    return torch.device("cpu")


def _present() -> list[str]:
    """Device names this machine has, for messages."""
    names = ["'cpu'"]
    if torch.cuda.is_available():
        names += ["'cuda'"] + [f"'cuda:{i}'" for i in range(torch.cuda.device_count())]
    if _mps():
        names.append("'mps'")
    return names


def _mps() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so timings and host reads are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def free_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on `device` (None: unknown here, so nothing is refused)."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "cpu":
            return available_bytes()
    except (OSError, RuntimeError, ValueError):
        return None
    return None


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if n >= size / 4:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 2**10:,.0f} KB"


def check_allocation(what: str, nbytes: float, device: torch.device, fix: str) -> None:
    """Refuse, before anything is allocated, what would not fit in the device's free memory:
    ValueError naming `what` (the argument that asks for it), the sizes, and `fix`."""
    free = free_memory(device)
    if free is not None and nbytes > MEMORY_HEADROOM * free:
        raise ValueError(f"{what} needs about {format_bytes(nbytes)} of memory and {device.type} has "
                         f"{format_bytes(free)} free: {fix}")
