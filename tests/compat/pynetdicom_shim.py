"""Run pynetdicom's own test modules against dicomnet with nothing but an import shim.

Theory of operation
-------------------
:func:`load_pynetdicom_tests` reads a test module's source from the *installed* pynetdicom
(``pynetdicom/tests/<name>.py``; nothing is copied into this repository) and rewrites its
module-level import statements -- and nothing else -- by :data:`IMPORTS`, a table that says,
for every name the module imports from pynetdicom, where it comes from now:

* a dicomnet module (the API under test: ``pynetdicom.dimse_messages`` ->
  ``dicomnet.dimse_messages``, ``from pynetdicom import AE`` -> ``dicomnet.AE``, ...);
* pynetdicom itself, for test *data and scaffolding* only: the encoded PDU/message fixtures
  (``.encoded_*``), ``get_port`` (``.utils``), and the few classes its dummy association is
  built from. Each such name says why, and the loader checks the claim (a name kept "unused"
  must not be used; one kept "for the fixture" may only be used inside that fixture class);
* this shim, for the two places where pynetdicom's test scaffolding meets an interface
  dicomnet deliberately has in another shape (:class:`PynetdicomAssociationAdapter`, used by
  :func:`DIMSEServiceProvider`, and :class:`P_DATA_TF`). Each adaptation is documented where
  it is made.

An import the table does not know raises :class:`ShimError`: a new pynetdicom release with new
imports fails loudly instead of silently testing pynetdicom against itself. The rewritten import
occupies exactly the lines of the original, so line numbers in tracebacks are pynetdicom's; the
rewritten source is registered in :mod:`linecache`, so tracebacks show what actually ran.
Asserts are rewritten by pytest's assertion rewriter when it is available (pytest only rewrites
modules it imports itself), so failures show the compared values.
"""

from __future__ import annotations

import ast
import importlib.util
import linecache
import time
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "IMPORTS",
    "P_DATA_TF",
    "DIMSEServiceProvider",
    "PynetdicomAssociationAdapter",
    "ShimError",
    "load_pynetdicom_tests",
    "pynetdicom_tests_dir",
]


class ShimError(Exception):
    """The test module imports something the shim has no rule for (or breaks a rule)."""


# -- the import table --------------------------------------------------------------------------

_SHIM = __name__


@dataclass(frozen=True)
class Rule:
    """Where one imported name comes from after the rewrite.

    ``module``/``name``: the new source (``name`` None: the same name). ``kept``: the reason a
    pynetdicom name is still taken from pynetdicom (then ``module`` is pynetdicom's own).
    ``unused``: the name must not be used by the module (checked). ``only_in``: the name may
    only be used inside these top-level classes/functions (checked).
    """

    module: str
    name: str | None = None
    kept: str | None = None
    unused: bool = False
    only_in: frozenset[str] = frozenset()


def _same(module: str) -> Rule:
    return Rule(module)


_FIXTURE = frozenset({"DummyAssociation"})

#: (pynetdicom module, name) -> Rule; name "*" is the rule for every name of that module.
IMPORTS: dict[tuple[str, str], Rule] = {
    # -- the API under test: dicomnet's modules of the same names -----------------------------
    ("pynetdicom", "evt"): _same("dicomnet"),
    ("pynetdicom", "AE"): _same("dicomnet"),
    ("pynetdicom", "Association"): _same("dicomnet"),
    ("pynetdicom", "_config"): _same("dicomnet"),
    ("pynetdicom", "debug_logger"): _same("dicomnet"),
    ("pynetdicom.dimse_messages", "*"): _same("dicomnet.dimse_messages"),
    ("pynetdicom.dimse_primitives", "*"): _same("dicomnet.dimse_primitives"),
    ("pynetdicom.events", "*"): _same("dicomnet.events"),
    ("pynetdicom.pdu_primitives", "*"): _same("dicomnet.pdu_primitives"),
    ("pynetdicom.sop_class", "*"): _same("dicomnet.sop_class"),
    # dicomnet's provider, built from a pynetdicom-style association: see DIMSEServiceProvider
    ("pynetdicom.dimse", "DIMSEServiceProvider"): _same(_SHIM),
    # pynetdicom.pdu has no dicomnet counterpart module (dicomnet.ul.pdu has the records and
    # dicomnet.ul.codec the codec): see P_DATA_TF
    ("pynetdicom.pdu", "P_DATA_TF"): _same(_SHIM),
    # -- scaffolding kept from pynetdicom -----------------------------------------------------
    ("pynetdicom.association", "ServiceUser"): Rule(
        "pynetdicom.association",
        kept="builds the dummy association's requestor/acceptor records (maximum_length); "
        "dicomnet's ServiceUser is the negotiated record, built by the association",
        only_in=_FIXTURE,
    ),
    ("pynetdicom.transport", "AddressInformation"): Rule(
        "pynetdicom.transport",
        kept="an address record the dummy association stores and nothing reads",
        only_in=_FIXTURE,
    ),
    ("pynetdicom.dsutils", "encode"): Rule(
        "pynetdicom.dsutils", kept="imported but never used by the module", unused=True
    ),
}

