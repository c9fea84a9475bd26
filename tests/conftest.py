"""Shared fixtures: free loopback ports, locating real DCMTK binaries, process clean-up."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from dicomnet.server import Server

DATA = Path(__file__).parent / "data"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0, read it back), never one this test run
    handed out before: two calls in a row may otherwise get the same just-released port."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no fresh free port found")


def dcmtk_tool(name: str) -> str | None:
    """Path to DCMTK's ``name``; pynetdicom installs same-named apps in the venv, skip those."""
    for directory in ("/usr/bin", "/usr/local/bin"):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found and ".venv" not in found and "site-packages" not in found:
        return found
    return None


def require_dcmtk(name: str) -> str:
    path = dcmtk_tool(name)
    if path is None:
        pytest.skip(f"DCMTK {name} not installed")
    return path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    """A test CA (and a second, untrusted one) with server and client certificates for
    127.0.0.1, made by ``openssl``: keys ``ca_pem``, ``server_pem``, ``server_key``, ...."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "otherca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                 "-days", "2", "-subj", f"/CN=dicomnet test {ca}", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
                 "-extfile", "san.ext", cwd=d)  # fmt: skip
    return {p.stem + p.suffix.replace(".", "_"): p for p in d.iterdir()}


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes registered here are killed and reaped at teardown."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """In-process servers (``start_server(..., block=False)``) registered here are shut down at
    teardown. (tests/cli has its own ``servers``: tool processes, stopped.)"""
    started: list[Server] = []
    yield started
    for server in started:
        server.shutdown()


@pytest.fixture(scope="session")
def postgresql() -> Iterator[object]:
    """A throwaway PostgreSQL cluster for this session (:mod:`tests.pg_cluster`): skips when
    PostgreSQL or psycopg is not installed."""
    pytest.importorskip("psycopg")
    pytest.importorskip("psycopg_pool")
    from tests import pg_cluster

    cluster = pg_cluster.start()
    if cluster is None:
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found) or did not start")
    yield cluster
    cluster.stop()
