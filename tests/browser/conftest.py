"""Fixtures for real-browser tests: JupyterLab / Voila servers and a headless chromium page.

Fixtures (see browser_helpers.py for what to do with them):

- ``notebook_root``        session: the tmp dir both servers serve; copy notebooks into it.
- ``jupyter_lab_server``   a JupyterServer for JupyterLab (started once per session; after each
                           test its kernels are shut down so worker threads don't pile up).
- ``notebook7_server``     the same for Jupyter Notebook 7 (``jupyter notebook``).
- ``voila_server``         a JupyterServer for Voila serving ``notebook_root`` (started once).
                           On a failed test the servers' log tails go to test-artifacts/browser/.
- ``browser``              session: Playwright chromium (Debian's /usr/bin/chromium, headless).
- ``page``                 a fresh browser context + page (1400x1000) per test; requests to
                           anything but 127.0.0.1 are aborted. ``page.console_errors`` lists
                           console errors. On failure a full-page screenshot and the console
                           log go to test-artifacts/browser/.

Skip policy: without chromium or playwright these tests skip, unless the environment variable
CI is set: then they fail, because CI must run them. Mark browser tests @pytest.mark.browser.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser_helpers import (
    ARTIFACT_DIR,
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    EXTERNAL_URL,
    VIEWPORT,
    close_page,
    missing_browser_requirements,
    skip_or_fail,
    start_jupyter_lab,
    start_jupyter_notebook,
    start_voila,
)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Make each phase's report available to fixtures (request.node.rep_call) for failure dumps.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def notebook_root(tmp_path_factory) -> Path:
    """Directory the servers serve as their root; tests copy notebooks here."""
    return tmp_path_factory.mktemp("notebooks")


def _require_browser_stack() -> None:
    missing = missing_browser_requirements()
    if missing:
        skip_or_fail("; ".join(missing))


def _dump_server_log_on_failure(request, server) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        (ARTIFACT_DIR / f"{stem}.{server.kind}.log").write_text(server.log_tail(400))


@pytest.fixture(scope="session")
def _lab_session(notebook_root, tmp_path_factory):
    _require_browser_stack()
    server = start_jupyter_lab(notebook_root, tmp_path_factory.mktemp("lab-state"))
    yield server
    server.stop()


@pytest.fixture
def jupyter_lab_server(_lab_session, request):
    """The session's JupyterLab server (a JupyterServer); kernels the test started are shut
    down afterwards so their worker threads don't load the next test."""
    yield _lab_session
    _dump_server_log_on_failure(request, _lab_session)
    _lab_session.shutdown_kernels()


@pytest.fixture(scope="session")
def _notebook7_session(notebook_root, tmp_path_factory):
    _require_browser_stack()
    server = start_jupyter_notebook(notebook_root, tmp_path_factory.mktemp("notebook7-state"))
    yield server
    server.stop()


@pytest.fixture
def notebook7_server(_notebook7_session, request):
    """The session's Jupyter Notebook 7 server (a JupyterServer); the test's kernels are shut down after."""
    yield _notebook7_session
    _dump_server_log_on_failure(request, _notebook7_session)
    _notebook7_session.shutdown_kernels()


@pytest.fixture(scope="session")
def _voila_session(notebook_root, tmp_path_factory):
    _require_browser_stack()
    server = start_voila(notebook_root, tmp_path_factory.mktemp("voila-state"))
    yield server
    server.stop()


@pytest.fixture
def voila_server(_voila_session, request):
    """The session's Voila server (a JupyterServer) rendering notebooks in ``notebook_root``.

    Voila shuts a page's kernel down when the page closes (the ``page`` fixture does that).
    """
    yield _voila_session
    _dump_server_log_on_failure(request, _voila_session)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by Playwright (never a Playwright-downloaded browser)."""
    _require_browser_stack()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=CHROMIUM_PATH, headless=True,
                                          args=CHROMIUM_ARGS, timeout=60_000)
        except Exception as exc:  # noqa: BLE001 - report the launch failure under the policy
            skip_or_fail(f"chromium at {CHROMIUM_PATH} failed to start: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh page per test. Console errors are kept in ``page.console_errors``."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    # Only the local servers may be reached (an offline lecture hall); tests/browser/
    # test_voila_notebook1.py checks that a Voila page asks for nothing else.
    context.route(EXTERNAL_URL, lambda route: route.abort())
    page = context.new_page()
    console: list[str] = []
    page.console_errors = []  # type: ignore[attr-defined]

    def on_console(msg):
        console.append(f"[{msg.type}] {msg.text}")
        if msg.type == "error":
            page.console_errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: console.append(f"[pageerror] {exc}"))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        try:
            page.screenshot(path=str(ARTIFACT_DIR / f"{stem}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - best effort on an already failed test
            pass
        (ARTIFACT_DIR / f"{stem}.console.txt").write_text("\n".join(console))
    close_page(page)  # leaves Voila pages first, so their kernels shut down
    context.close()
