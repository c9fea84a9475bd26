"""What a negotiation produced, read from the A-ASSOCIATE-RQ/AC pair (PS3.7 D.3.3, PS3.8 9.3).

Theory of operation
-------------------
:mod:`dicomnet.ul.negotiation` decides the acceptor's answer; this module reads the result
back, the same way in both roles, as pure functions over the two PDUs:

* :func:`negotiated_contexts` turns the proposed contexts and the acceptor's answers into
  :class:`~dicomnet.presentation.PresentationContext` objects, split into accepted and
  rejected. An accepted context carries its transfer syntax and the roles *we* may play on it
  (PS3.7 D.3.3.4): with no role selection answer the requestor is SCU and the acceptor SCP;
  with one, the requestor may be SCU when both sides set ``scu_role`` and SCP when both set
  ``scp_role``, the acceptor the converse. A context the acceptor did not answer, or accepted
  without a transfer syntax, counts as rejected (result 2, no reason): it cannot be used.
* :func:`rejection_text` and :func:`describe_rejection` say what an A-ASSOCIATE-RJ means
  (PS3.8 Table 9-21), the first in the standard's own terms ("rejected-permanent,
  service-user: called-AE-title-not-recognized", as ``Association.rejection_text`` gives it),
  the second in the command-line tools' words with the three numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from dicomnet.presentation import PresentationContext
from dicomnet.ul.negotiation import DEFAULT_ROLES, requestor_roles
from dicomnet.ul.pdu import AAssociateAC, AAssociateRQ, RoleSelection, uid_norm

__all__ = ["describe_rejection", "negotiated_contexts", "rejection_text"]

# PS3.8 Table 9-21 (A-ASSOCIATE-RJ result / source / reason), in the standard's terms
_RJ_RESULT = {1: "rejected-permanent", 2: "rejected-transient"}
_RJ_SOURCE = {
    1: "service-user",
    2: "service-provider (ACSE related function)",
    3: "service-provider (presentation related function)",
}
_RJ_REASON = {
    1: {1: "no-reason-given", 2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized", 7: "called-AE-title-not-recognized"},
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {1: "temporary-congestion", 2: "local-limit-exceeded"},
}  # fmt: skip
# the same sources as the command-line tools word them
_RJ_SOURCE_SHORT = {
    1: "service user",
    2: "service provider (ACSE)",
    3: "service provider (presentation)",
}


def rejection_text(result: int, source: int, reason: int) -> str:
    """The meaning of an A-ASSOCIATE-RJ (PS3.8 Table 9-21), in the standard's terms."""
    return (
        f"{_RJ_RESULT.get(result, f'result {result}')}, "
        f"{_RJ_SOURCE.get(source, f'source {source}')}: "
        f"{_RJ_REASON.get(source, {}).get(reason, f'reason {reason}')}"
    )


def describe_rejection(result: int, source: int, reason: int) -> str:
    """'rejected-permanent by service user: called AE title not recognized (1/1/7)'."""
    known = _RJ_REASON.get(source, {}).get(reason)
    what = f"reason {reason}" if known is None else known.replace("-", " ")
    return (
        f"{_RJ_RESULT.get(result, f'result {result}')} by "
        f"{_RJ_SOURCE_SHORT.get(source, f'source {source}')}: {what} ({result}/{source}/{reason})"
    )


def negotiated_contexts(
    rq: AAssociateRQ,
    ac: AAssociateAC,
    mode: Literal["requestor", "acceptor"],
    requestor_roles_by_uid: Mapping[str, RoleSelection],
    acceptor_roles: Mapping[str, RoleSelection],
) -> tuple[list[PresentationContext], list[PresentationContext]]:
    """(accepted, rejected) contexts of the negotiation ``rq``/``ac``, seen from ``mode``;
    the role maps are keyed by normalised SOP Class UID (see the module docstring)."""
    proposed = {pc.context_id: pc for pc in rq.presentation_contexts}
    accepted: list[PresentationContext] = []
    rejected: list[PresentationContext] = []
    for pc_ac in ac.presentation_contexts:
        pc_rq = proposed.get(pc_ac.context_id)
        if pc_rq is None:
            continue  # the codec/FSM already refused unknown IDs; be defensive
        abstract = uid_norm(pc_rq.abstract_syntax)
        role = acceptor_roles.get(abstract)
        cx = PresentationContext.concluded(
            pc_rq, pc_ac.result, pc_ac.transfer_syntax,
            requestor_roles(requestor_roles_by_uid.get(abstract), role),
            requestor=mode == "requestor",
        )  # fmt: skip
        if cx.result != 0:
            rejected.append(cx)
            continue
        cx.scu_role = None if role is None else bool(role.scu_role)
        cx.scp_role = None if role is None else bool(role.scp_role)
        accepted.append(cx)
    # contexts the acceptor did not answer at all count as rejected (no-reason)
    answered = {pc.context_id for pc in ac.presentation_contexts}
    rejected.extend(PresentationContext.concluded(pc_rq, None, None, DEFAULT_ROLES, requestor=True)
                    for cid, pc_rq in proposed.items() if cid not in answered)  # fmt: skip
    return accepted, rejected
