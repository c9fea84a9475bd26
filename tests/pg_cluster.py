"""A throwaway PostgreSQL cluster for the tests of the PostgreSQL index backend.

Theory of operation
-------------------
:func:`start` runs Debian's (or any) ``initdb`` in a new temporary directory and ``pg_ctl -w
start`` on a free port of 127.0.0.1 (``-w``: pg_ctl returns once the server accepts
connections, no polling here). PostgreSQL refuses to run as root, so when the tests run as
root the cluster belongs to the unprivileged ``postgres`` user (Debian's package creates it)
and the commands run through ``runuser``. Authentication is ``trust`` on 127.0.0.1 only; fsync
is off (a test cluster). :meth:`Cluster.database` creates a fresh database per caller and
returns its URI; :meth:`Cluster.stop` stops the server (``-m immediate``) and removes the
directory.

``DICOMNET_TEST_POSTGRESQL=postgresql://user@host:port/db`` uses an existing server instead
(fresh databases are created on it). :func:`start` returns None (the tests skip) when no
``initdb`` can be found or the cluster does not start.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from urllib.parse import urlsplit, urlunsplit

_counter = itertools.count(1)


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A running PostgreSQL server the tests may create databases on."""

    def __init__(self, admin_url: str, datadir: str | None = None,
                 user: str | None = None, options: str = "") -> None:  # fmt: skip
        self.admin_url = admin_url
        self._datadir = datadir
        self._user = user
        self._options = options

    @property
    def own(self) -> bool:
        """Whether this cluster was started here (and may be paused)."""
        return self._datadir is not None

    def pause(self) -> None:
        """Stop the server, keeping its data (``-m fast``: its clients' connections end with
        "terminating connection due to administrator command"; an immediate stop would lose
        the last commits of this cluster, which runs with ``synchronous_commit=off``)."""
        done = self._pg_ctl("-m", "fast", "-w", "stop")
        assert done.returncode == 0, done.stderr

    def resume(self) -> None:
        """Start the server again after :meth:`pause` (same port, same data)."""
        done = self._start_server()
        assert done.returncode == 0, done.stderr

    def _start_server(self) -> subprocess.CompletedProcess[str]:
        assert self._datadir is not None, "not a cluster of ours"
        return self._pg_ctl("-o", self._options, "-l", os.path.join(self._datadir, "server.log"),
                            "-w", "-t", "60", "start")  # fmt: skip

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``pg_ctl`` on this cluster's data directory, as its user."""
        assert self._datadir is not None, "not a cluster of ours"
        pg_ctl = _binary("pg_ctl")
        assert pg_ctl is not None
        return _run(self._user, [pg_ctl, "-D", os.path.join(self._datadir, "data"), *args])

    def database(self) -> str:
        """A new, empty database; its URI."""
        import psycopg

        name = f"dicomnet_test_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + name))

    def stop(self) -> None:
        if self._datadir is None:
            return
        self._pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self._datadir, ignore_errors=True)
        self._datadir = None


def _run(user: str | None, argv: list[str]) -> subprocess.CompletedProcess[str]:
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def start() -> Cluster | None:
    """A cluster for this test session (see the module docstring), or None."""
    existing = os.environ.get("DICOMNET_TEST_POSTGRESQL")
    if existing:
        return Cluster(existing)
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        return None
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None
        user = "postgres"
    datadir = tempfile.mkdtemp(prefix="dicomnet-pg-")
    if user is not None:
        shutil.chown(datadir, user)
    data = os.path.join(datadir, "data")
    done = _run(user, [initdb, "-D", data, "-A", "trust", "-U", "dicomnet", "-E", "UTF8",
                       "--locale=C"])  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(datadir, ignore_errors=True)
        return None
    port = _free_port()
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {datadir} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")  # fmt: skip
    cluster = Cluster(f"postgresql://dicomnet@127.0.0.1:{port}/postgres", datadir, user, options)
    if cluster._start_server().returncode != 0:
        shutil.rmtree(datadir, ignore_errors=True)
        return None
    return cluster
