"""Memory the system can give without swapping, read without torch (the CLI's class sizing runs
before anything imports it; the engine's allocation checks use the same reading)."""
from __future__ import annotations


def available_bytes() -> int | None:
    """Linux's MemAvailable in bytes; None where /proc/meminfo is missing or unreadable."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


__all__ = ["available_bytes"]
