"""The association acceptor: one asyncio event loop serving every association.

Theory of operation
-------------------
:func:`start_server` binds a listening socket on an event loop. When called from synchronous
code with ``block=False`` the loop runs in one background thread ("dicomnet-server"); with
``block=True`` it runs in the caller until :meth:`Server.shutdown` (from any thread or a
handler) or KeyboardInterrupt. :func:`serve` is the asyncio spelling: the server lives on the
running loop. Besides the loop thread, the only threads are those of the bounded handler pool
(``max_workers``, default 32), created on demand.

Each TCP connection gets an :class:`~dicomnet.transport.aio.AsyncDriver` (the bytes) and an
:class:`_Acceptor` (what they mean), which receives the Upper Layer events on the loop thread:

* ``AssociationRequested`` (PS3.8 AE-6 already checked the protocol version): over
  ``ae.maximum_associations`` -> A-ASSOCIATE-RJ 2/3/2 (rejected-transient, service-provider
  presentation, local-limit-exceeded; PS3.8 Table 9-21); otherwise
  :func:`dicomnet.ul.negotiation.negotiate` with the AE's supported contexts, role policy, AE
  title checks, asynchronous operations window and the EVT_USER_ID handler -> accept/reject.
  An acceptor-side :class:`~dicomnet.association.Association` is built around the driver.
* ``PDataReceived``: fed to ``assoc.dimse.receive_primitive`` on the loop thread. The provider
  queues complete messages and keeps C-CANCEL-RQs apart (``cancel_rq``). The acceptor takes the
  *requests* out of the queue (responses stay for a worker waiting on them, e.g. the C-STORE-RSPs
  of a C-GET's sub-operations) and records cancels for the requests it knows, so
  ``event.is_cancelled`` turns True while the handler runs (PS3.7 9.3.2.3).
* Requests are served in order, one at a time, unless an asynchronous operations window > 1 was
  negotiated (PS3.7 D.3.3.3): then up to that many run at once. Plain handlers run in the pool
  (unless marked with :func:`inline`: short, non-blocking ones run on the loop, like the built-in
  defaults);
  coroutine handlers of one-shot services (C-ECHO, C-STORE, N-*) run on the loop; generator
  services (C-FIND/GET/MOVE) always run their protocol logic in the pool (they block on sends and
  sub-operations) and drive async generators on the loop item by item.
* Sending is serialized per association (one DIMSE message at a time: PS3.8 section 9.3.5 has
  no interleaving of messages' fragments), and a worker producing faster than the peer reads is
  blocked by the driver's flow control.
* ``ReleaseRequested``: the A-RELEASE-RP is sent once the running requests have answered.
* A protocol error (the sans-IO layers raise :class:`~dicomnet.errors.ProtocolError` or emit
  ``Aborted(local=True)``) ends in an A-ABORT and a closed connection; the server goes on.

:meth:`Server.shutdown` closes the listener, aborts (or, with ``abort=False``, waits up to
``timeout`` for) the active associations, waits for the handler pool, stops the loop and joins
its thread: no thread, task or socket outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dicomnet import events as evt
from dicomnet.dimse import primitives as P
from dicomnet.errors import DicomNetError, ProtocolError
from dicomnet.monitor import (
    AssociationInfo,
    AssociationRecord,
    Monitor,
    OperationRecord,
    clip,
    notify,
)
from dicomnet.serverflow import ServiceFlow
from dicomnet.services import nservices, qr, storage, verification
from dicomnet.services.dispatch import NO_HANDLER_STATUS, ServiceCall, error_comment
from dicomnet.transport.aio import AsyncDriver
from dicomnet.transport.base import monotonic
from dicomnet.ul.connection import AcceptorConnection, ULConnection
from dicomnet.ul.events import (
    Aborted,
    AssociationRejected,
    AssociationRequested,
    PDataReceived,
    ReleaseRequested,
    TransportClosed,
)
from dicomnet.ul.negotiation import RJ_LOCAL_LIMIT, AcceptorPolicy, negotiate
from dicomnet.ul.pdu import AAssociateAC, AAssociateRJ, AAssociateRQ, UserIdentityRQ

if TYPE_CHECKING:
    from dicomnet.ae import AE
    from dicomnet.association import Association

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "Server",
    "inline",
    "serve",
    "shutdown_servers",
    "start_server",
]

LOGGER = logging.getLogger("dicomnet.server")

DEFAULT_MAX_WORKERS = 32
DEFAULT_TLS_HANDSHAKE_TIMEOUT = 10.0

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

#: Transport write buffer limits of a served association (bytes): a peer that stops reading
#: holds at most about this much of our memory before its sender waits (and then times out).
SERVER_WRITE_LIMITS = (64 << 10, 16 << 10)

_SERVERS: weakref.WeakSet[Server] = weakref.WeakSet()

INLINE_ATTR = "__dicomnet_inline__"


def inline(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a plain (non-coroutine) handler of a one-shot service (C-ECHO, C-STORE, N-*) as
    short and non-blocking: the server then calls it on the event loop thread itself instead of
    in the handler pool, which saves two thread hand-offs per request.

    Only for handlers that finish in well under a millisecond or so (e.g. write a received
    object to a local file): while one runs, no other association is served. Generator
    services (C-FIND/GET/MOVE) ignore the mark. Returns a wrapper; the original is unchanged.
    """

    if inspect.iscoroutinefunction(handler):
        return handler  # coroutine handlers of these services already run on the loop

    def call_inline(event: Any, *args: Any) -> Any:
        return handler(event, *args)

    functools.update_wrapper(call_inline, handler)
    setattr(call_inline, INLINE_ATTR, True)
    return call_inline


