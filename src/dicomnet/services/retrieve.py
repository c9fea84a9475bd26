"""Query/Retrieve retrieval, SCP side: C-GET and C-MOVE (PS3.4 C.4.2, C.4.3).

Theory of operation
-------------------
Both run as coroutines on the server's event loop, driven by the :class:`~dicomnet.services.qr.Flow`
the server gives them, pulling the handler's items as :mod:`dicomnet.services.qr` describes.

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
* FE00 after a cancel, with the counts and Remaining;
* the handler's own status when it yields a non-pending one (e.g. A701, or C-range); the
  sub-operations it did not get to are counted as failed, so that the counts add up to the
  announced number;
* C411 when the handler raises (the sub-operations left are failed, as above); C413 when its
  first yield is not a number of sub-operations or it raises instead (pynetdicom's codes in the
  C000-CFFF "unable to process" range).

Every final response other than Success carries the Failed SOP Instance UID List (0008,0058)
identifier (PS3.4 C.4.2.1.4 / C.4.3.1.4), possibly empty -- or the handler's own data set when
the non-pending item it yielded holds that list. The handler's count is a promise: once that
many sub-operations ran, one more item is pulled (so code after its last yield runs) and any
further yields are logged and ignored; the final status then comes from the counts. A count
of 0 is Success, unless the handler's next item is a final status of its own (sent as it is:
how the archive refuses a retrieve whose matches it could not count). A C-GET on Composite
Instance Retrieve Without Bulk Data sends each instance without its bulk data
(:mod:`dicomnet.services.bulk`, PS3.4 Z.4.2.3).

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
ID (PS3.7 Table 9.3-1). Failure to associate: A801 with an Error Comment. Exceptions: C511; no
first yield (or it raised): C514; a first yield that is no destination: C515; a bad count (or
raising instead): C513.
A handler that yields no item gets Success with zero sub-operations and no association is
requested: a move of nothing succeeds even when the destination is down.
"""


from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Category, Status, category
from dicomnet.errors import NoPresentationContextError
from dicomnet.presentation import PresentationContext, build_context
from dicomnet.services.bulk import WITHOUT_BULK_DATA_GET, without_bulk_data
from dicomnet.services.call import (
    HandlerMistake,
    ServiceCall,
    apply_status,
    error_comment,
    status_parts,
)
from dicomnet.services.qr import (
    DONE,
    Flow,
    HandlerItems,
    Step,
    SubAssociation,
    association_gone,
    describe,
    make_step,
    pair,
)
from dicomnet.services.sending import close_handed, store_input
from dicomnet.settings import MAX_CONTEXTS
from dicomnet.sop_sets import storage_contexts
from dicomnet.transcode import CODECS_HINT, ConversionError
from dicomnet.transcode.select import context_plan

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["LOOKAHEAD", "get", "move", "short_reason"]

LOGGER = logging.getLogger("dicomnet.services.retrieve")

LOOKAHEAD = 64  # C-MOVE items read before the sub-association is requested
MOVE_BATCH = 32  # C-MOVE sub-operations run in one pool step at most

E = TypeVar("E")  # the flow's encoded responses
S = TypeVar("S")  # the flow's prepared C-STORE sub-operations
Q = TypeVar("Q")  # what a retrieve loop prepares per item
Outcome = tuple[int | None, str | None, str | None]  # (status, failure reason, failed UID)


