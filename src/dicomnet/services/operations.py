"""The DIMSE operations an association offers, declared once for every way of running them.

Theory of operation
-------------------
:class:`Operations` declares each SCU operation of PS3.7 -- C-ECHO, C-STORE, C-FIND, C-GET,
C-MOVE, C-CANCEL and the six DIMSE-N services -- once: its signature, its documentation, and
the request it sends (:mod:`dicomnet.services.requests`). *How* a request is carried out is
left to the subclass through four methods, one per shape of result:

* :meth:`Operations._status` -- one request, one final response: the status (C-ECHO,
  C-STORE, N-DELETE);
* :meth:`Operations._pair` -- one request, one final response with a data set: ``(status,
  data set)`` (the DIMSE-N services; a Success or Warning response without one gives an empty
  ``Dataset``, as pynetdicom's, see :func:`~dicomnet.services.payloads.reply_payload`);
* :meth:`Operations._stream` -- one request, Pending responses then a final one: the ``(status,
  identifier)`` pairs as they come (C-FIND, C-GET, C-MOVE);
* :meth:`Operations._cancel` -- a C-CANCEL-RQ, which has no response (PS3.7 9.3.2.3).

The result types are the class's type parameters: the blocking
:class:`~dicomnet.association.Association` returns the values themselves (a status ``Dataset``,
an iterator of pairs), the :class:`~dicomnet.aio_association.AsyncAssociation` awaitables and an
async iterator of the same values. Statuses are pydicom ``Dataset`` objects holding ``Status``
and the status elements the peer sent (:mod:`dicomnet.services.responses`); an **empty**
``Dataset`` means no response came (DIMSE timeout -- the association is then aborted -- or the
association died).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Generic, TypeVar

from dicomnet.assocbase import AssociationBase
from dicomnet.dimse import primitives as P
from dicomnet.services import requests
from dicomnet.services.payloads import DataSetLike
from dicomnet.services.requests import Outgoing

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.services.sending import StoreInput

__all__ = ["Operations"]

StatusT = TypeVar("StatusT")
PairT = TypeVar("PairT")
StreamT = TypeVar("StreamT")
DoneT = TypeVar("DoneT")


def _tags(identifier_list: Sequence[object]) -> list[int]:
    """Attribute tags from ints, (group, element) pairs or keywords."""
    # lazy: pydicom's tag parsing, only for N-GET (pydicom costs clients ~150 ms of start-up)
    from pydicom.tag import Tag

    tags = []
    for t in identifier_list:
        if not isinstance(t, int | str | tuple):
            raise TypeError(f"an attribute tag is an int, a (group, element) pair or a keyword: {t!r}")
        tags.append(int(Tag(t)))
    return tags


class Operations(AssociationBase, Generic[StatusT, PairT, StreamT, DoneT]):
    """The SCU operations of an association (see the module docstring)."""

    # --- how requests are carried out (the subclass's part) ----------------------------------
    @abstractmethod
    def _status(self, request: Outgoing, msg_id: int | None) -> StatusT:
        """Send ``request``; the final response's status."""

    @abstractmethod
    def _pair(self, request: Outgoing, msg_id: int | None) -> PairT:
        """Send ``request``; the final response's status and decoded data set."""

    @abstractmethod
    def _stream(self, request: Outgoing, msg_id: int | None) -> StreamT:
        """Send ``request``; each response's status and decoded data set, as they come."""

    @abstractmethod
    def _cancel(self, msg_id: int, context_id: int | None) -> DoneT:
        """Send C-CANCEL-RQ for the outstanding request ``msg_id``."""

    # --- DIMSE-C ------------------------------------------------------------------------------
    def send_c_echo(self, msg_id: int | None = None) -> StatusT:
        """C-ECHO (PS3.7 9.1.5): the status (empty if no response)."""
        return self._status(Outgoing(partial(requests.echo, self)), msg_id)

    def send_c_store(
        self,
        dataset: StoreInput,
        msg_id: int | None = None,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
        *,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> StatusT:
        """C-STORE (PS3.7 9.1.1) one instance: ``dataset`` is a pydicom Dataset, a Part 10
        file path or a DataSource (then give ``sop_class_uid``/``sop_instance_uid`` or it is
        decoded to find them). The file goes as it is when its transfer syntax was accepted,
        converted otherwise. ``originator_aet``/``originator_id``: set when storing as a C-MOVE
        sub-operation (PS3.7 Table 9.1-1)."""
        build = partial(requests.store, self, dataset, priority, originator_aet, originator_id,
                        sop_class_uid, sop_instance_uid)  # fmt: skip
        return self._status(Outgoing(build, blocking=True), msg_id)

    def send_c_find(
        self, dataset: Dataset, query_model: str, msg_id: int | None = None, priority: int = 2
    ) -> StreamT:
        """C-FIND (PS3.7 9.1.2): ``(status, identifier)`` per response; the final one has no
        identifier."""
        build = partial(requests.query, self, P.C_FIND, dataset, query_model, priority)
        return self._stream(Outgoing(build), msg_id)

    def send_c_get(
        self, dataset: Dataset, query_model: str, msg_id: int | None = None, priority: int = 2
    ) -> StreamT:
        """C-GET (PS3.7 9.1.3): ``(status, identifier)`` per response; the C-STORE
        sub-operations go to the EVT_C_STORE handler (which needs the SCP role for their SOP
        classes, PS3.4 C.4.3.3)."""
        build = partial(requests.query, self, P.C_GET, dataset, query_model, priority)
        return self._stream(Outgoing(build), msg_id)

    def send_c_move(
        self,
        dataset: Dataset,
        move_aet: str | bytes,
        query_model: str,
        msg_id: int | None = None,
        priority: int = 2,
    ) -> StreamT:
        """C-MOVE (PS3.7 9.1.4) to ``move_aet``: ``(status, identifier)`` per response."""
        build = partial(requests.query, self, P.C_MOVE, dataset, query_model, priority, move_aet)
        return self._stream(Outgoing(build), msg_id)

    def send_c_cancel(
        self, msg_id: int, context_id: int | None = None, query_model: str | None = None
    ) -> DoneT:
        """C-CANCEL the outstanding C-FIND/C-GET/C-MOVE ``msg_id`` (PS3.7 9.3.2.3), on
        ``context_id``, or on the context of ``query_model`` (the request's SOP class), or on
        the context the request was sent on."""
        if context_id is None and query_model is not None:
            context_id = self.find_context(query_model).context_id
        return self._cancel(msg_id, context_id)

    # --- DIMSE-N ------------------------------------------------------------------------------
    def _n(self, prim: P.DIMSEPrimitive, abstract_syntax: str, field: str | None = None,
           payload: DataSetLike | None = None) -> Outgoing:  # fmt: skip
        return Outgoing(partial(requests.n_request, self, prim, abstract_syntax, field, payload))

    def send_n_event_report(
        self,
        dataset: DataSetLike | None,
        event_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> PairT:
        """N-EVENT-REPORT (PS3.7 10.1.1): ``(status, event reply)``."""
        prim = P.N_EVENT_REPORT(
            AffectedSOPClassUID=class_uid, AffectedSOPInstanceUID=instance_uid, EventTypeID=event_type
        )
        return self._pair(self._n(prim, meta_uid or class_uid, "EventInformation", dataset), msg_id)

    def send_n_get(
        self,
        identifier_list: Sequence[object],
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> PairT:
        """N-GET (PS3.7 10.1.2) of the attributes ``identifier_list`` (tags, (group, element)
        pairs or keywords; empty = all): ``(status, attribute list)``."""
        prim = P.N_GET(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
        if identifier_list:
            prim.AttributeIdentifierList = _tags(identifier_list)
        return self._pair(self._n(prim, meta_uid or class_uid), msg_id)

    def send_n_set(
        self,
        dataset: DataSetLike,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> PairT:
        """N-SET (PS3.7 10.1.3) with the modification list ``dataset``: ``(status, attribute
        list)``."""
        prim = P.N_SET(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
        return self._pair(self._n(prim, meta_uid or class_uid, "ModificationList", dataset), msg_id)

    def send_n_action(
        self,
        dataset: DataSetLike | None,
        action_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> PairT:
        """N-ACTION (PS3.7 10.1.4) ``action_type`` with the action information ``dataset``:
        ``(status, action reply)``."""
        prim = P.N_ACTION(
            RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid,
            ActionTypeID=action_type,
        )  # fmt: skip
        return self._pair(self._n(prim, meta_uid or class_uid, "ActionInformation", dataset), msg_id)

    def send_n_create(
        self,
        dataset: DataSetLike | None,
        class_uid: str,
        instance_uid: str | None = None,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> PairT:
        """N-CREATE (PS3.7 10.1.5); ``instance_uid`` None lets the SCP choose it:
        ``(status, attribute list)``."""
        prim = P.N_CREATE(AffectedSOPClassUID=class_uid)
        if instance_uid is not None:
            prim.AffectedSOPInstanceUID = instance_uid
        return self._pair(self._n(prim, meta_uid or class_uid, "AttributeList", dataset), msg_id)

    def send_n_delete(
        self,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> StatusT:
        """N-DELETE (PS3.7 10.1.6): the status."""
        prim = P.N_DELETE(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
        return self._status(self._n(prim, meta_uid or class_uid), msg_id)
