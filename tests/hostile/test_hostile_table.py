"""Every row of the hostile-input table (../shared/spec-notes.md), against real server processes.

Theory of operation
-------------------
Each test opens a raw socket to a running ``dicomnet qrscp`` / ``storescp`` process, sends one
kind of hostile input built with our codec (PS3.8 section 9.3 PDUs, PS3.7 Annex E command
sets, then patched), reads back what the server puts on the wire and asserts the exact
reaction the table (and PS3.8 Table 9-10 / 9-21 / 9-26) prescribes: an A-ABORT with its
source/reason, an A-ASSOCIATE-RJ with result/source/reason, a DIMSE failure status, or a
close. Afterwards DCMTK echoscu must still get service, and (fixture ``no_leak``) the server's
open file descriptors must fall back to the baseline. The server is shared by the tests of a
module (one process per tool), so a crash or a leak in any row also fails the rows after it.
"""

from __future__ import annotations

import contextlib
import struct
import time

import pytest

from dicomnet.ul.codec import encode_pdu
from dicomnet.ul.pdu import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AReleaseRP,
    AReleaseRQ,
    PresentationContextAC,
    PresentationContextRQ,
)
from tests.hostile.conftest import ARTIM, IDLE
from tests.hostile.harness import (
    C_FIND_RSP,
    C_STORE_RSP,
    CTX_ECHO,
    CTX_FIND,
    CTX_STORE,
    DEFAULT_CONTEXTS,
    HAS_DATASET,
    IMPLICIT_LE,
    NO_DATASET,
    SECONDARY_CAPTURE,
    VERIFICATION,
    Peer,
    ServerProcess,
    assert_still_serving,
    associate_rq,
    command,
    echo_rq,
    encode_implicit,
    is_failure,
    pdata,
    pixel_element,
    raw_pdu,
    sc_dataset,
    store_rq,
    uid,
)
from tests.hostile.harness import (
    T as TAGS,
)

pytestmark = pytest.mark.interop

# PS3.8 Table 9-26 (A-ABORT source 2 = service provider) reasons
NOT_SPECIFIED, UNRECOGNIZED_PDU, UNEXPECTED_PDU = 0, 1, 2
UNRECOGNIZED_PARAMETER, UNEXPECTED_PARAMETER, INVALID_PARAMETER = 4, 5, 6
BOGUS_ABSTRACT = "1.2.826.0.1.3680043.10.999.424242"  # no server supports it


def associated(server: ServerProcess, **kw: object) -> Peer:
    peer = Peer(server.port)
    peer.associate(associate_rq(**kw) if kw else None)  # type: ignore[arg-type]
    return peer


def echo_works(peer: Peer) -> None:
    """The association itself is still usable (not only the server)."""
    assert peer.echo(77) == 0x0000


# --- unknown PDU types ---------------------------------------------------------------------------


def test_http_request_before_association(no_leak: ServerProcess) -> None:
    """Sta2 + unrecognized PDU (type 'G' = 0x47): AA-1, an A-ABORT (2/1, unrecognized PDU)
    and a close at once; the header's 'length' (" / H" = 540 MB) is never allocated."""
    rss = no_leak.rss_kb()
    with Peer(no_leak.port) as peer:
        peer.send(b"GET / HTTP/1.1\r\nHost: pacs\r\nUser-Agent: curl\r\n\r\n")
        t0 = time.monotonic()
        pdus, closed = peer.reaction(ARTIM + 3)
        assert closed and time.monotonic() - t0 < 1.5
        assert pdus == [AAbort(2, UNRECOGNIZED_PDU)], pdus
    assert no_leak.rss_kb() - rss < 4096
    assert_still_serving(no_leak)


@pytest.mark.parametrize("payload", [b"GET / HTTP/1.1\r\n\r\n", raw_pdu(0x09, b"\0\0\0\0")])
def test_unknown_pdu_type_while_associated(no_leak: ServerProcess, payload: bytes) -> None:
    with associated(no_leak) as peer:
        peer.send(payload)
        peer.expect_abort(2, UNRECOGNIZED_PDU)
    assert_still_serving(no_leak)


