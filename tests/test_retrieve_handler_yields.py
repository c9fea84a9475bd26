"""What a Q/R handler's yields turn into on the wire (PS3.4 C.4.1-C.4.3, Annex Z), against our
own server over loopback, and the identifiers read back by pynetdicom as requestor.

- The count is a promise: once that many sub-operations ran, what the handler still yields is
  ignored (logged) and the final status comes from the counts; code after its last yield runs.
- A handler's failure or warning status ends the operation: the sub-operations not run count
  as failed (the counts add up); its Success after a sub-operation failed or warned is B000; the Failed SOP Instance UID List it gives is sent, else ours
  (possibly empty) -- every final response other than Success carries one.
- Unusable yields get the "unable to process" codes pynetdicom answers (C413, C513, C514, C515).
- Composite Instance Retrieve Without Bulk Data: the sub-operations carry no bulk data
  (PS3.4 Z.1.3, Z.4.2.3), and the handler's own data set is left as it was.
- C-FIND: matches yielded before the handler raised are sent before the failure; a Pending
  item without an identifier is a failure (C312).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.server import Server, start_server

CT = "1.2.840.10008.5.1.4.1.1.2"
SC = "1.2.840.10008.5.1.4.1.1.7"
ELE, ILE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
PATIENT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
PATIENT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
WITHOUT_BULK_GET = "1.2.840.10008.5.1.4.1.2.5.3"


def _ct(n: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CT, f"1.2.826.0.1.3680043.2.1143.{n}"
    ds.PatientID, ds.Modality = "P1", "CT"
    return ds


def _query() -> Dataset:
    q = Dataset()
    q.QueryRetrieveLevel = "PATIENT"
    q.PatientID = "P1"
    return q


def _server(handler: Callable[[Any], Iterator[Any]], event: Any = evt.EVT_C_GET) -> Server:
    ae = AE(ae_title="QRSCP")
    for uid in (PATIENT_GET, PATIENT_MOVE, WITHOUT_BULK_GET):
        ae.add_supported_context(uid, [ELE, ILE])
    for uid in (CT, SC):
        ae.add_supported_context(uid, [ELE, ILE], scu_role=True, scp_role=True)
    return start_server(ae, ("127.0.0.1", 0), block=False, handlers=[(event, handler)])


def _get(server: Server, model: str = PATIENT_GET,
         store_status: int = 0) -> tuple[list[Any], list[Dataset]]:  # fmt: skip
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return store_status

    ae = AE(ae_title="GETSCU")
    ae.add_requested_context(model)
    for uid in (CT, SC):
        ae.add_requested_context(uid, [ELE, ILE], scp_role=True)
    with ae.associate("127.0.0.1", server.address[1], ae_title="QRSCP",
                      evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:  # fmt: skip
        responses = list(assoc.send_c_get(_query(), model))
    return responses, received


def _move(server: Server, dest: str = "DEST") -> list[Any]:
    ae = AE(ae_title="MOVESCU")
    ae.add_requested_context(PATIENT_MOVE)
    with ae.associate("127.0.0.1", server.address[1], ae_title="QRSCP") as assoc:
        return list(assoc.send_c_move(_query(), dest, PATIENT_MOVE))


def _uids(ident: Dataset) -> list[str]:
    value = ident.FailedSOPInstanceUIDList
    return [value] if isinstance(value, str) else list(value)


def test_yields_after_the_announced_count_are_ignored(
    servers: list[Server], caplog: pytest.LogCaptureFixture
) -> None:
    ran_to_the_end: list[bool] = []

    def on_get(event: Any) -> Iterator[Any]:
        yield 2
        for n in range(3):
            yield 0xFF00, _ct(n)
        yield 0xB000, None  # as a pynetdicom handler may end: ignored, the counts decide
        ran_to_the_end.append(True)

    servers.append(_server(on_get))
    with caplog.at_level(logging.WARNING, logger="dicomnet"):
        responses, received = _get(servers[0])
    final, ident = responses[-1]
    assert [r[0].Status for r in responses] == [0xFF00, 0xFF00, 0x0000]
    assert final.NumberOfCompletedSuboperations == 2 and ident is None
    assert [ds.SOPInstanceUID for ds in received] == [_ct(0).SOPInstanceUID, _ct(1).SOPInstanceUID]
    assert "more items than the 2 sub-operations it announced" in caplog.text
    assert ran_to_the_end == []  # one more item was pulled, not the rest

    def exact(event: Any) -> Iterator[Any]:
        yield 1
        yield 0xFF00, _ct(0)
        ran_to_the_end.append(True)  # code after the last yield runs

    servers.append(_server(exact))
    responses, received = _get(servers[1])
    assert responses[-1][0].Status == 0x0000 and len(received) == 1 and ran_to_the_end == [True]


def test_a_handler_failure_status_fails_the_rest_and_sends_its_list(servers: list[Server]) -> None:
    def on_get(event: Any) -> Iterator[Any]:
        yield 3
        yield 0xFF00, _ct(0)
        failed = Dataset()
        failed.FailedSOPInstanceUIDList = ["1.2.3.4", "1.2.3.5"]
        yield 0xC000, failed

    servers.append(_server(on_get))
    responses, received = _get(servers[0])
    final, ident = responses[-1]
    assert final.Status == 0xC000 and len(received) == 1
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations,
            final.NumberOfWarningSuboperations) == (1, 2, 0)  # fmt: skip
    assert "NumberOfRemainingSuboperations" not in final  # only in Pending and Cancel
    assert _uids(ident) == ["1.2.3.4", "1.2.3.5"]


@pytest.mark.parametrize(("store_status", "counts"), [(0xB000, (0, 0, 1)), (0xA700, (0, 1, 0))])
def test_a_handler_success_after_warned_or_failed_sub_operations_is_b000(
    servers: list[Server], store_status: int, counts: tuple[int, int, int]
) -> None:
    """PS3.4 C.4.3.1.4: Success means no sub-operation failed or warned. A handler that ends
    with Success after one did gets B000 with the counts (the sub-operation it announced but
    did not run is not counted as failed: it chose to stop). pynetdicom answers the same."""

    def on_get(event: Any) -> Iterator[Any]:
        yield 2
        yield 0xFF00, _ct(0)
        yield 0x0000, None

    servers.append(_server(on_get))
    responses, received = _get(servers[0], store_status=store_status)
    final, ident = responses[-1]
    assert final.Status == 0xB000 and len(received) == 1
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations,
            final.NumberOfWarningSuboperations) == counts  # fmt: skip
    assert ident is not None and "FailedSOPInstanceUIDList" in ident


def test_a_pending_status_dataset_s_elements_go_with_its_pending_response(
    servers: list[Server],
) -> None:
    """A handler's Pending status Dataset with an Error Comment: the Pending response after
    that sub-operation carries it (pynetdicom's does), the others and the final do not."""

    def on_get(event: Any) -> Iterator[Any]:
        yield 2
        noted = Dataset()
        noted.Status = 0xFF00
        noted.ErrorComment = "from the handler"
        yield noted, _ct(0)
        yield 0xFF00, _ct(1)

    servers.append(_server(on_get))
    responses, received = _get(servers[0])
    assert [s.Status for s, _ in responses] == [0xFF00, 0xFF00, 0x0000] and len(received) == 2
    assert responses[0][0].ErrorComment == "from the handler"
    assert "ErrorComment" not in responses[1][0] and "ErrorComment" not in responses[2][0]


def test_cancel_and_exception_finals_carry_a_failed_list(servers: list[Server]) -> None:
    def cancelled(event: Any) -> Iterator[Any]:
        yield 3
        yield 0xFF00, _ct(0)
        yield 0xFE00, None

    def raising(event: Any) -> Iterator[Any]:
        yield 3
        yield 0xFF00, _ct(0)
        raise RuntimeError("index gone")

    servers.append(_server(cancelled))
    servers.append(_server(raising))
    final, ident = _get(servers[0])[0][-1]
    assert final.Status == 0xFE00 and final.NumberOfRemainingSuboperations == 2
    assert _uids(ident) == [""]  # present and empty: none failed
    final, ident = _get(servers[1])[0][-1]
    assert final.Status == 0xC411 and "index gone" in final.ErrorComment
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 2)
    assert _uids(ident) == [""]


