"""The blocking association: operations driven by the calling thread.

Theory of operation
-------------------
An :class:`Association` is the application's handle on one association in the blocking style,
in either role:

* ``mode="requestor"``: made by :meth:`dicomnet.ae.AE.associate`
  (:func:`dicomnet.client.request_association`), driven by the blocking
  :class:`~dicomnet.transport.sync.SyncDriver` in the calling thread;
* ``mode="acceptor"``: made by the server (:mod:`dicomnet.acceptor`) around its asyncio driver;
  its operations (e.g. an N-EVENT-REPORT sent from a handler) are then called from a worker
  thread, which waits on the driver while the event loop receives.

The negotiated state, context lookup, handlers and Upper Layer events are
:class:`~dicomnet.assocbase.AssociationBase`'s; the operations are declared once by
:class:`~dicomnet.services.operations.Operations` (``send_c_echo`` ... ``send_n_delete``),
and carried out here. Each one builds its request (:mod:`dicomnet.services.requests`), takes a
free Message ID and registers an :class:`OperationHandle` in the association's
:class:`~dicomnet.dimse.router.MessageRouter`, and sends the request through the DIMSE
provider. Responses are collected by :meth:`Association.pump`, which takes one message from
the provider (``get_msg(block=True)``: the calling thread drives the socket until a whole
message is there, or the DIMSE timeout passes) and routes it:

* a response goes to the handle of its Message ID Being Responded To (PS3.7 9.1.1.1.2);
  Pending statuses (FF00/FF01) keep the handle open, any other completes it;
* a request from the peer -- the C-STORE sub-operations of a C-GET (PS3.4 C.4.3), an
  N-EVENT-REPORT (e.g. storage commitment results, PS3.4 J.3.3), a C-ECHO -- is answered at
  once by the dispatcher (:func:`dicomnet.services.dispatch.answer_request`) from the handler
  bound to the association (``evt_handlers=`` / :meth:`bind`), on its context.

Because responses are routed by Message ID, several requests may be outstanding when the
association negotiated an asynchronous operations window (PS3.7 D.3.3.3):
:meth:`Association.send_c_store_async` returns before the response, blocking only while the
window is full, and :meth:`Association.store_many` keeps the window full.

When no response comes (DIMSE timeout) or the association dies, the operation's status is an
**empty** ``Dataset``. A timed-out association is aborted: a late response would otherwise be
taken for the answer to a later request.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias

from dicomnet.assocbase import Mode, ServiceUser, rejection_text
from dicomnet.dimse import primitives as P
from dicomnet.dimse.router import MessageRouter, is_final
from dicomnet.errors import (
    AssociationNotEstablishedError,
    DicomNetError,
    NoPresentationContextError,
    ProtocolError,
)
from dicomnet.services import requests
from dicomnet.services.operations import Operations
from dicomnet.services.payloads import decode_payload, reply_payload
from dicomnet.services.requests import Built, Outgoing
from dicomnet.services.responses import status_dataset
from dicomnet.settings import Settings
from dicomnet.transport.base import Driver, monotonic

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.services.sending import StoreInput

__all__ = [
    "Association",
    "AssociationNotEstablishedError",
    "NoPresentationContextError",
    "OperationHandle",
    "ServiceUser",
    "rejection_text",
]

LOGGER = logging.getLogger("dicomnet.scu")

Result: TypeAlias = "tuple[Dataset, Dataset | None]"


class OperationHandle:
    """One request sent on a blocking association, until its final response."""

    __slots__ = ("assoc", "context_id", "done", "failed", "msg_id", "responses", "service")

    def __init__(self, assoc: Association, msg_id: int, context_id: int, service: str) -> None:
        self.assoc = assoc
        self.msg_id = msg_id
        self.context_id = context_id
        self.service = service
        self.responses: deque[P.DIMSEPrimitive] = deque()
        self.done = False
        self.failed = False

    def wait_response(self) -> P.DIMSEPrimitive | None:
        """The next response of this operation, driving the association; None on failure."""
        while not self.responses:
            if self.done or not self.assoc.pump():
                return None
        return self.responses.popleft()

    def final_response(self) -> P.DIMSEPrimitive | None:
        """Wait for the final response and return the primitive itself (None when none came).

        The cheap form of :meth:`result`: no pydicom Dataset is built (``echoscu`` uses it, so
        that a C-ECHO never imports pydicom)."""
        responses = self.responses
        while True:
            rsp = responses.popleft() if responses else self.wait_response()
            if rsp is None:
                return None
            if is_final(rsp):
                return rsp

    def result(self) -> Dataset:
        """Wait for the final response; its status Dataset (empty when none came)."""
        return status_dataset(self.final_response())

    def __repr__(self) -> str:
        state = "failed" if self.failed else "done" if self.done else "outstanding"
        return f"<OperationHandle {self.service} id={self.msg_id} {state}>"


class Association(Operations["Dataset", Result, Iterator[Result], None]):
    """One association, blocking style (see the module docstring)."""

    def __init__(
        self,
        ae: Settings,
        mode: Mode = "requestor",
        driver: Driver | None = None,
        *,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        super().__init__(ae, mode, driver, clock=clock)
        self.router: MessageRouter[OperationHandle] = MessageRouter()
        """The requests still waiting for their final response, by Message ID."""
        # the thread that drives a requestor (the one that made it): is_alive() receives only
        # there, never beside an operation another thread is receiving for
        self._driver_thread = threading.get_ident()
        self._answering = 0  # handlers of the peer's requests running now (see pump)

    @property
    def outstanding(self) -> dict[int, OperationHandle]:
        """Message ID -> handle of each request still waiting for its final response."""
        return self.router.outstanding

    def next_message_id(self) -> int:
        """A Message ID (1..65535) not used by any outstanding request (PS3.7 9.1.1.1.1)."""
        with self.lock:
            return self.router.new_id()

    # --- receiving ------------------------------------------------------------------------
    def _fail_all(self) -> None:
        for handle in self.router.drain():
            handle.failed = True
            handle.done = True

    def pump(self) -> bool:
        """Receive and route one DIMSE message (see the module docstring).

        False when nothing came within the DIMSE timeout (the association is then aborted) or
        the association is gone; every outstanding operation is then failed.
        """
        if not self.is_established:
            self._fail_all()
            return False
        context_id, prim = self.dimse.get_msg(block=True)
        if prim is None or context_id is None:
            if self.is_established:
                LOGGER.warning("no DIMSE message within %s s: aborting", self.dimse_timeout)
                self.failure_reason = f"DIMSE timeout ({self.dimse_timeout} s)"
                self.abort()
            self._fail_all()
            return False
        if prim.Status is not None:  # a response (requests carry no Status)
            routed = self.router.route(prim)
            if routed is None:
                LOGGER.warning(
                    "dropping a response to unknown Message ID %s", prim.MessageIDBeingRespondedTo
                )
                return True
            handle, final = routed
            handle.responses.append(prim)
            if final:
                handle.done = True
            return True
        # lazy: answering requests (C-GET sub-operations, N-EVENT-REPORT) needs every
        # service's module, which an association that only sends (echoscu) never loads
        from dicomnet.services.dispatch import answer_request

        self._answering += 1  # a handler runs: is_alive() asked from it does not receive
        try:
            rsp = answer_request(self, context_id, prim)
        finally:
            self._answering -= 1
        try:
            self.dimse.send_msg(rsp, context_id)
        except DicomNetError as exc:
            LOGGER.error("cannot answer the peer's %s: %s", rsp.SERVICE, exc)
        return True

    # --- sending --------------------------------------------------------------------------
    def _start(self, built: Built, msg_id: int | None) -> OperationHandle:
        """Send a built request under a Message ID: its handle (failed at once when the
        association died meanwhile)."""
        if not self.is_established:
            built.sent()
            raise AssociationNotEstablishedError(
                f"the association is not established ({self.failure_reason or 'released'})"
            )
        router = self.router
        prim = built.primitive
        try:
            generated = msg_id is None
            if msg_id is None:
                msg_id = self.next_message_id()
            elif msg_id in router:
                raise ValueError(f"Message ID {msg_id} is already outstanding")
            # honour the asynchronous operations window (1 = wait for every response)
            outstanding = router.outstanding
            while len(outstanding) >= max(1, self.async_window):
                if not self.pump():
                    break
            if generated:
                object.__setattr__(prim, "MessageID", msg_id)  # 1..65535 by construction
            else:
                prim.MessageID = msg_id  # the caller's value: validated
            handle = OperationHandle(self, msg_id, built.context_id, prim.SERVICE)
            if not self.is_established:
                handle.failed = handle.done = True
                return handle
            router.open(msg_id, handle)
            try:
                self.dimse.send_msg(prim, built.context_id)
            except ProtocolError as exc:  # the state changed under us (abort arrived)
                LOGGER.info("send failed: %s", exc)
                router.close(msg_id)
                handle.failed = handle.done = True
            except BaseException:
                # nothing was sent (e.g. a data set that cannot be encoded is refused before
                # its command goes): no response will come, the Message ID is free again
                router.close(msg_id)
                raise
            return handle
        finally:
            built.sent()

    # --- the Operations contract ----------------------------------------------------------
    def _status(self, request: Outgoing, msg_id: int | None) -> Dataset:
        return self._start(request.build(), msg_id).result()

    def _pair(self, request: Outgoing, msg_id: int | None) -> Result:
        handle = self._start(request.build(), msg_id)
        rsp = handle.final_response()
        if rsp is None:
            return status_dataset(None), None
        return status_dataset(rsp), reply_payload(rsp, self.transfer_syntax_of(handle.context_id))

    def _stream(self, request: Outgoing, msg_id: int | None) -> Iterator[Result]:
        handle = self._start(request.build(), msg_id)
        ts = self.transfer_syntax_of(handle.context_id)
        while True:
            rsp = handle.wait_response()
            if rsp is None:
                yield status_dataset(None), None
                return
            yield status_dataset(rsp), decode_payload(rsp, ts)
            if is_final(rsp):
                return

    def _cancel(self, msg_id: int, context_id: int | None) -> None:
        if not self.is_established:
            raise AssociationNotEstablishedError("the association is not established")
        if context_id is None:
            handle = self.router.outstanding.get(msg_id)
            if handle is None:
                raise ValueError(f"no outstanding request with Message ID {msg_id}; give context_id")
            context_id = handle.context_id
        try:
            self.dimse.send_msg(P.C_CANCEL(MessageIDBeingRespondedTo=msg_id), context_id)
        except ProtocolError as exc:
            LOGGER.info("C-CANCEL not sent: %s", exc)

    # --- blocking-only extras ---------------------------------------------------------------
    def echo_response(self, msg_id: int | None = None) -> P.DIMSEPrimitive | None:
        """C-ECHO returning the final C-ECHO-RSP primitive itself (None when none came): the
        same exchange as :meth:`send_c_echo` without building a pydicom Dataset."""
        return self._start(requests.echo(self), msg_id).final_response()

    def send_c_store_async(
        self,
        dataset: StoreInput,
        msg_id: int | None = None,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
        *,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
        preferred: Sequence[str] = (),
    ) -> OperationHandle:
        """Send a C-STORE-RQ without waiting for its response (asynchronous operations window,
        PS3.7 D.3.3.3): returns a handle whose ``result()`` gives the status Dataset. Blocks
        only while :attr:`async_window` requests are already outstanding (with the default
        window of 1 it behaves like :meth:`send_c_store`). ``preferred``: transfer syntaxes
        to convert uncompressed data into when the peer accepted them (``storescu
        --propose-*``); otherwise the instance's own syntax wins."""
        built = requests.store(self, dataset, priority, originator_aet, originator_id,
                               sop_class_uid, sop_instance_uid, preferred)  # fmt: skip
        return self._start(built, msg_id)

    def store_many(
        self, datasets: Iterable[StoreInput], priority: int = 2
    ) -> Iterator[tuple[StoreInput, Dataset]]:
        """C-STORE every item of ``datasets`` keeping up to :attr:`async_window` requests
        outstanding; yields ``(item, status)`` in completion order."""
        inflight: list[tuple[StoreInput, OperationHandle]] = []

        def completed() -> Iterator[tuple[StoreInput, Dataset]]:
            for entry in [e for e in inflight if e[1].done]:
                inflight.remove(entry)
                yield entry[0], entry[1].result()

        for item in datasets:
            while len(inflight) >= max(1, self.async_window) and self.is_established:
                if not self.pump():
                    break
                yield from completed()
            yield from completed()
            if not self.is_established:
                yield item, status_dataset(None)
                continue
            inflight.append((item, self.send_c_store_async(item, priority=priority)))
            yield from completed()
        while inflight:
            if not any(h.done for _, h in inflight):
                self.pump()
            yield from completed()

    # --- life cycle -------------------------------------------------------------------------
    def release(self) -> None:
        """Release the association (A-RELEASE, PS3.8 section 7.2); aborts if the peer does
        not answer within ``acse_timeout``. Safe to call more than once."""
        driver = self.driver
        if driver is None:
            return
        if self.is_established:
            driver.release(self.acse_timeout)
            if not self.is_aborted:
                self.finish(released=True)
        else:
            driver.close()

    def abort(self, block: bool = True) -> None:
        """Abort the association (A-ABORT, source service-user, PS3.8 section 7.3). The
        A-ABORT is written before this returns whatever ``block`` says (accepted for
        pynetdicom programs)."""
        driver = self.driver
        if driver is None:
            return
        was = self.is_established
        driver.abort()
        if was or not self.is_released:
            if self.failure_reason is None:
                self.failure_reason = "aborted by us"
            self.finish(aborted=True)

    # --- pynetdicom's thread API -------------------------------------------------------------
    # A pynetdicom association is a ``threading.Thread`` and its programs call ``is_alive()``,
    # ``join()`` and ``kill()`` on it. A dicomnet association has no thread of its own (the
    # calling thread drives a requestor, the server's loop an acceptor); these three keep such
    # programs running with the meaning they have there.

    #: pynetdicom's association threads are daemons; nothing to set here
    daemon = True

    def is_alive(self) -> bool:
        """True while the association is established and its connection open.

        A pynetdicom thread notices the peer's A-RELEASE or A-ABORT on its own; a requestor
        here has no thread, so when no request is outstanding this first takes in what the
        peer has already sent, without waiting (``poll_input``): a release request is answered
        (PS3.8 AR-8) and the association ends, a request (an N-EVENT-REPORT...) is answered
        from the bound handlers. A program looping on ``is_alive()`` thus sees the end.
        Only in the thread that made the association and outside the handlers it runs:
        asked from another thread (a monitor beside the one sending) or from a handler, it
        reports what is known without receiving.
        """
        driver = self.driver
        if driver is None or not self.is_established:
            return False
        if (self.mode == "requestor" and not self.router.outstanding and not self._answering
                and threading.get_ident() == self._driver_thread):  # fmt: skip
            poll = getattr(driver, "poll_input", None)  # the blocking driver's; asyncio receives
            if poll is not None:
                poll()
                while self.is_established and self.dimse.queued:
                    self.pump()
        return self.is_established and driver.is_alive

    def join(self, timeout: float | None = None) -> None:
        """Return once the association has ended -- released or aborted, by either side -- or
        after ``timeout`` seconds (``threading.Thread.join``'s meaning).

        A requestor's association is driven meanwhile by the calling thread: the peer's
        requests (e.g. an N-EVENT-REPORT with storage commitment results) are answered from
        the bound handlers as :meth:`pump` answers them. Called on an acceptor's association
        (``event.assoc``) from a thread other than the handler's, it waits for the server's
        event loop to see the end. Never returns early on its own otherwise: without a timeout
        it waits for the peer (its release or abort), as a pynetdicom thread does.
        """
        driver = self.driver
        deadline = None if timeout is None else self.clock() + timeout
        while driver is not None and self.is_alive():
            if self.mode == "requestor" and self.dimse.queued:
                self.pump()  # a message is there: routed (or answered) without blocking
            elif not driver.wait_for_activity(deadline):
                return
        # The peer's release was answered: the end is the peer closing the connection (PS3.8
        # Sta13, bounded by the ARTIM timer); then the association counts as released.
        while (driver is not None and self.is_established and self.release_requested_by_peer
               and driver.wait_for_activity(deadline)):  # fmt: skip
            pass

    def kill(self) -> None:
        """End the association at once (pynetdicom's ``kill()``): an A-ABORT if it is still
        established (PS3.8 section 7.3), nothing otherwise."""
        if self.is_alive():
            self.abort()

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
