"""AE configuration, A-ASSOCIATE-RQ building, negotiation results, and the blocking driver's
behaviour against scripted peers on real loopback sockets (release collision, aborts, silent
peers, garbage), plus the asynchronous operations window against our own server."""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pydicom.examples import ct
from pydicom.uid import generate_uid

from dicomnet.ae import AE, DEFAULT_MAXIMUM_PDU_SIZE
from dicomnet.association import Association, rejection_text
from dicomnet.client import build_rq
from dicomnet.presentation import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    build_context,
    build_role,
)
from dicomnet.sop_sets import query_model_uid, storage_contexts
from dicomnet.transport.base import ConnectError, Driver
from dicomnet.ul.codec import decode_pdu, encode_pdu
from dicomnet.ul.pdu import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    AsyncOpsWindow,
    MaximumLength,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    UserIdentityRQ,
    UserInformation,
)

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


# --- configuration -------------------------------------------------------------------------------


def test_ae_configuration_validation() -> None:
    ae = AE(b"BYTES_TITLE")
    assert ae.ae_title == "BYTES_TITLE"
    with pytest.raises(ValueError):
        AE("")
    with pytest.raises(ValueError):
        AE("A" * 17)
    with pytest.raises(ValueError):
        AE("BAD\\TITLE")
    assert ae.maximum_pdu_size == DEFAULT_MAXIMUM_PDU_SIZE == 262144
    ae.maximum_pdu_size = 0  # unlimited
    with pytest.raises(ValueError):
        ae.maximum_pdu_size = 3
    with pytest.raises(ValueError):
        ae.dimse_timeout = -1
    cx = ae.add_requested_context(CT)
    assert cx.transfer_syntaxes == [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN]
    with pytest.raises(ValueError):
        ae.add_requested_context("1.2.3.abc")
    ae.requested_contexts = storage_contexts(limit=127)
    assert len(ae.requested_contexts) == 127
    ae.add_requested_context(VERIFICATION)
    with pytest.raises(ValueError, match="128"):
        ae.add_requested_context(MR)
    ae.add_supported_context(CT, IMPLICIT_VR_LITTLE_ENDIAN)
    ae.add_supported_context(CT, EXPLICIT_VR_LITTLE_ENDIAN, scp_role=True)
    assert len(ae.supported_contexts) == 1
    assert ae.supported_map() == {CT: [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN]}
    assert ae.supported_contexts[0].scp_role is True


def test_query_model_names() -> None:
    assert query_model_uid("P", "find") == "1.2.840.10008.5.1.4.1.2.1.1"
    assert query_model_uid("S", "get") == "1.2.840.10008.5.1.4.1.2.2.3"
    assert query_model_uid("W", "find") == "1.2.840.10008.5.1.4.31"
    assert query_model_uid("StudyRootQueryRetrieveInformationModelMove", "move") == (
        "1.2.840.10008.5.1.4.1.2.2.2"
    )
    assert query_model_uid("1.2.3.4", "find") == "1.2.3.4"
    with pytest.raises(ValueError):
        query_model_uid("W", "move")
    with pytest.raises(ValueError):
        query_model_uid("nonsense", "find")


