"""``dicomnet storescu HOST PORT PATH... [-r]``: send DICOM files with C-STORE.

Theory of operation
-------------------
1. **Scan.** Every file given (and every file in the folders given, with ``-r``) is identified by
   :func:`dicomnet.transcode.inspect_file`: its transfer syntax from the File Meta Information
   (PS3.10 7.1), or inferred from the data set when there is none (sent with a warning, as DCMTK
   does), and the SOP Class/Instance UIDs *of the data set* (PS3.4 B.2.1; a meta header that
   disagrees gets a warning). Only the first KiB of each file are read. A file that is not
   DICOM is skipped with a warning; one that cannot be sent (no SOP Class UID, broken meta) is
   reported with its reason; either way the run goes on and the summary counts it.
2. **Plan.** Files are grouped by SOP class. Each SOP class gets one presentation context per
   transfer syntax its files are stored in, plus Explicit and Implicit VR Little Endian, each in
   a context of its own (:func:`dicomnet.transcode.propose_syntaxes`), so the peer can accept
   each syntax separately; ``-x?`` options change that list (:mod:`dicomnet.cli.syntaxes`).
   PS3.8 9.3.2.2 allows 128 contexts per association: more SOP classes are split over several
   associations, one after the other.
3. **Send.** Each file goes through the library's sender
   (:func:`dicomnet.services.sending.prepare_store`): byte for byte, streamed from disk, when
   its syntax was accepted; converted into the best accepted syntax otherwise (lossless
   re-encoding, decompression, or the compression asked for with ``-x?``). A file that fails
   (no context, conversion impossible, failure status) is reported and the next one is sent;
   an association the peer aborts is replaced by a new one for the remaining files. ``-v``
   prints one line per file; a summary counts every file given. Exit status 0 when every file
   was stored (warnings included) or skipped as not DICOM, 1 when any failed.
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
from typing import TYPE_CHECKING

from dicomnet.ae import AE
from dicomnet.cli.common import (
    ExitCode,
    Progress,
    Response,
    ToolError,
    associate,
    configure_ae,
    describe_response,
    human_bytes,
    port_number,
    positive_int,
    run,
    setup_logging,
    status_category,
    status_of,
    tool_parser,
)
from dicomnet.cli.syntaxes import add_propose_options, proposal
from dicomnet.dimse.primitives import DIMSEPrimitive
from dicomnet.errors import DicomNetError
from dicomnet.transcode import InstanceFile, UnsendableFile, inspect_file, propose_syntaxes

if TYPE_CHECKING:
    from dicomnet.association import Association, OperationHandle

LOG = logging.getLogger("dicomnet.cli.storescu")

MAX_CONTEXTS = 128  # PS3.8 section 9.3.2.2: context IDs are odd integers 1..255
#: An association the peer ends is replaced this many times in a row without a file getting
#: through before the run gives up on the remaining files.
MAX_REASSOCIATIONS = 3


def read_part10_info(path: str) -> InstanceFile | None:
    """The :class:`~dicomnet.transcode.InstanceFile` of ``path``, or None when it cannot be
    sent (not DICOM, broken meta, no SOP Class/Instance UID). OSError propagates."""
    try:
        return inspect_file(path)
    except UnsendableFile:
        return None


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
        files: list[InstanceFile] | None = None,
    ) -> None:
        self.contexts: list[tuple[str, tuple[str, ...]]] = [] if contexts is None else contexts
        self.files: list[InstanceFile] = [] if files is None else files


def contexts_for(
    sop_class: str,
    syntaxes: Iterable[str],
    preferred: Sequence[str] = (),
    uncompressed: Sequence[str] = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
) -> list[tuple[str, tuple[str, ...]]]:
    """Contexts proposed for one SOP class: one per transfer syntax (see the module docstring)."""
    return [(sop_class, (ts,)) for ts in propose_syntaxes(syntaxes, preferred, uncompressed)]


def plan(
    infos: Sequence[InstanceFile],
    max_contexts: int = MAX_CONTEXTS,
    preferred: Sequence[str] = (),
    uncompressed: Sequence[str] = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
    own: bool = True,
) -> list[Batch]:
    """Group files into associations of at most ``max_contexts`` presentation contexts."""
    by_class: dict[str, list[InstanceFile]] = {}
    for info in infos:
        by_class.setdefault(info.sop_class_uid, []).append(info)
    batches: list[Batch] = []
    current = Batch()
    for sop_class, files in by_class.items():
        stored = (f.transfer_syntax for f in files) if own else ()
        ctxs = contexts_for(sop_class, stored, preferred, uncompressed)
        if len(ctxs) > max_contexts:  # absurd, but never propose more than allowed
            ctxs = ctxs[: max_contexts]
        if current.contexts and len(current.contexts) + len(ctxs) > max_contexts:
            batches.append(current)
            current = Batch()
        current.contexts.extend(ctxs)
        current.files.extend(files)
    if current.contexts:
        batches.append(current)
    return batches


class Summary:
    """Counts of one storescu run (all associations): every file given is counted once."""

    __slots__ = ("failure", "failures", "nbytes", "sent", "skipped", "success", "warning")

    def __init__(self) -> None:
        self.sent = self.success = self.warning = self.failure = 0
        self.skipped = self.nbytes = 0
        self.failures: list[str] = []

    def line(self, elapsed: float) -> str:
        rate = human_bytes(self.nbytes / max(elapsed, 1e-6))
        total = self.sent + self.skipped
        return (
            f"{total} object(s), {human_bytes(self.nbytes)} in {elapsed:.2f} s ({rate}/s): "
            f"{self.success} stored, {self.warning} with warnings, {self.failure} failed, "
            f"{self.skipped} skipped"
        )


def send_file(assoc: Association, info: InstanceFile) -> DIMSEPrimitive | None:
    """Send one file over ``assoc``; returns the final C-STORE-RSP primitive (``Status``,
    ``ErrorComment``...; None when no response came). See :func:`store_request`."""
    return store_request(assoc, info).final_response()


def store_request(assoc: Association, info: InstanceFile,
                  preferred: Sequence[str] = ()) -> OperationHandle:  # fmt: skip
    """Send the C-STORE-RQ of one file over ``assoc``; returns its operation handle (whose
    ``final_response()`` is the response primitive), without waiting for the response when
    the association has an asynchronous operations window (PS3.7 D.3.3.3) with room.

    The file goes as it is when its syntax was accepted, converted otherwise
    (:mod:`dicomnet.services.sending`); a file that cannot be sent raises a DicomNetError
    whose message says why."""
    return assoc.send_c_store_async(info, preferred=preferred)


def _make_ae(args: argparse.Namespace, batch: Batch) -> AE:
    ae = AE(ae_title=args.aet)
    configure_ae(ae, args)
    for sop_class, syntaxes in batch.contexts:
        ae.add_requested_context(sop_class, list(syntaxes))
    return ae


def _lost(assoc: Association) -> str:
    reason = assoc.failure_reason
    if assoc.is_aborted:
        return f"the association was aborted ({reason})" if reason else "the association was aborted"
    return f"the association ended ({reason})" if reason else "the association ended"


class _Run:
    """The shared state of one storescu run: counts, progress, the first fatal error.

    With ``--parallel`` several threads (one association each) report here, under a lock."""

    def __init__(self, args: argparse.Namespace, summary: Summary, progress: Progress) -> None:
        self.args = args
        self.summary = summary
        self.progress = progress
        self.lock = threading.Lock()
        self.fatal: BaseException | None = None
        self.any_association = False
        self.preferred, self.uncompressed, self.own = proposal(args.propose)

    def record(self, info: InstanceFile, rsp: Response = None, error: str | None = None) -> None:
        """Count one file's outcome: its C-STORE response, or ``error`` (not stored)."""
        summary = self.summary
        with self.lock:
            summary.sent += 1
            self.progress.advance(info.size)
            if error is not None:
                summary.failure += 1
                summary.failures.append(f"{info.path}: {error}")
                LOG.error("%s: %s", info.path, error)
                return
            code = status_of(rsp)
            cat = status_category(code) if code >= 0 else "Failure"
            if cat == "Success":
                summary.success += 1
                summary.nbytes += info.size
                LOG.info("%s: stored (%s)", info.path, info.sop_instance_uid)
            elif cat == "Warning":
                summary.warning += 1
                summary.nbytes += info.size
                LOG.warning("%s: %s", info.path, describe_response(rsp, "C-STORE"))
            else:
                summary.failure += 1
                what = describe_response(rsp, "C-STORE")
                summary.failures.append(f"{info.path}: {what}")
                LOG.error("%s: %s", info.path, what)

    def _associate(self, batch: Batch) -> Association:
        args = self.args
        ae = _make_ae(args, batch)
        # propose the window (PS3.7 D.3.3.3): 53H, off by default
        window = args.max_ops if args.max_ops > 1 else None
        assoc = associate(ae, args, args.host, args.port, max_operations_invoked=window)
        if args.max_ops > 1:
            LOG.info("asynchronous operations window: %d", assoc.async_window)
        with self.lock:
            self.any_association = True
        return assoc

    def send_batch(self, batch: Batch) -> None:
        """Send ``batch.files`` over one association (a new one when the peer ends it), keeping
        up to the negotiated asynchronous operations window outstanding."""
        todo: deque[InstanceFile] = deque(batch.files)
        barren = 0  # associations in a row that ended before any file got an answer
        while todo and self.fatal is None:
            try:
                assoc = self._associate(batch)
            except (ToolError, DicomNetError, OSError) as exc:
                with self.lock:
                    first = not self.any_association
                if first:  # nothing ever got through: the peer is not there (exit 3/4/6)
                    with self.lock:
                        if self.fatal is None:
                            self.fatal = exc
                    return
                reason = exc.reason if isinstance(exc, ToolError) else str(exc)
                while todo:
                    self.record(todo.popleft(), error=f"not sent: {reason}")
                return
            answered = self._send_on(assoc, todo)
            if assoc.is_established:
                assoc.release()
                return
            barren = 0 if answered else barren + 1
            if todo and barren >= MAX_REASSOCIATIONS:
                reason = _lost(assoc)
                while todo:
                    self.record(todo.popleft(), error=f"not sent: {reason} {barren} times")
                return
            if todo:
                LOG.warning("%s: %d file(s) left, requesting a new association",
                            _lost(assoc), len(todo))  # fmt: skip

    def _send_on(self, assoc: Association, todo: deque[InstanceFile]) -> int:
        """Send from ``todo`` until it is empty or the association ends; returns how many
        files got a response."""
        answered = 0
        inflight: deque[tuple[InstanceFile, OperationHandle]] = deque()
        try:
            while todo and self.fatal is None and assoc.is_established:
                info = todo.popleft()
                try:
                    # blocks only while the window is full (1 without a window)
                    handle = store_request(assoc, info, self.preferred)
                except DicomNetError as exc:
                    if not assoc.is_established:
                        todo.appendleft(info)  # the association died under us: retry later
                        break
                    self.record(info, error=str(exc))
                    continue
                inflight.append((info, handle))
                sync = assoc.async_window <= 1
                while inflight and (sync or inflight[0][1].done):
                    done_info, done = inflight.popleft()
                    rsp = done.final_response()
                    if rsp is None and not assoc.is_established:
                        self.record(done_info, error=f"no response: {_lost(assoc)}")
                    else:
                        answered += 1
                        self.record(done_info, rsp)
            while inflight:
                done_info, done = inflight.popleft()
                rsp = done.final_response()
                if rsp is None:
                    self.record(done_info, error=f"no response: {_lost(assoc)}")
                else:
                    answered += 1
                    self.record(done_info, rsp)
        except BaseException:
            if assoc.is_established:
                assoc.abort()
            raise
        return answered


