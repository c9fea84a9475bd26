"""``dicomnet echoscu HOST PORT [--repeat N]``: verify a peer with C-ECHO.

Theory of operation
-------------------
Proposes the Verification SOP Class (PS3.4 Annex A, UID 1.2.840.10008.1.1) with Explicit and
Implicit VR Little Endian (or the one syntax ``-xe``/``-xb``/``-xi`` name, as pynetdicom's
echoscu does), sends ``--repeat`` C-ECHO requests (PS3.7 section 9.1.5) over one association and
releases it (``--abort``: ends it with an A-ABORT instead, PS3.8 section 7.3, as DCMTK's and
pynetdicom's echoscu do). Exit status 0 when every response was Success (0x0000); otherwise
one line on stderr says what went wrong and the exit status says which kind of failure it was
(see :class:`dicomnet.cli.common.ExitCode`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from dicomnet.ae import AE
from dicomnet.cli.common import (
    ExitCode,
    ToolError,
    associate,
    configure_ae,
    describe_response,
    port_number,
    run,
    setup_logging,
    status_of,
    tool_parser,
)
from dicomnet.dimse.status import Status
from dicomnet.presentation import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    PREFERRED_TRANSFER_SYNTAXES,
)

LOG = logging.getLogger("dicomnet.cli.echoscu")
VERIFICATION = "1.2.840.10008.1.1"
# (option, --request-NAME, transfer syntax UID, help): pynetdicom's echoscu spellings
_SYNTAXES = (
    ("xe", "little", EXPLICIT_VR_LITTLE_ENDIAN, "Explicit VR Little Endian"),
    ("xb", "big", EXPLICIT_VR_BIG_ENDIAN, "Explicit VR Big Endian"),
    ("xi", "implicit", IMPLICIT_VR_LITTLE_ENDIAN, "Implicit VR Little Endian"),
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser("echoscu", "Verify a DICOM peer with C-ECHO.")
    p.add_argument("host")
    p.add_argument("port", type=port_number)
    p.add_argument("--repeat", type=_positive_int, default=1, metavar="N", help="send N C-ECHOs")
    p.add_argument("--abort", action="store_true", help="abort the association instead of "
                   "releasing it")  # fmt: skip
    ts = p.add_argument_group("transfer syntax (default: Explicit and Implicit VR Little Endian)")
    one = ts.add_mutually_exclusive_group()
    for short, long, uid, text in _SYNTAXES:
        one.add_argument(f"-{short}", f"--request-{long}", dest="syntaxes", action="store_const",
                         const=[uid], help=f"propose {text} only")  # fmt: skip
    p.set_defaults(syntaxes=list(PREFERRED_TRANSFER_SYNTAXES))
    return p


def _echo(args: argparse.Namespace) -> int:
    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    ae.add_requested_context(VERIFICATION, args.syntaxes)
    start = time.monotonic()
    assoc = associate(ae, args, args.host, args.port)
    try:
        for i in range(args.repeat):
            rsp = assoc.echo_response()  # the primitive: no pydicom import for a C-ECHO
            if status_of(rsp) != Status.SUCCESS:
                raise ToolError(f"C-ECHO {i + 1} failed: {describe_response(rsp, 'C-ECHO')}")
            LOG.info("C-ECHO %d: success", i + 1)
        if args.abort:
            assoc.abort()
        else:
            assoc.release()
    except BaseException:
        if assoc.is_established:
            assoc.abort()
        raise
    if not args.quiet:
        elapsed = time.monotonic() - start
        print(f"C-ECHO x{args.repeat} to {args.host}:{args.port}: success ({elapsed:.3f} s)")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _echo(args))
