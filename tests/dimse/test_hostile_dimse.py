"""Every DIMSE row of the hostile-peer table (shared/spec-notes.md) against the Reassembler.

A-ABORT reasons (PS3.8 Table 9-26), source 2 = service provider.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.datasource import SpoolingFactory
from dicomnet.dimse.commands import encode_command
from dicomnet.dimse.fragment import Reassembler, ReassemblyResourceError, scan_command
from dicomnet.errors import ProtocolError
from dicomnet.ul.pdu import PDV

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
ECHO = encode_command({0x0002: "1.2.840.10008.1.1", 0x0100: 0x30, 0x0110: 7, 0x0800: 0x0101})


def el(elem: int, value: bytes, group: int = 0) -> bytes:
    return struct.pack("<HHI", group, elem, len(value)) + value


def us(v: int) -> bytes:
    return struct.pack("<H", v)


def abort_of(r: Reassembler, pdvs: list[PDV]) -> tuple[int, int]:
    with pytest.raises(ProtocolError) as exc:
        for pdv in pdvs:
            r.feed_pdv(pdv)
    assert not exc.value.local
    assert not r.in_progress  # state is reset: nothing half-assembled survives
    return exc.value.abort_source, exc.value.abort_reason


def test_pdv_on_unaccepted_context() -> None:
    assert abort_of(Reassembler({1}), [PDV(3, 0x03, ECHO)]) == (2, 5)


def test_context_changes_mid_command() -> None:
    r = Reassembler({1, 3})
    assert abort_of(r, [PDV(1, 0x01, ECHO[:10]), PDV(3, 0x03, ECHO[10:])]) == (2, 5)


def test_context_changes_between_command_and_data() -> None:
    r = Reassembler({1, 3})
    assert abort_of(r, [PDV(1, 0x03, STORE), PDV(3, 0x02, b"ab")]) == (2, 5)


def test_data_before_command() -> None:
    assert abort_of(Reassembler({1}), [PDV(1, 0x02, b"ab")]) == (2, 5)


def test_data_before_last_command_fragment() -> None:
    r = Reassembler({1})
    assert abort_of(r, [PDV(1, 0x01, STORE[:10]), PDV(1, 0x00, b"ab")]) == (2, 5)


def test_data_after_message_without_dataset() -> None:
    r = Reassembler({1})
    assert r.feed_pdv(PDV(1, 0x03, ECHO)) is not None
    assert abort_of(r, [PDV(1, 0x02, b"ab")]) == (2, 5)


def test_command_fragment_while_dataset_flows() -> None:
    r = Reassembler({1})
    assert abort_of(r, [PDV(1, 0x03, STORE), PDV(1, 0x00, b"ab"), PDV(1, 0x03, ECHO)]) == (2, 5)


def test_unknown_command_field() -> None:
    cmd = el(0x0100, us(0x0555)) + el(0x0800, us(0x0101))
    assert abort_of(Reassembler({1}), [PDV(1, 0x03, cmd)]) == (2, 4)


@pytest.mark.parametrize(
    "cmd",
    [
        b"",  # nothing at all
        b"\x00\x00\x00",  # truncated element header
        el(0x0100, us(0x30)),  # no CommandDataSetType
        el(0x0800, us(0x0101)),  # no CommandField
        el(0x0100, us(0x30)) + el(0x0800, us(0x0101))[:-1],  # value past the end
        el(0x0100, us(0x30)) + struct.pack("<HHI", 0, 0x800, 0xFFFFFFFF),  # huge length
        el(0x0100, b"\x30\x00\x00\x00") + el(0x0800, us(0x0101)),  # CommandField not US
        el(0x0100, us(0x30)) + el(0x0800, us(0x0101)) + el(0x0010, b"xx", group=8),  # group 8
    ],
)
def test_unparseable_command(cmd: bytes) -> None:
    assert abort_of(Reassembler({1}), [PDV(1, 0x03, cmd)]) == (2, 6)


def test_oversized_command() -> None:
    r = Reassembler({1}, max_command_size=1024)
    assert abort_of(r, [PDV(1, 0x01, b"\0" * 1000), PDV(1, 0x01, b"\0" * 100)]) == (2, 6)


def test_oversized_message_is_refused_before_spooling_more(tmp_path: Path) -> None:
    r = Reassembler(
        {1}, max_message_size=10_000, spool_threshold=10, payloads=SpoolingFactory(str(tmp_path))
    )
    pdvs = [PDV(1, 0x03, STORE)] + [PDV(1, 0x00, b"\0" * 4000)] * 5
    assert abort_of(r, pdvs) == (2, 6)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_spool_dir_drains_then_reports(tmp_path: Path) -> None:
    r = Reassembler({1}, spool_threshold=1, payloads=SpoolingFactory(str(tmp_path / "missing")))
    assert r.feed_pdv(PDV(1, 0x03, STORE)) is None
    assert r.feed_pdv(PDV(1, 0x00, b"abcd")) is None  # failure noted, message drained
    assert r.feed_pdv(PDV(1, 0x00, b"efgh")) is None
    with pytest.raises(ReassemblyResourceError) as exc:
        r.feed_pdv(PDV(1, 0x02, b"ij"))
    assert exc.value.context_id == 1 and exc.value.command == STORE
    assert not r.in_progress
    # the association goes on: the next message is received normally
    assert r.feed_pdv(PDV(1, 0x03, ECHO)) == (1, ECHO, None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_command_bytes_only_protocol_error(raw: bytes) -> None:
    try:
        info = scan_command(raw)
    except ProtocolError as exc:
        assert exc.abort_reason in (4, 6)
    else:
        assert info.command_field in range(0x10000)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 3, 5]), st.integers(0, 3), st.binary(max_size=40)),
        max_size=12,
    )
)
def test_arbitrary_pdv_sequences_only_protocol_error(seq: list[tuple[int, int, bytes]]) -> None:
    r = Reassembler({1, 3}, spool_threshold=16, max_message_size=400, payloads=SpoolingFactory())
    for ctx, control, data in seq:
        try:
            res = r.feed_pdv(PDV(ctx, control, data))
        except ProtocolError as exc:
            assert exc.abort_reason in (4, 5, 6)
            assert not r.in_progress
            continue
        if res is not None and res[2] is not None:
            res[2].close()
    r.reset()