def split(files: Sequence[InstanceFile], parts: int) -> list[list[InstanceFile]]:
    """Deal ``files`` round-robin into at most ``parts`` non-empty lists (``--parallel``)."""
    parts = max(1, min(parts, len(files)))
    return [list(files[i::parts]) for i in range(parts)]


def _scan(args: argparse.Namespace, summary: Summary) -> list[InstanceFile]:
    infos: list[InstanceFile] = []
    for path in iter_paths(args.paths, args.recursive):
        try:
            info = inspect_file(path)
        except OSError as exc:
            summary.sent += 1
            summary.failure += 1
            summary.failures.append(f"{path}: cannot read: {exc.strerror or exc}")
            LOG.error("%s: cannot read: %s", path, exc.strerror or exc)
            continue
        except UnsendableFile as exc:
            if exc.skip:
                LOG.warning("skipping %s: %s", path, exc)
                summary.skipped += 1
            else:
                summary.sent += 1
                summary.failure += 1
                summary.failures.append(f"{path}: {exc}")
                LOG.error("%s: %s", path, exc)
            continue
        for warning in info.warnings:
            LOG.warning("%s: %s", path, warning)
        infos.append(info)
    return infos


def _send(args: argparse.Namespace) -> int:
    summary = Summary()
    infos = _scan(args, summary)
    if not infos and not summary.failure:
        raise ToolError("no DICOM files to send", ExitCode.USAGE)
    progress = Progress(len(infos), sum(i.size for i in infos))
    state = _Run(args, summary, progress)
    batches = plan(infos, preferred=state.preferred, uncompressed=state.uncompressed,
                   own=state.own)  # fmt: skip
    LOG.info("%d file(s), %d association(s)", len(infos), len(batches))
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
        "--max-ops", type=positive_int, default=1, metavar="N",
        help="propose an asynchronous operations window of N outstanding C-STOREs (PS3.7 "
        "D.3.3.3) and use what the peer grants (default 1: not proposed; some peers refuse it)",
    )
    p.add_argument(
        "--parallel", type=positive_int, default=1, metavar="N",
        help="send over N associations at once, the files dealt among them (default 1)",
    )
    # pynetdicom's storescu proposes every storage class unless -cx; ours proposes only what
    # the files need (step 2 above), so the flag asks for what is done anyway
    p.add_argument(
        "-cx", "--required-contexts", action="store_true",
        help="propose only the contexts the files need (always the case; pynetdicom spelling)",
    )
    add_propose_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    return run(lambda: _send(args))
