"""Storage Commitment Push Model SCP (PS3.4 Annex J) over the archive: :class:`CommitmentService`.

Theory of operation
-------------------
A Storage Commitment SCU asks us, with an N-ACTION-RQ (Action Type ID 1, "Request Storage
Commitment", PS3.4 J.3.2.1) on the Storage Commitment Push Model SOP Class
(:data:`~dicomnet.archive.commitment.codec.SOP_CLASS`, PS3.4 J.3.4) and its well-known
instance (PS3.4 J.3.5), to take responsibility for the SOP Instances it lists (PS3.4 Table
J.3-1). The answer comes in two parts:

1. **The N-ACTION-RSP, at once** (PS3.4 J.3.2.1.3). The Action Information is read as a stream
   (:mod:`~dicomnet.archive.commitment.codec`) into the workflow database -- ``workflow.sqlite``,
   or the index's PostgreSQL database (:mod:`~dicomnet.archive.commitment.store`) -- in one
   transaction committed *before* the
   response: once we said Success, a crash or a restart cannot lose the request. A malformed
   request is refused and nothing is kept (PS3.4 J.3.2.1.3: "a failure status conveys that the
   SCP is not processing the request"; the statuses are PS3.7 Annex C's): a missing Transaction
   UID or Referenced SOP Sequence, or an item without its Referenced SOP Class/Instance UID,
   0120H (Missing Attribute); one present but empty, 0121H (Missing Attribute Value); a value
   that is not a UID, 0115H (Invalid Argument Value); an Action Type ID other than 1, 0123H (No
   Such Action); another SOP instance than the well-known one, 0112H (No Such SOP Instance);
   another SOP class, 0122H; more than ``max_items`` references, 0213H (Resource Limitation).

2. **The Storage Commitment Result, later**, as an N-EVENT-REPORT-RQ (PS3.4 J.3.3.1): Event
   Type ID 1 when every instance is committed (all in the Referenced SOP Sequence), 2 when
   failures exist (those in the Failed SOP Sequence, each with its Failure Reason; the others
   in the Referenced SOP Sequence), every reference of the request with its Transaction UID
   (PS3.4 J.3.3.1.2). A worker checks the references page by page against the archive
   (:meth:`CommitmentService.verdict`, :mod:`~dicomnet.archive.commitment.check`), stores the
   verdicts, and encodes the report straight from the database, never as Datasets.

Where the report goes (PS3.4 J.3.3.1.2, J.3.3.1.3): first on the association the request came
on, if it is still open, after our N-ACTION-RSP was written
(:mod:`~dicomnet.archive.commitment.event_report`). Otherwise on a new association to the
requestor, its AE title resolved through ``destinations`` ({AE title: (host, port)}), on which
we propose the Storage Commitment Push Model with an SCP/SCU Role Selection item giving us the
SCP role only (scu_role=0, scp_role=1: PS3.7 D.3.3.4; PS3.4 J.3.3.1.3 Note: the SCU accepts an
association where the SCP role is proposed by the Storage Commitment SCP acting as association
requestor). A failed attempt is retried up to ``max_attempts`` times after the delays of
``retry_delays``: one scheduler thread waits on a condition with the deadline of the earliest
retry (no sleeps, no polling) and hands due work to a small pool. A requestor with no known
address is kept ``waiting``: its reports go out on the next association on which it asks for a
commitment.

Pending work survives a restart: every state change is written to the database first, and
:meth:`CommitmentService.resume` picks up what an earlier run left (accepted and not yet
checked, checked and not yet delivered) and no other live service owns. On a database that
archive nodes share (PostgreSQL), the timer also adopts, every ``adopt_every`` seconds, the
pending work of services that are gone (a node killed, or whose host died: see
:mod:`~dicomnet.archive.commitment.store` for how a gone owner is recognized and why each
commitment is taken by exactly one service).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.archive.commitment.check import StoredInstance, instance_lookup, storage_class_check
from dicomnet.archive.commitment.check import verdict as check_instance
from dicomnet.archive.commitment.codec import (
    EVENT_FAILURES,
    EVENT_SUCCESS,
    IMPLICIT_LE,
    REPORT_SYNTAXES,
    REQUEST_COMMITMENT,
    SOP_CLASS,
    WELL_KNOWN_INSTANCE,
    CommitmentRequest,
    MalformedRequest,
    encode_report,
)
from dicomnet.archive.commitment.event_report import Live, scp_context_id, send_event_report
from dicomnet.archive.commitment.store import (
    PAGE,
    PENDING,
    Row,
    Workflow,
    new_owner,
    release_owner,
    remove_stale_spool_files,
)
from dicomnet.archive.storage import open_file
from dicomnet.association import Association
from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Category, Status, category
from dicomnet.errors import DicomNetError
from dicomnet.presentation import accepted_syntax_of, build_role

if TYPE_CHECKING:
    import ssl

    from pydicom.dataset import Dataset

    from dicomnet.archive.workflow_db import WorkflowLocation
    from dicomnet.datasource import DataSource
    from dicomnet.events import Event, EventType
    from dicomnet.settings import Settings

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "CommitmentService"]

# the logger of the package, as before the split into modules
LOG = logging.getLogger("dicomnet.archive.commitment")

#: Seconds to connect to a requestor for its report, unless ``settings`` says otherwise.
DEFAULT_CONNECT_TIMEOUT = 10.0


class _NActionHandler:
    """The EVT_N_ACTION handler, with the SOP classes it serves (``sop_classes``) for a server
    that routes one event's requests to several services by SOP class."""

    __slots__ = ("_handle", "sop_classes")

    def __init__(self, handle: Callable[[Event], object]) -> None:
        self._handle = handle
        self.sop_classes = (SOP_CLASS,)

    def __call__(self, event: Event) -> object:
        return self._handle(event)


