"""The acceptor side of one served connection: negotiation, dispatch, release.

Theory of operation
-------------------
The server (:mod:`dicomnet.server`) gives each TCP connection an
:class:`~dicomnet.transport.aio.AsyncDriver` (the bytes) and an :class:`Acceptor` (what they
mean), which receives the Upper Layer events on the loop thread:

* ``AssociationRequested`` (PS3.8 AE-6 already checked the protocol version): over
  ``ae.maximum_associations`` -> A-ASSOCIATE-RJ 2/3/2 (rejected-transient, service-provider
  presentation, local-limit-exceeded; PS3.8 Table 9-21); then the AE's access policy, if any
  (:mod:`dicomnet.monitor`: who may associate); then
  :func:`dicomnet.ul.negotiation.negotiate` with the AE's supported contexts, role policy, AE
  title checks, asynchronous operations window and the EVT_USER_ID handler -> accept/reject.
  An acceptor-side :class:`~dicomnet.association.Association` is built around the driver.
* ``PDataReceived``: fed to ``assoc.dimse.receive_primitive`` on the loop thread. The provider
  queues complete messages and keeps C-CANCEL-RQs apart (``cancel_rq``). The acceptor takes the
  *requests* out of the queue and records cancels for the requests it knows, so
  ``event.is_cancelled`` turns True while the handler runs (PS3.7 9.3.2.3); the C-STORE-RSPs
  answering our C-GET sub-operations go to the flows awaiting them (``waiters``); other
  responses stay for a worker waiting on them.
* Requests are served in order, one at a time, unless an asynchronous operations window > 1 was
  negotiated (PS3.7 D.3.3.3): then up to that many run at once. A request whose SOP class is not
  its context's, or that the access policy refuses, is answered at once (0122H / 0124H). Plain
  handlers of one-shot services run in the pool (unless marked with
  :func:`dicomnet.server.inline`: short, non-blocking ones run on the loop, like the built-in
  defaults); coroutine handlers of one-shot services run on the loop; C-FIND/GET/MOVE run as
  coroutines on the loop, paced by the peer (:mod:`dicomnet.serverflow`).
* Sending is serialized per association (one DIMSE message at a time: PS3.8 section 9.3.5 has
  no interleaving of messages' fragments), and a worker producing faster than the peer reads is
  blocked by the driver's flow control.
* ``ReleaseRequested``: the A-RELEASE-RP is sent once the running requests have answered.
* A protocol error (the sans-IO layers raise :class:`~dicomnet.errors.ProtocolError` or emit
  ``Aborted(local=True)``) ends in an A-ABORT and a closed connection; the server goes on.

The acceptor describes the association and each operation in the records of
:mod:`dicomnet.monitor` and tells the server's monitors (audit trail, metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from dicomnet import events as evt
from dicomnet.dimse import primitives as P
from dicomnet.errors import DicomNetError, ProtocolError
from dicomnet.monitor import (
    AssociationInfo,
    AssociationRecord,
    OperationRecord,
    clip,
    operation_record,
)
from dicomnet.serverflow import ServiceFlow
from dicomnet.services import nservices, qr, storage, verification
from dicomnet.services.dispatch import NO_HANDLER_STATUS, ServiceCall, error_comment
from dicomnet.transport.aio import AsyncDriver
from dicomnet.transport.base import monotonic
from dicomnet.ul.events import (
    Aborted,
    AssociationRejected,
    AssociationRequested,
    PDataReceived,
    ReleaseRequested,
    TransportClosed,
)
from dicomnet.ul.negotiation import RJ_LOCAL_LIMIT, AcceptorPolicy, negotiate
from dicomnet.ul.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
)

if TYPE_CHECKING:
    from dicomnet.association import Association
    from dicomnet.server import Server

__all__ = ["INLINE_ATTR", "Acceptor", "Job"]

LOGGER = logging.getLogger("dicomnet.server")

ServiceFn = Callable[[ServiceCall], None]
AsyncServiceFn = Callable[[ServiceCall], Any]

# request primitive -> (event type, worker-thread service, coroutine service or None)
_SERVICES: dict[type[P.DIMSEPrimitive], tuple[evt.EventType, ServiceFn, AsyncServiceFn | None]] = {
    P.C_ECHO: (evt.EVT_C_ECHO, verification.run, verification.arun),
    P.C_STORE: (evt.EVT_C_STORE, storage.run, storage.arun),
    P.N_EVENT_REPORT: (evt.EVT_N_EVENT_REPORT, nservices.run, nservices.arun),
    P.N_GET: (evt.EVT_N_GET, nservices.run, nservices.arun),
    P.N_SET: (evt.EVT_N_SET, nservices.run, nservices.arun),
    P.N_ACTION: (evt.EVT_N_ACTION, nservices.run, nservices.arun),
    P.N_CREATE: (evt.EVT_N_CREATE, nservices.run, nservices.arun),
    P.N_DELETE: (evt.EVT_N_DELETE, nservices.run, nservices.arun),
}

# the Q/R services: coroutines on the loop, paced by the peer (dicomnet.serverflow)
FlowFn = Callable[[ServiceCall, ServiceFlow], Awaitable[None]]
_FLOWS: dict[type[P.DIMSEPrimitive], tuple[evt.EventType, FlowFn]] = {
    P.C_FIND: (evt.EVT_C_FIND, qr.find),
    P.C_GET: (evt.EVT_C_GET, qr.get),
    P.C_MOVE: (evt.EVT_C_MOVE, qr.move),
}



INLINE_ATTR = "__dicomnet_inline__"


class Job:
    """One received request waiting for, or being served by, its handler."""

    __slots__ = ("context_id", "message_id", "primitive")

    def __init__(self, context_id: int, primitive: P.DIMSEPrimitive) -> None:
        self.context_id = context_id
        self.primitive = primitive
        self.message_id: int = getattr(primitive, "MessageID", 0) or 0


class Acceptor:
    """The acceptor side of one connection: negotiation, dispatch, release (loop thread)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.driver: AsyncDriver | None = None
        self.assoc: Association | None = None
        self.established = False
        self.window = 1
        self.pending: deque[Job] = deque()
        self.running = 0
        self.active_ids: set[int] = set()
        self.cancelled: set[int] = set()
        self.release_pending = False
        self.send_lock = threading.Lock()
        self.provider_send: Callable[[P.DIMSEPrimitive, int], None] = self._not_established
        # what the AE's monitors are told (dicomnet.monitor): this association, its operations
        self.record: AssociationRecord | None = None
        self.ops: dict[int, OperationRecord] = {}
        # our C-GET sub-operations' C-STORE-RQs awaiting their responses (Message ID -> future)
        self.waiters: dict[int, asyncio.Future[P.DIMSEPrimitive]] = {}

    def stalled(self, driver: AsyncDriver) -> None:
        """The driver aborts us: the peer read nothing for the network timeout."""
        if self.record is not None:
            self.record.outcome = "stalled"
        if self.record is not None:
            self.server.monitor("stalled", self.record)

    @property
    def busy(self) -> bool:
        """Requests are being served or waiting: the driver's idle timeout does not apply."""
        return bool(self.running or self.pending)

    # --- DriverOwner --------------------------------------------------------------------------
    def connection_made(self, driver: AsyncDriver) -> None:
        from dicomnet.association import Association

        self.driver = driver
        self.assoc = Association(self.server.ae, mode="acceptor", driver=driver)
        peer = driver.peername
        if peer is not None:
            self.assoc.requestor.address, self.assoc.requestor.port = peer
        local = driver.sockname
        if local is not None:
            self.assoc.acceptor.address, self.assoc.acceptor.port = local
        self.server.connection_opened(self)
        self.server.fire(evt.EVT_CONN_OPEN, self.assoc, address=peer)

    def connection_lost(self, driver: AsyncDriver) -> None:
        self.established = False
        provider = getattr(self.assoc, "_dimse", None)  # None: no P-DATA was ever received
        if provider is not None:
            # A message cut off mid-transfer: drop it and delete its spool file.
            try:
                provider.connection_lost()
            except Exception:  # pragma: no cover - clean-up must not break the loop
                LOGGER.exception("DIMSE clean-up failed")
        for job in self.pending:
            _close_data(job.primitive)
        self.server.waiting_changed(-len(self.pending))
        self.pending.clear()
        waiters, self.waiters = self.waiters, {}
        for fut in waiters.values():
            if not fut.done():
                fut.set_exception(ProtocolError("the association is gone", local=True))
                fut.exception()  # retrieved: nobody may be waiting any more
        self.server.connection_closed(self)
        record = self.record
        if record is not None and record.ended is None:
            record.ended = time.time()
            if record.outcome in ("requested", "accepted"):
                record.outcome = "closed"
            self.server.monitor("association_ended", record)
        self.server.fire(evt.EVT_CONN_CLOSE, self.assoc, address=driver.peername)

    def handle_event(self, driver: AsyncDriver, event: object) -> None:
        kind = type(event)
        if kind is PDataReceived:
            self._on_pdata(event)  # type: ignore[arg-type]
        elif kind is AssociationRequested:
            self._on_request(event.pdu)  # type: ignore[attr-defined]
        elif kind is ReleaseRequested:
            self._pass_to_assoc(event)
            self.release_pending = True
            self._maybe_release()
        elif kind is Aborted:
            was = self.established
            self.established = False
            self._pass_to_assoc(event)
            if self.record is not None and self.record.outcome == "accepted":
                self.record.outcome = "aborted"
            if was:
                self.server.fire(evt.EVT_ABORTED, self.assoc)
        elif kind is AssociationRejected:  # our provider refused it (AE-6, protocol version)
            self.server.fire(evt.EVT_REJECTED, self.assoc, rejection=event.pdu)  # type: ignore[attr-defined]
        elif kind is TransportClosed:
            self.established = False
            self._pass_to_assoc(event)

    def _pass_to_assoc(self, event: object) -> None:
        if self.assoc is not None:
            try:
                self.assoc.handle_event(event)
            except Exception:  # the association's bookkeeping must not kill the loop
                LOGGER.exception("association event handling failed")

    def abort(self) -> None:
        """Server-initiated A-ABORT (shutdown): EVT_ABORTED fires as for a peer's abort."""
        if self.established and self.assoc is not None:
            self.established = False
            if self.record is not None:
                self.record.outcome = "aborted"
            self.assoc.abort()  # A-ABORT through our driver, association flags set
            self.server.fire(evt.EVT_ABORTED, self.assoc)
        elif self.driver is not None:
            self.driver.abort()

    # --- negotiation (PS3.8 7.1, PS3.7 Annex D) ---------------------------------------------------
    def _policy(self, rq: AAssociateRQ) -> AcceptorPolicy:
        ae = self.server.ae
        roles = {
            cx.abstract_syntax: (cx.scu_role is not False, cx.scp_role is not False)
            for cx in ae.supported_contexts
        }
        supported = ae.supported_map()
        promiscuous = getattr(ae, "promiscuous_syntaxes", None)
        if promiscuous:  # anything else proposed: taken as a storage SOP class of its own
            for pc in rq.presentation_contexts:
                supported.setdefault(pc.abstract_syntax.rstrip("\0 "), list(promiscuous))
        user_identity = self._user_identity if self.server.get_handlers(evt.EVT_USER_ID) else None
        extended = self._extended if self.server.get_handlers(evt.EVT_SOP_EXTENDED) else None
        return AcceptorPolicy(
            ae_title=ae.ae_title,
            supported=supported,
            require_called_ae_title=bool(ae.require_called_aet),
            allowed_calling_ae_titles=list(ae.require_calling_aet) or None,
            roles=roles,
            max_pdata_length=ae.maximum_pdu_size,
            async_ops_window=(ae.maximum_operations_performed, ae.maximum_operations_invoked),
            implementation_class_uid=ae.implementation_class_uid,
            implementation_version_name=ae.implementation_version_name,
            user_identity=user_identity,
            extended_negotiation=extended,
        )

    def _user_identity(self, item: UserIdentityRQ) -> tuple[bool, bytes | None]:
        """EVT_USER_ID: the handler returns (accepted, server response or None)."""
        fn, args = self.server.get_handlers(evt.EVT_USER_ID)[0]
        try:
            accepted, response = fn(
                evt.Event(
                    self.assoc,
                    evt.EVT_USER_ID,
                    user_id_type=item.user_identity_type,
                    primary_field=item.primary_field,
                    secondary_field=item.secondary_field,
                    positive_response_requested=bool(item.positive_response_requested),
                ),
                *args,
            )
        except Exception:
            LOGGER.exception("EVT_USER_ID handler failed: rejecting the association")
            return False, None
        return bool(accepted), response

    def _extended(self, item: SOPClassExtendedNegotiation) -> bytes | None:
        """EVT_SOP_EXTENDED: the handler gets ``app_info`` ({SOP class UID: the requestor's
        service-class application information}) and returns {UID: our answer} (a missing UID,
        or None: no 56H item in the AC for it, PS3.7 D.3.3.5)."""
        fn, args = self.server.get_handlers(evt.EVT_SOP_EXTENDED)[0]
        uid = item.sop_class_uid
        try:
            answers = fn(evt.Event(self.assoc, evt.EVT_SOP_EXTENDED,
                                   app_info={uid: item.service_class_application_information}),
                         *args)  # fmt: skip
        except Exception:
            LOGGER.exception("EVT_SOP_EXTENDED handler failed: no extended negotiation answer")
            return None
        answer = (answers or {}).get(uid)
        return None if answer is None else bytes(answer)

    def _on_request(self, rq: AAssociateRQ) -> None:
        server, driver, assoc = self.server, self.driver, self.assoc
        assert driver is not None and assoc is not None
        assoc.requestor.ae_title = rq.calling_ae_title.strip()
        assoc.acceptor.ae_title = rq.called_ae_title.strip()
        server.fire(evt.EVT_REQUESTED, assoc, request=rq)
        address, port = driver.peername or ("", 0)
        self.record = AssociationRecord(address, port, assoc.requestor.ae_title,
                                        assoc.acceptor.ae_title, driver.tls_subject)  # fmt: skip
        now = monotonic()
        limit = server.ae.maximum_associations
        if server.stopping or (limit and server.established_count() >= limit):
            # PS3.8 Table 9-21: rejected-transient, service-provider (presentation),
            # local-limit-exceeded.
            self._reject(RJ_LOCAL_LIMIT, now)
            return
        access = getattr(server.ae, "access", None)
        if access is not None:
            info = AssociationInfo(address, port, assoc.requestor.ae_title,
                                   assoc.acceptor.ae_title, driver.tls_subject,
                                   server.open_by(assoc.requestor.ae_title))  # fmt: skip
            try:
                refusal = access.admit(info)
            except Exception:
                LOGGER.exception("access policy failed: rejecting the association")
                refusal = (1, 1, 1)  # rejected-permanent, service-user, no reason given
            if refusal is not None:
                self._reject(AAssociateRJ(*refusal), now)
                return
        answer = negotiate(rq, self._policy(rq))
        if not isinstance(answer, AAssociateAC):
            self._reject(answer, now)
            return
        driver.conn.accept(answer, now)
        assoc.apply_negotiation(rq, answer)
        max_size = getattr(server.ae, "max_message_size", None)
        if max_size:
            assoc.max_message_size = max_size
        assoc.is_established = True
        self.established = True
        window = answer.user_information.async_ops_window
        # The AC's invoked value = operations the requestor may invoke = we perform at once.
        performed = 1 if window is None else window.max_operations_invoked
        self.window = server.max_workers if performed == 0 else max(1, performed)
        self._wrap_send(assoc)
        self.record.outcome = "accepted"
        server.monitor("association_started", self.record)
        server.fire(evt.EVT_ACCEPTED, assoc)

    def _reject(self, rj: Any, now: float) -> None:
        assert self.driver is not None
        self.driver.conn.reject(rj, now)
        record = self.record
        LOGGER.info(
            "rejected association from %s (%s -> %s): %d/%d/%d", self.driver.peername,
            clip(record.calling_ae) if record else "?", clip(record.called_ae) if record else "?",
            rj.result, rj.source, rj.reason,
        )  # fmt: skip
        if record is not None:
            record.outcome = "rejected"
            record.rejection = (rj.result, rj.source, rj.reason)
            self.server.monitor("association_started", record)
        self.server.fire(evt.EVT_REJECTED, self.assoc, rejection=rj)

    def _wrap_send(self, assoc: Association) -> None:
        """One DIMSE message at a time on this association, whoever sends it (PS3.8 9.3.5:
        the fragments of two messages never interleave).

        Worker threads wait for the lock. The loop thread never blocks on it (a worker holding
        it may be waiting for the loop to flush its PDUs): when it is taken, the loop's message
        is handed to the pool, which waits for it instead.
        """
        provider = assoc.dimse
        self.provider_send = provider.send_msg  # what a ServiceCall sends responses with
        original = provider._send_message
        lock = self.send_lock
        executor = self.server.executor
        driver = self.driver
        assert driver is not None

        def locked(msg: Any, context_id: int) -> None:
            with lock:
                original(msg, context_id)

        observe = self._observe if self.server.monitors else None

        def send_message(msg: Any, context_id: int) -> None:
            if observe is not None:
                observe(msg)
            if not driver.on_loop_thread:
                locked(msg, context_id)
            elif lock.acquire(blocking=False):
                try:
                    original(msg, context_id)
                finally:
                    lock.release()
            else:
                try:
                    executor.submit(self._quiet, locked, msg, context_id)
                except RuntimeError:  # shutting down: nobody will read it anyway
                    pass

        provider._send_message = send_message

    def _observe(self, msg: Any) -> None:
        """A response on its way out: counted into its operation's record; the final one
        (not Pending) finishes the record (any thread; records are per request)."""
        elements = msg.command_set.elements
        status = elements.get(0x0900)
        if status is None:
            return  # a request of ours (C-GET sub-operation C-STORE): not an answer
        mid = elements.get(0x0120)
        record = self.ops.get(mid) if isinstance(mid, int) else None
        if record is None:
            return
        if status in (0xFF00, 0xFF01):
            record.matches += 1
            return
        record.status = _as_int(status)
        comment = elements.get(0x0902)
        record.comment = clip(comment) if comment else None
        record.completed = _as_int(elements.get(0x1021))
        record.failed = _as_int(elements.get(0x1022))
        record.warning = _as_int(elements.get(0x1023))
        record.duration = time.time() - record.started
        self.ops.pop(record.message_id, None)
        self.server.monitor("operation_finished", record)

    @staticmethod
    def _not_established(rsp: P.DIMSEPrimitive, context_id: int) -> None:
        raise DicomNetError("the association is not established")

    @staticmethod
    def _quiet(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except DicomNetError as exc:
            LOGGER.info("response not sent: %s", exc)
        except Exception:
            LOGGER.exception("sending a response failed")

    # --- requests ---------------------------------------------------------------------------------
    def _on_pdata(self, event: PDataReceived) -> None:
        assoc = self.assoc
        if assoc is None or not self.established:
            return
        provider = assoc.dimse
        provider.receive_primitive(event.pdu)  # ProtocolError -> the driver aborts
        queue = provider.msg_queue
        if queue:
            # requests go to our pending list; responses stay for waiters (a worker's C-GET
            # sub-operation waits for its C-STORE-RSP). ``Status`` is None on every request.
            requests = [item for item in list(queue) if item[1].Status is None]
            for item in requests:
                queue.remove(item)  # identity matches first
                self.pending.append(Job(item[0], item[1]))
            if requests:
                self.server.waiting_changed(len(requests))
            if self.waiters and len(queue) > 0:
                self._route_responses(queue)
        cancels = provider.cancel_rq
        if cancels:
            known = self.active_ids | {job.message_id for job in self.pending}
            for mid in list(cancels):
                if mid in known:
                    self.cancelled.add(mid)
                    del cancels[mid]
                else:
                    del cancels[mid]  # unknown or finished operation: ignored (PS3.7 9.3.2.3)
        self._pump()

    def _route_responses(self, queue: Any) -> None:
        """Hand the C-STORE-RSPs of our C-GET sub-operations to the flows awaiting them."""
        for item in list(queue):
            mid = getattr(item[1], "MessageIDBeingRespondedTo", None)
            fut = self.waiters.get(mid) if isinstance(mid, int) else None
            if fut is None:
                continue
            queue.remove(item)
            if not fut.done():
                fut.set_result(item[1])

    def _pump(self) -> None:
        while self.pending and self.running < self.window:
            job = self.pending.popleft()
            self.server.waiting_changed(-1)
            self._start(job)
        self._maybe_release()

    def _start(self, job: Job) -> None:
        assoc = self.assoc
        server = self.server
        assert assoc is not None and server.loop is not None
        request = job.primitive
        spec = _SERVICES.get(type(request))
        flow_spec = _FLOWS.get(type(request)) if spec is None else None
        if spec is not None:
            event_type, run, arun = spec
        elif flow_spec is not None:
            event_type, run, arun = flow_spec[0], None, None
        else:  # a request type we do not serve (cannot happen: all are listed)
            _close_data(request)
            return
        context = assoc.context_by_id(job.context_id)
        if server.monitors and self.record is not None:
            self.ops[job.message_id] = operation_record(self.record, request, job.message_id)
            server.monitor("operation_started", self.ops[job.message_id])
        if not _sop_class_matches(request, context):
            self._refuse(job, context)
            return
        access = getattr(server.ae, "access", None)
        if access is not None:
            try:
                refusal = access.permit(assoc, request)
            except Exception:
                LOGGER.exception("access policy failed: refusing the request")
                refusal = (0x0124, "access policy failure")
            if refusal is not None:
                self._refuse(job, context, refusal)
                return
        bound = server.get_handlers(event_type)
        handler, args = bound[0] if bound else (None, ())
        mid = job.message_id
        inline_now = arun is not None and (handler is None or getattr(handler, INLINE_ATTR, False))
        call = ServiceCall(
            assoc,
            job.context_id,
            context,
            request,
            # answered at once below: the event is built only if the handler asks for it;
            # otherwise built now, so its timestamp is the request's dispatch time
            None if inline_now else self._event(assoc, event_type, context, request, mid),
            handler,
            args,
            None,
            server.loop,
            event_type=event_type,
            send_msg=self.provider_send,
            cancelled=self.cancelled,
        )
        self.running += 1
        self.active_ids.add(mid)
        if flow_spec is not None:
            # Q/R: a coroutine on the loop, paced by the peer (dicomnet.serverflow)
            task = server.loop.create_task(self._run_flow(flow_spec[1], call))
            server.track(task)
            task.add_done_callback(lambda _t: self._done(mid))
            return
        assert run is not None
        if inline_now:
            # The built-in default, or a handler marked with inline(): answered at once, on the
            # loop -- no thread hop (two cross-thread wake-ups per request), no task.
            self._run_sync(run, call)
            self._finish_job(mid)  # _pump's loop goes on with the next request
            return
        if arun is not None and inspect.iscoroutinefunction(handler):
            # Coroutine handlers of one-shot services run on the loop.
            task = server.loop.create_task(self._run_async(arun, call))
            server.track(task)
            task.add_done_callback(lambda _t: self._done(mid))
            return
        try:
            future = server.executor.submit(self._run_sync, run, call)
        except RuntimeError:  # the pool is shut down: we are stopping
            self._finish_job(mid)
            return
        future.add_done_callback(lambda f: self._done_threadsafe(f, mid))

    def _event(
        self, assoc: Association, event_type: evt.EventType, context: Any, request: Any, mid: int
    ) -> evt.Event:
        cancelled = self.cancelled
        return evt.Event(
            assoc,
            event_type,
            context=context,
            request=request,
            cancel_check=lambda: mid in cancelled,
        )

    def _refuse(self, job: Job, context: Any, refusal: tuple[int, str] | None = None) -> None:
        """Answer a request whose SOP class is not the context's abstract syntax with 0122H
        (Refused: SOP Class not supported, PS3.7 Annex C.5.5), or one the access policy
        refused with its ``(status, comment)``, and nothing else."""
        _close_data(job.primitive)
        req = job.primitive
        rsp = type(req)()
        rsp.MessageIDBeingRespondedTo = job.message_id
        for name in ("AffectedSOPClassUID", "AffectedSOPInstanceUID"):
            if name in rsp.FIELDS:
                setattr(rsp, name, getattr(req, name, None))
        abstract = getattr(context, "abstract_syntax", None)
        if refusal is None:
            rsp.Status = NO_HANDLER_STATUS
            rsp.ErrorComment = error_comment(f"SOP class does not match context {abstract}")
            LOGGER.info("refused %s on context %d (%s)", req.SERVICE, job.context_id, abstract)
        else:
            rsp.Status, comment = refusal
            rsp.ErrorComment = error_comment(comment)
            LOGGER.info("refused %s from %s: %s", req.SERVICE,
                        clip(self.record.calling_ae) if self.record else "?", comment)  # fmt: skip
        self._quiet(self._sender(job.context_id), rsp)

    def _sender(self, context_id: int) -> Callable[[P.DIMSEPrimitive], None]:
        assoc = self.assoc
        assert assoc is not None

        def send(rsp: P.DIMSEPrimitive) -> None:
            assoc.dimse.send_msg(rsp, context_id)

        return send

    @staticmethod
    def _run_sync(run: ServiceFn, call: ServiceCall) -> None:
        try:
            run(call)
        except DicomNetError as exc:  # the association died under us
            LOGGER.info("%s not answered: %s", call.event.event.name, exc)
        except Exception:
            LOGGER.exception("%s service failed", call.event.event.name)

    async def _run_async(self, arun: AsyncServiceFn, call: ServiceCall) -> None:
        try:
            await arun(call)
        except DicomNetError as exc:
            LOGGER.info("%s not answered: %s", call.event.event.name, exc)
        except Exception:
            LOGGER.exception("%s service failed", call.event.event.name)

    async def _run_flow(self, service: FlowFn, call: ServiceCall) -> None:
        assert self.driver is not None and self.server.loop is not None
        flow = ServiceFlow(
            loop=self.server.loop,
            driver=self.driver,
            assoc=call.assoc,
            executor=self.server.executor,
            send_lock=self.send_lock,
            context_id=call.context_id,
            waiters=self.waiters,
            observe=self._observe if self.server.monitors else None,
        )
        name = type(call.request).SERVICE
        try:
            await service(call, flow)
        except (DicomNetError, ConnectionError) as exc:  # the peer went away: expected
            LOGGER.info("%s not answered: %s", name, exc)
        except RuntimeError as exc:  # the handler pool is shut down: we are stopping
            LOGGER.info("%s not answered: %s", name, exc)
        except Exception:
            LOGGER.exception("%s service failed", name)

    def _done_threadsafe(self, future: Future[None], mid: int) -> None:
        driver = self.driver
        if driver is not None and driver.post(functools.partial(self._done, mid)):
            return  # shares the loop wake-up of the response just queued
        loop = self.server.loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            loop.call_soon_threadsafe(self._done, mid)

    def _finish_job(self, mid: int) -> None:
        self.running -= 1
        self.active_ids.discard(mid)
        self.cancelled.discard(mid)

    def _done(self, mid: int) -> None:
        self._finish_job(mid)
        self._pump()

    def _maybe_release(self) -> None:
        """Answer a pending A-RELEASE-RQ once every request got its answer (PS3.8 7.2)."""
        if not self.release_pending or self.running or self.pending:
            return
        self.release_pending = False
        driver = self.driver
        if driver is None or driver.transport is None:
            return
        try:
            driver.conn.release_response(monotonic())
        except DicomNetError as exc:
            LOGGER.debug("release response refused: %s", exc)
            return
        driver.flush()
        if self.record is not None and self.record.outcome == "accepted":
            self.record.outcome = "released"
        if self.established:
            self.established = False
            self.server.fire(evt.EVT_RELEASED, self.assoc)


_C_SERVICES = (P.C_ECHO, P.C_STORE, P.C_FIND, P.C_GET, P.C_MOVE)


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _sop_class_matches(primitive: P.DIMSEPrimitive, context: Any) -> bool:
    """A DIMSE-C request's Affected SOP Class must be its context's abstract syntax (PS3.7
    section 9.1: the SOP class is the abstract syntax the context was negotiated for). DIMSE-N
    requests are exempt: under a Meta SOP Class context they name member SOP classes."""
    if context is None:
        return False
    if not isinstance(primitive, _C_SERVICES):
        return True
    sop_class = getattr(primitive, "AffectedSOPClassUID", None)
    # A primitive holds only validated UIDs (PS3.5 9.1: no padding), so no uid_norm() here.
    return sop_class is None or sop_class == context.abstract_syntax


def _close_data(primitive: P.DIMSEPrimitive) -> None:
    for name in primitive.DATASET_FIELDS:
        source = getattr(primitive, name, None)
        close = getattr(source, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
