"""Application-layer tests without sockets and without sleeps, on a fake clock.

The real blocking client (``AE.associate`` -> :func:`dicomnet.client.request_association` ->
:class:`~dicomnet.association.Association`, the DIMSE provider, the Upper Layer state machine)
talks to an in-memory acceptor built from dicomnet's own sans-IO pieces (``ul`` connection,
``negotiate``, DIMSE provider, ``services.dispatch.answer``, ``services.qr.find``); see
:mod:`tests.inmemory`. Time is virtual: a wait that nothing can end before a deadline jumps
the :class:`~tests.inmemory.FakeClock` to it. Every test runs with ``socket.socket`` and
``time.sleep`` made to fail, so none of it can open a socket or sleep.
"""

from __future__ import annotations

import copy
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.examples import ct

from dicomnet.ae import AE
from dicomnet.client import build_rq
from dicomnet.events import EVT_C_FIND, EVT_C_STORE, Event
from dicomnet.services import qr
from dicomnet.settings import Settings
from dicomnet.transport.base import Driver
from dicomnet.ul.connection import RequestorConnection
from dicomnet.ul.events import (
    Aborted,
    AssociationAccepted,
    AssociationRequested,
    PDataReceived,
    ReleaseConfirmed,
)
from dicomnet.ul.fsm import State
from tests.inmemory import (
    FakeClock,
    InMemoryAcceptor,
    InMemoryNetwork,
    MemoryDriver,
    link,
)

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
SUCCESS, CANCEL, PENDING = 0x0000, 0xFE00, 0xFF00
HOST, PORT = "scp.memory", 104


# --- fixtures ---------------------------------------------------------------------------------


class _NoSocket(socket.socket):
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("an in-memory test opened a socket")


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"an in-memory test slept {seconds} s")


