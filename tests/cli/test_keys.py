"""-k KEY=VALUE parsing: keywords, tags, sequences, return keys, value types, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.cli.keys import KeyError_, build_identifier, parse_key


def test_keyword_value_and_return_keys() -> None:
    ds = build_identifier(["QueryRetrieveLevel=STUDY", "PatientName=DOE^*", "PatientID=", "StudyDate"])
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.PatientName == "DOE^*"
    # empty value and bare keyword are both return keys: present, zero length
    assert "PatientID" in ds and ds["PatientID"].is_empty
    assert "StudyDate" in ds and ds["StudyDate"].is_empty


@pytest.mark.parametrize("tag", ["0010,0020", "(0010,0020)", "0010, 0020", "(0010,0020 )"])
def test_tag_forms(tag: str) -> None:
    ds = build_identifier([f"{tag}=ID42"])
    assert ds.PatientID == "ID42"


def test_multiple_values_become_a_list() -> None:
    ds = build_identifier(["StudyInstanceUID=1.2.3\\1.2.4"])
    assert list(ds.StudyInstanceUID) == ["1.2.3", "1.2.4"]


def test_sequences() -> None:
    ds = build_identifier(
        [
            "ReferencedStudySequence[0].StudyInstanceUID=1.2",
            "ReferencedStudySequence[1].ReferencedSOPClassUID=",
            "ReferencedSeriesSequence=",
            "0008,1110[0].ReferencedSOPInstanceUID=9.8",
        ]
    )
    seq = ds.ReferencedStudySequence
    assert len(seq) == 2
    assert seq[0].StudyInstanceUID == "1.2"
    assert seq[0].ReferencedSOPInstanceUID == "9.8"
    assert seq[1]["ReferencedSOPClassUID"].is_empty
    assert len(ds.ReferencedSeriesSequence) == 0  # empty sequence = sequence return key


def test_sequence_without_index_uses_first_item() -> None:
    ds = build_identifier(["ScheduledProcedureStepSequence.Modality=CT"])
    assert ds.ScheduledProcedureStepSequence[0].Modality == "CT"


def test_numeric_vrs_are_converted() -> None:
    ds = build_identifier(["Rows=512", "PixelSpacing=0.5\\0.5", "FrameIncrementPointer=0018,1063"])
    assert ds.Rows == 512 and isinstance(ds.Rows, int)
    assert [float(v) for v in ds.PixelSpacing] == [0.5, 0.5]
    assert ds.FrameIncrementPointer == 0x00181063


def test_later_key_wins() -> None:
    ds = build_identifier(["PatientID=A", "PatientID=B"])
    assert ds.PatientID == "B"


def test_value_keeps_equals_signs() -> None:
    assert build_identifier(["StudyDescription=a=b"]).StudyDescription == "a=b"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("NoSuchKeyword=1", "unknown keyword"),
        ("PatientName[0].PatientID=1", "not a sequence"),
        ("Rows=abc", "bad US value"),
        ("=1", "empty key"),
        ("ReferencedStudySequence=1.2", "cannot take a value"),
        ("7777,0010=x", "not in the data dictionary"),
    ],
)
def test_errors_name_the_key(spec: str, message: str) -> None:
    with pytest.raises(KeyError_, match=message):
        build_identifier([spec])


def test_parse_key_path() -> None:
    k = parse_key("ReferencedStudySequence[2].StudyInstanceUID=1")
    assert k.path == ((0x00081110, 2), (0x0020000D, None))
    assert k.value == "1"
    assert parse_key("PatientID").value is None


@settings(max_examples=200, deadline=None)
@given(spec=st.text(alphabet="PatientNme()[].,=0123456789ABCDEFSqueRfd\\ ", max_size=40))
def test_arbitrary_specs_only_raise_key_error(spec: str) -> None:
    try:
        build_identifier([spec])
    except KeyError_:
        pass