#: Relative imports of pynetdicom's test package: test data and helpers, kept from pynetdicom.
_TEST_DATA = {
    "encoded_dimse_msg": "encoded DIMSE message bytes (test data)",
    "encoded_dimse_n_msg": "encoded DIMSE-N message bytes (test data)",
    "encoded_pdu_items": "encoded PDU bytes (test data)",
    "utils": "get_port(): free TCP ports for the test servers",
}
#: ... except these, replaced by our own: pynetdicom's get_port() hands out the fixed port
#: 11112 outside xdist, and our network tests bind only system-chosen ports
_OUR_HELPERS = {"utils": "tests.compat.pynetdicom_ports"}


def _rule_for(module: str, name: str) -> Rule:
    rule = IMPORTS.get((module, name)) or IMPORTS.get((module, "*"))
    if rule is None:
        raise ShimError(f"no rule for 'from {module} import {name}'")
    return rule


def _rewrite_import(node: ast.stmt, package: str) -> tuple[str, dict[str, Rule]]:
    """One import statement -> (replacement source, {local name: rule} for the checks)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "pynetdicom":
                raise ShimError(f"no rule for 'import {alias.name}'")
        return ast.unparse(node), {}
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        if node.level != 1 or node.module not in _TEST_DATA:
            raise ShimError(f"no rule for relative import of {node.module!r}")
        target = _OUR_HELPERS.get(node.module, f"{package}.{node.module}")
        absolute = ast.ImportFrom(module=target, names=node.names, level=0)
        return ast.unparse(absolute), {}
    module = node.module or ""
    if module.split(".")[0] != "pynetdicom":
        return ast.unparse(node), {}
    groups: dict[str, list[str]] = {}
    used: dict[str, Rule] = {}
    for alias in node.names:
        if alias.name == "*":
            raise ShimError(f"'from {module} import *' cannot be mapped name by name")
        rule = _rule_for(module, alias.name)
        target = rule.name or alias.name
        local = alias.asname or alias.name
        groups.setdefault(rule.module, []).append(
            target if target == local else f"{target} as {local}"
        )
        used[local] = rule
    source = "; ".join(f"from {mod} import {', '.join(names)}" for mod, names in groups.items())
    return source, used


def _check_uses(tree: ast.Module, rules: dict[str, Rule]) -> None:
    """Enforce ``unused`` and ``only_in`` of the kept names."""
    for top in tree.body:
        if isinstance(top, ast.Import | ast.ImportFrom):
            continue
        owner = getattr(top, "name", None)
        for node in ast.walk(top):
            if not isinstance(node, ast.Name) or node.id not in rules:
                continue
            rule = rules[node.id]
            if rule.unused:
                raise ShimError(f"{node.id} is kept from pynetdicom as unused, but line "
                                f"{node.lineno} uses it")  # fmt: skip
            if rule.only_in and owner not in rule.only_in:
                raise ShimError(f"{node.id} is kept from pynetdicom for {sorted(rule.only_in)} "
                                f"only, but line {node.lineno} uses it")  # fmt: skip


def pynetdicom_tests_dir() -> Path | None:
    """The installed pynetdicom's ``tests`` directory, or None (pynetdicom absent)."""
    spec = importlib.util.find_spec("pynetdicom")
    if spec is None or spec.origin is None:
        return None
    tests = Path(spec.origin).parent / "tests"
    return tests if tests.is_dir() else None


