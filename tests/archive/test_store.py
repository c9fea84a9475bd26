"""File store: Part 10 writing, path safety, disk full, duplicates, crash recovery, threads."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from dicomnet.archive.index import ArchiveIndex, read_instance_fields
from dicomnet.archive.models import ArchiveError, InvalidUIDError, StorageFullError
from dicomnet.archive.store import (
    IMPLEMENTATION_CLASS_UID,
    FileStore,
    encode_file_meta,
    validate_uid,
)
from dicomnet.errors import DicomNetError
from tests.archive.conftest import (
    CT,
    EXPLICIT,
    IMPLICIT,
    N_INSTANCES,
    PIXEL_SOP,
    Archive,
    encode,
    make_dataset,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BAD_UIDS = [
    "../x",
    "..",
    "1.2/3",
    "1.2\\3",
    "1.2\x003",
    "/etc/passwd",
    "/1.2",
    "1." + "2" * 63,  # 65 characters
    "",
    "1..2",
    "01.2",
    "1.2.",
    ".1",
    "1.2.a",
    " 1.2",
    "1.2\n",
    "\u0661.\u0662",  # Arabic-Indic digits: str.isdigit() is True for them
]


def listing(path: Path) -> set[str]:
    return {str(p) for p in path.rglob("*")}


# --- file meta header (PS3.10 7.1) ---------------------------------------------------------------


def test_file_meta_header_layout() -> None:
    meta = encode_file_meta(CT, "1.2.3", IMPLICIT, source_ae_title="STORESCU")
    assert meta[:128] == bytes(128) and meta[128:132] == b"DICM"
    group, elem, vr, length, value = struct.unpack_from("<HH2sHI", meta, 132)
    assert (group, elem, vr, length) == (2, 0, b"UL", 4)
    assert value == len(meta) - 132 - 12  # group length counts the bytes after it
    # odd-length UI padded with NUL, AE with a space
    assert b"1.2.3\x00" in meta and b"STORESCU" in meta
    assert len(meta) % 2 == 0


def test_store_produces_readable_part10_file(fresh_archive: Archive) -> None:
    item = fresh_archive.index.get_instance(PIXEL_SOP)
    assert item is not None
    ds = dcmread(item.path)
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    assert ds.file_meta.MediaStorageSOPInstanceUID == PIXEL_SOP
    assert ds.file_meta.MediaStorageSOPClassUID == CT
    assert ds.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert ds.file_meta.FileMetaInformationVersion == b"\x00\x01"
    assert ds.PixelData == bytes(range(32))
    assert item.path == os.path.join(
        fresh_archive.store.root, "2.25.1", "2.25.1.1", PIXEL_SOP + ".dcm"
    )
    # the data set bytes are stored unchanged after the header
    raw = Path(item.path).read_bytes()
    original = make_dataset("2.25.1.1", 2)
    assert raw.endswith(encode(original, IMPLICIT)) is False  # other instance: sanity
    other = fresh_archive.index.get_instance("2.25.1.1.2")
    assert other is not None
    assert Path(other.path).read_bytes().endswith(encode(original, IMPLICIT))
    assert os.listdir(fresh_archive.store.tmp_dir) == []


def test_source_ae_title_in_meta(tmp_path: Path, index_at: str) -> None:
    store = FileStore(tmp_path / "f")
    index = ArchiveIndex(index_at)
    ds = make_dataset("2.25.3.1", 1)
    stored = store.store(
        index, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)], source_ae_title="MODALITY1"
    )
    assert dcmread(stored.path).file_meta.SourceApplicationEntityTitle == "MODALITY1"
    index.close()


# --- UID validation and path safety ----------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_UIDS)
def test_bad_uids_never_become_paths(tmp_path: Path, bad: str) -> None:
    outside_before = listing(tmp_path)
    store = FileStore(tmp_path / "root")
    index = ArchiveIndex(tmp_path / "root" / "index.sqlite")
    created = listing(tmp_path) - outside_before
    with pytest.raises(InvalidUIDError):
        validate_uid(bad)
    for args in ((bad, "1.2", "1.3"), ("1.2", bad, "1.3"), ("1.2", "1.3", bad)):
        with pytest.raises(InvalidUIDError):
            store.path_for(*args)
    # A data set whose UIDs are hostile is refused as a whole, with no leftovers.
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if bad.strip() == "1.2" or not bad.isascii():
            continue  # padding is stripped by the reader (harmless); pydicom cannot encode it
        hostile = make_dataset("2.25.1.1", 1)
        setattr(hostile, keyword, bad)
        with pytest.raises(InvalidUIDError):
            store.store(index, CT, hostile.SOPInstanceUID, IMPLICIT, [encode(hostile, IMPLICIT)])
    assert isinstance(InvalidUIDError("x"), DicomNetError)
    assert listing(tmp_path) - outside_before == created  # nothing new anywhere
    assert os.listdir(store.tmp_dir) == []
    assert index.instance_count() == 0
    index.close()


def test_valid_uid_edge_cases(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    uid64 = "1." + "2" * 62
    assert len(uid64) == 64
    assert validate_uid(uid64) == uid64
    assert validate_uid("0.0.10") == "0.0.10"
    path = store.path_for(uid64, "1.0", "2.25.0")
    assert path.startswith(str(store.root) + os.sep)


def test_commit_refuses_foreign_path(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "root")
    pending = store.begin_write()
    pending.write(b"data")
    with pytest.raises(InvalidUIDError):
        store.commit(pending, str(tmp_path / "elsewhere.dcm"))
    with pytest.raises(InvalidUIDError):
        store.commit(store.begin_write(), os.path.join(store.root, "a", "..", "..", "x.dcm"))
    assert not (tmp_path / "elsewhere.dcm").exists()
    assert os.listdir(store.tmp_dir) == []


def test_symlinked_directory_outside_root_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "root")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, os.path.join(store.root, "1.2"))
    pending = store.begin_write()
    pending.write(b"x")
    with pytest.raises(InvalidUIDError):
        store.commit(pending, store.path_for("1.2", "1.3", "1.4"))
    assert list(outside.rglob("*.dcm")) == []
    assert os.listdir(store.tmp_dir) == []


# --- disk full ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", [1, 2])
def test_enospc_while_writing(
    tmp_path: Path, index_at: str, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    store = FileStore(tmp_path / "root")
    index = ArchiveIndex(index_at)
    real_write = os.write
    calls = {"n": 0}

    def full_write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] >= fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def full_writev(fd: int, buffers: Any) -> int:
        # one writev carries the header and the data set: each buffer counts as one write,
        # and the disk fills up before the fail_at-th (a short write, or ENOSPC if nothing went)
        done = 0
        for buf in buffers:
            if done and calls["n"] + 1 >= fail_at:
                return done  # the kernel reports what went; the next write gets ENOSPC
            done += full_write(fd, bytes(buf))
        return done

    monkeypatch.setattr(os, "write", full_write)
    monkeypatch.setattr(os, "writev", full_writev)
    ds = make_dataset("2.25.1.1", 1)
    with pytest.raises(StorageFullError) as info:
        store.store(index, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
    assert info.value.status == 0xA700
    assert calls["n"] == fail_at
    monkeypatch.undo()
    assert os.listdir(store.tmp_dir) == []
    assert [p for p in Path(store.root).rglob("*") if p.is_file()] == []
    assert index.instance_count() == 0
    index.close()


def test_enospc_on_rename_and_other_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path / "root")
    pending = store.begin_write()
    pending.write(b"abc")

    def quota(src: str, dst: str) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(os, "replace", quota)
    with pytest.raises(StorageFullError):
        store.commit(pending, store.path_for("1.2", "1.3", "1.4"))
    monkeypatch.undo()
    assert os.listdir(store.tmp_dir) == []

    pending = store.begin_write()

    def eio(fd: int, data: bytes) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", eio)
    with pytest.raises(ArchiveError) as info:
        pending.write(b"abc")
    assert not isinstance(info.value, StorageFullError)
    monkeypatch.undo()
    assert os.listdir(store.tmp_dir) == []
    with pytest.raises(ArchiveError):
        pending.write(b"more")  # closed after the failure


def test_abort_removes_temp_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    pending = store.begin_write()
    pending.write(memoryview(b"12345678").cast("H"))  # non-byte memoryviews are accepted
    assert pending.size == 8
    assert os.path.exists(pending.path)
    store.abort(pending)
    assert not os.path.exists(pending.path)


def test_mismatching_affected_sop_instance_refused(tmp_path: Path, index_at: str) -> None:
    store = FileStore(tmp_path / "root")
    index = ArchiveIndex(index_at)
    ds = make_dataset("2.25.1.1", 1)
    with pytest.raises(ArchiveError):
        store.store(index, CT, "1.2.3.4", IMPLICIT, [encode(ds, IMPLICIT)])
    assert os.listdir(store.tmp_dir) == []
    assert index.instance_count() == 0
    index.close()


def test_fsync_mode_stores(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "root", fsync=True)
    index = ArchiveIndex(tmp_path / "index.sqlite", durable=True)
    ds = make_dataset("2.25.1.1", 1)
    stored = store.store(index, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
    assert dcmread(stored.path).SOPInstanceUID == ds.SOPInstanceUID
    assert stored.size == os.path.getsize(stored.path)
    index.close()


# --- duplicates ----------------------------------------------------------------------------------


def test_duplicate_replaces_in_place(fresh_archive: Archive) -> None:
    store, index = fresh_archive.store, fresh_archive.index
    ds = make_dataset("2.25.1.1", 2)
    ds.InstanceNumber = 99
    stored = store.store(index, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
    assert stored.replaced
    assert index.instance_count() == N_INSTANCES
    assert dcmread(stored.path).InstanceNumber == 99
    items = index.instances_for("IMAGE", _image_id("2.25.1", "2.25.1.1", "2.25.1.1.2"), "STUDY")
    assert len(items) == 1


def test_duplicate_moved_to_other_study_deletes_old_file_and_empty_parents(
    fresh_archive: Archive,
) -> None:
    store, index = fresh_archive.store, fresh_archive.index
    # The SR series 2.25.2.2 has two instances; move both into study 2.25.3.
    old_paths = [index.get_instance(f"2.25.2.2.{n}") for n in (1, 2)]
    for n in (1, 2):
        ds = make_dataset("2.25.2.2", n)
        ds.StudyInstanceUID = "2.25.3"
        ds.PatientID = "PID002"
        stored = store.store(
            index, ds.SOPClassUID, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)]
        )
        assert stored.replaced
    for item in old_paths:
        assert item is not None and not os.path.exists(item.path)
    assert index.instance_count() == N_INSTANCES
    from pydicom import Dataset

    q = Dataset()
    q.StudyInstanceUID = "2.25.2"
    q.SeriesInstanceUID = ""
    series = {r.SeriesInstanceUID for r in index.query("SERIES", q, "STUDY")}
    assert series == {"2.25.2.1"}
    q.StudyInstanceUID = "2.25.3"
    series = {r.SeriesInstanceUID for r in index.query("SERIES", q, "STUDY")}
    assert series == {"2.25.3.1", "2.25.2.2"}
    # Storing the only study of PID003 under PID001 is a conflict (study of another patient):
    # refused by default, nothing changes; accepted, the instances move and PID003 is gone.
    from dicomnet.archive.index import StudyConflictError

    ds = make_dataset("2.25.4.1", 1)
    ds.PatientID = "PID001"
    with pytest.raises(StudyConflictError):
        store.store(index, ds.SOPClassUID, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
    assert index.instance_count() == N_INSTANCES
    index.study_conflict = "accept"
    for series_uid, count in (("2.25.4.1", 5), ("2.25.4.2", 10)):
        for n in range(1, count + 1):
            ds = make_dataset(series_uid, n)
            ds.PatientID = "PID001"
            ds.PatientName = "Doe^John"
            store.store(index, ds.SOPClassUID, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
    p = Dataset()
    p.PatientID = ""
    patients = {r.PatientID for r in index.query("PATIENT", p, "PATIENT")}
    assert patients == {"PID001", "PID002"}


def _image_id(study: str, series: str, sop: str):  # type: ignore[no-untyped-def]
    from pydicom import Dataset

    ds = Dataset()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = sop
    return ds


# --- recovery --------------------------------------------------------------------------------------


def test_recover(fresh_archive: Archive) -> None:
    store, index = fresh_archive.store, fresh_archive.index
    assert store.recover(index).clean

    # 1. a temp file left by a crash mid-transfer
    leftover = store.begin_write()
    leftover.write(b"partial")
    leftover._close(False)
    # 2. an indexed file that vanished
    missing = index.get_instance("2.25.3.1.4")
    assert missing is not None
    os.unlink(missing.path)
    # 3. a committed file the index never heard of (crash between rename and index update)
    ds = make_dataset("2.25.3.1", 11)
    pending = store.begin_write()
    store.write_part10(pending, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
    orphan = store.commit(pending, store.path_for("2.25.3", "2.25.3.1", ds.SOPInstanceUID))
    # 4. a file that is not DICOM at all
    junk = os.path.join(store.root, "2.25.3", "junk.dcm")
    Path(junk).write_bytes(b"not dicom")
    # 5. a file in the index after a re-index under a different (but valid) directory
    moved_src = index.get_instance("2.25.3.1.5")
    assert moved_src is not None
    other_dir = os.path.join(store.root, "restored")
    os.makedirs(other_dir)
    shutil.copy(moved_src.path, os.path.join(other_dir, "copy.txt"))  # not .dcm: ignored

    report = store.recover(index)
    assert report.temp_files_removed == [leftover.path]
    assert report.missing_files == ["2.25.3.1.4"]
    assert report.reindexed == [orphan]
    assert report.unreadable == [junk]
    assert os.listdir(store.tmp_dir) == []
    assert index.get_instance("2.25.3.1.4") is None
    item = index.get_instance(ds.SOPInstanceUID)
    assert item is not None and item.path == orphan and item.transfer_syntax_uid == IMPLICIT
    assert index.instance_count() == N_INSTANCES
    second = store.recover(index)
    assert second.unreadable == [junk] and not second.reindexed and not second.missing_files


def test_read_instance_fields_stops_before_pixels(fresh_archive: Archive) -> None:
    item = fresh_archive.index.get_instance(PIXEL_SOP)
    assert item is not None
    fields, ts = read_instance_fields(item.path)
    assert ts == EXPLICIT
    assert (fields.sop_instance_uid, fields.series_instance_uid, fields.study_instance_uid) == (
        PIXEL_SOP,
        "2.25.1.1",
        "2.25.1",
    )
    assert fields.patient_name == "Doe^John" and fields.instance_number == "1"


# --- threads -------------------------------------------------------------------------------------


def test_concurrent_stores_and_queries(tmp_path: Path, index_at: str) -> None:
    store = FileStore(tmp_path / "root")
    index = ArchiveIndex(index_at)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            from pydicom import Dataset

            for n in range(1, 41):
                ds = make_dataset("2.25.1.1", n)
                ds.SeriesInstanceUID = f"2.25.1.{t + 10}"
                ds.SOPInstanceUID = f"2.25.1.{t + 10}.{n}"
                store.store(index, CT, ds.SOPInstanceUID, IMPLICIT, [encode(ds, IMPLICIT)])
                q = Dataset()
                q.StudyInstanceUID = "2.25.1"
                q.SeriesInstanceUID = f"2.25.1.{t + 10}"
                q.SOPInstanceUID = ""
                assert len(list(index.query("IMAGE", q, "STUDY"))) == n
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert index.instance_count() == 160
    index.close()
    with pytest.raises(Exception):  # noqa: B017 - closed index refuses new work
        index.instance_count()


def test_file_store_is_an_instance_storage(tmp_path: Path) -> None:
    """The archive reaches its files only through the InstanceStorage interface
    (dicomnet.archive.storage), which the file store implements."""
    from dicomnet.archive.scp import Archive as ArchiveSCP
    from dicomnet.archive.storage import InstanceStorage

    store = FileStore(tmp_path / "s", node="a")
    assert isinstance(store, InstanceStorage)
    assert store.tmp_dir == str(tmp_path / "s" / ".tmp" / "a") and store.node == "a"
    arc = ArchiveSCP(tmp_path / "arc")
    try:
        assert isinstance(arc.files, InstanceStorage)
    finally:
        arc.close()
