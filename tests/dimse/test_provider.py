"""DIMSEServiceProvider, method by method, over a fake in-memory association/DUL."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from pydicom import Dataset

from dicomnet.datasource import DataSource, SpoolingFactory
from dicomnet.dimse.commands import decode_command, encode_command
from dicomnet.dimse.fragment import fragment
from dicomnet.dimse.messages import decode_message, message_from_primitive
from dicomnet.dimse.primitives import C_CANCEL, C_ECHO, C_FIND, C_STORE
from dicomnet.dimse.provider import MAX_CANCEL_RQ, DIMSEServiceProvider
from dicomnet.errors import ProtocolError
from dicomnet.ul.codec import decode_pdu
from dicomnet.ul.pdu import PDV, PDataTF

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"


class FakeDUL:
    """Delivers scripted P-DATA-TF PDUs to the provider, one per wait_for_activity call."""

    def __init__(self, assoc: FakeAssoc) -> None:
        self.assoc = assoc
        self.incoming: deque[PDataTF | str] = deque()  # "abort" / "close" end the association
        self.sent: list[list[bytes | memoryview]] = []
        self.is_alive = True
        self.waits: list[float | None] = []
        self.provider: DIMSEServiceProvider | None = None

    sends_file_regions = False

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        self.sent.append(list(chunks))

    def send_pdata_many(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        for chunks in pdus:
            self.send_pdata_chunks(chunks)

    def wait_for_activity(self, deadline: float | None) -> bool:
        self.waits.append(deadline)
        if not self.is_alive:
            return False
        if not self.incoming:
            assert deadline is not None, "a test would hang"
            self.assoc.now = max(self.assoc.now, deadline)
            return False
        item = self.incoming.popleft()
        self.assoc.now += 0.25
        if isinstance(item, str):
            self.is_alive = False
            return False
        assert self.provider is not None
        self.provider.receive_pdata(item)
        return True

    def sent_messages(self) -> list[tuple[int, object]]:
        """Decode what the provider sent (reassembling PDVs naively)."""
        out = []
        cmd = b""
        data = b""
        for chunks in self.sent:
            pdu = decode_pdu(b"".join(bytes(c) for c in chunks))
            assert isinstance(pdu, PDataTF)
            for pdv in pdu.pdvs:
                if pdv.is_command:
                    cmd += bytes(pdv.data)
                    if pdv.is_last and decode_command(cmd)[0x0800] == 0x0101:
                        out.append((pdv.context_id, decode_message(cmd, None)))
                        cmd = b""
                else:
                    data += bytes(pdv.data)
                    if pdv.is_last:
                        out.append((pdv.context_id, decode_message(cmd, data)))
                        cmd, data = b"", b""
        return out


class FakeAssoc:
    def __init__(self, *, timeout: float | None = 10, max_pdu: int = 16384) -> None:
        self.now = 100.0
        self.dimse_timeout = timeout
        self.peer_max_pdata_length = max_pdu
        self.accepted_context_ids = {1, 3}
        self.dul = FakeDUL(self)
        self.ts: dict[int, str] = {1: "1.2.840.10008.1.2", 3: "1.2.840.10008.1.2.1"}

    def clock(self) -> float:
        return self.now

    def transfer_syntax_of(self, context_id: int) -> str | None:
        return self.ts.get(context_id)


def make(**kw: object) -> tuple[FakeAssoc, DIMSEServiceProvider]:
    assoc = FakeAssoc(**kw)  # type: ignore[arg-type]
    # as an association builds it: received data sets are DataSources, spooled above 8 MiB
    provider = DIMSEServiceProvider(
        assoc, payloads=SpoolingFactory(), transfer_syntax_of=assoc.transfer_syntax_of
    )
    assoc.dul.provider = provider
    return assoc, provider


def pdus_for(ctx: int, prim: object, max_len: int = 16384) -> list[PDataTF]:
    msg = message_from_primitive(prim)  # type: ignore[arg-type]
    data = msg.data_set
    if isinstance(data, bytes):
        data = DataSource.from_bytes(data)
    out = []
    for chunks in fragment(ctx, msg.encode_command(), data, max_len):  # type: ignore[arg-type]
        pdu = decode_pdu(b"".join(bytes(c) for c in chunks))
        assert isinstance(pdu, PDataTF)
        out.append(pdu)
    return out


def echo_rq(mid: int) -> C_ECHO:
    return C_ECHO(MessageID=mid, AffectedSOPClassUID=VERIFICATION)


def test_properties() -> None:
    assoc, p = make(timeout=7, max_pdu=4096)
    assert p.assoc is assoc
    assert p.dul is assoc.dul
    assert p.dimse_timeout == 7.0 and isinstance(p.dimse_timeout, float)
    assert p.maximum_pdu_size == 4096
    assoc.dimse_timeout = None
    assert p.dimse_timeout is None
    # queue.Queue's interface over the deque the provider appends to (no lock in this layer)
    assert p.msg_queue.queue is p.queued and isinstance(p.queued, deque)
    assert p.msg_queue.empty() and p.msg_queue.qsize() == 0
    assert p.cancel_rq == {} and p.cancel_req is p.cancel_rq


def test_receive_and_get_msg() -> None:
    _, p = make()
    for pdu in pdus_for(1, echo_rq(5)):
        p.receive_pdata(pdu)
    assert p.peek_msg()[0] == 1
    assert p.msg_queue.qsize() == 1  # peek does not remove
    ctx, prim = p.get_msg()
    assert ctx == 1 and isinstance(prim, C_ECHO)
    assert prim.MessageID == 5 and prim.AffectedSOPClassUID == VERIFICATION
    assert p.get_msg() == (None, None)
    assert p.peek_msg() == (None, None)


def test_receive_dataset_labelled_with_context_transfer_syntax() -> None:
    _, p = make()
    rq = C_STORE(
        MessageID=2,
        AffectedSOPClassUID=CT,
        AffectedSOPInstanceUID="1.2.3",
        Priority=0,
        DataSet=DataSource.from_bytes(b"\x08\x00\x18\x00UI\x06\x001.2.3\x00"),
    )
    for pdu in pdus_for(3, rq, 64):
        p.receive_pdata(pdu)
    ctx, prim = p.get_msg()
    assert ctx == 3 and isinstance(prim, C_STORE)
    ds = prim.DataSet
    assert isinstance(ds, DataSource) and ds.transfer_syntax == "1.2.840.10008.1.2.1"
    assert ds.decode().SOPInstanceUID == "1.2.3"


def test_fifo_order() -> None:
    _, p = make()
    for mid in (1, 2, 3):
        for pdu in pdus_for(1, echo_rq(mid)):
            p.receive_pdata(pdu)
    assert [p.get_msg()[1].MessageID for _ in range(3)] == [1, 2, 3]  # type: ignore[union-attr]


def test_get_msg_block_drives_wait_for_activity() -> None:
    assoc, p = make(timeout=10)
    pdus = pdus_for(1, echo_rq(9), max_len=16)  # several PDUs for one message
    assert len(pdus) > 2
    assoc.dul.incoming.extend(pdus)
    ctx, prim = p.get_msg(block=True)
    assert ctx == 1 and prim is not None and prim.MessageID == 9  # type: ignore[attr-defined]
    assert len(assoc.dul.waits) == len(pdus)
    assert set(assoc.dul.waits) == {110.0}  # one deadline: clock() + dimse_timeout


def test_get_msg_block_returns_none_on_timeout() -> None:
    assoc, p = make(timeout=3)
    assert p.get_msg(block=True) == (None, None)
    assert assoc.now == 103.0 and assoc.dul.waits == [103.0]


def test_get_msg_block_timeout_after_partial_message() -> None:
    assoc, p = make(timeout=3)
    assoc.dul.incoming.extend(pdus_for(1, echo_rq(9), max_len=16)[:2])
    assert p.get_msg(block=True) == (None, None)
    assert p.reassembler.in_progress


def test_get_msg_block_none_on_abort_and_close() -> None:
    for ending in ("abort", "close"):
        assoc, p = make(timeout=None)
        assoc.dul.incoming.append(ending)
        assert p.get_msg(block=True) == (None, None)
        assert not assoc.dul.is_alive
        assert p.get_msg(block=True) == (None, None)  # dead: no wait at all
        assert assoc.dul.waits == [None]


def test_get_msg_returns_queued_message_even_after_abort() -> None:
    assoc, p = make()
    for pdu in pdus_for(1, echo_rq(4)):
        p.receive_pdata(pdu)
    assoc.dul.is_alive = False
    assert p.get_msg(block=True)[1] is not None
    assert p.get_msg(block=True) == (None, None)


def test_cancel_goes_to_cancel_rq_with_limit() -> None:
    _, p = make()
    for mid in range(1, 14):
        for pdu in pdus_for(1, C_CANCEL(MessageIDBeingRespondedTo=mid)):
            p.receive_pdata(pdu)
    assert p.queued == deque()
    assert len(p.cancel_rq) == MAX_CANCEL_RQ == 10
    assert sorted(p.cancel_rq) == list(range(4, 14))  # oldest dropped
    assert isinstance(p.cancel_rq[13], C_CANCEL)
    # none of them named an operation being served: all ignored (PS3.7 9.3.2.3)
    assert not any(p.is_cancelled(mid) for mid in range(1, 14))


def _cancel(p: DIMSEServiceProvider, mid: int) -> None:
    for pdu in pdus_for(1, C_CANCEL(MessageIDBeingRespondedTo=mid)):
        p.receive_pdata(pdu)


def test_cancel_of_an_operation_being_served() -> None:
    _, p = make()
    p.start_operation(5)
    _cancel(p, 6)  # another, unknown operation: ignored
    assert not p.is_cancelled(5) and not p.is_cancelled(6)
    _cancel(p, 5)
    assert p.is_cancelled(5)
    p.end_operation(5)
    assert not p.is_cancelled(5)
    _cancel(p, 5)  # after the final response: ignored, the Message ID may be used again
    p.start_operation(5)
    assert not p.is_cancelled(5)


def test_cancel_of_a_request_still_queued() -> None:
    # the request and its cancel in one read: the cancel arrives before anyone took the
    # request out of the queue, and still cancels it once it is served
    _, p = make()
    find = C_FIND(MessageID=7, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.1", Priority=0,
                  Identifier=DataSource.from_bytes(b"\x10\x00\x10\x00\x00\x00\x00\x00"))  # fmt: skip
    for pdu in pdus_for(1, find):
        p.receive_pdata(pdu)
    _cancel(p, 7)
    (context_id, request), = p.take(lambda prim: prim.Status is None)
    assert (context_id, request.MessageID) == (1, 7) and not p.queued
    p.start_operation(7)
    assert p.is_cancelled(7)


def test_messages_arriving_while_an_operation_runs() -> None:
    assoc, p = make(timeout=5)
    find = C_FIND(
        MessageID=7,
        AffectedSOPClassUID=FIND,
        Priority=0,
        Identifier=DataSource.from_bytes(b"\x10\x00\x10\x00\x00\x00\x00\x00"),
    )
    for pdu in pdus_for(1, find):
        p.receive_pdata(pdu)
    ctx, prim = p.get_msg()
    assert isinstance(prim, C_FIND)
    p.start_operation(7)
    # while the handler produces pending responses, the peer cancels and sends an echo
    assoc.dul.incoming.extend(pdus_for(1, C_CANCEL(MessageIDBeingRespondedTo=7)))
    assoc.dul.incoming.extend(pdus_for(3, echo_rq(8)))
    ctx, nxt = p.get_msg(block=True)
    assert 7 in p.cancel_rq and p.is_cancelled(7)  # the cancel was seen on the way to the echo
    assert ctx == 3 and isinstance(nxt, C_ECHO) and nxt.MessageID == 8
    p.end_operation(7)
    assert not p.is_cancelled(7)


def test_send_msg_fragments_to_peer_maximum() -> None:
    assoc, p = make(max_pdu=4096)
    payload = bytes(range(256)) * 80  # 20480 bytes
    rq = C_STORE(
        MessageID=3,
        AffectedSOPClassUID=CT,
        AffectedSOPInstanceUID="1.2.3.4",
        Priority=0,
        DataSet=DataSource.from_bytes(payload),
    )
    p.send_msg(rq, 3)
    sent = assoc.dul.sent
    assert len(sent) == 1 + -(-len(payload) // 4090)
    assert all(sum(len(c) for c in chunks) - 6 <= 4096 for chunks in sent)
    ((ctx, msg),) = assoc.dul.sent_messages()
    assert ctx == 3
    assert msg.command_set.AffectedSOPInstanceUID == "1.2.3.4"  # type: ignore[attr-defined]
    assert msg.data_set == payload  # type: ignore[attr-defined]


def test_send_response() -> None:
    assoc, p = make()
    p.send_msg(C_ECHO(MessageIDBeingRespondedTo=5, AffectedSOPClassUID=VERIFICATION, Status=0), 1)
    ((_ctx, msg),) = assoc.dul.sent_messages()
    assert type(msg).__name__ == "C_ECHO_RSP"
    assert msg.command_set.Status == 0  # type: ignore[attr-defined]


def test_send_pydicom_dataset_uses_context_transfer_syntax() -> None:
    assoc, p = make()
    ds = Dataset()
    ds.PatientName = "X^Y"
    rq = C_FIND(MessageID=1, AffectedSOPClassUID=FIND, Priority=0, Identifier=ds)
    p.send_msg(rq, 3)  # context 3: explicit VR LE
    ((_, msg),) = assoc.dul.sent_messages()
    assert msg.data_set[4:6] == b"PN"  # type: ignore[index]
    p.send_msg(rq, 1)  # context 1: implicit VR LE
    assert assoc.dul.sent_messages()[1][1].data_set[4:6] != b"PN"  # type: ignore[attr-defined]


def test_hooks_called() -> None:
    _assoc, p = make()
    got: list[str] = []
    p.on_send_dimse_message = lambda m: got.append("send " + type(m).__name__)
    p.on_receive_dimse_message = lambda m: got.append("recv " + type(m).__name__)
    p.send_msg(echo_rq(1), 1)
    for pdu in pdus_for(1, echo_rq(2)):
        p.receive_pdata(pdu)
    assert got == ["send C_ECHO_RQ", "recv C_ECHO_RQ"]


def test_request_with_missing_field_is_answered_not_queued() -> None:
    assoc, p = make()
    invalid: list[Exception] = []
    p.on_invalid_message = invalid.append
    # C-STORE-RQ without AffectedSOPInstanceUID (mandatory)
    cmd = encode_command({0x0002: CT, 0x0100: 0x0001, 0x0110: 11, 0x0700: 0, 0x0800: 0})
    p.receive_pdata(PDataTF((PDV(1, 0x03, cmd), PDV(1, 0x02, b"ab"))))
    assert p.queued == deque()
    ((ctx, rsp),) = assoc.dul.sent_messages()
    assert ctx == 1 and type(rsp).__name__ == "C_STORE_RSP"
    assert rsp.command_set.Status == 0x0120  # type: ignore[attr-defined]
    assert rsp.command_set.MessageIDBeingRespondedTo == 11  # type: ignore[attr-defined]
    assert len(invalid) == 1
    # the association goes on
    for pdu in pdus_for(1, echo_rq(12)):
        p.receive_pdata(pdu)
    assert p.get_msg()[1] is not None


def test_request_with_mistyped_field_is_answered() -> None:
    assoc, p = make()
    cmd = encode_command({0x0002: "1.2/../x", 0x0100: 0x0030, 0x0110: 4, 0x0800: 0x0101})
    p.receive_pdata(PDataTF((PDV(1, 0x03, cmd),)))
    assert p.queued == deque()
    ((_, rsp),) = assoc.dul.sent_messages()
    assert rsp.command_set.Status == 0x0212  # type: ignore[attr-defined]


def test_unparseable_command_propagates_protocol_error() -> None:
    _, p = make()
    cmd = encode_command({0x0100: 0x0030, 0x0800: 0x0101})  # echo request without MessageID
    with pytest.raises(ProtocolError) as exc:
        p.receive_pdata(PDataTF((PDV(1, 0x03, cmd),)))
    assert (exc.value.abort_source, exc.value.abort_reason) == (2, 6)
    with pytest.raises(ProtocolError) as exc:
        p.receive_pdata(PDataTF((PDV(1, 0x03, b"\x00\x00\x00"),)))
    assert exc.value.abort_reason == 6


def test_unaccepted_context_propagates_protocol_error() -> None:
    _, p = make()
    with pytest.raises(ProtocolError) as exc:
        for pdu in pdus_for(5, echo_rq(1)):
            p.receive_pdata(pdu)
    assert (exc.value.abort_source, exc.value.abort_reason) == (2, 5)


def test_spool_failure_answered_with_out_of_resources(tmp_path: Path) -> None:
    assoc, p = make()
    p.reassembler.spool_threshold = 4
    p.reassembler.payloads = SpoolingFactory(str(tmp_path / "does-not-exist"))
    rq = C_STORE(
        MessageID=21,
        AffectedSOPClassUID=CT,
        AffectedSOPInstanceUID="1.2.3",
        Priority=0,
        DataSet=DataSource.from_bytes(b"x" * 100),
    )
    for pdu in pdus_for(1, rq, 40):
        p.receive_pdata(pdu)
    assert p.queued == deque()
    ((_, rsp),) = assoc.dul.sent_messages()
    assert rsp.command_set.Status == 0xA700  # type: ignore[attr-defined]
    assert rsp.command_set.MessageIDBeingRespondedTo == 21  # type: ignore[attr-defined]


def test_two_providers_talk() -> None:
    a_assoc, a = make(max_pdu=64)
    _b_assoc, b = make(max_pdu=64)
    payload = b"\x10\x00\x10\x00\x04\x00\x00\x00AB^C" * 30
    a.send_msg(
        C_STORE(
            MessageID=1,
            AffectedSOPClassUID=CT,
            AffectedSOPInstanceUID="9.8",
            Priority=2,
            DataSet=DataSource.from_bytes(payload),
        ),
        1,
    )
    for chunks in a_assoc.dul.sent:
        pdu = decode_pdu(b"".join(bytes(c) for c in chunks))
        assert isinstance(pdu, PDataTF)
        b.receive_pdata(pdu)
    _ctx, prim = b.get_msg()
    assert isinstance(prim, C_STORE) and prim.Priority == 2
    assert isinstance(prim.DataSet, DataSource) and prim.DataSet.read() == payload


def test_connection_lost_discards_partial_spooled_message(tmp_path: Path) -> None:
    _, p = make()
    p.reassembler.spool_threshold = 4
    p.reassembler.payloads = SpoolingFactory(str(tmp_path))
    for pdu in pdus_for(1, echo_rq(1)):
        p.receive_pdata(pdu)  # the association layer's name for receive_primitive
    rq = C_STORE(
        MessageID=2,
        AffectedSOPClassUID=CT,
        AffectedSOPInstanceUID="1.2.3",
        Priority=0,
        DataSet=DataSource.from_bytes(b"x" * 100),
    )
    for pdu in pdus_for(1, rq, 40)[:-1]:
        p.receive_pdata(pdu)
    assert len(list(tmp_path.iterdir())) == 1
    p.connection_lost()
    assert list(tmp_path.iterdir()) == []
    assert not p.reassembler.in_progress
    assert p.get_msg()[0] == 1  # what was complete is still there


def test_message_property_tracks_the_message_being_received() -> None:
    """`message` is None between messages and describes a message whose command is complete
    while its data set is still arriving (founding document: 'the DIMSE message currently
    being received')."""
    from dicomnet.dimse.commands import encode_command
    from dicomnet.ul.pdu import PDV, PDataTF

    assoc = FakeAssoc()
    provider = DIMSEServiceProvider(assoc)
    assert provider.message is None
    command = encode_command(
        {
            0x00000002: "1.2.840.10008.5.1.4.1.1.2",
            0x00000100: 0x0001,
            0x00000110: 7,
            0x00000700: 0,
            0x00000800: 0x0001,
            0x00001000: "1.2.3.4",
        }
    )
    provider.receive_pdata(PDataTF((PDV(1, 0x03, command),)))
    info = provider.message
    assert info is not None
    assert (info.command_field, info.message_id) == (0x0001, 7)
    provider.receive_pdata(PDataTF((PDV(1, 0x02, b"\x08\x00\x18\x00\x00\x00\x00\x00"),)))
    assert provider.message is None
    assert len(provider.queued) == 1


def test_receive_primitive_takes_a_p_data_primitive() -> None:
    """The founding document's receive_primitive(P_DATA): [context ID, control header +
    fragment] values, PS3.8 7.6 / Annex E.2 -- the same message as the PDUs give."""
    from dicomnet.ul.primitives import P_DATA

    _, p = make()
    for pdu in pdus_for(1, echo_rq(9)):
        primitive = P_DATA.from_pdu(pdu)
        assert all(isinstance(v[1], bytes) for v in primitive.presentation_data_value_list)
        p.receive_primitive(primitive)
    ctx, prim = p.msg_queue.get_nowait()
    assert ctx == 1 and isinstance(prim, C_ECHO) and prim.MessageID == 9
    # our own PDU object is still accepted
    for pdu in pdus_for(3, echo_rq(10)):
        p.receive_primitive(pdu)
    assert p.get_msg()[1].MessageID == 10  # type: ignore[union-attr]
    bad = P_DATA()
    bad.presentation_data_value_list = [[1, b""]]  # no message control header
    with pytest.raises(ProtocolError):
        p.receive_primitive(bad)
