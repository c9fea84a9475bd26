"""Presentation contexts built the way pynetdicom's documentation builds them, compared with
pynetdicom itself: ``PresentationContext()`` with no arguments, the abstract syntax and a list
assigned to ``transfer_syntax`` afterwards, then proposed; ``str(context)`` in pynetdicom's
layout; ``ae.supported_contexts = [...]`` adding (not replacing), listed by UID."""

from __future__ import annotations

from typing import Any

import pytest

from dicomnet import presentation as d_presentation
from dicomnet.ae import AE
from dicomnet.events import EVT_C_ECHO

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
IMPLICIT = "1.2.840.10008.1.2"


def _hand_built(presentation: Any, syntaxes: list[str]) -> Any:
    cx = presentation.PresentationContext()
    cx.abstract_syntax = VERIFICATION
    cx.transfer_syntax = syntaxes
    return cx


def test_hand_built_context_proposes_what_was_assigned() -> None:
    p_presentation = pytest.importorskip("pynetdicom.presentation")
    pynetdicom = pytest.importorskip("pynetdicom")
    p_ae, d_ae = pynetdicom.AE(), AE()
    p_ae.requested_contexts = [_hand_built(p_presentation, [BIG_ENDIAN])]
    d_ae.requested_contexts = [_hand_built(d_presentation, [BIG_ENDIAN])]
    assert p_ae.requested_contexts[0].transfer_syntax == [BIG_ENDIAN]
    assert d_ae.requested_contexts[0].transfer_syntaxes == [BIG_ENDIAN]
    # an empty context starts with no syntaxes in both; add_transfer_syntax appends
    for presentation in (p_presentation, d_presentation):
        cx = presentation.PresentationContext()
        cx.add_transfer_syntax(IMPLICIT)
        assert str(cx) == "Transfer Syntax(es):\n    =Implicit VR Little Endian"

    # and on the wire: our server supporting both little-endian syntaxes and big endian
    server_ae = AE("SCP")
    server_ae.add_supported_context(VERIFICATION, [IMPLICIT, BIG_ENDIAN])
    server = server_ae.start_server(("127.0.0.1", 0), block=False,
                                    evt_handlers=[(EVT_C_ECHO, lambda e: 0)])  # fmt: skip
    try:
        assoc = d_ae.associate("127.0.0.1", server.server_address[1])
        assert assoc.is_established
        assert assoc.accepted_contexts[0].transfer_syntax == BIG_ENDIAN
        assert assoc.send_c_echo().Status == 0
        assoc.release()
    finally:
        server.shutdown()


def test_str_of_a_context_is_pynetdicoms() -> None:
    p_presentation = pytest.importorskip("pynetdicom.presentation")
    for presentation in (p_presentation, d_presentation):
        cx = presentation.build_context(CT, [IMPLICIT, BIG_ENDIAN])
        cx.context_id = 3
        assert str(cx) == (
            "ID: 3\nAbstract Syntax: CT Image Storage\nTransfer Syntax(es):\n"
            "    =Implicit VR Little Endian\n    =Explicit VR Big Endian"
        ), presentation.__name__


def test_supported_contexts_setter_adds_and_lists_by_uid() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    results = []
    for ae_class, presentation in ((pynetdicom.AE, pynetdicom.presentation),
                                   (AE, d_presentation)):  # fmt: skip
        ae = ae_class()
        ae.add_supported_context(VERIFICATION)
        ae.supported_contexts = [presentation.build_context(MR), presentation.build_context(CT)]
        listed = [cx.abstract_syntax for cx in ae.supported_contexts]
        ae.supported_contexts = []
        results.append((listed, ae.supported_contexts))
    assert results[0] == ([VERIFICATION, CT, MR], [])
    assert results[1] == results[0]


def test_status_words_are_pynetdicoms() -> None:
    p_presentation = pytest.importorskip("pynetdicom.presentation")
    for result, words in ((None, "Pending"), (0, "Accepted"), (1, "User Rejected"),
                          (3, "Abstract Syntax Not Supported"), (9, "Unknown")):  # fmt: skip
        for presentation in (p_presentation, d_presentation):
            cx = presentation.build_context(CT)
            cx.result = result
            assert cx.status == words, presentation.__name__


def test_repr_of_contexts_is_pynetdicoms() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    shown = []
    for ae_class in (pynetdicom.AE, AE):
        ae = ae_class()
        ae.add_requested_context(VERIFICATION)
        ae.add_requested_context(CT)
        shown.append(repr(ae.requested_contexts))
    assert shown[0] == shown[1] == "[Verification SOP Class, CT Image Storage]"
