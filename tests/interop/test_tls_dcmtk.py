"""TLS interoperability with Debian's DCMTK (built with OpenSSL): DCMTK echoscu/storescu over
mutual TLS against our server, and our SCU over mutual TLS against DCMTK storescp. Certificates
come from the session's ``pki`` fixture (a test CA made by openssl)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.transport.tls import client_context, server_context
from tests.conftest import free_port, require_dcmtk

VERIFICATION = "1.2.840.10008.1.1"
DCMTK_ENV = {"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}


def _dcmtk_tls_args(pki: dict[str, Path], role: str) -> list[str]:
    # +tls KEY CERT: our key pair; +cf: trust the test CA; and insist on a peer certificate.
    return ["+tls", str(pki[f"{role}_key"]), str(pki[f"{role}_pem"]),
            "+cf", str(pki["ca_pem"]), "--require-peer-cert"]  # fmt: skip


def _sc_file(path: Path) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "TLS^DCMTK"
    ds.PatientID = "TLS1"
    ds.Modality = "OT"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(range(128))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return ds


@pytest.fixture
def our_tls_server(pki: dict[str, Path]) -> Iterator[tuple[int, list[Dataset]]]:
    received: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        received.append(event.dataset)
        return 0x0000

    ae = AE("OURTLS")
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(SecondaryCaptureImageStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    ctx = server_context(pki["server_pem"], pki["server_key"], pki["ca_pem"], require_client_cert=True)
    server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=ctx,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    assert server is not None
    try:
        yield server.address[1], received
    finally:
        server.shutdown()


def test_dcmtk_echoscu_and_storescu_over_tls_to_our_server(
    our_tls_server: tuple[int, list[Dataset]], pki: dict[str, Path], tmp_path: Path
) -> None:
    port, received = our_tls_server
    echoscu = require_dcmtk("echoscu")
    rc = subprocess.run([echoscu, *_dcmtk_tls_args(pki, "client"), "127.0.0.1", str(port)],
                        env=DCMTK_ENV, capture_output=True, timeout=30)  # fmt: skip
    assert rc.returncode == 0, rc.stderr.decode()
    sent = _sc_file(tmp_path / "sc.dcm")
    storescu = require_dcmtk("storescu")
    rc = subprocess.run([storescu, *_dcmtk_tls_args(pki, "client"), "127.0.0.1", str(port),
                         str(tmp_path / "sc.dcm")], env=DCMTK_ENV, capture_output=True,
                        timeout=30)  # fmt: skip
    assert rc.returncode == 0, rc.stderr.decode()
    assert len(received) == 1
    assert received[0].SOPInstanceUID == sent.SOPInstanceUID
    assert received[0].PixelData == sent.PixelData


def test_dcmtk_echoscu_without_tls_is_refused_by_our_tls_server(
    our_tls_server: tuple[int, list[Dataset]],
) -> None:
    port, _ = our_tls_server
    rc = subprocess.run([require_dcmtk("echoscu"), "-to", "5", "-ta", "5", "127.0.0.1", str(port)],
                        env=DCMTK_ENV, capture_output=True, timeout=60)  # fmt: skip
    assert rc.returncode != 0


def test_our_scu_over_tls_to_dcmtk_storescp(
    pki: dict[str, Path], tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    scp = subprocess.Popen([require_dcmtk("storescp"), *_dcmtk_tls_args(pki, "server"), "-od",
                            str(out), str(port)], env=DCMTK_ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    procs.append(scp)
    ae = AE("OURSCU")
    ae.connection_timeout = 5
    ae.acse_timeout = ae.dimse_timeout = 15
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(SecondaryCaptureImageStorage, ["1.2.840.10008.1.2.1"])
    ctx = client_context(pki["ca_pem"], pki["client_pem"], pki["client_key"])
    sent = _sc_file(tmp_path / "sc.dcm")
    deadline = time.monotonic() + 20
    while True:  # wait for DCMTK to listen (test harness only)
        assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP", ssl_context=ctx)
        if assoc.is_established or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert assoc.is_established, assoc.failure_reason
    with assoc:
        assert assoc.send_c_echo().Status == 0
        assert assoc.send_c_store(tmp_path / "sc.dcm").Status == 0
    files = list(out.iterdir())
    assert len(files) == 1
    got = dcmread(files[0])
    assert got.SOPInstanceUID == sent.SOPInstanceUID and got.PixelData == sent.PixelData
