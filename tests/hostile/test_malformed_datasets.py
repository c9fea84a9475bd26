"""Malformed data sets inside valid C-STORE-RQs (PS3.4 B.2.3): refused before they are
acknowledged, with the right status and an Error Comment; nothing stored; the association and
the server go on. The same bytes go to DCMTK's storescp for comparison.

Where DCMTK (3.6.7) differs, the standard is on our side:

* a value running past the end, a sequence never closed, an unknown VR, an odd value length, a
  truncated element header: storescp aborts the association (A-ABORT 0/0) -- a DIMSE failure
  response is what PS3.7 9.1.1.1.x / PS3.4 B.2.3 define for a data set the SCP cannot
  understand (Cxxx), and the requestor then learns why; both leave nothing stored;
* Pixel Data shorter than Rows x Columns x Samples x Bits Allocated (PS3.5 8.1.1, PS3.3
  C.7.6.3.1) and a UID element sent with VR SQ (PS3.6 gives (0020,000D) VR UI): storescp
  answers Success and keeps an object no viewer can read; we answer C000.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, require_dcmtk
from tests.hostile.harness import (
    Message,
    Peer,
    PeerClosed,
    ServerProcess,
    assert_still_serving,
    associate_rq,
    dcm_files,
    echo_rq,
    store_rq,
    uid,
    wait_until,
)
from tests.hostile.malformed import (
    CONTEXTS,
    CT,
    CTX_CT_IMPLICIT,
    CTX_ECHO,
    cases,
    dataset,
)

SOP = uid(71, 1)
CASES = cases(SOP)

# What DCMTK's storescp does with each case (see the module docstring).
DCMTK = {
    "value length past the end": "abort",
    "pixel data shorter than declared": 0x0000,
    "undefined-length sequence never closed": "abort",
    "unknown VR": "abort",
    "UID element with VR SQ": 0x0000,
    "odd value length": "abort",
    "MR data set in a CT context": 0xA900,
    "no SOP Class UID": 0xC000,
    "no SOP Instance UID": 0xC000,
    "SOP Instance UID differs from the request": 0xA900,
    "truncated element header": "abort",
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from tests.hostile.conftest import server_args

    root = tmp_path_factory.mktemp("malformed")
    server = ServerProcess("qrscp", root, server_args("qrscp", root))
    server.start()
    yield server
    server.stop()


def _store(peer: Peer, context_id: int, sop_class: str, data: bytes, mid: int = 1) -> Message:
    peer.send_message(context_id, store_rq(SOP, mid, sop_class), data)
    return peer.read_message()


def _stored(storage: Path, sop: str = SOP) -> tuple[int, list[Path]]:
    """(index rows, files) of instance ``sop``."""
    with sqlite3.connect(storage / "index.sqlite") as db:
        rows = int(db.execute("SELECT COUNT(*) FROM instance WHERE sop_uid = ?",
                              (sop,)).fetchone()[0])  # fmt: skip
    return rows, [p for p in dcm_files(storage) if p.name.startswith(sop + ".")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_status_nothing_stored(archive: ServerProcess, name: str) -> None:
    case = CASES[name]
    storage = archive.workdir / "storage"
    with Peer(archive.port) as peer:
        peer.associate(associate_rq(CONTEXTS))
        rsp = _store(peer, case.context_id, case.sop_class, case.data)
        status = rsp.status
        assert case.allowed(status), f"{name}: status {status:#06x}"
        comment = rsp.get("ErrorComment")
        assert isinstance(comment, str) and comment.strip(), "no Error Comment"
        assert len(comment) <= 64  # LO (PS3.5 6.2)
        # the same association goes on: a C-ECHO, then a good instance, are answered
        peer.send_message(CTX_ECHO, echo_rq(2))
        assert peer.read_message().status == 0x0000
        peer.release()
    assert _stored(storage) == (0, []), f"{name}: something was stored"
    assert not list((storage / ".tmp").iterdir()), "a temp file was left behind"
    assert_still_serving(archive)


def test_good_instance_still_stored_after_every_case(archive: ServerProcess) -> None:
    """All cases on one association, then a good data set: stored (the checker keeps no state
    across messages), byte for byte behind its meta header."""
    good_sop = uid(71, 2)
    good = dataset(good_sop)
    with Peer(archive.port) as peer:
        peer.associate(associate_rq(CONTEXTS))
        for n, case in enumerate(CASES.values(), 1):
            assert _store(peer, case.context_id, case.sop_class, case.data, n).status != 0
        peer.send_message(CTX_CT_IMPLICIT, store_rq(good_sop, 99, CT), good)
        assert peer.read_message().status == 0x0000
        peer.release()
    storage = archive.workdir / "storage"
    rows, files = _stored(storage, good_sop)
    assert rows == 1 and len(files) == 1
    assert files[0].read_bytes().endswith(good)
    assert _stored(storage) == (0, [])


def test_every_cut_inside_an_element_is_refused(archive: ServerProcess) -> None:
    """The good data set cut at every offset that is not an element boundary: refused each
    time (C000), never stored; cut at a boundary it is well-formed (only shorter)."""
    good = dataset(SOP)
    boundaries = set()
    at = 0
    while at < len(good):
        boundaries.add(at)
        (length,) = struct.unpack_from("<I", good, at + 4)
        at += 8 + length
    with Peer(archive.port) as peer:
        peer.associate(associate_rq(CONTEXTS))
        for cut in range(1, len(good), 5):
            if cut in boundaries:
                continue
            status = _store(peer, CTX_CT_IMPLICIT, CT, good[:cut], cut).status
            assert 0xC000 <= status <= 0xCFFF, f"cut at {cut}: {status:#06x}"
        peer.release()
    assert _stored(archive.workdir / "storage") == (0, [])


def test_fuzz_corpus_datasets(archive: ServerProcess) -> None:
    """The fuzz corpus's Part 10 files (their data sets, meta stripped) on a CT context:
    whatever is accepted must be stored whole; everything else refused with a status."""
    corpus = Path(__file__).resolve().parents[2] / "fuzz" / "corpus" / "part10"
    files = sorted(p for p in corpus.iterdir() if p.is_file())
    assert files
    from dicomnet.dimse.dataset import read_file_meta

    with Peer(archive.port) as peer:
        peer.associate(associate_rq(CONTEXTS))
        for n, path in enumerate(files, 1):
            raw = path.read_bytes()
            try:
                with open(path, "rb") as f:
                    offset, _ = read_file_meta(f, len(raw))
            except Exception:
                offset = 0
            rsp = _store(peer, CTX_CT_IMPLICIT, CT, raw[offset:] or b"\0\0", n)
            assert rsp.status == 0 or rsp.get("ErrorComment"), path.name
        peer.release()
    assert_still_serving(archive)


@pytest.fixture(scope="module")
def dcmtk_storescp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    tool = require_dcmtk("storescp")
    out = tmp_path_factory.mktemp("dcmtk-storescp")
    port = free_port()
    proc = subprocess.Popen([tool, "-od", str(out), str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                Peer(port, timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "storescp down"
                time.sleep(0.05)
        yield port, out
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(out, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_cases_against_dcmtk_storescp(dcmtk_storescp: tuple[int, Path], name: str) -> None:
    port, _out = dcmtk_storescp
    case = CASES[name]
    with Peer(port) as peer:
        peer.associate(associate_rq(CONTEXTS))
        peer.send_message(case.context_id, store_rq(SOP, 1, case.sop_class), case.data)
        try:
            got: object = peer.read_message(timeout=10).status
        except (AssertionError, PeerClosed):  # an A-ABORT instead of a response
            got = "abort"
    assert got == DCMTK[name], f"DCMTK storescp now answers {got!r} to {name!r}"


def test_client_values_in_logs_are_clipped(archive: ServerProcess) -> None:
    """A C-FIND whose Query/Retrieve Level is 30,000 characters: refused (A900), and the log
    line that names it stays short, with a marker where it was cut."""
    from pydicom.dataset import Dataset

    from tests.hostile.harness import CTX_FIND, encode_implicit, find_rq

    ident = Dataset()
    ident.QueryRetrieveLevel = "X" * 30000
    ident.StudyInstanceUID = ""
    before = len(archive.stderr_text())
    with Peer(archive.port) as peer:
        peer.associate()
        peer.send_message(CTX_FIND, find_rq(1), encode_implicit(ident))
        assert peer.read_message().status == 0xA900
        peer.release()
    assert wait_until(lambda: len(archive.stderr_text()) > before, 5.0)
    new = archive.stderr_text()[before:].splitlines()
    refused = [line for line in new if "C-FIND refused" in line]
    assert refused and all(len(line) < 512 for line in new), new
    assert "...[+" in refused[0]
