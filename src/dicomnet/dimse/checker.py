"""Incremental well-formedness check of a received data set, fragment by fragment.

Theory of operation
-------------------
A storage SCP must not acknowledge a data set it cannot read back (PS3.4 B.2.3: a failure
status, A900 "Data Set does not match SOP Class" or Cxxx "Cannot understand"). Decoding every
received object with a general parser would cost a second pass over megabytes of pixel data, so
:class:`DataSetChecker` walks only the element *headers* (PS3.5 section 7.1: tag, VR, length)
while the fragments arrive from the reassembler, skipping each value by its length without
keeping it. It proves:

* every element, item and sequence is framed consistently: no value runs past its item, its
  sequence or the end of the data set; undefined-length sequences and items are closed by their
  delimiters (PS3.5 7.5); encapsulated Pixel Data is a sequence of items closed by a sequence
  delimiter (PS3.5 A.4); nesting stays under :data:`MAX_DEPTH`;
* explicit VRs are VRs of PS3.5 Table 6.2-1, and value lengths are even (PS3.5 7.1.1);
* the data set names itself: SOP Class UID (0008,0016) and SOP Instance UID (0008,0018) are
  present, with VR UI, equal to the Affected SOP Class/Instance UID of the C-STORE-RQ, and the
  SOP class is the abstract syntax of the presentation context it came on (PS3.4 B.2.1.1);
* native Pixel Data is at least as long as Rows x Columns x Samples per Pixel x Number of
  Frames x Bits Allocated describe (PS3.5 8.1.1; 4:2:2 subsampled YBR counted as such).

A few small values are captured on the way (the UIDs and image pixel attributes of the top level,
which precede Pixel Data in tag order). A deflated data set (PS3.5 A.5) is inflated
incrementally into the walker and dropped; what it inflates to is bounded by ``max_inflated``.
The walker keeps at most a 12-byte header and one small value between fragments, so memory does
not depend on the object's size. The first problem found is kept and everything after it is
ignored; :meth:`DataSetChecker.finish` returns it as a :class:`Problem` (status + text).

Pure computation: no I/O, so it runs on the event loop as each fragment is reassembled.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from dicomnet.dimse.status import Status

if TYPE_CHECKING:
    import zlib

__all__ = ["MAX_DEPTH", "DataSetChecker", "Problem"]

MAX_DEPTH = 64

_UNDEFINED = 0xFFFFFFFF
_LONG = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_VRS = _LONG | frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip
_SOP_CLASS, _SOP_INSTANCE = 0x00080016, 0x00080018
_PIXEL_DATA = 0x7FE00010
# Top-level values kept (small): the two SOP UIDs and the image pixel attributes (PS3.3 C.7.6.3)
_STUDY = 0x0020000D
_CAPTURE = {
    _SOP_CLASS: b"UI", _SOP_INSTANCE: b"UI", _STUDY: b"UI",
    0x00280002: b"US", 0x00280004: b"CS", 0x00280008: b"IS", 0x00280010: b"US",
    0x00280011: b"US", 0x00280100: b"US",
}  # fmt: skip
_MAX_CAPTURE = 128

# frame kinds
_DATASET, _SEQUENCE, _FRAGMENTS = 0, 1, 2
_IMPLICIT_HEADER = struct.Struct("<HHI")
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_U32 = struct.Struct("<I")


class Problem:
    """Why a data set is refused: the C-STORE status and a one-line reason."""

    __slots__ = ("status", "text")

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text

    def __repr__(self) -> str:
        return f"Problem(0x{self.status:04X}, {self.text!r})"


class _Bad(Exception):
    def __init__(self, text: str, status: int = Status.CANNOT_UNDERSTAND) -> None:
        super().__init__(text)
        self.status = status


class _Frame:
    """One level of nesting: the top-level data set, an item's data set, a sequence, or the
    fragments of encapsulated Pixel Data."""

    __slots__ = ("end", "implicit", "kind", "little")

    def __init__(self, kind: int, end: int | None, implicit: bool, little: bool) -> None:
        self.kind = kind
        self.end = end  # absolute end offset, None for undefined length
        self.implicit = implicit
        self.little = little


class DataSetChecker:
    """Feed the data set bytes with :meth:`feed` as they arrive; :meth:`finish` at the end."""

    __slots__ = (
        "_capture_tag",
        "_carry",
        "_context_class",
        "_inflater",
        "_max_inflated",
        "_pixel",
        "_pos",
        "_problem",
        "_skip",
        "_sop_class",
        "_sop_instance",
        "_stack",
        "_values",
    )

    def __init__(
        self,
        transfer_syntax: str | None,
        *,
        sop_class: str | None = None,
        sop_instance: str | None = None,
        context_class: str | None = None,
        max_inflated: int = 4 << 30,
    ) -> None:
        ts = (transfer_syntax or "").strip("\0 ")
        implicit = ts == "1.2.840.10008.1.2"
        little = ts != "1.2.840.10008.1.2.2"
        self._stack = [_Frame(_DATASET, None, implicit, little)]
        self._pos = 0
        self._carry = b""
        self._skip = 0
        self._capture_tag = 0
        self._values: dict[int, bytes] = {}
        self._pixel: tuple[int, bool] | None = None  # (length, encapsulated)
        self._problem: Problem | None = None
        self._sop_class = sop_class
        self._sop_instance = sop_instance
        self._context_class = context_class
        self._max_inflated = max_inflated
        deflated = ts in ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95")
        self._inflater: zlib._Decompress | None = None
        if deflated:
            # lazy: only deflated data sets need zlib; a C-ECHO-only process never loads it
            import zlib

            self._inflater = zlib.decompressobj(-15)

    @property
    def problem(self) -> Problem | None:
        """The first problem found so far (None while the data set looks fine)."""
        return self._problem

    @property
    def study_uid(self) -> str | None:
        """Study Instance UID (0020,000D) of the data set, when it was seen."""
        return self._text(_STUDY) or None

    # -- feeding ---------------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """The next bytes of the data set (any split); never raises."""
        if self._problem is not None or not data:
            return
        n = len(data)
        if self._skip >= n and not self._capture_tag and self._inflater is None:
            self._skip -= n  # inside a value (Pixel Data, mostly): nothing to look at
            self._pos += n
            return
        try:
            if self._inflater is not None:
                self._feed_deflated(data)
            else:
                self._walk(data)
        except _Bad as bad:
            self._problem = Problem(bad.status, str(bad))

    def _feed_deflated(self, data: bytes | bytearray | memoryview) -> None:
        import zlib  # lazy (see __init__); already loaded by now

        inflater = self._inflater
        assert inflater is not None
        chunk: bytes | bytearray | memoryview = data
        while chunk:
            try:
                out = inflater.decompress(chunk, 1 << 20)
            except zlib.error as exc:
                raise _Bad(f"the deflated data set is corrupt: {exc}") from exc
            if self._pos + len(out) > self._max_inflated:
                raise _Bad(f"the deflated data set inflates beyond {self._max_inflated} bytes")
            self._walk(out)
            chunk = inflater.unconsumed_tail
            if inflater.eof:
                break

    def _walk(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        n = len(view)
        i = 0
        while i < n:
            if self._skip:
                if self._capture_tag:
                    i = self._capture(view, i)
                else:
                    i = self._skip_value(self._skip, view, i)
                continue
            if self._carry:
                # a header split between fragments: complete it from this one
                carry = self._carry
                need = self._header_size(carry)
                take = min(need - len(carry), n - i)
                carry += bytes(view[i : i + take])
                i += take
                self._pos += take
                need = self._header_size(carry)
                if len(carry) < need:
                    more = min(need - len(carry), n - i)
                    carry += bytes(view[i : i + more])
                    i += more
                    self._pos += more
                if len(carry) < need:
                    self._carry = carry
                    return
                self._carry = b""
                self._element(memoryview(carry), need, view, i)
                continue
            self._close_frames()
            if len(self._stack) == 1 and self._stack[0].little:
                j = self._walk_top(view, i, n)
                if j != i:
                    i = j
                    continue
            avail = n - i
            need = self._header_size(view[i : i + 8]) if avail >= 6 else 8
            if avail < need:
                self._carry = bytes(view[i:])
                self._pos += avail
                return
            self._pos += need
            self._element(view[i : i + need], need, view, i + need)
            i += need

    def _walk_top(self, view: memoryview, i: int, n: int) -> int:
        """The common case, quickly: the elements of a little endian data set's top level that
        are plain values (captured ones and native Pixel Data included; a sequence, an item,
        an undefined length, a split header or anything wrong stops it and goes through
        :meth:`_element`); returns where it stopped."""
        implicit = self._stack[0].implicit
        pos = self._pos
        capture = _CAPTURE
        values = self._values
        long_vrs = _LONG
        vrs = _VRS
        while n - i >= 12:
            if implicit:
                group, elem, length = _IMPLICIT_HEADER.unpack_from(view, i)
                hsize = 8
                vr = b""
            else:
                group, elem, vr, length = _EXPLICIT_HEADER.unpack_from(view, i)
                if vr in long_vrs:
                    length = _U32.unpack_from(view, i + 8)[0]
                    hsize = 12
                elif vr in vrs:
                    hsize = 8
                else:
                    break
            tag = group << 16 | elem
            if group == 0xFFFE or length == _UNDEFINED or length & 1 or vr == b"SQ":
                break
            wanted = capture.get(tag)
            if wanted is not None:
                if (vr and vr != wanted) or length > _MAX_CAPTURE or length > n - i - hsize:
                    break
                values[tag] = bytes(view[i + hsize : i + hsize + length])
            elif tag == _PIXEL_DATA:
                self._pixel = (length, False)
            i += hsize
            pos += hsize
            if length > n - i:  # the value goes on in the next fragments
                self._skip = length - (n - i)
                pos += n - i
                i = n
                break
            i += length
            pos += length
        self._pos = pos
        return i

    def _header_size(self, head: bytes | memoryview) -> int:
        """8 or 12: the size of the element header starting with ``head`` (>= 6 bytes known
        decides; fewer bytes: assume 8 and look again)."""
        frame = self._stack[-1]
        if frame.implicit or len(head) < 6:
            return 8
        group = head[0] | head[1] << 8 if frame.little else head[0] << 8 | head[1]
        if group == 0xFFFE:
            return 8
        return 12 if bytes(head[4:6]) in _LONG else 8

    # -- one element -----------------------------------------------------------------------------

    def _element(self, header: memoryview, hsize: int, view: memoryview, i: int) -> None:
        """Interpret one element header (``_pos`` is already past it); its value starts at
        ``view[i]`` (the value itself is skipped or captured by the walk)."""
        frame = self._stack[-1]
        order = "<" if frame.little else ">"
        header_pos = self._pos - hsize
        group, elem = struct.unpack_from(order + "HH", header)
        tag = group << 16 | elem
        vr = b""
        if group == 0xFFFE or frame.implicit:
            length = struct.unpack_from(order + "I", header, 4)[0]
        else:
            vr = bytes(header[4:6])
            if vr not in _VRS:
                raise _Bad(f"element ({group:04X},{elem:04X}) at offset {header_pos} has an "
                           f"invalid VR {vr!r}")  # fmt: skip
            if hsize == 12:
                length = struct.unpack_from(order + "I", header, 8)[0]
            else:
                length = struct.unpack_from(order + "H", header, 6)[0]
        if frame.kind == _DATASET:
            if group == 0xFFFE:
                if elem == 0xE00D and frame.end is None and len(self._stack) > 1:
                    self._stack.pop()  # end of an undefined-length item
                    return
                raise _Bad(f"unexpected ({group:04X},{elem:04X}) at offset {header_pos}")
            self._value(tag, vr, length, header_pos)
            return
        # a sequence or encapsulated pixel data: items and the sequence delimiter only
        if tag == 0xFFFEE0DD:
            if frame.end is not None:
                raise _Bad(f"sequence delimiter in a defined-length sequence at {header_pos}")
            self._stack.pop()
            return
        if tag != 0xFFFEE000:
            raise _Bad(f"expected an item, found ({group:04X},{elem:04X}) at offset {header_pos}")
        if frame.kind == _FRAGMENTS:
            if length == _UNDEFINED or length & 1:
                raise _Bad(f"encapsulated fragment of length {length} at offset {header_pos}")
            self._check_end(self._pos + length, header_pos)
            self._skip = length
            return
        if len(self._stack) > MAX_DEPTH:
            raise _Bad(f"sequences nested deeper than {MAX_DEPTH} levels")
        end = None if length == _UNDEFINED else self._pos + length
        self._check_end(end, header_pos)
        self._stack.append(_Frame(_DATASET, end, frame.implicit, frame.little))

    def _value(self, tag: int, vr: bytes, length: int, header_pos: int) -> None:
        frame = self._stack[-1]
        top = len(self._stack) == 1
        wanted = _CAPTURE.get(tag) if top else None
        if wanted is not None and vr and vr != wanted:  # e.g. a UID element sent as a sequence
            raise _Bad(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) has VR {vr.decode()}, "
                       f"not {wanted.decode()}")  # fmt: skip
        if length == _UNDEFINED:
            if len(self._stack) > MAX_DEPTH:
                raise _Bad(f"sequences nested deeper than {MAX_DEPTH} levels")
            if tag == _PIXEL_DATA and vr != b"SQ":
                if top:
                    self._pixel = (0, True)
                self._stack.append(_Frame(_FRAGMENTS, None, frame.implicit, frame.little))
                return
            if vr and vr not in (b"SQ", b"UN"):
                raise _Bad(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) of VR {vr.decode()} has an "
                           "undefined length")  # fmt: skip
            # PS3.5 6.2.2: the items of an undefined-length UN are implicit VR little endian
            un = vr == b"UN"
            self._stack.append(_Frame(_SEQUENCE, None, frame.implicit or un,
                                      frame.little or un))  # fmt: skip
            return
        if length & 1:
            raise _Bad(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) has an odd value length {length} "
                       "(PS3.5 7.1.1)")  # fmt: skip
        self._check_end(self._pos + length, header_pos)
        if vr == b"SQ":
            self._stack.append(_Frame(_SEQUENCE, self._pos + length, frame.implicit,
                                      frame.little))  # fmt: skip
            return
        if top:
            if wanted is not None:
                if length <= _MAX_CAPTURE:
                    self._values[tag] = b""
                    self._capture_tag = tag
            elif tag == _PIXEL_DATA:
                self._pixel = (length, False)
        self._skip = length

    def _capture(self, view: memoryview, i: int) -> int:
        take = min(self._skip, len(view) - i)
        tag = self._capture_tag
        self._values[tag] += bytes(view[i : i + take])
        self._skip -= take
        self._pos += take
        if not self._skip:
            self._capture_tag = 0
        return i + take

    def _skip_value(self, length: int, view: memoryview, i: int) -> int:
        step = min(length, len(view) - i)
        self._pos += step
        self._skip = length - step
        return i + step

    def _check_end(self, end: int | None, header_pos: int) -> None:
        for frame in reversed(self._stack):
            if frame.end is not None:
                if end is not None and end > frame.end:
                    raise _Bad(f"the element at offset {header_pos} runs "
                               f"{end - frame.end} byte(s) past its item or sequence")  # fmt: skip
                return

    def _close_frames(self) -> None:
        """Pop the defined-length frames whose end the walk has reached."""
        stack = self._stack
        while len(stack) > 1:
            end = stack[-1].end
            if end is None or self._pos < end:
                return
            stack.pop()

    # -- the end ---------------------------------------------------------------------------------

    def finish(self) -> Problem | None:
        """The data set ended: the first problem found, or None when it is well-formed."""
        if self._problem is None:
            try:
                self._final_checks()
            except _Bad as bad:
                self._problem = Problem(bad.status, str(bad))
        return self._problem

    def _final_checks(self) -> None:
        if self._inflater is not None and not self._inflater.eof:
            raise _Bad("the deflated data set is truncated")
        self._close_frames()
        if self._skip or self._capture_tag:
            raise _Bad(f"the data set ends inside a value ({self._skip} byte(s) missing)")
        if self._carry and (any(self._carry) or len(self._stack) > 1):
            raise _Bad(f"the data set ends inside an element header ({len(self._carry)} "
                           "byte(s))")  # fmt: skip
        if len(self._stack) > 1:
            raise _Bad("the data set ends inside a sequence or item")
        sop_class = self._text(_SOP_CLASS)
        sop_instance = self._text(_SOP_INSTANCE)
        if not sop_class:
            raise _Bad("the data set has no SOP Class UID (0008,0016)")
        if not sop_instance:
            raise _Bad("the data set has no SOP Instance UID (0008,0018)")
        if self._context_class and sop_class != self._context_class:
            raise _Bad(f"a {sop_class} data set on a {self._context_class} presentation context",
                       Status.DATA_SET_DOES_NOT_MATCH)  # fmt: skip
        if self._sop_class and sop_class != self._sop_class:
            raise _Bad(f"SOP Class UID {sop_class} differs from the Affected SOP Class UID "
                       f"{self._sop_class}", Status.DATA_SET_DOES_NOT_MATCH)  # fmt: skip
        if self._sop_instance and sop_instance != self._sop_instance:
            raise _Bad(f"SOP Instance UID {sop_instance} differs from the Affected SOP "
                       f"Instance UID {self._sop_instance}", Status.DATA_SET_DOES_NOT_MATCH)  # fmt: skip
        self._check_pixel_length()

    def _text(self, tag: int) -> str:
        raw = self._values.get(tag, b"")
        return raw.decode("ascii", "replace").strip("\0 ")

    def _us(self, tag: int) -> int | None:
        raw = self._values.get(tag)
        if raw is None or len(raw) < 2:
            return None
        return int(struct.unpack_from("<H" if self._stack[0].little else ">H", raw)[0])

    def _check_pixel_length(self) -> None:
        if self._pixel is None or self._pixel[1]:
            return  # no Pixel Data, or encapsulated (its length is the codec's business)
        rows, cols = self._us(0x00280010), self._us(0x00280011)
        bits = self._us(0x00280100)
        if not rows or not cols or not bits:
            return
        samples = self._us(0x00280002) or 1
        try:
            frames = int(self._text(0x00280008) or "1")
        except ValueError:
            frames = 1
        frames = max(frames, 1)
        per_frame_bits = rows * cols * samples * bits
        photometric = self._text(0x00280004)
        if samples == 3 and photometric in ("YBR_FULL_422", "YBR_PARTIAL_422"):
            per_frame_bits = per_frame_bits * 2 // 3  # PS3.3 C.7.6.3.1.2: two chroma halves
        expected = (per_frame_bits * frames + 7) // 8
        length = self._pixel[0]
        if length < expected:
            raise _Bad(f"Pixel Data holds {length} bytes; {rows}x{cols}x{samples}, {bits} bits "
                       f"allocated, {frames} frame(s) need {expected}")  # fmt: skip
