"""ULConnection driven through whole lifecycles on both roles (PS3.8 section 9.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomnet.errors import ProtocolError
from dicomnet.ul.codec import encode_pdu, pdata_header
from dicomnet.ul.connection import AcceptorConnection, RequestorConnection, ULConnection
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
    ULEvent,
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
    MaximumLength,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
)
from tests.ul.test_fsm import GRID_CELLS, NEXT

DATA = Path(__file__).resolve().parents[1] / "data" / "pdus"

# --- helpers (also used by test_hostile_ul.py) ------------------------------------------------

VERIFICATION = "1.2.840.10008.1.1"
IVLE = "1.2.840.10008.1.2"

RQ = AAssociateRQ(
    "ACCEPTOR",
    "REQUESTOR",
    (PresentationContextRQ(1, VERIFICATION, (IVLE,)),),
    UserInformation((MaximumLength(16384),)),
)
AC = AAssociateAC(
    "ACCEPTOR",
    "REQUESTOR",
    (PresentationContextAC(1, 0, IVLE),),
    UserInformation((MaximumLength(16384),)),
)
RJ = AAssociateRJ(1, 1, 7)
PDATA = PDataTF((PDV(1, 0x03, b"\x01\x02\x03\x04"),))

RQ_BYTES = encode_pdu(RQ)
AC_BYTES = encode_pdu(AC)
RJ_BYTES = encode_pdu(RJ)
PDATA_BYTES = encode_pdu(PDATA)
RELEASE_RQ_BYTES = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"
RELEASE_RP_BYTES = b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00"
assert encode_pdu(AReleaseRQ()) == RELEASE_RQ_BYTES
assert encode_pdu(AReleaseRP()) == RELEASE_RP_BYTES


def abort_bytes(source: int, reason: int) -> bytes:
    return bytes([0x07, 0, 0, 0, 0, 4, 0, 0, source, reason])


assert encode_pdu(AAbort(2, 6)) == abort_bytes(2, 6)


def events(conn: ULConnection) -> list[ULEvent]:
    out: list[ULEvent] = []
    while (ev := conn.next_event()) is not None:
        out.append(ev)
    return out


def sent(conn: ULConnection) -> bytes:
    return b"".join(bytes(b) for b in conn.data_to_send())


def pump(src: ULConnection, dst: ULConnection) -> bytes:
    data = sent(src)
    if data:
        dst.receive_data(data)
    return data


def drive(role: str, state: State, now: float = 0.0) -> ULConnection:
    """A connection of ``role`` brought to ``state`` by feeding it PDUs; queues emptied."""
    conn = ULConnection(role)  # type: ignore[arg-type]
    req = role == "requestor"
    path: list[str] = []
    if state is State.STA1:
        return conn
    if req:
        path.append("request")
        if state is not State.STA4:
            path += ["connect"]
            if state is not State.STA5:
                path += ["ac"]
    else:
        path.append("connect")
        if state is not State.STA2:
            path += ["rq"]
            if state is not State.STA3:
                path += ["accept"]
    # now in Sta6 unless stopped earlier
    extra = {
        State.STA7: ["release"],
        State.STA8: ["peer_release"],
        State.STA9: ["release", "peer_release"],  # requestor collision
        State.STA10: ["release", "peer_release"],  # acceptor collision
        State.STA11: ["release", "peer_release", "respond"],
        State.STA12: ["release", "peer_release", "peer_rp"],
        State.STA13: ["abort"],
    }
    if state in extra:
        path += extra[state]
    for step in path:
        if step == "request":
            conn.request_association(RQ, now)
        elif step == "connect":
            conn.transport_connected(now)
        elif step == "ac":
            conn.receive_data(AC_BYTES)
        elif step == "rq":
            conn.receive_data(RQ_BYTES)
        elif step == "accept":
            conn.accept(AC)
        elif step == "release":
            conn.release_request()
        elif step == "peer_release":
            conn.receive_data(RELEASE_RQ_BYTES)
        elif step == "respond":
            conn.release_response()
        elif step == "peer_rp":
            conn.receive_data(RELEASE_RP_BYTES)
        elif step == "abort":
            conn.abort(now=now)
    assert conn.state is state, (role, state, conn.state)
    events(conn)
    conn.data_to_send()
    return conn


#: (role, state) pairs reachable on each side
REACHABLE = [
    ("requestor", s)
    for s in (State.STA1, State.STA4, State.STA5, State.STA6, State.STA7, State.STA8,
              State.STA9, State.STA11, State.STA13)
] + [
    ("acceptor", s)
    for s in (State.STA1, State.STA2, State.STA3, State.STA6, State.STA7, State.STA8,
              State.STA10, State.STA12, State.STA13)
]


# --- tests ---------------------------------------------------------------------------------------


def associated_pair() -> tuple[RequestorConnection, AcceptorConnection]:
    req = RequestorConnection()
    acc = AcceptorConnection()
    req.request_association(RQ, 0.0)
    assert req.state is State.STA4 and sent(req) == b""
    req.transport_connected(0.0)
    acc.transport_connected(0.0)
    assert req.state is State.STA5 and acc.state is State.STA2
    assert pump(req, acc) == RQ_BYTES
    (ev,) = events(acc)
    assert isinstance(ev, AssociationRequested) and ev.pdu == RQ
    assert acc.state is State.STA3 and acc.next_deadline() is None  # AE-6 stopped ARTIM
    acc.accept(AC)
    assert pump(acc, req) == AC_BYTES
    assert events(req) == [AssociationAccepted(AC)]
    assert req.state is State.STA6 and acc.state is State.STA6
    assert req.is_established and acc.is_established
    return req, acc


def test_association_and_pdata_both_ways() -> None:
    req, acc = associated_pair()
    assert req.peer_max_pdata_length == 16384 and acc.peer_max_pdata_length == 16384
    assert acc.peer_rq == RQ and req.peer_ac == AC
    req.send_pdata(PDATA)
    assert pump(req, acc) == PDATA_BYTES
    (ev,) = events(acc)
    assert isinstance(ev, PDataReceived)
    assert bytes(ev.pdu.pdvs[0].data) == b"\x01\x02\x03\x04" and ev.pdu.pdvs[0].control == 3
    acc.send_pdata(PDataTF((PDV(1, 0, b"ab"), PDV(1, 2, b"cd"))))
    pump(acc, req)
    (ev,) = events(req)
    assert isinstance(ev, PDataReceived)
    assert [bytes(p.data) for p in ev.pdu.pdvs] == [b"ab", b"cd"]


def test_send_pdata_chunks_fast_path_is_scatter_gather() -> None:
    req, acc = associated_pair()
    payload = memoryview(b"x" * 1000)
    chunks = [pdata_header(1, 0x02, len(payload)), payload[:500], payload[500:]]
    req.send_pdata_chunks(chunks)
    out = req.data_to_send()
    assert out == chunks and out[1] is chunks[1]  # appended as given, no copy
    acc.receive_data(b"".join(bytes(c) for c in out))
    (ev,) = events(acc)
    assert isinstance(ev, PDataReceived) and bytes(ev.pdu.pdvs[0].data) == b"x" * 1000


def test_receive_one_byte_at_a_time_and_via_write_buffer() -> None:
    req, acc = associated_pair()
    stream = PDATA_BYTES * 3 + RELEASE_RQ_BYTES
    for i in range(len(stream)):
        acc.receive_data(stream[i : i + 1])
    evs = events(acc)
    assert [type(e) for e in evs] == [PDataReceived] * 3 + [ReleaseRequested]
    # recv_into style on the other side
    acc.send_pdata(PDATA)
    data = sent(acc) * 2
    pos = 0
    while pos < len(data):
        buf = req.get_write_buffer()
        n = min(len(buf), 7, len(data) - pos)
        buf[:n] = data[pos : pos + n]
        req.commit(n)
        pos += n
    assert [type(e) for e in events(req)] == [PDataReceived, PDataReceived]


def test_normal_release_requestor_initiated() -> None:
    req, acc = associated_pair()
    req.release_request()
    assert req.state is State.STA7
    assert pump(req, acc) == RELEASE_RQ_BYTES
    assert events(acc) == [ReleaseRequested(collision=False)]
    assert acc.state is State.STA8
    # AR-7: the acceptor may still send P-DATA in Sta8; AR-6: the requestor receives it in Sta7
    acc.send_pdata(PDATA)
    pump(acc, req)
    assert [type(e) for e in events(req)] == [PDataReceived] and req.state is State.STA7
    acc.release_response(now=10.0)
    assert acc.state is State.STA13 and acc.next_deadline() == 40.0  # AR-4 starts ARTIM
    assert pump(acc, req) == RELEASE_RP_BYTES
    assert events(req) == [ReleaseConfirmed(), TransportShouldClose()]  # AR-3
    assert req.state is State.STA1
    req.transport_closed()
    assert events(req) == [] and req.state is State.STA1
    acc.transport_closed(11.0)  # AR-5
    assert events(acc) == [TransportClosed()] and acc.state is State.STA1
    assert acc.next_deadline() is None


def test_release_acceptor_initiated() -> None:
    req, acc = associated_pair()
    acc.release_request()
    pump(acc, req)
    assert events(req) == [ReleaseRequested()]
    req.release_response(now=0.0)
    pump(req, acc)
    assert events(acc) == [ReleaseConfirmed(), TransportShouldClose()]
    assert req.state is State.STA13 and acc.state is State.STA1


def test_release_collision_both_sides() -> None:
    req, acc = associated_pair()
    req.release_request()
    acc.release_request()
    pump(req, acc)
    pump(acc, req)
    # AR-8: requestor -> Sta9, acceptor -> Sta10
    assert events(req) == [ReleaseRequested(collision=True)] and req.state is State.STA9
    assert events(acc) == [ReleaseRequested(collision=True)] and acc.state is State.STA10
    # PS3.8 7.2.2: the association-requestor answers first (AR-9 -> Sta11)
    with pytest.raises(ProtocolError):
        acc.release_response()  # Evt14 is blank in Sta10
    req.release_response()
    assert req.state is State.STA11
    assert pump(req, acc) == RELEASE_RP_BYTES
    assert events(acc) == [ReleaseConfirmed()] and acc.state is State.STA12  # AR-10
    acc.release_response(now=5.0)  # AR-4
    assert acc.state is State.STA13
    assert pump(acc, req) == RELEASE_RP_BYTES
    assert events(req) == [ReleaseConfirmed(), TransportShouldClose()]  # AR-3 from Sta11
    assert req.state is State.STA1
    acc.transport_closed()
    assert events(acc) == [TransportClosed()] and acc.state is State.STA1


def test_requestor_rejected() -> None:
    req = RequestorConnection()
    req.request_association(RQ, 0.0)
    req.transport_connected(0.0)
    sent(req)
    req.receive_data(RJ_BYTES)
    assert events(req) == [AssociationRejected(RJ), TransportShouldClose()]  # AE-4
    assert req.state is State.STA1


def test_acceptor_user_reject_starts_artim() -> None:
    acc = AcceptorConnection(artim_timeout=5.0)
    acc.transport_connected(100.0)
    acc.receive_data(RQ_BYTES)
    events(acc)
    acc.reject(AAssociateRJ(1, 1, 3), now=101.0)  # AE-8
    assert sent(acc) == bytes.fromhex("03000000000400010103")
    assert acc.state is State.STA13 and acc.next_deadline() == 106.0
    acc.handle_timer(105.9)
    assert events(acc) == []
    acc.handle_timer(106.0)  # Evt18 in Sta13: AA-2
    assert events(acc) == [TransportShouldClose()] and acc.state is State.STA1


def test_provider_rejects_protocol_version() -> None:
    acc = AcceptorConnection()
    acc.transport_connected(0.0)
    rq = AAssociateRQ("A", "B", RQ.presentation_contexts, RQ.user_information, protocol_version=2)
    acc.receive_data(encode_pdu(rq))
    rj = AAssociateRJ(1, 2, 2)
    assert sent(acc) == encode_pdu(rj) == bytes.fromhex("03000000000400010202")
    assert events(acc) == [AssociationRejected(rj, local=True)]
    assert acc.state is State.STA13 and acc.next_deadline() == 30.0


def test_provider_check_hook_local_limit() -> None:
    acc = AcceptorConnection(provider_check=lambda rq: AAssociateRJ(2, 3, 2))
    acc.transport_connected(0.0)
    acc.receive_data(RQ_BYTES)
    assert sent(acc) == bytes.fromhex("03000000000400020302")
    assert acc.state is State.STA13


def test_artim_expires_in_sta2() -> None:
    acc = AcceptorConnection(artim_timeout=2.5)
    acc.transport_connected(1000.0)
    assert acc.next_deadline() == 1002.5
    acc.handle_timer(1001.0)
    assert acc.state is State.STA2 and events(acc) == []
    acc.handle_timer(1003.0)  # AA-2
    assert events(acc) == [TransportShouldClose()] and acc.state is State.STA1
    assert acc.next_deadline() is None and sent(acc) == b""
    acc.handle_timer(2000.0)  # stale: nothing
    assert events(acc) == []


def test_no_artim_means_close_at_once_in_sta13() -> None:
    acc = AcceptorConnection(artim_timeout=None)
    acc.transport_connected(0.0)
    assert acc.next_deadline() is None
    acc.receive_data(RQ_BYTES)
    assert [type(e) for e in events(acc)] == [AssociationRequested]
    acc.reject(RJ)
    assert events(acc) == [TransportShouldClose()] and acc.state is State.STA13


def test_transport_lost_while_associated() -> None:
    req, _acc = associated_pair()
    req.transport_closed()  # AA-4
    assert events(req) == [Aborted(2, 0, False), TransportClosed()]
    assert req.state is State.STA1


def test_transport_closed_before_rq() -> None:
    acc = AcceptorConnection()
    acc.transport_connected(0.0)
    acc.transport_closed()  # AA-5
    assert events(acc) == [TransportClosed()] and acc.next_deadline() is None


def test_connect_failed() -> None:
    req = RequestorConnection()
    req.request_association(RQ, 0.0)
    req.transport_closed()  # Evt17 in Sta4: AA-4
    assert events(req) == [Aborted(2, 0, False), TransportClosed()]


@pytest.mark.parametrize(("role", "state"), REACHABLE)
def test_local_abort_in_every_state(role: str, state: State) -> None:
    conn = drive(role, state, now=50.0)
    conn.abort(now=60.0)
    out = sent(conn)
    if state is State.STA1 or state is State.STA13:
        assert out == b"" and conn.state is state  # nothing to abort (local choice)
    elif state is State.STA2 or state is State.STA4:
        # Sta4: AA-2 per the table; Sta2: same (local choice, no association yet)
        assert out == b"" and conn.state is State.STA1
        assert events(conn) == [TransportShouldClose()]
    else:
        assert out == abort_bytes(0, 0)  # AA-1, service-user source
        assert conn.state is State.STA13 and conn.next_deadline() == 90.0
        assert events(conn) == []
        conn.transport_closed()  # AR-5
        assert events(conn) == [TransportClosed()] and conn.state is State.STA1


@pytest.mark.parametrize(("role", "state"), REACHABLE)
def test_peer_abort_in_every_state(role: str, state: State) -> None:
    conn = drive(role, state)
    conn.receive_data(abort_bytes(0, 0))
    evs = events(conn)
    if state in (State.STA1, State.STA4):
        assert evs == [] and conn.state is state  # no transport: discarded
    elif state in (State.STA2, State.STA13):
        assert evs == [TransportShouldClose()] and conn.state is State.STA1  # AA-2
    else:
        assert evs == [Aborted(0, 0, False), TransportShouldClose()]  # AA-3
        assert conn.state is State.STA1
    assert sent(conn) == b""


@pytest.mark.parametrize(("role", "state"), REACHABLE)
def test_transport_closed_in_every_state(role: str, state: State) -> None:
    conn = drive(role, state)
    conn.transport_closed()
    assert conn.state is State.STA1
    evs = events(conn)
    if state is State.STA1:
        assert evs == []
    elif state in (State.STA2, State.STA13):
        assert evs == [TransportClosed()]
    else:
        assert evs == [Aborted(2, 0, False), TransportClosed()]


PRIMITIVES = {
    "request_association": lambda c: c.request_association(RQ, 0.0),
    "accept": lambda c: c.accept(AC),
    "reject": lambda c: c.reject(RJ),
    "send_pdata": lambda c: c.send_pdata(PDATA),
    "send_pdata_chunks": lambda c: c.send_pdata_chunks([PDATA_BYTES]),
    "release_request": lambda c: c.release_request(),
    "release_response": lambda c: c.release_response(),
}
ALLOWED = {
    ("requestor", "request_association"): {State.STA1},
    ("acceptor", "accept"): {State.STA3},
    ("acceptor", "reject"): {State.STA3},
    ("requestor", "send_pdata"): {State.STA6, State.STA8},
    ("acceptor", "send_pdata"): {State.STA6, State.STA8},
    ("requestor", "send_pdata_chunks"): {State.STA6, State.STA8},
    ("acceptor", "send_pdata_chunks"): {State.STA6, State.STA8},
    ("requestor", "release_request"): {State.STA6},
    ("acceptor", "release_request"): {State.STA6},
    ("requestor", "release_response"): {State.STA8, State.STA9},
    ("acceptor", "release_response"): {State.STA8, State.STA12},
}


@pytest.mark.parametrize(("role", "state"), REACHABLE)
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitives_only_where_table_allows(role: str, state: State, name: str) -> None:
    conn = drive(role, state)
    allowed = state in ALLOWED.get((role, name), set())
    if allowed:
        PRIMITIVES[name](conn)
    else:
        with pytest.raises(ProtocolError) as info:
            PRIMITIVES[name](conn)
        assert info.value.local
        assert conn.state is state and sent(conn) == b"" and events(conn) == []


def test_max_length_is_inserted_or_checked() -> None:
    req = RequestorConnection(max_pdata_length=4096)
    bare = AAssociateRQ("A", "B", RQ.presentation_contexts)
    req.request_association(bare, 0.0)
    assert req.local_rq is not None and req.local_rq.user_information.maximum_length == 4096
    req2 = RequestorConnection(max_pdata_length=4096)
    with pytest.raises(ProtocolError):
        req2.request_association(RQ, 0.0)  # advertises 16384
    assert req2.state is State.STA1


def test_send_pdata_respects_peer_max() -> None:
    req = RequestorConnection()
    req.request_association(RQ, 0.0)
    req.transport_connected(0.0)
    ac = AAssociateAC("A", "B", AC.presentation_contexts, UserInformation((MaximumLength(20),)))
    req.receive_data(encode_pdu(ac))
    assert req.peer_max_pdata_length == 20
    req.send_pdata(PDataTF((PDV(1, 3, b"x" * 14),)))  # 6 + 14 = 20: fits
    with pytest.raises(ProtocolError):
        req.send_pdata(PDataTF((PDV(1, 3, b"x" * 15),)))


def test_acceptor_with_negotiate_end_to_end_on_dcmtk_capture() -> None:
    # Bytes captured from DCMTK echoscu: the acceptor decodes them and negotiate() accepts.
    capture = DATA / "dcmtk_echo"
    files = sorted(capture.glob("*.bin"))
    if not files:
        pytest.skip("no captured PDUs")
    acc = AcceptorConnection()
    acc.transport_connected(0.0)
    for f in files:
        if "-rq-" in f.name:
            acc.receive_data(f.read_bytes())
            for ev in events(acc):
                if isinstance(ev, AssociationRequested):
                    answer = negotiate(
                        ev.pdu, AcceptorPolicy(supported={"1.2.840.10008.1.1": ["1.2.840.10008.1.2"]})
                    )
                    assert isinstance(answer, AAssociateAC)
                    assert answer.presentation_contexts[0].result == 0
                    acc.accept(answer)
                elif isinstance(ev, ReleaseRequested):
                    acc.release_response()
    assert acc.state is State.STA13
    rq_file = next(f for f in files if "associate-rq" in f.name)
    from dicomnet.ul.codec import decode_pdu

    rq = decode_pdu(rq_file.read_bytes())
    assert isinstance(rq, AAssociateRQ)
    req = RequestorConnection(max_pdata_length=rq.user_information.maximum_length or 0)
    req.request_association(rq, 0.0)
    req.transport_connected(0.0)
    assert sent(req) == rq_file.read_bytes()  # byte-exact re-encoding of DCMTK's request
    for f in files:
        if "-ac-" in f.name:
            req.receive_data(f.read_bytes())
        elif "release-rq" in f.name:
            req.release_request()
    kinds = [type(e) for e in events(req)]
    assert kinds == [AssociationAccepted, PDataReceived, ReleaseConfirmed, TransportShouldClose]


def test_reuse_after_close_starts_fresh() -> None:
    acc = AcceptorConnection()
    acc.transport_connected(0.0)
    acc.receive_data(b"\x05\x00\x00\x00\x00\x04\x00\x00")  # half an A-RELEASE-RQ, then close
    acc.transport_closed()
    events(acc)
    acc.transport_connected(1.0)  # new connection: buffer must not hold the old half PDU
    acc.receive_data(RQ_BYTES)
    assert [type(e) for e in events(acc)] == [AssociationRequested]


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        ULConnection("server")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ULConnection("acceptor", max_pdata_length=-1)


# --- every received-PDU cell of Table 9-10, at the connection level ---------------------------

PDU_FOR_EVENT = {
    3: AC_BYTES,
    4: RJ_BYTES,
    6: RQ_BYTES,
    10: PDATA_BYTES,
    12: RELEASE_RQ_BYTES,
    13: RELEASE_RP_BYTES,
    16: abort_bytes(2, 0),
    19: b"\x0a\x00\x00\x00\x00\x00",  # unrecognized PDU type
}


def _expected_next(role: str, state: State, event: int) -> State:
    cell = GRID_CELLS[(state.value, event)]
    if cell is None:
        return state  # Sta1/Sta4: bytes discarded
    tokens = NEXT.split()
    nxt = dict(zip(tokens[::2], tokens[1::2], strict=True))[cell]
    if cell == "AE-6":
        return State.STA3
    if cell == "AR-8":
        return State.STA9 if role == "requestor" else State.STA10
    return State(int(nxt))


@pytest.mark.parametrize("event", sorted(PDU_FOR_EVENT))
@pytest.mark.parametrize(("role", "state"), REACHABLE)
def test_received_pdu_follows_table(role: str, state: State, event: int) -> None:
    conn = drive(role, state)
    conn.receive_data(PDU_FOR_EVENT[event])
    assert conn.state is _expected_next(role, state, event)
    out = sent(conn)
    evs = events(conn)
    cell = GRID_CELLS[(state.value, event)]
    if cell in ("AA-8", "AA-1"):
        reason = 1 if event == 19 else 2
        assert out == abort_bytes(2, reason)
        assert evs == [Aborted(2, reason, True), TransportShouldClose()]
    elif cell == "AA-7":
        assert out == abort_bytes(2, 1 if event == 19 else 2)
    elif cell in ("AA-6", None):
        assert out == b"" and evs == []
    else:
        assert out == b""  # no other action answers the peer by itself

