"""Storage Commitment Push Model (PS3.4 Annex J) against pynetdicom, both ways, over loopback.

* pynetdicom as the SCU against our SCP (a real :class:`dicomnet.archive.scp.Archive` with
  :class:`dicomnet.archive.commitment.CommitmentService`, filled by pynetdicom's C-STOREs):
  the report on the request's association, and on a new association to pynetdicom's own SCP
  after it released (we propose the SCP role, PS3.4 J.3.3.1.3).
* ``dicomnet stgcmtscu`` against a pynetdicom Storage Commitment SCP: the report on the same
  association, and on a separate one (``--port-scp``, run as ``python -m
  dicomnet.cli.stgcmtscu``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pynetdicom")

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as PSequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE as PAE
from pynetdicom import build_role
from pynetdicom import evt as pevt

from dicomnet.archive.commitment import SOP_CLASS, WELL_KNOWN_INSTANCE, CommitmentService
from dicomnet.archive.scp import Archive, archive_ae
from dicomnet.cli import stgcmtscu
from tests.conftest import free_port

pytestmark = pytest.mark.interop

TS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"]


@pytest.fixture(autouse=True)
def _park_pynetdicom_reactor(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom 3.0's ``send_*`` pause its reactor thread by clearing an event and reading a
    flag that may still be set from the previous operation; a peer answering within
    microseconds (ours) then has its response taken by the reactor. A 2 ms pause before each
    request lets the reactor park first (the same work-around as test_scp_pynetdicom)."""
    from pynetdicom.association import Association as PynetdicomAssociation

    for name in ("send_c_store", "send_n_action", "send_n_event_report"):
        original = getattr(PynetdicomAssociation, name)

        def delayed(self: Any, *args: Any, __original: Any = original, **kw: Any) -> Any:
            time.sleep(0.002)
            return __original(self, *args, **kw)

        monkeypatch.setattr(PynetdicomAssociation, name, delayed)


def load_testfiles() -> list[Dataset]:
    out = []
    for name in FILES:
        path = get_testdata_file(name)
        assert path is not None
        out.append(dcmread(path))
    return out


def action_information(txn: str, refs: list[tuple[str, str]]) -> Dataset:
    """PS3.4 Table J.3-1, built with pydicom."""
    ds = Dataset()
    ds.TransactionUID = txn
    items = []
    for sop_class, sop_instance in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        items.append(item)
    ds.ReferencedSOPSequence = PSequence(items)
    return ds


