"""Conversions between the uncompressed transfer syntaxes (PS3.5 section 7, A.1-A.3, A.5).

Every direction is checked against pydicom's reading of the result: the same elements with the
same values, sequences and items included, whatever framing (implicit/explicit VR) and byte
order the conversion chose. Edge cases come as hand-made bytes: odd value lengths, values too
long for a 2-byte length, undefined-length UN, group lengths, stray trailing bytes, truncation.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicomnet.datasource import DataSource
from dicomnet.dimse.dataset import encode_dataset
from dicomnet.transcode import ConversionError, convert
from dicomnet.transcode.elements import Encoding, Input, transcode
from dicomnet.transcode.syntax import DEFLATED, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, NATIVE

ALL = list(NATIVE)


def sample() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Müller^Jürgen"
    ds.PatientID = "P1"
    ds.StudyInstanceUID = generate_uid()
    ds.InstanceNumber = 7
    ds.PixelSpacing = [0.5, 0.25]
    ds.ImagePositionPatient = [1.5, -2.25, 3.0]
    ds.FrameIncrementPointer = 0x00181063  # AT: a pair of 16-bit words
    ds.add_new(0x00181310, "US", [0, 256, 256, 0])  # Acquisition Matrix: US, VM 4
    ds.add_new(0x00189327, "FD", 12.125)  # Table Position
    ds.add_new(0x00540081, "US", 3)
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = generate_uid()
    inner = Dataset()
    inner.CodeValue = "T-A0100"
    inner.CodingSchemeDesignator = "SRT"
    item.add_new(0x00082218, "SQ", Sequence([inner]))  # Anatomic Region Sequence
    ds.ReferencedImageSequence = Sequence([item, Dataset()])
    ds.add_new(0x00091010, "LO", "PRIVATE CREATOR")
    ds.add_new(0x00091011, "LO", "private value")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 4
    ds.Columns = 4
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 1
    ds.add_new(0x00280106, "SS", -5)  # Smallest Image Pixel Value: "US or SS"
    ds.add_new(0x00280107, "SS", 2000)
    ds.PixelData = struct.pack("<16h", *range(-8, 8))
    return ds


def decode(data: bytes, ts: str) -> Dataset:
    if ts == DEFLATED:
        data = zlib.decompressobj(-15).decompress(data)
        ts = EXPLICIT_LE
    return read_dataset(io.BytesIO(data), ts == IMPLICIT_LE, ts != EXPLICIT_BE)


def values(ds: Dataset, *, private_raw: bool = False) -> dict[int, object]:
    """Element values as pydicom decodes them; private values compared as raw bytes when
    one side is implicit (their VR is then unknown, PS3.5 6.2.2: UN)."""
    out: dict[int, object] = {}
    for elem in ds:
        tag = int(elem.tag)
        if elem.VR == "SQ":
            out[tag] = [values(i, private_raw=private_raw) for i in elem.value]
        elif private_raw and elem.tag.is_private and not elem.tag.is_private_creator:
            raw = elem.value
            out[tag] = (raw.encode() if isinstance(raw, str) else bytes(raw)).rstrip(b" \0")
        elif elem.tag == 0x7FE00010:
            out[tag] = None  # byte order dependent: compared decoded by pixels()
        else:
            out[tag] = elem.value
    return out


def converted(ds: Dataset, src: str, dst: str) -> bytes:
    data = encode_dataset(ds, src) if src != EXPLICIT_BE else _be(ds)
    out = convert(DataSource.from_bytes(data, src), dst)
    result = out.read()
    assert len(result) % 2 == 0
    return result


def _be(ds: Dataset) -> bytes:
    # pydicom writes OW values of a big endian data set without swapping them; our conversion
    # from little endian swaps them as PS3.5 7.3 says, so big endian inputs are made with it
    return convert(DataSource.from_bytes(encode_dataset(ds, EXPLICIT_LE), EXPLICIT_LE),
                   EXPLICIT_BE).read()  # fmt: skip


def pixels(data: bytes, ts: str) -> list[int]:
    ds = decode(data, ts)
    raw = bytes(ds.PixelData)
    return list(struct.unpack(("<" if ts != EXPLICIT_BE else ">") + "16h", raw))


@pytest.mark.parametrize("src", ALL)
@pytest.mark.parametrize("dst", ALL)
def test_every_direction_keeps_every_value(src: str, dst: str) -> None:
    ds = sample()
    out = converted(ds, src, dst)
    implicit_involved = IMPLICIT_LE in (src, dst)
    want = values(decode(encode_dataset(ds, EXPLICIT_LE), EXPLICIT_LE), private_raw=implicit_involved)
    got = values(decode(out, dst), private_raw=implicit_involved)
    assert got == want
    assert pixels(out, dst) == list(range(-8, 8))
    if dst != IMPLICIT_LE:
        # explicit targets: "US or SS" resolved by Pixel Representation 1 (PS3.5 A.1, PS3.3
        # C.7.6.3.1.4); the private element is UN when its VR was lost in implicit VR
        got_ds = decode(out, dst)
        assert got_ds[0x00280106].VR == "SS" and got_ds[0x00280106].value == -5
        assert ("UN" if src == IMPLICIT_LE else "LO") == got_ds[0x00091011].VR


def test_round_trip_through_big_endian_is_the_identity() -> None:
    le = encode_dataset(sample(), EXPLICIT_LE)
    once = convert(DataSource.from_bytes(le, EXPLICIT_LE), EXPLICIT_BE)
    back = convert(once, EXPLICIT_LE).read()
    again = convert(convert(DataSource.from_bytes(back, EXPLICIT_LE), EXPLICIT_BE),
                    EXPLICIT_LE).read()  # fmt: skip
    assert back == again
    assert values(decode(back, EXPLICIT_LE)) == values(decode(le, EXPLICIT_LE))


def test_big_endian_swaps_words_by_vr() -> None:
    """PS3.5 7.3: tags, lengths and every word of US/SS/UL/FL/FD/AT/OW... are byte-swapped;
    text and OB are not."""
    ds = Dataset()
    ds.add_new(0x00181310, "US", [1, 2])
    ds.add_new(0x00209165, "AT", 0x00100020)
    ds.add_new(0x00189327, "FD", 1.0)
    ds.add_new(0x00080070, "LO", "ACME")
    ds.add_new(0x00291010, "OB", b"\x01\x02\x03\x04")
    be = converted(ds, EXPLICIT_LE, EXPLICIT_BE)
    assert struct.pack(">HH2sHHH", 0x0018, 0x1310, b"US", 4, 1, 2) in be
    assert struct.pack(">HH2sHHH", 0x0020, 0x9165, b"AT", 4, 0x0010, 0x0020) in be
    assert struct.pack(">HH2sHd", 0x0018, 0x9327, b"FD", 8, 1.0) in be
    assert b"LO\x00\x04ACME" in be
    assert be.endswith(b"\x01\x02\x03\x04")


def _implicit(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def test_odd_lengths_are_padded_as_ps3_5_6_2_says() -> None:
    """PS3.5 7.1.1: value lengths are even; an odd one gets a space (text) or NUL (UI, binary)
    -- so the converted data set has an even length and can be sent."""
    raw = (
        _implicit(0x00080016, b"1.2.840.10008.5.1.4.1.1.7")  # 25 bytes, UI
        + _implicit(0x00100010, b"DOE^JOHN^X")
        + _implicit(0x00100020, b"ABC")  # LO, odd
        + _implicit(0x00291010, b"\x01\x02\x03")  # private: UN, odd
    )
    out = convert(DataSource.from_bytes(raw, IMPLICIT_LE), EXPLICIT_LE).read()
    assert len(out) % 2 == 0
    assert b"UI\x1a\x001.2.840.10008.5.1.4.1.1.7\x00" in out
    assert b"LO\x04\x00ABC " in out
    assert b"UN\x00\x00\x04\x00\x00\x00\x01\x02\x03\x00" in out
    # an odd-length data set sent in its own syntax is re-encoded, not sent odd
    same = convert(DataSource.from_bytes(raw, IMPLICIT_LE), IMPLICIT_LE)
    assert same.size % 2 == 0 and b"ABC " in same.read()


def test_deflated_output_gets_the_trailing_null_when_odd() -> None:
    """PS3.5 A.5: a deflated bit stream of odd length is padded with one NUL."""
    for n in range(1, 40):  # some of these deflate to an odd length
        ds = Dataset()
        ds.PatientID = "X" * n
        ds.add_new(0x00100010, "PN", "A" * (n % 7))
        out = converted(ds, EXPLICIT_LE, DEFLATED)
        inflated = zlib.decompressobj(-15).decompress(out)
        assert inflated == encode_dataset(ds, EXPLICIT_LE)
    # a deflated file of odd length, sent in its own syntax: one NUL appended, nothing else
    for n in range(1, 40):
        ds.PatientID = "Y" * n
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        stream = z.compress(encode_dataset(ds, EXPLICIT_LE)) + z.flush()
        if len(stream) % 2:
            break
    assert len(stream) % 2
    sent = convert(DataSource.from_bytes(stream, DEFLATED), DEFLATED).read()
    assert sent == stream + b"\0"


def test_long_value_under_a_short_vr_becomes_un() -> None:
    """A value over 64 KiB that only implicit VR's 4-byte length can carry: UN in explicit VR
    (PS3.5 6.2.2 note), bytes unchanged."""
    text = b"A" * 70000
    raw = _implicit(0x00081030, text)  # Study Description, LO
    out = convert(DataSource.from_bytes(raw, IMPLICIT_LE), EXPLICIT_LE).read()
    assert out[:12] == struct.pack("<HH2s2xI", 0x0008, 0x1030, b"UN", 70000)
    assert out[12:] == text


def test_undefined_length_un_holds_an_implicit_sequence() -> None:
    """PS3.5 6.2.2: an undefined-length UN is an Implicit VR Little Endian sequence; written
    as SQ, its items re-encoded."""
    item = _implicit(0x00080100, b"CODE") + _implicit(0x00080102, b"SRT ")
    seq = (
        struct.pack("<HH2s2xI", 0x0009, 0x1020, b"UN", 0xFFFFFFFF)
        + struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )  # fmt: skip
    out = convert(DataSource.from_bytes(seq, EXPLICIT_LE), IMPLICIT_LE).read()
    ds = decode(out, IMPLICIT_LE)
    assert ds[0x00091020].VR == "SQ" and ds[0x00091020].value[0].CodeValue == "CODE"
    explicit = decode(convert(DataSource.from_bytes(seq, EXPLICIT_LE), EXPLICIT_BE).read(),
                      EXPLICIT_BE)  # fmt: skip
    assert explicit[0x00091020].value[0].CodingSchemeDesignator == "SRT"


def test_group_lengths_dropped_when_the_framing_changes() -> None:
    """PS3.5 7.2: data set group lengths are retired; re-framed they would be wrong."""
    body = _implicit(0x00100010, b"DOE^J ") + _implicit(0x00100020, b"P1")
    raw = _implicit(0x00100000, struct.pack("<I", len(body))) + body
    out = convert(DataSource.from_bytes(raw, IMPLICIT_LE), EXPLICIT_LE).read()
    assert 0x00100000 not in decode(out, EXPLICIT_LE)
    be = convert(DataSource.from_bytes(out, EXPLICIT_LE), EXPLICIT_BE).read()
    assert decode(be, EXPLICIT_BE).PatientID == "P1"


def test_stray_trailing_bytes_are_dropped_and_truncation_refused() -> None:
    good = encode_dataset(sample(), EXPLICIT_LE)
    # fewer than 8 bytes after the last element: not an element, dropped by the re-encoding
    # that sending it "as it is" now needs (the receiver would fail on them)
    fixed = convert(DataSource.from_bytes(good + b"\x00\x00\x00\x00", EXPLICIT_LE), EXPLICIT_LE)
    assert fixed.read() != good + b"\x00\x00\x00\x00"
    assert values(decode(fixed.read(), EXPLICIT_LE)) == values(decode(good, EXPLICIT_LE))
    for cut in (len(good) - 10, len(good) // 2, 30):
        with pytest.raises(ConversionError, match=r"ends inside|runs past|past the end"):
            convert(DataSource.from_bytes(good[:cut], EXPLICIT_LE), EXPLICIT_LE)
        with pytest.raises(ConversionError):
            convert(DataSource.from_bytes(good[:cut], EXPLICIT_LE), IMPLICIT_LE)


def test_hostile_nesting_and_bad_vrs_are_conversion_errors() -> None:
    deep = b""
    for _ in range(100):
        deep = (struct.pack("<HH2s2xI", 0x0040, 0xA730, b"SQ", 0xFFFFFFFF)
                + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + deep
                + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
                + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))  # fmt: skip
    with pytest.raises(ConversionError, match="nested"):
        convert(DataSource.from_bytes(deep, EXPLICIT_LE), IMPLICIT_LE)
    bad = struct.pack("<HH2sH", 0x0010, 0x0010, b"\x01\x02", 2) + b"AB"
    with pytest.raises(ConversionError, match="invalid VR"):
        convert(DataSource.from_bytes(bad, EXPLICIT_LE), IMPLICIT_LE)


def test_streams_large_values_in_pieces() -> None:
    """A value larger than the piece size goes through in pieces, swapped piece by piece."""
    big = bytes(range(256)) * (3 * (1 << 20) // 256 + 3)  # > 3 MiB, a multiple of 2
    raw = struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", len(big)) + big
    pieces: list[bytes] = []
    transcode(Input(stream=io.BytesIO(raw)), pieces.append, Encoding(False, True),
              Encoding(False, False))  # fmt: skip
    out = b"".join(pieces)
    assert len(pieces) > 4  # not one piece: streamed
    assert out[12:16] == big[1::-1] + big[3:1:-1]
    assert len(out) == len(raw)
