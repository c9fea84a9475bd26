"""Fixtures of the real-file corpus tests: the corpus itself (built once per run) and the peer
processes of a module (DCMTK's storescp, our qrscp), stopped at the module's end."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Server, read_banner
from tests.cli.helpers import env, start_tool, wait_port
from tests.conftest import free_port, require_dcmtk
from tests.corpus.helpers import build_corpus, sources_by_uid, walk_sorted


class Peers:
    """Processes of this module, stopped at its end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.servers: list[Server] = []

    def dcmtk_storescp(self, *extra: str, aet: str = "STORESCP", port: int | None = None) -> Server:
        port = port or free_port()
        out = self.tmp / f"dcmtk-{port}"
        out.mkdir()
        proc = subprocess.Popen([require_dcmtk("storescp"), "-aet", aet, "-od", str(out), *extra,
                                 str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env())  # fmt: skip
        server = Server(port, out, proc, aet)
        self.servers.append(server)
        wait_port(port, proc)
        return server

    def qrscp(self, destinations: dict[str, int], port: int | None = None,
              extra: tuple[str, ...] = ()) -> Server:  # fmt: skip
        port = port or free_port()
        storage = self.tmp / f"archive-{port}"
        args = ["qrscp", "--port", str(port), "--bind", "127.0.0.1", "--storage", str(storage),
                *extra]  # fmt: skip
        for aet, dest in destinations.items():
            args += ["--destination", f"{aet}=127.0.0.1:{dest}"]
        proc = start_tool(args)
        server = Server(port, storage, proc, "DICOMNET")
        self.servers.append(server)
        read_banner(proc)
        return server

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    p = Peers(tmp_path_factory.mktemp("corpus-peers"))
    yield p
    p.stop()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = build_corpus(tmp_path_factory.mktemp("corpus"))
    files = walk_sorted(root)
    assert len(files) >= 250, "the corpus packages are missing (pydicom, pydicom-data)"
    return {"root": root, "files": files, "sources": sources_by_uid(files)}
