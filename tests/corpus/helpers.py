"""The real-file corpus and the checks made on what comes out of each peer.

The corpus is every file of pydicom's own test data (``pydicom/data``: test files, character
set files, palettes, DICOMDIRs) and of the ``pydicom-data`` package, both installed from the
package registry by ``scripts/test``: a few hundred real files in every transfer syntax, with odd
lengths, implicit-VR files without meta header, mismatched meta UIDs, truncated files, broken
compressed data and many character sets. Expectations are computed with pydicom, independently
of the code under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
          "1.2.840.10008.1.2.1.99"}  # fmt: skip
# What a converted instance may change (PS3.5 8.2, PS3.3 C.7.6.1.1.5 / C.7.6.3): the pixel
# encoding and the attributes that describe it; group lengths are re-computed or dropped.
CONVERSION_MAY_CHANGE = {
    0x7FE00010,  # Pixel Data (compared decoded instead)
    0x00280004,  # Photometric Interpretation (YBR -> RGB when lossy JPEG is decoded)
    0x00280006,  # Planar Configuration
    0x00282110,  # Lossy Image Compression ("01" once lossy)
    0x00280008,  # Number of Frames (pydicom writes it for multi-frame results)
    0x00282112, 0x00282114,  # Lossy Image Compression Ratio / Method
}  # fmt: skip


def corpus_sources() -> list[Path]:
    """The installed corpus roots: pydicom's data folder and pydicom-data's."""
    roots = [Path(pydicom.__file__).parent / "data"]
    try:
        import data_store  # the pydicom-data package

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:  # pragma: no cover - scripts/test installs it
        pass
    return roots


def build_corpus(dest: Path) -> Path:
    """Copy every data file of the corpus roots under ``dest`` (relative paths kept)."""
    for n, root in enumerate(corpus_sources()):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith((".py", ".pyc", ".json", ".icc", ".gz")):
                    continue  # code and non-DICOM package files
                src = Path(dirpath) / name
                target = dest / f"r{n}" / src.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)
    return dest


def walk_sorted(root: Path) -> list[Path]:
    """Files in the order storescu -r sends them (sorted names, depth first)."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(Path(dirpath) / n for n in sorted(filenames))
    return out


def read(path: Path, **kw: object) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, force=True, **kw)  # type: ignore[arg-type]
        except Exception:
            return None


@dataclass
class Stored:
    """One received or archived file."""

    path: Path
    sop_instance_uid: str
    transfer_syntax: str


def stored_files(directory: Path) -> dict[str, Stored]:
    """Part 10 files under ``directory`` by SOP Instance UID (temp folders skipped)."""
    out: dict[str, Stored] = {}
    for p in sorted(directory.rglob("*")):
        if not p.is_file() or ".tmp" in p.parts or p.suffix in (".sqlite", ".sqlite-wal",
                                                                ".sqlite-shm", ".log"):  # fmt: skip
            continue
        ds = read(p, stop_before_pixels=True)
        if ds is None or "SOPInstanceUID" not in ds:
            continue
        ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
        out[str(ds.SOPInstanceUID)] = Stored(p, str(ds.SOPInstanceUID), ts)
    return out


def sources_by_uid(files: Iterable[Path]) -> dict[str, list[Path]]:
    """Corpus files by the SOP Instance UID of their data set (several files may share one)."""
    out: dict[str, list[Path]] = {}
    for p in files:
        ds = read(p, stop_before_pixels=True)
        if ds is not None and ds.get("SOPInstanceUID"):
            out.setdefault(str(ds.SOPInstanceUID).strip("\0 "), []).append(p)
    return out


# PS3.10 7.2: Data Set Trailing Padding has no meaning; DCMTK's storescp drops it on receipt.
_NO_MEANING = 0xFFFCFFFC


# pydicom keeps the values of these VRs as raw bytes in the file's byte order; PS3.5 7.3 and
# 8.2 order them in words of this size (OW: 2-byte words, also for Pixel Data with 32-bit cells:
# "the byte ordering of the resulting 2-byte words is defined by the ... Transfer Syntax").
# pydicom's own reader swaps 32-bit Pixel Data cells as 4-byte units instead (and its test file
# rtdose_expb.dcm is written that way); DCMTK 3.6.7 follows the standard's words, and so do we.
_WORDS = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}


def _little(value: bytes, vr: str) -> bytes:
    import array

    size = _WORDS.get(vr, 1)
    if size == 1 or len(value) % size:
        return value
    words = array.array({2: "H", 4: "I", 8: "Q"}[size])
    words.frombytes(value)
    words.byteswap()
    return words.tobytes()


def _elements(ds: Dataset, skip: set[int], big_endian: bool = False) -> dict[int, object]:
    out: dict[int, object] = {}
    for elem in ds:
        tag = int(elem.tag)
        if tag in skip or tag == _NO_MEANING or elem.tag.element == 0 or elem.tag.group == 0x0002:
            continue
        if elem.VR == "SQ":
            out[tag] = [_elements(item, set(), big_endian) for item in elem.value]
        else:
            value = elem.value
            if isinstance(value, bytes | bytearray):
                value = bytes(value)
                if big_endian:
                    value = _little(value, str(elem.VR))
                value = value.rstrip(b"\0 ")  # padding may change with re-encoding
            elif isinstance(value, str):
                value = value.rstrip("\0 ")
            out[tag] = value
    return out


