"""Query/Retrieve (PS3.4 Annex C) and Modality Worklist (PS3.4 Annex K), SCP side: the flow
and C-FIND.

Theory of operation
-------------------
The three services run as coroutines on the server's event loop, driven by a :class:`Flow`
that the server gives them: blocking work -- the handler's generator, sub-operation
preparation (file reads, conversions), a C-MOVE sub-association -- runs in the handler pool
through ``flow.run``, one bounded step at a time; responses are written by ``flow.write`` only
when the peer has read what came before (``flow.write`` waits for the transport to drain). So a
peer that stops reading holds no pool thread and at most one batch of responses in memory, and
after the network timeout it is aborted (PS3.8 9.3.8 A-ABORT). That is the back-pressure: the
handler produces as fast as the peer reads, never faster. A C-CANCEL-RQ (PS3.7 9.3.2.3) is seen
between steps through ``call.is_cancelled``. Handlers are generators (or async generators,
stepped on the loop).

C-FIND (PS3.4 C.4.1.2, K.4.1.2): the handler yields ``(status, identifier)``. Each Pending
(FF00/FF01) item becomes a pending C-FIND-RSP with the identifier encoded in the context's
transfer syntax; items are pulled and encoded in the pool in batches of :data:`FIND_BATCH`
(one thread hop and one socket write per batch), and a batch still running after
:data:`FIND_FLUSH_SECONDS` has what it made written meanwhile (a handler that blocks after
some matches does not hold them back until the peer's DIMSE timeout); a non-pending status
ends the operation with that status; the end of the generator ends it with Success. A cancel
seen between items ends it with FE00 (no identifier). Exceptions: C311 (PS3.4 Table C.4-1:
Cxxx unable to process). The Relevant Patient Information Query SOP classes (PS3.4 Annex Q) answer for one patient: at
most one Pending response, then Success -- the handler is not asked for more (a second match
is the handler's to report, as C100 "more than one match", before it yields the first).

C-GET and C-MOVE are in :mod:`dicomnet.services.retrieve`; both use :class:`Flow` and the
handler items of this module.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Category, Status, category
from dicomnet.errors import ProtocolError
from dicomnet.services.call import (
    HandlerMistake,
    ServiceCall,
    apply_status,
    failure_from_exception,
    status_parts,
)
from dicomnet.services.payloads import as_payload
from dicomnet.transcode import inspect_file

if TYPE_CHECKING:
    from dicomnet.services.sending import StoreInput

__all__ = [
    "DONE",
    "FIND_BATCH",
    "Flow",
    "FlowService",
    "HandlerItems",
    "Runner",
    "Step",
    "SubAssociation",
    "association_gone",
    "describe",
    "find",
    "make_step",
    "pair",
]

LOGGER = logging.getLogger("dicomnet.services.qr")

#: C-FIND matches pulled from the handler and encoded per pool step (and per socket write)...
FIND_BATCH = 64
#: ... or fewer, when the handler took this long (seconds) to produce them: a slow handler's
#: matches are still seen as they come (and can be cancelled).
FIND_BATCH_SECONDS = 0.005
#: A batch still running after this many seconds (the handler blocked after producing some
#: matches: a slow next page, a remote look-up) has what it produced written meanwhile: matches
#: never wait on the next one (the peer's DIMSE timeout would run out).
FIND_FLUSH_SECONDS = 0.05

T = TypeVar("T")
E = TypeVar("E")  # an encoded response, ready to be written (opaque to the services)
S = TypeVar("S")  # a prepared C-STORE sub-operation (opaque to the services)


class _Done:
    """The end of the handler's items."""

    def __repr__(self) -> str:
        return "DONE"


DONE = _Done()
BatchEnd = Literal["more", "done", "stopped"]


