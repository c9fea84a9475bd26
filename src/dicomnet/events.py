"""Events: the ``EVT_*`` constants, the :class:`Event` handed to handlers, handler bindings.

Theory of operation
-------------------
An application binds handlers to event types: ``handlers=[(EVT_C_STORE, on_store), ...]``
(a mapping is accepted too). There are two kinds of event type:

* *intervention* events (``EVT_C_*``, ``EVT_N_*``, ``EVT_USER_ID``, ``EVT_SOP_EXTENDED``): the
  handler's return value *is* the answer that goes back to the peer (a status, a ``(status,
  dataset)`` pair, or a generator of them for C-FIND/C-GET/C-MOVE). One handler per
  intervention event; when none is bound the service uses its documented default (C-ECHO
  answers Success, everything else a failure status — see :mod:`dicomnet.services.dispatch`).
* *notification* events (association and connection life cycle): any number of handlers,
  return values ignored, exceptions logged and swallowed.

:class:`Handlers` holds the bindings of a server or of one association.

Each call receives one :class:`Event`. Decoding is lazy: ``event.dataset`` decodes the received
data set (a :class:`~dicomnet.datasource.DataSource`) with the transfer syntax accepted for
the message's presentation context (PS3.7 section 6.3.1: the data set is encoded in the
context's transfer syntax), once, on first access. A storage handler that only wants the bytes
uses ``event.data_source`` (possibly a spooled temporary file) and ``event.file_meta`` to write a
Part 10 file (PS3.10 section 7.1) without ever building a ``Dataset``.

``event.is_cancelled`` turns True as soon as the association has read a C-CANCEL-RQ whose
Message ID Being Responded To equals this request's Message ID (PS3.7 section 9.3.2.3): the
server keeps reading the association while handlers run, so a long C-FIND/C-GET/C-MOVE
generator can check it between yields.

``Event`` is generic in the association it comes from (``Event[Association]``); this module
only needs the little of it that :class:`EventAssociation` names, so it imports nothing of the
association layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from io import BytesIO
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from dicomnet import event_types
from dicomnet.datasource import DataSource
from dicomnet.dimse.primitives import DIMSEPrimitive
from dicomnet.event_types import *  # noqa: F403 -- re-exported: see __all__
from dicomnet.event_types import ALL_EVENTS, EventType
from dicomnet.presentation import PresentationContext, accepted_syntax_of
from dicomnet.settings import IMPLEMENTATION_CLASS_UID, Settings
from dicomnet.ul.pdu import AAssociateRJ, AAssociateRQ

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from pydicom.dataset import Dataset, FileMetaDataset

    from dicomnet.serviceuser import ServiceUser

# this module's own names, then event_types' (the EVT_* constants and event kinds), which
# programs import from here (``from dicomnet import evt``): one list to keep, not three
__all__ = [
    "Binding",
    "Event",
    "EventAssociation",
    "HandlerMap",
    "HandlerSpec",
    "Handlers",
    "NoDataSetError",
    "normalize_handlers",
    "trigger",
]
__all__ += event_types.__all__

LOGGER = logging.getLogger("dicomnet.events")


# A handler is called as handler(event, *extra_args); what it returns depends on the event
# (a status, (status, dataset), a generator of them, or a coroutine of any of these), so its
# result type is open.
Handler = Callable[..., object]
Binding = tuple[Handler, tuple[object, ...]]
HandlerMap = dict[EventType, list[Binding]]
HandlerSpec = (
    Sequence[tuple[EventType, Handler] | tuple[EventType, Handler, Sequence[object]]]
    | Mapping[EventType, Handler]
)
"""How an application gives handlers: ``[(EVT_X, fn), (EVT_Y, fn, [args])]`` or a mapping."""


def normalize_handlers(handlers: HandlerSpec | object | None) -> HandlerMap:
    """``[(EVT_X, fn), (EVT_Y, fn, [extra args]), ...]`` or ``{EVT_X: fn}`` (a
    :data:`HandlerSpec`, checked item by item) -> ``{EVT_X: [(fn, extra_args), ...]}``. The
    handler is called as ``fn(event, *extra_args)``.

    Raises ValueError for a malformed binding or a second handler of an intervention event.
    """
    result: HandlerMap = {}
    if handlers is None:
        return result
    if isinstance(handlers, Mapping):
        items: Iterable[object] = handlers.items()
    elif isinstance(handlers, Iterable) and not isinstance(handlers, str | bytes):
        items = handlers
    else:
        raise ValueError(f"handlers are a list of (event, handler) bindings, not {handlers!r}")
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


class Handlers:
    """The handler bindings of a server or an association.

    Binding a second handler to an intervention event replaces the first; a notification
    event keeps every handler once. Reads take a snapshot, so handlers may be rebound while
    events are being dispatched on other threads.
    """

    __slots__ = ("_bound",)

    def __init__(self, spec: HandlerSpec | None = None) -> None:
        self._bound: HandlerMap = normalize_handlers(spec)

    def bind(self, event: EventType, handler: Handler, args: Iterable[object] = ()) -> None:
        bound = list(self._bound.get(event, ()))
        if event.intervention:
            bound.clear()
        bound = [b for b in bound if b[0] != handler]
        bound.append((handler, tuple(args)))
        self._bound[event] = bound

    def unbind(self, event: EventType, handler: Handler) -> None:
        self._bound[event] = [b for b in self._bound.get(event, ()) if b[0] != handler]

    def get(self, event: EventType) -> list[Binding]:
        """The ``(handler, extra args)`` bindings of ``event`` (a copy)."""
        return list(self._bound.get(event, ()))

    def first(self, event: EventType) -> Binding | None:
        """The handler of an intervention event, or None."""
        bound = self._bound.get(event)
        return bound[0] if bound else None

    def merged(self, other: Handlers) -> Handlers:
        """These bindings and ``other``'s (``other`` wins an intervention event)."""
        combined = Handlers()
        for source in (self, other):
            for event, bound in source._bound.items():
                for fn, args in bound:
                    combined.bind(event, fn, args)
        return combined

    def __bool__(self) -> bool:
        return any(self._bound.values())


