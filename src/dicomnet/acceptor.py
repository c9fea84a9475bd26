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
* ``PDataReceived``: fed to ``assoc.dimse.receive_pdata`` on the loop thread. The provider
  queues complete messages; the acceptor takes the *requests* out of the queue
  (``provider.take``) and tells the provider which operations are being served
  (``start_operation``/``end_operation``), so a C-CANCEL-RQ naming one makes
  ``event.is_cancelled`` True while its handler runs (PS3.7 9.3.2.3); the C-STORE-RSPs
  answering our C-GET sub-operations go to the flows awaiting them (``waiters``, a
  :class:`~dicomnet.dimse.router.MessageRouter` of futures); other responses stay for a worker
  waiting on them.
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
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor, Future
from typing import Protocol

from dicomnet import events as evt
from dicomnet.acceptance import acceptor_policy
from dicomnet.association import Association
from dicomnet.dimse import primitives as P
from dicomnet.dimse.messages import DIMSEMessage
from dicomnet.dimse.provider import DIMSEServiceProvider
from dicomnet.dimse.router import MessageRouter
from dicomnet.dimse.status import PENDING_STATUSES, Status
from dicomnet.errors import DicomNetError, ProtocolError
from dicomnet.monitor import (
    AssociationInfo,
    AssociationRecord,
    OperationRecord,
    clip,
    operation_record,
)
from dicomnet.presentation import PresentationContext
from dicomnet.serverflow import ServiceFlow
from dicomnet.services import qr, retrieve
from dicomnet.services.call import OneShotService, ServiceCall
from dicomnet.services.dispatch import ONE_SHOT, answer, answer_async, refusal
from dicomnet.settings import Settings
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
from dicomnet.ul.negotiation import RJ_LOCAL_LIMIT, negotiate
from dicomnet.ul.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
)

__all__ = ["Acceptor", "Job", "ServerContext", "inline"]

LOGGER = logging.getLogger("dicomnet.server")

# the Q/R services: coroutines on the loop, paced by the peer (dicomnet.serverflow)
FlowFn = Callable[[ServiceCall, ServiceFlow], Awaitable[None]]
_FLOWS: dict[type[P.DIMSEPrimitive], tuple[evt.EventType, FlowFn]] = {
    P.C_FIND: (evt.EVT_C_FIND, qr.find),
    P.C_GET: (evt.EVT_C_GET, retrieve.get),
    P.C_MOVE: (evt.EVT_C_MOVE, retrieve.move),
}
_INLINE: weakref.WeakSet[evt.Handler] = weakref.WeakSet()  # the wrappers inline() made


def inline(handler: evt.Handler) -> evt.Handler:
    """Mark a plain (non-coroutine) handler of a one-shot service (C-ECHO, C-STORE, N-*) as
    short and non-blocking: the server then calls it on the event loop thread itself instead of
    in the handler pool, which saves two thread hand-offs per request.

    Only for handlers that finish in well under a millisecond or so (e.g. write a received
    object to a local file): while one runs, no other association is served. Generator
    services (C-FIND/GET/MOVE) ignore the mark. Returns a wrapper; the original is unchanged.
    """
    if asyncio.iscoroutinefunction(handler):
        return handler  # coroutine handlers of these services already run on the loop

    def call_inline(event: evt.Event[Association], *args: object) -> object:
        return handler(event, *args)

    functools.update_wrapper(call_inline, handler)
    _INLINE.add(call_inline)
    return call_inline


