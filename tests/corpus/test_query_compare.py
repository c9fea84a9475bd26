"""One table of C-FIND shapes against three archives holding the same real files.

Our archive, DCMTK's ``dcmqrscp`` and Orthanc run side by side; every storable instance of the
corpus (one copy per SOP Instance UID) goes into each. DCMTK's ``findscu`` asks each of them the
same questions: every level of the Patient Root and Study Root models, universal, single value,
wildcard, range (open ones too), UID list and multiple value matching, person names in several
character sets and cases, the relational shapes peers use (PS3.4 C.4.1.3.2) and the computed
attributes of the Patient Root and Study Root models (Number of ... Related ..., Modalities and
SOP Classes in Study; PS3.4 C.6.1.1, C.6.2.1).

Only the studies that all three hold completely are compared (an archive refusing a file leaves
its study out). The canonical form of an answer is the set of unique keys at the query level with
the values of the requested attributes, each decoded by pydicom with its response's own Specific
Character Set; a refused query is ``"refused"``. For every shape:

* our answer is the one computed independently from the files with pydicom
  (:func:`expected`, the matching rules of PS3.4 C.2.2.2 with our documented choices:
  relational search, case-insensitive person names);
* our answer is Orthanc's or ``dcmqrscp``'s, unless the shape is in :data:`DISAGREEMENTS`, where
  the reason (the standard on our side) is written down and the disagreement itself asserted.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.multival import MultiValue

from tests.cli.conftest import Server
from tests.cli.helpers import run_tool
from tests.conftest import dcmtk_tool
from tests.corpus.helpers import read, stored_files
from tests.corpus.orthanc import Orthanc, available
from tests.corpus.qr_peers import (
    Answer,
    findscu,
    one_per_instance,
    start_dcmqrscp,
    start_dicomnet,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not available(), reason="Orthanc is not installed"),
    pytest.mark.skipif(dcmtk_tool("dcmqrscp") is None, reason="DCMTK dcmqrscp not installed"),
    pytest.mark.skipif(dcmtk_tool("findscu") is None, reason="DCMTK findscu not installed"),
]

PEERS = ("dicomnet", "dcmqrscp", "orthanc")
UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
          "IMAGE": "SOPInstanceUID"}  # fmt: skip
# attributes of the files the shapes use (read from each instance with pydicom)
STORED = ["PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
          "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyDescription",
          "SeriesInstanceUID", "Modality", "SeriesNumber", "SOPInstanceUID", "SOPClassUID",
          "InstanceNumber"]  # fmt: skip
# computed attributes matched on a stored attribute of the entity's instances (PS3.4 C.6.1.1.3)
MATCHED_AS = {"ModalitiesInStudy": "Modality", "SOPClassesInStudy": "SOPClassUID"}

# wildcards (C.2.2.2.4) are ordinary characters in UIDs, dates, times and numbers
WILDCARD_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}

Record = dict[str, str]
Computed = Callable[[list[Record]], str]


def _count(key: str) -> Computed:
    return lambda rs: str(len({r[key] for r in rs}))


def _distinct(key: str) -> Computed:
    return lambda rs: "\\".join(sorted({r[key] for r in rs if r[key]}))


COMPUTED = {
    "NumberOfPatientRelatedStudies": _count("StudyInstanceUID"),
    "NumberOfPatientRelatedSeries": _count("SeriesInstanceUID"),
    "NumberOfPatientRelatedInstances": _count("SOPInstanceUID"),
    "NumberOfStudyRelatedSeries": _count("SeriesInstanceUID"),
    "NumberOfStudyRelatedInstances": _count("SOPInstanceUID"),
    "NumberOfSeriesRelatedInstances": _count("SOPInstanceUID"),
    "ModalitiesInStudy": _distinct("Modality"),
    "SOPClassesInStudy": _distinct("SOPClassUID"),
}


def norm(value: Any, vr: str) -> str:
    """A value as compared: text without padding, empty trailing person name components and
    groups dropped, numbers as integers, the values of a multi-valued attribute sorted."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(sorted(norm(v, vr) for v in value))
    s = str(value).strip(" \0")
    if vr == "PN":
        s = "=".join(g.rstrip("^ ") for g in s.split("=")).rstrip("=")
    elif vr in ("IS", "US", "UL") and s:
        try:
            s = str(int(float(s)))
        except ValueError:
            pass
    return s


