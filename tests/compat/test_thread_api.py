"""pynetdicom's association is a ``threading.Thread``; its programs call ``is_alive()``,
``join()`` and ``kill()`` on it. dicomnet's association has no thread, and offers the three
with the same meaning (``dicomnet.association.Association``).

The first test runs one small pynetdicom program twice against a real DCMTK ``storescp`` --
as written, under pynetdicom, and after ``s/pynetdicom/dicomnet/`` -- and compares what both
print. The others check what only a live peer shows: ``join()`` answering the peer's
N-EVENT-REPORT while it waits and returning when the peer aborts, ``join()`` on the
acceptor's side returning when the requestor releases, ``kill()`` of an established
association reaching the peer as an A-ABORT.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet.ae import AE
from tests.compat.side_by_side import run_both
from tests.conftest import free_port

VERIFICATION = "1.2.840.10008.1.1"
COMMITMENT = "1.2.840.10008.1.20.1"
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"

PROGRAM = """
import sys, time
from pynetdicom import AE

ae = AE()
ae.add_requested_context("1.2.840.10008.1.1")
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="STORESCP")
print("established", assoc.is_established, "alive", assoc.is_alive(), "daemon", assoc.daemon)
start = time.monotonic()
assoc.join(0.3)
waited = time.monotonic() - start
print("join(0.3) waited", 0.25 < waited < 5, "alive", assoc.is_alive())
print("echo", hex(assoc.send_c_echo().Status))
assoc.release()
assoc.join()  # pynetdicom's thread ends just after release() returns
print("released", assoc.is_released, "alive", assoc.is_alive())
assoc.kill()
print("after kill", assoc.is_released, assoc.is_aborted, assoc.is_alive())
"""


@pytest.mark.interop
def test_thread_api_program_prints_the_same_under_both(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    theirs, ours, _port = run_both(PROGRAM, procs, tmp_path)
    assert theirs == [
        "established True alive True daemon True",
        "join(0.3) waited True alive True",
        "echo 0x0",
        "released True alive False",
        "after kill True False False",
    ]
    assert ours == theirs


@pytest.fixture
def commitment_server() -> Iterator[tuple[int, list[str]]]:
    """Our SCP: an N-ACTION is answered, then (from another thread, on the same association)
    an N-EVENT-REPORT is sent and the association aborted -- a peer ending it while the
    requestor waits in ``join()``."""
    seen: list[str] = []

    def on_action(event: evt.Event) -> tuple[int, None]:
        assoc = event.assoc

        def report() -> None:
            time.sleep(0.2)  # after the N-ACTION response is on its way
            reply = Dataset()
            reply.TransactionUID = "1.2.3.4"
            status, _ = assoc.send_n_event_report(reply, 1, COMMITMENT, COMMITMENT_INSTANCE)
            seen.append(f"report answered {status.Status:#06x}")
            assoc.abort()

        threading.Thread(target=report, daemon=True).start()
        return 0, None

    ae = AE("SCP")
    ae.add_supported_context(COMMITMENT, scu_role=True, scp_role=True)
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server(("127.0.0.1", free_port()), block=False,
                             evt_handlers=[(evt.EVT_N_ACTION, on_action)])  # fmt: skip
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()


def test_join_answers_the_peers_requests_and_returns_when_it_aborts(
    commitment_server: tuple[int, list[str]],
) -> None:
    port, seen = commitment_server
    reports: list[int] = []

    def on_report(event: evt.Event) -> tuple[int, None]:
        reports.append(int(event.event_type))
        return 0, None

    ae = AE("SCU")
    ae.add_requested_context(COMMITMENT)
    assoc = ae.associate("127.0.0.1", port, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    assert assoc.is_established
    action = Dataset()
    action.TransactionUID = "1.2.3.4"
    status, _ = assoc.send_n_action(action, 1, COMMITMENT, COMMITMENT_INSTANCE)
    assert status.Status == 0
    start = time.monotonic()
    assoc.join(timeout=20)
    assert time.monotonic() - start < 15  # ended by the peer's abort, not by the timeout
    assert reports == [1]  # answered while joined
    assert assoc.is_aborted and not assoc.is_alive()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == ["report answered 0x0000"]


def test_acceptor_join_returns_on_release_and_kill_aborts() -> None:
    joined: list[tuple[bool, bool]] = []
    aborted = threading.Event()
    waiters: list[threading.Thread] = []

    def on_echo(event: evt.Event) -> int:
        assoc = event.assoc

        def wait() -> None:  # another thread than the handler's, as a program would
            assoc.join(timeout=30)
            joined.append((assoc.is_released, assoc.is_alive()))

        if not waiters:
            thread = threading.Thread(target=wait, daemon=True)
            waiters.append(thread)
            thread.start()
        return 0

    ae = AE("SCP")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server(("127.0.0.1", free_port()), block=False,
                             evt_handlers=[(evt.EVT_C_ECHO, on_echo),
                                           (evt.EVT_ABORTED, lambda e: aborted.set())])  # fmt: skip
    try:
        scu = AE("SCU")
        scu.add_requested_context(VERIFICATION)
        assoc = scu.associate("127.0.0.1", server.server_address[1])
        assert assoc.send_c_echo().Status == 0
        time.sleep(0.3)
        assert not joined  # still waiting: the association is up
        assoc.release()
        waiters[0].join(timeout=10)
        assert joined == [(True, False)]

        # kill() of an established association: the peer sees an A-ABORT
        assoc = scu.associate("127.0.0.1", server.server_address[1])
        assert assoc.is_alive()
        assoc.kill()
        assert assoc.is_aborted and not assoc.is_alive()
        assert aborted.wait(10)
        assoc.kill()  # a second kill is nothing
    finally:
        server.shutdown()
