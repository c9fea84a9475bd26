"""The archive after a crash or a power cut, and one owner per storage folder (issue 12).

A power cut leaves shapes a process crash does not: a file shorter than what was acknowledged
(its tail never reached the disk), a file of the right size full of zeros (blocks allocated,
never written), an index row whose file is gone, a file the index never heard of. The archive
is killed (SIGKILL: no clean-stop marker), the damage is done by hand, and the restarted
archive must find each file, move the damaged ones to ``.quarantine`` with one log line each,
re-index the whole stray one, and never send a broken object: a DCMTK getscu of the study gets
exactly the intact instances, each readable to its last pixel.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.cli.helpers import make_files, run_tool
from tests.conftest import require_dcmtk
from tests.hostile.harness import ServerProcess, wait_until


def _archive(root: Path, *extra: str) -> ServerProcess:
    return ServerProcess("qrscp", root, ["--storage", str(root / "storage"), *extra])


def _stored(storage: Path) -> dict[str, Path]:
    """SOP Instance UID -> file, from the index."""
    with sqlite3.connect(storage / "index.sqlite") as db:
        return {uid: Path(p) for uid, p in db.execute("SELECT sop_uid, path FROM instance")}


def _store(port: int, files: list[Path]) -> None:
    r = run_tool(["storescu", "127.0.0.1", str(port), "-aec", "DICOMNET", *map(str, files)])
    assert r.returncode == 0, r.stderr


def _fully_readable(path: Path) -> bool:
    ds = dcmread(path)
    return len(ds.PixelData) == ds.Rows * ds.Columns * ds.BitsAllocated // 8


def test_power_loss_damage_is_quarantined_and_never_served(tmp_path: Path) -> None:
    getscu = require_dcmtk("getscu")
    files = make_files(tmp_path / "src", 6, rows=64, columns=64, patient_id="PWR")
    study = str(dcmread(files[0]).StudyInstanceUID)
    server = _archive(tmp_path).start()
    try:
        _store(server.port, files)
    finally:
        server.kill()  # SIGKILL: no clean-stop marker, as after a power cut
    storage = tmp_path / "storage"
    assert not (storage / ".clean-shutdown").exists()
    stored = _stored(storage)
    uids = [str(dcmread(f).SOPInstanceUID) for f in files]
    truncated, zeroed, vanished = (stored[u] for u in uids[:3])
    size = truncated.stat().st_size
    os.truncate(truncated, size // 2)
    zeroed.write_bytes(bytes(zeroed.stat().st_size))
    vanished.unlink()
    series_dir = stored[uids[3]].parent
    stray = make_files(tmp_path / "stray", 2, rows=64, columns=64, patient_id="PWR",
                       study_uid=study)  # fmt: skip
    shutil.copy(stray[0], series_dir / "stray-whole.dcm")
    half = stray[1].read_bytes()
    (series_dir / "stray-cut.dcm").write_bytes(half[: len(half) - 1000])

    server = _archive(tmp_path).start()
    try:
        log = server.stderr_text()
        quarantine = storage / ".quarantine"
        moved = sorted(p.name.rsplit(".", 1)[0] for p in quarantine.iterdir())
        assert moved == sorted([truncated.name, zeroed.name, "stray-cut.dcm"]), moved
        for name in (truncated.name, zeroed.name, "stray-cut.dcm"):
            assert sum(name in line and "quarantined" in line
                       for line in log.splitlines()) == 1, log  # fmt: skip
        after = _stored(storage)
        good = set(uids[3:]) | {str(dcmread(stray[0]).SOPInstanceUID)}
        assert set(after) == good
        out = tmp_path / "got"
        out.mkdir()
        r = subprocess.run([getscu, "-S", "-aec", "DICOMNET", "-k", "QueryRetrieveLevel=STUDY",
                            "-k", f"StudyInstanceUID={study}", "-od", str(out), "127.0.0.1",
                            str(server.port)], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 0, r.stderr
        got = list(out.iterdir())
        assert {str(dcmread(p).SOPInstanceUID) for p in got} == good
        assert all(_fully_readable(p) for p in got)
    finally:
        server.stop()
    # a clean stop: the marker is there, and the next start does not walk the files again
    assert (storage / ".clean-shutdown").exists()


def test_clean_stop_skips_the_walk_and_a_crash_does_not(tmp_path: Path) -> None:
    files = make_files(tmp_path / "src", 2, patient_id="CLEAN")
    server = _archive(tmp_path).start()
    _store(server.port, files)
    server.stop()  # SIGTERM: clean
    storage = tmp_path / "storage"
    assert (storage / ".clean-shutdown").exists()
    # a file put in place while the archive was stopped is not looked for after a clean stop
    extra = make_files(tmp_path / "extra", 1, patient_id="CLEAN")[0]
    target = next(iter(_stored(storage).values())).parent / "dropped-in.dcm"
    shutil.copy(extra, target)
    server = _archive(tmp_path).start()
    try:
        assert not (storage / ".clean-shutdown").exists()  # taken: a crash from now on shows
        assert len(_stored(storage)) == 2
    finally:
        server.kill()
    # after a crash the walk runs and finds it
    server = _archive(tmp_path).start()
    try:
        assert str(dcmread(extra).SOPInstanceUID) in _stored(storage)
    finally:
        server.stop()


def test_second_instance_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    first = _archive(tmp_path).start()
    try:
        spool = tmp_path / "storage" / ".tmp" / "in-flight.part"
        spool.write_bytes(b"half an object being received")
        second = subprocess.run(
            [*_archive(tmp_path / "other").command()[:-2], "--storage", str(tmp_path / "storage")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"in use by process {first.pid}" in second.stderr, second.stderr
        assert spool.exists(), "the second instance touched the first one's spool"
        assert first.alive()
    finally:
        first.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_of_the_workers_parent_leaves_no_worker(tmp_path: Path) -> None:
    server = _archive(tmp_path, "--workers", "2").start()
    try:
        ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True,
                            text=True)  # fmt: skip
        workers = [int(x) for x in ps.stdout.split()]
        assert len(workers) == 2
    finally:
        server.kill(signal.SIGKILL)

    def gone() -> bool:
        return not any(os.path.exists(f"/proc/{pid}") and
                       "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                       for pid in workers)  # fmt: skip

    assert wait_until(gone, 10.0), "workers outlived their parent"
    # and the folder is free again: a restart serves
    restart = _archive(tmp_path).start()
    try:
        assert restart.alive()
    finally:
        restart.stop()


def test_safe_durability_settings() -> None:
    """--durability safe (qrscp's default): files and new directories fsynced, SQLite
    synchronous=FULL; fast: neither."""
    import tempfile

    from dicomnet.archive.scp import Archive

    for mode, fsync, sync in (("safe", True, 2), ("fast", False, 1)):
        with tempfile.TemporaryDirectory() as d:
            archive = Archive(d, durability=mode)
            try:
                assert archive.files.fsync is fsync
                assert archive.index.pragma("synchronous") == sync  # 2 FULL, 1 NORMAL
            finally:
                archive.close()
    with pytest.raises(ValueError):
        Archive(tempfile.mkdtemp(), durability="maybe")