# --- the shapes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    name: str
    model: str  # findscu's -P (Patient Root) or -S (Study Root)
    level: str
    keys: dict[str, str]
    charset: str | None = None
    relational: bool = False  # not a hierarchical query (PS3.4 C.4.1.2.1): dcmqrscp refuses it
    may_be_empty: bool = False  # a shape that matches nothing by the standard

    def all_keys(self) -> dict[str, str]:
        return {UNIQUE[self.level]: "", **self.keys}


def S(name: str, model: str, level: str, charset: str | None = None, **keys: str) -> Shape:
    return Shape(name, model, level, keys, charset)


def R(name: str, model: str, level: str, **keys: str) -> Shape:
    """A relational shape (C.4.1.3.2): keys without the unique keys of the levels above."""
    return Shape(name, model, level, keys, relational=True)


DOE_PETER = "98890234"
MRA = "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.1"  # 3 MR series, 11 instances
PETER_CT = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.1"  # 2 CT series
MRA_700 = "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.118"  # series 700, 7 instances
CHR_X1 = "1.3.6.1.4.1.5962.1.2.0.1175775771.5711.0"
VLUT = "1.2.276.0.7230010.3.200.2"
CT_SMALL = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
RTSTRUCT = "1.2.826.0.1.3680043.8.498.2010020400001"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
# the patients of pydicom's character set files (chr*.dcm)
CHARSET_PATIENTS = {"SCSARAB", "SCSFREN", "SCSGERM", "SCSGREEK", "SCSHBRW", "SCSRUSS",
                    "H31EXAMPLE", "H32EXAMPLE", "I2EXAMPLE", "X1EXAMPLE", "X2EXAMPLE", "2008-3",
                    "2008-4"}  # fmt: skip
PAT = {"PatientID": "", "PatientName": ""}
STUDY = {"StudyDate": "", "StudyTime": "", "AccessionNumber": "", "StudyID": ""}