@pytest.mark.parametrize(
    ("event", "items", "code"),
    [
        (evt.EVT_C_GET, ["two"], 0xC413),
        (evt.EVT_C_GET, [], 0xC413),  # no count at all
        (evt.EVT_C_MOVE, [], 0xC514),  # no destination
        (evt.EVT_C_MOVE, ["nowhere"], 0xC515),
        (evt.EVT_C_MOVE, [("127.0.0.1", 1, {"no_such_option": 1}), 1, (0xFF00, _ct(0))], 0xC515),
        (evt.EVT_C_MOVE, [("127.0.0.1", 1), "x"], 0xC513),
    ],
)
def test_unusable_yields_get_the_unable_to_process_codes(
    servers: list[Server], event: Any, items: list[Any], code: int
) -> None:
    def handler(_event: Any) -> Iterator[Any]:
        yield from items

    servers.append(_server(handler, event))
    responses = _get(servers[0])[0] if event is evt.EVT_C_GET else _move(servers[0])
    assert [r[0].Status for r in responses] == [code]


def test_move_handler_names_the_destination_ae_title(servers: list[Server]) -> None:
    """pynetdicom's handlers may give ``ae_title`` with the destination's address: the
    sub-association calls that title, not the Move Destination of the request."""
    got: list[str] = []
    dest = AE(ae_title="REAL-DEST")
    dest.require_called_aet = True  # a wrong called AE title is rejected
    dest.add_supported_context(CT, [ELE, ILE])

    def on_store(event: Any) -> int:
        got.append(str(event.dataset.SOPInstanceUID))
        return 0

    servers.append(start_server(dest, ("127.0.0.1", 0), block=False,
                                handlers=[(evt.EVT_C_STORE, on_store)]))  # fmt: skip
    port = servers[0].address[1]

    def on_move(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", port, {"ae_title": "REAL-DEST"}
        yield 1
        yield 0xFF00, _ct(7)

    servers.append(_server(on_move, evt.EVT_C_MOVE))
    final = _move(servers[1], dest="ALIAS")[-1][0]
    assert final.Status == 0x0000 and got == [_ct(7).SOPInstanceUID]


def _bulky() -> Dataset:
    ds = _ct(9)
    ds.Rows, ds.Columns, ds.BitsAllocated = 2, 2, 16
    ds.PixelData = b"\x01\x00" * 4
    ds.add_new(0x60003000, "OW", b"\xff\x00")  # Overlay Data
    ds.add_new(0x60000010, "US", 2)  # Overlay Rows: not bulk data, kept
    ds.add_new(0x50003000, "OW", b"\x00\x00")  # Curve Data (retired)
    ds.add_new(0x00420011, "OB", b"%PDF")  # Encapsulated Document
    wave = Dataset()
    wave.NumberOfWaveformChannels, wave.WaveformBitsAllocated = 1, 16
    wave.WaveformData = b"\x00\x01"
    ds.WaveformSequence = Sequence([wave])
    return ds


def test_composite_instance_retrieve_without_bulk_data(servers: list[Server]) -> None:
    """PS3.4 Z.4.2.3: C-STORE sub-operations without the Z.1.3 Attributes, everything else
    unchanged; a compressed file is sent without its encapsulated Pixel Data."""
    jpeg = get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")
    assert isinstance(jpeg, str)
    original = dcmread(jpeg)
    bulky = _bulky()

    def on_get(event: Any) -> Iterator[Any]:
        yield 2
        yield 0xFF00, bulky
        yield 0xFF00, jpeg

    servers.append(_server(on_get))
    responses, received = _get(servers[0], WITHOUT_BULK_GET)
    assert responses[-1][0].Status == 0x0000 and len(received) == 2
    plain, from_file = received
    for tag in (0x7FE00010, 0x60003000, 0x50003000, 0x00420011):
        assert tag not in plain and tag not in from_file
    assert plain[0x60000010].value == 2 and plain.Rows == 2 and plain.SOPInstanceUID == bulky.SOPInstanceUID
    assert plain.WaveformSequence[0].NumberOfWaveformChannels == 1
    assert "WaveformData" not in plain.WaveformSequence[0]
    assert from_file.SOPInstanceUID == original.SOPInstanceUID
    assert from_file.Rows == original.Rows and from_file.PatientName == original.PatientName
    # the handler's data set is not modified
    assert "PixelData" in bulky and "WaveformData" in bulky.WaveformSequence[0]

    # the same handler on a plain C-GET sends the bulk data
    responses, received = _get(servers[0])
    assert responses[-1][0].Status == 0x0000
    by_uid = {str(ds.SOPInstanceUID): ds for ds in received}
    assert by_uid[bulky.SOPInstanceUID].PixelData == bulky.PixelData
    assert "PixelData" in by_uid[original.SOPInstanceUID]


def test_pynetdicom_requestor_reads_the_failed_list(servers: list[Server]) -> None:
    """pynetdicom as the C-GET requestor decodes the identifier of a Warning final response
    (it reads one for Cancel, Warning and Failure)."""
    from pynetdicom import AE as PAE
    from pynetdicom import build_role
    from pynetdicom import evt as pevt

    bad = _ct(5)
    del bad.SOPClassUID  # cannot be sent: a failed sub-operation

    def on_get(event: Any) -> Iterator[Any]:
        yield 2
        yield 0xFF00, _ct(4)
        yield 0xFF00, bad

    servers.append(_server(on_get))
    ae = PAE(ae_title="PYNETDICOM")
    ae.add_requested_context(PATIENT_GET)
    ae.add_requested_context(CT, [ELE, ILE])
    assoc = ae.associate("127.0.0.1", servers[0].address[1], ae_title="QRSCP",
                         ext_neg=[build_role(CT, scp_role=True)],
                         evt_handlers=[(pevt.EVT_C_STORE, lambda e: 0x0000)])  # fmt: skip
    try:
        assert assoc.is_established
        responses = list(assoc.send_c_get(_query(), PATIENT_GET))
    finally:
        assoc.release()
    final, ident = responses[-1]
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 1)
    assert ident is not None and _uids(ident) == [bad.SOPInstanceUID]


PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"


def _find(handler: Callable[[Any], Iterator[Any]], servers: list[Server]) -> list[Any]:
    ae = AE(ae_title="QRSCP")
    ae.add_supported_context(PATIENT_FIND, [ELE, ILE])
    servers.append(start_server(ae, ("127.0.0.1", 0), block=False,
                                handlers=[(evt.EVT_C_FIND, handler)]))  # fmt: skip
    scu = AE(ae_title="FINDSCU")
    scu.add_requested_context(PATIENT_FIND)
    with scu.associate("127.0.0.1", servers[-1].address[1], ae_title="QRSCP") as assoc:
        return list(assoc.send_c_find(_query(), PATIENT_FIND))


def test_find_matches_yielded_before_the_handler_raised_are_sent(servers: list[Server]) -> None:
    """They were lost with the batch they were made in: only the failure came back."""

    def on_find(event: Any) -> Iterator[Any]:
        for n in range(3):
            match = Dataset()
            match.PatientID = f"P{n}"
            yield 0xFF00, match
        raise ValueError("index gone")

    responses = _find(on_find, servers)
    assert [r[0].Status for r in responses] == [0xFF00] * 3 + [0xC311]
    assert [r[1].PatientID for r in responses[:3]] == ["P0", "P1", "P2"]
    assert "index gone" in responses[-1][0].ErrorComment


