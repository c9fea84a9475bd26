"""The rules of PS3.4 F.7.2 the MPPS SCP enforces: the SOP class, the step's states, the
attributes Table F.7.2-1 requires or forbids, and the checks of an N-CREATE and an N-SET, each
refusal an :class:`MPPSError` carrying the status to answer with.

Theory of operation
-------------------
A modality reports the work it does as a *performed procedure step* (PS3.4 F.1): it creates
the step with N-CREATE when it starts (Performed Procedure Step Status "IN PROGRESS"), updates
it with N-SET while it works, and ends it with an N-SET to "COMPLETED" or "DISCONTINUED"
(PS3.4 Table F.1-4). A step in one of those two final states can no longer be changed.

The checks and the status each answers (the handlers of
:func:`~dicomnet.archive.mpps.handlers.mpps_handlers` turn a refusal into a status data set
with Error Comment (0000,0902) and, where an attribute is at fault, Offending Element
(0000,0901); a refused request changes nothing):

================================================  =========================================
condition                                          status (where the standard says so)
================================================  =========================================
N-CREATE/N-SET of another SOP class                0118H No such SOP Class (PS3.7 C.5)
N-CREATE with a malformed SOP Instance UID         0117H Invalid object instance (PS3.7 C.5)
N-CREATE of a SOP Instance UID already known       0111H Duplicate SOP Instance (PS3.7 10.1.5)
N-CREATE without a type 1 attribute of Table       0120H Missing attribute (PS3.4 5.4.2.1)
F.7.2-1 (or an item without its type 1 attribute)
N-CREATE with such an attribute empty              0121H Missing attribute value (5.4.2.1)
N-CREATE with a status other than IN PROGRESS      0106H Invalid attribute value (F.7.2.1.3)
N-SET of an unknown SOP Instance                   0112H No such SOP Instance (PS3.7 10.1.3)
N-SET of a COMPLETED or DISCONTINUED step          0110H Processing failure, Error Comment
                                                   "Performed Procedure Step Object may no
                                                   longer be updated", Error ID A710H
                                                   (F.7.2.2.3, Table F.7.2-2)
N-SET of an attribute Table F.7.2-1 marks "Not     0105H No such attribute (5.4.2.1 "Not
allowed" for N-SET (patient, scheduling, start     Allowed"; the SCP does not take it, as
and station attributes)                            PS3.4 H.2.4 answers an unsupported one)
N-SET of an empty status                           0121H Missing attribute value (3/1: zero
                                                   length not permitted, 5.4.2.1)
N-SET of a status that is not one of the three     0106H Invalid attribute value (PS3.3
enumerated values                                  C.4.14 enumerated values)
SOP Class/Instance UID in the data set that        0106H Invalid attribute value
differ from the request's
an undecodable data set, a database failure        0110H Processing failure (PS3.7 C.4)
================================================  =========================================

``strict=True`` adds two checks the standard puts on the SCU: every type 2 attribute of Table
F.7.2-1 present in the N-CREATE (0120H), and the Final State requirements met when an N-SET
ends the step (PS3.4 Table F.7.2-1 "Final State" column and its Note 2: end date and time, and a
Performed Series Sequence with at least one item whose Series Instance UID and Protocol Name
are set; 0120H or 0121H). Off by default: many modalities in the field send less, and refusing
their final N-SET would leave the step open forever.

The checks here look at a data set alone. :mod:`~dicomnet.archive.mpps.store` runs them and
answers itself the rows that need the request's UID or the stored step (0117H, 0111H, 0112H,
a step no longer updatable, a database failure); :mod:`~dicomnet.archive.mpps.handlers`
answers another SOP class and an undecodable data set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from dicomnet.dimse.status import Status
from dicomnet.uid import is_valid_uid

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement

#: Modality Performed Procedure Step SOP Class (PS3.4 F.7.1).
MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"

# Performed Procedure Step Status (0040,0252), PS3.3 C.4.14; states and transitions PS3.4 F.1.
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
FINAL_STATES = frozenset({COMPLETED, DISCONTINUED})
_STATES = frozenset({IN_PROGRESS, COMPLETED, DISCONTINUED})

#: PS3.4 F.7.2.2.4, Table F.7.2-2: the N-SET of a step that is no longer IN PROGRESS.
ERROR_NO_LONGER_UPDATABLE = "Performed Procedure Step Object may no longer be updated"
ERROR_ID_NO_LONGER_UPDATABLE = 0xA710

# Tags (PS3.6), named once.
SPECIFIC_CHARACTER_SET = 0x00080005
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
_STATUS = 0x00400252
SSAS = 0x00400270  # Scheduled Step Attributes Sequence
STUDY_INSTANCE_UID = 0x0020000D
PERFORMED_SERIES = 0x00400340  # Performed Series Sequence
SERIES_INSTANCE_UID = 0x0020000E
_PROTOCOL_NAME = 0x00181030
_END_DATE = 0x00400250
_END_TIME = 0x00400251

# PS3.4 Table F.7.2-1, N-CREATE column "1/1": the SCU shall send them, not empty.
_CREATE_TYPE1 = (
    0x00400270,  # Scheduled Step Attributes Sequence
    0x00400253,  # Performed Procedure Step ID
    0x00400241,  # Performed Station AE Title
    0x00400244,  # Performed Procedure Step Start Date
    0x00400245,  # Performed Procedure Step Start Time
    0x00400252,  # Performed Procedure Step Status
    0x00080060,  # Modality
)
# Table F.7.2-1, N-CREATE column "2/2" (checked with strict=True): present, may be empty.
_CREATE_TYPE2 = (
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x00100030,  # Patient's Birth Date
    0x00100040,  # Patient's Sex
    0x00081120,  # Referenced Patient Sequence
    0x00400242,  # Performed Station Name
    0x00400243,  # Performed Location
    0x00400254,  # Performed Procedure Step Description
    0x00400255,  # Performed Procedure Type Description
    0x00081032,  # Procedure Code Sequence
    0x00400250,  # Performed Procedure Step End Date
    0x00400251,  # Performed Procedure Step End Time
    0x00200010,  # Study ID
    0x00400260,  # Performed Protocol Code Sequence
    0x00400340,  # Performed Series Sequence
)
# Table F.7.2-1, items of the Scheduled Step Attributes Sequence, "2/2" (strict=True).
_SSAS_TYPE2 = (
    0x00080050,  # Accession Number
    0x00081110,  # Referenced Study Sequence
    0x00401001,  # Requested Procedure ID
    0x00321060,  # Requested Procedure Description
    0x00400009,  # Scheduled Procedure Step ID
    0x00400007,  # Scheduled Procedure Step Description
    0x00400008,  # Scheduled Protocol Code Sequence
)
# Table F.7.2-1, N-SET column "Not allowed": fixed once the step is created.
_NOT_SETTABLE = frozenset({
    0x00400270,  # Scheduled Step Attributes Sequence
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x00100021,  # Issuer of Patient ID
    0x00100024,  # Issuer of Patient ID Qualifiers Sequence
    0x00101002,  # Other Patient IDs Sequence
    0x00100030,  # Patient's Birth Date
    0x00100040,  # Patient's Sex
    0x00081120,  # Referenced Patient Sequence
    0x00400253,  # Performed Procedure Step ID
    0x00400241,  # Performed Station AE Title
    0x00400242,  # Performed Station Name
    0x00400243,  # Performed Location
    0x00400244,  # Performed Procedure Step Start Date
    0x00400245,  # Performed Procedure Step Start Time
    0x00080060,  # Modality
    0x00200010,  # Study ID
})  # fmt: skip


class MPPSError(Exception):
    """A refused N-CREATE/N-SET: the status to answer with (see the module docstring)."""

    def __init__(self, code: int, comment: str, offending: Sequence[int] = (),
                 error_id: int | None = None) -> None:  # fmt: skip
        super().__init__(comment)
        self.code = code
        self.comment = comment
        self.offending = tuple(offending)
        self.error_id = error_id

    def status(self) -> Dataset:
        """The status data set (PS3.7 Annex C): Status, Error Comment, Offending Element,
        Error ID as they apply."""
        ds = Dataset()
        ds.Status = self.code
        ds.ErrorComment = self.comment[:64]
        if self.offending:
            ds.OffendingElement = list(self.offending)
        if self.error_id is not None:
            ds.ErrorID = self.error_id
        return ds


# --- checks (PS3.4 Table F.7.2-1, 5.4.2.1) -----------------------------------------------------


def check_sop_common(ds: Dataset, uid: str) -> None:
    """SOP Class/Instance UID in the data set, if sent, must be the request's."""
    for tag, expected in ((SOP_CLASS_UID, MPPS_SOP_CLASS), (SOP_INSTANCE_UID, uid)):
        if tag in ds and not ds[tag].is_empty and str(ds[tag].value).strip() != expected:
            raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE,
                            f"{ds[tag].keyword} {ds[tag].value} is not {expected}", [tag])  # fmt: skip


