"""Converting an encoded data set from one transfer syntax to another.

Theory of operation
-------------------
:func:`convert` takes a :class:`~dicomnet.datasource.DataSource` (bytes, or a region of a
file) in one transfer syntax and returns one in another, choosing the cheapest route that
:func:`~dicomnet.transcode.syntax.conversion_kind` names:

* **as is**: the same source back; only a data set of odd length is fixed first, because every
  PDV fragment must have an even length (PS3.8 9.3.5.1, Annex E) and DCMTK aborts the
  association on an odd one. A deflated stream gets the single trailing NUL that PS3.5 A.5
  prescribes; any other encoding is re-encoded element by element (odd values padded, PS3.5
  7.1.1), which yields an even length. The element headers are walked first
  (:mod:`dicomnet.transcode.check`): stray trailing bytes are dropped by a re-encoding, and a
  truncated data set fails here, locally, instead of making the receiver abort.
* **native <-> native** (implicit/explicit VR, little/big endian, deflate): the element walk of
  :mod:`dicomnet.transcode.elements`, streamed. Input is read in bounded blocks (a deflated
  input through an inflater), output goes to memory when the input is small and to a spool
  file (deleted when the returned source is closed) otherwise, so converting a 1 GiB object
  needs a few MiB of memory.
* **decompression / compression / transcoding**: the data set is decoded with pydicom, its
  pixels decoded or encoded by pydicom's pixel-data backends (the ``dicomnet[codecs]`` extra)
  and the result encoded in the target syntax. The SOP Instance UID is kept: the instance is
  the same one, only its encoding changed (PS3.4 B.4.1; DCMTK and Orthanc keep it too for
  lossless targets). Decoding lossy data into a native syntax keeps or sets Lossy Image
  Compression (0028,2110) = "01" (PS3.3 C.7.6.1.1.5); encoding into a lossy syntax sets it. A
  YCbCr JPEG baseline/extended image decodes to RGB (its samples are lossy anyway); lossless
  data keeps its photometric interpretation.

Every failure is a :class:`~dicomnet.transcode.elements.ConversionError` whose message says what
could not be done and why, naming the ``dicomnet[codecs]`` extra when a codec is missing.
"""

from __future__ import annotations

import logging
import zlib
from typing import TYPE_CHECKING

