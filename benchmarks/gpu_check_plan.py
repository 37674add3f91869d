"""What the GPU check runs, in which order, at which sizes, and with how long each step may take.

Three profiles: "gpu" (the issue's sizes, about 7 minutes on one GPU, inside an 8-minute budget that
leaves a 15-minute lease room for a rerun), "cpu" (the same steps at small sizes, a few minutes on
2 cores) and "tiny" (seconds per step, for tests/test_gpu_check.py). Stdlib only (see gpu_check.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sizes:
    budget_s: float
    parity_select: str | None  # pytest -k over tests/test_optimizers.py; None: the whole file
    sim_n: int
    sim_steps: int
    sim_compiled: bool
    engine_sizes: tuple[int, ...]
    engine_steps: int
    engine_modes: tuple[str, ...]
    sweep_resolution: int
    sweep_steps: int
    sweep_sample: int
    trainer_epochs: int
    trainer_chunks: int
    baseline_chunks: int
    many_k: int
    many_rounds: int
    subset: int | None  # training images for the trainer benchmarks; None: the whole bundled subset
    dashboard_steps: int
    dashboard_images: int
    dashboard_model: str
    explorer_steps: int
    paired: bool = False  # benchmarks two at a time: only where their timings do not matter (tiny)


PROFILES = {
    "gpu": Sizes(budget_s=480, parity_select=None, sim_n=50, sim_steps=500, sim_compiled=True,
                 engine_sizes=(100_000, 1_000_000), engine_steps=1000, engine_modes=("eager", "compiled"),
                 sweep_resolution=1000, sweep_steps=500, sweep_sample=10, trainer_epochs=10, trainer_chunks=3,
                 baseline_chunks=2, many_k=16, many_rounds=2, subset=None, dashboard_steps=40,
                 dashboard_images=2048, dashboard_model="convnet", explorer_steps=300),
    "cpu": Sizes(budget_s=600, parity_select=None, sim_n=20, sim_steps=300, sim_compiled=True,
                 # both sizes over one block's 65,536 elements: the compiled graphs of the first serve the second
                 engine_sizes=(10_000, 30_000), engine_steps=100, engine_modes=("eager", "compiled"),
                 sweep_resolution=100, sweep_steps=200, sweep_sample=5, trainer_epochs=2, trainer_chunks=1,
                 baseline_chunks=1, many_k=4, many_rounds=1, subset=1024, dashboard_steps=10,
                 dashboard_images=512, dashboard_model="convnet", explorer_steps=300),
    # compile=True is left out here: its first compile alone takes ~30 s on 2 cores
    # (tests/test_compiled_simulator.py checks it on the CPU)
    "tiny": Sizes(budget_s=240, parity_select="test_matches_torch_on_three_surfaces and adam-13",
                  sim_n=6, sim_steps=100, sim_compiled=False, engine_sizes=(100, 1000), engine_steps=20,
                  engine_modes=("eager",), sweep_resolution=20, sweep_steps=30, sweep_sample=2, trainer_epochs=1,
                  trainer_chunks=1, baseline_chunks=1, many_k=2, many_rounds=1, subset=256, dashboard_steps=3,
                  dashboard_images=256, dashboard_model="mlp", explorer_steps=100, paired=True),
}


@dataclass
class Step:
    """One step: a command of its own (`command`) or one of gpu_check_steps.py's checks (`check`)."""

    name: str
    what: str
    timeout: float
    command: list[str] | None = None
    check: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    parser: str | None = None
    fallback: list[str] | None = None  # run when `command` fails (the install without its test extras)
    together: str | None = None  # consecutive steps with one tag run side by side (checks only, no timings)
    skip: str | None = None  # why the step does not run this time