PublicBinding = tuple[Handler, list[object] | None]
HandlerInfo = list[PublicBinding] | PublicBinding | tuple[None, None]


def handler_info(handlers: Handlers, event: EventType) -> HandlerInfo:
    """What ``get_handlers(event)`` returns: for a notification event the list of
    ``(handler, args or None)``; for an intervention event its one ``(handler, args or None)``,
    or ``(None, None)`` when none is bound."""
    bound = [(fn, list(args) or None) for fn, args in handlers.get(event)]
    if not event.intervention:
        return bound
    return bound[-1] if bound else (None, None)


def bound_events(handlers: Handlers) -> list[EventType]:
    """The events with a handler bound, by name (``get_events()``)."""
    return sorted((e for e in ALL_EVENTS if handlers.get(e)), key=lambda e: e.name)


class EventAssociation(Protocol):
    """What an :class:`Event` reads of its association (for ``file_meta``)."""

    @property
    def ae(self) -> Settings: ...

    @property
    def calling_ae_title(self) -> str: ...

    @property
    def requestor(self) -> ServiceUser: ...

    @property
    def acceptor(self) -> ServiceUser: ...


if TYPE_CHECKING:
    # PEP 696: a bare ``Event`` means ``Event[EventAssociation]``. Python 3.11's TypeVar has
    # no ``default``, so the checker gets typing_extensions' and the runtime a plain one.
    from typing_extensions import TypeVar as DefaultTypeVar

    A = DefaultTypeVar("A", bound="EventAssociation | None", default="EventAssociation")
else:
    A = TypeVar("A")


class NoDataSetError(AttributeError, ValueError):
    """An event's data set was asked for, and its request cannot carry one. An AttributeError
    as in pynetdicom (``hasattr(event, "dataset")`` is False), and a ValueError as before."""


