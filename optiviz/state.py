"""A view's setting as a short shareable string or as JSON, and the strict check that reads one back.

A lecturer shares a setting the way TensorFlow Playground keeps its setting in the URL: one string
that rebuilds the same view with the same runs (seeds included). Two forms of one document:

- the string: ``ov1.`` + urlsafe base64 (no padding) of the zlib-compressed canonical JSON;
- JSON: ``{"optiviz_state": 1, "view": "SurfaceExplorer", "setting": {...}}``.

Reading one never evaluates anything: a size check, base64, zlib with a cap on the inflated size,
`json.loads` (NaN and Infinity refused), then the view's schema below (known keys only, each of the
right type). Ranges are checked afterwards by the view's own constructor, which names the parameter.
No widgets here: the CLI checks a `--state` string with this module before it starts a server.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from optiviz._validate import shown

STATE_ENV = "OPTIVIZ_STATE"  # `optiviz present --state S` hands S to the kernels here
QUERY_PARAM = "optiviz_state"  # ...and a Voila page's ?optiviz_state=S reaches them in $QUERY_STRING
VERSION = 1  # the format this optiviz writes and reads; a newer one is refused with a clear message
PREFIX = f"ov{VERSION}."
MAX_STRING = 8_000  # characters of a compact string (a URL of a few kB still opens everywhere)
MAX_JSON = 32_000  # bytes of JSON, after inflating: what a hostile "zip bomb" is cut at
MAX_ITEMS = 64  # entries of one list or mapping
MAX_TEXT = 500  # characters of one text value: the longest formula (engine/expression.py), not a pasted megabyte
_STRING_RE = re.compile(r"ov(\d+)\.([A-Za-z0-9_-]*)")

Check = Callable[[str, Any], Any]  # (where, value) -> the value as the view takes it; ValueError otherwise


class StateError(ValueError):
    """A state string or document that cannot be used, with what is wrong and what to do."""


# ====================================================================== value checks (type only)
def _fail(where: str, wanted: str, value: Any) -> StateError:
    return StateError(f"state: {where} must be {wanted}, got {shown(value)}")


def text(where: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _fail(where, f"a text of at most {MAX_TEXT} characters", value)
    return value


def integer(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, "a whole number", value)
    return value


def number(where: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, "a finite number", value)
    return value


def boolean(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def pair(where: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _fail(where, "a pair of numbers [a, b]", value)
    return (number(f"{where}[0]", value[0]), number(f"{where}[1]", value[1]))


def cell(where: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _fail(where, "a cell [row, column]", value)
    return (integer(f"{where}[0]", value[0]), integer(f"{where}[1]", value[1]))


def optional(check: Check) -> Check:
    return lambda where, value: None if value is None else check(where, value)


def sequence(check: Check) -> Check:
    """A list of values that each pass `check`, returned as a tuple."""
    def run(where: str, value: Any) -> tuple:
        if not isinstance(value, (list, tuple)) or len(value) > MAX_ITEMS:
            raise _fail(where, f"a list of at most {MAX_ITEMS} items", value)
        return tuple(check(f"{where}[{i}]", v) for i, v in enumerate(value))
    return run


def mapping(check: Check) -> Check:
    """A mapping of text keys to values that each pass `check`."""
    def run(where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping) or len(value) > MAX_ITEMS:
            raise _fail(where, f"a mapping of at most {MAX_ITEMS} entries", value)
        return {text(f"{where} key", k): check(f"{where}[{k!r}]", v) for k, v in value.items()}
    return run


def record(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A mapping with only these keys (each checked); keys not given take the view's defaults."""
    def run(where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise _fail(where, "a mapping", value)
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise StateError(f"state: {where} has an unknown key {shown(unknown[0])}; allowed: {', '.join(fields)}")
        missing = [k for k in required if k not in value]
        if missing:
            raise StateError(f"state: {where} lacks {missing[0]!r}")
        return {k: fields[k](f"{where}.{k}", v) for k, v in value.items()}
    return run


def scalar(where: str, value: Any) -> Any:
    """A number, true/false, a text or null."""
    if value is None or isinstance(value, (bool, str)):
        return text(where, value) if isinstance(value, str) else value
    return number(where, value)


def setting_value(where: str, value: Any) -> Any:
    """What a hyperparameter or a keyword takes: a scalar or a pair (as a tuple)."""
    return pair(where, value) if isinstance(value, (list, tuple)) else scalar(where, value)


def keywords(where: str, value: Any) -> dict[str, Any]:
    """Keyword arguments: scalars, pairs, or one level of nested settings (basin maps' hparams)."""
    nested = mapping(setting_value)
    return mapping(lambda w, v: nested(w, v) if isinstance(v, Mapping) else setting_value(w, v))(where, value)


hparam_table = mapping(mapping(setting_value))
schedule = lambda where, value: (text(f"{where}[0]", _two(where, value)[0]),  # noqa: E731
                                 mapping(setting_value)(f"{where}[1]", value[1]))
clip = lambda where, value: (text(f"{where}[0]", _two(where, value)[0]), number(f"{where}[1]", value[1]))  # noqa: E731
data = record({"source": text, "n_train": integer, "n_val": integer, "n_test": integer, "fingerprint": text},
              required=("source", "n_train", "n_val", "n_test", "fingerprint"))
space_value = lambda where, value: (number(where, value) if not isinstance(value, (list, tuple))  # noqa: E731
                                    else _range(where, value))


def plane_choice(where: str, value: Any) -> str | tuple[str, str, str]:
    """A landscape's plane: "pca" / "random", or three points by name ("init" or an optimizer's)."""
    if isinstance(value, str):
        return text(where, value)
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise _fail(where, '"pca", "random" or three points by name, e.g. ["init", "sgd", "adam"]', value)
    return tuple(text(f"{where}[{i}]", v) for i, v in enumerate(value))


def span_value(where: str, value: Any) -> Any:
    """A landscape's span: a half-width, or [[x0, x1], [y0, y1]]."""
    if not isinstance(value, (list, tuple)):
        return number(where, value)
    if len(value) != 2:
        raise _fail(where, "a half-width or [[x0, x1], [y0, y1]]", value)
    return (pair(f"{where}[0]", value[0]), pair(f"{where}[1]", value[1]))


def _two(where: str, value: Any) -> Any:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _fail(where, "a pair [kind, value]", value)
    return value


def _range(where: str, value: Any) -> tuple:
    if len(value) not in (2, 3):
        raise _fail(where, "[low, high] or [low, high, scale]", value)
    low, high = number(f"{where}[0]", value[0]), number(f"{where}[1]", value[1])
    return (low, high) if len(value) == 2 else (low, high, text(f"{where}[2]", value[2]))


# ====================================================================== each view's setting
RUN_FIELDS: dict[str, Check] = {
    "model": text, "optimizer": text, "lr": optional(number), "momentum": optional(number),
    "betas": optional(pair), "dropout": optional(number), "weight_decay": number, "batch_size": integer,
    "batch_norm": optional(boolean), "activation": text, "init": optional(text), "schedule": schedule,
    "width": optional(integer), "depth": optional(integer), "seed": integer,
}
COMPARED_FIELDS: dict[str, Check] = {
    "optimizer": text, "lr": optional(number), "momentum": optional(number), "betas": optional(pair),
    "dropout": optional(number), "weight_decay": number, "schedule": schedule, "label": optional(text),
}

SCHEMAS: dict[str, Check] = {
    "SurfaceExplorer": record({
        "surface": text, "surface_params": mapping(number), "optimizers": sequence(text), "hparams": hparam_table,
        "lr": optional(number), "start": optional(pair), "grad_noise": number, "clip": clip, "schedule": schedule,
        "speed": integer, "seed": integer, "preset": optional(text)}),
    "TrainingDashboard": record({
        "run": record(RUN_FIELDS), "compare": optional(sequence(record(COMPARED_FIELDS))), "data": data,
        "probe_every": integer, "val_every": optional(integer), "patience": optional(integer)}),
    "StabilityMapView": record({
        "surface": text, "optimizer": text, "x": text, "y": text, "resolution": integer, "steps": integer,
        "every": integer, "colour": text, "fixed": keywords, "selected": optional(cell)}),
    "BasinMapView": record({
        "surface": text, "optimizers": sequence(text), "resolution": integer, "steps": integer, "every": integer,
        "options": keywords}),
    "SearchView": record({
        "budget": integer, "space": mapping(space_value), "coarse_to_fine": boolean, "x": text, "y": text,
        "train": keywords, "data": optional(data)}),
    "EnsembleView": record({"model": text, "options": keywords, "data": optional(data)}),
    "LandscapeView": record({
        "model": text, "optimizers": sequence(text), "hparams": hparam_table, "n_train": integer,
        "batch_size": integer, "epochs": integer, "plane": plane_choice, "resolution": integer,
        "span": optional(span_value), "refit_every": optional(integer), "points": integer, "seed": integer,
        "snapshots": integer, "data": optional(data)}),
}
VIEWS = tuple(SCHEMAS)


# ====================================================================== writing
def plain(value: Any, where: str = "setting") -> Any:
    """`value` as JSON data (tuples as lists, numpy scalars as numbers); ValueError naming what cannot be."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise StateError(f"{where} is {value}: a setting to share must be finite")
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # a numpy or torch scalar
        return plain(value.item(), where)
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise StateError(f"{where} is a {type(value).__name__}, which a shared setting cannot hold: "
                     "give it by name or by number")


def document(view: str, setting: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of a view's setting (checked as a reader would check it)."""
    doc = {"optiviz_state": VERSION, "view": view, "setting": plain(setting)}
    _check_setting(view, doc["setting"])
    return doc


def to_json(view: str, setting: Mapping[str, Any]) -> str:
    """Readable JSON (keys sorted), what `view.state("json")` gives."""
    return json.dumps(document(view, setting), sort_keys=True, indent=1, allow_nan=False)


def to_string(view: str, setting: Mapping[str, Any]) -> str:
    """The compact string: PREFIX + urlsafe base64 of the compressed canonical JSON."""
    canonical = json.dumps(document(view, setting), sort_keys=True, separators=(",", ":"), allow_nan=False)
    packed = base64.urlsafe_b64encode(zlib.compress(canonical.encode(), 9)).decode().rstrip("=")
    if len(PREFIX) + len(packed) > MAX_STRING:
        raise StateError(f"this setting is too big to share ({len(packed):,} characters; at most {MAX_STRING:,})")
    return PREFIX + packed


# ====================================================================== reading
def read_state(state: str | Mapping[str, Any], view: str | None = None) -> tuple[str, dict[str, Any]]:
    """(view name, setting) of a compact string, a JSON text or a parsed document, all checked.
    `view`: the view that must read it (a state of another view is refused, naming the right one)."""
    doc = _parse(state)
    if not isinstance(doc, Mapping) or "optiviz_state" not in doc:
        raise StateError('not an optiviz state: expected {"optiviz_state": 1, "view": ..., "setting": {...}}')
    version = doc["optiviz_state"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StateError(f"state: optiviz_state must be a format version (1), got {shown(version)}")
    if version > VERSION:
        raise StateError(f"this state was made by a newer optiviz (format {version}; this one reads format "
                         f"{VERSION}): upgrade optiviz to open it")
    extra = set(doc) - {"optiviz_state", "view", "setting"}
    if extra:
        raise StateError(f"state has an unknown key {shown(sorted(extra)[0])}; allowed: optiviz_state, view, setting")
    name = doc.get("view")
    if name not in SCHEMAS:
        raise StateError(f"state: view must be one of {', '.join(VIEWS)}, got {shown(name)}")
    if view is not None and name != view:
        raise StateError(f"this state is for a {name}, not a {view}: open it with ov.{name}.from_state(...)")
    return name, _check_setting(name, doc.get("setting"))


def _check_setting(view: str, setting: Any) -> dict[str, Any]:
    return SCHEMAS[view]("setting", setting)


def _parse(state: Any) -> Any:
    if isinstance(state, Mapping):
        return state
    if not isinstance(state, str):
        raise StateError(f"a state must be a string (from view.state()) or its JSON, got {type(state).__name__}")
    state = state.strip()
    if len(state) > MAX_STRING and not state.startswith("{") or len(state) > MAX_JSON:
        raise StateError(f"state is too long ({len(state):,} characters; a shared setting is at most "
                         f"{MAX_STRING:,} as a string, {MAX_JSON:,} as JSON)")
    if state.startswith("{"):
        return _loads(state)
    match = _STRING_RE.fullmatch(state)
    if match is None:
        raise StateError(f"not an optiviz state string: it starts with {PREFIX!r} followed by letters, digits, "
                         f"'-' and '_'; got {shown(state)}")
    version = int(match.group(1)[:6])
    if version > VERSION:
        raise StateError(f"this state was made by a newer optiviz (format {version}; this one reads format "
                         f"{VERSION}): upgrade optiviz to open it")
    if version != VERSION:
        raise StateError(f"state format {version} is unknown (this optiviz reads format {VERSION})")
    body = match.group(2)
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_JSON + 1)
    except (binascii.Error, ValueError, zlib.error):
        raise StateError("state string is damaged or cut short: copy the whole string again") from None
    if len(raw) > MAX_JSON or inflater.unconsumed_tail:
        raise StateError(f"state is too big: it inflates past {MAX_JSON:,} bytes, more than any setting")
    if not inflater.eof:
        raise StateError("state string is cut short: copy the whole string again")
    try:
        return _loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise StateError("state string is damaged: its content is not text") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a setting can hold")


def _loads(text_: str) -> Any:
    try:
        return json.loads(text_, parse_constant=_refuse_constant)
    except RecursionError:
        raise StateError("state JSON is nested too deeply") from None
    except ValueError as exc:
        raise StateError(f"state JSON cannot be read: {exc}") from None


__all__ = ["STATE_ENV", "QUERY_PARAM", "VERSION", "PREFIX", "VIEWS", "SCHEMAS", "StateError", "read_state", "to_string", "to_json", "document", "plain"]