def check_create(ds: Dataset, *, strict: bool) -> None:
    missing = [tag for tag in _CREATE_TYPE1 if tag not in ds]
    if missing:
        raise MPPSError(Status.MISSING_ATTRIBUTE, "missing " + _names(missing), missing)
    empty = [tag for tag in _CREATE_TYPE1 if _empty(ds[tag])]
    if empty:
        raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE, "empty " + _names(empty), empty)
    for item in ds[SSAS].value:  # items: >Study Instance UID 1/1
        _check_item(item, SSAS, STUDY_INSTANCE_UID)
    _check_series_items(ds, strict=False)
    status = str(ds[_STATUS].value).strip()
    if status != IN_PROGRESS:
        # PS3.4 F.7.2.1.3: a step is created IN PROGRESS; anything else is 0106H
        raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE,
                        f"PerformedProcedureStepStatus {status!r} is not {IN_PROGRESS!r}",
                        [_STATUS])  # fmt: skip
    if strict:
        absent = [tag for tag in _CREATE_TYPE2 if tag not in ds]
        if absent:
            raise MPPSError(Status.MISSING_ATTRIBUTE, "missing " + _names(absent), absent)
        for item in ds[SSAS].value:
            for tag in _SSAS_TYPE2:
                if tag not in item:
                    raise MPPSError(Status.MISSING_ATTRIBUTE, f"missing {_path(SSAS, tag)}",
                                    [SSAS, tag])  # fmt: skip


