"""No module of the package imports another that imports it back, directly or through others:
imports inside functions and under ``TYPE_CHECKING`` count too (a cycle hidden in a function is
still one module that cannot be understood, tested or moved without the other)."""

from __future__ import annotations

import ast
from pathlib import Path

import genderclass

PACKAGE = Path(genderclass.__file__).parent
KEPT_ACYCLIC = ("genderclass",)  # packages whose modules form no cycle


def _modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's ``__init__``)."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module's imports of other modules of the package, from every ``import`` statement in it."""
    modules = _modules(package)

    def known(name: str) -> str | None:  # the module an imported name lives in
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                for alias in node.names:  # ``from . import commands`` imports a module
                    sub = f"{target}.{alias.name}"
                    imported.add(sub if sub in modules else known(target))
        graph[name] = {other for other in imported if other and other != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_every_kind_of_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "sub/c.py", "d.py", "e.py"):
        (package / name).write_text("")
    (package / "a.py").write_text("def f():\n    from .sub import c\n")  # inside a function
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nimport pkg.d\nif TYPE_CHECKING:\n    from .e import E\n"
    )
    (package / "sub" / "c.py").write_text("from ..a import f\nfrom . import missing\n")
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub.c"} and graph["pkg.b"] == {"pkg.d", "pkg.e"}
    assert graph["pkg.sub.c"] == {"pkg.a", "pkg.sub"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.c"]]


def test_no_module_imports_itself_through_others():
    found = [cycle for cycle in cycles(import_graph()) if any(m.startswith(KEPT_ACYCLIC) for m in cycle)]
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(cycle) for cycle in found)


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
