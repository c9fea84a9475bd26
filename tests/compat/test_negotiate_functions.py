"""``presentation.negotiate_as_acceptor`` / ``negotiate_as_requestor``, pynetdicom's public
negotiation functions, run side by side with the installed pynetdicom's on the same inputs,
and checked against what a real association between two dicomnet AEs concludes.

The role rule (PS3.7 D.3.3.4): a role item proposed by the requestor and answered by the
acceptor grants the requestor a role both set; without a proposal or an answer the requestor
is SCU and the acceptor SCP; a context that leaves the requestor neither role is answered
user-rejection (PS3.8 Table 9-18, result 1). Both implementations agree on every combination
where the acceptor's supported context states both roles.

Where they differ, by design (docs/migrating-from-pynetdicom.md):

* an acceptor's supported context whose ``scu_role``/``scp_role`` are left ``None`` allows
  the requestor either role in dicomnet (the server has always negotiated so: a C-GET SCP
  needs no extra setting); pynetdicom then answers with the default roles and no role item;
* a rejected context has no roles in dicomnet (no one may use it) and no accepted
  ``transfer_syntax``; pynetdicom marks it SCU and lists the first proposed syntax.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from dicomnet import AE, evt
from dicomnet.presentation import (
    PresentationContext,
    build_context,
    build_role,
    negotiate_as_acceptor,
    negotiate_as_requestor,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT, EXPLICIT, BIG = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"

Roles = tuple[bool | None, bool | None] | None
PROPOSALS: list[Roles] = [None, (True, True), (True, False), (False, True), (False, False)]
STATED: list[tuple[bool, bool]] = [(True, True), (True, False), (False, True), (False, False)]


def _contexts(module: Any, specs: list[dict[str, Any]]) -> list[Any]:
    """The same contexts built with ``module``'s PresentationContext, attribute by attribute,
    as pynetdicom programs build them."""
    out = []
    for spec in specs:
        cx = module.PresentationContext()
        for name, value in spec.items():
            setattr(cx, name, value)
        out.append(cx)
    return out


def _acceptor_view(cx: Any) -> tuple[int, int, str | None, bool, bool]:
    ts = cx.transfer_syntax[0] if cx.result == 0 else None
    return cx.context_id, cx.result, ts, cx.as_scu, cx.as_scp


def _both_as_acceptor(
    rq: list[dict[str, Any]], ac: list[dict[str, Any]], roles: dict[str, Any] | None
) -> tuple[tuple[list[Any], list[Any]], tuple[list[Any], list[Any]]]:
    pnd = pytest.importorskip("pynetdicom.presentation")
    import dicomnet.presentation as ours

    theirs_cx, theirs_roles = pnd.negotiate_as_acceptor(
        _contexts(pnd, rq), _contexts(pnd, ac), roles
    )
    ours_cx, ours_roles = ours.negotiate_as_acceptor(_contexts(ours, rq), _contexts(ours, ac), roles)
    return (
        ([_acceptor_view(c) for c in theirs_cx],
         [(r.sop_class_uid, r.scu_role, r.scp_role) for r in theirs_roles]),
        ([_acceptor_view(c) for c in ours_cx],
         [(r.sop_class_uid, r.scu_role, r.scp_role) for r in ours_roles]),
    )  # fmt: skip


@pytest.mark.parametrize(("proposed", "allowed"), list(itertools.product(PROPOSALS, STATED)))
def test_acceptor_roles_agree_with_pynetdicom(proposed: Roles, allowed: tuple[bool, bool]) -> None:
    rq = [{"context_id": 1, "abstract_syntax": CT, "transfer_syntax": [EXPLICIT, IMPLICIT]},
          {"context_id": 3, "abstract_syntax": MR, "transfer_syntax": [IMPLICIT]}]  # fmt: skip
    ac = [{"abstract_syntax": CT, "transfer_syntax": [IMPLICIT, EXPLICIT],
           "scu_role": allowed[0], "scp_role": allowed[1]},
          {"abstract_syntax": MR, "transfer_syntax": [IMPLICIT]}]  # fmt: skip
    roles = None if proposed is None else {CT: proposed}
    theirs, ours = _both_as_acceptor(rq, ac, roles)
    assert ours == theirs
    # the acceptor's preference decides the syntax (PS3.8 9.3.3.2): Implicit, its first
    if ours[0][0][1] == 0:
        assert ours[0][0][2] == IMPLICIT


def test_acceptor_results_agree_with_pynetdicom() -> None:
    rq = [{"context_id": 1, "abstract_syntax": CT, "transfer_syntax": [BIG]},
          {"context_id": 5, "abstract_syntax": "1.2.3.4", "transfer_syntax": [IMPLICIT]},
          {"context_id": 3, "abstract_syntax": MR, "transfer_syntax": [BIG, EXPLICIT]}]  # fmt: skip
    ac = [{"abstract_syntax": CT, "transfer_syntax": [IMPLICIT, EXPLICIT]},
          {"abstract_syntax": MR, "transfer_syntax": [IMPLICIT, EXPLICIT]}]  # fmt: skip
    (theirs_cx, _), (ours_cx, ours_roles) = _both_as_acceptor(rq, ac, None)
    # sorted by ID; 4 = transfer-syntaxes-not-supported, 3 = abstract-syntax-not-supported
    assert [c[:3] for c in ours_cx] == [c[:3] for c in theirs_cx] == [
        (1, 4, None), (3, 0, EXPLICIT), (5, 3, None)]  # fmt: skip
    assert ours_cx[1][3:] == theirs_cx[1][3:] == (False, True)  # default: acceptor is SCP
    assert ours_roles == []


@pytest.mark.parametrize("proposed", [(True, True), (False, True)])
def test_acceptor_roles_left_unset_allow_either_role(proposed: tuple[bool, bool]) -> None:
    """The documented difference: unset roles on a supported context allow what is proposed
    (pynetdicom answers with the default roles and no role item)."""
    rq = [{"context_id": 1, "abstract_syntax": CT, "transfer_syntax": [IMPLICIT]}]
    ac = [{"abstract_syntax": CT, "transfer_syntax": [IMPLICIT]}]
    theirs, ours = _both_as_acceptor(rq, ac, {CT: proposed})
    assert theirs == ([(1, 0, IMPLICIT, False, True)], [])
    # we (the acceptor) are SCU where the requestor may be SCP, SCP where it may be SCU
    assert ours == ([(1, 0, IMPLICIT, proposed[1], proposed[0])], [(CT, *proposed)])


def _requestor_view(cx: Any) -> tuple[int, int, str | None, bool, bool]:
    if cx.result != 0:
        return cx.context_id, cx.result, None, False, False
    return cx.context_id, cx.result, cx.transfer_syntax[0], cx.as_scu, cx.as_scp


@pytest.mark.parametrize(("proposed", "answer"), list(itertools.product(PROPOSALS, STATED)))
def test_requestor_roles_agree_with_pynetdicom(proposed: Roles, answer: tuple[bool, bool]) -> None:
    pnd = pytest.importorskip("pynetdicom.presentation")
    import dicomnet.presentation as ours

    scu, scp = proposed or (None, None)
    rq = [{"context_id": 1, "abstract_syntax": CT, "transfer_syntax": [EXPLICIT, IMPLICIT],
           "scu_role": scu, "scp_role": scp},
          {"context_id": 3, "abstract_syntax": MR, "transfer_syntax": [IMPLICIT]},
          {"context_id": 5, "abstract_syntax": MR, "transfer_syntax": [BIG]}]  # fmt: skip
    ac = [{"context_id": 1, "result": 0, "transfer_syntax": [IMPLICIT]},
          {"context_id": 3, "result": 0, "transfer_syntax": [IMPLICIT]}]  # fmt: skip
    roles = {CT: answer}
    theirs = [_requestor_view(c) for c in pnd.negotiate_as_requestor(
        _contexts(pnd, rq), _contexts(pnd, ac), roles)]  # fmt: skip
    got = ours.negotiate_as_requestor(_contexts(ours, rq), _contexts(ours, ac), roles)
    assert [_requestor_view(c) for c in got] == theirs
    assert got[2].result == 2  # unanswered: rejected, no reason (PS3.8 Table 9-18)
    # the difference: no one may use a rejected context (pynetdicom leaves it SCU)
    assert (got[2].as_scu, got[2].as_scp, got[2].transfer_syntax) == (False, False, None)


def test_requestor_needs_its_contexts() -> None:
    with pytest.raises(ValueError):
        negotiate_as_requestor([], [])


def _associate(
    proposed: tuple[bool, bool] | None, allowed: tuple[bool | None, bool | None]
) -> tuple[list[PresentationContext], list[PresentationContext], list[PresentationContext]]:
    """(requestor's accepted+rejected, acceptor's accepted+rejected, what the acceptor
    supported) after a real association between two dicomnet AEs over loopback."""
    scp = AE("SCP")
    scp.add_supported_context(CT, [IMPLICIT, EXPLICIT], scu_role=allowed[0], scp_role=allowed[1])
    scp.add_supported_context(MR, [IMPLICIT])
    seen: list[PresentationContext] = []
    ready = threading.Event()

    def on_established(event: evt.Event) -> None:
        seen.extend(event.assoc.accepted_contexts + event.assoc.rejected_contexts)
        ready.set()

    server = scp.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_ESTABLISHED, on_established)])  # fmt: skip
    try:
        scu = AE("SCU")
        scu.add_requested_context(CT, [EXPLICIT, IMPLICIT])
        scu.add_requested_context(MR, [EXPLICIT])
        ext = [] if proposed is None else [build_role(CT, *proposed)]
        assoc = scu.associate("127.0.0.1", server.server_address[1], ae_title="SCP", ext_neg=ext)
        mine = assoc.accepted_contexts + assoc.rejected_contexts
        if assoc.is_established:
            assert ready.wait(5)
            assoc.release()
    finally:
        server.shutdown()
    return (sorted(mine, key=lambda c: c.context_id or 0),
            sorted(seen, key=lambda c: c.context_id or 0), scp.supported_contexts)  # fmt: skip


@pytest.mark.parametrize(
    ("proposed", "allowed"),
    [(None, (None, None)), ((True, True), (None, None)), ((False, True), (True, True)),
     ((True, True), (True, False)), ((True, False), (False, True))],
)  # fmt: skip
def test_the_functions_conclude_what_an_association_concludes(
    proposed: tuple[bool, bool] | None, allowed: tuple[bool | None, bool | None]
) -> None:
    requestor_side, acceptor_side, supported = _associate(proposed, allowed)
    requested = [build_context(CT, [EXPLICIT, IMPLICIT]), build_context(MR, [EXPLICIT])]
    requested[0].context_id, requested[1].context_id = 1, 3
    if proposed is not None:
        requested[0].scu_role, requested[0].scp_role = proposed
    roles = None if proposed is None else {CT: proposed}
    answered, role_items = negotiate_as_acceptor(requested, supported, roles)

    def view(cxs: list[PresentationContext]) -> list[tuple[Any, ...]]:
        return [(c.context_id, c.result, c.transfer_syntax, c.as_scu, c.as_scp) for c in cxs]

    assert view(answered) == view(acceptor_side)
    back = {r.sop_class_uid: (r.scu_role, r.scp_role) for r in role_items}
    assert view(negotiate_as_requestor(requested, answered, back)) == view(requestor_side)


def test_unrestricted_accepts_unknown_sop_classes_as_the_server_does() -> None:
    """``negotiate_unrestricted`` answers as a server with UNRESTRICTED_STORAGE_SERVICE: an
    unknown or private SOP class is supported with the default syntaxes, a listed one by its
    own (so a listed SOP class proposed only in a syntax it does not list is refused, 4, where
    pynetdicom accepts the first syntax proposed for any storage SOP class); pynetdicom
    agrees where the proposed syntax is one we support."""
    pnd = pytest.importorskip("pynetdicom.presentation")
    import dicomnet.presentation as ours

    private = "1.2.826.0.1.3680043.9.9999.1"
    rq = [{"context_id": 1, "abstract_syntax": private, "transfer_syntax": [IMPLICIT]},
          {"context_id": 3, "abstract_syntax": CT, "transfer_syntax": [IMPLICIT]},
          {"context_id": 5, "abstract_syntax": "1.2.3.4.5", "transfer_syntax": [EXPLICIT]}]  # fmt: skip
    ac = [{"abstract_syntax": CT, "transfer_syntax": [IMPLICIT]}]
    theirs, _ = pnd.negotiate_unrestricted(_contexts(pnd, rq), _contexts(pnd, ac), None)
    got, role_items = ours.negotiate_unrestricted(_contexts(ours, rq), _contexts(ours, ac))
    assert [c.result for c in got] == [0, 0, 0]
    assert [c.transfer_syntax for c in got] == [IMPLICIT, IMPLICIT, EXPLICIT]
    assert [(c.context_id, c.result, c.transfer_syntax[0]) for c in theirs] == [
        (c.context_id, c.result, c.transfer_syntax) for c in got]  # fmt: skip
    assert role_items == []
    # restricted, the unknown ones are refused (3, abstract syntax not supported)
    strict, _ = ours.negotiate_as_acceptor(_contexts(ours, rq), _contexts(ours, ac))
    assert [c.result for c in strict] == [3, 0, 3]
