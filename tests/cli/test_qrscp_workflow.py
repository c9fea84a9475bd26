"""``dicomnet qrscp``'s workflow services, end to end with real processes: the Instance
Availability Notification of a study stored by DCMTK's storescu reaches an SCP (PS3.4 R)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file

from dicomnet import evt
from dicomnet.ae import AE
from dicomnet.archive.ian import IAN_SOP_CLASS
from tests.cli.conftest import Server
from tests.conftest import require_dcmtk


def test_a_stored_study_is_announced(qrscp: Callable[..., Server], tmp_path: Path) -> None:
    storescu = require_dcmtk("storescu")
    received: list[Dataset] = []
    got = threading.Event()

    def on_create(event: evt.Event) -> tuple[int, Dataset]:
        received.append(event.attribute_list)
        got.set()
        return 0x0000, event.attribute_list

    ris = AE(ae_title="RIS")
    ris.add_supported_context(IAN_SOP_CLASS)
    server = ris.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_N_CREATE, on_create)])  # fmt: skip
    try:
        arc = qrscp(extra=["--ian", f"RIS=127.0.0.1:{server.address[1]}", "--ian-quiet", "0.2"])
        path = str(get_testdata_file("CT_small.dcm"))
        subprocess.run([storescu, "-aec", arc.aet, "127.0.0.1", str(arc.port), path],
                       check=True, capture_output=True, timeout=30)  # fmt: skip
        assert got.wait(20), "no Instance Availability Notification arrived"
    finally:
        server.shutdown()
    stored = dcmread(path, stop_before_pixels=True)
    [ds] = received
    assert ds.StudyInstanceUID == stored.StudyInstanceUID
    [series] = ds.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == stored.SeriesInstanceUID
    [ref] = series.ReferencedSOPSequence
    assert ref.ReferencedSOPInstanceUID == stored.SOPInstanceUID
    assert ref.InstanceAvailability == "ONLINE" and ref.RetrieveAETitle == arc.aet


def test_a_study_stored_through_two_workers_is_announced_once(
    qrscp: Callable[..., Server], tmp_path: Path
) -> None:
    """qrscp --workers 2 --ian: eight concurrent storescu, one instance of one study each,
    spread over both worker processes; each worker notes the study, and the shared state in
    workflow.sqlite lets only one announce it -- once, listing all eight."""
    storescu = require_dcmtk("storescu")
    from tests.cli.helpers import make_files

    received: list[Dataset] = []

    def on_create(event: evt.Event) -> tuple[int, Dataset]:
        received.append(event.attribute_list)
        return 0x0000, event.attribute_list

    ris = AE(ae_title="RIS")
    ris.add_supported_context(IAN_SOP_CLASS)
    server = ris.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_N_CREATE, on_create)])  # fmt: skip
    try:
        arc = qrscp(extra=["--workers", "2", "--ian", f"RIS=127.0.0.1:{server.address[1]}",
                           "--ian-quiet", "1.0"])  # fmt: skip
        files = make_files(tmp_path / "study", 8, patient_id="IANW", rows=8, columns=8)
        procs = [subprocess.Popen([storescu, "-aec", arc.aet, "127.0.0.1", str(arc.port),
                                   str(f)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for f in files]  # fmt: skip
        assert [p.wait(30) for p in procs] == [0] * 8
        deadline = time.monotonic() + 20
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.5)  # both workers' deadlines pass (quiet 1 s)
    finally:
        server.shutdown()
    assert len(received) == 1, [d.StudyInstanceUID for d in received]
    refs = {str(r.ReferencedSOPInstanceUID) for s in received[0].ReferencedSeriesSequence
            for r in s.ReferencedSOPSequence}  # fmt: skip
    assert refs == {str(dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}


def _findscu_w(findscu: str, arc: Server, out: Path, *keys: str) -> list[Dataset]:
    """DCMTK findscu -W against the archive; the answers (written with -X into ``out``)."""
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    args = [findscu, "-W", "-X", "-od", str(out), "-aec", arc.aet]
    for key in keys:
        args += ["-k", key]
    done = subprocess.run([*args, "127.0.0.1", str(arc.port)], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return [dcmread(p) for p in sorted(out.iterdir())]


def test_the_worklist_is_served_and_follows_its_folder(
    qrscp: Callable[..., Server], tmp_path: Path
) -> None:
    """qrscp --worklist DIR answers DCMTK findscu -W from the files in DIR (PS3.4 K); a file
    dropped in later is found by the next query; Q/R C-FINDs still reach the archive."""
    findscu = require_dcmtk("findscu")
    from tests.archive.test_worklist import make_item, save, sps

    folder = tmp_path / "worklist"
    folder.mkdir()
    save(folder / "a.wl", make_item("Doe^Jane", "P1", "A1"))
    arc = qrscp(extra=["--worklist", str(folder)])
    out = tmp_path / "answers"
    found = _findscu_w(findscu, arc, out, "PatientName", "PatientID", "(0040,0100)[0].Modality=CT")
    assert [str(d.PatientID) for d in found] == ["P1"]
    assert found[0].ScheduledProcedureStepSequence[0].Modality == "CT"
    step = sps(Modality="MR", ScheduledStationAETitle="MR1",
               ScheduledProcedureStepStartDate="20240106", ScheduledProcedureStepID="S9")
    save(folder / "b.wl", make_item("Roe^Rick", "P2", "A2", steps=[step]))  # dropped in
    found = _findscu_w(findscu, arc, out, "PatientID", "(0040,0100)[0].Modality")
    assert sorted(str(d.PatientID) for d in found) == ["P1", "P2"]
    found = _findscu_w(findscu, arc, out, "PatientID", "(0040,0100)[0].Modality=MR")
    assert [str(d.PatientID) for d in found] == ["P2"]
    (folder / "a.wl").unlink()  # removed: gone at the next query
    found = _findscu_w(findscu, arc, out, "PatientID", "(0040,0100)[0].Modality")
    assert [str(d.PatientID) for d in found] == ["P2"]
    # the archive's own C-FIND (Study Root) is still answered (nothing stored: no match)
    q = subprocess.run([findscu, "-S", "-aec", arc.aet, "-k", "QueryRetrieveLevel=STUDY",
                        "-k", "StudyInstanceUID", "127.0.0.1", str(arc.port)],
                       capture_output=True, timeout=30)  # fmt: skip
    assert q.returncode == 0, q.stderr


def test_mpps_steps_through_qrscp(qrscp: Callable[..., Server]) -> None:
    """qrscp --mpps with our mppsscu: a step is created IN PROGRESS, completed, then refused
    any further change (PS3.4 F.7.2.2.3: 0110H, Error ID A710H); the archive keeps it."""
    from tests.cli.helpers import env

    arc = qrscp(extra=["--mpps"])
    base = [sys.executable, "-m", "dicomnet.cli.main", "mppsscu", "-aec", arc.aet,
            "127.0.0.1", str(arc.port)]  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=60,
                              env=env())  # fmt: skip

    created = run("create", "-q", "-k", "PatientID=P77", "-k", "PatientName=Doe^Jo")
    assert created.returncode == 0, created.stderr
    uid = created.stdout.strip().splitlines()[-1]
    done = run("complete", uid)
    assert done.returncode == 0, done.stderr
    again = run("set", uid, "-k", "PerformedProcedureStepDescription=late")
    assert again.returncode == 1 and "0x0110" in (again.stdout + again.stderr)
    from dicomnet.archive.mpps import MPPSStore

    store = MPPSStore(arc.directory)
    try:
        step = store.get(uid)
        assert step.PerformedProcedureStepStatus == "COMPLETED" and step.PatientID == "P77"
    finally:
        store.close()


def test_storage_commitment_through_qrscp(qrscp: Callable[..., Server]) -> None:
    """qrscp --commitment with our stgcmtscu (PS3.4 J): a stored instance is committed, one
    never stored is reported failed (0112H); the report arrives on the request's association
    and, with --port-scp, on a separate association qrscp opens to the requestor."""
    from tests.cli.helpers import env
    from tests.conftest import free_port

    storescu = require_dcmtk("storescu")
    scp_port = free_port()
    arc = qrscp(destinations={"STGCMTSCU": scp_port}, extra=["--commitment"])
    stored = str(get_testdata_file("CT_small.dcm"))
    other = str(get_testdata_file("MR_small.dcm"))
    subprocess.run([storescu, "-aec", arc.aet, "127.0.0.1", str(arc.port), stored],
                   check=True, capture_output=True, timeout=30)  # fmt: skip
    base = [sys.executable, "-m", "dicomnet.cli.main", "stgcmtscu", "-aet", "STGCMTSCU",
            "-aec", arc.aet, "127.0.0.1", str(arc.port)]  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=90,
                              env=env())  # fmt: skip

    same = run(stored)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "committed" in same.stdout
    failed = run(stored, other)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "0x0112" in failed.stdout + failed.stderr
    separate = run("--port-scp", str(scp_port), "--bind-scp", "127.0.0.1", stored)
    assert separate.returncode == 0, separate.stdout + separate.stderr
