"""Generate the benchmark's data sets (CT-like, small, 32 MB, 1 GiB instances) as Part 10 files.

Theory of operation: every instance is generated from a template with fresh UIDs; pixel data is
deterministic pseudo-random noise so no transport can cheat with compression. Files are written
once per output directory and reused by later runs (a marker file records the parameters).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

IMPL_UID = "1.2.826.0.1.3680043.10.1234.1"


def _base(sop_class: str, study: str, series: str, n: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    # one patient per study (an archive refuses a study arriving under another patient)
    ds.PatientName = "BENCH^PATIENT"
    ds.PatientID = "BENCH" + study[-6:]
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "ACC" + study[-6:]
    ds.StudyID = "1"
    ds.Modality = "CT" if sop_class == CTImageStorage else "OT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = n + 1
    return ds


def _write(ds: Dataset, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPL_UID
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def _image(ds: Dataset, rows: int, cols: int, rng: np.random.Generator, frames: int = 1) -> None:
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = rng.integers(0, 4096, size=rows * cols * frames, dtype=np.uint16).tobytes()


def generate(out: Path, kind: str, count: int) -> list[Path]:
    """Create (or reuse) ``count`` instances of ``kind`` in ``out/kind``; return their paths."""
    folder = out / kind
    marker = folder / ".params.json"
    params = {"kind": kind, "count": count, "version": 2}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return sorted(p for p in folder.iterdir() if p.suffix == ".dcm")
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.glob("*.dcm"):
        p.unlink()
    rng = np.random.default_rng(1234)
    study, series = generate_uid(), generate_uid()
    for n in range(count):
        if kind.startswith("ct"):  # ct, ctarc, ct6: the same CT, other instances
            ds = _base(CTImageStorage, study, series, n)
            _image(ds, 512, 512, rng)
        elif kind.startswith("small"):
            ds = _base(SecondaryCaptureImageStorage, study, series, n)
            _image(ds, 16, 16, rng)
        elif kind == "mr32":
            ds = _base(SecondaryCaptureImageStorage, study, series, n)
            _image(ds, 4096, 4096, rng)
        elif kind == "huge":
            ds = _base(SecondaryCaptureImageStorage, study, series, n)
            _image(ds, 4096, 4096, rng, frames=32)  # 1 GiB of pixel data
        else:
            raise ValueError(kind)
        _write(ds, folder / f"{n:06d}.dcm")
        del ds
    marker.write_text(json.dumps(params))
    return sorted(p for p in folder.iterdir() if p.suffix == ".dcm")


def generate_compressed(out: Path, kind: str, source: list[Path], ts: str) -> list[Path]:
    """``source`` re-encoded in the compressed syntax ``ts`` (pydicom's encoders: the
    dicomnet[codecs] extra), as ``out/kind``; reused by later runs like :func:`generate`."""
    from pydicom import dcmread

    folder = out / kind
    marker = folder / ".params.json"
    params = {"kind": kind, "count": len(source), "ts": ts, "version": 2}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return sorted(p for p in folder.iterdir() if p.suffix == ".dcm")
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.glob("*.dcm"):
        p.unlink()
    for n, src in enumerate(source):
        ds = dcmread(src)
        ds.compress(ts, generate_instance_uid=False)
        ds.save_as(folder / f"{n:06d}.dcm", enforce_file_format=True)
    marker.write_text(json.dumps(params))
    return sorted(p for p in folder.iterdir() if p.suffix == ".dcm")


def generate_big_endian(out: Path, source: Path) -> Path:
    """``source`` (an uncompressed Explicit VR Little Endian file) re-encoded as Explicit VR
    Big Endian by dicomnet's streaming converter: ``out/<name>-be.dcm``, reused when there."""
    from dicomnet.archive.store import encode_file_meta
    from dicomnet.datasource import DataSource
    from dicomnet.transcode import convert, inspect_file

    target = out / f"{source.parent.name}-be.dcm"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    info = inspect_file(str(source))
    src = DataSource(path=str(source), offset=info.dataset_offset,
                     size=info.size - info.dataset_offset, transfer_syntax=info.transfer_syntax)
    be = convert(src, "1.2.840.10008.1.2.2", spool_dir=str(out))
    assert be.path is not None
    with open(target, "wb") as f:
        f.write(encode_file_meta(info.sop_class_uid, info.sop_instance_uid, "1.2.840.10008.1.2.2"))
        for chunk in be.iter_chunks(1 << 20):
            f.write(chunk)
    be.close()
    return target


def ram_dir() -> Path:
    base = Path("/dev/shm") if os.path.isdir("/dev/shm") else Path("/tmp")
    path = base / "dicomnet-bench"
    path.mkdir(exist_ok=True)
    return path
