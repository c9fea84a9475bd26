"""Sending a Storage Commitment Result as the SCP: :func:`send_event_report`, on the
association the request came on (:class:`Live`) or on one we requested (:func:`scp_context_id`).

Theory of operation
-------------------
We are the SCP of the Storage Commitment Push Model, and the sender of its N-EVENT-REPORT
(PS3.4 J.3.3.1). ``Association.send_n_event_report`` looks for a context on which *we* are
SCU, but on the acceptor side with default roles, and on a requestor that negotiated only the
SCP role (PS3.7 D.3.3.4), we are SCP. :func:`send_event_report` therefore builds the
N-EVENT-REPORT-RQ itself, on a context where we are SCP, and drives it with the association's
public pieces (Message ID, router, operation handle, DIMSE provider), from one of our worker
threads -- never the server's event loop, which receives the response meanwhile.

On the request's own association the report travels on the request's presentation context,
but only after our N-ACTION-RSP has been written: the SCU may release at any time after it
(PS3.4 J.3.2.1.2). A :class:`Live` binds EVT_DIMSE_SENT, EVT_RELEASED and EVT_ABORTED on that
association only, and sets ``ready`` when the response went out or the association ended.
On an association we requested, :func:`scp_context_id` picks the context on which the peer
granted us the SCP role -- or, from a peer that ignored our role selection, the context as
accepted (some SCUs take the report anyway, as pynetdicom's sender does).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from dicomnet import events as evt
from dicomnet.archive.commitment.codec import SOP_CLASS, WELL_KNOWN_INSTANCE
from dicomnet.association import Association, OperationHandle
from dicomnet.dimse import primitives as P
from dicomnet.errors import DicomNetError

if TYPE_CHECKING:
    from dicomnet.datasource import DataSource
    from dicomnet.events import Event

__all__ = ["Live", "scp_context_id", "send_event_report"]

# the logger of the package, as before the split into modules
LOG = logging.getLogger("dicomnet.archive.commitment")


def scp_context_id(assoc: Association) -> int:
    """A context for the Storage Commitment Push Model on which we are SCP; on a peer that
    ignored our role selection, the context as accepted (some SCUs take the report anyway,
    as pynetdicom's sender does)."""
    try:
        cx = assoc.find_context(SOP_CLASS, role="scp")
    except DicomNetError:
        cx = assoc.find_context(SOP_CLASS, role="scu")
        LOG.info("the peer did not grant us the SCP role for Storage Commitment: sending the "
                 "report on context %s anyway", cx.context_id)  # fmt: skip
    assert cx.context_id is not None
    return cx.context_id


def send_event_report(
    assoc: Association,
    context_id: int,
    event_information: DataSource,
    event_type: int,
) -> int | None:
    """Send a Storage Commitment Result (N-EVENT-REPORT-RQ, PS3.4 J.3.3.1) on ``context_id``
    of ``assoc`` and wait for the response: its status, or None when none came (association
    gone, DIMSE timeout). Call from a thread that may block (never a server's event loop):
    on an accepted association the worker waits while the loop receives."""
    prim = P.N_EVENT_REPORT(AffectedSOPClassUID=SOP_CLASS,
                            AffectedSOPInstanceUID=WELL_KNOWN_INSTANCE, EventTypeID=event_type)  # fmt: skip
    prim.EventInformation = event_information
    msg_id = assoc.next_message_id()
    prim.MessageID = msg_id
    handle = OperationHandle(assoc, msg_id, context_id, prim.SERVICE)
    with assoc.lock:
        assoc.router.open(msg_id, handle)
    try:
        assoc.dimse.send_msg(prim, context_id)
    except DicomNetError as exc:
        with assoc.lock:
            assoc.router.close(msg_id)
        LOG.info("N-EVENT-REPORT not sent: %s", exc)
        return None
    rsp = handle.final_response()
    if rsp is None or rsp.Status is None:
        return None
    return int(rsp.Status)


class Live:
    """The association a request came on, while its report may still go on it: ``ready`` is
    set once our N-ACTION-RSP was written (EVT_DIMSE_SENT) or the association ended
    (EVT_RELEASED / EVT_ABORTED); all three bound on that association only."""

    __slots__ = ("assoc", "context_id", "message_id", "ready")

    def __init__(self, assoc: Association, context_id: int, message_id: int) -> None:
        self.assoc = assoc
        self.context_id = context_id
        self.message_id = message_id
        self.ready = threading.Event()

    def on_sent(self, event: Event) -> None:
        command = getattr(event.message, "command_set", None)
        elements = getattr(command, "elements", None)
        # N-ACTION-RSP (Command Field 8130H, PS3.7 E.1) answering our request
        if isinstance(elements, dict) and elements.get(0x0100) == 0x8130 and \
                elements.get(0x0120) == self.message_id:  # fmt: skip
            self.ready.set()

    def ended(self, event: Event) -> None:
        self.ready.set()

    def bind(self) -> None:
        self.assoc.bind(evt.EVT_DIMSE_SENT, self.on_sent)
        self.assoc.bind(evt.EVT_RELEASED, self.ended)
        self.assoc.bind(evt.EVT_ABORTED, self.ended)

    def unbind(self) -> None:
        for event, handler in ((evt.EVT_DIMSE_SENT, self.on_sent),
                               (evt.EVT_RELEASED, self.ended), (evt.EVT_ABORTED, self.ended)):  # fmt: skip
            with contextlib.suppress(Exception):
                self.assoc.unbind(event, handler)
