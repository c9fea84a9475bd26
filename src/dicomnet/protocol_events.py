"""The protocol-level notification events: what an Upper Layer connection does, as EVT_DATA_*,
EVT_PDU_*, EVT_ACSE_* and EVT_FSM_TRANSITION.

Theory of operation
-------------------
A connection (:class:`~dicomnet.ul.connection.Connection`) reports bytes in and out, PDUs in and
out (PS3.8 section 9.3) and each state machine transition (PS3.8 section 9.2, Table 9-10) to an
optional observer. The client and the server give a connection a :class:`ProtocolObserver` only
when a handler is bound to one of these events (:func:`wants_protocol_events`): a connection
nobody observes pays nothing. The observer builds an event's details only when a handler is
bound to that event, and hands them to the association's ``fire`` callback, which calls the
handlers as for every other notification event.
"""

from __future__ import annotations

from collections.abc import Callable

from dicomnet.event_types import (
    EVT_ACSE_RECV,
    EVT_ACSE_SENT,
    EVT_DATA_RECV,
    EVT_DATA_SENT,
    EVT_FSM_TRANSITION,
    EVT_PDU_RECV,
    EVT_PDU_SENT,
    PROTOCOL_EVENTS,
    EventType,
)
from dicomnet.events import Handlers
from dicomnet.ul.fsm import Action, State
from dicomnet.ul.fsm import Event as FSMEvent
from dicomnet.ul.pdu import PDU, PDataTF

__all__ = ["ProtocolObserver", "wants_protocol_events"]


def wants_protocol_events(handlers: Handlers) -> bool:
    """Whether a handler is bound to one of :data:`PROTOCOL_EVENTS` (only then does a
    connection get a :class:`ProtocolObserver`, so that unobserved connections pay nothing)."""
    return any(handlers.get(event) for event in PROTOCOL_EVENTS)


class ProtocolObserver:
    """The :class:`~dicomnet.ul.connection.ULObserver` that turns what an Upper Layer
    connection does into EVT_DATA_*, EVT_PDU_*, EVT_ACSE_* (association control PDUs, PS3.8
    section 7) and EVT_FSM_TRANSITION (PS3.8 section 9.2), each built only when a handler is
    bound to it. ``fire(event type, details)`` calls the handlers."""

    __slots__ = ("_fire", "_handlers")

    def __init__(
        self, handlers: Handlers, fire: Callable[[EventType, dict[str, object]], None]
    ) -> None:
        self._handlers = handlers
        self._fire = fire

    def _emit(self, event: EventType, **details: object) -> None:
        if self._handlers.get(event):
            self._fire(event, details)

    def data_received(self, data: bytes) -> None:
        self._emit(EVT_DATA_RECV, data=data)

    def data_sent(self, data: bytes) -> None:
        self._emit(EVT_DATA_SENT, data=data)

    def pdu_received(self, pdu: PDU) -> None:
        self._emit(EVT_PDU_RECV, pdu=pdu)
        if not isinstance(pdu, PDataTF):
            self._emit(EVT_ACSE_RECV, primitive=pdu)

    def pdu_sent(self, pdu: PDU) -> None:
        self._emit(EVT_PDU_SENT, pdu=pdu)
        if not isinstance(pdu, PDataTF):
            self._emit(EVT_ACSE_SENT, primitive=pdu)

    def transition(self, state: State, event: FSMEvent, action: Action, next_state: State) -> None:
        if self._handlers.get(EVT_FSM_TRANSITION):
            self._fire(EVT_FSM_TRANSITION, {
                "current_state": state.label, "fsm_event": event.label,
                "action": action.value, "next_state": next_state.label,
            })  # fmt: skip
