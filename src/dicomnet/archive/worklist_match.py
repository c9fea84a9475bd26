"""Matching and return keys of a Modality Worklist C-FIND over in-memory worklist items.

Theory of operation
-------------------
:func:`compile_query` turns a C-FIND Identifier into a :class:`WorklistQuery` once per request;
the query is then applied to each worklist item (a pydicom ``Dataset`` prepared by
:func:`prepare_item`): :meth:`WorklistQuery.answer` says whether the item matches and, if so,
builds the response Identifier. The rules are those of PS3.4 K.2.2 (which defers to the
C.2.2.2 matching types); the single-attribute matchers are the archive's own
(:func:`dicomnet.archive.matching.python_matcher`), so a worklist key means what the same key
means to the archive's C-FIND:

* Universal matching (C.2.2.2.3): a zero-length key, or one made only of ``*``, selects every
  item; it is a return key only. A Person Name made only of separators is zero length.
* Single value (C.2.2.2.1), list of UID (C.2.2.2.2), wildcard ``*``/``?`` (C.2.2.2.4, in the
  VRs that take them) and range matching of DA/TM/DT (C.2.2.2.5): as in
  :mod:`dicomnet.archive.matching` -- person names case-insensitively (the conformance choice
  C.2.2.2.1 leaves to the SCP), a time key of reduced precision covering its whole span.
* An item whose attribute is absent or empty never matches a non-universal key (K.2.2.1.1.1).
* Combined date-time matching (C.2.2.2.5): when both keys of a date/time pair are ranges of
  the same shape -- Scheduled Procedure Step Start Date (0040,0002) with Start Time
  (0040,0003), and the End Date/Time and Study Date/Time pairs likewise -- they are matched as
  one period: ``20240105-20240107`` with ``0800-1800`` runs from the 5th 08:00 to the 7th
  18:00, ``20240105-`` with ``0800-`` from the 5th 08:00 on. C.2.2.2.5 describes the combined
  forms with both ranges closed, both open at the start, or both open at the end; this SCP
  also lets the time range be open where the date range is closed (the day's first or last
  moment then bounds it). Any other combination -- a single date with a time range, a date range
  with a single time, lists of values, only one key of the pair -- matches each key on its
  own (a single date and a single time mean the same either way). The worklist SOP class has
  no extended negotiation byte for this (K.5.1); this SCP always does it, as modalities
  expect (DCMTK's wlmscpfs combines by a similar shapes rule).
* Sequence matching (C.2.2.2.6): a sequence key holds exactly one item (A900 otherwise); a
  stored sequence matches when one of its items matches every key of that item (recursively:
  Scheduled Procedure Step Sequence (0040,0100) and the sequences inside it). A zero-length
  sequence key, or one whose item is empty, matches everything and returns the whole stored
  sequence.

*Return keys* (K.2.2.1.2): every key of the request is in every response and, Specific
Character Set aside, nothing else: the item's value, or a zero-length value when the item does
not have the attribute (an empty sequence for a sequence). A matched sequence returns the items
that matched, each holding only the keys of the request's item (C.2.2.2.6); a sequence key that
selects nothing returns all items so projected. Specific Character Set (0008,0005) is never a key (C.2.2.2): it only says
how the values are encoded. Timezone Offset From UTC (0008,0201) is returned, never matched.

*Character sets.* :func:`prepare_item` decodes an item's values with the item's own Specific
Character Set (PS3.5 6.1) and drops the attribute, so matching compares Unicode text with
Unicode text (pydicom decodes the request by its own Specific Character Set). A response says
in which character set it is (K.4.1.1.3.2, as C.4.1.1.3.2): the request's when every value can
be written in it, else the item's own, else ISO_IR 192 (UTF-8); an all-ASCII response carries
the request's term back, or none. Character sets using ISO 2022 code extensions are never
chosen for writing (every value is re-encoded, never copied as bytes).

A key that cannot be read (a malformed date range, an element pydicom cannot decode) raises
:class:`~dicomnet.archive.models.QueryError` with 0xC000 (unable to process); a sequence key with
several items raises it with 0xA900 (Identifier does not match SOP Class).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName

from dicomnet.archive import matching, query
from dicomnet.archive.models import QueryError
from dicomnet.dimse.status import Status

__all__ = [
    "DATE_TIME_PAIRS",
    "ItemQuery",
    "WorklistQuery",
    "compile_query",
    "declare_charset",
    "prepare_item",
]

_TAG_CHARSET = BaseTag(0x00080005)
_TAG_TIMEZONE = 0x00080201
# Query/Retrieve Level belongs to the Q/R models, not to a worklist (K.2.1: one level); an SCU
# that sends it anyway is answered as if it had not.
_TAG_QR_LEVEL = 0x00080052
_NOT_KEYS = frozenset((int(_TAG_CHARSET), _TAG_QR_LEVEL))
_UTF8 = "ISO_IR 192"

#: (date, time) keys matched as one combined period when both are given (C.2.2.2.5).
DATE_TIME_PAIRS: tuple[tuple[int, int], ...] = (
    (0x00400002, 0x00400003),  # Scheduled Procedure Step Start Date / Time
    (0x00400004, 0x00400005),  # Scheduled Procedure Step End Date / Time
    (0x00080020, 0x00080030),  # Study Date / Time
)

_Test = Callable[[object], bool]


def _ignored(tag: int) -> bool:
    # group lengths, command and file meta groups are no keys; neither is (0008,0005)
    return tag & 0xFFFF == 0 or tag >> 16 in (0x0000, 0x0002) or tag in _NOT_KEYS


def _universal(vr: str, values: list[str]) -> bool:
    """C.2.2.2.3: no value, only ``*`` (for any VR: a lone ``*`` selects everything, K.2.2.1.1.1
    note 1), or a Person Name of separators only."""
    if all(v.strip("*") == "" for v in values):
        return True
    return vr == "PN" and all(v.strip("^= *") == "" for v in values)


def _combinable(date_key: str, time_key: str) -> bool:
    """Both keys are ranges (a ``-`` is only ever a range separator in DA and TM), and where
    the date range is open the time range is open on the same side (C.2.2.2.5)."""
    if "-" not in date_key or "-" not in time_key:
        return False
    d, t = date_key.strip(), time_key.strip()
    if d.startswith("-") and not t.startswith("-"):
        return False
    return not (d.endswith("-") and not t.endswith("-"))


def _first_value(ds: Dataset, tag: int) -> str:
    elem = ds.get(tag)
    values = [] if elem is None else matching.key_values(elem.value)
    return values[0] if values else ""


@dataclass(frozen=True, slots=True)
class _Key:
    """One key of an item of keys: ``test`` over the stored value (None: return key only);
    ``item`` the compiled item of a sequence key (None: the whole sequence is returned)."""

    tag: BaseTag
    vr: str
    test: _Test | None
    item: ItemQuery | None = None


@dataclass(frozen=True, slots=True)
class _Combined:
    """A date key and a time key matched as one period (C.2.2.2.5); bounds are
    ``YYYYMMDDHHMMSS.ffffff`` (:func:`dicomnet.archive.matching.combined_range`)."""

    date_tag: int
    time_tag: int
    low: str | None
    high: str | None

    def matches(self, ds: Dataset) -> bool:
        date = matching.normalize_date(_first_value(ds, self.date_tag))
        time = matching.normalize_time(_first_value(ds, self.time_tag))
        if not date or not time:
            return False  # an unknown date or time never matches (K.2.2.1.1.1)
        stamp = matching.combine_datetime(date, time)
        return (self.low is None or stamp >= self.low) and (self.high is None or stamp <= self.high)


@dataclass(frozen=True, slots=True)
class ItemQuery:
    """The compiled keys of one data set of keys (the Identifier, or a sequence key's item)."""

    keys: tuple[_Key, ...]
    combined: tuple[_Combined, ...]

    @property
    def selective(self) -> bool:
        """Whether any key restricts the match (else every item matches)."""
        return bool(self.combined) or any(k.test is not None for k in self.keys)

    def matches(self, ds: Dataset) -> bool:
        """Every key matches in ``ds`` (C.2.2.2: the keys are ANDed)."""
        for key in self.keys:
            if key.test is None:
                continue
            elem = ds.get(key.tag)
            if elem is None or not key.test(elem.value):
                return False
        return all(c.matches(ds) for c in self.combined)

    def project(self, ds: Dataset | None) -> Dataset:
        """The keys' values in ``ds`` (K.2.2.1.2): zero length where ``ds`` has none."""
        out = Dataset()
        for key in self.keys:
            elem = None if ds is None else ds.get(key.tag)
            if key.vr == "SQ":
                out.add(self._project_sequence(key, elem))
            elif elem is None:
                out.add(DataElement(key.tag, key.vr, empty_value_for_VR(key.vr)))
            else:
                out.add(elem)  # shared, not copied: a response is encoded, never changed
        return out

    @staticmethod
    def _project_sequence(key: _Key, elem: DataElement | None) -> DataElement:
        if elem is None or elem.VR != "SQ":
            return DataElement(key.tag, "SQ", Sequence())
        if key.item is None:  # C.2.2.2.6: an empty item asks for the entire sequence
            return copy.deepcopy(elem)
        sub = key.item
        stored = [x for x in elem.value or () if isinstance(x, Dataset)]
        if key.test is not None:  # only the items that matched (C.2.2.2.6)
            stored = [x for x in stored if sub.matches(x)]
        return DataElement(key.tag, "SQ", Sequence([sub.project(x) for x in stored]))


def _any_item(sub: ItemQuery, stored: object) -> bool:
    # C.2.2.2.6: a stored sequence matches when one of its items matches all the item keys
    if not isinstance(stored, Sequence | list):
        return False
    return any(isinstance(x, Dataset) and sub.matches(x) for x in stored)


def _compile_item(keyset: Dataset) -> ItemQuery:
    given: dict[int, list[str]] = {}
    elems: list[DataElement] = []
    for elem in keyset:
        tag = int(elem.tag)
        if _ignored(tag):
            continue
        elems.append(elem)
        if elem.VR != "SQ":
            given[tag] = matching.key_values(elem.value)
    combined: list[_Combined] = []
    paired: set[int] = set()
    for date_tag, time_tag in DATE_TIME_PAIRS:
        date_key, time_key = given.get(date_tag), given.get(time_tag)
        if not date_key or not time_key:
            continue
        if _universal("DA", date_key) or _universal("TM", time_key):
            continue
        if len(date_key) > 1 or len(time_key) > 1:
            continue  # a list of values: each key on its own
        if not _combinable(date_key[0], time_key[0]):
            continue
        bounds = matching.combined_range(date_key[0], time_key[0])
        if bounds is None:
            continue
        combined.append(_Combined(date_tag, time_tag, *bounds))
        paired.update((date_tag, time_tag))
    keys: list[_Key] = []
    for elem in elems:
        tag, vr = BaseTag(elem.tag), str(elem.VR)
        if vr == "SQ":
            keys.append(_sequence_key(tag, elem))
            continue
        values = given[int(tag)]
        if int(tag) in paired or int(tag) == _TAG_TIMEZONE or _universal(vr, values):
            keys.append(_Key(tag, vr, None))
        else:
            keys.append(_Key(tag, vr, matching.python_matcher(vr, values)))
    return ItemQuery(tuple(keys), tuple(combined))


def _sequence_key(tag: BaseTag, elem: DataElement) -> _Key:
    items = [x for x in elem.value or ()]
    if len(items) > 1:
        raise QueryError(f"sequence key {tag} has {len(items)} items, one is allowed "
                         "(PS3.4 C.2.2.2.6)", Status.DATA_SET_DOES_NOT_MATCH)  # fmt: skip
    if not items or len(items[0]) == 0:
        return _Key(tag, "SQ", None, None)
    sub = _compile_item(items[0])
    return _Key(tag, "SQ", partial(_any_item, sub) if sub.selective else None, sub)


@dataclass(frozen=True, slots=True)
class WorklistQuery:
    """A compiled C-FIND Identifier: its keys and the request's Specific Character Set."""

    keys: ItemQuery
    request_charset: tuple[str, ...]

    def answer(self, item: Dataset, item_charset: tuple[str, ...] = ()) -> Dataset | None:
        """The response Identifier for ``item`` (prepared by :func:`prepare_item`, its own
        character set ``item_charset``), or None when it does not match."""
        if not self.keys.matches(item):
            return None
        response = self.keys.project(item)
        declare_charset(response, self.request_charset, item_charset)
        return response


def compile_query(identifier: Dataset) -> WorklistQuery:
    """The :class:`WorklistQuery` of a C-FIND Identifier; QueryError when it is malformed."""
    try:
        return WorklistQuery(_compile_item(identifier), tuple(query.charset_of(identifier)))
    except QueryError:
        raise
    except Exception as exc:  # pydicom decodes elements on first access: any error is ours
        raise QueryError(f"cannot read the identifier: {exc}", Status.CANNOT_UNDERSTAND) from exc


# --- items and character sets ---------------------------------------------------------------


def _settle(ds: Dataset) -> None:
    """Convert every element now (a shared item must not be mutated by lazy conversion while
    several queries read it) and make each person name plain Unicode, so it is re-encoded in
    whatever character set a response declares, never written as the stored bytes."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                _settle(item)
                if _TAG_CHARSET in item:  # values are Unicode now; the response declares one
                    del item[_TAG_CHARSET]
        elif elem.VR == "PN" and elem.value is not None:
            value = elem.value
            if isinstance(value, MultiValue | list):
                elem.value = [PersonName(str(v)) for v in value]
            elif value != "":
                elem.value = PersonName(str(value))


def prepare_item(dataset: Dataset) -> tuple[Dataset, tuple[str, ...]]:
    """A worklist item ready to be matched and shared: its values decoded with its own
    Specific Character Set (PS3.5 6.1), which is removed and returned (the terms)."""
    terms = tuple(query.charset_of(dataset))
    # pydicom decodes a value read from bytes with the data set's character set when the
    # element is first accessed (values set in memory are Unicode already): _settle visits all
    _settle(dataset)
    if _TAG_CHARSET in dataset:
        del dataset[_TAG_CHARSET]
    return dataset, terms


def _texts(ds: Dataset) -> Iterator[str]:
    for elem in ds:
        value = elem.value
        if elem.VR == "SQ":
            for item in value or ():
                yield from _texts(item)
        elif isinstance(value, str | PersonName):
            yield str(value)
        elif isinstance(value, MultiValue | list):
            yield from (str(v) for v in value if isinstance(v, str | PersonName))


def _writable(texts: list[str], terms: tuple[str, ...]) -> bool:
    codec = query.codec_of(list(terms))
    if codec is None:
        return False
    try:
        for text in texts:
            text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def declare_charset(response: Dataset, request: tuple[str, ...], item: tuple[str, ...]) -> None:
    """Set the response's Specific Character Set (K.4.1.1.3.2): see the module docstring."""
    texts = [t for t in _texts(response) if not t.isascii()]
    term: str | list[str] | None
    if not texts:
        term = (list(request) if len(request) > 1 else request[0]) if request else None
    elif request and _writable(texts, request):
        term = request[0]
    elif item and _writable(texts, item):
        term = item[0]
    else:
        term = _UTF8
    if term:
        response[_TAG_CHARSET] = DataElement(_TAG_CHARSET, "CS", term)
