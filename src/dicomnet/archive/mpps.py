"""Modality Performed Procedure Step SCP (PS3.4 Annex F.7): N-CREATE and N-SET of performed
procedure steps, kept durably in SQLite, queryable, optionally forwarded to other SCPs.

Theory of operation
-------------------
A modality reports the work it does as a *performed procedure step* (PS3.4 F.1): it creates
the step with N-CREATE when it starts (Performed Procedure Step Status "IN PROGRESS"), updates
it with N-SET while it works, and ends it with an N-SET to "COMPLETED" or "DISCONTINUED"
(PS3.4 Table F.1-4). A step in one of those two final states can no longer be changed.

:class:`MPPSStore` keeps the steps in a SQLite file of their own, normally
``<storage>/workflow.sqlite`` beside the archive's index (table ``mpps``: SOP Instance UID, status, the key identifiers, the
time it was created, last updated and ended, and every attribute as a DICOM JSON Model object,
PS3.18 F.2; tables ``mpps_study``/``mpps_series``: the Study Instance UIDs of the Scheduled Step
Attributes Sequence and the Series Instance UIDs of the Performed Series Sequence, which link a
step to the studies it belongs to). Each request is checked and written in one
``BEGIN IMMEDIATE`` transaction on a WAL database with ``synchronous=FULL``: the response is
sent only after the commit reached the disk, so a step that was acknowledged survives a power
loss, and two processes serving the same storage folder (``qrscp --workers``) cannot both
create one UID or both update one step.

The checks and the status each answers (the handlers of :func:`mpps_handlers` turn a
refusal into a status data set with Error Comment (0000,0902) and, where an attribute is at
fault, Offending Element (0000,0901); a refused request changes nothing):

================================================  =========================================
condition                                          status (where the standard says so)
================================================  =========================================
N-CREATE/N-SET of another SOP class                0118H No such SOP Class (PS3.7 C.5)
N-CREATE with a malformed SOP Instance UID         0117H Invalid object instance (PS3.7 C.5)
N-CREATE of a SOP Instance UID already known       0111H Duplicate SOP Instance (PS3.7 10.1.5)
N-CREATE without a type 1 attribute of Table       0120H Missing attribute (PS3.4 5.4.2.1)
F.7.2-1 (or an item without its type 1 attribute)
N-CREATE with such an attribute empty              0121H Missing attribute value (5.4.2.1)
N-CREATE with a status other than IN PROGRESS      0106H Invalid attribute value (F.7.2.1.3)
N-SET of an unknown SOP Instance                   0112H No such SOP Instance (PS3.7 10.1.3)
N-SET of a COMPLETED or DISCONTINUED step          0110H Processing failure, Error Comment
                                                   "Performed Procedure Step Object may no
                                                   longer be updated", Error ID A710H
                                                   (F.7.2.2.3, Table F.7.2-2)
N-SET of an attribute Table F.7.2-1 marks "Not     0105H No such attribute (5.4.2.1 "Not
allowed" for N-SET (patient, scheduling, start     Allowed"; the SCP does not take it, as
and station attributes)                            PS3.4 H.2.4 answers an unsupported one)
N-SET of an empty status                           0121H Missing attribute value (3/1: zero
                                                   length not permitted, 5.4.2.1)
N-SET of a status that is not one of the three     0106H Invalid attribute value (PS3.3
enumerated values                                  C.4.14 enumerated values)
SOP Class/Instance UID in the data set that        0106H Invalid attribute value
differ from the request's
an undecodable data set, a database failure        0110H Processing failure (PS3.7 C.4)
================================================  =========================================

``strict=True`` adds two checks the standard puts on the SCU: every type 2 attribute of Table
F.7.2-1 present in the N-CREATE (0120H), and the Final State requirements met when an N-SET
ends the step (PS3.4 Table F.7.2-1 "Final State" column and its Note 2: end date and time, and a
Performed Series Sequence with at least one item whose Series Instance UID and Protocol Name
are set; 0120H or 0121H). Off by default: many modalities in the field send less, and refusing
their final N-SET would leave the step open forever.

N-SET replaces the value of each top-level attribute it carries (PS3.7 10.1.3), a sequence's
value being all of its items. Text is kept as Unicode: a step whose values are
not all ASCII is stored with Specific Character Set "ISO_IR 192", which is how the SCP combines
the character sets of N-CREATE and N-SET (PS3.4 F.7.2.2.3 allows the conversion).

Forwarding (``forward=[(ae_title, host, port), ...]``): each accepted N-CREATE/N-SET is also
written, in the same transaction, to an outbox table (one row per destination). A single
background thread, woken after each commit (never polling), sends the outbox to each destination
in order over one association as an MPPS SCU. A destination that cannot be reached or does not
answer keeps its rows, which are tried again on the next event (the next accepted request, the
next start, or :meth:`MPPSStore.flush_forwards`). A destination that answers a failure status
gets the row marked failed (``failed_status``; kept for a person to look at) and the next row is
sent: a refusal does not become a success by repeating it. A duplicate N-CREATE (0111H) counts as
delivered: it is the answer to our own earlier attempt whose response was lost. Rows are sent
at least once; a file lock beside the database makes processes sharing it take turns.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.dimse.status import Category, Status, category
from dicomnet.uid import is_valid_uid

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement

    from dicomnet.events import Event, EventType

__all__ = [
    "COMPLETED",
    "DISCONTINUED",
    "ERROR_ID_NO_LONGER_UPDATABLE",
    "ERROR_NO_LONGER_UPDATABLE",
    "FINAL_STATES",
    "IN_PROGRESS",
    "MPPS_SOP_CLASS",
    "WORKFLOW_DB",
    "MPPSCreateHandler",
    "MPPSError",
    "MPPSSetHandler",
    "MPPSStore",
    "StepRecord",
    "mpps_handlers",
]

LOG = logging.getLogger("dicomnet.archive.mpps")

#: Modality Performed Procedure Step SOP Class (PS3.4 F.7.1).
MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"
#: File name of the workflow database inside the archive's storage folder.
WORKFLOW_DB = "workflow.sqlite"

# Performed Procedure Step Status (0040,0252), PS3.3 C.4.14; states and transitions PS3.4 F.1.
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
FINAL_STATES = frozenset({COMPLETED, DISCONTINUED})
_STATES = frozenset({IN_PROGRESS, COMPLETED, DISCONTINUED})

#: PS3.4 F.7.2.2.4, Table F.7.2-2: the N-SET of a step that is no longer IN PROGRESS.
ERROR_NO_LONGER_UPDATABLE = "Performed Procedure Step Object may no longer be updated"
ERROR_ID_NO_LONGER_UPDATABLE = 0xA710

# Tags (PS3.6), named once.
_SPECIFIC_CHARACTER_SET = 0x00080005
_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018
_STATUS = 0x00400252
_SSAS = 0x00400270  # Scheduled Step Attributes Sequence
_STUDY_INSTANCE_UID = 0x0020000D
_PERFORMED_SERIES = 0x00400340  # Performed Series Sequence
_SERIES_INSTANCE_UID = 0x0020000E
_PROTOCOL_NAME = 0x00181030
_END_DATE = 0x00400250
_END_TIME = 0x00400251

# PS3.4 Table F.7.2-1, N-CREATE column "1/1": the SCU shall send them, not empty.
_CREATE_TYPE1 = (
    0x00400270,  # Scheduled Step Attributes Sequence
    0x00400253,  # Performed Procedure Step ID
    0x00400241,  # Performed Station AE Title
    0x00400244,  # Performed Procedure Step Start Date
    0x00400245,  # Performed Procedure Step Start Time
    0x00400252,  # Performed Procedure Step Status
    0x00080060,  # Modality
)
# Table F.7.2-1, N-CREATE column "2/2" (checked with strict=True): present, may be empty.
_CREATE_TYPE2 = (
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x00100030,  # Patient's Birth Date
    0x00100040,  # Patient's Sex
    0x00081120,  # Referenced Patient Sequence
    0x00400242,  # Performed Station Name
    0x00400243,  # Performed Location
    0x00400254,  # Performed Procedure Step Description
    0x00400255,  # Performed Procedure Type Description
    0x00081032,  # Procedure Code Sequence
    0x00400250,  # Performed Procedure Step End Date
    0x00400251,  # Performed Procedure Step End Time
    0x00200010,  # Study ID
    0x00400260,  # Performed Protocol Code Sequence
    0x00400340,  # Performed Series Sequence
)
# Table F.7.2-1, items of the Scheduled Step Attributes Sequence, "2/2" (strict=True).
_SSAS_TYPE2 = (
    0x00080050,  # Accession Number
    0x00081110,  # Referenced Study Sequence
    0x00401001,  # Requested Procedure ID
    0x00321060,  # Requested Procedure Description
    0x00400009,  # Scheduled Procedure Step ID
    0x00400007,  # Scheduled Procedure Step Description
    0x00400008,  # Scheduled Protocol Code Sequence
)
# Table F.7.2-1, N-SET column "Not allowed": fixed once the step is created.
_NOT_SETTABLE = frozenset({
    0x00400270,  # Scheduled Step Attributes Sequence
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x00100021,  # Issuer of Patient ID
    0x00100024,  # Issuer of Patient ID Qualifiers Sequence
    0x00101002,  # Other Patient IDs Sequence
    0x00100030,  # Patient's Birth Date
    0x00100040,  # Patient's Sex
    0x00081120,  # Referenced Patient Sequence
    0x00400253,  # Performed Procedure Step ID
    0x00400241,  # Performed Station AE Title
    0x00400242,  # Performed Station Name
    0x00400243,  # Performed Location
    0x00400244,  # Performed Procedure Step Start Date
    0x00400245,  # Performed Procedure Step Start Time
    0x00080060,  # Modality
    0x00200010,  # Study ID
})  # fmt: skip

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mpps_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mpps (
    sop_instance_uid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    pps_id TEXT NOT NULL DEFAULT '',
    station_ae_title TEXT NOT NULL DEFAULT '',
    modality TEXT NOT NULL DEFAULT '',
    patient_id TEXT NOT NULL DEFAULT '',
    calling_ae_title TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ended_at REAL,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mpps_status_ix ON mpps(status);
CREATE TABLE IF NOT EXISTS mpps_study (
    study_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    PRIMARY KEY (study_uid, sop_instance_uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mpps_study_step_ix ON mpps_study(sop_instance_uid);
CREATE TABLE IF NOT EXISTS mpps_series (
    series_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    PRIMARY KEY (series_uid, sop_instance_uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mpps_series_step_ix ON mpps_series(sop_instance_uid);
CREATE TABLE IF NOT EXISTS mpps_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('create', 'set')),
    attributes TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    failed_status INTEGER
);
CREATE INDEX IF NOT EXISTS mpps_outbox_dest_ix ON mpps_outbox(destination, failed_status, id);
INSERT OR IGNORE INTO mpps_meta (key, value) VALUES ('schema', '1');
"""

