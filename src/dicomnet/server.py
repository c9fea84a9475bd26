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
:class:`~dicomnet.acceptor.Acceptor` (what they mean: negotiation, dispatch of requests,
release; see that module). The server holds what they share: the AE, the bound handlers, the
handler pool, the count of established associations (``maximum_associations``: 2/3/2 beyond
it) and of waiting requests, and the AE's ``monitors`` (audit trail, metrics), which the
acceptors tell about every association and operation. Served associations buffer at most
:data:`SERVER_WRITE_LIMITS` in the transport before their senders wait for the peer.

:meth:`Server.shutdown` closes the listener, aborts (or, with ``abort=False``, waits up to
``timeout`` for) the active associations, waits for the handler pool, stops the loop and joins
its thread: no thread, task or socket outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeAlias, overload

from dicomnet import events as evt
from dicomnet.acceptor import Acceptor, inline
from dicomnet.association import Association
from dicomnet.monitor import Monitor, notify
from dicomnet.protocol_events import ProtocolObserver, wants_protocol_events
from dicomnet.settings import Settings
from dicomnet.transport.aio import AsyncDriver
from dicomnet.ul.connection import AcceptorConnection, ULConnection
from dicomnet.ul.pdu import AAssociateRJ, AAssociateRQ

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "DEFAULT_TLS_HANDSHAKE_TIMEOUT",
    "ListeningSocket",
    "Server",
    "inline",
    "serve",
    "shutdown_servers",
    "start_server",
]

LOGGER = logging.getLogger("dicomnet.server")

DEFAULT_MAX_WORKERS = 32
DEFAULT_TLS_HANDSHAKE_TIMEOUT = 10.0

#: Transport write buffer limits of a served association (bytes): a peer that stops reading
#: holds at most about this much of our memory before its sender waits (and then times out).
SERVER_WRITE_LIMITS = (64 << 10, 16 << 10)

_SERVERS: weakref.WeakSet[Server] = weakref.WeakSet()

ListeningSocket: TypeAlias = socket.socket
"""An already bound (listening) socket a server may be given to serve on."""