@pytest.mark.parametrize("status", [0xFF00, 0xFF01])
def test_find_pending_without_identifier_is_a_failure(servers: list[Server], status: int) -> None:
    """A Pending response carries the match (PS3.4 C.4.1.1.3.2): a handler yielding None
    gets C312 (pynetdicom's code for an identifier it cannot send), after the earlier match."""

    def on_find(event: Any) -> Iterator[Any]:
        match = Dataset()
        match.PatientID = "P1"
        yield 0xFF00, match
        yield status, None

    responses = _find(on_find, servers)
    assert [r[0].Status for r in responses] == [0xFF00, 0xC312]


@pytest.mark.parametrize("event", [evt.EVT_C_GET, evt.EVT_C_MOVE])
def test_a_count_of_zero_then_a_status_is_that_status(servers: list[Server], event: Any) -> None:
    """How the archive refuses a retrieve whose matches it cannot count (its index is away):
    0, then A701. A count of 0 alone is Success; datasets after it are ignored."""

    def refusing(_event: Any) -> Iterator[Any]:
        if event is evt.EVT_C_MOVE:
            yield "127.0.0.1", 1
        yield 0
        yield 0xA701, None

    def nothing(_event: Any) -> Iterator[Any]:
        if event is evt.EVT_C_MOVE:
            yield "127.0.0.1", 1  # nobody listens there: no association is requested
        yield 0
        yield 0xFF00, _ct(0)

    for handler, code in ((refusing, 0xA701), (nothing, 0x0000)):
        servers.append(_server(handler, event))
        responses = _get(servers[-1])[0] if event is evt.EVT_C_GET else _move(servers[-1])
        assert [r[0].Status for r in responses] == [code]
