"""Attribute matching of PS3.4 C.2.2.2, as parameterised SQL and as Python predicates.

Theory of operation
-------------------
A C-FIND key is turned into a *condition*: an SQL fragment with ``?`` placeholders plus its
parameters (values from the peer are only ever bound parameters, never pasted into SQL text),
or, for attributes the index does not hold as columns, a Python predicate applied to the value
read from a stored file.  Both paths implement the same rules, so they agree (a test checks it):

* Universal matching (C.2.2.2.3): a zero-length key, or a key that is only ``*`` wildcards, is a
  return key and matches every entity, including entities where the attribute is empty.
* Single value matching (C.2.2.2.1): exact comparison after removing leading/trailing spaces.
  Case-sensitive, except for PN where this SCP matches case-insensitively (Unicode case
  folding; trailing ``^``/``=`` separators of empty components are ignored): the conformance
  choice C.2.2.2.1 leaves to the SCP.  IS keys compare as integers.
* List of UID matching (C.2.2.2.2): a UI key with several backslash-separated values matches any
  of them.  Other multi-valued keys are handled the same way (an entity matches if it matches
  one of the values); this is a documented extension.
* Wildcard matching (C.2.2.2.4): ``*`` (any run, including none) and ``?`` (one character) in
  keys of VR AE, CS, LO, LT, PN, SH, ST, UC, UR and UT.  They become SQLite ``GLOB`` patterns
  (same metacharacters; a literal ``[`` is escaped as ``[[]``); the Python side uses
  :func:`glob_match`, linear in pattern x value (a regular expression would backtrack
  exponentially on hostile keys like ``*a*a*a*a*b``).  UIDs, dates, times and numbers
  never take wildcards: there ``*``/``?`` are ordinary characters.
* Range matching (C.2.2.2.5) for DA, TM and DT: ``a-b``, ``a-`` and ``-b``, inclusive.  Times
  are normalised to ``HHMMSS.ffffff``; a bound with reduced precision covers its whole span (the
  upper bound ``12`` reaches 12:59:59.999999), and so does a single-value TM key (``1010``
  matches any time within 10:10).  Entities with an empty value never match a range.
  Combined date-time matching (C.2.2.2.5.1, an extended-negotiation option) is not offered:
  StudyDate and StudyTime are matched independently.
* Sequence matching (C.2.2.2.6) is not supported: a sequence key is a return key only.
* Empty entity values match only universal keys.

A malformed date/time key raises :class:`QueryError` with status 0xC000 (unable to process).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import partial

from dicomnet.archive.models import QueryError
from dicomnet.dimse.status import Status

__all__ = [
    "WILDCARD_VRS",
    "Condition",
    "combine_datetime",
    "combined_range",
    "fold_pn",
    "fuzzy_pn",
    "glob_escape",
    "glob_match",
    "key_values",
    "normalize_date",
    "normalize_time",
    "python_matcher",
    "sql_condition",
    "utc_offset_minutes",
]

#: VRs where ``*`` and ``?`` are wildcards (PS3.4 C.2.2.2.4).
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_RANGE_VRS = frozenset({"DA", "TM", "DT"})
_INT_VRS = frozenset({"IS", "SL", "SS", "UL", "US", "SV", "UV"})

Condition = tuple[str, list[object]]
_FALSE: Condition = ("1 = 0", [])

_DA_RE = re.compile(r"\d{8}\Z")
_TM_RE = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?\Z")
_DT_RE = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?\Z")


def key_values(value: object) -> list[str]:
    """The values of a key element as stripped strings; empty list = universal matching."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        items: Sequence[object] = (value,)
    else:
        items = value
    out: list[str] = []
    for v in items:
        if v is None:
            continue
        s = v.decode("latin-1") if isinstance(v, bytes) else str(v)
        s = s.strip(" \x00")
        if s:
            out.append(s)
    return out


def fold_pn(name: str) -> str:
    """Case-folded PN with trailing empty components/groups removed (PS3.5 6.2.1)."""
    groups = [g.rstrip("^ ") for g in name.casefold().split("=")]
    return "=".join(groups).rstrip("=")


def fuzzy_pn(name: str) -> str:
    """A PN folded for fuzzy semantic matching (PS3.4 C.2.2.2.1.1, an extended-negotiation
    option): compatibility-decomposed (NFKD), combining marks (accents) dropped, then folded as
    :func:`fold_pn` -- so "Müller" and "MULLER" match, "Zoë" and "zoe"."""
    decomposed = unicodedata.normalize("NFKD", name)
    return fold_pn("".join(c for c in decomposed if not unicodedata.combining(c)))


