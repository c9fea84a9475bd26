"""What the Instance Availability Notification SCU keeps in the workflow database: which
studies wait to be announced, up to which store each was announced, and which destinations of
an announcement have yet to answer.

Theory of operation
-------------------
:mod:`dicomnet.archive.ian` announces a study once it is quiet (PS3.4 Annex R). Several
processes may store parts of one study (``qrscp --workers``, nodes sharing a PostgreSQL index)
and any of them may stop at any time, so the decisions that must be made once are made by one
statement each on the shared database (the workflow database, see
:mod:`dicomnet.archive.workflow_db`):

``ian_study (study_uid, announced_upto)``
    ``announced_upto`` is the index's ``stored_at`` of the latest instance the study was last
    announced with, NULL while it waits. :meth:`IANState.claim` moves the mark up to the
    study's latest store only if it was below it (``INSERT ... ON CONFLICT DO UPDATE ... WHERE
    ... RETURNING``): of several processes that stored parts of the study, exactly one claim
    takes, and an instance stored after it moves ``stored_at`` past the mark so that the study
    is claimed (and announced) again.

``ian_delivery (study_uid, destination, upto, attempts, due)``
    The claim writes, in the same transaction, one row per configured destination (replacing
    the rows of an earlier announcement of the study: the new one lists every instance).
    ``upto`` is the claim's mark; ``attempts`` the attempts started; ``due`` (wall-clock
    seconds) when the next one may start. Each attempt starts with
    :meth:`IANState.start_attempt`, an ``UPDATE ... WHERE attempts = k AND upto = mark
    RETURNING``: it moves the row to ``k + 1`` and the due time of the attempt after it, so
    that one process makes each attempt even when another one loaded the same rows at its
    start, and a newer claim (another ``upto``) silently retires the older announcement's
    retries. A destination that answers (or is given up) loses its row
    (:meth:`IANState.finished`). A process killed while it sends leaves the row due at the next
    retry: a restarted notifier resumes it (:meth:`IANState.deliveries`); the destination may
    then hear the announcement twice, never not at all (the last attempt's row has no due time
    and is dropped at restart: that attempt was being made).

Statements use SQLite's dialect, translated for PostgreSQL by the backend. ``dicomnet archive
migrate`` copies both tables with the rest of the workflow state (:data:`SCHEMA`,
:data:`TABLES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from dicomnet.archive.backend import Backend
from dicomnet.archive.workflow_db import WorkflowLocation, open_service

__all__ = ["SCHEMA", "TABLES", "Delivery", "IANState", "destination_key"]

#: the notifier's tables (SQLite dialect; see the module docstring)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ian_study (study_uid TEXT PRIMARY KEY, announced_upto REAL)",
    """CREATE TABLE IF NOT EXISTS ian_delivery (
    study_uid TEXT NOT NULL,
    destination TEXT NOT NULL,    -- AE@host:port (destination_key)
    upto REAL NOT NULL,           -- the claim's announced_upto
    attempts INTEGER NOT NULL,    -- attempts started
    due REAL,                     -- wall-clock time of the next attempt; NULL: the last one
    PRIMARY KEY (study_uid, destination)
)""",
)
#: The tables of :data:`SCHEMA` (copied by ``archive migrate``).
TABLES = ("ian_study", "ian_delivery")

_WAITING = (
    "INSERT INTO ian_study (study_uid, announced_upto) VALUES (?, NULL) "
    "ON CONFLICT(study_uid) DO UPDATE SET announced_upto = NULL"
)
# one statement decides: the mark moves up to the latest store only if it was below it
_CLAIM = (
    "INSERT INTO ian_study (study_uid, announced_upto) VALUES (?, ?) "
    "ON CONFLICT(study_uid) DO UPDATE SET announced_upto = excluded.announced_upto "
    "WHERE ian_study.announced_upto IS NULL "
    "OR ian_study.announced_upto < excluded.announced_upto RETURNING study_uid"
)
_DELIVERY = (
    "INSERT INTO ian_delivery (study_uid, destination, upto, attempts, due) VALUES (?, ?, ?, 0, ?)"
)
_START = (
    "UPDATE ian_delivery SET attempts = attempts + 1, due = ? WHERE study_uid = ? "
    "AND destination = ? AND attempts = ? AND upto = ? RETURNING study_uid"
)


def destination_key(destination: tuple[str, str, int]) -> str:
    """How a destination (AE title, host, port) is named in ``ian_delivery``."""
    title, host, port = destination
    return f"{title}@{host}:{port}"


class Delivery(NamedTuple):
    """One ``ian_delivery`` row: an announcement's destination yet to answer."""

    study_uid: str
    destination: str
    upto: float
    attempts: int
    due: float | None


class IANState:
    """The notifier's tables on a workflow location (see the module docstring)."""

    def __init__(self, location: WorkflowLocation) -> None:
        self.backend: Backend
        self.backend, self._owned = open_service(location, SCHEMA)

    def close(self) -> None:
        if self._owned:
            self.backend.close()
            self._owned = False

    def waiting(self) -> list[str]:
        """Studies noted as waiting and not claimed since."""
        rows = self.backend.fetch("SELECT study_uid FROM ian_study WHERE announced_upto IS NULL")
        return [str(uid) for (uid,) in rows]

    def deliveries(self) -> list[Delivery]:
        """Every destination of a claimed announcement that has yet to answer."""
        rows = self.backend.fetch(
            "SELECT study_uid, destination, upto, attempts, due FROM ian_delivery "
            "ORDER BY study_uid, destination"
        )
        return [Delivery(str(s), str(d), float(u), int(a), None if t is None else float(t))
                for s, d, u, a, t in rows]  # fmt: skip

    def mark_waiting(self, study_uid: str) -> None:
        """The study has instances not announced yet (it survives a restart as waiting)."""
        with self.backend.transaction() as conn:
            conn.execute(_WAITING, (study_uid,))

    def claim(self, study_uid: str, upto: float, destinations: Sequence[str], now: float) -> bool:
        """Whether this process announces the study's stores up to ``upto`` (one claim takes);
        if so, the announcement's ``destinations`` are recorded, due ``now``, in place of an
        earlier announcement's."""
        with self.backend.transaction() as conn:
            if conn.execute(_CLAIM, (study_uid, upto)).fetchone() is None:
                return False
            conn.execute("DELETE FROM ian_delivery WHERE study_uid = ?", (study_uid,))
            conn.executemany(_DELIVERY, [(study_uid, d, upto, now) for d in destinations])
            return True

    def start_attempt(self, study_uid: str, destination: str, upto: float, attempt: int,
                      next_due: float | None) -> bool:  # fmt: skip
        """Take attempt number ``attempt`` (0: the first) of a delivery; False when another
        process took it or a newer announcement of the study replaced the delivery.
        ``next_due``: when the attempt after this one may start (None: this is the last)."""
        with self.backend.transaction() as conn:
            row = conn.execute(_START, (next_due, study_uid, destination, attempt, upto))
            return row.fetchone() is not None

    def finished(self, study_uid: str, destinations: Sequence[str], upto: float) -> None:
        """The destinations answered, or were given up: their rows go."""
        if not destinations:
            return
        with self.backend.transaction() as conn:
            conn.executemany(
                "DELETE FROM ian_delivery WHERE study_uid = ? AND destination = ? AND upto = ?",
                [(study_uid, d, upto) for d in destinations],
            )
