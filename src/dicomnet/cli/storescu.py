"""``dicomnet storescu HOST PORT PATH... [-r]``: send DICOM files with C-STORE.

Theory of operation
-------------------
1. **Scan.** Every file is identified from its PS3.10 File Meta Information alone (section
   7.1: 128-byte preamble, ``DICM``, then group 0002 in Explicit VR Little Endian): the Media
   Storage SOP Class UID (0002,0002), Media Storage SOP Instance UID (0002,0003) and Transfer
   Syntax UID (0002,0010). Only the first few kilobytes are read, so scanning thousands of files
   is cheap; anything without a valid meta header is skipped with a warning.
2. **Plan.** Files are grouped by SOP class and transfer syntax. For each SOP class we propose
   one presentation context per transfer syntax found among its files (so compressed data goes
   as it is), plus a fallback context offering Explicit and Implicit VR Little Endian, which every
   SCP must support (PS3.5 section 10.1) and into which native data can be re-encoded. PS3.8
   section 9.3.2.2 limits an association to 128 contexts (odd IDs 1..255): when the plan needs
   more, SOP classes are split across several associations, one after the other.
3. **Send.** Files whose transfer syntax was accepted are streamed from disk as they are (meta
   header stripped, no decode). Otherwise a native file is decoded and re-encoded into the
   accepted fallback syntax. Each response status is classified (PS3.7 Annex C) and counted;
   a progress bar shows on a terminal only; a summary ends the run. Exit status 0 when every
   object was stored (warnings included), 1 when any failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import struct
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dicomnet.cli.common import (
    ExitCode,
    Progress,
    ToolError,
    associate,
    configure_ae,
    describe_response,
    human_bytes,
    port_number,
    run,
    setup_logging,
    status_category,
    status_of,
    tool_parser,
)

if TYPE_CHECKING:
    from dicomnet.association import Association

LOG = logging.getLogger("dicomnet.cli.storescu")

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
NATIVE_LE = frozenset({EXPLICIT_LE, IMPLICIT_LE})
EXPLICIT_BE = "1.2.840.10008.1.2.2"
NATIVE = frozenset({EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE})
# PS3.5 section 7.3: bytes of these VRs are words of this size, swapped between byte orders.
_WORD_SIZE = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}
FALLBACK: tuple[str, ...] = (EXPLICIT_LE, IMPLICIT_LE)
MAX_CONTEXTS = 128  # PS3.8 section 9.3.2.2: context IDs are odd integers 1..255

_HEAD = 8192  # enough for nearly every meta header; more is read when the group says so
_MAX_META = 1 << 20
_PREAMBLE = 128
_ELEM = struct.Struct("<HH2sH")
_UL = struct.Struct("<I")
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)


@dataclass(frozen=True, slots=True)
class Part10Info:
    """What the file meta header of one Part 10 file says."""

    path: str
    size: int
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset_offset: int


def _text(value: memoryview) -> str:
    return bytes(value).decode("ascii", "replace").rstrip("\0 ")


def read_part10_info(path: str) -> Part10Info | None:
    """Parse the File Meta Information of ``path`` (PS3.10 section 7.1), or None if it is not a
    Part 10 file with the three UIDs we need. Never raises for bad content; OSError propagates.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(_HEAD)
        if len(head) < _PREAMBLE + 4 + 8 or head[_PREAMBLE : _PREAMBLE + 4] != b"DICM":
            return None
        pos = _PREAMBLE + 4
        # (0002,0000) group length tells how much meta there is; read it all if it is long.
        group, elem, vr, vlen = _ELEM.unpack_from(head, pos)
        if (group, elem, vr) == (2, 0, b"UL") and vlen == 4 and len(head) >= pos + 12:
            glen = _UL.unpack_from(head, pos + 8)[0]
            need = pos + 12 + glen
            if glen > _MAX_META:
                return None
            if need > len(head):
                head += f.read(need - len(head))
    view = memoryview(head)
    end = len(view)
    found: dict[int, str] = {}
    group_end = end
    while pos + 8 <= min(end, group_end):
        group, elem, vr, vlen = _ELEM.unpack_from(view, pos)
        if group != 0x0002:
            break
        if vr in _LONG_VRS:
            if pos + 12 > end:
                return None
            vlen = _UL.unpack_from(view, pos + 8)[0]
            at = pos + 12
        elif vr.isalpha():
            at = pos + 8
        else:
            return None
        if at + vlen > end:
            return None
        if elem == 0x0000 and vlen == 4:
            group_end = at + 4 + _UL.unpack_from(view, at)[0]
        elif elem in (0x0002, 0x0003, 0x0010):
            found[elem] = _text(view[at : at + vlen])
        pos = at + vlen
    sop_class, sop_instance, ts = found.get(2), found.get(3), found.get(0x10)
    if not (sop_class and sop_instance and ts):
        return None
    return Part10Info(path, size, sop_class, sop_instance, ts, pos)


