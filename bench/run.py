#!/usr/bin/env python3
"""Side-by-side benchmark: dicomnet vs DCMTK vs pynetdicom, in one run, over loopback.

    bench/run [--quick] [--reps N] [--only 1,2,4,9] [--with-1g] [--out FILE]

Theory of operation
-------------------
Each scenario is a list of *variants* (one per implementation). For every repetition the variants
run one after another (alternating, so machine noise hits all of them alike); the table reports
medians and the ratios dicomnet/DCMTK and dicomnet/pynetdicom (below 1.0 = dicomnet is faster).
Servers run as separate processes, started fresh per repetition; clients too. Peak RSS comes from
``os.wait4`` of each process. DCMTK always runs with TCP_NODELAY=1 in its environment (without
it, Nagle's algorithm dominates its small-message timings). Data is generated once into a
RAM-backed directory (/dev/shm) and reused.

Scenarios 5 and 6 use the archive (``dicomnet qrscp``): 5 fills it once per run (10,000 small
instances and 1000 CT, by ``dicomnet storescu --parallel 2 --max-ops 16``) and compares a
C-FIND with 10,000 IMAGE-level matches against 10,000 C-ECHO round trips between DCMTK tools,
DCMTK storescu storing new CT into it against DCMTK storescu -> storescp +B, and DCMTK
getscu/movescu retrieving the 1000 CT from it against DCMTK dcmqrscp (configured in the run's
temp dir). 6 runs 50 DCMTK storescu processes at once (100 distinct CT each) into a fresh
archive, against DCMTK storescp +B --fork and against the same files over one association.
3c (with --with-1g) sends the 1 GiB instance as Explicit VR Big Endian to a DCMTK storescp
that accepts Implicit VR Little Endian only: both senders convert (peak RSS in the table).
8 sends the 1000 CT stored as JPEG-LS and as JPEG 2000 (lossless) to a DCMTK storescp that
accepts uncompressed data only: dicomnet storescu converts on the way; DCMTK's storescu has no
codecs in Debian's build, so its reference is dcmdjpls on every file plus storescu (there is
no free DCMTK JPEG 2000 codec: 8b has no DCMTK variant). 9 stores the 1000 CT into an empty
qrscp with --durability safe (fsync of every file and new directory, SQLite synchronous=FULL)
and fast, in tmpfs and on disk (/var/tmp), next to DCMTK storescp +B (which never fsyncs), and
prints the safe/fast ratio. m (only with ``--only m``: bench/scale.py) generates an index of
1,000,000 instances straight into SQLite (cached under .cache/scale) and into a throwaway
PostgreSQL cluster, and prints p50/p99 C-FIND latencies of six viewer queries per backend.
p (only with ``--only p``: bench/scale_peers.py) asks the same queries of qrscp, Orthanc and
dcmqrscp filled by DCMTK storescu with the same real files (20,000 instances; 5,000 for the
pass with dcmqrscp, whose fill time grows with the square of its size).

Whole-process variants time the client process from spawn to exit (start-up included);
"in-process" variants report the time the client library measured itself, from association
request to release (start-up excluded).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import nodes_bench  # noqa: E402
import workflow_bench  # noqa: E402
from gen_data import generate, generate_big_endian, generate_compressed, ram_dir  # noqa: E402

PY = sys.executable
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
PEERS = HERE / "peers"


def dcmtk(name: str) -> str:
    for d in ("/usr/bin", "/usr/local/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    raise SystemExit(f"DCMTK's {name} is not installed (apt-get install dcmtk)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Harness only: retry connecting until the freshly started server listens."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.args}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {port}: {proc.args}")


def vm_hwm(pid: int) -> int:
    """Peak resident set size of a running process, in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Result:
    seconds: float
    client_rss: int = 0
    server_rss: int = 0
    ok: bool = True
    note: str = ""


@dataclass
class Variant:
    impl: str  # "dicomnet", "DCMTK", "pynetdicom", or a label
    label: str
    run: Callable[[], Result]
    results: list[Result] = field(default_factory=list)


class Server:
    """A server process started for one repetition; stopped with SIGTERM, RSS via wait4."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_port(port, self.proc)

    def stop(self) -> int:
        """Stop the server; its peak RSS (KiB) is read from /proc before it goes.

        (wait4's ru_maxrss is no good here: on Linux a child inherits the parent's high-water
        mark at fork, so every child of this Python process would report at least our RSS.)"""
        rss = vm_hwm(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return rss


def run_client(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str, int]:
    """Run a client to completion: (wall seconds, peak RSS KiB, stdout, exit code).

    GNU time measures the RSS: it is a small process, so the high-water mark its child inherits
    at fork is small too."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rssfile:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rssfile.name, *argv], env=env,
                              capture_output=True, check=False)
        seconds = time.perf_counter() - t0
        text = rssfile.read().strip().splitlines()
    rss = int(text[-1]) if text and text[-1].isdigit() else 0
    return seconds, rss, proc.stdout.decode(errors="replace"), proc.returncode


def inproc_seconds(out: str) -> float | None:
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return float(json.loads(line)["seconds"])
            except (ValueError, KeyError):
                return None
    return None


# --------------------------------------------------------------------------- commands per impl

# What a user runs: the installed ``dicomnet`` command (python -m adds runpy's ~2.5 ms start-up)
_SCRIPT = Path(PY).parent / "dicomnet"
DN = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "dicomnet.cli.main"]


