"""The event vocabulary: :class:`EventType`, its two kinds and every ``EVT_*`` constant.

Theory of operation
-------------------
An event type is a frozen value: a name, a description and whether it is an *intervention*
(the handler's return value answers the peer) or a *notification* (handlers are told, their
return values ignored). :class:`NotificationEvent` and :class:`InterventionEvent` build the
two kinds, as pynetdicom's classes of those names do. The constants below are the events
dicomnet fires; :mod:`dicomnet.events` (``dicomnet.evt``) re-exports all of them with the
handler machinery, and is where applications import them from.
"""

from __future__ import annotations

from dicomnet._record import Record

__all__ = [
    "ALL_EVENTS",
    "EVT_ABORTED",
    "EVT_ACCEPTED",
    "EVT_ACSE_RECV",
    "EVT_ACSE_SENT",
    "EVT_ASYNC_OPS",
    "EVT_CONN_CLOSE",
    "EVT_CONN_OPEN",
    "EVT_C_ECHO",
    "EVT_C_FIND",
    "EVT_C_GET",
    "EVT_C_MOVE",
    "EVT_C_STORE",
    "EVT_DATA_RECV",
    "EVT_DATA_SENT",
    "EVT_DIMSE_RECV",
    "EVT_DIMSE_SENT",
    "EVT_ESTABLISHED",
    "EVT_FSM_TRANSITION",
    "EVT_N_ACTION",
    "EVT_N_CREATE",
    "EVT_N_DELETE",
    "EVT_N_EVENT_REPORT",
    "EVT_N_GET",
    "EVT_N_SET",
    "EVT_PDU_RECV",
    "EVT_PDU_SENT",
    "EVT_REJECTED",
    "EVT_RELEASED",
    "EVT_REQUESTED",
    "EVT_SOP_COMMON",
    "EVT_SOP_EXTENDED",
    "EVT_USER_ID",
    "PROTOCOL_EVENTS",
    "EventType",
    "InterventionEvent",
    "NotificationEvent",
]


class EventType(Record):
    """One kind of event. ``intervention``: the handler's return value answers the peer."""

    __slots__ = ("description", "intervention", "name")
    name: str
    description: str
    intervention: bool

    def __init__(self, name: str, description: str, intervention: bool) -> None:
        _set = object.__setattr__  # frozen: past Record.__setattr__
        _set(self, "name", name)
        _set(self, "description", description)
        _set(self, "intervention", intervention)

    @property
    def is_intervention(self) -> bool:
        return self.intervention

    @property
    def is_notification(self) -> bool:
        return not self.intervention

    def __repr__(self) -> str:
        return self.name


#: pynetdicom's names of the two kinds (both are :class:`EventType`).
class NotificationEvent(EventType):
    """A notification event: ``NotificationEvent(name, description)``, pynetdicom's form."""

    __slots__ = ()

    def __init__(self, name: str, description: str, intervention: bool = False) -> None:
        EventType.__init__(self, name, description, intervention)


class InterventionEvent(EventType):
    """An intervention event: ``InterventionEvent(name, description)``, pynetdicom's form."""

    __slots__ = ()

    def __init__(self, name: str, description: str, intervention: bool = True) -> None:
        EventType.__init__(self, name, description, intervention)


# Notification events: association / connection life cycle (PS3.8 section 7).
EVT_CONN_OPEN = NotificationEvent("EVT_CONN_OPEN", "transport connection accepted")
EVT_CONN_CLOSE = NotificationEvent("EVT_CONN_CLOSE", "transport connection closed")
EVT_REQUESTED = NotificationEvent("EVT_REQUESTED", "A-ASSOCIATE-RQ received")
EVT_ACCEPTED = NotificationEvent("EVT_ACCEPTED", "A-ASSOCIATE-AC sent")
EVT_REJECTED = NotificationEvent("EVT_REJECTED", "A-ASSOCIATE-RJ sent")
EVT_RELEASED = NotificationEvent("EVT_RELEASED", "association released")
EVT_ABORTED = NotificationEvent("EVT_ABORTED", "association aborted")
EVT_ESTABLISHED = NotificationEvent("EVT_ESTABLISHED", "association established")

