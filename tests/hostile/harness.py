"""Test harness for the hostile-peer, soak and fault-injection suites.

Theory of operation
-------------------
The servers under test run as real PROCESSES (``python -m dicomnet.cli.main qrscp|storescp``),
exactly as an operator starts them, so that a crash, a leak or a stuck loop is seen from the
outside: :class:`ServerProcess` starts one on 127.0.0.1 port 0, reads the bound port from the
banner the tool prints on stdout, and reads its resident memory (``VmRSS``/``VmHWM``), thread
count and open file descriptors from ``/proc/<pid>``. Teardown kills and reaps it.

The hostile clients speak raw bytes over plain sockets (:class:`Peer`): well-formed PDUs are
built with our own sans-IO codec (:func:`dicomnet.ul.codec.encode_pdu`, the dataclasses of
:mod:`dicomnet.ul.pdu`, :func:`dicomnet.dimse.commands.encode_command`), malformed ones by
patching those bytes, and the server's answer is read back PDU by PDU and decoded, so every test
asserts the exact reaction on the wire (A-ABORT source/reason, A-ASSOCIATE-RJ
result/source/reason, a DIMSE status, or a clean close). The well-behaved client that proves the
server still serves is Debian's DCMTK ``echoscu`` (:func:`echo_ok`), independent of our client.

Waiting for the server to finish an asynchronous clean-up (a closed connection's spool file, an
fd) uses :func:`wait_until`, a bounded wait with a short sleep: the server is another process, so
there is nothing to block on; the bound turns a missing clean-up into a test failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest

from dicomnet.dimse.commands import KEYWORD_TO_TAG, decode_command, encode_command
from dicomnet.ul.codec import decode_pdu, encode_pdu, pdata_header
from dicomnet.ul.pdu import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    ImplementationClassUID,
    MaximumLength,
    PDataTF,
    PresentationContextRQ,
    UserInformation,
)
from tests.conftest import dcmtk_tool

REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python")
if not os.access(PYTHON, os.X_OK):  # pragma: no cover - other checkouts
    PYTHON = sys.executable

# --- UIDs (facts from PS3.4 / PS3.5 / PS3.6) -----------------------------------------------------
VERIFICATION = "1.2.840.10008.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
UID_ROOT = "1.2.826.0.1.3680043.10.999"  # test UIDs only

CTX_ECHO, CTX_STORE, CTX_FIND = 1, 3, 5
DEFAULT_CONTEXTS = (
    PresentationContextRQ(CTX_ECHO, VERIFICATION, (IMPLICIT_LE,)),
    PresentationContextRQ(CTX_STORE, SECONDARY_CAPTURE, (IMPLICIT_LE,)),
    PresentationContextRQ(CTX_FIND, STUDY_ROOT_FIND, (IMPLICIT_LE,)),
)

# DIMSE command fields (PS3.7 Annex E)
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
C_CANCEL_RQ = 0x0FFF
NO_DATASET, HAS_DATASET = 0x0101, 0x0000

T = KEYWORD_TO_TAG


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


SLOW_ENABLED = os.environ.get("DICOMNET_SLOW", "") not in ("", "0")
slow = pytest.mark.skipif(not SLOW_ENABLED, reason="long run: set DICOMNET_SLOW=1")


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """True as soon as ``pred()`` holds, False after ``timeout`` seconds (see module doc)."""
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step)


# --- the server process --------------------------------------------------------------------------

_BANNER = re.compile(rb"listening on ([0-9.]+):(\d+)")


class ServerProcess:
    """One ``dicomnet qrscp``/``storescp`` process on 127.0.0.1 (port 0: read from the banner)."""

    def __init__(
        self,
        tool: str,
        workdir: Path,
        args: Sequence[str] = (),
        *,
        env: dict[str, str] | None = None,
        module: str = "dicomnet.cli.main",
    ) -> None:
        self.tool = tool
        self.workdir = workdir
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.pop("TCP_NODELAY", None)
        if env:
            self.env.update(env)
        self.module = module
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = workdir / f"{tool}.stderr.log"
        self.starts = 0

    def command(self) -> list[str]:
        cmd = [PYTHON, "-m", self.module, self.tool]
        if self.tool == "storescp":
            cmd += ["0", "--bind", "127.0.0.1"]
        else:
            cmd += ["--port", "0", "--bind", "127.0.0.1"]
        return cmd + self.args

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                self.command(), stdout=subprocess.PIPE, stderr=err, cwd=REPO, env=self.env
            )
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        end = time.monotonic() + timeout
        while True:
            m = _BANNER.search(buf)
            if m:
                self.port = int(m.group(2))
                break
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(
                    f"{self.tool} did not start: {buf!r}\n{self.log.read_text(errors='replace')}"
                )
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk and self.proc.poll() is not None:
                    continue
                buf += chunk
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL; always reaped."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    # /proc figures
    def _status(self, key: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def rss_kb(self) -> int:
        return self._status("VmRSS")

    def hwm_kb(self) -> int:
        return self._status("VmHWM")

    def threads(self) -> int:
        return self._status("Threads")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def figures(self) -> dict[str, int]:
        return {
            "rss_kb": self.rss_kb(),
            "hwm_kb": self.hwm_kb(),
            "threads": self.threads(),
            "fds": self.fds(),
        }

    def stderr_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- DCMTK echoscu: the well-behaved client --------------------------------------------------------


def echo_ok(port: int, timeout: float = 10.0) -> tuple[bool, float]:
    """Run DCMTK echoscu against 127.0.0.1:port: (succeeded, seconds taken)."""
    tool = dcmtk_tool("echoscu")
    if tool is None:
        pytest.skip("DCMTK echoscu not installed")
    t0 = time.monotonic()
    try:
        rc = subprocess.run(
            [tool, "-to", "5", "-ta", "5", "-td", "5", "127.0.0.1", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        ).returncode
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - t0
    return rc == 0, time.monotonic() - t0


def assert_still_serving(server: ServerProcess) -> float:
    """The process is alive, has logged no traceback (hostile input may only ever produce our
    own protocol errors, handled), and DCMTK echoscu gets service. Returns echoscu's time."""
    assert server.alive(), f"server died:\n{server.stderr_text()[-3000:]}"
    log = server.stderr_text()
    assert "Traceback" not in log, f"the server logged a traceback:\n{log[-4000:]}"
    ok, took = echo_ok(server.port)
    assert ok, f"echoscu failed after {took:.2f}s:\n{server.stderr_text()[-3000:]}"
    return took


