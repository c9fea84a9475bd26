"""Presentation contexts as the application sees them (PS3.8 section 7.1.1.13, PS3.7 D.3.3.4).

Theory of operation
-------------------
A presentation context pairs one abstract syntax (a SOP class) with the transfer syntaxes that may
encode its datasets. The requestor proposes contexts with odd IDs 1-255 (PS3.8 section 9.3.2.2),
each with one or more transfer syntaxes; the acceptor answers each with a result (PS3.8 Table
9-18) and, on acceptance, the one transfer syntax both sides will use. SCP/SCU role selection
(PS3.7 Annex D.3.3.4) says, per SOP class, which side may invoke operations; when it is absent
the requestor is the SCU and the acceptor the SCP.

:class:`PresentationContext` is the mutable, user-facing object: on the requested side it holds
``transfer_syntaxes`` (what we propose) and ``scu_role``/``scp_role`` (what role selection we
propose, ``None`` = no proposal); after negotiation the association's accepted/rejected copies
also hold ``result``, the single ``accepted_syntax`` and the roles ``as_scu``/``as_scp``
that *we* may play on it (``transfer_syntax``, pynetdicom's name, reads as the list before
negotiation and as the accepted syntax after). The wire-level objects of :mod:`dicomnet.ul.pdu` are derived from it.

Also here: the transfer syntax UIDs we use by default, pynetdicom's negotiation functions and
``*PresentationContexts`` lists. Which SOP classes a tool proposes (query/retrieve models,
storage) is :mod:`dicomnet.sop_sets`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, SupportsIndex

from dicomnet._record import Record
from dicomnet.uid import UIDValue
from dicomnet.ul.negotiation import answer_contexts, requestor_roles
from dicomnet.ul.pdu import PresentationContextRQ, RoleSelection, uid_norm

if TYPE_CHECKING:
    from dicomnet.ul.primitives import SCP_SCU_RoleSelectionNegotiation

__all__ = [
    "DEFAULT_TRANSFER_SYNTAXES",
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "PREFERRED_TRANSFER_SYNTAXES",
    "RECEIVE_TRANSFER_SYNTAXES",
    "VERIFICATION",
    "AcceptedSyntax",
    "PresentationContext",
    "PresentationContextTuple",
    "accepted_syntax_of",
    "build_context",
    "build_role",
    "check_uid",
    "context_result_text",
    "negotiate_as_acceptor",
    "negotiate_as_requestor",
    "negotiate_unrestricted",
]

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

PREFERRED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
"""Proposed (and accepted) when no transfer syntax is given: the two uncompressed little endian
syntaxes every peer supports (Implicit VR LE is the DICOM default, PS3.5 section 10.1). Big
endian and deflate are left out on purpose: re-encoding into them is lossy or slow in pydicom;
add them explicitly when wanted."""

DEFAULT_TRANSFER_SYNTAXES: list[str] = [
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
]
"""The four non-compressed transfer syntaxes (PS3.5 section 10 and Annex A.5), in the order
pynetdicom programs know under this name; the ready-made ``*PresentationContexts`` lists carry
them. dicomnet's own default proposal is :data:`PREFERRED_TRANSFER_SYNTAXES`."""

_J = "1.2.840.10008.1.2.4."
RECEIVE_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    _J + "50", _J + "51", _J + "57", _J + "70", _J + "80", _J + "81", _J + "90", _J + "91",
    _J + "92", _J + "93", _J + "201", _J + "202", _J + "203", "1.2.840.10008.1.2.5",
)  # fmt: skip
"""Proposed when no transfer syntax is given for a context on which we take the SCP role
(storage sub-operations of a C-GET, PS3.4 C.4.3): every image syntax a peer may have stored,
uncompressed first, so whatever the peer holds can arrive as it is (DCMTK's ``+xa``); the
video syntaxes are left out to keep ~120 such contexts within a reasonable A-ASSOCIATE-RQ."""

VERIFICATION = "1.2.840.10008.1.1"

