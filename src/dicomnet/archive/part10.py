"""Part 10 pieces the archive's file store and its start-up check share: the UID check that
makes a UID safe as a file name, the File Meta Information header (PS3.10 section 7.1) written
in front of every stored data set, and a cheap fingerprint of a stored file.

Theory of operation
-------------------
A stored object's path is built from its UIDs, so a UID is only used after
:func:`validate_uid` (PS3.5 section 9.1: digits and dots, which rules out every path trick).
:func:`encode_file_meta` builds the group 0002 elements with a few ``struct`` packs: what stays
the same for one SOP class, transfer syntax and sender is cached, so a store of many small
objects pays per object only for its SOP Instance UID. :func:`quick_hash` fingerprints a file
by its size, both ends and one block per MiB -- what a power cut damages changes it -- so the
start-up check can tell an intact file from a damaged one with a few reads.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct

from dicomnet.archive.models import ArchiveError, InvalidUIDError
from dicomnet.uid import is_valid_uid

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "encode_file_meta",
    "quick_hash",
    "validate_uid",
]

#: Our Implementation Class UID (PS3.7 D.3.3.2), a UUID-derived UID (PS3.5 B.2).
IMPLEMENTATION_CLASS_UID = "2.25.324426449324199678008054897579396792863"
IMPLEMENTATION_VERSION_NAME = "DICOMNET_010"


def validate_uid(uid: object, what: str = "UID") -> str:
    """``uid`` if it is a valid UID, else :class:`InvalidUIDError` (never a path)."""
    # PS3.5 9.1 via the shared validator: ASCII digits and dots only, so no '/', '\\', '..',
    # NUL or absolute path can get through.
    if not is_valid_uid(uid):
        raise InvalidUIDError(f"invalid {what}: {uid!r}")
    assert isinstance(uid, str)
    return uid


# --- PS3.10 7.1 file meta information, Explicit VR Little Endian -------------------------------

_SHORT = struct.Struct("<HH2sH")  # tag group, element, VR, 16-bit length
_LONG = struct.Struct("<HH2s2xI")  # OB/OW/UN...: VR, 2 reserved bytes, 32-bit length
_PREAMBLE = bytes(128) + b"DICM"


def _elem(element: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) & 1:
        value += pad
    if len(value) > 0xFFFF:
        raise ArchiveError("file meta value too long")
    return _SHORT.pack(0x0002, element, vr, len(value)) + value


def _ascii(value: str, what: str) -> bytes:
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        raise ArchiveError(f"{what} must be ASCII: {value!r}") from None


def encode_file_meta(
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
    *,
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID,
    implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME,
    source_ae_title: str | None = None,
) -> bytes:
    """Preamble, ``DICM`` and the group 0002 elements of PS3.10 Table 7.1-1, ready to write.

    UIDs are padded with NUL, SH/AE with a space (PS3.5 6.2); the result is small, so it is
    built with a few ``struct`` packs rather than a general encoder.
    """
    head, tail = _meta_parts(
        sop_class_uid,
        transfer_syntax_uid,
        implementation_class_uid,
        implementation_version_name,
        source_ae_title,
    )
    instance = _elem(0x0003, b"UI", _ascii(sop_instance_uid, "SOP Instance UID"), b"\x00")
    length = len(head) + len(instance) + len(tail)
    return b"".join((_PREAMBLE, _GROUP_LENGTH.pack(0x0002, 0x0000, b"UL", 4, length), head,
                     instance, tail))


_GROUP_LENGTH = struct.Struct("<HH2sHI")


@functools.lru_cache(maxsize=256)
def _meta_parts(
    sop_class_uid: str,
    transfer_syntax_uid: str,
    implementation_class_uid: str,
    implementation_version_name: str | None,
    source_ae_title: str | None,
) -> tuple[bytes, bytes]:
    """The elements before and after (0002,0003): the same for every object of one SOP class,
    transfer syntax and sender, so they are built once (a store of small objects pays per
    object only for its SOP Instance UID)."""
    head = _LONG.pack(0x0002, 0x0001, b"OB", 2) + b"\x00\x01" + _elem(
        0x0002, b"UI", _ascii(sop_class_uid, "SOP Class UID"), b"\x00"
    )
    tail = [
        _elem(0x0010, b"UI", _ascii(transfer_syntax_uid, "Transfer Syntax UID"), b"\x00"),
        _elem(0x0012, b"UI", _ascii(implementation_class_uid, "Implementation UID"), b"\x00"),
    ]
    if implementation_version_name:
        tail.append(_elem(0x0013, b"SH", _ascii(implementation_version_name, "version"), b" "))
    if source_ae_title and source_ae_title.strip():
        tail.append(_elem(0x0016, b"AE", _ascii(source_ae_title.strip(), "AE title"), b" "))
    return head, b"".join(tail)


def quick_hash(fd: int, size: int) -> str:
    """A cheap fingerprint of a stored file: BLAKE2b of its size, its first and last 16 KiB and
    one 4 KiB block per MiB in between -- what a power cut damages (a truncated or zero-filled
    tail, lost blocks) changes it, for a few reads per file."""
    h = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=16)
    edge = 16 << 10
    h.update(os.pread(fd, edge, 0))
    for offset in range(1 << 20, max(size - edge, 0), 1 << 20):
        h.update(os.pread(fd, 4096, offset))
    if size > edge:
        h.update(os.pread(fd, edge, max(size - edge, edge)))
    return h.hexdigest()
