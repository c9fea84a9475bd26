"""The archive's Storage + Query/Retrieve SCP: the handlers that put FileStore and ArchiveIndex
on the network.

Theory of operation
-------------------
:class:`Archive` owns one :class:`~dicomnet.archive.store.FileStore` (the Part 10 files) and one
:class:`~dicomnet.archive.index.ArchiveIndex` (SQLite) and exposes one handler per DIMSE
service; :func:`archive_ae` builds the AE that accepts what those handlers serve, and
:func:`serve_archive` starts the server (``dicomnet qrscp``).

* **C-STORE** (PS3.4 Annex B): the received data set (``event.data_source``, already encoded in
  the context's transfer syntax, possibly spooled to disk) is streamed, never decoded, into a
  temp file behind a PS3.10 file meta header, its indexed attributes are read from that file's
  header, it is renamed atomically into place, and only then indexed (``FileStore.store``). So
  an object is in the index only once its file is complete. A SOP Instance UID that is not a
  valid UID (PS3.5 section 9.1) is refused with 0xC000-range status before any path exists
  (0xC010 here); a full disk answers 0xA700 (Refused: Out of Resources) and leaves no partial
  file; a data set whose SOP Instance UID differs from the Affected SOP Instance UID answers
  0xA900 (Data Set does not match SOP Class). A duplicate SOP Instance UID replaces the
  earlier object.
* **C-FIND** (PS3.4 C.4.1): Patient Root and Study Root models, levels PATIENT/STUDY/SERIES/
  IMAGE, matching and return keys per PS3.4 C.2.2 (done by the index). Each match is one
  Pending (0xFF00) response; ``event.is_cancelled`` is checked between matches, a cancel ends
  the operation with 0xFE00 (PS3.4 C.4.1.2.3).
* **C-GET / C-MOVE** (PS3.4 C.4.3 / C.4.2): the identifier selects instances (the unique keys
  of the levels down to the one asked for, PS3.4 C.4.2.2.1); the handler yields the count of
  sub-operations, then one file path per instance, which the service layer sends as C-STORE
  sub-operations (over the same association for C-GET, over a new one to the Move Destination
  for C-MOVE, whose address comes from ``--destination AET=HOST:PORT``; an unknown destination
  answers 0xA801). Pending responses carry the sub-operation counts; a cancel gives 0xFE00.
* **C-ECHO**: Success.

:class:`DirectoryStore` is the index-less variant used by ``storescp``, ``getscu`` and
``movescu --store-port``: the same temp-file + atomic-rename writer, flat file names
``<SOPInstanceUID>.dcm`` under one directory.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dicomnet.archive.models import (
    ArchiveError,
    InvalidUIDError,
    Model,
    QueryError,
    StorageFullError,
)
from dicomnet.archive.store import FileStore, encode_file_meta, validate_uid
from dicomnet.monitor import clip

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.ae import AE
    from dicomnet.archive.index import ArchiveIndex, RetrieveItem, RetrieveSet
    from dicomnet.events import Event

__all__ = [
    "STATUS_CANCEL",
    "STATUS_INVALID_UID",
    "STATUS_MISMATCH",
    "STATUS_OUT_OF_RESOURCES",
    "STATUS_PENDING",
    "STATUS_PROCESSING_FAILURE",
    "Archive",
    "DirectoryStore",
    "archive_ae",
    "model_of",
    "storage_transfer_syntaxes",
    "store_received",
]

LOG = logging.getLogger("dicomnet.archive.scp")

STATUS_SUCCESS = 0x0000
STATUS_PENDING = 0xFF00
STATUS_CANCEL = 0xFE00
STATUS_OUT_OF_RESOURCES = 0xA700  # PS3.4 Table B.2-1 Refused: Out of Resources
STATUS_MISMATCH = 0xA900  # PS3.4 Table B.2-1 Error: Data Set does not match SOP Class
STATUS_INVALID_UID = 0xC010  # PS3.4 Table B.2-1 Error: Cannot understand (Cxxx)
STATUS_PROCESSING_FAILURE = 0x0110  # PS3.7 Annex C: Processing failure
STATUS_FIND_OUT_OF_RESOURCES = 0xA700  # PS3.4 Table C.4-1
STATUS_UNABLE_TO_PROCESS = 0xC000  # PS3.4 Table C.4-1 / C.4-2 / C.4-3 (Cxxx)
STATUS_UNKNOWN_DESTINATION = 0xA801  # PS3.4 Table C.4-2 Move Destination unknown

CHUNK = 1 << 20  # bytes per write when streaming a received data set to disk

_QR = "1.2.840.10008.5.1.4.1.2."
QR_CLASSES: Mapping[str, tuple[Model, str]] = {
    _QR + "1.1": (Model.PATIENT_ROOT, "find"),
    _QR + "1.2": (Model.PATIENT_ROOT, "move"),
    _QR + "1.3": (Model.PATIENT_ROOT, "get"),
    _QR + "2.1": (Model.STUDY_ROOT, "find"),
    _QR + "2.2": (Model.STUDY_ROOT, "move"),
    _QR + "2.3": (Model.STUDY_ROOT, "get"),
}
VERIFICATION = "1.2.840.10008.1.1"


def model_of(sop_class_uid: str | None) -> Model:
    """The information model of a Q/R SOP class UID; QueryError(0xA900-range) otherwise."""
    entry = QR_CLASSES.get(str(sop_class_uid or "").rstrip("\0 "))
    if entry is None:
        raise QueryError(f"unsupported query/retrieve SOP class {sop_class_uid!r}")
    return entry[0]


def storage_transfer_syntaxes() -> list[str]:
    """Transfer syntaxes a storage SCP accepts, in preference order: the uncompressed ones
    first (every SCU has them), then every compressed one we know (stored as received)."""
    from dicomnet.uid import TRANSFER_SYNTAXES

    first = [
        "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
        "1.2.840.10008.1.2",  # Implicit VR Little Endian (the default, PS3.5 10.1)
        "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    ]
    rest = sorted(ts for ts in TRANSFER_SYNTAXES if ts not in first)
    return first + rest


def _status(code: int, comment: str | None = None) -> Any:
    """A status Dataset with an Error Comment (LO, 64 chars at most) when there is one."""
    if not comment:
        return code
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment.replace("\\", "/")[:64]
    return ds


def _request_uids(event: Event) -> tuple[str, str]:
    req = event.request
    sop_class = str(getattr(req, "AffectedSOPClassUID", "") or "").rstrip("\0 ")
    sop_instance = str(getattr(req, "AffectedSOPInstanceUID", "") or "").rstrip("\0 ")
    return sop_class, sop_instance


def _calling_ae(assoc: Any) -> str | None:
    """The requestor's AE title (the Source AE Title of the stored file), or None."""
    title = getattr(getattr(assoc, "requestor", None), "ae_title", None)
    return str(title).strip() if title else None