# --- A-ASSOCIATE-RQ/AC/RJ while associated: A-ABORT 2/2 ---------------------------------------------


@pytest.mark.parametrize("kind", ["rq", "ac", "rj"])
def test_associate_pdus_while_associated(no_leak: ServerProcess, kind: str) -> None:
    choices: dict[str, PDU] = {
        "rq": associate_rq(),
        "ac": AAssociateAC(
            "ANY-SCP", "HOSTILE", (PresentationContextAC(1, 0, IMPLICIT_LE),)
        ),
        "rj": AAssociateRJ(1, 1, 1),
    }
    pdu = choices[kind]
    with associated(no_leak) as peer:
        peer.send(encode_pdu(pdu))
        peer.expect_abort(2, UNEXPECTED_PDU)
    assert_still_serving(no_leak)


def test_ac_before_association(no_leak: ServerProcess) -> None:
    """Sta2 + A-ASSOCIATE-AC (Evt3): AA-1, an A-ABORT, then the connection goes."""
    ac = AAssociateAC("ANY-SCP", "HOSTILE", (PresentationContextAC(1, 0, IMPLICIT_LE),))
    with Peer(no_leak.port) as peer:
        peer.send(encode_pdu(ac))
        pdus, closed = peer.reaction(ARTIM + 3)
        assert closed
        assert pdus == [AAbort(2, UNEXPECTED_PDU)], pdus
    assert_still_serving(no_leak)


# --- fixed-size PDUs of the wrong length: A-ABORT 2/6 ------------------------------------------------


@pytest.mark.parametrize("pdu_type", [0x03, 0x05, 0x06, 0x07])
@pytest.mark.parametrize("length", [0, 5, 0xFFFFFFFF])
def test_fixed_length_pdus_with_wrong_length(
    no_leak: ServerProcess, pdu_type: int, length: int
) -> None:
    with associated(no_leak) as peer:
        peer.send(raw_pdu(pdu_type, b"\0" * min(length, 5), length=length))
        peer.expect_abort(2, INVALID_PARAMETER)
    assert_still_serving(no_leak)


# --- P-DATA framing: A-ABORT 2/6 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",  # P-DATA-TF with no PDV
        struct.pack(">I", 0),  # PDV length 0
        struct.pack(">IB", 1, CTX_ECHO),  # PDV length 1 (< 2)
        struct.pack(">IBB", 100, CTX_ECHO, 3) + b"\0" * 10,  # PDV past the end of the PDU
        struct.pack(">IBB", 0xFFFFFFFF, CTX_ECHO, 3) + b"\0" * 10,  # PDV length overflow
        struct.pack(">IBB", 4, CTX_ECHO, 3) + b"\0\0" + b"\0\0\0",  # trailing partial item
    ],
    ids=["no-pdv", "pdv-len-0", "pdv-len-1", "pdv-past-end", "pdv-len-4g", "trailing-bytes"],
)
def test_malformed_pdv_items(no_leak: ServerProcess, body: bytes) -> None:
    with associated(no_leak) as peer:
        peer.send(raw_pdu(0x04, body))
        peer.expect_abort(2, INVALID_PARAMETER)
    assert_still_serving(no_leak)


def test_pdata_longer_than_our_maximum_length(no_leak: ServerProcess) -> None:
    """The AC announced the server's Maximum Length; one byte more is refused from the header,
    before the body arrives (we send only 16 bytes of it)."""
    with Peer(no_leak.port) as peer:
        ac = peer.associate()
        ours = ac.user_information.maximum_length
        assert ours, "the server must announce a Maximum Length (PS3.8 D.1)"
        peer.send(raw_pdu(0x04, b"\0" * 16, length=ours + 1))
        peer.expect_abort(2, INVALID_PARAMETER, timeout=3)
    assert_still_serving(no_leak)