_STEP_COLUMNS = (
    "m.sop_instance_uid, m.status, m.pps_id, m.station_ae_title, m.modality, m.patient_id, "
    "m.calling_ae_title, m.created_at, m.updated_at, m.ended_at, "
    "(SELECT group_concat(study_uid, '\\') FROM mpps_study s "
    " WHERE s.sop_instance_uid = m.sop_instance_uid), "
    "(SELECT group_concat(series_uid, '\\') FROM mpps_series r "
    " WHERE r.sop_instance_uid = m.sop_instance_uid)"
)


class MPPSError(Exception):
    """A refused N-CREATE/N-SET: the status to answer with (see the module docstring)."""

    def __init__(self, code: int, comment: str, offending: Sequence[int] = (),
                 error_id: int | None = None) -> None:  # fmt: skip
        super().__init__(comment)
        self.code = code
        self.comment = comment
        self.offending = tuple(offending)
        self.error_id = error_id

    def status(self) -> Dataset:
        """The status data set (PS3.7 Annex C): Status, Error Comment, Offending Element,
        Error ID as they apply."""
        ds = Dataset()
        ds.Status = self.code
        ds.ErrorComment = self.comment[:64]
        if self.offending:
            ds.OffendingElement = list(self.offending)
        if self.error_id is not None:
            ds.ErrorID = self.error_id
        return ds


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One stored step as :meth:`MPPSStore.find` lists it (times: seconds since the epoch)."""

    sop_instance_uid: str
    status: str
    performed_procedure_step_id: str
    station_ae_title: str
    modality: str
    patient_id: str
    calling_ae_title: str
    created: float
    updated: float
    ended: float | None
    study_uids: tuple[str, ...]
    series_uids: tuple[str, ...]


Destination = tuple[str, str, int]


class MPPSStore:
    """The performed procedure steps of one archive (see the module docstring).

    ``path``: the SQLite file, or a directory (then ``<path>/workflow.sqlite``). ``forward``:
    (AE title, host, port) of SCPs each accepted request is forwarded to, with ``ae_title`` as
    our calling AE title. ``strict``: also enforce the SCU's type 2 and Final State
    requirements. ``durable`` (default): ``synchronous=FULL``, a commit is on disk before the
    response; False trusts the page cache (survives a crash of the process, not of the host).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        forward: Iterable[Destination] = (),
        ae_title: str = "DICOMNET",
        strict: bool = False,
        durable: bool = True,
        timeout: float = 30.0,
    ) -> None:
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, WORKFLOW_DB)
        self.path = path
        self.strict = strict
        self.durable = durable
        self.ae_title = ae_title
        self.destinations: tuple[Destination, ...] = tuple(
            (str(aet).strip(), str(host), int(port)) for aet, host, port in forward
        )
        self._lock = threading.Lock()
        self._closed = False
        new = not os.path.exists(path)
        self._conn = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                     check_same_thread=False)  # fmt: skip
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        except BaseException:
            self._conn.close()
            raise
        if new and durable:
            _fsync_directory(os.path.dirname(os.path.abspath(path)))
        self._forwarder: _Forwarder | None = None
        if self.destinations:
            self._forwarder = _Forwarder(self)
            self._forwarder.start()
            self._forwarder.wake()  # rows left by an earlier run: the start is an event too

    # --- life cycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the forwarder (waiting for a transfer under way) and close the database."""
        if self._closed:
            return
        if self._forwarder is not None:
            self._forwarder.stop()
        with self._lock:
            self._closed = True
            self._conn.close()

    def __enter__(self) -> MPPSStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction (the write lock, across processes too)."""
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("MPPSStore is closed")
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def pragma(self, name: str) -> object:
        """SQLite's ``PRAGMA name`` on the store's connection (diagnostics: ``synchronous`` is
        2, FULL, for a durable store; ``journal_mode`` is "wal")."""
        if not name.replace("_", "").isalpha():
            raise ValueError(f"not a pragma name: {name!r}")
        rows = self._read(f"PRAGMA {name}")
        return rows[0][0] if rows else None

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("MPPSStore is closed")
            return self._conn.execute(sql, params).fetchall()

    # --- the two operations ------------------------------------------------------------------

    def create(self, sop_instance_uid: str | None, attributes: Dataset, *,
               calling_ae_title: str = "") -> Dataset:  # fmt: skip
        """N-CREATE (PS3.4 F.7.2.1.3): store a new step, IN PROGRESS. ``sop_instance_uid``
        None: one is generated (PS3.7 10.1.5.1.3). Returns the stored attributes (with SOP
        Class and SOP Instance UID); raises :class:`MPPSError` when refused."""
        if sop_instance_uid is not None and not is_valid_uid(sop_instance_uid):
            raise MPPSError(Status.INVALID_OBJECT_INSTANCE,
                            f"not a valid SOP Instance UID: {sop_instance_uid!r}")  # fmt: skip
        uid = sop_instance_uid or generate_uid(prefix=None)  # 2.25.<UUID> (PS3.5 B.2)
        _check_sop_common(attributes, uid)
        _check_create(attributes, strict=self.strict)
        received = _normalized(attributes)
        doc = dict(received)
        doc[_key(_SOP_CLASS_UID)] = {"vr": "UI", "Value": [MPPS_SOP_CLASS]}
        doc[_key(_SOP_INSTANCE_UID)] = {"vr": "UI", "Value": [uid]}
        stored = Dataset.from_json(doc)
        now = time.time()
        try:
            with self._transaction() as conn:
                try:
                    conn.execute(
                        "INSERT INTO mpps (sop_instance_uid, status, pps_id, station_ae_title, "
                        "modality, patient_id, calling_ae_title, created_at, updated_at, "
                        "attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (uid, IN_PROGRESS, _text(stored, 0x00400253), _text(stored, 0x00400241),
                         _text(stored, 0x00080060), _text(stored, 0x00100020),
                         calling_ae_title, now, now, _dumps(doc)),
                    )  # fmt: skip
                except sqlite3.IntegrityError:
                    raise MPPSError(Status.DUPLICATE_SOP_INSTANCE,
                                    f"SOP Instance {uid} already exists") from None  # fmt: skip
                conn.executemany(
                    "INSERT OR IGNORE INTO mpps_study (study_uid, sop_instance_uid) VALUES (?, ?)",
                    [(study, uid) for study in _item_uids(stored, _SSAS, _STUDY_INSTANCE_UID)],
                )
                self._link_series(conn, uid, stored)
                self._queue(conn, uid, "create", received, now)
        except sqlite3.Error as exc:
            LOG.error("MPPS N-CREATE %s not stored: %s", uid, exc)
            raise MPPSError(Status.PROCESSING_FAILURE, f"cannot store the step: {exc}") from exc
        LOG.info("MPPS %s created (%s)", uid, IN_PROGRESS)
        self._wake()
        return stored

    def update(self, sop_instance_uid: str, modification: Dataset) -> Dataset:
        """N-SET (PS3.4 F.7.2.2.3): change a step that is IN PROGRESS. Returns the modified
        attributes as stored; raises :class:`MPPSError` when refused."""
        now = time.time()
        try:
            with self._transaction() as conn:
                row = conn.execute("SELECT status, attributes FROM mpps WHERE sop_instance_uid = ?",
                                   (sop_instance_uid,)).fetchone()  # fmt: skip
                if row is None:
                    raise MPPSError(Status.NO_SUCH_SOP_INSTANCE,
                                    f"no step {sop_instance_uid}")  # fmt: skip
                current_status, current_json = row
                if current_status in FINAL_STATES:
                    # PS3.4 F.7.2.2.3: only an IN PROGRESS step accepts N-SET; Table F.7.2-2
                    raise MPPSError(Status.PROCESSING_FAILURE, ERROR_NO_LONGER_UPDATABLE,
                                    error_id=ERROR_ID_NO_LONGER_UPDATABLE)  # fmt: skip
                _check_sop_common(modification, sop_instance_uid)
                new_status = _check_set(modification)
                mod = _normalized(modification)
                merged = json.loads(current_json)
                merged.pop(_key(_SPECIFIC_CHARACTER_SET), None)
                merged.update(mod)
                _recharset(merged)
                stored = Dataset.from_json(merged)
                status = new_status or current_status
                if self.strict and status in FINAL_STATES:
                    _check_final_state(stored)
                conn.execute(
                    "UPDATE mpps SET status = ?, updated_at = ?, ended_at = ?, attributes = ? "
                    "WHERE sop_instance_uid = ?",
                    (status, now, now if status in FINAL_STATES else None, _dumps(merged),
                     sop_instance_uid),
                )  # fmt: skip
                if _key(_PERFORMED_SERIES) in mod:
                    conn.execute("DELETE FROM mpps_series WHERE sop_instance_uid = ?",
                                 (sop_instance_uid,))  # fmt: skip
                    self._link_series(conn, sop_instance_uid, stored)
                self._queue(conn, sop_instance_uid, "set", mod, now)
        except sqlite3.Error as exc:
            LOG.error("MPPS N-SET %s not stored: %s", sop_instance_uid, exc)
            raise MPPSError(Status.PROCESSING_FAILURE, f"cannot store the step: {exc}") from exc
        LOG.info("MPPS %s updated (%s)", sop_instance_uid, status)
        self._wake()
        reply = Dataset()
        for tag in (int(t, 16) for t in mod):
            if tag in stored:
                reply[tag] = stored[tag]
        return reply

    @staticmethod
    def _link_series(conn: sqlite3.Connection, uid: str, stored: Dataset) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO mpps_series (series_uid, sop_instance_uid) VALUES (?, ?)",
            [
                (series, uid)
                for series in _item_uids(stored, _PERFORMED_SERIES, _SERIES_INSTANCE_UID)
            ],
        )

    def _queue(self, conn: sqlite3.Connection, uid: str, operation: str,
               doc: dict[str, Any], now: float) -> None:  # fmt: skip
        if not self.destinations:
            return
        text = _dumps(doc)
        conn.executemany(
            "INSERT INTO mpps_outbox (destination, sop_instance_uid, operation, attributes, "
            "queued_at) VALUES (?, ?, ?, ?, ?)",
            [(_destination_key(d), uid, operation, text, now) for d in self.destinations],
        )

    def _wake(self) -> None:
        if self._forwarder is not None:
            self._forwarder.wake()

    # --- queries -----------------------------------------------------------------------------

    def get(self, sop_instance_uid: str) -> Dataset:
        """The stored attributes of a step; KeyError when there is none."""
        rows = self._read("SELECT attributes FROM mpps WHERE sop_instance_uid = ?",
                          (sop_instance_uid,))  # fmt: skip
        if not rows:
            raise KeyError(sop_instance_uid)
        return Dataset.from_json(rows[0][0])

    def record(self, sop_instance_uid: str) -> StepRecord | None:
        """The listing of one step, or None."""
        rows = self._read(f"SELECT {_STEP_COLUMNS} FROM mpps m WHERE m.sop_instance_uid = ?",
                          (sop_instance_uid,))  # fmt: skip
        return _record(rows[0]) if rows else None

    def find(
        self,
        *,
        status: str | None = None,
        study_uid: str | None = None,
        series_uid: str | None = None,
        modality: str | None = None,
        station_ae_title: str | None = None,
        patient_id: str | None = None,
    ) -> list[StepRecord]:
        """The steps matching every criterion given (exact values), oldest first."""
        where: list[str] = []
        params: list[object] = []
        for column, value in (("status", status), ("modality", modality),
                              ("station_ae_title", station_ae_title),
                              ("patient_id", patient_id)):  # fmt: skip
            if value is not None:
                where.append(f"m.{column} = ?")
                params.append(value)
        if study_uid is not None:
            where.append("EXISTS (SELECT 1 FROM mpps_study s WHERE s.study_uid = ? "
                         "AND s.sop_instance_uid = m.sop_instance_uid)")  # fmt: skip
            params.append(study_uid)
        if series_uid is not None:
            where.append("EXISTS (SELECT 1 FROM mpps_series r WHERE r.series_uid = ? "
                         "AND r.sop_instance_uid = m.sop_instance_uid)")  # fmt: skip
            params.append(series_uid)
        sql = f"SELECT {_STEP_COLUMNS} FROM mpps m"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY m.created_at, m.sop_instance_uid"
        return [_record(row) for row in self._read(sql, params)]

    def steps_for_study(self, study_uid: str) -> list[StepRecord]:
        """The steps whose Scheduled Step Attributes Sequence names ``study_uid``."""
        return self.find(study_uid=study_uid)

    # --- forwarding --------------------------------------------------------------------------

    def pending_forwards(self) -> list[tuple[str, str, str]]:
        """(destination, SOP Instance UID, operation) of the rows still to be sent, in order."""
        rows = self._read("SELECT destination, sop_instance_uid, operation FROM mpps_outbox "
                          "WHERE failed_status IS NULL ORDER BY id")  # fmt: skip
        return [(str(d), str(u), str(o)) for d, u, o in rows]

    def failed_forwards(self) -> list[tuple[str, str, str, int]]:
        """(destination, SOP Instance UID, operation, status) of rows a destination refused."""
        rows = self._read("SELECT destination, sop_instance_uid, operation, failed_status "
                          "FROM mpps_outbox WHERE failed_status IS NOT NULL ORDER BY id")  # fmt: skip
        return [(str(d), str(u), str(o), int(s)) for d, u, o, s in rows]

    def flush_forwards(self) -> int:
        """Send what is waiting now, in this thread (taking turns with the background one);
        the number of rows still waiting afterwards."""
        if self._forwarder is not None:
            self._forwarder.drain()
        return len(self.pending_forwards())

    def _outbox(self, destination: str) -> list[tuple[int, str, str, str]]:
        rows = self._read("SELECT id, sop_instance_uid, operation, attributes FROM mpps_outbox "
                          "WHERE destination = ? AND failed_status IS NULL ORDER BY id",
                          (destination,))  # fmt: skip
        return [(int(i), str(u), str(o), str(a)) for i, u, o, a in rows]

    def _outbox_done(self, row_id: int) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM mpps_outbox WHERE id = ?", (row_id,))

    def _outbox_attempt(self, row_ids: Sequence[int], error: str,
                        failed_status: int | None = None) -> None:  # fmt: skip
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE mpps_outbox SET attempts = attempts + 1, last_error = ?, "
                "failed_status = ? WHERE id = ?",
                [(error[:500], failed_status, i) for i in row_ids],
            )


def mpps_handlers(store: MPPSStore) -> list[tuple[EventType, Callable[[Event], object]]]:
    """EVT_N_CREATE and EVT_N_SET handlers serving ``store`` (run in the handler pool: each
    request waits for its commit to reach the disk). Each has ``sop_classes``, the SOP class it
    answers, for a caller that shares an event between several handlers."""
    return [(evt.EVT_N_CREATE, MPPSCreateHandler(store)), (evt.EVT_N_SET, MPPSSetHandler(store))]


class MPPSCreateHandler:
    """EVT_N_CREATE: :meth:`MPPSStore.create` (PS3.4 F.7.2.1.3); Success with the stored
    attributes, or the refusal's status."""

    sop_classes: frozenset[str] = frozenset({MPPS_SOP_CLASS})

    def __init__(self, store: MPPSStore) -> None:
        self.store = store

    def __call__(self, event: Event, *args: object) -> object:
        request = event.request
        sop_class = getattr(request, "AffectedSOPClassUID", None)
        if sop_class not in self.sop_classes:
            return _refusal(Status.NO_SUCH_SOP_CLASS, f"N-CREATE of {sop_class} not served here")
        uid = getattr(request, "AffectedSOPInstanceUID", None)
        attributes = _request_dataset(event)
        if isinstance(attributes, MPPSError):
            return attributes.status()
        try:
            stored = self.store.create(uid, attributes, calling_ae_title=_calling(event))
        except MPPSError as exc:
            LOG.warning("MPPS N-CREATE %s refused: 0x%04X %s", uid or "(new)", exc.code,
                        exc.comment)  # fmt: skip
            return exc.status()
        return Status.SUCCESS, stored