def test_build_rq_items() -> None:
    ae = AE("CALLING")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT, scp_role=True)
    ae.add_requested_context(MR, IMPLICIT_VR_LITTLE_ENDIAN)
    identity = UserIdentityRQ(2, 1, b"user", b"secret")
    rq, requested = build_rq(
        ae, ae.requested_contexts, "CALLED", 32768,
        ext_neg=[build_role(MR, scu_role=True, scp_role=True), identity],
        max_operations_invoked=5,
    )  # fmt: skip
    assert [pc.context_id for pc in rq.presentation_contexts] == [1, 3, 5]
    assert [cx.context_id for cx in requested] == [1, 3, 5]
    assert rq.presentation_contexts[2].transfer_syntaxes == (IMPLICIT_VR_LITTLE_ENDIAN,)
    ui = rq.user_information
    assert ui.maximum_length == 32768
    assert ui.implementation_class_uid == ae.implementation_class_uid
    assert ui.async_ops_window == AsyncOpsWindow(5, 1)
    roles = {r.sop_class_uid: (r.scu_role, r.scp_role) for r in ui.role_selections}
    assert roles == {CT: (1, 1), MR: (1, 1)}  # unset scu half keeps the default (1)
    assert ui.user_identity_rq == identity
    kinds = [type(i).__name__ for i in ui.sub_items]
    assert kinds[0] == "MaximumLength" and kinds[-1] == "UserIdentityRQ"
    # the default window 1/1 is never sent (spec-notes: some peers drop the connection)
    rq2, _ = build_rq(ae, [build_context(VERIFICATION)], "CALLED", 16384)
    assert rq2.user_information.async_ops_window is None
    assert rq2.user_information.role_selections == ()
    with pytest.raises(ValueError):
        build_rq(ae, [], "CALLED", 16384)
    with pytest.raises(TypeError):
        build_rq(ae, [build_context(VERIFICATION)], "CALLED", 16384, ext_neg=["junk"])


def test_apply_negotiation_roles_and_results() -> None:
    ae = AE()
    assoc = Association(ae, "requestor")
    rq, _ = build_rq(
        ae,
        [build_context(VERIFICATION), build_context(CT), build_context(MR), build_context("1.2.3")],
        "PEER",
        16384,
        ext_neg=[build_role(CT, scu_role=True, scp_role=True), build_role(MR, scp_role=True)],
        max_operations_invoked=8,
    )
    ac = AAssociateAC(
        "PEER",
        "DICOMNET",
        (
            PresentationContextAC(1, 0, IMPLICIT_VR_LITTLE_ENDIAN),
            PresentationContextAC(3, 0, EXPLICIT_VR_LITTLE_ENDIAN),
            PresentationContextAC(5, 0, EXPLICIT_VR_LITTLE_ENDIAN),
            PresentationContextAC(7, 3, None),
        ),
        UserInformation(
            (
                MaximumLength(4096),
                RoleSelection(CT, 0, 1),  # the acceptor grants only the SCP role
                AsyncOpsWindow(3, 1),
            )
        ),
    )
    assoc.apply_negotiation(rq, ac)
    by_id = {cx.context_id: cx for cx in assoc.accepted_contexts}
    assert (by_id[1].as_scu, by_id[1].as_scp) == (True, False)  # no role item: defaults
    assert (by_id[3].as_scu, by_id[3].as_scp) == (False, True)
    assert (by_id[5].as_scu, by_id[5].as_scp) == (True, False)  # proposed, not answered
    assert [(cx.context_id, cx.result) for cx in assoc.rejected_contexts] == [(7, 3)]
    assert assoc.acceptor.maximum_length == 4096
    assert assoc.async_window == 3
    assert assoc.accepted_context_ids == {1, 3, 5}
    assert assoc.transfer_syntax_of(1) == IMPLICIT_VR_LITTLE_ENDIAN
    assoc.is_established = True
    with pytest.raises(ValueError):
        assoc.find_context(CT)  # we may not be SCU on CT
    assert assoc.find_context(CT, role="scp").context_id == 3
    assert assoc.find_context(MR, [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN]).context_id == 5
    # the same negotiation seen by the acceptor: roles mirrored
    acceptor = Association(ae, "acceptor")
    acceptor.apply_negotiation(rq, ac)
    cts = {cx.context_id: cx for cx in acceptor.accepted_contexts}
    assert (cts[3].as_scu, cts[3].as_scp) == (True, False)
    assert (cts[1].as_scu, cts[1].as_scp) == (False, True)
    assert acceptor.async_window == 1


