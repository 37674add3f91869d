"""The square root torch's CPU kernels compute, found and checked, for the native kernel to call.

torch's float32 and float64 ``sqrt`` on the CPU is not always the correctly rounded one: built
with MKL, it calls VML's vector sqrt (``vmsSqrt`` / ``vmdSqrt``), which on this machine differs
from IEEE sqrt by one unit in the last place for about 17% of float32 inputs. Adagrad, RMSprop
and Adam take square roots every step, so the kernel calls the very function torch calls (looked
up in torch's own library) or, where torch's sqrt is the IEEE one, std::sqrt. Either choice is
checked against torch.sqrt on many values before use; when neither matches, those optimizers are
stepped with torch.
"""
from __future__ import annotations

import ctypes
import functools
import os

import numpy as np
import torch

_MODE = 0x2 | 0x140000 | 0x100  # VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE, as ATen/cpu/vml.h
_SYMBOLS = {torch.float32: "VMSSQRT_", torch.float64: "VMDSQRT_"}


@functools.lru_cache(maxsize=None)
def sqrt_function(dtype: torch.dtype) -> int | None:
    """The address of the vector sqrt that reproduces torch.sqrt in `dtype`, 0 for std::sqrt, or
    None when neither does (then the kernel must not take square roots)."""
    probe = _probe(dtype)
    expected = torch.sqrt(probe)
    if torch.equal(torch.from_numpy(np.sqrt(probe.numpy())), expected):
        return 0
    fn = _vml(dtype)
    if fn is None:
        return None
    out = torch.empty_like(probe)
    count = 128  # the kernel calls it on 2 x LANES values at a time
    for start in range(0, probe.numel(), count):
        n = ctypes.c_int32(min(count, probe.numel() - start))
        fn(ctypes.byref(n), ctypes.c_void_p(probe[start:].data_ptr()), ctypes.c_void_p(out[start:].data_ptr()),
           ctypes.byref(ctypes.c_int64(_MODE)))
    return ctypes.cast(fn, ctypes.c_void_p).value if torch.equal(out, expected) else None


def _probe(dtype: torch.dtype) -> torch.Tensor:
    """Values across many binades, including exact squares, zeros and the extremes."""
    gen = torch.Generator().manual_seed(0)
    mant = torch.rand(16384, generator=gen, dtype=torch.float64) + 1.0
    exps = torch.randint(-60, 60, (16384,), generator=gen).to(torch.float64)
    vals = torch.cat([mant * torch.pow(2.0, exps), torch.arange(0, 100, dtype=torch.float64) ** 2,
                      torch.tensor([0.0, 1.0, torch.finfo(dtype).max, torch.finfo(dtype).tiny])])
    return vals.to(dtype).contiguous()


def _vml(dtype: torch.dtype) -> ctypes._CFuncPtr | None:
    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    try:
        lib = ctypes.CDLL(path)
        fn = getattr(lib, _SYMBOLS[dtype])
    except (OSError, AttributeError):
        return None
    fn.restype = None
    return fn


def one_mkl_thread() -> None:
    """Make MKL calls from this thread single-threaded: a worker that calls VML on 128 values per
    step must not fork torch's thread pool for each call (that made two threads 40x slower)."""
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        lib.MKL_Set_Num_Threads_Local(ctypes.c_int(1))  # the C entry (the lowercase one is Fortran's)
    except (OSError, AttributeError):
        pass
