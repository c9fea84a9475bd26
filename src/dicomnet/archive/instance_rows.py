"""How one instance's rows are written into the index (see :mod:`dicomnet.archive.index`).

Theory of operation
-------------------
A patient object is four rows, parent to child: the patient identity (Patient ID, Issuer of
Patient ID), the study of that identity (with the patient attributes it arrived with), the
series, the instance (PS3.3 C.7.1-C.7.3, PS3.4 C.6.1). Two ways to write them, by backend:

* :func:`write_sequential` (SQLite, one writer holding the whole database): statement by
  statement in-process; with ``compare`` the parent rows are first read and rewritten only when
  the instance carries other values -- most instances repeat their patient, study and series,
  and an upsert rewrites the row and every index on it even when nothing changed.
* :class:`PipelinedRow` (PostgreSQL): one statement per instance, sent without waiting for
  its result (psycopg's pipeline mode, one round trip for a whole batch): the reads of the
  instance's earlier row and of the study's owners and the four upserts are the parts of one
  WITH, each upsert's RETURNING key handed to its child, so no key is read back and sent
  again (and the per-statement cost of the driver is paid once, not six times). On PostgreSQL the upserts also take the parent rows' locks, which keeps a
  concurrent pruning (another node removing the patient's last study) from deleting a parent
  under a new child -- the reason the read-and-compare path is SQLite's only.

Both end the same: a Study Instance UID already stored under another patient identity is a
conflict (:func:`conflict`) unless the index accepts it, and an instance that moved to another
series leaves its old parents pruned when they are empty (:func:`prune_series`). Objects
outside the patient hierarchy are one row in ``other`` (:func:`write_other`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dicomnet.archive import matching
from dicomnet.archive.models import QueryError, StudyConflictError
from dicomnet.dimse.status import Status

if TYPE_CHECKING:
    from dicomnet.archive.backend import Connection
    from dicomnet.archive.fields import InstanceFields

__all__ = [
    "PipelinedRow",
    "conflict",
    "prune_series",
    "write_other",
    "write_sequential",
]


def write_sequential(conn: Connection, f: InstanceFields, path: str, ts: str, size: int,
                     checksum: str | None, now: float, *, study_conflict: str,
                     compare: bool) -> str | None:  # fmt: skip
    """Write one patient object's rows statement by statement (SQLite: in-process, no round
    trips); ``compare``: read the parent rows and rewrite them only when they differ (only
    where one writer holds the database). Returns the path an earlier row of the instance
    named, or None."""
    if not f.sop_instance_uid or not f.series_instance_uid:
        raise QueryError("instance lacks SOP Instance / Series Instance UID",
                         Status.PROCESSING_FAILURE)
    old = conn.execute("SELECT series_fk, path FROM instance WHERE sop_uid = ?",
                       (f.sop_instance_uid,)).fetchone()  # fmt: skip
    cs = f.specific_character_set
    name_fold, name_fuzzy = matching.fold_pn(f.patient_name), matching.fuzzy_pn(f.patient_name)
    birth_norm = matching.normalize_date(f.patient_birth_date)
    patient_values = (f.patient_name, name_fold, name_fuzzy, f.patient_birth_date, birth_norm,
                      f.patient_sex, cs)  # fmt: skip
    patient_pk = None
    if compare:
        # Most instances repeat their patient, study and series as the row already holds
        # them: then the row is read, not rewritten with every index on it. Only where one
        # writer holds the database (SQLite): on PostgreSQL the upsert's row lock is what
        # keeps another node's pruning from deleting the patient under a new study.
        row = conn.execute(_PATIENT_ROW, (f.patient_id, f.issuer_of_patient_id)).fetchone()
        if row is not None and tuple(row[1:]) == patient_values:
            patient_pk = row[0]
    if patient_pk is None:
        patient_pk = _upsert_patient(conn, f.patient_id, f.issuer_of_patient_id, patient_values)
    studies = conn.execute(_STUDY_ROWS, (f.study_instance_uid,)).fetchall()
    if studies and patient_pk not in {r[1] for r in studies} and study_conflict == "reject":
        raise conflict(f, (studies[0][2], studies[0][3]))
    date_norm = matching.normalize_date(f.study_date)
    time_norm = matching.normalize_time(f.study_time)
    study_values = (
        f.patient_id, f.issuer_of_patient_id, f.patient_name, name_fold, name_fuzzy,
        f.patient_birth_date, birth_norm, f.patient_sex, f.study_date, date_norm,
        f.study_time, time_norm, matching.combine_datetime(date_norm, time_norm),
        f.timezone_offset, f.accession_number, f.study_id, f.study_description,
        f.referring_physician_name, matching.fold_pn(f.referring_physician_name),
        matching.fuzzy_pn(f.referring_physician_name), cs,
    )  # fmt: skip
    study_pk = None
    if compare:
        for row in studies:
            if row[1] == patient_pk and tuple(row[2:]) == study_values:
                study_pk = row[0]
    if study_pk is None:
        study_pk = _upsert_study(conn, patient_pk, f.study_instance_uid, study_values)
    series_values = (f.modality, _int_or_none(f.series_number), f.series_description, cs)
    series_pk = None
    if compare:
        row = conn.execute(_SERIES_ROW, (f.series_instance_uid, study_pk)).fetchone()
        if row is not None and tuple(row[1:]) == series_values:
            series_pk = row[0]
    if series_pk is None:
        series_pk = _upsert_series(conn, study_pk, f.series_instance_uid, series_values)
    conn.execute(
        _UPSERT_INSTANCE_BY_KEY,
        (series_pk, f.sop_instance_uid, f.sop_class_uid, _int_or_none(f.instance_number),
         path, ts, size, cs, checksum, now),
    )  # fmt: skip
    if old is not None and old[0] != series_pk:
        prune_series(conn, old[0])  # entities left without children by a move go
    return None if old is None else str(old[1])


def conflict(f: InstanceFields, stored: tuple[str, str]) -> StudyConflictError:
    """The error for ``f`` whose study is stored for the identity ``stored`` (PS3.3 C.7.2)."""
    def who(pid: str, issuer: str) -> str:
        return f"{pid!r}" + (f" (issuer {issuer!r})" if issuer else "")

    return StudyConflictError(
        f"study {f.study_instance_uid} is stored for patient {who(*stored)}, not "
        f"{who(f.patient_id, f.issuer_of_patient_id)}"
    )


def write_other(conn: Connection, f: InstanceFields, path: str, ts: str, size: int,
                  checksum: str | None, now: float) -> str | None:  # fmt: skip
    """A non-patient object, keyed by its own attributes (``other`` table)."""
    if not f.sop_instance_uid:
        raise QueryError("instance lacks a SOP Instance UID", Status.PROCESSING_FAILURE)
    old = conn.execute("SELECT path FROM other WHERE sop_uid = ?",
                       (f.sop_instance_uid,)).fetchone()  # fmt: skip
    created_norm = _datetime_norm(f.created)
    conn.execute(
        "INSERT INTO other (sop_uid, sop_class_uid, label, description, creator, creator_fold, "
        "created, created_norm, level, path, transfer_syntax, size, charset, checksum, "
        "stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(sop_uid) DO UPDATE SET sop_class_uid = excluded.sop_class_uid, "
        "label = excluded.label, description = excluded.description, "
        "creator = excluded.creator, creator_fold = excluded.creator_fold, "
        "created = excluded.created, created_norm = excluded.created_norm, "
        "level = excluded.level, path = excluded.path, "
        "transfer_syntax = excluded.transfer_syntax, size = excluded.size, "
        "charset = excluded.charset, checksum = excluded.checksum, stored_at = excluded.stored_at",
        (f.sop_instance_uid, f.sop_class_uid, f.label, f.description, f.creator,
         matching.fold_pn(f.creator), f.created, created_norm, f.level, path, ts, size,
         f.specific_character_set, checksum, now),
    )  # fmt: skip
    return None if old is None else str(old[0])


def _datetime_norm(value: str) -> str:
    v = value.strip()
    if len(v) >= 8 and v[:8].isdigit():
        date = matching.normalize_date(v[:8])
        return matching.combine_datetime(date, matching.normalize_time(v[8:14]) if v[8:] else "")
    return ""


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class PipelinedRow:
    """One instance's index rows written by one statement, without waiting for its result
    (PostgreSQL's pipeline mode), so a whole batch goes out at once: the four upserts are
    parts of one WITH, each parent's key handed to the child by its RETURNING. The result read
    afterwards (:meth:`finish`): the patient row's key, the series row's key, the instance's
    earlier row and the owners of the study before this write (the conflict check, PS3.3
    C.7.2). A conflict raised there rolls the whole transaction back."""

    def __init__(self, conn: Connection, f: InstanceFields, path: str, ts: str, size: int,
                 checksum: str | None, now: float) -> None:  # fmt: skip
        if not f.sop_instance_uid or not f.series_instance_uid:
            raise QueryError("instance lacks SOP Instance / Series Instance UID",
                             Status.PROCESSING_FAILURE)  # fmt: skip
        self.fields = f
        who = (f.patient_id, f.issuer_of_patient_id)
        cs = f.specific_character_set
        name_fold, name_fuzzy = matching.fold_pn(f.patient_name), matching.fuzzy_pn(f.patient_name)
        birth_norm = matching.normalize_date(f.patient_birth_date)
        date_norm = matching.normalize_date(f.study_date)
        time_norm = matching.normalize_time(f.study_time)
        # one statement: the reads see the index as it was before it (PostgreSQL runs every
        # part of a WITH on the statement's snapshot), the upserts hand their keys down
        self.result = conn.execute(
            _ROW_STATEMENT,
            (f.sop_instance_uid, f.study_instance_uid,
             *who, f.patient_name, name_fold, name_fuzzy, f.patient_birth_date, birth_norm,
             f.patient_sex, cs,
             f.study_instance_uid, *who, f.patient_name, name_fold, name_fuzzy,
             f.patient_birth_date, birth_norm, f.patient_sex, f.study_date, date_norm,
             f.study_time, time_norm, matching.combine_datetime(date_norm, time_norm),
             f.timezone_offset, f.accession_number, f.study_id, f.study_description,
             f.referring_physician_name, matching.fold_pn(f.referring_physician_name),
             matching.fuzzy_pn(f.referring_physician_name), cs,
             f.series_instance_uid, f.modality, _int_or_none(f.series_number),
             f.series_description, cs,
             f.sop_instance_uid, f.sop_class_uid, _int_or_none(f.instance_number), path, ts,
             size, cs, checksum, now),
        )  # fmt: skip

    def finish(self, conn: Connection, study_conflict: str) -> str | None:
        """Read the results; the path this instance's earlier row named, or None."""
        patient_pk, series_pk, old_series, old_path, owners, owner = self.result.fetchone()
        if owners and patient_pk not in owners and study_conflict == "reject":
            raise conflict(self.fields, (owner[0], owner[1]))
        if old_series is not None and old_series != series_pk:
            prune_series(conn, old_series)  # entities left without children by a move go
        return None if old_path is None else str(old_path)


# Parent rows as write_sequential compares them with what an instance carries: the
# key columns, then the value columns in the order of the upserts below.
_PATIENT_ROW = (
    "SELECT pk, patient_name, patient_name_fold, patient_name_fuzzy, birth_date, birth_date_norm, "
    "sex, charset FROM patient WHERE patient_id = ? AND issuer = ?"
)
_STUDY_ROWS = (
    "SELECT pk, patient_fk, patient_id, issuer, patient_name, patient_name_fold, "
    "patient_name_fuzzy, birth_date, birth_date_norm, sex, study_date, study_date_norm, "
    "study_time, study_time_norm, study_datetime, timezone, accession_number, study_id, "
    "study_description, referring_physician, referring_physician_fold, "
    "referring_physician_fuzzy, charset FROM study WHERE study_uid = ?"
)
_SERIES_ROW = (
    "SELECT pk, modality, series_number, series_description, charset FROM series "
    "WHERE series_uid = ? AND study_fk = ?"
)


_UPSERT_PATIENT = (
    "INSERT INTO patient (patient_id, issuer, patient_name, patient_name_fold, "
    "patient_name_fuzzy, birth_date, birth_date_norm, sex, charset) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(patient_id, issuer) DO UPDATE SET "
    "patient_name = excluded.patient_name, patient_name_fold = excluded.patient_name_fold, "
    "patient_name_fuzzy = excluded.patient_name_fuzzy, birth_date = excluded.birth_date, "
    "birth_date_norm = excluded.birth_date_norm, sex = excluded.sex, "
    "charset = excluded.charset RETURNING pk"
)
# the parent's key: a parameter (read back before), or a subquery (PipelinedRow)
_UPSERT_STUDY = (
    "INSERT INTO study (patient_fk, study_uid, patient_id, issuer, patient_name, "
    "patient_name_fold, patient_name_fuzzy, birth_date, birth_date_norm, sex, study_date, "
    "study_date_norm, study_time, study_time_norm, study_datetime, timezone, "
    "accession_number, study_id, study_description, referring_physician, "
    "referring_physician_fold, referring_physician_fuzzy, charset) "
    "VALUES ({patient_fk}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(study_uid, patient_fk) DO UPDATE SET patient_id = excluded.patient_id, "
    "issuer = excluded.issuer, patient_name = excluded.patient_name, "
    "patient_name_fold = excluded.patient_name_fold, "
    "patient_name_fuzzy = excluded.patient_name_fuzzy, birth_date = excluded.birth_date, "
    "birth_date_norm = excluded.birth_date_norm, sex = excluded.sex, "
    "study_date = excluded.study_date, study_date_norm = excluded.study_date_norm, "
    "study_time = excluded.study_time, study_time_norm = excluded.study_time_norm, "
    "study_datetime = excluded.study_datetime, timezone = excluded.timezone, "
    "accession_number = excluded.accession_number, study_id = excluded.study_id, "
    "study_description = excluded.study_description, "
    "referring_physician = excluded.referring_physician, "
    "referring_physician_fold = excluded.referring_physician_fold, "
    "referring_physician_fuzzy = excluded.referring_physician_fuzzy, "
    "charset = excluded.charset RETURNING pk"
)
_UPSERT_SERIES = (
    "INSERT INTO series (study_fk, series_uid, modality, series_number, "
    "series_description, charset) VALUES ({study_fk}, ?, ?, ?, ?, ?) "
    "ON CONFLICT(series_uid, study_fk) DO UPDATE SET modality = excluded.modality, "
    "series_number = excluded.series_number, "
    "series_description = excluded.series_description, charset = excluded.charset "
    "RETURNING pk"
)
_UPSERT_INSTANCE = (
    "INSERT INTO instance (series_fk, sop_uid, sop_class_uid, instance_number, path, "
    "transfer_syntax, size, charset, checksum, stored_at) "
    "VALUES ({series_fk}, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sop_uid) DO UPDATE SET "
    "series_fk = excluded.series_fk, sop_class_uid = excluded.sop_class_uid, "
    "instance_number = excluded.instance_number, path = excluded.path, "
    "transfer_syntax = excluded.transfer_syntax, size = excluded.size, "
    "charset = excluded.charset, checksum = excluded.checksum, "
    "stored_at = excluded.stored_at"
)
# PipelinedRow's statement. Parameters: sop_uid, study_uid (the reads), then each upsert's.
# Every part of a WITH sees the snapshot the statement started with and runs exactly once:
# ``old`` and ``owners`` read the index before the upserts, as separate statements sent
# first would; the upserts still take their rows' locks (a concurrent prune waits).
_ROW_STATEMENT = (
    "WITH old AS (SELECT series_fk, path FROM instance WHERE sop_uid = ?), "
    "owners AS (SELECT patient_fk, patient_id, issuer FROM study WHERE study_uid = ?), "
    f"p AS ({_UPSERT_PATIENT}), "
    f"st AS ({_UPSERT_STUDY.format(patient_fk='(SELECT pk FROM p)')}), "
    f"se AS ({_UPSERT_SERIES.format(study_fk='(SELECT pk FROM st)')}), "
    f"i AS ({_UPSERT_INSTANCE.format(series_fk='(SELECT pk FROM se)')}) "
    "SELECT (SELECT pk FROM p), (SELECT pk FROM se), (SELECT series_fk FROM old), "
    "(SELECT path FROM old), (SELECT array_agg(patient_fk) FROM owners), "
    "(SELECT ARRAY[patient_id, issuer] FROM owners LIMIT 1)"
)
_UPSERT_STUDY_BY_KEY = _UPSERT_STUDY.format(patient_fk="?")
_UPSERT_SERIES_BY_KEY = _UPSERT_SERIES.format(study_fk="?")
_UPSERT_INSTANCE_BY_KEY = _UPSERT_INSTANCE.format(series_fk="?")


def _upsert_patient(conn: Connection, patient_id: str | None, issuer: str | None,
                    values: tuple[object, ...]) -> int:  # fmt: skip
    return int(conn.execute(_UPSERT_PATIENT, (patient_id, issuer, *values)).fetchone()[0])


def _upsert_study(conn: Connection, patient_pk: int, study_uid: str | None,
                  values: tuple[object, ...]) -> int:  # fmt: skip
    row = conn.execute(_UPSERT_STUDY_BY_KEY, (patient_pk, study_uid, *values)).fetchone()
    return int(row[0])


def _upsert_series(conn: Connection, study_pk: int, series_uid: str,
                   values: tuple[object, ...]) -> int:  # fmt: skip
    row = conn.execute(_UPSERT_SERIES_BY_KEY, (study_pk, series_uid, *values)).fetchone()
    return int(row[0])


def prune_series(conn: Connection, series_pk: int) -> None:
    row = conn.execute(
        "DELETE FROM series WHERE pk = ? AND NOT EXISTS "
        "(SELECT 1 FROM instance WHERE series_fk = ?) RETURNING study_fk",
        (series_pk, series_pk),
    ).fetchone()
    if row is not None:
        _prune_study(conn, row[0])


def _prune_study(conn: Connection, study_pk: int) -> None:
    row = conn.execute(
        "DELETE FROM study WHERE pk = ? AND NOT EXISTS "
        "(SELECT 1 FROM series WHERE study_fk = ?) RETURNING patient_fk",
        (study_pk, study_pk),
    ).fetchone()
    if row is not None:
        _prune_patient(conn, row[0])


def _prune_patient(conn: Connection, patient_pk: int) -> None:
    conn.execute(
        "DELETE FROM patient WHERE pk = ? AND NOT EXISTS (SELECT 1 FROM study WHERE patient_fk = ?)",
        (patient_pk, patient_pk),
    )