from dicomnet.datasource import DataSource, SpoolFile
from dicomnet.dimse.dataset import decode_dataset, encode_dataset
from dicomnet.errors import DicomNetError
from dicomnet.transcode.check import structure_problem
from dicomnet.transcode.elements import ConversionError, Encoding, Input, Readable, transcode
from dicomnet.transcode.syntax import (
    CODECS_HINT,
    DEFLATED,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    Kind,
    conversion_kind,
    decoder_available,
    encoder_available,
    is_definitely_lossy,
    name_of,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["LARGE", "convert", "needs_even_fix"]

LOGGER = logging.getLogger("dicomnet.transcode")

#: Converted data sets larger than this go to a spool file instead of memory.
LARGE = 8 << 20
_READ = 1 << 20


def _encoding(ts: str) -> Encoding:
    if ts == IMPLICIT_LE:
        return Encoding(True, True)
    if ts == EXPLICIT_BE:
        return Encoding(False, False)
    return Encoding(False, True)  # explicit LE, deflated, and the encapsulated syntaxes


def _structure_problem(source: DataSource, ts: str) -> str | None:
    """What is wrong with the framing of ``source`` (see :mod:`dicomnet.transcode.check`);
    deflated data sets are not checked (that would mean inflating them)."""
    if ts == DEFLATED:
        return None
    enc = _encoding(ts)
    buf = source.getbuffer()
    if buf is not None:
        return structure_problem(buf, enc.implicit, enc.little)
    return structure_problem(None, enc.implicit, enc.little, path=source.path,
                             offset=source.offset, size=source.size)  # fmt: skip


def needs_even_fix(source: DataSource) -> bool:
    """True when ``source`` has an odd length and cannot be sent as it is."""
    return source.size % 2 == 1


class _Limited:
    """A file region as a readable stream (the data set part of a Part 10 file)."""

    def __init__(self, f: Readable, remaining: int) -> None:
        self._f = f
        self._remaining = remaining

    def read(self, n: int = -1, /) -> bytes:
        if self._remaining <= 0:
            return b""
        n = self._remaining if n < 0 else min(n, self._remaining)
        data = self._f.read(n)
        self._remaining -= len(data)
        return data


class _Inflating:
    """Raw deflate (PS3.5 A.5) inflated on demand, at most ``limit`` bytes out."""

    def __init__(self, raw: Readable, limit: int) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(-15)
        self._pending = b""
        self._out = 0
        self._limit = limit

    def read(self, n: int = -1, /) -> bytes:
        want = _READ if n < 0 else n
        while len(self._pending) < want and not self._z.eof:
            if self._z.unconsumed_tail:
                chunk = self._z.unconsumed_tail
            else:
                chunk = self._raw.read(_READ)
                if not chunk:
                    self._pending += self._z.flush()
                    break
            try:
                self._pending += self._z.decompress(chunk, max(want, _READ))
            except zlib.error as exc:
                raise ConversionError(f"the deflated data set is corrupt: {exc}") from exc
        out, self._pending = self._pending[:want], self._pending[want:]
        self._out += len(out)
        if self._out > self._limit:
            raise ConversionError(f"the deflated data set inflates beyond {self._limit} bytes")
        return out


class _Sink:
    """Where converted bytes go: memory, or a spool file once ``spill`` bytes are reached."""

    def __init__(self, expected: int, spool_dir: str | None, deflate: bool) -> None:
        self._parts: list[bytes] = []
        self._mem = 0
        self._spool: SpoolFile | None = None
        if expected > LARGE:
            self._spool = SpoolFile(spool_dir)
        self._z = zlib.compressobj(6, zlib.DEFLATED, -15) if deflate else None
        self.total = 0

    def _emit(self, data: bytes | memoryview) -> None:
        if not data:
            return
        self.total += len(data)
        if self._spool is not None:
            self._spool.write(data)
        else:
            self._parts.append(bytes(data))

    def write(self, data: bytes | memoryview) -> None:
        if self._z is not None:
            self._emit(self._z.compress(data))
        else:
            self._emit(data)

    def finish(self, ts: str) -> DataSource:
        if self._z is not None:
            self._emit(self._z.flush())
            if self.total % 2:
                self._emit(b"\0")  # PS3.5 A.5: an odd-length deflated stream gets one NUL
        if self._spool is not None:
            return self._spool.finish(ts)
        return DataSource.from_bytes(b"".join(self._parts), ts)

    def discard(self) -> None:
        if self._spool is not None:
            self._spool.discard()


def _native(source: DataSource, src_ts: str, target: str, spool_dir: str | None) -> DataSource:
    """Element-by-element re-encoding between native syntaxes (streamed)."""
    sink = _Sink(source.size, spool_dir, deflate=target == DEFLATED)
    try:
        if source.is_file:
            assert source.path is not None
            try:
                with open(source.path, "rb") as f:
                    f.seek(source.offset)
                    raw = _Limited(f, source.size)
                    inp = _input(raw, src_ts)
                    transcode(inp, sink.write, _encoding(src_ts), _encoding(target))
            except OSError as exc:
                raise ConversionError(f"cannot read {source.path!r}: {exc}") from exc
        else:
            buf = source.getbuffer()
            assert buf is not None
            if src_ts == DEFLATED:
                inp = _input(_Limited(_BytesReader(buf), len(buf)), src_ts)
            else:
                inp = Input(data=buf)
            transcode(inp, sink.write, _encoding(src_ts), _encoding(target))
        return sink.finish(target)
    except BaseException:
        sink.discard()
        raise


class _BytesReader:
    def __init__(self, buf: memoryview) -> None:
        self._buf = buf
        self._pos = 0

    def read(self, n: int, /) -> bytes:
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += len(out)
        return out


def _input(raw: Readable, src_ts: str) -> Input:
    if src_ts == DEFLATED:
        return Input(stream=_Inflating(raw, 1 << 34))
    return Input(stream=raw)


def _fix_odd(source: DataSource, ts: str, spool_dir: str | None) -> DataSource:
    if ts == DEFLATED:
        # PS3.5 A.5: the deflated bit stream is padded with one trailing NUL to an even length.
        if source.is_file and source.size > LARGE:
            spool = SpoolFile(spool_dir)
            try:
                for chunk in source.iter_chunks(_READ):
                    spool.write(chunk)
                spool.write(b"\0")
            except BaseException:
                spool.discard()
                raise
            return spool.finish(ts)
        return DataSource.from_bytes(source.read() + b"\0", ts)
    return _native(source, ts, ts, spool_dir)


def convert(source: DataSource, target: str, *, spool_dir: str | None = None) -> DataSource:
    """``source`` re-encoded in transfer syntax ``target`` (see the module docstring).

    The result may be ``source`` itself (same syntax, even length). A new source owns its
    spool file, if any: close it after sending."""
    src_ts = source.transfer_syntax
    if not src_ts:
        raise ConversionError("the transfer syntax of the data set is unknown")
    kind = conversion_kind(src_ts, target)
    try:
        if kind == Kind.AS_IS:
            if needs_even_fix(source):
                return _fix_odd(source, src_ts, spool_dir)
            problem = _structure_problem(source, src_ts)
            if problem is not None:
                # stray bytes are dropped by a re-encoding; a truncated data set fails it
                LOGGER.info("re-encoding a data set before sending it: %s", problem)
                return _native(source, src_ts, src_ts, spool_dir)
            return source
        if kind == Kind.NATIVE:
            return _native(source, src_ts, target, spool_dir)
        return _pixels(source, src_ts, target, kind)
    except ConversionError:
        raise
    except DicomNetError as exc:
        raise ConversionError(str(exc)) from exc


# --- conversions through pydicom (pixel data decoded or encoded) --------------------------------


def _decoded(source: DataSource, ts: str) -> Dataset:
    # lazy: pydicom (~150 ms), only for a conversion through the pixel codecs
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    try:
        ds = decode_dataset(source.read(), ts)
    except DicomNetError as exc:
        raise ConversionError(f"cannot decode the data set: {exc}") from exc
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(ts)
    return ds


def _has_encapsulated_pixels(ds: Dataset) -> bool:
    elem = ds.get(0x7FE00010)  # a DataElement (Dataset.get converts a raw one)
    return elem is not None and bool(elem.is_undefined_length)


def _decompress(ds: Dataset, ts: str) -> None:
    if not decoder_available(ts):
        raise ConversionError(f"decoding {name_of(ts)} needs a pixel codec: {CODECS_HINT}")
    lossy = is_definitely_lossy(ts)
    try:
        ds.decompress(as_rgb=lossy, generate_instance_uid=False,
                      decoding_plugin=_plugin(ts))  # fmt: skip
    except Exception as exc:
        raise ConversionError(f"cannot decode the {name_of(ts)} pixel data: {exc}") from exc
    if lossy and ds.get("LossyImageCompression") != "01":
        ds.LossyImageCompression = "01"  # PS3.3 C.7.6.1.1.5: once lossy, always "01"


# Where several installed backends decode a syntax, the fastest (measured on 512x512 CT:
# JPEG-LS 9 ms with CharLS vs 22 ms with libjpeg; RLE in Rust vs pure Python).
_FAST_PLUGINS = {
    "1.2.840.10008.1.2.4.80": "pyjpegls",
    "1.2.840.10008.1.2.4.81": "pyjpegls",
    "1.2.840.10008.1.2.5": "pylibjpeg",
}


def _plugin(ts: str) -> str:
    """The decoding plugin to ask pydicom for ("" = its own choice)."""
    wanted = _FAST_PLUGINS.get(ts)
    if wanted is None:
        return ""
    from pydicom.pixels.decoders.base import get_decoder  # lazy: pydicom, see _decoded

    return wanted if wanted in get_decoder(ts).available_plugins else ""


def _compress(ds: Dataset, target: str) -> None:
    if not encoder_available(target):
        raise ConversionError(
            f"encoding into {name_of(target)} needs a pixel codec that is not installed "
            f"({CODECS_HINT}), or none exists"
        )
    try:
        ds.compress(target, generate_instance_uid=False)
    except Exception as exc:
        raise ConversionError(f"cannot encode the pixel data as {name_of(target)}: {exc}") from exc
    if is_definitely_lossy(target) and ds.get("LossyImageCompression") != "01":
        ds.LossyImageCompression = "01"


def _pixels(source: DataSource, src_ts: str, target: str, kind: int) -> DataSource:
    """Decompression, compression or transcoding through pydicom (in memory)."""
    from pydicom.uid import UID  # lazy: pydicom, see _decoded

    if kind in (Kind.DECOMPRESS, Kind.TRANSCODE) and not decoder_available(src_ts):
        raise ConversionError(f"decoding {name_of(src_ts)} needs a pixel codec: {CODECS_HINT}")
    ds = _decoded(source, src_ts)
    if kind in (Kind.DECOMPRESS, Kind.TRANSCODE):
        if _has_encapsulated_pixels(ds):
            _decompress(ds, src_ts)
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
    if kind in (Kind.COMPRESS, Kind.TRANSCODE) and "PixelData" in ds:
        _compress(ds, target)
    try:
        return DataSource.from_bytes(encode_dataset(ds, target), target)
    except DicomNetError as exc:
        raise ConversionError(f"cannot encode the data set as {name_of(target)}: {exc}") from exc