class Reports:
    """What pynetdicom's EVT_N_EVENT_REPORT handler received."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.got: list[tuple[int, Dataset, Any]] = []

    def handle(self, event: Any) -> tuple[int, None]:
        info = event.event_information
        with self.cond:
            self.got.append((event.event_type, info, event.assoc))
            self.cond.notify_all()
        return 0x0000, None  # pynetdicom: (status, event reply)

    def wait(self, timeout: float = 15.0) -> tuple[int, Dataset, Any]:
        with self.cond:
            assert self.cond.wait_for(lambda: self.got, timeout), "no N-EVENT-REPORT"
            return self.got[0]


# --- pynetdicom as the SCU, our archive as the SCP ---------------------------------------------


class OurScp:
    def __init__(self, root: Path, destinations: dict[str, tuple[str, int]]) -> None:
        self.archive = Archive(root, durability="safe", ae_title="ARCHIVE")
        self.service = CommitmentService(
            self.archive.index, destinations, os.path.join(self.archive.files.root,
                                                           "workflow.sqlite"),
            ae_title="ARCHIVE", retrieve_ae_title="ARCHIVE",
        )  # fmt: skip
        ae = archive_ae("ARCHIVE")
        ae.add_supported_context(SOP_CLASS, TS)
        self.server = ae.start_server(("127.0.0.1", 0), block=False,
                                      evt_handlers=self.archive.handlers() + self.service.handlers())  # fmt: skip
        self.port = self.server.address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.service.close()
        self.archive.close()


@pytest.fixture
def pynetdicom_listener() -> Iterator[tuple[Reports, int]]:
    """pynetdicom's own SCP for the report on a new association: it grants the requestor the
    SCP role for Storage Commitment (PS3.7 D.3.3.4)."""
    reports = Reports()
    ae = PAE(ae_title="PYNETDICOM")
    ae.add_supported_context(SOP_CLASS, TS, scu_role=True, scp_role=True)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(pevt.EVT_N_EVENT_REPORT, reports.handle)])  # fmt: skip
    yield reports, server.server_address[1]
    server.shutdown()


def pynetdicom_scu(port: int, reports: Reports | None) -> Any:
    ae = PAE(ae_title="PYNETDICOM")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 15
    for ds in load_testfiles():
        ae.add_requested_context(ds.SOPClassUID, TS)
    ae.add_requested_context(SOP_CLASS, TS)
    handlers = [] if reports is None else [(pevt.EVT_N_EVENT_REPORT, reports.handle)]
    assoc = ae.associate("127.0.0.1", port, ae_title="ARCHIVE", evt_handlers=handlers)
    assert assoc.is_established
    return assoc


def test_pynetdicom_scu_gets_the_report_on_the_same_association(tmp_path: Path) -> None:
    scp = OurScp(tmp_path / "archive", {})
    reports = Reports()
    try:
        assoc = pynetdicom_scu(scp.port, reports)
        try:
            stored = load_testfiles()[:2]
            for ds in stored:
                assert assoc.send_c_store(ds).Status == 0x0000
            refs = [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in stored]
            missing = (str(stored[0].SOPClassUID), generate_uid())  # never stored
            txn = generate_uid()
            status, _ = assoc.send_n_action(action_information(txn, [*refs, missing]), 1,
                                            SOP_CLASS, WELL_KNOWN_INSTANCE)  # fmt: skip
            assert status.Status == 0x0000
            event_type, info, where = reports.wait()
            assert where is assoc  # on the request's own association
        finally:
            assoc.release()
    finally:
        scp.close()
    assert event_type == 2
    assert info.TransactionUID == txn
    assert info.RetrieveAETitle == "ARCHIVE"
    assert [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID)
            for i in info.ReferencedSOPSequence] == refs  # fmt: skip
    [failed] = info.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == missing[1]
    assert failed.FailureReason == 0x0112


def test_pynetdicom_scu_gets_the_report_on_a_new_association(
    tmp_path: Path, pynetdicom_listener: tuple[Reports, int]
) -> None:
    reports, listen_port = pynetdicom_listener
    scp = OurScp(tmp_path / "archive", {"PYNETDICOM": ("127.0.0.1", listen_port)})
    try:
        assoc = pynetdicom_scu(scp.port, None)
        try:
            stored = load_testfiles()
            for ds in stored:
                assert assoc.send_c_store(ds).Status == 0x0000
            refs = [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in stored]
            txn = generate_uid()
            status, _ = assoc.send_n_action(action_information(txn, refs), 1, SOP_CLASS,
                                            WELL_KNOWN_INSTANCE)  # fmt: skip
            assert status.Status == 0x0000
        finally:
            assoc.release()  # PS3.4 J.3.2.1.2: released right after the N-ACTION-RSP
        event_type, info, report_assoc = reports.wait()
    finally:
        scp.close()
    assert event_type == 1
    assert info.TransactionUID == txn
    assert [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID)
            for i in info.ReferencedSOPSequence] == refs  # fmt: skip
    assert "FailedSOPSequence" not in info
    assert report_assoc.requestor.ae_title == "ARCHIVE"
    # we proposed the SCP role only (PS3.7 D.3.3.4) and pynetdicom granted it
    [role] = [r for r in report_assoc.requestor.role_selection.values()]
    assert role.sop_class_uid == SOP_CLASS
    assert (role.scu_role, role.scp_role) == (False, True)


# --- our stgcmtscu against a pynetdicom Storage Commitment SCP ----------------------------------


class PynetdicomScp:
    """A Storage Commitment SCP made of pynetdicom: commits to the instances in ``stored``;
    reports on the request's association, or (``report_to``) on a new one to that port."""

    def __init__(self, stored: set[str], report_to: int | None = None, *,
                 answer: int = 0x0000, report: bool = True) -> None:  # fmt: skip
        self.stored = stored
        self.report_to = report_to
        self.answer = answer
        self.report = report
        self.requests: list[Dataset] = []
        self.threads: list[threading.Thread] = []
        ae = PAE(ae_title="PNSCP")
        ae.add_supported_context(SOP_CLASS, TS)
        self.ae = ae
        self.server = ae.start_server(("127.0.0.1", 0), block=False,
                                      evt_handlers=[(pevt.EVT_N_ACTION, self.handle)])  # fmt: skip
        self.port = self.server.server_address[1]

    def handle(self, event: Any) -> tuple[int, None]:
        info = event.action_information
        self.requests.append(info)
        if self.answer != 0x0000 or not self.report:
            return self.answer, None
        report = Dataset()
        report.TransactionUID = info.TransactionUID
        ok, failed = [], []
        for ref in info.ReferencedSOPSequence:
            item = Dataset()
            item.ReferencedSOPClassUID = ref.ReferencedSOPClassUID
            item.ReferencedSOPInstanceUID = ref.ReferencedSOPInstanceUID
            if ref.ReferencedSOPInstanceUID in self.stored:
                ok.append(item)
            else:
                item.FailureReason = 0x0112
                failed.append(item)
        if failed:
            report.FailedSOPSequence = PSequence(failed)
        if ok:
            report.ReferencedSOPSequence = PSequence(ok)
        event_type = 2 if failed else 1
        calling = event.assoc.requestor.ae_title
        target = self._same if self.report_to is None else self._new
        thread = threading.Thread(target=target, args=(event.assoc, calling, report, event_type))
        thread.start()
        self.threads.append(thread)
        return 0x0000, None

    def _same(self, assoc: Any, calling: str, report: Dataset, event_type: int) -> None:
        status, _ = assoc.send_n_event_report(report, event_type, SOP_CLASS, WELL_KNOWN_INSTANCE)
        assert status.Status == 0x0000

    def _new(self, _assoc: Any, calling: str, report: Dataset, event_type: int) -> None:
        ae = PAE(ae_title="PNSCP")
        ae.add_requested_context(SOP_CLASS, TS)
        assert self.report_to is not None
        assoc = ae.associate("127.0.0.1", self.report_to, ae_title=calling,
                             ext_neg=[build_role(SOP_CLASS, scp_role=True)])  # fmt: skip
        assert assoc.is_established
        status, _ = assoc.send_n_event_report(report, event_type, SOP_CLASS, WELL_KNOWN_INSTANCE)
        assoc.release()
        assert status.Status == 0x0000

    def close(self) -> None:
        for thread in self.threads:
            thread.join(15)
        self.server.shutdown()