def scp_argv(impl: str, port: int, outdir: Path) -> tuple[list[str], dict[str, str] | None]:
    if impl == "DCMTK":
        return [dcmtk("storescp"), "-od", str(outdir), str(port)], DCMTK_ENV
    if impl == "DCMTK +B":
        return [dcmtk("storescp"), "+B", "-od", str(outdir), str(port)], DCMTK_ENV
    if impl == "pynetdicom":
        return [PY, str(PEERS / "pynd.py"), "scp", str(port), str(outdir)], None
    if impl == "dicomnet":
        return [*DN, "storescp", str(port), "-od", str(outdir)], None
    if impl == "DCMTK +xi":  # accepts Implicit VR Little Endian only: senders must convert
        return [dcmtk("storescp"), "+B", "+xi", "-od", str(outdir), str(port)], DCMTK_ENV
    if impl == "dicomnet window":  # grants an asynchronous operations window (PS3.7 D.3.3.3)
        return [*DN, "storescp", str(port), "-od", str(outdir), "--max-ops", "16"], None
    raise ValueError(impl)


def store_argv(impl: str, port: int, files: list[Path], listfile: Path, inproc: bool = False,
               window: int = 0, cli_window: int = 0) -> tuple[list[str], dict[str, str] | None]:
    if impl.startswith("DCMTK"):
        return [dcmtk("storescu"), "-aec", "ANY-SCP", "127.0.0.1", str(port),
                *map(str, files)], DCMTK_ENV
    if impl == "pynetdicom":
        return [PY, str(PEERS / "pynd.py"), "store", "127.0.0.1", str(port), str(listfile)], None
    if impl == "dicomnet":
        if inproc or window:
            extra = ["--window", str(window)] if window else []
            return [PY, str(PEERS / "dn.py"), "store", "127.0.0.1", str(port), str(listfile),
                    *extra], None
        extra = ["--max-ops", str(cli_window)] if cli_window else []
        return [*DN, "storescu", "127.0.0.1", str(port), *map(str, files), "-q", *extra], None
    raise ValueError(impl)


# --------------------------------------------------------------------------- scenario builders


def store_variant(impl: str, scp_impl: str, files: list[Path], work: Path, label: str,
                  inproc: bool = False, window: int = 0, cli_window: int = 0) -> Variant:
    listfile = work / f"list-{len(files)}-{files[0].parent.name}.txt"
    listfile.write_text("\n".join(map(str, files)))

    def run() -> Result:
        port = free_port()
        outdir = Path(tempfile.mkdtemp(dir=work))
        argv, env = scp_argv(scp_impl, port, outdir)
        server = Server(argv, port, env)
        try:
            cargv, cenv = store_argv(impl, port, files, listfile, inproc, window, cli_window)
            seconds, rss, out, rc = run_client(cargv, cenv)
        finally:
            srss = server.stop()
        stored = sum(1 for p in outdir.rglob("*") if p.is_file())
        shutil.rmtree(outdir, ignore_errors=True)
        if inproc or window or impl == "pynetdicom":
            measured = inproc_seconds(out)
            if measured is not None:
                seconds = measured
        ok = rc == 0 and stored >= len(files)
        return Result(seconds, rss, srss, ok, "" if ok else f"rc={rc} stored={stored}")

    return Variant(impl, label, run)


def durability_variants(files: list[Path], where: Path) -> list[Variant]:
    """Scenario 9: DCMTK storescu into an empty dicomnet qrscp, --durability safe and fast,
    and into DCMTK storescp +B (which never fsyncs), with the storage in ``where``."""

    def ours(mode: str) -> Callable[[], Result]:
        def run() -> Result:
            storage = Path(tempfile.mkdtemp(dir=where, prefix=f"dur-{mode}-"))
            port = free_port()
            argv = [*qrscp_argv(port, storage), "--durability", mode]
            server = Server(argv, port)
            try:
                seconds, rss, _out, rc = run_client(
                    [dcmtk("storescu"), "-aec", "DICOMNET", "127.0.0.1", str(port),
                     *map(str, files)], DCMTK_ENV)
            finally:
                srss = server.stop()
            stored = count_dicom(storage)
            shutil.rmtree(storage, ignore_errors=True)
            ok = rc == 0 and stored == len(files)
            return Result(seconds, rss, srss, ok, "" if ok else f"rc={rc} stored={stored}")

        return run

    return [Variant("dicomnet", "DCMTK storescu -> dicomnet qrscp --durability safe", ours("safe")),
            Variant("dicomnet", "DCMTK storescu -> dicomnet qrscp --durability fast", ours("fast")),
            store_variant("DCMTK", "DCMTK +B", files, where, "DCMTK storescu -> storescp +B")]


def safe_fast_note(variants: list[Variant]) -> str:
    med = {v.label: statistics.median(r.seconds for r in v.results) for v in variants if v.results}
    safe, fast = (med.get(v.label) for v in variants[:2])
    if not safe or not fast:
        return ""
    return f"safe / fast = {safe / fast:.2f}\n"


