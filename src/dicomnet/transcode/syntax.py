"""What each transfer syntax is, and what converting between two of them takes.

Theory of operation
-------------------
PS3.5 section 10 and Annex A sort the transfer syntaxes into three families, and the family
decides the conversion:

* **native** (uncompressed, PS3.5 A.1-A.3): Implicit VR Little Endian, Explicit VR Little Endian,
  Explicit VR Big Endian, plus Deflated Explicit VR Little Endian (A.5: the explicit little
  endian bytes through raw deflate). Each native syntax converts to every other without loss,
  element by element (:mod:`dicomnet.transcode.elements`), streaming.
* **encapsulated** (PS3.5 A.4: JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE, MPEG/HEVC ...): the data
  set is Explicit VR Little Endian with the Pixel Data in fragments. Converting to native means
  decoding the pixels (pydicom's pixel-data backends, the optional ``dicomnet[codecs]`` extra);
  converting into one means encoding them, which only some syntaxes have encoders for.
* **lossy**: the syntaxes whose encoding loses information by definition (JPEG baseline and
  extended, JPEG-LS near-lossless, the video syntaxes). Data that ever went through one keeps
  Lossy Image Compression = "01" (PS3.3 C.7.6.1.1.5), whatever syntax it travels in later.
  JPEG 2000 (.91), its multi-component form and HTJ2K (.203) may be lossless or lossy: the
  attribute already in the data set decides.

:func:`conversion_kind` names the conversion a (source, target) pair needs and
:func:`can_convert` says whether this installation can do it (codecs installed or not).
"""

from __future__ import annotations

import functools

__all__ = [
    "CODECS_HINT",
    "DEFLATED",
    "EXPLICIT_BE",
    "EXPLICIT_LE",
    "IMPLICIT_LE",
    "NATIVE",
    "UNCOMPRESSED",
    "Kind",
    "can_convert",
    "conversion_kind",
    "decoder_available",
    "encoder_available",
    "is_definitely_lossy",
    "is_lossless_target",
    "is_native",
    "name_of",
]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
#: The native (uncompressed) syntaxes, in the order a converted data set prefers them: explicit
#: VRs kept, then the DICOM default, then deflate, then the retired big endian.
NATIVE: tuple[str, ...] = (EXPLICIT_LE, IMPLICIT_LE, DEFLATED, EXPLICIT_BE)
#: What every storage SCP supports (PS3.5 10.1 makes Implicit VR Little Endian the default).
UNCOMPRESSED: tuple[str, ...] = (EXPLICIT_LE, IMPLICIT_LE)
_NATIVE_SET = frozenset(NATIVE)

#: Told to the user whenever a conversion needs a pixel codec that is not installed.
CODECS_HINT = "install the optional codecs: pip install 'dicomnet[codecs]'"

_P = "1.2.840.10008.1.2.4."
# PS3.5 A.4: encapsulated syntaxes whose encoding is lossless by definition.
_LOSSLESS = frozenset(
    {
        _P + "57", _P + "58", _P + "65", _P + "66", _P + "70",  # JPEG lossless processes 14/15/28/29
        _P + "80",  # JPEG-LS lossless
        _P + "90", _P + "92",  # JPEG 2000 lossless only
        _P + "201", _P + "202",  # HTJ2K lossless only
        "1.2.840.10008.1.2.5",  # RLE lossless
        "1.2.840.10008.1.2.1.98",  # encapsulated uncompressed
    }
)  # fmt: skip
# Lossy by definition: JPEG processes 1-13 and 16-27, JPEG-LS near-lossless, MPEG/HEVC video.
_LOSSY = frozenset(
    {_P + str(n) for n in (50, 51, 52, 53, 54, 55, 56, 59, 60, 61, 62, 63, 64, 81)}
    | {_P + str(n) for n in range(100, 109)}
    | {_P + f"{n}.1" for n in range(100, 107)}
)

