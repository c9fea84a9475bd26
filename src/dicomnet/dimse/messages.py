"""DIMSE messages: a command set plus an optional dataset (PS3.7 sections 6.3, 9.3, 10.3).

Theory of operation
-------------------
One class per message of PS3.7 sections 9.3 and 10.3 (``C_STORE_RQ`` ... ``N_DELETE_RSP``,
``C_CANCEL_RQ``). Each class knows its Command Field (0000,0100), the command elements its table
makes mandatory (``REQUIRED``) and the ones it allows (``OPTIONAL``: U and C entries), and which
primitive parameter carries its dataset. A message holds:

* ``command_set``: a :class:`CommandSet`, a thin keyword view over the ``{tag: value}`` dict that
  :mod:`dicomnet.dimse.commands` encodes and decodes (``msg.command_set.MessageID``);
* ``data_set``: the payload object (a :class:`~dicomnet.dimse.payload.Payload`, e.g. a
  ``DataSource``) or None; opaque here;
* ``context_id``: the presentation context it travels on (set by the provider), or None.

:meth:`DIMSEMessage.encode_command` fills Command Field and Command Data Set Type (0101H when no
dataset; 0001H otherwise, or the value already present if it also says "dataset present": any
value other than 0101H means a dataset follows, PS3.7 Table E.1-1) and encodes.

:func:`decode_message` parses received command bytes and reacts the way PS3.7 intends:

* a command set that does not parse, a missing/unknown Command Field, a missing Command Data Set
  Type (the framing of the message is then unknown), or a request without its Message ID / a
  response or C-CANCEL without Message ID Being Responded To (nothing to answer or match) raise
  :class:`DimseProtocolError` (``protocol`` is True): the caller aborts the association;
* a known command that lacks a mandatory element raises :class:`MissingCommandElementError`
  (status 0120H, "Missing attribute", PS3.7 Annex C.5); one whose element has a value of the
  wrong form (e.g. a SOP Instance UID with "/" in it, a Priority of 7, a blank AE title) raises
  :class:`InvalidCommandElementError` (status 0212H, "Mistyped argument", PS3.7 Annex C.5). Both
  derive from :class:`DimseCommandError`, which carries ``status``, the offending ``tag``, the
  decoded elements and :meth:`DimseCommandError.response`, the failure response to send back.

Elements a peer sends that the message's table does not list, and the retired command elements,
are kept in ``command_set`` (so they round-trip) but never reach the primitive.

Each element is checked once. :func:`decode_primitive` (what the DIMSE provider uses) returns
the message together with its primitive, built from the values the checks returned
(``DIMSEPrimitive.from_checked``) instead of validating them a second time as
:meth:`DIMSEMessage.to_primitive` does. Checks that a value decoded by
:func:`~dicomnet.dimse.commands.decode_command` always passes (US range, AT lists:
``primitives.RANGE_ONLY``) are skipped for decoded elements. Every class keeps, built once at
class creation, its (tag, keyword) parameter list and the set of elements it cannot do without,
so the complete, common case costs one subset test.
"""

from __future__ import annotations

from typing import Final

from dicomnet.dimse import primitives as P
from dicomnet.dimse.commands import ELEMENTS, DimseProtocolError, decode_command
from dicomnet.dimse.message_base import (
    DATASET_PRESENT,
    NO_DATASET,
    TAG_COMMAND_FIELD,
    TAG_DATASET_TYPE,
    CommandSet,
    DimseCommandError,
    DIMSEMessage,
    InvalidCommandElementError,
    MissingCommandElementError,
)
from dicomnet.errors import DimseError

__all__ = [
    "C_CANCEL_RQ",
    "C_ECHO_RQ",
    "C_ECHO_RSP",
    "C_FIND_RQ",
    "C_FIND_RSP",
    "C_GET_RQ",
    "C_GET_RSP",
    "C_MOVE_RQ",
    "C_MOVE_RSP",
    "C_STORE_RQ",
    "C_STORE_RSP",
    "DATASET_PRESENT",
    "MESSAGE_TYPES",
    "NO_DATASET",
    "N_ACTION_RQ",
    "N_ACTION_RSP",
    "N_CREATE_RQ",
    "N_CREATE_RSP",
    "N_DELETE_RQ",
    "N_DELETE_RSP",
    "N_EVENT_REPORT_RQ",
    "N_EVENT_REPORT_RSP",
    "N_GET_RQ",
    "N_GET_RSP",
    "N_SET_RQ",
    "N_SET_RSP",
    "CommandSet",
    "DIMSEMessage",
    "DimseCommandError",
    "DimseProtocolError",
    "InvalidCommandElementError",
    "MissingCommandElementError",
    "decode_message",
    "decode_primitive",
    "message_from_primitive",
]

