"""What a handler's "status" that is no status becomes, over a real association: C002 for
anything other than an ``int`` or a ``Dataset`` with Status (``None``, a string), C001 for a
``Dataset`` without Status -- pynetdicom's codes, in every service whose statuses it checks, so
that its programs (and its own test suite) see what they expect. C-ECHO answers Success
instead (pynetdicom does too). Before, these were the service's handler-failure status (C211,
C311, 0110...), and C-GET's the sub-operation failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.examples import ct

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.server import Server, start_server

MPPS = "1.2.840.10008.3.1.2.3.3"
FIND = "1.2.840.10008.5.1.4.1.2.1.1"
GET = "1.2.840.10008.5.1.4.1.2.1.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"


def _no_status() -> Dataset:
    ds = Dataset()
    ds.ErrorComment = "a comment, no Status"
    return ds


def _query() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = "1"
    return ds


# service -> (event, handler returning ``bad``, how the SCU sends it -> the final status code)
SERVICES: dict[str, tuple[Any, Callable[[Any], Any], Callable[[Any], int]]] = {
    "C-STORE": (evt.EVT_C_STORE, lambda bad: lambda e: bad,
                lambda a: a.send_c_store(ct).Status),
    "C-FIND": (evt.EVT_C_FIND, lambda bad: lambda e: iter([(bad, _query())]),
               lambda a: [s.Status for s, _ in a.send_c_find(_query(), FIND)][-1]),
    "C-GET": (evt.EVT_C_GET, lambda bad: lambda e: iter([1, (bad, None)]),
              lambda a: [s.Status for s, _ in a.send_c_get(_query(), GET)][-1]),
    "N-GET": (evt.EVT_N_GET, lambda bad: lambda e: (bad, None),
              lambda a: a.send_n_get([0x00400252], MPPS, "1.2.3")[0].Status),
    "N-DELETE": (evt.EVT_N_DELETE, lambda bad: lambda e: bad,
                 lambda a: a.send_n_delete(MPPS, "1.2.3").Status),
    "C-ECHO": (evt.EVT_C_ECHO, lambda bad: lambda e: bad, lambda a: a.send_c_echo().Status),
}  # fmt: skip


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize(("bad", "code"), [(None, 0xC002), ("Failure", 0xC002),
                                           (_no_status(), 0xC001)])  # fmt: skip
def test_a_handler_status_that_is_no_status(servers: list[Server], service: str, bad: Any,
                                            code: int) -> None:  # fmt: skip
    event, handler, send = SERVICES[service]
    if service == "C-ECHO":
        # pynetdicom's C-ECHO answers Success for whatever its handler got wrong; ours returns
        # Success for None (no status given) and for a failing handler (PS3.7 Table 9.3-13)
        code = 0x0000
    ae = AE(ae_title="SCP")
    for uid in (MPPS, FIND, GET, CT, VERIFICATION):
        ae.add_supported_context(uid)
    ae.add_supported_context(CT, scu_role=False, scp_role=True)
    servers.append(start_server(ae, ("127.0.0.1", 0), block=False,
                                handlers=[(event, handler(bad))]))  # fmt: skip
    scu = AE(ae_title="SCU")
    scu.dimse_timeout = 10
    for uid in (MPPS, FIND, GET, CT, VERIFICATION):
        scu.add_requested_context(uid)
    with scu.associate("127.0.0.1", servers[-1].address[1], ae_title="SCP") as assoc:
        assert assoc.is_established
        assert send(assoc) == code
        assert assoc.is_established  # answered; the association goes on


@pytest.mark.parametrize(("code", "kept"), [(0x0000, False), (0xB000, True)])
def test_offending_element_only_beside_a_status_that_names_one(servers: list[Server], code: int,
                                                               kept: bool) -> None:  # fmt: skip
    """PS3.7 C.1.1: a Success carries no Offending Element (dropped, as pynetdicom drops it);
    a Warning (C.4.1) does. The Error Comment goes with both."""

    def handler(event: Any) -> Dataset:
        status = Dataset()
        status.Status = code
        status.ErrorComment = "noted"
        status.OffendingElement = [0x00100010]
        return status

    ae = AE(ae_title="SCP")
    ae.add_supported_context(CT)
    servers.append(start_server(ae, ("127.0.0.1", 0), block=False,
                                handlers=[(evt.EVT_C_STORE, handler)]))  # fmt: skip
    scu = AE(ae_title="SCU")
    scu.add_requested_context(CT)
    with scu.associate("127.0.0.1", servers[-1].address[1], ae_title="SCP") as assoc:
        rsp = assoc.send_c_store(ct)
    assert rsp.Status == code and rsp.ErrorComment == "noted"
    assert ("OffendingElement" in rsp) is kept
