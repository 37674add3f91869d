"""Helpers for real-browser tests of optiviz widgets (JupyterLab 4 and Voila 0.5).

The fixtures in ``conftest.py`` start the servers and the browser; everything a test does with a
page lives here as plain functions, so a new test reads like a person's actions::

    from browser_helpers import (copy_notebook, open_notebook_and_run_all, click_button,
                                 set_slider_value, bqplot_line_point_counts, wait_for, screenshot)

    @pytest.mark.browser
    def test_something(jupyter_lab_server, page):
        name = copy_notebook(REPO_ROOT / "notebooks" / "demo.ipynb", jupyter_lab_server)
        open_notebook_and_run_all(page, jupyter_lab_server, name)
        click_button(page, "Start")
        wait_for(lambda: max(bqplot_line_point_counts(page), default=0) > 20, timeout=30)

Rules of thumb baked in here: never ``sleep`` for a fixed time, poll a condition (``wait_for``)
with generous timeouts (CI runners have 2 loaded cores); find widgets by what a person sees
(button text, slider label) or by a CSS class the notebook adds with ``widget.add_class``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from optiviz.cli import server_env
from typing import Any, Callable, TypeVar

import pytest

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
# Tests never rewrite tracked files: screenshots go to the git-ignored artifacts folder, and to
# docs/screenshots/ (what the README shows) only when asked: OPTIVIZ_UPDATE_SCREENSHOTS=1.
SCREENSHOT_DIR = (REPO_ROOT / "docs" / "screenshots" if os.environ.get("OPTIVIZ_UPDATE_SCREENSHOTS") == "1"
                  else REPO_ROOT / "test-artifacts" / "browser" / "screenshots")
ARTIFACT_DIR = REPO_ROOT / "test-artifacts" / "browser"  # failure screenshots/logs (git-ignored)

CHROMIUM_PATH = os.environ.get("OPTIVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes renderers otherwise
]
VIEWPORT = {"width": 1400, "height": 1000}
EXTERNAL_URL = re.compile(r"^(?!(?:https?|wss?)://(127\.0\.0\.1|localhost)[:/])(https?|wss?)://")

# Selectors (JupyterLab 4.6, ipywidgets 8.1, bqplot 0.13, Voila 0.5).
KERNEL_STATUS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
WIDGET_VIEW = ".jupyter-widgets"
BQPLOT_FIGURE = ".bqplot.figure"


# --------------------------------------------------------------------------- environment / skip


def in_ci() -> bool:
    """True when the environment variable CI is set (to anything non-empty)."""
    return bool(os.environ.get("CI"))


def skip_or_fail(reason: str) -> None:
    """Skip the test locally, but fail loudly in CI, where browser tests must run."""
    if in_ci():
        pytest.fail(f"browser test requirement missing in CI (CI={os.environ['CI']!r}): {reason}",
                    pytrace=False)
    pytest.skip(reason)


def missing_browser_requirements() -> list[str]:
    """What stops a browser test from running here (empty list when nothing does)."""
    missing = []
    if not (os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)):
        missing.append(f"chromium not found at {CHROMIUM_PATH} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("python package playwright is not installed (pip install playwright)")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_jupyter_env(state_dir: Path) -> dict[str, str]:
    """Environment for a Jupyter server that never reads or writes the user's Jupyter state.

    Config, data, runtime, lab settings/workspaces and IPython dirs all live under ``state_dir``;
    system-wide data dirs (lab extensions, the python3 kernelspec) are still found through
    sys.prefix. The repo root goes first on PYTHONPATH so kernels import this working tree.
    """
    state_dir = Path(state_dir)
    dirs = {
        "JUPYTER_CONFIG_DIR": state_dir / "config",
        "JUPYTER_DATA_DIR": state_dir / "data",
        "JUPYTER_RUNTIME_DIR": state_dir / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": state_dir / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": state_dir / "lab-workspaces",
        "IPYTHONDIR": state_dir / "ipython",
    }
    env = dict(os.environ)
    for key, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[key] = str(path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env = server_env(env)  # the CLI's own rule, so tests see the servers a user gets
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silence the frozen-modules debugger warning
    env.pop("JUPYTER_TOKEN", None)
    # No news/update popups: disable the announcements plugin outright (belt and braces with
    # --LabApp.news_url=None, which also stops the "fetch news?" notification).
    labconfig = dirs["JUPYTER_CONFIG_DIR"] / "labconfig"
    labconfig.mkdir(exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    return env


# --------------------------------------------------------------------------- servers


@dataclass
class JupyterServer:
    """A Jupyter server (JupyterLab or Voila) started by a fixture, on 127.0.0.1."""

    kind: str  # "lab", "notebook" (Jupyter Notebook 7) or "voila"
    process: subprocess.Popen
    port: int
    token: str  # "" when the server has no auth (Voila)
    root_dir: Path  # copy notebooks here (copy_notebook) before opening them
    log_path: Path
    base_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/", **query: str | None) -> str:
        """Absolute URL for ``path`` with the token (if any) and ``query`` appended
        (a None value gives a bare flag, e.g. ``?reset``)."""
        if self.token:
            query = {**query, "token": self.token}
        qs = "&".join(k if v is None else f"{k}={urllib.parse.quote(str(v))}"
                      for k, v in query.items())
        return f"{self.base_url}/{path.lstrip('/')}" + (f"?{qs}" if qs else "")

    def notebook_url(self, name: str) -> str:
        """Where a person opens notebook ``name`` (relative to root_dir)."""
        quoted = urllib.parse.quote(name)
        if self.kind == "voila":
            return self.url(f"/voila/render/{quoted}")
        if self.kind == "notebook":
            return self.url(f"/notebooks/{quoted}")
        return self.url(f"/lab/tree/{quoted}", reset=None)  # ?reset: fresh workspace each time

    def api(self, method: str, path: str, timeout: float = 10) -> Any:
        """Call the server's REST API (e.g. ``api("GET", "/api/kernels")``); returns parsed JSON."""
        req = urllib.request.Request(self.url(path), method=method)
        if self.token:
            req.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every running kernel (frees the CPU a test's worker threads use)."""
        try:
            for kernel in self.api("GET", "/api/kernels"):
                try:
                    self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)
                except (urllib.error.URLError, OSError):
                    pass
        except (urllib.error.URLError, OSError, ValueError):
            pass

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def stop(self, timeout: float = 20) -> None:
        """Stop cleanly: kernels via the API, SIGTERM, then SIGKILL to the process group."""
        if self.process.poll() is None:
            self.shutdown_kernels()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # anything left in the server's process group (it runs in its own session)
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(10)


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the server if pytest itself dies (kill -9, OOM).

    Servers run in their own session (so a Ctrl-C reaches only pytest, which then stops them
    in order); without this a hard-killed pytest would leave them running. Prepared in the
    parent: the child must not import anything between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def _start_server(kind: str, cmd: list[str], port: int, token: str, root_dir: Path,
                  state_dir: Path, ready_path: str, timeout: float) -> JupyterServer:
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    log_path = Path(state_dir) / f"{kind}.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(cmd, cwd=root_dir, env=isolated_jupyter_env(state_dir),
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, preexec_fn=_die_with_parent_hook())
    log.close()  # the child holds its own copy
    server = JupyterServer(kind, process, port, token, Path(root_dir), log_path)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {process.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url(ready_path), timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_for(answers, timeout, interval=0.25,
                 message=lambda: f"{kind} server did not answer on port {port}:\n"
                                 f"{server.log_tail()}")
    except BaseException:
        server.stop()
        raise
    return server


def start_jupyter_lab(root_dir: Path, state_dir: Path, timeout: float = 90) -> JupyterServer:
    """Start ``jupyter lab`` on a free port with a random token; wait until it answers."""
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}",  # ServerApp.token works too but is deprecated
        f"--ServerApp.root_dir={root_dir}",
        "--allow-root",  # containers/CI often run as root; jupyter refuses without this
        "--ServerApp.terminals_enabled=False",
        "--LabApp.extension_manager=readonly",  # never query PyPI from a test
        "--LabApp.news_url=None",  # no "fetch official Jupyter news?" notification
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands reliably
    ]
    return _start_server("lab", cmd, port, token, root_dir, state_dir, "/api/status", timeout)


