"""Fuzz targets ``ul_acceptor`` / ``ul_requestor``: one Upper Layer connection (PS3.8 9.2).

Theory of operation
-------------------
The input is a small program for a :class:`~dicomnet.ul.connection.ULConnection` of a fixed
role. Layout (read with :class:`fuzz._stream.Stream`)::

    cfg u8 | (op u8, operands)*

``cfg``: bits 0-1 Maximum Length (16384, 0 = unlimited, 1024, 8), bit 2 no ARTIM timer,
bit 3 a provider check (acceptor), bits 4-5 the A-ASSOCIATE cap, bits 6-7 the acceptor's
negotiation policy (roles/identity/extended negotiation; strict AE titles; nothing supported). Each op (``op % len(OPS)``):

====  ===========  ======================================================================
 0    FEED         blob: ``receive_data(bytes)``
 1    FEED_INTO    u8 size hint, blob: ``get_write_buffer`` + ``commit`` (the recv_into path)
 2    CONNECT      ``transport_connected(now)``
 3    ASSOCIATE    requestor: ``request_association(RQ)``; acceptor: negotiate the received
                   A-ASSOCIATE-RQ with :func:`~dicomnet.ul.negotiation.negotiate` and
                   ``accept``/``reject`` the answer (a canned AC when there is none)
 4    REJECT       ``reject(A-ASSOCIATE-RJ 1/1/7)``
 5    SEND_PDATA   u8 context, u8 control, blob: ``send_pdata``
 6    SEND_CHUNKS  u8 context, u8 control, blob: ``send_pdata_chunks`` (pre-encoded)
 7    RELEASE_RQ   ``release_request()``
 8    RELEASE_RP   ``release_response(now)``
 9    ABORT        u8: ``abort(source, reason)`` with a valid source/reason pair
10    TIMER        u8 seconds: advance the clock, ``handle_timer(now)``
11    CLOSED       ``transport_closed(now)``
12    CANNED       u8: ``receive_data`` of a well-formed PDU (RQ, AC, RJ, P-DATA, release,
                   abort), so short programs reach every state
====  ===========  ======================================================================

Allowed outcomes: the driver-side calls (``receive_data``, ``get_write_buffer``, ``commit``,
``handle_timer``) never raise; a primitive or transport call raises nothing but
``ProtocolError(local=True)`` (wrong state, PS3.8 section 7). Checked invariants (a failure is a
crash): negotiating a received RQ never raises and, in Sta3, its answer is always sendable;
every byte the connection asks to send parses as well-formed PDUs; no received P-DATA-TF is
longer than our Maximum Length; events are of the documented types.
"""

from __future__ import annotations

from typing import Literal

from dicomnet.errors import PDUDecodeError, ProtocolError
from dicomnet.ul.buffer import ReceiveBuffer
from dicomnet.ul.codec import decode_pdu, encode_pdu, pdata_header
from dicomnet.ul.connection import ULConnection
from dicomnet.ul.events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    PDataReceived,
    ReleaseConfirmed,
    ReleaseRequested,
    TransportClosed,
    TransportShouldClose,
)
from dicomnet.ul.fsm import State
from dicomnet.ul.negotiation import AcceptorPolicy, negotiate
from dicomnet.ul.pdu import (
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    AsyncOpsWindow,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    UserIdentityRQ,
    UserInformation,
)
from fuzz._stream import Stream

__all__ = [
    "OPS",
    "test_one_input",
    "test_one_input_acceptor",
    "test_one_input_requestor",
]

VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
FIND_STUDY = "1.2.840.10008.5.1.4.1.2.2.1"
IVLE = "1.2.840.10008.1.2"
EVLE = "1.2.840.10008.1.2.1"

OPS = (
    "FEED",
    "FEED_INTO",
    "CONNECT",
    "ASSOCIATE",
    "REJECT",
    "SEND_PDATA",
    "SEND_CHUNKS",
    "RELEASE_RQ",
    "RELEASE_RP",
    "ABORT",
    "TIMER",
    "CLOSED",
    "CANNED",
)
OP = {name: i for i, name in enumerate(OPS)}

_MAX_PDATA = (16384, 0, 1024, 8)
_MAX_ASSOCIATE = (1 << 20, 4096, 200, 68)
# PS3.8 9.3.8: source 0 (service-user, reason 0) or 2 (service-provider, reasons 0-6 but 3).
_ABORTS = ((0, 0), (2, 0), (2, 1), (2, 2), (2, 4), (2, 5), (2, 6))

