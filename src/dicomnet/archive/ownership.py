"""One owner per storage folder, and a record of how the last owner stopped.

Theory of operation
-------------------
Two archives writing one storage folder would each take the other's in-flight temp files for
crash debris and delete them at start-up. :class:`StorageLock` makes ownership explicit: an
exclusive ``flock`` on ``<storage>/.lock`` (the holder's PID written into it for the message a
second instance prints). The kernel drops the lock when the last process holding the open file
closes it or dies, so a crash never leaves a stale lock; ``--workers`` children inherit the
parent's open file, so the folder stays locked while any of them runs -- a restart cannot start
beside orphans (and :func:`die_with_parent` makes sure there are none: ``PR_SET_PDEATHSIG``).

:class:`ShutdownMarker` is ``<storage>/.clean-shutdown``: written (and fsynced) by the owner
as the very last step of a clean stop, read and removed at the next start. Present: the index
and the files were in step when the archive stopped, and the start-up check can skip walking
every file. Absent: the archive crashed (or lost power), and everything written since the time
recorded by the last clean stop (kept in ``<storage>/.last-clean``) is verified.

Several nodes on one storage folder (PostgreSQL index, shared file system): each node has a
name and a folder of its own, ``<storage>/.nodes/<name>/``, where its lock, its markers, its
audit trail and metrics live (its spool is ``<storage>/.tmp/<name>/``, see
:class:`~dicomnet.archive.store.FileStore`). A node holds ``<storage>/.lock`` *shared* (the
nodes exclude a single-owner archive, which holds it exclusively, and are excluded by it) and
its own ``.nodes/<name>/.lock`` exclusively (two processes with one node name are refused).
What a node's start-up check removes is then only ever its own: its own spool, and index rows
whose file is verifiably gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time

__all__ = [
    "ShutdownMarker",
    "StorageInUseError",
    "StorageLock",
    "die_with_parent",
    "node_dir",
    "valid_node_name",
]

_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def valid_node_name(name: str) -> str:
    """``name`` if it can name a node (letters, digits, ``.``, ``_``, ``-``; 1-64, not starting
    with a dot: it becomes a folder name); ValueError otherwise."""
    if not _NODE_NAME.match(name):
        raise ValueError(f"not a node name (letters, digits, . _ -; at most 64): {name!r}")
    return name


def node_dir(root: str, node: str) -> str:
    """The folder of node ``node`` in the storage folder ``root`` (created)."""
    path = os.path.join(root, ".nodes", valid_node_name(node))
    os.makedirs(path, exist_ok=True)
    return path


class StorageInUseError(RuntimeError):
    """Another process owns the storage folder."""


class StorageLock:
    """An exclusive lock on ``<root>/.lock``, held until :meth:`release` or process exit; with
    ``node``, a shared lock on it and an exclusive one on the node's own lock file."""

    def __init__(self, root: str, node: str | None = None) -> None:
        self.path = os.path.join(root, ".lock")
        self._fds: list[int] = []
        if node is None:
            self._fds.append(_lock(self.path, exclusive=True, what=f"the storage folder {root}",
                                   hint="one archive per storage folder (or nodes: --node)"))
            return
        self._fds.append(_lock(self.path, exclusive=False, what=f"the storage folder {root}",
                               hint="nodes cannot share it with a single-owner archive"))
        try:
            self.path = os.path.join(node_dir(root, node), ".lock")
            self._fds.append(_lock(self.path, exclusive=True, what=f"node {node!r}",
                                   hint="one process per node name"))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Give the folder up (closing the files drops the locks)."""
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)


def _lock(path: str, *, exclusive: bool, what: str, hint: str) -> int:
    """An open descriptor of ``path`` holding a ``flock`` on it; StorageInUseError naming the
    holder when another process holds a conflicting one."""
    import fcntl  # lazy: POSIX only; importing the archive does not need it

    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            holder = os.pread(fd, 32, 0).decode("ascii").strip()
        os.close(fd)
        who = f"process {holder}" if holder and exclusive else "another process"
        raise StorageInUseError(f"{what} is in use by {who} (lock file {path}); {hint}") from None
    if exclusive:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    # (fork keeps the descriptor open in --workers children, so the folder stays locked
    # while any of them runs; close-on-exec keeps it from unrelated programs)
    return fd


class ShutdownMarker:
    """``<root>/.clean-shutdown`` and ``<root>/.last-clean`` (see the module docstring)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = os.path.join(root, ".clean-shutdown")
        self.last_path = os.path.join(root, ".last-clean")

    def take(self) -> bool:
        """At start-up: True when the last stop was clean (the marker is removed either way,
        durably, so that a crash from now on is noticed)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        _fsync_dir(self.root)
        return True

    def last_clean(self) -> float:
        """When the last clean stop happened (0: never); files written before it were durable
        then."""
        try:
            with open(self.last_path) as f:
                return float(json.load(f)["time"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    def write(self) -> None:
        """At a clean stop, after everything else: record the time, then the marker."""
        now = time.time()
        for path, text in ((self.last_path, json.dumps({"time": now})),
                           (self.path, json.dumps({"time": now, "pid": os.getpid()}))):  # fmt: skip
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        _fsync_dir(self.root)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def die_with_parent(parent: int, sig: int = 15) -> None:
    """In a worker forked by ``parent`` (its PID, read before the fork): ask the kernel to send
    ``sig`` (SIGTERM) when the parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``); exit at once if
    it is already gone."""
    # lazy: ctypes.util pulls in subprocess and shutil; only qrscp --workers needs it
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the parent died before the prctl: nobody will signal us
        os._exit(1)
