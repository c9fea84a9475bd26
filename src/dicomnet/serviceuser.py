"""One side of an association as negotiated: the requestor or the acceptor (PS3.8 section
7.1.1, the A-ASSOCIATE service parameters; PS3.7 Annex D.3.3, the user information items).

Theory of operation
-------------------
An association has two service users, :attr:`~dicomnet.assocbase.AssociationBase.requestor` and
``acceptor``, each a :class:`ServiceUser` filled in by negotiation
(:meth:`~dicomnet.assocbase.AssociationBase.apply_negotiation`) from the A-ASSOCIATE-RQ and -AC:
AE title, network address, the Maximum Length it receives (PS3.8 D.1), implementation class
UID and version name (PS3.7 D.3.3.2), the asynchronous operations window (D.3.3.3), role
selections (D.3.3.4), SOP class extended and common extended negotiation items (D.3.3.5,
D.3.3.6) and user identity (D.3.3.7). The records hold what was exchanged; the properties at the
end give the same values under the names pynetdicom's ``ServiceUser`` uses
(``asynchronous_operations``, ``role_selection``, ``sop_class_extended``, ``info``,
``primitive``, ``user_information``, ``get_contexts``...), read-only: in dicomnet a program sets
what is proposed on the AE, not on a service user. ``primitive`` is the A-ASSOCIATE PDU this
side sent (the requestor's A-ASSOCIATE-RQ, the acceptor's A-ASSOCIATE-AC; PS3.8 9.3.2/9.3.3),
once negotiated; the acceptor also keeps the presentation context results (``pcdrl``) and, on
our own server, the contexts it supported.
"""

from __future__ import annotations

from dicomnet._record import Record
from dicomnet.presentation import PresentationContext
from dicomnet.ul.pdu import (
    AAssociateAC,
    AAssociateRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    SubItem,
    UserIdentityAC,
    UserIdentityRQ,
)

__all__ = ["ServiceUser"]


