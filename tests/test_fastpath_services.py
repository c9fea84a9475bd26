"""Fast paths of the SCU/SCP service layer (issue 6): each gives what the general code gave.

The status Dataset built from a copied blank state, the cached context search, the response
primitives the services copy from a validated request, the lazily built handler event, the
receive buffer's whole-PDU copy -- plus end-to-end echo and store over a real association.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.dimse import primitives as P
from dicomnet.dimse.commands import ELEMENTS, KEYWORD_TO_TAG
from dicomnet.server import Server, inline, start_server
from dicomnet.services.call import OneShotService, ServiceCall
from dicomnet.services.dispatch import answer
from dicomnet.services.responses import blank_dataset, status_dataset
from dicomnet.services.storage import STORAGE
from dicomnet.services.verification import VERIFICATION as VERIFICATION_SERVICE
from dicomnet.ul.buffer import ReceiveBuffer
from dicomnet.ul.codec import encode_pdu
from dicomnet.ul.pdu import PDV, AAbort, AReleaseRQ, PDataTF
from tests.dimse.strategies import PRIMITIVES

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"

RESPONSES = st.one_of(*(s for name, s in PRIMITIVES.items() if name.endswith("_RSP")))


# --- status_dataset ------------------------------------------------------------------------


def _reference_status(rsp: P.DIMSEPrimitive) -> Dataset:
    """The status Dataset through pydicom's ordinary API."""
    ds = Dataset()
    for keyword, value in rsp.params().items():
        if keyword in ("MessageID", "MessageIDBeingRespondedTo", *rsp.DATASET_FIELDS):
            continue
        tag = KEYWORD_TO_TAG[keyword]
        ds[tag] = DataElement(tag, ELEMENTS[tag].vr, list(value) if isinstance(value, tuple) else value)
    return ds


@settings(max_examples=200, deadline=None)
@given(RESPONSES)
def test_status_dataset_equals_the_pydicom_built_one(rsp: P.DIMSEPrimitive) -> None:
    fast, slow = status_dataset(rsp), _reference_status(rsp)
    assert list(fast.keys()) == list(slow.keys())
    for elem in slow:
        got = fast[elem.tag]
        assert (got.VR, got.value) == (elem.VR, elem.value)
        if elem.VR == "UI":
            assert type(got.value) is UID
    assert fast == slow


def test_blank_datasets_are_independent_and_complete() -> None:
    a, b = blank_dataset(), blank_dataset()
    assert sorted(vars(a)) == sorted(vars(Dataset()))
    a.PatientName = "X"
    a.private_block(0x0011, "ME", create=True)
    assert "PatientName" not in b and len(b) == 0
    assert vars(b)["_private_blocks"] == {}
    assert status_dataset(None) == Dataset() and len(status_dataset(None)) == 0


# --- verification / storage responses copied from the request ---------------------------------


def _call(request: P.DIMSEPrimitive, service: OneShotService, handler: Any = None) -> ServiceCall:
    return ServiceCall(None, 1, None, request, service.event_type, handler)  # type: ignore[arg-type]


def test_echo_response_equals_the_validated_one() -> None:
    call = _call(P.C_ECHO(MessageID=9, AffectedSOPClassUID=VERIFICATION), VERIFICATION_SERVICE)
    rsp = answer(VERIFICATION_SERVICE, call)
    expected = P.C_ECHO(MessageIDBeingRespondedTo=9, AffectedSOPClassUID=VERIFICATION, Status=0)
    assert rsp == expected
    assert not call.event_built  # answered without a handler: no event was built


@pytest.mark.parametrize(
    ("result", "status", "comment"),
    [(0xB000, 0xB000, None), (None, 0xC002, "a status must be"),
     (True, 0xC002, "a status must be"), (Dataset(), 0xC001, "a status Dataset without"),
     (0x10000, 0xC211, "ValueError")],
)  # fmt: skip
def test_store_response_equals_the_validated_one(result: Any, status: int, comment: Any) -> None:
    """A handler's int or status Dataset is the response's status; what is no status at all
    is pynetdicom's C002 (C001: a Dataset without Status), a code out of range the handler
    failure C211."""
    request = P.C_STORE(
        MessageID=3, AffectedSOPClassUID=CT, AffectedSOPInstanceUID="1.2.3", Priority=0,
        DataSet=b"xx",
    )  # fmt: skip
    call = _call(request, STORAGE, lambda event: result)
    rsp = answer(STORAGE, call)
    assert isinstance(rsp, P.C_STORE)
    assert (rsp.MessageIDBeingRespondedTo, rsp.AffectedSOPClassUID) == (3, CT)
    assert (rsp.AffectedSOPInstanceUID, rsp.Status) == ("1.2.3", status)
    assert (rsp.ErrorComment or "").startswith(comment or "")
    assert call.event_built and call.event.request is request