def same_instance(source: Path, received: Path) -> str | None:
    """None when ``received`` carries the instance of ``source``: every element identical
    when the transfer syntax was kept, identical except the pixel encoding (pixels compared
    decoded) when it was converted; else what differs."""
    a, b = read(source), read(received)
    if a is None or b is None:
        return "unreadable"
    ts_a = str(a.file_meta.get("TransferSyntaxUID", "")) if hasattr(a, "file_meta") else ""
    if not ts_a:  # a bare data set: the encoding pydicom found (PS3.5 A.1-A.3)
        from pydicom.dataset import FileMetaDataset

        implicit, little = a.original_encoding
        ts_a = ("1.2.840.10008.1.2" if implicit else
                "1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")  # fmt: skip
        a.file_meta = FileMetaDataset()
        a.file_meta.TransferSyntaxUID = ts_a
    ts_b = str(b.file_meta.get("TransferSyntaxUID", ""))
    converted = ts_a != ts_b and not (ts_a in NATIVE and ts_b in NATIVE)
    skip = set(CONVERSION_MAY_CHANGE) if converted else set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ea = _elements(a, skip, ts_a == "1.2.840.10008.1.2.2")
        eb = _elements(b, skip, ts_b == "1.2.840.10008.1.2.2")
    if ea != eb:
        diff = sorted(t for t in ea.keys() | eb.keys() if ea.get(t) != eb.get(t))
        return "elements differ: " + ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in diff[:6])
    if converted and "PixelData" in a:
        return _same_pixels(a, b, ts_a)
    return None


def _same_pixels(a: Dataset, b: Dataset, ts_a: str) -> str | None:
    """Pixels compared decoded, frame by frame (a 120-frame colour image decoded at once
    would cost the test process a gigabyte)."""
    import numpy as np
    from pydicom.pixels import iter_pixels

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pairs = zip(iter_pixels(a), iter_pixels(b), strict=True)
            for n, (fa, fb) in enumerate(pairs):
                if fa.shape != fb.shape or not np.array_equal(fa, fb):
                    return f"decoded pixels differ in frame {n} ({fa.shape} vs {fb.shape})"
    except ValueError as exc:
        return f"different numbers of frames: {exc}"
    except Exception as exc:
        return f"pixel data not decodable: {exc}"
    if ts_a not in NATIVE and _lossy(ts_a) and b.get("LossyImageCompression") != "01":
        return "lossy data decoded without Lossy Image Compression = 01"
    return None


def _lossy(ts: str) -> bool:
    return ts.startswith("1.2.840.10008.1.2.4.5") or ts in ("1.2.840.10008.1.2.4.81",)


def decodable(path: Path) -> bool:
    """True when pydicom's installed pixel backends decode the file's pixel data (or it has
    none): what the sender's codecs can convert."""
    ds = read(path)
    if ds is None:
        return False
    ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    if "PixelData" not in ds or ts in NATIVE:
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.pixel_array  # noqa: B018
    except Exception:
        return False
    return True


def check_received(received: dict[str, Stored], sources: dict[str, list[Path]]) -> list[str]:
    """Every received instance matched against one of the corpus files with its UID."""
    problems = []
    for uid, got in received.items():
        candidates = sources.get(uid, [])
        if not candidates:
            problems.append(f"{uid}: not from the corpus")
            continue
        results = [same_instance(src, got.path) for src in reversed(candidates)]
        if all(r is not None for r in results):
            problems.append(f"{uid} ({candidates[-1].name}): {results[0]}")
    return problems


def dcmtk(tool: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one of DCMTK's tools (TCP_NODELAY=1 in its environment)."""
    from tests.cli.helpers import env
    from tests.conftest import require_dcmtk

    return subprocess.run([require_dcmtk(tool), *args], capture_output=True, text=True,
                          timeout=timeout, env=env())  # fmt: skip


def refused_by_design(path: Path) -> str | None:
    """Why the archive refuses an instance that DCMTK's storescp (which checks nothing)
    stores, when the standard is on the archive's side; None otherwise."""
    from dicomnet.uid import is_valid_uid

    ds = read(path, stop_before_pixels=True)
    assert ds is not None
    if not is_valid_uid(str(ds.SOPInstanceUID)):
        # PS3.5 9.1: a UID is digits and dots; the archive never lets one become a path
        return "SOP Instance UID is not a UID (PS3.5 9.1)"
    if not ds.get("StudyInstanceUID") and not nonpatient(path):
        # PS3.3 C.7.2.1: Study Instance UID is Type 1 in every patient-based composite IOD
        # (objects outside the patient model -- palettes, hanging protocols -- are stored)
        return "no Study Instance UID (Type 1, PS3.3 C.7.2.1)"
    return None


def nonpatient(path: Path) -> bool:
    """Whether the file is an object outside the patient hierarchy (the archive stores it
    under ``_nonpatient`` and retrieves it by SOP Instance UID, not by study)."""
    from dicomnet.archive.fields import read_instance_fields

    try:
        return not read_instance_fields(path)[0].in_patient_hierarchy
    except Exception:
        return False


