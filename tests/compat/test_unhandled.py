"""A service with no handler bound answers what pynetdicom answers: C-ECHO success, and for
the others the status of a handler that cannot process the request -- C211H (C-STORE), C311H
(C-FIND), C411H (C-GET), C511H (C-MOVE), 0110H (DIMSE-N). pynetdicom's tutorial teaches users
to expect C211H from an SCP without an EVT_C_STORE handler. The same requests go to a real
pynetdicom SCP and to ours, both with no handlers, over loopback."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.examples import ct

from dicomnet.ae import AE

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
FIND, GET, MOVE = (f"1.2.840.10008.5.1.4.1.2.2.{n}" for n in (1, 3, 2))
MPPS = "1.2.840.10008.3.1.2.3.3"


def _serve(ae_class: Callable[..., Any]) -> Any:
    ae = ae_class()
    for uid in (VERIFICATION, CT, FIND, GET, MOVE, MPPS):
        ae.add_supported_context(uid)
    return ae.start_server(("127.0.0.1", 0), block=False)


def _statuses(port: int) -> dict[str, int]:
    ae = AE("SCU")
    for uid in (VERIFICATION, CT, FIND, GET, MOVE, MPPS):
        ae.add_requested_context(uid)
    assoc = ae.associate("127.0.0.1", port)
    assert assoc.is_established
    try:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = "1.2.3"
        ds = copy.deepcopy(ct)
        ds.SOPInstanceUID = "1.2.3.4"
        return {
            "echo": int(assoc.send_c_echo().Status),
            "store": int(assoc.send_c_store(ds).Status),
            "find": int(list(assoc.send_c_find(query, FIND))[-1][0].Status),
            "get": int(list(assoc.send_c_get(query, GET))[-1][0].Status),
            "move": int(list(assoc.send_c_move(query, "DEST", MOVE))[-1][0].Status),
            "n_create": int(assoc.send_n_create(Dataset(), MPPS, "1.2.3.5")[0].Status),
        }
    finally:
        assoc.release()


def test_no_handler_statuses_are_pynetdicoms() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    theirs_server = _serve(pynetdicom.AE)
    ours_server = _serve(AE)
    try:
        theirs = _statuses(theirs_server.server_address[1])
        ours = _statuses(ours_server.server_address[1])
    finally:
        theirs_server.shutdown()
        ours_server.shutdown()
    expected = {"echo": 0, "store": 0xC211, "find": 0xC311, "get": 0xC411, "move": 0xC511,
                "n_create": 0x0110}  # fmt: skip
    assert theirs == expected
    assert ours == theirs
