"""The blocking driver: one ULConnection over one socket, driven by the calling thread.

Theory of operation
-------------------
:class:`SyncDriver` implements :class:`~dicomnet.transport.base.Driver` with no background
thread, no polling and no sleeps. Everything happens inside the caller's own calls:

* **Receiving** (:meth:`SyncDriver.wait_for_activity`): the socket's timeout is set to the time
  left until the *nearest* deadline -- the caller's (e.g. the DIMSE timeout), the connection's
  ARTIM timer (``conn.next_deadline()``, PS3.8 section 9.1.5) and the network idle timeout (no
  byte received, and none sent, for ``network_timeout`` seconds) -- and ``recv_into`` writes straight into the
  connection's receive buffer (``get_write_buffer``/``commit``): a P-DATA-TF body lands in its
  own PDU buffer without a copy. The Upper Layer events that follow are handed to the owner
  (``on_event``, the :class:`~dicomnet.association.Association`), in order. When the socket
  times out the driver works out which deadline expired: ARTIM goes to ``conn.handle_timer``,
  the idle timeout aborts the association, the caller's deadline returns False.
* **Sending**: ``conn.data_to_send()`` (a list of ``bytes``/``memoryview`` chunks: PDU header,
  PDV header and payload slices) goes out with ``socket.sendmsg`` as one scatter-gather call,
  resumed after a partial send from the first unsent byte; TLS sockets (which have no
  ``sendmsg``) get ``sendall`` per chunk. Sends are bounded by the network timeout.
* **The protocol answers the driver gives by itself**: an A-RELEASE-RQ from the peer
  (including the release collision of PS3.8 section 7.2 / Sta9-Sta12) is answered with
  A-RELEASE-RP (``conn.release_response()``); ``TransportShouldClose`` closes the socket and
  reports it with ``conn.transport_closed()``.
* **Failure** never leaks: a reset, EOF or send error marks the transport closed, reports it to
  the connection (Evt17, which yields ``Aborted``/``TransportClosed`` events when the association
  was not finished) and closes the socket exactly once. After that :attr:`is_alive` is False and
  :meth:`wait_for_activity` returns False; :meth:`send_pdata_chunks` silently drops (the caller
  sees the failure on its next wait).

:func:`open_socket` makes the TCP connection (connect timeout, ``TCP_NODELAY`` because a DIMSE
exchange is request/response and Nagle plus delayed ACK costs ~40 ms per message) and the
optional TLS handshake, raising :class:`~dicomnet.transport.base.ConnectError` /
:class:`~dicomnet.transport.base.TLSHandshakeError`.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dicomnet.datasource import FileRegion
from dicomnet.errors import DicomNetError
from dicomnet.transport.base import (
    ConnectError,
    TLSHandshakeError,
    WaitingTeardown,
    monotonic,
    nearest_deadline,
)
from dicomnet.ul.events import (
    ReleaseConfirmed,
    ReleaseRequested,
    TransportClosed,
    TransportShouldClose,
)

if TYPE_CHECKING:
    import ssl

    from dicomnet.ul.connection import ULConnection

__all__ = ["SyncDriver", "open_socket"]

LOGGER = logging.getLogger("dicomnet.transport.sync")

_IOV_MAX = 1024  # POSIX guarantees at least 16; Linux allows 1024 iovecs per sendmsg
_MSG_MORE = getattr(socket, "MSG_MORE", 0)  # Linux: hold a short header for the data after it
# send_pdata_many flushes at least this often. Small enough that the peer is never left idle
# while the next file block is read (a 4 MB batch read 4 blocks, then blocked in sendmsg until
# the peer had drained it: 16 KB PDUs into DCMTK storescp, 4 x 32 MB, 13 % slower end to end).
_BATCH_BYTES = 256 << 10
#: poll_input's bound on finishing a TLS record whose first bytes have arrived (seconds)
_POLL_WAIT = 1.0
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def open_socket(
    host: str,
    port: int,
    *,
    timeout: float | None = None,
    bind_address: tuple[str, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> socket.socket:
    """Connect to ``host:port`` (and do the TLS handshake when ``ssl_context`` is given).

    ``timeout`` bounds the TCP connect and the TLS handshake separately. Raises
    :class:`ConnectError` or :class:`TLSHandshakeError`; never leaks the socket.
    """
    # An ASCII host name goes to getaddrinfo as bytes: a str makes Python import the IDNA codec
    # (encodings.idna, stringprep, unicodedata: ~1 ms of every tool's start-up).
    addr: Any = host.encode("ascii") if host.isascii() else host
    try:
        sock = socket.create_connection((addr, port), timeout=timeout, source_address=bind_address)
    except TimeoutError as exc:
        raise ConnectError(f"connection to {host}:{port} timed out after {timeout} s") from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is None:
            return sock
        tls = ssl_context.wrap_socket(
            sock,
            server_hostname=server_hostname or (host if ssl_context.check_hostname else None),
            do_handshake_on_connect=False,
        )
    except OSError as exc:  # ssl.SSLError too: e.g. a server-side context given to a client
        sock.close()
        raise TLSHandshakeError(f"cannot start TLS with {host}:{port}: {exc}") from exc
    except BaseException:
        sock.close()
        raise
    try:
        # lazy: dicomnet.transport.tls imports ssl (~10 ms): only TLS connections need it
        from dicomnet.transport.tls import DEFAULT_HANDSHAKE_TIMEOUT

        tls.settimeout(DEFAULT_HANDSHAKE_TIMEOUT if timeout is None else timeout)
        tls.do_handshake()
    except TimeoutError as exc:
        tls.close()
        raise TLSHandshakeError(
            f"TLS handshake with {host}:{port} timed out after {timeout} s "
            "(does the peer speak TLS?)"
        ) from exc
    except OSError as exc:  # ssl.SSLError is an OSError
        tls.close()
        raise TLSHandshakeError(
            f"TLS handshake with {host}:{port} failed: {exc} (does the peer speak TLS?)"
        ) from exc
    return tls


class SyncDriver(WaitingTeardown):
    """Blocking :class:`~dicomnet.transport.base.Driver` (see the module docstring).

    ``on_event`` receives every Upper Layer event in order, on the thread that called
    :meth:`wait_for_activity` (or :meth:`release`/:meth:`abort`).
    """

    def __init__(
        self,
        conn: ULConnection,
        sock: socket.socket,
        *,
        network_timeout: float | None = None,
        on_event: Callable[[Any], None] | None = None,
        clock: Callable[[], float] = monotonic,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.on_close = on_close
        """Called once, after the socket was closed and the connection told (EVT_CONN_CLOSE)."""
        self.sock: socket.socket | None = sock
        self.network_timeout = network_timeout
        self.on_event: Callable[[Any], None] = on_event or _ignore
        self.clock = clock
        self._tls = _is_tls(sock)
        self._quickack = _TCP_QUICKACK is not None and sock.family in (
            socket.AF_INET,
            socket.AF_INET6,
        )
        self._closed = False
        self._last_io = clock()
        self.release_confirmed = False
        self.received_any = False
        """True once any byte came from the peer."""
        self.failure: str | None = None
        """Why the transport ended when it was not a normal release (text), else None."""
        try:
            self.peername: tuple[str, int] | None = sock.getpeername()[:2]
            self.sockname: tuple[str, int] | None = sock.getsockname()[:2]
        except OSError:
            self.peername = self.sockname = None
        # Plain TCP runs in blocking mode with kernel timeouts (SO_RCVTIMEO/SO_SNDTIMEO): one
        # system call per receive or send. A Python socket timeout instead costs an ioctl per
        # settimeout() and a poll() before every recv/sendmsg. TLS keeps Python's timeouts
        # (the ssl module needs them).
        self._kernel_timeouts = not self._tls and _HAVE_KERNEL_TIMEOUTS
        self._rcvtimeo: float | None = None  # SO_RCVTIMEO now (None: unset, 0.0: none)
        self._sndtimeo: float | None = None
        if self._kernel_timeouts:
            try:
                sock.settimeout(None)
            except OSError:  # pragma: no cover - a closed socket: the first I/O reports it
                pass

    # --- Driver protocol ---------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        return not self._closed and bool(self.conn.is_established)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        if self._closed:
            return
        self.conn.send_pdata_chunks(chunks)
        self.flush()

    def send_pdata_many(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        """Send several pre-encoded P-DATA-TF PDUs (one DIMSE message held in memory) with
        as few ``sendmsg`` calls as possible: they are queued, then flushed together (every
        _BATCH_BYTES bytes at most, so a big message is not all queued first)."""
        if self._closed:
            return
        conn = self.conn
        queued = 0
        for chunks in pdus:
            conn.send_pdata_chunks(chunks)
            queued += sum(len(c) for c in chunks)
            if queued >= _BATCH_BYTES:
                self.flush()
                queued = 0
                if self._closed:
                    return
        self.flush()

    def flush(self) -> None:
        """Send everything the connection has queued."""
        chunks = self.conn.data_to_send()
        if chunks and not self._closed:
            self._send(chunks)

    def wait_for_activity(self, deadline: float | None) -> bool:
        """Receive until at least one event was handled (True), ``deadline`` passed or the
        transport is gone (False)."""
        while not self._closed:
            if self._dispatch():
                return True
            if self._closed:
                break
            now = self.clock()
            artim = self.conn.next_deadline()
            idle = None if self.network_timeout is None else self._last_io + self.network_timeout
            nearest = nearest_deadline(deadline, artim, idle)
            if nearest is not None and nearest <= now:
                if artim is not None and artim <= now:
                    self.conn.handle_timer(now)  # ARTIM expiry, PS3.8 Evt18
                    self.flush()
                    continue
                if idle is not None and idle <= now:
                    self.failure = f"network timeout: nothing received for {self.network_timeout} s"
                    LOGGER.info("%s; aborting", self.failure)
                    self.abort()
                    self._dispatch()
                    return False
                return False  # the caller's deadline
            if not self._recv_once(None if nearest is None else nearest - now):
                continue
        self._dispatch()
        return False

    def poll_input(self) -> None:
        """Take in what the peer has already sent -- a release request (answered, PS3.8
        AR-8), an A-ABORT, a closed connection, a DIMSE message (queued) -- without waiting:
        one readiness check and at most one receive, then the events are handled as
        :meth:`wait_for_activity` handles them. For an idle requestor whose program asks
        whether the association is still alive between its own calls."""
        sock = self.sock
        if sock is None or self._closed:
            return
        try:
            ready = bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):  # a socket closed under us: the receive reports it
            ready = True
        pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted
        if not ready and not (pending is not None and pending()):
            return
        # data or end of stream is there: the receive returns at once (a TLS record still
        # arriving is waited for, within _POLL_WAIT)
        self._recv_once(_POLL_WAIT)
        self._dispatch()

    def close(self) -> None:
        """Close the socket (once) and tell the connection (Evt17)."""
        if self.sock is None:
            self._closed = True
            return
        sock, self.sock = self.sock, None
        self._closed = True
        try:
            if self._tls:
                sock.settimeout(0.0)  # do not wait on the peer's close_notify
            sock.close()
        except OSError:  # pragma: no cover - close of a broken socket
            pass
        try:
            self.conn.transport_closed(self.clock())
        except DicomNetError:  # pragma: no cover - already in Sta1
            pass
        self._dispatch()
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()

    # --- internals -------------------------------------------------------------------------
    def _dispatch(self) -> int:
        """Hand every queued event to ``on_event``; return how many were activity."""
        count = 0
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is None:
                break
            kind = type(event)
            if kind is TransportShouldClose:
                self.flush()
                self.close()
                continue
            if kind is TransportClosed:
                self._closed = True
                if self.sock is not None:
                    self.close()
            else:
                count += 1
                if kind is ReleaseConfirmed:
                    self.release_confirmed = True
            self.on_event(event)
            if kind is ReleaseRequested and not self._closed:
                # PS3.8 AR-2 / AR-8: answer the peer's release (also in a collision).
                try:
                    conn.release_response()
                    self.flush()
                except DicomNetError as exc:
                    LOGGER.debug("release_response refused: %s", exc)
        return count

    def _recv_once(self, timeout: float | None) -> bool:
        """One ``recv_into`` with ``timeout``; False on timeout (caller re-evaluates)."""
        sock = self.sock
        if sock is None:
            return False
        try:
            if self._kernel_timeouts:
                if timeout is not None and timeout <= 0:
                    return False
                self._arm_rcvtimeo(sock, timeout)
            else:
                sock.settimeout(timeout)
            buf = self.conn.get_write_buffer()
            n = sock.recv_into(buf)
            if self._quickack:
                # Re-arm Linux quick ACKs (the kernel drops back to delayed ACKs): a peer that
                # leaves Nagle on (DCMTK without TCP_NODELAY=1) writes a response in pieces and
                # would otherwise wait ~40 ms for our delayed ACK before each second piece.
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)  # type: ignore[arg-type]
        except (TimeoutError, BlockingIOError):  # Python's or the kernel's (EAGAIN) timeout
            return False
        except DicomNetError:
            # the receive buffer already refused earlier bytes: the connection has produced
            # the A-ABORT; flush it and close.
            self.flush()
            self.close()
            return True
        except OSError as exc:
            if self._tls and _is_ssl_error(exc):
                self._lost(f"TLS error: {exc}")
            else:
                self._lost(f"connection lost: {exc.strerror or exc}")
            return True
        if n == 0:
            self._lost("the peer closed the connection")
            return True
        self._last_io = self.clock()
        self.received_any = True
        try:
            self.conn.commit(n, self._last_io)
        except DicomNetError as exc:  # pragma: no cover - the connection turns errors into events
            LOGGER.info("protocol error from peer: %s", exc)
        self.flush()
        return True

    @property
    def sends_file_regions(self) -> bool:
        """Whether file-backed data set fragments may come as FileRegion items (sendfile):
        plain TCP only (TLS must encrypt every byte in user space)."""
        return not self._tls

    def _send(self, chunks: Sequence[Any]) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            if self._kernel_timeouts:
                if self._sndtimeo != self.network_timeout:
                    _set_timeo(sock, socket.SO_SNDTIMEO, self.network_timeout)
                    self._sndtimeo = self.network_timeout
            else:
                sock.settimeout(self.network_timeout)
            if self._tls:
                for chunk in chunks:
                    sock.sendall(chunk)  # never a FileRegion: sends_file_regions is False
                self._last_io = self.clock()
                return
            start = 0
            for i, chunk in enumerate(chunks):
                if type(chunk) is FileRegion:
                    # The buffers before it (its PDU and PDV headers) go first, marked "more
                    # coming" so they share a segment with the file data; then the kernel
                    # copies the file pages to the socket itself.
                    if i > start:
                        self._sendmsg(sock, chunks[start:i], _MSG_MORE)
                    sent = _sendfile(sock, chunk.file, chunk.offset, chunk.length)
                    if sent != chunk.length:
                        # The file shrank under us: the PDU header already promised the bytes,
                        # so the stream cannot be resynchronised -- drop the connection.
                        raise OSError(f"{chunk!r} ended after {sent} bytes")
                    start = i + 1
            if start < len(chunks):
                self._sendmsg(sock, chunks[start:] if start else chunks, 0)
            # a long send (a 1 GB C-STORE) is activity too: the idle clock restarts after it
            self._last_io = self.clock()
        except (TimeoutError, BlockingIOError):
            self._lost(f"network timeout: send blocked for {self.network_timeout} s")
        except OSError as exc:
            self._lost(f"connection lost while sending: {exc.strerror or exc}")

    def _arm_rcvtimeo(self, sock: socket.socket, timeout: float | None) -> None:
        """Make SO_RCVTIMEO end the next receive no later than ``timeout`` seconds from now.

        An armed value from half of ``timeout`` up to ``timeout`` is kept, and a new one is
        three quarters of ``timeout``: the receive may come back early (the caller finds no
        data, re-checks its deadlines and waits again), never late, and a stream of requests
        that each wait with the same DIMSE timeout does not pay a setsockopt per message."""
        armed = self._rcvtimeo
        if timeout is None:
            if armed != 0.0:
                _set_timeo(sock, socket.SO_RCVTIMEO, None)
                self._rcvtimeo = 0.0
            return
        if armed and timeout / 2 <= armed <= timeout:
            return
        value = timeout * 0.75 if timeout > 0.01 else timeout
        _set_timeo(sock, socket.SO_RCVTIMEO, value)
        self._rcvtimeo = value

    @staticmethod
    def _sendmsg(sock: socket.socket, chunks: Sequence[bytes | memoryview], flags: int) -> None:
        """Send every buffer with as few ``sendmsg`` calls as the kernel allows."""
        views = [c if isinstance(c, memoryview) else memoryview(c) for c in chunks]
        first = 0
        total = len(views)
        sendmsg = sock.sendmsg
        while first < total:
            sent = sendmsg(views[first : first + _IOV_MAX], (), flags)
            # advance past fully sent chunks, then slice into the partly sent one
            while sent:
                size = views[first].nbytes
                if sent >= size:
                    sent -= size
                    first += 1
                else:
                    views[first] = views[first].cast("B")[sent:]
                    sent = 0
            while first < total and views[first].nbytes == 0:
                first += 1

    def _lost(self, why: str) -> None:
        if self.failure is None and not self.release_confirmed:
            self.failure = why
        LOGGER.debug("%s", why)
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"state={getattr(self.conn, 'state', '?')}"
        return f"<SyncDriver {self.peername} {state}>"


_HAVE_KERNEL_TIMEOUTS = sys.platform.startswith("linux") and struct.calcsize("@l") == 8
_TIMEVAL = struct.Struct("@ll")  # struct timeval (time_t, suseconds_t) on Linux


def _set_timeo(sock: socket.socket, option: int, seconds: float | None) -> None:
    """SO_RCVTIMEO/SO_SNDTIMEO: ``seconds`` (None: wait forever), at least 1 microsecond."""
    if seconds is None:
        value = _TIMEVAL.pack(0, 0)
    else:
        micros = max(1, int(seconds * 1_000_000))
        value = _TIMEVAL.pack(micros // 1_000_000, micros % 1_000_000)
    sock.setsockopt(socket.SOL_SOCKET, option, value)


def _sendfile(sock: socket.socket, file: Any, offset: int, count: int) -> int:
    """``os.sendfile`` until ``count`` bytes went or the file ended; returns bytes sent.

    On a blocking socket SO_SNDTIMEO bounds each call (EAGAIN raises BlockingIOError: the
    network timeout); a socket with a Python timeout goes through ``socket.sendfile``."""
    if sock.gettimeout() is not None:
        return sock.sendfile(file, offset, count)
    import os

    fd, in_fd = sock.fileno(), file.fileno()
    total = 0
    while total < count:
        n = os.sendfile(fd, in_fd, offset + total, count - total)
        if n == 0:  # end of file
            break
        total += n
    return total


def _is_tls(sock: socket.socket) -> bool:
    """An ``ssl.SSLSocket``? (ssl is only imported by TLS users: start-up does not pay.)"""
    ssl_mod = sys.modules.get("ssl")
    return ssl_mod is not None and isinstance(sock, ssl_mod.SSLSocket)


def _is_ssl_error(exc: BaseException) -> bool:
    ssl_mod = sys.modules.get("ssl")
    return ssl_mod is not None and isinstance(exc, ssl_mod.SSLError)


def _ignore(event: Any) -> None:
    return None
