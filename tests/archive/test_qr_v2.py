"""The archive's data model and query service as the standard models them (issue 13).

Against a running ``dicomnet qrscp``, with DCMTK's tools, pynetdicom and our own:

* patients are (Patient ID, Issuer of Patient ID); a STUDY query matches the patient name each
  study was stored with, a PATIENT query the latest (PS3.4 C.6.2.1.2);
* a Study Instance UID arriving under another patient is refused (A778) or, with
  ``--study-conflict accept``, kept beside the first;
* dates are returned as stored (ACR-NEMA ``1997.04.24``) and matched by meaning;
* SOP class extended negotiation (56H, PS3.4 C.5) answered from the bytes a real pynetdicom
  SCU sent (captured, ``tests/data/extneg``); relational queries answered by default, refused
  with A900 under ``--strict-hierarchical`` unless negotiated;
* non-patient objects (Hanging Protocol, Color Palette) stored, found with their own C-FIND
  models and retrieved by SOP Instance UID (Composite Instance Root, Annex Y);
* every storage SOP class of PS3.4 Annex B, retired ones included, is accepted; unknown ones
  with ``--promiscuous``;
* an index written by the previous release is upgraded in place.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from dicomnet import AE
from tests.cli.helpers import make_dataset, run_tool, write_part10
from tests.conftest import require_dcmtk
from tests.hostile.harness import Peer, ServerProcess

DATA = Path(__file__).resolve().parents[1] / "data"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
HP_STORAGE, HP_FIND, HP_GET = ("1.2.840.10008.5.1.4.38.1", "1.2.840.10008.5.1.4.38.2",
                               "1.2.840.10008.5.1.4.38.4")  # fmt: skip
CP_STORAGE, CP_FIND = "1.2.840.10008.5.1.4.39.1", "1.2.840.10008.5.1.4.39.2"
COMPOSITE_GET = "1.2.840.10008.5.1.4.1.2.4.3"
WITHOUT_BULK_GET = "1.2.840.10008.5.1.4.1.2.5.3"
ROOT = "1.2.826.0.1.3680043.10.999.13"


def _archive(root: Path, *extra: str) -> ServerProcess:
    return ServerProcess("qrscp", root, ["--storage", str(root / "storage"), "-aet", "ARCHIVE",
                                         "--durability", "fast", *extra])  # fmt: skip


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[ServerProcess]:
    server = _archive(tmp_path).start()
    yield server
    server.stop()


def _store(port: int, *paths: Path, aet: str = "ARCHIVE") -> subprocess.CompletedProcess[str]:
    return run_tool(["storescu", "127.0.0.1", str(port), "-aec", aet, "-v", *map(str, paths)])


def _find(port: int, level: str, model: str = "-S", *keys: str) -> list[Dataset]:
    """Matches of our findscu (--json), decoded."""
    import json

    r = run_tool(["findscu", "127.0.0.1", str(port), "-aec", "ARCHIVE", model, "--json",
                  "-k", f"QueryRetrieveLevel={level}", *[a for k in keys for a in ("-k", k)]])
    assert r.returncode == 0, r.stderr
    return [Dataset.from_json(d) for d in json.loads(r.stdout)]


def _ct(path: Path, **kw: Any) -> Path:
    return write_part10(make_dataset(rows=4, columns=4, **kw), path)


# --- patients and studies ---------------------------------------------------------------------


def test_study_keeps_the_patient_it_arrived_with(archive: ServerProcess, tmp_path: Path) -> None:
    first = _ct(tmp_path / "a.dcm", patient_id="P13", patient_name="SMITH^ANNA",
                study_uid=f"{ROOT}.1", series_uid=f"{ROOT}.1.1")  # fmt: skip
    later = _ct(tmp_path / "b.dcm", patient_id="P13", patient_name="JONES^ANNA",
                study_uid=f"{ROOT}.2", series_uid=f"{ROOT}.2.1")  # fmt: skip
    assert _store(archive.port, first, later).returncode == 0
    # STUDY level (Study Root): each study answers with, and matches on, its own name
    studies = _find(archive.port, "STUDY", "-S", "PatientName=SMITH^ANNA", "StudyInstanceUID=")
    assert [s.StudyInstanceUID for s in studies] == [f"{ROOT}.1"]
    assert str(studies[0].PatientName) == "SMITH^ANNA"
    # PATIENT level: one patient, the latest name, two studies
    patients = _find(archive.port, "PATIENT", "-P", "PatientID=P13", "PatientName=",
                     "NumberOfPatientRelatedStudies=")  # fmt: skip
    assert len(patients) == 1
    assert str(patients[0].PatientName) == "JONES^ANNA"
    assert int(patients[0].NumberOfPatientRelatedStudies) == 2


def test_issuer_of_patient_id_separates_patients(archive: ServerProcess, tmp_path: Path) -> None:
    files = []
    for n, issuer in enumerate(("HOSP-A", "HOSP-B")):
        ds = make_dataset(patient_id="SAME13", patient_name=f"PERSON^{issuer}", rows=4,
                          columns=4, study_uid=f"{ROOT}.3.{n}", series_uid=f"{ROOT}.3.{n}.1")  # fmt: skip
        ds.IssuerOfPatientID = issuer
        files.append(write_part10(ds, tmp_path / f"i{n}.dcm"))
    assert _store(archive.port, *files).returncode == 0
    patients = _find(archive.port, "PATIENT", "-P", "PatientID=SAME13", "IssuerOfPatientID=",
                     "PatientName=")  # fmt: skip
    assert sorted(p.IssuerOfPatientID for p in patients) == ["HOSP-A", "HOSP-B"]
    one = _find(archive.port, "STUDY", "-S", "PatientID=SAME13", "IssuerOfPatientID=HOSP-B",
                "StudyInstanceUID=")  # fmt: skip
    assert [s.StudyInstanceUID for s in one] == [f"{ROOT}.3.1"]


def test_study_under_another_patient_is_a_conflict(tmp_path: Path) -> None:
    storescu = require_dcmtk("storescu")
    a = _ct(tmp_path / "a.dcm", patient_id="OWNER", study_uid=f"{ROOT}.4", series_uid=f"{ROOT}.4.1")
    b = _ct(tmp_path / "b.dcm", patient_id="INTRUDER", study_uid=f"{ROOT}.4",
            series_uid=f"{ROOT}.4.2")  # fmt: skip
    for policy in ("reject", "accept"):
        server = _archive(tmp_path / policy, "--study-conflict", policy).start()
        try:
            assert _store(server.port, a).returncode == 0
            r = subprocess.run([storescu, "-v", "-aec", "ARCHIVE", "127.0.0.1", str(server.port),
                                str(b)], capture_output=True, text=True, timeout=60)  # fmt: skip
            studies = _find(server.port, "STUDY", "-S", f"StudyInstanceUID={ROOT}.4",
                            "PatientID=")  # fmt: skip
            owners = sorted(s.PatientID for s in studies)
            if policy == "reject":
                # A778 (the status dcm4chee answers), a Refused (A7xx) to DCMTK
                assert "Refused" in r.stderr, r.stderr
                ours = _store(server.port, b)
                assert "0xA778" in ours.stdout + ours.stderr, ours.stdout + ours.stderr
                assert owners == ["OWNER"]
                assert "stored for patient 'OWNER'" in server.stderr_text()
            else:
                assert r.returncode == 0, r.stderr
                assert owners == ["INTRUDER", "OWNER"]
        finally:
            server.stop()


def test_legacy_dates_returned_as_stored_matched_by_meaning(archive: ServerProcess,
                                                            tmp_path: Path) -> None:  # fmt: skip
    f = _ct(tmp_path / "old.dcm", study_uid=f"{ROOT}.5", series_uid=f"{ROOT}.5.1",
            study_date="1997.04.24", patient_id="ACRNEMA")  # fmt: skip
    assert _store(archive.port, f).returncode == 0
    found = _find(archive.port, "STUDY", "-S", "StudyDate=19970401-19970430", "PatientID=ACRNEMA")
    assert len(found) == 1 and found[0].StudyDate == "1997.04.24"
    assert _find(archive.port, "STUDY", "-S", "StudyDate=19970425-", "PatientID=ACRNEMA") == []


def test_duplicates_keep_the_first_copy_unless_overwrite(tmp_path: Path) -> None:
    first = _ct(tmp_path / "a.dcm", study_uid=f"{ROOT}.6", series_uid=f"{ROOT}.6.1",
                sop_uid=f"{ROOT}.6.1.1", study_description="ORIGINAL")  # fmt: skip
    second = _ct(tmp_path / "b.dcm", study_uid=f"{ROOT}.6", series_uid=f"{ROOT}.6.1",
                 sop_uid=f"{ROOT}.6.1.1", study_description="CHANGED")  # fmt: skip
    for flag, kept in (((), "ORIGINAL"), (("--overwrite",), "CHANGED")):
        server = _archive(tmp_path / (flag[0][2:] if flag else "keep"), *flag).start()
        try:
            assert _store(server.port, first).returncode == 0
            assert _store(server.port, second).returncode == 0  # Success either way
            found = _find(server.port, "STUDY", "-S", f"StudyInstanceUID={ROOT}.6",
                          "StudyDescription=")  # fmt: skip
            assert [s.StudyDescription for s in found] == [kept]
        finally:
            server.stop()


# --- extended negotiation (56H) -----------------------------------------------------------------


def _ext(items: Any) -> dict[str, bytes]:
    return {i.sop_class_uid: i.service_class_application_information for i in items}


def test_extended_negotiation_answered_from_captured_pynetdicom_rq(tmp_path: Path) -> None:
    """The A-ASSOCIATE-RQ pynetdicom sent (captured) offers FIND 01 01 01 01, MOVE 01, GET
    01 00: the archive echoes every option it performs (PS3.4 C.5.1.1, C.5.2.1, C.5.3.1)."""
    from dicomnet.ul.codec import decode_pdu
    from dicomnet.ul.pdu import AAssociateAC

    raw = (DATA / "extneg" / "pynetdicom-associate-rq.bin").read_bytes()
    rq = decode_pdu(raw)
    assert _ext(rq.user_information.extended_negotiations) == {  # type: ignore[union-attr]
        STUDY_FIND: b"\x01\x01\x01\x01", "1.2.840.10008.5.1.4.1.2.1.2": b"\x01",
        STUDY_GET: b"\x01\x00"}  # fmt: skip
    server = ServerProcess("qrscp", tmp_path, ["--storage", str(tmp_path / "s"), "-aet",
                                               "DICOMNET", "--strict-hierarchical"]).start()
    try:
        for negotiated, expected in ((True, 0x0000), (False, 0xA900)):
            with Peer(server.port) as peer:
                if negotiated:
                    peer.send(raw)
                    ac = peer.read_pdu()
                    assert isinstance(ac, AAssociateAC)
                    assert _ext(ac.user_information.extended_negotiations) == {
                        STUDY_FIND: b"\x01\x01\x01\x01", "1.2.840.10008.5.1.4.1.2.1.2": b"\x01",
                        STUDY_GET: b"\x01\x00"}  # fmt: skip
                else:  # the same request without its 56H items
                    from dataclasses import replace

                    from dicomnet.ul.codec import encode_pdu
                    from dicomnet.ul.pdu import UserInformation

                    ui = rq.user_information  # type: ignore[union-attr]
                    plain = UserInformation(tuple(i for i in ui.sub_items
                                                  if type(i).__name__ != "SOPClassExtendedNegotiation"))
                    peer.send(encode_pdu(replace(rq, user_information=plain)))  # type: ignore[type-var]
                    assert isinstance(peer.read_pdu(), AAssociateAC)
                # the captured relational C-FIND (SERIES level, no Study Instance UID)
                peer.send((DATA / "extneg" / "pynetdicom-find-command.bin").read_bytes())
                peer.send((DATA / "extneg" / "pynetdicom-find-identifier.bin").read_bytes())
                assert peer.read_message().status == expected
                peer.release()
    finally:
        server.stop()


def test_relational_and_fuzzy_with_our_findscu(archive: ServerProcess, tmp_path: Path) -> None:
    f = _ct(tmp_path / "z.dcm", patient_id="FUZZ", patient_name="Müller^Zoë",
            study_uid=f"{ROOT}.7", series_uid=f"{ROOT}.7.1", study_date="20060706")  # fmt: skip
    ds = dcmread(f)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyTime = "120000"
    ds.save_as(f)
    assert _store(archive.port, f).returncode == 0
    base = ["findscu", "127.0.0.1", str(archive.port), "-aec", "ARCHIVE", "-S", "--json"]

    def count(*args: str) -> int:
        import json

        r = run_tool([*base, *args])
        assert r.returncode == 0, r.stderr
        return len(json.loads(r.stdout))

    # relational: a SERIES query without the study key
    assert count("-k", "QueryRetrieveLevel=SERIES", "-k", f"SeriesInstanceUID={ROOT}.7.1") == 1
    # fuzzy semantic matching (negotiated): accents and case ignored
    name = ["-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=MULLER^ZOE"]
    assert count(*name) == 0
    assert count("--fuzzy-names", *name) == 1
    # combined date-time: 5th 10:00 .. 7th 18:00 covers the 6th at noon; separate matching
    # asks for 10:00-18:00 on each day, which also covers it -- 14:00-18:00 tells them apart
    dt = ["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDate=20060705-20060707",
          "-k", "StudyTime=1400-1800", "-k", "PatientID=FUZZ"]  # fmt: skip
    assert count(*dt) == 0
    assert count("--combine-datetime", *dt) == 1


# --- non-patient objects -------------------------------------------------------------------------


def _nonpatient(path: Path, sop_class: str, sop: str, **attrs: Any) -> Path:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.save_as(path, enforce_file_format=True)
    return path


def test_hanging_protocol_and_color_palette(archive: ServerProcess, tmp_path: Path) -> None:
    item = Dataset()
    item.Modality = "CT"
    hp = _nonpatient(tmp_path / "hp.dcm", HP_STORAGE, f"{ROOT}.8.1",
                     HangingProtocolName="CHEST-2X1", HangingProtocolDescription="two up",
                     HangingProtocolLevel="SITE", HangingProtocolCreator="DR WHO",
                     HangingProtocolCreationDateTime="20240101120000",
                     HangingProtocolDefinitionSequence=Sequence([item]),
                     NumberOfPriorsReferenced=0)  # fmt: skip
    cp = _nonpatient(tmp_path / "cp.dcm", CP_STORAGE, f"{ROOT}.8.2", ContentLabel="HOTIRON",
                     ContentDescription="hot iron")  # fmt: skip
    r = _store(archive.port, hp, cp)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (archive.workdir / "storage" / "_nonpatient" / HP_STORAGE / f"{ROOT}.8.1.dcm").is_file()
    ae = AE(ae_title="VIEWER")
    for uid in (HP_FIND, CP_FIND, HP_GET, COMPOSITE_GET):
        ae.add_requested_context(uid)
    for uid in (HP_STORAGE, CP_STORAGE):
        ae.add_requested_context(uid, scu_role=False, scp_role=True)
    received: list[Dataset] = []

    from dicomnet import events as evt

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0

    assoc = ae.associate("127.0.0.1", archive.port, ae_title="ARCHIVE",
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    assert assoc.is_established
    try:
        q = Dataset()
        q.HangingProtocolName = "CHEST*"
        q.HangingProtocolLevel = ""
        q.SOPInstanceUID = ""
        seq_item = Dataset()
        seq_item.Modality = "CT"
        q.HangingProtocolDefinitionSequence = Sequence([seq_item])  # sequence matching
        found = [ds for st, ds in assoc.send_c_find(q, HP_FIND) if st.Status in (0xFF00, 0xFF01)]
        assert [d.SOPInstanceUID for d in found] == [f"{ROOT}.8.1"]
        assert found[0].HangingProtocolLevel == "SITE"
        assert "QueryRetrieveLevel" not in found[0]  # a single-level model (PS3.4 U.4.1)
        seq_item.Modality = "MR"
        assert [ds for st, ds in assoc.send_c_find(q, HP_FIND) if st.Status == 0xFF00] == []
        c = Dataset()
        c.ContentLabel = "HOT*"
        c.ContentDescription = ""
        found = [ds for st, ds in assoc.send_c_find(c, CP_FIND) if st.Status == 0xFF00]
        assert [(d.SOPInstanceUID, d.ContentDescription) for d in found] == [
            (f"{ROOT}.8.2", "hot iron")]
        # retrieved by SOP Instance UID: the model's own GET and Composite Instance Root
        for model, sop in ((HP_GET, f"{ROOT}.8.1"), (COMPOSITE_GET, f"{ROOT}.8.2")):
            g = Dataset()
            if model == COMPOSITE_GET:
                g.QueryRetrieveLevel = "IMAGE"
            g.SOPInstanceUID = sop
            final = list(assoc.send_c_get(g, model))[-1][0]
            assert final.Status == 0x0000, final
        assert [d.SOPInstanceUID for d in received] == [f"{ROOT}.8.1", f"{ROOT}.8.2"]
    finally:
        assoc.release()


# --- what is accepted -----------------------------------------------------------------------------


def test_every_storage_class_accepted_and_unknown_with_promiscuous(tmp_path: Path) -> None:
    """Every storage SOP class in pydicom's dictionary of PS3.6 (retired ones included) is
    accepted; a private one only with --promiscuous."""
    from pydicom._uid_dict import UID_dictionary

    from dicomnet.presentation import build_context

    classes = sorted(uid for uid, (name, kind, *_rest) in UID_dictionary.items()
                     if kind == "SOP Class" and "Storage" in name and "Commitment" not in name
                     and "Retrieve" not in name and "Query" not in name
                     and "Media Storage" not in name)  # fmt: skip
    assert len(classes) > 150
    private = "1.2.826.0.1.3680043.10.999.13.99.1"
    for flag in ((), ("--promiscuous",)):
        server = _archive(tmp_path / ("p" if flag else "n"), *flag).start()
        try:
            accepted: set[str] = set()
            uids = [*classes, private]
            for start in range(0, len(uids), 120):  # PS3.8: at most 128 contexts each
                ae = AE(ae_title="STORER")
                contexts = [build_context(u) for u in uids[start:start + 120]]
                assoc = ae.associate("127.0.0.1", server.port, contexts=contexts,
                                     ae_title="ARCHIVE")  # fmt: skip
                assert assoc.is_established
                accepted |= {cx.abstract_syntax for cx in assoc.accepted_contexts}
                assoc.release()
            assert set(classes) <= accepted
            assert (private in accepted) == bool(flag)
        finally:
            server.stop()


def test_index_of_the_previous_release_is_upgraded(tmp_path: Path) -> None:
    """tests/data/archive_v1 was written by the release before (Patient ID alone, one name per
    patient, absolute paths of another folder): copied elsewhere, the archive upgrades it on
    start, each study finds its own patient name again and its files are served."""
    storage = tmp_path / "storage"
    shutil.copytree(DATA / "archive_v1", storage)
    server = ServerProcess("qrscp", tmp_path, ["--storage", str(storage), "-aet",
                                               "ARCHIVE"]).start()  # fmt: skip
    try:
        log = server.stderr_text()
        assert "upgraded to schema version 2" in log and "rebased" in log
        first = _find(server.port, "STUDY", "-S", "PatientName=DOE^JANE", "StudyInstanceUID=")
        assert [s.StudyInstanceUID for s in first] == ["1.2.826.0.1.3680043.10.999.11.1"]
        out = tmp_path / "got"
        r = run_tool(["getscu", "127.0.0.1", str(server.port), "-aec", "ARCHIVE", "-S",
                      "-k", "QueryRetrieveLevel=STUDY",
                      "-k", "StudyInstanceUID=1.2.826.0.1.3680043.10.999.11.1",
                      "-od", str(out)])  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert len(list(out.glob("*.dcm"))) == 2
    finally:
        server.stop()


# --- character sets --------------------------------------------------------------------------------

_CHARSET_FILES = {  # pydicom's character set test files: file -> a name prefix in Unicode
    "chrRuss.dcm": "Люк", "chrGreek.dcm": "Διον", "chrArab.dcm": "قباني", "chrHbrw.dcm": "שרון",
    "chrX2.dcm": "Wang^XiaoDong=王", "chrH31.dcm": "Yamada^Tarou=山田", "chrI2.dcm": "Hong",
    "chrKoreanMulti.dcm": "김희중", "chrGerm.dcm": "Äneas",
}  # fmt: skip


def test_non_latin_names_with_our_and_dcmtk_findscu(archive: ServerProcess) -> None:
    """Files in ISO_IR 144/126/127/138, GB18030 and ISO 2022 (escape sequences) stored; each
    name found from its Unicode prefix: our findscu sets ISO_IR 192 by itself (no "?"
    wildcards going out), DCMTK's is told to; every answer decodes to the stored name."""
    import os

    import pydicom

    findscu = require_dcmtk("findscu")
    folder = Path(os.path.dirname(pydicom.__file__)) / "data" / "charset_files"
    files = [folder / name for name in _CHARSET_FILES]
    r = _store(archive.port, *files)
    assert r.returncode == 0, r.stdout + r.stderr
    for name, prefix in _CHARSET_FILES.items():
        expected = str(dcmread(folder / name).PatientName)
        found = _find(archive.port, "STUDY", "-S", f"PatientName={prefix}*", "StudyInstanceUID=")
        assert [str(f.PatientName) for f in found] == [expected], name
        out = Path(str(archive.workdir)) / f"dcmtk-{name}"
        out.mkdir()
        rr = subprocess.run([findscu, "-S", "-aec", "ARCHIVE", "-X", "-od", str(out),
                             "-k", "QueryRetrieveLevel=STUDY", "-k", "SpecificCharacterSet=ISO_IR 192",
                             "-k", f"PatientName={prefix}*", "127.0.0.1", str(archive.port)],
                            capture_output=True, timeout=60)  # fmt: skip
        assert rr.returncode == 0, rr.stderr
        answers = [dcmread(p) for p in out.iterdir()]
        assert [str(a.PatientName) for a in answers] == [expected], name
    # asked in Latin-1, answered in Latin-1 when the answer fits
    found = _find(archive.port, "STUDY", "-S", "SpecificCharacterSet=ISO_IR 100",
                  "PatientName=Äneas*")  # fmt: skip
    assert found[0].SpecificCharacterSet == "ISO_IR 100"