# --- raw PDUs --------------------------------------------------------------------------------------


def associate_rq(
    contexts: Sequence[PresentationContextRQ] = DEFAULT_CONTEXTS,
    *,
    max_length: int = 16384,
    called: str = "ANY-SCP",
    calling: str = "HOSTILE",
    **kw: object,
) -> AAssociateRQ:
    ui = UserInformation(
        (MaximumLength(max_length), ImplementationClassUID(UID_ROOT + ".1"))
    )
    return AAssociateRQ(called, calling, tuple(contexts), ui, **kw)  # type: ignore[arg-type]


def raw_pdu(pdu_type: int, body: bytes, length: int | None = None) -> bytes:
    """A PDU header (type, reserved, big-endian length) + body; ``length`` may lie."""
    return struct.pack(">BxI", pdu_type, len(body) if length is None else length) + body


def pdata(*pdvs: tuple[int, int, bytes]) -> bytes:
    """A P-DATA-TF of (context_id, control, payload) PDVs."""
    return encode_pdu(PDataTF(tuple(PDV(c, m, p) for c, m, p in pdvs)))


def command(**elements: object) -> bytes:
    return encode_command({T[k]: v for k, v in elements.items()})


def echo_rq(message_id: int = 1) -> bytes:
    return command(
        AffectedSOPClassUID=VERIFICATION,
        CommandField=C_ECHO_RQ,
        MessageID=message_id,
        CommandDataSetType=NO_DATASET,
    )


def store_rq(sop_instance: str, message_id: int = 1, sop_class: str = SECONDARY_CAPTURE) -> bytes:
    return command(
        AffectedSOPClassUID=sop_class,
        CommandField=C_STORE_RQ,
        MessageID=message_id,
        Priority=0,
        CommandDataSetType=HAS_DATASET,
        AffectedSOPInstanceUID=sop_instance,
    )


def find_rq(message_id: int = 1) -> bytes:
    return command(
        AffectedSOPClassUID=STUDY_ROOT_FIND,
        CommandField=C_FIND_RQ,
        MessageID=message_id,
        Priority=0,
        CommandDataSetType=HAS_DATASET,
    )


def cancel_rq(message_id: int) -> bytes:
    return command(
        CommandField=C_CANCEL_RQ,
        MessageIDBeingRespondedTo=message_id,
        CommandDataSetType=NO_DATASET,
    )