def combine_datetime(date_norm: str, time_norm: str) -> str:
    """A study's date and time as one ``YYYYMMDDHHMMSS.ffffff`` value for combined date-time
    matching (PS3.4 C.2.2.2.5.4); midnight when it has no time, ``''`` without a date."""
    if not date_norm:
        return ""
    return date_norm + (time_norm or "000000.000000")


def combined_range(
    date_key: str, time_key: str, shift_minutes: int = 0
) -> tuple[str | None, str | None] | None:
    """The (low, high) ``YYYYMMDDHHMMSS.ffffff`` bounds of a Date key and a Time key matched
    as one DT (PS3.4 C.2.2.2.5.4: "20060705-20060707" with "1000-1800" is one period from the
    5th 10:00 to the 7th 18:00), shifted by ``shift_minutes`` (timezone query adjustment);
    None when they cannot be combined (a list of values, or only one of the two given)."""
    if not date_key or "\\" in date_key or "\\" in time_key:
        return None
    d_low, d_high = _range_bounds("DA", date_key)
    if time_key:
        t_low, t_high = _range_bounds("TM", time_key)
    else:
        t_low, t_high = None, None
    low = None if d_low is None else d_low + (t_low or "000000.000000")
    high = None if d_high is None else d_high + (t_high or "235959.999999")

    def shift(value: str | None) -> str | None:
        if value is None or not shift_minutes:
            return value
        stamp = dt.datetime.strptime(value[:14], "%Y%m%d%H%M%S") + dt.timedelta(
            minutes=shift_minutes)
        return stamp.strftime("%Y%m%d%H%M%S") + value[14:]

    return shift(low), shift(high)


def utc_offset_minutes(value: str) -> int | None:
    """Timezone Offset From UTC (0008,0201), ``+HHMM``/``-HHMM``, in minutes; None if invalid."""
    v = value.strip()
    if len(v) != 5 or v[0] not in "+-" or not v[1:].isdigit():
        return None
    minutes = int(v[1:3]) * 60 + int(v[3:5])
    return -minutes if v[0] == "-" else minutes


def glob_escape(pattern: str) -> str:
    """A DICOM wildcard pattern as an SQLite GLOB pattern (``*``/``?`` kept, ``[`` escaped)."""
    return pattern.replace("[", "[[]")


def _prefix_bounds(pattern: str) -> tuple[str, str | None] | None:
    """``(low, high)`` such that every string the wildcard ``pattern`` matches lies in
    ``low <= s < high`` in code point order -- which is the order of UTF-8 bytes, SQLite's
    BINARY and PostgreSQL's ``COLLATE "C"`` -- or None when it starts with a wildcard. ``high``
    is None when the last literal character has no successor that UTF-8 can hold."""
    cut = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0), default=-1)
    literal = pattern[:cut] if cut >= 0 else pattern
    if not literal:
        return None
    successor = ord(literal[-1]) + 1
    if successor > 0x10FFFF or 0xD800 <= successor <= 0xDFFF:
        return literal, None
    return literal, literal[:-1] + chr(successor)


def _effective(vr: str, values: Sequence[str]) -> list[str]:
    # A PN made only of component separators ("^", "=^^") is an empty name: zero length.
    if vr == "PN":
        return [v for v in values if fold_pn(v).strip("^=")]
    return list(values)


def _is_universal_wildcard(v: str) -> bool:
    return v.strip("*") == ""


def normalize_date(value: str) -> str:
    """A DA value as ``YYYYMMDD`` (the ACR-NEMA ``YYYY.MM.DD`` form accepted), or ``''``."""
    v = value.strip()
    if len(v) == 10 and v[4] == "." and v[7] == ".":
        v = v.replace(".", "")
    if not _DA_RE.match(v) or not ("01" <= v[4:6] <= "12" and "01" <= v[6:8] <= "31"):
        return ""
    return v


def _split_time(value: str) -> tuple[str, int] | None:
    v = value.strip().replace(":", "")
    m = _TM_RE.match(v)
    if m is None:
        return None
    hh, mm, ss, frac = m.groups()
    if int(hh) > 23 or (mm and int(mm) > 59) or (ss and int(ss) > 60):  # 60: leap second
        return None
    digits = hh + (mm or "") + (ss or "")
    return digits + "." + (frac or ""), len(digits) + (len(frac) if frac else 0)


