"""The README works as written: its commands are the ones that work, and every ```python block runs.

Each block runs as a reader would paste it: in a fresh Python process (no state shared between
blocks), from a scratch folder, with OPTIVIZ_FAST=1, and must finish well inside a timeout. The
README promises snippets that take a few seconds; SNIPPET_BUDGET_S leaves room for a loaded machine.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SNIPPET_BUDGET_S = 30  # each block; written to take under 10 s on 2 idle cores
MAIN_COMMAND = "pip install torch==2.13.0 && pip install -e . && optiviz lab"
TEST_COMMAND = "bash scripts/test.sh"


def fenced_blocks(language: str) -> list[tuple[int, str]]:
    """(line number, code) of every ``` block in the README tagged with `language`."""
    text = README.read_text()
    blocks = []
    for match in re.finditer(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.S | re.M):
        if match.group(1) == language:
            blocks.append((text[:match.start()].count("\n") + 1, match.group(2)))
    return blocks


PYTHON_BLOCKS = fenced_blocks("python")


def test_readme_gives_the_two_commands_exactly():
    bash = [code.strip() for _, code in fenced_blocks("bash")]
    assert MAIN_COMMAND in bash, "the main command must stand alone in a bash block"
    assert TEST_COMMAND in bash, "the test command must stand alone in a bash block"
    assert (ROOT / "scripts" / "test.sh").is_file()


def test_readme_links_point_at_things_that_exist():
    text = README.read_text()
    for target in re.findall(r"\]\((?!https?://)([^)#]+)\)", text):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
    assert "/gh/OWNER/" not in text, "no Binder link to a placeholder owner"
    from optiviz.serve.binder import binder_links  # the links `optiviz binder-link` prints, in the README's form

    links = binder_links("git@github.com:USER/REPO.git")
    assert "`optiviz binder-link`" in text and f"`{links['lab']}`" in text
    assert f"`...?{links['voila'].split('?')[1]}`" in text
    assert "## How the numbers were checked" in text


def test_readme_has_python_snippets():
    assert len(PYTHON_BLOCKS) >= 5


@pytest.mark.slow
@pytest.mark.timeout(SNIPPET_BUDGET_S * 3)
@pytest.mark.parametrize("line, code", PYTHON_BLOCKS, ids=[f"line{line}" for line, _ in PYTHON_BLOCKS])
def test_python_snippet_runs(line, code, tmp_path):
    script = tmp_path / f"readme_line{line}.py"
    script.write_text(code)
    # one torch thread, as tests/conftest.py: steadier timing on a shared 2-core runner
    env = dict(os.environ, OPTIVIZ_FAST="1", PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env.pop("OPTIVIZ_DATA", None)  # the snippets use the bundled subset; never a user's download
    t0 = time.monotonic()
    try:
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=SNIPPET_BUDGET_S * 2)
    except subprocess.TimeoutExpired:
        pytest.fail(f"README snippet at line {line} did not finish in {SNIPPET_BUDGET_S * 2} s")
    elapsed = time.monotonic() - t0
    assert result.returncode == 0, f"README snippet at line {line} failed:\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), f"README snippet at line {line} printed nothing: a reader would see nothing"
    assert elapsed < SNIPPET_BUDGET_S, f"README snippet at line {line} took {elapsed:.1f} s"
    print(f"line {line}: {elapsed:.1f} s")
