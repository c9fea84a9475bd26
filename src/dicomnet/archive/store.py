"""The archive's file store: received objects become Part 10 files, atomically.

Theory of operation
-------------------
Layout: ``root/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``.  A path is only
ever derived from UIDs that passed validation (PS3.5 9.1: digits and dots, no empty component,
no leading zero except a lone ``0``, 1..64 characters); anything else raises
:class:`InvalidUIDError` before a path exists.  As defence in depth the joined path is checked to
lie inside ``root``.

Writing follows "temp file + rename" so that an object is either completely stored or not
visible at all: :meth:`FileStore.begin_write` creates ``root/.tmp/<random>.part`` (same file
system as the final place), the caller streams bytes into it (:meth:`PendingFile.write`; no
copies, ``os.write`` on memoryviews), then :meth:`FileStore.commit` ``os.replace()``-s it onto
its final path, or :meth:`FileStore.abort` deletes it.  :func:`encode_file_meta` builds the
PS3.10 7.1 header (128-byte preamble, ``DICM``, group 0002 in Explicit VR Little Endian with a
correct (0002,0000) group length) so a received C-STORE data set - bytes, or chunks of a spooled
file - becomes a Part 10 file without being decoded.

Durability: by default files are *not* fsync-ed.  Once ``os.replace`` has returned, the data is
in the kernel's page cache and survives a crash of this process, which is the guarantee owed to
an acknowledged C-STORE; surviving a kernel crash or power loss needs ``FileStore(...,
fsync=True)`` (file and directory fsync, several ms per object) together with
``ArchiveIndex(..., durable=True)``.

Disk full (ENOSPC/EDQUOT) at any step raises :class:`StorageFullError` (answer A700) and the
temp file is removed.  Other OS errors raise :class:`ArchiveError`, also without leftovers.

:meth:`FileStore.recover` is the start-up check: it deletes leftover temp files, drops index
rows whose file is gone, and indexes ``.dcm`` files that the index does not know (a crash
between rename and index update).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from dicomnet.archive.models import (
    ArchiveError,
    InstanceMismatchError,
    InvalidUIDError,
    StorageFullError,
)
from dicomnet.archive.part10 import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    encode_file_meta,
    quick_hash,
    validate_uid,
)
from dicomnet.archive.storage import open_file

if TYPE_CHECKING:
    from dicomnet.archive.index import ArchiveIndex, InstanceFields
    from dicomnet.archive.recovery import RecoveryReport

_LOG = logging.getLogger("dicomnet.archive.store")

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "ArchiveError",
    "FileStore",
    "InvalidUIDError",
    "PendingFile",
    "StorageFullError",
    "StoredInstance",
    "encode_file_meta",
    "validate_uid",
]


_TMP_DIR = ".tmp"
_QUARANTINE = ".quarantine"
_SUFFIX = ".dcm"
#: Where objects outside the patient hierarchy go (no Study Instance UID has letters).
NONPATIENT_DIR = "_nonpatient"
_SCAN_BYTES = 64 * 1024  # indexed attributes are looked for in the first bytes of a data set
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


# --- writing ------------------------------------------------------------------------------------


def _fsync_dir(directory: str) -> None:
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _raise_os(exc: OSError, action: str) -> None:
    if exc.errno in _FULL_ERRNOS:
        raise StorageFullError(f"storage full while {action}: {exc}") from exc
    raise ArchiveError(f"I/O error while {action}: {exc}") from exc


class PendingFile:
    """A temp file being written; see :meth:`FileStore.begin_write`."""

    __slots__ = ("_fd", "path", "size")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.size = 0

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; on any OS error the temp file is deleted and the error raised as
        :class:`StorageFullError` (ENOSPC/EDQUOT) or :class:`ArchiveError`."""
        if self._fd < 0:
            raise ArchiveError("write to a closed pending file")
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        try:
            while view:
                n = os.write(self._fd, view)
                self.size += n
                view = view[n:]
        except OSError as exc:
            self.discard()
            _raise_os(exc, f"writing {self.path}")

    def write_all(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def write_many(self, buffers: list[bytes | bytearray | memoryview]) -> None:
        """Append several buffers with one ``writev`` (e.g. a file meta header and a small data
        set); same errors as :meth:`write`."""
        if self._fd < 0:
            raise ArchiveError("write to a closed pending file")
        views = [memoryview(b).cast("B") for b in buffers]
        total = sum(v.nbytes for v in views)
        try:
            n = os.writev(self._fd, views)
        except OSError as exc:
            self.discard()
            _raise_os(exc, f"writing {self.path}")
        self.size += n
        if n < total:  # a short write (rare): the rest one buffer at a time
            for v in views:
                if n >= v.nbytes:
                    n -= v.nbytes
                    continue
                self.write(v[n:])
                n = 0

    def _close(self, fsync: bool) -> None:
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        try:
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self) -> None:
        """Close and delete; never raises."""
        try:
            self._close(False)
        except OSError:
            pass
        try:
            os.unlink(self.path)
        except OSError:
            pass


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """Result of :meth:`FileStore.store`."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    size: int
    replaced: bool


class FileStore:
    """Files of the archive under ``root``; safe to use from several threads."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False,
                 node: str | None = None) -> None:  # fmt: skip
        """``node``: the name of this archive node when several share ``root``
        (:mod:`dicomnet.archive.ownership`): its temp files go to ``root/.tmp/<node>/``, which
        only its own start-up check empties."""
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)
        self.fsync = fsync
        self.node = node
        self.tmp_dir = os.path.join(self.root, _TMP_DIR, *([node] if node else []))
        os.makedirs(self.tmp_dir, exist_ok=True)
        self._root_prefix = self.root + os.sep
        self._dirs: set[str] = set()
        self._dir_lock = threading.Lock()
        self._tmp_tag = secrets.token_hex(6)  # temp file names: tag-pid-counter.part
        self._tmp_count = itertools.count()  # next() is atomic under the GIL

    # --- paths ---------------------------------------------------------------------------------

    def path_for(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> str:
        """The final path of an instance; :class:`InvalidUIDError` unless all three are UIDs."""
        validate_uid(study_uid, "Study Instance UID")
        validate_uid(series_uid, "Series Instance UID")
        validate_uid(sop_instance_uid, "SOP Instance UID")
        path = os.path.join(self.root, study_uid, series_uid, sop_instance_uid + _SUFFIX)
        if not os.path.normpath(path).startswith(self._root_prefix):  # defence in depth
            raise InvalidUIDError(f"path escapes the archive root: {path!r}")
        return path

    def path_of(self, fields: InstanceFields) -> str:
        """The final path of an instance described by ``fields``: under its study and series,
        or, for an object outside the patient hierarchy (no Study Instance UID),
        ``_nonpatient/<SOP Class UID>/`` (:mod:`dicomnet.archive.nonpatient`)."""
        if fields.in_patient_hierarchy:
            return self.path_for(fields.study_instance_uid, fields.series_instance_uid,
                                 fields.sop_instance_uid)  # fmt: skip
        validate_uid(fields.sop_class_uid, "SOP Class UID")
        validate_uid(fields.sop_instance_uid, "SOP Instance UID")
        path = os.path.join(self.root, NONPATIENT_DIR, fields.sop_class_uid,
                            fields.sop_instance_uid + _SUFFIX)  # fmt: skip
        if not os.path.normpath(path).startswith(self._root_prefix):  # defence in depth
            raise InvalidUIDError(f"path escapes the archive root: {path!r}")
        return path

    def _ensure_dir(self, directory: str) -> None:
        if directory in self._dirs:
            return
        try:
            self._make_dirs(directory)
        except OSError as exc:
            _raise_os(exc, f"creating {directory}")
        real = os.path.realpath(directory)
        if os.path.commonpath([self.root, real]) != self.root:  # a symlink planted in root
            raise InvalidUIDError(f"directory resolves outside the archive: {real!r}")
        with self._dir_lock:
            self._dirs.add(directory)

    def _make_dirs(self, directory: str) -> None:
        """Create ``directory`` and its missing parents below root; with fsync, each new
        directory's entry is made durable in its parent (a file renamed into a directory whose
        own entry was lost would be lost with it)."""
        missing: list[str] = []
        d = directory
        while d != self.root and not os.path.isdir(d):
            missing.append(d)
            d = os.path.dirname(d)
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            if self.fsync:
                _fsync_dir(os.path.dirname(d))

    # --- writing -------------------------------------------------------------------------------

    def begin_write(self) -> PendingFile:
        """A new, empty temp file in ``root/.tmp`` to stream an object into."""
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for _ in range(8):
            # unique per process and call without a getrandom() per file; O_EXCL still guards
            name = f"{self._tmp_tag}-{os.getpid()}-{next(self._tmp_count)}.part"
            path = os.path.join(self.tmp_dir, name)
            try:
                fd = os.open(path, flags, 0o644)
            except FileExistsError:
                continue
            except FileNotFoundError:  # .tmp removed behind our back
                os.makedirs(self.tmp_dir, exist_ok=True)
                continue
            except OSError as exc:
                _raise_os(exc, "creating a temp file")
            return PendingFile(path, fd)
        raise ArchiveError("could not create a temp file")

    def commit(self, pending: PendingFile, final_path: str) -> str:
        """Close (fsync when configured) and atomically move ``pending`` to ``final_path``,
        which must come from :meth:`path_for`.  On error the temp file is removed."""
        if (
            not final_path.startswith(self._root_prefix)
            or os.path.normpath(final_path) != final_path
        ):
            pending.discard()
            raise InvalidUIDError(f"not an archive path: {final_path!r}")
        directory = os.path.dirname(final_path)
        try:
            self._ensure_dir(directory)
            pending._close(self.fsync)
            os.replace(pending.path, final_path)
            if self.fsync:
                _fsync_dir(directory)
        except OSError as exc:
            pending.discard()
            _raise_os(exc, f"committing {final_path}")
        except BaseException:
            pending.discard()
            raise
        return final_path

    def abort(self, pending: PendingFile) -> None:
        """Forget a temp file (close and delete it)."""
        pending.discard()

    def adopt(self, path: str, meta: bytes) -> PendingFile | None:
        """A spool file that already holds ``meta`` (a Part 10 header) then the data set, as a
        :class:`PendingFile` ready for :meth:`commit`: the received bytes are renamed into place
        instead of copied.  None (nothing changed) unless ``path`` lies in ``root/.tmp`` (same
        file system: a rename) and starts with exactly ``meta``."""
        if os.path.dirname(os.path.abspath(path)) != os.path.abspath(self.tmp_dir):
            return None
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            if os.pread(fd, len(meta), 0) != meta:
                os.close(fd)
                return None
            os.fchmod(fd, 0o644)  # a spool file is private (mkstemp); stored files are not
            pending = PendingFile(path, fd)
            pending.size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            return None
        return pending

    def write_part10(
        self,
        pending: PendingFile,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
        chunks: Iterable[bytes | bytearray | memoryview],
        *,
        source_ae_title: str | None = None,
    ) -> None:
        """Write the file meta header then the raw data set ``chunks`` (already encoded in
        ``transfer_syntax_uid``) into ``pending``."""
        meta = encode_file_meta(
            sop_class_uid, sop_instance_uid, transfer_syntax_uid, source_ae_title=source_ae_title
        )
        rest = iter(chunks)
        first = next(rest, None)
        pending.write_many([meta] if first is None else [meta, first])  # one system call
        pending.write_all(rest)

    def store(
        self,
        index: ArchiveIndex,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
        chunks: Iterable[bytes | bytearray | memoryview],
        *,
        source_ae_title: str | None = None,
        fields: InstanceFields | None = None,
    ) -> StoredInstance:
        """The whole C-STORE path: Part 10 temp file, attribute extraction, rename, index upsert.

        ``chunks`` is the data set exactly as received (encoded in ``transfer_syntax_uid``); it
        is written, never decoded.  Unless ``fields`` is given, the indexed attributes come from
        a copy of its first 64 KiB (:func:`~dicomnet.archive.index.scan_instance_fields`), or
        from the temp file's header via pydicom when the fast scan declines.  The data set's
        SOP Instance UID must equal ``sop_instance_uid`` (else :class:`InstanceMismatchError`).  A
        replaced duplicate stored under another path is deleted.
        """
        validate_uid(sop_instance_uid, "SOP Instance UID")
        pending = self.begin_write()
        # Keep a copy of the first bytes for the header scan; the rest is only written.
        head = bytearray()
        total = 0

        def scanned(chunks: Iterable[bytes | bytearray | memoryview]) -> Iterator[memoryview]:
            nonlocal total
            for chunk in chunks:
                view = memoryview(chunk)
                if view.format != "B" or view.ndim != 1:
                    view = view.cast("B")
                if total < _SCAN_BYTES:
                    head.extend(view[: _SCAN_BYTES - total])
                total += view.nbytes
                yield view

        try:
            self.write_part10(
                pending,
                sop_class_uid,
                sop_instance_uid,
                transfer_syntax_uid,
                scanned(chunks),
                source_ae_title=source_ae_title,
            )
        except BaseException:
            pending.discard()
            raise
        return self._index_pending(
            index, pending, head, total, sop_class_uid, sop_instance_uid, transfer_syntax_uid,
            fields,
        )

    def store_adopted(
        self,
        index: ArchiveIndex,
        pending: PendingFile,
        meta_length: int,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
    ) -> StoredInstance:
        """:meth:`store` for a file from :meth:`adopt` (header and data set already written):
        the same attribute scan, rename and index upsert, without copying the data set."""
        try:
            validate_uid(sop_instance_uid, "SOP Instance UID")
            total = pending.size - meta_length
            try:
                head = os.pread(pending._fd, _SCAN_BYTES, meta_length)
            except OSError as exc:
                _raise_os(exc, f"reading {pending.path}")
        except BaseException:
            pending.discard()
            raise
        return self._index_pending(
            index, pending, head, total, sop_class_uid, sop_instance_uid, transfer_syntax_uid,
            None,
        )

    def _index_pending(
        self,
        index: ArchiveIndex,
        pending: PendingFile,
        head: bytes | bytearray,
        total: int,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
        fields: InstanceFields | None,
    ) -> StoredInstance:
        # lazy: dicomnet.archive.fields imports pydicom (~150 ms), which writing files never
        # needs (DirectoryStore, encode_file_meta)
        from dicomnet.archive.fields import read_instance_fields, scan_instance_fields

        try:
            if fields is None:
                fields = scan_instance_fields(head, transfer_syntax_uid, whole=total <= _SCAN_BYTES)
            if fields is None:  # unusual encoding: let pydicom read the header
                fields = read_instance_fields(pending.path)[0]
            if fields.sop_instance_uid != sop_instance_uid:
                raise InstanceMismatchError(
                    "SOP Instance UID of the data set differs from the affected SOP Instance UID"
                )
            final = self.path_of(fields)
            index.check_conflict(fields)  # before the file is put in place
        except BaseException:
            pending.discard()
            raise
        size = pending.size
        checksum = None
        if self.fsync:  # durable mode: a fingerprint for the check after a power loss
            try:
                checksum = quick_hash(pending._fd, size)
            except OSError as exc:
                pending.discard()
                _raise_os(exc, f"reading {pending.path}")
        existed = os.path.lexists(final)
        self.commit(pending, final)
        try:
            old = index.add_instance(fields, final, transfer_syntax_uid, size, checksum)
        except BaseException:
            # not indexed (the database went away, a conflict found at the last moment): a file
            # that is new here goes again, so nothing stays half stored; one that replaced a
            # file of the same path keeps the path the index already names
            if not existed:
                self.remove_file(final)
            raise
        if old is not None and old != final:
            self.remove_file(old)
        return StoredInstance(
            final, sop_class_uid, sop_instance_uid, transfer_syntax_uid, size, old is not None
        )

    def remove(self, path: str) -> bool:
        """:meth:`InstanceStorage.remove`: the stored file ``path`` deleted (only inside root)."""
        return self.remove_file(path)

    def remove_file(self, path: str) -> bool:
        """Delete a stored file (only inside root); True if something was deleted."""
        if not os.path.normpath(path).startswith(self._root_prefix):
            return False
        try:
            os.unlink(path)
        except OSError:
            return False
        return True

    # --- reading (InstanceStorage.open / source) -------------------------------------------------

    def open(self, path: str) -> BinaryIO:
        """The stored file ``path``, open for reading."""
        return open_file(path)

    def source(self, path: str) -> str:
        """A C-STORE sub-operation sends the file itself (read with no copy by the sender)."""
        return path

    # --- start-up check ------------------------------------------------------------------------

    def recover(self, index: ArchiveIndex, *, full: bool = True,
                since: float = 0.0) -> RecoveryReport:  # fmt: skip
        """Bring files and index back in step after a crash:
        :func:`dicomnet.archive.recovery.recover`."""
        # lazy: recovery reads data sets with pydicom (~150 ms to import), which a store that
        # only writes files never needs
        from dicomnet.archive.recovery import recover

        return recover(self, index, full=full, since=since)

    def quarantine_dir(self) -> str:
        """Where damaged files are moved (kept for a person to look at, never served)."""
        return os.path.join(self.root, _QUARANTINE)
