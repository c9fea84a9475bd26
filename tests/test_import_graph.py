"""The shape of the package: its import graph has no cycle, layers import only downward, no
module reaches into another's underscore names, and every import inside a function says why.

The graph is read from the source (``ast``), not by importing: each ``import`` and
``from ... import`` of a dicomnet module is an edge, at module level and inside functions alike
(a lazy import that closes a cycle is still a cycle, only a hidden one). Imports under
``if TYPE_CHECKING:`` are not edges: they never run. Neither is the implicit edge from a module
to its parent package (Python initialises ``dicomnet.transcode`` before
``dicomnet.transcode.check``; a package ``__init__`` re-exporting its modules is a facade, not a
dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

#: Layers from the bottom up: a module may import its own layer and the ones below it only.
#: (The sans-IO cores' purity -- no files, sockets, threads, clocks -- is tests/test_layers_io.)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dicomnet._record", "dicomnet.errors", "dicomnet.uid", "dicomnet._config",
     "dicomnet._handlers"),
    ("dicomnet.ul", "dicomnet.dimse"),
    (
        "dicomnet.datasource", "dicomnet.transport", "dicomnet.presentation",
        "dicomnet.presentation_lists", "dicomnet.sop_sets", "dicomnet.monitor",
        "dicomnet.message_queue",
        "dicomnet.negotiated",
        # pynetdicom's module names, facades over the layers below
        "dicomnet.sop_class", "dicomnet.service_class", "dicomnet.service_class_n",
        "dicomnet.status", "dicomnet.pdu_primitives", "dicomnet.dimse_primitives",
        "dicomnet.dimse_messages", "dicomnet._globals", "dicomnet.utils", "dicomnet.dsutils",
    ),
    ("dicomnet.settings", "dicomnet.event_types", "dicomnet.events", "dicomnet.evt",
     "dicomnet.protocol_events",
     "dicomnet.transcode", "dicomnet.serviceuser"),
    ("dicomnet.assocbase", "dicomnet.services"),
    ("dicomnet.association", "dicomnet.aio_association", "dicomnet.client"),
    ("dicomnet.acceptance", "dicomnet.acceptor", "dicomnet.serverflow", "dicomnet.server"),
    ("dicomnet.ae",),
    ("dicomnet.archive",),
    ("dicomnet.cli", "dicomnet.__main__"),
)  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted((SRC / "dicomnet").rglob("*.py"))}


def _layer(module: str) -> int | None:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None  # the package itself (dicomnet/__init__.py): a facade over everything


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class Import:
    """One import of a dicomnet module found in the source."""

    def __init__(self, source: str, target: str, line: int, in_function: bool, names: list[str]):
        self.source, self.target, self.line = source, target, line
        self.in_function, self.names = in_function, names


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    yield from walk_one(other, in_function)
                continue
            yield from walk_one(child, in_function)

    def walk_one(node: ast.AST, in_function: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield Import(module, alias.name, node.lineno, in_function, [])
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            names = []
            for alias in node.names:  # ``from dicomnet import server`` imports a module
                if f"{base}.{alias.name}" in MODULES:
                    yield Import(module, f"{base}.{alias.name}", node.lineno, in_function, [])
                else:
                    names.append(alias.name)
            if base in MODULES and names:
                yield Import(module, base, node.lineno, in_function, names)
            return
        yield from walk(
            node, in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        )

    yield from walk(tree, False)


IMPORTS = [imp for name, path in MODULES.items() for imp in _imports(name, path)]
GRAPH: dict[str, set[str]] = {name: set() for name in MODULES}
for _imp in IMPORTS:
    if _imp.target != _imp.source:
        GRAPH[_imp.source].add(_imp.target)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_cycle() -> None:
    # the detector itself: a -> b -> c -> a is reported, a DAG is not
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_import_graph_has_no_cycle() -> None:
    assert len(MODULES) > 50 and sum(map(len, GRAPH.values())) > 100  # the graph was read
    assert _cycles(GRAPH) == []


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if m != "dicomnet" and _layer(m) is None] == []


def test_layers_import_only_downward() -> None:
    upward = []
    for imp in IMPORTS:
        src, dst = _layer(imp.source), _layer(imp.target)
        if src is not None and dst is not None and dst > src:
            upward.append(f"{imp.source}:{imp.line} imports {imp.target}")
    assert upward == []


def test_no_module_uses_another_modules_underscore_names() -> None:
    offences = []
    for imp in IMPORTS:
        for name in imp.names:
            if name.startswith("_") and not name.startswith("__"):
                offences.append(f"{imp.source}:{imp.line} imports {imp.target}.{name}")
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # names bound to dicomnet modules in this file (import x.y as z / from x import y)
        bound = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES and alias.asname:
                        bound[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in MODULES:
                        bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
            ):
                offences.append(f"{name}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    assert offences == []


def test_every_import_inside_a_function_says_why() -> None:
    """A function-level import is a start-up decision (it keeps an expensive module out of a
    process that never needs it): the comment next to it says which and why (``# lazy: ...``)."""
    silent = []
    for imp in IMPORTS:
        if not imp.in_function:
            continue
        lines = MODULES[imp.source].read_text(encoding="utf-8").splitlines()
        window = lines[max(0, imp.line - 6) : imp.line]
        if not any("lazy" in line for line in window if "#" in line):
            silent.append(f"{imp.source}:{imp.line} imports {imp.target}")
    assert silent == []
