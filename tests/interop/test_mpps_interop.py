"""MPPS (PS3.4 Annex F.7, issue 16) against an independent implementation, pynetdicom, both
ways over real loopback associations:

* pynetdicom as the MPPS SCU against our SCP (:mod:`dicomnet.archive.mpps`): create, set,
  complete, then an N-SET of the completed step (0110H with Error Comment and Error ID A710H),
  and the other refusals as pynetdicom reads them (0111H, 0112H, 0120H with its Offending
  Element, 0105H);
* our ``mppsscu`` tool, run as a process (``python -m dicomnet.cli.mppsscu``), against a
  pynetdicom MPPS SCP written here from PS3.4 F.7.2: what arrives is checked attribute by
  attribute, and the tool's output and exit codes for success, refusal and no peer.

DCMTK has no MPPS tool: no DCMTK peer here.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pynetdicom")

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE as PAE
from pynetdicom import evt as pevt

from dicomnet.ae import AE
from dicomnet.archive.mpps import MPPS_SOP_CLASS, MPPSStore, mpps_handlers
from dicomnet.server import Server
from tests.archive.test_mpps import final, step
from tests.cli.helpers import env
from tests.conftest import free_port

pytestmark = pytest.mark.interop

MPPS = MPPS_SOP_CLASS
TS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
TOOL = [sys.executable, "-m", "dicomnet.cli.mppsscu"]


@pytest.fixture(autouse=True)
def _park_pynetdicom_reactor(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom 3.0's send_* can miss a response that arrives within microseconds of the
    request (its reactor thread is still between waking and parking; see
    tests/interop/test_scp_pynetdicom.py): 2 ms before each N-request lets it park first."""
    from pynetdicom.association import Association as PynetdicomAssociation

    for name in ("send_n_create", "send_n_set"):
        original = getattr(PynetdicomAssociation, name)

        def delayed(self: Any, *args: Any, __original: Any = original, **kw: Any) -> Any:
            time.sleep(0.002)
            return __original(self, *args, **kw)

        monkeypatch.setattr(PynetdicomAssociation, name, delayed)


# --- pynetdicom SCU -> our SCP -----------------------------------------------------------------


@pytest.fixture
def our_scp(tmp_path: Path) -> Iterator[tuple[int, MPPSStore]]:
    store = MPPSStore(tmp_path)
    ae = AE(ae_title="DICOMNET")
    ae.add_supported_context(MPPS, TS)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=mpps_handlers(store))
    assert isinstance(server, Server)
    yield int(server.address[1]), store
    server.shutdown()
    store.close()


def _pynetdicom_assoc(port: int) -> Any:
    ae = PAE(ae_title="PYMODALITY")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(MPPS, TS)
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMNET")
    assert assoc.is_established
    return assoc


def test_pynetdicom_scu_create_set_complete_then_refused(our_scp: tuple[int, MPPSStore]) -> None:
    port, store = our_scp
    assoc = _pynetdicom_assoc(port)
    try:
        uid = generate_uid(prefix=None)
        status, reply = assoc.send_n_create(step(study_uid="1.2.826.0.3.1"), MPPS, uid)
        assert status.Status == 0x0000
        assert reply.SOPInstanceUID == uid and reply.PerformedProcedureStepStatus == "IN PROGRESS"

        mod = Dataset()
        mod.PerformedProcedureStepDescription = "CT HEAD WITHOUT CONTRAST"
        status, reply = assoc.send_n_set(mod, MPPS, uid)
        assert status.Status == 0x0000
        assert reply.PerformedProcedureStepDescription == "CT HEAD WITHOUT CONTRAST"

        status, _ = assoc.send_n_set(final(series="1.2.826.0.3.2"), MPPS, uid)
        assert status.Status == 0x0000

        late = Dataset()
        late.CommentsOnThePerformedProcedureStep = "one more thing"
        status, reply = assoc.send_n_set(late, MPPS, uid)
        assert status.Status == 0x0110
        assert status.ErrorComment == "Performed Procedure Step Object may no longer be updated"
        assert status.ErrorID == 0xA710
        assert reply is None
    finally:
        assoc.release()
    stored = store.get(uid)
    assert stored.PerformedProcedureStepStatus == "COMPLETED"
    assert "CommentsOnThePerformedProcedureStep" not in stored
    record = store.record(uid)
    assert record is not None and record.calling_ae_title == "PYMODALITY"
    assert record.study_uids == ("1.2.826.0.3.1",) and record.series_uids == ("1.2.826.0.3.2",)


