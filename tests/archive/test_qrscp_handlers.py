"""The archive SCP handlers (dicomnet.archive.scp) driven with hand-built events: C-STORE
statuses (invalid UID, mismatch, disk full, duplicates), C-FIND / C-GET / C-MOVE generator
protocols, cancel, unknown move destination. No network here; the interop tests cover that."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom import Dataset, dcmread

from dicomnet.archive.scp import Archive, DirectoryStore
from dicomnet.association import ServiceUser
from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Status
from tests.archive.conftest import CT, EXPLICIT, IMPLICIT, all_datasets, encode

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


class FakeEvent:
    """Just the attributes the archive handlers use."""

    def __init__(
        self,
        *,
        sop_class: str = "",
        sop_instance: str = "",
        data: bytes | None = None,
        ts: str = IMPLICIT,
        identifier: Dataset | None = None,
        move_destination: str | None = None,
        cancel_after: int | None = None,
    ) -> None:
        # the request primitive the dispatcher would hand over (Q/R SOP classes by the model's
        # last UID component: .1 FIND, .2 MOVE, .3 GET; anything else is a C-STORE)
        kind = (
            {".1": P.C_FIND, ".2": P.C_MOVE, ".3": P.C_GET}.get(sop_class[-2:], P.C_STORE)
            if sop_class.startswith("1.2.840.10008.5.1.4.1.2.")
            else P.C_STORE
        )
        # as decoded: not validated here (the handler's own UID check is what is tested)
        params = {"AffectedSOPClassUID": sop_class}
        if kind is P.C_STORE:
            params["AffectedSOPInstanceUID"] = sop_instance
        self.request: P.DIMSEPrimitive = kind.from_checked(params)
        self.context = SimpleNamespace(transfer_syntax=ts)
        self.data_source = DataSource.from_bytes(data, ts) if data is not None else None
        # the two sides as an Association has them (the acceptor: no extended negotiation)
        self.assoc = SimpleNamespace(
            requestor=ServiceUser(ae_title="PEER"), acceptor=ServiceUser(), calling_ae_title="PEER"
        )
        self._identifier = identifier
        self.move_destination = move_destination
        self._checks = 0
        self._cancel_after = cancel_after

    @property
    def identifier(self) -> Dataset:
        if self._identifier is None:
            raise ValueError("no identifier")
        return self._identifier

    @property
    def is_cancelled(self) -> bool:
        self._checks += 1
        return self._cancel_after is not None and self._checks > self._cancel_after


def _code(result: Any) -> int:
    return int(result) if isinstance(result, int) else int(result.Status)


@pytest.fixture
def arc(tmp_path: Path) -> Any:
    a = Archive(tmp_path / "store", destinations={"DEST": ("127.0.0.1", 4242)})
    for ds, ts in all_datasets():
        ev = FakeEvent(
            sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID, data=encode(ds, ts), ts=ts
        )
        assert a.handle_store(ev) == 0
    yield a
    a.close()


def _ident(**kw: str) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def test_store_is_complete_file_and_indexed(arc: Archive) -> None:
    items = arc.index.instances_for(
        "IMAGE",
        _ident(
            QueryRetrieveLevel="IMAGE",
            StudyInstanceUID="2.25.1",
            SeriesInstanceUID="2.25.1.1",
            SOPInstanceUID="2.25.1.1.1",
        ),
        "STUDY",
    )
    assert len(items) == 1
    ds = dcmread(items[0].path)
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    assert ds.file_meta.SourceApplicationEntityTitle == "PEER"
    assert ds.PixelData == bytes(range(32))
    assert not os.listdir(arc.files.tmp_dir)  # no temp files left


def test_store_invalid_uid_is_refused_without_a_path(tmp_path: Path) -> None:
    a = Archive(tmp_path / "s")
    try:
        ds = next(all_datasets())[0]
        for bad in ("../../etc/passwd", "1.2/3", "1..2", "01.2", "1." * 40, "1.2\\3"):
            ev = FakeEvent(sop_class=CT, sop_instance=bad, data=encode(ds, IMPLICIT))
            r = a.handle_store(ev)
            assert _code(r) == Status.INVALID_UID, bad
        assert a.index.instance_count() == 0
        assert not list((tmp_path / "s").rglob("*.dcm"))
    finally:
        a.close()


def test_store_mismatched_instance_uid(tmp_path: Path) -> None:
    a = Archive(tmp_path / "s")
    try:
        ds = next(all_datasets())[0]
        ev = FakeEvent(sop_class=CT, sop_instance="1.2.3.4", data=encode(ds, IMPLICIT))
        assert _code(a.handle_store(ev)) == Status.DATA_SET_DOES_NOT_MATCH
        assert a.index.instance_count() == 0
        assert not list((tmp_path / "s").rglob("*.dcm"))
        assert not os.listdir(a.files.tmp_dir)
    finally:
        a.close()


def test_store_disk_full_gives_a700_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = Archive(tmp_path / "s")
    real_write = os.write
    calls = {"n": 0}

    def full_after_first(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] > 1:  # the meta header goes through, the data set hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def header_only(fd: int, buffers: Any) -> int:
        # the header and the data set go out in one writev: the disk takes the header only
        # (a short write), the rest then goes through os.write and hits the full disk
        calls["n"] += 1
        return real_write(fd, buffers[0])

    try:
        ds = next(all_datasets())[0]
        monkeypatch.setattr(os, "write", full_after_first)
        monkeypatch.setattr(os, "writev", header_only)
        ev = FakeEvent(sop_class=CT, sop_instance=ds.SOPInstanceUID, data=encode(ds, IMPLICIT))
        r = a.handle_store(ev)
        monkeypatch.undo()
        assert _code(r) == Status.OUT_OF_RESOURCES
        assert a.index.instance_count() == 0
        assert not list((tmp_path / "s").rglob("*.dcm"))
        assert not os.listdir(a.files.tmp_dir)
    finally:
        a.close()


def test_duplicate_keeps_the_first_unless_overwrite(arc: Archive) -> None:
    """A second C-STORE of a stored SOP Instance UID (e.g. a truncated copy that still parses)
    does not replace the first: Success, the first file kept (as Orthanc's default); with
    ``overwrite`` it replaces it."""
    ds, ts = next(all_datasets())
    before = arc.index.instance_count()
    first = arc.index.get_instance(ds.SOPInstanceUID)
    assert first is not None
    original = Path(first.path).read_bytes()
    ds.StudyDescription = "REPLACED"
    ev = FakeEvent(
        sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID, data=encode(ds, ts), ts=ts
    )
    assert arc.handle_store(ev) == 0
    assert arc.index.instance_count() == before
    item = arc.index.get_instance(ds.SOPInstanceUID)
    assert item is not None and Path(item.path).read_bytes() == original
    arc.overwrite = True
    assert arc.handle_store(ev) == 0
    item = arc.index.get_instance(ds.SOPInstanceUID)
    assert item is not None
    assert dcmread(item.path).StudyDescription == "REPLACED"
    assert arc.index.instance_count() == before


def test_directory_store_flat_names_and_replace(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "out")
    ds, ts = next(all_datasets())
    ev = FakeEvent(
        sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID, data=encode(ds, ts), ts=ts
    )
    assert store.handle_store(ev) == 0
    ds.PatientID = "OTHER"
    ev = FakeEvent(
        sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID, data=encode(ds, ts), ts=ts
    )
    assert store.handle_store(ev) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file())
    assert files == [ds.SOPInstanceUID + ".dcm"]
    assert dcmread(tmp_path / "out" / files[0]).PatientID == "OTHER"
    bad = FakeEvent(sop_class=CT, sop_instance="../x", data=encode(ds, ts), ts=ts)
    assert _code(store.handle_store(bad)) == Status.INVALID_UID
    assert not (tmp_path / "x.dcm").exists()


def test_find_pending_per_match_then_end(arc: Archive) -> None:
    ident = _ident(QueryRetrieveLevel="STUDY", PatientID="PID001", StudyInstanceUID="")
    out = list(arc.handle_find(FakeEvent(sop_class=STUDY_FIND, identifier=ident)))
    assert [s for s, _ in out] == [Status.PENDING] * 2
    assert sorted(m.StudyInstanceUID for _, m in out) == ["2.25.1", "2.25.2"]
    assert all(m.RetrieveAETitle == "DICOMNET" for _, m in out)


def test_find_patient_root_patient_level(arc: Archive) -> None:
    ident = _ident(QueryRetrieveLevel="PATIENT", PatientName="doe*", PatientID="")
    out = list(arc.handle_find(FakeEvent(sop_class=PATIENT_FIND, identifier=ident)))
    assert sorted(m.PatientID for _, m in out) == ["PID001", "PID002"]


def test_find_bad_level_is_a_failure_not_an_exception(arc: Archive) -> None:
    ident = _ident(QueryRetrieveLevel="PATIENT", PatientID="")  # no PATIENT level in Study Root
    arc.strict_hierarchical = True  # (by default that query is answered, as Orthanc does)
    out = list(arc.handle_find(FakeEvent(sop_class=STUDY_FIND, identifier=ident)))
    assert len(out) == 1
    assert _code(out[0][0]) == 0xA900 and out[0][1] is None
    arc.strict_hierarchical = False
    assert len(list(arc.handle_find(FakeEvent(sop_class=STUDY_FIND, identifier=ident)))) == 3
    frame = _ident(QueryRetrieveLevel="FRAME", PatientID="")
    out = list(arc.handle_find(FakeEvent(sop_class=STUDY_FIND, identifier=frame)))
    assert len(out) == 1 and _code(out[0][0]) == 0xA900
    out = list(arc.handle_find(FakeEvent(sop_class="1.2.3", identifier=ident)))
    assert _code(out[0][0]) >= 0xA000


def test_find_cancel_gives_fe00(arc: Archive) -> None:
    ident = _ident(
        QueryRetrieveLevel="IMAGE",
        StudyInstanceUID="2.25.1",
        SeriesInstanceUID="2.25.1.1",
        SOPInstanceUID="",
    )
    out = list(arc.handle_find(FakeEvent(sop_class=STUDY_FIND, identifier=ident, cancel_after=3)))
    assert [s for s, _ in out] == [Status.PENDING] * 3 + [Status.CANCEL]


def test_get_yields_count_then_paths(arc: Archive) -> None:
    ident = _ident(
        QueryRetrieveLevel="SERIES", StudyInstanceUID="2.25.1", SeriesInstanceUID="2.25.1.2"
    )
    out = list(arc.handle_get(FakeEvent(sop_class=STUDY_GET, identifier=ident)))
    assert out[0] == 5
    assert all(s == Status.PENDING and os.path.isfile(p) for s, p in out[1:])
    assert len(out) == 6


def test_get_cancel(arc: Archive) -> None:
    ident = _ident(QueryRetrieveLevel="STUDY", StudyInstanceUID="2.25.1")
    out = list(arc.handle_get(FakeEvent(sop_class=STUDY_GET, identifier=ident, cancel_after=2)))
    assert out[0] == 15
    assert [s for s, _ in out[1:]] == [Status.PENDING] * 2 + [Status.CANCEL]


def test_move_destination_lookup(arc: Archive) -> None:
    ident = _ident(QueryRetrieveLevel="STUDY", StudyInstanceUID="2.25.3")
    out = list(
        arc.handle_move(FakeEvent(sop_class=STUDY_MOVE, identifier=ident, move_destination="DEST "))
    )
    host, port, kwargs = out[0]
    assert (host, port) == ("127.0.0.1", 4242)
    # the sub-association proposes, per SOP class of the selected instances, its stored syntax
    # and both uncompressed little endian syntaxes, each in a context of its own
    contexts = kwargs["contexts"]
    assert all(len(cx.transfer_syntaxes) == 1 for cx in contexts)
    proposed = {(cx.abstract_syntax, cx.transfer_syntaxes[0]) for cx in contexts}
    for sop_class in {cx.abstract_syntax for cx in contexts}:
        assert {(sop_class, "1.2.840.10008.1.2.1"), (sop_class, "1.2.840.10008.1.2")} <= proposed
    assert out[1] == 10 and len(out) == 12
    unknown = list(
        arc.handle_move(
            FakeEvent(sop_class=STUDY_MOVE, identifier=ident, move_destination="NOBODY")
        )
    )
    assert unknown == [(None, None)]


def test_move_without_unique_key_fails_cleanly(arc: Archive) -> None:
    ident = _ident(QueryRetrieveLevel="SERIES", PatientID="")  # no UID selects anything
    out = list(
        arc.handle_move(FakeEvent(sop_class=STUDY_MOVE, identifier=ident, move_destination="DEST"))
    )
    assert out[0] == ("127.0.0.1", 4242) and out[1] == 0
    assert _code(out[2][0]) >= 0xA000
    # a study UID alone at SERIES level: the whole study (relational retrieval, C.4.2.2.2),
    # unless strict
    ident = _ident(QueryRetrieveLevel="SERIES", StudyInstanceUID="2.25.3")
    out = list(
        arc.handle_move(FakeEvent(sop_class=STUDY_MOVE, identifier=ident, move_destination="DEST"))
    )
    assert out[1] > 0 and len(out) == out[1] + 2
    arc.strict_hierarchical = True
    out = list(
        arc.handle_move(FakeEvent(sop_class=STUDY_MOVE, identifier=ident, move_destination="DEST"))
    )
    assert out[1] == 0 and _code(out[2][0]) == 0xA900


def test_recovery_on_start(tmp_path: Path) -> None:
    a = Archive(tmp_path / "s")
    ds, ts = next(all_datasets())
    assert (
        a.handle_store(
            FakeEvent(
                sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID, data=encode(ds, ts), ts=ts
            )
        )
        == 0
    )
    a.close()
    leftover = tmp_path / "s" / ".tmp" / "dead.part"
    leftover.write_bytes(b"partial")
    b = Archive(tmp_path / "s")
    try:
        assert not leftover.exists()
        assert b.index.instance_count() == 1
    finally:
        b.close()


def test_directory_store_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DirectoryStore(tmp_path / "out")
    ds, ts = next(all_datasets())

    def full(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    monkeypatch.setattr(os, "writev", full)  # the header and a small data set go in one writev
    r = store.handle_store(
        FakeEvent(
            sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID, data=encode(ds, ts), ts=ts
        )
    )
    monkeypatch.undo()
    assert _code(r) == Status.OUT_OF_RESOURCES
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []
