"""Re-record the PDU vectors in this directory (run from the repo root with the venv python).

    .venv/bin/python tests/data/pdus/capture.py

Each scenario starts an SCP, puts /work/shared/tools/pdu-capture-proxy (one file per PDU) in
front of it and runs an SCU through the proxy. DCMTK tools are Debian's in /usr/bin; the
pynetdicom scenario uses pynetdicom's library API on both sides. Not part of the test run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
PROXY = "/work/shared/tools/pdu-capture-proxy"
BIN = "/usr/bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def make_dataset(path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    ds.PatientName = "VECTOR^TEST"
    ds.PatientID = "PDU1"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = 64, 80
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(range(256)) * 40  # 10240 bytes: several PDUs with --max-pdu 4096
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(entropy_srcs=["dicomnet-vectors"])
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def run(name: str, scp: list[str], scu: list[str], cwd: Path, scp_port: int) -> None:
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    proxy_port = free_port()
    scp_proc = subprocess.Popen(scp, cwd=cwd)
    proxy = subprocess.Popen(
        [sys.executable, PROXY, str(proxy_port), "127.0.0.1", str(scp_port), str(out), "--once"]
    )
    try:
        wait_port(scp_port)
        time.sleep(0.2)
        scu = [a.replace("{PORT}", str(proxy_port)) for a in scu]
        subprocess.run(scu, cwd=cwd, timeout=30, check=False)
        proxy.wait(timeout=10)
    finally:
        for p in (proxy, scp_proc):
            if p.poll() is None:
                p.kill()
            p.wait()
    print(name, sorted(f.name for f in out.iterdir()))


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    make_dataset(tmp / "img.dcm")
    (tmp / "in").mkdir()
    port = free_port()
    storescp = [f"{BIN}/storescp", "-od", str(tmp / "in"), str(port)]
    run("dcmtk_echo", storescp, [f"{BIN}/echoscu", "127.0.0.1", "{PORT}"], tmp, port)
    port = free_port()
    storescp = [f"{BIN}/storescp", "-od", str(tmp / "in"), str(port)]
    run("dcmtk_store", storescp, [f"{BIN}/storescu", "127.0.0.1", "{PORT}", "img.dcm"], tmp, port)
    port = free_port()
    storescp = [f"{BIN}/storescp", "--max-pdu", "4096", "-od", str(tmp / "in"), str(port)]
    run(
        "dcmtk_store_pdu4096",
        storescp,
        [f"{BIN}/storescu", "--max-pdu", "4096", "127.0.0.1", "{PORT}", "img.dcm"],
        tmp,
        port,
    )
    port = free_port()
    storescp = [f"{BIN}/storescp", "-od", str(tmp / "in"), str(port)]
    run("dcmtk_abort", storescp, [f"{BIN}/echoscu", "--abort", "127.0.0.1", "{PORT}"], tmp, port)

    # dcmqrscp with a one-AE configuration; store the image, then C-FIND it.
    port = free_port()
    (tmp / "db").mkdir()
    (tmp / "dcmqrscp.cfg").write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n"
        "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nQRSCP {tmp / 'db'} RW (10, 1024mb) ANY\nAETable END\n"
    )
    qr = [f"{BIN}/dcmqrscp", "-c", str(tmp / "dcmqrscp.cfg"), str(port)]
    proc = subprocess.Popen(qr, cwd=tmp)
    try:
        wait_port(port)
        subprocess.run(
            [f"{BIN}/storescu", "-aec", "QRSCP", "127.0.0.1", str(port), "img.dcm"],
            cwd=tmp,
            check=True,
            timeout=30,
        )
    finally:
        proc.kill()
        proc.wait()
    port2 = free_port()
    (tmp / "dcmqrscp.cfg").write_text(
        (tmp / "dcmqrscp.cfg").read_text().replace(f"Port = {port}", f"Port = {port2}")
    )
    run(
        "dcmtk_find",
        qr[:-1] + [str(port2)],
        [
            f"{BIN}/findscu",
            "-aec",
            "QRSCP",
            "-S",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=PDU1",
            "-k",
            "StudyInstanceUID",
            "127.0.0.1",
            "{PORT}",
        ],
        tmp,
        port2,
    )
    port3 = free_port()
    (tmp / "dcmqrscp.cfg").write_text(
        (tmp / "dcmqrscp.cfg").read_text().replace(f"Port = {port2}", f"Port = {port3}")
    )
    run(
        "dcmtk_reject",
        qr[:-1] + [str(port3)],
        [f"{BIN}/echoscu", "-aec", "NOSUCHAE", "127.0.0.1", "{PORT}"],
        tmp,
        port3,
    )

    port = free_port()
    run(
        "pynetdicom_echo",
        [sys.executable, str(HERE / "pynetdicom_peer.py"), "scp", str(port)],
        [sys.executable, str(HERE / "pynetdicom_peer.py"), "scu", "{PORT}"],
        tmp,
        port,
    )
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