def build_plan(py: str, device: str, sizes: Sizes, *, install: bool, wheels: str | None,
               threads: int | None) -> list[Step]:
    """Every step in order: install, the environment, the checks of the engine and views, the parity
    tests, then the benchmarks (the trainer's CPU baseline right after it, for the 10x goal)."""
    s = sizes
    thr = ["--threads", str(threads)] if threads else []
    pip = [py, "-m", "pip", "install", "-q", "--retries", "1", "--timeout", "20"]
    pip += ["--no-index", "--find-links", wheels] if wheels else []
    no_install = None if install else "--no-install"
    sub = ["--subset", str(s.subset)] if s.subset else []
    bench = [py, "-u"]
    steps = [
        Step("install_torch", "pip install torch==2.13.0 (a no-op where it is installed)", 300,
             command=pip + ["torch==2.13.0"], skip=no_install),
        Step("install_package", "pip install -e .[test] (else -e . without dependencies)", 240,
             command=pip + ["-e", ".[test]"], fallback=pip + ["--no-deps", "--no-build-isolation", "-e", "."],
             skip=no_install),
        Step("env", f"torch, CUDA and the device ({device})", 60, check={"name": "env"}),
        Step("simulator_eager", "simulator, eager, statuses equal the CPU's (float64)", 120,
             check={"name": "simulator_eager", "args": {"n": s.sim_n, "steps": s.sim_steps}}),
        Step("simulator_compiled", "simulator, compile=True, statuses equal the CPU's (float64)", 180,
             check={"name": "simulator_compiled", "args": {"n": s.sim_n, "steps": s.sim_steps}},
             skip=None if s.sim_compiled else "compile=True is left out at these sizes (its first compile takes ~30 s on 2 cores)"),
        Step("dashboard", "the dashboard's controller stepped headless", 90,
             check={"name": "dashboard", "args": {"steps": s.dashboard_steps, "n_train": s.dashboard_images,
                                                  "model": s.dashboard_model}}),
        Step("explorer", "the explorer's controller stepped headless; statuses equal the CPU's", 60,
             check={"name": "explorer", "args": {"steps": s.explorer_steps}}),
    ]
    select = ["-k", s.parity_select] if s.parity_select else []
    for dtype in ("float64", "float32"):
        # no plugin autoload: hypothesis, anyio and the like cost seconds of import and test nothing here
        steps.append(Step(f"parity_{dtype}", f"tests/test_optimizers.py against torch.optim on {device}, {dtype}"
                          + (" (TF32 off)" if device == "cuda" else ""), 200,
                          command=[py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pytest_timeout",
                                   "tests/test_optimizers.py", *select],
                          env={"OPTIVIZ_TEST_DEVICE": device, "OPTIVIZ_TEST_DTYPE": dtype,
                               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, parser="pytest", together="parity"))
    pair = (lambda tag: tag) if s.paired else (lambda tag: None)
    steps += [
        Step("bench_engine", "bench_engine.py: 6 optimizers x N settings", 200, parser="bench_engine",
             command=bench + ["benchmarks/bench_engine.py", "--device", device, "--steps", str(s.engine_steps),
                              "--sizes", *map(str, s.engine_sizes), "--modes", *s.engine_modes, *thr],
             together=pair("engine+sweeps")),
        Step("bench_sweeps", "bench_sweeps.py: one stability map", 120, parser="bench_sweeps",
             command=bench + ["benchmarks/bench_sweeps.py", "--device", device, "--resolution", str(s.sweep_resolution),
                              "--steps", str(s.sweep_steps), "--sample", str(s.sweep_sample), "--big-resolution", "0",
                              *thr],
             together=pair("engine+sweeps")),
        Step("bench_many_nets", "bench_many_nets.py: K MLPs at once vs one after another", 120,
             parser="bench_many_nets",
             command=bench + ["benchmarks/bench_many_nets.py", "--device", device, "--k", str(s.many_k),
                              "--rounds", str(s.many_rounds), *sub, *thr],
             together=pair("nets+trainer")),
        Step("bench_trainer", "bench_trainer.py: the convnet, accuracy and images/s", 150, parser="bench_trainer",
             command=bench + ["benchmarks/bench_trainer.py", "--device", device, "--epochs", str(s.trainer_epochs),
                              "--chunks", str(s.trainer_chunks), *sub, *thr],
             together=pair("nets+trainer")),
        Step("bench_trainer_cpu", "bench_trainer.py on 2 CPU threads: the baseline of the 10x goal", 120,
             parser="bench_trainer",
             command=bench + ["benchmarks/bench_trainer.py", "--device", "cpu", "--threads", "2", "--skip", "accuracy",
                              "--chunks", str(s.baseline_chunks), *sub],
             skip=None if device != "cpu" else "the device is the CPU: no baseline to compare with"),
    ]
    return steps


def with_sizes(sizes: Sizes, **changes: Any) -> Sizes:
    """A profile with some sizes changed (the command line's --budget)."""
    return dataclasses.replace(sizes, **changes)
