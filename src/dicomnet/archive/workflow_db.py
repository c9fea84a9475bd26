"""The archive's workflow database: ``<storage>/workflow.sqlite``.

Theory of operation
-------------------
The workflow services keep what they acknowledged beside the index, in one SQLite file, each in
tables of its own: Modality Performed Procedure Steps (PS3.4 F, :mod:`dicomnet.archive.mpps`)
and Storage Commitment requests and their reports (PS3.4 J, :mod:`dicomnet.archive.commitment`).
Every connection to it is opened the same way: write-ahead log (readers never wait for the
writer), autocommit mode so that each service brackets its own ``BEGIN IMMEDIATE``
transactions, usable from the service's threads under the service's own lock, and
``synchronous=FULL`` when what was acknowledged must survive a power cut (``NORMAL``: a crash
of the process still loses nothing).
"""

from __future__ import annotations

import os
import sqlite3

__all__ = ["WORKFLOW_DB", "connect", "workflow_path"]

WORKFLOW_DB = "workflow.sqlite"


def workflow_path(storage_root: str | os.PathLike[str]) -> str:
    """The workflow database of the archive stored under ``storage_root``."""
    return os.path.join(os.fspath(storage_root), WORKFLOW_DB)


def connect(path: str, *, durable: bool = True, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection to the workflow database at ``path`` (see the module docstring)."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    except BaseException:
        conn.close()
        raise
    return conn
