"""Clients that ask for a lot and then stop reading (issue 12: back-pressure).

Each stalled client associates, sends a C-FIND (IMAGE level, hundreds of matches) or a C-GET
(a study of 1 MiB instances, the client taking the SCP role for CT) and never reads another
byte; its socket's receive buffer is made tiny. The C-GETs fill the kernel's buffers and then
the server's own (64 KiB); the C-FIND results fit in the kernel's, as most do -- that a result
too big for them is produced only as fast as the peer reads is shown by
:func:`test_find_results_are_produced_as_the_peer_reads`, on a library server whose handler
counts what it was asked for. While
they sit there, a well-behaved client keeps associating and doing C-ECHO, C-STORE and C-FIND:
every operation must be answered within 1 s, the archive's resident memory (peak, VmHWM) must
stay under 300 MB, and after the network timeout every stalled association must be aborted by
the server (counted by its Prometheus endpoint) -- PS3.8 9.1.5 leaves the timer to the
implementation; what matters is that nothing waits forever.

200 C-FIND + 50 C-GET clients by default; 800 + 200 with ``DICOMNET_SLOW=1``.
"""

from __future__ import annotations

import contextlib
import re
import resource
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dicomnet.ul.codec import encode_pdu
from dicomnet.ul.pdu import (
    AAssociateRQ,
    ImplementationClassUID,
    MaximumLength,
    PresentationContextRQ,
    RoleSelection,
    UserInformation,
)
from tests.conftest import free_port
from tests.hostile.harness import (
    HAS_DATASET,
    IMPLICIT_LE,
    SLOW_ENABLED,
    STUDY_ROOT_FIND,
    UID_ROOT,
    VERIFICATION,
    ServerProcess,
    command,
    encode_implicit,
    wait_until,
)
from tests.hostile.malformed import CT, dataset

STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
FIND_CLIENTS, GET_CLIENTS = (800, 200) if SLOW_ENABLED else (200, 50)
MATCHES = 300  # instances in the queried series (~100 KB of C-FIND responses)
BIG = 8  # 1 MiB instances in the retrieved study
NETWORK_TIMEOUT = 10.0
STUDY_A, SERIES_A = f"{UID_ROOT}.8.1", f"{UID_ROOT}.8.1.1"
STUDY_B = f"{UID_ROOT}.8.2"

CTX_ECHO, CTX_FIND, CTX_GET, CTX_CT = 1, 3, 5, 7


def _fill(storage: Path) -> None:
    """The archive's content, written with the library (quicker than over the network)."""
    from dicomnet.archive.index import ArchiveIndex
    from dicomnet.archive.store import FileStore

    files = FileStore(storage)
    index = ArchiveIndex(storage / "index.sqlite")
    try:
        for n in range(MATCHES):
            sop = f"{SERIES_A}.{n}"
            files.store(index, CT, sop, IMPLICIT_LE, [dataset(sop, study=STUDY_A)])
        for n in range(BIG):
            sop = f"{STUDY_B}.1.{n}"
            files.store(index, CT, sop, IMPLICIT_LE,
                        [dataset(sop, study=STUDY_B, pixels=1 << 20)])  # fmt: skip
    finally:
        index.close()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * (FIND_CLIENTS + GET_CLIENTS) + 256
    if soft < need:  # our side of the sockets (the server raises its own limit)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    root = tmp_path_factory.mktemp("stalled")
    storage = root / "storage"
    _fill(storage)
    metrics = free_port()
    server = ServerProcess("qrscp", root, [
        "--storage", str(storage), "-aet", "ARCHIVE", "--durability", "fast",
        "-tn", str(NETWORK_TIMEOUT), "--max-associations", str(FIND_CLIENTS + GET_CLIENTS + 20),
        "--metrics", f"127.0.0.1:{metrics}", "--audit-log", "none",
    ])  # fmt: skip
    server.start()
    yield server, metrics
    server.stop()


