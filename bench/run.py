#!/usr/bin/env python3
"""Side-by-side benchmark: dicomnet vs DCMTK vs pynetdicom, in one run, over loopback.

    bench/run [--quick] [--reps N] [--only 1,2,4] [--with-1g] [--out FILE]

Theory of operation
-------------------
Each scenario is a list of *variants* (one per implementation). For every repetition the variants
run one after another (alternating, so machine noise hits all of them alike); the table reports
medians and the ratios dicomnet/DCMTK and dicomnet/pynetdicom (below 1.0 = dicomnet is faster).
Servers run as separate processes, started fresh per repetition; clients too. Peak RSS comes from
``os.wait4`` of each process. DCMTK always runs with TCP_NODELAY=1 in its environment (without
it, Nagle's algorithm dominates its small-message timings). Data is generated once into a
RAM-backed directory (/dev/shm) and reused.

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

from gen_data import generate, ram_dir  # noqa: E402

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
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
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

DN = [PY, "-m", "dicomnet.cli.main"]


def scp_argv(impl: str, port: int, outdir: Path) -> tuple[list[str], dict[str, str] | None]:
    if impl == "DCMTK":
        return [dcmtk("storescp"), "-od", str(outdir), str(port)], DCMTK_ENV
    if impl == "DCMTK +B":
        return [dcmtk("storescp"), "+B", "-od", str(outdir), str(port)], DCMTK_ENV
    if impl == "pynetdicom":
        return [PY, str(PEERS / "pynd.py"), "scp", str(port), str(outdir)], None
    if impl == "dicomnet":
        return [*DN, "storescp", str(port), "-od", str(outdir)], None
    raise ValueError(impl)


def store_argv(impl: str, port: int, files: list[Path], listfile: Path, inproc: bool = False,
               window: int = 0) -> tuple[list[str], dict[str, str] | None]:
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
        return [*DN, "storescu", "127.0.0.1", str(port), *map(str, files), "-q"], None
    raise ValueError(impl)


# --------------------------------------------------------------------------- scenario builders


def store_variant(impl: str, scp_impl: str, files: list[Path], work: Path, label: str,
                  inproc: bool = False, window: int = 0) -> Variant:
    listfile = work / f"list-{len(files)}-{files[0].parent.name}.txt"
    listfile.write_text("\n".join(map(str, files)))

    def run() -> Result:
        port = free_port()
        outdir = Path(tempfile.mkdtemp(dir=work))
        argv, env = scp_argv(scp_impl, port, outdir)
        server = Server(argv, port, env)
        try:
            cargv, cenv = store_argv(impl, port, files, listfile, inproc, window)
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


# --------------------------------------------------------------------------- table


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
        lines.append(f"| {v.label} | {m:.3f} | {rd} | {rp} | {fmt_rss(crss)} | {fmt_rss(srss)} "
                     f"| {'yes' if ok else 'NO ' + notes} |")
    return "\n".join(lines) + "\n"


def run_scenario(title: str, variants: list[Variant], reps: int) -> str:
    print(f"-- {title}", file=sys.stderr, flush=True)
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
    ap.add_argument("--only", default="", help="comma-separated scenario numbers (1-7, s)")
    ap.add_argument("--with-1g", action="store_true", help="include the 1 GiB instance")
    ap.add_argument("--out", default="", help="also write the markdown table to this file")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    reps = 1 if args.quick else args.reps
    only = set(filter(None, args.only.split(",")))

    def want(s: str) -> bool:
        return not only or s in only

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
                  store_variant("dicomnet", "dicomnet", small, work,
                                "dicomnet (async window 16, library)", window=16)]
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
        if want("4"):
            n = 5000 // scale
            vs = [echo_variant(i, n, False, work) for i in ("dicomnet", "DCMTK", "pynetdicom")]
            out.append(run_scenario(f"4a. {n} C-ECHO on one association", vs, reps))
            n = 500 // scale
            vs = [echo_variant(i, n, True, work) for i in ("dicomnet", "DCMTK", "pynetdicom")]
            out.append(run_scenario(f"4b. {n} associations of one C-ECHO", vs, reps))
        if want("7"):
            ct = generate(data, "ct", 1000 // scale)
            vs = [store_variant("DCMTK", "dicomnet", ct, work, "DCMTK storescu -> dicomnet storescp"),
                  store_variant("dicomnet", "DCMTK +B", ct, work,
                                "dicomnet storescu -> DCMTK storescp +B"),
                  store_variant("DCMTK", "DCMTK +B", ct, work, "DCMTK storescu -> DCMTK storescp +B")]
            for v in vs[:2]:
                v.impl = "dicomnet"  # mixed pairs are compared against the pure DCMTK pair
            out.append(run_scenario("7. Mixed peers, 1000 CT", vs, reps))
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