def test_retrieve_without_bulk_data(archive: ServerProcess, tmp_path: Path) -> None:
    """PS3.4 Annex Z: a C-GET on Composite Instance Retrieve Without Bulk Data (IMAGE level,
    by SOP Instance UID, Z.4.2.1.3.1) gets the stored instance without its Pixel Data, the
    rest unchanged; Composite Instance Root gets it whole."""
    from dicomnet import events as evt

    ct = _ct(tmp_path / "ct.dcm", patient_id="P77", study_uid=f"{ROOT}.77",
             series_uid=f"{ROOT}.77.1")  # fmt: skip
    stored = dcmread(ct)
    assert _store(archive.port, ct).returncode == 0
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0

    ae = AE(ae_title="VIEWER")
    ae.add_requested_context(WITHOUT_BULK_GET)
    ae.add_requested_context(COMPOSITE_GET)
    ae.add_requested_context(stored.SOPClassUID, scu_role=False, scp_role=True)
    with ae.associate("127.0.0.1", archive.port, ae_title="ARCHIVE",
                      evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:  # fmt: skip
        for model in (WITHOUT_BULK_GET, COMPOSITE_GET):
            g = Dataset()
            g.QueryRetrieveLevel = "IMAGE"
            g.SOPInstanceUID = stored.SOPInstanceUID
            final = list(assoc.send_c_get(g, model))[-1][0]
            assert final.Status == 0x0000 and final.NumberOfCompletedSuboperations == 1
    light, whole = received
    assert "PixelData" not in light and light.PatientID == "P77"
    assert light.SOPInstanceUID == stored.SOPInstanceUID and light.Rows == stored.Rows
    assert whole.PixelData == stored.PixelData
