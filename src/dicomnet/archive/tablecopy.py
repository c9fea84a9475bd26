"""Copying tables from one database to another with their keys, once or as a catch-up: the
machinery of :mod:`dicomnet.archive.migrate`.

Theory of operation
-------------------
A :class:`Table` names a table, its columns with the primary key's first (one column, as the
index's ``pk``, or several, as ``mpps_study (study_uid, sop_instance_uid)``), and what the
catch-up needs to know about it: the columns naming a row beyond its key (a unique key, the
reference to a parent), its parent table, and its ``INTEGER PRIMARY KEY`` column if it has one
(an identity column on PostgreSQL, whose sequence must go past the copied keys).
:func:`parse_tables` reads the columns, the key and that column from the ``CREATE TABLE``
statements the tables were created from (SQLite dialect, the one definition both databases
were made with), so a column added to a table is copied without another list to keep.

Rows are read in key order by keyset paging (:func:`pages`: ``WHERE (key) > (last key)``,
``batch`` rows per statement), so that a large table is never held whole. Key order is the
same on both databases and in Python: integers, and text compared byte by byte (SQLite's
BINARY collation; every text column of the PostgreSQL schema is ``COLLATE "C"``; UTF-8 byte
order is code point order, which is how Python compares strings) -- :func:`merge` walks two
such streams side by side.

:func:`copy_all` loads every row as it is (:meth:`~dicomnet.archive.backend.Backend.copy_rows`,
``COPY`` on PostgreSQL), parents first. :func:`catch_up` makes the destination's tables equal
to the source's: it merges both sides table by table and sorts every key into absent in the
source (delete), new (insert), different with the same identity (update in place) or with
another identity (delete and insert again), a row whose parent is deleted going with it; then
it deletes children first and updates and inserts parents first, so every foreign key holds
at each statement and a unique key is never held twice. Only the keys of deleted rows and the
rows that changed are held in memory. Both run inside the caller's transaction.
:func:`advance_sequences` sets each PostgreSQL identity sequence past its table's largest key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dicomnet.archive.backend import Backend, Connection

__all__ = [
    "Changes",
    "ProgressCallback",
    "Row",
    "Table",
    "advance_sequences",
    "catch_up",
    "copy_all",
    "count",
    "merge",
    "pages",
    "parse_tables",
]

#: ``progress(table, rows done, rows in the table)``, called as batches are written.
ProgressCallback = Callable[[str, int, int], None]
Row = tuple[Any, ...]
#: table -> (inserted, updated, deleted)
Changes = dict[str, tuple[int, int, int]]


@dataclass(frozen=True)
class Table:
    """One table to copy (see the module docstring)."""

    name: str
    #: every column, those of the primary key first
    columns: tuple[str, ...]
    #: the primary key's columns
    key: tuple[str, ...]
    #: the ``INTEGER PRIMARY KEY`` column (an identity column on PostgreSQL), if any
    serial: str | None = None
    #: columns naming a row besides its key (unique key, parent reference): a row whose values
    #: of them changed under the same key is deleted and inserted again, not updated
    identity: tuple[str, ...] = ()
    #: (the column referring to the parent's key, the parent table)
    parent: tuple[str, str] | None = None

    @property
    def width(self) -> int:
        """How many leading columns are the key."""
        return len(self.key)


_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \(")
_CONSTRAINTS = {"UNIQUE", "PRIMARY", "FOREIGN", "CHECK", "CONSTRAINT"}
_SERIAL = re.compile(r"^\w+ INTEGER PRIMARY KEY\b")


def _body(text: str, start: int) -> str:
    """The text inside the parenthesis opened just before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start:i]
    raise ValueError("unbalanced parentheses in a CREATE TABLE statement")


def _parts(body: str) -> list[str]:
    """The column definitions and table constraints of a table body (``--`` comments out)."""
    text = "\n".join(line.split("--", 1)[0] for line in body.splitlines())
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [" ".join(p.split()) for p in parts if p.strip()]


def parse_tables(ddl: str | Iterable[str], names: Sequence[str]) -> dict[str, Table]:
    """The :class:`Table` of each of ``names`` from the ``CREATE TABLE IF NOT EXISTS``
    statements in ``ddl`` (one text, or several statements); ``ValueError`` when one is missing
    or has no primary key."""
    text = ddl if isinstance(ddl, str) else ";\n".join(ddl)
    out: dict[str, Table] = {}
    for m in _CREATE.finditer(text):
        name = m.group(1)
        if name not in names:
            continue
        columns: list[str] = []
        key: list[str] = []
        serial = None
        for part in _parts(_body(text, m.end())):
            first = part.split()[0]
            if first.upper() not in _CONSTRAINTS:
                columns.append(first)
                if "PRIMARY KEY" in part.upper():
                    key = [first]
                    serial = first if _SERIAL.match(part) else None
            elif part.upper().startswith("PRIMARY KEY"):
                key = [c.strip() for c in part[part.index("(") + 1 : part.rindex(")")].split(",")]
        if not key:
            raise ValueError(f"table {name} has no primary key")
        rest = [c for c in columns if c not in key]
        out[name] = Table(name, (*key, *rest), tuple(key), serial)
    missing = [n for n in names if n not in out]
    if missing:
        raise ValueError(f"no CREATE TABLE for {', '.join(missing)}")
    return out


def count(conn: Connection, table: str) -> int:
    """The rows of ``table``."""
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _where_key(table: Table) -> str:
    return " AND ".join(f"{c} = ?" for c in table.key)


