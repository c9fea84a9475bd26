"""pynetdicom as the SCU against the dicomnet server, over real loopback associations.

Every service the server offers is exercised through an independent implementation: C-ECHO,
C-STORE (datasets compared), C-FIND (with C-CANCEL), C-GET (sub-operations on the same
association, with and without the SCP role), C-MOVE (to a second dicomnet server as the
destination), all six DIMSE-N services, the asynchronous operations window, the association
limit (A-ASSOCIATE-RJ 2/3/2) and a handler that raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pynetdicom")

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE as PAE
from pynetdicom import build_role
from pynetdicom import evt as pevt
from pynetdicom.dimse_primitives import C_ECHO as P_C_ECHO
from pynetdicom.pdu_primitives import AsynchronousOperationsWindowNegotiation

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.server import Server, start_server

pytestmark = pytest.mark.interop

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
P_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
P_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
P_GET = "1.2.840.10008.5.1.4.1.2.1.3"
MWL_FIND = "1.2.840.10008.5.1.4.31"
MPPS = "1.2.840.10008.3.1.2.3.3"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"
TS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


@pytest.fixture(autouse=True)
def _park_pynetdicom_reactor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work around a race in pynetdicom 3.0 (the peer, not us): its ``send_*`` methods pause
    the association's reactor thread by clearing an event and then reading a ``_is_paused``
    flag that is still True from the previous operation while the reactor is between waking
    and re-parking. When the peer answers within microseconds (as our server does), the
    reactor takes the response off the queue, logs "Received unexpected ... service message"
    and ``send_*`` times out. A 2 ms pause before each request lets the reactor park first."""
    from pynetdicom.association import Association as PynetdicomAssociation

    for name in ("send_c_echo", "send_c_store", "send_c_find", "send_c_get", "send_c_move",
                 "send_n_event_report", "send_n_get", "send_n_set", "send_n_action",
                 "send_n_create", "send_n_delete"):  # fmt: skip
        original = getattr(PynetdicomAssociation, name)

        def delayed(self: Any, *args: Any, __original: Any = original, **kw: Any) -> Any:
            time.sleep(0.002)
            return __original(self, *args, **kw)

        monkeypatch.setattr(PynetdicomAssociation, name, delayed)


def make_ct(i: int = 0, sop_class: str = CT, ts: str = ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = f"Doe^John{i}"
    ds.PatientID = f"PID{i:04d}"
    ds.StudyInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Rows = 4
    ds.Columns = 4
    ds.BitsAllocated = 16
    ds.PixelData = bytes(range(32))
    return ds


def server_ae(**limits: Any) -> AE:
    ae = AE("DICOMNET")
    for uid in (VERIFICATION, P_FIND, P_GET, P_MOVE, MWL_FIND, MPPS, STORAGE_COMMITMENT, PRINTER):
        ae.add_supported_context(uid, TS)
    for uid in (CT, MR):
        ae.add_supported_context(uid, TS)
    for name, value in limits.items():
        setattr(ae, name, value)
    return ae


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Server] = []

    def _start(ae: AE, handlers: Any = None, **kw: Any) -> Server:
        server = start_server(ae, ("127.0.0.1", 0), block=False, handlers=handlers, **kw)
        assert server is not None
        started.append(server)
        return server

    yield _start
    for server in started:
        server.shutdown()


