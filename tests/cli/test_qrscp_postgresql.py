"""qrscp --db postgresql://...: the archive's index in a PostgreSQL database (issue 17).

Two workers store into one PostgreSQL index and a C-FIND answers what either stored; an
unreachable database at start is a clear error with exit code 1."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydicom import dcmread

from tests.cli.helpers import make_files, run_tool
from tests.cli.test_qrscp_workers import _store
from tests.conftest import free_port
from tests.pg_cluster import Cluster


def test_qrscp_on_postgresql(qrscp: Any, postgresql: Cluster, tmp_path: Path) -> None:
    srv = qrscp(extra=["--db", postgresql.database(), "--workers", "2"])
    groups = [make_files(tmp_path / f"in{i}", 4, patient_id=f"P{i}") for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda g: _store(srv.port, g), groups))
    assert results == [[0] * 4] * 4
    for group in groups:
        ds = dcmread(group[0], stop_before_pixels=True)
        out = run_tool(["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S",
                        "-k", "QueryRetrieveLevel=IMAGE",
                        "-k", f"StudyInstanceUID={ds.StudyInstanceUID}",
                        "-k", "SOPInstanceUID", "--json"])  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.count('"00080018"') == 4
    assert srv.stop() == 0


def test_unreachable_database_at_start(tmp_path: Path) -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    out = run_tool(["qrscp", "--port", str(free_port()), "--bind", "127.0.0.1",
                    "--storage", str(tmp_path / "a"), "--db", url], timeout=60)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "cannot connect to the index database" in out.stderr
    assert "Traceback" not in out.stderr
