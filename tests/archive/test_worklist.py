"""The Modality Worklist SCP (dicomnet.archive.worklist): matching (PS3.4 K.2.2 / C.2.2.2),
return keys, character sets, the folder refreshed at query time, library items, the C-FIND
handler and its routing, and one query over a real loopback association."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.archive import worklist as wl
from dicomnet.archive.models import QueryError
from dicomnet.archive.worklist import (
    WORKLIST_FIND,
    WorklistStore,
    find_router,
    with_worklist,
    worklist_handler,
)
from dicomnet.datasource import DataSource

# keys that pydicom finds invalid for their VR are what some tests send on purpose
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


# --- building items and queries ---------------------------------------------------------------


def sps(**attrs: Any) -> Dataset:
    item = Dataset()
    for k, v in attrs.items():
        setattr(item, k, v)
    return item


def make_item(
    name: str = "Doe^John",
    pid: str = "PID1",
    accession: str = "ACC1",
    steps: list[Dataset] | None = None,
    charset: str | list[str] | None = None,
    **attrs: Any,
) -> Dataset:
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.PatientID = pid
    ds.AccessionNumber = accession
    for k, v in attrs.items():
        setattr(ds, k, v)
    if steps is None:
        steps = [sps(Modality="CT", ScheduledStationAETitle="CT1",
                     ScheduledProcedureStepStartDate="20240105",
                     ScheduledProcedureStepStartTime="080000",
                     ScheduledProcedureStepID="SPS1")]  # fmt: skip
    ds.ScheduledProcedureStepSequence = Sequence(steps)
    return ds


def request(sps_keys: Dataset | None = None, **keys: Any) -> Dataset:
    """An Identifier; Patient's Name is always asked for (as a return key unless given)."""
    ds = Dataset()
    ds.PatientName = ""
    for k, v in keys.items():
        setattr(ds, k, v)
    if sps_keys is not None:
        ds.ScheduledProcedureStepSequence = Sequence([sps_keys])
    return ds


def save(path: Path, ds: Dataset, *, implicit: bool = True, meta: bool = True) -> Path:
    """A worklist file: Part 10 (meta header) or a bare data set like DCMTK's .wl files."""
    if meta:
        ds = Dataset(ds)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"
        ds.file_meta.MediaStorageSOPInstanceUID = "2.25.1"
        ds.file_meta.TransferSyntaxUID = IMPLICIT if implicit else EXPLICIT
        ds.save_as(path, enforce_file_format=True)
    else:
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, implicit
        write_dataset(buf, ds)
        path.write_bytes(buf.getvalue())
    return path


def names(found: Iterator[Dataset] | list[Dataset]) -> list[str]:
    return [str(ds.PatientName) for ds in found]


@pytest.fixture
def store() -> WorklistStore:
    """Three library items: CT today, MR tomorrow (two steps), US without an accession."""
    s = WorklistStore()
    s.add(make_item("Doe^John", "PID1", "ACC1", StudyInstanceUID="1.2.3.1"))
    s.add(make_item("Roe^Jane", "PID2", "ACC2", StudyInstanceUID="1.2.3.2", steps=[
        sps(Modality="MR", ScheduledStationAETitle="MR1",
            ScheduledProcedureStepStartDate="20240106", ScheduledProcedureStepStartTime="070000",
            ScheduledProcedureStepID="SPS2",
            ScheduledProtocolCodeSequence=Sequence([sps(CodeValue="P-1",
                                                         CodingSchemeDesignator="99X")])),
        sps(Modality="CT", ScheduledStationAETitle="CT2",
            ScheduledProcedureStepStartDate="20240107", ScheduledProcedureStepStartTime="190000",
            ScheduledProcedureStepID="SPS3"),
    ]))  # fmt: skip
    s.add(make_item("Smith^Al", "PID3", "", StudyInstanceUID="1.2.3.3", steps=[
        sps(Modality="US", ScheduledStationAETitle="US1",
            ScheduledProcedureStepStartDate="20240107", ScheduledProcedureStepStartTime="093000",
            ScheduledProcedureStepID="SPS4"),
    ]))  # fmt: skip
    return s


# --- matching ---------------------------------------------------------------------------------


def test_universal_matching_returns_every_item(store: WorklistStore) -> None:
    assert names(store.find(request(PatientName=""))) == ["Doe^John", "Roe^Jane", "Smith^Al"]
    assert len(list(store.find(Dataset()))) == 3  # no key at all: everything, nothing returned
    assert all(len(ds) == 0 for ds in store.find(Dataset()))
    # a lone "*" is universal whatever the VR (K.2.2.1.1.1 note 1), even for a date
    q = request(sps(ScheduledProcedureStepStartDate="*"), PatientName="*")
    assert len(list(store.find(q))) == 3


def test_single_value_matching(store: WorklistStore) -> None:
    assert names(store.find(request(PatientID="PID2"))) == ["Roe^Jane"]
    assert names(store.find(request(AccessionNumber="ACC1"))) == ["Doe^John"]
    assert names(store.find(request(AccessionNumber="ACC"))) == []  # no prefix matching
    # person names case-insensitively (the SCP's choice under C.2.2.2.1)
    assert names(store.find(request(PatientName="ROE^JANE"))) == ["Roe^Jane"]
    # the keys are ANDed
    assert names(store.find(request(PatientID="PID2", AccessionNumber="ACC1"))) == []


def test_wildcards(store: WorklistStore) -> None:
    assert names(store.find(request(PatientName="R*"))) == ["Roe^Jane"]
    assert names(store.find(request(PatientName="?oe^*"))) == ["Doe^John", "Roe^Jane"]
    assert names(store.find(request(PatientName="*^J*"))) == ["Doe^John", "Roe^Jane"]
    assert names(store.find(request(AccessionNumber="ACC?"))) == ["Doe^John", "Roe^Jane"]
    assert names(store.find(request(sps(ScheduledStationAETitle="CT*")))) == [
        "Doe^John", "Roe^Jane"]  # fmt: skip


def test_list_of_uids(store: WorklistStore) -> None:
    q = request(StudyInstanceUID="1.2.3.1\\1.2.3.3")
    assert names(store.find(q)) == ["Doe^John", "Smith^Al"]
    # a UID is never a wildcard pattern (C.2.2.2.4)
    assert names(store.find(request(StudyInstanceUID="1.2.3.?"))) == []


def test_empty_stored_value_matches_only_universal(store: WorklistStore) -> None:
    # K.2.2.1.1.1: an unknown (zero length) value fails to match any matching key
    assert "Smith^Al" not in names(store.find(request(AccessionNumber="*A*")))
    assert "Smith^Al" not in names(store.find(request(AccessionNumber="?")))
    # ... but it is returned for a universal key, empty
    found = {str(d.PatientName): d for d in store.find(request(AccessionNumber=""))}
    assert found["Smith^Al"].AccessionNumber == ""
    # an attribute the item does not have at all behaves the same
    assert names(store.find(request(AdmissionID="X*"))) == []
    assert len(list(store.find(request(AdmissionID="")))) == 3


def test_date_and_time_ranges(store: WorklistStore) -> None:
    def by_date(key: str) -> list[str]:
        return names(store.find(request(sps(ScheduledProcedureStepStartDate=key))))

    assert by_date("20240105") == ["Doe^John"]
    assert by_date("20240106-20240107") == ["Roe^Jane", "Smith^Al"]
    assert by_date("-20240105") == ["Doe^John"]
    assert by_date("20240107-") == ["Roe^Jane", "Smith^Al"]
    assert by_date("20230101-20231231") == []
    # a time on its own matches every day; reduced precision covers the whole span
    q = request(sps(ScheduledProcedureStepStartTime="09-10"))
    assert names(store.find(q)) == ["Smith^Al"]
    q = request(sps(ScheduledProcedureStepStartTime="0800"))
    assert names(store.find(q)) == ["Doe^John"]


