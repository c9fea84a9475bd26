"""The MPPS SCP (PS3.4 Annex F.7, issue 16) over real loopback associations: every state
transition with the exact status, the attribute rules of Table F.7.2-1, durability (closed and
reopened, and a server killed right after its answer), the queries, and forwarding to a second
MPPS SCP (delivered in order, kept and retried while the destination is down, refusals set
aside)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.archive.mpps import (
    COMPLETED,
    DISCONTINUED,
    IN_PROGRESS,
    MPPS_SOP_CLASS,
    WORKFLOW_DB,
    MPPSError,
    MPPSStore,
    mpps_handlers,
)
from dicomnet.server import Server
from tests.archive.conftest import BACKENDS
from tests.conftest import free_port
from tests.pg_cluster import Cluster

MPPS = MPPS_SOP_CLASS
SSAS = 0x00400270
STUDY_UID = 0x0020000D
STATUS = 0x00400252
SERIES_SEQ = 0x00400340
SERIES_UID = 0x0020000E
# the invalid values some tests send on purpose make pydicom warn
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")

FILM_SESSION = "1.2.840.10008.5.1.1.1"  # Basic Film Session: another SOP class with N-CREATE

TYPE1 = {
    "ScheduledStepAttributesSequence": 0x00400270,
    "PerformedProcedureStepID": 0x00400253,
    "PerformedStationAETitle": 0x00400241,
    "PerformedProcedureStepStartDate": 0x00400244,
    "PerformedProcedureStepStartTime": 0x00400245,
    "PerformedProcedureStepStatus": 0x00400252,
    "Modality": 0x00080060,
}


def step(study_uid: str = "1.2.826.0.1.1", **overrides: Any) -> Dataset:
    """An N-CREATE attribute list with every type 1 and type 2 attribute of Table F.7.2-1."""
    item = Dataset()
    item.StudyInstanceUID = study_uid
    item.AccessionNumber = "ACC1"
    item.ReferencedStudySequence = []
    item.RequestedProcedureID = "RP1"
    item.RequestedProcedureDescription = "CT HEAD"
    item.ScheduledProcedureStepID = "SPS1"
    item.ScheduledProcedureStepDescription = "HEAD"
    item.ScheduledProtocolCodeSequence = []
    ds = Dataset()
    ds.ScheduledStepAttributesSequence = [item]
    ds.PatientName = "Doe^John"
    ds.PatientID = "PID1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedStationName = "CT ROOM 1"
    ds.PerformedLocation = "RAD"
    ds.PerformedProcedureStepStartDate = "20240102"
    ds.PerformedProcedureStepStartTime = "101010"
    ds.PerformedProcedureStepStatus = IN_PROGRESS
    ds.PerformedProcedureStepDescription = ""
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedProtocolCodeSequence = []
    ds.PerformedSeriesSequence = []
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def series_item(series_uid: str | None = None, protocol: str | None = "HEAD ROUTINE") -> Dataset:
    item = Dataset()
    if series_uid is not None:
        item.SeriesInstanceUID = series_uid
    if protocol is not None:
        item.ProtocolName = protocol
    item.PerformingPhysicianName = ""
    item.OperatorsName = ""
    item.SeriesDescription = ""
    item.RetrieveAETitle = ""
    item.ReferencedImageSequence = []
    item.ReferencedNonImageCompositeSOPInstanceSequence = []
    return item


def final(status: str = COMPLETED, series: str = "1.2.826.0.1.2", **more: Any) -> Dataset:
    """The N-SET that ends a step, meeting the Final State requirements."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20240102"
    ds.PerformedProcedureStepEndTime = "111111"
    ds.PerformedSeriesSequence = [series_item(series)]
    for keyword, value in more.items():
        setattr(ds, keyword, value)
    return ds


def code_of(status: Dataset) -> int:
    return int(status.Status)


def offending(status: Dataset) -> list[int]:
    value = status.get("OffendingElement")
    if value is None:
        return []
    return [int(value)] if isinstance(value, int) else [int(t) for t in value]


class MPPSServer:
    """An MPPS SCP on a free loopback port, serving a store; ``handled`` is set after each
    request it answered (with the event's service name appended to ``calls``)."""

    def __init__(self, store: MPPSStore, port: int = 0, extra_classes: tuple[str, ...] = ()):
        self.store = store
        self.calls: list[str] = []
        self.handled = threading.Condition()
        ae = AE(ae_title="MPPSSCP")
        ae.add_supported_context(MPPS)
        for uid in extra_classes:
            ae.add_supported_context(uid)
        handlers = []
        for event_type, handler in mpps_handlers(store):
            handlers.append((event_type, self._observed(event_type.name, handler)))
        server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
        assert isinstance(server, Server)
        self.server = server
        self.port = int(server.address[1])

    def _observed(self, name: str, handler: Callable[[Any], object]) -> Callable[[Any], object]:
        def run(event: Any) -> object:
            result = handler(event)
            with self.handled:
                self.calls.append(name)
                self.handled.notify_all()
            return result

        return run

    def wait_calls(self, n: int, timeout: float = 20) -> list[str]:
        with self.handled:
            assert self.handled.wait_for(lambda: len(self.calls) >= n, timeout), self.calls
            return list(self.calls)

    def stop(self) -> None:
        self.server.shutdown()


