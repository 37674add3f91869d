"""`optiviz present`'s sizing and pages, and the Binder links, without starting a server.

The server itself (a visitor past the cap sees the class-full page; the readiness check starts no
kernel) is driven in tests/test_cli.py; the page's outside requests in tests/browser.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from optiviz.serve import binder, capacity, voila

ROOT = Path(__file__).resolve().parents[1]


def test_the_cap_is_what_free_memory_holds_after_the_reserve():
    size = capacity.class_size(available_mb=24_000, kernel_mb=450, reserve_mb=1536, preheat=20)
    assert size.max_visitors == (24_000 - 1536) // 450 == 49
    assert size.preheat == 20
    small = capacity.class_size(available_mb=2_000, kernel_mb=450, reserve_mb=1536, preheat=5)
    assert small.max_visitors == 1 and small.preheat == 1, "the pool never exceeds the cap"
    assert "1 visitors at most (2000 MB free" in small.describe


def test_a_cap_asked_for_is_kept_unless_memory_cannot_hold_it():
    assert capacity.class_size(10, 3, available_mb=24_000).max_visitors == 10
    with pytest.raises(ValueError, match=r"max_visitors=60 does not fit in memory: 24000 MB free.*room for 49"):
        capacity.class_size(60, available_mb=24_000, kernel_mb=450, reserve_mb=1536)
    with pytest.raises(ValueError, match="not enough memory for one visitor"):
        capacity.class_size(available_mb=1_000)
    with pytest.raises(ValueError, match="preheat"):
        capacity.class_size(preheat=-1, available_mb=24_000)
    with pytest.raises(ValueError, match="max_visitors"):
        capacity.class_size(0, available_mb=24_000)


def test_free_memory_is_read_from_the_system():
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        pytest.skip("no /proc/meminfo")
    line = next(l for l in meminfo.read_text().splitlines() if l.startswith("MemTotal:"))
    total_mb = int(line.split()[1]) // 1024
    assert 0 < capacity.memory_available_mb() <= total_mb


def test_the_class_full_page_says_why_and_when_to_retry():
    page = voila.class_full_page(20, 900)
    assert "<title>The class is full</title>" in page
    assert "All 20 places" in page and "after 15 minutes without use" in page
    assert f'http-equiv="refresh" content="{voila.RETRY_S}"' in page


def test_voila_runs_loopback_without_code_with_the_template_and_culling(tmp_path):
    argv = voila.voila_argv(tmp_path / "nb.ipynb", 8123, open_browser=False, cull_idle_s=900)
    assert "--Voila.ip=127.0.0.1" in argv and "--strip_sources=True" in argv and "--no-browser" in argv
    assert "--Voila.port_retries=0" in argv, "the URL printed must be the port served"
    assert "--template=optiviz" in argv and "--preheat_kernel=True" in argv
    assert "--MappingKernelManager.cull_idle_timeout=900" in argv
    assert "--MappingKernelManager.cull_interval=60" in argv
    size = capacity.class_size(12, 4, available_mb=24_000)
    cmd = voila.voila_command(tmp_path / "nb.ipynb", 8123, True, size, 600)
    assert cmd[1:3] == ["-m", "optiviz.serve.voila"]
    assert {"--preheat=4", "--max-visitors=12", "--cull-idle=600"} <= set(cmd) and "--no-browser" not in cmd


def test_the_template_removes_exactly_the_cdn_links_voila_writes():
    """The optiviz template drops two <link> tags by their exact text: they must be the ones Voila's
    lab template writes (a Voila upgrade that changes them fails here, not silently online)."""
    import re

    from jupyter_core.paths import jupyter_path

    ours = (voila.TEMPLATES / "voila" / "templates" / "optiviz" / "index.html.j2").read_text()
    removed = re.findall(r"replace\('(<link [^']+>)', ''\)", ours)
    assert len(removed) == 2 and all("cdn.jsdelivr.net" in tag for tag in removed)
    lab = next(Path(p) / "templates" / "lab" / "index.html.j2" for p in jupyter_path("voila")
               if (Path(p) / "templates" / "lab" / "index.html.j2").is_file())
    theirs = lab.read_text()
    assert all(tag in theirs for tag in removed)
    assert sorted(re.findall(r'<link rel="stylesheet" href="https://[^>]+>', theirs)) == sorted(removed), \
        "Voila's lab template links a style sheet the optiviz template does not remove"


@pytest.mark.parametrize("url", ["https://github.com/lecturer/optiviz", "https://github.com/lecturer/optiviz.git",
                                 "git@github.com:lecturer/optiviz.git", "ssh://git@github.com/lecturer/optiviz"])
def test_binder_links_from_a_github_remote(url):
    links = binder.binder_links(url)
    nb = "notebooks%2F01_optimizers_on_surfaces.ipynb"
    assert links["lab"] == f"https://mybinder.org/v2/gh/lecturer/optiviz/HEAD?labpath={nb}"
    assert links["voila"] == f"https://mybinder.org/v2/gh/lecturer/optiviz/HEAD?urlpath=voila%2Frender%2F{nb}"
    assert (ROOT / binder.FIRST_NOTEBOOK).is_file()


def test_a_remote_that_is_not_github_is_refused_by_name():
    with pytest.raises(ValueError, match="remote_url must be a GitHub repository URL"):
        binder.binder_links("https://gitlab.com/lecturer/optiviz")


def test_binder_link_command_reads_the_remote(tmp_path, capsys):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@github.com:a-class/opt-viz.git"],
                   check=True)
    assert binder.print_binder_links(checkout=tmp_path) == 0
    assert "https://mybinder.org/v2/gh/a-class/opt-viz/HEAD?urlpath=voila%2Frender%2F" in capsys.readouterr().out
    result = subprocess.run([sys.executable, "-c", "from optiviz.serve.binder import print_binder_links as p; "
                             f"import sys; sys.exit(p('upstream', __import__('pathlib').Path({str(tmp_path)!r})))"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1 and "no git remote 'upstream'" in result.stderr
