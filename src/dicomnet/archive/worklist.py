"""Modality Worklist SCP (PS3.4 Annex K): worklist items from a folder and from the library,
answered to C-FIND on the Modality Worklist Information Model - FIND SOP class.

Theory of operation
-------------------
A :class:`WorklistStore` holds worklist items (pydicom ``Dataset``s, each one Scheduled
Procedure Step of a Requested Procedure, PS3.4 K.6.1) from two sources:

* **A folder** (optional). Every regular file directly in it (and in its subfolders when
  ``recursive``) is a worklist item: a DICOM file (PS3.10, or a bare data set in any transfer
  syntax pydicom recognises, such as the ``.wl`` files of DCMTK's wlmscpfs) or a DICOM JSON file
  (PS3.18 F.2: one object, or an array of objects -- one item each). Names beginning with ``.``
  and ending in ``~``, ``.tmp``, ``.part`` or ``.swp`` are ignored, so a writer can create a file
  under such a name and rename it when complete. A file that cannot be read, is not DICOM, has no
  Scheduled Procedure Step Sequence (0040,0100) (Type 1 in PS3.4 Table K.6-1; not a worklist
  item) or is larger than ``max_file_size`` is skipped with one log line, logged again only once
  it changes.

  There is no watcher thread and no polling: each query first *refreshes* the folder -- one
  directory listing and one ``stat`` per file, compared with the snapshot of the previous
  query (modification time in ns, size, inode). Only new and changed files are read; files no
  longer listed leave. So a file dropped in is served by the next query, a removed one is gone
  from the next query, and an idle store costs nothing.
* **The library**: :meth:`WorklistStore.add` takes a data set and returns its key,
  :meth:`WorklistStore.remove` takes it away.

Each item is decoded once, when read or added, with its own Specific Character Set (PS3.5 6.1)
and kept as Unicode (:func:`dicomnet.archive.worklist_match.prepare_item`); the store never
changes an item after that, so concurrent queries read it without a lock (each response is
built from copies of its elements).

:meth:`WorklistStore.find` compiles the Identifier (:mod:`dicomnet.archive.worklist_match`:
matching per PS3.4 K.2.2 / C.2.2.2, sequence matching on the Scheduled Procedure Step Sequence,
combined Start Date + Start Time, return keys, character sets), refreshes the folder, and
yields one response Identifier per matching item: folder items in path order, then library
items in the order they were added. It raises
:class:`~dicomnet.archive.models.QueryError` before yielding anything when the Identifier is
malformed.

:func:`worklist_handler` makes an ``EVT_C_FIND`` handler of a store (PS3.4 K.4.1.2, K.4.1.1.4):
one Pending (0xFF00) response per match, ``event.is_cancelled`` looked at between matches (a
C-CANCEL ends the operation with 0xFE00), Success (0x0000, sent by the service layer) at the
end; an Identifier that cannot be decoded or used fails with 0xC000 (unable to process) or
0xA900 (Identifier does not match SOP Class). The handler's ``sop_classes`` attribute names the
SOP class it answers, which is how ``dicomnet.cli.qrscp_workflow.handlers`` shares
``EVT_C_FIND`` with the archive's Query/Retrieve handler. Outside qrscp, :func:`find_router`
does that sharing by the request's Affected SOP Class UID, and :func:`with_worklist` applies it
to a handler list such as :meth:`dicomnet.archive.scp.Archive.handlers`;
:func:`add_worklist_context` makes an AE accept the SOP class.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomnet import events as evt
from dicomnet.archive.models import QueryError
from dicomnet.archive.receive import StatusResult, status
from dicomnet.archive.worklist_match import WorklistQuery, compile_query, prepare_item
from dicomnet.dimse.status import Status
from dicomnet.monitor import clip

if TYPE_CHECKING:
    from dicomnet.ae import AE
    from dicomnet.events import Event, EventType

__all__ = [
    "WORKLIST_FIND",
    "WorklistFileError",
    "WorklistFindHandler",
    "WorklistStore",
    "add_worklist_context",
    "find_router",
    "read_worklist_file",
    "with_worklist",
    "worklist_handler",
]

LOG = logging.getLogger("dicomnet.archive.worklist")

#: Modality Worklist Information Model - FIND (PS3.4 K.6.1.1)
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"

#: What a C-FIND handler yields: (status, response Identifier or None).
FindYield: TypeAlias = "tuple[StatusResult, Dataset | None]"

_PENDING = int(Status.PENDING)  # a plain int: the service layer's fast path (see archive.scp)
_TAG_SPS = 0x00400100  # Scheduled Procedure Step Sequence
_IGNORED_SUFFIXES = ("~", ".tmp", ".part", ".swp")
_MEMORY_PREFIX = "mem:"
_FILE_PREFIX = "file:"

_Stamp: TypeAlias = tuple[int, int, int]  # st_mtime_ns, st_size, st_ino


@dataclass(frozen=True, slots=True)
class _Item:
    key: str
    dataset: Dataset  # prepared: decoded, never changed again
    charset: tuple[str, ...]  # the item's own Specific Character Set terms


@dataclass(frozen=True, slots=True)
class _FileEntry:
    stamp: _Stamp
    items: tuple[_Item, ...]  # () when the file was skipped


class WorklistFileError(ValueError):
    """A file in the worklist folder that is not a worklist item (the reason is the text)."""


def read_worklist_file(path: str | os.PathLike[str]) -> list[Dataset]:
    """The worklist items of one file: a DICOM file (PS3.10 or a bare data set) or a DICOM JSON
    file (an object or an array of objects, PS3.18 F.2). Raises :class:`WorklistFileError`
    (or OSError) when the file is none of these or an item has no Scheduled Procedure Step
    Sequence (0040,0100)."""
    with open(path, "rb") as f:
        data = f.read()
    return _parse(data)


def _parse(data: bytes) -> list[Dataset]:
    head = data[:64].lstrip(b" \t\r\n\xef\xbb\xbf")  # JSON may open with whitespace or a BOM
    datasets: list[Dataset] = []
    if head[:1] in (b"{", b"["):
        try:
            parsed = json.loads(data.decode("utf-8-sig"))
            objects = parsed if isinstance(parsed, list) else [parsed]
            for obj in objects:
                if not isinstance(obj, dict):
                    raise WorklistFileError("a DICOM JSON array holds an element that is no object")
                datasets.append(Dataset.from_json(obj))
        except WorklistFileError:
            raise
        except Exception as exc:
            raise WorklistFileError(f"not DICOM JSON: {exc}") from exc
    else:
        try:
            # force: bare data sets (no preamble/meta header) are common worklist files; a
            # non-DICOM file then fails below (no Scheduled Procedure Step Sequence) or here
            datasets.append(dcmread(io.BytesIO(data), force=True, stop_before_pixels=True))
        except Exception as exc:
            raise WorklistFileError(f"not DICOM: {exc}") from exc
    for ds in datasets:
        _check_item(ds)
    return datasets


def _check_item(ds: Dataset) -> None:
    try:
        sps = ds.get(_TAG_SPS)
        ok = sps is not None and sps.VR == "SQ" and len(sps.value or ()) > 0
    except Exception as exc:  # a bare non-DICOM file read with force: garbage elements
        raise WorklistFileError(f"not DICOM: {exc}") from exc
    if not ok:
        raise WorklistFileError(
            "no Scheduled Procedure Step Sequence (0040,0100): not a worklist item"
        )


def _prepare(key: str, ds: Dataset) -> _Item:
    try:
        prepared, charset = prepare_item(ds)
    except Exception as exc:  # a value pydicom cannot decode, deep inside the file
        raise WorklistFileError(f"unreadable: {exc}") from exc
    return _Item(key, prepared, charset)


class WorklistStore:
    """Worklist items from a folder (refreshed at query time) and from :meth:`add`.

    ``folder``: the folder to serve (None: library items only); it must exist. ``recursive``:
    also serve the files of its subfolders. ``max_file_size``: larger files are skipped (a
    worklist item is a few KB; this keeps a stray image or archive out of memory).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        *,
        recursive: bool = False,
        max_file_size: int = 16 * 1024 * 1024,
    ) -> None:
        self.folder = None if folder is None else os.path.abspath(os.fspath(folder))
        if self.folder is not None and not os.path.isdir(self.folder):
            raise NotADirectoryError(f"worklist folder {self.folder!r} is not a directory")
        self.recursive = recursive
        self.max_file_size = max_file_size
        self._lock = threading.Lock()
        self._files: dict[str, _FileEntry] = {}  # relative path -> what it held
        self._memory: dict[str, _Item] = {}  # key -> item, in the order added
        self._folder_error: str | None = None
        # read the folder now, not in the first query (a server starts before it is asked)
        self.refresh()

    # --- library items ------------------------------------------------------------------------

    def add(self, dataset: Dataset) -> str:
        """Add a worklist item (copied; decoded with its own Specific Character Set) and
        return its key. ValueError if it has no Scheduled Procedure Step Sequence (0040,0100)
        or cannot be decoded."""
        if not isinstance(dataset, Dataset):
            raise TypeError(f"a worklist item is a pydicom Dataset, not {type(dataset).__name__}")
        item_ds = copy.deepcopy(dataset)  # the item must not share values with the caller
        key = _MEMORY_PREFIX + uuid.uuid4().hex
        _check_item(item_ds)
        item = _prepare(key, item_ds)
        with self._lock:
            self._memory[key] = item
        return key

    def remove(self, key: str) -> None:
        """Remove the item :meth:`add` returned ``key`` for; KeyError if there is none (items
        of the folder leave when their file is deleted)."""
        with self._lock:
            if key not in self._memory:
                raise KeyError(key)
            del self._memory[key]

    # --- the folder ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the folder snapshot up to date: read new and changed files, drop removed
        ones (called by :meth:`find`; cheap when nothing changed)."""
        if self.folder is None:
            return
        with self._lock:
            listing = self._list()
            files: dict[str, _FileEntry] = {}
            for name, (path, stamp) in listing.items():
                old = self._files.get(name)
                files[name] = old if old is not None and old.stamp == stamp else self._load(
                    name, path, stamp)  # fmt: skip
            for name in self._files.keys() - files.keys():
                LOG.info("worklist: %s removed", clip(name))
            self._files = files

    def _list(self) -> dict[str, tuple[str, _Stamp]]:
        assert self.folder is not None
        found: dict[str, tuple[str, _Stamp]] = {}
        try:
            self._scan(self.folder, "", found)
        except OSError as exc:
            if self._folder_error != str(exc):
                LOG.warning("worklist folder unreadable, no folder items served: %s", exc)
                self._folder_error = str(exc)
            return {}
        if self._folder_error is not None:
            LOG.warning("worklist folder %s readable again", self.folder)
            self._folder_error = None
        return found

    def _scan(self, directory: str, prefix: str, found: dict[str, tuple[str, _Stamp]]) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):  # no link loops
                        if self.recursive:
                            self._scan(entry.path, prefix + name + "/", found)
                        continue
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except OSError:
                    # removed while we listed, a dangling link, an unreadable subfolder
                    continue
                found[prefix + name] = (entry.path, (st.st_mtime_ns, st.st_size, st.st_ino))

    def _load(self, name: str, path: str, stamp: _Stamp) -> _FileEntry:
        if stamp[1] > self.max_file_size:
            LOG.warning("worklist: %s skipped: %d bytes, more than %d", clip(name), stamp[1],
                        self.max_file_size)  # fmt: skip
            return _FileEntry(stamp, ())
        try:
            datasets = read_worklist_file(path)
            base = _FILE_PREFIX + name
            keys = [base] if len(datasets) == 1 else [f"{base}#{i}" for i in range(len(datasets))]
            items = tuple(_prepare(k, ds) for k, ds in zip(keys, datasets, strict=True))
        except (OSError, WorklistFileError) as exc:
            LOG.warning("worklist: %s skipped: %s", clip(name), clip(exc))
            return _FileEntry(stamp, ())
        LOG.info("worklist: %s read (%d item%s)", clip(name), len(items),
                 "" if len(items) == 1 else "s")  # fmt: skip
        return _FileEntry(stamp, items)

    # --- queries ------------------------------------------------------------------------------

    def _snapshot(self) -> list[_Item]:
        with self._lock:
            out = [item for name in sorted(self._files) for item in self._files[name].items]
            out.extend(self._memory.values())
        return out

    def items(self) -> list[tuple[str, Dataset]]:
        """(key, item) of every item served now (after a refresh). The data sets are the
        store's decoded items, without their Specific Character Set: do not change them."""
        self.refresh()
        return [(item.key, item.dataset) for item in self._snapshot()]

    def __len__(self) -> int:
        self.refresh()
        return len(self._snapshot())

    def find(self, identifier: Dataset) -> Iterator[Dataset]:
        """The response Identifiers of a C-FIND ``identifier`` (see the module docstring).
        A malformed identifier raises :class:`QueryError` here, before anything is yielded."""
        compiled = compile_query(identifier)
        self.refresh()
        return _answers(compiled, self._snapshot())