#: where a test's workflow database named ``name`` lives (one per name and test)
Where = Callable[[str], str]


@pytest.fixture(params=BACKENDS)
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    """The tests run once per backend: a workflow database is a storage folder of its own
    (``<folder>/workflow.sqlite``) or a fresh database of the session's PostgreSQL cluster."""
    cluster: Cluster | None = (request.getfixturevalue("postgresql")
                               if request.param == "postgresql" else None)  # fmt: skip
    made: dict[str, str] = {}

    def location(name: str = "workflow") -> str:
        if name not in made:
            if cluster is not None:
                made[name] = cluster.database()
            else:
                folder = tmp_path / name
                folder.mkdir()
                made[name] = str(folder)
        return made[name]

    return location


@pytest.fixture
def store(where: Where) -> Iterator[MPPSStore]:
    s = MPPSStore(where("storage"))
    yield s
    s.close()


@pytest.fixture
def scp(store: MPPSStore) -> Iterator[MPPSServer]:
    srv = MPPSServer(store, extra_classes=(FILM_SESSION,))
    yield srv
    srv.stop()


@pytest.fixture
def assoc(scp: MPPSServer) -> Iterator[Any]:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(MPPS)
    ae.add_requested_context(FILM_SESSION)
    a = ae.associate("127.0.0.1", scp.port, ae_title="MPPSSCP")
    assert a.is_established
    yield a
    if a.is_established:
        a.release()


def create(assoc: Any, ds: Dataset | None = None, uid: str | None = "auto") -> tuple[int, Any, str]:
    """N-CREATE; (status code, reply, the SOP Instance UID)."""
    uid = generate_uid(prefix=None) if uid == "auto" else uid
    status, reply = assoc.send_n_create(step() if ds is None else ds, MPPS, uid)
    got = uid or (str(reply.SOPInstanceUID) if reply is not None else "")
    return code_of(status), reply, got


# --- N-CREATE ---------------------------------------------------------------------------------


def test_create_stores_the_step_in_progress(assoc: Any, store: MPPSStore) -> None:
    code, reply, uid = create(assoc)
    assert code == 0x0000
    assert reply.SOPInstanceUID == uid and reply.SOPClassUID == MPPS
    assert reply.PerformedProcedureStepStatus == IN_PROGRESS
    stored = store.get(uid)
    assert stored.PerformedProcedureStepStatus == IN_PROGRESS
    assert stored.PatientName == "Doe^John" and stored.Modality == "CT"
    assert stored.SOPInstanceUID == uid and stored.SOPClassUID == MPPS
    record = store.record(uid)
    assert record is not None
    assert record.status == IN_PROGRESS and record.ended is None
    assert record.performed_procedure_step_id == "PPS1" and record.station_ae_title == "CT01"
    assert record.calling_ae_title == "MODALITY" and record.study_uids == ("1.2.826.0.1.1",)


def test_create_without_uid_gets_one_from_the_scp(assoc: Any, store: MPPSStore) -> None:
    """PS3.7 10.1.5.1.3: the SCP assigns the SOP Instance UID the request left out."""
    status, reply = assoc.send_n_create(step(), MPPS, None)
    assert code_of(status) == 0x0000
    uid = str(status.AffectedSOPInstanceUID)
    assert uid.startswith("2.25.") and reply.SOPInstanceUID == uid
    assert store.get(uid).PerformedProcedureStepStatus == IN_PROGRESS


def test_duplicate_create_is_0111_and_keeps_the_first(assoc: Any, store: MPPSStore) -> None:
    uid = generate_uid(prefix=None)
    assert create(assoc, uid=uid)[0] == 0x0000
    code, _, _ = create(assoc, step(PatientName="Other^Name"), uid=uid)
    assert code == 0x0111
    assert store.get(uid).PatientName == "Doe^John"


@pytest.mark.parametrize("value", [COMPLETED, DISCONTINUED, "SCHEDULED", "in progress"])
def test_create_other_than_in_progress_is_0106(assoc: Any, store: MPPSStore, value: str) -> None:
    """PS3.4 F.7.2.1.3: N-CREATE only with IN PROGRESS; otherwise 0106H Invalid attribute value."""
    status, _ = assoc.send_n_create(step(PerformedProcedureStepStatus=value), MPPS,
                                    generate_uid(prefix=None))  # fmt: skip
    assert code_of(status) == 0x0106
    assert offending(status) == [STATUS]
    assert "PerformedProcedureStepStatus" in status.ErrorComment
    assert store.find() == []


