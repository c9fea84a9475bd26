"""The archive's Query/Retrieve engine: C-FIND identifiers to SQL and rows to responses,
C-GET/C-MOVE identifiers to the instances they select.

Theory of operation
-------------------
:func:`find` validates the identifier against the model and level, turns every key into
parameterised SQL on the index (:func:`dicomnet.archive.matching.sql_condition`), reads the
matches a page at a time (:meth:`~dicomnet.archive.index.ArchiveIndex.pages`) and builds one
pydicom ``Dataset`` per match as the caller iterates.

*Search method.* By default every key restricts the match whatever its level (PS3.4
C.4.1.3.2, relational search), so the shapes peers use in practice are answered: a SERIES
query without a Study Instance UID, an IMAGE query by SOP Instance UID alone, a PATIENT-level
query in the Study Root model. With ``QueryOptions.strict`` (``qrscp --strict-hierarchical``
for a peer that did not negotiate relational queries) the hierarchical rules of C.4.1.2.1
apply: the unique key of every level above the query level as a single value, else A900.

*Patient attributes* of a STUDY, SERIES or IMAGE query are the study's own copies (what that
study arrived with, :mod:`dicomnet.archive.schema`); those of a PATIENT query the patient's.

*Matching options* from SOP class extended negotiation (PS3.4 C.5.1.1): combined date-time
matching (C.2.2.2.5.4) matches a Study Date and a Study Time key as one period on the study's
combined value; fuzzy semantic matching of person names (C.2.2.2.1.1) compares case- and
accent-folded names; timezone query adjustment (C.4.1.1.3.1) reads the key's dates and times
in the zone of the request's Timezone Offset From UTC (0008,0201) and shifts them to the
archive's (stored values without an offset are taken as the archive's local time), matching
them combined. Person names are always matched case-insensitively (the conformance choice
C.2.2.2.1 leaves to the SCP).

*Keys the index does not hold* are answered from the stored file of the matching instance
(IMAGE level) or of a representative instance (higher levels) and matched in Python with the
same rules; a sequence key with one item of keys is matched item by item (C.2.2.2.6: an item
matches when all its keys match; the response carries the matching items with the requested
attributes), a sequence key with an empty item returns the whole sequence. Keys below the
query level are returned empty and do not restrict the match.

*Character sets.* Values are compared as Unicode (the index holds decoded text and pydicom
decodes the request by its own Specific Character Set). Each response says which character
set it is in (C.4.1.1.3.2): the request's when every value is representable in it (ASCII-only
responses carry the request's term back, or none), otherwise ISO_IR 192 (UTF-8) -- never a
lossy "?" replacement.

:func:`retrieve_where` selects what a C-GET/C-MOVE sends (C.4.2.2, C.4.3.2): the unique keys
given at the retrieve level and above; relational retrieval (a Series Instance UID or a list
of SOP Instance UIDs alone) unless strict. Composite Instance Root (Annex Y) retrieves by SOP
Instance UID only, and finds non-patient objects too.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeAlias, cast

from pydicom import config as pydicom_config
from pydicom import dcmread
from pydicom.charset import python_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import IS, PersonName

from dicomnet.archive import matching
from dicomnet.archive.models import (
    ATTRIBUTES,
    ATTRIBUTES_BY_TAG,
    NON_KEY_TAGS,
    UNIQUE_KEYS,
    Attribute,
    Level,
    Model,
    QueryError,
    effective_level,
    levels_of,
    parse_level,
    parse_model,
)
from dicomnet.dimse.status import Status

if TYPE_CHECKING:
    from dicomnet.archive.index import Row

__all__ = [
    "FROM",
    "ExtraKey",
    "QueryOptions",
    "Source",
    "charset_of",
    "codec_of",
    "extra_key",
    "extras_match",
    "find",
    "level_model",
    "person_name",
    "retrieve_where",
    "returned_element",
    "set_charset",
    "sop_instance_key",
]

_A900 = Status.DATA_SET_DOES_NOT_MATCH  # Identifier does not match SOP Class (PS3.4 C.4.1.1.4)


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """How a C-FIND is answered (see the module docstring)."""

    strict: bool = False
    combined_datetime: bool = False
    fuzzy_names: bool = False
    timezone_adjust: bool = False
    retrieve_ae_title: str | None = None


class Source(Protocol):
    """What the engine reads rows from (:class:`~dicomnet.archive.index.ArchiveIndex`), and
    how it opens a stored instance for the return keys the index does not hold."""

    open_stored: Callable[[str], BinaryIO]

    def pages(self, head: str, where: list[str], params: list[object],
              key: str) -> Iterator[Row]: ...  # fmt: skip

    def select(self, sql: str, where: list[str], params: list[object]) -> list[Row]: ...


FROM: dict[Level, str] = {
    Level.PATIENT: "patient p",
    Level.STUDY: "study st JOIN patient p ON st.patient_fk = p.pk",
    Level.SERIES: (
        "series se JOIN study st ON se.study_fk = st.pk JOIN patient p ON st.patient_fk = p.pk"
    ),
    Level.IMAGE: (
        "instance i JOIN series se ON i.series_fk = se.pk "
        "JOIN study st ON se.study_fk = st.pk JOIN patient p ON st.patient_fk = p.pk"
    ),
}
_ALIAS: dict[Level, str] = {Level.PATIENT: "p", Level.STUDY: "st", Level.SERIES: "se",
                            Level.IMAGE: "i"}  # fmt: skip
# A representative instance's file, for keys that are not index columns.
_REPRESENTATIVE_PATH: dict[Level, str] = {
    Level.PATIENT: (
        "(SELECT x.path FROM instance x JOIN series y ON x.series_fk = y.pk "
        "JOIN study z ON y.study_fk = z.pk WHERE z.patient_fk = p.pk ORDER BY x.pk DESC LIMIT 1)"
    ),
    Level.STUDY: (
        "(SELECT x.path FROM instance x JOIN series y ON x.series_fk = y.pk "
        "WHERE y.study_fk = st.pk ORDER BY x.pk DESC LIMIT 1)"
    ),
    Level.SERIES: (
        "(SELECT x.path FROM instance x WHERE x.series_fk = se.pk ORDER BY x.pk DESC LIMIT 1)"
    ),
    Level.IMAGE: "i.path",
}
# Aggregates that can be matched: an entity matches when one of its children matches.
_EXISTS_MATCH: dict[str, tuple[str, str, str]] = {
    "ModalitiesInStudy": (
        "EXISTS (SELECT 1 FROM series x WHERE x.study_fk = st.pk AND {cond})",
        "CS",
        "x.modality",
    ),
    "SOPClassesInStudy": (
        "EXISTS (SELECT 1 FROM instance x JOIN series y ON x.series_fk = y.pk "
        "WHERE y.study_fk = st.pk AND {cond})",
        "UI",
        "x.sop_class_uid",
    ),
}

_TAG_QR_LEVEL = BaseTag(0x00080052)
_TAG_CHARSET = BaseTag(0x00080005)
_TAG_RETRIEVE_AE = BaseTag(0x00080054)
_TAG_AVAILABILITY = BaseTag(0x00080056)
_TAG_TIMEZONE = 0x00080201
_TAG_STUDY_DATE, _TAG_STUDY_TIME = 0x00080020, 0x00080030

# Output conversions: the value pydicom would produce itself, so DataElement can skip it.
# They take an index cell (TEXT, INTEGER or NULL) or None for an empty return key.
_Converter: TypeAlias = Callable[[object], object]


def _conv_text(v: object) -> object:
    if v is None or v == "":
        return ""
    if isinstance(v, str) and "\\" in v:
        return MultiValue(str, v.split("\\"))
    return v if isinstance(v, str) else str(v)


def _conv_pn(v: object) -> object:
    if not v:
        return ""
    return PersonName(v if isinstance(v, str) else str(v))  # PN columns hold TEXT


def person_name(value: str) -> PersonName:
    """A stored PN value as pydicom's PersonName (for a response)."""
    return PersonName(value)


