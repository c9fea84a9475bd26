"""In-memory associations: two endpoints in one thread, no sockets, no sleeps, a fake clock.

Theory of operation
-------------------
:class:`MemoryDriver` implements :class:`dicomnet.transport.base.Driver` over an in-memory
byte pipe instead of a socket, with the same contract as the blocking
:class:`~dicomnet.transport.sync.SyncDriver` (which it mirrors method by method): it owns one
sans-IO :class:`~dicomnet.ul.connection.ULConnection`, hands its events to ``on_event``,
answers a peer's A-RELEASE-RQ itself, closes on ``TransportShouldClose`` and honours the
connection's ARTIM deadline (PS3.8 9.1.5), the caller's deadline and the network idle timeout.

Two drivers are linked back to back (:func:`link`): what one flushes lands in the other's
inbox, stamped with the time it becomes readable (``latency`` of the receiving side). Both
endpoints run in the calling thread, and time is *virtual*:

* a driver that must wait (``wait_for_activity``) first lets the other endpoint take a turn
  (:meth:`MemoryDriver.take_turn`: read its inbox, fire its expired timers, and whatever its
  owner does -- the :class:`InMemoryAcceptor` serves requests there), as a separate process
  would;
* when neither endpoint can do anything *now*, the :class:`FakeClock` jumps to the nearest
  deadline of either side (the caller's deadline, ARTIM, idle timeouts, data in flight) -- what
  a real driver's socket timeout would have waited for in real time;
* when nothing can ever happen (no data, no deadline), :class:`Deadlock` is raised instead of
  hanging the test.

:class:`InMemoryAcceptor` is the peer: an :class:`~dicomnet.ul.connection.AcceptorConnection`
behind a ``MemoryDriver``, an acceptor-side :class:`~dicomnet.assocbase.AssociationBase` whose
real :class:`~dicomnet.dimse.provider.DIMSEServiceProvider` reassembles and encodes the DIMSE
messages, negotiation by :func:`dicomnet.ul.negotiation.negotiate`, one-shot requests answered
by :func:`dicomnet.services.dispatch.answer` and C-FIND by the server's own coroutine
:func:`dicomnet.services.qr.find`, stepped by hand through a :class:`StepFlow` (no event
loop: asyncio would open a self-pipe socket). The acceptor marks requests with
``start_operation``/``end_operation`` as :mod:`dicomnet.acceptor` does, so a C-CANCEL-RQ is
seen through ``provider.is_cancelled``.

:class:`InMemoryNetwork` plugs all this under the *real* blocking client
(:func:`dicomnet.client.request_association`, hence ``AE.associate``): it replaces, with
``monkeypatch``, the three names that function takes from its module -- ``open_socket`` (an
in-memory "listener" lookup), ``SyncDriver`` (a :class:`MemoryDriver` factory) and
``Association`` (the same class, built with the fake clock, since ``request_association`` has
no ``clock`` parameter).
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any, TypeVar

import pytest

from dicomnet import client
from dicomnet.assocbase import AssociationBase
from dicomnet.association import Association
from dicomnet.dimse import primitives as P
from dicomnet.dimse.messages import DIMSEMessage
from dicomnet.dimse.provider import DIMSEServiceProvider
from dicomnet.errors import DicomNetError
from dicomnet.events import EVT_C_FIND, EventType, Handler, Handlers
from dicomnet.services import qr
from dicomnet.services.call import ServiceCall
from dicomnet.services.dispatch import ONE_SHOT, answer
from dicomnet.services.payloads import as_payload
from dicomnet.settings import Settings
from dicomnet.transport.base import ConnectError, WaitingTeardown, nearest_deadline
from dicomnet.ul.connection import AcceptorConnection, ULConnection
from dicomnet.ul.events import (
    AssociationRequested,
    ReleaseConfirmed,
    ReleaseRequested,
    TransportClosed,
    TransportShouldClose,
    ULEvent,
)
from dicomnet.ul.fsm import State
from dicomnet.ul.negotiation import AcceptorPolicy, negotiate
from dicomnet.ul.pdu import AAssociateAC

__all__ = [
    "Deadlock",
    "FakeClock",
    "InMemoryAcceptor",
    "InMemoryNetwork",
    "MemoryDriver",
    "StepFlow",
    "link",
]

LOGGER = logging.getLogger("tests.inmemory")

T = TypeVar("T")
STA13 = State.STA13
_MAX_STEPS = 10_000  # a wait loop that spins this long is a bug in the harness


class Deadlock(AssertionError):
    """Nothing can happen any more and no deadline is set: a real driver would block forever."""


class FakeClock:
    """A monotonic clock that moves only when told (``advance``) or when the in-memory drivers
    jump to the nearest deadline (``advance_to``); ``jumps`` records every move."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.start = start
        self.jumps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self.advance_to(self.now + seconds)

    def advance_to(self, when: float) -> None:
        if when > self.now:
            self.now = when
            self.jumps.append(when)

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was made."""
        return self.now - self.start


class MemoryDriver(WaitingTeardown):
    """A :class:`~dicomnet.transport.base.Driver` over an in-memory pipe (module docstring).

    ``answer_release``: answer a peer's A-RELEASE-RQ at once (SyncDriver's behaviour); the
    :class:`InMemoryAcceptor` turns it off and answers once its operations are done.
    ``keep_open``: ignore ``TransportShouldClose`` -- a misbehaving endpoint that never closes
    its side of the connection (to see the other side's ARTIM timer at work).
    """

    sends_file_regions = False

    def __init__(
        self,
        conn: ULConnection,
        clock: FakeClock,
        *,
        network_timeout: float | None = None,
        on_event: Callable[[Any], None] | None = None,
        name: str = "endpoint",
        latency: float = 0.0,
        answer_release: bool = True,
        keep_open: bool = False,
    ) -> None:
        if not isinstance(clock, FakeClock):
            raise TypeError("an in-memory driver needs a FakeClock (it jumps virtual time)")
        self.conn = conn
        self.clock = clock
        self.network_timeout = network_timeout
        self.on_event: Callable[[Any], None] = on_event or _ignore
        self.name = name
        self.latency = latency
        """Seconds between the peer's flush and the bytes being readable here."""
        self.answer_release = answer_release
        self.keep_open = keep_open
        self.on_turn: Callable[[], bool] | None = None
        """What this endpoint's owner does when the other endpoint lets it run."""
        self.before_turn: deque[Callable[[], None]] = deque()
        """One-shot callbacks run when this endpoint's next turn starts, before it reads:
        what the *other* side does "while these bytes are still on the wire"."""
        self.peer: MemoryDriver | None = None
        self.on_close: Callable[[], None] | None = None  # SyncDriver's EVT_CONN_CLOSE hook
        self.inbox: deque[tuple[float, bytes]] = deque()
        self.peer_closed = False
        self.sent: list[bytes] = []
        """Every flush, as the bytes that went on the wire (PDU boundaries not kept)."""
        self.events: list[ULEvent] = []
        """Every Upper Layer event handed to ``on_event``, in order."""
        self.release_confirmed = False
        self.received_any = False
        self.failure: str | None = None
        self._closed = False
        self._last_io = clock()
        self.sockname: tuple[str, int] | None = ("memory", 0)
        self.peername: tuple[str, int] | None = ("memory", 0)

    # --- Driver protocol ------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        return not self._closed and bool(self.conn.is_established)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        if self._closed:
            return
        self.conn.send_pdata_chunks(chunks)
        self.flush()

    def send_pdata_many(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        if self._closed:
            return
        for chunks in pdus:
            self.conn.send_pdata_chunks(chunks)
        self.flush()

    def flush(self) -> None:
        """Put everything the connection has queued on the wire (copied: the chunks may be
        views of buffers their owner reuses)."""
        chunks = self.conn.data_to_send()
        if not chunks or self._closed:
            return
        data = b"".join(bytes(c) for c in chunks)
        now = self.clock()
        self.sent.append(data)
        self._last_io = now
        peer = self.peer
        if peer is not None and not peer._closed:
            peer.inbox.append((now + peer.latency, data))

    def wait_for_activity(self, deadline: float | None) -> bool:
        """Until at least one event was handled (True), or ``deadline`` passed or the
        transport is gone (False); virtual time jumps instead of sleeping."""
        for _ in range(_MAX_STEPS):
            if self._closed:
                break
            if self._dispatch():
                return True
            if self._closed:
                break
            if self._receive():
                continue
            peer = self.peer
            if peer is not None and peer.take_turn():
                continue
            now = self.clock()
            artim = self.conn.next_deadline()
            idle = self._idle_deadline()
            wakeup = None if peer is None else peer.next_wakeup()
            nearest = nearest_deadline(deadline, artim, idle, self._inbox_ready(), wakeup)
            if nearest is None:
                raise Deadlock(
                    f"{self.name}: no data in flight, no deadline, the peer idle "
                    f"(state {self.conn.state.label}): a real driver would block forever"
                )
            self.clock.advance_to(nearest)  # the socket timeout, without the wait
            now = self.clock()
            if artim is not None and artim <= now:
                self.conn.handle_timer(now)  # ARTIM expiry, PS3.8 Evt18
                self.flush()
                continue
            if idle is not None and idle <= now:
                self.failure = f"network timeout: nothing received for {self.network_timeout} s"
                self.abort()
                self._dispatch()
                return False
            if deadline is not None and deadline <= now:
                return False
            # else: data in flight became readable, or the peer has a timer due: go round
        else:  # pragma: no cover - a harness bug
            raise AssertionError(f"{self.name}: wait_for_activity did not settle")
        self._dispatch()
        return False

    def close(self) -> None:
        """Close this side (once): the peer reads EOF after the bytes already in flight."""
        if self._closed:
            return
        self._closed = True
        self.inbox.clear()
        peer = self.peer
        if peer is not None and not peer._closed:
            peer.peer_closed = True
        try:
            self.conn.transport_closed(self.clock())
        except DicomNetError:  # pragma: no cover - already in Sta1
            pass
        self._dispatch()
        on_close, self.on_close = self.on_close, None
        if on_close is not None:  # as SyncDriver: once, after the connection was told
            on_close()

    # --- the other endpoint's view ----------------------------------------------------------
    def take_turn(self) -> bool:
        """Run this endpoint as its own process would, at the current time: read what has
        arrived, fire expired timers, let the owner act. True when anything happened."""
        if self._closed:
            return False
        while self.before_turn:
            self.before_turn.popleft()()
        progressed = self._receive()
        progressed = self._fire_timers() or progressed
        progressed = self._dispatch_all() or progressed
        if self.on_turn is not None:
            progressed = self.on_turn() or progressed
        return progressed

    def next_wakeup(self) -> float | None:
        """When this endpoint next has something to do by itself (data becoming readable,
        ARTIM, idle timeout), or None."""
        if self._closed:
            return None
        return nearest_deadline(self._inbox_ready(), self.conn.next_deadline(),
                                self._idle_deadline())  # fmt: skip

    # --- internals ------------------------------------------------------------------------
    def _idle_deadline(self) -> float | None:
        return None if self.network_timeout is None else self._last_io + self.network_timeout

    def _inbox_ready(self) -> float | None:
        if self.inbox:
            return self.inbox[0][0]
        return None

    def _receive(self) -> bool:
        """Feed the connection what has arrived by now; EOF once the inbox is drained."""
        if self._closed:
            return False
        now = self.clock()
        progressed = False
        while self.inbox and self.inbox[0][0] <= now and not self._closed:
            _, data = self.inbox.popleft()
            self.received_any = True
            self._last_io = now
            self.conn.receive_data(data, now)
            self.flush()
            progressed = True
        if not self.inbox and self.peer_closed and not self._closed:
            self._lost("the peer closed the connection")
            progressed = True
        return progressed

    def _fire_timers(self) -> bool:
        now = self.clock()
        artim = self.conn.next_deadline()
        if artim is not None and artim <= now:
            self.conn.handle_timer(now)
            self.flush()
            return True
        idle = self._idle_deadline()
        if idle is not None and idle <= now:
            self.failure = f"network timeout: nothing received for {self.network_timeout} s"
            self.abort()
            return True
        return False

    def _dispatch_all(self) -> bool:
        before = len(self.events)
        self._dispatch()
        return len(self.events) != before

    def _dispatch(self) -> int:
        """Hand every queued event to ``on_event`` (as SyncDriver does); how many were
        activity (anything but the transport's own events)."""
        count = 0
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is None:
                break
            self.events.append(event)
            kind = type(event)
            if kind is TransportShouldClose:
                if not self.keep_open:
                    self.flush()
                    self.close()
                continue
            if kind is TransportClosed:
                self._closed = True
            else:
                count += 1
                if kind is ReleaseConfirmed:
                    self.release_confirmed = True
            self.on_event(event)
            if kind is ReleaseRequested and self.answer_release and not self._closed:
                try:
                    conn.release_response(self.clock())
                    self.flush()
                except DicomNetError as exc:
                    LOGGER.debug("release_response refused: %s", exc)
        return count

    def _lost(self, why: str) -> None:
        # after a release (or our own abort: Sta13) the peer closing is the expected end
        if self.failure is None and not self.release_confirmed and self.conn.state is not STA13:
            self.failure = why
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"state={self.conn.state.label}"
        return f"<MemoryDriver {self.name} {state}>"


def link(a: MemoryDriver, b: MemoryDriver) -> None:
    """Connect two drivers back to back (a transport connection)."""
    a.peer, b.peer = b, a


def _ignore(event: object) -> None:
    return None


# --- the peer: an acceptor ----------------------------------------------------------------


class _Drain:
    """``await _Drain()`` suspends a hand-stepped coroutine once (the transport drains)."""

    def __await__(self) -> Generator[None, None, None]:
        yield None


Encoded = tuple[DIMSEMessage, list[list[Any]]]


class StepFlow:
    """:class:`dicomnet.services.qr.Flow` for a coroutine stepped by hand (no event loop):
    responses are encoded by the real provider (``message_pdus``/``repeated_pdus``, as
    :class:`dicomnet.serverflow.ServiceFlow` does) and written at once; after each write the
    coroutine suspends until the acceptor's next turn (the peer reads what came before), so a
    C-CANCEL-RQ arriving meanwhile is seen when it resumes. ``run`` calls in this thread."""

    def __init__(self, assoc: AssociationBase, driver: MemoryDriver, context_id: int) -> None:
        self.assoc = assoc
        self.provider = assoc.dimse
        self.driver = driver
        self.context_id = context_id
        self.written: list[DIMSEMessage] = []

    def encode(self, rsp: P.DIMSEPrimitive) -> Encoded:
        msg, pdus = self.provider.message_pdus(rsp, self.context_id)
        return msg, list(pdus)

    def repeated(self, rsp: P.DIMSEPrimitive) -> Callable[[object], Encoded]:
        fast = self.provider.repeated_pdus(rsp, self.context_id)
        ts = self.assoc.transfer_syntax_of(self.context_id)

        def encode(data: object) -> Encoded:
            source = as_payload(data, ts)
            if fast is not None:
                return fast(source)
            rsp.Identifier = source
            return self.encode(rsp)

        return encode

    async def write(self, encoded: list[Encoded]) -> None:
        for msg, pdus in encoded:
            self.written.append(msg)
            self.driver.send_pdata_many(pdus)
        await _Drain()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return fn(*args)

    async def run_flushing(self, fn: Callable[..., T], args: tuple[object, ...], out: Any,
                           after: float) -> T:  # fmt: skip
        return fn(*args)  # one thread, no blocking handler to write around

    # C-GET/C-MOVE parts of the Flow protocol: not served by this peer
    def prepare_store(self, payload: object) -> object:
        raise NotImplementedError

    def prepared_uid(self, prepared: object) -> str:
        raise NotImplementedError

    def discard(self, prepared: object) -> None:
        raise NotImplementedError

    async def send_store(self, prepared: object, before: list[Encoded]) -> int | None:
        raise NotImplementedError

    async def associate(self, *args: object, **kwargs: object) -> Any:
        raise NotImplementedError


class InMemoryAcceptor:
    """The association-acceptor peer (see the module docstring).

    ``answer_association=False``: the A-ASSOCIATE-RQ is never answered; ``answer_dimse=False``:
    requests are received (and recorded) but never answered; ``answer_release=False``: the
    A-RELEASE-RQ is never answered. ``handlers``: ``{EVT_C_STORE: fn, EVT_C_FIND: fn, ...}``
    (the server's handler convention; C-ECHO answers Success without one).
    """

    def __init__(
        self,
        settings: Settings,
        clock: FakeClock,
        *,
        handlers: dict[EventType, Handler] | None = None,
        answer_association: bool = True,
        answer_dimse: bool = True,
        answer_release: bool = True,
        artim_timeout: float | None = 30.0,
        latency: float = 0.0,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.handlers = Handlers()
        for event_type, fn in (handlers or {}).items():
            self.handlers.bind(event_type, fn)
        self.answer_association = answer_association
        self.answer_dimse = answer_dimse
        self.answer_release = answer_release
        self.conn = AcceptorConnection(
            max_pdata_length=settings.maximum_pdu_size, artim_timeout=artim_timeout
        )
        self.driver = MemoryDriver(
            self.conn, clock, on_event=self.handle_event, name="acceptor", latency=latency,
            answer_release=False, network_timeout=settings.network_timeout,
        )  # fmt: skip
        self.driver.on_turn = self.run_turn
        self.assoc = AssociationBase(settings, "acceptor", self.driver, clock=clock)
        self.requests: list[tuple[int, P.DIMSEPrimitive]] = []
        """Every request received (context ID, primitive), answered or not."""
        self.cancelled_at_start: dict[int, bool] = {}
        """Message ID -> ``provider.is_cancelled`` when the request was taken up."""
        self.flows: dict[int, tuple[Coroutine[Any, Any, None], StepFlow]] = {}
        self._stepped: set[int] = set()  # flows already stepped in the current turn
        self.finished: list[int] = []
        """Message IDs whose operation ended (``end_operation``), in order."""
        self.release_pending = False

    @property
    def provider(self) -> DIMSEServiceProvider:
        return self.assoc.dimse

    def connected(self) -> None:
        """The transport connection came in (PS3.8 Evt5: ARTIM starts)."""
        self.conn.transport_connected(self.clock())

    # --- Upper Layer events ---------------------------------------------------------------
    def handle_event(self, event: object) -> None:
        if isinstance(event, AssociationRequested):
            if self.answer_association:
                self._negotiate(event)
            return
        if isinstance(event, ReleaseRequested):
            self.assoc.handle_event(event)
            self.release_pending = self.answer_release
            self._maybe_release()
            return
        # P-DATA goes to the provider (requests are taken up in run_turn); abort/close flags
        self.assoc.handle_event(event)

    def _negotiate(self, event: AssociationRequested) -> None:
        rq = event.pdu
        ae = self.settings
        policy = AcceptorPolicy(
            ae_title=ae.ae_title,
            supported=ae.supported_map(),
            max_pdata_length=ae.maximum_pdu_size,
            implementation_class_uid=ae.implementation_class_uid,
        )
        answer_pdu = negotiate(rq, policy)
        now = self.clock()
        if isinstance(answer_pdu, AAssociateAC):
            self.conn.accept(answer_pdu, now)
            self.assoc.accept(rq, answer_pdu)
        else:
            self.conn.reject(answer_pdu, now)
        self.driver.flush()

    # --- requests (as dicomnet.acceptor: take, start_operation, serve, end_operation) --------
    def _take_requests(self) -> bool:
        if not self.assoc.is_established:
            return False
        provider = self.provider
        taken = provider.take(lambda p: p.Status is None)
        for context_id, prim in taken:
            mid = prim.MessageID
            assert mid is not None
            provider.start_operation(mid)  # a C-CANCEL naming it now counts
            self.cancelled_at_start[mid] = provider.is_cancelled(mid)
            self.requests.append((context_id, prim))
            if self.answer_dimse:
                self._serve(context_id, prim)
        return bool(taken)

    def _call(self, context_id: int, prim: P.DIMSEPrimitive, event_type: EventType) -> ServiceCall:
        mid = prim.MessageID
        bound = self.handlers.first(event_type)
        handler, args = bound if bound is not None else (None, ())
        return ServiceCall(
            self.assoc, context_id, self.assoc.context_by_id(context_id), prim, event_type,
            handler, args, cancel_check=functools.partial(self.provider.is_cancelled, mid),
        )  # fmt: skip

    def _serve(self, context_id: int, prim: P.DIMSEPrimitive) -> None:
        mid = prim.MessageID
        assert mid is not None
        service = ONE_SHOT.get(type(prim))
        if service is not None:
            rsp = answer(service, self._call(context_id, prim, service.event_type))
            self.provider.send_msg(rsp, context_id)
            self._end(mid)
            return
        if isinstance(prim, P.C_FIND):
            flow = StepFlow(self.assoc, self.driver, context_id)
            coro = qr.find(self._call(context_id, prim, EVT_C_FIND), flow)
            self.flows[mid] = (coro, flow)
            self._step(mid)
            return
        raise NotImplementedError(f"{prim.SERVICE} is not served by the in-memory acceptor")

    def _step(self, mid: int) -> bool:
        """Resume the flow of ``mid`` once; True when it made progress."""
        coro, _ = self.flows[mid]
        self._stepped.add(mid)
        try:
            coro.send(None)
        except StopIteration:
            del self.flows[mid]
            self._end(mid)
        return True

    def _end(self, mid: int) -> None:
        self.provider.end_operation(mid)
        self.finished.append(mid)

    def run_turn(self) -> bool:
        """The acceptor's turn, after its driver fed everything read in this turn to the
        provider: take up the queued requests (so a C-CANCEL-RQ read in the same turn as its
        C-FIND-RQ finds it still queued), serve them, resume each older suspended flow once,
        then answer a pending A-RELEASE-RQ when no operation is left."""
        progressed = self._take_requests()
        for mid in list(self.flows):
            if mid not in self._stepped:
                progressed = self._step(mid) or progressed
        self._stepped.clear()
        return self._maybe_release() or progressed

    def _maybe_release(self) -> bool:
        if not self.release_pending or self.flows or self.driver.is_closed:
            return False
        self.release_pending = False
        self.conn.release_response(self.clock())
        self.driver.flush()
        self.assoc.finish(released=True)
        return True


# --- the real blocking client over in-memory transports -------------------------------------


class InMemoryNetwork:
    """In-memory "listeners" by (host, port), and the three substitutions that run
    :func:`dicomnet.client.request_association` (and ``AE.associate``) over them (see the
    module docstring). ``requestor_latency``: seconds before what the acceptor sends is
    readable by the requestor."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.listeners: dict[tuple[str, int], Callable[[], InMemoryAcceptor]] = {}
        self.accepted: list[InMemoryAcceptor] = []
        self.drivers: list[MemoryDriver] = []
        self.requestor_latency = 0.0

    def listen(self, host: str, port: int, make: Callable[[], InMemoryAcceptor]) -> None:
        self.listeners[(host, port)] = make

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(client, "open_socket", self.open_socket)
        monkeypatch.setattr(client, "SyncDriver", self.make_driver)
        monkeypatch.setattr(client, "Association", self.make_association)

    # the substitutes, with the signatures dicomnet.client calls them with
    def make_association(self, ae: Settings, mode: Any = "requestor",
                         driver: Any = None) -> Association:  # fmt: skip
        return Association(ae, mode, driver, clock=self.clock)

    def open_socket(self, host: str, port: int, **_: object) -> InMemoryAcceptor:
        make = self.listeners.get((host, port))
        if make is None:
            raise ConnectError(f"cannot connect to {host}:{port}: Connection refused")
        acceptor = make()
        self.accepted.append(acceptor)
        return acceptor

    def make_driver(
        self,
        conn: ULConnection,
        sock: InMemoryAcceptor,
        *,
        network_timeout: float | None = None,
        on_event: Callable[[Any], None] | None = None,
        clock: Callable[[], float] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> MemoryDriver:
        assert clock is self.clock, "the association was not built with the fake clock"
        driver = MemoryDriver(
            conn, self.clock, network_timeout=network_timeout, on_event=on_event,
            name="requestor", latency=self.requestor_latency,
        )  # fmt: skip
        driver.on_close = on_close
        link(driver, sock.driver)
        sock.connected()
        self.drivers.append(driver)
        return driver