def _rq(calling: str) -> bytes:
    ui = UserInformation((MaximumLength(16384), ImplementationClassUID(UID_ROOT + ".1"),
                          RoleSelection(CT, 0, 1)))  # fmt: skip
    contexts = (
        PresentationContextRQ(CTX_ECHO, VERIFICATION, (IMPLICIT_LE,)),
        PresentationContextRQ(CTX_FIND, STUDY_ROOT_FIND, (IMPLICIT_LE,)),
        PresentationContextRQ(CTX_GET, STUDY_ROOT_GET, (IMPLICIT_LE,)),
        PresentationContextRQ(CTX_CT, CT, (IMPLICIT_LE,)),
    )
    return encode_pdu(AAssociateRQ("ARCHIVE", calling, contexts, ui))


def _pdata(context_id: int, control: int, payload: bytes) -> bytes:
    from dicomnet.ul.pdu import PDV, PDataTF

    return encode_pdu(PDataTF((PDV(context_id, control, payload),)))


def _identifier(level: str, **keys: str) -> bytes:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k, v in keys.items():
        setattr(ds, k, v)
    return encode_implicit(ds)


FIND = _pdata(CTX_FIND, 0x03, command(
    AffectedSOPClassUID=STUDY_ROOT_FIND, CommandField=0x0020, MessageID=1, Priority=0,
    CommandDataSetType=HAS_DATASET)) + _pdata(CTX_FIND, 0x02, _identifier(
        "IMAGE", StudyInstanceUID=STUDY_A, SeriesInstanceUID=SERIES_A, SOPInstanceUID="",
        SOPClassUID="", PatientName="", PatientID="", InstanceNumber=""))  # fmt: skip
GET = _pdata(CTX_GET, 0x03, command(
    AffectedSOPClassUID=STUDY_ROOT_GET, CommandField=0x0010, MessageID=1, Priority=0,
    CommandDataSetType=HAS_DATASET)) + _pdata(CTX_GET, 0x02, _identifier(
        "STUDY", StudyInstanceUID=STUDY_B))  # fmt: skip


def _stalled(port: int, calling: str, request: bytes) -> socket.socket:
    """Associate, send ``request``, and never read again (tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(_rq(calling))
    header = b""
    while len(header) < 6:
        chunk = sock.recv(6 - len(header))
        assert chunk, "closed before the A-ASSOCIATE-AC"
        header += chunk
    assert header[0] == 0x02, f"not accepted: PDU type {header[0]:#x}"
    length = int.from_bytes(header[2:6], "big")
    while length:
        length -= len(sock.recv(min(length, 4096)))
    sock.sendall(request)
    return sock


def _metric(port: int, name: str, label: str = "") -> float:
    """The sum of metric ``name``'s samples whose labels contain ``label``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for m in re.finditer(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", text, re.M):
        if m.group(1) == name and label in (m.group(2) or ""):
            total += float(m.group(3))
    return total


def _timed_operations(port: int) -> dict[str, float]:
    """One association of a well-behaved client: how long each operation took."""
    from dicomnet import AE

    ae = AE(ae_title="GOOD")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT, IMPLICIT_LE)
    ae.add_requested_context(STUDY_ROOT_FIND)
    ae.acse_timeout = ae.dimse_timeout = 10
    took: dict[str, float] = {}
    t0 = time.monotonic()
    assoc = ae.associate("127.0.0.1", port, ae_title="ARCHIVE")
    took["associate"] = time.monotonic() - t0
    assert assoc.is_established
    try:
        t0 = time.monotonic()
        assert assoc.send_c_echo().Status == 0
        took["C-ECHO"] = time.monotonic() - t0
        from pydicom import dcmread
        from pydicom.filebase import DicomBytesIO

        sop = f"{UID_ROOT}.8.3.{time.monotonic_ns()}"
        ds = dcmread(DicomBytesIO(dataset(sop, study=f"{UID_ROOT}.8.3")), force=True)
        ds.file_meta = Dataset()
        ds.file_meta.TransferSyntaxUID = IMPLICIT_LE
        t0 = time.monotonic()
        assert assoc.send_c_store(ds).Status == 0
        took["C-STORE"] = time.monotonic() - t0
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = f"{UID_ROOT}.8.3"
        t0 = time.monotonic()
        results = list(assoc.send_c_find(query, STUDY_ROOT_FIND))
        took["C-FIND"] = time.monotonic() - t0
        assert results[-1][0].Status == 0 and len(results) == 2
    finally:
        assoc.release()
    return took


