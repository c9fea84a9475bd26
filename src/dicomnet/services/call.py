"""One received request on its way through a service: :class:`ServiceCall`, and the status
vocabulary every service answers with.

Theory of operation
-------------------
A :class:`ServiceCall` carries what a service needs to answer one request: the association
(:class:`~dicomnet.services.contract.ServiceAssociation`), the accepted presentation context
the request came on (PS3.7 section 9.3: a response travels on the context of its request),
the request primitive, the bound handler (or None) and, for the handler, the
:class:`~dicomnet.events.Event` -- built on first use, so a request answered without a handler
never builds one. ``is_cancelled`` reads whether a C-CANCEL-RQ named the request (PS3.7
9.3.2.3); ``run_coroutine`` is how a coroutine handler called from a worker thread is run on
its event loop (None where there is no loop: the handler's awaitable then fails the request).

Handler return values follow one convention (:func:`status_parts`): a status is an ``int`` or
a pydicom ``Dataset`` with ``Status`` and optionally the other status elements of PS3.7 Annex
C (ErrorComment, OffendingElement, ErrorID), which are copied into the response
(:func:`apply_status`). :class:`OneShotService` is the shape of a service answered with one
response (C-ECHO, C-STORE, the DIMSE-N services): how its response is built from a request,
what it answers without a handler, and what a handler's result or failure becomes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from dicomnet.dimse.primitives import DIMSEPrimitive
from dicomnet.dimse.status import Status
from dicomnet.errors import DimseError
from dicomnet.events import Event, EventType, Handler
from dicomnet.presentation import PresentationContext, accepted_syntax_of

if TYPE_CHECKING:
    from dicomnet.services.contract import ServiceAssociation

__all__ = [
    "INVALID_STATUS",
    "NO_STATUS_ELEMENT",
    "HandlerMistake",
    "NotAStatus",
    "OneShotService",
    "ServiceCall",
    "apply_status",
    "error_comment",
    "failure_from_exception",
    "response_to",
    "status_parts",
]

LOGGER = logging.getLogger("dicomnet.services")

# PS3.7 Annex C: the optional status fields a handler's status Dataset may carry; Attribute
# Identifier List is one of N-GET/N-SET/N-CREATE responses (C.4.2, C.5.8: no such/invalid
# attribute), dropped where the response has no slot for it
_STATUS_EXTRAS = ("ErrorComment", "OffendingElement", "ErrorID", "AttributeIdentifierList")
_TAG_LISTS = frozenset(("OffendingElement", "AttributeIdentifierList"))
# The response parameters that echo the request's (PS3.7 Tables 9.3-x, 10.3-x).
_ECHOED_UIDS = ("AffectedSOPClassUID", "AffectedSOPInstanceUID")

RunCoroutine = Callable[[Awaitable[object]], object]


class ServiceCall:
    """One received request on its way through a service (see the module docstring)."""

    __slots__ = (
        "_cancel_check",
        "_event",
        "assoc",
        "context",
        "context_id",
        "event_type",
        "handler",
        "handler_args",
        "request",
        "run_coroutine",
    )

    def __init__(
        self,
        assoc: ServiceAssociation,
        context_id: int,
        context: PresentationContext | None,
        request: DIMSEPrimitive,
        event_type: EventType,
        handler: Handler | None = None,
        handler_args: tuple[object, ...] = (),
        *,
        cancel_check: Callable[[], bool] | None = None,
        run_coroutine: RunCoroutine | None = None,
        event: Event[ServiceAssociation] | None = None,
    ) -> None:
        self.assoc = assoc
        self.context_id = context_id
        self.context = context
        self.request = request
        self.event_type = event_type
        self.handler = handler
        self.handler_args = handler_args
        self._cancel_check = cancel_check
        self.run_coroutine = run_coroutine
        self._event = event

    @property
    def event(self) -> Event[ServiceAssociation]:
        """The handler's event (built on first use)."""
        event = self._event
        if event is None:
            event = self._event = Event(
                self.assoc,
                self.event_type,
                context=self.context,
                request=self.request,
                cancel_check=self._cancel_check,
            )
        return event

    @property
    def event_built(self) -> bool:
        """True once :attr:`event` was asked for (a request answered without a handler never
        builds one)."""
        return self._event is not None

    @property
    def transfer_syntax(self) -> str:
        """The accepted transfer syntax of the request's context (data sets are encoded in it,
        PS3.7 section 6.3.1)."""
        ts = accepted_syntax_of(self.context)
        if ts is None:  # pragma: no cover - requests only arrive on accepted contexts
            raise DimseError(f"no transfer syntax accepted for context {self.context_id}")
        return ts

    @property
    def is_cancelled(self) -> bool:
        check = self._cancel_check
        return check is not None and check()

    def invoke(self) -> object:
        """Call the handler (never None here) with the event and any bound extra arguments."""
        assert self.handler is not None
        return self.handler(self.event, *self.handler_args)


