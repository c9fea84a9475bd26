"""The archive as the Storage Commitment check sees it: what is stored, and whether we commit
to a referenced instance (:func:`verdict`) or with which Failure Reason we do not.

Theory of operation
-------------------
The check looks references up page by page, many SOP Instance UIDs per call, through an
:class:`InstanceLookup` (:func:`instance_lookup` adapts the index: batched SQL over the
``instance`` and ``other`` tables of an :class:`~dicomnet.archive.index.ArchiveIndex`, with
the size and :func:`~dicomnet.archive.part10.quick_hash` each file had when stored; or one
``get_instance`` call per UID for a stand-in index). An instance is committed when it is
indexed with the SOP Class UID the request names and its file is present, has the indexed
size, a File Meta Information header naming that instance and class, and (when the index
kept one) the fingerprint it had when stored (:func:`file_problem`). Otherwise its Failure
Reason (0008,1197) (PS3.4 Table J.3-2, PS3.3 C.14.1.1) is:

=====  ============================  ==================================================
0112H  No such object instance       not indexed, or indexed but its file is gone
0119H  Class/Instance conflict       indexed under another SOP Class UID
0122H  Referenced SOP Class not      not indexed, and not a Storage SOP Class we accept
       supported                     (:func:`storage_class_check`)
0110H  Processing failure            file unreadable, truncated, rewritten, or its header
                                     names another instance (damaged: we cannot vouch
                                     for it)
0131H  Duplicate transaction UID     the Transaction UID was already used (every item;
                                     decided when the request is stored, not here)
=====  ============================  ==================================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import BinaryIO, NamedTuple, Protocol, runtime_checkable

from dicomnet.archive.part10 import quick_hash
from dicomnet.archive.storage import open_file
from dicomnet.dimse.dataset import read_file_meta
from dicomnet.errors import DicomNetError

__all__ = [
    "FailureReason",
    "InstanceLookup",
    "StoredInstance",
    "file_problem",
    "instance_lookup",
    "storage_class_check",
    "verdict",
]

# the logger of the package, as before the split into modules
LOG = logging.getLogger("dicomnet.archive.commitment")


class FailureReason(IntEnum):
    """Failure Reason (0008,1197) values (PS3.3 C.14.1.1, used by PS3.4 Table J.3-2)."""

    PROCESSING_FAILURE = 0x0110
    NO_SUCH_OBJECT_INSTANCE = 0x0112
    CLASS_INSTANCE_CONFLICT = 0x0119
    REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122
    DUPLICATE_TRANSACTION_UID = 0x0131
    RESOURCE_LIMITATION = 0x0213


class StoredInstance(NamedTuple):
    """What the index knows of one stored instance."""

    sop_class_uid: str
    path: str
    size: int | None = None
    checksum: str | None = None


@runtime_checkable
class InstanceLookup(Protocol):
    """Where the check looks instances up: many SOP Instance UIDs per call."""

    def lookup(self, sop_instance_uids: Sequence[str]) -> Mapping[str, StoredInstance]: ...


@runtime_checkable
class _SelectIndex(Protocol):
    """An :class:`~dicomnet.archive.index.ArchiveIndex` (its public ``select``)."""

    def select(
        self, sql: str, where: list[str], params: list[object]
    ) -> list[tuple[object, ...]]: ...


class _RetrieveItemLike(Protocol):
    @property
    def sop_class_uid(self) -> str: ...

    @property
    def path(self) -> str: ...


@runtime_checkable
class _GetInstance(Protocol):
    """Anything with ``get_instance(uid) -> RetrieveItem | None`` (a stand-in index)."""

    def get_instance(self, sop_instance_uid: str) -> _RetrieveItemLike | None: ...


class _IndexLookup:
    """Batched look-ups in the archive index's ``instance`` and ``other`` tables, with the
    size and :func:`~dicomnet.archive.part10.quick_hash` each file had when it was stored
    (``ArchiveIndex.get_instance`` returns neither)."""

    def __init__(self, index: _SelectIndex) -> None:
        self._index = index

    def lookup(self, sop_instance_uids: Sequence[str]) -> Mapping[str, StoredInstance]:
        out: dict[str, StoredInstance] = {}
        for table in ("instance", "other"):
            wanted = list(dict.fromkeys(u for u in sop_instance_uids if u not in out))
            if not wanted:
                break
            rows = self._index.select(
                f"SELECT sop_uid, sop_class_uid, path, size, checksum FROM {table}",
                [f"sop_uid IN ({','.join('?' * len(wanted))})"], list(wanted),
            )  # fmt: skip
            for uid, sop_class, path, size, checksum in rows:
                out[str(uid)] = StoredInstance(
                    str(sop_class), str(path), int(str(size)) if size else None,
                    str(checksum) if checksum else None,
                )  # fmt: skip
        return out


class _GetInstanceLookup:
    def __init__(self, index: _GetInstance) -> None:
        self._index = index

    def lookup(self, sop_instance_uids: Sequence[str]) -> Mapping[str, StoredInstance]:
        out: dict[str, StoredInstance] = {}
        for uid in sop_instance_uids:
            item = self._index.get_instance(uid)
            if item is not None:
                out[uid] = StoredInstance(item.sop_class_uid, item.path)
        return out


def instance_lookup(index: object) -> InstanceLookup:
    """The :class:`InstanceLookup` for ``index``: itself when it is one, batched SQL for an
    ``ArchiveIndex``, ``get_instance`` one UID at a time otherwise."""
    if isinstance(index, InstanceLookup):
        return index
    if isinstance(index, _SelectIndex):
        return _IndexLookup(index)
    if isinstance(index, _GetInstance):
        return _GetInstanceLookup(index)
    raise TypeError(f"cannot look instances up in {type(index).__name__}")


def storage_class_check() -> Callable[[str], bool]:
    """Whether a SOP Class UID is a Storage SOP Class we accept (PS3.4 B.5, retired ones too)."""
    # lazy: the UID tables (Storage SOP classes, PS3.4 B.5) are only needed by an SCP
    from dicomnet.sop_sets import storage_sop_classes
    from dicomnet.uid import RETIRED_STORAGE_SOP_CLASSES

    known = frozenset([*storage_sop_classes(), *RETIRED_STORAGE_SOP_CLASSES.values()])
    return known.__contains__


def file_problem(stored: StoredInstance, sop_instance_uid: str,
                 open_stored: Callable[[str], BinaryIO] = open_file) -> str | None:  # fmt: skip
    """None when the stored file is whole and is the instance; "missing" when it is gone;
    otherwise what is wrong with it (the 0110H cases of the module docstring). The instance is
    read through ``open_stored`` (the archive's storage, :mod:`dicomnet.archive.storage`)."""
    try:
        f = open_stored(stored.path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    try:
        size = os.fstat(f.fileno()).st_size
        if stored.size is not None and size != stored.size:
            return f"{size} bytes, {stored.size} were stored"
        try:
            _offset, meta = read_file_meta(f, size)
        except DicomNetError as exc:
            return f"unreadable File Meta Information: {exc}"
        named = meta.get(0x0003)
        if named is not None and named != sop_instance_uid:
            return f"its File Meta Information names instance {named}"
        named_class = meta.get(0x0002)
        if named_class is not None and named_class != stored.sop_class_uid:
            return f"its File Meta Information names SOP class {named_class}"
        if stored.checksum and quick_hash(f.fileno(), size) != stored.checksum:
            return "its content changed since it was stored (checksum)"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    finally:
        f.close()
    return None


def verdict(
    sop_class: str,
    sop_instance: str,
    stored: StoredInstance | None,
    supported: Callable[[str], bool],
    open_stored: Callable[[str], BinaryIO] = open_file,
) -> int:
    """0 when we commit to ``sop_instance``, else its Failure Reason (PS3.3 C.14.1.1);
    ``supported`` says whether an unknown instance's SOP class is one we would store;
    ``open_stored`` reads the stored instance (:func:`file_problem`)."""
    if stored is None:
        if not supported(sop_class):
            return FailureReason.REFERENCED_SOP_CLASS_NOT_SUPPORTED
        return FailureReason.NO_SUCH_OBJECT_INSTANCE
    if stored.sop_class_uid != sop_class:
        return FailureReason.CLASS_INSTANCE_CONFLICT
    problem = file_problem(stored, sop_instance, open_stored)
    if problem is None:
        return 0
    if problem == "missing":
        LOG.warning("storage commitment: %s is indexed but its file %s is gone",
                    sop_instance, stored.path)  # fmt: skip
        return FailureReason.NO_SUCH_OBJECT_INSTANCE
    LOG.warning("storage commitment: %s (%s): %s", sop_instance, stored.path, problem)
    return FailureReason.PROCESSING_FAILURE
