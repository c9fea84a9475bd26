"""DIMSE service primitives (PS3.7 sections 9.1 and 10.1), validated on assignment.

Theory of operation
-------------------
A primitive is what a DIMSE service user hands to, or receives from, the DIMSE service provider:
the parameters of PS3.7 Tables 9.1-1 ... 9.1-5 and 10.1-1 ... 10.1-6, one class per service
(``C_STORE`` carries both the request and the response parameters, as the standard's tables do).
Attributes are named by the DICOM keywords of the matching command elements (PS3.7 Annex E), so
``prim.AffectedSOPInstanceUID`` is the value of (0000,1000). The dataset-carrying parameters use
the names of the standard's tables: ``DataSet`` (C-STORE), ``Identifier`` (C-FIND/GET/MOVE),
``EventInformation``/``EventReply``, ``AttributeList``, ``ModificationList``,
``ActionInformation``/``ActionReply``; they hold an opaque payload object (a ``DataSource``).

Every assignment runs a validator, so a primitive can never hold a value that would produce an
invalid command set: UIDs obey PS3.5 section 9.1 (:func:`dicomnet.uid.is_valid_uid`), US values
are 0..65535, Priority is 0 (medium), 1 (high) or 2 (low), AE titles are 1..16 significant
characters of the default repertoire without backslash or control characters (PS3.5 Table 6.2-1,
stored without padding spaces), Error Comment is an LO of at most 64 characters, and attribute tag
lists become tuples of 32-bit ints. ``None`` means "absent". Invalid values raise
:class:`dicomnet.errors.DimseError` naming the attribute. The same validators are used by
:func:`dicomnet.dimse.messages.decode_message` to check what a peer sent.

Validation happens once per value: :func:`~dicomnet.dimse.messages.decode_message` checks a
received command set and the primitive is then built from the checked values by
:meth:`DIMSEPrimitive.from_checked`, which does not run the validators a second time (the service
classes use it too for responses whose values they copy from a request primitive). UIDs that
passed the PS3.5 check are remembered in a bounded set, so a SOP Class UID seen in every
message is matched against the regular expression only once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Self

from dicomnet.errors import DimseError
from dicomnet.uid import UIDValue, is_valid_uid

__all__ = [
    "C_CANCEL",
    "C_ECHO",
    "C_FIND",
    "C_GET",
    "C_MOVE",
    "C_STORE",
    "N_ACTION",
    "N_CREATE",
    "N_DELETE",
    "N_EVENT_REPORT",
    "N_GET",
    "N_SET",
    "VALIDATORS",
    "DIMSEPrimitive",
]


def _uid(name: str, value: object) -> str:
    # is_valid_uid remembers the UIDs it accepted (SOP class and transfer syntax UIDs recur in
    # every message), so the regular expression runs about once per distinct UID.
    if not isinstance(value, str) or not is_valid_uid(value):
        raise DimseError(
            f"{name}: {value!r} is not a valid UID (PS3.5 9.1: digits and dots, "
            "no leading zeros in a component, at most 64 characters)"
        )
    return str(value)


def _us(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise DimseError(f"{name}: {value!r} is not an unsigned 16-bit value (0..65535)")
    return int(value)


def _priority(name: str, value: object) -> int:
    if value not in (0, 1, 2) or isinstance(value, bool) or not isinstance(value, int):
        raise DimseError(f"{name}: {value!r} is not 0 (medium), 1 (high) or 2 (low)")
    return int(value)


def _ae(name: str, value: object) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise DimseError(f"{name}: {value!r} is not ASCII") from None
    if not isinstance(value, str):
        raise DimseError(f"{name}: expected an AE title str, got {type(value).__name__}")
    title = value.strip(" ")
    if not 1 <= len(title) <= 16:
        raise DimseError(f"{name}: AE title {value!r} must have 1 to 16 non-blank characters")
    if "\\" in title or not title.isascii() or not title.isprintable():
        raise DimseError(f"{name}: AE title {value!r} has a backslash or non-printable character")
    return title


def _lo(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise DimseError(f"{name}: expected str, got {type(value).__name__}")
    if len(value) > 64:
        raise DimseError(f"{name}: {len(value)} characters, LO allows at most 64")
    if "\\" in value:
        raise DimseError(f"{name}: LO values may not contain a backslash")
    return value


def _tags(name: str, value: object) -> tuple[int, ...]:
    items: Iterable[object] = (value,) if isinstance(value, int) else value  # type: ignore[assignment]
    if isinstance(value, str | bytes) or not isinstance(items, Iterable):
        raise DimseError(f"{name}: expected a list of tags, got {type(value).__name__}")
    out = []
    for t in items:
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t <= 0xFFFFFFFF:
            raise DimseError(f"{name}: {t!r} is not a 32-bit tag")
        out.append(int(t))
    return tuple(out)


Validator = Callable[[str, Any], object]

#: Validators that only check what a command element decoded by
#: :func:`dicomnet.dimse.commands.decode_command` already is: a US value (an ``int`` 0..65535
#: unpacked from two bytes) or an AT list (a tuple of 32-bit ints). The message layer skips
#: these for decoded elements; every other validator (UIDs, AE titles, Priority, LO) runs.

# Keyword -> validator, for every parameter any primitive has (None is always allowed).
VALIDATORS: Final[dict[str, Validator]] = {
    "MessageID": _us,
    "MessageIDBeingRespondedTo": _us,
    "AffectedSOPClassUID": _uid,
    "AffectedSOPInstanceUID": _uid,
    "RequestedSOPClassUID": _uid,
    "RequestedSOPInstanceUID": _uid,
    "Priority": _priority,
    "MoveDestination": _ae,
    "MoveOriginatorApplicationEntityTitle": _ae,
    "MoveOriginatorMessageID": _us,
    "Status": _us,
    "OffendingElement": _tags,
    "ErrorComment": _lo,
    "ErrorID": _us,
    "EventTypeID": _us,
    "ActionTypeID": _us,
    "AttributeIdentifierList": _tags,
    "NumberOfRemainingSuboperations": _us,
    "NumberOfCompletedSuboperations": _us,
    "NumberOfFailedSuboperations": _us,
    "NumberOfWarningSuboperations": _us,
}

RANGE_ONLY: Final[frozenset[str]] = frozenset(
    keyword for keyword, fn in VALIDATORS.items() if fn is _us or fn is _tags
)


class DIMSEPrimitive:
    """Base of the primitives: slotted attributes, validated on every assignment."""

    __slots__: ClassVar[tuple[str, ...]] = ()
    #: the parameters of this service (slot names), in PS3.7 table order
    FIELDS: ClassVar[tuple[str, ...]] = ()
    #: the dataset-carrying parameters (unvalidated payload objects)
    DATASET_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: the service name used by :mod:`dicomnet.dimse.status` ("C-STORE", ...)
    SERVICE: ClassVar[str] = ""
    #: the parameters a request / a response must have (M in the PS3.7 9.1 and 10.1
    #: tables), and the status-dependent ones (C/U entries that go with a Status), by the
    #: names pynetdicom gives them; checked by :attr:`is_valid_request` / ``_response``
    REQUEST_KEYWORDS: ClassVar[tuple[str, ...]] = ()
    RESPONSE_KEYWORDS: ClassVar[tuple[str, ...]] = ("MessageIDBeingRespondedTo", "Status")
    STATUS_OPTIONAL_KEYWORDS: ClassVar[tuple[str, ...]] = ()

    # Parameters common to (nearly) every service, declared here so code handling any primitive
    # type-checks; each subclass that has one shadows it with its slot. Reading one a service
    # lacks (C_CANCEL.MessageID) gives None; assigning it raises AttributeError.
    MessageID: int | None = None
    MessageIDBeingRespondedTo: int | None = None
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    Status: int | None = None

    #: ``FIELDS`` as a set (the membership test of every assignment)
    _FIELD_SET: ClassVar[frozenset[str]] = frozenset()

    #: the UID parameters (keywords ending in "UID")
    _UID_FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._FIELD_SET = frozenset(cls.FIELDS)
        cls._UID_FIELDS = tuple(n for n in cls.FIELDS if n.endswith("UID"))

    @property
    def is_valid_request(self) -> bool:
        """Every parameter a request must have is set (:data:`REQUEST_KEYWORDS`)."""
        return all(getattr(self, k) is not None for k in self.REQUEST_KEYWORDS)

    @property
    def is_valid_response(self) -> bool:
        """Every parameter a response must have is set (:data:`RESPONSE_KEYWORDS`)."""
        return all(getattr(self, k) is not None for k in self.RESPONSE_KEYWORDS)

    @property
    def msg_type(self) -> str:
        """The service's name, as pynetdicom gives it: ``"C-STORE"``, ``"N-ACTION"``..."""
        return self.SERVICE

    def expose_uids(self) -> None:
        """Make the UID parameters :class:`~dicomnet.uid.UIDValue` strings, which also answer
        pydicom's UID properties (``name``, ``keyword``...) as pynetdicom's hold pydicom UIDs:
        what an event handler is given. Set in place without validation: the values are the
        same strings, already checked."""
        for name in self._UID_FIELDS:
            value = getattr(self, name)
            if type(value) is str:
                object.__setattr__(self, name, UIDValue(value))

    def __init__(self, **params: object) -> None:
        # What assigning each parameter would do (the same checks, in the same order), with
        # one pass over the slots instead of a __setattr__ call per parameter.
        fields = self._FIELD_SET
        values: dict[str, object] = {}
        for name, value in params.items():
            if name not in fields:
                raise AttributeError(f"{type(self).__name__} has no parameter {name!r}")
            if value is not None:
                validator = VALIDATORS.get(name)
                if validator is not None:
                    value = validator(name, value)
            values[name] = value
        setter = object.__setattr__
        get = values.get
        for name in self.FIELDS:
            setter(self, name, get(name))

    @classmethod
    def from_checked(cls, params: Mapping[str, object]) -> Self:
        """A primitive holding ``params`` ({keyword: value}) *without* running the validators.

        Only for values that already passed them or that the caller checked itself: those of
        a command set checked by :func:`dicomnet.dimse.messages.decode_message` (which runs the
        same validators), values copied from another primitive, or a sender's lenient check of
        the UIDs of the files it sends. Every other parameter is None.
        """
        assert params.keys() <= cls._FIELD_SET, f"not {cls.__name__} parameters: {params}"
        self = cls.__new__(cls)
        setter = object.__setattr__
        get = params.get
        for name in cls.FIELDS:
            setter(self, name, get(name))
        return self

    def __setattr__(self, name: str, value: object) -> None:
        if name not in self._FIELD_SET:
            raise AttributeError(f"{type(self).__name__} has no parameter {name!r}")
        if value is not None:
            validator = VALIDATORS.get(name)
            if validator is not None:
                value = validator(name, value)
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        params = ", ".join(
            f"{n}={getattr(self, n)!r}" for n in self.FIELDS if getattr(self, n) is not None
        )
        return f"{type(self).__name__}({params})"

    def params(self) -> dict[str, object]:
        """The parameters that are set (not None), by keyword."""
        return {n: v for n in self.FIELDS if (v := getattr(self, n)) is not None}

    @property
    def is_response(self) -> bool:
        """True when the primitive carries response parameters (Status is set)."""
        return self.Status is not None

    @property
    def payload(self) -> Any:
        """The data set this primitive carries, whatever its service calls it (DataSet,
        Identifier, EventInformation, AttributeList, ...; PS3.7 9.1/10.1), or None."""
        for name in self.DATASET_FIELDS:
            value = getattr(self, name)
            if value is not None:
                return value
        return None

    def close_payloads(self) -> None:
        """Close every data set payload this primitive carries (a spooled one is deleted)."""
        for name in self.DATASET_FIELDS:
            close = getattr(getattr(self, name), "close", None)
            if close is not None:
                close()


