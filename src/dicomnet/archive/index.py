"""The archive's index (SQLite or PostgreSQL): what is stored where, and who it belongs to.

Theory of operation
-------------------
The tables and their upgrade from earlier releases are described in
:mod:`dicomnet.archive.schema`; the attributes come from :mod:`dicomnet.archive.fields`; C-FIND
and C-GET/C-MOVE are answered by :mod:`dicomnet.archive.query` (patient objects) and
:mod:`dicomnet.archive.nonpatient` (objects outside the patient hierarchy) over the rows this
module writes.

The database is a :class:`~dicomnet.archive.backend.Backend`: a SQLite file (the default; a
path or ``sqlite:PATH``) or a PostgreSQL database (``postgresql://...``); the SQL here is
written once and the backend runs it in its dialect.

Writing an instance is one write transaction: the patient identity (Patient ID,
Issuer of Patient ID) is upserted with the instance's patient attributes; the study row of
that identity (Study Instance UID, patient) with the study's attributes *and* the patient
attributes it arrived with; the series row of that study; the instance with its file's path,
size, checksum and time. A study UID already stored under another patient identity is a
conflict (:class:`~dicomnet.archive.models.StudyConflictError`, status A778 as dcm4chee
answers it) unless the index
was opened with ``study_conflict="accept"``, which keeps a second study row for the new
identity. Objects without a Study Instance UID go to the ``other`` table. How the rows are
written on each backend (statement by statement on SQLite, comparing parent rows first; in one
pipelined round trip on PostgreSQL): :mod:`dicomnet.archive.instance_rows`.

Concurrency (SQLite): one connection per thread (``threading.local``), WAL journal so readers
never block the writer nor each other; writes are serialised by a process-wide lock (so
in-process writers never meet SQLITE_BUSY). Durability: ``synchronous=NORMAL`` by default - a
committed row survives a crash of the process, a power loss can only lose the last few
transactions; ``durable=True`` switches to ``synchronous=FULL`` (the WAL is fsynced at every
commit). PostgreSQL: pooled connections, writers concurrent (of one process or of several
nodes): every write of a study -- store or removal -- first takes that study's transaction
lock (:meth:`~dicomnet.archive.backend.Backend.lock_key`), then rows parent to child, so no
two nodes both take a study for new, and a deadlock the server breaks anyway is retried; every
commit durable (the server's ``synchronous_commit``).

Paths are stored absolute; :meth:`ArchiveIndex.rebase` rewrites them when the storage folder
was moved (the index remembers the folder it was last opened for in ``meta``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, BinaryIO, NamedTuple, TypeAlias, TypeVar

from pydicom.dataset import Dataset

from dicomnet.archive import instance_rows, matching, query, schema
from dicomnet.archive.backend import Backend, Connection, open_backend
from dicomnet.archive.fields import (
    InstanceFields,
    fields_from_dataset,
    read_instance_fields,
    scan_instance_fields,
)
from dicomnet.archive.models import (
    AlreadyStored,
    IndexUnavailableError,
    Level,
    Model,
    QueryError,
    StudyConflictError,
)
from dicomnet.archive.storage import open_file
from dicomnet.dimse.status import Status

__all__ = [
    "MAX_PARAMETERS",
    "PAGE_ROWS",
    "ArchiveIndex",
    "InstanceFields",
    "QueryError",
    "RetrieveItem",
    "RetrieveSet",
    "Row",
    "StudyConflictError",
    "fields_from_dataset",
    "page_sql",
    "read_instance_fields",
    "scan_instance_fields",
]

#: Most key values one query may bind (below SQLite's 32766 variables): larger identifiers are
#: refused with 0xC000 rather than split.
MAX_PARAMETERS = 30000
#: Rows read per SQL statement while a query or retrieve is answered (keyset paging): a peer
#: reading its results slowly holds one page in memory, not its whole result.
PAGE_ROWS = 256

#: One result row of the index. Its column types are those of the SQL that read it (TEXT,
#: INTEGER, REAL or NULL per column), which only the caller knows: not checked statically.
Row: TypeAlias = tuple[Any, ...]

_NORMALIZERS: schema.Normalizers = {
    "pn_fold": matching.fold_pn,
    "pn_fuzzy": matching.fuzzy_pn,
    "date": lambda v: matching.normalize_date(v),
    "time": lambda v: matching.normalize_time(v),
    "datetime": matching.combine_datetime,
}


class RetrieveItem(NamedTuple):
    """One instance to send for C-GET / C-MOVE."""

    sop_class_uid: str
    sop_instance_uid: str
    path: str
    transfer_syntax_uid: str


class RetrieveSet:
    """The instances a C-GET / C-MOVE selected (:meth:`ArchiveIndex.retrieve_set`): counted
    and described by SQL, iterated page by page (any thread). ``uids``: SOP Instance UIDs
    asked for by value, also looked up among the non-patient objects."""

    _INSTANCES = "SELECT {cols} FROM " + query.FROM[Level.IMAGE]

    def __init__(self, index: ArchiveIndex, where: list[str], params: list[object],
                 uids: list[str] | None = None, *, patient: bool = True) -> None:  # fmt: skip
        self.index = index
        self.where = where
        self.params = params
        self.patient = patient
        self.other_where = [f"o.sop_uid IN ({','.join('?' * len(uids))})"] if uids else []
        self.other_params: list[object] = list(uids or [])
        count = 0
        if patient:
            count += int(index.select(self._INSTANCES.format(cols="COUNT(*)"), where,
                                      params)[0][0])  # fmt: skip
        if self.other_where:
            count += int(index.select("SELECT COUNT(*) FROM other o", self.other_where,
                                      self.other_params)[0][0])  # fmt: skip
        self.count = count

    def pairs(self) -> list[tuple[str, str]]:
        """The distinct (SOP class UID, stored transfer syntax UID) of the instances."""
        out: set[tuple[str, str]] = set()
        if self.patient:
            sql = self._INSTANCES.format(cols="DISTINCT i.sop_class_uid, i.transfer_syntax")
            out.update((str(a), str(b or "")) for a, b in
                       self.index.select(sql, self.where, self.params))  # fmt: skip
        if self.other_where:
            out.update((str(a), str(b or "")) for a, b in self.index.select(
                "SELECT DISTINCT o.sop_class_uid, o.transfer_syntax FROM other o",
                self.other_where, self.other_params))  # fmt: skip
        return sorted(out)

    def __iter__(self) -> Iterator[RetrieveItem]:
        if self.patient:
            head = self._INSTANCES.format(
                cols="i.sop_class_uid, i.sop_uid, i.path, i.transfer_syntax, i.pk")
            for row in self.index.pages(head, self.where, self.params, "i.pk"):
                yield RetrieveItem(row[0], row[1], row[2], row[3])
        if self.other_where:
            head = "SELECT o.sop_class_uid, o.sop_uid, o.path, o.transfer_syntax, o.pk FROM other o"
            for row in self.index.pages(head, self.other_where, self.other_params, "o.pk"):
                yield RetrieveItem(row[0], row[1], row[2], row[3])


class ArchiveIndex:
    """The index of an archive; thread-safe. ``path``: a SQLite file (or ``sqlite:PATH``) or a
    ``postgresql://`` URI (:func:`dicomnet.archive.backend.open_backend`).

    ``study_conflict``: what to do with a study arriving under a second patient identity,
    ``"reject"`` (:class:`StudyConflictError`) or ``"accept"`` (keep both)."""

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = False,
                 timeout: float = 30.0, study_conflict: str = "reject") -> None:  # fmt: skip
        self.path = os.fspath(path)
        if study_conflict not in ("reject", "accept"):
            raise ValueError(f"study_conflict must be 'reject' or 'accept', not {study_conflict!r}")
        self.durable = durable
        self.study_conflict = study_conflict
        #: the archive keeps the first copy of a SOP Instance UID: :meth:`check_conflict`
        #: also refuses one already stored (:class:`AlreadyStored`)
        self.keep_first = False
        #: how a stored instance named by the index is opened, for the return keys a C-FIND
        #: reads from it (an archive sets its storage's ``open``)
        self.open_stored: Callable[[str], BinaryIO] = open_file
        #: where the index lives (:mod:`dicomnet.archive.backend`)
        self.backend: Backend = open_backend(self.path, durable=durable, timeout=timeout)
        try:
            #: the schema version found when opened (0: new index; 1: upgraded just now)
            self.upgraded_from = schema.prepare(self.backend, _NORMALIZERS)
        except BaseException:
            self.backend.close()
            raise

    def close(self) -> None:
        """Close every connection (of every thread)."""
        self.backend.close()

    def __enter__(self) -> ArchiveIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------------------

    def add_instance(self, ds_or_fields: Dataset | InstanceFields, path: str, transfer_syntax: str,
                     size: int, checksum: str | None = None) -> str | None:  # fmt: skip
        """Index one stored instance (a duplicate SOP Instance UID replaces the earlier one).
        Returns the path of the replaced instance, or None if it was new.
        :class:`StudyConflictError` for a study of another patient (see the class)."""
        return self.add_instances([(ds_or_fields, path, transfer_syntax, size)], [checksum])[0]

    def add_instances(
        self,
        items: Iterable[tuple[Dataset | InstanceFields, str, str, int]],
        checksums: Iterable[str | None] | None = None,
    ) -> list[str | None]:
        """:meth:`add_instance` for many, in one transaction. ``checksums``: the files'
        :func:`~dicomnet.archive.store.quick_hash`, kept (with the time) for the start-up
        check after a crash."""
        rows = [
            (f if isinstance(f, InstanceFields) else fields_from_dataset(f), p, ts, n)
            for f, p, ts, n in items
        ]
        sums = list(checksums) if checksums is not None else [None] * len(rows)
        if len(sums) != len(rows):
            raise ValueError("one checksum per instance")
        # Written in one order everywhere -- patient identity, then study -- so that two
        # processes writing overlapping batches take their row and study locks in the same
        # order (no deadlock between nodes sharing a PostgreSQL index).
        order = sorted(range(len(rows)), key=lambda k: _lock_order(rows[k][0]))

        def write() -> list[str | None]:
            replaced: list[str | None] = [None] * len(rows)
            now = time.time()
            # SQLite: each statement in turn, in-process; PostgreSQL: every row's statements
            # sent at once, their results read afterwards (see dicomnet.archive.instance_rows)
            sequential = self.backend.single_writer
            queued: list[tuple[int, instance_rows.PipelinedRow]] = []
            with self.backend.transaction(pipeline=not sequential) as conn:
                locked: set[str] = set()
                for k in order:
                    fields, path, ts, size = rows[k]
                    if not fields.in_patient_hierarchy:
                        replaced[k] = instance_rows.write_other(conn, fields, path, ts, size,
                                                                sums[k], now)  # fmt: skip
                        continue
                    study = fields.study_instance_uid
                    if study not in locked:  # PS3.3 C.7.2: one study, one patient
                        self._lock_study(conn, study)
                        locked.add(study)
                    if sequential:
                        replaced[k] = instance_rows.write_sequential(
                            conn, fields, path, ts, size, sums[k], now,
                            study_conflict=self.study_conflict, compare=True,
                        )
                    else:
                        queued.append((k, instance_rows.PipelinedRow(
                            conn, fields, path, ts, size, sums[k], now)))  # fmt: skip
                for k, row in queued:
                    replaced[k] = row.finish(conn, self.study_conflict)
            return replaced

        return self._retried(write)

    def _retried(self, write: Callable[[], _T]) -> _T:
        """``write()`` -- one write transaction -- run again when the database broke it
        (a deadlock or serialization failure between PostgreSQL writers), at most
        :data:`_ATTEMPTS` times in all."""
        for attempt in range(_ATTEMPTS):
            try:
                return write()
            except self.backend.retryable:
                if attempt + 1 == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _lock_study(self, conn: Connection, study_uid: str) -> None:
        """Every write of a study takes this lock first (stores and removals alike)."""
        self.backend.lock_key(conn, "study:" + study_uid)

    def check_conflict(self, fields: InstanceFields) -> None:
        """Before the file is put in place: raise :class:`StudyConflictError` if storing
        ``fields`` would be one (:meth:`add_instance` checks again), and, with
        :attr:`keep_first`, :class:`AlreadyStored` if the instance is stored already. One
        statement: one round trip to a PostgreSQL index."""
        study = self.study_conflict == "reject" and fields.in_patient_hierarchy
        if self.keep_first:
            rows = self.backend.fetch(_PRE_STORE, (fields.study_instance_uid if study else None,
                                                   fields.sop_instance_uid,
                                                   fields.sop_instance_uid))  # fmt: skip
            if any(r[0] != "s" for r in rows):
                raise AlreadyStored(fields.sop_instance_uid)
        elif study:
            rows = self.backend.fetch(_STUDY_OWNERS, (fields.study_instance_uid,))
        else:
            return
        owners = [(r[1], r[2]) for r in rows]
        identity = (fields.patient_id, fields.issuer_of_patient_id)
        if owners and identity not in set(owners):
            raise instance_rows.conflict(fields, owners[0])

    def remove_instance(self, sop_instance_uid: str, *, path: str | None = None) -> str | None:
        """Drop an instance (and parents left empty), patient or not; returns its path, or
        None if unknown. ``path``: only if it is still indexed with that file (the start-up
        check of one node never drops a row another node has just pointed at a new file)."""
        return self._retried(lambda: self._remove(sop_instance_uid, path))

    def _remove(self, sop_uid: str, path: str | None) -> str | None:
        cond, params = "sop_uid = ?", [sop_uid]
        if path is not None:
            cond, params = "sop_uid = ? AND path = ?", [sop_uid, path]
        with self.backend.transaction() as conn:
            # the study's lock first, as a store takes it (no deadlock between nodes)
            study = conn.execute(_STUDY_OF_INSTANCE, (sop_uid,)).fetchone()
            if study is not None:
                self._lock_study(conn, str(study[0]))
            row = conn.execute(f"DELETE FROM instance WHERE {cond} RETURNING series_fk, path",
                               params).fetchone()  # fmt: skip
            if row is not None:
                instance_rows.prune_series(conn, row[0])
                return str(row[1])
            other = conn.execute(f"DELETE FROM other WHERE {cond} RETURNING path",
                                 params).fetchone()  # fmt: skip
            return None if other is None else str(other[0])

    def study_of(self, sop_instance_uid: str) -> str | None:
        """The Study Instance UID of an indexed instance (None: unknown, or not a patient
        object)."""
        rows = self.backend.fetch(_STUDY_OF_INSTANCE, (sop_instance_uid,))
        return str(rows[0][0]) if rows else None

    def last_stored(self, study_uid: str) -> float | None:
        """When (``time.time()``) an instance of ``study_uid`` was last stored, by any
        process writing this index (None: no instance)."""
        rows = self.backend.fetch(
            "SELECT MAX(i.stored_at) FROM instance i JOIN series se ON i.series_fk = se.pk "
            "JOIN study st ON se.study_fk = st.pk WHERE st.study_uid = ?", (study_uid,))  # fmt: skip
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def storage_root(self) -> str | None:
        """The storage folder the index was last opened for (None: never recorded)."""
        rows = self.backend.fetch("SELECT value FROM meta WHERE key = 'root'")
        return str(rows[0][0]) if rows else None

    def rebase(self, root: str) -> int:
        """The storage folder is now ``root``: rewrite the stored paths that are not under it
        (the archive was moved, or copied) to the same place below ``root`` -- the last three
        components, ``<study>/<series>/<file>`` or ``_nonpatient/<class>/<file>``. Returns how
        many paths changed; remembers ``root``."""
        prefix = os.path.join(root, "")
        rows = self.backend.fetch("SELECT value FROM meta WHERE key = 'root'")
        if rows and rows[0][0] == root:
            return 0
        changed = 0
        with self.backend.transaction() as conn:
            for table in ("instance", "other"):
                moved = []
                for pk, path in conn.execute(f"SELECT pk, path FROM {table}").fetchall():
                    if path.startswith(prefix):
                        continue
                    parts = os.path.normpath(path).split(os.sep)[-3:]
                    moved.append((os.path.join(root, *parts), pk))
                conn.executemany(f"UPDATE {table} SET path = ? WHERE pk = ?", moved)
                changed += len(moved)
            conn.execute("INSERT INTO meta VALUES ('root', ?) ON CONFLICT (key) DO UPDATE "
                         "SET value = excluded.value", (root,))  # fmt: skip
        return changed

    def refill_study_patients(self, read: Callable[[str], InstanceFields]) -> int:
        """After an upgrade from a version 1 index (which kept one set of patient attributes
        per Patient ID): give each study the patient attributes of its own latest instance,
        ``read(path) -> InstanceFields`` (a file that cannot be read keeps what the upgrade
        gave). Returns how many studies changed."""
        rows = self.backend.fetch(
            "SELECT st.pk, (SELECT x.path FROM instance x JOIN series y ON x.series_fk = y.pk "
            "WHERE y.study_fk = st.pk ORDER BY x.pk DESC LIMIT 1) FROM study st"
        )
        updates = []
        for pk, path in rows:
            try:
                f = read(path)
            except Exception:
                continue
            updates.append((f.patient_name, matching.fold_pn(f.patient_name),
                            matching.fuzzy_pn(f.patient_name), f.patient_birth_date,
                            matching.normalize_date(f.patient_birth_date), f.patient_sex,
                            f.issuer_of_patient_id, f.timezone_offset, pk))  # fmt: skip
        with self.backend.transaction() as conn:
            conn.executemany(
                "UPDATE study SET patient_name = ?, patient_name_fold = ?, "
                "patient_name_fuzzy = ?, birth_date = ?, birth_date_norm = ?, sex = ?, "
                "issuer = ?, timezone = ? WHERE pk = ?", updates)  # fmt: skip
        return len(updates)

    # --- simple reads ------------------------------------------------------------------------------

    def instance_count(self) -> int:
        return int(self.backend.fetch("SELECT (SELECT COUNT(*) FROM instance) + "
                                      "(SELECT COUNT(*) FROM other)")[0][0])  # fmt: skip

    def get_instance(self, sop_instance_uid: str) -> RetrieveItem | None:
        # one statement for both tables: one round trip to a PostgreSQL index per C-STORE
        rows = self.backend.fetch(
            "SELECT sop_class_uid, sop_uid, path, transfer_syntax FROM instance "
            "WHERE sop_uid = ? UNION ALL SELECT sop_class_uid, sop_uid, path, transfer_syntax "
            "FROM other WHERE sop_uid = ?", (sop_instance_uid, sop_instance_uid))  # fmt: skip
        return RetrieveItem(*rows[0]) if rows else None

    def iter_stored(self) -> Iterator[tuple[str, str, int, str | None, float]]:
        """(SOP Instance UID, path, size, checksum or None, time stored or 0) of every
        instance, for the start-up check."""
        for table in ("instance", "other"):
            # keyset pages: an index of millions never sits in memory at once
            last = 0
            while True:
                rows = self.backend.fetch(
                    f"SELECT sop_uid, path, size, checksum, stored_at, pk FROM {table} "
                    f"WHERE pk > ? ORDER BY pk LIMIT {_STORED_PAGE}", (last,))  # fmt: skip
                for uid, path, size, checksum, stored_at, _pk in rows:
                    yield str(uid), str(path), int(size), checksum, float(stored_at or 0.0)
                if len(rows) < _STORED_PAGE:
                    break
                last = rows[-1][5]

    def iter_paths(self) -> Iterator[tuple[str, str]]:
        """(SOP Instance UID, path) of every indexed instance (a snapshot)."""
        rows = self.backend.fetch("SELECT sop_uid, path FROM instance UNION ALL "
                                  "SELECT sop_uid, path FROM other")  # fmt: skip
        return iter(rows)

    def pragma(self, name: str) -> object:
        """The value of SQLite's ``PRAGMA name`` on this thread's connection, or PostgreSQL's
        setting ``name`` (diagnostics: e.g. ``synchronous`` is 2 (FULL) for a durable SQLite
        index)."""
        return self.backend.setting(name)

    # --- query / retrieve --------------------------------------------------------------------------

    def query(self, level: Level | str | None, identifier: Dataset,
              model: Model | str = Model.STUDY_ROOT, *, retrieve_ae_title: str | None = None,
              options: query.QueryOptions | None = None) -> Generator[Dataset, None, None]:  # fmt: skip
        """C-FIND (:func:`dicomnet.archive.query.find`): the response identifiers. ``level``:
        a :class:`Level`, its name, or None to read (0008,0052) from the identifier. Safe to
        call from any thread."""
        opts = options or query.QueryOptions()
        if retrieve_ae_title is not None:
            opts = query.QueryOptions(opts.strict, opts.combined_datetime, opts.fuzzy_names,
                                      opts.timezone_adjust, retrieve_ae_title)  # fmt: skip
        try:
            return query.find(self, level, identifier, model, opts)
        except QueryError:
            raise
        except Exception as exc:
            # Trust boundary: an identifier pydicom cannot even convert (a malformed raw value,
            # a broken sequence) is answered "unable to process", never with a traceback.
            raise QueryError(f"invalid identifier: {exc}", Status.CANNOT_UNDERSTAND) from exc

    def retrieve_set(self, level: Level | str | None, identifier: Dataset,
                     model: Model | str = Model.STUDY_ROOT, *,
                     strict: bool = False) -> RetrieveSet:  # fmt: skip
        """The instances a C-GET/C-MOVE selects (:func:`dicomnet.archive.query.retrieve_where`):
        counted, described, and read page by page as they are iterated. SOP Instance UIDs
        given by value also find non-patient objects."""
        try:
            if model in (Model.COMPOSITE, "COMPOSITE"):
                uids = query.sop_instance_key(identifier)
                where = [f"i.sop_uid IN ({','.join('?' * len(uids))})"]
                return RetrieveSet(self, where, list(uids), uids)
            where, params, uids = query.retrieve_where(level, identifier, model, strict=strict)
            return RetrieveSet(self, where, params, uids if len(where) == 1 else None)
        except QueryError:
            raise
        except Exception as exc:  # trust boundary, as in query()
            raise QueryError(f"invalid identifier: {exc}", Status.CANNOT_UNDERSTAND) from exc

    def instances_for(self, level: Level | str | None, identifier: Dataset,
                      model: Model | str = Model.STUDY_ROOT, *,
                      strict: bool = False) -> list[RetrieveItem]:  # fmt: skip
        """:meth:`retrieve_set` as a list."""
        return list(self.retrieve_set(level, identifier, model, strict=strict))

    def select(self, sql: str, where: list[str], params: list[object]) -> list[Row]:
        """The rows of ``sql`` (a SELECT ... FROM) with ``where`` AND-ed (QueryError on a
        database error)."""
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._fetch(sql, params)

    def pages(self, head: str, where: list[str], params: list[object], key: str) -> Iterator[Row]:
        """The rows of ``head`` (SELECT ..., key FROM ...) with ``where``, in ``key`` order,
        :data:`PAGE_ROWS` per statement (keyset paging: ``key > last``). The first page is read
        now (errors raise here); the others as the iterator is consumed."""
        first = self._fetch(page_sql(head, where, key, first=True), params)
        return self._more_pages(page_sql(head, where, key), params, first)

    def _more_pages(self, sql: str, params: list[object], page: list[Row]) -> Iterator[Row]:
        while page:
            yield from page
            if len(page) < PAGE_ROWS:
                return
            page = self._fetch(sql, [*params, page[-1][-1]])

    def _fetch(self, sql: str, params: list[object]) -> list[Row]:
        if len(params) > MAX_PARAMETERS:
            raise QueryError(
                f"identifier too large ({len(params)} values)", Status.CANNOT_UNDERSTAND
            )
        try:
            return self.backend.fetch(sql, params)
        except IndexUnavailableError as exc:  # try again later (PS3.4 C.4.1.1.4: A700)
            raise QueryError(str(exc), exc.status) from exc
        except self.backend.errors as exc:
            raise QueryError(f"query failed: {exc}", Status.CANNOT_UNDERSTAND) from exc


def page_sql(head: str, where: list[str], key: str, *, first: bool = False) -> str:
    """The statement :meth:`ArchiveIndex.pages` runs for a page; its parameters: those of
    ``where``, then (not on the ``first`` page) the last ``key`` read. The first page has no
    ``key > ?``: it would select every row, but a PostgreSQL plan made for any value of it
    (the generic plan of a prepared statement) guesses a third of the rows and reads the
    primary key index to intersect with it. Public so that a tool can look at the plan of
    exactly what a query runs (``bench/scale.py``)."""
    cond = where if first else [*where, f"{key} > ?"]
    clause = f" WHERE {' AND '.join(cond)}" if cond else ""
    return f"{head}{clause} ORDER BY {key} LIMIT {PAGE_ROWS}"


_T = TypeVar("_T")

#: the patient identities a study is stored under ('s' rows, for check_conflict)
_STUDY_OWNERS = "SELECT 's', st.patient_id, st.issuer FROM study st WHERE st.study_uid = ?"
#: those, and whether the instance is stored ('i', 'o' rows), in one statement
_PRE_STORE = (_STUDY_OWNERS + " UNION ALL SELECT 'i', NULL, NULL FROM instance WHERE sop_uid = ?"
              " UNION ALL SELECT 'o', NULL, NULL FROM other WHERE sop_uid = ?")  # fmt: skip
#: the study of one instance (by SOP Instance UID)
_STUDY_OF_INSTANCE = (
    "SELECT st.study_uid FROM instance i JOIN series se ON i.series_fk = se.pk "
    "JOIN study st ON se.study_fk = st.pk WHERE i.sop_uid = ?"
)
#: rows per statement while the start-up check reads every stored instance
_STORED_PAGE = 5000
#: how often a write transaction the database broke (deadlock, serialization) runs
_ATTEMPTS = 3


def _lock_order(f: InstanceFields) -> tuple[str, str, str]:
    return (f.patient_id, f.issuer_of_patient_id, f.study_instance_uid)