def _conv_is(v: object) -> object:
    if v is None or v == "":
        return None
    return IS(v if isinstance(v, str | int | float) else str(v))  # INTEGER or TEXT cells


def _converter(attr: Attribute) -> _Converter:
    if attr.vr == "PN":
        return _conv_pn
    if attr.vr == "IS":
        return _conv_is
    return _conv_text


@dataclass(frozen=True, slots=True)
class _Output:
    tag: BaseTag
    vr: str
    column: int  # index into the row, -1: always empty
    convert: _Converter


@dataclass(frozen=True, slots=True)
class ExtraKey:
    """A key the index does not hold, answered from the stored file (:func:`extra_key`)."""

    tag: BaseTag
    vr: str
    predicate: Callable[[object], bool] | None  # None: return key only
    item: Dataset | None = None  # a sequence key's item of keys (C.2.2.2.6)


# --- levels and models ---------------------------------------------------------------------------


def level_model(level: Level | str | None, identifier: Dataset, model: Model | str,
                *, strict: bool = False) -> tuple[Level, Model]:  # fmt: skip
    """The query level and model; a PATIENT level in the Study Root model is read as a Patient
    Root query unless ``strict`` (that model has no PATIENT level, PS3.4 C.6.2)."""
    mdl = parse_model(model)
    if level is None:
        elem = identifier.get(_TAG_QR_LEVEL)
        if elem is None or not elem.value:
            raise QueryError("Query/Retrieve Level (0008,0052) missing", _A900)
        level = str(elem.value)
    lvl = parse_level(level)
    if lvl not in levels_of(mdl):
        if not strict and mdl is Model.STUDY_ROOT and lvl is Level.PATIENT:
            return lvl, Model.PATIENT_ROOT
        raise QueryError(f"level {lvl.name} does not exist in the {mdl.name} model", _A900)
    return lvl, mdl