def test_apply_negotiation_keeps_malformed_peer_uids() -> None:
    """A hostile A-ASSOCIATE-RQ (seen by an acceptor) must not raise while being recorded."""
    rq = AAssociateRQ(
        "ME",
        "PEER",
        (
            PresentationContextRQ(1, "1.2.abc/..", ("1.2.840.10008.1.2\x00",)),
            PresentationContextRQ(3, VERIFICATION + "\x00", ("1.2.840.10008.1.2",)),
        ),
    )
    ac = AAssociateAC(
        "ME",
        "PEER",
        (PresentationContextAC(1, 3, None), PresentationContextAC(3, 0, "1.2.840.10008.1.2")),
    )
    acceptor = Association(AE(), "acceptor")
    acceptor.apply_negotiation(rq, ac)
    assert [cx.abstract_syntax for cx in acceptor.rejected_contexts] == ["1.2.abc/.."]
    assert acceptor.accepted_contexts[0].abstract_syntax == VERIFICATION
    assert acceptor.accepted_contexts[0].as_scp and not acceptor.accepted_contexts[0].as_scu


def test_rejection_text() -> None:
    assert rejection_text(2, 3, 2) == (
        "rejected-transient, service-provider (presentation related function): "
        "local-limit-exceeded"
    )
    assert "reason 9" in rejection_text(1, 1, 9)


# --- scripted peers over loopback --------------------------------------------------------------


class ScriptedPeer:
    """A TCP peer in a thread that runs ``script(conn)`` with helpers to read/write PDUs."""

    def __init__(self, script: Callable[[ScriptedPeer], None]) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.sock: socket.socket | None = None
        self.error: BaseException | None = None
        self.received: list[object] = []
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _run(self, script: Callable[[ScriptedPeer], None]) -> None:
        try:
            self.listener.settimeout(10)
            self.sock, _ = self.listener.accept()
            self.sock.settimeout(10)
            script(self)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            if self.sock is not None:
                self.sock.close()
            self.listener.close()

    def recv_exact(self, n: int) -> bytes:
        assert self.sock is not None
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def read_pdu(self) -> object:
        head = self.recv_exact(6)
        body = self.recv_exact(int.from_bytes(head[2:6], "big"))
        pdu = decode_pdu(head + body)
        self.received.append(pdu)
        return pdu

    def send(self, pdu: object) -> None:
        assert self.sock is not None
        self.sock.sendall(encode_pdu(pdu))  # type: ignore[arg-type]

    def accept_association(self, window: AsyncOpsWindow | None = None) -> AAssociateRQ:
        rq = self.read_pdu()
        assert isinstance(rq, AAssociateRQ)
        items: tuple = (MaximumLength(16384),)
        self.send(
            AAssociateAC(
                rq.called_ae_title,
                rq.calling_ae_title,
                tuple(
                    PresentationContextAC(pc.context_id, 0, pc.transfer_syntaxes[0])
                    for pc in rq.presentation_contexts
                ),
                UserInformation(items),
            )
        )
        return rq

    def join(self) -> None:
        self.thread.join(10)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def echo_ae(**kw: object) -> AE:
    ae = AE("SCU")
    ae.acse_timeout = 5
    ae.dimse_timeout = 5
    for k, v in kw.items():
        setattr(ae, k, v)
    ae.add_requested_context(VERIFICATION)
    return ae


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        assoc = echo_ae().associate("127.0.0.1", port)
    assert not assoc.is_established and not assoc.is_rejected
    assert isinstance(assoc.error, ConnectError)
    assert "refused" in (assoc.failure_reason or "").lower()
    assoc.release()  # harmless


def test_acse_timeout_on_silent_peer() -> None:
    def silent(peer: ScriptedPeer) -> None:
        peer.read_pdu()
        assert peer.sock is not None
        peer.sock.recv(100)  # wait for our A-ABORT / close

    peer = ScriptedPeer(silent)
    t0 = time.monotonic()
    assoc = echo_ae(acse_timeout=0.3).associate("127.0.0.1", peer.port)
    assert time.monotonic() - t0 < 2
    assert not assoc.is_established
    assert "no answer" in (assoc.failure_reason or "")
    peer.join()


