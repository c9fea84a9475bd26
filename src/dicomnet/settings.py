"""What an Application Entity negotiates with: titles, contexts, limits, timeouts.

Theory of operation
-------------------
:class:`Settings` is the configuration an AE applies to every association it requests or
accepts, and nothing else: it holds no sockets and starts nothing (:class:`dicomnet.ae.AE` adds
``associate``, ``associate_async`` and ``start_server`` on top of it). Every layer below the AE
reads its configuration from a ``Settings``:

* the AE title (PS3.7 section 7.1.1.5; PS3.5 AE value representation: 1-16 characters, no
  backslash or control characters, not all spaces), validated on assignment;
* *requested* presentation contexts, proposed when we request an association; context IDs 1,
  3, 5, ... are assigned per association (PS3.8 section 9.3.2.2: odd, 1-255, so at most
  :data:`MAX_CONTEXTS`);
* *supported* presentation contexts, used when we accept associations, with the roles a
  requestor's role selection may be granted (PS3.7 D.3.3.4);
* the Maximum Length we can receive (``maximum_pdu_size``, sub-item 51H; 0 = no limit), the
  implementation class UID / version name (52H/55H) and the asynchronous operations window
  (53H, PS3.7 D.3.3.3);
* the timeouts: ``connection_timeout`` (TCP connect), ``acse_timeout`` (association request and
  release, and the ARTIM timer of PS3.8 section 9.1.5), ``dimse_timeout`` (waiting for a DIMSE
  response) and ``network_timeout`` (nothing received for that long: abort); ``None`` means
  wait forever;
* what an acceptor enforces: called/calling AE title checks, the association limit, the
  largest DIMSE message it reassembles, where large received data sets are spooled, the check
  of received C-STORE data sets, an access policy and monitors (:mod:`dicomnet.monitor`), and
  promiscuous acceptance of unknown storage classes.

``maximum_pdu_size`` defaults to 262144 (256 KiB), not the 16384 of DCMTK: larger P-DATA-TF PDUs
mean fewer headers, system calls and Python round trips per megabyte, and each side obeys the
*other* side's value when sending, so a larger receive limit never hurts interoperability.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from dicomnet.presentation import (
    PREFERRED_TRANSFER_SYNTAXES,
    RECEIVE_TRANSFER_SYNTAXES,
    PresentationContext,
    build_context,
    check_uid,
)
from dicomnet.uid import UIDValue

if TYPE_CHECKING:
    from dicomnet.monitor import AccessPolicy, Monitor

__all__ = [
    "DEFAULT_MAXIMUM_PDU_SIZE",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "MAX_CONTEXTS",
    "Settings",
    "SpoolPrefix",
    "validate_ae_title",
]

IMPLEMENTATION_CLASS_UID = "2.25.15337196955644304578274078926992787981"
"""Our Implementation Class UID (PS3.7 D.3.3.2), a UUID-derived UID (PS3.5 Annex B.2)."""

IMPLEMENTATION_VERSION_NAME = "DICOMNET_010"
DEFAULT_MAXIMUM_PDU_SIZE = 262144
MAX_CONTEXTS = 128
"""Presentation contexts one association can carry: odd IDs 1..255 (PS3.8 section 9.3.2.2)."""


class ContextView(Protocol):
    """What a spool prefix reads of an association (its accepted contexts, the requestor)."""

    def transfer_syntax_of(self, context_id: int) -> str | None: ...

    @property
    def calling_ae_title(self) -> str: ...


SpoolPrefix = Callable[[ContextView, int, bytes], bytes]
"""``prefix(assoc, context_id, command_bytes) -> bytes``: written at the start of a spool file
(a storage SCP gives the Part 10 header of the C-STORE being received, so the finished spool
file is renamed into place instead of copied); b"" for none."""


def _abstract_syntax(cx: PresentationContext) -> str:
    return cx.abstract_syntax


def validate_ae_title(title: str | bytes) -> str:
    """``title`` without padding, or ValueError (PS3.5 AE VR: 1-16 significant characters, no
    backslash or control characters)."""
    return _short_text(title, "AE title")


def _short_text(value: str | bytes, what: str) -> str:
    """``value`` without its padding spaces: 1-16 characters of the default repertoire, no
    backslash (an AE title, PS3.5 6.2; an Implementation Version Name, PS3.7 D.3.3.2)."""
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    value = value.strip(" ")  # padding; other whitespace (tab, newline) is refused below
    if not value or len(value) > 16:
        raise ValueError(f"{what} must have 1-16 significant characters: {value!r}")
    if any(c == "\\" or ord(c) < 0x20 or ord(c) > 0x7E for c in value):
        raise ValueError(f"invalid character in {what} {value!r}")
    return value


def _timeout(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if value < 0:
        raise ValueError(f"{what} must be >= 0 or None")
    return value


def _without(
    contexts: list[PresentationContext],
    abstract_syntax: str,
    transfer_syntax: str | Sequence[str] | None,
) -> list[PresentationContext]:
    abstract = str(abstract_syntax)
    if transfer_syntax is None:
        return [c for c in contexts if c.abstract_syntax != abstract]
    drop = {transfer_syntax} if isinstance(transfer_syntax, str) else set(transfer_syntax)
    kept = []
    for cx in contexts:
        if cx.abstract_syntax == abstract:
            remaining = [ts for ts in cx.transfer_syntaxes if ts not in drop]
            if not remaining:
                continue
            cx.transfer_syntaxes = remaining
        kept.append(cx)
    return kept


class Settings:
    """An AE's configuration (see the module docstring)."""

    def __init__(self, ae_title: str | bytes = "DICOMNET") -> None:
        self._ae_title = validate_ae_title(ae_title)
        self._requested: list[PresentationContext] = []
        self._supported: list[PresentationContext] = []
        self._implementation_class_uid: str = UIDValue(IMPLEMENTATION_CLASS_UID)
        self._implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME
        self._maximum_pdu_size = DEFAULT_MAXIMUM_PDU_SIZE
        self._connection_timeout: float | None = None
        self._acse_timeout: float | None = 30.0
        self._dimse_timeout: float | None = 30.0
        self._network_timeout: float | None = 60.0
        self.require_called_aet = False
        self._require_calling_aet: list[str] = []
        self._maximum_associations = 10
        self.maximum_operations_invoked = 1
        self.maximum_operations_performed = 1
        self.max_message_size: int | None = None
        """Cap on a received DIMSE message (None: the provider's default)."""
        self.spool_dir: str | None = None
        """Where received data sets above the spool threshold are spooled (None: the system's
        temporary directory); a server with a file store points this into it, so a crash
        leaves nothing elsewhere."""
        self.spool_prefix: SpoolPrefix | None = None
        self.check_received_datasets = True
        """Every received C-STORE data set is checked as it arrives
        (:mod:`dicomnet.dimse.checker`): a malformed one is answered with its failure status
        before any handler sees it."""
        self.access: AccessPolicy | None = None
        """A server's access rules: who may associate, and do what."""
        self.monitors: list[Monitor] = []
        """Told about associations and operations (audit trail, metrics)."""
        self.promiscuous_syntaxes: list[str] | None = None
        """Accept any abstract syntax proposed that we do not list, with these transfer
        syntaxes (storescp/qrscp --promiscuous: unknown and private storage SOP classes)."""

    # --- identity -------------------------------------------------------------------------
    @property
    def ae_title(self) -> str:
        return self._ae_title

    @ae_title.setter
    def ae_title(self, value: str | bytes) -> None:
        self._ae_title = validate_ae_title(value)

    # Checked when set, as pynetdicom checks them: a bad value fails here, not on the wire.
    @property
    def implementation_class_uid(self) -> str:
        """Sent in every association request and answer (PS3.7 D.3.3.2)."""
        return self._implementation_class_uid

    @implementation_class_uid.setter
    def implementation_class_uid(self, value: str | bytes) -> None:
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if not isinstance(value, str):
            raise TypeError(f"implementation_class_uid must be str, not {type(value).__name__}")
        # a UIDValue answers .name, as pydicom's UID does
        uid = check_uid(value.strip("\0 "), "implementation class")
        self._implementation_class_uid = UIDValue(uid)

    @property
    def implementation_version_name(self) -> str | None:
        """Sent when not None (PS3.7 D.3.3.2: 1-16 characters)."""
        return self._implementation_version_name

    @implementation_version_name.setter
    def implementation_version_name(self, value: str | bytes | None) -> None:
        if value is not None:
            value = _short_text(value, "implementation_version_name")
        self._implementation_version_name = value

    @property
    def require_calling_aet(self) -> list[str]:
        """Accept associations only from these calling AE titles (empty: from any)."""
        return self._require_calling_aet

    @require_calling_aet.setter
    def require_calling_aet(self, titles: Iterable[str | bytes]) -> None:
        self._require_calling_aet = [validate_ae_title(t) for t in titles]

    @property
    def maximum_associations(self) -> int:
        """How many associations a server carries at once (further ones are rejected)."""
        return self._maximum_associations

    @maximum_associations.setter
    def maximum_associations(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"maximum_associations must be int, not {type(value).__name__}")
        self._maximum_associations = max(1, value)

    # --- limits and timeouts --------------------------------------------------------------
    @property
    def maximum_pdu_size(self) -> int:
        """Largest P-DATA-TF variable field we accept (sub-item 51H; 0 = unlimited)."""
        return self._maximum_pdu_size

    @maximum_pdu_size.setter
    def maximum_pdu_size(self, value: int) -> None:
        value = int(value)
        if value != 0 and not 8 <= value <= 0xFFFFFFFF:
            raise ValueError("maximum_pdu_size must be 0 (unlimited) or 8..2**32-1")
        self._maximum_pdu_size = value

    def timeouts_changed(self) -> None:
        """Called after ``connection_timeout``, ``acse_timeout``, ``dimse_timeout`` or
        ``network_timeout`` was set (the AE passes them on to its live associations)."""

    @property
    def connection_timeout(self) -> float | None:
        return self._connection_timeout

    @connection_timeout.setter
    def connection_timeout(self, v: float | None) -> None:
        self._connection_timeout = _timeout(v, "connection_timeout")
        self.timeouts_changed()

    @property
    def acse_timeout(self) -> float | None:
        return self._acse_timeout

    @acse_timeout.setter
    def acse_timeout(self, v: float | None) -> None:
        self._acse_timeout = _timeout(v, "acse_timeout")
        self.timeouts_changed()

    @property
    def dimse_timeout(self) -> float | None:
        return self._dimse_timeout

    @dimse_timeout.setter
    def dimse_timeout(self, v: float | None) -> None:
        self._dimse_timeout = _timeout(v, "dimse_timeout")
        self.timeouts_changed()

    @property
    def network_timeout(self) -> float | None:
        return self._network_timeout

    @network_timeout.setter
    def network_timeout(self, v: float | None) -> None:
        self._network_timeout = _timeout(v, "network_timeout")
        self.timeouts_changed()

    # --- presentation contexts --------------------------------------------------------------
    @staticmethod
    def _make(
        abstract_syntax: str | PresentationContext,
        transfer_syntaxes: str | Sequence[str] | None,
        scu_role: bool | None,
        scp_role: bool | None,
    ) -> PresentationContext:
        if isinstance(abstract_syntax, PresentationContext):
            cx = PresentationContext(
                abstract_syntax.abstract_syntax,
                list(abstract_syntax.transfer_syntaxes),
                scu_role=abstract_syntax.scu_role,
                scp_role=abstract_syntax.scp_role,
            )
            if transfer_syntaxes is not None:
                for ts in (
                    [transfer_syntaxes] if isinstance(transfer_syntaxes, str) else transfer_syntaxes
                ):
                    cx.add_transfer_syntax(ts)
        else:
            cx = build_context(
                abstract_syntax,
                PREFERRED_TRANSFER_SYNTAXES if transfer_syntaxes is None else transfer_syntaxes,
            )
        if scu_role is not None:
            cx.scu_role = scu_role
        if scp_role is not None:
            cx.scp_role = scp_role
        return cx

    def add_requested_context(
        self,
        abstract_syntax: str | PresentationContext,
        transfer_syntax: str | Sequence[str] | None = None,
        *,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
    ) -> PresentationContext:
        """Propose ``abstract_syntax`` with ``transfer_syntax`` (one UID or a list; default: Explicit VR LE,
        Implicit VR LE; with ``scp_role=True``, e.g. the storage contexts of a C-GET, every
        syntax of :data:`~dicomnet.presentation.RECEIVE_TRANSFER_SYNTAXES`). The same abstract
        syntax may be proposed several times (e.g. one context per compressed syntax).
        ``scu_role``/``scp_role`` add a role selection item."""
        if len(self._requested) >= MAX_CONTEXTS:
            raise ValueError(
                f"at most {MAX_CONTEXTS} presentation contexts can be requested (PS3.8 9.3.2.2)"
            )
        if transfer_syntax is None and scp_role and isinstance(abstract_syntax, str):
            transfer_syntax = RECEIVE_TRANSFER_SYNTAXES
        cx = self._make(abstract_syntax, transfer_syntax, scu_role, scp_role)
        self._requested.append(cx)
        return cx

    def remove_requested_context(
        self, abstract_syntax: str, transfer_syntax: str | Sequence[str] | None = None
    ) -> None:
        """Stop proposing ``abstract_syntax``; with ``transfer_syntax``, only those transfer
        syntaxes (a context left with none is removed)."""
        self._requested = _without(self._requested, abstract_syntax, transfer_syntax)

    @property
    def requested_contexts(self) -> list[PresentationContext]:
        return list(self._requested)

    @requested_contexts.setter
    def requested_contexts(self, contexts: Iterable[PresentationContext]) -> None:
        self._requested = []
        for cx in contexts:
            self.add_requested_context(cx)

    def add_supported_context(
        self,
        abstract_syntax: str | PresentationContext,
        transfer_syntax: str | Sequence[str] | None = None,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
    ) -> PresentationContext:
        """Accept ``abstract_syntax`` with ``transfer_syntax`` (one UID or a list, in our
        preference order).

        Adding an already supported abstract syntax merges the transfer syntaxes.
        ``scu_role``/``scp_role``: whether a requestor's role selection proposal is granted.
        """
        new = self._make(abstract_syntax, transfer_syntax, scu_role, scp_role)
        for cx in self._supported:
            if cx.abstract_syntax == new.abstract_syntax:
                for ts in new.transfer_syntaxes:
                    cx.add_transfer_syntax(ts)
                if scu_role is not None:
                    cx.scu_role = scu_role
                if scp_role is not None:
                    cx.scp_role = scp_role
                return cx
        # kept sorted by abstract syntax UID, the order ``supported_contexts`` lists them in
        bisect.insort(self._supported, new, key=_abstract_syntax)
        return new

    def remove_supported_context(
        self, abstract_syntax: str, transfer_syntax: str | Sequence[str] | None = None
    ) -> None:
        """Stop accepting ``abstract_syntax``; with ``transfer_syntax``, only those transfer
        syntaxes (a context left with none is removed)."""
        self._supported = _without(self._supported, abstract_syntax, transfer_syntax)

    @property
    def supported_contexts(self) -> list[PresentationContext]:
        return list(self._supported)

    @supported_contexts.setter
    def supported_contexts(self, contexts: Iterable[PresentationContext]) -> None:
        # pynetdicom's meaning: the contexts are *added* (syntaxes of an abstract syntax
        # already supported are merged); only an empty list clears them
        contexts = list(contexts)
        if not contexts:
            self._supported = []
        for cx in contexts:
            self.add_supported_context(cx)

    def set_supported_contexts(self, contexts: Iterable[PresentationContext]) -> None:
        """Support exactly ``contexts`` (the ones supported before are dropped)."""
        self._supported = []
        self.supported_contexts = contexts

    def supported_map(self) -> dict[str, list[str]]:
        """Abstract syntax -> transfer syntaxes in our preference order (for negotiation)."""
        return {cx.abstract_syntax: list(cx.transfer_syntaxes) for cx in self._supported}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(ae_title={self._ae_title!r}, "
            f"requested={len(self._requested)}, supported={len(self._supported)})"
        )
