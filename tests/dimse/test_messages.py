"""DIMSE messages (PS3.7 sections 9.3, 10.3): byte-for-byte against DCMTK and pynetdicom,
required-element checks, the protocol/failure-status split, primitive round trips."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.dimse import messages as M
from dicomnet.dimse import primitives as P
from dicomnet.dimse.commands import ELEMENTS, decode_command, encode_command
from dicomnet.dimse.messages import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_ECHO_RSP,
    C_FIND_RSP,
    C_STORE_RQ,
    C_STORE_RSP,
    MESSAGE_TYPES,
    DimseCommandError,
    DimseProtocolError,
    InvalidCommandElementError,
    MissingCommandElementError,
    decode_message,
    message_from_primitive,
)
from dicomnet.errors import DimseError
from tests.dimse.strategies import PRIMITIVES, any_primitive

DATA = Path(__file__).parent.parent / "data" / "dimse"
DCMTK = sorted(DATA.glob("dcmtk_*.bin"))
PYNETDICOM = json.loads((DATA / "pynetdicom.json").read_text())
CT = "1.2.840.10008.5.1.4.1.1.2"

COMMAND_FIELDS = {
    "C_STORE_RQ": 0x0001,
    "C_STORE_RSP": 0x8001,
    "C_GET_RQ": 0x0010,
    "C_GET_RSP": 0x8010,
    "C_FIND_RQ": 0x0020,
    "C_FIND_RSP": 0x8020,
    "C_MOVE_RQ": 0x0021,
    "C_MOVE_RSP": 0x8021,
    "C_ECHO_RQ": 0x0030,
    "C_ECHO_RSP": 0x8030,
    "N_EVENT_REPORT_RQ": 0x0100,
    "N_EVENT_REPORT_RSP": 0x8100,
    "N_GET_RQ": 0x0110,
    "N_GET_RSP": 0x8110,
    "N_SET_RQ": 0x0120,
    "N_SET_RSP": 0x8120,
    "N_ACTION_RQ": 0x0130,
    "N_ACTION_RSP": 0x8130,
    "N_CREATE_RQ": 0x0140,
    "N_CREATE_RSP": 0x8140,
    "N_DELETE_RQ": 0x0150,
    "N_DELETE_RSP": 0x8150,
    "C_CANCEL_RQ": 0x0FFF,
}


def store_rq(**extra: object) -> dict[int, object]:
    elements: dict[int, object] = {
        0x0002: CT,
        0x0100: 0x0001,
        0x0110: 5,
        0x0700: 0,
        0x0800: 0x0001,
        0x1000: "1.2.3.4",
    }
    for keyword, value in extra.items():
        tag = {e.keyword: t for t, e in ELEMENTS.items()}[keyword]
        if value is None:
            elements.pop(tag, None)
        else:
            elements[tag] = value
    return elements


def test_command_fields_match_ps3_7() -> None:
    assert {cls.__name__: f for f, cls in MESSAGE_TYPES.items()} == COMMAND_FIELDS
    for name, field in COMMAND_FIELDS.items():
        cls = getattr(M, name)
        assert field == cls.COMMAND_FIELD
        assert (not field & 0x8000) == cls.IS_REQUEST


@pytest.mark.parametrize("path", DCMTK, ids=lambda p: p.name)
def test_dcmtk_command_sets_decode_and_reencode_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    msg = decode_message(data)
    assert type(msg).__name__ == path.stem.split("_", 2)[2]
    if msg.has_data_set:
        msg.data_set = b"payload"
    assert msg.encode_command() == data
    # and through the primitive: the same parameters give the same bytes
    again = message_from_primitive(msg.to_primitive())
    assert again.encode_command() == data


@pytest.mark.parametrize("name", sorted(PYNETDICOM))
def test_same_primitive_as_pynetdicom_gives_same_bytes(name: str) -> None:
    entry = PYNETDICOM[name]
    expected = (DATA / f"pynetdicom_{name}.bin").read_bytes()
    prim = getattr(P, entry["primitive"])(**entry["params"])
    cls = getattr(M, name)
    if entry["dataset"]:
        setattr(prim, cls.DATASET, b"opaque")
    msg = message_from_primitive(prim)
    assert type(msg) is cls
    assert msg.encode_command() == expected
    decoded = decode_message(expected, b"opaque" if entry["dataset"] else None)
    assert type(decoded) is cls
    assert decoded.to_primitive() == prim


def test_dcmtk_values_visible_through_keywords() -> None:
    msg = decode_message((DATA / "dcmtk_12_C_MOVE_RQ.bin").read_bytes())
    cs = msg.command_set
    assert isinstance(msg, M.C_MOVE_RQ)
    assert (cs.MessageID, cs.MoveDestination, cs.Priority) == (1, "MOVESCU", 0)
    assert cs.AffectedSOPClassUID == "1.2.840.10008.5.1.4.1.2.2.2"
    assert msg.has_data_set
    rsp = decode_message((DATA / "dcmtk_11_C_GET_RSP.bin").read_bytes())
    assert rsp.command_set.NumberOfRemainingSuboperations is None
    assert rsp.command_set.NumberOfCompletedSuboperations == 1
    assert not rsp.has_data_set


def test_command_set_keyword_access() -> None:
    msg = C_ECHO_RQ()
    msg.command_set.MessageID = 9
    msg.command_set.AffectedSOPClassUID = "1.2.840.10008.1.1"
    assert msg.command_set.elements[0x0110] == 9
    assert "MessageID" in msg.command_set and "Status" not in msg.command_set
    assert msg.command_set.Status is None
    msg.command_set.MessageID = None
    assert 0x0110 not in msg.command_set.elements
    with pytest.raises(AttributeError):
        _ = msg.command_set.PatientName
    with pytest.raises(AttributeError):
        msg.command_set.PatientName = "x"
    assert list(msg.command_set) == ["AffectedSOPClassUID", "CommandField"]


def test_encode_sets_command_data_set_type() -> None:
    msg = C_STORE_RQ(store_rq(CommandDataSetType=None))
    assert decode_command(msg.encode_command())[0x0800] == 0x0101  # no dataset attached
    msg.data_set = b"x"
    assert decode_command(msg.encode_command())[0x0800] == 0x0001
    msg.command_set.CommandDataSetType = 0x0102  # any non-0101 value means "present": kept
    assert decode_command(msg.encode_command())[0x0800] == 0x0102
    msg.data_set = None
    assert decode_command(msg.encode_command())[0x0800] == 0x0101


@pytest.mark.parametrize(
    ("value", "present"),
    [(0x0101, False), (0x0000, True), (0x0001, True), (0x0102, True), (0xFFFF, True)],
)
def test_has_data_set_any_value_but_0101(value: int, present: bool) -> None:
    msg = decode_message(encode_command(store_rq(CommandDataSetType=value)))
    assert msg.has_data_set is present


def test_encode_refuses_missing_mandatory_element() -> None:
    msg = C_STORE_RQ(store_rq(AffectedSOPInstanceUID=None), b"x")
    with pytest.raises(DimseError, match="AffectedSOPInstanceUID"):
        msg.encode_command()


@pytest.mark.parametrize(
    ("elements", "match"),
    [
        ({0x0110: 1, 0x0800: 0x0101}, "no .*CommandField"),
        ({0x0100: 0x0031, 0x0110: 1, 0x0800: 0x0101}, "unknown .*CommandField 49"),
        ({0x0100: 0x8FFF, 0x0120: 1, 0x0800: 0x0101}, "unknown"),
        (store_rq(CommandDataSetType=None), "without .*CommandDataSetType"),
        (store_rq(MessageID=None), "C_STORE_RQ without MessageID"),
        ({0x0100: 0x8001, 0x0800: 0x0101, 0x0900: 0}, "without MessageIDBeingRespondedTo"),
        ({0x0100: 0x0FFF, 0x0800: 0x0101}, "C_CANCEL_RQ without MessageIDBeingRespondedTo"),
    ],
)
def test_protocol_errors(elements: dict[int, object], match: str) -> None:
    with pytest.raises(DimseProtocolError, match=match) as info:
        decode_message(encode_command(elements))
    assert info.value.protocol is True


def test_unparseable_command_set_is_protocol_error() -> None:
    with pytest.raises(DimseProtocolError):
        decode_message(b"\x00\x00\x00\x00\x04\x00\x00\x00\x10\x00\x00\x00")


@pytest.mark.parametrize(
    ("elements", "tag"),
    [
        (store_rq(AffectedSOPInstanceUID=None), 0x1000),
        (store_rq(AffectedSOPClassUID=None), 0x0002),
        (store_rq(Priority=None), 0x0700),
        (
            {
                0x0100: 0x0021,
                0x0110: 3,
                0x0800: 1,
                0x0002: "1.2.840.10008.5.1.4.1.2.2.2",
                0x0700: 0,
            },
            0x0600,
        ),
        ({0x0100: 0x0130, 0x0110: 3, 0x0800: 0x0101, 0x0003: "1.2.3", 0x1001: "1.2.4"}, 0x1008),
        ({0x0100: 0x8001, 0x0120: 3, 0x0800: 0x0101}, 0x0900),
    ],
)
def test_missing_mandatory_element_gives_0120(elements: dict[int, object], tag: int) -> None:
    with pytest.raises(MissingCommandElementError) as info:
        decode_message(encode_command(elements))
    err = info.value
    assert isinstance(err, DimseCommandError) and err.protocol is False
    assert (err.status, err.tag) == (0x0120, tag)
    assert ELEMENTS[tag].keyword in str(err)


def test_failure_response_for_faulty_request() -> None:
    with pytest.raises(MissingCommandElementError) as info:
        decode_message(encode_command(store_rq(AffectedSOPInstanceUID=None)))
    rsp = info.value.response()
    assert isinstance(rsp, C_STORE_RSP)
    cs = rsp.command_set
    assert (cs.MessageIDBeingRespondedTo, cs.Status, cs.OffendingElement) == (5, 0x0120, (0x1000,))
    assert cs.AffectedSOPClassUID == CT
    assert len(cs.ErrorComment) <= 64
    # the response itself encodes and decodes
    assert isinstance(decode_message(rsp.encode_command()), C_STORE_RSP)


def test_no_failure_response_for_faulty_response() -> None:
    with pytest.raises(MissingCommandElementError) as info:
        decode_message(encode_command({0x0100: 0x8001, 0x0120: 3, 0x0800: 0x0101}))
    assert info.value.response() is None


@pytest.mark.parametrize(
    ("extra", "tag"),
    [
        ({"AffectedSOPInstanceUID": "../../etc/passwd"}, 0x1000),
        ({"AffectedSOPInstanceUID": "1.2/3"}, 0x1000),
        ({"AffectedSOPInstanceUID": "1.2\\3"}, 0x1000),
        ({"AffectedSOPInstanceUID": "1.2.\x003"}, 0x1000),
        ({"AffectedSOPInstanceUID": "1." + "2" * 64}, 0x1000),
        ({"AffectedSOPInstanceUID": "1.02.3"}, 0x1000),
        ({"AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2.abc"}, 0x0002),
        ({"Priority": 3}, 0x0700),
        ({"MoveOriginatorApplicationEntityTitle": "A" * 17}, 0x1030),
        ({"MoveOriginatorApplicationEntityTitle": "BACK\\SLASH"}, 0x1030),
    ],
)
def test_malformed_value_gives_0212(extra: dict[str, object], tag: int) -> None:
    with pytest.raises(InvalidCommandElementError) as info:
        decode_message(encode_command(store_rq(**extra)))
    assert (info.value.status, info.value.tag, info.value.message_id) == (0x0212, tag, 5)
    rsp = info.value.response()
    assert rsp is not None and rsp.command_set.Status == 0x0212


def test_blank_ae_title_is_invalid() -> None:
    # all spaces decodes to "" which is not a valid AE title
    raw = bytearray(encode_command(store_rq(MoveOriginatorApplicationEntityTitle="XXXX")))
    raw = raw.replace(b"XXXX", b"    ")
    with pytest.raises(InvalidCommandElementError) as info:
        decode_message(bytes(raw))
    assert info.value.tag == 0x1030


def test_retired_and_unlisted_elements_kept_but_not_in_primitive() -> None:
    elements = store_rq(CommandLengthToEnd=4, Status=0)  # Status is not a C-STORE-RQ element
    msg = decode_message(encode_command(elements), b"ds")
    assert msg.command_set.CommandLengthToEnd == 4
    prim = msg.to_primitive()
    assert isinstance(prim, P.C_STORE)
    assert prim.Status is None and prim.DataSet == b"ds"
    assert decode_command(msg.encode_command())[0x0001] == 4


def test_message_from_primitive_picks_request_or_response() -> None:
    rq = message_from_primitive(P.C_ECHO(MessageID=1, AffectedSOPClassUID="1.2.840.10008.1.1"))
    rsp = message_from_primitive(P.C_ECHO(MessageIDBeingRespondedTo=1, Status=0))
    assert isinstance(rq, C_ECHO_RQ) and isinstance(rsp, C_ECHO_RSP)
    cancel = message_from_primitive(P.C_CANCEL(MessageIDBeingRespondedTo=4))
    assert isinstance(cancel, C_CANCEL_RQ)
    assert decode_command(cancel.encode_command()) == {
        0: 30,
        0x0100: 0x0FFF,
        0x0120: 4,
        0x0800: 0x0101,
    }
    find = message_from_primitive(
        P.C_FIND(MessageIDBeingRespondedTo=1, Status=0xFF00, Identifier=b"id")
    )
    assert isinstance(find, C_FIND_RSP) and find.data_set == b"id"


def test_message_from_non_primitive_rejected() -> None:
    with pytest.raises(DimseError):
        message_from_primitive(P.DIMSEPrimitive())


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_message_round_trips(name: str, data: st.DataObject) -> None:
    prim = data.draw(PRIMITIVES[name])
    msg = message_from_primitive(prim)
    assert type(msg).__name__ == name
    raw = msg.encode_command()
    assert struct.unpack_from("<I", raw, 8)[0] == len(raw) - 12
    back = decode_message(raw, msg.data_set)
    assert type(back) is type(msg)
    assert back.command_set == msg.command_set
    assert back.to_primitive() == prim


@settings(max_examples=200, deadline=None)
@given(any_primitive())
def test_any_primitive_round_trip(prim: P.DIMSEPrimitive) -> None:
    msg = message_from_primitive(prim)
    back = decode_message(memoryview(msg.encode_command()), msg.data_set)
    assert back.to_primitive() == prim


ALL_VECTORS = sorted(DATA.glob("*.bin"))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL_VECTORS), st.data())
def test_mutated_vectors_only_raise_dimse_errors(path: Path, data: st.DataObject) -> None:
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(12, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        msg = decode_message(bytes(raw))
    except DimseCommandError as exc:
        assert exc.status in (0x0120, 0x0212)
        rsp = exc.response()
        if rsp is not None:
            decode_message(rsp.encode_command())  # our own failure response is well-formed
    except DimseProtocolError:
        pass
    else:
        msg.to_primitive()  # whatever decoded is valid for its primitive