# --- presentation contexts and message structure: A-ABORT 2/5 ----------------------------------------


def test_pdv_on_unknown_context(no_leak: ServerProcess) -> None:
    with associated(no_leak) as peer:
        peer.send(pdata((99, 0x03, echo_rq())))
        peer.expect_abort(2, UNEXPECTED_PARAMETER)
    assert_still_serving(no_leak)


def test_pdv_on_rejected_context(no_leak: ServerProcess) -> None:
    contexts = (*DEFAULT_CONTEXTS, PresentationContextRQ(7, BOGUS_ABSTRACT, (IMPLICIT_LE,)))
    with Peer(no_leak.port) as peer:
        ac = peer.associate(associate_rq(contexts))
        results = {pc.context_id: pc.result for pc in ac.presentation_contexts}
        assert results[7] == 3  # abstract-syntax-not-supported (PS3.8 Table 9-18)
        peer.send(pdata((7, 0x03, echo_rq())))
        peer.expect_abort(2, UNEXPECTED_PARAMETER)
    assert_still_serving(no_leak)


def test_context_changes_mid_message(no_leak: ServerProcess) -> None:
    cmd = echo_rq()
    with associated(no_leak) as peer:
        peer.send(pdata((CTX_ECHO, 0x01, cmd[:20])))  # command, not last
        peer.send(pdata((CTX_STORE, 0x03, cmd[20:])))  # continues on another context
        peer.expect_abort(2, UNEXPECTED_PARAMETER)
    assert_still_serving(no_leak)


def test_data_before_last_command_fragment(no_leak: ServerProcess) -> None:
    cmd = store_rq(uid(1, 2, 3))
    with associated(no_leak) as peer:
        peer.send(pdata((CTX_STORE, 0x01, cmd[:20])))  # command, not last
        peer.send(pdata((CTX_STORE, 0x02, b"\x08\x00\x16\x00")))  # a data set fragment
        peer.expect_abort(2, UNEXPECTED_PARAMETER)
    assert_still_serving(no_leak)


# --- association negotiation: A-ASSOCIATE-RJ ---------------------------------------------------------


@pytest.mark.parametrize("version", [0, 2, 0xFFFE])
def test_protocol_version_bit0_clear(no_leak: ServerProcess, version: int) -> None:
    with Peer(no_leak.port) as peer:
        peer.send(encode_pdu(associate_rq(protocol_version=version)))
        peer.expect_reject(1, 2, 2)  # rejected-permanent, ACSE provider, version not supported
    assert_still_serving(no_leak)


def test_protocol_version_only_bit0_tested(no_leak: ServerProcess) -> None:
    """PS3.8 9.3.2: only bit 0 is tested on receipt; 0x0003 is accepted."""
    with Peer(no_leak.port) as peer:
        peer.associate(associate_rq(protocol_version=3))
        echo_works(peer)
        peer.release()


def test_wrong_application_context(no_leak: ServerProcess) -> None:
    with Peer(no_leak.port) as peer:
        peer.send(encode_pdu(associate_rq(application_context_name="1.2.840.10008.3.1.1.2")))
        peer.expect_reject(1, 1, 2)  # rejected-permanent, service user, app context
    assert_still_serving(no_leak)


def _first_item_offset(rq: bytes | bytearray, wanted: int) -> int:
    """Offset of the first item of type ``wanted`` in an encoded A-ASSOCIATE-RQ."""
    off = 6 + 68
    while off < len(rq):
        item_type, length = rq[off], struct.unpack_from(">H", rq, off + 2)[0]
        if item_type == wanted:
            return off
        off += 4 + length
    raise AssertionError(f"no item {wanted:#x}")


