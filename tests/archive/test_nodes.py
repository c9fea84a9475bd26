"""Several archive nodes on one PostgreSQL index and one storage folder (issue 17).

What two nodes must never do to each other: run under one name, take each other's in-flight
temp files for crash debris, drop an index row the other just pointed at a new file, or both
decide that a study is new when it arrives under two patients at once. And what a node does
when the database goes away: the store fails with A700 and leaves nothing behind, and service
resumes when the server is back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dicomnet.archive.index import ArchiveIndex, InstanceFields
from dicomnet.archive.models import IndexUnavailableError, QueryError, StudyConflictError
from dicomnet.archive.ownership import StorageInUseError
from dicomnet.archive.scp import Archive
from dicomnet.dimse.status import Status
from tests.archive.conftest import CT, IMPLICIT, encode
from tests.pg_cluster import Cluster

pytestmark = pytest.mark.usefixtures("postgresql")


def _fields(n: int, study: str, patient: str = "P1", series: str | None = None) -> InstanceFields:
    return InstanceFields(sop_instance_uid=f"{study}.9.{n}", sop_class_uid=CT,
                          study_instance_uid=study, series_instance_uid=series or f"{study}.1",
                          patient_id=patient, patient_name=f"Name^{patient}",
                          modality="CT", instance_number=str(n))  # fmt: skip


def _dataset(sop: str, study: str, series: str, patient: str = "P1") -> bytes:
    from pydicom import Dataset

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CT, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientID, ds.PatientName, ds.Modality = patient, f"Name^{patient}", "CT"
    return encode(ds, IMPLICIT)


def _both(node: Callable[[int], None]) -> None:
    """``node(0)`` and ``node(1)`` at once, each in a thread of its own (two nodes)."""
    threads = [threading.Thread(target=node, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture
def db(postgresql: Cluster) -> str:
    return postgresql.database()


def test_one_process_per_node_name_and_no_single_owner_beside_nodes(tmp_path: Path,
                                                                     db: str) -> None:  # fmt: skip
    a = Archive(tmp_path, db, node="a")
    try:
        with pytest.raises(StorageInUseError, match="node 'a'"):
            Archive(tmp_path, db, node="a")
        b = Archive(tmp_path, db, node="b")  # another name: welcome
        b.close()
        with pytest.raises(StorageInUseError, match="storage folder"):
            Archive(tmp_path)  # a single-owner (SQLite) archive cannot start beside nodes
        assert a.files.tmp_dir == os.path.join(a.files.root, ".tmp", "a")
        assert a.state_dir == os.path.join(a.files.root, ".nodes", "a")
    finally:
        a.close()
    with pytest.raises(StorageInUseError, match="storage folder"):  # and the other way round
        single = Archive(tmp_path / "x")
        try:
            Archive(tmp_path / "x", db, node="a")
        finally:
            single.close()


def test_the_lease_is_held_in_the_database(tmp_path: Path, db: str) -> None:
    index = ArchiveIndex(db)
    try:
        first = index.backend.lease("dicomnet-node:a")
        assert first is not None
        assert index.backend.lease("dicomnet-node:a") is None  # another host's node "a"
        with pytest.raises(StorageInUseError, match="another host"):
            Archive(tmp_path, db, node="a")  # its folder lock is free, its lease is not
        first.close()  # the node stops (or its connection dies with it)
        Archive(tmp_path, db, node="a").close()
    finally:
        index.close()


def test_every_node_mounts_the_storage_at_one_path(tmp_path: Path, db: str) -> None:
    Archive(tmp_path / "here", db, node="a").close()
    with pytest.raises(StorageInUseError, match="one path"):
        Archive(tmp_path / "there", db, node="b")


def test_start_up_check_leaves_other_nodes_spool_alone(tmp_path: Path, db: str) -> None:
    a = Archive(tmp_path, db, node="a")
    in_flight = a.files.begin_write()  # node a is receiving an object right now
    in_flight.write(b"half an object")
    Path(tmp_path, ".tmp", "b").mkdir(parents=True, exist_ok=True)
    debris = Path(tmp_path, ".tmp", "b", "crashed.part")
    debris.write_bytes(b"left by b's crash")
    loose = Path(tmp_path, ".tmp", "single-owner.part")  # a single owner's crash, long ago
    loose.write_bytes(b"x")
    try:
        b = Archive(tmp_path, db, node="b")  # no clean-stop marker: b's full check runs
        b.close()
        assert Path(in_flight.path).exists()
        assert not debris.exists() and not loose.exists()
        in_flight.write(b", the other half")  # and node a finishes it
        a.files.commit(in_flight, os.path.join(a.files.root, "1.2", "1.2.3", "1.2.3.4.dcm"))
    finally:
        a.close()


def test_start_up_check_drops_a_row_only_if_it_still_names_the_missing_file(
        tmp_path: Path, db: str) -> None:  # fmt: skip
    index = ArchiveIndex(db)
    try:
        f = _fields(1, "1.2.840.99.1")
        index.add_instance(f, str(tmp_path / "new.dcm"), IMPLICIT, 10)
        # another node's start-up check saw the row before it moved to new.dcm
        assert index.remove_instance(f.sop_instance_uid, path=str(tmp_path / "old.dcm")) is None
        assert index.get_instance(f.sop_instance_uid) is not None
        assert index.remove_instance(f.sop_instance_uid, path=str(tmp_path / "new.dcm"))
        assert index.get_instance(f.sop_instance_uid) is None
    finally:
        index.close()


def test_two_nodes_never_both_take_a_new_study_for_their_patient(db: str) -> None:
    # Two indexes on one database are two nodes: separate pools, separate process-wide write
    # locks. Each round, both store the first instance of one new study at the same moment,
    # for different patients: exactly one must win, the other get the study conflict.
    nodes = [ArchiveIndex(db), ArchiveIndex(db)]
    rounds = 20
    outcomes: list[list[str]] = [[] for _ in range(rounds)]
    barrier = threading.Barrier(2)

    def node(k: int) -> None:
        for r in range(rounds):
            f = _fields(k, f"1.2.840.99.2.{r}", patient=f"PAT{k}")
            barrier.wait()
            try:
                nodes[k].add_instance(f, f"/nowhere/{r}/{k}.dcm", IMPLICIT, 1)
                outcomes[r].append("stored")
            except StudyConflictError:
                outcomes[r].append("conflict")

    try:
        _both(node)
        assert all(sorted(o) == ["conflict", "stored"] for o in outcomes), outcomes
        rows = nodes[0].backend.fetch("SELECT study_uid, COUNT(*) FROM study GROUP BY study_uid")
        assert len(rows) == rounds and all(n == 1 for _, n in rows)
    finally:
        for n in nodes:
            n.close()


def test_two_nodes_storing_one_study_at_once_make_one_set_of_rows(db: str) -> None:
    nodes = [ArchiveIndex(db), ArchiveIndex(db)]
    study = "1.2.840.99.3"

    def node(k: int) -> None:
        for n in range(k, 120, 2):  # interleaved: the same series from both nodes
            nodes[k].add_instance(_fields(n, study, series=f"{study}.{n % 3}"),
                                  f"/nowhere/{n}.dcm", IMPLICIT, 1)  # fmt: skip

    try:
        _both(node)
        fetch = nodes[1].backend.fetch
        assert fetch("SELECT COUNT(*) FROM patient") == [(1,)]
        assert fetch("SELECT COUNT(*) FROM study") == [(1,)]
        assert fetch("SELECT COUNT(*) FROM series") == [(3,)]
        assert fetch("SELECT COUNT(*) FROM instance") == [(120,)]
    finally:
        for n in nodes:
            n.close()


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of this test's own, which it may stop and start again."""
    pytest.importorskip("psycopg")
    from tests import pg_cluster

    cluster = pg_cluster.start()
    if cluster is None or not cluster.own:
        pytest.skip("needs a PostgreSQL cluster of its own (initdb/pg_ctl)")
    yield cluster
    cluster.stop()


