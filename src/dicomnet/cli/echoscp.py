"""``dicomnet echoscp PORT``: answer C-ECHO, and nothing else.

Theory of operation
-------------------
A server that accepts the Verification SOP Class (PS3.4 Annex A, UID 1.2.840.10008.1.1) and
answers every C-ECHO-RQ (PS3.7 section 9.1.5) with Success (0x0000); every other abstract
syntax is rejected in negotiation (result 3, abstract syntax not supported, PS3.8 Table 9-18).
It is what a network check needs at the far end, and the program pynetdicom ships under this
name, with its options: ``-ba`` (listen address), ``-x=``/``-xe``/``-xb``/``-xi`` (which
uncompressed transfer syntaxes are accepted; default: Explicit and Implicit VR Little Endian,
Deflated and Explicit VR Big Endian -- the four pynetdicom accepts). Each echo is logged with
``-v``. The handler runs on the server's event loop (a C-ECHO needs no thread). Runs until
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from dicomnet.cli.common import (
    ExitCode,
    configure_ae,
    port_number,
    run,
    serve_until_signal,
    server_ssl_context,
    setup_logging,
    tool_parser,
)
from dicomnet.cli.syntaxes import DEFLATED, EBE, ELE, ILE

if TYPE_CHECKING:
    from dicomnet.events import Event

LOG = logging.getLogger("dicomnet.cli.echoscp")
# -x? -> the syntaxes accepted, best first (pynetdicom's echoscp choices)
SYNTAXES = {
    "default": [ELE, ILE, DEFLATED, EBE],
    "x=": [ELE, ILE],
    "xe": [ELE, ILE, EBE],
    "xb": [EBE, ELE, ILE],
    "xi": [ILE],
}


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser("echoscp", "Answer C-ECHO (Verification) requests.", scu=False)
    p.add_argument("port", type=port_number)
    p.add_argument("-ba", "--bind-address", "--bind", dest="bind", default="0.0.0.0",
                   metavar="ADDR", help="listen address (default: every address)")  # fmt: skip
    ts = p.add_argument_group("transfer syntaxes (default: Explicit/Implicit VR Little Endian, "
                              "Deflated, Explicit VR Big Endian)")  # fmt: skip
    one = ts.add_mutually_exclusive_group()
    one.add_argument("-x=", "--prefer-uncompr", dest="syntax", action="store_const", const="x=",
                     help="accept Explicit, then Implicit VR Little Endian")  # fmt: skip
    one.add_argument("-xe", "--prefer-little", dest="syntax", action="store_const", const="xe",
                     help="prefer Explicit VR Little Endian")  # fmt: skip
    one.add_argument("-xb", "--prefer-big", dest="syntax", action="store_const", const="xb",
                     help="prefer Explicit VR Big Endian")  # fmt: skip
    one.add_argument("-xi", "--implicit", dest="syntax", action="store_const", const="xi",
                     help="accept Implicit VR Little Endian only")  # fmt: skip
    p.set_defaults(syntax="default")
    return p


def _on_echo(event: Event) -> int:
    requestor = event.assoc.requestor
    LOG.info("C-ECHO from %s (%s:%s)", requestor.ae_title, requestor.address, requestor.port)
    return 0x0000


def _serve(args: argparse.Namespace) -> int:
    # lazy: the AE and the server (asyncio) are not needed for --help or a usage error
    from dicomnet import events as evt
    from dicomnet.ae import AE
    from dicomnet.presentation import VERIFICATION
    from dicomnet.server import inline

    ae = AE(ae_title=args.aet)
    ae.add_supported_context(VERIFICATION, SYNTAXES[args.syntax])
    configure_ae(ae, args)
    serve_until_signal(
        ae,
        (args.bind, args.port),
        [(evt.EVT_C_ECHO, inline(_on_echo))],
        server_ssl_context(args),
        lambda a: f"echoscp: AE {args.aet} listening on {a[0]}:{a[1]}",
        quiet=args.quiet,
    )
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _serve(args))
