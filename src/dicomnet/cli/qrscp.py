"""``dicomnet qrscp``: the embedded archive (Storage + Query/Retrieve SCP).

Theory of operation
-------------------
Opens (creating when needed) the file store ``--storage`` (default ``./archive``) and its SQLite
index ``--db`` (default inside the storage folder), runs the start-up recovery (leftover temp
files removed, index and files brought back in step), and serves
:class:`dicomnet.archive.scp.Archive`'s handlers: C-ECHO, C-STORE, C-FIND (Patient Root and
Study Root, PATIENT/STUDY/SERIES/IMAGE), C-GET and C-MOVE (destinations from
``--destination AET=HOST:PORT``, repeatable). Prints where it listens, then serves many
associations at once until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import sys

from dicomnet.cli.common import (
    ExitCode,
    configure_ae,
    parse_destination,
    port_number,
    run,
    serve_until_signal,
    server_ssl_context,
    setup_logging,
    tool_parser,
)

SERVER_MAX_PDU = 1 << 20  # the Maximum Length we announce unless -pdu is given


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser(
        "qrscp",
        "The dicomnet archive: Storage and Query/Retrieve SCP on a file store + SQLite index.",
        scu=False,
        default_aet="DICOMNET",
    )
    p.add_argument("--port", type=port_number, default=11112, help="default: %(default)s")
    p.add_argument("--bind", default="0.0.0.0", metavar="ADDR", help="default: %(default)s")
    p.add_argument("--storage", default="archive", metavar="DIR", help="default: ./%(default)s")
    p.add_argument("--db", default=None, metavar="PATH", help="default: DIR/index.sqlite")
    p.add_argument(
        "--destination",
        action="append",
        type=parse_destination,
        default=[],
        metavar="AET=HOST:PORT",
        help="a C-MOVE destination (repeatable)",
    )
    p.add_argument(
        "--max-ops", type=int, default=1, metavar="N",
        help="grant requestors an asynchronous operations window of up to N outstanding "
        "requests (PS3.7 D.3.3.3; default 1: none; 0: unlimited)",
    )
    p.add_argument(
        "--max-associations", type=int, default=64, metavar="N",
        help="refuse associations beyond N at once (default: %(default)s)",
    )
    return p


def _serve(args: argparse.Namespace) -> int:
    from dicomnet.archive.scp import Archive, archive_ae, part10_spool_prefix

    destinations = {aet: (host, port) for aet, host, port in args.destination}
    archive = Archive(args.storage, args.db, destinations=destinations, ae_title=args.aet)
    try:
        ae = archive_ae(args.aet)
        if args.max_pdu is None:
            # receive big data sets in few PDUs: 1 MiB P-DATA-TF PDUs (PS3.8 D.1) cost less per
            # byte than the library's 256 KiB default (measured: 500 CT ~20% faster)
            ae.maximum_pdu_size = SERVER_MAX_PDU
        configure_ae(ae, args)
        ae.spool_dir = archive.files.tmp_dir  # cleaned by the start-up recovery
        ae.spool_prefix = part10_spool_prefix  # large data sets: renamed into place, not copied
        ae.maximum_operations_performed = max(0, args.max_ops)
        if args.max_associations is not None:
            ae.maximum_associations = args.max_associations

        def banner(addr: tuple[str, int]) -> str:
            lines = [
                f"qrscp: AE {args.aet} listening on {addr[0]}:{addr[1]}",
                f"qrscp: storage {archive.files.root}, index {archive.db_path}",
            ]
            for aet, (host, port) in sorted(destinations.items()):
                lines.append(f"qrscp: C-MOVE destination {aet} = {host}:{port}")
            return "\n".join(lines)

        serve_until_signal(
            ae,
            (args.bind, args.port),
            archive.handlers(),
            server_ssl_context(args),
            banner,
            quiet=args.quiet,
        )
    finally:
        archive.close()
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _serve(args))