class MPPSSetHandler:
    """EVT_N_SET: :meth:`MPPSStore.update` (PS3.4 F.7.2.2.3); Success with the modified
    attributes, or the refusal's status. The SOP class is the request's *Requested* SOP Class
    UID (an N-SET-RQ has no Affected one, PS3.7 10.1.3)."""

    sop_classes: frozenset[str] = frozenset({MPPS_SOP_CLASS})

    def __init__(self, store: MPPSStore) -> None:
        self.store = store

    def __call__(self, event: Event, *args: object) -> object:
        request = event.request
        sop_class = getattr(request, "RequestedSOPClassUID", None)
        if sop_class not in self.sop_classes:
            return _refusal(Status.NO_SUCH_SOP_CLASS, f"N-SET of {sop_class} not served here")
        uid = str(getattr(request, "RequestedSOPInstanceUID", None) or "")
        modification = _request_dataset(event)
        if isinstance(modification, MPPSError):
            return modification.status()
        try:
            reply = self.store.update(uid, modification)
        except MPPSError as exc:
            LOG.warning("MPPS N-SET %s refused: 0x%04X %s", uid, exc.code, exc.comment)
            return exc.status()
        return Status.SUCCESS, reply


# --- checks (PS3.4 Table F.7.2-1, 5.4.2.1) -----------------------------------------------------


