"""Storage Commitment Push Model SCP (dicomnet.archive.commitment, PS3.4 Annex J) over real
loopback associations: a dicomnet SCU asks, the archive's CommitmentService answers.

The reports are decoded with pydicom in the tests (an independent reader of what our encoder
wrote), except for the 100 000-reference request, read with the streaming reader.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence as PSequence

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.archive.commitment import (
    SOP_CLASS,
    WELL_KNOWN_INSTANCE,
    CommitmentReport,
    CommitmentRequest,
    CommitmentService,
    FailureReason,
    MalformedRequest,
    StoredInstance,
    encode_request,
    new_transaction_uid,
)
from dicomnet.archive.scp import Archive, archive_ae
from dicomnet.archive.workflow_db import open_workflow
from dicomnet.association import Association
from dicomnet.cli.qrscp_workflow import workflow_location
from dicomnet.datasource import DataSource
from tests.archive.conftest import BACKENDS, index_location
from tests.conftest import free_port

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG = "1.2.840.10008.1.2.2"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SYNTAXES = [EXPLICIT, IMPLICIT]


# --- fixtures ---------------------------------------------------------------------------------


def make_ct(n: int) -> Dataset:
    ds = Dataset()
    ds.PatientID = "PID1"
    ds.PatientName = "Commit^Test"
    ds.StudyInstanceUID = "2.25.7001"
    ds.SeriesInstanceUID = "2.25.7001.1"
    ds.Modality = "CT"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = f"2.25.7001.1.{n}"
    ds.InstanceNumber = n
    return ds


def encode(ds: Dataset, ts: str = IMPLICIT) -> bytes:
    buf = DicomBytesIO()
    buf.is_little_endian = ts != BIG
    buf.is_implicit_VR = ts == IMPLICIT
    write_dataset(buf, ds)
    return buf.getvalue()


class States:
    """Records CommitmentService's on_state calls; waits for one without polling."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: list[tuple[str, str, str | None]] = []

    def __call__(self, txn: str, state: str, detail: str | None) -> None:
        with self.cond:
            self.seen.append((txn, state, detail))
            self.cond.notify_all()

    def wait(self, txn: str, state: str, timeout: float = 15.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(t == txn and s == state for t, s, _ in self.seen),
                                    timeout)  # fmt: skip
        assert ok, f"{state} for {txn} not seen: {self.seen}"


@dataclass
class Report:
    event_type: int | None
    info: Dataset
    calling_ae: str
    roles: dict[str, tuple[int, int]] = field(default_factory=dict)


class Listener:
    """The requestor's own SCP side for reports sent on a new association (PS3.4 J.3.3.1.3):
    grants the Storage Commitment SCP the SCP role it proposes."""

    def __init__(self, aet: str = "MODALITY") -> None:
        ae = AE(aet)
        ae.add_supported_context(SOP_CLASS, SYNTAXES, scu_role=True, scp_role=True)
        self.cond = threading.Condition()
        self.reports: list[Report] = []
        self.server = ae.start_server(("127.0.0.1", 0), block=False,
                                      evt_handlers=[(evt.EVT_N_EVENT_REPORT, self.handle)])  # fmt: skip
        self.port = self.server.address[1]

    def handle(self, event: evt.Event) -> int:
        assoc = event.assoc
        roles = {uid: (int(r.scu_role), int(r.scp_role))
                 for uid, r in assoc.requestor.role_selections.items()}  # fmt: skip
        report = Report(event.event_type, event.dataset, assoc.requestor.ae_title, roles)
        with self.cond:
            self.reports.append(report)
            self.cond.notify_all()
        return 0

    def wait(self, n: int = 1, timeout: float = 15.0) -> list[Report]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.reports) >= n, timeout), self.reports
            return list(self.reports)

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class Scp:
    archive: Archive
    service: CommitmentService
    port: int
    states: States
    db_path: str
    server: Any

    def path_of(self, sop_instance: str) -> str:
        item = self.archive.index.get_instance(sop_instance)
        assert item is not None
        return item.path


@dataclass
class Site:
    """Where a test's archive lives: its storage folder, and its index (None: SQLite in the
    storage folder; else a PostgreSQL database, which then holds the workflow state too)."""

    root: Path
    db: str | None


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    """The tests run once per backend (:data:`tests.archive.conftest.BACKENDS`)."""
    db = index_location(request, tmp_path) if request.param == "postgresql" else None
    return Site(tmp_path, db)