class HandlerMistake(TypeError):
    """A handler gave something the protocol cannot use where it needs one kind of thing (a
    status, a count, a destination, a match), with the failure status that answers it."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


class NotAStatus(HandlerMistake):
    """Where a status belongs, a handler gave neither an ``int`` nor a ``Dataset`` with an
    integer Status. Answered ``code``: C001 for a Dataset (or mapping) without Status, C002
    for anything else -- pynetdicom's codes in the "Failure: cannot understand" range (PS3.4
    B.2.3, C.4.1.1.4 give Cxxx that meaning), so that its programs see what they test for.
    (C-ECHO answers Success instead, as pynetdicom's does: PS3.7 Table 9.3-13.)"""


#: the status a handler's non-status is answered with (:class:`NotAStatus`)
NO_STATUS_ELEMENT, INVALID_STATUS = 0xC001, 0xC002


def status_parts(result: object) -> tuple[int, dict[str, object]]:
    """``int`` or status ``Dataset`` -> (status code, extra status elements).

    Raises :class:`NotAStatus` for anything else and ValueError for a code outside 16 bits
    (the caller turns either into a failure response).
    """
    extras: dict[str, object] = {}
    if isinstance(result, int) and not isinstance(result, bool):
        code = int(result)
    else:
        status = getattr(result, "Status", None)  # a pydicom Dataset, duck-typed: not imported
        if not isinstance(status, int) or isinstance(status, bool):
            if status is None and callable(getattr(result, "get", None)):
                raise NotAStatus(NO_STATUS_ELEMENT, f"a status Dataset without Status: {result!r}")
            raise NotAStatus(INVALID_STATUS,
                             f"a status must be an int or a Dataset with Status, not {result!r}")  # fmt: skip
        code = int(status)
        get = getattr(result, "get", None)
        for keyword in _STATUS_EXTRAS:
            value = get(keyword) if get is not None else None
            if value is not None and value != "":
                extras[keyword] = value
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"status 0x{code:X} is not a 16-bit value")
    return code, extras


def error_comment(text: str) -> str:
    """An Error Comment (0000,0902) from any text: LO, at most 64 characters, no backslash."""
    return text.replace("\\", "/").replace("\r", " ").replace("\n", " ")[:64]


def apply_status(rsp: DIMSEPrimitive, code: int, extras: dict[str, object] | None = None) -> None:
    """Set Status and the extra status elements the response primitive has a slot for."""
    rsp.Status = code
    for keyword, value in (extras or {}).items():
        if keyword not in rsp.FIELDS:
            continue
        if code == 0 and keyword == "OffendingElement":
            continue  # PS3.7 C.1.1: a Success names no offending element (pynetdicom agrees)
        if keyword == "ErrorComment":
            value = error_comment(str(value))
        elif keyword in _TAG_LISTS:
            # several tags: a list, a tuple or pydicom's MultiValue (any non-text sequence)
            items = (list(value) if isinstance(value, Sequence) and not isinstance(value, str | bytes)
                     else [value])  # fmt: skip
            tags = [int(v) for v in items if isinstance(v, int)]
            if len(tags) != len(items):
                LOGGER.debug("dropping invalid %s=%r from a handler's status", keyword, value)
                continue
            value = tags
        try:
            setattr(rsp, keyword, value)
        except (DimseError, TypeError, ValueError):
            LOGGER.debug("dropping invalid %s=%r from a handler's status", keyword, value)


