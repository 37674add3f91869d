"""The CIFAR-10 data a view trains on: the bundled subset loaded once per device, and how a
shared setting names it (source, split sizes, fingerprint) and gets the same images back."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from optiviz.state import StateError
from optiviz.training.data import CIFAR10, load_cifar10

_DATA_CACHE: dict[tuple[str, str], CIFAR10] = {}


def prepare_data(data: CIFAR10 | None, n_train: int | None = None, n_val: int | None = None,
                 device: str | torch.device | None = None) -> CIFAR10:
    """The bundled subset (loaded once per device and process), sliced to n_train / n_val."""
    if data is None:
        data = loaded("subset", device)
    elif not isinstance(data, CIFAR10):
        raise ValueError(f"data must be a CIFAR10 from ov.load_cifar10(), got {type(data).__name__}")
    elif device is not None:
        data = data.to(device)
    if n_train is not None or n_val is not None:  # n_train=0 is refused by subset(), not read as "all"
        data = data.subset(data.n_train if n_train is None else n_train, n_val, 0)
    return data


def loaded(source: str, device: str | torch.device | None = None) -> CIFAR10:
    """load_cifar10(source) on `device`, once per process."""
    key = (source, str(device))
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_cifar10(source, device=device)
    return _DATA_CACHE[key]


def data_setting(data: CIFAR10) -> dict[str, Any]:
    """How a shared setting names the data: a prefix of load_cifar10(source)'s splits, checked by fingerprint."""
    return {"source": data.source, "n_train": data.n_train, "n_val": data.n_val, "n_test": data.n_test,
            "fingerprint": data.fingerprint()}


def data_from_setting(setting: dict[str, Any], given: CIFAR10 | None = None,
                      device: str | torch.device | None = None) -> CIFAR10:
    """The data a setting names: `given` (checked), else the first images of load_cifar10(source)."""
    if given is None:
        full = loaded(setting["source"], device)
        try:
            given = full.subset(setting["n_train"], setting["n_val"], setting["n_test"])
        except ValueError as exc:
            raise StateError(f"state: data asks for more images than load_cifar10({setting['source']!r}) has ({exc})") \
                from None
    elif not isinstance(given, CIFAR10):
        raise ValueError(f"data must be a CIFAR10 from ov.load_cifar10(), got {type(given).__name__}")
    if given.fingerprint() != setting["fingerprint"]:
        raise StateError("state: the data this setting was made with is not this data (another load_cifar10 seed "
                         "or val_fraction, or other images): pass the same data, from_state(s, data=...)")
    return given


def data_args(setting: Mapping[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """data= (the one the setting names, checked against one given) and the other options, for a
    rebuilt view's constructor; a setting that names no data takes the given one (or the default)."""
    options = dict(options)
    given = options.pop("data", None)
    named = setting.get("data")
    data = given if named is None else data_from_setting(named, given, options.get("device"))
    return {**options, "data": data}


__all__ = ["prepare_data", "loaded", "data_setting", "data_from_setting", "data_args"]
