"""The notification events of the protocol machinery (EVT_DATA_*, EVT_PDU_*, EVT_ACSE_*,
EVT_DIMSE_*, EVT_FSM_TRANSITION, EVT_ESTABLISHED) fire on both sides of a real association,
with the attributes handlers read; nothing is built for an event nobody is bound to."""

from __future__ import annotations

from collections import defaultdict

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.dimse.messages import C_ECHO_RQ, C_ECHO_RSP
from dicomnet.ul.pdu import AAssociateAC, AAssociateRQ, AReleaseRP, AReleaseRQ, PDataTF

VERIFICATION = "1.2.840.10008.1.1"
WATCHED = [
    evt.EVT_DATA_RECV, evt.EVT_DATA_SENT, evt.EVT_PDU_RECV, evt.EVT_PDU_SENT,
    evt.EVT_ACSE_RECV, evt.EVT_ACSE_SENT, evt.EVT_DIMSE_RECV, evt.EVT_DIMSE_SENT,
    evt.EVT_FSM_TRANSITION, evt.EVT_ESTABLISHED, evt.EVT_ACCEPTED, evt.EVT_RELEASED,
]  # fmt: skip


def _recorder() -> tuple[dict[str, list[evt.Event]], list[tuple[evt.EventType, object]]]:
    seen: dict[str, list[evt.Event]] = defaultdict(list)

    def record(event: evt.Event) -> None:
        seen[event.event.name].append(event)

    return seen, [(e, record) for e in WATCHED]


def _check_side(seen: dict[str, list[evt.Event]], *, requestor: bool) -> None:
    sent = [type(e.pdu) for e in seen["EVT_PDU_SENT"]]
    recv = [type(e.pdu) for e in seen["EVT_PDU_RECV"]]
    if requestor:
        assert sent == [AAssociateRQ, PDataTF, AReleaseRQ]
        assert recv == [AAssociateAC, PDataTF, AReleaseRP]
        assert [type(e.message) for e in seen["EVT_DIMSE_SENT"]] == [C_ECHO_RQ]
        assert [type(e.message) for e in seen["EVT_DIMSE_RECV"]] == [C_ECHO_RSP]
    else:
        assert recv == [AAssociateRQ, PDataTF, AReleaseRQ]
        assert sent == [AAssociateAC, PDataTF, AReleaseRP]
        assert [type(e.message) for e in seen["EVT_DIMSE_RECV"]] == [C_ECHO_RQ]
        assert [type(e.message) for e in seen["EVT_DIMSE_SENT"]] == [C_ECHO_RSP]
    # ACSE: the association control PDUs only (PS3.8 section 7), not P-DATA
    assert all(not isinstance(e.primitive, PDataTF) for e in seen["EVT_ACSE_SENT"])
    assert len(seen["EVT_ACSE_SENT"]) == 2 and len(seen["EVT_ACSE_RECV"]) == 2
    # the bytes: every PDU sent is in the data sent (PDU type bytes 01/02, 04, 05/06)
    data_sent = b"".join(e.data or b"" for e in seen["EVT_DATA_SENT"])
    data_recv = b"".join(e.data or b"" for e in seen["EVT_DATA_RECV"])
    assert data_sent[:1] == (b"\x01" if requestor else b"\x02")
    assert data_recv[:1] == (b"\x02" if requestor else b"\x01")
    # PS3.8 Table 9-10: the transitions name states, events and actions as the standard does
    moves = [(e.current_state, e.fsm_event, e.action, e.next_state)
             for e in seen["EVT_FSM_TRANSITION"]]  # fmt: skip
    if requestor:
        assert moves[0] == ("Sta1", "Evt1", "AE-1", "Sta4")
        assert ("Sta5", "Evt3", "AE-3", "Sta6") in moves
        assert ("Sta6", "Evt9", "DT-1", "Sta6") in moves
        assert ("Sta6", "Evt10", "DT-2", "Sta6") in moves
        assert ("Sta7", "Evt13", "AR-3", "Sta1") in moves
    else:
        assert ("Sta2", "Evt6", "AE-6", "Sta3") in moves
        assert ("Sta3", "Evt7", "AE-7", "Sta6") in moves
        assert ("Sta6", "Evt12", "AR-2", "Sta8") in moves
    assert len(seen["EVT_ESTABLISHED"]) == 1 and len(seen["EVT_ACCEPTED"]) == 1
    assert all(e.assoc is not None for e in seen["EVT_PDU_RECV"][1:])


def test_protocol_events_fire_on_both_sides() -> None:
    server_seen, server_handlers = _recorder()
    scp = AE(ae_title="SCP")
    scp.add_supported_context(VERIFICATION)
    server = scp.start_server(("127.0.0.1", 0), block=False, evt_handlers=server_handlers)
    try:
        client_seen, client_handlers = _recorder()
        scu = AE()
        scu.add_requested_context(VERIFICATION)
        assoc = scu.associate("127.0.0.1", server.address[1], evt_handlers=client_handlers)
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()
    finally:
        server.shutdown()
    _check_side(client_seen, requestor=True)
    _check_side(server_seen, requestor=False)
    assert len(client_seen["EVT_RELEASED"]) == 1 and len(server_seen["EVT_RELEASED"]) == 1


def test_no_observer_without_a_handler() -> None:
    """Unbound protocol events cost nothing: the connection gets no observer at all, and the
    DIMSE provider no message hooks."""
    scp = AE(ae_title="SCP")
    scp.add_supported_context(VERIFICATION)
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        scu = AE()
        scu.add_requested_context(VERIFICATION)
        assoc = scu.associate("127.0.0.1", server.address[1])
        assert assoc.driver is not None and assoc.driver.conn.observer is None
        assert assoc.dimse.on_send_dimse_message is None
        assert assoc.dimse.on_receive_dimse_message is None
        # binding later hooks the provider (DIMSE events) on the live association
        got: list[object] = []
        assoc.bind(evt.EVT_DIMSE_RECV, lambda e: got.append(e.message))
        assert assoc.send_c_echo().Status == 0
        assert [type(m) for m in got] == [C_ECHO_RSP]
        assoc.release()
    finally:
        server.shutdown()
