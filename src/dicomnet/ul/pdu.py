"""The DICOM Upper Layer PDUs and their items, as plain data (PS3.8 section 9.3).

Theory of operation
-------------------
This module is the vocabulary of the Upper Layer: one frozen, slotted value class per PDU type
(PS3.8 section 9.3.1) and per item/sub-item (PS3.8 section 9.3.2-9.3.3 and Annex D.3.3). It holds
no behaviour beyond small conveniences; :mod:`dicomnet.ul.codec` turns these objects into bytes
and back.

The classes are :class:`dicomnet._record.Record` subclasses rather than ``@dataclass`` ones:
same constructors, equality, hashing, ``repr`` and immutability (and ``dataclasses.replace``
still works), without generating code at import time, which every command-line tool pays at
start-up. ``PDV`` and ``PDataTF`` are built once per message fragment, so their ``__init__``
sets the slots through the slot descriptors directly (cheaper than ``object.__setattr__``).

Values are stored so that decoding then re-encoding a real peer's PDU gives back the same bytes:

* AE titles are kept as received (``str``, up to 16 characters, trailing spaces included or not);
  the encoder pads them with spaces to 16 bytes. Compare with :func:`ae_title_norm`.
* UIDs are kept exactly as received, including a trailing NUL pad if the peer sent one. Compare
  with :func:`uid_norm`.
* User-information sub-items are kept in the order received; a sub-item type we do not know
  (PS3.8 section D.3.3: ignore it) is kept as :class:`UnknownSubItem` so it re-encodes.
* PDV payloads are ``memoryview`` slices of the received buffer (never copied by the decoder).
"""

from __future__ import annotations

from typing import TypeAlias

from dicomnet._record import Record

__all__ = [
    "PDU",
    "PDV",
    "AAbort",
    "AAssociateAC",
    "AAssociateRJ",
    "AAssociateRQ",
    "AReleaseRP",
    "AReleaseRQ",
    "AsyncOpsWindow",
    "ImplementationClassUID",
    "ImplementationVersionName",
    "MaximumLength",
    "PDataTF",
    "PresentationContextAC",
    "PresentationContextRQ",
    "RoleSelection",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "SubItem",
    "UnknownSubItem",
    "UserIdentityAC",
    "UserIdentityRQ",
    "UserInformation",
    "ae_title_norm",
    "uid_norm",
]

# PDU type codes, PS3.8 section 9.3.1
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07

APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"  # PS3.7 Annex A.2.1


def uid_norm(uid: str) -> str:
    """A UID without the trailing NUL/space padding some peers add."""
    return uid.rstrip("\x00 ")


def ae_title_norm(title: str) -> str:
    """An AE title without its non-significant leading and trailing spaces (PS3.5 AE VR)."""
    return title.strip(" \x00")


_set = object.__setattr__  # frozen records assign their slots past their own __setattr__

# --- user information sub-items (PS3.7 Annex D.3.3, PS3.8 Annex D) ----------------------------


class MaximumLength(Record):
    """51H: the largest P-DATA-TF variable field the *sender of this item* can receive; 0 = no limit."""

    __slots__ = ("maximum_length",)
    maximum_length: int

    def __init__(self, maximum_length: int) -> None:
        _set(self, "maximum_length", maximum_length)


class ImplementationClassUID(Record):
    """52H."""

    __slots__ = ("uid",)
    uid: str

    def __init__(self, uid: str) -> None:
        _set(self, "uid", uid)


class ImplementationVersionName(Record):
    """55H: 1-16 characters."""

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        _set(self, "name", name)


class AsyncOpsWindow(Record):
    """53H: maximum number of operations invoked / performed asynchronously (0 = unlimited)."""

    __slots__ = ("max_operations_invoked", "max_operations_performed")
    max_operations_invoked: int
    max_operations_performed: int

    def __init__(self, max_operations_invoked: int, max_operations_performed: int) -> None:
        _set(self, "max_operations_invoked", max_operations_invoked)
        _set(self, "max_operations_performed", max_operations_performed)


class RoleSelection(Record):
    """54H: SCP/SCU role selection for one SOP class (values 0 or 1)."""

    __slots__ = ("scp_role", "scu_role", "sop_class_uid")
    sop_class_uid: str
    scu_role: int
    scp_role: int

    def __init__(self, sop_class_uid: str, scu_role: int, scp_role: int) -> None:
        _set(self, "sop_class_uid", sop_class_uid)
        _set(self, "scu_role", scu_role)
        _set(self, "scp_role", scp_role)


