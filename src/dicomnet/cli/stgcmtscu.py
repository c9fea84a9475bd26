"""``dicomnet stgcmtscu HOST PORT FILE|DIR... [--port-scp N]``: ask a peer to commit to storing
files (Storage Commitment Push Model SCU, PS3.4 Annex J).

Theory of operation
-------------------
1. **Scan.** Each file given (and each file in the folders given, recursively with ``-r``) is
   identified as ``storescu`` does (:func:`dicomnet.transcode.inspect_file`: the SOP Class and
   Instance UIDs of its data set, from its first KiB). Files that are not DICOM are skipped
   with a warning.
2. **Request.** One association proposing the Storage Commitment Push Model SOP Class
   (1.2.840.10008.1.20.1) carries one N-ACTION-RQ (Action Type ID 1, PS3.4 J.3.2.1) on its
   well-known instance (1.2.840.10008.1.20.1.1, PS3.4 J.3.5) with a new Transaction UID and one
   Referenced SOP Sequence item per file (PS3.4 Table J.3-1), encoded as a stream
   (:func:`dicomnet.archive.commitment.encode_request`). A failure status ends the run: the
   peer will not process the request (PS3.4 J.3.2.1.2).
3. **Result.** The peer sends the Storage Commitment Result as an N-EVENT-REPORT-RQ (PS3.4
   J.3.3.1): by default on the same association, which stays open up to ``--report-timeout``
   seconds for it; with ``--port-scp N`` (as DCMTK's and dcm4che's tools offer) we also listen on
   port N, accepting the association the peer opens as association requestor in the SCP role
   (PS3.4 J.3.3.1.3: we grant its role selection), and release ours after the N-ACTION-RSP.
   Either way we answer the report with Success (PS3.4 J.3.3.1.3) once it names our Transaction
   UID, read it as a stream (:class:`~dicomnet.archive.commitment.CommitmentReport`) and print
   one line per file: committed, or the Failure Reason (0008,1197) (PS3.3 C.14.1.1).

Exit status: 0 when every file was committed; 1 when any was not (or the N-ACTION failed); 6
when no report came in time; the other codes of :class:`~dicomnet.cli.common.ExitCode` for
network failures.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING

from dicomnet import events as evt
from dicomnet.ae import AE
from dicomnet.archive.commitment import (
    SOP_CLASS,
    WELL_KNOWN_INSTANCE,
    CommitmentReport,
    FailureReason,
    MalformedRequest,
    encode_request,
    new_transaction_uid,
)
from dicomnet.cli.common import (
    ExitCode,
    ToolError,
    associate,
    configure_ae,
    format_status,
    port_number,
    run,
    server_ssl_context,
    setup_logging,
    tool_parser,
)
from dicomnet.cli.storescu import iter_paths, read_part10_info
from dicomnet.dimse.status import Status
from dicomnet.errors import NoPresentationContextError
from dicomnet.presentation import accepted_syntax_of
from dicomnet.uid import is_valid_uid

if TYPE_CHECKING:
    from dicomnet.events import Event
    from dicomnet.server import Server

LOG = logging.getLogger("dicomnet.cli.stgcmtscu")

SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]  # Explicit, Implicit VR Little Endian
REASONS = {
    FailureReason.PROCESSING_FAILURE: "processing failure",
    FailureReason.NO_SUCH_OBJECT_INSTANCE: "no such object instance",
    FailureReason.CLASS_INSTANCE_CONFLICT: "class/instance conflict",
    FailureReason.REFERENCED_SOP_CLASS_NOT_SUPPORTED: "referenced SOP class not supported",
    FailureReason.DUPLICATE_TRANSACTION_UID: "duplicate transaction UID",
    FailureReason.RESOURCE_LIMITATION: "resource limitation",
}


def describe_reason(code: int) -> str:
    """'0x0112 (no such object instance)': a Failure Reason (PS3.3 C.14.1.1)."""
    try:
        text = REASONS[FailureReason(code)]
    except ValueError:
        text = "unknown reason"
    return f"0x{code:04X} ({text})"


class ReportWaiter:
    """Receives the Storage Commitment Result of one transaction, from whichever association
    it comes on (EVT_N_EVENT_REPORT handler, any thread): :attr:`done` is set once it came."""

    def __init__(self, transaction_uid: str, wanted: set[str]) -> None:
        self.transaction_uid = transaction_uid
        self.wanted = wanted
        self.done = threading.Event()
        self.results: dict[str, int | None] = {}  # SOP Instance UID -> None or Failure Reason
        self.event_type: int | None = None
        self.unexpected = 0  # references to instances we did not ask about
        self._lock = threading.Lock()

    def handle(self, event: Event) -> int:
        """EVT_N_EVENT_REPORT: PS3.4 J.3.3.1.3 -- answer, and keep our transaction's result."""
        request = event.request
        sop_class = getattr(request, "AffectedSOPClassUID", None)
        if sop_class != SOP_CLASS:
            return Status.SOP_CLASS_NOT_SUPPORTED
        if event.event_type not in (1, 2):
            return Status.NO_SUCH_EVENT_TYPE
        source = event.data_source
        if source is None:
            return Status.MISSING_ATTRIBUTE
        ts = accepted_syntax_of(event.context)
        report = CommitmentReport(source, ts)
        results: dict[str, int | None] = {}
        unexpected = 0
        try:
            for item in report.items():
                if report.transaction_uid != self.transaction_uid:
                    break  # another transaction's: acknowledged, not ours
                if item.sop_instance_uid in self.wanted:
                    results[item.sop_instance_uid] = item.failure_reason
                else:
                    unexpected += 1
        except MalformedRequest as exc:
            LOG.error("unreadable storage commitment report: %s", exc)
            return Status.PROCESSING_FAILURE
        if report.transaction_uid != self.transaction_uid:
            LOG.warning("storage commitment report for another transaction (%s) acknowledged",
                        report.transaction_uid)  # fmt: skip
            return Status.SUCCESS
        with self._lock:
            if not self.done.is_set():
                self.results, self.unexpected = results, unexpected
                self.event_type = event.event_type
                self.done.set()
        LOG.info("storage commitment report received (event type %s)", event.event_type)
        return Status.SUCCESS


