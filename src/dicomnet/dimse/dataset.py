"""Dataset payloads of DIMSE messages: bytes, files, spool files or pydicom Datasets.

Theory of operation
-------------------
A DIMSE message (PS3.7 section 6.3) carries an optional data set encoded in the transfer syntax
accepted for its presentation context. The transport layer never needs the data set as a
pydicom ``Dataset``: it needs its *encoded bytes*, ideally without holding a 1 GB object in
memory. :class:`DataSource` is that payload, whatever it comes from:

* ``DataSource.from_bytes(b)`` wraps bytes/bytearray/memoryview without copying;
* ``DataSource.from_dataset(ds, ts)`` keeps a pydicom ``Dataset`` and encodes it on first use
  (implicit/explicit VR, little/big endian, raw-deflated for the deflate transfer syntaxes --
  PS3.5 section 10 and Annex A.5), with no File Meta Information (PS3.7 section 6.3.1: the
  message data set never contains group 0002);
* ``DataSource.from_file(path, ts)`` points into a file: a PS3.10 file (128-byte preamble,
  "DICM", group 0002 meta header -- PS3.10 section 7.1) is parsed just far enough to find where
  the data set starts and its Transfer Syntax UID; a file without preamble/meta is a raw data
  set whose transfer syntax the caller gives;
* :class:`SpoolFile` is what reassembly writes a large received data set into, fragment by
  fragment; ``finish()`` turns it into a ``DataSource`` that owns (and on ``close()`` deletes)
  the temporary file, unless ``detach()`` or ``move_to(dest)`` handed the file on.

``iter_chunks(n)`` yields the payload as pieces of exactly ``n`` bytes (the last one may be
shorter): memoryview slices for in-memory payloads (no copy) and slices of a bounded read block
for files, so memory stays bounded whatever the file size. Chunks are independent objects: a
caller may keep them (e.g. queue them for a scatter-gather send) after asking for the next one.

Pydicom is imported lazily, only by the functions that need a ``Dataset``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from dicomnet.dimse.textenc import encode_flat_text
from dicomnet.errors import DimseError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "DEFLATED_TRANSFER_SYNTAXES",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "MAX_META_LENGTH",
    "DataSource",
    "FileRegion",
    "SpoolFile",
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
#: Files are read in blocks of (a multiple of the chunk size near) this many bytes.
READ_BLOCK = 1 << 20

_PREAMBLE = 128
_MAGIC = b"DICM"
_TAG_VR_SHORT = struct.Struct("<HH2sH")  # explicit VR LE element header, 2-byte length
_UL = struct.Struct("<I")
# PS3.5 7.1.2: explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)

_KIND_BYTES = 0
_KIND_FILE = 1
_KIND_DATASET = 2


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


class DataSource:
    """An encoded data set payload (see the module docstring)."""

    __slots__ = (
        "_data",
        "_dataset",
        "_kind",
        "_owned",
        "_size",
        "check",
        "offset",
        "path",
        "transfer_syntax",
    )

    def __init__(
        self,
        *,
        data: bytes | bytearray | memoryview | None = None,
        path: str | None = None,
        offset: int = 0,
        size: int | None = None,
        transfer_syntax: str | None = None,
        owned: bool = False,
    ) -> None:
        self.path = path
        self.offset = offset
        self.transfer_syntax = transfer_syntax
        #: A received data set's check (:class:`~dicomnet.dimse.checker.DataSetChecker` after
        #: ``finish()``: its ``problem`` says why it is not well-formed), or None.
        self.check: Any = None
        self._owned = owned
        self._dataset: Dataset | None = None
        self._data: memoryview | None = None
        if data is not None:
            self._kind = _KIND_BYTES
            self._data = data if isinstance(data, memoryview) else memoryview(data)
            if self._data.ndim != 1 or self._data.itemsize != 1:
                self._data = self._data.cast("B")
            self._size: int | None = self._data.nbytes
        elif path is not None:
            self._kind = _KIND_FILE
            if size is None:
                try:
                    size = os.stat(path).st_size - offset
                except OSError as exc:
                    raise DimseError(f"cannot stat {path!r}: {exc}") from exc
            if size < 0:
                raise DimseError(f"offset {offset} past the end of {path!r}")
            self._size = size
        else:
            self._kind = _KIND_DATASET
            self._size = None

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, transfer_syntax: str | None = None
    ) -> DataSource:
        """Wrap already encoded bytes (no copy)."""
        return cls(data=data, transfer_syntax=transfer_syntax)

    @classmethod
    def from_dataset(cls, dataset: Dataset, transfer_syntax: str) -> DataSource:
        """A pydicom ``Dataset``, encoded in ``transfer_syntax`` on first use."""
        src = cls(transfer_syntax=transfer_syntax)
        src._dataset = dataset
        return src

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], transfer_syntax: str | None = None
    ) -> DataSource:
        """A data set stored in a file: Part 10 (meta header skipped) or a raw data set.

        For a Part 10 file the transfer syntax is the file's (0002,0010); ``transfer_syntax``
        only applies to raw data sets (and to Part 10 files whose meta header lacks one).
        """
        fspath = os.fspath(path)
        try:
            with open(fspath, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                offset, values = read_file_meta(f, size)
        except OSError as exc:
            raise DimseError(f"cannot read {fspath!r}: {exc}") from exc
        ts = values.get(0x0010)
        return cls(
            path=fspath, offset=offset, size=size - offset, transfer_syntax=ts or transfer_syntax
        )

    # -- payload access ----------------------------------------------------------------------

    def _encode(self) -> memoryview:
        if self._data is None:
            if self._dataset is None or self.transfer_syntax is None:
                raise DimseError("this DataSource was closed")
            self._data = memoryview(encode_dataset(self._dataset, self.transfer_syntax))
            self._size = self._data.nbytes
        return self._data

    @property
    def size(self) -> int:
        """Payload length in bytes (a Dataset source is encoded to learn it)."""
        if self._size is None:
            self._encode()
        assert self._size is not None
        return self._size

    @property
    def dataset(self) -> Dataset | None:
        """The pydicom Dataset this source was built from, if any."""
        return self._dataset

    def iter_chunks(self, chunk_size: int) -> Iterator[memoryview | bytes]:
        """The payload as chunks of ``chunk_size`` bytes (the last may be shorter)."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if self._kind != _KIND_FILE:
            data = self._encode()
            n = data.nbytes
            for start in range(0, n, chunk_size):
                yield data[start : start + chunk_size]
            return
        assert self.path is not None
        remaining = self.size
        block = max(1, READ_BLOCK // chunk_size) * chunk_size
        try:
            with open(self.path, "rb", buffering=0) as f:
                f.seek(self.offset)
                while remaining > 0:
                    buf = f.read(min(block, remaining))
                    if not buf:
                        raise DimseError(f"{self.path!r} shrank while being read")
                    remaining -= len(buf)
                    view = memoryview(buf)
                    for start in range(0, len(buf), chunk_size):
                        yield view[start : start + chunk_size]
        except OSError as exc:
            raise DimseError(f"cannot read {self.path!r}: {exc}") from exc

    @property
    def is_file(self) -> bool:
        """True for a file-backed source (its bytes are read lazily from ``path``)."""
        return self._kind == _KIND_FILE

    def iter_regions(self, chunk_size: int) -> Iterator[FileRegion]:
        """A file-backed payload as :class:`FileRegion` pieces of ``chunk_size`` bytes (the
        last may be shorter), for a transport that copies file pages to the socket itself
        (``sendfile``) instead of reading them into memory first. Each region is valid until
        the next one is asked for (the file is closed when the iteration ends)."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if self._kind != _KIND_FILE:
            raise DimseError("iter_regions needs a file-backed DataSource")
        assert self.path is not None
        try:
            f = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in finally
        except OSError as exc:
            raise DimseError(f"cannot read {self.path!r}: {exc}") from exc
        try:
            end = self.offset + self.size
            if os.fstat(f.fileno()).st_size < end:
                raise DimseError(f"{self.path!r} shrank while being read")
            for start in range(self.offset, end, chunk_size):
                yield FileRegion(f, start, min(chunk_size, end - start))
        finally:
            f.close()

    def read(self) -> bytes:
        """The whole payload as bytes (copies; avoid for large files)."""
        if self._kind != _KIND_FILE:
            return bytes(self._encode())
        return b"".join(self.iter_chunks(READ_BLOCK))

    def getbuffer(self) -> memoryview | None:
        """The in-memory payload without copying, or None for a file-backed source."""
        return None if self._kind == _KIND_FILE else self._encode()

    def decode(self, transfer_syntax: str | None = None) -> Dataset:
        """Decode into a pydicom ``Dataset`` (defaults to the known transfer syntax)."""
        if self._dataset is not None and (
            transfer_syntax is None or transfer_syntax == self.transfer_syntax
        ):
            return self._dataset
        ts = transfer_syntax or self.transfer_syntax
        if ts is None:
            raise DimseError("decode: the transfer syntax of this data set is unknown")
        return decode_dataset(self.read(), ts)

    # -- ownership ---------------------------------------------------------------------------

    def detach(self) -> str | None:
        """Stop owning the backing spool file (it is no longer deleted); returns its path."""
        self._owned = False
        return self.path

    def move_to(self, dest: str | os.PathLike[str]) -> str:
        """Move the backing file to ``dest`` (a rename when on the same file system).

        Only for file sources whose payload is the whole file from its start, or whose prefix
        the caller wrote on purpose (a spool file with a Part 10 header): the file moves as it
        is. In-memory sources are written out. The source then reads from ``dest`` and no longer
        owns it.
        """
        target = os.fspath(dest)
        if self._kind != _KIND_FILE:
            data = self._encode()
            with open(target, "wb") as f:
                f.write(data)
            self._kind = _KIND_FILE
            self._data = None
            self.path, self.offset, self._owned = target, 0, False
            return target
        assert self.path is not None
        try:
            os.replace(self.path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise DimseError(f"cannot move {self.path!r} to {target!r}: {exc}") from exc
            import shutil  # a cross-device move only: start-up does not pay for shutil

            shutil.move(self.path, target)
        self.path, self._owned = target, False
        return target

    def close(self) -> None:
        """Release the payload; an owned spool file is deleted."""
        if self._owned and self.path is not None:
            self._owned = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        if self._kind == _KIND_BYTES:
            self._data = None
            self._size = 0

    @property
    def owned(self) -> bool:
        """True while ``close()`` will delete the backing file."""
        return self._owned

    def __enter__(self) -> DataSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = ("bytes", "file", "dataset")[self._kind]
        return (
            f"DataSource({kind}, size={self._size}, path={self.path!r}, offset={self.offset}, "
            f"transfer_syntax={self.transfer_syntax!r})"
        )


class FileRegion:
    """``length`` bytes of an open file from ``offset``: a payload chunk a transport sends with
    ``sendfile`` (page cache to socket, no copy through Python). ``len()`` is its length, so
    it passes through fragmentation like a buffer; ``tobytes()`` reads it for transports that
    cannot send files (TLS, asyncio)."""

    __slots__ = ("file", "length", "offset")

    def __init__(self, file: BinaryIO, offset: int, length: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length

    def __len__(self) -> int:
        return self.length

    def tobytes(self) -> bytes:
        data = os.pread(self.file.fileno(), self.length, self.offset)
        if len(data) != self.length:
            raise DimseError("a file shrank while being sent")
        return data

    def __repr__(self) -> str:
        return f"FileRegion({getattr(self.file, 'name', '?')!r}, {self.offset}, {self.length})"


class SpoolFile:
    """A temporary file that a received data set is written into, fragment by fragment.

    ``prefix`` (e.g. a Part 10 preamble + meta header) is written first; the data set offset
    of the resulting source is ``len(prefix)`` so ``move_to`` yields a complete Part 10 file.
    """

    __slots__ = ("_f", "path", "prefix_length", "size")

    def __init__(self, spool_dir: str | None = None, prefix: bytes = b"") -> None:
        import tempfile  # lazily: a client that never spools (echoscu) does not pay for it

        try:
            fd, self.path = tempfile.mkstemp(prefix="dicomnet-", suffix=".spool", dir=spool_dir)
        except OSError as exc:
            raise DimseError(f"cannot create a spool file in {spool_dir!r}: {exc}") from exc
        self._f: Any = os.fdopen(fd, "wb", buffering=0)
        self.size = 0
        self.prefix_length = len(prefix)
        if prefix:
            self._write(prefix)

    def _write(self, data: bytes | memoryview) -> None:
        try:
            view = memoryview(data)
            while view.nbytes:
                n = self._f.write(view)
                view = view[n:]
        except OSError as exc:
            self.discard()
            raise DimseError(f"cannot write spool file {self.path!r}: {exc}") from exc

    def write(self, data: bytes | memoryview) -> None:
        """Append data set bytes."""
        self._write(data)
        self.size += len(data)

    def finish(self, transfer_syntax: str | None = None) -> DataSource:
        """Close the file and return the owning :class:`DataSource`."""
        self._f.close()
        return DataSource(
            path=self.path,
            offset=self.prefix_length,
            size=self.size,
            transfer_syntax=transfer_syntax,
            owned=True,
        )

    def discard(self) -> None:
        """Close and delete the file (an aborted or refused message)."""
        with contextlib.suppress(OSError):
            self._f.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def encode_dataset(dataset: Dataset, transfer_syntax: str) -> bytes:
    """Encode ``dataset`` (no File Meta Information) in ``transfer_syntax`` (PS3.5 section 10)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    implicit, little, deflated = encoding_of(transfer_syntax)
    # Flat text-only data sets (C-FIND identifiers) skip pydicom's general writer; the fast
    # encoder returns None for anything it does not reproduce byte for byte.
    fast = encode_flat_text(dataset, implicit) if little else None
    if fast is not None:
        if deflated:
            import zlib  # lazily, like tempfile: only deflated transfer syntaxes need it

            comp = zlib.compressobj(6, zlib.DEFLATED, -15)  # PS3.5 A.5
            return comp.compress(fast) + comp.flush()
        return fast
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
        raise DimseError(f"cannot encode the data set in {transfer_syntax}: {exc}") from exc
    raw = fp.getvalue()
    if deflated:
        import zlib

        # PS3.5 A.5: raw deflate (RFC 1951), no zlib header.
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        raw = comp.compress(raw) + comp.flush()
    return bytes(raw)


def decode_dataset(
    data: bytes | memoryview, transfer_syntax: str, *, max_inflated: int | None = None
) -> Dataset:
    """Decode encoded data set bytes into a pydicom ``Dataset``; errors become DimseError.

    A deflated data set (PS3.5 A.5) inflates to at most ``max_inflated`` bytes (default
    :data:`MAX_INFLATED`): a few KB of deflate can claim gigabytes (a "deflate bomb")."""
    import io

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
        ds = read_dataset(io.BytesIO(raw), implicit, little)
    except DimseError:
        raise
    except Exception as exc:  # hostile bytes: pydicom raises many types
        raise DimseError(f"cannot decode the data set as {transfer_syntax}: {exc}") from exc
    return ds
