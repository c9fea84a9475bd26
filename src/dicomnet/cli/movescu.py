"""``dicomnet movescu HOST PORT (-P|-S) -aem DEST -k ... [--store-port N]``: C-MOVE.

Theory of operation
-------------------
C-MOVE (PS3.4 C.4.2) asks the peer to send the selected instances to the Move Destination AE
(``-aem``, default: our own AE title) over a new association that *the peer* opens; the peer
must know that AE title's address. With ``--store-port N`` this tool also runs a storage SCP
on port N (AE title ``-aet``, files written like storescp does into ``-od``) for the duration of
the move, so it can move to itself (pynetdicom's spelling: ``--store``, on port 11113 unless
``--store-port`` says otherwise, with ``--store-aet`` naming the SCP and the destination;
``--ignore`` answers its sub-operations without keeping the objects). Without a model option the
model is Patient Root, as in DCMTK and pynetdicom. Pending responses carry the sub-operation counts; the final
one decides the exit status: Success -> 0, anything else -> 1 with the counts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.cli.common import (
    associate,
    configure_ae,
    ignore_store,
    port_number,
    run,
    server_ssl_context,
    setup_logging,
    tool_parser,
)
from dicomnet.cli.findscu import (
    MODELS,
    add_model_args,
    extended_negotiation,
    identifier_from_args,
)
from dicomnet.cli.getscu import finish_retrieve, run_retrieve
from dicomnet.cli.syntaxes import accepted_syntaxes, add_accept_options

if TYPE_CHECKING:
    from dicomnet.archive.receive import DirectoryStore
    from dicomnet.server import Server

LOG = logging.getLogger("dicomnet.cli.movescu")
DEFAULT_STORE_PORT = 11113  # pynetdicom's movescu --store


def _start_store_server(args: argparse.Namespace) -> tuple[Server, DirectoryStore | None]:
    # lazy: the archive's storage SCP, only with --store-port
    from dicomnet.archive.scp import DirectoryStore, storage_ae

    store = None if args.ignore else DirectoryStore(args.output)
    ae = storage_ae(args.store_aet or args.aet, accepted_syntaxes(args.accept))
    configure_ae(ae, args)
    server: Server = ae.start_server(
        (args.store_bind, args.store_port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, ignore_store if store is None else store.handle_store)],
        ssl_context=server_ssl_context(args) if args.tls and args.tls_cert else None,
    )
    LOG.info("storage SCP %s listening on port %d", ae.ae_title, args.store_port)
    return server, store


def _move(args: argparse.Namespace) -> int:
    identifier = identifier_from_args(args)
    sop_class = MODELS[args.model]["move"]
    dest = args.aem or args.store_aet or args.aet
    if args.store and args.store_port is None:
        args.store_port = DEFAULT_STORE_PORT
    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    ae.add_requested_context(sop_class)
    server: Server | None = None
    store: DirectoryStore | None = None
    if args.store_port is not None:
        server, store = _start_store_server(args)
    try:
        assoc = associate(ae, args, args.host, args.port,
                          ext_neg=extended_negotiation(args, sop_class))  # fmt: skip
        try:
            responses = assoc.send_c_move(identifier, dest, sop_class)
            final, code = run_retrieve(assoc, responses, "C-MOVE", args.quiet)
            assoc.release()
        except BaseException:
            if assoc.is_established:
                assoc.abort()
            raise
    finally:
        if server is not None:
            server.shutdown()
    if store is not None:
        LOG.info("%d object(s) written to %s", store.count, store.directory)
    return finish_retrieve("C-MOVE", final, code)


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser("movescu", "Move DICOM objects to an AE with C-MOVE.", prefix_chars="-+")
    p.add_argument("host")
    p.add_argument("port", type=port_number)
    add_model_args(p, worklist=False)
    p.add_argument(
        "-aem", "--move-aet", dest="aem", default=None, metavar="AET",
        help="Move Destination AE title (default: our -aet)",
    )
    p.add_argument(
        "--store-port", type=port_number, default=None, metavar="N",
        help="also run a storage SCP on port N to receive the moved objects",
    )
    p.add_argument("--store-bind", default="0.0.0.0", metavar="ADDR", help=argparse.SUPPRESS)
    # pynetdicom's movescu spellings: --store starts the storage SCP (on --store-port, default
    # 11113) under --store-aet
    p.add_argument("--store", action="store_true",
                   help=f"run the storage SCP (on --store-port, default {DEFAULT_STORE_PORT})")
    p.add_argument("--store-aet", default=None, metavar="AET",
                   help="the storage SCP's AE title, and the default Move Destination "
                   "(default: our -aet)")  # fmt: skip
    p.add_argument("--ignore", action="store_true",
                   help="answer the storage sub-operations with Success, store nothing")
    p.add_argument(
        "-od", "--output-directory", dest="output", default=".", metavar="DIR",
        help="with --store-port: where received files go (default: the current directory)",
    )
    add_accept_options(p, "incoming, with --store-port")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _move(args))
