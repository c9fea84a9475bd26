"""The Application Entity: the entry point of the application API.

Theory of operation
-------------------
An :class:`AE` is a named DICOM application (PS3.7 section 7.1.1.5): its configuration is a
:class:`~dicomnet.settings.Settings` (AE title, requested and supported presentation contexts,
limits, timeouts), and it adds the three things an application does with it:

* :meth:`AE.associate` requests an association and returns a blocking
  :class:`~dicomnet.association.Association`, driven in the calling thread
  (:func:`dicomnet.client.request_association`);
* :meth:`AE.associate_async` does the same for asyncio code and returns an
  :class:`~dicomnet.aio_association.AsyncAssociation` driven by the running event loop
  (:func:`dicomnet.client.request_association_async`);
* :meth:`AE.start_server` accepts associations (:mod:`dicomnet.server`).

The AE holds no sockets and no threads itself; everything below it is typed against
``Settings``, so the layers under the AE never import it.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, overload

from dicomnet import client
from dicomnet.association import Association
from dicomnet.events import HandlerSpec
from dicomnet.presentation import PresentationContext
from dicomnet.settings import (
    DEFAULT_MAXIMUM_PDU_SIZE,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    Settings,
    validate_ae_title,
)
from dicomnet.transport.sync import SyncDriver
from dicomnet.uid import UIDValue
from dicomnet.ul.pdu import UserIdentityRQ

if TYPE_CHECKING:
    import ssl

    from dicomnet.aio_association import AsyncAssociation
    from dicomnet.server import ListeningSocket, Server

__all__ = [
    "AE",
    "DEFAULT_MAXIMUM_PDU_SIZE",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "ApplicationEntity",
    "EventHandlers",
]

EventHandlers = HandlerSpec
"""``[(EVT_X, handler), (EVT_Y, handler, [extra args]), ...]`` or ``{EVT_X: handler}``."""


class AE(Settings):
    """A DICOM Application Entity (see the module docstring)."""

    def __init__(self, ae_title: str | bytes = "DICOMNET") -> None:
        self._clients: weakref.WeakSet[Association] = weakref.WeakSet()
        self._servers: list[Server] = []
        super().__init__(ae_title)

    def copy(self) -> Settings:
        """A copy of this AE's settings (contexts copied; no servers, no associations)."""
        import copy  # lazy: only servers with their own title/contexts copy settings

        other = Settings(self.ae_title)
        for name, value in vars(self).items():
            if name not in ("_clients", "_servers"):
                setattr(other, name, copy.copy(value))
        return other

    def associate(
        self,
        addr: str | tuple[str, int, int],
        port: int,
        contexts: Sequence[PresentationContext] | None = None,
        ae_title: str | bytes = "ANY-SCP",
        max_pdu: int | None = None,
        ext_neg: Sequence[object] | None = None,
        bind_address: tuple[str, int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        evt_handlers: HandlerSpec | None = None,
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
        if tls_args is not None:
            ssl_context, server_hostname = tls_args[0], tls_args[1] or server_hostname
        addr = _host(addr)
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"'port' must be int, not {type(port).__name__}")
        if bind_address is not None and not (
            isinstance(bind_address, tuple) and len(bind_address) == 2
            and isinstance(bind_address[0], str) and isinstance(bind_address[1], int)
        ):  # fmt: skip
            raise TypeError(f"'bind_address' must be tuple[str, int] or None, not {bind_address!r}")
        assoc = client.request_association(
            self,
            client.AssociationRequest(
                addr, port, contexts, validate_ae_title(ae_title),
                self.maximum_pdu_size if max_pdu is None else int(max_pdu), ext_neg,
                evt_handlers, user_identity, max_operations_invoked, max_operations_performed,
            ),
            bind_address=bind_address,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
        )  # fmt: skip
        if assoc.is_established:
            self._clients.add(assoc)
        return assoc

    async def associate_async(
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
        evt_handlers: HandlerSpec | None = None,
        user_identity: UserIdentityRQ | None = None,
        max_operations_invoked: int | None = None,
        max_operations_performed: int | None = None,
    ) -> AsyncAssociation:
        """:meth:`associate` for asyncio code (same arguments): returns an
        :class:`~dicomnet.aio_association.AsyncAssociation` driven by the running event loop
        (no thread per association); its operations are awaitables and async iterators."""
        return await client.request_association_async(
            self,
            client.AssociationRequest(
                addr, port, contexts, validate_ae_title(ae_title),
                self.maximum_pdu_size if max_pdu is None else int(max_pdu), ext_neg,
                evt_handlers, user_identity, max_operations_invoked, max_operations_performed,
            ),
            bind_address=bind_address,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
        )  # fmt: skip

    @overload
    def start_server(
        self,
        address: tuple[str, int],
        block: Literal[True] = True,
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: HandlerSpec | None = None,
        ae_title: str | bytes | None = None,
        contexts: Sequence[PresentationContext] | None = None,
        *,
        handlers: HandlerSpec | None = None,
        max_workers: int | None = None,
        ssl_handshake_timeout: float | None = None,
        sock: ListeningSocket | None = None,
    ) -> None: ...

    @overload
    def start_server(
        self,
        address: tuple[str, int],
        block: Literal[False],
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: HandlerSpec | None = None,
        ae_title: str | bytes | None = None,
        contexts: Sequence[PresentationContext] | None = None,
        *,
        handlers: HandlerSpec | None = None,
        max_workers: int | None = None,
        ssl_handshake_timeout: float | None = None,
        sock: ListeningSocket | None = None,
    ) -> Server: ...

    @overload
    def start_server(
        self,
        address: tuple[str, int],
        block: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: HandlerSpec | None = None,
        ae_title: str | bytes | None = None,
        contexts: Sequence[PresentationContext] | None = None,
        *,
        handlers: HandlerSpec | None = None,
        max_workers: int | None = None,
        ssl_handshake_timeout: float | None = None,
        sock: ListeningSocket | None = None,
    ) -> Server | None: ...

    def start_server(
        self,
        address: tuple[str, int],
        block: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: HandlerSpec | None = None,
        ae_title: str | bytes | None = None,
        contexts: Sequence[PresentationContext] | None = None,
        *,
        handlers: HandlerSpec | None = None,
        max_workers: int | None = None,
        ssl_handshake_timeout: float | None = None,
        sock: ListeningSocket | None = None,
    ) -> Server | None:
        """Serve associations on ``address`` (see :func:`dicomnet.server.start_server`).

        Returns the ``Server`` when ``block`` is False; otherwise serves until shut down.
        ``handlers=`` is accepted as an alias of ``evt_handlers``. ``ae_title`` and
        ``contexts`` (supported presentation contexts) override the AE's for this server only.
        """
        # lazy: the server (asyncio, the handler pool, every service) is start-up cost a
        # client never needs
        from dicomnet import _config, server

        if (not contexts and not self.supported_contexts and not self.promiscuous_syntaxes
                and not _config.UNRESTRICTED_STORAGE_SERVICE):  # fmt: skip
            raise ValueError("No supported Presentation Contexts have been defined")
        settings: Settings = self
        if ae_title is not None or contexts is not None:
            settings = self.copy()
            if ae_title is not None:
                settings.ae_title = ae_title
            if contexts is not None:
                settings.set_supported_contexts(contexts)
        if not block:
            running = server.start_server(
                settings, address, block=False,
                handlers=evt_handlers if handlers is None else handlers, ssl_context=ssl_context,
                max_workers=max_workers, ssl_handshake_timeout=ssl_handshake_timeout, sock=sock,
            )  # fmt: skip
            self._servers.append(running)
            return running
        blocking: list[Server] = []  # known to the AE while it serves (shutdown, associations)

        def listening(running: Server) -> None:
            blocking.append(running)
            self._servers.append(running)

        try:
            return server.start_server(
                settings, address, block=True,
                handlers=evt_handlers if handlers is None else handlers, ssl_context=ssl_context,
                max_workers=max_workers, ssl_handshake_timeout=ssl_handshake_timeout, sock=sock,
                on_listening=listening,
            )  # fmt: skip
        finally:
            for running in blocking:
                with contextlib.suppress(ValueError):
                    self._servers.remove(running)

    def make_server(
        self,
        address: tuple[str, int],
        ae_title: str | bytes | None = None,
        contexts: Sequence[PresentationContext] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        evt_handlers: HandlerSpec | None = None,
    ) -> Server:
        """A server on ``address``, already serving in its own thread (as
        ``start_server(..., block=False)``)."""
        return self.start_server(address, False, ssl_context, evt_handlers, ae_title, contexts)

    def __str__(self) -> str:
        """A summary as ``print(ae)`` shows it (pynetdicom programs print their AE so): the
        contexts with their transfer syntaxes, timeouts, AE title checks, associations."""

        def contexts(title: str, cxs: list[PresentationContext]) -> list[str]:
            lines = [f"  {title}:"] + ["    (none)"] * (not cxs)
            for cx in cxs:
                roles = "" if cx.scu_role is None and cx.scp_role is None else (
                    f" (SCU role {cx.scu_role}, SCP role {cx.scp_role})")
                lines.append(f"    {cx!r}{roles}")
                lines.extend(f"      {UIDValue(ts).name}" for ts in cx.transfer_syntaxes)
            return lines

        def secs(value: float | None) -> str:
            return "None" if value is None else f"{value:g} s"

        lines = [f"Application Entity {self.ae_title}", ""]
        lines += contexts("Requested presentation contexts", self.requested_contexts)
        lines += contexts("Supported presentation contexts", self.supported_contexts)
        lines += [
            "",
            f"  ACSE timeout: {secs(self.acse_timeout)}",
            f"  DIMSE timeout: {secs(self.dimse_timeout)}",
            f"  Network timeout: {secs(self.network_timeout)}",
            f"  Connection timeout: {secs(self.connection_timeout)}",
            "",
            f"  Require called AE title: {self.require_called_aet}",
            f"  Require calling AE title: {', '.join(self.require_calling_aet) or '(any)'}",
            "",
            f"  Association(s): {len(self.active_associations)}/{self.maximum_associations}",
        ]
        return "\n".join(lines)

    def timeouts_changed(self) -> None:
        """A new connection, ACSE, DIMSE or network timeout applies to the live associations
        too, as it does in pynetdicom (the next wait uses it)."""
        for assoc in self.active_associations:
            assoc.connection_timeout = self.connection_timeout
            assoc.acse_timeout = self.acse_timeout
            assoc.dimse_timeout = self.dimse_timeout
            assoc.network_timeout = self.network_timeout
            driver = assoc.driver
            if isinstance(driver, SyncDriver):  # a requestor's idle timer reads it
                driver.network_timeout = self.network_timeout

    @property
    def active_associations(self) -> list[Association]:
        """The established associations of this AE: those it requested and those its
        servers accepted."""
        mine = [a for a in list(self._clients) if a.is_established]
        for running in self._servers:
            mine.extend(running.active_associations)
        return mine

    def shutdown(self) -> None:
        """Stop every server this AE started and abort every association it requested."""
        servers, self._servers = self._servers, []
        for running in servers:
            running.shutdown()
        for assoc in list(self._clients):
            if assoc.is_established:
                assoc.abort()


def _host(addr: object) -> str:
    """``addr`` as given to ``associate``: a host name or address, or pynetdicom's IPv6
    ``(host, flowinfo, scope_id)`` tuple (its host is used)."""
    if isinstance(addr, tuple) and len(addr) == 3 and isinstance(addr[0], str) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in addr[1:]
    ):
        return addr[0]
    if not isinstance(addr, str):
        raise TypeError(f"'addr' must be str or tuple[str, int, int], not {type(addr).__name__}")
    return addr


ApplicationEntity = AE
