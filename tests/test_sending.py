"""The library's senders against our own server over loopback: whatever the peer accepts, the
instance gets there (issue 11).

``Association.send_c_store`` with a path, a Dataset or a DataSource; the C-GET sub-operations of
the Q/R SCP for a requestor that takes only some syntaxes; a C-MOVE sub-association; a file the
installed codecs cannot decode (a failed sub-operation with its reason, B000, not A702).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.datasource import DataSource
from dicomnet.server import Server, start_server
from dicomnet.transcode.syntax import decoder_available

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
ELE, ILE, EBE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"
JPEG, J2K = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"

codecs = pytest.mark.skipif(not decoder_available(J2K), reason="dicomnet[codecs] not installed")


def pydicom_file(name: str) -> str:
    p = get_testdata_file(name)
    assert isinstance(p, str)
    return p


class Receiver:
    """A storage SCP accepting ``syntaxes`` only, recording what arrives."""

    def __init__(self, syntaxes: list[str], classes: tuple[str, ...] = (CT, MR, SC, RT_DOSE),
                 ae_title: str = "RECEIVER") -> None:  # fmt: skip
        self.received: dict[str, tuple[str, Dataset]] = {}
        self.lock = threading.Lock()
        ae = AE(ae_title=ae_title)
        for uid in classes:
            ae.add_supported_context(uid, syntaxes)
        self.server: Server = start_server(ae, ("127.0.0.1", 0), block=False,
                                           handlers=[(evt.EVT_C_STORE, self.on_store)])  # fmt: skip
        self.port = self.server.address[1]

    def on_store(self, event: Any) -> int:
        ts = str(event.context.transfer_syntax)
        ds = event.dataset
        with self.lock:
            self.received[str(event.request.AffectedSOPInstanceUID)] = (ts, ds)
        return 0x0000


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.server.shutdown()


def _sender(*contexts: tuple[str, list[str]]) -> AE:
    ae = AE(ae_title="SENDER")
    for uid, syntaxes in contexts:
        for ts in syntaxes:  # one context per syntax, as storescu proposes
            ae.add_requested_context(uid, [ts])
    return ae


@codecs
def test_send_c_store_converts_for_an_uncompressed_only_peer(receivers: list[Receiver]) -> None:
    rx = Receiver([ILE])
    receivers.append(rx)
    ae = _sender((MR, [J2K, ELE, ILE]), (SC, [JPEG, ELE, ILE]), (RT_DOSE, [EBE, ELE, ILE]))
    with ae.associate("127.0.0.1", rx.port, ae_title="RECEIVER") as assoc:
        for name in ("MR_small_jp2klossless.dcm", "SC_rgb_jpeg_dcmtk.dcm", "rtdose_expb.dcm"):
            status = assoc.send_c_store(pydicom_file(name))
            assert status.Status == 0x0000, name
        # a pydicom Dataset with a compressed syntax in its meta, and encoded bytes
        ds = dcmread(pydicom_file("MR_small_jp2klossless.dcm"))
        ds.SOPInstanceUID = "1.2.3.4.5"
        assert assoc.send_c_store(ds).Status == 0x0000
        sc_ds = dcmread(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
        sc_ds.SOPInstanceUID = "1.2.3.4.6"  # the Affected SOP Instance UID must be the data set's
        raw = DataSource.from_dataset(sc_ds, JPEG).read()
        src = DataSource.from_bytes(raw, JPEG)
        assert assoc.send_c_store(src, sop_class_uid=SC, sop_instance_uid="1.2.3.4.6").Status == 0
    assert {ts for ts, _ in rx.received.values()} == {ILE}
    mr = dcmread(pydicom_file("MR_small_jp2klossless.dcm"))
    got = rx.received[mr.SOPInstanceUID][1]
    got.file_meta = Dataset()  # type: ignore[assignment]
    got.file_meta.TransferSyntaxUID = ILE
    assert np.array_equal(got.pixel_array, mr.pixel_array)
    assert rx.received["1.2.3.4.5"][1].PatientName == mr.PatientName
    sc = rx.received[dcmread(pydicom_file("SC_rgb_jpeg_dcmtk.dcm")).SOPInstanceUID][1]
    assert sc.LossyImageCompression == "01"
    dose = rx.received[dcmread(pydicom_file("rtdose.dcm")).SOPInstanceUID][1]
    assert dose.Rows == 10
    assert len(rx.received) == 5


def test_as_is_when_the_syntax_was_accepted(receivers: list[Receiver]) -> None:
    """Byte for byte: a big endian file to a peer that accepts big endian stays big endian."""
    rx = Receiver([EBE, ELE])
    receivers.append(rx)
    ae = _sender((RT_DOSE, [EBE, ELE, ILE]))
    with ae.associate("127.0.0.1", rx.port, ae_title="RECEIVER") as assoc:
        assert assoc.send_c_store(pydicom_file("rtdose_expb.dcm")).Status == 0
    (ts, _), = rx.received.values()
    assert ts == EBE


def test_a_file_that_cannot_be_sent_fails_alone(receivers: list[Receiver], tmp_path: Path) -> None:
    """A truncated file fails locally with its reason; the association goes on."""
    rx = Receiver([ELE, ILE])
    receivers.append(rx)
    good = Path(pydicom_file("CT_small.dcm"))
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(good.read_bytes()[:-1000])
    ae = _sender((CT, [ELE, ILE]))
    with ae.associate("127.0.0.1", rx.port, ae_title="RECEIVER") as assoc:
        from dicomnet.transcode import ConversionError

        with pytest.raises(ConversionError, match=r"ends inside|past the end"):
            assoc.send_c_store(str(cut))
        assert assoc.is_established
        assert assoc.send_c_store(str(good)).Status == 0
    assert len(rx.received) == 1


# --- retrieve: the Q/R SCP's sub-operations convert ---------------------------------------------


def _qr_server(files: list[str]) -> Server:
    ae = AE(ae_title="QRSCP")
    ae.add_supported_context(STUDY_GET, [ELE, ILE])
    ae.add_supported_context(STUDY_MOVE, [ELE, ILE])
    for uid in (CT, MR, SC):
        ae.add_supported_context(uid, [ELE, ILE, J2K, JPEG], scu_role=True, scp_role=True)

    def on_get(event: Any) -> Iterator[Any]:
        yield len(files)
        for f in files:
            yield 0xFF00, f

    return start_server(ae, ("127.0.0.1", 0), block=False,
                        handlers=[(evt.EVT_C_GET, on_get)])  # fmt: skip


def _get(port: int, syntaxes: list[str]) -> tuple[list[Any], dict[str, tuple[str, Dataset]]]:
    received: dict[str, tuple[str, Dataset]] = {}

    def on_store(event: Any) -> int:
        received[str(event.request.AffectedSOPInstanceUID)] = (
            str(event.context.transfer_syntax), event.dataset)
        return 0

    ae = AE(ae_title="GETSCU")
    ae.add_requested_context(STUDY_GET)
    for uid in (CT, MR, SC):
        ae.add_requested_context(uid, syntaxes, scp_role=True)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = "1.2.3"
    with ae.associate("127.0.0.1", port, ae_title="QRSCP",
                      evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:  # fmt: skip
        responses = list(assoc.send_c_get(query, STUDY_GET))
    return responses, received


@codecs
def test_c_get_sub_operations_convert(tmp_path: Path) -> None:
    files = [pydicom_file("MR_small_jp2klossless.dcm"), pydicom_file("SC_rgb_jpeg_dcmtk.dcm"),
             pydicom_file("CT_small.dcm")]  # fmt: skip
    server = _qr_server(files)
    try:
        responses, received = _get(server.address[1], [ILE])
        final = responses[-1][0]
        assert final.Status == 0x0000 and final.NumberOfCompletedSuboperations == 3
        assert {ts for ts, _ in received.values()} == {ILE}
        # the storage role proposed without syntaxes takes everything (DCMTK's +xa): as is
        ae = AE(ae_title="GETSCU")
        cx = ae.add_requested_context(MR, scp_role=True)
        assert J2K in cx.transfer_syntaxes and cx.transfer_syntaxes[0] == ELE
    finally:
        server.shutdown()


@codecs
def test_c_get_undecodable_instance_is_a_failed_sub_operation(tmp_path: Path) -> None:
    """PS3.4 C.4.3.1.4: the sub-operation fails, the others complete, B000 with the Failed SOP
    Instance UID List and an Error Comment that says why."""
    ds = dcmread(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
    ds.SOPInstanceUID = "1.2.3.999"
    start = ds.PixelData.index(b"\xff\xd8")
    ds.PixelData = ds.PixelData[: start + 40] + bytes(len(ds.PixelData) - start - 40)
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    server = _qr_server([str(bad), pydicom_file("CT_small.dcm")])
    try:
        responses, received = _get(server.address[1], [ELE, ILE])
        final, ident = responses[-1]
        assert final.Status == 0xB000
        assert final.NumberOfFailedSuboperations == 1 and final.NumberOfCompletedSuboperations == 1
        failed = ident.FailedSOPInstanceUIDList
        assert (failed if isinstance(failed, str) else list(failed)) in ("1.2.3.999", ["1.2.3.999"])
        assert "conversion failed" in final.ErrorComment and len(final.ErrorComment) <= 64
        assert len(received) == 1
    finally:
        server.shutdown()


@codecs
def test_c_move_sub_association_proposes_and_converts(receivers: list[Receiver]) -> None:
    """The sub-association proposes each instance's own syntax and the uncompressed ones in
    separate contexts; the destination here takes ELE only."""
    rx = Receiver([ELE], ae_title="DEST")
    receivers.append(rx)
    files = [pydicom_file("MR_small_jp2klossless.dcm"), pydicom_file("CT_small.dcm")]
    ae = AE(ae_title="QRSCP")
    ae.add_supported_context(STUDY_MOVE, [ELE, ILE])

    def on_move(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", rx.port
        yield len(files)
        for f in files:
            yield 0xFF00, f

    server = start_server(ae, ("127.0.0.1", 0), block=False, handlers=[(evt.EVT_C_MOVE, on_move)])
    try:
        scu = AE(ae_title="MOVESCU")
        scu.add_requested_context(STUDY_MOVE)
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = "1.2.3"
        with scu.associate("127.0.0.1", server.address[1], ae_title="QRSCP") as assoc:
            responses = list(assoc.send_c_move(query, "DEST", STUDY_MOVE))
        assert responses[-1][0].Status == 0x0000
        assert {ts for ts, _ in rx.received.values()} == {ELE} and len(rx.received) == 2
    finally:
        server.shutdown()
