"""``dicomnet findscu HOST PORT (-P|-S|-W) -k KEY=VALUE ...``: query with C-FIND.

Theory of operation
-------------------
The ``-k`` keys (:mod:`dicomnet.cli.keys`) form the query identifier (PS3.4 section C.4.1.1.3).
``-P``/``-S`` select the Patient Root / Study Root Query/Retrieve Information Model FIND SOP
class (PS3.4 C.6.1 / C.6.2), ``-W`` the Modality Worklist Information Model (PS3.4 K.6); when no
``QueryRetrieveLevel`` key is given, ``-P`` queries at PATIENT and ``-S`` at STUDY level. Without
a model option the query is Patient Root, as pynetdicom's findscu (and DCMTK's getscu/movescu)
default to; DCMTK's findscu defaults to Worklist, so keys that look like a worklist query
without ``-W`` get a warning.

Each pending response (0xFF00/0xFF01) carries one match; it is printed as it arrives, either as
an indented list of ``Keyword (gggg,eeee) VR value`` lines or, with ``--json``, as one element
of a DICOM JSON Model array (PS3.18 Annex F.2); ``-w`` (pynetdicom) / ``-X`` (DCMTK) also write
each match to a file. ``-f FILE`` starts the identifier from a file's data set. ``--cancel N`` sends a C-CANCEL-RQ (PS3.7
section 9.3.2.3) after N matches, as DCMTK's findscu does. The final status decides the exit
code: Success (or Cancel when we asked for it) -> 0, anything else -> 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import TYPE_CHECKING, TextIO

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
from dicomnet.dimse.status import Status
from dicomnet.ul.pdu import SOPClassExtendedNegotiation

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

LOG = logging.getLogger("dicomnet.cli.findscu")

_QR = "1.2.840.10008.5.1.4.1.2."
MODELS = {
    "P": {"find": _QR + "1.1", "move": _QR + "1.2", "get": _QR + "1.3"},
    "S": {"find": _QR + "2.1", "move": _QR + "2.2", "get": _QR + "2.3"},
    "O": {"find": _QR + "3.1", "move": _QR + "3.2", "get": _QR + "3.3"},
    "C": {"move": _QR + "4.2", "get": _QR + "4.3"},
    "W": {"find": "1.2.840.10008.5.1.4.31"},
}
DEFAULT_LEVEL = {"P": "PATIENT", "S": "STUDY", "O": "PATIENT", "C": "IMAGE"}


def add_model_args(p: argparse.ArgumentParser, *, worklist: bool) -> None:
    """The information model (-P, -S, -O; -W for C-FIND, -C for C-GET/C-MOVE), the ``-k``
    keys, and the extended negotiation flags (PS3.4 C.5)."""
    # Patient Root by default: DCMTK's getscu/movescu and pynetdicom's three tools agree;
    # DCMTK's findscu defaults to Worklist (findscu says so when the keys look like one)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-P", "--patient", dest="model", action="store_const", const="P",
        help="Patient Root (the default)",
    )  # fmt: skip
    g.add_argument("-S", "--study", dest="model", action="store_const", const="S", help="Study Root")
    g.add_argument("-O", "--psonly", dest="model", action="store_const", const="O",
                   help="Patient/Study Only (retired)")  # fmt: skip
    if worklist:
        g.add_argument(
            "-W", "--worklist", dest="model", action="store_const", const="W",
            help="Worklist (DCMTK's findscu default; here: give it)",
        )  # fmt: skip
    else:
        g.add_argument("-C", "--composite", dest="model", action="store_const", const="C",
                       help="Composite Instance Root (by SOP Instance UID)")  # fmt: skip
    p.set_defaults(model=None)
    neg = p.add_argument_group("extended negotiation (PS3.4 C.5)")
    # the second spellings are pynetdicom's apps'
    neg.add_argument(
        "--relational", "--relational-query" if worklist else "--relational-retrieval",
        dest="relational", action="store_true",
        help="propose relational " + ("queries" if worklist else "retrieval"),
    )  # fmt: skip
    if worklist:
        neg.add_argument("--combine-datetime", "--dt-matching", dest="combine_datetime",
                         action="store_true", help="propose combined date-time matching")  # fmt: skip
        neg.add_argument("--fuzzy-names", action="store_true",
                         help="propose fuzzy semantic matching of person names")  # fmt: skip
        neg.add_argument("--timezone-adjust", "--timezone-adj", dest="timezone_adjust",
                         action="store_true", help="propose timezone query adjustment")  # fmt: skip
        p.add_argument(
            "--charset", default=None, metavar="TERM",
            help="Specific Character Set of the keys (e.g. 'ISO_IR 100'; default: ISO_IR 192 "
            "when a value is not ASCII)",
        )
    p.add_argument(
        "-k",
        "--key",
        dest="keys",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="a query key: Keyword or gggg,eeee, Seq[0].Keyword for sequences; "
        "an empty value asks for it to be returned",
    )
    p.add_argument(
        "-f", "--query-file", default=None, metavar="FILE",
        help="start from the data set in this DICOM file as the identifier (-k keys then "
        "add to it or replace its elements)",
    )  # fmt: skip


def extended_negotiation(args: argparse.Namespace,
                         sop_class: str) -> list[SOPClassExtendedNegotiation]:  # fmt: skip
    """The 56H sub-item the flags ask for (none without flags): for C-FIND relational
    queries, combined date-time, fuzzy names, timezone adjustment (PS3.4 C.5.1.1); for
    C-GET/C-MOVE relational retrieval (C.5.2.1)."""
    # C-GET/C-MOVE parsers have only --relational (add_model_args(worklist=False))
    flags = [getattr(args, name, False) for name in
             ("relational", "combine_datetime", "fuzzy_names", "timezone_adjust")]  # fmt: skip
    if not any(flags):
        return []
    last = max(i for i, f in enumerate(flags) if f)
    info = bytes(int(bool(f)) for f in flags[: last + 1])
    return [SOPClassExtendedNegotiation(sop_class, info)]


def identifier_from_args(args: argparse.Namespace) -> Dataset:
    """The query identifier of ``-k`` keys, with the default level for the model."""
    if args.model is None:
        args.model = "P"
        if any(spec.startswith("ScheduledProcedureStep") for spec in args.keys):
            LOG.warning("no -P/-S/-W given: querying Patient Root, but the keys look like a "
                        "worklist query (add -W)")  # fmt: skip
    base = _query_file(args.query_file) if args.query_file else None
    try:
        # --charset: C-FIND only (add_model_args(worklist=True))
        ds = build_identifier(args.keys, base, charset=getattr(args, "charset", None))
    except KeyError_ as exc:
        raise ToolError(str(exc), ExitCode.USAGE) from None
    if args.model in DEFAULT_LEVEL and "QueryRetrieveLevel" not in ds:
        ds.QueryRetrieveLevel = DEFAULT_LEVEL[args.model]
    return ds


def _query_file(path: str) -> Dataset:
    """The data set of the DICOM file at ``path`` (its File Meta Information left out: it
    describes the file, not the query), for ``-f``."""
    from pydicom import dcmread  # lazy: pydicom (see dicomnet.cli.keys)
    from pydicom.dataset import Dataset as _Dataset
    from pydicom.errors import InvalidDicomError

    # force: a bare data set without a File Meta header (what query files often are) reads too
    try:
        ds = _Dataset(dcmread(path, force=True))
    except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
        raise ToolError(f"-f {path}: cannot read a DICOM data set: {exc}", ExitCode.USAGE) from None
    if not len(ds):
        raise ToolError(f"-f {path}: no DICOM data set in the file", ExitCode.USAGE)
    return ds


def write_match(ds: Dataset, path: str, sop_class: str) -> None:
    """Write one C-FIND match as a DICOM file (PS3.10 7.1: preamble and File Meta Information
    naming the query's SOP class; Explicit VR Little Endian) -- ``-w`` / ``-X``."""
    # lazy: pydicom's file writing and our implementation UIDs, only with -w / -X
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    from dicomnet.settings import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    try:
        ds.save_as(path, enforce_file_format=True)
    except OSError as exc:
        raise ToolError(f"cannot write {path}: {exc.strerror or exc}") from None


def format_dataset(ds: Dataset, indent: str = "  ") -> list[str]:
    """Readable lines: ``Keyword (gggg,eeee) VR value``, sequences indented by item."""
    lines: list[str] = []
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        name = elem.keyword or "Unknown"
        if elem.VR == "SQ":
            lines.append(f"{indent}{name} {tag} SQ ({len(elem.value)} item(s))")
            for n, item in enumerate(elem.value, 1):
                lines.append(f"{indent}  item {n}:")
                lines.extend(format_dataset(item, indent + "    "))
            continue
        value = elem.value
        if value is None or value == "":
            shown = "(empty)"
        elif elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            shown = f"({len(value)} bytes)"
        elif isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            shown = "\\".join(str(v) for v in value)
        else:
            shown = str(value)
        lines.append(f"{indent}{name} {tag} {elem.VR} {shown}")
    return lines


class MatchPrinter:
    """Prints matches as they come: readable blocks or a streamed DICOM JSON array."""

    def __init__(self, stream: TextIO, as_json: bool) -> None:
        self.stream = stream
        self.as_json = as_json
        self.count = 0

    def add(self, ds: Dataset | None) -> None:
        self.count += 1
        if self.as_json:
            doc = json.dumps(ds.to_json_dict() if ds is not None else {})
            self.stream.write(("[\n" if self.count == 1 else ",\n") + doc)
        else:
            self.stream.write(f"Match {self.count}:\n")
            if ds is not None:
                self.stream.write("\n".join(format_dataset(ds)) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.as_json:
            self.stream.write("[]\n" if self.count == 0 else "\n]\n")
            self.stream.flush()


def _find(args: argparse.Namespace) -> int:

    identifier = identifier_from_args(args)
    if "find" not in MODELS[args.model]:
        raise ToolError("this model has no C-FIND", ExitCode.USAGE)
    sop_class = MODELS[args.model]["find"]
    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    ae.add_requested_context(sop_class)
    LOG.debug("identifier:\n%s", "\n".join(format_dataset(identifier)))
    printer = MatchPrinter(sys.stdout, args.json)
    assoc = associate(ae, args, args.host, args.port,
                      ext_neg=extended_negotiation(args, sop_class))  # fmt: skip
    final = -1
    final_rsp: Dataset | None = None
    cancelled = False
    try:
        msg_id = assoc.next_message_id()
        responses = assoc.send_c_find(identifier, sop_class, msg_id=msg_id)
        for status, match in responses:
            code = status_of(status)
            final, final_rsp = code, status
            if status_category(code) == "Pending":
                printer.add(match)
                if args.write and match is not None:
                    write_match(match, args.write.format(printer.count), sop_class)
                if args.cancel is not None and printer.count == args.cancel and not cancelled:
                    cancelled = True
                    LOG.info("sending C-CANCEL")
                    assoc.send_c_cancel(msg_id)
                continue
            break
        printer.close()
        assoc.release()
    except BaseException:
        if assoc.is_established:
            assoc.abort()
        raise
    LOG.info("%d match(es), final status %s", printer.count, format_status(final))
    if final == Status.SUCCESS or (final == Status.CANCEL and cancelled):
        return ExitCode.OK
    if final < 0:
        raise ToolError("C-FIND: no final response (association lost)", ExitCode.ABORTED)
    raise ToolError(f"C-FIND failed: {describe_response(final_rsp, 'C-FIND')}", ExitCode.FAILURE)


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser("findscu", "Query a DICOM peer with C-FIND.")
    p.add_argument("host")
    p.add_argument("port", type=port_number)
    add_model_args(p, worklist=True)
    p.add_argument("--json", action="store_true", help="print matches as a DICOM JSON array")
    p.add_argument(
        "--cancel", type=int, default=None, metavar="N", help="send C-CANCEL after N matches"
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "-w", "--write", dest="write", action="store_const", const="rsp{:06d}.dcm",
        help="also write each match to rsp000001.dcm, rsp000002.dcm, ... (pynetdicom's names)",
    )  # fmt: skip
    out.add_argument(
        "-X", "--extract", dest="write", action="store_const", const="rsp{:04d}.dcm",
        help="also write each match to rsp0001.dcm, rsp0002.dcm, ... (DCMTK's names)",
    )  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _find(args))
