"""What a server tells its operator: who asked for what, whether it was allowed, how it ended.

Theory of operation
-------------------
The acceptor (:mod:`dicomnet.server`) describes every association request and every served
operation with the small records below, and hands them to the AE's ``monitors`` (an audit
trail, metrics...). An AE may also carry an ``access`` policy, asked twice:

* :meth:`AccessPolicy.admit` with the :class:`AssociationInfo` of an A-ASSOCIATE-RQ (peer
  address, calling and called AE titles, the TLS client certificate's subject and how many
  associations that calling AE already has): None admits it, an ``(result, source, reason)``
  triple rejects it with that A-ASSOCIATE-RJ (PS3.8 Table 9-21);
* :meth:`AccessPolicy.permit` with the association and each request, before any handler runs:
  None serves it, ``(status, comment)`` answers it with that failure status (0124H Refused:
  Not Authorized, PS3.7 C.5.x) without calling the handler.

Client-supplied values (AE titles, UIDs, comments) reach logs and records through
:func:`clip`: never longer than :data:`MAX_VALUE` characters, marked when cut, control
characters replaced.

Monitors run on the event loop thread, in the middle of serving: they must not block (write a
line, bump a counter). Their exceptions are logged and otherwise ignored.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from dicomnet.dimse import primitives as P

if TYPE_CHECKING:
    from dicomnet.association import Association
    from dicomnet.datasource import DataSource
    from dicomnet.dimse.checker import DataSetChecker

__all__ = [
    "MAX_VALUE",
    "AccessPolicy",
    "AssociationInfo",
    "AssociationRecord",
    "Monitor",
    "OperationRecord",
    "clip",
    "notify",
    "operation_record",
]

LOGGER = logging.getLogger("dicomnet.monitor")

#: Longest client-supplied value written to a log or record (characters).
MAX_VALUE = 128


def clip(value: object, limit: int = MAX_VALUE) -> str:
    """``value`` as text fit for a log line: at most ``limit`` characters ("...[+N]" marks what
    was cut), control characters replaced by "?"."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = f"{text[:limit]}...[+{len(text) - limit}]"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text


class AssociationInfo:
    """An A-ASSOCIATE-RQ as the access policy sees it."""

    __slots__ = ("address", "called_ae", "calling_ae", "open_by_calling_ae", "port", "tls_subject")

    def __init__(self, address: str, port: int, calling_ae: str, called_ae: str,
                 tls_subject: str | None, open_by_calling_ae: int) -> None:  # fmt: skip
        self.address = address
        self.port = port
        self.calling_ae = calling_ae
        self.called_ae = called_ae
        #: the client certificate's subject ("CN=...,O=..."), None without TLS or certificate
        self.tls_subject = tls_subject
        #: associations this calling AE title already has open on this server
        self.open_by_calling_ae = open_by_calling_ae


class AssociationRecord:
    """One association's story: requested, accepted or rejected, ended."""

    __slots__ = ("address", "called_ae", "calling_ae", "ended", "outcome", "port", "rejection",
                 "started", "tls_subject")  # fmt: skip

    def __init__(self, address: str, port: int, calling_ae: str, called_ae: str,
                 tls_subject: str | None) -> None:  # fmt: skip
        self.address = address
        self.port = port
        self.calling_ae = calling_ae
        self.called_ae = called_ae
        self.tls_subject = tls_subject
        self.started = time.time()
        self.ended: float | None = None
        #: "accepted", "rejected", "released", "aborted" or "closed" (transport gone)
        self.outcome = "requested"
        self.rejection: tuple[int, int, int] | None = None


class OperationRecord:
    """One served request: what it was, for whom, how it ended."""

    __slots__ = ("association", "bytes", "comment", "completed", "duration", "failed",
                 "matches", "message_id", "operation", "sop_class", "sop_instance", "started",
                 "status", "study", "warning")  # fmt: skip

    def __init__(self, association: AssociationRecord, operation: str, message_id: int,
                 sop_class: str | None, sop_instance: str | None) -> None:  # fmt: skip
        self.association = association
        self.operation = operation
        self.message_id = message_id
        self.sop_class = sop_class
        self.sop_instance = sop_instance
        self.study: str | None = None
        self.started = time.time()
        self.duration = 0.0
        self.status: int | None = None
        self.comment: str | None = None
        self.matches = 0  # C-FIND: pending responses sent
        self.completed = self.failed = self.warning = 0  # C-GET / C-MOVE sub-operations
        self.bytes = 0  # C-STORE: data set size


