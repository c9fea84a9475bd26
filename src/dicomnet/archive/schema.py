"""The archive index's schema (one definition for SQLite and PostgreSQL), and its upgrade
from earlier releases.

Theory of operation
-------------------
Version 2 (this release) models what PS3.3 and PS3.4 say a patient and a study are:

* ``patient``: one row per patient *identity*, Patient ID with its Issuer of Patient ID
  (PS3.3 C.7.1.1: a Patient ID is unique only within its issuer). Its name, birth date and sex
  are those of the latest instance stored for that identity; PATIENT-level queries match them.
* ``study``: one row per study of a patient identity, keyed by (Study Instance UID, patient).
  Each study keeps the patient attributes *it* arrived with (``patient_name``, ``birth_date``...
  copied per study): a STUDY-level query on a patient name finds the studies stored under that
  name even when a later study of the same Patient ID carried another spelling -- which is what
  the Study Root model's study-level patient keys mean (PS3.4 C.6.2.1.2). A Study Instance UID
  arriving under a second patient identity is a conflict the archive rejects by default, or
  keeps as a second study row when told to (``study_conflict='accept'``).
* ``series`` (keyed by Series Instance UID within its study row) and ``instance`` (SOP Instance
  UID, unique), as before, with the checksum and store time of each file for the start-up
  check after a crash (formerly a separate ``integrity`` table).
* ``other``: objects outside the patient hierarchy (no Study Instance UID: Hanging Protocols,
  Color Palettes...), with the keys their own Q/R models match on.

Matching columns sit next to the values they match: ``*_fold`` (case-folded person names),
``*_fuzzy`` (case- and accent-folded, for fuzzy semantic matching of person names), ``*_norm``
(dates as YYYYMMDD whatever the stored form, e.g. ACR-NEMA's ``1997.04.24``; times as
HHMMSS.ffffff), ``study_datetime`` (date and time together, for combined date-time matching).
The stored value itself is returned as it is.

``meta`` holds ``schema`` (the version). :func:`prepare` creates a new index or upgrades an
old one in one transaction: version 1 (patients by Patient ID alone, one study row per Study
Instance UID, ``integrity`` apart, no matching columns for dates) is rebuilt row by row into
version 2 from its own columns. Per-study patient attributes a version 1 index did not keep
are taken from the patient row (the best it knows); the start-up walk after the upgrade is not
needed.

Indexes can change within a schema version: :func:`ensure_indexes` runs at every open (one
catalogue read when nothing is to do) and creates the indexes of :data:`DDL` an index lacks,
drops :data:`OBSOLETE_INDEXES`, and on PostgreSQL raises the planner's statistics targets of
:data:`PG_STATISTICS` -- so an index made by an earlier release gets what the queries rely on
(measured at 1,000,000 instances by ``bench/scale.py``; ``tests/archive/test_scale_indexes.py``
checks the plans) without an upgrade step.

The DDL is written for SQLite; :meth:`dicomnet.archive.backend.Backend.ddl` translates each
statement for PostgreSQL (types, identity keys, byte-order text collation).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dicomnet.archive.backend import Backend, Connection

__all__ = ["OBSOLETE_INDEXES", "PG_STATISTICS", "SCHEMA_VERSION", "ensure_indexes", "prepare"]

SCHEMA_VERSION = 2

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patient (
    pk INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL,
    issuer TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    patient_name_fold TEXT NOT NULL DEFAULT '',
    patient_name_fuzzy TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    birth_date_norm TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT '',
    UNIQUE (patient_id, issuer)
);
CREATE INDEX IF NOT EXISTS patient_name_ix ON patient(patient_name_fold);
CREATE TABLE IF NOT EXISTS study (
    pk INTEGER PRIMARY KEY,
    patient_fk INTEGER NOT NULL REFERENCES patient(pk),
    study_uid TEXT NOT NULL,
    patient_id TEXT NOT NULL DEFAULT '',
    issuer TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    patient_name_fold TEXT NOT NULL DEFAULT '',
    patient_name_fuzzy TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    birth_date_norm TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT '',
    study_date TEXT NOT NULL DEFAULT '',
    study_date_norm TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    study_time_norm TEXT NOT NULL DEFAULT '',
    study_datetime TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT '',
    study_id TEXT NOT NULL DEFAULT '',
    study_description TEXT NOT NULL DEFAULT '',
    referring_physician TEXT NOT NULL DEFAULT '',
    referring_physician_fold TEXT NOT NULL DEFAULT '',
    referring_physician_fuzzy TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT '',
    UNIQUE (study_uid, patient_fk)
);
CREATE INDEX IF NOT EXISTS study_patient_ix ON study(patient_fk);
CREATE INDEX IF NOT EXISTS study_date_ix ON study(study_date_norm);
CREATE INDEX IF NOT EXISTS study_accession_ix ON study(accession_number);
CREATE INDEX IF NOT EXISTS study_pid_ix ON study(patient_id);
CREATE INDEX IF NOT EXISTS study_pname_ix ON study(patient_name_fold);
CREATE TABLE IF NOT EXISTS series (
    pk INTEGER PRIMARY KEY,
    study_fk INTEGER NOT NULL REFERENCES study(pk),
    series_uid TEXT NOT NULL,
    modality TEXT NOT NULL DEFAULT '',
    series_number INTEGER,
    series_description TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT '',
    UNIQUE (series_uid, study_fk)
);
CREATE INDEX IF NOT EXISTS series_study_modality_ix ON series(study_fk, modality);
CREATE INDEX IF NOT EXISTS series_modality_ix ON series(modality);
CREATE TABLE IF NOT EXISTS instance (
    pk INTEGER PRIMARY KEY,
    series_fk INTEGER NOT NULL REFERENCES series(pk),
    sop_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT NOT NULL DEFAULT '',
    instance_number INTEGER,
    path TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    charset TEXT NOT NULL DEFAULT '',
    checksum TEXT,
    stored_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS instance_series_ix ON instance(series_fk);
CREATE INDEX IF NOT EXISTS instance_class_ix ON instance(sop_class_uid);
CREATE TABLE IF NOT EXISTS other (
    pk INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    creator TEXT NOT NULL DEFAULT '',
    creator_fold TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL DEFAULT '',
    created_norm TEXT NOT NULL DEFAULT '',
    level TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    charset TEXT NOT NULL DEFAULT '',
    checksum TEXT,
    stored_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS other_class_ix ON other(sop_class_uid);
"""

