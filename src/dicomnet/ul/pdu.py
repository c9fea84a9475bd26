"""The DICOM Upper Layer PDUs and their items, as plain data (PS3.8 section 9.3).

Theory of operation
-------------------
This module is the vocabulary of the Upper Layer: one frozen, slotted dataclass per PDU type
(PS3.8 section 9.3.1) and per item/sub-item (PS3.8 section 9.3.2-9.3.3 and Annex D.3.3). It holds
no behaviour beyond small conveniences; :mod:`dicomnet.ul.codec` turns these objects into bytes
and back.

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

from dataclasses import dataclass, field
from typing import TypeAlias

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


# --- user information sub-items (PS3.7 Annex D.3.3, PS3.8 Annex D) ----------------------------


@dataclass(frozen=True, slots=True)
class MaximumLength:
    """51H: the largest P-DATA-TF variable field the *sender of this item* can receive; 0 = no limit."""

    maximum_length: int


@dataclass(frozen=True, slots=True)
class ImplementationClassUID:
    """52H."""

    uid: str


@dataclass(frozen=True, slots=True)
class ImplementationVersionName:
    """55H: 1-16 characters."""

    name: str


@dataclass(frozen=True, slots=True)
class AsyncOpsWindow:
    """53H: maximum number of operations invoked / performed asynchronously (0 = unlimited)."""

    max_operations_invoked: int
    max_operations_performed: int


@dataclass(frozen=True, slots=True)
class RoleSelection:
    """54H: SCP/SCU role selection for one SOP class (values 0 or 1)."""

    sop_class_uid: str
    scu_role: int
    scp_role: int


@dataclass(frozen=True, slots=True)
class SOPClassExtendedNegotiation:
    """56H: service-class specific application information for one SOP class."""

    sop_class_uid: str
    service_class_application_information: bytes


@dataclass(frozen=True, slots=True)
class SOPClassCommonExtendedNegotiation:
    """57H: service class and related general SOP classes of one SOP class (RQ only)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_class_uids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserIdentityRQ:
    """58H: user identity negotiation request (PS3.7 Annex D.3.3.7.1).

    ``user_identity_type``: 1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT.
    """

    user_identity_type: int
    positive_response_requested: int
    primary_field: bytes
    secondary_field: bytes = b""


@dataclass(frozen=True, slots=True)
class UserIdentityAC:
    """59H: server response to a user identity request (may be empty)."""

    server_response: bytes


@dataclass(frozen=True, slots=True)
class UnknownSubItem:
    """A user information sub-item of a type we do not implement: kept, otherwise ignored."""

    item_type: int
    data: bytes


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


@dataclass(frozen=True, slots=True)
class UserInformation:
    """50H: the ordered list of user information sub-items."""

    sub_items: tuple[SubItem, ...] = ()

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
    def user_identity_rq(self) -> UserIdentityRQ | None:
        item = self._first(UserIdentityRQ)
        return item if isinstance(item, UserIdentityRQ) else None

    @property
    def user_identity_ac(self) -> UserIdentityAC | None:
        item = self._first(UserIdentityAC)
        return item if isinstance(item, UserIdentityAC) else None


# --- presentation contexts (PS3.8 section 9.3.2.2, 9.3.3.2) ----------------------------------


@dataclass(frozen=True, slots=True)
class PresentationContextRQ:
    """20H: a proposed presentation context (odd ID 1-255, one abstract, >= 1 transfer syntax)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]
    # Byte 7 of the item is reserved (PS3.8 Table 9-14: not tested on receipt); DCMTK sends FFH
    # there. Kept only so a received item re-encodes byte for byte; ignored by ==.
    reserved: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PresentationContextAC:
    """21H: the acceptor's answer for one context.

    ``result``: 0 acceptance, 1 user-rejection, 2 no-reason (provider rejection),
    3 abstract-syntax-not-supported, 4 transfer-syntaxes-not-supported (PS3.8 Table 9-18).
    ``transfer_syntax`` is None when the peer sent no transfer syntax sub-item (only meaningful
    for acceptance).
    """

    context_id: int
    result: int
    transfer_syntax: str | None


# --- the seven PDUs (PS3.8 section 9.3) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AAssociateRQ:
    """01H A-ASSOCIATE-RQ."""

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = 1


@dataclass(frozen=True, slots=True)
class AAssociateAC:
    """02H A-ASSOCIATE-AC. The AE title fields are reserved but echo the request's values."""

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = 1


@dataclass(frozen=True, slots=True)
class AAssociateRJ:
    """03H A-ASSOCIATE-RJ (PS3.8 Table 9-21).

    result: 1 rejected-permanent, 2 rejected-transient. source: 1 service-user,
    2 service-provider (ACSE), 3 service-provider (presentation).
    """

    result: int
    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class PDV:
    """One presentation data value item (PS3.8 section 9.3.5.1, Annex E.2).

    ``control`` is the message control header: bit 0 set = command, bit 1 set = last fragment.
    """

    context_id: int
    control: int
    data: memoryview | bytes

    @property
    def is_command(self) -> bool:
        return bool(self.control & 0x01)

    @property
    def is_last(self) -> bool:
        return bool(self.control & 0x02)


@dataclass(frozen=True, slots=True)
class PDataTF:
    """04H P-DATA-TF: one or more PDV items."""

    pdvs: tuple[PDV, ...]


@dataclass(frozen=True, slots=True)
class AReleaseRQ:
    """05H A-RELEASE-RQ."""


@dataclass(frozen=True, slots=True)
class AReleaseRP:
    """06H A-RELEASE-RP."""


@dataclass(frozen=True, slots=True)
class AAbort:
    """07H A-ABORT. source: 0 service-user, 2 service-provider; reason only meaningful for 2."""

    source: int = 0
    reason: int = 0


PDU: TypeAlias = (
    AAssociateRQ | AAssociateAC | AAssociateRJ | PDataTF | AReleaseRQ | AReleaseRP | AAbort
)
