"""The asyncio association: operations as awaitables, driven by the event loop itself.

Theory of operation
-------------------
An :class:`AsyncAssociation` runs on an :class:`~dicomnet.transport.aio.AsyncDriver` (an
``asyncio.BufferedProtocol``), so no thread is spent per association and thousands can share
one loop. It is made by :meth:`dicomnet.ae.AE.associate_async`
(:func:`dicomnet.client.request_association_async`).

Every Upper Layer event arrives on the loop thread (through the association's :attr:`link`,
the driver's owner); received P-DATA goes to the DIMSE provider and each completed message is
routed at once: a response to the ``asyncio.Queue`` its request registered in the
association's :class:`~dicomnet.dimse.router.MessageRouter` (by Message ID Being Responded To,
PS3.7 9.1.1.1.2), a request from the peer (the C-STORE sub-operations of a C-GET,
N-EVENT-REPORT) to a serving task that answers it through the dispatcher
(:func:`dicomnet.services.dispatch.answer_request`) in the default executor -- handlers may
block -- and sends the answer. An A-RELEASE-RQ from the peer, colliding with ours or not, is
answered with A-RELEASE-RP (PS3.8 AR-2/AR-8).

Sending: one DIMSE message at a time (an ``asyncio.Lock``: PS3.8 9.3.5 allows no
interleaving of two messages' fragments). Messages up to 1 MiB are written from the loop;
larger data sets are fragmented in a worker thread, where the driver's flow control blocks the
writer instead of buffering the whole object. Operations may run concurrently (e.g.
``asyncio.gather`` of C-STOREs); at most ``async_window`` are outstanding (a semaphore; 1
unless an asynchronous operations window was negotiated, PS3.7 D.3.3.3).

The operations are those :class:`~dicomnet.services.operations.Operations` declares, with the
results of the blocking :class:`~dicomnet.association.Association` as awaitables: status
Datasets (empty when no response came: DIMSE timeout -- the association is then aborted -- or
the association died), ``(status, identifier)`` pairs from ``async for`` over
C-FIND/C-GET/C-MOVE.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias

from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.router import MessageRouter, is_final
from dicomnet.errors import AssociationNotEstablishedError, DicomNetError, ProtocolError
from dicomnet.services.dispatch import answer_request
from dicomnet.services.operations import Operations
from dicomnet.services.payloads import decode_payload, reply_payload
from dicomnet.services.requests import Built, Outgoing
from dicomnet.services.responses import status_dataset
from dicomnet.settings import Settings
from dicomnet.transport.aio import AsyncDriver
from dicomnet.transport.base import monotonic
from dicomnet.ul.events import (
    Aborted,
    AssociationAccepted,
    AssociationRejected,
    PDataReceived,
    ReleaseRequested,
    TransportClosed,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["AsyncAssociation"]

LOGGER = logging.getLogger("dicomnet.scu")

INLINE_SEND_LIMIT = 1 << 20
"""Data sets up to this size are sent from the loop; larger ones from a worker thread."""

Result: TypeAlias = "tuple[Dataset, Dataset | None]"
Responses: TypeAlias = "asyncio.Queue[P.DIMSEPrimitive | None]"


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


class _Link:
    """The driver's owner: hands the Upper Layer events to the association (loop thread)."""

    __slots__ = ("assoc",)

    def __init__(self, assoc: AsyncAssociation) -> None:
        self.assoc = assoc

    def connection_made(self, driver: AsyncDriver) -> None:
        self.assoc.on_connection_made(driver)

    def handle_event(self, driver: AsyncDriver, event: object) -> None:
        self.assoc.on_driver_event(driver, event)

    def connection_lost(self, driver: AsyncDriver) -> None:
        self.assoc.on_connection_lost()

    @property
    def busy(self) -> bool:
        # a requestor waiting for responses is covered by the DIMSE timeout; silence is
        # idleness for the network timeout as ever
        return False

    def stalled(self, driver: AsyncDriver) -> None:
        """The peer read nothing while we had data for it (the driver aborts)."""


