"""PDU codec: round trips of every PDU and item, and the A-ABORT reason of each malformation."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomnet.errors import PDUDecodeError, ProtocolError
from dicomnet.ul.codec import PDU_HEADER, decode_pdu, encode_pdu, pdata_header
from dicomnet.ul.pdu import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    AsyncOpsWindow,
    ImplementationClassUID,
    MaximumLength,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SubItem,
    UnknownSubItem,
    UserIdentityRQ,
    UserInformation,
)
from tests.ul import strategies as S

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT = "1.2.840.10008.1.2"


def _rq(*sub_items: SubItem) -> AAssociateRQ:
    return AAssociateRQ(
        "STORESCP",
        "ECHOSCU",
        (PresentationContextRQ(1, VERIFICATION, (IMPLICIT,)),),
        UserInformation((MaximumLength(16384), ImplementationClassUID("1.2.3"), *sub_items)),
    )


def _reason(data: bytes) -> int:
    with pytest.raises(PDUDecodeError) as info:
        decode_pdu(data)
    assert info.value.abort_source == 2
    assert info.value.local is False
    return info.value.abort_reason


def _with_length(pdu_type: int, body: bytes) -> bytes:
    return PDU_HEADER.pack(pdu_type, len(body)) + body


# --- round trips ---------------------------------------------------------------------------


@SETTINGS
@given(S.pdus)
def test_every_pdu_round_trips(pdu: PDU) -> None:
    data = encode_pdu(pdu)
    assert PDU_HEADER.unpack_from(data)[1] == len(data) - 6
    decoded = decode_pdu(data)
    assert decoded == pdu
    assert encode_pdu(decoded) == data


@SETTINGS
@given(S.sub_items)
def test_every_user_information_sub_item_round_trips(item: SubItem) -> None:
    pdu = _rq(item)
    decoded = decode_pdu(encode_pdu(pdu))
    assert isinstance(decoded, AAssociateRQ)
    assert decoded.user_information.sub_items[-1] == item


@SETTINGS
@given(S.presentation_contexts_rq, S.presentation_contexts_ac)
def test_presentation_context_items_round_trip(
    rq: PresentationContextRQ, ac: PresentationContextAC
) -> None:
    rq_pdu = AAssociateRQ("A", "B", (rq,))
    ac_pdu = AAssociateAC("A", "B", (ac,))
    rq_back = decode_pdu(encode_pdu(rq_pdu))
    ac_back = decode_pdu(encode_pdu(ac_pdu))
    assert isinstance(rq_back, AAssociateRQ) and isinstance(ac_back, AAssociateAC)
    assert rq_back.presentation_contexts == (rq,)
    assert rq_back.presentation_contexts[0].reserved == rq.reserved
    assert ac_back.presentation_contexts == (ac,)


def test_associate_rq_layout() -> None:
    data = encode_pdu(_rq())
    assert data[0] == 1 and data[6:8] == b"\x00\x01"
    assert data[10:26] == b"STORESCP        "
    assert data[26:42] == b"ECHOSCU         "
    assert data[42:74] == bytes(32)
    assert data[74:78] == b"\x10\x00\x00\x15" and data[78:99] == b"1.2.840.10008.3.1.1.1"


def test_protocol_version_is_kept_raw() -> None:
    pdu = AAssociateRQ("A", "B", (), protocol_version=0x8003)
    decoded = decode_pdu(encode_pdu(pdu))
    assert isinstance(decoded, AAssociateRQ) and decoded.protocol_version == 0x8003


def test_fixed_pdus_bytes() -> None:
    assert encode_pdu(AReleaseRQ()) == b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"
    assert encode_pdu(AReleaseRP()) == b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00"
    assert encode_pdu(AAbort(2, 6)) == b"\x07\x00\x00\x00\x00\x04\x00\x00\x02\x06"
    assert encode_pdu(AAssociateRJ(1, 1, 7)) == b"\x03\x00\x00\x00\x00\x04\x00\x01\x01\x07"
    # Reserved bytes are not tested on receipt (PS3.8 9.3.1).
    assert decode_pdu(b"\x07\xff\x00\x00\x00\x04\xff\xff\x00\x00") == AAbort(0, 0)


def test_common_extended_negotiation_layout() -> None:
    item = SOPClassCommonExtendedNegotiation("1.2", "3.4", ("5.6", "7"))
    data = encode_pdu(_rq(item))
    body = b"\x00\x031.2\x00\x033.4\x00\x08\x00\x035.6\x00\x017"
    assert b"\x57\x00" + struct.pack(">H", len(body)) + body in data


def test_unknown_user_information_sub_item_is_kept() -> None:
    item = UnknownSubItem(0x5E, b"\x01\x02\x03")
    data = encode_pdu(_rq(item))
    assert b"\x5e\x00\x00\x03\x01\x02\x03" in data
    decoded = decode_pdu(data)
    assert isinstance(decoded, AAssociateRQ)
    assert decoded.user_information.sub_items[-1] == item


def test_pdv_data_is_a_view_of_the_input() -> None:
    payload = bytes(range(200))
    raw = bytearray(encode_pdu(PDataTF((PDV(1, 2, payload), PDV(3, 0, b"xy")))))
    decoded = decode_pdu(raw)
    assert isinstance(decoded, PDataTF)
    first = decoded.pdvs[0].data
    assert isinstance(first, memoryview) and first.obj is raw
    raw[12] ^= 0xFF  # a change to the input is visible through the PDV: no copy was made
    assert first[0] == payload[0] ^ 0xFF
    assert decoded.pdvs[1] == PDV(3, 0, b"xy")
    assert decoded.pdvs[0].is_last and not decoded.pdvs[0].is_command


@SETTINGS
@given(S.context_ids, st.integers(0, 3), st.binary(max_size=100))
def test_pdata_header_matches_encoder(context_id: int, control: int, payload: bytes) -> None:
    header = pdata_header(context_id, control, len(payload))
    assert len(header) == 12
    assert header + payload == encode_pdu(PDataTF((PDV(context_id, control, payload),)))


def test_pdata_header_range() -> None:
    with pytest.raises(ProtocolError) as info:
        pdata_header(1, 0, 0xFFFFFFFF)
    assert info.value.local


@pytest.mark.parametrize(
    "pdu",
    [
        AAssociateRQ("X" * 17, "B", ()),
        AAssociateRQ("A", "\u20ac", ()),
        AAssociateRJ(256, 1, 1),
        AAbort(-1, 0),
        AAssociateRQ("A", "B", (), UserInformation((MaximumLength(1 << 32),))),
        AAssociateRQ("A", "B", (), UserInformation((UnknownSubItem(0x5A, bytes(70000)),))),
    ],
)
def test_unencodable_values_raise_local_protocol_error(pdu: PDU) -> None:
    with pytest.raises(ProtocolError) as info:
        encode_pdu(pdu)
    assert info.value.local


# --- malformations: exact A-ABORT reasons (PS3.8 Table 9-26) -------------------------------


@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x47, 0xFF])
def test_unknown_pdu_type_is_reason_1(pdu_type: int) -> None:
    assert _reason(_with_length(pdu_type, b"\x00\x00\x00\x00")) == 1


def test_http_request_is_reason_1() -> None:
    # The type decides before the (forged, ~1 GB) length is looked at.
    assert _reason(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 1


@pytest.mark.parametrize("pdu_type", [3, 5, 6, 7])
@pytest.mark.parametrize("length", [0, 3, 5, 10])
def test_fixed_pdus_with_length_not_4_are_reason_6(pdu_type: int, length: int) -> None:
    assert _reason(_with_length(pdu_type, bytes(length))) == 6


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x04\x00\x00\x00",  # truncated header
        b"\x04\x00\x00\x00\x00\x10" + bytes(6),  # PDU length larger than the bytes given
        b"\x05\x00\x00\x00\x00\x04" + bytes(5),  # trailing byte after the PDU
    ],
)
def test_length_mismatch_is_reason_6(data: bytes) -> None:
    assert _reason(data) == 6


def test_pdata_without_pdv_is_reason_6() -> None:
    assert _reason(_with_length(4, b"")) == 6


@pytest.mark.parametrize("item_length", [0, 1])
def test_pdv_length_below_2_is_reason_6(item_length: int) -> None:
    body = struct.pack(">I", item_length) + b"\x01\x03"[:item_length]
    assert _reason(_with_length(4, body)) == 6


def test_pdv_past_the_end_is_reason_6() -> None:
    assert _reason(_with_length(4, struct.pack(">IBB", 10, 1, 3) + b"abc")) == 6
    # a forged 4 GB PDV length inside a small PDU
    assert _reason(_with_length(4, struct.pack(">IBB", 0xFFFFFFFF, 1, 3) + b"abc")) == 6


def test_truncated_pdv_header_is_reason_6() -> None:
    good = struct.pack(">IBB", 3, 1, 3) + b"a"
    assert _reason(_with_length(4, good + b"\x00\x00\x00")) == 6


def test_associate_shorter_than_fixed_fields_is_reason_6() -> None:
    data = encode_pdu(_rq())
    assert _reason(_with_length(1, data[6:60])) == 6


def _patch_item_length(data: bytes, item_type: int, new_length: int) -> bytes:
    """Rewrite the 2-byte length of the first item of ``item_type`` after the fixed fields."""
    pos = data.index(bytes((item_type, 0)), 74)
    return data[: pos + 2] + struct.pack(">H", new_length) + data[pos + 4 :]


@pytest.mark.parametrize("item_type", [0x10, 0x20, 0x50])
def test_item_length_past_the_pdu_is_reason_6(item_type: int) -> None:
    data = _patch_item_length(encode_pdu(_rq()), item_type, 0xFFFF)
    assert _reason(data) == 6


@pytest.mark.parametrize("item_type", [0x30, 0x40, 0x51, 0x52])
def test_sub_item_length_past_its_item_is_reason_6(item_type: int) -> None:
    data = encode_pdu(_rq())
    pos = data.index(bytes((item_type, 0)), 74)
    assert _reason(data[: pos + 2] + b"\x01\x00" + data[pos + 4 :]) == 6


def test_truncated_item_header_is_reason_6() -> None:
    data = encode_pdu(AAssociateRQ("A", "B", ()))
    assert _reason(_with_length(1, data[6:] + b"\x20\x00")) == 6


@pytest.mark.parametrize(
    "item",
    [
        b"\x51\x00\x00\x03\x00\x00\x10",  # max length with item-length 3
        b"\x53\x00\x00\x02\x00\x01",  # async window with item-length 2
        b"\x54\x00\x00\x06\x00\x05" + b"1.2",  # role selection: UID length past the item
        b"\x56\x00\x00\x03\x00\x09" + b"1",  # extended negotiation: UID length past the item
        b"\x57\x00\x00\x05\x00\x03" + b"1.2",  # common ext. neg.: no service class UID length
        b"\x57\x00\x00\x0b\x00\x011\x00\x012\x00\x05\x00\x01",  # related length mismatch
        b"\x58\x00\x00\x04\x02\x00\x00\x09",  # user identity primary field past the item
        b"\x58\x00\x00\x07\x02\x00\x00\x01a\x00\x05",  # secondary field past the item
        b"\x59\x00\x00\x03\x00\x05a",  # user identity AC response past the item
        b"\x59\x00\x00\x01\x00",  # user identity AC truncated
    ],
)
def test_malformed_user_information_sub_items_are_reason_6(item: bytes) -> None:
    rq = AAssociateRQ("A", "B", ())
    data = encode_pdu(rq)
    body = data[6:-4] + b"\x50\x00" + struct.pack(">H", len(item)) + item
    assert _reason(_with_length(1, body)) == 6


def test_unknown_associate_item_is_reason_4() -> None:
    # PS3.8 9.3.2 lists the only items allowed in the variable field: unrecognized parameter.
    data = encode_pdu(_rq())
    assert _reason(_with_length(1, data[6:] + b"\x60\x00\x00\x01\x00")) == 4


def test_unknown_presentation_context_sub_item_is_reason_4() -> None:
    pctx = b"\x01\x00\x00\x00" + b"\x30\x00\x00\x011" + b"\x45\x00\x00\x00"
    data = encode_pdu(AAssociateRQ("A", "B", ()))
    body = data[6:] + b"\x20\x00" + struct.pack(">H", len(pctx)) + pctx
    assert _reason(_with_length(1, body)) == 4


def test_presentation_context_without_abstract_syntax_is_reason_6() -> None:
    pctx = b"\x01\x00\x00\x00" + b"\x40\x00\x00\x011"
    data = encode_pdu(AAssociateRQ("A", "B", ()))
    body = data[6:] + b"\x20\x00" + struct.pack(">H", len(pctx)) + pctx
    assert _reason(_with_length(1, body)) == 6


def test_missing_application_context_is_reason_6() -> None:
    data = encode_pdu(AAssociateRQ("A", "B", ()))
    assert _reason(_with_length(1, data[6:74])) == 6


@pytest.mark.parametrize(
    "extra, pdu_type",
    [
        (b"\x10\x00\x00\x011", 1),  # a second application context item
        (b"\x50\x00\x00\x00", 1),  # a second user information item
        (b"\x21\x00\x00\x04\x01\x00\x00\x00", 1),  # an AC context in an RQ
        (b"\x20\x00\x00\x09\x01\x00\x00\x00\x30\x00\x00\x011", 2),  # an RQ context in an AC
        (b"\x21\x00\x00\x0e\x01\x00\x00\x00\x40\x00\x00\x011\x40\x00\x00\x012", 2),
        (b"\x21\x00\x00\x09\x01\x00\x00\x00\x30\x00\x00\x011", 2),  # abstract syntax in AC
        (b"\x20\x00\x00\x0e\x01\x00\x00\x00\x30\x00\x00\x011\x30\x00\x00\x012", 1),
    ],
)
def test_unexpected_items_are_reason_5(extra: bytes, pdu_type: int) -> None:
    base = AAssociateRQ("A", "B", ()) if pdu_type == 1 else AAssociateAC("A", "B", ())
    data = encode_pdu(base)
    assert _reason(_with_length(pdu_type, data[6:] + extra)) == 5


def test_missing_user_information_item_decodes_as_empty() -> None:
    data = encode_pdu(AAssociateRQ("A", "B", ()))
    decoded = decode_pdu(_with_length(1, data[6:-4]))
    assert decoded == AAssociateRQ("A", "B", ())


def test_ae_titles_keep_significant_characters() -> None:
    data = bytearray(encode_pdu(AAssociateRQ("A", "B", ())))
    data[10:26] = b"  LEAD\x00".ljust(16, b" ")
    decoded = decode_pdu(bytes(data))
    assert isinstance(decoded, AAssociateRQ)
    assert decoded.called_ae_title == "  LEAD\x00"
    assert encode_pdu(decoded) == bytes(data)


def test_sub_items_decode_to_their_classes() -> None:
    items: tuple[SubItem, ...] = (
        AsyncOpsWindow(5, 3),
        RoleSelection("1.2", 1, 0),
        UserIdentityRQ(2, 1, b"user", b"pass"),
    )
    decoded = decode_pdu(encode_pdu(_rq(*items)))
    assert isinstance(decoded, AAssociateRQ)
    ui = decoded.user_information
    assert ui.maximum_length == 16384
    assert ui.async_ops_window == AsyncOpsWindow(5, 3)
    assert ui.role_selections == (RoleSelection("1.2", 1, 0),)
    assert ui.user_identity_rq == UserIdentityRQ(2, 1, b"user", b"pass")


# --- hostile input: only PDUDecodeError ----------------------------------------------------


def _only_decode_errors(data: bytes) -> None:
    try:
        decode_pdu(data)
    except PDUDecodeError as exc:
        assert exc.abort_reason in (1, 4, 5, 6)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_pdu_decode_error(data: bytes) -> None:
    _only_decode_errors(data)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 7), st.binary(max_size=200))
def test_arbitrary_bodies_with_a_valid_header_only_raise_pdu_decode_error(
    pdu_type: int, body: bytes
) -> None:
    _only_decode_errors(_with_length(pdu_type, body))


@SETTINGS
@given(S.pdus, st.data())
def test_mutated_valid_pdus_only_raise_pdu_decode_error(pdu: PDU, data: st.DataObject) -> None:
    raw = bytearray(encode_pdu(pdu))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(6, max(6, len(raw) - 1)))
        if pos < len(raw):
            raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(6, len(raw)))
    body = bytes(raw[6:cut])
    _only_decode_errors(_with_length(raw[0], body))