@pytest.mark.parametrize("keyword", sorted(TYPE1))
def test_create_without_a_type1_attribute_is_0120(assoc: Any, store: MPPSStore,
                                                  keyword: str) -> None:  # fmt: skip
    """PS3.4 5.4.2.1: a Mandatory attribute not sent is 0120H Missing attribute, named in the
    Offending Element."""
    ds = step()
    delattr(ds, keyword)
    status, _ = assoc.send_n_create(ds, MPPS, generate_uid(prefix=None))
    assert code_of(status) == 0x0120
    assert offending(status) == [TYPE1[keyword]]
    assert keyword in status.ErrorComment
    assert store.find() == []


@pytest.mark.parametrize("keyword", ["PerformedProcedureStepID", "Modality",
                                     "ScheduledStepAttributesSequence"])  # fmt: skip
def test_create_with_an_empty_type1_attribute_is_0121(assoc: Any, store: MPPSStore,
                                                      keyword: str) -> None:  # fmt: skip
    """PS3.4 5.4.2.1: zero length where it is not permitted is 0121H Missing attribute value."""
    ds = step(**{keyword: [] if keyword.endswith("Sequence") else ""})
    status, _ = assoc.send_n_create(ds, MPPS, generate_uid(prefix=None))
    assert code_of(status) == 0x0121
    assert offending(status) == [TYPE1[keyword]]
    assert store.find() == []


def test_create_item_without_study_uid_is_0120(assoc: Any, store: MPPSStore) -> None:
    ds = step()
    del ds.ScheduledStepAttributesSequence[0].StudyInstanceUID
    status, _ = assoc.send_n_create(ds, MPPS, generate_uid(prefix=None))
    assert code_of(status) == 0x0120
    assert "StudyInstanceUID" in status.ErrorComment
    assert store.find() == []


def test_create_with_a_malformed_study_uid_is_0106(assoc: Any, store: MPPSStore) -> None:
    ds = step(study_uid="1.2.03.x")
    status, _ = assoc.send_n_create(ds, MPPS, generate_uid(prefix=None))
    assert code_of(status) == 0x0106
    assert store.find() == []


def test_nested_offending_element_names_sequence_and_item_tag(assoc: Any) -> None:
    ds = step()
    del ds.ScheduledStepAttributesSequence[0].StudyInstanceUID
    status, _ = assoc.send_n_create(ds, MPPS, generate_uid(prefix=None))
    assert offending(status) == [SSAS, STUDY_UID]


def test_create_dataset_sop_instance_uid_must_match(assoc: Any, store: MPPSStore) -> None:
    ds = step()
    ds.SOPInstanceUID = "1.2.3.4"
    status, _ = assoc.send_n_create(ds, MPPS, generate_uid(prefix=None))
    assert code_of(status) == 0x0106 and offending(status) == [0x00080018]
    uid = generate_uid(prefix=None)
    ds.SOPInstanceUID = uid  # the same UID: accepted (kept once, from the request)
    status, _ = assoc.send_n_create(ds, MPPS, uid)
    assert code_of(status) == 0x0000


def test_malformed_instance_uid_is_0117(store: MPPSStore) -> None:
    """PS3.7 C.5: a SOP Instance UID that breaks the UID rules is 0117H Invalid object
    instance (our SCU will not send one, so the store is asked directly)."""
    with pytest.raises(MPPSError) as info:
        store.create("1.2.03", step())
    assert info.value.code == 0x0117
    assert store.find() == []


def test_other_sop_class_is_0118(assoc: Any, store: MPPSStore) -> None:
    status, _ = assoc.send_n_create(Dataset(), FILM_SESSION, generate_uid(prefix=None))
    assert code_of(status) == 0x0118
    status, _ = assoc.send_n_set(final(), FILM_SESSION, generate_uid(prefix=None))
    assert code_of(status) == 0x0118
    assert store.find() == []


def test_create_with_no_attribute_list_is_0120(assoc: Any, store: MPPSStore) -> None:
    status, _ = assoc.send_n_create(None, MPPS, generate_uid(prefix=None))
    assert code_of(status) == 0x0120
    assert store.find() == []


# --- N-SET: the state machine (PS3.4 Table F.1-4) ----------------------------------------------


def test_set_while_in_progress_then_complete(assoc: Any, store: MPPSStore) -> None:
    _, _, uid = create(assoc)
    mod = Dataset()
    mod.PerformedProcedureStepDescription = "HEAD WITHOUT CONTRAST"
    mod.PerformedProcedureStepStatus = IN_PROGRESS  # IN PROGRESS -> IN PROGRESS is legal
    status, reply = assoc.send_n_set(mod, MPPS, uid)
    assert code_of(status) == 0x0000
    assert reply.PerformedProcedureStepDescription == "HEAD WITHOUT CONTRAST"
    assert store.record(uid).status == IN_PROGRESS  # type: ignore[union-attr]

    status, _ = assoc.send_n_set(final(series="1.2.826.0.1.7"), MPPS, uid)
    assert code_of(status) == 0x0000
    stored = store.get(uid)
    assert stored.PerformedProcedureStepStatus == COMPLETED
    assert stored.PerformedProcedureStepDescription == "HEAD WITHOUT CONTRAST"
    assert stored.PatientName == "Doe^John"  # untouched attributes stay
    record = store.record(uid)
    assert record is not None and record.status == COMPLETED and record.ended is not None
    assert record.series_uids == ("1.2.826.0.1.7",)


