"""Primitives (PS3.7 sections 9.1, 10.1): validation on assignment, slots; UID rules (PS3.5 9.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from dicomnet import uid
from dicomnet.dimse import primitives as P
from dicomnet.errors import DimseError
from dicomnet.uid import is_valid_uid
from tests.dimse.strategies import uids

ALL = [
    P.C_ECHO, P.C_STORE, P.C_FIND, P.C_GET, P.C_MOVE, P.C_CANCEL,
    P.N_EVENT_REPORT, P.N_GET, P.N_SET, P.N_ACTION, P.N_CREATE, P.N_DELETE,
]  # fmt: skip


@pytest.mark.parametrize(
    "value",
    ["1.2.840.10008.1.1", "0", "0.0", "1.0.3", "2.25.329800735698586629295641978511506172918",
     "1." + "2" * 62],
)  # fmt: skip
def test_valid_uids(value: str) -> None:
    assert is_valid_uid(value)


@pytest.mark.parametrize(
    "value",
    ["", "../etc/passwd", "1.2/3", "/", "1.2\\3", "\\", "1.2.3\x00", "1.2\x00.3", "1." + "2" * 63,
     "1.02.3", "01.2", "1..2", ".1.2", "1.2.", "1.2.3 ", " 1.2", "1.2.a", "1,2", "\u0661.\u0662",
     "1.2.3\n", None, 1.2, b"1.2.3"],
)  # fmt: skip
def test_invalid_uids(value: object) -> None:
    assert not is_valid_uid(value)


def test_uid_length_limit_is_64() -> None:
    assert len("1." + "2" * 62) == 64 and is_valid_uid("1." + "2" * 62)
    assert not is_valid_uid("1." + "2" * 63)


@settings(max_examples=200, deadline=None)
@given(uids)
def test_generated_uids_valid(value: str) -> None:
    assert is_valid_uid(value)


def test_uid_constants() -> None:
    assert uid.Verification == "1.2.840.10008.1.1"
    assert uid.ImplicitVRLittleEndian == "1.2.840.10008.1.2"
    assert uid.JPEG2000Lossless in uid.COMPRESSED_TRANSFER_SYNTAXES
    assert uid.RLELossless in uid.COMPRESSED_TRANSFER_SYNTAXES
    assert uid.ExplicitVRLittleEndian not in uid.COMPRESSED_TRANSFER_SYNTAXES
    assert uid.STORAGE_SOP_CLASSES["CTImageStorage"] == "1.2.840.10008.5.1.4.1.1.2"
    assert "1.2.840.10008.5.1.4.1.1.7" in uid.STORAGE_SOP_CLASS_UIDS
    assert len(uid.STORAGE_SOP_CLASSES) > 150
    assert uid.ModalityWorklistInformationModelFind == "1.2.840.10008.5.1.4.31"
    assert uid.StudyRootQueryRetrieveInformationModelMove == "1.2.840.10008.5.1.4.1.2.2.2"
    assert uid.PatientRootQueryRetrieveInformationModelGet == "1.2.840.10008.5.1.4.1.2.1.3"
    every = set(uid.TRANSFER_SYNTAXES) | set(uid.STORAGE_SOP_CLASSES.values())
    assert all(is_valid_uid(u) for u in every)
    assert uid.Verification not in uid.STORAGE_SOP_CLASS_UIDS


def test_uid_constants_match_pydicom_registry() -> None:
    from pydicom.uid import UID

    for keyword, value in uid.STORAGE_SOP_CLASSES.items():
        assert UID(value).keyword == keyword
        assert UID(value).type == "SOP Class"


@pytest.mark.parametrize("cls", ALL)
def test_slots_and_defaults(cls: type[P.DIMSEPrimitive]) -> None:
    prim = cls()
    assert not hasattr(prim, "__dict__")
    assert all(getattr(prim, name) is None for name in cls.FIELDS)
    with pytest.raises(AttributeError):
        prim.NotAParameter = 1
    assert prim.params() == {}


def test_dataset_names_per_service() -> None:
    assert P.C_STORE.DATASET_FIELDS == ("DataSet",)
    assert P.C_FIND.DATASET_FIELDS == P.C_GET.DATASET_FIELDS == P.C_MOVE.DATASET_FIELDS
    assert P.C_FIND.DATASET_FIELDS == ("Identifier",)
    assert set(P.N_EVENT_REPORT.DATASET_FIELDS) == {"EventInformation", "EventReply"}
    assert set(P.N_ACTION.DATASET_FIELDS) == {"ActionInformation", "ActionReply"}
    assert set(P.N_SET.DATASET_FIELDS) == {"ModificationList", "AttributeList"}
    assert P.N_GET.DATASET_FIELDS == P.N_CREATE.DATASET_FIELDS == ("AttributeList",)
    assert P.N_DELETE.DATASET_FIELDS == P.C_ECHO.DATASET_FIELDS == ()


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("MessageID", 0, 0),
        ("MessageID", 65535, 65535),
        ("Priority", 2, 2),
        ("AffectedSOPInstanceUID", "1.2.3", "1.2.3"),
        ("MoveOriginatorApplicationEntityTitle", "  ARCHIVE ", "ARCHIVE"),
        ("MoveOriginatorApplicationEntityTitle", b"AE1", "AE1"),
        ("MoveOriginatorApplicationEntityTitle", "A" * 16, "A" * 16),
        ("Status", 0xFFFF, 0xFFFF),
        ("ErrorComment", "x" * 64, "x" * 64),
        ("OffendingElement", 0x00100010, (0x00100010,)),
        ("OffendingElement", [0x00100010, 0x00100020], (0x00100010, 0x00100020)),
        ("DataSet", object, object),
    ],
)
def test_valid_assignments(name: str, value: object, stored: object) -> None:
    prim = P.C_STORE()
    setattr(prim, name, value)
    assert getattr(prim, name) == stored
    setattr(prim, name, None)
    assert getattr(prim, name) is None


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("MessageID", -1, "MessageID: -1 is not an unsigned 16-bit"),
        ("MessageID", 65536, "0..65535"),
        ("MessageID", True, "0..65535"),
        ("MessageID", "1", "0..65535"),
        ("Priority", 3, "Priority: 3 is not 0"),
        ("Priority", -1, "Priority"),
        ("Priority", 1.0, "Priority"),
        ("AffectedSOPInstanceUID", "../x", "AffectedSOPInstanceUID: '../x' is not a valid UID"),
        ("AffectedSOPInstanceUID", "1.2.3\x00", "not a valid UID"),
        ("AffectedSOPClassUID", 123, "not a valid UID"),
        ("MoveOriginatorApplicationEntityTitle", "", "1 to 16"),
        ("MoveOriginatorApplicationEntityTitle", "    ", "1 to 16"),
        ("MoveOriginatorApplicationEntityTitle", "A" * 17, "1 to 16"),
        ("MoveOriginatorApplicationEntityTitle", "A\\B", "backslash"),
        ("MoveOriginatorApplicationEntityTitle", "A\nB", "non-printable"),
        ("MoveOriginatorApplicationEntityTitle", b"\xff", "not ASCII"),
        ("MoveOriginatorApplicationEntityTitle", 5, "expected an AE title"),
        ("Status", 0x10000, "Status"),
        ("ErrorComment", "x" * 65, "at most 64"),
        ("ErrorComment", "a\\b", "backslash"),
        ("ErrorComment", 5, "expected str"),
        ("OffendingElement", "00100010", "list of tags"),
        ("OffendingElement", [0x1_0000_0000], "32-bit tag"),
        ("OffendingElement", [-1], "32-bit tag"),
    ],
)
def test_invalid_assignments(name: str, value: object, match: str) -> None:
    prim = P.C_STORE(MessageID=1)
    with pytest.raises(DimseError, match=match):
        setattr(prim, name, value)
    assert getattr(prim, name) is None or name == "MessageID"
    assert prim.MessageID == 1


def test_constructor_validates_and_params() -> None:
    with pytest.raises(DimseError, match="MoveDestination"):
        P.C_MOVE(MoveDestination="")
    prim = P.C_MOVE(MessageID=2, MoveDestination="DEST", Priority=1)
    assert prim.params() == {"MessageID": 2, "Priority": 1, "MoveDestination": "DEST"}
    assert not prim.is_response
    assert P.C_MOVE(Status=0).is_response
    assert "MoveDestination='DEST'" in repr(prim)


def test_n_service_attributes() -> None:
    p = P.N_GET(AttributeIdentifierList=[0x00100010], RequestedSOPClassUID="1.2.3")
    assert p.AttributeIdentifierList == (0x00100010,)
    with pytest.raises(DimseError, match="AttributeIdentifierList"):
        p.AttributeIdentifierList = ["x"]  # type: ignore[list-item]
    a = P.N_ACTION(ActionTypeID=65535, ActionReply=b"r")
    assert (a.ActionTypeID, a.ActionReply) == (65535, b"r")
    with pytest.raises(DimseError, match="EventTypeID"):
        P.N_EVENT_REPORT(EventTypeID=70000)
    with pytest.raises(AttributeError):
        P.C_CANCEL(MessageID=1)


def test_equality() -> None:
    assert P.C_ECHO(MessageID=1) == P.C_ECHO(MessageID=1)
    assert P.C_ECHO(MessageID=1) != P.C_ECHO(MessageID=2)
    assert P.C_ECHO(MessageID=1) != P.C_FIND(MessageID=1)