def test_rejected_by_scripted_peer() -> None:
    def reject(peer: ScriptedPeer) -> None:
        peer.read_pdu()
        peer.send(AAssociateRJ(2, 3, 1))

    peer = ScriptedPeer(reject)
    assoc = echo_ae().associate("127.0.0.1", peer.port)
    assert assoc.is_rejected
    assert (assoc.result, assoc.result_source, assoc.result_reason) == (2, 3, 1)
    assert "temporary-congestion" in (assoc.failure_reason or "")
    peer.join()


def test_release_collision() -> None:
    """PS3.8 Sta9-Sta12: both sides send A-RELEASE-RQ; we (requestor) answer first."""

    def collide(peer: ScriptedPeer) -> None:
        peer.accept_association()
        assert isinstance(peer.read_pdu(), AReleaseRQ)
        peer.send(AReleaseRQ())  # crossing release request
        assert isinstance(peer.read_pdu(), AReleaseRP)  # requestor answers (AR-9)
        peer.send(AReleaseRP())  # then we answer theirs (acceptor side, Sta12 -> AR-4)

    peer = ScriptedPeer(collide)
    assoc = echo_ae().associate("127.0.0.1", peer.port)
    assert assoc.is_established
    assert isinstance(assoc.dul, Driver)  # the blocking driver satisfies the contract
    assoc.release()
    peer.join()
    assert assoc.is_released and not assoc.is_aborted
    assert assoc.dul.is_closed


def test_peer_abort_and_close() -> None:
    def abort_after_request(peer: ScriptedPeer) -> None:
        peer.accept_association()
        assert isinstance(peer.read_pdu(), PDataTF)  # the C-ECHO-RQ
        peer.send(AAbort(2, 6))

    peer = ScriptedPeer(abort_after_request)
    assoc = echo_ae().associate("127.0.0.1", peer.port)
    status = assoc.send_c_echo()
    peer.join()
    assert len(status) == 0
    assert assoc.is_aborted and (assoc.abort_source, assoc.abort_reason) == (2, 6)
    assert assoc.dul.is_closed

    def close_after_request(peer: ScriptedPeer) -> None:
        peer.accept_association()
        peer.read_pdu()

    peer = ScriptedPeer(close_after_request)
    assoc = echo_ae().associate("127.0.0.1", peer.port)
    assert len(assoc.send_c_echo()) == 0
    peer.join()
    assert assoc.is_aborted
    assert "connection" in (assoc.failure_reason or "")


def test_garbage_from_peer_is_aborted() -> None:
    def http(peer: ScriptedPeer) -> None:
        peer.read_pdu()
        assert peer.sock is not None
        peer.sock.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        abort = peer.read_pdu()  # we answer an unrecognized PDU with A-ABORT 2/1
        assert abort == AAbort(2, 1)

    peer = ScriptedPeer(http)
    assoc = echo_ae().associate("127.0.0.1", peer.port)
    peer.join()
    assert not assoc.is_established
    assert "TLS port?" in (assoc.failure_reason or "")


def test_network_idle_timeout() -> None:
    def silent_after_accept(peer: ScriptedPeer) -> None:
        peer.accept_association()
        peer.read_pdu()  # C-ECHO-RQ, never answered
        assert isinstance(peer.read_pdu(), AAbort)

    peer = ScriptedPeer(silent_after_accept)
    assoc = echo_ae(network_timeout=0.3, dimse_timeout=None).associate("127.0.0.1", peer.port)
    t0 = time.monotonic()
    assert len(assoc.send_c_echo()) == 0
    assert time.monotonic() - t0 < 2
    peer.join()
    assert assoc.is_aborted
    assert "network timeout" in (assoc.failure_reason or "")


