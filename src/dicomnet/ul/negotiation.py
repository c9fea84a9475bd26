"""Association negotiation on the acceptor side, as pure functions (PS3.7 Annex D, PS3.8 7.1).

Theory of operation
-------------------
An acceptor receives an A-ASSOCIATE-RQ and must answer with an A-ASSOCIATE-AC or an
A-ASSOCIATE-RJ. Everything it needs to decide is in the request and in an
:class:`AcceptorPolicy`; nothing here does I/O or keeps state, so every rule is testable alone.
:func:`negotiate` applies the rules in this order; the first that fails decides the reject:

1. protocol version: bit 0 must be set (PS3.8 Table 9-11) -> RJ 1/2/2
   (rejected-permanent, service-provider ACSE, protocol-version-not-supported);
2. application context name must be the DICOM one, 1.2.840.10008.3.1.1.1 (PS3.7 A.2.1)
   -> RJ 1/1/2 (service-user, application-context-name-not-supported);
3. called AE title must be ours when ``require_called_ae_title`` -> RJ 1/1/7;
4. calling AE title must be on ``allowed_calling_ae_titles`` when one is given -> RJ 1/1/3;
5. user identity (58H, PS3.7 D.3.3.7) through ``user_identity``; refused -> RJ 1/1/1;
6. presentation context IDs must be unique (PS3.8 7.1.1.13: the requestor assigns an unused
   identifier to each context); a duplicate makes the AC's answer list ambiguous -> RJ 1/2/1
   (service-provider ACSE, no-reason-given);
7. each presentation context is answered (:func:`negotiate_contexts`, PS3.8 Table 9-18):

   * an ID that is not odd in 1..255 (PS3.8 Table 9-13) -> result 2, no-reason (provider
     rejection): the rest of the association stays usable;
   * abstract syntax not in ``supported`` -> 3, abstract-syntax-not-supported;
   * no proposed transfer syntax supported -> 4, transfer-syntaxes-not-supported;
   * otherwise 0, acceptance, with the *acceptor's* most preferred transfer syntax among those
     proposed (``supported`` lists them in our order of preference);

8. SCP/SCU role selection (54H, PS3.7 D.3.3.4): answered only for SOP classes the requestor
   proposed a role item for; a role is granted only if proposed *and* allowed by ``roles``
   (default: requestor may be SCU, not SCP). An absent item means the default roles. Where
   the answer would grant the requestor neither role, no one could use the context: it is
   answered 1, user-rejection, instead (as pynetdicom does), without a role item;
9. asynchronous operations window (53H, PS3.7 D.3.3.3): absent = 1/1; answered only if the RQ
   had one; each value is the smaller of the requestor's and ours (0 = unlimited); the item is
   left out of the AC when the result is 1/1 (peers exist that choke on it);
10. SOP class extended negotiation (56H, PS3.7 D.3.3.5) through ``extended_negotiation``;
11. maximum length (51H, PS3.8 Annex D.1): ours is always sent; :func:`peer_max_length` reads
    the peer's (0 = no limit).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from dicomnet._record import Record
from dicomnet.errors import NegotiationError
from dicomnet.ul.pdu import (
    APPLICATION_CONTEXT_NAME,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AsyncOpsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassExtendedNegotiation,
    SubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    ae_title_norm,
    uid_norm,
)

__all__ = [
    "DICOMNET_IMPLEMENTATION_CLASS_UID",
    "DICOMNET_IMPLEMENTATION_VERSION_NAME",
    "RJ_APPLICATION_CONTEXT",
    "RJ_CALLED_AE",
    "RJ_CALLING_AE",
    "RJ_DUPLICATE_CONTEXT_ID",
    "RJ_LOCAL_LIMIT",
    "RJ_PROTOCOL_VERSION",
    "RJ_TEMPORARY_CONGESTION",
    "RJ_USER_NO_REASON",
    "AcceptorPolicy",
    "answer_contexts",
    "check_ae_titles",
    "check_application_context",
    "check_protocol_version",
    "negotiate",
    "negotiate_async_window",
    "negotiate_contexts",
    "negotiate_extended",
    "negotiate_roles",
    "negotiate_user_identity",
    "peer_max_length",
    "requestor_roles",
]

DICOMNET_IMPLEMENTATION_CLASS_UID = "2.25.50206247171044501334166487466241400054"
DICOMNET_IMPLEMENTATION_VERSION_NAME = "DICOMNET_010"

# A-ASSOCIATE-RJ result/source/reason (PS3.8 Table 9-21)
RJ_USER_NO_REASON = AAssociateRJ(1, 1, 1)
RJ_APPLICATION_CONTEXT = AAssociateRJ(1, 1, 2)
RJ_CALLING_AE = AAssociateRJ(1, 1, 3)
RJ_CALLED_AE = AAssociateRJ(1, 1, 7)
RJ_DUPLICATE_CONTEXT_ID = AAssociateRJ(1, 2, 1)
RJ_PROTOCOL_VERSION = AAssociateRJ(1, 2, 2)
RJ_TEMPORARY_CONGESTION = AAssociateRJ(2, 3, 1)
RJ_LOCAL_LIMIT = AAssociateRJ(2, 3, 2)

# Presentation context results (PS3.8 Table 9-18)
ACCEPTANCE = 0
USER_REJECTION = 1
NO_REASON = 2
ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
TRANSFER_SYNTAXES_NOT_SUPPORTED = 4

#: (allow the requestor as SCU, allow the requestor as SCP) when ``roles`` says nothing.
DEFAULT_ROLES = (True, False)

UserIdentityHandler = Callable[[UserIdentityRQ], "tuple[bool, bytes | None]"]
ExtendedNegotiationHandler = Callable[[SOPClassExtendedNegotiation], "bytes | None"]


class AcceptorPolicy(Record):
    """What an acceptor accepts.

    ``supported``: abstract syntax UID -> transfer syntax UIDs in our order of preference.
    ``roles``: SOP class UID -> (requestor may be SCU, requestor may be SCP).
    ``async_ops_window``: (operations we let the requestor invoke, operations we may invoke);
    0 = unlimited, (1, 1) = synchronous.
    ``user_identity``: called with the 58H item; returns (accepted, server response or None).
    Without a handler, identity is not checked and no 59H is sent.
    ``extended_negotiation``: called per 56H item; returns the AC's application information,
    or None to leave that SOP class's item out. ``supported``/``roles`` default to empty.
    """

    __slots__ = (
        "ae_title",
        "allowed_calling_ae_titles",
        "async_ops_window",
        "extended_negotiation",
        "implementation_class_uid",
        "implementation_version_name",
        "max_pdata_length",
        "require_called_ae_title",
        "roles",
        "supported",
        "user_identity",
    )
    ae_title: str
    supported: Mapping[str, Sequence[str]]
    require_called_ae_title: bool
    allowed_calling_ae_titles: Collection[str] | None
    roles: Mapping[str, tuple[bool, bool]]
    max_pdata_length: int
    async_ops_window: tuple[int, int]
    implementation_class_uid: str
    implementation_version_name: str | None
    user_identity: UserIdentityHandler | None
    extended_negotiation: ExtendedNegotiationHandler | None

    def __init__(
        self,
        ae_title: str = "DICOMNET",
        supported: Mapping[str, Sequence[str]] | None = None,
        require_called_ae_title: bool = False,
        allowed_calling_ae_titles: Collection[str] | None = None,
        roles: Mapping[str, tuple[bool, bool]] | None = None,
        max_pdata_length: int = 16384,
        async_ops_window: tuple[int, int] = (1, 1),
        implementation_class_uid: str = DICOMNET_IMPLEMENTATION_CLASS_UID,
        implementation_version_name: str | None = DICOMNET_IMPLEMENTATION_VERSION_NAME,
        user_identity: UserIdentityHandler | None = None,
        extended_negotiation: ExtendedNegotiationHandler | None = None,
    ) -> None:
        _set = object.__setattr__  # frozen: past Record.__setattr__
        _set(self, "ae_title", ae_title)
        _set(self, "supported", {} if supported is None else supported)
        _set(self, "require_called_ae_title", require_called_ae_title)
        _set(self, "allowed_calling_ae_titles", allowed_calling_ae_titles)
        _set(self, "roles", {} if roles is None else roles)
        _set(self, "max_pdata_length", max_pdata_length)
        _set(self, "async_ops_window", async_ops_window)
        _set(self, "implementation_class_uid", implementation_class_uid)
        _set(self, "implementation_version_name", implementation_version_name)
        _set(self, "user_identity", user_identity)
        _set(self, "extended_negotiation", extended_negotiation)


def check_protocol_version(rq: AAssociateRQ) -> AAssociateRJ | None:
    """PS3.8 Table 9-11: a receiver implementing version 1 tests only that bit 0 is set."""
    return None if rq.protocol_version & 1 else RJ_PROTOCOL_VERSION


def check_application_context(rq: AAssociateRQ) -> AAssociateRJ | None:
    """PS3.7 Annex A.2.1: the only DICOM application context name."""
    if uid_norm(rq.application_context_name) != APPLICATION_CONTEXT_NAME:
        return RJ_APPLICATION_CONTEXT
    return None


def check_ae_titles(
    called_ae_title: str,
    calling_ae_title: str,
    *,
    our_ae_title: str,
    require_called: bool = False,
    allowed_calling: Collection[str] | None = None,
) -> AAssociateRJ | None:
    """Called/calling AE title checks (PS3.8 7.1.1.3-7.1.1.4); spaces are not significant."""
    if require_called and ae_title_norm(called_ae_title) != ae_title_norm(our_ae_title):
        return RJ_CALLED_AE
    if allowed_calling is not None:
        allowed = {ae_title_norm(t) for t in allowed_calling}
        if ae_title_norm(calling_ae_title) not in allowed:
            return RJ_CALLING_AE
    return None


def negotiate_contexts(
    requested: Sequence[PresentationContextRQ],
    supported: Mapping[str, Sequence[str]],
) -> tuple[PresentationContextAC, ...]:
    """Answer each proposed presentation context (PS3.8 7.1.1.14, Table 9-18).

    Raises :class:`NegotiationError` (1/2/1) on a duplicate context ID.
    """
    norm_supported = {uid_norm(k): v for k, v in supported.items()}
    seen: set[int] = set()
    answers: list[PresentationContextAC] = []
    for pc in requested:
        cid = pc.context_id
        if cid in seen:
            raise NegotiationError(
                f"duplicate presentation context ID {cid}", result=1, source=2, reason=1
            )
        seen.add(cid)
        if not (1 <= cid <= 255 and cid & 1):
            answers.append(PresentationContextAC(cid, NO_REASON, None))
            continue
        ours = norm_supported.get(uid_norm(pc.abstract_syntax))
        if ours is None:
            answers.append(PresentationContextAC(cid, ABSTRACT_SYNTAX_NOT_SUPPORTED, None))
            continue
        proposed = {uid_norm(ts) for ts in pc.transfer_syntaxes}
        choice = next((ts for ts in ours if uid_norm(ts) in proposed), None)
        if choice is None:
            answers.append(PresentationContextAC(cid, TRANSFER_SYNTAXES_NOT_SUPPORTED, None))
        else:
            answers.append(PresentationContextAC(cid, ACCEPTANCE, uid_norm(choice)))
    return tuple(answers)


def negotiate_roles(
    requested: Sequence[RoleSelection],
    roles: Mapping[str, tuple[bool, bool]],
    *,
    abstract_syntaxes: Collection[str] | None = None,
) -> tuple[RoleSelection, ...]:
    """Answer SCP/SCU role selection items (PS3.7 D.3.3.4).

    One answer per proposed SOP class (the first item wins if one is repeated); a role is
    granted only if proposed and allowed. ``abstract_syntaxes``: if given, answer only SOP
    classes among them (those of the accepted contexts).
    """
    norm_roles = {uid_norm(k): v for k, v in roles.items()}
    wanted = None if abstract_syntaxes is None else {uid_norm(a) for a in abstract_syntaxes}
    answered: set[str] = set()
    out: list[RoleSelection] = []
    for item in requested:
        uid = uid_norm(item.sop_class_uid)
        if uid in answered or (wanted is not None and uid not in wanted):
            continue
        answered.add(uid)
        allow_scu, allow_scp = norm_roles.get(uid, DEFAULT_ROLES)
        out.append(
            RoleSelection(
                item.sop_class_uid,
                1 if (item.scu_role and allow_scu) else 0,
                1 if (item.scp_role and allow_scp) else 0,
            )
        )
    return tuple(out)


def answer_contexts(
    requested: Sequence[PresentationContextRQ],
    role_selections: Sequence[RoleSelection],
    supported: Mapping[str, Sequence[str]],
    roles: Mapping[str, tuple[bool, bool]],
) -> tuple[tuple[PresentationContextAC, ...], tuple[RoleSelection, ...]]:
    """Rules 7 and 8 together: the answer to each proposed context and the role selection
    answers for the accepted ones. Where the role answer would grant the requestor neither
    role, no one could use the context: it is answered 1, user-rejection (PS3.8 Table 9-18),
    as pynetdicom answers it, and its role item is left out.

    Raises :class:`NegotiationError` (1/2/1) on a duplicate context ID.
    """
    contexts = negotiate_contexts(requested, supported)
    ids = {pc.context_id for pc in contexts if pc.result == ACCEPTANCE}
    accepted = {uid_norm(pc.abstract_syntax) for pc in requested if pc.context_id in ids}
    answers = negotiate_roles(role_selections, roles, abstract_syntaxes=accepted)
    roleless = {uid_norm(r.sop_class_uid) for r in answers if not r.scu_role and not r.scp_role}
    if not roleless:
        return contexts, answers
    ids = {pc.context_id for pc in requested if uid_norm(pc.abstract_syntax) in roleless}
    contexts = tuple(
        PresentationContextAC(pc.context_id, USER_REJECTION, pc.transfer_syntax)
        if pc.context_id in ids and pc.result == ACCEPTANCE else pc
        for pc in contexts
    )  # fmt: skip
    return contexts, tuple(r for r in answers if uid_norm(r.sop_class_uid) not in roleless)


def requestor_roles(
    proposed: RoleSelection | None, answer: RoleSelection | None
) -> tuple[bool, bool]:
    """(requestor may be SCU, requestor may be SCP) on an accepted context (PS3.7 D.3.3.4):
    without a proposal *and* an answer, the default roles (SCU, not SCP); with both, a role
    the requestor proposed and the acceptor granted. The acceptor's roles are the converse."""
    if proposed is None or answer is None:
        return DEFAULT_ROLES
    return (
        bool(proposed.scu_role and answer.scu_role),
        bool(proposed.scp_role and answer.scp_role),
    )


