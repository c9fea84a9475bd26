"""The attributes the archive indexes, read from a stored (or arriving) instance.

Theory of operation
-------------------
:class:`InstanceFields` holds, as stripped Unicode strings, every attribute the index keeps:
the patient's identity (Patient ID with its Issuer, PS3.3 C.7.1.1), name, birth date and sex;
the study, series and instance keys of the Query/Retrieve models (PS3.4 C.6); and, for
objects outside the patient hierarchy (no Study Instance UID: Hanging Protocols, Color
Palettes, ...), the labels their own Q/R models match on (PS3.4 Annex U, X).

Storing is cheap because the fields are taken from the first bytes of the received data set
by :func:`scan_instance_fields`: element headers walked with ``struct``, only the wanted values
decoded (tens of microseconds). When that fast path does not apply -- big endian, deflate, a
character set other than the default, Latin-1 or UTF-8 (ISO 2022 escapes, GB18030, ... need
pydicom's decoder, PS3.5 6.1.2.5), no Study Instance UID (a non-patient object) -- the caller
falls back to :func:`read_instance_fields`, which reads the file up to Pixel Data with pydicom
(``stop_before_pixels`` + ``specific_tags``; several hundred microseconds) and decodes every
value by its Specific Character Set.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

__all__ = [
    "NONPATIENT_CLASSES",
    "NON_PATIENT_TAGS",
    "InstanceFields",
    "fields_from_dataset",
    "read_instance_fields",
    "scan_instance_fields",
]


#: Storage SOP classes of objects outside the patient hierarchy (their IODs have no Patient
#: or General Study module, PS3.3 A.44, A.58, A.61-A.63, A.82-A.83): Hanging Protocol, Color
#: Palette, Generic Implant Template, Implant Assembly Template, Implant Template Group,
#: Defined Procedure Protocol, Protocol Approval.
NONPATIENT_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.38.1", "1.2.840.10008.5.1.4.39.1", "1.2.840.10008.5.1.4.43.1",
    "1.2.840.10008.5.1.4.44.1", "1.2.840.10008.5.1.4.45.1", "1.2.840.10008.5.1.4.1.1.200.1",
    "1.2.840.10008.5.1.4.1.1.200.3",
})  # fmt: skip

# keyword -> tag of the attributes scanned (PS3.6); all at or below (0020,0013)
_TAG_OF = {
    "SOPInstanceUID": 0x00080018, "SOPClassUID": 0x00080016, "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E, "PatientID": 0x00100020, "PatientName": 0x00100010,
    "PatientBirthDate": 0x00100030, "PatientSex": 0x00100040, "StudyDate": 0x00080020,
    "StudyTime": 0x00080030, "AccessionNumber": 0x00080050, "StudyID": 0x00200010,
    "StudyDescription": 0x00081030, "ReferringPhysicianName": 0x00080090,
    "Modality": 0x00080060, "SeriesNumber": 0x00200011, "SeriesDescription": 0x0008103E,
    "InstanceNumber": 0x00200013, "SpecificCharacterSet": 0x00080005,
    "IssuerOfPatientID": 0x00100021, "TimezoneOffsetFromUTC": 0x00080201,
}  # fmt: skip

@dataclass(frozen=True, slots=True)
class InstanceFields:
    """The indexed attributes of one instance, as stripped strings (``''`` when absent)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    study_description: str = ""
    referring_physician_name: str = ""
    modality: str = ""
    series_number: str = ""
    series_description: str = ""
    instance_number: str = ""
    specific_character_set: str = ""
    issuer_of_patient_id: str = ""
    timezone_offset: str = ""
    # objects outside the patient hierarchy (PS3.4 Annex U Hanging Protocol, Annex X Color
    # Palette, ...): what their own Q/R models match on (read by pydicom only)
    label: str = ""  # Hanging Protocol Name (0072,0002) or Content Label (0070,0080)
    description: str = ""  # Hanging Protocol Description (0072,0004) / Content Description
    creator: str = ""  # Hanging Protocol Creator (0072,0008) / Content Creator's Name
    created: str = ""  # Hanging Protocol Creation DateTime (0072,000A) / Content Date+Time
    level: str = ""  # Hanging Protocol Level (0072,0006)

    @property
    def in_patient_hierarchy(self) -> bool:
        """Whether the instance belongs to a patient's study (PS3.3 C.7.1/C.7.2); False for
        the objects outside it -- a SOP class of :data:`NONPATIENT_CLASSES`, or no Study
        Instance UID and no patient at all -- indexed by their own keys. (An image that names
        a patient but lacks its Study Instance UID stays a patient object, and is refused.)"""
        if self.study_instance_uid:
            return True
        if self.sop_class_uid in NONPATIENT_CLASSES:
            return False
        return bool(self.patient_id or self.patient_name)