def part10_spool_prefix(assoc: Any, context_id: int, command: bytes) -> bytes:
    """``AE.spool_prefix`` for storage SCPs: the Part 10 header (PS3.10 7.1) that
    :func:`store_received` will give the C-STORE data set being spooled, or b"" (not a
    C-STORE-RQ, or anything unusual: the data set is then copied behind its header as usual).

    With it a large received data set is written once, straight behind its future header, and
    the finished spool file is renamed into place (``FileStore.adopt``) -- no second copy.
    """
    try:
        from dicomnet.dimse.commands import decode_command

        elements = decode_command(command)
        if elements.get(0x0100) != 0x0001:  # CommandField: C-STORE-RQ (PS3.7 9.3.1.1)
            return b""
        sop_class = str(elements.get(0x0002) or "").rstrip("\0 ")
        sop_instance = str(elements.get(0x1000) or "").rstrip("\0 ")
        validate_uid(sop_class, "SOP Class UID")
        validate_uid(sop_instance, "SOP Instance UID")
        ts = getattr(assoc.context_by_id(context_id), "transfer_syntax", None)
        if not ts:
            return b""
        return encode_file_meta(
            sop_class, sop_instance, str(ts), source_ae_title=_calling_ae(assoc)
        )
    except Exception:  # never disturb reassembly: no prefix, the ordinary copy path
        return b""


