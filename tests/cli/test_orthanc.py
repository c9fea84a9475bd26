"""The tools against a real PACS: Debian's Orthanc, started with a generated configuration on
free loopback ports (DICOM and HTTP), storage in tmp, our AE titles registered as modalities.
Our storescu sends to it, our findscu/getscu/movescu query and retrieve from it, and Orthanc's
C-MOVE sub-operations reach our storescp. Storage commitment both ways (PS3.4 J): Orthanc's
SCU (REST ``/modalities/{id}/storage-commitment``) asks our qrscp and gets its report on a new
association; our stgcmtscu asks Orthanc, whose report comes to our --port-scp. Skipped when
Orthanc is not installed."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from tests.cli.conftest import Server
from tests.cli.helpers import (
    by_sop_uid,
    dcm_files,
    env,
    make_files,
    run_tool,
    same_dataset,
    wait_port,
)
from tests.conftest import free_port

ORTHANC = "/usr/sbin/Orthanc"
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not os.access(ORTHANC, os.X_OK), reason="Orthanc is not installed"),
]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("orthanc")
    dicom_port, http_port = free_port(), free_port()
    mover_port, storescp_port, stgcmt_port = free_port(), free_port(), free_port()
    config = {
        "Name": "dicomnet-test",
        "StorageDirectory": str(tmp / "storage"),
        "IndexDirectory": str(tmp / "index"),
        "StorageCompression": False,
        "Plugins": [],
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {
            "mover": ["MOVER", "127.0.0.1", mover_port],
            "storescp": ["STORESCP", "127.0.0.1", storescp_port],
            "stgcmt": ["STGCMTSCU", "127.0.0.1", stgcmt_port],
        },
        "DicomAssociationCloseDelay": 0,
        "SaveJobs": False,
        "ConcurrentJobs": 1,
    }
    cfg = tmp / "orthanc.json"
    cfg.write_text(json.dumps(config))
    log = open(tmp / "orthanc.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=log, stderr=subprocess.STDOUT, env=env(),
                            cwd=tmp)
    try:
        wait_port(dicom_port, proc, timeout=30)
        yield {"port": dicom_port, "mover_port": mover_port, "storescp_port": storescp_port,
               "stgcmt_port": stgcmt_port, "http": f"http://127.0.0.1:{http_port}", "tmp": tmp}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def loaded(orthanc: dict[str, Any]) -> dict[str, Any]:
    study = generate_uid()
    src = orthanc["tmp"] / "src"
    files = make_files(src / "a", 3, study_uid=study, patient_id="ORTH1",
                       patient_name="ORTHANC^TEST", rows=64, columns=64)
    files += make_files(src / "b", 2, study_uid=study, patient_id="ORTH1",
                        patient_name="ORTHANC^TEST", ts=ImplicitVRLittleEndian)
    r = run_tool(["storescu", "127.0.0.1", str(orthanc["port"]), "-aec", "ORTHANC",
                  "-pdu", "4096", "-r", str(src)])
    assert r.returncode == 0, r.stderr
    assert "5 stored" in r.stdout
    return {**orthanc, "study": study, "files": by_sop_uid(files)}


def _identical(files: dict[str, Path], directory: Path) -> None:
    got = by_sop_uid(dcm_files(directory))
    assert got.keys() == files.keys()
    for uid, p in got.items():
        assert same_dataset(files[uid], p), uid


def test_echo_and_find(loaded: dict[str, Any]) -> None:
    base = ["127.0.0.1", str(loaded["port"]), "-aec", "ORTHANC"]
    assert run_tool(["echoscu", *base]).returncode == 0
    r = run_tool(["findscu", *base, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=ORTH*",
                  "-k", "StudyInstanceUID=", "-k", "NumberOfStudyRelatedInstances="])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Match ") == 1 and loaded["study"] in r.stdout
    r = run_tool(["findscu", *base, "-P", "--json", "-k", "QueryRetrieveLevel=IMAGE",
                  "-k", "PatientID=ORTH1", "-k", f"StudyInstanceUID={loaded['study']}",
                  "-k", "SeriesInstanceUID=" + str(dcmread(next(iter(loaded["files"].values()))).SeriesInstanceUID),
                  "-k", "SOPInstanceUID="])
    assert r.returncode == 0, r.stderr
    uids = {d["00080018"]["Value"][0] for d in json.loads(r.stdout)}
    assert len(uids) == 3 and uids <= set(loaded["files"])


def test_getscu_from_orthanc(loaded: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "got"
    r = run_tool(["getscu", "127.0.0.1", str(loaded["port"]), "-aec", "ORTHANC", "-S",
                  "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={loaded['study']}",
                  "-od", str(out)])
    assert r.returncode == 0, r.stderr + r.stdout
    _identical(loaded["files"], out)


def test_movescu_to_itself_from_orthanc(loaded: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "moved"
    r = run_tool(["movescu", "127.0.0.1", str(loaded["port"]), "-aec", "ORTHANC", "-S",
                  "-aet", "MOVER", "--store-port", str(loaded["mover_port"]), "-od", str(out),
                  "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={loaded['study']}"])
    assert r.returncode == 0, r.stderr + r.stdout
    _identical(loaded["files"], out)


def test_orthanc_moves_to_our_storescp(loaded: dict[str, Any], storescp: Any) -> None:
    srv: Server = storescp(port=loaded["storescp_port"], aet="STORESCP")
    r = run_tool(["movescu", "127.0.0.1", str(loaded["port"]), "-aec", "ORTHANC", "-P",
                  "-aem", "STORESCP", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=ORTH1"])
    assert r.returncode == 0, r.stderr + r.stdout
    assert "5 completed, 0 failed" in r.stdout
    _identical(loaded["files"], srv.directory)


def _rest(base: str, path: str, body: object | None = None, method: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method or ("POST" if data else "GET"))
    with urllib.request.urlopen(req, timeout=30) as rsp:
        return json.loads(rsp.read() or b"null")


def test_orthanc_asks_our_archive_for_storage_commitment(loaded: dict[str, Any], qrscp: Any,
                                                        tmp_path: Path) -> None:  # fmt: skip
    """Orthanc as Storage Commitment SCU against qrscp --commitment: Orthanc closes its
    association after the N-ACTION, so our report goes on a new association to Orthanc's
    DICOM port (qrscp as association requester, SCP role of the SOP class by role selection,
    PS3.4 J.3.3). Instances stored in our archive are committed, one never stored is reported
    failed (Failure Reason 0112H, no such object instance)."""
    arc = qrscp(destinations={"ORTHANC": loaded["port"]}, extra=["--commitment"])
    files = make_files(tmp_path / "src", 3, patient_id="STGCMT1")
    r = run_tool(["storescu", "127.0.0.1", str(arc.port), "-aec", arc.aet, *map(str, files)])
    assert r.returncode == 0, r.stderr
    _rest(loaded["http"], "/modalities/archive",
          {"AET": arc.aet, "Host": "127.0.0.1", "Port": arc.port}, method="PUT")
    refs = [{"SOPClassUID": str(ds.SOPClassUID), "SOPInstanceUID": str(ds.SOPInstanceUID)}
            for ds in map(dcmread, files)]  # fmt: skip
    missing = {"SOPClassUID": refs[0]["SOPClassUID"], "SOPInstanceUID": generate_uid()}

    def commit(instances: list[dict[str, str]]) -> dict[str, Any]:
        job = _rest(loaded["http"], "/modalities/archive/storage-commitment",
                    {"DicomInstances": instances})  # fmt: skip
        deadline = time.monotonic() + 30
        while True:  # Orthanc's status of the transaction (Pending until our report arrives)
            report: dict[str, Any] = _rest(loaded["http"], job["Path"])
            if report["Status"] != "Pending" or time.monotonic() > deadline:
                return report
            time.sleep(0.1)

    report = commit(refs)
    assert report["Status"] == "Success", report
    assert report["RemoteAET"] == arc.aet
    assert sorted(i["SOPInstanceUID"] for i in report["Success"]) == sorted(
        r["SOPInstanceUID"] for r in refs)
    report = commit([*refs, missing])
    assert report["Status"] == "Failure", report
    [failure] = report["Failures"]
    assert failure["SOPInstanceUID"] == missing["SOPInstanceUID"]
    assert failure["FailureReason"] == 0x0112
    assert len(report["Success"]) == 3


def test_our_stgcmtscu_asks_orthanc(loaded: dict[str, Any], tmp_path: Path) -> None:
    """Our stgcmtscu against Orthanc's Storage Commitment SCP: Orthanc sends its report on a
    new association to the requestor (the modality STGCMTSCU in its configuration), which
    stgcmtscu accepts on --port-scp. All of what Orthanc stores is committed; a file it never
    received is reported failed and the exit code says so."""
    base = ["stgcmtscu", "127.0.0.1", str(loaded["port"]), "-aec", "ORTHANC", "-aet", "STGCMTSCU",
            "--port-scp", str(loaded["stgcmt_port"]), "--bind-scp", "127.0.0.1"]
    stored = sorted(loaded["files"].values())
    r = run_tool([*base, *map(str, stored)], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "committed" in r.stdout
    other = make_files(tmp_path / "other", 1, patient_id="NOTINORTHANC")
    r = run_tool([*base, str(stored[0]), str(other[0])], timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "0x0112" in r.stdout + r.stderr
