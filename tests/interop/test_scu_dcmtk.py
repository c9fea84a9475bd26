"""Our SCU against DCMTK's storescp and dcmqrscp (real processes, loopback sockets).

storescp runs with ``+B`` (bit-preserving): the file it writes holds exactly the data set bytes
we sent, so "identical" is checked byte for byte against the source file's data set. dcmqrscp
gets a configuration file in the test's temporary directory; its database is filled by our own
C-STOREs, then queried (C-FIND), retrieved (C-GET) and moved (C-MOVE) to a storescp.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.examples import ct, mr
from pydicom.uid import generate_uid

from dicomnet.ae import AE
from dicomnet.dimse.dataset import read_part10_header
from dicomnet.events import EVT_C_STORE
from dicomnet.presentation import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from tests.conftest import free_port, require_dcmtk

pytestmark = pytest.mark.interop

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
SR_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
SR_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
SR_GET = "1.2.840.10008.5.1.4.1.2.2.3"


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Wait until ``port`` accepts TCP connections (test helper; DCMTK has no ready signal)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_storescp(
    procs: list[subprocess.Popen[bytes]], out: Path, *options: str
) -> int:
    exe = require_dcmtk("storescp")
    port = free_port()
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [exe, "-aet", "STORESCP", "-od", str(out), *options, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(proc)
    wait_listening(port, proc)
    return port


def dataset_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    offset, _ts = read_part10_header(data[: 132 + 12 + 65536])
    return data[offset:]


def received(out: Path, sop_instance_uid: str) -> Path:
    found = [p for p in out.iterdir() if p.name.endswith(sop_instance_uid) or sop_instance_uid in p.name]
    assert len(found) == 1, f"{sop_instance_uid} not received exactly once: {list(out.iterdir())}"
    return found[0]


def storage_ae(*transfer_syntaxes: str) -> AE:
    ae = AE("DICOMNET")
    ae.acse_timeout = ae.dimse_timeout = 10
    ts = list(transfer_syntaxes) or None
    ae.add_requested_context(VERIFICATION)
    for uid in (CT, MR, SC):
        ae.add_requested_context(uid, ts)
    return ae


def test_echo_storescp(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    port = start_storescp(procs, tmp_path / "out")
    ae = storage_ae()
    with ae.associate("127.0.0.1", port, ae_title="STORESCP") as assoc:
        assert assoc.is_established
        assert assoc.acceptor.implementation_version_name.startswith("OFFIS_DCMTK")
        for _ in range(20):
            assert assoc.send_c_echo().Status == 0
    assert assoc.is_released


def test_store_file_bit_identical_small_pdu(
    procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    port = start_storescp(procs, out, "+B", "--max-pdu", "4096", "+xe")
    src = tmp_path / "ct.dcm"
    ct.save_as(src, enforce_file_format=True)
    assert dcmread(src).file_meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
    ae = storage_ae()
    with ae.associate("127.0.0.1", port, ae_title="STORESCP") as assoc:
        assert assoc.peer_max_pdata_length == 4096
        assert assoc.find_context(CT).transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
        assert assoc.send_c_store(str(src)).Status == 0
    got = received(out, ct.SOPInstanceUID)
    assert dataset_bytes(got) == dataset_bytes(src)
    dump = subprocess.run([require_dcmtk("dcmdump"), str(got)], capture_output=True, check=True)
    assert ct.SOPInstanceUID.encode() in dump.stdout


def test_store_dataset_reencoded_implicit(
    procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    port = start_storescp(procs, out, "+xi")  # accepts Implicit VR LE only
    ae = storage_ae()
    src = tmp_path / "mr.dcm"
    mr.save_as(src, enforce_file_format=True)  # an Explicit VR big/little source
    with ae.associate("127.0.0.1", port, ae_title="STORESCP") as assoc:
        assert assoc.find_context(MR).transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN
        assert assoc.send_c_store(ct).Status == 0  # Dataset, re-encoded
        assert assoc.send_c_store(src).Status == 0  # file whose TS was not accepted: transcoded
    for ref in (ct, mr):
        got = dcmread(received(out, ref.SOPInstanceUID))
        assert got.file_meta.TransferSyntaxUID == IMPLICIT_VR_LITTLE_ENDIAN
        for elem in ref:
            if elem.tag.group == 0x0002 or elem.tag == 0xFFFCFFFC:
                continue
            assert got[elem.tag].value == elem.value, elem.keyword


def test_store_datasets_deflated_whatever_their_deflated_length(
    procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Data sets sent in a Deflated Explicit VR Little Endian context reach DCMTK however long
    their deflated stream: an odd one gets the trailing NUL of PS3.5 A.5 (DCMTK aborts the
    association on an odd fragment, PS3.8 Annex E; it did so for about half of these before
    the padding)."""
    import zlib

    from dicomnet.dimse.dataset import encode_dataset

    out = tmp_path / "out"
    port = start_storescp(procs, out, "+xd")  # prefers deflate
    deflated = "1.2.840.10008.1.2.1.99"
    sc = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ae = AE()
    ae.add_requested_context(sc, [deflated])
    sent, odd = [], 0
    with ae.associate("127.0.0.1", port, ae_title="STORESCP") as assoc:
        assert assoc.find_context(sc).transfer_syntax == deflated
        for n in range(1, 13):
            ds = Dataset()
            ds.SOPClassUID, ds.SOPInstanceUID = sc, generate_uid()
            ds.PatientID, ds.Rows = "X" * (2 * n), n
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            odd += len(comp.compress(encode_dataset(ds, "1.2.840.10008.1.2.1")) + comp.flush()) % 2
            assert assoc.send_c_store(ds).Status == 0, n
            sent.append(ds)
    assert odd  # some of them deflated to an odd length
    for ds in sent:
        got = dcmread(received(out, ds.SOPInstanceUID))
        assert got.file_meta.TransferSyntaxUID == deflated
        assert (got.PatientID, got.Rows) == (ds.PatientID, ds.Rows)