def test_idle_requestor_sees_the_peers_release_and_abort() -> None:
    """No thread of ours reads while the program is idle: is_alive() takes in what the peer
    sent meanwhile (a pynetdicom program loops on it), answers an A-RELEASE-RQ (PS3.8 AR-8)
    and reports an A-ABORT. Before, is_alive() stayed True until the next operation."""
    go, sent = threading.Event(), threading.Event()

    def release(peer: ScriptedPeer) -> None:
        peer.accept_association()
        assert go.wait(10)  # once associate() returned: the RQ is not read with the AC
        peer.send(AReleaseRQ())
        sent.set()
        assert isinstance(peer.read_pdu(), AReleaseRP)

    peer = ScriptedPeer(release)
    assoc = echo_ae().associate("127.0.0.1", peer.port)
    assert assoc.is_established and assoc.is_alive()
    go.set()
    assert sent.wait(10)  # over loopback the PDU is in our receive buffer once sent
    assert not assoc.is_alive()  # the release was answered
    peer.join()  # the peer got its A-RELEASE-RP and closed
    assert not assoc.is_alive()
    assert assoc.is_released and not assoc.is_aborted

    def abort(peer: ScriptedPeer) -> None:
        peer.accept_association()
        assert go.wait(10)
        peer.send(AAbort(0, 0))
        sent.set()

    go.clear()
    sent.clear()
    peer = ScriptedPeer(abort)
    assoc = echo_ae().associate("127.0.0.1", peer.port)
    assert assoc.is_alive()
    go.set()
    assert sent.wait(10)
    peer.join()
    # another thread does not receive (it could take a response the driving thread waits
    # for): it reports what is known
    seen: list[bool] = []
    other = threading.Thread(target=lambda: seen.append(assoc.is_alive()))
    other.start()
    other.join(10)
    assert seen == [True] and not assoc.is_aborted
    assert not assoc.is_alive()
    assert assoc.is_aborted and (assoc.abort_source, assoc.abort_reason) == (0, 0)


def test_is_alive_in_a_handler_does_not_receive() -> None:
    """A handler of the peer's request runs inside the receive loop: is_alive() asked there
    must not receive, or a second request already arrived would be answered inside the first
    one's handler (nested, its response sent first)."""
    from dicomnet import events as evt
    from dicomnet.dimse import primitives as DP
    from dicomnet.dimse.fragment import encode_message_pdus
    from dicomnet.dimse.messages import message_from_primitive

    commitment = "1.2.840.10008.1.20.1"
    depth: list[int] = []
    active = [0]

    def on_report(event: object) -> int:
        active[0] += 1
        depth.append(active[0])
        assert event.assoc.is_alive()  # type: ignore[attr-defined]
        active[0] -= 1
        return 0

    def two_reports(peer: ScriptedPeer) -> None:
        rq = peer.accept_association()
        cid = next(pc.context_id for pc in rq.presentation_contexts
                   if pc.abstract_syntax == commitment)  # fmt: skip
        assert peer.sock is not None
        for msg_id in (1, 2):  # back to back, as a peer with an operations window may
            prim = DP.N_EVENT_REPORT(MessageID=msg_id, AffectedSOPClassUID=commitment,
                                     AffectedSOPInstanceUID="1.2.840.10008.1.20.1.1",
                                     EventTypeID=1)  # fmt: skip
            for chunks in encode_message_pdus(cid, message_from_primitive(prim), 16384):
                peer.sock.sendall(b"".join(bytes(c) for c in chunks))
        answered = [peer.read_pdu(), peer.read_pdu()]
        assert all(isinstance(p, PDataTF) for p in answered)
        peer.send(AReleaseRQ())
        assert isinstance(peer.read_pdu(), AReleaseRP)

    peer = ScriptedPeer(two_reports)
    ae = echo_ae()
    ae.add_requested_context(commitment, scu_role=True, scp_role=True)
    assoc = ae.associate("127.0.0.1", peer.port, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    assert assoc.is_established
    assoc.join(timeout=10)  # answers both reports, then the peer's release
    peer.join()
    assert depth == [1, 1]  # one after the other, never one inside the other
    assert assoc.is_released


def test_context_manager_aborts_on_exception() -> None:
    def expect_abort(peer: ScriptedPeer) -> None:
        peer.accept_association()
        assert isinstance(peer.read_pdu(), AAbort)

    peer = ScriptedPeer(expect_abort)
    with pytest.raises(KeyError):
        with echo_ae().associate("127.0.0.1", peer.port) as assoc:
            raise KeyError("boom")
    peer.join()
    assert assoc.is_aborted


# --- asynchronous operations window against our own server ---------------------------------------


@pytest.fixture
def window_server() -> Iterator[tuple[int, dict[str, int]]]:
    from dicomnet.events import EVT_C_STORE

    stats = {"active": 0, "peak": 0, "stored": 0}
    lock = threading.Lock()
    release = threading.Event()

    def on_store(event: object) -> int:
        with lock:
            stats["active"] += 1
            stats["peak"] = max(stats["peak"], stats["active"])
        release.wait(0.05)  # hold each request a little so several overlap
        with lock:
            stats["active"] -= 1
            stats["stored"] += 1
        return 0

    ae = AE("SRV")
    ae.add_supported_context(CT)
    ae.maximum_operations_invoked = ae.maximum_operations_performed = 8
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(EVT_C_STORE, on_store)])
    try:
        yield server.address[1], stats
    finally:
        server.shutdown()


