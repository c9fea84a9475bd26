"""The flat text identifier encoder matches pydicom's writer byte for byte (PS3.5 6.2, 7.1)."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import IS, DSfloat, PersonName

from dicomnet.dimse.dataset import encode_dataset
from dicomnet.dimse.textenc import encode_flat_text

IGNORE = pydicom_config.IGNORE
CHARSET_VRS = {"SH", "LO", "ST", "LT", "PN", "UC", "UT"}
SINGLE_VRS = {"LT", "ST", "UT", "UR"}  # VM 1 only (PS3.5 6.2)
CODECS = {"ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}

# (tag, VR) pairs in the shape of archive identifiers, plus a private tag.
ELEMENTS = [
    (0x00080018, "UI"), (0x00080020, "DA"), (0x00080030, "TM"), (0x0008002A, "DT"),
    (0x00080050, "SH"), (0x00080052, "CS"), (0x00080054, "AE"), (0x00080060, "CS"),
    (0x00081030, "LO"), (0x00100010, "PN"), (0x00100020, "LO"), (0x00101010, "AS"),
    (0x00101020, "DS"), (0x00200013, "IS"), (0x00204000, "LT"), (0x00081190, "UR"),
    (0x00321060, "LO"), (0x0040A160, "UT"), (0x00102180, "SH"), (0x0008103E, "LO"),
    (0x00180015, "CS"), (0x00320032, "DA"), (0x00091001, "ST"), (0x00190010, "UC"),
    (0x00201206, "IS"), (0x0020000D, "UI"),
]

ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\"))
wide_text = st.text(
    st.sampled_from(list("abcXYZ ^=.-09") + ["é", "ß", "Ö", "€", "漢", "Ω", "ñ"]), max_size=20
)


def _reference(ds: Dataset, implicit: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = True
    write_dataset(fp, ds)
    return fp.getvalue()


@st.composite
def _element_value(draw: Any, vr: str) -> tuple[Any, str]:
    """(value for DataElement, the joined text it stands for)."""
    if vr == "UI":
        one = st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,5}){0,6}", fullmatch=True)
    elif vr == "IS":
        one = st.integers(-(2**31), 2**31 - 1).map(str)
    elif vr == "DS":
        one = st.sampled_from(["1.5", "-0.25", "100", "3e2", "0"])
    elif vr in CHARSET_VRS:
        one = st.one_of(ascii_text.map(lambda s: s[:30]), wide_text)
    else:
        one = ascii_text.map(lambda s: s[:16])
    kind = draw(st.sampled_from(["empty", "none", "single", "multi"]))
    if kind == "none":
        return None, ""
    if kind == "empty":
        return "", ""
    count = 1 if kind == "single" or vr in SINGLE_VRS else draw(st.integers(2, 4))
    texts = [draw(one) for _ in range(count)]
    if vr == "IS" and draw(st.booleans()):
        values: list[Any] = [IS(t) for t in texts]
    elif vr == "DS" and draw(st.booleans()):
        values = [DSfloat(t) for t in texts]
    elif vr == "PN":  # pydicom's writer needs PersonName objects
        values = [PersonName(t) for t in texts]
    else:
        values = list(texts)
    joined = "\\".join(texts)
    if count == 1:
        return values[0], joined
    if draw(st.booleans()):
        return MultiValue(type(values[0]), values), joined
    return values, joined


@st.composite
def identifiers(draw: Any) -> tuple[Dataset, bool]:
    """A generated identifier and whether the fast encoder must handle it."""
    ds = Dataset()
    charset = draw(st.sampled_from([None, "", "ISO_IR 100", "ISO_IR 192"]))
    if charset is not None:
        ds._dict[BaseTag(0x00080005)] = DataElement(0x00080005, "CS", charset)
    codec = CODECS.get(charset or "")
    handled = True
    picks = draw(st.lists(st.sampled_from(ELEMENTS), max_size=12, unique=True))
    for tag, vr in picks:
        value, text = draw(_element_value(vr))
        ds._dict[BaseTag(tag)] = DataElement(
            tag, vr, value, already_converted=True, validation_mode=IGNORE
        )
        if not text.isascii():
            if codec is None or vr not in CHARSET_VRS:
                handled = False
            else:
                try:
                    text.encode(codec)
                except UnicodeEncodeError:
                    handled = False
    return ds, handled


@settings(max_examples=300, deadline=None)
@given(identifiers(), st.booleans())
def test_matches_pydicom_byte_for_byte(case: tuple[Dataset, bool], implicit: bool) -> None:
    ds, handled = case
    fast = encode_flat_text(ds, implicit)
    if handled:
        assert fast is not None
        assert fast == _reference(ds, implicit)
        assert len(fast) % 2 == 0
    else:
        assert fast is None  # pydicom would replace or mis-encode: left to pydicom


@settings(max_examples=100, deadline=None)
@given(identifiers())
def test_encode_dataset_same_for_all_little_endian_syntaxes(case: tuple[Dataset, bool]) -> None:
    ds, handled = case
    if not handled:
        return
    assert encode_dataset(ds, ImplicitVRLittleEndian) == _reference(ds, True)
    assert encode_dataset(ds, ExplicitVRLittleEndian) == _reference(ds, False)
    deflated = encode_dataset(ds, DeflatedExplicitVRLittleEndian)
    assert zlib.decompress(deflated, -15) == _reference(ds, False)
    assert len(deflated) % 2 == 0  # PS3.5 A.5: an odd deflated stream gets a trailing NUL


def _flat() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "IMAGE"
    ds.PatientName = "Müller^Jürgen=ミュラー"
    ds.SOPInstanceUID = "1.2.3"
    ds.InstanceNumber = "7"
    ds.StudyDescription = ""
    return ds


def test_known_bytes_explicit() -> None:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3"  # odd: NUL padded
    ds.Modality = "CT"
    ds.PatientName = "A^B"  # odd: space padded
    ds.ImageComments = "x"  # LT
    fast = encode_flat_text(ds, implicit=False)
    assert fast == (
        b"\x08\x00\x18\x00UI\x06\x001.2.3\x00"
        b"\x08\x00\x60\x00CS\x02\x00CT"
        b"\x10\x00\x10\x00PN\x04\x00A^B "
        b"\x20\x00\x00\x40LT\x02\x00x "
    )
    assert encode_flat_text(ds, implicit=True) == (
        b"\x08\x00\x18\x00\x06\x00\x00\x001.2.3\x00"
        b"\x08\x00\x60\x00\x02\x00\x00\x00CT"
        b"\x10\x00\x10\x00\x04\x00\x00\x00A^B "
        b"\x20\x00\x00\x40\x02\x00\x00\x00x "
    )


def test_long_vr_uses_32_bit_length() -> None:
    ds = Dataset()
    ds.add_new(0x0040A160, "UT", "a" * 70001)
    fast = encode_flat_text(ds, implicit=False)
    assert fast is not None
    assert fast[:12] == b"\x40\x00\x60\xa1UT\x00\x00" + (70002).to_bytes(4, "little")
    assert fast == _reference(ds, False)


def test_non_ascii_utf8_identifier() -> None:
    for implicit in (True, False):
        ds = _flat()  # pydicom's writer caches encoded PN bytes: fresh objects each time
        fast = encode_flat_text(ds, implicit)
        assert fast is not None
        assert "Müller".encode() in fast
        assert fast == _reference(ds, implicit)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda ds: setattr(ds, "OtherPatientIDsSequence", [Dataset()]),  # SQ
        lambda ds: setattr(ds, "Rows", 2),  # US
        lambda ds: setattr(ds, "SpecificCharacterSet", "ISO_IR 144"),  # other charset
        lambda ds: setattr(ds, "SpecificCharacterSet", ["", "ISO 2022 IR 87"]),  # extensions
        lambda ds: setattr(ds, "Modality", "CÉ"),  # non-ASCII CS
        lambda ds: setattr(ds, "StudyDate", __import__("datetime").date(2020, 1, 2)),
        lambda ds: setattr(ds, "AccessionNumber", "x" * 70000),  # SH over 64 KiB
        lambda ds: setattr(ds, "PatientName", PersonName(b"Doe^J")),  # from bytes
    ],
)
def test_falls_back_to_pydicom(mutate: Any) -> None:
    ds = _flat()
    mutate(ds)
    assert encode_flat_text(ds, implicit=False) is None
    # ... and encode_dataset still produces pydicom's bytes.
    assert encode_dataset(ds, ImplicitVRLittleEndian) == _reference(ds, True)


def test_big_endian_uses_pydicom() -> None:
    ds = _flat()
    out = encode_dataset(ds, ExplicitVRBigEndian)
    assert out.startswith(b"\x00\x08\x00\x05CS")  # big endian group/element
