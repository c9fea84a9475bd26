"""Acceptor-side association negotiation rules (PS3.7 Annex D, PS3.8 section 7.1 / 9.3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dicomnet.errors import NegotiationError
from dicomnet.ul.negotiation import (
    AcceptorPolicy,
    check_ae_titles,
    negotiate,
    negotiate_async_window,
    negotiate_contexts,
    negotiate_extended,
    negotiate_roles,
    negotiate_user_identity,
    peer_max_length,
)
from dicomnet.ul.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AsyncOpsWindow,
    ImplementationClassUID,
    MaximumLength,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)

VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
IVLE = "1.2.840.10008.1.2"
EVLE = "1.2.840.10008.1.2.1"
JPEG = "1.2.840.10008.1.2.4.50"

SUPPORTED = {VERIFICATION: [IVLE], CT_STORAGE: [EVLE, IVLE]}


def make_rq(*contexts: PresentationContextRQ, sub_items: tuple = (), **kw: object) -> AAssociateRQ:
    ui = UserInformation((MaximumLength(16384), ImplementationClassUID("1.2.3"), *sub_items))
    rq = AAssociateRQ(
        "ARCHIVE", "MODALITY", contexts or (PresentationContextRQ(1, VERIFICATION, (IVLE,)),), ui
    )
    return replace(rq, **kw)  # type: ignore[arg-type]


def policy(**kw: object) -> AcceptorPolicy:
    return AcceptorPolicy(**{"ae_title": "ARCHIVE", "supported": SUPPORTED, **kw})  # type: ignore[arg-type]


# --- presentation contexts (PS3.8 Table 9-18) ----------------------------------------------


def test_context_results_0_3_4() -> None:
    got = negotiate_contexts(
        [
            PresentationContextRQ(1, VERIFICATION, (IVLE,)),
            PresentationContextRQ(3, MR_STORAGE, (IVLE,)),
            PresentationContextRQ(5, CT_STORAGE, (JPEG,)),
        ],
        SUPPORTED,
    )
    assert got == (
        PresentationContextAC(1, 0, IVLE),
        PresentationContextAC(3, 3, None),
        PresentationContextAC(5, 4, None),
    )


def test_acceptor_preference_wins_over_requestor_order() -> None:
    # The requestor lists IVLE first; we prefer EVLE, which was also proposed.
    got = negotiate_contexts([PresentationContextRQ(1, CT_STORAGE, (IVLE, JPEG, EVLE))], SUPPORTED)
    assert got == (PresentationContextAC(1, 0, EVLE),)
    # Only the proposed ones count: EVLE not proposed -> IVLE.
    got = negotiate_contexts([PresentationContextRQ(1, CT_STORAGE, (JPEG, IVLE))], SUPPORTED)
    assert got == (PresentationContextAC(1, 0, IVLE),)


def test_uid_padding_is_not_significant() -> None:
    got = negotiate_contexts([PresentationContextRQ(7, CT_STORAGE + "\x00", (IVLE + "\x00",))], SUPPORTED)
    assert got == (PresentationContextAC(7, 0, IVLE),)


@pytest.mark.parametrize("cid", [2, 0, 254, 256])
def test_even_or_out_of_range_context_id_is_provider_rejected(cid: int) -> None:
    got = negotiate_contexts(
        [PresentationContextRQ(cid, VERIFICATION, (IVLE,)), PresentationContextRQ(1, VERIFICATION, (IVLE,))],
        SUPPORTED,
    )
    assert got == (PresentationContextAC(cid, 2, None), PresentationContextAC(1, 0, IVLE))


def test_duplicate_context_id_rejects_association() -> None:
    with pytest.raises(NegotiationError) as info:
        negotiate_contexts(
            [PresentationContextRQ(1, VERIFICATION, (IVLE,)), PresentationContextRQ(1, CT_STORAGE, (IVLE,))],
            SUPPORTED,
        )
    assert (info.value.result, info.value.source, info.value.reason) == (1, 2, 1)
    rq = make_rq(
        PresentationContextRQ(3, VERIFICATION, (IVLE,)), PresentationContextRQ(3, VERIFICATION, (IVLE,))
    )
    assert negotiate(rq, policy()) == AAssociateRJ(1, 2, 1)


def test_same_abstract_syntax_in_two_contexts_is_fine() -> None:
    got = negotiate_contexts(
        [PresentationContextRQ(1, CT_STORAGE, (IVLE,)), PresentationContextRQ(3, CT_STORAGE, (EVLE,))],
        SUPPORTED,
    )
    assert got == (PresentationContextAC(1, 0, IVLE), PresentationContextAC(3, 0, EVLE))


# --- role selection (PS3.7 D.3.3.4) --------------------------------------------------------


def test_roles_granted_only_if_proposed_and_allowed() -> None:
    requested = [
        RoleSelection(CT_STORAGE, 0, 1),  # C-GET style: requestor wants to be SCP
        RoleSelection(MR_STORAGE, 1, 1),
        RoleSelection(VERIFICATION, 1, 0),
    ]
    roles = {CT_STORAGE: (True, True), MR_STORAGE: (True, False)}
    got = negotiate_roles(requested, roles)
    assert got == (
        RoleSelection(CT_STORAGE, 0, 1),  # SCU not proposed -> not granted even if allowed
        RoleSelection(MR_STORAGE, 1, 0),  # SCP proposed but not allowed
        RoleSelection(VERIFICATION, 1, 0),  # default roles: SCU yes, SCP no
    )


def test_roles_default_refuses_scp() -> None:
    assert negotiate_roles([RoleSelection(CT_STORAGE, 1, 1)], {}) == (
        RoleSelection(CT_STORAGE, 1, 0),
    )


def test_roles_only_for_accepted_abstract_syntaxes_and_once_each() -> None:
    requested = [RoleSelection(CT_STORAGE, 0, 1), RoleSelection(CT_STORAGE, 1, 1), RoleSelection(MR_STORAGE, 0, 1)]
    got = negotiate_roles(requested, {CT_STORAGE: (True, True)}, abstract_syntaxes={CT_STORAGE})
    assert got == (RoleSelection(CT_STORAGE, 0, 1),)


def test_no_role_item_in_rq_means_none_in_ac() -> None:
    ac = negotiate(make_rq(), policy(roles={VERIFICATION: (True, True)}))
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.role_selections == ()


def test_role_answer_in_full_negotiation() -> None:
    rq = make_rq(
        PresentationContextRQ(1, CT_STORAGE, (IVLE,)),
        sub_items=(RoleSelection(CT_STORAGE, 1, 1),),
    )
    ac = negotiate(rq, policy(roles={CT_STORAGE: (True, True)}))
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.role_selections == (RoleSelection(CT_STORAGE, 1, 1),)


# --- asynchronous operations window (PS3.7 D.3.3.3) ----------------------------------------


@pytest.mark.parametrize(
    ("requested", "ours", "expected"),
    [
        (None, (5, 5), None),  # absent in RQ -> absent in AC
        (AsyncOpsWindow(5, 5), (1, 1), None),  # ours synchronous -> 1/1 -> left out
        (AsyncOpsWindow(1, 1), (8, 8), None),  # RQ 1/1 -> 1/1 -> left out
        (AsyncOpsWindow(10, 3), (4, 8), AsyncOpsWindow(4, 3)),  # negotiated down
        (AsyncOpsWindow(0, 0), (4, 0), AsyncOpsWindow(4, 0)),  # 0 = unlimited
        (AsyncOpsWindow(0, 2), (0, 0), AsyncOpsWindow(0, 2)),
        (AsyncOpsWindow(3, 1), (0, 5), AsyncOpsWindow(3, 1)),
    ],
)
def test_async_window(
    requested: AsyncOpsWindow | None, ours: tuple[int, int], expected: AsyncOpsWindow | None
) -> None:
    assert negotiate_async_window(requested, ours) == expected


def test_async_window_in_full_negotiation() -> None:
    rq = make_rq(sub_items=(AsyncOpsWindow(0, 0),))
    ac = negotiate(rq, policy(async_ops_window=(16, 1)))
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.async_ops_window == AsyncOpsWindow(16, 1)
    ac = negotiate(rq, policy())
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.async_ops_window is None


# --- maximum length (PS3.8 D.1) -------------------------------------------------------------


def test_max_length_ours_sent_peers_read() -> None:
    ac = negotiate(make_rq(), policy(max_pdata_length=65536))
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.maximum_length == 65536
    assert peer_max_length(UserInformation((MaximumLength(0),))) == 0
    assert peer_max_length(UserInformation((MaximumLength(4096),))) == 4096
    assert peer_max_length(UserInformation()) == 0


# --- AE titles, application context, protocol version --------------------------------------


def test_called_ae_must_match_when_required() -> None:
    rq = make_rq(called_ae_title="OTHER")
    assert negotiate(rq, policy(require_called_ae_title=True)) == AAssociateRJ(1, 1, 7)
    assert isinstance(negotiate(rq, policy()), AAssociateAC)
    # leading/trailing spaces are not significant
    rq = make_rq(called_ae_title="  ARCHIVE ")
    assert isinstance(negotiate(rq, policy(require_called_ae_title=True)), AAssociateAC)


def test_calling_ae_allow_list() -> None:
    p = policy(allowed_calling_ae_titles={"MODALITY", "CT1"})
    assert isinstance(negotiate(make_rq(), p), AAssociateAC)
    assert negotiate(make_rq(calling_ae_title="INTRUDER"), p) == AAssociateRJ(1, 1, 3)
    assert check_ae_titles("X", " CT1", our_ae_title="Y", allowed_calling=["CT1 "]) is None


def test_application_context_name() -> None:
    rq = make_rq(application_context_name="1.2.840.10008.3.1.1.2")
    assert negotiate(rq, policy()) == AAssociateRJ(1, 1, 2)
    rq = make_rq(application_context_name="1.2.840.10008.3.1.1.1\x00")
    assert isinstance(negotiate(rq, policy()), AAssociateAC)


@pytest.mark.parametrize(("version", "ok"), [(1, True), (3, True), (0x8001, True), (0, False), (2, False)])
def test_protocol_version_bit_0(version: int, ok: bool) -> None:
    result = negotiate(make_rq(protocol_version=version), policy())
    if ok:
        assert isinstance(result, AAssociateAC)
    else:
        assert result == AAssociateRJ(1, 2, 2)


def test_check_order_protocol_version_first() -> None:
    rq = make_rq(protocol_version=0, application_context_name="9.9", called_ae_title="X")
    assert negotiate(rq, policy(require_called_ae_title=True)) == AAssociateRJ(1, 2, 2)
    rq = make_rq(application_context_name="9.9", called_ae_title="X")
    assert negotiate(rq, policy(require_called_ae_title=True)) == AAssociateRJ(1, 1, 2)


# --- user identity (PS3.7 D.3.3.7) and extended negotiation (D.3.3.5) ----------------------


def test_user_identity_callback() -> None:
    item = UserIdentityRQ(2, 1, b"alice", b"secret")
    calls: list[UserIdentityRQ] = []

    def check(rq: UserIdentityRQ) -> tuple[bool, bytes | None]:
        calls.append(rq)
        return (rq.primary_field == b"alice" and rq.secondary_field == b"secret", None)

    ac = negotiate(make_rq(sub_items=(item,)), policy(user_identity=check))
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.user_identity_ac == UserIdentityAC(b"")  # positive response asked
    assert calls == [item]
    bad = UserIdentityRQ(2, 0, b"alice", b"wrong")
    assert negotiate(make_rq(sub_items=(bad,)), policy(user_identity=check)) == AAssociateRJ(1, 1, 1)


def test_user_identity_response_only_when_requested() -> None:
    assert negotiate_user_identity(UserIdentityRQ(5, 0, b"jwt"), lambda rq: (True, b"tok")) == (True, None)
    assert negotiate_user_identity(UserIdentityRQ(5, 1, b"jwt"), lambda rq: (True, b"tok")) == (
        True,
        UserIdentityAC(b"tok"),
    )
    # no handler: not checked, no response
    assert negotiate_user_identity(UserIdentityRQ(1, 1, b"u"), None) == (True, None)


def test_extended_negotiation_callback() -> None:
    items = [SOPClassExtendedNegotiation(CT_STORAGE, b"\x01\x00"), SOPClassExtendedNegotiation(MR_STORAGE, b"\x01")]

    def handler(item: SOPClassExtendedNegotiation) -> bytes | None:
        return b"\x01" if item.sop_class_uid == CT_STORAGE else None

    assert negotiate_extended(items, handler) == (SOPClassExtendedNegotiation(CT_STORAGE, b"\x01"),)
    assert negotiate_extended(items, None) == ()
    rq = make_rq(PresentationContextRQ(1, CT_STORAGE, (IVLE,)), sub_items=tuple(items))
    ac = negotiate(rq, policy(extended_negotiation=handler))
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.extended_negotiations == (SOPClassExtendedNegotiation(CT_STORAGE, b"\x01"),)


def test_ac_echoes_ae_titles_and_answers_every_context() -> None:
    rq = make_rq(
        PresentationContextRQ(1, VERIFICATION, (IVLE,)),
        PresentationContextRQ(3, MR_STORAGE, (IVLE,)),
    )
    ac = negotiate(rq, policy())
    assert isinstance(ac, AAssociateAC)
    assert (ac.called_ae_title, ac.calling_ae_title) == ("ARCHIVE", "MODALITY")
    assert [pc.context_id for pc in ac.presentation_contexts] == [1, 3]
    assert ac.user_information.implementation_class_uid is not None
