"""Storage Service Class, SCP side (PS3.4 Annex B): answering C-STORE.

Theory of operation
-------------------
The data set has already been reassembled (in memory, or spooled to a temporary file above the
spool threshold) when the EVT_C_STORE handler is called. The handler decides where it goes:
``event.dataset`` decodes it, ``event.data_source`` gives the raw bytes in the accepted transfer
syntax (``move_to``/``detach`` keep a spool file), ``event.file_meta`` is the File Meta
Information for writing a Part 10 file (PS3.10 section 7.1). The handler's return value is the
status (PS3.4 Table B.2-1: 0000 success, B000/B006/B007 warnings, A7xx out of resources, A9xx
data set does not match SOP class, Cxxx cannot understand).

* No handler bound: C211H, as for a handler that cannot process it (pynetdicom answers so).
* The handler raises, or returns no status: C211H (in the "cannot understand" Cxxx range),
  logged.
* The Affected SOP Instance UID was validated as a UID by the DIMSE layer (PS3.5 section 9.1)
  before we get here, so a handler may use it as a file name.
* The data set was checked as it arrived (:mod:`dicomnet.dimse.checker`, unless
  ``check_received_datasets`` is off): a malformed one, or one that is not an instance of the
  context's SOP class, is answered with its Cxxx / A900 status and an Error Comment without
  calling the handler (:meth:`Storage.refusal`).
* On a requestor's association (the C-STORE sub-operations of a C-GET, PS3.4 C.4.3.3) we must
  hold the SCP role for the SOP class (role selection, PS3.7 D.3.3.4); without it the request
  is refused with 0124H "Not authorized" (see :func:`dicomnet.services.dispatch.answer_request`).

After the handler returns, the dispatcher closes the received data source: a spool file the
handler did not take over is deleted. The response echoes Affected SOP Class/Instance UID
(PS3.7 Table 9.3-2).
"""

from __future__ import annotations

import logging

from dicomnet.datasource import DataSource
from dicomnet.dimse.checker import DataSetChecker
from dicomnet.dimse.primitives import C_STORE, DIMSEPrimitive
from dicomnet.dimse.status import Status
from dicomnet.events import EVT_C_STORE
from dicomnet.services.call import OneShotService, ServiceCall, apply_status

__all__ = ["STORAGE", "Storage"]

LOGGER = logging.getLogger("dicomnet.services.storage")


class Storage(OneShotService):
    """C-STORE (PS3.4 B.2)."""

    failure = Status.STORE_HANDLER_FAILURE

    def response(self, call: ServiceCall, status: int | None = None) -> C_STORE:
        # The values are copied from the request primitive, which holds only validated values
        # (dimse.primitives): no second validation.
        req = call.request
        assert isinstance(req, C_STORE)
        rsp: C_STORE = C_STORE.from_checked(
            {
                "MessageIDBeingRespondedTo": req.MessageID,
                "AffectedSOPClassUID": req.AffectedSOPClassUID,
                "AffectedSOPInstanceUID": req.AffectedSOPInstanceUID,
                "Status": status,
            }
        )
        return rsp

    def refusal(self, call: ServiceCall) -> DIMSEPrimitive | None:
        """The failure response for a data set the reassembler's check refused (a malformed
        data set, or one that is not an instance of its context's SOP class: PS3.4 B.2.3)."""
        payload = call.request.payload
        check = payload.check if isinstance(payload, DataSource) else None
        problem = check.problem if isinstance(check, DataSetChecker) else None
        if problem is None:
            return None
        request = call.request
        assert isinstance(request, C_STORE)
        LOGGER.warning("C-STORE %s refused: %s", request.AffectedSOPInstanceUID, problem.text)
        rsp = self.response(call)
        apply_status(rsp, problem.status, {"ErrorComment": problem.text})
        return rsp

    def complete(self, call: ServiceCall, result: object) -> DIMSEPrimitive:
        if type(result) is int and 0 <= result <= 0xFFFF:
            return self.response(call, result)  # a bare status code: nothing else to copy
        return super().complete(call, result)


STORAGE = Storage(EVT_C_STORE)