def check_hierarchy(lvl: Level, mdl: Model, identifier: Dataset, *, retrieve: bool) -> None:
    """PS3.4 C.4.1.2.1 / C.4.2.2.1: the unique key of each level above the query level is
    given with single value matching; a retrieve also needs its own level's unique key."""
    for upper in levels_of(mdl):
        if upper >= lvl:
            break
        attr = UNIQUE_KEYS[upper]
        elem = identifier.get(BaseTag(attr.tag))
        values = [] if elem is None else matching.key_values(elem.value)
        if len(values) != 1 or "*" in values[0] or "?" in values[0]:
            raise QueryError(
                f"{attr.keyword} must be a single value at {lvl.name} level ({mdl.name} model)",
                _A900,
            )
    if retrieve:
        _retrieve_key(lvl, identifier)


def _retrieve_key(lvl: Level, identifier: Dataset) -> None:
    attr = UNIQUE_KEYS[lvl]
    elem = identifier.get(BaseTag(attr.tag))
    values = [] if elem is None else matching.key_values(elem.value)
    if not values or any("*" in v or "?" in v for v in values):
        raise QueryError(f"{attr.keyword} must be given to retrieve at {lvl.name}", _A900)


# --- conditions ----------------------------------------------------------------------------------


def condition(attr: Attribute, value: object, *,
              fuzzy: bool = False) -> matching.Condition | None:  # fmt: skip
    """The SQL condition of one key (None: universal, or a count that is a return key only)."""
    values = matching.key_values(value)
    if not values:
        return None
    exists = _EXISTS_MATCH.get(attr.keyword)
    if exists is not None:
        template, vr, column = exists
        cond = matching.sql_condition(vr, column, values)
        if cond is None:
            return None
        return template.format(cond=cond[0]), cond[1]
    if attr.column is None:
        return None  # counts are return keys only
    if attr.vr == "PN" and fuzzy and attr.fuzzy_column is not None:
        values = [matching.fuzzy_pn(v) if v.strip("*?") else v for v in values]
        return matching.sql_condition("PN", attr.fuzzy_column, values, case_insensitive=True)
    matched_by = attr.matched_by
    assert matched_by is not None
    return matching.sql_condition(
        attr.vr, matched_by, values, integer=attr.integer, case_insensitive=attr.vr == "PN"
    )


def _combined(identifier: Dataset, options: QueryOptions) -> matching.Condition | None:
    """Study Date + Study Time as one period (and the timezone shift), when negotiated."""
    tz = identifier.get(_TAG_TIMEZONE)
    shift = 0
    adjust = False
    if options.timezone_adjust and tz is not None and tz.value:
        offset = matching.utc_offset_minutes(str(tz.value))
        if offset is not None:
            shift = time.localtime().tm_gmtoff // 60 - offset
            adjust = True
    if not (options.combined_datetime or adjust):
        return None
    d, t = identifier.get(_TAG_STUDY_DATE), identifier.get(_TAG_STUDY_TIME)
    date_key = "" if d is None or d.value is None else str(d.value).strip()
    time_key = "" if t is None or t.value is None else str(t.value).strip()
    if not date_key or (not time_key and not adjust):
        return None
    bounds = matching.combined_range(date_key, time_key, shift)
    if bounds is None:
        return None
    low, high = bounds
    parts, params = ["st.study_datetime <> ''"], []
    if low is not None:
        parts.append("st.study_datetime >= ?")
        params.append(low)
    if high is not None:
        parts.append("st.study_datetime <= ?")
        params.append(high)
    return "(" + " AND ".join(parts) + ")", list(params)


