"""The Storage Commitment workflow database, ``<storage>/workflow.sqlite``: :class:`Workflow`.

Theory of operation
-------------------
Every state change of a commitment is written here first, so that nothing we answered
Success to is lost by a crash or a restart. Table ``commitment`` holds one row per request
(its Transaction UID, requestor AE title, state, attempts, owner); ``commitment_item`` its
references with their verdicts (NULL: not checked, 0: committed, else the Failure Reason).
One connection behind a lock, WAL journal, ``synchronous=FULL``.

:meth:`Workflow.accept` reads a request as a stream into both tables in one transaction,
committed before the N-ACTION-RSP (PS3.4 J.3.2.1.3): a malformed request rolls it back and
nothing is kept; a reused Transaction UID fails every reference with 0131H at once (PS3.4
J.3.2.1.2). A commitment then goes ``accepted`` (stored) -> ``checked`` (every reference has
its verdict) -> ``delivered`` (its references deleted; the row stays for ``keep_done`` so that
a reuse of its UID is still recognized), or ``waiting`` (no address for the requestor: the
report goes on its next association) or ``failed`` (out of attempts). A report that must be
retried is rebuilt from the stored verdicts, not re-checked.

Ownership: each row names its owner, ``"<pid>:<token>"`` of the service handling it
(:func:`new_owner`). :meth:`Workflow.claim` takes over, in one transaction, only the pending
commitments whose owner is gone -- a process that ended, or a service of this process that
was closed (:func:`release_owner`) -- so several server processes on one database (``qrscp
--workers``) never send the same report twice, and none is left behind. Spool files of a
process that died mid-send are removed the same way (:func:`remove_stale_spool_files`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomnet.archive.commitment.check import FailureReason
from dicomnet.archive.commitment.codec import (
    REFERENCED_SOP_SEQUENCE,
    SPOOL_PREFIX,
    CommitmentRequest,
    MalformedRequest,
)
from dicomnet.dimse.status import Status

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "PAGE",
    "PENDING",
    "Row",
    "Workflow",
    "new_owner",
    "release_owner",
    "remove_stale_spool_files",
]

PAGE = 500  # references read, checked, written per database round trip

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commitment (
    id INTEGER PRIMARY KEY,
    transaction_uid TEXT NOT NULL,
    requestor_aet TEXT NOT NULL,
    state TEXT NOT NULL,          -- receiving, accepted, checked, waiting, delivered, failed
    item_count INTEGER NOT NULL DEFAULT 0,
    failed_count INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    owner TEXT,                   -- "<pid>:<token>" of the service handling it
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS commitment_transaction_ix ON commitment(transaction_uid);
CREATE INDEX IF NOT EXISTS commitment_state_ix ON commitment(state, requestor_aet);
CREATE TABLE IF NOT EXISTS commitment_item (
    commitment_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    sop_class_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    reason INTEGER,               -- NULL: not checked; 0: committed; else Failure Reason
    PRIMARY KEY (commitment_id, seq)
) WITHOUT ROWID;
"""

#: States with a report still to send.
PENDING = ("accepted", "checked", "waiting")
# the owner tokens of the services open in this process
_OPEN_OWNERS: set[str] = set()


def new_owner() -> str:
    """A fresh owner token, ``"<pid>:<token>"``, for a service of this process: its
    commitments are its own until :func:`release_owner`."""
    owner = f"{os.getpid()}:{uuid.uuid4().hex}"
    _OPEN_OWNERS.add(owner)
    return owner


def release_owner(owner: str) -> None:
    """The service closed: another one (of this process or another) may take its work over."""
    _OPEN_OWNERS.discard(owner)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, not ours to signal
        return True
    return True


def _owner_alive(owner: object) -> bool:
    """Whether the service that owns a commitment still runs: in this process, one not closed;
    elsewhere, a process with that pid (a pid reused by an unrelated process keeps the
    commitment until that one ends too)."""
    if not isinstance(owner, str) or ":" not in owner:
        return False
    pid_text = owner.split(":", 1)[0]
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner in _OPEN_OWNERS
    return _pid_alive(pid)


@dataclass(slots=True)
class Row:
    """One commitment, as the service needs it."""

    id: int
    transaction_uid: str
    requestor_aet: str
    state: str
    item_count: int
    attempts: int
    created: float