# fmt: off
SHAPES = [
    # PATIENT level
    S("pat_universal", "-P", "PATIENT", **PAT, PatientBirthDate="", PatientSex=""),
    S("pat_counts", "-P", "PATIENT", NumberOfPatientRelatedStudies="",
      NumberOfPatientRelatedSeries="", NumberOfPatientRelatedInstances=""),
    S("pat_id_single", "-P", "PATIENT", PatientID=DOE_PETER, PatientName="",
      NumberOfPatientRelatedStudies=""),
    S("pat_id_star", "-P", "PATIENT", PatientID="SCS*", PatientName=""),
    S("pat_id_question", "-P", "PATIENT", PatientID="?MR?", PatientName=""),
    S("pat_name_star", "-P", "PATIENT", PatientName="Doe^*", PatientID=""),
    S("pat_name_question", "-P", "PATIENT", PatientName="Doe^Pet?r", PatientID=""),
    S("pat_name_case", "-P", "PATIENT", PatientName="doe^peter", PatientID=""),
    S("pat_name_utf8_latin", "-P", "PATIENT", "ISO_IR 192", PatientName="Buc^Jérôme"),
    S("pat_name_utf8_upper_accents", "-P", "PATIENT", "ISO_IR 192", PatientName="BUC^JÉRÔME"),
    S("pat_name_utf8_cjk_star", "-P", "PATIENT", "ISO_IR 192", PatientName="*山田*"),
    S("pat_birth_date_range", "-P", "PATIENT", **PAT, PatientBirthDate="19400101-19600101"),
    S("pat_sex", "-P", "PATIENT", **PAT, PatientSex="F"),
    R("pat_level_in_study_root", "-S", "PATIENT", NumberOfPatientRelatedStudies=""),
    # STUDY level: UIDs, dates and times, other text
    S("study_universal", "-S", "STUDY", **PAT, **STUDY),
    S("study_counts", "-S", "STUDY", NumberOfStudyRelatedSeries="",
      NumberOfStudyRelatedInstances="", ModalitiesInStudy=""),
    S("study_sop_classes", "-S", "STUDY", SOPClassesInStudy=""),
    S("study_modality_single", "-S", "STUDY", ModalitiesInStudy="MR",
      NumberOfStudyRelatedInstances=""),
    S("study_modality_list", "-S", "STUDY", ModalitiesInStudy="CT\\CR"),
    S("study_uid_single", "-S", "STUDY", StudyInstanceUID=MRA, StudyDescription="", **PAT),
    S("study_uid_list", "-S", "STUDY", StudyInstanceUID=f"{MRA}\\{CHR_X1}\\{VLUT}\\1.2.3.4",
      **PAT),
    S("study_date_single", "-S", "STUDY", StudyDate="20030505", StudyTime=""),
    S("study_date_range", "-S", "STUDY", StudyDate="20000101-20051231"),
    S("study_date_open_before", "-S", "STUDY", StudyDate="-20000101"),
    S("study_date_open_after", "-S", "STUDY", StudyDate="20100101-"),
    S("study_date_acr_nema", "-S", "STUDY", StudyDate="19940101-19991231", StudyTime=""),
    S("study_date_single_acr_nema", "-S", "STUDY", StudyDate="19941105"),
    S("study_time_range", "-S", "STUDY", StudyTime="100000-120000", StudyDate=""),
    S("study_time_open_after", "-S", "STUDY", StudyTime="150000-"),
    S("study_time_open_before", "-S", "STUDY", StudyTime="-090000"),
    S("study_date_and_time", "-S", "STUDY", StudyDate="20030505", StudyTime="040000-050000"),
    S("study_accession", "-S", "STUDY", AccessionNumber="2", StudyID=""),
    S("study_accession_star", "-S", "STUDY", AccessionNumber="2008*"),
    S("study_id_question", "-S", "STUDY", StudyID="?MR?"),
    S("study_description_star", "-S", "STUDY", StudyDescription="*Brain*"),
    Shape("study_description_case", "-S", "STUDY", {"StudyDescription": "brain"},
          may_be_empty=True),  # case-sensitive: only PN may be matched otherwise
    # STUDY level: person names, cases and character sets
    S("study_name_suffix_star", "-S", "STUDY", PatientName="*^Jan", PatientID=""),
    S("study_name_lower", "-S", "STUDY", PatientName="citizen^jan"),
    S("study_name_upper_star", "-S", "STUDY", PatientName="COMPRESSEDSAMPLES*", PatientID=""),
    S("study_name_utf8_greek", "-S", "STUDY", "ISO_IR 192", PatientName="Διονυσιος"),
    S("study_name_utf8_korean", "-S", "STUDY", "ISO_IR 192", PatientName="김희중", PatientID=""),
    S("study_name_utf8_three_groups", "-S", "STUDY", "ISO_IR 192",
      PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう"),
    S("study_name_latin1", "-S", "STUDY", "ISO_IR 100", PatientName="Äneas^Rüdiger"),
    S("study_name_latin1_case", "-S", "STUDY", "ISO_IR 100", PatientName="äNEAS^RÜDIGER"),
    # chrRuss's name as stored: Cyrillic letters and Latin c, e, y, p
    S("study_name_cyrillic", "-S", "STUDY", "ISO_IR 144", PatientName="Люкceмбypг"),  # noqa: RUF001
    S("study_name_greek", "-S", "STUDY", "ISO_IR 126", PatientName="Διονυσιος"),
    S("study_name_arabic", "-S", "STUDY", "ISO_IR 127", PatientName="قباني^لنزار"),
    S("study_name_hebrew", "-S", "STUDY", "ISO_IR 138", PatientName="שרון^דבורה"),
    S("study_name_jis_2022", "-S", "STUDY", "\\ISO 2022 IR 87", PatientName="やまだ^たろう"),
    S("study_name_ksx_2022", "-S", "STUDY", "\\ISO 2022 IR 149", PatientName="김희중"),
    S("study_name_gb18030", "-S", "STUDY", "GB18030", PatientName="Wang^XiaoDong=王^小东="),
    S("study_name_gb18030_no_empty_group", "-S", "STUDY", "GB18030",
      PatientName="Wang^XiaoDong=王^小东"),
    # STUDY level, Patient Root
    S("study_in_patient_root", "-P", "STUDY", PatientID=DOE_PETER, StudyDate="",
      NumberOfStudyRelatedInstances="", NumberOfStudyRelatedSeries=""),
    R("study_patient_root_no_patient_id", "-P", "STUDY", StudyDate="20030505"),
    R("study_in_patient_root_by_name", "-P", "STUDY", PatientName="Doe^Archibald", StudyDate=""),
    # SERIES level
    S("series_in_study", "-S", "SERIES", StudyInstanceUID=MRA, Modality="", SeriesNumber="",
      NumberOfSeriesRelatedInstances=""),
    S("series_number_in_study", "-S", "SERIES", StudyInstanceUID=MRA, SeriesNumber="700"),
    S("series_in_patient_root", "-P", "SERIES", PatientID=DOE_PETER,
      StudyInstanceUID=PETER_CT, SeriesNumber="", NumberOfSeriesRelatedInstances=""),
    R("series_modality_without_study", "-S", "SERIES", Modality="CT", SeriesNumber=""),
    R("series_modality_star_without_study", "-S", "SERIES", Modality="R*"),
    R("series_uid_alone", "-S", "SERIES", SeriesInstanceUID=MRA_700,
      NumberOfSeriesRelatedInstances=""),
    R("series_by_patient_name", "-S", "SERIES", PatientName="doe^peter", Modality=""),
    # IMAGE level
    S("image_in_series", "-S", "IMAGE", StudyInstanceUID=MRA, SeriesInstanceUID=MRA_700,
      InstanceNumber="", SOPClassUID=""),
    S("image_number_in_series", "-S", "IMAGE", StudyInstanceUID=MRA,
      SeriesInstanceUID=MRA_700, InstanceNumber="4"),
    S("image_in_patient_root", "-P", "IMAGE", PatientID=DOE_PETER, StudyInstanceUID=MRA,
      SeriesInstanceUID=MRA_700, InstanceNumber=""),
    R("image_sop_uid_alone", "-S", "IMAGE", SOPInstanceUID=CT_SMALL, InstanceNumber=""),
    R("image_sop_uid_list_alone", "-S", "IMAGE", SOPInstanceUID=f"{CT_SMALL}\\{RTSTRUCT}"),
    R("image_sop_class_in_study", "-S", "IMAGE", StudyInstanceUID=PETER_CT,
      SOPClassUID=CT_CLASS, InstanceNumber=""),
]

# Shapes where our answer is neither Orthanc's nor dcmqrscp's: why the standard is on our side,
# and how each peer's answer differs from ours ("nothing": no match, "fewer": a subset of our
# matches, "other values": our matches with other values).
_BY_CHARACTERS = ("PS3.4 C.2.2.2: Specific Character Set is never matched, it says how the "
                  "values are encoded; matching is on the characters. ")  # fmt: skip
_DCMQR_2022 = ("dcmqrscp cannot convert ISO 2022 values ('Character set conversion of the "
               "candidate failed' in its log) and compares the bytes. ")  # fmt: skip
_ORTHANC_LATIN1 = ("Orthanc answers in ISO_IR 100 whatever the request's character set, "
                   "dropping the characters Latin-1 cannot encode. ")  # fmt: skip
DISAGREEMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "pat_name_utf8_cjk_star": (
        _BY_CHARACTERS + "*山田* is in the ideographic group of chrH31 (\\ISO 2022 IR 87) and "
        "chrH32 (ISO 2022 IR 13\\ISO 2022 IR 87). " + _DCMQR_2022 + "Orthanc cannot decode "
        "chrH32's character sets. " + _ORTHANC_LATIN1,
        {"dcmqrscp": "nothing", "orthanc": "fewer"}),
    "study_name_utf8_three_groups": (
        _BY_CHARACTERS + "The UTF-8 key is chrH31's name (stored in \\ISO 2022 IR 87). "
        + _DCMQR_2022 + _ORTHANC_LATIN1,
        {"dcmqrscp": "nothing", "orthanc": "other values"}),
    "study_name_ksx_2022": (
        _BY_CHARACTERS + "chrKoreanMulti's value ends with a redundant ESC ( B (PS3.5 6.1.2.5.3 "
        "allows it), pydicom's key does not: same characters, other bytes, which dcmqrscp "
        "compares. " + _ORTHANC_LATIN1,
        {"dcmqrscp": "nothing", "orthanc": "other values"}),
    "study_name_gb18030_no_empty_group": (
        "PS3.5 6.2 (PN): trailing null component groups and their delimiters may be omitted, so "
        "Wang^XiaoDong=王^小东 is chrX2's stored Wang^XiaoDong=王^小东= (both match the value "
        "with the trailing '=', study_name_gb18030). dcmqrscp compares bytes; Orthanc does not "
        "support GB18030.",
        {"dcmqrscp": "nothing", "orthanc": "nothing"}),
}
# fmt: on


