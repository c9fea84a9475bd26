"""DIMSE status codes under the names pynetdicom programs use (PS3.7 Annex C, PS3.4).

Theory of operation
-------------------
dicomnet's own status vocabulary is :mod:`dicomnet.dimse.status` (the :class:`Status` codes,
:class:`~dicomnet.dimse.status.Category` and the cheap :func:`~dicomnet.dimse.status.category`
used on every response). This module re-expresses it in the shape of pynetdicom's ``status``
module, so that a program written for pynetdicom runs unchanged:

* ``STATUS_SUCCESS`` ... ``STATUS_PENDING`` are the category names of PS3.7 Annex C as strings
  (the values of :class:`~dicomnet.dimse.status.Category`), plus ``STATUS_UNKNOWN``.
* :func:`code_to_category` follows the class convention of PS3.7 Annex C: 0000 success;
  0001, Bxxx, 0107 and 0116 warning; Axxx, Cxxx and the rest of 01xx and 02xx failure; FE00
  cancel; FF00 and FF01 pending. PS3.7 says no other value may be used, so any other code is
  ``"Unknown"`` (where :func:`~dicomnet.dimse.status.category`, which must decide what to do
  with a response, treats it as a failure).
* ``GENERAL_STATUS`` holds the codes of PS3.7 Annex C that any DIMSE service may return (C.1,
  C.3, C.4 and C.5 statuses; Pending and 0001 have service-specific meanings and are in the
  service tables) and each ``*_STATUS`` table adds one service class's codes of PS3.4, as a
  plain ``{code: (category, meaning)}`` dict. Where PS3.4 gives a range (``A7xx``, ``Cxxx``),
  every code of it is a key, so a lookup is one dict access; ranges are expanded first and
  exact codes then override them. The meanings are short paraphrases of the standard's.

The tables are built at import (about 35,000 entries, a few milliseconds); nothing on a client
tool's start-up path imports this module. :func:`code_to_status` imports pydicom when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dicomnet.dimse.status import SERVICE_STATUS, STATUS, Category, Status, category

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS",
    "GENERAL_STATUS",
    "MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS",
    "MODALITY_WORKLIST_SERVICE_CLASS_STATUS",
    "NON_PATIENT_SERVICE_CLASS_STATUS",
    "PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS",
    "PROCEDURE_STEP_STATUS",
    "QR_FIND_SERVICE_CLASS_STATUS",
    "QR_GET_SERVICE_CLASS_STATUS",
    "QR_MOVE_SERVICE_CLASS_STATUS",
    "RELEVANT_PATIENT_SERVICE_CLASS_STATUS",
    "RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS",
    "STATUS_CANCEL",
    "STATUS_FAILURE",
    "STATUS_PENDING",
    "STATUS_SUCCESS",
    "STATUS_UNKNOWN",
    "STATUS_WARNING",
    "STORAGE_COMMITMENT_SERVICE_CLASS_STATUS",
    "STORAGE_MANAGEMENT_SERVICE_CLASS_STATUS",
    "STORAGE_SERVICE_CLASS_STATUS",
    "SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS",
    "UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS",
    "VERIFICATION_SERVICE_CLASS_STATUS",
    "Status",
    "StatusDictType",
    "code_to_category",
    "code_to_status",
]

STATUS_SUCCESS: Final = Category.SUCCESS.value
STATUS_WARNING: Final = Category.WARNING.value
STATUS_FAILURE: Final = Category.FAILURE.value
STATUS_CANCEL: Final = Category.CANCEL.value
STATUS_PENDING: Final = Category.PENDING.value
STATUS_UNKNOWN: Final = "Unknown"

StatusDictType = dict[int, tuple[str, str]]
"""A status table: code -> (category, meaning)."""


def _check(code: object) -> int:
    if not isinstance(code, int) or code < 0:
        raise ValueError(f"a status code is a non-negative integer, not {code!r}")
    return code


def code_to_category(code: int) -> str:
    """The PS3.7 Annex C category of ``code`` (``STATUS_SUCCESS`` ...), ``STATUS_UNKNOWN`` for
    a value outside every class. Raises :class:`ValueError` for a negative or non-int code."""
    code = _check(code)
    if (
        code in (0x0000, 0x0001, 0xFE00, 0xFF00, 0xFF01)
        or 0x0100 <= code <= 0x02FF
        or 0xA000 <= code <= 0xCFFF
    ):
        return category(code).value
    return STATUS_UNKNOWN


def code_to_status(code: int) -> Dataset:
    """A dataset holding only Status (0000,0900) = ``code``, the form an event handler may
    return. Raises :class:`ValueError` unless 0 <= ``code`` <= 0xFFFF (a US value)."""
    code = _check(code)
    if code > 0xFFFF:
        raise ValueError(f"status code 0x{code:X} does not fit in a US value")
    # lazy: pydicom only when a dataset is asked for (this module is otherwise pydicom-free)
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Status = code
    return ds


# --- the tables -------------------------------------------------------------------------------

_Spec = dict[int | tuple[int, int], tuple[Category, str]]
_S, _W, _F, _C, _P = (
    Category.SUCCESS,
    Category.WARNING,
    Category.FAILURE,
    Category.CANCEL,
    Category.PENDING,
)

GENERAL_STATUS: Final[StatusDictType] = {
    code: (cat.value, meaning)
    for code, (cat, meaning) in STATUS.items()
    if code not in (0x0001, 0xFF00)
}
"""PS3.7 Annex C statuses every DIMSE service may return."""


def _table(spec: _Spec) -> StatusDictType:
    """GENERAL_STATUS plus ``spec``'s codes; ranges first, exact codes over them."""
    table = dict(GENERAL_STATUS)
    for key, (cat, meaning) in spec.items():
        if isinstance(key, tuple):
            entry = (cat.value, meaning)
            table.update(dict.fromkeys(range(key[0], key[1] + 1), entry))
    for key, (cat, meaning) in spec.items():
        if not isinstance(key, tuple):
            table[int(key)] = (cat.value, meaning)  # a plain int, not a Status member
    return table


