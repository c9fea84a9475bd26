"""What an acceptor sees of the requestor's A-ASSOCIATE request, as pynetdicom programs read it:
``event.assoc.requestor.primitive.presentation_context_definition_list`` (each context's
``abstract_syntax`` and ``transfer_syntax`` list) and ``requestor.extended_negotiation`` (every
negotiation item the requestor sent: role selections, SOP class extended negotiation...).
pynetdicom's own app tests read both; dicomnet had neither name on its A-ASSOCIATE-RQ record
and listed only the SOP class (common) extended items. One pynetdicom program runs as written and
after ``s/pynetdicom/dicomnet/`` over a real loopback association; both must print the same.
"""

from __future__ import annotations

from pathlib import Path

from tests.compat.side_by_side import run_both_alone

PROGRAM = """
from pynetdicom import AE, build_role, evt
from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
from pynetdicom.sop_class import (
    CTImageStorage, StudyRootQueryRetrieveInformationModelFind as FIND, Verification)

seen = []

def on_echo(event):
    rq = event.assoc.requestor
    seen.append([(str(cx.abstract_syntax), [str(t) for t in cx.transfer_syntax])
                 for cx in rq.primitive.presentation_context_definition_list])
    seen.append(sorted(str(i.sop_class_uid) for i in rq.extended_negotiation))
    return 0x0000

ae = AE()
ae.add_supported_context(Verification)
ae.add_supported_context(CTImageStorage, scu_role=True, scp_role=True)
ae.add_supported_context(FIND)
server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_ECHO, on_echo)])
ae.add_requested_context(Verification, ["1.2.840.10008.1.2"])
ae.add_requested_context(CTImageStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
ae.add_requested_context(FIND, ["1.2.840.10008.1.2"])
relational = SOPClassExtendedNegotiation()
relational.sop_class_uid = FIND
relational.service_class_application_information = b"\\x01"
assoc = ae.associate("127.0.0.1", server.server_address[1],
                     ext_neg=[build_role(CTImageStorage, scp_role=True), relational])
print("echo", hex(assoc.send_c_echo().Status))
assoc.release()
server.shutdown()
for line in seen:
    print(line)
"""


def test_the_requestors_primitive_and_negotiation_items_as_pynetdicom_gives_them(
    tmp_path: Path,
) -> None:
    theirs, ours = run_both_alone(PROGRAM, tmp_path)
    ct, find = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.2.2.1"
    assert theirs == [
        "echo 0x0",
        str([("1.2.840.10008.1.1", ["1.2.840.10008.1.2"]),
             (ct, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]),
             (find, ["1.2.840.10008.1.2"])]),
        str(sorted([ct, find])),
    ]  # fmt: skip
    assert ours == theirs