def scu(*contexts: str, **kw: Any) -> PAE:
    ae = PAE(ae_title="PYSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for uid in contexts:
        ae.add_requested_context(uid, TS)
    return ae


def test_echo_default_handler(serve: Any) -> None:
    server = serve(server_ae())
    assoc = scu(VERIFICATION).associate("127.0.0.1", server.address[1], ae_title="DICOMNET")
    assert assoc.is_established
    for _ in range(20):
        assert assoc.send_c_echo().Status == 0x0000
    assert len(server.active_associations) == 1
    assoc.release()
    assert assoc.is_released


def test_echo_handler_status_and_error_comment(serve: Any) -> None:
    seen: list[Any] = []

    def on_echo(event: evt.Event) -> Any:
        seen.append((event.message_id, event.assoc.requestor.ae_title))
        status = Dataset()
        status.Status = 0x0110
        status.ErrorComment = "busy"
        return status

    server = serve(server_ae(), [(evt.EVT_C_ECHO, on_echo)])
    assoc = scu(VERIFICATION).associate("127.0.0.1", server.address[1])
    rsp = assoc.send_c_echo(msg_id=7)
    assoc.release()
    assert rsp.Status == 0x0110
    assert rsp.ErrorComment == "busy"
    assert seen == [(7, "PYSCU")]


def test_store_datasets_arrive_intact(serve: Any) -> None:
    received: dict[str, Dataset] = {}
    metas: list[Any] = []

    def on_store(event: evt.Event) -> int:
        received[event.request.AffectedSOPInstanceUID] = event.dataset
        metas.append(event.file_meta)
        return 0x0000

    server = serve(server_ae(), [(evt.EVT_C_STORE, on_store)])
    sent = [make_ct(i, ts=ImplicitVRLittleEndian) for i in range(5)] + [make_ct(9, MR)]
    ae = PAE(ae_title="PYSCU")
    ae.add_requested_context(CT, ImplicitVRLittleEndian)
    ae.add_requested_context(MR, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", server.address[1])
    statuses = [assoc.send_c_store(ds).Status for ds in sent]
    assoc.release()
    assert statuses == [0] * 6
    for ds in sent:
        got = received[ds.SOPInstanceUID]
        assert got.PatientName == ds.PatientName
        assert got.PixelData == ds.PixelData
        assert got.SOPClassUID == ds.SOPClassUID
    assert metas[0].TransferSyntaxUID == ImplicitVRLittleEndian
    assert metas[-1].TransferSyntaxUID == ExplicitVRLittleEndian
    assert metas[0].MediaStorageSOPInstanceUID == sent[0].SOPInstanceUID


def test_store_without_handler_and_with_raising_handler(serve: Any) -> None:
    server = serve(server_ae())
    assoc = scu(CT).associate("127.0.0.1", server.address[1])
    # no handler: C211H, what pynetdicom answers (its default handler raises) and teaches
    assert assoc.send_c_store(make_ct()).Status == 0xC211
    assoc.release()

    def broken(event: evt.Event) -> int:
        raise RuntimeError("disk on fire")

    server2 = serve(server_ae(), [(evt.EVT_C_STORE, broken)])
    assoc = scu(CT, VERIFICATION).associate("127.0.0.1", server2.address[1])
    rsp = assoc.send_c_store(make_ct())
    assert rsp.Status == 0xC211
    assert "disk on fire" in rsp.ErrorComment
    # the association carries on after a handler exception
    assert assoc.send_c_echo().Status == 0
    assert assoc.send_c_store(make_ct()).Status == 0xC211
    assoc.release()
    assert assoc.is_released


def test_coroutine_store_handler(serve: Any) -> None:
    names: list[str] = []

    async def on_store(event: evt.Event) -> int:
        names.append(str(event.dataset.PatientName))
        return 0xB000

    server = serve(server_ae(), [(evt.EVT_C_STORE, on_store)])
    assoc = scu(CT).associate("127.0.0.1", server.address[1])
    assert assoc.send_c_store(make_ct(3)).Status == 0xB000
    assoc.release()
    assert names == ["Doe^John3"]


def _find_handler(matches: list[Dataset]) -> Any:
    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        for ds in matches:
            if query.PatientID in ("", "*", ds.PatientID):
                out = Dataset()
                out.PatientID = ds.PatientID
                out.PatientName = ds.PatientName
                out.QueryRetrieveLevel = "PATIENT"
                yield 0xFF00, out

    return on_find


def test_find_matches_and_success(serve: Any) -> None:
    data = [make_ct(i) for i in range(12)]
    server = serve(server_ae(), [(evt.EVT_C_FIND, _find_handler(data))])
    assoc = scu(P_FIND, MWL_FIND).associate("127.0.0.1", server.address[1])
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"
    query.PatientName = ""
    results = list(assoc.send_c_find(query, P_FIND))
    ids = [ident.PatientID for status, ident in results if status.Status == 0xFF00]
    assert ids == [ds.PatientID for ds in data]
    assert results[-1][0].Status == 0x0000
    # worklist FIND is the same service with the MWL SOP class
    query.PatientID = "PID0003"
    results = list(assoc.send_c_find(query, MWL_FIND))
    assert [r[1].PatientID for r in results if r[0].Status == 0xFF00] == ["PID0003"]
    assoc.release()


def test_find_handler_failure_status_and_exception(serve: Any) -> None:
    def on_find(event: evt.Event) -> Iterator[tuple[int, Any]]:
        if event.identifier.PatientID == "boom":
            raise ValueError("bad query")
        yield 0xA700, None

    server = serve(server_ae(), [(evt.EVT_C_FIND, on_find)])
    assoc = scu(P_FIND).associate("127.0.0.1", server.address[1])
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "x"
    assert [s.Status for s, _ in assoc.send_c_find(query, P_FIND)] == [0xA700]
    query.PatientID = "boom"
    statuses = [s for s, _ in assoc.send_c_find(query, P_FIND)]
    assert [s.Status for s in statuses] == [0xC311]
    assert "bad query" in statuses[0].ErrorComment
    assoc.release()


def test_find_cancel_is_seen_while_handler_runs(serve: Any) -> None:
    cancelled_at: list[int] = []

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset]]:
        for i in range(500):
            if event.is_cancelled:
                cancelled_at.append(i)
                return
            ds = Dataset()
            ds.PatientID = f"P{i}"
            yield 0xFF00, ds
            time.sleep(0.01)

    server = serve(server_ae(), [(evt.EVT_C_FIND, on_find)])
    assoc = scu(P_FIND).associate("127.0.0.1", server.address[1])
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"
    statuses = []
    cx = assoc._get_valid_context(P_FIND, "", "scu")
    for status, _ in assoc.send_c_find(query, P_FIND, msg_id=41):
        statuses.append(status.Status)
        if len(statuses) == 3:
            assoc.send_c_cancel(41, cx.context_id)
    assoc.release()
    assert statuses[-1] == 0xFE00
    assert 3 <= len(statuses) < 50
    assert cancelled_at and cancelled_at[0] < 50