def _check_item(item: Dataset, sequence: int, tag: int) -> None:
    """A type 1 UID in a sequence item: present (0120H), not empty (0121H), valid (0106H)."""
    where = _path(sequence, tag)
    if tag not in item:
        raise MPPSError(Status.MISSING_ATTRIBUTE, f"missing {where}", [sequence, tag])
    if _empty(item[tag]):
        raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE, f"empty {where}", [sequence, tag])
    if not is_valid_uid(str(item[tag].value).strip()):
        raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE, f"invalid {where}", [sequence, tag])


def _check_series_items(ds: Dataset, *, strict: bool) -> None:
    """Performed Series Sequence items: >Series Instance UID 1/1 (and >Protocol Name 1/1,
    checked with strict)."""
    if PERFORMED_SERIES not in ds or ds[PERFORMED_SERIES].value is None:
        return
    for item in ds[PERFORMED_SERIES].value:
        _check_item(item, PERFORMED_SERIES, SERIES_INSTANCE_UID)
        if strict:
            where = _path(PERFORMED_SERIES, _PROTOCOL_NAME)
            if _PROTOCOL_NAME not in item:
                raise MPPSError(Status.MISSING_ATTRIBUTE, f"missing {where}",
                                [PERFORMED_SERIES, _PROTOCOL_NAME])  # fmt: skip
            if _empty(item[_PROTOCOL_NAME]):
                raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE, f"empty {where}",
                                [PERFORMED_SERIES, _PROTOCOL_NAME])  # fmt: skip


def check_set(mod: Dataset) -> str | None:
    """The modification list's own rules; the new status (None: not changed)."""
    refused = sorted(int(elem.tag) for elem in mod if int(elem.tag) in _NOT_SETTABLE)
    if refused:
        raise MPPSError(Status.NO_SUCH_ATTRIBUTE,
                        "not allowed in N-SET: " + _names(refused), refused)  # fmt: skip
    _check_series_items(mod, strict=False)
    if _STATUS not in mod:
        return None
    if _empty(mod[_STATUS]):
        raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE, "empty PerformedProcedureStepStatus",
                        [_STATUS])  # fmt: skip
    status = str(mod[_STATUS].value).strip()
    if status not in _STATES:
        raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE,
                        f"PerformedProcedureStepStatus {status!r} is not an enumerated value",
                        [_STATUS])  # fmt: skip
    return status


def check_final_state(ds: Dataset) -> None:
    """PS3.4 Table F.7.2-1 "Final State" column and Note 2 (strict only)."""
    for tag in (_END_DATE, _END_TIME, PERFORMED_SERIES):
        if tag not in ds:
            raise MPPSError(Status.MISSING_ATTRIBUTE, "final state: missing " + _names([tag]),
                            [tag])  # fmt: skip
        if _empty(ds[tag]):
            raise MPPSError(Status.MISSING_ATTRIBUTE_VALUE,
                            "final state: empty " + _names([tag]), [tag])  # fmt: skip
    _check_series_items(ds, strict=True)


def _empty(elem: DataElement) -> bool:
    value = elem.value
    if value is None:
        return True
    if isinstance(value, str | bytes):
        return not value.strip()
    if elem.VR == "SQ":
        return len(value) == 0
    return bool(elem.is_empty) or not str(value).strip()


def _path(sequence: int, tag: int) -> str:
    """'ScheduledStepAttributesSequence>StudyInstanceUID' (PS3.3's nesting notation)."""
    # lazy: pydicom's data dictionary, only when a request is refused
    from pydicom.datadict import keyword_for_tag

    return f"{keyword_for_tag(sequence)}>{keyword_for_tag(tag)}"


def _names(tags: Iterable[int]) -> str:
    """'Modality (0008,0060), ...' for error comments."""
    # lazy: pydicom's data dictionary, only when a request is refused
    from pydicom.datadict import keyword_for_tag

    out = []
    for tag in tags:
        name = keyword_for_tag(tag) or "Unknown"
        out.append(f"{name} ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    return ", ".join(out)