# --- C-FIND --------------------------------------------------------------------------------------


def find(source: Source, level: Level | str | None, identifier: Dataset,
         model: Model | str, options: QueryOptions) -> Generator[Dataset, None, None]:  # fmt: skip
    """C-FIND: the response identifiers for ``identifier`` (PS3.4 C.4.1.3). Validation
    happens and the first page of rows is read before this returns (a bad identifier raises
    :class:`QueryError` here); the Datasets are built as the iterator is consumed."""
    lvl, mdl = level_model(level, identifier, model, strict=options.strict)
    if options.strict:
        check_hierarchy(lvl, mdl, identifier, retrieve=False)
    alias = _ALIAS[lvl]
    select: list[str] = [f"{alias}.charset"]
    where: list[str] = []
    params: list[object] = []
    outputs: list[_Output] = []
    extras: list[ExtraKey] = []
    seen: set[int] = set()

    def add_output(attr: Attribute) -> None:
        expr = attr.column if attr.column is not None else attr.aggregate
        assert expr is not None
        select.append(expr)
        outputs.append(_Output(BaseTag(attr.tag), attr.vr, len(select) - 1, _converter(attr)))

    combined = _combined(identifier, options) if lvl >= Level.STUDY else None
    if combined is not None:
        where.append(combined[0])
        params.extend(combined[1])
    for elem in identifier:
        tag = int(elem.tag)
        if tag in NON_KEY_TAGS or tag & 0xFFFF == 0 or tag >> 16 in (0x0000, 0x0002):
            continue
        seen.add(tag)
        attr = ATTRIBUTES_BY_TAG.get(tag)
        if attr is None:
            extras.append(extra_key(elem))
            continue
        if effective_level(attr, mdl) > lvl:
            # A key below the query level: returned empty, not matched.
            outputs.append(_Output(BaseTag(tag), attr.vr, -1, _converter(attr)))
            continue
        attr = attr.at(lvl)
        add_output(attr)
        if tag == _TAG_TIMEZONE:
            continue  # never matched (PS3.4 C.4.1.1.3.1): it qualifies the date/time keys
        if combined is not None and tag in (_TAG_STUDY_DATE, _TAG_STUDY_TIME):
            continue
        cond = condition(attr, elem.value, fuzzy=options.fuzzy_names)
        if cond is not None:
            where.append(cond[0])
            params.extend(cond[1])

    unique = UNIQUE_KEYS[lvl]
    if unique.tag not in seen:  # the query-level unique key is always returned
        add_output(unique.at(lvl))
    path_col = -1
    if extras:
        select.append(_REPRESENTATIVE_PATH[lvl])
        path_col = len(select) - 1
    rows = source.pages(f"SELECT {', '.join(select)}, {alias}.pk FROM {FROM[lvl]}", where,
                        params, f"{alias}.pk")  # fmt: skip
    return _responses(rows, lvl, outputs, extras, path_col, options.retrieve_ae_title,
                      _TAG_AVAILABILITY in identifier, charset_of(identifier),
                      source.open_stored)  # fmt: skip


def extra_key(elem: DataElement) -> ExtraKey:
    """A key the index does not hold: a predicate over the stored value (sequence keys: over
    the stored items, C.2.2.2.6)."""
    vr = str(elem.VR)
    tag = BaseTag(elem.tag)
    if vr == "SQ":
        items = list(elem.value or [])
        item = items[0] if len(items) == 1 else None
        if item is not None and len(item) > 0:
            return ExtraKey(tag, vr, _sequence_predicate(item), item)
        return ExtraKey(tag, vr, None, None)
    values = matching.key_values(elem.value)
    return ExtraKey(tag, vr, matching.python_matcher(vr, values) if values else None)


def _sequence_predicate(item: Dataset) -> Callable[[object], bool]:
    test = _item_test(item)

    def predicate(stored: object) -> bool:
        # a stored SQ value: a Sequence of item Datasets, or None; iterated as it is
        return any(test(x) for x in cast("Iterable[object]", stored or ()))

    return predicate


