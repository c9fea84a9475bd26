"""An event kept by a handler still gives its data set after the handler returned, as in
pynetdicom: programs (and pynetdicom's own app tests) append ``event`` to a list in the handler
and read ``event.dataset`` / ``event.identifier`` once the association is over. dicomnet used to
release a received data set's bytes when its handler returned, so those reads raised "this
DataSource was closed" (found running pynetdicom's storescu app tests against dicomnet's
storescu). One pynetdicom program runs as written and after ``s/pynetdicom/dicomnet/``: a
server keeps its C-STORE and C-FIND events, a client of the same AE sends three instances and a
query over a real loopback association, then the kept events are read; both must print the same.

Data sets above the spool threshold (8 MiB) are the documented exception: their spool file is
moved or deleted when the handler returns (docs/migrating-from-pynetdicom.md).
"""

from __future__ import annotations

from pathlib import Path

from tests.compat.side_by_side import run_both_alone

PROGRAM = """
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, PatientRootQueryRetrieveInformationModelFind as FIND

kept = []

def on_store(event):
    kept.append(event)
    return 0x0000

def on_find(event):
    kept.append(event)
    yield 0x0000, None

ae = AE()
ae.add_supported_context(CTImageStorage)
ae.add_supported_context(FIND)
server = ae.start_server(("127.0.0.1", 0), block=False,
                         evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_C_FIND, on_find)])
ae.add_requested_context(CTImageStorage)
ae.add_requested_context(FIND)
assoc = ae.associate("127.0.0.1", server.server_address[1])
for i in range(3):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = f"KEPT^{i}"
    ds.Rows = 1000 + i
    print("store", hex(assoc.send_c_store(ds).Status))
query = Dataset()
query.QueryRetrieveLevel = "PATIENT"
query.PatientName = "KEPT*"
print("find", [hex(status.Status) for status, _ in assoc.send_c_find(query, FIND)])
assoc.release()
server.shutdown()
for event in kept:
    data = event.identifier if event.event.name == "EVT_C_FIND" else event.dataset
    print(event.event.name, data.PatientName, data.get("Rows"), data.get("QueryRetrieveLevel"))
"""


def test_kept_events_still_give_their_data_sets(tmp_path: Path) -> None:
    theirs, ours = run_both_alone(PROGRAM, tmp_path)
    assert theirs == [
        "store 0x0", "store 0x0", "store 0x0", "find ['0x0']",
        "EVT_C_STORE KEPT^0 1000 None", "EVT_C_STORE KEPT^1 1001 None",
        "EVT_C_STORE KEPT^2 1002 None", "EVT_C_FIND KEPT* None PATIENT",
    ]  # fmt: skip
    assert ours == theirs
