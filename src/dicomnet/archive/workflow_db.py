"""The archive's workflow database: ``<storage>/workflow.sqlite``, or the index's PostgreSQL
database.

Theory of operation
-------------------
The workflow services keep what they acknowledged beside the index, each in tables of its own:
Modality Performed Procedure Steps (PS3.4 F, :mod:`dicomnet.archive.mpps`) and Storage
Commitment requests and their reports (PS3.4 J, :mod:`dicomnet.archive.commitment`). They run
their SQL on a :class:`~dicomnet.archive.backend.Backend`, written once in the dialect the
index uses (SQLite's; ``?`` placeholders, ``ON CONFLICT``, ``RETURNING``, no ``rowid``) and
translated for PostgreSQL by the backend. :func:`open_workflow` chooses the database by the
location it is given:

* a storage folder or a file path (``sqlite:PATH`` too): one SQLite file, normally
  ``<storage>/workflow.sqlite`` -- a database of one host, shared by the processes of one
  server (``qrscp --workers``). Its connections are opened as they always were: write-ahead
  log (readers never wait for the writer), ``BEGIN IMMEDIATE`` transactions, and
  ``synchronous=FULL`` when what was acknowledged must survive a power cut (``NORMAL``: a
  crash of the process still loses nothing); a new file's directory entry is made durable too.
* a ``postgresql://`` URL (the index's, for archive nodes on several hosts): the tables are
  created in that database on first use, their DDL translated as the index's is
  (:func:`create_tables`: under the backend's schema lock, so nodes starting at once create
  them once). The services open a small pool of their own (not the index's: a large
  commitment request streamed into one transaction must not hold the index's writers up).
* a :class:`~dicomnet.archive.backend.Backend` already open: used as it is, and not closed by
  the service.

Ordering between processes: on SQLite ``BEGIN IMMEDIATE`` serialises every writer of the file.
On PostgreSQL writers of several nodes run at once (READ COMMITTED), so the services' SQL makes
each decision inside the statement that acts on it (``INSERT ... ON CONFLICT DO NOTHING
RETURNING``, ``UPDATE ... WHERE <expected state> RETURNING``) or takes
:meth:`~dicomnet.archive.backend.Backend.lock_key` on the name it decides about.
:func:`exclusive` is a lock held across transactions (the MPPS forwarder's turn): a ``flock``
beside the SQLite file, or a session advisory lock on a connection of its own on PostgreSQL
(the server drops it if the holder dies).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeAlias

from dicomnet.archive.backend import Backend, PostgresBackend, SQLiteBackend, is_postgres

__all__ = [
    "WORKFLOW_DB",
    "WorkflowLocation",
    "create_tables",
    "exclusive",
    "location_text",
    "open_service",
    "open_workflow",
    "workflow_path",
]

WORKFLOW_DB = "workflow.sqlite"

#: Where a workflow service keeps its state (see the module docstring).
WorkflowLocation: TypeAlias = "str | os.PathLike[str] | Backend"

#: the pool of a service's own PostgreSQL backend (the service's threads and handlers)
_PG_CONNECTIONS = 4
#: SQLite-only clauses of the workflow DDL, dropped for another database
_SQLITE_ONLY = re.compile(r"\s+WITHOUT ROWID\b|\s+AUTOINCREMENT\b")


def workflow_path(storage_root: str | os.PathLike[str]) -> str:
    """The workflow database of the archive stored under ``storage_root``."""
    return os.path.join(os.fspath(storage_root), WORKFLOW_DB)


def open_workflow(location: WorkflowLocation, *, durable: bool = True,
                  timeout: float = 30.0) -> tuple[Backend, bool]:  # fmt: skip
    """The backend of a workflow location and whether the caller owns it (closes it): see the
    module docstring. A directory means ``<directory>/workflow.sqlite``."""
    if isinstance(location, Backend):
        return location, False
    loc = os.fspath(location)
    if is_postgres(loc):
        return PostgresBackend(loc, timeout=timeout, max_connections=_PG_CONNECTIONS), True
    if loc.startswith("sqlite:"):
        loc = loc[len("sqlite:") :]
    if os.path.isdir(loc):
        loc = workflow_path(loc)
    new = not os.path.exists(loc)
    backend = SQLiteBackend(loc, durable=durable, timeout=timeout)
    if new and durable:
        try:
            backend.conn()  # the file exists from here on
        except BaseException:
            backend.close()
            raise
        _fsync_directory(os.path.dirname(os.path.abspath(loc)))
    return backend, True


def create_tables(backend: Backend, statements: Sequence[str]) -> None:
    """Run the ``CREATE ... IF NOT EXISTS`` statements of a service (SQLite dialect) in one
    transaction, translated for the backend, under its schema lock."""
    with backend.transaction() as conn:
        backend.schema_lock(conn)
        for statement in statements:
            if backend.name != "sqlite":
                statement = backend.ddl(_SQLITE_ONLY.sub("", statement))
            conn.execute(statement)


def open_service(location: WorkflowLocation, statements: Sequence[str], *,
                 durable: bool = True, timeout: float = 30.0) -> tuple[Backend, bool]:  # fmt: skip
    """:func:`open_workflow`, then :func:`create_tables` with a service's DDL; a backend opened
    here is closed again if that fails. Returns what :func:`open_workflow` returns."""
    backend, owned = open_workflow(location, durable=durable, timeout=timeout)
    try:
        create_tables(backend, statements)
    except BaseException:
        if owned:
            backend.close()
        raise
    return backend, owned


def location_text(backend: Backend) -> str:
    """Where a backend keeps the state, for messages (no password of a URL)."""
    if isinstance(backend, SQLiteBackend):
        return backend.path
    return f"the {backend.name} database"


@contextmanager
def exclusive(backend: Backend, name: str) -> Iterator[None]:
    """``name`` held against every other process on the database for the block, waiting for
    it (see the module docstring)."""
    if isinstance(backend, PostgresBackend):
        with _advisory(backend.url, name):
            yield
        return
    path = backend.path if isinstance(backend, SQLiteBackend) else None
    if path is None:  # pragma: no cover - another backend: one process is all there is
        yield
        return
    with _file_lock(f"{path}.{name}.lock"):
        yield


@contextmanager
def _advisory(url: str, name: str) -> Iterator[None]:
    # lazy: psycopg, only with a PostgreSQL backend (which needed it to open)
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=30) as conn:
        # the key space of Backend.lease (seed 1): a name of its own, never a node's lease
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 1))", (name,))
        yield  # closing the connection drops the lock (and so does the server if we die)


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
