"""Storage Service Class, SCP side (PS3.4 Annex B): answering C-STORE.

Theory of operation
-------------------
The server has already reassembled the data set (in memory, or spooled to a temporary file
above the spool threshold) when the EVT_C_STORE handler is called. The handler decides where it
goes: ``event.dataset`` decodes it, ``event.data_source`` gives the raw bytes in the accepted
transfer syntax (``move_to``/``detach`` keep a spool file), ``event.file_meta`` is the File Meta
Information for writing a Part 10 file (PS3.10 section 7.1). The handler's return value is the
status (PS3.4 Table B.2-1: 0000 success, B000/B006/B007 warnings, A7xx out of resources, A9xx
data set does not match SOP class, Cxxx cannot understand).

* No handler bound: 0122H "Refused: SOP Class not supported" (see :mod:`.dispatch`).
* The handler raises: C211H (in the "cannot understand" Cxxx range), logged.
* The Affected SOP Instance UID was validated as a UID by the DIMSE layer (PS3.5 section 9.1)
  before we get here, so a handler may use it as a file name.
* The data set was checked as it arrived (:mod:`dicomnet.dimse.checker`, unless
  ``AE.check_received_datasets`` is off): a malformed one, or one that is not an instance of
  the context's SOP class, is answered with Cxxx / A900 and an Error Comment without calling
  the handler, and its bytes are discarded.

After the handler returns, the received data source is closed: a spool file the handler did not
take over is deleted. The response echoes Affected SOP Class/Instance UID (PS3.7 Table 9.3-2).
"""

from __future__ import annotations

import logging
from typing import Any

from dicomnet.dimse.primitives import C_STORE
from dicomnet.services.dispatch import (
    NO_HANDLER_STATUS,
    ServiceCall,
    apply_status,
    call_handler,
    failure_from_exception,
    status_parts,
)

__all__ = ["HANDLER_FAILURE", "arun", "refusal", "run"]

LOGGER = logging.getLogger("dicomnet.services.storage")

HANDLER_FAILURE = 0xC211


def _response(call: ServiceCall, status: int | None = None) -> C_STORE:
    # The values are copied from the request primitive, which holds only validated values
    # (dimse.primitives): no second validation.
    req = call.request
    rsp: C_STORE = C_STORE._trusted(
        {
            "MessageIDBeingRespondedTo": req.MessageID,
            "AffectedSOPClassUID": req.AffectedSOPClassUID,
            "AffectedSOPInstanceUID": getattr(req, "AffectedSOPInstanceUID", None),
            "Status": status,
        }
    )
    return rsp


def _finish(call: ServiceCall, result: Any) -> C_STORE:
    if type(result) is int and 0 <= result <= 0xFFFF:
        return _response(call, result)  # a bare status code: nothing else to copy
    rsp = _response(call)
    try:
        code, extras = status_parts(result)
    except (TypeError, ValueError) as exc:
        failure_from_exception(rsp, HANDLER_FAILURE, exc, "C-STORE")
    else:
        apply_status(rsp, code, extras)
    return rsp


def _close_source(call: ServiceCall) -> None:
    # the request's data set (what event.data_source returns), without building the event
    source = getattr(call.request, "DataSet", None)
    close = getattr(source, "close", None)
    if close is not None:
        close()


def refusal(call: ServiceCall) -> C_STORE | None:
    """The failure response for a data set the reassembler's check refused (a malformed data
    set, or one that is not an instance of its context's SOP class: PS3.4 B.2.3), or None."""
    check = getattr(getattr(call.request, "DataSet", None), "check", None)
    problem = getattr(check, "problem", None)
    if problem is None:
        return None
    LOGGER.warning("C-STORE %s refused: %s",
                   getattr(call.request, "AffectedSOPInstanceUID", "?"), problem.text)  # fmt: skip
    rsp = _response(call)
    apply_status(rsp, problem.status, {"ErrorComment": problem.text})
    return rsp


def run(call: ServiceCall) -> None:
    """Answer one C-STORE-RQ (worker thread)."""
    try:
        refused = refusal(call)
        if refused is not None:
            rsp = refused
        elif call.handler is None:
            rsp = _finish(call, NO_HANDLER_STATUS)
        else:
            try:
                rsp = _finish(call, call_handler(call))
            except Exception as exc:
                rsp = _response(call)
                failure_from_exception(rsp, HANDLER_FAILURE, exc, "C-STORE")
    finally:
        _close_source(call)
    call.send(rsp)


async def arun(call: ServiceCall) -> None:
    """Answer one C-STORE-RQ with a coroutine handler (event loop)."""
    try:
        try:
            refused = refusal(call)
            if refused is not None:
                rsp = refused
            else:
                rsp = _finish(call, NO_HANDLER_STATUS if call.handler is None
                              else await call.invoke())  # fmt: skip
        except Exception as exc:
            rsp = _response(call)
            failure_from_exception(rsp, HANDLER_FAILURE, exc, "C-STORE")
    finally:
        _close_source(call)
    call.send(rsp)
