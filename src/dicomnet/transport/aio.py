"""The asyncio driver: one :class:`ULConnection` over one asyncio transport.

Theory of operation
-------------------
:class:`AsyncDriver` is an :class:`asyncio.BufferedProtocol`. The event loop asks it for a buffer
(``get_buffer``) and the driver hands out the connection's own receive buffer
(``ULConnection.get_write_buffer``), so the kernel copies bytes straight into the PDU being
assembled; ``buffer_updated`` commits them and drains the connection's events. Everything that
touches the sans-IO connection happens on the loop thread: the connection is not thread-safe and
need not be.

Outgoing bytes (``conn.data_to_send()``) go to ``transport.writelines`` as the scatter-gather
chunks the DIMSE fragmenter produced (PDU header, PDV header, payload slice; PS3.8 section
9.3.5), with no concatenation on our side.

Worker threads (the server's handler pool) send through the methods of
:class:`~dicomnet.transport.aio_workers.WorkerSends` (its module docstring tells how they batch
loop wake-ups, apply back-pressure and wait for activity); the driver inherits them.

Timers: the connection exposes ``next_deadline()`` (ARTIM, PS3.8 section 9.1.5); the driver
keeps one ``loop.call_at`` handle for the earliest of that and the optional idle timeout
(network timeout: no byte received or sent for that long -> A-ABORT), re-armed only when the
new deadline is earlier; a timer that fires early re-arms itself. While the owner reports
``busy`` (a request is being served) silence is expected and does not count as idle.
Nothing polls.

The driver is role-agnostic; whatever owns the connection (the server's per-association
handler) receives every Upper Layer event through ``owner.handle_event(driver, event)``.
``TransportShouldClose`` is acted upon here: the transport is closed once pending bytes are
flushed (``transport.close`` flushes first).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from dicomnet.errors import DicomNetError, ProtocolError
from dicomnet.transport.aio_workers import WorkerSends
from dicomnet.transport.sockinfo import certificate_subject, socket_address, tcp_progress
from dicomnet.ul.connection import ULConnection
from dicomnet.ul.events import (
    Aborted,
    ReleaseConfirmed,
    TransportClosed,
    TransportShouldClose,
)

__all__ = ["AsyncDriver", "DriverOwner"]

LOGGER = logging.getLogger("dicomnet.transport.aio")

monotonic = time.monotonic

# Transport write buffer limits: pause the producer above HIGH, resume below LOW.
WRITE_HIGH_WATER = 4 << 20
WRITE_LOW_WATER = 1 << 20


class DriverOwner(Protocol):
    """What the driver reports to: the server's acceptor of one connection, or the link of an
    asyncio client association."""

    def connection_made(self, driver: AsyncDriver) -> None: ...

    def handle_event(self, driver: AsyncDriver, event: object) -> None: ...

    def connection_lost(self, driver: AsyncDriver) -> None: ...

    @property
    def busy(self) -> bool:
        """Requests are being served: silence from the peer is expected, not idleness."""
        ...

    def stalled(self, driver: AsyncDriver) -> None:
        """The driver is about to abort: the peer read nothing while data waited for it."""
        ...


class AsyncDriver(WorkerSends, asyncio.BufferedProtocol):
    """Drives one :class:`ULConnection` over an asyncio transport (see module docstring)."""

    def __init__(
        self,
        conn: ULConnection,
        loop: asyncio.AbstractEventLoop,
        owner: DriverOwner,
        *,
        idle_timeout: float | None = None,
        clock: Callable[[], float] = monotonic,
        write_limits: tuple[int, int] = (WRITE_HIGH_WATER, WRITE_LOW_WATER),
    ) -> None:
        WorkerSends.__init__(self)
        self.conn = conn
        self.loop = loop
        self.owner = owner
        self.idle_timeout = idle_timeout
        self.write_limits = write_limits
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.peername: tuple[str, int] | None = None
        self.sockname: tuple[str, int] | None = None
        #: the TLS client certificate's subject ("CN=...,O=..."), None without one
        self.tls_subject: str | None = None
        self._loop_thread: int | None = None
        self._cond = threading.Condition(threading.Lock())
        self._activity = 0  # PDU batches processed; guarded by _cond
        self._seen: dict[int, int] = {}  # thread id -> _activity value last returned with
        self._alive = False
        self._closed = False
        self._paused = False
        self._paused_since = 0.0  # when the transport last paused writing
        self._ack_seen: tuple[int, float] | None = None  # (bytes acked, since when)
        self._writable: list[asyncio.Future[None]] = []  # loop coroutines waiting to write
        # True while the loop handles the events of one read: responses written meanwhile
        # (inline handlers) are queued and go out in one write when the read is done.
        self._draining = False
        self._watchers = 0  # worker threads inside wait_for_activity()/release() waits
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._last_io = clock()
        self._released = False
        self.failure: str | None = None
        """Why the transport ended when it was not a normal release (text), else None."""

    # --- asyncio protocol callbacks (loop thread) ------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._loop_thread = threading.get_ident()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:  # a DIMSE exchange is request/response: Nagle + delayed ACK costs 40 ms
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - platform specific
                pass
        self.peername = socket_address(transport.get_extra_info("peername"))
        self.sockname = socket_address(transport.get_extra_info("sockname"))
        self.tls_subject = certificate_subject(transport.get_extra_info("peercert"))
        transport.set_write_buffer_limits(high=self.write_limits[0], low=self.write_limits[1])
        with self._cond:
            self._alive = True
        self._last_io = self.clock()
        self.owner.connection_made(self)
        self.conn.transport_connected(self.clock())
        self._after_io()

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            return self.conn.get_write_buffer(sizehint)
        except DicomNetError as exc:  # the buffer refused (e.g. a forged PDU length)
            LOGGER.info("receive buffer refused data: %s", exc)
            self._fatal_protocol_error(exc)
            return memoryview(bytearray(65536))  # sink for whatever is still in flight

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        self._last_io = self.clock()
        try:
            self.conn.commit(nbytes)
        except DicomNetError as exc:
            self._fatal_protocol_error(exc)
            return
        self._after_io()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if not self._closed:
            self._closed = True
            try:
                self.conn.transport_closed(self.clock())
                self._drain_events()
            except DicomNetError as err:  # pragma: no cover - defensive
                LOGGER.debug("error while closing: %s", err)
            self.conn.data_to_send()  # nothing can be sent any more
        with self._cond:
            self._alive = False
            self._activity += 1
            self._cond.notify_all()
        self._wake_writers(ProtocolError("the association is gone", local=True))
        try:
            self.owner.connection_lost(self)
        finally:
            self.transport = None

    def pause_writing(self) -> None:
        with self._cond:
            self._paused = True
            self._paused_since = self.clock()

    def resume_writing(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()
        self._wake_writers()

    def _wake_writers(self, exc: BaseException | None = None) -> None:
        waiters, self._writable = self._writable, []
        for fut in waiters:
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

    async def writable(self, timeout: float | None = None) -> None:
        """Loop thread: return once the peer has read enough for more to be written (the
        transport is below its low-water mark). A peer that reads nothing for ``timeout``
        seconds (default: the idle timeout) stalls the association: A-ABORT, and
        :class:`~dicomnet.errors.ProtocolError` here."""
        if not self._alive:
            raise ProtocolError("the association is gone", local=True)
        if not self._paused:
            return
        fut: asyncio.Future[None] = self.loop.create_future()
        self._writable.append(fut)
        limit = self.idle_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(fut), limit)
        except TimeoutError:
            self.stall_abort()
            raise ProtocolError("the peer stopped reading", local=True) from None

    def stall_abort(self) -> None:
        """The peer read nothing while we had data for it, for longer than allowed: A-ABORT
        (source 2, service provider), close, and tell the owner (``stalled``)."""
        if self._closed or not self._alive:
            return
        LOGGER.info("%s read nothing for %s s while data waited: aborting", self.peername,
                    self.idle_timeout)  # fmt: skip
        self.failure = f"the peer read nothing for {self.idle_timeout} s while data waited"
        try:
            self.owner.stalled(self)
        except Exception:  # pragma: no cover - the owner's bookkeeping
            LOGGER.exception("stall notification failed")
        try:
            self.conn.abort(source=2, reason=0)
        except DicomNetError:
            pass
        else:
            self._drain_events()
            self.flush()
        self._close_transport()
        self._wake_writers(ProtocolError("the peer stopped reading", local=True))
        with self._cond:
            self._alive = False
            self._cond.notify_all()
        try:
            self.owner.handle_event(self, Aborted(source=2, reason=0, local=True))
        except Exception:  # pragma: no cover - the owner's bookkeeping
            LOGGER.exception("abort notification failed")

    def _peer_stopped_reading(self, now: float) -> bool:
        """Bytes we sent wait in the kernel (unacknowledged) and the peer has acknowledged
        none for the idle timeout (Linux: SIOCOUTQ and TCP_INFO's bytes_acked; elsewhere
        never True). Sampled by the timer: a stall is seen within two idle timeouts."""
        probe = tcp_progress(self.transport)
        if probe is None or probe[0] == 0:
            self._ack_seen = None
            return False
        acked = probe[1]
        seen = self._ack_seen
        if seen is None or acked != seen[0]:
            self._ack_seen = (acked, now)
            return False
        return self.idle_timeout is not None and now - seen[1] >= self.idle_timeout

    def write_pdus(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        """Loop thread: write several PDUs with one flush (they are queued behind PDUs a
        worker queued, if any, to keep the order)."""
        self._draining, was = True, self._draining
        try:
            for chunks in pdus:
                self.send_pdata_chunks(chunks)
        finally:
            self._draining = was
        if not was:
            self.flush()

    # --- internal, loop thread ---------------------------------------------------------------
    def _after_io(self) -> None:
        """Drain events, flush output, re-arm the timer, wake waiting workers.

        Everything the events produced (e.g. the responses to several pipelined requests of an
        asynchronous operations window) is written together: one send, not one per response.
        """
        self._draining = True
        try:
            self._drain_events()
        finally:
            self._draining = False
        self.flush()
        self._arm_timer()
        # Only the loop thread writes _activity. A worker counts itself in _watchers (under the
        # lock) *before* it reads _activity, and the loop bumps _activity *before* it reads
        # _watchers: so either the worker sees the new value or the loop sees the worker and
        # notifies (taking the lock, i.e. after the worker sleeps). No lock when nobody waits.
        self._activity += 1
        if self._watchers:
            with self._cond:
                self._cond.notify_all()

    def _drain_events(self) -> None:
        while True:
            event = self.conn.next_event()
            if event is None:
                return
            if isinstance(event, TransportShouldClose):
                self.flush()
                self._close_transport()
                continue
            if isinstance(event, Aborted | TransportClosed):
                with self._cond:
                    self._alive = False
            elif isinstance(event, ReleaseConfirmed):
                self._released = True
            try:
                self.owner.handle_event(self, event)
            except DicomNetError as exc:
                self._fatal_protocol_error(exc)
                return
            except Exception as exc:  # a bug above us must not leave the peer hanging
                LOGGER.exception("handling %s failed", type(event).__name__)
                self._fatal_protocol_error(ProtocolError(str(exc)))
                return

    def flush(self) -> None:
        """Write whatever the connection queued (loop thread)."""
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(data)
            self._last_io = self.clock()

    def _close_transport(self) -> None:
        with self._cond:
            self._alive = False
            self._cond.notify_all()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _fatal_protocol_error(self, exc: DicomNetError) -> None:
        """An error that escaped the sans-IO layer: A-ABORT (PS3.8 9.3.8) and close."""
        LOGGER.info("protocol error on %s: %s", self.peername, exc)
        source = getattr(exc, "abort_source", 2)
        reason = getattr(exc, "abort_reason", 0)
        try:
            self.conn.abort(source=source, reason=reason)
        except DicomNetError:
            pass
        try:
            self._drain_events()
        except DicomNetError:  # pragma: no cover - defensive
            pass
        self.flush()
        self._close_transport()

    def _arm_timer(self) -> None:
        deadline = self.conn.next_deadline()
        if self.idle_timeout is not None and self._alive:
            idle = self._last_io + self.idle_timeout
            deadline = idle if deadline is None else min(deadline, idle)
        current = self._timer_when
        if current is not None and (deadline is None or current <= deadline):
            # An earlier timer is already armed: it fires, finds nothing due, and re-arms.
            # (The idle deadline moves with every read; re-arming each time would cost a heap
            # operation per read.)
            return
        self._cancel_timer()
        if deadline is not None and not self._closed:
            when = self.loop.time() + (deadline - self.clock())
            self._timer = self.loop.call_at(when, self._on_timer)
            self._timer_when = deadline

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_when = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = None
        if self._closed:
            return
        now = self.clock()
        deadline = self.conn.next_deadline()
        if deadline is not None and now >= deadline:
            self.conn.handle_timer(now)  # ARTIM expiry: PS3.8 Table 9-10 AA-2
        elif (
            self._paused
            and self.idle_timeout is not None
            and now >= self._paused_since + self.idle_timeout
            and self._alive
        ):
            # busy or not: we have data for the peer and it reads nothing
            self.stall_abort()
        elif self.owner.busy:
            if self._peer_stopped_reading(now):
                # our bytes sit unacknowledged in the kernel (a C-GET's C-STORE written whole,
                # its response awaited): the peer reads nothing, busy or not
                self.stall_abort()
            else:
                self._last_io = now  # a request is being served: silence is expected
        elif (
            self.idle_timeout is not None
            and now >= self._last_io + self.idle_timeout
            and self._alive
        ):
            LOGGER.info("idle timeout on %s: aborting", self.peername)
            self.failure = f"network timeout: nothing received for {self.idle_timeout} s"
            try:
                self.conn.abort(source=2, reason=0)
            except DicomNetError:
                self._close_transport()
            else:
                self._drain_events()
                self.flush()
                self._close_transport()
            # Our own A-ABORT yields no indication from the Upper Layer: tell the owner, so
            # the association is marked aborted and EVT_ABORTED fires as for any abort.
            with self._cond:
                self._alive = False
            try:
                self.owner.handle_event(self, Aborted(source=2, reason=0, local=True))
            except Exception:  # the owner's bookkeeping must not kill the loop
                LOGGER.exception("abort notification failed")
        self._after_io()

    def _run_on_loop(self, fn: Callable[[], None]) -> bool:
        """Run ``fn`` on the loop thread (directly when already there). False: loop is gone."""
        if threading.get_ident() == self._loop_thread:
            fn()
            return True
        try:
            self.loop.call_soon_threadsafe(fn)
        except RuntimeError:  # loop closed
            return False
        return True

    # --- Driver protocol -----------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        return self._alive and not self._closed

    @property
    def sends_file_regions(self) -> bool:
        """False: asyncio transports take buffers only (file regions are read first)."""
        return False

    def release(self, timeout: float | None) -> None:
        """A-RELEASE-RQ, wait for the A-RELEASE-RP (or the end of the connection), close."""

        def start() -> None:
            if self._alive:
                try:
                    self.conn.release_request()
                except DicomNetError:
                    self._close_transport()
                self._after_io()

        self._run_on_loop(start)
        if self.on_loop_thread:
            return  # cannot wait on the loop; the release completes asynchronously
        deadline = None if timeout is None else self.clock() + timeout
        with self._cond:
            self._watchers += 1  # woken by _after_io (see there)
            try:
                while self._alive and not self._released:
                    remaining = None if deadline is None else deadline - self.clock()
                    if remaining is not None and remaining <= 0:
                        break
                    self._cond.wait(remaining)
            finally:
                self._watchers -= 1
        if not self._released:
            self.abort()
        else:
            self.close()

    def abort(self, source: int = 0, reason: int = 0) -> None:
        """A-ABORT (default source 0, service user; PS3.8 section 9.3.8) and close."""

        def do_abort() -> None:
            if self._closed or self.transport is None:
                return
            try:
                self.conn.abort(source=source, reason=reason)
            except DicomNetError:
                pass
            else:
                self._drain_events()
                self.flush()
            self._close_transport()

        self._run_on_loop(do_abort)

    def close(self) -> None:
        self._run_on_loop(self._close_transport)
