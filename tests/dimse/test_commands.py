"""Command-set codec (PS3.7 section 6.3.1, Annex E): layout, padding, every rejection case."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.dimse.commands import (
    ELEMENTS,
    KEYWORD_TO_TAG,
    DimseProtocolError,
    decode_command,
    encode_command,
)
from dicomnet.errors import DimseError

DATA = Path(__file__).parent.parent / "data" / "dimse"
VECTORS = sorted(DATA.glob("*.bin"))


def elem(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def with_group_length(body: bytes) -> bytes:
    return elem(0, struct.pack("<I", len(body))) + body


ECHO_BODY = (
    elem(0x0002, b"1.2.840.10008.1.1\x00")
    + elem(0x0100, struct.pack("<H", 0x0030))
    + elem(0x0110, struct.pack("<H", 1))
    + elem(0x0800, struct.pack("<H", 0x0101))
)


def test_table_has_every_current_command_element() -> None:
    expected = {
        0x0000: ("CommandGroupLength", "UL"),
        0x0002: ("AffectedSOPClassUID", "UI"),
        0x0003: ("RequestedSOPClassUID", "UI"),
        0x0100: ("CommandField", "US"),
        0x0110: ("MessageID", "US"),
        0x0120: ("MessageIDBeingRespondedTo", "US"),
        0x0600: ("MoveDestination", "AE"),
        0x0700: ("Priority", "US"),
        0x0800: ("CommandDataSetType", "US"),
        0x0900: ("Status", "US"),
        0x0901: ("OffendingElement", "AT"),
        0x0902: ("ErrorComment", "LO"),
        0x0903: ("ErrorID", "US"),
        0x1000: ("AffectedSOPInstanceUID", "UI"),
        0x1001: ("RequestedSOPInstanceUID", "UI"),
        0x1002: ("EventTypeID", "US"),
        0x1005: ("AttributeIdentifierList", "AT"),
        0x1008: ("ActionTypeID", "US"),
        0x1020: ("NumberOfRemainingSuboperations", "US"),
        0x1021: ("NumberOfCompletedSuboperations", "US"),
        0x1022: ("NumberOfFailedSuboperations", "US"),
        0x1023: ("NumberOfWarningSuboperations", "US"),
        0x1030: ("MoveOriginatorApplicationEntityTitle", "AE"),
        0x1031: ("MoveOriginatorMessageID", "US"),
    }
    for tag, (keyword, vr) in expected.items():
        info = ELEMENTS[tag]
        assert (info.keyword, info.vr, info.retired) == (keyword, vr, False)
        assert KEYWORD_TO_TAG[keyword] == tag
    assert ELEMENTS[0x0901].vm == ELEMENTS[0x1005].vm == "1-n"
    assert ELEMENTS[0x0001].retired and ELEMENTS[0x4000].retired


def test_encode_layout_group_length_first_then_ascending() -> None:
    data = encode_command({0x0800: 0x0101, 0x0110: 1, 0x0002: "1.2.840.10008.1.1", 0x0100: 0x30})
    assert data == with_group_length(ECHO_BODY)
    # a stale group length in the input is ignored and recomputed
    assert (
        encode_command(
            {0: 999, 0x0800: 0x0101, 0x0110: 1, 0x0002: "1.2.840.10008.1.1", 0x0100: 0x30}
        )
        == data
    )


def test_padding_uid_nul_strings_space_and_stripped_on_decode() -> None:
    data = encode_command({0x0002: "1.2.3", 0x0600: "ABC", 0x0902: "odd"})
    assert elem(0x0002, b"1.2.3\x00") in data
    assert elem(0x0600, b"ABC ") in data
    assert elem(0x0902, b"odd ") in data
    assert decode_command(data) == {
        0: len(data) - 12,
        0x0002: "1.2.3",
        0x0600: "ABC",
        0x0902: "odd",
    }


def test_ae_leading_spaces_and_space_padded_uid_stripped() -> None:
    data = with_group_length(elem(0x0002, b"1.2.3 ") + elem(0x0600, b"  DEST  "))
    assert decode_command(data) == {0: 30, 0x0002: "1.2.3", 0x0600: "DEST"}


def test_at_and_multi_valued_round_trip() -> None:
    elements = {
        0x0901: (0x00100010, 0x7FE00010),
        0x1005: (0xFFFFFFFF,),
        0x51B0: (1, 2, 0xFFFF),  # retired Overlays, US 1-n
        0x0001: 1234,  # retired CommandLengthToEnd, UL
        0x4000: "dialog",  # retired LT
        0x0850: 3,  # retired US
    }
    data = encode_command(elements)
    assert elem(0x0901, bytes.fromhex("10001000e07f1000")) in data
    decoded = decode_command(data)
    del decoded[0]
    assert decoded == elements


def test_single_int_for_at_is_one_tag() -> None:
    assert decode_command(encode_command({0x0901: 0x00080016}))[0x0901] == (0x00080016,)


def test_unknown_group_0000_element_kept_as_raw_bytes() -> None:
    data = with_group_length(ECHO_BODY + elem(0x2000, b"\x01\x02\x03\x04"))
    decoded = decode_command(data)
    assert decoded[0x2000] == b"\x01\x02\x03\x04"
    assert encode_command(decoded) == data


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.name)
def test_real_command_sets_round_trip(path: Path) -> None:
    data = path.read_bytes()
    decoded = decode_command(data)
    assert decoded[0] == len(data) - 12
    assert list(decoded) == sorted(decoded)
    assert encode_command(decoded) == data
    assert decode_command(memoryview(data)) == decoded
    assert decode_command(bytearray(data)) == decoded


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "too short"),
        (elem(0, b"\x00\x00\x00"), "too short"),
        (elem(0x0100, b"\x30\x00") + b"\x00" * 4, r"must start with \(0000,0000\)"),
        (elem(0, b"\x00\x00") + b"\x00" * 8, r"\(0000,0000\)"),
        (elem(0, struct.pack("<I", len(ECHO_BODY) + 2)) + ECHO_BODY, "CommandGroupLength is"),
        (elem(0, struct.pack("<I", len(ECHO_BODY) - 2)) + ECHO_BODY, "CommandGroupLength is"),
        (with_group_length(ECHO_BODY + elem(0x00080016, b"1.2\x00")), r"\(0008,0016\) is not"),
        (with_group_length(ECHO_BODY + elem(0x00020010, b"1.2\x00")), r"\(0002,0010\)"),
        (with_group_length(ECHO_BODY + elem(0x0800, b"\x01\x01")), r"duplicate .*\(0000,0800\)"),
        (
            with_group_length(elem(0x0110, b"\x01\x00") + elem(0x0100, b"\x30\x00")),
            r"out-of-order .*\(0000,0100\) CommandField",
        ),
        (
            with_group_length(ECHO_BODY + struct.pack("<HHI", 0, 0x0902, 100) + b"abcd"),
            r"\(0000,0902\) ErrorComment: value length 100 runs past",
        ),
        (with_group_length(ECHO_BODY + struct.pack("<HHI", 0, 0x0902, 0xFFFFFFFF)), "runs past"),
        (with_group_length(ECHO_BODY + b"\x00\x00\x02\x09"), "trailing bytes"),
        (
            with_group_length(elem(0x0100, b"\x30\x00\x00")),
            r"\(0000,0100\) CommandField: US value of length 3",
        ),
        (with_group_length(elem(0x0100, b"")), r"US value of length 0"),
        (with_group_length(elem(0x0001, b"\x00\x00")), r"\(0000,0001\) CommandLengthToEnd: UL"),
        (
            with_group_length(elem(0x0901, b"\x10\x00\x10\x00\x20\x00")),
            r"\(0000,0901\) OffendingElement: AT",
        ),
        (with_group_length(elem(0x51B0, b"\x01\x00\x02")), r"\(0000,51B0\) Overlays: US"),
    ],
)
def test_decode_rejections(data: bytes, match: str) -> None:
    with pytest.raises(DimseProtocolError, match=match) as info:
        decode_command(data)
    assert isinstance(info.value, DimseError)
    assert info.value.protocol is True


@pytest.mark.parametrize(
    ("elements", "match"),
    [
        ({0x00080016: "1.2"}, r"\(0008,0016\): not a command"),
        ({-1: 1}, "not a command"),
        ({0x0100: 65536}, r"\(0000,0100\) CommandField: 65536 is not a US"),
        ({0x0100: -1}, "is not a US"),
        ({0x0100: True}, "is not a US"),
        ({0x0100: "1"}, "is not a US"),
        ({0x0002: 123}, r"\(0000,0002\) AffectedSOPClassUID: expected str"),
        ({0x0902: "caf\u20ac"}, "default repertoire"),
        ({0x0001: -5}, "not a UL"),
        ({0x0901: (0x1_0000_0000,)}, "not a valid AT"),
        ({0x0901: "0010,0010"}, "sequence of ints"),
        ({0x2000: "raw"}, "needs a bytes value"),
    ],
)
def test_encode_rejections(elements: dict[int, object], match: str) -> None:
    with pytest.raises(DimseError, match=match):
        encode_command(elements)


def test_none_values_are_omitted() -> None:
    assert encode_command({0x0100: 0x30, 0x0002: None}) == with_group_length(
        elem(0x0100, b"\x30\x00")
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_protocol_error(data: bytes) -> None:
    try:
        decode_command(data)
    except DimseProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VECTORS), st.data())
def test_mutated_real_vectors_only_raise_protocol_error(path: Path, data: st.DataObject) -> None:
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        decode_command(bytes(raw[:cut]))
    except DimseProtocolError:
        pass