# PS3.8 Table 9-18
_RESULT_TEXT = {
    0: "acceptance",
    1: "user-rejection",
    2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}


def context_result_text(result: int | None) -> str:
    """Human text for a presentation context result (PS3.8 Table 9-18)."""
    if result is None:
        return "pending"
    return _RESULT_TEXT.get(result, f"unknown result {result}")


def check_uid(uid: str, what: str) -> str:
    """``uid`` without trailing padding, or ValueError unless it is 1-64 digits and dots
    (PS3.5 Table 6.2-1 UI); ``what`` names it in the message."""
    uid = uid_norm(str(uid))
    if not uid or len(uid) > 64 or any(c not in "0123456789." for c in uid):
        raise ValueError(f"invalid {what} UID {uid!r}")
    return uid


class AcceptedSyntax(UIDValue):
    """The transfer syntax UID accepted for a presentation context: a ``str`` that also reads
    as pynetdicom's one-item list of it, ``cx.transfer_syntax[0]`` being the whole UID (programs
    written for pynetdicom take it so, e.g. its ``findscu -w`` when it writes the File Meta
    Information; a plain string would give them ``"1"``; it answers pydicom's UID properties as
    well, e.g. ``cx.transfer_syntax[0].is_implicit_VR``), and that compares equal to
    ``[uid]`` as well as to ``uid``. Every other index and slice, and everything else, is the
    string's own; pydicom's UID properties (``name``...) answer as for
    every negotiated UID (:class:`~dicomnet.uid.UIDValue`)."""

    __slots__ = ()

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        if type(key) is int and key == 0:
            return UIDValue(self)  # the UID, answering pydicom's UID properties (is_implicit_VR)
        return str.__getitem__(self, key)

    def __eq__(self, other: object) -> bool:
        if type(other) is list or type(other) is tuple:  # ``== [ExplicitVRLittleEndian]``
            return len(other) == 1 and str.__eq__(self, other[0]) is True
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


