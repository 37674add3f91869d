"""optiviz: live Jupyter widgets that make neural-network optimization visible.

`import optiviz` stays cheap: every public name is resolved lazily, so widgets, bqplot and
Jupyter are imported only when a view is built, and torch only when the engine is used.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # engine
    "OPTIMIZERS": "optiviz.engine.optimizers",
    "make_optimizer": "optiviz.engine.optimizers",
    "torch_optimizer": "optiviz.engine.optimizers",
    "HPARAMS": "optiviz.engine.hparams",
    "SURFACES": "optiviz.engine.surfaces",
    "Surface": "optiviz.engine.surface",
    "get_surface": "optiviz.engine.surfaces",
    "compile_expression": "optiviz.engine.expression",
    "SCHEDULES": "optiviz.engine.schedules",
    "make_schedule": "optiviz.engine.schedules",
    "clip_by_value": "optiviz.engine.transforms",
    "clip_by_norm": "optiviz.engine.transforms",
    "sign": "optiviz.engine.transforms",
    "annealed_noise": "optiviz.engine.transforms",
    "chain": "optiviz.engine.transforms",
    "Simulator": "optiviz.engine.simulator",
    "native_problem": "optiviz.engine.native.runner",
    "simulate": "optiviz.engine.simulator",
    "Run": "optiviz.engine.simulator",
    "pick_device": "optiviz.engine.devices",
    "stability_map": "optiviz.engine.sweeps",
    "basin_map": "optiviz.engine.sweeps",
    "iter_stability_map": "optiviz.engine.sweeps",
    "iter_basin_map": "optiviz.engine.sweeps",
    "fair_race": "optiviz.engine.fair",
    "tune_lr": "optiviz.engine.fair",
    "FairRace": "optiviz.engine.fair",
    "expected_excess": "optiviz.engine.noise_theory",
    "noise_floor": "optiviz.engine.noise_theory",
    # training
    "load_cifar10": "optiviz.training.data",
    "CIFAR10": "optiviz.training.data",
    "build_model": "optiviz.training.models",
    "MODELS": "optiviz.training.models",
    "Trainer": "optiviz.training.trainer",
    "train": "optiviz.training.trainer",
    "random_search": "optiviz.training.search",
    "grid_search": "optiviz.training.search",
    "ensemble_table": "optiviz.training.ensembles",
    "train_many": "optiviz.training.batched",
    "gradient_check": "optiviz.training.gradcheck",
    "dropout_test_time": "optiviz.training.dropout_test",
    "compare_preprocessing": "optiviz.training.preprocessing",
    "hyperparameter_importance": "optiviz.training.importance",
    # sharing a setting (views' state() / from_state)
    "read_state": "optiviz.state",
    "StateError": "optiviz.state",
    "race_on_net": "optiviz.training.net_race",
    "NetRace": "optiviz.training.net_race",
    "loss_landscape": "optiviz.training.landscape",
    "Landscape": "optiviz.training.landscape",
    "interpolate": "optiviz.training.landscape",
    "Interpolation": "optiviz.training.landscape",
    "early_stopping": "optiviz.training.early_stopping",
    "gradient_noise_table": "optiviz.training.gradient_noise",
    "batchnorm_noise": "optiviz.training.batchnorm_noise",
    "fine_tuning": "optiviz.training.fine_tuning",
    # export (the optional extra optiviz[export])
    "RaceTrack": "optiviz.export.race",
    "save_race_gif": "optiviz.export.race",
    "save_race_mp4": "optiviz.export.race",
    "save_race_png": "optiviz.export.race",
    "write_race_events": "optiviz.export.tensorboard",
    "write_history_events": "optiviz.export.tensorboard",
    # stream
    "LiveRunner": "optiviz.stream.runner",
    "SeriesBuffer": "optiviz.stream.series",
    # views (import ipywidgets/bqplot on first use)
    "SurfaceExplorer": "optiviz.views.explorer.view",
    "PRESETS": "optiviz.views.explorer.presets",
    "TrainingDashboard": "optiviz.views.dashboard.view",
    "StabilityMapView": "optiviz.views.maps.maps",
    "BasinMapView": "optiviz.views.maps.maps",
    "SearchView": "optiviz.views.maps.searches",
    "EnsembleView": "optiviz.views.maps.searches",
    "LandscapeView": "optiviz.views.landscape.view",
    "close_all": "optiviz.views.common.registry",
    # serving a class (what `optiviz present` and `optiviz binder-link` compute)
    "class_size": "optiviz.serve.capacity",
    "binder_links": "optiviz.serve.binder",
    "presenter": "optiviz.views.common.theme",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'optiviz' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