def test_combined_date_time_range(store: WorklistStore) -> None:
    """Start Date + Start Time given together are one period (C.2.2.2.5): from the 5th 07:30 to
    the 7th 18:00. Matched separately, the 6th 07:00 (Roe, first step) would fail the time
    range, and the 7th 09:30 (Smith) would pass both."""
    q = request(sps(ScheduledProcedureStepStartDate="20240105-20240107",
                    ScheduledProcedureStepStartTime="0730-1800"))  # fmt: skip
    assert names(store.find(q)) == ["Doe^John", "Roe^Jane", "Smith^Al"]
    q = request(sps(ScheduledProcedureStepStartDate="20240106-20240107",
                    ScheduledProcedureStepStartTime="0800-0900"))  # fmt: skip
    # 6th 08:00 .. 7th 09:00: Roe's 6th 07:00 is before it, its 7th 19:00 after; Smith's 7th
    # 09:30 after
    assert names(store.find(q)) == []
    q = request(sps(ScheduledProcedureStepStartDate="20240106",
                    ScheduledProcedureStepStartTime="-0700"))  # fmt: skip
    assert names(store.find(q)) == ["Roe^Jane"]
    # shapes that differ are matched key by key: any day of the range at 07:00 -- not the
    # period from the 5th 07:00 to the 7th 07:00, which would take Doe's 5th 08:00 too
    q = request(sps(ScheduledProcedureStepStartDate="20240105-20240107",
                    ScheduledProcedureStepStartTime="0700"))  # fmt: skip
    assert names(store.find(q)) == ["Roe^Jane"]
    # open-ended: from the 7th 12:00 on
    q = request(sps(ScheduledProcedureStepStartDate="20240107-",
                    ScheduledProcedureStepStartTime="1200-"))  # fmt: skip
    assert names(store.find(q)) == ["Roe^Jane"]  # 7th 19:00; Smith's 09:30 is before noon


def test_combined_needs_a_known_time() -> None:
    s = WorklistStore()
    s.add(make_item(steps=[sps(Modality="CT", ScheduledProcedureStepStartDate="20240105",
                               ScheduledProcedureStepStartTime="")]))  # fmt: skip
    q = request(sps(ScheduledProcedureStepStartDate="20240101-20240110",
                    ScheduledProcedureStepStartTime="0000-2359"))  # fmt: skip
    assert names(s.find(q)) == []  # K.2.2.1.1.1: the unknown time fails the key
    q = request(sps(ScheduledProcedureStepStartDate="20240101-20240110"))
    assert names(s.find(q)) == ["Doe^John"]


def test_sequence_matching_needs_one_step_to_match_all_keys(store: WorklistStore) -> None:
    # Roe has an MR step at MR1 and a CT step at CT2
    q = request(sps(Modality="MR", ScheduledStationAETitle="MR1"))
    assert names(store.find(q)) == ["Roe^Jane"]
    q = request(sps(Modality="MR", ScheduledStationAETitle="CT2"))  # no step has both
    assert names(store.find(q)) == []
    q = request(sps(Modality="CT"))
    assert names(store.find(q)) == ["Doe^John", "Roe^Jane"]
    # recursive: a key inside a sequence inside the step
    inner = sps(CodeValue="P-1", CodingSchemeDesignator="")
    q = request(sps(ScheduledProtocolCodeSequence=Sequence([inner]), Modality=""))
    assert names(store.find(q)) == ["Roe^Jane"]
    inner.CodeValue = "P-2"
    assert names(store.find(q)) == []


def test_sequence_response_holds_matching_items_with_requested_keys(store: WorklistStore) -> None:
    q = request(sps(Modality="CT", ScheduledStationAETitle="", ScheduledPerformingPhysicianName=""),
                PatientName="Roe*")  # fmt: skip
    [found] = list(store.find(q))
    steps = found.ScheduledProcedureStepSequence
    assert len(steps) == 1  # only the step that matched (C.2.2.2.6)
    assert steps[0].Modality == "CT" and steps[0].ScheduledStationAETitle == "CT2"
    # requested but absent: present, zero length; not requested: absent
    assert "ScheduledPerformingPhysicianName" in steps[0]
    assert steps[0].ScheduledPerformingPhysicianName == ""
    assert "ScheduledProcedureStepID" not in steps[0]
    assert set(found.keys()) == {0x00100010, 0x00400100}