def test_stalled_clients_do_not_take_the_archive_down(
    archive: tuple[ServerProcess, int],
) -> None:
    server, metrics = archive
    baseline = _timed_operations(server.port)
    assert max(baseline.values()) < 1.0, baseline
    socks: list[socket.socket] = []
    try:
        for n in range(FIND_CLIENTS + GET_CLIENTS):
            finds = n < FIND_CLIENTS
            socks.append(_stalled(server.port, f"STALL{n}", FIND if finds else GET))
        # the server has written what the kernel would take and is waiting for each of them
        assert wait_until(lambda: _metric(metrics, "dicomnet_associations_active")
                          >= FIND_CLIENTS + GET_CLIENTS, 20.0)  # fmt: skip
        time.sleep(1.0)
        worst: dict[str, float] = {}
        for _ in range(5):
            for op, seconds in _timed_operations(server.port).items():
                worst[op] = max(worst.get(op, 0.0), seconds)
        assert max(worst.values()) < 1.0, f"answers slowed by stalled peers: {worst}"
        peak_mb = server.hwm_kb() / 1024
        assert peak_mb < 300, f"archive peak RSS {peak_mb:.0f} MB with stalled peers"
        # the network timeout ends every stalled association, busy or not
        stalled = FIND_CLIENTS + GET_CLIENTS
        assert wait_until(lambda: _metric(metrics, "dicomnet_associations_active") == 0,
                          NETWORK_TIMEOUT + 20.0), "stalled associations never aborted"  # fmt: skip
        ended = sum(_metric(metrics, "dicomnet_associations_total", f'outcome="{how}"')
                    for how in ("stalled", "aborted"))  # fmt: skip
        assert ended >= stalled, ended
        assert _metric(metrics, "dicomnet_stalled_associations_total") > 0
    finally:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
    # and it still serves as before
    assert max(_timed_operations(server.port).values()) < 1.0
    # peers that went away or were aborted are not errors (no "E:" line, no traceback)
    log = server.stderr_text()
    assert "Traceback" not in log
    assert not [line for line in log.splitlines() if line.startswith("E:")], log[-2000:]


def test_find_results_are_produced_as_the_peer_reads() -> None:
    """A library server whose C-FIND handler could yield 100,000 matches of ~1 KB: with a
    peer that reads nothing, the handler is asked for only what fits in the socket buffers
    (a few MB), not for the whole result; after the network timeout the association is
    aborted and the handler's generator closed."""
    import threading

    from dicomnet import AE
    from dicomnet import events as evt

    pulled = 0
    closed = threading.Event()

    def on_find(event: object) -> Iterator[tuple[int, Dataset]]:
        nonlocal pulled
        try:
            for i in range(100_000):
                ds = Dataset()
                ds.QueryRetrieveLevel = "IMAGE"
                ds.SOPInstanceUID = f"{UID_ROOT}.9.{i}"
                ds.ImageComments = "x" * 1000
                pulled += 1
                yield 0xFF00, ds
        finally:
            closed.set()

    ae = AE(ae_title="ARCHIVE")
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(STUDY_ROOT_FIND)
    ae.network_timeout = 3.0
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_FIND, on_find)])  # fmt: skip
    assert server is not None
    try:
        sock = _stalled(server.address[1], "STALLED", FIND)
        try:
            # production stops once the buffers are full: the count settles
            last = -1
            deadline = time.monotonic() + 10
            while pulled != last and time.monotonic() < deadline:
                last = pulled
                time.sleep(0.5)
            assert pulled == last, "the handler kept producing for a peer that reads nothing"
            assert pulled < 10_000, f"{pulled} matches produced for a peer that read none"
            # the network timeout ends it: the generator is closed, the association gone
            assert closed.wait(15), "the handler's generator was never closed"
            assert wait_until(lambda: not server.active_associations, 10)
        finally:
            sock.close()
        assert pulled < 10_000
    finally:
        server.shutdown()
