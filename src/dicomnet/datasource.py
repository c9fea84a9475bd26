"""Data set payloads backed by files: Part 10 files to send, spool files of received data sets.

Theory of operation
-------------------
The DIMSE layer (PS3.7) handles a message's data set as a
:class:`~dicomnet.dimse.payload.Payload`: encoded bytes, cut into fragments without copying,
with no I/O. This module, which sits beside :mod:`dicomnet.transport` below the application
layer, adds what needs the file system:

* :class:`DataSource` is a ``Payload`` that may also point into a file. Every constructor of
  the in-memory kinds still works (``from_bytes``, ``from_dataset``); ``from_file(path, ts)``
  points into a file: a PS3.10 file (128-byte preamble, "DICM", group 0002 meta header --
  PS3.10 section 7.1) is parsed just far enough to find where the data set starts and its
  Transfer Syntax UID (:func:`~dicomnet.dimse.dataset.read_file_meta`); a file without
  preamble/meta is a raw data set whose transfer syntax the caller gives. A file payload is
  read lazily in bounded blocks (``iter_chunks``), or not read at all: ``iter_regions`` yields
  :class:`FileRegion` pieces that a transport copies from the page cache to the socket with
  ``sendfile``. ``move_to(dest)`` renames the file (or writes an in-memory payload out);
  ``detach()`` hands an owned file on; ``close()`` deletes an owned file.
* :class:`SpoolFile` is a temporary file a large received data set is written into, fragment
  by fragment, behind an optional prefix; ``finish()`` turns it into a ``DataSource`` that owns
  the file and whose ``offset`` skips the prefix.
* :class:`SpoolingFactory` is the :class:`~dicomnet.dimse.payload.PayloadFactory` an
  association gives its DIMSE reassembler (PS3.8 section 9.3.5 / PS3.7 Annex E reassembly): a
  data set completed in memory becomes a ``DataSource`` (so a handler may ``move_to`` it), one
  above the spool threshold goes to a ``SpoolFile`` in ``spool_dir``, behind the bytes of
  ``prefix(context_id, command)`` -- the storage SCP's Part 10 header, so that the finished
  spool file is renamed into place rather than copied.

Chunks from ``iter_chunks`` are independent objects: a caller may keep them (e.g. queue them
for a scatter-gather send) after asking for the next one.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO, Self

from dicomnet.dimse.dataset import read_file_meta
from dicomnet.dimse.payload import Payload
from dicomnet.errors import DimseError

__all__ = ["READ_BLOCK", "DataSource", "FileRegion", "SpoolFile", "SpoolingFactory"]

#: Files are read in blocks of (a multiple of the chunk size near) this many bytes.
READ_BLOCK = 1 << 20


class DataSource(Payload):
    """An encoded data set payload in memory or in a file (see the module docstring)."""

    __slots__ = ("_owned", "offset", "path")

    path: str | None
    offset: int

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
        Payload.__init__(self, data=data, transfer_syntax=transfer_syntax)  # not super(): hot path
        self.path = path
        self.offset = offset
        self._owned = owned
        if data is None and path is not None:
            if size is None:
                try:
                    size = os.stat(path).st_size - offset
                except OSError as exc:
                    raise DimseError(f"cannot stat {path!r}: {exc}") from exc
            if size < 0:
                raise DimseError(f"offset {offset} past the end of {path!r}")
            self.set_elsewhere(size)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], transfer_syntax: str | None = None) -> Self:
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

    # -- payload access (``size``, ``getbuffer`` and ``is_file`` are Payload's) --------------

    @property
    def owned(self) -> bool:
        """True while ``close()`` will delete the backing file."""
        return self._owned

    def iter_chunks(self, chunk_size: int) -> Iterator[memoryview | bytes]:
        """The payload as chunks of ``chunk_size`` bytes (the last may be shorter); a file is
        read in blocks of about :data:`READ_BLOCK` bytes, so memory stays bounded."""
        if not self.is_file:
            return super().iter_chunks(chunk_size)
        return self._file_chunks(chunk_size)

    def _file_chunks(self, chunk_size: int) -> Iterator[memoryview | bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        path = self._file_path()
        remaining = self.size
        block = max(1, READ_BLOCK // chunk_size) * chunk_size
        try:
            with open(path, "rb", buffering=0) as f:
                f.seek(self.offset)
                while remaining > 0:
                    buf = f.read(min(block, remaining))
                    if not buf:
                        raise DimseError(f"{path!r} shrank while being read")
                    remaining -= len(buf)
                    view = memoryview(buf)
                    for start in range(0, len(buf), chunk_size):
                        yield view[start : start + chunk_size]
        except OSError as exc:
            raise DimseError(f"cannot read {path!r}: {exc}") from exc

    def iter_regions(self, chunk_size: int) -> Iterator[FileRegion]:
        """A file-backed payload as :class:`FileRegion` pieces of ``chunk_size`` bytes (the
        last may be shorter), for a transport that copies file pages to the socket itself
        (``sendfile``) instead of reading them into memory first. Each region is valid until
        the next one is asked for (the file is closed when the iteration ends). DimseError for
        an in-memory source."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if not self.is_file:
            raise DimseError("iter_regions needs a file-backed DataSource")
        path = self._file_path()
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in finally
        except OSError as exc:
            raise DimseError(f"cannot read {path!r}: {exc}") from exc
        try:
            end = self.offset + self.size
            if os.fstat(f.fileno()).st_size < end:
                raise DimseError(f"{path!r} shrank while being read")
            for start in range(self.offset, end, chunk_size):
                yield FileRegion(f, start, min(chunk_size, end - start))
        finally:
            f.close()

    def read(self) -> bytes:
        """The whole payload as bytes (copies; avoid for large files)."""
        if not self.is_file:
            return super().read()
        return b"".join(self._file_chunks(READ_BLOCK))

    def _file_path(self) -> str:
        path = self.path
        if path is None:  # pragma: no cover - a file source always has its path
            raise DimseError("file-backed DataSource without a path")
        return path

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
        data = self.getbuffer()
        if data is not None:
            with open(target, "wb") as f:
                f.write(data)
            self.set_elsewhere(data.nbytes)  # the bytes now live in the file
            self.path, self.offset, self._owned = target, 0, False
            return target
        path = self._file_path()
        try:
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise DimseError(f"cannot move {path!r} to {target!r}: {exc}") from exc
            import shutil  # lazily (start-up time): only a cross-device move needs it

            shutil.move(path, target)
        self.path, self._owned = target, False
        return target

    def close(self) -> None:
        """Release the payload; an owned spool file is deleted."""
        if self._owned and self.path is not None:
            self._owned = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        Payload.close(self)  # not super(): once per message


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
    """A temporary file that a received data set is written into, fragment by fragment (a
    :class:`~dicomnet.dimse.payload.DataSink`).

    ``prefix`` (e.g. a Part 10 preamble + meta header) is written first; the data set offset
    of the resulting source is ``len(prefix)`` so ``move_to`` yields a complete Part 10 file.
    """

    __slots__ = ("_f", "path", "prefix_length", "size")

    def __init__(self, spool_dir: str | None = None, prefix: bytes = b"") -> None:
        import tempfile  # lazily (start-up time): a client that never spools does not pay

        try:
            fd, self.path = tempfile.mkstemp(prefix="dicomnet-", suffix=".spool", dir=spool_dir)
        except OSError as exc:
            raise DimseError(f"cannot create a spool file in {spool_dir!r}: {exc}") from exc
        self._f = os.fdopen(fd, "wb", buffering=0)
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


class SpoolingFactory:
    """The payload factory of an association's DIMSE reassembler (a
    :class:`~dicomnet.dimse.payload.PayloadFactory`): in-memory data sets become
    a :class:`DataSource` each, larger ones a :class:`SpoolFile` in ``spool_dir`` (None: the
    system's temporary directory) that start with ``prefix(context_id, command)`` when given.
    """

    __slots__ = ("prefix", "spool_dir")

    def __init__(
        self,
        spool_dir: str | None = None,
        prefix: Callable[[int, bytes], bytes] | None = None,
    ) -> None:
        self.spool_dir = spool_dir
        self.prefix = prefix

    def memory(self, data: bytes | memoryview, transfer_syntax: str | None) -> DataSource:
        """A data set received in memory (not copied)."""
        return DataSource(data=data, transfer_syntax=transfer_syntax)

    def spool(self, context_id: int, command: bytes) -> SpoolFile:
        """A spool file for the data set of ``command`` (its prefix written first)."""
        prefix = self.prefix(context_id, command) if self.prefix is not None else b""
        return SpoolFile(self.spool_dir, prefix)

    def __repr__(self) -> str:
        return f"SpoolingFactory({self.spool_dir!r}, prefix={self.prefix!r})"