@pytest.mark.parametrize("end", [COMPLETED, DISCONTINUED])
@pytest.mark.parametrize("then", [IN_PROGRESS, COMPLETED, DISCONTINUED, None])
def test_no_set_after_a_final_state(assoc: Any, store: MPPSStore, end: str,
                                    then: str | None) -> None:  # fmt: skip
    """PS3.4 F.7.2.2.3 and Table F.7.2-2: once COMPLETED or DISCONTINUED every N-SET is 0110H
    Processing failure, Error Comment "Performed Procedure Step Object may no longer be
    updated", Error ID A710H, and the step does not change."""
    _, _, uid = create(assoc)
    assert code_of(assoc.send_n_set(final(end), MPPS, uid)[0]) == 0x0000
    before = store.get(uid)
    mod = Dataset()
    mod.CommentsOnThePerformedProcedureStep = "late"
    if then is not None:
        mod.PerformedProcedureStepStatus = then
    status, reply = assoc.send_n_set(mod, MPPS, uid)
    assert code_of(status) == 0x0110
    assert status.ErrorComment == "Performed Procedure Step Object may no longer be updated"
    assert status.ErrorID == 0xA710
    assert reply is None
    assert store.get(uid) == before
    assert store.record(uid).status == end  # type: ignore[union-attr]


def test_discontinue(assoc: Any, store: MPPSStore) -> None:
    _, _, uid = create(assoc)
    mod = Dataset()
    mod.PerformedProcedureStepStatus = DISCONTINUED
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "110514",
        "DCM",
        "Incorrect worklist entry selected",
    )
    mod.PerformedProcedureStepDiscontinuationReasonCodeSequence = [code]
    assert code_of(assoc.send_n_set(mod, MPPS, uid)[0]) == 0x0000
    stored = store.get(uid)
    assert stored.PerformedProcedureStepStatus == DISCONTINUED
    assert stored.PerformedProcedureStepDiscontinuationReasonCodeSequence[0].CodeValue == "110514"
    assert [r.sop_instance_uid for r in store.find(status=DISCONTINUED)] == [uid]


def test_set_of_unknown_instance_is_0112(assoc: Any, store: MPPSStore) -> None:
    status, _ = assoc.send_n_set(final(), MPPS, generate_uid(prefix=None))
    assert code_of(status) == 0x0112
    assert store.find() == []


@pytest.mark.parametrize("keyword,value", [
    ("PatientName", "Other^Name"), ("PatientID", "PID2"), ("Modality", "MR"),
    ("PerformedProcedureStepStartDate", "20240103"), ("PerformedStationAETitle", "CT02"),
    ("PerformedProcedureStepID", "PPS2"), ("StudyID", "2"),
])  # fmt: skip
def test_set_of_a_not_allowed_attribute_is_0105(assoc: Any, store: MPPSStore, keyword: str,
                                                value: str) -> None:  # fmt: skip
    """Table F.7.2-1 marks these "Not allowed" for N-SET: refused whole (0105H No such
    attribute, PS3.4 5.4.2.1), nothing of the request applied."""
    _, _, uid = create(assoc)
    before = store.get(uid)
    mod = Dataset()
    mod.PerformedProcedureStepDescription = "changed"
    setattr(mod, keyword, value)
    status, _ = assoc.send_n_set(mod, MPPS, uid)
    assert code_of(status) == 0x0105
    assert keyword in status.ErrorComment
    assert len(offending(status)) == 1
    assert store.get(uid) == before


def test_set_of_the_scheduled_step_sequence_is_0105(assoc: Any, store: MPPSStore) -> None:
    _, _, uid = create(assoc)
    mod = Dataset()
    item = Dataset()
    item.StudyInstanceUID = "1.2.826.0.1.99"
    mod.ScheduledStepAttributesSequence = [item]
    status, _ = assoc.send_n_set(mod, MPPS, uid)
    assert code_of(status) == 0x0105 and offending(status) == [SSAS]
    assert store.record(uid).study_uids == ("1.2.826.0.1.1",)  # type: ignore[union-attr]


