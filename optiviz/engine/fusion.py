"""Fusing the simulator's per-step tensor work with torch.compile, for big sweeps.

An eager step is ~35 small elementwise ops per row block (gradient, update, status checks), each a
pass over memory plus a dispatch. torch.compile (inductor: C++/OpenMP on the CPU, Triton on a GPU)
fuses them into a few loops. That pays for big, long runs; it costs seconds of compiling first,
so it is opt-in (`Simulator(..., compile=True)`).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sysconfig
import warnings
from collections.abc import Callable
from typing import Any

import torch

# Each row block is one compiled entry of the same function (guarded on the block and its
# optimizer), and a notebook may build many simulators: torch's default of 8 entries per function
# would silently send the rest back to eager.
_RECOMPILE_LIMIT = 256


def as_graph_inputs(constants: tuple[Any, ...], like: torch.Tensor) -> tuple[Any, ...]:
    """Per-step floats (lr under a schedule, bias corrections) as 0-d tensors: a compiled graph
    takes those as inputs, whereas a float would be baked in and recompile the graph every step."""
    return tuple(torch.tensor(c, dtype=like.dtype, device=like.device) if isinstance(c, float) else c
                 for c in constants)


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot run here (a user-readable reason), or None when it can."""
    if device.type == "cpu":
        cxx = os.environ.get("CXX")
        if not any(shutil.which(c) for c in ((cxx,) if cxx else ("g++", "c++", "clang++"))):
            return "no C++ compiler found (inductor needs g++ or clang++ on the CPU; set CXX or install g++)"
        if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
            return "Python's C headers are missing (inductor builds a Python extension; install python3-dev)"
        return None
    if device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "triton is not installed (inductor needs it on CUDA)"
        return None
    return f"torch.compile is not supported on {device.type} here"


def fused(fn: Callable[..., Any], device: torch.device) -> Callable[..., Any]:
    """`fn` compiled as one graph (dynamic shapes, so N can change without recompiling), or `fn`
    itself with a warning when compiling cannot work on this machine. As one graph, fn either
    compiles whole before any of it runs or not at all, so a failure can fall back to `fn`
    (once, with a warning) without stopping a run or stepping twice."""
    problem = compile_problem(device)
    if problem is not None:
        warnings.warn(f"compile=True: {problem}; stepping eagerly", RuntimeWarning, stacklevel=3)
        return fn
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.7
    setattr(config, name, max(getattr(config, name), _RECOMPILE_LIMIT))
    compiled = torch.compile(fn, dynamic=True, fullgraph=True)
    broken: list[str] = []

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if broken:
            return fn(*args, **kwargs)
        try:
            return compiled(*args, **kwargs)
        except torch._dynamo.exc.TorchDynamoException as err:  # raised before any of fn ran
            broken.append(str(err))
            warnings.warn(f"compile=True: compiling failed ({str(err).splitlines()[0]}); stepping eagerly",
                          RuntimeWarning, stacklevel=2)
            return fn(*args, **kwargs)

    return call
