"""The archive's start-up check: files and index back in step after a crash or a power cut.

Theory of operation
-------------------
:func:`recover` runs before the archive serves (the storage folder's owner only,
:mod:`dicomnet.archive.ownership`). It always empties the temp folder (half-received objects
of a crashed run). After a clean stop (the marker) that is all. Otherwise every indexed file
must exist with its indexed size, and those stored since the last clean stop must still match
the checksum taken when they were stored (:func:`~dicomnet.archive.store.quick_hash`: what a
power cut damages -- a truncated or zero-filled tail, lost blocks -- changes it); index rows
whose file is gone are dropped, damaged files moved to ``<storage>/.quarantine`` (one log line
each, kept for a person to look at, never served). Files the index does not know are indexed
when they are whole (every element header walks to the end), quarantined otherwise.

Nodes sharing a storage folder and a PostgreSQL index (:mod:`dicomnet.archive.ownership`):
a node empties only its own temp folder (``.tmp/<node>``; and files left loose in ``.tmp``
by a single-owner archive, which cannot be running beside nodes). The rest must not disturb
what another node is doing at the same moment: an index row is dropped only if it still names
the file found missing (:meth:`~dicomnet.archive.index.ArchiveIndex.remove_instance` with
``path``: a node may have just pointed it at a new file); a file the index does not know is
indexed like any other (another node renaming it into place indexes the same row an instant
later: the upsert is idempotent), except when its SOP Instance UID is indexed at another
path whose file exists (a file being replaced by another node, about to be deleted by it).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dicomnet.archive.fields import InstanceFields, read_instance_fields
from dicomnet.archive.models import StudyConflictError
from dicomnet.archive.part10 import quick_hash, validate_uid
from dicomnet.dimse.dataset import read_file_meta
from dicomnet.transcode.check import structure_problem

if TYPE_CHECKING:
    from dicomnet.archive.index import ArchiveIndex
    from dicomnet.archive.store import FileStore

__all__ = ["RecoveryReport", "recover"]

_LOG = logging.getLogger("dicomnet.archive.store")
_SUFFIX = ".dcm"


@dataclass(slots=True)
class RecoveryReport:
    """What :func:`recover` found and did."""

    temp_files_removed: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)  # SOP Instance UIDs dropped
    reindexed: list[str] = field(default_factory=list)  # paths added to the index
    unreadable: list[str] = field(default_factory=list)  # .dcm files that could not be read
    quarantined: list[str] = field(default_factory=list)  # damaged files moved aside

    @property
    def clean(self) -> bool:
        return not (
            self.temp_files_removed or self.missing_files or self.reindexed or self.unreadable
            or self.quarantined
        )


def recover(store: FileStore, index: ArchiveIndex, *, full: bool = True,
            since: float = 0.0) -> RecoveryReport:  # fmt: skip
    """Bring files and index back in step after a crash .

    ``full`` False (the last stop was clean): only the temp folder is emptied. Otherwise
    every indexed file must exist with its indexed size, those stored since ``since`` (the
    last clean stop) must still match their checksum, and files the index does not know
    are indexed when whole; a file that fails is moved to ``root/.quarantine`` and dropped
    from the index, one log line each."""
    report = RecoveryReport()
    shared = store.node is not None
    temp_dirs = [store.tmp_dir]
    if shared:  # a single owner's leftovers, directly in .tmp (the nodes' folders stay)
        temp_dirs.append(os.path.dirname(store.tmp_dir))
    for temp_dir in temp_dirs:
        try:
            leftovers = os.listdir(temp_dir)
        except FileNotFoundError:
            os.makedirs(temp_dir, exist_ok=True)
            leftovers = []
        for name in leftovers:
            path = os.path.join(temp_dir, name)
            if os.path.isdir(path):
                continue
            try:
                os.unlink(path)
                report.temp_files_removed.append(path)
            except OSError:
                pass
    if not full:
        return report

    known: set[str] = set()
    for sop_uid, path, size, checksum, stored_at in index.iter_stored():
        problem = _integrity_problem(path, size, checksum if stored_at >= since else None)
        if problem is None:
            known.add(os.path.realpath(path))
        elif problem == "missing":
            if index.remove_instance(sop_uid, path=path) is not None:
                report.missing_files.append(sop_uid)
        elif index.remove_instance(sop_uid, path=path) is not None:
            _quarantine(store, path, problem, report)

    found: list[tuple[InstanceFields, str, str, int]] = []
    sums: list[str | None] = []
    for dirpath, dirnames, filenames in os.walk(store.root):
        if dirpath == store.root:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # ours: .tmp, .quarantine...
        for name in filenames:
            if not name.endswith(_SUFFIX):
                continue
            path = os.path.join(dirpath, name)
            if os.path.realpath(path) in known:
                continue
            try:
                fields, ts = read_instance_fields(path)
                validate_uid(fields.sop_instance_uid)
                size = os.path.getsize(path)
            except Exception:
                report.unreadable.append(path)
                continue
            if shared and _indexed_elsewhere(index, fields.sop_instance_uid, path):
                continue
            problem = _whole_file_problem(path, ts)
            if problem is not None:
                _quarantine(store, path, problem, report)
                continue
            found.append((fields, path, ts, size))
            sums.append(_checksum_of(path, size) if store.fsync else None)
    if found:
        try:
            index.add_instances(found, sums)
            report.reindexed.extend(p for _, p, _, _ in found)
        except StudyConflictError:  # one by one, to index all the others
            for item, checksum in zip(found, sums, strict=True):
                try:
                    index.add_instance(*item, checksum)
                except StudyConflictError as exc:
                    _LOG.warning("recovery: %s not indexed: %s", item[1], exc)
                    report.unreadable.append(item[1])
                    continue
                report.reindexed.append(item[1])
    return report


def _indexed_elsewhere(index: ArchiveIndex, sop_uid: str, path: str) -> bool:
    """Whether ``sop_uid`` is indexed with another file that exists (see the module
    docstring: the file at ``path`` is then one being replaced by another node)."""
    item = index.get_instance(sop_uid)
    return item is not None and item.path != path and os.path.exists(item.path)


def _quarantine(store: FileStore, path: str, problem: str, report: RecoveryReport) -> None:
    """Move a damaged file out of the archive into ``root/.quarantine`` (kept for a person
    to look at, never served)."""
    target_dir = store.quarantine_dir()
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, f"{os.path.basename(path)}.{secrets.token_hex(4)}")
    try:
        os.replace(path, target)
    except OSError as exc:
        _LOG.error("recovery: cannot quarantine %s (%s): %s", path, problem, exc)
        return
    _LOG.warning("recovery: %s quarantined to %s: %s", path, target, problem)
    report.quarantined.append(path)


def _integrity_problem(path: str, size: int, checksum: str | None) -> str | None:
    """None when the indexed file is as it was stored; "missing", or what is wrong."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    try:
        actual = os.fstat(fd).st_size
        if actual != size:
            return f"{actual} bytes, {size} were stored"
        if checksum and quick_hash(fd, size) != checksum:
            return "its content changed since it was stored (checksum)"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    finally:
        os.close(fd)
    return None


def _whole_file_problem(path: str, ts: str) -> str | None:
    """What keeps a Part 10 file found on disk from being served whole (truncated...)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset, _values = read_file_meta(f, size)
    except Exception as exc:
        return f"unreadable: {exc}"
    if ts in ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"):
        return None  # deflated: not walked here
    return structure_problem(None, ts == "1.2.840.10008.1.2", ts != "1.2.840.10008.1.2.2",
                             path=path, offset=offset, size=size - offset)  # fmt: skip


def _checksum_of(path: str, size: int) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return quick_hash(fd, size)
    finally:
        os.close(fd)
