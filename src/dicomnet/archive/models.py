"""The Query/Retrieve information models served by the embedded archive.

Theory of operation
-------------------
PS3.4 C.6.1 (Patient Root) and C.6.2 (Study Root) describe a four-level hierarchy,
PATIENT > STUDY > SERIES > IMAGE, in which every level has one *unique key*
(PS3.4 C.6.1.1.x / C.6.2.1.x tables): PatientID, StudyInstanceUID, SeriesInstanceUID and
SOPInstanceUID.  The Study Root model has no PATIENT level: its STUDY level carries the patient
attributes as study attributes (PS3.4 C.6.2.1.2).

The archive indexes a fixed set of attributes as SQL columns.  :data:`ATTRIBUTES` is the
catalogue: for each keyword, the tag, VR, information-model level and the SQL expression (table
alias + column) that holds it, or the aggregate that computes it (``NumberOfStudyRelated...``,
``ModalitiesInStudy``).  Table aliases are fixed: ``p`` patient, ``st`` study, ``se`` series,
``i`` instance.  Everything else a peer asks for is served from the stored files (see
:mod:`dicomnet.archive.index`).

The errors of the archive live here too, because every archive module raises them. Each
carries the DIMSE status it is answered with (``status``; :class:`ArchiveError` itself 0110
Processing Failure): :class:`InvalidUIDError` (a UID that must never become a path, C010),
:class:`StorageFullError` (ENOSPC while storing: A700 Refused: Out of Resources),
:class:`InstanceMismatchError` (a data set that is not the instance the C-STORE request
names: A900), :class:`StudyConflictError` (a study stored for another patient: A778),
:class:`IndexUnavailableError` (the index database cannot be reached: A700, try again) and
:class:`QueryError` (the C-FIND/C-GET/C-MOVE failure status to answer, PS3.4 C.4.1.1.4 /
C.4.2.1.5; A900 unless given).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from dicomnet.dimse.status import Status
from dicomnet.errors import DicomNetError

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTES_BY_TAG",
    "UNIQUE_KEYS",
    "AlreadyStored",
    "ArchiveError",
    "Attribute",
    "IndexUnavailableError",
    "InstanceMismatchError",
    "InvalidUIDError",
    "Level",
    "Model",
    "QueryError",
    "StorageFullError",
    "StudyConflictError",
    "levels_of",
    "parse_level",
    "parse_model",
]


class ArchiveError(DicomNetError):
    """Root of the archive's errors; ``status``: the DIMSE status it is answered with."""

    status: int = Status.PROCESSING_FAILURE  # PS3.7 Annex C


class AlreadyStored(ArchiveError):
    """The SOP Instance UID is already stored and the archive keeps the first copy."""

    status = Status.SUCCESS  # not a failure: the first copy is what the peer sent


class InvalidUIDError(ArchiveError, ValueError):
    """A UID failed validation (PS3.5 9.1); it is never turned into a file name."""

    status = Status.INVALID_UID  # PS3.4 Table B.2-1 Error: Cannot understand (Cxxx)


class StorageFullError(ArchiveError):
    """The file system is full (ENOSPC/EDQUOT); nothing was stored."""

    status = Status.OUT_OF_RESOURCES  # PS3.4 Table B.2-1 Refused: Out of Resources (A7xx)


class IndexUnavailableError(ArchiveError):
    """The index database cannot be reached (a PostgreSQL server restarting, the network to it
    down); nothing was written. The peer may try again later."""

    status = Status.OUT_OF_RESOURCES  # PS3.4 B.2.3 / C.4.1.1.4: Refused: Out of Resources


class InstanceMismatchError(ArchiveError):
    """A received data set is not the instance its C-STORE request names (its SOP Instance
    UID differs from the Affected SOP Instance UID)."""

    status = Status.DATA_SET_DOES_NOT_MATCH  # PS3.4 Table B.2-1 Error (A9xx)


class StudyConflictError(ArchiveError):
    """A Study Instance UID already stored under another patient identity."""

    status = Status.STUDY_CONFLICT  # the value dcm4chee answers (A7xx range)


class QueryError(ArchiveError):
    """A query/retrieve identifier the archive refuses; ``status`` is the failure to answer
    (PS3.4 C.4.1.1.4 C-FIND, C.4.2.1.5 C-MOVE, C.4.3.1.4 C-GET)."""

    def __init__(self, message: str, status: int = Status.DATA_SET_DOES_NOT_MATCH) -> None:
        super().__init__(message)
        self.status = status


class Level(enum.IntEnum):
    """Query/Retrieve Level (0008,0052) values, PS3.4 C.6.1.1 / C.6.2.1."""

    PATIENT = 0
    STUDY = 1
    SERIES = 2
    IMAGE = 3


class Model(enum.Enum):
    """Query/Retrieve information models: Patient Root and Study Root (PS3.4 C.6.1 / C.6.2),
    the retired Patient/Study Only (PS3.4-2004 C.6.3) and Composite Instance Root (retrieve
    only, PS3.4 Annex Y)."""

    PATIENT_ROOT = "PATIENT"
    STUDY_ROOT = "STUDY"
    PATIENT_STUDY_ONLY = "PATIENT_STUDY_ONLY"
    COMPOSITE = "COMPOSITE"