def test_sequence_return_key_forms(store: WorklistStore) -> None:
    # an item of universal keys: a return key, every step projected
    q = request(sps(Modality="", ScheduledProcedureStepID=""), PatientID="PID2")
    [found] = list(store.find(q))
    assert [(s.Modality, s.ScheduledProcedureStepID) for s in
            found.ScheduledProcedureStepSequence] == [("MR", "SPS2"), ("CT", "SPS3")]  # fmt: skip
    assert all(len(s) == 2 for s in found.ScheduledProcedureStepSequence)
    # an empty item: the whole sequence, every attribute (C.2.2.2.6)
    q = request(Dataset(), PatientID="PID2")
    [found] = list(store.find(q))
    first = found.ScheduledProcedureStepSequence[0]
    assert first.ScheduledProtocolCodeSequence[0].CodeValue == "P-1"
    assert len(found.ScheduledProcedureStepSequence) == 2
    # a zero-length sequence: the same
    q = request(PatientID="PID2")
    q.ScheduledProcedureStepSequence = Sequence()
    [found] = list(store.find(q))
    assert len(found.ScheduledProcedureStepSequence) == 2
    # a nested sequence key that the step lacks: returned as an empty sequence
    q = request(sps(Modality="US", ReferencedStudySequence=Sequence([Dataset()])))
    [found] = list(store.find(q))
    assert found.ScheduledProcedureStepSequence[0].ReferencedStudySequence == Sequence()
    # a sequence the item lacks altogether
    q = request(
        PatientID="PID1", ReferencedPatientSequence=Sequence([sps(ReferencedSOPClassUID="")])
    )
    [found] = list(store.find(q))
    assert found.ReferencedPatientSequence == Sequence()


def test_return_keys_only_requested(store: WorklistStore) -> None:
    q = request(PatientID="PID1", PatientName="", PatientBirthDate="", StudyInstanceUID="")
    [found] = list(store.find(q))
    assert set(found.keys()) == {0x00100010, 0x00100020, 0x00100030, 0x0020000D}
    assert found.PatientBirthDate == ""  # requested, absent in the item
    assert "AccessionNumber" not in found  # in the item, not requested


def test_charset_and_qr_level_are_no_keys(store: WorklistStore) -> None:
    q = request(PatientName="Doe*", QueryRetrieveLevel="STUDY")
    q.SpecificCharacterSet = "ISO_IR 100"
    [found] = list(store.find(q))
    assert "QueryRetrieveLevel" not in found
    assert found.SpecificCharacterSet == "ISO_IR 100"  # the request's term comes back


def test_malformed_keys_raise_before_anything_is_yielded(store: WorklistStore) -> None:
    with pytest.raises(QueryError) as info:
        store.find(request(sps(ScheduledProcedureStepStartDate="2024-01-05-x")))
    assert info.value.status == 0xC000
    q = request(PatientName="")
    q.ScheduledProcedureStepSequence = Sequence([sps(Modality="CT"), sps(Modality="MR")])
    with pytest.raises(QueryError) as info:
        store.find(q)
    assert info.value.status == 0xA900  # C.2.2.2.6: one item only


# --- character sets ---------------------------------------------------------------------------

CYRILLIC = "Иванов^Иван"
CYRILLIC_DOCTOR = "Петров^Пётр"


def encoded(ds: Dataset, ts: str = EXPLICIT) -> Dataset:
    """``ds`` through the wire: encoded as the service layer does, decoded by pydicom."""
    return DataSource.from_dataset(ds, ts).decode(ts)


