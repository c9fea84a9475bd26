"""Moving an archive's index and workflow state to another database (SQLite to PostgreSQL, or
back), with the archive down only for the switch.

Theory of operation
-------------------
The index is five tables (:mod:`dicomnet.archive.schema`): ``patient``, ``study``, ``series``
(each referring to its parent by primary key), ``instance`` (referring to its series) and
``other``, plus ``meta``. The stored files stay where they are: paths are absolute paths into
the storage folder and are copied as they are, so the new index serves the same folder.

:func:`migrate` opens both ends as an :class:`~dicomnet.archive.index.ArchiveIndex`: the
source is upgraded first if it is an index of an earlier release (version 1), the destination
gets the current schema if it has none. Both must then have this release's schema version.
An index upgraded here is finished as the archive's first start would (paths rebased to the
storage folder when the source is one, each study's patient attributes read back from its
files). The source is read through :meth:`~dicomnet.archive.backend.Backend.snapshot`: everything
copied belongs to one moment of the source (on SQLite a read transaction, so a running archive
keeps storing meanwhile, WAL).

The workflow state (:mod:`~dicomnet.archive.workflow_db`: MPPS steps, their study and series
links and the forwarding outbox, :mod:`~dicomnet.archive.mpps.store`; storage commitments and
their references, :mod:`~dicomnet.archive.commitment.store`; the studies waiting to be
announced and the announcements not yet delivered, :mod:`~dicomnet.archive.ian_state`) moves
with the index. It lives
in ``workflow.sqlite`` beside a SQLite index (the folder of the index file: ``STORAGE``), and in
tables of its own in a PostgreSQL index's database; so a source index file without a
``workflow.sqlite`` beside it, or a source database without those tables, has none to move
(the report says so). The destination's workflow tables are created by the services' own DDL
(:func:`~dicomnet.archive.workflow_db.create_tables`), then copied like the index's tables:
in the index's destination transaction when both are in one PostgreSQL database, in a
transaction of their own when the destination is SQLite (``workflow.sqlite`` beside the new
index file); read in the index's snapshot when the source is PostgreSQL, else in a snapshot of
``workflow.sqlite`` taken at the same time (one moment per file: a request the running archive
records in between may be in one and not the other -- the catch-up settles it). ``mpps_meta``
(the MPPS tables' version) is compared, not copied. A destination index file in the source's
own folder shares its ``workflow.sqlite``: nothing to move.

The copying is :mod:`~dicomnet.archive.tablecopy`'s, table by table in the order given (parents
first). The first pass (the destination must hold no rows, workflow tables included) copies each
table in key order, in batches read by keyset paging and loaded with
:meth:`~dicomnet.archive.backend.Backend.copy_rows` (``COPY`` on PostgreSQL), keys included, all
in one destination transaction: a failure leaves it empty. ``meta`` rows other than the schema
version follow (``root``, the storage folder the index belongs to). Then each PostgreSQL
identity sequence (the index's ``pk`` columns, ``mpps_outbox.id``, ``commitment.id``) is set
past its table's largest key (a row stored later must not collide with a copied one) and the
tables are ``ANALYZE``-d.

The catch-up pass (``incremental=True``) makes the destination equal to the source's present
state, whatever happened in between: it reads both tables side by side in key order (a merge,
page by page) and sorts every key into

* *absent* in the source (an instance removed, a series, study or patient pruned, a delivered
  commitment purged, an outbox row sent): delete;
* *new* in the source: insert;
* present in both but different: an update in place when the row's identity (its unique key
  and parent reference; for the workflow tables their key alone) is unchanged -- a patient's
  name, a study's attributes that a later instance changed, a step's N-SET, a commitment's
  state; otherwise (a re-stored instance moved to another series, a key SQLite reused after
  deleting the largest one) delete and insert again;
* a row whose parent is deleted is deleted with it (and inserted again if the source has it).

Deletions run children first and insertions and updates parents first, in one destination
transaction, so every foreign key holds at each step and a unique key is never held twice.
Comparing whole rows (not only "keys above the largest copied") is what makes a re-stored
instance (same key, new path) and SQLite's reuse of a deleted largest key safe; it costs one
read of both indexes (about a second per 100,000 instances) -- the archive is stopped then.
Only keys are held for the whole pass; the rows to insert or update (what changed since the
first pass) are held in memory until they are written.

At the end the row count of every table is read from both (the source in the same snapshot)
and compared: the :class:`MigrationReport`, or :class:`MigrationError` when they differ.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from dicomnet.archive import ian_state, schema
from dicomnet.archive.backend import (
    Backend,
    Connection,
    SQLiteBackend,
    is_postgres,
    printable_location,
)
from dicomnet.archive.commitment import store as commitment_store
from dicomnet.archive.fields import read_instance_fields
from dicomnet.archive.index import ArchiveIndex
from dicomnet.archive.mpps import store as mpps_store
from dicomnet.archive.tablecopy import (
    Changes,
    ProgressCallback,
    Table,
    advance_sequences,
    catch_up,
    copy_all,
    count,
    parse_tables,
)
from dicomnet.archive.workflow_db import WORKFLOW_DB, create_tables, open_workflow

__all__ = [
    "BATCH_ROWS",
    "INDEX_FILE",
    "TABLES",
    "WORKFLOW_TABLES",
    "MigrationError",
    "MigrationReport",
    "ProgressCallback",
    "TableReport",
    "index_tables",
    "migrate",
    "resolve_location",
    "table_columns",
    "workflow_tables",
]

#: The index file in a storage folder (what :class:`dicomnet.archive.scp.Archive` opens when
#: no ``db`` is given).
INDEX_FILE = "index.sqlite"

#: The tables copied, parents before children.
TABLES = ("patient", "study", "series", "instance", "other")

#: Columns naming a row's identity: its unique key and its parent reference.
_IDENTITY = {
    "patient": ("patient_id", "issuer"),
    "study": ("patient_fk", "study_uid"),
    "series": ("study_fk", "series_uid"),
    "instance": ("series_fk", "sop_uid"),
    "other": ("sop_uid",),
}
#: child table -> (its column referring to the parent, the parent table)
_PARENT = {
    "study": ("patient_fk", "patient"),
    "series": ("study_fk", "study"),
    "instance": ("series_fk", "series"),
}

#: The workflow services' DDL and the tables of it copied (parents before children).
_WORKFLOW_SCHEMA = (*mpps_store.SCHEMA, *commitment_store.SCHEMA, *ian_state.SCHEMA)
WORKFLOW_TABLES = (*mpps_store.TABLES, *commitment_store.TABLES, *ian_state.TABLES)
#: the MPPS tables' version: compared, not copied
_WORKFLOW_META = "mpps_meta"

#: Rows read and written per statement.
BATCH_ROWS = 5000


class MigrationError(Exception):
    """The migration cannot run or did not verify (one line, for the command)."""


@dataclass
class TableReport:
    """One table: rows in the source and destination at the end; what this run changed (a
    row deleted and inserted again by the catch-up counts in both)."""

    table: str
    source_rows: int
    destination_rows: int
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def ok(self) -> bool:
        return self.source_rows == self.destination_rows


@dataclass
class MigrationReport:
    """What :func:`migrate` did."""

    source: str
    destination: str
    incremental: bool
    #: the source's schema version before this run (1: upgraded on the way)
    source_version: int
    tables: list[TableReport] = field(default_factory=list)
    #: the workflow tables (empty: none moved, :attr:`workflow` says why)
    workflow_tables: list[TableReport] = field(default_factory=list)
    #: where the workflow state went (``"SRC -> DST"``), or why none moved
    workflow: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.ok for t in (*self.tables, *self.workflow_tables))

    def lines(self) -> list[str]:
        """The report as text, a line per table."""

        def line(t: TableReport) -> str:
            return (f"{t.table:<15} {t.source_rows:>10} {t.destination_rows:>12} "
                    f"{t.inserted:>10} {t.updated:>8} {t.deleted:>8}")  # fmt: skip

        out = [f"{'table':<15} {'source':>10} {'destination':>12} {'inserted':>10} "
               f"{'updated':>8} {'deleted':>8}"]  # fmt: skip
        out += [line(t) for t in self.tables]
        if self.workflow_tables:
            out.append(f"workflow state: {self.workflow}")
            out += [line(t) for t in self.workflow_tables]
        elif self.workflow:
            out.append(self.workflow)
        return out


# --- locations -------------------------------------------------------------------------------


def resolve_location(location: str | os.PathLike[str], *, must_exist: bool) -> str:
    """An index location for :class:`ArchiveIndex`: a ``postgresql://`` URI as it is;
    ``sqlite:PATH``, a path, or a storage folder (its ``index.sqlite``) as a file path.
    ``must_exist``: the file must be a SQLite index already (:class:`MigrationError`)."""
    loc = os.fspath(location)
    if is_postgres(loc):
        return loc
    if loc.startswith("sqlite:"):
        loc = loc.removeprefix("sqlite:")
    if not loc:
        raise MigrationError("no index path given")
    if os.path.isdir(loc):
        loc = os.path.join(loc, INDEX_FILE)
    loc = os.path.abspath(loc)
    if must_exist:
        _check_sqlite_index(loc)
    return loc


def _check_sqlite_index(path: str) -> None:
    """``path`` is a SQLite file holding an index (read-only look: nothing created)."""
    if not os.path.isfile(path):
        raise MigrationError(f"no index at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise MigrationError(f"{path} is not an archive index: {exc}") from exc
    if "instance" not in names:
        raise MigrationError(f"{path} is not an archive index (no instance table)")


# --- the migration ---------------------------------------------------------------------------


def migrate(source: str | os.PathLike[str], destination: str | os.PathLike[str], *,
            incremental: bool = False, progress: ProgressCallback | None = None,
            batch: int = BATCH_ROWS) -> MigrationReport:  # fmt: skip
    """Copy the index at ``source``, and the workflow state beside it, into ``destination``
    (see the module docstring).

    ``source``: ``sqlite:PATH``, a path to the index file, a storage folder, or a
    ``postgresql://`` URI; ``destination``: a ``postgresql://`` URI or a SQLite location.
    ``incremental``: the catch-up pass (the destination holds an earlier copy); without it the
    destination must be empty. Raises :class:`MigrationError` (a bad source, a non-empty
    destination, a schema version mismatch, counts that differ at the end) and
    :class:`ConnectionError` (a database that cannot be reached)."""
    started = time.monotonic()
    folder = os.fspath(source).removeprefix("sqlite:")
    folder = folder if not is_postgres(folder) and os.path.isdir(folder) else ""
    src_loc = resolve_location(source, must_exist=True)
    dst_loc = resolve_location(destination, must_exist=False)
    if src_loc == dst_loc:
        raise MigrationError("source and destination are the same index")
    dst = _open(dst_loc, "destination")  # first: an unreachable one leaves the source as it is
    try:
        src = _open(src_loc, "source")
        try:
            if src.upgraded_from == 1:
                _finish_upgrade(src, folder)
            report = MigrationReport(printable_location(src_loc), printable_location(dst_loc),
                                     incremental, src.upgraded_from)  # fmt: skip
            _check_versions(src.backend, dst.backend)
            parts = [_Part(index_tables(), src.backend, dst.backend, report.tables)]
            with ExitStack() as owned:
                move = _workflow_ends(src_loc, src.backend, dst_loc, dst.backend, owned)
                report.workflow = move.text
                if move.source is not None and move.destination is not None:
                    parts.append(_Part(workflow_tables(), move.source, move.destination,
                                       report.workflow_tables, move.missing))  # fmt: skip
                _copy(parts, incremental, batch, progress, move.meta)
                _verify(parts)
        finally:
            src.close()
    finally:
        dst.close()
    report.seconds = time.monotonic() - started
    if not report.ok:
        differ = ", ".join(f"{t.table} {t.source_rows} != {t.destination_rows}"
                           for t in (*report.tables, *report.workflow_tables)
                           if not t.ok)  # fmt: skip
        raise MigrationError(f"verification failed: row counts differ ({differ})")
    return report


@dataclass
class _Part:
    """Tables copied from one database to another: the index's, or the workflow state's."""

    tables: list[Table]
    source: Backend
    destination: Backend
    #: where their :class:`TableReport` go
    reports: list[TableReport]
    #: tables the source lacks (read as empty)
    missing: frozenset[str] = frozenset()
    #: rows in the source's snapshot
    counts: dict[str, int] = field(default_factory=dict)
    changes: Changes = field(default_factory=dict)


def _copy(parts: list[_Part], incremental: bool, batch: int,
          progress: ProgressCallback | None, workflow_meta: bool) -> None:  # fmt: skip
    """Every part in one snapshot of each source database and one transaction of each
    destination database (a database serving two parts: one snapshot, one transaction)."""
    with ExitStack() as stack:
        snaps: dict[int, Connection] = {}
        conns: dict[int, Connection] = {}
        for part in parts:
            if id(part.source) not in snaps:
                snaps[id(part.source)] = stack.enter_context(part.source.snapshot())
            snap = snaps[id(part.source)]
            part.counts = {t.name: 0 if t.name in part.missing else count(snap, t.name)
                           for t in part.tables}  # fmt: skip
        for part in parts:
            if id(part.destination) not in conns:
                conns[id(part.destination)] = stack.enter_context(part.destination.transaction())
        if not incremental:
            _require_empty(parts, conns)
        for part in parts:
            snap, conn = snaps[id(part.source)], conns[id(part.destination)]
            run = catch_up if incremental else copy_all
            part.changes = run(snap, conn, part.destination, part.tables, part.counts, batch,
                               progress, part.missing)  # fmt: skip
            if part is parts[0]:
                _copy_meta(snap, conn, "meta")
            elif workflow_meta:
                _copy_meta(snap, conn, _WORKFLOW_META)
            if part.destination.name == "postgresql":
                advance_sequences(conn, part.tables)


def _require_empty(parts: list[_Part], conns: dict[int, Connection]) -> None:
    held = [(t.name, count(conns[id(p.destination)], t.name)) for p in parts for t in p.tables]
    if any(n for _, n in held):
        rows = ", ".join(f"{n} {t} rows" for t, n in held if n)
        raise MigrationError(f"the destination is not empty ({rows}); use --incremental for "
                             "the catch-up pass of an earlier migration")  # fmt: skip


def _verify(parts: list[_Part]) -> None:
    """``ANALYZE`` the copied tables, then report each one's rows on both sides."""
    for part in parts:
        with part.destination.transaction() as conn:
            for table in part.tables:
                conn.execute(f"ANALYZE {table.name}")
        for table in part.tables:
            ins, upd, dele = part.changes[table.name]
            after = int(part.destination.fetch(f"SELECT COUNT(*) FROM {table.name}")[0][0])
            part.reports.append(TableReport(table.name, part.counts[table.name], after, ins,
                                            upd, dele))  # fmt: skip