def load_pynetdicom_tests(name: str) -> types.ModuleType:
    """pynetdicom's ``tests/<name>.py``, imports rewritten by :data:`IMPORTS`, as a module."""
    tests = pynetdicom_tests_dir()
    if tests is None:
        raise ShimError("pynetdicom (with its tests) is not installed")
    path = tests / f"{name}.py"
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    tree = ast.parse(original, str(path))
    rules: dict[str, Rule] = {}
    # Rewrite bottom-up so earlier line numbers stay valid; each replacement keeps the line
    # count of the statement it replaces (padding with blank lines).
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    for node in reversed(imports):
        source, used = _rewrite_import(node, "pynetdicom.tests")
        rules.update(used)
        first, last = node.lineno - 1, node.end_lineno or node.lineno
        lines[first:last] = [source + "\n"] + ["\n"] * (last - first - 1)
    for node in ast.walk(tree):  # imports inside functions run at test time: not rewritten
        if isinstance(node, ast.Import | ast.ImportFrom) and node not in imports:
            mod = getattr(node, "module", None) or ""
            names = [a.name for a in getattr(node, "names", [])]
            if mod.startswith("pynetdicom") or any(n.startswith("pynetdicom") for n in names):
                raise ShimError(f"line {node.lineno}: a nested pynetdicom import")
    _check_uses(tree, rules)

    rewritten = "".join(lines)
    filename = f"{path} [imports rewritten for dicomnet]"
    linecache.cache[filename] = (len(rewritten), None, rewritten.splitlines(True), filename)
    module_name = f"pynetdicom_on_dicomnet.{name}"
    module = types.ModuleType(module_name)
    module.__file__ = filename
    new_tree = ast.parse(rewritten, filename)
    try:  # pytest rewrites asserts only in modules it imports itself
        from _pytest.assertion.rewrite import rewrite_asserts
    except ImportError:  # pragma: no cover - plain asserts then
        pass
    else:
        rewrite_asserts(new_tree, rewritten.encode(), filename)
    exec(compile(new_tree, filename, "exec"), module.__dict__)
    return module


# -- the adaptations ---------------------------------------------------------------------------

#: Every valid presentation context ID (PS3.8 9.3.2.2: odd integers 1-255).
ALL_CONTEXT_IDS = frozenset(range(1, 256, 2))