#: Indexes of earlier releases that a newer one makes redundant: dropped when found.
#: ``series_study_ix`` (study_fk) is the prefix of ``series_study_modality_ix``.
OBSOLETE_INDEXES = ("series_study_ix",)
#: PostgreSQL only: (table, column, statistics target) where the default (100 histogram
#: buckets) misleads the planner. Ten years of study dates in 100 buckets of five weeks each
#: overestimate a one-week range about three times; past the 256 rows of a page the planner
#: then reads the whole study table in primary key order instead of the date index.
PG_STATISTICS = (("study", "study_date_norm", 1000),)

_INDEX_RE = re.compile(r"CREATE INDEX IF NOT EXISTS (\w+) ON")

Normalizers = dict[str, Callable[..., str]]


def version(backend: Backend) -> int:
    """The schema version of an index: 0 (empty), 1 (no ``meta``) or what ``meta`` says."""
    tables = backend.tables()
    if "meta" in tables:
        rows = backend.fetch("SELECT value FROM meta WHERE key = 'schema'")
        if rows:
            return int(rows[0][0])
    return 1 if "instance" in tables else 0


def prepare(backend: Backend, normalize: Normalizers) -> int:
    """Create the schema, or upgrade an older one in place (one transaction); returns the
    version found. ``normalize``: the matching-column functions (``pn_fold``, ``pn_fuzzy``,
    ``date``, ``time``, ``datetime``) of :mod:`dicomnet.archive.matching`. Processes starting
    on one empty database create it once (:meth:`~dicomnet.archive.backend.Backend.schema_lock`)."""
    found = version(backend)
    if found == SCHEMA_VERSION:
        ensure_indexes(backend)
        return found
    if found < SCHEMA_VERSION:
        with backend.transaction() as conn:
            backend.schema_lock(conn)
            found = version(backend)  # another process may have created it meanwhile
            if found == 1:
                _upgrade_from_1(conn, normalize, has_integrity="integrity" in backend.tables())
            elif found == 0:
                _create(backend, conn)
            if found < SCHEMA_VERSION:
                conn.execute("INSERT INTO meta VALUES ('schema', ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = excluded.value", (str(SCHEMA_VERSION),))  # fmt: skip
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"the index has schema version {found}, newer than this dicomnet ({SCHEMA_VERSION})"
        )
    ensure_indexes(backend)
    return found


def ensure_indexes(backend: Backend) -> list[str]:
    """Bring the indexes of a current-version schema up to :data:`DDL`: create those it lacks
    (an index made by an earlier release of the same schema version), drop
    :data:`OBSOLETE_INDEXES`, and on PostgreSQL raise the statistics targets of
    :data:`PG_STATISTICS` (then ``ANALYZE`` those tables). Nothing to do costs one catalogue
    read (or three on PostgreSQL); the work is one transaction under the schema lock, idempotent
    (another process may have done it meanwhile). Returns what was done, for the log."""
    have = backend.indexes()
    missing = [(name, sql) for name, sql in _index_statements() if name not in have]
    obsolete = [name for name in OBSOLETE_INDEXES if name in have]
    low = [t for t in PG_STATISTICS
           if backend.name == "postgresql" and _stat_target(backend, t) < t[2]]  # fmt: skip
    if not (missing or obsolete or low):
        return []
    with backend.transaction() as conn:
        backend.schema_lock(conn)
        for _, sql in missing:
            conn.execute(backend.ddl(sql))
        for name in obsolete:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        for table, column, target in low:
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS {target}")
        for table in sorted({t[0] for t in low}):
            conn.execute(f"ANALYZE {table}")
    return ([f"created {name}" for name, _ in missing] + [f"dropped {name}" for name in obsolete]
            + [f"statistics {t}.{c} {n}" for t, c, n in low])  # fmt: skip


