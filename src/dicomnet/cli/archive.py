"""``dicomnet archive migrate --from SRC --to DST [--incremental]``: tools for an archive's
storage folder and index; ``migrate`` moves the index to PostgreSQL (or back to SQLite).

Theory of operation
-------------------
The work is :func:`dicomnet.archive.migrate.migrate` (its docstring says how the copy and the
catch-up pass are made, the workflow state's too); this module parses the command line, draws
the progress (on a terminal only), prints the per-table report (the workflow tables' after the
index's, or why there were none) and maps every failure to one line on stderr with
exit status 1: a missing source or one that is not an index, a database that cannot be reached,
a destination that is not empty without ``--incremental``, a schema version mismatch, row
counts that differ at the end. The archive modules are imported only once the command line is
parsed: ``--help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from dicomnet.cli.common import ExitCode, fail, positive_int, run

_MIGRATE_HELP = """\
Copy an archive's index (patients, studies, series, instances, non-patient objects) into
another database, keeping every key, and verify that each table has as many rows on both
sides. The source is opened as an index first: an index of an earlier release (schema version
1) is upgraded in place on the way. The stored files do not move: the index holds absolute
paths into the storage folder, and the new index serves the same folder.
The workflow state moves with the index: STORAGE/workflow.sqlite beside a SQLite index (MPPS
steps, the MPPS forwarding outbox, storage commitments) goes into tables of its own in the
PostgreSQL database, where qrscp --db keeps it (back to SQLite: DIR/workflow.sqlite beside
the new DIR/index.sqlite); a folder without one says "no workflow state to move".

Switching a running archive to PostgreSQL, down only for the switch:
  1. dicomnet archive migrate --from STORAGE --to postgresql://USER@HOST/DB
     while the archive keeps serving (the source is read in one snapshot);
  2. stop the archive (qrscp);
  3. dicomnet archive migrate --from STORAGE --to postgresql://USER@HOST/DB --incremental
     (the catch-up: what was stored, re-stored or removed, and the MPPS and commitment
     state that changed, since step 1; seconds);
  4. start qrscp --storage STORAGE --db postgresql://USER@HOST/DB.
Without --incremental the destination must be empty (workflow tables included).

exit status: 0 copied and verified; 1 failed (one line on stderr says why); 2 usage."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dicomnet archive",
        description="Tools for an archive's storage folder and index.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    m = sub.add_parser(
        "migrate",
        help="copy the index and workflow state to PostgreSQL (or another SQLite file)",
        description=_MIGRATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument(
        "--from", dest="source", required=True, metavar="SRC",
        help="the index: a storage folder (its index.sqlite), sqlite:PATH, a path to the "
        "index file (workflow.sqlite beside it moves too), or a postgresql:// URI",
    )  # fmt: skip
    m.add_argument(
        "--to", dest="destination", required=True, metavar="DST",
        help="the new index: postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (libpq URI), or "
        "sqlite:PATH",
    )  # fmt: skip
    m.add_argument(
        "--incremental", action="store_true",
        help="the catch-up pass after an earlier migrate into DST: copy what was added or "
        "changed since, delete what was removed, index and workflow state (run it with the "
        "archive stopped)",
    )  # fmt: skip
    m.add_argument(
        "--batch", type=positive_int, default=None, metavar="N",
        help="rows per statement (default 5000)",
    )  # fmt: skip
    m.add_argument("-q", "--quiet", action="store_true", help="no report, errors only")
    return p


class _TableProgress:
    """``table: done/total`` redrawn on one terminal line (at most ten times a second)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last = 0.0

    def __call__(self, table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        self.stream.write(f"\r{table}: {done}/{total} rows\x1b[K")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _migrate(args: argparse.Namespace) -> int:
    # lazy: the archive (pydicom, sqlite3, psycopg) is not needed for --help or a usage error
    from dicomnet.archive.migrate import BATCH_ROWS, MigrationError, migrate

    stream = sys.stderr
    progress = None if args.quiet or not stream.isatty() else _TableProgress(stream)
    try:
        report = migrate(
            args.source, args.destination, incremental=args.incremental, progress=progress,
            batch=args.batch or BATCH_ROWS,
        )  # fmt: skip
    except MigrationError as exc:
        fail(str(exc), ExitCode.FAILURE)
    except ConnectionError as exc:  # a database that cannot be reached (libpq's reason)
        fail(str(exc), ExitCode.FAILURE)
    if not args.quiet:
        kind = "catch-up" if args.incremental else "copy"
        upgraded = " (upgraded from schema version 1)" if report.source_version == 1 else ""
        print(f"{kind}: {report.source}{upgraded} -> {report.destination}")
        for line in report.lines():
            print(line)
        print(f"verified: row counts equal in every table ({report.seconds:.2f} s)")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run(lambda: _migrate(args))