def test_item_decoded_with_its_charset_and_answered_in_it(tmp_path: Path) -> None:
    item = make_item(CYRILLIC, "PID9", charset="ISO_IR 144", steps=[
        sps(Modality="MR", ScheduledPerformingPhysicianName=CYRILLIC_DOCTOR)])  # fmt: skip
    path = save(tmp_path / "ivanov.wl", item, meta=False)
    assert "Иванов".encode("iso8859_5") in path.read_bytes()  # stored in ISO 8859-5
    s = WorklistStore(tmp_path)
    q = request(sps(Modality="", ScheduledPerformingPhysicianName=""), PatientName="")
    [found] = list(s.find(q))
    # no character set in the request: the item's own is used, values are Unicode
    assert found.SpecificCharacterSet == "ISO_IR 144"
    wire = encoded(found)
    assert str(wire.PatientName) == CYRILLIC
    assert str(wire.ScheduledProcedureStepSequence[0].ScheduledPerformingPhysicianName) == (
        CYRILLIC_DOCTOR)  # fmt: skip
    # a request in UTF-8 gets UTF-8
    q.SpecificCharacterSet = "ISO_IR 192"
    [found] = list(s.find(q))
    assert found.SpecificCharacterSet == "ISO_IR 192"
    assert str(encoded(found).PatientName) == CYRILLIC
    # a request in Latin-1 cannot carry Cyrillic: the item's own character set is used
    q.SpecificCharacterSet = "ISO_IR 100"
    [found] = list(s.find(q))
    assert found.SpecificCharacterSet == "ISO_IR 144"


def test_matching_a_non_latin_key_sent_in_its_charset(tmp_path: Path) -> None:
    save(tmp_path / "ivanov.wl", make_item(CYRILLIC, "PID9", charset="ISO_IR 144"))
    save(tmp_path / "doe.wl", make_item("Doe^John", "PID1"))
    s = WorklistStore(tmp_path)
    q = request(PatientName="иванов*")  # case-insensitive, Unicode case folding
    q.SpecificCharacterSet = "ISO_IR 144"
    # through the wire: the request's bytes are ISO 8859-5, decoded by its own (0008,0005)
    wire_q = encoded(q, IMPLICIT)
    assert names(s.find(wire_q)) == [CYRILLIC]


def test_iso2022_item_is_answered_in_utf8(tmp_path: Path) -> None:
    # Japanese with code extensions (PS3.5 H.3.1): never written back as ISO 2022
    name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    item = make_item(name, "PID7", charset=["", "ISO 2022 IR 87"])
    save(tmp_path / "yamada.dcm", item)
    s = WorklistStore(tmp_path)
    [found] = list(s.find(request(PatientName="Yamada*")))
    assert found.SpecificCharacterSet == "ISO_IR 192"
    assert str(encoded(found).PatientName) == name


def test_ascii_answers_carry_no_charset_unless_asked(store: WorklistStore) -> None:
    [found] = list(store.find(request(PatientID="PID1", PatientName="")))
    assert "SpecificCharacterSet" not in found
    s = WorklistStore()
    s.add(make_item("Muller^Jorg", charset="ISO_IR 100"))
    [found] = list(s.find(request(PatientName="")))
    assert "SpecificCharacterSet" not in found  # all ASCII: no need to say anything
    s.add(make_item("Müller^Jörg", "PID5", charset="ISO_IR 100"))
    found = list(s.find(request(PatientName="M?ller*")))
    assert [f.get("SpecificCharacterSet") for f in found] == [None, "ISO_IR 100"]


# --- the folder -------------------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the store (re)reads, in order."""
    seen: list[str] = []
    real = wl.read_worklist_file

    def counting(path: str | os.PathLike[str]) -> list[Dataset]:
        seen.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(wl, "read_worklist_file", counting)
    return seen