def _get_handler(data: list[Dataset]) -> Any:
    def on_get(event: evt.Event) -> Iterator[Any]:
        yield len(data)
        for ds in data:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    return on_get


def test_get_sends_sub_operations_on_same_association(serve: Any) -> None:
    data = [make_ct(i) for i in range(4)] + [make_ct(7, MR)]
    server = serve(server_ae(), [(evt.EVT_C_GET, _get_handler(data))])
    got: list[Dataset] = []

    def on_store(event: Any) -> int:
        got.append(event.dataset)
        return 0x0000

    ae = scu(P_GET, CT, MR)
    roles = [build_role(CT, scp_role=True), build_role(MR, scp_role=True)]
    assoc = ae.associate(
        "127.0.0.1", server.address[1], ext_neg=roles, evt_handlers=[(pevt.EVT_C_STORE, on_store)]
    )
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    responses = list(assoc.send_c_get(query, P_GET))
    assoc.release()
    statuses = [s.Status for s, _ in responses]
    assert statuses == [0xFF00] * 5 + [0x0000]
    pending = [s for s, _ in responses[:-1]]
    assert [s.NumberOfRemainingSuboperations for s in pending] == [4, 3, 2, 1, 0]
    assert responses[-1][0].NumberOfCompletedSuboperations == 5
    assert responses[-1][0].NumberOfFailedSuboperations == 0
    assert sorted(d.SOPInstanceUID for d in got) == sorted(d.SOPInstanceUID for d in data)
    assert got[0].PixelData == data[0].PixelData


def test_get_without_scp_role_counts_failures(serve: Any) -> None:
    data = [make_ct(i) for i in range(3)]
    server = serve(server_ae(), [(evt.EVT_C_GET, _get_handler(data))])
    ae = scu(P_GET, CT)
    # MR stored by nobody; CT proposed without the SCP role: sub-operations cannot be sent
    assoc = ae.associate("127.0.0.1", server.address[1])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    responses = list(assoc.send_c_get(query, P_GET))
    assoc.release()
    final, ident = responses[-1]
    # PS3.4 C.4.3.1.4: sub-operations complete, one or more failures (B000); the reason the
    # requestor can act on is in the Error Comment (not A702: nothing ran out of resources)
    assert final.Status == 0xB000
    assert "SCP role" in final.ErrorComment and final.ErrorComment.startswith("3 failed")
    assert final.NumberOfFailedSuboperations == 3
    assert final.NumberOfCompletedSuboperations == 0
    assert sorted(ident.FailedSOPInstanceUIDList) == sorted(d.SOPInstanceUID for d in data)


