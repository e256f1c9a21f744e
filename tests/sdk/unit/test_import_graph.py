"""The SDK's modules import each other without circles (docs/architecture.md: imports point down).

The graph is read from the source with `ast`: one edge per import executed when a module loads (module level,
`try`/`if` blocks included; imports inside functions and under `if TYPE_CHECKING:` are left out, since they run
later or never). `from package import name` is an edge to the submodule `package.name` when that is a module,
else to the package. A package's `__init__` importing its own submodules is how a package is built, not a
circle; a submodule that imports its package back is one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src"
PACKAGES = ("tally", "tally_credentials")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        root = SRC / package
        paths = [root.with_suffix(".py")] if not root.is_dir() else sorted(root.rglob("*.py"))
        for path in paths:
            found[_module_name(path)] = path
    return found


def _load_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if test not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                yield from _load_time_imports(node.body)
            yield from _load_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _load_time_imports(block)
        elif isinstance(node, ast.With):
            yield from _load_time_imports(node.body)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports when it loads."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _load_time_imports(tree.body):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _resolve(name, is_package, node)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.append(submodule if submodule in modules else source)
            for target in targets:
                if target in modules and target != name:
                    if is_package and target.startswith(name + "."):
                        continue  # a package assembling itself from its submodules
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of `graph` (its modules in import order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "tally._errors" in graph["tally._base"]  # a plain edge
    assert "tally.run._spool" in graph["tally.run._sender"]  # a relative one
    assert "tally._sync._client" not in graph["tally.run._run"]  # TYPE_CHECKING and function-level: not edges


def test_the_sdk_imports_without_circles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or ())


def _all_imports(module: str) -> set[str]:
    """Every module `module` names in an import, at any depth: in functions and under TYPE_CHECKING too."""
    path = _modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, path.name == "__init__.py", node)
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def test_errors_import_the_retry_header_without_a_circle() -> None:
    """tally._errors used to import tally._base inside a function, because tally._base imports tally._errors."""
    assert "tally._base" not in _all_imports("tally._errors")
    assert "tally._headers.RETRY_COUNT_HEADER" in _all_imports("tally._errors")


@pytest.mark.parametrize(
    "module", sorted(m for m in _modules() if m == "tally.run" or m.startswith("tally.run."))
)
def test_the_run_package_never_imports_a_client(module: str) -> None:
    """Not even lazily or for types: the client hands its run a `SenderPort`, so the run needs no client class
    (until issue 22, `client.run()` imported `tally.run` and `tally.run` imported `tally._sync._client`)."""
    clients = {
        name
        for name in _all_imports(module)
        if name.startswith(("tally._sync", "tally._async", "tally._run_ports", "tally._loop_port"))
        or name in ("tally.Tally", "tally.AsyncTally")
    }
    assert not clients
