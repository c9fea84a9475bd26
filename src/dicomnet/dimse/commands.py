"""Command set codec: group 0000 elements in Implicit VR Little Endian (PS3.7 section 6.3, 9.3, E).

Theory of operation
-------------------
A DIMSE command set is a small, fixed vocabulary of group 0000 elements (PS3.7 Annex E, Table
E.1-1), always encoded Implicit VR Little Endian whatever transfer syntax the presentation context
negotiated (PS3.7 section 6.3.1). It starts with Command Group Length (0000,0000) UL, the number of
bytes that follow it, and the elements appear once each in ascending tag order.

Because the vocabulary is fixed, we do not use a general dataset codec: :data:`ELEMENTS` maps every
tag to its keyword, VR and VM, and a per-tag "kind" code picks a precompiled :class:`struct.Struct`
for the encoder and decoder. Values are plain Python objects:

* US/UL (VM 1): ``int``; US with VM 1-n (retired Overlays): ``tuple[int, ...]``;
* UI: ``str`` (encoded NUL-padded to even length, PS3.5 section 9.1; padding stripped on decode);
* AE/LO/SH/LT/CS/IS: ``str`` (space-padded; trailing padding, and for AE leading spaces too,
  stripped on decode, PS3.5 section 6.2);
* AT (VM 1-n): ``tuple[int, ...]`` of 32-bit tags (group << 16 | element).

Decoding is strict where the framing is at stake and tolerant where real peers differ:

* rejected (:class:`DimseProtocolError`, the message names the tag): a tag outside group 0000, a
  duplicate or out-of-order tag, a value length past the end of the data, a missing or wrong
  Command Group Length, and a US/UL/AT value whose length is not a multiple of its size (or not
  exactly 2/4 bytes for VM 1). The caller answers these with an A-ABORT.
* tolerated: the retired command elements of earlier editions (Command Length to End
  (0000,0001), Command Recognition Code (0000,0010), Initiator/Receiver (0000,0200/0300), Find
  Location (0000,0400), Number of Matches (0000,0850), Response Sequence Number (0000,0860), the
  (0000,4000)-(0000,51B0) printing elements) are decoded with their old VR and returned, so a
  peer still sending e.g. Command Length to End (old DCMTK/ACR-NEMA era stacks) is not aborted;
  :mod:`dicomnet.dimse.messages` ignores them. A group 0000 tag absent from the table (a newer
  edition) is returned as raw ``bytes`` for the same reason. Odd-length string values are
  accepted (PS3.5 requires even lengths; we do not punish the peer for it).

All lengths are checked against the buffer before anything is sliced; string bytes are decoded as
Latin-1 (which cannot fail), so hostile input yields only :class:`DimseProtocolError`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final, NamedTuple

from dicomnet.errors import DimseError

__all__ = [
    "ELEMENTS",
    "KEYWORD_TO_TAG",
    "DimseProtocolError",
    "ElementInfo",
    "decode_command",
    "encode_command",
]


class DimseProtocolError(DimseError):
    """The command set cannot be parsed or names no known command: the association is aborted.

    ``protocol`` is always True, so callers can tell it from the failure-status errors of
    :mod:`dicomnet.dimse.messages` without an import cycle.
    """

    protocol: bool = True


class ElementInfo(NamedTuple):
    """One row of PS3.7 Table E.1-1 (or of the retired command elements)."""

    keyword: str
    vr: str
    vm: str
    retired: bool


# PS3.7 Annex E, Table E.1-1 (current command elements) plus the retired ones (last column True).
ELEMENTS: Final[dict[int, ElementInfo]] = {
    0x0000_0000: ElementInfo("CommandGroupLength", "UL", "1", False),
    0x0000_0001: ElementInfo("CommandLengthToEnd", "UL", "1", True),
    0x0000_0002: ElementInfo("AffectedSOPClassUID", "UI", "1", False),
    0x0000_0003: ElementInfo("RequestedSOPClassUID", "UI", "1", False),
    0x0000_0010: ElementInfo("CommandRecognitionCode", "SH", "1", True),
    0x0000_0100: ElementInfo("CommandField", "US", "1", False),
    0x0000_0110: ElementInfo("MessageID", "US", "1", False),
    0x0000_0120: ElementInfo("MessageIDBeingRespondedTo", "US", "1", False),
    0x0000_0200: ElementInfo("Initiator", "AE", "1", True),
    0x0000_0300: ElementInfo("Receiver", "AE", "1", True),
    0x0000_0400: ElementInfo("FindLocation", "AE", "1", True),
    0x0000_0600: ElementInfo("MoveDestination", "AE", "1", False),
    0x0000_0700: ElementInfo("Priority", "US", "1", False),
    0x0000_0800: ElementInfo("CommandDataSetType", "US", "1", False),
    0x0000_0850: ElementInfo("NumberOfMatches", "US", "1", True),
    0x0000_0860: ElementInfo("ResponseSequenceNumber", "US", "1", True),
    0x0000_0900: ElementInfo("Status", "US", "1", False),
    0x0000_0901: ElementInfo("OffendingElement", "AT", "1-n", False),
    0x0000_0902: ElementInfo("ErrorComment", "LO", "1", False),
    0x0000_0903: ElementInfo("ErrorID", "US", "1", False),
    0x0000_1000: ElementInfo("AffectedSOPInstanceUID", "UI", "1", False),
    0x0000_1001: ElementInfo("RequestedSOPInstanceUID", "UI", "1", False),
    0x0000_1002: ElementInfo("EventTypeID", "US", "1", False),
    0x0000_1005: ElementInfo("AttributeIdentifierList", "AT", "1-n", False),
    0x0000_1008: ElementInfo("ActionTypeID", "US", "1", False),
    0x0000_1020: ElementInfo("NumberOfRemainingSuboperations", "US", "1", False),
    0x0000_1021: ElementInfo("NumberOfCompletedSuboperations", "US", "1", False),
    0x0000_1022: ElementInfo("NumberOfFailedSuboperations", "US", "1", False),
    0x0000_1023: ElementInfo("NumberOfWarningSuboperations", "US", "1", False),
    0x0000_1030: ElementInfo("MoveOriginatorApplicationEntityTitle", "AE", "1", False),
    0x0000_1031: ElementInfo("MoveOriginatorMessageID", "US", "1", False),
    0x0000_4000: ElementInfo("DialogReceiver", "LT", "1", True),
    0x0000_4010: ElementInfo("TerminalType", "LT", "1", True),
    0x0000_5010: ElementInfo("MessageSetID", "SH", "1", True),
    0x0000_5020: ElementInfo("EndMessageID", "SH", "1", True),
    0x0000_5110: ElementInfo("DisplayFormat", "LT", "1", True),
    0x0000_5120: ElementInfo("PagePositionID", "LT", "1", True),
    0x0000_5130: ElementInfo("TextFormatID", "CS", "1", True),
    0x0000_5140: ElementInfo("NormalReverse", "CS", "1", True),
    0x0000_5150: ElementInfo("AddGrayScale", "CS", "1", True),
    0x0000_5160: ElementInfo("Borders", "CS", "1", True),
    0x0000_5170: ElementInfo("Copies", "IS", "1", True),
    0x0000_5180: ElementInfo("CommandMagnificationType", "CS", "1", True),
    0x0000_5190: ElementInfo("Erase", "CS", "1", True),
    0x0000_51A0: ElementInfo("Print", "CS", "1", True),
    0x0000_51B0: ElementInfo("Overlays", "US", "1-n", True),
}

KEYWORD_TO_TAG: Final[dict[str, int]] = {info.keyword: tag for tag, info in ELEMENTS.items()}

# Value kinds, chosen once per tag so the hot loops do one dict lookup per element.
_US, _UL, _UI, _AE, _STR, _AT, _US_MULTI = range(7)
_RAW = 7


def _kind(info: ElementInfo) -> int:
    if info.vr == "US":
        return _US if info.vm == "1" else _US_MULTI
    if info.vr == "UL":
        return _UL
    if info.vr == "UI":
        return _UI
    if info.vr == "AE":
        return _AE
    if info.vr == "AT":
        return _AT
    return _STR


_KINDS: Final[dict[int, int]] = {tag: _kind(info) for tag, info in ELEMENTS.items()}

# Implicit VR LE element header: group, element, 32-bit length (PS3.5 section 7.1.3).
_HDR = struct.Struct("<HHI")
_HDR_US = struct.Struct("<HHIH")  # header + one US value
_HDR_UL = struct.Struct("<HHII")  # header + one UL value
_GROUP_LENGTH = struct.Struct("<HHII")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_unpack_hdr = _HDR.unpack_from
_unpack_hdr_us = _HDR_US.unpack_from
_unpack_u16 = _U16.unpack_from
_unpack_u32 = _U32.unpack_from
_pack_us = _HDR_US.pack
_pack_ul = _HDR_UL.pack
_pack_hdr = _HDR.pack


def _tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _name(tag: int) -> str:
    info = ELEMENTS.get(tag)
    return f"{_tag_str(tag)} {info.keyword}" if info else _tag_str(tag)


def _encode_str(tag: int, value: object, pad: bytes) -> bytes:
    if not isinstance(value, str):
        raise DimseError(f"{_name(tag)}: expected str, got {type(value).__name__}")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise DimseError(
            f"{_name(tag)}: {value!r} is not in the DICOM default repertoire"
        ) from None
    if len(raw) & 1:
        raw += pad
    return raw


def _check_u16(tag: int, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise DimseError(f"{_name(tag)}: {value!r} is not a US value (int 0..65535)")
    return value


def _encode_multi(tag: int, kind: int, value: object) -> bytes:
    seq = (value,) if isinstance(value, int) else value
    if not isinstance(seq, tuple | list):
        raise DimseError(f"{_name(tag)}: expected a sequence of ints, got {type(value).__name__}")
    limit = 0xFFFFFFFF if kind == _AT else 0xFFFF
    for v in seq:
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
            raise DimseError(f"{_name(tag)}: {v!r} is not a valid {ELEMENTS[tag].vr} value")
    if kind == _AT:
        words = [w for t in seq for w in (t >> 16, t & 0xFFFF)]
        return struct.pack(f"<{len(words)}H", *words)
    return struct.pack(f"<{len(seq)}H", *seq)


# (tag, UID) -> the encoded element, for the UIDs that name SOP classes (see encode_command)
_ENCODED_UIDS: dict[tuple[int, str], bytes] = {}
_MAX_ENCODED_UIDS = 256
_INSTANCE_UIDS: Final = frozenset((0x0000_1000, 0x0000_1001))  # Affected/Requested SOP Instance


def encode_command(elements: Mapping[int, object]) -> bytes:
    """Encode a command set: Command Group Length (0000,0000) first, then ascending tags.

    ``elements`` maps tags (group 0000) to values as described in the module docstring; any
    (0000,0000) entry is ignored and recomputed; ``None`` values are omitted. Raises
    :class:`DimseError` naming the tag for a tag outside group 0000 or a value of the wrong type.
    """
    parts: list[bytes] = []
    append = parts.append
    kinds = _KINDS
    size = 0
    for tag in sorted(elements):
        value = elements[tag]
        if value is None or tag == 0:
            continue
        kind = kinds.get(tag, _RAW)  # tags outside group 0000 are never in _KINDS
        if kind == _US:
            # the common case inline: a plain int in range (anything else: _check_u16)
            if type(value) is not int or not 0 <= value <= 0xFFFF:
                value = _check_u16(tag, value)
            append(_pack_us(0, tag, 2, value))
            size += 10
            continue
        if kind == _UI:
            # SOP Class UIDs repeat from message to message: their element is encoded once
            # (instance UIDs, unique per message, are not kept)
            cached = isinstance(value, str) and tag not in _INSTANCE_UIDS
            elem = _ENCODED_UIDS.get((tag, value)) if cached else None  # type: ignore[arg-type]
            if elem is None:
                raw = _encode_str(tag, value, b"\x00")
                elem = _pack_hdr(0, tag, len(raw)) + raw
                if cached:
                    if len(_ENCODED_UIDS) >= _MAX_ENCODED_UIDS:
                        _ENCODED_UIDS.clear()
                    _ENCODED_UIDS[tag, value] = elem  # type: ignore[index]
            append(elem)
            size += len(elem)
            continue
        if kind in (_AE, _STR):
            raw = _encode_str(tag, value, b" ")
        elif kind == _UL:
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 0 <= value <= 0xFFFFFFFF
            ):
                raise DimseError(f"{_name(tag)}: {value!r} is not a UL value")
            append(_pack_ul(0, tag, 4, value))
            size += 12
            continue
        elif kind in (_AT, _US_MULTI):
            raw = _encode_multi(tag, kind, value)
        else:  # unknown group 0000 element kept as raw bytes by decode_command
            if not 0 < tag <= 0xFFFF:
                raise DimseError(
                    f"{_tag_str(tag & 0xFFFFFFFF)}: not a command (group 0000) element"
                )
            if not isinstance(value, bytes | bytearray | memoryview):
                raise DimseError(f"{_tag_str(tag)}: unknown command element needs a bytes value")
            raw = bytes(value)
        append(_pack_hdr(0, tag, len(raw)) + raw)
        size += 8 + len(raw)
    return _GROUP_LENGTH.pack(0, 0, 4, size) + b"".join(parts)


def decode_command(data: bytes | bytearray | memoryview) -> dict[int, object]:
    """Decode a complete command set; raises :class:`DimseProtocolError` on malformed input.

    The returned dict includes (0000,0000) and is in ascending tag order.
    """
    mv: bytes | memoryview
    if type(data) is bytes:
        mv = data  # unpack_from and slices work on bytes directly
    else:
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
        if end - offset >= 10:
            # header and, should it be a US element, its value in one call
            group, tag, length, u16 = _unpack_hdr_us(mv, offset)
        else:
            group, tag, length = _unpack_hdr(mv, offset)
            u16 = -1
        # group 0000: the tag is the element number
        if group or tag <= prev:
            tag |= group << 16
            if group != 0:
                raise DimseProtocolError(
                    f"{_tag_str(tag)} is not a command (group 0000) element"
                )
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
            out[tag] = u16 if u16 >= 0 else _unpack_u16(mv, offset)[0]
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
