"""Our SCU against pynetdicom SCPs running in a separate process (real loopback sockets).

The peer script below is written to a temporary directory and started with the venv's Python;
it prints its listening port and serves until its stdin closes. Every test checks what the
peer really did (files it stored, identifiers it returned, statuses it chose), not just that
a call returned.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.examples import ct, mr

from dicomnet.ae import AE
from dicomnet.association import AssociationNotEstablishedError, NoPresentationContextError
from dicomnet.presentation import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    build_role,
)

pytestmark = pytest.mark.interop

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
PR_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PR_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PR_GET = "1.2.840.10008.5.1.4.1.2.1.3"
SR_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MPPS = "1.2.840.10008.3.1.2.3.3"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
PRINTER = "1.2.840.10008.5.1.1.16"
FILM_SESSION = "1.2.840.10008.5.1.1.1"

PEER = r'''
import sys, time, os
from pydicom import Dataset, dcmread
from pydicom.examples import ct, mr
from pynetdicom import AE, evt, StoragePresentationContexts, build_role
from pynetdicom.sop_class import Verification

out_dir = sys.argv[1]
options = sys.argv[2:]
ae = AE("PNSCP")
if "require-called" in options:
    ae.require_called_aet = True
if "calling-only-GOOD" in options:
    ae.require_calling_aet = ["GOOD"]
ae.maximum_pdu_size = 4096 if "small-pdu" in options else 16384
ae.add_supported_context(Verification)
for cx in StoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"],
                             scu_role=True, scp_role=True)
for uid in ["1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.1.2",
            "1.2.840.10008.5.1.4.1.2.1.3", "1.2.840.10008.5.1.4.1.2.2.1",
            "1.2.840.10008.3.1.2.3.3", "1.2.840.10008.1.20.1", "1.2.840.10008.5.1.1.16",
            "1.2.840.10008.5.1.1.1"]:
    ae.add_supported_context(uid)
ae.add_requested_context(ct.SOPClassUID)  # for C-MOVE sub-associations
ae.add_requested_context(mr.SOPClassUID)
PORT = None

def store(event):
    ds = event.dataset
    ds.file_meta = event.file_meta
    if ds.get("PatientID") == "ABORT":
        event.assoc.abort()
        return 0
    ds.save_as(os.path.join(out_dir, ds.SOPInstanceUID + ".dcm"), enforce_file_format=True)
    if ds.get("PatientID") == "WARN":
        status = Dataset(); status.Status = 0xB000; status.ErrorComment = "coerced"
        return status
    return 0

def echo(event):
    return 0

def find(event):
    q = event.identifier
    if q.PatientID == "HANG":
        time.sleep(3)
    if q.PatientID == "FAIL":
        status = Dataset(); status.Status = 0xA900; status.ErrorComment = "no match model"
        status.OffendingElement = [0x00100020]
        yield status, None
        return
    n = 50 if q.PatientID == "SLOW" else 3
    for i in range(n):
        if event.is_cancelled:
            yield 0xFE00, None
            return
        ds = Dataset()
        ds.QueryRetrieveLevel = "PATIENT"
        ds.PatientName = "PATIENT^%d" % i
        ds.PatientID = "ID%d" % i
        if q.PatientID == "SLOW":
            time.sleep(0.05)
        yield 0xFF00, ds

def datasets():
    return [ct, mr]

def get(event):
    items = datasets()
    yield len(items)
    for ds in items:
        if event.is_cancelled:
            yield 0xFE00, None
            return
        yield 0xFF00, ds

def move(event):
    if event.move_destination != "PNSCP":
        yield None, None
        return
    yield "127.0.0.1", PORT
    items = datasets()
    yield len(items)
    for ds in items:
        yield 0xFF00, ds

def nget(event):
    ds = Dataset(); ds.PatientName = "N^GET"
    ds.PatientID = ",".join("%08X" % int(t) for t in event.request.AttributeIdentifierList)
    return 0, ds

def ncreate(event):
    ds = event.attribute_list; ds.PatientID = "CREATED"
    return 0, ds

def nset(event):
    ds = event.modification_list; ds.PatientID = "SET"
    return 0, ds

def naction(event):
    ds = Dataset(); ds.PatientID = "ACT%d" % event.action_type
    return 0, ds

def ndelete(event):
    return 0x0112  # No such SOP instance

def nevent(event):
    ds = Dataset(); ds.PatientID = "EVT%d" % event.event_type
    return 0, ds

def user_id(event):
    if event.user_id_type == 2:
        ok = event.primary_field == b"user" and event.secondary_field == b"pass"
    else:
        ok = event.primary_field == b"jwt"
    return ok, (b"token" if ok else None)

handlers = [(evt.EVT_USER_ID, user_id), (evt.EVT_C_STORE, store), (evt.EVT_C_ECHO, echo), (evt.EVT_C_FIND, find),
            (evt.EVT_C_GET, get), (evt.EVT_C_MOVE, move), (evt.EVT_N_GET, nget),
            (evt.EVT_N_CREATE, ncreate), (evt.EVT_N_SET, nset), (evt.EVT_N_ACTION, naction),
            (evt.EVT_N_DELETE, ndelete), (evt.EVT_N_EVENT_REPORT, nevent)]
srv = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
PORT = srv.server_address[1]
print(PORT, flush=True)
sys.stdin.read()
srv.shutdown()
'''


class Peer:
    def __init__(self, tmp: Path, *options: str) -> None:
        script = tmp / "peer.py"
        script.write_text(textwrap.dedent(PEER))
        self.out = tmp / "received"
        self.out.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.out), *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError("pynetdicom peer did not start")
        self.port = int(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    p = Peer(tmp_path_factory.mktemp("pn"))
    yield p
    p.stop()


def make_ae(**kw: object) -> AE:
    ae = AE("DICOMNET")
    ae.acse_timeout = 10
    ae.dimse_timeout = 10
    for k, v in kw.items():
        setattr(ae, k, v)
    for uid in (VERIFICATION, CT, MR, PR_FIND, PR_MOVE, PR_GET, SR_FIND, MPPS,
                STORAGE_COMMITMENT, PRINTER, FILM_SESSION):  # fmt: skip
        ae.add_requested_context(uid)
    return ae


def test_echo_and_negotiated_values(peer: Peer) -> None:
    ae = make_ae()
    with ae.associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        assert assoc.is_established
        status = assoc.send_c_echo()
        assert status.Status == 0x0000
        assert assoc.acceptor.maximum_length == 16384
        assert assoc.acceptor.implementation_class_uid  # pynetdicom's own UID
        assert {cx.abstract_syntax for cx in assoc.accepted_contexts} >= {VERIFICATION, CT}
        assert all(cx.transfer_syntax for cx in assoc.accepted_contexts)
    assert assoc.is_released and not assoc.is_established and not assoc.is_aborted


def test_store_dataset_and_file(peer: Peer, tmp_path: Path) -> None:
    ae = AE()
    ae.add_requested_context(CT, IMPLICIT_VR_LITTLE_ENDIAN)
    ae.add_requested_context(MR, EXPLICIT_VR_LITTLE_ENDIAN)
    path = tmp_path / "mr.dcm"
    mr.save_as(path, enforce_file_format=True)
    with ae.associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        assert assoc.send_c_store(ct).Status == 0
        assert assoc.send_c_store(str(path)).Status == 0
    for ref in (ct, mr):
        got = dcmread(peer.out / f"{ref.SOPInstanceUID}.dcm")
        assert got.PixelData == ref.PixelData
        assert got.PatientName == ref.PatientName
    ts = dcmread(peer.out / f"{ct.SOPInstanceUID}.dcm").file_meta.TransferSyntaxUID
    assert ts == IMPLICIT_VR_LITTLE_ENDIAN


def test_store_warning_status_carries_error_comment(peer: Peer) -> None:
    ds = copy.deepcopy(ct)
    ds.PatientID = "WARN"
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.8.9.1"
    with make_ae().associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        status = assoc.send_c_store(ds)
    assert status.Status == 0xB000
    assert status.ErrorComment == "coerced"


def test_store_small_peer_pdu(tmp_path: Path) -> None:
    p = Peer(tmp_path, "small-pdu")
    try:
        ae = AE()
        ae.add_requested_context(CT)
        with ae.associate("127.0.0.1", p.port, ae_title="PNSCP") as assoc:
            assert assoc.peer_max_pdata_length == 4096
            assert assoc.send_c_store(ct).Status == 0
        got = dcmread(p.out / f"{ct.SOPInstanceUID}.dcm")
        assert got.PixelData == ct.PixelData
    finally:
        p.stop()


def test_find_yields_each_match(peer: Peer) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"
    query.PatientName = ""
    with make_ae().associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        results = list(assoc.send_c_find(query, "P"))
        assert [s.Status for s, _ in results] == [0xFF00, 0xFF00, 0xFF00, 0x0000]
        assert [str(i.PatientName) for _, i in results[:3] if i is not None] == [
            "PATIENT^0", "PATIENT^1", "PATIENT^2"
        ]  # fmt: skip
        assert results[-1][1] is None
        # failure with OffendingElement and ErrorComment; long model name also accepted
        query.PatientID = "FAIL"
        (status, ident), = list(
            assoc.send_c_find(query, "PatientRootQueryRetrieveInformationModelFind")
        )
        assert status.Status == 0xA900 and ident is None
        assert status.ErrorComment == "no match model"
        assert status["OffendingElement"].value == 0x00100020  # one AT value


def test_find_cancel(peer: Peer) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "SLOW"
    with make_ae().associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        statuses = []
        for status, _ in assoc.send_c_find(query, "P", msg_id=7):
            statuses.append(status.Status)
            if len(statuses) == 2:
                assoc.send_c_cancel(7)
        assert statuses[-1] == 0xFE00
        assert 2 <= statuses.count(0xFF00) < 50
        assert assoc.send_c_echo().Status == 0  # the association is still usable


def test_get_receives_substores(peer: Peer) -> None:
    received: list[Dataset] = []

    def on_store(event: object, sink: list[Dataset]) -> int:
        sink.append(event.dataset)  # type: ignore[attr-defined]
        return 0

    from dicomnet.events import EVT_C_STORE

    ae = AE()
    ae.add_requested_context(PR_GET)
    ae.add_requested_context(CT, scp_role=True)
    ae.add_requested_context(MR)
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"
    with ae.associate(
        "127.0.0.1",
        peer.port,
        ae_title="PNSCP",
        ext_neg=[build_role(MR, scp_role=True)],
        evt_handlers=[(EVT_C_STORE, on_store, [received])],  # extra handler arguments
    ) as assoc:
        assert assoc.find_context(CT, role="scp").as_scp
        results = list(assoc.send_c_get(query, "P"))
    final = results[-1][0]
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == 2
    assert sorted(str(d.SOPInstanceUID) for d in received) == sorted(
        [ct.SOPInstanceUID, mr.SOPInstanceUID]
    )
    assert received[0].PixelData in (ct.PixelData, mr.PixelData)


def test_get_without_scp_role_fails_suboperations(peer: Peer) -> None:
    ae = AE()
    ae.add_requested_context(PR_GET)
    ae.add_requested_context(CT)
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"
    with ae.associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        results = list(assoc.send_c_get(query, "P"))
    final = results[-1][0]
    # no SCP role negotiated: pynetdicom cannot send the C-STOREs; nothing completes
    assert final.get("NumberOfCompletedSuboperations", 0) == 0
    assert final.Status != 0xFF00


def test_move_to_peer_itself(peer: Peer) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"
    for ref in (ct, mr):
        (peer.out / f"{ref.SOPInstanceUID}.dcm").unlink(missing_ok=True)
    with make_ae().associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        results = list(assoc.send_c_move(query, "PNSCP", "P"))
        assert results[-1][0].Status == 0x0000
        assert results[-1][0].NumberOfCompletedSuboperations == 2
        bad = list(assoc.send_c_move(query, "UNKNOWN", "P"))
        assert bad[-1][0].Status == 0xA801  # move destination unknown
    for ref in (ct, mr):
        assert (peer.out / f"{ref.SOPInstanceUID}.dcm").exists()


def test_all_six_n_operations(peer: Peer) -> None:
    ds = Dataset()
    ds.PatientName = "N^OPS"
    with make_ae().associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        status, attrs = assoc.send_n_get([0x00100010, (0x0010, 0x0020)], PRINTER, "1.2.840.10008.5.1.1.17")
        assert status.Status == 0 and attrs is not None
        assert attrs.PatientID == "00100010,00100020"
        status, attrs = assoc.send_n_create(ds, MPPS, "1.2.3.4")
        assert status.Status == 0 and attrs.PatientID == "CREATED" and attrs.PatientName == "N^OPS"
        status, attrs = assoc.send_n_set(ds, MPPS, "1.2.3.4")
        assert status.Status == 0 and attrs.PatientID == "SET"
        status, reply = assoc.send_n_action(ds, 1, STORAGE_COMMITMENT, "1.2.840.10008.1.20.1.1")
        assert status.Status == 0 and reply.PatientID == "ACT1"
        assert status.ActionTypeID == 1
        status = assoc.send_n_delete(FILM_SESSION, "1.2.3.4.5")
        assert status.Status == 0x0112
        status, reply = assoc.send_n_event_report(ds, 2, MPPS, "1.2.3.4")
        assert status.Status == 0 and reply.PatientID == "EVT2"


def test_no_context_and_not_established_errors(peer: Peer) -> None:
    ae = AE()
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context("1.2.3.4.5.6.7")  # unknown abstract syntax: rejected by the peer
    assoc = ae.associate("127.0.0.1", peer.port, ae_title="PNSCP")
    try:
        assert [cx.result for cx in assoc.rejected_contexts] == [3]
        with pytest.raises(NoPresentationContextError):
            assoc.send_c_store(ct)
    finally:
        assoc.release()
    with pytest.raises(AssociationNotEstablishedError):
        assoc.send_c_echo()


def test_peer_abort_mid_store(peer: Peer) -> None:
    ds = copy.deepcopy(ct)
    ds.PatientID = "ABORT"
    assoc = make_ae().associate("127.0.0.1", peer.port, ae_title="PNSCP")
    status = assoc.send_c_store(ds)
    assert len(status) == 0  # no response: empty Dataset
    assert assoc.is_aborted and not assoc.is_established
    assert assoc.failure_reason
    assert assoc.dul.is_closed


def test_dimse_timeout_aborts(peer: Peer) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "HANG"
    ae = make_ae()
    ae.dimse_timeout = 0.5
    assoc = ae.associate("127.0.0.1", peer.port, ae_title="PNSCP")
    t0 = time.monotonic()
    results = list(assoc.send_c_find(query, "P"))
    assert time.monotonic() - t0 < 2.5
    assert len(results) == 1 and len(results[0][0]) == 0 and results[0][1] is None
    assert assoc.is_aborted
    assert "DIMSE timeout" in (assoc.failure_reason or "")


def test_reject_called_ae(tmp_path: Path) -> None:
    p = Peer(tmp_path, "require-called", "calling-only-GOOD")
    try:
        ae = make_ae()
        assoc = ae.associate("127.0.0.1", p.port, ae_title="WRONG")
        assert assoc.is_rejected and not assoc.is_established
        assert (assoc.result, assoc.result_source, assoc.result_reason) == (1, 1, 7)
        assert "called-AE-title-not-recognized" in (assoc.rejection_text or "")
        assoc = ae.associate("127.0.0.1", p.port, ae_title="PNSCP")
        assert (assoc.result, assoc.result_source, assoc.result_reason) == (1, 1, 3)
        ae.ae_title = "GOOD"
        with ae.associate("127.0.0.1", p.port, ae_title="PNSCP") as assoc:
            assert assoc.send_c_echo().Status == 0
    finally:
        p.stop()


def test_async_client_operations(peer: Peer) -> None:
    import asyncio

    from dicomnet.events import EVT_C_STORE

    got: list[str] = []

    def on_store(event: object) -> int:
        got.append(str(event.dataset.SOPInstanceUID))  # type: ignore[attr-defined]
        return 0

    ae = make_ae()
    ae.add_requested_context(CT, scp_role=True)
    ae.add_requested_context(MR, scp_role=True)
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"

    async def main() -> None:
        assoc = await ae.associate_async(
            "127.0.0.1", peer.port, ae_title="PNSCP", evt_handlers=[(EVT_C_STORE, on_store)]
        )
        async with assoc:
            assert assoc.is_established
            assert (await assoc.send_c_echo()).Status == 0
            ds = copy.deepcopy(ct)
            ds.SOPInstanceUID = "1.2.3.4.5.6.7.8.9.77"
            assert (await assoc.send_c_store(ds)).Status == 0
            found = [(s.Status, i) async for s, i in assoc.send_c_find(query, "P")]
            assert [st for st, _ in found] == [0xFF00] * 3 + [0]
            assert str(found[0][1].PatientName) == "PATIENT^0"
            retrieved = [s async for s, _ in assoc.send_c_get(query, "P")]
            assert retrieved[-1].Status == 0 and retrieved[-1].NumberOfCompletedSuboperations == 2
            status, attrs = await assoc.send_n_get([0x00100010, 0x00100020], PRINTER, "1.2.840.10008.5.1.1.17")
            assert status.Status == 0 and attrs.PatientName == "N^GET"
            assert (await assoc.send_n_delete(FILM_SESSION, "1.2.3")).Status == 0x0112
        assert assoc.is_released

        # abort by the peer in the middle of a C-STORE: empty status, aborted
        bad = copy.deepcopy(ct)
        bad.PatientID = "ABORT"
        assoc = await ae.associate_async("127.0.0.1", peer.port, ae_title="PNSCP")
        assert len(await assoc.send_c_store(bad)) == 0
        assert assoc.is_aborted

        # rejected / refused
        rejected = await ae.associate_async("127.0.0.1", 1, ae_title="PNSCP")
        assert not rejected.is_established and "cannot connect" in rejected.failure_reason

    asyncio.run(main())
    assert sorted(got) == sorted([ct.SOPInstanceUID, mr.SOPInstanceUID])
    assert (peer.out / "1.2.3.4.5.6.7.8.9.77.dcm").exists()


def test_store_raw_dataset_file_without_meta(peer: Peer, tmp_path: Path) -> None:
    """A file holding a bare Implicit VR data set (no preamble, no meta): decoded and re-encoded."""
    from dicomnet.dimse.dataset import encode_dataset

    ds = copy.deepcopy(ct)
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.8.9.88"
    raw = tmp_path / "raw.dcm"
    raw.write_bytes(encode_dataset(ds, IMPLICIT_VR_LITTLE_ENDIAN))  # group 0002 left out
    assert raw.read_bytes()[:2] == b"\x08\x00"  # starts with group 0008
    ae = AE()
    ae.add_requested_context(CT, EXPLICIT_VR_LITTLE_ENDIAN)
    with ae.associate("127.0.0.1", peer.port, ae_title="PNSCP") as assoc:
        assert assoc.send_c_store(raw).Status == 0
    got = dcmread(peer.out / "1.2.3.4.5.6.7.8.9.88.dcm")
    assert got.file_meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
    assert got.PixelData == ct.PixelData and got.PatientName == ct.PatientName


def test_user_identity_negotiation(peer: Peer) -> None:
    from dicomnet.ul.pdu import UserIdentityRQ

    ae = make_ae()
    good = UserIdentityRQ(2, 1, b"user", b"pass")
    with ae.associate("127.0.0.1", peer.port, ae_title="PNSCP", ext_neg=[good]) as assoc:
        assert assoc.is_established
        assert assoc.requestor.user_identity == good
    jwt = UserIdentityRQ(5, 1, b"jwt")
    with ae.associate("127.0.0.1", peer.port, ae_title="PNSCP", ext_neg=[jwt]) as assoc:
        assert assoc.is_established
        assert assoc.acceptor.user_identity_response == b"token"  # 59H, PS3.7 D.3.3.7.2
    bad = ae.associate(
        "127.0.0.1", peer.port, ae_title="PNSCP",
        user_identity=UserIdentityRQ(2, 1, b"user", b"wrong"),
    )  # fmt: skip
    assert bad.is_rejected and not bad.is_established


def test_storescu_converts_for_pynetdicom(peer: Peer) -> None:
    """The peer takes Explicit/Implicit VR Little Endian only (issue 11): compressed, big
    endian and deflated files from pydicom's test data all arrive, decoded pixels equal."""
    import numpy as np
    from pydicom.data import get_testdata_file

    from dicomnet.transcode.syntax import decoder_available
    from tests.cli.helpers import run_tool

    if not decoder_available("1.2.840.10008.1.2.4.90"):
        pytest.skip("dicomnet[codecs] not installed")
    names = ["MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
             "SC_rgb_jpeg_dcmtk.dcm", "rtdose_expb.dcm", "image_dfl.dcm"]  # fmt: skip
    paths = [get_testdata_file(n) for n in names]
    assert all(isinstance(p, str) for p in paths)
    r = run_tool(["storescu", "127.0.0.1", str(peer.port), "-aec", "PNSCP",
                  *(str(p) for p in paths)])  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "6 stored" in r.stdout
    for name, path in zip(names, paths, strict=True):
        ref = dcmread(str(path))
        got = dcmread(peer.out / f"{ref.SOPInstanceUID}.dcm")
        assert got.file_meta.TransferSyntaxUID in (EXPLICIT_VR_LITTLE_ENDIAN,
                                                   IMPLICIT_VR_LITTLE_ENDIAN), name  # fmt: skip
        if name != "rtdose_expb.dcm":  # 32-bit OW: pydicom and PS3.5 8.2 disagree (see corpus)
            assert np.array_equal(got.pixel_array, ref.pixel_array), name
