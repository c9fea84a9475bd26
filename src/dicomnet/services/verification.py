"""Verification Service Class, SCP side (PS3.4 Annex A): answering C-ECHO.

Theory of operation
-------------------
A C-ECHO-RQ (PS3.7 section 9.1.5) asks "are you there?". With no EVT_C_ECHO handler bound the
answer is Success (0000H), as PS3.4 Annex A.4 expects of every Verification SCP. A bound handler
returns the status to send (an ``int`` or a status ``Dataset``); an exception becomes 0110H
Processing failure. The response echoes the Affected SOP Class UID and carries Message ID Being
Responded To = the request's Message ID (PS3.7 Table 9.3-13).
"""

from __future__ import annotations

from typing import Any

from dicomnet.dimse.primitives import C_ECHO
from dicomnet.services.dispatch import (
    PROCESSING_FAILURE,
    ServiceCall,
    apply_status,
    call_handler,
    failure_from_exception,
    status_parts,
)

__all__ = ["arun", "run"]

SUCCESS = 0x0000


def _response(call: ServiceCall, status: int | None = None) -> C_ECHO:
    # The values are copied from the request primitive, which holds only validated values
    # (dimse.primitives): no second validation.
    req = call.request
    rsp: C_ECHO = C_ECHO._trusted(
        {
            "MessageIDBeingRespondedTo": req.MessageID,
            "AffectedSOPClassUID": req.AffectedSOPClassUID,
            "Status": status,
        }
    )
    return rsp


def _finish(call: ServiceCall, result: Any) -> C_ECHO:
    if type(result) is int and 0 <= result <= 0xFFFF:
        return _response(call, result)  # a bare status code: nothing else to copy
    rsp = _response(call)
    try:
        code, extras = status_parts(SUCCESS if result is None else result)
    except (TypeError, ValueError) as exc:
        failure_from_exception(rsp, PROCESSING_FAILURE, exc, "C-ECHO")
    else:
        apply_status(rsp, code, extras)
    return rsp


def run(call: ServiceCall) -> None:
    """Answer one C-ECHO-RQ (worker thread)."""
    if call.handler is None:
        call.send(_finish(call, SUCCESS))
        return
    try:
        result = call_handler(call)
    except Exception as exc:
        rsp = _response(call)
        failure_from_exception(rsp, PROCESSING_FAILURE, exc, "C-ECHO")
        call.send(rsp)
        return
    call.send(_finish(call, result))


async def arun(call: ServiceCall) -> None:
    """Answer one C-ECHO-RQ with a coroutine handler (event loop)."""
    try:
        result = await call.invoke() if call.handler is not None else SUCCESS
    except Exception as exc:
        rsp = _response(call)
        failure_from_exception(rsp, PROCESSING_FAILURE, exc, "C-ECHO")
        call.send(rsp)
        return
    call.send(_finish(call, result))
