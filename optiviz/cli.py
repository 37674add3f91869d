"""`optiviz lab` and `optiviz present NOTEBOOK`: one command from a shell to a class-ready page
(and `optiviz binder-link`: the Binder links for this checkout's GitHub remote).

Both start a server on 127.0.0.1 as a child process, print the URL to open, and stop it cleanly on
Ctrl-C. The server runs in its own process group, so a terminal's Ctrl-C reaches only this command,
which then sends the server the one signal on which it shuts its kernels down before exiting
(Jupyter: SIGTERM, as SIGINT without a terminal skips its cleanup; Voila: SIGINT, as it has no
SIGTERM handler), then SIGKILL if it lingers, and waits for it, so no kernel is left behind. SIGTERM and SIGHUP
(a closed terminal) to this command stop the server the same way; on Linux the server also gets
SIGTERM if this command is killed outright.
"""
from __future__ import annotations

import argparse
import collections
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

from ._validate import check_int
from .serve.binder import print_binder_links
from .serve.capacity import CULL_IDLE_S, KERNEL_MB, class_size
from .serve.voila import READY_PATH, voila_command

NOTEBOOK_ENV = "OPTIVIZ_NOTEBOOKS"
# A Jupyter config folder for `optiviz lab` only: its labconfig/page_config.json disables JupyterLab's
# announcements plugin, whose "get notified about official Jupyter news?" pop-up shows whatever
# --LabApp.news_url says (it asks while the fetchNews setting is undecided).
LAB_CONFIG = Path(__file__).resolve().parent / "lab_config"


def notebooks_dir() -> Path:
    """The lecture notebooks: $OPTIVIZ_NOTEBOOKS, the checkout's notebooks/, or the working directory."""
    env = os.environ.get(NOTEBOOK_ENV)
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parent.parent / "notebooks"
    return repo if repo.is_dir() else Path.cwd()


def free_port(preferred: int | None = None) -> int:
    if preferred:
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(root: Path, port: int, token: str, open_browser: bool) -> list[str]:
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}", "--ip=127.0.0.1",
           f"--port={port}", f"--IdentityProvider.token={token}", "--LabApp.news_url=None"]
    if not open_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root; Jupyter refuses to start without it
    return cmd


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Poll until the server answers (or the child died); True when it is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a Jupyter or Voila server. A virtualenv made with --system-site-packages
    keeps Voila's templates and the lab extensions in the base interpreter's share/jupyter, which
    Jupyter does not search from inside the venv: add it."""
    env = dict(os.environ if base is None else base)
    share = Path(sys.base_prefix) / "share" / "jupyter"
    if Path(sys.prefix) != Path(sys.base_prefix) and share.is_dir():
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (env.get("JUPYTER_PATH"), str(share)) if p)
    return env


def add_class_options(present: argparse.ArgumentParser) -> None:
    """`present`'s options for a class: the preheated pool, the visitor cap, idle culling."""
    present.add_argument("--preheat", type=int, default=1, metavar="K",
                         help="kernels that run the notebook before anyone asks (default 1; 0: none): the "
                              "first K visitors get the page at once; each holds ~0.33 GB (notebook 1) meanwhile")
    present.add_argument("--max-visitors", type=int, default=None, metavar="N",
                         help="visitors served at once; the next sees 'the class is full' (default: what "
                              "free memory allows)")
    present.add_argument("--kernel-mb", type=int, default=KERNEL_MB, metavar="MB",
                         help=f"memory a visitor's kernel is counted at for the cap (default {KERNEL_MB}: notebook 1; "
                              "notebooks 5 to 7 peak at 790 to 940)")
    present.add_argument("--cull-idle", type=int, default=CULL_IDLE_S, metavar="S",
                         help=f"shut a visitor's kernel down after S seconds idle with no page (default {CULL_IDLE_S})")


PRESENT_START_TIMEOUT = 300.0  # s: the first preheated kernel imports torch and runs the notebook


def lab_env() -> dict[str, str]:
    """server_env() with LAB_CONFIG on JUPYTER_CONFIG_PATH: JupyterLab without the news pop-up."""
    env = server_env()
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in (str(LAB_CONFIG), env.get("JUPYTER_CONFIG_PATH")) if p)
    return env