class AccessPolicy:
    """Who may associate and do what (see the module docstring). This one admits everyone."""

    def admit(self, info: AssociationInfo) -> tuple[int, int, int] | None:
        return None

    def permit(self, assoc: Association, request: P.DIMSEPrimitive) -> tuple[int, str] | None:
        return None


class Monitor:
    """Receives the records of a server (no-ops here; subclass what you need)."""

    def association_started(self, record: AssociationRecord) -> None:
        """A request was accepted (``outcome`` "accepted") or rejected ("rejected")."""

    def association_ended(self, record: AssociationRecord) -> None:
        """An association (or a rejected request's connection) is over."""

    def operation_started(self, record: OperationRecord) -> None:
        """A request is about to be served."""

    def operation_finished(self, record: OperationRecord) -> None:
        """A request got its final response (or was refused by the access policy)."""

    def pending_changed(self, waiting: int) -> None:
        """Requests received but not yet being served, over all associations."""

    def stalled(self, record: AssociationRecord) -> None:
        """An association was aborted because the peer read nothing for too long."""


_OPERATION_NAMES = {
    P.C_ECHO: "C-ECHO", P.C_STORE: "C-STORE", P.C_FIND: "C-FIND", P.C_GET: "C-GET",
    P.C_MOVE: "C-MOVE", P.N_EVENT_REPORT: "N-EVENT-REPORT", P.N_GET: "N-GET", P.N_SET: "N-SET",
    P.N_ACTION: "N-ACTION", P.N_CREATE: "N-CREATE", P.N_DELETE: "N-DELETE",
}  # fmt: skip


# the requests with an Affected SOP Instance UID, and the DIMSE-N ones naming a Requested one
_AFFECTED_INSTANCE = (P.C_STORE, P.N_EVENT_REPORT, P.N_GET, P.N_SET, P.N_ACTION, P.N_CREATE,
                      P.N_DELETE)  # fmt: skip
_REQUESTED = (P.N_GET, P.N_SET, P.N_ACTION, P.N_DELETE)


def operation_record(assoc_record: AssociationRecord, request: P.DIMSEPrimitive,
                     message_id: int) -> OperationRecord:  # fmt: skip
    """The record of a request about to be served: what it is and what it is about."""
    sop_class = request.AffectedSOPClassUID or None
    sop_instance = None
    if isinstance(request, _AFFECTED_INSTANCE):
        sop_instance = request.AffectedSOPInstanceUID or None
    if isinstance(request, _REQUESTED):  # DIMSE-N requests name the SOP Instance they act on
        sop_class = sop_class or request.RequestedSOPClassUID
        sop_instance = sop_instance or request.RequestedSOPInstanceUID
    record = OperationRecord(assoc_record, _OPERATION_NAMES.get(type(request), request.SERVICE),
                             message_id, sop_class, sop_instance)  # fmt: skip
    if isinstance(request, P.C_STORE):
        data: DataSource | None = request.DataSet
        if data is not None:  # its size and study, from the reassembly's check
            record.bytes = int(data.size or 0)
            check: DataSetChecker | None = data.check
            record.study = None if check is None else check.study_uid
    elif isinstance(request, P.C_FIND | P.C_GET | P.C_MOVE):
        identifier: DataSource | None = request.Identifier
        if identifier is not None:  # the study asked for, when named
            record.study = _identifier_study(identifier)
    return record


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _identifier_study(identifier: DataSource) -> str | None:
    try:
        ds = identifier.decode()
    except Exception:
        return None
    value = ds.get("StudyInstanceUID")
    return clip(str(value)) if value else None


def notify(monitors: list[Monitor], method: str, *args: object) -> None:
    """Call ``method`` on every monitor; their exceptions are logged, never raised."""
    for monitor in monitors:
        try:
            getattr(monitor, method)(*args)  # the Monitor method named by the caller
        except Exception:
            LOGGER.exception("monitor %s.%s failed", type(monitor).__name__, method)
