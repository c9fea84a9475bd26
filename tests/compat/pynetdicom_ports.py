"""``get_port()`` for pynetdicom's test modules run through the shim, in place of their
``tests/utils.py`` one, which hands out the fixed ports 11112/11113 outside pytest-xdist: our
network tests bind only ports the system chose (port 0), so a real DICOM service listening on
11112 on the same machine is never disturbed and never makes a test fail.

The tests call ``get_port()`` once to start a server and again to connect to it, so each of the
two ports is chosen once per process (bound to 127.0.0.1 port 0, read, released) and then kept,
as pynetdicom keeps one pair per xdist worker.
"""

from __future__ import annotations

import socket

_PORTS: dict[str, int] = {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get_port(src: str = "local") -> int:
    """The process's port for ``src`` ("local" or "remote")."""
    if src not in _PORTS:
        _PORTS[src] = _free_port()
    return _PORTS[src]
