"""The workflow services of ``dicomnet qrscp``: what a department runs besides store and query.

Theory of operation
-------------------
Each service is switched on by its options and lives in its own archive module; this module
only turns options into services and services into what the server needs -- presentation
contexts to accept, handlers to bind, and something to close at shutdown:

* ``--worklist DIR``: Modality Worklist Information Model - FIND (PS3.4 K) from the DICOM /
  DICOM JSON files in DIR (:mod:`dicomnet.archive.worklist`). The archive's C-FIND handler
  already answers Q/R; C-FIND requests are routed by their Affected SOP Class UID.
* ``--mpps``: Modality Performed Procedure Step SCP (PS3.4 F, :mod:`dicomnet.archive.mpps`);
  ``--mpps-forward`` forwards each step.
* ``--commitment``: Storage Commitment Push Model SCP (PS3.4 J,
  :mod:`dicomnet.archive.commitment`); reports go back on the association or, once it is
  gone, to the requestor's address from the known destinations.

Where their state lives (:func:`workflow_location`): with a SQLite index, in the storage
folder's ``workflow.sqlite``; with a PostgreSQL index (archive nodes), in that same database,
in tables of their own -- every node serves MPPS and storage commitment on one shared state
(:mod:`dicomnet.archive.workflow_db`), and the notifiers of all nodes share which studies wait
to be announced and which were (one notification per study, kept across restarts). A node spools its commitment reports in its own folder.
* ``--ian AET=HOST:PORT``: Instance Availability Notification SCU (PS3.4 R,
  :mod:`dicomnet.archive.ian`): a study quiet for ``--ian-quiet`` seconds is announced.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from dicomnet.cli.common import ExitCode, fail, parse_destination
from dicomnet.dimse import primitives as P

if TYPE_CHECKING:
    from dicomnet.archive.scp import Archive
    from dicomnet.events import Event, EventType
    from dicomnet.settings import Settings

LOG = logging.getLogger("dicomnet.qrscp")

__all__ = ["Workflow", "add_options", "prepare", "start", "workflow_location"]

HandlerList = list[tuple["EventType", Callable[["Event"], object]]]


def add_options(parser: argparse.ArgumentParser) -> None:
    """The workflow options of qrscp."""
    group = parser.add_argument_group("workflow services")
    group.add_argument(
        "--worklist", metavar="DIR",
        help="serve Modality Worklist items (PS3.4 K) from the DICOM / DICOM JSON files in DIR "
        "(added, changed and removed files are seen at the next query)",
    )  # fmt: skip
    group.add_argument(
        "--mpps", action="store_true",
        help="Modality Performed Procedure Step SCP (PS3.4 F): steps kept in "
        "STORAGE/workflow.sqlite, or in the --db PostgreSQL database",
    )  # fmt: skip
    group.add_argument(
        "--mpps-forward", action="append", type=parse_destination, default=[],
        metavar="AET=HOST:PORT", help="also forward each accepted N-CREATE/N-SET there "
        "(repeatable; implies --mpps)",
    )  # fmt: skip
    group.add_argument(
        "--mpps-strict", action="store_true",
        help="also enforce what PS3.4 F.7.2 asks of the SCU (type 2 attributes on N-CREATE, "
        "the final state's attributes on COMPLETED)",
    )  # fmt: skip
    group.add_argument(
        "--commitment", action="store_true",
        help="Storage Commitment Push Model SCP (PS3.4 J): requests kept in "
        "STORAGE/workflow.sqlite, or in the --db PostgreSQL database; reports on the "
        "request's association, else to the "
        "requestor's --destination / [[peer]] port",
    )  # fmt: skip
    group.add_argument(
        "--commitment-attempts", type=int, default=6, metavar="N",
        help="tries of a report on a new association (default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--ian", action="append", type=parse_destination, default=[], metavar="AET=HOST:PORT",
        help="send Instance Availability Notifications (PS3.4 R) of each study, once it is "
        "quiet, to this destination (repeatable)",
    )  # fmt: skip
    group.add_argument(
        "--ian-quiet", type=float, default=30.0, metavar="SECONDS",
        help="a study is announced when nothing was stored into it for this long "
        "(default: %(default)s)",
    )  # fmt: skip


def handlers(archive: HandlerList, workflow: HandlerList) -> HandlerList:
    """The archive's handlers with the workflow services' added. An event both bind (C-FIND:
    Q/R and the worklist) gets one handler that picks by the request's SOP class: the
    workflow handler answers its own SOP classes (``handler.sop_classes``), the archive the
    rest."""
    merged = dict(archive)
    for event, handler in workflow:
        base = merged.get(event)
        if base is None:
            merged[event] = handler
            continue
        classes = frozenset(getattr(handler, "sop_classes", ()))
        merged[event] = _by_sop_class(classes, handler, base)
    return list(merged.items())


_REQUESTED = (P.N_SET, P.N_GET, P.N_ACTION, P.N_DELETE)


def _by_sop_class(
    classes: frozenset[str], mine: Callable[[Event], object], other: Callable[[Event], object]
) -> Callable[[Event], object]:
    def route(event: Event) -> object:
        request = event.request
        sop_class = None if request is None else request.AffectedSOPClassUID
        if sop_class is None and isinstance(request, _REQUESTED):
            sop_class = request.RequestedSOPClassUID  # N-SET, N-GET, N-ACTION, N-DELETE
        if isinstance(sop_class, str):
            sop_class = sop_class.rstrip("\0 ")
        return mine(event) if sop_class in classes else other(event)

    return route


def workflow_location(archive: Archive) -> str:
    """Where the workflow services of ``archive`` keep their state (see the module docstring):
    the PostgreSQL index's URL, or ``STORAGE/workflow.sqlite``."""
    # lazy: the archive's backends, only with --mpps / --commitment
    from dicomnet.archive.backend import is_postgres
    from dicomnet.archive.workflow_db import workflow_path

    if is_postgres(archive.db_path):
        return archive.db_path
    return workflow_path(archive.files.root)


