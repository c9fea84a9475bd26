"""Receiving C-STORE data sets into files: the handler body shared by the archive and by
``storescp``/``getscu``/``movescu``.

Theory of operation
-------------------
:func:`store_received` is the common C-STORE handler body (PS3.4 Annex B): the received data
set (``event.data_source``, already encoded in the context's transfer syntax, possibly spooled
to disk) is streamed, never decoded, into a temp file behind a PS3.10 file meta header by the
``write`` callable it is given, and every failure becomes its status (an archive error
carries the one it is answered with, :mod:`dicomnet.archive.models`): an invalid SOP Instance
or Class UID 0xC010 before any path exists; a full disk 0xA700 (Refused: Out of Resources)
with no partial file; a data set of another instance than the request names 0xA900; a study
the archive holds for another patient 0xA778; other archive errors 0x0110; anything the index
cannot read 0xC000. A ``write`` that raises :class:`AlreadyStored` (the archive keeps the
first copy of a SOP Instance UID) is answered Success, and logged.

A data set spooled behind exactly the header we would write (:func:`part10_spool_prefix`, the
AE's ``spool_prefix``) is renamed into place instead of copied (``adopt``).

:class:`DirectoryStore` is the index-less store of ``storescp``, ``getscu`` and ``movescu
--store-port``: the same temp-file + atomic-rename writer, flat file names
``<SOPInstanceUID>.dcm`` under one directory; a duplicate replaces the earlier file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeAlias

from dicomnet.archive.models import (
    AlreadyStored,
    ArchiveError,
    InvalidUIDError,
    StorageFullError,
    StudyConflictError,
)
from dicomnet.archive.store import FileStore, encode_file_meta, validate_uid
from dicomnet.dimse import primitives as P
from dicomnet.dimse.commands import decode_command
from dicomnet.dimse.status import Status
from dicomnet.monitor import clip
from dicomnet.presentation import accepted_syntax_of

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.datasource import DataSource
    from dicomnet.events import Event
    from dicomnet.settings import ContextView

__all__ = [
    "CHUNK",
    "AlreadyStored",
    "DirectoryStore",
    "StatusResult",
    "part10_spool_prefix",
    "status",
    "store_received",
]

LOG = logging.getLogger("dicomnet.archive.scp")

CHUNK = 1 << 20  # bytes per write when streaming a received data set to disk

#: What a handler answers: a bare status code, or a status Dataset (Status, Error Comment).
StatusResult: TypeAlias = "int | Dataset"
#: ``write(sop_class, sop_instance, transfer_syntax, chunks, calling_ae)``
Writer: TypeAlias = Callable[[str, str, str, Iterator[bytes | memoryview], str | None], object]
#: ``adopt(sop_class, sop_instance, transfer_syntax, spool_path, header) -> adopted``
Adopter: TypeAlias = Callable[[str, str, str, str, bytes], bool]


def status(code: int, comment: str | None = None) -> StatusResult:
    """A status Dataset with an Error Comment (LO, 64 chars at most) when there is one, else
    the bare code as a plain ``int`` (what the service layer's fast paths take)."""
    if not comment:
        return int(code)
    # lazy: pydicom costs ~150 ms to import; only a status with a comment needs a Dataset
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Status = int(code)
    ds.ErrorComment = comment.replace("\\", "/")[:64]
    return ds


def _request_uids(event: Event) -> tuple[str, str]:
    req = event.request
    if not isinstance(req, P.C_STORE):
        return "", ""
    sop_class = str(req.AffectedSOPClassUID or "").rstrip("\0 ")
    sop_instance = str(req.AffectedSOPInstanceUID or "").rstrip("\0 ")
    return sop_class, sop_instance


def _calling_ae(title: str) -> str | None:
    """The requestor's AE title as the Source AE Title of the stored file, or None."""
    return title.strip() or None


def part10_spool_prefix(assoc: ContextView, context_id: int, command: bytes) -> bytes:
    """``AE.spool_prefix`` for storage SCPs: the Part 10 header (PS3.10 7.1) that
    :func:`store_received` will give the C-STORE data set being spooled, or b"" (not a
    C-STORE-RQ, or anything unusual: the data set is then copied behind its header as usual).

    With it a large received data set is written once, straight behind its future header, and
    the finished spool file is renamed into place (``FileStore.adopt``) -- no second copy.
    """
    try:
        elements = decode_command(command)
        if elements.get(0x0100) != 0x0001:  # CommandField: C-STORE-RQ (PS3.7 9.3.1.1)
            return b""
        sop_class = str(elements.get(0x0002) or "").rstrip("\0 ")
        sop_instance = str(elements.get(0x1000) or "").rstrip("\0 ")
        validate_uid(sop_class, "SOP Class UID")
        validate_uid(sop_instance, "SOP Instance UID")
        ts = assoc.transfer_syntax_of(context_id)
        if not ts:
            return b""
        return encode_file_meta(
            sop_class, sop_instance, str(ts), source_ae_title=_calling_ae(assoc.calling_ae_title)
        )
    except Exception:  # never disturb reassembly: no prefix, the ordinary copy path
        return b""


def _spooled_meta(source: DataSource) -> tuple[str, int] | None:
    """(spool path, header length) of a spool file written behind a Part 10 header."""
    path = source.path
    offset = source.offset
    if path is None or not offset or not source.owned:
        return None
    return str(path), int(offset)


def store_received(event: Event, write: Writer, adopt: Adopter | None = None) -> StatusResult:
    """The common C-STORE handler body: validate, stream ``event.data_source`` through
    ``write(sop_class, sop_instance, transfer_syntax, chunks, calling_ae)`` and map every
    failure to its status (see the module docstring): an archive error answers the
    ``status`` it carries.

    A data set spooled behind exactly the header we would write (:func:`part10_spool_prefix`)
    is offered first to ``adopt(sop_class, sop_instance, ts, spool_path, header)``, which
    renames it into place and returns True (False: not adoptable, ``write`` copies it).
    """
    sop_class, sop_instance = _request_uids(event)
    source: DataSource | None = event.data_source
    context = event.context
    ts = accepted_syntax_of(context)
    try:
        validate_uid(sop_instance, "SOP Instance UID")
        validate_uid(sop_class, "SOP Class UID")
    except InvalidUIDError as exc:
        LOG.warning("C-STORE refused: %s", clip(exc))
        return status(exc.status, "invalid SOP Instance/Class UID")
    if source is None or not ts:
        return status(Status.INVALID_UID, "no data set")
    calling_ae = _calling_ae(event.assoc.calling_ae_title)
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
    except AlreadyStored as exc:
        # the first copy stays (qrscp --overwrite replaces it): a truncated or edited file with
        # the same UID never silently replaces an intact one (PS3.4 B.2.2 leaves it to us)
        LOG.info("C-STORE %s: already stored, this copy is not kept", clip(sop_instance))
        return status(exc.status)
    except (StudyConflictError, InvalidUIDError) as exc:  # the peer's data set is refused
        LOG.warning("C-STORE %s refused: %s", clip(sop_instance), clip(exc))
        return status(exc.status, str(exc))
    except StorageFullError as exc:
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return status(exc.status, "storage full")
    except ArchiveError as exc:  # InstanceMismatchError (A900), anything else 0110
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return status(exc.status, str(exc))
    except OSError as exc:
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return status(Status.PROCESSING_FAILURE, f"I/O error: {exc.strerror or exc}")
    except Exception as exc:  # a data set the index cannot read, etc.
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return status(Status.CANNOT_UNDERSTAND, f"cannot understand: {exc}")
    LOG.info("stored %s", clip(sop_instance))
    return status(Status.SUCCESS)


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

    def handle_store(self, event: Event) -> StatusResult:
        """EVT_C_STORE handler."""
        return store_received(event, self.write, self.adopt)
