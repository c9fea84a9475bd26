"""Hypothesis strategies for every Upper Layer PDU and item (reusable by other test modules).

Every strategy generates *encodable* values: AE titles of 1-16 printable ASCII characters without
trailing spaces (the decoder strips the space padding), UIDs of 1-64 UID characters, integers in
the range of their wire field. ``pdus()`` draws any of the seven PDUs.
"""

from __future__ import annotations

from hypothesis import strategies as st

from dicomnet.ul.pdu import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    AsyncOpsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    SubItem,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)

__all__ = [
    "a_abort",
    "a_associate_ac",
    "a_associate_rj",
    "a_associate_rq",
    "ae_titles",
    "pdata_tf",
    "pdus",
    "pdvs",
    "presentation_contexts_ac",
    "presentation_contexts_rq",
    "sub_items",
    "uids",
    "user_information",
]

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
context_ids = st.integers(0, 127).map(lambda n: 2 * n + 1)

uids = st.from_regex(r"[0-9][0-9.]{0,63}", fullmatch=True)
"""UID-shaped strings (digits and dots), 1-64 characters."""

# An AE title as the decoder returns it: no trailing space, otherwise any printable ASCII.
ae_titles = st.from_regex(r"[!-~]([ -~]{0,14}[!-~])?", fullmatch=True)
small_bytes = st.binary(max_size=64)

max_length = st.builds(MaximumLength, u32)
impl_class_uid = st.builds(ImplementationClassUID, uids)
impl_version = st.builds(ImplementationVersionName, st.from_regex(r"[ -~]{1,16}", fullmatch=True))
async_window = st.builds(AsyncOpsWindow, u16, u16)
role_selection = st.builds(RoleSelection, uids, st.integers(0, 1), st.integers(0, 1))
ext_neg = st.builds(SOPClassExtendedNegotiation, uids, small_bytes)
common_ext_neg = st.builds(
    SOPClassCommonExtendedNegotiation, uids, uids, st.lists(uids, max_size=3).map(tuple)
)
user_identity_rq = st.builds(
    UserIdentityRQ, st.integers(1, 5), st.integers(0, 1), small_bytes, small_bytes
)
user_identity_ac = st.builds(UserIdentityAC, small_bytes)
# Unknown sub-item types: anything in 50H-5FH not defined by PS3.7 Annex D.3.3, and a few others.
unknown_sub_item = st.builds(
    UnknownSubItem, st.sampled_from([0x5A, 0x5B, 0x5C, 0x5F, 0x60, 0x99]), small_bytes
)

sub_items: st.SearchStrategy[SubItem] = st.one_of(
    max_length,
    impl_class_uid,
    impl_version,
    async_window,
    role_selection,
    ext_neg,
    common_ext_neg,
    user_identity_rq,
    user_identity_ac,
    unknown_sub_item,
)
user_information = st.builds(UserInformation, st.lists(sub_items, max_size=8).map(tuple))

presentation_contexts_rq = st.builds(
    PresentationContextRQ,
    context_ids,
    uids,
    st.lists(uids, min_size=1, max_size=4).map(tuple),
    u8,
)
presentation_contexts_ac = st.builds(
    PresentationContextAC, context_ids, st.integers(0, 4), st.one_of(st.none(), uids)
)

a_associate_rq = st.builds(
    AAssociateRQ,
    ae_titles,
    ae_titles,
    st.lists(presentation_contexts_rq, max_size=5).map(tuple),
    user_information,
    uids,
    u16,
)
a_associate_ac = st.builds(
    AAssociateAC,
    ae_titles,
    ae_titles,
    st.lists(presentation_contexts_ac, max_size=5).map(tuple),
    user_information,
    uids,
    u16,
)
a_associate_rj = st.builds(AAssociateRJ, u8, u8, u8)
a_abort = st.builds(AAbort, u8, u8)
pdvs = st.builds(PDV, u8, u8, st.binary(max_size=300))
pdata_tf = st.builds(PDataTF, st.lists(pdvs, min_size=1, max_size=4).map(tuple))

pdus: st.SearchStrategy[PDU] = st.one_of(
    a_associate_rq,
    a_associate_ac,
    a_associate_rj,
    pdata_tf,
    st.just(AReleaseRQ()),
    st.just(AReleaseRP()),
    a_abort,
)
