"""The incremental data set check of a received C-STORE (issue 12): well-formed real files pass
whatever the fragmentation, and each kind of malformed data set is refused with its status."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet.dimse.checker import DataSetChecker, Problem
from dicomnet.dimse.dataset import encode_dataset

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
ELE, ILE, EBE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"


def check(data: bytes, ts: str = ELE, split: int = 0, **kw: str) -> Problem | None:
    checker = DataSetChecker(ts, **kw)
    if split:
        for start in range(0, len(data), split):
            checker.feed(data[start : start + split])
    else:
        checker.feed(data)
    return checker.finish()


def ct(rows: int = 4, cols: int = 4) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "A^B"
    seq_item = Dataset()
    seq_item.CodeValue = "X1"
    ds.add_new(0x00082218, "SQ", [seq_item])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(rows * cols * 2)
    return ds


@pytest.mark.parametrize("ts", [ELE, ILE, DEFLATED])
@pytest.mark.parametrize("split", [0, 1, 3, 7, 64, 1000])
def test_well_formed_passes_whatever_the_fragmentation(ts: str, split: int) -> None:
    ds = ct()
    data = encode_dataset(ds, ts)
    assert check(data, ts, split, sop_class=CT, sop_instance=ds.SOPInstanceUID,
                 context_class=CT) is None  # fmt: skip


def _corpus() -> list[Path]:
    root = Path(pydicom.__file__).parent / "data" / "test_files"
    return sorted(p for p in root.glob("*.dcm"))


def test_real_files_same_answer_for_any_split() -> None:
    """Every pydicom test file: the answer does not depend on how the bytes are split, and the
    well-formed ones (pydicom reads them without complaint) pass."""
    from dicomnet.transcode import UnsendableFile, inspect_file

    checked = 0
    for path in _corpus():
        try:
            info = inspect_file(str(path))
        except UnsendableFile:
            continue
        data = path.read_bytes()[info.dataset_offset :]
        whole = check(data, info.transfer_syntax, sop_class=info.sop_class_uid)
        for split in (1, 5, 13, 4096):
            got = check(data, info.transfer_syntax, split, sop_class=info.sop_class_uid)
            assert (got and (got.status, got.text)) == (whole and (whole.status, whole.text)), path
        checked += 1
        if path.name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm",
                         "rtdose.dcm", "image_dfl.dcm", "MR_small_bigendian.dcm"):  # fmt: skip
            assert whole is None, (path.name, whole)
        if path.name in ("MR_truncated.dcm", "rtplan_truncated.dcm"):
            assert whole is not None and whole.status == 0xC000
    assert checked > 50


def _ele(tag: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def _ids(cls: str = CT, inst: str = "1.2.3.4") -> bytes:
    return _ele(0x00080016, b"UI", cls.encode().ljust(len(cls) + len(cls) % 2, b"\0")) + _ele(
        0x00080018, b"UI", inst.encode().ljust(len(inst) + len(inst) % 2, b"\0")
    )


MALFORMED = {
    "value runs past the end": _ids() + struct.pack("<HH2sH", 0x0010, 0x0020, b"LO", 40)
    + b"SHORT ",
    "value runs past its item": _ids()
    + struct.pack("<HH2s2xI", 0x0008, 0x1140, b"SQ", 24)
    + struct.pack("<HHI", 0xFFFE, 0xE000, 16) + struct.pack("<HH2sH", 0x0008, 0x1150, b"UI", 40)
    + bytes(40),
    "pixel data shorter than declared": _ids()
    + _ele(0x00280010, b"US", struct.pack("<H", 64)) + _ele(0x00280011, b"US", struct.pack("<H", 64))
    + _ele(0x00280100, b"US", struct.pack("<H", 16)) + _ele(0x7FE00010, b"OW", bytes(100)),
    "undefined-length sequence never closed": _ids()
    + struct.pack("<HH2s2xI", 0x0008, 0x1140, b"SQ", 0xFFFFFFFF)
    + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + _ele(0x00081150, b"UI", b"1.2\0"),
    "unknown VR": _ids() + struct.pack("<HH2sH", 0x0010, 0x0010, b"QQ", 2) + b"AB",
    "UID element with VR SQ": _ele(0x00080016, b"UI", CT.encode() + b"\0") + struct.pack(
        "<HH2s2xI", 0x0008, 0x0018, b"SQ", 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0),
    "odd value length": _ids() + struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 3) + b"ABC",
    "no SOP Class UID": _ele(0x00080018, b"UI", b"1.2.3.4\0"),
    "truncated header": _ids() + b"\x10\x00\x10",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_refused_with_cannot_understand(kind: str) -> None:
    for split in (0, 1, 7):
        problem = check(MALFORMED[kind], ELE, split, sop_class=CT, context_class=CT)
        assert problem is not None, kind
        assert problem.status == 0xC000 or kind == "UID element with VR SQ", (kind, problem)
        assert problem.text and "\n" not in problem.text


def test_uid_with_wrong_vr_is_refused() -> None:
    problem = check(MALFORMED["UID element with VR SQ"], ELE, context_class=CT)
    assert problem is not None and "VR" in problem.text


def test_sop_class_and_instance_must_match() -> None:
    """PS3.4 B.2.3: A900, Data Set does not match SOP Class."""
    ds = ct()
    ds.SOPClassUID = MR
    data = encode_dataset(ds, ELE)
    problem = check(data, context_class=CT)
    assert problem is not None and problem.status == 0xA900 and MR in problem.text
    problem = check(encode_dataset(ct(), ELE), sop_instance="1.2.3.999")
    assert problem is not None and problem.status == 0xA900


def test_ybr_422_and_multiframe_lengths() -> None:
    ds = ct(2, 4)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = bytes(2 * 4 * 2)  # 4:2:2: two bytes per pixel
    assert check(encode_dataset(ds, ELE)) is None
    ds.NumberOfFrames = 3
    problem = check(encode_dataset(ds, ELE))
    assert problem is not None and "3 frame" in problem.text
    ds.PixelData = bytes(2 * 4 * 2 * 3)
    assert check(encode_dataset(ds, ELE)) is None


def test_deflate_bomb_and_corrupt_stream() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    # a well-formed element whose 50 MiB value is zeros: ~50 KB deflated
    header = _ids() + struct.pack("<HH2s2xI", 0x0011, 0x1010, b"OB", 50 << 20)
    payload = bomb.compress(header) + bomb.compress(bytes(50 << 20)) + bomb.flush()
    checker = DataSetChecker(DEFLATED, max_inflated=10 << 20)
    checker.feed(payload)
    problem = checker.finish()
    assert problem is not None and "inflates beyond" in problem.text
    assert check(b"\xff\xff\xff\xff garbage", DEFLATED) is not None


def test_hostile_nesting_is_bounded() -> None:
    data = _ids()
    for _ in range(200):
        data += struct.pack("<HH2s2xI", 0x0040, 0xA730, b"SQ", 0xFFFFFFFF)
        data += struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    problem = check(data)
    assert problem is not None and "nested" in problem.text


def test_real_corpus_file_sizes_do_not_matter() -> None:
    """A whole real CT fed in one piece and byte by byte gives the same (no) problem."""
    path = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
    data = encode_dataset(ds, ELE)
    assert check(data, ELE, 1, sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID) is None
