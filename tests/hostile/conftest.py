"""Fixtures of the hostile-peer suite: real ``dicomnet`` server processes with small timeouts.

Theory of operation
-------------------
``server_factory`` starts server processes for one test (killed and reaped at teardown);
``any_server`` is one long-lived process per module and tool (``qrscp`` and ``storescp``),
shared by the many quick hostile-table tests: each test leaves it serving, which the test
checks with DCMTK echoscu, and the ``no_leak`` fixture checks that its open file descriptors
are back to the module's baseline afterwards (a per-connection leak shows up at once).
The timeouts are short so that timer-driven reactions are seen in CI: ARTIM/ACSE ``-ta 2``,
network idle ``-tn 4``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_dcmtk
from tests.hostile.harness import (
    Peer,
    ServerProcess,
    echo_ok,
    small_instance,
    uid,
    wait_until,
)

ARTIM = 2.0
IDLE = 4.0
FAST_TIMEOUTS = ["-ta", str(ARTIM), "-tn", str(IDLE)]

ServerFactory = Callable[..., ServerProcess]


def server_args(tool: str, root: Path, extra: list[str] | None = None) -> list[str]:
    storage = root / "storage"
    # the archive's AE title is the one every client here calls (the harness's and DCMTK's
    # default called AE title): these tests are about bytes, not about who may call
    where = (["--storage", str(storage), "-aet", "ANY-SCP"] if tool == "qrscp"
             else ["-od", str(storage)])  # fmt: skip
    return where + FAST_TIMEOUTS + (extra or [])


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[ServerProcess] = []

    def make(
        tool: str = "qrscp",
        extra: list[str] | None = None,
        *,
        env: dict[str, str] | None = None,
        module: str = "dicomnet.cli.main",
        name: str | None = None,
        start: bool = True,
    ) -> ServerProcess:
        root = tmp_path / (name or f"{tool}{len(started)}")
        server = ServerProcess(tool, root, server_args(tool, root, extra), env=env, module=module)
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module", params=["qrscp", "storescp"])
def any_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    require_dcmtk("echoscu")
    tool = str(request.param)
    root = tmp_path_factory.mktemp(tool)
    server = ServerProcess(tool, root, server_args(tool, root, ["--max-associations", "20"]
                                                   if tool == "qrscp" else None))
    server.start()
    # warm up (imports, the index and its WAL files, the handler pool) before the fd baseline
    ok, _ = echo_ok(server.port)
    assert ok, server.stderr_text()
    with Peer(server.port) as peer:
        peer.associate()
        study, series = uid(99), uid(99, 1)
        sop, data = small_instance(1, study, series)
        assert peer.store(sop, data) == 0x0000
        peer.release()
    server.baseline_fds = server.fds()  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def no_leak(any_server: ServerProcess) -> Iterator[ServerProcess]:
    """The shared server; after the test its fds must return to the baseline."""
    yield any_server
    if any_server.alive():
        base = any_server.baseline_fds  # type: ignore[attr-defined]
        assert wait_until(lambda: any_server.fds() <= base, 10.0), (
            f"fd leak: {any_server.fds()} open, baseline {base}"
        )