def _listen(args: argparse.Namespace, waiter: ReportWaiter) -> Server:
    """The SCU side of the result's association (PS3.4 J.3.3.1.3): we accept the peer's
    proposal of the SCP role for the Storage Commitment Push Model (PS3.7 D.3.3.4)."""
    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    ae.add_supported_context(SOP_CLASS, SYNTAXES, scu_role=True, scp_role=True)
    server: Server = ae.start_server(
        (args.bind_scp, args.port_scp),
        block=False,
        evt_handlers=[(evt.EVT_N_EVENT_REPORT, waiter.handle)],
        ssl_context=server_ssl_context(args) if args.tls and args.tls_cert else None,
    )
    LOG.info("waiting for the report as %s on port %d", args.aet, server.address[1])
    return server


def _scan(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    files: list[tuple[str, str, str]] = []
    for path in iter_paths(args.paths, args.recurse):
        try:
            info = read_part10_info(path)
        except OSError as exc:
            LOG.warning("%s: %s", path, exc.strerror or exc)
            continue
        if info is None:
            LOG.warning("%s: not a DICOM file with SOP Class/Instance UIDs, skipped", path)
            continue
        files.append((info.sop_class_uid, info.sop_instance_uid, path))
    return files


def _commit(args: argparse.Namespace) -> int:
    files = _scan(args)
    if not files:
        raise ToolError("no DICOM files to commit", ExitCode.USAGE)
    txn = args.transaction_uid or new_transaction_uid()
    waiter = ReportWaiter(txn, {inst for _, inst, _ in files})
    server = _listen(args, waiter) if args.port_scp is not None else None
    try:
        _request(args, txn, files, waiter)
    finally:
        if server is not None:
            server.shutdown()
    if not waiter.done.is_set():
        raise ToolError(f"no storage commitment report for transaction {txn} within "
                        f"{args.report_timeout:g} s", ExitCode.TIMEOUT)  # fmt: skip
    return _print_results(args, txn, files, waiter)


def _request(
    args: argparse.Namespace, txn: str, files: list[tuple[str, str, str]], waiter: ReportWaiter
) -> None:
    """N-ACTION on one association, then wait for the report (see the module docstring)."""
    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    ae.add_requested_context(SOP_CLASS, SYNTAXES)
    deadline = None
    assoc = associate(ae, args, args.host, args.port,
                      evt_handlers=[(evt.EVT_N_EVENT_REPORT, waiter.handle)])  # fmt: skip
    try:
        try:
            cx = assoc.find_context(SOP_CLASS)
        except NoPresentationContextError:
            raise ToolError(f"{args.host}:{args.port} did not accept the Storage Commitment "
                            "Push Model", ExitCode.REJECTED) from None  # fmt: skip
        payload = encode_request(
            txn, ((c, i) for c, i, _ in files), cx.accepted_syntax or SYNTAXES[1]
        )
        LOG.info("N-ACTION: transaction %s, %d reference(s)", txn, len(files))
        status, _reply = assoc.send_n_action(payload, 1, SOP_CLASS, WELL_KNOWN_INSTANCE)
        code = status.get("Status")
        if code is None:
            raise ToolError("no N-ACTION response (association lost)", ExitCode.ABORTED)
        if int(code) != Status.SUCCESS:
            comment = status.get("ErrorComment")
            text = format_status(int(code), "N-ACTION") + (f": {comment}" if comment else "")
            assoc.release()  # PS3.4 J.3.2.1.2: the transaction is over
            raise ToolError(f"storage commitment request refused: {text}")
        deadline = time.monotonic() + args.report_timeout
        if args.port_scp is None:
            # the report comes on this association (PS3.4 J.3.3.1.2 Note 1): receive until it
            # is there, the peer releases, or the time is up (the wait is the socket's)
            while not waiter.done.is_set() and assoc.is_established:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                assoc.dimse_timeout = remaining
                if not assoc.pump():
                    break
        if assoc.is_established:
            assoc.release()
    except BaseException:
        if assoc.is_established:
            assoc.abort()
        raise
    if args.port_scp is not None and deadline is not None:
        waiter.done.wait(max(0.0, deadline - time.monotonic()))


def _print_results(
    args: argparse.Namespace, txn: str, files: list[tuple[str, str, str]], waiter: ReportWaiter
) -> int:
    committed = 0
    for _sop_class, sop_instance, path in files:
        if sop_instance not in waiter.results:
            line, ok = f"FAILED    {sop_instance}  {path}: not in the report", False
        else:
            reason = waiter.results[sop_instance]
            ok = reason is None
            line = (f"committed {sop_instance}  {path}" if reason is None else
                    f"FAILED    {sop_instance}  {path}: {describe_reason(reason)}")  # fmt: skip
        committed += ok
        if not args.quiet or not ok:
            print(line)
    if waiter.unexpected:
        LOG.warning("the report names %d instance(s) we did not ask about", waiter.unexpected)
    if not args.quiet:
        print(f"storage commitment {txn} (event type {waiter.event_type}): "
              f"{committed} of {len(files)} committed")  # fmt: skip
    return ExitCode.OK if committed == len(files) else ExitCode.FAILURE


def _uid(text: str) -> str:
    if not is_valid_uid(text):
        raise argparse.ArgumentTypeError("not a UID (PS3.5 9.1)")
    return text


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser(
        "stgcmtscu",
        "Ask a DICOM peer to commit to storing files (Storage Commitment Push Model SCU).",
    )
    p.add_argument("host")
    p.add_argument("port", type=port_number)
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="the stored files to commit")
    p.add_argument("-r", "--recurse", action="store_true", help="descend into folders")
    p.add_argument(
        "--port-scp", type=port_number, default=None, metavar="N",
        help="receive the report on a separate association: listen on port N (the peer must "
        "know our -aet at this host and port); default: wait on the request's association",
    )  # fmt: skip
    p.add_argument("--bind-scp", default="0.0.0.0", metavar="ADDR",
                   help="with --port-scp: the address to listen on (default: %(default)s)")  # fmt: skip
    p.add_argument("--report-timeout", type=_positive_float, default=60.0, metavar="S",
                   help="seconds to wait for the report (default: %(default)s)")  # fmt: skip
    p.add_argument("--transaction-uid", type=_uid, default=None, metavar="UID",
                   help="the Transaction UID to use (default: a new one)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _commit(args))


if __name__ == "__main__":
    sys.exit(main())
