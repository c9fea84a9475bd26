"""TLS for DICOM associations (PS3.15 Annex B.1, "The Basic TLS Secure Transport Connection
Profile"), through the standard :mod:`ssl` module.

Theory of operation
-------------------
A secure association is an ordinary association over a TLS connection: the TLS handshake runs
right after the TCP connect and before the A-ASSOCIATE-RQ, and nothing in the Upper Layer
changes. These helpers build :class:`ssl.SSLContext` objects with safe defaults:

* :func:`client_context` -- verifies the server's certificate against ``ca_file`` (or the
  system store), optionally checks its host name, and presents our own certificate when
  ``cert_file``/``key_file`` are given (mutual authentication, as PS3.15 B.1 expects between
  DICOM nodes);
* :func:`server_context` -- presents ``cert_file``/``key_file`` and, with
  ``require_client_cert=True``, refuses clients without a certificate signed by ``ca_file``.

Both require TLS 1.2 or later (PS3.15 Annex B.1 profiles the BCP 195 recommendations).
``AE.associate(..., ssl_context=client_context(...))`` uses the client side (handshake inside
:func:`dicomnet.transport.sync.open_socket`, bounded by ``connection_timeout`` or
:data:`DEFAULT_HANDSHAKE_TIMEOUT`); ``AE.start_server(..., ssl_context=server_context(...))``
the server side.

A handshake that fails -- the peer does not speak TLS, closes, sends plaintext, refuses our
certificate, or nothing comes back in time -- raises :class:`TLSHandshakeError` (a
:class:`~dicomnet.errors.DicomNetError`), which ``AE.associate`` reports as
``assoc.error`` with a ``failure_reason`` that says so.
"""

from __future__ import annotations

import os
import ssl

from dicomnet.transport.base import TLSHandshakeError

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "TLSHandshakeError",
    "client_context",
    "server_context",
]

DEFAULT_HANDSHAKE_TIMEOUT = 10.0
"""Seconds the client waits for a TLS handshake when no connection timeout is configured."""

_PathLike = str | os.PathLike[str]


def _load_chain(ctx: ssl.SSLContext, cert_file: _PathLike | None, key_file: _PathLike | None,
                password: str | None) -> None:  # fmt: skip
    if cert_file is None:
        if key_file is not None:
            raise ValueError("key_file given without cert_file")
        return
    ctx.load_cert_chain(os.fspath(cert_file), None if key_file is None else os.fspath(key_file),
                        password)  # fmt: skip


def client_context(
    ca_file: _PathLike | None = None,
    cert_file: _PathLike | None = None,
    key_file: _PathLike | None = None,
    *,
    check_hostname: bool = True,
    verify: bool = True,
    password: str | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """An SSLContext for :meth:`dicomnet.ae.AE.associate`.

    ``ca_file``: PEM bundle of the CAs we trust (default: the system store). ``cert_file``/
    ``key_file``: our own certificate for mutual TLS. ``check_hostname``: the server
    certificate must name the host we connect to (give ``server_hostname=`` to associate() when
    connecting by address). ``verify=False`` disables certificate verification entirely (tests
    only).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = minimum_version
    if verify:
        ctx.check_hostname = check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca_file is not None:
            ctx.load_verify_locations(cafile=os.fspath(ca_file))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _load_chain(ctx, cert_file, key_file, password)
    return ctx


def server_context(
    cert_file: _PathLike,
    key_file: _PathLike | None = None,
    ca_file: _PathLike | None = None,
    *,
    require_client_cert: bool = False,
    password: str | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """An SSLContext for :meth:`dicomnet.ae.AE.start_server`.

    ``require_client_cert``: refuse clients without a certificate issued by ``ca_file``
    (mutual TLS). Without it a client certificate is verified only if one is sent and
    ``ca_file`` is given.
    """
    if require_client_cert and ca_file is None:
        raise ValueError("require_client_cert needs ca_file to verify client certificates")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = minimum_version
    _load_chain(ctx, cert_file, key_file, password)
    if ca_file is not None:
        ctx.load_verify_locations(cafile=os.fspath(ca_file))
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx
