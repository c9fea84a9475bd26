"""Relevant Patient Information Query (PS3.4 Annex Q) answers for one patient: at most one
Pending response, then Success, whatever the handler yields after its first match -- where a
Query/Retrieve C-FIND sends every match and the handler's final status. dicomnet answered both
the Q/R way (found by pynetdicom's test_service_relevant_patient). One pynetdicom program runs as
written and after ``s/pynetdicom/dicomnet/`` over a real loopback association; both print the
statuses and identifiers they got.
"""

from __future__ import annotations

from pathlib import Path

from tests.compat.side_by_side import run_both_alone

PROGRAM = """
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    GeneralRelevantPatientInformationQuery as RELEVANT,
    PatientRootQueryRetrieveInformationModelFind as FIND)

def match(name):
    ds = Dataset()
    ds.PatientName = name
    return ds

def handle(event):
    yield 0xFF00, match("FIRST")
    yield 0xFF00, match("SECOND")
    yield 0xA700, None

ae = AE()
ae.add_supported_context(RELEVANT)
ae.add_supported_context(FIND)
server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, handle)])
ae.add_requested_context(RELEVANT)
ae.add_requested_context(FIND)
assoc = ae.associate("127.0.0.1", server.server_address[1])
query = Dataset()
query.PatientID = "P1"
query.PatientName = ""
for model in (RELEVANT, FIND):
    if model == FIND:
        query.QueryRetrieveLevel = "PATIENT"
    got = [(hex(status.Status), None if ds is None else str(ds.PatientName))
           for status, ds in assoc.send_c_find(query, model)]
    print(model.keyword if hasattr(model, "keyword") else model, got)
assoc.release()
server.shutdown()
"""


def test_relevant_patient_query_answers_one_match_then_success(tmp_path: Path) -> None:
    theirs, ours = run_both_alone(PROGRAM, tmp_path)
    assert theirs == [
        "GeneralRelevantPatientInformationQuery [('0xff00', 'FIRST'), ('0x0', None)]",
        "PatientRootQueryRetrieveInformationModelFind "
        "[('0xff00', 'FIRST'), ('0xff00', 'SECOND'), ('0xa700', None)]",
    ]
    assert ours == theirs