def echo_variant(impl: str, n: int, assocs: bool, work: Path) -> Variant:
    def run() -> Result:
        port = free_port()
        argv, env = scp_argv("DCMTK" if impl == "DCMTK" else impl, port, work)
        server = Server(argv, port, env)
        try:
            if impl == "DCMTK":
                if assocs:
                    t0 = time.perf_counter()
                    rc = 0
                    for _ in range(n):
                        rc |= subprocess.call([dcmtk("echoscu"), "127.0.0.1", str(port)],
                                              env=DCMTK_ENV)
                    seconds, rss, out = time.perf_counter() - t0, 0, ""
                else:
                    seconds, rss, out, rc = run_client(
                        [dcmtk("echoscu"), "--repeat", str(n), "127.0.0.1", str(port)], DCMTK_ENV)
            else:
                script = "pynd.py" if impl == "pynetdicom" else "dn.py"
                mode = "echo-assocs" if assocs else "echo"
                seconds, rss, out, rc = run_client(
                    [PY, str(PEERS / script), mode, "127.0.0.1", str(port), str(n)])
                measured = inproc_seconds(out)
                if measured is not None:
                    seconds = measured
        finally:
            srss = server.stop()
        return Result(seconds, rss, srss, rc == 0, "" if rc == 0 else f"rc={rc}")

    label = f"{impl} ({'processes' if impl == 'DCMTK' and assocs else 'library'})"
    return Variant(impl, label, run)


def decompress_variants(files: list[Path], work: Path, ts_name: str, dcmtk_tool: str | None,
                        ) -> list[Variant]:  # fmt: skip
    """Scenario 8: compressed CT to a storage SCP that accepts uncompressed syntaxes only
    (DCMTK's default storescp). dicomnet storescu decompresses on the way; Debian's DCMTK
    storescu has no codecs built in (it fails every such file), so the DCMTK reference is what
    its user does: ``dcmdjpls``/``dcmdjpeg`` on every file, then storescu."""
    listfile = work / f"list-{len(files)}-{files[0].parent.name}.txt"
    listfile.write_text("\n".join(map(str, files)))

    def ours(parallel: int) -> Callable[[], Result]:
        def run() -> Result:
            port = free_port()
            outdir = Path(tempfile.mkdtemp(dir=work))
            server = Server([dcmtk("storescp"), "+B", "-od", str(outdir), str(port)], port,
                            DCMTK_ENV)  # fmt: skip
            try:
                argv = [*DN, "storescu", "127.0.0.1", str(port), "-q", *map(str, files)]
                if parallel > 1:
                    argv += ["--parallel", str(parallel)]
                seconds, rss, _out, rc = run_client(argv)
            finally:
                srss = server.stop()
            stored = count_dicom(outdir)
            shutil.rmtree(outdir, ignore_errors=True)
            ok = rc == 0 and stored == len(files)
            return Result(seconds, rss, srss, ok, "" if ok else f"rc={rc} stored={stored}")
        return run

    def theirs() -> Result:
        assert dcmtk_tool is not None
        port = free_port()
        outdir = Path(tempfile.mkdtemp(dir=work))
        plain = Path(tempfile.mkdtemp(dir=work))
        server = Server([dcmtk("storescp"), "+B", "-od", str(outdir), str(port)], port, DCMTK_ENV)
        try:
            t0 = time.perf_counter()
            rc = 0
            for f in files:
                rc |= subprocess.call([dcmtk(dcmtk_tool), str(f), str(plain / f.name)],
                                      env=DCMTK_ENV)
            seconds_d = time.perf_counter() - t0
            seconds, rss, _out, rc2 = run_client(
                [dcmtk("storescu"), "-aec", "ANY-SCP", "127.0.0.1", str(port),
                 *map(str, sorted(plain.iterdir()))], DCMTK_ENV)  # fmt: skip
            seconds += seconds_d
        finally:
            srss = server.stop()
        stored = count_dicom(outdir)
        shutil.rmtree(outdir, ignore_errors=True)
        shutil.rmtree(plain, ignore_errors=True)
        ok = rc == 0 and rc2 == 0 and stored == len(files)
        return Result(seconds, rss, srss, ok, "" if ok else f"rc={rc}/{rc2} stored={stored}")

    vs = [Variant("dicomnet", f"dicomnet storescu ({ts_name} -> uncompressed)", ours(1)),
          Variant("dicomnet", f"dicomnet storescu --parallel 2 ({ts_name})", ours(2))]
    if dcmtk_tool is not None:
        vs.append(Variant("DCMTK", f"DCMTK {dcmtk_tool} per file + storescu", theirs))
    return vs


def startup_variant(impl: str, work: Path, n: int = 10) -> Variant:
    def run() -> Result:
        port = free_port()
        argv, env = scp_argv("DCMTK", port, work)
        server = Server(argv, port, env)
        try:
            cmd = ([dcmtk("echoscu"), "127.0.0.1", str(port)] if impl == "DCMTK"
                   else [*DN, "echoscu", "127.0.0.1", str(port)])
            t0 = time.perf_counter()
            rc = 0
            for _ in range(n):
                rc |= subprocess.call(cmd, env=DCMTK_ENV if impl == "DCMTK" else None,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = (time.perf_counter() - t0) / n
        finally:
            srss = server.stop()
        return Result(seconds, 0, srss, rc == 0)

    return Variant(impl, f"{impl} echoscu (whole process)", run)


# --------------------------------------------------------------------------- archive (5, 6)


def series_uids(path: Path) -> tuple[str, str]:
    from pydicom import dcmread

    ds = dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)


def count_dicom(folder: Path) -> int:
    """Part 10 files below ``folder`` (the archive's index, audit log and dot-files -- temp
    folder, lock, clean-stop marker -- excluded)."""
    n = 0
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if (p.is_file() and not any(part.startswith(".") for part in rel)
                and not p.name.startswith("index.sqlite") and p.name != "audit.jsonl"):
            n += 1
    return n