class AsyncAssociation(
    Operations["Awaitable[Dataset]", "Awaitable[Result]", AsyncIterator[Result], Awaitable[None]]
):
    """An association for asyncio code (see the module docstring)."""

    def __init__(
        self,
        ae: Settings,
        loop: asyncio.AbstractEventLoop,
        *,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        super().__init__(ae, "requestor", clock=clock)
        self.loop = loop
        self.link = _Link(self)
        """The driver's owner (:class:`~dicomnet.transport.aio.DriverOwner`)."""
        self.router: MessageRouter[Responses] = MessageRouter()
        self._decided: asyncio.Future[None] = loop.create_future()
        self._gone: asyncio.Future[None] = loop.create_future()
        self._send_lock = asyncio.Lock()
        self._window: asyncio.Semaphore | None = None
        self._incoming: asyncio.Queue[tuple[int, P.DIMSEPrimitive]] = asyncio.Queue()
        self._server_task: asyncio.Task[None] | None = None

    @property
    def aio_driver(self) -> AsyncDriver | None:
        """The asyncio driver, once connected."""
        driver = self.driver
        return driver if isinstance(driver, AsyncDriver) else None

    # -- establishment -----------------------------------------------------------------------
    async def wait_established(self, timeout: float | None) -> None:
        """Wait for the A-ASSOCIATE-AC/RJ (aborting after ``timeout``), then start serving
        the peer's requests, or close."""
        try:
            await asyncio.wait_for(asyncio.shield(self._decided), timeout)
        except TimeoutError:
            self.failure_reason = f"no answer to the association request within {timeout} s"
            if self.driver is not None:
                self.driver.abort()
        if self.is_established:
            self._window = asyncio.Semaphore(max(1, self.async_window))
            self._server_task = self.loop.create_task(self._serve_incoming())
            return
        if self.failure_reason is None:
            self.failure_reason = "the peer closed the connection"
        if self.error is None:
            self.error = DicomNetError(self.failure_reason)
        if self.driver is not None:
            self.driver.close()

    # -- driver events (loop thread) ---------------------------------------------------------
    def on_connection_made(self, driver: AsyncDriver) -> None:
        self.driver = driver
        if driver.sockname is not None:
            self.requestor.address, self.requestor.port = driver.sockname

    def on_driver_event(self, driver: AsyncDriver, event: object) -> None:
        if isinstance(event, PDataReceived):
            try:
                self.dimse.receive_pdata(event.pdu)
            except ProtocolError as exc:
                self.failure_reason = f"protocol error by the peer: {exc}"
                raise  # the driver sends the A-ABORT the error implies and closes
            self._route()
            return
        self.handle_event(event)
        if isinstance(event, ReleaseRequested):
            try:  # PS3.8 AR-2 / AR-8 (release collision)
                driver.conn.release_response()
                driver.flush()
            except DicomNetError as exc:
                LOGGER.debug("release_response refused: %s", exc)
        elif isinstance(event, AssociationAccepted | AssociationRejected):
            self._decide()
        elif isinstance(event, Aborted | TransportClosed):
            self._decide()
            self._fail_waiters()
            if isinstance(event, TransportClosed) and not self._gone.done():
                self._gone.set_result(None)

    def on_connection_lost(self) -> None:
        if self.is_established:
            self.failure_reason = self.failure_reason or "the connection was lost"
            self.handle_event(TransportClosed())
        self._decide()
        self._fail_waiters()
        if not self._gone.done():
            self._gone.set_result(None)

    def _decide(self) -> None:
        if not self._decided.done():
            self._decided.set_result(None)

    def _fail_waiters(self) -> None:
        for queue in self.router.outstanding.values():
            queue.put_nowait(None)

    def _route(self) -> None:
        queue = self.dimse.queued
        while queue:
            context_id, prim = queue.popleft()
            if prim.is_response:
                routed = self.router.route(prim)
                if routed is None:
                    LOGGER.warning(
                        "dropping a response to unknown Message ID %s",
                        prim.MessageIDBeingRespondedTo,
                    )
                else:
                    routed[0].put_nowait(prim)
            else:
                self._incoming.put_nowait((context_id, prim))

    # -- sending -------------------------------------------------------------------------------
    async def _send(self, prim: P.DIMSEPrimitive, context_id: int) -> bool:
        """Send one message (serialized); False when the association is gone."""
        async with self._send_lock:
            if not self.is_established:
                return False
            payload = prim.payload
            inline = payload is None or (
                isinstance(payload, DataSource)
                and payload.getbuffer() is not None
                and payload.size <= INLINE_SEND_LIMIT
            )
            try:
                if inline:
                    self.dimse.send_msg(prim, context_id)
                else:
                    await self.loop.run_in_executor(None, self.dimse.send_msg, prim, context_id)
            except ProtocolError as exc:
                LOGGER.info("send failed: %s", exc)
                return False
            return True

    def _run_coroutine(self, awaitable: Awaitable[object]) -> object:
        """A coroutine handler's awaitable, run on the loop from a worker thread."""
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self.loop).result()

    async def _serve_incoming(self) -> None:
        """Answer the peer's requests one by one (handlers run in the default executor)."""
        while True:
            context_id, prim = await self._incoming.get()
            try:
                rsp = await self.loop.run_in_executor(
                    None, answer_request, self, context_id, prim, self._run_coroutine
                )
                await self._send(rsp, context_id)
            except Exception:  # never let one bad request stop the service
                LOGGER.exception("answering the peer's %s failed", prim.SERVICE)

    # -- the Operations contract ---------------------------------------------------------------
    async def _build(self, request: Outgoing) -> Built:
        if request.blocking:  # reads (and maybe converts) a file: not on the loop
            return await self.loop.run_in_executor(None, request.build)
        return request.build()

    async def _operation(
        self, built: Built, msg_id: int | None
    ) -> AsyncIterator[P.DIMSEPrimitive | None]:
        """Send a built request and yield its responses; None (then stop) when none came."""
        try:
            if not self.is_established or self._window is None:
                raise AssociationNotEstablishedError(
                    f"the association is not established ({self.failure_reason or 'released'})"
                )
            async with self._window:
                router = self.router
                if msg_id is None:
                    msg_id = router.new_id()
                queue: Responses = asyncio.Queue()
                router.open(msg_id, queue)  # ValueError when msg_id is outstanding
                try:
                    built.primitive.MessageID = msg_id
                    if not await self._send(built.primitive, built.context_id):
                        yield None
                        return
                    while True:
                        try:
                            rsp = await asyncio.wait_for(queue.get(), self.dimse_timeout)
                        except TimeoutError:
                            if self.is_established:
                                LOGGER.warning("no DIMSE response within %s s: aborting",
                                               self.dimse_timeout)  # fmt: skip
                                self.failure_reason = f"DIMSE timeout ({self.dimse_timeout} s)"
                                await self.abort()
                            rsp = None
                        yield rsp
                        if rsp is None or is_final(rsp):
                            return
                finally:
                    router.close(msg_id)
        finally:
            built.sent()

    async def _final(self, request: Outgoing, msg_id: int | None) -> tuple[P.DIMSEPrimitive | None, int]:
        built = await self._build(request)
        last = None
        async for rsp in self._operation(built, msg_id):
            last = rsp
        return last, built.context_id

    async def _status(self, request: Outgoing, msg_id: int | None) -> Dataset:
        rsp, _ = await self._final(request, msg_id)
        return status_dataset(rsp)

    async def _pair(self, request: Outgoing, msg_id: int | None) -> Result:
        rsp, context_id = await self._final(request, msg_id)
        if rsp is None:
            return status_dataset(None), None
        return status_dataset(rsp), reply_payload(rsp, self.transfer_syntax_of(context_id))

    async def _stream(self, request: Outgoing, msg_id: int | None) -> AsyncIterator[Result]:
        built = await self._build(request)
        ts = self.transfer_syntax_of(built.context_id)
        async for rsp in self._operation(built, msg_id):
            if rsp is None:
                yield status_dataset(None), None
                return
            yield status_dataset(rsp), decode_payload(rsp, ts)

    async def _cancel(self, msg_id: int, context_id: int | None) -> None:
        if context_id is None:
            raise ValueError("give the context_id of the request to cancel")
        await self._send(P.C_CANCEL(MessageIDBeingRespondedTo=msg_id), context_id)

    # -- life cycle ------------------------------------------------------------------------------
    async def release(self) -> None:
        """A-RELEASE; aborts when no A-RELEASE-RP comes within ``acse_timeout``."""
        driver = self.driver
        if driver is None:
            return
        if self.is_established:
            async with self._send_lock:  # not in the middle of another message
                driver.release(self.acse_timeout)
            try:
                await asyncio.wait_for(asyncio.shield(self._gone), self.acse_timeout)
            except TimeoutError:
                self.failure_reason = "no A-RELEASE-RP in time"
                driver.abort()
        else:
            driver.close()
        await self._stop()

    async def abort(self) -> None:
        """A-ABORT (source service-user) and close."""
        driver = self.driver
        if driver is None:
            return
        was = self.is_established
        driver.abort()
        if was:
            self.failure_reason = self.failure_reason or "aborted by us"
            self.handle_event(TransportClosed())
        self._fail_waiters()
        await self._stop()

    async def _stop(self) -> None:
        task, self._server_task = self._server_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self) -> AsyncAssociation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.release()
        else:
            await self.abort()
