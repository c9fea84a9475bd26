"""How long ``dicomnet archive migrate`` takes on a populated index.

A SQLite index of ``--instances`` instances (100 per series, 4 series per study, 2 studies
per patient) is written through :meth:`ArchiveIndex.add_instances` (the index alone: no files,
paths as the archive would store them), then moved to PostgreSQL: the first pass (while an
archive would keep serving), a catch-up after 1% more instances were stored and 0.1% removed
(what the archive is stopped for), and a catch-up with nothing to do. The database is
``--to URL`` (it must be empty), or a throwaway cluster of the tests' (``tests.pg_cluster``).

    python bench/migrate_bench.py --instances 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dicomnet.archive.index import ArchiveIndex, InstanceFields
from dicomnet.archive.migrate import migrate

CT = "1.2.840.10008.5.1.4.1.1.2"


def fields(first: int, count: int, root: str) -> Iterator[tuple[InstanceFields, str, str, int]]:
    for n in range(first, first + count):
        series, study, patient = n // 100, n // 400, n // 800
        study_uid, series_uid = f"2.25.{study}", f"2.25.{study}.{series}"
        f = InstanceFields(
            sop_instance_uid=f"{series_uid}.{n}", sop_class_uid=CT, study_instance_uid=study_uid,
            series_instance_uid=series_uid, patient_id=f"P{patient:06d}",
            patient_name=f"PATIENT^{patient:06d}", patient_birth_date="19700101",
            patient_sex="MF"[patient % 2], study_date=f"20{10 + study % 15}0{1 + study % 9}15",
            study_time="101010", accession_number=f"A{study}", study_id="1",
            study_description="CT", referring_physician_name="REF^DR", modality="CT",
            series_number=str(series % 4 + 1), series_description="axial",
            instance_number=str(n % 100 + 1),
        )  # fmt: skip
        yield f, os.path.join(root, study_uid, series_uid, f"{n}.dcm"), "1.2.840.10008.1.2", 524288


def populate(index: ArchiveIndex, first: int, count: int, root: str) -> None:
    batch = 2000
    for start in range(first, first + count, batch):
        rows = list(fields(start, min(batch, first + count - start), root))
        index.add_instances(rows, [f"{i:016x}" for i in range(len(rows))])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=100_000)
    p.add_argument("--to", default=None, help="an empty PostgreSQL database (default: a cluster)")
    args = p.parse_args()
    cluster = None
    url = args.to
    if url is None:
        from tests import pg_cluster

        cluster = pg_cluster.start()
        if cluster is None:
            print("no PostgreSQL (initdb/pg_ctl) found", file=sys.stderr)
            return 1
        url = cluster.database()
    try:
        with tempfile.TemporaryDirectory(prefix="migrate-bench-") as tmp:
            path = os.path.join(tmp, "index.sqlite")
            t = time.monotonic()
            with ArchiveIndex(path) as index:
                populate(index, 0, args.instances, tmp)
                print(f"populate {args.instances} instances: {time.monotonic() - t:.1f} s "
                      f"({os.path.getsize(path) / 2**20:.0f} MB)")  # fmt: skip
                first = migrate(path, url)
                print(f"first pass: {first.seconds:.2f} s")
                print("\n".join(first.lines()))
                more = max(1, args.instances // 100)
                populate(index, args.instances, more, tmp)
                gone = index.backend.fetch("SELECT sop_uid FROM instance ORDER BY pk LIMIT ?",
                                           (max(1, args.instances // 1000),))  # fmt: skip
                for (uid,) in gone:
                    index.remove_instance(uid)
                catch_up = migrate(path, url, incremental=True)
                print(f"catch-up (+{more}, -{len(gone)} instances): {catch_up.seconds:.2f} s")
                print("\n".join(catch_up.lines()))
                idle = migrate(path, url, incremental=True)
                print(f"catch-up with nothing to do: {idle.seconds:.2f} s")
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