@pytest.mark.parametrize("value,code", [("FINISHED", 0x0106), ("completed", 0x0106), ("", 0x0121)])
def test_set_of_a_bad_status_value(assoc: Any, store: MPPSStore, value: str, code: int) -> None:
    """Only the enumerated values of PS3.3 C.4.14 (0106H); empty is 0121H (3/1: zero length
    not permitted)."""
    _, _, uid = create(assoc)
    mod = Dataset()
    mod.PerformedProcedureStepStatus = value
    status, _ = assoc.send_n_set(mod, MPPS, uid)
    assert code_of(status) == code and offending(status) == [STATUS]
    assert store.record(uid).status == IN_PROGRESS  # type: ignore[union-attr]


def test_set_with_another_sop_instance_uid_is_0106(assoc: Any, store: MPPSStore) -> None:
    _, _, uid = create(assoc)
    mod = final()
    mod.SOPInstanceUID = "1.2.3.4"
    status, _ = assoc.send_n_set(mod, MPPS, uid)
    assert code_of(status) == 0x0106
    assert store.record(uid).status == IN_PROGRESS  # type: ignore[union-attr]


def test_set_replaces_a_sequence_whole(assoc: Any, store: MPPSStore) -> None:
    """An N-SET replaces a sequence with the items it carries (PS3.7 10.1.3); the series links
    follow."""
    _, _, uid = create(assoc)
    mod = Dataset()
    mod.PerformedSeriesSequence = [series_item("1.2.826.0.1.10"), series_item("1.2.826.0.1.11")]
    assert code_of(assoc.send_n_set(mod, MPPS, uid)[0]) == 0x0000
    assert store.record(uid).series_uids == ("1.2.826.0.1.10", "1.2.826.0.1.11")  # type: ignore[union-attr]
    mod.PerformedSeriesSequence = [series_item("1.2.826.0.1.12")]
    assert code_of(assoc.send_n_set(mod, MPPS, uid)[0]) == 0x0000
    assert len(store.get(uid).PerformedSeriesSequence) == 1
    assert store.record(uid).series_uids == ("1.2.826.0.1.12",)  # type: ignore[union-attr]
    assert [r.sop_instance_uid for r in store.find(series_uid="1.2.826.0.1.12")] == [uid]
    assert store.find(series_uid="1.2.826.0.1.10") == []


def test_set_series_item_without_series_uid_is_0120(assoc: Any, store: MPPSStore) -> None:
    _, _, uid = create(assoc)
    mod = Dataset()
    mod.PerformedSeriesSequence = [series_item(None)]
    status, _ = assoc.send_n_set(mod, MPPS, uid)
    assert code_of(status) == 0x0120 and "SeriesInstanceUID" in status.ErrorComment
    assert store.get(uid).PerformedSeriesSequence == []


def test_lenient_final_state_by_default(assoc: Any, store: MPPSStore) -> None:
    """Without strict, a bare "COMPLETED" ends the step (modalities in the field send that)."""
    _, _, uid = create(assoc)
    mod = Dataset()
    mod.PerformedProcedureStepStatus = COMPLETED
    assert code_of(assoc.send_n_set(mod, MPPS, uid)[0]) == 0x0000
    assert store.record(uid).status == COMPLETED  # type: ignore[union-attr]


# --- strict: the SCU's type 2 and Final State requirements --------------------------------------


@pytest.fixture
def strict_assoc(where: Where) -> Iterator[tuple[Any, MPPSStore]]:
    s = MPPSStore(where("strict"), strict=True)
    srv = MPPSServer(s)
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(MPPS)
    a = ae.associate("127.0.0.1", srv.port, ae_title="MPPSSCP")
    assert a.is_established
    yield a, s
    a.release()
    srv.stop()
    s.close()


@pytest.mark.parametrize("keyword", ["PatientName", "PerformedSeriesSequence", "StudyID"])
def test_strict_create_without_type2_is_0120(strict_assoc: tuple[Any, MPPSStore],
                                             keyword: str) -> None:  # fmt: skip
    a, s = strict_assoc
    ds = step()
    delattr(ds, keyword)
    status, _ = a.send_n_create(ds, MPPS, generate_uid(prefix=None))
    assert code_of(status) == 0x0120 and keyword in status.ErrorComment
    assert s.find() == []
    assert code_of(a.send_n_create(step(), MPPS, generate_uid(prefix=None))[0]) == 0x0000


@pytest.mark.parametrize("missing,code", [
    ("PerformedProcedureStepEndDate", 0x0121),  # sent empty at N-CREATE, still empty
    ("PerformedSeriesSequence", 0x0121),        # an empty sequence: Note 2 wants an item
    ("ProtocolName", 0x0120),                   # >Protocol Name 1/1 in the series item
])  # fmt: skip
@pytest.mark.parametrize("end", [COMPLETED, DISCONTINUED])
def test_strict_final_state_requirements(strict_assoc: tuple[Any, MPPSStore], missing: str,
                                         code: int, end: str) -> None:  # fmt: skip
    a, s = strict_assoc
    uid = generate_uid(prefix=None)
    assert code_of(a.send_n_create(step(), MPPS, uid)[0]) == 0x0000
    mod = final(end)
    if missing == "ProtocolName":
        mod.PerformedSeriesSequence = [series_item("1.2.826.0.1.2", protocol=None)]
    else:
        delattr(mod, missing)
    status, _ = a.send_n_set(mod, MPPS, uid)
    assert code_of(status) == code and missing in status.ErrorComment
    assert s.record(uid).status == IN_PROGRESS  # type: ignore[union-attr]
    assert code_of(a.send_n_set(final(end), MPPS, uid)[0]) == 0x0000
    assert s.record(uid).status == end  # type: ignore[union-attr]