class PresentationContextTuple(NamedTuple):
    """An accepted context as (ID, abstract syntax, transfer syntax):
    :attr:`PresentationContext.as_tuple`, pynetdicom's shape of it."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


class PresentationContext(Record, frozen=False):
    """One presentation context (see the module docstring).

    ``transfer_syntaxes``: proposed (requested side) or supported (acceptor side) syntaxes
    (default: :data:`PREFERRED_TRANSFER_SYNTAXES`; a single UID string is accepted too).
    ``accepted_syntax``: after negotiation, the accepted one (``None`` if rejected);
    ``transfer_syntax`` reads as it, or before negotiation as ``transfer_syntaxes``.
    ``scu_role``/``scp_role``: role selection to propose or accept; ``None`` = default roles.
    ``as_scu``/``as_scp``: after negotiation, whether *this* AE may act as SCU / SCP on it.

    Built as pynetdicom programs build one: ``PresentationContext()`` starts with no abstract
    syntax and no transfer syntaxes; assigning a *list* to ``transfer_syntax`` sets the
    syntaxes to propose or support (pynetdicom's meaning), as ``transfer_syntaxes`` does.

    A mutable :class:`~dicomnet._record.Record`: equality compares every field, like the
    dataclass it replaces. Hashable as pynetdicom's contexts are (its qrscp puts them in a set
    to propose the C-MOVE sub-association's contexts): on the syntaxes, ID and roles, so a
    context must not be changed while it is in a set or a dict key.
    """

    __slots__ = (
        "abstract_syntax",
        "accepted_syntax",
        "as_scp",
        "as_scu",
        "context_id",
        "result",
        "scp_role",
        "scu_role",
        "transfer_syntaxes",
    )
    abstract_syntax: str
    transfer_syntaxes: list[str]
    context_id: int | None
    scu_role: bool | None
    scp_role: bool | None
    result: int | None
    accepted_syntax: str | None
    as_scu: bool
    as_scp: bool

    def __hash__(self) -> int:
        # fields equal contexts share (Record's __eq__ compares them all)
        return hash((self.abstract_syntax, self.context_id, tuple(self.transfer_syntaxes),
                     self.accepted_syntax, self.as_scu, self.as_scp))  # fmt: skip

    def __init__(
        self,
        abstract_syntax: str = "",
        transfer_syntaxes: Iterable[str] | str | None = None,
        context_id: int | None = None,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
        result: int | None = None,
        accepted_syntax: str | None = None,
        as_scu: bool = False,
        as_scp: bool = False,
    ) -> None:
        self.abstract_syntax = check_uid(abstract_syntax, "abstract syntax") if abstract_syntax else ""
        if transfer_syntaxes is None:  # an empty context (pynetdicom's start) has none yet
            transfer_syntaxes = PREFERRED_TRANSFER_SYNTAXES if abstract_syntax else ()
        self.transfer_syntaxes = _syntax_list(transfer_syntaxes)
        self.context_id = context_id
        self.scu_role = scu_role
        self.scp_role = scp_role
        self.result = result
        self.accepted_syntax = accepted_syntax
        self.as_scu = as_scu
        self.as_scp = as_scp

    @property
    def transfer_syntax(self) -> str | list[str] | None:
        """pynetdicom's name: the accepted syntax once negotiated (:class:`AcceptedSyntax`,
        which also compares equal to ``[uid]``), None for a rejected context, and before
        negotiation the list of syntaxes to propose or support (``transfer_syntaxes``
        itself). Assigning a list sets those syntaxes; a UID or None, the accepted one.
        dicomnet's own code reads ``accepted_syntax`` and ``transfer_syntaxes``."""
        if self.accepted_syntax is not None:
            return AcceptedSyntax(self.accepted_syntax)
        return self.transfer_syntaxes if self.result is None else None

    @transfer_syntax.setter
    def transfer_syntax(self, value: str | Iterable[str] | None) -> None:
        if value is None or isinstance(value, str):
            self.accepted_syntax = None if value is None else uid_norm(str(value))
        else:  # pynetdicom's ``cx.transfer_syntax = [...]``: the syntaxes to propose/support
            self.transfer_syntaxes = _syntax_list(value)

    @classmethod
    def from_wire(
        cls, context_id: int, abstract_syntax: str, transfer_syntaxes: Sequence[str]
    ) -> PresentationContext:
        """A context built from a peer's PDU: values kept as received (padding stripped) and
        *not* validated, since negotiation, not construction, decides what to do with a
        malformed UID (PS3.8 Table 9-18 result 3 or 4)."""
        cx = object.__new__(cls)
        # negotiated UIDs answer pydicom's UID properties, as pynetdicom's contexts hold UIDs
        cx.abstract_syntax = UIDValue(uid_norm(abstract_syntax))
        cx.transfer_syntaxes = [UIDValue(uid_norm(t)) for t in transfer_syntaxes]
        cx.context_id = context_id
        cx.scu_role = cx.scp_role = cx.result = cx.accepted_syntax = None
        cx.as_scu = cx.as_scp = False
        return cx

    @classmethod
    def concluded(
        cls,
        proposed: PresentationContextRQ,
        result: int | None,
        syntax: str | None,
        requestor_roles: tuple[bool, bool],
        *,
        requestor: bool,
    ) -> PresentationContext:
        """The ``proposed`` context as its negotiation concluded it (PS3.8 Table 9-18):
        ``result`` -- where the acceptor gave none, or accepted without a transfer syntax, the
        context cannot be used and counts as rejected, 2 (no reason) -- and on acceptance
        ``syntax`` and the roles this side may play, ``requestor_roles`` being the requestor's
        (PS3.7 D.3.3.4; the acceptor's are the converse) and ``requestor`` saying which side
        this is. A rejected context has neither."""
        cx = cls.from_wire(proposed.context_id, proposed.abstract_syntax,
                           proposed.transfer_syntaxes)  # fmt: skip
        if result is None or (result == 0 and syntax is None):
            result = 2
        cx.result = result
        if result == 0 and syntax is not None:
            cx.accepted_syntax = uid_norm(syntax)
            scu, scp = requestor_roles
            cx.as_scu, cx.as_scp = (scu, scp) if requestor else (scp, scu)
        return cx

    @property
    def is_accepted(self) -> bool:
        return self.result == 0

    @property
    def as_tuple(self) -> PresentationContextTuple:
        """(context ID, abstract syntax, transfer syntax): the accepted syntax, else the first
        one proposed or supported."""
        ts = self.accepted_syntax or (self.transfer_syntaxes[0] if self.transfer_syntaxes else "")
        return PresentationContextTuple(self.context_id or 0, self.abstract_syntax, str(ts))

    @property
    def status(self) -> str:
        """The negotiation result in pynetdicom's words ("Pending", "Accepted", "User
        Rejected"...); :func:`context_result_text` gives PS3.8's."""
        return "Pending" if self.result is None else _RESULT_WORDS.get(self.result, "Unknown")

    def add_transfer_syntax(self, uid: str) -> None:
        uid = check_uid(uid, "transfer syntax")
        if uid not in self.transfer_syntaxes:
            self.transfer_syntaxes.append(uid)

    def to_rq(self) -> PresentationContextRQ:
        """The A-ASSOCIATE-RQ item (PS3.8 section 9.3.2.2); ``context_id`` must be set."""
        if self.context_id is None:
            raise ValueError("presentation context has no ID")
        if not self.transfer_syntaxes:
            raise ValueError(f"no transfer syntax for {self.abstract_syntax}")
        return PresentationContextRQ(
            self.context_id, self.abstract_syntax, tuple(self.transfer_syntaxes)
        )

    def __repr__(self) -> str:
        # pynetdicom's: the abstract syntax's name (``print(ae.requested_contexts)``)
        return _uid_name(self.abstract_syntax) if self.abstract_syntax else "PresentationContext()"

    def __str__(self) -> str:
        # pynetdicom's layout, which programs print: ID, abstract syntax, syntaxes (the
        # accepted one once negotiated), then result and roles once negotiated
        lines = [] if self.context_id is None else [f"ID: {self.context_id}"]
        if self.abstract_syntax:
            lines.append(f"Abstract Syntax: {_uid_name(self.abstract_syntax)}")
        lines.append("Transfer Syntax(es):")
        shown = [self.accepted_syntax] if self.accepted_syntax else self.transfer_syntaxes
        lines.extend([f"    ={_uid_name(t)}" for t in shown] or ["    (none)"])
        if self.result is not None:
            lines.append(f"Result: {self.status}")
            roles = {(True, False): "SCU only", (True, True): "SCU and SCP",
                     (False, True): "SCP only"}  # fmt: skip
            lines.append(f"Role: {roles.get((self.as_scu, self.as_scp), '(none)')}")
        return "\n".join(lines)


