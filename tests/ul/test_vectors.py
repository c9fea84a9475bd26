"""Real peers' PDUs (tests/data/pdus, see its README): decode, check fields, re-encode exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomnet.ul.buffer import ReceiveBuffer
from dicomnet.ul.codec import decode_pdu, encode_pdu
from dicomnet.ul.pdu import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    AsyncOpsWindow,
    PDataTF,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    ae_title_norm,
)

VECTORS = Path(__file__).parent.parent / "data" / "pdus"
FILES = sorted(VECTORS.glob("*/*.bin"))
SCENARIOS = sorted({f.parent.name for f in FILES})
KIND = {
    "associate-rq": AAssociateRQ,
    "associate-ac": AAssociateAC,
    "associate-rj": AAssociateRJ,
    "p-data": PDataTF,
    "release-rq": AReleaseRQ,
    "release-rp": AReleaseRP,
    "abort": AAbort,
}


def _load(scenario: str, kind: str, nth: int = 0) -> tuple[bytes, PDU]:
    files = sorted((VECTORS / scenario).glob(f"*-{kind}.bin"))
    data = files[nth].read_bytes()
    return data, decode_pdu(data)


def test_vectors_present() -> None:
    assert len(FILES) >= 40
    assert {
        "dcmtk_echo",
        "dcmtk_store",
        "dcmtk_store_pdu4096",
        "dcmtk_find",
        "dcmtk_reject",
        "dcmtk_abort",
        "pynetdicom_echo",
    } <= set(SCENARIOS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_vector_round_trips_byte_exactly(path: Path) -> None:
    data = path.read_bytes()
    pdu = decode_pdu(data)
    assert isinstance(pdu, KIND[path.stem.split("-", 3)[3]])
    assert encode_pdu(pdu) == data
    assert decode_pdu(encode_pdu(pdu)) == pdu


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("direction", ["rq", "ac"])
@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 16])
def test_stream_of_a_scenario_through_the_buffer(scenario: str, direction: str, chunk: int) -> None:
    pdus = [f.read_bytes() for f in sorted((VECTORS / scenario).glob(f"*-{direction}-*.bin"))]
    stream = b"".join(pdus)
    buf = ReceiveBuffer(16384)
    got = []
    for pos in range(0, len(stream), chunk):
        buf.feed(stream[pos : pos + chunk])
        while (view := buf.next_pdu()) is not None:
            got.append(bytes(view))
    assert got == pdus


def test_dcmtk_echo_fields() -> None:
    _, rq = _load("dcmtk_echo", "associate-rq")
    assert isinstance(rq, AAssociateRQ)
    assert rq.called_ae_title == "ANY-SCP" and rq.calling_ae_title == "ECHOSCU"
    assert rq.protocol_version & 1
    assert rq.application_context_name == "1.2.840.10008.3.1.1.1"
    assert [(c.context_id, c.abstract_syntax) for c in rq.presentation_contexts] == [
        (1, "1.2.840.10008.1.1")
    ]
    assert rq.presentation_contexts[0].reserved == 0xFF  # DCMTK's reserved byte, kept
    assert rq.user_information.maximum_length == 16384
    assert (rq.user_information.implementation_class_uid or "").startswith("1.2.276.0.7230010")
    _, ac = _load("dcmtk_echo", "associate-ac")
    assert isinstance(ac, AAssociateAC)
    assert ae_title_norm(ac.called_ae_title) == "ANY-SCP"
    assert [(c.context_id, c.result) for c in ac.presentation_contexts] == [(1, 0)]
    _, echo = _load("dcmtk_echo", "p-data")
    assert isinstance(echo, PDataTF)
    assert [(p.context_id, p.is_command, p.is_last) for p in echo.pdvs] == [(1, True, True)]


def test_dcmtk_store_fragments_respect_max_pdu_4096() -> None:
    files = sorted((VECTORS / "dcmtk_store_pdu4096").glob("*-rq-p-data.bin"))
    pdus = [decode_pdu(f.read_bytes()) for f in files]
    assert all(isinstance(p, PDataTF) for p in pdus)
    assert all(len(f.read_bytes()) - 6 <= 4096 for f in files)
    data_pdvs = [v for p in pdus if isinstance(p, PDataTF) for v in p.pdvs if not v.is_command]
    assert len(data_pdvs) >= 3
    assert [v.is_last for v in data_pdvs][-1] and not any(v.is_last for v in data_pdvs[:-1])
    _, rq = _load("dcmtk_store_pdu4096", "associate-rq")
    _, ac = _load("dcmtk_store_pdu4096", "associate-ac")
    assert isinstance(rq, AAssociateRQ) and isinstance(ac, AAssociateAC)
    assert rq.user_information.maximum_length == 4096
    assert ac.user_information.maximum_length == 4096
    assert len(rq.presentation_contexts) > 100
    assert [c.context_id for c in rq.presentation_contexts] == [
        c.context_id for c in ac.presentation_contexts
    ]


def test_dcmtk_find_and_reject_and_abort() -> None:
    _, rq = _load("dcmtk_find", "associate-rq")
    assert isinstance(rq, AAssociateRQ) and rq.called_ae_title == "QRSCP"
    assert rq.presentation_contexts[0].abstract_syntax == "1.2.840.10008.5.1.4.1.2.2.1"
    _, rj = _load("dcmtk_reject", "associate-rj")
    assert rj == AAssociateRJ(1, 1, 7)  # rejected-permanent, service-user, called AE unknown
    _, abort = _load("dcmtk_abort", "abort")
    assert abort == AAbort(0, 0)


def test_pynetdicom_negotiation_sub_items() -> None:
    _, rq = _load("pynetdicom_echo", "associate-rq")
    assert isinstance(rq, AAssociateRQ)
    ui = rq.user_information
    assert ui.async_ops_window == AsyncOpsWindow(5, 3)
    assert RoleSelection("1.2.840.10008.5.1.4.1.1.2", 1, 1) in ui.role_selections
    assert ui.user_identity_rq == UserIdentityRQ(4, 1, b"<saml:Assertion/>", b"")
    assert ui.extended_negotiations == (
        SOPClassExtendedNegotiation("1.2.840.10008.5.1.4.1.2.1.1", b"\x01\x01\x00"),
    )
    assert ui.common_extended_negotiations == (
        SOPClassCommonExtendedNegotiation(
            "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.4.2", ("1.2.840.10008.5.1.4.1.1.2.1",)
        ),
    )
    _, ac = _load("pynetdicom_echo", "associate-ac")
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.user_identity_ac == UserIdentityAC(b"welcome")
    results = {c.context_id: c.result for c in ac.presentation_contexts}
    assert results[3] == 3  # the unknown abstract syntax: abstract-syntax-not-supported
    assert results[1] == 0