def start_jupyter_notebook(root_dir: Path, state_dir: Path, timeout: float = 90) -> JupyterServer:
    """Start Jupyter Notebook 7 (``jupyter notebook``, built on JupyterLab's components) like
    ``start_jupyter_lab``: a free port, a random token, ``window.jupyterapp`` exposed."""
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyter", "notebook", "--no-browser",
        "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}", "--allow-root",
        "--ServerApp.terminals_enabled=False",
        "--JupyterNotebookApp.expose_app_in_browser=True",
    ]
    return _start_server("notebook", cmd, port, token, root_dir, state_dir, "/api/status", timeout)


def start_voila(root_dir: Path, state_dir: Path, timeout: float = 90) -> JupyterServer:
    """Start the Voila `optiviz present` runs (optiviz/serve/voila.py: its template, its page
    handler) serving every notebook under root_dir (no token, 127.0.0.1 only, nothing preheated)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "optiviz.serve.voila", str(root_dir), f"--port={port}", "--preheat=0",
        "--max-visitors=16", "--no-browser", "--show_tracebacks=True",
    ]
    return _start_server("voila", cmd, port, "", root_dir, state_dir, "/optiviz/ready", timeout)


def copy_notebook(src: str | Path, server: JupyterServer | Path, name: str | None = None) -> str:
    """Copy a notebook into the server's root dir; returns its name relative to root_dir.

    ``src`` may be a path or a file name under tests/browser/notebooks/.
    """
    src = Path(src)
    if not src.is_absolute() and not src.exists():
        src = FIXTURE_NOTEBOOKS / src
    root = server.root_dir if isinstance(server, JupyterServer) else Path(server)
    name = name or src.name
    shutil.copyfile(src, root / name)
    return name


# --------------------------------------------------------------------------- waiting


def wait_for(predicate: Callable[[], T], timeout: float = 30, interval: float = 0.2,
             message: str | Callable[[], str] | None = None) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Other exceptions from the predicate count as "not yet" (an element not rendered yet, a
    detached node); the last one is reported on timeout. Raise AssertionError or RuntimeError
    from the predicate to stop waiting at once. On timeout raises TimeoutError with ``message``.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (AssertionError, RuntimeError):
            raise
        except Exception as exc:  # noqa: BLE001 - DOM not there yet, element detached, ...
            last_exc = exc
        if time.monotonic() >= deadline:
            text = message() if callable(message) else (message or f"condition {predicate!r}")
            if last_exc is not None:
                text += f" (last error: {last_exc!r})"
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {text}")
        time.sleep(interval)


# --------------------------------------------------------------------------- JupyterLab


def dismiss_dialogs(page, timeout_ms: float = 0) -> list[str]:
    """Accept every open JupyterLab dialog by its default button; returns their titles.

    The one expected is "Select Kernel" (a notebook without kernelspec metadata, or opened
    without ``?reset``), where accepting starts the preselected Python 3 kernel. With
    ``timeout_ms`` it first waits that long for a dialog to appear.
    """
    titles = []
    dialogs = page.locator(".jp-Dialog")
    if timeout_ms:
        try:
            dialogs.first.wait_for(state="visible", timeout=timeout_ms)
        except Exception:  # noqa: BLE001 - no dialog is the usual case
            return titles
    while dialogs.count():
        dialog = dialogs.first
        titles.append(dialog.locator(".jp-Dialog-header").inner_text(timeout=5000).strip())
        dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click(timeout=5000)
        dialog.wait_for(state="detached", timeout=10_000)
    return titles


_KERNEL_STATE_JS = """
() => {
    const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = widget && widget.sessionContext && widget.sessionContext.session
        && widget.sessionContext.session.kernel;
    return kernel ? kernel.connectionStatus + '/' + kernel.status : null;
}
"""


def kernel_status(page) -> str | None:
    """The notebook's kernel status from its toolbar indicator ("idle", "busy", ...).

    Beware: the indicator reads "idle" for a moment *before* any kernel exists; use
    ``kernel_ready`` (or ``wait_for_kernel_idle``) to know a kernel is really there.
    """
    indicator = page.locator(KERNEL_STATUS)
    return indicator.first.get_attribute("data-status") if indicator.count() else None


def kernel_ready(page) -> bool:
    """True when the current notebook has a connected, idle kernel (and the toolbar agrees, where
    it has an indicator: Notebook 7's has none)."""
    state = page.evaluate(_KERNEL_STATE_JS)  # needs --LabApp.expose_app_in_browser
    return state == "connected/idle" and kernel_status(page) in ("idle", None)


def wait_for_kernel_idle(page, timeout: float = 60) -> None:
    """Wait until the notebook's kernel is connected and idle, accepting a "Select Kernel"
    dialog if one is shown."""

    def idle() -> bool:
        dismiss_dialogs(page)
        return kernel_ready(page)

    wait_for(idle, timeout, interval=0.3,
             message=lambda: f"kernel idle (toolbar {kernel_status(page)!r}, "
                             f"session {page.evaluate(_KERNEL_STATE_JS)!r})")


def open_notebook(page, server: JupyterServer, name: str, timeout: float = 90) -> None:
    """Open ``name`` in JupyterLab (fresh workspace) or Notebook 7 and wait until its kernel is idle."""
    page.goto(server.notebook_url(name), wait_until="domcontentloaded",
              timeout=timeout * 1000)
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=timeout * 1000)
    wait_for_kernel_idle(page, timeout)


