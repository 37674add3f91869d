"""Binder links for this repository, read from its git remote (`optiviz binder-link`).

mybinder.org builds the image `binder/` defines from a GitHub repository at a ref; the links open
notebook 1 in JupyterLab, or as a Voila app (widgets only, no code).
"""
from __future__ import annotations

import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

FIRST_NOTEBOOK = "notebooks/01_optimizers_on_surfaces.ipynb"
_GITHUB = re.compile(r"^(?:https?://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
                     r"(?P<owner>[A-Za-z0-9-]+)/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?/?$")


def github_repository(remote_url: str) -> tuple[str, str]:
    """(owner, repository) of a GitHub remote URL (https or ssh form)."""
    match = _GITHUB.match(remote_url.strip())
    if not match:
        raise ValueError(f"remote_url must be a GitHub repository URL (https://github.com/OWNER/REPO or "
                         f"git@github.com:OWNER/REPO.git), got {remote_url!r}")
    return match["owner"], match["repo"]


def binder_links(remote_url: str, ref: str = "HEAD", notebook: str = FIRST_NOTEBOOK) -> dict[str, str]:
    """The Binder badge's two links for a GitHub remote: JupyterLab on `notebook`, and `notebook`
    as a Voila app."""
    owner, repo = github_repository(remote_url)
    base = f"https://mybinder.org/v2/gh/{owner}/{repo}/{urllib.parse.quote(ref, safe='')}"
    quoted = urllib.parse.quote(notebook, safe="")
    return {"lab": f"{base}?labpath={quoted}",
            "voila": f"{base}?urlpath={urllib.parse.quote('voila/render/', safe='')}{quoted}"}


def print_binder_links(remote: str = "origin", checkout: Path | None = None) -> int:
    """Print the links for the checkout's `remote`; 1 with the reason when there is none."""
    where = checkout or Path(__file__).resolve().parents[2]
    try:
        url = subprocess.run(["git", "-C", str(where), "remote", "get-url", remote], capture_output=True,
                             text=True, check=True, timeout=30).stdout.strip()
        links = binder_links(url)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        print(f"optiviz: no git remote {remote!r} in {where} ({str(detail).strip()}). Push the repository to "
              f"GitHub, `git remote add {remote} https://github.com/YOU/optiviz`, and run this again.",
              file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"optiviz: {exc}", file=sys.stderr)
        return 1
    print(f"JupyterLab: {links['lab']}\nVoila app:  {links['voila']}")
    return 0