@pytest.fixture(autouse=True)
def _no_sockets_no_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "socket", _NoSocket)
    monkeypatch.setattr(socket, "socketpair", _NoSocket)
    monkeypatch.setattr(socket, "create_connection", _NoSocket)
    monkeypatch.setattr(time, "sleep", _no_sleep)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def network(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> InMemoryNetwork:
    net = InMemoryNetwork(clock)
    net.install(monkeypatch)
    return net


def scp_settings(max_pdu: int = 16384) -> Settings:
    settings = Settings("MEMSCP")
    settings.maximum_pdu_size = max_pdu
    for uid in (VERIFICATION, CT, STUDY_FIND):
        settings.add_supported_context(uid)
    return settings


def scu_ae() -> AE:
    ae = AE("MEMSCU")
    for uid in (VERIFICATION, CT, STUDY_FIND):
        ae.add_requested_context(uid)
    return ae


def state(endpoint: InMemoryAcceptor) -> State:
    """The endpoint's Upper Layer state (PS3.8 Table 9-10)."""
    return endpoint.conn.state


def study_query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = ""
    query.StudyInstanceUID = ""
    return query


def match(n: int) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = f"P{n}"
    ds.StudyInstanceUID = f"1.2.3.{n}"
    return ds


# --- 1. a whole association in memory -----------------------------------------------------------


def test_echo_and_store_succeed_without_sockets(network: InMemoryNetwork, clock: FakeClock) -> None:
    stored: list[Dataset] = []

    def on_store(event: Event[Any]) -> int:
        stored.append(event.dataset)
        return SUCCESS

    network.listen(HOST, PORT, lambda: InMemoryAcceptor(
        scp_settings(max_pdu=4096), clock, handlers={EVT_C_STORE: on_store}))  # fmt: skip
    ae = scu_ae()
    assoc = ae.associate(HOST, PORT, ae_title="MEMSCP")
    assert assoc.is_established, assoc.failure_reason
    assert isinstance(assoc.driver, MemoryDriver) and isinstance(assoc.driver, Driver)
    (peer,) = network.accepted
    assert peer.assoc.is_established and state(peer) is State.STA6
    assert {cx.abstract_syntax for cx in assoc.accepted_contexts} == {VERIFICATION, CT, STUDY_FIND}

    echo = assoc.send_c_echo()
    assert echo.Status == SUCCESS

    dataset = copy.deepcopy(ct)
    status = assoc.send_c_store(dataset)
    assert status.Status == SUCCESS
    assert status.AffectedSOPInstanceUID == dataset.SOPInstanceUID

    # the peer's real provider reassembled what our real provider fragmented
    (received,) = stored
    assert received.SOPInstanceUID == dataset.SOPInstanceUID
    assert received.PatientName == dataset.PatientName
    assert received.PixelData == dataset.PixelData
    assert [type(p).__name__ for _, p in peer.requests] == ["C_ECHO", "C_STORE"]
    pdata = [e for e in peer.driver.events if isinstance(e, PDataReceived)]
    assert len(pdata) > len(dataset.PixelData) // 4096  # cut to the SCP's Maximum Length
    assert peer.finished == [m.MessageID for _, m in peer.requests]

    assoc.release()
    assert assoc.is_released and not assoc.is_aborted, assoc.failure_reason
    # the SCP sent A-RELEASE-RP (AR-4) and waits in Sta13, ARTIM running, for us to close...
    assert peer.assoc.is_released and state(peer) is State.STA13
    assert peer.conn.next_deadline() == clock() + 30.0
    peer.driver.take_turn()  # ... which we did: it reads the EOF and closes too
    assert peer.driver.is_closed and state(peer) is State.STA1
    assert peer.driver.failure is None  # a normal end, not a lost connection
    assert clock.jumps == []  # everything answered at once: virtual time never moved


def test_connect_to_nobody_fails_like_a_refused_connection(network: InMemoryNetwork) -> None:
    assoc = scu_ae().associate("nobody.memory", 104)
    assert not assoc.is_established
    assert assoc.failure_reason == "cannot connect to nobody.memory:104: Connection refused"


# --- 2. DIMSE timeout on the fake clock -------------------------------------------------------


def test_dimse_timeout_aborts_on_the_fake_clock(network: InMemoryNetwork, clock: FakeClock) -> None:
    network.listen(HOST, PORT, lambda: InMemoryAcceptor(scp_settings(), clock, answer_dimse=False))
    ae = scu_ae()
    ae.dimse_timeout = 30
    assoc = ae.associate(HOST, PORT)
    assert assoc.is_established, assoc.failure_reason
    (peer,) = network.accepted
    t0, wall0 = clock(), time.perf_counter()

    status = assoc.send_c_echo()

    wall = time.perf_counter() - wall0
    assert "Status" not in status and len(status) == 0  # no response: the empty status
    assert assoc.is_aborted and not assoc.is_established
    assert assoc.failure_reason == "DIMSE timeout (30.0 s)"
    assert clock() - t0 == 30.0 and clock.jumps == [t0 + 30.0]  # one jump, to the deadline
    assert wall < 1.0  # ... and no real waiting
    assert [type(p).__name__ for _, p in peer.requests] == ["C_ECHO"]  # it arrived, unanswered
    # the peer is told with an A-ABORT (service-user source) and closes
    peer.driver.take_turn()
    assert Aborted(0, 0, False) in peer.driver.events
    assert peer.assoc.is_aborted and state(peer) is State.STA1


@pytest.mark.parametrize(("delay", "answered"), [(29.5, True), (30.5, False)])
def test_dimse_timeout_is_measured_from_the_request(
    network: InMemoryNetwork, clock: FakeClock, delay: float, answered: bool
) -> None:
    """Every answer of the peer is readable ``delay`` virtual seconds after it was sent: with
    a 30 s DIMSE timeout a 29.5 s round trip succeeds and a 30.5 s one times out."""
    network.listen(HOST, PORT, lambda: InMemoryAcceptor(scp_settings(), clock))
    network.requestor_latency = delay
    ae = scu_ae()
    ae.acse_timeout, ae.dimse_timeout = 60, 30
    assoc = ae.associate(HOST, PORT)
    assert assoc.is_established and clock.elapsed == delay  # the A-ASSOCIATE-AC was late too
    t0 = clock()

    status = assoc.send_c_echo()

    if answered:
        assert status.Status == SUCCESS and assoc.is_established
        assert clock() - t0 == delay
    else:
        assert len(status) == 0 and assoc.is_aborted
        assert clock() - t0 == 30.0


# --- 3. ARTIM (PS3.8 9.1.5) and the ACSE timeout -------------------------------------------------


def test_unanswered_association_request_times_out(
    network: InMemoryNetwork, clock: FakeClock
) -> None:
    network.listen(HOST, PORT, lambda: InMemoryAcceptor(
        scp_settings(), clock, answer_association=False))  # fmt: skip
    ae = scu_ae()
    ae.acse_timeout = 15
    wall0 = time.perf_counter()

    assoc = ae.associate(HOST, PORT)

    assert not assoc.is_established and not assoc.is_rejected
    assert assoc.failure_reason == "no answer to the association request within 15.0 s"
    assert clock.elapsed == 15.0 and time.perf_counter() - wall0 < 1.0
    assert isinstance(assoc.driver, MemoryDriver) and assoc.driver.is_closed
    (peer,) = network.accepted
    assert any(isinstance(e, AssociationRequested) for e in peer.driver.events)
    peer.driver.take_turn()  # the requestor gave up with an A-ABORT (PS3.8 AA-3 at the peer)
    assert Aborted(0, 0, False) in peer.driver.events and peer.driver.is_closed


def test_acceptor_artim_expires_before_a_late_association_request(
    network: InMemoryNetwork, clock: FakeClock
) -> None:
    """PS3.8 9.1.5: the acceptor starts ARTIM when the transport connection comes in (AE-5)
    and closes it (AA-2) when no A-ASSOCIATE-RQ came before it expires. The request is on
    the wire for 25 s; the acceptor's ARTIM is 10 s; the requestor would wait 30 s."""
    network.listen(HOST, PORT, lambda: InMemoryAcceptor(
        scp_settings(), clock, artim_timeout=10, latency=25))  # fmt: skip
    ae = scu_ae()
    ae.acse_timeout = 30

    assoc = ae.associate(HOST, PORT)

    assert not assoc.is_established
    assert assoc.failure_reason is not None
    assert assoc.failure_reason.startswith("the peer closed the connection")
    assert clock.elapsed == 10.0  # the acceptor's ARTIM, not the requestor's ACSE timeout
    (peer,) = network.accepted
    assert state(peer) is State.STA1 and peer.driver.is_closed
    assert not any(isinstance(e, AssociationRequested) for e in peer.driver.events)


def test_acceptor_artim_closes_after_release_when_requestor_keeps_the_connection(
    clock: FakeClock,
) -> None:
    """PS3.8 9.1.5 / AR-4: after sending A-RELEASE-RP the acceptor waits (Sta13, ARTIM
    running) for the requestor to close the transport; a requestor that never does is cut off
    when ARTIM expires (Evt18, AA-2)."""
    scp = InMemoryAcceptor(scp_settings(), clock, artim_timeout=10)
    ae = scu_ae()
    rq, _ = build_rq(ae, ae.requested_contexts, "MEMSCP", 16384)
    conn = RequestorConnection(max_pdata_length=16384)
    stubborn = MemoryDriver(conn, clock, name="stubborn requestor", keep_open=True)
    link(stubborn, scp.driver)
    scp.connected()
    conn.request_association(rq, clock())
    conn.transport_connected(clock())
    stubborn.flush()
    assert stubborn.wait_for_activity(None)
    assert isinstance(stubborn.events[-1], AssociationAccepted)
    conn.release_request()
    stubborn.flush()
    assert stubborn.wait_for_activity(None) and stubborn.release_confirmed
    assert ReleaseConfirmed() in stubborn.events and not stubborn.is_closed  # it stays open
    assert state(scp) is State.STA13
    t0 = clock()
    assert scp.conn.next_deadline() == t0 + 10

    assert not scp.driver.wait_for_activity(None)  # nothing but ARTIM can end this wait

    assert clock() - t0 == 10.0
    assert scp.driver.is_closed and state(scp) is State.STA1
    assert scp.assoc.is_released and not scp.assoc.is_aborted
    assert stubborn.peer_closed  # the stubborn side reads EOF next


def test_unanswered_release_aborts_after_the_acse_timeout(
    network: InMemoryNetwork, clock: FakeClock
) -> None:
    network.listen(HOST, PORT, lambda: InMemoryAcceptor(
        scp_settings(), clock, answer_release=False))  # fmt: skip
    ae = scu_ae()
    ae.acse_timeout = 20
    assoc = ae.associate(HOST, PORT)
    assert assoc.is_established
    t0 = clock()

    assoc.release()

    assert clock() - t0 == 20.0
    assert assoc.is_aborted and not assoc.is_released
    assert assoc.failure_reason == "no A-RELEASE-RP in time"
    (peer,) = network.accepted
    peer.driver.take_turn()
    assert Aborted(0, 0, False) in peer.driver.events and peer.assoc.is_aborted


# --- 4. C-CANCEL, deterministically ------------------------------------------------------------


class FindHandler:
    """A C-FIND handler yielding ``count`` matches, recording how far it got."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.produced = 0
        self.closed_early = False
        self.cancel_seen: bool | None = None

    def __call__(self, event: Event[Any]) -> Iterator[tuple[int, Dataset]]:
        try:
            for n in range(1, self.count + 1):
                self.produced = n
                yield PENDING, match(n)
        except GeneratorExit:
            self.closed_early = True
            self.cancel_seen = event.is_cancelled
            raise


def _find_peer(network: InMemoryNetwork, clock: FakeClock, handler: FindHandler) -> None:
    network.listen(HOST, PORT, lambda: InMemoryAcceptor(
        scp_settings(), clock, handlers={EVT_C_FIND: handler}))  # fmt: skip


def test_cancel_sent_before_the_peer_read_the_find(
    network: InMemoryNetwork, clock: FakeClock
) -> None:
    """The C-CANCEL-RQ follows the C-FIND-RQ on the wire before the SCP reads either: the
    peer's provider marks the still-queued request cancelled; the service ends it after the
    one match it pulled before looking, with Cancel (FE00)."""
    handler = FindHandler(5)
    _find_peer(network, clock, handler)
    assoc = scu_ae().associate(HOST, PORT)
    assert assoc.is_established
    (peer,) = network.accepted
    # runs when the SCP's next turn starts, i.e. after our C-FIND-RQ was sent, before it is read
    peer.driver.before_turn.append(lambda: assoc.send_c_cancel(7))

    responses = list(assoc.send_c_find(study_query(), STUDY_FIND, msg_id=7))

    assert [s.Status for s, _ in responses] == [PENDING, CANCEL]
    assert responses[0][1] is not None and responses[0][1].PatientID == "P1"
    assert responses[-1][1] is None
    assert peer.cancelled_at_start == {7: True}  # cancelled while still queued
    assert 7 in peer.provider.cancel_rq
    assert handler.produced == 1 and handler.closed_early and handler.cancel_seen
    assert assoc.is_established and not assoc.outstanding
    assoc.release()
    assert assoc.is_released
    assert peer.finished == [7] and not peer.provider.is_cancelled(7)  # end_operation forgot it


def test_cancel_during_the_operation(
    network: InMemoryNetwork, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SCP is mid-operation (one match sent, waiting for the transport); the C-CANCEL-RQ
    that arrives then is seen by the provider (``start_operation`` was called), the service
    stops before the next match and ends with FE00."""
    monkeypatch.setattr(qr, "FIND_BATCH", 1)  # one match per write: deterministic batches
    handler = FindHandler(5)
    _find_peer(network, clock, handler)
    assoc = scu_ae().associate(HOST, PORT)
    (peer,) = network.accepted

    responses = assoc.send_c_find(study_query(), STUDY_FIND, msg_id=9)
    status, identifier = next(responses)
    assert status.Status == PENDING and identifier is not None and identifier.PatientID == "P1"
    assert 9 in peer.flows and not peer.provider.is_cancelled(9)  # running, not cancelled
    assoc.send_c_cancel(9)
    rest = list(responses)

    assert [s.Status for s, _ in rest] == [CANCEL]
    assert peer.cancelled_at_start == {9: False}
    assert handler.produced == 1 and handler.closed_early and handler.cancel_seen
    assert not assoc.outstanding
    assoc.release()
    assert assoc.is_released and peer.finished == [9]


def test_find_without_cancel_runs_to_success(
    network: InMemoryNetwork, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of the two tests above: same peer, same batching, no C-CANCEL."""
    monkeypatch.setattr(qr, "FIND_BATCH", 1)
    handler = FindHandler(5)
    _find_peer(network, clock, handler)
    assoc = scu_ae().associate(HOST, PORT)
    (peer,) = network.accepted

    responses = list(assoc.send_c_find(study_query(), STUDY_FIND, msg_id=3))

    assert [s.Status for s, _ in responses] == [PENDING] * 5 + [SUCCESS]
    assert [i.PatientID for _, i in responses[:-1] if i is not None] == [
        f"P{n}" for n in range(1, 6)
    ]
    assert handler.produced == 5 and not handler.closed_early
    assert peer.cancelled_at_start == {3: False} and not peer.provider.cancel_rq
    assoc.release()
    assert assoc.is_released and peer.finished == [3]
    assert clock.jumps == []
