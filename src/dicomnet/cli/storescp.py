"""``dicomnet storescp PORT [-od DIR]``: a storage SCP that writes what it receives.

Theory of operation
-------------------
Accepts Verification and every Storage SOP class (PS3.4 Table B.5-1) with every transfer
syntax we know, uncompressed ones preferred (``+xa``, the default; ``+x=`` and the other ``+x?``
options narrow that as in DCMTK's storescp, :mod:`dicomnet.cli.syntaxes`). Each C-STORE data set is streamed, undecoded,
behind a PS3.10 file meta header into a temp file and renamed atomically to
``DIR/<SOPInstanceUID>.dcm`` (:class:`dicomnet.archive.scp.DirectoryStore`, which uses the
archive's FileStore writer): a SOP Instance UID that is not a valid UID is refused with a
failure status and never becomes a path; a duplicate replaces the earlier file; a full disk
answers 0xA700 and leaves no partial file. ``--ignore`` (DCMTK's and pynetdicom's) answers
Success and keeps nothing; ``--no-echo`` leaves Verification out. pynetdicom's storescp
spellings ``-ba``, ``-x=``/``-xe``/``-xb``/``-xi`` are accepted. Runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import sys

from dicomnet import events as evt
from dicomnet.cli.common import (
    ExitCode,
    configure_ae,
    ignore_store,
    port_number,
    run,
    serve_until_signal,
    server_ssl_context,
    setup_logging,
    tool_parser,
)
from dicomnet.cli.syntaxes import accepted_syntaxes, add_accept_options

SERVER_MAX_PDU = 1 << 20  # the Maximum Length we announce unless -pdu is given


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser("storescp", "Receive DICOM objects (C-STORE) into a directory.", scu=False,
                    prefix_chars="-+")  # fmt: skip
    p.add_argument("port", type=port_number)
    p.add_argument(
        "-od", "--output-directory", dest="output", default=".", metavar="DIR",
        help="where received files go (default: the current directory)",
    )
    p.add_argument("--bind", "-ba", "--bind-address", dest="bind", default="0.0.0.0",
                   metavar="ADDR", help="listen address (default: every address)")  # fmt: skip
    p.add_argument("--ignore", action="store_true",
                   help="answer C-STOREs with Success, store nothing")  # fmt: skip
    p.add_argument("--no-echo", action="store_true", help="refuse the Verification SOP class")
    p.add_argument(
        "--max-ops", type=int, default=1, metavar="N",
        help="grant requestors an asynchronous operations window of up to N outstanding "
        "requests (PS3.7 D.3.3.3; default 1: none; 0: unlimited)",
    )
    add_accept_options(p, "incoming")
    return p


def _serve(args: argparse.Namespace) -> int:
    # lazy: the archive's storage SCP and the server (asyncio) are not needed for --help or a
    # usage error
    from dicomnet.archive.scp import DirectoryStore, part10_spool_prefix, storage_ae
    from dicomnet.presentation import VERIFICATION
    from dicomnet.server import inline

    store = DirectoryStore(args.output)
    ae = storage_ae(args.aet, accepted_syntaxes(args.accept))
    if args.no_echo:
        ae.remove_supported_context(VERIFICATION)
    if args.max_pdu is None:
        # receive big data sets in few PDUs: 1 MiB P-DATA-TF PDUs (PS3.8 D.1) cost less per
        # byte than the library's 256 KiB default (measured: 500 CT ~20% faster)
        ae.maximum_pdu_size = SERVER_MAX_PDU
    configure_ae(ae, args)
    ae.spool_dir = store.files.tmp_dir
    ae.spool_prefix = part10_spool_prefix  # large data sets: renamed into place, not copied
    ae.maximum_operations_performed = max(0, args.max_ops)
    # Writing one received object to a local file is short: done on the event loop itself
    # (no thread-pool hop per C-STORE).
    handlers = [(evt.EVT_C_STORE, inline(ignore_store if args.ignore else store.handle_store))]
    serve_until_signal(
        ae,
        (args.bind, args.port),
        handlers,
        server_ssl_context(args),
        lambda a: f"storescp: AE {args.aet} listening on {a[0]}:{a[1]}, writing to {store.directory}",
        quiet=args.quiet,
    )
    if not args.quiet:
        print(f"storescp: {store.count} object(s) received")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _serve(args))
