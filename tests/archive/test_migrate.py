"""``dicomnet archive migrate``: an archive's SQLite index moved to PostgreSQL answers every
query and retrieve as the original did; the catch-up pass brings in what changed since; the
command's exit codes and messages (issue 17)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset

from dicomnet.archive import nonpatient
from dicomnet.archive.commitment import CommitmentRequest, encode_request
from dicomnet.archive.commitment.store import Workflow, new_owner, release_owner
from dicomnet.archive.ian_state import IANState
from dicomnet.archive.index import ArchiveIndex
from dicomnet.archive.migrate import (
    TABLES,
    WORKFLOW_TABLES,
    MigrationError,
    migrate,
    table_columns,
    workflow_tables,
)
from dicomnet.archive.mpps import (
    COMPLETED,
    ERROR_NO_LONGER_UPDATABLE,
    IN_PROGRESS,
    MPPSError,
    MPPSStore,
)
from dicomnet.archive.store import FileStore
from tests.archive.conftest import CT, EXPLICIT, IMPLICIT, MR, US, all_datasets, encode
from tests.archive.test_mpps import final, step
from tests.cli.helpers import env
from tests.conftest import DATA, free_port
from tests.pg_cluster import Cluster

# Keys with wildcards/ranges are not valid VR values for pydicom's validator.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

HP_STORAGE = "1.2.840.10008.5.1.4.38.1"
CP_STORAGE = "1.2.840.10008.5.1.4.39.1"
CONFLICT_STUDY = "2.25.88"
CLASSES = {"CT": CT, "MR": MR, "US": US}


def _generated(patients: range, studies: int = 2, series: int = 3,
               per_series: int = 8) -> Iterator[Dataset]:  # fmt: skip
    """Instances of generated patients ``GEN<p>`` (odd ones with an issuer): ``studies``
    studies each, ``series`` series per study, ``per_series`` instances per series."""
    for p in patients:
        for s in range(studies):
            study = f"2.25.77.{p}.{s}"
            for r in range(series):
                modality = ("CT", "MR", "US")[r % 3]
                for i in range(1, per_series + 1):
                    ds = Dataset()
                    ds.PatientID = f"GEN{p:02d}"
                    if p % 2:
                        ds.IssuerOfPatientID = "HOSP"
                    ds.PatientName = f"Gen^Patient{p}" if p % 3 else f"GEN^PATIENT{p}"
                    ds.PatientBirthDate = f"{1950 + 5 * p}0101"
                    ds.PatientSex = "MF"[p % 2]
                    ds.StudyInstanceUID = study
                    ds.StudyDate = f"{2010 + p}{s + 1:02d}15"
                    ds.StudyTime = f"{8 + 2 * s:02d}3000"
                    ds.AccessionNumber = f"G{p}{s}"
                    ds.StudyID = str(s + 1)
                    ds.StudyDescription = f"Generated {modality} {s}"
                    ds.ReferringPhysicianName = f"Ref^Gen{p}"
                    ds.SeriesInstanceUID = f"{study}.{r}"
                    ds.Modality = modality
                    ds.SeriesNumber = r + 1
                    ds.SeriesDescription = f"series {r}"
                    ds.SOPClassUID = CLASSES[modality]
                    ds.SOPInstanceUID = f"{study}.{r}.{i}"
                    ds.InstanceNumber = i
                    yield ds


def _conflicting() -> Iterator[Dataset]:
    """One study UID under two patient identities (kept twice: study_conflict='accept')."""
    for n, pid in enumerate(("CONF1", "CONF2"), start=1):
        ds = Dataset()
        ds.PatientID = pid
        ds.PatientName = f"Conflict^{pid}"
        ds.StudyInstanceUID = CONFLICT_STUDY
        ds.StudyDate = "20220202"
        ds.SeriesInstanceUID = f"{CONFLICT_STUDY}.{n}"
        ds.Modality = "CT"
        ds.SOPClassUID = CT
        ds.SOPInstanceUID = f"{CONFLICT_STUDY}.{n}.1"
        ds.InstanceNumber = 1
        yield ds


def _nonpatient_objects() -> Iterator[Dataset]:
    hp = Dataset()
    hp.SOPClassUID = HP_STORAGE
    hp.SOPInstanceUID = "2.25.99.1"
    hp.HangingProtocolName = "CHEST-2X1"
    hp.HangingProtocolDescription = "two up"
    hp.HangingProtocolLevel = "SITE"
    hp.HangingProtocolCreator = "DR WHO"
    hp.HangingProtocolCreationDateTime = "20240101120000"
    cp = Dataset()
    cp.SOPClassUID = CP_STORAGE
    cp.SOPInstanceUID = "2.25.99.2"
    cp.ContentLabel = "HOTIRON"
    cp.ContentDescription = "hot iron"
    yield hp
    yield cp


def _store(store: FileStore, index: ArchiveIndex, datasets: Iterator[Dataset],
           ts: str = IMPLICIT) -> int:  # fmt: skip
    n = 0
    for ds in datasets:
        store.store(index, ds.SOPClassUID, ds.SOPInstanceUID, ts, [encode(ds, ts)])
        n += 1
    return n


def _build(root: Path, patients: range) -> tuple[FileStore, ArchiveIndex]:
    """A SQLite archive under ``root``: the shared generated archive (3 patients, 50
    instances, one with pixel data), generated patients, a study under two identities, a
    Hanging Protocol and a Color Palette."""
    store = FileStore(root)
    index = ArchiveIndex(root / "index.sqlite", study_conflict="accept")
    for ds, ts in all_datasets():
        store.store(index, ds.SOPClassUID, ds.SOPInstanceUID, ts, [encode(ds, ts)])
    _store(store, index, _generated(patients))
    _store(store, index, _conflicting())
    _store(store, index, _nonpatient_objects(), EXPLICIT)
    return store, index


# --- comparing two indexes ---------------------------------------------------------------------

RETURN_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                "IssuerOfPatientID", "NumberOfPatientRelatedStudies",
                "NumberOfPatientRelatedInstances"),
    "STUDY": ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "PatientName",
              "PatientID", "StudyDescription", "ModalitiesInStudy", "ReferringPhysicianName",
              "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
               "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("SOPInstanceUID", "SOPClassUID", "InstanceNumber"),
}  # fmt: skip

# (model, level, matching keys): universal, single value, wildcards, ranges, lists
QUERIES: list[tuple[str, str, dict[str, str]]] = [
    ("PATIENT", "PATIENT", {}),
    ("PATIENT", "PATIENT", {"PatientName": "gen*"}),
    ("PATIENT", "PATIENT", {"PatientID": "GEN0?"}),
    ("PATIENT", "PATIENT", {"PatientID": "GEN01", "IssuerOfPatientID": "HOSP"}),
    ("PATIENT", "PATIENT", {"PatientBirthDate": "19600101-19700101"}),
    ("PATIENT", "PATIENT", {"PatientSex": "F"}),
    ("PATIENT", "PATIENT", {"PatientName": "MÜLLER*"}),
    ("PATIENT", "STUDY", {"PatientID": "GEN02"}),
    ("STUDY", "STUDY", {}),
    ("STUDY", "STUDY", {"StudyDate": "20130101-20151231"}),
    ("STUDY", "STUDY", {"StudyDate": "-20191231"}),
    ("STUDY", "STUDY", {"StudyTime": "10-12"}),
    ("STUDY", "STUDY", {"AccessionNumber": "G1*"}),
    ("STUDY", "STUDY", {"AccessionNumber": "ACC[4]"}),
    ("STUDY", "STUDY", {"PatientName": "doe^*"}),
    ("STUDY", "STUDY", {"StudyInstanceUID": CONFLICT_STUDY}),
    ("STUDY", "STUDY", {"StudyInstanceUID": "2.25.1\\2.25.77.3.1"}),
    ("STUDY", "STUDY", {"ModalitiesInStudy": "MR"}),
    ("STUDY", "STUDY", {"ReferringPhysicianName": "ref^*"}),
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.77.1.0"}),
    ("STUDY", "SERIES", {"StudyInstanceUID": CONFLICT_STUDY}),
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.1", "Modality": "C?"}),
    ("STUDY", "IMAGE", {"StudyInstanceUID": "2.25.77.2.1", "SeriesInstanceUID": "2.25.77.2.1.1"}),
    ("STUDY", "IMAGE", {"StudyInstanceUID": "2.25.4", "SeriesInstanceUID": "2.25.4.2",
                        "SOPInstanceUID": "2.25.4.2.1\\2.25.4.2.3"}),
]  # fmt: skip

RETRIEVES: list[tuple[str, str, dict[str, str]]] = [
    ("STUDY", "STUDY", {"StudyInstanceUID": "2.25.1"}),
    ("STUDY", "STUDY", {"StudyInstanceUID": CONFLICT_STUDY}),
    ("STUDY", "SERIES", {"StudyInstanceUID": "2.25.77.4.1", "SeriesInstanceUID": "2.25.77.4.1.2"}),
    ("PATIENT", "PATIENT", {"PatientID": "GEN03"}),
    ("STUDY", "IMAGE", {"StudyInstanceUID": "2.25.2", "SeriesInstanceUID": "2.25.2.1",
                        "SOPInstanceUID": "2.25.2.1.1\\2.25.2.1.5"}),
    ("COMPOSITE", "IMAGE", {"SOPInstanceUID": "2.25.99.1\\2.25.1.1.1"}),
]  # fmt: skip


def _identifier(level: str, keys: dict[str, str]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k in RETURN_KEYS[level]:
        setattr(ds, k, "")
    for k, v in keys.items():
        setattr(ds, k, v)
    return ds


def _answers(index: ArchiveIndex) -> dict[str, Any]:
    """Every C-FIND answer (in order, as JSON) and retrieve set of the cases above."""
    out: dict[str, Any] = {}
    for model, level, keys in QUERIES:
        found = index.query(level, _identifier(level, keys), model)
        out[f"find {model} {level} {keys}"] = [json.dumps(d.to_json_dict(), sort_keys=True)
                                               for d in found]  # fmt: skip
    for model, level, keys in RETRIEVES:
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        for k, v in keys.items():
            setattr(ds, k, v)
        rs = index.retrieve_set(level, ds, model)
        out[f"retrieve {model} {level} {keys}"] = (rs.count, rs.pairs(), list(rs))
    hp = Dataset()
    hp.HangingProtocolName = "CHEST*"
    hp.HangingProtocolLevel = ""
    hp.HangingProtocolCreator = ""
    out["find hanging protocols"] = [
        d.to_json_dict() for d in nonpatient.find(index, nonpatient.HANGING_PROTOCOL_FIND, hp)
    ]
    return out


def _tables(index: ArchiveIndex) -> dict[str, list[tuple[Any, ...]]]:
    columns = table_columns()
    return {t: index.backend.fetch(f"SELECT {', '.join(columns[t])} FROM {t} ORDER BY pk")
            for t in TABLES}  # fmt: skip


def _assert_same(source: ArchiveIndex, destination: ArchiveIndex) -> None:
    expected, got = _answers(source), _answers(destination)
    for case, answer in expected.items():
        assert got[case] == answer, case
    assert _tables(destination) == _tables(source)


# --- the tests -----------------------------------------------------------------------------------


def test_migrated_index_answers_as_the_original(postgresql: Cluster, tmp_path: Path) -> None:
    _, source = _build(tmp_path / "storage", range(6))
    try:
        url = postgresql.database()
        report = migrate(tmp_path / "storage", url)
        counts = {t.table: t.source_rows for t in report.tables}
        # 3 + 6 + 2 patients; 4 + 12 + 2 studies (the conflicting one twice); 7 + 36 + 2 series
        assert counts == {"patient": 11, "study": 18, "series": 45, "instance": 50 + 288 + 2,
                          "other": 2}  # fmt: skip
        assert all(t.destination_rows == t.source_rows for t in report.tables)
        assert report.source_version == 2 and not report.incremental
        assert report.workflow_tables == [] and report.workflow.startswith(
            "no workflow state to move (no ")  # fmt: skip
        with ArchiveIndex(url, study_conflict="accept") as destination:
            answers = _answers(destination)
            assert len(answers[f"find STUDY STUDY {{'StudyInstanceUID': '{CONFLICT_STUDY}'}}"]) == 2
            assert all(answers[k] for k in answers if k.startswith("retrieve"))
            _assert_same(source, destination)
            assert destination.backend.name == "postgresql"
    finally:
        source.close()


def test_incremental_pass_catches_up(postgresql: Cluster, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    store, source = _build(root, range(2))
    try:
        url = postgresql.database()
        migrate(f"sqlite:{root / 'index.sqlite'}", url)
        # meanwhile: the last instance removed (its series, study and patient pruned: the
        # largest key of each table) and a new patient stored, which SQLite gives the same
        # keys; new patients and studies; a later instance renaming a patient; a patient pruned
        # (its only study removed); a re-stored instance moved to another patient
        last = source.backend.fetch("SELECT pk, sop_uid FROM instance ORDER BY pk DESC LIMIT 1")
        assert last[0][1] == f"{CONFLICT_STUDY}.2.1"
        tops = {t: source.backend.fetch(f"SELECT max(pk) FROM {t}")[0][0] for t in TABLES}
        source.remove_instance(last[0][1])
        extra = next(_generated(range(7, 8), studies=1, series=1, per_series=1))
        _store(store, source, iter([extra]))
        reused = source.backend.fetch(
            "SELECT i.pk, se.pk, st.pk, p.pk FROM instance i JOIN series se ON "
            "i.series_fk = se.pk JOIN study st ON se.study_fk = st.pk JOIN patient p ON "
            "st.patient_fk = p.pk WHERE i.sop_uid = ?", (extra.SOPInstanceUID,))[0]  # fmt: skip
        assert reused == (tops["instance"], tops["series"], tops["study"], tops["patient"])
        _store(store, source, _generated(range(2, 4), studies=1, series=2, per_series=3))
        renamed = next(_generated(range(1), studies=1, series=1, per_series=9))
        renamed.SOPInstanceUID += ".9"
        renamed.PatientName = "Gen^Renamed"
        _store(store, source, iter([renamed]))
        for n in range(1, 11):
            source.remove_instance(f"2.25.3.1.{n}")  # PID002's only study
        moved = next(_generated(range(1), studies=1, series=1, per_series=1))
        moved.PatientID, moved.PatientName = "MOVED", "Moved^Here"
        moved.StudyInstanceUID, moved.SeriesInstanceUID = "2.25.66", "2.25.66.1"
        _store(store, source, iter([moved]))  # same SOP Instance UID, same key, new series

        with pytest.raises(MigrationError, match="not empty"):
            migrate(root, url)
        report = migrate(root, url, incremental=True)
        by_table = {t.table: t for t in report.tables}
        # patient: PID002 and the old holder of the reused key gone, GEN00 renamed, GEN07 and
        # GEN02/GEN03 and MOVED new (the reused key deleted and inserted again: counted twice)
        assert (by_table["patient"].deleted, by_table["patient"].updated) == (2, 1)
        assert by_table["patient"].inserted == 1 + 2 + 1
        # instance: 10 of PID002 and the reused key gone, the moved one deleted and inserted
        assert (by_table["instance"].deleted, by_table["instance"].updated) == (10 + 1 + 1, 0)
        assert by_table["instance"].inserted == 1 + 12 + 1 + 1
        with ArchiveIndex(url, study_conflict="accept") as destination:
            _assert_same(source, destination)
            # a second catch-up finds nothing to do
            again = migrate(root, url, incremental=True)
            assert all((t.inserted, t.updated, t.deleted) == (0, 0, 0) for t in again.tables)
            # stored after the switch: keys past every copied one (identity sequences set)
            top = {t: destination.backend.fetch(f"SELECT max(pk) FROM {t}")[0][0]
                   for t in ("patient", "study", "series", "instance")}  # fmt: skip
            new = next(_generated(range(9, 10), studies=1, series=1, per_series=1))
            _store(FileStore(root), destination, iter([new]))
            row = destination.backend.fetch(
                "SELECT i.pk, se.pk, st.pk, p.pk FROM instance i JOIN series se ON "
                "i.series_fk = se.pk JOIN study st ON se.study_fk = st.pk JOIN patient p ON "
                "st.patient_fk = p.pk WHERE i.sop_uid = ?", (new.SOPInstanceUID,))[0]  # fmt: skip
            assert row[0] > top["instance"] and row[1] > top["series"]
            assert row[2] > top["study"] and row[3] > top["patient"]
    finally:
        source.close()


def test_archive_keeps_storing_during_the_copy(postgresql: Cluster, tmp_path: Path) -> None:
    """The source is read in one snapshot: instances stored while the copy runs (another
    connection, as the running archive) neither wait for it nor appear half-way in it; the
    catch-up brings them in."""
    root = tmp_path / "storage"
    store, source = _build(root, range(1))
    source.close()
    url = postgresql.database()
    stored: list[float] = []

    def store_meanwhile(table: str, done: int, total: int) -> None:
        if table == "series" and not stored:
            started = time.monotonic()
            with ArchiveIndex(root / "index.sqlite", timeout=5) as archive:
                _store(store, archive, _generated(range(5, 6), studies=1, series=1))
            stored.append(time.monotonic() - started)

    report = migrate(root, url, progress=store_meanwhile)
    assert stored and stored[0] < 2
    assert {t.table: t.source_rows for t in report.tables}["instance"] == 50 + 48 + 2
    with ArchiveIndex(root / "index.sqlite") as again:
        assert again.instance_count() == 50 + 48 + 2 + 8 + 2
        report = migrate(root, url, incremental=True)
        assert {t.table: t.inserted for t in report.tables}["instance"] == 8
        with ArchiveIndex(url) as destination:
            _assert_same(again, destination)


def test_migrate_to_sqlite_and_back(postgresql: Cluster, tmp_path: Path) -> None:
    """The copy is backend-neutral: PostgreSQL back to a new SQLite file answers the same."""
    _, source = _build(tmp_path / "storage", range(1))
    try:
        url = postgresql.database()
        migrate(tmp_path / "storage" / "index.sqlite", url)
        back = tmp_path / "back.sqlite"
        report = migrate(url, f"sqlite:{back}", batch=7)  # small batches: paging exercised
        assert report.ok
        with ArchiveIndex(back, study_conflict="accept") as again:
            _assert_same(source, again)
    finally:
        source.close()


def test_identity_changed_under_the_same_key(postgresql: Cluster, tmp_path: Path) -> None:
    """A patient row whose identity changed under its key (edited by hand or a tool): the
    catch-up deletes it with the rows that refer to it and inserts them again (PostgreSQL
    checks every reference at each statement)."""
    root = tmp_path / "storage"
    _, source = _build(root, range(1))
    try:
        url = postgresql.database()
        migrate(root, url)
        with source.backend.transaction() as conn:
            conn.execute("UPDATE patient SET patient_id = 'EDITED' WHERE patient_id = 'PID001'")
        report = migrate(root, url, incremental=True)
        by_table = {t.table: t for t in report.tables}
        assert (by_table["patient"].deleted, by_table["patient"].inserted) == (1, 1)
        assert by_table["instance"].deleted == by_table["instance"].inserted == 10 + 5 + 8 + 2
        with ArchiveIndex(url) as destination:
            _assert_same(source, destination)
    finally:
        source.close()


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no index at"):
        migrate(tmp_path / "nothing.sqlite", f"sqlite:{tmp_path / 'x.sqlite'}")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(MigrationError, match="not an archive index"):
        migrate(tmp_path / "junk.sqlite", f"sqlite:{tmp_path / 'x.sqlite'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MigrationError, match="no index at"):
        migrate(tmp_path / "empty", f"sqlite:{tmp_path / 'x.sqlite'}")
    assert not (tmp_path / "empty" / "index.sqlite").exists()  # nothing created


# --- the command ---------------------------------------------------------------------------------


def _migrate_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dicomnet", "archive", "migrate", *args],
                          capture_output=True, text=True, timeout=60, env=env())  # fmt: skip


def test_command(postgresql: Cluster, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    store = FileStore(storage)
    with ArchiveIndex(storage / "index.sqlite") as index:
        for ds, ts in all_datasets():
            store.store(index, ds.SOPClassUID, ds.SOPInstanceUID, ts, [encode(ds, ts)])
    url = postgresql.database()
    done = _migrate_cmd("--from", str(storage), "--to", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified: row counts equal in every table" in done.stdout
    assert [ln.split()[:3] for ln in done.stdout.splitlines() if ln.startswith("instance")] == [
        ["instance", "50", "50"]]  # fmt: skip
    assert f"no workflow state to move (no {storage / 'workflow.sqlite'})" in done.stdout
    assert not (storage / "workflow.sqlite").exists()

    again = _migrate_cmd("--from", f"sqlite:{storage / 'index.sqlite'}", "--to", url)
    assert again.returncode == 1
    assert (
        again.stderr.startswith("error: the destination is not empty")
        and "--incremental" in again.stderr
    )
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr

    catch_up = _migrate_cmd("--from", str(storage), "--to", url, "--incremental", "-q")
    assert catch_up.returncode == 0 and catch_up.stdout == "", catch_up.stderr

    closed = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    unreachable = _migrate_cmd("--from", str(storage), "--to", closed)
    assert unreachable.returncode == 1
    assert "cannot connect to the index database" in unreachable.stderr
    assert unreachable.stderr.count("\n") == 1 and "Traceback" not in unreachable.stderr

    missing = _migrate_cmd("--from", str(tmp_path / "nowhere"), "--to", url)
    assert missing.returncode == 1 and "no index at" in missing.stderr


def test_command_upgrades_a_version_1_index(postgresql: Cluster, tmp_path: Path) -> None:
    """tests/data/archive_v1 (the release before: Patient ID alone, one name per patient,
    paths of another folder) is upgraded on the way, as the archive's first start would."""
    storage = tmp_path / "storage"
    shutil.copytree(DATA / "archive_v1", storage)
    url = postgresql.database()
    done = _migrate_cmd("--from", str(storage), "--to", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "upgraded from schema version 1" in done.stdout
    with ArchiveIndex(url) as index:
        q = _identifier("STUDY", {"PatientName": "DOE^JANE"})
        assert [d.StudyInstanceUID for d in index.query("STUDY", q)] == [
            "1.2.826.0.1.3680043.10.999.11.1"]  # fmt: skip
        root = index.backend.fetch("SELECT value FROM meta WHERE key = 'root'")
        assert root == [(str(storage.resolve()),)]  # meta copied: no rebase at the first start
        paths = [p for _, p in index.iter_paths()]
        assert paths and all(p.startswith(str(storage.resolve())) and Path(p).is_file()
                             for p in paths)  # fmt: skip


# --- the workflow state ----------------------------------------------------------------------

STEP_A, STEP_B, STEP_C = "2.25.500.1", "2.25.500.2", "2.25.500.3"


def _small_archive(root: Path) -> None:
    store = FileStore(root)
    with ArchiveIndex(root / "index.sqlite") as index:
        for ds, ts in all_datasets():
            store.store(index, ds.SOPClassUID, ds.SOPInstanceUID, ts, [encode(ds, ts)])


def _commit(workflow: Workflow, txn: str, items: list[tuple[str, str]]) -> int:
    """A Storage Commitment request accepted by a service that then closed (its owner gone)."""
    owner = new_owner(host=workflow.shared)
    cid, _, duplicate = workflow.accept(CommitmentRequest(encode_request(txn, items, IMPLICIT),
                                                          IMPLICIT), "MODALITY", owner, 100)  # fmt: skip
    release_owner(owner)
    assert not duplicate
    return cid


def _workflow_rows(backend: Any) -> dict[str, list[tuple[Any, ...]]]:
    present = backend.tables()  # a service never started has no tables: none of its rows
    return {t.name: backend.fetch(f"SELECT {', '.join(t.columns)} FROM {t.name} "
                                  f"ORDER BY {', '.join(t.key)}") if t.name in present else []
            for t in workflow_tables()}  # fmt: skip


def test_workflow_state_moves_with_the_index(postgresql: Cluster, tmp_path: Path) -> None:
    """MPPS steps (one IN PROGRESS after an N-SET, one COMPLETED), the forwarding outbox of a
    destination that is down, a pending and a delivered storage commitment: on PostgreSQL the
    same services find them as they were, and go on (state rules, new keys past the copied
    ones); and back to SQLite."""
    root = tmp_path / "storage"
    _small_archive(root)
    downstream = [("DOWNSTREAM", "127.0.0.1", free_port())]  # nothing listens: rows stay
    with MPPSStore(root, forward=downstream) as mpps:
        mpps.create(STEP_A, step("2.25.1"), calling_ae_title="CT01")
        set_a = Dataset()
        set_a.PerformedProcedureStepDescription = "CT HEAD PLAIN"
        mpps.update(STEP_A, set_a)
        mpps.create(STEP_B, step("2.25.2"))
        mpps.update(STEP_B, final(COMPLETED, series="2.25.2.7"))
        assert mpps.flush_forwards() == 4
        outbox = mpps.pending_forwards()
    workflow = Workflow(root)
    try:
        pending = _commit(workflow, "2.25.600.1", [(CT, "2.25.1.1.1"), (CT, "2.25.404")])
        done = _commit(workflow, "2.25.600.2", [(CT, "2.25.1.1.2")])
        workflow.delivered(done)
        # --ian: a study waiting to be announced, and an announcement one destination of
        # which has yet to answer
        ian = IANState(root)
        try:
            ian.mark_waiting("2.25.1")
            assert ian.claim("2.25.2", 1700000000.25, ["RIS@h:1", "PACS@h:2"], 1700000001.5)
            assert ian.start_attempt("2.25.2", "RIS@h:1", 1700000000.25, 0, 1700000010.5)
            ian.finished("2.25.2", ["PACS@h:2"], 1700000000.25)
        finally:
            ian.close()
        source_rows = _workflow_rows(workflow.backend)
    finally:
        workflow.close()

    url = postgresql.database()
    report = migrate(root, url)
    assert report.workflow == f"{root / 'workflow.sqlite'} -> {url}"
    assert {t.table: t.source_rows for t in report.workflow_tables} == {
        "mpps": 2, "mpps_study": 2, "mpps_series": 1, "mpps_outbox": 4, "commitment": 2,
        "commitment_item": 2, "ian_study": 2, "ian_delivery": 1}  # fmt: skip
    assert all(t.ok and t.inserted == t.source_rows for t in report.workflow_tables)
    ian = IANState(url)
    try:  # what a notifier resumes from: exact to the bit (REAL is a double on both)
        assert ian.waiting() == ["2.25.1"]
        assert ian.deliveries() == [("2.25.2", "RIS@h:1", 1700000000.25, 1, 1700000010.5)]
    finally:
        ian.close()

    with MPPSStore(url) as mpps:
        assert _workflow_rows(mpps.backend) == source_rows
        a = mpps.record(STEP_A)
        assert a is not None and (a.status, a.calling_ae_title) == (IN_PROGRESS, "CT01")
        assert a.study_uids == ("2.25.1",)
        assert mpps.get(STEP_A).PerformedProcedureStepDescription == "CT HEAD PLAIN"
        assert [r.sop_instance_uid for r in mpps.steps_for_study("2.25.2")] == [STEP_B]
        assert mpps.pending_forwards() == outbox
        assert mpps.update(STEP_A, final(COMPLETED)).PerformedProcedureStepStatus == COMPLETED
        with pytest.raises(MPPSError) as refused:
            mpps.update(STEP_B, final(COMPLETED))
        assert (refused.value.code, str(refused.value)) == (0x0110, ERROR_NO_LONGER_UPDATABLE)
    with MPPSStore(url, forward=downstream) as mpps:  # queues past the copied outbox keys
        mpps.create(STEP_C, step("2.25.3"))
        assert mpps.flush_forwards() == 5
        assert mpps.pending_forwards()[:4] == outbox

    workflow = Workflow(url)
    owner = new_owner(host=True)
    try:
        assert workflow.claim(owner) == [(pending, "accepted", "MODALITY")]
        assert [i for _, _, i in workflow.unchecked(pending, -1)] == ["2.25.1.1.1", "2.25.404"]
        assert workflow.latest_state("2.25.600.2") == "delivered"
        assert _commit(workflow, "2.25.600.3", [(CT, "2.25.1.1.3")]) > done
    finally:
        release_owner(owner)
        workflow.close()

    back = tmp_path / "back"
    back.mkdir()
    report = migrate(url, f"sqlite:{back / 'index.sqlite'}")
    assert report.workflow == f"{url} -> {back / 'workflow.sqlite'}"
    with MPPSStore(back) as mpps:
        assert [r.sop_instance_uid for r in mpps.find()] == [STEP_A, STEP_B, STEP_C]
        assert len(mpps.pending_forwards()) == 5


def test_workflow_catch_up(postgresql: Cluster, tmp_path: Path) -> None:
    """The first pass reads workflow.sqlite in one snapshot while the services go on; the
    catch-up (the command) brings in a step created since, an N-SET, a commitment delivered
    and a new one; a second catch-up finds nothing."""
    root = tmp_path / "storage"
    _small_archive(root)
    url = postgresql.database()
    workflow = Workflow(root)
    try:
        with MPPSStore(root) as mpps:
            mpps.create(STEP_A, step("2.25.1"))
            first = _commit(workflow, "2.25.600.1", [(CT, "2.25.1.1.1")])

            def meanwhile(table: str, done: int, total: int) -> None:
                if table == "mpps" and done == total and mpps.record(STEP_B) is None:
                    mpps.create(STEP_B, step("2.25.2"))  # not in the snapshot being copied

            report = migrate(root, url, progress=meanwhile)
            assert {t.table: t.source_rows for t in report.workflow_tables}["mpps"] == 1
            mpps.update(STEP_A, final(COMPLETED))
            mpps.create(STEP_C, step("2.25.3"))
            workflow.delivered(first)
            _commit(workflow, "2.25.600.2", [(CT, "2.25.1.1.2"), (CT, "2.25.1.1.3")])
            source_rows = _workflow_rows(workflow.backend)
    finally:
        workflow.close()

    done = _migrate_cmd("--from", f"sqlite:{root / 'index.sqlite'}", "--to", url, "--incremental")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"workflow state: {root / 'workflow.sqlite'} -> {url}" in done.stdout
    lines = {ln.split()[0]: ln.split()[1:] for ln in done.stdout.splitlines()}
    # source, destination, inserted, updated, deleted
    assert lines["mpps"] == ["3", "3", "2", "1", "0"]
    assert lines["commitment"] == ["2", "2", "1", "1", "0"]
    assert lines["commitment_item"] == ["2", "2", "2", "0", "1"]
    with MPPSStore(url) as mpps:
        assert _workflow_rows(mpps.backend) == source_rows
        assert [(r.sop_instance_uid, r.status) for r in mpps.find()] == [
            (STEP_A, COMPLETED), (STEP_B, IN_PROGRESS), (STEP_C, IN_PROGRESS)]  # fmt: skip
    again = migrate(root, url, incremental=True)
    assert all((t.inserted, t.updated, t.deleted) == (0, 0, 0) for t in again.workflow_tables)
    assert [t.table for t in again.workflow_tables] == list(WORKFLOW_TABLES)


def test_table_definitions_match_the_databases(tmp_path: Path) -> None:
    """What the copy reads from the DDL (columns, primary key, INTEGER PRIMARY KEY) is what
    SQLite made of it."""
    MPPSStore(tmp_path).close()
    Workflow(tmp_path).close()
    IANState(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "workflow.sqlite")
    try:
        for table in workflow_tables():
            info = conn.execute(f"PRAGMA table_info({table.name})").fetchall()
            assert sorted(table.columns) == sorted(r[1] for r in info), table.name
            key = tuple(r[1] for r in sorted(info, key=lambda r: r[5]) if r[5])
            assert table.key == key, table.name
            assert table.columns[: table.width] == key
        serials = {t.name: t.serial for t in workflow_tables() if t.serial}
        assert serials == {"mpps_outbox": "id", "commitment": "id"}
    finally:
        conn.close()


def test_a_sqlite_copy_in_the_same_folder_shares_its_workflow_state(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    _small_archive(root)
    with MPPSStore(root) as mpps:
        mpps.create(STEP_A, step("2.25.1"))
    report = migrate(root, f"sqlite:{root / 'copy.sqlite'}")
    assert report.workflow_tables == []
    assert report.workflow == (f"workflow state stays in {root / 'workflow.sqlite'} (the "
                               "destination index's folder)")  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    report = migrate(root, f"sqlite:{elsewhere / 'index.sqlite'}")
    assert {t.table: t.destination_rows for t in report.workflow_tables}["mpps"] == 1
    with MPPSStore(elsewhere) as mpps:
        assert mpps.record(STEP_A) is not None