def iter_paths(paths: Iterable[str], recursive: bool) -> Iterator[str]:
    """Files named on the command line, and the files in named directories (recursively
    with ``recursive``), in a stable (sorted) order."""
    for p in paths:
        if os.path.isdir(p):
            if recursive:
                for root, dirs, files in os.walk(p):
                    dirs.sort()
                    for name in sorted(files):
                        yield os.path.join(root, name)
            else:
                with os.scandir(p) as it:
                    entries = sorted((e for e in it if e.is_file()), key=lambda e: e.name)
                for e in entries:
                    yield e.path
        else:
            yield p


@dataclass(slots=True)
class Batch:
    """The contexts of one association and the files it sends."""

    contexts: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    files: list[Part10Info] = field(default_factory=list)


def contexts_for(sop_class: str, syntaxes: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Contexts proposed for one SOP class: one per transfer syntax of its files (as found),
    plus the Explicit/Implicit VR Little Endian fallback unless those two are both there."""
    found = sorted(set(syntaxes))
    result: list[tuple[str, tuple[str, ...]]] = [(sop_class, (ts,)) for ts in found]
    if not set(FALLBACK) <= set(found):
        result.append((sop_class, FALLBACK))
    return result


def plan(infos: Sequence[Part10Info], max_contexts: int = MAX_CONTEXTS) -> list[Batch]:
    """Group files into associations of at most ``max_contexts`` presentation contexts."""
    by_class: dict[str, list[Part10Info]] = {}
    for info in infos:
        by_class.setdefault(info.sop_class_uid, []).append(info)
    batches: list[Batch] = []
    current = Batch()
    for sop_class, files in by_class.items():
        ctxs = contexts_for(sop_class, (f.transfer_syntax for f in files))
        if len(ctxs) > max_contexts:  # absurd, but never propose more than allowed
            ctxs = [*ctxs[:max_contexts - 1], (sop_class, FALLBACK)]
        if current.contexts and len(current.contexts) + len(ctxs) > max_contexts:
            batches.append(current)
            current = Batch()
        current.contexts.extend(ctxs)
        current.files.extend(files)
    if current.contexts:
        batches.append(current)
    return batches


@dataclass(slots=True)
class Summary:
    sent: int = 0
    success: int = 0
    warning: int = 0
    failure: int = 0
    skipped: int = 0
    nbytes: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self, elapsed: float) -> str:
        rate = human_bytes(self.nbytes / max(elapsed, 1e-6))
        return (
            f"{self.sent} object(s), {human_bytes(self.nbytes)} in {elapsed:.2f} s ({rate}/s): "
            f"{self.success} stored, {self.warning} with warnings, {self.failure} failed, "
            f"{self.skipped} skipped"
        )


def _accepted_ts(assoc: Association, sop_class: str) -> list[str]:
    return [
        str(cx.transfer_syntax)
        for cx in assoc.accepted_contexts
        if cx.abstract_syntax == sop_class and cx.transfer_syntax
    ]


def send_file(assoc: Association, info: Part10Info) -> Any:
    """Send one file over ``assoc``; returns the C-STORE response (a Dataset with Status).

    The common case streams the file's data set bytes from disk as they are (no decode): the
    file's transfer syntax was accepted, or it is Explicit/Implicit VR Little Endian and the
    other one was (the association re-encodes). Otherwise (big endian, or compressed data the
    peer refused) the file is decoded, decompressed if needed, and sent re-encoded.
    """
    from dicomnet.dimse.dataset import DataSource

    accepted = _accepted_ts(assoc, info.sop_class_uid)
    if not accepted:
        raise ToolError(f"{info.path}: SOP class {info.sop_class_uid} not accepted by the peer")
    ts = info.transfer_syntax
    if ts in accepted or (ts in NATIVE_LE and NATIVE_LE.intersection(accepted)):
        src = DataSource(
            path=info.path,
            offset=info.dataset_offset,
            size=info.size - info.dataset_offset,
            transfer_syntax=ts,
        )
        return assoc.send_c_store(
            src, sop_class_uid=info.sop_class_uid, sop_instance_uid=info.sop_instance_uid
        )
    if not NATIVE.intersection(accepted):
        raise ToolError(f"{info.path}: no accepted transfer syntax for {ts}")
    from pydicom import dcmread
    from pydicom.uid import UID

    ds = dcmread(info.path)
    if ts == EXPLICIT_BE:
        swap_big_endian_words(ds)
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
    elif ts not in NATIVE:
        try:
            ds.decompress()
        except Exception as exc:
            raise ToolError(
                f"{info.path}: the peer refused {ts} and decompressing failed: {exc}"
            ) from exc
    return assoc.send_c_store(ds)


def swap_big_endian_words(ds: Any) -> None:
    """Turn the raw OW/OL/OF/OD/OV values of a data set read from Explicit VR Big Endian into
    little endian (PS3.5 section 7.3), in place, sequences included.

    pydicom decodes numbers of the other VRs, so those re-encode correctly by themselves; these
    VRs stay raw bytes. Pixel Data (OW) is swapped by its Bits Allocated (PS3.5 section 8.1.1).
    """
    import array

    codes = {2: "H", 4: "I", 8: "Q"}
    for elem in ds.iterall():
        size = _WORD_SIZE.get(str(elem.VR))
        value = elem.value
        if size is None or not isinstance(value, bytes | bytearray) or not value:
            continue
        if elem.tag == 0x7FE00010:
            bits = int(ds.get("BitsAllocated", 16) or 16)
            size = {32: 4, 64: 8}.get(bits, 2 if bits > 8 else 1)
        if size == 1 or len(value) % size:
            continue
        words = array.array(codes[size])
        if words.itemsize != size:  # pragma: no cover - exotic platforms
            continue
        words.frombytes(value)
        words.byteswap()
        elem.value = words.tobytes()


def _make_ae(args: argparse.Namespace, batch: Batch) -> Any:
    from dicomnet.ae import AE

    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    for sop_class, syntaxes in batch.contexts:
        ae.add_requested_context(sop_class, list(syntaxes))
    return ae


def _send(args: argparse.Namespace) -> int:
    from dicomnet.errors import DicomNetError

    summary = Summary()
    infos: list[Part10Info] = []
    for path in iter_paths(args.paths, args.recursive):
        try:
            info = read_part10_info(path)
        except OSError as exc:
            LOG.warning("skipping %s: %s", path, exc.strerror or exc)
            summary.skipped += 1
            continue
        if info is None:
            LOG.warning("skipping %s: not a DICOM Part 10 file", path)
            summary.skipped += 1
            continue
        infos.append(info)
    if not infos:
        raise ToolError("no DICOM files to send", ExitCode.USAGE)
    batches = plan(infos)
    LOG.info("%d file(s), %d association(s)", len(infos), len(batches))
    progress = Progress(len(infos), sum(i.size for i in infos))
    start = time.monotonic()
    fatal: BaseException | None = None
    try:
        for batch in batches:
            ae = _make_ae(args, batch)
            assoc = associate(ae, args, args.host, args.port)
            try:
                for info in batch.files:
                    summary.sent += 1
                    try:
                        rsp = send_file(assoc, info)
                        code = status_of(rsp)
                    except ToolError as exc:
                        summary.failure += 1
                        summary.failures.append(exc.reason)
                        LOG.error("%s", exc.reason)
                        progress.advance(info.size)
                        continue
                    cat = status_category(code) if code >= 0 else "Failure"
                    if cat == "Success":
                        summary.success += 1
                        summary.nbytes += info.size
                    elif cat == "Warning":
                        summary.warning += 1
                        summary.nbytes += info.size
                        LOG.warning("%s: %s", info.path, describe_response(rsp, "C-STORE"))
                    else:
                        summary.failure += 1
                        what = describe_response(rsp, "C-STORE")
                        summary.failures.append(f"{info.path}: {what}")
                        LOG.error("%s: %s", info.path, what)
                    progress.advance(info.size)
                    if not assoc.is_established:
                        raise ToolError("the peer ended the association", ExitCode.ABORTED)
                assoc.release()
            except BaseException:
                if assoc.is_established:
                    assoc.abort()
                raise
    except (ToolError, DicomNetError, OSError) as exc:
        fatal = exc
    finally:
        progress.close()
    if not args.quiet:
        print(summary.line(time.monotonic() - start))
    if fatal is not None:
        raise fatal
    if summary.failure:
        first = summary.failures[0] if summary.failures else ""
        raise ToolError(
            f"{summary.failure} of {summary.sent} object(s) failed (first: {first})",
            ExitCode.FAILURE,
        )
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser("storescu", "Send DICOM files to a storage SCP (C-STORE).")
    p.add_argument("host")
    p.add_argument("port", type=port_number)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and directories to send")
    p.add_argument(
        "-r", "--recurse", dest="recursive", action="store_true", help="recurse into directories"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _send(args))
