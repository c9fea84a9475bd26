"""Re-encoding a data set element by element between the uncompressed transfer syntaxes.

Theory of operation
-------------------
The three uncompressed encodings of PS3.5 section 10 (Implicit VR Little Endian, Explicit VR
Little Endian, Explicit VR Big Endian; Deflated Explicit VR Little Endian is the second one
behind a raw deflate stream, PS3.5 A.5) differ only in how each Data Element is framed (PS3.5
section 7.1: with or without the two VR characters, 2- or 4-byte lengths) and in the byte order
of the tag, the length and the words of binary values (PS3.5 section 7.3). So converting between
them needs no model of the data set: one pass over the elements, each header re-written and
each value copied, byte-swapped by its VR's word size when the byte order changes.

:func:`transcode` is that pass. It reads from an :class:`Input` (a memory buffer, or a file
read in bounded blocks: a value larger than :data:`STREAM_VALUE` is copied in pieces, so a
1 GiB Pixel Data element never sits in memory) and writes to any ``write(bytes)`` callable.

What it decides on the way:

* **VRs when the source is implicit** (PS3.5 A.1): from the data dictionary (pydicom's copy of
  PS3.6); group lengths (gggg,0000) are UL, Private Creator elements (gggg,0010-00FF, odd
  group) LO, anything else unknown UN (PS3.5 6.2.2). The few ambiguous dictionary VRs are
  resolved as PS3.5 A.1 and the image modules say: "US or SS" by Pixel Representation (0028,
  0103) seen earlier in the same data set, "OB or OW" Pixel Data by Bits Allocated, the other
  "OB or OW" and LUT data as OW. An element of undefined length is a sequence whatever the
  dictionary says (only SQ, and UN holding a sequence, may have one).
* **Lengths that do not fit** a 2-byte explicit length (a value over 64 KiB under a short VR
  that only Implicit VR could carry): written as UN (PS3.5 6.2.2 note).
* **Sequences and items** are written with undefined length and delimiters (PS3.5 7.5.2): the
  size of their contents changes between implicit and explicit framing, and undefined lengths
  let the output be written in one forward pass.
* **UN of undefined length** holds an Implicit VR Little Endian sequence (PS3.5 6.2.2): parsed
  as one and written as SQ (explicit targets) or as an undefined-length element (implicit).
* **Odd value lengths** (forbidden by PS3.5 7.1.1; seen in the field) are padded to even: a
  space for the text VRs, NUL otherwise (PS3.5 6.2). So the output is always even-length and
  every fragment of it can be sent (PS3.8 Annex E; DCMTK aborts on odd fragments).
* **Group lengths** of data set groups (retired, PS3.5 7.2) are dropped when the framing size
  changes (implicit <-> explicit), since their value would become wrong; kept otherwise.
* **Encapsulated Pixel Data** (an OB/OW/UN element of undefined length holding fragments, PS3.5
  A.4) is copied fragment by fragment, fragment bytes untouched.
* Fewer than 8 NUL bytes after the last element (padding some writers add; not even a tag and
  length) are dropped; other stray bytes are the start of a truncated element: an error.

Malformed input (a length running past the end, a bad VR, nesting deeper than
:data:`MAX_DEPTH`) raises :class:`ConversionError`: a conversion never guesses.
"""

from __future__ import annotations

import array
import struct
from collections.abc import Callable
from typing import Protocol

from dicomnet.errors import DicomNetError

__all__ = [
    "MAX_DEPTH",
    "STREAM_VALUE",
    "ConversionError",
    "Encoding",
    "Input",
    "Readable",
    "transcode",
]

#: Values larger than this are copied in pieces of this size (a multiple of every word size).
STREAM_VALUE = 1 << 20
#: Deepest sequence nesting accepted (hostile files: no unbounded recursion).
MAX_DEPTH = 64
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD

# PS3.5 Table 7.1-1: explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_ALL_VRS = _LONG | frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip
# PS3.5 6.2: text values are padded with a space, UI and binary values with NUL.
_SPACE_PADDED = frozenset(
    {
        b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"LT", b"PN", b"SH", b"ST",
        b"TM", b"UC", b"UR", b"UT",
    }
)  # fmt: skip
# PS3.5 7.3: the byte order applies to each word of these VRs (AT is a pair of 16-bit words).
_WORD = {
    b"US": 2, b"SS": 2, b"OW": 2, b"AT": 2,
    b"UL": 4, b"SL": 4, b"FL": 4, b"OL": 4, b"OF": 4,
    b"FD": 8, b"OD": 8, b"SV": 8, b"UV": 8, b"OV": 8,
}  # fmt: skip
_SWAP_CODE = {2: "H", 4: "I", 8: "Q"}


