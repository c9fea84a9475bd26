"""pynetdicom peers for capture.py: ``scp PORT`` or ``scu PORT`` (test-data generator only).

The SCU proposes Verification, an unknown abstract syntax (rejected), and a storage context with
role selection, plus async operations window, user identity (positive response requested),
SOP class extended and common extended negotiation sub-items; the SCP answers the user
identity request so a 59H sub-item appears in its A-ASSOCIATE-AC.
"""

from __future__ import annotations

import sys

from pynetdicom import AE, evt
from pynetdicom.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
FIND = "1.2.840.10008.5.1.4.1.2.1.1"


def scp(port: int) -> None:
    ae = AE(ae_title="PYSCP")
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(CT, scu_role=True, scp_role=True)
    ae.add_supported_context(FIND)

    def user_id(event: object, *args: object) -> tuple[bool, bytes]:
        return True, b"welcome"

    def ext(event: evt.Event) -> dict[str, bytes]:
        return {FIND: b"\x01"}

    ae.start_server(
        ("127.0.0.1", port),
        block=True,
        evt_handlers=[(evt.EVT_USER_ID, user_id), (evt.EVT_SOP_EXTENDED, ext)],
    )


def scu(port: int) -> None:
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context("1.2.3.4.5.6.7")  # unsupported: result 3 in the AC
    ae.add_requested_context(CT)
    ae.add_requested_context(FIND)
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid, role.scu_role, role.scp_role = CT, True, True
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = 5
    window.maximum_number_operations_performed = 3
    ident = UserIdentityNegotiation()
    ident.user_identity_type = 4  # SAML assertion: the acceptor answers with a 59H sub-item
    ident.positive_response_requested = True
    ident.primary_field = b"<saml:Assertion/>"
    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid, ext.service_class_application_information = FIND, b"\x01\x01\x00"
    common = SOPClassCommonExtendedNegotiation()
    common.sop_class_uid = CT
    common.service_class_uid = "1.2.840.10008.4.2"
    common.related_general_sop_class_identification = ["1.2.840.10008.5.1.4.1.1.2.1"]
    assoc = ae.associate(
        "127.0.0.1", port, ae_title="PYSCP", ext_neg=[role, window, ident, ext, common]
    )
    if assoc.is_established:
        assoc.send_c_echo()
        assoc.release()
    ae.shutdown()


if __name__ == "__main__":
    {"scp": scp, "scu": scu}[sys.argv[1]](int(sys.argv[2]))
