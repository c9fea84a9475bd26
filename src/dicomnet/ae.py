"""The Application Entity: configuration shared by every association it makes or accepts.

Theory of operation
-------------------
An :class:`AE` is a named DICOM application (its AE title, PS3.7 section 7.1.1.5) plus the
parameters it negotiates with (PS3.7 Annex D.3.3, PS3.8 section 7.1.1):

* *requested* presentation contexts, proposed when we are the association requestor
  (:meth:`AE.associate`); context IDs 1, 3, 5, ... are assigned per association
  (PS3.8 section 9.3.2.2: odd, 1-255, so at most 128 contexts);
* *supported* presentation contexts, used when we accept associations
  (:meth:`AE.start_server`, implemented by :mod:`dicomnet.server`);
* the Maximum Length we can receive (``maximum_pdu_size``, sub-item 51H; 0 = no limit),
  implementation class UID / version name (52H/55H), the asynchronous operations window
  (53H), SCP/SCU role selection (54H, via :func:`~dicomnet.presentation.build_role` or the
  ``scu_role``/``scp_role`` of a context), extended negotiation and user identity (56H-58H);
* the timeouts: ``connection_timeout`` (TCP connect), ``acse_timeout`` (association request and
  release, and the ARTIM timer of PS3.8 section 9.1.5), ``dimse_timeout`` (waiting for a DIMSE
  response) and ``network_timeout`` (no byte received for that long: abort). ``None`` means
  wait forever.

The AE holds no sockets: :meth:`AE.associate` builds an :class:`~dicomnet.association.Association`
driven by the blocking driver of :mod:`dicomnet.transport.sync` in the calling thread.

``maximum_pdu_size`` defaults to 262144 (256 KiB), not the 16384 of DCMTK: larger P-DATA-TF PDUs
mean fewer headers, system calls and Python round trips per megabyte, and each side obeys the
*other* side's value when sending, so a larger receive limit never hurts interoperability.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dicomnet.presentation import (
    PresentationContext,
    build_context,
)
from dicomnet.ul.pdu import UserIdentityRQ

if TYPE_CHECKING:
    import ssl

    from dicomnet.association import Association
    from dicomnet.monitor import AccessPolicy, Monitor
    from dicomnet.services.scu import AsyncAssociation

__all__ = [
    "AE",
    "DEFAULT_MAXIMUM_PDU_SIZE",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "ApplicationEntity",
    "EventHandlers",
]

IMPLEMENTATION_CLASS_UID = "2.25.15337196955644304578274078926992787981"
"""Our Implementation Class UID (PS3.7 D.3.3.2), a UUID-derived UID (PS3.5 Annex B.2)."""

IMPLEMENTATION_VERSION_NAME = "DICOMNET_010"
DEFAULT_MAXIMUM_PDU_SIZE = 262144
MAX_CONTEXTS = 128  # odd IDs 1..255, PS3.8 section 9.3.2.2

EventHandlers = (
    Sequence[tuple[Any, Callable[..., Any]] | tuple[Any, Callable[..., Any], Sequence[Any]]]
    | Mapping[Any, Callable[..., Any]]
)


def _ae_title(title: str | bytes) -> str:
    """Validate an AE title (PS3.5 AE VR: 1-16 chars, no backslash/control chars, not all spaces)."""
    if isinstance(title, bytes):
        title = title.decode("ascii")
    title = str(title).strip()
    if not title or len(title) > 16:
        raise ValueError(f"AE title must have 1-16 significant characters: {title!r}")
    if any(c == "\\" or ord(c) < 0x20 or ord(c) > 0x7E for c in title):
        raise ValueError(f"invalid character in AE title {title!r}")
    return title


def _timeout(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if value < 0:
        raise ValueError(f"{what} must be >= 0 or None")
    return value


class AE:
    """A DICOM Application Entity (see the module docstring)."""

    def __init__(self, ae_title: str | bytes = "DICOMNET") -> None:
        self._ae_title = _ae_title(ae_title)
        self._requested: list[PresentationContext] = []
        self._supported: list[PresentationContext] = []
        self.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        self.implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME
        self._maximum_pdu_size = DEFAULT_MAXIMUM_PDU_SIZE
        self._connection_timeout: float | None = None
        self._acse_timeout: float | None = 30.0
        self._dimse_timeout: float | None = 30.0
        self._network_timeout: float | None = 60.0
        self.require_called_aet = False
        self.require_calling_aet: list[str] = []
        self.maximum_associations = 10
        self.maximum_operations_invoked = 1
        self.maximum_operations_performed = 1
        self.max_message_size: int | None = None  # cap on a received DIMSE message (server)
        # where received data sets above the spool threshold are spooled (None: system temp);
        # a server with a file store points this into it, so a crash leaves nothing elsewhere
        self.spool_dir: str | None = None
        # ``spool_prefix(assoc, context_id, command_bytes) -> bytes``: written at the start of
        # each spool file (a storage SCP gives the Part 10 header of the C-STORE being received,
        # so the finished spool file is renamed into place instead of copied); b"" for none
        self.spool_prefix: Callable[[Any, int, bytes], bytes] | None = None
        # every received C-STORE data set is checked as it arrives (dicomnet.dimse.checker):
        # a malformed one is answered with its failure status before any handler sees it
        self.check_received_datasets = True
        # a server's access rules (dicomnet.monitor.AccessPolicy: who may associate, and do
        # what) and the monitors it tells about associations and operations (audit, metrics)
        self.access: AccessPolicy | None = None
        self.monitors: list[Monitor] = []
        # accept any abstract syntax proposed that we do not list, with these transfer
        # syntaxes (storescp/qrscp --promiscuous: unknown and private storage SOP classes)
        self.promiscuous_syntaxes: list[str] | None = None

    # --- identity -------------------------------------------------------------------------
    @property
    def ae_title(self) -> str:
        return self._ae_title

    @ae_title.setter
    def ae_title(self, value: str | bytes) -> None:
        self._ae_title = _ae_title(value)

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

    @property
    def connection_timeout(self) -> float | None:
        return self._connection_timeout

    @connection_timeout.setter
    def connection_timeout(self, v: float | None) -> None:
        self._connection_timeout = _timeout(v, "connection_timeout")

    @property
    def acse_timeout(self) -> float | None:
        return self._acse_timeout

    @acse_timeout.setter
    def acse_timeout(self, v: float | None) -> None:
        self._acse_timeout = _timeout(v, "acse_timeout")

    @property
    def dimse_timeout(self) -> float | None:
        return self._dimse_timeout

    @dimse_timeout.setter
    def dimse_timeout(self, v: float | None) -> None:
        self._dimse_timeout = _timeout(v, "dimse_timeout")

    @property
    def network_timeout(self) -> float | None:
        return self._network_timeout

    @network_timeout.setter
    def network_timeout(self, v: float | None) -> None:
        self._network_timeout = _timeout(v, "network_timeout")

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
                for ts in [transfer_syntaxes] if isinstance(transfer_syntaxes, str) else transfer_syntaxes:
                    cx.add_transfer_syntax(ts)
        else:
            cx = build_context(abstract_syntax, transfer_syntaxes)
        if scu_role is not None:
            cx.scu_role = scu_role
        if scp_role is not None:
            cx.scp_role = scp_role
        return cx

    def add_requested_context(
        self,
        abstract_syntax: str | PresentationContext,
        transfer_syntaxes: str | Sequence[str] | None = None,
        *,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
    ) -> PresentationContext:
        """Propose ``abstract_syntax`` with ``transfer_syntaxes`` (default: Explicit VR LE,
        Implicit VR LE; with ``scp_role=True``, e.g. the storage contexts of a C-GET, every
        syntax of :data:`~dicomnet.presentation.RECEIVE_TRANSFER_SYNTAXES`). The same abstract
        syntax may be proposed several times (e.g. one context per compressed syntax).
        ``scu_role``/``scp_role`` add a role selection item."""
        if len(self._requested) >= MAX_CONTEXTS:
            raise ValueError("at most 128 presentation contexts can be requested (PS3.8 9.3.2.2)")
        if transfer_syntaxes is None and scp_role and isinstance(abstract_syntax, str):
            from dicomnet.presentation import RECEIVE_TRANSFER_SYNTAXES

            transfer_syntaxes = RECEIVE_TRANSFER_SYNTAXES
        cx = self._make(abstract_syntax, transfer_syntaxes, scu_role, scp_role)
        self._requested.append(cx)
        return cx

    def remove_requested_context(self, abstract_syntax: str) -> None:
        self._requested = [c for c in self._requested if c.abstract_syntax != abstract_syntax]

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
        transfer_syntaxes: str | Sequence[str] | None = None,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
    ) -> PresentationContext:
        """Accept ``abstract_syntax`` with ``transfer_syntaxes`` (in our preference order).

        Adding an already supported abstract syntax merges the transfer syntaxes.
        ``scu_role``/``scp_role``: whether a requestor's role selection proposal is granted.
        """
        new = self._make(abstract_syntax, transfer_syntaxes, scu_role, scp_role)
        for cx in self._supported:
            if cx.abstract_syntax == new.abstract_syntax:
                for ts in new.transfer_syntaxes:
                    cx.add_transfer_syntax(ts)
                if scu_role is not None:
                    cx.scu_role = scu_role
                if scp_role is not None:
                    cx.scp_role = scp_role
                return cx
        self._supported.append(new)
        return new

    def remove_supported_context(self, abstract_syntax: str) -> None:
        self._supported = [c for c in self._supported if c.abstract_syntax != abstract_syntax]

    @property
    def supported_contexts(self) -> list[PresentationContext]:
        return list(self._supported)

    @supported_contexts.setter
    def supported_contexts(self, contexts: Iterable[PresentationContext]) -> None:
        self._supported = []
        for cx in contexts:
            self.add_supported_context(cx)

    def supported_map(self) -> dict[str, list[str]]:
        """Abstract syntax -> transfer syntaxes in our preference order (for negotiation)."""
        return {cx.abstract_syntax: list(cx.transfer_syntaxes) for cx in self._supported}

    # --- associations -----------------------------------------------------------------------
    def associate(
        self,
        addr: str,
        port: int,
        contexts: Sequence[PresentationContext] | None = None,
        ae_title: str | bytes = "ANY-SCP",
        max_pdu: int | None = None,
        ext_neg: Sequence[object] | None = None,
        bind_address: tuple[str, int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        evt_handlers: EventHandlers | None = None,
        user_identity: UserIdentityRQ | None = None,
        max_operations_invoked: int | None = None,
        max_operations_performed: int | None = None,
        tls_args: tuple[ssl.SSLContext, str | None] | None = None,
    ) -> Association:
        """Request an association with ``addr:port`` (called AE title ``ae_title``).

        Always returns an :class:`~dicomnet.association.Association`; check
        ``assoc.is_established``. When the peer rejected us, ``assoc.is_rejected`` is True and
        ``assoc.result``/``result_source``/``result_reason`` hold the A-ASSOCIATE-RJ values
        (``assoc.rejection_text`` the meaning). When no association could be made at all
        (refused, unreachable, TLS handshake failure, timeout, abort) ``assoc.failure_reason``
        says why and ``assoc.error`` holds the exception.

        ``contexts`` overrides :attr:`requested_contexts`; ``max_pdu`` overrides
        :attr:`maximum_pdu_size`; ``ext_neg`` is a list of sub-items (role selection from
        :func:`~dicomnet.presentation.build_role`, SOP class (common) extended negotiation,
        user identity, asynchronous operations window); ``evt_handlers`` as for
        :meth:`Association.bind` (e.g. ``[(EVT_C_STORE, handler)]`` for C-GET).
        ``tls_args=(ssl_context, server_hostname)`` is the pynetdicom spelling of
        ``ssl_context``/``server_hostname``.
        """
        from dicomnet.services.scu import request_association

        if tls_args is not None:
            ssl_context, server_hostname = tls_args[0], tls_args[1] or server_hostname

        return request_association(
            self,
            addr,
            port,
            contexts=contexts,
            called_ae_title=_ae_title(ae_title),
            max_pdu=self._maximum_pdu_size if max_pdu is None else int(max_pdu),
            ext_neg=ext_neg,
            bind_address=bind_address,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
            evt_handlers=evt_handlers,
            user_identity=user_identity,
            max_operations_invoked=max_operations_invoked,
            max_operations_performed=max_operations_performed,
        )

    async def associate_async(
        self,
        addr: str,
        port: int,
        contexts: Sequence[PresentationContext] | None = None,
        ae_title: str | bytes = "ANY-SCP",
        **kwargs: Any,
    ) -> AsyncAssociation:
        """:meth:`associate` for asyncio code (same arguments): returns a
        :class:`~dicomnet.services.scu.AsyncAssociation` driven by the running event loop
        (no thread per association); its operations are awaitables and async iterators."""
        from dicomnet.services.scu import AsyncAssociation

        return await AsyncAssociation.connect(self, addr, port, contexts, ae_title, **kwargs)

    def start_server(
        self,
        address: tuple[str, int],
        block: bool = True,
        evt_handlers: EventHandlers | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **kwargs: Any,
    ) -> Any:
        """Serve associations on ``address`` (see :func:`dicomnet.server.start_server`).

        Returns the ``Server`` when ``block`` is False; otherwise serves until shut down.
        ``handlers=`` is accepted as an alias of ``evt_handlers``.
        """
        from dicomnet import server

        if evt_handlers is None:
            evt_handlers = kwargs.pop("handlers", None)
        return server.start_server(
            self, address, block=block, handlers=evt_handlers, ssl_context=ssl_context, **kwargs
        )

    def __repr__(self) -> str:
        return (
            f"AE(ae_title={self._ae_title!r}, requested={len(self._requested)}, "
            f"supported={len(self._supported)})"
        )


ApplicationEntity = AE