class ServiceUser(Record, frozen=False):
    """One side of an association as negotiated (PS3.8 section 7.1.1).

    ``user_identity``: the requestor's User Identity request (58H) on the requestor's side;
    the acceptor's response (59H, its ``server_response``) on the acceptor's side, where
    pynetdicom programs read it (PS3.7 D.3.3.7)."""

    __slots__ = (
        "address",
        "ae_title",
        "async_ops_window",
        "extended_negotiation",
        "implementation_class_uid",
        "implementation_version_name",
        "maximum_length",
        "mode",
        "port",
        "primitive",
        "proposed",
        "results",
        "role_selections",
        "supported",
        "user_identity",
        "user_identity_response",
    )
    ae_title: str
    address: str
    port: int
    maximum_length: int
    implementation_class_uid: str | None
    implementation_version_name: str | None
    async_ops_window: tuple[int, int] | None
    role_selections: dict[str, RoleSelection]
    extended_negotiation: list[SubItem]
    user_identity: UserIdentityRQ | UserIdentityAC | None
    user_identity_response: bytes | None
    proposed: list[PresentationContext]
    mode: str
    primitive: AAssociateRQ | AAssociateAC | None
    results: list[PresentationContext]
    supported: list[PresentationContext]

    def __init__(
        self,
        ae_title: str = "",
        address: str = "",
        port: int = 0,
        maximum_length: int = 0,
        implementation_class_uid: str | None = None,
        implementation_version_name: str | None = None,
        async_ops_window: tuple[int, int] | None = None,
        role_selections: dict[str, RoleSelection] | None = None,
        extended_negotiation: list[SubItem] | None = None,
        user_identity: UserIdentityRQ | UserIdentityAC | None = None,
        user_identity_response: bytes | None = None,
        proposed: list[PresentationContext] | None = None,
        mode: str = "",
        primitive: AAssociateRQ | AAssociateAC | None = None,
        results: list[PresentationContext] | None = None,
        supported: list[PresentationContext] | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.address = address
        self.port = port
        self.maximum_length = maximum_length
        self.implementation_class_uid = implementation_class_uid
        self.implementation_version_name = implementation_version_name
        self.async_ops_window = async_ops_window
        self.role_selections = {} if role_selections is None else role_selections
        self.extended_negotiation = [] if extended_negotiation is None else extended_negotiation
        self.user_identity = user_identity
        self.user_identity_response = user_identity_response
        self.proposed = [] if proposed is None else proposed  # see requested_contexts
        self.mode = mode  # "requestor" or "acceptor"
        self.primitive = primitive  # the A-ASSOCIATE-RQ (requestor) / -AC (acceptor) it sent
        self.results = [] if results is None else results  # acceptor: every context's result
        self.supported = [] if supported is None else supported  # acceptor: what it offered

    @property
    def maximum_pdu_size(self) -> int:  # the founding document's spelling
        return self.maximum_length

    # --- pynetdicom's names for the same values (read-only) ----------------------------------
    @property
    def is_requestor(self) -> bool:
        return self.mode == "requestor"

    @property
    def is_acceptor(self) -> bool:
        return self.mode == "acceptor"

    @property
    def writeable(self) -> bool:
        """False: a side is filled in by negotiation, not by the program (pynetdicom's
        requestor is writeable before it associates; dicomnet's AE holds those settings)."""
        return False

    @property
    def asynchronous_operations(self) -> tuple[int, int]:
        """(Maximum Number Operations Invoked, Performed), (1, 1) when not negotiated
        (PS3.7 D.3.3.3)."""
        return self.async_ops_window or (1, 1)

    @property
    def role_selection(self) -> dict[str, RoleSelection]:
        """{SOP class UID: its SCP/SCU Role Selection item} (PS3.7 D.3.3.4)."""
        return self.role_selections

    @property
    def sop_class_extended(self) -> dict[str, bytes]:
        """{SOP class UID: service-class application information} (PS3.7 D.3.3.5)."""
        return {i.sop_class_uid: i.service_class_application_information
                for i in self.extended_negotiation
                if isinstance(i, SOPClassExtendedNegotiation)}  # fmt: skip

    @property
    def sop_class_common_extended(self) -> dict[str, SOPClassCommonExtendedNegotiation]:
        """{SOP class UID: its SOP Class Common Extended Negotiation item} (PS3.7 D.3.3.6)."""
        return {i.sop_class_uid: i for i in self.extended_negotiation
                if isinstance(i, SOPClassCommonExtendedNegotiation)}  # fmt: skip

    @property
    def info(self) -> dict[str, object]:
        """A summary: AE title, address and port (None when unknown), mode and the largest
        PDU it receives (``pdv_size``); also what ``Association.local`` / ``remote`` give."""
        return {"ae_title": self.ae_title, "address": self.address or None,
                "port": self.port or None, "mode": self.mode,
                "pdv_size": self.maximum_length}  # fmt: skip

    @property
    def user_information(self) -> list[SubItem]:
        """The user information sub-items this side sent (PS3.8 9.3.2.3, PS3.7 D.3.3), in
        order; empty before negotiation."""
        return [] if self.primitive is None else list(self.primitive.user_information.sub_items)

    @property
    def requested_contexts(self) -> list[PresentationContext]:
        """The presentation contexts this side proposed: what our requestor was given, or
        (the acceptor's view of a peer) those of the A-ASSOCIATE-RQ it sent, read from the
        PDU when first asked, not at every association."""
        rq = self.primitive
        if not self.proposed and isinstance(rq, AAssociateRQ):
            self.proposed = [PresentationContext.from_wire(pc.context_id, pc.abstract_syntax,
                                                           pc.transfer_syntaxes)
                             for pc in rq.presentation_contexts]  # fmt: skip
        return self.proposed

    @requested_contexts.setter
    def requested_contexts(self, contexts: list[PresentationContext]) -> None:
        self.proposed = contexts

    @property
    def supported_contexts(self) -> list[PresentationContext]:
        """Acceptor: the contexts it supported (our server), else the results it answered."""
        if self.mode != "acceptor":
            raise AttributeError("'supported_contexts' is the acceptor's")
        return self.supported or self.results

    def get_contexts(self, cx_type: str) -> list[PresentationContext]:
        """The contexts of one kind: the requestor's ``"requested"`` (what it proposed) and
        ``"pcdl"`` (the Presentation Context Definition List it sent), the acceptor's
        ``"supported"`` and ``"pcdrl"`` (the Definition Result List: every proposed context
        with its result, accepted ones with their transfer syntax). ``ValueError`` for a kind
        this side does not have or has not negotiated yet."""
        negotiated = self.primitive is not None
        if self.mode == "requestor" and cx_type in ("requested", "pcdl"):
            if cx_type == "requested" or negotiated:
                return self.requested_contexts
        elif self.mode == "acceptor" and cx_type == "supported" and self.supported:
            return self.supported
        elif self.mode == "acceptor" and cx_type == "pcdrl" and negotiated:
            return self.results
        raise ValueError(f"No '{cx_type}' presentation contexts are available for the {self.mode}")
