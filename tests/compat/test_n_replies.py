"""What ``send_n_*`` returns as the data set of a DIMSE-N response (PS3.7 10.1), as a pynetdicom
program expects it: an empty ``Dataset`` for a Success or Warning response that carries none
(pynetdicom's ``send_n_get`` & co. return ``Dataset()`` there, and programs iterate it), None
for a failure. Against our own server and against a real pynetdicom SCP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.server import Server, start_server

MPPS = "1.2.840.10008.3.1.2.3.3"
UID = "1.2.826.0.1.3680043.2.1143.77"


def _mod() -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    return ds


SENDS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "N-GET": (evt.EVT_N_GET, lambda a: a.send_n_get([0x00400252], MPPS, UID)),
    "N-SET": (evt.EVT_N_SET, lambda a: a.send_n_set(_mod(), MPPS, UID)),
    "N-CREATE": (evt.EVT_N_CREATE, lambda a: a.send_n_create(_mod(), MPPS, UID)),
    "N-ACTION": (evt.EVT_N_ACTION, lambda a: a.send_n_action(_mod(), 1, MPPS, UID)),
    "N-EVENT-REPORT": (evt.EVT_N_EVENT_REPORT,
                       lambda a: a.send_n_event_report(_mod(), 1, MPPS, UID)),
}


def _ours(event: Any, status: int, servers: list[Server]) -> int:
    ae = AE(ae_title="NSCP")
    ae.add_supported_context(MPPS, scu_role=True, scp_role=True)
    servers.append(start_server(ae, ("127.0.0.1", 0), block=False,
                                handlers=[(event, lambda e: (status, None))]))  # fmt: skip
    return servers[-1].address[1]


def _send(port: int, send: Callable[[Any], Any], ext_neg: list[Any] | None = None) -> Any:
    ae = AE(ae_title="NSCU")
    ae.add_requested_context(MPPS, scu_role=True, scp_role=True)
    with ae.associate("127.0.0.1", port, ae_title="NSCP", ext_neg=ext_neg) as assoc:
        assert assoc.is_established
        return send(assoc)


@pytest.mark.parametrize("service", sorted(SENDS))
@pytest.mark.parametrize(("status", "empty"), [(0x0000, True), (0x0001, True), (0x0110, False)])
def test_a_reply_without_a_data_set(servers: list[Server], service: str, status: int,
                                    empty: bool) -> None:  # fmt: skip
    event, send = SENDS[service]
    got_status, reply = _send(_ours(event, status, servers), send)
    assert got_status.Status == status
    if empty:
        assert isinstance(reply, Dataset) and len(reply) == 0
        assert list(reply) == []  # what a program iterating it sees
    else:
        assert reply is None


def test_against_a_pynetdicom_scp() -> None:
    """The same answer from a real pynetdicom N-GET SCP whose handler returns no data set."""
    from pynetdicom import AE as PAE
    from pynetdicom import evt as pevt

    ae = PAE(ae_title="NSCP")
    ae.add_supported_context(MPPS)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(pevt.EVT_N_GET, lambda e: (0x0000, None))])  # fmt: skip
    try:
        status, reply = _send(server.server_address[1], SENDS["N-GET"][1])
    finally:
        server.shutdown()
    assert status.Status == 0x0000 and isinstance(reply, Dataset) and len(reply) == 0


@pytest.mark.parametrize("service", sorted(SENDS))
def test_a_reply_that_cannot_be_encoded_is_a_processing_failure(servers: list[Server],
                                                                service: str) -> None:  # fmt: skip
    """The handler returns a reply that is no data set, or one pydicom cannot encode: 0110H
    at once (PS3.7 C.4.4). It was encoded only when sent, failed there, and the request was
    never answered: the requestor waited for its DIMSE timeout."""
    event, send = SENDS[service]
    unencodable = Dataset()
    unencodable.add_new(0x00280071, "US or SS", 1)  # an ambiguous VR pydicom cannot resolve
    for reply in (lambda: None, unencodable):
        ae = AE(ae_title="NSCP")
        ae.add_supported_context(MPPS, scu_role=True, scp_role=True)
        servers.append(start_server(ae, ("127.0.0.1", 0), block=False,
                                    handlers=[(event, lambda e, r=reply: (0x0000, r))]))  # fmt: skip
        scu = AE(ae_title="NSCU")
        scu.dimse_timeout = 10
        scu.add_requested_context(MPPS, scu_role=True, scp_role=True)
        with scu.associate("127.0.0.1", servers[-1].address[1], ae_title="NSCP") as assoc:
            status, got = send(assoc)
            assert status.Status == 0x0110 and got is None
            assert assoc.is_established  # answered, not timed out


def test_a_request_data_set_that_cannot_be_encoded_raises_value_error(servers: list[Server]) -> None:
    """pynetdicom raises ValueError for a data set it cannot encode; ours is a DimseError
    and a ValueError (EncodeError), raised before anything is sent: the association stays."""
    from dicomnet.errors import DimseError, EncodeError

    bad = Dataset()
    bad.add_new(0x00280071, "US or SS", 1)
    port = _ours(evt.EVT_N_ACTION, 0x0000, servers)
    ae = AE(ae_title="NSCU")
    ae.add_requested_context(MPPS)
    with ae.associate("127.0.0.1", port, ae_title="NSCP") as assoc:
        with pytest.raises(ValueError, match="cannot encode the data set") as info:
            assoc.send_n_action(bad, 1, MPPS, UID)
        assert isinstance(info.value, DimseError) and isinstance(info.value, EncodeError)
        assert assoc.is_established
        status, _ = assoc.send_n_action(_mod(), 1, MPPS, UID)
        assert status.Status == 0x0000


@pytest.mark.parametrize("service", ["N-GET", "N-SET", "N-CREATE"])
def test_a_status_naming_attributes_reaches_the_requestor(servers: list[Server],
                                                          service: str) -> None:  # fmt: skip
    """PS3.7 C.4.2: an Attribute list error (0107H) names the attributes in Attribute
    Identifier List (0000,1005). A handler's status Dataset carrying it had it dropped; read
    back by our requestor and by pynetdicom's (which has a place for it in N-GET and N-SET
    statuses)."""
    from pynetdicom import AE as PAE

    event, send = SENDS[service]

    def handler(_event: Any) -> tuple[Dataset, None]:
        status = Dataset()
        status.Status = 0x0107
        status.AttributeIdentifierList = [0x00100020, 0x00100010]
        return status, None

    ae = AE(ae_title="NSCP")
    ae.add_supported_context(MPPS)
    servers.append(start_server(ae, ("127.0.0.1", 0), block=False, handlers=[(event, handler)]))
    port = servers[-1].address[1]
    status, _ = _send(port, send)
    assert status.Status == 0x0107
    assert list(status.AttributeIdentifierList) == [0x00100020, 0x00100010]

    pae = PAE(ae_title="NSCU")
    pae.add_requested_context(MPPS)
    assoc = pae.associate("127.0.0.1", port, ae_title="NSCP")
    try:
        assert assoc.is_established
        status, _ = send(assoc)
    finally:
        assoc.release()
    assert status.Status == 0x0107
    if service != "N-CREATE":  # pynetdicom's requestor reads (0000,1005) of N-GET/N-SET only
        assert list(status.AttributeIdentifierList) == [0x00100020, 0x00100010]
