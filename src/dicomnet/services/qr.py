"""Query/Retrieve (PS3.4 Annex C) and Modality Worklist (PS3.4 Annex K), SCP side.

Theory of operation
-------------------
All three run in a worker thread of the server's handler pool, because they send many
responses and (C-GET, C-MOVE) whole sub-operations while the event loop keeps reading the
association — that is how a C-CANCEL-RQ (PS3.7 section 9.3.2.3) becomes visible through
``event.is_cancelled`` in the middle of the work. Handlers are generators (or async
generators, driven on the loop one item at a time).

C-FIND (PS3.4 C.4.1.2, K.4.1.2): the handler yields ``(status, identifier)``. Each Pending
(FF00/FF01) item becomes a pending C-FIND-RSP with the identifier encoded in the context's
transfer syntax; a non-pending status ends the operation with that status; the end of the
generator ends it with Success. A cancel seen between items ends it with FE00 (no identifier).
Exceptions: C311 (PS3.4 Table C.4-1: Cxxx unable to process).

C-GET (PS3.4 C.4.3.2): the handler first yields the number of sub-operations, then
``(status, dataset_or_path)``. Each Pending item is one C-STORE sub-operation on *the same
association* — the requestor must have taken the SCP role for that storage SOP class (role
selection, PS3.7 D.3.3.4); if it did not, the association's C-STORE fails and the
sub-operation counts as failed. After each sub-operation a pending C-GET-RSP reports the
Remaining/Completed/Failed/Warning counts (PS3.7 Table 9.3-10). The final response:

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
a new association that this worker requests (blocking driver) with the called AE title = Move
Destination, proposing for each SOP class found in the first items (look-ahead) one context
per transfer syntax they are stored in plus Explicit and Implicit VR Little Endian, each
separately (:func:`dicomnet.transcode.select.context_plan`, within the 128 contexts of PS3.8),
plus common storage classes when more items follow (a handler that knows every instance's
class and syntax passes ``contexts`` in the destination's associate arguments). Every
sub-operation -- C-GET's too -- goes through the library's sender, which sends each instance
as it is when its syntax was accepted and converts it otherwise;
each C-STORE-RQ carries Move Originator AE Title and Message ID (PS3.7 Table 9.3-1). Failure to
associate: A801 with an Error Comment. Exceptions: C511.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from dicomnet.dimse import primitives as P
from dicomnet.dimse.dataset import DataSource
from dicomnet.dimse.status import Category, category
from dicomnet.services.dispatch import (
    NO_HANDLER_STATUS,
    ServiceCall,
    apply_status,
    error_comment,
    failure_from_exception,
    iter_results,
    status_parts,
)

__all__ = [
    "FIND_FAILURE",
    "GET_FAILURE",
    "MOVE_FAILURE",
    "run_find",
    "run_get",
    "run_move",
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


def _pair(item: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(item, tuple) or len(item) != 2:
        raise TypeError(f"a {what} handler yields (status, dataset) pairs, not {item!r}")
    return item[0], item[1]


def run_find(call: ServiceCall) -> None:
    """Answer one C-FIND-RQ (Q/R or worklist), worker thread."""
    if call.handler is None:
        rsp = _find_rsp(call)
        apply_status(rsp, NO_HANDLER_STATUS)
        call.send(rsp)
        return
    final = _find_rsp(call)
    results = iter_results(call)
    try:
        with _batched(call):
            _send_matches(call, results, final)
    except Exception as exc:
        final = _find_rsp(call)
        failure_from_exception(final, FIND_FAILURE, exc, "C-FIND")
    finally:
        _close(results)
    call.send(final)


def _batched(call: ServiceCall) -> contextlib.AbstractContextManager[None]:
    """The driver's :meth:`~dicomnet.transport.aio.AsyncDriver.hold`: a stream of pending
    responses wakes the event loop once per batch, not once per response."""
    hold = getattr(getattr(call.assoc, "dul", None), "hold", None)
    return hold() if hold is not None else contextlib.nullcontext()


def _send_matches(call: ServiceCall, results: Iterator[Any], final: P.C_FIND) -> None:
    """Send one pending C-FIND-RSP per match; set ``final``'s status (PS3.4 C.4.1.3)."""
    for item in results:
        if call.is_cancelled:
            apply_status(final, CANCEL)
            break
        status, identifier = _pair(item, "C-FIND")
        code, extras = status_parts(status)
        if category(code) is not Category.PENDING:
            apply_status(final, code, extras)
            break
        rsp = _find_rsp(call)
        apply_status(rsp, code, extras)
        if identifier is not None:
            rsp.Identifier = _encoded(call, identifier)
        call.send(rsp)
    else:
        apply_status(final, CANCEL if call.is_cancelled else SUCCESS)


def _close(results: Iterator[Any]) -> None:
    close = getattr(results, "close", None)
    if close is not None:
        try:
            close()
        except Exception as exc:  # a generator misbehaving in its finally
            LOGGER.warning("closing a handler generator failed: %s", exc)


# --- retrieve (C-GET, C-MOVE) -------------------------------------------------------------------


