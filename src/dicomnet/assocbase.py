"""The negotiated state of one association, whoever drives it.

Theory of operation
-------------------
:class:`AssociationBase` is what every association has in common (PS3.7 section 7.1, PS3.8
section 7.1), in either role and under either driver: the blocking
:class:`~dicomnet.association.Association`, the asyncio
:class:`~dicomnet.aio_association.AsyncAssociation` and the server's acceptor-side associations
are all built on it.

* What negotiation produced: :attr:`accepted_contexts` / :attr:`rejected_contexts`
  (:class:`~dicomnet.presentation.PresentationContext` objects with the accepted transfer
  syntax and the roles *we* may play, PS3.7 D.3.3.4), :attr:`requestor` / :attr:`acceptor`
  (:class:`ServiceUser`: AE title, address, Maximum Length, implementation UID/version, user
  identity...), and the asynchronous operations window (:attr:`async_window`, PS3.7 D.3.3.3).
  :meth:`apply_negotiation` fills them from an A-ASSOCIATE-RQ/AC pair, in both roles.
* Context lookup for operations: :meth:`find_context` (an accepted context on which we may play
  a role for a SOP class, optionally with a transfer syntax) and :meth:`accepted_syntaxes`,
  both cached per negotiation, since every operation asks.
* Life-cycle flags: :attr:`is_established`, :attr:`is_rejected`, :attr:`is_aborted`,
  :attr:`is_released`, and :attr:`failure_reason` (why the association is not, or no longer,
  usable, in words).
* Upper Layer events from the driver (:mod:`dicomnet.ul.events`) arrive at
  :meth:`handle_event` on whichever thread runs the driver; P-DATA goes to the DIMSE service
  provider (:attr:`dimse`, built on first use). The association is the provider's
  ``AssociationLike``: ``dul`` (the driver), ``dimse_timeout``, ``peer_max_pdata_length``,
  ``accepted_context_ids`` and ``clock()``.
* Handlers bound to the association (:class:`~dicomnet.events.Handlers`): the intervention
  handlers that answer requests the peer sends on it (C-STORE sub-operations of a C-GET,
  N-EVENT-REPORT) and the notification handlers of its life cycle (EVT_ACCEPTED, EVT_REJECTED,
  EVT_RELEASED, EVT_ABORTED).

How operations are carried out (blocking or on the event loop) is left to the subclasses.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from dicomnet.datasource import SpoolingFactory
from dicomnet.dimse.fragment import CommandInfo
from dicomnet.dimse.provider import DIMSEServiceProvider, MessageQueueLike, QueueItem
from dicomnet.errors import (
    AssociationNotEstablishedError,
    NoPresentationContextError,
    ProtocolError,
)
from dicomnet.events import (
    EVT_ABORTED,
    EVT_ACCEPTED,
    EVT_DIMSE_RECV,
    EVT_DIMSE_SENT,
    EVT_ESTABLISHED,
    EVT_REJECTED,
    EVT_RELEASED,
    Binding,
    Event,
    EventType,
    Handler,
    HandlerInfo,
    Handlers,
    bound_events,
    handler_info,
)
from dicomnet.negotiated import negotiated_contexts, rejection_text
from dicomnet.presentation import PresentationContext, context_result_text
from dicomnet.serviceuser import ServiceUser
from dicomnet.settings import ContextView, Settings
from dicomnet.transport.base import Driver, monotonic
from dicomnet.uid import UIDValue
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
    uid_norm,
)

if TYPE_CHECKING:
    from dicomnet.dimse.checker import DataSetChecker

__all__ = ["AssociationBase", "Mode", "ServiceUser", "rejection_text"]  # ServiceUser: re-exported

LOGGER = logging.getLogger("dicomnet.association")
# A library's records reach only the handlers its program configures (dicomnet's tools do, in
# dicomnet.cli.common; debug_logger() does): without any, Python would print warnings to
# stderr through its last-resort handler. pynetdicom programs expect the same quiet.
logging.getLogger("dicomnet").addHandler(logging.NullHandler())

Mode = Literal["requestor", "acceptor"]

_C_STORE_RQ = 0x0001  # Command Field (PS3.7 Table E.1-1)


def _message_queue(items: deque[QueueItem]) -> MessageQueueLike:
    """The provider's ``msg_queue``: a real ``queue.Queue`` around its deque."""
    # lazy: queue (and heapq) only for programs that read msg_queue
    from dicomnet.message_queue import MessageQueue

    return MessageQueue(items)


