"""Upper Layer service primitives as objects with settable attributes (PS3.8 section 7, PS3.7
Annex D.3.3): the P-DATA primitive and the user information items an application requests.

Theory of operation
-------------------
The Upper Layer in :mod:`dicomnet.ul` works with immutable PDU records (:mod:`dicomnet.ul.pdu`),
checked when built. Applications written for the pynetdicom API build negotiation items the
other way round: create an empty object, set its attributes, pass it in ``ext_neg``. The
classes here are those objects. Each one checks a value when it is set and knows its PDU
record (:meth:`NegotiationItem.to_item`), so the association request is still built from
checked records only: :func:`dicomnet.client.prepare` converts whatever ``ext_neg`` holds.

:class:`P_DATA` is the P-DATA service primitive of PS3.8 section 7.6: a list of
``(presentation context ID, PDV value)`` pairs, where a PDV value is the message control
header byte followed by the fragment (PS3.8 Annex E.2). It converts to and from the
P-DATA-TF PDU record (:meth:`P_DATA.to_pdu`, :meth:`P_DATA.from_pdu`), which is what the DIMSE
provider consumes.

Pure data: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from dicomnet.errors import DicomNetError
from dicomnet.ul.pdu import (
    PDV,
    AsyncOpsWindow,
    PDataTF,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
)

__all__ = [
    "P_DATA",
    "AsynchronousOperationsWindowNegotiation",
    "NegotiationItem",
    "SCP_SCU_RoleSelectionNegotiation",
    "SOPClassCommonExtendedNegotiationItem",
    "SOPClassExtendedNegotiationItem",
    "UserIdentityNegotiation",
]

Item = (
    AsyncOpsWindow
    | RoleSelection
    | SOPClassExtendedNegotiation
    | SOPClassCommonExtendedNegotiation
    | UserIdentityRQ
)


def _uid(value: object, what: str) -> str:
    if isinstance(value, bytes):  # pynetdicom programs may give UIDs as bytes
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or not value.strip("\0 "):
        raise DicomNetError(f"{what} must be a UID string, not {value!r}")
    return value.strip("\0 ")


def _bytes(value: object, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")  # PS3.7 D.3.3.7: user identity values are UTF-8 text
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise DicomNetError(f"{what} must be bytes, not {type(value).__name__}")


class NegotiationItem:
    """A user information item an application builds attribute by attribute."""

    __slots__ = ()

    def to_item(self) -> Item:
        """The checked PDU record of this item (DicomNetError when incomplete)."""
        raise NotImplementedError


class SCP_SCU_RoleSelectionNegotiation(NegotiationItem):
    """SCP/SCU Role Selection (54H, PS3.7 D.3.3.4): the roles proposed for one SOP class.
    A role left None is proposed as "not supported" (0)."""

    __slots__ = ("scp_role", "scu_role", "sop_class_uid")

    def __init__(self) -> None:
        self.sop_class_uid: str | None = None
        self.scu_role: bool | None = None
        self.scp_role: bool | None = None

    def to_item(self) -> RoleSelection:
        if self.scu_role is None and self.scp_role is None:
            raise DicomNetError("a role selection needs scu_role and/or scp_role")
        return RoleSelection(
            _uid(self.sop_class_uid, "sop_class_uid"), int(bool(self.scu_role)),
            int(bool(self.scp_role)),
        )  # fmt: skip


class AsynchronousOperationsWindowNegotiation(NegotiationItem):
    """Asynchronous Operations Window (53H, PS3.7 D.3.3.3); 0 means unlimited."""

    __slots__ = ("maximum_number_operations_invoked", "maximum_number_operations_performed")

    def __init__(self) -> None:
        self.maximum_number_operations_invoked = 1
        self.maximum_number_operations_performed = 1

    def to_item(self) -> AsyncOpsWindow:
        invoked = int(self.maximum_number_operations_invoked)
        performed = int(self.maximum_number_operations_performed)
        if not (0 <= invoked <= 0xFFFF and 0 <= performed <= 0xFFFF):
            raise DicomNetError("operation window values are 0..65535")
        return AsyncOpsWindow(invoked, performed)


class SOPClassExtendedNegotiationItem(NegotiationItem):
    """SOP Class Extended Negotiation (56H, PS3.7 D.3.3.5): service-class application
    information for one SOP class (e.g. relational queries for Q/R, PS3.4 C.3.4)."""

    __slots__ = ("service_class_application_information", "sop_class_uid")

    def __init__(self) -> None:
        self.sop_class_uid: str | None = None
        self.service_class_application_information: bytes | None = None

    def to_item(self) -> SOPClassExtendedNegotiation:
        info = _bytes(self.service_class_application_information or b"", "application info")
        return SOPClassExtendedNegotiation(_uid(self.sop_class_uid, "sop_class_uid"), info)


class SOPClassCommonExtendedNegotiationItem(NegotiationItem):
    """SOP Class Common Extended Negotiation (57H, PS3.7 D.3.3.6)."""

    __slots__ = ("related_general_sop_class_identification", "service_class_uid", "sop_class_uid")

    def __init__(self) -> None:
        self.sop_class_uid: str | None = None
        self.service_class_uid: str | None = None
        self.related_general_sop_class_identification: list[str] = []

    def to_item(self) -> SOPClassCommonExtendedNegotiation:
        related = tuple(
            _uid(u, "related general SOP class")
            for u in self.related_general_sop_class_identification
        )
        return SOPClassCommonExtendedNegotiation(
            _uid(self.sop_class_uid, "sop_class_uid"),
            _uid(self.service_class_uid, "service_class_uid"),
            related,
        )


class UserIdentityNegotiation(NegotiationItem):
    """User Identity (58H, PS3.7 D.3.3.7): type 1 username, 2 username and passcode,
    3 Kerberos, 4 SAML, 5 JWT. ``server_response`` holds the acceptor's answer (59H)."""

    __slots__ = (
        "positive_response_requested",
        "primary_field",
        "secondary_field",
        "server_response",
        "user_identity_type",
    )

    def __init__(self) -> None:
        self.user_identity_type: int | None = None
        self.positive_response_requested = False
        self.primary_field: bytes | None = None
        self.secondary_field: bytes | None = None
        self.server_response: bytes | None = None

    def to_item(self) -> UserIdentityRQ:
        kind = self.user_identity_type
        if kind not in (1, 2, 3, 4, 5):
            raise DicomNetError(f"user_identity_type must be 1..5, not {kind!r}")
        assert kind is not None
        primary = _bytes(self.primary_field, "primary_field")
        secondary = _bytes(self.secondary_field or b"", "secondary_field")
        if kind == 2 and not secondary:
            raise DicomNetError("user identity type 2 needs a secondary_field (passcode)")
        return UserIdentityRQ(kind, int(bool(self.positive_response_requested)), primary,
                              secondary)  # fmt: skip


