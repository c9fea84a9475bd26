"""Every tool against our own SCPs, as real processes over loopback: echoscu, storescu ->
storescp / qrscp (max PDU 4096 and large), findscu (text and JSON), getscu, movescu to itself,
and the exit codes with one-line reasons for refused / rejected / failure status."""

from __future__ import annotations

import json
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from tests.cli.conftest import Server, read_banner
from tests.cli.helpers import (
    DICOMNET,
    by_sop_uid,
    dcm_files,
    env,
    make_dataset,
    make_files,
    run_tool,
    same_dataset,
    start_tool,
    write_part10,
)
from tests.conftest import free_port


def _one_line_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_echoscu(qrscp: Any) -> None:
    srv = qrscp()
    r = run_tool(["echoscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "--repeat", "3"])
    assert r.returncode == 0, r.stderr
    assert "success" in r.stdout


def test_client_tool_output_complete_at_fast_exit(storescp: Any) -> None:
    """A client tool leaves with os._exit (no interpreter teardown): what it wrote to piped
    (block-buffered) stdout and its log lines on stderr must still all arrive, with its rc."""
    srv = storescp()
    buffered = {k: v for k, v in env().items() if k != "PYTHONUNBUFFERED"}
    r = subprocess.run([*DICOMNET, "echoscu", "-v", "127.0.0.1", str(srv.port), "--repeat", "300"],
                       capture_output=True, text=True, timeout=60, env=buffered)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("C-ECHO x300 to ") and "success" in r.stdout
    assert sum(1 for line in r.stderr.splitlines() if ": success" in line) == 300


def test_refused_connection_exit_code() -> None:
    port = free_port()  # nothing listens there
    r = run_tool(["echoscu", "127.0.0.1", str(port)])
    assert r.returncode == 3
    assert "refused" in _one_line_error(r.stderr).lower()


def test_store_sizes_and_identity(storescp: Any, tmp_path: Path) -> None:
    """Objects arrive identical at max PDU 4096 (receiver) and unlimited/large."""
    src = tmp_path / "src"
    files = make_files(src / "a", 3, rows=64, columns=64)  # 8 KB pixel data: many PDUs
    files += make_files(src / "b", 2, ts=ImplicitVRLittleEndian, sop_class="1.2.840.10008.5.1.4.1.1.4", modality="MR")
    (src / "notes.txt").write_text("not dicom")
    for pdu in ("4096", "1048576"):
        srv = storescp(extra=["-pdu", pdu])
        r = run_tool(["storescu", "127.0.0.1", str(srv.port), "-r", str(src), "-pdu", pdu])
        assert r.returncode == 0, r.stderr
        assert "5 stored" in r.stdout and "1 skipped" in r.stdout
        assert "not a DICOM file" in r.stderr
        got = by_sop_uid(dcm_files(srv.directory))
        sent = by_sop_uid(files)
        assert got.keys() == sent.keys()
        for uid, path in sent.items():
            assert same_dataset(path, got[uid]), uid
        srv.stop()


def test_storescu_reports_every_file_and_goes_on(storescp: Any, tmp_path: Path) -> None:
    """-v: one line per file with its status; a file that cannot be sent (here: no SOP Class
    UID, and a truncated one) is reported with its reason, the files after it are sent, and
    the summary counts every file given."""
    srv = storescp(extra=["+x="])  # uncompressed syntaxes only
    good = make_files(tmp_path / "src", 2)
    broken = make_dataset()
    del broken.SOPClassUID
    nocls = tmp_path / "src" / "a-nocls.dcm"
    broken.save_as(nocls, implicit_vr=False, little_endian=True)  # no meta, no SOP class
    cut = tmp_path / "src" / "b-cut.dcm"
    cut.write_bytes(good[0].read_bytes()[:-100])
    (tmp_path / "src" / "c-notes.txt").write_text("not dicom")
    r = run_tool(["storescu", "-v", "-r", "127.0.0.1", str(srv.port), str(tmp_path / "src")])
    assert r.returncode == 1
    assert "5 object(s)" in r.stdout and "2 stored" in r.stdout and "2 failed" in r.stdout
    assert "1 skipped" in r.stdout
    lines = r.stderr.splitlines()
    for p in good:
        assert any(ln.startswith("I: ") and str(p) in ln and "stored" in ln for ln in lines)
    assert any(ln.startswith("E: ") and "a-nocls.dcm" in ln and "SOP Class UID" in ln
               for ln in lines)  # fmt: skip
    assert any(ln.startswith("E: ") and "b-cut.dcm" in ln and "ends inside" in ln
               for ln in lines)  # fmt: skip
    assert any(ln.startswith("W: ") and "c-notes.txt" in ln for ln in lines)
    assert len(dcm_files(srv.directory)) == 2


def test_storescp_duplicate_replaces(storescp: Any, tmp_path: Path) -> None:
    srv = storescp()
    uid = generate_uid()
    a = write_part10(make_dataset(sop_uid=uid, patient_id="FIRST"), tmp_path / "a.dcm")
    b = write_part10(make_dataset(sop_uid=uid, patient_id="SECOND"), tmp_path / "b.dcm")
    for f in (a, b):
        r = run_tool(["storescu", "127.0.0.1", str(srv.port), str(f)])
        assert r.returncode == 0, r.stderr
    got = dcm_files(srv.directory)
    assert [p.name for p in got] == [f"{uid}.dcm"]
    assert same_dataset(got[0], b)


def test_storescu_no_files_is_an_error(storescp: Any, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    r = run_tool(["storescu", "127.0.0.1", "1", str(tmp_path / "x.txt")])
    assert r.returncode == 2
    assert "no DICOM files" in _one_line_error(r.stderr)


@pytest.fixture(scope="module")
def loaded_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Path], str, str]]:
    """One archive for the query/retrieve tests of this module (read-only for them)."""
    tmp_path = tmp_path_factory.mktemp("loaded")
    store_port = free_port()
    port = free_port()
    proc = start_tool(["qrscp", "--port", str(port), "--bind", "127.0.0.1", "--storage",
                       str(tmp_path / "archive"), "--destination", f"MOVER=127.0.0.1:{store_port}"])
    srv = Server(port, tmp_path / "archive", proc, "DICOMNET")
    try:
        read_banner(proc)
        study, series = generate_uid(), generate_uid()
        files = make_files(tmp_path / "study1", 4, study_uid=study, series_uid=series,
                           patient_id="PAT1", patient_name="ALPHA^ONE", rows=32, columns=32)
        files += make_files(tmp_path / "study2", 2, patient_id="PAT2", patient_name="BETA^TWO",
                            study_date="20210101", ts=ImplicitVRLittleEndian)
        r = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-r",
                      str(tmp_path / "study1"), str(tmp_path / "study2"), "-pdu", "4096"])
        assert r.returncode == 0, r.stderr
        srv.move_port = store_port  # type: ignore[attr-defined]
        yield srv, by_sop_uid(files), study, series
    finally:
        srv.stop()


def test_findscu_text_and_json(loaded_archive: Any) -> None:
    srv, _files, study, _series = loaded_archive
    base = ["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S"]
    r = run_tool([*base, "-k", "PatientName=ALPHA*", "-k", "StudyInstanceUID=",
                  "-k", "NumberOfStudyRelatedInstances="])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Match ") == 1
    assert study in r.stdout and "ALPHA^ONE" in r.stdout
    r = run_tool([*base, "--json", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=",
                  "-k", "StudyDate=20200101-20251231"])
    assert r.returncode == 0, r.stderr
    docs = json.loads(r.stdout)
    assert sorted(d["00100020"]["Value"][0] for d in docs) == ["PAT1", "PAT2"]
    # IMAGE level with a tag-form key and the unique keys above
    r = run_tool([*base, "-k", "QueryRetrieveLevel=IMAGE", "-k", f"0020,000D={study}",
                  "-k", "SeriesInstanceUID=" + _series, "-k", "SOPInstanceUID="])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Match ") == 4


def test_findscu_failure_status(loaded_archive: Any) -> None:
    srv = loaded_archive[0]
    # FRAME is no C-FIND level: failure status A900
    r = run_tool(["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S", "-k", "QueryRetrieveLevel=FRAME"])
    assert r.returncode == 1
    assert "0xA900" in _one_line_error(r.stderr)