def _check_sop_common(ds: Dataset, uid: str) -> None:
    """SOP Class/Instance UID in the data set, if sent, must be the request's."""
    for tag, expected in ((_SOP_CLASS_UID, MPPS_SOP_CLASS), (_SOP_INSTANCE_UID, uid)):
        if tag in ds and not ds[tag].is_empty and str(ds[tag].value).strip() != expected:
            raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE,
                            f"{ds[tag].keyword} {ds[tag].value} is not {expected}", [tag])  # fmt: skip


def _check_create(ds: Dataset, *, strict: bool) -> None:
    missing = [tag for tag in _CREATE_TYPE1 if tag not in ds]
    if missing:
        raise MPPSError(Status.MISSING_ATTRIBUTE, "missing " + _names(missing), missing)
    empty = [tag for tag in _CREATE_TYPE1 if _empty(ds[tag])]
    if empty:
        raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE, "empty " + _names(empty), empty)
    for item in ds[_SSAS].value:  # items: >Study Instance UID 1/1
        _check_item(item, _SSAS, _STUDY_INSTANCE_UID)
    _check_series_items(ds, strict=False)
    status = str(ds[_STATUS].value).strip()
    if status != IN_PROGRESS:
        # PS3.4 F.7.2.1.3: a step is created IN PROGRESS; anything else is 0106H
        raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE,
                        f"PerformedProcedureStepStatus {status!r} is not {IN_PROGRESS!r}",
                        [_STATUS])  # fmt: skip
    if strict:
        absent = [tag for tag in _CREATE_TYPE2 if tag not in ds]
        if absent:
            raise MPPSError(Status.MISSING_ATTRIBUTE, "missing " + _names(absent), absent)
        for item in ds[_SSAS].value:
            for tag in _SSAS_TYPE2:
                if tag not in item:
                    raise MPPSError(Status.MISSING_ATTRIBUTE, f"missing {_path(_SSAS, tag)}",
                                    [_SSAS, tag])  # fmt: skip