class P_DATA:
    """The P-DATA service primitive (PS3.8 section 7.6): ``presentation_data_value_list`` is a
    list of ``[context ID, message control header + fragment]`` (PS3.8 Annex E.2)."""

    __slots__ = ("presentation_data_value_list",)

    def __init__(self) -> None:
        self.presentation_data_value_list: list[Sequence[object]] = []

    def to_pdu(self) -> PDataTF:
        """The P-DATA-TF PDU carrying these values (DicomNetError for a malformed value)."""
        pdvs = []
        for entry in self.presentation_data_value_list:
            if len(entry) != 2:
                raise DicomNetError("a presentation data value is [context ID, bytes]")
            context_id, value = entry
            if not isinstance(context_id, int) or not isinstance(value, bytes | bytearray):
                raise DicomNetError("a presentation data value is [context ID, bytes]")
            if not value:
                raise DicomNetError("a presentation data value starts with its control header")
            data = bytes(value)
            pdvs.append(PDV(context_id, data[0], memoryview(data)[1:]))
        return PDataTF(tuple(pdvs))

    @classmethod
    def from_pdu(cls, pdu: PDataTF) -> P_DATA:
        """The primitive for a received P-DATA-TF (the values are copied)."""
        primitive = cls()
        primitive.presentation_data_value_list = [
            [pdv.context_id, bytes((pdv.control,)) + bytes(pdv.data)] for pdv in pdu.pdvs
        ]
        return primitive

    def __repr__(self) -> str:
        sizes = [len(v[1]) if isinstance(v[1], bytes | bytearray) else 0
                 for v in self.presentation_data_value_list]  # fmt: skip
        return f"P_DATA({len(sizes)} PDVs, {sum(sizes)} bytes)"