_FIELD_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("sop_instance_uid", "SOPInstanceUID"),
    ("sop_class_uid", "SOPClassUID"),
    ("study_instance_uid", "StudyInstanceUID"),
    ("series_instance_uid", "SeriesInstanceUID"),
    ("patient_id", "PatientID"),
    ("patient_name", "PatientName"),
    ("patient_birth_date", "PatientBirthDate"),
    ("patient_sex", "PatientSex"),
    ("study_date", "StudyDate"),
    ("study_time", "StudyTime"),
    ("accession_number", "AccessionNumber"),
    ("study_id", "StudyID"),
    ("study_description", "StudyDescription"),
    ("referring_physician_name", "ReferringPhysicianName"),
    ("modality", "Modality"),
    ("series_number", "SeriesNumber"),
    ("series_description", "SeriesDescription"),
    ("instance_number", "InstanceNumber"),
    ("specific_character_set", "SpecificCharacterSet"),
    ("issuer_of_patient_id", "IssuerOfPatientID"),
    ("timezone_offset", "TimezoneOffsetFromUTC"),
)
_FIELD_TAGS: tuple[tuple[str, BaseTag], ...] = tuple(
    (name, BaseTag(_TAG_OF[kw])) for name, kw in _FIELD_KEYWORDS
)
# Non-patient objects' labels: (field, tags in order of preference), PS3.3 C.23.1 / C.7.6.20
NON_PATIENT_TAGS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("label", (0x00720002, 0x00700080)),
    ("description", (0x00720004, 0x00700081)),
    ("creator", (0x00720008, 0x00700084)),
    ("level", (0x00720006,)),
)
_CREATED_DT, _CONTENT_DATE, _CONTENT_TIME = 0x0072000A, 0x00080023, 0x00080033
_READ_TAGS = [tag for _, tag in _FIELD_TAGS] + [
    BaseTag(t) for _, tags in NON_PATIENT_TAGS for t in tags
] + [BaseTag(_CREATED_DT), BaseTag(_CONTENT_DATE), BaseTag(_CONTENT_TIME)]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, bytes)):
        s = value.decode("latin-1") if isinstance(value, bytes) else value
        return s.strip(" \x00")
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_text(v) for v in value)
    return str(value).strip(" \x00")


def fields_from_dataset(ds: Dataset) -> InstanceFields:
    """Extract the indexed attributes from a (possibly partial) decoded data set."""
    values: dict[str, str] = {}
    for name, tag in _FIELD_TAGS:
        elem = ds.get(tag)
        values[name] = "" if elem is None else _text(elem.value)
    if not values["study_instance_uid"]:
        for name, tags in NON_PATIENT_TAGS:
            for t in tags:
                elem = ds.get(t)
                if elem is not None and elem.value not in (None, ""):
                    values[name] = _text(elem.value)
                    break
        created = ds.get(_CREATED_DT)
        if created is not None and created.value:
            values["created"] = _text(created.value)
        else:
            date, time = ds.get(_CONTENT_DATE), ds.get(_CONTENT_TIME)
            values["created"] = (_text(date.value) if date is not None else "") + (
                _text(time.value) if time is not None and date is not None else "")
    return InstanceFields(**values)


# --- fast header scan (the C-STORE hot path) ---------------------------------------------------
# The indexed tags all lie at or below (0020,0013), near the start of a data set.  For Implicit
# and Explicit VR Little Endian, walk the element headers (PS3.5 7.1) of the first bytes of the
# encoded data set, skip values and undefined-length sequences (PS3.5 7.5), keep the raw values
# of the wanted tags and decode only those.  Anything unusual (big endian, deflate, a character
# set other than the default / Latin-1 / UTF-8, the scan running past the bytes given, deep
# nesting) returns None and the caller falls back to pydicom.

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE_LIKE_EXCLUDED = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})
_TAG_HDR = struct.Struct("<HHI")  # implicit VR: group, element, 32-bit length
_EXPL_HDR = struct.Struct("<HH2sH")  # explicit VR, short form
_U32 = struct.Struct("<I")
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_WANTED: dict[int, str] = {int(tag): name for name, tag in _FIELD_TAGS}
_MAX_WANTED = max(_WANTED)
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_SIMPLE_CHARSETS = {
    "": "latin-1",
    "ISO_IR 6": "latin-1",
    "ISO_IR 100": "latin-1",
    "ISO_IR 192": "utf-8",
}