def test_store_large_file(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    out = tmp_path / "out"
    port = start_storescp(procs, out, "+B")
    ds = copy.deepcopy(ct)
    ds.SOPClassUID = SC
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = SC
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows, ds.Columns, ds.NumberOfFrames = 1024, 1024, 24  # 48 MiB of 16-bit pixels
    ds.PixelData = bytes(range(256)) * (1024 * 1024 * 24 * 2 // 256)
    src = tmp_path / "big.dcm"
    ds.save_as(src, enforce_file_format=True)
    ae = storage_ae()
    with ae.associate("127.0.0.1", port, ae_title="STORESCP") as assoc:
        t0 = time.monotonic()
        assert assoc.send_c_store(src).Status == 0
        elapsed = time.monotonic() - t0
    got = received(out, ds.SOPInstanceUID)
    assert dataset_bytes(got) == dataset_bytes(src)
    assert elapsed < 20


# --- dcmqrscp ----------------------------------------------------------------------------------


@pytest.fixture
def qrscp(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> Iterator[dict[str, object]]:
    exe = require_dcmtk("dcmqrscp")
    port, dest_port = free_port(), free_port()
    db = tmp_path / "db"
    db.mkdir()
    dest_out = tmp_path / "dest"
    config = tmp_path / "dcmqrscp.cfg"
    config.write_text(
        f"""
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
dest = (DEST, 127.0.0.1, {dest_port})
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
QRSCP   {db}   RW  (200, 1024mb)   ANY
AETable END
"""
    )
    proc = subprocess.Popen(
        [exe, "-c", str(config)],  # fork mode: 3.6.7 crashes after a release with -s
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    procs.append(proc)
    wait_listening(port, proc)
    # fill the archive with our own C-STOREs: two patients, the CT in three copies
    instances = []
    ae = storage_ae()
    with ae.associate("127.0.0.1", port, ae_title="QRSCP") as assoc:
        for _ in range(3):
            ds = copy.deepcopy(ct)
            ds.SOPInstanceUID = generate_uid()
            assert assoc.send_c_store(ds).Status == 0
            instances.append(ds.SOPInstanceUID)
        assert assoc.send_c_store(mr).Status == 0
    yield {"port": port, "dest_port": dest_port, "dest_out": dest_out, "instances": instances}


def qr_ae() -> AE:
    ae = AE("DICOMNET")
    ae.acse_timeout = ae.dimse_timeout = 10
    for uid in (SR_FIND, SR_MOVE, SR_GET):
        ae.add_requested_context(uid)
    ae.add_requested_context(CT, scp_role=True, scu_role=False)
    return ae


def test_qrscp_find(qrscp: dict[str, object]) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = ct.StudyInstanceUID
    query.SeriesInstanceUID = ct.SeriesInstanceUID
    query.SOPInstanceUID = ""
    with qr_ae().associate("127.0.0.1", qrscp["port"], ae_title="QRSCP") as assoc:
        results = list(assoc.send_c_find(query, "S"))
        pending = [ident for status, ident in results if status.Status in (0xFF00, 0xFF01)]
        assert results[-1][0].Status == 0x0000
        assert sorted(str(i.SOPInstanceUID) for i in pending) == sorted(qrscp["instances"])  # type: ignore[arg-type]
        # an identifier without the key attributes of its level: refused by dcmqrscp
        bad = Dataset()
        bad.QueryRetrieveLevel = "IMAGE"
        results = list(assoc.send_c_find(bad, SR_FIND))
        assert results[-1][0].Status not in (0x0000, 0xFF00)


def test_qrscp_get(qrscp: dict[str, object]) -> None:
    got: list[Dataset] = []

    def on_store(event: object) -> int:
        got.append(event.dataset)  # type: ignore[attr-defined]
        return 0

    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = ct.StudyInstanceUID
    query.SeriesInstanceUID = ct.SeriesInstanceUID
    with qr_ae().associate(
        "127.0.0.1", qrscp["port"], ae_title="QRSCP", evt_handlers=[(EVT_C_STORE, on_store)]
    ) as assoc:
        results = list(assoc.send_c_get(query, "S"))
    final = results[-1][0]
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == 3
    assert sorted(str(d.SOPInstanceUID) for d in got) == sorted(qrscp["instances"])  # type: ignore[arg-type]
    assert all(d.PixelData == ct.PixelData for d in got)


def test_qrscp_move(qrscp: dict[str, object], procs: list[subprocess.Popen[bytes]]) -> None:
    exe = require_dcmtk("storescp")
    dest_out = qrscp["dest_out"]
    assert isinstance(dest_out, Path)
    dest_out.mkdir()
    proc = subprocess.Popen(
        [exe, "-aet", "DEST", "-od", str(dest_out), str(qrscp["dest_port"])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(proc)
    wait_listening(int(qrscp["dest_port"]), proc)  # type: ignore[call-overload]
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = mr.StudyInstanceUID
    with qr_ae().associate("127.0.0.1", qrscp["port"], ae_title="QRSCP") as assoc:
        results = list(assoc.send_c_move(query, "DEST", "S"))
        assert results[-1][0].Status == 0x0000
        assert results[-1][0].NumberOfCompletedSuboperations == 1
        unknown = list(assoc.send_c_move(query, "NOWHERE", "S"))
        assert unknown[-1][0].Status == 0xA801
    assert dcmread(received(dest_out, mr.SOPInstanceUID)).PixelData == mr.PixelData


def test_qrscp_cancel_get(qrscp: dict[str, object]) -> None:
    """C-CANCEL during a C-GET: dcmqrscp checks for it between sub-operations."""
    count = 0

    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = ct.StudyInstanceUID
    query.SeriesInstanceUID = ct.SeriesInstanceUID
    with qr_ae().associate("127.0.0.1", qrscp["port"], ae_title="QRSCP") as assoc:

        def on_store(event: object) -> int:
            nonlocal count
            count += 1
            if count == 1:
                assoc.send_c_cancel(41)
            return 0

        assoc.bind(EVT_C_STORE, on_store)
        results = list(assoc.send_c_get(query, "S", msg_id=41))
        final = results[-1][0]
        assert final.Status == 0xFE00
        assert final.NumberOfCompletedSuboperations < 3
        # the association carries on after the cancel
        results = list(assoc.send_c_find(query, "S"))
        assert results[-1][0].Status == 0x0000