#: PS3.8 Table 9-18 results in the words ``str(context)`` uses (as pynetdicom prints them)
_RESULT_WORDS = {0: "Accepted", 1: "User Rejected", 2: "Provider Rejected",
                 3: "Abstract Syntax Not Supported", 4: "Transfer Syntax(es) Not Supported"}  # fmt: skip


def _syntax_list(syntaxes: Iterable[str] | str) -> list[str]:
    """Transfer syntax UIDs checked, in order, without repeats."""
    if isinstance(syntaxes, str):
        syntaxes = [syntaxes]
    out: list[str] = []
    for t in syntaxes:
        t = check_uid(t, "transfer syntax")
        if t not in out:
            out.append(t)
    return out


def _uid_name(uid: str) -> str:
    try:
        from pydicom.uid import UID

        return str(UID(uid).name)
    except Exception:  # pragma: no cover - pydicom always knows or echoes
        return uid


def build_context(
    abstract_syntax: str,
    transfer_syntaxes: str | Sequence[str] | None = None,
    *,
    transfer_syntax: str | Sequence[str] | None = None,
) -> PresentationContext:
    """A :class:`PresentationContext` for ``abstract_syntax``.

    ``transfer_syntaxes`` (one UID or a sequence) defaults to :data:`DEFAULT_TRANSFER_SYNTAXES`
    (as pynetdicom programs expect; an AE's ``add_requested_context`` proposes
    :data:`PREFERRED_TRANSFER_SYNTAXES` instead); ``transfer_syntax=`` is the same argument under
    the name pynetdicom programs use.
    """
    if transfer_syntax is not None:
        if transfer_syntaxes is not None:
            raise TypeError("give transfer_syntaxes or transfer_syntax, not both")
        transfer_syntaxes = transfer_syntax
    if transfer_syntaxes is None:
        transfer_syntaxes = DEFAULT_TRANSFER_SYNTAXES
    elif isinstance(transfer_syntaxes, str):
        transfer_syntaxes = [transfer_syntaxes]
    return PresentationContext(str(abstract_syntax), list(transfer_syntaxes))