def test_folder_add_modify_delete_without_restart(tmp_path: Path, reads: list[str]) -> None:
    s = WorklistStore(tmp_path)
    assert list(s.find(Dataset())) == []
    save(tmp_path / "a.wl", make_item("Alpha^A", "PA"))
    assert names(s.find(request(PatientName=""))) == ["Alpha^A"]
    assert reads == ["a.wl"]
    save(tmp_path / "b.dcm", make_item("Beta^B", "PB"), meta=False, implicit=False)
    assert names(s.find(request(PatientName=""))) == ["Alpha^A", "Beta^B"]
    assert reads == ["a.wl", "b.dcm"]  # a.wl unchanged: not read again
    assert names(s.find(request(PatientName=""))) == ["Alpha^A", "Beta^B"]
    assert reads == ["a.wl", "b.dcm"]
    # modified: same size, new content (a changed letter), a later mtime
    before = (tmp_path / "a.wl").stat()
    save(tmp_path / "a.wl", make_item("Alpha^Z", "PA"))
    assert (tmp_path / "a.wl").stat().st_size == before.st_size
    os.utime(tmp_path / "a.wl", ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert names(s.find(request(PatientName=""))) == ["Alpha^Z", "Beta^B"]
    assert reads == ["a.wl", "b.dcm", "a.wl"]
    (tmp_path / "b.dcm").unlink()
    assert names(s.find(request(PatientName=""))) == ["Alpha^Z"]
    assert [k for k, _ in s.items()] == ["file:a.wl"]


def test_non_dicom_files_skipped_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dicomnet.archive.worklist")
    save(tmp_path / "good.wl", make_item("Good^One"))
    (tmp_path / "notes.txt").write_text("call the ward before the scan\n")
    (tmp_path / "broken.json").write_text('{"00100010": ')
    (tmp_path / "image.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")  # truncated
    no_sps = make_item()
    del no_sps.ScheduledProcedureStepSequence  # a DICOM file, but no worklist item
    save(tmp_path / "ct.dcm", no_sps)
    (tmp_path / ".hidden.wl").write_text("ignored")
    (tmp_path / "upload.wl.part").write_text("ignored")
    s = WorklistStore(tmp_path)
    assert names(s.find(request(PatientName=""))) == ["Good^One"]
    skipped = sorted(r.getMessage().split()[1] for r in caplog.records)
    assert skipped == ["broken.json", "ct.dcm", "image.dcm", "notes.txt"]
    assert all("skipped" in r.getMessage() for r in caplog.records)
    caplog.clear()
    assert names(s.find(request(PatientName=""))) == ["Good^One"]
    assert caplog.records == []  # unchanged: not read, not logged again
    # repaired: served at the next query
    save(tmp_path / "ct.dcm", make_item("Fixed^File"))
    os.utime(tmp_path / "ct.dcm", ns=(0, 10**18))
    assert names(s.find(request(PatientName=""))) == ["Fixed^File", "Good^One"]


def test_dicom_json_files(tmp_path: Path) -> None:
    one = make_item("Json^One", "PJ1", charset="ISO_IR 192")
    one.PatientName = "Jsön^One"
    (tmp_path / "one.json").write_text(json.dumps(one.to_json_dict()), encoding="utf-8")
    two = [
        make_item("Json^Two", "PJ2").to_json_dict(),
        make_item("Json^Three", "PJ3").to_json_dict(),
    ]
    (tmp_path / "two.json").write_text(json.dumps(two))
    s = WorklistStore(tmp_path)
    found = list(s.find(request(PatientName="", PatientID="")))
    assert [(str(d.PatientName), d.PatientID) for d in found] == [
        ("Jsön^One", "PJ1"), ("Json^Two", "PJ2"), ("Json^Three", "PJ3")]  # fmt: skip
    assert [k for k, _ in s.items()] == ["file:one.json", "file:two.json#0", "file:two.json#1"]
    assert found[0].SpecificCharacterSet == "ISO_IR 192"


def test_recursive_and_size_limit(tmp_path: Path) -> None:
    (tmp_path / "CT1").mkdir()
    save(tmp_path / "CT1" / "x.wl", make_item("Deep^One"))
    save(tmp_path / "top.wl", make_item("Top^One"))
    assert names(WorklistStore(tmp_path).find(request(PatientName=""))) == ["Top^One"]
    deep = WorklistStore(tmp_path, recursive=True)
    assert names(deep.find(request(PatientName=""))) == ["Deep^One", "Top^One"]
    assert [k for k, _ in deep.items()] == ["file:CT1/x.wl", "file:top.wl"]
    (tmp_path / "CT1" / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert len(deep) == 2  # a link back up is not followed
    assert len(WorklistStore(tmp_path, max_file_size=64)) == 0
    with pytest.raises(NotADirectoryError):
        WorklistStore(tmp_path / "missing")


def test_folder_removed_while_serving(tmp_path: Path) -> None:
    folder = tmp_path / "wl"
    folder.mkdir()
    save(folder / "a.wl", make_item())
    s = WorklistStore(folder)
    s.add(make_item("Lib^Item"))
    assert len(s) == 2
    (folder / "a.wl").unlink()
    folder.rmdir()
    assert names(s.find(request(PatientName=""))) == ["Lib^Item"]  # library items stay


# --- library items ----------------------------------------------------------------------------


def test_add_and_remove(tmp_path: Path) -> None:
    save(tmp_path / "a.wl", make_item("File^Item"))
    s = WorklistStore(tmp_path)
    original = make_item("Lib^Item", "PL")
    key = s.add(original)
    assert key.startswith("mem:")
    original.PatientName = "Changed^Later"  # the store kept its own copy
    original.ScheduledProcedureStepSequence[0].Modality = "XA"
    assert names(s.find(request(PatientName=""))) == ["File^Item", "Lib^Item"]
    assert names(s.find(request(sps(Modality="XA")))) == []
    s.remove(key)
    assert names(s.find(request(PatientName=""))) == ["File^Item"]
    with pytest.raises(KeyError):
        s.remove(key)
    with pytest.raises(KeyError):
        s.remove("file:a.wl")  # folder items leave with their file
    with pytest.raises(ValueError):
        s.add(Dataset())  # no Scheduled Procedure Step Sequence
    with pytest.raises(TypeError):
        s.add({"PatientName": "x"})  # type: ignore[arg-type]


# --- the C-FIND handler -----------------------------------------------------------------------


def fake_event(
    identifier: Any, *, sop_class: str = WORKLIST_FIND, cancel_after: int | None = None
) -> Any:
    state = {"yielded": 0}

    class Event:
        request = SimpleNamespace(AffectedSOPClassUID=sop_class)

        @property
        def identifier(self) -> Dataset:
            if isinstance(identifier, Exception):
                raise identifier
            return identifier

        @property
        def is_cancelled(self) -> bool:
            return cancel_after is not None and state["yielded"] >= cancel_after

    event = Event()
    event.state = state  # type: ignore[attr-defined]
    return event


def run(handler: Any, event: Any) -> list[tuple[int, Dataset | None]]:
    out = []
    for st, ds in handler(event):
        code = st if isinstance(st, int) else int(st.Status)
        out.append((code, ds))
        event.state["yielded"] += 1
    return out


def test_handler_pending_per_match(store: WorklistStore) -> None:
    result = run(worklist_handler(store), fake_event(request(PatientName="", PatientID="")))
    assert [code for code, _ in result] == [0xFF00, 0xFF00, 0xFF00]
    assert all(type(st) is int for st, _ in worklist_handler(store)(
        fake_event(request(PatientName=""))))  # fmt: skip  # the service layer's fast path
    assert [ds.PatientID for _, ds in result if ds is not None] == ["PID1", "PID2", "PID3"]
    # no match: nothing yielded, the service layer then answers Success
    assert run(worklist_handler(store), fake_event(request(PatientID="nobody"))) == []


def test_handler_cancel(store: WorklistStore) -> None:
    result = run(worklist_handler(store), fake_event(request(PatientName=""), cancel_after=1))
    assert [code for code, _ in result] == [0xFF00, 0xFE00]


def test_handler_failures(store: WorklistStore) -> None:
    [(code, ds)] = run(worklist_handler(store), fake_event(ValueError("truncated element")))
    assert code == 0xC000 and ds is None
    bad_date = request(sps(ScheduledProcedureStepStartDate="yesterday"))
    [(code, _)] = run(worklist_handler(store), fake_event(bad_date))
    assert code == 0xC000
    two = request()
    two.ScheduledProcedureStepSequence = Sequence([Dataset(), Dataset()])
    [(code, _)] = run(worklist_handler(store), fake_event(two))
    assert code == 0xA900
    [(code, _)] = run(worklist_handler(store), fake_event(request(), sop_class=STUDY_FIND))
    assert code == 0x0122


def test_router_and_with_worklist(store: WorklistStore) -> None:
    calls: list[str] = []

    def archive_find(event: Any) -> Iterator[tuple[int, None]]:
        calls.append("archive")
        yield 0xFF00, None

    route = find_router(archive_find, worklist_handler(store))
    assert len(run(route, fake_event(request(PatientName="")))) == 3
    assert calls == []
    assert run(route, fake_event(request(PatientName=""), sop_class=STUDY_FIND)) == [(0xFF00, None)]
    assert calls == ["archive"]

    def echo(event: Any) -> int:
        return 0

    handlers = with_worklist([(evt.EVT_C_ECHO, echo), (evt.EVT_C_FIND, archive_find)], store)
    assert [e for e, _ in handlers] == [evt.EVT_C_ECHO, evt.EVT_C_FIND]
    assert handlers[0][1] is echo
    assert len(run(handlers[1][1], fake_event(request(PatientName="")))) == 3
    only = with_worklist([(evt.EVT_C_ECHO, echo)], store)
    assert [e for e, _ in only] == [evt.EVT_C_ECHO, evt.EVT_C_FIND]


def test_qrscp_workflow_routes_by_sop_classes(store: WorklistStore) -> None:
    """The handler names its SOP class, which is how qrscp's workflow merge shares EVT_C_FIND
    with the archive's Q/R handler."""
    qrscp_workflow = pytest.importorskip("dicomnet.cli.qrscp_workflow")
    handler = worklist_handler(store)
    assert handler.sop_classes == frozenset({WORKLIST_FIND})
    calls: list[str] = []

    def archive_find(event: Any) -> Iterator[tuple[int, None]]:
        calls.append("archive")
        yield 0xFF00, None

    [(event_type, merged)] = qrscp_workflow.handlers([(evt.EVT_C_FIND, archive_find)],
                                                     [(evt.EVT_C_FIND, handler)])  # fmt: skip
    assert event_type is evt.EVT_C_FIND
    assert len(run(merged, fake_event(request(PatientName="")))) == 3
    assert run(merged, fake_event(request(), sop_class=STUDY_FIND)) == [(0xFF00, None)]
    assert calls == ["archive"]


# --- over the network ---------------------------------------------------------------------------


def test_dicomnet_scu_against_the_worklist_scp(tmp_path: Path, store: WorklistStore) -> None:
    save(tmp_path / "ivanov.wl", make_item(CYRILLIC, "PID9", charset="ISO_IR 144"))
    folder_store = WorklistStore(tmp_path)
    folder_store.add(make_item("Doe^John", "PID1"))
    ae = AE("WLSCP")
    wl.add_worklist_context(ae)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_FIND, worklist_handler(folder_store))])  # fmt: skip
    try:
        scu = AE("MODALITY")
        scu.add_requested_context(WORKLIST_FIND)
        assoc = scu.associate("127.0.0.1", server.address[1], ae_title="WLSCP")
        assert assoc.is_established
        try:
            q = request(sps(Modality="", ScheduledProcedureStepStartDate="20240105"),
                        PatientName="", PatientID="")  # fmt: skip
            answers = list(assoc.send_c_find(q, WORKLIST_FIND))
            statuses = [int(st.Status) for st, _ in answers]
            assert statuses == [0xFF00, 0xFF00, 0x0000]
            found = {d.PatientID: d for st, d in answers if d is not None}
            assert str(found["PID9"].PatientName) == CYRILLIC
            assert found["PID9"].SpecificCharacterSet == "ISO_IR 144"
            q.ScheduledProcedureStepSequence = Sequence([sps(Modality="CT"), sps(Modality="MR")])
            answers = list(assoc.send_c_find(q, WORKLIST_FIND))
            assert [int(st.Status) for st, _ in answers] == [0xA900]
        finally:
            assoc.release()
    finally:
        server.shutdown()
    # the file read from disk still reads as written (the store never writes)
    assert str(dcmread(tmp_path / "ivanov.wl").PatientName) == CYRILLIC
