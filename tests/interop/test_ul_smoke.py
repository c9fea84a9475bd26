"""Smoke test of the sans-IO Upper Layer against DCMTK's echoscu over a real loopback socket.

The DIMSE layer is not used: the tiny acceptor loop below answers the C-ECHO-RQ with a C-ECHO-RSP
command set built by hand (group 0000, Implicit VR Little Endian, PS3.7 section 9.3.5).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import time

import pytest

from dicomnet.ul.connection import AcceptorConnection
from dicomnet.ul.events import (
    AssociationRequested,
    PDataReceived,
    ReleaseRequested,
    TransportClosed,
    TransportShouldClose,
    ULEvent,
)
from dicomnet.ul.negotiation import AcceptorPolicy, negotiate
from dicomnet.ul.pdu import PDV, AAssociateAC, PDataTF
from tests.conftest import require_dcmtk

pytestmark = pytest.mark.interop

VERIFICATION = "1.2.840.10008.1.1"
IVLE = "1.2.840.10008.1.2"


def _element(group: int, elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, elem, len(value)) + value


def parse_command(data: bytes) -> dict[int, bytes]:
    """Group 0000 elements of an Implicit VR LE command set: tag -> raw value."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        out[(group << 16) | elem] = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
    return out


def c_echo_rsp(message_id: int) -> bytes:
    uid = VERIFICATION.encode() + b"\x00"  # 17 characters, padded to even length
    body = (
        _element(0x0000, 0x0002, uid)  # AffectedSOPClassUID
        + _element(0x0000, 0x0100, struct.pack("<H", 0x8030))  # CommandField: C-ECHO-RSP
        + _element(0x0000, 0x0120, struct.pack("<H", message_id))  # MessageIDBeingRespondedTo
        + _element(0x0000, 0x0800, struct.pack("<H", 0x0101))  # CommandDataSetType: none
        + _element(0x0000, 0x0900, struct.pack("<H", 0x0000))  # Status: success
    )
    return _element(0x0000, 0x0000, struct.pack("<I", len(body))) + body


def serve_one(server: socket.socket, deadline: float) -> list[ULEvent]:
    """Accept one connection and drive an AcceptorConnection until the transport is gone."""
    server.settimeout(max(0.1, deadline - time.monotonic()))
    sock, _ = server.accept()
    seen: list[ULEvent] = []
    conn = AcceptorConnection(artim_timeout=5.0)
    policy = AcceptorPolicy(ae_title="DICOMNET", supported={VERIFICATION: [IVLE]})
    command = bytearray()
    context_id = 1
    with sock:
        conn.transport_connected(time.monotonic())
        closing = False
        while not closing:
            now = time.monotonic()
            assert now < deadline, f"timed out; events so far: {seen}"
            wait = deadline - now
            artim = conn.next_deadline()
            if artim is not None:
                wait = min(wait, max(0.0, artim - now))
            sock.settimeout(max(0.01, wait))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                conn.handle_timer(time.monotonic())
                data = None
            if data == b"":
                conn.transport_closed(time.monotonic())
            elif data:
                conn.receive_data(data, now=time.monotonic())
            while (ev := conn.next_event()) is not None:
                seen.append(ev)
                if isinstance(ev, AssociationRequested):
                    answer = negotiate(ev.pdu, policy)
                    assert isinstance(answer, AAssociateAC), answer
                    context_id = next(
                        pc.context_id for pc in answer.presentation_contexts if pc.result == 0
                    )
                    conn.accept(answer)
                elif isinstance(ev, PDataReceived):
                    for pdv in ev.pdu.pdvs:
                        assert pdv.is_command
                        command += pdv.data
                        if pdv.is_last:
                            elements = parse_command(bytes(command))
                            assert struct.unpack("<H", elements[0x00000100]) == (0x0030,)
                            (message_id,) = struct.unpack("<H", elements[0x00000110])
                            rsp = c_echo_rsp(message_id)
                            conn.send_pdata(PDataTF((PDV(context_id, 0x03, rsp),)))
                            command.clear()
                elif isinstance(ev, ReleaseRequested):
                    conn.release_response(time.monotonic())
                elif isinstance(ev, (TransportShouldClose, TransportClosed)):
                    closing = True
            for chunk in conn.data_to_send():
                sock.sendall(chunk)
    return seen


def test_echoscu_against_sans_io_acceptor(procs: list[subprocess.Popen[bytes]]) -> None:
    echoscu = require_dcmtk("echoscu")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        proc = subprocess.Popen(
            [echoscu, "-v", "-aet", "ECHOSCU", "-aec", "DICOMNET", "127.0.0.1", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        seen = serve_one(server, time.monotonic() + 20.0)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode(errors="replace")
    assert b"Received Echo Response (Success)" in out, out.decode(errors="replace")
    kinds = [type(e) for e in seen]
    assert kinds.index(AssociationRequested) < kinds.index(PDataReceived)
    assert kinds.index(PDataReceived) < kinds.index(ReleaseRequested)
    assert kinds[-1] is TransportClosed  # echoscu closed after our A-RELEASE-RP (AR-5)
    rq = seen[0]
    assert isinstance(rq, AssociationRequested) and rq.pdu.calling_ae_title == "ECHOSCU"