def start_scp(site: Site, destinations: Mapping[str, tuple[str, int]] | None = None,
              **options: Any) -> Scp:  # fmt: skip
    archive = Archive(site.root / "storage", site.db, durability="safe", ae_title="ARCHIVE")
    for n in range(1, 8):
        ds = make_ct(n)
        archive.files.store(archive.index, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds)])
    states = States()
    db_path = workflow_location(archive)  # as qrscp does: the PostgreSQL index, or a file
    service = CommitmentService(archive.index, dict(destinations or {}), db_path,
                                ae_title="ARCHIVE", on_state=states, **options)  # fmt: skip
    ae = archive_ae("ARCHIVE")
    ae.add_supported_context(SOP_CLASS, SYNTAXES)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=archive.handlers() + service.handlers())  # fmt: skip
    return Scp(archive, service, server.address[1], states, db_path, server)


@pytest.fixture
def scp(site: Site) -> Iterator[Scp]:
    s = start_scp(site)
    yield s
    s.server.shutdown()
    s.service.close()
    s.archive.close()


class Requestor:
    """A Storage Commitment SCU (dicomnet): N-ACTION, then the report on the same association
    when ``wait_report``."""

    def __init__(self, port: int, aet: str = "MODALITY", ts: Sequence[str] = SYNTAXES) -> None:
        ae = AE(aet)
        ae.dimse_timeout = 15
        ae.add_requested_context(SOP_CLASS, list(ts))
        self.reports: list[Report] = []
        self.assoc: Association = ae.associate(
            "127.0.0.1", port, ae_title="ARCHIVE",
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, self.handle)],
        )  # fmt: skip
        assert self.assoc.is_established

    def handle(self, event: evt.Event) -> int:
        self.reports.append(Report(event.event_type, event.dataset, ""))
        return 0

    @property
    def transfer_syntax(self) -> str:
        ts = self.assoc.find_context(SOP_CLASS).transfer_syntax
        assert ts is not None
        return ts

    def n_action(self, payload: object, action_type: int = 1,
                 instance: str = WELL_KNOWN_INSTANCE) -> Dataset:  # fmt: skip
        status, _reply = self.assoc.send_n_action(payload, action_type, SOP_CLASS, instance)  # type: ignore[arg-type]
        return status

    def commit(self, items: Sequence[tuple[str, str]], txn: str | None = None) -> tuple[str, int]:
        txn = txn or new_transaction_uid()
        status = self.n_action(encode_request(txn, items, self.transfer_syntax))
        return txn, int(status.Status)

    def wait_report(self) -> Report:
        while not self.reports:
            assert self.assoc.pump(), "association lost before the report"
        return self.reports.pop(0)

    def release(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()


def failed_of(info: Dataset) -> dict[str, int]:
    return {i.ReferencedSOPInstanceUID: int(i.FailureReason)
            for i in info.get("FailedSOPSequence", [])}  # fmt: skip


def committed_of(info: Dataset) -> list[str]:
    return [i.ReferencedSOPInstanceUID for i in info.get("ReferencedSOPSequence", [])]


def query(db_path: str, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Rows of the workflow database at ``db_path`` (a SQLite file or a PostgreSQL URL)."""
    backend, _ = open_workflow(db_path)
    try:
        return [tuple(r) for r in backend.fetch(sql, params)]
    finally:
        backend.close()


def rows(db_path: str, txn: str) -> list[tuple[Any, ...]]:
    return query(db_path, "SELECT state, attempts, item_count FROM commitment WHERE "
                          "transaction_uid = ?", (txn,))  # fmt: skip


# --- the codec --------------------------------------------------------------------------------


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG, DEFLATED])
def test_request_round_trip_in_every_framing(ts: str) -> None:
    items = [(CT, f"2.25.1.{n}") for n in range(2000)]  # ~180 KB: several read chunks
    source = encode_request("2.25.99", items, ts)
    request = CommitmentRequest(source, ts)
    assert list(request.items()) == items
    assert request.transaction_uid == "2.25.99" and request.count == 2000


def test_deflated_requests_are_even_whatever_they_deflate_to() -> None:
    """PS3.5 A.5: a deflated stream of odd length gets one trailing NUL (the P-DATA value it
    travels in must be even, PS3.8 Annex E; DCMTK aborts an odd one)."""
    import zlib

    odd = 0
    for n in range(1, 30):
        items = [(CT, f"2.25.1.{k}") for k in range(n)]
        raw = encode_request("2.25.99", items, EXPLICIT).read()
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        odd += len(comp.compress(raw) + comp.flush()) % 2
        deflated = encode_request("2.25.99", items, DEFLATED).read()
        assert len(deflated) % 2 == 0, n
        assert list(CommitmentRequest(DataSource.from_bytes(deflated, DEFLATED),
                                      DEFLATED).items()) == items  # fmt: skip
    assert odd  # some of them deflated to an odd length


def test_a_deflated_request_with_bytes_after_its_stream_is_read_to_the_end() -> None:
    """What follows the end of the deflated stream (the PS3.5 A.5 pad byte a standard peer
    such as DCMTK adds, or anything else) is not data: the reader stops at the stream's end.
    A request larger than one read chunk, padded, used to make the reader spin forever."""
    import zlib

    items = [(CT, f"2.25.1.{k}") for k in range(2000)]
    raw = encode_request("2.25.99", items, EXPLICIT).read()
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = comp.compress(raw) + comp.flush()
    for tail in (b"\0", b"\0\0\0\0", b"garbage!"):
        request = CommitmentRequest(DataSource.from_bytes(stream + tail, DEFLATED), DEFLATED)
        assert list(request.items()) == items


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG])
def test_pydicom_reads_our_request_and_we_read_pydicoms(ts: str) -> None:
    """Our encoder against pydicom's decoder, and pydicom's encoder (with elements we skip:
    nested undefined-length sequences, private tags, Storage Media File-Set ID) against ours."""
    items = [(CT, "2.25.1.1"), (MR, "2.25.1.22")]
    raw = encode_request("2.25.5", items, ts).read()
    buf = DicomBytesIO(raw)
    buf.is_little_endian, buf.is_implicit_VR = ts != BIG, ts == IMPLICIT
    from pydicom.filereader import read_dataset

    ds = read_dataset(buf, ts == IMPLICIT, ts != BIG)  # type: ignore[arg-type]
    assert ds.TransactionUID == "2.25.5"
    assert [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID)
            for i in ds.ReferencedSOPSequence] == items  # fmt: skip

    theirs = Dataset()
    theirs.StorageMediaFileSetID = "MEDIA1"  # (0088,0130): after the sequence in tag order
    theirs.TransactionUID = "2.25.6"
    nested = Dataset()
    nested.CodeValue = "X"
    seq_items = []
    for cls, inst in items:
        it = Dataset()
        it.ReferencedSOPClassUID = cls
        it.ReferencedSOPInstanceUID = inst
        it.PurposeOfReferenceCodeSequence = PSequence([nested])
        it.add_new(0x00091010, "LO", "private")
        seq_items.append(it)
    theirs.ReferencedSOPSequence = PSequence(seq_items)
    theirs.ReferencedSOPSequence.is_undefined_length = True
    for it in theirs.ReferencedSOPSequence:
        it.is_undefined_length_sequence_item = True
    request = CommitmentRequest(DataSource.from_bytes(encode(theirs, ts), ts), ts)
    assert list(request.items()) == items
    assert request.transaction_uid == "2.25.6"


def test_report_reader_reads_failed_and_committed() -> None:
    ds = Dataset()
    ds.TransactionUID = "2.25.9"
    failed = Dataset()
    failed.ReferencedSOPClassUID = CT
    failed.ReferencedSOPInstanceUID = "2.25.1"
    failed.FailureReason = 0x0112
    ok = Dataset()
    ok.ReferencedSOPClassUID = CT
    ok.ReferencedSOPInstanceUID = "2.25.2"
    ds.FailedSOPSequence = PSequence([failed])
    ds.ReferencedSOPSequence = PSequence([ok])
    for ts in (IMPLICIT, EXPLICIT, BIG):
        report = CommitmentReport(DataSource.from_bytes(encode(ds, ts), ts), ts)
        assert [(i.sop_instance_uid, i.failure_reason) for i in report.items()] == [
            ("2.25.1", 0x0112), ("2.25.2", None)]  # fmt: skip
        assert report.transaction_uid == "2.25.9"


@pytest.mark.parametrize(
    ("build", "status"),
    [
        (lambda ds: delattr(ds, "TransactionUID"), 0x0120),
        (lambda ds: delattr(ds, "ReferencedSOPSequence"), 0x0120),
        (lambda ds: setattr(ds, "ReferencedSOPSequence", PSequence([])), 0x0121),
        (lambda ds: delattr(ds.ReferencedSOPSequence[0], "ReferencedSOPInstanceUID"), 0x0120),
        (lambda ds: setattr(ds.ReferencedSOPSequence[0], "ReferencedSOPClassUID", ""), 0x0121),
        (lambda ds: setattr(ds, "TransactionUID", "1.02.3"), 0x0115),  # not a UID (PS3.5 9.1)
    ],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_malformed_requests_are_refused_with_their_status(
    scp: Scp, build: Any, status: int
) -> None:
    """PS3.4 J.3.2.1.3: a failure status, nothing kept, no report (Table J.3-1: Type 1)."""
    ds = Dataset()
    ds.TransactionUID = txn = new_transaction_uid()
    item = Dataset()
    item.ReferencedSOPClassUID = CT
    item.ReferencedSOPInstanceUID = "2.25.7001.1.1"
    ds.ReferencedSOPSequence = PSequence([item])
    build(ds)
    peer = Requestor(scp.port)
    try:
        answer = peer.n_action(DataSource.from_bytes(encode(ds, peer.transfer_syntax),
                                                     peer.transfer_syntax))  # fmt: skip
        assert answer.Status == status, answer
        assert answer.get("ErrorComment")
    finally:
        peer.release()
    assert rows(scp.db_path, txn) == []
    assert peer.reports == []


def test_wrong_action_instance_or_no_data_set(scp: Scp) -> None:
    peer = Requestor(scp.port)
    try:
        good = encode_request(new_transaction_uid(), [(CT, "2.25.7001.1.1")], peer.transfer_syntax)
        assert peer.n_action(good, action_type=2).Status == 0x0123  # No Such Action
        good = encode_request(new_transaction_uid(), [(CT, "2.25.7001.1.1")], peer.transfer_syntax)
        assert peer.n_action(good, instance="1.2.3.4").Status == 0x0112  # not J.3.5's instance
        assert peer.n_action(None).Status == 0x0120  # no Action Information
    finally:
        peer.release()
    assert query(scp.db_path, "SELECT COUNT(*) FROM commitment") == [(0,)]


# --- results ------------------------------------------------------------------------------------


def test_all_present_gives_event_type_1_on_the_same_association(scp: Scp) -> None:
    peer = Requestor(scp.port)
    items = [(CT, f"2.25.7001.1.{n}") for n in (1, 2, 3)]
    try:
        txn, status = peer.commit(items)
        assert status == 0
        report = peer.wait_report()
    finally:
        peer.release()
    assert report.event_type == 1
    assert report.info.TransactionUID == txn
    assert committed_of(report.info) == [i for _, i in items]
    assert [i.ReferencedSOPClassUID for i in report.info.ReferencedSOPSequence] == [CT] * 3
    assert "FailedSOPSequence" not in report.info
    scp.states.wait(txn, "delivered")
    assert rows(scp.db_path, txn) == [("delivered", 0, 3)]
    # delivered: the references are dropped
    assert query(scp.db_path, "SELECT COUNT(*) FROM commitment_item") == [(0,)]


def test_failures_give_event_type_2_with_their_reasons(scp: Scp) -> None:
    os.unlink(scp.path_of("2.25.7001.1.2"))  # deleted behind the index's back
    with open(scp.path_of("2.25.7001.1.3"), "r+b") as f:  # truncated
        f.truncate(os.path.getsize(f.name) - 10)
    with open(scp.path_of("2.25.7001.1.4"), "r+b") as f:  # same size, changed content
        data = f.read()
        at = data.index(b"Commit^Test")
        f.seek(at)
        f.write(b"Tampr^Test!")
    items = [
        (CT, "2.25.7001.1.1"),  # committed
        (CT, "2.25.7001.1.2"),  # 0112H: file gone
        (CT, "2.25.7001.1.3"),  # 0110H: truncated
        (CT, "2.25.7001.1.4"),  # 0110H: checksum
        (MR, "2.25.7001.1.5"),  # 0119H: stored as CT
        (CT, "2.25.404"),  # 0112H: never stored
        ("1.2.3.4.5.6", "2.25.405"),  # 0122H: not a storage SOP class
        (CT, "2.25.7001.1.6"),  # committed
    ]
    peer = Requestor(scp.port)
    try:
        txn, status = peer.commit(items)
        assert status == 0
        report = peer.wait_report()
    finally:
        peer.release()
    assert report.event_type == 2
    assert report.info.TransactionUID == txn
    assert failed_of(report.info) == {
        "2.25.7001.1.2": FailureReason.NO_SUCH_OBJECT_INSTANCE,
        "2.25.7001.1.3": FailureReason.PROCESSING_FAILURE,
        "2.25.7001.1.4": FailureReason.PROCESSING_FAILURE,
        "2.25.7001.1.5": FailureReason.CLASS_INSTANCE_CONFLICT,
        "2.25.404": FailureReason.NO_SUCH_OBJECT_INSTANCE,
        "2.25.405": FailureReason.REFERENCED_SOP_CLASS_NOT_SUPPORTED,
    }
    # PS3.4 J.3.3.1.2: every reference is in the report, the committed ones as referenced
    assert committed_of(report.info) == ["2.25.7001.1.1", "2.25.7001.1.6"]
    assert next(i for i in report.info.FailedSOPSequence
                if i.ReferencedSOPInstanceUID == "2.25.7001.1.5").ReferencedSOPClassUID == MR  # fmt: skip


def test_a_file_whose_header_names_another_instance_is_not_committed(scp: Scp) -> None:
    """Without a stored checksum (durability "fast"), the File Meta Information still has to
    name the instance: a file swapped for another is not committed."""
    a, b = scp.path_of("2.25.7001.1.1"), scp.path_of("2.25.7001.1.2")
    size = os.path.getsize(a)
    verdict = scp.service.verdict
    assert verdict(CT, "2.25.7001.1.1", StoredInstance(CT, a, size)) == 0
    assert verdict(CT, "2.25.7001.1.1", StoredInstance(CT, b, os.path.getsize(b))) == 0x0110
    assert verdict(CT, "2.25.7001.1.1", StoredInstance(MR, a, size)) == 0x0119
    assert verdict(CT, "2.25.7001.1.1", StoredInstance(CT, a, size + 1)) == 0x0110
    assert verdict(CT, "2.25.7001.1.1", StoredInstance(CT, a + ".gone", size)) == 0x0112
    assert verdict(CT, "2.25.7001.1.1", StoredInstance(CT, a, size, "0" * 32)) == 0x0110


def test_a_reused_transaction_uid_fails_every_reference(scp: Scp) -> None:
    peer = Requestor(scp.port)
    try:
        txn, _ = peer.commit([(CT, "2.25.7001.1.1")])
        assert peer.wait_report().event_type == 1
        _, status = peer.commit([(CT, "2.25.7001.1.1"), (CT, "2.25.7001.1.2")], txn)
        assert status == 0  # received; PS3.3 C.14.1.1: 0131H per reference
        again = peer.wait_report()
    finally:
        peer.release()
    assert again.event_type == 2
    assert failed_of(again.info) == {"2.25.7001.1.1": 0x0131, "2.25.7001.1.2": 0x0131}


# --- where the report goes ----------------------------------------------------------------------


def test_report_on_a_new_association_after_the_requestor_released(site: Site) -> None:
    listener = Listener("MODALITY")
    scp = start_scp(site, {"MODALITY": ("127.0.0.1", listener.port)})
    try:
        peer = Requestor(scp.port, aet="MODALITY")
        peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)  # a modality that only asks
        txn, status = peer.commit([(CT, "2.25.7001.1.1"), (CT, "2.25.7001.1.7")])
        peer.release()  # PS3.4 J.3.2.1.2: free to release after the N-ACTION-RSP
        assert status == 0
        [report] = listener.wait()
        assert report.event_type == 1
        assert report.info.TransactionUID == txn
        assert committed_of(report.info) == ["2.25.7001.1.1", "2.25.7001.1.7"]
        assert report.calling_ae == "ARCHIVE"
        # PS3.4 J.3.3.1.3 / PS3.7 D.3.3.4: the SCP proposed the SCP role for itself only
        assert report.roles == {SOP_CLASS: (0, 1)}
        scp.states.wait(txn, "delivered")
        assert peer.reports == []
    finally:
        scp.server.shutdown()
        scp.service.close()
        scp.archive.close()
        listener.close()


def test_a_report_refused_on_the_same_association_goes_on_a_new_one(site: Site) -> None:
    """The requestor keeps its association open but has no N-EVENT-REPORT handler: it answers
    our report with 0122H, and the report goes to its address on a new association."""
    listener = Listener("MODALITY")
    scp = start_scp(site, {"MODALITY": ("127.0.0.1", listener.port)})
    try:
        peer = Requestor(scp.port, aet="MODALITY")
        peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
        txn, _ = peer.commit([(CT, "2.25.7001.1.1")])
        assert peer.assoc.pump()  # our report arrives here and is refused (no handler)
        [report] = listener.wait()
        assert report.info.TransactionUID == txn
        scp.states.wait(txn, "delivered")
        assert ("delivered", f"to 127.0.0.1:{listener.port}") in [
            (s, d) for t, s, d in scp.states.seen if t == txn]  # fmt: skip
        peer.release()
    finally:
        scp.server.shutdown()
        scp.service.close()
        scp.archive.close()
        listener.close()


def test_requestor_releasing_while_the_report_is_on_its_way(site: Site) -> None:
    """The requestor releases right when the report goes out on its association (a release
    collision with our N-EVENT-REPORT-RQ): the report still arrives once, on a new one."""
    listener = Listener("MODALITY")
    scp = start_scp(site, {"MODALITY": ("127.0.0.1", listener.port)})
    try:
        for n in range(10):
            peer = Requestor(scp.port, aet="MODALITY")
            peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
            txn, _ = peer.commit([(CT, "2.25.7001.1.1")])
            scp.states.wait(txn, "checked")  # the report is being sent now
            peer.release()
            scp.states.wait(txn, "delivered")
            assert [r.info.TransactionUID for r in listener.wait(n + 1)][n] == txn
        assert len(listener.reports) == 10
    finally:
        scp.server.shutdown()
        scp.service.close()
        scp.archive.close()
        listener.close()


def test_unknown_requestor_waits_for_its_next_association(scp: Scp) -> None:
    """No address for the requestor: the report is kept and goes out on the next association
    on which it asks for a commitment."""
    peer = Requestor(scp.port, aet="NOWHERE")
    peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
    first, _ = peer.commit([(CT, "2.25.7001.1.1")])
    peer.release()
    scp.states.wait(first, "waiting")
    peer = Requestor(scp.port, aet="NOWHERE")
    try:
        second, _ = peer.commit([(CT, "2.25.7001.1.2")])
        reports = [peer.wait_report(), peer.wait_report()]
    finally:
        peer.release()
    assert sorted(r.info.TransactionUID for r in reports) == sorted([first, second])
    scp.states.wait(first, "delivered")


def test_retries_then_gives_up(site: Site) -> None:
    down = free_port()  # nobody listens there
    scp = start_scp(site, {"MODALITY": ("127.0.0.1", down)}, max_attempts=3,
                    retry_delays=(0.05, 0.1))  # fmt: skip
    try:
        peer = Requestor(scp.port, aet="MODALITY")
        peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
        txn, _ = peer.commit([(CT, "2.25.7001.1.1")])
        peer.release()
        scp.states.wait(txn, "failed")
        assert [s for t, s, _ in scp.states.seen if t == txn] == [
            "accepted", "checked", "retry", "retry", "failed"]  # fmt: skip
        assert rows(scp.db_path, txn) == [("failed", 3, 1)]
    finally:
        scp.server.shutdown()
        scp.service.close()
        scp.archive.close()


class BrokenLookup:
    """The index is unavailable: the check fails before anything is decided."""

    def lookup(self, sop_instance_uids: Sequence[str]) -> Mapping[str, StoredInstance]:
        raise RuntimeError("index unavailable")


@pytest.mark.parametrize("stage", ["accepted", "checked"])
def test_pending_commitments_survive_a_restart(site: Site, stage: str) -> None:
    """A request accepted (stage "accepted": the check itself failed; "checked": the
    destination was down) is in the database when the service closes; a new service on the
    same database resumes it and delivers the report."""
    down = free_port()
    scp = start_scp(site, {"MODALITY": ("127.0.0.1", down)}, retry_delays=(3600,))
    if stage == "accepted":
        scp.service.close()
        scp.service = CommitmentService(BrokenLookup(), {}, scp.db_path, ae_title="ARCHIVE",
                                        on_state=scp.states, retry_delays=(3600,))  # fmt: skip
        scp.server.shutdown()
        ae = archive_ae("ARCHIVE")
        ae.add_supported_context(SOP_CLASS, SYNTAXES)
        scp.server = ae.start_server(("127.0.0.1", 0), block=False,
                                     evt_handlers=scp.archive.handlers() + scp.service.handlers())  # fmt: skip
        scp.port = scp.server.address[1]
    listener = Listener("MODALITY")
    try:
        peer = Requestor(scp.port, aet="MODALITY")
        peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
        txn, status = peer.commit([(CT, "2.25.7001.1.1"), (CT, "2.25.404")])
        peer.release()
        assert status == 0
        scp.states.wait(txn, "retry")  # the first attempt failed; the next one is an hour away
        scp.server.shutdown()
        scp.service.close()  # the process ends
        assert rows(scp.db_path, txn) == [(stage, 1, 2)]

        states = States()
        service = CommitmentService(scp.archive.index, {"MODALITY": ("127.0.0.1", listener.port)},
                                    scp.db_path, ae_title="ARCHIVE", on_state=states)  # fmt: skip
        try:
            assert service.resume() == 1
            [report] = listener.wait()
            states.wait(txn, "delivered")
            assert service.state(txn) == "delivered"
        finally:
            service.close()
        assert report.event_type == 2
        assert report.info.TransactionUID == txn
        assert failed_of(report.info) == {"2.25.404": 0x0112}
        assert committed_of(report.info) == ["2.25.7001.1.1"]
    finally:
        scp.archive.close()
        listener.close()


def test_resume_shares_nothing_and_sends_waiting_reports_once_an_address_is_known(
    site: Site,
) -> None:
    """Two services opened on one database at once (as ``qrscp --workers`` runs them): the
    pending work of a closed one is taken over by exactly one; a report that waited for lack
    of an address goes out once the address is configured."""
    down = free_port()
    scp = start_scp(site, {"MODALITY": ("127.0.0.1", down)}, retry_delays=(3600,))
    listener = Listener("MODALITY")
    try:
        peer = Requestor(scp.port, aet="MODALITY")
        peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
        retried, _ = peer.commit([(CT, "2.25.7001.1.1")])
        peer.release()
        peer = Requestor(scp.port, aet="ELSEWHERE")  # no address: waits
        peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
        waiting, _ = peer.commit([(CT, "2.25.7001.1.2")])
        peer.release()
        scp.states.wait(retried, "retry")
        scp.states.wait(waiting, "waiting")
        scp.server.shutdown()
        scp.service.close()

        where = {
            "MODALITY": ("127.0.0.1", listener.port),
            "ELSEWHERE": ("127.0.0.1", listener.port),
        }
        states = States()
        first = CommitmentService(scp.archive.index, where, scp.db_path, on_state=states)
        second = CommitmentService(scp.archive.index, where, scp.db_path, on_state=states)
        try:
            assert first.resume() == 2
            assert second.resume() == 0  # the first one owns them now
            states.wait(retried, "delivered")
            states.wait(waiting, "delivered")
        finally:
            first.close()
            second.close()
        got = sorted(r.info.TransactionUID for r in listener.wait(2))
        assert got == sorted([retried, waiting]) and len(listener.reports) == 2
    finally:
        scp.archive.close()
        listener.close()


# --- a large request ----------------------------------------------------------------------------


class PeakMemory:
    """How much the process's memory grew at its peak inside the block: the resident set's
    high-water mark, reset on entry (Linux: /proc/self/clear_refs), else tracemalloc's peak
    (slower: every allocation is traced)."""

    def __init__(self) -> None:
        self.peak = 0
        self.how = "VmHWM"
        self._base = 0

    @staticmethod
    def _status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        raise OSError(key)

    def __enter__(self) -> PeakMemory:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current resident set
            self._base = self._status("VmRSS")
        except OSError:
            self.how = "tracemalloc"
            tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.how == "tracemalloc":
            self.peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        else:
            self.peak = self._status("VmHWM") - self._base


class HundredThousand:
    """A stand-in index of 100 000 entries: ten real files, the rest gone (0112H)."""

    def __init__(self, real: Mapping[str, StoredInstance]) -> None:
        self.real = real
        self.calls = 0

    def lookup(self, sop_instance_uids: Sequence[str]) -> Mapping[str, StoredInstance]:
        self.calls += 1
        assert len(sop_instance_uids) <= 500  # page by page
        return {u: self.real[u] for u in sop_instance_uids if u in self.real}


def test_a_100k_reference_request_in_bounded_memory(site: Site) -> None:
    scp = start_scp(site)
    real = {}
    for n in range(1, 8):
        uid = f"2.25.7001.1.{n}"
        item = scp.archive.index.get_instance(uid)
        assert item is not None
        real[uid] = StoredInstance(CT, item.path, os.path.getsize(item.path))
    lookup = HundredThousand(real)
    scp.service.close()
    scp.service = CommitmentService(lookup, {}, scp.db_path, ae_title="ARCHIVE")
    scp.server.shutdown()
    ae = archive_ae("ARCHIVE")
    ae.add_supported_context(SOP_CLASS, SYNTAXES)
    scp.server = ae.start_server(("127.0.0.1", 0), block=False,
                                 evt_handlers=scp.service.handlers())  # fmt: skip
    n_items = 100_000
    items = [(CT, f"2.25.7001.1.{n}") for n in range(1, 8)]
    items += [(CT, f"2.25.8{n:07d}.{n}") for n in range(n_items - len(items))]
    peer = Requestor(scp.server.address[1])
    received: Counter[int | None] = Counter()  # failure reason (None: committed) -> count
    sample: dict[str, int | None] = {}

    def handle(event: evt.Event) -> int:  # the report, read as a stream too
        assert event.data_source is not None and event.context is not None
        report = CommitmentReport(event.data_source, event.context.transfer_syntax)
        for item in report.items():
            received[item.failure_reason] += 1
            if item.sop_instance_uid in ("2.25.7001.1.1", "2.25.80000000.0"):
                sample[item.sop_instance_uid] = item.failure_reason
        peer.reports.append(Report(event.event_type, Dataset(), ""))
        return 0

    peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
    peer.assoc.bind(evt.EVT_N_EVENT_REPORT, handle)
    try:
        payload = encode_request("2.25.100000", iter(items), peer.transfer_syntax,
                                 spool_dir=str(site.root))  # fmt: skip
        assert payload.is_file  # spooled, not held
        with PeakMemory() as memory:
            start = time.monotonic()
            status = peer.n_action(payload)
            answered = time.monotonic() - start
            report = peer.wait_report()
            elapsed = time.monotonic() - start
    finally:
        peer.release()
        scp.server.shutdown()
        scp.service.close()
        scp.archive.close()
    assert status.Status == 0
    assert report.event_type == 2
    assert received == {None: 7, 0x0112: n_items - 7}
    assert sample == {"2.25.7001.1.1": None, "2.25.80000000.0": 0x0112}
    assert lookup.calls == n_items // 500
    # both ends in this process, the request and the report streamed: tens of MB at most,
    # where decoding the request alone as pydicom Datasets takes ~160 MB (and ~4 s)
    assert memory.peak < 48 << 20, f"peak {memory.peak >> 20} MB ({memory.how})"
    print(
        f"100k: N-ACTION answered in {answered:.2f} s, report read after {elapsed:.2f} s, "
        f"peak +{memory.peak / 2**20:.1f} MB ({memory.how})"
    )


def test_max_items_is_a_resource_limitation(site: Site) -> None:
    scp = start_scp(site, max_items=10)
    peer = Requestor(scp.port)
    try:
        txn, status = peer.commit([(CT, f"2.25.1.{n}") for n in range(11)])
        assert status == 0x0213
        assert rows(scp.db_path, txn) == []
    finally:
        peer.release()
        scp.server.shutdown()
        scp.service.close()
        scp.archive.close()


def test_truncated_request_is_refused() -> None:
    raw = encode_request("2.25.1", [(CT, "2.25.1.1")], EXPLICIT).read()
    request = CommitmentRequest(DataSource.from_bytes(raw[:-5], EXPLICIT), EXPLICIT)
    with pytest.raises(MalformedRequest) as err:
        list(request.items())
    assert err.value.status == 0x0110