def _status_reply(code: int, comment: str, tag: int | None) -> Dataset:
    # lazy: pydicom, only to refuse a malformed request with its Error Comment
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    if tag is not None:
        ds.OffendingElement = [tag]
    return ds


class CommitmentService:
    """The Storage Commitment Push Model SCP over an archive index (see the module docstring).

    ``index``: an :class:`~dicomnet.archive.index.ArchiveIndex` (or any
    :class:`~dicomnet.archive.commitment.check.InstanceLookup`, or an object with
    ``get_instance``); ``destinations``: {AE title: (host, port)} of requestors, read when a
    report must go out on a new association (the mapping is kept, not copied: changes apply);
    ``db_path``: the workflow database -- a SQLite file, a ``postgresql://`` URL, or an open
    :class:`~dicomnet.archive.backend.Backend` (used, not closed).
    ``ae_title``: our calling AE title on those associations, with the timeouts and Maximum
    Length of ``settings`` (the server's AE) when given, and ``ssl_context`` for TLS.
    ``retrieve_ae_title``: put in every report as (0008,0054), where the instances can be
    retrieved (Table J.3-2). ``same_association``: try the request's association first.
    ``response_wait``: how long a report waits for our N-ACTION-RSP to be written.
    ``keep_done``: seconds a delivered transaction's UID is remembered (duplicates: 0131H).
    ``on_state``: called as ``on_state(transaction UID, state, detail)`` after each change
    (accepted, checked, delivered, waiting, retry, failed), e.g. for an audit trail.
    ``spool_dir``: where reports are spooled (default: the SQLite file's folder, else the
    system's temporary folder). ``adopt_every``: on a database shared by nodes (PostgreSQL),
    seconds between two adoptions of the work of gone services (None: at :meth:`resume` only).
    ``open_stored``: how a stored instance is read for its check (the archive's storage
    ``open``, :mod:`dicomnet.archive.storage`; default: a file path).
    """

    def __init__(
        self,
        index: object,
        destinations: Mapping[str, tuple[str, int]],
        db_path: WorkflowLocation,
        *,
        ae_title: str = "DICOMNET",
        settings: Settings | None = None,
        ssl_context: ssl.SSLContext | None = None,
        retrieve_ae_title: str | None = None,
        max_attempts: int = 6,
        retry_delays: Sequence[float] = (10.0, 60.0, 300.0, 900.0, 3600.0),
        same_association: bool = True,
        response_wait: float = 30.0,
        workers: int = 4,
        max_items: int = 1_000_000,
        keep_done: float = 7 * 86400.0,
        supported_class: Callable[[str], bool] | None = None,
        spool_dir: str | None = None,
        on_state: Callable[[str, str, str | None], None] | None = None,
        adopt_every: float | None = 60.0,
        open_stored: Callable[[str], BinaryIO] = open_file,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not retry_delays or any(d < 0 for d in retry_delays):
            raise ValueError("retry_delays must be non-negative seconds, at least one")
        self._lookup = instance_lookup(index)
        self._open_stored = open_stored
        self.destinations = destinations
        self.ae_title = ae_title
        self.retrieve_ae_title = retrieve_ae_title
        self.max_attempts = max_attempts
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self.same_association = same_association
        self.response_wait = response_wait
        self.max_items = max_items
        self.keep_done = keep_done
        self._supported = supported_class or storage_class_check()
        self._ssl_context = ssl_context
        self._on_state = on_state
        self._ae = AE(ae_title)
        if settings is not None:
            for name in ("acse_timeout", "dimse_timeout", "network_timeout",
                         "connection_timeout", "maximum_pdu_size"):  # fmt: skip
                setattr(self._ae, name, getattr(settings, name))
        if self._ae.connection_timeout is None:
            # a requestor whose host is down must not hold a worker (and close()) for the
            # system's TCP connect timeout of minutes: the retry schedule takes over
            self._ae.connection_timeout = DEFAULT_CONNECT_TIMEOUT
        self._ae.add_requested_context(SOP_CLASS, list(REPORT_SYNTAXES))
        self._db = Workflow(db_path)
        #: where the state is: the SQLite file, or which database
        self.db_path = self._db.path
        if spool_dir is None:
            spool_dir = (tempfile.gettempdir() if self._db.shared
                         else os.path.dirname(os.path.abspath(self._db.path)))  # fmt: skip
        self.spool_dir = spool_dir
        remove_stale_spool_files(self.spool_dir)
        self._owner = new_owner(host=self._db.shared)
        try:
            self._lease = self._db.hold(self._owner)
        except BaseException:
            release_owner(self._owner)
            self._db.close()
            raise
        self._adopt_every = adopt_every if self._db.shared else None
        self._next_adopt = (None if self._adopt_every is None
                            else time.monotonic() + self._adopt_every)  # fmt: skip
        self._cond = threading.Condition()
        self._due: list[tuple[float, int]] = []  # (monotonic deadline, commitment id) heap
        self._busy: set[int] = set()
        self._again: set[int] = set()
        self._closed = False
        self._live: dict[int, Live] = {}  # commitment id -> its request's association
        self._assoc_locks: weakref.WeakKeyDictionary[Association, threading.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                        thread_name_prefix="dicomnet-commitment")  # fmt: skip
        self._timer = threading.Thread(target=self._run_timer, name="dicomnet-commitment-timer",
                                       daemon=True)  # fmt: skip
        self._timer.start()

    # --- public API ---------------------------------------------------------------------------
    def handlers(self) -> list[tuple[EventType, Callable[[Event], object]]]:
        """The server handler: EVT_N_ACTION, for the Storage Commitment Push Model SOP Class
        (its ``sop_classes``; another SOP class is answered 0122H). Run it in the handler
        pool (not :func:`~dicomnet.server.inline`): a large request takes a while to store."""
        return [(evt.EVT_N_ACTION, _NActionHandler(self.handle_n_action))]

    def resume(self) -> int:
        """Send what an earlier run left pending (accepted or checked; waiting ones whose
        requestor now has an address); forget delivered transactions older than
        ``keep_done``. Returns how many commitments were resumed."""
        purged = self._db.purge(time.time() - self.keep_done)
        if purged:
            LOG.info("storage commitment: %d delivered transaction(s) forgotten", purged)
        n = self.adopt()
        if n:
            LOG.info("storage commitment: %d pending report(s) resumed", n)
        return n

    def adopt(self) -> int:
        """Take over and send the pending work of services that are gone (see the module
        docstring); how many commitments were taken."""
        n = 0
        for cid, state, aet in self._db.claim(self._owner):
            if state == "waiting":
                if self._destination(aet) is None:
                    continue
                self._db.set_state(cid, "checked")
            self._submit(cid)
            n += 1
        return n

    def close(self) -> None:
        """Stop: running deliveries finish their attempt, queued ones stay in the database."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            for live in self._live.values():
                live.ready.set()  # a report waiting for its N-ACTION-RSP gives up now
        self._timer.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
        release_owner(self._owner)
        if self._lease is not None:
            self._lease.close()  # another service may take what is left over now
        for live in list(self._live.values()):
            live.unbind()
        self._live.clear()
        self._db.close()

    @property
    def owner(self) -> str:
        """This service's owner token (the ``owner`` of the commitments it handles)."""
        return self._owner

    def __enter__(self) -> CommitmentService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def state(self, transaction_uid: str) -> str | None:
        """The state of the latest commitment with this Transaction UID (None: unknown)."""
        return self._db.latest_state(transaction_uid)

    # --- the request (PS3.4 J.3.2) ------------------------------------------------------------
    def handle_n_action(self, event: Event) -> object:
        """EVT_N_ACTION: validate, persist, answer (Success or a failure status); the report
        is produced by the workers."""
        request = event.request
        if not isinstance(request, P.N_ACTION):
            return Status.PROCESSING_FAILURE
        if request.RequestedSOPClassUID != SOP_CLASS:
            return _status_reply(Status.SOP_CLASS_NOT_SUPPORTED,
                                 f"N-ACTION not served for {request.RequestedSOPClassUID}", None)  # fmt: skip
        if request.RequestedSOPInstanceUID != WELL_KNOWN_INSTANCE:
            # PS3.4 J.3.2.1.2: requests name the well-known instance (J.3.5)
            return _status_reply(Status.NO_SUCH_SOP_INSTANCE,
                                 "not the Storage Commitment Push Model instance", None)  # fmt: skip
        if event.action_type != REQUEST_COMMITMENT:
            return _status_reply(Status.NO_SUCH_ACTION,
                                 f"no action type {event.action_type}", None)  # fmt: skip
        if self._closed:
            return _status_reply(Status.PROCESSING_FAILURE, "storage commitment is stopping", None)
        source = event.data_source
        if source is None:
            return _status_reply(Status.MISSING_ATTRIBUTE, "no Action Information", None)
        aet = (event.assoc.requestor.ae_title or "").strip()
        context = event.context
        try:
            cid, duplicate = self._accept(source, accepted_syntax_of(context), aet)
        except MalformedRequest as exc:
            LOG.warning("storage commitment request from %s refused (0x%04X): %s", aet,
                        exc.status, exc.reason)  # fmt: skip
            return _status_reply(exc.status, exc.reason, exc.tag)
        except Exception as exc:
            LOG.exception("storage commitment request from %s not stored", aet)
            return _status_reply(Status.PROCESSING_FAILURE, f"not stored: {exc}", None)
        if duplicate:
            LOG.warning("storage commitment %d from %s reuses a Transaction UID: every "
                        "reference fails with 0131H", cid, aet)  # fmt: skip
        assoc = event.assoc
        if (self.same_association and isinstance(assoc, Association) and context is not None
                and context.context_id is not None and request.MessageID is not None):  # fmt: skip
            live = Live(assoc, context.context_id, request.MessageID)
            live.bind()  # before our response is written
            with self._cond:
                self._live[cid] = live
        self._submit(cid)
        return Status.SUCCESS

    def _accept(self, source: DataSource, ts: str | None, aet: str) -> tuple[int, bool]:
        """Read the request as a stream into the database, in one transaction committed
        before the N-ACTION-RSP (PS3.4 J.3.2.1.3); (commitment id, duplicate Transaction UID)."""
        request = CommitmentRequest(source, ts)
        cid, txn, duplicate = self._db.accept(request, aet, self._owner, self.max_items)
        self._tell(txn, "accepted", f"{request.count} reference(s) from {aet}")
        LOG.info("storage commitment %d accepted from %s: transaction %s, %d reference(s)",
                 cid, aet, txn, request.count)  # fmt: skip
        return cid, duplicate

    # --- the check (PS3.4 J.3.3.1.2) ----------------------------------------------------------
    def verdict(self, sop_class: str, sop_instance: str, stored: StoredInstance | None) -> int:
        """0 when we commit to ``sop_instance``, else its Failure Reason (PS3.3 C.14.1.1)."""
        return check_instance(sop_class, sop_instance, stored, self._supported, self._open_stored)

    def _check(self, cid: int) -> int:
        """Give every reference its verdict, one page at a time; the failure count."""
        last = -1
        while True:
            page = self._db.unchecked(cid, last)
            if not page:
                break
            found = self._lookup.lookup([inst for _, _, inst in page])
            self._db.set_reasons(cid, [(seq, int(self.verdict(cls, inst, found.get(inst))))
                                       for seq, cls, inst in page])  # fmt: skip
            last = page[-1][0]
            if len(page) < PAGE:
                break
        return self._db.checked(cid)

    def _report(self, cid: int, row: Row, transfer_syntax: str | None) -> tuple[DataSource, int]:
        """The Event Information (PS3.4 Table J.3-2) and the Event Type ID, from the database."""
        failed, committed = self._db.counts(cid)
        payload = encode_report(
            row.transaction_uid,
            self._db.references(cid, failed=True) if failed else (),
            ((c, i) for c, i, _ in self._db.references(cid, failed=False)) if committed else (),
            transfer_syntax or IMPLICIT_LE,
            retrieve_ae_title=self.retrieve_ae_title,
            spool_dir=self.spool_dir,
        )
        return payload, EVENT_FAILURES if failed else EVENT_SUCCESS

    # --- delivery (PS3.4 J.3.3.1.2, J.3.3.1.3) -------------------------------------------------
    def _process(self, cid: int) -> None:
        """Check (once), then deliver: on the request's association, else on a new one."""
        try:
            row = self._db.row(cid)
            if row is None or row.state not in PENDING:
                return
            if row.owner != self._owner:
                LOG.warning("storage commitment %d is owned by %s now; left to it", cid, row.owner)
                return
            if row.state == "accepted":
                failed = self._check(cid)
                LOG.info("storage commitment %d checked: %d of %d failed", cid, failed,
                         row.item_count)  # fmt: skip
                self._tell(row.transaction_uid, "checked", f"{failed} of {row.item_count} failed")
            with self._cond:
                live = self._live.get(cid)
            if self._closed:
                return  # stays in the database for the next run
            if live is not None and self._deliver_on(live, cid, row):
                self._db.delivered(cid)
                self._tell(row.transaction_uid, "delivered", "on the request's association")
                self._deliver_waiting(live, row.requestor_aet)
                return
            if self._closed:
                return
            self._deliver_new(cid, row)
        except Exception as exc:
            if self._closed:
                return
            LOG.exception("storage commitment %d: delivery failed", cid)
            with contextlib.suppress(Exception):
                self._retry_later(cid, f"{type(exc).__name__}: {exc}")
        finally:
            with self._cond:  # the request's association is used once, or never
                live = self._live.pop(cid, None)
            if live is not None:
                live.unbind()

    def _deliver_on(self, live: Live, cid: int, row: Row) -> bool:
        """The report on the request's own association, after our N-ACTION-RSP."""
        try:
            live.ready.wait(self.response_wait)
        finally:
            live.unbind()
        assoc = live.assoc
        if self._closed or not assoc.is_established:
            return False
        status = self._send(assoc, live.context_id, cid, row)
        if status is not None and category(status) in (Category.SUCCESS, Category.WARNING):
            LOG.info("storage commitment %d reported to %s on its association", cid,
                     row.requestor_aet)  # fmt: skip
            return True
        LOG.info("storage commitment %d: report on the request's association failed (%s)",
                 cid, "no response" if status is None else f"0x{status:04X}")  # fmt: skip
        return False

    def _deliver_waiting(self, live: Live, aet: str) -> None:
        """Reports kept for this requestor (no address known) go on its new association."""
        assoc = live.assoc
        for other in self._db.waiting_for(aet):
            with self._cond:
                if other in self._busy or not assoc.is_established:
                    continue
                self._busy.add(other)
            try:
                row = self._db.row(other)
                if row is None or not self._db.take_waiting(other, self._owner):
                    continue
                try:
                    status = self._send(assoc, live.context_id, other, row)
                except Exception as exc:  # this one stays waiting; the others may still go
                    LOG.warning("storage commitment %d (waiting) not sent: %s", other, exc)
                    status = None
                if status is not None and category(status) in (Category.SUCCESS, Category.WARNING):
                    self._db.delivered(other)
                    LOG.info("storage commitment %d (waiting) reported to %s", other, aet)
                    self._tell(row.transaction_uid, "delivered", "on a later association")
                else:
                    self._db.set_state(other, "waiting", "not answered on a later association")
            finally:
                with self._cond:
                    self._busy.discard(other)

    def _send(self, assoc: Association, context_id: int, cid: int, row: Row) -> int | None:
        lock = self._assoc_lock(assoc)
        with lock:  # one report at a time per association: one thread drives its responses
            payload, event_type = self._report(cid, row, assoc.transfer_syntax_of(context_id))
            try:
                return send_event_report(assoc, context_id, payload, event_type)
            finally:
                payload.close()

    def _deliver_new(self, cid: int, row: Row) -> None:
        """The report on an association we request (PS3.4 J.3.3.1.3 Note: SCP role)."""
        address = self._destination(row.requestor_aet)
        if address is None:
            LOG.warning("storage commitment %d: no address for %r; the report waits for its "
                        "next association", cid, row.requestor_aet)  # fmt: skip
            why = f"no destination for {row.requestor_aet!r}"
            self._db.set_state(cid, "waiting", why)
            self._tell(row.transaction_uid, "waiting", why)
            return
        host, port = address
        error = None
        assoc = self._ae.associate(
            host, port, ae_title=row.requestor_aet, ssl_context=self._ssl_context,
            ext_neg=[build_role(SOP_CLASS, scu_role=False, scp_role=True)],  # PS3.7 D.3.3.4
        )  # fmt: skip
        try:
            if not assoc.is_established:
                error = f"association with {host}:{port} failed: " + (
                    assoc.rejection_text or assoc.failure_reason or "not established"
                )
            else:
                status = self._send(assoc, scp_context_id(assoc), cid, row)
                if status is None:
                    error = "no N-EVENT-REPORT response"
                elif category(status) not in (Category.SUCCESS, Category.WARNING):
                    error = f"N-EVENT-REPORT answered 0x{status:04X}"
        except DicomNetError as exc:
            error = str(exc)
        finally:
            if assoc.is_established:
                assoc.release()
        if error is None:
            self._db.delivered(cid)
            self._tell(row.transaction_uid, "delivered", f"to {host}:{port}")
            LOG.info("storage commitment %d reported to %s at %s:%d", cid, row.requestor_aet,
                     host, port)  # fmt: skip
            return
        self._retry_later(cid, error)

    def _retry_later(self, cid: int, error: str) -> None:
        attempts = self._db.failed_attempt(cid, error)
        row = self._db.row(cid)
        txn = "" if row is None else row.transaction_uid
        if attempts >= self.max_attempts:
            LOG.error("storage commitment %d: giving up after %d attempt(s): %s", cid, attempts,
                      error)  # fmt: skip
            self._db.set_state(cid, "failed", error)
            self._tell(txn, "failed", error)
            return
        delay = self.retry_delays[min(attempts, len(self.retry_delays)) - 1]
        LOG.warning("storage commitment %d: attempt %d failed (%s); next in %.0f s", cid,
                    attempts, error, delay)  # fmt: skip
        self._db.retry_at(cid, error, time.time() + delay)
        self._tell(txn, "retry", error)
        self._schedule(cid, delay)

    def _tell(self, transaction_uid: str, state: str, detail: str | None) -> None:
        if self._on_state is None:
            return
        try:
            self._on_state(transaction_uid, state, detail)
        except Exception:
            LOG.exception("storage commitment on_state callback failed")

    def _destination(self, aet: str) -> tuple[str, int] | None:
        found = self.destinations.get(aet)
        return found if found is not None else self.destinations.get(aet.strip())

    def _assoc_lock(self, assoc: Association) -> threading.Lock:
        with self._cond:
            lock = self._assoc_locks.get(assoc)
            if lock is None:
                lock = self._assoc_locks[assoc] = threading.Lock()
            return lock

    # --- scheduling -----------------------------------------------------------------------------
    def _submit(self, cid: int) -> None:
        with self._cond:
            if self._closed:
                return
            if cid in self._busy:
                self._again.add(cid)
                return
            self._busy.add(cid)
        try:
            self._pool.submit(self._run, cid)
        except RuntimeError:  # shut down meanwhile: the database keeps it
            with self._cond:
                self._busy.discard(cid)

    def _run(self, cid: int) -> None:
        try:
            self._process(cid)
        finally:
            with self._cond:
                self._busy.discard(cid)
                again = cid in self._again
                self._again.discard(cid)
            if again:
                self._submit(cid)

    def _schedule(self, cid: int, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._due, (time.monotonic() + delay, cid))
            self._cond.notify()

    def _run_timer(self) -> None:
        """Hand each retry to the pool at its deadline: one condition wait until the earliest
        one (or new work, or close) -- no sleep, no polling; and the adoption of gone services'
        work every ``adopt_every`` seconds (a shared database only)."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                due = []
                while self._due and self._due[0][0] <= now:
                    due.append(heapq.heappop(self._due)[1])
                adopt = self._next_adopt is not None and self._next_adopt <= now
                if adopt and self._adopt_every is not None:
                    self._next_adopt = now + self._adopt_every
                if due or adopt:
                    self._cond.release()
                    try:
                        for cid in due:
                            self._submit(cid)
                        if adopt:
                            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                                self._pool.submit(self._adopt_quietly)
                    finally:
                        self._cond.acquire()
                    continue
                deadlines = [d for d in (self._due[0][0] if self._due else None,
                                         self._next_adopt) if d is not None]  # fmt: skip
                self._cond.wait(min(deadlines) - now if deadlines else None)

    def _adopt_quietly(self) -> None:
        if self._closed:
            return
        try:
            n = self.adopt()
        except Exception:  # the database unavailable: the next round tries again
            LOG.exception("storage commitment: adopting the work of gone services failed")
            return
        if n:
            LOG.warning("storage commitment: %d pending report(s) of gone services adopted", n)
