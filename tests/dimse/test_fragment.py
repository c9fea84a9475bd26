"""Fragmentation of DIMSE messages into P-DATA-TF PDUs (PS3.7 Annex E, PS3.8 9.3.5, D.1)."""

from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.datasource import DataSource
from dicomnet.dimse.commands import encode_command
from dicomnet.dimse.fragment import (
    MAX_PDATA_CEILING,
    MIN_PDATA_LENGTH,
    encode_message_pdus,
    fragment,
    pdv_payload_size,
)
from dicomnet.errors import DimseError
from dicomnet.ul.codec import decode_pdu
from dicomnet.ul.pdu import PDV, PDataTF

CMD_ECHO = encode_command({0x0002: "1.2.840.10008.1.1", 0x0100: 0x30, 0x0110: 7, 0x0800: 0x0101})
CMD_STORE = encode_command(
    {
        0x0002: "1.2.840.10008.5.1.4.1.1.2",
        0x0100: 0x0001,
        0x0110: 1,
        0x0700: 0,
        0x0800: 0x0000,
        0x1000: "1.2.3.4.5",
    }
)


def pdus(pieces: list[list[bytes | memoryview]]) -> list[PDataTF]:
    out = []
    for chunks in pieces:
        raw = b"".join(bytes(c) for c in chunks)
        pdu = decode_pdu(raw)
        assert isinstance(pdu, PDataTF)
        # PDU length field = variable field length (PS3.8 9.3.5)
        assert struct.unpack(">I", raw[2:6])[0] == len(raw) - 6
        out.append(pdu)
    return out


def pdvs_of(pieces: list[list[bytes | memoryview]]) -> list[PDV]:
    return [pdv for pdu in pdus(pieces) for pdv in pdu.pdvs]


def check(ctx: int, cmd: bytes, data: bytes | None, max_len: int) -> list[PDV]:
    src = None if data is None else DataSource.from_bytes(data)
    pieces = list(fragment(ctx, cmd, src, max_len))
    limit = min(max_len or MAX_PDATA_CEILING, MAX_PDATA_CEILING)
    for chunks in pieces:
        assert sum(len(c) for c in chunks) - 6 <= limit
    pdvs = pdvs_of(pieces)
    assert all(p.context_id == ctx for p in pdvs)
    cmd_pdvs = [p for p in pdvs if p.is_command]
    data_pdvs = [p for p in pdvs if not p.is_command]
    # all command fragments first, then data fragments
    assert pdvs[: len(cmd_pdvs)] == cmd_pdvs
    assert b"".join(bytes(p.data) for p in cmd_pdvs) == cmd
    assert [p.is_last for p in cmd_pdvs] == [False] * (len(cmd_pdvs) - 1) + [True]
    if data is None:
        assert data_pdvs == []
    else:
        assert b"".join(bytes(p.data) for p in data_pdvs) == data
        assert [p.is_last for p in data_pdvs] == [False] * (len(data_pdvs) - 1) + [True]
    # every fragment but a genuinely odd tail is even-length
    for group, total in ((cmd_pdvs, len(cmd)), (data_pdvs, len(data or b""))):
        for p in group[:-1]:
            assert len(p.data) % 2 == 0
        if group and total % 2 == 0:
            assert len(group[-1].data) % 2 == 0
    # PDV control headers only use bits 0 and 1
    assert all(p.control & ~3 == 0 for p in pdvs)
    return pdvs


def test_payload_size() -> None:
    assert pdv_payload_size(16384) == 16378
    assert pdv_payload_size(16385) == 16378  # odd room rounds down to even
    assert pdv_payload_size(4096) == 4090
    assert pdv_payload_size(0) == MAX_PDATA_CEILING - 6
    assert pdv_payload_size(1 << 31) == MAX_PDATA_CEILING - 6
    assert pdv_payload_size(MIN_PDATA_LENGTH) == 2
    with pytest.raises(DimseError):
        pdv_payload_size(MIN_PDATA_LENGTH - 1)


@pytest.mark.parametrize("max_len", [4096, 16384, 0, MIN_PDATA_LENGTH, MIN_PDATA_LENGTH + 1])
@pytest.mark.parametrize("size", [0, 1, 2, 4089, 4090, 4091, 16377, 16378, 16379, 40000])
def test_fragment_sizes(max_len: int, size: int) -> None:
    data = os.urandom(size)
    check(1, CMD_STORE, data, max_len)


