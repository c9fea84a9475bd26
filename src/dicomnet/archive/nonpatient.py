"""Objects outside the patient hierarchy and their own Query/Retrieve models.

Theory of operation
-------------------
Some composite objects describe no patient and belong to no study: Hanging Protocols (PS3.3
A.44), Color Palettes (A.58), and others. The archive stores them like any instance (file
``<storage>/_nonpatient/<SOP Class UID>/<SOP Instance UID>.dcm``; the directory name cannot
collide with a Study Instance UID, which has no letters) and indexes them in the ``other``
table by SOP Class, SOP Instance and the labels their models match on
(:mod:`dicomnet.archive.fields`).

Their Q/R models have a single level and use the worklist search method (PS3.4 K.4.1): no
Query/Retrieve Level in the identifier, one response per matching object, a stored empty
value matching no key (K.2.2.1.1.1). :data:`MODELS` lists what each FIND SOP class matches:
Hanging Protocol (Annex U: Name with single value/wildcard, Level single value, the SOP
Instance UID as a list) and Color Palette (Annex X: Content Label). Other keys -- the
Hanging Protocol Definition Sequence with its item keys, Number of Priors Referenced, ... --
are answered from the stored file with the same matchers as the patient models
(:mod:`dicomnet.archive.query`, sequence matching included). Retrieval (their MOVE/GET SOP
classes, and Composite Instance Root) is by SOP Instance UID: :meth:`ArchiveIndex.retrieve_set`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomnet.archive import matching, query

if TYPE_CHECKING:
    from dicomnet.archive.index import Row

__all__ = [
    "COLOR_PALETTE_FIND",
    "HANGING_PROTOCOL_FIND",
    "MODELS",
    "NONPATIENT_RETRIEVE",
    "NonPatientModel",
    "find",
]

HANGING_PROTOCOL_FIND = "1.2.840.10008.5.1.4.38.2"
COLOR_PALETTE_FIND = "1.2.840.10008.5.1.4.39.2"
#: MOVE/GET SOP classes of those models (PS3.4 U.1, X.1): retrieve by SOP Instance UID
NONPATIENT_RETRIEVE = {
    "1.2.840.10008.5.1.4.38.3": "move", "1.2.840.10008.5.1.4.38.4": "get",
    "1.2.840.10008.5.1.4.39.3": "move", "1.2.840.10008.5.1.4.39.4": "get",
}  # fmt: skip


@dataclass(frozen=True)
class NonPatientModel:
    """One single-level model: the storage SOP classes it covers and its indexed keys
    (tag -> (column, VR, matchable))."""

    name: str
    storage_classes: tuple[str, ...]
    keys: dict[int, tuple[str, str, bool]]


MODELS: dict[str, NonPatientModel] = {
    HANGING_PROTOCOL_FIND: NonPatientModel(
        "Hanging Protocol", ("1.2.840.10008.5.1.4.38.1",),
        {0x00720002: ("o.label", "SH", True), 0x00720004: ("o.description", "LO", False),
         0x00720006: ("o.level", "CS", True), 0x00720008: ("o.creator", "LO", False),
         0x0072000A: ("o.created", "DT", False)},
    ),
    COLOR_PALETTE_FIND: NonPatientModel(
        "Color Palette", ("1.2.840.10008.5.1.4.39.1",),
        {0x00700080: ("o.label", "CS", True), 0x00700081: ("o.description", "LO", False),
         0x00700084: ("o.creator", "PN", False)},
    ),
}  # fmt: skip

_SOP_CLASS, _SOP_INSTANCE = 0x00080016, 0x00080018
_IGNORED = frozenset({0x00080005, 0x00080052, 0x00080054, 0x00080056, 0x00080201})


def find(source: query.Source, model_uid: str,
         identifier: Dataset) -> Generator[Dataset, None, None]:  # fmt: skip
    """C-FIND over the objects of model ``model_uid`` (see the module docstring); the first
    page is read before this returns (errors raise here)."""
    model = MODELS[model_uid]
    select = ["o.charset", "o.sop_class_uid", "o.sop_uid", "o.path"]
    classes = list(model.storage_classes)
    where = [f"o.sop_class_uid IN ({','.join('?' * len(classes))})"]
    params: list[object] = list(classes)
    outputs: list[tuple[BaseTag, str, int]] = []
    extras: list[query.ExtraKey] = []
    for elem in identifier:
        tag = int(elem.tag)
        if tag in _IGNORED or tag & 0xFFFF == 0 or tag >> 16 in (0x0000, 0x0002):
            continue
        values = matching.key_values(elem.value) if elem.VR != "SQ" else []
        if tag in (_SOP_CLASS, _SOP_INSTANCE):
            column = "o.sop_class_uid" if tag == _SOP_CLASS else "o.sop_uid"
            cond = matching.sql_condition("UI", column, values)
            if cond is not None:
                where.append(cond[0])
                params.extend(cond[1])
            continue
        spec = model.keys.get(tag)
        if spec is None:
            extras.append(query.extra_key(elem))
            continue
        column, vr, matchable = spec
        select.append(column)
        outputs.append((BaseTag(tag), vr, len(select) - 1))
        if matchable and values:
            cond = matching.sql_condition(vr, column, values, case_insensitive=vr == "PN")
            if cond is not None:
                where.append(cond[0])
                params.extend(cond[1])
    rows = source.pages(f"SELECT {', '.join(select)}, o.pk FROM other o", where, params, "o.pk")
    return _responses(rows, outputs, extras, query.charset_of(identifier), source.open_stored)


def _responses(rows: Iterator[Row], outputs: list[tuple[BaseTag, str, int]],
               extras: list[query.ExtraKey], request_charset: list[str],
               open_stored: Callable[[str], BinaryIO]) -> Generator[Dataset, None, None]:  # fmt: skip
    ignore = pydicom_config.IGNORE
    codec = query.codec_of(request_charset)
    tags = [e.tag for e in extras]
    for row in rows:
        stored = None
        if extras:
            try:
                stored = query.read_stored(open_stored, row[3], tags)
            except Exception:
                stored = None
            if not query.extras_match(extras, stored):
                continue
        ds = Dataset()
        ds.SOPClassUID = row[1]
        ds.SOPInstanceUID = row[2]
        for tag, vr, column in outputs:
            value = row[column]
            value = (query.person_name(value) if vr == "PN" else value) if value else None
            ds[tag] = DataElement(tag, vr, value, validation_mode=ignore)
        for extra in extras:
            elem = None if stored is None else stored.get(extra.tag)
            ds[extra.tag] = (query.returned_element(elem, extra) if elem is not None
                             else DataElement(extra.tag, extra.vr, None, validation_mode=ignore))  # fmt: skip
        query.set_charset(ds, request_charset, codec)
        yield ds