def serve(cmd: list[str], probe_url: str, show_url: str, what: str, stop_signal: int = signal.SIGTERM,
          timeout: float = 120.0, env: dict[str, str] | None = None) -> int:
    """Run a server child until Ctrl-C; print where to point the browser. `stop_signal` is the one
    on which the server shuts its kernels down and exits; `env` defaults to server_env()."""
    # stdin: never the terminal, or Jupyter answers Ctrl-C with a "Shut down? (y/[n])" prompt nobody
    # sees and reads the user's keys for 5 s. stderr: drained all the time (the server logs every
    # request; an unread pipe fills up and blocks the server), the tail kept for error messages.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_die_with_parent,
                            env=server_env() if env is None else env)
    log_tail = _drain(proc.stderr)  # a pipe: stderr=PIPE above
    previous = _stop_on_signals()
    try:
        if not wait_until_up(probe_url, proc, timeout):
            if proc.poll() is not None:
                proc.wait()
                time.sleep(0.2)  # let the drain thread read the last lines
            err = "".join(log_tail)
            print(f"optiviz: {what} did not start.\n{err[-2000:]}", file=sys.stderr)
            return 1
        print(f"optiviz: {what} is running. Open:\n    {show_url}\nPress Ctrl-C to stop.", flush=True)
        proc.wait()
        return proc.returncode or 0
    except KeyboardInterrupt:
        print("\noptiviz: stopping...", flush=True)
        return 0
    finally:
        stop(proc, stop_signal)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> dict[int, object]:
    """SIGTERM and SIGHUP stop the server as Ctrl-C does (it is in another process group: it would
    not hear a closed terminal itself). Returns the handlers they replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signum = getattr(signal, name)
            previous[signum] = signal.signal(signum, _interrupt)
    return previous


def _die_with_parent() -> None:
    """In the child, before exec (Linux): get SIGTERM when this command dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass


def _drain(stream: IO[str], keep: int = 200) -> collections.deque:
    """Read the child's stderr in a daemon thread; the last `keep` lines stay in the returned deque."""
    tail: collections.deque = collections.deque(maxlen=keep)

    def read() -> None:
        for line in stream:
            tail.append(line)

    threading.Thread(target=read, name="optiviz-server-log", daemon=True).start()
    return tail


def stop(proc: subprocess.Popen, first: int = signal.SIGTERM, grace: float = 15.0) -> None:
    """`first` (the server's clean shutdown, kernels included), then SIGTERM, then SIGKILL; a second
    Ctrl-C meanwhile is ignored so the shutdown is not cut short."""
    if proc.poll() is not None:
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if threading.current_thread() is threading.main_thread() else None
    try:
        for sig in dict.fromkeys((first if os.name == "posix" else signal.SIGTERM, signal.SIGTERM)):
            try:
                proc.send_signal(sig)
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue
        proc.kill()
        proc.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def share_state(parser: argparse.ArgumentParser, state: str) -> None:
    """--state: checked now (a bad string stops here, not in the page), then handed to the kernels."""
    from optiviz.state import STATE_ENV, StateError, read_state

    try:
        view, _setting = read_state(state)
    except StateError as exc:
        parser.error(f"--state: {exc}")
    os.environ[STATE_ENV] = state.strip()  # server_env() copies it to the server and so to its kernels
    print(f"optiviz: the notebook's first {view} opens with the shared setting.", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optiviz", description="Live widgets that make optimization visible.")
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="open JupyterLab on the lecture notebooks")
    lab.add_argument("--port", type=int, default=None)
    lab.add_argument("--dir", type=Path, default=None, help="folder of notebooks (default: the lecture notebooks)")
    lab.add_argument("--no-browser", action="store_true")
    present = sub.add_parser("present", help="serve one notebook with Voila, for a clean full-screen class view")
    present.add_argument("notebook", type=Path)
    present.add_argument("--port", type=int, default=None)
    present.add_argument("--no-browser", action="store_true")
    present.add_argument("--state", default=None, metavar="STRING",
                         help="a setting from a view's Share button (view.state()): the notebook's first view "
                              "of that kind opens with it")
    add_class_options(present)
    binder = sub.add_parser("binder-link", help="print the Binder links for this checkout's GitHub remote")
    binder.add_argument("--remote", default="origin", help="git remote to read (default: origin)")
    args = parser.parse_args(argv)
    if args.command == "binder-link":
        return print_binder_links(args.remote)

    port = free_port(args.port)
    if args.command == "lab":
        root = (args.dir or notebooks_dir()).resolve()
        if not root.is_dir():
            parser.error(f"--dir {root} is not a folder")
        token = secrets.token_hex(16)
        base = f"http://127.0.0.1:{port}"
        first = sorted(root.glob("01*.ipynb"))
        page = f"/lab/tree/{first[0].name}" if first else "/lab"
        return serve(lab_command(root, port, token, not args.no_browser), f"{base}/api/status?token={token}",
                     f"{base}{page}?token={token}", "JupyterLab", env=lab_env())
    notebook = args.notebook
    if not notebook.exists() and (notebooks_dir() / notebook).exists():
        notebook = notebooks_dir() / notebook
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        parser.error(f"NOTEBOOK must be an existing .ipynb file, got {args.notebook}")
    if args.state is not None:
        share_state(parser, args.state)
    try:
        check_int("--cull-idle", args.cull_idle, 60, 7 * 24 * 3600)
        size = class_size(args.max_visitors, args.preheat, kernel_mb=args.kernel_mb)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"optiviz: {size.describe}; idle kernels culled after {args.cull_idle} s.", flush=True)
    base = f"http://127.0.0.1:{port}"
    return serve(voila_command(notebook.resolve(), port, not args.no_browser, size, args.cull_idle),
                 base + READY_PATH, base, "Voila", stop_signal=signal.SIGINT, timeout=PRESENT_START_TIMEOUT)


if __name__ == "__main__":
    sys.exit(main())