_OPTIONAL_NOT_SUPPORTED = (_W, "Requested optional attributes are not supported")
_MATCH_SUPPLIED = (_P, "Matches are continuing, current match supplied")
_MATCH_SUPPLIED_WARNING = (
    _P,
    "Matches are continuing, current match supplied; optional keys not supported",
)

_FIND: _Spec = {
    Status.OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
    Status.DATA_SET_DOES_NOT_MATCH: (_F, "Identifier does not match SOP class"),
    (0xC000, 0xCFFF): (_F, "Unable to process"),
    0xFF00: _MATCH_SUPPLIED,
    0xFF01: _MATCH_SUPPLIED_WARNING,
}

_RETRIEVE: _Spec = {
    Status.OUT_OF_RESOURCES_MATCHES: (_F, "Refused: out of resources, cannot count matches"),
    Status.OUT_OF_RESOURCES_SUBOPERATIONS: (
        _F,
        "Refused: out of resources, cannot perform sub-operations",
    ),
    Status.DATA_SET_DOES_NOT_MATCH: (_F, "Identifier does not match SOP class"),
    # frame-level and composite instance retrieve (PS3.4 C.4.3.1.4, Annex Y)
    0xAA00: (_F, "None of the requested frames exist in the SOP instance"),
    0xAA01: (_F, "Cannot create a new instance of this SOP class"),
    0xAA02: (_F, "Unable to extract the frames"),
    0xAA03: (_F, "Time-based request for an instance that is not time-based"),
    0xAA04: (_F, "Invalid request"),
    Status.SUBOPERATIONS_WARNING: (_W, "Sub-operations complete, some failed or had warnings"),
    (0xC000, 0xCFFF): (_F, "Unable to process"),
    Status.PENDING: (_P, "Sub-operations are continuing"),
}

_UPS_FAILURES = {
    0xC300: "The UPS may no longer be updated",
    0xC301: "The correct Transaction UID was not given",
    0xC302: "The UPS is already IN PROGRESS",
    0xC303: "A UPS becomes SCHEDULED only through N-CREATE",
    0xC304: "The UPS does not meet the final state requirements of the change",
    0xC307: "No UPS managed by this SCP has that SOP Instance UID",
    0xC308: "The receiving AE title is unknown to this SCP",
    0xC309: "The UPS State given was not SCHEDULED",
    0xC310: "The UPS is not yet IN PROGRESS",
    0xC311: "The UPS is already COMPLETED",
    0xC312: "The performer cannot be contacted",
    0xC313: "The performer chooses not to cancel",
    0xC314: "The action is not appropriate for this instance",
    0xC315: "The SCP does not support event reports",
}

# PS3.4 Annex A: Verification adds nothing to the general statuses
VERIFICATION_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table({})

# PS3.4 Annex B.2.3, Table B.2-1 (dicomnet's C-STORE table)
STORAGE_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(SERVICE_STATUS["C-STORE"])

# PS3.4 Annex C.4.1, Table C.4-1 (and C.6.4 Repository Query: A710, B001)
QR_FIND_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {
        **_FIND,
        0xA710: (_F, "Invalid Prior Record Key"),
        0xB001: (_W, "Response limit reached; a further query may return more matches"),
    }
)

# PS3.4 Annex C.4.3, Table C.4-3
QR_GET_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(_RETRIEVE)

# PS3.4 Annex C.4.2, Table C.4-2
QR_MOVE_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {**_RETRIEVE, Status.MOVE_DESTINATION_UNKNOWN: (_F, "Refused: move destination unknown")}
)

# PS3.4 Annex K.4.1, Table K.4-1
MODALITY_WORKLIST_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(_FIND)

# PS3.4 Annex F (N-CREATE/N-SET of Modality Performed Procedure Step)
PROCEDURE_STEP_STATUS: Final[StatusDictType] = _table({0x0001: _OPTIONAL_NOT_SUPPORTED})

# PS3.4 Annex J: the general statuses only
STORAGE_COMMITMENT_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table({})

