"""Benchmark scenario ``n``: storing through two archive nodes on one PostgreSQL index vs one.

10,000 small instances are split into four shares; four DCMTK ``storescu`` processes start at
once and store their share into ``dicomnet qrscp --db postgresql://...``: all four into one
node, or two into each of two nodes (``--node a`` / ``--node b``, one storage folder, one
database). The same load into one qrscp on its embedded SQLite index, and into DCMTK's
``storescp +B --fork``, are the references. The time runs from the first start to the last
exit; each repetition gets a fresh storage folder and a fresh database, and checks that every
instance arrived (files on disk; rows in the index).

PostgreSQL comes from ``tests/pg_cluster.py`` (a throwaway cluster as the ``postgres`` user,
``fsync=off``: the index's own cost, not the disk's); without ``initdb`` the scenario is skipped.
Nodes run ``--durability fast`` here, as does the SQLite reference: the comparison is of the
index, not of fsync.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHARES = 4


def start_cluster() -> Any:
    """A throwaway PostgreSQL cluster (tests/pg_cluster.py), or None."""
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        from tests import pg_cluster
    except ImportError:
        return None
    return pg_cluster.start()


def variants(files: list[Path], work: Path, cluster: Any, *, dn: list[str],
             dcmtk: Callable[[str], str], dcmtk_env: dict[str, str], free_port: Callable[[], int],
             server: Callable[..., Any], count: Callable[[Path], int],
             result: Callable[..., Any], variant: Callable[..., Any]) -> list[Any]:  # fmt: skip
    """The scenario's variants (see the module docstring); the other arguments are bench/run's
    harness (its Server, Result, Variant, tools and counters)."""
    shares = [files[i::SHARES] for i in range(SHARES)]

    def run_with(kind: str) -> Callable[[], Any]:
        def run() -> Any:
            storage = Path(tempfile.mkdtemp(dir=work, prefix="arcn-"))
            db = cluster.database() if kind.startswith("pg") else None
            nnodes = 2 if kind == "pg2" else 1
            ports = [free_port() for _ in range(nnodes)]
            servers = []
            try:
                for k, port in enumerate(ports):
                    if kind == "dcmtk":
                        argv = [dcmtk("storescp"), "+B", "--fork", "-od", str(storage),
                                str(port)]  # fmt: skip
                        servers.append(server(argv, port, dcmtk_env))
                        continue
                    argv = [*dn, "qrscp", "--port", str(port), "--bind", "127.0.0.1",
                            "--storage", str(storage), "-aet", "DICOMNET", "-q",
                            "--durability", "fast", "--audit-log", "none"]  # fmt: skip
                    if db is not None:
                        argv += ["--db", db, "--node", f"n{k}"]
                    servers.append(server(argv, port))
                aec = "ANY-SCP" if kind == "dcmtk" else "DICOMNET"
                t0 = time.perf_counter()
                procs = [subprocess.Popen([dcmtk("storescu"), "-aec", aec, "127.0.0.1",
                                           str(ports[i % nnodes]), *map(str, share)],
                                          env=dcmtk_env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                         for i, share in enumerate(shares)]  # fmt: skip
                rcs = [p.wait() for p in procs]
                seconds = time.perf_counter() - t0
            finally:
                srss = max((s.stop() for s in servers), default=0)
            stored = count(storage)
            indexed = _indexed(db) if db is not None else stored
            shutil.rmtree(storage, ignore_errors=True)
            ok = rcs == [0] * SHARES and stored == indexed == len(files)
            note = "" if ok else f"rc={rcs} files={stored} indexed={indexed}"
            return result(seconds, 0, srss, ok, note or f"{len(files) / seconds:.0f} inst/s")

        return run

    n = len(files)
    return [
        variant("dicomnet", f"{SHARES} x storescu -> 1 qrscp node, PostgreSQL ({n})",
                run_with("pg1")),
        variant("dicomnet", f"{SHARES} x storescu -> 2 qrscp nodes, one PostgreSQL ({n})",
                run_with("pg2")),
        variant("dicomnet", f"{SHARES} x storescu -> 1 qrscp, SQLite ({n})", run_with("sqlite")),
        variant("DCMTK", f"{SHARES} x storescu -> DCMTK storescp +B --fork ({n})",
                run_with("dcmtk")),
    ]  # fmt: skip


def _indexed(db: str) -> int:
    import psycopg

    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT COUNT(*) FROM instance").fetchone()
    return int(row[0]) if row else 0
