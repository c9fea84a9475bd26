"""The fast header scan used on the C-STORE path agrees with pydicom, and steps aside (returns
None) whenever it cannot be sure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import Dataset
from pydicom.sequence import Sequence

from dicomnet.archive.index import (
    MAX_PARAMETERS,
    ArchiveIndex,
    fields_from_dataset,
    scan_instance_fields,
)
from dicomnet.archive.matching import glob_match, python_matcher
from dicomnet.archive.models import QueryError
from dicomnet.archive.store import FileStore
from tests.archive.conftest import CT, EXPLICIT, IMPLICIT, encode, make_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def with_sequences(ds: Dataset) -> Dataset:
    """Add an undefined-length sequence with nested undefined-length items before the keys."""
    inner = Dataset()
    inner.ReferencedSOPClassUID = CT
    inner.ReferencedSOPInstanceUID = "1.2.3"
    nested = Dataset()
    nested.CodeValue = "X"
    inner.ConceptNameCodeSequence = Sequence([nested])
    ds.ReferencedImageSequence = Sequence([inner, Dataset()])  # (0008,1140)
    ds["ReferencedImageSequence"].is_undefined_length = True
    inner["ConceptNameCodeSequence"].is_undefined_length = True
    for item in ds.ReferencedImageSequence:
        item.is_undefined_length_sequence_item = True
    return ds


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, "1.2.840.10008.1.2.4.50"])
@pytest.mark.parametrize("sequences", [False, True])
def test_scan_agrees_with_pydicom(ts: str, sequences: bool) -> None:
    ds = make_dataset("2.25.4.1", 3)  # ISO_IR 100 with a non-ASCII name
    if sequences:
        ds = with_sequences(ds)
    data = encode(ds, IMPLICIT if ts == IMPLICIT else EXPLICIT)
    if sequences:
        assert data.count(b"\xfe\xff\xdd\xe0") == 2  # two undefined-length sequences
    scanned = scan_instance_fields(data, ts)
    assert scanned is not None
    assert scanned == fields_from_dataset(ds)
    assert scanned.patient_name == "Müller^Jörg"
    assert scanned.instance_number == "3" and scanned.series_number == "1"


def test_scan_steps_aside_when_unsure() -> None:
    ds = make_dataset("2.25.1.1", 1)
    data = encode(ds, IMPLICIT)
    assert scan_instance_fields(data, "1.2.840.10008.1.2.2") is None  # big endian
    assert scan_instance_fields(data, "1.2.840.10008.1.2.1.99") is None  # deflated
    assert scan_instance_fields(data[:45], IMPLICIT) is None  # truncated inside the keys
    # (ImageComments (0020,4000) comes after every indexed tag: cutting it does not matter)
    assert scan_instance_fields(data[:-3], IMPLICIT) == fields_from_dataset(ds)
    assert scan_instance_fields(data[:40], IMPLICIT, whole=False) is None  # only a prefix
    ds.SpecificCharacterSet = "ISO 2022 IR 87"
    assert scan_instance_fields(encode(ds, IMPLICIT), IMPLICIT) is None
    # A prefix that reaches past the last indexed tag is enough.
    big = make_dataset("2.25.1.1", 1)
    big.PixelData = bytes(100)
    big.BitsAllocated = 8
    encoded = encode(big, EXPLICIT)
    assert scan_instance_fields(encoded[: len(encoded) - 50], EXPLICIT, whole=False) is not None


def test_scan_rejects_garbage_quietly() -> None:
    for junk in (b"", b"\xff" * 7, b"\x08\x00\x18\x00\xff\xff\xff\xff", bytes(range(256)) * 4):
        fields = scan_instance_fields(junk, IMPLICIT)
        assert fields is None or fields.sop_instance_uid == ""


def test_store_falls_back_to_pydicom(tmp_path: Path, index_at: str) -> None:
    store = FileStore(tmp_path / "f")
    index = ArchiveIndex(index_at)
    ds = make_dataset("2.25.1.1", 1)
    ds.SpecificCharacterSet = "ISO_IR 144"  # Cyrillic: not on the fast path
    ds.PatientName = "Иванов^Иван"
    stored = store.store(index, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
    q = Dataset()
    q.PatientID = "PID001"
    q.PatientName = "иванов*"
    results = list(index.query("PATIENT", q, "PATIENT"))
    assert [str(r.PatientName) for r in results] == ["Иванов^Иван"]
    # no character set in the query: the response says UTF-8 (PS3.4 C.4.1.1.3.2)
    assert results[0].SpecificCharacterSet == "ISO_IR 192"
    q.SpecificCharacterSet = "ISO_IR 144"  # asked in Cyrillic: answered in Cyrillic
    assert next(iter(index.query("PATIENT", q, "PATIENT"))).SpecificCharacterSet == "ISO_IR 144"
    assert stored.path.endswith("2.25.1.1.1.dcm")
    index.close()


def test_hostile_wildcards_are_linear() -> None:
    pattern = "*a" * 30 + "*b"
    start = time.perf_counter()
    assert not glob_match(pattern, "a" * 64)
    pred = python_matcher("LO", [pattern])
    for _ in range(200):
        assert not pred("a" * 64)
    assert time.perf_counter() - start < 2.0
    assert glob_match("a*b?d", "axxbcd") and not glob_match("a*b?d", "axxbd")
    assert glob_match("**", "") and glob_match("*x*", "x") and not glob_match("?", "")


def test_too_many_key_values_refused(tmp_path: Path, index_at: str) -> None:
    index = ArchiveIndex(index_at)
    q = Dataset()
    q.StudyInstanceUID = [f"1.2.{n}" for n in range(MAX_PARAMETERS + 1)]
    with pytest.raises(QueryError) as info:
        index.query("STUDY", q, "STUDY")
    assert info.value.status == 0xC000
    with pytest.raises(QueryError):
        index.instances_for("STUDY", q, "STUDY")
    index.close()


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.binary(max_size=300),
    explicit=st.booleans(),
    whole=st.booleans(),
)
def test_scan_never_raises(prefix: bytes, explicit: bool, whole: bool) -> None:
    base = encode(make_dataset("2.25.1.1", 1), EXPLICIT if explicit else IMPLICIT)
    for data in (prefix, base[:20] + prefix, prefix + base):
        result = scan_instance_fields(data, EXPLICIT if explicit else IMPLICIT, whole=whole)
        assert result is None or isinstance(result.sop_instance_uid, str)


@pytest.mark.parametrize(
    ("tag", "vr", "raw"),
    [
        (0x00080020, "DA", b"\xff\xfe"),  # undecodable date
        (0x00081140, "SQ", b"\x01\x02\x03"),  # broken sequence
        (0x00200013, "IS", b"1.5x"),  # not an integer: matches nothing
    ],
)
def test_malformed_identifier_values(tmp_path: Path, tag: int, vr: str, raw: bytes) -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import BaseTag

    index = ArchiveIndex(tmp_path / "i.sqlite")
    ds = make_dataset("2.25.1.1", 1)
    store = FileStore(tmp_path / "f")
    store.store(index, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
    q = Dataset()
    q.StudyInstanceUID = "2.25.1"
    q.SeriesInstanceUID = "2.25.1.1"
    q[tag] = RawDataElement(BaseTag(tag), vr, len(raw), raw, 0, True, True)
    try:
        results = list(index.query("IMAGE", q, "STUDY"))
    except QueryError as exc:
        assert exc.status in (0xC000, 0xA900)
    else:
        assert results == []
    index.close()
