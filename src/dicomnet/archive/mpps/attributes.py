"""The stored form of a step's attributes: a DICOM JSON Model object (PS3.18 F.2) with its
text in Unicode, and the few values the store reads from a data set.

Theory of operation
-------------------
N-SET replaces the value of each top-level attribute it carries (PS3.7 10.1.3), a sequence's
value being all of its items. Text is kept as Unicode: a step whose values are
not all ASCII is stored with Specific Character Set "ISO_IR 192", which is how the SCP combines
the character sets of N-CREATE and N-SET (PS3.4 F.7.2.2.3 allows the conversion).

A request's data set becomes a JSON Model object (:func:`normalized`) without SOP Class and
SOP Instance UID (the request carries them) and without Specific Character Set, which
:func:`recharset` puts back, as "ISO_IR 192", only when a value is not ASCII. The object is
kept as compact, key-sorted JSON text (:func:`dumps`), both in the ``mpps`` table and in the
forwarding outbox. An N-SET is merged into the stored object key by key (one key per top-level
attribute), then re-charset.
"""

from __future__ import annotations

import json
from typing import Any

from pydicom.dataset import Dataset

from dicomnet.archive.mpps.rules import (
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    SPECIFIC_CHARACTER_SET,
    MPPSError,
)
from dicomnet.dimse.status import Status


def json_key(tag: int) -> str:
    """The DICOM JSON Model key of a tag (PS3.18 F.2.1.1)."""
    return f"{tag:08X}"


def normalized(ds: Dataset) -> dict[str, Any]:
    """``ds`` as a DICOM JSON Model object with its text in Unicode: SOP Class/Instance UID
    left out (the request carries them), Specific Character Set "ISO_IR 192" only when a
    value is not ASCII (PS3.4 F.7.2.2.3)."""
    try:
        doc: dict[str, Any] = ds.to_json_dict()
    except Exception as exc:  # undecodable text, an impossible value
        raise MPPSError(Status.INVALID_ATTRIBUTE_VALUE, f"unusable data set: {exc}") from exc
    for tag in (SPECIFIC_CHARACTER_SET, SOP_CLASS_UID, SOP_INSTANCE_UID):
        doc.pop(json_key(tag), None)
    recharset(doc)
    return doc


def recharset(doc: dict[str, Any]) -> None:
    doc.pop(json_key(SPECIFIC_CHARACTER_SET), None)
    if not dumps(doc).isascii():
        doc[json_key(SPECIFIC_CHARACTER_SET)] = {"vr": "CS", "Value": ["ISO_IR 192"]}


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def element_text(ds: Dataset, tag: int) -> str:
    elem = ds.get(tag)
    return "" if elem is None or elem.value is None else str(elem.value).strip()


def item_uids(ds: Dataset, sequence: int, tag: int) -> list[str]:
    elem = ds.get(sequence)
    if elem is None or elem.value is None:
        return []
    return [str(item[tag].value).strip() for item in elem.value
            if tag in item and item[tag].value]  # fmt: skip
