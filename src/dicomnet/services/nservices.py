"""The DIMSE-N services, SCP side (PS3.7 section 10): N-EVENT-REPORT, N-GET, N-SET, N-ACTION,
N-CREATE and N-DELETE.

Theory of operation
-------------------
All six have the same shape: one request, one response (PS3.7 section 10.3). The handler
returns a status (``int`` or status ``Dataset``) or ``(status, dataset)``, where the data set is
the reply the service defines (PS3.7 Tables 10.1-1 ... 10.1-6):

=================  ===================  ==============================================
service            request data set      reply data set (response parameter)
=================  ===================  ==============================================
N-EVENT-REPORT     Event Information     Event Reply
N-GET              (none)                Attribute List
N-SET              Modification List     Attribute List
N-ACTION           Action Information    Action Reply
N-CREATE           Attribute List        Attribute List
N-DELETE           (none)                (none)
=================  ===================  ==============================================

The reply data set is encoded in the transfer syntax of the request's presentation context and
is only sent with a Success or Warning status. The response's Affected SOP Class/Instance UID
are the request's Affected (N-EVENT-REPORT, N-CREATE) or Requested (the others) UIDs; for an
N-CREATE whose request left the instance UID to the SCP (PS3.7 section 10.1.5.1.3) it is taken
from the returned data set's SOP Instance UID. Event Type ID and Action Type ID are echoed.
A handler exception or an unusable return value becomes 0110H Processing failure (PS3.7 Annex
C.4.4); no handler bound gives 0122H.
"""

from __future__ import annotations

from typing import Any

from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Category, category
from dicomnet.services.dispatch import (
    NO_HANDLER_STATUS,
    PROCESSING_FAILURE,
    ServiceCall,
    apply_status,
    call_handler,
    failure_from_exception,
    status_parts,
)

__all__ = ["REPLY_FIELD", "arun", "run"]

# primitive class -> the response parameter carrying the reply data set
REPLY_FIELD: dict[type[P.DIMSEPrimitive], str | None] = {
    P.N_EVENT_REPORT: "EventReply",
    P.N_GET: "AttributeList",
    P.N_SET: "AttributeList",
    P.N_ACTION: "ActionReply",
    P.N_CREATE: "AttributeList",
    P.N_DELETE: None,
}
_ECHOED = ("EventTypeID", "ActionTypeID")


def _response(call: ServiceCall) -> P.DIMSEPrimitive:
    req = call.request
    rsp = type(req)()
    rsp.MessageIDBeingRespondedTo = req.MessageID
    fields = req.FIELDS
    sop_class = getattr(req, "AffectedSOPClassUID", None)
    instance = getattr(req, "AffectedSOPInstanceUID", None)
    if "RequestedSOPClassUID" in fields:
        sop_class = sop_class or req.RequestedSOPClassUID  # type: ignore[attr-defined]
        instance = instance or req.RequestedSOPInstanceUID  # type: ignore[attr-defined]
    rsp.AffectedSOPClassUID = sop_class
    rsp.AffectedSOPInstanceUID = instance
    for name in _ECHOED:
        if name in fields:
            setattr(rsp, name, getattr(req, name))
    return rsp


def _finish(call: ServiceCall, result: Any) -> P.DIMSEPrimitive:
    rsp = _response(call)
    dataset = None
    if isinstance(result, tuple):
        if len(result) != 2:
            exc = ValueError("an N-service handler returns status or (status, dataset)")
            failure_from_exception(rsp, PROCESSING_FAILURE, exc, call.event.event.name)
            return rsp
        result, dataset = result
    try:
        code, extras = status_parts(result)
    except (TypeError, ValueError) as exc:
        failure_from_exception(rsp, PROCESSING_FAILURE, exc, call.event.event.name)
        return rsp
    apply_status(rsp, code, extras)
    field = REPLY_FIELD.get(type(rsp))
    if dataset is not None and field and category(code) in (Category.SUCCESS, Category.WARNING):
        if isinstance(rsp, P.N_CREATE) and rsp.AffectedSOPInstanceUID is None:
            uid = getattr(dataset, "SOPInstanceUID", None)
            if uid:
                rsp.AffectedSOPInstanceUID = str(uid)
        if isinstance(dataset, DataSource):
            setattr(rsp, field, dataset)
        else:
            setattr(rsp, field, DataSource.from_dataset(dataset, call.transfer_syntax))
    return rsp


def run(call: ServiceCall) -> None:
    """Answer one DIMSE-N request (worker thread)."""
    if call.handler is None:
        rsp = _response(call)
        apply_status(rsp, NO_HANDLER_STATUS)
        call.send(rsp)
        return
    try:
        rsp = _finish(call, call_handler(call))
    except Exception as exc:
        rsp = _response(call)
        failure_from_exception(rsp, PROCESSING_FAILURE, exc, call.event.event.name)
    call.send(rsp)


async def arun(call: ServiceCall) -> None:
    """Answer one DIMSE-N request with a coroutine handler (event loop)."""
    if call.handler is None:
        rsp = _response(call)
        apply_status(rsp, NO_HANDLER_STATUS)
        call.send(rsp)
        return
    try:
        rsp = _finish(call, await call.invoke())
    except Exception as exc:
        rsp = _response(call)
        failure_from_exception(rsp, PROCESSING_FAILURE, exc, call.event.event.name)
    call.send(rsp)
