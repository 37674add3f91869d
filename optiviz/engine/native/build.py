"""Compile the native kernel once per surface with g++ and load it with ctypes (a plain C ABI).

A library is cached on disk under a hash of its source, the compiler and this CPU's flags (it is
built with -march=native), in ``$OPTIVIZ_KERNEL_CACHE`` or ``~/.cache/optiviz/kernels``: a cold
build takes about a second or two, a later session loads it in milliseconds. The flags keep
float results IEEE-exact: -O3 -march=native, -ffp-contract=off (no fma but the explicit ones, so
each op rounds as torch's does), -fno-math-errno and -fno-trapping-math (as torch itself is
built: branches become selects and vectorize; no result changes); no -ffast-math.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-std=c++17",
         "-shared", "-fPIC")
_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL] = {}


def compiler() -> str | None:
    """The C++ compiler to use ($CXX, else g++), or None when there is none."""
    cxx = os.environ.get("CXX") or "g++"
    return shutil.which(cxx)


def cache_dir() -> Path:
    root = os.environ.get("OPTIVIZ_KERNEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "optiviz", "kernels")
    return Path(root)


@functools.lru_cache(maxsize=1)
def _machine_key() -> str:
    """The compiler's version and this CPU's feature flags: a library built for one is not loaded on another."""
    cxx = compiler() or ""
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        pass
    return f"{cxx}\n{version}\n{platform.machine()}\n{flags}"


def library_path(source: str) -> Path:
    digest = hashlib.sha256("\n".join((source, " ".join(FLAGS), _machine_key())).encode()).hexdigest()[:24]
    return cache_dir() / f"optiviz_kernel_{digest}.so"


def load(source: str) -> ctypes.CDLL:
    """The compiled library for `source`, building it on first use (RuntimeError if g++ fails)."""
    path = library_path(source)
    with _lock:
        lib = _loaded.get(str(path))
        if lib is not None:
            return lib
        if not path.exists():
            _compile(source, path)
        lib = ctypes.CDLL(str(path))
        lib.optiviz_run.restype = None
        lib.optiviz_run.argtypes = (ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64)
        _loaded[str(path)] = lib
        return lib


def _compile(source: str, path: Path) -> None:
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (set CXX or install g++)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        src, out = Path(tmp) / "kernel.cpp", Path(tmp) / "kernel.so"
        src.write_text(source)
        proc = subprocess.run([cxx, *FLAGS, str(src), "-o", str(out)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"g++ failed: {proc.stderr.strip()[-2000:]}")
        os.replace(out, path)  # atomic: another process sees the whole library or none
