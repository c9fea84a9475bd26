"""``dicomnet.pdu_primitives``: the Upper Layer service primitives (PS3.8 section 7) and the
user information items an application builds (PS3.7 Annex D.3.3), under the names pynetdicom
programs use. See :mod:`dicomnet.ul.primitives` for how they become checked PDU records.

The A-ASSOCIATE, A-RELEASE and A-ABORT primitives are the PDU records themselves
(:mod:`dicomnet.ul.pdu`): dicomnet issues them for the application, which never builds one.
"""

from __future__ import annotations

from dicomnet.ul.pdu import AAbort as A_ABORT
from dicomnet.ul.pdu import AAbort as A_P_ABORT
from dicomnet.ul.pdu import AAssociateRQ as A_ASSOCIATE
from dicomnet.ul.pdu import AReleaseRQ as A_RELEASE
from dicomnet.ul.pdu import ImplementationClassUID as ImplementationClassUIDNotification
from dicomnet.ul.pdu import ImplementationVersionName as ImplementationVersionNameNotification
from dicomnet.ul.pdu import MaximumLength as MaximumLengthNotification
from dicomnet.ul.primitives import (
    P_DATA,
    AsynchronousOperationsWindowNegotiation,
    NegotiationItem,
    SCP_SCU_RoleSelectionNegotiation,
    UserIdentityNegotiation,
)
from dicomnet.ul.primitives import (
    SOPClassCommonExtendedNegotiationItem as SOPClassCommonExtendedNegotiation,
)
from dicomnet.ul.primitives import SOPClassExtendedNegotiationItem as SOPClassExtendedNegotiation

__all__ = [
    "A_ABORT",
    "A_ASSOCIATE",
    "A_P_ABORT",
    "A_RELEASE",
    "P_DATA",
    "AsynchronousOperationsWindowNegotiation",
    "ImplementationClassUIDNotification",
    "ImplementationVersionNameNotification",
    "MaximumLengthNotification",
    "NegotiationItem",
    "SCP_SCU_RoleSelectionNegotiation",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "UserIdentityNegotiation",
]
