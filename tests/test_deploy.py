"""The JupyterHub and BinderHub configurations docs/deploy.md gives: they parse, they run the image
binder/ defines, and their limits are the ones the single-machine server and the Binder rehearsal use.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from optiviz.serve import capacity

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
GUIDE = (ROOT / "docs" / "deploy.md").read_text()
PLACEHOLDERS = {"REGISTRY", "TAG", "HUB_HOST", "GITHUB_OWNER"}


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def gigabytes(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([MG])", str(text))
    assert match, f"a memory size like 2G or 512M, got {text!r}"
    return float(match.group(1)) / (1024 if match.group(2) == "M" else 1)


def check_singleuser(singleuser: dict) -> None:
    url = singleuser["defaultUrl"]
    assert url.startswith("/voila/render/"), "students land on the Voila app, not JupyterLab"
    assert (ROOT / url.removeprefix("/voila/render/")).is_file(), f"{url} names no notebook in the repository"
    limit, guarantee = gigabytes(singleuser["memory"]["limit"]), gigabytes(singleuser["memory"]["guarantee"])
    assert limit == 2.0, "the 2 GB cap every notebook was rehearsed under (benchmarks/binder_rehearsal.py)"
    assert capacity.KERNEL_MB / 1024 <= guarantee <= limit
    assert singleuser["cpu"]["guarantee"] <= singleuser["cpu"]["limit"]


def check_cull(cull: dict) -> None:
    assert cull["enabled"] is True
    assert cull["timeout"] == capacity.CULL_IDLE_S, "the same idle time as `optiviz present --cull-idle`"
    assert 0 < cull["every"] <= cull["timeout"]


def test_zero_to_jupyterhub_values_run_the_binder_image_with_voila_first():
    values = load("z2jh-values.yaml")
    image = values["singleuser"]["image"]
    assert image["name"] == "REGISTRY/optiviz" and image["tag"] == "TAG"
    assert "--image-name REGISTRY/optiviz:TAG" in GUIDE, "the guide builds the image these values name"
    check_singleuser(values["singleuser"])
    check_cull(values["cull"])
    assert values["cull"]["users"] is False, "a hub's students keep their accounts"


def test_binderhub_config_builds_this_repository_only_with_the_same_limits():
    config = load("binderhub-config.yaml")
    binderhub = config["config"]["BinderHub"]
    assert binderhub["use_registry"] is True and binderhub["image_prefix"].startswith("REGISTRY/optiviz")
    (spec,) = config["config"]["GitHubRepoProvider"]["allowed_specs"]
    assert re.match(spec, "GITHUB_OWNER/optiviz/HEAD") and not re.match(spec, "someone/else/HEAD")
    assert gigabytes(config["config"]["KubernetesBuildExecutor"]["memory_limit"]) >= 2
    check_singleuser(config["jupyterhub"]["singleuser"])
    check_cull(config["jupyterhub"]["cull"])


@pytest.mark.parametrize("name", ["z2jh-values.yaml", "binderhub-config.yaml"])
def test_only_documented_placeholders_are_left_to_fill_in(name):
    text = (DEPLOY / name).read_text()
    found = set(re.findall(r"\b[A-Z][A-Z_]{2,}\b", text)) - {"OMP_NUM_THREADS"}
    assert found <= PLACEHOLDERS, f"{name}: {found - PLACEHOLDERS} are not explained in docs/deploy.md"
    for placeholder in found:
        assert f"`{placeholder}`" in GUIDE, f"docs/deploy.md does not say what {placeholder} is"
    assert name in GUIDE