def _index_statements() -> list[tuple[str, str]]:
    out = []
    for statement in DDL.split(";"):
        m = _INDEX_RE.search(statement)
        if m is not None:
            out.append((m.group(1), statement.strip()))
    return out


def _stat_target(backend: Backend, entry: tuple[str, str, int]) -> int:
    """The statistics target of a column (-1 or none: the default)."""
    rows = backend.fetch("SELECT attstattarget FROM pg_attribute "
                         "WHERE attrelid = CAST(? AS regclass) AND attname = ?", entry[:2])  # fmt: skip
    return -1 if not rows or rows[0][0] is None else int(rows[0][0])


def _create(backend: Backend | None, conn: Connection) -> None:
    for statement in DDL.strip().split(";"):
        if statement.strip():
            conn.execute(statement if backend is None else backend.ddl(statement))


def _upgrade_from_1(conn: Connection, n: Normalizers, *, has_integrity: bool) -> None:
    """Version 1 -> 2 (SQLite only: no release wrote version 1 elsewhere): the old tables are
    renamed, the new ones created, and every row copied with the new columns computed
    (patients keep their Patient ID with an empty issuer)."""
    for table in ("patient", "study", "series", "instance"):
        conn.execute(f"ALTER TABLE {table} RENAME TO v1_{table}")
    for index in [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchall()]:  # fmt: skip
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    _create(None, conn)
    pn_fold, pn_fuzzy, date, time_, datetime_ = (
        n["pn_fold"], n["pn_fuzzy"], n["date"], n["time"], n["datetime"])
    for pk, pid, name, birth, sex, cs in conn.execute(
            "SELECT pk, patient_id, patient_name, birth_date, sex, charset FROM v1_patient"
    ).fetchall():  # fmt: skip
        conn.execute(
            "INSERT INTO patient (pk, patient_id, issuer, patient_name, patient_name_fold, "
            "patient_name_fuzzy, birth_date, birth_date_norm, sex, charset) "
            "VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, ?)",
            (pk, pid, name, pn_fold(name), pn_fuzzy(name), birth, date(birth), sex, cs),
        )
    rows = conn.execute(
        "SELECT s.pk, s.patient_fk, s.study_uid, s.study_date, s.study_time, "
        "s.accession_number, s.study_id, s.study_description, s.referring_physician, s.charset, "
        "p.patient_id, p.patient_name, p.birth_date, p.sex "
        "FROM v1_study s JOIN v1_patient p ON s.patient_fk = p.pk"
    ).fetchall()
    for (pk, pfk, uid, sdate, stime, acc, sid, desc, ref, cs, pid, name, birth, sex) in rows:
        conn.execute(
            "INSERT INTO study (pk, patient_fk, study_uid, patient_id, issuer, patient_name, "
            "patient_name_fold, patient_name_fuzzy, birth_date, birth_date_norm, sex, study_date, "
            "study_date_norm, study_time, study_time_norm, study_datetime, accession_number, "
            "study_id, study_description, referring_physician, referring_physician_fold, "
            "referring_physician_fuzzy, charset) "
            "VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (pk, pfk, uid, pid, name, pn_fold(name), pn_fuzzy(name), birth, date(birth), sex,
             sdate, date(sdate), stime, time_(stime), datetime_(date(sdate), time_(stime)), acc,
             sid, desc, ref, pn_fold(ref), pn_fuzzy(ref), cs),
        )  # fmt: skip
    conn.execute(
        "INSERT INTO series (pk, study_fk, series_uid, modality, series_number, "
        "series_description, charset) SELECT pk, study_fk, series_uid, modality, "
        "series_number, series_description, charset FROM v1_series"
    )
    conn.execute(
        "INSERT INTO instance (pk, series_fk, sop_uid, sop_class_uid, instance_number, path, "
        "transfer_syntax, size, charset, checksum, stored_at) "
        "SELECT i.pk, i.series_fk, i.sop_uid, i.sop_class_uid, i.instance_number, i.path, "
        "i.transfer_syntax, i.size, i.charset, "
        + ("g.checksum, COALESCE(g.stored_at, 0) FROM v1_instance i LEFT JOIN integrity g "
           "ON g.sop_uid = i.sop_uid" if has_integrity else "NULL, 0 FROM v1_instance i")
    )  # fmt: skip
    for table in ("instance", "series", "study", "patient"):
        conn.execute(f"DROP TABLE v1_{table}")
    if has_integrity:
        conn.execute("DROP TABLE integrity")