class Readable(Protocol):
    """A binary stream: ``read(n)`` returns up to ``n`` bytes, ``b""`` at the end."""

    def read(self, n: int, /) -> bytes: ...


class ConversionError(DicomNetError):
    """A data set cannot be converted to the transfer syntax asked for (the reason says why)."""


class Encoding:
    """How one uncompressed transfer syntax frames elements: implicit VR? little endian?"""

    __slots__ = ("implicit", "little", "prefix")

    def __init__(self, implicit: bool, little: bool) -> None:
        if implicit and not little:
            raise ValueError("there is no implicit VR big endian transfer syntax")
        self.implicit = implicit
        self.little = little
        self.prefix = "<" if little else ">"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Encoding)
            and other.implicit == self.implicit
            and other.little == self.little
        )

    def __hash__(self) -> int:
        return hash((self.implicit, self.little))

    def __repr__(self) -> str:
        vr = "implicit" if self.implicit else "explicit"
        return f"Encoding({vr}, {'little' if self.little else 'big'} endian)"


class Input:
    """Bytes to parse: a whole buffer, or a readable binary stream read in blocks.

    ``pos`` counts bytes consumed since the start. :meth:`take` returns exactly ``n`` bytes
    (ConversionError at a premature end); :meth:`pieces` yields ``n`` bytes in bounded pieces.
    """

    __slots__ = ("_buf", "_eof", "_off", "_stream", "pos")

    def __init__(self, data: bytes | bytearray | memoryview | None = None,
                 stream: Readable | None = None) -> None:  # fmt: skip
        self._buf = memoryview(b"" if data is None else data).cast("B")
        self._off = 0
        self._stream = stream
        self._eof = stream is None
        self.pos = 0

    def _fill(self, n: int) -> bool:
        """Make ``n`` bytes available at ``_off``; False if the input ends first."""
        while len(self._buf) - self._off < n:
            if self._eof or self._stream is None:
                return False
            more = self._stream.read(max(n, STREAM_VALUE))
            if not more:
                self._eof = True
                return False
            rest = self._buf[self._off :]
            self._buf = memoryview(bytes(rest) + more if len(rest) else more).cast("B")
            self._off = 0
        return True

    def at_end(self, n: int = 1) -> bool:
        """True when fewer than ``n`` bytes are left."""
        return not self._fill(n)

    def remaining_bytes(self) -> int:
        """Bytes left in the buffer (a stream is read to its end to count them)."""
        while self._fill(len(self._buf) - self._off + 1):
            pass
        return len(self._buf) - self._off

    def take(self, n: int) -> memoryview:
        if not self._fill(n):
            raise ConversionError(
                f"the data set ends inside an element (offset {self.pos}, {n} bytes needed)"
            )
        view = self._buf[self._off : self._off + n]
        self._off += n
        self.pos += n
        return view

    def pieces(self, n: int) -> list[memoryview] | None:
        """``n`` bytes as one piece when small; None when the caller should stream them."""
        if n <= STREAM_VALUE:
            return [self.take(n)]
        return None


class _Context:
    """Values of the current data set that decide ambiguous VRs (PS3.5 A.1)."""

    __slots__ = ("bits_allocated", "pixel_representation")

    def __init__(self) -> None:
        self.pixel_representation = 0
        self.bits_allocated = 16


_VR_CACHE: dict[int, bytes] = {}


def _dictionary_vr(tag: int, ctx: _Context) -> bytes:
    """The VR of ``tag`` for an implicit VR source (see the module docstring)."""
    group, elem = tag >> 16, tag & 0xFFFF
    if elem == 0:
        return b"UL"  # group length, PS3.5 7.2
    if group & 1:
        # PS3.5 7.8.1: Private Creator Data Elements are LO; private data elements unknown.
        return b"LO" if 0x0010 <= elem <= 0x00FF else b"UN"
    vr = _VR_CACHE.get(tag)
    if vr is None:
        from pydicom.datadict import dictionary_VR  # lazily: only implicit sources need it

        try:
            text = dictionary_VR(tag)
        except KeyError:
            text = "UN"
        vr = text.encode("ascii") if len(text) == 2 else b"??" + text.encode("ascii")
        if len(_VR_CACHE) < 65536:
            _VR_CACHE[tag] = vr
    if len(vr) == 2:
        return vr
    ambiguous = vr[2:]
    if ambiguous == b"NONE":
        return b"UN"
    if ambiguous == b"US or SS":
        return b"SS" if ctx.pixel_representation == 1 and not _is_descriptor(tag) else b"US"
    if tag == 0x7FE00010 or group == 0x7FE0:
        return b"OB" if ctx.bits_allocated <= 8 else b"OW"
    return b"OW"  # "OB or OW" (overlays, waveforms), "US or OW" / "US or SS or OW" (LUT data)