def normalize_time(value: str, *, upper: bool = False) -> str:
    """A TM value as ``HHMMSS.ffffff``; reduced precision padded with zeros, or with the largest
    value of the span when ``upper`` (so ``12`` -> ``125959.999999``).  ``''`` if invalid."""
    parts = _split_time(value)
    if parts is None:
        return ""
    text, _ = parts
    digits, _, frac = text.partition(".")
    if upper:
        digits = digits + "5959"[len(digits) - 2 :]
        frac = frac + "9" * (6 - len(frac)) if (frac or len(digits) == 6) else "999999"
    else:
        digits = digits.ljust(6, "0")
        frac = frac.ljust(6, "0")
    return f"{digits}.{frac}"


def _normalize_dt(value: str, *, upper: bool) -> str:
    """A DT value as ``YYYYMMDDHHMMSS.ffffff`` (UTC offset ignored), padded like TM."""
    v = value.strip()
    if not _DT_RE.match(v):
        return ""
    base = v[:-5] if len(v) > 5 and v[-5] in "+-" else v
    digits, _, frac = base.partition(".")
    if upper:
        digits = digits + "99991231235959"[len(digits) :]
        frac = frac.ljust(6, "9") if frac or len(base) >= 14 else "999999"
    else:
        digits = digits.ljust(14, "0")
        frac = frac.ljust(6, "0")
    return f"{digits}.{frac}"


def _range_bounds(vr: str, value: str) -> tuple[str | None, str | None]:
    """(low, high) normalised bounds of a DA/TM/DT key (single value: both set)."""
    if vr == "DT":
        # A DT may carry a "-HHMM" UTC offset; a range separator is a '-' not followed by
        # exactly four digits at the end.  Keep it simple: split on the first '-' that is
        # preceded by a complete-looking value or at position 0.
        low_s, sep, high_s = _split_dt_range(value)
    else:
        low_s, sep, high_s = value.partition("-")
    if not sep:
        low_s = high_s = value
    low_s, high_s = low_s.strip(), high_s.strip()
    if not low_s and not high_s:
        raise QueryError(f"invalid range {value!r}", Status.CANNOT_UNDERSTAND)
    low = high = None
    if vr == "DA":
        if low_s:
            low = normalize_date(low_s)
        if high_s:
            high = normalize_date(high_s)
    elif vr == "TM":
        if low_s:
            low = normalize_time(low_s)
        if high_s:
            high = normalize_time(high_s, upper=True)
    else:
        if low_s:
            low = _normalize_dt(low_s, upper=False)
        if high_s:
            high = _normalize_dt(high_s, upper=True)
    if low == "" or high == "":
        raise QueryError(f"invalid {vr} key {value!r}", Status.CANNOT_UNDERSTAND)
    return low, high


def _split_dt_range(value: str) -> tuple[str, str, str]:
    # PS3.4 C.2.2.2.5: "<datetime1>-<datetime2>"; a trailing "-HHMM" may instead be a UTC
    # offset.  Take the first '-' where both sides are valid DT values, preferring the offset
    # reading when the right-hand side is exactly four digits after a non-empty value.
    for i, ch in enumerate(value):
        if ch != "-":
            continue
        left, right = value[:i], value[i + 1 :]
        if left and len(right) == 4:
            continue
        if (not left or _DT_RE.match(left)) and (not right or _DT_RE.match(right)):
            return left, "-", right
    return value, "", ""


def _stored_norm(vr: str, stored: str) -> str:
    if vr == "DA":
        return normalize_date(stored)
    if vr == "TM":
        return normalize_time(stored)
    return _normalize_dt(stored, upper=False)