def _check_item(item: Dataset, sequence: int, tag: int) -> None:
    """A type 1 UID in a sequence item: present (0120H), not empty (0121H), valid (0106H)."""
    where = _path(sequence, tag)
    if tag not in item:
        raise MPPSError(Status.MISSING_ATTRIBUTE, f"missing {where}", [sequence, tag])
    if _empty(item[tag]):
        raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE, f"empty {where}", [sequence, tag])
    if not is_valid_uid(str(item[tag].value).strip()):
        raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE, f"invalid {where}", [sequence, tag])


def _check_series_items(ds: Dataset, *, strict: bool) -> None:
    """Performed Series Sequence items: >Series Instance UID 1/1 (and >Protocol Name 1/1,
    checked with strict)."""
    if _PERFORMED_SERIES not in ds or ds[_PERFORMED_SERIES].value is None:
        return
    for item in ds[_PERFORMED_SERIES].value:
        _check_item(item, _PERFORMED_SERIES, _SERIES_INSTANCE_UID)
        if strict:
            where = _path(_PERFORMED_SERIES, _PROTOCOL_NAME)
            if _PROTOCOL_NAME not in item:
                raise MPPSError(Status.MISSING_ATTRIBUTE, f"missing {where}",
                                [_PERFORMED_SERIES, _PROTOCOL_NAME])  # fmt: skip
            if _empty(item[_PROTOCOL_NAME]):
                raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE, f"empty {where}",
                                [_PERFORMED_SERIES, _PROTOCOL_NAME])  # fmt: skip