def _open(location: str, role: str) -> ArchiveIndex:
    try:
        return ArchiveIndex(location)
    except RuntimeError as exc:  # schema.prepare: a newer schema than this release's
        raise MigrationError(f"schema version mismatch in the {role}: {exc}") from exc
    except sqlite3.Error as exc:
        raise MigrationError(f"cannot open the {role} index: {exc}") from exc


def _finish_upgrade(index: ArchiveIndex, folder: str) -> None:
    """What the archive does when it first opens an index it just upgraded from version 1:
    paths rebased to the storage folder (when the source was given as one) and each study's
    own patient attributes read back from its latest file (version 1 kept one set per
    Patient ID)."""
    if folder:
        index.rebase(os.path.realpath(folder))
    index.refill_study_patients(lambda path: read_instance_fields(path)[0])


def _check_versions(src: Backend, dst: Backend) -> None:
    versions = (schema.version(src), schema.version(dst))
    if versions != (schema.SCHEMA_VERSION, schema.SCHEMA_VERSION):
        raise MigrationError(f"schema version mismatch: source {versions[0]}, destination "
                             f"{versions[1]}, this dicomnet {schema.SCHEMA_VERSION}")  # fmt: skip


def index_tables() -> list[Table]:
    """The index's tables as :mod:`~dicomnet.archive.tablecopy` copies them, parents first:
    their columns read from the schema's DDL (the one definition both databases were created
    from), ``pk`` first."""
    try:
        parsed = parse_tables(schema.DDL, TABLES)
    except ValueError as exc:  # pragma: no cover - a schema this module does not know
        raise MigrationError(f"schema tables not understood: {exc}") from exc
    tables = [dataclasses.replace(parsed[t], identity=_IDENTITY[t], parent=_PARENT.get(t))
              for t in TABLES]  # fmt: skip
    odd = [t.name for t in tables if t.key != ("pk",) or t.serial != "pk"]
    if odd:  # pragma: no cover - a schema this module does not know
        raise MigrationError(f"schema tables not understood: {', '.join(odd)}")
    return tables


