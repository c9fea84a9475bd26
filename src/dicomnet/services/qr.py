"""Query/Retrieve (PS3.4 Annex C) and Modality Worklist (PS3.4 Annex K), SCP side.

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
(one thread hop and one socket write per batch); a non-pending status ends the operation with
that status; the end of the generator ends it with Success. A cancel seen between items ends
it with FE00 (no identifier). Exceptions: C311 (PS3.4 Table C.4-1: Cxxx unable to process).

C-GET (PS3.4 C.4.3.2): the handler first yields the number of sub-operations, then
``(status, dataset_or_path)``. Each Pending item is one C-STORE sub-operation on *the same
association* (``flow.store``) -- the requestor must have taken the SCP role for that storage
SOP class (role selection, PS3.7 D.3.3.4). Every sub-operation goes through the library's
sender, which sends each instance as it is when its syntax was accepted and converts it
otherwise (:mod:`dicomnet.services.sending`). After each sub-operation a pending C-GET-RSP
reports the Remaining/Completed/Failed/Warning counts (PS3.7 Table 9.3-10). The final response:

* 0000 when every sub-operation succeeded;
* B000 when some (or all) failed or gave a warning (PS3.4 Table C.4-3 "Sub-operations
  Complete - One or more Failures or Warnings"), with the Failed SOP Instance UID List
  (0008,0058) in an identifier and an Error Comment naming the first failure's reason (no
  accepted context, a conversion the codecs cannot do, the peer's failure status). A702 ("out
  of resources") is not used for these: nothing ran out, and DCMTK's and Orthanc's answer of
  A702 when all failed hides the reason the requestor needs;
* FE00 after a cancel, with the counts and Remaining, plus the failed list if any;
* the handler's own status when it yields a non-pending one (e.g. A701, or C-range);
* C411 when the handler raises.

C-MOVE (PS3.4 C.4.2.2): the handler first yields the destination ``(host, port)`` (or
``(host, port, associate_kwargs)``) for the Move Destination AE title, ``(None, None)`` when it
does not know it (A801), then the count, then the items as for C-GET. The sub-operations go over
a new association requested in the pool (blocking driver) with the called AE title = Move
Destination, proposing for each SOP class found in the first items (look-ahead) one context
per transfer syntax they are stored in plus Explicit and Implicit VR Little Endian, each
separately (:func:`dicomnet.transcode.select.context_plan`, within the 128 contexts of PS3.8),
plus common storage classes when more items follow (a handler that knows every instance's
class and syntax passes ``contexts`` in the destination's associate arguments); each
sub-operation runs in the pool and each C-STORE-RQ carries Move Originator AE Title and Message
ID (PS3.7 Table 9.3-1). Failure to associate: A801 with an Error Comment. Exceptions: C511.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, TypeVar

from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Category, category
from dicomnet.services.dispatch import (
    NO_HANDLER_STATUS,
    ServiceCall,
    apply_status,
    error_comment,
    failure_from_exception,
    status_parts,
)

__all__ = [
    "FIND_BATCH",
    "FIND_FAILURE",
    "GET_FAILURE",
    "MOVE_FAILURE",
    "Flow",
    "find",
    "get",
    "move",
    "short_reason",
]

LOGGER = logging.getLogger("dicomnet.services.qr")

PENDING = 0xFF00
CANCEL = 0xFE00
SUCCESS = 0x0000
SUBOPS_WARNING = 0xB000  # PS3.4 Table C.4-2/C.4-3
UNKNOWN_DESTINATION = 0xA801
FIND_FAILURE = 0xC311
GET_FAILURE = 0xC411
MOVE_FAILURE = 0xC511
LOOKAHEAD = 64  # C-MOVE items read before the sub-association is requested
MAX_CONTEXTS = 128  # PS3.8 section 9.3.2.2
#: C-FIND matches pulled from the handler and encoded per pool step (and per socket write)...
FIND_BATCH = 64
#: ... or fewer, when the handler took this long (seconds) to produce them: a slow handler's
#: matches are still seen as they come (and can be cancelled).
FIND_BATCH_SECONDS = 0.005

T = TypeVar("T")
_DONE = object()


class Flow(Protocol):
    """What a Q/R service needs from the server (see the module docstring)."""

    def encode(self, rsp: P.DIMSEPrimitive) -> Any:
        """A response encoded into its PDUs, ready for :meth:`write` (any thread)."""

    def repeated(self, rsp: P.DIMSEPrimitive) -> Callable[[Any], Any]:
        """An encoder of responses like ``rsp`` that differ only in their data set."""

    async def write(self, encoded: list[Any]) -> None:
        """Write encoded responses once the peer has read what came before."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the handler pool."""

    async def store(self, payload: Any) -> int | None:
        """One C-STORE sub-operation on this association: the response's status (None: no
        response in time); raises when the request cannot be made (no context, no codec)."""

    def prepare_store(self, payload: Any) -> Any:
        """Pool thread: :meth:`store`'s blocking half (the request, converted if need be, and
        its first PDUs read); raises as :meth:`store` does. Has ``sop_instance_uid``."""

    async def send_store(self, prepared: Any, before: list[Any]) -> int | None:
        """Loop: :meth:`store`'s other half -- write ``before`` (encoded responses) and the
        request, await the response; its status."""


