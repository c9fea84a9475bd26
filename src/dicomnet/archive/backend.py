"""The SQL databases an archive index can live in: SQLite (embedded, the default) and
PostgreSQL (a server several archive nodes can share).

Theory of operation
-------------------
:class:`~dicomnet.archive.index.ArchiveIndex`, :mod:`~dicomnet.archive.schema` and
:mod:`~dicomnet.archive.query` write one SQL text, in the dialect SQLite reads natively (``?``
placeholders, ``GLOB`` for DICOM wildcards, ``group_concat``, ``ON CONFLICT ... DO UPDATE``,
``RETURNING``). A :class:`Backend` runs it:

* :meth:`Backend.fetch` reads rows (any thread); :meth:`Backend.transaction` yields a
  :class:`Connection` inside one write transaction, committed when the block ends and rolled
  back when it raises. SQLite's writers of one process are serialised by a lock (they never
  meet ``SQLITE_BUSY``); PostgreSQL's run concurrently, ordered by the server's row locks and
  the index's per-study locks (:meth:`Backend.lock_key`).
* :class:`SQLiteBackend` keeps what the index always did: one connection per thread, WAL,
  ``synchronous=NORMAL`` (``FULL`` when durable), ``BEGIN IMMEDIATE``. The SQL runs as written,
  so SQLite's speed and behaviour are unchanged.
* :class:`PostgresBackend` (psycopg 3, the optional ``postgresql`` extra) takes connections from
  a ``psycopg_pool.ConnectionPool`` in autocommit mode (a read is one statement; a write is an
  explicit transaction) and translates each statement once (cached): ``?`` becomes ``%s``
  (outside string literals), ``group_concat(`` becomes ``string_agg(``, and ``column GLOB ?``
  becomes ``column LIKE <the GLOB pattern rewritten as a LIKE pattern>`` -- the rewrite is an
  immutable expression of the bound value, folded by the planner, so a prefix pattern still
  uses the column's index. The schema's DDL is translated too (:meth:`Backend.ddl`): 64-bit
  integers, identity primary keys, ``DOUBLE PRECISION``, and every text column ``COLLATE "C"``
  -- byte order on UTF-8, which is what SQLite's BINARY collation compares, so ranges, equality
  and wildcards match the same rows on both, and ``LIKE 'abc%'`` can use a B-tree index.
  PostgreSQL text cannot hold NUL characters: they are dropped from bound values.
* :meth:`Backend.snapshot` reads the whole index as of one moment (a SQLite read transaction:
  WAL lets the archive go on writing meanwhile; a ``REPEATABLE READ`` one on PostgreSQL), and
  :meth:`Backend.copy_rows` bulk-loads rows as they are, primary keys included (``executemany``;
  ``COPY`` on PostgreSQL): what :mod:`dicomnet.archive.migrate` moves an index with.
* :meth:`Backend.schema_lock` serialises schema creation between processes (``BEGIN
  IMMEDIATE`` already does on SQLite; a transaction-scoped advisory lock on PostgreSQL, so two
  nodes starting on an empty database create it once).

Several processes on one PostgreSQL database (archive nodes): the per-process write lock does
not order them, so :meth:`Backend.lock_key` takes a transaction-scoped advisory lock on a name
(the index locks each Study Instance UID it writes: two nodes storing one study never both
decide it is new); a deadlock or serialization failure the server breaks is
:attr:`Backend.retryable` (the index runs the transaction again). :meth:`Backend.lease` holds a
session advisory lock on its own connection for as long as a node runs: the server drops it
when the node's connection dies, so a killed node never leaves it behind; a server restart
drops it too, and the first request that reaches the server again takes it back
(:meth:`Lease.renew`; an error is logged if another process took the name meanwhile).

A database that cannot be reached (refused, reset, a server shutting down, no pooled
connection within the wait) raises :class:`~dicomnet.archive.models.IndexUnavailableError`
(answered A700: try again). While the server counts as gone, each request first makes one direct connection attempt
(refused at once while it is away: the peer gets its refusal without waiting; C-GET/C-MOVE
answer A701/A702); the first that succeeds replaces the pool, whose connections died with the
server, and takes the leases again -- service resumes with the first request after the server
is back, with no reconnect loop of our own.

:func:`open_backend` chooses by the location: ``postgresql://...`` / ``postgres://...`` (a
libpq connection URI), ``sqlite:PATH``, or a plain file path (SQLite).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from dicomnet.archive.models import IndexUnavailableError

__all__ = [
    "Backend",
    "Connection",
    "Cursor",
    "Lease",
    "PostgresBackend",
    "SQLiteBackend",
    "is_postgres",
    "open_backend",
    "printable_location",
    "translate_ddl",
    "translate_sql",
]


class Cursor(Protocol):
    """The result of :meth:`Connection.execute`."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the index's SQL runs on inside a transaction (SQLite dialect, ``?`` parameters)."""

    def execute(self, sql: str, params: Sequence[object] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, params: Iterable[Sequence[object]], /) -> object: ...


