"""Data set helpers under the names pynetdicom programs import them by (``from dicomnet.dsutils
import encode, decode, pretty_dataset``).

Theory of operation
-------------------
A DIMSE message carries its data set encoded in the presentation context's transfer syntax,
without File Meta Information (PS3.7 section 6.3.1). dicomnet encodes and decodes them with
:func:`dicomnet.dimse.dataset.encode_dataset` / :func:`~dicomnet.dimse.dataset.decode_dataset`,
which take the transfer syntax UID; pynetdicom's spelling takes the three properties that
matter instead (PS3.5 section 10: implicit or explicit VR, little or big endian, deflated or
not). The four combinations the standard defines map onto the four uncompressed syntaxes
(Implicit VR Little Endian, Explicit VR Little Endian, Deflated Explicit VR Little Endian,
Explicit VR Big Endian); any other one (implicit VR big endian, deflated implicit or big
endian) is no DICOM transfer syntax at all and is refused with ValueError.

* :func:`encode` gives the bytes, or None (the failure logged) for a data set pydicom cannot
  write, as pynetdicom does; :func:`decode` gives a ``Dataset`` and raises
  :class:`~dicomnet.errors.DimseError` for bytes that are not a data set in that encoding
  (a deflated one inflates to at most :data:`~dicomnet.dimse.dataset.MAX_INFLATED` bytes).
* :func:`pretty_element` / :func:`pretty_dataset`: one line per element, in the layout of
  ``dcmdump``: ``(gggg,eeee) VR [value]`` padded to a column, then ``# VM Keyword``; a sequence
  shows its item count and each item indented under it. Binary values show their length,
  not their bytes. For logs and for printing a received data set.
"""

from __future__ import annotations

import logging
from io import BytesIO
from typing import TYPE_CHECKING

from dicomnet.dimse.dataset import decode_dataset, encode_dataset
from dicomnet.errors import DimseError

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

__all__ = ["decode", "encode", "pretty_dataset", "pretty_element"]

LOGGER = logging.getLogger("dicomnet.dsutils")

# (implicit VR, little endian, deflated) -> transfer syntax UID (PS3.5 section 10, Annex A)
_SYNTAXES = {
    (True, True, False): "1.2.840.10008.1.2",
    (False, True, False): "1.2.840.10008.1.2.1",
    (False, True, True): "1.2.840.10008.1.2.1.99",
    (False, False, False): "1.2.840.10008.1.2.2",
}
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"})
_VALUE_COLUMN = 56  # where "# VM Keyword" starts, as dcmdump lays it out


def _syntax(is_implicit_vr: bool, is_little_endian: bool, deflated: bool) -> str:
    key = (bool(is_implicit_vr), bool(is_little_endian), bool(deflated))
    try:
        return _SYNTAXES[key]
    except KeyError:
        raise ValueError(
            f"no transfer syntax is implicit VR={key[0]}, little endian={key[1]}, "
            f"deflated={key[2]} (PS3.5 section 10)"
        ) from None


def encode(
    ds: Dataset, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False
) -> bytes | None:
    """``ds`` encoded as a message data set in the syntax those three properties name; None
    (logged) when it cannot be encoded."""
    syntax = _syntax(is_implicit_vr, is_little_endian, deflated)
    try:
        return encode_dataset(ds, syntax)
    except DimseError:
        LOGGER.exception("the data set could not be encoded")
        return None


def decode(
    bytestring: BytesIO | bytes | bytearray | memoryview,
    is_implicit_vr: bool,
    is_little_endian: bool,
    deflated: bool = False,
) -> Dataset:
    """The data set encoded in ``bytestring`` (a ``BytesIO``, as pynetdicom passes it, or
    bytes) in the syntax those three properties name."""
    syntax = _syntax(is_implicit_vr, is_little_endian, deflated)
    raw = bytestring.getvalue() if isinstance(bytestring, BytesIO) else bytes(bytestring)
    return decode_dataset(raw, syntax)


def _value_text(elem: DataElement) -> str:
    value = elem.value
    if elem.VR == "SQ":
        n = len(value)
        return f"(Sequence with {n} item{'' if n == 1 else 's'})"
    if value is None or value == "" or value == b"":
        return "(no value available)"
    if elem.VR in _BINARY_VRS and isinstance(value, bytes | bytearray):
        return f"({len(value)} bytes)"
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "[" + "\\".join(str(v) for v in value) + "]"
    return f"[{value}]"


def pretty_element(elem: DataElement) -> str:
    """One line for ``elem``: ``(gggg,eeee) VR [value]``, then ``# VM Keyword``."""
    tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
    head = f"{tag} {elem.VR} {_value_text(elem)}"
    return f"{head:<{_VALUE_COLUMN}}# {elem.VM} {elem.keyword or elem.name}"


def pretty_dataset(ds: Dataset, indent: int = 0, indent_char: str = "  ") -> list[str]:
    """The lines of :func:`pretty_element` for every element of ``ds``, each sequence's items
    under it, each level indented once more by ``indent_char``."""
    pad = indent_char * indent
    lines: list[str] = []
    for elem in ds:
        lines.append(pad + pretty_element(elem))
        if elem.VR == "SQ":
            for number, item in enumerate(elem.value, 1):
                lines.append(f"{pad}{indent_char}(Sequence item #{number})")
                lines.extend(pretty_dataset(item, indent + 2, indent_char))
    return lines