def pages(conn: Connection, table: Table, batch: int) -> Iterator[list[Row]]:
    """The rows of ``table`` in key order, ``batch`` rows per statement (keyset paging)."""
    head = f"SELECT {', '.join(table.columns)} FROM {table.name}"
    order = f"ORDER BY {', '.join(table.key)} LIMIT {batch}"
    after = f"({', '.join(table.key)}) > ({', '.join('?' * table.width)})"
    page = conn.execute(f"{head} {order}").fetchall()
    while page:
        yield [tuple(r) for r in page]
        if len(page) < batch:
            return
        page = conn.execute(f"{head} WHERE {after} {order}",
                            tuple(page[-1][: table.width])).fetchall()  # fmt: skip


def _comparable(row: Row) -> Row:
    # PostgreSQL text holds no NUL (the backend drops them): compare without them
    return tuple(v.replace("\x00", "") if isinstance(v, str) else v for v in row)


def merge(src: Iterator[list[Row]], dst: Iterator[list[Row]], width: int = 1
          ) -> Iterator[tuple[Row | None, Row | None]]:  # fmt: skip
    """Pairs (source row, destination row) of the same key (its first ``width`` columns;
    ``None`` for a side without it), in key order, from two key-ordered page streams."""

    def rows(pages: Iterator[list[Row]]) -> Iterator[Row]:
        for page in pages:
            yield from page

    a, b = rows(src), rows(dst)
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[:width] < y[:width]):
            yield x, None
            x = next(a, None)
        elif x is None or y[:width] < x[:width]:
            yield None, y
            y = next(b, None)
        else:
            yield x, y
            x, y = next(a, None), next(b, None)


def _source_pages(snap: Connection, table: Table, batch: int,
                  missing: Collection[str]) -> Iterator[list[Row]]:  # fmt: skip
    return iter(()) if table.name in missing else pages(snap, table, batch)


def copy_all(snap: Connection, conn: Connection, backend: Backend, tables: Sequence[Table],
             counts: dict[str, int], batch: int, progress: ProgressCallback | None = None,
             missing: Collection[str] = ()) -> Changes:  # fmt: skip
    """The first pass: every row of every table, in the order given (parents first), from the
    source snapshot ``snap`` into the transaction ``conn`` of ``backend``. ``missing``: tables
    the source does not have (read as empty)."""
    changes: Changes = {}
    for table in tables:
        done = 0
        if progress is not None:
            progress(table.name, 0, counts[table.name])
        for page in _source_pages(snap, table, batch, missing):
            done += backend.copy_rows(conn, table.name, table.columns, page)
            if progress is not None:
                progress(table.name, done, counts[table.name])
        changes[table.name] = (done, 0, 0)
    return changes


def catch_up(snap: Connection, conn: Connection, backend: Backend, tables: Sequence[Table],
             counts: dict[str, int], batch: int, progress: ProgressCallback | None = None,
             missing: Collection[str] = ()) -> Changes:  # fmt: skip
    """The catch-up pass (see the module docstring): plan by merging both sides table by
    table (``tables`` parents first), then delete children first, then update and insert
    parents first."""
    removed: dict[str, set[Row]] = {}
    inserts: dict[str, list[Row]] = {}
    updates: dict[str, list[Row]] = {}
    for table in tables:
        cols, width = table.columns, table.width
        identity = [cols.index(c) for c in table.identity]
        parent = table.parent
        gone_parents = removed[parent[1]] if parent else set()
        parent_ix = cols.index(parent[0]) if parent else -1
        gone: set[Row] = set()
        new: list[Row] = []
        changed: list[Row] = []
        seen = 0
        source = _source_pages(snap, table, batch, missing)
        for s, d in merge(source, pages(conn, table, batch), width):
            if s is None:
                assert d is not None
                gone.add(d[:width])
                continue
            seen += 1
            if d is None:
                new.append(s)
            elif parent and (d[parent_ix],) in gone_parents:
                gone.add(d[:width])
                new.append(s)
            elif _comparable(s) == _comparable(d):
                pass
            elif [s[i] for i in identity] == [d[i] for i in identity]:
                changed.append(s)
            else:
                gone.add(d[:width])
                new.append(s)
            if progress is not None and seen % batch == 0:
                progress(table.name, seen, counts[table.name])
        removed[table.name], inserts[table.name], updates[table.name] = gone, new, changed
        if progress is not None:
            progress(table.name, seen, counts[table.name])
    for table in reversed(tables):
        doomed = sorted(removed[table.name])
        for i in range(0, len(doomed), batch):
            conn.executemany(f"DELETE FROM {table.name} WHERE {_where_key(table)}",
                             doomed[i : i + batch])  # fmt: skip
    changes: Changes = {}
    for table in tables:
        cols, width = table.columns, table.width
        if updates[table.name] and len(cols) > width:
            assignments = ", ".join(f"{c} = ?" for c in cols[width:])
            conn.executemany(f"UPDATE {table.name} SET {assignments} WHERE {_where_key(table)}",
                             [(*row[width:], *row[:width]) for row in updates[table.name]])  # fmt: skip
        rows = inserts[table.name]
        for i in range(0, len(rows), batch):
            backend.copy_rows(conn, table.name, cols, rows[i : i + batch])
        changes[table.name] = (len(rows), len(updates[table.name]), len(removed[table.name]))
    return changes


def advance_sequences(conn: Connection, tables: Iterable[Table]) -> None:
    """Each PostgreSQL identity sequence past its table's largest key: a row stored later gets
    a key no copied row has."""
    for table in tables:
        if table.serial is None:
            continue
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{table.serial}'), m) "
            f"FROM (SELECT max({table.serial}) AS m FROM {table.name}) AS x WHERE m IS NOT NULL"
        )