_RQ_BASE = ("CommandField", "MessageID", "CommandDataSetType")
_RSP_BASE = ("CommandField", "MessageIDBeingRespondedTo", "CommandDataSetType", "Status")
_RSP_ERR = ("OffendingElement", "ErrorComment", "ErrorID")
_SUBOPS = (
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)


# PS3.7 section 9.3.1, Tables 9.3-1 and 9.3-2
class C_STORE_RQ(
    DIMSEMessage,
    field=0x0001,
    primitive=P.C_STORE,
    required=("AffectedSOPClassUID", *_RQ_BASE, "Priority", "AffectedSOPInstanceUID"),
    optional=("MoveOriginatorApplicationEntityTitle", "MoveOriginatorMessageID"),
    dataset="DataSet",
    dataset_required=True,
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class C_STORE_RSP(
    DIMSEMessage,
    field=0x8001,
    primitive=P.C_STORE,
    required=_RSP_BASE,
    optional=("AffectedSOPClassUID", "AffectedSOPInstanceUID", *_RSP_ERR),
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 9.3.2, Tables 9.3-3 and 9.3-4
class C_FIND_RQ(
    DIMSEMessage,
    field=0x0020,
    primitive=P.C_FIND,
    required=("AffectedSOPClassUID", *_RQ_BASE, "Priority"),
    dataset="Identifier",
    dataset_required=True,
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class C_FIND_RSP(
    DIMSEMessage,
    field=0x8020,
    primitive=P.C_FIND,
    required=_RSP_BASE,
    optional=("AffectedSOPClassUID", *_RSP_ERR),
    dataset="Identifier",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 9.3.3, Tables 9.3-6 and 9.3-7
class C_GET_RQ(
    DIMSEMessage,
    field=0x0010,
    primitive=P.C_GET,
    required=("AffectedSOPClassUID", *_RQ_BASE, "Priority"),
    dataset="Identifier",
    dataset_required=True,
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class C_GET_RSP(
    DIMSEMessage,
    field=0x8010,
    primitive=P.C_GET,
    required=_RSP_BASE,
    optional=("AffectedSOPClassUID", *_SUBOPS, *_RSP_ERR),
    dataset="Identifier",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 9.3.4, Tables 9.3-9 and 9.3-10
class C_MOVE_RQ(
    DIMSEMessage,
    field=0x0021,
    primitive=P.C_MOVE,
    required=("AffectedSOPClassUID", *_RQ_BASE, "Priority", "MoveDestination"),
    dataset="Identifier",
    dataset_required=True,
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class C_MOVE_RSP(
    DIMSEMessage,
    field=0x8021,
    primitive=P.C_MOVE,
    required=_RSP_BASE,
    optional=("AffectedSOPClassUID", *_SUBOPS, *_RSP_ERR),
    dataset="Identifier",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 9.3.5, Tables 9.3-12 and 9.3-13
class C_ECHO_RQ(
    DIMSEMessage,
    field=0x0030,
    primitive=P.C_ECHO,
    required=("AffectedSOPClassUID", *_RQ_BASE),
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class C_ECHO_RSP(
    DIMSEMessage,
    field=0x8030,
    primitive=P.C_ECHO,
    required=_RSP_BASE,
    optional=("AffectedSOPClassUID", *_RSP_ERR),
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 9.3.2.3 (Table 9.3-5), 9.3.3.3, 9.3.4.3
class C_CANCEL_RQ(
    DIMSEMessage,
    field=0x0FFF,
    primitive=P.C_CANCEL,
    required=("CommandField", "MessageIDBeingRespondedTo", "CommandDataSetType"),
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


_N_RSP_OPT = ("AffectedSOPClassUID", "AffectedSOPInstanceUID", *_RSP_ERR)
# PS3.7 Annex C.4.2 (Attribute list error, 0107H: "an Attribute Tag for each Attribute that
# was not recognized") and the statuses like it: N-GET/N-SET/N-CREATE responses may carry
# Attribute Identifier List (0000,1005)
_N_RSP_ATTRS = (*_N_RSP_OPT, "AttributeIdentifierList")


# PS3.7 section 10.3.1, Tables 10.3-1 and 10.3-2
class N_EVENT_REPORT_RQ(
    DIMSEMessage,
    field=0x0100,
    primitive=P.N_EVENT_REPORT,
    required=("AffectedSOPClassUID", *_RQ_BASE, "AffectedSOPInstanceUID", "EventTypeID"),
    dataset="EventInformation",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class N_EVENT_REPORT_RSP(
    DIMSEMessage,
    field=0x8100,
    primitive=P.N_EVENT_REPORT,
    required=_RSP_BASE,
    optional=(*_N_RSP_OPT, "EventTypeID"),
    dataset="EventReply",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 10.3.2, Tables 10.3-3 and 10.3-4
class N_GET_RQ(
    DIMSEMessage,
    field=0x0110,
    primitive=P.N_GET,
    required=("RequestedSOPClassUID", *_RQ_BASE, "RequestedSOPInstanceUID"),
    optional=("AttributeIdentifierList",),
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class N_GET_RSP(
    DIMSEMessage,
    field=0x8110,
    primitive=P.N_GET,
    required=_RSP_BASE,
    optional=_N_RSP_ATTRS,
    dataset="AttributeList",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 10.3.3, Tables 10.3-5 and 10.3-6
class N_SET_RQ(
    DIMSEMessage,
    field=0x0120,
    primitive=P.N_SET,
    required=("RequestedSOPClassUID", *_RQ_BASE, "RequestedSOPInstanceUID"),
    dataset="ModificationList",
    dataset_required=True,
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class N_SET_RSP(
    DIMSEMessage,
    field=0x8120,
    primitive=P.N_SET,
    required=_RSP_BASE,
    optional=_N_RSP_ATTRS,
    dataset="AttributeList",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 10.3.4, Tables 10.3-7 and 10.3-8
class N_ACTION_RQ(
    DIMSEMessage,
    field=0x0130,
    primitive=P.N_ACTION,
    required=("RequestedSOPClassUID", *_RQ_BASE, "RequestedSOPInstanceUID", "ActionTypeID"),
    dataset="ActionInformation",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class N_ACTION_RSP(
    DIMSEMessage,
    field=0x8130,
    primitive=P.N_ACTION,
    required=_RSP_BASE,
    optional=(*_N_RSP_OPT, "ActionTypeID"),
    dataset="ActionReply",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 10.3.5, Tables 10.3-9 and 10.3-10
class N_CREATE_RQ(
    DIMSEMessage,
    field=0x0140,
    primitive=P.N_CREATE,
    required=("AffectedSOPClassUID", *_RQ_BASE),
    optional=("AffectedSOPInstanceUID",),
    dataset="AttributeList",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class N_CREATE_RSP(
    DIMSEMessage,
    field=0x8140,
    primitive=P.N_CREATE,
    required=_RSP_BASE,
    optional=_N_RSP_ATTRS,
    dataset="AttributeList",
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


# PS3.7 section 10.3.6, Tables 10.3-11 and 10.3-12
class N_DELETE_RQ(
    DIMSEMessage,
    field=0x0150,
    primitive=P.N_DELETE,
    required=("RequestedSOPClassUID", *_RQ_BASE, "RequestedSOPInstanceUID"),
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


class N_DELETE_RSP(
    DIMSEMessage,
    field=0x8150,
    primitive=P.N_DELETE,
    required=_RSP_BASE,
    optional=_N_RSP_OPT,
):
    """{pretty} (Command Field {args[1].value:04X}H)."""

    __slots__ = ()


#: Command Field -> message class
MESSAGE_TYPES: Final[dict[int, type[DIMSEMessage]]] = {
    cls.COMMAND_FIELD: cls
    for cls in (
        C_STORE_RQ,
        C_STORE_RSP,
        C_FIND_RQ,
        C_FIND_RSP,
        C_GET_RQ,
        C_GET_RSP,
        C_MOVE_RQ,
        C_MOVE_RSP,
        C_ECHO_RQ,
        C_ECHO_RSP,
        C_CANCEL_RQ,
        N_EVENT_REPORT_RQ,
        N_EVENT_REPORT_RSP,
        N_GET_RQ,
        N_GET_RSP,
        N_SET_RQ,
        N_SET_RSP,
        N_ACTION_RQ,
        N_ACTION_RSP,
        N_CREATE_RQ,
        N_CREATE_RSP,
        N_DELETE_RQ,
        N_DELETE_RSP,
    )
}

for _field, _cls in MESSAGE_TYPES.items():
    if not _field & 0x8000 and _field != 0x0FFF:  # a request (C-CANCEL has no response)
        _cls.RESPONSE = MESSAGE_TYPES[_field | 0x8000]
del _field, _cls
_CLASS_OF_PRIMITIVE: Final[dict[tuple[type[P.DIMSEPrimitive], bool], type[DIMSEMessage]]] = {
    (cls.PRIMITIVE, cls.IS_REQUEST): cls for cls in MESSAGE_TYPES.values()
}


def decode_message(
    command_bytes: bytes | bytearray | memoryview, data_set: object | None = None
) -> DIMSEMessage:
    """Decode a received command set into its message class and check its elements.

    Raises :class:`DimseProtocolError` (abort) or a :class:`DimseCommandError` subclass (answer
    with its ``status``), as described in the module docstring.
    """
    return _decode(command_bytes, data_set)[0]


def decode_primitive(
    command_bytes: bytes | bytearray | memoryview,
    data_set: object | None = None,
    elements: dict[int, object] | None = None,
) -> tuple[DIMSEMessage, P.DIMSEPrimitive]:
    """:func:`decode_message` plus the message's primitive, built from the values just checked
    (the validators run once: ``msg.to_primitive()`` would run them again). Same errors.

    ``elements``: ``decode_command(command_bytes)`` when the caller has it already (the
    reassembler does); the dict then belongs to the returned message."""
    msg, params = _decode(command_bytes, data_set, elements)
    if data_set is not None and msg.DATASET is not None:
        params[msg.DATASET] = data_set
    prim: P.DIMSEPrimitive = msg.PRIMITIVE.from_checked(params)
    return msg, prim


# Affected SOP Class/Instance UID: in responses, optional copies of the request's (PS3.7 9.3).
_ECHOED_UIDS = frozenset({0x00000002, 0x00001000})


def _decode(
    command_bytes: bytes | bytearray | memoryview,
    data_set: object | None,
    elements: dict[int, object] | None = None,
) -> tuple[DIMSEMessage, dict[str, object]]:
    """The message and its checked primitive parameters ({keyword: validated value})."""
    if elements is None:
        elements = decode_command(command_bytes)
    field = elements.get(TAG_COMMAND_FIELD)
    if field is None:
        raise DimseProtocolError("command set has no (0000,0100) CommandField")
    cls = MESSAGE_TYPES.get(field) if isinstance(field, int) else None
    if cls is None:
        raise DimseProtocolError(f"unknown (0000,0100) CommandField {field!r}")
    if not elements.keys() >= cls.MUST_HAVE:  # one test for the common, complete case
        name = cls.__name__
        if TAG_DATASET_TYPE not in elements:
            raise DimseProtocolError(f"{name} without (0000,0800) CommandDataSetType")
        id_tag = cls.ID_TAG
        if id_tag not in elements:
            raise DimseProtocolError(f"{name} without {ELEMENTS[id_tag].keyword}")
        for tag in cls.REQUIRED:
            if tag not in elements:
                raise MissingCommandElementError(
                    f"{name}: mandatory {ELEMENTS[tag].keyword} missing",
                    message_class=cls,
                    tag=tag,
                    elements=elements,
                )
    params: dict[str, object] = {}
    for tag, keyword, validator in cls.CHECKS:
        value = elements.get(tag)
        if value is None:
            continue
        if validator is not None:
            try:
                value = validator(keyword, value)
            except DimseError as exc:
                if not cls.IS_REQUEST and tag in _ECHOED_UIDS and tag not in cls.REQUIRED:
                    # A response echoing a UID that breaks PS3.5 9.1 (an old file's SOP
                    # Instance UID we sent as it was): the optional echo is dropped, the status
                    # still reaches the requestor. Requests stay strict: their UIDs name files.
                    del elements[tag]
                    continue
                raise InvalidCommandElementError(
                    f"{cls.__name__}: {exc}", message_class=cls, tag=tag, elements=elements
                ) from None
        params[keyword] = value
    msg: DIMSEMessage = cls.__new__(cls)
    msg.command_set = CommandSet(elements)
    msg.data_set = data_set
    msg.context_id = None
    return msg, params


def message_from_primitive(primitive: P.DIMSEPrimitive) -> DIMSEMessage:
    """Build the request (Status unset) or response (Status set) message for ``primitive``."""
    is_request = isinstance(primitive, P.C_CANCEL) or getattr(primitive, "Status", None) is None
    cls = _CLASS_OF_PRIMITIVE.get((type(primitive), is_request))
    if cls is None:
        raise DimseError(f"no DIMSE message for {type(primitive).__name__}")
    elements: dict[int, object] = {TAG_COMMAND_FIELD: cls.COMMAND_FIELD}
    for tag, keyword in cls.PARAMS:
        value = getattr(primitive, keyword, None)
        if value is not None:
            elements[tag] = value
    msg: DIMSEMessage = cls.__new__(cls)
    msg.command_set = CommandSet(elements)
    msg.data_set = getattr(primitive, cls.DATASET) if cls.DATASET is not None else None
    msg.context_id = None
    return msg
