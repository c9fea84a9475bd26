"""DIMSE status codes and their categories (PS3.7 Annex C, PS3.4 service annexes).

Theory of operation
-------------------
A response's Status (0000,0900) is a US code whose *category* decides what the requester does
next (PS3.7 Annex C): Success ends the operation, Pending (FF00/FF01) announces more responses,
Cancel (FE00) confirms a C-CANCEL, Warning and Failure end it with a problem. :func:`category`
applies the fixed rules of PS3.7 Annex C and the PS3.4 tables, which do not depend on the
service: 0000 success; 0001, Bxxx, 0107 and 0116 warning; FE00 cancel; FF00 and FF01 pending;
everything else failure. It is a couple of comparisons, cheap enough for every response.

:data:`STATUS` holds the general codes of PS3.7 Annex C (C.1-C.5); :data:`SERVICE_STATUS` adds
the per-service meanings of PS3.4 (Storage, Annex B.2.3; Query/Retrieve, Annex C.4.1-C.4.3;
Modality Worklist, Annex K.4.1) including the ranges (A7xx, A9xx, Cxxx) as ``(low, high)``
entries. :func:`describe` looks a code up service first, then general, for logs and errors.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "PENDING_STATUSES",
    "SERVICE_STATUS",
    "STATUS",
    "Category",
    "Status",
    "category",
    "describe",
]


class Category(enum.Enum):
    """Status categories (PS3.7 Annex C)."""

    SUCCESS = "Success"
    WARNING = "Warning"
    FAILURE = "Failure"
    CANCEL = "Cancel"
    PENDING = "Pending"


class Status(enum.IntEnum):
    """Named general status codes (PS3.7 Annex C) and the common service ones (PS3.4)."""

    SUCCESS = 0x0000
    ATTRIBUTE_LIST_ERROR = 0x0107
    ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116
    NO_SUCH_ATTRIBUTE = 0x0105
    INVALID_ATTRIBUTE_VALUE = 0x0106
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    NO_SUCH_SOP_INSTANCE = 0x0112
    NO_SUCH_EVENT_TYPE = 0x0113
    NO_SUCH_ARGUMENT = 0x0114
    INVALID_ARGUMENT_VALUE = 0x0115
    INVALID_OBJECT_INSTANCE = 0x0117
    NO_SUCH_SOP_CLASS = 0x0118
    CLASS_INSTANCE_CONFLICT = 0x0119
    MISSING_ATTRIBUTE = 0x0120
    MISSING_ATTRIBUTE_VALUE = 0x0121
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    NO_SUCH_ACTION = 0x0123
    NOT_AUTHORIZED = 0x0124
    DUPLICATE_INVOCATION = 0x0210
    UNRECOGNIZED_OPERATION = 0x0211
    MISTYPED_ARGUMENT = 0x0212
    RESOURCE_LIMITATION = 0x0213
    OPTIONAL_ATTRIBUTES_NOT_SUPPORTED = 0x0001
    # PS3.4 Table B.2-1 (Storage)
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH = 0xA900
    COERCION_OF_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_MISMATCH_WARNING = 0xB007
    CANNOT_UNDERSTAND = 0xC000
    INVALID_UID = 0xC010
    STORE_HANDLER_FAILURE = 0xC211
    # PS3.4 Tables C.4-1..C.4-3 (Query/Retrieve)
    OUT_OF_RESOURCES_MATCHES = 0xA701
    OUT_OF_RESOURCES_SUBOPERATIONS = 0xA702
    MOVE_DESTINATION_UNKNOWN = 0xA801
    SUBOPERATIONS_WARNING = 0xB000  # an alias of COERCION_OF_ELEMENTS: one code, two tables
    FIND_FAILURE = 0xC311
    FIND_BAD_IDENTIFIER = 0xC312  # a match the handler gave cannot be sent (as pynetdicom)
    GET_FAILURE = 0xC411
    MOVE_FAILURE = 0xC511
    # a C-GET/C-MOVE handler whose count or destination is unusable (in the C000-CFFF
    # "unable to process" range: the codes pynetdicom answers, so programs may test them)
    GET_BAD_COUNT = 0xC413
    MOVE_BAD_COUNT = 0xC513
    MOVE_NO_DESTINATION = 0xC514
    MOVE_BAD_DESTINATION = 0xC515
    # a stored study that names another patient (Table B.2-1 A7xx range, the code dcm4chee
    # answers for it)
    STUDY_CONFLICT = 0xA778
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PENDING_WARNING = 0xFF01

    @classmethod
    def add(cls, name: str, code: int) -> None:
        """Name one more code, ``Status.NAME`` (a plain int, not a member): what a program
        adds for its own handlers' statuses (pynetdicom's ``Status.add``)."""
        setattr(cls, name, int(code))


PENDING_STATUSES: Final = frozenset((Status.PENDING, Status.PENDING_WARNING))
"""The Pending codes (PS3.7 C.2): more responses follow."""


_S, _W, _F, _C, _P = (
    Category.SUCCESS,
    Category.WARNING,
    Category.FAILURE,
    Category.CANCEL,
    Category.PENDING,
)

# General statuses, PS3.7 Annex C (C.1 success, C.2 pending, C.3 cancel, C.4 warning, C.5 failure).
STATUS: Final[dict[int, tuple[Category, str]]] = {
    0x0000: (_S, "Success"),
    0x0001: (_W, "Requested optional attributes are not supported"),
    0x0105: (_F, "No such attribute"),
    0x0106: (_F, "Invalid attribute value"),
    0x0107: (_W, "Attribute list error"),
    0x0110: (_F, "Processing failure"),
    0x0111: (_F, "Duplicate SOP Instance"),
    0x0112: (_F, "No such SOP Instance"),
    0x0113: (_F, "No such event type"),
    0x0114: (_F, "No such argument"),
    0x0115: (_F, "Invalid argument value"),
    0x0116: (_W, "Attribute value out of range"),
    0x0117: (_F, "Invalid object instance"),
    0x0118: (_F, "No such SOP Class"),
    0x0119: (_F, "Class-instance conflict"),
    0x0120: (_F, "Missing attribute"),
    0x0121: (_F, "Missing attribute value"),
    0x0122: (_F, "Refused: SOP Class not supported"),
    0x0123: (_F, "No such action"),
    0x0124: (_F, "Refused: not authorized"),
    0x0210: (_F, "Duplicate invocation"),
    0x0211: (_F, "Unrecognized operation"),
    0x0212: (_F, "Mistyped argument"),
    0x0213: (_F, "Resource limitation"),
    0xFE00: (_C, "Cancel"),
    0xFF00: (_P, "Pending"),
}

# Per-service meanings (PS3.4). Keys are exact codes or (low, high) inclusive ranges.
_QR_COMMON: dict[int | tuple[int, int], tuple[Category, str]] = {
    0xA700: (_F, "Refused: out of resources"),
    0xA900: (_F, "Error: identifier does not match SOP Class"),
    (0xC000, 0xCFFF): (_F, "Failed: unable to process"),
    0xFE00: (_C, "Matching/sub-operations terminated due to Cancel request"),
}
_RETRIEVE = {
    **_QR_COMMON,
    0xA701: (_F, "Refused: out of resources, unable to calculate number of matches"),
    0xA702: (_F, "Refused: out of resources, unable to perform sub-operations"),
    0xB000: (_W, "Sub-operations complete, one or more failures or warnings"),
    0xFF00: (_P, "Sub-operations are continuing"),
}
SERVICE_STATUS: Final[dict[str, dict[int | tuple[int, int], tuple[Category, str]]]] = {
    # PS3.4 Annex B.2.3, Table B.2-1
    "C-STORE": {
        (0xA700, 0xA7FF): (_F, "Refused: out of resources"),
        (0xA900, 0xA9FF): (_F, "Error: data set does not match SOP Class"),
        (0xC000, 0xCFFF): (_F, "Error: cannot understand"),
        0xB000: (_W, "Coercion of data elements"),
        0xB007: (_W, "Data set does not match SOP Class"),
        0xB006: (_W, "Elements discarded"),
    },
    # PS3.4 Annex C.4.1.1.4, Table C.4-1; Annex K.4.1.1.4 (worklist)
    "C-FIND": {
        **_QR_COMMON,
        0xFF00: (_P, "Matches are continuing, current match supplied"),
        0xFF01: (_P, "Matches are continuing, optional keys not supported"),
    },
    # PS3.4 Annex C.4.3.1.4, Table C.4-3
    "C-GET": dict(_RETRIEVE),
    # PS3.4 Annex C.4.2.1.4, Table C.4-2
    "C-MOVE": {**_RETRIEVE, 0xA801: (_F, "Refused: move destination unknown")},
    "C-ECHO": {},
}
for _svc in ("N-EVENT-REPORT", "N-GET", "N-SET", "N-ACTION", "N-CREATE", "N-DELETE"):
    SERVICE_STATUS[_svc] = {}


def category(code: int, service: str | None = None) -> Category:
    """The category of a status code (PS3.7 Annex C); ``service`` is accepted for symmetry."""
    if code == 0x0000:
        return Category.SUCCESS
    if code == 0xFF00 or code == 0xFF01:
        return Category.PENDING
    if code == 0xFE00:
        return Category.CANCEL
    if code == 0x0001 or code == 0x0107 or code == 0x0116 or 0xB000 <= code <= 0xBFFF:
        return Category.WARNING
    return Category.FAILURE


def describe(code: int, service: str | None = None) -> str:
    """A human-readable meaning of ``code``, service-specific when ``service`` is given."""
    if service is not None:
        table = SERVICE_STATUS.get(service, {})
        hit = table.get(code)
        if hit is None:
            for key, value in table.items():
                if isinstance(key, tuple) and key[0] <= code <= key[1]:
                    hit = value
                    break
        if hit is not None:
            return f"0x{code:04X} {hit[0].value}: {hit[1]}"
    general = STATUS.get(code)
    if general is not None:
        return f"0x{code:04X} {general[0].value}: {general[1]}"
    return f"0x{code:04X} {category(code).value}"
