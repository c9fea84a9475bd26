"""What the archive needs of the place its instances live: the interface a file store
implements today and an object store (S3-compatible) can implement next.

Theory of operation
-------------------
:class:`~dicomnet.archive.scp.Archive` talks to its instances' storage only through
:class:`InstanceStorage`; :class:`~dicomnet.archive.store.FileStore` (Part 10 files in a
folder, temp file + atomic rename) is the implementation. The contract, in the terms an
object store would meet it:

* :meth:`InstanceStorage.store` receives one C-STORE data set as raw chunks (never decoded),
  writes it whole under a name made only from validated UIDs, and only then indexes it: an
  instance is in the index once its bytes are complete. A file store renames a finished temp
  file into place; an object store puts a write-once object (the put is the atomic step) and
  then indexes it -- *put-then-index*, never index-then-put. A failure after the write leaves
  nothing indexed, and nothing new behind.
* :meth:`InstanceStorage.adopt` / :meth:`InstanceStorage.store_adopted` take a data set the
  network layer already spooled to ``tmp_dir`` behind the Part 10 header, without copying it
  (a rename on one file system). A store that cannot adopt returns None from ``adopt``, and
  the data set goes through ``store`` instead.
* :meth:`InstanceStorage.recover` brings storage and index back in step after a crash
  (:mod:`dicomnet.archive.recovery`): index rows whose instance is gone are dropped, stored
  instances the index does not know are indexed; what another archive node is writing at the
  same moment is never touched.
* :meth:`InstanceStorage.open` and :meth:`InstanceStorage.source` are the way back out: every
  reader of a stored instance -- the C-GET and C-MOVE sub-operations, the C-FIND return keys
  the index does not hold (read from the instance), the storage commitment check -- goes
  through them, with the name the index holds for the instance. ``open`` gives a readable
  binary file object with a ``fileno`` (a file store opens the file; an object store
  downloads the object into a temporary file); ``source`` gives what a C-STORE sub-operation
  sends (a file store: the path itself, so the send path reads the file with no copy; an
  object store: a :class:`~dicomnet.datasource.DataSource` over its download).
* :meth:`InstanceStorage.remove` deletes a stored instance once the index no longer names it
  (``qrscp --clean``).
* ``root`` names the storage (the folder; an object store's bucket URI) and is what the index
  remembers its paths are relative to; ``tmp_dir`` is a local folder for this node's spool.

An archive is given its storage as an object (``Archive(storage=...)``) or as a folder, for
which it makes a :class:`~dicomnet.archive.store.FileStore`. The start-up check, migration and
``dicomnet archive`` maintenance walk a file store's folder and stay file-store tools.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dicomnet.archive.fields import InstanceFields
    from dicomnet.archive.index import ArchiveIndex
    from dicomnet.archive.recovery import RecoveryReport
    from dicomnet.archive.store import PendingFile, StoredInstance
    from dicomnet.services.sending import StoreInput

__all__ = ["InstanceStorage", "open_file"]


def open_file(path: str) -> BinaryIO:
    """A stored Part 10 file opened for reading: the file store's :meth:`InstanceStorage.open`,
    and what readers given no storage use."""
    return open(path, "rb")


@runtime_checkable
class InstanceStorage(Protocol):
    """Where an archive's instances live (see the module docstring)."""

    #: the storage's name: a folder (or an object store's bucket URI)
    root: str
    #: this node's local spool folder (received data sets too large for memory)
    tmp_dir: str
    #: this archive node's name when several share the storage, else None
    node: str | None

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
        """Write one received data set whole, then index it (put-then-index)."""
        ...

    def adopt(self, path: str, meta: bytes) -> PendingFile | None:
        """A spool file holding ``meta`` then the data set, taken over without a copy; None
        when it cannot be (``store`` is used instead)."""
        ...

    def store_adopted(
        self,
        index: ArchiveIndex,
        pending: PendingFile,
        meta_length: int,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
    ) -> StoredInstance:
        """:meth:`store` for what :meth:`adopt` took over."""
        ...

    def recover(self, index: ArchiveIndex, *, full: bool = True,
                since: float = 0.0) -> RecoveryReport:  # fmt: skip
        """Storage and index back in step after a crash."""
        ...

    def open(self, path: str) -> BinaryIO:
        """The stored instance the index names ``path`` (its Part 10 bytes), open for reading;
        a file object with a ``fileno``. OSError (FileNotFoundError when it is gone)."""
        ...

    def source(self, path: str) -> StoreInput:
        """What a C-STORE sub-operation sends for the stored instance ``path``."""
        ...

    def remove(self, path: str) -> bool:
        """Delete the stored instance ``path`` (after its index row is gone: the index never
        names what is not there); True if something was deleted."""
        ...
