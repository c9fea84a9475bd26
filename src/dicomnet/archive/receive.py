"""Receiving C-STORE data sets into files: the handler body shared by the archive and by
``storescp``/``getscu``/``movescu``.

Theory of operation
-------------------
:func:`store_received` is the common C-STORE handler body (PS3.4 Annex B): the received data
set (``event.data_source``, already encoded in the context's transfer syntax, possibly spooled
to disk) is streamed, never decoded, into a temp file behind a PS3.10 file meta header by the
``write`` callable it is given, and every failure becomes its status: an invalid SOP Instance
or Class UID 0xC010 before any path exists; a full disk 0xA700 (Refused: Out of Resources)
with no partial file; a data set of another instance than the request names 0xA900; a study
the archive holds for another patient 0xA778 (:class:`~dicomnet.archive.index.StudyConflictError`);
anything the index cannot read 0xC000. A ``write`` that raises :class:`AlreadyStored` (the
archive keeps the first copy of a SOP Instance UID) is answered Success, and logged.

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
from typing import TYPE_CHECKING, Any

from dicomnet.archive.index import StudyConflictError
from dicomnet.archive.models import (
    ArchiveError,
    InvalidUIDError,
    StorageFullError,
)
from dicomnet.archive.store import FileStore, encode_file_meta, validate_uid
from dicomnet.monitor import clip

if TYPE_CHECKING:
    from dicomnet.events import Event

__all__ = [
    "CHUNK",
    "STATUS_INVALID_UID",
    "STATUS_MISMATCH",
    "STATUS_OUT_OF_RESOURCES",
    "STATUS_PROCESSING_FAILURE",
    "STATUS_SUCCESS",
    "STATUS_UNABLE_TO_PROCESS",
    "AlreadyStored",
    "DirectoryStore",
    "part10_spool_prefix",
    "status",
    "store_received",
]

LOG = logging.getLogger("dicomnet.archive.scp")

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # PS3.4 Table B.2-1 Refused: Out of Resources
STATUS_MISMATCH = 0xA900  # PS3.4 Table B.2-1 Error: Data Set does not match SOP Class
STATUS_INVALID_UID = 0xC010  # PS3.4 Table B.2-1 Error: Cannot understand (Cxxx)
STATUS_PROCESSING_FAILURE = 0x0110  # PS3.7 Annex C: Processing failure
STATUS_UNABLE_TO_PROCESS = 0xC000  # PS3.4 Table B.2-1 / C.4-1 (Cxxx)

CHUNK = 1 << 20  # bytes per write when streaming a received data set to disk


class AlreadyStored(ArchiveError):
    """The SOP Instance UID is already stored and the archive keeps the first copy."""


def status(code: int, comment: str | None = None) -> Any:
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
        return status(STATUS_INVALID_UID, "invalid SOP Instance/Class UID")
    if source is None or not ts:
        return status(STATUS_INVALID_UID, "no data set")
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
    except AlreadyStored:
        # the first copy stays (qrscp --overwrite replaces it): a truncated or edited file with
        # the same UID never silently replaces an intact one (PS3.4 B.2.2 leaves it to us)
        LOG.info("C-STORE %s: already stored, this copy is not kept", clip(sop_instance))
        return STATUS_SUCCESS
    except StudyConflictError as exc:
        LOG.warning("C-STORE %s refused: %s", clip(sop_instance), clip(exc))
        return status(exc.status, str(exc))
    except StorageFullError as exc:
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return status(STATUS_OUT_OF_RESOURCES, "storage full")
    except InvalidUIDError as exc:
        LOG.warning("C-STORE %s refused: %s", clip(sop_instance), clip(exc))
        return status(STATUS_INVALID_UID, str(exc))
    except ArchiveError as exc:
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        text = str(exc)
        if "differs" in text or "does not match" in text:
            return status(STATUS_MISMATCH, text)
        return status(STATUS_PROCESSING_FAILURE, text)
    except OSError as exc:
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return status(STATUS_PROCESSING_FAILURE, f"I/O error: {exc.strerror or exc}")
    except Exception as exc:  # a data set the index cannot read, etc.
        LOG.error("C-STORE %s: %s", clip(sop_instance), clip(exc))
        return status(STATUS_UNABLE_TO_PROCESS, f"cannot understand: {exc}")
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
