"""Every reader of a stored instance goes through the archive's storage interface
(:mod:`dicomnet.archive.storage`), so an object store can replace the file store.

``BucketStore`` stands in for an object store: after each store it moves the Part 10 file
out of the folder the index names into a "bucket" under an opaque key, and serves reads only
through ``open`` (a download into a temporary file, as an S3 reader would do) and ``source``
(a :class:`~dicomnet.datasource.DataSource` over such a download, deleted once sent). A reader
that opened the index's path itself would find nothing there. Over real loopback associations:
C-STORE in, C-FIND with a return key the index does not hold (read from the instance), C-GET,
C-MOVE to a second SCP, and a storage commitment check -- each answered from the bucket.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from pydicom.dataset import Dataset

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.archive.commitment import CommitmentService, StoredInstance
from dicomnet.archive.index import ArchiveIndex
from dicomnet.archive.scp import Archive, archive_ae, storage_ae
from dicomnet.archive.storage import InstanceStorage
from dicomnet.archive.store import FileStore, PendingFile
from dicomnet.archive.store import StoredInstance as Stored
from dicomnet.datasource import DataSource
from dicomnet.dimse.dataset import read_part10_header
from tests.archive.test_commitment import make_ct

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


class BucketStore:
    """An object-store stand-in (see the module docstring)."""

    def __init__(self, root: Path, bucket: Path, downloads: Path) -> None:
        self.inner = FileStore(root)
        self.root, self.tmp_dir, self.node = self.inner.root, self.inner.tmp_dir, None
        self.bucket, self.downloads = bucket, downloads
        bucket.mkdir()
        downloads.mkdir()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _key(self, path: str) -> Path:
        return self.bucket / hashlib.sha256(path.encode()).hexdigest()

    def _download(self, path: str) -> str:
        fd, tmp = tempfile.mkstemp(dir=self.downloads)
        with os.fdopen(fd, "wb") as out, open(self._key(path), "rb") as obj:
            shutil.copyfileobj(obj, out)
        return tmp

    def store(self, index: ArchiveIndex, sop_class_uid: str, sop_instance_uid: str,
              transfer_syntax_uid: str, chunks: Iterable[bytes | bytearray | memoryview], *,
              source_ae_title: str | None = None, fields: Any = None) -> Stored:  # fmt: skip
        stored = self.inner.store(index, sop_class_uid, sop_instance_uid, transfer_syntax_uid,
                                  chunks, source_ae_title=source_ae_title, fields=fields)  # fmt: skip
        os.replace(stored.path, self._key(stored.path))  # the "put"; the index keeps the name
        return stored

    def adopt(self, path: str, meta: bytes) -> PendingFile | None:
        return None  # an object store cannot take a spool file over: store() gets the bytes

    def store_adopted(self, *args: object) -> Stored:
        raise AssertionError("adopt() never takes a file over")

    def recover(self, index: ArchiveIndex, *, full: bool = True, since: float = 0.0) -> Any:
        raise AssertionError("the archive is made with recover=False")

    def open(self, path: str) -> BinaryIO:
        with self._lock:
            self.calls["open"] += 1
        tmp = self._download(path)
        f = open(tmp, "rb")  # noqa: SIM115 - the archive closes it
        os.unlink(tmp)  # gone with the last close, as a temporary download should be
        return f

    def source(self, path: str) -> DataSource:
        with self._lock:
            self.calls["source"] += 1
        tmp = self._download(path)
        with open(tmp, "rb") as f:
            offset, ts = read_part10_header(f.read(65536))
        return DataSource(path=tmp, offset=offset, transfer_syntax=ts, owned=True)

    def remove(self, path: str) -> bool:
        with self._lock:
            self.calls["remove"] += 1
        try:
            self._key(path).unlink()
        except FileNotFoundError:
            return False
        return True


@pytest.fixture
def bucket_archive(tmp_path: Path) -> Iterator[tuple[Archive, BucketStore, int]]:
    store = BucketStore(tmp_path / "root", tmp_path / "bucket", tmp_path / "downloads")
    archive = Archive(store, tmp_path / "index.sqlite", recover=False, ae_title="ARCHIVE")
    ae = archive_ae("ARCHIVE")
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=archive.handlers())
    try:
        yield archive, store, server.server_address[1]
    finally:
        server.shutdown()
        archive.close()


def _ident(level: str, **kw: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def test_a_storage_of_ones_own_serves_every_reader(
    bucket_archive: tuple[Archive, BucketStore, int], tmp_path: Path
) -> None:
    archive, store, port = bucket_archive
    assert isinstance(store, InstanceStorage) and archive.files is store
    sent = [make_ct(n) for n in range(1, 4)]
    for ds in sent:
        ds.SliceThickness = "2.5"  # a return key the index does not hold

    scu = AE("SCU")
    scu.add_requested_context(CT, [EXPLICIT, IMPLICIT])
    for uid in (STUDY_FIND, STUDY_GET, STUDY_MOVE):
        scu.add_requested_context(uid)
    scu.add_requested_context(CT, [EXPLICIT, IMPLICIT])
    got: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        got.append(event.dataset)
        return 0

    from dicomnet.presentation import build_role

    assoc = scu.associate("127.0.0.1", port, ae_title="ARCHIVE",
                          ext_neg=[build_role(CT, scu_role=True, scp_role=True)],
                          evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    try:
        for ds in sent:
            assert assoc.send_c_store(ds).Status == 0
        # nothing where the index points: the files are in the bucket only
        for ds in sent:
            item = archive.index.get_instance(ds.SOPInstanceUID)
            assert item is not None and not os.path.exists(item.path)
        assert len(list(store.bucket.iterdir())) == 3

        # C-FIND: SliceThickness is read from each stored instance, through open()
        query = _ident("IMAGE", StudyInstanceUID=sent[0].StudyInstanceUID,
                       SeriesInstanceUID=sent[0].SeriesInstanceUID, SOPInstanceUID="",
                       SliceThickness="2.5")  # fmt: skip
        matches = [
            m for s, m in assoc.send_c_find(query, STUDY_FIND) if s.Status in (0xFF00, 0xFF01)
        ]
        assert sorted(m.SOPInstanceUID for m in matches) == sorted(d.SOPInstanceUID for d in sent)
        assert all(m.SliceThickness == 2.5 for m in matches)
        assert store.calls["open"] >= 3

        # C-GET: the sub-operations send what source() gives
        results = list(assoc.send_c_get(_ident("STUDY", StudyInstanceUID=sent[0].StudyInstanceUID),
                                        STUDY_GET))  # fmt: skip
        assert results[-1][0].Status == 0
        assert sorted(d.SOPInstanceUID for d in got) == sorted(d.SOPInstanceUID for d in sent)
        assert all(d.SliceThickness == 2.5 for d in got)
        assert store.calls["source"] == 3

        # C-MOVE to a second SCP
        moved: list[str] = []

        def on_moved(event: evt.Event) -> int:
            moved.append(event.request.AffectedSOPInstanceUID)
            return 0

        dest = storage_ae("DEST")
        dest_server = dest.start_server(("127.0.0.1", 0), block=False,
                                        evt_handlers=[(evt.EVT_C_STORE, on_moved)])  # fmt: skip
        archive.destinations["DEST"] = ("127.0.0.1", dest_server.server_address[1])
        try:
            results = list(
                assoc.send_c_move(
                    _ident("STUDY", StudyInstanceUID=sent[0].StudyInstanceUID), "DEST", STUDY_MOVE
                )
            )
            assert results[-1][0].Status == 0
        finally:
            dest_server.shutdown()
        assert sorted(moved) == sorted(d.SOPInstanceUID for d in sent)
        assert store.calls["source"] == 6
    finally:
        assoc.release()
    # every download was deleted once sent or read
    assert list(store.downloads.iterdir()) == []

    # storage commitment: the check reads the instance through the storage too
    service = CommitmentService(archive.index, {}, str(tmp_path / "workflow.sqlite"),
                                open_stored=store.open)  # fmt: skip
    try:
        opened = store.calls["open"]
        item = archive.index.get_instance(sent[0].SOPInstanceUID)
        assert item is not None
        stored = StoredInstance(item.sop_class_uid, item.path)
        assert service.verdict(CT, sent[0].SOPInstanceUID, stored) == 0
        assert store.calls["open"] == opened + 1
        os.unlink(store._key(item.path))  # the object is gone: "no such object instance"
        assert service.verdict(CT, sent[0].SOPInstanceUID, stored) == 0x0112
    finally:
        service.close()

    # qrscp --clean: every row, then every object, through the storage
    assert archive.clean() == (3, 1)  # the object unlinked above could not be deleted again
    assert archive.index.instance_count() == 0
    assert store.calls["remove"] == 3 and list(store.bucket.iterdir()) == []