# --- handler items ---------------------------------------------------------------------------


class _Items:
    """The handler's items, whatever it returned: a generator stepped in the pool, an async
    generator stepped on the loop, or a plain iterable."""

    def __init__(self, call: ServiceCall, flow: Flow) -> None:
        self.call = call
        self.flow = flow
        self._sync: Iterator[Any] | None = None
        self._async: Any = None

    async def start(self) -> None:
        produced = await self.flow.run(self.call.invoke)
        if inspect.isawaitable(produced):
            produced = await produced
        if inspect.isasyncgen(produced):
            self._async = produced
        else:
            self._sync = iter(()) if produced is None else iter(produced)

    async def next(self) -> Any:
        """The next item, or ``_DONE``."""
        if self._async is not None:
            try:
                return await self._async.__anext__()
            except StopAsyncIteration:
                return _DONE
        assert self._sync is not None
        return await self.flow.run(next, self._sync, _DONE)

    async def next_step(self, prepare: Callable[[Any], Any]) -> _Step:
        """The next item and, in the same pool step, what ``prepare`` makes of its payload
        (a sub-operation made ready to go)."""
        if self._async is not None:
            return await self.flow.run(_make_step, await self.next(), prepare)
        assert self._sync is not None
        return await self.flow.run(_next_step, self._sync, prepare)

    async def batch(self, convert: Callable[[Any], tuple[Any, bool]], n: int) -> list[Any]:
        """Up to ``n`` converted items (``convert(item) -> (value, stop)``), stopping after a
        ``stop`` one, at the end (``_DONE`` appended) or on a cancel."""
        if self._async is not None:
            out: list[Any] = []
            until = time.monotonic() + FIND_BATCH_SECONDS
            while len(out) < n and (not out or time.monotonic() < until):
                # the handler is resumed before the cancel is looked at: it may see it itself
                item = await self.next()
                if item is _DONE:
                    out.append(_DONE)
                    break
                value, stop = convert(item)
                out.append(value)
                if stop or self.call.is_cancelled:
                    break
            return out
        assert self._sync is not None
        return await self.flow.run(_pull, self._sync, convert, n, self.call)

    async def close(self) -> None:
        try:
            if self._async is not None:
                await self._async.aclose()
            elif self._sync is not None and hasattr(self._sync, "close"):
                await self.flow.run(self._sync.close)
        except Exception as exc:  # a generator misbehaving in its finally
            LOGGER.warning("closing a handler generator failed: %s", exc)


def _pull(it: Iterator[Any], convert: Callable[[Any], tuple[Any, bool]], n: int,
          call: ServiceCall) -> list[Any]:  # fmt: skip
    """Pool thread: up to ``n`` converted items of a sync generator (see :meth:`_Items.batch`)."""
    out: list[Any] = []
    until = time.monotonic() + FIND_BATCH_SECONDS
    while len(out) < n and (not out or time.monotonic() < until):
        # the handler is resumed before the cancel is looked at: it may see it itself
        item = next(it, _DONE)
        if item is _DONE:
            out.append(_DONE)
            break
        value, stop = convert(item)
        out.append(value)
        if stop or call.is_cancelled:
            break
    return out


class _Step:
    """A handler item of C-GET/C-MOVE and its sub-operation, prepared in the pool."""

    __slots__ = ("error", "item", "prepared", "uid")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.prepared: Any = None
        self.error: BaseException | None = None
        self.uid: str | None = None


def _next_step(it: Iterator[Any], prepare: Callable[[Any], Any]) -> _Step:
    return _make_step(next(it, _DONE), prepare)