def _check_set(mod: Dataset) -> str | None:
    """The modification list's own rules; the new status (None: not changed)."""
    refused = sorted(int(elem.tag) for elem in mod if int(elem.tag) in _NOT_SETTABLE)
    if refused:
        raise MPPSError(Status.NO_SUCH_ATTRIBUTE,
                        "not allowed in N-SET: " + _names(refused), refused)  # fmt: skip
    _check_series_items(mod, strict=False)
    if _STATUS not in mod:
        return None
    if _empty(mod[_STATUS]):
        raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE, "empty PerformedProcedureStepStatus",
                        [_STATUS])  # fmt: skip
    status = str(mod[_STATUS].value).strip()
    if status not in _STATES:
        raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE,
                        f"PerformedProcedureStepStatus {status!r} is not an enumerated value",
                        [_STATUS])  # fmt: skip
    return status


def _check_final_state(ds: Dataset) -> None:
    """PS3.4 Table F.7.2-1 "Final State" column and Note 2 (strict only)."""
    for tag in (_END_DATE, _END_TIME, _PERFORMED_SERIES):
        if tag not in ds:
            raise MPPSError(Status.MISSING_ATTRIBUTE, "final state: missing " + _names([tag]),
                            [tag])  # fmt: skip
        if _empty(ds[tag]):
            raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE,
                            "final state: empty " + _names([tag]), [tag])  # fmt: skip
    _check_series_items(ds, strict=True)


