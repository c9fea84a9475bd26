"""Verification Service Class, SCP side (PS3.4 Annex A): answering C-ECHO.

Theory of operation
-------------------
A C-ECHO-RQ (PS3.7 section 9.1.5) asks "are you there?". With no EVT_C_ECHO handler bound the
answer is Success (0000H), as PS3.4 Annex A.4 expects of every Verification SCP. A bound handler
returns the status to send (an ``int`` or a status ``Dataset``; None counts as Success; PS3.7
9.1.5.1.4 names the failures a C-ECHO may report: 0122H, 0210H-0212H). A handler that raises or
returns something that is no status is logged and answered with Success: the C-ECHO-RSP Status
"shall have a value of Success" (PS3.7 Table 9.3-13, which has no Error Comment field either),
and the exchange itself did work -- as pynetdicom and DCMTK answer. The response echoes the
Affected SOP Class UID and carries Message ID Being Responded To = the request's Message ID
(PS3.7 Table 9.3-13).

:data:`VERIFICATION` is the service the dispatcher (:mod:`dicomnet.services.dispatch`) runs for
every C-ECHO-RQ, on a server and on a requestor's association alike.
"""

from __future__ import annotations

import logging

from dicomnet.dimse.primitives import C_ECHO, DIMSEPrimitive
from dicomnet.dimse.status import Status
from dicomnet.events import EVT_C_ECHO
from dicomnet.services.call import NotAStatus, OneShotService, ServiceCall

__all__ = ["VERIFICATION", "Verification"]

LOGGER = logging.getLogger("dicomnet.services")


class Verification(OneShotService):
    """C-ECHO: Success by default (PS3.4 A.4)."""

    unhandled_status = Status.SUCCESS

    def response(self, call: ServiceCall, status: int | None = None) -> C_ECHO:
        # The values are copied from the request primitive, which holds only validated values
        # (dimse.primitives): no second validation.
        req = call.request
        rsp: C_ECHO = C_ECHO.from_checked(
            {
                "MessageIDBeingRespondedTo": req.MessageID,
                "AffectedSOPClassUID": req.AffectedSOPClassUID,
                "Status": status,
            }
        )
        return rsp

    def unhandled(self, call: ServiceCall) -> DIMSEPrimitive:
        return self.response(call, Status.SUCCESS)

    def complete(self, call: ServiceCall, result: object) -> DIMSEPrimitive:
        if type(result) is int and 0 <= result <= 0xFFFF:
            return self.response(call, result)  # a bare status code: nothing else to copy
        return super().complete(call, Status.SUCCESS if result is None else result)

    def not_a_status(self, call: ServiceCall, exc: NotAStatus) -> DIMSEPrimitive:
        return self.failed(call, exc)

    def failed(self, call: ServiceCall, exc: BaseException) -> DIMSEPrimitive:
        # also what complete() answers for a result that is no status
        LOGGER.error("%s handler failed: %s (answered Success, PS3.7 Table 9.3-13)",
                     self.event_type.name, exc, exc_info=exc)  # fmt: skip
        return self.response(call, Status.SUCCESS)


VERIFICATION = Verification(EVT_C_ECHO)
