"""Forged lengths: headers that announce gigabytes must not cost the server memory.

Theory of operation
-------------------
PS3.8 section 9.3.1 gives every PDU a 32-bit length, and a DIMSE data set has no length at all
(it ends with its last fragment, PS3.8 Annex E), so a peer can announce or stream far more than
it will ever deliver or than the server should hold. Each test measures the server process's
resident memory (``VmRSS`` from ``/proc``) before, while the hostile peer is holding the
connection open, and after; growth must stay within a few MB, the exact reaction on the wire is
checked (A-ABORT 2/6 where a limit applies), and DCMTK echoscu must still get service.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Iterable, Iterator

import pytest

from dicomnet.ul.codec import pdata_header
from dicomnet.ul.pdu import AAbort
from tests.hostile.conftest import ServerFactory
from tests.hostile.harness import (
    CTX_STORE,
    Peer,
    assert_still_serving,
    dcm_files,
    pdata,
    pixel_element,
    raw_pdu,
    sc_dataset,
    store_rq,
    uid,
    wait_until,
)

pytestmark = pytest.mark.interop

MB = 1024  # VmRSS is in kB
FEW_MB = 6 * MB


def _send_until_closed(peer: Peer, total: int, chunk: int = 64 * 1024) -> int:
    """Send up to ``total`` zero bytes; stop when the server closes. Returns bytes sent."""
    zeros = bytes(chunk)
    sent = 0
    with contextlib.suppress(OSError):
        while sent < total:
            peer.sock.settimeout(5)
            sent += peer.sock.send(zeros[: min(chunk, total - sent)])
    return sent


def test_pdu_header_announcing_4gb_unlimited_server(server_factory: ServerFactory) -> None:
    """Maximum Length 0 (unlimited, ``-pdu 0``): a P-DATA-TF announcing 4 GiB is legal framing,
    so the server must take it in as it comes and not reserve 4 GiB up front."""
    server = server_factory("qrscp", ["-pdu", "0", "-tn", "30"])
    assert_still_serving(server)
    before = server.rss_kb()
    with Peer(server.port) as peer:
        peer.associate()
        peer.send(struct.pack(">BxI", 0x04, 0xFFFFFFFF) + struct.pack(">IBB", 0xFFFFFFFB, 3, 0))
        peer.send(bytes(2 << 20))  # 2 MiB of it, then stall
        time.sleep(0.5)
        during = server.rss_kb()
        assert during - before < 2 * MB + FEW_MB, (before, during)
        assert_still_serving(server)  # others are served meanwhile
    assert wait_until(lambda: server.rss_kb() - before < FEW_MB, 5), (before, server.rss_kb())
    assert_still_serving(server)


@pytest.mark.parametrize("pdu_type", [0x01, 0x04])
def test_pdu_header_announcing_4gb_limited_server(
    server_factory: ServerFactory, pdu_type: int
) -> None:
    """An A-ASSOCIATE-RQ (before association) or a P-DATA-TF (after) announcing 4 GiB is
    refused from its header: A-ABORT 2/6, nothing buffered."""
    server = server_factory("storescp")
    assert_still_serving(server)
    before = server.rss_kb()
    with Peer(server.port) as peer:
        if pdu_type == 0x04:
            peer.associate()
        peer.send(raw_pdu(pdu_type, bytes(4096), length=0xFFFFFFFF))
        peer.expect_abort(2, 6, timeout=3)
    assert server.rss_kb() - before < FEW_MB
    assert_still_serving(server)


def test_associate_rq_of_100mb(server_factory: ServerFactory) -> None:
    """A-ASSOCIATE-RQ announcing 100 MB: above the local cap for association PDUs, refused with
    A-ABORT 2/6 as soon as the header is read; the peer cannot push the 100 MB into memory."""
    server = server_factory("qrscp")
    assert_still_serving(server)
    before = server.rss_kb()
    with Peer(server.port) as peer:
        peer.send(struct.pack(">BxI", 0x01, 100_000_000) + struct.pack(">H", 1))
        t0 = time.monotonic()
        sent = _send_until_closed(peer, 100_000_000)
        pdus, closed = peer.reaction(5)
        assert closed and time.monotonic() - t0 < 5
        # The A-ABORT may be lost if the server's close raced our still-arriving bytes
        # (an RST from a close with unread data); if it arrived it must be 2/6.
        assert pdus in ([AAbort(2, 6)], []), pdus
        assert sent < 100_000_000, "the server swallowed the whole 100 MB"
    assert server.rss_kb() - before < FEW_MB
    assert_still_serving(server)


def test_associate_rq_of_100mb_header_then_stall(server_factory: ServerFactory) -> None:
    """Same header followed by a few bytes and silence: the reaction on the wire is exactly
    A-ABORT 2/6, then close (no RST race possible here)."""
    server = server_factory("qrscp")
    before = server.rss_kb()
    with Peer(server.port) as peer:
        peer.send(struct.pack(">BxI", 0x01, 100_000_000) + b"\0\x01" + bytes(1000))
        peer.expect_abort(2, 6, timeout=3)
    assert server.rss_kb() - before < FEW_MB
    assert_still_serving(server)


def test_dataset_above_message_cap(server_factory: ServerFactory) -> None:
    """A C-STORE data set streamed past the server's DIMSE message cap (1 MiB here, set by
    tests/hostile/capped_server.py) is cut off with A-ABORT 2/6 while it arrives: the
    server neither buffers nor spools the excess, and no file appears."""
    cap = 1 << 20
    server = server_factory(
        "qrscp",
        env={"DICOMNET_TEST_MAX_MESSAGE": str(cap)},
        module="tests.hostile.capped_server",
    )
    assert_still_serving(server)
    before = server.rss_kb()
    study, series, sop = uid(20, 1), uid(20, 1, 1), uid(20, 1, 1, 1)
    total = 16 << 20
    head = sc_dataset(sop, study, series) + pixel_element(total)
    cmd = store_rq(sop)
    with Peer(server.port) as peer:
        peer.associate()
        peer.send(pdata((CTX_STORE, 0x03, cmd)))
        peer.send(pdata_header(CTX_STORE, 0x00, len(head)) + head)
        sent = len(cmd) + len(head)
        step = 16384 - 6
        block = pdata_header(CTX_STORE, 0x00, step) + bytes(step)
        while sent <= cap:  # stop right after the PDU that crosses the cap: the server has
            peer.send(block)  # read everything we sent, so its A-ABORT cannot be lost to an RST
            sent += step
        peer.expect_abort(2, 6, timeout=5)
    assert server.rss_kb() - before < FEW_MB
    assert not [p for p in dcm_files(server.workdir) if sop in p.name]
    assert_still_serving(server)


def test_large_dataset_is_spooled_not_held(server_factory: ServerFactory) -> None:
    """A legitimate 48 MiB C-STORE (below the cap) is stored, and the server's memory does not
    grow with it: data sets above the spool threshold go to disk fragment by fragment."""
    server = server_factory("qrscp")
    assert_still_serving(server)
    before = server.rss_kb()
    study, series, sop = uid(21, 1), uid(21, 1, 1), uid(21, 1, 1, 1)
    size = 48 << 20
    head = sc_dataset(sop, study, series) + pixel_element(size)
    chunks = (bytes(1 << 20) for _ in range(size >> 20))
    with Peer(server.port) as peer:
        peer.associate()
        peer.send_message(CTX_STORE, store_rq(sop), _concat(head, chunks))
        rsp = peer.read_message(30)
        assert rsp.status == 0x0000
        peer.release()
    grown = server.hwm_kb() - before
    stored = [p for p in dcm_files(server.workdir) if p.name == f"{sop}.dcm"]
    assert len(stored) == 1 and stored[0].stat().st_size > size
    # spool threshold (8 MiB in memory) + buffers; far below the 48 MiB data set
    assert grown < 20 * MB, f"peak RSS grew by {grown // MB} MB for a 48 MB data set"
    assert_still_serving(server)


def _concat(head: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest
