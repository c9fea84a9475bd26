"""``qrscp --clean`` (pynetdicom's qrscp option): asks on stdin, then deletes every stored
instance and its index entries and exits; refused while a qrscp serves the folder."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Server
from tests.cli.helpers import dcm_files, env, make_files, run_tool
from tests.conftest import require_dcmtk


def _find(port: int, aet: str) -> int:
    """How many STUDY-level answers DCMTK findscu gets for everything."""
    done = subprocess.run([require_dcmtk("findscu"), "-aec", aet, "-S", "-k",
                           "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "127.0.0.1",
                           str(port)], capture_output=True, text=True, env=env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    return (done.stdout + done.stderr).count("Find Response:")


def test_clean_asks_then_empties_the_archive(qrscp: Callable[..., Server], tmp_path: Path) -> None:
    server = qrscp()
    files = make_files(tmp_path / "in", 3, patient_id="CLEAN")
    done = subprocess.run([require_dcmtk("storescu"), "-aec", server.aet, "127.0.0.1",
                           str(server.port), *map(str, files)],
                          capture_output=True, text=True, env=env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(dcm_files(server.directory)) == 3
    assert _find(server.port, server.aet) == 1
    storage = ["--storage", str(server.directory)]

    # the folder is in use: refused, nothing deleted
    busy = run_tool(["qrscp", *storage, "--clean"], input="yes\n")
    assert busy.returncode != 0 and "use" in busy.stderr.lower()
    assert len(dcm_files(server.directory)) == 3
    assert server.stop() == 0

    # anything but "yes": nothing happens
    kept = run_tool(["qrscp", *storage, "--clean"], input="no\n")
    assert kept.returncode == 0 and "[yes/no]" in kept.stdout
    assert len(dcm_files(server.directory)) == 3

    cleaned = run_tool(["qrscp", *storage, "--clean"], input="yes\n")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "3 instance(s) removed" in cleaned.stdout
    assert dcm_files(server.directory) == []

    # served again (the later --storage wins): the index is empty too
    restarted = qrscp(extra=storage)
    assert _find(restarted.port, restarted.aet) == 0
    done = subprocess.run([require_dcmtk("storescu"), "-aec", restarted.aet, "127.0.0.1",
                           str(restarted.port), str(files[0])],
                          capture_output=True, text=True, env=env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(dcm_files(server.directory)) == 1  # the folder cleaned is the one served
    assert _find(restarted.port, restarted.aet) == 1
