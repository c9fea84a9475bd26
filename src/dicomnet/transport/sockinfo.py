"""What the operating system knows about a connected socket: TCP send progress, the peer's TLS
certificate subject, addresses. Read by the asyncio driver (stall detection, audit identity).

Theory of operation
-------------------
A peer that stops reading shows in TCP itself: bytes pile up in the kernel's send queue while
the count the peer acknowledged stands still. :func:`tcp_progress` reads both on Linux
(``TIOCOUTQ`` and ``struct tcp_info``'s ``tcpi_bytes_acked``), so the driver can tell a slow
reader from a stopped one without a timer per write. :func:`certificate_subject` renders a
verified TLS client certificate's subject in RFC 4514 order (PS3.15 B.1: the TLS identity of a
peer), and :func:`socket_address` normalises what ``getpeername``/``getsockname`` return.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

__all__ = ["certificate_subject", "socket_address", "tcp_progress"]


def tcp_progress(transport: asyncio.BaseTransport | None) -> tuple[int, int] | None:
    """(bytes in the kernel's send queue, bytes the peer acknowledged so far) of a TCP
    transport on Linux (SIOCOUTQ; struct tcp_info's tcpi_bytes_acked at offset 120, Linux
    4.1+); None when not available."""
    if transport is None:
        return None
    sock = transport.get_extra_info("socket")
    tcp_info = getattr(socket, "TCP_INFO", None)
    if sock is None or tcp_info is None:
        return None
    try:
        import fcntl
        import termios

        queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 232)
    except (OSError, AttributeError, ImportError):
        return None
    if len(info) < 128:
        return None
    return int(queued), struct.unpack_from("<Q", info, 120)[0]


def certificate_subject(cert: object) -> str | None:
    """A TLS peer certificate's subject as "CN=...,O=..." (RFC 4514 order: most specific
    first), None without a (verified) certificate."""
    if not isinstance(cert, dict):
        return None
    rdns = cert.get("subject") or ()
    parts = [f"{k}={v}" for rdn in reversed(rdns) for k, v in rdn]
    names = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L"}  # fmt: skip
    for long, short in names.items():
        parts = [p.replace(f"{long}=", f"{short}=", 1) if p.startswith(f"{long}=") else p
                 for p in parts]  # fmt: skip
    return ",".join(parts) or None


def socket_address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None