# PS3.4 Annex H (N-CREATE/N-SET/N-ACTION of the print management SOP classes)
PRINT_JOB_MANAGEMENT_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {
        0xB600: (_W, "Memory allocation is not supported"),
        0xB601: (_W, "Film session printing (collation) is not supported"),
        0xB602: (_W, "The film session has no image boxes (empty page)"),
        0xB603: (_W, "The film box has no image boxes (empty page)"),
        0xB604: (_W, "Image larger than its image box; it was demagnified"),
        0xB605: (_W, "Density outside the printer's range; the printer's limit is used"),
        0xB609: (_W, "Image larger than its image box; it was cropped"),
        0xB60A: (_W, "Image or combined print image larger than its box; it was decimated"),
        0xC600: (_F, "The film session has no film boxes"),
        0xC601: (_F, "Cannot create the print job: the print queue is full"),
        0xC602: (_F, "Cannot create the print job for the film box: the print queue is full"),
        0xC603: (_F, "Image larger than its image box"),
        0xC605: (_F, "Not enough printer memory for the image"),
        0xC613: (_F, "Combined print image larger than its image box"),
        0xC616: (_F, "An earlier film box is unprinted; no new film box is created"),
    }
)

# PS3.4 Annex S
MEDIA_CREATION_MANAGEMENT_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {
        0x0001: _OPTIONAL_NOT_SUPPORTED,
        0xA510: (_F, "Initiate Media Creation was already received for this instance"),
        0xC201: (_F, "The media creation request is already complete"),
        0xC202: (_F, "The media creation request is in progress and cannot be interrupted"),
        0xC203: (_F, "Cancellation denied"),
    }
)

# PS3.4 Annex P (procedural event and substance administration logging)
APPLICATION_EVENT_LOGGING_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {
        0xB101: (_W, "Synchronization Frame of Reference UID differs from the SCP's"),
        0xB102: (_W, "Study Instance UID coerced; event logged under another study"),
        0xB104: (_W, "IDs inconsistent with the current study; event logged"),
        0xC101: (_F, "Procedural logging unavailable for the Study Instance UID"),
        0xC102: (_F, "Event information does not match the template"),
        0xC103: (_F, "The event matches no current study"),
        0xC104: (_F, "IDs inconsistent with the current study; event not logged"),
        0xC10E: (_F, "Operator not authorized to add to the medication administration record"),
        0xC110: (_F, "Patient not identified by Patient ID or Admission ID"),
        0xC111: (_F, "Updating the medication administration record failed"),
    }
)

# PS3.4 Annex Q
RELEVANT_PATIENT_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {
        Status.OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
        Status.DATA_SET_DOES_NOT_MATCH: (_F, "Identifier does not match SOP class"),
        0xC000: (_F, "Unable to process"),
        0xC100: (_F, "More than one match found"),
        0xC200: (_F, "The requested template is not supported"),
        Status.PENDING: (_P, "Current match supplied"),
    }
)

# PS3.4 Annex V
SUBSTANCE_ADMINISTRATION_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {**_FIND, Status.DATA_SET_DOES_NOT_MATCH: (_F, "Data set does not match SOP class")}
)

# PS3.4 Annex GG
NON_PATIENT_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {
        Status.OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
        Status.DATA_SET_DOES_NOT_MATCH: (_F, "Data set does not match SOP class"),
        Status.CANNOT_UNDERSTAND: (_F, "Cannot understand"),
    }
)

# PS3.4 Annex DD
RT_MACHINE_VERIFICATION_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {
        0xC112: (_F, "No applicable machine verification instance"),
        0xC221: (_F, "The Referenced Fraction Group Number is not in the plan"),
        0xC222: (_F, "The referenced fraction group has no beams"),
        0xC223: (_F, "Already verifying; the request cannot be processed now"),
        0xC224: (_F, "The Referenced Beam Number is not in the fraction group"),
        0xC225: (_F, "The referenced device or accessory is not supported"),
        0xC226: (_F, "The referenced device or accessory is not in the beam"),
        0xC227: (_F, "The referenced RT Plan was not found"),
    }
)

# PS3.4 Annex KK (Storage Management)
STORAGE_MANAGEMENT_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {0xB010: (_W, "Some key attributes are not supported for matching")}
)

# PS3.4 Annex CC (Unified Procedure Step: N-CREATE/N-SET/N-GET/N-ACTION and C-FIND)
UNIFIED_PROCEDURE_STEP_SERVICE_CLASS_STATUS: Final[StatusDictType] = _table(
    {
        0x0001: _OPTIONAL_NOT_SUPPORTED,
        Status.OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
        Status.DATA_SET_DOES_NOT_MATCH: (_F, "Identifier does not match SOP class"),
        0xB300: (_W, "The UPS was created with modifications"),
        0xB301: (_W, "Deletion lock not granted"),
        0xB304: (_W, "The UPS is already CANCELED"),
        0xB305: (_W, "Invalid values were coerced to valid ones"),
        0xB306: (_W, "The UPS is already COMPLETED"),
        (0xC000, 0xCFFF): (_F, "Unable to process"),
        **{code: (_F, meaning) for code, meaning in _UPS_FAILURES.items()},
        0xFF00: _MATCH_SUPPLIED,
        0xFF01: _MATCH_SUPPLIED_WARNING,
    }
)
