"""How the server runs one Query/Retrieve request on its event loop: :class:`ServiceFlow`.

Theory of operation
-------------------
:mod:`dicomnet.services.qr` and :mod:`dicomnet.services.retrieve` answer C-FIND, C-GET and
C-MOVE as coroutines on the server's event loop and ask a *flow* for what needs the
association (the :class:`dicomnet.services.qr.Flow` protocol):

* ``encode(rsp)`` (and ``repeated(rsp)``, the same command set for many data sets) -- a
  response primitive as its P-DATA-TF PDUs (PS3.8 9.3.5), built by the
  DIMSE provider's encoder (:meth:`~dicomnet.dimse.provider.DIMSEServiceProvider.message_pdus`)
  but not sent. Encoding a batch of identifiers happens in the handler pool, with the handler's
  own step, so the loop only writes.
* ``write(encoded)`` -- waits until the transport has drained below its low-water mark (the
  peer has read what came before, :meth:`~dicomnet.transport.aio.AsyncDriver.writable`), then
  writes the batch under the association's send lock (one DIMSE message at a time: PS3.8
  9.3.5 never interleaves the fragments of two messages). A peer that reads nothing for the
  network timeout is aborted there: the coroutine gets a local ProtocolError and ends.
* ``run(fn, *args)`` -- one bounded step of blocking work in the handler pool. A flow has at
  most one step in the pool at a time, so an association holds at most as many pool threads as
  its asynchronous operations window, and never one while it waits for its peer.
* ``prepare_store(payload)`` then ``send_store(prepared, before)`` (``prepared_uid`` names it
  in a failure list, ``discard`` drops one never sent) -- one C-STORE
  sub-operation of a C-GET on this association (PS3.4 C.4.3.3): the request is prepared in the
  pool (the converting sender, :func:`dicomnet.services.requests.store`), its PDUs read from
  the file in pieces of :data:`STORE_BATCH_BYTES` in the pool and written as the peer reads,
  and the C-STORE-RSP is awaited as a future the acceptor resolves when it arrives (``waiters``:
  a :class:`~dicomnet.dimse.router.MessageRouter` of futures), within the DIMSE timeout (or,
  without one, the network timeout); no answer in time aborts the association, as a requestor
  does;
* ``associate(host, port, ae_title, options)`` -- a C-MOVE sub-association, requested in the
  pool with the blocking client (:func:`dicomnet.client.request_association`).

The send lock is a ``threading.Lock`` because handler-pool threads (one-shot services, user
handlers) send with it too. The loop never blocks on it: when it is taken, the flow waits for
it in the loop's default executor instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, TypeAlias, TypeVar, cast

from dicomnet import client
from dicomnet.association import Association
from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.messages import DIMSEMessage
from dicomnet.dimse.router import MessageRouter
from dicomnet.errors import ProtocolError
from dicomnet.events import HandlerSpec, normalize_handlers
from dicomnet.services import requests
from dicomnet.services.payloads import as_payload
from dicomnet.services.qr import SubAssociation
from dicomnet.services.sending import close_handed, store_input
from dicomnet.settings import validate_ae_title
from dicomnet.transport.aio import AsyncDriver
from dicomnet.ul.pdu import UserIdentityRQ

if TYPE_CHECKING:
    from dicomnet.services.sending import StoreInput

__all__ = ["STORE_BATCH_BYTES", "Encoded", "PreparedStore", "ServiceFlow"]

LOGGER = logging.getLogger("dicomnet.server")

#: Bytes of a C-GET sub-operation's data set read from disk per pool step (and written per
#: socket write, once the peer has read the previous piece).
STORE_BATCH_BYTES = 512 << 10

T = TypeVar("T")
Chunks: TypeAlias = "Sequence[bytes | memoryview]"
"""One P-DATA-TF PDU as the buffers to write (PS3.8 9.3.5)."""
Encoded = tuple[DIMSEMessage, list[Chunks]]
Waiters: TypeAlias = "MessageRouter[asyncio.Future[P.DIMSEPrimitive]]"


def _take(pdus: Iterator[Chunks], limit: int) -> tuple[list[Chunks], bool]:
    """Pool thread: the next PDUs of a message, up to ``limit`` bytes (at least one), and
    whether they are the last."""
    out: list[Chunks] = []
    size = 0
    for chunks in pdus:
        out.append(chunks)
        size += sum(len(c) for c in chunks)
        if size >= limit:
            return out, False
    return out, True


class PreparedStore:
    """A C-GET sub-operation's C-STORE-RQ, ready to be written (:meth:`ServiceFlow.send_store`)."""

    __slots__ = ("converted", "done", "first", "handed", "message_id", "pdus", "sop_instance_uid")

    def __init__(self, message_id: int, sop_instance_uid: str, converted: DataSource | None,
                 pdus: Iterator[Chunks], first: list[Chunks], done: bool,
                 handed: object = None) -> None:  # fmt: skip
        self.message_id = message_id
        self.sop_instance_uid = sop_instance_uid
        self.converted = converted  # a converted payload to close once sent, or None
        self.pdus = pdus
        self.first = first
        self.done = done
        self.handed = handed  # what the handler yielded (closed once sent when it owns a file)

    def close(self) -> None:
        converted, self.converted = self.converted, None
        if converted is not None:
            with contextlib.suppress(Exception):
                converted.close()
        handed, self.handed = self.handed, None
        close_handed(handed)