@pytest.mark.parametrize(
    "what", ["pctx-past-end", "app-ctx-past-end", "max-length-size-3", "pdu-shorter-than-fixed"]
)
def test_malformed_item_lengths(no_leak: ServerProcess, what: str) -> None:
    rq = bytearray(encode_pdu(associate_rq()))
    if what == "pctx-past-end":
        struct.pack_into(">H", rq, _first_item_offset(rq, 0x20) + 2, 0xFFFF)
    elif what == "app-ctx-past-end":
        struct.pack_into(">H", rq, _first_item_offset(rq, 0x10) + 2, 0xFFF0)
    elif what == "max-length-size-3":
        ui = _first_item_offset(rq, 0x50)
        assert rq[ui + 4] == 0x51
        # 51H must be exactly 4 bytes; announce 3 and shift the rest (PDU/UI lengths fixed up)
        del rq[ui + 11]
        struct.pack_into(">H", rq, ui + 6, 3)
        struct.pack_into(">H", rq, ui + 2, struct.unpack_from(">H", rq, ui + 2)[0] - 1)
        struct.pack_into(">I", rq, 2, len(rq) - 6)
    else:
        rq = bytearray(raw_pdu(0x01, bytes(rq[6:40])))
    with Peer(no_leak.port) as peer:
        peer.send(rq)
        peer.expect_abort(2, INVALID_PARAMETER)
    assert_still_serving(no_leak)


# --- command sets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmd",
    [
        b"\x01\x02\x03\x04\x05\x06\x07\x08",  # too short for (0000,0000)
        struct.pack("<HHII", 0, 0, 4, 200) + b"\0" * 8,  # group length lies
        struct.pack("<HHII", 0, 0, 4, 10) + struct.pack("<HHI", 8, 0x10, 2) + b"AB",  # group 0008
        # (0000,0100) CommandField announcing 256 bytes where 2 follow
        struct.pack("<HHII", 0, 0, 4, 10) + struct.pack("<HHI", 0, 0x0100, 0x100) + b"\x30\x00",
    ],
    ids=["too-short", "group-length-lies", "not-group-0000", "element-past-end"],
)
def test_unparsable_command_set(no_leak: ServerProcess, cmd: bytes) -> None:
    with associated(no_leak) as peer:
        peer.send(pdata((CTX_ECHO, 0x03, cmd)))
        pdus, closed = peer.reaction()
        assert closed
        assert len(pdus) == 1 and isinstance(pdus[0], AAbort) and pdus[0].source == 2, pdus
        assert pdus[0].reason == INVALID_PARAMETER, pdus
    assert_still_serving(no_leak)


def test_unknown_command_field(no_leak: ServerProcess) -> None:
    cmd = command(
        AffectedSOPClassUID=VERIFICATION,
        CommandField=0x0777,
        MessageID=1,
        CommandDataSetType=NO_DATASET,
    )
    with associated(no_leak) as peer:
        peer.send(pdata((CTX_ECHO, 0x03, cmd)))
        peer.expect_abort(2, UNRECOGNIZED_PARAMETER)
    assert_still_serving(no_leak)


# PS3.7 Annex C: general failure statuses of a request the provider cannot act on
MISSING_ATTRIBUTE, SOP_CLASS_NOT_SUPPORTED, MISTYPED_ARGUMENT = 0x0120, 0x0122, 0x0212


