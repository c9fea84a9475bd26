"""DataSource: bytes, pydicom Datasets, Part 10 / raw files, spool files (PS3.10 7.1, PS3.5)."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomnet.datasource import DataSource, SpoolFile
from dicomnet.dimse.dataset import encoding_of, read_part10_header
from dicomnet.dimse.payload import Payload
from dicomnet.errors import DimseError

CT = "1.2.840.10008.5.1.4.1.1.2"


def _ds() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "Doe^John"
    ds.Rows = 2
    return ds


def _part10(path: Path, ts: str = ExplicitVRLittleEndian, preamble: bool = True) -> Dataset:
    ds = _ds()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = ts
    ds.save_as(
        path, enforce_file_format=True, little_endian=True, implicit_vr=ts == ImplicitVRLittleEndian
    )
    if not preamble:
        raw = path.read_bytes()
        path.write_bytes(raw[132:])
    return ds


def test_from_bytes_is_zero_copy_and_chunks() -> None:
    buf = bytearray(b"abcdefg")
    src = DataSource.from_bytes(buf)
    assert src.size == 7
    chunks = list(src.iter_chunks(3))
    assert [bytes(c) for c in chunks] == [b"abc", b"def", b"g"]
    buf[0:1] = b"Z"  # views see the original buffer: nothing was copied
    assert bytes(chunks[0]) == b"Zbc"
    assert src.read() == b"Zbcdefg"
    assert src.path is None and src.offset == 0


def test_encoding_of() -> None:
    assert encoding_of("1.2.840.10008.1.2") == (True, True, False)
    assert encoding_of("1.2.840.10008.1.2.1") == (False, True, False)
    assert encoding_of("1.2.840.10008.1.2.2") == (False, False, False)
    assert encoding_of("1.2.840.10008.1.2.1.99") == (False, True, True)
    assert encoding_of("1.2.840.10008.1.2.4.50") == (False, True, False)


@pytest.mark.parametrize(
    "ts",
    ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"],
)
def test_from_dataset_round_trip(ts: str) -> None:
    ds = _ds()
    src = DataSource.from_dataset(ds, ts)
    assert src.transfer_syntax == ts
    assert src.decode() is ds  # no round trip needed
    again = DataSource.from_bytes(src.read(), ts).decode()
    assert again.PatientName == "Doe^John" and again.Rows == 2
    assert src.size == len(src.read())


def test_from_dataset_encodings_differ_as_specified() -> None:
    ds = _ds()
    implicit = DataSource.from_dataset(ds, "1.2.840.10008.1.2").read()
    explicit = DataSource.from_dataset(ds, "1.2.840.10008.1.2.1").read()
    big = DataSource.from_dataset(ds, "1.2.840.10008.1.2.2").read()
    deflated = DataSource.from_dataset(ds, "1.2.840.10008.1.2.1.99").read()
    assert explicit[4:6] == b"UI" and implicit[4:6] != b"UI"
    assert big[0:4] == b"\x00\x08\x00\x16"  # (0008,0016) big endian
    assert zlib.decompress(deflated, -15) == explicit  # raw deflate, PS3.5 A.5


def test_from_dataset_drops_file_meta() -> None:
    ds = _ds()
    ds.add_new(0x00020010, "UI", ExplicitVRLittleEndian)
    ds.add_new(0x00020000, "UL", 10)
    raw = DataSource.from_dataset(ds, ExplicitVRLittleEndian).read()
    assert raw[0:2] == b"\x08\x00"
    assert "TransferSyntaxUID" in ds  # the caller's dataset is untouched


@pytest.mark.parametrize("preamble", [True, False])
@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_from_part10_file(tmp_path: Path, ts: str, preamble: bool) -> None:
    path = tmp_path / "x.dcm"
    _part10(path, ts, preamble)
    src = DataSource.from_file(path)
    assert src.transfer_syntax == ts
    assert src.path == str(path)
    raw = path.read_bytes()
    assert src.offset + src.size == len(raw)
    assert raw[src.offset : src.offset + 4] == b"\x08\x00\x16\x00"  # (0008,0016) first
    assert src.decode().SOPInstanceUID == "1.2.3.4"
    assert b"".join(bytes(c) for c in src.iter_chunks(5)) == raw[src.offset :]


def test_raw_file_uses_caller_transfer_syntax(tmp_path: Path) -> None:
    raw = DataSource.from_dataset(_ds(), ImplicitVRLittleEndian).read()
    path = tmp_path / "raw.bin"
    path.write_bytes(raw)
    src = DataSource.from_file(path, ImplicitVRLittleEndian)
    assert src.offset == 0 and src.size == len(raw)
    assert src.transfer_syntax == ImplicitVRLittleEndian
    assert src.decode().PatientName == "Doe^John"
    nots = DataSource.from_file(path)
    with pytest.raises(DimseError):
        nots.decode()


def test_meta_without_group_length(tmp_path: Path) -> None:
    ts = ExplicitVRLittleEndian.encode() + b"\0"
    elem = struct.pack("<HH2sH", 2, 0x10, b"UI", len(ts)) + ts
    body = DataSource.from_dataset(_ds(), ExplicitVRLittleEndian).read()
    data = b"\0" * 128 + b"DICM" + elem + body
    off, found = read_part10_header(data)
    assert (off, found) == (132 + len(elem), ExplicitVRLittleEndian)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\0" * 128 + b"DICM",  # magic, no meta at all
        b"\0" * 128 + b"DICM" + struct.pack("<HH2sH", 2, 0, b"UL", 4) + struct.pack("<I", 1 << 30),
        b"\0" * 128 + b"DICM" + struct.pack("<HH2sH", 2, 0, b"UL", 4) + struct.pack("<I", 500),
        b"\0" * 128 + b"DICM" + struct.pack("<HH2sH", 2, 0x10, b"UI", 60000) + b"1.2",
        b"\0" * 128 + b"DICM" + struct.pack("<HH2sHI", 2, 1, b"OB", 0, 0xFFFFFFF0),
        b"\0" * 128 + b"DICM" + struct.pack("<HH2sH", 2, 1, b"\x01\x02", 2) + b"ab",
        b"\0" * 128 + b"DICM" + b"\x02\x00\x01",  # truncated element header
    ],
)
def test_hostile_meta_header_raises_dimse_error(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "bad.dcm"
    path.write_bytes(garbage)
    with pytest.raises(DimseError):
        DataSource.from_file(path)


def test_missing_file_is_dimse_error(tmp_path: Path) -> None:
    with pytest.raises(DimseError):
        DataSource.from_file(tmp_path / "nope.dcm")


def test_file_chunks_survive_later_reads(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    data = os.urandom(3 * 1024 * 1024 + 7)
    path.write_bytes(data)
    src = DataSource.from_file(path, ExplicitVRLittleEndian)
    chunks = list(src.iter_chunks(16378))  # kept all at once: each must stay intact
    assert all(len(c) == 16378 for c in chunks[:-1])
    assert b"".join(bytes(c) for c in chunks) == data


def test_file_that_shrinks_while_read(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 1000)
    src = DataSource.from_file(path, ExplicitVRLittleEndian)
    path.write_bytes(b"x" * 10)
    with pytest.raises(DimseError):
        src.read()


def test_spool_file_deleted_on_close(tmp_path: Path) -> None:
    spool = SpoolFile(str(tmp_path))
    spool.write(b"abc")
    spool.write(memoryview(b"def"))
    src = spool.finish(ExplicitVRLittleEndian)
    assert os.path.exists(src.path or "")
    assert src.read() == b"abcdef" and src.owned
    with src:
        pass
    assert not os.path.exists(spool.path)
    src.close()  # idempotent


def test_spool_detach_keeps_file(tmp_path: Path) -> None:
    spool = SpoolFile(str(tmp_path))
    spool.write(b"abc")
    src = spool.finish()
    path = src.detach()
    src.close()
    assert path is not None and Path(path).read_bytes() == b"abc"


def test_spool_move_to_with_prefix(tmp_path: Path) -> None:
    spool = SpoolFile(str(tmp_path), prefix=b"HEAD")
    spool.write(b"body")
    src = spool.finish()
    assert src.offset == 4 and src.size == 4 and src.read() == b"body"
    dest = tmp_path / "final.dcm"
    assert src.move_to(dest) == str(dest)
    assert dest.read_bytes() == b"HEADbody"
    assert not os.path.exists(spool.path)
    src.close()
    assert dest.exists()  # moved files are no longer owned
    assert src.read() == b"body"


def test_move_to_writes_memory_sources(tmp_path: Path) -> None:
    src = DataSource.from_bytes(b"123456")
    dest = tmp_path / "m.bin"
    src.move_to(dest)
    assert dest.read_bytes() == b"123456"
    assert src.path == str(dest) and src.read() == b"123456"


def test_spool_discard_and_bad_dir(tmp_path: Path) -> None:
    spool = SpoolFile(str(tmp_path))
    spool.write(b"zz")
    spool.discard()
    assert not os.path.exists(spool.path)
    with pytest.raises(DimseError):
        SpoolFile(str(tmp_path / "missing" / "dir"))


def test_decode_garbage_is_dimse_error() -> None:
    with pytest.raises(DimseError):
        DataSource.from_bytes(b"\x01\x02\x03", "1.2.840.10008.1.2.1.99").decode()


def test_a_closed_memory_source_stays_readable_a_closed_spool_file_is_gone(tmp_path: Path) -> None:
    """close() ends what lives outside the object (an owned spool file); bytes in memory go
    with the object, so a handler's kept event still decodes (see test_kept_events)."""
    src = DataSource.from_bytes(b"abc")
    src.close()
    assert src.read() == b"abc"
    spool = SpoolFile(str(tmp_path))
    spool.write(b"xyz")
    owned = spool.finish()
    path = owned.path
    assert path is not None and os.path.exists(path)
    owned.close()
    assert not os.path.exists(path)
    with pytest.raises(DimseError):
        owned.read()