RQ = AAssociateRQ(
    "ACCEPTOR",
    "REQUESTOR",
    (
        PresentationContextRQ(1, VERIFICATION, (IVLE,)),
        PresentationContextRQ(3, CT_STORAGE, (EVLE, IVLE)),
    ),
    UserInformation((AsyncOpsWindow(2, 2), UserIdentityRQ(1, 1, b"user"))),
)
AC = AAssociateAC(
    "ACCEPTOR",
    "REQUESTOR",
    (PresentationContextAC(1, 0, IVLE), PresentationContextAC(3, 0, EVLE)),
    UserInformation(),
)
RJ = AAssociateRJ(1, 1, 7)

# Pre-encoded PDUs for CANNED (the RQ/AC carry Maximum Length 16384 via the encoder defaults of
# the connection only when sent by it; here they are plain peer PDUs).
CANNED: tuple[bytes, ...] = (
    encode_pdu(RQ),
    encode_pdu(AC),
    encode_pdu(RJ),
    encode_pdu(PDataTF((PDV(1, 0x03, b"\x01\x02\x03\x04"),))),
    encode_pdu(AReleaseRQ()),
    encode_pdu(AReleaseRP()),
    encode_pdu(AAbort(2, 6)),
    encode_pdu(PDataTF((PDV(3, 0x00, b"\x08\x00\x16\x00\x04\x00\x00\x00ABCD"),))),
)

_EVENT_TYPES = (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    PDataReceived,
    ReleaseConfirmed,
    ReleaseRequested,
    TransportClosed,
    TransportShouldClose,
)


def _identity(rq: UserIdentityRQ) -> tuple[bool, bytes | None]:
    return rq.primary_field != b"nobody", b"welcome" if rq.positive_response_requested else None


def _policy(max_pdata_length: int, variant: int) -> AcceptorPolicy:
    """The acceptor's policy; ``variant`` (cfg bits 6-7) varies the checks that run."""
    supported: dict[str, tuple[str, ...]] = {
        VERIFICATION: (IVLE, EVLE),
        CT_STORAGE: (EVLE, IVLE),
        SC_STORAGE: (EVLE, IVLE),
        FIND_STUDY: (IVLE,),
    }
    if variant == 1:
        # Strict AE title checks (PS3.8 7.1.1.3-7.1.1.4), nothing extra negotiated.
        return AcceptorPolicy(
            ae_title="ACCEPTOR",
            supported=supported,
            require_called_ae_title=True,
            allowed_calling_ae_titles=("REQUESTOR", " STORESCU", "ECHOSCU "),
            max_pdata_length=max_pdata_length,
            implementation_version_name=None,
        )
    if variant == 2:
        # Nothing supported: every context refused; unlimited asynchronous window.
        return AcceptorPolicy(max_pdata_length=max_pdata_length, async_ops_window=(0, 0))
    return AcceptorPolicy(
        ae_title="ACCEPTOR",
        supported=supported,
        roles={CT_STORAGE: (True, True), SC_STORAGE: (False, True)},
        max_pdata_length=max_pdata_length,
        async_ops_window=(4, 4) if variant == 0 else (1, 1),
        user_identity=_identity,
        extended_negotiation=lambda item: bytes(item.service_class_application_information[:4]),
    )


def _provider_check(rq: AAssociateRQ) -> AAssociateRJ | None:
    return AAssociateRJ(2, 3, 2) if len(rq.presentation_contexts) > 8 else None


def _check_output(conn: ULConnection, out_buf: ReceiveBuffer) -> None:
    """Everything the connection sends must be well-formed PDUs."""
    for chunk in conn.data_to_send():
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise AssertionError(f"data_to_send() returned {type(chunk).__name__}")
        out_buf.feed(chunk)  # a PDUDecodeError here is a crash: we framed something badly
        while (view := out_buf.next_pdu()) is not None:
            decode_pdu(view)


def _drain_events(conn: ULConnection, pending: list[AAssociateRQ]) -> None:
    limit = conn.max_pdata_length
    while (event := conn.next_event()) is not None:
        if not isinstance(event, _EVENT_TYPES):
            raise AssertionError(f"unknown event {event!r}")
        if isinstance(event, AssociationRequested):
            pending.append(event.pdu)
        elif isinstance(event, PDataReceived) and limit:
            size = sum(6 + len(pdv.data) for pdv in event.pdu.pdvs)
            if size > limit:
                raise AssertionError(f"received a P-DATA-TF of {size} bytes, limit {limit}")


