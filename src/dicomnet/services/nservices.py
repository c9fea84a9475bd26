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
A handler exception or an unusable return value -- a reply that is no data set, or one that
cannot be encoded (it is encoded before the response is sent) -- becomes 0110H Processing
failure (PS3.7 Annex C.4.4), and so does no handler bound (as pynetdicom answers). :data:`N_SERVICES` maps each
request primitive class to its service for the dispatcher (:mod:`dicomnet.services.dispatch`).
"""

from __future__ import annotations

from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Category, category
from dicomnet.events import (
    EVT_N_ACTION,
    EVT_N_CREATE,
    EVT_N_DELETE,
    EVT_N_EVENT_REPORT,
    EVT_N_GET,
    EVT_N_SET,
    EventType,
)
from dicomnet.services.call import (
    OneShotService,
    ServiceCall,
)
from dicomnet.services.payloads import as_payload

__all__ = ["N_SERVICES", "REPLY_FIELD", "NService"]

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


class NService(OneShotService):
    """One DIMSE-N service (see the module docstring)."""

    def response(self, call: ServiceCall) -> P.DIMSEPrimitive:
        req = call.request
        rsp = type(req)()
        rsp.MessageIDBeingRespondedTo = req.MessageID
        fields = req.FIELDS
        sop_class = _param(req, "AffectedSOPClassUID") or _param(req, "RequestedSOPClassUID")
        instance = _param(req, "AffectedSOPInstanceUID") or _param(req, "RequestedSOPInstanceUID")
        rsp.AffectedSOPClassUID = sop_class
        rsp.AffectedSOPInstanceUID = instance
        for name in _ECHOED:
            if name in fields:
                setattr(rsp, name, getattr(req, name))
        return rsp

    def complete(self, call: ServiceCall, result: object) -> P.DIMSEPrimitive:
        dataset: object = None
        if isinstance(result, tuple):
            if len(result) != 2:
                exc = ValueError("an N-service handler returns status or (status, dataset)")
                return self.failed(call, exc)
            result, dataset = result
        rsp = super().complete(call, result)  # the status (or the answer to an unusable one)
        field = REPLY_FIELD.get(type(rsp))
        if (dataset is not None and field and isinstance(rsp.Status, int)
                and category(rsp.Status) in (Category.SUCCESS, Category.WARNING)):  # fmt: skip
            if isinstance(rsp, P.N_CREATE) and rsp.AffectedSOPInstanceUID is None:
                uid = getattr(dataset, "SOPInstanceUID", None)  # a pydicom Dataset
                if uid:
                    rsp.AffectedSOPInstanceUID = str(uid)
            try:
                payload = as_payload(dataset, call.transfer_syntax)
                payload.size  # noqa: B018 - encoded here: a failure is the handler's (0110H)
            except Exception as exc:
                return self.failed(call, exc)
            setattr(rsp, field, payload)
        return rsp


def _param(primitive: P.DIMSEPrimitive, keyword: str) -> str | None:
    value = getattr(primitive, keyword) if keyword in primitive.FIELDS else None
    return value if isinstance(value, str) else None


def _service(event_type: EventType) -> NService:
    return NService(event_type)


N_SERVICES: dict[type[P.DIMSEPrimitive], OneShotService] = {
    P.N_EVENT_REPORT: _service(EVT_N_EVENT_REPORT),
    P.N_GET: _service(EVT_N_GET),
    P.N_SET: _service(EVT_N_SET),
    P.N_ACTION: _service(EVT_N_ACTION),
    P.N_CREATE: _service(EVT_N_CREATE),
    P.N_DELETE: _service(EVT_N_DELETE),
}