def test_deflate_bomb_is_refused_not_inflated() -> None:
    """A small deflated payload that claims far more than the cap is refused with
    DimseError before it is inflated past the cap (hostile-peer rule: bounded memory)."""
    import zlib

    import pytest

    from dicomnet.dimse.dataset import decode_dataset
    from dicomnet.errors import DimseError

    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = comp.compress(b"\x00" * (8 << 20)) + comp.flush()
    assert len(bomb) < 16 << 10
    with pytest.raises(DimseError, match="inflates beyond"):
        decode_dataset(bomb, "1.2.840.10008.1.2.1.99", max_inflated=1 << 20)


def test_deflated_dataset_within_the_cap_decodes() -> None:
    from pydicom.dataset import Dataset

    from dicomnet.datasource import DataSource
    from dicomnet.dimse.dataset import decode_dataset

    ds = Dataset()
    ds.PatientName = "DEFLATE^TEST"
    ds.PatientID = "42"
    encoded = DataSource.from_dataset(ds, "1.2.840.10008.1.2.1.99").read()
    back = decode_dataset(encoded, "1.2.840.10008.1.2.1.99", max_inflated=1 << 20)
    assert back.PatientName == "DEFLATE^TEST" and back.PatientID == "42"


# -- the pure Payload (dimse) and the file-backed DataSource (dicomnet.datasource) ---------------