def test_get_partial_failure_is_b000(serve: Any) -> None:
    data = [make_ct(i) for i in range(2)] + [make_ct(5, MR)]
    server = serve(server_ae(), [(evt.EVT_C_GET, _get_handler(data))])

    def on_store(event: Any) -> int:
        return 0xA700 if event.dataset.SOPClassUID == MR else 0x0000

    ae = scu(P_GET, CT, MR)
    roles = [build_role(CT, scp_role=True), build_role(MR, scp_role=True)]
    assoc = ae.associate(
        "127.0.0.1", server.address[1], ext_neg=roles, evt_handlers=[(pevt.EVT_C_STORE, on_store)]
    )
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    final, ident = list(assoc.send_c_get(query, P_GET))[-1]
    assoc.release()
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (2, 1)
    assert list(ident.FailedSOPInstanceUIDList) == [data[2].SOPInstanceUID] or (
        ident.FailedSOPInstanceUIDList == data[2].SOPInstanceUID
    )


def test_move_to_second_dicomnet_server(serve: Any) -> None:
    stored: list[tuple[str, str | None, int | None]] = []

    def on_dest_store(event: evt.Event) -> int:
        req = event.request
        stored.append(
            (
                event.dataset.SOPInstanceUID,
                req.MoveOriginatorApplicationEntityTitle,
                req.MoveOriginatorMessageID,
            )
        )
        return 0x0000

    dest_ae = AE("DEST")
    dest_ae.add_supported_context(CT, TS)
    dest_ae.add_supported_context(MR, TS)
    dest = serve(dest_ae, [(evt.EVT_C_STORE, on_dest_store)])
    data = [make_ct(i) for i in range(3)] + [make_ct(4, MR)]

    def on_move(event: evt.Event) -> Iterator[Any]:
        if event.move_destination != "DEST":
            yield None, None
            return
        yield "127.0.0.1", dest.address[1]
        yield len(data)
        for ds in data:
            yield 0xFF00, ds

    server = serve(server_ae(), [(evt.EVT_C_MOVE, on_move)])
    assoc = scu(P_MOVE).associate("127.0.0.1", server.address[1])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    responses = list(assoc.send_c_move(query, "DEST", P_MOVE, msg_id=23))
    unknown = list(assoc.send_c_move(query, "NOWHERE", P_MOVE))
    assoc.release()
    assert [s.Status for s, _ in responses] == [0xFF00] * 4 + [0x0000]
    assert responses[-1][0].NumberOfCompletedSuboperations == 4
    assert sorted(s[0] for s in stored) == sorted(d.SOPInstanceUID for d in data)
    assert {(s[1], s[2]) for s in stored} == {("PYSCU", 23)}
    assert [s.Status for s, _ in unknown] == [0xA801]


def test_move_destination_refuses_association(serve: Any) -> None:
    dest_ae = AE("DEST")
    dest_ae.add_supported_context(CT, TS)
    dest_ae.require_calling_aet = ["SOMEONE"]  # rejects us: 1/1/3
    dest = serve(dest_ae)

    def on_move(event: evt.Event) -> Iterator[Any]:
        yield "127.0.0.1", dest.address[1]
        yield 1
        yield 0xFF00, make_ct()

    server = serve(server_ae(), [(evt.EVT_C_MOVE, on_move)])
    assoc = scu(P_MOVE).associate("127.0.0.1", server.address[1])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    responses = list(assoc.send_c_move(query, "DEST", P_MOVE))
    assoc.release()
    assert [s.Status for s, _ in responses] == [0xA801]