class _Retrieve(Generic[E, S]):
    """Sub-operation bookkeeping shared by C-GET and C-MOVE (PS3.7 Table 9.3-10 / 9.3-8)."""

    def __init__(self, call: ServiceCall, cls: type[P.C_GET] | type[P.C_MOVE],
                 flow: Flow[E, S]) -> None:  # fmt: skip
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
        rsp.AffectedSOPClassUID = self.call.request.AffectedSOPClassUID
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

    def encode_pending(self, item: object = None) -> E:
        """A pending response with the counts so far (written with what comes next); the
        optional status elements of the handler's Pending status Dataset in ``item`` (e.g.
        an Error Comment) go with it, as the handler asked."""
        rsp = self.response()
        apply_status(rsp, Status.PENDING, _pending_extras(item))
        self._counts(rsp, remaining=True)
        return self.flow.encode(rsp)

    def fail_the_rest(self) -> None:
        """The sub-operations that will not run now (the handler ended the operation with a
        failure or warning, or raised) are failed ones: the final counts add up."""
        self.failed += self.remaining

    async def send_final(self, code: int | None = None, extras: dict[str, object] | None = None,
                         before: list[E] | None = None,
                         identifier: object = None) -> None:  # fmt: skip
        """The last response (after ``before``); ``code`` None: derive it from the counts.
        ``identifier``: what the handler yielded with its final status (sent when it holds a
        Failed SOP Instance UID List, else the list of the failed sub-operations is)."""
        if code is None:
            code = Status.SUCCESS if self.failed == 0 and self.warning == 0 else Status.SUBOPERATIONS_WARNING
        if self.failed and self.first_failure and not (extras and "ErrorComment" in extras):
            extras = {**(extras or {}),
                      "ErrorComment": f"{self.failed} failed: {self.first_failure}"}  # fmt: skip
        rsp = self.response()
        apply_status(rsp, code, extras)
        self._counts(rsp, remaining=(code == Status.CANCEL))
        if category(code) not in (Category.SUCCESS, Category.PENDING):
            # PS3.4 C.4.2.1.4 / C.4.3.1.4: the Failed SOP Instance UID List of a final
            # response other than Success
            if getattr(identifier, "FailedSOPInstanceUIDList", None) is not None:
                rsp.Identifier = DataSource.from_dataset(identifier,  # type: ignore[arg-type]
                                                         self.call.transfer_syntax)  # fmt: skip
            else:
                rsp.Identifier = _failed_list(list(self.failed_uids), self.call.transfer_syntax)
        await self.flow.write([*(before or ()), await self.flow.run(self.flow.encode, rsp)])

    async def send_failure(self, code: int, exc: BaseException) -> None:
        LOGGER.error("%s handler failed: %s", self.cls.SERVICE, exc, exc_info=exc)
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, HandlerMistake):
            code, text = exc.code, str(exc)
        self.fail_the_rest()
        await self.send_final(code, {"ErrorComment": error_comment(text)})

    async def after_the_count(self, items: HandlerItems, head: list[object]) -> bool:
        """The announced sub-operations all ran: one more item is pulled (the handler's code
        after its last yield runs). After a count of 0, a status other than Pending is the
        handler's answer and is sent (True): e.g. the archive's refusal when it could not
        count the matches. Anything else the handler still yields is ignored."""
        item = head.pop(0) if head else await items.next()
        if item is DONE:
            return False
        if not self.total:
            try:
                if await _ended_by(item, self, []):
                    return True
            except (TypeError, ValueError):
                pass  # ignored as below
        LOGGER.warning("the %s handler yielded more items than the %d sub-operations it "
                       "announced: ignored", self.cls.SERVICE, self.total)  # fmt: skip
        return False


def _failed_list(uids: list[str], transfer_syntax: str) -> DataSource:
    """The Failed SOP Instance UID List (0008,0058) identifier of a final response (PS3.4
    C.4.2.1.4, C.4.3.1.4)."""
    # lazy: pydicom is loaded by then (the handler gave data sets), not on every import
    from pydicom.dataset import Dataset

    ident: Dataset = Dataset()
    ident.FailedSOPInstanceUIDList = uids
    return DataSource.from_dataset(ident, transfer_syntax)


def _store_status(result: object) -> int | None:
    """The status of a sub-operation from what ``send_c_store`` returned."""
    if result is None:
        return None
    if isinstance(result, int):
        return result
    status = getattr(result, "Status", None)  # a status Dataset (empty: no response)
    return None if status is None else int(status)


def short_reason(exc: BaseException) -> str:
    """The reason a sub-operation failed, short enough for an Error Comment (LO, 64 chars)."""
    text = str(exc)
    if isinstance(exc, NoPresentationContextError):
        if exc.role_refused:
            return "SOP class accepted without the SCP role"
        return "no presentation context accepted for its SOP class"
    if isinstance(exc, ConversionError):
        if CODECS_HINT in text:
            return "needs a codec: install dicomnet[codecs]"
        return "conversion failed: " + text
    return text or type(exc).__name__


