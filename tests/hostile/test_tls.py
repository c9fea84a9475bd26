"""TLS mix-ups: plaintext DICOM on a TLS port, TLS on a plaintext port.

Theory of operation
-------------------
PS3.15 Annex B.1 (TLS secure transport) runs the Upper Layer protocol inside TLS; a peer that
gets the transport wrong must fail fast and cleanly on both sides, and the server must go on
serving correct peers. A self-signed certificate is made with ``openssl`` for the TLS server.
The checks: no A-ASSOCIATE-AC ever reaches the wrong-transport peer, the connection is closed
within a few seconds (well before any DICOM timeout would fire), and a correct peer (TLS
association + C-ECHO for the TLS server, DCMTK echoscu for the plain one) is served at once.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from dicomnet.ul.codec import encode_pdu
from dicomnet.ul.pdu import AAssociateAC
from tests.hostile.conftest import ServerFactory
from tests.hostile.harness import (
    Peer,
    ServerProcess,
    assert_still_serving,
    associate_rq,
    tls_client_socket,
)

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return cert, key


def _tls_server(factory: ServerFactory, certificate: tuple[Path, Path]) -> ServerProcess:
    cert, key = certificate
    return factory("storescp", ["--tls", "--tls-cert", str(cert), "--tls-key", str(key)])


def _tls_echo(port: int) -> None:
    with Peer(port, sock=tls_client_socket(port)) as peer:
        peer.associate()
        assert peer.echo() == 0x0000
        peer.release()


def test_tls_server_serves_tls(server_factory: ServerFactory, certificate: tuple[Path, Path]) -> None:
    """Control: the TLS server works for a TLS peer (so the failures below mean something)."""
    _tls_echo(_tls_server(server_factory, certificate).port)


def test_plaintext_on_tls_port(server_factory: ServerFactory, certificate: tuple[Path, Path]) -> None:
    server = _tls_server(server_factory, certificate)
    with Peer(server.port) as peer:
        peer.send(encode_pdu(associate_rq()))
        t0 = time.monotonic()
        received = b""
        peer.sock.settimeout(5)
        try:
            while chunk := peer.sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        took = time.monotonic() - t0
    assert took < 3, f"plaintext on the TLS port held for {took:.1f}s"
    # nothing but (at most) a TLS alert record (content type 21); never a DICOM PDU
    assert received == b"" or received[0] == 0x15, received[:16]
    _tls_echo(server.port)


def test_silent_plaintext_on_tls_port_is_closed(
    server_factory: ServerFactory, certificate: tuple[Path, Path]
) -> None:
    """A peer that connects to the TLS port and never says anything is dropped by the
    handshake timeout; meanwhile others are served."""
    server = _tls_server(server_factory, certificate)
    with socket.create_connection(("127.0.0.1", server.port), 5) as silent:
        _tls_echo(server.port)
        silent.settimeout(20)
        t0 = time.monotonic()
        try:
            data = silent.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"" or data[0] == 0x15
        assert time.monotonic() - t0 < 15


def test_tls_on_plaintext_port(server_factory: ServerFactory) -> None:
    server = server_factory("storescp")
    t0 = time.monotonic()
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)) as info:
        sock = tls_client_socket(server.port, timeout=10)
        try:  # the handshake must not succeed, and no A-ASSOCIATE-AC may come of it
            with Peer(server.port, sock=sock) as peer:
                peer.send(encode_pdu(associate_rq()))
                assert not isinstance(peer.read_pdu(5), AAssociateAC)
        finally:
            sock.close()
    took = time.monotonic() - t0
    assert took < 3, f"TLS on the plain port took {took:.1f}s to fail ({info.value!r})"
    assert_still_serving(server)
