"""``dicomnet mppsscu HOST PORT create|set|complete|discontinue ...``: report a performed
procedure step to an MPPS SCP (PS3.4 Annex F.7).

Theory of operation
-------------------
Proposes the Modality Performed Procedure Step SOP Class (1.2.840.10008.3.1.2.3.3) with
Explicit and Implicit VR Little Endian and sends one request:

* ``create [FILE]``: N-CREATE (PS3.4 F.7.2.1). The attribute list is FILE's data set (if given)
  with the ``-k KEY=VALUE`` keys applied on top (:mod:`dicomnet.cli.keys` syntax, e.g.
  ``-k ScheduledStepAttributesSequence[0].StudyInstanceUID=1.2.3``). Unless ``--no-defaults``,
  what is still missing is filled in so that the request meets PS3.4 Table F.7.2-1: status IN
  PROGRESS, start date and time now, our AE title as Performed Station AE Title, a Performed
  Procedure Step ID from the clock, Modality OT, one Scheduled Step Attributes Sequence item
  with a new Study Instance UID, and every type 2 attribute empty. The SOP Instance UID is
  ``--uid``, else FILE's SOP Instance UID, else a new ``2.25.`` UID (PS3.5 B.2).
* ``set UID [FILE]``: N-SET (PS3.4 F.7.2.2) of FILE's data set and the keys, as they are.
* ``complete UID`` / ``discontinue UID``: N-SET of Performed Procedure Step Status COMPLETED or
  DISCONTINUED, with end date and time now unless given, plus FILE and the keys (the Performed
  Series Sequence, for instance).

Prints ``N-CREATE <UID>: <status>`` (with ``-q`` the UID alone). A Success or Warning status
exits 0; a Failure status is one line on stderr with its Error Comment, Error ID and Offending
Element, exit 1; the other exit codes are those of every tool
(:class:`dicomnet.cli.common.ExitCode`). Runnable as ``python -m dicomnet.cli.mppsscu``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import TYPE_CHECKING

from dicomnet.ae import AE
from dicomnet.cli.common import (
    ExitCode,
    ToolError,
    associate,
    configure_ae,
    describe_response,
    format_status,
    port_number,
    run,
    setup_logging,
    status_category,
    status_of,
    tool_parser,
)
from dicomnet.cli.keys import KeyError_, build_identifier
from dicomnet.uid import is_valid_uid

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

LOG = logging.getLogger("dicomnet.cli.mppsscu")

MPPS = "1.2.840.10008.3.1.2.3.3"
ACTIONS = ("create", "set", "complete", "discontinue")
_FINAL = {"complete": "COMPLETED", "discontinue": "DISCONTINUED"}

# PS3.4 Table F.7.2-1, N-CREATE "2/2": sent empty when not given (top level, then SSAS items).
_TYPE2 = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "ReferencedPatientSequence",
    "PerformedStationName", "PerformedLocation", "PerformedProcedureStepDescription",
    "PerformedProcedureTypeDescription", "ProcedureCodeSequence",
    "PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime", "StudyID",
    "PerformedProtocolCodeSequence", "PerformedSeriesSequence",
)  # fmt: skip
_SSAS_TYPE2 = (
    "AccessionNumber", "ReferencedStudySequence", "RequestedProcedureID",
    "RequestedProcedureDescription", "ScheduledProcedureStepID",
    "ScheduledProcedureStepDescription", "ScheduledProtocolCodeSequence",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser("mppsscu", "Create or update a Modality Performed Procedure Step (N-CREATE, "
                    "N-SET).")  # fmt: skip
    p.add_argument("host")
    p.add_argument("port", type=port_number)
    p.add_argument("action", choices=ACTIONS, help="create | set | complete | discontinue")
    p.add_argument(
        "operands", nargs="*", metavar="UID/FILE",
        help="create: [FILE]; set, complete, discontinue: UID [FILE]",
    )  # fmt: skip
    p.add_argument(
        "-k", "--key", dest="keys", action="append", default=[], metavar="KEY=VALUE",
        help="an attribute: Keyword or gggg,eeee, Seq[0].Keyword in sequences; no value: empty",
    )  # fmt: skip
    p.add_argument("--uid", default=None, help="create: the SOP Instance UID (default: new)")
    p.add_argument(
        "--no-defaults", action="store_true",
        help="send exactly FILE and the keys (no status, dates, IDs or empty type 2 "
        "attributes filled in)",
    )  # fmt: skip
    return p


def _operands(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(UID, FILE) from the positional operands, checked against the action."""
    ops = list(args.operands)
    uid: str | None = None
    if args.action != "create":
        if not ops:
            raise ToolError(f"{args.action} needs the SOP Instance UID of the step",
                            ExitCode.USAGE)  # fmt: skip
        uid = ops.pop(0)
        if args.uid is not None:
            raise ToolError("--uid is for create; give the UID as an operand", ExitCode.USAGE)
    elif args.uid is not None:
        uid = args.uid
    if len(ops) > 1:
        raise ToolError(f"unexpected operand(s): {' '.join(ops[1:])}", ExitCode.USAGE)
    if uid is not None and not is_valid_uid(uid):
        raise ToolError(f"not a valid UID: {uid!r}", ExitCode.USAGE)
    return uid, (ops[0] if ops else None)