class Backend(ABC):
    """A database holding an archive index (see the module docstring)."""

    #: ``"sqlite"`` or ``"postgresql"``
    name: str
    #: the exceptions a statement can raise (a failed query becomes a QueryError)
    errors: tuple[type[Exception], ...]

    #: errors after which the whole transaction may simply run again (deadlock broken...)
    retryable: tuple[type[Exception], ...] = ()

    #: one write transaction at a time holds the whole database (SQLite's ``BEGIN IMMEDIATE``):
    #: a row read inside it cannot change or go before the transaction ends
    single_writer: bool = False

    def __init__(self) -> None:
        self.write_lock = threading.Lock()

    @abstractmethod
    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement (outside any write transaction of this thread)."""

    @abstractmethod
    def transaction(self, *, pipeline: bool = False) -> AbstractContextManager[Connection]:
        """A write transaction: commit at the end of the block, rollback on an exception.
        ``pipeline``: statements may be sent before the results of earlier ones are read
        (PostgreSQL's pipeline mode: one round trip for many statements; an error surfaces
        when a result is read or at the end). No effect where statements run in-process."""

    @abstractmethod
    def tables(self) -> set[str]:
        """The names of the tables in the index's schema."""

    def ddl(self, statement: str) -> str:
        """One DDL statement of :data:`dicomnet.archive.schema.DDL` in this dialect."""
        return statement

    def schema_lock(self, conn: Connection) -> None:
        """Serialise schema creation with other processes (inside :meth:`transaction`; SQLite's
        ``BEGIN IMMEDIATE`` already does: nothing more to do)."""
        return None

    def lock_key(self, conn: Connection, key: str) -> None:
        """Inside :meth:`transaction`: hold a lock on ``key`` until it ends, against other
        processes writing the same database (SQLite's single writer already is one)."""
        return None

    def lease(self, name: str) -> Lease | None:
        """Hold ``name`` against every other process on this database for as long as the
        returned lease is open; None when another process holds it. (SQLite: a database of one
        host, whose folder lock already is the lease.)"""
        return Lease(None)

    @abstractmethod
    def indexes(self) -> set[str]:
        """The names of the indexes in the index's schema (those of constraints included)."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Connection]:
        """A read-only view of the whole index as of one moment, for as long as the block runs
        (other connections may write meanwhile); nothing it does is kept."""

    def copy_rows(self, conn: Connection, table: str, columns: Sequence[str],
                  rows: Iterable[Sequence[object]]) -> int:  # fmt: skip
        """Insert ``rows`` (values of ``columns``, primary keys included) into ``table``
        inside :meth:`transaction`; returns how many. One ``executemany`` here."""
        sql = (f"INSERT INTO {_identifier(table)} ({', '.join(map(_identifier, columns))}) "
               f"VALUES ({', '.join('?' * len(columns))})")  # fmt: skip
        batch = [tuple(row) for row in rows]
        conn.executemany(sql, batch)
        return len(batch)

    @abstractmethod
    def setting(self, name: str) -> object:
        """A database setting (SQLite ``PRAGMA name``, PostgreSQL ``current_setting``)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""


class Lease:
    """A name held by this process (:meth:`Backend.lease`) until :meth:`close`. ``hold``
    takes the name again on a new connection (None: another process holds it now), for
    :meth:`renew`; ``on_close`` hears of the close."""

    def __init__(self, conn: Any, name: str = "", hold: Callable[[], Any] | None = None,
                 on_close: Callable[[Lease], None] | None = None) -> None:  # fmt: skip
        self._conn = conn
        self.name = name
        self._hold = hold
        self._on_close = on_close

    def renew(self) -> bool:
        """After the database server came back (a restart drops every session and its
        locks): hold the name again. False when another process took it meanwhile;
        ConnectionError when the server cannot be reached."""
        if self._hold is None or self._conn is None:
            return True
        _close_quietly(self._conn)
        self._conn = conn = self._hold()
        return conn is not None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _close_quietly(conn)
            if self._on_close is not None:
                self._on_close(self)


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # the connection is gone already: so is the lease
        pass


