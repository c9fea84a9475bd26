"""Opening a DICOM connection on the running event loop: TCP first, then TLS.

Theory of operation
-------------------
The Upper Layer's transport connect (PS3.8 section 9.1.5, Evt2) is two steps on the wire, and
reported as two: the TCP connection (:class:`~dicomnet.transport.base.ConnectError` when it is
refused, unreachable or not made in time) and, for a secure transport connection (PS3.15 B.1),
the TLS handshake (:class:`~dicomnet.transport.base.TLSHandshakeError`). The connected socket is
then handed to the driver the caller's factory makes.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

from dicomnet.transport.aio import AsyncDriver
from dicomnet.transport.base import ConnectError, TLSHandshakeError
from dicomnet.transport.tls import DEFAULT_HANDSHAKE_TIMEOUT

__all__ = ["open_connection"]


async def open_connection(
    factory: Callable[[], AsyncDriver],
    host: str,
    port: int,
    *,
    bind_address: tuple[str, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    connect_timeout: float | None = None,
    handshake_timeout: float | None = None,
) -> None:
    """Connect to ``host:port`` on the running loop and hand the connection to the driver
    ``factory()`` makes (which then gets ``connection_made``).

    Two steps, so that a failure is reported as what it is: the TCP connection
    (:class:`~dicomnet.transport.base.ConnectError` when refused, unreachable or not made
    within ``connect_timeout``), then the TLS handshake when ``ssl_context`` is given
    (:class:`~dicomnet.transport.base.TLSHandshakeError`, within ``handshake_timeout``).
    """
    loop = asyncio.get_running_loop()
    sock: socket.socket | None = None
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _name, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        if bind_address is not None:
            sock.bind(bind_address)
        await asyncio.wait_for(loop.sock_connect(sock, sockaddr), connect_timeout)
    except (TimeoutError, OSError) as exc:
        if sock is not None:
            sock.close()
        raise ConnectError(f"cannot connect to {host}:{port}: {exc or 'timed out'}") from exc
    try:
        if ssl_context is None:
            await loop.create_connection(factory, sock=sock)
        else:
            await loop.create_connection(
                factory, sock=sock, ssl=ssl_context,
                server_hostname=server_hostname or (host if ssl_context.check_hostname else ""),
                ssl_handshake_timeout=handshake_timeout or DEFAULT_HANDSHAKE_TIMEOUT,
            )  # fmt: skip
    except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
        sock.close()
        if ssl_context is not None:
            raise TLSHandshakeError(
                f"TLS handshake with {host}:{port} failed: {exc or 'timed out'} "
                "(does the peer speak TLS?)"
            ) from exc
        # pragma: no cover - a connected socket cannot fail here without TLS
        raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
