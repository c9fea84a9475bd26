"""Hostile and broken peers at the Upper Layer: the exact bytes we answer with.

One test per Upper-Layer row of the hostile-input table in spec-notes.md, plus hypothesis:
arbitrary bytes fed to either role only ever produce events (or our ProtocolError), never
another exception.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomnet.ul.codec import encode_pdu
from dicomnet.ul.connection import AcceptorConnection, ULConnection
from dicomnet.ul.events import (
    Aborted,
    AssociationRejected,
    AssociationRequested,
    TransportShouldClose,
)
from dicomnet.ul.fsm import State
from dicomnet.ul.negotiation import AcceptorPolicy, negotiate
from dicomnet.ul.pdu import AAssociateRJ, AAssociateRQ
from tests.ul.test_connection import (
    AC_BYTES,
    REACHABLE,
    RJ_BYTES,
    RQ,
    RQ_BYTES,
    abort_bytes,
    drive,
    events,
    sent,
)

HTTP = b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n"
ASSOCIATED = [(r, s) for r, s in REACHABLE if State.STA6 <= s <= State.STA12]


def fresh_acceptor(**kw: object) -> AcceptorConnection:
    acc = AcceptorConnection(**kw)  # type: ignore[arg-type]
    acc.transport_connected(0.0)
    return acc


def expect_provider_abort(conn: ULConnection, reason: int) -> None:
    """A-ABORT 2/<reason> queued, Aborted(local=True), TransportShouldClose, Sta13."""
    assert sent(conn) == abort_bytes(2, reason)
    assert events(conn) == [Aborted(2, reason, True), TransportShouldClose()]
    assert conn.state is State.STA13


# --- unknown PDU type ------------------------------------------------------------------------


def test_http_request_in_sta2() -> None:
    acc = fresh_acceptor()
    acc.receive_data(HTTP)
    # AA-1 in Sta2; we say why: unrecognized PDU (reason 1)
    expect_provider_abort(acc, 1)
    assert acc.next_deadline() == 30.0  # ARTIM restarted, Sta13 until the peer closes


@pytest.mark.parametrize(("role", "state"), ASSOCIATED)
def test_unknown_pdu_type_when_associated(role: str, state: State) -> None:
    conn = drive(role, state)
    conn.receive_data(b"\x08\x00\xff\xff\xff\xff")  # forged 4 GiB length
    expect_provider_abort(conn, 1)  # AA-8


def test_unknown_type_aborts_on_header_before_body() -> None:
    acc = fresh_acceptor()
    acc.receive_data(b"\x99\x00\x7f\xff\xff\xff")  # just the header, 2 GiB announced
    expect_provider_abort(acc, 1)
    # everything after is discarded: framing is lost
    acc.receive_data(RQ_BYTES)
    assert events(acc) == [] and sent(acc) == b""


# --- A-ASSOCIATE-RQ/AC/RJ while associated: A-ABORT 2/2 ---------------------------------------


@pytest.mark.parametrize("pdu", [RQ_BYTES, AC_BYTES, RJ_BYTES], ids=["rq", "ac", "rj"])
@pytest.mark.parametrize(("role", "state"), ASSOCIATED)
def test_associate_pdus_while_associated(role: str, state: State, pdu: bytes) -> None:
    conn = drive(role, state)
    conn.receive_data(pdu)
    expect_provider_abort(conn, 2)


def test_unexpected_pdu_in_sta2_and_sta13() -> None:
    acc = fresh_acceptor()
    acc.receive_data(b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00")  # A-RELEASE-RQ before RQ
    expect_provider_abort(acc, 2)  # AA-1
    acc.receive_data(b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00")  # Sta13: AA-6, ignored
    assert sent(acc) == b"" and events(acc) == []
    acc.receive_data(RQ_BYTES)  # Sta13: AA-7, A-ABORT again
    assert sent(acc) == abort_bytes(2, 2) and acc.state is State.STA13


# --- fixed-length PDUs with length != 4: A-ABORT 2/6 ------------------------------------------


@pytest.mark.parametrize("pdu_type", [3, 5, 6, 7])
@pytest.mark.parametrize("length", [0, 3, 5, 0xFFFFFFFF])
def test_fixed_length_pdus_with_wrong_length(pdu_type: int, length: int) -> None:
    conn = drive("requestor", State.STA6)
    conn.receive_data(struct.pack(">BxI", pdu_type, length))
    expect_provider_abort(conn, 6)


# --- over-long P-DATA / A-ASSOCIATE: 2/6 without buffering ------------------------------------


def test_pdata_over_our_maximum_aborts_on_the_header() -> None:
    acc = fresh_acceptor(max_pdata_length=4096)
    rq = AAssociateRQ("A", "B", RQ.presentation_contexts)
    acc.receive_data(encode_pdu(rq))
    (ev,) = events(acc)
    assert isinstance(ev, AssociationRequested)
    acc.accept(negotiate(ev.pdu, AcceptorPolicy(max_pdata_length=4096)))  # type: ignore[arg-type]
    sent(acc)
    acc.receive_data(struct.pack(">BxI", 4, 4097))  # header only: no body was ever sent
    expect_provider_abort(acc, 6)
    acc2 = drive("acceptor", State.STA6)
    acc2.receive_data(struct.pack(">BxI", 4, 4096 * 4))  # exactly at the limit: fine
    assert events(acc2) == [] and sent(acc2) == b""
    acc3 = drive("acceptor", State.STA6)
    acc3.receive_data(struct.pack(">BxI", 4, 16385))
    expect_provider_abort(acc3, 6)


def test_associate_rq_over_the_cap_aborts_on_the_header() -> None:
    acc = fresh_acceptor(max_associate_length=1000)
    acc.receive_data(struct.pack(">BxI", 1, 1001))
    expect_provider_abort(acc, 6)  # AA-1 in Sta2 with the decoder's reason
    default = fresh_acceptor()
    default.receive_data(struct.pack(">BxI", 1, (1 << 20) + 1))
    expect_provider_abort(default, 6)


# --- broken PDV items: 2/6 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        struct.pack(">IBB", 1, 1, 3) + b"",  # PDV item length 1 < 2
        struct.pack(">IBB", 100, 1, 3) + b"abcd",  # past the end of the PDU
        b"",  # P-DATA with no PDV
        struct.pack(">IBB", 6, 1, 3) + b"abcd" + b"\x00\x00",  # trailing truncated PDV header
    ],
    ids=["pdv-length-1", "pdv-past-end", "no-pdv", "truncated-second-pdv"],
)
@pytest.mark.parametrize(("role", "state"), [("acceptor", State.STA6), ("requestor", State.STA7)])
def test_broken_pdv_items(body: bytes, role: str, state: State) -> None:
    conn = drive(role, state)
    conn.receive_data(struct.pack(">BxI", 4, len(body)) + body)
    expect_provider_abort(conn, 6)


# --- negotiation-level rejects: exact A-ASSOCIATE-RJ bytes -------------------------------------


def test_protocol_version_bit_0_clear() -> None:
    acc = fresh_acceptor()
    raw = bytearray(RQ_BYTES)
    raw[6:8] = b"\x00\x02"  # version field: bit 0 clear
    acc.receive_data(bytes(raw))
    assert sent(acc) == bytes.fromhex("03 00 00000004 00 01 02 02")
    assert events(acc) == [AssociationRejected(AAssociateRJ(1, 2, 2), local=True)]


def test_wrong_application_context_name() -> None:
    acc = fresh_acceptor()
    rq = AAssociateRQ(
        "A", "B", RQ.presentation_contexts, RQ.user_information, application_context_name="1.2.3"
    )
    acc.receive_data(encode_pdu(rq))
    (ev,) = events(acc)
    assert isinstance(ev, AssociationRequested)
    answer = negotiate(ev.pdu, AcceptorPolicy())
    assert isinstance(answer, AAssociateRJ)
    acc.reject(answer)
    assert sent(acc) == bytes.fromhex("03 00 00000004 00 01 01 02")


def test_over_the_association_limit() -> None:
    acc = fresh_acceptor(provider_check=lambda rq: AAssociateRJ(2, 3, 2))
    acc.receive_data(RQ_BYTES)
    assert sent(acc) == bytes.fromhex("03 00 00000004 00 02 03 02")
    assert acc.state is State.STA13


# --- malformed item lengths: 2/6 ----------------------------------------------------------------


def test_malformed_item_length_in_rq() -> None:
    raw = bytearray(RQ_BYTES)
    # first item after the 68 fixed bytes is the application context (10H): forge its length
    assert raw[74] == 0x10
    raw[76:78] = b"\xff\xff"
    acc = fresh_acceptor()
    acc.receive_data(bytes(raw))
    expect_provider_abort(acc, 6)


def test_malformed_item_length_in_ac() -> None:
    raw = bytearray(AC_BYTES)
    raw[76:78] = b"\xff\xf0"
    req = drive("requestor", State.STA5)
    req.receive_data(bytes(raw))
    expect_provider_abort(req, 6)  # AA-8 in Sta5


# --- silent or dripping peers: ARTIM ---------------------------------------------------------------


def test_silent_connection_closed_by_artim() -> None:
    acc = AcceptorConnection(artim_timeout=10.0)
    acc.transport_connected(0.0)
    acc.handle_timer(10.0)
    assert events(acc) == [TransportShouldClose()] and acc.state is State.STA1


def test_dripping_rq_does_not_reset_artim() -> None:
    acc = AcceptorConnection(artim_timeout=10.0)
    acc.transport_connected(0.0)
    for i in range(9):
        acc.receive_data(RQ_BYTES[i : i + 1], now=float(i))
    assert acc.next_deadline() == 10.0
    acc.handle_timer(10.0)
    assert events(acc) == [TransportShouldClose()] and acc.state is State.STA1


def test_peer_that_never_closes_after_abort() -> None:
    acc = AcceptorConnection(artim_timeout=5.0)
    acc.transport_connected(0.0)
    acc.receive_data(HTTP, now=1.0)
    expect_provider_abort(acc, 1)
    acc.receive_data(b"more garbage", now=2.0)
    assert events(acc) == []
    acc.handle_timer(6.0)  # Evt18 in Sta13: AA-2; already asked to close, not repeated
    assert events(acc) == [] and acc.state is State.STA1


# --- hypothesis: anything in, only events out ---------------------------------------------------

FUZZ_STATES = [
    ("acceptor", State.STA2),
    ("acceptor", State.STA3),
    ("acceptor", State.STA6),
    ("acceptor", State.STA8),
    ("acceptor", State.STA13),
    ("requestor", State.STA5),
    ("requestor", State.STA6),
    ("requestor", State.STA7),
]

# Mostly valid-looking headers followed by random bodies, and plain random bytes.
_headers = st.builds(
    lambda t, n, body: struct.pack(">BxI", t, n) + body,
    st.integers(0, 9),
    st.integers(0, 300),
    st.binary(max_size=300),
)
_stream = st.lists(st.one_of(_headers, st.binary(max_size=64), st.sampled_from(
    [RQ_BYTES, AC_BYTES, RJ_BYTES, abort_bytes(0, 0), b"\x04\x00\x00\x00\x00\x08\x00\x00\x00\x04\x01\x03ab"]
)), max_size=6).map(b"".join)


def _run(conn: ULConnection, chunks: list[bytes]) -> tuple[list[object], bytes]:
    out: list[object] = []
    wire = b""
    for chunk in chunks:
        conn.receive_data(chunk)  # must never raise, whatever the bytes
        while (ev := conn.next_event()) is not None:
            out.append(ev)
        wire += b"".join(bytes(b) for b in conn.data_to_send())
    return out, wire


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_stream, which=st.sampled_from(FUZZ_STATES))
def test_arbitrary_bytes_only_produce_events(data: bytes, which: tuple[str, State]) -> None:
    role, state = which
    whole = drive(role, state)
    bytewise = drive(role, state)
    events_whole, wire_whole = _run(whole, [data])
    events_bytes, wire_bytes = _run(bytewise, [data[i : i + 1] for i in range(len(data))])
    # Chunking does not matter: same events, same bytes answered, same state.
    assert events_whole == events_bytes
    assert wire_whole == wire_bytes
    assert whole.state is bytewise.state
    # Whatever happened, a peer protocol error is answered by the table, not by an exception:
    # an A-ABORT we sent always comes with Aborted(local=True) and a close request, except
    # AA-7 in Sta13 (after the association is already gone).
    if wire_whole.startswith(b"\x07") and state is not State.STA13:
        assert any(isinstance(e, Aborted) and e.local for e in events_whole)
        assert any(isinstance(e, TransportShouldClose) for e in events_whole)
    for conn in (whole, bytewise):
        conn.handle_timer(1e9)
        conn.transport_closed()
        while conn.next_event() is not None:
            pass
        assert conn.state is State.STA1
