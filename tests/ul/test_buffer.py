"""ReceiveBuffer: reassembly from arbitrary chunks, early header checks, zero-copy receive."""

from __future__ import annotations

import os
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomnet.errors import PDUDecodeError, ProtocolError
from dicomnet.ul.buffer import ReceiveBuffer
from dicomnet.ul.codec import PDU_HEADER, decode_pdu, encode_pdu, pdata_header
from dicomnet.ul.pdu import PDU, PDV, AAbort, AReleaseRQ, PDataTF
from tests.ul import strategies as S

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _drain(buf: ReceiveBuffer) -> list[bytes]:
    out: list[bytes] = []
    while (pdu := buf.next_pdu()) is not None:
        out.append(bytes(pdu))
    return out


def _split(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)] if sizes else len(data)
        chunks.append(data[pos : pos + n])
        pos += n
        i += 1
    return chunks


def _recv_into(buf: ReceiveBuffer, chunks: list[bytes]) -> None:
    """Deliver ``chunks`` the way a socket.recv_into loop would."""
    for chunk in chunks:
        pos = 0
        while pos < len(chunk):
            target = buf.get_write_buffer()
            n = min(len(target), len(chunk) - pos)
            target[:n] = chunk[pos : pos + n]
            buf.commit(n)
            pos += n


@SETTINGS
@given(st.lists(S.pdus, min_size=1, max_size=5), st.lists(st.integers(1, 700), max_size=10))
def test_random_chunks_give_back_each_pdu(pdus: list[PDU], sizes: list[int]) -> None:
    encoded = [encode_pdu(p) for p in pdus]
    stream = b"".join(encoded)
    fed, received = ReceiveBuffer(0), ReceiveBuffer(0)
    for chunk in _split(stream, sizes):
        fed.feed(chunk)
    _recv_into(received, _split(stream, sizes))
    assert _drain(fed) == encoded
    assert _drain(received) == encoded
    assert fed.pending_bytes == 0 and received.pending_bytes == 0


@SETTINGS
@given(st.lists(S.pdus, min_size=1, max_size=3))
def test_one_byte_at_a_time(pdus: list[PDU]) -> None:
    encoded = [encode_pdu(p) for p in pdus]
    stream = b"".join(encoded)
    buf = ReceiveBuffer(0)
    got: list[bytes] = []
    for i in range(len(stream)):
        buf.feed(stream[i : i + 1])
        got.extend(_drain(buf))
    assert got == encoded
    assert [decode_pdu(g) for g in got] == pdus
    one = ReceiveBuffer(0)
    _recv_into(one, [stream[i : i + 1] for i in range(len(stream))])
    assert _drain(one) == encoded


def test_partial_pdu_is_not_returned() -> None:
    data = encode_pdu(PDataTF((PDV(1, 3, b"abcdef"),)))
    buf = ReceiveBuffer(16384)
    buf.feed(data[:-1])
    assert buf.next_pdu() is None
    assert buf.pending_bytes == len(data) - 1
    buf.feed(data[-1:])
    assert bytes(buf.next_pdu() or b"") == data
    assert buf.next_pdu() is None


def test_views_stay_valid_after_later_calls() -> None:
    first = encode_pdu(PDataTF((PDV(1, 0, b"A" * 100),)))
    second = encode_pdu(PDataTF((PDV(1, 2, b"B" * 100),)))
    buf = ReceiveBuffer(16384)
    _recv_into(buf, [first])
    view = buf.next_pdu()
    assert view is not None
    _recv_into(buf, [second, first])
    assert bytes(view) == first
    assert _drain(buf) == [second, first]


def test_body_is_received_straight_into_the_pdu_buffer() -> None:
    payload = bytes(range(256)) * 64  # 16 KB
    header = pdata_header(1, 2, len(payload))
    buf = ReceiveBuffer(32768, header_read_size=64)
    scratch = buf.get_write_buffer()
    assert len(scratch) == 64
    scratch[:12] = header
    buf.commit(12)
    target = buf.get_write_buffer()
    assert len(target) == len(payload)  # the whole rest of this PDU, nothing more
    target[:] = payload
    buf.commit(len(payload))
    pdu = buf.next_pdu()
    assert pdu is not None
    assert pdu.obj is target.obj  # the PDU is the very buffer the body was received into
    decoded = decode_pdu(pdu)
    assert isinstance(decoded, PDataTF) and decoded.pdvs[0].data == payload


def test_sizehint_caps_the_body_view() -> None:
    buf = ReceiveBuffer(0)
    buf.feed(pdata_header(1, 2, 1000))
    assert len(buf.get_write_buffer(100)) == 100
    assert len(buf.get_write_buffer()) == 1000


def test_commit_beyond_the_buffer_is_a_local_error() -> None:
    buf = ReceiveBuffer(0, header_read_size=16)
    with pytest.raises(ProtocolError) as info:
        buf.commit(17)
    assert info.value.local
    buf.feed(pdata_header(1, 2, 10))
    with pytest.raises(ProtocolError):
        buf.commit(11)


def _error(buf: ReceiveBuffer, data: bytes) -> PDUDecodeError:
    with pytest.raises(PDUDecodeError) as info:
        buf.feed(data)
    assert info.value.abort_source == 2 and not info.value.local
    return info.value


