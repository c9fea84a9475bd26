"""One Upper Layer connection, sans-IO: bytes and time in, events and bytes out (PS3.8 9.2).

Theory of operation
-------------------
A :class:`ULConnection` is the DICOM Upper Layer state machine of one transport connection. It
composes three parts: the :class:`~dicomnet.ul.buffer.ReceiveBuffer` (which splits the byte
stream into PDUs and refuses forged lengths before allocating), the codec, and the transition
table :data:`dicomnet.ul.fsm.TRANSITIONS` (PS3.8 Table 9-10). It never touches a socket or
the clock. A driver (``dicomnet.transport``) does four things in a loop:

* feed received bytes: ``receive_data(data)``, or ``get_write_buffer()`` + ``recv_into`` +
  ``commit(n)`` to receive large PDU bodies without a copy;
* pull events with ``next_event()`` (:mod:`dicomnet.ul.events`) and act on them; on
  :class:`~dicomnet.ul.events.TransportShouldClose` flush and close the socket;
* send what ``data_to_send()`` returns (a list of buffers for ``sendmsg``/``writelines``);
* wait at most until ``next_deadline()`` (the ARTIM timer, PS3.8 9.1.5) and then call
  ``handle_timer(now)``; report transport events with ``transport_connected(now)`` and
  ``transport_closed(now)``.

The user of the connection issues the request/response primitives of PS3.8 section 7 as
method calls (``request_association``, ``accept``, ``reject``, ``send_pdata``,
``release_request``, ``release_response``, ``abort``). Each becomes a Table 9-10 event
(Evt1, Evt7, Evt8, Evt9, Evt11, Evt14, Evt15); a primitive in a state where the table has no
entry breaks PS3.8 section 7's sequencing rules and raises ``ProtocolError(local=True)``.

Received PDUs become Evt3/4/6/10/12/13/16; anything the buffer or codec refuses becomes Evt19
with the A-ABORT reason the error carries (PS3.8 Table 9-26). After Evt19 the byte stream cannot
be trusted to be framed any more, so all further input is discarded. A protocol error by the
peer never raises out of ``receive_data``: the table's action queues the A-ABORT PDU, an
:class:`~dicomnet.ul.events.Aborted` event with ``local=True`` and, because a peer that broke
the protocol is not worth waiting for, :class:`~dicomnet.ul.events.TransportShouldClose` at
once (the state is Sta13 with ARTIM running, as the table says, so a driver that prefers to
half-close and let the peer close first can do so until ``next_deadline()``).

Choices the standard leaves open (see also :mod:`dicomnet.ul.fsm`):

* AA-1 is defined as "send A-ABORT (service-user source)". When the local user aborts (Evt15)
  that is what we send, with the caller's source/reason. When AA-1 answers a bad PDU in Sta2
  (no A-ASSOCIATE indication issued yet, so no service-user is involved) we send source 2
  (service-provider) with reason 2 (unexpected PDU) or the decode error's reason, so the peer
  learns why.
* AA-7 (Sta13, A-ASSOCIATE-RQ or invalid PDU) sends A-ABORT 2/2 or 2/<decode reason>.
* AA-8 sends A-ABORT source 2, reason 2 for a well-formed but unexpected PDU, or the decode
  error's reason for Evt19.
* AA-4 (transport lost) is reported as ``Aborted(source=2, reason=0, local=False)`` followed by
  ``TransportClosed()``.
* In Sta13 the ARTIM timer runs; on expiry (Evt18, AA-2) ``TransportShouldClose`` is emitted.
  With ``artim_timeout=None`` there is no timer: ``TransportShouldClose`` is emitted as soon as
  Sta13 is entered, and Sta2 waits without limit.
* ARTIM needs the current time where it starts. Every primitive takes an optional ``now``;
  without it the latest time passed to any call is used.
* Bytes received in Sta1/Sta4 (blank cells: no transport connection exists) are discarded.
* The Maximum Length (51H) we advertise in our A-ASSOCIATE-RQ/AC is ``max_pdata_length``: it is
  inserted if the PDU has none, and a different value is refused (``ProtocolError(local=True)``)
  since the receive buffer enforces ``max_pdata_length``.

Observing: ``observer`` (None by default) is told of every byte received and sent, every PDU
received and sent (decoded) and every state machine transition (PS3.8 section 9.2), e.g. to
log or trace a connection. Each hook point costs one test of ``observer`` when nobody
observes; sent PDUs are decoded again from the outgoing bytes only for an observer.

Fast paths: in Sta6 a P-DATA-TF PDU is decoded and queued as ``PDataReceived`` without going
through the table; ``send_pdata_chunks`` only checks the state (Sta6, or Sta8 per AR-7) and
appends the caller's pre-encoded buffers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, cast

from dicomnet.errors import PDUDecodeError, ProtocolError
from dicomnet.ul.buffer import ReceiveBuffer
from dicomnet.ul.codec import decode_pdu, encode_pdu
from dicomnet.ul.events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    AssociationRequested,
    PDataReceived,
    ReleaseConfirmed,
    ReleaseRequested,
    TransportClosed,
    TransportShouldClose,
    ULEvent,
)
from dicomnet.ul.fsm import (
    EVENT_DESCRIPTIONS,
    LOCAL_CHOICES,
    TRANSITIONS,
    Action,
    Event,
    State,
    next_state,
)
from dicomnet.ul.negotiation import check_protocol_version, peer_max_length
from dicomnet.ul.pdu import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    MaximumLength,
    PDataTF,
    UserInformation,
)

__all__ = [
    "AcceptorConnection",
    "ProviderCheck",
    "RequestorConnection",
    "ULConnection",
    "ULObserver",
]


class ULObserver(Protocol):
    """What an observer of a :class:`ULConnection` is told (see the module docstring)."""

    def data_received(self, data: bytes) -> None: ...

    def data_sent(self, data: bytes) -> None: ...

    def pdu_received(self, pdu: PDU) -> None: ...

    def pdu_sent(self, pdu: PDU) -> None: ...

    def transition(self, state: State, event: Event, action: Action, next_state: State) -> None:
        ...

ProviderCheck = Callable[[AAssociateRQ], "AAssociateRJ | None"]
"""Service-provider acceptability test of AE-6: None to accept, or the A-ASSOCIATE-RJ to send."""

_STA1 = State.STA1
_STA6 = State.STA6
_STA8 = State.STA8
_STA13 = State.STA13

# PDU type (first header byte) -> Table 9-10 event
_PDU_EVENTS = {
    0x01: Event.EVT6,
    0x02: Event.EVT3,
    0x03: Event.EVT4,
    0x04: Event.EVT10,
    0x05: Event.EVT12,
    0x06: Event.EVT13,
    0x07: Event.EVT16,
}
_RECEIVE_EVENTS = frozenset(_PDU_EVENTS.values()) | {Event.EVT19}

_RELEASE_RQ = encode_pdu(AReleaseRQ())
_RELEASE_RP = encode_pdu(AReleaseRP())
_UNEXPECTED_PDU = 2  # A-ABORT reason, PS3.8 Table 9-26


class ULConnection:
    """The Upper Layer state machine of one transport connection (see the module docstring)."""

    __slots__ = (
        "_artim_deadline",
        "_artim_timeout",
        "_buffer",
        "_close_requested",
        "_discard",
        "_events",
        "_input_dead",
        "_max_associate_length",
        "_now",
        "_out",
        "_provider_check",
        "_recv_view",
        "_state",
        "local_ac",
        "local_rq",
        "max_pdata_length",
        "observer",
        "peer_ac",
        "peer_max_pdata_length",
        "peer_rq",
        "role",
    )

    def __init__(
        self,
        role: Literal["requestor", "acceptor"],
        *,
        max_pdata_length: int = 16384,
        max_associate_length: int = 1 << 20,
        artim_timeout: float | None = 30.0,
        provider_check: ProviderCheck | None = None,
    ) -> None:
        if role not in ("requestor", "acceptor"):
            raise ValueError(f"role must be 'requestor' or 'acceptor', not {role!r}")
        if not 0 <= max_pdata_length <= 0xFFFFFFFF:
            raise ValueError("max_pdata_length must fit the 32-bit Maximum Length field")
        self.role = role
        self.max_pdata_length = max_pdata_length
        self._max_associate_length = max_associate_length
        self._artim_timeout = artim_timeout
        self._provider_check = provider_check
        self._buffer = ReceiveBuffer(max_pdata_length, max_associate_length)
        self._state = State.STA1
        self._events: deque[ULEvent] = deque()
        self._out: list[bytes | memoryview] = []
        self._artim_deadline: float | None = None
        self._now = 0.0
        self._input_dead = False
        self._close_requested = False
        self._discard = memoryview(bytearray(4096))
        self.peer_rq: AAssociateRQ | None = None
        self.peer_ac: AAssociateAC | None = None
        self.local_rq: AAssociateRQ | None = None
        self.local_ac: AAssociateAC | None = None
        self.peer_max_pdata_length = 0
        self.observer: ULObserver | None = None
        self._recv_view: memoryview | None = None

    # --- state ----------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def is_requestor(self) -> bool:
        return self.role == "requestor"

    @property
    def is_established(self) -> bool:
        """An association exists (Sta6, or a release in progress, Sta7-Sta12)."""
        return State.STA6 <= self._state <= State.STA12

    @property
    def can_send_pdata(self) -> bool:
        """P-DATA requests are allowed (Sta6 DT-1, Sta8 AR-7)."""
        return self._state is _STA6 or self._state is _STA8

    # --- driver side: bytes, time, transport --------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, now: float | None = None) -> None:
        """Bytes received from the transport. Never raises for anything the peer sends."""
        if now is not None:
            self._now = now
        if self._input_dead or not data:
            return
        if self.observer is not None:
            self.observer.data_received(bytes(data))
        try:
            self._buffer.feed(data)
        except PDUDecodeError:
            pass  # sticky in the buffer: next_pdu() raises it after the PDUs before it
        self._process()

    def get_write_buffer(self, sizehint: int = -1) -> memoryview:
        """Where to ``recv_into``; then call :meth:`commit`."""
        if self._input_dead:
            return self._discard
        try:
            view = self._buffer.get_write_buffer(sizehint)
            if self.observer is not None:
                self._recv_view = view
            return view
        except PDUDecodeError:
            self._process()
            return self._discard

    def commit(self, nbytes: int, now: float | None = None) -> None:
        """Account for ``nbytes`` received into :meth:`get_write_buffer`'s view."""
        if now is not None:
            self._now = now
        if self._input_dead:
            return
        if self.observer is not None and self._recv_view is not None:
            self.observer.data_received(bytes(self._recv_view[:nbytes]))
            self._recv_view = None
        try:
            self._buffer.commit(nbytes)
        except PDUDecodeError:
            pass
        self._process()

    def data_to_send(self) -> list[bytes | memoryview]:
        """The buffers to send, in order (taken: the connection forgets them)."""
        out = self._out
        self._out = []
        if self.observer is not None and out:
            self._observe_sent(self.observer, out)
        return out

    @staticmethod
    def _observe_sent(observer: ULObserver, out: list[bytes | memoryview]) -> None:
        data = b"".join(bytes(chunk) for chunk in out)
        observer.data_sent(data)
        view, offset = memoryview(data), 0
        while offset + 6 <= len(data):  # PDU header: type, reserved, 32-bit length (PS3.8 9.3)
            end = offset + 6 + int.from_bytes(data[offset + 2 : offset + 6], "big")
            try:
                observer.pdu_sent(decode_pdu(view[offset:end]))
            except PDUDecodeError:  # pragma: no cover - we only send what we can decode
                return
            offset = end

    def next_event(self) -> ULEvent | None:
        """The next event, or None."""
        events = self._events
        return events.popleft() if events else None

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (the ARTIM deadline), or None."""
        return self._artim_deadline

    def handle_timer(self, now: float) -> None:
        """Evt18 if the ARTIM deadline has passed."""
        self._now = now
        deadline = self._artim_deadline
        if deadline is not None and now >= deadline:
            self._artim_deadline = None
            self._fire(Event.EVT18)

    def transport_connected(self, now: float | None = None) -> None:
        """Requestor: the connect completed (Evt2). Acceptor: a connection came in (Evt5)."""
        self._tick(now)
        self._fire(Event.EVT2 if self.is_requestor else Event.EVT5)

    def transport_closed(self, now: float | None = None) -> None:
        """The transport connection is closed (Evt17)."""
        self._tick(now)
        self._fire(Event.EVT17)

    # --- user side: primitives (PS3.8 section 7) -----------------------------------------

    def request_association(self, rq: AAssociateRQ, now: float | None = None) -> None:
        """A-ASSOCIATE request (Evt1, AE-1): then connect and call transport_connected()."""
        self._tick(now)
        if not self.is_requestor:
            raise ProtocolError("only the association-requestor sends A-ASSOCIATE-RQ", local=True)
        self._fire(Event.EVT1, rq.replace(user_information=self._our_ui(rq.user_information)))

    def accept(self, ac: AAssociateAC, now: float | None = None) -> None:
        """A-ASSOCIATE response, accept (Evt7, AE-7)."""
        self._tick(now)
        self._fire(Event.EVT7, ac.replace(user_information=self._our_ui(ac.user_information)))

    def reject(self, rj: AAssociateRJ, now: float | None = None) -> None:
        """A-ASSOCIATE response, reject (Evt8, AE-8)."""
        self._tick(now)
        self._fire(Event.EVT8, rj)

    def send_pdata(self, pdu: PDataTF) -> None:
        """P-DATA request (Evt9: DT-1 in Sta6, AR-7 in Sta8)."""
        if not self.can_send_pdata:
            self._fire(Event.EVT9, pdu)  # raises: blank cell
            return
        data = encode_pdu(pdu)
        limit = self.peer_max_pdata_length
        if limit and len(data) - 6 > limit:
            raise ProtocolError(
                f"P-DATA-TF of {len(data) - 6} bytes exceeds the peer's maximum {limit}",
                local=True,
            )
        self._fire(Event.EVT9, data)

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Pre-encoded P-DATA-TF PDU(s) as scatter-gather buffers; only the state is checked."""
        state = self._state
        if state is not _STA6 and state is not _STA8:
            raise ProtocolError(f"P-DATA request not allowed in Sta{state.value}", local=True)
        self._out.extend(chunks)
        if self.observer is not None:  # DT-1 (Sta6) or AR-7 (Sta8), state unchanged
            action = Action.DT_1 if state is _STA6 else Action.AR_7
            self.observer.transition(state, Event.EVT9, action, state)

    def release_request(self) -> None:
        """A-RELEASE request (Evt11, AR-1)."""
        self._fire(Event.EVT11)

    def release_response(self, now: float | None = None) -> None:
        """A-RELEASE response (Evt14: AR-4 in Sta8/Sta12, AR-9 in Sta9)."""
        self._tick(now)
        self._fire(Event.EVT14)

    def abort(self, source: int = 0, reason: int = 0, now: float | None = None) -> None:
        """A-ABORT request (Evt15). A no-op when there is nothing left to abort (Sta1, Sta13)."""
        self._tick(now)
        self._fire(Event.EVT15, AAbort(source, reason))

    # --- internals --------------------------------------------------------------------------

    def _tick(self, now: float | None) -> None:
        if now is not None:
            self._now = now

    def _our_ui(self, ui: UserInformation) -> UserInformation:
        advertised = ui.maximum_length
        if advertised is None:
            return UserInformation((MaximumLength(self.max_pdata_length), *ui.sub_items))
        if advertised != self.max_pdata_length:
            raise ProtocolError(
                f"the PDU advertises Maximum Length {advertised} but the connection enforces "
                f"max_pdata_length={self.max_pdata_length}",
                local=True,
            )
        return ui

    def _process(self) -> None:
        """Turn every complete PDU in the buffer into its Table 9-10 event."""
        buffer = self._buffer
        events = self._events
        while not self._input_dead:
            try:
                view = buffer.next_pdu()
            except PDUDecodeError as exc:
                self._fire(Event.EVT19, exc.abort_reason)
                return
            if view is None:
                return
            try:
                pdu = decode_pdu(view)
            except PDUDecodeError as exc:
                self._fire(Event.EVT19, exc.abort_reason)
                return
            observer = self.observer
            if observer is not None:
                observer.pdu_received(pdu)
            if self._state is _STA6 and view[0] == 0x04:
                # Fast path, DT-2: P-DATA-TF in Sta6 is a P-DATA indication, state unchanged.
                events.append(PDataReceived(pdu))  # type: ignore[arg-type]
                if observer is not None:
                    observer.transition(_STA6, Event.EVT10, Action.DT_2, _STA6)
                continue
            self._fire(_PDU_EVENTS[view[0]], pdu)

    def _fire(self, event: Event, arg: Any = None) -> None:
        state = self._state
        action = TRANSITIONS.get((state, event))
        if action is None:
            key = (state, event)
            if key in LOCAL_CHOICES:
                action = LOCAL_CHOICES[key]
                if action is None:
                    return
            elif event in _RECEIVE_EVENTS or event is Event.EVT18:
                # Blank cells for received PDUs (Sta1/Sta4: no transport connection, so the
                # bytes are discarded) and for a stale timer: nothing to do.
                return
            else:
                raise ProtocolError(
                    f"{EVENT_DESCRIPTIONS[event]} ({event.label}) not allowed in "
                    f"{state.label}",
                    local=True,
                )
        if event is Event.EVT19:
            self._input_dead = True
        _HANDLERS[action](self, event, arg)
        if self.observer is not None:
            self.observer.transition(state, event, action, self._state)

    def _goto(self, action: Action, *, acceptable: bool = True) -> None:
        self._state = next_state(action, requestor=self.is_requestor, acceptable=acceptable)
        if self._state is _STA1:
            self._artim_deadline = None
            self._input_dead = True

    def _start_artim(self) -> None:
        timeout = self._artim_timeout
        if timeout is None:
            # No ARTIM: Sta2 waits without limit; Sta13 does not wait for the peer to close.
            self._artim_deadline = None
            if self._state is _STA13:
                self._request_close()
        else:
            self._artim_deadline = self._now + timeout

    def _request_close(self) -> None:
        if not self._close_requested:
            self._close_requested = True
            self._events.append(TransportShouldClose())

    def _new_transport(self) -> None:
        """A fresh transport connection (AE-1, AE-5): empty buffer, no stale flags."""
        self._buffer = ReceiveBuffer(self.max_pdata_length, self._max_associate_length)
        self._input_dead = False
        self._close_requested = False
        self.peer_rq = self.peer_ac = None
        self.peer_max_pdata_length = 0

    def _send_abort(self, source: int, reason: int) -> None:
        self._out.append(encode_pdu(AAbort(source, reason)))

    # --- the actions of PS3.8 Tables 9-6 to 9-9 --------------------------------------------

    def _ae_1(self, event: Event, rq: AAssociateRQ) -> None:
        self._new_transport()
        self.local_rq = rq
        self._goto(Action.AE_1)

    def _ae_2(self, event: Event, arg: None) -> None:
        assert self.local_rq is not None
        self._out.append(encode_pdu(self.local_rq))
        self._goto(Action.AE_2)

    def _ae_3(self, event: Event, ac: AAssociateAC) -> None:
        self.peer_ac = ac
        self.peer_max_pdata_length = peer_max_length(ac.user_information)
        self._events.append(AssociationAccepted(ac))
        self._goto(Action.AE_3)

    def _ae_4(self, event: Event, rj: AAssociateRJ) -> None:
        self._events.append(AssociationRejected(rj))
        self._request_close()
        self._goto(Action.AE_4)

    def _ae_5(self, event: Event, arg: None) -> None:
        self._new_transport()
        self._goto(Action.AE_5)
        self._start_artim()

    def _ae_6(self, event: Event, rq: AAssociateRQ) -> None:
        self._artim_deadline = None
        rj = check_protocol_version(rq)
        if rj is None and self._provider_check is not None:
            rj = self._provider_check(rq)
        self.peer_rq = rq
        if rj is None:
            self.peer_max_pdata_length = peer_max_length(rq.user_information)
            self._events.append(AssociationRequested(rq))
            self._goto(Action.AE_6, acceptable=True)
            return
        self._out.append(encode_pdu(rj))
        self._events.append(AssociationRejected(rj, local=True))
        self._goto(Action.AE_6, acceptable=False)
        self._start_artim()

    def _ae_7(self, event: Event, ac: AAssociateAC) -> None:
        self._out.append(encode_pdu(ac))
        self.local_ac = ac
        self._goto(Action.AE_7)

    def _ae_8(self, event: Event, rj: AAssociateRJ) -> None:
        self._out.append(encode_pdu(rj))
        self._goto(Action.AE_8)
        self._start_artim()

    def _dt_1(self, event: Event, data: bytes) -> None:
        self._out.append(data)
        self._goto(Action.DT_1)

    def _dt_2(self, event: Event, pdu: PDataTF) -> None:
        self._events.append(PDataReceived(pdu))
        self._goto(Action.DT_2)

    def _ar_1(self, event: Event, arg: None) -> None:
        self._out.append(_RELEASE_RQ)
        self._goto(Action.AR_1)

    def _ar_2(self, event: Event, arg: PDU) -> None:
        self._events.append(ReleaseRequested())
        self._goto(Action.AR_2)

    def _ar_3(self, event: Event, arg: PDU) -> None:
        self._events.append(ReleaseConfirmed())
        self._request_close()
        self._goto(Action.AR_3)

    def _ar_4(self, event: Event, arg: None) -> None:
        self._out.append(_RELEASE_RP)
        self._goto(Action.AR_4)
        self._start_artim()

    def _ar_5(self, event: Event, arg: None) -> None:
        self._goto(Action.AR_5)
        self._events.append(TransportClosed())

    def _ar_6(self, event: Event, pdu: PDataTF) -> None:
        self._events.append(PDataReceived(pdu))
        self._goto(Action.AR_6)

    def _ar_7(self, event: Event, data: bytes) -> None:
        self._out.append(data)
        self._goto(Action.AR_7)

    def _ar_8(self, event: Event, arg: PDU) -> None:
        self._events.append(ReleaseRequested(collision=True))
        self._goto(Action.AR_8)

    def _ar_9(self, event: Event, arg: None) -> None:
        self._out.append(_RELEASE_RP)
        self._goto(Action.AR_9)

    def _ar_10(self, event: Event, arg: PDU) -> None:
        self._events.append(ReleaseConfirmed())
        self._goto(Action.AR_10)

    def _peer_error_reason(self, event: Event, arg: object) -> int:
        # Evt19 carries the decode error's reason; any other PDU event here is a well-formed
        # PDU that the table does not expect in this state (A-ABORT reason 2).
        return int(cast(int, arg)) if event is Event.EVT19 else _UNEXPECTED_PDU

    def _aa_1(self, event: Event, arg: object) -> None:
        if event is Event.EVT15:
            abort = cast(AAbort, arg)
            self._send_abort(abort.source, abort.reason)
        else:
            reason = self._peer_error_reason(event, arg)
            self._send_abort(2, reason)
            self._events.append(Aborted(2, reason, True))
            self._request_close()
        self._goto(Action.AA_1)
        self._start_artim()

    def _aa_2(self, event: Event, arg: object) -> None:
        self._artim_deadline = None
        self._request_close()
        self._goto(Action.AA_2)

    def _aa_3(self, event: Event, abort: AAbort) -> None:
        self._events.append(Aborted(abort.source, abort.reason, False))
        self._request_close()
        self._goto(Action.AA_3)

    def _aa_4(self, event: Event, arg: None) -> None:
        self._events.append(Aborted(2, 0, False))
        self._goto(Action.AA_4)
        self._events.append(TransportClosed())

    def _aa_5(self, event: Event, arg: None) -> None:
        self._goto(Action.AA_5)
        self._events.append(TransportClosed())

    def _aa_6(self, event: Event, arg: PDU) -> None:
        self._goto(Action.AA_6)

    def _aa_7(self, event: Event, arg: object) -> None:
        self._send_abort(2, self._peer_error_reason(event, arg))
        self._request_close()
        self._goto(Action.AA_7)

    def _aa_8(self, event: Event, arg: object) -> None:
        reason = self._peer_error_reason(event, arg)
        self._send_abort(2, reason)
        self._events.append(Aborted(2, reason, True))
        self._request_close()
        self._goto(Action.AA_8)
        self._start_artim()


_HANDLERS: dict[Action, Callable[[ULConnection, Event, Any], None]] = {
    action: getattr(ULConnection, "_" + action.name.lower()) for action in Action
}


class RequestorConnection(ULConnection):
    """The association-requestor side (SCU, usually)."""

    __slots__ = ()

    def __init__(
        self,
        *,
        max_pdata_length: int = 16384,
        max_associate_length: int = 1 << 20,
        artim_timeout: float | None = 30.0,
    ) -> None:
        super().__init__(
            "requestor",
            max_pdata_length=max_pdata_length,
            max_associate_length=max_associate_length,
            artim_timeout=artim_timeout,
        )


class AcceptorConnection(ULConnection):
    """The association-acceptor side (SCP, usually)."""

    __slots__ = ()

    def __init__(
        self,
        *,
        max_pdata_length: int = 16384,
        max_associate_length: int = 1 << 20,
        artim_timeout: float | None = 30.0,
        provider_check: ProviderCheck | None = None,
    ) -> None:
        super().__init__(
            "acceptor",
            max_pdata_length=max_pdata_length,
            max_associate_length=max_associate_length,
            artim_timeout=artim_timeout,
            provider_check=provider_check,
        )