def _empty(elem: DataElement) -> bool:
    value = elem.value
    if value is None:
        return True
    if isinstance(value, str | bytes):
        return not value.strip()
    if elem.VR == "SQ":
        return len(value) == 0
    return bool(elem.is_empty) or not str(value).strip()


def _path(sequence: int, tag: int) -> str:
    """'ScheduledStepAttributesSequence>StudyInstanceUID' (PS3.3's nesting notation)."""
    # lazy: pydicom's data dictionary, only when a request is refused
    from pydicom.datadict import keyword_for_tag

    return f"{keyword_for_tag(sequence)}>{keyword_for_tag(tag)}"


def _names(tags: Iterable[int]) -> str:
    """'Modality (0008,0060), ...' for error comments."""
    # lazy: pydicom's data dictionary, only when a request is refused
    from pydicom.datadict import keyword_for_tag

    out = []
    for tag in tags:
        name = keyword_for_tag(tag) or "Unknown"
        out.append(f"{name} ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    return ", ".join(out)


# --- data set handling -------------------------------------------------------------------------


def _key(tag: int) -> str:
    """The DICOM JSON Model key of a tag (PS3.18 F.2.1.1)."""
    return f"{tag:08X}"


def _normalized(ds: Dataset) -> dict[str, Any]:
    """``ds`` as a DICOM JSON Model object with its text in Unicode: SOP Class/Instance UID
    left out (the request carries them), Specific Character Set "ISO_IR 192" only when a
    value is not ASCII (PS3.4 F.7.2.2.3)."""
    try:
        doc: dict[str, Any] = ds.to_json_dict()
    except Exception as exc:  # undecodable text, an impossible value
        raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE, f"unusable data set: {exc}") from exc
    for tag in (_SPECIFIC_CHARACTER_SET, _SOP_CLASS_UID, _SOP_INSTANCE_UID):
        doc.pop(_key(tag), None)
    _recharset(doc)
    return doc


def _recharset(doc: dict[str, Any]) -> None:
    doc.pop(_key(_SPECIFIC_CHARACTER_SET), None)
    if not _dumps(doc).isascii():
        doc[_key(_SPECIFIC_CHARACTER_SET)] = {"vr": "CS", "Value": ["ISO_IR 192"]}


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _text(ds: Dataset, tag: int) -> str:
    elem = ds.get(tag)
    return "" if elem is None or elem.value is None else str(elem.value).strip()


