"""The dicomnet server over real loopback sockets: life cycle, limits, timers, hostile input, TLS.

Peers here are raw sockets speaking bytes we encode ourselves (so the exact A-ASSOCIATE-RJ and
A-ABORT fields can be asserted) and dicomnet's own requestor. Leaks are measured: threads
(``threading.active_count``) and file descriptors (``/proc/self/fd``) return to their baseline
after ``shutdown()``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.dimse.commands import decode_command
from dicomnet.dimse.messages import message_from_primitive
from dicomnet.dimse.primitives import C_ECHO
from dicomnet.server import Server, serve, shutdown_servers, start_server
from dicomnet.ul.codec import encode_pdu, pdata_header
from dicomnet.ul.pdu import (
    AAssociateRQ,
    AReleaseRQ,
    ImplementationClassUID,
    MaximumLength,
    PresentationContextRQ,
    UserInformation,
)

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
TS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def server_ae(**attrs: Any) -> AE:
    ae = AE("DICOMNET")
    ae.add_supported_context(VERIFICATION, TS)
    ae.add_supported_context(CT, TS)
    for name, value in attrs.items():
        setattr(ae, name, value)
    return ae


def client_ae() -> AE:
    ae = AE("CLIENT")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    return ae


def start(servers: list[Server], ae: AE | None = None, handlers: Any = None, **kw: Any) -> Server:
    server = start_server(ae or server_ae(), ("127.0.0.1", 0), block=False, handlers=handlers, **kw)
    assert server is not None
    servers.append(server)
    return server


def rq_bytes(called: str = "DICOMNET", contexts: tuple[str, ...] = (VERIFICATION,)) -> bytes:
    rq = AAssociateRQ(
        called_ae_title=called,
        calling_ae_title="RAW",
        presentation_contexts=tuple(
            PresentationContextRQ(2 * i + 1, uid, (ImplicitVRLittleEndian,))
            for i, uid in enumerate(contexts)
        ),
        user_information=UserInformation(
            (MaximumLength(16384), ImplementationClassUID("1.2.3.4"))
        ),
    )
    return encode_pdu(rq)


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    header = recv_exact(sock, 6)
    pdu_type, length = struct.unpack(">BxI", header)
    return pdu_type, recv_exact(sock, length)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def raw_associate(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(rq_bytes())
    pdu_type, _ = read_pdu(sock)
    assert pdu_type == 0x02  # A-ASSOCIATE-AC
    return sock


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Read until EOF; returns what arrived before it."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


# --- association limit -------------------------------------------------------------------------


def test_maximum_associations_rejects_with_2_3_2(servers: list[Server]) -> None:
    server = start(servers, server_ae(maximum_associations=1))
    first = raw_associate(server.address[1])
    second = socket.create_connection(server.address, timeout=5)
    second.sendall(rq_bytes())
    pdu_type, body = read_pdu(second)
    # A-ASSOCIATE-RJ: reserved, result, source, reason (PS3.8 Table 9-21)
    assert (pdu_type, body[1], body[2], body[3]) == (0x03, 2, 3, 2)
    second.close()  # after an RJ the requestor closes (PS3.8 Sta13: the acceptor runs ARTIM)
    assert len(server.active_associations) == 1
    first.close()
    deadline = time.monotonic() + 5
    while server.active_associations and time.monotonic() < deadline:
        time.sleep(0.01)
    third = raw_associate(server.address[1])  # room again
    third.close()


def test_called_ae_title_check(servers: list[Server]) -> None:
    server = start(servers, server_ae(require_called_aet=True))
    sock = socket.create_connection(server.address, timeout=5)
    sock.sendall(rq_bytes(called="SOMEONE"))
    pdu_type, body = read_pdu(sock)
    assert (pdu_type, body[1], body[2], body[3]) == (0x03, 1, 1, 7)
    sock.close()


# --- hostile and broken peers ------------------------------------------------------------------


def test_http_request_is_dropped_and_server_goes_on(servers: list[Server]) -> None:
    server = start(servers)
    sock = socket.create_connection(server.address, timeout=5)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    closed_by_peer(sock)  # whatever it answers (A-ABORT), the connection ends
    sock.close()
    with client_ae().associate("127.0.0.1", server.address[1], ae_title="DICOMNET") as assoc:
        assert assoc.send_c_echo().Status == 0


def test_forged_pdata_length_aborts_without_buffering(servers: list[Server]) -> None:
    server = start(servers)
    sock = raw_associate(server.address[1])
    sock.sendall(struct.pack(">BxI", 0x04, 0xFFFFFFF0))  # 4 GB P-DATA announced
    answer = closed_by_peer(sock)
    sock.close()
    assert answer[:1] == b"\x07"  # A-ABORT
    assert answer[8:10] == b"\x02\x06"  # service provider, invalid PDU parameter value
    with client_ae().associate("127.0.0.1", server.address[1]) as assoc:
        assert assoc.send_c_echo().Status == 0


def test_unparseable_command_aborts(servers: list[Server]) -> None:
    server = start(servers)
    sock = raw_associate(server.address[1])
    junk = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    pdv = struct.pack(">IBB", len(junk) + 2, 1, 0x03) + junk  # context 1, command, last
    sock.sendall(struct.pack(">BxI", 0x04, len(pdv)) + pdv)
    answer = closed_by_peer(sock)
    sock.close()
    assert answer[:1] == b"\x07"
    assert len(server.active_associations) == 0


def test_artim_closes_a_silent_connection(servers: list[Server]) -> None:
    server = start(servers, server_ae(acse_timeout=0.3))
    sock = socket.create_connection(server.address, timeout=5)
    t0 = time.monotonic()
    assert closed_by_peer(sock) == b""  # PS3.8 9.1.5: ARTIM expiry in Sta2 closes
    assert 0.2 < time.monotonic() - t0 < 3
    sock.close()


def test_idle_association_is_aborted(servers: list[Server]) -> None:
    aborted = threading.Event()
    server = start(
        servers, server_ae(network_timeout=0.3), [(evt.EVT_ABORTED, lambda e: aborted.set())]
    )
    sock = raw_associate(server.address[1])
    answer = closed_by_peer(sock)
    sock.close()
    assert answer[:1] == b"\x07"  # A-ABORT after the idle timeout
    assert answer[8:10] == b"\x02\x00"  # source 2 (service provider), reason 0
    assert aborted.wait(5), "EVT_ABORTED did not fire for the idle-timeout abort"


# --- handlers ----------------------------------------------------------------------------------


def make_ct() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "X"
    ds.BitsAllocated = 16
    ds.PixelData = b"\x00\x01" * 8
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def test_raising_handler_gives_failure_and_association_continues(servers: list[Server]) -> None:
    calls = [0]

    def on_store(event: evt.Event) -> int:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("first one fails")
        return 0x0000

    server = start(servers, handlers=[(evt.EVT_C_STORE, on_store)])
    with client_ae().associate("127.0.0.1", server.address[1]) as assoc:
        first = assoc.send_c_store(make_ct())
        assert first.Status == 0xC211  # PS3.4 B.2.3: unable to process
        assert "first one fails" in first.ErrorComment
        assert assoc.send_c_store(make_ct()).Status == 0x0000


def test_a_failing_echo_handler_is_logged_and_answered_success(
    servers: list[Server], caplog: pytest.LogCaptureFixture
) -> None:
    """PS3.7 Table 9.3-13: a C-ECHO-RSP Status "shall have a value of Success" (and has no
    Error Comment field): a handler that raises or returns no status is logged, the echo
    answered Success, as pynetdicom and DCMTK answer. A failure it returns on purpose (PS3.7
    9.1.5.1.4, e.g. 0122H) goes out as it is."""
    results: list[object] = [RuntimeError("echo handler broke"), Dataset(), 0x0122, None]

    def on_echo(event: evt.Event) -> object:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    server = start(servers, handlers=[(evt.EVT_C_ECHO, on_echo)])
    with caplog.at_level("ERROR", logger="dicomnet"), \
            client_ae().associate("127.0.0.1", server.address[1]) as assoc:
        statuses = [assoc.send_c_echo() for _ in range(4)]
    assert [rsp.Status for rsp in statuses] == [0x0000, 0x0000, 0x0122, 0x0000]
    assert all("ErrorComment" not in rsp for rsp in statuses[:2])
    assert "echo handler broke" in caplog.text
    assert "EVT_C_ECHO handler failed" in caplog.text


def test_large_store_streams_through_a_spool_file(servers: list[Server]) -> None:
    seen: list[Any] = []

    def on_store(event: evt.Event) -> int:
        source = event.data_source
        seen.append((source.size, source.path is not None, event.dataset.PixelData[:4]))
        return 0x0000

    server = start(servers, handlers=[(evt.EVT_C_STORE, on_store)])
    ds = make_ct()
    ds.PixelData = os.urandom(20 << 20)  # above the 8 MB spool threshold
    with client_ae().associate("127.0.0.1", server.address[1]) as assoc:
        assert assoc.send_c_store(ds).Status == 0
    size, spooled, head = seen[0]
    assert size > 20 << 20
    assert spooled
    assert head == ds.PixelData[:4]


def test_notification_events_fire(servers: list[Server]) -> None:
    log: list[str] = []
    done = threading.Event()

    def note(event: evt.Event) -> None:
        log.append(event.event.name)
        if event.event is evt.EVT_CONN_CLOSE:
            done.set()

    kinds = [evt.EVT_CONN_OPEN, evt.EVT_REQUESTED, evt.EVT_ACCEPTED, evt.EVT_RELEASED,
             evt.EVT_CONN_CLOSE]  # fmt: skip
    # through the AE's own entry point, which delegates to dicomnet.server.start_server
    server = server_ae().start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(k, note) for k in kinds]
    )
    servers.append(server)
    with client_ae().associate("127.0.0.1", server.address[1]) as assoc:
        assoc.send_c_echo()
    assert done.wait(5)
    assert log == [k.name for k in kinds]


def echo_rq_pdu(message_id: int, context_id: int = 1) -> bytes:
    command = message_from_primitive(
        C_ECHO(MessageID=message_id, AffectedSOPClassUID=VERIFICATION)
    ).encode_command()
    return pdata_header(context_id, 0x03, len(command)) + command


def read_command(sock: socket.socket) -> dict[int, object]:
    pdu_type, body = read_pdu(sock)
    assert pdu_type == 0x04
    assert body[5] & 0x03 == 0x03  # one command PDV, last fragment
    return decode_command(body[6:])


def test_request_on_a_context_of_another_sop_class_is_refused(servers: list[Server]) -> None:
    calls: list[int] = []
    server = start(servers, handlers=[(evt.EVT_C_ECHO, lambda e: calls.append(1) or 0)])
    sock = socket.create_connection(server.address, timeout=5)
    sock.sendall(rq_bytes(contexts=(VERIFICATION, CT)))
    assert read_pdu(sock)[0] == 0x02
    sock.sendall(echo_rq_pdu(9, context_id=3))  # a C-ECHO on the CT Image Storage context
    rsp = read_command(sock)
    assert (rsp[0x0120], rsp[0x0900]) == (9, 0x0122)  # refused: SOP class not supported
    sock.sendall(echo_rq_pdu(10, context_id=1))  # the association is still fine
    rsp = read_command(sock)
    assert (rsp[0x0120], rsp[0x0900]) == (10, 0x0000)
    sock.close()
    assert calls == [1]


def test_release_waits_for_running_handler(servers: list[Server]) -> None:
    finished = threading.Event()

    def slow_echo(event: evt.Event) -> int:
        time.sleep(0.3)
        finished.set()
        return 0x0000

    server = start(servers, handlers=[(evt.EVT_C_ECHO, slow_echo)])
    sock = raw_associate(server.address[1])
    sock.sendall(echo_rq_pdu(5) + encode_pdu(AReleaseRQ()))  # release while the echo runs
    first, _ = read_pdu(sock)
    second, _ = read_pdu(sock)
    sock.close()
    assert finished.is_set()
    assert (first, second) == (0x04, 0x06)  # the C-ECHO-RSP, then the A-RELEASE-RP (PS3.8 7.2)


# --- shutdown and leaks ------------------------------------------------------------------------


def test_shutdown_aborts_associations_and_leaks_nothing() -> None:
    threads_before = threading.active_count()
    fds_before = fd_count()
    aborted: list[Any] = []
    server = start_server(server_ae(), ("127.0.0.1", 0), block=False,
                          handlers=[(evt.EVT_ABORTED, aborted.append)])  # fmt: skip
    assert server is not None
    assocs = [client_ae().associate("127.0.0.1", server.address[1]) for _ in range(3)]
    assert all(a.is_established for a in assocs)
    assert len(server.active_associations) == 3
    server.shutdown()
    assert len(aborted) == 3 and all(e.assoc.is_aborted for e in aborted)
    for assoc in assocs:
        assert assoc.send_c_echo() == Dataset()  # no response: the server aborted it
        assert assoc.is_aborted
    with pytest.raises(OSError):
        socket.create_connection(server.address, timeout=2).close()
    assert threading.active_count() == threads_before
    assert fd_count() == fds_before


def test_shutdown_with_running_handler_and_from_a_handler() -> None:
    threads_before = threading.active_count()
    fds_before = fd_count()
    holder: list[Server] = []

    def on_echo(event: evt.Event) -> int:
        holder[0].shutdown()  # from a worker thread: returns at once
        return 0x0000

    server = start_server(server_ae(), ("127.0.0.1", 0), block=False,
                          handlers=[(evt.EVT_C_ECHO, on_echo)])  # fmt: skip
    assert server is not None
    holder.append(server)
    assoc = client_ae().associate("127.0.0.1", server.address[1])
    assoc.send_c_echo()
    server._stopped.wait(10)
    assoc.abort()
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.01)  # the helper thread that completed the shutdown ends
    assert threading.active_count() == threads_before
    assert fd_count() == fds_before


def test_blocking_server_stops_on_shutdown_servers() -> None:
    ae = server_ae()
    ready = threading.Event()
    result: list[Any] = []

    def run() -> None:
        result.append(start_server(ae, ("127.0.0.1", 0), block=True,
                                   handlers=[(evt.EVT_CONN_OPEN, lambda e: ready.set())]))  # fmt: skip

    thread = threading.Thread(target=run)
    thread.start()
    from dicomnet import server as server_module

    deadline = time.monotonic() + 5
    while not list(server_module._SERVERS) and time.monotonic() < deadline:
        time.sleep(0.01)
    (server,) = [s for s in server_module._SERVERS if s.ae is ae]
    with client_ae().associate("127.0.0.1", server.address[1]) as assoc:
        assert assoc.send_c_echo().Status == 0
    assert ready.is_set()
    shutdown_servers(ae)
    thread.join(10)
    assert not thread.is_alive()
    assert result == [None]


def test_serve_on_a_running_loop_with_coroutine_handlers() -> None:
    async def main() -> list[int]:
        async def on_echo(event: evt.Event) -> int:
            await asyncio.sleep(0)
            return 0xB000

        server = await serve(server_ae(), ("127.0.0.1", 0), [(evt.EVT_C_ECHO, on_echo)])
        loop = asyncio.get_running_loop()

        def client() -> list[int]:
            with client_ae().associate("127.0.0.1", server.address[1]) as assoc:
                return [int(assoc.send_c_echo().Status) for _ in range(3)]

        try:
            return await loop.run_in_executor(None, client)
        finally:
            await server.aclose()

    assert asyncio.run(main()) == [0xB000] * 3


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not os.access("/usr/bin/openssl", os.X_OK):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_server(servers: list[Server], tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = start(servers, ssl_context=server_ctx, ssl_handshake_timeout=1.0)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    with client_ae().associate(
        "127.0.0.1", server.address[1], ssl_context=client_ctx, server_hostname="localhost"
    ) as assoc:
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
    # plaintext DICOM on the TLS port: the handshake fails, the connection closes
    plain = client_ae().associate("127.0.0.1", server.address[1])
    assert not plain.is_established
    # a silent client is dropped when the handshake times out
    sock = socket.create_connection(server.address, timeout=5)
    t0 = time.monotonic()
    closed_by_peer(sock)
    sock.close()
    assert time.monotonic() - t0 < 4
    # and the server still serves TLS clients
    with client_ae().associate(
        "127.0.0.1", server.address[1], ssl_context=client_ctx, server_hostname="localhost"
    ) as assoc:
        assert assoc.send_c_echo().Status == 0


# --- flow control ------------------------------------------------------------------------------

P_FIND = "1.2.840.10008.5.1.4.1.2.1.1"


def test_slow_reader_blocks_the_producing_handler(servers: list[Server]) -> None:
    """A peer that stops reading: the handler's sends block (transport pause_writing) instead
    of buffering 128 MB of responses in the server."""
    from dicomnet.datasource import DataSource
    from dicomnet.dimse.dataset import encode_dataset
    from dicomnet.dimse.primitives import C_FIND
    from dicomnet.transport.aio import WRITE_HIGH_WATER
    from dicomnet.transport.aio_workers import MAX_IN_FLIGHT

    produced = [0]
    big = b"x" * (64 << 10)

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset]]:
        for _ in range(2000):  # 2000 x 64 KB = 128 MB if nothing pushed back
            ds = Dataset()
            ds.PatientID = "P"
            ds.EncapsulatedDocument = big  # OB: no VR length limit
            produced[0] += 1
            yield 0xFF00, ds

    ae = server_ae()
    ae.add_supported_context(P_FIND, TS)
    server = start(servers, ae, [(evt.EVT_C_FIND, on_find)])
    sock = socket.create_connection(server.address, timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(rq_bytes(contexts=(P_FIND,)))
    assert read_pdu(sock)[0] == 0x02
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"
    identifier = encode_dataset(query, ImplicitVRLittleEndian)
    command = message_from_primitive(
        C_FIND(MessageID=1, AffectedSOPClassUID=P_FIND, Priority=0,
               Identifier=DataSource.from_bytes(identifier))
    ).encode_command()  # fmt: skip
    sock.sendall(pdata_header(1, 0x03, len(command)) + command)
    sock.sendall(pdata_header(1, 0x02, len(identifier)) + identifier)
    time.sleep(1.5)  # we read nothing: the kernel buffers fill, then the transport's
    stalled = produced[0]
    (acceptor,) = list(server._connections)
    assert acceptor.driver is not None and acceptor.driver.transport is not None
    buffered = acceptor.driver.transport.get_write_buffer_size()
    assert 0 < stalled < 600, stalled  # bounded by kernel buffers + high water + in flight
    assert buffered <= WRITE_HIGH_WATER + MAX_IN_FLIGHT + (256 << 10)
    time.sleep(0.3)
    assert produced[0] == stalled  # really blocked, not just slow
    sock.close()  # the blocked worker wakes up (association gone) and the handler stops
    deadline = time.monotonic() + 5
    while server._connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server._connections
    assert produced[0] < 2000


def test_async_generator_find_handler(servers: list[Server]) -> None:
    async def on_find(event: evt.Event) -> Any:
        for i in range(3):
            await asyncio.sleep(0)
            ds = Dataset()
            ds.PatientID = f"A{i}"
            yield 0xFF00, ds

    ae = server_ae()
    ae.add_supported_context(P_FIND, TS)
    server = start(servers, ae, [(evt.EVT_C_FIND, on_find)])
    client = client_ae()
    client.add_requested_context(P_FIND)
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "*"
    with client.associate("127.0.0.1", server.address[1]) as assoc:
        results = list(assoc.send_c_find(query, P_FIND))
    assert [str(i.PatientID) for s, i in results if s.Status == 0xFF00] == ["A0", "A1", "A2"]
    assert results[-1][0].Status == 0x0000


def test_peer_vanishing_mid_store_leaves_no_spool_file(
    servers: list[Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from dicomnet.dimse.primitives import C_STORE

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stored: list[str] = []
    server = start(servers, handlers=[(evt.EVT_C_STORE, lambda e: stored.append("x") or 0)])
    fds_before = fd_count()
    sock = socket.create_connection(server.address, timeout=5)
    sock.sendall(rq_bytes(contexts=(CT,)))
    assert read_pdu(sock)[0] == 0x02
    command = message_from_primitive(
        C_STORE(MessageID=1, AffectedSOPClassUID=CT, AffectedSOPInstanceUID="1.2.3.4",
                Priority=0, DataSet=b"..")
    ).encode_command()  # fmt: skip
    sock.sendall(pdata_header(1, 0x03, len(command)) + command)
    step = 16000
    for _ in range((12 << 20) // step):  # 12 MB of a data set: above the spool threshold
        sock.sendall(pdata_header(1, 0x00, step) + bytes(step))
    deadline = time.monotonic() + 5
    while not list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(tmp_path.iterdir()), "the data set was not spooled"
    sock.close()  # vanish mid-message
    deadline = time.monotonic() + 5
    while (list(tmp_path.iterdir()) or fd_count() > fds_before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(tmp_path.iterdir()) == []
    assert fd_count() <= fds_before
    assert stored == []


def test_graceful_shutdown_lets_associations_finish() -> None:
    threads_before = threading.active_count()
    server = start_server(server_ae(), ("127.0.0.1", 0), block=False)
    assert server is not None
    assoc = client_ae().associate("127.0.0.1", server.address[1])
    stopper = threading.Thread(target=server.shutdown, kwargs={"abort": False, "timeout": 5.0})
    stopper.start()
    time.sleep(0.3)
    assert stopper.is_alive()  # waiting for our association
    assert assoc.send_c_echo().Status == 0  # still served while the server winds down
    assoc.release()
    stopper.join(5)
    assert not stopper.is_alive()
    assert assoc.is_released and not assoc.is_aborted
    assert threading.active_count() == threads_before


def test_a_long_handler_is_not_an_idle_association(servers: list[Server]) -> None:
    def slow_echo(event: evt.Event) -> int:
        time.sleep(1.0)  # longer than the network timeout below
        return 0x0000

    server = start(servers, server_ae(network_timeout=0.3), [(evt.EVT_C_ECHO, slow_echo)])
    sock = raw_associate(server.address[1])
    sock.sendall(echo_rq_pdu(3))
    rsp = read_command(sock)
    assert (rsp[0x0120], rsp[0x0900]) == (3, 0x0000)
    answer = closed_by_peer(sock)  # and once idle again, the timeout applies
    sock.close()
    assert answer[:1] == b"\x07"