def _min_window(theirs: int, ours: int) -> int:
    """The smaller of two window sizes where 0 means unlimited (PS3.7 D.3.3.3)."""
    if theirs == 0:
        return ours
    if ours == 0:
        return theirs
    return min(theirs, ours)


def negotiate_async_window(
    requested: AsyncOpsWindow | None, ours: tuple[int, int]
) -> AsyncOpsWindow | None:
    """The AC's 53H item, or None to leave it out (PS3.7 D.3.3.3).

    Left out when the RQ had none ("if this negotiation is not present in the A-ASSOCIATE
    indication it shall be omitted in the A-ASSOCIATE response") and when the result is the
    default 1/1.
    """
    if requested is None:
        return None
    invoked = _min_window(requested.max_operations_invoked, ours[0])
    performed = _min_window(requested.max_operations_performed, ours[1])
    if (invoked, performed) == (1, 1):
        return None
    return AsyncOpsWindow(invoked, performed)


def negotiate_user_identity(
    requested: UserIdentityRQ | None, handler: UserIdentityHandler | None
) -> tuple[bool, UserIdentityAC | None]:
    """(accepted, 59H item or None) for a 58H item (PS3.7 D.3.3.7)."""
    if requested is None or handler is None:
        return True, None
    accepted, response = handler(requested)
    if not accepted:
        return False, None
    if requested.positive_response_requested:
        return True, UserIdentityAC(response or b"")
    return True, None


def negotiate_extended(
    requested: Sequence[SOPClassExtendedNegotiation],
    handler: ExtendedNegotiationHandler | None,
    *,
    abstract_syntaxes: Collection[str] | None = None,
) -> tuple[SOPClassExtendedNegotiation, ...]:
    """Answers to 56H items (PS3.7 D.3.3.5); without a handler none are answered."""
    if handler is None:
        return ()
    wanted = None if abstract_syntaxes is None else {uid_norm(a) for a in abstract_syntaxes}
    out: list[SOPClassExtendedNegotiation] = []
    for item in requested:
        if wanted is not None and uid_norm(item.sop_class_uid) not in wanted:
            continue
        info = handler(item)
        if info is not None:
            out.append(SOPClassExtendedNegotiation(item.sop_class_uid, bytes(info)))
    return tuple(out)


def peer_max_length(user_information: UserInformation) -> int:
    """The peer's Maximum Length (51H); absent is treated as 0 = no limit (PS3.8 D.1)."""
    value = user_information.maximum_length
    return 0 if value is None else value


def negotiate(rq: AAssociateRQ, policy: AcceptorPolicy) -> AAssociateAC | AAssociateRJ:
    """Answer an A-ASSOCIATE-RQ under ``policy`` (rule order in the module docstring)."""
    rj = check_protocol_version(rq) or check_application_context(rq)
    if rj is None:
        rj = check_ae_titles(
            rq.called_ae_title,
            rq.calling_ae_title,
            our_ae_title=policy.ae_title,
            require_called=policy.require_called_ae_title,
            allowed_calling=policy.allowed_calling_ae_titles,
        )
    if rj is not None:
        return rj
    ui = rq.user_information
    accepted, identity_ac = negotiate_user_identity(ui.user_identity_rq, policy.user_identity)
    if not accepted:
        return RJ_USER_NO_REASON
    try:
        contexts, roles = answer_contexts(
            rq.presentation_contexts, ui.role_selections, policy.supported, policy.roles
        )
    except NegotiationError as exc:
        return AAssociateRJ(exc.result, exc.source, exc.reason)
    ids = {pc.context_id for pc in contexts if pc.result == ACCEPTANCE}
    accepted_syntaxes = {
        uid_norm(pc.abstract_syntax) for pc in rq.presentation_contexts if pc.context_id in ids
    }
    items: list[SubItem] = [
        MaximumLength(policy.max_pdata_length),
        ImplementationClassUID(policy.implementation_class_uid),
    ]
    window = negotiate_async_window(ui.async_ops_window, policy.async_ops_window)
    if window is not None:
        items.append(window)
    items.extend(roles)
    if policy.implementation_version_name:
        items.append(ImplementationVersionName(policy.implementation_version_name))
    items.extend(
        negotiate_extended(
            ui.extended_negotiations,
            policy.extended_negotiation,
            abstract_syntaxes=accepted_syntaxes,
        )
    )
    if identity_ac is not None:
        items.append(identity_ac)
    return AAssociateAC(
        called_ae_title=rq.called_ae_title,
        calling_ae_title=rq.calling_ae_title,
        presentation_contexts=contexts,
        user_information=UserInformation(tuple(items)),
    )
