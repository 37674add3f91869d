"""`optiviz lab` and `optiviz present NOTEBOOK`: one command from a shell to a class-ready page.

Both start a server on 127.0.0.1 as a child process, print the URL to open, and stop it cleanly on
Ctrl-C (the child gets SIGINT/SIGTERM and is waited for, so no kernel is left behind).
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

NOTEBOOK_ENV = "OPTIVIZ_NOTEBOOKS"


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
    return cmd


def present_command(notebook: Path, port: int, open_browser: bool) -> list[str]:
    cmd = [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--Voila.ip=127.0.0.1",
           "--theme=light", "--strip_sources=True"]
    if not open_browser:
        cmd.append("--no-browser")
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


def serve(cmd: list[str], probe_url: str, show_url: str, what: str) -> int:
    """Run a server child until Ctrl-C; print where to point the browser."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if not wait_until_up(probe_url, proc):
            err = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
            print(f"optiviz: {what} did not start.\n{err[-2000:]}", file=sys.stderr)
            return 1
        print(f"optiviz: {what} is running. Open:\n    {show_url}\nPress Ctrl-C to stop.", flush=True)
        proc.wait()
        return proc.returncode or 0
    except KeyboardInterrupt:
        print("\noptiviz: stopping...", flush=True)
        return 0
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
    args = parser.parse_args(argv)

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
                     f"{base}{page}?token={token}", "JupyterLab")
    notebook = args.notebook
    if not notebook.exists() and (notebooks_dir() / notebook).exists():
        notebook = notebooks_dir() / notebook
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        parser.error(f"NOTEBOOK must be an existing .ipynb file, got {args.notebook}")
    base = f"http://127.0.0.1:{port}"
    return serve(present_command(notebook.resolve(), port, not args.no_browser), base, base, "Voila")


if __name__ == "__main__":
    sys.exit(main())