# --- the archives -------------------------------------------------------------------------------


@dataclass
class Archives:
    servers: dict[str, tuple[int, str]]  # name: (port, AE title)
    records: list[Record]  # one per instance of a study all three hold completely
    comparable: dict[str, set[str]] = field(default_factory=dict)  # level: unique keys
    held: dict[str, int] = field(default_factory=dict)

    def find(self, peer: str, shape: Shape) -> Answer:
        port, aet = self.servers[peer]
        return findscu(port, aet, shape.model, shape.level, shape.all_keys(), shape.charset)


def _record(path: Path) -> Record:
    ds = read(path, stop_before_pixels=True)
    assert ds is not None
    with warnings.catch_warnings():  # the corpus's invalid UIDs and lengths
        warnings.simplefilter("ignore")
        return {k: norm(ds.get(k), dictionary_VR(k)) for k in STORED}


@contextmanager
def open_archives(files: list[Path], tmp: Path) -> Iterator[Archives]:
    """The three archives, each sent the corpus (one file per instance), stopped on exit."""
    loaded = one_per_instance(files, tmp / "load")
    assert len(loaded) >= 140, "the corpus packages are missing (pydicom, pydicom-data)"
    servers: list[Server] = []
    orthanc: Orthanc | None = None
    try:
        servers.append(start_dicomnet(tmp))
        servers.append(start_dcmqrscp(tmp))
        orthanc = Orthanc(tmp / "orthanc")
        ours, dcmqr = servers
        for srv in servers:  # the same sender for both (it converts what a peer refuses)
            run_tool(["storescu", "-r", "-aec", srv.aet, "127.0.0.1", str(srv.port),
                      str(tmp / "load")], timeout=120)  # fmt: skip
        for path in loaded:
            orthanc.upload(path)
        with warnings.catch_warnings():  # the corpus's invalid UIDs
            warnings.simplefilter("ignore")
            held = {"dicomnet": set(stored_files(ours.directory)),
                    "dcmqrscp": set(stored_files(dcmqr.directory)),
                    "orthanc": set(orthanc.instances())}  # fmt: skip
        everywhere = set.intersection(*held.values())
        every = [_record(p) for p in loaded]
        incomplete = {r["StudyInstanceUID"] for r in every if r["SOPInstanceUID"] not in everywhere}
        records = [r for r in every if r["StudyInstanceUID"] not in incomplete]
        arch = Archives({"dicomnet": (ours.port, ours.aet), "dcmqrscp": (dcmqr.port, dcmqr.aet),
                         "orthanc": (orthanc.port, orthanc.aet)}, records,
                        held={k: len(v) for k, v in held.items()})  # fmt: skip
        for level, key in UNIQUE.items():
            arch.comparable[level] = {r[key] for r in records if r[key]}
        # a patient is compared when all its studies are
        arch.comparable["PATIENT"] -= {r["PatientID"] for r in every
                                       if r["StudyInstanceUID"] in incomplete}  # fmt: skip
        yield arch
    finally:
        if orthanc is not None:
            orthanc.stop()
        for s in servers:
            s.stop()


