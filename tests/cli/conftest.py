"""Fixtures for the tool tests: our qrscp / storescp and DCMTK's storescp / dcmqrscp as real
processes on free loopback ports, torn down (SIGTERM, then kill) at the end of each test."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import env, start_tool, wait_port
from tests.conftest import free_port, require_dcmtk


@dataclass
class Server:
    port: int
    directory: Path
    proc: subprocess.Popen[bytes]
    aet: str
    output: list[str] = field(default_factory=list)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        drain = _DRAINS.pop(self.proc.pid, None)
        if drain is not None:
            drain[0].join(timeout=10)
            self.output.append(b"".join(drain[1]).decode(errors="replace"))
        elif self.proc.stdout is not None and not self.proc.stdout.closed:
            self.output.append(self.proc.stdout.read().decode(errors="replace"))
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return int(self.proc.returncode)


# pid -> (thread reading the server's output after its banner, the lines read)
_DRAINS: dict[int, tuple[threading.Thread, list[bytes]]] = {}


def read_banner(proc: subprocess.Popen[bytes], marker: bytes = b"listening on") -> bytes:
    """Block until the server prints its 'listening on' line (it prints after binding); then
    keep reading its output in a thread, so that a server that logs a lot never blocks on a
    full pipe (Server.stop collects it)."""
    assert proc.stdout is not None
    seen = b""
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server exited early ({proc.wait()}): {seen.decode(errors='replace')}")
        seen += line
        if marker in line:
            lines: list[bytes] = []
            thread = threading.Thread(target=_drain, args=(proc.stdout, lines), daemon=True)
            thread.start()
            _DRAINS[proc.pid] = (thread, lines)
            return seen


def _drain(stream: Any, lines: list[bytes]) -> None:
    lines.extend(iter(stream.readline, b""))


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


@pytest.fixture
def qrscp(tmp_path: Path, servers: list[Server]) -> Callable[..., Server]:
    """Start our archive: qrscp(destinations={AET: port}, extra=[...])."""

    def start(
        destinations: dict[str, int] | None = None, extra: list[str] | None = None, aet: str = "DICOMNET"
    ) -> Server:
        port = free_port()
        storage = tmp_path / f"archive-{port}"
        args = ["qrscp", "--port", str(port), "--bind", "127.0.0.1", "--storage", str(storage),
                "-aet", aet]
        for dest_aet, dest_port in (destinations or {}).items():
            args += ["--destination", f"{dest_aet}=127.0.0.1:{dest_port}"]
        proc = start_tool(args + (extra or []))
        server = Server(port, storage, proc, aet)
        servers.append(server)
        read_banner(proc)
        return server

    return start


@pytest.fixture
def storescp(tmp_path: Path, servers: list[Server]) -> Callable[..., Server]:
    """Start our storescp: storescp(extra=[...], port=None)."""

    def start(extra: list[str] | None = None, port: int | None = None, aet: str = "STORESCP") -> Server:
        port = port or free_port()
        out = tmp_path / f"received-{port}"
        proc = start_tool(["storescp", str(port), "-od", str(out), "--bind", "127.0.0.1",
                           "-aet", aet, *(extra or [])])
        server = Server(port, out, proc, aet)
        servers.append(server)
        read_banner(proc)
        return server

    return start


@pytest.fixture
def dcmtk_storescp(tmp_path: Path, servers: list[Server]) -> Callable[..., Server]:
    """DCMTK's storescp on a free port: dcmtk_storescp(extra=[...])."""
    exe = require_dcmtk("storescp")

    def start(extra: list[str] | None = None, aet: str = "STORESCP") -> Server:
        port = free_port()
        out = tmp_path / f"dcmtk-received-{port}"
        out.mkdir()
        proc = subprocess.Popen(
            [exe, "-aet", aet, "-od", str(out), *(extra or []), str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env(),
        )
        server = Server(port, out, proc, aet)
        servers.append(server)
        wait_port(port, proc)
        return server

    return start


@pytest.fixture
def dcmqrscp(tmp_path: Path, servers: list[Server]) -> Callable[..., Server]:
    """DCMTK's dcmqrscp with a config in tmp: one storage area AE 'DCMQR', our AE titles
    registered as move destinations: dcmqrscp({AET: port})."""
    exe = require_dcmtk("dcmqrscp")

    def start(peers: dict[str, int] | None = None) -> Server:
        port = free_port()
        db = tmp_path / f"dcmqr-{port}"
        db.mkdir()
        host_lines = "\n".join(f"{aet.lower()} = ({aet}, 127.0.0.1, {p})"
                               for aet, p in (peers or {}).items())
        peer_list = ", ".join(aet.lower() for aet in (peers or {})) or "ANY"
        cfg = tmp_path / f"dcmqrscp-{port}.cfg"
        cfg.write_text(
            f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\n"
            f"HostTable BEGIN\n{host_lines}\n"
            + (f"peers = {peer_list}\n" if peers else "")
            + "HostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
            f"AETable BEGIN\nDCMQR {db} RW (200, 1024mb) ANY\nAETable END\n"
        )
        proc = subprocess.Popen([exe, "-c", str(cfg), str(port)], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env())
        server = Server(port, db, proc, "DCMQR")
        servers.append(server)
        wait_port(port, proc)
        return server

    return start


def kill_quietly(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
