"""The fast paths of the DIMSE layer against the general ones (issue 6: Python cost per message).

Each fast path must give the same bytes, objects and errors as the straightforward code it
replaced: the command-set codec (kept here verbatim as the reference), the one-pass decode into a
trusted primitive (against ``decode_message(...).to_primitive()``, which still validates), the
per-class tables of ``message_from_primitive``, the UID cache, the cheap status Dataset, the
lazily built handler event, and the receive buffer's whole-PDU copy.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.dimse import messages as M
from dicomnet.dimse import primitives as P
from dicomnet.dimse.commands import (
    _AE,
    _AT,
    _GROUP_LENGTH,
    _KINDS,
    _RAW,
    _STR,
    _UI,
    _UL,
    _US,
    _US_MULTI,
    DimseProtocolError,
    _check_u16,
    _encode_multi,
    _encode_str,
    _name,
    _pack_hdr,
    _pack_ul,
    _pack_us,
    _tag_str,
    _unpack_hdr,
    _unpack_u16,
    _unpack_u32,
    decode_command,
    encode_command,
)
from dicomnet.errors import DimseError
from tests.dimse.strategies import any_primitive

DATA = Path(__file__).parent.parent / "data" / "dimse"
DCMTK = sorted(DATA.glob("dcmtk_*.bin"))
CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"

# --- the reference codec: the general implementation the fast one replaced --------------------

def ref_encode_command(elements: Mapping[int, object]) -> bytes:
    parts: list[bytes] = []
    append = parts.append
    kinds = _KINDS
    for tag in sorted(elements):
        if tag == 0:
            continue
        value = elements[tag]
        if value is None:
            continue
        if not 0 < tag <= 0xFFFF:
            raise DimseError(f"{_tag_str(tag & 0xFFFFFFFF)}: not a command (group 0000) element")
        kind = kinds.get(tag, _RAW)
        if kind == _US:
            append(_pack_us(0, tag, 2, _check_u16(tag, value)))
        elif kind == _UI:
            raw = _encode_str(tag, value, b"\x00")
            append(_pack_hdr(0, tag, len(raw)))
            append(raw)
        elif kind in (_AE, _STR):
            raw = _encode_str(tag, value, b" ")
            append(_pack_hdr(0, tag, len(raw)))
            append(raw)
        elif kind == _UL:
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 0 <= value <= 0xFFFFFFFF
            ):
                raise DimseError(f"{_name(tag)}: {value!r} is not a UL value")
            append(_pack_ul(0, tag, 4, value))
        elif kind in (_AT, _US_MULTI):
            raw = _encode_multi(tag, kind, value)
            append(_pack_hdr(0, tag, len(raw)))
            append(raw)
        else:  # unknown group 0000 element kept as raw bytes by decode_command
            if not isinstance(value, bytes | bytearray | memoryview):
                raise DimseError(f"{_tag_str(tag)}: unknown command element needs a bytes value")
            raw = bytes(value)
            append(_pack_hdr(0, tag, len(raw)))
            append(raw)
    body = b"".join(parts)
    return _GROUP_LENGTH.pack(0, 0, 4, len(body)) + body


def ref_decode_command(data: bytes | bytearray | memoryview) -> dict[int, object]:
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    end = len(mv)
    if end < 12:
        raise DimseProtocolError(f"command set of {end} bytes is too short for (0000,0000)")
    group, elem, length = _unpack_hdr(mv, 0)
    if group != 0 or elem != 0 or length != 4:
        raise DimseProtocolError(
            f"command set must start with (0000,0000) CommandGroupLength (UL, 4 bytes); "
            f"found {_tag_str(group << 16 | elem)} with length {length}"
        )
    (group_length,) = _unpack_u32(mv, 8)
    if group_length != end - 12:
        raise DimseProtocolError(
            f"(0000,0000) CommandGroupLength is {group_length} but {end - 12} bytes follow it"
        )
    out: dict[int, object] = {0: group_length}
    kinds = _KINDS
    offset = 12
    prev = 0
    while offset < end:
        if end - offset < 8:
            raise DimseProtocolError(f"{end - offset} trailing bytes after {_name(prev)}")
        group, elem, length = _unpack_hdr(mv, offset)
        tag = group << 16 | elem
        if group != 0:
            raise DimseProtocolError(f"{_tag_str(tag)} is not a command (group 0000) element")
        if tag <= prev:
            what = "duplicate" if tag == prev else "out-of-order"
            raise DimseProtocolError(f"{what} command element {_name(tag)} after {_name(prev)}")
        offset += 8
        stop = offset + length
        if stop > end:
            raise DimseProtocolError(
                f"{_name(tag)}: value length {length} runs past the end of the command set"
            )
        kind = kinds.get(tag, _RAW)
        if kind == _US:
            if length != 2:
                raise DimseProtocolError(f"{_name(tag)}: US value of length {length}, expected 2")
            out[tag] = _unpack_u16(mv, offset)[0]
        elif kind == _UI:
            out[tag] = str(mv[offset:stop], "latin-1").rstrip("\x00 ")
        elif kind == _AE:
            out[tag] = str(mv[offset:stop], "latin-1").strip(" \x00")
        elif kind == _STR:
            out[tag] = str(mv[offset:stop], "latin-1").rstrip(" \x00")
        elif kind == _UL:
            if length != 4:
                raise DimseProtocolError(f"{_name(tag)}: UL value of length {length}, expected 4")
            out[tag] = _unpack_u32(mv, offset)[0]
        elif kind == _AT:
            if length & 3:
                raise DimseProtocolError(f"{_name(tag)}: AT value of length {length}")
            words = struct.unpack_from(f"<{length >> 1}H", mv, offset)
            out[tag] = tuple(words[i] << 16 | words[i + 1] for i in range(0, len(words), 2))
        elif kind == _US_MULTI:
            if length & 1:
                raise DimseProtocolError(f"{_name(tag)}: US value of length {length}")
            out[tag] = struct.unpack_from(f"<{length >> 1}H", mv, offset)
        else:
            out[tag] = bytes(mv[offset:stop])
        prev = tag
        offset = stop
    return out


def _outcome(fn: Any, *args: Any) -> tuple[str, object]:
    """What a call did: ("ok", result) or (exception class name, message)."""
    try:
        return "ok", fn(*args)
    except Exception as exc:  # the comparison is the point
        return type(exc).__name__, str(exc)


# --- command set codec ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(any_primitive())
def test_encode_matches_the_reference_codec(prim: P.DIMSEPrimitive) -> None:
    elements = M.message_from_primitive(prim).command_set.elements
    assert encode_command(elements) == ref_encode_command(elements)


class _Flag(int):
    """An int subclass (like an IntEnum member): not the inline US fast path."""


BAD_VALUES: list[object] = [
    True, False, -1, 0x10000, 0xFFFFFFFF + 1, 1.5, "5", b"\x01\x00", None, _Flag(7), (1, 2), [3],
    "ascii", "caf\u00e9", "\u20ac", "odd", "", (0x00100010,), [0x7FE00010, 1], (-1,),
]  # fmt: skip
TAGS = [0x0002, 0x0100, 0x0110, 0x0600, 0x0700, 0x0901, 0x0902, 0x1000, 0x0001, 0x51B0, 0x0003,
        0x2000, 0x10000, -5, 0x00100010]  # fmt: skip


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_encode_errors_match_the_reference(tag: int, value: object) -> None:
    elements = {0x0100: 0x0030, 0x0110: 1, 0x0800: 0x0101, tag: value}
    assert _outcome(encode_command, elements) == _outcome(ref_encode_command, elements)


@settings(max_examples=400, deadline=None)
@given(any_primitive(), st.data())
def test_decode_matches_the_reference_on_mutated_commands(
    prim: P.DIMSEPrimitive, data: st.DataObject
) -> None:
    raw = bytearray(M.message_from_primitive(prim).encode_command())
    for _ in range(data.draw(st.integers(0, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(raw)))
        raw = raw[:cut]
    assert _outcome(decode_command, bytes(raw)) == _outcome(ref_decode_command, bytes(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_decode_matches_the_reference_on_garbage(raw: bytes) -> None:
    framed = struct.pack("<HHII", 0, 0, 4, len(raw)) + raw
    for data in (raw, framed):
        assert _outcome(decode_command, data) == _outcome(ref_decode_command, data)


# --- one-pass decode into a trusted primitive ---------------------------------------------


def _errors(fn: Any, *args: Any) -> tuple[str, str, int | None, int | None]:
    try:
        fn(*args)
    except DimseError as exc:
        return type(exc).__name__, str(exc), getattr(exc, "status", None), getattr(exc, "tag", None)
    return "ok", "", None, None


@pytest.mark.parametrize("path", DCMTK, ids=lambda p: p.name)
def test_decode_primitive_equals_validated_to_primitive_dcmtk(path: Path) -> None:
    data = path.read_bytes()
    msg, prim = M.decode_primitive(data, b"payload")
    reference = M.decode_message(data, b"payload").to_primitive()
    assert type(msg) is type(M.decode_message(data))
    assert prim == reference
    assert msg.command_set == M.decode_message(data).command_set


@settings(max_examples=300, deadline=None)
@given(any_primitive())
def test_decode_primitive_round_trip(prim: P.DIMSEPrimitive) -> None:
    msg = M.message_from_primitive(prim)
    data_set = getattr(prim, msg.DATASET) if msg.DATASET else None
    _, fast = M.decode_primitive(msg.encode_command(), data_set)
    slow = M.decode_message(msg.encode_command(), data_set).to_primitive()
    assert fast == slow == prim
    for name in fast.FIELDS:  # the same value types (tuples for tag lists, plain str, int)
        assert type(getattr(fast, name)) is type(getattr(slow, name))


BAD_ELEMENTS: list[dict[int, object]] = [
    {0x0100: 0x0030, 0x0110: 1},  # no Command Data Set Type
    {0x0100: 0x0030, 0x0800: 0x0101, 0x0002: VERIFICATION},  # no Message ID
    {0x0100: 0x8030, 0x0800: 0x0101, 0x0900: 0},  # response without the ID responded to
    {0x0100: 0x0030, 0x0110: 1, 0x0800: 0x0101},  # missing Affected SOP Class UID
    {0x0100: 0x0030, 0x0110: 1, 0x0800: 0x0101, 0x0002: "1.2.03"},  # bad UID
    {0x0100: 0x0001, 0x0110: 1, 0x0800: 1, 0x0002: CT, 0x1000: "1.2", 0x0700: 7},  # Priority
    {0x0100: 0x0021, 0x0110: 1, 0x0800: 1, 0x0002: CT, 0x0700: 0, 0x0600: "A\\B"},  # AE
    {0x0100: 0x8001, 0x0120: 1, 0x0800: 0x0101, 0x0900: 0, 0x0902: "x" * 65},  # LO too long
    {0x0100: 0x8001, 0x0120: 1, 0x0800: 0x0101, 0x0900: 0xC000, 0x0901: (0x00100010,)},  # ok
    {0x0100: 0x0FFF, 0x0120: 3, 0x0800: 0x0101},  # C-CANCEL
    {0x0100: 0x0FFF, 0x0800: 0x0101},  # C-CANCEL without an ID
    {0x0100: 0x1234, 0x0110: 1, 0x0800: 0x0101},  # unknown command field
]


@pytest.mark.parametrize("elements", BAD_ELEMENTS)
def test_decode_primitive_errors_are_decode_message_errors(elements: dict[int, object]) -> None:
    data = encode_command(elements)
    assert _errors(M.decode_primitive, data) == _errors(M.decode_message, data)
    if _errors(M.decode_message, data)[0] == "ok":
        assert M.decode_primitive(data)[1] == M.decode_message(data).to_primitive()


def test_range_only_validators_are_the_us_and_at_checks() -> None:
    us_at = {k for k, v in P.VALIDATORS.items() if v in (P._us, P._tags)}
    assert us_at == P.RANGE_ONLY
    assert "Priority" not in P.RANGE_ONLY and "AffectedSOPInstanceUID" not in P.RANGE_ONLY


# --- message_from_primitive: per-class tables ------------------------------------------------


def _reference_message(prim: P.DIMSEPrimitive) -> M.DIMSEMessage:
    is_request = isinstance(prim, P.C_CANCEL) or getattr(prim, "Status", None) is None
    cls = next(
        c
        for c in M.MESSAGE_TYPES.values()
        if c.PRIMITIVE is type(prim) and is_request == c.IS_REQUEST
    )
    elements: dict[int, object] = {}
    for tag in cls.REQUIRED + cls.OPTIONAL:
        if tag in (0x0100, 0x0800):
            continue
        value = getattr(prim, M.ELEMENTS[tag].keyword, None)
        if value is not None:
            elements[tag] = value
    return cls(elements, getattr(prim, cls.DATASET) if cls.DATASET else None)


@settings(max_examples=300, deadline=None)
@given(any_primitive())
def test_message_from_primitive_equals_the_general_loop(prim: P.DIMSEPrimitive) -> None:
    fast, slow = M.message_from_primitive(prim), _reference_message(prim)
    assert type(fast) is type(slow)
    assert fast.command_set.elements == slow.command_set.elements
    assert fast.data_set is slow.data_set and fast.context_id is None
    assert fast.encode_command() == slow.encode_command()


def test_encode_command_still_refuses_a_missing_or_none_required_element() -> None:
    msg = M.C_ECHO_RQ({0x0110: 1, 0x0002: None})
    with pytest.raises(DimseError, match="mandatory AffectedSOPClassUID is not set"):
        msg.encode_command()
    with pytest.raises(DimseError, match="mandatory MessageID is not set"):
        M.C_ECHO_RQ({0x0002: VERIFICATION}).encode_command()


# --- primitives: trusted construction, UID cache ---------------------------------------------


@settings(max_examples=200, deadline=None)
@given(any_primitive())
def test_trusted_equals_validated_construction(prim: P.DIMSEPrimitive) -> None:
    params = prim.params()
    assert type(prim).from_checked(params) == type(prim)(**params)


def test_uid_cache_never_admits_an_invalid_value() -> None:
    good = "1.2.840.10008.1.1"
    assert P._uid("x", good) == good and P._uid("x", good) == good  # miss, then hit

    class Sub(str):
        pass

    value = P._uid("x", Sub(good))
    assert type(value) is str and value == good
    for bad in ("1.02", "1..2", "1.2/../3", "", "1.2 ", "1" * 65, 1, b"1.2", None, Sub("1.a")):
        with pytest.raises(DimseError, match="not a valid UID"):
            P._uid("x", bad)


def test_uid_cache_is_bounded() -> None:
    from dicomnet import uid as uid_mod  # the memo behind P._uid lives in is_valid_uid

    for i in range(uid_mod._KNOWN_VALID_MAX + 10):
        P._uid("x", f"1.2.3.{i + 1}")
    assert len(uid_mod._KNOWN_VALID) <= uid_mod._KNOWN_VALID_MAX
    assert P._uid("x", "1.2.3.1") == "1.2.3.1"


@pytest.mark.parametrize(
    "params",
    [
        {"MessageID": -1},
        {"MessageID": True},
        {"Foo": 1},
        {"AffectedSOPClassUID": "1.02"},
        {"AffectedSOPClassUID": VERIFICATION, "ErrorComment": "a\\b"},
        {"OffendingElement": [0x00100010, 5]},
        {"OffendingElement": 0x00100010},
        {"MessageID": None, "Status": 0xFF00},
    ],
    ids=repr,
)
def test_constructor_checks_as_assignment_does(params: dict[str, object]) -> None:
    def by_assignment() -> P.C_ECHO:
        prim = P.C_ECHO()
        for name, value in params.items():
            setattr(prim, name, value)
        return prim

    assert _outcome(lambda: P.C_ECHO(**params)) == _outcome(by_assignment)
    if _outcome(by_assignment)[0] == "ok":
        built, assigned = P.C_ECHO(**params), by_assignment()
        for name in P.C_ECHO.FIELDS:
            assert type(getattr(built, name)) is type(getattr(assigned, name))
