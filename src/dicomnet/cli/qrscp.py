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

Durability (``--durability``): ``safe`` (the default) fsyncs each stored file and every new
directory and runs the index with ``synchronous=FULL`` before answering Success; ``fast``
trusts the page cache. The storage folder has one owner: a second qrscp on it is refused (lock
file). A clean stop leaves a marker so that the next start skips walking every file; after a
crash or power cut the start-up check verifies sizes and, for what was written since the last
clean stop, checksums, and moves damaged files to ``.quarantine``.

Several nodes (``--db postgresql://...``, optionally ``--node NAME``): any number of qrscp
processes, on one host or several, share one PostgreSQL index and one storage folder (a shared
file system mounted at the same path everywhere). Each node has its own spool, lock, markers,
audit log and lease (:mod:`dicomnet.archive.ownership`); any node stores, and finds and
retrieves what any other stored.

``--workers N`` (N > 1, Linux) serves from N processes: after the recovery the parent binds N
listening sockets to the same port with ``SO_REUSEPORT`` (the kernel spreads new connections
over them), forks one worker per socket and waits for SIGINT/SIGTERM, which it passes on. Each
worker runs its own event loop and handler pool on the shared file store and SQLite index (WAL:
cross-process writers queue on SQLite's lock, each instance being one short transaction); a
worker dies with the parent (``PR_SET_PDEATHSIG``), and the folder stays locked while any runs. Many
concurrent associations then get more than one process's share of the CPUs, as DCMTK's
``storescp --fork`` does; ``--max-associations`` applies per worker.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from dicomnet.cli import qrscp_workflow
from dicomnet.cli.common import (
    ExitCode,
    ae_title_arg,
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

if TYPE_CHECKING:
    from dicomnet.archive.access import PeerPolicy
    from dicomnet.archive.audit import AuditTrail
    from dicomnet.archive.metrics import Metrics, WorkerMetrics
    from dicomnet.archive.scp import Archive

LOG = logging.getLogger("dicomnet.qrscp")
SERVER_MAX_PDU = 1 << 20  # the Maximum Length we announce unless -pdu is given


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser(
        "qrscp",
        "The dicomnet archive: Storage and Query/Retrieve SCP on a file store + SQLite index.",
        scu=False,
        default_aet="DICOMNET",
    )
    p.add_argument("-c", "--config", metavar="FILE",
                   help="settings and known peers (TOML; see dicomnet.cli.qrscp_config; a "
                   "*.ini file is read as pynetdicom's qrscp configuration); options given on "
                   "the command line win")  # fmt: skip
    # pynetdicom's qrscp spellings of -aet, --bind, --db, --storage
    for option, dest in (("--ae-title", "aet"), ("--bind-address", "bind"),
                         ("--database-location", "db"), ("--instance-location", "storage")):
        p.add_argument(option, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                       type=ae_title_arg if dest == "aet" else str)
    p.add_argument("--port", type=port_number, default=11112, help="default: %(default)s")
    p.add_argument(
        "--bind", default="127.0.0.1", metavar="ADDR",
        help="listen address (default: %(default)s, this host only; any other address needs "
        "known peers in --config, or --allow-any)",
    )
    p.add_argument("--storage", default="archive", metavar="DIR", help="default: ./%(default)s")
    p.add_argument("--db", default=None, metavar="PATH|URI",
                   help="the index: a SQLite file (default: DIR/index.sqlite) or a PostgreSQL "
                   "database, postgresql://user@host/db (pip install 'dicomnet[postgresql]')")
    p.add_argument("--node", default=None, metavar="NAME",
                   help="this node's name when several qrscp share --storage (one path on "
                   "every host) and a PostgreSQL --db: its own spool, lock, audit log and "
                   "start-up check (default with a postgresql:// --db: HOSTNAME-PORT)")
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
        "--max-associations", type=int, default=256, metavar="N",
        help="refuse associations beyond N at once (default: %(default)s)",
    )
    p.add_argument(
        "--durability", choices=("safe", "fast"), default="safe",
        help="safe (default): every stored file and new directory is fsynced and the index "
        "commit is synchronous before the success response -- nothing acknowledged is lost to "
        "a power cut; fast: the page cache is trusted (a crash of the process loses nothing, a "
        "power cut may)",
    )
    data = p.add_argument_group("what is stored and how it is found")
    data.add_argument(
        "--overwrite", action="store_true",
        help="a second C-STORE of a stored SOP Instance UID replaces it (default: the first "
        "copy is kept, the second answered Success and logged)",
    )
    data.add_argument(
        "--study-conflict", choices=("reject", "accept"), default="reject",
        help="a study arriving under a second patient (Patient ID + Issuer): reject: refused "
        "with A778 (default); accept: kept beside the first",
    )
    data.add_argument(
        "--promiscuous", action="store_true",
        help="also accept unknown and private storage SOP classes (as storescp -pm)",
    )
    data.add_argument(
        "--strict-hierarchical", action="store_true",
        help="answer only hierarchical queries and retrieves (PS3.4 C.4.1.2.1) unless the "
        "peer negotiated relational ones; A900 otherwise (default: relational shapes answered)",
    )
    access = p.add_argument_group("access")
    access.add_argument(
        "--allow-any", action="store_true",
        help="admit callers that match no [[peer]] of --config (they may do everything)",
    )
    access.add_argument(
        "--no-called-aet-check", action="store_true",
        help="accept any called AE title (default: only ours, -aet, as dcmqrscp)",
    )
    access.add_argument(
        "--max-associations-per-peer", type=int, default=None, metavar="N",
        help="refuse a calling AE title's associations beyond N at once (2/3/2)",
    )
    audit = p.add_argument_group("audit and metrics")
    audit.add_argument(
        "--audit-log", default=None, metavar="FILE",
        help="JSON lines, one per association and operation (default: STORAGE/audit.jsonl; "
        "'none': off)",
    )
    audit.add_argument(
        "--audit-syslog", default=None, metavar="URL",
        help="also send DICOM audit messages (PS3.15 A.5) to udp|tcp|tls://HOST:PORT",
    )
    audit.add_argument(
        "--metrics", default=None, metavar="ADDR:PORT",
        help="serve Prometheus metrics on http://ADDR:PORT/metrics (prometheus-client)",
    )
    qrscp_workflow.add_options(p)
    p.add_argument(
        "--clean", action="store_true",
        help="delete every stored instance and its index entries (after a yes/no question "
        "on stdin), then exit; worklist, MPPS and UPS records stay (pynetdicom's qrscp option)",
    )
    p.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="serve from N processes sharing the port (SO_REUSEPORT; default 1). More than one "
        "helps many concurrent associations; --max-associations is per worker",
    )
    return p


def _node_name(args: argparse.Namespace) -> str | None:
    """The node name (see --node): given, or made from the host name and port when the index
    is a PostgreSQL database (which several nodes may share); None for a SQLite index."""
    from dicomnet.archive.backend import is_postgres  # lazy: the archive
    from dicomnet.archive.ownership import valid_node_name  # lazy: the archive

    shared = args.db is not None and is_postgres(args.db)
    if args.node is None:
        if not shared:
            return None
        host = socket.gethostname().split(".")[0] or "node"
        name = "".join(c if c.isalnum() or c in "-_" else "-" for c in host)[:56]
        return f"{name}-{args.port}"
    if not shared:
        fail("--node needs a PostgreSQL index (--db postgresql://...): a SQLite index "
             "belongs to one host", ExitCode.USAGE)  # fmt: skip
    try:
        return valid_node_name(args.node)
    except ValueError as exc:
        fail(f"--node: {exc}", ExitCode.USAGE)


def _serve(args: argparse.Namespace) -> int:
    # lazy: the archive (pydicom, sqlite3: ~250 ms) is not needed for --help or a usage error
    from dicomnet.archive.ownership import StorageInUseError, die_with_parent
    from dicomnet.archive.scp import Archive

    if args.workers < 1:
        fail("--workers must be at least 1", ExitCode.USAGE)
    args.node = _node_name(args)
    if args.clean:
        return _clean(args)
    _raise_fd_limit()
    try:
        if args.workers == 1:
            return _serve_one(args, None, owner=True)
        if not hasattr(socket, "SO_REUSEPORT") or not hasattr(os, "fork"):
            fail("--workers needs SO_REUSEPORT and fork (Linux)", ExitCode.USAGE)
        # The parent owns the folder (lock, start-up check, clean-stop marker) for as long as
        # any worker runs; the workers inherit the lock and die with the parent.
        archive = Archive(args.storage, args.db, ae_title=args.aet, durability=args.durability,
                          study_conflict=args.study_conflict, node=args.node)  # fmt: skip
        qrscp_workflow.prepare(args, archive)
    except (StorageInUseError, ConnectionError) as exc:  # in use; index database unreachable
        fail(str(exc), ExitCode.FAILURE)
    archive.index.close()  # no database connection crosses the fork
    clean = False
    summed: WorkerMetrics | None = None
    if args.metrics:  # the workers count, the parent serves their sum (after the forks)
        from dicomnet.archive.metrics import WorkerMetrics  # lazy: only with --metrics

        summed = WorkerMetrics(os.path.join(archive.state_dir, ".metrics"))
    try:
        socks = _reuseport_sockets(args.bind, args.port, args.workers)
        bound = socks[0].getsockname()
        stop = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        children: set[int] = set()
        parent = os.getpid()
        try:
            for i, sock in enumerate(socks):
                pid = os.fork()
                if pid == 0:  # the worker: serve on its own socket until SIGINT/SIGTERM
                    code = 1
                    try:
                        die_with_parent(parent)
                        for other in socks:
                            if other is not sock:
                                other.close()
                        args.quiet = args.quiet or i > 0  # one banner (worker 0's)
                        code = _serve_one(args, sock, owner=False)
                    except BaseException:  # pragma: no cover - reported by its logging
                        LOG.exception("qrscp worker %d failed", i)
                    finally:
                        os._exit(code)
                children.add(pid)
            for sock in socks:
                sock.close()  # the workers hold their own copies
            if summed is not None:
                _serve_metrics(summed, args.metrics)
            if not args.quiet:
                print(f"qrscp: {args.workers} workers on {bound[0]}:{bound[1]}", flush=True)
            code = _supervise(children, stop)
            clean = code == ExitCode.OK
            return code
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    finally:
        if summed is not None:
            summed.close()
        archive.close(clean=clean)


def _raise_fd_limit() -> None:
    """Each association is a socket: allow as many open files as the hard limit does (the
    usual soft limit of 1024 would cap --max-associations below what the operator asked)."""
    try:
        import resource  # lazy: POSIX only; elsewhere the limit is left alone
    except ImportError:  # pragma: no cover - not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 16 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError) as exc:  # pragma: no cover - a container's policy
            LOG.info("open-file limit stays %d: %s", soft, exc)


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


def _serve_one(args: argparse.Namespace, sock: socket.socket | None, *, owner: bool) -> int:
    # lazy: the archive (pydicom, sqlite3: ~250 ms) is not needed for --help or a usage error
    from dicomnet.archive.backend import printable_location
    from dicomnet.archive.ownership import StorageInUseError
    from dicomnet.archive.scp import (
        Archive,
        archive_ae,
        part10_spool_prefix,
        storage_transfer_syntaxes,
    )

    destinations: dict[str, tuple[str, int]] = {}
    for peer in args.peers:  # [[peer]] with a port: also a C-MOVE destination
        if peer.destination is not None:
            destinations[peer.ae_title] = peer.destination
    destinations.update({aet: (host, port) for aet, host, port in args.destination})
    try:
        archive = Archive(
            args.storage, args.db, destinations=destinations, ae_title=args.aet,
            recover=owner, owner=owner, durability=args.durability,
            study_conflict=args.study_conflict, overwrite=args.overwrite,
            strict_hierarchical=args.strict_hierarchical, node=args.node,
        )  # fmt: skip
    except (StorageInUseError, ConnectionError) as exc:  # in use; index database unreachable
        fail(str(exc), ExitCode.FAILURE)
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
        ae.access = _access_policy(args)
        if args.promiscuous:
            ae.promiscuous_syntaxes = storage_transfer_syntaxes()
        audit, metrics = _monitors(args, archive, owner)
        ae.monitors = [m for m in (audit, metrics) if m is not None]
        workflow = qrscp_workflow.start(args, archive, ae)

        def banner(addr: tuple[str, int]) -> str:
            lines = [
                f"qrscp: AE {args.aet} listening on {addr[0]}:{addr[1]}",
                f"qrscp: storage {archive.files.root}, index {printable_location(archive.db_path)}"
                + (f", node {archive.node}" if archive.node else ""),
            ]
            for aet, (host, port) in sorted(destinations.items()):
                lines.append(f"qrscp: C-MOVE destination {aet} = {host}:{port}")
            lines.extend(workflow.banner)
            return "\n".join(lines)

        if audit is not None:
            audit.application(started=True)
        try:
            serve_until_signal(
                ae,
                (args.bind, args.port),
                qrscp_workflow.handlers(archive.handlers(), workflow.handlers),
                server_ssl_context(args),
                banner,
                quiet=args.quiet,
                sock=sock,
            )
        finally:
            if audit is not None:
                audit.application(started=False)
                audit.close()
            if metrics is not None:
                metrics.close()
            workflow.close()
    finally:
        archive.close()
    return ExitCode.OK


def _access_policy(args: argparse.Namespace) -> PeerPolicy:
    """Who may connect and do what (:mod:`dicomnet.archive.access`): the peers of --config;
    with none, anyone on a loopback-only archive (the embedded default) or with --allow-any,
    and nobody else: an archive listening beyond this host must say whom it serves."""
    from dicomnet.archive.access import PeerPolicy  # lazy: the archive, see _serve_one

    peers = list(args.peers)
    try:
        loopback = ipaddress.ip_address(args.bind).is_loopback
    except ValueError:
        loopback = args.bind == "localhost"
    if not peers and not args.allow_any and not loopback:
        fail(f"qrscp listens on {args.bind}: name the peers it serves ([[peer]] in --config) "
             "or give --allow-any", ExitCode.USAGE)  # fmt: skip
    return PeerPolicy(args.aet, peers, check_called=not args.no_called_aet_check,
                      allow_any=args.allow_any or not peers,
                      max_per_ae=args.max_associations_per_peer)  # fmt: skip


def _monitors(args: argparse.Namespace, archive: Archive,
              owner: bool) -> tuple[AuditTrail | None, Metrics | None]:  # fmt: skip
    """(audit trail, metrics) as the options ask; the audit log is on by default."""
    from dicomnet.archive.audit import AuditTrail, SyslogSender  # lazy: the archive

    audit = None
    path = args.audit_log
    if path is None:
        path = os.path.join(archive.state_dir, "audit.jsonl")
    if path != "none" or args.audit_syslog:
        try:
            syslog = SyslogSender(args.audit_syslog) if args.audit_syslog else None
            audit = AuditTrail(None if path == "none" else path, syslog=syslog,
                               ae_title=args.aet)  # fmt: skip
        except (OSError, ValueError) as exc:
            fail(f"audit: {exc}", ExitCode.USAGE)
    metrics = None
    if args.metrics:
        from dicomnet.archive.metrics import Metrics  # lazy: only with --metrics

        try:
            metrics = Metrics()
        except RuntimeError as exc:
            fail(f"--metrics {args.metrics}: {exc}", ExitCode.USAGE)
        if owner:  # one process: it serves its own (workers: the parent serves their sum)
            _serve_metrics(metrics, args.metrics)
    return audit, metrics


def _serve_metrics(metrics: Metrics | WorkerMetrics, where: str) -> None:
    host, _, port = where.rpartition(":")
    try:
        bound = metrics.serve(host or "127.0.0.1", int(port))
    except (RuntimeError, OSError, ValueError) as exc:
        fail(f"--metrics {where}: {exc}", ExitCode.USAGE)
    LOG.info("metrics on http://%s:%d/metrics", *bound)


def _clean(args: argparse.Namespace) -> int:
    """``--clean``: asked first, as pynetdicom's qrscp asks (anything but "yes" exits, 0);
    the folder is taken as a server takes it, so a running qrscp on it is refused."""
    try:
        answer = input("This deletes every stored instance and its index entries. "
                       "Are you sure you wish to continue? [yes/no]: ")  # fmt: skip
    except EOFError:
        answer = ""
    if answer.strip() != "yes":
        return ExitCode.OK
    # lazy: the archive (pydicom, sqlite3) only once the question is answered
    from dicomnet.archive.ownership import StorageInUseError
    from dicomnet.archive.scp import Archive

    try:
        archive = Archive(args.storage, args.db, ae_title=args.aet, durability=args.durability,
                          node=args.node)  # fmt: skip
    except (StorageInUseError, ConnectionError) as exc:
        fail(str(exc), ExitCode.FAILURE)
    try:
        removed, stuck = archive.clean()
    finally:
        archive.close()
    print(f"qrscp: {removed} instance(s) removed from {args.storage}"
          + (f"; {stuck} file(s) could not be deleted" if stuck else ""), flush=True)  # fmt: skip
    return ExitCode.FAILURE if stuck else ExitCode.OK


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, on top of ``--config``'s settings when one is given."""
    # lazy: only with --config; reading it imports the access rules (asyncio, ~40 ms)
    from dicomnet.cli.qrscp_config import load

    parser = build_parser()
    args = parser.parse_args(argv)
    args.peers = []
    if args.config:
        try:
            config_argv, peers = load(args.config, parser)
        except ValueError as exc:
            parser.error(str(exc))
        args = parser.parse_args(config_argv + argv)
        args.peers = peers
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _serve(args))