@pytest.mark.parametrize(
    ("drop", "change", "status", "offending"),
    [
        ("AffectedSOPInstanceUID", {}, MISSING_ATTRIBUTE, TAGS["AffectedSOPInstanceUID"]),
        ("Priority", {}, MISSING_ATTRIBUTE, TAGS["Priority"]),
        (None, {"Priority": 7}, MISTYPED_ARGUMENT, TAGS["Priority"]),
    ],
    ids=["no-affected-sop-instance", "no-priority", "priority-7"],
)
def test_store_with_missing_or_invalid_field(
    no_leak: ServerProcess,
    drop: str | None,
    change: dict[str, object],
    status: int,
    offending: int,
) -> None:
    """A known command with a missing/invalid required field gets a failure response naming
    the offending element (0000,0901); the association goes on."""
    study, series = uid(5, 1), uid(5, 1, 1)
    sop = uid(5, 1, 1, 1)
    data = sc_dataset(sop, study, series) + pixel_element(2) + b"\0\0"
    fields: dict[str, object] = {
        "AffectedSOPClassUID": SECONDARY_CAPTURE,
        "CommandField": 0x0001,
        "MessageID": 9,
        "Priority": 0,
        "CommandDataSetType": HAS_DATASET,
        "AffectedSOPInstanceUID": sop,
        **change,
    }
    if drop:
        del fields[drop]
    with associated(no_leak) as peer:
        peer.send_message(CTX_STORE, command(**fields), data)
        rsp = peer.read_message()
        assert rsp.get("CommandField") == C_STORE_RSP
        assert rsp.get("MessageIDBeingRespondedTo") == 9
        assert rsp.status == status, hex(rsp.status)
        assert rsp.get("OffendingElement") == (offending,)
        echo_works(peer)
        peer.release()
    assert not list(no_leak.workdir.rglob(f"{sop}*"))
    assert_still_serving(no_leak)


def test_find_missing_affected_sop_class(no_leak: ServerProcess) -> None:
    if no_leak.tool != "qrscp":
        pytest.skip("storescp has no C-FIND")
    cmd = command(CommandField=0x0020, MessageID=4, Priority=0, CommandDataSetType=HAS_DATASET)
    ident = encode_implicit(_find_identifier())
    with associated(no_leak) as peer:
        peer.send_message(CTX_FIND, cmd, ident)
        rsp = peer.read_message()
        assert rsp.get("CommandField") == C_FIND_RSP
        assert rsp.status == MISSING_ATTRIBUTE, hex(rsp.status)
        assert rsp.get("OffendingElement") == (TAGS["AffectedSOPClassUID"],)
        echo_works(peer)
        peer.release()
    assert_still_serving(no_leak)


def _find_identifier() -> object:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    return ds


def test_deeply_nested_sequences(no_leak: ServerProcess) -> None:
    """20,000 nested sequences (undefined lengths) before the identifying attributes: the
    server answers and does not crash (no stack overflow). Both servers check a received data
    set's structure before acknowledging it (dicomnet.dimse.checker, nesting bounded): a
    failure status (C000, cannot understand) and nothing kept."""
    depth = 20000
    sq_open = struct.pack("<HHI", 0x0008, 0x1115, 0xFFFFFFFF)  # ReferencedSeriesSequence
    item_open = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    sq_close = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    nested = (sq_open + item_open) * depth + (item_close + sq_close) * depth
    study, series, sop = uid(6, 1), uid(6, 1, 1), uid(6, 1, 1, 1)
    head = sc_dataset(sop, study, series)
    # (0008,1115) sorts after (0008,0060) Modality and before (0010,0010) PatientName
    cut = head.index(struct.pack("<HH", 0x0010, 0x0010))
    data = head[:cut] + nested + head[cut:] + pixel_element(2) + b"\0\0"
    with associated(no_leak) as peer:
        status = peer.store(sop, data)
        echo_works(peer)
        peer.release()
    kept = list(no_leak.workdir.rglob(f"{sop}*"))
    assert is_failure(status), f"deep nesting stored with status {status:#06x}"
    assert not kept
    assert_still_serving(no_leak)


# --- aborts in every state, release edge cases: handled, nothing leaked --------------------------------


def test_abort_before_association(no_leak: ServerProcess) -> None:
    with Peer(no_leak.port) as peer:
        peer.send(encode_pdu(AAbort(0, 0)))
        pdus, closed = peer.reaction(ARTIM + 3)
        assert closed and pdus == []  # Sta2 + A-ABORT (Evt16): AA-2, close, nothing sent
    assert_still_serving(no_leak)