class ServiceFlow:
    """The flow of one Q/R request on one association (loop thread; see the module docstring).

    ``observe`` is called with each response message just before it is written (the server's
    monitors count matches and record the final status); ``waiters`` is shared with the
    acceptor, which resolves a future when the response to one of our sub-operations comes.
    """

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        driver: AsyncDriver,
        assoc: Association,
        executor: Executor,
        send_lock: threading.Lock,
        context_id: int,
        waiters: Waiters,
        observe: Callable[[DIMSEMessage], None] | None = None,
    ) -> None:
        self.loop = loop
        self.driver = driver
        self.assoc = assoc
        self.provider = assoc.dimse
        self.executor = executor
        self.send_lock = send_lock
        self.context_id = context_id
        self.waiters = waiters
        self.observe = observe

    # --- the qr.Flow protocol ------------------------------------------------------------------
    def encode(self, rsp: P.DIMSEPrimitive) -> Encoded:
        """``rsp`` as (message, PDUs); any thread (the data set is encoded here)."""
        msg, pdus = self.provider.message_pdus(rsp, self.context_id)
        return msg, cast("list[Chunks]", list(pdus))

    def repeated(self, rsp: P.DIMSEPrimitive) -> Callable[[object], Encoded]:
        """An encoder for responses like ``rsp`` that differ only in their data set (a
        DataSource or pydicom Dataset): the command set is encoded once (any thread)."""
        fast = self.provider.repeated_pdus(rsp, self.context_id)
        ts = self.assoc.transfer_syntax_of(self.context_id)

        def encode(data: object) -> Encoded:
            source = as_payload(data, ts)
            if fast is not None:
                msg, pdus = fast(source)
                return msg, cast("list[Chunks]", pdus)
            rsp.Identifier = source
            return self.encode(rsp)

        return encode

    async def write(self, encoded: list[Encoded]) -> None:
        """Write responses once the peer has read what came before (aborts a stalled peer)."""
        await self.driver.writable()
        await self._lock()
        try:
            for msg, pdus in encoded:
                if self.observe is not None:
                    self.observe(msg)
                self.driver.write_pdus(pdus)
        finally:
            self.send_lock.release()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in the handler pool."""
        return await self.loop.run_in_executor(self.executor, fn, *args)

    async def run_flushing(self, fn: Callable[..., T], args: tuple[object, ...],
                           out: deque[Encoded], after: float) -> T:  # fmt: skip
        """:meth:`run` of a ``fn`` that fills ``out``; if it is still running after ``after``
        seconds (the handler blocked), what it made so far is written meanwhile. The pool
        thread appends and this loop pops at the other end of the deque (both atomic)."""
        task = self.loop.run_in_executor(self.executor, fn, *args)
        done, _ = await asyncio.wait((task,), timeout=after)
        if not done and out:
            taken = [out.popleft() for _ in range(len(out))]
            try:
                await self.write(taken)
            except BaseException:
                await asyncio.wait((task,))  # the pool step ends before the handler is closed
                raise
        return await task

    async def store(self, payload: StoreInput) -> int | None:
        """One C-STORE sub-operation on this association: the response's status. Raises what
        preparing the request raised (no accepted context, a conversion the codecs cannot
        do) and ProtocolError when the association is gone."""
        return await self.send_store(await self.run(self.prepare_store, payload), [])

    def prepare_store(self, payload: object) -> PreparedStore:
        """Pool thread: the C-STORE-RQ for ``payload`` (converted when its syntax was not
        accepted), its Message ID and its first PDUs, read from the file."""
        try:
            built = requests.store(self.assoc, store_input(payload))
        except BaseException:
            close_handed(payload)
            raise
        prim = built.primitive
        mid = prim.MessageID = self._message_id()
        _, pdus = self.provider.message_pdus(prim, built.context_id)
        try:
            first, done = _take(pdus, STORE_BATCH_BYTES)
        except BaseException:
            built.sent()
            close_handed(payload)
            raise
        return PreparedStore(mid, str(prim.AffectedSOPInstanceUID), built.owned, pdus, first, done,
                             payload)  # fmt: skip

    def prepared_uid(self, prepared: PreparedStore) -> str:
        return prepared.sop_instance_uid

    def discard(self, prepared: PreparedStore) -> None:
        prepared.close()

    async def associate(
        self, host: str, port: int, ae_title: str, options: dict[str, object]
    ) -> SubAssociation:
        """A C-MOVE sub-association (blocking client, in the pool); ``options`` are further
        arguments of ``AE.associate`` (``contexts``, ``max_pdu``, ``ssl_context``, ...)."""
        settings = self.assoc.ae
        opts = dict(options)
        ae_title = str(opts.pop("ae_title", None) or ae_title)  # the handler may name it
        tls_args = opts.pop("tls_args", None)
        if isinstance(tls_args, tuple) and len(tls_args) == 2:
            opts.setdefault("ssl_context", tls_args[0])
            opts.setdefault("server_hostname", tls_args[1])
        max_pdu = opts.pop("max_pdu", None)
        request = client.AssociationRequest(
            host, port, _typed(opts, "contexts", list), validate_ae_title(ae_title),
            settings.maximum_pdu_size if max_pdu is None else int(str(max_pdu)),
            _typed(opts, "ext_neg", list), _handlers(opts),
            _typed(opts, "user_identity", UserIdentityRQ),
            _typed(opts, "max_operations_invoked", int),
            _typed(opts, "max_operations_performed", int),
        )  # fmt: skip
        bind_address = _typed(opts, "bind_address", tuple)
        ssl_context = _typed(opts, "ssl_context", ssl.SSLContext)
        server_hostname = _typed(opts, "server_hostname", str)
        if opts:
            raise TypeError(f"unknown C-MOVE destination options: {', '.join(sorted(opts))}")

        def request_association() -> Association:
            return client.request_association(
                settings, request, bind_address=bind_address, ssl_context=ssl_context,
                server_hostname=server_hostname,
            )  # fmt: skip

        return await self.run(request_association)

    async def send_store(self, prepared: PreparedStore, before: list[Encoded]) -> int | None:
        """Loop: write ``before`` (encoded responses) and the prepared request as the peer
        reads, then await the C-STORE-RSP: its status."""
        mid = prepared.message_id
        fut: asyncio.Future[P.DIMSEPrimitive] = self.loop.create_future()
        self.waiters.open(mid, fut)
        try:
            batch, done = prepared.first, prepared.done
            await self.driver.writable()
            await self._lock()
            try:
                for msg, pdus in before:
                    if self.observe is not None:
                        self.observe(msg)
                    self.driver.write_pdus(pdus)
                while True:
                    self.driver.write_pdus(batch)
                    if done:
                        break
                    batch, done = await self.run(_take, prepared.pdus, STORE_BATCH_BYTES)
                    await self.driver.writable()
            finally:
                self.send_lock.release()
            # the DIMSE timeout, or else the network timeout: a peer silent that long while we
            # wait for its answer is gone (PS3.7 9.1.1: every C-STORE-RQ gets a response)
            timeout = self.assoc.dimse_timeout or self.driver.idle_timeout
            try:
                rsp = await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                LOGGER.warning("no C-STORE response from %s within %s s: aborting",
                               self.driver.peername, timeout)  # fmt: skip
                self.driver.abort()
                raise ProtocolError(f"no C-STORE response within {timeout} s",
                                    local=True) from None  # fmt: skip
            status = rsp.Status
            return None if status is None else int(status)
        finally:
            self.waiters.close(mid)
            prepared.close()

    # --- internals ------------------------------------------------------------------------------
    def _message_id(self) -> int:
        """A Message ID free on the association (its own requests) and among our
        sub-operations (PS3.7 9.1.1.1.1)."""
        with self.assoc.lock:
            return self.assoc.router.new_id(self.waiters)

    async def _lock(self) -> None:
        """Take the send lock without blocking the loop."""
        lock = self.send_lock
        if lock.acquire(blocking=False):
            return
        fut = self.loop.run_in_executor(None, lock.acquire)
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            # the thread will still get the lock: give it back as soon as it does
            fut.add_done_callback(lambda _f: lock.release())
            raise


def _handlers(options: dict[str, object]) -> HandlerSpec | None:
    value = options.pop("evt_handlers", None)
    if value is None:
        return None
    return [(event, fn, args) for event, bound in normalize_handlers(value).items()
            for fn, args in bound]  # fmt: skip


def _typed(options: dict[str, object], name: str, kind: type[T]) -> T | None:
    """``options.pop(name)`` checked to be a ``kind`` (a tuple is taken for a list)."""
    value = options.pop(name, None)
    if value is None:
        return None
    if kind is list and isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind):
        raise TypeError(f"C-MOVE destination option {name} must be a {kind.__name__}, not {value!r}")
    return value