class Event(Generic[A]):
    """What a handler receives. Cheap to build: nothing is decoded until asked for.

    Besides the request (``request``, ``context``), some events carry their own details:
    ``address`` (EVT_CONN_OPEN/CLOSE: the peer's (host, port)), ``rejection`` (EVT_REJECTED:
    the A-ASSOCIATE-RJ), ``association_request`` (EVT_REQUESTED: the A-ASSOCIATE-RQ),
    ``user_id_type``/``primary_field``/``secondary_field``/``positive_response_requested``
    (EVT_USER_ID, PS3.7 D.3.3.7) and ``app_info`` (EVT_SOP_EXTENDED: {SOP class UID: the
    requestor's service-class application information}, PS3.7 D.3.3.5).

    ``Event(assoc, event, {"request": ..., "context": ...})``, pynetdicom's form (programs use
    it to test their handlers), sets the attributes named in the dict; ``_is_cancelled`` is
    pynetdicom's cancel check (called with the request's Message ID).

    The data set properties (``dataset``, ``identifier``, ``action_information``...) raise
    :class:`NoDataSetError` -- an ``AttributeError``, as in pynetdicom -- for a request that
    cannot carry one, and give an empty ``Dataset`` for one that could but did not (an
    N-ACTION without Action Information, PS3.7 10.1.4.1.4).
    """

    __slots__ = (
        "__dict__",  # attributes of an application's own events (trigger); made on first use
        "__weakref__",
        "_cancel_check",
        "_dataset",
        "_details",
        "_file_meta",
        "_path",
        "address",
        "app_info",
        "assoc",
        "association_request",
        "context",
        "event",
        "positive_response_requested",
        "primary_field",
        "rejection",
        "request",
        "secondary_field",
        "timestamp",
        "user_id_type",
    )

    def __init__(
        self,
        assoc: A,
        event: EventType,
        attrs: Mapping[str, object] | None = None,
        *,
        context: PresentationContext | None = None,
        request: DIMSEPrimitive | None = None,
        cancel_check: Callable[[], bool] | None = None,
        address: tuple[str, int] | None = None,
        rejection: AAssociateRJ | None = None,
        association_request: AAssociateRQ | None = None,
        user_id_type: int | None = None,
        primary_field: bytes | None = None,
        secondary_field: bytes | None = None,
        positive_response_requested: bool = False,
        app_info: dict[str, bytes] | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        self.assoc = assoc
        self.event = event
        self.context = context
        if request is not None:
            request.expose_uids()  # as pynetdicom's handlers see pydicom UIDs
        self.request = request
        self.timestamp = _now()
        self._cancel_check = cancel_check
        self._dataset: Dataset | None = None
        self._file_meta: FileMetaDataset | None = None
        self.address = address
        self.rejection = rejection
        self.association_request = association_request
        self.user_id_type = user_id_type
        self.primary_field = primary_field
        self.secondary_field = secondary_field
        self.positive_response_requested = positive_response_requested
        self.app_info = app_info
        self._path: Path | None = None
        self._details: Mapping[str, object] = _NO_DETAILS if details is None else details
        if attrs:
            self._set_attrs(attrs)

    def _set_attrs(self, attrs: Mapping[str, object]) -> None:
        """pynetdicom's ``attrs``: slots set, protocol details (``message``, ``pdu``...) kept,
        any other name (an application's own event, :func:`trigger`) set as an attribute."""
        details = dict(self._details)
        for name, value in attrs.items():
            if name == "_is_cancelled" and callable(value):
                self._cancel_check = _cancel_check_of(value, self._message_id)
            elif name in _SETTABLE:
                if name == "request" and isinstance(value, DIMSEPrimitive):
                    value.expose_uids()
                object.__setattr__(self, name, value)
            else:
                details[name] = value
                if not hasattr(type(self), name) and not name.startswith("_"):
                    self.__dict__[name] = value
        self._details = details

    def _message_id(self) -> int | None:
        value = self._parameter("MessageID")
        return value if isinstance(value, int) else None

    # --- details of the protocol notification events (None for other events) ------------
    @property
    def message(self) -> object:
        """EVT_DIMSE_RECV/SENT: the DIMSE message (:class:`~dicomnet.dimse.messages.DIMSEMessage`)."""
        return self._details.get("message")

    @property
    def pdu(self) -> object:
        """EVT_PDU_RECV/SENT: the PDU record (:mod:`dicomnet.ul.pdu`)."""
        return self._details.get("pdu")

    @property
    def data(self) -> bytes | None:
        """EVT_DATA_RECV/SENT: the bytes received or sent."""
        value = self._details.get("data")
        return value if isinstance(value, bytes) else None

    @property
    def primitive(self) -> object:
        """EVT_ACSE_RECV/SENT: the association control PDU (A-ASSOCIATE, A-RELEASE, A-ABORT)."""
        return self._details.get("primitive")

    @property
    def invoked(self) -> int | None:
        """EVT_ASYNC_OPS: the requestor's Maximum Number Operations Invoked (PS3.7 D.3.3.3)."""
        value = self._details.get("invoked")
        return value if isinstance(value, int) else None

    @property
    def performed(self) -> int | None:
        """EVT_ASYNC_OPS: the requestor's Maximum Number Operations Performed."""
        value = self._details.get("performed")
        return value if isinstance(value, int) else None

    @property
    def items(self) -> dict[str, object]:
        """EVT_SOP_COMMON: {SOP class UID: the requestor's 57H item} (PS3.7 D.3.3.6)."""
        value = self._details.get("items")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def current_state(self) -> str | None:
        """EVT_FSM_TRANSITION: the state before the transition (e.g. ``"Sta6"``)."""
        return _text(self._details.get("current_state"))

    @property
    def fsm_event(self) -> str | None:
        """EVT_FSM_TRANSITION: the state machine event (e.g. ``"Evt10"``)."""
        return _text(self._details.get("fsm_event"))

    @property
    def action(self) -> str | None:
        """EVT_FSM_TRANSITION: the action taken (e.g. ``"DT-2"``)."""
        return _text(self._details.get("action"))

    @property
    def next_state(self) -> str | None:
        """EVT_FSM_TRANSITION: the state after the transition."""
        return _text(self._details.get("next_state"))

    def __repr__(self) -> str:
        return f"<Event {self.event.name} message_id={self.message_id}>"

    # --- request parameters -------------------------------------------------------------
    @property
    def message_id(self) -> int | None:
        return None if self.request is None else self.request.MessageID

    @property
    def is_cancelled(self) -> bool:
        """True once a C-CANCEL-RQ for this request's Message ID was received (PS3.7 9.3.2.3)."""
        return self._cancel_check is not None and self._cancel_check()

    @property
    def data_source(self) -> DataSource | None:
        """The raw received data set (a :class:`~dicomnet.datasource.DataSource`) or None."""
        payload = self._payload()
        return payload if isinstance(payload, DataSource) else None

    def _payload(self) -> Any:
        """The request's data set payload; a BytesIO (a request built by hand, as pynetdicom's
        handler tests build them) as a DataSource over its bytes."""
        payload = None if self.request is None else self.request.payload
        if isinstance(payload, BytesIO):
            return DataSource(data=payload.getvalue())
        return payload

    @property
    def dataset(self) -> Dataset:
        """The request's data set, decoded on first access with the context's transfer syntax.

        For C-FIND/C-GET/C-MOVE this is the Identifier, for N-SET the Modification List, for
        N-ACTION the Action Information, and so on. An empty Dataset when the request could
        carry one but did not; :class:`NoDataSetError` (an AttributeError and a ValueError)
        when it cannot (a C-ECHO, no request).
        """
        if self._dataset is None:
            request = self.request
            source = self._payload()
            if source is None:
                if request is None or not request.DATASET_FIELDS:
                    raise NoDataSetError(f"the {self.event.name} event has no data set")
                # lazy: pydicom only for handlers that read data sets
                from pydicom.dataset import Dataset

                self._dataset = Dataset()
                return self._dataset
            ts = accepted_syntax_of(self.context)
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

    def _parameter(self, keyword: str) -> object:
        request = self.request
        return (
            None if request is None or keyword not in request.FIELDS else getattr(request, keyword)
        )

    @property
    def action_type(self) -> int | None:
        value = self._parameter("ActionTypeID")
        return value if isinstance(value, int) else None

    @property
    def event_type(self) -> int | None:
        value = self._parameter("EventTypeID")
        return value if isinstance(value, int) else None

    @property
    def move_destination(self) -> str | None:
        value = self._parameter("MoveDestination")
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return value.strip() if isinstance(value, str) else None

    @property
    def attribute_identifiers(self) -> list[int]:
        """N-GET: the requested attributes' tags (Attribute Identifier List; empty: all)."""
        value = self._parameter("AttributeIdentifierList")
        if value is None:
            return []
        # lazy: pydicom only for the N-GET handlers that read this
        from pydicom.tag import BaseTag

        items = value if isinstance(value, list | tuple) else [value]
        return [BaseTag(tag) for tag in items if isinstance(tag, int)]  # as pynetdicom's

    def encoded_dataset(self, include_meta: bool = True) -> bytes:
        """The received data set as it came, encoded in the context's transfer syntax; with
        ``include_meta`` as a whole Part 10 file (128-byte preamble, ``DICM``, File Meta
        Information, PS3.10 section 7.1), ready to write to disk."""
        source = self.data_source
        if source is None:
            raise ValueError(f"the {self.event.name} request has no received data set")
        body = source.read()
        return self._part10_header() + body if include_meta else body

    def _part10_header(self) -> bytes:
        # lazy: pydicom (see file_meta)
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_file_meta_info

        out = DicomBytesIO()
        out.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(out, self.file_meta, enforce_standard=True)
        return out.getvalue()

    @property
    def dataset_path(self) -> Path | None:
        """With ``dicomnet._config.STORE_RECV_CHUNKED_DATASET`` set: the path of a Part 10
        file holding the received C-STORE data set (deleted when the event is), else None."""
        # lazy: the switch and the file system are only needed by handlers that ask
        from dicomnet import _config

        if not _config.STORE_RECV_CHUNKED_DATASET or self.request is None:
            return None
        if self._path is None:
            self._path = _write_temporary(self, self.encoded_dataset(include_meta=True))
        return self._path

    @property
    def file_meta(self) -> FileMetaDataset:
        """File Meta Information (PS3.10 section 7.1) for a received C-STORE data set."""
        if self._file_meta is None:
            # lazy: pydicom costs ~150 ms of start-up that clients never need
            from pydicom.dataset import FileMetaDataset
            from pydicom.uid import UID

            meta = FileMetaDataset()
            request, assoc = self.request, self.assoc
            sop_class = None if request is None else request.AffectedSOPClassUID
            sop_instance = self._parameter("AffectedSOPInstanceUID")
            syntax = accepted_syntax_of(self.context)
            if sop_class is not None:
                meta.MediaStorageSOPClassUID = UID(sop_class)
            if isinstance(sop_instance, str):
                meta.MediaStorageSOPInstanceUID = UID(sop_instance)
            if syntax is not None:
                meta.TransferSyntaxUID = UID(syntax)
            settings = None if assoc is None else assoc.ae
            meta.ImplementationClassUID = UID(
                (None if settings is None else settings.implementation_class_uid)
                or IMPLEMENTATION_CLASS_UID
            )
            version = None if settings is None else settings.implementation_version_name
            if version:
                meta.ImplementationVersionName = version
            calling = None if assoc is None else assoc.calling_ae_title
            if calling:
                meta.SourceApplicationEntityTitle = calling
            self._file_meta = meta
        return self._file_meta


class TriggerAssociation(EventAssociation, Protocol):
    """What :func:`trigger` needs of an association: its handlers, besides what an Event
    reads."""

    def get_handlers(self, event: EventType) -> HandlerInfo: ...


def trigger(
    assoc: TriggerAssociation, event: EventType, attrs: Mapping[str, object] | None = None
) -> object:
    """Fire ``event`` on ``assoc`` as the library fires its own: one :class:`Event` built from
    ``attrs`` (pynetdicom's ``{attribute: value}`` form) goes to the handlers bound to it on
    the association (and, for an accepted one, its server). An application fires events of
    its own types this way (``InterventionEvent("EVT_MINE", ...)`` bound like any other).

    An intervention event's one handler is called and its result returned; its exception
    propagates (the caller decides what it means). A notification event's handlers are all
    called, each one's exception logged and swallowed (pynetdicom stops at the first that
    raises), and None returned. Without a handler
    nothing is built and None is returned.
    """
    bound = assoc.get_handlers(event)
    if event.intervention:
        assert isinstance(bound, tuple)
        fn, args = bound
        if fn is None:
            return None
        return fn(Event(assoc, event, attrs or {}), *(args or ()))
    if not bound:
        return None
    assert isinstance(bound, list)
    fired = Event(assoc, event, attrs or {})
    for fn, args in bound:
        try:
            fn(fired, *(args or ()))
        except Exception:
            LOGGER.exception("%s handler %r failed", event.name, fn)
    return None


def _cancel_check_of(check: Callable[..., object],
                     message_id: Callable[[], int | None]) -> Callable[[], bool]:  # fmt: skip
    """pynetdicom's ``_is_cancelled(message_id)`` as the Event's no-argument check."""
    return lambda: bool(check(message_id()))


#: the attributes pynetdicom's ``Event(assoc, event, attrs)`` form may set directly
_SETTABLE = frozenset({"request", "context", "address", "rejection", "association_request",
                       "user_id_type", "primary_field", "secondary_field",
                       "positive_response_requested", "app_info", "timestamp"})  # fmt: skip

_NO_DETAILS: Mapping[str, object] = {}


def _write_temporary(owner: object, data: bytes) -> Path:
    """``data`` in a new temporary ``.dcm`` file, deleted when ``owner`` is collected."""
    # lazy: file handling only for handlers that ask for a path
    import os
    import tempfile
    import weakref
    from pathlib import Path

    fd, name = tempfile.mkstemp(suffix=".dcm", prefix="dicomnet-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    weakref.finalize(owner, _remove, name)
    return Path(name)


def _remove(name: str) -> None:
    import contextlib  # lazy: as _write_temporary
    import os  # lazy: as _write_temporary

    with contextlib.suppress(OSError):
        os.unlink(name)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


_datetime_now: Callable[[], datetime] | None = None


def _now() -> datetime:
    """The current local time. :mod:`datetime` is imported on first use, not with this module:
    clients (``dicomnet echoscu``) import this module but never build an Event."""
    global _datetime_now
    if _datetime_now is None:
        # lazy: datetime is on no client's start-up path (tests/test_startup.py)
        from datetime import datetime

        _datetime_now = datetime.now
    return _datetime_now()