def test_pynetdicom_scu_sees_each_refusal(our_scp: tuple[int, MPPSStore]) -> None:
    port, store = our_scp
    assoc = _pynetdicom_assoc(port)
    try:
        uid = generate_uid(prefix=None)
        assert assoc.send_n_create(step(), MPPS, uid)[0].Status == 0x0000
        status, _ = assoc.send_n_create(step(), MPPS, uid)
        assert status.Status == 0x0111  # duplicate SOP instance

        status, _ = assoc.send_n_set(final(), MPPS, generate_uid(prefix=None))
        assert status.Status == 0x0112  # no such SOP instance

        incomplete = step()
        del incomplete.PerformedStationAETitle
        status, _ = assoc.send_n_create(incomplete, MPPS, generate_uid(prefix=None))
        # pynetdicom's N-CREATE/N-SET confirmations keep only Error Comment and Error ID of
        # the status fields (not Offending Element): the comment names the attribute
        assert status.Status == 0x0120  # missing attribute
        assert "PerformedStationAETitle (0040,0241)" in status.ErrorComment

        status, _ = assoc.send_n_create(step(PerformedProcedureStepStatus="COMPLETED"), MPPS,
                                        generate_uid(prefix=None))  # fmt: skip
        assert status.Status == 0x0106 and "PerformedProcedureStepStatus" in status.ErrorComment

        not_allowed = Dataset()
        not_allowed.PatientID = "SOMEONE ELSE"
        status, _ = assoc.send_n_set(not_allowed, MPPS, uid)
        assert status.Status == 0x0105 and "PatientID (0010,0020)" in status.ErrorComment
    finally:
        assoc.release()
    assert [r.sop_instance_uid for r in store.find()] == [uid]
    assert store.get(uid).PatientID == "PID1"


# --- our mppsscu -> a pynetdicom SCP -----------------------------------------------------------


class PynetdicomMPPS:
    """A minimal MPPS SCP on pynetdicom, following PS3.4 F.7.2.1.3 / F.7.2.2.3."""

    def __init__(self) -> None:
        self.steps: dict[str, Dataset] = {}
        self.requests: list[tuple[str, str, Dataset]] = []
        ae = PAE(ae_title="PYMPPS")
        ae.add_supported_context(MPPS, TS)
        self.port = free_port()
        handlers = [(pevt.EVT_N_CREATE, self.on_create), (pevt.EVT_N_SET, self.on_set)]
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=handlers)  # fmt: skip

    def on_create(self, event: Any) -> Any:
        uid = str(event.request.AffectedSOPInstanceUID)
        ds = event.attribute_list
        self.requests.append(("N-CREATE", uid, ds))
        if uid in self.steps:
            return 0x0111, None
        if ds.get("PerformedProcedureStepStatus") != "IN PROGRESS":
            return 0x0106, None
        stored = copy.deepcopy(ds)
        stored.SOPInstanceUID = uid
        self.steps[uid] = stored
        return 0x0000, stored

    def on_set(self, event: Any) -> Any:
        uid = str(event.request.RequestedSOPInstanceUID)
        mod = event.modification_list
        self.requests.append(("N-SET", uid, mod))
        current = self.steps.get(uid)
        if current is None:
            return 0x0112, None
        if current.PerformedProcedureStepStatus in ("COMPLETED", "DISCONTINUED"):
            status = Dataset()
            status.Status = 0x0110
            status.ErrorComment = "Performed Procedure Step Object may no longer be updated"
            status.ErrorID = 0xA710
            return status, None
        for elem in mod:
            current[elem.tag] = elem
        return 0x0000, mod

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def py_scp() -> Iterator[PynetdicomMPPS]:
    scp = PynetdicomMPPS()
    yield scp
    scp.stop()


def mppsscu(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TOOL, "127.0.0.1", str(port), "-aec", "PYMPPS", *args],
                          capture_output=True, text=True, timeout=60, env=env())  # fmt: skip


