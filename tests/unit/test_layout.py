"""The package's folders show the flow, and imports only go down it.

Layers, lowest first: ``results`` and ``version``; ``recording``; ``cases``; ``asking``,
``judging`` and ``reference``; ``report``; ``options``; ``running``; and on
top ``plugin`` and ``cli``.  A module imports only from its own layer or
lower ones (imports made for type checking only are left out), no module
imports itself back through others, and the judging code imports neither
pytest nor the HTTP stack.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_ftclass"
LAYERS = {
    "version": 0,
    "results": 0,
    "recording": 1,
    "cases": 2,
    "asking": 3,
    "judging": 3,
    "reference": 3,
    "report": 4,
    "options": 5,
    "running": 6,
    "plugin": 7,
    "cli": 7,
    "": 8,  # pytest_ftclass/__init__.py
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else ""]


def imports(path: Path) -> Iterator[str]:
    """Modules ``path`` imports, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for inner in node.body for child in ast.walk(inner))
    this = module_name(path)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = this.split(".")
                base = parts[: len(parts) - node.level + (path.stem == "__init__")]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        own = {m for m in imports(path) if m.startswith("pytest_ftclass")}
        edges[module_name(path)] = own
    return edges


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    edges = graph()
    known = set(edges)

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(filter(None, map(resolve, edges[module]))):
            if target == module or target == module.rpartition(".")[0]:
                continue  # a module and the package it belongs to
            if state.get(target) == 1:
                cycles.append([*trail, module, target])
            elif target not in state:
                visit(target, [*trail, module])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_judging_imports_neither_pytest_nor_the_http_stack() -> None:
    forbidden = ("pytest", "openai", "httpx", "vcr", "_pytest", "jinja2")
    found = [
        f"{path.name} -> {name}"
        for path in (PACKAGE / "judging").glob("*.py")
        for name in imports(path)
        if name.split(".")[0] in forbidden
    ]
    assert found == []
