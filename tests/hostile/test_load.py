"""Slow and silent peers, and association floods, against one real server process.

Theory of operation
-------------------
*Slow/silent peers* (slowloris): N connections (``DICOMNET_HOSTILE_CONNS``, default 100; 500 in
the slow run) are opened and then either say nothing or drip an A-ASSOCIATE-RQ one byte a
second; a few more complete an association and then fall silent. PS3.8 section 9.1.5: the ARTIM
timer runs from the transport connection until the A-ASSOCIATE-RQ is complete, so the first two
groups must be closed about ``-ta`` seconds after they connected however slowly they drip; the
associated ones are aborted (A-ABORT source 2) by the network idle timeout ``-tn``. Meanwhile a
thread runs DCMTK echoscu over and over: every run must succeed, and its latency is recorded and
printed.

*Flood*: N connection attempts (``DICOMNET_HOSTILE_FLOOD``, default 200; 1000 in the slow run)
at once, each sending an A-ASSOCIATE-RQ and holding on, against ``--max-associations 5``:
exactly 5 are accepted and every other one gets A-ASSOCIATE-RJ 2/3/2 (rejected-transient,
service-provider presentation, local-limit-exceeded; PS3.8 Table 9-21). The process survives, and
once the flood has gone service resumes at once (DCMTK echoscu, first try).
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import socket
import statistics
import struct
import threading
import time
from collections.abc import Callable

import pytest

from dicomnet.ul.codec import decode_pdu, encode_pdu
from dicomnet.ul.pdu import AAbort, AAssociateAC, AAssociateRJ, AReleaseRQ
from tests.hostile.conftest import ARTIM, IDLE, ServerFactory
from tests.hostile.harness import (
    Peer,
    ServerProcess,
    assert_still_serving,
    associate_rq,
    echo_ok,
    env_int,
    slow,
    wait_until,
)

pytestmark = pytest.mark.interop

CONNS = env_int("DICOMNET_HOSTILE_CONNS", 100)
FLOOD = env_int("DICOMNET_HOSTILE_FLOOD", 200)
LIMIT = 5
RecordProperty = Callable[[str, object], None]


def _slow_peers(server: ServerProcess, n: int, record: RecordProperty) -> None:
    rq = encode_pdu(associate_rq())
    base_fds = server.fds()
    idle_peers = []
    for _ in range(5):
        peer = Peer(server.port)
        peer.associate()
        idle_peers.append((peer, time.monotonic()))
    socks: dict[socket.socket, tuple[float, str]] = {}
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", server.port), 10)
        s.setblocking(False)
        socks[s] = (time.monotonic(), "drip" if i % 2 else "silent")
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[float] = []

    def echo_loop() -> None:
        while not stop.is_set():
            ok, took = echo_ok(server.port)
            (latencies if ok else failures).append(took)
            stop.wait(0.2)

    def drip_loop() -> None:
        pos = 0
        while not stop.wait(1.0) and pos < len(rq):
            for s, (_, kind) in list(socks.items()):
                if kind == "drip":
                    with contextlib.suppress(OSError):
                        s.send(rq[pos : pos + 1])
            pos += 1

    threads = [threading.Thread(target=echo_loop), threading.Thread(target=drip_loop)]
    for t in threads:
        t.start()
    closed_after: dict[str, list[float]] = {"silent": [], "drip": []}
    sel = selectors.DefaultSelector()
    try:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + ARTIM + 8
        open_count = len(socks)
        while open_count and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                sk = key.fileobj
                assert isinstance(sk, socket.socket)  # registered sockets only
                try:
                    data = sk.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    started, kind = socks[sk]
                    closed_after[kind].append(time.monotonic() - started)
                    sel.unregister(sk)
                    open_count -= 1
                else:  # ARTIM expiry in Sta2 closes without a PDU; anything else is wrong
                    raise AssertionError(f"unexpected bytes for a {socks[sk][1]} peer: {data!r}")
        idle_results = []
        for peer, started in idle_peers:
            pdus, closed = peer.reaction(max(0.1, started + IDLE + 4 - time.monotonic()))
            idle_results.append((pdus, closed, time.monotonic() - started))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        sel.close()
        for s in socks:
            s.close()
        for peer, _ in idle_peers:
            peer.close()
    figures = {
        "connections": n,
        "echo_runs": len(latencies) + len(failures),
        "echo_failures": len(failures),
        "echo_latency_median_s": round(statistics.median(latencies), 3) if latencies else None,
        "echo_latency_max_s": round(max(latencies), 3) if latencies else None,
        "silent_closed_max_s": round(max(closed_after["silent"], default=-1), 2),
        "drip_closed_max_s": round(max(closed_after["drip"], default=-1), 2),
    }
    record("slow_peers", figures)
    print(f"\nslow/silent peers: {figures}")
    assert not failures, f"echoscu failed {len(failures)} times while under load: {figures}"
    assert len(latencies) >= 3
    assert max(latencies) < 3.0, figures
    assert len(closed_after["silent"]) + len(closed_after["drip"]) == n, (
        f"only {sum(map(len, closed_after.values()))}/{n} slow peers were closed: {figures}"
    )
    slack = 3.0 + n / 200  # accepting N connections on 2 cores takes a moment
    for kind in ("silent", "drip"):
        assert min(closed_after[kind]) >= ARTIM - 0.3, (kind, figures)
        assert max(closed_after[kind]) <= ARTIM + slack, (kind, figures)
    for pdus, closed, took in idle_results:
        assert closed and pdus == [AAbort(2, 0)], (pdus, closed)
        assert IDLE - 0.5 <= took <= IDLE + 3, took
    assert wait_until(lambda: server.fds() <= base_fds, 10), (server.fds(), base_fds)
    assert_still_serving(server)


def test_slow_and_silent_peers(
    server_factory: ServerFactory, record_property: RecordProperty
) -> None:
    server = server_factory("qrscp", ["--max-associations", "50"])
    assert_still_serving(server)
    _slow_peers(server, CONNS, record_property)


@slow
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_slow_and_silent_peers_full(
    server_factory: ServerFactory, record_property: RecordProperty
) -> None:
    server = server_factory("qrscp", ["--max-associations", "50"])
    assert_still_serving(server)
    _slow_peers(server, max(CONNS, 500), record_property)


def _run_flood(
    server: ServerProcess, n: int, record: RecordProperty, round_: int = 1
) -> dict[str, object]:
    before = server.figures()
    t0 = time.monotonic()
    answers = asyncio.run(_flood_counted(server.port, n))
    flood_s = time.monotonic() - t0
    accepted = [a for a in answers if isinstance(a, AAssociateAC)]
    rejected = [a for a in answers if isinstance(a, AAssociateRJ)]
    other = [a for a in answers if not isinstance(a, AAssociateAC | AAssociateRJ)]
    assert server.alive(), server.stderr_text()[-3000:]
    ok, latency = echo_ok(server.port)
    after = server.figures()
    figures: dict[str, object] = {
        "round": round_,
        "attempts": n,
        "accepted": len(accepted),
        "rejected_2_3_2": sum(r == AAssociateRJ(2, 3, 2) for r in rejected),
        "other": len(other),
        "flood_s": round(flood_s, 2),
        "echo_after_s": round(latency, 3),
        "rss_kb_before": before["rss_kb"],
        "rss_kb_after": after["rss_kb"],
    }
    record(f"flood_{round_}", figures)
    print(f"\nassociation flood: {figures}")
    assert not other, f"{len(other)} attempts got neither AC nor RJ: {other[:5]}"
    assert len(accepted) == LIMIT, figures
    assert all(r == AAssociateRJ(2, 3, 2) for r in rejected), set(map(repr, rejected))
    assert ok, "service did not resume at once after the flood"
    assert latency < 2.0, figures
    assert wait_until(lambda: server.fds() <= before["fds"], 10), (server.fds(), before)
    assert_still_serving(server)
    return figures


def _floods(server: ServerProcess, n: int, record: RecordProperty) -> None:
    """Three floods: after two warm-up rounds (allocator arenas grow to the peak number of
    live connections and stay), the third must not grow RSS by more than 10%: a leak per
    connection would add the same amount every round."""
    for round_ in (1, 2):
        _run_flood(server, n, record, round_)
    last = _run_flood(server, n, record, 3)
    before, after = last["rss_kb_before"], last["rss_kb_after"]
    assert isinstance(before, int) and isinstance(after, int)
    assert after <= before * 1.1, f"RSS grew from {before} to {after} kB in the third flood"


async def _flood_counted(port: int, n: int) -> list[object]:
    """N attempts at once; each holds its answer (and association) until all have one."""
    rq = encode_pdu(associate_rq())
    hold = asyncio.Event()
    answered = 0
    all_in = asyncio.Event()

    async def attempt() -> object:
        nonlocal answered
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(rq)
            header = await reader.readexactly(6)
            (length,) = struct.unpack(">2xI", header)
            pdu: object = decode_pdu(header + await reader.readexactly(length))
        except (OSError, asyncio.IncompleteReadError) as exc:
            pdu = exc
        answered += 1
        if answered == n:
            all_in.set()
        try:
            await hold.wait()
            if isinstance(pdu, AAssociateAC) and writer is not None:
                writer.write(encode_pdu(AReleaseRQ()))
                await reader.readexactly(10)  # A-RELEASE-RP
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        return pdu

    tasks = [asyncio.create_task(attempt()) for _ in range(n)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), 90)
    hold.set()
    return list(await asyncio.gather(*tasks))


def test_association_flood(
    server_factory: ServerFactory, record_property: RecordProperty
) -> None:
    server = server_factory("qrscp", ["--max-associations", str(LIMIT)])
    assert_still_serving(server)
    _floods(server, FLOOD, record_property)


@slow
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_association_flood_full(
    server_factory: ServerFactory, record_property: RecordProperty
) -> None:
    server = server_factory("qrscp", ["--max-associations", str(LIMIT)])
    assert_still_serving(server)
    _floods(server, max(FLOOD, 1000), record_property)
