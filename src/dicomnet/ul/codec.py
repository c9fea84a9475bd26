"""Encoding and decoding of Upper Layer PDUs (PS3.8 section 9.3, PS3.7 Annex D.3.3).

Theory of operation
-------------------
:func:`decode_pdu` takes exactly one whole PDU (6-byte header included) and returns the frozen
dataclass of :mod:`dicomnet.ul.pdu` it encodes; :func:`encode_pdu` is its inverse. Both are pure
functions with no state.

Decoding works on a ``memoryview`` with precompiled :class:`struct.Struct` objects and never
copies payload bytes: the ``data`` of each PDV is a slice of the caller's buffer. Every length
read off the wire is checked against the bytes its enclosing PDU or item really has *before* it
is used, so a forged length can only produce :class:`~dicomnet.errors.PDUDecodeError`, which
carries the A-ABORT reason (PS3.8 Table 9-26) that the state machine sends back:

* 1 unrecognized-PDU: a PDU type that is not one of the seven of PS3.8 section 9.3.1.
* 4 unrecognized-PDU-parameter: an item of unknown type where PS3.8 lists the only items allowed
  (the variable field of A-ASSOCIATE-RQ/AC, section 9.3.2/9.3.3, and the sub-items of a
  presentation context item, section 9.3.2.2/9.3.3.2). Unknown *user information* sub-items are
  not errors: PS3.7 Annex D.3.3 says to ignore them, so they are kept as ``UnknownSubItem``.
* 5 unexpected-PDU-parameter: a known item where it may not appear (a second application context
  item or user information item, an abstract syntax sub-item in an A-ASSOCIATE-AC, two transfer
  syntaxes in one context answer, a 20H item in an A-ASSOCIATE-AC or 21H in an RQ). User
  information sub-items are decoded wherever they appear (e.g. 59H in an RQ) and left to the
  negotiation layer, so re-encoding stays exact.
* 6 invalid-PDU-parameter-value: every length problem (truncation, a length running past its
  enclosing PDU/item, fixed-size PDUs/items of the wrong size, PDV item length < 2, a P-DATA-TF
  with no PDV) and every missing mandatory item (application context, abstract syntax).

Values are kept as received (reserved fields excepted, which PS3.8 says not to test), so
decoding then encoding a real peer's PDU gives back the same bytes. Text fields are decoded as
ISO 8859-1 so that any byte value survives the round trip; the negotiation layer validates them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from dicomnet.errors import PDUDecodeError, ProtocolError
from dicomnet.ul.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
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
    ImplementationVersionName,
    MaximumLength,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    SubItem,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)

__all__ = [
    "ITEM_HEADER",
    "PDU_HEADER",
    "PDV_HEADER",
    "decode_pdu",
    "encode_pdu",
    "pdata_header",
]

# PS3.8 section 9.3.1: PDU-type (1), reserved (1), PDU-length (4, big endian).
PDU_HEADER = struct.Struct(">BxI")
# Item / sub-item header, PS3.8 section 9.3.2.x: item-type (1), reserved (1), item-length (2).
ITEM_HEADER = struct.Struct(">BxH")
# PDV item, PS3.8 section 9.3.5.1: item-length (4), context ID (1), message control header (1).
PDV_HEADER = struct.Struct(">IBB")
# PDU header + one PDV item header: the 12 bytes before a single-PDV payload.
_PDATA_HEADER = struct.Struct(">BxIIBB")
# A-ASSOCIATE-RQ/AC fixed fields after the header, PS3.8 Tables 9-11 and 9-17:
# protocol-version (2), reserved (2), called AE (16), calling AE (16), reserved (32).
_ASSOC_FIXED = struct.Struct(">Hxx16s16s32x")
# A-ASSOCIATE-RJ (Table 9-21) and A-ABORT (Table 9-26): reserved, result/reserved, source, reason.
_RJ_BODY = struct.Struct(">xBBB")
_ABORT_BODY = struct.Struct(">xxBB")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U16U16 = struct.Struct(">HH")
# Presentation context item fixed part (PS3.8 Tables 9-13 and 9-18): ID, reserved, result, reserved.
_PCTX_FIXED = struct.Struct(">BxBx")
# The same for the RQ item, whose byte 7 (reserved) is kept for exact re-encoding.
_PCTX_RQ_FIXED = _PCTX_FIXED

_ASSOC_FIXED_LEN = _ASSOC_FIXED.size  # 68
_MAX_PDU_LENGTH = 0xFFFFFFFF  # the 32-bit PDU-length field

# Item types, PS3.8 section 9.3.2 and PS3.7 Annex D.3.3.
ITEM_APPLICATION_CONTEXT = 0x10
ITEM_PCTX_RQ = 0x20
ITEM_PCTX_AC = 0x21
ITEM_ABSTRACT_SYNTAX = 0x30
ITEM_TRANSFER_SYNTAX = 0x40
ITEM_USER_INFORMATION = 0x50
SUB_MAXIMUM_LENGTH = 0x51
SUB_IMPLEMENTATION_CLASS_UID = 0x52
SUB_ASYNC_OPS_WINDOW = 0x53
SUB_ROLE_SELECTION = 0x54
SUB_IMPLEMENTATION_VERSION_NAME = 0x55
SUB_SOP_CLASS_EXTENDED = 0x56
SUB_SOP_CLASS_COMMON_EXTENDED = 0x57
SUB_USER_IDENTITY_RQ = 0x58
SUB_USER_IDENTITY_AC = 0x59

# A-ABORT reasons, PS3.8 Table 9-26.
_UNRECOGNIZED_PDU = 1
_UNRECOGNIZED_PARAMETER = 4
_UNEXPECTED_PARAMETER = 5
_INVALID_PARAMETER = 6

_RESERVED4 = b"\x00\x00\x00\x00"


def _bad(message: str, reason: int = _INVALID_PARAMETER) -> PDUDecodeError:
    return PDUDecodeError(message, abort_source=2, abort_reason=reason)


def _text(raw: memoryview | bytes) -> str:
    # ISO 646 (PS3.8 9.3.2) is a subset of Latin-1; Latin-1 maps every byte, so any value the
    # peer sends survives decode/encode unchanged and validation is left to negotiation.
    return str(raw, "latin-1")


# --- decoding -----------------------------------------------------------------------------------


def _iter_items(view: memoryview, start: int, end: int, what: str) -> list[tuple[int, int, int]]:
    """(type, value start, value end) of each item in view[start:end]; lengths checked."""
    items: list[tuple[int, int, int]] = []
    unpack = ITEM_HEADER.unpack_from
    pos = start
    while pos < end:
        if end - pos < 4:
            raise _bad(f"truncated item header in {what}")
        item_type, length = unpack(view, pos)
        pos += 4
        if length > end - pos:
            raise _bad(f"item {item_type:02X}H length {length} runs past the end of {what}")
        items.append((item_type, pos, pos + length))
        pos += length
    return items


def _decode_role(v: memoryview) -> RoleSelection:
    # PS3.7 D.3.3.4: UID-length (2), SOP class UID, SCU-role (1), SCP-role (1).
    if len(v) < 2:
        raise _bad("truncated SCP/SCU role selection sub-item")
    (uid_len,) = _U16.unpack_from(v, 0)
    if uid_len + 4 != len(v):
        raise _bad("SCP/SCU role selection sub-item lengths do not add up")
    return RoleSelection(_text(v[2 : 2 + uid_len]), v[2 + uid_len], v[3 + uid_len])


def _decode_ext_neg(v: memoryview) -> SOPClassExtendedNegotiation:
    # PS3.7 D.3.3.5: SOP-class-uid-length (2), SOP class UID, service-class-application-info.
    if len(v) < 2:
        raise _bad("truncated SOP class extended negotiation sub-item")
    (uid_len,) = _U16.unpack_from(v, 0)
    if uid_len + 2 > len(v):
        raise _bad("SOP class extended negotiation UID length runs past the sub-item")
    return SOPClassExtendedNegotiation(_text(v[2 : 2 + uid_len]), bytes(v[2 + uid_len :]))


def _decode_common_ext_neg(v: memoryview) -> SOPClassCommonExtendedNegotiation:
    # PS3.7 D.3.3.6: SOP-class-uid-length (2), UID, service-class-uid-length (2), UID,
    # related-general-sop-class-identification-length (2), then sub-items of
    # related-general-sop-class-uid-length (2) + UID.
    end = len(v)
    pos = 0
    fields: list[str] = []
    for name in ("SOP class UID", "service class UID"):
        if end - pos < 2:
            raise _bad(f"truncated {name} in common extended negotiation sub-item")
        (n,) = _U16.unpack_from(v, pos)
        pos += 2
        if n > end - pos:
            raise _bad(f"{name} length runs past the common extended negotiation sub-item")
        fields.append(_text(v[pos : pos + n]))
        pos += n
    if end - pos < 2:
        raise _bad("truncated related general SOP class length")
    (rel_len,) = _U16.unpack_from(v, pos)
    pos += 2
    if rel_len != end - pos:
        raise _bad("related general SOP class identification length does not match sub-item")
    related: list[str] = []
    while pos < end:
        if end - pos < 2:
            raise _bad("truncated related general SOP class UID length")
        (n,) = _U16.unpack_from(v, pos)
        pos += 2
        if n > end - pos:
            raise _bad("related general SOP class UID runs past the sub-item")
        related.append(_text(v[pos : pos + n]))
        pos += n
    return SOPClassCommonExtendedNegotiation(fields[0], fields[1], tuple(related))


def _decode_user_identity_rq(v: memoryview) -> UserIdentityRQ:
    # PS3.7 D.3.3.7.1: type (1), positive-response-requested (1), primary-field-length (2),
    # primary field, secondary-field-length (2), secondary field.
    end = len(v)
    if end < 4:
        raise _bad("truncated user identity sub-item")
    (n1,) = _U16.unpack_from(v, 2)
    if 4 + n1 + 2 > end:
        raise _bad("user identity primary field runs past the sub-item")
    (n2,) = _U16.unpack_from(v, 4 + n1)
    if 6 + n1 + n2 != end:
        raise _bad("user identity sub-item lengths do not add up")
    return UserIdentityRQ(v[0], v[1], bytes(v[4 : 4 + n1]), bytes(v[6 + n1 :]))


def _decode_user_identity_ac(v: memoryview) -> UserIdentityAC:
    # PS3.7 D.3.3.7.2: server-response-length (2), server response.
    if len(v) < 2:
        raise _bad("truncated user identity response sub-item")
    (n,) = _U16.unpack_from(v, 0)
    if n + 2 != len(v):
        raise _bad("user identity response lengths do not add up")
    return UserIdentityAC(bytes(v[2:]))


def _decode_max_length(v: memoryview) -> MaximumLength:
    if len(v) != 4:  # PS3.8 D.1.1: item-length is always 4
        raise _bad("maximum length sub-item length is not 4")
    return MaximumLength(_U32.unpack_from(v, 0)[0])


def _decode_async(v: memoryview) -> AsyncOpsWindow:
    if len(v) != 4:  # PS3.7 D.3.3.3: item-length is always 4
        raise _bad("asynchronous operations window sub-item length is not 4")
    invoked, performed = _U16U16.unpack_from(v, 0)
    return AsyncOpsWindow(invoked, performed)


_SUB_DECODERS: dict[int, Callable[[memoryview], SubItem]] = {
    SUB_MAXIMUM_LENGTH: _decode_max_length,
    SUB_IMPLEMENTATION_CLASS_UID: lambda v: ImplementationClassUID(_text(v)),
    SUB_ASYNC_OPS_WINDOW: _decode_async,
    SUB_ROLE_SELECTION: _decode_role,
    SUB_IMPLEMENTATION_VERSION_NAME: lambda v: ImplementationVersionName(_text(v)),
    SUB_SOP_CLASS_EXTENDED: _decode_ext_neg,
    SUB_SOP_CLASS_COMMON_EXTENDED: _decode_common_ext_neg,
    SUB_USER_IDENTITY_RQ: _decode_user_identity_rq,
    SUB_USER_IDENTITY_AC: _decode_user_identity_ac,
}


def _decode_user_info(view: memoryview, start: int, end: int) -> UserInformation:
    subs: list[SubItem] = []
    for sub_type, s, e in _iter_items(view, start, end, "user information item"):
        decoder = _SUB_DECODERS.get(sub_type)
        if decoder is None:
            # PS3.7 D.3.3: unknown sub-items are ignored by the receiver; keep them verbatim.
            subs.append(UnknownSubItem(sub_type, bytes(view[s:e])))
        else:
            subs.append(decoder(view[s:e]))
    return UserInformation(tuple(subs))


def _decode_pctx_rq(view: memoryview, start: int, end: int) -> PresentationContextRQ:
    # PS3.8 9.3.2.2: ID, reserved, reserved, reserved, one 30H then one or more 40H sub-items.
    if end - start < 4:
        raise _bad("truncated presentation context item")
    context_id, reserved = _PCTX_RQ_FIXED.unpack_from(view, start)
    abstract: str | None = None
    transfers: list[str] = []
    for sub_type, s, e in _iter_items(view, start + 4, end, "presentation context item"):
        if sub_type == ITEM_ABSTRACT_SYNTAX:
            if abstract is not None:
                raise _bad("two abstract syntax sub-items in one context", _UNEXPECTED_PARAMETER)
            abstract = _text(view[s:e])
        elif sub_type == ITEM_TRANSFER_SYNTAX:
            transfers.append(_text(view[s:e]))
        else:
            raise _bad(
                f"unknown presentation context sub-item {sub_type:02X}H", _UNRECOGNIZED_PARAMETER
            )
    if abstract is None:
        raise _bad(f"presentation context {context_id} has no abstract syntax")
    return PresentationContextRQ(context_id, abstract, tuple(transfers), reserved)


def _decode_pctx_ac(view: memoryview, start: int, end: int) -> PresentationContextAC:
    # PS3.8 9.3.3.2: ID, reserved, result/reason, reserved, one 40H sub-item (which PS3.8
    # says is not significant when the context was rejected; some peers then omit it).
    if end - start < 4:
        raise _bad("truncated presentation context item")
    context_id, result = _PCTX_FIXED.unpack_from(view, start)
    transfer: str | None = None
    for sub_type, s, e in _iter_items(view, start + 4, end, "presentation context item"):
        if sub_type == ITEM_TRANSFER_SYNTAX:
            if transfer is not None:
                raise _bad("two transfer syntaxes in one context answer", _UNEXPECTED_PARAMETER)
            transfer = _text(view[s:e])
        elif sub_type == ITEM_ABSTRACT_SYNTAX:
            raise _bad("abstract syntax in an A-ASSOCIATE-AC context", _UNEXPECTED_PARAMETER)
        else:
            raise _bad(
                f"unknown presentation context sub-item {sub_type:02X}H", _UNRECOGNIZED_PARAMETER
            )
    return PresentationContextAC(context_id, result, transfer)


def _decode_associate(view: memoryview, pdu_type: int) -> AAssociateRQ | AAssociateAC:
    end = len(view)
    if end < 6 + _ASSOC_FIXED_LEN:
        raise _bad("A-ASSOCIATE PDU shorter than its fixed fields")
    version, called, calling = _ASSOC_FIXED.unpack_from(view, 6)
    is_rq = pdu_type == A_ASSOCIATE_RQ
    pctx_type = ITEM_PCTX_RQ if is_rq else ITEM_PCTX_AC
    app_context: str | None = None
    user_info: UserInformation | None = None
    rq_contexts: list[PresentationContextRQ] = []
    ac_contexts: list[PresentationContextAC] = []
    for item_type, s, e in _iter_items(view, 6 + _ASSOC_FIXED_LEN, end, "A-ASSOCIATE PDU"):
        if item_type == pctx_type:
            if is_rq:
                rq_contexts.append(_decode_pctx_rq(view, s, e))
            else:
                ac_contexts.append(_decode_pctx_ac(view, s, e))
        elif item_type == ITEM_APPLICATION_CONTEXT:
            if app_context is not None:
                raise _bad("two application context items", _UNEXPECTED_PARAMETER)
            app_context = _text(view[s:e])
        elif item_type == ITEM_USER_INFORMATION:
            if user_info is not None:
                raise _bad("two user information items", _UNEXPECTED_PARAMETER)
            user_info = _decode_user_info(view, s, e)
        elif item_type in (ITEM_PCTX_RQ, ITEM_PCTX_AC):
            raise _bad(
                f"presentation context item {item_type:02X}H in the wrong PDU",
                _UNEXPECTED_PARAMETER,
            )
        else:
            # PS3.8 9.3.2/9.3.3 list the only items the variable field may hold; unlike user
            # information sub-items (PS3.7 D.3.3) there is no rule to ignore others, so an
            # unknown item is an unrecognized PDU parameter (A-ABORT reason 4, Table 9-26).
            raise _bad(f"unknown A-ASSOCIATE item type {item_type:02X}H", _UNRECOGNIZED_PARAMETER)
    if app_context is None:
        raise _bad("A-ASSOCIATE PDU without an application context item")
    # The user information item is mandatory too, but a missing one carries no information we
    # could not default, so accept it as empty rather than abort.
    ui = user_info if user_info is not None else UserInformation()
    # AE titles: keep what was received minus trailing space padding (the encoder puts it back).
    called_ae = _text(called).rstrip(" ")
    calling_ae = _text(calling).rstrip(" ")
    if is_rq:
        return AAssociateRQ(called_ae, calling_ae, tuple(rq_contexts), ui, app_context, version)
    return AAssociateAC(called_ae, calling_ae, tuple(ac_contexts), ui, app_context, version)


def _decode_pdata(view: memoryview) -> PDataTF:
    # PS3.8 9.3.5: one or more PDV items, each item-length (4) >= 2 covering ID + control + data.
    end = len(view)
    pos = 6
    pdvs: list[PDV] = []
    unpack = PDV_HEADER.unpack_from
    while pos < end:
        if end - pos < 6:
            raise _bad("truncated PDV item header")
        length, context_id, control = unpack(view, pos)
        if length < 2:
            raise _bad(f"PDV item length {length} leaves no room for context ID and control")
        data_end = pos + 4 + length
        if data_end > end:
            raise _bad(f"PDV item length {length} runs past the end of the P-DATA-TF")
        pdvs.append(PDV(context_id, control, view[pos + 6 : data_end]))
        pos = data_end
    if not pdvs:
        raise _bad("P-DATA-TF without any PDV item")
    return PDataTF(tuple(pdvs))


def decode_pdu(data: bytes | bytearray | memoryview) -> PDU:
    """Decode one whole PDU (header included); raise PDUDecodeError on anything malformed."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    total = len(view)
    if total < 6:
        raise _bad("truncated PDU header")
    pdu_type, length = PDU_HEADER.unpack_from(view, 0)
    if pdu_type not in _KNOWN_TYPES:
        # PS3.8 9.3.1 / Table 9-26: unrecognized-PDU, whatever its (forged) length says.
        raise _bad(f"unrecognized PDU type {pdu_type:02X}H", _UNRECOGNIZED_PDU)
    if length != total - 6:
        raise _bad(f"PDU length {length} does not match the {total - 6} bytes given")
    if pdu_type == P_DATA_TF:
        return _decode_pdata(view)
    if pdu_type in (A_ASSOCIATE_RQ, A_ASSOCIATE_AC):
        return _decode_associate(view, pdu_type)
    # The rest are RJ / release / abort. PS3.8 9.3.4, 9.3.6-9.3.8: exactly 4 bytes of body.
    if length != 4:
        raise _bad(f"PDU type {pdu_type:02X}H must have length 4, not {length}")
    if pdu_type == A_ASSOCIATE_RJ:
        return AAssociateRJ(*_RJ_BODY.unpack_from(view, 6))
    if pdu_type == A_ABORT:
        return AAbort(*_ABORT_BODY.unpack_from(view, 6))
    return AReleaseRQ() if pdu_type == A_RELEASE_RQ else AReleaseRP()