def build_role(
    uid: str, scu_role: bool = False, scp_role: bool = False
) -> SCP_SCU_RoleSelectionNegotiation:
    """An SCP/SCU Role Selection item (PS3.7 D.3.3.4) for ``ext_neg=`` of associate(), the
    object pynetdicom's ``build_role`` returns (``sop_class_uid``, boolean ``scu_role`` and
    ``scp_role``; editable until it is sent).

    E.g. ``build_role(CTImageStorage, scp_role=True)`` lets us receive C-GET's C-STORE
    sub-operations for CT images.
    """
    # lazy: the negotiation items are not on a plain client's start-up path (echoscu)
    from dicomnet.ul.primitives import SCP_SCU_RoleSelectionNegotiation

    item = SCP_SCU_RoleSelectionNegotiation()
    item.sop_class_uid = check_uid(uid, "SOP class")
    item.scu_role, item.scp_role = bool(scu_role), bool(scp_role)
    return item


def accepted_syntax_of(context: object) -> str | None:
    """The transfer syntax accepted for an event's ``context``: a negotiated
    :class:`PresentationContext`'s ``accepted_syntax``, or for a context an application built
    by hand for an event (pynetdicom's :class:`PresentationContextTuple`, any object with a
    ``transfer_syntax``) that UID (the first, if it is a list; a PresentationContext marked
    accepted, ``result`` 0, whose syntax was set as a list, its first)."""
    if isinstance(context, PresentationContext):
        if context.accepted_syntax is None and context.result == 0 and context.transfer_syntaxes:
            return context.transfer_syntaxes[0]
        return context.accepted_syntax
    ts = getattr(context, "transfer_syntax", None)
    if isinstance(ts, list | tuple):
        ts = ts[0] if ts else None
    return None if ts is None else str(ts)


# --- negotiation of contexts, as functions (pynetdicom's public API) ------------------------


def _role_items(roles: Mapping[str, tuple[bool | None, bool | None]] | None) -> list[RoleSelection]:
    """``{SOP class UID: (SCU role, SCP role)}`` as role selection items; an entry with a None
    role proposes or answers nothing (the default roles apply to that SOP class)."""
    return [RoleSelection(uid_norm(str(uid)), int(bool(scu)), int(bool(scp)))
            for uid, (scu, scp) in (roles or {}).items()
            if scu is not None and scp is not None]  # fmt: skip


def _as_requested(
    contexts: Sequence[PresentationContext], unnumbered: bool
) -> list[PresentationContextRQ]:
    """The A-ASSOCIATE-RQ items of ``contexts``; ``unnumbered`` ones (built without IDs, as
    pynetdicom allows here) are numbered 1, 3, 5... in their order."""
    if unnumbered:
        contexts = [PresentationContext.from_wire(2 * n + 1, cx.abstract_syntax, cx.transfer_syntaxes)
                    for n, cx in enumerate(contexts)]  # fmt: skip
    return [cx.to_rq() for cx in contexts]