_RUN_STATE_JS = """
() => {
    // Code cells with source, read from the notebook model (not the DOM: JupyterLab 4 may
    // virtualize off-screen cells). Needs --LabApp.expose_app_in_browser.
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = [], errors = [];
    panel.content.widgets.forEach((c, i) => {
        if (c.model.type !== 'code' || c.model.sharedModel.getSource().trim() === '') return;
        cells.push(c);
        c.model.outputs.toJSON().forEach(o => {
            if (o.output_type === 'error') errors.push(`cell ${i + 1}: ${o.ename}: ${o.evalue}`);
        });
    });
    return {pending: cells.filter(c => c.model.executionCount === null).length, errors};
}
"""


def run_all_cells(page, timeout: float = 120) -> None:
    """Run all cells and wait until every non-empty code cell has run and the kernel is idle.

    Outputs are cleared first so stale execution counts saved in the file cannot pass for
    fresh ones. A cell that raises fails at once (AssertionError with the exception) instead
    of timing out, since "Run All" stops at the first error.
    """
    page.evaluate("""() => {
        const commands = window.jupyterapp.commands;
        // Fire and forget: the promise resolves only when every cell has finished.
        commands.execute('notebook:clear-all-cell-outputs')
            .then(() => commands.execute('notebook:run-all-cells'))
            .catch(e => console.error('run-all-cells failed', e));
    }""")

    def done() -> bool:
        dismiss_dialogs(page)
        state = page.evaluate(_RUN_STATE_JS)
        if state["errors"]:
            raise AssertionError("notebook raised: " + "; ".join(state["errors"]))
        return state["pending"] == 0 and kernel_ready(page)

    wait_for(done, timeout, interval=0.3, message="all cells to finish running")


