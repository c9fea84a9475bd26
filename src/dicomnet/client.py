"""Requesting associations, blocking and asyncio.

Theory of operation
-------------------
:func:`build_rq` makes the A-ASSOCIATE-RQ from the settings and the caller's arguments (PS3.8
section 9.3.2; presentation context IDs 1, 3, 5, ..., PS3.8 9.3.2.2; user information
sub-items of PS3.7 Annex D.3.3 in the order 51H, 52H, 55H, 53H, 54H, 56H, 57H, 58H).
:func:`prepare` builds the association object and its sans-IO
:class:`~dicomnet.ul.connection.ULConnection` with the request issued (PS3.8 Evt1, Sta4), so
what is left is to connect the transport:

* :func:`request_association` connects with :func:`dicomnet.transport.sync.open_socket` and
  drives the blocking :class:`~dicomnet.transport.sync.SyncDriver` in the calling thread until
  the A-ASSOCIATE-AC/RJ arrives or ``acse_timeout`` passes; it returns an
  :class:`~dicomnet.association.Association`;
* :func:`request_association_async` connects on the running event loop
  (:func:`dicomnet.transport.connect.open_connection`) and returns an
  :class:`~dicomnet.aio_association.AsyncAssociation` driven by an
  :class:`~dicomnet.transport.aio.AsyncDriver`.

Either way an association object always comes back; a failure -- refused, unreachable, TLS
handshake failure, rejection, timeout, abort -- is described by its flags,
``failure_reason`` and ``error``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from dicomnet.assocbase import AssociationBase
from dicomnet.association import Association
from dicomnet.errors import NoRequestedContextsError
from dicomnet.events import (
    EVT_CONN_CLOSE,
    EVT_CONN_OPEN,
    EVT_REQUESTED,
    HandlerSpec,
    normalize_handlers,
)
from dicomnet.presentation import PresentationContext
from dicomnet.protocol_events import ProtocolObserver, wants_protocol_events
from dicomnet.settings import MAX_CONTEXTS, Settings
from dicomnet.transport.base import TransportError
from dicomnet.transport.sync import SyncDriver, open_socket
from dicomnet.ul.connection import ULConnection
from dicomnet.ul.pdu import (
    AAssociateRQ,
    AsyncOpsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    SubItem,
    UserIdentityRQ,
    UserInformation,
    uid_norm,
)

if TYPE_CHECKING:
    import ssl

    from dicomnet.aio_association import AsyncAssociation

__all__ = [
    "AssociationRequest",
    "build_rq",
    "prepare",
    "request_association",
    "request_association_async",
]

LOGGER = logging.getLogger("dicomnet.scu")

A = TypeVar("A", bound=AssociationBase)


class AssociationRequest:
    """What one association request asks for (the arguments of ``AE.associate``)."""

    __slots__ = (
        "addr",
        "called_ae_title",
        "contexts",
        "evt_handlers",
        "ext_neg",
        "max_operations_invoked",
        "max_operations_performed",
        "max_pdu",
        "port",
        "user_identity",
    )

    def __init__(
        self,
        addr: str,
        port: int,
        contexts: Sequence[PresentationContext] | None,
        called_ae_title: str,
        max_pdu: int,
        ext_neg: Sequence[object] | None = None,
        evt_handlers: HandlerSpec | None = None,
        user_identity: UserIdentityRQ | None = None,
        max_operations_invoked: int | None = None,
        max_operations_performed: int | None = None,
    ) -> None:
        self.addr = addr
        self.port = int(port)
        self.contexts = contexts
        self.called_ae_title = called_ae_title
        self.max_pdu = max_pdu
        self.ext_neg = ext_neg
        self.evt_handlers = evt_handlers
        self.user_identity = user_identity
        self.max_operations_invoked = max_operations_invoked
        self.max_operations_performed = max_operations_performed


def build_rq(
    settings: Settings,
    contexts: Sequence[PresentationContext],
    called_ae_title: str,
    max_pdu: int,
    ext_neg: Sequence[object] | None = None,
    user_identity: UserIdentityRQ | None = None,
    max_operations_invoked: int | None = None,
    max_operations_performed: int | None = None,
) -> tuple[AAssociateRQ, list[PresentationContext]]:
    """The A-ASSOCIATE-RQ for ``contexts`` (IDs 1, 3, 5, ... assigned to copies)."""
    if not contexts:
        raise NoRequestedContextsError(
            "no presentation contexts to request: use ae.add_requested_context()"
        )
    if len(contexts) > MAX_CONTEXTS:
        raise ValueError(
            f"at most {MAX_CONTEXTS} presentation contexts can be requested (PS3.8 9.3.2.2)"
        )
    requested: list[PresentationContext] = []
    roles: dict[str, RoleSelection] = {}
    for i, cx in enumerate(contexts):
        copy = PresentationContext(
            cx.abstract_syntax,
            list(cx.transfer_syntaxes),
            context_id=2 * i + 1,
            scu_role=cx.scu_role,
            scp_role=cx.scp_role,
        )
        requested.append(copy)
        if (cx.scu_role is not None or cx.scp_role is not None) and cx.abstract_syntax not in roles:
            # an unset half of the pair keeps its default (requestor = SCU, PS3.7 D.3.3.4)
            scu = True if cx.scu_role is None else cx.scu_role
            scp = False if cx.scp_role is None else cx.scp_role
            roles[cx.abstract_syntax] = RoleSelection(cx.abstract_syntax, int(scu), int(scp))
    extended: list[SubItem] = []
    if ext_neg:
        # lazy: the attribute-style item classes only matter when items are given
        from dicomnet.ul.primitives import NegotiationItem
    for given in ext_neg or ():
        # pynetdicom-style items (attributes set one by one) become their checked PDU records
        item = given.to_item() if isinstance(given, NegotiationItem) else given
        if isinstance(item, RoleSelection):
            roles[uid_norm(item.sop_class_uid)] = item
        elif isinstance(item, UserIdentityRQ):
            user_identity = item
        elif isinstance(item, AsyncOpsWindow):
            max_operations_invoked = item.max_operations_invoked
            max_operations_performed = item.max_operations_performed
        elif isinstance(item, SOPClassExtendedNegotiation | SOPClassCommonExtendedNegotiation):
            extended.append(item)
        else:
            raise TypeError(f"unsupported extended negotiation item {item!r}")
    invoked = (
        settings.maximum_operations_invoked
        if max_operations_invoked is None
        else max_operations_invoked
    )
    performed = (
        settings.maximum_operations_performed
        if max_operations_performed is None
        else max_operations_performed
    )
    items: list[SubItem] = [
        MaximumLength(max_pdu),
        ImplementationClassUID(settings.implementation_class_uid),
    ]
    if settings.implementation_version_name:
        items.append(ImplementationVersionName(settings.implementation_version_name))
    if (invoked, performed) != (1, 1):  # absent means 1/1 (PS3.7 D.3.3.3): only sent when not
        items.append(AsyncOpsWindow(int(invoked), int(performed)))
    items.extend(roles.values())
    items.extend(x for x in extended if isinstance(x, SOPClassExtendedNegotiation))
    items.extend(x for x in extended if isinstance(x, SOPClassCommonExtendedNegotiation))
    if user_identity is not None:
        items.append(user_identity)
    rq = AAssociateRQ(
        called_ae_title=called_ae_title,
        calling_ae_title=settings.ae_title,
        presentation_contexts=tuple(cx.to_rq() for cx in requested),
        user_information=UserInformation(tuple(items)),
    )
    return rq, requested


def prepare(settings: Settings, assoc: A, request: AssociationRequest) -> ULConnection:
    """Fill ``assoc`` for ``request`` and issue the A-ASSOCIATE-RQ on a new ULConnection
    (PS3.8 Evt1, Sta4): what is left is to connect the transport."""
    assoc.bind_all(normalize_handlers(request.evt_handlers).items())
    contexts = settings.requested_contexts if request.contexts is None else list(request.contexts)
    rq, requested = build_rq(
        settings, contexts, request.called_ae_title, request.max_pdu, request.ext_neg,
        request.user_identity, request.max_operations_invoked, request.max_operations_performed,
    )  # fmt: skip
    assoc.requestor.ae_title = settings.ae_title
    assoc.requestor.requested_contexts = requested
    assoc.requestor.maximum_length = request.max_pdu
    assoc.acceptor.ae_title = request.called_ae_title
    assoc.acceptor.address, assoc.acceptor.port = request.addr, request.port
    conn = ULConnection(
        "requestor", max_pdata_length=request.max_pdu, artim_timeout=settings.acse_timeout
    )
    if wants_protocol_events(assoc.handlers):  # EVT_PDU_*, EVT_DATA_*, EVT_FSM_TRANSITION...
        conn.observer = ProtocolObserver(assoc.handlers, assoc.notify_details)
    conn.request_association(rq, assoc.clock())
    assoc.association_rq = conn.local_rq
    return conn


def request_association(
    settings: Settings,
    request: AssociationRequest,
    *,
    bind_address: tuple[str, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Association:
    """Request an association, blocking (see :meth:`dicomnet.ae.AE.associate`)."""
    assoc = Association(settings, "requestor")
    conn = prepare(settings, assoc, request)
    try:
        sock = open_socket(
            request.addr,
            request.port,
            timeout=settings.connection_timeout,
            bind_address=bind_address,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
        )
    except TransportError as exc:
        assoc.failure_reason = str(exc)
        assoc.error = exc
        LOGGER.info("association request failed: %s", exc)
        return assoc
    peer = (request.addr, request.port)
    driver = SyncDriver(
        conn, sock, network_timeout=settings.network_timeout, on_event=assoc.handle_event,
        clock=assoc.clock, on_close=lambda: assoc.notify_peer(EVT_CONN_CLOSE, peer),
    )  # fmt: skip
    assoc.driver = driver
    if driver.sockname is not None:
        assoc.requestor.address, assoc.requestor.port = driver.sockname
    assoc.notify_peer(EVT_CONN_OPEN, peer)
    conn.transport_connected(assoc.clock())  # Evt2: the A-ASSOCIATE-RQ goes out (AE-2)
    driver.flush()
    assoc.notify_peer(EVT_REQUESTED, None)
    timeout = settings.acse_timeout
    deadline = None if timeout is None else assoc.clock() + timeout
    while not (assoc.is_established or assoc.is_rejected or driver.is_closed):
        if not driver.wait_for_activity(deadline):
            break
    if assoc.is_established:
        if not assoc.accepted_contexts:
            # Accepted, yet every presentation context rejected: nothing can be sent. Ended
            # with an A-ABORT, as pynetdicom does; the contexts' results stay
            # readable in rejected_contexts.
            assoc.failure_reason = "the peer accepted none of the proposed presentation contexts"
            LOGGER.info("association aborted: %s", assoc.failure_reason)
            assoc.abort()
        return assoc
    if assoc.is_rejected:
        driver.close()
        return assoc
    if not driver.is_closed:
        assoc.failure_reason = f"no answer to the association request within {timeout} s"
        driver.abort()
    else:
        assoc.failure_reason = (
            driver.failure or assoc.failure_reason or "the peer closed the connection"
        ) + _tls_hint(assoc, driver, ssl_context is not None)
    return assoc


def _tls_hint(assoc: Association, driver: SyncDriver, tls: bool) -> str:
    """What a closed connection without an answer suggests about TLS."""
    if not tls and assoc.abort_reason == 1:
        # PS3.8 Table 9-26 reason 1: the answer was no PDU at all, e.g. a TLS alert
        return " (the peer's answer is not DICOM: a TLS port?)"
    if not tls and not driver.received_any:
        return " without answering (a TLS port?)"
    if not driver.received_any:
        # TLS 1.3: the server checks our certificate after our side of the handshake
        return " after the TLS handshake without answering (was our certificate refused?)"
    return ""


async def request_association_async(
    settings: Settings,
    request: AssociationRequest,
    *,
    bind_address: tuple[str, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> AsyncAssociation:
    """Request an association on the running event loop (see
    :meth:`dicomnet.ae.AE.associate_async`)."""
    # lazy: asyncio and the asyncio driver cost a blocking client (echoscu, storescu) ~15 ms
    # of start-up it never needs
    import asyncio

    from dicomnet.aio_association import AsyncAssociation  # lazy: as above
    from dicomnet.transport.aio import AsyncDriver  # lazy: as above
    from dicomnet.transport.connect import open_connection  # lazy: as above

    loop = asyncio.get_running_loop()
    assoc = AsyncAssociation(settings, loop)
    conn = prepare(settings, assoc, request)

    def driver() -> AsyncDriver:
        return AsyncDriver(conn, loop, assoc.link, idle_timeout=settings.network_timeout)

    try:
        await open_connection(
            driver, request.addr, request.port, bind_address=bind_address,
            ssl_context=ssl_context, server_hostname=server_hostname,
            connect_timeout=settings.connection_timeout,
            handshake_timeout=settings.connection_timeout,
        )  # fmt: skip
    except TransportError as exc:
        assoc.failure_reason, assoc.error = str(exc), exc
        return assoc
    await assoc.wait_established(settings.acse_timeout)
    return assoc