class SQLiteBackend(Backend):
    """The embedded index: one SQLite file, one connection per thread (WAL)."""

    name = "sqlite"
    errors = (sqlite3.Error,)
    single_writer = True

    def __init__(self, path: str, *, durable: bool = False, timeout: float = 30.0) -> None:
        super().__init__()
        if path == ":memory:" or path.startswith("file:"):
            raise ValueError("ArchiveIndex needs a file path (connections are per thread)")
        self.path = path
        self.durable = durable
        self._timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._closed = False

    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise sqlite3.ProgrammingError("ArchiveIndex is closed")
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
        conn.execute("PRAGMA temp_store=MEMORY")
        # a small page cache per thread's connection (the OS caches the file for all)
        conn.execute("PRAGMA cache_size=-4000")
        self._local.conn = conn
        with self._conn_lock:
            self._connections.append(conn)
        return conn

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.conn().execute(sql, params).fetchall()

    @contextmanager
    def transaction(self, *, pipeline: bool = False) -> Iterator[Connection]:
        conn = self.conn()
        with self.write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        conn = self.conn()
        conn.execute("BEGIN DEFERRED")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts
            yield conn
        finally:
            conn.execute("ROLLBACK")

    def tables(self) -> set[str]:
        rows = self.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(r[0]) for r in rows}

    def indexes(self) -> set[str]:
        rows = self.fetch("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {str(r[0]) for r in rows}

    def setting(self, name: str) -> object:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a pragma name: {name!r}")
        row = self.conn().execute(f"PRAGMA {name}").fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self._closed = True
        with self._conn_lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()


# --- PostgreSQL ----------------------------------------------------------------------------------

# The GLOB pattern (``*``, ``?``; a literal ``[`` written ``[[]`` by matching.glob_escape) as a
# LIKE pattern with the default escape ``\``: ``[[]`` back to ``[``, LIKE's own metacharacters
# escaped, then the wildcards translated.
_GLOB_AS_LIKE = (
    "replace(replace(replace(replace(replace(replace(CAST(? AS text), '[[]', '['), "
    "'\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%'), '?', '_')"
)
_GLOB_RE = re.compile(r"(\S+) GLOB \?")


@functools.lru_cache(maxsize=4096)
@functools.lru_cache(maxsize=1024)
def translate_sql(sql: str) -> str:
    """One statement of the index (SQLite dialect) for PostgreSQL via psycopg (see the module
    docstring); cached: the index runs the same few texts all the time."""
    sql = _GLOB_RE.sub(lambda m: f"{m.group(1)} LIKE {_GLOB_AS_LIKE}", sql)
    sql = sql.replace("group_concat(", "string_agg(").replace("BEGIN IMMEDIATE", "BEGIN")
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted  # '' inside a literal toggles twice: still inside
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


_DDL_RULES = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
)


def translate_ddl(statement: str) -> str:
    """One DDL statement of the schema for PostgreSQL (see the module docstring)."""
    for pattern, replacement in _DDL_RULES:
        statement = pattern.sub(replacement, statement)
    return statement


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")


def _identifier(name: str) -> str:
    """A table or column name put into SQL text: checked, never quoted from outside."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a table or column name: {name!r}")
    return name


def _param(value: object) -> object:
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def _params(params: Sequence[object]) -> list[object]:
    return [_param(p) for p in params]


class _PgConnection:
    """A psycopg connection speaking the index's dialect (:class:`Connection`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = (), /) -> Cursor:
        cursor: Cursor = self._conn.execute(translate_sql(sql), _params(params))
        return cursor

    def executemany(self, sql: str, params: Iterable[Sequence[object]], /) -> object:
        with self._conn.cursor() as cur:
            cur.executemany(translate_sql(sql), [_params(p) for p in params])
        return None


#: the advisory lock key taken while the schema is created (any fixed 64-bit number)
_SCHEMA_LOCK_KEY = 0x6469636F6D6E6574  # "dicomnet"


_LOG = logging.getLogger("dicomnet.archive.backend")

#: the advisory lock keys of :meth:`PostgresBackend.lock_key` and :meth:`PostgresBackend.lease`
#: are 64-bit hashes of the name with these seeds (two spaces: a lease never waits on a key)
_KEY_SEED, _LEASE_SEED = 0, 1
#: the server's TCP keepalive on a lease's connection (PostgreSQL 19.3.1: idle s, interval s,
#: lost probes)
_LEASE_KEEPALIVE = (("tcp_keepalives_idle", "30"), ("tcp_keepalives_interval", "10"),
                    ("tcp_keepalives_count", "3"))  # fmt: skip
