"""Malformed data sets inside otherwise valid C-STORE-RQs: the cases a receiving SCP must
refuse before it acknowledges anything (PS3.4 B.2.3 statuses A900 / Cxxx).

Every case is a small CT Image Storage data set built byte by byte (Implicit or Explicit VR
Little Endian, PS3.5 7.1), broken in exactly one way. :data:`CASES` maps a name to a
:class:`Case`: the presentation context it goes on, the Affected SOP Class/Instance UIDs of the
request, the data set bytes and the statuses the standard allows for it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dicomnet.ul.pdu import PresentationContextRQ
from tests.hostile.harness import EXPLICIT_LE, IMPLICIT_LE, UID_ROOT, VERIFICATION

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"

CTX_ECHO, CTX_CT_IMPLICIT, CTX_CT_EXPLICIT = 1, 3, 5
CONTEXTS = (
    PresentationContextRQ(CTX_ECHO, VERIFICATION, (IMPLICIT_LE,)),
    PresentationContextRQ(CTX_CT_IMPLICIT, CT, (IMPLICIT_LE,)),
    PresentationContextRQ(CTX_CT_EXPLICIT, CT, (EXPLICIT_LE,)),
)

MISMATCH = 0xA900  # PS3.4 Table B.2-1: Error: Data Set does not match SOP Class


def cannot_understand(status: int) -> bool:
    """PS3.4 Table B.2-1: Error: Cannot understand (Cxxx)."""
    return 0xC000 <= status <= 0xCFFF


def _pad(value: bytes, pad: bytes = b" ") -> bytes:
    return value + pad if len(value) & 1 else value


def implicit(tag: int, value: bytes, *, length: int | None = None) -> bytes:
    """One Implicit VR LE element (PS3.5 7.1.3); ``length`` may lie."""
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF,
                       len(value) if length is None else length) + value  # fmt: skip


def explicit(tag: int, vr: bytes, value: bytes, *, length: int | None = None) -> bytes:
    """One Explicit VR LE element (PS3.5 7.1.2), 16- or 32-bit length as the VR says."""
    n = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OF", b"OD", b"OL"):
        return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr, n) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, n) + value


# (tag, VR, value) of the good data set, in tag order; pixel data is added separately
def _elements(sop_class: str, sop_instance: str, study: str) -> list[tuple[int, bytes, bytes]]:
    return [
        (0x00080016, b"UI", _pad(sop_class.encode(), b"\0")),
        (0x00080018, b"UI", _pad(sop_instance.encode(), b"\0")),
        (0x00080060, b"CS", b"CT"),
        (0x00100010, b"PN", _pad(b"Malformed^Case")),
        (0x00100020, b"LO", b"MALFORMED "),
        (0x0020000D, b"UI", _pad(study.encode(), b"\0")),
        (0x0020000E, b"UI", _pad((study + ".1").encode(), b"\0")),
        (0x00280002, b"US", struct.pack("<H", 1)),
        (0x00280004, b"CS", b"MONOCHROME2 "),
        (0x00280010, b"US", struct.pack("<H", 4)),
        (0x00280011, b"US", struct.pack("<H", 4)),
        (0x00280100, b"US", struct.pack("<H", 16)),
        (0x00280101, b"US", struct.pack("<H", 16)),
        (0x00280102, b"US", struct.pack("<H", 15)),
        (0x00280103, b"US", struct.pack("<H", 0)),
    ]


PIXELS = 4 * 4 * 2  # Rows x Columns x 2 bytes


def dataset(sop_instance: str, *, explicit_vr: bool = False, sop_class: str = CT,
            drop: tuple[int, ...] = (), pixels: int = PIXELS,
            study: str | None = None) -> bytes:  # fmt: skip
    """The good data set (or with elements dropped / a different pixel length)."""
    study = study or f"{UID_ROOT}.7.1"
    out = b""
    for tag, vr, value in _elements(sop_class, sop_instance, study):
        if tag in drop:
            continue
        out += explicit(tag, vr, value) if explicit_vr else implicit(tag, value)
    if explicit_vr:
        return out + explicit(0x7FE00010, b"OW", bytes(pixels))
    return out + implicit(0x7FE00010, bytes(pixels))


def _head(sop_instance: str, explicit_vr: bool = False) -> bytes:
    """The good data set up to (not including) Pixel Data."""
    data = dataset(sop_instance, explicit_vr=explicit_vr)
    return data[: data.index(struct.pack("<HH", 0x7FE0, 0x0010))]


@dataclass(frozen=True)
class Case:
    context_id: int
    sop_class: str
    data: bytes
    #: statuses allowed by the standard for this case (checked with ``allowed``)
    kind: str  # "mismatch" (A900) or "cannot-understand" (Cxxx)

    def allowed(self, status: int) -> bool:
        if self.kind == "mismatch":
            return status == MISMATCH
        return cannot_understand(status)


def cases(sop_instance: str) -> dict[str, Case]:
    """Every malformed case for a request whose Affected SOP Instance UID is ``sop_instance``."""
    head = _head(sop_instance)
    head_x = _head(sop_instance, explicit_vr=True)
    pixel_x = explicit(0x7FE00010, b"OW", bytes(PIXELS))
    pixel = implicit(0x7FE00010, bytes(PIXELS))
    never_closed = (
        implicit(0x00081140, b"", length=0xFFFFFFFF)  # Referenced Image Sequence, undefined
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)  # an item, undefined length
        + implicit(0x00081150, _pad(CT.encode(), b"\0"))
    )
    at = head.index(struct.pack("<HH", 0x0010, 0x0010))  # Patient's Name
    after_name = head.index(struct.pack("<HH", 0x0010, 0x0020))
    uid_sq = explicit(0x0020000D, b"SQ", b"", length=0xFFFFFFFF) + struct.pack(
        "<HHI", 0xFFFE, 0xE0DD, 0)
    sx = head_x.index(struct.pack("<HH", 0x0020, 0x000D))
    sx_end = head_x.index(struct.pack("<HH", 0x0020, 0x000E))
    return {
        # (0010,1000) Other Patient IDs announcing 1000 bytes where 10 follow (PS3.5 7.1)
        "value length past the end": Case(
            CTX_CT_IMPLICIT, CT, head + pixel + implicit(0x00101000, b"0123456789", length=1000),
            "cannot-understand"),
        # Rows x Columns x Bits Allocated / 8 = 32 bytes declared, 16 sent (PS3.5 8.1.1)
        "pixel data shorter than declared": Case(
            CTX_CT_IMPLICIT, CT, head + implicit(0x7FE00010, bytes(16)), "cannot-understand"),
        # PS3.5 7.5.1: an undefined-length sequence ends with a Sequence Delimitation Item
        "undefined-length sequence never closed": Case(
            CTX_CT_IMPLICIT, CT, head[:at] + never_closed, "cannot-understand"),
        # PS3.5 6.2: "QQ" is no VR
        "unknown VR": Case(
            CTX_CT_EXPLICIT, CT,
            head_x + explicit(0x00091010, b"QQ", b"AB") + pixel_x, "cannot-understand"),
        # (0020,000D) is UI (PS3.6), sent as an (empty) undefined-length sequence
        "UID element with VR SQ": Case(
            CTX_CT_EXPLICIT, CT, head_x[:sx] + uid_sq + head_x[sx_end:] + pixel_x,
            "cannot-understand"),
        # PS3.5 7.1.1: value lengths are even
        "odd value length": Case(
            CTX_CT_IMPLICIT, CT,
            head[:at] + implicit(0x00100010, b"ABC") + head[after_name:] + pixel,
            "cannot-understand"),
        # PS3.4 B.2.3: an MR Image data set on a CT Image Storage context
        "MR data set in a CT context": Case(
            CTX_CT_IMPLICIT, CT, dataset(sop_instance, sop_class=MR), "mismatch"),
        # PS3.4 B.2.1: the SOP Class/Instance UIDs of the data set identify what is stored
        "no SOP Class UID": Case(
            CTX_CT_IMPLICIT, CT, dataset(sop_instance, drop=(0x00080016,)), "cannot-understand"),
        "no SOP Instance UID": Case(
            CTX_CT_IMPLICIT, CT, dataset(sop_instance, drop=(0x00080018,)), "cannot-understand"),
        # the data set is another instance than the request announces
        "SOP Instance UID differs from the request": Case(
            CTX_CT_IMPLICIT, CT, dataset(sop_instance + ".9"), "mismatch"),
        # the data set ends 3 bytes into an element header
        "truncated element header": Case(
            CTX_CT_IMPLICIT, CT, head + pixel + b"\x10\x00\x10", "cannot-understand"),
    }