def test_database_away_store_fails_clean_and_service_resumes(tmp_path: Path,
                                                             own_cluster: Cluster) -> None:  # fmt: skip
    arc = Archive(tmp_path, own_cluster.database(), node="a")
    study, series = "1.2.840.99.4", "1.2.840.99.4.1"
    try:
        arc.files.store(arc.index, CT, f"{study}.1", IMPLICIT, [_dataset(f"{study}.1", study,
                                                                          series)])  # fmt: skip
        own_cluster.pause()
        with pytest.raises(IndexUnavailableError) as err:
            arc.files.store(arc.index, CT, f"{study}.2", IMPLICIT,
                            [_dataset(f"{study}.2", study, series)])  # fmt: skip
        assert err.value.status == Status.OUT_OF_RESOURCES
        # nothing half stored: no file for the refused instance, no temp file
        assert not Path(arc.files.path_for(study, series, f"{study}.2")).exists()
        assert os.listdir(arc.files.tmp_dir) == []
        with pytest.raises(QueryError) as qerr:
            from pydicom import Dataset

            ident = Dataset()
            ident.QueryRetrieveLevel, ident.StudyInstanceUID = "STUDY", study
            list(arc.index.query(None, ident))
        assert qerr.value.status == Status.OUT_OF_RESOURCES
        own_cluster.resume()
        arc.files.store(arc.index, CT, f"{study}.3", IMPLICIT, [_dataset(f"{study}.3", study,
                                                                          series)])  # fmt: skip
        uids = sorted(r[0] for r in arc.index.backend.fetch("SELECT sop_uid FROM instance"))
        assert uids == [f"{study}.1", f"{study}.3"]
        # the restart dropped the node's lease; the first request that got through took it
        # back: nobody else can start as node "a"
        other = ArchiveIndex(arc.db_path)
        try:
            assert other.backend.lease("dicomnet-node:a") is None
        finally:
            other.close()
    finally:
        arc.close()