def test_getscu_identity(loaded_archive: Any, tmp_path: Path) -> None:
    srv, files, study, _ = loaded_archive
    out = tmp_path / "got"
    r = run_tool(["getscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S",
                  "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                  "-od", str(out), "-pdu", "4096"])
    assert r.returncode == 0, r.stderr
    assert "4 completed, 0 failed" in r.stdout
    got = by_sop_uid(dcm_files(out))
    assert len(got) == 4
    for uid, path in got.items():
        assert same_dataset(files[uid], path)


def test_movescu_to_itself(loaded_archive: Any, tmp_path: Path) -> None:
    srv, files, _study, _ = loaded_archive
    out = tmp_path / "moved"
    r = run_tool(["movescu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-P",
                  "-aet", "MOVER", "--store-port", str(srv.move_port), "-od", str(out),
                  "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=PAT2"])
    assert r.returncode == 0, r.stderr + r.stdout
    got = by_sop_uid(dcm_files(out))
    assert len(got) == 2
    for uid, path in got.items():
        assert same_dataset(files[uid], path)


def test_movescu_unknown_destination(loaded_archive: Any) -> None:
    srv, _files, study, _ = loaded_archive
    r = run_tool(["movescu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S", "-aem", "NOBODY",
                  "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}"])
    assert r.returncode == 1
    assert "0xA801" in _one_line_error(r.stderr)


def test_explicit_and_implicit_kept(loaded_archive: Any, tmp_path: Path) -> None:
    """The archive stores what it receives in the negotiated syntax; findscu sees both studies."""
    srv = loaded_archive[0]
    r = run_tool(["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S", "-k", "QueryRetrieveLevel=SERIES",
                  "-k", f"StudyInstanceUID={loaded_archive[2]}", "-k", "Modality=CT",
                  "-k", "NumberOfSeriesRelatedInstances="])
    assert r.returncode == 0, r.stderr
    assert "NumberOfSeriesRelatedInstances (0020,1209) IS 4" in r.stdout
    assert ExplicitVRLittleEndian  # imported for symmetry with the DCMTK tests


@pytest.mark.parametrize("which", ["storescp", "qrscp"])
def test_invalid_sop_instance_uid_is_refused_never_a_path(
    which: str, storescp: Any, qrscp: Any
) -> None:
    """A peer (pynetdicom, test-only) sends '../../evil' as SOP Instance UID: failure status,
    nothing written anywhere."""
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom import Dataset
    from pydicom.uid import ExplicitVRLittleEndian as ELE

    srv = storescp() if which == "storescp" else qrscp()
    ae = pynetdicom.AE()
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", ELE)
    assoc = ae.associate("127.0.0.1", srv.port, ae_title=srv.aet)
    assert assoc.is_established
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.StudyInstanceUID = ds.SeriesInstanceUID = "1.2.3"
    ds.PatientID = "X"
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ELE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom: 'invalid value for VR UI'
        ds.SOPInstanceUID = "../../evil"
        status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status >= 0xA000 or 0x0100 <= status.Status < 0x0300  # a failure status
    assert not [p for p in srv.directory.parent.rglob("*evil*")]
    assert dcm_files(srv.directory) == []


def test_qrscp_db_option_persists_across_restart(qrscp: Any, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "idx.sqlite"
    db.parent.mkdir()
    srv = qrscp(extra=["--db", str(db)])
    files = make_files(tmp_path / "src", 2, patient_id="KEEP")
    assert run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", str(tmp_path / "src")]).returncode == 0
    assert srv.stop() == 0
    assert db.is_file() and not (srv.directory / "index.sqlite").exists()
    # same storage and index, new process: the objects are still found and retrievable
    port = free_port()
    proc = start_tool(["qrscp", "--port", str(port), "--bind", "127.0.0.1", "--storage",
                       str(srv.directory), "--db", str(db)])
    again = Server(port, srv.directory, proc, "DICOMNET")
    try:
        read_banner(proc)
        r = run_tool(["findscu", "127.0.0.1", str(port), "-aec", "DICOMNET", "-P", "-k", "QueryRetrieveLevel=IMAGE",
                      "-k", "PatientID=KEEP", "-k", f"StudyInstanceUID={dcmread(files[0]).StudyInstanceUID}",
                      "-k", f"SeriesInstanceUID={dcmread(files[0]).SeriesInstanceUID}", "-k", "SOPInstanceUID="])
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("Match ") == 2
    finally:
        assert again.stop() == 0


def test_qrscp_concurrent_stores_and_queries(qrscp: Any, tmp_path: Path) -> None:
    """Three storescu processes and repeated findscu at once: all succeed, nothing lost."""
    srv = qrscp()
    dirs = []
    for i in range(3):
        make_files(tmp_path / f"s{i}", 15, patient_id=f"CONC{i}", rows=4, columns=4)
        dirs.append(tmp_path / f"s{i}")
    senders = [start_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-q", str(d)]) for d in dirs]
    finds = [run_tool(["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-P", "-k",
                       "QueryRetrieveLevel=PATIENT", "-k", "PatientID=CONC*"]) for _ in range(3)]
    for p in senders:
        assert p.wait(timeout=60) == 0, p.stdout.read() if p.stdout else ""
        if p.stdout:
            p.stdout.close()
    assert all(f.returncode == 0 for f in finds), [f.stderr for f in finds]
    r = run_tool(["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-P", "--json", "-k",
                  "QueryRetrieveLevel=PATIENT", "-k", "PatientID=CONC*",
                  "-k", "NumberOfPatientRelatedInstances="])
    assert r.returncode == 0, r.stderr
    counts = {d["00100020"]["Value"][0]: d["00201204"]["Value"][0] for d in json.loads(r.stdout)}
    assert counts == {f"CONC{i}": 15 for i in range(3)}


def test_storescu_no_context_accepted(storescp: Any, tmp_path: Path) -> None:
    srv = storescp()
    write_part10(make_dataset(sop_class="1.2.3.4.5.6"), tmp_path / "odd.dcm")
    r = run_tool(["storescu", "127.0.0.1", str(srv.port), str(tmp_path / "odd.dcm")])
    assert r.returncode == 4
    assert "accepted none of the proposed presentation contexts" in _one_line_error(r.stderr)


@pytest.mark.parametrize("max_ops", [1, 4])
def test_storescu_goes_on_over_a_new_association_after_an_abort(tmp_path: Path, max_ops: int) -> None:
    """The peer aborts its first association while answering the third C-STORE: that file got
    no response and is reported failed (its fate is unknown, as with DCMTK's storescu); storescu
    requests a new association for the files after it, which all get there (with a window,
    PS3.7 D.3.3.3, the files sent and unanswered when the abort came are failed like the
    third)."""
    from dicomnet import AE, evt

    files = make_files(tmp_path / "src", 6)
    stored: list[str] = []
    associations: set[int] = set()

    def on_store(event: Any) -> int:
        associations.add(id(event.assoc))
        if len(associations) == 1 and len(stored) == 2:
            stored.append("aborted")
            event.assoc.abort()
            return 0x0000
        stored.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    scp = AE(ae_title="ABORTER")
    scp.maximum_pdu_size = 0
    scp.add_supported_context(make_dataset().SOPClassUID, ExplicitVRLittleEndian)
    server = scp.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        args = ["storescu", "-v", "127.0.0.1", str(server.server_address[1]), *map(str, files)]
        if max_ops > 1:
            args += ["--max-ops", str(max_ops)]
        r = run_tool(args)
    finally:
        server.shutdown()
    assert "requesting a new association" in r.stderr, r.stderr
    assert r.returncode == 1, r.stderr
    uids = [dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in files]
    got = [u for u in stored if u != "aborted"]
    assert len(associations) == 2 and len(got) == len(set(got))
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("E: ")]
    assert any(str(files[2]) in ln and "no response" in ln for ln in failed), r.stderr
    assert "6 object(s)" in r.stdout, r.stdout
    if max_ops == 1:  # only the aborted one is lost
        assert got == uids[:2] + uids[3:] and len(failed) == 1, r.stderr
        assert "5 stored" in r.stdout and "1 failed" in r.stdout, r.stdout
    else:  # those outstanding with it are failed too; the rest went on the new association
        lost = {u for u, p in zip(uids, files, strict=True) if any(str(p) in ln for ln in failed)}
        assert set(got) | lost == set(uids) and not set(got) & lost, r.stderr
        assert f"{len(set(got))} stored" in r.stdout and f"{len(failed)} failed" in r.stdout