def _read_file(path: str) -> Dataset:
    # lazy: pydicom's reader, only with a FILE
    from pydicom import dcmread
    from pydicom.dataset import Dataset

    try:
        ds = dcmread(path, force=True)
    except Exception as exc:
        raise ToolError(f"cannot read {path}: {exc}", ExitCode.USAGE) from None
    return Dataset(ds)  # the data set without the file's meta information


def build_dataset(args: argparse.Namespace, file_path: str | None,
                  now: time.struct_time | None = None) -> tuple[Dataset, str | None]:  # fmt: skip
    """The request's data set, and the SOP Instance UID FILE carried (None without one)."""
    # lazy: pydicom, only once the command line is known to be usable
    from pydicom.dataset import Dataset

    base = _read_file(file_path) if file_path else Dataset()
    file_uid = str(base.SOPInstanceUID) if "SOPInstanceUID" in base else None
    for keyword in ("SOPClassUID", "SOPInstanceUID"):  # the request carries them
        if keyword in base:
            delattr(base, keyword)
    try:
        ds = build_identifier(args.keys, base=base)
    except KeyError_ as exc:
        raise ToolError(str(exc), ExitCode.USAGE) from None
    now = time.localtime() if now is None else now
    if args.action in _FINAL:
        given = ds.get("PerformedProcedureStepStatus")
        if given is not None and str(given) != _FINAL[args.action]:
            raise ToolError(f"{args.action} sets PerformedProcedureStepStatus "
                            f"{_FINAL[args.action]}, not {given}", ExitCode.USAGE)  # fmt: skip
        ds.PerformedProcedureStepStatus = _FINAL[args.action]
        if not args.no_defaults:
            _default(ds, "PerformedProcedureStepEndDate", time.strftime("%Y%m%d", now))
            _default(ds, "PerformedProcedureStepEndTime", time.strftime("%H%M%S", now))
    elif args.action == "create" and not args.no_defaults:
        _create_defaults(ds, args.aet, now)
    return ds, file_uid


def _default(ds: Dataset, keyword: str, value: object) -> None:
    if keyword not in ds or ds[keyword].is_empty:
        setattr(ds, keyword, value)


def _create_defaults(ds: Dataset, aet: str, now: time.struct_time) -> None:
    """What PS3.4 Table F.7.2-1 requires of an N-CREATE and the keys did not give."""
    # lazy: pydicom, see build_dataset
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    _default(ds, "PerformedProcedureStepStatus", "IN PROGRESS")
    _default(ds, "PerformedProcedureStepStartDate", time.strftime("%Y%m%d", now))
    _default(ds, "PerformedProcedureStepStartTime", time.strftime("%H%M%S", now))
    _default(ds, "PerformedStationAETitle", aet)
    _default(ds, "PerformedProcedureStepID", time.strftime("%Y%m%d%H%M%S", now))
    _default(ds, "Modality", "OT")
    if "ScheduledStepAttributesSequence" not in ds or not ds.ScheduledStepAttributesSequence:
        ds.ScheduledStepAttributesSequence = [Dataset()]
    for item in ds.ScheduledStepAttributesSequence:
        _default(item, "StudyInstanceUID", generate_uid(prefix=None))
        for keyword in _SSAS_TYPE2:
            if keyword not in item:
                setattr(item, keyword, [] if keyword.endswith("Sequence") else "")
    for keyword in _TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, [] if keyword.endswith("Sequence") else "")


def _failure_text(rsp: Dataset, service: str) -> str:
    text = describe_response(rsp, service)
    error_id = rsp.get("ErrorID")
    if error_id is not None:
        text += f" [Error ID 0x{int(error_id):04X}]"
    offending = rsp.get("OffendingElement")
    if offending is not None:
        tags = [offending] if isinstance(offending, int) else list(offending)
        shown = ", ".join(f"({int(t) >> 16:04X},{int(t) & 0xFFFF:04X})" for t in tags)
        text += f" [Offending Element {shown}]"
    return text


def _mpps(args: argparse.Namespace) -> int:
    uid, file_path = _operands(args)
    ds, file_uid = build_dataset(args, file_path)
    if args.action == "set" and len(ds) == 0:
        raise ToolError("set needs -k keys or a FILE", ExitCode.USAGE)
    if args.action == "create" and uid is None:
        # lazy: pydicom's UID generator, only for a create without a UID
        from pydicom.uid import generate_uid

        uid = file_uid or generate_uid(prefix=None)
    assert uid is not None
    service = "N-CREATE" if args.action == "create" else "N-SET"
    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    ae.add_requested_context(MPPS)
    assoc = associate(ae, args, args.host, args.port)
    try:
        if args.action == "create":
            rsp, reply = assoc.send_n_create(ds, MPPS, uid)
        else:
            rsp, reply = assoc.send_n_set(ds, MPPS, uid)
        assoc.release()
    except BaseException:
        if assoc.is_established:
            assoc.abort()
        raise
    code = status_of(rsp)
    if code < 0:
        raise ToolError(f"{service} {uid}: no response (association lost)", ExitCode.ABORTED)
    if reply is not None and len(reply) and LOG.isEnabledFor(logging.INFO):
        # lazy: the data set printer, only with -v/-d
        from dicomnet.cli.findscu import format_dataset

        LOG.info("%s reply:\n%s", service, "\n".join(format_dataset(reply)))
    if status_category(code) not in ("Success", "Warning"):
        raise ToolError(f"{service} {uid} failed: {_failure_text(rsp, service)}")
    print(uid if args.quiet else f"{service} {uid}: {format_status(code, service)}", flush=True)
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _mpps(args))


if __name__ == "__main__":
    sys.exit(main())
