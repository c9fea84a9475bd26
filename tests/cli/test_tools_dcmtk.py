"""The tools against DCMTK, both directions, as real processes over loopback.

DCMTK storescu -> our storescp and qrscp; DCMTK findscu/getscu/movescu -> our qrscp; our
storescu/echoscu/findscu/getscu/movescu -> DCMTK storescp and dcmqrscp (configured in tmp).
Received objects must be identical to what was sent, at max PDU 4096 and a large value."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from tests.cli.helpers import by_sop_uid, dcm_files, env, make_files, run_tool, same_dataset
from tests.conftest import free_port, require_dcmtk

pytestmark = pytest.mark.interop


def dcmtk(tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_dcmtk(tool), *args], capture_output=True, text=True,
                          timeout=timeout, env=env())


def _assert_identical(sent: list[Path], received_dir: Path) -> None:
    got = by_sop_uid(dcm_files(received_dir))
    want = by_sop_uid(sent)
    assert got.keys() == want.keys()
    for uid, path in want.items():
        assert same_dataset(path, got[uid]), uid


@pytest.mark.parametrize("pdu", ["4096", "131072"])
def test_dcmtk_storescu_to_our_storescp(storescp: Any, tmp_path: Path, pdu: str) -> None:
    srv = storescp(extra=["-pdu", pdu])
    files = make_files(tmp_path / "src", 3, rows=64, columns=64)
    r = dcmtk("storescu", "-aec", "STORESCP", "--max-pdu", pdu, "+sd", "127.0.0.1",
              str(srv.port), str(tmp_path / "src"))
    assert r.returncode == 0, r.stderr
    _assert_identical(files, srv.directory)


def test_dcmtk_storescu_implicit_to_our_storescp(storescp: Any, tmp_path: Path) -> None:
    srv = storescp()
    files = make_files(tmp_path / "src", 2)
    r = dcmtk("storescu", "-xi", "+sd", "127.0.0.1", str(srv.port), str(tmp_path / "src"))
    assert r.returncode == 0, r.stderr
    _assert_identical(files, srv.directory)
    for p in dcm_files(srv.directory):
        assert dcmread(p).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


@pytest.mark.parametrize("pdu", ["4096", "131072"])
def test_our_storescu_to_dcmtk_storescp(dcmtk_storescp: Any, tmp_path: Path, pdu: str) -> None:
    srv = dcmtk_storescp(extra=["--max-pdu", pdu, "+xa"])
    files = make_files(tmp_path / "src", 3, rows=64, columns=64)
    jpeg = get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")
    big = get_testdata_file("MR_small_bigendian.dcm")
    assert isinstance(jpeg, str) and isinstance(big, str)
    r = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", "STORESCP", "-pdu", pdu,
                  str(tmp_path / "src"), jpeg, big])
    assert r.returncode == 0, r.stderr
    assert "5 stored" in r.stdout
    _assert_identical([*files, Path(jpeg), Path(big)], srv.directory)
    # the JPEG data went as it was: same transfer syntax, same encapsulated bytes
    jpeg_uid = dcmread(jpeg).SOPInstanceUID
    got = by_sop_uid(dcm_files(srv.directory))[jpeg_uid]
    assert dcmread(got).file_meta.TransferSyntaxUID == dcmread(jpeg).file_meta.TransferSyntaxUID


def test_dcmtk_tools_against_our_qrscp(qrscp: Any, dcmtk_storescp: Any, tmp_path: Path) -> None:
    dest = dcmtk_storescp(aet="DEST")
    srv = qrscp(destinations={"DEST": dest.port})
    study = generate_uid()
    files = make_files(tmp_path / "src", 4, study_uid=study, patient_id="DCM1",
                       patient_name="DCMTK^TEST")
    r = dcmtk("storescu", "-aec", "DICOMNET", "+sd", "127.0.0.1", str(srv.port),
              str(tmp_path / "src"))
    assert r.returncode == 0, r.stderr
    # findscu: one study, patient name returned
    r = dcmtk("findscu", "-v", "-aec", "DICOMNET", "-S", "-k", "QueryRetrieveLevel=STUDY",
              "-k", "PatientName=DCMTK*", "-k", "StudyInstanceUID", "-k",
              "NumberOfStudyRelatedInstances", "127.0.0.1", str(srv.port))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("Find Response:") == 1 and study in r.stderr
    assert "[4 ]" in r.stderr or "[4]" in r.stderr  # NumberOfStudyRelatedInstances
    # getscu: C-GET the study into a directory
    got = tmp_path / "got"
    got.mkdir()
    r = dcmtk("getscu", "-aec", "DICOMNET", "-S", "-k", "QueryRetrieveLevel=STUDY",
              "-k", f"StudyInstanceUID={study}", "-od", str(got), "127.0.0.1", str(srv.port))
    assert r.returncode == 0, r.stderr
    _assert_identical(files, got)
    # movescu: C-MOVE the study to DCMTK's storescp registered as DEST
    r = dcmtk("movescu", "-aec", "DICOMNET", "-aem", "DEST", "-S",
              "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}",
              "-k", f"SeriesInstanceUID={dcmread(files[0]).SeriesInstanceUID}",
              "127.0.0.1", str(srv.port))
    assert r.returncode == 0, r.stderr
    _assert_identical(files, dest.directory)


def test_findscu_cancel_ours_and_dcmtk(qrscp: Any, tmp_path: Path) -> None:
    """C-CANCEL after 2 matches of 2000: the archive stops early with FE00 (PS3.7 9.3.2.3).
    (Enough matches that the server is still sending when a Python client's cancel arrives:
    with a few hundred, a fast server can finish before the cancel is read.)"""
    srv = qrscp()
    files = make_files(tmp_path / "src", 2000, rows=2, columns=2)
    r = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", str(tmp_path / "src")])
    assert r.returncode == 0, r.stderr
    first = dcmread(files[0])
    keys = ["-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={first.StudyInstanceUID}",
            "-k", f"SeriesInstanceUID={first.SeriesInstanceUID}", "-k", "SOPInstanceUID"]
    r = dcmtk("findscu", "-v", "--cancel", "2", "-S", "-aec", "DICOMNET", *keys, "127.0.0.1", str(srv.port))
    assert r.returncode == 0, r.stderr
    assert "Received Final Find Response (Cancel" in r.stderr
    assert r.stderr.count("Find Response:") < 2000
    r = run_tool(["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S", "--cancel", "2", "-v", *keys])
    assert r.returncode == 0, r.stderr
    assert 2 <= r.stdout.count("Match ") < 2000
    assert "0xFE00" in r.stderr


def test_our_tools_against_dcmqrscp(dcmqrscp: Any, tmp_path: Path) -> None:
    store_port = free_port()
    srv = dcmqrscp(peers={"MOVER": store_port, "OURSCU": 1})
    study = generate_uid()
    files = make_files(tmp_path / "src", 3, study_uid=study, patient_id="QR1",
                       patient_name="QR^PATIENT", rows=32, columns=32)
    base = ["127.0.0.1", str(srv.port), "-aec", "DCMQR"]
    r = run_tool(["echoscu", *base])
    assert r.returncode == 0, r.stderr
    r = run_tool(["storescu", *base, "-pdu", "4096", str(tmp_path / "src")])
    assert r.returncode == 0, r.stderr
    r = run_tool(["findscu", *base, "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=QR1",
                  "-k", "PatientName="])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Match ") == 1 and "QR^PATIENT" in r.stdout
    r = run_tool(["findscu", *base, "-S", "--json", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={study}", "-k", "PatientName="])
    assert r.returncode == 0, r.stderr
    assert '"QR^PATIENT"' in r.stdout
    got = tmp_path / "got"
    r = run_tool(["getscu", *base, "-S", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={study}", "-od", str(got)])
    assert r.returncode == 0, r.stderr + r.stdout
    _assert_identical(files, got)
    moved = tmp_path / "moved"
    r = run_tool(["movescu", *base, "-S", "-aet", "MOVER", "--store-port", str(store_port),
                  "-od", str(moved), "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={study}"])
    assert r.returncode == 0, r.stderr + r.stdout
    _assert_identical(files, moved)


def test_rejected_association_reason(dcmqrscp: Any) -> None:
    srv = dcmqrscp()
    r = run_tool(["echoscu", "127.0.0.1", str(srv.port), "-aec", "NOSUCHAE"])
    assert r.returncode == 4
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1
    assert "rejected" in errors[0] and "called AE title not recognized" in errors[0]


def test_storescu_refused_by_dcmtk(dcmtk_storescp: Any, tmp_path: Path) -> None:
    srv = dcmtk_storescp(extra=["--refuse"])
    make_files(tmp_path / "src", 1)
    r = run_tool(["storescu", "127.0.0.1", str(srv.port), str(tmp_path / "src")])
    assert r.returncode == 4
    assert "rejected" in r.stderr


def test_our_storescu_reencodes_for_an_implicit_only_peer(dcmtk_storescp: Any, tmp_path: Path) -> None:
    """DCMTK storescp +xi accepts Implicit VR LE only: explicit little and big endian files are
    re-encoded (the pixel values stay the same); a JPEG file the peer refuses fails cleanly."""
    import numpy as np

    srv = dcmtk_storescp(extra=["+xi"])
    explicit = make_files(tmp_path / "src", 1, rows=8, columns=8)[0]
    big = get_testdata_file("MR_small_bigendian.dcm")
    assert isinstance(big, str)
    r = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", "STORESCP", str(explicit), big])
    assert r.returncode == 0, r.stderr
    got = by_sop_uid(dcm_files(srv.directory))
    for src in (explicit, Path(big)):
        want = dcmread(src)
        have = dcmread(got[want.SOPInstanceUID])
        assert have.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert np.array_equal(want.pixel_array, have.pixel_array)
        assert have.PatientName == want.PatientName and have.Rows == want.Rows


def test_our_storescu_converts_for_a_peer_that_refuses_compression(
    dcmtk_storescp: Any, tmp_path: Path
) -> None:
    """A JPEG baseline file for a DCMTK storescp that accepts uncompressed data only: the file
    is decompressed and arrives as an uncompressed instance with the same SOP Instance UID and
    Lossy Image Compression 01 (PS3.3 C.7.6.1.1.5); a file whose JPEG data is corrupt fails
    with a one-line reason, and the files after it are still stored (exit status 1)."""
    pytest.importorskip("numpy")
    from dicomnet.transcode.syntax import decoder_available

    if not decoder_available("1.2.840.10008.1.2.4.50"):
        pytest.skip("no JPEG decoder installed (dicomnet[codecs])")
    srv = dcmtk_storescp(extra=["+xi"])
    ok = make_files(tmp_path / "src", 2)
    jpeg = get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")
    assert isinstance(jpeg, str)
    bad = dcmread(jpeg)
    bad.SOPInstanceUID = generate_uid()
    frag_start = bad.PixelData.index(b"\xff\xd8")  # SOI of the first frame
    bad.PixelData = bad.PixelData[: frag_start + 40] + bytes(len(bad.PixelData) - frag_start - 40)
    bad_path = tmp_path / "corrupt.dcm"
    bad.save_as(bad_path)
    r = run_tool(["storescu", "127.0.0.1", str(srv.port), str(ok[0]), jpeg, str(bad_path),
                  str(ok[1])])  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "3 stored" in r.stdout and "1 failed" in r.stdout, r.stdout
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("E:")]
    assert len(errors) == 1 and "corrupt.dcm" in errors[0], r.stderr
    got = by_sop_uid(dcm_files(srv.directory))
    assert len(got) == 3
    received = dcmread(got[dcmread(jpeg).SOPInstanceUID])
    assert received.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert received.LossyImageCompression == "01"
    assert received.PhotometricInterpretation == "RGB"
    assert received.pixel_array.shape == dcmread(jpeg).pixel_array.shape


def test_findscu_worklist_against_wlmscpfs(tmp_path: Path, servers: list[Any]) -> None:
    """-W with a sequence key (Seq[0].Keyword) against DCMTK's worklist SCP."""
    from pydicom.dataset import Dataset

    from tests.cli.conftest import Server
    from tests.cli.helpers import wait_port

    exe = require_dcmtk("wlmscpfs")
    (tmp_path / "wl" / "WLM").mkdir(parents=True)
    (tmp_path / "wl" / "WLM" / "lockfile").write_bytes(b"")  # wlmscpfs requires it
    for i, modality in enumerate(("CT", "MR")):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = f"WORK^{modality}"
        ds.PatientID = f"W{i}"
        ds.AccessionNumber = f"A{i}"
        ds.StudyInstanceUID = generate_uid()
        ds.RequestedProcedureID = f"RP{i}"
        ds.RequestedProcedureDescription = "proc"
        sps = Dataset()
        sps.Modality = modality
        sps.ScheduledStationAETitle = "STATION"
        sps.ScheduledProcedureStepStartDate = "20300101"
        sps.ScheduledProcedureStepStartTime = "1000"
        sps.ScheduledPerformingPhysicianName = "DOC"
        sps.ScheduledProcedureStepDescription = "step"
        sps.ScheduledProcedureStepID = f"S{i}"
        ds.ScheduledProcedureStepSequence = [sps]
        ds.save_as(tmp_path / "wl" / "WLM" / f"item{i}.wl", implicit_vr=False, little_endian=True)
    port = free_port()
    proc = subprocess.Popen([exe, "-dfp", str(tmp_path / "wl"), "-dfr", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env())
    servers.append(Server(port, tmp_path / "wl", proc, "WLM"))
    wait_port(port, proc)
    r = run_tool(["findscu", "127.0.0.1", str(port), "-aec", "WLM", "-W",
                  "-k", "PatientName=", "-k", "PatientID=",
                  "-k", "ScheduledProcedureStepSequence[0].Modality=MR",
                  "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle="])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Match ") == 1
    assert "WORK^MR" in r.stdout and "ScheduledProcedureStepSequence" in r.stdout


def test_a_move_of_nothing_succeeds_without_reaching_the_destination(
    qrscp: Any, dcmqrscp: Any
) -> None:
    """No match: Success with zero sub-operations, and the destination (here: nothing listens)
    is never called -- as DCMTK's dcmqrscp answers, and pynetdicom's SCP when its handler
    yields a count of 0 (pynetdicom's movescu tests rely on it). dicomnet used to associate
    first and answered A801 when the destination was down or accepted no storage class."""
    down = free_port()
    ours = qrscp(destinations={"NOWHERE": down})
    theirs = dcmqrscp({"NOWHERE": down})
    keys = ["-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=NOBODY"]
    for arc in (ours, theirs):
        r = subprocess.run([require_dcmtk("movescu"), "-v", "-P", "-aem", "NOWHERE",
                            "-aec", arc.aet, *keys, "127.0.0.1", str(arc.port)],
                           capture_output=True, text=True, env=env())  # fmt: skip
        assert r.returncode == 0, (arc.aet, r.stderr)
        assert "Success" in r.stdout + r.stderr, (arc.aet, r.stdout + r.stderr)
