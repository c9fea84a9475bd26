"""The contract between an Association and the code that moves its bytes.

Theory of operation
-------------------
The Upper Layer (:mod:`dicomnet.ul.connection`) and DIMSE (:mod:`dicomnet.dimse`) are sans-IO:
they consume bytes and time and produce events and bytes. A *driver* owns one transport (a TCP
socket, possibly wrapped in TLS) and one :class:`~dicomnet.ul.connection.ULConnection`, moves
bytes between them, and waits on the nearest deadline (DIMSE timeout, ARTIM of PS3.8 section
9.1.5, network idle timeout). Two drivers implement :class:`Driver`:

* the blocking driver (:mod:`dicomnet.transport.sync`): the calling thread drives its own socket,
  with the remaining time to the nearest deadline as the socket timeout; no background thread;
* the asyncio driver (:mod:`dicomnet.transport.aio`): the event loop receives; worker threads
  that run handlers block in :meth:`Driver.wait_for_activity` on a condition the loop notifies.

:class:`WaitingTeardown` is the release and abort of a driver whose calling thread waits for the
peer itself in :meth:`Driver.wait_for_activity` (the blocking driver, and the tests' in-memory
one, so that they run the same teardown).

An association keeps its driver as ``assoc.driver`` (``assoc.dul`` in the founding document's
spelling); the DIMSE service provider only ever calls :meth:`Driver.send_pdata_chunks`,
:meth:`Driver.wait_for_activity` and :attr:`Driver.is_alive` (its ``DULLike`` contract).

:data:`monotonic` is the one clock every deadline is measured on.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dicomnet.errors import DicomNetError

if TYPE_CHECKING:
    from dicomnet.ul.connection import ULConnection

__all__ = [
    "ConnectError",
    "Driver",
    "TLSHandshakeError",
    "TransportError",
    "WaitingTeardown",
    "monotonic",
    "nearest_deadline",
]


class TransportError(DicomNetError):
    """The transport connection could not be made or was lost."""


class ConnectError(TransportError):
    """The TCP connection could not be made (refused, unreachable, connect timeout)."""


class TLSHandshakeError(TransportError):
    """The TLS handshake failed or timed out: the peer does not speak TLS (or not our TLS:
    certificate refused, no shared protocol version or cipher), or a plaintext peer hit a
    TLS port."""

monotonic = time.monotonic
"""The clock of every deadline in dicomnet (seconds, monotonic)."""

LOGGER = logging.getLogger("dicomnet.transport")


def nearest_deadline(*deadlines: float | None) -> float | None:
    """The earliest of the given absolute deadlines, ignoring ``None`` (no deadline)."""
    best: float | None = None
    for d in deadlines:
        if d is not None and (best is None or d < best):
            best = d
    return best


@runtime_checkable
class Driver(Protocol):
    """Drives one ULConnection over one transport.

    Implemented by the blocking driver (transport/sync.py) and the asyncio driver
    (transport/aio.py).
    """

    conn: ULConnection
    """The sans-IO Upper Layer state."""

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Send one pre-encoded P-DATA-TF PDU given as scatter-gather chunks.

        Thread-safe in the asyncio driver (where it blocks the calling worker thread while the
        transport's write buffer is above its high-water mark).
        """
        ...

    def send_pdata_many(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        """Several pre-encoded PDUs of one message, in as few writes as possible."""
        ...

    @property
    def sends_file_regions(self) -> bool:
        """True when PDU chunks may be file regions, sent with ``sendfile``."""
        ...

    def wait_for_activity(self, deadline: float | None) -> bool:
        """Block the calling thread until at least one PDU was processed.

        Returns False when ``deadline`` (on :data:`monotonic`) passed or the association is
        gone. The sync driver receives on its own socket with the remaining time as socket
        timeout; the async driver (called from a worker thread, never on the loop) waits on a
        condition that the loop thread notifies.
        """
        ...

    @property
    def is_alive(self) -> bool:
        """True while the association can still carry P-DATA."""
        ...

    @property
    def failure(self) -> str | None:
        """Why the transport ended when it was not a normal release (text), else None."""
        ...

    def release(self, timeout: float | None) -> None:
        """A-RELEASE-RQ, wait for the A-RELEASE-RP (PS3.8 section 7.2), then close."""
        ...

    def abort(self, source: int = 0, reason: int = 0) -> None:
        """A-ABORT (default source 0, service user; PS3.8 section 7.3 and Table 9-26), then
        close. Source 2 (service provider) with a reason reports a protocol error of the
        peer's."""
        ...

    def close(self) -> None:
        """Close the transport without any PDU (idempotent)."""
        ...


class WaitingTeardown(ABC):
    """:meth:`Driver.release` and :meth:`Driver.abort` for a driver whose calling thread
    receives for itself in :meth:`wait_for_activity` (see the module docstring)."""

    conn: ULConnection
    clock: Callable[[], float]
    release_confirmed: bool
    failure: str | None

    @property
    @abstractmethod
    def is_closed(self) -> bool:
        """Whether this side's transport is closed."""

    @abstractmethod
    def flush(self) -> None:
        """Write what the connection has queued."""

    @abstractmethod
    def wait_for_activity(self, deadline: float | None) -> bool:
        """As :meth:`Driver.wait_for_activity`."""

    @abstractmethod
    def close(self) -> None:
        """As :meth:`Driver.close`."""

    def release(self, timeout: float | None) -> None:
        """A-RELEASE-RQ, wait (at most ``timeout``) for the A-RELEASE-RP, then close.

        An A-RELEASE-RQ crossing ours (release collision, PS3.8 Sta9-Sta12) is answered while
        waiting; P-DATA still arriving meanwhile goes to the driver's events. Without an answer
        in time the association is aborted.
        """
        if self.is_closed:
            return
        try:
            self.conn.release_request()
        except DicomNetError as exc:  # wrong state: nothing sensible left but to abort
            LOGGER.debug("release_request refused (%s); aborting", exc)
            self.abort()
            return
        self.flush()
        deadline = None if timeout is None else self.clock() + timeout
        while not self.is_closed and not self.release_confirmed:
            if not self.wait_for_activity(deadline):
                break
        if not self.release_confirmed and not self.is_closed:
            self.failure = "no A-RELEASE-RP in time"
            self.abort()
        self.close()

    def abort(self, source: int = 0, reason: int = 0) -> None:
        """A-ABORT (default source 0: service user; PS3.8 Table 9-26), then close."""
        if self.is_closed:
            return
        try:
            self.conn.abort(source, reason, self.clock())
            self.flush()
        except DicomNetError as exc:
            LOGGER.debug("abort in state %s: %s", getattr(self.conn, "state", "?"), exc)
        self.close()