def test_boundaries_split_exactly() -> None:
    payload = pdv_payload_size(4096)
    pdvs = check(3, CMD_STORE, b"\x01" * (2 * payload), 4096)
    data = [p for p in pdvs if not p.is_command]
    assert [len(p.data) for p in data] == [payload, payload]
    pdvs = check(3, CMD_STORE, b"\x01" * (2 * payload + 1), 4096)
    data = [p for p in pdvs if not p.is_command]
    assert [len(p.data) for p in data] == [payload, payload, 1]


def test_no_dataset_single_pdu() -> None:
    pieces = list(fragment(5, CMD_ECHO, None, 16384))
    assert len(pieces) == 1
    (pdv,) = pdvs_of(pieces)
    assert pdv.control == 0x03 and bytes(pdv.data) == CMD_ECHO


def test_small_command_and_dataset_share_one_pdu() -> None:
    pieces = list(fragment(7, CMD_STORE, DataSource.from_bytes(b"ab" * 50), 16384))
    assert len(pieces) == 1
    (pdu,) = pdus(pieces)
    assert [p.control for p in pdu.pdvs] == [0x03, 0x02]


def test_share_exactly_at_limit_and_one_over() -> None:
    exact = len(CMD_STORE) + 12 + 10
    assert len(list(fragment(1, CMD_STORE, DataSource.from_bytes(b"x" * 10), exact))) == 1
    pieces = list(fragment(1, CMD_STORE, DataSource.from_bytes(b"x" * 10), exact - 2))
    assert len(pieces) == 2
    check(1, CMD_STORE, b"x" * 10, exact - 2)


def test_empty_dataset_sends_empty_last_pdv() -> None:
    pieces = list(fragment(1, CMD_STORE, DataSource.from_bytes(b""), 64))
    pdvs = pdvs_of(pieces)
    assert pdvs[-1].control == 0x02 and len(pdvs[-1].data) == 0


def test_command_split_at_min_size() -> None:
    pdvs = check(1, CMD_ECHO, None, MIN_PDATA_LENGTH)
    assert len(pdvs) == len(CMD_ECHO) // 2
    assert all(len(p.data) == 2 for p in pdvs)


def test_payload_is_not_copied() -> None:
    data = bytearray(b"q" * 100000)
    pieces = list(fragment(1, CMD_STORE, DataSource.from_bytes(data), 16384))
    payload = pieces[-1][-1]
    assert isinstance(payload, memoryview)
    assert payload.obj is data


def test_empty_command_rejected() -> None:
    with pytest.raises(DimseError):
        list(fragment(1, b"", None, 16384))


def test_encode_message_pdus_uses_message_protocol() -> None:
    class Msg:
        data_set = DataSource.from_bytes(b"zz" * 10000)

        def encode_command(self) -> bytes:
            return CMD_STORE

    pdvs = pdvs_of(list(encode_message_pdus(9, Msg(), 4096)))
    assert b"".join(bytes(p.data) for p in pdvs if not p.is_command) == b"zz" * 10000


@settings(max_examples=200, deadline=None)
@given(
    max_len=st.one_of(st.integers(MIN_PDATA_LENGTH, 300), st.sampled_from([0, 4096, 16384])),
    data=st.one_of(st.none(), st.binary(max_size=2000)),
    ctx=st.integers(1, 255).filter(lambda c: c % 2 == 1),
)
def test_fragment_property(max_len: int, data: bytes | None, ctx: int) -> None:
    check(ctx, CMD_STORE, data, max_len)


def test_streaming_file_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.raw"
    size = 64 * 1024 * 1024
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: cheap to create, still read in full
    src = DataSource.from_file(path, "1.2.840.10008.1.2.1")
    tracemalloc.start()
    try:
        total = 0
        count = 0
        for chunks in fragment(1, CMD_STORE, src, 16384):
            total += sum(len(c) for c in chunks[1:])
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size + len(CMD_STORE)
    assert count == 1 + -(-size // 16378)
    assert peak < 4 * 1024 * 1024