def sql_condition(
    vr: str,
    column: str,
    values: Sequence[str],
    *,
    integer: bool = False,
    case_insensitive: bool = False,
) -> Condition | None:
    """The SQL condition for key ``values`` on ``column`` (``None``: universal, no condition).

    ``column`` is trusted SQL (from the attribute catalogue); values are bound parameters.
    For TM, ``column`` must hold :func:`normalize_time` values; for PN with
    ``case_insensitive``, :func:`fold_pn` values.
    """
    values = _effective(vr, values)
    if not values:
        return None
    parts: list[str] = []
    params: list[object] = []
    uid_list: list[str] = []
    for v in values:
        if vr in WILDCARD_VRS and ("*" in v or "?" in v):
            if _is_universal_wildcard(v):
                return None
            pattern = v.casefold() if case_insensitive else v
            bounds = _prefix_bounds(pattern)
            if bounds is None:
                parts.append(f"{column} GLOB ?")
                params.append(glob_escape(pattern))
            else:
                # The literal prefix as a range too: redundant for the result, but a plan made
                # for any value of the parameters (PostgreSQL's generic plan of a prepared
                # statement) can still read just that range of the column's index.
                first, beyond = bounds
                parts.append(f"({column} GLOB ? AND {column} >= ?"
                             + (f" AND {column} < ?)" if beyond is not None else ")"))  # fmt: skip
                params.extend([glob_escape(pattern), first]
                              + ([beyond] if beyond is not None else []))  # fmt: skip
        elif vr in _RANGE_VRS:
            low, high = _range_bounds(vr, v)
            if vr == "DA" or vr == "TM":
                conds = [f"{column} <> ''"]
                if low is not None:
                    conds.append(f"{column} >= ?")
                    params.append(low)
                if high is not None:
                    conds.append(f"{column} <= ?")
                    params.append(high)
                parts.append("(" + " AND ".join(conds) + ")")
            else:  # DT columns are not indexed today; exact normalised comparison only
                parts.append(f"{column} = ?")
                params.append(v)
        elif integer or vr in _INT_VRS:
            try:
                number = int(v)
            except ValueError:
                parts.append("1 = 0")  # matches nothing, in every SQL dialect
                continue
            parts.append(f"{column} = ?")
            params.append(number)
        elif vr == "PN" and case_insensitive:
            parts.append(f"{column} = ?")
            params.append(fold_pn(v))
        else:
            uid_list.append(v)
    if len(uid_list) == 1:
        parts.append(f"{column} = ?")
        params.append(uid_list[0])
    elif uid_list:
        # PS3.4 C.2.2.2.2 list of UID matching (and, by extension, any multi-valued key).
        parts.append(f"{column} IN ({','.join('?' * len(uid_list))})")
        params.extend(uid_list)
    if len(parts) == 1:
        return parts[0], params
    return "(" + " OR ".join(parts) + ")", params


def glob_match(pattern: str, value: str) -> bool:
    """``*``/``?`` wildcard matching in O(len(pattern) * len(value)) time.

    Greedy with a single backtrack point (the last ``*``): regular expressions would
    backtrack exponentially on hostile keys such as ``*a*a*a*a*a*b``.
    """
    p = i = 0
    n_p, n_v = len(pattern), len(value)
    star = -1
    mark = 0
    while i < n_v:
        if p < n_p and pattern[p] == "*":
            star, mark = p, i
            p += 1
        elif p < n_p and (pattern[p] == "?" or pattern[p] == value[i]):
            p += 1
            i += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            i = mark
        else:
            return False
    while p < n_p and pattern[p] == "*":
        p += 1
    return p == n_p


def _glob_test(pattern: str, fold: bool, s: str) -> bool:
    return glob_match(pattern, fold_pn(s) if fold else s)


def _range_test(vr: str, low: str | None, high: str | None, s: str) -> bool:
    n = _stored_norm(vr, s)
    if not n:
        return False
    return (low is None or n >= low) and (high is None or n <= high)


def _int_test(number: int, s: str) -> bool:
    try:
        return int(s) == number
    except ValueError:
        return False


def _pn_test(folded: str, s: str) -> bool:
    return fold_pn(s) == folded


def _eq_test(value: str, s: str) -> bool:
    return s == value


def _always(stored: object) -> bool:
    return True


def python_matcher(
    vr: str, values: Sequence[str], *, case_insensitive_pn: bool = True
) -> Callable[[object], bool]:
    """A predicate over a stored element value implementing the same rules as
    :func:`sql_condition` (used for attributes that are not index columns)."""
    values = _effective(vr, values)
    if not values:
        return _always
    tests: list[Callable[[str], bool]] = []
    ci = case_insensitive_pn and vr == "PN"
    for v in values:
        if vr in WILDCARD_VRS and ("*" in v or "?" in v):
            if _is_universal_wildcard(v):
                return _always
            tests.append(partial(_glob_test, v.casefold() if ci else v, ci))
        elif vr in _RANGE_VRS:
            low, high = _range_bounds(vr, v)
            tests.append(partial(_range_test, vr, low, high))
        elif vr in _INT_VRS:
            try:
                tests.append(partial(_int_test, int(v)))
            except ValueError:
                continue
        elif ci:
            tests.append(partial(_pn_test, fold_pn(v)))
        else:
            tests.append(partial(_eq_test, v))

    def predicate(stored: object) -> bool:
        for s in key_values(stored):
            for t in tests:
                if t(s):
                    return True
        return False

    return predicate