def negotiate_as_acceptor(
    rq_contexts: Sequence[PresentationContext],
    ac_contexts: Sequence[PresentationContext],
    roles: Mapping[str, tuple[bool | None, bool | None]] | None = None,
) -> tuple[list[PresentationContext], list[SCP_SCU_RoleSelectionNegotiation]]:
    """Answer the contexts ``rq_contexts`` a requestor proposed with the role selection
    ``roles`` (``{SOP class UID: (SCU role, SCP role)}``) as an acceptor supporting
    ``ac_contexts`` answers them (PS3.8 Table 9-18, PS3.7 D.3.3.4), by the same rules as
    the server's negotiation (:func:`dicomnet.ul.negotiation.answer_contexts`).

    Returns every context answered, by context ID (accepted ones carry the acceptor's
    preferred ``transfer_syntax`` and the roles *the acceptor* may play in ``as_scu`` /
    ``as_scp``), and the role selection answers to send back, by SOP class UID. A supported
    context's ``scu_role``/``scp_role`` say whether the requestor may take that role;
    ``None`` allows it, as the server does (pynetdicom then answers with the default roles).
    """
    return _answer(rq_contexts, ac_contexts, roles, unrestricted=False)


def negotiate_unrestricted(
    rq_contexts: Sequence[PresentationContext],
    ac_contexts: Sequence[PresentationContext],
    roles: Mapping[str, tuple[bool | None, bool | None]] | None = None,
) -> tuple[list[PresentationContext], list[SCP_SCU_RoleSelectionNegotiation]]:
    """:func:`negotiate_as_acceptor` as a server with an unrestricted storage service
    (``_config.UNRESTRICTED_STORAGE_SERVICE``) answers: an abstract syntax ``ac_contexts``
    does not list is taken as a storage SOP class of its own and supported with
    :data:`DEFAULT_TRANSFER_SYNTAXES` (pynetdicom accepts the first proposed syntax, whatever
    it is, and only for private, storage and unknown SOP classes)."""
    return _answer(rq_contexts, ac_contexts, roles, unrestricted=True)


def _answer(
    rq_contexts: Sequence[PresentationContext],
    ac_contexts: Sequence[PresentationContext],
    roles: Mapping[str, tuple[bool | None, bool | None]] | None,
    *,
    unrestricted: bool,
) -> tuple[list[PresentationContext], list[SCP_SCU_RoleSelectionNegotiation]]:
    # lazy: the negotiation items are not on a plain client's start-up path (see build_role)
    from dicomnet.ul.primitives import SCP_SCU_RoleSelectionNegotiation

    unnumbered = bool(rq_contexts) and all(cx.context_id is None for cx in rq_contexts)
    requested = _as_requested(rq_contexts, unnumbered)
    supported = {cx.abstract_syntax: cx.transfer_syntaxes for cx in ac_contexts}
    if unrestricted:  # as acceptance.acceptor_policy widens the server's supported map
        for pc in requested:
            supported.setdefault(uid_norm(pc.abstract_syntax), list(DEFAULT_TRANSFER_SYNTAXES))
    allowed = {cx.abstract_syntax: (cx.scu_role is not False, cx.scp_role is not False)
               for cx in ac_contexts}  # fmt: skip
    proposed = _role_items(roles)
    answers, role_answers = answer_contexts(requested, proposed, supported, allowed)
    by_id = {pc.context_id: pc for pc in requested}
    asked = {r.sop_class_uid: r for r in proposed}
    granted = {uid_norm(r.sop_class_uid): r for r in role_answers}
    out: list[PresentationContext] = []
    for answer in sorted(answers, key=lambda a: a.context_id):
        pc = by_id[answer.context_id]
        uid = uid_norm(pc.abstract_syntax)
        cx = PresentationContext.concluded(
            pc, answer.result, answer.transfer_syntax or None,
            requestor_roles(asked.get(uid), granted.get(uid)), requestor=False,
        )  # fmt: skip
        if unnumbered:
            cx.context_id = None
        out.append(cx)
    items = []
    for r in sorted(role_answers, key=lambda r: r.sop_class_uid):
        item = SCP_SCU_RoleSelectionNegotiation()
        item.sop_class_uid = UIDValue(r.sop_class_uid)
        item.scu_role, item.scp_role = bool(r.scu_role), bool(r.scp_role)
        items.append(item)
    return out, items


