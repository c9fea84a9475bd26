"""The Storage Commitment state in the workflow database: :class:`Workflow`.

Theory of operation
-------------------
Every state change of a commitment is written here first, so that nothing we answered
Success to is lost by a crash or a restart. Table ``commitment`` holds one row per request
(its Transaction UID, requestor AE title, state, attempts, owner); ``commitment_item`` its
references with their verdicts (NULL: not checked, 0: committed, else the Failure Reason).
They live in the workflow database (:mod:`~dicomnet.archive.workflow_db`):
``<storage>/workflow.sqlite`` (WAL journal, ``synchronous=FULL``), or the index's PostgreSQL
database when archive nodes share it.

:meth:`Workflow.accept` reads a request as a stream into both tables in one transaction,
committed before the N-ACTION-RSP (PS3.4 J.3.2.1.3): a malformed request rolls it back and
nothing is kept; a reused Transaction UID fails every reference with 0131H at once (PS3.4
J.3.2.1.2). A commitment then goes ``accepted`` (stored) -> ``checked`` (every reference has
its verdict) -> ``delivered`` (its references deleted; the row stays for ``keep_done`` so that
a reuse of its UID is still recognized), or ``waiting`` (no address for the requestor: the
report goes on its next association) or ``failed`` (out of attempts). A report that must be
retried is rebuilt from the stored verdicts, not re-checked.

Ownership: each row names its owner, the service handling it (:func:`new_owner`); a service
works only on rows it owns. :meth:`Workflow.claim` takes over only the pending commitments
whose owner is gone, each with a compare-and-set (``UPDATE ... WHERE id = ? AND owner = <the
gone owner> RETURNING id``): of several services claiming at once, on one host or several,
exactly one gets each row -- so no report is sent twice, and none is left behind. Whether an
owner is gone depends on the database:

* SQLite (one host: ``qrscp --workers``): the owner is ``"<pid>:<token>"``; it is gone when
  that process ended, or when it is this process and the service was closed
  (:func:`release_owner`).
* PostgreSQL (archive nodes on several hosts, where a pid means nothing): the owner is
  ``"<host>:<pid>:<token>"``, and each service holds a session advisory lock named after its
  owner (:meth:`~dicomnet.archive.backend.Backend.lease` ``"dicomnet-commitment:<owner>"``)
  for as long as it is open. The server drops the lock when the service closes or its
  connection dies -- the node was killed, its host went down (TCP keepalive: about a minute),
  or it lost the database -- so an owner is gone exactly when its lease can be taken
  (:meth:`Workflow.owner_gone`; the lease of a gone owner is never held again: tokens are
  unique). A node still running whose lease connection was lost finds its rows owned by
  another service and leaves them (the service re-reads the owner before each report; a
  report already on its way at that moment may go out twice -- delivery is at least once, as
  after any crash between sending a report and recording it).
  Running services adopt the work of gone ones periodically
  (:class:`~dicomnet.archive.commitment.service.CommitmentService` ``adopt_every``), not only
  at start-up, so the commitments of a node that dies for good are still reported.

Spool files of a process that died mid-send are removed by pid
(:func:`remove_stale_spool_files`): each node spools in a folder of its own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
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
    from dicomnet.archive.backend import Backend, Connection, Lease
    from dicomnet.archive.workflow_db import WorkflowLocation

__all__ = [
    "PAGE",
    "PENDING",
    "SCHEMA",
    "TABLES",
    "Row",
    "Workflow",
    "new_owner",
    "release_owner",
    "remove_stale_spool_files",
]

PAGE = 500  # references read, checked, written per database round trip

#: The DDL of the commitment tables (SQLite dialect), also what ``dicomnet archive migrate``
#: creates them on another database with.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS commitment (
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
    owner TEXT,                   -- the service handling it (new_owner)
    last_error TEXT
)""",
    "CREATE INDEX IF NOT EXISTS commitment_transaction_ix ON commitment(transaction_uid)",
    "CREATE INDEX IF NOT EXISTS commitment_state_ix ON commitment(state, requestor_aet)",
    """CREATE TABLE IF NOT EXISTS commitment_item (
    commitment_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    sop_class_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    reason INTEGER,               -- NULL: not checked; 0: committed; else Failure Reason
    PRIMARY KEY (commitment_id, seq)
) WITHOUT ROWID""",
)
#: The tables of :data:`SCHEMA`, parents first.
TABLES = ("commitment", "commitment_item")