def _header(buf: memoryview, pos: int, implicit: bool) -> tuple[int, int, int] | None:
    """(tag, value length, header size) at ``pos``, or None past the end."""
    end = len(buf)
    if pos + 8 > end:
        return None
    if implicit:
        group, elem, length = _TAG_HDR.unpack_from(buf, pos)
        return (group << 16) | elem, length, 8
    group, elem, vr, length = _EXPL_HDR.unpack_from(buf, pos)
    if group == 0xFFFE:  # item / delimiters have no VR (PS3.5 7.5)
        return (group << 16) | elem, _U32.unpack_from(buf, pos + 4)[0], 8
    if vr in _LONG_VRS:
        if pos + 12 > end:
            return None
        return (group << 16) | elem, _U32.unpack_from(buf, pos + 8)[0], 12
    return (group << 16) | elem, length, 8


def _skip_undefined(buf: memoryview, pos: int, implicit: bool, depth: int) -> int | None:
    """Position after the delimiter closing an undefined-length sequence or item content."""
    if depth > 16:
        return None
    while True:
        h = _header(buf, pos, implicit)
        if h is None:
            return None
        tag, length, size = h
        pos += size
        if tag in (_SEQ_END, _ITEM_END):
            return pos
        if length == _UNDEFINED:
            # an item of undefined length, or a nested undefined-length sequence in it
            nxt = _skip_undefined(buf, pos, implicit, depth + 1)
            if nxt is None:
                return None
            pos = nxt
        else:
            pos += length
        if pos > len(buf):
            return None


def scan_instance_fields(
    data: bytes | bytearray | memoryview, transfer_syntax: str, *, whole: bool = True
) -> InstanceFields | None:
    """The indexed attributes from the start of an encoded data set (no file meta), without
    pydicom; None when this fast path does not apply (see above).  ``whole``: ``data`` is the
    entire data set, not just its first bytes."""
    if transfer_syntax in _EXPLICIT_LE_LIKE_EXCLUDED:
        return None
    implicit = transfer_syntax == _IMPLICIT_LE
    buf = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    raw: dict[str, bytes] = {}
    pos = 0
    end = len(buf)
    complete = False
    while True:
        h = _header(buf, pos, implicit)
        if h is None:
            complete = whole and pos == end  # the whole data set was scanned
            break
        tag, length, size = h
        if tag > _MAX_WANTED:
            complete = True
            break
        pos += size
        if length == _UNDEFINED:
            nxt = _skip_undefined(buf, pos, implicit, 0)
            if nxt is None:
                return None
            pos = nxt
            continue
        if pos + length > end:
            return None
        name = _WANTED.get(tag)
        if name is not None:
            raw[name] = bytes(buf[pos : pos + length])
        pos += length
    if not complete:
        return None
    charset = raw.get("specific_character_set", b"").decode("latin-1").strip(" \x00")
    codec = _SIMPLE_CHARSETS.get(charset)
    if codec is None:
        return None
    try:
        values = {k: v.decode(codec).strip(" \x00") for k, v in raw.items()}
    except UnicodeDecodeError:
        return None
    values["specific_character_set"] = charset
    if not values.get("study_instance_uid"):
        return None  # a non-patient object: its own keys are read by pydicom
    for required in ("sop_instance_uid", "sop_class_uid"):
        values.setdefault(required, "")
    values.setdefault("series_instance_uid", "")
    return InstanceFields(**values)


def read_instance_fields(path: str | os.PathLike[str]) -> tuple[InstanceFields, str]:
    """(fields, transfer syntax UID) of a Part 10 file, reading no further than Pixel Data."""
    ds = dcmread(path, stop_before_pixels=True, specific_tags=_READ_TAGS)
    ts = ds.file_meta.get("TransferSyntaxUID", "")  # a FileDataset always has file_meta
    return fields_from_dataset(ds), _text(ts)
