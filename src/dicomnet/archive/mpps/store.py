"""The performed procedure steps of one archive, kept durably and queryable: :class:`MPPSStore`,
the N-CREATE and N-SET it applies, and its listings.

Theory of operation
-------------------
:class:`MPPSStore` keeps the steps in the archive's workflow database
(:mod:`~dicomnet.archive.workflow_db`): normally a SQLite file, ``<storage>/workflow.sqlite``
beside the archive's index, or the index's own PostgreSQL database when archive nodes share it
(table ``mpps``: SOP Instance UID,
status, the key identifiers, the time it was created, last updated and ended, and every
attribute as a DICOM JSON Model object, PS3.18 F.2; tables ``mpps_study``/``mpps_series``: the
Study Instance UIDs of the Scheduled Step Attributes Sequence and the Series Instance UIDs of
the Performed Series Sequence, which link a step to the studies it belongs to). Each request
is checked and written in one transaction (SQLite: ``BEGIN IMMEDIATE`` on a WAL database with
``synchronous=FULL``): the response is sent only after the commit reached the disk, so a step
that was acknowledged survives a power loss. Processes sharing the database (``qrscp
--workers``, or nodes on one PostgreSQL database) cannot both create one UID -- the insert is
``ON CONFLICT DO NOTHING RETURNING``, and no returned row is the duplicate -- nor both update
one step: an N-SET first takes the step's lock (:meth:`~dicomnet.archive.backend.Backend.lock_key`
on PostgreSQL; SQLite's writer is single already), then reads it.

:meth:`MPPSStore.create` and :meth:`MPPSStore.update` run the checks of
:mod:`~dicomnet.archive.mpps.rules` and, in the transaction, those that need the stored step (a
duplicate UID, an unknown step, a step no longer IN PROGRESS); they keep the attributes in the
form :mod:`~dicomnet.archive.mpps.attributes` gives them. A refusal raises
:class:`~dicomnet.archive.mpps.rules.MPPSError` and changes nothing; a database failure is one
too (0110H). With destinations to forward to, the same transaction queues the request in the
outbox of :mod:`~dicomnet.archive.mpps.forward`, whose sender is woken after the commit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet.archive.backend import Backend, Connection
from dicomnet.archive.models import IndexUnavailableError
from dicomnet.archive.mpps.attributes import (
    dumps,
    element_text,
    item_uids,
    json_key,
    normalized,
    recharset,
)
from dicomnet.archive.mpps.forward import Destination, Forwarder, Outbox, queue
from dicomnet.archive.mpps.rules import (
    ERROR_ID_NO_LONGER_UPDATABLE,
    ERROR_NO_LONGER_UPDATABLE,
    FINAL_STATES,
    IN_PROGRESS,
    MPPS_SOP_CLASS,
    PERFORMED_SERIES,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    SPECIFIC_CHARACTER_SET,
    SSAS,
    STUDY_INSTANCE_UID,
    MPPSError,
    check_create,
    check_final_state,
    check_set,
    check_sop_common,
)
from dicomnet.archive.workflow_db import (
    WorkflowLocation,
    exclusive,
    location_text,
    open_service,
)
from dicomnet.dimse.status import Status
from dicomnet.uid import is_valid_uid

#: The logger of the old single module, shared by the package's modules.
LOG = logging.getLogger("dicomnet.archive.mpps")

#: The DDL of the steps' tables (SQLite dialect; :func:`~dicomnet.archive.workflow_db.create_tables`
#: translates it), also what ``dicomnet archive migrate`` creates them on another database with.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mpps_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS mpps (
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
)""",
    "CREATE INDEX IF NOT EXISTS mpps_status_ix ON mpps(status)",
    """CREATE TABLE IF NOT EXISTS mpps_study (
    study_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    PRIMARY KEY (study_uid, sop_instance_uid)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS mpps_study_step_ix ON mpps_study(sop_instance_uid)",
    """CREATE TABLE IF NOT EXISTS mpps_series (
    series_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    PRIMARY KEY (series_uid, sop_instance_uid)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS mpps_series_step_ix ON mpps_series(sop_instance_uid)",
    """CREATE TABLE IF NOT EXISTS mpps_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('create', 'set')),
    attributes TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    failed_status INTEGER
)""",
    "CREATE INDEX IF NOT EXISTS mpps_outbox_dest_ix ON mpps_outbox(destination, failed_status, id)",
    "INSERT INTO mpps_meta (key, value) VALUES ('schema', '1') ON CONFLICT (key) DO NOTHING",
)
#: The tables of :data:`SCHEMA` holding state (``mpps_meta``: its version only), parents first.
TABLES = ("mpps", "mpps_study", "mpps_series", "mpps_outbox")

