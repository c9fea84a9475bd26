"""DCMTK's command-line SCUs against the dicomnet server (real processes, loopback).

echoscu, storescu (small and large PDUs, implicit and explicit VR, a data set above the spool
threshold; every received data set is compared with the file sent), findscu (including
``--cancel``), getscu (sub-operations on the same association, files compared) and movescu
(the sub-association goes to a DCMTK storescp started here as the move destination).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.server import Server, start_server
from tests.conftest import free_port, require_dcmtk

pytestmark = pytest.mark.interop

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
P_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
P_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
P_GET = "1.2.840.10008.5.1.4.1.2.1.3"
TS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
ENV = {**os.environ, "TCP_NODELAY": "1"}


def write_ct(path: Path, i: int, pixel_bytes: int = 512) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = f"Doe^Jane{i}"
    ds.PatientID = f"PID{i:03d}"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Columns = 512
    ds.Rows = max(1, pixel_bytes // 1024)
    pixel_bytes = ds.Rows * 1024
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = os.urandom(pixel_bytes)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return ds


def same(a: Dataset, b: Dataset) -> bool:
    """Element-wise equality of the data sets (group 0002 excluded)."""
    keys_a = sorted(e.tag for e in a if e.tag.group != 2)
    keys_b = sorted(e.tag for e in b if e.tag.group != 2)
    return keys_a == keys_b and all(a[t].value == b[t].value for t in keys_a)


def server_ae() -> AE:
    ae = AE("DICOMNET")
    for uid in (VERIFICATION, CT, P_FIND, P_GET, P_MOVE):
        ae.add_supported_context(uid, TS)
    return ae


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Server] = []

    def _start(handlers: Any = None) -> Server:
        server = start_server(server_ae(), ("127.0.0.1", 0), block=False, handlers=handlers)
        assert server is not None
        started.append(server)
        return server

    yield _start
    for server in started:
        server.shutdown()


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=ENV)


def test_echoscu(serve: Any) -> None:
    echoscu = require_dcmtk("echoscu")
    server = serve()
    result = run([echoscu, "-aec", "DICOMNET", "--repeat", "50", "127.0.0.1", str(server.address[1])])
    assert result.returncode == 0, result.stderr


def test_echoscu_rejected_called_ae_title(serve: Any) -> None:
    echoscu = require_dcmtk("echoscu")
    ae = server_ae()
    ae.require_called_aet = True
    server = start_server(ae, ("127.0.0.1", 0), block=False)
    assert server is not None
    try:
        result = run([echoscu, "-v", "-aec", "WRONG", "127.0.0.1", str(server.address[1])])
        assert result.returncode != 0
        assert "Called AE Title Not Recognized" in result.stderr or "Rejected" in result.stderr
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("options", "expected_ts", "pixel_bytes"),
    [
        (["-xi", "--max-pdu", "4096"], ImplicitVRLittleEndian, 20_000),
        (["-xe"], ExplicitVRLittleEndian, 20_000),
        (["-xe", "--max-pdu", "131072"], ExplicitVRLittleEndian, 12 << 20),  # spooled to disk
    ],
)
def test_storescu_datasets_arrive_intact(
    serve: Any, tmp_path: Path, options: list[str], expected_ts: str, pixel_bytes: int
) -> None:
    storescu = require_dcmtk("storescu")
    received: dict[str, tuple[Dataset, str]] = {}

    def on_store(event: evt.Event) -> int:
        received[event.request.AffectedSOPInstanceUID] = (
            event.dataset,
            str(event.file_meta.TransferSyntaxUID),
        )
        return 0x0000

    server = serve([(evt.EVT_C_STORE, on_store)])
    count = 1 if pixel_bytes > 1 << 20 else 4
    sent = [write_ct(tmp_path / f"f{i}.dcm", i, pixel_bytes) for i in range(count)]
    files = [str(tmp_path / f"f{i}.dcm") for i in range(count)]
    result = run(
        [storescu, *options, "-aec", "DICOMNET", "127.0.0.1", str(server.address[1]), *files]
    )
    assert result.returncode == 0, result.stderr
    assert set(received) == {ds.SOPInstanceUID for ds in sent}
    for ds in sent:
        got, ts = received[ds.SOPInstanceUID]
        assert ts == expected_ts
        assert same(got, ds)


def test_storescu_failure_status_reported(serve: Any, tmp_path: Path) -> None:
    storescu = require_dcmtk("storescu")

    def on_store(event: evt.Event) -> int:
        raise OSError("no space left")

    server = serve([(evt.EVT_C_STORE, on_store)])
    write_ct(tmp_path / "a.dcm", 0)
    result = run(
        [storescu, "-v", "-aec", "DICOMNET", "127.0.0.1", str(server.address[1]), str(tmp_path / "a.dcm")]
    )
    assert "error: cannotunderstand" in result.stderr.lower()  # C211: Cxxx range


def _patients(n: int) -> list[Dataset]:
    out = []
    for i in range(n):
        ds = Dataset()
        ds.QueryRetrieveLevel = "PATIENT"
        ds.PatientID = f"PID{i:03d}"
        ds.PatientName = f"Doe^{i}"
        out.append(ds)
    return out


def test_findscu(serve: Any, tmp_path: Path) -> None:
    findscu = require_dcmtk("findscu")
    patients = _patients(7)

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset]]:
        wanted = event.identifier.PatientID
        for ds in patients:
            if wanted in ("*", ds.PatientID):
                yield 0xFF00, ds

    server = serve([(evt.EVT_C_FIND, on_find)])
    result = run(
        [findscu, "-P", "-aec", "DICOMNET", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=*",
         "-k", "PatientName", "-X", "-od", str(tmp_path), "127.0.0.1", str(server.address[1])]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.glob("rsp*.dcm"))
    assert [str(pydicom.dcmread(f).PatientID) for f in files] == [p.PatientID for p in patients]


def test_findscu_cancel(serve: Any, tmp_path: Path) -> None:
    findscu = require_dcmtk("findscu")
    seen_cancel: list[int] = []

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset]]:
        for i, ds in enumerate(_patients(400)):
            if event.is_cancelled:
                seen_cancel.append(i)
                return
            yield 0xFF00, ds
            import time

            time.sleep(0.005)  # a slow archive: the cancel arrives while we work

    server = serve([(evt.EVT_C_FIND, on_find)])
    result = run(
        [findscu, "-v", "-P", "-aec", "DICOMNET", "-k", "QueryRetrieveLevel=PATIENT",
         "-k", "PatientID=*", "--cancel", "3", "-X", "-od", str(tmp_path),
         "127.0.0.1", str(server.address[1])]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert seen_cancel, "the handler never saw the C-CANCEL"
    assert seen_cancel[0] < 100
    assert "Cancel" in result.stderr  # findscu logs the FE00 final response
    assert 3 <= len(list(tmp_path.glob("rsp*.dcm"))) < 100


def _retrieve_files(tmp_path: Path, n: int) -> list[Path]:
    src = tmp_path / "src"
    src.mkdir()
    paths = []
    for i in range(n):
        path = src / f"s{i}.dcm"
        write_ct(path, i, 4096)
        paths.append(path)
    return paths


def test_getscu(serve: Any, tmp_path: Path) -> None:
    getscu = require_dcmtk("getscu")
    paths = _retrieve_files(tmp_path, 3)

    def on_get(event: evt.Event) -> Iterator[Any]:
        assert event.identifier.QueryRetrieveLevel == "PATIENT"
        yield len(paths)
        for path in paths:
            yield 0xFF00, str(path)  # file paths are sent as they are

    server = serve([(evt.EVT_C_GET, on_get)])
    out = tmp_path / "out"
    out.mkdir()
    result = run(
        [getscu, "-v", "-P", "-aec", "DICOMNET", "-k", "QueryRetrieveLevel=PATIENT",
         "-k", "PatientID=PID000", "-od", str(out), "127.0.0.1", str(server.address[1])]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    received = {str(pydicom.dcmread(f).SOPInstanceUID): pydicom.dcmread(f) for f in out.iterdir()}
    assert len(received) == 3
    for path in paths:
        original = pydicom.dcmread(path)
        assert same(received[str(original.SOPInstanceUID)], original)


def test_movescu_to_dcmtk_storescp(serve: Any, tmp_path: Path, procs: list[Any]) -> None:
    movescu = require_dcmtk("movescu")
    storescp = require_dcmtk("storescp")
    paths = _retrieve_files(tmp_path, 4)
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    dest_port = free_port()
    dest = subprocess.Popen(
        [storescp, "-aet", "DEST", "-od", str(dest_dir), str(dest_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    procs.append(dest)

    def on_move(event: evt.Event) -> Iterator[Any]:
        if event.move_destination != "DEST":
            yield None, None
            return
        yield "127.0.0.1", dest_port
        yield len(paths)
        for path in paths:
            yield 0xFF00, pydicom.dcmread(path)

    server = serve([(evt.EVT_C_MOVE, on_move)])
    _wait_for_port(dest_port)
    result = run(
        [movescu, "-v", "-P", "-aec", "DICOMNET", "-aem", "DEST", "-k", "QueryRetrieveLevel=PATIENT",
         "-k", "PatientID=PID000", "127.0.0.1", str(server.address[1])]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    received = [pydicom.dcmread(f) for f in dest_dir.iterdir()]
    assert sorted(str(d.SOPInstanceUID) for d in received) == sorted(
        str(pydicom.dcmread(p).SOPInstanceUID) for p in paths
    )
    by_uid = {str(d.SOPInstanceUID): d for d in received}
    for path in paths:
        original = pydicom.dcmread(path)
        assert same(by_uid[str(original.SOPInstanceUID)], original)
    # unknown destination: A801
    result = run(
        [movescu, "-v", "-P", "-aec", "DICOMNET", "-aem", "NOWHERE", "-k",
         "QueryRetrieveLevel=PATIENT", "127.0.0.1", str(server.address[1])]
    )  # fmt: skip
    assert "refused: movedestinationunknown" in result.stderr.lower()  # A801


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")