class SOPClassExtendedNegotiation(Record):
    """56H: service-class specific application information for one SOP class."""

    __slots__ = ("service_class_application_information", "sop_class_uid")
    sop_class_uid: str
    service_class_application_information: bytes

    def __init__(self, sop_class_uid: str, service_class_application_information: bytes) -> None:
        _set(self, "sop_class_uid", sop_class_uid)
        _set(self, "service_class_application_information", service_class_application_information)


class SOPClassCommonExtendedNegotiation(Record):
    """57H: service class and related general SOP classes of one SOP class (RQ only)."""

    __slots__ = ("related_general_sop_class_uids", "service_class_uid", "sop_class_uid")
    sop_class_uid: str
    service_class_uid: str
    related_general_sop_class_uids: tuple[str, ...]

    def __init__(
        self,
        sop_class_uid: str,
        service_class_uid: str,
        related_general_sop_class_uids: tuple[str, ...] = (),
    ) -> None:
        _set(self, "sop_class_uid", sop_class_uid)
        _set(self, "service_class_uid", service_class_uid)
        _set(self, "related_general_sop_class_uids", related_general_sop_class_uids)


class UserIdentityRQ(Record):
    """58H: user identity negotiation request (PS3.7 Annex D.3.3.7.1).

    ``user_identity_type``: 1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT.
    """

    __slots__ = (
        "positive_response_requested",
        "primary_field",
        "secondary_field",
        "user_identity_type",
    )
    user_identity_type: int
    positive_response_requested: int
    primary_field: bytes
    secondary_field: bytes

    def __init__(
        self,
        user_identity_type: int,
        positive_response_requested: int,
        primary_field: bytes,
        secondary_field: bytes = b"",
    ) -> None:
        _set(self, "user_identity_type", user_identity_type)
        _set(self, "positive_response_requested", positive_response_requested)
        _set(self, "primary_field", primary_field)
        _set(self, "secondary_field", secondary_field)


class UserIdentityAC(Record):
    """59H: server response to a user identity request (may be empty)."""

    __slots__ = ("server_response",)
    server_response: bytes

    def __init__(self, server_response: bytes) -> None:
        _set(self, "server_response", server_response)


class UnknownSubItem(Record):
    """A user information sub-item of a type we do not implement: kept, otherwise ignored."""

    __slots__ = ("data", "item_type")
    item_type: int
    data: bytes

    def __init__(self, item_type: int, data: bytes) -> None:
        _set(self, "item_type", item_type)
        _set(self, "data", data)


SubItem: TypeAlias = (
    MaximumLength
    | ImplementationClassUID
    | ImplementationVersionName
    | AsyncOpsWindow
    | RoleSelection
    | SOPClassExtendedNegotiation
    | SOPClassCommonExtendedNegotiation
    | UserIdentityRQ
    | UserIdentityAC
    | UnknownSubItem
)

# user information sub-items that negotiate nothing (UserInformation.negotiation_items)
_NOT_NEGOTIATION = (MaximumLength, ImplementationClassUID, ImplementationVersionName, UnknownSubItem)