def _instances(n: int) -> list[object]:
    out = []
    for _ in range(n):
        ds = copy.deepcopy(ct)
        ds.SOPInstanceUID = generate_uid()
        out.append(ds)
    return out


def test_async_window_store_many(window_server: tuple[int, dict[str, int]]) -> None:
    port, stats = window_server
    ae = AE("SCU")
    ae.add_requested_context(CT)
    ae.maximum_operations_invoked = 4
    items = _instances(12)
    with ae.associate("127.0.0.1", port) as assoc:
        assert assoc.async_window == 4
        results = list(assoc.store_many(items))
        assert sorted(id(i) for i, _ in results) == sorted(id(i) for i in items)
        assert all(s.Status == 0 for _, s in results)
        # async handles: all sent before any result is asked for
        handles = [assoc.send_c_store_async(ds) for ds in _instances(4)]
        assert [h.result().Status for h in handles] == [0, 0, 0, 0]
    assert stats["stored"] == 16
    assert 2 <= stats["peak"] <= 4


def test_default_window_is_synchronous(window_server: tuple[int, dict[str, int]]) -> None:
    port, stats = window_server
    ae = AE("SCU")
    ae.add_requested_context(CT)
    with ae.associate("127.0.0.1", port) as assoc:
        assert assoc.async_window == 1
        results = list(assoc.store_many(_instances(4)))
        assert [s.Status for _, s in results] == [0, 0, 0, 0]
    assert stats["peak"] == 1


def test_async_associations_run_concurrently(window_server: tuple[int, dict[str, int]]) -> None:
    import asyncio

    port, stats = window_server
    ae = AE("SCU")
    ae.add_requested_context(CT)

    async def client(n: int) -> list[int]:
        assoc = await ae.associate_async("127.0.0.1", port)
        async with assoc:
            assert assoc.is_established
            return [(await assoc.send_c_store(ds)).Status for ds in _instances(n)]

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(client(3) for _ in range(4)))

    t0 = time.monotonic()
    results = asyncio.run(main())
    elapsed = time.monotonic() - t0
    assert results == [[0, 0, 0]] * 4
    assert stats["stored"] == 12
    assert stats["peak"] >= 2  # associations overlapped
    assert elapsed < 12 * 0.05 + 1.5


def test_async_client_uses_the_window(window_server: tuple[int, dict[str, int]]) -> None:
    import asyncio

    port, stats = window_server
    ae = AE("SCU")
    ae.add_requested_context(CT)
    ae.maximum_operations_invoked = 3

    async def main() -> list[int]:
        async with await ae.associate_async("127.0.0.1", port) as assoc:
            assert assoc.async_window == 3
            statuses = await asyncio.gather(*(assoc.send_c_store(ds) for ds in _instances(9)))
            return [s.Status for s in statuses]

    assert asyncio.run(main()) == [0] * 9
    assert stats["stored"] == 9
    assert 2 <= stats["peak"] <= 3
