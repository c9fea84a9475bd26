"""qrscp --db postgresql://...: the archive's index in a PostgreSQL database (issue 17).

Two workers store into one PostgreSQL index and a C-FIND answers what either stored; an
unreachable database at start is a clear error with exit code 1; a database that goes away
mid-association fails one C-STORE cleanly and service resumes when it is back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from dicomnet import AE
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


def test_database_away_mid_association(qrscp: Any, tmp_path: Path) -> None:
    """The index database stops while a modality stores on one association: that C-STORE is
    answered A700 (Refused: Out of Resources, try again), nothing of it stays, and the next
    C-STORE on the same association succeeds once the database is back."""
    from tests import pg_cluster

    cluster = pg_cluster.start()
    if cluster is None or not cluster.own:
        pytest.skip("needs a PostgreSQL cluster of its own (initdb/pg_ctl)")
    try:
        srv = qrscp(extra=["--db", cluster.database()])
        files = make_files(tmp_path / "in", 3)
        ae = AE(ae_title="SENDER")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
        assoc = ae.associate("127.0.0.1", srv.port, ae_title="DICOMNET")
        assert assoc.is_established
        try:
            assert assoc.send_c_store(str(files[0])).Status == 0
            cluster.pause()
            assert assoc.send_c_store(str(files[1])).Status == 0xA700
            # queries and retrieves are refused as out of resources too (PS3.4 C.4.1.1.4:
            # A700; C.4.3.1.4: A701, the matches cannot be counted)
            assert _query_statuses(srv.port, dcmread(files[0]).StudyInstanceUID) == (0xA700,
                                                                                      0xA701)
            cluster.resume()
            assert assoc.send_c_store(str(files[2])).Status == 0
        finally:
            assoc.release()
        stored = sorted(p.name for p in Path(srv.directory).rglob("*.dcm"))
        expected = sorted(f"{dcmread(f).SOPInstanceUID}.dcm" for f in (files[0], files[2]))
        assert stored == expected  # the refused one left no file
        out = run_tool(["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S",
                        "-k", "QueryRetrieveLevel=IMAGE",
                        "-k", f"StudyInstanceUID={dcmread(files[0]).StudyInstanceUID}",
                        "-k", "SOPInstanceUID", "--json"])  # fmt: skip
        assert out.stdout.count('"00080018"') == 2, out.stdout + out.stderr
        assert srv.stop() == 0
    finally:
        cluster.stop()


def _query_statuses(port: int, study: str) -> tuple[int, int]:
    """The final statuses of a STUDY-level C-FIND and C-GET of ``study`` (Study Root)."""
    from pydicom import Dataset

    find, get = "1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.2.2.3"
    ae = AE(ae_title="VIEWER")
    ae.add_requested_context(find)
    ae.add_requested_context(get)
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMNET")
    assert assoc.is_established
    try:
        query = Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
        found = [int(st.Status) for st, _ in assoc.send_c_find(query, find)]
        got = [int(st.Status) for st, _ in assoc.send_c_get(query, get)]
    finally:
        assoc.release()
    return found[-1], got[-1]