def _error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_mppsscu_create_complete_and_refused(py_scp: PynetdicomMPPS) -> None:
    r = mppsscu(py_scp.port, "-q", "-aet", "CT01", "create", "-k", "PatientID=PID9",
                "-k", "PatientName=Doe^Jane", "-k", "Modality=MR",
                "-k", "ScheduledStepAttributesSequence[0].StudyInstanceUID=1.2.826.0.4.1",
                "-k", "ScheduledStepAttributesSequence[0].AccessionNumber=ACC9")  # fmt: skip
    assert r.returncode == 0, r.stderr
    uid = r.stdout.strip()
    assert uid.startswith("2.25.") and uid in py_scp.steps
    op, got_uid, ds = py_scp.requests[0]
    assert (op, got_uid) == ("N-CREATE", uid)
    assert ds.PerformedProcedureStepStatus == "IN PROGRESS"
    assert ds.PatientID == "PID9" and ds.PatientName == "Doe^Jane" and ds.Modality == "MR"
    assert ds.PerformedStationAETitle == "CT01"  # -aet
    assert len(ds.PerformedProcedureStepStartDate) == 8 and ds.PerformedProcedureStepStartTime
    assert ds.PerformedProcedureStepID
    item = ds.ScheduledStepAttributesSequence[0]
    assert item.StudyInstanceUID == "1.2.826.0.4.1" and item.AccessionNumber == "ACC9"
    for keyword in ("RequestedProcedureID", "ScheduledProcedureStepID"):  # type 2, empty
        assert keyword in item and item[keyword].is_empty
    for keyword in ("PerformedSeriesSequence", "StudyID", "PatientBirthDate", "PatientSex"):
        assert keyword in ds and ds[keyword].is_empty
    assert "SOPInstanceUID" not in ds  # conveyed by Affected SOP Instance UID

    r = mppsscu(py_scp.port, "complete", uid,
                "-k", "PerformedSeriesSequence[0].SeriesInstanceUID=1.2.826.0.4.2",
                "-k", "PerformedSeriesSequence[0].ProtocolName=BRAIN")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"N-SET {uid}: 0x0000 (Success)"
    op, got_uid, mod = py_scp.requests[1]
    assert (op, got_uid) == ("N-SET", uid)
    assert mod.PerformedProcedureStepStatus == "COMPLETED"
    assert len(mod.PerformedProcedureStepEndDate) == 8 and mod.PerformedProcedureStepEndTime
    assert mod.PerformedSeriesSequence[0].SeriesInstanceUID == "1.2.826.0.4.2"
    assert "PatientID" not in mod  # an N-SET carries only what changes

    r = mppsscu(py_scp.port, "set", uid, "-k", "CommentsOnThePerformedProcedureStep=late")
    assert r.returncode == 1
    line = _error_line(r.stderr)
    assert "0x0110" in line and "may no longer be updated" in line and "Error ID 0xA710" in line


def test_mppsscu_create_from_file_and_discontinue(py_scp: PynetdicomMPPS, tmp_path: Path) -> None:
    ds = step(study_uid="1.2.826.0.5.1", PatientName="From^File")
    uid = generate_uid(prefix=None)
    ds.SOPClassUID = MPPS
    ds.SOPInstanceUID = uid
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MPPS
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "step.dcm"
    ds.save_as(path, enforce_file_format=True)

    r = mppsscu(py_scp.port, "create", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"N-CREATE {uid}: 0x0000 (Success)"  # the file's UID
    got = py_scp.steps[uid]
    assert got.PatientName == "From^File" and got.PerformedProcedureStepID == "PPS1"
    assert got.ScheduledStepAttributesSequence[0].StudyInstanceUID == "1.2.826.0.5.1"

    r = mppsscu(py_scp.port, "discontinue", uid)
    assert r.returncode == 0, r.stderr
    assert py_scp.steps[uid].PerformedProcedureStepStatus == "DISCONTINUED"


def test_mppsscu_failure_statuses_and_exit_codes(py_scp: PynetdicomMPPS) -> None:
    r = mppsscu(py_scp.port, "set", generate_uid(prefix=None), "-k", "StudyID=1")
    assert r.returncode == 1 and "0x0112" in _error_line(r.stderr)

    r = mppsscu(py_scp.port, "create", "--no-defaults", "-k", "Modality=CT")
    assert r.returncode == 1 and "0x0106" in _error_line(r.stderr)  # no status: not IN PROGRESS

    r = mppsscu(py_scp.port, "complete")  # no UID
    assert r.returncode == 2 and "UID" in _error_line(r.stderr)

    r = mppsscu(free_port(), "create")  # nobody listening
    assert r.returncode == 3 and "refused" in _error_line(r.stderr).lower()


def test_mppsscu_against_our_scp_reports_offending_element(our_scp: tuple[int, MPPSStore]) -> None:
    port, store = our_scp
    r = subprocess.run([*TOOL, "127.0.0.1", str(port), "-aec", "DICOMNET", "create",
                        "--no-defaults", "-k", "Modality=CT", "-k", "PerformedStationAETitle=X",
                        "-k", "PerformedProcedureStepID=1",
                        "-k", "PerformedProcedureStepStartDate=20240101",
                        "-k", "PerformedProcedureStepStartTime=1010",
                        "-k", "PerformedProcedureStepStatus=IN PROGRESS"],
                       capture_output=True, text=True, timeout=60, env=env())  # fmt: skip
    assert r.returncode == 1
    line = _error_line(r.stderr)
    assert "0x0120" in line and "[Offending Element (0040,0270)]" in line
    assert store.find() == []
