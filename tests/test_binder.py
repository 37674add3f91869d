"""The Binder configuration builds what the notebooks need, with a CPU-only torch.

mybinder.org (repo2docker) reads binder/ in preference to the repository root: runtime.txt picks the
Python, requirements.txt is installed with pip, then postBuild runs. These tests check those files
without building an image: they parse as pip and repo2docker read them, torch is the +cpu build from
PyTorch's CPU index (the CUDA build is several times larger and mybinder.org has no GPU), every
runtime dependency of the package is there in a version the package accepts, postBuild installs
optiviz without letting pip touch that torch, and the Python version is one the package supports.
"""
from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_lines() -> tuple[list[str], list[Requirement]]:
    """pip's view of requirements.txt: option lines and requirements (comments and blanks dropped)."""
    options, reqs = [], []
    for raw in (BINDER / "requirements.txt").read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
        else:
            reqs.append(Requirement(line))  # raises InvalidRequirement on anything pip would reject
    return options, reqs


def binder_requirements() -> dict[str, Requirement]:
    _, reqs = requirement_lines()
    return {canonicalize_name(r.name): r for r in reqs}


def test_binder_folder_has_the_files_repo2docker_reads():
    for name in ("requirements.txt", "runtime.txt", "postBuild"):
        assert (BINDER / name).is_file(), f"binder/{name} is missing"
    # a binder/ folder makes repo2docker ignore the root's environment files; none should mislead
    for stray in ("environment.yml", "Pipfile", "setup.py"):
        assert not (BINDER / stray).exists(), f"binder/{stray} would change how the image is built"


def test_requirements_parse_and_name_each_package_once():
    options, reqs = requirement_lines()
    assert reqs, "requirements.txt lists nothing"
    names = [canonicalize_name(r.name) for r in reqs]
    assert len(names) == len(set(names)), f"a package listed twice: {names}"
    for opt in options:
        assert re.fullmatch(r"--(extra-)?index-url \S+", opt), f"unexpected pip option line: {opt!r}"


def test_torch_is_the_cpu_build_from_the_cpu_index():
    options, _ = requirement_lines()
    torch = binder_requirements()["torch"]
    (spec,) = list(torch.specifier)
    assert spec.operator == "==", f"torch must be pinned exactly, got {torch}"
    version = Version(spec.version)
    assert version.local == "cpu", f"torch must be a +cpu build, got {spec.version}"
    assert f"--extra-index-url {CPU_INDEX}" in options or f"--index-url {CPU_INDEX}" in options, \
        "the +cpu wheels live only on PyTorch's CPU index"
    # the same release the README's and CI's `pip install torch==...` use
    readme = (ROOT / "README.md").read_text()
    pins = set(re.findall(r"torch==(\d+\.\d+\.\d+)", readme))
    assert pins <= {version.public}, f"README pins torch {pins}, binder {version.public}"


def test_no_other_torch_package_can_pull_a_cuda_build():
    for name, req in binder_requirements().items():
        if name.startswith("torch") and name != "torch" or name in ("triton",) or name.startswith("nvidia-"):
            pytest.fail(f"{req} would pull CUDA wheels or another torch build")


def test_every_runtime_dependency_is_there_in_a_version_the_package_accepts():
    binder = binder_requirements()
    for text in pyproject()["project"]["dependencies"]:
        need = Requirement(text)
        name = canonicalize_name(need.name)
        assert name in binder, f"binder/requirements.txt does not install {need} (a runtime dependency)"
        have = binder[name]
        pinned = [s for s in have.specifier if s.operator == "=="]
        if pinned:
            version = Version(pinned[0].version)
            assert need.specifier.contains(version, prereleases=True), f"binder pins {have}; the package needs {need}"
        else:
            assert _implies(have.specifier, need.specifier), f"binder allows {have}; the package needs {need}"


def test_binder_can_save_gifs_and_pictures_with_the_export_extras_versions():
    """save_gif / save_png / save_svg need matplotlib, Pillow and imageio (MP4 and TensorBoard the whole
    extra): Binder installs those three in versions the export extra accepts."""
    binder = binder_requirements()
    extra = {canonicalize_name(Requirement(t).name): Requirement(t) for t in pyproject()["project"]["optional-dependencies"]["export"]}
    for name in ("matplotlib", "pillow", "imageio"):
        assert name in binder, f"binder/requirements.txt does not install {name} (save_gif on Binder needs it)"
        assert _implies(binder[name].specifier, extra[name].specifier), f"binder allows {binder[name]}; export needs {extra[name]}"


def _implies(have: SpecifierSet, need: SpecifierSet) -> bool:
    """Every lower bound the package needs is met by a lower bound binder asks for (enough here:
    both files only use >= for these)."""
    lows = [Version(s.version) for s in have if s.operator in (">=", "==", "~=")]
    for s in need:
        if s.operator == ">=" and not any(v >= Version(s.version) for v in lows):
            return False
        if s.operator not in (">=",) and str(s) not in {str(h) for h in have}:
            return False
    return True


def test_the_notebooks_import_only_what_binder_installs():
    """Every module a lecture notebook imports comes with Python, with optiviz, or from a package
    binder installs (directly, or as a dependency of one: ipykernel brings IPython)."""
    binder = set(binder_requirements())
    provided = {canonicalize_name(d) for names in importlib.metadata.packages_distributions().values() for d in names}
    dists_of = importlib.metadata.packages_distributions()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb_path in notebooks:
        for module in sorted(_notebook_imports(nb_path)):
            if module in sys.stdlib_module_names or module == "optiviz":
                continue
            dists = {canonicalize_name(d) for d in dists_of.get(module, [])}
            assert dists & provided, f"{nb_path.name} imports {module}, which no installed package provides"
            assert dists & binder or module in ("IPython",), \
                f"{nb_path.name} imports {module} ({', '.join(sorted(dists))}), not in binder/requirements.txt"


def _notebook_imports(path: Path) -> set[str]:
    nb = json.loads(path.read_text())
    found = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        tree = ast.parse("\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_post_build_is_an_executable_script_that_installs_optiviz_without_touching_torch():
    post = BINDER / "postBuild"
    mode = post.stat().st_mode
    assert mode & stat.S_IXUSR, "repo2docker runs postBuild only if it is executable"
    text = post.read_text()
    assert text.startswith("#!"), "postBuild needs a shebang line"
    assert "\r\n" not in text, "CRLF line endings break the shebang"
    shell = text.splitlines()[0][2:].strip().split()[-1]
    assert subprocess.run([shell, "-n", str(post)], capture_output=True).returncode == 0, "postBuild has a syntax error"
    commands = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    installs = [c for c in commands if re.search(r"\bpip\b.*\binstall\b", c)]
    assert installs, "postBuild must install the package"
    for cmd in installs:
        assert "torch" not in cmd, f"postBuild must not install torch itself: {cmd}"
        assert "--no-deps" in cmd, f"without --no-deps pip may replace the +cpu torch: {cmd}"
    assert any(re.search(r"(^|\s)(\.|-e \.)(\s|$)", c) for c in installs), "postBuild must install this checkout (.)"


def test_runtime_python_is_supported_by_the_package():
    text = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)(\.\d+)?", text)
    assert match, f"runtime.txt must read python-X.Y, got {text!r}"
    python = Version(match.group(1) + (match.group(2) or ""))
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert requires.contains(python), f"runtime.txt asks for Python {python}; the package requires {requires}"


def test_post_build_installs_a_working_package(tmp_path):
    """What postBuild's install produces works: a wheel of this checkout built without its
    dependencies carries the bundled CIFAR-10 subset the notebooks use offline."""
    if os.environ.get("OPTIVIZ_SKIP_WHEEL_BUILD"):
        pytest.skip("OPTIVIZ_SKIP_WHEEL_BUILD is set")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("optiviz-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "optiviz/data/cifar10_subset.npz" in names
    assert "optiviz/cli.py" in names
