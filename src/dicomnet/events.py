"""Server-side events: the ``EVT_*`` constants and the :class:`Event` handed to handlers.

Theory of operation
-------------------
An application binds handlers to event types: ``handlers=[(EVT_C_STORE, on_store), ...]``
(a mapping is accepted too). There are two kinds of event type:

* *intervention* events (``EVT_C_*``, ``EVT_N_*``, ``EVT_USER_ID``, ``EVT_SOP_EXTENDED``): the handler's return value
  *is* the answer that goes back to the peer (a status, a ``(status, dataset)`` pair, or a
  generator of them for C-FIND/C-GET/C-MOVE). One handler per intervention event; when none is
  bound the service uses its documented default (C-ECHO answers Success, everything else a
  failure status — see :mod:`dicomnet.services.dispatch`).
* *notification* events (association and connection life cycle): any number of handlers, return
  values ignored, exceptions logged and swallowed.

Each call receives one :class:`Event`. Decoding is lazy: ``event.dataset`` decodes the received
data set (a :class:`~dicomnet.datasource.DataSource`) with the transfer syntax accepted for
the message's presentation context (PS3.7 section 6.3.1: the data set is encoded in the
context's transfer syntax), once, on first access. A storage handler that only wants the bytes
uses ``event.data_source`` (possibly a spooled temporary file) and ``event.file_meta`` to write a
Part 10 file (PS3.10 section 7.1) without ever building a ``Dataset``.

``event.is_cancelled`` turns True as soon as the event loop has read a C-CANCEL-RQ whose
Message ID Being Responded To equals this request's Message ID (PS3.7 section 9.3.2.3): the
server keeps reading the association while handlers run, so a long C-FIND/C-GET/C-MOVE
generator can check it between yields.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dicomnet._record import Record

if TYPE_CHECKING:
    from datetime import datetime

    from pydicom.dataset import Dataset, FileMetaDataset

__all__ = [
    "EVT_ABORTED",
    "EVT_ACCEPTED",
    "EVT_CONN_CLOSE",
    "EVT_CONN_OPEN",
    "EVT_C_ECHO",
    "EVT_C_FIND",
    "EVT_C_GET",
    "EVT_C_MOVE",
    "EVT_C_STORE",
    "EVT_N_ACTION",
    "EVT_N_CREATE",
    "EVT_N_DELETE",
    "EVT_N_EVENT_REPORT",
    "EVT_N_GET",
    "EVT_N_SET",
    "EVT_REJECTED",
    "EVT_RELEASED",
    "EVT_REQUESTED",
    "EVT_SOP_EXTENDED",
    "EVT_USER_ID",
    "Binding",
    "Event",
    "EventType",
    "HandlerMap",
    "normalize_handlers",
]

LOGGER = logging.getLogger("dicomnet.events")



def _default_uid() -> str:
    """Our Implementation Class UID (PS3.7 D.3.3.2) when the AE does not give one."""
    from dicomnet.ae import IMPLEMENTATION_CLASS_UID

    return IMPLEMENTATION_CLASS_UID


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

    def __repr__(self) -> str:
        return self.name


# Notification events: association / connection life cycle (PS3.8 section 7).
EVT_CONN_OPEN = EventType("EVT_CONN_OPEN", "transport connection accepted", False)
EVT_CONN_CLOSE = EventType("EVT_CONN_CLOSE", "transport connection closed", False)
EVT_REQUESTED = EventType("EVT_REQUESTED", "A-ASSOCIATE-RQ received", False)
EVT_ACCEPTED = EventType("EVT_ACCEPTED", "A-ASSOCIATE-AC sent", False)
EVT_REJECTED = EventType("EVT_REJECTED", "A-ASSOCIATE-RJ sent", False)
EVT_RELEASED = EventType("EVT_RELEASED", "association released", False)
EVT_ABORTED = EventType("EVT_ABORTED", "association aborted", False)

# Intervention events: requests the peer makes of us.
EVT_USER_ID = EventType("EVT_USER_ID", "user identity negotiation (PS3.7 D.3.3.7)", True)
EVT_SOP_EXTENDED = EventType(
    "EVT_SOP_EXTENDED", "SOP class extended negotiation (PS3.7 D.3.3.5)", True
)
EVT_C_ECHO = EventType("EVT_C_ECHO", "C-ECHO-RQ received", True)
EVT_C_STORE = EventType("EVT_C_STORE", "C-STORE-RQ received", True)
EVT_C_FIND = EventType("EVT_C_FIND", "C-FIND-RQ received", True)
EVT_C_GET = EventType("EVT_C_GET", "C-GET-RQ received", True)
EVT_C_MOVE = EventType("EVT_C_MOVE", "C-MOVE-RQ received", True)
EVT_N_EVENT_REPORT = EventType("EVT_N_EVENT_REPORT", "N-EVENT-REPORT-RQ received", True)
EVT_N_GET = EventType("EVT_N_GET", "N-GET-RQ received", True)
EVT_N_SET = EventType("EVT_N_SET", "N-SET-RQ received", True)
EVT_N_ACTION = EventType("EVT_N_ACTION", "N-ACTION-RQ received", True)
EVT_N_CREATE = EventType("EVT_N_CREATE", "N-CREATE-RQ received", True)
EVT_N_DELETE = EventType("EVT_N_DELETE", "N-DELETE-RQ received", True)

Handler = Callable[..., Any]
Binding = tuple[Handler, tuple[Any, ...]]
HandlerMap = dict[EventType, list[Binding]]


def normalize_handlers(handlers: Any) -> HandlerMap:
    """``[(EVT_X, fn), (EVT_Y, fn, [extra args]), ...]`` or ``{EVT_X: fn}`` ->
    ``{EVT_X: [(fn, extra_args), ...]}``. The handler is called as ``fn(event, *extra_args)``.

    Raises ValueError for a malformed binding or a second handler of an intervention event.
    """
    result: HandlerMap = {}
    if handlers is None:
        return result
    items: Iterable[Any] = handlers.items() if isinstance(handlers, Mapping) else handlers
    for item in items:
        if not isinstance(item, tuple | list) or len(item) not in (2, 3):
            raise ValueError(f"a handler binding is (event, handler[, args]), not {item!r}")
        event, fn = item[0], item[1]
        if not isinstance(event, EventType) or not callable(fn):
            raise ValueError(f"invalid handler binding {item!r}")
        bound = result.setdefault(event, [])
        if event.intervention and bound:
            raise ValueError(f"{event.name} takes exactly one handler")
        bound.append((fn, tuple(item[2]) if len(item) == 3 else ()))
    return result


class Event:
    """What a handler receives. Cheap to build: nothing is decoded until asked for."""

    __slots__ = (
        "_attrs",
        "_cancel_check",
        "_dataset",
        "_file_meta",
        "assoc",
        "context",
        "event",
        "request",
        "timestamp",
    )

    def __init__(
        self,
        assoc: Any,
        event: EventType,
        *,
        context: Any = None,
        request: Any = None,
        cancel_check: Callable[[], bool] | None = None,
        **attrs: Any,
    ) -> None:
        self.assoc = assoc
        self.event = event
        self.context = context
        self.request = request
        self.timestamp = _now()
        self._cancel_check = cancel_check
        self._dataset: Dataset | None = None
        self._file_meta: FileMetaDataset | None = None
        self._attrs = attrs

    def __getattr__(self, name: str) -> Any:
        # Extra event-specific attributes (e.g. EVT_USER_ID's primary_field); __slots__ attrs
        # never reach here.
        try:
            return self._attrs[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"<Event {self.event.name} message_id={self.message_id}>"

    # --- request parameters -------------------------------------------------------------
    @property
    def message_id(self) -> int | None:
        return getattr(self.request, "MessageID", None)

    @property
    def is_cancelled(self) -> bool:
        """True once a C-CANCEL-RQ for this request's Message ID was received (PS3.7 9.3.2.3)."""
        return self._cancel_check is not None and self._cancel_check()

    @property
    def data_source(self) -> Any:
        """The raw received data set (:class:`~dicomnet.datasource.DataSource`) or None."""
        return _request_data(self.request)

    @property
    def dataset(self) -> Dataset:
        """The request's data set, decoded on first access with the context's transfer syntax.

        For C-FIND/C-GET/C-MOVE this is the Identifier, for N-SET the Modification List, for
        N-ACTION the Action Information, and so on. Raises ValueError when the request carried
        none.
        """
        if self._dataset is None:
            source = _request_data(self.request)
            if source is None:
                raise ValueError(f"the {self.event.name} request has no data set")
            ts = getattr(self.context, "transfer_syntax", None)
            if ts is None:
                raise ValueError("no transfer syntax known for this presentation context")
            self._dataset = source.decode(ts)
        return self._dataset

    # pynetdicom-style aliases for the data set of each message type (PS3.7 section 9/10).
    identifier = dataset
    attribute_list = dataset
    modification_list = dataset
    action_information = dataset
    event_information = dataset

    @property
    def action_type(self) -> int | None:
        return getattr(self.request, "ActionTypeID", None)

    @property
    def event_type(self) -> int | None:
        return getattr(self.request, "EventTypeID", None)

    @property
    def move_destination(self) -> str | None:
        value = getattr(self.request, "MoveDestination", None)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return value.strip() if isinstance(value, str) else None

    @property
    def file_meta(self) -> FileMetaDataset:
        """File Meta Information (PS3.10 section 7.1) for a received C-STORE data set."""
        if self._file_meta is None:
            from pydicom.dataset import FileMetaDataset

            meta = FileMetaDataset()
            m: Any = meta  # pydicom types the UID elements as UID; we assign str
            m.MediaStorageSOPClassUID = getattr(self.request, "AffectedSOPClassUID", None)
            m.MediaStorageSOPInstanceUID = getattr(self.request, "AffectedSOPInstanceUID", None)
            m.TransferSyntaxUID = getattr(self.context, "transfer_syntax", None)
            ae = getattr(self.assoc, "ae", None)
            m.ImplementationClassUID = getattr(ae, "implementation_class_uid", None) or _default_uid()
            version = getattr(ae, "implementation_version_name", None)
            if version:
                m.ImplementationVersionName = version
            requestor = getattr(self.assoc, "requestor", None)
            calling = getattr(requestor, "ae_title", None)
            if calling:
                meta.SourceApplicationEntityTitle = str(calling).strip()
            self._file_meta = meta
        return self._file_meta


_datetime_now: Callable[[], datetime] | None = None


def _now() -> datetime:
    """The current local time. :mod:`datetime` is imported on first use, not with this module:
    clients (``dicomnet echoscu``) import this module but never build an Event."""
    global _datetime_now
    if _datetime_now is None:
        from datetime import datetime

        _datetime_now = datetime.now
    return _datetime_now()


def _request_data(request: Any) -> Any:
    """The data set a request primitive carries, whatever the service calls it (PS3.7 9.1/10.1:
    DataSet, Identifier, EventInformation, ModificationList, ActionInformation, AttributeList).
    """
    if request is None:
        return None
    for name in getattr(request, "DATASET_FIELDS", ("DataSet",)):
        value = getattr(request, name, None)
        if value is not None:
            return value
    return None