def failure_from_exception(rsp: DIMSEPrimitive, code: int, exc: BaseException, what: str) -> None:
    """Log a handler exception and turn it into ``code`` with an Error Comment."""
    LOGGER.error("%s handler failed: %s", what, exc, exc_info=exc)
    apply_status(rsp, code, {"ErrorComment": f"{type(exc).__name__}: {exc}"})


def response_to(request: DIMSEPrimitive) -> DIMSEPrimitive:
    """A response skeleton for ``request``: same service, Message ID Being Responded To and
    the Affected SOP Class/Instance UIDs copied (PS3.7 section 9.3, 10.3); no status yet."""
    rsp = type(request)()
    rsp.MessageIDBeingRespondedTo = request.MessageID
    fields = request.FIELDS
    for name in _ECHOED_UIDS:
        if name in fields:
            setattr(rsp, name, getattr(request, name))
    return rsp


class OneShotService:
    """A service answered with one response; subclasses say how (see the module docstring).

    ``failure`` is the status of a handler that raises or returns something unusable: the
    service's "unable to process" code (PS3.4 B.2.3 C211 for C-STORE; PS3.7 C.4.4 0110
    processing failure for the DIMSE-N services; C-ECHO answers Success whatever happens,
    :mod:`dicomnet.services.verification`).
    """

    event_type: EventType
    failure: int = Status.PROCESSING_FAILURE
    unhandled_status: int | None = None
    """Answered when no handler is bound; None: ``failure``, the status of a handler that
    cannot process the request -- what pynetdicom answers (its default handler raises), and
    what its documentation teaches users to expect (C211H for a C-STORE)."""

    def __init__(self, event_type: EventType) -> None:
        self.event_type = event_type

    def response(self, call: ServiceCall) -> DIMSEPrimitive:
        """The response skeleton (no status)."""
        return response_to(call.request)

    def refusal(self, call: ServiceCall) -> DIMSEPrimitive | None:
        """A response given before (instead of) the handler, or None."""
        return None

    def unhandled(self, call: ServiceCall) -> DIMSEPrimitive:
        """The answer when no handler is bound."""
        rsp = self.response(call)
        status = self.unhandled_status
        apply_status(rsp, self.failure if status is None else status)
        return rsp

    def complete(self, call: ServiceCall, result: object) -> DIMSEPrimitive:
        """The answer for what the handler returned (a status; anything else is answered as
        :meth:`failed` answers an exception)."""
        try:
            code, extras = status_parts(result)
        except NotAStatus as exc:
            return self.not_a_status(call, exc)
        except (TypeError, ValueError) as exc:
            return self.failed(call, exc)
        rsp = self.response(call)
        apply_status(rsp, code, extras)
        return rsp

    def not_a_status(self, call: ServiceCall, exc: NotAStatus) -> DIMSEPrimitive:
        """The answer when the handler returned something that is no status (C001/C002)."""
        LOGGER.error("%s handler returned no status: %s (answered 0x%04X)",
                     self.event_type.name, exc, exc.code)  # fmt: skip
        rsp = self.response(call)
        apply_status(rsp, exc.code, {"ErrorComment": str(exc)})
        return rsp

    def failed(self, call: ServiceCall, exc: BaseException) -> DIMSEPrimitive:
        """The answer when the handler raised, or returned something that is no status."""
        rsp = self.response(call)
        failure_from_exception(rsp, self.failure, exc, self.event_type.name)
        return rsp
