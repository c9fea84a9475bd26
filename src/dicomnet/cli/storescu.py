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
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

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
WHOLE_FILE = 4 << 20  # files up to this size are read whole and sent from memory

_PREAMBLE = 128
class Part10Info(NamedTuple):
    """What the file meta header of one Part 10 file says."""

    path: str
    size: int
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset_offset: int


def read_part10_info(path: str) -> Part10Info | None:
    """Parse the File Meta Information of ``path`` (PS3.10 section 7.1), or None if it is not a
    Part 10 file with the three UIDs we need. Never raises for bad content; OSError propagates.

    The same parser as :meth:`DataSource.from_file` (which streams the file later), so the
    transfer syntax proposed and the data set bytes sent always agree.
    """
    from dicomnet.dimse.dataset import read_file_meta
    from dicomnet.errors import DicomNetError

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if f.read(_PREAMBLE + 4)[_PREAMBLE:] != b"DICM":
            return None
        f.seek(0)
        try:
            offset, values = read_file_meta(f, size)
        except DicomNetError:
            return None
    sop_class, sop_instance, ts = values.get(2), values.get(3), values.get(0x10)
    if not (sop_class and sop_instance and ts):
        return None
    return Part10Info(path, size, sop_class, sop_instance, ts, offset)


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


class Batch:
    """The contexts of one association and the files it sends."""

    __slots__ = ("contexts", "files")

    def __init__(
        self,
        contexts: list[tuple[str, tuple[str, ...]]] | None = None,
        files: list[Part10Info] | None = None,
    ) -> None:
        self.contexts: list[tuple[str, tuple[str, ...]]] = [] if contexts is None else contexts
        self.files: list[Part10Info] = [] if files is None else files


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


class Summary:
    """Counts of one storescu run (all associations)."""

    __slots__ = ("failure", "failures", "nbytes", "sent", "skipped", "success", "warning")

    def __init__(self) -> None:
        self.sent = self.success = self.warning = self.failure = 0
        self.skipped = self.nbytes = 0
        self.failures: list[str] = []

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
    """Send one file over ``assoc``; returns the final C-STORE-RSP primitive (``Status``,
    ``ErrorComment``...; None when no response came). No pydicom Dataset is built: sending
    Part 10 files never imports pydicom.

    See :func:`store_request`; this waits for the response.
    """
    return store_request(assoc, info).final_response()


_STORE_API: list[Any] = []


def _store_api() -> tuple[Any, Any]:
    """(DataSource, c_store_async), imported on first use (not at start-up), then cached."""
    if not _STORE_API:
        from dicomnet.dimse.dataset import DataSource
        from dicomnet.services.scu import c_store_async

        _STORE_API.extend((DataSource, c_store_async))
    return _STORE_API[0], _STORE_API[1]