def _primitive(conn: ULConnection, call: object, *args: object) -> None:
    """Run a primitive: only ProtocolError(local=True) may come out."""
    assert callable(call)
    try:
        call(*args)
    except ProtocolError as exc:
        if not exc.local or isinstance(exc, PDUDecodeError):
            raise


def _associate_acceptor(
    conn: ULConnection, pending: list[AAssociateRQ], now: float, variant: int
) -> None:
    if not pending:
        _primitive(conn, conn.accept, AC, now)
        return
    rq = pending[-1]
    pending.clear()
    answer = negotiate(rq, _policy(conn.max_pdata_length, variant))  # must never raise
    if conn.state is State.STA3:
        # A negotiated answer to a request we decoded must always be sendable.
        if isinstance(answer, AAssociateAC):
            conn.accept(answer, now)
        else:
            conn.reject(answer, now)
        return
    if isinstance(answer, AAssociateAC):
        _primitive(conn, conn.accept, answer, now)
    else:
        _primitive(conn, conn.reject, answer, now)


def run(role: Literal["requestor", "acceptor"], data: bytes) -> None:
    s = Stream(data)
    cfg = s.u8()
    conn = ULConnection(
        role,
        max_pdata_length=_MAX_PDATA[cfg & 3],
        max_associate_length=_MAX_ASSOCIATE[cfg >> 4 & 3],
        artim_timeout=None if cfg & 4 else 30.0,
        provider_check=_provider_check if cfg & 8 and role == "acceptor" else None,
    )
    out_buf = ReceiveBuffer(0, 0xFFFFFFFF)
    pending: list[AAssociateRQ] = []
    now = 0.0
    n_ops = len(OPS)
    while not s.exhausted:
        op = s.u8() % n_ops
        if op == 0:  # FEED
            conn.receive_data(s.blob(), now)
        elif op == 1:  # FEED_INTO
            hint = s.u8() or -1
            incoming = memoryview(s.blob())
            while incoming:
                window = conn.get_write_buffer(hint)
                n = min(len(window), len(incoming))
                if n == 0:
                    raise AssertionError("get_write_buffer() returned an empty buffer")
                window[:n] = incoming[:n]
                conn.commit(n, now)
                incoming = incoming[n:]
        elif op == 2:  # CONNECT
            _primitive(conn, conn.transport_connected, now)
        elif op == 3:  # ASSOCIATE
            if role == "requestor":
                _primitive(conn, conn.request_association, RQ, now)
            else:
                _associate_acceptor(conn, pending, now, cfg >> 6)
        elif op == 4:  # REJECT
            _primitive(conn, conn.reject, RJ, now)
        elif op in (5, 6):  # SEND_PDATA / SEND_CHUNKS
            ctx, control, payload = s.u8(), s.u8() & 3, s.blob()
            if op == 5:
                _primitive(conn, conn.send_pdata, PDataTF((PDV(ctx, control, payload),)))
            else:
                chunks = [pdata_header(ctx, control, len(payload)), payload]
                _primitive(conn, conn.send_pdata_chunks, chunks)
        elif op == 7:
            _primitive(conn, conn.release_request)
        elif op == 8:
            _primitive(conn, conn.release_response, now)
        elif op == 9:
            source, reason = _ABORTS[s.u8() % len(_ABORTS)]
            _primitive(conn, conn.abort, source, reason, now)
        elif op == 10:
            now += s.u8()
            conn.handle_timer(now)
            deadline = conn.next_deadline()
            if deadline is not None and deadline <= now:
                raise AssertionError(f"ARTIM deadline {deadline} survived handle_timer({now})")
        elif op == 11:
            _primitive(conn, conn.transport_closed, now)
        else:  # CANNED
            conn.receive_data(CANNED[s.u8() % len(CANNED)], now)
        _drain_events(conn, pending)
        _check_output(conn, out_buf)


def test_one_input_acceptor(data: bytes) -> None:
    run("acceptor", data)


def test_one_input_requestor(data: bytes) -> None:
    run("requestor", data)


test_one_input = test_one_input_acceptor