class ServerContext(Protocol):
    """What an acceptor needs from its server (:class:`dicomnet.server.Server`)."""

    @property
    def ae(self) -> Settings: ...

    @property
    def handlers(self) -> evt.Handlers: ...

    @property
    def executor(self) -> Executor: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None: ...

    @property
    def max_workers(self) -> int: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def has_monitors(self) -> bool: ...

    def monitor(self, method: str, *args: object) -> None: ...

    def fire(
        self,
        event: evt.EventType,
        assoc: Association | None,
        *,
        address: tuple[str, int] | None = None,
        rejection: AAssociateRJ | None = None,
        association_request: AAssociateRQ | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None: ...

    def track(self, task: asyncio.Task[None]) -> None: ...

    def connection_opened(self, acceptor: Acceptor) -> None: ...

    def connection_closed(self, acceptor: Acceptor) -> None: ...

    def established_count(self) -> int: ...

    def open_by(self, calling_ae: str) -> int: ...

    def waiting_changed(self, delta: int) -> None: ...


class Job:
    """One received request waiting for, or being served by, its handler."""

    __slots__ = ("context_id", "message_id", "primitive")

    def __init__(self, context_id: int, primitive: P.DIMSEPrimitive) -> None:
        self.context_id = context_id
        self.primitive = primitive
        self.message_id: int = primitive.MessageID or 0


class Acceptor:
    """The acceptor side of one connection: negotiation, dispatch, release (loop thread)."""

    def __init__(self, server: ServerContext) -> None:
        self.server = server
        self.driver: AsyncDriver | None = None
        self.assoc: Association | None = None
        self.established = False
        self.window = 1
        self.pending: deque[Job] = deque()
        self.running = 0
        self.release_pending = False
        self.send_lock = threading.Lock()
        # what the AE's monitors are told (dicomnet.monitor): this association, its operations
        self.record: AssociationRecord | None = None
        self.ops: dict[int, OperationRecord] = {}
        # our C-GET sub-operations' C-STORE-RQs awaiting their responses
        self.waiters: MessageRouter[asyncio.Future[P.DIMSEPrimitive]] = MessageRouter()

    # --- DriverOwner --------------------------------------------------------------------------
    def stalled(self, driver: AsyncDriver) -> None:
        """The driver aborts us: the peer read nothing for the network timeout."""
        if self.record is not None:
            self.record.outcome = "stalled"
            self.server.monitor("stalled", self.record)

    @property
    def busy(self) -> bool:
        """Requests are being served or waiting: the driver's idle timeout does not apply."""
        return bool(self.running or self.pending)

    def connection_made(self, driver: AsyncDriver) -> None:
        self.driver = driver
        assoc = self.assoc = Association(self.server.ae, mode="acceptor", driver=driver)
        assoc.inherited = self.server.handlers  # the server's handlers apply to it too
        peer = driver.peername
        if peer is not None:
            assoc.requestor.address, assoc.requestor.port = peer
        local = driver.sockname
        if local is not None:
            assoc.acceptor.address, assoc.acceptor.port = local
        self.server.connection_opened(self)
        self.server.fire(evt.EVT_CONN_OPEN, assoc, address=peer)

    def connection_lost(self, driver: AsyncDriver) -> None:
        self.established = False
        if self.assoc is not None:
            # A message cut off mid-transfer: drop it and delete its spool file.
            try:
                self.assoc.connection_lost()
            except Exception:  # pragma: no cover - clean-up must not break the loop
                LOGGER.exception("DIMSE clean-up failed")
        for job in self.pending:
            job.primitive.close_payloads()
        self.server.waiting_changed(-len(self.pending))
        self.pending.clear()
        for fut in self.waiters.drain():
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
        if isinstance(event, PDataReceived):
            self._on_pdata(event)
        elif isinstance(event, AssociationRequested):
            self._on_request(event.pdu)
        elif isinstance(event, ReleaseRequested):
            self._pass_to_assoc(event)
            self.release_pending = True
            self._maybe_release()
        elif isinstance(event, Aborted):
            was = self.established
            self.established = False
            self._pass_to_assoc(event)
            if self.record is not None and self.record.outcome == "accepted":
                self.record.outcome = "aborted"
            if was:
                self.server.fire(evt.EVT_ABORTED, self.assoc)
        elif isinstance(event, AssociationRejected):  # our provider refused it (AE-6, version)
            self.server.fire(evt.EVT_REJECTED, self.assoc, rejection=event.pdu)
        elif isinstance(event, TransportClosed):
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

    def _on_request(self, rq: AAssociateRQ) -> None:
        server, driver, assoc = self.server, self.driver, self.assoc
        assert driver is not None and assoc is not None
        assoc.requestor.ae_title = rq.calling_ae_title.strip()
        assoc.acceptor.ae_title = rq.called_ae_title.strip()
        server.fire(evt.EVT_REQUESTED, assoc, association_request=rq)
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
        access = server.ae.access
        if access is not None:
            info = AssociationInfo(address, port, assoc.requestor.ae_title,
                                   assoc.acceptor.ae_title, driver.tls_subject,
                                   server.open_by(assoc.requestor.ae_title))  # fmt: skip
            try:
                refusal_rj = access.admit(info)
            except Exception:
                LOGGER.exception("access policy failed: rejecting the association")
                refusal_rj = (1, 1, 1)  # rejected-permanent, service-user, no reason given
            if refusal_rj is not None:
                self._reject(AAssociateRJ(*refusal_rj), now)
                return
        answer_pdu = negotiate(rq, acceptor_policy(self.server.ae, self.server.handlers, self.assoc, rq))
        if not isinstance(answer_pdu, AAssociateAC):
            self._reject(answer_pdu, now)
            return
        driver.conn.accept(answer_pdu, now)
        assoc.accept(rq, answer_pdu)
        self.established = True
        window = answer_pdu.user_information.async_ops_window
        # The AC's invoked value = operations the requestor may invoke = we perform at once.
        performed = 1 if window is None else window.max_operations_invoked
        self.window = server.max_workers if performed == 0 else max(1, performed)
        # (EVT_DIMSE_RECV/SENT: the association hooks its provider when it or its server has a
        # handler for them, see AssociationBase.handlers_changed)
        self._serialize_sends(assoc.dimse)
        self.record.outcome = "accepted"
        server.monitor("association_started", self.record)
        server.fire(evt.EVT_ACCEPTED, assoc)
        server.fire(evt.EVT_ESTABLISHED, assoc)

    def _reject(self, rj: AAssociateRJ, now: float) -> None:
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

    def _serialize_sends(self, provider: DIMSEServiceProvider) -> None:
        """One DIMSE message at a time on this association, whoever sends it (PS3.8 9.3.5:
        the fragments of two messages never interleave): the provider's send hook.

        Worker threads wait for the lock. The loop thread never blocks on it (a worker holding
        it may be waiting for the loop to flush its PDUs): when it is taken, the loop's message
        is handed to the pool, which waits for it instead.
        """
        write = provider.write_message
        lock = self.send_lock
        executor = self.server.executor
        driver = self.driver
        assert driver is not None
        observe = self._observe if self.server.has_monitors else None

        def locked(msg: DIMSEMessage, context_id: int) -> None:
            with lock:
                write(msg, context_id)

        def send_message(msg: DIMSEMessage, context_id: int) -> None:
            if observe is not None:
                observe(msg)
            if not driver.on_loop_thread:
                locked(msg, context_id)
            elif lock.acquire(blocking=False):
                try:
                    write(msg, context_id)
                finally:
                    lock.release()
            else:
                try:
                    executor.submit(self._quiet, locked, msg, context_id)
                except RuntimeError:  # shutting down: nobody will read it anyway
                    pass

        provider.send_hook = send_message

    def _observe(self, msg: DIMSEMessage) -> None:
        """A response on its way out: counted into its operation's record; the final one
        (not Pending) finishes the record (any thread; records are per request)."""
        elements = msg.command_set.elements
        status = elements.get(0x0900)  # Status (PS3.7 Annex E)
        if status is None:
            return  # a request of ours (C-GET sub-operation C-STORE): not an answer
        mid = elements.get(0x0120)  # Message ID Being Responded To
        record = self.ops.get(mid) if isinstance(mid, int) else None
        if record is None:
            return
        if status in PENDING_STATUSES:
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
    def _quiet(send: Callable[[DIMSEMessage, int], None], msg: DIMSEMessage, context_id: int) -> None:
        try:
            send(msg, context_id)
        except DicomNetError as exc:
            LOGGER.info("response not sent: %s", exc)
        except Exception:
            LOGGER.exception("sending a response failed")

    def _respond(self, rsp: P.DIMSEPrimitive, context_id: int) -> None:
        """Send a response (any thread; serialized by the send hook)."""
        assoc = self.assoc
        assert assoc is not None
        try:
            assoc.dimse.send_msg(rsp, context_id)
        except DicomNetError as exc:  # the association died under us (or a bug: loud then)
            level = logging.ERROR if assoc.is_established else logging.INFO
            LOGGER.log(level, "%s response not sent: %s", rsp.SERVICE, exc)

    # --- requests ---------------------------------------------------------------------------------
    def _on_pdata(self, event: PDataReceived) -> None:
        assoc = self.assoc
        if assoc is None or not self.established:
            return
        provider = assoc.dimse
        provider.receive_pdata(event.pdu)  # ProtocolError -> the driver aborts
        if provider.queued:
            # requests go to our pending list (``Status`` is None on every request); the
            # responses to our C-GET sub-operations to the flows awaiting them; other responses
            # stay for a worker (a handler's own operation) waiting on them
            requests = provider.take(_is_request)
            for context_id, prim in requests:
                job = Job(context_id, prim)
                provider.start_operation(job.message_id)  # a C-CANCEL naming it now counts
                self.pending.append(job)
            if requests:
                self.server.waiting_changed(len(requests))
            if self.waiters and provider.queued:
                for _, rsp in provider.take(self.waiters.expects):
                    routed = self.waiters.route(rsp)
                    if routed is not None and not routed[0].done():
                        routed[0].set_result(rsp)
        self._pump()

    def _pump(self) -> None:
        while self.pending and self.running < self.window:
            job = self.pending.popleft()
            self.server.waiting_changed(-1)
            self._start(job)
        self._maybe_release()

    def _start(self, job: Job) -> None:
        assoc, server = self.assoc, self.server
        loop = server.loop
        assert assoc is not None and loop is not None
        request = job.primitive
        service = ONE_SHOT.get(type(request))
        flow_spec = _FLOWS.get(type(request)) if service is None else None
        if service is not None:
            event_type = service.event_type
        elif flow_spec is not None:
            event_type = flow_spec[0]
        else:  # a request type we do not serve (cannot happen: all are listed)
            request.close_payloads()
            assoc.dimse.end_operation(job.message_id)
            return
        context = assoc.context_by_id(job.context_id)
        if server.has_monitors and self.record is not None:
            self.ops[job.message_id] = operation_record(self.record, request, job.message_id)
            server.monitor("operation_started", self.ops[job.message_id])
        if not _sop_class_matches(request, context):
            abstract = None if context is None else context.abstract_syntax
            LOGGER.info("refused %s on context %d (%s)", request.SERVICE, job.context_id, abstract)
            self._refuse(job, Status.SOP_CLASS_NOT_SUPPORTED,
                         f"SOP class does not match context {abstract}")  # fmt: skip
            return
        access = server.ae.access
        if access is not None:
            try:
                refused = access.permit(assoc, request)
            except Exception:
                LOGGER.exception("access policy failed: refusing the request")
                refused = (Status.NOT_AUTHORIZED, "access policy failure")
            if refused is not None:
                LOGGER.info("refused %s from %s: %s", request.SERVICE,
                            clip(self.record.calling_ae) if self.record else "?",
                            refused[1])  # fmt: skip
                self._refuse(job, refused[0], refused[1])
                return
        bound = server.handlers.first(event_type)
        handler, args = bound if bound is not None else (None, ())
        mid = job.message_id
        inline_now = service is not None and (handler is None or handler in _INLINE)
        provider = assoc.dimse
        call = ServiceCall(
            assoc, job.context_id, context, request, event_type, handler, args,
            cancel_check=functools.partial(provider.is_cancelled, mid),
            run_coroutine=self._run_coroutine,
        )  # fmt: skip
        if not inline_now:
            call.event  # noqa: B018 - built now: its timestamp is the request's dispatch time
        self.running += 1
        if flow_spec is not None:
            # Q/R: a coroutine on the loop, paced by the peer (dicomnet.serverflow)
            task = loop.create_task(self._run_flow(flow_spec[1], call))
            server.track(task)
            task.add_done_callback(lambda _t: self._done(mid))
            return
        assert service is not None
        if inline_now:
            # The built-in default, or a handler marked with inline(): answered at once, on the
            # loop -- no thread hop (two cross-thread wake-ups per request), no task.
            self._run_sync(service, call)
            self._finish_job(mid)  # _pump's loop goes on with the next request
            return
        if asyncio.iscoroutinefunction(handler):
            # Coroutine handlers of one-shot services run on the loop.
            task = loop.create_task(self._run_async(service, call))
            server.track(task)
            task.add_done_callback(lambda _t: self._done(mid))
            return
        try:
            future = server.executor.submit(self._run_sync, service, call)
        except RuntimeError:  # the pool is shut down: we are stopping
            self._finish_job(mid)
            return
        future.add_done_callback(lambda f: self._done_threadsafe(f, mid))

    def _run_coroutine(self, awaitable: Awaitable[object]) -> object:
        """A coroutine a plain handler returned, run on the loop (from a pool thread)."""
        loop = self.server.loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), loop).result()

    def _refuse(self, job: Job, status: int, comment: str) -> None:
        """Answer a request at once with ``status`` and nothing else: 0122H (Refused: SOP
        Class not supported, PS3.7 Annex C.5.5) when its SOP class is not its context's
        abstract syntax, or the access policy's refusal."""
        self._respond(refusal(job.primitive, status, comment), job.context_id)
        assert self.assoc is not None
        self.assoc.dimse.end_operation(job.message_id)

    def _run_sync(self, service: OneShotService, call: ServiceCall) -> None:
        try:
            rsp = answer(service, call)
        except Exception:
            LOGGER.exception("%s service failed", service.event_type.name)
            return
        self._respond(rsp, call.context_id)

    async def _run_async(self, service: OneShotService, call: ServiceCall) -> None:
        try:
            rsp = await answer_async(service, call)
        except Exception:
            LOGGER.exception("%s service failed", service.event_type.name)
            return
        self._respond(rsp, call.context_id)

    async def _run_flow(self, service: FlowFn, call: ServiceCall) -> None:
        assert self.driver is not None and self.server.loop is not None and self.assoc is not None
        flow = ServiceFlow(
            loop=self.server.loop,
            driver=self.driver,
            assoc=self.assoc,
            executor=self.server.executor,
            send_lock=self.send_lock,
            context_id=call.context_id,
            waiters=self.waiters,
            observe=self._observe if self.server.has_monitors else None,
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
        if self.assoc is not None:
            self.assoc.dimse.end_operation(mid)

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


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


def _is_request(primitive: P.DIMSEPrimitive) -> bool:
    return primitive.Status is None


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _sop_class_matches(primitive: P.DIMSEPrimitive, context: PresentationContext | None) -> bool:
    """A DIMSE-C request's Affected SOP Class must be its context's abstract syntax (PS3.7
    section 9.1: the SOP class is the abstract syntax the context was negotiated for). DIMSE-N
    requests are exempt: under a Meta SOP Class context they name member SOP classes."""
    if context is None:
        return False
    if not isinstance(primitive, _C_SERVICES):
        return True
    sop_class = primitive.AffectedSOPClassUID
    # A primitive holds only validated UIDs (PS3.5 9.1: no padding), so no uid_norm() here.
    return sop_class is None or sop_class == context.abstract_syntax