def _item_test(item: Dataset) -> Callable[[object], bool]:
    """A stored item matches when every non-universal key of ``item`` matches in it."""
    tests: list[tuple[BaseTag, Callable[[object], bool]]] = []
    for key in item:
        vr = str(key.VR)
        if vr == "SQ":
            inner = list(key.value or [])
            if len(inner) == 1 and len(inner[0]) > 0:
                tests.append((BaseTag(key.tag), _sequence_predicate(inner[0])))
            continue
        values = matching.key_values(key.value)
        if values:
            tests.append((BaseTag(key.tag), matching.python_matcher(vr, values)))

    def test(stored: object) -> bool:
        for tag, predicate in tests:
            elem = stored.get(tag) if isinstance(stored, Dataset) else None
            if elem is None or not predicate(elem.value):
                return False
        return True

    return test


def charset_of(identifier: Dataset) -> list[str]:
    elem = identifier.get(_TAG_CHARSET)
    if elem is None or not elem.value:
        return []
    value = elem.value
    terms = [value] if isinstance(value, str) else list(value)
    return [str(t).strip() for t in terms]


def codec_of(terms: list[str]) -> str | None:
    """The Python codec of a single, non-ISO 2022 character set term (None: not usable for a
    response -- several terms, escape sequences, unknown)."""
    if len(terms) != 1 or terms[0].startswith("ISO 2022"):
        return None
    return python_encoding.get(terms[0])


def _text_values(ds: Dataset) -> Iterator[str]:
    for elem in ds:
        value = elem.value
        if isinstance(value, Sequence):
            for item in value:
                yield from _text_values(item)
        elif isinstance(value, str | PersonName):
            yield str(value)
        elif isinstance(value, MultiValue | list):
            yield from (str(v) for v in value if isinstance(v, str | PersonName))


def set_charset(ds: Dataset, request: list[str], codec: str | None,
                texts: list[str] | None = None) -> None:  # fmt: skip
    """Say which character set the response is in (PS3.4 C.4.1.1.3.2): the request's when
    every value can be written in it, otherwise ISO_IR 192 (UTF-8). ``texts``: the non-ASCII
    values when the caller knows them (else every text value of ``ds`` is looked at)."""
    if texts is None:
        texts = [t for t in _text_values(ds) if not t.isascii()]
    if not texts:
        term: str | list[str] | None = (request if len(request) > 1
                                        else (request[0] if request else None))  # fmt: skip
    elif codec is not None and all(_encodes(t, codec) for t in texts):
        term = request[0]
    else:
        term = "ISO_IR 192"
    if term:
        ds[_TAG_CHARSET] = DataElement(_TAG_CHARSET, "CS", term)


