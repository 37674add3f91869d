"""A shared setting reaches a class's page: `optiviz present NB --state S`, and ?optiviz_state=S on the
Voila page (which wins), each open the notebook's explorer with that setting; a bad S stops the command."""
from __future__ import annotations

import subprocess
import sys
import urllib.parse

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import optiviz as ov
from test_cli import Command, free_port, get, isolated_env


def _explorer_notebook(tmp_path):
    nb = new_notebook(cells=[new_code_cell(
        'import optiviz as ov\nexplorer = ov.SurfaceExplorer("quadratic", ["sgd"], grid=20)\n'
        'print("shown-surface", explorer.config.surface, "+".join(explorer.optimizers), explorer.error or "ok")')],
        metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})
    path = tmp_path / "shared.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_present_with_a_state_and_a_voila_link_open_the_shared_setting(tmp_path):
    by_cli = ov.SurfaceExplorer("himmelblau", ["adam"], grid=20).state()
    by_link = ov.SurfaceExplorer("rosenbrock", ["nesterov", "rmsprop"], grid=20).state()
    ov.close_all()
    port = free_port()
    cmd = Command(["present", str(_explorer_notebook(tmp_path)), "--no-browser", "--port", str(port), "--state", by_cli],
                  env=isolated_env(tmp_path))
    try:
        url = cmd.wait_for_url()
        assert "first SurfaceExplorer opens with the shared setting" in cmd.text
        _status, page = get(url)
        assert "shown-surface himmelblau adam ok" in page
        _status, page = get(f"{url}?{urllib.parse.urlencode({'optiviz_state': by_link})}")
        assert "shown-surface rosenbrock nesterov+rmsprop ok" in page
        cmd.ctrl_c()
        assert cmd.wait() == 0
    finally:
        cmd.kill()


def test_present_refuses_a_bad_state_before_starting_a_server(tmp_path):
    notebook = _explorer_notebook(tmp_path)
    for bad, message in (("ov9.abc", "newer optiviz"), ("ov1.AAAA", "damaged or cut short"), ("<script>", "not an optiviz")):
        result = subprocess.run([sys.executable, "-m", "optiviz.cli", "present", str(notebook), "--no-browser",
                                 "--state", bad], capture_output=True, text=True, timeout=60, env=isolated_env(tmp_path))
        assert result.returncode == 2 and "--state: " in result.stderr and message in result.stderr
        assert "is running" not in result.stdout
