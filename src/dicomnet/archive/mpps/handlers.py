"""The N-CREATE and N-SET handlers of the MPPS SCP (PS3.4 F.7.2.1, F.7.2.2):
:func:`mpps_handlers` binds them to an :class:`~dicomnet.archive.mpps.store.MPPSStore`.

Theory of operation
-------------------
Each handler answers a request of another SOP class with 0118H, decodes the request's data set
(an empty one when it carried none, so that the checks name what is missing; 0110H when it
cannot be decoded), and hands it to the store, which checks and commits it before the handler
returns: the response leaves only after the step reached the disk. A refusal,
:class:`~dicomnet.archive.mpps.rules.MPPSError`, becomes the status data set of PS3.7 Annex C:
Status, Error Comment (0000,0902) and, where an attribute is at fault, Offending Element
(0000,0901) and Error ID (see the table in :mod:`~dicomnet.archive.mpps.rules`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from dicomnet import events as evt
from dicomnet.archive.mpps.rules import MPPS_SOP_CLASS, MPPSError
from dicomnet.archive.mpps.store import MPPSStore
from dicomnet.dimse.status import Status

if TYPE_CHECKING:
    from dicomnet.events import Event, EventType

#: The logger of the old single module, shared by the package's modules.
LOG = logging.getLogger("dicomnet.archive.mpps")


def mpps_handlers(store: MPPSStore) -> list[tuple[EventType, Callable[[Event], object]]]:
    """EVT_N_CREATE and EVT_N_SET handlers serving ``store`` (run in the handler pool: each
    request waits for its commit to reach the disk). Each has ``sop_classes``, the SOP class it
    answers, for a caller that shares an event between several handlers."""
    return [(evt.EVT_N_CREATE, MPPSCreateHandler(store)), (evt.EVT_N_SET, MPPSSetHandler(store))]


class MPPSCreateHandler:
    """EVT_N_CREATE: :meth:`MPPSStore.create` (PS3.4 F.7.2.1.3); Success with the stored
    attributes, or the refusal's status."""

    sop_classes: frozenset[str] = frozenset({MPPS_SOP_CLASS})

    def __init__(self, store: MPPSStore) -> None:
        self.store = store

    def __call__(self, event: Event, *args: object) -> object:
        request = event.request
        sop_class = getattr(request, "AffectedSOPClassUID", None)
        if sop_class not in self.sop_classes:
            return _refusal(Status.NO_SUCH_SOP_CLASS, f"N-CREATE of {sop_class} not served here")
        uid = getattr(request, "AffectedSOPInstanceUID", None)
        attributes = _request_dataset(event)
        if isinstance(attributes, MPPSError):
            return attributes.status()
        try:
            stored = self.store.create(uid, attributes, calling_ae_title=_calling(event))
        except MPPSError as exc:
            LOG.warning("MPPS N-CREATE %s refused: 0x%04X %s", uid or "(new)", exc.code,
                        exc.comment)  # fmt: skip
            return exc.status()
        return Status.SUCCESS, stored


class MPPSSetHandler:
    """EVT_N_SET: :meth:`MPPSStore.update` (PS3.4 F.7.2.2.3); Success with the modified
    attributes, or the refusal's status. The SOP class is the request's *Requested* SOP Class
    UID (an N-SET-RQ has no Affected one, PS3.7 10.1.3)."""

    sop_classes: frozenset[str] = frozenset({MPPS_SOP_CLASS})

    def __init__(self, store: MPPSStore) -> None:
        self.store = store

    def __call__(self, event: Event, *args: object) -> object:
        request = event.request
        sop_class = getattr(request, "RequestedSOPClassUID", None)
        if sop_class not in self.sop_classes:
            return _refusal(Status.NO_SUCH_SOP_CLASS, f"N-SET of {sop_class} not served here")
        uid = str(getattr(request, "RequestedSOPInstanceUID", None) or "")
        modification = _request_dataset(event)
        if isinstance(modification, MPPSError):
            return modification.status()
        try:
            reply = self.store.update(uid, modification)
        except MPPSError as exc:
            LOG.warning("MPPS N-SET %s refused: 0x%04X %s", uid, exc.code, exc.comment)
            return exc.status()
        return Status.SUCCESS, reply


def _request_dataset(event: Event) -> Dataset | MPPSError:
    """The request's data set; an empty one when it carried none (the checks then name what
    is missing); an MPPSError (0110H) when it cannot be decoded."""
    if event.request is None or event.request.payload is None:
        return Dataset()
    try:
        return event.dataset
    except Exception as exc:
        return MPPSError(Status.PROCESSING_FAILURE, f"cannot decode the data set: {exc}")


def _calling(event: Event) -> str:
    try:
        return str(event.assoc.calling_ae_title or "").strip()
    except Exception:  # an event without an association (tests, tools)
        return ""


def _refusal(code: int, comment: str) -> Dataset:
    return MPPSError(code, comment).status()
