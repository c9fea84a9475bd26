"""Soak: thousands of association cycles of every kind against ONE archive process.

Theory of operation
-------------------
One ``dicomnet qrscp`` process (its spool directory, ``TMPDIR``, inside the test's tree) serves
``DICOMNET_SOAK_CYCLES`` association cycles (default 1,000, bounded to about two minutes;
20,000 in the long run, ``DICOMNET_SLOW=1``). Each cycle is one of (seeded, reproducible mix):

* echo + release; release with no request at all;
* abort by the client (A-ABORT 0/0) after an echo, or before the association;
* abort by the server: the client breaks the protocol (PDV on an unknown context) and must get
  A-ABORT 2/5 (PS3.8 Table 9-26);
* socket closed mid-message: half a C-STORE data set, then close or RST;
* C-STORE of 1-3 instances (status recorded: only Success counts as acknowledged) + release;
* C-FIND with C-CANCEL right behind it: the operation must end with FE00 (or 0000 when it
  finished first; PS3.4 C.4.1.2.3) and the association must release cleanly.

After the warm-up (10% of the cycles) and at the end the server's open fds, threads and
resident memory are read from ``/proc``; they must stay within 10% (fds/threads within 10%
plus 2). Then every acknowledged object must be in the index, as a complete readable file with
its SOP Instance UID, nothing unacknowledged may be in the archive, no temp or spool file may
be left, and a C-FIND of the studies must answer as many as were stored. The figures are
printed in pytest's terminal summary (tests/soak/conftest.py).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from dicomnet.ul.codec import encode_pdu
from dicomnet.ul.pdu import AAbort
from tests.hostile.harness import (
    C_FIND_RSP,
    CTX_ECHO,
    CTX_FIND,
    CTX_STORE,
    Peer,
    PeerClosed,
    ServerProcess,
    assert_still_serving,
    cancel_rq,
    dcm_files,
    echo_rq,
    encode_implicit,
    env_int,
    find_rq,
    index_rows,
    pdata,
    read_sop_uid,
    slow,
    small_instance,
    store_rq,
    uid,
    wait_until,
)
from tests.soak.conftest import SoakReport

pytestmark = pytest.mark.interop

CYCLES = env_int("DICOMNET_SOAK_CYCLES", 1000)
SEED = env_int("DICOMNET_SOAK_SEED", 7)
KINDS = (
    "echo_release",
    "release_only",
    "client_abort",
    "abort_before_rq",
    "server_abort",
    "close_mid_message",
    "store",
    "store",
    "find_cancel",
)


def _study_identifier() -> bytes:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.PatientID = ""
    return encode_implicit(ds)


class Soak:
    def __init__(self, server: ServerProcess, rng: random.Random) -> None:
        self.server = server
        self.rng = rng
        self.acked: dict[str, str] = {}  # sop uid -> study uid
        self.refused: list[tuple[str, int]] = []
        self.unacked: set[str] = set()
        self.kinds: Counter[str] = Counter()
        self.find_outcomes: Counter[str] = Counter()
        self.identifier = _study_identifier()
        self.serial = 0

    def cycle(self, i: int) -> None:
        kind = self.rng.choice(KINDS)
        self.kinds[kind] += 1
        getattr(self, kind)(i)

    def echo_release(self, i: int) -> None:
        with Peer(self.server.port) as peer:
            peer.associate()
            assert peer.echo(i & 0xFFFF) == 0
            peer.release()

    def release_only(self, i: int) -> None:
        with Peer(self.server.port) as peer:
            peer.associate()
            peer.release()

    def client_abort(self, i: int) -> None:
        with Peer(self.server.port) as peer:
            peer.associate()
            assert peer.echo() == 0
            peer.abort()

    def abort_before_rq(self, i: int) -> None:
        with Peer(self.server.port) as peer:
            if self.rng.random() < 0.5:
                peer.send(encode_pdu(AAbort(0, 0)))
            else:
                peer.reset()

    def server_abort(self, i: int) -> None:
        with Peer(self.server.port) as peer:
            peer.associate()
            peer.send(pdata((99, 0x03, echo_rq())))
            pdus, closed = peer.reaction(10)
            assert closed and pdus == [AAbort(2, 5)], pdus

    def _next_instance(self) -> tuple[str, str, bytes]:
        self.serial += 1
        study = uid(40, self.serial // 16)
        series = uid(40, self.serial // 16, 1)
        sop, data = small_instance(self.serial, study, series, pixels=self.rng.choice((64, 4096)))
        return sop, study, data

    def close_mid_message(self, i: int) -> None:
        sop, _, data = self._next_instance()
        self.unacked.add(sop)
        with Peer(self.server.port) as peer:
            peer.associate()
            peer.send(pdata((CTX_STORE, 0x03, store_rq(sop))))
            cut = self.rng.randrange(1, len(data))
            message = pdata((CTX_STORE, 0x02, data))
            if self.rng.random() < 0.5:  # inside the data set PDV...
                peer.send(message[: 12 + cut])
            else:  # ...or inside the PDU header itself
                peer.send(message[: self.rng.randrange(1, 6)])
            if self.rng.random() < 0.5:
                peer.reset()

    def store(self, i: int) -> None:
        with Peer(self.server.port) as peer:
            peer.associate()
            for n in range(self.rng.randint(1, 3)):
                sop, study, data = self._next_instance()
                status = peer.store(sop, data, message_id=n + 1)
                if status == 0x0000:
                    self.acked[sop] = study
                else:
                    self.refused.append((sop, status))
            peer.release()

    def find_cancel(self, i: int) -> None:
        with Peer(self.server.port) as peer:
            peer.associate()
            mid = 1 + (i & 0x7FFF)
            peer.send_message(CTX_FIND, find_rq(mid), self.identifier)
            peer.send(pdata((CTX_FIND, 0x03, cancel_rq(mid))))
            pending = 0
            while True:
                rsp = peer.read_message()
                assert rsp.get("CommandField") == C_FIND_RSP
                assert rsp.get("MessageIDBeingRespondedTo") == mid
                if rsp.status in (0xFF00, 0xFF01):
                    pending += 1
                    continue
                break
            assert rsp.status in (0xFE00, 0x0000), hex(rsp.status)
            self.find_outcomes["cancelled" if rsp.status == 0xFE00 else "completed"] += 1
            # the association is still in order after the cancel
            peer.send_message(CTX_ECHO, echo_rq(mid + 1))
            assert peer.read_message().status == 0
            peer.release()


def _settled_figures(server: ServerProcess, max_fds: int | None = None) -> dict[str, int]:
    """Figures once the server has finished closing what the last cycles left behind."""
    if max_fds is not None:
        wait_until(lambda: server.fds() <= max_fds, 10)
    time.sleep(0.3)
    return server.figures()


def _count_studies(server: ServerProcess, identifier: bytes) -> int:
    with Peer(server.port) as peer:
        peer.associate()
        peer.send_message(CTX_FIND, find_rq(1), identifier)
        matches = 0
        while True:
            rsp = peer.read_message(30)
            if rsp.status in (0xFF00, 0xFF01):
                matches += 1
                continue
            assert rsp.status == 0x0000, hex(rsp.status)
            break
        peer.release()
    return matches


def run_soak(tmp_path: Path, cycles: int, report: SoakReport) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    storage = tmp_path / "archive"
    server = ServerProcess(
        "qrscp",
        tmp_path,
        ["--storage", str(storage), "-aet", "ANY-SCP", "-ta", "5", "-tn", "20", "--max-associations", "20"],
        env={"TMPDIR": str(spool)},
    )
    server.start()
    try:
        assert_still_serving(server)
        start = server.figures()
        soak = Soak(server, random.Random(SEED))
        warm_up = max(50, cycles // 10)
        t0 = time.monotonic()
        for i in range(warm_up):
            soak.cycle(i)
        warm = _settled_figures(server)
        for i in range(warm_up, cycles):
            soak.cycle(i)
            assert server.alive(), server.stderr_text()[-3000:]
        elapsed = time.monotonic() - t0
        end = _settled_figures(server, warm["fds"])
        ok_echo = assert_still_serving(server)

        # --- the archive: acknowledged == indexed == files, all complete ---------------------
        rows = index_rows(storage / "index.sqlite")
        files = dcm_files(storage)
        leftovers = [p for p in (storage / ".tmp").iterdir()] if (storage / ".tmp").exists() else []
        spool_left = list(spool.iterdir())
        missing = [s for s in soak.acked if s not in rows]
        unexpected = [s for s in rows if s not in soak.acked]
        broken: list[str] = []
        for sop in soak.acked:
            path = Path(rows.get(sop, ""))
            if not path.is_absolute():
                path = storage / path
            try:
                assert read_sop_uid(path) == sop
            except Exception as exc:  # any failure to read = a broken object
                broken.append(f"{sop}: {exc!r}")
        studies = _count_studies(server, soak.identifier)
        figures: dict[str, object] = {
            "cycles": cycles,
            "seconds": round(elapsed, 1),
            "cycles_per_s": round(cycles / elapsed, 1),
            "mix": dict(sorted(soak.kinds.items())),
            "c_find_cancel": dict(soak.find_outcomes),
            "acknowledged_objects": len(soak.acked),
            "refused_objects": len(soak.refused),
            "indexed_objects": len(rows),
            "files": len(files),
            "studies_found_by_c_find": studies,
            "fds start/warm/end": (start["fds"], warm["fds"], end["fds"]),
            "threads start/warm/end": (start["threads"], warm["threads"], end["threads"]),
            "rss_kb start/warm/end": (start["rss_kb"], warm["rss_kb"], end["rss_kb"]),
            "peak_rss_kb": end["hwm_kb"],
            "echoscu_after_s": round(ok_echo, 3),
        }
        report("soak", figures)
        print(f"\nsoak figures: {figures}")

        assert not soak.refused, soak.refused[:5]
        assert not missing, f"{len(missing)} acknowledged objects not indexed: {missing[:5]}"
        assert not unexpected, f"{len(unexpected)} unacknowledged objects in the index"
        assert not broken, broken[:5]
        assert len(files) == len(rows), (len(files), len(rows))
        assert not leftovers, f"temp files left in the archive: {leftovers[:5]}"
        assert not spool_left, f"spool files left: {spool_left[:5]}"
        assert studies == len(set(soak.acked.values()))
        assert end["fds"] <= warm["fds"] * 1.1 + 2, figures
        assert end["threads"] <= warm["threads"] * 1.1 + 2, figures
        assert end["rss_kb"] <= warm["rss_kb"] * 1.1, figures
    finally:
        server.stop()
        with contextlib.suppress(PeerClosed):
            pass


@pytest.mark.timeout(600)
def test_soak(tmp_path: Path, soak_report: SoakReport) -> None:
    run_soak(tmp_path, CYCLES, soak_report)


@slow
@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
def test_soak_full(tmp_path: Path, soak_report: SoakReport) -> None:
    run_soak(tmp_path, max(CYCLES, 20_000), soak_report)