def _answers(compiled: WorklistQuery, items: list[_Item]) -> Iterator[Dataset]:
    for item in items:
        response = compiled.answer(item.dataset, item.charset)
        if response is not None:
            yield response


# --- the SCP ----------------------------------------------------------------------------------


def _identifier(event: Event) -> Dataset:
    try:
        identifier = event.identifier
    except Exception as exc:
        raise QueryError(f"cannot decode the identifier: {exc}", Status.CANNOT_UNDERSTAND) from exc
    if not isinstance(identifier, Dataset):
        raise QueryError("the C-FIND request has no identifier", Status.CANNOT_UNDERSTAND)
    return identifier


def _sop_class(event: Event) -> str:
    request = event.request
    return str(getattr(request, "AffectedSOPClassUID", None) or "").rstrip("\0 ")


class WorklistFindHandler:
    """The ``EVT_C_FIND`` handler of a :class:`WorklistStore` (:func:`worklist_handler`).

    ``sop_classes`` names what it answers, for a caller that shares ``EVT_C_FIND`` between
    several handlers (``dicomnet.cli.qrscp_workflow.handlers`` routes by it)."""

    sop_classes: frozenset[str] = frozenset({WORKLIST_FIND})

    def __init__(self, store: WorklistStore) -> None:
        self.store = store

    def __call__(self, event: Event, *args: object) -> Iterator[FindYield]:
        try:
            sop_class = _sop_class(event)
            if sop_class and sop_class not in self.sop_classes:
                LOG.warning("C-FIND of %s refused: not the Modality Worklist", clip(sop_class))
                yield status(Status.SOP_CLASS_NOT_SUPPORTED), None
                return
            answers = self.store.find(_identifier(event))
        except QueryError as exc:
            LOG.warning("worklist C-FIND refused: %s", clip(exc))
            yield status(exc.status, str(exc)), None
            return
        for answer in answers:
            # PS3.4 K.4.1.2.3 (as C.4.1.2.3): a C-CANCEL ends the matching with 0xFE00
            if event.is_cancelled:
                yield Status.CANCEL, None
                return
            yield _PENDING, answer


