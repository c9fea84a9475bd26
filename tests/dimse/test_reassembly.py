"""Reassembly of DIMSE messages from PDVs (PS3.7 Annex E, PS3.8 9.3.5), spooling and limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.datasource import DataSource, SpoolFile, SpoolingFactory
from dicomnet.dimse.commands import encode_command
from dicomnet.dimse.fragment import (
    MIN_PDATA_LENGTH,
    Reassembler,
    ReassemblyResourceError,
    fragment,
    scan_command,
)
from dicomnet.dimse.payload import Payload
from dicomnet.errors import DimseError, ProtocolError
from dicomnet.ul.codec import decode_pdu
from dicomnet.ul.pdu import PDV, PDataTF

ECHO = encode_command({0x0002: "1.2.840.10008.1.1", 0x0100: 0x30, 0x0110: 7, 0x0800: 0x0101})
STORE = encode_command(
    {
        0x0002: "1.2.840.10008.5.1.4.1.1.2",
        0x0100: 0x0001,
        0x0110: 1,
        0x0700: 0,
        0x0800: 0x0000,
        0x1000: "1.2.3.4.5",
    }
)


def wire_pdvs(ctx: int, cmd: bytes, data: bytes | None, max_len: int) -> list[PDV]:
    src = None if data is None else DataSource.from_bytes(data)
    out: list[PDV] = []
    for chunks in fragment(ctx, cmd, src, max_len):
        pdu = decode_pdu(b"".join(bytes(c) for c in chunks))
        assert isinstance(pdu, PDataTF)
        out.extend(pdu.pdvs)
    return out


def feed_all(r: Reassembler, pdvs: list[PDV]) -> list[tuple[int, bytes, Payload | None]]:
    done = []
    for i, pdv in enumerate(pdvs):
        res = r.feed_pdv(pdv)
        if res is not None:
            done.append(res)
        else:
            assert i < len(pdvs) - 1, "the last PDV must complete the message"
    return done


def test_scan_command() -> None:
    info = scan_command(STORE)
    assert (info.command_field, info.data_set_type, info.message_id) == (1, 0, 1)
    assert info.has_data_set
    assert not scan_command(ECHO).has_data_set


def test_message_without_dataset_completes_on_last_command_fragment() -> None:
    r = Reassembler({1})
    pdvs = wire_pdvs(1, ECHO, None, MIN_PDATA_LENGTH)
    assert len(pdvs) > 2
    ((ctx, cmd, ds),) = feed_all(r, pdvs)
    assert (ctx, cmd, ds) == (1, ECHO, None)
    assert not r.in_progress


def test_message_with_dataset_completes_on_last_data_fragment() -> None:
    r = Reassembler({3})
    data = os.urandom(50001)
    ((ctx, cmd, ds),) = feed_all(r, wire_pdvs(3, STORE, data, 4096))
    assert ctx == 3 and cmd == STORE
    assert ds is not None and ds.read() == data and ds.path is None


def test_empty_dataset() -> None:
    r = Reassembler({1})
    ((_, _, ds),) = feed_all(r, wire_pdvs(1, STORE, b"", 4096))
    assert ds is not None and ds.size == 0


def test_single_fragment_dataset_is_a_view() -> None:
    r = Reassembler({1})
    buf = bytearray(b"abcd")
    assert r.feed_pdv(PDV(1, 0x03, STORE)) is None
    res = r.feed_pdv(PDV(1, 0x02, memoryview(buf)))
    assert res is not None and res[2] is not None
    buf[0:1] = b"X"
    assert res[2].read() == b"Xbcd"


def test_accepts_odd_length_fragments() -> None:
    r = Reassembler({1})
    cmd = memoryview(STORE)
    pdvs = [PDV(1, 0x01, cmd[:3]), PDV(1, 0x01, cmd[3:10]), PDV(1, 0x03, cmd[10:])]
    pdvs += [PDV(1, 0x00, b"abc"), PDV(1, 0x02, b"de")]
    ((_, c, ds),) = feed_all(r, pdvs)
    assert c == STORE and ds is not None and ds.read() == b"abcde"


def test_callable_acceptance_and_transfer_syntax_label() -> None:
    r = Reassembler(lambda c: c == 9, transfer_syntax_of=lambda c: "1.2.840.10008.1.2")
    ((_, _, ds),) = feed_all(r, wire_pdvs(9, STORE, b"xx", 4096))
    assert ds is not None and ds.transfer_syntax == "1.2.840.10008.1.2"


def test_consecutive_messages_and_shared_pdu() -> None:
    r = Reassembler({1, 3})
    pdvs = wire_pdvs(1, ECHO, None, 0) + wire_pdvs(3, STORE, b"12", 0) + wire_pdvs(1, ECHO, None, 0)
    done = feed_all(r, pdvs)
    assert [d[0] for d in done] == [1, 3, 1]


def test_spool_above_threshold(tmp_path: Path) -> None:
    r = Reassembler({1}, spool_threshold=10000, payloads=SpoolingFactory(str(tmp_path)))
    data = os.urandom(30000)
    pdvs = wire_pdvs(1, STORE, data, 4096)
    seen_spool = None
    result = None
    for pdv in pdvs:
        result = r.feed_pdv(pdv)
        if r.sink is not None:
            assert isinstance(r.sink, SpoolFile)
            seen_spool = r.sink.path
            assert os.path.exists(seen_spool)  # exists while assembling
            # memory holds nothing once spilled: the file has everything received
            assert os.path.getsize(seen_spool) > 10000 - 4096
    assert seen_spool is not None and result is not None
    ds = result[2]
    assert ds is not None and ds.path == seen_spool and ds.read() == data
    ds.close()
    assert not os.path.exists(seen_spool)
    assert os.listdir(tmp_path) == []


def test_below_threshold_stays_in_memory(tmp_path: Path) -> None:
    r = Reassembler({1}, spool_threshold=10000, payloads=SpoolingFactory(str(tmp_path)))
    ((_, _, ds),) = feed_all(r, wire_pdvs(1, STORE, b"x" * 10000, 4096))
    assert ds is not None and ds.path is None
    assert os.listdir(tmp_path) == []


def test_spool_prefix_makes_movable_file(tmp_path: Path) -> None:
    seen = []

    def prefix(ctx: int, cmd: bytes) -> bytes:
        seen.append((ctx, cmd))
        return b"P" * 132

    r = Reassembler({1}, spool_threshold=100, payloads=SpoolingFactory(str(tmp_path), prefix))
    data = os.urandom(1000)
    ((_, _, ds),) = feed_all(r, wire_pdvs(1, STORE, data, 256))
    assert seen == [(1, STORE)]
    assert isinstance(ds, DataSource) and ds.offset == 132 and ds.read() == data
    dest = tmp_path / "out.dcm"
    ds.move_to(dest)
    assert dest.read_bytes() == b"P" * 132 + data


def test_reset_discards_spool(tmp_path: Path) -> None:
    r = Reassembler({1}, spool_threshold=100, payloads=SpoolingFactory(str(tmp_path)))
    pdvs = wire_pdvs(1, STORE, b"x" * 1000, 256)
    for pdv in pdvs[:-1]:
        r.feed_pdv(pdv)
    assert r.sink is not None
    r.reset()
    assert os.listdir(tmp_path) == [] and not r.in_progress


def test_max_message_size_refused(tmp_path: Path) -> None:
    r = Reassembler(
        {1},
        max_message_size=len(STORE) + 5000,
        spool_threshold=100,
        payloads=SpoolingFactory(str(tmp_path)),
    )
    pdvs = wire_pdvs(1, STORE, b"x" * 5002, 1024)
    with pytest.raises(ProtocolError) as exc:
        feed_all(r, pdvs)
    assert (exc.value.abort_source, exc.value.abort_reason) == (2, 6)
    assert not exc.value.local
    assert os.listdir(tmp_path) == []  # the partial spool file is gone
    # exactly at the limit is fine
    r2 = Reassembler({1}, max_message_size=len(STORE) + 5000)
    assert len(feed_all(r2, wire_pdvs(1, STORE, b"x" * 5000, 1024))) == 1


def test_command_too_large_refused() -> None:
    r = Reassembler({1}, max_command_size=100)
    with pytest.raises(ProtocolError) as exc:
        for _ in range(10):
            r.feed_pdv(PDV(1, 0x01, b"\0" * 20))
    assert exc.value.abort_reason == 6


@settings(max_examples=200, deadline=None)
@given(
    max_len=st.one_of(st.integers(MIN_PDATA_LENGTH, 400), st.sampled_from([0, 4096, 16384])),
    data=st.one_of(st.none(), st.binary(max_size=3000)),
    threshold=st.sampled_from([0, 500, 1 << 20]),
)
def test_round_trip_property(max_len: int, data: bytes | None, threshold: int) -> None:
    cmd = ECHO if data is None else STORE
    r = Reassembler({5}, spool_threshold=threshold, payloads=SpoolingFactory())
    ((ctx, c, ds),) = feed_all(r, wire_pdvs(5, cmd, data, max_len))
    assert ctx == 5 and c == cmd
    if data is None:
        assert ds is None
    else:
        assert ds is not None
        with ds:
            assert ds.read() == data


# -- where received data sets go: the injected payload factory (dimse/payload.py) ----------------


class _RecordingSink:
    """A pure DataSink keeping the bytes in memory and recording what the reassembler did."""

    def __init__(self, fail_after: int | None) -> None:
        self.parts: list[bytes] = []
        self.finished: str | None = None
        self.discarded = False
        self.fail_after = fail_after

    def write(self, data: bytes | memoryview) -> None:
        if self.fail_after is not None and len(self.parts) >= self.fail_after:
            raise DimseError("disk full")
        self.parts.append(bytes(data))

    def finish(self, transfer_syntax: str | None) -> Payload:
        self.finished = transfer_syntax
        return Payload.from_bytes(b"".join(self.parts), transfer_syntax)

    def discard(self) -> None:
        self.discarded = True


class _RecordingFactory:
    def __init__(self, fail_after: int | None = None) -> None:
        self.sinks: list[tuple[int, bytes, _RecordingSink]] = []
        self.memory_calls = 0
        self.fail_after = fail_after

    def memory(self, data: bytes | memoryview, transfer_syntax: str | None) -> Payload:
        self.memory_calls += 1
        return Payload.from_bytes(data, transfer_syntax)

    def spool(self, context_id: int, command: bytes) -> _RecordingSink:
        sink = _RecordingSink(self.fail_after)
        self.sinks.append((context_id, command, sink))
        return sink


def test_without_a_factory_everything_stays_in_memory() -> None:
    r = Reassembler({1}, spool_threshold=10)
    data = os.urandom(5000)
    for pdv in wire_pdvs(1, STORE, data, 256):
        assert r.sink is None
        res = r.feed_pdv(pdv)
    assert res is not None and type(res[2]) is Payload and res[2].read() == data


def test_the_factory_gets_a_sink_when_the_threshold_is_crossed() -> None:
    factory = _RecordingFactory()
    r = Reassembler(
        {1}, spool_threshold=1000, payloads=factory, transfer_syntax_of=lambda c: "1.2.840.10008.1.2"
    )
    data = os.urandom(5000)
    pdvs = wire_pdvs(1, STORE, data, 256)
    ((_, _, ds),) = feed_all(r, pdvs)
    ((ctx, command, sink),) = factory.sinks
    assert (ctx, command) == (1, STORE)  # the command is known before the data set is kept
    # the fragments held in memory so far went in first, then every later one, unchanged
    assert b"".join(sink.parts) == data and len(sink.parts) == len(pdvs) - 1
    assert sink.finished == "1.2.840.10008.1.2" and not sink.discarded
    assert ds is not None and ds.read() == data and factory.memory_calls == 0
    # below the threshold the factory makes the in-memory payload: one fragment, no copy
    buf = bytearray(b"abcd")
    assert r.feed_pdv(PDV(1, 0x03, STORE)) is None
    res = r.feed_pdv(PDV(1, 0x02, memoryview(buf)))
    assert res is not None and res[2] is not None and factory.memory_calls == 1
    buf[0:1] = b"X"
    assert res[2].read() == b"Xbcd" and len(factory.sinks) == 1


def test_a_failing_sink_is_a_local_resource_error_not_an_abort() -> None:
    factory = _RecordingFactory(fail_after=2)
    r = Reassembler({1}, spool_threshold=100, payloads=factory)
    pdvs = wire_pdvs(1, STORE, b"x" * 2000, 256)
    for pdv in pdvs[:-1]:
        assert r.feed_pdv(pdv) is None  # drained
    with pytest.raises(ReassemblyResourceError) as exc:
        r.feed_pdv(pdvs[-1])
    assert (exc.value.context_id, exc.value.command) == (1, STORE)
    assert factory.sinks[0][2].discarded and not r.in_progress


def test_reset_discards_the_sink() -> None:
    factory = _RecordingFactory()
    r = Reassembler({1}, spool_threshold=100, payloads=factory)
    for pdv in wire_pdvs(1, STORE, b"x" * 1000, 256)[:-1]:
        r.feed_pdv(pdv)
    sink = r.sink
    assert isinstance(sink, _RecordingSink)
    r.reset()
    assert sink.discarded and r.sink is None


def test_spooling_factory_memory_payloads_can_be_moved(tmp_path: Path) -> None:
    r = Reassembler({1}, payloads=SpoolingFactory(str(tmp_path / "spool")))
    ((_, _, ds),) = feed_all(r, wire_pdvs(1, STORE, b"abcdef", 4096))
    assert isinstance(ds, DataSource) and not ds.is_file
    dest = tmp_path / "kept.bin"
    ds.move_to(dest)  # what a C-STORE handler may do with event.data_source
    assert dest.read_bytes() == b"abcdef" and ds.path == str(dest)
