"""Data set encoding for DIMSE messages: transfer syntaxes, Part 10 headers, encode/decode.

Theory of operation
-------------------
A DIMSE message (PS3.7 section 6.3) carries an optional data set encoded in the transfer syntax
accepted for its presentation context. This module holds the pure pieces every payload needs
(the payload classes themselves: :class:`dicomnet.dimse.payload.Payload` in memory,
:class:`dicomnet.datasource.DataSource` for files):

* :func:`encoding_of`: implicit/explicit VR, little/big endian and raw-deflated for a transfer
  syntax UID (PS3.5 section 10 and Annex A);
* :func:`encode_dataset` / :func:`decode_dataset`: a pydicom ``Dataset`` to and from its
  encoded bytes, with no File Meta Information (PS3.7 section 6.3.1: the message data set never
  contains group 0002), deflated as PS3.5 A.5 says, and a bound on what a deflated data set
  may inflate to;
* :func:`parse_file_meta` / :func:`read_part10_header` / :func:`read_file_meta`: find where the
  data set of a PS3.10 file starts (128-byte preamble, "DICM", group 0002 meta header -- PS3.10
  section 7.1) and its Transfer Syntax UID; a file without preamble/meta is a raw data set.
  They parse bytes they are given (``read_file_meta`` calls ``read`` on a file object the
  caller opened): nothing here opens a file.

Pydicom is imported lazily, only by the functions that need a ``Dataset``.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, BinaryIO, cast

from dicomnet.dimse.textenc import encode_flat_text
from dicomnet.errors import DimseError, EncodeError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "DEFLATED_TRANSFER_SYNTAXES",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "MAX_META_LENGTH",
    "decode_dataset",
    "encode_dataset",
    "encoding_of",
    "parse_file_meta",
    "read_file_meta",
    "read_part10_header",
]

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
# PS3.5 A.5 Deflated Explicit VR Little Endian, and JPIP Referenced Deflate (PS3.5 A.7).
DEFLATED_TRANSFER_SYNTAXES = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"})

#: Largest File Meta Information group we accept when parsing a Part 10 file (hostile files).
MAX_META_LENGTH = 1 << 20
MAX_INFLATED = 1 << 30  # largest inflated size of a deflated data set decoded in memory
_FIRST_READ = 8192  # covers nearly every file meta header
_TEXT_VRS = frozenset({b"UI", b"AE", b"SH", b"LO", b"CS"})


class _TruncatedMeta(DimseError):
    """The bytes given end inside the file meta information (more may be read)."""


_PREAMBLE = 128
_MAGIC = b"DICM"
_TAG_VR_SHORT = struct.Struct("<HH2sH")  # explicit VR LE element header, 2-byte length
_UL = struct.Struct("<I")
# PS3.5 7.1.2: explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)

def encoding_of(transfer_syntax: str) -> tuple[bool, bool, bool]:
    """``(implicit_vr, little_endian, deflated)`` for a transfer syntax UID (PS3.5 section 10).

    Every transfer syntax other than the three uncompressed ones and the deflated ones is
    explicit VR little endian (the encapsulated ones included, PS3.5 A.4).
    """
    ts = transfer_syntax.strip("\0 ")
    if ts == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, True, False
    if ts == EXPLICIT_VR_BIG_ENDIAN:
        return False, False, False
    return False, True, ts in DEFLATED_TRANSFER_SYNTAXES


def read_part10_header(head: bytes | memoryview) -> tuple[int, str | None]:
    """Locate the data set in the first bytes of a file: ``(dataset_offset, transfer_syntax)``
    (see :func:`parse_file_meta`)."""
    offset, values = parse_file_meta(head)
    return offset, values.get(0x0010)


def read_file_meta(f: BinaryIO, size: int) -> tuple[int, dict[int, str]]:
    """:func:`parse_file_meta` of an open file, reading only as much as the meta needs: a
    small first read covers nearly every meta header; more is read only when it is longer."""
    head = f.read(min(size, _FIRST_READ))
    try:
        return parse_file_meta(head)
    except _TruncatedMeta:
        if len(head) >= size:
            raise
    head += f.read(min(size, _PREAMBLE + 4 + 12 + MAX_META_LENGTH) - len(head))
    return parse_file_meta(head)


def parse_file_meta(head: bytes | memoryview) -> tuple[int, dict[int, str]]:
    """Parse the File Meta Information at the start of ``head``: ``(dataset_offset, values)``
    where ``values`` maps the element numbers of group 0002's text elements (e.g. 0x0002
    MediaStorageSOPClassUID, 0x0003 MediaStorageSOPInstanceUID, 0x0010 TransferSyntaxUID) to
    their values without padding.

    ``head`` holds at least the whole meta header when there is one (callers pass the first
    ``132 + 12 + MAX_META_LENGTH`` bytes or the whole file, whichever is smaller). Layouts
    (PS3.10 section 7.1): preamble + "DICM" + group 0002; group 0002 with no preamble; or no
    meta header at all (offset 0, transfer syntax None). Garbage raises :class:`DimseError`.
    """
    view = memoryview(head)
    values: dict[int, str] = {}
    if len(view) >= _PREAMBLE + 4 and view[_PREAMBLE : _PREAMBLE + 4] == _MAGIC:
        start = _PREAMBLE + 4
    elif len(view) >= 4 and view[0:4] == _MAGIC:
        start = 4
    elif len(view) >= 8 and bytes(view[0:2]) == b"\x02\x00" and bytes(view[4:6]).isalpha():
        start = 0  # meta group without preamble (seen in the wild)
    else:
        return 0, values
    pos = start
    end = len(view)
    limit = start + MAX_META_LENGTH
    group_end: int | None = None
    while pos + 8 <= end:
        group, elem, vr, short_len = _TAG_VR_SHORT.unpack_from(view, pos)
        if group != 0x0002:
            break
        if group_end is not None and pos >= group_end:
            break
        if not vr.isalpha():
            raise DimseError(f"file meta information: bad VR at offset {pos}")
        if vr in _LONG_VRS:
            if pos + 12 > end:
                raise _TruncatedMeta("file meta information truncated")
            length = _UL.unpack_from(view, pos + 8)[0]
            value_at = pos + 12
        else:
            length = short_len
            value_at = pos + 8
        if length == 0xFFFFFFFF or value_at + length > limit:
            raise DimseError(f"file meta information: bad length {length} at offset {pos}")
        if value_at + length > end:
            raise _TruncatedMeta("file meta information truncated")
        value = view[value_at : value_at + length]
        if elem == 0x0000 and length == 4:
            # (0002,0000) FileMetaInformationGroupLength: bytes after this element.
            glen = _UL.unpack_from(value)[0]
            if glen > MAX_META_LENGTH:
                raise DimseError(f"file meta information group length {glen} too large")
            group_end = value_at + length + glen
        elif vr in _TEXT_VRS:
            values[elem] = bytes(value).decode("ascii", "replace").strip("\0 ")
        pos = value_at + length
        if group_end is not None and pos > group_end:
            # The group length ends inside an element: readers would disagree on where the
            # data set starts (PS3.10 section 7.1), so the file is refused.
            raise DimseError("file meta information group length ends inside an element")
    if group_end is not None:
        if group_end > end:
            raise _TruncatedMeta("file meta information truncated")
        pos = group_end
    if pos == start:
        raise DimseError("Part 10 file without a file meta information group")
    return pos, values


def encode_dataset(dataset: Dataset, transfer_syntax: str) -> bytes:
    """Encode ``dataset`` (no File Meta Information) in ``transfer_syntax`` (PS3.5 section 10)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    implicit, little, deflated = encoding_of(transfer_syntax)
    # Flat text-only data sets (C-FIND identifiers) skip pydicom's general writer; the fast
    # encoder returns None for anything it does not reproduce byte for byte.
    fast = encode_flat_text(dataset, implicit) if little else None
    if fast is not None:
        return _deflate(fast) if deflated else fast
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    body = dataset
    tags = list(dataset.keys())  # Dataset iteration yields elements, not tags
    if any(tag >> 16 == 0x0002 for tag in tags):
        # PS3.7 6.3.1: no File Meta Information in a message data set; leave the caller's alone.
        from pydicom.dataset import Dataset as _Dataset

        body = _Dataset({tag: dataset[tag] for tag in tags if tag >> 16 != 0x0002})
    try:
        write_dataset(fp, body)
    except Exception as exc:  # pydicom raises many types for unencodable values
        raise EncodeError(f"cannot encode the data set in {transfer_syntax}: {exc}") from exc
    raw = fp.getvalue()
    return _deflate(raw) if deflated else bytes(raw)


