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
  0xA900 (Data Set does not match SOP Class). A duplicate SOP Instance UID keeps the first
  object and answers Success (a re-send is normal), unless ``overwrite`` is set.
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
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.archive import nonpatient
from dicomnet.archive.backend import Lease
from dicomnet.archive.fields import read_instance_fields
from dicomnet.archive.index import ArchiveIndex, RetrieveItem, RetrieveSet
from dicomnet.archive.models import Model, QueryError
from dicomnet.archive.ownership import ShutdownMarker, StorageInUseError, StorageLock, node_dir
from dicomnet.archive.query import QueryOptions
from dicomnet.archive.receive import (
    CHUNK,
    AlreadyStored,
    DirectoryStore,
    StatusResult,
    part10_spool_prefix,
    status,
    store_received,
)
from dicomnet.archive.storage import InstanceStorage
from dicomnet.archive.store import FileStore
from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Status
from dicomnet.monitor import clip
from dicomnet.presentation import VERIFICATION, PresentationContext, build_context
from dicomnet.server import inline
from dicomnet.sop_sets import storage_sop_classes
from dicomnet.transcode.select import context_plan
from dicomnet.transcode.syntax import is_native
from dicomnet.uid import RETIRED_STORAGE_SOP_CLASSES, TRANSFER_SYNTAXES
from dicomnet.ul.pdu import SOPClassExtendedNegotiation

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.events import Event, EventAssociation, EventType
    from dicomnet.services.sending import StoreInput

__all__ = [
    "CHUNK",
    "QR_CLASSES",
    "Archive",
    "DirectoryStore",
    "archive_ae",
    "model_of",
    "part10_spool_prefix",
    "query_options",
    "storage_transfer_syntaxes",
    "store_received",
]

LOG = logging.getLogger("dicomnet.archive.scp")

# Pending as a plain int, as yielded before: the service layer answers a C-FIND Pending that is
# exactly an ``int`` with the response it encoded once per request (``type(x) is int``).
_PENDING = int(Status.PENDING)

#: What a C-GET / C-MOVE handler yields (:mod:`dicomnet.services.qr`): C-MOVE first its
#: destination, ``(host, port[, {"contexts": [...]}])`` or ``(None, None)`` when unknown; then
#: the number of sub-operations; then ``(status, the instance to send)`` (what the storage's
#: ``source`` gives: for a file store, the path).
RetrieveYield: TypeAlias = (
    "int | tuple[StatusResult, StoreInput | None] | tuple[None, None] | tuple[str, int]"
    " | tuple[str, int, dict[str, list[PresentationContext]]]"
)

_QR = "1.2.840.10008.5.1.4.1.2."
#: The Q/R SOP classes the archive serves: UID -> (information model, operation). The
#: Hanging Protocol and Color Palette FIND classes are answered by
#: :mod:`dicomnet.archive.nonpatient`; their MOVE/GET classes retrieve by SOP Instance UID
#: as Composite Instance Root does (PS3.4 Annex U, X, Y).
QR_CLASSES: Mapping[str, tuple[Model, str]] = {
    _QR + "1.1": (Model.PATIENT_ROOT, "find"),
    _QR + "1.2": (Model.PATIENT_ROOT, "move"),
    _QR + "1.3": (Model.PATIENT_ROOT, "get"),
    _QR + "2.1": (Model.STUDY_ROOT, "find"),
    _QR + "2.2": (Model.STUDY_ROOT, "move"),
    _QR + "2.3": (Model.STUDY_ROOT, "get"),
    _QR + "3.1": (Model.PATIENT_STUDY_ONLY, "find"),  # retired (PS3.4-2004)
    _QR + "3.2": (Model.PATIENT_STUDY_ONLY, "move"),
    _QR + "3.3": (Model.PATIENT_STUDY_ONLY, "get"),
    _QR + "4.2": (Model.COMPOSITE, "move"),  # Composite Instance Root Retrieve (Annex Y)
    _QR + "4.3": (Model.COMPOSITE, "get"),
    # Composite Instance Retrieve Without Bulk Data (Annex Z): IMAGE level by SOP Instance UID,
    # sent without the Z.1.3 bulk data (dicomnet.services.bulk)
    _QR + "5.3": (Model.COMPOSITE, "get"),
    **{uid: (Model.COMPOSITE, "find") for uid in nonpatient.MODELS},
    **{uid: (Model.COMPOSITE, op) for uid, op in nonpatient.NONPATIENT_RETRIEVE.items()},
}
# PS3.4 C.5.1.1 / C.5.2.1: FIND answers relational queries, combined date-time matching,
# fuzzy semantic person name matching, timezone adjustment (not Enhanced Multi-Frame
# conversion); MOVE/GET relational retrieval. Worklist-style models (K.5.1, Annex U/X):
# bytes 1-2 are 1, fuzzy and timezone as offered.
_FIND_SUPPORT = b"\x01\x01\x01\x01\x00"
_RETRIEVE_SUPPORT = b"\x01\x00"