_STEP_COLUMNS = (
    "m.sop_instance_uid, m.status, m.pps_id, m.station_ae_title, m.modality, m.patient_id, "
    "m.calling_ae_title, m.created_at, m.updated_at, m.ended_at, "
    "(SELECT group_concat(study_uid, '\\') FROM mpps_study s "
    " WHERE s.sop_instance_uid = m.sop_instance_uid), "
    "(SELECT group_concat(series_uid, '\\') FROM mpps_series r "
    " WHERE r.sop_instance_uid = m.sop_instance_uid)"
)


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


class MPPSStore:
    """The performed procedure steps of one archive (see the module docstring).

    ``path``: the SQLite file, or a directory (then ``<path>/workflow.sqlite``), or a
    ``postgresql://`` URL, or an open :class:`~dicomnet.archive.backend.Backend` (used, not
    closed: see :mod:`~dicomnet.archive.workflow_db`). ``forward``:
    (AE title, host, port) of SCPs each accepted request is forwarded to, with ``ae_title`` as
    our calling AE title. ``strict``: also enforce the SCU's type 2 and Final State
    requirements. ``durable`` (default): ``synchronous=FULL``, a commit is on disk before the
    response; False trusts the page cache (survives a crash of the process, not of the host).
    """

    def __init__(
        self,
        path: WorkflowLocation,
        *,
        forward: Iterable[Destination] = (),
        ae_title: str = "DICOMNET",
        strict: bool = False,
        durable: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.strict = strict
        self.durable = durable
        self.ae_title = ae_title
        self.destinations: tuple[Destination, ...] = tuple(
            (str(aet).strip(), str(host), int(port)) for aet, host, port in forward
        )
        self._closed = False
        #: the database of the steps (see :mod:`~dicomnet.archive.workflow_db`)
        self.backend: Backend
        self.backend, self._owned = open_service(path, SCHEMA, durable=durable, timeout=timeout)
        #: where the steps are: the SQLite file, or which database
        self.path = location_text(self.backend)
        self._errors: tuple[type[Exception], ...] = (*self.backend.errors, IndexUnavailableError)
        self._outbox = Outbox(self._read, self._transaction)
        self._forwarder: Forwarder | None = None
        if self.destinations:
            backend = self.backend
            self._forwarder = Forwarder(self._outbox, turn=lambda: exclusive(backend, "forward"),
                                        destinations=self.destinations,
                                        ae_title=self.ae_title)  # fmt: skip
            self._forwarder.start()
            self._forwarder.wake()  # rows left by an earlier run: the start is an event too

    # --- life cycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the forwarder (waiting for a transfer under way) and close the database."""
        if self._closed:
            return
        if self._forwarder is not None:
            self._forwarder.stop()
        self._closed = True
        if self._owned:
            self.backend.close()

    def __enter__(self) -> MPPSStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One write transaction (SQLite: ``BEGIN IMMEDIATE``, the write lock across processes
        too)."""
        if self._closed:
            raise RuntimeError("MPPSStore is closed")
        with self.backend.transaction() as conn:
            yield conn

    def pragma(self, name: str) -> object:
        """A setting of the database (SQLite's ``PRAGMA name``; diagnostics: ``synchronous`` is
        2, FULL, for a durable store; ``journal_mode`` is "wal")."""
        if not name.replace("_", "").isalpha():
            raise ValueError(f"not a pragma name: {name!r}")
        return self.backend.setting(name)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        if self._closed:
            raise RuntimeError("MPPSStore is closed")
        return self.backend.fetch(sql, params)

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
        check_sop_common(attributes, uid)
        check_create(attributes, strict=self.strict)
        received = normalized(attributes)
        doc = dict(received)
        doc[json_key(SOP_CLASS_UID)] = {"vr": "UI", "Value": [MPPS_SOP_CLASS]}
        doc[json_key(SOP_INSTANCE_UID)] = {"vr": "UI", "Value": [uid]}
        stored = Dataset.from_json(doc)
        now = time.time()
        try:
            with self._transaction() as conn:
                new = conn.execute(
                    "INSERT INTO mpps (sop_instance_uid, status, pps_id, station_ae_title, "
                    "modality, patient_id, calling_ae_title, created_at, updated_at, "
                    "attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (sop_instance_uid) DO NOTHING RETURNING sop_instance_uid",
                    (uid, IN_PROGRESS, element_text(stored, 0x00400253),
                     element_text(stored, 0x00400241), element_text(stored, 0x00080060),
                     element_text(stored, 0x00100020), calling_ae_title, now, now,
                     dumps(doc)),
                ).fetchone()  # fmt: skip
                if new is None:
                    raise MPPSError(Status.DUPLICATE_SOP_INSTANCE,
                                    f"SOP Instance {uid} already exists")  # fmt: skip
                conn.executemany(
                    "INSERT INTO mpps_study (study_uid, sop_instance_uid) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING",
                    [(study, uid) for study in item_uids(stored, SSAS, STUDY_INSTANCE_UID)],
                )
                self._link_series(conn, uid, stored)
                queue(conn, self.destinations, uid, "create", received, now)
        except self._errors as exc:
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
                # nodes sharing a PostgreSQL database: one N-SET of a step at a time
                self.backend.lock_key(conn, "mpps:" + sop_instance_uid)
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
                check_sop_common(modification, sop_instance_uid)
                new_status = check_set(modification)
                mod = normalized(modification)
                merged = json.loads(current_json)
                merged.pop(json_key(SPECIFIC_CHARACTER_SET), None)
                merged.update(mod)
                recharset(merged)
                stored = Dataset.from_json(merged)
                status = new_status or current_status
                if self.strict and status in FINAL_STATES:
                    check_final_state(stored)
                conn.execute(
                    "UPDATE mpps SET status = ?, updated_at = ?, ended_at = ?, attributes = ? "
                    "WHERE sop_instance_uid = ?",
                    (status, now, now if status in FINAL_STATES else None, dumps(merged),
                     sop_instance_uid),
                )  # fmt: skip
                if json_key(PERFORMED_SERIES) in mod:
                    conn.execute("DELETE FROM mpps_series WHERE sop_instance_uid = ?",
                                 (sop_instance_uid,))  # fmt: skip
                    self._link_series(conn, sop_instance_uid, stored)
                queue(conn, self.destinations, sop_instance_uid, "set", mod, now)
        except self._errors as exc:
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
    def _link_series(conn: Connection, uid: str, stored: Dataset) -> None:
        conn.executemany(
            "INSERT INTO mpps_series (series_uid, sop_instance_uid) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            [(series, uid) for series in item_uids(stored, PERFORMED_SERIES, SERIES_INSTANCE_UID)],
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
        return self._outbox.pending()

    def failed_forwards(self) -> list[tuple[str, str, str, int]]:
        """(destination, SOP Instance UID, operation, status) of rows a destination refused."""
        return self._outbox.failed()

    def flush_forwards(self) -> int:
        """Send what is waiting now, in this thread (taking turns with the background one);
        the number of rows still waiting afterwards."""
        if self._forwarder is not None:
            self._forwarder.drain()
        return len(self.pending_forwards())


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
