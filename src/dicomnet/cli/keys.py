"""Parsing of ``-k KEY=VALUE`` query keys into a query identifier.

Theory of operation
-------------------
A query identifier (PS3.4 section C.4.1.1.3) is a dataset whose elements are either matching
keys (an element with a value) or return keys (an element with a zero-length value, PS3.4
section C.2.2.1.1 "universal matching"). On the command line each ``-k`` names one element:

* ``PatientName=DOE^*`` -- a keyword (PS3.6 data dictionary) and its value;
* ``0010,0010=DOE^*`` or ``(0010,0010)=...`` -- the same element by its tag;
* ``PatientID=`` or just ``PatientID`` -- an empty value: a return key;
* ``ReferencedStudySequence[0].StudyInstanceUID=1.2.3`` -- a path into a sequence item
  (PS3.4 section C.2.2.1.3 sequence matching); ``ReferencedStudySequence=`` is an empty
  sequence, i.e. a return key for the whole sequence;
* ``A\\B`` -- several values (the DICOM value delimiter), e.g. a list of UIDs (PS3.4 section
  C.2.2.2.2).

Values are converted to the Python type pydicom expects for the element's VR (integers for
US/SS/UL/SL/UV/SV, floats for FL/FD, tags for AT); strings are kept as typed. A problem raises
:class:`KeyError_` with a one-line reason that names the offending key.

pydicom is imported lazily: nothing here runs unless a tool builds an identifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomnet.dimse.textenc import needs_character_set

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["KeyError_", "KeySpec", "apply_key", "build_identifier", "parse_key"]


class KeyError_(ValueError):
    """A ``-k`` specification that cannot be turned into a data element."""


_TAG_RE = re.compile(r"\(?\s*([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\s*\)?")
_STEP_RE = re.compile(r"^(?P<name>[^\[\]]+?)(?:\[(?P<index>\d+)\])?$")

_INT_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One parsed ``-k``: the path of (tag, item index or None) steps and the raw value."""

    path: tuple[tuple[int, int | None], ...]
    value: str | None  # None or "" = return key


def _resolve_tag(name: str, spec: str) -> int:
    from pydicom.datadict import tag_for_keyword  # lazy: pydicom (see the module docstring)

    name = name.strip()
    m = _TAG_RE.fullmatch(name)
    if m:
        return (int(m.group(1), 16) << 16) | int(m.group(2), 16)
    tag = tag_for_keyword(name)
    if tag is None:
        raise KeyError_(f"unknown keyword {name!r} in key {spec!r}")
    return int(tag)


def _split_path(path: str) -> list[str]:
    """Split ``A[0].B[1].C`` on the dots that are not inside a ``(gggg,eeee)`` tag."""
    steps: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in path:  # a key is a few dozen characters: not a hot path
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            steps.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    steps.append("".join(cur))
    return steps


def parse_key(spec: str) -> KeySpec:
    """Parse one ``-k`` argument; raises :class:`KeyError_` with a one-line reason."""
    from pydicom.datadict import dictionary_VR  # lazy: pydicom (see the module docstring)

    if "=" in spec:
        path_text, value = spec.split("=", 1)
    else:
        path_text, value = spec, None
    path_text = path_text.strip()
    if not path_text:
        raise KeyError_(f"empty key in {spec!r}")
    steps = _split_path(path_text)
    path: list[tuple[int, int | None]] = []
    for i, step in enumerate(steps):
        m = _STEP_RE.match(step.strip())
        if m is None:
            raise KeyError_(f"cannot parse {step!r} in key {spec!r}")
        tag = _resolve_tag(m.group("name"), spec)
        index = int(m.group("index")) if m.group("index") is not None else None
        last = i == len(steps) - 1
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = None
        if not last:
            if vr is not None and vr != "SQ":
                raise KeyError_(f"{m.group('name')} is not a sequence in key {spec!r}")
            index = 0 if index is None else index
        elif index is not None:
            if vr is not None and vr != "SQ":
                raise KeyError_(f"{m.group('name')} is not a sequence in key {spec!r}")
            if value:
                raise KeyError_(f"a sequence item cannot take a value in key {spec!r}")
        path.append((tag, index))
    return KeySpec(tuple(path), value)


def _convert(value: str, vr: str, spec: str) -> str | int | float | list[int] | list[float]:
    parts = value.split("\\")
    try:
        if vr in _INT_VRS:
            ints = [int(p, 0) for p in parts]
            return ints[0] if len(ints) == 1 else ints
        if vr in _FLOAT_VRS:
            floats = [float(p) for p in parts]
            return floats[0] if len(floats) == 1 else floats
        if vr == "AT":
            tags = [_resolve_tag(p, spec) for p in parts]
            return tags[0] if len(tags) == 1 else tags
    except ValueError as exc:
        raise KeyError_(f"bad {vr} value {value!r} in key {spec!r}") from exc
    return value


def apply_key(ds: Dataset, key: KeySpec, spec: str = "") -> None:
    """Set the element ``key`` names in ``ds`` (creating sequence items on the way)."""
    # lazy: pydicom (see the module docstring)
    from pydicom.datadict import dictionary_VR
    from pydicom.dataset import Dataset as _Dataset
    from pydicom.sequence import Sequence

    spec = spec or "/".join(f"{t:08X}" for t, _ in key.path)
    current = ds
    for depth, (tag, index) in enumerate(key.path):
        last = depth == len(key.path) - 1
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            raise KeyError_(
                f"tag ({tag >> 16:04X},{tag & 0xFFFF:04X}) is not in the data dictionary "
                f"(its VR is unknown) in key {spec!r}"
            ) from None
        if vr == "SQ":
            if tag not in current:
                current.add_new(tag, "SQ", Sequence())
            seq = current[tag].value
            if last and index is None:
                if key.value:
                    raise KeyError_(f"a sequence cannot take a value in key {spec!r}")
                break
            wanted = 0 if index is None else index
            while len(seq) <= wanted:
                seq.append(_Dataset())
            current = seq[wanted]
            continue
        if not last:  # parse_key already refuses this; keep apply_key safe on its own
            raise KeyError_(f"not a sequence in key {spec!r}")
        vr = vr.split(" or ")[0]
        value = _convert(key.value, vr, spec) if key.value else None
        if tag in current:
            current[tag].value = value
        else:
            current.add_new(tag, vr, value)


def build_identifier(specs: Iterable[str], base: Dataset | None = None,
                     charset: str | None = None) -> Dataset:  # fmt: skip
    """A query identifier built from ``-k`` specifications, applied in order (later wins).

    ``charset``: its Specific Character Set (0008,0005); without one, ISO_IR 192 (UTF-8) is
    set when a value is not plain ASCII (PS3.4 C.4.1.1.3.1: the request must say which
    character set its values are in -- without it they would go out in the default
    repertoire, as "?", itself a wildcard)."""
    from pydicom.dataset import Dataset as _Dataset  # lazy: pydicom (see the module docstring)

    ds = _Dataset() if base is None else base
    for spec in specs:
        apply_key(ds, parse_key(spec), spec)
    if charset:
        ds.SpecificCharacterSet = charset
    elif "SpecificCharacterSet" not in ds and needs_character_set(ds):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds
