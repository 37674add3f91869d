"""`optiviz lab` and `optiviz present NOTEBOOK` as a person uses them from a shell.

Each test starts the command as a subprocess on a free port with --no-browser, waits for the URL it
prints, fetches that URL over 127.0.0.1, then presses Ctrl-C (SIGINT to the command's whole process
group, as a terminal does; or to the command alone, as `kill -INT` does) and checks that it stops
within a timeout, says so, and leaves no process behind: not the server, not a kernel.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from optiviz import cli

pytestmark = pytest.mark.slow

START_TIMEOUT = 120  # s: a cold JupyterLab on 2 loaded cores
STOP_TIMEOUT = 30  # s: from Ctrl-C to the command's exit, kernels included
URL_RE = re.compile(r"http://127\.0\.0\.1:(\d+)\S*")
MARKER = "optiviz-cli-marker"


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nobody listens there any more (connections of ours in TIME_WAIT don't count, as for servers)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def _ppid_and_state(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: the fields after the last ')' are fixed
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone: it holds no port and runs nothing)."""
    info = _ppid_and_state(pid)
    return info is not None and info[1] != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process below pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _ppid_and_state(int(entry.name))
            if info is not None and info[1] != "Z":
                children.setdefault(info[0], []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class Command:
    """`python -m optiviz.cli ARGS` in its own process group, stdout read line by line in a thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "optiviz.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, env=env, cwd=cwd, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for_url(self, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            match = URL_RE.search(line)
            if match:
                return match.group(0)
        raise AssertionError(f"no URL printed within {timeout} s (exit code {self.proc.poll()}):\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.output)

    def ctrl_c(self, whole_group: bool = True) -> None:
        if whole_group:  # a terminal's Ctrl-C: SIGINT to every process of the foreground group
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        t0 = time.monotonic()
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"did not stop within {timeout} s of Ctrl-C:\n{self.text}") from None
        self.stop_seconds = time.monotonic() - t0
        return code

    def kill(self) -> None:
        """Test cleanup: whatever is left of this command's group."""
        for pid in descendants(self.proc.pid) | {self.proc.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def get(url: str, timeout: float = 180, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def wait_until_gone(pids: set[int], timeout: float) -> set[int]:
    """The pids still running after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    left = {p for p in pids if alive(p)}
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = {p for p in left if alive(p)}
    return left


def check_clean_stop(cmd: Command, port: int, started: set[int], code: int) -> None:
    assert code == 0, f"exit code {code} after Ctrl-C:\n{cmd.text}"
    assert "stopping" in cmd.text, cmd.text
    # A clean shutdown has stopped the kernels by the time the command exits. (An orphaned kernel
    # would exit a second or two later on its own, when it polls for its parent: not clean.)
    left = wait_until_gone(started | {cmd.proc.pid}, timeout=0.5)
    assert not left, f"processes left after Ctrl-C: {sorted(left)}\n{cmd.text}"
    assert port_is_free(port), f"port {port} still taken after Ctrl-C"


@pytest.fixture
def tiny_notebook(tmp_path) -> Path:
    """A notebook whose rendered page proves it ran: the marker is computed, not written."""
    nb = new_notebook(cells=[
        new_markdown_cell("# A tiny lecture"),
        new_code_cell('print("optiviz-cli-" + "marker", 6 * 7)'),
    ], metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(path))
    return path


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Never read or write the user's Jupyter state; the checkout first on the path."""
    env = dict(os.environ)
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
        path = tmp_path / "jupyter-state" / key.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[key] = str(path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")) if p)
    env.pop("JUPYTER_TOKEN", None)
    env.update(extra)
    return env


# --------------------------------------------------------------------------- optiviz lab


@pytest.mark.parametrize("whole_group", [True, False], ids=["ctrl-c", "kill-int"])
def test_lab_prints_url_serves_the_notebooks_and_stops_on_ctrl_c(tmp_path, tiny_notebook, whole_group):
    (tmp_path / "01_first.ipynb").write_bytes(tiny_notebook.read_bytes())
    port = free_port()
    cmd = Command(["lab", "--no-browser", "--port", str(port), "--dir", str(tmp_path)], env=isolated_env(tmp_path))
    try:
        url = cmd.wait_for_url()
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/01_first.ipynb?token="), url
        status, page = get(url)
        assert status == 200 and "JupyterLab" in page
        # no "get notified about official Jupyter news?" pop-up: the announcements plugin is off
        config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                      page, re.S).group(1))
        assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]

        token = url.split("token=")[1]
        base = f"http://127.0.0.1:{port}"
        status, body = get(f"{base}/api/contents?token={token}")
        assert "01_first.ipynb" in body, body[:500]
        # a kernel, as opening a notebook starts one: it must go when the command stops
        status, body = get(f"{base}/api/kernels?token={token}", method="POST")
        kernel = json.loads(body)["id"]
        assert kernel
        started = descendants(cmd.proc.pid)
        assert len(started) >= 2, "the server and its kernel run as children of the command"

        cmd.ctrl_c(whole_group)
        code = cmd.wait()
        check_clean_stop(cmd, port, started, code)
    finally:
        cmd.kill()


def test_lab_rejects_a_missing_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "optiviz.cli", "lab", "--no-browser", "--dir",
                             str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "is not a folder" in result.stderr


# --------------------------------------------------------------------------- optiviz present


@pytest.mark.parametrize("whole_group", [True, False], ids=["ctrl-c", "kill-int"])
def test_present_renders_the_notebook_with_voila_and_stops_on_ctrl_c(tmp_path, tiny_notebook, whole_group):
    port = free_port()
    cmd = Command(["present", str(tiny_notebook), "--no-browser", "--port", str(port)], env=isolated_env(tmp_path))
    try:
        url = cmd.wait_for_url()
        assert url.rstrip("/") == f"http://127.0.0.1:{port}", url
        status, page = get(url)  # Voila runs every cell before it answers
        assert status == 200
        assert "A tiny lecture" in page, page[:2000]
        assert f"{MARKER} 42" in page, "the page shows the cell's computed output"
        assert "6 * 7" not in page, "a class view shows no code"
        started = descendants(cmd.proc.pid)
        assert len(started) >= 2, "Voila and the notebook's kernel run as children of the command"

        cmd.ctrl_c(whole_group)
        code = cmd.wait()
        check_clean_stop(cmd, port, started, code)
    finally:
        cmd.kill()


def test_present_finds_a_notebook_by_name_in_the_lecture_folder(tmp_path, tiny_notebook):
    port = free_port()
    env = isolated_env(tmp_path, **{cli.NOTEBOOK_ENV: str(tiny_notebook.parent)})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cmd = Command(["present", tiny_notebook.name, "--no-browser", "--port", str(port)], env=env, cwd=elsewhere)
    try:
        url = cmd.wait_for_url()
        status, page = get(url)
        assert status == 200 and f"{MARKER} 42" in page
        cmd.ctrl_c()
        assert cmd.wait() == 0
    finally:
        cmd.kill()


def test_present_rejects_what_is_not_a_notebook(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for arg in (str(text), str(tmp_path / "missing.ipynb")):
        result = subprocess.run([sys.executable, "-m", "optiviz.cli", "present", arg, "--no-browser"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert "NOTEBOOK must be an existing .ipynb file" in result.stderr


# --------------------------------------------------------------------------- the command itself


def test_console_script_points_at_main():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "optiviz"]
    assert script.value == "optiviz.cli:main"
    assert script.load() is cli.main


def test_default_notebooks_are_the_lecture_notebooks(monkeypatch):
    monkeypatch.delenv(cli.NOTEBOOK_ENV, raising=False)
    folder = cli.notebooks_dir()
    assert folder == Path(__file__).resolve().parents[1] / "notebooks"
    assert sorted(p.name for p in folder.glob("0*.ipynb"))[0].startswith("01_")


def test_a_chatty_server_is_not_blocked_by_its_own_log(monkeypatch, tmp_path):
    """The server logs every request to stderr: the command must keep reading it, or the pipe fills
    (64 KiB) and the server hangs mid-lecture. This child writes 1 MB to stderr before it answers."""
    port = free_port()
    child = tmp_path / "chatty.py"
    child.write_text(
        "import sys, http.server\n"
        "for _ in range(10_000):\n"
        "    sys.stderr.write('x' * 99 + '\\n')\n"
        "sys.stderr.flush()\n"
        f"server = http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler)\n"
        "server.handle_request()\n"  # the command's probe; then exit 0
    )
    real_wait = cli.wait_until_up
    monkeypatch.setattr(cli, "wait_until_up", lambda url, proc, timeout=60.0: real_wait(url, proc, timeout=60.0))
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    code = cli.serve([sys.executable, str(child)], f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/", "chatty")
    assert code == 0
    assert {s: signal.getsignal(s) for s in before} == before, "serve() puts the signal handlers back"


# --------------------------------------------------------------------------- a class of visitors


def kernels_of(cmd: Command) -> set[int]:
    return {p for p in descendants(cmd.proc.pid) if "ipykernel" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")}


def test_present_starts_no_kernel_before_a_visitor_and_turns_the_next_one_away(tmp_path, tiny_notebook):
    """The readiness check renders nothing (with --preheat 0 no kernel runs until someone opens the
    page); with a cap of one, the second visitor gets the class-full page, and once the first leaves
    (Voila's unload beacon: POST /voila/api/shutdown with the _xsrf cookie the page was given) the
    place is free again."""
    port = free_port()
    cmd = Command(["present", str(tiny_notebook), "--no-browser", "--port", str(port), "--preheat", "0",
                   "--max-visitors", "1"], env=isolated_env(tmp_path))
    try:
        url = cmd.wait_for_url()
        assert "1 visitors at most" in cmd.text and "0 kernel(s) preheated" in cmd.text, cmd.text
        time.sleep(1.0)
        assert not kernels_of(cmd), "no kernel before the first visitor"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(url, timeout=180) as resp:
            page = resp.read().decode()
            assert resp.status == 200 and f"{MARKER} 42" in page
        (kernel,) = kernels_of(cmd)
        kernel_id = re.search(r'"kernelId": "([0-9a-f-]+)"', page).group(1)
        with pytest.raises(urllib.error.HTTPError) as full:
            urllib.request.urlopen(url, timeout=60)
        assert full.value.code == 503 and full.value.headers["Retry-After"] == "30"
        assert "The class is full" in full.value.read().decode()
        assert kernels_of(cmd) == {kernel}, "the visitor turned away got no kernel"

        jar = next(h.cookiejar for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor))
        xsrf = next(c.value for c in jar if c.name == "_xsrf")
        leave = urllib.request.Request(f"http://127.0.0.1:{port}/voila/api/shutdown/{kernel_id}", method="POST",
                                       data=b"", headers={"X-XSRFToken": xsrf})
        with opener.open(leave, timeout=60) as resp:
            assert resp.status == 204
        assert not wait_until_gone({kernel}, timeout=20), "the page's kernel shuts down when it leaves"
        status, page = get(url)
        assert status == 200 and f"{MARKER} 42" in page, "the place is free again"
        cmd.ctrl_c()
        assert cmd.wait() == 0
    finally:
        cmd.kill()


def test_present_preheats_exactly_the_kernels_it_is_asked_for(tmp_path, tiny_notebook):
    """--preheat 1: one kernel has run the notebook when the URL is printed (the readiness check
    waits for it), and the first visitor gets that kernel's page: no second kernel is started for
    them beyond the pool's one replacement."""
    port = free_port()
    cmd = Command(["present", str(tiny_notebook), "--no-browser", "--port", str(port), "--preheat", "1"],
                  env=isolated_env(tmp_path))
    try:
        url = cmd.wait_for_url()
        status, body = get(f"{url.rstrip('/')}/optiviz/ready")
        ready = json.loads(body)
        assert status == 200 and ready["warm"] == 1 and ready["visitors"] == 0, ready
        assert len(kernels_of(cmd)) == 1, "one deliberate, preheated kernel and no other"
        status, page = get(url)
        assert status == 200 and f"{MARKER} 42" in page
        assert len(kernels_of(cmd)) == 1, "the visitor took the warm kernel; visitors + warm kernels stay at 1"
        cmd.ctrl_c()
        assert cmd.wait() == 0
    finally:
        cmd.kill()
