"""The lecture notebooks: saved clean, shaped like a lecture, and runnable top to bottom headless.

Each notebook is executed with nbclient in a fresh kernel with OPTIVIZ_FAST=1 (the small budgets
the notebooks switch to for CI) and one torch thread, and must finish within 3 minutes on 2 CPU cores with no error
output and nothing on stderr (what a class would see as a red box). Live widgets must not hang the
run: work starts from a button, and what must show when executed headless is computed with the
views' synchronous `step(n)` / `compute_sync()` / `run_sync()`; a static check keeps background
starts (`.play()`, `.compute()`, `.start()`) out of the cells.
On failure the executed notebook is saved under test-artifacts/notebooks/ to read what went wrong.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts" / "notebooks"
NOTEBOOKS = (
    "01_optimizers_on_surfaces.ipynb",
    "02_training_cifar10_live.ipynb",
    "03_dropout_batchnorm_init.ipynb",
    "04_schedules_clipping_one_bit.ipynb",
    "05_many_runs_at_once.ipynb",
    "06_babysitting_and_debugging.ipynb",
    "07_loss_landscapes.ipynb",
)
BUDGET_S = 180  # the whole notebook, on 2 CPU cores
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
BACKGROUND_START = re.compile(r"\.(play|compute|start)\(\s*\)")


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)


def text(cell: nbformat.NotebookNode) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def test_the_lecture_notebooks_are_all_there():
    present = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert present == sorted(NOTEBOOKS), "notebooks/ should hold exactly the lecture notebooks"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_saved_clean(name):
    """No outputs, counts or widget state in the repository: diffs show only what was written."""
    nb = read(name)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} of {name} was saved with outputs"
            assert cell.execution_count is None, f"cell {i} of {name} was saved with an execution count"
    assert "widgets" not in nb.metadata, f"{name} was saved with widget state"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_opens_with_what_it_shows_and_ends_with_questions(name):
    nb = read(name)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and text(first).startswith("# "), f"{name} must open with a titled introduction"
    assert len(text(first)) > 400, f"{name}'s introduction should say what it shows"
    assert "$" in "".join(text(c) for c in nb.cells if c.cell_type == "markdown"), f"{name} shows no formulas"
    assert last.cell_type == "markdown" and "## Questions to try" in text(last), f"{name} must end with questions to try"
    assert len(re.findall(r"^\d+\. ", text(last), flags=re.M)) >= 4, f"{name}: too few questions"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_nothing_starts_in_the_background_when_executed(name):
    """A cell that starts a worker thread would make headless execution (CI, Voila) race it."""
    for i, cell in enumerate(read(name).cells):
        if cell.cell_type == "code":
            match = BACKGROUND_START.search(text(cell))
            assert match is None, f"cell {i} of {name} calls {match.group(0)}: start live work from a button"


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(BUDGET_S + 120)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_top_to_bottom_within_budget(name, monkeypatch, tmp_path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("OPTIVIZ_FAST", "1")  # the kernel inherits this environment
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # leave the user's IPython state alone
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout, whatever is installed
    # One torch thread, as tests/conftest.py does in-process: on a shared 2-core runner, an OpenMP
    # thread waiting at every barrier for a busy core made the same epoch take 1 s or 20 s.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = read(name)
    client = NotebookClient(nb, timeout=BUDGET_S, kernel_name="python3", startup_timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    t0 = time.monotonic()
    try:
        client.execute()
    except CellExecutionError:
        _save(nb, name)
        raise
    elapsed = time.monotonic() - t0

    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {i} wrote to stderr: {out.text[:500]}")
    if problems:
        _save(nb, name)
    assert not problems, f"{name}:\n" + "\n".join(problems)
    assert elapsed < BUDGET_S, f"{name} took {elapsed:.0f} s (budget {BUDGET_S} s)"
    widgets_shown = sum(WIDGET_MIME in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))
    assert widgets_shown >= 1, f"{name} displays no live widget"
    print(f"{name}: {elapsed:.1f} s, {widgets_shown} widgets")


def _save(nb: nbformat.NotebookNode, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(ARTIFACTS / name))


def test_notebook_1_shows_the_eps_that_runs():
    """The lectures write 1e-7 for AdaGrad's and RMSProp's eps; the runs use torch's defaults."""
    from optiviz.engine.hparams import HPARAMS

    intro = "".join(read("01_optimizers_on_surfaces.ipynb").cells[0].source)
    rows = {line.split("|")[1].strip(): line for line in intro.splitlines() if line.startswith("| ")}
    for name, row in (("AdaGrad", "adagrad"), ("RMSProp", "rmsprop"), ("Adam", "adam")):
        used = rows[name].split("|")[3]
        exponent = round(math.log10(HPARAMS[row]["eps"].default))
        assert f"\\epsilon = 10^{{{exponent}}}" in used, (name, used)