def _encodes(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def read_stored(open_stored: Callable[[str], BinaryIO], path: str,
                tags: list[BaseTag]) -> Dataset:  # fmt: skip
    """The elements ``tags`` of the stored instance ``path`` (pixel data never read)."""
    with open_stored(path) as f:
        return dcmread(f, stop_before_pixels=True, specific_tags=tags)


def _responses(rows: Iterable[Row], lvl: Level, outputs: list[_Output], extras: list[ExtraKey],
               path_col: int, retrieve_ae_title: str | None, availability: bool,
               request_charset: list[str],
               open_stored: Callable[[str], BinaryIO]) -> Generator[Dataset, None, None]:  # fmt: skip
    level_name = lvl.name
    file_cache: dict[str, Dataset | None] = {}
    extra_tags = [e.tag for e in extras]
    ignore = pydicom_config.IGNORE
    codec = codec_of(request_charset)
    for row in rows:
        stored: Dataset | None = None
        if extras:
            path = row[path_col]
            if path not in file_cache:
                try:
                    file_cache[path] = read_stored(open_stored, path, extra_tags)
                except Exception:
                    file_cache[path] = None
                if len(file_cache) > 256:
                    file_cache.pop(next(iter(file_cache)))
            stored = file_cache[path]
            if not extras_match(extras, stored):
                continue
        # the elements go straight into the Dataset's mapping (Dataset(dict) keeps it as is):
        # they are built converted, DataElement-by-DataElement checks would only cost time
        d: dict[BaseTag, DataElement | RawDataElement] = {}
        ds = Dataset(d)
        d[_TAG_QR_LEVEL] = DataElement(_TAG_QR_LEVEL, "CS", level_name, already_converted=True)
        if availability:
            d[_TAG_AVAILABILITY] = DataElement(
                _TAG_AVAILABILITY, "CS", "ONLINE", already_converted=True
            )
        if retrieve_ae_title:
            d[_TAG_RETRIEVE_AE] = DataElement(
                _TAG_RETRIEVE_AE, "AE", retrieve_ae_title, already_converted=True
            )
        for out in outputs:
            value = out.convert(row[out.column]) if out.column >= 0 else out.convert(None)
            d[out.tag] = DataElement(
                out.tag, out.vr, value, already_converted=True, validation_mode=ignore
            )
        texts: list[str] | None = [v for v in row if type(v) is str and not v.isascii()]
        for extra in extras:
            elem = None if stored is None else stored.get(extra.tag)
            if elem is not None:
                d[extra.tag] = returned_element(elem, extra)
                texts = None  # values from the file: look at the whole response
            else:
                d[extra.tag] = DataElement(extra.tag, extra.vr, None, validation_mode=ignore)
        if texts or texts is None or request_charset:
            set_charset(ds, request_charset, codec, texts)
        yield ds


def extras_match(extras: list[ExtraKey], stored: Dataset | None) -> bool:
    for extra in extras:
        if extra.predicate is None:
            continue
        elem = None if stored is None else stored.get(extra.tag)
        if elem is None or not extra.predicate(elem.value):
            return False
    return True


def returned_element(elem: DataElement, extra: ExtraKey) -> DataElement:
    """A stored element as the response carries it: a sequence matched item by item returns
    its matching items with the requested attributes (C.2.2.2.6)."""
    if elem.VR != "SQ":
        return DataElement(elem.tag, elem.VR, elem.value, already_converted=True)
    if extra.item is None:
        return copy.deepcopy(elem)
    test = _item_test(extra.item)
    wanted = [BaseTag(k.tag) for k in extra.item]
    items = []
    for stored_item in elem.value or ():
        if not test(stored_item):
            continue
        out = Dataset()
        for tag in wanted:
            if tag in stored_item:
                out[tag] = copy.deepcopy(stored_item[tag])
        items.append(out)
    return DataElement(elem.tag, "SQ", Sequence(items))


# --- C-GET / C-MOVE ------------------------------------------------------------------------------


def retrieve_where(level: Level | str | None, identifier: Dataset, model: Model | str,
                   *, strict: bool = False) -> tuple[list[str], list[object], list[str]]:  # fmt: skip
    """(WHERE conditions on :data:`FROM` [IMAGE], their parameters, SOP Instance UIDs asked
    for by value) selecting a retrieve's instances: the unique keys given at the retrieve
    level and above (PS3.4 C.4.2.2, C.4.3.2). Strict: hierarchical rules; otherwise any
    unique key at or above the level suffices (relational retrieval), but at least one must
    select something. The SOP Instance UIDs let the caller find non-patient objects too."""
    mdl = parse_model(model)
    lvl, mdl = level_model(level, identifier, mdl, strict=strict)
    if strict:
        check_hierarchy(lvl, mdl, identifier, retrieve=True)
    where: list[str] = []
    params: list[object] = []
    selective = False
    uids: list[str] = []
    for upper in levels_of(mdl) if strict else tuple(Level):
        if upper > lvl:
            break
        attr = UNIQUE_KEYS[upper]
        elem = identifier.get(BaseTag(attr.tag))
        if elem is None:
            continue
        values = matching.key_values(elem.value)
        if values and not any("*" in v or "?" in v for v in values):
            selective = True
            if upper is Level.IMAGE:
                uids = values
        cond = condition(attr.at(Level.IMAGE), elem.value)
        if cond is not None:
            where.append(cond[0])
            params.extend(cond[1])
    if not selective:
        raise QueryError(f"nothing to retrieve at {lvl.name} level: no unique key given", _A900)
    return where, params, uids


def sop_instance_key(identifier: Dataset) -> list[str]:
    """The SOP Instance UID values of a retrieve identifier (Composite Instance Root, Hanging
    Protocol and Color Palette retrieves: the only key, PS3.4 Y.4, U.4.2, X.4.2)."""
    elem = identifier.get(BaseTag(ATTRIBUTES["SOPInstanceUID"].tag))
    values = [] if elem is None else matching.key_values(elem.value)
    if not values or any("*" in v or "?" in v for v in values):
        raise QueryError("SOP Instance UID (0008,0018) must be given", _A900)
    return values
