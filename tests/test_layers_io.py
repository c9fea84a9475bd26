"""The sans-IO layers stay I/O-free: ``dicomnet.ul`` (PS3.8) and ``dicomnet.dimse`` (PS3.7).

Every module of both packages is parsed (not imported) and each ``import``/``from ... import``
is checked, at module level and inside functions alike (a lazy import is still an import):

* nothing that touches files, sockets, threads, processes or clocks (:data:`FORBIDDEN`);
* no dicomnet module outside the two layers except the pure leaves in
  :data:`ALLOWED_DICOMNET`, which are checked by the same rules;
* no third-party package except :data:`ALLOWED_THIRD_PARTY`.

Files and sockets belong to :mod:`dicomnet.transport` and :mod:`dicomnet.datasource` (spool
files, file-backed payloads); the layers get what they need injected (a payload factory, a
clock value, bytes).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
LAYERS = ("dicomnet.ul", "dicomnet.dimse")

#: dicomnet modules outside the layers that they may import: pure leaves (exceptions, UID
#: syntax, the slotted record base) -- scanned below with the same rules.
ALLOWED_DICOMNET = frozenset({"dicomnet.errors", "dicomnet.uid", "dicomnet._record"})

#: Third-party packages the layers may import: pydicom encodes/decodes data sets in memory
#: (imported lazily by the functions that need it).
ALLOWED_THIRD_PARTY = frozenset({"pydicom"})

#: Standard modules that reach files, sockets, threads, processes, clocks or the import system.
FORBIDDEN = frozenset(
    {
        # files and the file system
        "os", "io", "tempfile", "shutil", "pathlib", "errno", "stat", "fcntl", "glob",
        "fileinput", "filecmp", "linecache", "mmap", "posix", "nt", "msvcrt", "gzip", "bz2",
        "lzma", "zipfile", "tarfile", "dbm", "shelve", "sqlite3", "logging",
        # sockets and the network
        "socket", "ssl", "select", "selectors", "asyncio", "socketserver", "http", "urllib",
        "ftplib", "smtplib", "poplib", "imaplib", "xmlrpc", "webbrowser",
        # threads, processes, signals
        "threading", "_thread", "queue", "concurrent", "multiprocessing", "subprocess",
        "signal", "pty", "resource",
        # clocks
        "time", "datetime", "sched", "zoneinfo", "calendar",
        # dynamic imports (a way around this test)
        "importlib",
    }
)  # fmt: skip

#: ``ul/buffer.py`` backs very large PDU bodies with an *anonymous* private ``mmap``
#: (``mmap.mmap(-1, ...)``: memory the kernel maps lazily, no file behind it), so a forged
#: PDU length costs no RAM. That is memory, not file I/O: this one module may import ``mmap``,
#: and every ``mmap.mmap`` call in it must pass -1 (no file descriptor).
ANONYMOUS_MMAP_MODULE = "dicomnet.ul.buffer"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer_files() -> list[Path]:
    files: list[Path] = []
    for layer in LAYERS:
        files.extend(sorted((SRC / layer.replace(".", "/")).glob("*.py")))
    return files


def _leaf_files() -> list[Path]:
    return [SRC / (name.replace(".", "/") + ".py") for name in sorted(ALLOWED_DICOMNET)]


def _imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every module name ``tree`` imports, with its line number (relative imports resolved;
    ``from pkg import name`` also yields ``pkg.name``, which may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield name, node.lineno
            if name.startswith("dicomnet"):
                for alias in node.names:
                    yield f"{name}.{alias.name}", node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            yield "importlib", node.lineno  # __import__() is the import system too


def _is_dicomnet_allowed(name: str) -> bool:
    if name == "dicomnet" or name in ALLOWED_DICOMNET:
        return True
    if any(name == layer or name.startswith(layer + ".") for layer in LAYERS):
        return True
    # ``from dicomnet.errors import DimseError`` also yields "dicomnet.errors.DimseError"
    return any(name.startswith(leaf + ".") for leaf in ALLOWED_DICOMNET)


def _problems(path: Path) -> list[str]:
    module = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[str] = []
    for name, line in _imports(tree, module, path.name == "__init__.py"):
        top = name.partition(".")[0]
        where = f"{path.relative_to(SRC)}:{line}"
        if top == "dicomnet":
            if not _is_dicomnet_allowed(name):
                out.append(f"{where}: imports {name} (outside the sans-IO layers)")
        elif top == "mmap" and module == ANONYMOUS_MMAP_MODULE:
            continue
        elif top in FORBIDDEN:
            out.append(f"{where}: imports {name} (files/sockets/threads/processes/clocks)")
        elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY:
            out.append(f"{where}: imports third-party {name}")
    return out


@pytest.mark.parametrize("path", _layer_files() + _leaf_files(), ids=_module_name)
def test_module_imports_nothing_that_does_io(path: Path) -> None:
    assert _problems(path) == []


def test_the_scan_sees_every_layer_module() -> None:
    names = {_module_name(p) for p in _layer_files()}
    assert {"dicomnet.ul.buffer", "dicomnet.dimse.fragment", "dicomnet.dimse.provider"} <= names


def test_the_only_mmap_is_anonymous() -> None:
    path = SRC / (ANONYMOUS_MMAP_MODULE.replace(".", "/") + ".py")
    calls = [
        node
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "mmap"
    ]
    assert calls, "ul/buffer.py no longer maps memory: drop the mmap exception above"
    for call in calls:
        first = call.args[0] if call.args else None
        assert (
            isinstance(first, ast.UnaryOp)
            and isinstance(first.op, ast.USub)
            and isinstance(first.operand, ast.Constant)
            and first.operand.value == 1
        ), f"line {call.lineno}: mmap.mmap must be anonymous (fileno -1)"


def test_the_checker_catches_what_it_should() -> None:
    """The rules themselves: a lazy import of a forbidden module, a module above the layers,
    a relative import and a third-party package are all reported."""
    code = (
        "def f():\n    import tempfile\n"
        "from dicomnet.datasource import SpoolFile\n"
        "from .. import association\n"
        "import numpy\n"
        "from dicomnet.errors import DimseError\n"
        "from . import commands\n"
    )
    tree = ast.parse(code)
    names = [name for name, _ in _imports(tree, "dicomnet.dimse.fragment", False)]
    assert "tempfile" in names
    assert "dicomnet.association" in names
    assert "dicomnet.dimse.commands" in names
    assert not _is_dicomnet_allowed("dicomnet.datasource")
    assert not _is_dicomnet_allowed("dicomnet.association")
    assert _is_dicomnet_allowed("dicomnet.errors.DimseError")
    assert _is_dicomnet_allowed("dicomnet.dimse.commands")