class SubAssociation(Protocol):
    """The C-MOVE sub-association, as C-MOVE uses it (a blocking association)."""

    @property
    def is_established(self) -> bool: ...

    @property
    def failure_reason(self) -> str | None: ...

    @property
    def rejection_text(self) -> str | None: ...

    def send_c_store(
        self, dataset: StoreInput, *, originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> object:  # fmt: skip
        """The C-STORE-RSP status (a pydicom Dataset; empty when none came)."""
        ...

    def release(self) -> None: ...


class Flow(Protocol[E, S]):
    """What a Q/R service needs from the server (see the module docstring)."""

    def encode(self, rsp: P.DIMSEPrimitive) -> E:
        """A response encoded into its PDUs, ready for :meth:`write` (any thread)."""
        ...

    def repeated(self, rsp: P.DIMSEPrimitive) -> Callable[[object], E]:
        """An encoder of responses like ``rsp`` that differ only in their data set."""
        ...

    async def write(self, encoded: list[E]) -> None:
        """Write encoded responses once the peer has read what came before."""

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in the handler pool."""
        ...

    async def run_flushing(self, fn: Callable[..., T], args: tuple[object, ...],
                           out: deque[E], after: float) -> T:  # fmt: skip
        """:meth:`run`, for a ``fn`` that appends encoded responses to ``out`` as it makes
        them: when it has not returned after ``after`` seconds (the handler blocks), what is
        in ``out`` by then is taken out and written."""
        ...

    def prepare_store(self, payload: object) -> S:
        """Pool thread: a C-STORE sub-operation on this association made ready (the request,
        converted if need be, and its first PDUs read); raises when it cannot be made (no
        accepted context, a conversion the codecs cannot do)."""
        ...

    def prepared_uid(self, prepared: S) -> str:
        """The SOP Instance UID a prepared sub-operation stores."""
        ...

    def discard(self, prepared: S) -> None:
        """Drop a prepared sub-operation that will not be sent."""

    async def send_store(self, prepared: S, before: list[E]) -> int | None:
        """Loop: write ``before`` (encoded responses) and the prepared request, await the
        response; its status (None: no response in time)."""
        ...

    async def associate(
        self, host: str, port: int, ae_title: str, options: dict[str, object]
    ) -> SubAssociation:
        """A C-MOVE sub-association with ``host:port`` (called AE title ``ae_title``;
        ``options``: more arguments of ``AE.associate``), requested in the pool."""
        ...


FlowService = Callable[[ServiceCall, "Flow[E, S]"], Awaitable[None]]
"""A Q/R service coroutine: C-FIND, C-GET or C-MOVE."""


def association_gone(exc: BaseException) -> bool:
    """True for the local ProtocolError of a dead association: nobody is left to answer."""
    return isinstance(exc, ProtocolError) and exc.local


def pair(item: object, what: str) -> tuple[object, object]:
    """A handler's ``(status, dataset)`` item, or TypeError."""
    if not isinstance(item, tuple) or len(item) != 2:
        raise TypeError(f"a {what} handler yields (status, dataset) pairs, not {item!r}")
    return item[0], item[1]


# --- handler items ---------------------------------------------------------------------------


class Step(Generic[S]):
    """A handler item of C-GET/C-MOVE and its sub-operation, prepared in the pool."""

    __slots__ = ("error", "item", "prepared", "uid")

    def __init__(self, item: object) -> None:
        self.item = item
        self.prepared: S | None = None
        self.error: BaseException | None = None
        self.uid: str | None = None


class Runner(Protocol):
    """``await run(fn, *args)``: ``fn(*args)`` in the handler pool (:meth:`Flow.run`)."""

    def __call__(self, fn: Callable[..., T], *args: object) -> Awaitable[T]: ...


class FlushRunner(Protocol):
    """``await run(fn, args, out, after)``: :meth:`Flow.run_flushing`."""

    def __call__(self, fn: Callable[..., T], args: tuple[object, ...], out: deque[Any],
                 after: float) -> Awaitable[T]: ...  # fmt: skip


class BadIdentifier(HandlerMistake):
    """A Pending C-FIND item whose identifier is missing or cannot be encoded: a Pending
    response carries the match (PS3.4 C.4.1.1.3.2); answered C312, pynetdicom's code."""

    def __init__(self, text: str) -> None:
        super().__init__(Status.FIND_BAD_IDENTIFIER, text)


class PartialBatch(Exception):
    """The handler raised (or its item could not be used) after the batch had ``made`` items
    ready: they go out before the failure response, as the handler had yielded them."""

    def __init__(self, made: list[Any], cause: Exception) -> None:
        super().__init__(str(cause))
        self.made = made
        self.cause = cause


class HandlerItems:
    """The handler's items, whatever it returned: a generator stepped in the pool, an async
    generator stepped on the loop, or a plain iterable."""

    def __init__(self, call: ServiceCall, run: Runner) -> None:
        self.call = call
        self.run = run  # the flow's: fn(*args) in the handler pool
        self._sync: Iterator[object] | None = None
        self._async: AsyncGenerator[object, None] | None = None

    async def start(self) -> None:
        produced = await self.run(self.call.invoke)
        if isinstance(produced, Awaitable):
            produced = await produced
        if isinstance(produced, AsyncGenerator):
            self._async = produced
        elif produced is None:
            self._sync = iter(())
        elif isinstance(produced, Iterable):
            self._sync = iter(produced)
        else:
            raise TypeError(f"the handler must return a generator or an iterable, not {produced!r}")

    async def next(self) -> object:
        """The next item, or :data:`DONE`."""
        if self._async is not None:
            try:
                return await self._async.__anext__()
            except StopAsyncIteration:
                return DONE
        assert self._sync is not None
        return await self.run(next, self._sync, DONE)

    async def next_step(self, prepare: Callable[[object], S]) -> Step[S]:
        """The next item and, in the same pool step, what ``prepare`` makes of its payload
        (a sub-operation made ready to go)."""
        if self._async is not None:
            return await self.run(make_step, await self.next(), prepare)
        assert self._sync is not None
        return await self.run(_next_step, self._sync, prepare)

    async def next_steps(self, prepare: Callable[[object], S], n: int) -> list[Step[S]]:
        """Up to ``n`` items and their prepared sub-operations in one pool step (at least one;
        the batch ends after an item that is not a prepared Pending one, at a cancel, or after
        :data:`FIND_BATCH_SECONDS`): one hand-over between loop and pool for many
        sub-operations whose ``prepare`` runs them whole (C-MOVE)."""
        if self._async is not None or n <= 1:
            return [await self.next_step(prepare)]
        assert self._sync is not None
        return await self.run(_next_steps, self._sync, prepare, n, self.call)

    async def batch(
        self, convert: Callable[[object], tuple[E | None, bool]], n: int, flush_run: FlushRunner
    ) -> tuple[list[E], BatchEnd]:
        """Up to ``n`` converted items (``convert(item) -> (value, stop)``, None values left
        out), and why the batch ended: "stopped" after a ``stop`` item, "done" at the end of
        the items, else "more" (full, slow, or cancelled). Items of a sync generator that
        blocks after some were made are written meanwhile by ``flush_run`` (the flow's
        :meth:`Flow.run_flushing`): only those made after that come back here."""
        if self._async is not None:
            out: list[E] = []
            count = 0
            until = time.monotonic() + FIND_BATCH_SECONDS
            while count < n and (not count or time.monotonic() < until):
                # the handler is resumed before the cancel is looked at: it may see it itself
                try:
                    item = await self.next()
                    if item is DONE:
                        return out, "done"
                    value, stop = convert(item)
                except Exception as exc:
                    if out and not association_gone(exc):
                        raise PartialBatch(out, exc) from exc
                    raise
                count += 1
                if value is not None:
                    out.append(value)
                if stop:
                    return out, "stopped"
                if self.call.is_cancelled:
                    break
            return out, "more"
        assert self._sync is not None
        made: deque[E] = deque()
        try:
            end = await flush_run(_pull, (self._sync, convert, n, self.call, made), made,
                                  FIND_FLUSH_SECONDS)  # fmt: skip
        except Exception as exc:
            if made and not association_gone(exc):
                raise PartialBatch(list(made), exc) from exc
            raise
        return list(made), end

    async def close(self) -> None:
        try:
            if self._async is not None:
                await self._async.aclose()
            elif self._sync is not None:
                close = getattr(self._sync, "close", None)  # a generator; a plain iterator has none
                if close is not None:
                    await self.run(close)
        except Exception as exc:  # a generator misbehaving in its finally
            LOGGER.warning("closing a handler generator failed: %s", exc)


def _pull(it: Iterator[object], convert: Callable[[object], tuple[E | None, bool]], n: int,
          call: ServiceCall, out: deque[E]) -> BatchEnd:  # fmt: skip
    """Pool thread: :meth:`HandlerItems.batch` of a sync generator, into ``out`` (which the
    loop may drain meanwhile: see :data:`FIND_FLUSH_SECONDS`)."""
    count = 0
    until = time.monotonic() + FIND_BATCH_SECONDS
    while count < n and (not count or time.monotonic() < until):
        # the handler is resumed before the cancel is looked at: it may see it itself
        item = next(it, DONE)
        if item is DONE:
            return "done"
        value, stop = convert(item)
        count += 1
        if value is not None:
            out.append(value)
        if stop:
            return "stopped"
        if call.is_cancelled:
            break
    return "more"


def _next_step(it: Iterator[object], prepare: Callable[[object], S]) -> Step[S]:
    return make_step(next(it, DONE), prepare)


def _next_steps(it: Iterator[object], prepare: Callable[[object], S], n: int,
                call: ServiceCall) -> list[Step[S]]:  # fmt: skip
    """Pool thread: :meth:`HandlerItems.next_steps` of a sync generator."""
    steps: list[Step[S]] = []
    until = time.monotonic() + FIND_BATCH_SECONDS
    while True:
        # the handler is resumed before the cancel is looked at: it may see it itself
        step = make_step(next(it, DONE), prepare)
        steps.append(step)
        if (step.prepared is None or len(steps) >= n or call.is_cancelled
                or time.monotonic() >= until):  # fmt: skip
            return steps


def make_step(item: object, prepare: Callable[[object], S]) -> Step[S]:
    """Pool thread: ``prepare`` the payload of a Pending item (anything else is left for the
    loop to interpret); a failure is kept, with the instance's UID for the failed list."""
    step: Step[S] = Step(item)
    if item is DONE or not (isinstance(item, tuple) and len(item) == 2):
        return step
    try:
        if category(status_parts(item[0])[0]) is not Category.PENDING:
            return step
    except Exception:
        return step  # the loop reports the bad status
    try:
        step.prepared = prepare(item[1])
    except Exception as exc:
        step.error = exc
        step.uid = describe(item[1])[1]
    return step


def describe(payload: object) -> tuple[str | None, str | None, str | None]:
    """(SOP class UID, SOP instance UID, transfer syntax) of a Dataset or a Part 10 path: of
    the data set itself (PS3.4 B.2.1), read from the file's first bytes without a pydicom parse
    (:func:`dicomnet.transcode.inspect_file`)."""
    if isinstance(payload, str | bytes | os.PathLike):
        try:
            info = inspect_file(os.fsdecode(payload))
        except Exception:
            return None, None, None
        return info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax
    meta = getattr(payload, "file_meta", None)  # a pydicom Dataset (duck-typed: not imported)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return (
        _opt(getattr(payload, "SOPClassUID", None)),
        _opt(getattr(payload, "SOPInstanceUID", None)),
        _opt(ts),
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


# --- C-FIND -----------------------------------------------------------------------------------


# PS3.4 Annex Q: General, Breast Imaging and Cardiac Relevant Patient Information Query
_ONE_MATCH_CLASSES = frozenset(
    ("1.2.840.10008.5.1.4.37.1", "1.2.840.10008.5.1.4.37.2", "1.2.840.10008.5.1.4.37.3")
)


def _find_rsp(call: ServiceCall) -> P.C_FIND:
    rsp = P.C_FIND()
    rsp.MessageIDBeingRespondedTo = call.request.MessageID
    rsp.AffectedSOPClassUID = call.request.AffectedSOPClassUID
    return rsp


async def find(call: ServiceCall, flow: Flow[E, S]) -> None:
    """Answer one C-FIND-RQ (Q/R or worklist) on the event loop."""
    final = _find_rsp(call)
    if call.handler is None:  # as a handler that cannot process it (C311H, as pynetdicom)
        apply_status(final, Status.FIND_FAILURE)
        await flow.write([flow.encode(final)])
        return
    items = HandlerItems(call, flow.run)
    plain = _find_rsp(call)  # the usual pending response: FF00 and an identifier
    apply_status(plain, Status.PENDING)
    plain.Identifier = DataSource.from_bytes(b"", call.transfer_syntax)
    encode_pending = flow.repeated(plain)
    one_match = call.request.AffectedSOPClassUID in _ONE_MATCH_CLASSES

    def convert(item: object) -> tuple[E | None, bool]:
        """Pool thread (or loop for async generators): an item -> its encoded pending
        response, or the final status (stop)."""
        status, identifier = pair(item, "C-FIND")
        fast = status == Status.PENDING and identifier is not None and type(status) is int
        if fast and not one_match:
            try:
                return encode_pending(identifier), False  # command set encoded once per request
            except Exception as exc:
                raise BadIdentifier(f"cannot encode the identifier: {exc}") from exc
        code, extras = status_parts(status)
        if category(code) is not Category.PENDING:
            apply_status(final, code, extras)
            return None, True
        rsp = _find_rsp(call)
        apply_status(rsp, code, extras)
        if identifier is None:
            raise BadIdentifier("a Pending C-FIND response needs an identifier, not None")
        try:
            rsp.Identifier = as_payload(identifier, call.transfer_syntax)
        except Exception as exc:
            raise BadIdentifier(f"cannot encode the identifier: {exc}") from exc
        if one_match:  # PS3.4 Q: the first match is the answer, then Success
            apply_status(final, Status.SUCCESS)
            return flow.encode(rsp), True
        return flow.encode(rsp), False

    try:
        await items.start()
        while True:
            pending, end = await items.batch(convert, FIND_BATCH, flow.run_flushing)
            if pending:
                await flow.write(pending)
            if call.is_cancelled:
                apply_status(final, Status.CANCEL)
                break
            if end == "done":
                apply_status(final, Status.SUCCESS)
                break
            if end == "stopped":  # a final status from the handler
                break
    except Exception as exc:
        if association_gone(exc):
            raise  # the peer went away (or stalled): nobody to answer
        if isinstance(exc, PartialBatch):  # the matches it yielded before it raised go first
            await flow.write(exc.made)
            exc = exc.cause
        final = _find_rsp(call)
        code = exc.code if isinstance(exc, HandlerMistake) else Status.FIND_FAILURE
        failure_from_exception(final, code, exc, "C-FIND")
    finally:
        await items.close()
    await flow.write([flow.encode(final)])
