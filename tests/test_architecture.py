"""The shape of the package: every fact about a model lives in ``wavelab/models/`` (no registry name is written as a
string anywhere else in the package), and the import graph runs one way, from the reader-facing layers down to
audio and data, with no circle (DESIGN.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from wavelab.models import REGISTRY

PACKAGE = Path(__file__).resolve().parents[1] / "wavelab"

#: the layers of the package, lowest first: a module may import its own layer (without a circle) and those below
LAYERS = (
    ("wavelab", "wavelab.settings", "wavelab.likelihood", "wavelab.audio"),
    ("wavelab.representations",),
    ("wavelab.distributions", "wavelab.data", "wavelab.fixedpoint"),
    ("wavelab.models",),
    ("wavelab.runs",),
    ("wavelab.evaluate", "wavelab.train", "wavelab.baselines", "wavelab.coding", "wavelab.portable", "wavelab.scoring"),
    ("wavelab.report",),
    ("wavelab.analysis", "wavelab.campaign"),
    ("wavelab.__main__",),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    base = PACKAGE.parent / module.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The wavelab modules ``path`` imports, at module level or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("wavelab"):
                continue
            # ``from . import data`` imports the submodule, not the package's __init__
            subs = [f"{module}.{a.name}" for a in node.names if _exists(f"{module}.{a.name}")]
            found.update(subs or [module])
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("wavelab"))
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    """Module name -> the wavelab modules it imports, for every module of the package."""
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of the longest prefix that names ``module`` or a package above it."""
    best = None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (module == n or module.startswith(n + ".")) and (best is None or len(n) > len(best[1])):
                best = (i, n)
    if best is None:
        raise KeyError(f"{module} is in no layer of LAYERS")
    return best[0]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports in ``graph`` (as a list of modules, first == last), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def string_constants(source: str) -> list[tuple[int, str]]:
    """``(line, value)`` of every string literal in ``source`` that is not a docstring."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_the_scanners_find_what_they_look_for():
    planted = '"""Docs that say "wavenet" are fine."""\nMODEL = "wavenet"\nx = f"{MODEL}"\n'
    assert [v for _, v in string_constants(planted) if v in REGISTRY] == ["wavenet"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("wavelab.report.tables") > layer_of("wavelab.models.base") > layer_of("wavelab.audio")


def test_no_registry_name_is_written_outside_models():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "models") in path.parents:
            continue
        found += [f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r}"
                  for line, value in string_constants(path.read_text()) if value in REGISTRY]
    assert not found, "registry names belong to wavelab/models/ (read them through the registry):\n" + "\n".join(found)


def test_every_module_belongs_to_a_layer_and_imports_only_its_own_or_lower_ones():
    graph = import_graph()
    upward = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
              for m, deps in graph.items() for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_circle():
    assert find_cycle(import_graph()) is None


def test_every_import_inside_a_function_names_something_that_exists():
    """Imports inside functions (and in the benchmark and helper scripts) run only when that code does; each one
    must name a module or an attribute that is there (a name moved to another module fails here, not in a reader's
    notebook or a benchmark run)."""
    import importlib

    missing = []
    scripts = sorted((PACKAGE.parent / "benchmarks").glob("*.py")) + sorted((PACKAGE.parent / "scripts").glob("*.py"))
    for path in sorted(PACKAGE.rglob("*.py")) + scripts:
        name = _module_name(path) if PACKAGE in path.parents else "__script__"
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            if not module.startswith("wavelab"):
                continue
            try:
                loaded = importlib.import_module(module)
            except ImportError:
                missing.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: no module {module}")
                continue
            missing += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {module}.{a.name}" for a in node.names
                        if not hasattr(loaded, a.name) and not _exists(f"{module}.{a.name}")]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("root", ["audio", "representations", "data", "distributions", "models", "train",
                                  "evaluate", "coding"])
def test_the_package_root_keeps_what_a_reader_looks_for_first(root):
    assert _exists(f"wavelab.{root}")
    top = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert {"results", "tables", "findings", "curves", "recipes", "gpu", "widgets", "plots"}.isdisjoint(top)