def open_notebook_and_run_all(page, server: JupyterServer, name: str, timeout: float = 120,
                              expect: str | None = WIDGET_VIEW) -> None:
    """Open notebook ``name`` in JupyterLab, run all cells, wait for widget output.

    ``expect`` is a CSS selector that must be visible afterwards (default: a rendered
    ipywidget); pass e.g. ``BQPLOT_FIGURE`` to wait for a figure, or None to skip.
    """
    start = time.monotonic()
    open_notebook(page, server, name, timeout)
    run_all_cells(page, max(10.0, timeout - (time.monotonic() - start)))
    if expect:
        left = max(10.0, timeout - (time.monotonic() - start))
        page.locator(expect).first.wait_for(state="visible", timeout=left * 1000)


def hide_all_code(page) -> None:
    """Collapse every code cell's input and scroll to the top (for README screenshots that
    show only the widgets)."""
    page.evaluate("""async () => {
        await window.jupyterapp.commands.execute('notebook:hide-all-cell-code');
        const scroller = document.querySelector(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
        if (scroller) scroller.scrollTop = 0;
    }""")


def cell_outputs(page):
    """Locator of the open notebook's output areas, one per code cell: ``.last`` (or ``.nth(i)``)
    is the last cell's output, a good screenshot target."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell-outputArea")


# --------------------------------------------------------------------------- Voila


def allow_voila_kernel_shutdown(page, server: JupyterServer) -> None:
    """Let Voila shut the page's kernel down when the page unloads.

    Voila 0.5 sends ``POST /voila/api/shutdown/<kernel>`` from ``beforeunload`` with the
    ``_xsrf`` cookie's value, but never sets that cookie, so the server answers 403 and the
    kernel (with its worker threads) lives until the server stops (voila-dashboards/voila#1458).
    Any hex value works as a double-submit token, so set one. ``close_page`` then navigates
    away, which fires ``beforeunload``.
    """
    page.context.add_cookies([{"name": "_xsrf", "value": secrets.token_hex(16),
                               "url": server.base_url}])


def close_page(page, timeout: float = 10) -> None:
    """Leave a Voila page properly (its kernel shuts down), then close the page."""
    if "/voila/render/" in page.url:
        try:
            page.goto("about:blank", timeout=timeout * 1000)
        except Exception:  # noqa: BLE001 - best effort; the server stop cleans up anyway
            pass
    page.close()


def open_voila(page, server: JupyterServer, name: str, timeout: float = 120,
               expect: str | None = WIDGET_VIEW) -> None:
    """Render ``name`` with Voila (all cells run server-side first) and wait for ``expect``.

    A traceback on the page (Voila shows cell errors as stderr output) fails at once.
    """
    allow_voila_kernel_shutdown(page, server)
    page.goto(server.notebook_url(name), wait_until="domcontentloaded", timeout=timeout * 1000)
    stderr = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')

    def rendered() -> bool:
        for text in stderr.all_inner_texts():
            if "Traceback" in text:
                raise AssertionError(f"notebook raised under Voila:\n{text[-2000:]}")
        return expect is None or page.locator(expect).first.is_visible()

    wait_for(rendered, timeout, interval=0.3, message=f"Voila to render {expect!r}")


# --------------------------------------------------------------------------- widgets


def click_button(page_or_locator, description: str, timeout: float = 30) -> None:
    """Click the ipywidgets Button whose visible text is exactly ``description``."""
    button = page_or_locator.locator("button.jupyter-button").filter(
        has_text=re.compile(rf"^\s*{re.escape(description)}\s*$"))
    button.first.click(timeout=timeout * 1000)


def _page_of(page_or_locator):
    return page_or_locator if hasattr(page_or_locator, "goto") else page_or_locator.page


def slider_locator(page_or_locator, description: str):
    """The ipywidgets slider (FloatSlider, FloatLogSlider, IntSlider) labelled ``description``.

    Pass a Locator instead of the page to pick one of several sliders with the same label,
    e.g. ``slider_locator(page.locator(".my-row"), "lr")``.
    """
    label = re.compile(rf"^\s*{re.escape(description)}\s*$")
    # ``has=`` is matched relative to each slider, so it must be built from the page itself,
    # never from a scoping Locator (that would look for the scope inside the slider).
    return page_or_locator.locator(".widget-slider").filter(
        has=_page_of(page_or_locator).locator(".widget-label", has_text=label)).first


def slider_readout(page_or_locator, description: str) -> str:
    """The text a person sees in the slider's readout box."""
    return slider_locator(page_or_locator, description).locator(".widget-readout").inner_text()


def set_slider_value(page_or_locator, description: str, value: float, timeout: float = 30) -> str:
    """Set a slider by typing into its readout box (exact, unlike dragging) and pressing Enter.

    The readout is a contenteditable div in ipywidgets 8; on Enter the front end parses it,
    clamps it to the slider's range and sends it to the kernel (also with
    continuous_update=False). For a FloatLogSlider type the value itself, not its exponent.
    The kernel gets it asynchronously: wait for its effect (e.g. an echo) before asserting.
    Returns the readout text right after Enter.
    """
    readout = slider_locator(page_or_locator, description).locator(".widget-readout")
    readout.click(timeout=timeout * 1000)
    readout.press("ControlOrMeta+a")  # selects the readout's text only
    readout.press_sequentially(str(value))
    readout.press("Enter")
    return readout.inner_text()


def nudge_slider(page_or_locator, description: str, steps: int, timeout: float = 30) -> None:
    """Move a slider ``steps`` steps right (negative: left) with the keyboard on its handle,
    as a person using arrow keys would (works without a readout; each step is one
    slider ``step``, sent to the kernel as the handle moves)."""
    handle = slider_locator(page_or_locator, description).locator(".noUi-handle").first
    handle.focus(timeout=timeout * 1000)
    for _ in range(abs(steps)):
        handle.press("ArrowRight" if steps > 0 else "ArrowLeft")


def widget_text(page_or_locator, css_class: str) -> str:
    """Text of the (first) widget the notebook tagged with ``widget.add_class(css_class)``."""
    return page_or_locator.locator(f".{css_class}").first.inner_text()


# --------------------------------------------------------------------------- bqplot


_BQPLOT_LINES_JS = """
(root) => Array.from(root.querySelectorAll('.bqplot.figure')).map(fig =>
    Array.from(fig.querySelectorAll('path.line')).map(p => p.getAttribute('d') || ''))
"""


def bqplot_line_paths(page_or_locator) -> list[list[str]]:
    """``d`` attributes of every bqplot Lines path: one list per figure, one string per line.

    A Lines mark with several rows draws several paths; a gap (NaN) splits one path's ``d``
    into several ``M`` sub-paths.
    """
    if hasattr(page_or_locator, "goto"):  # a Page (or Frame): search the whole document
        return page_or_locator.evaluate(f"() => ({_BQPLOT_LINES_JS})(document)")
    return page_or_locator.evaluate(_BQPLOT_LINES_JS)  # a Locator: search inside its element


def path_point_count(d: str) -> int:
    """Number of vertices in an SVG path ``d`` as d3 writes it for a line (M/L commands)."""
    return len(re.findall(r"[ML]", d))


def race_paths(page_or_locator, figure: int = 0, racing: int = 2) -> list[tuple[str, str]]:
    """(settled, live) ``d`` of each racing optimizer's path on an explorer's surface figure.

    The explorer draws its paths as two marks (views/common/split_lines.py): the figure's last
    2 * racing line paths are the settled rows, then the live rows; [] until all are there."""
    paths = bqplot_line_paths(page_or_locator)[figure]
    if len(paths) < 1 + 2 * racing:  # the contour lines come first
        return []
    rows = paths[-2 * racing:]
    return list(zip(rows[:racing], rows[racing:]))


def distinct_vertices(d: str) -> int:
    """Vertices of a line path less repeats of the one before (a short row of a multi-row mark is
    padded with its last point, which draws nothing)."""
    points = path_points(d)
    return sum(1 for k, p in enumerate(points) if k == 0 or p != points[k - 1])


def race_path_counts(page_or_locator, figure: int = 0, racing: int = 2) -> list[int]:
    """Distinct vertices of each racing optimizer's path: its settled and live parts, which share a point."""
    return [distinct_vertices(s) + max(distinct_vertices(lv) - 1, 0) for s, lv in race_paths(page_or_locator, figure, racing)]


def path_points(d: str) -> list[tuple[float, float]]:
    """Vertices (pixel x, y; y grows downwards) of a d3 line path ``d`` ("M1,2L3,4...")."""
    return [(float(x), float(y)) for x, y in re.findall(
        r"[ML]\s*(-?[\d.]+(?:e[-+]?\d+)?)[,\s]\s*(-?[\d.]+(?:e[-+]?\d+)?)", d)]


def bqplot_line_point_counts(page_or_locator, figure: int = 0) -> list[int]:
    """Vertices drawn by each Lines path of figure number ``figure`` (in DOM order)."""
    figures = bqplot_line_paths(page_or_locator)
    if figure >= len(figures):
        return []
    return [path_point_count(d) for d in figures[figure]]


# --------------------------------------------------------------------------- screenshots


def screenshot(page_or_locator, name: str, out_dir: str | Path = SCREENSHOT_DIR) -> Path:
    """Save a PNG of the page (or of one Locator, e.g. a figure) as ``out_dir/name``.

    ``out_dir`` defaults to SCREENSHOT_DIR (git-ignored test artifacts, or docs/screenshots/ with
    OPTIVIZ_UPDATE_SCREENSHOTS=1); tests that only check the harness pass a tmp dir. Returns the
    file's path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (name if name.endswith(".png") else f"{name}.png")
    page_or_locator.screenshot(path=str(path))
    return path
