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
"""

from __future__ import annotations

import contextlib
import json
import os
import time

__all__ = ["ShutdownMarker", "StorageInUseError", "StorageLock", "die_with_parent"]


class StorageInUseError(RuntimeError):
    """Another process owns the storage folder."""


class StorageLock:
    """An exclusive lock on ``<root>/.lock``, held until :meth:`release` or process exit."""

    def __init__(self, root: str) -> None:
        import fcntl  # lazy: POSIX only; importing the archive does not need it

        self.path = os.path.join(root, ".lock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = os.pread(fd, 32, 0).decode("ascii").strip()
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise StorageInUseError(
                f"the storage folder {root} is in use by {who} (lock file {self.path}); "
                "one archive per storage folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        # (fork keeps the descriptor open in --workers children, so the folder stays locked
        # while any of them runs; close-on-exec keeps it from unrelated programs)
        self._fd = fd

    def release(self) -> None:
        """Give the folder up (closing the file drops the lock)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


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