def worklist_handler(store: WorklistStore) -> WorklistFindHandler:
    """An ``EVT_C_FIND`` handler answering the Modality Worklist FIND SOP class from ``store``
    (see the module docstring); a C-FIND of another SOP class is refused with 0x0122 (SOP
    class not supported). It has ``sop_classes`` = ``{WORKLIST_FIND}``."""
    return WorklistFindHandler(store)


def find_router(archive_find: Callable[..., object],
                worklist_find: Callable[..., object]) -> Callable[..., object]:  # fmt: skip
    """One ``EVT_C_FIND`` handler for an AE that serves both the archive's Query/Retrieve
    models and the Modality Worklist: a request whose Affected SOP Class UID is
    :data:`WORKLIST_FIND` goes to ``worklist_find``, every other one to ``archive_find``."""

    def route_find(event: Event, *args: object) -> object:
        chosen = worklist_find if _sop_class(event) == WORKLIST_FIND else archive_find
        return chosen(event, *args)

    return route_find


def with_worklist(
    handlers: Iterable[tuple[EventType, Callable[..., object]]], store: WorklistStore
) -> list[tuple[EventType, Callable[..., object]]]:
    """``handlers`` (e.g. ``Archive.handlers()``) with the Modality Worklist answered from
    ``store``: their ``EVT_C_FIND`` handler is wrapped by :func:`find_router` (one is added if
    there was none)."""
    out: list[tuple[EventType, Callable[..., object]]] = []
    routed = False
    worklist_find = worklist_handler(store)
    for event_type, handler in handlers:
        if event_type is evt.EVT_C_FIND and not routed:
            out.append((event_type, find_router(handler, worklist_find)))
            routed = True
        else:
            out.append((event_type, handler))
    if not routed:
        out.append((evt.EVT_C_FIND, worklist_find))
    return out


def add_worklist_context(ae: AE) -> None:
    """Accept the Modality Worklist FIND SOP class on ``ae`` (Explicit and Implicit VR Little
    Endian, as the archive's Q/R classes)."""
    ae.add_supported_context(WORKLIST_FIND, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