def _spooled_meta(source: Any) -> tuple[str, int] | None:
    """(spool path, header length) of a spool file written behind a Part 10 header."""
    path = getattr(source, "path", None)
    offset = getattr(source, "offset", 0)
    if path is None or not offset or not getattr(source, "owned", False):
        return None
    return str(path), int(offset)


def store_received(
    event: Event,
    write: Callable[[str, str, str, Iterator[bytes | memoryview], str | None], object],
    adopt: Callable[[str, str, str, str, bytes], bool] | None = None,
) -> Any:
    """The common C-STORE handler body: validate, stream ``event.data_source`` through
    ``write(sop_class, sop_instance, transfer_syntax, chunks, calling_ae)`` and map every
    failure to its status (see the module docstring).

    A data set spooled behind exactly the header we would write (:func:`part10_spool_prefix`)
    is offered first to ``adopt(sop_class, sop_instance, ts, spool_path, header)``, which
    renames it into place and returns True (False: not adoptable, ``write`` copies it).
    """
    sop_class, sop_instance = _request_uids(event)
    source = event.data_source
    ts = getattr(event.context, "transfer_syntax", None)
    try:
        validate_uid(sop_instance, "SOP Instance UID")
        validate_uid(sop_class, "SOP Class UID")
    except InvalidUIDError as exc:
        LOG.warning("C-STORE refused: %s", clip(exc))
        return _status(STATUS_INVALID_UID, "invalid SOP Instance/Class UID")
    if source is None or not ts:
        return _status(STATUS_INVALID_UID, "no data set")
    calling_ae = _calling_ae(event.assoc)
    try:
        spooled = _spooled_meta(source)
        adopted = False
        if spooled is not None and adopt is not None:
            meta = encode_file_meta(sop_class, sop_instance, str(ts), source_ae_title=calling_ae)
            if len(meta) == spooled[1]:
                adopted = adopt(sop_class, sop_instance, str(ts), spooled[0], meta)
                if adopted:
                    source.detach()  # the file now belongs to the store
        if not adopted:
            write(sop_class, sop_instance, str(ts), source.iter_chunks(CHUNK), calling_ae)
    except StorageFullError as exc:
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return _status(STATUS_OUT_OF_RESOURCES, "storage full")
    except InvalidUIDError as exc:
        LOG.warning("C-STORE %s refused: %s", clip(sop_instance), clip(exc))
        return _status(STATUS_INVALID_UID, str(exc))
    except ArchiveError as exc:
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        text = str(exc)
        if "differs" in text or "does not match" in text:
            return _status(STATUS_MISMATCH, text)
        return _status(STATUS_PROCESSING_FAILURE, text)
    except OSError as exc:
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return _status(STATUS_PROCESSING_FAILURE, f"I/O error: {exc.strerror or exc}")
    except Exception as exc:  # a data set the index cannot read, etc.
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return _status(STATUS_UNABLE_TO_PROCESS, f"cannot understand: {exc}")
    LOG.info("stored %s", clip(sop_instance))
    return STATUS_SUCCESS