def _pending_extras(item: object) -> dict[str, object] | None:
    """The optional status elements of a handler's ``(status Dataset, data set)`` item; None
    for the usual bare code (no look at it beyond its type)."""
    if not isinstance(item, tuple) or len(item) != 2 or type(item[0]) is int:
        return None
    try:
        return status_parts(item[0])[1] or None
    except (TypeError, ValueError):
        return None


class BadYield(HandlerMistake):
    """A handler item of the wrong kind where the protocol needs one kind (a count, a
    destination), with the failure status to answer."""


async def _pull(items: HandlerItems, code: int, what: str) -> object:
    """The handler's next item where the protocol needs ``what``: its exception becomes a
    :class:`BadYield` with ``code``."""
    try:
        return await items.next()
    except Exception as exc:
        if association_gone(exc):
            raise
        raise BadYield(code, f"{type(exc).__name__} instead of {what}: {exc}") from exc


async def _count(items: HandlerItems, code: int) -> int:
    """The handler's number of sub-operations; anything else (or raising) is ``code``."""
    item = await _pull(items, code, "a count")
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        raise BadYield(code, f"the first yield must be the number of sub-operations, not {item!r}")
    return int(item)


async def _ended_by(item: object, retrieve: _Retrieve[E, S], before: list[E]) -> bool:
    """Whether the handler's ``item`` ends the operation (a status other than Pending: its
    final response is sent, after ``before``)."""
    status, payload = pair(item, retrieve.cls.SERVICE)
    code, extras = status_parts(status)
    cat = category(code)
    if cat is Category.CANCEL:
        await retrieve.send_final(Status.CANCEL, before=before, identifier=payload)
        return True
    if cat is not Category.PENDING:
        if cat is not Category.SUCCESS:
            retrieve.fail_the_rest()
        elif retrieve.failed or retrieve.warning:
            # PS3.4 C.4.2.1.4 / C.4.3.1.4: Success means no sub-operation failed or warned;
            # the counts say otherwise, so the operation ends B000 (as pynetdicom's does)
            code = Status.SUBOPERATIONS_WARNING
        await retrieve.send_final(code, extras, before, identifier=payload)
        return True
    return False


