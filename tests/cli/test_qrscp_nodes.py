"""Two qrscp nodes on one PostgreSQL index and one storage folder, driven by DCMTK (issue 17).

Twenty DCMTK storescu processes store four studies at once, split across both nodes (every
study arrives through both); DCMTK findscu, getscu and movescu then ask the node that did not
store an instance for it. One node is killed (SIGKILL) while a client stores into it,
restarted, and every instance it acknowledged is there, whole, for the other node to send.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomnet import AE
from tests.cli.conftest import Server, read_banner
from tests.cli.helpers import env, make_files, start_tool
from tests.conftest import free_port, require_dcmtk
from tests.pg_cluster import Cluster

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


class Nodes:
    """Start (and restart) qrscp nodes sharing one storage folder and one index."""

    def __init__(self, storage: Path, db: str, servers: list[Server]) -> None:
        self.storage, self.db, self.servers = storage, db, servers
        self.ports: dict[str, int] = {}

    def start(self, name: str, extra: list[str] | None = None) -> Server:
        port = self.ports.setdefault(name, free_port())
        proc = start_tool(["qrscp", "--port", str(port), "--bind", "127.0.0.1", "-aet",
                           "DICOMNET", "--storage", str(self.storage), "--db", self.db,
                           "--node", name, "--durability", "fast", *(extra or [])])  # fmt: skip
        server = Server(port, self.storage, proc, "DICOMNET")
        self.servers.append(server)
        read_banner(proc)
        return server


@pytest.fixture
def nodes(tmp_path: Path, postgresql: Cluster, servers: list[Server]) -> Iterator[Nodes]:
    yield Nodes(tmp_path / "shared", postgresql.database(), servers)


def _dcmtk(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_dcmtk(tool), *args], capture_output=True, text=True,
                          timeout=120, env=env(), check=False)  # fmt: skip


def _index_rows(db: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(db) as conn:
        return list(conn.execute(sql).fetchall())


def test_twenty_storescu_across_two_nodes_then_the_other_node_serves(
        nodes: Nodes, tmp_path: Path, servers: list[Server]) -> None:  # fmt: skip
    storescu = require_dcmtk("storescu")
    a, b = nodes.start("a"), nodes.start("b")
    # four studies of two patients, two series each, 25 instances per series
    files: list[Path] = []
    for s in range(4):
        study = f"1.2.826.0.1.3680043.10.543.{s + 1}"
        for r in range(2):
            files += make_files(tmp_path / f"in{s}-{r}", 25, study_uid=study,
                                series_uid=f"{study}.{r + 1}",
                                patient_id=f"PAT{s % 2}")  # fmt: skip
    groups = [files[i::20] for i in range(20)]  # every study reaches both nodes
    procs = [
        subprocess.Popen([storescu, "-aec", "DICOMNET", "127.0.0.1",
                          str((a if i % 2 == 0 else b).port), *map(str, group)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env())
        for i, group in enumerate(groups)
    ]
    outputs = [p.communicate(timeout=180)[0].decode(errors="replace") for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, "\n".join(outputs)

    # one set of rows: no duplicate patient/study/series, every instance once
    assert _index_rows(nodes.db, "SELECT COUNT(*) FROM patient") == [(2,)]
    assert _index_rows(nodes.db, "SELECT COUNT(*) FROM study") == [(4,)]
    assert _index_rows(nodes.db, "SELECT COUNT(*) FROM series") == [(8,)]
    assert _index_rows(nodes.db, "SELECT COUNT(*) FROM instance") == [(200,)]

    # DCMTK findscu on node b: each study's computed counts include what node a stored
    for s in range(4):
        study = f"1.2.826.0.1.3680043.10.543.{s + 1}"
        out = _dcmtk("findscu", "-S", "-aec", "DICOMNET", "-k", "QueryRetrieveLevel=STUDY",
                     "-k", f"StudyInstanceUID={study}", "-k", "NumberOfStudyRelatedInstances",
                     "-k", "NumberOfStudyRelatedSeries", "127.0.0.1", str(b.port))  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        assert "(0020,1208) IS [50]" in out.stderr + out.stdout
        assert re.search(r"\(0020,1206\) IS \[2 ?\]", out.stderr + out.stdout)

    # DCMTK getscu from node b of a study half stored through node a: every instance, whole
    got = tmp_path / "got"
    got.mkdir()
    study = "1.2.826.0.1.3680043.10.543.1"
    out = _dcmtk("getscu", "-S", "-aec", "DICOMNET", "-k", "QueryRetrieveLevel=STUDY",
                 "-k", f"StudyInstanceUID={study}", "-od", str(got), "127.0.0.1",
                 str(b.port))  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    sent = {str(dcmread(f).SOPInstanceUID): f for f in files
            if str(dcmread(f, stop_before_pixels=True).StudyInstanceUID) == study}  # fmt: skip
    received = {str(dcmread(f).SOPInstanceUID): f for f in got.iterdir()}
    assert received.keys() == sent.keys()
    for uid, path in received.items():
        assert dcmread(path).PixelData == dcmread(sent[uid]).PixelData

    # DCMTK movescu through node a to a DCMTK storescp, of a study half stored through b
    storescp = require_dcmtk("storescp")
    dest_dir, dest_port = tmp_path / "moved", free_port()
    dest_dir.mkdir()
    dest = subprocess.Popen([storescp, "-aet", "DEST", "-od", str(dest_dir), str(dest_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env())  # fmt: skip
    servers.append(Server(dest_port, dest_dir, dest, "DEST"))
    a.stop()  # node a again, now with the destination configured
    a = nodes.start("a", ["--destination", f"DEST=127.0.0.1:{dest_port}"])
    study = "1.2.826.0.1.3680043.10.543.2"
    out = _dcmtk("movescu", "-S", "-aec", "DICOMNET", "-aem", "DEST", "-k",
                 "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "127.0.0.1",
                 str(a.port))  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(list(dest_dir.iterdir())) == 50


def test_node_killed_mid_store_loses_nothing_acknowledged(nodes: Nodes, tmp_path: Path) -> None:
    a, b = nodes.start("a"), nodes.start("b")
    files = make_files(tmp_path / "in", 150, study_uid="1.2.826.0.1.3680043.10.543.9",
                       series_uid="1.2.826.0.1.3680043.10.543.9.1", rows=256,
                       columns=256)  # fmt: skip
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CT)
    assoc = ae.associate("127.0.0.1", a.port, ae_title="DICOMNET")
    assert assoc.is_established
    acknowledged: list[str] = []
    killer: threading.Timer | None = None
    for path in files:
        try:
            rsp = assoc.send_c_store(str(path))
        except Exception:  # the association died with the node
            break
        if rsp.get("Status") != 0:
            break
        acknowledged.append(str(dcmread(path, stop_before_pixels=True).SOPInstanceUID))
        if len(acknowledged) == 20:  # kill it while the next stores are on their way
            killer = threading.Timer(0.02, os.kill, (a.proc.pid, signal.SIGKILL))
            killer.start()
    if killer is not None:
        killer.join()
    assoc.abort()
    assert a.proc.wait(timeout=10) == -signal.SIGKILL
    assert 20 <= len(acknowledged) < len(files)

    nodes.start("a")  # the restart runs a's start-up check (no clean-stop marker)
    # everything acknowledged is indexed, and node b sends it whole
    ae = AE(ae_title="VIEWER")
    ae.add_requested_context(STUDY_ROOT_FIND)
    assoc = ae.associate("127.0.0.1", b.port, ae_title="DICOMNET")
    assert assoc.is_established
    from pydicom import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = "1.2.826.0.1.3680043.10.543.9"
    query.SeriesInstanceUID = "1.2.826.0.1.3680043.10.543.9.1"
    query.SOPInstanceUID = ""
    found = {str(ident.SOPInstanceUID) for status, ident in assoc.send_c_find(query,
             STUDY_ROOT_FIND) if status.Status == 0xFF00}  # fmt: skip
    assoc.release()
    assert set(acknowledged) <= found
    got = tmp_path / "got"
    got.mkdir()
    out = _dcmtk("getscu", "-S", "-aec", "DICOMNET", "-k", "QueryRetrieveLevel=SERIES",
                 "-k", "StudyInstanceUID=1.2.826.0.1.3680043.10.543.9",
                 "-k", "SeriesInstanceUID=1.2.826.0.1.3680043.10.543.9.1",
                 "-od", str(got), "127.0.0.1", str(b.port))  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    received = {str(dcmread(f).SOPInstanceUID) for f in got.iterdir()}
    assert received == found  # whatever is indexed can be sent
    # a's spool holds nothing from before the kill
    assert os.listdir(tmp_path / "shared" / ".tmp" / "a") == []


def test_mpps_and_commitment_state_is_shared_by_the_nodes(nodes: Nodes) -> None:
    """qrscp --mpps --commitment on two nodes: the state lives in the PostgreSQL index's
    database (no STORAGE/workflow.sqlite); a step created through node a is completed through
    node b, then refused by a; a commitment asked of b covers what a stored."""
    import sys

    from pydicom.data import get_testdata_file

    from dicomnet.archive.mpps import MPPSStore

    a = nodes.start("a", ["--mpps", "--commitment"])
    b = nodes.start("b", ["--mpps", "--commitment"])

    def mppsscu(node: Server, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dicomnet.cli.main", "mppsscu", "-aec",
                               node.aet, "127.0.0.1", str(node.port), *args],
                              capture_output=True, text=True, timeout=60, env=env())  # fmt: skip

    created = mppsscu(a, "create", "-q", "-k", "PatientID=P77")
    assert created.returncode == 0, created.stderr
    uid = created.stdout.strip().splitlines()[-1]
    done = mppsscu(b, "complete", uid)
    assert done.returncode == 0, done.stderr
    again = mppsscu(a, "set", uid, "-k", "PerformedProcedureStepDescription=late")
    assert again.returncode == 1 and "0x0110" in (again.stdout + again.stderr)
    assert not (nodes.storage / "workflow.sqlite").exists()
    with MPPSStore(nodes.db) as store:
        assert store.get(uid).PerformedProcedureStepStatus == "COMPLETED"

    stored = str(get_testdata_file("CT_small.dcm"))
    put = _dcmtk("storescu", "-aec", a.aet, "127.0.0.1", str(a.port), stored)
    assert put.returncode == 0, put.stderr
    commit = subprocess.run([sys.executable, "-m", "dicomnet.cli.main", "stgcmtscu", "-aet",
                             "STGCMTSCU", "-aec", b.aet, "127.0.0.1", str(b.port), stored],
                            capture_output=True, text=True, timeout=90, env=env())  # fmt: skip
    assert commit.returncode == 0, commit.stdout + commit.stderr
    assert "committed" in commit.stdout
    [(state, count)] = _index_rows(nodes.db, "SELECT state, item_count FROM commitment")
    assert (state, count) == ("delivered", 1)