#: States with a report still to send.
PENDING = ("accepted", "checked", "waiting")
#: the name of an owner's lease on a shared (PostgreSQL) database
LEASE_PREFIX = "dicomnet-commitment:"
# the owner tokens of the services open in this process
_OPEN_OWNERS: set[str] = set()


def new_owner(host: bool = False) -> str:
    """A fresh owner token for a service of this process, ``"<pid>:<token>"``, or with
    ``host`` ``"<host>:<pid>:<token>"`` (a database of several hosts): its commitments are its
    own until :func:`release_owner`."""
    owner = f"{os.getpid()}:{uuid.uuid4().hex}"
    if host:
        owner = f"{socket.gethostname() or 'host'}:{owner}"
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
    owner: str | None = None


_ROW = "id, transaction_uid, requestor_aet, state, item_count, attempts, created, owner"


class Workflow:
    """The commitments and their references in the workflow database at ``location`` (see
    :mod:`~dicomnet.archive.workflow_db`; a file path, a ``postgresql://`` URL, or a backend).
    Writes are short except the insert of a large request: one streamed transaction."""

    def __init__(self, location: WorkflowLocation) -> None:
        # lazy: the backends (sqlite3, ~5 ms) are only needed by the SCP, not by stgcmtscu's
        # codec imports
        from dicomnet.archive.workflow_db import location_text, open_service

        # the request is on disk before the N-ACTION-RSP says Success (PS3.4 J.3.2.1.3)
        self.backend: Backend
        self.backend, self._owned = open_service(location, SCHEMA)
        self.path = location_text(self.backend)
        #: nodes on several hosts may share the database (owners are leased, not pids)
        self.shared = self.backend.name != "sqlite"

    def close(self) -> None:
        if self._owned:
            self.backend.close()

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        return self.backend.transaction()

    def hold(self, owner: str) -> Lease | None:
        """On a shared database: the lease of ``owner`` (held while the service is open, see
        the module docstring); None on SQLite."""
        if not self.shared:
            return None
        lease = self.backend.lease(LEASE_PREFIX + owner)
        if lease is None:  # pragma: no cover - a fresh token cannot be held by another
            raise RuntimeError(f"the lease of commitment owner {owner} is held")
        return lease

    def owner_gone(self, owner: object) -> bool:
        """Whether the service that owned a commitment is gone (see the module docstring)."""
        if not self.shared:
            return not _owner_alive(owner)
        if not isinstance(owner, str) or not owner:
            return True
        if owner in _OPEN_OWNERS:
            return False
        lease = self.backend.lease(LEASE_PREFIX + owner)
        if lease is None:
            return False  # its service holds it: alive
        lease.close()
        return True

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
            cid = int(c.execute("INSERT INTO commitment (transaction_uid, requestor_aet, state, "
                                "created, updated, owner) VALUES ('', ?, 'receiving', ?, ?, ?) "
                                "RETURNING id", (aet, now, now, owner)).fetchone()[0])  # fmt: skip
            items = rows(cid)
            while batch := list(itertools.islice(items, PAGE)):  # bounded memory on any backend
                c.executemany("INSERT INTO commitment_item (commitment_id, seq, sop_class_uid, "
                              "sop_instance_uid) VALUES (?, ?, ?, ?)", batch)  # fmt: skip
            if not request.saw_sequence:
                raise MalformedRequest(Status.MISSING_ATTRIBUTE,
                                       "Referenced SOP Sequence (0008,1199) missing",
                                       REFERENCED_SOP_SEQUENCE)  # fmt: skip
            if request.count == 0:
                raise MalformedRequest(Status.MISSING_ATTRIBUTE_VALUE,
                                       "Referenced SOP Sequence (0008,1199) empty",
                                       REFERENCED_SOP_SEQUENCE)  # fmt: skip
            txn = request.transaction_uid
            # nodes sharing a PostgreSQL database: one decision per Transaction UID at a time
            self.backend.lock_key(c, "commitment:" + txn)
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
        r = self.backend.fetch("SELECT state FROM commitment WHERE transaction_uid = ? "
                               "ORDER BY id DESC LIMIT 1", (transaction_uid,))  # fmt: skip
        return None if not r else str(r[0][0])

    def row(self, cid: int) -> Row | None:
        r = self.backend.fetch(f"SELECT {_ROW} FROM commitment WHERE id = ?", (cid,))
        return None if not r else Row(*r[0])

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
            r = c.execute("UPDATE commitment SET attempts = attempts + 1, last_error = ?, "
                          "updated = ? WHERE id = ? RETURNING attempts",
                          (error, time.time(), cid)).fetchone()  # fmt: skip
        return int(r[0]) if r else 0

    def unchecked(self, cid: int, after: int) -> list[tuple[int, str, str]]:
        rows = self.backend.fetch(
            "SELECT seq, sop_class_uid, sop_instance_uid FROM commitment_item WHERE "
            "commitment_id = ? AND seq > ? AND reason IS NULL ORDER BY seq LIMIT ?",
            (cid, after, PAGE))  # fmt: skip
        return [(int(q), str(c), str(i)) for q, c, i in rows]

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
        [(failed, ok)] = self.backend.fetch(
            "SELECT COALESCE(SUM(CASE WHEN reason != 0 THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN reason = 0 THEN 1 ELSE 0 END), 0) FROM "
            "commitment_item WHERE commitment_id = ?", (cid,))  # fmt: skip
        return int(failed), int(ok)

    def references(self, cid: int, failed: bool) -> Iterator[tuple[str, str, int]]:
        """(class, instance, reason) of the failed or committed references, page by page."""
        cond = "reason != 0" if failed else "reason = 0"
        last = -1
        while True:
            page = self.backend.fetch(
                "SELECT seq, sop_class_uid, sop_instance_uid, reason FROM commitment_item "
                f"WHERE commitment_id = ? AND seq > ? AND {cond} ORDER BY seq LIMIT ?",
                (cid, last, PAGE))  # fmt: skip
            for _seq, sop_class, sop_instance, reason in page:
                yield str(sop_class), str(sop_instance), int(reason)
            if len(page) < PAGE:
                return
            last = int(page[-1][0])

    def take_waiting(self, cid: int, owner: str) -> bool:
        """Take a waiting commitment over to send it (state ``checked``, owned by us); False
        when another service (process) was first."""
        with self.transaction() as c:
            taken = c.execute("UPDATE commitment SET state = 'checked', owner = ?, updated = ? "
                              "WHERE id = ? AND state = 'waiting' RETURNING id",
                              (owner, time.time(), cid)).fetchone()  # fmt: skip
        return taken is not None

    def waiting_for(self, aet: str) -> list[int]:
        rows = self.backend.fetch("SELECT id FROM commitment WHERE state = 'waiting' AND "
                                  "requestor_aet = ? ORDER BY id", (aet,))  # fmt: skip
        return [int(r[0]) for r in rows]

    def claim(self, owner: str) -> list[tuple[int, str, str]]:
        """Take over the pending commitments whose owner is gone (see the module docstring):
        (id, state, requestor AE title) of each. Each row changes owner only if it still has
        the gone one, so services claiming at once (processes, nodes) share nothing."""
        rows = self.backend.fetch("SELECT id, state, requestor_aet, owner FROM commitment "
                                  "WHERE state IN (?, ?, ?) ORDER BY id", PENDING)  # fmt: skip
        gone: dict[object, bool] = {}
        candidates = []
        for i, s, a, o in rows:
            if o == owner:
                continue
            if o not in gone:
                gone[o] = self.owner_gone(o)
            if gone[o]:
                candidates.append((int(i), str(s), str(a), o))
        if not candidates:
            return []
        taken = []
        with self.transaction() as c:
            for i, _state, a, o in candidates:
                if o is None:
                    sql = "WHERE id = ? AND owner IS NULL AND state IN (?, ?, ?)"
                    params: tuple[object, ...] = (owner, i, *PENDING)
                else:
                    sql = "WHERE id = ? AND owner = ? AND state IN (?, ?, ?)"
                    params = (owner, i, o, *PENDING)
                got = c.execute(f"UPDATE commitment SET owner = ? {sql} RETURNING state",
                                params).fetchone()  # fmt: skip
                if got is not None:
                    taken.append((i, str(got[0]), a))
        return taken

    def purge(self, older_than: float) -> int:
        with self.transaction() as c:
            gone = c.execute("DELETE FROM commitment WHERE state = 'delivered' AND updated < ? "
                             "RETURNING id", (older_than,)).fetchall()  # fmt: skip
        return len(gone)

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
