"""Performance smoke: printed, not asserted (benchmarks proper live in bench/).

``DICOMNET_ARCHIVE_PERF_N`` sets the archive size (default 2,000 to keep the suite fast; the
figures quoted in reports use 10,000); ``DICOMNET_ARCHIVE_PERF_DIR`` where it lives.  Run with ``-s`` to see the numbers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from pydicom import Dataset

from dicomnet.archive.index import ArchiveIndex
from dicomnet.archive.store import FileStore
from tests.archive.conftest import IMPLICIT, OT, encode


def test_perf_smoke(tmp_path: Path) -> None:
    n = int(os.environ.get("DICOMNET_ARCHIVE_PERF_N", "2000"))
    base = os.environ.get("DICOMNET_ARCHIVE_PERF_DIR")  # e.g. /dev/shm to leave the disk out
    if base:
        tmp_path = Path(tempfile.mkdtemp(dir=base))
    store = FileStore(tmp_path / "files")
    index = ArchiveIndex(tmp_path / "index.sqlite")
    blobs = []
    for i in range(1, n + 1):
        ds = Dataset()
        ds.PatientName = "Perf^Patient"
        ds.PatientID = "PERF"
        ds.StudyInstanceUID = "2.25.9"
        ds.SeriesInstanceUID = "2.25.9.1"
        ds.SOPClassUID = OT
        ds.SOPInstanceUID = f"2.25.9.1.{i}"
        ds.Modality = "OT"
        ds.StudyDate = "20240101"
        ds.InstanceNumber = i
        blobs.append((ds.SOPInstanceUID, encode(ds, IMPLICIT)))
    start = time.perf_counter()
    tail = start
    for k, (sop, blob) in enumerate(blobs):
        if k == n - 1000:
            tail = time.perf_counter()
        store.store(index, OT, sop, IMPLICIT, [blob])
    end = time.perf_counter()
    q = Dataset()
    q.QueryRetrieveLevel = "IMAGE"
    q.StudyInstanceUID = "2.25.9"
    q.SeriesInstanceUID = "2.25.9.1"
    q.SOPInstanceUID = ""
    q.SOPClassUID = ""
    q.InstanceNumber = None
    t0 = time.perf_counter()
    results = list(index.query("IMAGE", q, "STUDY"))
    t1 = time.perf_counter()
    print(
        f"\narchive perf: stored {n} instances in {end - start:.2f} s "
        f"({(end - start) / n * 1e3:.3f} ms each; last 1000: {(end - tail):.3f} ms each); "
        f"C-FIND {len(results)} IMAGE matches in {t1 - t0:.3f} s"
    )
    assert len(results) == n  # correctness, not speed
    index.close()
    if base:
        shutil.rmtree(tmp_path)
