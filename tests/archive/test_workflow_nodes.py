"""Storage commitment on archive nodes sharing one PostgreSQL database: the pending commitment
of a node that dies (SIGKILL: no close, its sessions dropped by the server) is adopted by the
nodes still running -- reported exactly once although two of them compete for it -- while a
node that runs keeps its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dicomnet import events as evt
from dicomnet.archive.commitment import CommitmentService
from tests.archive.test_commitment import (
    CT,
    Listener,
    Requestor,
    Site,
    States,
    committed_of,
    failed_of,
    query,
    rows,
    start_scp,
)
from tests.conftest import free_port
from tests.pg_cluster import Cluster

_NODE = """
import sys
from dicomnet.ae import AE
from dicomnet.archive.commitment import SOP_CLASS, CommitmentService
from dicomnet.archive.index import ArchiveIndex

url, down = sys.argv[1], int(sys.argv[2])
index = ArchiveIndex(url)
service = CommitmentService(index, {"MODALITY": ("127.0.0.1", down)}, url, ae_title="ARCHIVE",
                            retry_delays=(3600,), spool_dir=sys.argv[3],
                            on_state=lambda txn, state, detail: print(state, txn, flush=True))
ae = AE("ARCHIVE")
ae.add_supported_context(SOP_CLASS)
server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=service.handlers())
print(server.address[1], flush=True)
sys.stdin.read()  # until the test kills us
"""


def _owner(db: str, txn: str) -> str:
    [(owner,)] = query(db, "SELECT owner FROM commitment WHERE transaction_uid = ?", (txn,))
    return str(owner)


def test_a_dead_nodes_commitment_is_adopted_and_reported_once(
    postgresql: Cluster, tmp_path: Path
) -> None:
    site = Site(tmp_path, postgresql.database())
    listener = Listener("MODALITY")
    where = {"MODALITY": ("127.0.0.1", listener.port)}
    # node B (with the archive and its index) and node C: both adopt every 0.2 s
    node_b = start_scp(site, where, adopt_every=0.2)
    assert site.db is not None
    states = States()
    node_c = CommitmentService(node_b.archive.index, where, site.db, on_state=states,
                               adopt_every=0.2)  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    spool = tmp_path / "spool-a"
    spool.mkdir()
    node_a = subprocess.Popen(
        [sys.executable, "-c", _NODE, site.db, str(free_port()), str(spool)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert node_a.stdout is not None
        port = int(node_a.stdout.readline())
        peer = Requestor(port, aet="MODALITY")
        peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
        txn, status = peer.commit([(CT, "2.25.7001.1.1"), (CT, "2.25.404")])
        peer.release()
        assert status == 0
        for line in node_a.stdout:  # node A checked it; its requestor is down: retry in 1 h
            if line.split() == ["retry", txn]:
                break
        else:
            pytest.fail("node A ended before its first attempt")
        owner_a = _owner(site.db, txn)
        assert owner_a.count(":") == 2  # "<host>:<pid>:<token>": a node's owner names its host
        time.sleep(0.6)  # several adoption rounds of B and C: node A is alive, they leave it
        assert node_b.service.adopt() == 0 and node_c.adopt() == 0
        assert rows(site.db, txn) == [("checked", 1, 2)] and _owner(site.db, txn) == owner_a
        assert listener.reports == []

        node_a.send_signal(signal.SIGKILL)  # no close: its lease goes with its connections
        node_a.wait(timeout=10)
        [report] = listener.wait(1)
        deadline = time.monotonic() + 15
        while rows(site.db, txn)[0][0] != "delivered" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)  # more adoption rounds: nothing is sent again
        assert len(listener.reports) == 1
        assert rows(site.db, txn) == [("delivered", 1, 2)]
        assert _owner(site.db, txn) in (node_b.service.owner, node_c.owner)
        assert report.event_type == 2 and report.info.TransactionUID == txn
        assert failed_of(report.info) == {"2.25.404": 0x0112}
        assert committed_of(report.info) == ["2.25.7001.1.1"]
    finally:
        if node_a.poll() is None:
            node_a.kill()
        node_a.wait(timeout=10)
        node_c.close()
        node_b.server.shutdown()
        node_b.service.close()
        node_b.archive.close()
        listener.close()


def test_a_closed_services_work_goes_to_the_next_adopter_only(
    postgresql: Cluster, tmp_path: Path
) -> None:
    """In one process, on PostgreSQL: the commitment of a closed service is adopted by exactly
    one of two services resuming at once; an open service's is never taken."""
    site = Site(tmp_path, postgresql.database())
    down = free_port()
    scp = start_scp(site, {"MODALITY": ("127.0.0.1", down)}, retry_delays=(3600,),
                    adopt_every=None)  # fmt: skip
    listener = Listener("MODALITY")
    assert site.db is not None
    try:
        peer = Requestor(scp.port, aet="MODALITY")
        peer.assoc.unbind(evt.EVT_N_EVENT_REPORT, peer.handle)
        txn, _ = peer.commit([(CT, "2.25.7001.1.1")])
        peer.release()
        scp.states.wait(txn, "retry")
        where = {"MODALITY": ("127.0.0.1", listener.port)}
        other = CommitmentService(scp.archive.index, where, site.db, adopt_every=None)
        try:
            assert other.adopt() == 0  # its owner is open
        finally:
            other.close()
        scp.server.shutdown()
        scp.service.close()
        first = CommitmentService(scp.archive.index, where, site.db, adopt_every=None)
        second = CommitmentService(scp.archive.index, where, site.db, adopt_every=None)
        try:
            barrier = threading.Barrier(2)
            taken: list[int] = []

            def resume(service: CommitmentService) -> None:
                barrier.wait()
                taken.append(service.resume())

            threads = [threading.Thread(target=resume, args=(s,)) for s in (first, second)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sorted(taken) == [0, 1]
            listener.wait(1)
        finally:
            first.close()
            second.close()
        assert len(listener.reports) == 1
        assert rows(site.db, txn)[0][0] == "delivered"
    finally:
        scp.archive.close()
        listener.close()