_RSP_ERR = ("Status", "OffendingElement", "ErrorComment", "ErrorID")


# PS3.7 section 9.1.5, Table 9.1-5
class C_ECHO(DIMSEPrimitive):
    __slots__ = (
        "AffectedSOPClassUID",
        "ErrorComment",
        "ErrorID",
        "MessageID",
        "MessageIDBeingRespondedTo",
        "OffendingElement",
        "Status",
    )
    FIELDS = __slots__
    AffectedSOPClassUID: str | None
    ErrorComment: str | None
    ErrorID: int | None
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    OffendingElement: Sequence[int] | None
    Status: int | None
    SERVICE = "C-ECHO"
    REQUEST_KEYWORDS = ("MessageID", "AffectedSOPClassUID")
    STATUS_OPTIONAL_KEYWORDS = ("ErrorComment",)


# PS3.7 section 9.1.1, Table 9.1-1
class C_STORE(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "Priority",
        "MoveOriginatorApplicationEntityTitle",
        "MoveOriginatorMessageID",
        "DataSet",
        *_RSP_ERR,
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    AffectedSOPClassUID: str | None
    AffectedSOPInstanceUID: str | None
    Priority: int | None
    MoveOriginatorApplicationEntityTitle: str | None
    MoveOriginatorMessageID: int | None
    DataSet: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    DATASET_FIELDS = ("DataSet",)
    SERVICE = "C-STORE"
    REQUEST_KEYWORDS = (
        "MessageID",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "Priority",
        "DataSet",
    )
    STATUS_OPTIONAL_KEYWORDS = ("OffendingElement", "ErrorComment")


# PS3.7 section 9.1.2, Table 9.1-2
class C_FIND(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "AffectedSOPClassUID",
        "Priority",
        "Identifier",
        *_RSP_ERR,
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    AffectedSOPClassUID: str | None
    Priority: int | None
    Identifier: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    DATASET_FIELDS = ("Identifier",)
    SERVICE = "C-FIND"
    REQUEST_KEYWORDS = ("MessageID", "AffectedSOPClassUID", "Priority", "Identifier")
    STATUS_OPTIONAL_KEYWORDS = ("OffendingElement", "ErrorComment")


_SUBOPS = (
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)


# PS3.7 section 9.1.3, Table 9.1-3
class C_GET(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "AffectedSOPClassUID",
        "Priority",
        "Identifier",
        *_RSP_ERR,
        *_SUBOPS,
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    AffectedSOPClassUID: str | None
    Priority: int | None
    Identifier: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    NumberOfRemainingSuboperations: int | None
    NumberOfCompletedSuboperations: int | None
    NumberOfFailedSuboperations: int | None
    NumberOfWarningSuboperations: int | None
    DATASET_FIELDS = ("Identifier",)
    SERVICE = "C-GET"
    REQUEST_KEYWORDS = ("MessageID", "AffectedSOPClassUID", "Priority", "Identifier")
    STATUS_OPTIONAL_KEYWORDS = ("ErrorComment", "OffendingElement", *_SUBOPS)


# PS3.7 section 9.1.4, Table 9.1-4
class C_MOVE(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "AffectedSOPClassUID",
        "Priority",
        "MoveDestination",
        "Identifier",
        *_RSP_ERR,
        *_SUBOPS,
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    AffectedSOPClassUID: str | None
    Priority: int | None
    MoveDestination: str | None
    Identifier: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    NumberOfRemainingSuboperations: int | None
    NumberOfCompletedSuboperations: int | None
    NumberOfFailedSuboperations: int | None
    NumberOfWarningSuboperations: int | None
    DATASET_FIELDS = ("Identifier",)
    SERVICE = "C-MOVE"
    REQUEST_KEYWORDS = (
        "MessageID",
        "AffectedSOPClassUID",
        "Priority",
        "Identifier",
        "MoveDestination",
    )
    STATUS_OPTIONAL_KEYWORDS = ("ErrorComment", "OffendingElement", *_SUBOPS)


# PS3.7 section 9.3.2.3 / 9.3.3.3 / 9.3.4.3: C-CANCEL-RQ
class C_CANCEL(DIMSEPrimitive):
    __slots__ = ("MessageIDBeingRespondedTo",)
    FIELDS = __slots__
    MessageIDBeingRespondedTo: int | None
    SERVICE = "C-CANCEL"
    REQUEST_KEYWORDS = ("MessageIDBeingRespondedTo",)
    RESPONSE_KEYWORDS = ()  # a C-CANCEL has no response (PS3.7 9.3.2.3)


# PS3.7 section 10.1.1, Table 10.1-1
class N_EVENT_REPORT(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "EventTypeID",
        "EventInformation",
        "EventReply",
        *_RSP_ERR,
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    AffectedSOPClassUID: str | None
    AffectedSOPInstanceUID: str | None
    EventTypeID: int | None
    EventInformation: Any
    EventReply: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    DATASET_FIELDS = ("EventInformation", "EventReply")
    SERVICE = "N-EVENT-REPORT"
    REQUEST_KEYWORDS = ("MessageID", "AffectedSOPClassUID", "EventTypeID", "AffectedSOPInstanceUID")
    STATUS_OPTIONAL_KEYWORDS = (
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "EventTypeID",
        "ErrorComment",
        "ErrorID",
    )


# PS3.7 section 10.1.2, Table 10.1-2
class N_GET(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "RequestedSOPClassUID",
        "RequestedSOPInstanceUID",
        "AttributeIdentifierList",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "AttributeList",
        *_RSP_ERR,
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    RequestedSOPClassUID: str | None
    RequestedSOPInstanceUID: str | None
    AttributeIdentifierList: Sequence[int] | None
    AffectedSOPClassUID: str | None
    AffectedSOPInstanceUID: str | None
    AttributeList: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    DATASET_FIELDS = ("AttributeList",)
    SERVICE = "N-GET"
    REQUEST_KEYWORDS = ("MessageID", "RequestedSOPClassUID", "RequestedSOPInstanceUID")
    STATUS_OPTIONAL_KEYWORDS = ("AttributeIdentifierList", "ErrorComment", "ErrorID")


# PS3.7 section 10.1.3, Table 10.1-3
class N_SET(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "RequestedSOPClassUID",
        "RequestedSOPInstanceUID",
        "ModificationList",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "AttributeList",
        *_RSP_ERR,
        "AttributeIdentifierList",
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    RequestedSOPClassUID: str | None
    RequestedSOPInstanceUID: str | None
    ModificationList: Any
    AffectedSOPClassUID: str | None
    AffectedSOPInstanceUID: str | None
    AttributeList: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    AttributeIdentifierList: Sequence[int] | None
    DATASET_FIELDS = ("ModificationList", "AttributeList")
    SERVICE = "N-SET"
    REQUEST_KEYWORDS = (
        "MessageID",
        "RequestedSOPClassUID",
        "RequestedSOPInstanceUID",
        "ModificationList",
    )
    STATUS_OPTIONAL_KEYWORDS = ("ErrorComment", "ErrorID", "AttributeIdentifierList")


# PS3.7 section 10.1.4, Table 10.1-4
class N_ACTION(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "RequestedSOPClassUID",
        "RequestedSOPInstanceUID",
        "ActionTypeID",
        "ActionInformation",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "ActionReply",
        *_RSP_ERR,
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    RequestedSOPClassUID: str | None
    RequestedSOPInstanceUID: str | None
    ActionTypeID: int | None
    ActionInformation: Any
    AffectedSOPClassUID: str | None
    AffectedSOPInstanceUID: str | None
    ActionReply: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    DATASET_FIELDS = ("ActionInformation", "ActionReply")
    SERVICE = "N-ACTION"
    REQUEST_KEYWORDS = (
        "MessageID",
        "RequestedSOPClassUID",
        "RequestedSOPInstanceUID",
        "ActionTypeID",
    )
    STATUS_OPTIONAL_KEYWORDS = ("ErrorComment", "ErrorID", "AttributeIdentifierList")


# PS3.7 section 10.1.5, Table 10.1-5
class N_CREATE(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "AttributeList",
        *_RSP_ERR,
        "AttributeIdentifierList",
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    AffectedSOPClassUID: str | None
    AffectedSOPInstanceUID: str | None
    AttributeList: Any
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    AttributeIdentifierList: Sequence[int] | None
    DATASET_FIELDS = ("AttributeList",)
    SERVICE = "N-CREATE"
    REQUEST_KEYWORDS = ("MessageID", "AffectedSOPClassUID")
    STATUS_OPTIONAL_KEYWORDS = ("ErrorComment", "ErrorID")


# PS3.7 section 10.1.6, Table 10.1-6
class N_DELETE(DIMSEPrimitive):
    __slots__ = (
        "MessageID",
        "MessageIDBeingRespondedTo",
        "RequestedSOPClassUID",
        "RequestedSOPInstanceUID",
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        *_RSP_ERR,
    )
    FIELDS = __slots__
    MessageID: int | None
    MessageIDBeingRespondedTo: int | None
    RequestedSOPClassUID: str | None
    RequestedSOPInstanceUID: str | None
    AffectedSOPClassUID: str | None
    AffectedSOPInstanceUID: str | None
    Status: int | None
    OffendingElement: Sequence[int] | None
    ErrorComment: str | None
    ErrorID: int | None
    SERVICE = "N-DELETE"
    REQUEST_KEYWORDS = ("MessageID", "RequestedSOPClassUID", "RequestedSOPInstanceUID")
    STATUS_OPTIONAL_KEYWORDS = ("ErrorComment", "ErrorID")
