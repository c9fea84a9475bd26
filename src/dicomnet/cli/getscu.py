"""``dicomnet getscu HOST PORT (-P|-S) -k ... [-od DIR]``: retrieve with C-GET.

Theory of operation
-------------------
C-GET (PS3.4 C.4.3) brings the instances back over the same association as C-STORE
sub-operations sent by the peer, so besides the GET SOP class of the chosen model we propose
storage SOP classes (the most common first, up to the 128-context limit of PS3.8 section
9.3.2.2) with SCP/SCU Role Selection asking to act as their SCP (PS3.7 D.3.3.4). Each proposes
every transfer syntax (``+xa``, the default: uncompressed first, so a peer that takes the first
acceptable one sends uncompressed data as it is and compressed data it cannot convert still
arrives); ``+x=`` and the other ``+x?`` options narrow the list as in DCMTK's getscu. Each received
object is written like storescp does (temp file, atomic rename, ``DIR/<SOPInstanceUID>.dcm``);
with ``--ignore`` it is answered Success and not kept. Without ``-P``/``-S``/``-O``/``-C`` the model
is Patient Root, the default of DCMTK's and pynetdicom's getscu. ``-f FILE`` starts the
identifier from a file's data set (``-k`` keys add to it).
Pending responses report the sub-operation counts; the final one decides the exit status:
Success -> 0, anything else (B000 some failed, A7xx/A9xx/Cxxx, FE00) -> 1 with the counts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.cli.common import (
    ExitCode,
    ToolError,
    associate,
    configure_ae,
    describe_response,
    format_status,
    ignore_store,
    port_number,
    run,
    setup_logging,
    status_category,
    status_of,
    tool_parser,
)
from dicomnet.cli.findscu import (
    MODELS,
    add_model_args,
    extended_negotiation,
    identifier_from_args,
)
from dicomnet.cli.syntaxes import add_accept_options, proposed_syntaxes
from dicomnet.dimse.status import Status
from dicomnet.sop_sets import storage_sop_classes

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.association import Association

LOG = logging.getLogger("dicomnet.cli.getscu")


def counts_text(rsp: Dataset) -> str:
    """'3 completed, 0 failed, 0 warning(s)' from a C-GET/C-MOVE response (PS3.7 9.3.3/9.3.4)."""

    def n(keyword: str) -> int:
        value = rsp.get(keyword)
        return int(value) if value not in (None, "") else 0

    text = (
        f"{n('NumberOfCompletedSuboperations')} completed, "
        f"{n('NumberOfFailedSuboperations')} failed, "
        f"{n('NumberOfWarningSuboperations')} warning(s)"
    )
    remaining = rsp.get("NumberOfRemainingSuboperations")
    if remaining not in (None, ""):
        text += f", {int(remaining)} remaining"
    return text


def finish_retrieve(what: str, final: Dataset | None, code: int, cancelled: bool = False) -> int:
    """Map the final C-GET/C-MOVE response to the exit status (raises ToolError on failure)."""
    if code == Status.SUCCESS or (code == Status.CANCEL and cancelled):
        return ExitCode.OK
    if code < 0 or final is None:
        raise ToolError(f"{what}: no final response (association lost)", ExitCode.ABORTED)
    raise ToolError(f"{what} finished with {describe_response(final, what)} ({counts_text(final)})")


def run_retrieve(assoc: Association, responses: Iterable[tuple[Dataset, Dataset | None]],
                 what: str, quiet: bool) -> tuple[Dataset | None, int]:  # fmt: skip
    """Consume C-GET/C-MOVE responses; returns the final (status Dataset, code)."""
    final: Dataset | None = None
    code = -1
    for status, _identifier in responses:
        final, code = status, status_of(status)
        if status_category(code) == "Pending":
            LOG.info("%s pending: %s", what, counts_text(status))
            continue
        break
    if not quiet and final is not None and code >= 0:
        print(f"{what}: {format_status(code, what)}: {counts_text(final)}")
    return final, code


def _get(args: argparse.Namespace) -> int:
    # lazy: the archive's writer is not needed for --help or a usage error
    from dicomnet.archive.receive import DirectoryStore

    identifier = identifier_from_args(args)
    sop_class = MODELS[args.model]["get"]
    store = None if args.ignore else DirectoryStore(args.output)
    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    ae.add_requested_context(sop_class)
    syntaxes = proposed_syntaxes(args.accept)
    for uid in storage_sop_classes()[:127]:
        ae.add_requested_context(uid, syntaxes, scu_role=False, scp_role=True)
    assoc = associate(
        ae, args, args.host, args.port,
        evt_handlers=[(evt.EVT_C_STORE, ignore_store if store is None else store.handle_store)],
        ext_neg=extended_negotiation(args, sop_class),
    )
    try:
        final, code = run_retrieve(assoc, assoc.send_c_get(identifier, sop_class), "C-GET",
                                   args.quiet)
        assoc.release()
    except BaseException:
        if assoc.is_established:
            assoc.abort()
        raise
    if store is not None:
        LOG.info("%d object(s) written to %s", store.count, store.directory)
    return finish_retrieve("C-GET", final, code)


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser("getscu", "Retrieve DICOM objects with C-GET.", prefix_chars="-+")
    p.add_argument("host")
    p.add_argument("port", type=port_number)
    add_model_args(p, worklist=False)
    p.add_argument(
        "-od", "--output-directory", dest="output", default=".", metavar="DIR",
        help="where retrieved files go (default: the current directory)",
    )
    p.add_argument("--ignore", action="store_true",
                   help="answer the storage sub-operations with Success, store nothing")
    add_accept_options(p, "incoming C-STORE sub-operations")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _get(args))