class Server:
    """A running acceptor (see the module docstring). Built by :func:`start_server`."""

    def __init__(
        self,
        ae: AE,
        handlers: Any = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        ssl_handshake_timeout: float = DEFAULT_TLS_HANDSHAKE_TIMEOUT,
    ) -> None:
        self.ae = ae
        self.ssl_context = ssl_context
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self._handlers = evt.normalize_handlers(handlers)
        self.executor = ThreadPoolExecutor(
            max_workers=max(1, int(max_workers)), thread_name_prefix="dicomnet-handler"
        )
        self.max_workers = max(1, int(max_workers))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._own_loop = False
        self._connections: set[_Acceptor] = set()
        self._all_closed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._waiting = 0  # requests received, not yet being served (all associations)
        self._stopped = threading.Event()
        self._loop_done = threading.Event()  # set once an owned loop is closed
        self.address: tuple[str, int] = ("", 0)

    # --- public API ---------------------------------------------------------------------------
    @property
    def active_associations(self) -> list[Association]:
        """The established associations (a snapshot)."""
        return [
            c.assoc
            for c in list(self._connections)
            if c.assoc is not None and c.assoc.is_established
        ]

    @property
    def is_serving(self) -> bool:
        return self._listener is not None and not self._stopping

    def bind(self, event: evt.EventType, handler: Callable[..., Any], args: Iterable[Any] = ()) -> None:
        """Bind a handler (replacing the one of an intervention event); applies at once."""
        bound = self._handlers.setdefault(event, [])
        if event.intervention:
            bound.clear()
        bound.append((handler, tuple(args)))

    def unbind(self, event: evt.EventType, handler: Callable[..., Any]) -> None:
        self._handlers[event] = [b for b in self._handlers.get(event, []) if b[0] is not handler]

    def get_handlers(self, event: evt.EventType) -> list[evt.Binding]:
        return list(self._handlers.get(event, ()))

    def shutdown(self, abort: bool = True, timeout: float = 5.0) -> None:
        """Stop serving: close the listener; abort the associations (``abort=True``) or let
        them finish for up to ``timeout`` seconds (then abort); wait for the handler pool;
        stop the loop (when the server owns it). Idempotent; callable from any thread,
        including a handler (then it returns at once and the shutdown completes meanwhile)."""
        loop = self.loop
        if loop is None or self._stopped.is_set():
            return
        on_loop = _running_loop() is loop
        in_pool = threading.current_thread().name.startswith("dicomnet-handler")
        if on_loop or in_pool:
            # Cannot wait for ourselves: finish in a helper that is not the loop or the pool.
            threading.Thread(
                target=self.shutdown, args=(abort, timeout), name="dicomnet-shutdown"
            ).start()
            return
        if self._stopping:
            self._stopped.wait()
            return
        self._stopping = True
        try:
            fut = asyncio.run_coroutine_threadsafe(self._close(abort, timeout), loop)
            fut.result(timeout + 10.0)
        except Exception as exc:  # loop already stopped or the close failed
            LOGGER.debug("shutdown: %s", exc)
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self._own_loop:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            self._loop_done.wait()
            thread = self._thread
            if thread is not None and thread.name == "dicomnet-server":
                thread.join()
        self._stopped.set()

    async def aclose(self, abort: bool = True, timeout: float = 5.0) -> None:
        """:meth:`shutdown` for a server started with :func:`serve` (on the running loop)."""
        if self._stopping:
            return
        self._stopping = True
        await self._close(abort, timeout)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: self.executor.shutdown(wait=True))
        self._stopped.set()

    def serve_forever(self) -> None:
        """Block until :meth:`shutdown` completes."""
        self._stopped.wait()

    # --- internals ------------------------------------------------------------------------------
    async def _listen(self, host: str, port: int, sock: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        kwargs: dict[str, Any] = {}
        if self.ssl_context is not None:
            kwargs["ssl"] = self.ssl_context
            kwargs["ssl_handshake_timeout"] = self.ssl_handshake_timeout
        if sock is not None:  # a listening socket made by the caller (e.g. one per worker)
            self._listener = await loop.create_server(self._protocol_factory, sock=sock, **kwargs)
        else:
            self._listener = await loop.create_server(
                self._protocol_factory, host, port, reuse_address=True, **kwargs
            )
        sockets = self._listener.sockets
        name = sockets[0].getsockname() if sockets else (host, port)
        self.address = (str(name[0]), int(name[1]))
        _SERVERS.add(self)
        LOGGER.info("%s serving on %s:%d", self.ae.ae_title, *self.address)

    def _protocol_factory(self) -> AsyncDriver:
        assert self.loop is not None
        ae = self.ae
        conn: ULConnection = AcceptorConnection(
            max_pdata_length=ae.maximum_pdu_size, artim_timeout=ae.acse_timeout
        )
        acceptor = _Acceptor(self)
        return AsyncDriver(conn, self.loop, acceptor, idle_timeout=ae.network_timeout,
                           write_limits=SERVER_WRITE_LIMITS)  # fmt: skip

    async def _close(self, abort: bool, timeout: float) -> None:
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(Exception):
                await self._listener.wait_closed()
        _SERVERS.discard(self)
        assert self._all_closed is not None
        if not abort and self._connections:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), timeout)
        for acceptor in list(self._connections):
            acceptor.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _connection_opened(self, acceptor: _Acceptor) -> None:
        self._connections.add(acceptor)
        if self._all_closed is not None:
            self._all_closed.clear()

    def _connection_closed(self, acceptor: _Acceptor) -> None:
        self._connections.discard(acceptor)
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()

    def _established_count(self) -> int:
        return sum(1 for c in self._connections if c.established)

    def _waiting_changed(self, delta: int) -> None:
        """Requests received but not yet served, over all associations (for the monitors)."""
        self._waiting = max(0, self._waiting + delta)
        if delta:
            self.monitor("pending_changed", self._waiting)

    def _open_by(self, calling_ae: str) -> int:
        """Established associations of ``calling_ae`` (for a per-peer limit)."""
        return sum(1 for c in self._connections
                   if c.established and c.record is not None
                   and c.record.calling_ae == calling_ae)  # fmt: skip

    @property
    def monitors(self) -> list[Monitor]:
        """The AE's monitors (audit trail, metrics...), told about associations and
        operations (:mod:`dicomnet.monitor`)."""
        return list(getattr(self.ae, "monitors", None) or ())

    def monitor(self, method: str, *args: Any) -> None:
        monitors = getattr(self.ae, "monitors", None)
        if monitors:
            notify(monitors, method, *args)

    def fire(self, event: evt.EventType, assoc: Any, **attrs: Any) -> None:
        """Call the notification handlers of ``event`` (errors are logged, never raised)."""
        for fn, args in self._handlers.get(event, ()):
            try:
                result = fn(evt.Event(assoc, event, **attrs), *args)
                if inspect.isawaitable(result):
                    loop = self.loop
                    if loop is not None and _running_loop() is loop:
                        self._track(loop.create_task(_consume(result)))
                    else:  # pragma: no cover - notifications fire on the loop
                        asyncio.run_coroutine_threadsafe(_consume(result), loop)  # type: ignore[arg-type]
            except Exception:
                LOGGER.exception("%s handler failed", event.name)