# Notification events of the protocol machinery: only built when a handler is bound to them
# (each would otherwise cost on every PDU or message). ``event.pdu`` (PS3.8 section 9.3),
# ``event.data`` (the raw bytes), ``event.message`` (the DIMSE message, PS3.7 section 6.3),
# ``event.primitive`` (the A-ASSOCIATE / A-RELEASE / A-ABORT PDU, PS3.8 section 7),
# ``event.current_state``/``fsm_event``/``action``/``next_state`` (PS3.8 section 9.2).
EVT_ACSE_RECV = NotificationEvent("EVT_ACSE_RECV", "ACSE primitive received")
EVT_ACSE_SENT = NotificationEvent("EVT_ACSE_SENT", "ACSE primitive sent")
EVT_DATA_RECV = NotificationEvent("EVT_DATA_RECV", "data received from the peer")
EVT_DATA_SENT = NotificationEvent("EVT_DATA_SENT", "data sent to the peer")
EVT_DIMSE_RECV = NotificationEvent("EVT_DIMSE_RECV", "DIMSE message received")
EVT_DIMSE_SENT = NotificationEvent("EVT_DIMSE_SENT", "DIMSE message sent")
EVT_PDU_RECV = NotificationEvent("EVT_PDU_RECV", "PDU received")
EVT_PDU_SENT = NotificationEvent("EVT_PDU_SENT", "PDU sent")
EVT_FSM_TRANSITION = NotificationEvent("EVT_FSM_TRANSITION", "state machine transition")

# Intervention events: requests the peer makes of us.
EVT_USER_ID = InterventionEvent("EVT_USER_ID", "user identity negotiation (PS3.7 D.3.3.7)")
EVT_SOP_EXTENDED = InterventionEvent(
    "EVT_SOP_EXTENDED", "SOP class extended negotiation (PS3.7 D.3.3.5)"
)
EVT_SOP_COMMON = InterventionEvent(
    "EVT_SOP_COMMON", "SOP class common extended negotiation (PS3.7 D.3.3.6)"
)
EVT_ASYNC_OPS = InterventionEvent(
    "EVT_ASYNC_OPS", "asynchronous operations window negotiation (PS3.7 D.3.3.3)"
)
EVT_C_ECHO = InterventionEvent("EVT_C_ECHO", "C-ECHO-RQ received")
EVT_C_STORE = InterventionEvent("EVT_C_STORE", "C-STORE-RQ received")
EVT_C_FIND = InterventionEvent("EVT_C_FIND", "C-FIND-RQ received")
EVT_C_GET = InterventionEvent("EVT_C_GET", "C-GET-RQ received")
EVT_C_MOVE = InterventionEvent("EVT_C_MOVE", "C-MOVE-RQ received")
EVT_N_EVENT_REPORT = InterventionEvent("EVT_N_EVENT_REPORT", "N-EVENT-REPORT-RQ received")
EVT_N_GET = InterventionEvent("EVT_N_GET", "N-GET-RQ received")
EVT_N_SET = InterventionEvent("EVT_N_SET", "N-SET-RQ received")
EVT_N_ACTION = InterventionEvent("EVT_N_ACTION", "N-ACTION-RQ received")
EVT_N_CREATE = InterventionEvent("EVT_N_CREATE", "N-CREATE-RQ received")
EVT_N_DELETE = InterventionEvent("EVT_N_DELETE", "N-DELETE-RQ received")

#: Every event type, notification and intervention.
ALL_EVENTS: tuple[EventType, ...] = ()  # filled below, once every EVT_* exists

#: The events fired from the Upper Layer machinery through a :class:`~dicomnet.protocol_events.ProtocolObserver`.
PROTOCOL_EVENTS = (
    EVT_ACSE_RECV,
    EVT_ACSE_SENT,
    EVT_DATA_RECV,
    EVT_DATA_SENT,
    EVT_PDU_RECV,
    EVT_PDU_SENT,
    EVT_FSM_TRANSITION,
)

ALL_EVENTS = tuple(v for k, v in list(globals().items()) if k.startswith("EVT_"))
