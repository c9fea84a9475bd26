"""TLS associations: certificates made by ``openssl`` in the test, our SCU against our own TLS
server and against a pynetdicom TLS server in another process; handshake failures in both
directions (TLS client on a plaintext port, plaintext client on a TLS port, untrusted server,
missing client certificate)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomnet.ae import AE
from dicomnet.transport.base import TLSHandshakeError
from dicomnet.transport.tls import client_context, server_context

VERIFICATION = "1.2.840.10008.1.1"


def scu() -> AE:
    ae = AE("TLSSCU")
    ae.connection_timeout = 2
    ae.acse_timeout = ae.dimse_timeout = 5
    ae.add_requested_context(VERIFICATION)
    return ae


@pytest.fixture
def tls_server(pki: dict[str, Path]) -> Iterator[int]:
    ae = AE("TLSSCP")
    ae.add_supported_context(VERIFICATION)
    ctx = server_context(pki["server_pem"], pki["server_key"], pki["ca_pem"], require_client_cert=True)
    server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=ctx)
    try:
        yield server.address[1]
    finally:
        server.shutdown()


def test_echo_over_mutual_tls_with_our_server(tls_server: int, pki: dict[str, Path]) -> None:
    ctx = client_context(pki["ca_pem"], pki["client_pem"], pki["client_key"])
    with scu().associate("127.0.0.1", tls_server, ssl_context=ctx) as assoc:
        assert assoc.is_established
        assert isinstance(assoc.dul.sock, ssl.SSLSocket)
        assert assoc.dul.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert all(assoc.send_c_echo().Status == 0 for _ in range(5))
        t0 = time.monotonic()
        assert assoc.is_alive()  # looks at the socket: nothing there, so no wait
        assert time.monotonic() - t0 < 0.5
    assert assoc.is_released


def test_untrusted_server_certificate(tls_server: int, pki: dict[str, Path]) -> None:
    ctx = client_context(pki["otherca_pem"], pki["client_pem"], pki["client_key"])
    assoc = scu().associate("127.0.0.1", tls_server, ssl_context=ctx)
    assert not assoc.is_established
    assert isinstance(assoc.error, TLSHandshakeError)
    assert "certificate verify failed" in (assoc.failure_reason or "")


def test_missing_client_certificate(tls_server: int, pki: dict[str, Path]) -> None:
    ctx = client_context(pki["ca_pem"])
    assoc = scu().associate("127.0.0.1", tls_server, ssl_context=ctx)
    assert not assoc.is_established
    # TLS 1.3 reports the refusal after the client's handshake: either way it is named
    assert "certificate" in (assoc.failure_reason or "").lower() or isinstance(
        assoc.error, TLSHandshakeError
    )


def test_plaintext_client_on_tls_port(tls_server: int) -> None:
    assoc = scu().associate("127.0.0.1", tls_server)
    assert not assoc.is_established and not assoc.is_rejected
    assert "TLS port?" in (assoc.failure_reason or "")


def test_tls_client_on_plaintext_ports(pki: dict[str, Path]) -> None:
    ctx = client_context(pki["ca_pem"], pki["client_pem"], pki["client_key"])
    # a plaintext DICOM server: our ClientHello is no PDU, it aborts/closes
    ae = AE("PLAIN")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server(("127.0.0.1", 0), block=False)
    try:
        assoc = scu().associate("127.0.0.1", server.address[1], ssl_context=ctx)
        assert isinstance(assoc.error, TLSHandshakeError)
        assert "does the peer speak TLS?" in (assoc.failure_reason or "")
    finally:
        server.shutdown()
    # a silent plaintext listener: the handshake times out
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    t = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    t.start()
    try:
        ae2 = scu()
        ae2.connection_timeout = 0.5
        t0 = time.monotonic()
        assoc = ae2.associate("127.0.0.1", listener.getsockname()[1], ssl_context=ctx)
        assert time.monotonic() - t0 < 3
        assert isinstance(assoc.error, TLSHandshakeError)
        assert "timed out" in (assoc.failure_reason or "")
    finally:
        t.join(5)
        for s in accepted:
            s.close()
        listener.close()


PN_TLS = r'''
import ssl, sys
from pynetdicom import AE
from pynetdicom.sop_class import Verification
d = sys.argv[1]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=d + "/ca.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_cert_chain(d + "/server.pem", d + "/server.key")
ae = AE("PNTLS")
ae.add_supported_context(Verification)
srv = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=ctx)
print(srv.server_address[1], flush=True)
sys.stdin.read()
srv.shutdown()
'''


def test_echo_over_tls_with_pynetdicom(pki: dict[str, Path], tmp_path: Path) -> None:
    script = tmp_path / "pn_tls.py"
    script.write_text(textwrap.dedent(PN_TLS))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(pki["ca_pem"].parent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        ctx = client_context(pki["ca_pem"], pki["client_pem"], pki["client_key"])
        with scu().associate("127.0.0.1", port, ae_title="PNTLS", ssl_context=ctx) as assoc:
            assert assoc.is_established
            assert assoc.send_c_echo().Status == 0
        assert assoc.is_released
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_async_client_over_tls(tls_server: int, pki: dict[str, Path]) -> None:
    import asyncio

    good = client_context(pki["ca_pem"], pki["client_pem"], pki["client_key"])
    untrusted = client_context(pki["otherca_pem"], pki["client_pem"], pki["client_key"])

    async def main() -> None:
        async with await scu().associate_async("127.0.0.1", tls_server, ssl_context=good) as assoc:
            assert assoc.is_established
            assert (await assoc.send_c_echo()).Status == 0
        assert assoc.is_released
        bad = await scu().associate_async("127.0.0.1", tls_server, ssl_context=untrusted)
        assert not bad.is_established
        assert isinstance(bad.error, TLSHandshakeError)
        assert "certificate verify failed" in bad.failure_reason

    asyncio.run(main())