def _is_descriptor(tag: int) -> bool:
    # LUT Descriptors (PS3.3 C.7.6.3.1.5, C.11.1.1): first and third values are unsigned.
    return tag in (0x00281101, 0x00281102, 0x00281103, 0x00281111, 0x00281112, 0x00281113,
                   0x00283002, 0x00281100)  # fmt: skip


class _Transcoder:
    __slots__ = ("drop_group_lengths", "dst", "inp", "src", "swap", "write")

    def __init__(self, inp: Input, write: Callable[[bytes | memoryview], object],
                 src: Encoding, dst: Encoding) -> None:  # fmt: skip
        self.inp = inp
        self.write = write
        self.src = src
        self.dst = dst
        self.swap = src.little != dst.little
        self.drop_group_lengths = src.implicit != dst.implicit

    # -- reading -------------------------------------------------------------------------------

    def _header(self, enc: Encoding) -> tuple[int, bytes | None, int]:
        """(tag, explicit VR or None, length) of the next element in encoding ``enc``."""
        inp = self.inp
        raw = inp.take(8)
        group, elem = struct.unpack_from(enc.prefix + "HH", raw)
        tag = group << 16 | elem
        if group == 0xFFFE or enc.implicit:
            return tag, None, struct.unpack_from(enc.prefix + "I", raw, 4)[0]
        vr = bytes(raw[4:6])
        if vr in _LONG:
            return tag, vr, struct.unpack_from(enc.prefix + "I", inp.take(4))[0]
        if vr not in _ALL_VRS:
            raise ConversionError(
                f"element ({group:04X},{elem:04X}) at offset {inp.pos - 8} has an invalid VR "
                f"{vr!r}"
            )
        return tag, vr, struct.unpack_from(enc.prefix + "H", raw, 6)[0]

    # -- writing -------------------------------------------------------------------------------

    def _put_header(self, tag: int, vr: bytes, length: int) -> None:
        dst = self.dst
        p = dst.prefix
        if tag >> 16 == 0xFFFE or dst.implicit:
            self.write(struct.pack(p + "HHI", tag >> 16, tag & 0xFFFF, length))
        elif vr in _LONG:
            self.write(struct.pack(p + "HH2s2xI", tag >> 16, tag & 0xFFFF, vr, length))
        else:
            self.write(struct.pack(p + "HH2sH", tag >> 16, tag & 0xFFFF, vr, length))

    def _put_value(self, data: memoryview, word: int) -> None:
        if self.swap and word > 1 and len(data) >= word:
            whole = len(data) - len(data) % word
            words = array.array(_SWAP_CODE[word])
            words.frombytes(data[:whole])
            words.byteswap()
            self.write(words.tobytes())
            if whole != len(data):
                self.write(data[whole:])
        else:
            self.write(data)

    # -- the walk ------------------------------------------------------------------------------

    def dataset(self, enc: Encoding, end: int | None, depth: int, in_item: bool) -> None:
        """Elements until ``end`` (a defined length), the item delimiter (``in_item`` of
        undefined length) or the end of the input (top level)."""
        if depth > MAX_DEPTH:
            raise ConversionError(f"sequences nested deeper than {MAX_DEPTH} levels")
        inp = self.inp
        ctx = _Context()
        while True:
            if end is not None:
                if inp.pos >= end:
                    if inp.pos > end:
                        raise ConversionError("an element runs past the end of its item")
                    return
            elif inp.at_end(8):
                if in_item:
                    raise ConversionError("the data set ends inside an item")
                stray = inp.take(inp.remaining_bytes())
                if any(stray):
                    raise ConversionError(
                        f"the data set ends inside an element header ({len(stray)} byte(s) "
                        f"at offset {inp.pos - len(stray)})"
                    )
                return  # < 8 NUL bytes after the last element: padding, not an element
            tag, vr, length = self._header(enc)
            if tag == _ITEM_END:
                if not in_item or end is not None:
                    raise ConversionError(f"unexpected item delimiter at offset {inp.pos - 8}")
                return
            if tag >> 16 == 0xFFFE:
                raise ConversionError(f"unexpected ({tag >> 16:04X},{tag & 0xFFFF:04X}) "
                                      f"at offset {inp.pos - 8}")  # fmt: skip
            self.element(enc, tag, vr, length, ctx, depth)

    def element(self, enc: Encoding, tag: int, vr: bytes | None, length: int, ctx: _Context,
                depth: int) -> None:  # fmt: skip
        inp = self.inp
        if vr is None:
            vr = _dictionary_vr(tag, ctx)
        if length == _UNDEFINED:
            if (vr in (b"OB", b"OW", b"UN") and tag == 0x7FE00010) or (
                vr in (b"OB", b"OW") and tag >> 16 == 0x7FE0
            ):
                self.encapsulated(enc, tag, vr)
                return
            inner = enc
            if vr == b"UN":  # PS3.5 6.2.2: an undefined-length UN holds implicit VR LE
                inner = Encoding(True, True)
            self._put_header(tag, b"SQ", _UNDEFINED)
            self.sequence(inner, None, depth)
            return
        if vr == b"SQ":
            self._put_header(tag, b"SQ", _UNDEFINED)
            self.sequence(enc, inp.pos + length, depth)
            return
        if tag & 0xFFFF == 0 and self.drop_group_lengths and tag >> 16 not in (0x0000, 0x0002):
            self._skip(length)
            return
        out_vr = vr
        padded = length + (length & 1)
        if not self.dst.implicit and out_vr not in _LONG and padded > 0xFFFF:
            out_vr = b"UN"  # PS3.5 6.2.2 note: only a 4-byte length can hold it
        word = _WORD.get(vr, 1)
        self._put_header(tag, out_vr, padded)
        pieces = inp.pieces(length)
        if pieces is not None:
            value = pieces[0]
            if length <= 4 and tag in (0x00280103, 0x00280100):
                (number,) = struct.unpack_from(enc.prefix + "H", value) if length >= 2 else (0,)
                if tag == 0x00280103:
                    ctx.pixel_representation = number
                else:
                    ctx.bits_allocated = number
            self._put_value(value, word)
        else:
            remaining = length
            while remaining:
                n = min(remaining, STREAM_VALUE)
                self._put_value(inp.take(n), word)
                remaining -= n
        if length & 1:
            self.write(b" " if vr in _SPACE_PADDED else b"\0")

    def _skip(self, length: int) -> None:
        remaining = length
        while remaining:
            n = min(remaining, STREAM_VALUE)
            self.inp.take(n)
            remaining -= n

    def sequence(self, enc: Encoding, end: int | None, depth: int) -> None:
        """Items until ``end`` or the sequence delimiter; written with undefined lengths."""
        inp = self.inp
        while True:
            if end is not None and inp.pos >= end:
                if inp.pos > end:
                    raise ConversionError("an item runs past the end of its sequence")
                break
            tag, _, length = self._header(enc)
            if tag == _SEQ_END:
                if end is not None:
                    raise ConversionError("sequence delimiter inside a defined-length sequence")
                break
            if tag != _ITEM:
                raise ConversionError(
                    f"expected an item, found ({tag >> 16:04X},{tag & 0xFFFF:04X}) at offset "
                    f"{inp.pos - 8}"
                )
            self._put_header(_ITEM, b"", _UNDEFINED)
            if length == _UNDEFINED:
                self.dataset(enc, None, depth + 1, True)
            else:
                self.dataset(enc, inp.pos + length, depth + 1, False)
            self._put_header(_ITEM_END, b"", 0)
        self._put_header(_SEQ_END, b"", 0)

    def encapsulated(self, enc: Encoding, tag: int, vr: bytes) -> None:
        """Encapsulated Pixel Data (PS3.5 A.4): the Basic Offset Table and fragments as items,
        their bytes copied unchanged (the byte order applies to item headers only)."""
        self._put_header(tag, b"OB" if vr == b"UN" else vr, _UNDEFINED)
        while True:
            tag, _, length = self._header(enc)
            if tag == _SEQ_END:
                break
            if tag != _ITEM or length == _UNDEFINED:
                raise ConversionError("malformed encapsulated pixel data")
            self._put_header(_ITEM, b"", length + (length & 1))
            remaining = length
            while remaining:
                n = min(remaining, STREAM_VALUE)
                self.write(self.inp.take(n))
                remaining -= n
            if length & 1:
                self.write(b"\0")
        self._put_header(_SEQ_END, b"", 0)


def transcode(
    inp: Input, write: Callable[[bytes | memoryview], object], src: Encoding, dst: Encoding
) -> None:
    """Re-encode the data set read from ``inp`` (encoded as ``src``) as ``dst`` into ``write``
    (see the module docstring). Raises :class:`ConversionError` for malformed input."""
    t = _Transcoder(inp, write, src, dst)
    try:
        t.dataset(src, None, 0, False)
    except RecursionError as exc:  # pragma: no cover - MAX_DEPTH keeps well below the limit
        raise ConversionError("sequences nested too deeply") from exc
    except (struct.error, ValueError) as exc:
        raise ConversionError(f"malformed data set: {exc}") from exc

