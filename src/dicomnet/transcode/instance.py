"""Reading a file to be sent: its transfer syntax and the SOP Class/Instance UIDs of its data set.

Theory of operation
-------------------
A C-STORE-RQ names the instance it carries with Affected SOP Class UID and Affected SOP
Instance UID (PS3.7 9.1.1.1), and those are the data set's (0008,0016) and (0008,0018)
(PS3.4 B.2.1). A PS3.10 file repeats them in its File Meta Information as (0002,0002) and
(0002,0003), but the copy can be stale (files edited or anonymized without updating the meta);
DCMTK and pynetdicom send the data set's values and so do we, with a warning when the meta
disagrees.

:func:`inspect_file` reads the File Meta Information (PS3.10 7.1) with the shared meta parser,
then the first elements of the data set up to (0008,0018) with a small element walker (the data
set's own encoding; a deflated data set is inflated just that far). Only the first few KiB are
read, so planning thousands of files stays cheap; anything unusual (the UIDs further in than
:data:`_SCAN` bytes) falls back to pydicom.

A file **without** File Meta Information is a bare data set (old ACR-NEMA style exports, some
modalities' dumps). Its encoding is inferred the way DCMTK does: the byte order from the first
tag's group number, explicit VR when bytes 4-5 are a valid VR (PS3.5 7.1.2/7.1.3); the file is
then sent from that syntax with a warning.

Problems are :class:`UnsendableFile` errors carrying a one-line reason, so a tool reports the
file and goes on with the next one.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from typing import NamedTuple

from dicomnet.dimse.dataset import parse_file_meta
from dicomnet.errors import DicomNetError
from dicomnet.transcode.syntax import DEFLATED, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE

__all__ = ["InstanceFile", "UnsendableFile", "guess_syntax", "inspect_file", "scan_uids"]

_HEAD = 16 * 1024  # first read: the meta header and the first elements of nearly every file
_SCAN = 256 * 1024  # how far into the data set the UIDs are looked for before pydicom is asked
_PREAMBLE = 128
_SOP_CLASS = 0x00080016
_SOP_INSTANCE = 0x00080018
_DICOMDIR = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage (PS3.10 8.4)
_LONG = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_VRS = _LONG | frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip


class UnsendableFile(DicomNetError):
    """A file that cannot be sent (not DICOM, no SOP Class/Instance UID...): the reason says.
    ``skip`` is True when there is nothing to send in it at all (not DICOM, a DICOMDIR): tools
    skip those with a warning instead of counting a failure."""

    def __init__(self, reason: str, *, skip: bool = False) -> None:
        super().__init__(reason)
        self.skip = skip


class InstanceFile(NamedTuple):
    """What sending one file needs to know about it."""

    path: str
    size: int
    #: where the data set starts (after the File Meta Information; 0 without one)
    dataset_offset: int
    #: the file's transfer syntax (inferred when there is no File Meta Information)
    transfer_syntax: str
    #: (0008,0016) and (0008,0018) of the data set: the Affected SOP Class/Instance UIDs
    sop_class_uid: str
    sop_instance_uid: str
    has_meta: bool
    #: things worth a warning (meta disagreeing with the data set, inferred syntax)
    warnings: tuple[str, ...]


def _text(value: bytes | memoryview) -> str:
    return bytes(value).decode("ascii", "replace").strip("\0 ")


def scan_uids(data: bytes | memoryview, transfer_syntax: str) -> dict[int, str]:
    """(0008,0016) and (0008,0018) from the first bytes of a data set encoded in
    ``transfer_syntax`` (any encapsulated syntax frames elements as explicit VR little endian).
    Returns what was found before the walk passed (0008,0018) or ran out of bytes."""
    view = memoryview(data).cast("B")
    if transfer_syntax == DEFLATED:
        inflater = zlib.decompressobj(-15)
        try:
            view = memoryview(inflater.decompress(bytes(view), _SCAN))
        except zlib.error:
            return {}
    implicit = transfer_syntax == IMPLICIT_LE
    order = ">" if transfer_syntax == EXPLICIT_BE else "<"
    found: dict[int, str] = {}
    pos, end, depth_stack = 0, len(view), 0
    while pos + 8 <= end:
        group, elem = struct.unpack_from(order + "HH", view, pos)
        tag = group << 16 | elem
        if depth_stack == 0 and group != 0xFFFE and tag > _SOP_INSTANCE:
            break
        if group == 0xFFFE:
            # item / delimiters of an undefined-length sequence being skipped
            length = struct.unpack_from(order + "I", view, pos + 4)[0]
            pos += 8
            if elem == 0xE0DD:
                depth_stack -= 1
            elif elem == 0xE000 and length != 0xFFFFFFFF:
                pos += length
            continue
        if implicit:
            vr, length, pos = b"", struct.unpack_from("<I", view, pos + 4)[0], pos + 8
        else:
            vr = bytes(view[pos + 4 : pos + 6])
            if vr in _LONG:
                if pos + 12 > end:
                    break
                length, pos = struct.unpack_from(order + "I", view, pos + 8)[0], pos + 12
            elif vr in _VRS:
                length, pos = struct.unpack_from(order + "H", view, pos + 6)[0], pos + 8
            else:
                break  # not an element header: stop, the caller falls back to pydicom
        if length == 0xFFFFFFFF:
            depth_stack += 1  # a sequence of undefined length: walk its items to skip it
            continue
        if depth_stack == 0 and tag in (_SOP_CLASS, _SOP_INSTANCE) and pos + length <= end:
            found[tag] = _text(view[pos : pos + length])
        pos += length
    return found


def guess_syntax(head: bytes | memoryview) -> str | None:
    """The transfer syntax of a bare data set from its first element (PS3.5 7.1), or None when
    the bytes do not look like a data set at all."""
    view = memoryview(head).cast("B")
    if len(view) < 8:
        return None
    g_le = struct.unpack_from("<H", view)[0]
    g_be = struct.unpack_from(">H", view)[0]
    explicit = bytes(view[4:6]) in _VRS
    # data sets start with low group numbers (0008 Identifying, sometimes 0000-0007 / retired
    # ACR-NEMA groups); a group read in the wrong byte order is huge (0x0800 and up)
    if g_le < 0x0100 and g_le != 0:
        return EXPLICIT_LE if explicit else IMPLICIT_LE
    if g_be < 0x0100 and g_be != 0:
        return EXPLICIT_BE if explicit else None  # there is no implicit VR big endian
    return None


def inspect_file(path: str) -> InstanceFile:
    """Identify the file at ``path`` for sending (see the module docstring). Raises
    :class:`UnsendableFile` with the reason, OSError when it cannot be read."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(min(size, _HEAD))
        try:
            offset, meta = parse_file_meta(head)
        except DicomNetError as exc:
            if len(head) >= size or "truncated" not in str(exc):
                raise UnsendableFile(f"bad File Meta Information: {exc}") from exc
            head += f.read(min(size, _PREAMBLE + 4 + 12 + (1 << 20)) - len(head))
            try:
                offset, meta = parse_file_meta(head)
            except DicomNetError as exc2:
                raise UnsendableFile(f"bad File Meta Information: {exc2}") from exc2
        if meta.get(0x0002) == _DICOMDIR:
            raise UnsendableFile("a DICOMDIR (media directory), not an instance", skip=True)
        notes: list[str] = []  # the InstanceFile's warnings
        has_meta = offset > 0
        ts = meta.get(0x0010) if has_meta else None
        if not ts:
            guessed = guess_syntax(memoryview(head)[offset:])
            if guessed is None:
                if has_meta:
                    raise UnsendableFile("no Transfer Syntax UID in the File Meta Information")
                raise UnsendableFile("not a DICOM file", skip=True)
            ts = guessed
            what = "no File Meta Information" if not has_meta else "no (0002,0010) in its meta"
            notes.append(f"{what}: sent as {ts} (inferred from the data set)")
        found = scan_uids(memoryview(head)[offset:], ts)
        if (_SOP_CLASS not in found or _SOP_INSTANCE not in found) and len(head) < size:
            # the UIDs lie beyond the first read (a long header): look further, up to _SCAN
            head += f.read(min(size, offset + _SCAN) - len(head))
            found = scan_uids(memoryview(head)[offset:], ts)
    if (_SOP_CLASS not in found or _SOP_INSTANCE not in found) and len(head) < size:
        # the UIDs lie beyond the bytes read (or behind something the walker does not know):
        # pydicom reads the file (a file read to its end without them simply has none)
        found.update(_pydicom_uids(path, found))
    sop_class, sop_instance = found.get(_SOP_CLASS), found.get(_SOP_INSTANCE)
    if not sop_class:
        raise UnsendableFile("the data set has no SOP Class UID (0008,0016)")
    if not sop_instance:
        raise UnsendableFile("the data set has no SOP Instance UID (0008,0018)")
    for elem, name, value in ((0x0002, "SOP Class", sop_class),
                              (0x0003, "SOP Instance", sop_instance)):  # fmt: skip
        stated = meta.get(elem)
        if stated and stated != value:
            notes.append(
                f"Media Storage {name} UID {stated} in the meta header differs from the data "
                f"set's {value}: the data set's is sent"
            )
    return InstanceFile(
        path, size, offset, ts, sop_class, sop_instance, has_meta, tuple(notes)
    )


def _pydicom_uids(path: str, found: dict[int, str]) -> dict[int, str]:
    from pydicom import dcmread  # lazy: pydicom (~150 ms), only for files our scan cannot read

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(path, stop_before_pixels=True, force=True,
                         specific_tags=[_SOP_CLASS, _SOP_INSTANCE])  # fmt: skip
    except Exception as exc:
        if found:
            return {}
        raise UnsendableFile(f"cannot read the data set: {exc}") from exc
    out: dict[int, str] = {}
    for tag in (_SOP_CLASS, _SOP_INSTANCE):
        elem = ds.get(tag)
        if elem is not None and elem.value:
            out[tag] = str(elem.value).strip("\0 ")
    return out
