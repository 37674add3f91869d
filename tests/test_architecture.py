"""The shape docs/architecture.md promises, checked on the source: layers, cycles, sizes.

Read with `ast`, so imports inside functions and under TYPE_CHECKING count as imports too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "optiviz"
WIDGET_LIBRARIES = ("ipywidgets", "bqplot", "IPython", "traitlets")
MAX_CLASS_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in sorted(PACKAGE.rglob("*.py"))}


SOURCES = _sources()


def _imports(module: str, tree: ast.Module) -> set[str]:
    """Every module a file imports, wherever the import statement stands."""
    out: set[str] = set()
    package = module if SOURCES[module][0].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _internal_graph() -> dict[str, set[str]]:
    graph = {}
    for module, (_path, tree) in SOURCES.items():
        graph[module] = {m for m in _imports(module, tree) if m in SOURCES and m != module and m != "optiviz"}
    return graph


def test_no_import_cycles_anywhere():
    graph = _internal_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_only_views_import_widget_libraries():
    offenders = []
    for module, (_path, tree) in SOURCES.items():
        if module.startswith("optiviz.views.") and not module.endswith(".controller"):
            continue
        for name in _imports(module, tree):
            if name.split(".")[0] in WIDGET_LIBRARIES:
                offenders.append(f"{module} imports {name}")
    assert not offenders, offenders


def test_controllers_are_plain_python():
    controllers = [m for m in SOURCES if m.endswith(".controller")]
    assert {"optiviz.views.explorer.controller", "optiviz.views.dashboard.controller"} <= set(controllers)
    for module in controllers:
        names = {n.split(".")[0] for n in _imports(module, SOURCES[module][1])}
        assert not names & set(WIDGET_LIBRARIES), (module, names & set(WIDGET_LIBRARIES))


def test_views_are_split_into_subpackages():
    views = PACKAGE / "views"
    loose = sorted(p.name for p in views.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules directly under views/: {loose}"
    assert {"common", "explorer", "dashboard", "maps"} <= {p.name for p in views.iterdir() if p.is_dir()}


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_no_class_longer_than_the_limit(module):
    path, tree = SOURCES[module]
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= MAX_CLASS_LINES, f"{path.name}:{node.lineno} class {node.name} is {lines} lines"


def test_no_runtime_asserts_and_no_private_imports_across_modules():
    problems = []
    for module, (path, tree) in SOURCES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                problems.append(f"{path.name}:{node.lineno} assert")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optiviz"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        problems.append(f"{path.name}:{node.lineno} imports private {node.module}.{alias.name}")
    assert not problems, problems
