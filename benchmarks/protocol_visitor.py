"""A visitor that talks to `optiviz present` the way a Voila page does, and draws nothing.

bench_classroom.py's Chromium visitors run their renderers on the server's own cores, which a
lecture hall's laptops do not. This visitor sends and answers on the wire what the page would, so
the server's share of a class can be measured alone:

1. GET the Voila page (its cookies kept, `_xsrf` among them) and read the kernel id from
   `<script id="jupyter-config-data">`; GET `/api/kernels/<id>` (Voila's widget manager does).
2. Open `/api/kernels/<id>/channels?session_id=...` with JupyterLab's websocket subprotocol
   `v1.kernel.websocket.jupyter.org` (framed by jupyter_server's own helpers), ask `kernel_info`.
3. Load the widgets as ipywidgets 8's `_loadFromKernel` does: `comm_open` on
   `jupyter.widget.control` (metadata version 1.0.0), `{"method": "request_states"}`, the
   `update_states` reply; no reply within 4 s and the front end asks widget by widget instead
   (`comm_info_request`, then `{"method": "request_state"}` per comm): so does this visitor.
   "First figure" is when the states of the page's first surface figure and its marks are here.
4. Act as the page's front-end links (`jsdlink`, `jslink`): a change of a source model's value is
   copied to the target with `{"method": "update"}`, and once at load. That is how the explorer's
   frame window (optiviz/views/common/frame_ack.py) hears that a frame was applied.
5. Press Play as a click does (`{"method": "custom", "content": {"event": "click"}}` to the
   first explorer's Play button) and count the `update` messages to its trajectory mark.
6. Leave as the page's unload does: POST `voila/api/shutdown/<id>` with the `_xsrf` form field.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from html.parser import HTMLParser
from typing import Any

from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1

SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
CONTROL_TARGET = "jupyter.widget.control"
WIDGET_TARGET = "jupyter.widget"
CONTROL_VERSION = "1.0.0"  # the metadata ipywidgets 8's front end opens the control comm with
CONTROL_TIMEOUT_S = 4.0  # ipywidgets 8: "Control comm did not respond in time", then per widget
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
OUTPUT_MIME = "application/vnd.voila.cell-output+json"  # Voila 0.5 puts each output in one of these
MODEL_REF = "IPY_MODEL_"
LINK_MODELS = {"DirectionalLinkModel": False, "LinkModel": True}  # name -> both ways


class _PageScripts(HTMLParser):
    """The page's config data and the widget views its outputs hold, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.config: str | None = None
        self.views: list[str] = []
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("id") == "jupyter-config-data":
            self._in = "config"
        elif tag == "script" and a.get("type") in (VIEW_MIME, OUTPUT_MIME):
            self._in = a["type"]
        self._text = []

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != "script" or not self._in:
            return
        text = "".join(self._text)
        if self._in == "config" and self.config is None:
            self.config = text
        elif self._in in (VIEW_MIME, OUTPUT_MIME):
            try:
                view = json.loads(text)
                model = (view.get("data", {}).get(VIEW_MIME) or {} if self._in == OUTPUT_MIME else view).get("model_id")
            except (ValueError, AttributeError):
                model = None
            if isinstance(model, str):
                self.views.append(model)
        self._in = None


def read_page(html: str) -> tuple[str, str, list[str]]:
    """The kernel id and base URL Voila put in the page, and its outputs' widget view ids in order."""
    parser = _PageScripts()
    parser.feed(html)
    if parser.config is None:
        raise ValueError("no <script id=\"jupyter-config-data\"> in the page: not a Voila page")
    config = json.loads(parser.config)
    kernel_id = config.get("kernelId")
    if not isinstance(kernel_id, str) or not kernel_id:
        raise ValueError("the page's jupyter-config-data has no kernelId")
    return kernel_id, str(config.get("baseUrl") or "/"), parser.views


