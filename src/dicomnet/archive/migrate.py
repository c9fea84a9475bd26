"""Moving an archive's index to another database (SQLite to PostgreSQL, or back), with the
archive down only for the switch.

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

The first pass (the destination must hold no rows) copies each table in primary-key order,
parents first, in batches read by keyset paging (``pk > last``) and loaded with
:meth:`~dicomnet.archive.backend.Backend.copy_rows` (``COPY`` on PostgreSQL), primary keys
included, all in one destination transaction: a failure leaves it empty. ``meta`` rows other
than the schema version follow (``root``, the storage folder the index belongs to). Then each
PostgreSQL identity sequence is set past its table's largest key (a row stored later must not
collide with a copied one) and the tables are ``ANALYZE``-d.

The catch-up pass (``incremental=True``) makes the destination equal to the source's present
state, whatever happened in between: it reads both tables side by side in key order (a merge,
page by page) and sorts every key into

* *absent* in the source (an instance removed, a series, study or patient pruned): delete;
* *new* in the source: insert;
* present in both but different: an update in place when the row's identity (its unique key
  and parent reference) is unchanged -- a patient's name, a study's attributes that a later
  instance changed; otherwise (a re-stored instance moved to another series, a key SQLite
  reused after deleting the largest one) delete and insert again;
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

``STORAGE/workflow.sqlite`` (MPPS, storage commitment) is not part of the index and is not
moved: it stays SQLite in the storage folder.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dicomnet.archive import schema
from dicomnet.archive.backend import Backend, Connection, is_postgres
from dicomnet.archive.fields import read_instance_fields
from dicomnet.archive.index import ArchiveIndex

__all__ = [
    "BATCH_ROWS",
    "INDEX_FILE",
    "TABLES",
    "MigrationError",
    "MigrationReport",
    "TableReport",
    "describe_location",
    "migrate",
    "resolve_location",
    "table_columns",
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

#: Rows read and written per statement.
BATCH_ROWS = 5000

#: ``progress(table, rows done, rows in the table)``, called as batches are written.
ProgressCallback = Callable[[str, int, int], None]
Row = tuple[Any, ...]


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
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def lines(self) -> list[str]:
        """The report as text, a line per table."""
        out = [f"{'table':<10} {'source':>10} {'destination':>12} {'inserted':>10} "
               f"{'updated':>8} {'deleted':>8}"]  # fmt: skip
        for t in self.tables:
            out.append(f"{t.table:<10} {t.source_rows:>10} {t.destination_rows:>12} "
                       f"{t.inserted:>10} {t.updated:>8} {t.deleted:>8}")  # fmt: skip
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


def describe_location(location: str) -> str:
    """A location fit to print: a URI's password replaced by ``***``."""
    if not is_postgres(location):
        return location
    parts = urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


# --- the migration ---------------------------------------------------------------------------


