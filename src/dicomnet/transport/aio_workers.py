"""The asyncio driver's worker-thread side: sending and waiting from outside the event loop.

Theory of operation
-------------------
:class:`~dicomnet.transport.aio.AsyncDriver` owns one Upper Layer connection on an event loop;
everything that touches the connection runs on the loop thread. The server's handlers run on a
thread pool, so their sends cross threads. :class:`WorkerSends` (inherited by the driver) is
that crossing: an outgoing queue guarded by the driver's ``threading.Condition``, drained by the
loop in one write per batch.

These methods are meant for *worker threads* (the server's handler pool); called on the loop
thread they write directly:

* :meth:`send_pdata_chunks` appends one pre-encoded P-DATA-TF PDU to an outgoing queue and,
  only when the queue was idle, rings the loop with ``call_soon_threadsafe`` (one wake-up per
  batch, not per PDU); the loop drains the whole queue into one ``writelines``. Flow control:
  the transport calls ``pause_writing`` above its high-water mark and the worker then blocks on
  a ``threading.Condition`` until ``resume_writing``; the bytes queued but not yet written are
  bounded too (``MAX_IN_FLIGHT``). So a handler streaming 1 GB blocks instead of buffering it.
  When a chunk is a mutable buffer the caller may reuse, the call also waits until the loop has
  handed it to the transport. A send made on the loop thread itself (a coroutine handler) goes
  straight to the transport unless worker PDUs are still queued, in which case it queues behind
  them, so PDUs leave in the order they were sent.
* :meth:`hold` (a context manager, worker threads) batches those wake-ups for a burst of PDUs
  (e.g. the pending responses of a C-FIND): PDUs sent inside it are queued, and the loop is
  woken only when HOLD_PDUS PDUs or HOLD_BYTES bytes are waiting, when the first waiting one
  is HOLD_SECONDS old at the next send, when a send must wait for the loop (a reusable buffer,
  flow control), or when the block ends -- one wake-up per batch instead of one per PDU.
* :meth:`post` hands the loop a callback to run after the PDUs queued so far are written,
  sharing their wake-up (the server posts "request done" this way, right after the response).
* :meth:`wait_for_activity` blocks the worker until the loop has processed at least one more PDU
  (the loop bumps a counter and notifies the condition after each batch of events), the deadline
  passed or the connection died. Each calling thread remembers the counter value it last
  returned with, so a PDU processed between the caller's check of its queue and its call to
  ``wait_for_activity`` is never missed (a spurious True is harmless: the caller re-checks).


Ordering: every queued PDU carries a sequence number; the loop records the last one written
(``_written_seq``), which is what a worker with a reusable buffer waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence

from dicomnet.errors import DicomNetError, ProtocolError
from dicomnet.ul.connection import ULConnection

__all__ = ["HOLD_BYTES", "HOLD_PDUS", "HOLD_SECONDS", "MAX_IN_FLIGHT", "WorkerSends"]

LOGGER = logging.getLogger("dicomnet.transport.aio")

# Bytes handed to the loop by worker threads but not yet given to the transport.
MAX_IN_FLIGHT = 4 << 20
# A worker inside hold() wakes the loop once per this many PDUs / bytes / seconds.
HOLD_PDUS = 64
HOLD_BYTES = 1 << 20
HOLD_SECONDS = 0.005


class WorkerSends:
    """The outgoing queue of worker-thread sends (see the module docstring).

    The driver provides the connection, the loop, the clock, the condition and the state the
    loop keeps (alive, paused, activity counter); this class keeps the queue itself."""

    conn: ULConnection
    loop: asyncio.AbstractEventLoop
    clock: Callable[[], float]
    idle_timeout: float | None
    _cond: threading.Condition
    _loop_thread: int | None
    _alive: bool
    _paused: bool
    _paused_since: float
    _draining: bool
    _activity: int
    _seen: dict[int, int]
    _watchers: int

    def __init__(self) -> None:
        self._in_flight = 0
        self._scheduled_seq = 0
        self._written_seq = 0
        self._outq: deque[tuple[Sequence[bytes | memoryview], int, int]] = deque()
        self._drain_scheduled = False
        self._posted: list[Callable[[], None]] = []  # post(): run after the next drain
        self._holders: dict[int, int] = {}  # thread id -> hold() nesting depth
        self._held_since: float | None = None  # first PDU queued without a wake-up

    def stall_abort(self) -> None:
        """The peer stopped reading: A-ABORT (the driver's)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Write whatever the connection queued (the driver's, loop thread)."""
        raise NotImplementedError

    @property
    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Send one pre-encoded P-DATA-TF PDU. Blocks a worker thread under back-pressure."""
        if self.on_loop_thread:
            self._send_on_loop(chunks)
            return
        size = 0
        stable = True
        for chunk in chunks:
            size += len(chunk)
            if not (isinstance(chunk, bytes) or (isinstance(chunk, memoryview) and chunk.readonly)):
                stable = False
        if not stable:
            chunks = list(chunks)
        with self._cond:
            while self._alive and (self._paused or self._in_flight > MAX_IN_FLIGHT):
                self._ring_locked()  # a held batch must not wait behind us
                if self.idle_timeout is None or not self._paused:
                    self._cond.wait()
                    continue
                # a send has a deadline: the peer reading nothing for the idle timeout
                # stalls the association (aborted on the loop), this worker gives up
                remaining = self._paused_since + self.idle_timeout - self.clock()
                if remaining <= 0:
                    self._run_on_loop_threadsafe(self.stall_abort)
                    raise ProtocolError("the peer stopped reading", local=True)
                self._cond.wait(remaining)
            if not self._alive:
                raise ProtocolError("the association is gone", local=True)
            seq = self._enqueue(chunks, size)
            ring = not self._drain_scheduled
            if ring and stable and self._holders.get(threading.get_ident()):
                now = self.clock()
                if self._held_since is None:
                    self._held_since = now
                if (
                    len(self._outq) < HOLD_PDUS
                    and self._in_flight < HOLD_BYTES
                    and now - self._held_since < HOLD_SECONDS
                ):
                    return  # held: the loop is woken later, once for the whole batch
            if ring:
                self._held_since = None
            self._drain_scheduled = True
        if ring and not self._run_on_loop_threadsafe(self._drain_outq):
            raise ProtocolError("the event loop is gone", local=True)
        if not stable:  # the caller may reuse its buffer once we return
            with self._cond:
                while self._alive and self._written_seq < seq:
                    self._cond.wait()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Worker thread: batch the loop wake-ups of the PDUs sent inside this block (see the
        module docstring); everything still queued is handed to the loop when it ends."""
        if self.on_loop_thread:  # the loop writes directly: nothing to batch
            yield
            return
        me = threading.get_ident()
        with self._cond:
            self._holders[me] = self._holders.get(me, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                depth = self._holders.pop(me, 1) - 1
                if depth:
                    self._holders[me] = depth
                self._ring_locked()

    def send_pdata_many(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        """Send the PDUs of one in-memory message: from a worker thread inside :meth:`hold`
        (one loop wake-up per batch, not per PDU)."""
        if self.on_loop_thread:  # written straight to the transport: nothing to batch
            for chunks in pdus:
                self._send_on_loop(chunks)
            return
        with self.hold():
            for chunks in pdus:
                self.send_pdata_chunks(chunks)

    def _ring_locked(self) -> None:
        """(Caller holds ``_cond``.) Wake the loop for PDUs queued by :meth:`hold` without a
        wake-up yet."""
        if self._outq and not self._drain_scheduled:
            self._held_since = None
            try:
                self.loop.call_soon_threadsafe(self._drain_outq)
            except RuntimeError:  # loop closed: nobody will write them anyway
                return
            self._drain_scheduled = True

    def _enqueue(self, chunks: Sequence[bytes | memoryview], size: int) -> int:
        """Queue one PDU for the loop (caller holds ``_cond``); returns its sequence number."""
        self._in_flight += size
        self._scheduled_seq += 1
        self._outq.append((chunks, size, self._scheduled_seq))
        if not self._drain_scheduled and self.on_loop_thread:
            self._drain_scheduled = True
            self.loop.call_soon(self._drain_outq)
        return self._scheduled_seq

    def _run_on_loop_threadsafe(self, fn: Callable[[], None]) -> bool:
        try:
            self.loop.call_soon_threadsafe(fn)
        except RuntimeError:  # loop closed
            with self._cond:
                self._drain_scheduled = False
            return False
        return True

    def _drain_outq(self) -> None:
        """Loop thread: write every queued PDU with one flush (one wake-up per batch, not per
        PDU: the worker only rings when the queue was idle)."""
        with self._cond:
            batch = list(self._outq)
            self._outq.clear()
            posted = self._posted
            self._posted = []
            self._drain_scheduled = False
        if batch:
            total = 0
            try:
                for chunks, size, _ in batch:
                    total += size
                    if self._alive:
                        self.conn.send_pdata_chunks(chunks)
            except DicomNetError as exc:  # e.g. released or aborted meanwhile: drop the rest
                LOGGER.debug("P-DATA dropped: %s", exc)
            finally:
                self.flush()
                with self._cond:
                    self._in_flight -= total
                    self._written_seq = batch[-1][2]
                    self._cond.notify_all()
        for fn in posted:
            try:
                fn()
            except Exception:  # a bug in a callback must not stop the others
                LOGGER.exception("posted callback failed")

    def post(self, fn: Callable[[], None]) -> bool:
        """Worker thread: run ``fn`` on the loop once the PDUs queued so far are written.

        Shares the loop wake-up of those PDUs when one is already due (e.g. a request's
        "done" notice right after its response), so it usually costs no extra wake-up.
        False when the event loop is gone (``fn`` will not run)."""
        with self._cond:
            self._posted.append(fn)
            ring = not self._drain_scheduled
            self._drain_scheduled = True
            self._held_since = None
        return self._run_on_loop_threadsafe(self._drain_outq) if ring else True

    def _send_on_loop(self, chunks: Sequence[bytes | memoryview]) -> None:
        """:meth:`send_pdata_chunks` on the loop thread."""
        with self._cond:
            queued = bool(self._outq)
            if queued:  # PDUs a worker queued are not written yet: keep the order
                frozen = [c if isinstance(c, bytes) else bytes(c) for c in chunks]
                self._enqueue(frozen, 0)
        if not queued:
            self._write_pdata(chunks)

    def _write_pdata(self, chunks: Sequence[bytes | memoryview]) -> None:
        self.conn.send_pdata_chunks(chunks)
        if not self._draining:  # else _after_io flushes once the whole read is handled
            self.flush()

    def wait_for_activity(self, deadline: float | None) -> bool:
        """Block the calling worker thread until a PDU was processed (True) or deadline/death."""
        if self.on_loop_thread:
            raise RuntimeError("wait_for_activity must not be called on the event loop thread")
        me = threading.get_ident()
        with self._cond:
            self._watchers += 1  # before reading _activity (see _after_io)
            try:
                self._ring_locked()  # PDUs held by this thread go out before it waits
                seen = self._seen.get(me, -1)
                while self._activity == seen:
                    if not self._alive:
                        return False
                    if deadline is None:
                        self._cond.wait()
                    else:
                        remaining = deadline - self.clock()
                        if remaining <= 0:
                            return False
                        self._cond.wait(remaining)
                self._seen[me] = self._activity
                return True
            finally:
                self._watchers -= 1