def parse_level(level: Level | str) -> Level:
    """A :class:`Level` from an enum or a (0008,0052) string; ``QueryError(0xA900)`` otherwise."""
    if isinstance(level, Level):
        return level
    try:
        return Level[str(level).strip().upper()]
    except KeyError:
        raise QueryError(f"unknown Query/Retrieve Level {level!r}") from None


def parse_model(model: Model | str) -> Model:
    """A :class:`Model` from an enum or ``'PATIENT'``/``'STUDY'``."""
    if isinstance(model, Model):
        return model
    text = str(model).strip().upper()
    for m in Model:
        if text in (m.value, m.name):
            return m
    raise ValueError(f"unknown information model {model!r}")


def levels_of(model: Model) -> tuple[Level, ...]:
    """The levels of a model, top down (PS3.4 C.6.1.1 / C.6.2.1; Composite Instance Root:
    IMAGE only here, its FRAME level is not offered)."""
    if model is Model.PATIENT_ROOT:
        return (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)
    if model is Model.PATIENT_STUDY_ONLY:
        return (Level.PATIENT, Level.STUDY)
    if model is Model.COMPOSITE:
        return (Level.IMAGE,)
    return (Level.STUDY, Level.SERIES, Level.IMAGE)


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute the index knows.

    ``column``: the SQL expression holding the value (alias.column), or ``None`` for computed
    attributes whose value comes from ``aggregate``.  ``match_column``: the column matched against
    (a case-folded shadow column for PN, a normalised time for TM).  ``integer``: stored as
    INTEGER (IS values).
    """

    keyword: str
    tag: int
    vr: str
    level: Level
    column: str | None
    match_column: str | None = None
    integer: bool = False
    aggregate: str | None = None
    #: PN: the column of case- and accent-folded values (fuzzy semantic matching)
    fuzzy_column: str | None = None

    @property
    def matched_by(self) -> str | None:
        return self.match_column or self.column

    def at(self, level: Level) -> Attribute:
        """This attribute as a query at ``level`` sees it: a patient attribute in a STUDY,
        SERIES or IMAGE query is the study's own copy (``st.`` columns: what that study was
        stored with, PS3.4 C.6.2.1.2), the patient row's only at PATIENT level."""
        if self.level is not Level.PATIENT or level is Level.PATIENT or self.column is None:
            return self
        return Attribute(self.keyword, self.tag, self.vr, self.level, _st(self.column),
                         _st(self.match_column), self.integer, self.aggregate,
                         _st(self.fuzzy_column))  # fmt: skip


def _st(column: str | None) -> str | None:
    return None if column is None else "st." + column.split(".", 1)[1]


def _a(
    keyword: str,
    tag: int,
    vr: str,
    level: Level,
    column: str | None,
    match_column: str | None = None,
    integer: bool = False,
    aggregate: str | None = None,
    fuzzy_column: str | None = None,
) -> Attribute:
    return Attribute(keyword, tag, vr, level, column, match_column, integer, aggregate,
                     fuzzy_column)  # fmt: skip


_P, _ST, _SE, _I = Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE

# Aggregates (PS3.4 C.6.1.1.2-4 optional return keys).  They refer to the aliases of the query.
_PAT_STUDIES = "(SELECT COUNT(*) FROM study x WHERE x.patient_fk = p.pk)"
_PAT_SERIES = (
    "(SELECT COUNT(*) FROM series x JOIN study y ON x.study_fk = y.pk WHERE y.patient_fk = p.pk)"
)
_PAT_INSTANCES = (
    "(SELECT COUNT(*) FROM instance x JOIN series y ON x.series_fk = y.pk "
    "JOIN study z ON y.study_fk = z.pk WHERE z.patient_fk = p.pk)"
)
_STUDY_SERIES = "(SELECT COUNT(*) FROM series x WHERE x.study_fk = st.pk)"
_STUDY_INSTANCES = (
    "(SELECT COUNT(*) FROM instance x JOIN series y ON x.series_fk = y.pk WHERE y.study_fk = st.pk)"
)
_STUDY_MODALITIES = (
    "(SELECT group_concat(m, '\\') FROM (SELECT DISTINCT x.modality AS m FROM series x "
    "WHERE x.study_fk = st.pk AND x.modality <> '' ORDER BY x.modality) AS d)"
)
_STUDY_SOP_CLASSES = (
    "(SELECT group_concat(c, '\\') FROM (SELECT DISTINCT x.sop_class_uid AS c FROM instance x "
    "JOIN series y ON x.series_fk = y.pk WHERE y.study_fk = st.pk ORDER BY x.sop_class_uid)"
    " AS d)"
)
_SERIES_INSTANCES = "(SELECT COUNT(*) FROM instance x WHERE x.series_fk = se.pk)"