def test_forged_4gb_header_is_refused_before_allocating() -> None:
    buf = ReceiveBuffer(16384)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        err = _error(buf, PDU_HEADER.pack(4, 0xFFFFFFFF))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert err.abort_reason == 6
    assert grown < 100_000


def test_pdata_limit_is_checked_on_the_header() -> None:
    buf = ReceiveBuffer(4096)
    buf.feed(PDU_HEADER.pack(4, 4096) + bytes(4096 - 10))  # exactly the limit: accepted
    assert _error(ReceiveBuffer(4096), PDU_HEADER.pack(4, 4097)).abort_reason == 6


def test_pdata_limit_checked_when_header_arrives_byte_by_byte() -> None:
    buf = ReceiveBuffer(4096)
    header = PDU_HEADER.pack(4, 1 << 30)
    for i in range(5):
        buf.feed(header[i : i + 1])
    assert _error(buf, header[5:]).abort_reason == 6


def test_associate_cap() -> None:
    buf = ReceiveBuffer(0, max_associate_length=1000)
    buf.feed(PDU_HEADER.pack(1, 1000))
    assert _error(ReceiveBuffer(0, 1000), PDU_HEADER.pack(2, 1001)).abort_reason == 6


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_unlimited_pdata_forged_4gb_header_costs_no_memory() -> None:
    buf = ReceiveBuffer(0)
    before = _rss()
    buf.feed(PDU_HEADER.pack(4, 0xFFFFFFFF))
    target = buf.get_write_buffer()
    assert len(target) == 0xFFFFFFFF
    target[:4] = b"\x00\x00\x00\x02"
    buf.commit(4)
    assert buf.pending_bytes == 10
    assert _rss() - before < 64 << 20
    del target


def test_large_pdu_round_trips_through_a_lazily_backed_buffer() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB: above the bytearray threshold
    data = encode_pdu(PDataTF((PDV(3, 2, payload), PDV(3, 0, b"tail"))))
    buf = ReceiveBuffer(0)
    _recv_into(buf, _split(data, [65536]))
    view = buf.next_pdu()
    assert view is not None and len(view) == len(data)
    pdu = decode_pdu(view)
    assert isinstance(pdu, PDataTF)
    assert pdu.pdvs[0].data == payload and pdu.pdvs[1] == PDV(3, 0, b"tail")


@pytest.mark.parametrize("pdu_type", [3, 5, 6, 7])
@pytest.mark.parametrize("length", [0, 3, 5, 0xFFFFFFFF])
def test_fixed_pdus_with_length_not_4_are_reason_6(pdu_type: int, length: int) -> None:
    assert _error(ReceiveBuffer(0), PDU_HEADER.pack(pdu_type, length)).abort_reason == 6


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x00\x00\x00\x00\x00\x04", b"\x08"])
def test_unknown_pdu_type_is_reason_1(data: bytes) -> None:
    buf = ReceiveBuffer(0)
    if len(data) < 6:
        buf.feed(data)
        assert buf.next_pdu() is None
        with pytest.raises(PDUDecodeError) as info:
            buf.feed(bytes(6 - len(data)))
        assert info.value.abort_reason == 1
    else:
        assert _error(buf, data).abort_reason == 1


def test_errors_are_sticky_and_earlier_pdus_still_delivered() -> None:
    good = encode_pdu(AReleaseRQ())
    buf = ReceiveBuffer(0)
    err = _error(buf, good + b"\x09\x00\x00\x00\x00\x04" + encode_pdu(AAbort()))
    assert bytes(buf.next_pdu() or b"") == good
    with pytest.raises(PDUDecodeError) as again:
        buf.next_pdu()
    assert again.value is err
    with pytest.raises(PDUDecodeError):
        buf.feed(b"x")
    with pytest.raises(PDUDecodeError):
        buf.get_write_buffer()


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        ReceiveBuffer(-1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 64), max_size=8))
def test_arbitrary_bytes_only_raise_pdu_decode_error(data: bytes, sizes: list[int]) -> None:
    buf = ReceiveBuffer(1024, max_associate_length=4096)
    try:
        for chunk in _split(data, sizes):
            buf.feed(chunk)
            while (pdu := buf.next_pdu()) is not None:
                decode_pdu(pdu)
    except PDUDecodeError as exc:
        assert exc.abort_reason in (1, 4, 5, 6)
    # whatever happened, no more than the limits was ever allocated for one PDU
    assert buf.pending_bytes <= 4096 + 6


def test_pdata_split_over_many_reads_with_small_scratch() -> None:
    pdus = [
        encode_pdu(PDataTF((PDV(1, i & 3, bytes([i]) * (i * 37 % 5000 + 1)),))) for i in range(40)
    ]
    stream = b"".join(pdus)
    buf = ReceiveBuffer(8192, header_read_size=6)
    _recv_into(buf, _split(stream, [1500]))
    assert _drain(buf) == pdus
    pdu = decode_pdu(struct.pack(">BxI", 4, 8) + struct.pack(">IBB", 4, 1, 3) + b"ab")
    assert isinstance(pdu, PDataTF) and pdu.pdvs[0].data == b"ab"
