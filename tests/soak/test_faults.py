"""Fault injection: peers vanishing mid-C-STORE, SIGKILL mid-transfer, a full disk.

Theory of operation
-------------------
The archive (``dicomnet qrscp``) writes each object to a temp file and renames it into place
before indexing it, so an object is either complete and indexed or absent. These tests break
that path from outside, against a real process whose spool directory (``TMPDIR``) is inside the
test's tree so that every temporary file it makes is visible:

* the peer closes (FIN or RST) in the middle of a C-STORE (small data set held in memory, large
  one spooled to disk, or only the command sent): no partial file, no temp/spool file left, the
  index unchanged, service continues;
* the server is SIGKILLed while a large C-STORE is in flight, and the archive is tampered with
  the way a crash at a bad moment would leave it (a temp file, an index row whose file is gone,
  a complete file the index never heard of); after a restart the start-up check must bring
  index and files back in step, and no partial file may be visible;
* the archive runs on a small tmpfs (as root): stores until the disk is full must end with an
  A7xx status (PS3.4 Table B.2-1 "Refused: Out of Resources"), nothing half stored, the index
  and the files agreeing, and storing succeeds again once space is freed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dicomnet.ul.codec import pdata_header
from tests.hostile.harness import (
    CTX_STORE,
    Peer,
    ServerProcess,
    assert_still_serving,
    dcm_files,
    index_rows,
    pdata,
    pixel_element,
    read_sop_uid,
    sc_dataset,
    small_instance,
    store_rq,
    uid,
    wait_until,
)
from tests.soak.conftest import SoakReport

if TYPE_CHECKING:
    from pydicom.dataset import FileMetaDataset

pytestmark = pytest.mark.interop


def _archive(tmp_path: Path, storage: Path | None = None, *extra: str) -> ServerProcess:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    storage = storage or tmp_path / "archive"
    return ServerProcess(
        "qrscp",
        tmp_path,
        ["--storage", str(storage), "-aet", "ANY-SCP", "-ta", "3", "-tn", "20", *extra],
        env={"TMPDIR": str(spool)},
    )


@contextlib.contextmanager
def _running(server: ServerProcess) -> Iterator[ServerProcess]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _store_some(server: ServerProcess, tag: int, count: int, pixels: int = 1024) -> list[str]:
    stored = []
    with Peer(server.port) as peer:
        peer.associate()
        study, series = uid(tag, 1), uid(tag, 1, 1)
        for n in range(count):
            sop, data = small_instance(n, study, series, pixels=pixels)
            assert peer.store(sop, data, message_id=n + 1) == 0x0000
            stored.append(sop)
        peer.release()
    return stored


def _temp_files(storage: Path, spool: Path) -> list[Path]:
    tmp = storage / ".tmp"
    return [*(tmp.iterdir() if tmp.exists() else ()), *spool.iterdir()]


def _assert_consistent(storage: Path) -> dict[str, str]:
    """Index rows == .dcm files, every file complete and carrying its own SOP UID."""
    rows = index_rows(storage / "index.sqlite")
    files = {str(p) for p in dcm_files(storage)}
    paths = {
        str(Path(p) if Path(p).is_absolute() else storage / p) for p in rows.values()
    }
    assert {os.path.realpath(p) for p in paths} == {os.path.realpath(p) for p in files}, (
        sorted(paths ^ files)[:5]
    )
    for sop, path in rows.items():
        full = Path(path) if Path(path).is_absolute() else storage / path
        assert read_sop_uid(full) == sop
    return rows


def _partial_store(peer: Peer, sop: str, total: int, send: int, how: str) -> None:
    """Start a C-STORE of a ``total``-byte pixel data set, send ``send`` bytes of it, vanish."""
    study, series = uid(50, 1), uid(50, 1, 1)
    head = sc_dataset(sop, study, series) + pixel_element(total)
    peer.send(pdata((CTX_STORE, 0x03, store_rq(sop))))
    if how == "command-only":
        pass
    else:
        step = min(peer.peer_max, 1 << 20) - 6
        step -= step & 1
        peer.send(pdata_header(CTX_STORE, 0x00, len(head)) + head)
        block = pdata_header(CTX_STORE, 0x00, step) + bytes(step)
        sent = 0
        while sent < send:
            peer.send(block)
            sent += step
        peer.send(pdata_header(CTX_STORE, 0x00, 1000)[:8])  # and half a PDV header
    if how == "rst":
        peer.reset()
    else:
        peer.close()


@pytest.mark.parametrize(
    ("total", "send", "how"),
    [
        (64 << 10, 16 << 10, "close"),  # small data set, held in memory
        (40 << 20, 20 << 20, "close"),  # spooled when cut
        (40 << 20, 20 << 20, "rst"),
        (1 << 20, 0, "command-only"),
    ],
    ids=["small-close", "spooled-close", "spooled-rst", "command-only"],
)
def test_peer_disconnects_mid_store(
    tmp_path: Path, total: int, send: int, how: str, soak_report: SoakReport
) -> None:
    server = _archive(tmp_path)
    storage, spool = tmp_path / "archive", tmp_path / "spool"
    with _running(server):
        _store_some(server, 51, 3)
        assert_still_serving(server)
        rows_before = _assert_consistent(storage)
        files_before = dcm_files(storage)
        fds_before = server.fds()
        sop = uid(50, 1, 1, 7)
        with Peer(server.port) as peer:
            peer.associate()
            _partial_store(peer, sop, total, send, how)
        assert wait_until(lambda: not _temp_files(storage, spool), 10), _temp_files(storage, spool)
        assert wait_until(lambda: server.fds() <= fds_before, 10), (server.fds(), fds_before)
        assert dcm_files(storage) == files_before
        assert _assert_consistent(storage) == rows_before
        assert not [p for p in storage.rglob(f"{sop}*")]
        assert_still_serving(server)
        _store_some(server, 52, 1)  # and the archive still stores
        soak_report("disconnect", {"data_set": total, "sent": send, "how": how,
                                   "fds": server.fds(), "rss_kb": server.rss_kb()})


def test_storescp_peer_disconnects_mid_store(tmp_path: Path) -> None:
    """storescp (no index): a spooled C-STORE cut off by the peer leaves no file, no temp
    file, no spool file and no open fd behind."""
    spool = tmp_path / "spool"
    spool.mkdir()
    out = tmp_path / "out"
    server = ServerProcess(
        "storescp", tmp_path, ["-od", str(out), "-ta", "3"], env={"TMPDIR": str(spool)}
    )
    with _running(server):
        assert_still_serving(server)
        fds_before = server.fds()
        sop = uid(58, 1, 1, 1)
        with Peer(server.port) as peer:
            peer.associate()
            _partial_store(peer, sop, 40 << 20, 20 << 20, "close")
        assert wait_until(lambda: not _temp_files(out, spool), 10), _temp_files(out, spool)
        assert wait_until(lambda: server.fds() <= fds_before, 10), (server.fds(), fds_before)
        assert not list(out.rglob("*.dcm"))
        assert_still_serving(server)


def _write_part10(path: Path, sop: str, study: str, series: str) -> None:
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO

    data = sc_dataset(sop, study, series) + pixel_element(16) + bytes(16)
    ds = dcmread(DicomBytesIO(data), force=True)
    ds.file_meta = _meta(sop)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _meta(sop: str) -> FileMetaDataset:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    meta.MediaStorageSOPInstanceUID = UID(sop)
    meta.TransferSyntaxUID = UID("1.2.840.10008.1.2")
    return meta


def test_sigkill_mid_transfer_then_restart(tmp_path: Path, soak_report: SoakReport) -> None:
    server = _archive(tmp_path)
    storage, spool = tmp_path / "archive", tmp_path / "spool"
    server.start()
    try:
        stored = _store_some(server, 53, 5)
        with Peer(server.port) as peer:
            peer.associate()
            sop = uid(50, 1, 1, 9)
            study, series = uid(50, 1), uid(50, 1, 1)
            head = sc_dataset(sop, study, series) + pixel_element(40 << 20)
            peer.send(pdata((CTX_STORE, 0x03, store_rq(sop))))
            peer.send(pdata_header(CTX_STORE, 0x00, len(head)) + head)
            step = min(peer.peer_max, 1 << 20) - 6
            block = pdata_header(CTX_STORE, 0x00, step) + bytes(step)
            for _ in range((24 << 20) // step):
                peer.send(block)
            server.kill(signal.SIGKILL)
        assert not server.alive()
    finally:
        server.kill(signal.SIGKILL)
    spool_after_kill = sorted(p.name for p in spool.iterdir())

    # What a crash at a worse moment leaves: a temp file being written, a file deleted after
    # its row was committed, a complete file renamed into place but never indexed.
    (storage / ".tmp").mkdir(exist_ok=True)
    (storage / ".tmp" / "deadbeef.part").write_bytes(b"\0" * 1000)
    rows = index_rows(storage / "index.sqlite")
    gone = stored[0]
    gone_path = Path(rows[gone])
    gone_path = gone_path if gone_path.is_absolute() else storage / gone_path
    gone_path.unlink()
    orphan_sop, orphan_study, orphan_series = uid(54, 1, 1, 1), uid(54, 1), uid(54, 1, 1)
    orphan = storage / orphan_study / orphan_series / f"{orphan_sop}.dcm"
    _write_part10(orphan, orphan_sop, orphan_study, orphan_series)

    restarted = _archive(tmp_path)
    with _running(restarted):
        assert_still_serving(restarted)
        rows = _assert_consistent(storage)
        assert gone not in rows  # the row whose file vanished was dropped
        assert orphan_sop in rows  # the complete unindexed file was indexed
        assert set(stored[1:]) <= set(rows)
        assert not (storage / ".tmp" / "deadbeef.part").exists()
        assert not list((storage / ".tmp").iterdir())
        assert not [p for p in storage.rglob(f"{uid(50, 1, 1, 9)}*")]
        log = restarted.stderr_text()
        assert "recovery" in log, log[-2000:]
        after = _store_some(restarted, 55, 2)
        assert set(after) <= set(_assert_consistent(storage))
    soak_report(
        "sigkill",
        {
            "stored_before_kill": len(stored),
            "spool_files_after_kill": spool_after_kill,
            "indexed_after_restart": len(rows),
        },
    )


def test_spool_of_killed_server_is_cleaned_at_restart(tmp_path: Path) -> None:
    """The archive spools large data sets inside its own storage folder (``.tmp``), never in
    $TMPDIR, so the start-up recovery after a SIGKILL removes what the killed process left."""
    server = _archive(tmp_path)
    tmpdir = tmp_path / "spool"  # the process's $TMPDIR: must stay unused
    spool = tmp_path / "archive" / ".tmp"
    server.start()
    try:
        with Peer(server.port) as peer:
            peer.associate()
            study, series, sop = uid(57, 1), uid(57, 1, 1), uid(57, 1, 1, 1)
            head = sc_dataset(sop, study, series) + pixel_element(40 << 20)
            peer.send(pdata((CTX_STORE, 0x03, store_rq(sop))))
            peer.send(pdata_header(CTX_STORE, 0x00, len(head)) + head)
            step = min(peer.peer_max, 1 << 20) - 6
            block = pdata_header(CTX_STORE, 0x00, step) + bytes(step)
            for _ in range((16 << 20) // step):
                peer.send(block)
            assert wait_until(
                lambda: any(p.suffix == ".spool" for p in spool.iterdir()), 10
            )  # really spooling now
            assert not list(tmpdir.iterdir()), "spooled outside the storage folder"
            server.kill(signal.SIGKILL)
    finally:
        server.kill(signal.SIGKILL)
    restarted = _archive(tmp_path)
    with _running(restarted):
        assert_still_serving(restarted)
        assert not [p for p in spool.iterdir() if p.suffix == ".spool"], (
            "spool files of the killed process are still there"
        )


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = shutil.which("mount")
    umount = shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("mount(8) not available")
    where = tmp_path / "small"
    where.mkdir()
    rc = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ).returncode  # fmt: skip
    if rc != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        for _ in range(5):
            if subprocess.run([umount, str(where)], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run([umount, "-l", str(where)], stderr=subprocess.DEVNULL)


def test_disk_full(tmp_path: Path, small_tmpfs: Path, soak_report: SoakReport) -> None:
    storage = small_tmpfs / "archive"
    ballast = small_tmpfs / "ballast"
    ballast.write_bytes(bytes(3 << 20))
    server = _archive(tmp_path, storage)
    spool = tmp_path / "spool"
    statuses: list[int] = []
    acked: list[str] = []
    with _running(server):
        assert_still_serving(server)
        study, series = uid(56, 1), uid(56, 1, 1)
        with Peer(server.port) as peer:
            peer.associate()
            for n in range(40):  # 40 x 256 KiB > 8 MiB: the disk fills up on the way
                sop, data = small_instance(n, study, series, pixels=256 << 10)
                status = peer.store(sop, data, message_id=n + 1)
                statuses.append(status)
                if status == 0x0000:
                    acked.append(sop)
                elif 0xA700 <= status <= 0xA7FF:
                    break
                else:
                    pytest.fail(f"store {n}: status {status:#06x}, expected 0000 or A7xx")
            assert peer.echo() == 0  # the association survives the failure
            peer.release()
        assert statuses and 0xA700 <= statuses[-1] <= 0xA7FF, [hex(s) for s in statuses]
        assert acked, "nothing could be stored at all"
        assert not _temp_files(storage, spool)
        rows = _assert_consistent(storage)
        assert set(rows) == set(acked)
        assert_still_serving(server)
        full_figures = {"stored_until_full": len(acked), "statuses": sorted({hex(s) for s in statuses})}

        ballast.unlink()  # space is back
        with Peer(server.port) as peer:
            peer.associate()
            sop, data = small_instance(999, study, series, pixels=256 << 10)
            assert peer.store(sop, data) == 0x0000
            peer.release()
        rows = _assert_consistent(storage)
        assert set(rows) == {*acked, sop}
        assert_still_serving(server)
    soak_report("disk_full", {**full_figures, "indexed_after_space_freed": len(rows)})