def _deflate(raw: bytes) -> bytes:
    """PS3.5 A.5: raw deflate (RFC 1951, no zlib header), and a deflated stream of odd length
    gets one trailing NUL (every PDV is even, PS3.8 Annex E; DCMTK aborts on an odd one)."""
    import zlib  # lazily (start-up time): only deflated transfer syntaxes need it

    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = comp.compress(raw) + comp.flush()
    return out + b"\0" if len(out) & 1 else out


def decode_dataset(
    data: bytes | memoryview, transfer_syntax: str, *, max_inflated: int | None = None
) -> Dataset:
    """Decode encoded data set bytes into a pydicom ``Dataset``; errors become DimseError.

    A deflated data set (PS3.5 A.5) inflates to at most ``max_inflated`` bytes (default
    :data:`MAX_INFLATED`): a few KB of deflate can claim gigabytes (a "deflate bomb")."""
    from pydicom.filebase import DicomBytesIO  # lazily: pydicom is heavy (start-up time)
    from pydicom.filereader import read_dataset

    implicit, little, deflated = encoding_of(transfer_syntax)
    raw = bytes(data)
    try:
        if deflated:
            limit = MAX_INFLATED if max_inflated is None else max_inflated
            import zlib

            inflater = zlib.decompressobj(-15)
            raw = inflater.decompress(raw, limit)
            if inflater.unconsumed_tail:
                raise DimseError(f"deflated data set inflates beyond {limit} bytes")
            if not inflater.eof:
                raise DimseError("deflated data set is truncated")
        # A DicomBytesIO is read through read/seek/tell only, which is all read_dataset uses.
        ds = read_dataset(cast("BinaryIO", DicomBytesIO(raw)), implicit, little)
    except DimseError:
        raise
    except Exception as exc:  # hostile bytes: pydicom raises many types
        raise DimseError(f"cannot decode the data set as {transfer_syntax}: {exc}") from exc
    return ds
