"""The shape of the package: no import circle among serlib's modules, no module over 600 lines.

Every module of ``serlib/`` is parsed with :mod:`ast` (nothing is imported), and every
``import``/``from ... import`` statement counts, at module level or inside a function or
class. An import names the most specific module it reaches (``from .models import
get_model`` names ``serlib.models``; ``from . import fusion`` names ``serlib.fusion``), and
also the packages above that module that the importer is not inside, since Python runs their
``__init__`` first (``serlib.evaluation`` importing ``serlib.training.data`` also imports
``serlib.training``). A package's own modules importing each other is not a circle through
their package.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "serlib"
MAX_LINES = 600


def _modules(root: Path) -> dict:
    """``{dotted name: file}`` for every module of the package at ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def import_graph(root: Path = PACKAGE) -> dict:
    """``{module: {imported module, ...}}`` over the package at ``root`` (its own modules only)."""
    modules = _modules(root)
    top = root.name
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        named = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                named |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    named.add(sub if sub in modules else source)
        targets = set()
        for target in named:
            while target and target not in modules:   # `import serlib.x.y` of a name inside a module
                target = target.rpartition(".")[0]
            if not target or not _inside(target, top):
                continue
            targets.add(target)
            parent = target.rpartition(".")[0]
            while parent:          # Python runs each package's __init__ on the way down
                if not _inside(name, parent):
                    targets.add(parent)
                parent = parent.rpartition(".")[0]
        targets.discard(name)
        graph[name] = targets
    return graph


def circles(graph: dict) -> list:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _describe(group: list, graph: dict) -> str:
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(group)))}" for m in group)


def test_no_import_circle_among_serlib_modules():
    graph = import_graph()
    assert "serlib.training.fitting" in graph and "serlib.runs" in graph   # the walk found the package
    found = circles(graph)
    assert not found, "import circles: " + " | ".join(_describe(g, graph) for g in found)


#: The only modules that may import serlib.training: the ones above it (evaluation) and its clients.
ABOVE_TRAINING = ("serlib.evaluation", "serlib.cli", "serlib.model_pages", "serlib.book", "serlib.predict")


def test_the_layers_point_down():
    """The circles the split of serlib.training removed stay gone, named edge by edge."""
    graph = import_graph()
    importers = sorted(m for m, targets in graph.items() if not _inside(m, "serlib.training")
                       and any(_inside(t, "serlib.training") for t in targets))
    assert set(importers) <= set(ABOVE_TRAINING), f"modules below serlib.training that import it: {importers}"
    assert not any(_inside(t, "serlib.training") for t in graph["serlib.runs"] | graph["serlib.song"])
    assert not {"serlib.training", "serlib.runs"} & graph["serlib.models.gender"]   # models sit below runs
    assert not [t for m, targets in graph.items() if _inside(m, "serlib.training") for t in targets
                if t in ABOVE_TRAINING]


#: Modules allowed over the limit (none).
KNOWN_LONG: set = set()


def test_no_module_over_600_lines():
    lines = {name: len(path.read_text().splitlines()) for name, path in _modules(PACKAGE).items()}
    long = {name: n for name, n in lines.items() if n > MAX_LINES}
    assert not set(long) - KNOWN_LONG, f"modules over {MAX_LINES} lines: {long}"
    fits = sorted(name for name in KNOWN_LONG if lines.get(name, 0) <= MAX_LINES)
    assert not fits, f"{fits} now fit in {MAX_LINES} lines: remove them from KNOWN_LONG"


# ----------------------------------------------------------------------------- the checker itself
def _package(tmp_path: Path, files: dict) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    root = _package(tmp_path, {"__init__.py": "", "low.py": "def f():\n    from .high import g\n",
                               "high.py": "from .low import f\n"})
    graph = import_graph(root)
    assert graph["pkg.high"] == {"pkg.low"} and graph["pkg.low"] == {"pkg.high"}
    assert circles(graph) == [["pkg.high", "pkg.low"]]


def test_a_circle_through_a_package_init_is_found_and_siblings_are_not_one(tmp_path):
    root = _package(tmp_path, {"__init__.py": "", "sub/__init__.py": "from .a import x\nfrom .b import y\n",
                               "sub/a.py": "x = 1\n", "sub/b.py": "from .a import x\ny = x\n",
                               "other.py": "from .sub.a import x\n",
                               "user.py": "import pkg.sub.b\n"})
    graph = import_graph(root)
    assert graph["pkg.other"] == {"pkg.sub.a", "pkg.sub"}       # the package's __init__ runs first
    assert graph["pkg.sub.b"] == {"pkg.sub.a"}                  # a sibling, not its own package
    assert circles(graph) == []
    (root / "sub" / "a.py").write_text("def later():\n    from ..other import x\n")
    assert circles(import_graph(root)) == [["pkg.other", "pkg.sub", "pkg.sub.a", "pkg.sub.b"]]


@pytest.mark.parametrize("line, target", [("from . import b", "pkg.b"), ("from .b import thing", "pkg.b"),
                                          ("import pkg.b", "pkg.b"), ("from pkg import b", "pkg.b"),
                                          ("import os", None)])
def test_every_spelling_of_an_import_counts(tmp_path, line, target):
    root = _package(tmp_path, {"__init__.py": "", "a.py": f"class A:\n    def m(self):\n        {line}\n",
                               "b.py": "thing = 1\n"})
    assert import_graph(root)["pkg.a"] == ({target} if target else set())