# --- character sets (PS3.4 F.7.2.2.3) -----------------------------------------------------------


def test_character_sets_of_create_and_set_are_combined(assoc: Any, store: MPPSStore) -> None:
    ds = step(PatientName="Müller^Jörg")
    ds.SpecificCharacterSet = "ISO_IR 100"  # sent in Latin-1
    _, _, uid = create(assoc, ds)
    mod = Dataset()
    mod.SpecificCharacterSet = "ISO_IR 144"  # the comment in Cyrillic
    mod.CommentsOnThePerformedProcedureStep = "Снимок"
    assert code_of(assoc.send_n_set(mod, MPPS, uid)[0]) == 0x0000
    stored = store.get(uid)
    assert stored.SpecificCharacterSet == "ISO_IR 192"
    assert str(stored.PatientName) == "Müller^Jörg"
    assert stored.CommentsOnThePerformedProcedureStep == "Снимок"


# --- durability --------------------------------------------------------------------------------


def test_steps_survive_close_and_reopen(where: Where) -> None:
    path = where("storage")
    s = MPPSStore(path)
    if s.backend.name == "sqlite":
        assert s.path == os.path.join(path, WORKFLOW_DB)
        assert s.pragma("synchronous") == 2 and s.pragma("journal_mode") == "wal"
    srv = MPPSServer(s)
    ae = AE()
    ae.add_requested_context(MPPS)
    a = ae.associate("127.0.0.1", srv.port)
    uids = []
    for i in range(3):
        _, _, uid = create(a, step(study_uid=f"1.2.826.0.1.{i + 1}"))
        uids.append(uid)
    assert code_of(a.send_n_set(final(), MPPS, uids[0])[0]) == 0x0000
    a.release()
    srv.stop()
    before = {u: s.get(u) for u in uids}
    s.close()

    again = MPPSStore(path)
    try:
        assert {u: again.get(u) for u in uids} == before
        assert [r.status for r in again.find()] == [COMPLETED, IN_PROGRESS, IN_PROGRESS]
        with pytest.raises(MPPSError) as info:  # the state rules hold across a restart too
            again.update(uids[0], final())
        assert info.value.code == 0x0110
    finally:
        again.close()


_KILLED_SERVER = """
import sys
from dicomnet.ae import AE
from dicomnet.archive.mpps import MPPS_SOP_CLASS, MPPSStore, mpps_handlers
store = MPPSStore(sys.argv[1])
ae = AE(ae_title="MPPSSCP")
ae.add_supported_context(MPPS_SOP_CLASS)
server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=mpps_handlers(store))
print(server.address[1], flush=True)
sys.stdin.read()  # until the test kills us
"""