def test_service_call_event_is_built_on_demand_with_the_cancel_check() -> None:
    cancelled: set[int] = set()
    call = ServiceCall(
        "assoc", 1, "cx", P.C_ECHO(MessageID=4, AffectedSOPClassUID=VERIFICATION),  # type: ignore[arg-type]
        evt.EVT_C_ECHO, cancel_check=lambda: 4 in cancelled,
    )  # fmt: skip
    assert not call.is_cancelled and not call.event_built
    cancelled.add(4)
    assert call.is_cancelled
    event = call.event
    assert event is call.event  # built once
    assert (event.assoc, event.event, event.context) == ("assoc", evt.EVT_C_ECHO, "cx")
    assert event.is_cancelled and call.is_cancelled
    cancelled.clear()
    assert not event.is_cancelled


# --- receive buffer: whole PDUs copied out of one chunk ----------------------------------------


def _pdus() -> list[bytes]:
    return [
        encode_pdu(PDataTF((PDV(1, 3, b"\x01\x02" * n),))) for n in (1, 5, 300)
    ] + [encode_pdu(AReleaseRQ()), encode_pdu(AAbort(0, 0))]


@pytest.mark.parametrize("chunk", [1, 5, 6, 7, 64, 1 << 16])
def test_buffer_gives_the_same_pdus_whatever_the_chunking(chunk: int) -> None:
    stream = b"".join(_pdus())
    buf = ReceiveBuffer(16384, header_read_size=1024)
    for i in range(0, len(stream), chunk):
        buf.feed(stream[i : i + chunk])
    got = []
    while (view := buf.next_pdu()) is not None:
        got.append(bytes(view))
    assert got == _pdus()


def test_buffer_fast_path_refuses_a_bad_header_after_good_pdus() -> None:
    good = _pdus()[0]
    buf = ReceiveBuffer(16384)
    with pytest.raises(Exception, match="unrecognized PDU type 47H"):
        buf.feed(good + b"GET / HTTP/1.1\r\n")
    assert bytes(buf.next_pdu() or b"") == good
    with pytest.raises(Exception, match="unrecognized PDU type 47H"):
        buf.next_pdu()
    with pytest.raises(Exception, match="unrecognized PDU type 47H"):
        buf.feed(good)  # sticky


# --- end to end --------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[Server]:
    ae = AE(ae_title="FAST")
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(CT)
    stored: list[Any] = []

    def on_store(event: Any) -> int:
        stored.append((event.request.AffectedSOPInstanceUID, bytes(event.data_source.read())))
        return 0

    srv = start_server(
        ae, ("127.0.0.1", 0), block=False, handlers=[(evt.EVT_C_STORE, inline(on_store))]
    )
    assert srv is not None
    srv.stored = stored  # type: ignore[attr-defined]
    yield srv
    srv.shutdown()


def test_many_echoes_and_stores_on_one_association(server: Server) -> None:
    ae = AE(ae_title="CLIENT")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT)
    assoc = ae.associate("127.0.0.1", server.address[1], ae_title="FAST")
    assert assoc.is_established
    try:
        cx = assoc.find_context(VERIFICATION)
        assert assoc.find_context(VERIFICATION) is cx  # cached
        assert assoc.find_context(CT).abstract_syntax == CT
        for _ in range(200):
            status = assoc.send_c_echo()
            assert status.Status == 0 and status.AffectedSOPClassUID == VERIFICATION
            assert type(status.AffectedSOPClassUID) is UID
        status = assoc.send_c_echo(msg_id=7)
        assert status.Status == 0
        with pytest.raises(Exception, match="not an unsigned 16-bit value"):
            assoc.send_c_echo(msg_id=70000)
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID, ds.PatientName = CT, "1.2.3.4", "A^B"
        status = assoc.send_c_store(ds)
        assert (status.Status, status.AffectedSOPInstanceUID) == (0, "1.2.3.4")
        assert server.stored[-1][0] == "1.2.3.4"  # type: ignore[attr-defined]
    finally:
        assoc.release()


def test_find_context_cache_follows_a_new_negotiation(server: Server) -> None:
    ae = AE(ae_title="CLIENT")
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", server.address[1], ae_title="FAST")
    try:
        cx = assoc.find_context(VERIFICATION)
        assoc.accepted_contexts = []
        with pytest.raises(Exception, match="no accepted presentation context"):
            assoc.find_context(VERIFICATION)
        assoc.accepted_contexts = [cx]
        assert assoc.find_context(VERIFICATION) is cx
    finally:
        assoc.release()


def test_uid_memo_is_bounded_and_only_remembers_valid_uids() -> None:
    from dicomnet import uid as uid_mod

    uid_mod._KNOWN_VALID.clear()
    assert not uid_mod.is_valid_uid("1.02.3")
    assert not uid_mod.is_valid_uid("1.2." + "3" * 70)
    assert uid_mod._KNOWN_VALID == {}
    for i in range(uid_mod._KNOWN_VALID_MAX + 10):
        assert uid_mod.is_valid_uid(f"1.2.{i + 1}")
    assert 0 < len(uid_mod._KNOWN_VALID) <= uid_mod._KNOWN_VALID_MAX
    assert uid_mod.is_valid_uid("1.2.3") and not uid_mod.is_valid_uid("1.2.03")

    class Weird(str):
        pass

    uid_mod._KNOWN_VALID.clear()
    assert uid_mod.is_valid_uid(Weird("1.2.840"))  # subclasses are checked, never memoised
    assert uid_mod._KNOWN_VALID == {}