_FIXED_4 = frozenset((A_ASSOCIATE_RJ, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT))
_KNOWN_TYPES = _FIXED_4 | {A_ASSOCIATE_RQ, A_ASSOCIATE_AC, P_DATA_TF}


# --- encoding -----------------------------------------------------------------------------------


def _local(message: str) -> ProtocolError:
    return ProtocolError(message, local=True)


def _latin1(value: str, what: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise _local(f"{what} {value!r} is not encodable") from None


def _item(item_type: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise _local(f"item {item_type:02X}H too long ({len(value)} bytes)")
    return ITEM_HEADER.pack(item_type, len(value)) + value


def _u16_prefixed(value: bytes, what: str) -> bytes:
    if len(value) > 0xFFFF:
        raise _local(f"{what} too long")
    return _U16.pack(len(value)) + value


def _encode_sub_item(sub: SubItem) -> bytes:
    if isinstance(sub, MaximumLength):
        return _item(SUB_MAXIMUM_LENGTH, _U32.pack(sub.maximum_length))
    if isinstance(sub, ImplementationClassUID):
        return _item(SUB_IMPLEMENTATION_CLASS_UID, _latin1(sub.uid, "UID"))
    if isinstance(sub, ImplementationVersionName):
        return _item(SUB_IMPLEMENTATION_VERSION_NAME, _latin1(sub.name, "version name"))
    if isinstance(sub, AsyncOpsWindow):
        body = _U16U16.pack(sub.max_operations_invoked, sub.max_operations_performed)
        return _item(SUB_ASYNC_OPS_WINDOW, body)
    if isinstance(sub, RoleSelection):
        uid = _u16_prefixed(_latin1(sub.sop_class_uid, "UID"), "UID")
        return _item(SUB_ROLE_SELECTION, uid + bytes((sub.scu_role, sub.scp_role)))
    if isinstance(sub, SOPClassExtendedNegotiation):
        uid = _u16_prefixed(_latin1(sub.sop_class_uid, "UID"), "UID")
        return _item(SUB_SOP_CLASS_EXTENDED, uid + bytes(sub.service_class_application_information))
    if isinstance(sub, SOPClassCommonExtendedNegotiation):
        related = b"".join(
            _u16_prefixed(_latin1(u, "UID"), "UID") for u in sub.related_general_sop_class_uids
        )
        body = (
            _u16_prefixed(_latin1(sub.sop_class_uid, "UID"), "UID")
            + _u16_prefixed(_latin1(sub.service_class_uid, "UID"), "UID")
            + _u16_prefixed(related, "related general SOP classes")
        )
        # Byte 2 is the sub-item version, 0 (PS3.7 D.3.3.6); ITEM_HEADER writes it as 0.
        return _item(SUB_SOP_CLASS_COMMON_EXTENDED, body)
    if isinstance(sub, UserIdentityRQ):
        body = (
            bytes((sub.user_identity_type, sub.positive_response_requested))
            + _u16_prefixed(bytes(sub.primary_field), "primary field")
            + _u16_prefixed(bytes(sub.secondary_field), "secondary field")
        )
        return _item(SUB_USER_IDENTITY_RQ, body)
    if isinstance(sub, UserIdentityAC):
        return _item(SUB_USER_IDENTITY_AC, _u16_prefixed(bytes(sub.server_response), "response"))
    if isinstance(sub, UnknownSubItem):
        return _item(sub.item_type, bytes(sub.data))
    raise _local(f"not a user information sub-item: {sub!r}")


def _encode_user_info(ui: UserInformation) -> bytes:
    return _item(ITEM_USER_INFORMATION, b"".join(_encode_sub_item(s) for s in ui.sub_items))


def _ae(title: str, what: str) -> bytes:
    raw = _latin1(title, what)
    if len(raw) > 16:
        raise _local(f"{what} {title!r} is longer than 16 characters")
    return raw.ljust(16, b" ")


def _encode_associate(pdu: AAssociateRQ | AAssociateAC) -> bytes:
    parts = [_item(ITEM_APPLICATION_CONTEXT, _latin1(pdu.application_context_name, "UID"))]
    if isinstance(pdu, AAssociateRQ):
        for rq in pdu.presentation_contexts:
            subs = [_item(ITEM_ABSTRACT_SYNTAX, _latin1(rq.abstract_syntax, "UID"))]
            subs.extend(
                _item(ITEM_TRANSFER_SYNTAX, _latin1(t, "UID")) for t in rq.transfer_syntaxes
            )
            parts.append(
                _item(
                    ITEM_PCTX_RQ, _PCTX_RQ_FIXED.pack(rq.context_id, rq.reserved) + b"".join(subs)
                )
            )
        pdu_type = A_ASSOCIATE_RQ
    else:
        for ac in pdu.presentation_contexts:
            ts = (
                b""
                if ac.transfer_syntax is None
                else _item(ITEM_TRANSFER_SYNTAX, _latin1(ac.transfer_syntax, "UID"))
            )
            parts.append(_item(ITEM_PCTX_AC, _PCTX_FIXED.pack(ac.context_id, ac.result) + ts))
        pdu_type = A_ASSOCIATE_AC
    parts.append(_encode_user_info(pdu.user_information))
    fixed = _ASSOC_FIXED.pack(
        pdu.protocol_version,
        _ae(pdu.called_ae_title, "called AE title"),
        _ae(pdu.calling_ae_title, "calling AE title"),
    )
    body = b"".join(parts)
    return PDU_HEADER.pack(pdu_type, len(fixed) + len(body)) + fixed + body


def _encode_pdata(pdu: PDataTF) -> bytes:
    parts: list[bytes | memoryview] = [b""]
    total = 0
    pack = PDV_HEADER.pack
    for pdv in pdu.pdvs:
        n = len(pdv.data)
        parts.append(pack(n + 2, pdv.context_id, pdv.control))
        parts.append(pdv.data)
        total += n + 6
    if total > _MAX_PDU_LENGTH:
        raise _local("P-DATA-TF too long for the 32-bit PDU length")
    parts[0] = PDU_HEADER.pack(P_DATA_TF, total)
    return b"".join(parts)


def encode_pdu(pdu: PDU) -> bytes:
    """The bytes of ``pdu`` on the wire (PS3.8 section 9.3); raises ProtocolError(local=True)
    for values that cannot be encoded (over-long fields, out-of-range integers)."""
    try:
        if isinstance(pdu, PDataTF):
            return _encode_pdata(pdu)
        if isinstance(pdu, (AAssociateRQ, AAssociateAC)):
            return _encode_associate(pdu)
        if isinstance(pdu, AAssociateRJ):
            return PDU_HEADER.pack(A_ASSOCIATE_RJ, 4) + _RJ_BODY.pack(
                pdu.result, pdu.source, pdu.reason
            )
        if isinstance(pdu, AReleaseRQ):
            return PDU_HEADER.pack(A_RELEASE_RQ, 4) + _RESERVED4
        if isinstance(pdu, AReleaseRP):
            return PDU_HEADER.pack(A_RELEASE_RP, 4) + _RESERVED4
        if isinstance(pdu, AAbort):
            return PDU_HEADER.pack(A_ABORT, 4) + _ABORT_BODY.pack(pdu.source, pdu.reason)
    except (struct.error, ValueError, TypeError, OverflowError) as exc:
        raise _local(f"cannot encode {type(pdu).__name__}: {exc}") from None
    raise _local(f"not a PDU: {pdu!r}")


def pdata_header(context_id: int, control: int, payload_length: int) -> bytes:
    """PDU header + PDV item header (12 bytes) of a P-DATA-TF carrying one PDV of
    ``payload_length`` bytes (PS3.8 9.3.5): send it followed by the payload itself."""
    if not 0 <= payload_length <= _MAX_PDU_LENGTH - 6:
        raise _local(f"PDV payload length {payload_length} out of range")
    return _PDATA_HEADER.pack(
        P_DATA_TF, payload_length + 6, payload_length + 2, context_id, control
    )