async def _consume(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        LOGGER.exception("notification handler failed")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Job:
    """One received request waiting for, or being served by, its handler."""

    __slots__ = ("context_id", "message_id", "primitive")

    def __init__(self, context_id: int, primitive: P.DIMSEPrimitive) -> None:
        self.context_id = context_id
        self.primitive = primitive
        self.message_id: int = getattr(primitive, "MessageID", 0) or 0


class _Acceptor:
    """The acceptor side of one connection: negotiation, dispatch, release (loop thread)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.driver: AsyncDriver | None = None
        self.assoc: Association | None = None
        self.established = False
        self.window = 1
        self.pending: deque[_Job] = deque()
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
        self.server._connection_opened(self)
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
        self.server._waiting_changed(-len(self.pending))
        self.pending.clear()
        waiters, self.waiters = self.waiters, {}
        for fut in waiters.values():
            if not fut.done():
                fut.set_exception(ProtocolError("the association is gone", local=True))
                fut.exception()  # retrieved: nobody may be waiting any more
        self.server._connection_closed(self)
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
    def _policy(self) -> AcceptorPolicy:
        ae = self.server.ae
        roles = {
            cx.abstract_syntax: (cx.scu_role is not False, cx.scp_role is not False)
            for cx in ae.supported_contexts
        }
        user_identity = self._user_identity if self.server._handlers.get(evt.EVT_USER_ID) else None
        return AcceptorPolicy(
            ae_title=ae.ae_title,
            supported=ae.supported_map(),
            require_called_ae_title=bool(ae.require_called_aet),
            allowed_calling_ae_titles=list(ae.require_calling_aet) or None,
            roles=roles,
            max_pdata_length=ae.maximum_pdu_size,
            async_ops_window=(ae.maximum_operations_performed, ae.maximum_operations_invoked),
            implementation_class_uid=ae.implementation_class_uid,
            implementation_version_name=ae.implementation_version_name,
            user_identity=user_identity,
        )

    def _user_identity(self, item: UserIdentityRQ) -> tuple[bool, bytes | None]:
        """EVT_USER_ID: the handler returns (accepted, server response or None)."""
        fn, args = self.server._handlers[evt.EVT_USER_ID][0]
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
        if server._stopping or (limit and server._established_count() >= limit):
            # PS3.8 Table 9-21: rejected-transient, service-provider (presentation),
            # local-limit-exceeded.
            self._reject(RJ_LOCAL_LIMIT, now)
            return
        access = getattr(server.ae, "access", None)
        if access is not None:
            info = AssociationInfo(address, port, assoc.requestor.ae_title,
                                   assoc.acceptor.ae_title, driver.tls_subject,
                                   server._open_by(assoc.requestor.ae_title))  # fmt: skip
            try:
                refusal = access.admit(info)
            except Exception:
                LOGGER.exception("access policy failed: rejecting the association")
                refusal = (1, 1, 1)  # rejected-permanent, service-user, no reason given
            if refusal is not None:
                self._reject(AAssociateRJ(*refusal), now)
                return
        answer = negotiate(rq, self._policy())
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
                self.pending.append(_Job(item[0], item[1]))
            if requests:
                self.server._waiting_changed(len(requests))
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
            self.server._waiting_changed(-1)
            self._start(job)
        self._maybe_release()

    def _start(self, job: _Job) -> None:
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
            self.ops[job.message_id] = _operation_record(self.record, request, job.message_id)
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
        bound = server._handlers.get(event_type)
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
            server._track(task)
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
            server._track(task)
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

    def _refuse(self, job: _Job, context: Any, refusal: tuple[int, str] | None = None) -> None:
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


_OPERATION_NAMES = {
    P.C_ECHO: "C-ECHO", P.C_STORE: "C-STORE", P.C_FIND: "C-FIND", P.C_GET: "C-GET",
    P.C_MOVE: "C-MOVE", P.N_EVENT_REPORT: "N-EVENT-REPORT", P.N_GET: "N-GET", P.N_SET: "N-SET",
    P.N_ACTION: "N-ACTION", P.N_CREATE: "N-CREATE", P.N_DELETE: "N-DELETE",
}  # fmt: skip


def _operation_record(assoc_record: AssociationRecord, request: P.DIMSEPrimitive,
                      message_id: int) -> OperationRecord:  # fmt: skip
    """The record of a request about to be served: what it is and what it is about."""
    sop_class = getattr(request, "AffectedSOPClassUID", None) or getattr(
        request, "RequestedSOPClassUID", None)
    sop_instance = getattr(request, "AffectedSOPInstanceUID", None) or getattr(
        request, "RequestedSOPInstanceUID", None)
    record = OperationRecord(assoc_record, _OPERATION_NAMES.get(type(request), request.SERVICE),
                             message_id, sop_class, sop_instance)  # fmt: skip
    data = getattr(request, "DataSet", None)
    if data is not None:  # C-STORE: its size and study, from the reassembly's check
        record.bytes = int(getattr(data, "size", 0) or 0)
        check = getattr(data, "check", None)
        record.study = getattr(check, "study_uid", None)
    identifier = getattr(request, "Identifier", None)
    if identifier is not None:  # C-FIND/GET/MOVE: the study asked for, when named
        record.study = _identifier_study(identifier)
    return record


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _identifier_study(identifier: Any) -> str | None:
    try:
        ds = identifier.decode()
    except Exception:
        return None
    value = ds.get("StudyInstanceUID")
    return clip(str(value)) if value else None


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


def _split_address(address: tuple[str, int]) -> tuple[str, int]:
    host, port = address[0], int(address[1])
    return (host or "0.0.0.0"), port


def start_server(
    ae: AE,
    address: tuple[str, int],
    block: bool = True,
    handlers: Any = None,
    ssl_context: ssl.SSLContext | None = None,
    **kw: Any,
) -> Server | None:
    """Serve associations for ``ae`` on ``address`` (port 0: any free port, see
    ``Server.address``).

    ``handlers``: ``[(EVT_X, fn), (EVT_Y, fn, [args]), ...]`` or ``{EVT_X: fn}``.
    ``block=False`` returns the running :class:`Server` (loop in a background thread);
    ``block=True`` serves in the calling thread until shutdown or KeyboardInterrupt and returns
    None. Keyword options: ``max_workers`` (handler pool size, default 32),
    ``ssl_handshake_timeout`` (seconds, default 10), ``evt_handlers`` (alias of ``handlers``),
    ``sock`` (an already bound socket to serve on instead of binding ``address``).
    """
    if handlers is None:
        handlers = kw.pop("evt_handlers", None)
    server = Server(
        ae,
        handlers,
        ssl_context=ssl_context,
        max_workers=int(kw.pop("max_workers", DEFAULT_MAX_WORKERS)),
        ssl_handshake_timeout=float(kw.pop("ssl_handshake_timeout", DEFAULT_TLS_HANDSHAKE_TIMEOUT)),
    )
    listen_sock = kw.pop("sock", None)
    if kw:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(kw))}")
    host, port = _split_address(address)
    loop = asyncio.new_event_loop()
    server._own_loop = True
    server.loop = loop
    try:
        loop.run_until_complete(server._listen(host, port, listen_sock))
    except BaseException:
        server.executor.shutdown(wait=False)
        _close_loop(loop)
        raise
    if not block:
        thread = threading.Thread(
            target=_run_loop, args=(loop, server._loop_done), name="dicomnet-server", daemon=True
        )
        server._thread = thread
        thread.start()
        return server
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        LOGGER.info("interrupted: shutting down")
        server._stopping = True
        with contextlib.suppress(Exception):
            loop.run_until_complete(server._close(True, 5.0))
        server.executor.shutdown(wait=True, cancel_futures=True)
        server._stopped.set()
    finally:
        _close_loop(loop)
        server._loop_done.set()
    return None


def _run_loop(loop: asyncio.AbstractEventLoop, done: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        _close_loop(loop)
        done.set()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    if loop.is_closed():
        return
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


async def serve(
    ae: AE,
    address: tuple[str, int],
    handlers: Any = None,
    ssl_context: ssl.SSLContext | None = None,
    **kw: Any,
) -> Server:
    """Start serving on the running event loop (asyncio applications); stop with
    ``await server.aclose()``."""
    server = Server(
        ae,
        handlers,
        ssl_context=ssl_context,
        max_workers=int(kw.pop("max_workers", DEFAULT_MAX_WORKERS)),
        ssl_handshake_timeout=float(kw.pop("ssl_handshake_timeout", DEFAULT_TLS_HANDSHAKE_TIMEOUT)),
    )
    if kw:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(kw))}")
    host, port = _split_address(address)
    await server._listen(host, port)
    return server


def shutdown_servers(ae: AE | None = None) -> None:
    """Shut down every running server (of ``ae`` when given), e.g. from a signal handler."""
    for server in list(_SERVERS):
        if ae is None or server.ae is ae:
            server.shutdown()