def negotiate_as_requestor(
    rq_contexts: Sequence[PresentationContext],
    ac_contexts: Sequence[PresentationContext],
    roles: Mapping[str, tuple[bool | None, bool | None]] | None = None,
) -> list[PresentationContext]:
    """What a requestor concludes from the acceptor's answers ``ac_contexts`` (each with a
    ``context_id``, ``result`` and on acceptance its transfer syntax) to the contexts it
    proposed, ``rq_contexts`` (their ``scu_role``/``scp_role`` being the role selection it
    proposed), given the acceptor's role answers ``roles`` (``{SOP class UID: (SCU role, SCP
    role)}``), as an association concludes it (PS3.8 Table 9-18, PS3.7 D.3.3.4).

    Returns every proposed context by context ID, with the result, on acceptance the transfer
    syntax and the roles *the requestor* may play; a context the acceptor did not answer, or
    accepted without a transfer syntax, is rejected (result 2) and no one may use a rejected
    context (pynetdicom leaves those marked SCU).
    """
    if not rq_contexts:
        raise ValueError("negotiate_as_requestor needs the requested contexts")
    answers = {cx.context_id: cx for cx in ac_contexts}
    answered = {r.sop_class_uid: r for r in _role_items(roles)}
    out: list[PresentationContext] = []
    for rq_cx in sorted(rq_contexts, key=lambda c: c.context_id or 0):
        pc = rq_cx.to_rq()
        answer = answers.get(pc.context_id)
        uid = uid_norm(pc.abstract_syntax)
        ours = _role_items({uid: (rq_cx.scu_role, rq_cx.scp_role)})
        out.append(PresentationContext.concluded(
            pc, None if answer is None else answer.result,
            None if answer is None else accepted_syntax_of(answer) or None,
            requestor_roles(ours[0] if ours else None, answered.get(uid)), requestor=True,
        ))  # fmt: skip
    return out


# --- names pynetdicom programs import from here ---------------------------------------------------

ALL_TRANSFER_SYNTAXES: list[str] = [
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    _J + "50", _J + "51", _J + "57", _J + "70",  # JPEG baseline, extended, lossless, SV1
    _J + "80", _J + "81",  # JPEG-LS
    _J + "90", _J + "91", _J + "92", _J + "93",  # JPEG 2000 (and multi-component)
    _J + "94", _J + "95",  # JPIP referenced (and deflate)
    _J + "100", _J + "100.1", _J + "101", _J + "101.1",  # MPEG-2
    _J + "102", _J + "102.1", _J + "103", _J + "103.1", _J + "104", _J + "104.1",  # MPEG-4
    _J + "105", _J + "105.1", _J + "106", _J + "106.1",  # MPEG-4 (3D, stereo)
    _J + "107", _J + "108",  # HEVC
    _J + "110", _J + "111", _J + "112",  # JPEG XL
    _J + "201", _J + "202", _J + "203", _J + "204", _J + "205",  # HTJ2K, JPIP HTJ2K
    "1.2.840.10008.1.2.5",  # RLE lossless
    "1.2.840.10008.1.2.7.1", "1.2.840.10008.1.2.7.2", "1.2.840.10008.1.2.7.3",  # SMPTE 2110
    "1.2.840.10008.1.2.8.1",  # Deflated Image Frame Compression
]  # fmt: skip
"""The non-retired transfer syntaxes of PS3.6 Annex A in registry order, as pynetdicom's
``ALL_TRANSFER_SYNTAXES`` lists them (so without Encapsulated Uncompressed Explicit VR Little
Endian, 1.2.840.10008.1.2.1.98). For ``add_supported_context(uid, ALL_TRANSFER_SYNTAXES)`` in
an acceptor that stores what it receives as it is."""

