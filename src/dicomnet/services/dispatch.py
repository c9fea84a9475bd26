"""SCP-side dispatch: from a received DIMSE request to a handler and back to a response.

Theory of operation
-------------------
The server hands every complete request to :func:`service_for` which names the service module
that answers it; the module gets a :class:`ServiceCall`: the association, the accepted
presentation context, the request primitive, the handler's :class:`~dicomnet.events.Event`
(built on first use: a request answered without a handler never builds one), the bound handler
(or None) and ``send``, which puts a response primitive on the wire on the request's
presentation context (PS3.7 section 9.3: a response travels on the context of its request).

Every service has a synchronous entry point (``run(call)``, called in a worker thread of the
server's handler pool, where it may block on sends and on sub-operations) and the simple ones
(C-ECHO, C-STORE, N-*) also an ``arun(call)`` coroutine used when the handler is a coroutine
function, so the whole exchange stays on the event loop.

Handler return values follow one convention (:func:`status_parts`): a status is an ``int`` or
a pydicom ``Dataset`` with ``Status`` and optionally the other status elements of PS3.7 Annex C
(ErrorComment, OffendingElement, ErrorID, ...), which are copied into the response. A handler
that raises gets its request answered with a failure status of the service's "unable to
process" range (C-STORE C211, C-FIND C311, C-GET C411, C-MOVE C511 — PS3.4 Annex B.2.3, C.4;
0110 "processing failure" for C-ECHO and the DIMSE-N services, PS3.7 Annex C.4.4), the error is
logged, and the association carries on.

Defaults when no handler is bound: C-ECHO answers 0000 (Success, PS3.4 Annex A); every other
service answers 0122 "Refused: SOP Class not supported" (PS3.7 Annex C.5.5): the context was
accepted by configuration but nobody implements the operation, which is exactly what that code
means to the peer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Container, Iterator
from typing import Any

from dicomnet.dimse import primitives as P
from dicomnet.errors import DimseError
from dicomnet.events import Event, EventType

__all__ = [
    "NO_HANDLER_STATUS",
    "PROCESSING_FAILURE",
    "ServiceCall",
    "apply_status",
    "call_handler",
    "error_comment",
    "status_parts",
]

LOGGER = logging.getLogger("dicomnet.services")

PROCESSING_FAILURE = 0x0110  # PS3.7 Annex C.4.4
NO_HANDLER_STATUS = 0x0122  # PS3.7 Annex C.5.5, Refused: SOP Class not supported

# Status elements a handler may return in a status Dataset (PS3.7 Annex C, Table C-1).
_STATUS_EXTRAS = ("ErrorComment", "OffendingElement", "ErrorID")


class ServiceCall:
    """One received request on its way through a service.

    ``event`` (the handler's :class:`~dicomnet.events.Event`) may be given, or is built on
    first use from ``event_type`` (a request answered without a handler never builds one).
    ``send(rsp)`` puts a response on the request's context: through the ``send`` callable when
    one was given, else through ``send_msg(rsp, context_id)`` (the DIMSE provider's method, so
    the server needs no closure per request). ``cancelled`` is the server's set of cancelled
    Message IDs, read by :attr:`is_cancelled`.
    """

    __slots__ = (
        "_cancelled",
        "_event",
        "_event_type",
        "_send",
        "_send_msg",
        "assoc",
        "context",
        "context_id",
        "handler",
        "handler_args",
        "loop",
        "request",
    )

    def __init__(
        self,
        assoc: Any,
        context_id: int,
        context: Any,  # the accepted PresentationContext (has .transfer_syntax)
        request: P.DIMSEPrimitive,
        event: Event | None = None,
        handler: Callable[..., Any] | None = None,
        handler_args: tuple[Any, ...] = (),
        send: Callable[[P.DIMSEPrimitive], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        event_type: EventType | None = None,
        send_msg: Callable[[P.DIMSEPrimitive, int], None] | None = None,
        cancelled: Container[int] | None = None,
    ) -> None:
        if event is None and event_type is None:
            raise TypeError("ServiceCall needs an event or an event_type")
        if send is None and send_msg is None:
            raise TypeError("ServiceCall needs send or send_msg")
        self.assoc = assoc
        self.context_id = context_id
        self.context = context
        self.request = request
        self._event = event
        self._event_type = event_type
        self.handler = handler
        self.handler_args = handler_args
        self._send = send
        self._send_msg = send_msg
        self.loop = loop
        self._cancelled = cancelled

    @property
    def event(self) -> Event:
        """The handler's event (built on first use)."""
        event = self._event
        if event is None:
            assert self._event_type is not None
            cancelled = self._cancelled
            check: Callable[[], bool] | None = None
            if cancelled is not None:
                mid = getattr(self.request, "MessageID", None)

                def check() -> bool:
                    return mid in cancelled

            event = self._event = Event(
                self.assoc,
                self._event_type,
                context=self.context,
                request=self.request,
                cancel_check=check,
            )
        return event

    def send(self, rsp: P.DIMSEPrimitive) -> None:
        """Send a response primitive on the request's presentation context (PS3.7 9.3)."""
        send = self._send
        if send is not None:
            send(rsp)
            return
        assert self._send_msg is not None
        self._send_msg(rsp, self.context_id)

    @property
    def transfer_syntax(self) -> str:
        return str(self.context.transfer_syntax)

    @property
    def is_cancelled(self) -> bool:
        if self._event is None and self._cancelled is not None:
            return getattr(self.request, "MessageID", None) in self._cancelled
        return self.event.is_cancelled

    def invoke(self) -> Any:
        """Call the handler (never None here) with the event and any bound extra arguments."""
        assert self.handler is not None
        return self.handler(self.event, *self.handler_args)


def call_handler(call: ServiceCall) -> Any:
    """Invoke the handler from a worker thread; a coroutine handler is run on the loop."""
    result = call.invoke()
    if inspect.isawaitable(result):
        if call.loop is None:  # pragma: no cover - the server always sets the loop
            raise RuntimeError("coroutine handler without an event loop")
        result = asyncio.run_coroutine_threadsafe(_await(result), call.loop).result()
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def status_parts(result: Any) -> tuple[int, dict[str, Any]]:
    """``int`` or status ``Dataset`` -> (status code, extra status elements).

    Raises TypeError/ValueError for anything else (the caller turns that into a failure).
    """
    if isinstance(result, bool):
        raise TypeError("a status must be an int or a Dataset, not bool")
    if isinstance(result, int):
        code = int(result)
        extras: dict[str, Any] = {}
    else:
        status = getattr(result, "Status", None)
        if status is None:
            raise TypeError(f"a status must be an int or a Dataset with Status, not {result!r}")
        code = int(status)
        extras = {}
        for keyword in _STATUS_EXTRAS:
            value = result.get(keyword) if hasattr(result, "get") else None
            if value is not None and value != "":
                extras[keyword] = value
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"status 0x{code:X} is not a 16-bit value")
    return code, extras