class Workflow:
    """``<storage>/workflow.sqlite``: the commitments and their references. One connection
    behind a lock (writes are short except the insert of a large request, which holds it for
    the time of one streamed transaction)."""

    def __init__(self, path: str) -> None:
        # lazy: sqlite3 (~5 ms) is only needed by the SCP, not by stgcmtscu's codec imports

        self.path = path
        self.lock = threading.Lock()
        from dicomnet.archive.workflow_db import connect  # lazy: sqlite3, as above

        # the request is on disk before the N-ACTION-RSP says Success (PS3.4 J.3.2.1.3)
        self.conn: sqlite3.Connection = connect(path, durable=True, timeout=30.0)
        with self.lock:
            self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def accept(
        self, request: CommitmentRequest, aet: str, owner: str, limit: int
    ) -> tuple[int, str, bool]:
        """Read ``request`` as a stream into the database, in one transaction (committed
        before the N-ACTION-RSP, PS3.4 J.3.2.1.3); at most ``limit`` references, else 0213H.
        (commitment id, Transaction UID, duplicate Transaction UID); a malformed request
        raises :class:`~dicomnet.archive.commitment.codec.MalformedRequest`, nothing kept."""
        now = time.time()

        def rows(cid: int) -> Iterator[tuple[int, int, str, str]]:
            for seq, (sop_class, sop_instance) in enumerate(request.items()):
                if seq >= limit:
                    raise MalformedRequest(Status.RESOURCE_LIMITATION,
                                           f"more than {limit} references")  # fmt: skip
                yield cid, seq, sop_class, sop_instance

        with self.transaction() as c:
            cur = c.execute("INSERT INTO commitment (transaction_uid, requestor_aet, state, "
                            "created, updated, owner) VALUES ('', ?, 'receiving', ?, ?, ?)",
                            (aet, now, now, owner))  # fmt: skip
            cid = int(cur.lastrowid or 0)
            c.executemany("INSERT INTO commitment_item (commitment_id, seq, sop_class_uid, "
                          "sop_instance_uid) VALUES (?, ?, ?, ?)", rows(cid))  # fmt: skip
            if not request.saw_sequence:
                raise MalformedRequest(Status.MISSING_ATTRIBUTE,
                                       "Referenced SOP Sequence (0008,1199) missing",
                                       REFERENCED_SOP_SEQUENCE)  # fmt: skip
            if request.count == 0:
                raise MalformedRequest(Status.MISSING_ATTRIBUTE_VALUE,
                                       "Referenced SOP Sequence (0008,1199) empty",
                                       REFERENCED_SOP_SEQUENCE)  # fmt: skip
            txn = request.transaction_uid
            # PS3.4 J.3.2.1.2 / J.3.3.1.2: a Transaction UID is used once (PS3.3 C.14.1.1: 0131H)
            duplicate = c.execute("SELECT 1 FROM commitment WHERE transaction_uid = ? AND id != ? "
                                  "LIMIT 1", (txn, cid)).fetchone() is not None  # fmt: skip
            if duplicate:
                c.execute("UPDATE commitment_item SET reason = ? WHERE commitment_id = ?",
                          (int(FailureReason.DUPLICATE_TRANSACTION_UID), cid))  # fmt: skip
            c.execute("UPDATE commitment SET transaction_uid = ?, item_count = ?, state = "
                      "'accepted' WHERE id = ?", (txn, request.count, cid))  # fmt: skip
        return cid, txn, duplicate

    def latest_state(self, transaction_uid: str) -> str | None:
        """The state of the latest commitment with this Transaction UID (None: unknown)."""
        with self.lock:
            r = self.conn.execute("SELECT state FROM commitment WHERE transaction_uid = ? "
                                  "ORDER BY id DESC LIMIT 1", (transaction_uid,)).fetchone()  # fmt: skip
        return None if r is None else str(r[0])

    def row(self, cid: int) -> Row | None:
        with self.lock:
            r = self.conn.execute(
                "SELECT id, transaction_uid, requestor_aet, state, item_count, attempts, created "
                "FROM commitment WHERE id = ?", (cid,)).fetchone()  # fmt: skip
        return None if r is None else Row(*r)

    def set_state(self, cid: int, state: str, error: str | None = None,
                  next_attempt: float | None = None) -> None:  # fmt: skip
        with self.transaction() as c:
            c.execute("UPDATE commitment SET state = ?, last_error = ?, next_attempt = ?, "
                      "updated = ? WHERE id = ?",
                      (state, error, next_attempt, time.time(), cid))  # fmt: skip

    def delivered(self, cid: int) -> None:
        """The report went out: its references are no longer needed (the transaction row stays
        for ``keep_done``, so that a reuse of its UID is still recognized)."""
        with self.transaction() as c:
            c.execute("UPDATE commitment SET state = 'delivered', last_error = NULL, "
                      "next_attempt = NULL, updated = ? WHERE id = ?", (time.time(), cid))  # fmt: skip
            c.execute("DELETE FROM commitment_item WHERE commitment_id = ?", (cid,))

    def failed_attempt(self, cid: int, error: str) -> int:
        with self.transaction() as c:
            c.execute("UPDATE commitment SET attempts = attempts + 1, last_error = ?, "
                      "updated = ? WHERE id = ?", (error, time.time(), cid))  # fmt: skip
            r = c.execute("SELECT attempts FROM commitment WHERE id = ?", (cid,)).fetchone()
        return int(r[0]) if r else 0

    def unchecked(self, cid: int, after: int) -> list[tuple[int, str, str]]:
        with self.lock:
            return self.conn.execute(
                "SELECT seq, sop_class_uid, sop_instance_uid FROM commitment_item WHERE "
                "commitment_id = ? AND seq > ? AND reason IS NULL ORDER BY seq LIMIT ?",
                (cid, after, PAGE)).fetchall()  # fmt: skip

    def set_reasons(self, cid: int, verdicts: list[tuple[int, int]]) -> None:
        with self.transaction() as c:
            c.executemany("UPDATE commitment_item SET reason = ? WHERE commitment_id = ? "
                          "AND seq = ?", [(reason, cid, seq) for seq, reason in verdicts])  # fmt: skip

    def checked(self, cid: int) -> int:
        """Every reference has its verdict: the state becomes ``checked``; the failure count."""
        with self.transaction() as c:
            failed = int(c.execute("SELECT COUNT(*) FROM commitment_item WHERE commitment_id = ? "
                                   "AND reason != 0", (cid,)).fetchone()[0])  # fmt: skip
            c.execute("UPDATE commitment SET state = 'checked', failed_count = ?, updated = ? "
                      "WHERE id = ? AND state = 'accepted'", (failed, time.time(), cid))  # fmt: skip
        return failed

    def counts(self, cid: int) -> tuple[int, int]:
        """(failed, committed) references of a checked commitment."""
        with self.lock:
            failed, ok = self.conn.execute(
                "SELECT COALESCE(SUM(reason != 0), 0), COALESCE(SUM(reason = 0), 0) FROM "
                "commitment_item WHERE commitment_id = ?", (cid,)).fetchone()  # fmt: skip
        return int(failed), int(ok)

    def references(self, cid: int, failed: bool) -> Iterator[tuple[str, str, int]]:
        """(class, instance, reason) of the failed or committed references, page by page."""
        cond = "reason != 0" if failed else "reason = 0"
        last = -1
        while True:
            with self.lock:
                page = self.conn.execute(
                    "SELECT seq, sop_class_uid, sop_instance_uid, reason FROM commitment_item "
                    f"WHERE commitment_id = ? AND seq > ? AND {cond} ORDER BY seq LIMIT ?",
                    (cid, last, PAGE)).fetchall()  # fmt: skip
            for _seq, sop_class, sop_instance, reason in page:
                yield str(sop_class), str(sop_instance), int(reason)
            if len(page) < PAGE:
                return
            last = int(page[-1][0])

    def take_waiting(self, cid: int, owner: str) -> bool:
        """Take a waiting commitment over to send it (state ``checked``, owned by us); False
        when another service (process) was first."""
        with self.transaction() as c:
            cur = c.execute("UPDATE commitment SET state = 'checked', owner = ?, updated = ? "
                            "WHERE id = ? AND state = 'waiting'", (owner, time.time(), cid))  # fmt: skip
        return cur.rowcount == 1

    def waiting_for(self, aet: str) -> list[int]:
        with self.lock:
            rows = self.conn.execute("SELECT id FROM commitment WHERE state = 'waiting' AND "
                                     "requestor_aet = ? ORDER BY id", (aet,)).fetchall()  # fmt: skip
        return [int(r[0]) for r in rows]

    def claim(self, owner: str) -> list[tuple[int, str, str]]:
        """Take over the pending commitments whose owner is gone (another process that
        ended, or a closed service of this one): (id, state, requestor AE title) of each.
        One transaction, so that server processes resuming at once share nothing."""
        with self.transaction() as c:
            rows = c.execute("SELECT id, state, requestor_aet, owner FROM commitment WHERE "
                             "state IN (?, ?, ?) ORDER BY id", PENDING).fetchall()  # fmt: skip
            taken = [(int(i), str(s), str(a)) for i, s, a, o in rows if not _owner_alive(o)]
            c.executemany("UPDATE commitment SET owner = ? WHERE id = ?",
                          [(owner, i) for i, _, _ in taken])  # fmt: skip
        return taken

    def purge(self, older_than: float) -> int:
        with self.transaction() as c:
            cur = c.execute("DELETE FROM commitment WHERE state = 'delivered' AND updated < ?",
                            (older_than,))  # fmt: skip
        return int(cur.rowcount)

    def retry_at(self, cid: int, error: str, when: float) -> None:
        """A failed attempt: the state stays (accepted or checked), the next one is due."""
        with self.transaction() as c:
            c.execute("UPDATE commitment SET last_error = ?, next_attempt = ?, updated = ? "
                      "WHERE id = ?", (error, when, time.time(), cid))  # fmt: skip


def remove_stale_spool_files(spool_dir: str) -> None:
    """Reports of a process that died mid-send (``.commitment-<pid>-*.tmp``)."""
    try:
        names = os.listdir(spool_dir)
    except OSError:
        return
    for name in names:
        if not (name.startswith(SPOOL_PREFIX) and name.endswith(".tmp")):
            continue
        pid_text = name[len(SPOOL_PREFIX) :].split("-")[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        if _pid_alive(int(pid_text)):
            continue  # still running (another worker process)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(spool_dir, name))