class PynetdicomDULAdapter:
    """dicomnet's ``DULLike`` over a pynetdicom-style DUL (pynetdicom's ``DULServiceProvider``
    or its tests' ``DummyDUL``).

    * ``is_alive``: pynetdicom's DUL is a thread, ``is_alive()`` is its method; dicomnet reads
      a property.
    * ``send_pdata_chunks``/``send_pdata_many``: pynetdicom's DUL sends P-DATA *primitives*
      (``send_pdu``); each encoded P-DATA-TF is decoded with dicomnet's codec and sent as
      dicomnet's ``P_DATA`` primitive. ``sends_file_regions`` is False (bytes only).
    * ``wait_for_activity(deadline)``: pynetdicom's DUL delivers received PDUs from its own
      thread; the one these tests use (``DummyDUL``) never receives anything, and so this
      adapter reports no activity: it waits until the deadline and returns False (at once
      when the DUL is not alive). ``get_msg(block=True)`` thus waits ``dimse_timeout`` as
      pynetdicom's ``msg_queue.get(timeout=...)`` does.
    * Other attributes (``event_queue``, ...) are the wrapped DUL's.
    """

    sends_file_regions = False

    def __init__(self, dul: Any, clock: Any = time.monotonic) -> None:
        self._dul = dul
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dul, name)

    @property
    def is_alive(self) -> bool:
        alive = self._dul.is_alive
        return bool(alive() if callable(alive) else alive)

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        from dicomnet.ul.codec import decode_pdu
        from dicomnet.ul.pdu import PDataTF
        from dicomnet.ul.primitives import P_DATA

        pdu = decode_pdu(b"".join(bytes(c) for c in chunks))
        assert isinstance(pdu, PDataTF)
        self._dul.send_pdu(P_DATA.from_pdu(pdu))

    def send_pdata_many(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        for chunks in pdus:
            self.send_pdata_chunks(chunks)

    def wait_for_activity(self, deadline: float | None) -> bool:
        if not self.is_alive:
            return False
        if deadline is None:  # pragma: no cover - pynetdicom's tests set a timeout
            raise ShimError("a dummy DUL with no DIMSE timeout would wait forever")
        remaining = deadline - self._clock()
        if remaining > 0:
            time.sleep(remaining)
        return False


class PynetdicomAssociationAdapter:
    """dicomnet's ``AssociationLike`` over a pynetdicom-style association (pynetdicom's
    ``Association`` or its tests' ``DummyAssociation``).

    * ``dul``: :class:`PynetdicomDULAdapter` over ``assoc.dul``.
    * ``dimse_timeout``: ``assoc.dimse_timeout``, as is.
    * ``peer_max_pdata_length``: pynetdicom's own rule for the provider's
      ``maximum_pdu_size``: the acceptor's ``maximum_length`` when ``assoc.is_requestor``,
      else the requestor's.
    * ``accepted_context_ids``: pynetdicom's provider never checks the context ID of a
      received PDV; dicomnet's does. The IDs of ``assoc.accepted_contexts`` when the object
      has them, else (the dummy association negotiated nothing) every valid ID.
    * ``clock``: :func:`time.monotonic`.
    * Other attributes are the wrapped association's (``dimse.assoc.dul.event_queue`` etc.).
    """

    def __init__(self, assoc: Any) -> None:
        self._assoc = assoc
        self.clock = time.monotonic
        self.dul = PynetdicomDULAdapter(assoc.dul, self.clock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._assoc, name)

    @property
    def dimse_timeout(self) -> float | None:
        return self._assoc.dimse_timeout  # type: ignore[no-any-return]

    @property
    def peer_max_pdata_length(self) -> int:
        peer = self._assoc.acceptor if self._assoc.is_requestor else self._assoc.requestor
        return int(peer.maximum_length)

    @property
    def accepted_context_ids(self) -> frozenset[int]:
        contexts = getattr(self._assoc, "accepted_contexts", None)
        if contexts is None:
            return ALL_CONTEXT_IDS
        return frozenset(cx.context_id for cx in contexts)


def DIMSEServiceProvider(assoc: Any) -> Any:
    """dicomnet's provider for ``assoc``, as pynetdicom's ``DIMSEServiceProvider(assoc)``.

    The constructor difference (dicomnet's takes an ``AssociationLike``) is bridged by
    :class:`PynetdicomAssociationAdapter`; ``msg_queue`` is a
    :class:`dicomnet.message_queue.MessageQueue` (a ``queue.Queue``), as a dicomnet
    association gives it. An object that already is an ``AssociationLike`` is used as is.
    """
    from dicomnet.dimse import DIMSEServiceProvider as Provider
    from dicomnet.message_queue import MessageQueue

    if not hasattr(assoc, "peer_max_pdata_length"):
        assoc = PynetdicomAssociationAdapter(assoc)
    return Provider(assoc, msg_queue=MessageQueue)


class P_DATA_TF:
    """pynetdicom's ``pdu.P_DATA_TF`` as far as its tests use it: ``decode(bytes)`` then
    ``to_primitive()`` -> dicomnet's ``P_DATA``. Decoding is dicomnet's codec
    (:func:`dicomnet.ul.codec.decode_pdu`); dicomnet has no ``dicomnet.pdu`` module."""

    def __init__(self) -> None:
        self._pdu: Any = None

    def decode(self, data: bytes) -> None:
        from dicomnet.ul.codec import decode_pdu
        from dicomnet.ul.pdu import PDataTF

        pdu = decode_pdu(data)
        if not isinstance(pdu, PDataTF):
            raise ValueError(f"not a P-DATA-TF: {type(pdu).__name__}")
        self._pdu = pdu

    def to_primitive(self) -> Any:
        from dicomnet.ul.primitives import P_DATA

        return P_DATA.from_pdu(self._pdu)