WORKERS = os.cpu_count() or 1  # qrscp --workers in scenario 6


def qrscp_argv(port: int, storage: Path, dests: dict[str, int] | None = None,
               workers: int = 1) -> list[str]:
    argv = [*DN, "qrscp", "--port", str(port), "--bind", "127.0.0.1", "--storage", str(storage),
            "-aet", "DICOMNET", "-q", "--max-associations", "128"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    for aet, p in (dests or {}).items():
        argv += ["--destination", f"{aet}=127.0.0.1:{p}"]
    return argv


class ArchiveFixture:
    """The archive of scenarios 5: ``small`` (10,000 instances, one series) plus ``ct`` (1000 CT,
    another series), stored once per run into our qrscp by our storescu (--parallel 2,
    --max-ops 16) and kept as a base directory; a repetition that stores into the archive
    works on a clone (hard links for the Part 10 files, which are never modified in place; a
    real copy of the SQLite index). The same CT go into a DCMTK dcmqrscp (its own index) for
    the C-GET/C-MOVE reference."""

    def __init__(self, work: Path, small: list[Path], ct: list[Path]) -> None:
        self.work = work
        self.small, self.ct = small, ct
        self.base = work / "archive-base"
        self.dest_port = free_port()  # the C-MOVE destination (a DCMTK storescp +B)
        port = free_port()
        server = Server(qrscp_argv(port, self.base), port)
        try:
            t0 = time.perf_counter()
            rc = subprocess.call(
                [*DN, "storescu", "127.0.0.1", str(port), "-aec", "DICOMNET", "-q",
                 "--parallel", "2", "--max-ops", "16", str(small[0].parent), str(ct[0].parent)],
                stderr=subprocess.DEVNULL)
            self.fill_seconds = time.perf_counter() - t0
        finally:
            server.stop()
        self.count = count_dicom(self.base)
        if rc != 0 or self.count != len(small) + len(ct):
            raise RuntimeError(f"archive fill failed: rc={rc}, {self.count} files")
        # DCMTK dcmqrscp holding the same CT
        self.dcmqr_dir = work / "dcmqr"
        self.dcmqr_db = self.dcmqr_dir / "db"
        self.dcmqr_db.mkdir(parents=True)
        self.dcmqr_port = free_port()
        self.dcmqr_cfg = self.dcmqr_dir / "dcmqrscp.cfg"
        self.dcmqr_cfg.write_text(
            f"NetworkTCPPort = {self.dcmqr_port}\nMaxPDUSize = 131072\nMaxAssociations = 64\n\n"
            f"HostTable BEGIN\ndest = (DEST, 127.0.0.1, {self.dest_port})\nHostTable END\n\n"
            "VendorTable BEGIN\nVendorTable END\n\n"
            f"AETable BEGIN\nDCMQR {self.dcmqr_db} RW (100, 4096mb) ANY\nAETable END\n")
        server = self.dcmqrscp()
        try:
            t0 = time.perf_counter()
            rc = subprocess.call([dcmtk("storescu"), "-aec", "DCMQR", "127.0.0.1",
                                  str(self.dcmqr_port), *map(str, ct)], env=DCMTK_ENV,
                                 stderr=subprocess.DEVNULL)
            self.dcmqr_fill_seconds = time.perf_counter() - t0
        finally:
            server.stop()
        if rc != 0:
            raise RuntimeError(f"dcmqrscp fill failed: rc={rc}")
        self.small_uids = series_uids(small[0])
        self.ct_uids = series_uids(ct[0])

    def dcmqrscp(self) -> Server:
        return Server([dcmtk("dcmqrscp"), "-c", str(self.dcmqr_cfg), str(self.dcmqr_port)],
                      self.dcmqr_port, DCMTK_ENV)

    def clone(self) -> Path:
        dest = Path(tempfile.mkdtemp(dir=self.work, prefix="archive-clone-"))
        dest.rmdir()
        subprocess.check_call(["cp", "-al", str(self.base), str(dest)])
        for db in dest.glob("index.sqlite*"):  # SQLite writes in place: a real copy
            db.unlink()
            shutil.copy2(self.base / db.name, db)
        return dest


def find_variants(arc: ArchiveFixture, work: Path) -> list[Variant]:
    study, series = arc.small_uids
    n = len(arc.small)
    keys = ["-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={study}",
            "-k", f"SeriesInstanceUID={series}", "-k", "SOPInstanceUID"]

    def ours(client: str) -> Callable[[], Result]:
        def run() -> Result:
            port = free_port()
            server = Server(qrscp_argv(port, arc.base), port)
            try:
                if client == "DCMTK":
                    argv = [dcmtk("findscu"), "-q", "-S", "-aec", "DICOMNET", *keys, "127.0.0.1",
                            str(port)]
                else:
                    argv = [*DN, "findscu", "-S", "-aec", "DICOMNET", *keys, "--json",
                            "127.0.0.1", str(port)]
                seconds, rss, out, rc = run_client(argv, DCMTK_ENV)
            finally:
                srss = server.stop()
            note = ""
            ok = rc == 0
            if client != "DCMTK":
                got = out.count('"00080018"')
                ok = ok and got == n
                note = "" if ok else f"rc={rc} matches={got}"
            return Result(seconds, rss, srss, ok, note or ("" if ok else f"rc={rc}"))
        return run

    def echoes() -> Result:
        port = free_port()
        server = Server([dcmtk("storescp"), str(port)], port, DCMTK_ENV)
        try:
            seconds, rss, _out, rc = run_client(
                [dcmtk("echoscu"), "--repeat", str(n), "127.0.0.1", str(port)], DCMTK_ENV)
        finally:
            srss = server.stop()
        return Result(seconds, rss, srss, rc == 0)

    return [Variant("dicomnet", f"DCMTK findscu -> dicomnet qrscp ({n} matches)", ours("DCMTK")),
            Variant("dicomnet", f"dicomnet findscu -> dicomnet qrscp ({n} matches)",
                    ours("dicomnet")),
            Variant("DCMTK", f"DCMTK echoscu --repeat {n} -> storescp", echoes)]


def archive_store_variants(arc: ArchiveFixture, files: list[Path], work: Path) -> list[Variant]:
    def ours(*extra: str) -> Result:
        storage = arc.clone()
        port = free_port()
        server = Server([*qrscp_argv(port, storage), *extra], port)
        try:
            seconds, rss, _out, rc = run_client(
                [dcmtk("storescu"), "-aec", "DICOMNET", "127.0.0.1", str(port),
                 *map(str, files)], DCMTK_ENV)
        finally:
            srss = server.stop()
        stored = count_dicom(storage) - arc.count
        shutil.rmtree(storage, ignore_errors=True)
        ok = rc == 0 and stored == len(files)
        return Result(seconds, rss, srss, ok, "" if ok else f"rc={rc} stored={stored}")

    return [Variant("dicomnet", f"DCMTK storescu -> dicomnet qrscp ({arc.count} held)", ours),
            Variant("dicomnet", f"DCMTK storescu -> dicomnet qrscp --durability fast "
                    f"({arc.count} held)", lambda: ours("--durability", "fast")),
            store_variant("DCMTK", "DCMTK +B", files, work, "DCMTK storescu -> storescp +B")]


def retrieve_variants(arc: ArchiveFixture, work: Path, move: bool) -> list[Variant]:
    study, series = arc.ct_uids
    n = len(arc.ct)
    keys = ["-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}",
            "-k", f"SeriesInstanceUID={series}"]

    def run_with(server_kind: str) -> Callable[[], Result]:
        def run() -> Result:
            outdir = Path(tempfile.mkdtemp(dir=work))
            dest: Server | None = None
            if server_kind == "dicomnet":
                port, aec = free_port(), "DICOMNET"
                server = Server(qrscp_argv(port, arc.base, {"DEST": arc.dest_port}), port)
            else:
                port, aec = arc.dcmqr_port, "DCMQR"
                server = arc.dcmqrscp()
            try:
                if move:
                    dest = Server([dcmtk("storescp"), "+B", "-aet", "DEST", "-od", str(outdir),
                                   str(arc.dest_port)], arc.dest_port, DCMTK_ENV)
                    argv = [dcmtk("movescu"), "-S", "-aec", aec, "-aem", "DEST", *keys,
                            "127.0.0.1", str(port)]
                else:
                    argv = [dcmtk("getscu"), "-S", "-aec", aec, *keys, "-od", str(outdir),
                            "127.0.0.1", str(port)]
                seconds, rss, _out, rc = run_client(argv, DCMTK_ENV)
            finally:
                srss = server.stop()
                if dest is not None:
                    dest.stop()
            got = count_dicom(outdir)
            shutil.rmtree(outdir, ignore_errors=True)
            ok = rc == 0 and got == n
            return Result(seconds, rss, srss, ok, "" if ok else f"rc={rc} received={got}")
        return run

    tool = "movescu" if move else "getscu"
    return [Variant("dicomnet", f"DCMTK {tool} <- dicomnet qrscp", run_with("dicomnet")),
            Variant("DCMTK", f"DCMTK {tool} <- DCMTK dcmqrscp", run_with("DCMTK"))]


def concurrent_variants(files: list[Path], work: Path, nassoc: int) -> list[Variant]:
    """Scenario 6: ``nassoc`` DCMTK storescu processes at once, each with its own share of
    ``files`` (distinct instances), into a fresh archive; and all of them over one
    association, for the aggregate-throughput comparison."""
    parts = [files[i::nassoc] for i in range(nassoc)]

    def run_with(server_kind: str, concurrent: bool) -> Callable[[], Result]:
        def run() -> Result:
            storage = Path(tempfile.mkdtemp(dir=work, prefix="arc6-"))
            port = free_port()
            if server_kind == "dicomnet":
                # one worker process per core, like storescp --fork's process per association
                server = Server(qrscp_argv(port, storage, workers=WORKERS), port)
                aec = "DICOMNET"
            else:
                server = Server([dcmtk("storescp"), "+B", "--fork", "-od", str(storage),
                                 str(port)], port, DCMTK_ENV)
                aec = "ANY-SCP"
            try:
                t0 = time.perf_counter()
                groups = parts if concurrent else [files]
                procs = [subprocess.Popen([dcmtk("storescu"), "-aec", aec, "127.0.0.1",
                                           str(port), *map(str, g)], env=DCMTK_ENV,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                         for g in groups]
                rcs = [p.wait() for p in procs]
                errs = [p.stderr.read().decode(errors="replace")[-200:] for p in procs
                        if p.stderr is not None]
                for p in procs:
                    if p.stderr is not None:
                        p.stderr.close()
                seconds = time.perf_counter() - t0
            finally:
                srss = server.stop()
            stored = count_dicom(storage)
            shutil.rmtree(storage, ignore_errors=True)
            failed = sum(1 for rc in rcs if rc != 0)
            ok = failed == 0 and stored == len(files)
            note = "" if ok else (f"{failed} failed, stored={stored} "
                                  + next((e for e in errs if e.strip()), ""))
            mbps = sum(f.stat().st_size for f in files) / seconds / 1e6
            return Result(seconds, 0, srss, ok, note or f"{mbps:.0f} MB/s")
        return run

    n = len(files)
    return [
        Variant("dicomnet", f"{nassoc} x DCMTK storescu -> dicomnet qrscp --workers {WORKERS} ({n} CT)",
                run_with("dicomnet", True)),
        Variant("DCMTK", f"{nassoc} x DCMTK storescu -> DCMTK storescp +B --fork",
                run_with("DCMTK", True)),
        Variant("dicomnet", f"1 x DCMTK storescu -> dicomnet qrscp --workers {WORKERS} ({n} CT, one association)",
                run_with("dicomnet", False)),
    ]


# --------------------------------------------------------------------------- table


def commitment_variants(arc: ArchiveFixture) -> list[Variant]:
    """Scenario 5e: dicomnet stgcmtscu asks qrscp --commitment to commit to the 10,000 small
    instances; the time is the whole process, until the report (on the same association) is
    read. No DCMTK tool asks for storage commitment: the reference is the C-FIND of 5a."""
    n = len(arc.small)

    def run() -> Result:
        port = free_port()
        server = Server([*qrscp_argv(port, arc.base), "--commitment"], port)
        try:
            seconds, rss, _out, rc = run_client(
                [*DN, "stgcmtscu", "-q", "-aec", "DICOMNET", "127.0.0.1", str(port),
                 str(arc.small[0].parent)])  # fmt: skip
        finally:
            srss = server.stop()
        return Result(seconds, rss, srss, rc == 0, "" if rc == 0 else f"rc={rc}")

    return [Variant("dicomnet", f"stgcmtscu {n} instances -> qrscp --commitment (report)", run)]


def mwl_variants(work: Path, n: int) -> list[Variant]:
    """Scenario w: ten concurrent findscu -W against each worklist server (bench/workflow_bench)."""
    data = work / "mwl"
    workflow_bench.write_items(data / workflow_bench.CALLED, n)

    def run(ours: bool) -> Callable[[], Result]:
        def once() -> Result:
            port = free_port()
            argv = ([*DN, "qrscp", "--port", str(port), "--storage", str(work / "mwl-arc"),
                     "-aet", workflow_bench.CALLED, "--worklist",
                     str(data / workflow_bench.CALLED), "--audit-log", "none", "-q"] if ours
                    else [dcmtk("wlmscpfs"), "-q", "-dfp", str(data), str(port)])  # fmt: skip
            server = Server(argv, port, None if ours else DCMTK_ENV)
            try:
                seconds, ok, note = workflow_bench.concurrent_queries(
                    dcmtk("findscu"), port, n, work / "mwl-out", DCMTK_ENV)
            finally:
                srss = server.stop()
            return Result(seconds, 0, srss, ok, note)
        return once

    return [Variant("dicomnet", f"10 x findscu -W -> dicomnet qrscp --worklist ({n} items)",
                    run(True)),
            Variant("DCMTK", f"10 x findscu -W -> wlmscpfs ({n} items)", run(False))]


def fmt_rss(kib: int) -> str:
    return f"{kib / 1024:.0f} MB" if kib else "-"


def table(title: str, variants: list[Variant]) -> str:
    med = {v.label: statistics.median(r.seconds for r in v.results) for v in variants if v.results}
    dcm = [v for v in variants if v.impl == "DCMTK"]
    pyn = [v for v in variants if v.impl == "pynetdicom"]
    ref_d = min((med[v.label] for v in dcm), default=None)
    ref_p = min((med[v.label] for v in pyn), default=None)
    lines = [f"### {title}", "",
             "| variant | median s | vs best DCMTK | vs pynetdicom | client RSS | server RSS | ok |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for v in variants:
        if not v.results:
            continue
        m = med[v.label]
        rd = f"{m / ref_d:.2f}" if ref_d and v.impl == "dicomnet" else ""
        rp = f"{m / ref_p:.3f}" if ref_p and v.impl == "dicomnet" else ""
        crss = max(r.client_rss for r in v.results)
        srss = max(r.server_rss for r in v.results)
        ok = all(r.ok for r in v.results)
        notes = "; ".join(sorted({r.note for r in v.results if r.note}))
        status = ("yes" + (f" ({notes})" if notes else "")) if ok else "NO " + notes
        lines.append(f"| {v.label} | {m:.3f} | {rd} | {rp} | {fmt_rss(crss)} | {fmt_rss(srss)} "
                     f"| {status} |")
    return "\n".join(lines) + "\n"


def run_scenario(title: str, variants: list[Variant], reps: int, warmup: bool = False) -> str:
    """``warmup``: run every variant once first and discard it (scenarios that write hundreds
    of MB into tmpfs: whichever variant first needs that memory after a quiet spell pays the
    kernel's reclaim, measured at 2x on 5b's first repetition)."""
    print(f"-- {title}", file=sys.stderr, flush=True)
    if warmup:
        for v in variants:
            try:
                r = v.run()
                print(f"   warm-up {v.label}: {r.seconds:.3f}s (discarded)", file=sys.stderr,
                      flush=True)
            except Exception as exc:
                print(f"   warm-up {v.label}: {exc}", file=sys.stderr, flush=True)
    for rep in range(reps):
        for v in variants:
            try:
                r = v.run()
            except Exception as exc:  # a broken variant must not hide the others
                r = Result(float("nan"), ok=False, note=f"{type(exc).__name__}: {exc}"[:80])
            v.results.append(r)
            print(f"   rep {rep + 1} {v.label}: {r.seconds:.3f}s {'ok' if r.ok else r.note}",
                  file=sys.stderr, flush=True)
    return table(title, variants)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one tenth of the counts, 1 repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="",
                    help="comma-separated scenario numbers (1-9, s, w, n; m: C-FIND latency at "
                         "1,000,000 instances, bench/scale.py; p: the same queries against "
                         "Orthanc and dcmqrscp, bench/scale_peers.py; m and p only when named)")  # fmt: skip
    ap.add_argument("--with-1g", action="store_true", help="include the 1 GiB instance")
    ap.add_argument("--out", default="", help="also write the markdown table to this file")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    reps = 1 if args.quick else args.reps
    only = set(filter(None, args.only.split(",")))

    def want(s: str) -> bool:
        return not only or s in only

    # Byte-compile dicomnet once, as an installed package is: the environment may set
    # PYTHONDONTWRITEBYTECODE, and then every tool start would compile its modules again.
    import compileall

    compileall.compile_dir(str(HERE.parent / "src" / "dicomnet"), quiet=1)
    data = ram_dir()
    work = Path(tempfile.mkdtemp(dir=data, prefix="run-"))
    out: list[str] = [
        f"## dicomnet benchmark, {_dt.date.today().isoformat()}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, data in {data}. Medians of {reps} run(s); ratios are "
        "dicomnet time / other time (below 1 = dicomnet faster).",
        "",
    ]
    try:
        if want("1"):
            ct = generate(data, "ct", 1000 // scale)
            vs = [store_variant(i, i if i != "DCMTK" else "DCMTK", ct, work, f"{i} storescu -> storescp")
                  for i in ("dicomnet", "pynetdicom")]
            vs.insert(1, store_variant("DCMTK", "DCMTK", ct, work, "DCMTK storescu -> storescp"))
            vs.insert(2, store_variant("DCMTK", "DCMTK +B", ct, work,
                                       "DCMTK storescu -> storescp +B"))
            vs.append(store_variant("dicomnet", "dicomnet", ct, work,
                                    "dicomnet in-process (library SCU timer)", inproc=True))
            out.append(run_scenario(f"1. C-STORE {len(ct)} CT (512 KB) over one association",
                                    vs, reps))
        if want("2"):
            small = generate(data, "small", 5000 // scale)
            vs = [store_variant("dicomnet", "dicomnet", small, work, "dicomnet (sync)"),
                  store_variant("DCMTK", "DCMTK +B", small, work, "DCMTK storescu -> storescp +B"),
                  store_variant("pynetdicom", "pynetdicom", small, work, "pynetdicom"),
                  store_variant("dicomnet", "dicomnet window", small, work,
                                "dicomnet (async window 16, library)", window=16),
                  store_variant("dicomnet", "dicomnet window", small, work,
                                "dicomnet storescu --max-ops 16 (whole process)", cli_window=16)]
            out.append(run_scenario(f"2. C-STORE {len(small)} small instances, one association",
                                    vs, reps))
        if want("3"):
            big = generate(data, "mr32", 4)
            vs = [store_variant(i, s, big, work, f"{i}") for i, s in
                  (("dicomnet", "dicomnet"), ("DCMTK", "DCMTK +B"), ("pynetdicom", "pynetdicom"))]
            out.append(run_scenario("3a. C-STORE 4 x 32 MB", vs, reps))
            if args.with_1g:
                huge = generate(data, "huge", 1)
                vs = [store_variant(i, s, huge, work, f"{i}") for i, s in
                      (("dicomnet", "dicomnet"), ("DCMTK", "DCMTK +B"))]
                out.append(run_scenario("3b. C-STORE 1 x 1 GiB", vs, 1))
                be = [generate_big_endian(data, huge[0])]
                vs = [store_variant(i, "DCMTK +xi", be, work, f"{i} storescu") for i in
                      ("dicomnet", "DCMTK")]
                out.append(run_scenario("3c. 1 GiB Explicit VR Big Endian -> storescp +xi "
                                        "(converted to Implicit VR Little Endian)", vs, 1))
        if want("4"):
            n = 5000 // scale
            vs = [echo_variant(i, n, False, work) for i in ("dicomnet", "DCMTK", "pynetdicom")]
            out.append(run_scenario(f"4a. {n} C-ECHO on one association", vs, reps))
            n = 500 // scale
            vs = [echo_variant(i, n, True, work) for i in ("dicomnet", "DCMTK", "pynetdicom")]
            out.append(run_scenario(f"4b. {n} associations of one C-ECHO", vs, reps))
        if want("5"):
            small = generate(data, "small10k", 10000 // scale)
            ctarc = generate(data, "ctarc", 1000 // scale)
            arc = ArchiveFixture(work, small, ctarc)
            out.append(f"Archive: {arc.count} instances stored by dicomnet storescu --parallel 2 "
                       f"--max-ops 16 into dicomnet qrscp in {arc.fill_seconds:.1f} s; "
                       f"{len(ctarc)} CT into DCMTK dcmqrscp by DCMTK storescu in "
                       f"{arc.dcmqr_fill_seconds:.1f} s.\n")
            out.append(run_scenario(f"5a. C-FIND, IMAGE level, {len(small)} matches",
                                    find_variants(arc, work), reps))
            ct = generate(data, "ct", 1000 // scale)
            out.append(run_scenario(f"5b. C-STORE {len(ct)} new CT into the archive",
                                    archive_store_variants(arc, ct, work), reps, warmup=True))
            out.append(run_scenario(f"5c. C-GET {len(ctarc)} CT from the archive",
                                    retrieve_variants(arc, work, move=False), reps))
            out.append(run_scenario(f"5d. C-MOVE {len(ctarc)} CT from the archive",
                                    retrieve_variants(arc, work, move=True), reps))
            out.append(run_scenario(f"5e. Storage commitment of {len(small)} instances",
                                    commitment_variants(arc), reps))
        if want("w"):
            out.append(run_scenario("w. Modality Worklist: 10 concurrent findscu -W, "
                                    f"{1000 // scale} items", mwl_variants(work, 1000 // scale),
                                    reps))  # fmt: skip
        if want("n"):
            cluster = nodes_bench.start_cluster()
            if cluster is None:
                out.append("### n. Archive nodes on PostgreSQL\n\nskipped: no PostgreSQL "
                           "(initdb) on this machine\n")  # fmt: skip
            else:
                try:
                    small = generate(data, "small10k", 10000 // scale)
                    vs = nodes_bench.variants(
                        small, work, cluster, dn=DN, dcmtk=dcmtk, dcmtk_env=DCMTK_ENV,
                        free_port=free_port, server=Server, count=count_dicom, result=Result,
                        variant=Variant)  # fmt: skip
                    out.append(run_scenario(f"n. {len(small)} small instances, 4 concurrent "
                                            "storescu: 2 archive nodes vs 1", vs, reps,
                                            warmup=True))  # fmt: skip
                finally:
                    cluster.stop()
        if want("6"):
            nassoc = 50
            ct6 = generate(data, "ct6", nassoc * (100 // scale))
            out.append(run_scenario(
                f"6. {nassoc} concurrent associations x {len(ct6) // nassoc} CT into the archive",
                concurrent_variants(ct6, work, nassoc), reps, warmup=True))
        if want("7"):
            ct = generate(data, "ct", 1000 // scale)
            vs = [store_variant("DCMTK", "dicomnet", ct, work, "DCMTK storescu -> dicomnet storescp"),
                  store_variant("dicomnet", "DCMTK +B", ct, work,
                                "dicomnet storescu -> DCMTK storescp +B"),
                  store_variant("DCMTK", "DCMTK +B", ct, work, "DCMTK storescu -> DCMTK storescp +B")]
            for v in vs[:2]:
                v.impl = "dicomnet"  # mixed pairs are compared against the pure DCMTK pair
            out.append(run_scenario("7. Mixed peers, 1000 CT", vs, reps))
        if want("8"):
            ct = generate(data, "ct", 1000 // scale)
            jls = generate_compressed(data, "ct-jls", ct, "1.2.840.10008.1.2.4.80")
            out.append(run_scenario(
                f"8a. {len(jls)} CT stored as JPEG-LS lossless -> storescp (uncompressed only)",
                decompress_variants(jls, work, "JPEG-LS", "dcmdjpls"), reps))
            j2k = generate_compressed(data, "ct-j2k", ct, "1.2.840.10008.1.2.4.90")
            out.append(run_scenario(
                f"8b. {len(j2k)} CT stored as JPEG 2000 lossless -> storescp (uncompressed only;"
                " DCMTK has no JPEG 2000 codec)",
                decompress_variants(j2k, work, "JPEG 2000", None), reps))
        if want("9"):
            ct = generate(data, "ct", 1000 // scale)
            disk = Path(tempfile.mkdtemp(prefix="dicomnet-bench-disk-", dir="/var/tmp"))
            try:
                for place, where in (("tmpfs", work), ("disk (/var/tmp)", disk)):
                    vs = durability_variants(ct, where)
                    out.append(run_scenario(
                        f"9. C-STORE {len(ct)} CT into an empty archive, {place}: durability",
                        vs, reps, warmup=True))
                    out.append(safe_fast_note(vs))
            finally:
                shutil.rmtree(disk, ignore_errors=True)
        if only and "m" in only:  # opt-in: minutes, and a PostgreSQL cluster of its own
            import scale  # lazy: the scale scenario's generator and client, only when asked

            out.append(scale.run(scale.Spec(100_000 if args.quick else 1_000_000),
                                 ["sqlite", "postgresql"], 20 if args.quick else 200,
                                 log=lambda s: print(s, file=sys.stderr, flush=True)))  # fmt: skip
        if only and "p" in only:  # opt-in: minutes of filling Orthanc and dcmqrscp
            import scale_peers  # lazy: the peers' C-FIND comparison, only when asked

            out.append(scale_peers.run_default(quick=args.quick,
                                               log=lambda s: print(s, file=sys.stderr, flush=True)))  # fmt: skip
        if want("s"):
            vs = [startup_variant("dicomnet", work), startup_variant("DCMTK", work)]
            out.append(run_scenario("Start-up: one whole echoscu process (seconds each)", vs, reps))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(out)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