def store_request(assoc: Association, info: Part10Info) -> Any:
    """Send the C-STORE-RQ of one file over ``assoc``; returns its operation handle (whose
    ``final_response()`` is the response primitive), without waiting for the response when
    the association has an asynchronous operations window (PS3.7 D.3.3.3) with room.

    The common case sends the file's data set bytes as they are (no decode; files up to
    WHOLE_FILE bytes read whole, larger ones streamed from disk): the
    file's transfer syntax was accepted, or it is Explicit/Implicit VR Little Endian and the
    other one was (the association re-encodes). Otherwise (big endian, or compressed data the
    peer refused) the file is decoded, decompressed if needed, and sent re-encoded.
    """
    DataSource, c_store_async = _store_api()

    accepted = _accepted_ts(assoc, info.sop_class_uid)
    if not accepted:
        raise ToolError(f"{info.path}: SOP class {info.sop_class_uid} not accepted by the peer")
    ts = info.transfer_syntax
    if ts in accepted or (ts in NATIVE_LE and NATIVE_LE.intersection(accepted)):
        if info.size <= WHOLE_FILE:
            # One open and one read; sent from memory, each message in one scatter-gather
            # write (a file-backed source is read and sent PDU by PDU).
            try:
                with open(info.path, "rb", buffering=0) as f:
                    data = f.read()
            except OSError as exc:
                raise ToolError(f"{info.path}: cannot read: {exc.strerror or exc}") from exc
            if len(data) < info.dataset_offset:
                raise ToolError(f"{info.path}: the file shrank while being sent")
            src = DataSource.from_bytes(memoryview(data)[info.dataset_offset :], ts)
        else:
            src = DataSource(
                path=info.path,
                offset=info.dataset_offset,
                size=info.size - info.dataset_offset,
                transfer_syntax=ts,
            )
        return c_store_async(
            assoc, src, sop_class_uid=info.sop_class_uid, sop_instance_uid=info.sop_instance_uid
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
    return c_store_async(assoc, ds)


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


class _Run:
    """The shared state of one storescu run: counts, progress, the first fatal error.

    With ``--parallel`` several threads (one association each) report here, under a lock."""

    def __init__(self, args: argparse.Namespace, summary: Summary, progress: Progress) -> None:
        self.args = args
        self.summary = summary
        self.progress = progress
        self.lock = threading.Lock()
        self.fatal: BaseException | None = None

    def record(self, info: Part10Info, rsp: Any = None, error: str | None = None) -> None:
        """Count one file's outcome: its C-STORE response, or ``error`` (sent, not stored)."""
        summary = self.summary
        with self.lock:
            summary.sent += 1
            self.progress.advance(info.size)
            if error is not None:
                summary.failure += 1
                summary.failures.append(error)
                LOG.error("%s", error)
                return
            code = status_of(rsp)
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

    def send_batch(self, batch: Batch) -> None:
        """One association: send ``batch.files`` (keeping up to the negotiated asynchronous
        operations window outstanding), release."""
        from dicomnet.errors import DicomNetError

        args = self.args
        try:
            ae = _make_ae(args, batch)
            kwargs: dict[str, Any] = {}
            if args.max_ops > 1:  # propose the window (PS3.7 D.3.3.3): 53H, off by default
                kwargs["max_operations_invoked"] = args.max_ops
            assoc = associate(ae, args, args.host, args.port, **kwargs)
            if args.max_ops > 1:
                LOG.info("asynchronous operations window: %d", assoc.async_window)
            try:
                inflight: deque[tuple[Part10Info, Any]] = deque()
                for info in batch.files:
                    if self.fatal is not None:
                        break  # another association failed: stop early
                    try:
                        # blocks only while the window is full (1 without a window)
                        handle = store_request(assoc, info)
                    except ToolError as exc:
                        self.record(info, error=exc.reason)
                        continue
                    inflight.append((info, handle))
                    # without a window each response is awaited at once; with one, the
                    # request above blocked while the window was full, so only collect here
                    sync = assoc.async_window <= 1
                    while inflight and (sync or inflight[0][1].done):
                        done_info, done = inflight.popleft()
                        self.record(done_info, done.final_response())
                    if not assoc.is_established:
                        break
                while inflight:
                    done_info, done = inflight.popleft()
                    self.record(done_info, done.final_response())
                if not assoc.is_established:
                    raise ToolError("the peer ended the association", ExitCode.ABORTED)
                assoc.release()
            except BaseException:
                if assoc.is_established:
                    assoc.abort()
                raise
        except (ToolError, DicomNetError, OSError) as exc:
            with self.lock:
                if self.fatal is None:
                    self.fatal = exc


def split(files: Sequence[Part10Info], parts: int) -> list[list[Part10Info]]:
    """Deal ``files`` round-robin into at most ``parts`` non-empty lists (``--parallel``)."""
    parts = max(1, min(parts, len(files)))
    return [list(files[i::parts]) for i in range(parts)]


def _send(args: argparse.Namespace) -> int:
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
    state = _Run(args, summary, progress)
    start = time.monotonic()
    try:
        for batch in batches:
            if args.parallel <= 1 or len(batch.files) <= 1:
                state.send_batch(batch)
            else:
                # --parallel N: the files of this batch dealt over N associations at once
                parts = [Batch(list(batch.contexts), files)
                         for files in split(batch.files, args.parallel)]  # fmt: skip
                threads = [
                    threading.Thread(target=state.send_batch, args=(part,), daemon=True,
                                     name=f"storescu-{n}")
                    for n, part in enumerate(parts)
                ]  # fmt: skip
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            if state.fatal is not None:
                break
    finally:
        progress.close()
    if not args.quiet:
        print(summary.line(time.monotonic() - start))
    if state.fatal is not None:
        raise state.fatal
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
    p.add_argument(
        "--max-ops", type=_positive_int, default=1, metavar="N",
        help="propose an asynchronous operations window of N outstanding C-STOREs (PS3.7 "
        "D.3.3.3) and use what the peer grants (default 1: not proposed; some peers refuse it)",
    )
    p.add_argument(
        "--parallel", type=_positive_int, default=1, metavar="N",
        help="send over N associations at once, the files dealt among them (default 1)",
    )
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _send(args))
