"""Start-up cost of the command-line tools, and the Record value classes that cut it.

The PDUs, Upper Layer events and a few other value classes are :class:`dicomnet._record.Record`
subclasses instead of dataclasses (no code generation at import). These tests pin that they
still behave as the frozen/slotted dataclasses they replaced: constructor signatures, equality,
hashing, ``repr``, immutability, ``dataclasses.replace``/``fields``/``asdict``, pickling; and that
the modules on ``dicomnet echoscu``'s import path stay free of heavy imports.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from datetime import datetime
from typing import Any

import pytest

from dicomnet._record import Record
from dicomnet.events import EVT_C_ECHO, Event, EventType
from dicomnet.presentation import PREFERRED_TRANSFER_SYNTAXES, PresentationContext
from dicomnet.ul import events as ule
from dicomnet.ul import pdu as P
from dicomnet.ul.codec import decode_pdu, encode_pdu
from dicomnet.ul.fsm import ACTIONS, Action, ActionSpec, State
from dicomnet.ul.negotiation import AcceptorPolicy

VERIFICATION = "1.2.840.10008.1.1"
IVLE = "1.2.840.10008.1.2"

UI = P.UserInformation(
    (
        P.MaximumLength(16384),
        P.ImplementationClassUID("1.2.3"),
        P.ImplementationVersionName("X_1"),
        P.AsyncOpsWindow(2, 3),
        P.RoleSelection(VERIFICATION, 1, 0),
        P.SOPClassExtendedNegotiation(VERIFICATION, b"\x01"),
        P.SOPClassCommonExtendedNegotiation(VERIFICATION, "1.2.840.10008.4.2", ("1.2.3",)),
        P.UserIdentityRQ(2, 1, b"user", b"pass"),
        P.UserIdentityAC(b"ok"),
        P.UnknownSubItem(0x60, b"??"),
    )
)

# one instance of every frozen record, with its fields in constructor order
SAMPLES: list[tuple[Any, tuple[str, ...]]] = [
    *((item, type(item)._fields) for item in UI.sub_items),
    (UI, ("sub_items",)),
    (
        P.PresentationContextRQ(1, VERIFICATION, (IVLE,)),
        ("context_id", "abstract_syntax", "transfer_syntaxes", "reserved"),
    ),
    (P.PresentationContextAC(1, 0, IVLE), ("context_id", "result", "transfer_syntax")),
    (
        P.AAssociateRQ(
            "CALLED", "CALLING", (P.PresentationContextRQ(1, VERIFICATION, (IVLE,)),), UI
        ),
        (
            "called_ae_title",
            "calling_ae_title",
            "presentation_contexts",
            "user_information",
            "application_context_name",
            "protocol_version",
        ),
    ),
    (
        P.AAssociateAC("CALLED", "CALLING", (P.PresentationContextAC(1, 0, IVLE),), UI),
        (
            "called_ae_title",
            "calling_ae_title",
            "presentation_contexts",
            "user_information",
            "application_context_name",
            "protocol_version",
        ),
    ),
    (P.AAssociateRJ(1, 2, 3), ("result", "source", "reason")),
    (P.PDV(1, 3, b"data"), ("context_id", "control", "data")),
    (P.PDataTF((P.PDV(1, 3, b"data"),)), ("pdvs",)),
    (P.AReleaseRQ(), ()),
    (P.AReleaseRP(), ()),
    (P.AAbort(2, 6), ("source", "reason")),
    (ule.AssociationRequested(P.AAssociateRQ("A", "B", ())), ("pdu",)),
    (ule.AssociationAccepted(P.AAssociateAC("A", "B", ())), ("pdu",)),
    (ule.AssociationRejected(P.AAssociateRJ(1, 1, 1), True), ("pdu", "local")),
    (ule.PDataReceived(P.PDataTF(())), ("pdu",)),
    (ule.ReleaseRequested(True), ("collision",)),
    (ule.ReleaseConfirmed(), ()),
    (ule.Aborted(2, 0, False), ("source", "reason", "local")),
    (ule.TransportShouldClose(), ()),
    (ule.TransportClosed(), ()),
    (ACTIONS[Action.AE_1], ("action", "definition", "next_state")),
    (EventType("EVT_X", "test", True), ("name", "description", "intervention")),
]


def _ids(sample: tuple[Any, tuple[str, ...]]) -> str:
    return type(sample[0]).__name__


@pytest.mark.parametrize("sample", SAMPLES, ids=_ids)
def test_frozen_record_behaves_like_the_dataclass(sample: tuple[Any, tuple[str, ...]]) -> None:
    obj, names = sample
    cls = type(obj)
    assert isinstance(obj, Record)
    assert cls._fields == names == cls.__match_args__
    values = [getattr(obj, n) for n in names]
    # positional and keyword construction give equal objects with equal hashes
    twin = cls(*values)
    assert twin == obj and hash(twin) == hash(obj) and twin is not obj
    assert cls(**dict(zip(names, values, strict=True))) == obj
    assert obj != object() and (obj == object()) is False
    # immutable
    for name in (*names, "not_a_field"):
        with pytest.raises(AttributeError):
            setattr(obj, name, None)
    if names:
        with pytest.raises(AttributeError):
            delattr(obj, names[0])
    # dataclasses API still works (fields built lazily, on first use)
    assert dataclasses.is_dataclass(obj)
    assert tuple(f.name for f in dataclasses.fields(obj)) == names
    assert dataclasses.replace(obj) == obj
    assert obj.replace() == obj
    # copy and pickle (memoryview-free samples only)
    assert copy.copy(obj) == obj and copy.deepcopy(obj) == obj
    assert pickle.loads(pickle.dumps(obj)) == obj
    # a record of another class with the same values is not equal
    assert all(obj != other for other, _ in SAMPLES if type(other) is not cls)


def test_repr_matches_dataclass_format() -> None:
    assert repr(P.AAbort(2, 6)) == "AAbort(source=2, reason=6)"
    assert repr(P.AReleaseRQ()) == "AReleaseRQ()"
    assert repr(P.PDV(1, 3, b"x")) == "PDV(context_id=1, control=3, data=b'x')"
    assert repr(ule.Aborted(2, 0, True)) == "Aborted(source=2, reason=0, local=True)"
    # the reserved byte is not shown and not compared (field(compare=False, repr=False) before)
    rq = P.PresentationContextRQ(1, VERIFICATION, (IVLE,), reserved=0xFF)
    assert (
        repr(rq)
        == f"PresentationContextRQ(context_id=1, abstract_syntax='{VERIFICATION}', transfer_syntaxes=('{IVLE}',))"
    )
    assert rq == P.PresentationContextRQ(1, VERIFICATION, (IVLE,))
    assert hash(rq) == hash(P.PresentationContextRQ(1, VERIFICATION, (IVLE,)))
    assert rq.reserved == 0xFF
    assert repr(EVT_C_ECHO) == "EVT_C_ECHO"  # EventType keeps its own __repr__


def test_defaults_and_replace() -> None:
    rq = P.AAssociateRQ("A", "B", ())
    assert rq.user_information == P.UserInformation(())
    assert rq.application_context_name == P.APPLICATION_CONTEXT_NAME
    assert rq.protocol_version == 1
    assert P.AAbort() == P.AAbort(0, 0)
    assert P.UserIdentityRQ(1, 0, b"u").secondary_field == b""
    assert P.SOPClassCommonExtendedNegotiation("1.2", "1.3").related_general_sop_class_uids == ()
    changed = rq.replace(protocol_version=3, calling_ae_title="C")
    assert (changed.protocol_version, changed.calling_ae_title, changed.called_ae_title) == (
        3,
        "C",
        "A",
    )
    assert dataclasses.replace(rq, protocol_version=3, calling_ae_title="C") == changed
    assert rq.protocol_version == 1
    with pytest.raises(TypeError):
        rq.replace(no_such_field=1)
    assert dataclasses.asdict(P.AAbort(2, 1)) == {"source": 2, "reason": 1}


def test_pdv_fast_init_matches_general_path() -> None:
    """PDV/PDataTF/PDataReceived set their slots through the slot descriptors (hot path)."""
    data = memoryview(b"\x00\x01payload")
    by_position = P.PDV(5, 2, data)
    by_keyword = P.PDV(context_id=5, control=2, data=data)
    assert by_position == by_keyword
    assert (by_position.context_id, by_position.control, by_position.data) == (5, 2, data)
    assert by_position.is_last and not by_position.is_command
    pdu = P.PDataTF((by_position, P.PDV(5, 3, b"cmd")))
    assert ule.PDataReceived(pdu).pdu is pdu
    # what the decoder builds equals what we built by hand, and encodes back to the same bytes
    wire = encode_pdu(pdu)
    decoded = decode_pdu(wire)
    assert decoded == pdu
    assert encode_pdu(decoded) == wire
    with pytest.raises(AttributeError):
        by_position.data = b""  # type: ignore[misc]


def test_presentation_context_is_a_mutable_record() -> None:
    cx = PresentationContext(VERIFICATION)
    assert cx.transfer_syntaxes == list(PREFERRED_TRANSFER_SYNTAXES)
    assert cx.transfer_syntaxes is not PresentationContext(VERIFICATION).transfer_syntaxes
    assert PresentationContext(VERIFICATION, IVLE).transfer_syntaxes == [IVLE]
    assert PresentationContext(VERIFICATION, [IVLE, IVLE + "\x00"]).transfer_syntaxes == [IVLE]
    cx.result = 0
    cx.context_id = 1
    assert cx.is_accepted
    assert cx == PresentationContext(VERIFICATION, context_id=1, result=0)
    assert cx != PresentationContext(VERIFICATION, context_id=3, result=0)
    # hashable as pynetdicom's contexts (its qrscp app puts them in a set); equal -> same hash
    assert hash(cx) == hash(PresentationContext(VERIFICATION, context_id=1, result=0))
    assert len({cx, PresentationContext(VERIFICATION, context_id=1, result=0)}) == 1
    with pytest.raises(ValueError):
        PresentationContext("1.2.x")
    with pytest.raises(ValueError):
        PresentationContext(VERIFICATION, ["not a uid"])
    again = dataclasses.replace(cx, context_id=7)
    assert again.context_id == 7 and again.result == 0
    wire = PresentationContext.from_wire(3, VERIFICATION + "\x00", [IVLE])
    assert (wire.abstract_syntax, wire.context_id, wire.result) == (VERIFICATION, 3, None)


def test_acceptor_policy_defaults() -> None:
    a, b = AcceptorPolicy(), AcceptorPolicy()
    assert a.supported == {} and a.roles == {} and a.supported is not b.supported
    assert a == b
    assert AcceptorPolicy(max_pdata_length=0).max_pdata_length == 0
    assert AcceptorPolicy("X", {VERIFICATION: [IVLE]}).supported == {VERIFICATION: [IVLE]}
    with pytest.raises(AttributeError):
        a.ae_title = "Y"  # type: ignore[misc]
    assert ActionSpec(Action.AE_1, "x", State.STA4) == ActionSpec(Action.AE_1, "x", State.STA4)


def test_record_checks_slots_against_init() -> None:
    with pytest.raises(TypeError, match="__slots__"):

        class Broken(Record):
            __slots__ = ("a", "b")

            def __init__(self, a: int) -> None:
                object.__setattr__(self, "a", a)

    class Sub(P.AAbort):  # a plain subclass keeps its parent's fields, as with dataclasses
        pass

    assert Sub(2, 1) == Sub(2, 1) and Sub(2, 1) != Sub(2, 2)
    assert Sub(2, 1) != P.AAbort(2, 1)


def test_event_timestamp_without_module_level_datetime() -> None:
    before = datetime.now()
    ev = Event(None, EVT_C_ECHO)
    assert isinstance(ev.timestamp, datetime) and ev.timestamp >= before


# --- what the start-up path imports --------------------------------------------------------

HEAVY = ("pydicom", "numpy", "tempfile", "shutil", "bz2", "lzma", "datetime")


def _imported_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_echoscu_import_path_stays_light() -> None:
    mods = _imported_after(
        "import dicomnet.cli.main, dicomnet.cli.echoscu, dicomnet.ae, dicomnet.client, "
        "dicomnet.events, dicomnet.dimse.provider"
    )
    assert not {m.split(".")[0] for m in mods} & set(HEAVY)


def test_record_modules_do_not_import_dataclasses() -> None:
    mods = _imported_after(
        "import dicomnet._record, dicomnet.ul.pdu, dicomnet.ul.events, dicomnet.ul.fsm, "
        "dicomnet.ul.negotiation, dicomnet.presentation, dicomnet.events, "
        "dicomnet.dimse.dataset, dicomnet.dimse.payload, dicomnet.datasource, dicomnet.cli.main, "
        "dicomnet.cli.common, dicomnet.cli.echoscu"
    )
    assert "dataclasses" not in mods
    assert "inspect" not in mods
    # dimse.dataset imports zlib lazily, datasource tempfile
    assert "zlib" not in mods and "tempfile" not in mods