class _Retrieve:
    """Sub-operation bookkeeping shared by C-GET and C-MOVE (PS3.7 Table 9.3-10 / 9.3-8)."""

    def __init__(self, call: ServiceCall, cls: type[P.C_GET] | type[P.C_MOVE]) -> None:
        self.call = call
        self.cls = cls
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

    def send_pending(self) -> None:
        rsp = self.response()
        apply_status(rsp, PENDING)
        self._counts(rsp, remaining=True)
        self.call.send(rsp)

    def send_final(self, code: int | None = None, extras: dict[str, Any] | None = None) -> None:
        """The last response; ``code`` None: derive it from the counts."""
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
        self.call.send(rsp)

    def send_failure(self, code: int, exc: BaseException) -> None:
        self.send_final(code, {"ErrorComment": f"{type(exc).__name__}: {exc}"})
        LOGGER.error("%s handler failed: %s", self.cls.SERVICE, exc, exc_info=exc)


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


def _sub_operation(
    assoc: Any, payload: Any, originator: tuple[str, int] | None, retrieve: _Retrieve
) -> None:
    """One C-STORE sub-operation; any error counts it as failed, with its reason."""
    uid: str | None = None
    reason: str | None = None
    try:
        uid = _describe(payload)[1]
        kwargs: dict[str, Any] = {}
        if originator is not None:
            kwargs = {"originator_aet": originator[0], "originator_id": originator[1]}
        result = assoc.send_c_store(payload, **kwargs)
        code = _store_status(result)
        if code is None:
            reason = "no C-STORE response"
        elif category(code) is Category.FAILURE:
            reason = f"the destination answered 0x{code:04X}"
    except Exception as exc:
        LOGGER.warning("%s sub-operation for %s failed: %s", retrieve.cls.SERVICE, uid, exc)
        code = None
        reason = short_reason(exc)
    retrieve.record(code, uid, reason)


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


def run_get(call: ServiceCall) -> None:
    """Answer one C-GET-RQ (worker thread)."""
    retrieve = _Retrieve(call, P.C_GET)
    if call.handler is None:
        retrieve.send_final(NO_HANDLER_STATUS)
        return
    results = iter_results(call)
    try:
        retrieve.total = _count(next(results))
        with _batched(call):  # each Pending goes out with the next sub-operation's request
            _retrieve_loop(call, results, retrieve, call.assoc, None)
    except Exception as exc:
        retrieve.send_failure(GET_FAILURE, exc)
    finally:
        _close(results)


def _retrieve_loop(
    call: ServiceCall,
    results: Iterator[Any],
    retrieve: _Retrieve,
    target: Any,
    originator: tuple[str, int] | None,
) -> None:
    """Run the sub-operations and send pending + final responses."""
    for item in results:
        if call.is_cancelled:
            retrieve.send_final(CANCEL)
            return
        status, payload = _pair(item, retrieve.cls.SERVICE)
        code, extras = status_parts(status)
        cat = category(code)
        if cat is Category.CANCEL:
            retrieve.send_final(CANCEL)
            return
        if cat is not Category.PENDING:
            retrieve.send_final(code, extras)
            return
        _sub_operation(target, payload, originator, retrieve)
        if call.is_cancelled:
            retrieve.send_final(CANCEL)
            return
        retrieve.send_pending()
    retrieve.send_final(CANCEL if call.is_cancelled else None)


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


def run_move(call: ServiceCall) -> None:
    """Answer one C-MOVE-RQ (worker thread)."""
    retrieve = _Retrieve(call, P.C_MOVE)
    if call.handler is None:
        retrieve.send_final(NO_HANDLER_STATUS)
        return
    results = iter_results(call)
    sub = None
    try:
        host, port, assoc_kwargs = _destination(next(results))
        if host is None or port is None:
            retrieve.send_final(
                UNKNOWN_DESTINATION,
                {"ErrorComment": error_comment(f"unknown destination {call.event.move_destination}")},
            )
            return
        retrieve.total = _count(next(results))
        head: list[Any] = []
        more = True
        for item in results:
            head.append(item)
            if len(head) >= LOOKAHEAD:
                break
        else:
            more = False
        if call.is_cancelled:
            retrieve.send_final(CANCEL)
            return
        ae = call.assoc.ae
        assoc_kwargs.setdefault("contexts", _move_contexts(head, more))
        sub = ae.associate(
            host, port, ae_title=call.event.move_destination or "ANY-SCP", **assoc_kwargs
        )
        if not getattr(sub, "is_established", False):
            reason = getattr(sub, "failure_reason", None) or getattr(sub, "rejection_text", None)
            retrieve.send_final(
                UNKNOWN_DESTINATION,
                {"ErrorComment": error_comment(f"cannot associate with destination: {reason}")},
            )
            return
        requestor = getattr(call.assoc, "requestor", None)
        originator_aet = str(getattr(requestor, "ae_title", "") or "").strip() or "UNKNOWN"
        originator = (originator_aet, int(getattr(call.request, "MessageID", 0) or 0))
        with _batched(call):  # Pendings share loop wake-ups (at most ~5 ms late, in order)
            _retrieve_loop(call, _chain(head, results), retrieve, sub, originator)
    except Exception as exc:
        retrieve.send_failure(MOVE_FAILURE, exc)
    finally:
        _close(results)
        if sub is not None and getattr(sub, "is_established", False):
            try:
                sub.release()
            except Exception as exc:  # pragma: no cover - best effort
                LOGGER.info("releasing the C-MOVE sub-association failed: %s", exc)


def _chain(head: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from head
    yield from rest