# The pynetdicom-style context lists (one per service class, see dicomnet.presentation_lists),
# declared here for type checkers and built by __getattr__ below on first access.
VerificationPresentationContexts: list[PresentationContext]
StoragePresentationContexts: list[PresentationContext]
AllStoragePresentationContexts: list[PresentationContext]
QueryRetrievePresentationContexts: list[PresentationContext]
BasicWorklistManagementPresentationContexts: list[PresentationContext]
RelevantPatientInformationPresentationContexts: list[PresentationContext]
SubstanceAdministrationPresentationContexts: list[PresentationContext]
DisplaySystemPresentationContexts: list[PresentationContext]
HangingProtocolPresentationContexts: list[PresentationContext]
DefinedProcedureProtocolPresentationContexts: list[PresentationContext]
ColorPalettePresentationContexts: list[PresentationContext]
ImplantTemplatePresentationContexts: list[PresentationContext]
ProtocolApprovalPresentationContexts: list[PresentationContext]
NonPatientObjectPresentationContexts: list[PresentationContext]
UnifiedProcedurePresentationContexts: list[PresentationContext]
ModalityPerformedPresentationContexts: list[PresentationContext]
ProcedureStepPresentationContexts: list[PresentationContext]
StorageCommitmentPresentationContexts: list[PresentationContext]
PrintManagementPresentationContexts: list[PresentationContext]
MediaStoragePresentationContexts: list[PresentationContext]
MediaCreationManagementPresentationContexts: list[PresentationContext]
InstanceAvailabilityPresentationContexts: list[PresentationContext]
ApplicationEventLoggingPresentationContexts: list[PresentationContext]
RTMachineVerificationPresentationContexts: list[PresentationContext]

__all__ += [
    "ALL_TRANSFER_SYNTAXES",
    "AllStoragePresentationContexts",
    "ApplicationEventLoggingPresentationContexts",
    "BasicWorklistManagementPresentationContexts",
    "ColorPalettePresentationContexts",
    "DefinedProcedureProtocolPresentationContexts",
    "DisplaySystemPresentationContexts",
    "HangingProtocolPresentationContexts",
    "ImplantTemplatePresentationContexts",
    "InstanceAvailabilityPresentationContexts",
    "MediaCreationManagementPresentationContexts",
    "MediaStoragePresentationContexts",
    "ModalityPerformedPresentationContexts",
    "NonPatientObjectPresentationContexts",
    "PrintManagementPresentationContexts",
    "ProcedureStepPresentationContexts",
    "ProtocolApprovalPresentationContexts",
    "QueryRetrievePresentationContexts",
    "RTMachineVerificationPresentationContexts",
    "RelevantPatientInformationPresentationContexts",
    "StorageCommitmentPresentationContexts",
    "StoragePresentationContexts",
    "SubstanceAdministrationPresentationContexts",
    "UnifiedProcedurePresentationContexts",
    "VerificationPresentationContexts",
]


def __getattr__(name: str) -> object:
    """PEP 562 hook building a ``*PresentationContexts`` list on first access.

    Every client tool imports this module, and the lists hold some 400 contexts that only
    pynetdicom-style programs read; building them here at import would cost every ``echoscu``
    run. The list is built once, kept as a module global (so this hook is not called again for
    it) and, like pynetdicom's, shared: copy a context before changing it (the AE's
    ``requested_contexts``/``supported_contexts`` setters already do).
    """
    if name.endswith("PresentationContexts"):
        # lazy: the SOP class tables are needed only when a list is first read (see above)
        from dicomnet.presentation_lists import CONTEXT_LIST_TRANSFER_SYNTAXES, abstract_syntaxes

        try:
            uids = abstract_syntaxes(name)
        except KeyError:
            pass
        else:
            contexts = [build_context(uid, CONTEXT_LIST_TRANSFER_SYNTAXES) for uid in uids]
            globals()[name] = contexts
            return contexts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
