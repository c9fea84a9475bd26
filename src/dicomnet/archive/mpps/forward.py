"""Forwarding of accepted N-CREATE/N-SET requests to other MPPS SCPs: the outbox table in the
workflow database and the one background thread that sends it.

Theory of operation
-------------------
Forwarding (``forward=[(ae_title, host, port), ...]``): each accepted N-CREATE/N-SET is also
written, in the same transaction, to an outbox table (one row per destination). A single
background thread, woken after each commit (never polling), sends the outbox to each destination
in order over one association as an MPPS SCU. A destination that cannot be reached or does not
answer keeps its rows, which are tried again on the next event (the next accepted request, the
next start, or :meth:`MPPSStore.flush_forwards`). A destination that answers a failure status
gets the row marked failed (``failed_status``; kept for a person to look at) and the next row is
sent: a refusal does not become a success by repeating it. A duplicate N-CREATE (0111H) counts as
delivered: it is the answer to our own earlier attempt whose response was lost. Rows are sent
at least once; processes sharing the database take turns (a lock held for a whole sending
round: a file lock beside a SQLite file, a session advisory lock on PostgreSQL -- see
:func:`~dicomnet.archive.workflow_db.exclusive`), so a row is not sent by two at once, and the
outbox is one table ordered by its key: an N-SET is queued after its step's N-CREATE committed,
so it follows it whichever node received either.

:class:`~dicomnet.archive.mpps.store.MPPSStore` owns the database and its transactions: it
calls :func:`queue` inside the transaction of each accepted request, and gives :class:`Outbox`
(the reads and updates of the ``mpps_outbox`` rows) its own read and transaction functions, so
every statement here runs on the store's database. This module never imports the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from pydicom.dataset import Dataset

from dicomnet.ae import AE
from dicomnet.archive.backend import Connection
from dicomnet.archive.mpps.attributes import dumps
from dicomnet.archive.mpps.rules import MPPS_SOP_CLASS
from dicomnet.dimse.status import Category, Status, category

#: The logger of the old single module, shared by the package's modules.
LOG = logging.getLogger("dicomnet.archive.mpps")

Destination = tuple[str, str, int]

#: The store's query function: (SQL, parameters) -> rows.
Reader = Callable[[str, Sequence[object]], list[Any]]
#: The store's transaction: a write transaction around the block.
Transaction = Callable[[], AbstractContextManager[Connection]]
#: The turn of this process among those sharing the database: held around a sending round.
Turn = Callable[[], AbstractContextManager[None]]


def destination_key(destination: Destination) -> str:
    aet, host, port = destination
    return f"{aet}@{host}:{port}"


def queue(conn: Connection, destinations: Sequence[Destination], uid: str,
          operation: str, doc: dict[str, Any], now: float) -> None:  # fmt: skip
    """One outbox row per destination for an accepted request, in the request's transaction
    ``conn``."""
    if not destinations:
        return
    text = dumps(doc)
    conn.executemany(
        "INSERT INTO mpps_outbox (destination, sop_instance_uid, operation, attributes, "
        "queued_at) VALUES (?, ?, ?, ?, ?)",
        [(destination_key(d), uid, operation, text, now) for d in destinations],
    )


class Outbox:
    """The ``mpps_outbox`` rows, read and changed through the store's database."""

    def __init__(self, read: Reader, transaction: Transaction) -> None:
        self._read = read
        self._transaction = transaction

    def pending(self) -> list[tuple[str, str, str]]:
        """(destination, SOP Instance UID, operation) of the rows still to be sent, in order."""
        rows = self._read("SELECT destination, sop_instance_uid, operation FROM mpps_outbox "
                          "WHERE failed_status IS NULL ORDER BY id", ())  # fmt: skip
        return [(str(d), str(u), str(o)) for d, u, o in rows]

    def failed(self) -> list[tuple[str, str, str, int]]:
        """(destination, SOP Instance UID, operation, status) of rows a destination refused."""
        rows = self._read("SELECT destination, sop_instance_uid, operation, failed_status "
                          "FROM mpps_outbox WHERE failed_status IS NOT NULL ORDER BY id",
                          ())  # fmt: skip
        return [(str(d), str(u), str(o), int(s)) for d, u, o, s in rows]

    def waiting(self, destination: str) -> list[tuple[int, str, str, str]]:
        """(row id, SOP Instance UID, operation, attributes) still to be sent to
        ``destination``, in order."""
        rows = self._read("SELECT id, sop_instance_uid, operation, attributes FROM mpps_outbox "
                          "WHERE destination = ? AND failed_status IS NULL ORDER BY id",
                          (destination,))  # fmt: skip
        return [(int(i), str(u), str(o), str(a)) for i, u, o, a in rows]

    def done(self, row_id: int) -> None:
        """The row was delivered (or its N-CREATE was a duplicate): gone."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM mpps_outbox WHERE id = ?", (row_id,))

    def attempt(self, row_ids: Sequence[int], error: str,
                failed_status: int | None = None) -> None:  # fmt: skip
        """One more attempt at the rows, with its error; ``failed_status``: the destination
        refused the row with it (not sent again)."""
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE mpps_outbox SET attempts = attempts + 1, last_error = ?, "
                "failed_status = ? WHERE id = ?",
                [(error[:500], failed_status, i) for i in row_ids],
            )


class Forwarder:
    """The background sender of the outbox (see the module docstring): one thread, woken by an
    event after each commit; :meth:`drain` is also callable from any thread. ``turn``: held
    around each sending round (see the module docstring)."""

    def __init__(self, outbox: Outbox, *, turn: Turn, destinations: Sequence[Destination],
                 ae_title: str) -> None:  # fmt: skip
        self.outbox = outbox
        self._turn = turn
        self.destinations = tuple(destinations)
        self._wake = threading.Event()
        self._stopping = False
        self._drain_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mpps-forward", daemon=True)
        self.ae = AE(ae_title=ae_title)
        self.ae.add_requested_context(MPPS_SOP_CLASS)
        self.ae.connection_timeout = 15.0
        self.ae.acse_timeout = 30.0
        self.ae.dimse_timeout = 30.0

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=120)
        if self._thread.is_alive():  # pragma: no cover - a peer holding us past every timeout
            LOG.warning("MPPS forwarder still busy at close; left behind (daemon thread)")

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopping:
                return
            # cleared before reading the outbox: a commit after this point wakes us again
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # never let the thread die: the next event tries again
                LOG.exception("MPPS forwarding failed")

    def drain(self) -> None:
        with self._drain_lock, self._turn():
            for destination in self.destinations:
                if self._stopping:
                    return
                self._send(destination)

    def _send(self, destination: Destination) -> None:
        key = destination_key(destination)
        rows = self.outbox.waiting(key)
        if not rows:
            return
        aet, host, port = destination
        assoc = self.ae.associate(host, port, ae_title=aet)
        if not assoc.is_established:
            reason = assoc.failure_reason or getattr(assoc, "rejection_text", "") or "rejected"
            LOG.warning("MPPS forward to %s: cannot associate (%s); %d request(s) kept for the "
                        "next event", key, reason, len(rows))  # fmt: skip
            self.outbox.attempt([r[0] for r in rows], f"association: {reason}")
            return
        try:
            for row_id, uid, operation, text in rows:
                ds = Dataset.from_json(text)
                if operation == "create":
                    status, _reply = assoc.send_n_create(ds, MPPS_SOP_CLASS, uid)
                else:
                    status, _reply = assoc.send_n_set(ds, MPPS_SOP_CLASS, uid)
                code = status.get("Status") if status is not None else None
                if code is None:  # no response: the association is gone; keep the rest
                    LOG.warning("MPPS forward to %s: no response to N-%s %s; kept for the next "
                                "event", key, operation.upper(), uid)  # fmt: skip
                    self.outbox.attempt([row_id], "no response")
                    return
                code = int(code)
                if category(code) in (Category.SUCCESS, Category.WARNING) or (
                    operation == "create" and code == Status.DUPLICATE_SOP_INSTANCE
                ):
                    self.outbox.done(row_id)
                    LOG.info("MPPS forward to %s: N-%s %s -> 0x%04X", key, operation.upper(),
                             uid, code)  # fmt: skip
                    continue
                comment = str(status.get("ErrorComment", "") or "")
                LOG.error("MPPS forward to %s: N-%s %s refused with 0x%04X %s; not sent again",
                          key, operation.upper(), uid, code, comment)  # fmt: skip
                self.outbox.attempt([row_id], f"0x{code:04X} {comment}".strip(), code)
        finally:
            if assoc.is_established:
                assoc.release()
