"""The dicomnet Modality Worklist SCP and DCMTK's wlmscpfs answer the same ``findscu -W`` queries
over the same worklist files with the same identifiers.

Six worklist items (CT, MR, US, CR; four days; five station AE titles; a Cyrillic name in
ISO_IR 144 and a German one in ISO_IR 100) are written once as ``.wl`` files into the layout
wlmscpfs wants (``<data>/<called AE title>/*.wl`` plus a ``lockfile``); the dicomnet store serves
that very folder (the lockfile is skipped as a non-DICOM file). Every query runs through DCMTK's
``findscu -W -X`` against both servers and the extracted responses are compared.

Normalisation of a response before comparing (each one is a rule of PS3.4 or a free choice of
the SCP, never a difference in what matched or what was returned):

* Responses are compared as a sorted list: K.4.1.2 (as C.4.1.2) defines no order of matches.
* Values are compared as Unicode after each side's response was decoded by pydicom with that
  response's own Specific Character Set, trailing padding (space, NUL) removed (PS3.5 6.2).
* Specific Character Set (0008,0005) is compared only when a response holds non-ASCII text
  (then both answer in the item's own: wlmscpfs ``-csk`` copies the file's term, dicomnet uses
  the item's when the request names none). wlmscpfs also copies the term into all-ASCII
  responses that have a text element; dicomnet then declares none. Both are valid: without
  the attribute the default repertoire applies (PS3.5 6.1.2.2) and ASCII values are in it;
  K.4.1.1.3.2 (as C.4.1.1.3.2) lets the SCP choose the character set of a response.
* A sequence key given with an empty item (or zero length) asks for the whole sequence
  (C.2.2.2.6). wlmscpfs expands it into the attributes it knows, zero-length where the item
  has none; dicomnet returns the stored items as they are. For that query only, zero-length
  elements inside the sequence are dropped from both sides.

Where the answers differ by design, the test asserts the difference and says which reading of
the standard each side takes (:func:`test_person_name_case`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.archive.worklist import (
    WorklistStore,
    add_worklist_context,
    worklist_handler,
)
from tests.conftest import free_port, require_dcmtk

pytestmark = pytest.mark.interop

CALLED = "WLSCP"
ENV = {**os.environ, "TCP_NODELAY": "1"}
SPS = "ScheduledProcedureStepSequence"

# name, patient id, accession, modality, station AE, start date, start time, physician, charset
ITEMS = [
    ("Doe^John", "PID001", "ACC0001", "CT", "CT1", "20240105", "080000", "Smith^Anna", None),
    ("Doe^Jane", "PID002", "ACC0002", "MR", "MR1", "20240105", "113000", "Jones^Bob", None),
    ("Roe^Richard", "PID003", "ACC0003", "CT", "CT2", "20240106", "070000", "Smith^Anna", None),
    ("Smith^Al", "PID004", "ACC0004", "US", "US1", "20240106", "143000", "Brown^Carl", None),
    ("Иванов^Иван", "PID005", "ACC0005", "MR", "MR1", "20240107", "090000", "Петров^Пётр",
     "ISO_IR 144"),
    ("Müller^Jörg", "PID006", "ACC0006", "CR", "CR1", "20240108", "160000", "Weiß^Eva",
     "ISO_IR 100"),
]  # fmt: skip


def write_items(folder: Path) -> None:
    """The worklist files, complete enough for wlmscpfs not to reject them (it wants Type 1
    attributes such as Requested Procedure ID and a description or code for the procedure)."""
    folder.mkdir(parents=True)
    (folder / "lockfile").write_bytes(b"")
    for i, (name, pid, acc, modality, station, date, tm, doctor, charset) in enumerate(ITEMS, 1):
        ds = Dataset()
        if charset:
            ds.SpecificCharacterSet = charset
        ds.PatientName = name
        ds.PatientID = pid
        ds.PatientBirthDate = f"19{60 + i}0101"
        ds.PatientSex = "MF"[i % 2]
        ds.AccessionNumber = acc
        ds.ReferringPhysicianName = "Ref^Doctor"
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.1234.{i}"
        ds.RequestedProcedureID = f"RP{i:04d}"
        ds.RequestedProcedureDescription = f"{modality} exam {i}"
        step = Dataset()
        step.ScheduledStationAETitle = station
        step.ScheduledProcedureStepStartDate = date
        step.ScheduledProcedureStepStartTime = tm
        step.Modality = modality
        step.ScheduledPerformingPhysicianName = doctor
        step.ScheduledProcedureStepDescription = f"step {i}"
        step.ScheduledProcedureStepID = f"SPS{i:04d}"
        code = Dataset()
        code.CodeValue = f"P{i}"
        code.CodingSchemeDesignator = "99DICOMNET"
        code.CodeMeaning = f"protocol {i}"
        step.ScheduledProtocolCodeSequence = Sequence([code])
        ds.ScheduledProcedureStepSequence = Sequence([step])
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
        ds.file_meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"
        ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.1234.99.{i}"
        ds.save_as(folder / f"item{i}.wl", enforce_file_format=True)


@dataclass
class Servers:
    dicomnet_port: int
    dcmtk_port: int
    findscu: str
    workdir: Path


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"wlmscpfs exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # test code: waiting for another process to listen
    raise AssertionError(f"wlmscpfs is not listening on {port}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    wlmscpfs = require_dcmtk("wlmscpfs")
    findscu = require_dcmtk("findscu")
    workdir = tmp_path_factory.mktemp("worklist")
    data = workdir / "data"
    write_items(data / CALLED)
    store = WorklistStore(data / CALLED)
    ae = AE(CALLED)
    add_worklist_context(ae)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_FIND, worklist_handler(store))])  # fmt: skip
    port = free_port()
    # -s: one process (nothing forked to clean up); -csk: answer in the file's character set
    log = open(workdir / "wlmscpfs.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([wlmscpfs, "-s", "-csk", "-dfp", str(data), str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=ENV)  # fmt: skip
    try:
        _wait_for_port(proc, port)
        yield Servers(server.address[1], port, findscu, workdir)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
        server.shutdown()


_counter = iter(range(1_000_000))


def query(servers: Servers, port: int, keys: list[str]) -> list[Dataset]:
    out = servers.workdir / f"out{next(_counter)}"
    out.mkdir()
    args = [servers.findscu, "-W", "-aet", "MODALITY", "-aec", CALLED, "-X", "-od", str(out),
            "-to", "10", "-ts", "30", "127.0.0.1", str(port)]  # fmt: skip
    for key in keys:
        args += ["-k", key]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    return [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def _plain(value: Any) -> Any:
    if isinstance(value, PersonName | str):
        return str(value).rstrip(" \0")
    if isinstance(value, MultiValue | list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, bytes):
        return value.rstrip(b" \0")
    return value


def canonical(ds: Dataset, *, drop_empty_in: frozenset[str] = frozenset(), inside: bool = False,
              ) -> tuple[Any, ...]:  # fmt: skip
    """A comparable form of a response (see the module docstring)."""
    out: list[tuple[Any, ...]] = []
    has_non_ascii = False
    for elem in ds:
        if elem.tag.group == 0x0002 or elem.keyword == "SpecificCharacterSet":
            continue
        if elem.VR == "SQ":
            drop = inside or elem.keyword in drop_empty_in
            items = tuple(canonical(item, drop_empty_in=drop_empty_in, inside=drop)
                          for item in elem.value)  # fmt: skip
            out.append((elem.keyword, items))
            continue
        value = _plain(elem.value)
        if inside and value in ("", None, ()):
            continue
        has_non_ascii |= isinstance(value, str) and not value.isascii()
        out.append((elem.keyword, value))
    if not inside and has_non_ascii:
        out.append(("SpecificCharacterSet", str(ds.get("SpecificCharacterSet", ""))))
    return tuple(out)


def both(servers: Servers, keys: list[str], *,
         drop_empty_in: frozenset[str] = frozenset()) -> tuple[list[Any], list[Any]]:  # fmt: skip
    ours = sorted(canonical(d, drop_empty_in=drop_empty_in)
                  for d in query(servers, servers.dicomnet_port, keys))  # fmt: skip
    theirs = sorted(canonical(d, drop_empty_in=drop_empty_in)
                    for d in query(servers, servers.dcmtk_port, keys))  # fmt: skip
    return ours, theirs


def patient_ids(answers: list[Any]) -> list[str]:
    return sorted(dict(a)["PatientID"] for a in answers)


# The queries: (name, findscu -k keys, expected Patient IDs -- so each query is known to select
# something specific, not just "both empty").
QUERIES: list[tuple[str, list[str], list[str]]] = [
    ("by modality", [f"{SPS}[0].Modality=MR", "PatientName", "PatientID",
                     f"{SPS}[0].ScheduledStationAETitle"], ["PID002", "PID005"]),
    ("by date range", [f"{SPS}[0].ScheduledProcedureStepStartDate=20240105-20240106",
                       "PatientID", f"{SPS}[0].ScheduledProcedureStepStartTime"],
     ["PID001", "PID002", "PID003", "PID004"]),
    ("open date range", [f"{SPS}[0].ScheduledProcedureStepStartDate=20240107-", "PatientID",
                         "PatientName"], ["PID005", "PID006"]),
    # one period, the 5th 10:00 to the 6th 15:00: the 6th 07:00 is in it although 07:00 is not
    # within 10:00-15:00; the 5th 08:00 is not
    ("combined date and time range",
     [f"{SPS}[0].ScheduledProcedureStepStartDate=20240105-20240106",
      f"{SPS}[0].ScheduledProcedureStepStartTime=1000-1500", "PatientID"],
     ["PID002", "PID003", "PID004"]),
    ("by scheduled station AE title", [f"{SPS}[0].ScheduledStationAETitle=CT2", "PatientName",
                                       "PatientID", "AccessionNumber"], ["PID003"]),
    ("by patient name wildcard", ["PatientName=Doe*", "PatientID", "PatientBirthDate"],
     ["PID001", "PID002"]),
    ("by patient name single-character wildcard", ["PatientName=Do?^Ja*", "PatientID"],
     ["PID002"]),
    ("by accession number", ["AccessionNumber=ACC0003", "PatientName", "PatientID",
                             "RequestedProcedureID", "StudyInstanceUID"], ["PID003"]),
    ("by performing physician wildcard", [f"{SPS}[0].ScheduledPerformingPhysicianName=Smith*",
                                          "PatientID", f"{SPS}[0].Modality"],
     ["PID001", "PID003"]),
    ("universal", ["PatientName", "PatientID", "AccessionNumber", "PatientBirthDate",
                   "PatientSex", "ReferringPhysicianName"],
     ["PID001", "PID002", "PID003", "PID004", "PID005", "PID006"]),
    ("return keys inside the step", [f"{SPS}[0].Modality=CT", "PatientID",
                                     f"{SPS}[0].ScheduledPerformingPhysicianName",
                                     f"{SPS}[0].ScheduledProcedureStepDescription",
                                     f"{SPS}[0].ScheduledProcedureStepID",
                                     f"{SPS}[0].ScheduledProcedureStepLocation",  # absent: empty
                                     f"{SPS}[0].ScheduledProcedureStepStartDate",
                                     f"{SPS}[0].ScheduledProcedureStepStartTime"],
     ["PID001", "PID003"]),
    ("non-Latin answer", ["PatientID=PID005", "PatientName", "RequestedProcedureDescription",
                          f"{SPS}[0].ScheduledPerformingPhysicianName"], ["PID005"]),
    ("Latin-1 answer", ["PatientID=PID006", "PatientName",
                        f"{SPS}[0].ScheduledPerformingPhysicianName"], ["PID006"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "keys", "expected"), QUERIES, ids=[q[0] for q in QUERIES])
def test_same_answers(servers: Servers, name: str, keys: list[str], expected: list[str]) -> None:
    ours, theirs = both(servers, keys)
    assert patient_ids(ours) == expected, name
    assert ours == theirs, name


def test_whole_sequence_on_empty_item(servers: Servers) -> None:
    """``-k ScheduledProcedureStepSequence`` (zero length): every attribute of the step. After
    dropping the zero-length attributes wlmscpfs adds (module docstring), the same."""
    keys = ["PatientID=PID002", "PatientName", SPS]
    ours, theirs = both(servers, keys, drop_empty_in=frozenset({SPS}))
    assert patient_ids(ours) == ["PID002"]
    step = dict(dict(ours[0])[SPS][0])
    assert step["Modality"] == "MR" and step["ScheduledProcedureStepID"] == "SPS0002"
    # nested sequences come whole too (C.2.2.2.6: "the entire Sequence of Items")
    assert dict(step["ScheduledProtocolCodeSequence"][0])["CodeValue"] == "P2"
    assert ours == theirs


def test_person_name_case(servers: Servers) -> None:
    """A difference by design: ``doe*``. PS3.4 C.2.2.2.1 lets an SCP match PN values literally,
    case-sensitively or insensitive to case; dicomnet matches person names case-insensitively
    (as its archive C-FIND does), wlmscpfs compares bytes. Both conform; dicomnet finds the two
    Does, wlmscpfs nothing."""
    ours, theirs = both(servers, ["PatientName=doe*", "PatientID"])
    assert patient_ids(ours) == ["PID001", "PID002"]
    assert theirs == []
    # with the stored case both agree
    ours, theirs = both(servers, ["PatientName=Doe*", "PatientID"])
    assert ours == theirs and patient_ids(ours) == ["PID001", "PID002"]


def test_dicomnet_serves_a_file_dropped_in(servers: Servers, tmp_path: Path) -> None:
    """The same folder, changed while both servers run: wlmscpfs reads it per query too."""
    folder = servers.workdir / "data" / CALLED
    extra = tmp_path / "extra"
    write_items(extra)
    dropped = folder / "item7.wl"
    os.replace(extra / "item2.wl", dropped)  # a second copy of item 2, under a new name
    try:
        ours, theirs = both(servers, ["PatientID=PID002", "AccessionNumber"])
        assert ours == theirs and len(ours) == 2
    finally:
        dropped.unlink()
    ours, theirs = both(servers, ["PatientID=PID002", "AccessionNumber"])
    assert ours == theirs and len(ours) == 1