class DirectoryStore:
    """Received objects as ``<dir>/<SOPInstanceUID>.dcm`` (storescp, getscu, movescu).

    Uses FileStore's Part 10 writer (temp file in ``<dir>/.tmp`` + atomic rename); a duplicate
    SOP Instance UID replaces the earlier file.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.files = FileStore(directory)
        self.directory = self.files.root
        self.count = 0
        self._lock = threading.Lock()

    def path_for(self, sop_instance_uid: str) -> str:
        validate_uid(sop_instance_uid, "SOP Instance UID")
        return os.path.join(self.directory, sop_instance_uid + ".dcm")

    def write(
        self,
        sop_class: str,
        sop_instance: str,
        ts: str,
        chunks: Iterator[bytes | memoryview],
        calling_ae: str | None,
    ) -> str:
        final = self.path_for(sop_instance)
        pending = self.files.begin_write()
        try:
            self.files.write_part10(
                pending, sop_class, sop_instance, ts, chunks, source_ae_title=calling_ae
            )
        except BaseException:
            pending.discard()
            raise
        self.files.commit(pending, final)
        with self._lock:
            self.count += 1
        return final

    def adopt(self, sop_class: str, sop_instance: str, ts: str, path: str, meta: bytes) -> bool:
        """Rename a spool file already holding ``meta`` + data set into place (no copy)."""
        final = self.path_for(sop_instance)
        pending = self.files.adopt(path, meta)
        if pending is None:
            return False
        self.files.commit(pending, final)
        with self._lock:
            self.count += 1
        return True

    def handle_store(self, event: Event) -> Any:
        """EVT_C_STORE handler."""
        return store_received(event, self.write, self.adopt)


def _find_identifier(event: Event) -> Dataset:
    try:
        return event.identifier
    except Exception as exc:
        raise QueryError(f"cannot decode the identifier: {exc}", STATUS_UNABLE_TO_PROCESS) from exc


class Archive:
    """The Storage + Query/Retrieve SCP state: file store, index, move destinations."""

    def __init__(
        self,
        storage: str | os.PathLike[str] = "archive",
        db: str | os.PathLike[str] | None = None,
        *,
        destinations: Mapping[str, tuple[str, int]] | None = None,
        ae_title: str = "DICOMNET",
        recover: bool = True,
        durability: str = "fast",
        owner: bool | None = None,
    ) -> None:
        """``durability``: "safe" fsyncs every file and new directory before the success
        response and runs SQLite with ``synchronous=FULL`` (what ``qrscp`` does by default);
        "fast" relies on the page cache (a committed object survives a crash of the process,
        not a power loss). ``owner`` (default: ``recover``): this process owns the storage
        folder -- it takes the folder's lock (a second owner is refused with
        :class:`~dicomnet.archive.ownership.StorageInUseError`), runs the start-up check, and
        writes the clean-shutdown marker when closed."""
        from dicomnet.archive.index import ArchiveIndex
        from dicomnet.archive.ownership import ShutdownMarker, StorageLock

        if durability not in ("fast", "safe"):
            raise ValueError(f"durability must be 'fast' or 'safe', not {durability!r}")
        self.durability = durability
        safe = durability == "safe"
        self.files = FileStore(storage, fsync=safe)
        self.owner = recover if owner is None else owner
        self._lock = StorageLock(self.files.root) if self.owner else None
        self._marker = ShutdownMarker(self.files.root)
        db_path = os.fspath(db) if db is not None else os.path.join(self.files.root, "index.sqlite")
        try:
            self.index: ArchiveIndex = ArchiveIndex(db_path, durable=safe)
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self.db_path = db_path
        self.destinations = {k.strip(): v for k, v in (destinations or {}).items()}
        self.ae_title = ae_title
        if recover:
            clean = self._marker.take() if self.owner else False
            report = self.files.recover(self.index, full=not clean,
                                        since=self._marker.last_clean())  # fmt: skip
            if not report.clean:
                LOG.warning(
                    "recovery: %d temp file(s) removed, %d missing file(s) unindexed, "
                    "%d file(s) re-indexed, %d unreadable, %d quarantined",
                    len(report.temp_files_removed),
                    len(report.missing_files),
                    len(report.reindexed),
                    len(report.unreadable),
                    len(report.quarantined),
                )
        elif self.owner:
            self._marker.take()  # from now on a crash must be noticed

    def close(self, *, clean: bool = True) -> None:
        """Close the index; the owner then records a clean stop (``clean``) and gives the
        folder up."""
        close = getattr(self.index, "close", None)
        if close is not None:
            close()
        if self._lock is not None:
            if clean:
                self._marker.write()
            self._lock.release()
            self._lock = None

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        from dicomnet import events as evt
        from dicomnet.server import inline

        # Storing one object (a file write or rename, a scan of its first bytes, one SQLite
        # transaction: well under a millisecond for a CT) runs on the server's event loop: no
        # thread-pool hop and cross-thread wake-up per C-STORE (measured: ~20% of the server's
        # CPU per CT). Queries and retrieves stay in the handler pool.
        return [
            (evt.EVT_C_ECHO, inline(self.handle_echo)),
            (evt.EVT_C_STORE, inline(self.handle_store)),
            (evt.EVT_C_FIND, self.handle_find),
            (evt.EVT_C_GET, self.handle_get),
            (evt.EVT_C_MOVE, self.handle_move),
        ]

    def handle_echo(self, event: Event) -> int:
        return STATUS_SUCCESS

    def _write(
        self,
        sop_class: str,
        sop_instance: str,
        ts: str,
        chunks: Iterator[bytes | memoryview],
        calling_ae: str | None,
    ) -> object:
        return self.files.store(
            self.index, sop_class, sop_instance, ts, chunks, source_ae_title=calling_ae
        )

    def _adopt(self, sop_class: str, sop_instance: str, ts: str, path: str, meta: bytes) -> bool:
        pending = self.files.adopt(path, meta)
        if pending is None:
            return False
        self.files.store_adopted(self.index, pending, len(meta), sop_class, sop_instance, ts)
        return True

    def handle_store(self, event: Event) -> Any:
        """EVT_C_STORE: stream to a temp Part 10 file, rename, then index."""
        return store_received(event, self._write, self._adopt)

    def handle_find(self, event: Event) -> Iterator[tuple[int, Any]]:
        """EVT_C_FIND: one Pending response per match; FE00 on cancel."""
        try:
            model = model_of(getattr(event.request, "AffectedSOPClassUID", None))
            identifier = _find_identifier(event)
            matches = self.index.query(None, identifier, model, retrieve_ae_title=self.ae_title)
        except QueryError as exc:
            LOG.warning("C-FIND refused: %s", clip(exc))
            yield _status(exc.status, str(exc)), None
            return
        try:
            for match in matches:
                if event.is_cancelled:
                    yield STATUS_CANCEL, None
                    return
                yield STATUS_PENDING, match
        except QueryError as exc:
            LOG.warning("C-FIND failed: %s", clip(exc))
            yield _status(exc.status, str(exc)), None
        finally:
            close = getattr(matches, "close", None)
            if close is not None:
                close()

    def _retrieve_items(self, event: Event) -> RetrieveSet:
        model = model_of(getattr(event.request, "AffectedSOPClassUID", None))
        identifier = _find_identifier(event)
        return self.index.retrieve_set(None, identifier, model)

    def _retrieve(self, event: Event, items: RetrieveSet) -> Iterator[Any]:
        yield items.count
        try:
            for item in items:  # page by page, as the sub-operations go
                if event.is_cancelled:
                    yield STATUS_CANCEL, None
                    return
                yield STATUS_PENDING, item.path
        except QueryError as exc:
            LOG.warning("retrieve failed: %s", clip(exc))
            yield _status(exc.status, str(exc)), None

    def handle_get(self, event: Event) -> Iterator[Any]:
        """EVT_C_GET: the count, then one path per instance (C-STORE on this association;
        each converted if the requestor did not accept its transfer syntax)."""
        try:
            items = self._retrieve_items(event)
        except QueryError as exc:
            LOG.warning("C-GET refused: %s", clip(exc))
            yield 0
            yield _status(exc.status, str(exc)), None
            return
        yield from self._retrieve(event, items)

    def handle_move(self, event: Event) -> Iterator[Any]:
        """EVT_C_MOVE: the destination (with the presentation contexts every selected
        instance needs: its SOP class, its stored syntax and the uncompressed ones, each in a
        context of its own), the count, then one path per instance."""
        dest = (event.move_destination or "").strip()
        addr = self.destinations.get(dest)
        if addr is None:
            LOG.warning("C-MOVE to unknown destination %r", clip(dest))
            yield None, None
            return
        try:
            items = self._retrieve_items(event)
        except QueryError as exc:
            LOG.warning("C-MOVE refused: %s", clip(exc))
            yield addr
            yield 0
            yield _status(exc.status, str(exc)), None
            return
        contexts = move_contexts(items.pairs())
        yield (addr[0], addr[1], {"contexts": contexts} if contexts else {})
        yield from self._retrieve(event, items)


def move_contexts(items: Iterable[RetrieveItem | tuple[str, str]]) -> list[Any]:
    """The sub-association's presentation contexts for the instances of a C-MOVE, given as
    RetrieveItems or (SOP class, transfer syntax) pairs (PS3.8 9.3.2.2: at most 128;
    :func:`dicomnet.transcode.select.context_plan`)."""
    from dicomnet.archive.index import RetrieveItem
    from dicomnet.presentation import build_context
    from dicomnet.transcode.select import context_plan

    pairs: list[tuple[str, str | None]] = []
    for item in items:
        if isinstance(item, RetrieveItem):
            pairs.append((item.sop_class_uid, item.transfer_syntax_uid or None))
        else:
            pairs.append((item[0], item[1] or None))
    return [build_context(uid, list(ts)) for uid, ts in context_plan(pairs)]


def add_storage_contexts(
    ae: AE, *, scp_role: bool = False, transfer_syntaxes: Sequence[str] | None = None
) -> None:
    """Accept every storage SOP class, the retired ones included (old files still carry them),
    with ``transfer_syntaxes`` (default: :func:`storage_transfer_syntaxes`, everything we
    know, uncompressed first).

    ``scp_role``: also grant a requestor's role selection proposal (C-GET needs the peer to
    act as SCP of the storage classes on an association we accepted, PS3.7 D.3.3.4).
    """
    from dicomnet.presentation import storage_sop_classes
    from dicomnet.uid import RETIRED_STORAGE_SOP_CLASSES

    syntaxes = list(transfer_syntaxes) if transfer_syntaxes else storage_transfer_syntaxes()
    for uid in [*storage_sop_classes(), *RETIRED_STORAGE_SOP_CLASSES.values()]:
        if scp_role:
            ae.add_supported_context(uid, syntaxes, scu_role=True, scp_role=True)
        else:
            ae.add_supported_context(uid, syntaxes)


def archive_ae(ae_title: str = "DICOMNET") -> AE:
    """An AE accepting Verification, every storage SOP class and the Patient/Study Root
    Q/R FIND, GET and MOVE SOP classes."""
    from dicomnet.ae import AE

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(VERIFICATION, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    for uid in QR_CLASSES:
        ae.add_supported_context(uid, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    add_storage_contexts(ae, scp_role=True)
    return ae


def storage_ae(ae_title: str, transfer_syntaxes: Sequence[str] | None = None) -> AE:
    """An AE accepting Verification and every storage SOP class (storescp, movescu's storage
    SCP), with ``transfer_syntaxes`` (default: all we know, uncompressed first)."""
    from dicomnet.ae import AE

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(VERIFICATION, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    add_storage_contexts(ae, transfer_syntaxes=transfer_syntaxes)
    return ae