def model_of(sop_class_uid: str | None) -> Model:
    """The information model of a Q/R SOP class UID; QueryError(0xA900-range) otherwise."""
    entry = QR_CLASSES.get(str(sop_class_uid or "").rstrip("\0 "))
    if entry is None:
        raise QueryError(f"unsupported query/retrieve SOP class {sop_class_uid!r}")
    return entry[0]


def extended_answer(sop_class_uid: str, offered: bytes) -> bytes | None:
    """Our answer to a requestor's SOP class extended negotiation for a Q/R class (PS3.7
    D.3.3.5, PS3.4 C.5.1.1 / C.5.2.1 / C.5.3.1): each offered option we support echoed as 1,
    others 0, as many bytes as were offered; None for classes we do not negotiate."""
    entry = QR_CLASSES.get(sop_class_uid)
    if entry is None or not offered:
        return None
    model, op = entry
    if op == "find":
        support = b"\x01\x01\x01\x01" if model is Model.COMPOSITE else _FIND_SUPPORT
    elif model is Model.COMPOSITE:
        support = b"\x00\x00"  # Annex Y: byte 1 unused, no multi-frame conversion
    else:
        support = _RETRIEVE_SUPPORT
    answer = bytes(1 if i < len(support) and support[i] and offered[i] else 0
                   for i in range(len(offered)))  # fmt: skip
    if op == "find" and model is Model.COMPOSITE:  # K.5.1: bytes 1 and 2 are always 1
        answer = b"\x01\x01"[: len(offered)] + answer[2:]
    return answer


def negotiated(assoc: EventAssociation, sop_class_uid: str) -> bytes:
    """The service-class application information we answered for ``sop_class_uid`` on this
    association (b"" when none was negotiated)."""
    for item in assoc.acceptor.extended_negotiation:
        if isinstance(item, SOPClassExtendedNegotiation) and item.sop_class_uid == sop_class_uid:
            return bytes(item.service_class_application_information or b"")
    return b""


def query_options(assoc: EventAssociation, sop_class_uid: str, *, strict: bool,
                  retrieve_ae_title: str | None) -> QueryOptions:  # fmt: skip
    """The matching options of a C-FIND on this association (what extended negotiation
    agreed; ``strict``: hierarchical rules unless relational queries were agreed)."""
    info = negotiated(assoc, sop_class_uid)

    def flag(i: int) -> bool:
        return len(info) > i and info[i] == 1

    return QueryOptions(strict=strict and not flag(0), combined_datetime=flag(1),
                        fuzzy_names=flag(2), timezone_adjust=flag(3),
                        retrieve_ae_title=retrieve_ae_title)  # fmt: skip


