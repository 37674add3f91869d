"""bench_classroom's protocol visitor, its pure parts: reading a Voila page, the messages it sends,
finding the first explorer's figure, trajectory mark and Play button, the front-end links.

(The visitor itself talks to a live server: benchmarks/bench_classroom.py --browsers 0 runs it.)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import protocol_visitor as pv  # noqa: E402


def voila_page(kernel_id: str | None, views: list[str]) -> str:
    config = {"baseUrl": "/base/", "kernelId": kernel_id} if kernel_id else {"baseUrl": "/"}
    outputs = "".join(
        f'<div><script type="application/vnd.voila.cell-output+json">'
        f'{json.dumps({"data": {pv.VIEW_MIME: {"model_id": v, "version_major": 2}, "text/plain": "x < y"}})}'
        f"</script></div>" for v in views)
    text_output = '<script type="application/vnd.voila.cell-output+json">{"data": {"text/plain": "7"}}</script>'
    return (f'<html><body><script id="jupyter-config-data" type="application/json">{json.dumps(config)}</script>'
            f"{text_output}{outputs}<script>voila_process(1, 2)</script></body></html>")


def test_the_kernel_id_base_url_and_views_are_read_from_the_page_in_order():
    kernel, base, views = pv.read_page(voila_page("k-123", ["b", "a", "c"]))
    assert (kernel, base, views) == ("k-123", "/base/", ["b", "a", "c"])


def test_a_page_without_a_kernel_id_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="no kernelId"):
        pv.read_page(voila_page(None, ["a"]))
    with pytest.raises(ValueError, match="jupyter-config-data"):
        pv.read_page("<html><p>The class is full</p></html>")


def sent(packed: tuple[str, bytes]) -> tuple[str, dict, dict]:
    """What the server reads from a frame: channel, header, content."""
    channel, parts = deserialize_msg_from_ws_v1(packed[1])
    header, content = json.loads(parts[0]), json.loads(parts[3])
    assert header["msg_id"] == packed[0]
    return channel, header, content


def test_a_click_is_the_custom_message_an_ipywidgets_button_sends():
    channel, header, content = sent(pv.click(Session(key=b""), "play-id"))
    assert channel == "shell" and header["msg_type"] == "comm_msg"
    assert content == {"comm_id": "play-id", "data": {"method": "custom", "content": {"event": "click"}}}


def test_an_update_and_the_control_comm_open_are_framed_as_jupyterlab_sends_them():
    session = Session(key=b"")
    _, header, content = sent(pv.update(session, "answers", {"value": 7}))
    assert content == {"comm_id": "answers", "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []}}
    msg_id, frame = pv.pack(session, "comm_open", {"comm_id": "c", "target_name": pv.CONTROL_TARGET, "data": {}},
                            metadata={"version": pv.CONTROL_VERSION})
    _, parts = deserialize_msg_from_ws_v1(frame)
    assert json.loads(parts[2]) == {"version": "1.0.0"}
    back = pv.unpack(session, frame)  # the server's frames have the same parts
    assert back["header"]["msg_id"] == msg_id and back["content"]["target_name"] == "jupyter.widget.control"
    assert back["channel"] == "shell" and back["buffers"] == []


def model(name: str, **state) -> dict:
    return {"model_name": name, "model_module": "m", "model_module_version": "1", "state": state}


def ref(mid: str) -> str:
    return pv.MODEL_REF + mid


def explorer(prefix: str) -> dict[str, dict]:
    p = prefix
    return {
        f"{p}root": model("VBoxModel", children=[ref(f"{p}controls"), ref(f"{p}fig")]),
        f"{p}controls": model("HBoxModel", children=[ref(f"{p}step"), ref(f"{p}play")]),
        f"{p}step": model("ButtonModel", description="Step"),
        f"{p}play": model("ButtonModel", description="Play"),
        f"{p}fig": model("FigureModel", marks=[ref(f"{p}heat"), ref(f"{p}contours"), ref(f"{p}paths"),
                                               ref(f"{p}heads")], scale_x=ref(f"{p}sx")),
        f"{p}heat": model("HeatMapModel", scales={"x": ref(f"{p}sx")}),
        f"{p}contours": model("LinesModel", scales={"x": ref(f"{p}sx")}),
        f"{p}paths": model("LinesModel", scales={"x": ref(f"{p}sx")}),
        f"{p}heads": model("ScatterModel"),
        f"{p}sx": model("LinearScaleModel"),
    }


def test_the_first_explorers_figure_trajectory_and_play_button_are_found():
    states = {**explorer("b-"), **explorer("a-"), "loss": model("FigureModel", marks=[ref("lossline")]),
              "lossline": model("LinesModel")}
    figure, needed, trajectory, play = pv.explorer_parts(states, ["loss", "a-root", "b-root"])
    assert (figure, trajectory, play) == ("a-fig", "a-paths", "a-play"), "the page's order, not the states'"
    assert set(needed) == {"a-fig", "a-heat", "a-contours", "a-paths", "a-heads", "a-sx"}
    with pytest.raises(ValueError, match="no bqplot Figure with a HeatMap"):
        pv.explorer_parts({"loss": states["loss"], "lossline": states["lossline"]}, ["loss"])


def test_front_end_links_copy_one_way_or_both():
    states = {"d": model("DirectionalLinkModel", source=[ref("sent"), "value"], target=[ref("drawn"), "value"]),
              "l": model("LinkModel", source=[ref("s"), "index"], target=[ref("t"), "value"]),
              "x": model("IntTextModel", value=3)}
    assert sorted(pv.links(states)) == [("s", "index", "t", "value"), ("sent", "value", "drawn", "value"),
                                        ("t", "value", "s", "index")]


def test_state_sizes_count_each_models_buffers_against_it():
    states = {"h": model("HeatMapModel", x=None), "b": model("ButtonModel", description="Play")}
    reply = {"content": {"data": {"states": states, "buffer_paths": [["h", "state", "x"], ["h", "state", "color"]]}},
             "buffers": [b"1234", b"123456"]}
    sizes = pv.state_sizes(reply)
    assert sizes["h"] == len(json.dumps(states["h"]["state"])) + 10
    assert sizes["b"] == len(json.dumps(states["b"]["state"]))


def test_browsers_beyond_the_visitors_are_refused_before_anything_starts():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_classroom.py"), "--visitors", "2",
                          "--browsers", "3"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--browsers must be 0 to the number of visitors (2), got 3" in out.stderr