#: the connect timeout of the probe made while the server counts as gone (s)
_PROBE_TIMEOUT = 2
#: SQLSTATEs of a server that cannot serve now (PostgreSQL Appendix A: class 08 connection
#: exception; 57P01-57P03 shutting down, crashed, not accepting connections yet)
_GONE_STATES = ("08", "57P01", "57P02", "57P03")


class PostgresBackend(Backend):
    """An index in a PostgreSQL database (psycopg 3 and psycopg-pool; ``pip install
    dicomnet[postgresql]``). ``url``: a libpq connection URI. ``wait``: how long a statement
    waits for a pooled connection before the database counts as unavailable."""

    name = "postgresql"

    def __init__(self, url: str, *, timeout: float = 30.0, max_connections: int = 16,
                 wait: float = 10.0) -> None:  # fmt: skip
        super().__init__()
        try:
            import psycopg
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError(
                "a PostgreSQL index needs psycopg 3 and psycopg-pool: "
                "pip install 'dicomnet[postgresql]'"
            ) from exc
        self.url = url
        self.errors = (psycopg.Error,)
        self.retryable = (psycopg.errors.TransactionRollback,)  # 40001, 40P01
        self._psycopg = psycopg
        self._operational = psycopg.OperationalError
        self._pool_timeout = PoolTimeout
        self._wait = wait
        self._down = False  # the server was found gone (see _connection)
        self._revive_lock = threading.Lock()
        self._leases: set[Lease] = set()
        self._connect_timeout = max(1, int(timeout))
        try:
            # one direct connection first: an unreachable database fails now, with libpq's
            # reason (the pool would retry until its timeout)
            psycopg.connect(url, connect_timeout=self._connect_timeout).close()
        except psycopg.Error as exc:
            raise ConnectionError(f"cannot connect to the index database: {exc}") from exc

        def new_pool() -> Any:
            return ConnectionPool(url, min_size=1, max_size=max_connections,
                                  kwargs={"autocommit": True,
                                          "connect_timeout": self._connect_timeout},
                                  timeout=timeout, open=False,
                                  name="dicomnet-index")  # fmt: skip

        self._new_pool = new_pool
        self._pool = new_pool()
        try:
            # wait=True: an unreachable database fails here, with libpq's reason
            self._pool.open(wait=True, timeout=timeout)
        except Exception as exc:
            self._pool.close()
            raise ConnectionError(f"cannot connect to the index database: {exc}") from exc

    def _unavailable(self, exc: BaseException, pool: Any) -> IndexUnavailableError | None:
        """The error to raise when ``exc`` (from a connection of ``pool``) means the server
        cannot be reached (see the module docstring); None for other errors. The server
        counts as gone unless ``pool`` was already replaced (a connection of the old one)."""
        if isinstance(exc, self._pool_timeout):
            gone = True
        elif isinstance(exc, self._operational) and not isinstance(exc, self.retryable):
            state = exc.sqlstate
            gone = state is None or state.startswith(_GONE_STATES)
        else:
            gone = False
        if not gone:
            return None
        if pool is self._pool:
            self._down = True
        return IndexUnavailableError(f"the index database is unavailable: {exc}")

    def _revive(self) -> None:
        """A request while the server counts as gone: one direct connection attempt (refused
        at once while it is away: the peer gets A700 without waiting); when it succeeds, a
        fresh pool replaces the one whose connections died with the server (the old pool
        would only retry on its own growing back-off), and the leases are taken again."""
        with self._revive_lock:
            if not self._down:
                return  # another thread did it meanwhile
            try:
                self._psycopg.connect(self.url, connect_timeout=_PROBE_TIMEOUT).close()
            except self._psycopg.Error as exc:
                raise IndexUnavailableError(
                    f"the index database is unavailable: {exc}") from exc  # fmt: skip
            old, self._pool = self._pool, self._new_pool()
            self._pool.open(wait=False)
            self._down = False
            try:
                old.close(timeout=0)
            except Exception:  # pragma: no cover - its connections are dead anyway
                pass
            self._renew_leases()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection; a server that cannot be reached raises
        IndexUnavailableError (see :meth:`_unavailable` and :meth:`_revive`)."""
        if self._down:
            self._revive()
        pool = self._pool
        try:
            with pool.connection(timeout=self._wait) as conn:
                yield conn
        except Exception as exc:
            gone = self._unavailable(exc, pool)
            if gone is None:
                raise
            raise gone from exc

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            rows: list[tuple[Any, ...]] = conn.execute(translate_sql(sql),
                                                       _params(params)).fetchall()  # fmt: skip
            return rows

    @contextmanager
    def transaction(self, *, pipeline: bool = False) -> Iterator[Connection]:
        # no process-wide lock: the server orders concurrent writers (row locks, the index's
        # per-study advisory locks), several at once from one node as from several nodes
        with self._connection() as conn:
            if not pipeline:
                with conn.transaction():
                    yield _PgConnection(conn)
                return
            # psycopg's pipeline mode (libpq >= 14): statements go out as they are executed,
            # a result read waits for the server once for everything sent before it
            with conn.pipeline(), conn.transaction():
                yield _PgConnection(conn)

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        with self._connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _PgConnection(conn)

    def copy_rows(self, conn: Connection, table: str, columns: Sequence[str],
                  rows: Iterable[Sequence[object]]) -> int:  # fmt: skip
        """``COPY ... FROM STDIN`` (several times faster than inserts)."""
        if not isinstance(conn, _PgConnection):
            return super().copy_rows(conn, table, columns, rows)
        n = 0
        statement = (f"COPY {_identifier(table)} ({', '.join(map(_identifier, columns))}) "
                     "FROM STDIN")  # fmt: skip
        with conn._conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(_params(row))
                n += 1
        return n

    def schema_lock(self, conn: Connection) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK_KEY,))

    def lock_key(self, conn: Connection, key: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, ?))", (key, _KEY_SEED))

    def lease(self, name: str) -> Lease | None:
        conn = self._hold(name)
        if conn is None:
            return None
        lease = Lease(conn, name, functools.partial(self._hold, name), self._leases.discard)
        self._leases.add(lease)
        return lease

    def _renew_leases(self) -> None:
        """The server is back (:meth:`_revive`): take the leases again (see the module
        docstring)."""
        for lease in list(self._leases):
            try:
                if not lease.renew():
                    _LOG.error("the lease %r is held by another process since the index "
                               "database came back", lease.name)  # fmt: skip
            except ConnectionError as exc:  # gone again: the next revival tries again
                _LOG.warning("the lease %r could not be taken again: %s", lease.name, exc)
                self._down = True

    def _hold(self, name: str) -> Any:
        """A new connection holding the session advisory lock of ``name``, or None when
        another session holds it."""
        try:
            conn = self._psycopg.connect(self.url, autocommit=True,
                                         connect_timeout=self._connect_timeout)  # fmt: skip
        except self._psycopg.Error as exc:
            raise ConnectionError(f"cannot connect to the index database: {exc}") from exc
        # a node whose host dies (no FIN ever comes) loses its lease within about a minute,
        # not after the system's two-hour keepalive default (no effect on a Unix socket)
        for setting, value in _LEASE_KEEPALIVE:
            conn.execute("SELECT set_config(%s, %s, false)", (setting, value))
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, %s))",
                           (name, _LEASE_SEED)).fetchone()  # fmt: skip
        if not (row and row[0]):
            conn.close()
            return None
        return conn

    def ddl(self, statement: str) -> str:
        return translate_ddl(statement)

    def tables(self) -> set[str]:
        rows = self.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {str(r[0]) for r in rows}

    def indexes(self) -> set[str]:
        rows = self.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        return {str(r[0]) for r in rows}

    def setting(self, name: str) -> object:
        rows = self.fetch("SELECT current_setting(?)", (name,))
        return rows[0][0] if rows else None

    def close(self) -> None:
        self._pool.close()


def is_postgres(location: str) -> bool:
    """Whether an index location names a PostgreSQL database."""
    return location.startswith(("postgresql://", "postgres://"))


def printable_location(location: str) -> str:
    """An index location fit to print or log: a ``postgresql://`` URI's password replaced
    by ``***``."""
    if not is_postgres(location):
        return location
    parts = urlsplit(location)
    if parts.password is None:
        return location
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def open_backend(location: str | os.PathLike[str], *, durable: bool = False,
                 timeout: float = 30.0) -> Backend:  # fmt: skip
    """The backend of an index location (see the module docstring)."""
    loc = os.fspath(location)
    if is_postgres(loc):
        return PostgresBackend(loc, timeout=timeout)
    if loc.startswith("sqlite:"):
        loc = loc[len("sqlite:"):]
    return SQLiteBackend(loc, durable=durable, timeout=timeout)