# --- data sets (Implicit VR Little Endian, encoded with pydicom) ---------------------------------


def uid(*parts: int | str) -> str:
    return ".".join([UID_ROOT, *(str(p) for p in parts)])


def encode_implicit(ds: object) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    with warnings.catch_warnings():  # hostile values are the point: no pydicom validation noise
        warnings.simplefilter("ignore")
        write_dataset(fp, ds)  # type: ignore[arg-type]
    return fp.getvalue()


def sc_dataset(
    sop_instance: str,
    study: str,
    series: str,
    *,
    patient_id: str = "HOSTILE",
    extra: Callable[[object], None] | None = None,
) -> bytes:
    """A small Secondary Capture data set WITHOUT pixel data (see :func:`pixel_element`)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    warnings.filterwarnings("ignore", "Invalid value for VR UI", UserWarning)
    warnings.filterwarnings("ignore", "The value length", UserWarning)
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_instance
    ds.StudyDate = "20260101"
    ds.Modality = "OT"
    ds.PatientName = "Hostile^Peer"
    ds.PatientID = patient_id
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows = 1
    ds.Columns = 1
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if extra is not None:
        extra(ds)
    return encode_implicit(ds)


def pixel_element(length: int) -> bytes:
    """Header of (7FE0,0010) Pixel Data, Implicit VR LE, for ``length`` (even) bytes of value."""
    return struct.pack("<HHI", 0x7FE0, 0x0010, length)


def small_instance(n: int, study: str, series: str, pixels: int = 256) -> tuple[str, bytes]:
    sop = uid(series.rsplit(".", 1)[-1], n, os.getpid())
    return sop, sc_dataset(sop, study, series) + pixel_element(pixels) + bytes(pixels)


# --- the raw-socket peer ---------------------------------------------------------------------------


class PeerClosed(Exception):
    """The server closed the connection."""


@dataclass
class Message:
    context_id: int
    command: dict[int, object]
    dataset: bytes | None

    def get(self, keyword: str) -> object:
        return self.command.get(T[keyword])

    @property
    def status(self) -> int:
        value = self.get("Status")
        assert isinstance(value, int), self.command
        return value


class Peer:
    """A raw-socket DICOM peer that sends exactly what the test says and decodes the answers."""

    def __init__(
        self,
        port: int,
        *,
        timeout: float = 10.0,
        sock: socket.socket | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.sock = sock if sock is not None else socket.create_connection((host, port), timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.peer_max = 16384
        self._buf = bytearray()

    # context manager: close on exit (never leak a socket)
    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def reset(self) -> None:
        """Close with RST (SO_LINGER 0): the crudest way for a peer to vanish."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def send(self, data: bytes | bytearray | memoryview) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited for {n} bytes, have {len(self._buf)}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise PeerClosed(bytes(self._buf))
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_pdu(self, timeout: float | None = None) -> PDU:
        """The next PDU the server sends (PeerClosed on EOF, TimeoutError when silent)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        header = self._recv_exact(6, deadline)
        _pdu_type, length = struct.unpack(">BxI", header)
        assert length <= 1 << 24, f"server sent a PDU header announcing {length} bytes"
        return decode_pdu(header + self._recv_exact(length, deadline))

    def reaction(self, timeout: float = 10.0) -> tuple[list[PDU], bool]:
        """Every PDU until the server closes: (pdus, closed within ``timeout``)."""
        deadline = time.monotonic() + timeout
        pdus: list[PDU] = []
        while True:
            try:
                pdus.append(self.read_pdu(max(0.0, deadline - time.monotonic())))
            except PeerClosed:
                return pdus, True
            except TimeoutError:
                return pdus, False

    def expect_abort(self, source: int, reason: int, timeout: float = 10.0) -> None:
        pdus, closed = self.reaction(timeout)
        assert pdus == [AAbort(source, reason)], f"expected A-ABORT {source}/{reason}, got {pdus}"
        assert closed, "server sent the A-ABORT but did not close the connection"

    def expect_reject(self, result: int, source: int, reason: int, timeout: float = 10.0) -> None:
        pdus, closed = self.reaction(timeout)
        assert pdus == [AAssociateRJ(result, source, reason)], (
            f"expected A-ASSOCIATE-RJ {result}/{source}/{reason}, got {pdus}"
        )
        assert closed, "server sent the A-ASSOCIATE-RJ but did not close the connection"

    # association
    def associate(self, rq: AAssociateRQ | None = None) -> AAssociateAC:
        self.send(encode_pdu(rq or associate_rq()))
        answer = self.read_pdu()
        assert isinstance(answer, AAssociateAC), f"association not accepted: {answer}"
        peer_max = answer.user_information.maximum_length
        self.peer_max = peer_max if peer_max else 1 << 20
        self.accepted = {pc.context_id for pc in answer.presentation_contexts if pc.result == 0}
        return answer

    def release(self) -> None:
        self.send(encode_pdu(AReleaseRQ()))
        while True:  # responses still in flight (e.g. after a cancel) come first
            pdu = self.read_pdu()
            if isinstance(pdu, AReleaseRP):
                break
            assert isinstance(pdu, PDataTF), f"expected A-RELEASE-RP, got {pdu}"
        self.close()

    def abort(self) -> None:
        self.send(encode_pdu(AAbort(0, 0)))
        self.close()

    # DIMSE
    def send_message(
        self, context_id: int, cmd: bytes, dataset: bytes | Iterable[bytes] | None = None
    ) -> None:
        """Command PDV(s), then data set PDVs of at most the server's Maximum Length."""
        step = min(self.peer_max, 1 << 20) - 6
        step -= step & 1
        self.send(pdata((context_id, 0x03, cmd)))
        if dataset is None:
            return
        chunks = [dataset] if isinstance(dataset, bytes | bytearray) else dataset
        pending = b""
        for chunk in chunks:
            pending += chunk
            while len(pending) > step:
                self.send(pdata_header(context_id, 0x00, step))
                self.send(pending[:step])
                pending = pending[step:]
        self.send(pdata_header(context_id, 0x02, len(pending)) + pending)

    def read_message(self, timeout: float | None = None) -> Message:
        cmd = bytearray()
        data = bytearray()
        have_data = False
        ctx = 0
        while True:
            pdu = self.read_pdu(timeout)
            assert isinstance(pdu, PDataTF), f"expected P-DATA-TF, got {pdu}"
            for pdv in pdu.pdvs:
                ctx = pdv.context_id
                if pdv.is_command:
                    cmd += pdv.data
                    if pdv.is_last:
                        decoded = decode_command(bytes(cmd))
                        if decoded.get(T["CommandDataSetType"]) == NO_DATASET:
                            return Message(ctx, decoded, None)
                        have_data = True
                else:
                    data += pdv.data
                    if pdv.is_last:
                        assert have_data
                        return Message(ctx, decode_command(bytes(cmd)), bytes(data))

    def echo(self, message_id: int = 1) -> int:
        self.send_message(CTX_ECHO, echo_rq(message_id))
        rsp = self.read_message()
        assert rsp.get("CommandField") == C_ECHO_RSP
        assert rsp.get("MessageIDBeingRespondedTo") == message_id
        return rsp.status

    def store(self, sop_instance: str, dataset: bytes, message_id: int = 1) -> int:
        self.send_message(CTX_STORE, store_rq(sop_instance, message_id), dataset)
        rsp = self.read_message()
        assert rsp.get("CommandField") == C_STORE_RSP, rsp
        assert rsp.get("MessageIDBeingRespondedTo") == message_id
        return rsp.status


def tls_client_socket(port: int, timeout: float = 5.0) -> socket.socket:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def is_failure(status: int) -> bool:
    """PS3.7 Annex C: not Success, Warning, Cancel or Pending."""
    if status == 0x0000 or status in (0xFF00, 0xFF01, 0xFE00):
        return False
    return not (status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def dcm_files(storage: Path) -> set[Path]:
    return {p for p in storage.rglob("*.dcm") if ".tmp" not in p.parts}


def index_rows(db: Path) -> dict[str, str]:
    """sop_uid -> path from the archive's SQLite index (read-only)."""
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return dict(con.execute("SELECT sop_uid, path FROM instance").fetchall())
    finally:
        con.close()


def read_sop_uid(path: Path) -> str:
    from pydicom import dcmread

    ds = dcmread(path)  # the whole file: a truncated one raises
    _ = ds.PixelData
    return str(ds.SOPInstanceUID)


def dataset_io(data: bytes) -> BytesIO:
    return BytesIO(data)


def decode_find_identifier(data: bytes) -> object:
    from pydicom.filereader import read_dataset

    return read_dataset(BytesIO(data), is_implicit_VR=True, is_little_endian=True)