def storage_transfer_syntaxes() -> list[str]:
    """Transfer syntaxes a storage SCP accepts, in preference order: the uncompressed ones
    first (every SCU has them), then every compressed one we know (stored as received)."""
    first = [
        "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
        "1.2.840.10008.1.2",  # Implicit VR Little Endian (the default, PS3.5 10.1)
        "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    ]
    rest = sorted(ts for ts in TRANSFER_SYNTAXES if ts not in first)
    return first + rest


def _find_identifier(event: Event) -> Dataset:
    try:
        return event.identifier
    except Exception as exc:
        raise QueryError(f"cannot decode the identifier: {exc}", Status.CANNOT_UNDERSTAND) from exc


class Archive:
    """The Storage + Query/Retrieve SCP state: file store, index, move destinations."""

    def __init__(
        self,
        storage: str | os.PathLike[str] | InstanceStorage = "archive",
        db: str | os.PathLike[str] | None = None,
        *,
        destinations: Mapping[str, tuple[str, int]] | None = None,
        ae_title: str = "DICOMNET",
        recover: bool = True,
        durability: str = "fast",
        owner: bool | None = None,
        study_conflict: str = "reject",
        overwrite: bool = False,
        strict_hierarchical: bool = False,
        node: str | None = None,
    ) -> None:
        """``durability``: "safe" fsyncs every file and new directory before the success
        response and runs SQLite with ``synchronous=FULL`` (what ``qrscp`` does by default);
        "fast" relies on the page cache (a committed object survives a crash of the process,
        not a power loss). ``owner`` (default: ``recover``): this process owns the storage
        folder -- it takes the folder's lock (a second owner is refused with
        :class:`~dicomnet.archive.ownership.StorageInUseError`), runs the start-up check, and
        writes the clean-shutdown marker when closed. ``study_conflict``: a study arriving
        under a second patient identity is refused (A778, "reject") or kept beside the first
        ("accept"). ``overwrite``: a second C-STORE of a stored SOP Instance UID replaces it
        (default: the first copy is kept and the second answered Success, as Orthanc does).
        ``strict_hierarchical``: queries and retrieves of a peer that did not negotiate
        relational ones follow the hierarchical rules (A900 otherwise). ``node``: this
        archive's name when several nodes share ``storage`` and one PostgreSQL index
        (:mod:`dicomnet.archive.ownership`): its own spool, lock, markers and lease; the index
        must have been made for the same storage path (every node mounts the shared folder at
        one path). ``storage`` is a folder (a :class:`~dicomnet.archive.store.FileStore` is
        made there, with ``durability`` and ``node``) or an
        :class:`~dicomnet.archive.storage.InstanceStorage` of the caller's own."""
        if durability not in ("fast", "safe"):
            raise ValueError(f"durability must be 'fast' or 'safe', not {durability!r}")
        self.on_stored: Callable[[str], None] | None = None
        """Called with the SOP Instance UID of every instance a C-STORE stored."""
        self.durability = durability
        safe = durability == "safe"
        self.node = node
        #: where the instances live (:class:`~dicomnet.archive.storage.InstanceStorage`)
        self.files: InstanceStorage = (FileStore(storage, fsync=safe, node=node)
                                       if isinstance(storage, str | os.PathLike) else storage)  # fmt: skip
        self.owner = recover if owner is None else owner
        #: where this archive (node) keeps its own state: markers, audit trail, metrics
        self.state_dir = node_dir(self.files.root, node) if node else self.files.root
        self._lock = StorageLock(self.files.root, node) if self.owner else None
        self._lease: Lease | None = None
        self._marker = ShutdownMarker(self.state_dir)
        db_path = os.fspath(db) if db is not None else os.path.join(self.files.root, "index.sqlite")
        index: ArchiveIndex | None = None
        try:
            self.index = index = ArchiveIndex(db_path, durable=safe, study_conflict=study_conflict)
            index.open_stored = self.files.open  # return keys read from the stored instance
            if self.index.upgraded_from == 1:
                LOG.warning("index %s upgraded to schema version 2 (patients by Patient ID "
                            "and Issuer, per-study patient attributes)", db_path)  # fmt: skip
            if node is not None:
                self._join(node)
            else:
                moved = self.index.rebase(self.files.root) if self.owner else 0
                if moved:
                    LOG.warning("index: %d path(s) rebased to %s (the storage folder moved)",
                                moved, self.files.root)  # fmt: skip
            if self.index.upgraded_from == 1:
                self.index.refill_study_patients(lambda path: read_instance_fields(path)[0])
        except BaseException:
            if index is not None:
                index.close()
            if self._lease is not None:
                self._lease.close()
            if self._lock is not None:
                self._lock.release()
            raise
        self.db_path = db_path
        self.destinations = {k.strip(): v for k, v in (destinations or {}).items()}
        self.ae_title = ae_title
        # On PostgreSQL the first-copy check rides on the file store's check before the file
        # is put in place (FileStore.store -> ArchiveIndex.check_conflict): one round trip per
        # C-STORE instead of two, a duplicate written to a temp file first and dropped. SQLite
        # answers it in-process before anything is written.
        self._first_copy_at_put = (self.index.backend.name != "sqlite"
                                   and isinstance(self.files, FileStore))  # fmt: skip
        self.overwrite = overwrite
        self.strict_hierarchical = strict_hierarchical
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

    def _join(self, node: str) -> None:
        """A node starting: hold its lease in the index database (the owner), and check the
        index was made for this storage path (the stored paths are absolute)."""
        if self.owner:
            self._lease = self.index.backend.lease("dicomnet-node:" + node)
            if self._lease is None:
                raise StorageInUseError(f"node {node!r} is running on another host (its lease "
                                        "in the index database is held)")  # fmt: skip
        root = self.index.storage_root()
        if root is None and self.owner:
            self.index.rebase(self.files.root)  # a new index: remember the storage path
        elif root is not None and root != self.files.root:
            raise StorageInUseError(
                f"the index was made for the storage folder {root}, this node has "
                f"{self.files.root}: every node must mount the shared storage at one path"
            )

    def close(self, *, clean: bool = True) -> None:
        """Close the index; the owner then records a clean stop (``clean``) and gives the
        folder up."""
        self.index.close()
        if self._lease is not None:
            self._lease.close()
            self._lease = None
        if self._lock is not None:
            if clean:
                self._marker.write()
            self._lock.release()
            self._lock = None

    def clean(self) -> tuple[int, int]:
        """Delete every stored instance and its index entries (``qrscp --clean``): each row
        first, then its file, so that the index never names a missing file. The workflow
        state (worklist, MPPS, UPS, commitment) stays. Returns (instances removed, files
        that could not be deleted)."""
        removed = stuck = 0
        for sop_uid, path in list(self.index.iter_paths()):
            if self.index.remove_instance(sop_uid, path=path) is None:
                continue  # replaced or removed meanwhile
            removed += 1
            if not self.files.remove(path):
                LOG.error("could not delete %s", path)
                stuck += 1
        return removed, stuck

    def handlers(self) -> list[tuple[EventType, Callable[[Event], object]]]:
        # Storing one object (a file write or rename, a scan of its first bytes, one SQLite
        # transaction: well under a millisecond for a CT) runs on the server's event loop: no
        # thread-pool hop and cross-thread wake-up per C-STORE (measured: ~20% of the server's
        # CPU per CT). Queries and retrieves stay in the handler pool.
        # A PostgreSQL index answers over the network (several round trips per instance, and
        # a server that went away makes a statement wait): C-STORE then runs in the pool too.
        on_loop = self.index.backend.name == "sqlite"
        return [
            (evt.EVT_C_ECHO, inline(self.handle_echo)),
            (evt.EVT_C_STORE, inline(self.handle_store) if on_loop else self.handle_store),
            (evt.EVT_C_FIND, self.handle_find),
            (evt.EVT_C_GET, self.handle_get),
            (evt.EVT_C_MOVE, self.handle_move),
            (evt.EVT_SOP_EXTENDED, self.handle_extended),
        ]

    def handle_echo(self, event: Event) -> StatusResult:
        return status(Status.SUCCESS)

    def handle_extended(self, event: Event) -> dict[str, bytes]:
        """EVT_SOP_EXTENDED: what the Q/R classes agree to (:func:`extended_answer`)."""
        out: dict[str, bytes] = {}
        for uid, offered in (event.app_info or {}).items():
            answer = extended_answer(uid, bytes(offered or b""))
            if answer is not None:
                out[uid] = answer
        return out

    def _write(
        self,
        sop_class: str,
        sop_instance: str,
        ts: str,
        chunks: Iterator[bytes | memoryview],
        calling_ae: str | None,
    ) -> object:
        self._keep_first(sop_instance)
        return self.files.store(
            self.index, sop_class, sop_instance, ts, chunks, source_ae_title=calling_ae
        )

    @property
    def overwrite(self) -> bool:
        """A second C-STORE of a stored SOP Instance UID replaces it (else the first copy is
        kept, and the second answered Success)."""
        return self._overwrite

    @overwrite.setter
    def overwrite(self, value: bool) -> None:
        self._overwrite = value
        self.index.keep_first = self._first_copy_at_put and not value

    def _keep_first(self, sop_instance: str) -> None:
        if self._overwrite or self.index.keep_first:  # nothing to keep, or checked at the put
            return
        if self.index.get_instance(sop_instance) is not None:
            raise AlreadyStored(sop_instance)

    def _adopt(self, sop_class: str, sop_instance: str, ts: str, path: str, meta: bytes) -> bool:
        self._keep_first(sop_instance)
        pending = self.files.adopt(path, meta)
        if pending is None:
            return False
        self.files.store_adopted(self.index, pending, len(meta), sop_class, sop_instance, ts)
        return True

    def handle_store(self, event: Event) -> StatusResult:
        """EVT_C_STORE: stream to a temp Part 10 file, rename, then index; ``on_stored`` (e.g.
        the Instance Availability notifier) hears of each instance stored."""
        result = store_received(event, self._write, self._adopt)
        hook = self.on_stored
        if hook is not None and _code(result) == Status.SUCCESS:
            request = event.request
            if isinstance(request, P.C_STORE) and request.AffectedSOPInstanceUID:
                try:
                    hook(str(request.AffectedSOPInstanceUID))
                except Exception:  # a notification problem never fails a store
                    LOG.exception("on_stored hook failed")
        return result

    def handle_find(self, event: Event) -> Iterator[tuple[StatusResult, Dataset | None]]:
        """EVT_C_FIND: one Pending response per match; FE00 on cancel."""
        try:
            request = event.request
            if not isinstance(request, P.C_FIND):
                raise QueryError(f"not a C-FIND request: {request!r}")
            sop_class = str(request.AffectedSOPClassUID or "")
            model = model_of(sop_class)
            identifier = _find_identifier(event)
            matches: Generator[Dataset, None, None]
            if sop_class in nonpatient.MODELS:
                matches = nonpatient.find(self.index, sop_class, identifier)
            else:
                options = query_options(event.assoc, sop_class, strict=self.strict_hierarchical,
                                        retrieve_ae_title=self.ae_title)  # fmt: skip
                matches = self.index.query(None, identifier, model, options=options)
        except QueryError as exc:
            LOG.warning("C-FIND refused: %s", clip(exc))
            yield status(exc.status, str(exc)), None
            return
        try:
            for match in matches:
                if event.is_cancelled:
                    yield Status.CANCEL, None
                    return
                yield _PENDING, match
        except QueryError as exc:
            LOG.warning("C-FIND failed: %s", clip(exc))
            yield status(exc.status, str(exc)), None
        finally:
            matches.close()

    def _retrieve_items(self, event: Event) -> RetrieveSet:
        request = event.request
        if not isinstance(request, P.C_GET | P.C_MOVE):
            raise QueryError(f"not a C-GET/C-MOVE request: {request!r}")
        sop_class = str(request.AffectedSOPClassUID or "")
        model = model_of(sop_class)
        identifier = _find_identifier(event)
        relational = negotiated(event.assoc, sop_class)[:1] == b"\x01"
        return self.index.retrieve_set(None, identifier, model,
                                       strict=self.strict_hierarchical and not relational)  # fmt: skip

    def _retrieve(self, event: Event, items: RetrieveSet) -> Iterator[RetrieveYield]:
        yield items.count
        source = self.files.source  # what each sub-operation sends (a file store: the path)
        try:
            for item in items:  # page by page, as the sub-operations go
                if event.is_cancelled:
                    yield Status.CANCEL, None
                    return
                yield _PENDING, source(item.path)
        except QueryError as exc:
            LOG.warning("retrieve failed: %s", clip(exc))
            yield status(_retrieve_code(exc.status, Status.OUT_OF_RESOURCES_SUBOPERATIONS),
                         str(exc)), None  # fmt: skip

    def handle_get(self, event: Event) -> Iterator[RetrieveYield]:
        """EVT_C_GET: the count, then one path per instance (C-STORE on this association;
        each converted if the requestor did not accept its transfer syntax)."""
        try:
            items = self._retrieve_items(event)
        except QueryError as exc:
            LOG.warning("C-GET refused: %s", clip(exc))
            yield 0
            yield status(_retrieve_code(exc.status, Status.OUT_OF_RESOURCES_MATCHES),
                         str(exc)), None  # fmt: skip
            return
        yield from self._retrieve(event, items)

    def handle_move(self, event: Event) -> Iterator[RetrieveYield]:
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
            contexts = move_contexts(items.pairs())
        except QueryError as exc:
            LOG.warning("C-MOVE refused: %s", clip(exc))
            yield addr
            yield 0
            yield status(_retrieve_code(exc.status, Status.OUT_OF_RESOURCES_MATCHES),
                         str(exc)), None  # fmt: skip
            return
        yield (addr[0], addr[1], {"contexts": contexts} if contexts else {})
        yield from self._retrieve(event, items)


def _retrieve_code(code: int, out_of_resources: int) -> int:
    """A C-GET/C-MOVE failure status: the index being unreachable (A700, C-FIND's "out of
    resources") is A701 before the matches are counted and A702 once sub-operations have
    started (PS3.4 C.4.2.1.5, C.4.3.1.4)."""
    return out_of_resources if code == Status.OUT_OF_RESOURCES else code


def move_contexts(items: Iterable[RetrieveItem | tuple[str, str]]) -> list[PresentationContext]:
    """The sub-association's presentation contexts for the instances of a C-MOVE, given as
    RetrieveItems or (SOP class, transfer syntax) pairs (PS3.8 9.3.2.2: at most 128;
    :func:`dicomnet.transcode.select.context_plan`)."""
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
    syntaxes = list(transfer_syntaxes) if transfer_syntaxes else storage_transfer_syntaxes()
    for uid in [*storage_sop_classes(), *RETIRED_STORAGE_SOP_CLASSES.values()]:
        if scp_role:
            ae.add_supported_context(uid, syntaxes, scu_role=True, scp_role=True)
        else:
            ae.add_supported_context(uid, syntaxes)



def archive_ae(ae_title: str = "DICOMNET") -> AE:
    """An AE accepting Verification, every storage SOP class and the Patient/Study Root
    Q/R FIND, GET and MOVE SOP classes."""
    ae = AE(ae_title=ae_title)
    ae.add_supported_context(VERIFICATION, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    for uid in QR_CLASSES:
        ae.add_supported_context(uid, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    add_storage_contexts(ae, scp_role=True)
    return ae


def storage_ae(ae_title: str, transfer_syntaxes: Sequence[str] | None = None) -> AE:
    """An AE accepting Verification and every storage SOP class (storescp, movescu's storage
    SCP), with ``transfer_syntaxes`` (default: all we know, uncompressed first). Verification
    takes the uncompressed ones among them, in their order (``+xi``: Implicit VR Little Endian
    only, ``+xb``: big endian first, as DCMTK's storescp answers a C-ECHO)."""
    ae = AE(ae_title=ae_title)
    # a C-ECHO has no data set: any uncompressed syntax (deflate included) will do
    echo = [ts for ts in transfer_syntaxes or () if is_native(ts)]
    ae.add_supported_context(VERIFICATION, echo or ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    add_storage_contexts(ae, transfer_syntaxes=transfer_syntaxes)
    return ae


def _code(result: StatusResult) -> int:
    return result if isinstance(result, int) else int(result.Status)