def pack(session: Session, msg_type: str, content: dict, channel: str = "shell",
         metadata: dict | None = None) -> tuple[str, bytes]:
    """(msg_id, websocket frame) of one message, as JupyterLab's v1 protocol frames it."""
    msg = session.msg(msg_type, content, metadata=metadata or {})
    parts = [session.pack(msg[k]) for k in ("header", "parent_header", "metadata", "content")]
    return msg["header"]["msg_id"], serialize_msg_to_ws_v1(parts, channel)


def unpack(session: Session, frame: bytes) -> dict:
    """A websocket frame from the server: channel, header, parent_header, content, buffers."""
    channel, parts = deserialize_msg_from_ws_v1(frame)
    keys = ("header", "parent_header", "metadata", "content")
    msg = {k: session.unpack(p) for k, p in zip(keys, parts)}
    msg["channel"], msg["buffers"] = channel, list(parts[4:])
    return msg


def comm_msg(session: Session, comm_id: str, data: dict) -> tuple[str, bytes]:
    return pack(session, "comm_msg", {"comm_id": comm_id, "data": data})


def click(session: Session, button_id: str) -> tuple[str, bytes]:
    """What an ipywidgets Button's view sends when it is clicked."""
    return comm_msg(session, button_id, {"method": "custom", "content": {"event": "click"}})


def update(session: Session, model_id: str, state: dict) -> tuple[str, bytes]:
    """What a front-end model sends on save_changes (no binary buffers here)."""
    return comm_msg(session, model_id, {"method": "update", "state": state, "buffer_paths": []})


def references(value: Any) -> list[str]:
    """Model ids a state value points at ("IPY_MODEL_<id>", nested in lists and dicts), in order."""
    if isinstance(value, str):
        return [value[len(MODEL_REF):]] if value.startswith(MODEL_REF) else []
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in references(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in references(v)]
    return []


def walk(states: dict[str, dict], roots: list[str]) -> list[str]:
    """Every model reachable from roots, depth first in the order the states name them."""
    seen: list[str] = []
    todo = list(reversed(roots))
    while todo:
        mid = todo.pop()
        if mid in seen or mid not in states:
            continue
        seen.append(mid)
        todo.extend(reversed(references(states[mid]["state"])))
    return seen


def explorer_parts(states: dict[str, dict], views: list[str]) -> tuple[str, list[str], str, str]:
    """The page's first surface figure (a bqplot Figure with a HeatMap), the models it needs, its
    trajectory mark (the figure's last Lines, the live part of its paths, which every frame updates)
    and the page's first Play button (both in the first explorer: the page's first output holding
    either holds both)."""
    order = walk(states, views or list(states))
    name = lambda m: states[m]["model_name"]  # noqa: E731
    play = next((m for m in order if name(m) == "ButtonModel"
                 and states[m]["state"].get("description", "").strip() == "Play"), None)
    for mid in order:
        if name(mid) != "FigureModel":
            continue
        marks = [m for m in references(states[mid]["state"].get("marks", [])) if m in states]
        if not any(name(m) == "HeatMapModel" for m in marks):
            continue
        lines = [m for m in marks if name(m) == "LinesModel"]
        if not lines or play is None:
            raise ValueError("the first surface figure has no trajectory mark, or the page no Play button")
        return mid, walk(states, [mid]), lines[-1], play
    raise ValueError("no bqplot Figure with a HeatMap among the page's widgets")


def links(states: dict[str, dict]) -> list[tuple[str, str, str, str]]:
    """(source id, attribute, target id, attribute) for every front-end link, both ways for jslink."""
    found = []
    for entry in states.values():
        both = LINK_MODELS.get(entry["model_name"])
        if both is None:
            continue
        (src, sa), (dst, da) = entry["state"].get("source", ("", "")), entry["state"].get("target", ("", ""))
        src, dst = src[len(MODEL_REF):], dst[len(MODEL_REF):]
        found.append((src, sa, dst, da))
        if both:
            found.append((dst, da, src, sa))
    return found