def prepare(args: argparse.Namespace, archive: Archive) -> None:
    """Before ``--workers`` processes start: make ``STORAGE/workflow.sqlite`` (in WAL mode)
    if a workflow service will use it. Two workers creating the file at once could see
    ``database is locked``: turning a new file's journal into a write-ahead log takes an
    exclusive lock that SQLite does not wait for; on a file already in WAL mode it is a no-op."""
    if not (args.mpps or args.mpps_forward or args.commitment or args.ian):
        return
    # lazy: the archive's backends, only with a workflow service
    from dicomnet.archive.workflow_db import open_workflow

    backend, owned = open_workflow(workflow_location(archive),
                                   durable=archive.durability == "safe")  # fmt: skip
    try:
        backend.tables()  # connects: the file and its journal mode exist from here on
    finally:
        if owned:
            backend.close()


class Workflow:
    """The workflow services started for one qrscp process."""

    def __init__(self) -> None:
        self.handlers: HandlerList = []
        self.contexts: list[str] = []
        self.banner: list[str] = []
        self._closers: list[Callable[[], None]] = []

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def start(args: argparse.Namespace, archive: Archive, ae: Settings) -> Workflow:
    """Start what the options ask for; the caller binds ``handlers`` and calls ``close()``."""
    flow = Workflow()
    if args.worklist:
        # lazy: only with --worklist
        from dicomnet import events as evt
        from dicomnet.archive.worklist import WORKLIST_FIND, WorklistStore, worklist_handler

        if not os.path.isdir(args.worklist):
            fail(f"--worklist {args.worklist}: not a directory", ExitCode.USAGE)
        store = WorklistStore(args.worklist)
        flow.handlers.append((evt.EVT_C_FIND, worklist_handler(store)))
        flow.contexts.append(WORKLIST_FIND)
        flow.banner.append(f"qrscp: Modality Worklist from {store.folder}")
    if args.mpps or args.mpps_forward:
        # lazy: only with --mpps
        from dicomnet.archive.mpps import MPPS_SOP_CLASS, MPPSStore, mpps_handlers

        mpps = MPPSStore(workflow_location(archive), forward=args.mpps_forward, ae_title=args.aet,
                         strict=args.mpps_strict, durable=archive.durability == "safe")  # fmt: skip
        flow._closers.append(mpps.close)
        flow.handlers += mpps_handlers(mpps)
        flow.contexts.append(MPPS_SOP_CLASS)
        flow.banner.append(f"qrscp: MPPS steps in {mpps.path}")
        for aet, host, port in args.mpps_forward:
            flow.banner.append(f"qrscp: MPPS forwarded to {aet} = {host}:{port}")
    if args.commitment:
        # lazy: only with --commitment
        from dicomnet.archive.commitment import SOP_CLASS as COMMITMENT
        from dicomnet.archive.commitment import CommitmentService

        commitment = CommitmentService(
            archive.index, archive.destinations,
            workflow_location(archive), ae_title=args.aet, spool_dir=archive.state_dir,
            settings=ae, retrieve_ae_title=args.aet, max_attempts=args.commitment_attempts,
            open_stored=archive.files.open,
        )  # fmt: skip
        flow._closers.append(commitment.close)
        flow.handlers += commitment.handlers()
        flow.contexts.append(COMMITMENT)
        known = ", ".join(sorted(archive.destinations)) or "the request's association only"
        flow.banner.append(f"qrscp: Storage Commitment SCP (reports to: {known})")
        commitment.resume()
    if args.ian:
        # lazy: only with --ian
        from dicomnet.archive.ian import IANotifier

        notifier = IANotifier(archive.index, args.ian, ae_title=args.aet,
                              quiet_seconds=args.ian_quiet,
                              state=workflow_location(archive))  # fmt: skip
        archive.on_stored = notifier.instance_stored
        flow._closers.append(notifier.close)
        for aet, host, port in args.ian:
            flow.banner.append(f"qrscp: Instance Availability Notification to {aet} = {host}:{port}")
    for uid in flow.contexts:
        ae.add_supported_context(uid)
    return flow