def error_comment(text: str) -> str:
    """An Error Comment (0000,0902) from any text: LO, at most 64 characters, no backslash."""
    return text.replace("\\", "/").replace("\r", " ").replace("\n", " ")[:64]


def apply_status(rsp: P.DIMSEPrimitive, code: int, extras: dict[str, Any] | None = None) -> None:
    """Set Status and the extra status elements the response primitive has a slot for."""
    rsp.Status = code
    for keyword, value in (extras or {}).items():
        if keyword not in rsp.FIELDS:
            continue
        if keyword == "ErrorComment":
            value = error_comment(str(value))
        elif keyword == "OffendingElement":
            value = [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)]
        try:
            setattr(rsp, keyword, value)
        except (DimseError, TypeError, ValueError):
            LOGGER.debug("dropping invalid %s=%r from a handler's status", keyword, value)


def failure_from_exception(
    rsp: P.DIMSEPrimitive, code: int, exc: BaseException, what: str
) -> None:
    """Log a handler exception and turn it into ``code`` with an Error Comment."""
    LOGGER.error("%s handler failed: %s", what, exc, exc_info=exc)
    apply_status(rsp, code, {"ErrorComment": f"{type(exc).__name__}: {exc}"})


def iter_results(call: ServiceCall) -> Iterator[Any]:
    """The items of a generator handler, whether it is sync or an async generator.

    An async generator is driven on the event loop, one ``__anext__`` at a time, from the
    calling worker thread.
    """
    produced = call.invoke()
    if inspect.isasyncgen(produced):
        loop = call.loop
        assert loop is not None
        agen = produced
        try:
            while True:
                try:
                    item = asyncio.run_coroutine_threadsafe(_anext(agen), loop).result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            try:
                asyncio.run_coroutine_threadsafe(agen.aclose(), loop).result()
            except Exception:  # pragma: no cover - best effort clean-up
                pass
    elif inspect.isawaitable(produced):
        assert call.loop is not None
        produced = asyncio.run_coroutine_threadsafe(_await(produced), call.loop).result()
        yield from _as_iterator(produced)
    else:
        yield from _as_iterator(produced)


def _as_iterator(produced: Any) -> Iterator[Any]:
    if produced is None:
        return iter(())
    return iter(produced)


async def _anext(agen: Any) -> Any:
    return await agen.__anext__()
