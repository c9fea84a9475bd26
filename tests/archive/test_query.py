"""C-FIND matching and C-GET/C-MOVE selection against the generated archive (PS3.4 C.2.2.2,
C.4.1.3.1, C.6.1, C.6.2)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dicomnet.archive.models import Level, QueryError
from tests.archive.conftest import MR, N_INSTANCES, Archive

# Keys with wildcards/ranges are not valid VR values for pydicom's validator.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}


def identifier(level: str, keys: dict[str, Any]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k, v in keys.items():
        setattr(ds, k, v)
    return ds


def run(archive: Archive, model: str, level: str, keys: dict[str, Any]) -> list[Dataset]:
    return list(archive.index.query(level, identifier(level, keys), model))


def found(archive: Archive, model: str, level: str, keys: dict[str, Any]) -> set[str]:
    results = run(archive, model, level, keys)
    values = [str(r[UNIQUE[level]].value) for r in results]
    assert len(values) == len(set(values)), "duplicate responses"
    return set(values)


ALL_STUDIES = {"2.25.1", "2.25.2", "2.25.3", "2.25.4"}
S22 = {"StudyInstanceUID": "2.25.2", "SeriesInstanceUID": "2.25.2.1"}

# (model, level, keys, expected unique keys of the matches)
CASES: list[tuple[str, str, dict[str, Any], set[str]]] = [
    # --- PATIENT level (Patient Root only) ---
    ("PATIENT", "PATIENT", {"PatientID": ""}, {"PID001", "PID002", "PID003"}),  # universal
    ("PATIENT", "PATIENT", {"PatientID": "PID002"}, {"PID002"}),  # single value
    ("PATIENT", "PATIENT", {"PatientID": "PID00?"}, {"PID001", "PID002", "PID003"}),  # wildcard
    ("PATIENT", "PATIENT", {"PatientID": "PID001\\PID003"}, {"PID001", "PID003"}),  # multi
    ("PATIENT", "PATIENT", {"PatientName": "DOE^JOHN"}, {"PID001"}),  # PN case-insensitive
    ("PATIENT", "PATIENT", {"PatientName": "Doe^John^^"}, {"PID001"}),  # empty components
    ("PATIENT", "PATIENT", {"PatientName": "doe*"}, {"PID001", "PID002"}),
    ("PATIENT", "PATIENT", {"PatientName": "D?E^J*"}, {"PID001", "PID002"}),
    ("PATIENT", "PATIENT", {"PatientName": "*"}, {"PID001", "PID002", "PID003"}),
    ("PATIENT", "PATIENT", {"PatientName": "MÜLLER*"}, {"PID003"}),  # Unicode folding
    ("PATIENT", "PATIENT", {"PatientName": "Nobody"}, set()),
    ("PATIENT", "PATIENT", {"PatientBirthDate": "19750101-"}, {"PID002", "PID003"}),
    ("PATIENT", "PATIENT", {"PatientBirthDate": "-19800215"}, {"PID001", "PID002"}),
    ("PATIENT", "PATIENT", {"PatientBirthDate": "19700101-19800214"}, {"PID001"}),
    ("PATIENT", "PATIENT", {"PatientBirthDate": "19900310"}, {"PID003"}),
    ("PATIENT", "PATIENT", {"PatientSex": "F"}, {"PID002"}),
    ("PATIENT", "PATIENT", {"PatientSex": "f"}, set()),  # CS is case-sensitive
    # --- STUDY level, Study Root ---
    ("STUDY", "STUDY", {"StudyInstanceUID": ""}, ALL_STUDIES),
    ("STUDY", "STUDY", {"StudyInstanceUID": "2.25.1\\2.25.3"}, {"2.25.1", "2.25.3"}),  # UID list
    ("STUDY", "STUDY", {"StudyInstanceUID": "2.25.*"}, set()),  # no wildcards in UIDs
    ("STUDY", "STUDY", {"StudyDate": "20200101-20201231"}, {"2.25.1", "2.25.4"}),
    ("STUDY", "STUDY", {"StudyDate": "-20191231"}, {"2.25.3"}),
    ("STUDY", "STUDY", {"StudyDate": "20210101-"}, {"2.25.2"}),
    ("STUDY", "STUDY", {"StudyDate": "20200102"}, {"2.25.4"}),
    ("STUDY", "STUDY", {"StudyDate": "20200102\\20190101"}, {"2.25.3", "2.25.4"}),
    ("STUDY", "STUDY", {"StudyTime": "10-12"}, {"2.25.1", "2.25.4"}),
    ("STUDY", "STUDY", {"StudyTime": "-0800"}, {"2.25.3"}),
    ("STUDY", "STUDY", {"StudyTime": "2359-"}, {"2.25.2"}),
    ("STUDY", "STUDY", {"StudyTime": "2359"}, {"2.25.2"}),  # reduced precision single value
    ("STUDY", "STUDY", {"StudyTime": "235959.123"}, {"2.25.2"}),
    ("STUDY", "STUDY", {"StudyTime": "101010.5"}, set()),
    ("STUDY", "STUDY", {"StudyTime": "235959.1-235959.2"}, {"2.25.2"}),  # fractional range
    ("STUDY", "STUDY", {"StudyDate": "20210615", "StudyTime": "23-"}, {"2.25.2"}),
    ("STUDY", "STUDY", {"AccessionNumber": "ACC[4]"}, {"2.25.4"}),  # literal '['
    ("STUDY", "STUDY", {"AccessionNumber": "ACC[*"}, {"2.25.4"}),  # GLOB escaping
    ("STUDY", "STUDY", {"AccessionNumber": "ACC?"}, {"2.25.1", "2.25.2", "2.25.3"}),
    ("STUDY", "STUDY", {"AccessionNumber": "acc1"}, set()),  # SH is case-sensitive
    ("STUDY", "STUDY", {"StudyID": "3"}, {"2.25.3"}),
    ("STUDY", "STUDY", {"StudyDescription": "CT*"}, {"2.25.1", "2.25.3"}),
    ("STUDY", "STUDY", {"StudyDescription": "*Brain"}, {"2.25.2"}),
    ("STUDY", "STUDY", {"ReferringPhysicianName": "ref^one"}, {"2.25.1", "2.25.4"}),
    ("STUDY", "STUDY", {"ReferringPhysicianName": "*"}, ALL_STUDIES),  # empty value matches *
    ("STUDY", "STUDY", {"ReferringPhysicianName": "R*"}, {"2.25.1", "2.25.2", "2.25.4"}),
    ("STUDY", "STUDY", {"ModalitiesInStudy": "CT"}, {"2.25.1", "2.25.3"}),
    ("STUDY", "STUDY", {"ModalitiesInStudy": "MR\\US"}, {"2.25.2", "2.25.4"}),
    ("STUDY", "STUDY", {"ModalitiesInStudy": "S?"}, {"2.25.2"}),
    ("STUDY", "STUDY", {"PatientName": "doe*"}, {"2.25.1", "2.25.2", "2.25.3"}),
    ("STUDY", "STUDY", {"PatientID": "PID001", "StudyDate": "20210615"}, {"2.25.2"}),
    ("STUDY", "STUDY", {"InstitutionName": "Clinic"}, {"2.25.3", "2.25.4"}),  # not indexed
    ("STUDY", "STUDY", {"InstitutionName": "General*"}, {"2.25.1", "2.25.2"}),
    ("STUDY", "STUDY", {"Modality": "CT"}, ALL_STUDIES),  # lower-level key: not matched
    # --- STUDY level, Patient Root ---
    ("PATIENT", "STUDY", {"PatientID": "PID001", "StudyInstanceUID": ""}, {"2.25.1", "2.25.2"}),
    ("PATIENT", "STUDY", {"PatientID": "PID001", "StudyDate": "20210101-"}, {"2.25.2"}),
    ("PATIENT", "STUDY", {"PatientID": "PID003", "AccessionNumber": "*4*"}, {"2.25.4"}),
    ("PATIENT", "STUDY", {"PatientID": "PID002", "ModalitiesInStudy": "MR"}, set()),
    # --- SERIES level ---
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.1", "Modality": ""}, {"2.25.1.1", "2.25.1.2"}),
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.1", "SeriesNumber": "2"}, {"2.25.1.2"}),
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.2", "Modality": "M?"}, {"2.25.2.1"}),
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.1", "SeriesDescription": "axial"}, set()),
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.1", "SeriesDescription": "Ax*"}, {"2.25.1.1"}),
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.2", "BodyPartExamined": "HEAD"}, {"2.25.2.1"}),
    (
        "STUDY",
        "SERIES",
        {"StudyInstanceUID": "2.25.4", "SeriesInstanceUID": "2.25.4.1\\2.25.4.2\\9.9"},
        {"2.25.4.1", "2.25.4.2"},
    ),
    (
        "PATIENT",
        "SERIES",
        {"PatientID": "PID003", "StudyInstanceUID": "2.25.4", "Modality": "US"},
        {"2.25.4.1"},
    ),
    # --- IMAGE level ---
    ("STUDY", "IMAGE", {**S22, "SOPInstanceUID": ""}, {f"2.25.2.1.{n}" for n in range(1, 9)}),
    ("STUDY", "IMAGE", {**S22, "InstanceNumber": "3"}, {"2.25.2.1.3"}),
    ("STUDY", "IMAGE", {**S22, "SOPClassUID": MR}, {f"2.25.2.1.{n}" for n in range(1, 9)}),
    ("STUDY", "IMAGE", {**S22, "SOPClassUID": "1.2.3"}, set()),
    (
        "STUDY",
        "IMAGE",
        {**S22, "SOPInstanceUID": "2.25.2.1.1\\2.25.2.1.8"},
        {"2.25.2.1.1", "2.25.2.1.8"},
    ),
    ("STUDY", "IMAGE", {**S22, "ImageComments": "odd"}, {f"2.25.2.1.{n}" for n in (1, 3, 5, 7)}),
    ("STUDY", "IMAGE", {**S22, "ImageComments": "ev*"}, {f"2.25.2.1.{n}" for n in (2, 4, 6, 8)}),
    (
        "PATIENT",
        "IMAGE",
        {
            "PatientID": "PID001",
            "StudyInstanceUID": "2.25.1",
            "SeriesInstanceUID": "2.25.1.1",
            "InstanceNumber": "10",
        },
        {"2.25.1.1.10"},
    ),
]


@pytest.mark.parametrize(("model", "level", "keys", "expected"), CASES)
def test_matching_table(
    archive: Archive, model: str, level: str, keys: dict[str, Any], expected: set[str]
) -> None:
    assert found(archive, model, level, keys) == expected


def test_responses_carry_requested_keys_and_level(archive: Archive) -> None:
    results = run(
        archive,
        "STUDY",
        "STUDY",
        {
            "StudyInstanceUID": "2.25.2",
            "PatientName": "",
            "StudyDate": "",
            "ModalitiesInStudy": "",
            "NumberOfStudyRelatedSeries": None,
            "NumberOfStudyRelatedInstances": None,
            "InstitutionName": "",
            "Modality": "",
        },
    )
    assert len(results) == 1
    r = results[0]
    assert r.QueryRetrieveLevel == "STUDY"
    assert str(r.PatientName) == "Doe^John"
    assert r.StudyDate == "20210615"
    assert list(r.ModalitiesInStudy) == ["MR", "SR"]
    assert r.NumberOfStudyRelatedSeries == 2
    assert r.NumberOfStudyRelatedInstances == 10
    assert r.InstitutionName == "General Hospital"
    assert r["Modality"].is_empty  # a key below the query level is returned empty
    assert "SeriesInstanceUID" not in r


def test_patient_counts_and_unique_key_always_returned(archive: Archive) -> None:
    results = run(
        archive,
        "PATIENT",
        "PATIENT",
        {
            "PatientName": "Doe^John",
            "NumberOfPatientRelatedStudies": None,
            "NumberOfPatientRelatedSeries": None,
            "NumberOfPatientRelatedInstances": None,
        },
    )
    assert len(results) == 1
    r = results[0]
    assert r.PatientID == "PID001"  # not asked for, but the unique key is always returned
    assert (
        r.NumberOfPatientRelatedStudies,
        r.NumberOfPatientRelatedSeries,
        r.NumberOfPatientRelatedInstances,
    ) == (2, 4, 25)


def test_series_count_and_retrieve_ae(archive: Archive) -> None:
    ident = identifier(
        "SERIES",
        {
            "StudyInstanceUID": "2.25.4",
            "NumberOfSeriesRelatedInstances": None,
            "InstanceAvailability": "",
        },
    )
    results = list(archive.index.query(None, ident, "STUDY", retrieve_ae_title="ARCHIVE"))
    counts = {r.SeriesInstanceUID: r.NumberOfSeriesRelatedInstances for r in results}
    assert counts == {"2.25.4.1": 5, "2.25.4.2": 10}
    assert all(r.RetrieveAETitle == "ARCHIVE" for r in results)
    assert all(r.InstanceAvailability == "ONLINE" for r in results)


def test_character_set_echoed_and_encodable(archive: Archive) -> None:
    results = run(archive, "PATIENT", "PATIENT", {"PatientName": "", "PatientID": "PID003"})
    assert len(results) == 1
    r = results[0]
    # stored in Latin-1; the query named no character set: answered in UTF-8, which needs
    # no escape sequences and can say anything (PS3.4 C.4.1.1.3.2 lets the SCP choose)
    assert r.SpecificCharacterSet == "ISO_IR 192"
    assert str(r.PatientName) == "Müller^Jörg"
    latin = run(archive, "PATIENT", "PATIENT", {"PatientName": "", "PatientID": "PID003",
                                                 "SpecificCharacterSet": "ISO_IR 100"})[0]
    assert latin.SpecificCharacterSet == "ISO_IR 100"  # asked in Latin-1: answered in it
    r = latin
    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = True
    write_dataset(buf, r)
    assert "Müller".encode("latin-1") in buf.getvalue()
    ascii_only = run(archive, "PATIENT", "PATIENT", {"PatientID": "PID001"})[0]
    assert "SpecificCharacterSet" not in ascii_only


def test_image_level_return_values(archive: Archive) -> None:
    results = run(
        archive,
        "STUDY",
        "IMAGE",
        {**S22, "SOPInstanceUID": "2.25.2.1.3", "SOPClassUID": "", "InstanceNumber": None},
    )
    assert len(results) == 1
    r = results[0]
    assert (r.SOPClassUID, r.InstanceNumber, r.StudyInstanceUID) == (MR, 3, "2.25.2")


@pytest.mark.parametrize(
    ("model", "level", "keys", "status"),
    [
        ("STUDY", "PATIENT", {"PatientID": ""}, 0xA900),  # no PATIENT level in Study Root
        ("PATIENT", "STUDY", {"StudyInstanceUID": ""}, 0xA900),  # PatientID missing
        ("PATIENT", "STUDY", {"PatientID": "PID*"}, 0xA900),  # not a single value
        ("STUDY", "SERIES", {"Modality": "CT"}, 0xA900),  # StudyInstanceUID missing
        ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.1\\2.25.2"}, 0xA900),  # a list
        ("STUDY", "IMAGE", {"StudyInstanceUID": "2.25.1"}, 0xA900),  # SeriesInstanceUID missing
        ("STUDY", "FOO", {}, 0xA900),
        ("STUDY", "STUDY", {"StudyDate": "yesterday"}, 0xC000),
        ("STUDY", "STUDY", {"StudyTime": "25-"}, 0xC000),
        ("STUDY", "STUDY", {"StudyDate": "-"}, 0xC000),
    ],
)
def test_hierarchical_key_rules(
    archive: Archive, model: str, level: str, keys: dict[str, Any], status: int
) -> None:
    """Strict (qrscp --strict-hierarchical, no relational queries negotiated): PS3.4
    C.4.1.2.1's rules; by default only the malformed ones fail (relational search answers
    the others, C.4.1.3.2)."""
    from dicomnet.archive.query import QueryOptions

    with pytest.raises(QueryError) as info:
        archive.index.query(level, identifier(level, keys), model,
                            options=QueryOptions(strict=True))  # fmt: skip
    assert info.value.status == status
    if status == 0xC000 or level == "FOO":
        with pytest.raises(QueryError):
            archive.index.query(level, identifier(level, keys), model)
    else:
        list(archive.index.query(level, identifier(level, keys), model))


def test_level_read_from_identifier(archive: Archive) -> None:
    results = list(archive.index.query(None, identifier("STUDY", {"StudyID": "1"}), "STUDY"))
    assert [r.StudyInstanceUID for r in results] == ["2.25.1"]
    with pytest.raises(QueryError) as info:
        archive.index.query(None, Dataset(), "STUDY")
    assert info.value.status == 0xA900


@pytest.mark.parametrize(
    ("model", "level", "keys", "count"),
    [
        ("STUDY", "STUDY", {"StudyInstanceUID": "2.25.2"}, 10),
        ("STUDY", "STUDY", {"StudyInstanceUID": "2.25.2\\2.25.3"}, 20),
        ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.4", "SeriesInstanceUID": "2.25.4.2"}, 10),
        ("STUDY", "IMAGE", {**S22, "SOPInstanceUID": "2.25.2.1.1\\2.25.2.1.2"}, 2),
        ("PATIENT", "PATIENT", {"PatientID": "PID002"}, 10),
        ("PATIENT", "STUDY", {"PatientID": "PID001", "StudyInstanceUID": "2.25.1"}, 15),
        ("PATIENT", "STUDY", {"PatientID": "PID002", "StudyInstanceUID": "2.25.1"}, 0),
        # Other keys in a retrieve identifier do not narrow the selection.
        ("STUDY", "STUDY", {"StudyInstanceUID": "2.25.2", "Modality": "MR"}, 10),
    ],
)
def test_instances_for(
    archive: Archive, model: str, level: str, keys: dict[str, Any], count: int
) -> None:
    items = archive.index.instances_for(level, identifier(level, keys), model)
    assert len(items) == count
    for item in items:
        assert os.path.isfile(item.path)
        assert item.transfer_syntax_uid.startswith("1.2.840.10008.1.2")
        assert item.path.endswith(item.sop_instance_uid + ".dcm")


@pytest.mark.parametrize(
    ("model", "level", "keys"),
    [
        ("STUDY", "STUDY", {"StudyInstanceUID": ""}),  # universal retrieve refused
        ("STUDY", "STUDY", {}),
        ("STUDY", "SERIES", {"SeriesInstanceUID": "2.25.1.1"}),  # study key missing
        ("PATIENT", "PATIENT", {"PatientID": "PID*"}),
        ("STUDY", "PATIENT", {"PatientID": "PID001"}),
    ],
)
def test_instances_for_refuses(
    archive: Archive, model: str, level: str, keys: dict[str, Any]
) -> None:
    """Strict retrieves refuse all of these; relational retrieval (the default) answers a
    series by its UID alone (C.4.2.2.2) and a PATIENT level in Study Root by Patient ID."""
    with pytest.raises(QueryError) as info:
        archive.index.instances_for(level, identifier(level, keys), model, strict=True)
    assert info.value.status == 0xA900
    if "SeriesInstanceUID" in keys or (level == "PATIENT" and model == "STUDY"):
        assert archive.index.instances_for(level, identifier(level, keys), model)
    else:
        with pytest.raises(QueryError):
            archive.index.instances_for(level, identifier(level, keys), model)


def test_archive_size(archive: Archive) -> None:
    assert archive.index.instance_count() == N_INSTANCES == 50
    assert Level.IMAGE > Level.SERIES > Level.STUDY > Level.PATIENT
