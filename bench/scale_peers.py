#!/usr/bin/env python3
"""The viewer queries of ``bench/scale.py`` against dicomnet qrscp, Orthanc and DCMTK dcmqrscp,
each holding the same instances: real files, stored over the network.

    python bench/scale_peers.py [--reps 100] [--out FILE]
    python bench/scale_peers.py --instances N [--servers qrscp,postgresql,orthanc,dcmqrscp]

(also ``bench/run --only p``: the default passes, 20,000 instances on qrscp (SQLite and
PostgreSQL) and Orthanc, then 5,000 on qrscp, Orthanc and dcmqrscp -- whose fill time grows
with the square of its size, an hour at 20,000).

Theory of operation
-------------------
``bench/scale.py`` measures the archive at 1,000,000 instances by writing the index rows
straight into the database: there are no files, and no other server can be loaded that way.
Orthanc and dcmqrscp can only be filled the way a hospital fills them -- a C-STORE per
instance -- so this comparison runs at a size every server can be filled to in minutes.

*Files.* :func:`write_files` takes the plan of :func:`scale.plan` for the size asked (the same
patients, studies, series, dates, accession numbers and UIDs the index generator writes) and
writes one small Part 10 file per instance (the patient, study, series and instance
attributes the queries use, no Pixel Data), Explicit VR Little Endian, UTF-8 (ISO_IR 192).

*Loading.* Each server starts empty in a temporary folder and DCMTK ``storescu +sd +r`` sends
the whole folder over one association (TCP_NODELAY=1): the fill time is reported too. qrscp
runs with its defaults (``--durability safe``) on SQLite, and, with ``postgresql`` in
``--servers``, on a throwaway PostgreSQL cluster (``tests/pg_cluster.py``); Orthanc with its
own SQLite index (Debian's build, no plugins); dcmqrscp with one storage area sized for the
studies (its ``index.dat``).

*Measurement.* The same client -- dicomnet's ``AE`` in this process, one association per
server -- sends each query of :data:`scale.QUERIES` ``reps`` times after 5 warm-ups, the same
key values in the same order for every server, timing from the request to the final
response with every match read (:func:`measure`). The table gives p50/p99 per server and the
mean number of matches: a server whose match count differs answered a different question (a
query key it does not support, another matching rule), which the notes name.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import run as bench_run  # noqa: E402  (bench/ is not a package)
import scale  # noqa: E402

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
AET = "DICOMNET"


# --- files ----------------------------------------------------------------------------------------


def write_files(p: scale.Plan, folder: Path) -> int:
    """One Part 10 file per instance of the plan under ``folder``; the number written."""
    n = 0
    patients: dict[object, tuple[object, ...]] = {}
    for batch in scale.batches(p, str(folder)):
        patients.update((row[0], row) for row in batch.patients)  # all in the first batch
        studies = {row[0]: row for row in batch.studies}
        series = {row[0]: row for row in batch.series}
        for inst in batch.instances:
            se = series[inst[1]]
            st = studies[se[1]]
            pat = patients[st[1]]
            ds = Dataset()
            ds.SpecificCharacterSet = scale._CHARSET
            ds.SOPClassUID, ds.SOPInstanceUID = inst[3], inst[2]
            ds.StudyDate, ds.StudyTime = st[11], st[13]
            ds.AccessionNumber = st[17]
            ds.Modality = se[3]
            ds.ReferringPhysicianName = st[20]
            ds.StudyDescription, ds.SeriesDescription = st[19], se[5]
            ds.PatientName, ds.PatientID = pat[3], pat[1]
            ds.PatientBirthDate, ds.PatientSex = pat[6], pat[8]
            ds.StudyInstanceUID, ds.SeriesInstanceUID = st[2], se[2]
            ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = st[18], se[4], inst[4]
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = inst[3], inst[2]
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            path = Path(str(inst[5]))
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            n += 1
    return n


# --- servers --------------------------------------------------------------------------------------


class Dcmqrscp:
    """DCMTK dcmqrscp with one storage area (called AE title :data:`AET`)."""

    def __init__(self, work: Path, studies: int) -> None:
        db = work / "db"
        db.mkdir(parents=True)
        self.port = scale._free_port()
        cfg = work / "dcmqrscp.cfg"
        cfg.write_text(
            f"NetworkTCPPort = {self.port}\nMaxPDUSize = 131072\nMaxAssociations = 16\n\n"
            "HostTable BEGIN\nHostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
            f"AETable BEGIN\n{AET} {db} RW ({studies + 100}, 100000mb) ANY\nAETable END\n"
        )
        self.proc = subprocess.Popen(["/usr/bin/dcmqrscp", "-c", str(cfg), str(self.port)],
                                     env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=work)  # fmt: skip
        try:
            bench_run.wait_port(self.port, self.proc, timeout=60)
        except BaseException:
            _stop(self.proc)
            raise

    def stop(self) -> None:
        _stop(self.proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fill(port: int, folder: Path) -> float:
    """DCMTK storescu of every file under ``folder`` over one association; seconds."""
    t0 = time.perf_counter()
    rc = subprocess.call(["/usr/bin/storescu", "-aec", AET, "+sd", "+r", "127.0.0.1", str(port),
                          str(folder)], env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)  # fmt: skip
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"storescu into port {port} failed: rc={rc}")
    return seconds


# --- measurement ----------------------------------------------------------------------------------


def measure(port: int, p: scale.Plan, label: str, reps: int,
            notes: list[str]) -> list[scale.Timing]:  # fmt: skip
    """:func:`scale.measure` for any server: a query the server refuses is noted and skipped."""
    from dicomnet import AE  # lazy: the client side only matters when measuring

    ae = AE(ae_title="SCALEBENCH")
    ae.add_requested_context(scale.STUDY_FIND)
    ae.add_requested_context(scale.PATIENT_FIND)
    assoc = ae.associate("127.0.0.1", port, ae_title=AET)
    if not assoc.is_established:
        raise RuntimeError(f"{label}: association refused")
    out = []
    try:
        for q in scale.QUERIES:
            timing = scale.Timing(q, label, [], [])
            failed = ""
            for i, ds in enumerate(scale.identifiers(p, q, reps + 5)):
                t0 = time.perf_counter()
                n = 0
                for status, identifier in assoc.send_c_find(ds, q.model):
                    code = int(getattr(status, "Status", -1))
                    if code in (0xFF00, 0xFF01) and identifier is not None:
                        n += 1
                    elif code != 0:
                        failed = f"0x{code:04X}" if code >= 0 else "no response"
                if failed:
                    break
                if i >= 5:
                    timing.seconds.append(time.perf_counter() - t0)
                    timing.matches.append(n)
            if failed:
                notes.append(f"{label} answered query ({q.key}) with {failed}: not timed")
                if not assoc.is_established:
                    break
            else:
                out.append(timing)
    finally:
        if assoc.is_established:
            assoc.release()
    return out


def run(spec: scale.Spec, servers: list[str], reps: int,
        log: Callable[[str], None] = print) -> str:  # fmt: skip
    """Write the files, fill each server, measure; the markdown text."""
    p = scale.plan(spec)
    timings: list[scale.Timing] = []
    notes: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="scale-peers-", dir="/var/tmp"))
    try:
        files = work / "files"
        t0 = time.perf_counter()
        n = write_files(p, files)
        log(f"{n} files written in {time.perf_counter() - t0:.0f} s")

        def one(label: str, start: Callable[[Path], tuple[int, Callable[[], None]]]) -> None:
            where = work / "".join(c if c.isalnum() else "-" for c in label)
            where.mkdir()  # no spaces: dcmqrscp's configuration cannot quote a path
            try:
                port, stop = start(where)
            except Exception as exc:  # not installed, did not start: the others still run
                notes.append(f"{label}: not measured ({exc})")
                log(notes[-1])
                return
            try:
                seconds = fill(port, files)
                notes.append(f"{label} filled in {seconds:.1f} s ({n / seconds:.0f} instances/s)")
                log(notes[-1])
                got = measure(port, p, label, reps, notes)
                log(scale.table(got, label))
                timings.extend(got)
            except Exception as exc:
                notes.append(f"{label}: not measured ({exc})")
                log(notes[-1])
            finally:
                stop()

        def qrscp(where: Path) -> tuple[int, Callable[[], None]]:
            server = scale.Qrscp(where)
            return server.port, server.stop

        def qrscp_fast(where: Path) -> tuple[int, Callable[[], None]]:
            server = scale.Qrscp(where, extra=("--durability", "fast"))
            return server.port, server.stop

        def orthanc(where: Path) -> tuple[int, Callable[[], None]]:
            from tests.corpus.orthanc import Orthanc  # lazy: the test suite's Orthanc harness

            server = Orthanc(where, aet=AET)
            return server.port, server.stop

        def dcmqrscp(where: Path) -> tuple[int, Callable[[], None]]:
            server = Dcmqrscp(where, spec.studies)
            return server.port, server.stop

        if "qrscp" in servers:
            one("dicomnet qrscp (SQLite)", qrscp)
        if "qrscp-fast" in servers:
            one("dicomnet qrscp --durability fast (SQLite)", qrscp_fast)
        if "postgresql" in servers:
            from tests import pg_cluster  # lazy: a throwaway cluster only when asked for

            cluster = pg_cluster.start()
            if cluster is None:
                notes.append("PostgreSQL: not installed, skipped")
            else:
                try:
                    url = cluster.database()

                    def qrscp_pg(where: Path) -> tuple[int, Callable[[], None]]:
                        server = scale.Qrscp(where, url)
                        return server.port, server.stop

                    one("dicomnet qrscp (PostgreSQL)", qrscp_pg)
                finally:
                    cluster.stop()
        if "orthanc" in servers:
            one("Orthanc", orthanc)
        if "dcmqrscp" in servers:
            one("DCMTK dcmqrscp", dcmqrscp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    title = (
        f"p. C-FIND latency against peers, {spec.instances:,} instances ({spec.studies:,} "
        f"studies, {spec.patients:,} patients) stored by DCMTK storescu, {reps} queries each"
    )
    return scale.table(timings, title) + "\n" + "\n".join(f"* {s}" for s in notes) + "\n"


#: the default passes: (instances, servers). dcmqrscp gets a pass of its own at a size it
#: can be filled to in minutes (its fill time grows with the square of the instances held:
#: 5000 took 3.5 min, 20,000 would take about an hour).
DEFAULT_PASSES = ((20_000, ("qrscp", "postgresql", "orthanc")),
                  (5_000, ("qrscp", "orthanc", "dcmqrscp")))  # fmt: skip


def run_default(*, quick: bool = False, reps: int = 100,
                log: Callable[[str], None] = print) -> str:  # fmt: skip
    """The default passes (a tenth of the sizes and 20 queries with ``quick``)."""
    div = 10 if quick else 1
    return "\n".join(run(scale.Spec(n // div), list(servers), 20 if quick else reps, log=log)
                     for n, servers in DEFAULT_PASSES)  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=0,
                    help="one pass of this size (default: the passes of DEFAULT_PASSES)")
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--servers", default="qrscp,postgresql,orthanc,dcmqrscp",
                    help="with --instances")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.instances:
        text = run(scale.Spec(args.instances), args.servers.split(","), args.reps, log=log)
    else:
        text = run_default(reps=args.reps, log=log)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
