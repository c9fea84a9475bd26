"""C-FIND matches a handler has yielded reach the peer while the handler blocks for the next
one (a slow next page, a remote look-up): they are not held until the handler yields again.
dicomnet encodes matches in batches in the handler pool; a batch whose handler blocked kept the
matches it had made, so a requestor with a 1 s DIMSE timeout got nothing and gave up (found by
pynetdicom's test_service_qr). One pynetdicom program runs as written and after
``s/pynetdicom/dicomnet/``: the handler yields two matches, then waits until the requestor has
both (or 10 s), then a third; both runs must print the same four statuses.
"""

from __future__ import annotations

from pathlib import Path

from tests.compat.side_by_side import run_both_alone

PROGRAM = """
import threading
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind as FIND

both_arrived = threading.Event()
query = Dataset()
query.QueryRetrieveLevel = "PATIENT"
query.PatientName = "*"

def handle(event):
    yield 0xFF00, query
    yield 0xFF01, query
    both_arrived.wait(10)  # the requestor's DIMSE timeout is 1 s
    yield 0xFF00, query

ae = AE()
ae.add_supported_context(FIND)
server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, handle)])
ae.add_requested_context(FIND)
ae.dimse_timeout = 1
assoc = ae.associate("127.0.0.1", server.server_address[1])
got = []
for status, identifier in assoc.send_c_find(query, FIND):
    got.append(hex(status.Status) if "Status" in status else "no response")
    if len(got) == 2:
        both_arrived.set()
print(got)
both_arrived.set()
assoc.release()
server.shutdown()
"""


def test_matches_go_out_while_the_handler_blocks(tmp_path: Path) -> None:
    theirs, ours = run_both_alone(PROGRAM, tmp_path)
    assert theirs == ["['0xff00', '0xff01', '0xff00', '0x0']"]
    assert ours == theirs
