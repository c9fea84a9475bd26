"""Instance Availability Notification SCU (PS3.4 Annex R): tell other systems which instances
of a study the archive now holds, once the study has been quiet for a while.

Theory of operation
-------------------
A modality sends a study as many C-STOREs; a notification per instance would be noise, and
one sent after the first instance would be wrong (PS3.4 R.1: the notification lists instances
*available*). So :meth:`IANotifier.stored` only notes the study and its last activity; when a
study has received nothing for ``quiet_seconds``, one N-CREATE of the Instance Availability
Notification SOP Class (1.2.840.10008.5.1.4.33, PS3.4 R.3) goes to every configured
destination with the study's instances as the index lists them at that moment:

* Study Instance UID, an empty Referenced Performed Procedure Step Sequence (type 2, PS3.4
  Table R.3-1: no MPPS is referenced), and a Referenced Series Sequence with, per series, the
  Referenced SOP Sequence items (Referenced SOP Class/Instance UID, Instance Availability
  ``ONLINE`` and the Retrieve AE Title the instances are retrieved from, PS3.4 R.3.1);
* the SOP Instance UID of the notification is made by the SCU (a UUID-derived UID, PS3.5 B.2),
  as PS3.4 R.3.1 asks of an N-CREATE without an SCP-assigned instance.

Several archive nodes sharing one index each hear only of their own stores: before a study is
announced, the index is asked when any node last stored one of its instances (``stored_at``),
and a study another node is still receiving waits until it is quiet there too.

With a ``state`` database (``qrscp``: the workflow database, i.e. the index's PostgreSQL
database or ``STORAGE/workflow.sqlite``; shared by every node and worker process), what is
pending survives a restart and a quiet study is announced once, not once per node that stored
part of it (:mod:`dicomnet.archive.ian_state`). A study that becomes pending in a notifier's
memory is marked waiting there; when it is due and quiet, the notifier *claims* it in one
statement, and only the notifier whose claim took announces. Another node that stored part of
the study finds the mark already at the latest store and stays silent; an instance stored after
the claim moves past the mark, so the study is claimed and announced again, with it. The claim
records the announcement's destinations; each attempt to reach one is taken in the database
first, and a destination's record goes when it answers or is given up. At start a notifier
schedules every waiting study and every destination still to be reached (those of a process
that stopped before it finished), so a destination that was down when a process died is
retried by the next one.

One scheduler thread waits on a condition with the nearest deadline as its timeout -- no
polling; a new store moves the study's deadline, ``close()`` wakes it. A destination that is
down (no association, or a failure status) is retried with a growing delay
(``retry_delays``); a success or the last retry ends the attempts for that destination. What
is pending lives in memory unless a ``state`` database keeps it (above).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dicomnet.ae import AE
from dicomnet.archive.ian_state import SCHEMA, IANState, destination_key

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.archive.index import ArchiveIndex
    from dicomnet.archive.workflow_db import WorkflowLocation

__all__ = ["IAN_SOP_CLASS", "SCHEMA", "IANotifier", "availability_dataset"]

LOG = logging.getLogger("dicomnet.archive.ian")

#: Instance Availability Notification SOP Class (PS3.4 R.3, PS3.6 Annex A)
IAN_SOP_CLASS = "1.2.840.10008.5.1.4.33"
#: The delays between attempts to reach a destination (seconds).
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0)

Destination = tuple[str, str, int]  # (AE title, host, port)
Sender = Callable[["Dataset", Destination], int]


def availability_dataset(index: ArchiveIndex, study_uid: str, retrieve_ae_title: str) -> Dataset:
    """The N-CREATE Attribute List announcing every instance of ``study_uid`` the index holds
    (PS3.4 Table R.3-1)."""
    from pydicom.dataset import Dataset  # lazy: pydicom only when a study is announced
    from pydicom.uid import generate_uid

    rows = index.select(
        "SELECT se.series_uid, i.sop_class_uid, i.sop_uid FROM instance i "
        "JOIN series se ON i.series_fk = se.pk JOIN study st ON se.study_fk = st.pk",
        ["st.study_uid = ?"],
        [study_uid],
    )
    by_series: dict[str, list[tuple[str, str]]] = {}
    for series_uid, sop_class, sop_uid in rows:
        by_series.setdefault(str(series_uid), []).append((str(sop_class), str(sop_uid)))
    ds = Dataset()
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.ReferencedPerformedProcedureStepSequence = []
    series_items = []
    for series_uid, instances in sorted(by_series.items()):
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        refs = []
        for sop_class, sop_uid in instances:
            ref = Dataset()
            ref.ReferencedSOPClassUID = sop_class
            ref.ReferencedSOPInstanceUID = sop_uid
            ref.InstanceAvailability = "ONLINE"
            ref.RetrieveAETitle = retrieve_ae_title
            refs.append(ref)
        series.ReferencedSOPSequence = refs
        series_items.append(series)
    ds.ReferencedSeriesSequence = series_items
    return ds


class _Pending:
    """A study to announce: when, to whom, and (once claimed) how far each destination got."""

    __slots__ = ("attempts", "claimed", "destinations", "due", "tries", "upto")

    def __init__(self, due: float, destinations: list[Destination]) -> None:
        self.due = due
        self.destinations = destinations
        #: the retry round (index into ``retry_delays``)
        self.attempts = 0
        #: claimed: its instances are announced; a new store makes a new announcement
        self.claimed = False
        #: the claim's mark (``ian_state``), None without a state database
        self.upto: float | None = None
        #: attempts started per destination (as recorded in ``ian_delivery``)
        self.tries: dict[Destination, int] = {}


class IANotifier:
    """Announces quiet studies to ``destinations`` (see the module docstring).

    ``send(dataset, destination) -> status`` performs one N-CREATE (default: a new association
    from an AE titled ``ae_title``); ``clock`` is injectable for tests. ``state``: where pending
    and announced studies are kept for every process sharing the archive (a workflow location
    of :mod:`dicomnet.archive.workflow_db`); None keeps them in this process's memory only.
    """

    def __init__(
        self,
        index: ArchiveIndex,
        destinations: Sequence[Destination],
        *,
        ae_title: str = "DICOMNET",
        quiet_seconds: float = 30.0,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        send: Sender | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        state: WorkflowLocation | None = None,
    ) -> None:
        self.index = index
        self.destinations = list(destinations)
        self.ae_title = ae_title
        self.quiet_seconds = float(quiet_seconds)
        self.retry_delays = tuple(retry_delays)
        self.send: Sender = send if send is not None else self._send_n_create
        self.clock = clock
        self.wall = wall
        self.sent = 0
        self._pending: dict[str, _Pending] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._state: IANState | None = None
        if state is not None and self.destinations:
            self._state = IANState(state)
            try:
                self._resume()
            except BaseException:
                self._state.close()
                raise
        self._thread = threading.Thread(target=self._run, name="dicomnet-ian", daemon=True)
        self._thread.start()

    def _resume(self) -> None:
        """Schedule what the state database holds: waiting studies (announced when quiet) and
        the destinations of claimed announcements still to be reached (at their due time)."""
        assert self._state is not None
        waiting = self._state.waiting()
        due = self.clock() + self.quiet_seconds
        for study_uid in waiting:
            self._pending[study_uid] = _Pending(due, list(self.destinations))
        by_key = {destination_key(d): d for d in self.destinations}
        dropped: dict[tuple[str, float], list[str]] = {}
        resumed = 0
        now_wall, now = self.wall(), self.clock()
        for row in self._state.deliveries():
            destination = by_key.get(row.destination)
            if row.study_uid in self._pending and not self._pending[row.study_uid].claimed:
                continue  # waiting again: the next claim replaces this announcement
            if destination is None or row.due is None:  # no longer configured; last attempt
                dropped.setdefault((row.study_uid, row.upto), []).append(row.destination)
                continue
            pending = self._pending.get(row.study_uid)
            if pending is None:
                pending = self._pending[row.study_uid] = _Pending(now + self.quiet_seconds, [])
                pending.claimed, pending.upto, pending.attempts = True, row.upto, row.attempts
                resumed += 1
            pending.destinations.append(destination)
            pending.tries[destination] = row.attempts
            pending.attempts = min(pending.attempts, row.attempts)
            pending.due = min(pending.due, now + max(0.0, row.due - now_wall))
        for (study_uid, upto), keys in dropped.items():
            self._state.finished(study_uid, keys, upto)
        if waiting or resumed:
            LOG.info("IAN: %d studies left waiting, %d announcements to finish", len(waiting),
                     resumed)  # fmt: skip

    # --- what the archive calls ---------------------------------------------------------------
    def stored(self, study_uid: str) -> None:
        """An instance of ``study_uid`` was stored: announce the study once it is quiet."""
        if not study_uid or not self.destinations:
            return
        with self._cond:
            due = self.clock() + self.quiet_seconds
            pending = self._pending.get(study_uid)
            new = pending is None or pending.claimed
            if new:
                self._pending[study_uid] = _Pending(due, list(self.destinations))
            else:
                assert pending is not None
                pending.due = due
            self._cond.notify()
        if new and self._state is not None:
            try:  # survives a restart (see the module docstring)
                self._state.mark_waiting(study_uid)
            except Exception as exc:  # the notification itself still happens from memory
                LOG.warning("IAN: cannot note study %s as waiting: %s", study_uid, exc)

    def instance_stored(self, sop_instance_uid: str) -> None:
        """:meth:`stored` for the study of an instance just indexed (the archive's hook)."""
        if not self.destinations:
            return
        study_uid = self.index.study_of(sop_instance_uid)
        if study_uid is not None:
            self.stored(study_uid)

    def pending(self) -> list[str]:
        """Studies waiting to be announced (or retried)."""
        with self._cond:
            return sorted(self._pending)

    def close(self) -> None:
        """Stop the scheduler (what is pending is dropped from memory; a state database keeps
        the studies not yet claimed and the destinations not yet reached)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(5)
        if self._state is not None:
            self._state.close()

    # --- the scheduler ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = self.clock()
                    due = [uid for uid, p in self._pending.items() if p.due <= now]
                    if due:
                        break
                    nearest = min((p.due for p in self._pending.values()), default=None)
                    self._cond.wait(None if nearest is None else max(0.0, nearest - now))
                if self._closed:
                    return
                work = [(uid, self._pending[uid]) for uid in due]
            for study_uid, pending in work:
                self._announce(study_uid, pending)

    def _quiet_for(self, study_uid: str) -> float:
        """How long the study has yet to stay quiet, judged by the index: another node
        sharing it may have stored an instance after this one last did (each instance's
        ``stored_at``); 0 when it is quiet (at most ``quiet_seconds``: a clock ahead of ours
        cannot hold a study back for long)."""
        latest = self.index.last_stored(study_uid)
        if latest is None:
            return 0.0
        return max(0.0, min(latest + self.quiet_seconds - self.wall(), self.quiet_seconds))

    def _announce(self, study_uid: str, pending: _Pending) -> None:
        if not pending.claimed:
            try:
                wait = self._quiet_for(study_uid)
            except Exception:  # the index cannot say: announce as this node sees it
                wait = 0.0
            if wait > 0:
                with self._cond:
                    if self._pending.get(study_uid) is pending:
                        pending.due = self.clock() + wait
                return
            with self._cond:
                pending.claimed = True  # from here on a new store is a new announcement
            if not self._claim(study_uid, pending):
                with self._cond:
                    if self._pending.get(study_uid) is pending:
                        del self._pending[study_uid]
                LOG.info("IAN for study %s: already announced by another process", study_uid)
                return
        try:
            dataset = availability_dataset(self.index, study_uid, self.ae_title)
        except Exception:
            LOG.exception("IAN for study %s: cannot list its instances", study_uid)
            dataset = None
        failed: list[Destination] = []
        answered: list[Destination] = []
        last = pending.attempts >= len(self.retry_delays)
        for destination in pending.destinations:
            if not self._start_attempt(study_uid, pending, destination):
                continue  # another process made this attempt, or a newer announcement did
            status = -1
            if dataset is not None:
                try:
                    status = self.send(dataset, destination)
                except Exception as exc:  # the destination is down: retried
                    LOG.warning("IAN for study %s to %s failed: %s", study_uid, destination[0], exc)
            if status in (0x0000, 0x0001) or 0xB000 <= status <= 0xBFFF:  # success, warning
                self.sent += 1
                answered.append(destination)
                LOG.info("IAN for study %s sent to %s", study_uid, destination[0])
            else:
                failed.append(destination)
        if failed and last:
            LOG.error("IAN for study %s: giving up on %s", study_uid,
                      ", ".join(d[0] for d in failed))  # fmt: skip
        self._finished(study_uid, pending, answered + failed if last else answered)
        with self._cond:
            if self._pending.get(study_uid) is not pending:
                return  # stored again meanwhile: a new notification is scheduled
            if not failed or last:
                del self._pending[study_uid]
                return
            pending.destinations = failed
            pending.due = self.clock() + self.retry_delays[pending.attempts]
            pending.attempts += 1

    # --- the state database (no-ops without one) --------------------------------------------
    def _claim(self, study_uid: str, pending: _Pending) -> bool:
        """Whether this notifier is the one to announce the study now (always, without a state
        database; see the module docstring)."""
        if self._state is None:
            return True
        try:
            latest = self.index.last_stored(study_uid)
            if latest is None:
                return True  # nothing indexed: the announcement lists nothing anyway
            keys = [destination_key(d) for d in pending.destinations]
            if not self._state.claim(study_uid, latest, keys, self.wall()):
                return False
            pending.upto = latest
            return True
        except Exception as exc:  # the database cannot say: announce (at least once)
            LOG.warning("IAN for study %s: cannot claim it: %s", study_uid, exc)
            return True

    def _start_attempt(self, study_uid: str, pending: _Pending, destination: Destination) -> bool:
        """Take this attempt to reach ``destination`` in the state database (see
        :mod:`dicomnet.archive.ian_state`); True without a record of the announcement."""
        attempt = pending.tries.get(destination, 0)
        pending.tries[destination] = attempt + 1
        if self._state is None or pending.upto is None:
            return True
        round_ = pending.attempts
        next_due = (self.wall() + self.retry_delays[round_]
                    if round_ < len(self.retry_delays) else None)  # fmt: skip
        try:
            key = destination_key(destination)
            return self._state.start_attempt(study_uid, key, pending.upto, attempt, next_due)
        except Exception as exc:  # the database cannot say: try (at least once)
            LOG.warning("IAN for study %s: cannot record the attempt: %s", study_uid, exc)
            return True

    def _finished(self, study_uid: str, pending: _Pending, done: list[Destination]) -> None:
        if self._state is None or pending.upto is None or not done:
            return
        try:
            self._state.finished(study_uid, [destination_key(d) for d in done], pending.upto)
        except Exception as exc:  # a restart retries them once more: at least once
            LOG.warning("IAN for study %s: cannot record the deliveries: %s", study_uid, exc)

    def _send_n_create(self, dataset: Dataset, destination: Destination) -> int:
        """One N-CREATE of ``dataset`` on a new association (PS3.4 R.3)."""
        title, host, port = destination
        ae = AE(ae_title=self.ae_title)
        ae.add_requested_context(IAN_SOP_CLASS)
        assoc = ae.associate(host, port, ae_title=title)
        if not assoc.is_established:
            raise ConnectionError(assoc.failure_reason or "association not established")
        try:
            status, _ = assoc.send_n_create(dataset, IAN_SOP_CLASS, dataset.SOPInstanceUID)
            return int(status.Status) if status is not None and "Status" in status else -1
        finally:
            assoc.release()
