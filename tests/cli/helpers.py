"""Test data and process helpers for the CLI and archive tests: generated Part 10 files,
running ``dicomnet`` tools as real processes, waiting for a server's port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
ROOT = Path(__file__).resolve().parents[2]
DICOMNET = [sys.executable, "-m", "dicomnet.cli.main"]


def make_dataset(
    *,
    patient_id: str = "PID1",
    patient_name: str = "DOE^JOHN",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    sop_class: str = CT,
    modality: str = "CT",
    study_date: str = "20200102",
    rows: int = 16,
    columns: int = 16,
    instance_number: int = 1,
    series_number: int = 1,
    accession: str = "ACC1",
    study_description: str = "HEAD",
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyDate = study_date
    ds.StudyTime = "101010"
    ds.StudyID = "1"
    ds.AccessionNumber = accession
    ds.StudyDescription = study_description
    ds.ReferringPhysicianName = "WHO^DR"
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    # deterministic but non-trivial pixel data
    ds.PixelData = bytes((i * 7 + instance_number) & 0xFF for i in range(rows * columns * 2))
    return ds


def write_part10(ds: Dataset, path: Path, ts: str = ExplicitVRLittleEndian) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ts
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True, implicit_vr=ts == ImplicitVRLittleEndian,
               little_endian=ts != "1.2.840.10008.1.2.2")
    return path


def make_files(directory: Path, n: int, **kw: object) -> list[Path]:
    """``n`` CT instances of one series (study/series UIDs shared)."""
    study = str(kw.pop("study_uid", generate_uid()))
    series = str(kw.pop("series_uid", generate_uid()))
    ts = str(kw.pop("ts", ExplicitVRLittleEndian))
    out = []
    for i in range(n):
        ds = make_dataset(study_uid=study, series_uid=series, instance_number=i + 1, **kw)  # type: ignore[arg-type]
        out.append(write_part10(ds, directory / f"img{i:04d}.dcm", ts))
    return out


def same_dataset(a: Path | Dataset, b: Path | Dataset) -> bool:
    """Same elements (tags, VRs, values) and pixel data, whatever the transfer syntax."""
    da = a if isinstance(a, Dataset) else dcmread(a)
    db = b if isinstance(b, Dataset) else dcmread(b)
    ea = {e.tag: (e.VR, e.value) for e in da}
    eb = {e.tag: (e.VR, e.value) for e in db}
    return ea == eb


def dcm_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and ".tmp" not in p.parts
                  and _is_part10(p))


def _is_part10(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def by_sop_uid(paths: Iterable[Path]) -> dict[str, Path]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in paths}


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + str(ROOT)
    e.pop("TCP_NODELAY", None)
    e["TCP_NODELAY"] = "1"  # DCMTK peers: no Nagle delays
    return e


def run_tool(args: Sequence[str], timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DICOMNET, *args], capture_output=True, text=True, timeout=timeout, env=env(), **kw  # type: ignore[call-overload]
    )


def start_tool(args: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload]
        [*DICOMNET, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env(), **kw
    )


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")