class Server:
    """A running acceptor (see the module docstring). Built by :func:`start_server`."""

    def __init__(
        self,
        ae: Settings,
        handlers: evt.HandlerSpec | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        ssl_handshake_timeout: float = DEFAULT_TLS_HANDSHAKE_TIMEOUT,
    ) -> None:
        self.ae = ae
        self.ssl_context = ssl_context
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self.handlers = evt.Handlers(handlers)
        """The bound handlers (changes apply at once)."""
        self.executor = ThreadPoolExecutor(
            max_workers=max(1, int(max_workers)), thread_name_prefix="dicomnet-handler"
        )
        self.max_workers = max(1, int(max_workers))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._own_loop = False
        self._connections: set[Acceptor] = set()
        self._all_closed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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
    def stopping(self) -> bool:
        """Shutting down: new associations are refused (2/3/2)."""
        return self._stopping

    @property
    def is_serving(self) -> bool:
        return self._listener is not None and not self._stopping

    def bind(self, event: evt.EventType, handler: evt.Handler, args: Iterable[object] = ()) -> None:
        """Bind a handler (replacing the one of an intervention event); applies at once, to
        the associations already accepted too."""
        self.handlers.bind(event, handler, args)
        self._handlers_changed()

    def unbind(self, event: evt.EventType, handler: evt.Handler) -> None:
        self.handlers.unbind(event, handler)
        self._handlers_changed()

    def _handlers_changed(self) -> None:
        for acceptor in list(self._connections):
            if acceptor.assoc is not None:
                acceptor.assoc.handlers_changed()

    def get_handlers(self, event: evt.EventType) -> evt.HandlerInfo:
        """As :meth:`dicomnet.association.Association.get_handlers`, for the server."""
        return evt.handler_info(self.handlers, event)

    def get_events(self) -> list[evt.EventType]:
        """The events with a handler bound on the server."""
        return evt.bound_events(self.handlers)

    @property
    def server_address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` (also :attr:`address`)."""
        return self.address

    @property
    def ae_title(self) -> str:
        """The AE title this server answers as (``start_server(ae_title=...)`` or the AE's)."""
        return self.ae.ae_title

    @property
    def socket(self) -> object | None:
        """The listening socket (None once closed)."""
        listener = self._listener
        return listener.sockets[0] if listener is not None and listener.sockets else None

    def server_close(self) -> None:
        """Stop listening and end the server (as :meth:`shutdown`)."""
        self.shutdown()

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
    async def _listen(self, host: str, port: int, sock: ListeningSocket | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        tls = self.ssl_context
        timeout = self.ssl_handshake_timeout if tls is not None else None
        if sock is not None:  # a listening socket made by the caller (e.g. one per worker)
            self._listener = await loop.create_server(
                self._protocol_factory, sock=sock, ssl=tls, ssl_handshake_timeout=timeout
            )
        else:
            self._listener = await loop.create_server(
                self._protocol_factory, host, port, reuse_address=True, ssl=tls,
                ssl_handshake_timeout=timeout,
            )  # fmt: skip
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
        acceptor = Acceptor(self)
        if wants_protocol_events(self.handlers):  # EVT_PDU_*, EVT_DATA_*, EVT_FSM_...
            conn.observer = ProtocolObserver(
                self.handlers, functools.partial(self._fire_details, acceptor)
            )
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

    def track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def connection_opened(self, acceptor: Acceptor) -> None:
        self._connections.add(acceptor)
        if self._all_closed is not None:
            self._all_closed.clear()

    def connection_closed(self, acceptor: Acceptor) -> None:
        self._connections.discard(acceptor)
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()

    def established_count(self) -> int:
        return sum(1 for c in self._connections if c.established)

    def waiting_changed(self, delta: int) -> None:
        """Requests received but not yet served, over all associations (for the monitors)."""
        self._waiting = max(0, self._waiting + delta)
        if delta:
            monitors = self.ae.monitors
            if monitors:  # inline: called twice per request, nearly always without monitors
                notify(monitors, "pending_changed", self._waiting)

    def open_by(self, calling_ae: str) -> int:
        """Established associations of ``calling_ae`` (for a per-peer limit)."""
        return sum(1 for c in self._connections
                   if c.established and c.record is not None
                   and c.record.calling_ae == calling_ae)  # fmt: skip

    @property
    def monitors(self) -> list[Monitor]:
        """The AE's monitors (audit trail, metrics...), told about associations and
        operations (:mod:`dicomnet.monitor`)."""
        return list(self.ae.monitors)

    @property
    def has_monitors(self) -> bool:
        return bool(self.ae.monitors)

    def monitor(self, method: str, *args: object) -> None:
        monitors = self.ae.monitors
        if monitors:
            notify(monitors, method, *args)

    def _fire_details(
        self, acceptor: Acceptor, event: evt.EventType, details: dict[str, object]
    ) -> None:
        self.fire(event, acceptor.assoc, details=details)

    def fire(
        self,
        event: evt.EventType,
        assoc: Association | None,
        *,
        address: tuple[str, int] | None = None,
        rejection: AAssociateRJ | None = None,
        association_request: AAssociateRQ | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        """Call the notification handlers of ``event`` (errors are logged, never raised)."""
        for fn, args in self.handlers.get(event):
            try:
                result = fn(evt.Event(assoc, event, address=address, rejection=rejection,
                                      association_request=association_request,
                                      details=details), *args)  # fmt: skip
                if isinstance(result, Awaitable):
                    loop = self.loop
                    if loop is not None and _running_loop() is loop:
                        self.track(loop.create_task(_consume(result)))
                    elif loop is not None:  # pragma: no cover - notifications fire on the loop
                        asyncio.run_coroutine_threadsafe(_consume(result), loop)
            except Exception:
                LOGGER.exception("%s handler failed", event.name)


async def _consume(awaitable: Awaitable[object]) -> None:
    try:
        await awaitable
    except Exception:
        LOGGER.exception("notification handler failed")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _split_address(address: tuple[str, int]) -> tuple[str, int]:
    host, port = address[0], int(address[1])
    return (host or "0.0.0.0"), port


@overload
def start_server(
    ae: Settings,
    address: tuple[str, int],
    block: Literal[True] = True,
    handlers: evt.HandlerSpec | None = None,
    ssl_context: ssl.SSLContext | None = None,
    *,
    evt_handlers: evt.HandlerSpec | None = None,
    max_workers: int | None = None,
    ssl_handshake_timeout: float | None = None,
    sock: ListeningSocket | None = None,
    on_listening: Callable[[Server], None] | None = None,
) -> None: ...


@overload
def start_server(
    ae: Settings,
    address: tuple[str, int],
    block: Literal[False],
    handlers: evt.HandlerSpec | None = None,
    ssl_context: ssl.SSLContext | None = None,
    *,
    evt_handlers: evt.HandlerSpec | None = None,
    max_workers: int | None = None,
    ssl_handshake_timeout: float | None = None,
    sock: ListeningSocket | None = None,
    on_listening: Callable[[Server], None] | None = None,
) -> Server: ...


@overload
def start_server(
    ae: Settings,
    address: tuple[str, int],
    block: bool = True,
    handlers: evt.HandlerSpec | None = None,
    ssl_context: ssl.SSLContext | None = None,
    *,
    evt_handlers: evt.HandlerSpec | None = None,
    max_workers: int | None = None,
    ssl_handshake_timeout: float | None = None,
    sock: ListeningSocket | None = None,
    on_listening: Callable[[Server], None] | None = None,
) -> Server | None: ...


def start_server(
    ae: Settings,
    address: tuple[str, int],
    block: bool = True,
    handlers: evt.HandlerSpec | None = None,
    ssl_context: ssl.SSLContext | None = None,
    *,
    evt_handlers: evt.HandlerSpec | None = None,
    max_workers: int | None = None,
    ssl_handshake_timeout: float | None = None,
    sock: ListeningSocket | None = None,
    on_listening: Callable[[Server], None] | None = None,
) -> Server | None:
    """Serve associations for ``ae`` on ``address`` (port 0: any free port, see
    ``Server.address``).

    ``handlers``: ``[(EVT_X, fn), (EVT_Y, fn, [args]), ...]`` or ``{EVT_X: fn}``.
    ``block=False`` returns the running :class:`Server` (loop in a background thread);
    ``block=True`` serves in the calling thread until shutdown or KeyboardInterrupt and returns
    None. Keyword options: ``max_workers`` (handler pool size, default 32),
    ``ssl_handshake_timeout`` (seconds, default 10), ``evt_handlers`` (alias of ``handlers``),
    ``sock`` (an already bound socket to serve on instead of binding ``address``),
    ``on_listening`` (called with the server once it listens, before serving: how a blocking
    server becomes known to its AE).
    """
    server = Server(
        ae,
        evt_handlers if handlers is None else handlers,
        ssl_context=ssl_context,
        max_workers=DEFAULT_MAX_WORKERS if max_workers is None else int(max_workers),
        ssl_handshake_timeout=(
            DEFAULT_TLS_HANDSHAKE_TIMEOUT if ssl_handshake_timeout is None
            else float(ssl_handshake_timeout)
        ),
    )  # fmt: skip
    listen_sock = sock
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
    if on_listening is not None:
        on_listening(server)
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
    ae: Settings,
    address: tuple[str, int],
    handlers: evt.HandlerSpec | None = None,
    ssl_context: ssl.SSLContext | None = None,
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    ssl_handshake_timeout: float = DEFAULT_TLS_HANDSHAKE_TIMEOUT,
) -> Server:
    """Start serving on the running event loop (asyncio applications); stop with
    ``await server.aclose()``."""
    server = Server(
        ae,
        handlers,
        ssl_context=ssl_context,
        max_workers=int(max_workers),
        ssl_handshake_timeout=float(ssl_handshake_timeout),
    )
    host, port = _split_address(address)
    await server._listen(host, port)
    return server


def shutdown_servers(ae: Settings | None = None) -> None:
    """Shut down every running server (of ``ae`` when given), e.g. from a signal handler."""
    for server in list(_SERVERS):
        if ae is None or server.ae is ae:
            server.shutdown()