def state_sizes(reply: dict) -> dict[str, int]:
    """Bytes per model in an update_states reply: its state's JSON plus its binary buffers."""
    data = reply["content"]["data"]
    sizes = {mid: len(json.dumps(entry["state"])) for mid, entry in data["states"].items()}
    for path, buf in zip(data.get("buffer_paths", []), reply["buffers"]):
        sizes[path[0]] = sizes.get(path[0], 0) + len(buf)
    return sizes


class _Kernel:
    """One page's kernel connection: replies by parent id, widget states, links, frame counts."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.session = ws, Session(key=b"", username="visitor")  # the server signs what it forwards
        self.replies: dict[str, asyncio.Future] = {}
        self.states: dict[str, dict] = {}
        self.links: list[tuple[str, str, str, str]] = []
        self.control: str | None = None
        self.counted: str | None = None  # the model whose updates are counted
        self.updates = 0
        self.fell_back = False  # the control comm did not answer in 4 s: widget by widget

    async def send(self, packed: tuple[str, bytes]) -> asyncio.Future:
        msg_id, frame = packed
        self.replies[msg_id] = asyncio.get_running_loop().create_future()
        await self.ws.send(frame)
        return self.replies[msg_id]

    async def read(self) -> None:
        async for frame in self.ws:
            msg = unpack(self.session, frame)
            parent = msg["parent_header"].get("msg_id")
            kind, content = msg["header"]["msg_type"], msg["content"]
            if kind in ("comm_msg", "comm_open"):
                await self._comm(kind, content, msg, parent)
            elif msg["channel"] == "shell" and parent in self.replies and not self.replies[parent].done():
                self.replies[parent].set_result(msg)

    async def _comm(self, kind: str, content: dict, msg: dict, parent: str | None) -> None:
        comm_id, data = content.get("comm_id"), content.get("data") or {}
        if kind == "comm_open":  # a widget made after the page loaded: the front end makes its model
            self.states[comm_id] = {"model_name": data.get("state", {}).get("_model_name"), "state": data.get("state", {})}
            self.links = links(self.states)
            return
        method = data.get("method")
        if comm_id == self.control and method == "update_states":
            future = self.replies.get("update_states")
            if future is not None and not future.done():
                future.set_result(msg)
            return
        if method != "update":
            return
        if parent in self.replies and not self.replies[parent].done():  # a request_state's answer
            self.replies[parent].set_result(msg)
        if comm_id == self.counted:
            self.updates += 1
        for src, sa, dst, da in self.links:  # as the front end's jsdlink / jslink copy a value
            if src == comm_id and sa in data.get("state", {}):
                await self.ws.send(update(self.session, dst, {da: data["state"][sa]})[1])

    async def load_widgets(self) -> bool:
        """ipywidgets 8's _loadFromKernel (True), or its per-widget fallback after 4 s (False):
        2,250 request_state messages for notebook 1, minutes on a busy server."""
        self.control = str(uuid.uuid4())
        self.replies["update_states"] = asyncio.get_running_loop().create_future()
        await self.ws.send(pack(self.session, "comm_open", {"comm_id": self.control, "target_name": CONTROL_TARGET,
                                                            "data": {}}, metadata={"version": CONTROL_VERSION})[1])
        await self.ws.send(comm_msg(self.session, self.control, {"method": "request_states"})[1])
        try:
            reply = await asyncio.wait_for(asyncio.shield(self.replies["update_states"]), CONTROL_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.fell_back = True
            info = await (await self.send(pack(self.session, "comm_info_request", {"target_name": WIDGET_TARGET})))
            ids = list(info["content"].get("comms", {}))
            asks = [await self.send(comm_msg(self.session, i, {"method": "request_state"})) for i in ids]
            for mid, answer in zip(ids, await asyncio.gather(*asks)):
                state = answer["content"]["data"]["state"]
                self.states[mid] = {"model_name": state.get("_model_name"), "state": state}
            self.links = links(self.states)
            return False
        self.sizes = state_sizes(reply)
        self.states.update(reply["content"]["data"]["states"])
        self.links = links(self.states)
        await self.ws.send(pack(self.session, "comm_close", {"comm_id": self.control, "data": {}})[1])
        return True

    async def sync_links(self) -> None:
        """A front-end link sets its target once when it is made."""
        for src, sa, dst, da in self.links:
            if src in self.states and sa in self.states[src]["state"]:
                await self.ws.send(update(self.session, dst, {da: self.states[src]["state"][sa]})[1])


def kernel_fell_back(state: dict) -> bool:
    kernel = state.get("kernel_obj")
    return kernel is not None and kernel.fell_back


async def visit(url: str, t0: float, timeout: float, play_s: float, result: dict) -> None:
    """One protocol visitor; fills result as bench_classroom's Chromium visitor does, and sets
    result["leave"], the page's unload (call it once the visit is over)."""
    import httpx
    from urllib.parse import urlsplit
    from websockets.asyncio.client import connect

    result.update(outside=[], figure_s=None, frames=0, full=False, error="", kind="protocol", fallback=False,
                  stage="page")
    client = httpx.AsyncClient(timeout=timeout)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    state: dict[str, Any] = {}

    async def leave() -> None:
        reader = state.get("reader")
        if reader is not None:
            reader.cancel()
        if "ws" in state:
            await state["ws"].close()
        if "kernel" in state:
            xsrf = client.cookies.get("_xsrf", "")
            await client.post(f"{origin}{state['base']}voila/api/shutdown/{state['kernel']}",
                              files={"_xsrf": (None, xsrf)})
        await client.aclose()

    result["leave"] = leave
    try:
        async with client.stream("GET", url) as response:
            result["commit_s"] = time.monotonic() - t0
            body = (await response.aread()).decode()
        if response.status_code == 503:
            result["full"] = "class is full" in body.lower()
            return
        result["html_s"] = time.monotonic() - t0
        kernel_id, base, views = read_page(body)
        state.update(kernel=kernel_id, base=base)
        (await client.get(f"{origin}{base}api/kernels/{kernel_id}")).raise_for_status()
        cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        ws_url = f"ws://{urlsplit(url).netloc}{base}api/kernels/{kernel_id}/channels?session_id={uuid.uuid4()}"
        state["ws"] = ws = await connect(ws_url, subprotocols=[SUBPROTOCOL], origin=origin, max_size=None,
                                         additional_headers={"Cookie": cookies}, open_timeout=timeout)
        state["kernel_obj"] = kernel = _Kernel(ws)
        state["reader"] = asyncio.create_task(kernel.read())
        result["stage"] = "kernel_info"
        await asyncio.wait_for(await kernel.send(pack(kernel.session, "kernel_info_request", {})), timeout)
        result["stage"] = "widget states"
        await asyncio.wait_for(kernel.load_widgets(), timeout)
        result["stage"] = "Play"
        result["fallback"] = kernel.fell_back
        figure, needed, trajectory, play = explorer_parts(kernel.states, views)
        missing = [m for m in needed if m not in kernel.states]
        if missing:
            raise ValueError(f"{len(missing)} of the first figure's models never arrived")
        result["figure_s"] = time.monotonic() - t0
        sizes = getattr(kernel, "sizes", {})
        result["state_bytes"] = sum(sizes.values())
        result["largest"] = sorted(((b, kernel.states[m]["model_name"]) for m, b in sizes.items()), reverse=True)[:3]
        await kernel.sync_links()
        kernel.counted = trajectory
        await ws.send(click(kernel.session, play)[1])
        await asyncio.sleep(play_s)
        result["frames"] = kernel.updates
        if state["reader"].done():
            state["reader"].result()  # the connection closed: say why
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what went wrong per visitor
        said = str(exc).splitlines()[0][:160] if str(exc) else ""
        result["fallback"] = kernel_fell_back(state)
        result["error"] = (f"{type(exc).__name__} at {result['stage']}"
                           + (" (per-widget fallback)" if result["stage"] == "widget states" and kernel_fell_back(state)
                              else "") + (f": {said}" if said else ""))
