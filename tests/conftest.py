"""Shared fixtures: free loopback ports, locating real DCMTK binaries, process clean-up."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0, read it back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
