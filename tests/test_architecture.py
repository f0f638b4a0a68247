"""The shape of the code: which package imports which, and who touches whose private names.

Every import counts — at module level, inside functions, and under `TYPE_CHECKING` — because a
function-level import is a dependency all the same, only a hidden one.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "rsi", "agent", "sandbox", "policies", "review")


@dataclass(frozen=True)
class Import:
    source: str
    """The importing module (dotted)."""
    target: str
    """The imported module (dotted); for `from m import name` where name is a module, m.name."""
    where: str
    """file:line of the import statement."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import of our own modules in one file, wherever it stands."""
    found: list[Import] = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, where) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(module, node, path.name == "__init__.py")
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                found.append(Import(module, submodule if submodule in known else origin, where))
    return [i for i in found if i.target.split(".")[0] in PACKAGES]


@functools.cache
def all_imports() -> list[Import]:
    found = modules()
    known = set(found)
    return [i for module, path in found.items() for i in imports_of(module, path, known)]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def explain(component: list[str], imports: list[Import], level: int | None) -> str:
    """The imports that tie a cycle together, each with where it stands."""

    def name(module: str) -> str:
        return module.split(".")[0] if level == 1 else module

    members = set(component)
    lines = [
        f"  {name(i.source)} -> {name(i.target)}  ({i.where})"
        for i in imports
        if name(i.source) in members and name(i.target) in members and name(i.source) != name(i.target)
    ]
    return " <-> ".join(component) + "\n" + "\n".join(sorted(set(lines))[:20])


def package_graph(imports: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for i in imports:
        source, target = i.source.split(".")[0], i.target.split(".")[0]
        if source != target:
            graph[source].add(target)
    return graph


def module_graph(imports: list[Import], known: set[str]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for i in imports:
        target = i.target
        while target not in known and "." in target:
            target = target.rpartition(".")[0]
        if target in known and target != i.source and not i.source.startswith(target + "."):
            graph[i.source].add(target)
    return graph


def test_no_cycle_between_top_level_packages() -> None:
    imports = all_imports()
    found = cycles(package_graph(imports))
    assert not found, "import cycles between packages:\n" + "\n".join(
        explain(component, imports, level=1) for component in found
    )


def test_no_cycle_between_modules() -> None:
    imports = all_imports()
    found = cycles(module_graph(imports, set(modules())))
    assert not found, "import cycles between modules (function-level imports included):\n" + "\n".join(
        explain(component, imports, level=None) for component in found
    )


def _defined_private_names(tree: ast.Module) -> set[str]:
    """Private names a module defines itself: functions, classes, attributes it assigns."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name | ast.arg):
            names.add(node.id if isinstance(node, ast.Name) else node.arg)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {name for name in names if name.startswith("_")}


def _on_self(value: ast.expr) -> bool:
    if isinstance(value, ast.Name):
        return value.id in ("self", "cls")
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"


DOCUMENTED = frozenset({"os._exit", "sys._getframe"})
"""Standard-library functions whose documented, public names begin with an underscore (the runtime
audit's hook, sandbox/audit, needs both)."""


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path) -> list[str]:
    """Where a module reaches into another module's private names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own = _defined_private_names(tree)
    where = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            found += [
                f"{where}:{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if _private(alias.name)
            ]
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
            # a class's own (or inherited) protected members are its own business
            if _on_self(node.value) or ast.unparse(node) in DOCUMENTED:
                continue
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    found = [use for path in modules().values() for use in private_uses(path)]
    assert not found, "private names used outside the module that defines them:\n" + "\n".join(found)


def test_the_checks_see_function_level_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rsi.loop import RunParts\n"
        "def later():\n    import review.app\n    from sandbox.lineage import _private\n"
    )
    known = set(modules())  # listed before the probe exists, so no other check ever sees it
    path = ROOT / "core" / "_architecture_probe.py"
    path.write_text(source, encoding="utf-8")
    try:
        targets = {i.target for i in imports_of("core._architecture_probe", path, known)}
        uses = private_uses(path)
    finally:
        path.unlink()
    assert {"rsi.loop", "review.app", "sandbox.lineage"} <= targets
    assert uses == ["core/_architecture_probe.py:6: from sandbox.lineage import _private"]


def test_a_cycle_is_found_and_explained() -> None:
    imports = [Import("a.x", "b.y", "a/x.py:1"), Import("b.y", "a.z", "b/y.py:2")]
    assert cycles(package_graph(imports)) == [["a", "b"]]
    assert "a -> b  (a/x.py:1)" in explain(["a", "b"], imports, level=1)


def test_the_kernel_imports_no_other_package_of_ours() -> None:
    assert package_graph(all_imports()).get("core", set()) == set()