def test_payload_is_pure_and_datasource_extends_it(tmp_path: Path) -> None:
    buf = bytearray(b"abcdef")
    pure = Payload.from_bytes(buf, ExplicitVRLittleEndian)
    assert type(pure) is Payload and not isinstance(pure, DataSource)
    assert (pure.is_file, pure.path, pure.offset, pure.owned) == (False, None, 0, False)
    assert pure.getbuffer() is not None and pure.size == 6
    buf[0:1] = b"Z"  # a view, not a copy
    assert [bytes(c) for c in pure.iter_chunks(4)] == [b"Zbcd", b"ef"]
    assert pure.detach() is None
    with pytest.raises(DimseError, match="file-backed"):
        next(pure.iter_regions(4))
    with pure:
        pass
    assert pure.read() == b"Zbcdef"  # closing leaves bytes in memory to the object's lifetime
    encoded = Payload.from_dataset(_ds(), ExplicitVRLittleEndian)
    assert encoded.decode().PatientName == "Doe^John"
    assert encoded.read() == DataSource.from_dataset(_ds(), ExplicitVRLittleEndian).read()
    # DataSource: the same in memory, plus files
    assert isinstance(DataSource.from_bytes(b"x"), Payload)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"0123456789")
    src = DataSource(path=str(path), offset=2, transfer_syntax=ExplicitVRLittleEndian)
    assert src.is_file and src.getbuffer() is None and src.size == 8
    assert src.read() == b"23456789"
    assert [len(r) for r in src.iter_regions(3)] == [3, 3, 2]
    assert repr(src).startswith("DataSource(file, size=8, path=")
    assert repr(DataSource.from_bytes(b"ab")).startswith("DataSource(bytes, size=2, path=None")


def test_move_to_keeps_a_dataset_sources_dataset(tmp_path: Path) -> None:
    ds = _ds()
    src = DataSource.from_dataset(ds, ExplicitVRLittleEndian)
    encoded = src.read()
    dest = tmp_path / "d.bin"
    src.move_to(dest)
    assert src.is_file and src.getbuffer() is None and src.size == len(encoded)
    assert dest.read_bytes() == encoded and src.read() == encoded
    assert src.dataset is ds and src.decode() is ds


def test_a_deflated_data_set_is_padded_to_an_even_length() -> None:
    """PS3.5 A.5: a deflated stream of odd length gets one trailing NUL, so that the P-DATA
    value it travels in is even (PS3.8 Annex E; DCMTK aborts an odd fragment). Found by
    comparing with pynetdicom's dsutils.encode, which pads."""
    import zlib

    from pydicom.dataset import Dataset

    from dicomnet.dimse.dataset import decode_dataset, encode_dataset

    deflated_ts = "1.2.840.10008.1.2.1.99"
    odd_seen = 0
    for n in range(1, 40):
        ds = Dataset()
        ds.PatientID = "X" * (2 * n)
        ds.Rows = n
        raw = encode_dataset(ds, "1.2.840.10008.1.2.1")
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        odd_seen += len(comp.compress(raw) + comp.flush()) % 2
        out = encode_dataset(ds, deflated_ts)
        assert len(out) % 2 == 0
        assert decode_dataset(out, deflated_ts) == ds
    assert odd_seen  # the loop met odd raw streams, so the padding was exercised
