"""A fast encoder for flat, text-only data sets (C-FIND identifiers), little endian.

Theory of operation
-------------------
A C-FIND SCP answers with one identifier per match (PS3.4 C.4.1.3.1), and the identifiers an
archive builds are flat: string-valued elements only (CS, UI, DA, PN, LO, ...), no sequences.
Running each through pydicom's general writer costs far more than the bytes are worth, so
:func:`encode_flat_text` writes them directly:

* elements in ascending tag order (PS3.5 section 7.1), group 0002 left out (PS3.7 6.3.1);
* Implicit VR Little Endian: tag, 4-byte length (PS3.5 7.1.3); Explicit VR Little Endian: tag,
  VR, 2-byte length, or 2 reserved bytes and a 4-byte length for UC, UR and UT (PS3.5 7.1.2);
* multiple values joined by backslash (PS3.5 6.4); odd lengths padded to even with a space, or
  with NUL for UI (PS3.5 6.2);
* the Specific Character Set (0008,0005) of the data set chooses the bytes of the character-set
  affected VRs (PS3.5 6.1.2.3: SH, LO, ST, LT, PN, UC, UT): ISO_IR 100 (Latin-1) and
  ISO_IR 192 (UTF-8); other VRs and data sets without that attribute must be plain ASCII.

Anything else -- another VR, a non-string value, another or multi-valued character set, a
non-ASCII value where only ASCII is certain, a short-length value over 64 KiB -- returns None
and the caller uses pydicom, so the output is always what pydicom would have produced.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["encode_flat_text", "needs_character_set", "with_character_set"]

_IMPLICIT_HEADER = struct.Struct("<HHL")
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_EXPLICIT_LONG = struct.Struct("<HH2sHL")

# PS3.5 6.2: string VRs; value -> padding byte.
_STRING_VRS: dict[str, bytes] = {
    vr: b" "
    for vr in (
        "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
        "SH", "ST", "TM", "UC", "UR", "UT",
    )
}
_STRING_VRS["UI"] = b"\x00"
# PS3.5 6.1.2.3: the VRs whose bytes depend on (0008,0005).
_CHARSET_VRS = frozenset(("SH", "LO", "ST", "LT", "PN", "UC", "UT"))
# PS3.5 7.1.2: explicit VR with a 32-bit length (among the string VRs).
_LONG_VRS = frozenset(("UC", "UR", "UT"))
_VR_BYTES = {vr: vr.encode("ascii") for vr in _STRING_VRS}
# PS3.3 C.12.1.1.2 defined terms handled here -> Python codec.
_CODECS = {"ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}
_TAG_CHARSET = 0x00080005


def _text_of(value: Any) -> str | None:
    """The single value as pydicom writes it, or None when not handled here."""
    tp = type(value)
    if tp is str:
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        return str.__str__(value)
    # IS / DSfloat / DSdecimal / PersonName: pydicom writes original_string when it is a str.
    name = tp.__name__
    if name in ("IS", "DSfloat", "DSdecimal"):
        orig = getattr(value, "original_string", None)
        return orig if isinstance(orig, str) else str(value)
    if name == "PersonName":
        orig = getattr(value, "original_string", None)
        if orig is not None:
            return None  # decoded from bytes: keep pydicom's exact re-encoding
        return str(value)
    return None


def encode_flat_text(dataset: Dataset, implicit: bool) -> bytes | None:
    """``dataset`` encoded in Implicit (``implicit``) or Explicit VR Little Endian, or None when
    it holds anything but string-valued elements this encoder handles (see module docstring)."""
    from pydicom.dataelem import DataElement

    # the element mapping through pydicom's public dict view (``items().mapping``): raw
    # elements stay unconverted, and sorting by int skips BaseTag's slow comparisons
    # (pydicom types items() as a set; at run time it is the dict's dict_items view)
    elems: Mapping[int, object] = dataset.items().mapping  # type: ignore[attr-defined]
    codec: str | None = None
    cs = elems.get(_TAG_CHARSET)
    if cs is not None:
        if not isinstance(cs, DataElement):
            return None
        csv = cs.value
        if csv is None or csv == "":
            codec = None
        elif type(csv) is str:
            codec = _CODECS.get(csv)
            if codec is None:
                return None
        else:
            return None
    out: list[bytes] = []
    append = out.append
    for tag in sorted(elems, key=int):
        if tag >> 16 == 0x0002:
            continue
        elem = elems[tag]
        if not isinstance(elem, DataElement):
            return None
        vr = elem.VR
        pad = _STRING_VRS.get(vr)
        if pad is None:
            return None
        value = elem.value
        if value is None or value == "":
            raw = b""
        else:
            if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
                parts = [_text_of(v) for v in value]
                if None in parts:
                    return None
                text = "\\".join(parts)  # type: ignore[arg-type]  # PS3.5 6.4
            else:
                one = _text_of(value)
                if one is None:
                    return None
                text = one
            if text.isascii():
                raw = text.encode("ascii")
            elif codec is not None and vr in _CHARSET_VRS:
                try:
                    raw = text.encode(codec)
                except UnicodeEncodeError:
                    return None
            else:
                return None
            if len(raw) & 1:
                raw += pad
        length = len(raw)
        if implicit:
            append(_IMPLICIT_HEADER.pack(tag >> 16, tag & 0xFFFF, length))
        elif vr in _LONG_VRS:
            append(_EXPLICIT_LONG.pack(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], 0, length))
        else:
            if length > 0xFFFF:
                return None
            append(_EXPLICIT_SHORT.pack(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], length))
        append(raw)
    return b"".join(out)


def needs_character_set(dataset: Dataset) -> bool:
    """Whether a text value of ``dataset`` (or of its sequence items) is not plain ASCII, so
    that the data set must name a Specific Character Set (PS3.5 6.1.2.3)."""
    for elem in dataset:
        value = elem.value
        if elem.VR == "SQ":
            if any(needs_character_set(item) for item in value or ()):
                return True
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            text = _text_of(v) if v is not None else None
            if text is None and v is not None:
                text = str(v)
            if text is not None and not text.isascii():
                return True
    return False


def with_character_set(dataset: Dataset) -> Dataset:
    """``dataset`` itself when it names a Specific Character Set or is plain ASCII; else a
    shallow copy saying ISO_IR 192 (UTF-8), so that its values are sent as they are instead of
    being replaced by "?" (PS3.5 6.1.2.5.3: the default repertoire is ASCII)."""
    if "SpecificCharacterSet" in dataset or not needs_character_set(dataset):
        return dataset
    copy = dataset.copy()
    copy.SpecificCharacterSet = "ISO_IR 192"
    return copy