def test_acknowledged_step_survives_sigkill(where: Where) -> None:
    """The answer is sent after the commit: a server killed (SIGKILL, no close) right after
    answering has the step and its last change on disk."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    location = where("storage")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_SERVER, location],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)  # fmt: skip
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        ae = AE()
        ae.add_requested_context(MPPS)
        a = ae.associate("127.0.0.1", port, ae_title="MPPSSCP")
        _, _, uid = create(a)
        assert code_of(a.send_n_set(final(), MPPS, uid)[0]) == 0x0000
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        a.abort()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    with MPPSStore(location) as s:
        assert s.get(uid).PerformedProcedureStepStatus == COMPLETED


def test_two_stores_on_one_file_create_a_uid_once(where: Where) -> None:
    """Two processes serving one storage folder (qrscp --workers), or two nodes on one
    PostgreSQL database, share it: the UID's uniqueness is the database's, not the
    process's."""
    a, b = MPPSStore(where("storage")), MPPSStore(where("storage"))
    try:
        uid = generate_uid(prefix=None)
        results: list[int] = []
        barrier = threading.Barrier(2)

        def go(s: MPPSStore) -> None:
            barrier.wait()
            try:
                s.create(uid, step())
                results.append(0)
            except MPPSError as exc:
                results.append(exc.code)

        threads = [threading.Thread(target=go, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [0x0000, 0x0111]
    finally:
        a.close()
        b.close()


def test_two_nodes_on_one_postgresql_database(postgresql: Cluster) -> None:
    """Two archive nodes (one MPPSStore and server each) on one PostgreSQL database: a step
    created through one is updated through the other, the other's N-SET after the end is
    refused, and each node's outbox is one queue: forwarded in order, once."""
    url = postgresql.database()
    dest_store = MPPSStore(postgresql.database())
    dest = MPPSServer(dest_store)
    forward = [("MPPSSCP", "127.0.0.1", dest.port)]
    one, two = MPPSStore(url, forward=forward), MPPSStore(url, forward=forward)
    node1, node2 = MPPSServer(one), MPPSServer(two)
    try:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(MPPS)
        a1 = ae.associate("127.0.0.1", node1.port, ae_title="MPPSSCP")
        a2 = ae.associate("127.0.0.1", node2.port, ae_title="MPPSSCP")
        status, _, uid = create(a1, step(study_uid="1.2.826.0.3.1"))
        assert status == 0x0000
        mod = Dataset()
        mod.PerformedProcedureStepDescription = "on node 2"
        assert code_of(a2.send_n_set(mod, MPPS, uid)[0]) == 0x0000
        assert code_of(a2.send_n_set(final(), MPPS, uid)[0]) == 0x0000
        assert code_of(a1.send_n_set(final(), MPPS, uid)[0]) == 0x0110  # ended on node 2
        assert code_of(a2.send_n_create(step(), MPPS, uid)[0]) == 0x0111  # node 1's UID
        a1.release()
        a2.release()
        for s in (one, two):
            assert s.record(uid).status == COMPLETED  # type: ignore[union-attr]
            assert s.get(uid).PerformedProcedureStepDescription == "on node 2"
        assert two.find(series_uid="1.2.826.0.1.2")[0].sop_instance_uid == uid
        assert one.flush_forwards() == 0 and two.flush_forwards() == 0
        assert dest.wait_calls(3) == ["EVT_N_CREATE", "EVT_N_SET", "EVT_N_SET"]
        assert dest_store.record(uid).status == COMPLETED  # type: ignore[union-attr]
        assert one.failed_forwards() == []
    finally:
        for srv in (node1, node2, dest):
            srv.stop()
        for s in (one, two, dest_store):
            s.close()


# --- queries -----------------------------------------------------------------------------------


def test_queries(assoc: Any, store: MPPSStore) -> None:
    _, _, u1 = create(assoc, step(study_uid="1.2.826.0.2.1"))
    two = step(study_uid="1.2.826.0.2.2", Modality="MR", PatientID="PID2")
    two.ScheduledStepAttributesSequence.append(Dataset())
    two.ScheduledStepAttributesSequence[1].StudyInstanceUID = "1.2.826.0.2.1"
    _, _, u2 = create(assoc, two)
    _, _, u3 = create(assoc, step(study_uid="1.2.826.0.2.3", PerformedStationAETitle="CT02"))
    assert code_of(assoc.send_n_set(final(), MPPS, u3)[0]) == 0x0000

    assert [r.sop_instance_uid for r in store.find()] == [u1, u2, u3]
    assert [r.sop_instance_uid for r in store.find(status=IN_PROGRESS)] == [u1, u2]
    assert [r.sop_instance_uid for r in store.find(status=COMPLETED)] == [u3]
    assert [r.sop_instance_uid for r in store.steps_for_study("1.2.826.0.2.1")] == [u1, u2]
    assert [r.sop_instance_uid for r in store.find(study_uid="1.2.826.0.2.2")] == [u2]
    assert [r.sop_instance_uid for r in store.find(modality="MR")] == [u2]
    assert [r.sop_instance_uid for r in store.find(patient_id="PID2")] == [u2]
    assert [r.sop_instance_uid for r in store.find(station_ae_title="CT02")] == [u3]
    assert store.find(status=IN_PROGRESS, modality="MR", study_uid="1.2.826.0.2.2")[0].study_uids \
        == ("1.2.826.0.2.1", "1.2.826.0.2.2")  # fmt: skip
    assert store.find(status=DISCONTINUED) == [] and store.steps_for_study("9.9") == []
    assert store.record("9.9") is None
    with pytest.raises(KeyError):
        store.get("9.9")


# --- forwarding --------------------------------------------------------------------------------


def test_forwarding_delivers_in_order(where: Where) -> None:
    dest_store = MPPSStore(where("dest"))
    dest = MPPSServer(dest_store)
    src_store = MPPSStore(where("src"), forward=[("MPPSSCP", "127.0.0.1", dest.port)],
                          ae_title="ARCHIVE")  # fmt: skip
    src = MPPSServer(src_store)
    try:
        ae = AE()
        ae.add_requested_context(MPPS)
        a = ae.associate("127.0.0.1", src.port)
        _, _, uid = create(a, step(PatientName="Müller^Jörg"))
        mod = Dataset()
        mod.PerformedProcedureStepDescription = "first"
        assert code_of(a.send_n_set(mod, MPPS, uid)[0]) == 0x0000
        assert code_of(a.send_n_set(final(), MPPS, uid)[0]) == 0x0000
        a.release()
        assert dest.wait_calls(3) == ["EVT_N_CREATE", "EVT_N_SET", "EVT_N_SET"]
        got = dest_store.get(uid)
        assert got.PerformedProcedureStepStatus == COMPLETED
        assert got.PerformedProcedureStepDescription == "first"
        assert str(got.PatientName) == "Müller^Jörg"
        assert dest_store.record(uid).calling_ae_title == "ARCHIVE"  # type: ignore[union-attr]
        assert src_store.flush_forwards() == 0
        assert src_store.pending_forwards() == [] and src_store.failed_forwards() == []
    finally:
        src.stop()
        src_store.close()
        dest.stop()
        dest_store.close()


def test_forwarding_keeps_and_retries_while_destination_is_down(where: Where) -> None:
    port = free_port()  # nothing listens there yet
    src_store = MPPSStore(where("src"), forward=[("MPPSSCP", "127.0.0.1", port)])
    src = MPPSServer(src_store)
    dest_store = MPPSStore(where("dest"))
    dest: MPPSServer | None = None
    try:
        ae = AE()
        ae.add_requested_context(MPPS)
        a = ae.associate("127.0.0.1", src.port)
        _, _, uid = create(a)
        # the answer does not wait for forwarding; the destination is down: the row stays
        assert src_store.flush_forwards() == 1
        assert src_store.pending_forwards() == [(f"MPPSSCP@127.0.0.1:{port}", uid, "create")]
        [(attempts, error)] = src_store.backend.fetch("SELECT attempts, last_error FROM mpps_outbox")
        assert attempts >= 1 and "association" in error

        dest = MPPSServer(dest_store, port=port)
        # the next event (this N-SET) sends both, in order
        assert code_of(a.send_n_set(final(), MPPS, uid)[0]) == 0x0000
        a.release()
        assert dest.wait_calls(2) == ["EVT_N_CREATE", "EVT_N_SET"]
        assert dest_store.record(uid).status == COMPLETED  # type: ignore[union-attr]
        assert src_store.flush_forwards() == 0
    finally:
        src.stop()
        src_store.close()
        if dest is not None:
            dest.stop()
        dest_store.close()


def test_forwarding_sets_refusals_aside(where: Where) -> None:
    """A destination's failure status is final for that request: marked failed, the queue goes
    on. A duplicate N-CREATE (0111H) counts as delivered."""
    dest_store = MPPSStore(where("dest"))
    dest = MPPSServer(dest_store)
    uid = generate_uid(prefix=None)
    dest_store.create(uid, step())  # the destination already has the step, and closed it
    dest_store.update(uid, final(DISCONTINUED))
    src_store = MPPSStore(where("src"), forward=[("MPPSSCP", "127.0.0.1", dest.port)])
    src = MPPSServer(src_store)
    try:
        ae = AE()
        ae.add_requested_context(MPPS)
        a = ae.associate("127.0.0.1", src.port)
        _, _, got = create(a, uid=uid)
        assert got == uid
        assert code_of(a.send_n_set(final(), MPPS, uid)[0]) == 0x0000
        _, _, other = create(a)
        a.release()
        assert dest.wait_calls(3) == ["EVT_N_CREATE", "EVT_N_SET", "EVT_N_CREATE"]
        assert src_store.flush_forwards() == 0
        key = f"MPPSSCP@127.0.0.1:{dest.port}"
        assert src_store.failed_forwards() == [(key, uid, "set", 0x0110)]
        assert dest_store.record(uid).status == DISCONTINUED  # type: ignore[union-attr]
        assert dest_store.record(other) is not None
    finally:
        src.stop()
        src_store.close()
        dest.stop()
        dest_store.close()


def test_pending_rows_are_sent_at_the_next_start(where: Where) -> None:
    port = free_port()
    s = MPPSStore(where("src"), forward=[("MPPSSCP", "127.0.0.1", port)])
    uid = generate_uid(prefix=None)
    s.create(uid, step())
    assert s.flush_forwards() == 1
    s.close()
    dest_store = MPPSStore(where("dest"))
    dest = MPPSServer(dest_store, port=port)
    again = MPPSStore(where("src"), forward=[("MPPSSCP", "127.0.0.1", port)])
    try:
        assert dest.wait_calls(1) == ["EVT_N_CREATE"]  # the start is an event
        assert dest_store.get(uid).PerformedProcedureStepStatus == IN_PROGRESS
        assert again.flush_forwards() == 0
    finally:
        again.close()
        dest.stop()
        dest_store.close()


def test_handlers_are_the_two_n_services(store: MPPSStore) -> None:
    handlers = mpps_handlers(store)
    assert [t for t, _ in handlers] == [evt.EVT_N_CREATE, evt.EVT_N_SET]
    # what a caller sharing EVT_N_CREATE / EVT_N_SET with other services routes by
    assert all(getattr(h, "sop_classes", None) == frozenset({MPPS}) for _, h in handlers)
