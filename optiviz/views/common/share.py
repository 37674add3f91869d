"""Share a setting: `view.state()`, `Cls.from_state(s)`, the Share control, and a shared link.

Every live view is `Shareable`: it says its setting as plain data (`setting()`, read from its
controller or its controls, never kept twice) and how a setting becomes its constructor's
arguments (`setting_args`). The format and its checks are optiviz/state.py's.

A shared link: `optiviz present NB --state S` puts S in $OPTIVIZ_STATE for the kernels, and a Voila
page opened with `?optiviz_state=S` has it in the kernel's $QUERY_STRING (which wins). The first view of that
kind the notebook builds opens with the setting instead of the notebook's arguments (one setting
opens one view); a string that cannot be used is said in that view's error line, and the
notebook's own setting runs.
"""
from __future__ import annotations

import contextlib
import html
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import ipywidgets as widgets

from optiviz._validate import check_choice
from optiviz.views.common.controls import Looks, looks_or_own
from optiviz.state import QUERY_PARAM, STATE_ENV, StateError, document, read_state, to_json, to_string

FORMS = ("string", "json", "dict")

_lock = threading.Lock()
_shared = {"taken": False}
_explicit = threading.local()  # inside from_state: a shared link does not replace what was asked for


class Shareable:
    """Mixin of the live views: their whole setting out as a string or JSON, and back in."""

    STATE_VIEW: str = ""  # the view's name in a state document
    OPTIONS: tuple[str, ...] = ()  # constructor arguments that are not part of a setting (display, device)

    def setting(self) -> dict[str, Any]:
        """Everything a user set that changes what runs (no derived values), as plain data."""
        raise NotImplementedError

    @classmethod
    def setting_args(cls, setting: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """The constructor's arguments for a checked setting, the caller's `options` (OPTIONS) included."""
        raise NotImplementedError

    def after_state(self, setting: dict[str, Any]) -> None:
        """What a setting holds that the constructor does not take (default: nothing)."""

    def state(self, form: str = "string") -> str | dict[str, Any]:
        """The whole setting: "string" (short, for a link), "json" (readable) or "dict" (the document).
        `type(view).from_state(...)` of any of them rebuilds a view whose runs are the same, step for step."""
        form = check_choice("form", form, FORMS)
        setting = self.setting()
        if form == "string":
            return to_string(self.STATE_VIEW, setting)
        return to_json(self.STATE_VIEW, setting) if form == "json" else document(self.STATE_VIEW, setting)

    @classmethod
    def from_state(cls, state: str | Mapping[str, Any], **options: Any) -> Any:
        """A new view from `view.state()` (a string, JSON or the dict). `options` are the arguments a
        state does not hold (OPTIONS: display sizes, the device, the data to check against)."""
        _view, setting = read_state(state, cls.STATE_VIEW)
        extra = sorted(set(options) - set(cls.OPTIONS))
        if extra:
            raise TypeError(f"{cls.STATE_VIEW}.from_state takes only {', '.join(cls.OPTIONS) or 'the state'} besides "
                            f"the state (the rest is in it), got {extra[0]!r}")
        with _no_shared_link():
            try:
                view = cls(**cls.setting_args(setting, dict(options)))
            except (ValueError, TypeError) as exc:
                if isinstance(exc, StateError):
                    raise
                raise StateError(f"{cls.STATE_VIEW} state: {exc}") from None
        view.after_state(setting)
        return view


@contextlib.contextmanager
def _no_shared_link() -> Iterator[None]:
    _explicit.depth = getattr(_explicit, "depth", 0) + 1
    try:
        yield
    finally:
        _explicit.depth -= 1


def shared_link_state() -> str | None:
    """The setting a shared link brought to this kernel: the Voila page's ?optiviz_state= (the more
    specific ask), else $OPTIVIZ_STATE (`optiviz present --state`)."""
    query = urllib.parse.parse_qs(os.environ.get("QUERY_STRING", ""))
    if query.get(QUERY_PARAM):
        return query[QUERY_PARAM][0]
    return os.environ.get(STATE_ENV) or None


def _take_shared(view: str) -> tuple[dict[str, Any] | None, str]:
    """(setting, "") for the first view of its kind in this kernel; (None, message) if it cannot be used."""
    if getattr(_explicit, "depth", 0):
        return None, ""
    with _lock:
        if _shared["taken"]:
            return None, ""
        text_ = shared_link_state()
        if not text_:
            return None, ""
        try:
            name, setting = read_state(text_)
        except StateError as exc:
            _shared["taken"] = True
            return None, f"the shared setting was not used: {exc}"
        if name != view:
            return None, ""  # a view of its kind takes it
        _shared["taken"] = True
        return setting, ""


def open_shared(view: Shareable, init: Callable[..., None], options: dict[str, Any]) -> str | None:
    """In a view's constructor: build `view` from a waiting shared setting (returns None: done), else
    return the message to show ("" for none) and let the constructor go on with its own arguments."""
    setting, note = _take_shared(view.STATE_VIEW)
    if setting is None:
        return note
    cls = type(view)
    try:
        with _no_shared_link():
            init(view, **cls.setting_args(setting, dict(options)))
    except (ValueError, TypeError) as exc:
        return f"the shared setting was not used: {exc}"
    view.after_state(setting)
    return None


def keyword_args(setting: Mapping[str, Any], named: tuple[str, ...], rest: str) -> dict[str, Any]:
    """A view's arguments from a setting: its `named` keys, plus `setting[rest]` as further keywords
    (which may not set a named one: a state says each thing once)."""
    extra = dict(setting.get(rest, {}))
    clash = sorted(set(extra) & {*named, rest})
    if clash:
        raise StateError(f"state: {rest} cannot set {clash[0]!r}, which has its own key")
    return {**{k: setting[k] for k in named if k in setting}, **extra}


class ShareControl:
    """A Share button and a read-only field with the view's state string, drawn from `state()` on
    demand; once shown it follows every change (`refresh()`), so it never shows an old setting."""

    def __init__(self, state: Callable[[], str], view: str, looks: Looks | None = None) -> None:
        """looks: the view's shared Layouts and Styles (none: this control's own)."""
        looks = looks_or_own(looks)
        self._state = state
        self.view = view
        self.shown = False
        self.value = ""  # the string the field shows ("" when none)
        self.button = widgets.Button(description="Share", icon="link", layout=looks.layout(width="90px"),
                                     style=looks.style(widgets.Button),
                                     tooltip=f"the whole setting as one string: ov.{view}.from_state(s), "
                                             f"optiviz present NB --state s, or ?{QUERY_PARAM}=s on a Voila page")
        self.button.add_class("optiviz-share-button")
        self.field = widgets.HTML("", layout=looks.layout(), style=looks.style(widgets.HTML))
        self.field.add_class("optiviz-share")
        self.button.on_click(lambda _b: self.show())
        self.box = widgets.HBox([self.button, self.field], layout=looks.layout())

    def follow(self, *controls: widgets.Widget) -> None:
        """Refresh whenever one of these controls changes (views whose controls hold their setting)."""
        for w in controls:
            w.observe(lambda _change: self.refresh(), "value")

    def show(self) -> None:
        self.shown = True
        self.refresh()

    def refresh(self) -> None:
        if not self.shown:
            return
        try:
            value, message = self._state(), ""
        except ValueError as exc:  # e.g. a Surface object or the user's own tensors: say why not
            value, message = "", str(exc)
        self.value = value
        if message:
            content = f'<span class="optiviz-error">cannot share: {html.escape(message)}</span>'
        else:
            content = (f'<input class="optiviz-share-text" readonly size="48" aria-label="{html.escape(self.view)} '
                       f'state" value="{html.escape(value, quote=True)}" style="font-family:monospace">')
        if self.field.value != content:
            self.field.value = content


__all__ = ["Shareable", "ShareControl", "open_shared", "keyword_args", "shared_link_state", "STATE_ENV", "QUERY_PARAM"]