def test_n_services(serve: Any) -> None:
    calls: list[tuple[str, Any]] = []

    def reply(name: str) -> Any:
        def handler(event: evt.Event) -> Any:
            calls.append((name, event.request.MessageID))
            if name == "N_DELETE":
                return 0x0000
            ds = Dataset()
            ds.PatientName = f"{name}^reply"
            if name == "N_CREATE":
                ds.SOPInstanceUID = "1.2.3.4.5.6"
            if name in ("N_SET", "N_ACTION", "N_EVENT_REPORT", "N_CREATE"):
                assert event.dataset.PatientID == "IN"
            if name == "N_ACTION":
                assert event.action_type == 1
            if name == "N_EVENT_REPORT":
                assert event.event_type == 2
            if name == "N_GET":
                assert list(event.request.AttributeIdentifierList) == [0x00100010]
            return 0x0000, ds

        return handler

    names = ["N_EVENT_REPORT", "N_GET", "N_SET", "N_ACTION", "N_CREATE", "N_DELETE"]
    handlers = [(getattr(evt, "EVT_" + n), reply(n)) for n in names]
    server = serve(server_ae(), handlers)
    assoc = scu(MPPS, STORAGE_COMMITMENT, PRINTER).associate("127.0.0.1", server.address[1])
    ds = Dataset()
    ds.PatientID = "IN"
    status, out = assoc.send_n_create(ds, MPPS, None)
    assert status.Status == 0 and out.PatientName == "N_CREATE^reply"
    status, out = assoc.send_n_set(ds, MPPS, "1.2.3.4.5.6")
    assert status.Status == 0 and out.PatientName == "N_SET^reply"
    status, out = assoc.send_n_get([0x00100010], PRINTER, PRINTER_INSTANCE)
    assert status.Status == 0 and out.PatientName == "N_GET^reply"
    status, out = assoc.send_n_action(ds, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
    assert status.Status == 0 and out.PatientName == "N_ACTION^reply"
    status, out = assoc.send_n_event_report(ds, 2, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
    assert status.Status == 0 and out.PatientName == "N_EVENT_REPORT^reply"
    status = assoc.send_n_delete(MPPS, "1.2.3.4.5.6")
    assert status.Status == 0
    assoc.release()
    assert [c[0] for c in calls] == ["N_CREATE", "N_SET", "N_GET", "N_ACTION", "N_EVENT_REPORT", "N_DELETE"]


def test_n_service_exception_and_unbound(serve: Any) -> None:
    def broken(event: evt.Event) -> Any:
        raise KeyError("nope")

    server = serve(server_ae(), [(evt.EVT_N_SET, broken)])
    assoc = scu(MPPS).associate("127.0.0.1", server.address[1])
    ds = Dataset()
    ds.PatientID = "IN"
    status, out = assoc.send_n_set(ds, MPPS, "1.2.3.4")
    assert status.Status == 0x0110 and out is None
    status = assoc.send_n_delete(MPPS, "1.2.3.4")  # no handler bound: 0110H, as pynetdicom
    assert status.Status == 0x0110
    assoc.release()


def _echo_burst(port: int, n: int, window: tuple[int, int] | None) -> list[int]:
    """Send n C-ECHO-RQs before reading any response (pynetdicom's DIMSE layer directly)."""
    ae = scu(VERIFICATION)
    ext = []
    if window is not None:
        item = AsynchronousOperationsWindowNegotiation()
        item.maximum_number_operations_invoked, item.maximum_number_operations_performed = window
        ext.append(item)
    assoc = ae.associate("127.0.0.1", port, ext_neg=ext)
    assert assoc.is_established
    cx = assoc._get_valid_context(VERIFICATION, "", "scu")
    # Pause pynetdicom's reactor thread, as its own send_c_* do, so that it does not take our
    # responses off the DIMSE queue.
    assoc._reactor_checkpoint.clear()
    deadline = time.monotonic() + 5
    while not assoc._is_paused and time.monotonic() < deadline:
        time.sleep(0.001)
    for mid in range(1, n + 1):
        rq = P_C_ECHO()
        rq.MessageID = mid
        rq.AffectedSOPClassUID = VERIFICATION
        assoc.dimse.send_msg(rq, cx.context_id)
    statuses = []
    for _ in range(n):
        _, rsp = assoc.dimse.get_msg(block=True)
        assert rsp is not None
        statuses.append(rsp.Status)
    assoc._reactor_checkpoint.set()
    assoc.release()
    return statuses


def test_async_operations_window_runs_requests_concurrently(serve: Any) -> None:
    barrier = threading.Barrier(4, timeout=5)

    def on_echo(event: evt.Event) -> int:
        barrier.wait()  # only passes when 4 handlers run at the same time
        return 0x0000

    ae = server_ae(maximum_operations_performed=4, maximum_operations_invoked=4)
    server = serve(ae, [(evt.EVT_C_ECHO, on_echo)])
    assert _echo_burst(server.address[1], 4, (4, 4)) == [0, 0, 0, 0]


def test_without_window_requests_run_one_at_a_time(serve: Any) -> None:
    running = [0]
    peak = [0]
    lock = threading.Lock()

    def on_echo(event: evt.Event) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return 0x0000

    server = serve(server_ae(), [(evt.EVT_C_ECHO, on_echo)])
    assert _echo_burst(server.address[1], 5, None) == [0] * 5
    assert peak[0] == 1


def test_maximum_associations_rejects_2_3_2(serve: Any) -> None:
    server = serve(server_ae(maximum_associations=2))
    port = server.address[1]
    first = scu(VERIFICATION).associate("127.0.0.1", port)
    second = scu(VERIFICATION).associate("127.0.0.1", port)
    assert first.is_established and second.is_established
    third = scu(VERIFICATION).associate("127.0.0.1", port)
    assert third.is_rejected
    rj = third.acceptor.primitive
    assert (rj.result, rj.result_source, rj.diagnostic) == (2, 3, 2)
    first.release()
    deadline = time.monotonic() + 5
    while len(server.active_associations) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    fourth = scu(VERIFICATION).associate("127.0.0.1", port)
    assert fourth.is_established
    fourth.release()
    second.release()


def test_user_identity_handler(serve: Any) -> None:
    from pynetdicom.pdu_primitives import UserIdentityNegotiation

    def on_user(event: evt.Event) -> tuple[bool, bytes | None]:
        return event.primary_field == b"alice" and event.secondary_field == b"pw", b"token"

    server = serve(server_ae(), [(evt.EVT_USER_ID, on_user)])

    def ident(user: bytes) -> UserIdentityNegotiation:
        item = UserIdentityNegotiation()
        item.user_identity_type = 2
        item.primary_field = user
        item.secondary_field = b"pw"
        item.positive_response_requested = True
        return item

    ok = scu(VERIFICATION).associate("127.0.0.1", server.address[1], ext_neg=[ident(b"alice")])
    assert ok.is_established
    ok.release()
    bad = scu(VERIFICATION).associate("127.0.0.1", server.address[1], ext_neg=[ident(b"mallory")])
    assert bad.is_rejected
    assert bad.acceptor.primitive.result == 1


def test_pynetdicom_get_from_the_archive_converts(tmp_path: Path) -> None:
    """A pynetdicom C-GET SCU that takes Explicit VR Little Endian only (issue 11): the archive
    holds JPEG 2000, JPEG-LS, RLE and JPEG baseline instances and converts each one."""
    import numpy as np
    from pydicom.data import get_testdata_file

    from dicomnet.archive.scp import Archive, archive_ae
    from dicomnet.transcode.syntax import decoder_available

    if not decoder_available("1.2.840.10008.1.2.4.90"):
        pytest.skip("dicomnet[codecs] not installed")
    names = ["MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm",
             "SC_rgb_jpeg_dcmtk.dcm"]  # fmt: skip
    archive = Archive(tmp_path / "arc")
    server = start_server(archive_ae(), ("127.0.0.1", 0), block=False, handlers=archive.handlers())
    try:
        from dicomnet.ae import AE as DNAE

        sender = DNAE("LOADER")
        for n in names:
            ds = dcmread(get_testdata_file(n))
            sender.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
        with sender.associate("127.0.0.1", server.address[1], ae_title="DICOMNET") as assoc:
            for n in names:
                assert assoc.send_c_store(get_testdata_file(n)).Status == 0
        got: dict[str, Dataset] = {}

        def on_store(event: Any) -> int:
            got[event.dataset.SOPInstanceUID] = event.dataset
            got[event.dataset.SOPInstanceUID].file_meta = event.file_meta
            return 0

        ae = PAE(ae_title="PYGET")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
        ae.add_requested_context("1.2.840.10008.5.1.4.1.2.2.3", TS)
        roles = []
        for uid in (MR, "1.2.840.10008.5.1.4.1.1.7"):
            ae.add_requested_context(uid, [ExplicitVRLittleEndian])
            roles.append(build_role(uid, scp_role=True))
        studies = {str(dcmread(get_testdata_file(n)).StudyInstanceUID) for n in names}
        assoc = ae.associate("127.0.0.1", server.address[1], ae_title="DICOMNET",
                             ext_neg=roles, evt_handlers=[(pevt.EVT_C_STORE, on_store)])
        assert assoc.is_established
        for study in studies:
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.StudyInstanceUID = study
            final = list(assoc.send_c_get(query, "1.2.840.10008.5.1.4.1.2.2.3"))[-1][0]
            assert final.Status == 0x0000
        assoc.release()
        for n in names:
            ref = dcmread(get_testdata_file(n))
            back = got[ref.SOPInstanceUID]
            assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, n
            assert np.array_equal(back.pixel_array, ref.pixel_array), n
    finally:
        server.shutdown()
        archive.close()