def migrate(source: str | os.PathLike[str], destination: str | os.PathLike[str], *,
            incremental: bool = False, progress: ProgressCallback | None = None,
            batch: int = BATCH_ROWS) -> MigrationReport:  # fmt: skip
    """Copy the index at ``source`` into ``destination`` (see the module docstring).

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
            report = MigrationReport(describe_location(src_loc), describe_location(dst_loc),
                                     incremental, src.upgraded_from)  # fmt: skip
            _check_versions(src.backend, dst.backend)
            columns = table_columns()
            with src.backend.snapshot() as snap:
                counts = {t: _count(snap, t) for t in TABLES}
                with dst.backend.transaction() as conn:
                    if incremental:
                        changes = _catch_up(snap, conn, dst.backend, columns, counts, batch,
                                            progress)  # fmt: skip
                    else:
                        _require_empty(conn)
                        changes = _copy_all(snap, conn, dst.backend, columns, counts, batch,
                                            progress)  # fmt: skip
                    _copy_meta(snap, conn)
                    if dst.backend.name == "postgresql":
                        _advance_sequences(conn)
            with dst.backend.transaction() as conn:
                for table in TABLES:
                    conn.execute(f"ANALYZE {table}")
            for table in TABLES:
                ins, upd, dele = changes[table]
                after = int(dst.backend.fetch(f"SELECT COUNT(*) FROM {table}")[0][0])
                report.tables.append(TableReport(table, counts[table], after, ins, upd, dele))
        finally:
            src.close()
    finally:
        dst.close()
    report.seconds = time.monotonic() - started
    if not report.ok:
        differ = ", ".join(f"{t.table} {t.source_rows} != {t.destination_rows}"
                           for t in report.tables if not t.ok)  # fmt: skip
        raise MigrationError(f"verification failed: row counts differ ({differ})")
    return report


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


_TABLE_DDL = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \(\n(.*?)\n\);", re.DOTALL)
_NOT_COLUMNS = {"UNIQUE", "PRIMARY", "FOREIGN", "CHECK", "CONSTRAINT"}


def table_columns() -> dict[str, list[str]]:
    """The columns of each copied table, in order, read from the schema's DDL (the one
    definition both databases were created from); ``pk`` first."""
    out: dict[str, list[str]] = {}
    for name, body in _TABLE_DDL.findall(schema.DDL):
        if name in TABLES:
            cols = [line.split()[0] for line in body.strip().splitlines() if line.strip()]
            out[name] = [c for c in cols if c not in _NOT_COLUMNS]
    missing = [t for t in TABLES if t not in out or out[t][:1] != ["pk"]]
    if missing:  # pragma: no cover - a schema this module does not know
        raise MigrationError(f"schema tables not understood: {', '.join(missing)}")
    return out


def _count(conn: Connection, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _require_empty(conn: Connection) -> None:
    rows = {t: _count(conn, t) for t in TABLES}
    if any(rows.values()):
        held = ", ".join(f"{n} {t} rows" for t, n in rows.items() if n)
        raise MigrationError(f"the destination is not empty ({held}); use --incremental for "
                             "the catch-up pass of an earlier migration")  # fmt: skip


def _pages(conn: Connection, table: str, columns: Sequence[str], batch: int) -> Iterator[list[Row]]:
    """The rows of ``table`` in ``pk`` order, ``batch`` rows per statement (keyset paging)."""
    head = f"SELECT {', '.join(columns)} FROM {table}"
    page = conn.execute(f"{head} ORDER BY pk LIMIT {batch}").fetchall()
    while page:
        yield [tuple(r) for r in page]
        if len(page) < batch:
            return
        page = conn.execute(f"{head} WHERE pk > ? ORDER BY pk LIMIT {batch}",
                            (page[-1][0],)).fetchall()  # fmt: skip


Changes = dict[str, tuple[int, int, int]]  # table -> (inserted, updated, deleted)


def _copy_all(snap: Connection, conn: Connection, backend: Backend,
              columns: dict[str, list[str]], counts: dict[str, int], batch: int,
              progress: ProgressCallback | None) -> Changes:  # fmt: skip
    """The first pass: every row of every table, parents first."""
    changes: Changes = {}
    for table in TABLES:
        done = 0
        if progress is not None:
            progress(table, 0, counts[table])
        for page in _pages(snap, table, columns[table], batch):
            done += backend.copy_rows(conn, table, columns[table], page)
            if progress is not None:
                progress(table, done, counts[table])
        changes[table] = (done, 0, 0)
    return changes


def _comparable(row: Row) -> Row:
    # PostgreSQL text holds no NUL (the backend drops them): compare without them
    return tuple(v.replace("\x00", "") if isinstance(v, str) else v for v in row)


def _merge(src: Iterator[list[Row]], dst: Iterator[list[Row]]
           ) -> Iterator[tuple[Row | None, Row | None]]:  # fmt: skip
    """Pairs (source row, destination row) of the same ``pk`` (``None`` for a side without
    it), in key order, from two key-ordered page streams."""

    def rows(pages: Iterator[list[Row]]) -> Iterator[Row]:
        for page in pages:
            yield from page

    a, b = rows(src), rows(dst)
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            yield x, None
            x = next(a, None)
        elif x is None or y[0] < x[0]:
            yield None, y
            y = next(b, None)
        else:
            yield x, y
            x, y = next(a, None), next(b, None)


def _catch_up(snap: Connection, conn: Connection, backend: Backend,
              columns: dict[str, list[str]], counts: dict[str, int], batch: int,
              progress: ProgressCallback | None) -> Changes:  # fmt: skip
    """The catch-up pass (see the module docstring): plan by merging both sides table by
    table, then delete children first, then update and insert parents first."""
    removed: dict[str, set[int]] = {}
    inserts: dict[str, list[Row]] = {}
    updates: dict[str, list[Row]] = {}
    for table in TABLES:
        cols = columns[table]
        identity = [cols.index(c) for c in _IDENTITY[table]]
        parent = _PARENT.get(table)
        gone_parents = removed[parent[1]] if parent else set()
        parent_ix = cols.index(parent[0]) if parent else -1
        gone: set[int] = set()
        new: list[Row] = []
        changed: list[Row] = []
        seen = 0
        for s, d in _merge(_pages(snap, table, cols, batch), _pages(conn, table, cols, batch)):
            if s is None:
                assert d is not None
                gone.add(d[0])
                continue
            seen += 1
            if d is None:
                new.append(s)
            elif parent and d[parent_ix] in gone_parents:
                gone.add(d[0])
                new.append(s)
            elif _comparable(s) == _comparable(d):
                pass
            elif [s[i] for i in identity] == [d[i] for i in identity]:
                changed.append(s)
            else:
                gone.add(d[0])
                new.append(s)
            if progress is not None and seen % batch == 0:
                progress(table, seen, counts[table])
        removed[table], inserts[table], updates[table] = gone, new, changed
        if progress is not None:
            progress(table, seen, counts[table])
    for table in reversed(TABLES):
        doomed = sorted(removed[table])
        for i in range(0, len(doomed), batch):
            conn.executemany(f"DELETE FROM {table} WHERE pk = ?",
                             [(pk,) for pk in doomed[i:i + batch]])  # fmt: skip
    changes: Changes = {}
    for table in TABLES:
        cols = columns[table]
        if updates[table]:
            assignments = ", ".join(f"{c} = ?" for c in cols[1:])
            conn.executemany(f"UPDATE {table} SET {assignments} WHERE pk = ?",
                             [(*row[1:], row[0]) for row in updates[table]])  # fmt: skip
        rows = inserts[table]
        for i in range(0, len(rows), batch):
            backend.copy_rows(conn, table, cols, rows[i : i + batch])
        changes[table] = (len(rows), len(updates[table]), len(removed[table]))
    return changes


def _copy_meta(snap: Connection, conn: Connection) -> None:
    """``meta`` rows but the schema version (which the destination has already)."""
    rows = snap.execute("SELECT key, value FROM meta WHERE key <> 'schema' ORDER BY key").fetchall()
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                     "SET value = excluded.value", [tuple(r) for r in rows])  # fmt: skip


def _advance_sequences(conn: Connection) -> None:
    """Each PostgreSQL identity sequence past its table's largest key: a row stored later gets
    a key no copied row has."""
    for table in TABLES:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'pk'), m) "
            f"FROM (SELECT max(pk) AS m FROM {table}) AS x WHERE m IS NOT NULL"
        )