#: Every attribute indexed (or computed) by the archive, keyed by keyword.
ATTRIBUTES: Mapping[str, Attribute] = {
    a.keyword: a
    for a in (
        # Patient level, PS3.4 Table C.6-1 (Study Root: study-level keys, Table C.6-5).
        _a("PatientName", 0x00100010, "PN", _P, "p.patient_name", "p.patient_name_fold",
           fuzzy_column="p.patient_name_fuzzy"),
        _a("PatientID", 0x00100020, "LO", _P, "p.patient_id"),
        _a("IssuerOfPatientID", 0x00100021, "LO", _P, "p.issuer"),
        _a("PatientBirthDate", 0x00100030, "DA", _P, "p.birth_date", "p.birth_date_norm"),
        _a("PatientSex", 0x00100040, "CS", _P, "p.sex"),
        _a("NumberOfPatientRelatedStudies", 0x00201200, "IS", _P, None, aggregate=_PAT_STUDIES),
        _a("NumberOfPatientRelatedSeries", 0x00201202, "IS", _P, None, aggregate=_PAT_SERIES),
        _a(
            "NumberOfPatientRelatedInstances",
            0x00201204,
            "IS",
            _P,
            None,
            aggregate=_PAT_INSTANCES,
        ),
        # Study level, PS3.4 Table C.6-2 / C.6-5.
        _a("StudyInstanceUID", 0x0020000D, "UI", _ST, "st.study_uid"),
        _a("StudyDate", 0x00080020, "DA", _ST, "st.study_date", "st.study_date_norm"),
        _a("StudyTime", 0x00080030, "TM", _ST, "st.study_time", "st.study_time_norm"),
        _a("AccessionNumber", 0x00080050, "SH", _ST, "st.accession_number"),
        _a("StudyID", 0x00200010, "SH", _ST, "st.study_id"),
        _a("StudyDescription", 0x00081030, "LO", _ST, "st.study_description"),
        _a(
            "ReferringPhysicianName",
            0x00080090,
            "PN",
            _ST,
            "st.referring_physician",
            "st.referring_physician_fold",
            fuzzy_column="st.referring_physician_fuzzy",
        ),
        _a("TimezoneOffsetFromUTC", 0x00080201, "SH", _ST, "st.timezone"),
        _a("ModalitiesInStudy", 0x00080061, "CS", _ST, None, aggregate=_STUDY_MODALITIES),
        _a("SOPClassesInStudy", 0x00080062, "UI", _ST, None, aggregate=_STUDY_SOP_CLASSES),
        _a("NumberOfStudyRelatedSeries", 0x00201206, "IS", _ST, None, aggregate=_STUDY_SERIES),
        _a(
            "NumberOfStudyRelatedInstances",
            0x00201208,
            "IS",
            _ST,
            None,
            aggregate=_STUDY_INSTANCES,
        ),
        # Series level, PS3.4 Table C.6-3.
        _a("SeriesInstanceUID", 0x0020000E, "UI", _SE, "se.series_uid"),
        _a("Modality", 0x00080060, "CS", _SE, "se.modality"),
        _a("SeriesNumber", 0x00200011, "IS", _SE, "se.series_number", integer=True),
        _a("SeriesDescription", 0x0008103E, "LO", _SE, "se.series_description"),
        _a(
            "NumberOfSeriesRelatedInstances",
            0x00201209,
            "IS",
            _SE,
            None,
            aggregate=_SERIES_INSTANCES,
        ),
        # Composite object instance level, PS3.4 Table C.6-4.
        _a("SOPInstanceUID", 0x00080018, "UI", _I, "i.sop_uid"),
        _a("SOPClassUID", 0x00080016, "UI", _I, "i.sop_class_uid"),
        _a("InstanceNumber", 0x00200013, "IS", _I, "i.instance_number", integer=True),
    )
}

ATTRIBUTES_BY_TAG: Mapping[int, Attribute] = {a.tag: a for a in ATTRIBUTES.values()}

#: The unique key of each level (PS3.4 C.6.1.1.1 / C.6.2.1.1).
UNIQUE_KEYS: Mapping[Level, Attribute] = {
    Level.PATIENT: ATTRIBUTES["PatientID"],
    Level.STUDY: ATTRIBUTES["StudyInstanceUID"],
    Level.SERIES: ATTRIBUTES["SeriesInstanceUID"],
    Level.IMAGE: ATTRIBUTES["SOPInstanceUID"],
}

#: Tags never treated as keys: (0008,0005) Specific Character Set, (0008,0052) the level itself,
#: (0008,0054) Retrieve AE Title and (0008,0056) Instance Availability (filled by the SCP).
NON_KEY_TAGS = frozenset({0x00080005, 0x00080052, 0x00080054, 0x00080056})


def effective_level(attr: Attribute, model: Model) -> Level:
    """The level an attribute belongs to in ``model``: patient attributes are study attributes
    in the Study Root model (PS3.4 C.6.2.1.2)."""
    if model is Model.STUDY_ROOT and attr.level is Level.PATIENT:
        return Level.STUDY
    return attr.level