def workflow_tables() -> list[Table]:
    """The workflow services' tables (:data:`WORKFLOW_TABLES`) as they are copied: columns,
    primary key and identity column read from the services' own DDL."""
    parsed = parse_tables(_WORKFLOW_SCHEMA, WORKFLOW_TABLES)
    return [parsed[t] for t in WORKFLOW_TABLES]


def table_columns() -> dict[str, list[str]]:
    """The columns of each copied index table, in order (``pk`` first)."""
    return {t.name: list(t.columns) for t in index_tables()}


@dataclass
class _WorkflowEnds:
    """Where the workflow state is read and written (None: there is none to move)."""

    source: Backend | None
    destination: Backend | None
    #: ``"SRC -> DST"``, or why nothing moves
    text: str
    missing: frozenset[str] = frozenset()
    #: the source has ``mpps_meta``
    meta: bool = False


def _workflow_ends(src_loc: str, src: Backend, dst_loc: str, dst: Backend,
                   owned: ExitStack) -> _WorkflowEnds:  # fmt: skip
    """The workflow databases beside the source and destination indexes (see the module
    docstring); the destination's tables created. Backends opened here are closed by
    ``owned``."""
    if is_postgres(src_loc):
        source, where = src, "the source database"
    else:
        where = os.path.join(os.path.dirname(src_loc), WORKFLOW_DB)
        if not os.path.isfile(where):
            return _WorkflowEnds(None, None, f"no workflow state to move (no {where})")
        source = SQLiteBackend(where)
        owned.callback(source.close)
    try:
        present = source.tables()
    except sqlite3.Error as exc:
        raise MigrationError(f"cannot read the workflow state in {where}: {exc}") from exc
    if not present & set(WORKFLOW_TABLES):
        return _WorkflowEnds(None, None, f"no workflow state to move (no workflow tables in "
                                         f"{where})")  # fmt: skip
    if is_postgres(dst_loc):
        destination, there = dst, printable_location(dst_loc)
    else:
        there = os.path.join(os.path.dirname(dst_loc), WORKFLOW_DB)
        if isinstance(source, SQLiteBackend) and _same_file(source.path, there):
            return _WorkflowEnds(None, None, f"workflow state stays in {there} (the "
                                             "destination index's folder)")  # fmt: skip
        destination, _ = open_workflow(there)
        owned.callback(destination.close)
    create_tables(destination, _WORKFLOW_SCHEMA)
    meta = _WORKFLOW_META in present
    if meta:
        _check_workflow_version(source, destination)
    here = where if isinstance(source, SQLiteBackend) else printable_location(src_loc)
    return _WorkflowEnds(source, destination, f"{here} -> {there}",
                         frozenset(WORKFLOW_TABLES) - present, meta)  # fmt: skip


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _check_workflow_version(src: Backend, dst: Backend) -> None:
    sql = f"SELECT value FROM {_WORKFLOW_META} WHERE key = 'schema'"
    versions = (src.fetch(sql), dst.fetch(sql))
    if versions[0] != versions[1]:
        theirs, ours = (v[0][0] if v else None for v in versions)
        raise MigrationError(f"workflow schema version mismatch: MPPS tables version {theirs} "
                             f"in the source, {ours} in the destination")  # fmt: skip


def _copy_meta(snap: Connection, conn: Connection, table: str) -> None:
    """A key-value table's rows but the schema version (which the destination has already,
    checked equal)."""
    rows = snap.execute(f"SELECT key, value FROM {table} WHERE key <> 'schema' "
                        "ORDER BY key").fetchall()  # fmt: skip
    conn.executemany(f"INSERT INTO {table} (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                     "UPDATE SET value = excluded.value", [tuple(r) for r in rows])  # fmt: skip
