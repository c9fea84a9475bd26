"""The one dispatcher: from a received DIMSE request to its handler and back to a response.

Theory of operation
-------------------
Requests reach us on two paths, and both end here:

* on a server, every request of an accepted association (:mod:`dicomnet.acceptor`);
* on an association *we* requested, the requests the peer makes of us: the C-STORE
  sub-operations of a C-GET (PS3.4 C.4.3.3), N-EVENT-REPORTs (e.g. storage commitment results,
  PS3.4 J.3.3), C-ECHO (:func:`answer_request`).

A request answered with one response (C-ECHO, C-STORE, the DIMSE-N services) has a
:class:`~dicomnet.services.call.OneShotService` in :data:`ONE_SHOT`; C-FIND, C-GET and C-MOVE
are answered by the coroutines of :mod:`dicomnet.services.qr` on a server (the acceptor runs
them), and refused with 0122H on a requestor's association (we do not serve queries there).

A one-shot request is answered in three steps, written once (:func:`_steps`): a refusal the
service gives without its handler (a malformed C-STORE data set), else the default answer when
no handler is bound, else the handler's result made into the response (or its failure status
when it raises). Where the handler runs is the caller's choice, through two thin drivers of
those steps: :func:`answer` runs it in the calling thread -- a worker of the server's pool, the
event loop itself for an ``inline`` handler, or the thread driving a blocking association --
and a coroutine handler's awaitable is run on its loop through ``call.run_coroutine``;
:func:`answer_async` awaits a coroutine handler on the loop. Either way the request's data set
is closed once answered (a spool file the handler did not take over is deleted).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Coroutine, Generator
from typing import TYPE_CHECKING, TypeAlias

from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Status
from dicomnet.services.call import (
    OneShotService,
    RunCoroutine,
    ServiceCall,
    apply_status,
    error_comment,
    response_to,
)
from dicomnet.services.nservices import N_SERVICES
from dicomnet.services.storage import STORAGE
from dicomnet.services.verification import VERIFICATION

if TYPE_CHECKING:
    from dicomnet.services.contract import ServiceAssociation

__all__ = [
    "ONE_SHOT",
    "answer",
    "answer_async",
    "answer_request",
    "refusal",
]

LOGGER = logging.getLogger("dicomnet.services")

ONE_SHOT: dict[type[P.DIMSEPrimitive], OneShotService] = {
    P.C_ECHO: VERIFICATION,
    P.C_STORE: STORAGE,
    **N_SERVICES,
}
"""Request primitive class -> the service answering it with one response."""

# the steps yield a handler's awaitable and get its result (or its exception) back
Steps: TypeAlias = Generator[Awaitable[object], object, P.DIMSEPrimitive]


def _steps(service: OneShotService, call: ServiceCall) -> Steps:
    refused = service.refusal(call)
    if refused is not None:
        return refused
    if call.handler is None:
        return service.unhandled(call)
    try:
        result = call.invoke()
        if isinstance(result, Awaitable):
            result = yield result
    except Exception as exc:
        return service.failed(call, exc)
    return service.complete(call, result)


def answer(service: OneShotService, call: ServiceCall) -> P.DIMSEPrimitive:
    """The response to ``call``'s request, its handler called in this thread (a coroutine
    handler's awaitable goes to ``call.run_coroutine``)."""
    steps = _steps(service, call)
    try:
        awaitable = next(steps)
        while True:
            run = call.run_coroutine
            try:
                if run is None:
                    if isinstance(awaitable, Coroutine):
                        awaitable.close()  # never awaited: no "never awaited" warning
                    raise TypeError("a coroutine handler needs an event loop to run on")
                result = run(awaitable)
            except Exception as exc:
                awaitable = steps.throw(exc)
            else:
                awaitable = steps.send(result)
    except StopIteration as done:
        response: P.DIMSEPrimitive = done.value
        return response
    finally:
        call.request.close_payloads()


async def answer_async(service: OneShotService, call: ServiceCall) -> P.DIMSEPrimitive:
    """:func:`answer` on the event loop: a coroutine handler is awaited here."""
    steps = _steps(service, call)
    try:
        awaitable = next(steps)
        while True:
            try:
                result = await awaitable
            except Exception as exc:
                awaitable = steps.throw(exc)
            else:
                awaitable = steps.send(result)
    except StopIteration as done:
        response: P.DIMSEPrimitive = done.value
        return response
    finally:
        call.request.close_payloads()


def refusal(request: P.DIMSEPrimitive, status: int, comment: str | None = None) -> P.DIMSEPrimitive:
    """A response refusing ``request`` with ``status`` (and an Error Comment); its data set,
    if any, is closed."""
    request.close_payloads()
    rsp = response_to(request)
    apply_status(rsp, status, None if comment is None else {"ErrorComment": error_comment(comment)})
    return rsp


def answer_request(
    assoc: ServiceAssociation,
    context_id: int,
    request: P.DIMSEPrimitive,
    run_coroutine: RunCoroutine | None = None,
) -> P.DIMSEPrimitive:
    """The response to a request the peer sent on an association we requested, from the
    handler bound on it (see the module docstring).

    C-STORE needs the SCP role on its context (else 0124H, refused: not authorized, PS3.7
    D.3.3.4); C-FIND/C-GET/C-MOVE are not served on a requestor's association (0122H).
    """
    service = ONE_SHOT.get(type(request))
    if service is None:
        return refusal(request, Status.SOP_CLASS_NOT_SUPPORTED)
    context = assoc.context_by_id(context_id)
    if isinstance(request, P.C_STORE) and context is not None and not context.as_scp:
        return refusal(request, Status.NOT_AUTHORIZED)
    bound = assoc.handlers.first(service.event_type)
    handler, args = bound if bound is not None else (None, ())
    call = ServiceCall(
        assoc, context_id, context, request, service.event_type, handler, args,
        run_coroutine=run_coroutine,
    )  # fmt: skip
    return answer(service, call)