@pytest.fixture(scope="module")
def archives(
    corpus: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Archives]:
    with open_archives(corpus["files"], tmp_path_factory.mktemp("query-compare")) as arch:
        yield arch


# --- expectation and canonical answers ----------------------------------------------------------


def _time(value: str) -> str:
    hhmmss, _, frac = value.replace(":", "").partition(".")
    return hhmmss.ljust(6, "0") + "." + frac.ljust(6, "0")


def _matches_one(query: str, value: str, vr: str) -> bool:
    """PS3.4 C.2.2.2: single value, wildcard and range matching of one key value."""
    if vr == "DA":  # PS3.5 6.2 (DA): ACR-NEMA's yyyy.mm.dd should be supported
        query, value = query.replace(".", ""), value.replace(".", "")
    if vr in ("DA", "TM") and "-" in query:
        if not value:
            return False
        lo, hi = query.split("-")
        conv = _time if vr == "TM" else str
        return (not lo or conv(lo) <= conv(value)) and (not hi or conv(value) <= conv(hi))
    if not value:
        return False
    if vr == "PN":  # our conformance choice (C.2.2.2.1): names are matched case-insensitively
        query, value = norm(query, vr).casefold(), value.casefold()
    if vr in WILDCARD_VRS and ("*" in query or "?" in query):
        pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in query)
        return re.fullmatch(pattern, value, re.S) is not None
    return query == value