class UserInformation(Record):
    """50H: the ordered list of user information sub-items."""

    __slots__ = ("sub_items",)
    sub_items: tuple[SubItem, ...]

    def __init__(self, sub_items: tuple[SubItem, ...] = ()) -> None:
        _set(self, "sub_items", sub_items)

    def _first(self, kind: type) -> object | None:
        for item in self.sub_items:
            if isinstance(item, kind):
                return item
        return None

    @property
    def maximum_length(self) -> int | None:
        item = self._first(MaximumLength)
        return item.maximum_length if isinstance(item, MaximumLength) else None

    @property
    def implementation_class_uid(self) -> str | None:
        item = self._first(ImplementationClassUID)
        return item.uid if isinstance(item, ImplementationClassUID) else None

    @property
    def implementation_version_name(self) -> str | None:
        item = self._first(ImplementationVersionName)
        return item.name if isinstance(item, ImplementationVersionName) else None

    @property
    def async_ops_window(self) -> AsyncOpsWindow | None:
        item = self._first(AsyncOpsWindow)
        return item if isinstance(item, AsyncOpsWindow) else None

    @property
    def role_selections(self) -> tuple[RoleSelection, ...]:
        return tuple(i for i in self.sub_items if isinstance(i, RoleSelection))

    @property
    def extended_negotiations(self) -> tuple[SOPClassExtendedNegotiation, ...]:
        return tuple(i for i in self.sub_items if isinstance(i, SOPClassExtendedNegotiation))

    @property
    def common_extended_negotiations(self) -> tuple[SOPClassCommonExtendedNegotiation, ...]:
        return tuple(
            i for i in self.sub_items if isinstance(i, SOPClassCommonExtendedNegotiation)
        )

    @property
    def negotiation_items(self) -> tuple[SubItem, ...]:
        """The extended negotiation sub-items in the order sent (PS3.7 D.3.3.3-D.3.3.7: async
        operations window, role selections, SOP class extended and common extended, user
        identity): every known sub-item but Maximum Length and the implementation
        identification."""
        return tuple(i for i in self.sub_items if not isinstance(i, _NOT_NEGOTIATION))

    @property
    def user_identity_rq(self) -> UserIdentityRQ | None:
        item = self._first(UserIdentityRQ)
        return item if isinstance(item, UserIdentityRQ) else None

    @property
    def user_identity_ac(self) -> UserIdentityAC | None:
        item = self._first(UserIdentityAC)
        return item if isinstance(item, UserIdentityAC) else None


# --- presentation contexts (PS3.8 section 9.3.2.2, 9.3.3.2) ----------------------------------


class PresentationContextRQ(Record):
    """20H: a proposed presentation context (odd ID 1-255, one abstract, >= 1 transfer syntax)."""

    __slots__ = ("abstract_syntax", "context_id", "reserved", "transfer_syntaxes")
    # Byte 7 of the item is reserved (PS3.8 Table 9-14: not tested on receipt); DCMTK sends FFH
    # there. Kept only so a received item re-encodes byte for byte; ignored by ==, hash and repr.
    _uncompared = frozenset({"reserved"})
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]
    reserved: int

    def __init__(
        self,
        context_id: int,
        abstract_syntax: str,
        transfer_syntaxes: tuple[str, ...],
        reserved: int = 0,
    ) -> None:
        _set(self, "context_id", context_id)
        _set(self, "abstract_syntax", abstract_syntax)
        _set(self, "transfer_syntaxes", transfer_syntaxes)
        _set(self, "reserved", reserved)

    @property
    def transfer_syntax(self) -> list[str]:
        """The proposed transfer syntaxes as a list (the name pynetdicom's contexts use)."""
        return list(self.transfer_syntaxes)


class PresentationContextAC(Record):
    """21H: the acceptor's answer for one context.

    ``result``: 0 acceptance, 1 user-rejection, 2 no-reason (provider rejection),
    3 abstract-syntax-not-supported, 4 transfer-syntaxes-not-supported (PS3.8 Table 9-18).
    ``transfer_syntax`` is None when the peer sent no transfer syntax sub-item (only meaningful
    for acceptance).
    """

    __slots__ = ("context_id", "result", "transfer_syntax")
    context_id: int
    result: int
    transfer_syntax: str | None

    def __init__(self, context_id: int, result: int, transfer_syntax: str | None) -> None:
        _set(self, "context_id", context_id)
        _set(self, "result", result)
        _set(self, "transfer_syntax", transfer_syntax)


# --- the seven PDUs (PS3.8 section 9.3) -------------------------------------------------------

# The default (empty) user information: immutable, so one instance serves every PDU.
_NO_USER_INFORMATION = UserInformation()


class AAssociateRQ(Record):
    """01H A-ASSOCIATE-RQ."""

    __slots__ = (
        "application_context_name",
        "called_ae_title",
        "calling_ae_title",
        "presentation_contexts",
        "protocol_version",
        "user_information",
    )
    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation
    application_context_name: str
    protocol_version: int

    def __init__(
        self,
        called_ae_title: str,
        calling_ae_title: str,
        presentation_contexts: tuple[PresentationContextRQ, ...],
        user_information: UserInformation = _NO_USER_INFORMATION,
        application_context_name: str = APPLICATION_CONTEXT_NAME,
        protocol_version: int = 1,
    ) -> None:
        _set(self, "called_ae_title", called_ae_title)
        _set(self, "calling_ae_title", calling_ae_title)
        _set(self, "presentation_contexts", presentation_contexts)
        _set(self, "user_information", user_information)
        _set(self, "application_context_name", application_context_name)
        _set(self, "protocol_version", protocol_version)

    @property
    def presentation_context_definition_list(self) -> list[PresentationContextRQ]:
        """The proposed contexts, under the A-ASSOCIATE primitive's parameter name (PS3.8
        7.1.1.13; pynetdicom's ``A_ASSOCIATE`` attribute, which dicomnet's record stands for)."""
        return list(self.presentation_contexts)


