"""Associations: the negotiated state of one DICOM conversation and the operations on it.

Theory of operation
-------------------
An :class:`Association` is the application's handle on one association (PS3.7 section 7.1,
PS3.8 section 7.1), in either role:

* ``mode="requestor"``: made by :meth:`dicomnet.ae.AE.associate`, driven by the blocking
  :class:`~dicomnet.transport.sync.SyncDriver` in the calling thread;
* ``mode="acceptor"``: made by :mod:`dicomnet.server` around its asyncio driver; SCU operations
  (e.g. the C-STORE sub-operations of a C-GET SCP) are then called from a worker thread.

It holds what negotiation produced -- :attr:`accepted_contexts` / :attr:`rejected_contexts`
(:class:`~dicomnet.presentation.PresentationContext` objects with the accepted transfer syntax
and the roles *we* may play), :attr:`requestor` / :attr:`acceptor` (:class:`ServiceUser`: AE
title, address, Maximum Length, implementation UID/version, user identity, ...), the
asynchronous operations window -- and its life-cycle flags (:attr:`is_established`,
:attr:`is_rejected`, :attr:`is_aborted`, :attr:`is_released`).

Drivers report every Upper Layer event (:mod:`dicomnet.ul.events`) to
:meth:`Association.handle_event`, on whichever thread runs the driver; P-DATA goes on to the
DIMSE service provider (:attr:`dimse`, built lazily). The association satisfies the provider's
``AssociationLike`` contract (``dul``, ``dimse_timeout``, ``peer_max_pdata_length``,
``accepted_context_ids``, ``clock()``).

SCU operations (``send_c_echo`` ... ``send_n_delete``) are implemented in
:mod:`dicomnet.services.scu` and bound here as methods. They return statuses as pydicom
``Dataset`` objects holding ``Status`` and whatever status elements the peer sent
(ErrorComment, OffendingElement, ErrorID, sub-operation counts, ...; PS3.7 Annex C); an **empty**
``Dataset`` means no response came: the DIMSE timeout expired or the association died (it is
then aborted). C-FIND/C-GET/C-MOVE are generators yielding ``(status, identifier)`` as the
responses arrive.

For asyncio code, :meth:`dicomnet.ae.AE.associate_async` returns an
:class:`~dicomnet.services.scu.AsyncAssociation` (also importable from here), which wraps an
``Association`` driven by the event loop through the asyncio driver instead of a blocking
socket.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from dicomnet._record import Record
from dicomnet.datasource import SpoolingFactory
from dicomnet.errors import DicomNetError, ProtocolError
from dicomnet.presentation import PresentationContext, context_result_text
from dicomnet.transport.base import monotonic
from dicomnet.ul.events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    PDataReceived,
    ReleaseConfirmed,
    ReleaseRequested,
    TransportClosed,
)
from dicomnet.ul.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    RoleSelection,
    SubItem,
    UserIdentityRQ,
    uid_norm,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.ae import AE
    from dicomnet.services.scu import OperationHandle

__all__ = [
    "Association",
    "AssociationNotEstablishedError",
    "NoPresentationContextError",
    "ServiceUser",
    "rejection_text",
]

LOGGER = logging.getLogger("dicomnet.association")

# PS3.8 Table 9-21 (A-ASSOCIATE-RJ result / source / reason)
_RJ_RESULT = {1: "rejected-permanent", 2: "rejected-transient"}
_RJ_SOURCE = {
    1: "service-user",
    2: "service-provider (ACSE related function)",
    3: "service-provider (presentation related function)",
}
_RJ_REASON = {
    1: {1: "no-reason-given", 2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized", 7: "called-AE-title-not-recognized"},
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {1: "temporary-congestion", 2: "local-limit-exceeded"},
}  # fmt: skip


def rejection_text(result: int, source: int, reason: int) -> str:
    """The meaning of an A-ASSOCIATE-RJ (PS3.8 Table 9-21)."""
    return (
        f"{_RJ_RESULT.get(result, f'result {result}')}, "
        f"{_RJ_SOURCE.get(source, f'source {source}')}: "
        f"{_RJ_REASON.get(source, {}).get(reason, f'reason {reason}')}"
    )


class AssociationNotEstablishedError(DicomNetError, RuntimeError):
    """An operation was invoked on an association that is not (or no longer) established."""


class NoPresentationContextError(DicomNetError, ValueError):
    """No accepted presentation context fits the requested operation (SOP class, transfer
    syntax and role). A ``ValueError`` too, as pynetdicom users expect."""


class ServiceUser(Record, frozen=False):
    """One side of an association as negotiated (PS3.8 section 7.1.1)."""

    __slots__ = (
        "address",
        "ae_title",
        "async_ops_window",
        "extended_negotiation",
        "implementation_class_uid",
        "implementation_version_name",
        "maximum_length",
        "port",
        "requested_contexts",
        "role_selections",
        "user_identity",
        "user_identity_response",
    )
    ae_title: str
    address: str
    port: int
    maximum_length: int
    implementation_class_uid: str | None
    implementation_version_name: str | None
    async_ops_window: tuple[int, int] | None
    role_selections: dict[str, RoleSelection]
    extended_negotiation: list[SubItem]
    user_identity: UserIdentityRQ | None
    user_identity_response: bytes | None
    requested_contexts: list[PresentationContext]

    def __init__(
        self,
        ae_title: str = "",
        address: str = "",
        port: int = 0,
        maximum_length: int = 0,
        implementation_class_uid: str | None = None,
        implementation_version_name: str | None = None,
        async_ops_window: tuple[int, int] | None = None,
        role_selections: dict[str, RoleSelection] | None = None,
        extended_negotiation: list[SubItem] | None = None,
        user_identity: UserIdentityRQ | None = None,
        user_identity_response: bytes | None = None,
        requested_contexts: list[PresentationContext] | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.address = address
        self.port = port
        self.maximum_length = maximum_length
        self.implementation_class_uid = implementation_class_uid
        self.implementation_version_name = implementation_version_name
        self.async_ops_window = async_ops_window
        self.role_selections = {} if role_selections is None else role_selections
        self.extended_negotiation = [] if extended_negotiation is None else extended_negotiation
        self.user_identity = user_identity
        self.user_identity_response = user_identity_response
        self.requested_contexts = [] if requested_contexts is None else requested_contexts

    @property
    def maximum_pdu_size(self) -> int:  # pynetdicom spelling
        return self.maximum_length


class Association:
    """One association (see the module docstring)."""

    def __init__(
        self,
        ae: AE,
        mode: Literal["requestor", "acceptor"] = "requestor",
        driver: Any = None,
    ) -> None:
        if mode not in ("requestor", "acceptor"):
            raise ValueError("mode must be 'requestor' or 'acceptor'")
        self.ae = ae
        self.mode = mode
        self.dul: Any = driver
        self._dimse: Any = None
        self.dimse_timeout = ae.dimse_timeout
        self.acse_timeout = ae.acse_timeout
        self.network_timeout = ae.network_timeout
        self.connection_timeout = ae.connection_timeout
        self.requestor = ServiceUser()
        self.acceptor = ServiceUser()
        self.accepted_contexts: list[PresentationContext] = []
        self.rejected_contexts: list[PresentationContext] = []
        self._by_id: dict[int, PresentationContext] = {}
        self.accepted_context_ids: set[int] = set()
        # find_context() answers in the SCU role: (the accepted_contexts list they were found
        # in, {abstract syntax or (abstract syntax, transfer syntax) argument: context})
        self._scu_context_cache: tuple[
            object, dict[str | tuple[str, str], PresentationContext]
        ] = (None, {})
        # accepted_syntaxes() answers: (the accepted_contexts list, {(abstract syntax, role):
        # [transfer syntax, ...]})
        self._syntax_cache: tuple[object, dict[tuple[str, str], list[str]]] = (None, {})
        self.is_established = False
        self.is_rejected = False
        self.is_aborted = False
        self.is_released = False
        self.release_requested_by_peer = False
        self.result: int | None = None
        self.result_source: int | None = None
        self.result_reason: int | None = None
        self.abort_source: int | None = None
        self.abort_reason: int | None = None
        self.failure_reason: str | None = None
        """Why the association is not (or no longer) usable, in words; None when fine."""
        self.error: BaseException | None = None
        self.async_window = 1
        """Outstanding operations we may invoke at once (negotiated 53H; 1 = synchronous)."""
        if ae.max_message_size is not None:
            # reassembly cap passed to the DIMSE provider (None: the provider's default)
            self.max_message_size = ae.max_message_size
        prefix = ae.spool_prefix
        # where the DIMSE reassembler keeps received data sets: large ones in spool files in
        # ae.spool_dir, behind ae.spool_prefix(assoc, context_id, command) when set
        self._payloads = SpoolingFactory(
            ae.spool_dir,
            None if prefix is None else lambda ctx, command: prefix(self, ctx, command),
        )
        if getattr(ae, "check_received_datasets", True):
            self.check_dataset = self._dataset_checker  # passed to the DIMSE provider
        self._handlers: dict[Any, list[tuple[Callable[..., Any], tuple[Any, ...]]]] = {}
        self._lock = threading.RLock()
        self._next_id = 0
        self._rq: AAssociateRQ | None = None
        self.outstanding: dict[int, OperationHandle] = {}
        """Message ID -> handle of each request still waiting for its final response."""

    # --- AssociationLike (DIMSE provider contract) ------------------------------------------
    @staticmethod
    def clock() -> float:
        return monotonic()

    @property
    def peer_max_pdata_length(self) -> int:
        """The peer's Maximum Length (0 = unlimited; the fragmenter caps it locally)."""
        peer = self.acceptor if self.mode == "requestor" else self.requestor
        return peer.maximum_length

    @property
    def dimse(self) -> Any:
        """The :class:`~dicomnet.dimse.provider.DIMSEServiceProvider` (created on first use)."""
        if self._dimse is None:
            with self._lock:
                if self._dimse is None:
                    from dicomnet.dimse.provider import DIMSEServiceProvider

                    self._dimse = DIMSEServiceProvider(
                        self,
                        payloads=self._payloads,
                        max_message_size=getattr(self, "max_message_size", None),
                        check_dataset=getattr(self, "check_dataset", None),
                        transfer_syntax_of=self.transfer_syntax_of,
                    )
        return self._dimse

    @dimse.setter
    def dimse(self, provider: Any) -> None:
        self._dimse = provider

    # --- negotiation results ----------------------------------------------------------------
    def apply_negotiation(self, rq: AAssociateRQ, ac: AAssociateAC) -> None:
        """Fill contexts, roles, limits and identities from an accepted negotiation.

        Used by both roles: the requestor when the A-ASSOCIATE-AC arrives, the server when it
        sends one. Roles follow PS3.7 D.3.3.4: without a role selection answer for a SOP class
        the requestor is SCU and the acceptor SCP; with one, the requestor may be SCU when
        ``scu_role`` is 1 and SCP when ``scp_role`` is 1 (the acceptor the converse).
        """
        req_ui, ac_ui = rq.user_information, ac.user_information
        self.requestor.ae_title = rq.calling_ae_title.strip()
        self.acceptor.ae_title = rq.called_ae_title.strip()
        self.requestor.maximum_length = req_ui.maximum_length or 0
        self.acceptor.maximum_length = ac_ui.maximum_length or 0
        self.requestor.implementation_class_uid = req_ui.implementation_class_uid
        self.requestor.implementation_version_name = req_ui.implementation_version_name
        self.acceptor.implementation_class_uid = ac_ui.implementation_class_uid
        self.acceptor.implementation_version_name = ac_ui.implementation_version_name
        self.requestor.user_identity = req_ui.user_identity_rq
        uid_ac = ac_ui.user_identity_ac
        self.acceptor.user_identity_response = None if uid_ac is None else uid_ac.server_response
        self.requestor.role_selections = {
            uid_norm(r.sop_class_uid): r for r in req_ui.role_selections
        }
        self.acceptor.role_selections = {uid_norm(r.sop_class_uid): r for r in ac_ui.role_selections}
        self.requestor.extended_negotiation = [
            *req_ui.extended_negotiations,
            *req_ui.common_extended_negotiations,
        ]
        self.acceptor.extended_negotiation = list(ac_ui.extended_negotiations)
        rq_win, ac_win = req_ui.async_ops_window, ac_ui.async_ops_window
        if rq_win is not None:
            self.requestor.async_ops_window = (
                rq_win.max_operations_invoked,
                rq_win.max_operations_performed,
            )
        if ac_win is not None:
            self.acceptor.async_ops_window = (
                ac_win.max_operations_invoked,
                ac_win.max_operations_performed,
            )
        # Outstanding operations the requestor may invoke (PS3.7 D.3.3.3): the acceptor's
        # answer bounds ours; no answer means 1 (synchronous).
        if ac_win is None or rq_win is None:
            window = 1
        else:
            ours = rq_win.max_operations_invoked
            theirs = ac_win.max_operations_invoked
            window = min(w for w in (ours, theirs, 1 << 16) if w > 0)
        self.async_window = window if self.mode == "requestor" else 1

        proposed = {pc.context_id: pc for pc in rq.presentation_contexts}
        accepted: list[PresentationContext] = []
        rejected: list[PresentationContext] = []
        roles = self.acceptor.role_selections
        for pc_ac in ac.presentation_contexts:
            pc_rq = proposed.get(pc_ac.context_id)
            if pc_rq is None:
                continue  # the codec/FSM already refused unknown IDs; be defensive
            cx = PresentationContext.from_wire(
                pc_ac.context_id, pc_rq.abstract_syntax, pc_rq.transfer_syntaxes
            )
            abstract = cx.abstract_syntax
            cx.result = pc_ac.result
            if pc_ac.result == 0 and pc_ac.transfer_syntax is not None:
                cx.transfer_syntax = uid_norm(pc_ac.transfer_syntax)
                role = roles.get(abstract)
                req_role = self.requestor.role_selections.get(abstract)
                if role is None or req_role is None:
                    req_scu, req_scp = True, False
                else:
                    req_scu = bool(role.scu_role and req_role.scu_role)
                    req_scp = bool(role.scp_role and req_role.scp_role)
                cx.scu_role = None if role is None else bool(role.scu_role)
                cx.scp_role = None if role is None else bool(role.scp_role)
                if self.mode == "requestor":
                    cx.as_scu, cx.as_scp = req_scu, req_scp
                else:
                    cx.as_scu, cx.as_scp = req_scp, req_scu
                accepted.append(cx)
            else:
                if pc_ac.result == 0:
                    cx.result = 2  # acceptance without a transfer syntax: unusable
                rejected.append(cx)
        # contexts the acceptor did not answer at all count as rejected (no-reason)
        answered = {pc.context_id for pc in ac.presentation_contexts}
        for cid, pc_rq in proposed.items():
            if cid not in answered:
                cx = PresentationContext.from_wire(
                    cid, pc_rq.abstract_syntax, pc_rq.transfer_syntaxes
                )
                cx.result = 2
                rejected.append(cx)
        self.accepted_contexts = accepted
        self.rejected_contexts = rejected
        self._by_id = {cx.context_id: cx for cx in accepted if cx.context_id is not None}
        self.accepted_context_ids = set(self._by_id)

    def context_by_id(self, context_id: int) -> PresentationContext | None:
        """The accepted context with ``context_id``, or None."""
        return self._by_id.get(context_id)

    def find_context(
        self,
        abstract_syntax: str,
        transfer_syntax: str | Sequence[str] | None = None,
        role: Literal["scu", "scp"] = "scu",
    ) -> PresentationContext:
        """An accepted context for ``abstract_syntax`` on which we may play ``role``.

        With ``transfer_syntax`` (one UID or a preference list) only contexts accepted with
        one of them qualify, earlier ones first. Raises :class:`NoPresentationContextError`.
        """
        if not self.is_established:
            raise AssociationNotEstablishedError(
                f"the association is not established ({self.failure_reason or 'released'})"
            )
        cache_key: str | tuple[str, str] | None = None
        if role == "scu" and isinstance(abstract_syntax, str):
            if transfer_syntax is None:
                cache_key = abstract_syntax
            elif type(transfer_syntax) is str:
                cache_key = (abstract_syntax, transfer_syntax)
        if cache_key is not None:
            # One search per SOP class, not one per operation: the answer depends only on the
            # accepted contexts, i.e. on the list object apply_negotiation() installed.
            cached_for, cache = self._scu_context_cache
            if cached_for is self.accepted_contexts:
                hit = cache.get(cache_key)
                if hit is not None:
                    return hit
            else:
                cache = {}
                self._scu_context_cache = (self.accepted_contexts, cache)
        abstract_syntax = uid_norm(str(abstract_syntax))
        found = [
            cx
            for cx in self.accepted_contexts
            if cx.abstract_syntax == abstract_syntax and (cx.as_scu if role == "scu" else cx.as_scp)
        ]
        if transfer_syntax is not None:
            wanted = [transfer_syntax] if isinstance(transfer_syntax, str) else list(transfer_syntax)
            for ts in wanted:
                for cx in found:
                    if cx.transfer_syntax == ts:
                        return cx
            found = []
        if not found:
            ts_text = "" if transfer_syntax is None else f" with transfer syntax {transfer_syntax}"
            raise NoPresentationContextError(
                f"no accepted presentation context for {abstract_syntax}{ts_text} "
                f"in the {role.upper()} role"
            )
        if cache_key is not None:
            cache[cache_key] = found[0]
        return found[0]

    def _dataset_checker(self, context_id: int, info: Any, elements: Any) -> Any:
        """A checker for the data set of a received C-STORE-RQ (PS3.4 B.2.1: the data set must
        be readable and be an instance of the context's SOP class); None for other messages."""
        if info.command_field != 0x0001:
            return None
        from dicomnet.dimse.checker import DataSetChecker

        cx = self.context_by_id(context_id)
        elements = elements or {}

        def uid(key: int) -> str | None:
            value = elements.get(key)
            return value.strip("\0 ") if isinstance(value, str) else None

        return DataSetChecker(
            cx.transfer_syntax if cx is not None else None,
            sop_class=uid(0x0002),
            sop_instance=uid(0x1000),
            context_class=cx.abstract_syntax if cx is not None else None,
        )

    def accepted_syntaxes(
        self, abstract_syntax: str, role: Literal["scu", "scp"] = "scu"
    ) -> list[str]:
        """The transfer syntaxes accepted for ``abstract_syntax`` on contexts where we may play
        ``role``, in context order, without repeats (empty when there is none)."""
        cached_for, cache = self._syntax_cache
        if cached_for is not self.accepted_contexts:
            cache = {}
            self._syntax_cache = (self.accepted_contexts, cache)
        key = (abstract_syntax, role)
        hit = cache.get(key)
        if hit is None:
            uid = uid_norm(str(abstract_syntax))
            hit = list(
                dict.fromkeys(
                    cx.transfer_syntax
                    for cx in self.accepted_contexts
                    if cx.abstract_syntax == uid
                    and cx.transfer_syntax
                    and (cx.as_scu if role == "scu" else cx.as_scp)
                )
            )
            cache[key] = hit
        return hit

    @property
    def rejection_text(self) -> str | None:
        """The meaning of the A-ASSOCIATE-RJ we received, or None."""
        if self.result is None or self.result_source is None or self.result_reason is None:
            return None
        return rejection_text(self.result, self.result_source, self.result_reason)

    # --- handlers ---------------------------------------------------------------------------
    def bind(
        self, event: Any, handler: Callable[..., Any], args: Sequence[Any] | None = None
    ) -> None:
        """Bind ``handler`` to ``event`` (an ``EVT_*`` of :mod:`dicomnet.events`) on this
        association: e.g. EVT_C_STORE for the C-STORE sub-operations of a C-GET, or
        EVT_N_EVENT_REPORT for reports sent by the peer, EVT_RELEASED / EVT_ABORTED. The
        handler is called as ``handler(event, *args)``; an intervention event keeps only the
        latest handler."""
        with self._lock:
            bound = self._handlers.setdefault(event, [])
            if getattr(event, "intervention", False):
                bound.clear()
            bound[:] = [b for b in bound if b[0] != handler]
            bound.append((handler, tuple(args or ())))

    def unbind(self, event: Any, handler: Callable[..., Any]) -> None:
        with self._lock:
            bound = self._handlers.get(event, [])
            bound[:] = [b for b in bound if b[0] != handler]

    def get_handlers(self, event: Any) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
        """The ``(handler, extra args)`` bindings of ``event``."""
        return list(self._handlers.get(event, ()))

    def _notify(self, name: str) -> None:
        """Call the notification handlers bound to ``EVT_<name>`` (errors logged)."""
        if not self._handlers:
            return
        from dicomnet import events

        evt = getattr(events, name)
        for fn, args in self.get_handlers(evt):
            try:
                fn(events.Event(self, evt), *args)
            except Exception:
                LOGGER.exception("%s handler failed", name)

    # --- Upper Layer events (from any driver) -----------------------------------------------
    def handle_event(self, event: Any) -> None:
        """Take one Upper Layer event from the driver (see :mod:`dicomnet.ul.events`)."""
        kind = type(event)
        if kind is PDataReceived:
            try:
                self.dimse.receive_primitive(event.pdu)
            except ProtocolError as exc:
                # PS3.8 Table 9-26: a DIMSE-level violation by the peer ends the association
                LOGGER.warning("protocol error from the peer: %s", exc)
                self.failure_reason = f"protocol error by the peer: {exc}"
                self._abort_driver(exc.abort_source, exc.abort_reason)
                self._finish(aborted=True)
        elif kind is AssociationAccepted:
            self._on_accepted(event.pdu)
        elif kind is AssociationRejected:
            self._on_rejected(event.pdu)
        elif kind is ReleaseRequested:
            self.release_requested_by_peer = True
        elif kind is ReleaseConfirmed:
            self._finish(released=True)
        elif kind is Aborted:
            self.abort_source, self.abort_reason = event.source, event.reason
            if self.failure_reason is None:
                self.failure_reason = getattr(self.dul, "failure", None)
            if self.failure_reason is None:
                if event.local:
                    self.failure_reason = (
                        f"protocol error by the peer: we sent A-ABORT (reason {event.reason})"
                    )
                elif event.source == 2 and event.reason == 0:
                    self.failure_reason = "the connection was lost"
                else:
                    who = "peer" if event.source == 0 else "service provider"
                    self.failure_reason = f"aborted by the {who} (reason {event.reason})"
            self._finish(aborted=True)
        elif kind is TransportClosed:
            if self.release_requested_by_peer and not self.is_aborted:
                self._finish(released=True)
            elif self.is_established:
                if self.failure_reason is None:
                    self.failure_reason = (
                        getattr(self.dul, "failure", None) or "the connection was closed by the peer"
                    )
                self._finish(aborted=True)

    def _abort_driver(self, source: int, reason: int) -> None:
        from dicomnet.transport.sync import SyncDriver

        if isinstance(self.dul, SyncDriver):
            self.dul.abort(source, reason)
        elif self.dul is not None:
            self.dul.abort()

    def transfer_syntax_of(self, context_id: int) -> str | None:
        """The accepted transfer syntax of ``context_id`` (used by the DIMSE provider)."""
        cx = self._by_id.get(context_id)
        return None if cx is None else cx.transfer_syntax

    def _on_accepted(self, ac: AAssociateAC) -> None:
        rq = self._rq if self._rq is not None else self.dul.conn.local_rq
        self.apply_negotiation(rq, ac)
        self.is_established = True
        self._notify("EVT_ACCEPTED")

    max_message_size: int

    def _on_rejected(self, rj: AAssociateRJ) -> None:
        self.is_rejected = True
        self.result, self.result_source, self.result_reason = rj.result, rj.source, rj.reason
        self.failure_reason = "association rejected: " + rejection_text(
            rj.result, rj.source, rj.reason
        )
        self._notify("EVT_REJECTED")

    def _finish(self, *, released: bool = False, aborted: bool = False) -> None:
        was = self.is_established
        self.is_established = False
        if self.mode == "requestor" and self._dimse is not None:
            # The blocking driver feeds the provider in this thread: drop a message cut off
            # mid-transfer and its spool file. (The server does this on its loop thread for
            # acceptor-side associations, where reassembly runs.)
            self._dimse.connection_lost()
        if released and not self.is_aborted and not self.is_released:
            self.is_released = True
            if was:
                self._notify("EVT_RELEASED")
        if aborted and not self.is_released and not self.is_aborted:
            self.is_aborted = True
            self._notify("EVT_ABORTED")

    # --- life cycle -------------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        return self.is_established and self.dul is not None and bool(self.dul.is_alive)

    def release(self) -> None:
        """Release the association (A-RELEASE, PS3.8 section 7.2); aborts if the peer does
        not answer within ``acse_timeout``. Safe to call more than once."""
        if self.dul is None:
            return
        if self.is_established:
            self.dul.release(self.acse_timeout)
            if not self.is_aborted:
                self._finish(released=True)
        else:
            self.dul.close()

    def abort(self) -> None:
        """Abort the association (A-ABORT, source service-user, PS3.8 section 7.3)."""
        if self.dul is None:
            return
        was = self.is_established
        self.dul.abort()
        if was or not self.is_released:
            if self.failure_reason is None:
                self.failure_reason = "aborted by us"
            self._finish(aborted=True)

    def __enter__(self) -> Association:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.release()
        else:
            self.abort()

    def __repr__(self) -> str:
        if self.is_established:
            state = "established"
        elif self.is_rejected:
            state = "rejected"
        elif self.is_released:
            state = "released"
        elif self.is_aborted:
            state = "aborted"
        else:
            state = f"not established ({self.failure_reason})"
        return (
            f"<Association {self.mode} {self.requestor.ae_title or '?'} -> "
            f"{self.acceptor.ae_title or '?'} {state}>"
        )

    # --- SCU operations (implemented in dicomnet.services.scu) ------------------------------
    def next_message_id(self) -> int:
        """A Message ID (1..65535) not used by any outstanding request (PS3.7 9.1.1.1.1)."""
        with self._lock:
            for _ in range(65535):
                self._next_id = self._next_id % 65535 + 1
                if self._next_id not in self.outstanding:
                    return self._next_id
        raise DicomNetError("no free Message ID")

    def send_c_echo(self, msg_id: int | None = None) -> Dataset:
        """C-ECHO (PS3.7 9.1.5): the status Dataset (empty if no response)."""
        from dicomnet.services import scu

        return scu.c_echo(self, msg_id)

    def send_c_store(
        self,
        dataset: Any,
        msg_id: int | None = None,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
        *,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> Dataset:
        """C-STORE (PS3.7 9.1.1) one instance; see :func:`dicomnet.services.scu.c_store`."""
        from dicomnet.services import scu

        return scu.c_store(
            self, dataset, msg_id, priority, originator_aet, originator_id,
            sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid,
        )  # fmt: skip

    def send_c_store_async(
        self,
        dataset: Any,
        msg_id: int | None = None,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
        *,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> OperationHandle:
        """Send a C-STORE-RQ without waiting for its response (asynchronous operations window,
        PS3.7 D.3.3.3): returns a handle whose ``result()`` gives the status Dataset. Blocks
        only while :attr:`async_window` requests are already outstanding (with the default
        window of 1 it behaves like :meth:`send_c_store`)."""
        from dicomnet.services import scu

        return scu.c_store_async(
            self, dataset, msg_id, priority, originator_aet, originator_id,
            sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid,
        )  # fmt: skip

    def store_many(self, datasets: Iterable[Any], priority: int = 2) -> Iterator[tuple[Any, Dataset]]:
        """C-STORE every item of ``datasets`` keeping up to :attr:`async_window` requests
        outstanding; yields ``(item, status)`` in completion order."""
        from dicomnet.services import scu

        return scu.store_many(self, datasets, priority)

    def send_c_find(
        self,
        dataset: Dataset,
        query_model: str,
        msg_id: int | None = None,
        priority: int = 2,
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """C-FIND (PS3.7 9.1.2): yields ``(status, identifier)`` per response."""
        from dicomnet.services import scu

        return scu.c_find(self, dataset, query_model, msg_id, priority)

    def send_c_get(
        self,
        dataset: Dataset,
        query_model: str,
        msg_id: int | None = None,
        priority: int = 2,
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """C-GET (PS3.7 9.1.3): yields ``(status, identifier)`` per response; the C-STORE
        sub-operations go to the EVT_C_STORE handler (needs the SCP role for their classes)."""
        from dicomnet.services import scu

        return scu.c_get(self, dataset, query_model, msg_id, priority)

    def send_c_move(
        self,
        dataset: Dataset,
        move_aet: str,
        query_model: str,
        msg_id: int | None = None,
        priority: int = 2,
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """C-MOVE (PS3.7 9.1.4) to ``move_aet``: yields ``(status, identifier)``."""
        from dicomnet.services import scu

        return scu.c_move(self, dataset, move_aet, query_model, msg_id, priority)

    def send_c_cancel(self, msg_id: int, context_id: int | None = None) -> None:
        """C-CANCEL the outstanding C-FIND/C-GET/C-MOVE ``msg_id`` (PS3.7 9.3.2.3)."""
        from dicomnet.services import scu

        scu.c_cancel(self, msg_id, context_id)

    def send_n_event_report(
        self,
        dataset: Dataset | None,
        event_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-EVENT-REPORT (PS3.7 10.1.1): ``(status, event reply)``."""
        from dicomnet.services import scu

        return scu.n_event_report(self, dataset, event_type, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_get(
        self,
        identifier_list: Sequence[Any],
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-GET (PS3.7 10.1.2): ``(status, attribute list)``."""
        from dicomnet.services import scu

        return scu.n_get(self, identifier_list, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_set(
        self,
        dataset: Dataset,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-SET (PS3.7 10.1.3): ``(status, attribute list)``."""
        from dicomnet.services import scu

        return scu.n_set(self, dataset, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_action(
        self,
        dataset: Dataset | None,
        action_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-ACTION (PS3.7 10.1.4): ``(status, action reply)``."""
        from dicomnet.services import scu

        return scu.n_action(self, dataset, action_type, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_create(
        self,
        dataset: Dataset | None,
        class_uid: str,
        instance_uid: str | None = None,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-CREATE (PS3.7 10.1.5): ``(status, attribute list)``."""
        from dicomnet.services import scu

        return scu.n_create(self, dataset, class_uid, instance_uid, msg_id, meta_uid)

    def send_n_delete(
        self,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> Dataset:
        """N-DELETE (PS3.7 10.1.6): the status Dataset."""
        from dicomnet.services import scu

        return scu.n_delete(self, class_uid, instance_uid, msg_id, meta_uid)

    @property
    def context_result_summary(self) -> list[str]:
        """One line per proposed context with its result (for logs)."""
        return [
            f"{cx.context_id}: {cx.abstract_syntax} {context_result_text(cx.result)}"
            for cx in sorted(
                self.accepted_contexts + self.rejected_contexts, key=lambda c: c.context_id or 0
            )
        ]


def __getattr__(name: str) -> Any:
    # AsyncAssociation lives with the other SCU code (dicomnet.services.scu), which imports
    # this module: resolve it lazily to keep the import graph acyclic.
    if name == "AsyncAssociation":
        from dicomnet.services.scu import AsyncAssociation

        return AsyncAssociation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