def _matches(keyword: str, query: str, record: Record) -> bool:
    attr = MATCHED_AS.get(keyword, keyword)
    if query in ("", "*"):
        return True
    # UID lists (C.2.2.2.2) and multiple value matching (C.2.2.2.8): any value
    return any(_matches_one(q, record[attr], dictionary_VR(attr)) for q in query.split("\\"))


Canonical = str | tuple[tuple[str, tuple[str, ...]], ...]


def _compared(shape: Shape) -> list[str]:
    return sorted(k for k in shape.all_keys() if k != UNIQUE[shape.level])


def expected(shape: Shape, arch: Archives) -> Canonical:
    """Our answer computed from the files: the entities at the query level one of whose
    instances matches every key (relational search, C.4.1.3.2), with the requested values."""
    unique = UNIQUE[shape.level]
    groups: dict[str, list[Record]] = {}
    for r in arch.records:
        if r[unique] in arch.comparable[shape.level]:
            groups.setdefault(r[unique], []).append(r)
    rows = []
    for key, rs in groups.items():
        if not any(all(_matches(k, v, r) for k, v in shape.keys.items()) for r in rs):
            continue
        values = tuple(COMPUTED[k](rs) if k in COMPUTED else rs[0][k] for k in _compared(shape))
        rows.append((key, values))
    return tuple(sorted(rows))


def canonical(answer: Answer, shape: Shape, arch: Archives) -> Canonical:
    if not answer.success:
        return "refused" if answer.status.startswith("Failed") else answer.status
    unique = UNIQUE[shape.level]
    rows = []
    for ds in answer.responses:
        with warnings.catch_warnings():  # the invalid UIDs of studies left out of the comparison
            warnings.simplefilter("ignore")
            key = norm(ds.get(unique), dictionary_VR(unique))
            values = tuple(norm(ds.get(k, ""), dictionary_VR(k)) for k in _compared(shape))
        if key in arch.comparable[shape.level]:
            rows.append((key, values))
    return tuple(sorted(rows))


# --- the tests ----------------------------------------------------------------------------------


def how(theirs: Canonical, ours: Canonical) -> str:
    """How a peer's canonical answer differs from ours."""
    if theirs == ours:
        return "same"
    if isinstance(theirs, str) or isinstance(ours, str):
        return str(theirs)  # "refused" or an error
    mine, other = {k for k, _ in ours}, {k for k, _ in theirs}
    if not other:
        return "nothing"
    if other == mine:
        return "other values"
    return "fewer" if other < mine else "more" if other > mine else "other matches"


def test_all_three_hold_the_corpus(archives: Archives) -> None:
    """The comparison covers most of the corpus, the character set files included."""
    assert min(archives.held.values()) >= 140, archives.held
    assert len(archives.records) >= 140
    assert len(archives.comparable["STUDY"]) >= 40
    ids = {r["PatientID"] for r in archives.records}
    assert not CHARSET_PATIENTS - ids, CHARSET_PATIENTS - ids


def test_shape_table() -> None:
    assert len(SHAPES) >= 40 and len({s.name for s in SHAPES}) == len(SHAPES)
    assert set(DISAGREEMENTS) <= {s.name for s in SHAPES}
    assert {s.level for s in SHAPES} == set(UNIQUE) and {s.model for s in SHAPES} == {"-P", "-S"}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_query_shape(archives: Archives, shape: Shape) -> None:
    answers = {peer: archives.find(peer, shape) for peer in PEERS}
    assert answers["dicomnet"].success, answers["dicomnet"].log[-2000:]
    got = {peer: canonical(a, shape, archives) for peer, a in answers.items()}
    ours = got["dicomnet"]
    assert ours == expected(shape, archives)
    assert ours or shape.may_be_empty, "the shape matches nothing: it tests nothing"
    # dcmqrscp answers hierarchical queries only (C.4.1.2.1): a check on the table itself
    assert (got["dcmqrscp"] == "refused") == shape.relational, answers["dcmqrscp"].status
    if shape.name in DISAGREEMENTS:
        reason, ways = DISAGREEMENTS[shape.name]
        assert {p: how(got[p], ours) for p in ways} == ways, reason
    else:
        assert ours in (got["orthanc"], got["dcmqrscp"]), {p: how(got[p], ours) for p in got}
