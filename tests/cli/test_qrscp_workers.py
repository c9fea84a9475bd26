"""``dicomnet qrscp --workers N``: N processes on one port (SO_REUSEPORT) sharing the file store
and the SQLite index. Concurrent associations are spread over the workers, everything they
store is indexed once, SIGTERM stops every process, and a worker that dies takes the others
down (exit status 1) rather than leaving a half-served port."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dicomnet import AE
from tests.cli.helpers import make_files, run_tool

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _store(port: int, files: list[Path]) -> list[int]:
    ae = AE(ae_title="SENDER")
    ae.add_requested_context(CT)
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMNET")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(str(f)).Status) for f in files]
    finally:
        assoc.release()


def test_workers_share_port_store_and_index(qrscp: Any, tmp_path: Path) -> None:
    srv = qrscp(extra=["--workers", "2"])
    workers = _children(srv.proc.pid)
    assert len(workers) == 2
    groups = [make_files(tmp_path / f"in{i}", 5, patient_id=f"P{i}") for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda g: _store(srv.port, g), groups))
    assert results == [[0] * 5] * 6
    # every instance indexed once: an IMAGE-level C-FIND per series finds its 5 instances
    for group in groups:
        from pydicom import dcmread

        ds = dcmread(group[0], stop_before_pixels=True)
        out = run_tool(["findscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", "-S",
                        "-k", "QueryRetrieveLevel=IMAGE",
                        "-k", f"StudyInstanceUID={ds.StudyInstanceUID}",
                        "-k", f"SeriesInstanceUID={ds.SeriesInstanceUID}",
                        "-k", "SOPInstanceUID", "--json"])
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.count('"00080018"') == 5
    assert srv.stop() == 0
    assert all(_gone(pid) for pid in workers)


def test_dead_worker_stops_the_rest(qrscp: Any) -> None:
    srv = qrscp(extra=["--workers", "2"])
    first, second = _children(srv.proc.pid)
    os.kill(first, signal.SIGKILL)
    assert srv.proc.wait(timeout=15) == 1
    assert _gone(second)


def test_workers_must_be_positive(tmp_path: Path) -> None:
    out = run_tool(["qrscp", "--port", "0", "--storage", str(tmp_path / "a"), "--workers", "0"])
    assert out.returncode == 2
    assert "--workers" in out.stdout + out.stderr


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie of an exited child of ours? (not ours: the parent reaps it)
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False
