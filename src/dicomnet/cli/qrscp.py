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

``--workers N`` (N > 1, Linux) serves from N processes: after the recovery the parent binds N
listening sockets to the same port with ``SO_REUSEPORT`` (the kernel spreads new connections
over them), forks one worker per socket and waits for SIGINT/SIGTERM, which it passes on. Each
worker runs its own event loop and handler pool on the shared file store and SQLite index (WAL:
cross-process writers queue on SQLite's lock, each instance being one short transaction). Many
concurrent associations then get more than one process's share of the CPUs, as DCMTK's
``storescp --fork`` does; ``--max-associations`` applies per worker.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys

from dicomnet.cli.common import (
    ExitCode,
    configure_ae,
    fail,
    parse_destination,
    port_number,
    run,
    serve_until_signal,
    server_ssl_context,
    setup_logging,
    tool_parser,
)

LOG = logging.getLogger("dicomnet.qrscp")
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
    p.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="serve from N processes sharing the port (SO_REUSEPORT; default 1). More than one "
        "helps many concurrent associations; --max-associations is per worker",
    )
    return p


def _serve(args: argparse.Namespace) -> int:
    from dicomnet.archive.scp import Archive

    if args.workers < 1:
        fail("--workers must be at least 1", ExitCode.USAGE)
    if args.workers == 1:
        return _serve_one(args, None, recover=True)
    if not hasattr(socket, "SO_REUSEPORT") or not hasattr(os, "fork"):
        fail("--workers needs SO_REUSEPORT and fork (Linux)", ExitCode.USAGE)
    # Recovery once, in the parent, before any worker serves.
    Archive(args.storage, args.db, ae_title=args.aet).close()
    socks = _reuseport_sockets(args.bind, args.port, args.workers)
    bound = socks[0].getsockname()
    stop = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    children: set[int] = set()
    try:
        for i, sock in enumerate(socks):
            pid = os.fork()
            if pid == 0:  # the worker: serve on its own socket until SIGINT/SIGTERM
                code = 1
                try:
                    for other in socks:
                        if other is not sock:
                            other.close()
                    args.quiet = args.quiet or i > 0  # one banner (worker 0's)
                    code = _serve_one(args, sock, recover=False)
                except BaseException:  # pragma: no cover - reported by the worker's logging
                    LOG.exception("qrscp worker %d failed", i)
                finally:
                    os._exit(code)
            children.add(pid)
        for sock in socks:
            sock.close()  # the workers hold their own copies
        if not args.quiet:
            print(f"qrscp: {args.workers} workers on {bound[0]}:{bound[1]}", flush=True)
        return _supervise(children, stop)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _reuseport_sockets(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` listening TCP sockets on one port (the first resolves port 0), SO_REUSEPORT."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(128)
            sock.setblocking(False)
    except OSError as exc:
        for sock in socks:
            sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", ExitCode.CONNECTION)
    return socks


def _supervise(children: set[int], stop: set[signal.Signals]) -> int:
    """Wait for SIGINT/SIGTERM (pass it on to every worker) or a worker's death (stop the
    others): every worker is reaped before returning."""
    code = ExitCode.OK
    while children:
        sig = signal.sigwait(stop)
        if sig == signal.SIGCHLD:
            died = _reap(children)
            if died and children:
                LOG.error("qrscp: a worker exited; stopping the others")
                code = ExitCode.FAILURE
                _signal_all(children, signal.SIGTERM)
            continue
        _signal_all(children, signal.SIGTERM)
        for pid in list(children):
            os.waitpid(pid, 0)
            children.discard(pid)
    return int(code)


def _reap(children: set[int]) -> bool:
    died = False
    for pid in list(children):
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            children.discard(pid)
            died = True
    return died


def _signal_all(children: set[int], sig: signal.Signals) -> None:
    for pid in children:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _serve_one(args: argparse.Namespace, sock: socket.socket | None, *, recover: bool) -> int:
    from dicomnet.archive.scp import Archive, archive_ae, part10_spool_prefix

    destinations = {aet: (host, port) for aet, host, port in args.destination}
    archive = Archive(
        args.storage, args.db, destinations=destinations, ae_title=args.aet, recover=recover
    )
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

        extra = {} if sock is None else {"sock": sock}
        serve_until_signal(
            ae,
            (args.bind, args.port),
            archive.handlers(),
            server_ssl_context(args),
            banner,
            quiet=args.quiet,
            **extra,
        )
    finally:
        archive.close()
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _serve(args))