async def _retrieve_loop(
    call: ServiceCall,
    items: HandlerItems,
    retrieve: _Retrieve[E, S],
    prepare: Callable[[object], Q],
    finish: Callable[[Q, list[E]], Awaitable[Outcome]],
    discard: Callable[[Q], None],
    head: list[object] | None = None,
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
    before: list[E] = []
    flow = retrieve.flow
    while True:
        if not retrieve.remaining:  # the announced sub-operations all ran
            if await retrieve.after_the_count(items, head):
                return
            break
        # the handler is resumed before the cancel is looked at: it may see it itself
        step: Step[Q]
        if head:
            step = await flow.run(make_step, head.pop(0), prepare)
        else:
            step = await items.next_step(prepare)
        if call.is_cancelled:
            if step.prepared is not None:
                discard(step.prepared)
            await retrieve.send_final(Status.CANCEL, before=before)
            return
        if step.item is DONE:
            break
        if await _ended_by(step.item, retrieve, before):
            return
        result: int | None
        reason: str | None
        uid: str | None
        if step.error is not None:
            if association_gone(step.error):
                raise step.error
            LOGGER.warning("%s sub-operation failed: %s", retrieve.cls.SERVICE, step.error)
            result, reason, uid = None, short_reason(step.error), step.uid
        else:
            assert step.prepared is not None
            result, reason, uid = await finish(step.prepared, before)
            before = []
        retrieve.record(result, uid, reason)
        if call.is_cancelled:
            await retrieve.send_final(Status.CANCEL, before=before)
            return
        before.append(retrieve.encode_pending(step.item))
        if not bundle:
            await flow.write(before)
            before = []
    await retrieve.send_final(Status.CANCEL if call.is_cancelled else None, before=before)


async def get(call: ServiceCall, flow: Flow[E, S]) -> None:
    """Answer one C-GET-RQ on the event loop."""
    retrieve = _Retrieve(call, P.C_GET, flow)
    if call.handler is None:
        await retrieve.send_final(Status.GET_FAILURE)  # no handler: as pynetdicom
        return
    items = HandlerItems(call, flow.run)
    try:
        await items.start()
        retrieve.total = await _count(items, Status.GET_BAD_COUNT)
        prepare = flow.prepare_store
        if call.request.AffectedSOPClassUID == WITHOUT_BULK_DATA_GET:

            def prepare(payload: object) -> S:  # PS3.4 Z.4.2.3
                return flow.prepare_store(without_bulk_data(payload))

        async def finish(prepared: S, before: list[E]) -> Outcome:
            uid = flow.prepared_uid(prepared)
            try:
                code, reason = _outcome(await flow.send_store(prepared, before))
            except Exception as exc:
                if association_gone(exc):
                    raise
                LOGGER.warning("C-GET sub-operation failed: %s", exc)
                return None, short_reason(exc), uid
            return code, reason, uid

        await _retrieve_loop(call, items, retrieve, prepare, finish, flow.discard,
                             bundle=True)  # fmt: skip
    except Exception as exc:
        if association_gone(exc):
            raise
        await retrieve.send_failure(Status.GET_FAILURE, exc)
    finally:
        await items.close()


# --- C-MOVE --------------------------------------------------------------------------------------


def _destination(item: object) -> tuple[str | None, int | None, dict[str, object]]:
    if item is DONE:
        raise BadYield(Status.MOVE_NO_DESTINATION, "the C-MOVE handler yielded nothing")
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        raise BadYield(Status.MOVE_BAD_DESTINATION,
                       f"the first C-MOVE yield must be (host, port), not {item!r}")  # fmt: skip
    host, port = item[0], item[1]
    try:
        kwargs = dict(item[2]) if len(item) == 3 and item[2] else {}
        if host is None or port is None:
            return None, None, kwargs
        return str(host), int(port), kwargs
    except (TypeError, ValueError) as exc:
        raise BadYield(Status.MOVE_BAD_DESTINATION, f"bad C-MOVE destination {item!r}: {exc}") from exc


def _move_contexts(items: list[object], more: bool) -> list[PresentationContext]:
    """Presentation contexts for the sub-association: per SOP class seen, one per stored
    transfer syntax and one each for Explicit and Implicit VR Little Endian; common storage
    classes fill the rest when more items follow."""
    pairs: list[tuple[str, str | None]] = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            continue
        try:
            if category(status_parts(item[0])[0]) is not Category.PENDING:
                continue
            sop_class, _, ts = describe(item[1])
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


async def _move_loop(call: ServiceCall, items: HandlerItems, retrieve: _Retrieve[E, S],
                     prepare: Callable[[object], Outcome], head: list[object]) -> None:  # fmt: skip
    """C-MOVE's sub-operations and responses. Each sub-operation runs whole in the pool (a
    C-STORE over the blocking sub-association), several in one pool step
    (:meth:`~dicomnet.services.qr.HandlerItems.next_steps`): the loop then records them and
    writes their Pending responses at once -- one hand-over per batch instead of two per
    sub-operation, the Pending responses the same."""
    flow = retrieve.flow
    while True:
        if not retrieve.remaining:  # the announced sub-operations all ran
            if not await retrieve.after_the_count(items, head):
                await retrieve.send_final(Status.CANCEL if call.is_cancelled else None)
            return
        if head:
            steps = [await flow.run(make_step, head.pop(0), prepare)]
        else:
            steps = await items.next_steps(prepare, min(MOVE_BATCH, retrieve.remaining))
        pending: list[E] = []
        for step in steps:
            if step.item is DONE:
                await retrieve.send_final(Status.CANCEL if call.is_cancelled else None,
                                          before=pending)  # fmt: skip
                return
            if await _ended_by(step.item, retrieve, pending):
                return
            if step.error is not None:  # the payload could not even be looked at
                LOGGER.warning("C-MOVE sub-operation failed: %s", step.error)
                retrieve.record(None, step.uid, short_reason(step.error))
            else:
                assert step.prepared is not None
                result, reason, uid = step.prepared
                retrieve.record(result, uid, reason)
            pending.append(retrieve.encode_pending(step.item))
        if call.is_cancelled:  # after the sub-operations that ran: they are counted
            await retrieve.send_final(Status.CANCEL, before=pending)
            return
        await flow.write(pending)


def _move_store(sub: SubAssociation, payload: object, originator: tuple[str, int]) -> Outcome:
    """Pool thread: one C-STORE sub-operation over the C-MOVE sub-association: (status,
    failure reason, the instance's UID when it failed)."""
    try:
        try:
            result = sub.send_c_store(store_input(payload), originator_aet=originator[0],
                                      originator_id=originator[1])  # fmt: skip
        except Exception as exc:
            LOGGER.warning("C-MOVE sub-operation failed: %s", exc)
            return None, short_reason(exc), describe(payload)[1]
        code, reason = _outcome(_store_status(result))
        return code, reason, (describe(payload)[1] if reason else None)
    finally:
        close_handed(payload)


async def move(call: ServiceCall, flow: Flow[E, S]) -> None:
    """Answer one C-MOVE-RQ on the event loop (sub-operations in the pool)."""
    retrieve = _Retrieve(call, P.C_MOVE, flow)
    if call.handler is None:
        await retrieve.send_final(Status.MOVE_FAILURE)  # no handler: as pynetdicom
        return
    items = HandlerItems(call, flow.run)
    sub: SubAssociation | None = None
    try:
        await items.start()
        host, port, options = _destination(
            await _pull(items, Status.MOVE_NO_DESTINATION, "a destination"))
        if host is None or port is None:
            text = f"unknown destination {call.event.move_destination}"
            await retrieve.send_final(Status.MOVE_DESTINATION_UNKNOWN,
                                      {"ErrorComment": error_comment(text)})  # fmt: skip
            return
        retrieve.total = await _count(items, Status.MOVE_BAD_COUNT)
        head: list[object] = []
        more = retrieve.total > 0
        while more and len(head) < min(LOOKAHEAD, retrieve.total):
            item = await items.next()
            if item is DONE:
                more = False
                break
            head.append(item)
        if call.is_cancelled:
            await retrieve.send_final(Status.CANCEL)
            return
        more = more and len(head) < retrieve.total
        if not retrieve.total and await retrieve.after_the_count(items, head):
            return  # a count of 0, then the handler's own final status
        if not head:
            # nothing to send: Success with zero sub-operations, and no association with the
            # destination (which may be down or accept no storage class: a move of nothing
            # still succeeds, as in pynetdicom and DCMTK's dcmqrscp)
            await retrieve.send_final()
            return
        if "contexts" not in options:
            options["contexts"] = await flow.run(_move_contexts, head, more)
        dest_aet = call.event.move_destination or "ANY-SCP"
        try:
            sub = await flow.associate(host, port, dest_aet, options)
        except (TypeError, ValueError) as exc:  # the handler's association options
            raise BadYield(Status.MOVE_BAD_DESTINATION, f"bad C-MOVE destination: {exc}") from exc
        if not sub.is_established:
            reason = sub.failure_reason or sub.rejection_text
            text = f"cannot associate with destination: {reason}"
            await retrieve.send_final(Status.MOVE_DESTINATION_UNKNOWN,
                                      {"ErrorComment": error_comment(text)})  # fmt: skip
            return
        originator = (call.assoc.calling_ae_title or "UNKNOWN", call.request.MessageID or 0)
        established = sub

        def prepare(payload: object) -> Outcome:
            return _move_store(established, payload, originator)  # the whole sub-operation

        await _move_loop(call, items, retrieve, prepare, head)
    except Exception as exc:
        if association_gone(exc):
            raise
        await retrieve.send_failure(Status.MOVE_FAILURE, exc)
    finally:
        await items.close()
        if sub is not None and sub.is_established:
            try:
                await flow.run(sub.release)
            except Exception as exc:  # pragma: no cover - best effort
                LOGGER.info("releasing the C-MOVE sub-association failed: %s", exc)