def test_stgcmtscu_same_association(capsys: pytest.CaptureFixture[str]) -> None:
    files = [get_testdata_file(n) for n in FILES[:2]]
    ct, mr = (dcmread(f, stop_before_pixels=True) for f in files)  # type: ignore[arg-type]
    scp = PynetdicomScp({str(ct.SOPInstanceUID)})
    try:
        rc = stgcmtscu.main(["127.0.0.1", str(scp.port), *map(str, files), "-aec", "PNSCP",
                             "--report-timeout", "15"])  # fmt: skip
    finally:
        scp.close()
    out = capsys.readouterr().out
    assert rc == 1  # one of two not committed
    assert f"committed {ct.SOPInstanceUID}" in out
    assert f"FAILED    {mr.SOPInstanceUID}" in out and "0x0112 (no such object instance)" in out
    assert "1 of 2 committed" in out
    [request] = scp.requests
    assert [i.ReferencedSOPInstanceUID for i in request.ReferencedSOPSequence] == [
        ct.SOPInstanceUID, mr.SOPInstanceUID]  # fmt: skip


@pytest.mark.parametrize(("answer", "rc", "message"), [
    (0x0000, 6, "no storage commitment report for transaction"),  # never reported
    (0x0110, 1, "storage commitment request refused: 0x0110"),
])  # fmt: skip
def test_stgcmtscu_without_a_report(
    capsys: pytest.CaptureFixture[str], answer: int, rc: int, message: str
) -> None:
    scp = PynetdicomScp(set(), answer=answer, report=False)
    try:
        got = stgcmtscu.main(["127.0.0.1", str(scp.port), str(get_testdata_file(FILES[0])),
                              "-aec", "PNSCP", "--report-timeout", "1"])  # fmt: skip
    finally:
        scp.close()
    assert got == rc
    assert message in capsys.readouterr().err


def test_stgcmtscu_separate_association_as_a_module() -> None:
    files = [get_testdata_file(n) for n in FILES]
    uids = {str(dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}  # type: ignore[arg-type]
    port_scp = free_port()
    scp = PynetdicomScp(uids, report_to=port_scp)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dicomnet.cli.stgcmtscu", "127.0.0.1", str(scp.port),
             *map(str, files), "-aec", "PNSCP", "-aet", "STGCMT", "--port-scp", str(port_scp),
             "--bind-scp", "127.0.0.1", "--report-timeout", "20"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        scp.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("committed ") == 3
    assert "3 of 3 committed" in proc.stdout


def test_stgcmtscu_against_our_scp_separate_association(tmp_path: Path) -> None:
    """Both our ends: the SCU listening (--port-scp), our SCP reporting on a new association
    to the address it has for the SCU's AE title."""
    port_scp = free_port()
    scp = OurScp(tmp_path / "archive", {"STGCMT": ("127.0.0.1", port_scp)})
    files = [str(get_testdata_file(n)) for n in FILES]
    try:
        ae = PAE(ae_title="PYNETDICOM")
        for ds in load_testfiles():
            ae.add_requested_context(ds.SOPClassUID, TS)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="ARCHIVE")
        for ds in load_testfiles()[:2]:
            assert assoc.send_c_store(ds).Status == 0x0000
        assoc.release()
        proc = subprocess.run(
            [sys.executable, "-m", "dicomnet.cli.stgcmtscu", "127.0.0.1", str(scp.port),
             *files, "-aec", "ARCHIVE", "-aet", "STGCMT", "--port-scp", str(port_scp),
             "--bind-scp", "127.0.0.1", "--report-timeout", "20"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        scp.close()
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("committed ") == 2
    assert "0x0112 (no such object instance)" in proc.stdout  # rtplan.dcm was never stored