class AAssociateAC(Record):
    """02H A-ASSOCIATE-AC. The AE title fields are reserved but echo the request's values."""

    __slots__ = (
        "application_context_name",
        "called_ae_title",
        "calling_ae_title",
        "presentation_contexts",
        "protocol_version",
        "user_information",
    )
    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation
    application_context_name: str
    protocol_version: int

    def __init__(
        self,
        called_ae_title: str,
        calling_ae_title: str,
        presentation_contexts: tuple[PresentationContextAC, ...],
        user_information: UserInformation = _NO_USER_INFORMATION,
        application_context_name: str = APPLICATION_CONTEXT_NAME,
        protocol_version: int = 1,
    ) -> None:
        _set(self, "called_ae_title", called_ae_title)
        _set(self, "calling_ae_title", calling_ae_title)
        _set(self, "presentation_contexts", presentation_contexts)
        _set(self, "user_information", user_information)
        _set(self, "application_context_name", application_context_name)
        _set(self, "protocol_version", protocol_version)

    @property
    def presentation_context_definition_results_list(self) -> list[PresentationContextAC]:
        """The answers, under the A-ASSOCIATE primitive's parameter name (PS3.8 7.1.1.14)."""
        return list(self.presentation_contexts)


class AAssociateRJ(Record):
    """03H A-ASSOCIATE-RJ (PS3.8 Table 9-21).

    result: 1 rejected-permanent, 2 rejected-transient. source: 1 service-user,
    2 service-provider (ACSE), 3 service-provider (presentation).
    """

    __slots__ = ("reason", "result", "source")
    result: int
    source: int
    reason: int

    def __init__(self, result: int, source: int, reason: int) -> None:
        _set(self, "result", result)
        _set(self, "source", source)
        _set(self, "reason", reason)


class PDV(Record):
    """One presentation data value item (PS3.8 section 9.3.5.1, Annex E.2).

    ``control`` is the message control header: bit 0 set = command, bit 1 set = last fragment.
    """

    __slots__ = ("context_id", "control", "data")
    context_id: int
    control: int
    data: memoryview | bytes

    def __init__(self, context_id: int, control: int, data: memoryview | bytes) -> None:
        _pdv_context_id(self, context_id)
        _pdv_control(self, control)
        _pdv_data(self, data)

    @property
    def is_command(self) -> bool:
        return bool(self.control & 0x01)

    @property
    def is_last(self) -> bool:
        return bool(self.control & 0x02)


# Hot path (one PDV per message fragment): the slot descriptors' setters, bound once.
_pdv_context_id = PDV.__dict__["context_id"].__set__
_pdv_control = PDV.__dict__["control"].__set__
_pdv_data = PDV.__dict__["data"].__set__


class PDataTF(Record):
    """04H P-DATA-TF: one or more PDV items."""

    __slots__ = ("pdvs",)
    pdvs: tuple[PDV, ...]

    def __init__(self, pdvs: tuple[PDV, ...]) -> None:
        _pdatatf_pdvs(self, pdvs)


_pdatatf_pdvs = PDataTF.__dict__["pdvs"].__set__


class AReleaseRQ(Record):
    """05H A-RELEASE-RQ."""

    __slots__ = ()


class AReleaseRP(Record):
    """06H A-RELEASE-RP."""

    __slots__ = ()


class AAbort(Record):
    """07H A-ABORT. source: 0 service-user, 2 service-provider; reason only meaningful for 2."""

    __slots__ = ("reason", "source")
    source: int
    reason: int

    def __init__(self, source: int = 0, reason: int = 0) -> None:
        _set(self, "source", source)
        _set(self, "reason", reason)


PDU: TypeAlias = (
    AAssociateRQ | AAssociateAC | AAssociateRJ | PDataTF | AReleaseRQ | AReleaseRP | AAbort
)