class AssociationBase:
    """The negotiated state of one association (see the module docstring)."""

    def __init__(
        self,
        ae: Settings,
        mode: Mode = "requestor",
        driver: Driver | None = None,
        *,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        if mode not in ("requestor", "acceptor"):
            raise ValueError("mode must be 'requestor' or 'acceptor'")
        self.ae = ae
        self.mode: Mode = mode
        self.driver: Driver | None = driver
        self.clock = clock
        """The clock every deadline of this association is measured on (seconds)."""
        self._dimse: DIMSEServiceProvider | None = None
        self.dimse_timeout = ae.dimse_timeout
        self.acse_timeout = ae.acse_timeout
        self.network_timeout = ae.network_timeout
        self.connection_timeout = ae.connection_timeout
        self.requestor = ServiceUser(mode="requestor")
        self.acceptor = ServiceUser(mode="acceptor")
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
        self.handlers = Handlers()
        """The handlers bound to this association (see :meth:`bind`)."""
        self.inherited: Handlers | None = None
        """An accepted association's server's handlers: they apply to it too (reported by
        :meth:`get_handlers`, and fired for its DIMSE messages)."""
        self.lock = threading.RLock()
        """Serializes the operations of threads sharing the association."""
        self.association_rq: AAssociateRQ | None = None
        """The A-ASSOCIATE-RQ of this association (sent or received), once known."""

    # --- AssociationLike (the DIMSE provider's contract) ------------------------------------
    @property
    def dul(self) -> Driver:
        """The driver (the founding document's name: the DICOM Upper Layer service)."""
        driver = self.driver
        if driver is None:
            raise AssociationNotEstablishedError("the association has no transport")
        return driver

    @property
    def peer_max_pdata_length(self) -> int:
        """The peer's Maximum Length (0 = unlimited; the fragmenter caps it locally)."""
        peer = self.acceptor if self.mode == "requestor" else self.requestor
        return peer.maximum_length

    @property
    def dimse(self) -> DIMSEServiceProvider:
        """The :class:`~dicomnet.dimse.provider.DIMSEServiceProvider` (created on first use)."""
        provider = self._dimse
        if provider is None:
            with self.lock:
                provider = self._dimse
                if provider is None:
                    provider = self._dimse = self._make_provider()
        return provider

    @dimse.setter
    def dimse(self, provider: DIMSEServiceProvider) -> None:
        self._dimse = provider

    def _make_provider(self) -> DIMSEServiceProvider:
        """The DIMSE provider of this association, configured from the AE: received data sets
        above the spool threshold go to spool files in ``ae.spool_dir`` (behind
        ``ae.spool_prefix(self, context_id, command)`` when set), messages are capped at
        ``ae.max_message_size``, and data sets are checked as they arrive unless
        ``ae.check_received_datasets`` is off."""
        ae = self.ae
        prefix = ae.spool_prefix
        view: ContextView = self
        payloads = SpoolingFactory(
            ae.spool_dir,
            None if prefix is None else lambda ctx, command: prefix(view, ctx, command),
        )
        provider = DIMSEServiceProvider(
            self,
            payloads=payloads,
            max_message_size=ae.max_message_size,
            check_dataset=self.dataset_checker if ae.check_received_datasets else None,
            transfer_syntax_of=self.transfer_syntax_of,
            msg_queue=_message_queue,
        )
        if self.handlers or self.inherited:
            self._wire_dimse_events(provider)
        return provider

    def connection_lost(self) -> None:
        """The transport is gone: the DIMSE message being received (if any) is dropped and
        its spool file deleted. Messages already queued stay readable."""
        if self._dimse is not None:
            self._dimse.connection_lost()

    # --- negotiation results ----------------------------------------------------------------
    @property
    def calling_ae_title(self) -> str:
        """The requestor's AE title (without padding)."""
        return self.requestor.ae_title

    def apply_negotiation(self, rq: AAssociateRQ, ac: AAssociateAC) -> None:
        """Fill contexts, roles, limits and identities from an accepted negotiation.

        Used by both roles: the requestor when the A-ASSOCIATE-AC arrives, the server when it
        sends one. Roles follow PS3.7 D.3.3.4: without a role selection answer for a SOP class
        the requestor is SCU and the acceptor SCP; with one, the requestor may be SCU when
        ``scu_role`` is 1 and SCP when ``scp_role`` is 1 (the acceptor the converse).
        """
        self.association_rq = rq
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
        self.acceptor.user_identity = uid_ac  # its .server_response, as pynetdicom's has it
        self.requestor.role_selections = {
            uid_norm(r.sop_class_uid): r for r in req_ui.role_selections
        }
        self.acceptor.role_selections = {uid_norm(r.sop_class_uid): r for r in ac_ui.role_selections}
        # every negotiation item as sent, as pynetdicom's ServiceUser.extended_negotiation lists
        self.requestor.extended_negotiation = list(req_ui.negotiation_items)
        self.acceptor.extended_negotiation = list(ac_ui.negotiation_items)
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
        self._apply_contexts(rq, ac)
        self.requestor.primitive, self.acceptor.primitive = rq, ac
        self.acceptor.results = sorted(
            self.accepted_contexts + self.rejected_contexts, key=lambda c: c.context_id or 0
        )
        if self.mode == "acceptor":
            self.acceptor.supported = self.ae.supported_contexts

    def _apply_contexts(self, rq: AAssociateRQ, ac: AAssociateAC) -> None:
        accepted, rejected = negotiated_contexts(
            rq, ac, self.mode, self.requestor.role_selections, self.acceptor.role_selections
        )
        self.accepted_contexts = accepted
        self.rejected_contexts = rejected
        self._by_id = {cx.context_id: cx for cx in accepted if cx.context_id is not None}
        self.accepted_context_ids = set(self._by_id)

    def accept(self, rq: AAssociateRQ, ac: AAssociateAC) -> None:
        """Acceptor side: we sent ``ac`` for ``rq``; the association is established."""
        self.apply_negotiation(rq, ac)
        self.is_established = True

    def context_by_id(self, context_id: int) -> PresentationContext | None:
        """The accepted context with ``context_id``, or None."""
        return self._by_id.get(context_id)

    def transfer_syntax_of(self, context_id: int) -> str | None:
        """The accepted transfer syntax of ``context_id`` (used by the DIMSE provider)."""
        cx = self._by_id.get(context_id)
        return None if cx is None else cx.accepted_syntax

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
        cache: dict[str | tuple[str, str], PresentationContext] = {}
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
                    if cx.accepted_syntax == ts:
                        return cx
            found = []
        if not found:
            ts_text = "" if transfer_syntax is None else f" with transfer syntax {transfer_syntax}"
            name = str(UIDValue(abstract_syntax).name)  # pydicom's name, or the UID itself
            what = abstract_syntax if name == abstract_syntax else f"{name} ({abstract_syntax})"
            raise NoPresentationContextError(
                f"no accepted presentation context for {what}{ts_text} in the {role.upper()} role"
            )
        if cache_key is not None:
            cache[cache_key] = found[0]
        return found[0]

    def _get_valid_context(
        self,
        ab_syntax: str,
        tr_syntax: str,
        role: Literal["scu", "scp"],
        context_id: int | None = None,
    ) -> PresentationContext:
        """pynetdicom's name for :meth:`find_context`, which its own applications call
        (``findscu -w`` reads the transfer syntax of the context its query went on):
        ``tr_syntax`` "" for any; with ``context_id``, that context if it qualifies.
        ``ValueError`` (:class:`NoPresentationContextError`) when none does."""
        if context_id is not None:
            cx = self.context_by_id(context_id)
            ok = (cx is not None and cx.abstract_syntax == uid_norm(str(ab_syntax))
                  and (cx.as_scu if role == "scu" else cx.as_scp)
                  and (not tr_syntax or cx.accepted_syntax == str(tr_syntax)))  # fmt: skip
            if cx is not None and ok:
                return cx
            raise NoPresentationContextError(
                f"presentation context {context_id} is not accepted for {ab_syntax} in the "
                f"{role.upper()} role"
            )
        return self.find_context(ab_syntax, str(tr_syntax) or None, role)

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
                    cx.accepted_syntax
                    for cx in self.accepted_contexts
                    if cx.abstract_syntax == uid
                    and cx.accepted_syntax
                    and (cx.as_scu if role == "scu" else cx.as_scp)
                )
            )
            cache[key] = hit
        return hit

    def dataset_checker(
        self, context_id: int, info: CommandInfo, elements: dict[int, object] | None
    ) -> DataSetChecker | None:
        """A checker for the data set of a received C-STORE-RQ (PS3.4 B.2.1: the data set must
        be readable and be an instance of the context's SOP class); None for other messages."""
        if info.command_field != _C_STORE_RQ:
            return None
        cx = self.context_by_id(context_id)
        found = elements or {}

        def uid(key: int) -> str | None:
            value = found.get(key)
            return value.strip("\0 ") if isinstance(value, str) else None

        # lazy: only associations that receive C-STORE data sets check them
        from dicomnet.dimse.checker import DataSetChecker

        return DataSetChecker(
            cx.accepted_syntax if cx is not None else None,
            sop_class=uid(0x0002),
            sop_instance=uid(0x1000),
            context_class=cx.abstract_syntax if cx is not None else None,
        )

    @property
    def rejection_text(self) -> str | None:
        """The meaning of the A-ASSOCIATE-RJ we received, or None."""
        if self.result is None or self.result_source is None or self.result_reason is None:
            return None
        return rejection_text(self.result, self.result_source, self.result_reason)

    @property
    def context_result_summary(self) -> list[str]:
        """One line per proposed context with its result (for logs)."""
        return [
            f"{cx.context_id}: {cx.abstract_syntax} {context_result_text(cx.result)}"
            for cx in sorted(
                self.accepted_contexts + self.rejected_contexts, key=lambda c: c.context_id or 0
            )
        ]

    # --- handlers ---------------------------------------------------------------------------
    def bind(
        self, event: EventType, handler: Handler, args: Sequence[object] | None = None
    ) -> None:
        """Bind ``handler`` to ``event`` (an ``EVT_*`` of :mod:`dicomnet.events`) on this
        association: e.g. EVT_C_STORE for the C-STORE sub-operations of a C-GET, or
        EVT_N_EVENT_REPORT for reports sent by the peer, EVT_RELEASED / EVT_ABORTED. The
        handler is called as ``handler(event, *args)``; an intervention event keeps only the
        latest handler."""
        with self.lock:
            self.handlers.bind(event, handler, args or ())
        if event in (EVT_DIMSE_RECV, EVT_DIMSE_SENT):
            self.handlers_changed()

    def unbind(self, event: EventType, handler: Handler) -> None:
        with self.lock:
            self.handlers.unbind(event, handler)
        if event in (EVT_DIMSE_RECV, EVT_DIMSE_SENT):
            self.handlers_changed()

    def notify_details(self, event_type: EventType, details: dict[str, object]) -> None:
        """:meth:`notify` with the event's details as a dict (a protocol observer's call)."""
        self.notify(event_type, **details)

    def _wire_dimse_events(self, provider: DIMSEServiceProvider) -> None:
        """EVT_DIMSE_RECV/SENT handlers get the provider's message hooks; without a handler the
        hooks stay None and a message costs nothing extra."""
        handlers = self._all_handlers()
        provider.on_receive_dimse_message = (
            functools.partial(self._dimse_event, EVT_DIMSE_RECV)
            if handlers.get(EVT_DIMSE_RECV) else None
        )  # fmt: skip
        provider.on_send_dimse_message = (
            functools.partial(self._dimse_event, EVT_DIMSE_SENT)
            if handlers.get(EVT_DIMSE_SENT) else None
        )  # fmt: skip

    def _dimse_event(self, event_type: EventType, message: object) -> None:
        bindings = self.handlers.get(event_type)
        if self.inherited is not None:  # the server's handlers, for this association
            bindings += self.inherited.get(event_type)
        self._call(bindings, event_type, {"message": message})

    def get_handlers(self, event: EventType) -> HandlerInfo:
        """The handlers bound to ``event`` (this association's and, for an accepted one, its
        server's): a list of ``(handler, args)`` for a notification event, the one
        ``(handler, args)`` (or ``(None, None)``) for an intervention event."""
        return handler_info(self._all_handlers(), event)

    def get_events(self) -> list[EventType]:
        """The events with a handler bound on this association (or its server)."""
        return bound_events(self._all_handlers())

    def _all_handlers(self) -> Handlers:
        if self.inherited is None:
            return self.handlers
        return self.inherited.merged(self.handlers)

    def handlers_changed(self) -> None:
        """Handlers were bound or unbound (here or on the server): the DIMSE message hooks
        follow."""
        with self.lock:
            if self._dimse is not None:
                self._wire_dimse_events(self._dimse)

    @property
    def is_requestor(self) -> bool:
        return self.mode == "requestor"

    @property
    def is_acceptor(self) -> bool:
        return self.mode == "acceptor"

    @property
    def local(self) -> dict[str, object]:
        """Our side: ``ae_title``, ``address``, ``port``, ``mode`` and ``pdv_size`` (the largest
        P-DATA PDU we receive)."""
        return (self.requestor if self.is_requestor else self.acceptor).info

    @property
    def remote(self) -> dict[str, object]:
        """The peer's side, as :attr:`local` (``pdv_size``: the largest it receives)."""
        return (self.acceptor if self.is_requestor else self.requestor).info

    def bind_all(self, bindings: Iterable[tuple[EventType, list[Binding]]]) -> None:
        """Bind every ``(event, [(handler, args), ...])`` (e.g. a normalized handler spec)."""
        for event, bound in bindings:
            for fn, args in bound:
                self.bind(event, fn, args)

    def notify(self, event_type: EventType, **details: object) -> None:
        """Call the notification handlers bound to ``event_type`` (errors logged); ``details``
        become the event's attributes (e.g. ``message`` for EVT_DIMSE_RECV)."""
        if self.handlers:
            self._call(self.handlers.get(event_type), event_type, details)

    def notify_peer(self, event_type: EventType, address: tuple[str, int] | None) -> None:
        """EVT_CONN_OPEN / EVT_REQUESTED / EVT_CONN_CLOSE of a requestor's own connection:
        ``event.address`` is the peer's (host, port), as on the acceptor's side."""
        if self.handlers:
            for fn, args in self.handlers.get(event_type):
                try:
                    fn(Event(self, event_type, address=address), *args)
                except Exception:
                    LOGGER.exception("%s handler failed", event_type.name)

    def _call(
        self, bindings: list[Binding], event_type: EventType, details: dict[str, object]
    ) -> None:
        for fn, args in bindings:
            try:
                fn(Event(self, event_type, details=details), *args)
            except Exception:
                LOGGER.exception("%s handler failed", event_type.name)

    # --- Upper Layer events (from any driver) -----------------------------------------------
    def handle_event(self, event: object) -> None:
        """Take one Upper Layer event from the driver (see :mod:`dicomnet.ul.events`)."""
        if isinstance(event, PDataReceived):
            try:
                self.dimse.receive_pdata(event.pdu)
            except ProtocolError as exc:
                # PS3.8 Table 9-26: a DIMSE-level violation by the peer ends the association
                LOGGER.warning("protocol error from the peer: %s", exc)
                self.failure_reason = f"protocol error by the peer: {exc}"
                if self.driver is not None:
                    self.driver.abort(exc.abort_source, exc.abort_reason)
                self.finish(aborted=True)
        elif isinstance(event, AssociationAccepted):
            self._on_accepted(event.pdu)
        elif isinstance(event, AssociationRejected):
            self._on_rejected(event.pdu)
        elif isinstance(event, ReleaseRequested):
            self.release_requested_by_peer = True
        elif isinstance(event, ReleaseConfirmed):
            self.finish(released=True)
        elif isinstance(event, Aborted):
            self.abort_source, self.abort_reason = event.source, event.reason
            if self.failure_reason is None and self.driver is not None:
                self.failure_reason = self.driver.failure
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
            self.finish(aborted=True)
        elif isinstance(event, TransportClosed):
            if self.release_requested_by_peer and not self.is_aborted:
                self.finish(released=True)
            elif self.is_established:
                if self.failure_reason is None:
                    failure = None if self.driver is None else self.driver.failure
                    self.failure_reason = failure or "the connection was closed by the peer"
                self.finish(aborted=True)

    def _on_accepted(self, ac: AAssociateAC) -> None:
        rq = self.association_rq
        if rq is None:  # pragma: no cover - a requestor always knows what it sent
            raise ProtocolError("A-ASSOCIATE-AC without a request", local=True)
        self.apply_negotiation(rq, ac)
        self.is_established = True
        self.notify(EVT_ACCEPTED)
        self.notify(EVT_ESTABLISHED)

    def _on_rejected(self, rj: AAssociateRJ) -> None:
        self.is_rejected = True
        self.result, self.result_source, self.result_reason = rj.result, rj.source, rj.reason
        self.failure_reason = "association rejected: " + rejection_text(
            rj.result, rj.source, rj.reason
        )
        self.notify(EVT_REJECTED)

    def finish(self, *, released: bool = False, aborted: bool = False) -> None:
        """The association ended (released or aborted): flags set, handlers told once."""
        was = self.is_established
        self.is_established = False
        if self.mode == "requestor":
            # The blocking driver feeds the provider in this thread: drop a message cut off
            # mid-transfer and its spool file. (The server does this on its loop thread for
            # acceptor-side associations, where reassembly runs.)
            self.connection_lost()
        if released and not self.is_aborted and not self.is_released:
            self.is_released = True
            if was:
                self.notify(EVT_RELEASED)
        if aborted and not self.is_released and not self.is_aborted:
            self.is_aborted = True
            self.notify(EVT_ABORTED)

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
            f"<{type(self).__name__} {self.mode} {self.requestor.ae_title or '?'} -> "
            f"{self.acceptor.ae_title or '?'} {state}>"
        )
