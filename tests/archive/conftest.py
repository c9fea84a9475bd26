"""A small generated archive shared by the archive tests.

Seven series in four studies of three patients, 50 instances in all; one instance carries pixel
data and Explicit VR Little Endian, the others Implicit VR Little Endian without pixel data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dicomnet.archive.index import ArchiveIndex
from dicomnet.archive.store import FileStore
from tests.pg_cluster import Cluster

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
US = "1.2.840.10008.5.1.4.1.1.6.1"
SR = "1.2.840.10008.5.1.4.1.1.88.11"
OT = "1.2.840.10008.5.1.4.1.1.7"

PATIENTS = {
    "PID001": dict(PatientName="Doe^John", PatientBirthDate="19700101", PatientSex="M"),
    "PID002": dict(PatientName="doe^jane", PatientBirthDate="19800215", PatientSex="F"),
    "PID003": dict(PatientName="Müller^Jörg", PatientBirthDate="19900310", PatientSex="O"),
}
# study uid -> (patient id, attrs)
STUDIES = {
    "2.25.1": (
        "PID001",
        dict(
            StudyDate="20200101",
            StudyTime="101010",
            AccessionNumber="ACC1",
            StudyID="1",
            StudyDescription="CT Chest",
            ReferringPhysicianName="Ref^One",
            InstitutionName="General Hospital",
        ),
    ),
    "2.25.2": (
        "PID001",
        dict(
            StudyDate="20210615",
            StudyTime="235959.123",
            AccessionNumber="ACC2",
            StudyID="2",
            StudyDescription="MR Brain",
            ReferringPhysicianName="Ref^Two",
            InstitutionName="General Hospital",
        ),
    ),
    "2.25.3": (
        "PID002",
        dict(
            StudyDate="20190101",
            StudyTime="0800",
            AccessionNumber="ACC3",
            StudyID="3",
            StudyDescription="CT Abdomen",
            ReferringPhysicianName="",
            InstitutionName="Clinic",
        ),
    ),
    "2.25.4": (
        "PID003",
        dict(
            StudyDate="20200102",
            StudyTime="120000",
            AccessionNumber="ACC[4]",
            StudyID="4",
            StudyDescription="US",
            ReferringPhysicianName="REF^ONE",
            InstitutionName="Clinic",
        ),
    ),
}
# series uid -> (study uid, modality, number, description, body part, count, sop class)
SERIES = {
    "2.25.1.1": ("2.25.1", "CT", 1, "Axial", "CHEST", 10, CT),
    "2.25.1.2": ("2.25.1", "CT", 2, "Coronal", "CHEST", 5, CT),
    "2.25.2.1": ("2.25.2", "MR", 1, "T1", "HEAD", 8, MR),
    "2.25.2.2": ("2.25.2", "SR", 2, "Report", "", 2, SR),
    "2.25.3.1": ("2.25.3", "CT", 1, "Axial", "ABDOMEN", 10, CT),
    "2.25.4.1": ("2.25.4", "US", 1, "Liver", "ABDOMEN", 5, US),
    "2.25.4.2": ("2.25.4", "OT", 2, "Screens", "", 10, OT),
}
N_INSTANCES = sum(s[5] for s in SERIES.values())
PIXEL_SOP = "2.25.1.1.1"


def make_dataset(series_uid: str, number: int) -> Dataset:
    study_uid, modality, series_no, desc, body, _, sop_class = SERIES[series_uid]
    patient_id, study = STUDIES[study_uid]
    ds = Dataset()
    if patient_id == "PID003":
        ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientID = patient_id
    for k, v in PATIENTS[patient_id].items():
        setattr(ds, k, v)
    ds.StudyInstanceUID = study_uid
    for k, v in study.items():
        setattr(ds, k, v)
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.SeriesNumber = series_no
    ds.SeriesDescription = desc
    if body:
        ds.BodyPartExamined = body
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = f"{series_uid}.{number}"
    ds.InstanceNumber = number
    ds.ImageComments = "odd" if number % 2 else "even"
    return ds


def encode(ds: Dataset, ts: str) -> bytes:
    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = ts == IMPLICIT
    write_dataset(buf, ds)
    return buf.getvalue()


def all_datasets() -> Iterator[tuple[Dataset, str]]:
    for series_uid, spec in SERIES.items():
        for n in range(1, spec[5] + 1):
            ds = make_dataset(series_uid, n)
            ts = IMPLICIT
            if ds.SOPInstanceUID == PIXEL_SOP:
                ds.Rows = ds.Columns = 4
                ds.BitsAllocated = ds.BitsStored = 16
                ds.HighBit = 15
                ds.SamplesPerPixel = 1
                ds.PhotometricInterpretation = "MONOCHROME2"
                ds.PixelRepresentation = 0
                ds.PixelData = bytes(range(32))
                ts = EXPLICIT
            yield ds, ts


@dataclass
class Archive:
    root: Path
    store: FileStore
    index: ArchiveIndex


def build_archive(root: Path, location: str | None = None) -> Archive:
    store = FileStore(root / "files")
    index = ArchiveIndex(location or root / "index.sqlite")
    for ds, ts in all_datasets():
        store.store(index, ds.SOPClassUID, ds.SOPInstanceUID, ts, [encode(ds, ts)])
    return Archive(root, store, index)


#: The index backends the archive fixtures run on (tests using them run once per backend).
BACKENDS = ["sqlite", "postgresql"]


def index_location(request: pytest.FixtureRequest, root: Path) -> str:
    """Where a test's index lives for the backend ``request.param``: a SQLite file under
    ``root``, or a fresh database of the session's PostgreSQL cluster."""
    if request.param == "postgresql":
        cluster: Cluster = request.getfixturevalue("postgresql")
        return cluster.database()
    return str(root / "index.sqlite")


@pytest.fixture(scope="module", params=BACKENDS)
def archive(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:  # fmt: skip
    root = tmp_path_factory.mktemp("archive")
    arc = build_archive(root, index_location(request, root))
    yield arc
    arc.index.close()


@pytest.fixture(params=BACKENDS)
def fresh_archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Archive]:
    arc = build_archive(tmp_path, index_location(request, tmp_path))
    yield arc
    arc.index.close()


@pytest.fixture(params=BACKENDS)
def index_at(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's own new, empty index lives: a SQLite file, or a fresh PostgreSQL
    database (tests building their own ArchiveIndex run once per backend)."""
    return index_location(request, tmp_path)