_NAMES = {
    IMPLICIT_LE: "Implicit VR Little Endian",
    EXPLICIT_LE: "Explicit VR Little Endian",
    EXPLICIT_BE: "Explicit VR Big Endian",
    DEFLATED: "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.98": "Encapsulated Uncompressed Explicit VR Little Endian",
    _P + "50": "JPEG Baseline",
    _P + "51": "JPEG Extended",
    _P + "57": "JPEG Lossless",
    _P + "70": "JPEG Lossless SV1",
    _P + "80": "JPEG-LS Lossless",
    _P + "81": "JPEG-LS Near-Lossless",
    _P + "90": "JPEG 2000 Lossless",
    _P + "91": "JPEG 2000",
    _P + "92": "JPEG 2000 Multi-component Lossless",
    _P + "93": "JPEG 2000 Multi-component",
    _P + "94": "JPIP Referenced",
    _P + "95": "JPIP Referenced Deflate",
    _P + "201": "HTJ2K Lossless",
    _P + "202": "HTJ2K Lossless RPCL",
    _P + "203": "HTJ2K",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}


class Kind:
    """The conversion a (source syntax, target syntax) pair needs, best first."""

    AS_IS = 0  #: same syntax: the bytes go as they are
    NATIVE = 1  #: between native syntaxes: lossless, streamed element by element
    DECOMPRESS = 2  #: encapsulated -> native: the pixels are decoded
    TRANSCODE = 3  #: encapsulated -> another encapsulated syntax: decoded, then encoded
    COMPRESS = 4  #: native -> encapsulated: the pixels are encoded
    NAMES = ("as is", "lossless re-encoding", "decompression", "transcoding", "compression")


def is_native(ts: str) -> bool:
    """True for the four uncompressed syntaxes (deflate included)."""
    return ts in _NATIVE_SET


def is_definitely_lossy(ts: str) -> bool:
    """True when data encoded in ``ts`` has lost information by definition."""
    return ts in _LOSSY


def is_lossless_target(ts: str) -> bool:
    """True when encoding into ``ts`` never loses information (native or lossless-only)."""
    return ts in _NATIVE_SET or ts in _LOSSLESS


def name_of(ts: str) -> str:
    """A readable name for messages ("JPEG 2000 Lossless (1.2.840.10008.1.2.4.90)")."""
    name = _NAMES.get(ts)
    return f"{name} ({ts})" if name else ts


def conversion_kind(source: str, target: str) -> int:
    """The :class:`Kind` of converting a data set from ``source`` to ``target``."""
    if source == target:
        return Kind.AS_IS
    src_native, dst_native = source in _NATIVE_SET, target in _NATIVE_SET
    if src_native and dst_native:
        return Kind.NATIVE
    if dst_native:
        return Kind.DECOMPRESS
    if src_native:
        return Kind.COMPRESS
    return Kind.TRANSCODE


@functools.cache
def decoder_available(ts: str) -> bool:
    """True when an installed pixel-data backend decodes ``ts`` (pydicom's decoders)."""
    try:
        # lazy: pydicom (~150 ms), only once a conversion needs a pixel codec
        from pydicom.pixels.decoders.base import get_decoder

        return bool(get_decoder(ts).is_available)
    except Exception:  # no decoder for that syntax, or numpy missing
        return False


@functools.cache
def encoder_available(ts: str) -> bool:
    """True when an installed pixel-data backend encodes into ``ts`` (pydicom's encoders)."""
    try:
        from pydicom.pixels.encoders.base import get_encoder  # lazy: pydicom, as above

        return bool(get_encoder(ts).is_available)
    except Exception:
        return False


def can_convert(source: str, target: str) -> bool:
    """True when this installation can convert ``source`` data into ``target`` (the data set
    itself may still turn out to be undecodable)."""
    kind = conversion_kind(source, target)
    if kind in (Kind.AS_IS, Kind.NATIVE):
        return True
    if kind in (Kind.DECOMPRESS, Kind.TRANSCODE) and not decoder_available(source):
        return False
    return kind == Kind.DECOMPRESS or encoder_available(target)