def _make_step(item: Any, prepare: Callable[[Any], Any]) -> _Step:
    """Pool thread: ``prepare`` the payload of a Pending item (anything else is left for the
    loop to interpret); a failure is kept, with the instance's UID for the failed list."""
    step = _Step(item)
    if item is _DONE or not (isinstance(item, tuple) and len(item) == 2):
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
        step.uid = _describe(item[1])[1]
    return step


def _pair(item: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(item, tuple) or len(item) != 2:
        raise TypeError(f"a {what} handler yields (status, dataset) pairs, not {item!r}")
    return item[0], item[1]


# --- C-FIND -----------------------------------------------------------------------------------


def _find_rsp(call: ServiceCall) -> P.C_FIND:
    rsp = P.C_FIND()
    rsp.MessageIDBeingRespondedTo = call.request.MessageID
    rsp.AffectedSOPClassUID = getattr(call.request, "AffectedSOPClassUID", None)
    return rsp


def _encoded(call: ServiceCall, dataset: Any) -> DataSource:
    if isinstance(dataset, DataSource):
        return dataset
    return DataSource.from_dataset(dataset, call.transfer_syntax)


async def find(call: ServiceCall, flow: Flow) -> None:
    """Answer one C-FIND-RQ (Q/R or worklist) on the event loop."""
    final = _find_rsp(call)
    if call.handler is None:
        apply_status(final, NO_HANDLER_STATUS)
        await flow.write([flow.encode(final)])
        return
    items = _Items(call, flow)
    plain = _find_rsp(call)  # the usual pending response: FF00 and an identifier
    apply_status(plain, PENDING)
    plain.Identifier = DataSource.from_bytes(b"", call.transfer_syntax)
    encode_pending = flow.repeated(plain)

    def convert(item: Any) -> tuple[Any, bool]:
        """Pool thread (or loop for async generators): an item -> its encoded pending
        response, or the final status (stop)."""
        status, identifier = _pair(item, "C-FIND")
        if status == PENDING and identifier is not None and type(status) is int:
            return encode_pending(identifier), False  # command set encoded once per request
        code, extras = status_parts(status)
        if category(code) is not Category.PENDING:
            apply_status(final, code, extras)
            return None, True
        rsp = _find_rsp(call)
        apply_status(rsp, code, extras)
        if identifier is not None:
            rsp.Identifier = _encoded(call, identifier)
        return flow.encode(rsp), False

    try:
        await items.start()
        while True:
            batch = await items.batch(convert, FIND_BATCH)
            pending = [b for b in batch if b is not None and b is not _DONE]
            if pending:
                await flow.write(pending)
            if call.is_cancelled:
                apply_status(final, CANCEL)
                break
            if not batch or batch[-1] is _DONE:
                apply_status(final, SUCCESS)
                break
            if batch[-1] is None:  # a final status from the handler
                break
    except Exception as exc:
        if _association_gone(exc):
            raise  # the peer went away (or stalled): nobody to answer
        final = _find_rsp(call)
        failure_from_exception(final, FIND_FAILURE, exc, "C-FIND")
    finally:
        await items.close()
    await flow.write([flow.encode(final)])


# --- retrieve (C-GET, C-MOVE) -------------------------------------------------------------------


class _Retrieve:
    """Sub-operation bookkeeping shared by C-GET and C-MOVE (PS3.7 Table 9.3-10 / 9.3-8)."""

    def __init__(self, call: ServiceCall, cls: type[P.C_GET] | type[P.C_MOVE],
                 flow: Flow) -> None:  # fmt: skip
        self.call = call
        self.cls = cls
        self.flow = flow
        self.total = 0
        self.completed = 0
        self.failed = 0
        self.warning = 0
        self.failed_uids: list[str] = []
        self.first_failure: str | None = None

    @property
    def remaining(self) -> int:
        return max(self.total - self.completed - self.failed - self.warning, 0)

    def response(self) -> P.C_GET | P.C_MOVE:
        rsp = self.cls()
        rsp.MessageIDBeingRespondedTo = self.call.request.MessageID
        rsp.AffectedSOPClassUID = getattr(self.call.request, "AffectedSOPClassUID", None)
        return rsp

    def _counts(self, rsp: P.C_GET | P.C_MOVE, remaining: bool) -> None:
        clamp = 0xFFFF
        if remaining:
            rsp.NumberOfRemainingSuboperations = min(self.remaining, clamp)
        rsp.NumberOfCompletedSuboperations = min(self.completed, clamp)
        rsp.NumberOfFailedSuboperations = min(self.failed, clamp)
        rsp.NumberOfWarningSuboperations = min(self.warning, clamp)

    def record(
        self, code: int | None, sop_instance_uid: str | None, reason: str | None = None
    ) -> None:
        cat = Category.FAILURE if code is None else category(code)
        if cat is Category.SUCCESS:
            self.completed += 1
        elif cat is Category.WARNING:
            self.warning += 1
        else:
            self.failed += 1
            if sop_instance_uid:
                self.failed_uids.append(sop_instance_uid)
            if reason and self.first_failure is None:
                self.first_failure = reason

    def encode_pending(self) -> Any:
        """A pending response with the counts so far (written with what comes next)."""
        rsp = self.response()
        apply_status(rsp, PENDING)
        self._counts(rsp, remaining=True)
        return self.flow.encode(rsp)

    async def send_final(self, code: int | None = None, extras: dict[str, Any] | None = None,
                         before: list[Any] | None = None) -> None:  # fmt: skip
        """The last response (after ``before``); ``code`` None: derive it from the counts."""
        if code is None:
            code = SUCCESS if self.failed == 0 and self.warning == 0 else SUBOPS_WARNING
        if self.failed and self.first_failure and not (extras and "ErrorComment" in extras):
            extras = {**(extras or {}),
                      "ErrorComment": f"{self.failed} failed: {self.first_failure}"}  # fmt: skip
        rsp = self.response()
        apply_status(rsp, code, extras)
        self._counts(rsp, remaining=(code == CANCEL))
        if self.failed_uids and category(code) is not Category.SUCCESS:
            from pydicom.dataset import Dataset

            ident = Dataset()
            ident.FailedSOPInstanceUIDList = list(self.failed_uids)
            rsp.Identifier = DataSource.from_dataset(ident, self.call.transfer_syntax)
        await self.flow.write([*(before or ()), await self.flow.run(self.flow.encode, rsp)])

    async def send_failure(self, code: int, exc: BaseException) -> None:
        LOGGER.error("%s handler failed: %s", self.cls.SERVICE, exc, exc_info=exc)
        await self.send_final(code, {"ErrorComment": f"{type(exc).__name__}: {exc}"})


def _store_status(result: Any) -> int | None:
    """The status of a sub-operation from what ``send_c_store`` returned."""
    if result is None:
        return None
    if isinstance(result, int):
        return result
    status = getattr(result, "Status", None)
    return None if status is None else int(status)


def _describe(payload: Any) -> tuple[str | None, str | None, str | None]:
    """(SOP class UID, SOP instance UID, transfer syntax) of a Dataset or a Part 10 path: of
    the data set itself (PS3.4 B.2.1), read from the file's first bytes without a pydicom parse
    (:func:`dicomnet.transcode.inspect_file`)."""
    if isinstance(payload, str | bytes) or hasattr(payload, "__fspath__"):
        import os

        from dicomnet.transcode import inspect_file

        try:
            info = inspect_file(os.fsdecode(payload))
        except Exception:
            return None, None, None
        return info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax
    meta = getattr(payload, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return (
        _opt(getattr(payload, "SOPClassUID", None)),
        _opt(getattr(payload, "SOPInstanceUID", None)),
        _opt(ts),
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def short_reason(exc: BaseException) -> str:
    """The reason a sub-operation failed, short enough for an Error Comment (LO, 64 chars)."""
    from dicomnet.association import NoPresentationContextError
    from dicomnet.transcode import CODECS_HINT, ConversionError

    text = str(exc)
    if isinstance(exc, NoPresentationContextError):
        if "SCP role" in text:
            return "SOP class accepted without the SCP role"
        return "no presentation context accepted for its SOP class"
    if isinstance(exc, ConversionError):
        if CODECS_HINT in text:
            return "needs a codec: install dicomnet[codecs]"
        return "conversion failed: " + text
    return text or type(exc).__name__


def _count(item: Any) -> int:
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        raise TypeError(f"the first yield must be the number of sub-operations, not {item!r}")
    return int(item)


Finish = Callable[[Any, list[Any]], Awaitable[tuple[int | None, str | None, str | None]]]


async def _retrieve_loop(
    call: ServiceCall,
    items: _Items,
    retrieve: _Retrieve,
    prepare: Callable[[Any], Any],
    finish: Finish,
    head: list[Any] | None = None,
    *,
    bundle: bool = False,
) -> None:
    """Run the sub-operations (``head`` first, then the handler's items) and send pending +
    final responses. Each item is pulled and its sub-operation prepared in one pool step
    (``prepare``); ``finish(prepared, before)`` completes it on the loop, writing ``before``
    first, and returns (status, failure reason, UID). ``bundle``: a pending response goes
    out with the next sub-operation's request (C-GET: one write instead of two); otherwise
    at once (C-MOVE: the sub-operations go elsewhere)."""
    head = list(head or [])
    before: list[Any] = []
    flow = retrieve.flow
    while True:
        # the handler is resumed before the cancel is looked at: it may see it itself
        if head:
            step = await flow.run(_make_step, head.pop(0), prepare)
        else:
            step = await items.next_step(prepare)
        if call.is_cancelled:
            _discard(step)
            await retrieve.send_final(CANCEL, before=before)
            return
        if step.item is _DONE:
            break
        status, _payload = _pair(step.item, retrieve.cls.SERVICE)
        code, extras = status_parts(status)
        cat = category(code)
        if cat is Category.CANCEL:
            await retrieve.send_final(CANCEL, before=before)
            return
        if cat is not Category.PENDING:
            await retrieve.send_final(code, extras, before)
            return
        result: int | None
        reason: str | None
        uid: str | None
        if step.error is not None:
            if _association_gone(step.error):
                raise step.error
            LOGGER.warning("%s sub-operation failed: %s", retrieve.cls.SERVICE, step.error)
            result, reason, uid = None, short_reason(step.error), step.uid
        else:
            result, reason, uid = await finish(step.prepared, before)
            before = []
        retrieve.record(result, uid, reason)
        if call.is_cancelled:
            await retrieve.send_final(CANCEL, before=before)
            return
        before.append(retrieve.encode_pending())
        if not bundle:
            await flow.write(before)
            before = []
    await retrieve.send_final(CANCEL if call.is_cancelled else None, before=before)


def _discard(step: _Step) -> None:
    close = getattr(step.prepared, "close", None)
    if close is not None:
        close()


async def get(call: ServiceCall, flow: Flow) -> None:
    """Answer one C-GET-RQ on the event loop."""
    retrieve = _Retrieve(call, P.C_GET, flow)
    if call.handler is None:
        await retrieve.send_final(NO_HANDLER_STATUS)
        return
    items = _Items(call, flow)
    try:
        await items.start()
        retrieve.total = _count(await items.next())

        async def finish(prepared: Any, before: list[Any]) -> tuple[int | None, str | None,
                                                                   str | None]:  # fmt: skip
            uid = prepared.sop_instance_uid
            try:
                code, reason = _outcome(await flow.send_store(prepared, before))
            except Exception as exc:
                if _association_gone(exc):
                    raise
                LOGGER.warning("C-GET sub-operation failed: %s", exc)
                return None, short_reason(exc), uid
            return code, reason, uid

        await _retrieve_loop(call, items, retrieve, flow.prepare_store, finish, bundle=True)
    except Exception as exc:
        if _association_gone(exc):
            raise
        await retrieve.send_failure(GET_FAILURE, exc)
    finally:
        await items.close()


def _association_gone(exc: BaseException) -> bool:
    from dicomnet.errors import ProtocolError

    return isinstance(exc, ProtocolError) and bool(getattr(exc, "local", False))


# --- C-MOVE --------------------------------------------------------------------------------------


def _destination(item: Any) -> tuple[str | None, int | None, dict[str, Any]]:
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        raise TypeError(f"the first C-MOVE yield must be (host, port), not {item!r}")
    host, port = item[0], item[1]
    kwargs = dict(item[2]) if len(item) == 3 and item[2] else {}
    if host is None or port is None:
        return None, None, kwargs
    return str(host), int(port), kwargs


def _move_contexts(items: list[Any], more: bool) -> list[Any]:
    """Presentation contexts for the sub-association: per SOP class seen, one per stored
    transfer syntax and one each for Explicit and Implicit VR Little Endian; common storage
    classes fill the rest when more items follow."""
    from dicomnet.presentation import build_context, storage_contexts
    from dicomnet.transcode.select import context_plan

    pairs: list[tuple[str, str | None]] = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            continue
        try:
            if category(status_parts(item[0])[0]) is not Category.PENDING:
                continue
            sop_class, _, ts = _describe(item[1])
        except Exception:
            continue
        if sop_class is not None:
            pairs.append((sop_class, ts))
    planned = context_plan(pairs, limit=MAX_CONTEXTS)
    contexts = [build_context(uid, list(ts)) for uid, ts in planned]
    wanted = {uid for uid, _ in planned}
    if more or not contexts:
        for cx in storage_contexts(limit=MAX_CONTEXTS):
            if len(contexts) >= MAX_CONTEXTS:
                break
            if cx.abstract_syntax not in wanted:
                contexts.append(cx)
    return contexts


def _outcome(code: int | None) -> tuple[int | None, str | None]:
    """A sub-operation's (status, failure reason) from the C-STORE-RSP status."""
    if code is None:
        return None, "no C-STORE response"
    if category(code) is Category.FAILURE:
        return code, f"the destination answered 0x{code:04X}"
    return code, None


def _move_store(sub: Any, payload: Any, originator: tuple[str, int]) -> tuple[
        int | None, str | None, str | None]:  # fmt: skip
    """Pool thread: one C-STORE sub-operation over the C-MOVE sub-association: (status,
    failure reason, the instance's UID when it failed)."""
    try:
        result = sub.send_c_store(payload, originator_aet=originator[0],
                                  originator_id=originator[1])  # fmt: skip
    except Exception as exc:
        LOGGER.warning("C-MOVE sub-operation failed: %s", exc)
        return None, short_reason(exc), _describe(payload)[1]
    code, reason = _outcome(_store_status(result))
    return code, reason, (_describe(payload)[1] if reason else None)


async def move(call: ServiceCall, flow: Flow) -> None:
    """Answer one C-MOVE-RQ on the event loop (sub-operations in the pool)."""
    retrieve = _Retrieve(call, P.C_MOVE, flow)
    if call.handler is None:
        await retrieve.send_final(NO_HANDLER_STATUS)
        return
    items = _Items(call, flow)
    sub = None
    try:
        await items.start()
        host, port, assoc_kwargs = _destination(await items.next())
        if host is None or port is None:
            text = f"unknown destination {call.event.move_destination}"
            await retrieve.send_final(UNKNOWN_DESTINATION, {"ErrorComment": error_comment(text)})
            return
        retrieve.total = _count(await items.next())
        head: list[Any] = []
        more = True
        while len(head) < LOOKAHEAD:
            item = await items.next()
            if item is _DONE:
                more = False
                break
            head.append(item)
        if call.is_cancelled:
            await retrieve.send_final(CANCEL)
            return
        if "contexts" not in assoc_kwargs:
            assoc_kwargs["contexts"] = await flow.run(_move_contexts, head, more)
        ae = call.assoc.ae
        dest_aet = call.event.move_destination or "ANY-SCP"
        sub = await flow.run(lambda: ae.associate(host, port, ae_title=dest_aet, **assoc_kwargs))
        if not getattr(sub, "is_established", False):
            reason = getattr(sub, "failure_reason", None) or getattr(sub, "rejection_text", None)
            text = f"cannot associate with destination: {reason}"
            await retrieve.send_final(UNKNOWN_DESTINATION, {"ErrorComment": error_comment(text)})
            return
        requestor = getattr(call.assoc, "requestor", None)
        originator_aet = str(getattr(requestor, "ae_title", "") or "").strip() or "UNKNOWN"
        originator = (originator_aet, int(getattr(call.request, "MessageID", 0) or 0))

        def prepare(payload: Any) -> tuple[int | None, str | None, str | None]:
            return _move_store(sub, payload, originator)  # the whole sub-operation

        async def finish(done: tuple[int | None, str | None, str | None],
                         before: list[Any]) -> tuple[int | None, str | None, str | None]:  # fmt: skip
            if before:
                await flow.write(before)
            return done

        await _retrieve_loop(call, items, retrieve, prepare, finish, head)
    except Exception as exc:
        if _association_gone(exc):
            raise
        await retrieve.send_failure(MOVE_FAILURE, exc)
    finally:
        await items.close()
        if sub is not None and getattr(sub, "is_established", False):
            try:
                await flow.run(sub.release)
            except Exception as exc:  # pragma: no cover - best effort
                LOGGER.info("releasing the C-MOVE sub-association failed: %s", exc)