def _item_uids(ds: Dataset, sequence: int, tag: int) -> list[str]:
    elem = ds.get(sequence)
    if elem is None or elem.value is None:
        return []
    return [str(item[tag].value).strip() for item in elem.value
            if tag in item and item[tag].value]  # fmt: skip


def _record(row: Sequence[Any]) -> StepRecord:
    studies, series = row[10], row[11]
    return StepRecord(
        sop_instance_uid=str(row[0]), status=str(row[1]), performed_procedure_step_id=str(row[2]),
        station_ae_title=str(row[3]), modality=str(row[4]), patient_id=str(row[5]),
        calling_ae_title=str(row[6]), created=float(row[7]), updated=float(row[8]),
        ended=None if row[9] is None else float(row[9]),
        study_uids=tuple(sorted(studies.split("\\"))) if studies else (),
        series_uids=tuple(sorted(series.split("\\"))) if series else (),
    )  # fmt: skip


def _request_dataset(event: Event) -> Dataset | MPPSError:
    """The request's data set; an empty one when it carried none (the checks then name what
    is missing); an MPPSError (0110H) when it cannot be decoded."""
    if event.request is None or event.request.payload is None:
        return Dataset()
    try:
        return event.dataset
    except Exception as exc:
        return MPPSError(Status.PROCESSING_FAILURE, f"cannot decode the data set: {exc}")


def _calling(event: Event) -> str:
    try:
        return str(event.assoc.calling_ae_title or "").strip()
    except Exception:  # an event without an association (tests, tools)
        return ""


def _refusal(code: int, comment: str) -> Dataset:
    return MPPSError(code, comment).status()


def _fsync_directory(path: str) -> None:
    """Make a new file's directory entry durable (a file created just now is not on disk
    until its directory is)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- forwarding --------------------------------------------------------------------------------


def _destination_key(destination: Destination) -> str:
    aet, host, port = destination
    return f"{aet}@{host}:{port}"


class _Forwarder:
    """The background sender of the outbox (see the module docstring): one thread, woken by an
    event after each commit; :meth:`drain` is also callable from any thread."""

    def __init__(self, store: MPPSStore) -> None:
        self.store = store
        self._wake = threading.Event()
        self._stopping = False
        self._drain_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mpps-forward", daemon=True)
        self.ae = AE(ae_title=store.ae_title)
        self.ae.add_requested_context(MPPS_SOP_CLASS)
        self.ae.connection_timeout = 15.0
        self.ae.acse_timeout = 30.0
        self.ae.dimse_timeout = 30.0

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=120)
        if self._thread.is_alive():  # pragma: no cover - a peer holding us past every timeout
            LOG.warning("MPPS forwarder still busy at close; left behind (daemon thread)")

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopping:
                return
            # cleared before reading the outbox: a commit after this point wakes us again
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # never let the thread die: the next event tries again
                LOG.exception("MPPS forwarding failed")

    def drain(self) -> None:
        with self._drain_lock, _file_lock(self.store.path + ".forward.lock"):
            for destination in self.store.destinations:
                if self._stopping:
                    return
                self._send(destination)

    def _send(self, destination: Destination) -> None:
        key = _destination_key(destination)
        rows = self.store._outbox(key)
        if not rows:
            return
        aet, host, port = destination
        assoc = self.ae.associate(host, port, ae_title=aet)
        if not assoc.is_established:
            reason = assoc.failure_reason or getattr(assoc, "rejection_text", "") or "rejected"
            LOG.warning("MPPS forward to %s: cannot associate (%s); %d request(s) kept for the "
                        "next event", key, reason, len(rows))  # fmt: skip
            self.store._outbox_attempt([r[0] for r in rows], f"association: {reason}")
            return
        try:
            for row_id, uid, operation, text in rows:
                ds = Dataset.from_json(text)
                if operation == "create":
                    status, _reply = assoc.send_n_create(ds, MPPS_SOP_CLASS, uid)
                else:
                    status, _reply = assoc.send_n_set(ds, MPPS_SOP_CLASS, uid)
                code = status.get("Status") if status is not None else None
                if code is None:  # no response: the association is gone; keep the rest
                    LOG.warning("MPPS forward to %s: no response to N-%s %s; kept for the next "
                                "event", key, operation.upper(), uid)  # fmt: skip
                    self.store._outbox_attempt([row_id], "no response")
                    return
                code = int(code)
                if category(code) in (Category.SUCCESS, Category.WARNING) or (
                    operation == "create" and code == Status.DUPLICATE_SOP_INSTANCE
                ):
                    self.store._outbox_done(row_id)
                    LOG.info("MPPS forward to %s: N-%s %s -> 0x%04X", key, operation.upper(),
                             uid, code)  # fmt: skip
                    continue
                comment = str(status.get("ErrorComment", "") or "")
                LOG.error("MPPS forward to %s: N-%s %s refused with 0x%04X %s; not sent again",
                          key, operation.upper(), uid, code, comment)  # fmt: skip
                self.store._outbox_attempt([row_id], f"0x{code:04X} {comment}".strip(), code)
        finally:
            if assoc.is_established:
                assoc.release()


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (processes sharing the database take turns)."""
    try:
        # lazy: POSIX only; elsewhere one process is all there is to order
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock
