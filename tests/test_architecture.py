"""The shape of the package, kept: no import circle, no library module importing the CLI,
the runtime never importing the conversion toolchain, no module of two jobs' length."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 420  # "no module over ~400 lines"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for top in ("edgepose", "converters") for p in (ROOT / top).rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports, at top level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    out = {}
    for name, path in known.items():
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        out[name] = imports(path, known) - {name} - parents  # a package's own __init__ is not a circle
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert cycles(graph()) == []


def test_the_circle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_library_module_imports_the_cli_and_the_runtime_not_the_toolchain():
    for name, deps in graph().items():
        if not name.startswith("edgepose.cli") and name != "edgepose.__main__":
            assert not any(d.startswith("edgepose.cli") for d in deps), f"{name} imports the CLI"
        if name.startswith("edgepose") and not name.startswith("edgepose.cli"):
            assert not any(d.startswith("converters") for d in deps), f"{name} imports the toolchain"


def test_no_module_does_two_jobs_worth_of_lines():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