def test_abort_while_associated(no_leak: ServerProcess) -> None:
    with associated(no_leak) as peer:
        peer.send(encode_pdu(AAbort(0, 0)))
        pdus, closed = peer.reaction(3)
        assert closed and pdus == []  # Sta6 + Evt16: AA-3, no answer
    assert_still_serving(no_leak)


def test_abort_mid_message(no_leak: ServerProcess) -> None:
    study, series, sop = uid(7, 1), uid(7, 1, 1), uid(7, 1, 1, 1)
    data = sc_dataset(sop, study, series) + pixel_element(100000)
    with associated(no_leak) as peer:
        peer.send(pdata((CTX_STORE, 0x03, store_rq(sop))))
        peer.send(pdata((CTX_STORE, 0x00, data + b"\0" * 4000)))
        peer.send(encode_pdu(AAbort(0, 0)))
        pdus, closed = peer.reaction(3)
        assert closed and pdus == []
    assert not list(no_leak.workdir.rglob(f"{sop}*"))
    assert_still_serving(no_leak)


def test_reset_mid_pdu(no_leak: ServerProcess) -> None:
    with associated(no_leak) as peer:
        msg = pdata((CTX_ECHO, 0x03, echo_rq()))
        peer.send(msg[: len(msg) // 2])
        peer.reset()
    assert_still_serving(no_leak)


def test_pdus_after_release(no_leak: ServerProcess) -> None:
    """After sending A-RELEASE-RP the acceptor is in Sta13: a second A-RELEASE-RQ and a
    P-DATA-TF are ignored (AA-6), nothing is answered, and the connection is closed (by ARTIM
    at the latest)."""
    with associated(no_leak) as peer:
        peer.send(encode_pdu(AReleaseRQ()))
        assert peer.read_pdu() == AReleaseRP()
        with contextlib.suppress(OSError):  # it may already be closed
            peer.send(encode_pdu(AReleaseRQ()) + pdata((CTX_ECHO, 0x03, echo_rq())))
        pdus, closed = peer.reaction(ARTIM + 3)
        assert closed and pdus == [], pdus
    assert_still_serving(no_leak)


def test_silent_after_association_hits_idle_timeout(no_leak: ServerProcess) -> None:
    """Associated, then nothing: the network (idle) timeout aborts it (source 2)."""
    with associated(no_leak) as peer:
        t0 = time.monotonic()
        pdus, closed = peer.reaction(IDLE + 5)
        took = time.monotonic() - t0
        assert closed, "an idle association was never closed"
        assert IDLE - 0.5 <= took <= IDLE + 3, took
        assert pdus == [AAbort(2, NOT_SPECIFIED)], pdus
    assert_still_serving(no_leak)


def test_echo_context_cannot_carry_a_store(no_leak: ServerProcess) -> None:
    """A C-STORE-RQ on the Verification context: its SOP class does not match the context's
    abstract syntax; the server refuses it with 0x0122 (SOP class not supported), not store it."""
    study, series, sop = uid(8, 1), uid(8, 1, 1), uid(8, 1, 1, 1)
    data = sc_dataset(sop, study, series) + pixel_element(2) + b"\0\0"
    with associated(no_leak) as peer:
        peer.send_message(CTX_ECHO, store_rq(sop), data)
        rsp = peer.read_message(5)
        assert rsp.get("CommandField") == C_STORE_RSP
        assert rsp.status == SOP_CLASS_NOT_SUPPORTED, hex(rsp.status)
        echo_works(peer)
        peer.release()
    assert not list(no_leak.workdir.rglob(f"{sop}*"))
    assert_still_serving(no_leak)


def test_find_on_storescp_context_is_rejected(no_leak: ServerProcess) -> None:
    """storescp does not offer C-FIND: the context is rejected at negotiation."""
    with Peer(no_leak.port) as peer:
        ac = peer.associate()
        result = {pc.context_id: pc.result for pc in ac.presentation_contexts}
        if no_leak.tool == "storescp":
            assert result[CTX_FIND] == 3
        else:
            assert result[CTX_FIND] == 0
        peer.release()
