"""Re-record the DIMSE command-set vectors in this directory (run from the repo root).

    .venv/bin/python tests/data/dimse/capture.py

1. DCMTK (Debian, /usr/bin) talks to DCMTK through /work/shared/tools/pdu-capture-proxy:
   echoscu/storescu -> storescp, findscu/getscu/movescu -> dcmqrscp (temp config, one stored
   Secondary Capture image). The command PDVs of every P-DATA-TF are reassembled and written as
   ``dcmtk_<nn>_<message>.bin`` (one complete command set each, in exchange order).
2. pynetdicom's own message classes encode the primitives listed in ``PYNETDICOM`` below;
   the bytes go to ``pynetdicom_<message>.bin`` and the parameters to ``pynetdicom.json`` so the
   test can build the same primitive with dicomnet and compare byte for byte.
Not part of the test run (pynetdicom is a test-only peer; it is used here only as an oracle).
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
PROXY = "/work/shared/tools/pdu-capture-proxy"
BIN = "/usr/bin"
NAMES = {
    0x0001: "C_STORE_RQ",
    0x8001: "C_STORE_RSP",
    0x0010: "C_GET_RQ",
    0x8010: "C_GET_RSP",
    0x0020: "C_FIND_RQ",
    0x8020: "C_FIND_RSP",
    0x0021: "C_MOVE_RQ",
    0x8021: "C_MOVE_RSP",
    0x0030: "C_ECHO_RQ",
    0x8030: "C_ECHO_RSP",
    0x0FFF: "C_CANCEL_RQ",
}


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


def command_sets(pdu_files: list[Path]) -> list[bytes]:
    """Reassemble the command PDVs (control bit 0 set) of the P-DATA-TF files, in order."""
    out, partial = [], b""
    for f in pdu_files:
        data = f.read_bytes()
        if data[0] != 4:
            continue
        off = 6
        while off < len(data):
            (length,) = struct.unpack_from(">I", data, off)
            control = data[off + 5]
            payload = data[off + 6 : off + 4 + length]
            off += 4 + length
            if control & 1:
                partial += payload
                if control & 2:
                    out.append(partial)
                    partial = b""
    return out


def make_dataset(path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.11"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.12"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.13"
    ds.PatientName = "DIMSE^VECTOR"
    ds.PatientID = "DIMSE1"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = 8, 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(64)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.99"
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def run(scp: list[str], scu: list[str], cwd: Path, scp_port: int) -> list[bytes]:
    out = Path(tempfile.mkdtemp())
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
    files = sorted(out.iterdir(), key=lambda f: f.name.split("-")[1])
    sets = command_sets(files)
    shutil.rmtree(out)
    return sets


def dcmtk() -> None:
    for old in HERE.glob("dcmtk_*.bin"):
        old.unlink()
    tmp = Path(tempfile.mkdtemp())
    make_dataset(tmp / "img.dcm")
    (tmp / "in").mkdir()
    sets: list[bytes] = []
    port = free_port()
    sets += run(
        [f"{BIN}/storescp", "-od", "in", str(port)],
        [f"{BIN}/echoscu", "127.0.0.1", "{PORT}"],
        tmp,
        port,
    )
    port = free_port()
    sets += run(
        [f"{BIN}/storescp", "-od", "in", str(port)],
        [f"{BIN}/storescu", "127.0.0.1", "{PORT}", "img.dcm"],
        tmp,
        port,
    )
    # dcmqrscp: store the image, then C-FIND, C-GET and C-MOVE it.
    (tmp / "db").mkdir()
    dest_port = free_port()

    def config(port: int) -> None:
        (tmp / "qr.cfg").write_text(
            f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n"
            f"HostTable BEGIN\nmovescu = (MOVESCU, 127.0.0.1, {dest_port})\nHostTable END\n"
            "VendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\nQRSCP {tmp / 'db'} RW (10, 1024mb) ANY\nAETable END\n"
        )

    port = free_port()
    config(port)
    proc = subprocess.Popen([f"{BIN}/dcmqrscp", "-c", "qr.cfg", str(port)], cwd=tmp)
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
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.826.0.1.3680043.8.498.12"]
    for tool, extra in (
        ("findscu", ["-k", "PatientID"]),
        ("getscu", ["-od", "in"]),
        ("movescu", ["-aet", "MOVESCU", "-aem", "MOVESCU", "--port", str(dest_port), "-od", "in"]),
    ):
        port = free_port()
        config(port)
        sets += run(
            [f"{BIN}/dcmqrscp", "-c", "qr.cfg", str(port)],
            [f"{BIN}/{tool}", "-aec", "QRSCP", "-S", *keys, *extra, "127.0.0.1", "{PORT}"],
            tmp,
            port,
        )
    shutil.rmtree(tmp)
    for i, cs in enumerate(sets):
        (field,) = struct.unpack_from("<H", cs, cs.index(b"\x00\x00\x00\x01\x02\x00\x00\x00") + 8)
        name = f"dcmtk_{i:02d}_{NAMES[field]}.bin"
        (HERE / name).write_bytes(cs)
        print(name, len(cs))


CT = "1.2.840.10008.5.1.4.1.1.2"
PRINTER = "1.2.840.10008.5.1.1.16"
MPPS = "1.2.840.10008.3.1.2.3.3"
PYNETDICOM: dict[str, tuple[str, dict[str, object], bool]] = {
    # name: (pynetdicom primitive class + message class, parameters, has dataset)
    "C_ECHO_RQ": ("C_ECHO", {"MessageID": 1, "AffectedSOPClassUID": "1.2.840.10008.1.1"}, False),
    "C_ECHO_RSP": (
        "C_ECHO",
        {"MessageIDBeingRespondedTo": 1, "AffectedSOPClassUID": "1.2.840.10008.1.1", "Status": 0},
        False,
    ),
    "C_STORE_RQ": (
        "C_STORE",
        {
            "MessageID": 7,
            "AffectedSOPClassUID": CT,
            "AffectedSOPInstanceUID": "1.2.3.4.5",
            "Priority": 2,
            "MoveOriginatorApplicationEntityTitle": "MOVER",
            "MoveOriginatorMessageID": 3,
        },
        True,
    ),
    "C_STORE_RSP": (
        "C_STORE",
        {
            "MessageIDBeingRespondedTo": 7,
            "AffectedSOPClassUID": CT,
            "AffectedSOPInstanceUID": "1.2.3.4.5",
            "Status": 0xB000,
        },
        False,
    ),
    "C_FIND_RQ": (
        "C_FIND",
        {"MessageID": 2, "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.2.1", "Priority": 0},
        True,
    ),
    "C_FIND_RSP": (
        "C_FIND",
        {
            "MessageIDBeingRespondedTo": 2,
            "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.2.1",
            "Status": 0xFF00,
        },
        True,
    ),
    "C_GET_RQ": (
        "C_GET",
        {"MessageID": 3, "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.2.3", "Priority": 1},
        True,
    ),
    "C_GET_RSP": (
        "C_GET",
        {
            "MessageIDBeingRespondedTo": 3,
            "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.2.3",
            "Status": 0xFF00,
            "NumberOfRemainingSuboperations": 4,
            "NumberOfCompletedSuboperations": 1,
            "NumberOfFailedSuboperations": 0,
            "NumberOfWarningSuboperations": 2,
        },
        False,
    ),
    "C_MOVE_RQ": (
        "C_MOVE",
        {
            "MessageID": 4,
            "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.1.2",
            "Priority": 0,
            "MoveDestination": "STORESCP",
        },
        True,
    ),
    "C_MOVE_RSP": (
        "C_MOVE",
        {
            "MessageIDBeingRespondedTo": 4,
            "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.1.2",
            "Status": 0xA801,
            "ErrorComment": "unknown destination",
        },
        False,
    ),
    "N_EVENT_REPORT_RQ": (
        "N_EVENT_REPORT",
        {
            "MessageID": 9,
            "AffectedSOPClassUID": "1.2.840.10008.1.20.1",
            "AffectedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
            "EventTypeID": 1,
        },
        True,
    ),
    "N_EVENT_REPORT_RSP": (
        "N_EVENT_REPORT",
        {
            "MessageIDBeingRespondedTo": 9,
            "AffectedSOPClassUID": "1.2.840.10008.1.20.1",
            "AffectedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
            "EventTypeID": 1,
            "Status": 0,
        },
        False,
    ),
    "N_GET_RQ": (
        "N_GET",
        {
            "MessageID": 10,
            "RequestedSOPClassUID": PRINTER,
            "RequestedSOPInstanceUID": "1.2.840.10008.5.1.1.17",
            "AttributeIdentifierList": [0x21100010, 0x21100030],
        },
        False,
    ),
    "N_GET_RSP": (
        "N_GET",
        {
            "MessageIDBeingRespondedTo": 10,
            "AffectedSOPClassUID": PRINTER,
            "AffectedSOPInstanceUID": "1.2.840.10008.5.1.1.17",
            "Status": 0,
        },
        True,
    ),
    "N_SET_RQ": (
        "N_SET",
        {"MessageID": 11, "RequestedSOPClassUID": MPPS, "RequestedSOPInstanceUID": "1.2.3.44"},
        True,
    ),
    "N_SET_RSP": (
        "N_SET",
        {
            "MessageIDBeingRespondedTo": 11,
            "AffectedSOPClassUID": MPPS,
            "AffectedSOPInstanceUID": "1.2.3.44",
            "Status": 0x0106,
            "ErrorComment": "bad value",
            "ErrorID": 5,
        },
        False,
    ),
    "N_ACTION_RQ": (
        "N_ACTION",
        {
            "MessageID": 12,
            "RequestedSOPClassUID": "1.2.840.10008.1.20.1",
            "RequestedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
            "ActionTypeID": 1,
        },
        True,
    ),
    "N_ACTION_RSP": (
        "N_ACTION",
        {
            "MessageIDBeingRespondedTo": 12,
            "AffectedSOPClassUID": "1.2.840.10008.1.20.1",
            "AffectedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
            "ActionTypeID": 1,
            "Status": 0,
        },
        False,
    ),
    "N_CREATE_RQ": (
        "N_CREATE",
        {"MessageID": 13, "AffectedSOPClassUID": MPPS, "AffectedSOPInstanceUID": "1.2.3.45"},
        True,
    ),
    "N_CREATE_RSP": (
        "N_CREATE",
        {
            "MessageIDBeingRespondedTo": 13,
            "AffectedSOPClassUID": MPPS,
            "AffectedSOPInstanceUID": "1.2.3.45",
            "Status": 0,
        },
        True,
    ),
    "N_DELETE_RQ": (
        "N_DELETE",
        {
            "MessageID": 14,
            "RequestedSOPClassUID": "1.2.840.10008.5.1.1.1",
            "RequestedSOPInstanceUID": "1.2.3.46",
        },
        False,
    ),
    "N_DELETE_RSP": (
        "N_DELETE",
        {
            "MessageIDBeingRespondedTo": 14,
            "AffectedSOPClassUID": "1.2.840.10008.5.1.1.1",
            "AffectedSOPInstanceUID": "1.2.3.46",
            "Status": 0x0112,
        },
        False,
    ),
    "C_CANCEL_RQ": ("C_CANCEL", {"MessageIDBeingRespondedTo": 2}, False),
}
DATASET_PARAM = {
    "C_STORE": "DataSet",
    "C_FIND": "Identifier",
    "C_GET": "Identifier",
    "C_MOVE": "Identifier",
    "N_EVENT_REPORT_RQ": "EventInformation",
    "N_EVENT_REPORT_RSP": "EventReply",
    "N_GET": "AttributeList",
    "N_SET_RQ": "ModificationList",
    "N_SET_RSP": "AttributeList",
    "N_ACTION_RQ": "ActionInformation",
    "N_ACTION_RSP": "ActionReply",
    "N_CREATE": "AttributeList",
}


def pynetdicom() -> None:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pynetdicom import dimse_messages, dimse_primitives

    manifest = {}
    for name, (prim_name, params, has_ds) in PYNETDICOM.items():
        prim = getattr(dimse_primitives, prim_name)()
        for k, v in params.items():
            setattr(prim, k, v)
        if has_ds:
            setattr(
                prim,
                DATASET_PARAM.get(name, DATASET_PARAM.get(prim_name, "")),
                io.BytesIO(b"\x08\x00\x05\x00\x00\x00\x00\x00"),
            )
        msg = getattr(dimse_messages, name)()
        msg.primitive_to_message(prim)
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, True
        write_dataset(fp, msg.command_set)
        data = fp.getvalue()
        (HERE / f"pynetdicom_{name}.bin").write_bytes(data)
        manifest[name] = {"primitive": prim_name, "params": params, "dataset": has_ds}
        print(name, len(data))
    (HERE / "pynetdicom.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    dcmtk()
    pynetdicom()
