"""The SCU side: requesting an association and invoking DIMSE operations on it.

Theory of operation
-------------------
:func:`request_association` builds the A-ASSOCIATE-RQ from the AE's configuration (PS3.8
section 9.3.2; user information sub-items of PS3.7 Annex D.3.3 in the order 51H, 52H, 55H, 53H,
54H, 56H, 57H, 58H), connects with :func:`dicomnet.transport.sync.open_socket`, and drives the
:class:`~dicomnet.transport.sync.SyncDriver` until the A-ASSOCIATE-AC/RJ arrives or
``acse_timeout`` passes. It always returns an :class:`~dicomnet.association.Association`;
failures are described by its flags and ``failure_reason``.

Every operation follows the same path: pick an accepted presentation context on which we are
SCU for the SOP class (:meth:`Association.find_context`), build the request primitive with a
fresh Message ID, register an :class:`OperationHandle` in ``assoc.outstanding`` and send it
through the DIMSE provider. Responses are collected by :func:`pump`, which takes one message
from the provider (``get_msg(block=True)``: the calling thread drives the socket until a whole
message is there, or the DIMSE timeout passes) and routes it:

* a response goes to the handle of its Message ID Being Responded To (PS3.7 section 9.1.1.1.2);
  pending statuses (FF00/FF01) keep the handle open, any other status completes it;
* a request from the peer -- C-STORE sub-operations of a C-GET (PS3.4 C.4.3), N-EVENT-REPORT
  (e.g. storage commitment results, PS3.4 J.3.3), C-ECHO -- is served at once by the handler
  bound to the association (``evt_handlers=`` / ``assoc.bind``) and answered on its context.

Because responses are routed by Message ID, several requests may be outstanding when the
association negotiated an asynchronous operations window (PS3.7 D.3.3.3):
:func:`c_store_async` returns before the response, blocking only while the window is full.

When no response comes (DIMSE timeout) or the association dies, the operation's status is an
**empty** ``Dataset``. A timed-out association is aborted: a late response would otherwise be
taken for the answer to a later request.

C-STORE payloads (:mod:`dicomnet.services.sending`): a Part 10 file is sent from its own bytes
(meta header skipped, no decoding) when a context was accepted with its transfer syntax, and
converted (:mod:`dicomnet.transcode`) into the best accepted syntax otherwise; a pydicom
``Dataset`` is encoded in the best accepted syntax; a
:class:`~dicomnet.datasource.DataSource` is sent as it is or converted the same way.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dicomnet.association import (
    Association,
    AssociationNotEstablishedError,
)
from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.textenc import with_character_set
from dicomnet.errors import DicomNetError, ProtocolError
from dicomnet.presentation import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION,
    PresentationContext,
    query_model_uid,
)
from dicomnet.transport.base import TransportError
from dicomnet.transport.sync import SyncDriver, open_socket
from dicomnet.ul.connection import ULConnection
from dicomnet.ul.pdu import (
    AAssociateRQ,
    AsyncOpsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    SubItem,
    UserIdentityRQ,
    UserInformation,
    uid_norm,
)

if TYPE_CHECKING:
    import asyncio
    import ssl
    from collections.abc import AsyncIterator

    from pydicom.dataset import Dataset

    from dicomnet.ae import AE, EventHandlers

__all__ = [
    "AssociationNotEstablishedError",
    "AsyncAssociation",
    "OperationHandle",
    "build_rq",
    "c_cancel",
    "c_echo",
    "c_echo_response",
    "c_find",
    "c_get",
    "c_move",
    "c_store",
    "c_store_async",
    "n_action",
    "n_create",
    "n_delete",
    "n_event_report",
    "n_get",
    "n_set",
    "pump",
    "request_association",
    "store_many",
    "store_request",
]

LOGGER = logging.getLogger("dicomnet.scu")

_PENDING = (0xFF00, 0xFF01)
# Uncompressed transfer syntaxes a dataset can be re-encoded between (PS3.5 section 10, A.5).
_NATIVE_LE = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
_NATIVE = (*_NATIVE_LE, EXPLICIT_VR_BIG_ENDIAN)


# --- association establishment ---------------------------------------------------------------


def build_rq(
    ae: AE,
    contexts: Sequence[PresentationContext],
    called_ae_title: str,
    max_pdu: int,
    ext_neg: Sequence[object] | None = None,
    user_identity: UserIdentityRQ | None = None,
    max_operations_invoked: int | None = None,
    max_operations_performed: int | None = None,
) -> tuple[AAssociateRQ, list[PresentationContext]]:
    """The A-ASSOCIATE-RQ for ``contexts`` (IDs 1, 3, 5, ... assigned to copies)."""
    if not contexts:
        raise ValueError("no presentation contexts to request: use ae.add_requested_context()")
    if len(contexts) > 128:
        raise ValueError("at most 128 presentation contexts can be requested (PS3.8 9.3.2.2)")
    requested: list[PresentationContext] = []
    roles: dict[str, RoleSelection] = {}
    for i, cx in enumerate(contexts):
        copy = PresentationContext(
            cx.abstract_syntax,
            list(cx.transfer_syntaxes),
            context_id=2 * i + 1,
            scu_role=cx.scu_role,
            scp_role=cx.scp_role,
        )
        requested.append(copy)
        if (cx.scu_role is not None or cx.scp_role is not None) and cx.abstract_syntax not in roles:
            # an unset half of the pair keeps its default (requestor = SCU, PS3.7 D.3.3.4)
            scu = True if cx.scu_role is None else cx.scu_role
            scp = False if cx.scp_role is None else cx.scp_role
            roles[cx.abstract_syntax] = RoleSelection(cx.abstract_syntax, int(scu), int(scp))
    extended: list[SubItem] = []
    for item in ext_neg or ():
        if isinstance(item, RoleSelection):
            roles[uid_norm(item.sop_class_uid)] = item
        elif isinstance(item, UserIdentityRQ):
            user_identity = item
        elif isinstance(item, AsyncOpsWindow):
            max_operations_invoked = item.max_operations_invoked
            max_operations_performed = item.max_operations_performed
        elif isinstance(item, SOPClassExtendedNegotiation | SOPClassCommonExtendedNegotiation):
            extended.append(item)
        else:
            raise TypeError(f"unsupported extended negotiation item {item!r}")
    invoked = ae.maximum_operations_invoked if max_operations_invoked is None else max_operations_invoked
    performed = (
        ae.maximum_operations_performed if max_operations_performed is None else max_operations_performed
    )
    items: list[SubItem] = [
        MaximumLength(max_pdu),
        ImplementationClassUID(ae.implementation_class_uid),
    ]
    if ae.implementation_version_name:
        items.append(ImplementationVersionName(ae.implementation_version_name))
    if (invoked, performed) != (1, 1):  # absent means 1/1; only send it when not (spec-notes)
        items.append(AsyncOpsWindow(int(invoked), int(performed)))
    items.extend(roles.values())
    items.extend(x for x in extended if isinstance(x, SOPClassExtendedNegotiation))
    items.extend(x for x in extended if isinstance(x, SOPClassCommonExtendedNegotiation))
    if user_identity is not None:
        items.append(user_identity)
    rq = AAssociateRQ(
        called_ae_title=called_ae_title,
        calling_ae_title=ae.ae_title,
        presentation_contexts=tuple(cx.to_rq() for cx in requested),
        user_information=UserInformation(tuple(items)),
    )
    return rq, requested


def prepare_association(
    ae: AE,
    addr: str,
    port: int,
    contexts: Sequence[PresentationContext] | None,
    called_ae_title: str,
    max_pdu: int,
    ext_neg: Sequence[object] | None,
    evt_handlers: EventHandlers | None,
    user_identity: UserIdentityRQ | None,
    max_operations_invoked: int | None,
    max_operations_performed: int | None,
) -> tuple[Association, ULConnection]:
    """A requestor Association and its ULConnection with the A-ASSOCIATE-RQ issued (Evt1,
    Sta4): what is left is to connect the transport."""
    from dicomnet.events import normalize_handlers

    assoc = Association(ae, "requestor")
    for evt, bindings in normalize_handlers(evt_handlers).items():
        for fn, args in bindings:
            assoc.bind(evt, fn, args)
    rq, requested = build_rq(
        ae,
        list(contexts) if contexts is not None else ae.requested_contexts,
        called_ae_title,
        max_pdu,
        ext_neg,
        user_identity,
        max_operations_invoked,
        max_operations_performed,
    )
    assoc.requestor.ae_title = ae.ae_title
    assoc.requestor.requested_contexts = requested
    assoc.requestor.maximum_length = max_pdu
    assoc.acceptor.ae_title = called_ae_title
    assoc.acceptor.address, assoc.acceptor.port = addr, int(port)
    conn = ULConnection("requestor", max_pdata_length=max_pdu, artim_timeout=ae.acse_timeout)
    conn.request_association(rq, assoc.clock())
    assert conn.local_rq is not None
    assoc._rq = conn.local_rq
    return assoc, conn


def request_association(
    ae: AE,
    addr: str,
    port: int,
    *,
    contexts: Sequence[PresentationContext] | None,
    called_ae_title: str,
    max_pdu: int,
    ext_neg: Sequence[object] | None = None,
    bind_address: tuple[str, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    evt_handlers: EventHandlers | None = None,
    user_identity: UserIdentityRQ | None = None,
    max_operations_invoked: int | None = None,
    max_operations_performed: int | None = None,
) -> Association:
    """See :meth:`dicomnet.ae.AE.associate`."""
    assoc, conn = prepare_association(
        ae, addr, port, contexts, called_ae_title, max_pdu, ext_neg, evt_handlers,
        user_identity, max_operations_invoked, max_operations_performed,
    )  # fmt: skip
    clock = assoc.clock
    try:
        sock = open_socket(
            addr,
            port,
            timeout=ae.connection_timeout,
            bind_address=bind_address,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
        )
    except TransportError as exc:
        assoc.failure_reason = str(exc)
        assoc.error = exc
        LOGGER.info("association request failed: %s", exc)
        return assoc
    driver = SyncDriver(conn, sock, network_timeout=ae.network_timeout, on_event=assoc.handle_event)
    assoc.dul = driver
    if driver.sockname is not None:
        assoc.requestor.address, assoc.requestor.port = driver.sockname
    conn.transport_connected(clock())
    driver.flush()
    timeout = ae.acse_timeout
    deadline = None if timeout is None else clock() + timeout
    while not (assoc.is_established or assoc.is_rejected or driver.is_closed):
        if not driver.wait_for_activity(deadline):
            break
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        driver.close()
        return assoc
    if not driver.is_closed:
        assoc.failure_reason = f"no answer to the association request within {timeout} s"
        driver.abort()
    else:
        assoc.failure_reason = (
            driver.failure or assoc.failure_reason or "the peer closed the connection"
        )
        if ssl_context is None and assoc.abort_reason == 1:
            # PS3.8 Table 9-26 reason 1: the answer was no PDU at all, e.g. a TLS alert
            assoc.failure_reason += " (the peer's answer is not DICOM: a TLS port?)"
        elif ssl_context is None and not driver.received_any:
            assoc.failure_reason += " without answering (a TLS port?)"
        elif not driver.received_any:
            # TLS 1.3: the server checks our certificate after our side of the handshake
            assoc.failure_reason += (
                " after the TLS handshake without answering (was our certificate refused?)"
            )
    assoc.error = DicomNetError(assoc.failure_reason)
    LOGGER.info("association request failed: %s", assoc.failure_reason)
    return assoc


# --- message routing --------------------------------------------------------------------------


class OperationHandle:
    """One request waiting for its response(s); ``result()`` waits for the final status."""

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
            if self.done or not pump(self.assoc):
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
            if rsp.Status not in _PENDING:
                return rsp

    def result(self) -> Dataset:
        """Wait for the final response; its status Dataset (empty when none came)."""
        return status_dataset(self.final_response())

    def __repr__(self) -> str:
        state = "failed" if self.failed else "done" if self.done else "outstanding"
        return f"<OperationHandle {self.service} id={self.msg_id} {state}>"


def _is_final(rsp: P.DIMSEPrimitive) -> bool:
    return getattr(rsp, "Status", None) not in _PENDING


def _fail_all(assoc: Association) -> None:
    for handle in list(assoc.outstanding.values()):
        handle.failed = True
        handle.done = True
    assoc.outstanding.clear()


def pump(assoc: Association) -> bool:
    """Receive and route one DIMSE message (see the module docstring).

    False when nothing came within the DIMSE timeout (the association is then aborted) or the
    association is gone; every outstanding operation is then failed.
    """
    if not assoc.is_established:
        _fail_all(assoc)
        return False
    context_id, prim = assoc.dimse.get_msg(block=True)
    if prim is None or context_id is None:
        if assoc.is_established:
            LOGGER.warning("no DIMSE message within %s s: aborting", assoc.dimse_timeout)
            assoc.failure_reason = f"DIMSE timeout ({assoc.dimse_timeout} s)"
            assoc.abort()
        _fail_all(assoc)
        return False
    status = prim.Status  # None on requests (every primitive class has the attribute)
    if status is not None:
        mid = prim.MessageIDBeingRespondedTo
        handle = assoc.outstanding.get(mid) if isinstance(mid, int) else None
        if handle is None:
            LOGGER.warning("dropping a response to unknown Message ID %s", mid)
            return True
        handle.responses.append(prim)
        if status not in _PENDING:
            handle.done = True
            del assoc.outstanding[handle.msg_id]
        return True
    _serve_request(assoc, context_id, prim)
    return True


def _start(
    assoc: Association, prim: P.DIMSEPrimitive, context_id: int, msg_id: int | None
) -> OperationHandle:
    if not assoc.is_established:
        raise AssociationNotEstablishedError(
            f"the association is not established ({assoc.failure_reason or 'released'})"
        )
    outstanding = assoc.outstanding
    generated = msg_id is None
    if msg_id is None:
        msg_id = assoc.next_message_id()
    elif msg_id in outstanding:
        raise ValueError(f"Message ID {msg_id} is already outstanding")
    # honour the asynchronous operations window (1 = wait for every response)
    while len(outstanding) >= max(1, assoc.async_window):
        if not pump(assoc):
            break
    if generated:
        object.__setattr__(prim, "MessageID", msg_id)  # 1..65535 by construction
    else:
        prim.MessageID = msg_id  # the caller's value: validated
    handle = OperationHandle(assoc, msg_id, context_id, prim.SERVICE)
    if not assoc.is_established:
        handle.failed = handle.done = True
        return handle
    outstanding[msg_id] = handle
    try:
        assoc.dimse.send_msg(prim, context_id)
    except ProtocolError as exc:  # the state changed under us (abort arrived)
        LOGGER.info("send failed: %s", exc)
        assoc.outstanding.pop(msg_id, None)
        handle.failed = handle.done = True
    return handle


def status_dataset(rsp: P.DIMSEPrimitive | None) -> Dataset:
    """A response's status elements as a pydicom Dataset (empty for None).

    Built from DataElements with the command dictionary's VRs (PS3.7 Annex E), bypassing
    pydicom's keyword lookup: this runs once per response, so the Dataset itself is a copy of
    a blank one's state (:func:`_blank_dataset`) and the (keyword, tag, VR) list of each
    primitive class is built once.
    """
    ds = _blank_dataset()
    if rsp is None:
        return ds
    fields = _STATUS_FIELDS.get(type(rsp))
    if fields is None:
        fields = _status_fields(type(rsp))
    elements = ds.__dict__.get("_dict")  # pydicom's element store: skips __setitem__'s checks
    for keyword, tag, vr, fast in fields:
        value = getattr(rsp, keyword)
        if value is None:
            continue
        if fast == 1 and type(value) is int:
            # the primitive validated it already (dimse.primitives): no second conversion and
            # validation by pydicom
            elem = _DataElement(tag, vr, value, already_converted=True, validation_mode=0)
        elif fast == 2 and type(value) is str:
            uid = _UIDS.get(value)
            if uid is None:
                if len(_UIDS) >= 256:
                    _UIDS.clear()
                uid = _UIDS[value] = _UID(value, 0)
            elem = _DataElement(tag, vr, uid, already_converted=True, validation_mode=0)
        else:
            if isinstance(value, tuple):
                value = list(value)
            elem = _DataElement(tag, vr, value)
        if isinstance(elements, dict):
            elements[tag] = elem
        else:  # pragma: no cover - another pydicom layout
            ds[tag] = elem
    return ds


_NUMERIC_VRS = frozenset(("US", "UL", "SS", "SL"))
# primitive class -> ((keyword, pydicom tag, VR, 1 numeric / 2 UID / 0 other), ...)
_STATUS_FIELDS: dict[type[P.DIMSEPrimitive], tuple[tuple[str, Any, str, int], ...]] = {}
_DataElement: Any = None
_UID: Any = None
# str -> pydicom UID of the SOP class UIDs seen in responses (UID objects are immutable str
# subclasses, so one can be shared); bounded, emptied when full
_UIDS: dict[str, Any] = {}
# (Dataset class, state of a blank Dataset, keys of its mutable containers) once pydicom is in
_BLANK: tuple[Any, dict[str, Any], tuple[str, ...]] | None = None


def _blank_dataset() -> Dataset:
    """A new empty Dataset: the attribute state of a ``Dataset()`` made once, copied (its
    mutable containers -- the element dict, private blocks ... -- copied one level), which
    skips the dozen pydicom ``__setattr__`` calls of ``Dataset.__init__``."""
    global _BLANK, _DataElement, _UID
    blank = _BLANK
    if blank is None:
        from pydicom.dataelem import DataElement
        from pydicom.dataset import Dataset
        from pydicom.uid import UID

        _DataElement, _UID = DataElement, UID
        state = dict(vars(Dataset()))
        mutable = tuple(k for k, v in state.items() if isinstance(v, dict | list | set))
        blank = _BLANK = (Dataset, state, mutable)
    cls, state, mutable = blank
    ds = cls.__new__(cls)
    d = ds.__dict__
    d.update(state)
    for key in mutable:
        d[key] = state[key].copy()
    return ds  # type: ignore[no-any-return]


def _status_fields(kind: type[P.DIMSEPrimitive]) -> tuple[tuple[str, Any, str, int], ...]:
    """The status-relevant parameters of a primitive class: every command element parameter
    but the message IDs and the data set parameters (PS3.7 Annex E)."""
    from pydicom.tag import BaseTag

    from dicomnet.dimse.commands import ELEMENTS, KEYWORD_TO_TAG

    skip = {"MessageID", "MessageIDBeingRespondedTo", *kind.DATASET_FIELDS}
    out = []
    for keyword in kind.FIELDS:
        tag = KEYWORD_TO_TAG.get(keyword)
        if keyword in skip or tag is None:
            continue
        vr = ELEMENTS[tag].vr
        fast = 1 if vr in _NUMERIC_VRS else 2 if vr == "UI" else 0
        out.append((keyword, BaseTag(tag), vr, fast))
    fields = _STATUS_FIELDS[kind] = tuple(out)
    return fields


def _decode(assoc: Association, rsp: P.DIMSEPrimitive, context_id: int) -> Dataset | None:
    """The data set of a response, decoded with its context's transfer syntax (or None)."""
    for name in rsp.DATASET_FIELDS:
        source = getattr(rsp, name, None)
        if source is None:
            continue
        cx = assoc.context_by_id(context_id)
        ts = cx.transfer_syntax if cx is not None else None
        try:
            return source.decode(ts) if ts else source.decode()  # type: ignore[no-any-return]
        except DicomNetError as exc:
            LOGGER.error("cannot decode the %s data set: %s", rsp.SERVICE, exc)
            return None
        finally:
            if hasattr(source, "close"):
                source.close()
    return None


def _source(dataset: Any, ts: str | None) -> DataSource | None:
    if dataset is None:
        return None
    if isinstance(dataset, DataSource):
        return dataset
    if isinstance(dataset, bytes | bytearray | memoryview):
        return DataSource.from_bytes(dataset, ts)
    if ts is None:  # pragma: no cover - contexts always have one
        raise DicomNetError("no transfer syntax to encode the data set")
    return DataSource.from_dataset(dataset, ts)


# --- serving the peer's requests on our association ---------------------------------------------


def _serve_request(assoc: Association, context_id: int, prim: P.DIMSEPrimitive) -> None:
    """Answer a request the peer sent us (C-GET's C-STORE sub-operations, N-EVENT-REPORT...)."""
    rsp = answer_request(assoc, context_id, prim)
    try:
        assoc.dimse.send_msg(rsp, context_id)
    except DicomNetError as exc:
        LOGGER.error("cannot answer the peer's %s: %s", rsp.SERVICE, exc)


def answer_request(assoc: Association, context_id: int, prim: P.DIMSEPrimitive) -> P.DIMSEPrimitive:
    """The response to a request from the peer, from the handler bound on ``assoc``.

    C-STORE needs the SCP role on its context (else 0124H, refused: not authorized); C-ECHO
    answers success without a handler; anything without a handler gets 0122H (SOP class not
    supported, PS3.7 C.5.5); a failing handler gets the service's "unable to process" code.
    """
    from dicomnet import events
    from dicomnet.services.dispatch import NO_HANDLER_STATUS, apply_status, status_parts

    evt_for = {
        P.C_STORE: events.EVT_C_STORE,
        P.C_ECHO: events.EVT_C_ECHO,
        P.N_EVENT_REPORT: events.EVT_N_EVENT_REPORT,
        P.N_GET: events.EVT_N_GET,
        P.N_SET: events.EVT_N_SET,
        P.N_ACTION: events.EVT_N_ACTION,
        P.N_CREATE: events.EVT_N_CREATE,
        P.N_DELETE: events.EVT_N_DELETE,
        P.C_FIND: events.EVT_C_FIND,
        P.C_GET: events.EVT_C_GET,
        P.C_MOVE: events.EVT_C_MOVE,
    }
    kind = type(prim)
    evt = evt_for.get(kind)
    rsp = kind()
    rsp.MessageIDBeingRespondedTo = getattr(prim, "MessageID", None)
    for uid in ("AffectedSOPClassUID", "AffectedSOPInstanceUID"):
        if uid in kind.FIELDS and getattr(prim, uid, None) is not None:
            setattr(rsp, uid, getattr(prim, uid))
    if kind is P.N_EVENT_REPORT:
        rsp.EventTypeID = getattr(prim, "EventTypeID", None)
    handlers = assoc.get_handlers(evt) if evt is not None else []
    cx = assoc.context_by_id(context_id)
    code: int = NO_HANDLER_STATUS
    extras: dict[str, Any] = {}
    reply: Any = None
    failure = {P.C_STORE: 0xC211, P.C_FIND: 0xC311, P.C_GET: 0xC411, P.C_MOVE: 0xC511}.get(kind, 0x0110)
    if kind is P.C_ECHO and not handlers:
        code = 0x0000
    elif kind is P.C_STORE and cx is not None and not cx.as_scp:
        code = 0x0124  # Refused: not authorized -- no SCP role for this SOP class (PS3.7 C.5.6)
    elif kind is P.C_STORE and _check_problem(prim) is not None:
        # malformed, or not an instance of its context's SOP class (PS3.4 B.2.3)
        problem = _check_problem(prim)
        code, extras = problem.status, {"ErrorComment": problem.text}
        LOGGER.warning("C-STORE sub-operation refused: %s", problem.text)
    elif handlers and kind in (P.C_FIND, P.C_GET, P.C_MOVE):
        code = NO_HANDLER_STATUS  # generator services are not served on an SCU association
    elif handlers:
        event = events.Event(assoc, evt, context=cx, request=prim)  # type: ignore[arg-type]
        try:
            fn, args = handlers[0]
            result = fn(event, *args)
            if isinstance(result, tuple) and len(result) == 2:
                result, reply = result
            code, extras = status_parts(result)
        except Exception as exc:
            LOGGER.exception("%s handler failed", evt)
            code, extras = failure, {"ErrorComment": f"{type(exc).__name__}: {exc}"}
    apply_status(rsp, code, extras)
    for name in prim.DATASET_FIELDS:
        source = getattr(prim, name, None)
        if source is not None and hasattr(source, "close"):
            source.close()
    if reply is not None and code not in (0x0122,) and code < 0xA000:
        reply_field = {P.N_EVENT_REPORT: "EventReply", P.N_ACTION: "ActionReply"}.get(
            kind, "AttributeList" if "AttributeList" in kind.FIELDS else None
        )
        if reply_field is not None:
            setattr(rsp, reply_field, _source(reply, cx.transfer_syntax if cx else None))
    return rsp


def _check_problem(prim: P.DIMSEPrimitive) -> Any:
    """The problem the reassembly's check found in a received C-STORE data set, or None."""
    return getattr(getattr(getattr(prim, "DataSet", None), "check", None), "problem", None)


# --- C-ECHO, C-STORE ------------------------------------------------------------------------------


def c_echo(assoc: Association, msg_id: int | None = None) -> Dataset:
    """C-ECHO (PS3.7 9.1.5; Verification, PS3.4 Annex A)."""
    return _echo(assoc, msg_id).result()


def c_echo_response(assoc: Association) -> P.DIMSEPrimitive | None:
    """C-ECHO returning the final C-ECHO-RSP primitive itself (None when none came): the
    same exchange as :func:`c_echo` without building a pydicom Dataset."""
    return _echo(assoc, None).final_response()


_ECHO_PARAMS = {"AffectedSOPClassUID": VERIFICATION}  # a constant, valid UID


def _echo(assoc: Association, msg_id: int | None) -> OperationHandle:
    cx = assoc.find_context(VERIFICATION)
    prim = P.C_ECHO._trusted(_ECHO_PARAMS)
    assert cx.context_id is not None
    return _start(assoc, prim, cx.context_id, msg_id)


def store_request(
    assoc: Association,
    dataset: Any,
    priority: int = 2,
    originator_aet: str | None = None,
    originator_id: int | None = None,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
    preferred: Sequence[str] = (),
) -> tuple[P.C_STORE, int, DataSource | None]:
    """The C-STORE-RQ primitive (no Message ID yet), its context, and the converted payload to
    close once sent; the payload is converted when its syntax was not accepted (any thread)."""
    from dicomnet.services.sending import prepare_store

    ready = prepare_store(assoc, dataset, sop_class_uid, sop_instance_uid, preferred)
    # The Affected UIDs come from the instance (sending.sendable_uid checked them): built
    # without the strict PS3.5 9.1 validator, so old files with e.g. leading zeros still go.
    params: dict[str, object] = {
        "AffectedSOPClassUID": ready.sop_class,
        "AffectedSOPInstanceUID": ready.sop_instance,
        "Priority": priority,
        "DataSet": ready.payload,
    }
    prim = P.C_STORE.from_checked(params)
    if priority not in (0, 1, 2):
        prim.Priority = priority  # validated: raises
    if originator_aet is not None:
        prim.MoveOriginatorApplicationEntityTitle = originator_aet
    if originator_id is not None:
        prim.MoveOriginatorMessageID = originator_id
    return prim, ready.context_id, ready.payload if ready.owned else None


def c_store(
    assoc: Association,
    dataset: Any,
    msg_id: int | None = None,
    priority: int = 2,
    originator_aet: str | None = None,
    originator_id: int | None = None,
    *,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Dataset:
    """C-STORE (PS3.7 9.1.1): ``dataset`` is a pydicom Dataset, a Part 10 file path or a
    DataSource (then give ``sop_class_uid``/``sop_instance_uid`` or it is decoded to find
    them). ``originator_aet``/``originator_id``: set when storing as a C-MOVE sub-operation."""
    return c_store_async(
        assoc, dataset, msg_id, priority, originator_aet, originator_id,
        sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid,
    ).result()  # fmt: skip


def c_store_async(
    assoc: Association,
    dataset: Any,
    msg_id: int | None = None,
    priority: int = 2,
    originator_aet: str | None = None,
    originator_id: int | None = None,
    *,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
    preferred: Sequence[str] = (),
) -> OperationHandle:
    """Send a C-STORE-RQ and return its :class:`OperationHandle` without waiting.

    ``preferred``: transfer syntaxes to convert uncompressed data into when the peer accepted
    them (``storescu --propose-*``); otherwise the instance's own syntax wins."""
    prim, context_id, converted = store_request(
        assoc, dataset, priority, originator_aet, originator_id, sop_class_uid,
        sop_instance_uid, preferred,
    )  # fmt: skip
    try:
        return _start(assoc, prim, context_id, msg_id)
    finally:
        if converted is not None:
            converted.close()  # sent (or failed): a conversion's spool file is deleted


def store_many(
    assoc: Association, datasets: Iterable[Any], priority: int = 2
) -> Iterator[tuple[Any, Dataset]]:
    """C-STORE each item keeping up to ``assoc.async_window`` requests outstanding; yields
    ``(item, status)`` as responses complete (in completion order)."""
    inflight: list[tuple[Any, OperationHandle]] = []

    def completed() -> Iterator[tuple[Any, Dataset]]:
        for entry in [e for e in inflight if e[1].done]:
            inflight.remove(entry)
            yield entry[0], entry[1].result()

    for item in datasets:
        while len(inflight) >= max(1, assoc.async_window) and assoc.is_established:
            if not pump(assoc):
                break
            yield from completed()
        yield from completed()
        if not assoc.is_established:
            from pydicom.dataset import Dataset

            yield item, Dataset()
            continue
        inflight.append((item, c_store_async(assoc, item, priority=priority)))
        yield from completed()
    while inflight:
        if not any(h.done for _, h in inflight) and not pump(assoc):
            pass
        yield from completed()


# --- C-FIND, C-GET, C-MOVE, C-CANCEL ----------------------------------------------------------


def _query(
    assoc: Association,
    prim: P.DIMSEPrimitive,
    identifier: Dataset,
    sop_class: str,
    msg_id: int | None,
) -> Iterator[tuple[Dataset, Dataset | None]]:
    cx = assoc.find_context(sop_class)
    assert cx.context_id is not None and cx.transfer_syntax is not None
    prim.AffectedSOPClassUID = sop_class
    prim.Identifier = DataSource.from_dataset(with_character_set(identifier), cx.transfer_syntax)
    handle = _start(assoc, prim, cx.context_id, msg_id)
    while True:
        rsp = handle.wait_response()
        if rsp is None:
            yield status_dataset(None), None
            return
        status = status_dataset(rsp)
        yield status, _decode(assoc, rsp, handle.context_id)
        if _is_final(rsp):
            return


def c_find(
    assoc: Association,
    identifier: Dataset,
    query_model: str,
    msg_id: int | None = None,
    priority: int = 2,
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-FIND (PS3.7 9.1.2): yields ``(status, identifier)``; the final one has no identifier."""
    prim = P.C_FIND(Priority=priority)
    return _query(assoc, prim, identifier, query_model_uid(query_model, "find"), msg_id)


def c_get(
    assoc: Association,
    identifier: Dataset,
    query_model: str,
    msg_id: int | None = None,
    priority: int = 2,
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-GET (PS3.7 9.1.3): yields ``(status, identifier)``; C-STORE sub-operations arriving
    meanwhile go to the EVT_C_STORE handler of the association."""
    prim = P.C_GET(Priority=priority)
    return _query(assoc, prim, identifier, query_model_uid(query_model, "get"), msg_id)


def c_move(
    assoc: Association,
    identifier: Dataset,
    move_aet: str,
    query_model: str,
    msg_id: int | None = None,
    priority: int = 2,
) -> Iterator[tuple[Dataset, Dataset | None]]:
    """C-MOVE (PS3.7 9.1.4) to ``move_aet``: yields ``(status, identifier)``."""
    if isinstance(move_aet, bytes):
        move_aet = move_aet.decode("ascii")
    prim = P.C_MOVE(Priority=priority, MoveDestination=move_aet.strip())
    return _query(assoc, prim, identifier, query_model_uid(query_model, "move"), msg_id)


def c_cancel(assoc: Association, msg_id: int, context_id: int | None = None) -> None:
    """Send C-CANCEL-RQ for ``msg_id`` (PS3.7 9.3.2.3); no response is expected."""
    if not assoc.is_established:
        raise AssociationNotEstablishedError("the association is not established")
    if context_id is None:
        handle = assoc.outstanding.get(msg_id)
        if handle is None:
            raise ValueError(f"no outstanding request with Message ID {msg_id}; give context_id")
        context_id = handle.context_id
    prim = P.C_CANCEL(MessageIDBeingRespondedTo=msg_id)
    try:
        assoc.dimse.send_msg(prim, context_id)
    except ProtocolError as exc:
        LOGGER.info("C-CANCEL not sent: %s", exc)


# --- DIMSE-N ------------------------------------------------------------------------------------


def _n_op(
    assoc: Association,
    prim: P.DIMSEPrimitive,
    abstract: str,
    msg_id: int | None,
    payload_field: str | None = None,
    payload: Any = None,
) -> tuple[Dataset, Dataset | None]:
    cx = assoc.find_context(abstract)
    assert cx.context_id is not None
    if payload_field is not None and payload is not None:
        setattr(prim, payload_field, _source(payload, cx.transfer_syntax))
    handle = _start(assoc, prim, cx.context_id, msg_id)
    rsp: P.DIMSEPrimitive | None = None
    while True:
        rsp = handle.wait_response()
        if rsp is None or _is_final(rsp):
            break
    if rsp is None:
        return status_dataset(None), None
    return status_dataset(rsp), _decode(assoc, rsp, handle.context_id)


def n_event_report(
    assoc: Association,
    dataset: Dataset | None,
    event_type: int,
    class_uid: str,
    instance_uid: str,
    msg_id: int | None = None,
    meta_uid: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """N-EVENT-REPORT (PS3.7 10.1.1); ``(status, event reply)``."""
    prim = P.N_EVENT_REPORT(
        AffectedSOPClassUID=class_uid, AffectedSOPInstanceUID=instance_uid, EventTypeID=event_type
    )
    return _n_op(assoc, prim, meta_uid or class_uid, msg_id, "EventInformation", dataset)


def n_get(
    assoc: Association,
    identifier_list: Sequence[Any],
    class_uid: str,
    instance_uid: str,
    msg_id: int | None = None,
    meta_uid: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """N-GET (PS3.7 10.1.2) of the attributes ``identifier_list`` (tags; empty = all)."""
    from pydicom.tag import Tag

    prim = P.N_GET(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
    if identifier_list:
        prim.AttributeIdentifierList = [int(Tag(t)) for t in identifier_list]
    return _n_op(assoc, prim, meta_uid or class_uid, msg_id)


def n_set(
    assoc: Association,
    dataset: Dataset,
    class_uid: str,
    instance_uid: str,
    msg_id: int | None = None,
    meta_uid: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """N-SET (PS3.7 10.1.3) with the modification list ``dataset``."""
    prim = P.N_SET(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
    return _n_op(assoc, prim, meta_uid or class_uid, msg_id, "ModificationList", dataset)


def n_action(
    assoc: Association,
    dataset: Dataset | None,
    action_type: int,
    class_uid: str,
    instance_uid: str,
    msg_id: int | None = None,
    meta_uid: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """N-ACTION (PS3.7 10.1.4) ``action_type`` with the action information ``dataset``."""
    prim = P.N_ACTION(
        RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid, ActionTypeID=action_type
    )
    return _n_op(assoc, prim, meta_uid or class_uid, msg_id, "ActionInformation", dataset)


def n_create(
    assoc: Association,
    dataset: Dataset | None,
    class_uid: str,
    instance_uid: str | None = None,
    msg_id: int | None = None,
    meta_uid: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """N-CREATE (PS3.7 10.1.5); ``instance_uid`` None lets the SCP choose it."""
    prim = P.N_CREATE(AffectedSOPClassUID=class_uid)
    if instance_uid is not None:
        prim.AffectedSOPInstanceUID = instance_uid
    return _n_op(assoc, prim, meta_uid or class_uid, msg_id, "AttributeList", dataset)


def n_delete(
    assoc: Association,
    class_uid: str,
    instance_uid: str,
    msg_id: int | None = None,
    meta_uid: str | None = None,
) -> Dataset:
    """N-DELETE (PS3.7 10.1.6): the status Dataset."""
    prim = P.N_DELETE(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
    return _n_op(assoc, prim, meta_uid or class_uid, msg_id)[0]


# --- asyncio client ---------------------------------------------------------------------------------

_INLINE_SEND_LIMIT = 1 << 20  # larger data sets are sent from a worker thread (flow control)


class AsyncAssociation:
    """An association for asyncio code, driven by the event loop itself.

    Theory of operation: the association runs on :class:`~dicomnet.transport.aio.AsyncDriver`
    (an ``asyncio.BufferedProtocol``) with this object as its owner, so no thread is spent per
    association and thousands can share one loop. Every Upper Layer event arrives on the loop
    thread; received P-DATA goes to the DIMSE provider and each completed message is routed at
    once: a response to the ``asyncio.Queue`` of its Message ID, a request from the peer (the
    C-STORE sub-operations of a C-GET, N-EVENT-REPORT) to a serving task that runs the bound
    handler in the default executor and sends the answer. An A-RELEASE-RQ from the peer,
    colliding with ours or not, is answered with A-RELEASE-RP (PS3.8 AR-2/AR-8).

    Sending: one DIMSE message at a time (an ``asyncio.Lock``: PS3.8 9.3.5 allows no
    interleaving of two messages' fragments). Messages up to 1 MiB are written from the loop;
    larger data sets are fragmented in a worker thread, where the driver's flow control blocks
    the writer instead of buffering the whole object. Operations may run concurrently (e.g.
    ``asyncio.gather`` of C-STOREs); at most ``async_window`` are outstanding (a semaphore;
    1 unless an asynchronous operations window was negotiated, PS3.7 D.3.3.3).

    Results are those of the blocking :class:`~dicomnet.association.Association`: status
    Datasets (empty when no response came: DIMSE timeout -- the association is then aborted --
    or the association died), ``(status, identifier)`` pairs from ``async for`` over
    C-FIND/C-GET/C-MOVE. Flags and negotiated values are read through to ``self.assoc``.
    """

    def __init__(self, assoc: Association, loop: asyncio.AbstractEventLoop) -> None:
        import asyncio

        self.assoc = assoc
        self.loop = loop
        self.driver: Any = None
        self._waiters: dict[int, asyncio.Queue[P.DIMSEPrimitive | None]] = {}
        self._decided: asyncio.Future[None] = loop.create_future()
        self._gone: asyncio.Future[None] = loop.create_future()
        self._send_lock = asyncio.Lock()
        self._window: asyncio.Semaphore | None = None
        self._incoming: asyncio.Queue[tuple[int, P.DIMSEPrimitive]] = asyncio.Queue()
        self._server_task: asyncio.Task[None] | None = None

    # -- establishment -----------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        ae: AE,
        addr: str,
        port: int,
        contexts: Sequence[PresentationContext] | None = None,
        ae_title: str | bytes = "ANY-SCP",
        max_pdu: int | None = None,
        ext_neg: Sequence[object] | None = None,
        bind_address: tuple[str, int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        evt_handlers: EventHandlers | None = None,
        user_identity: UserIdentityRQ | None = None,
        max_operations_invoked: int | None = None,
        max_operations_performed: int | None = None,
    ) -> AsyncAssociation:
        """See :meth:`dicomnet.ae.AE.associate_async`."""
        import asyncio
        import ssl as _ssl

        from dicomnet.ae import _ae_title
        from dicomnet.transport.aio import AsyncDriver
        from dicomnet.transport.base import ConnectError, TLSHandshakeError
        from dicomnet.transport.tls import DEFAULT_HANDSHAKE_TIMEOUT

        loop = asyncio.get_running_loop()
        pdu = ae.maximum_pdu_size if max_pdu is None else int(max_pdu)
        assoc, conn = prepare_association(
            ae, addr, port, contexts, _ae_title(ae_title), pdu, ext_neg, evt_handlers,
            user_identity, max_operations_invoked, max_operations_performed,
        )  # fmt: skip
        self = cls(assoc, loop)
        kwargs: dict[str, Any] = {}
        if ssl_context is not None:
            kwargs["ssl"] = ssl_context
            kwargs["server_hostname"] = server_hostname or (
                addr if ssl_context.check_hostname else ""
            )
            kwargs["ssl_handshake_timeout"] = ae.connection_timeout or DEFAULT_HANDSHAKE_TIMEOUT

        def factory() -> AsyncDriver:
            return AsyncDriver(conn, loop, self, idle_timeout=ae.network_timeout)

        # Two steps, so that a failure is reported as what it is: TCP connect, then TLS.
        sock: socket.socket | None = None
        try:
            infos = await loop.getaddrinfo(addr, port, type=socket.SOCK_STREAM)
            family, kind, proto, _name, sockaddr = infos[0]
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            if bind_address is not None:
                sock.bind(bind_address)
            await asyncio.wait_for(loop.sock_connect(sock, sockaddr), ae.connection_timeout)
        except (TimeoutError, OSError) as exc:
            if sock is not None:
                sock.close()
            error: DicomNetError = ConnectError(
                f"cannot connect to {addr}:{port}: {exc or 'timed out'}"
            )
            assoc.failure_reason, assoc.error = str(error), error
            return self
        try:
            await loop.create_connection(factory, sock=sock, **kwargs)
        except (TimeoutError, OSError, _ssl.SSLError) as exc:
            sock.close()
            if ssl_context is not None:
                error = TLSHandshakeError(
                    f"TLS handshake with {addr}:{port} failed: {exc or 'timed out'} "
                    "(does the peer speak TLS?)"
                )
            else:  # pragma: no cover - a connected socket cannot fail here without TLS
                error = ConnectError(f"cannot connect to {addr}:{port}: {exc}")
            assoc.failure_reason, assoc.error = str(error), error
            return self
        try:
            await asyncio.wait_for(asyncio.shield(self._decided), ae.acse_timeout)
        except TimeoutError:
            assoc.failure_reason = f"no answer to the association request within {ae.acse_timeout} s"
            self.driver.abort()
        if assoc.is_established:
            self._window = asyncio.Semaphore(max(1, assoc.async_window))
            self._server_task = loop.create_task(self._serve_incoming())
        else:
            if assoc.failure_reason is None:
                assoc.failure_reason = "the peer closed the connection"
            if assoc.error is None:
                assoc.error = DicomNetError(assoc.failure_reason)
            self.driver.close()
        return self

    # -- DriverOwner (loop thread) -------------------------------------------------------------
    def connection_made(self, driver: Any) -> None:
        self.driver = driver
        self.assoc.dul = driver
        if driver.sockname is not None:
            self.assoc.requestor.address, self.assoc.requestor.port = driver.sockname

    def handle_event(self, driver: Any, event: Any) -> None:
        from dicomnet.ul.events import (
            Aborted,
            AssociationAccepted,
            AssociationRejected,
            PDataReceived,
            ReleaseRequested,
            TransportClosed,
        )

        assoc = self.assoc
        kind = type(event)
        if kind is PDataReceived:
            try:
                assoc.dimse.receive_primitive(event.pdu)
            except ProtocolError as exc:
                assoc.failure_reason = f"protocol error by the peer: {exc}"
                raise  # the driver sends the A-ABORT the error implies and closes
            self._route()
            return
        assoc.handle_event(event)
        if kind is ReleaseRequested:
            try:  # PS3.8 AR-2 / AR-8 (release collision)
                driver.conn.release_response()
                driver.flush()
            except DicomNetError as exc:
                LOGGER.debug("release_response refused: %s", exc)
        elif kind in (AssociationAccepted, AssociationRejected):
            self._decide()
        elif kind in (Aborted, TransportClosed):
            self._decide()
            self._fail_waiters()
            if kind is TransportClosed and not self._gone.done():
                self._gone.set_result(None)

    def connection_lost(self, driver: Any) -> None:
        if self.assoc.is_established:
            self.assoc.failure_reason = self.assoc.failure_reason or "the connection was lost"
            self.assoc.handle_event(_transport_closed())
        self._decide()
        self._fail_waiters()
        if not self._gone.done():
            self._gone.set_result(None)

    def _decide(self) -> None:
        if not self._decided.done():
            self._decided.set_result(None)

    def _fail_waiters(self) -> None:
        for queue in self._waiters.values():
            queue.put_nowait(None)

    def _route(self) -> None:
        queue = self.assoc.dimse.msg_queue
        while queue:
            context_id, prim = queue.popleft()
            if prim.is_response:
                mid = getattr(prim, "MessageIDBeingRespondedTo", None)
                waiter = self._waiters.get(mid) if isinstance(mid, int) else None
                if waiter is None:
                    LOGGER.warning("dropping a response to unknown Message ID %s", mid)
                else:
                    waiter.put_nowait(prim)
            else:
                self._incoming.put_nowait((context_id, prim))

    # -- sending -------------------------------------------------------------------------------
    async def _send(self, prim: P.DIMSEPrimitive, context_id: int) -> bool:
        """Send one message (serialized); False when the association is gone."""
        async with self._send_lock:
            if not self.assoc.is_established:
                return False
            payload = next(
                (getattr(prim, f) for f in prim.DATASET_FIELDS if getattr(prim, f) is not None),
                None,
            )
            inline = payload is None or (
                isinstance(payload, DataSource)
                and payload.getbuffer() is not None
                and payload.size <= _INLINE_SEND_LIMIT
            )
            try:
                if inline:
                    self.assoc.dimse.send_msg(prim, context_id)
                else:
                    await self.loop.run_in_executor(None, self.assoc.dimse.send_msg, prim, context_id)
            except ProtocolError as exc:
                LOGGER.info("send failed: %s", exc)
                return False
            return True

    async def _serve_incoming(self) -> None:
        """Answer the peer's requests one by one (handlers run in the default executor)."""
        while True:
            context_id, prim = await self._incoming.get()
            try:
                rsp = await self.loop.run_in_executor(
                    None, answer_request, self.assoc, context_id, prim
                )
                await self._send(rsp, context_id)
            except Exception:  # never let one bad request stop the service
                LOGGER.exception("answering the peer's %s failed", prim.SERVICE)

    # -- operations ----------------------------------------------------------------------------
    async def _operation(
        self, prim: P.DIMSEPrimitive, context_id: int, msg_id: int | None
    ) -> AsyncIterator[P.DIMSEPrimitive | None]:
        """Send ``prim`` and yield its responses; None (then stop) when none came."""
        import asyncio

        assoc = self.assoc
        if not assoc.is_established or self._window is None:
            raise AssociationNotEstablishedError(
                f"the association is not established ({assoc.failure_reason or 'released'})"
            )
        async with self._window:
            if msg_id is None:
                msg_id = assoc.next_message_id()
                while msg_id in self._waiters:
                    msg_id = assoc.next_message_id()
            elif msg_id in self._waiters:
                raise ValueError(f"Message ID {msg_id} is already outstanding")
            prim.MessageID = msg_id
            queue: asyncio.Queue[P.DIMSEPrimitive | None] = asyncio.Queue()
            self._waiters[msg_id] = queue
            try:
                if not await self._send(prim, context_id):
                    yield None
                    return
                while True:
                    try:
                        rsp = await asyncio.wait_for(queue.get(), assoc.dimse_timeout)
                    except TimeoutError:
                        if assoc.is_established:
                            LOGGER.warning("no DIMSE response within %s s: aborting", assoc.dimse_timeout)
                            assoc.failure_reason = f"DIMSE timeout ({assoc.dimse_timeout} s)"
                            await self.abort()
                        rsp = None
                    yield rsp
                    if rsp is None or _is_final(rsp):
                        return
            finally:
                del self._waiters[msg_id]

    async def _single(
        self, prim: P.DIMSEPrimitive, context_id: int, msg_id: int | None
    ) -> P.DIMSEPrimitive | None:
        last = None
        async for rsp in self._operation(prim, context_id, msg_id):
            last = rsp
        return last

    async def send_c_echo(self, msg_id: int | None = None) -> Dataset:
        cx = self.assoc.find_context(VERIFICATION)
        assert cx.context_id is not None
        rsp = await self._single(P.C_ECHO(AffectedSOPClassUID=VERIFICATION), cx.context_id, msg_id)
        return status_dataset(rsp)

    async def send_c_store(
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
        """C-STORE, as :meth:`Association.send_c_store`."""
        prim, context_id, converted = await self.loop.run_in_executor(
            None, store_request, self.assoc, dataset, priority, originator_aet, originator_id,
            sop_class_uid, sop_instance_uid,
        )  # fmt: skip
        try:
            return status_dataset(await self._single(prim, context_id, msg_id))
        finally:
            if converted is not None:
                converted.close()

    async def _query(
        self, prim: P.DIMSEPrimitive, identifier: Dataset, sop_class: str, msg_id: int | None
    ) -> AsyncIterator[tuple[Dataset, Dataset | None]]:
        cx = self.assoc.find_context(sop_class)
        assert cx.context_id is not None and cx.transfer_syntax is not None
        prim.AffectedSOPClassUID = sop_class
        prim.Identifier = DataSource.from_dataset(with_character_set(identifier), cx.transfer_syntax)
        async for rsp in self._operation(prim, cx.context_id, msg_id):
            if rsp is None:
                yield status_dataset(None), None
                return
            yield status_dataset(rsp), _decode(self.assoc, rsp, cx.context_id)

    def send_c_find(
        self, dataset: Dataset, query_model: str, msg_id: int | None = None, priority: int = 2
    ) -> AsyncIterator[tuple[Dataset, Dataset | None]]:
        prim = P.C_FIND(Priority=priority)
        return self._query(prim, dataset, query_model_uid(query_model, "find"), msg_id)

    def send_c_get(
        self, dataset: Dataset, query_model: str, msg_id: int | None = None, priority: int = 2
    ) -> AsyncIterator[tuple[Dataset, Dataset | None]]:
        prim = P.C_GET(Priority=priority)
        return self._query(prim, dataset, query_model_uid(query_model, "get"), msg_id)

    def send_c_move(
        self,
        dataset: Dataset,
        move_aet: str,
        query_model: str,
        msg_id: int | None = None,
        priority: int = 2,
    ) -> AsyncIterator[tuple[Dataset, Dataset | None]]:
        prim = P.C_MOVE(Priority=priority, MoveDestination=str(move_aet).strip())
        return self._query(prim, dataset, query_model_uid(query_model, "move"), msg_id)

    async def send_c_cancel(self, msg_id: int, context_id: int | None = None) -> None:
        """C-CANCEL the outstanding request ``msg_id`` (PS3.7 9.3.2.3)."""
        if context_id is None:
            raise ValueError("give the context_id of the request to cancel")
        await self._send(P.C_CANCEL(MessageIDBeingRespondedTo=msg_id), context_id)

    async def _n(
        self, prim: P.DIMSEPrimitive, abstract: str, msg_id: int | None,
        payload_field: str | None = None, payload: Any = None,
    ) -> tuple[Dataset, Dataset | None]:  # fmt: skip
        cx = self.assoc.find_context(abstract)
        assert cx.context_id is not None
        if payload_field is not None and payload is not None:
            setattr(prim, payload_field, _source(payload, cx.transfer_syntax))
        rsp = await self._single(prim, cx.context_id, msg_id)
        if rsp is None:
            return status_dataset(None), None
        return status_dataset(rsp), _decode(self.assoc, rsp, cx.context_id)

    async def send_n_event_report(
        self, dataset: Dataset | None, event_type: int, class_uid: str, instance_uid: str,
        msg_id: int | None = None, meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:  # fmt: skip
        prim = P.N_EVENT_REPORT(
            AffectedSOPClassUID=class_uid, AffectedSOPInstanceUID=instance_uid, EventTypeID=event_type
        )
        return await self._n(prim, meta_uid or class_uid, msg_id, "EventInformation", dataset)

    async def send_n_get(
        self, identifier_list: Sequence[Any], class_uid: str, instance_uid: str,
        msg_id: int | None = None, meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:  # fmt: skip
        from pydicom.tag import Tag

        prim = P.N_GET(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
        if identifier_list:
            prim.AttributeIdentifierList = [int(Tag(t)) for t in identifier_list]
        return await self._n(prim, meta_uid or class_uid, msg_id)

    async def send_n_set(
        self, dataset: Dataset, class_uid: str, instance_uid: str,
        msg_id: int | None = None, meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:  # fmt: skip
        prim = P.N_SET(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
        return await self._n(prim, meta_uid or class_uid, msg_id, "ModificationList", dataset)

    async def send_n_action(
        self, dataset: Dataset | None, action_type: int, class_uid: str, instance_uid: str,
        msg_id: int | None = None, meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:  # fmt: skip
        prim = P.N_ACTION(
            RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid,
            ActionTypeID=action_type,
        )  # fmt: skip
        return await self._n(prim, meta_uid or class_uid, msg_id, "ActionInformation", dataset)

    async def send_n_create(
        self, dataset: Dataset | None, class_uid: str, instance_uid: str | None = None,
        msg_id: int | None = None, meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:  # fmt: skip
        prim = P.N_CREATE(AffectedSOPClassUID=class_uid)
        if instance_uid is not None:
            prim.AffectedSOPInstanceUID = instance_uid
        return await self._n(prim, meta_uid or class_uid, msg_id, "AttributeList", dataset)

    async def send_n_delete(
        self, class_uid: str, instance_uid: str, msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> Dataset:  # fmt: skip
        prim = P.N_DELETE(RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid)
        return (await self._n(prim, meta_uid or class_uid, msg_id))[0]

    # -- life cycle ------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # flags and negotiated values: is_established, accepted_contexts, failure_reason, ...
        return getattr(self.assoc, name)

    async def release(self) -> None:
        """A-RELEASE; aborts when no A-RELEASE-RP comes within ``acse_timeout``."""
        import asyncio

        assoc = self.assoc
        if self.driver is None:
            return
        if assoc.is_established:
            async with self._send_lock:  # not in the middle of another message
                self.driver.release(assoc.acse_timeout)
            try:
                await asyncio.wait_for(asyncio.shield(self._gone), assoc.acse_timeout)
            except TimeoutError:
                assoc.failure_reason = "no A-RELEASE-RP in time"
                self.driver.abort()
        else:
            self.driver.close()
        await self._stop()

    async def abort(self) -> None:
        """A-ABORT (source service-user) and close."""
        if self.driver is None:
            return
        was = self.assoc.is_established
        self.driver.abort()
        if was:
            self.assoc.failure_reason = self.assoc.failure_reason or "aborted by us"
            self.assoc.handle_event(_transport_closed())
        self._fail_waiters()
        await self._stop()

    async def _stop(self) -> None:
        import asyncio

        task, self._server_task = self._server_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self) -> AsyncAssociation:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            await self.release()
        else:
            await self.abort()

    def __repr__(self) -> str:
        return f"<Async{self.assoc!r}>"


def _transport_closed() -> Any:
    from dicomnet.ul.events import TransportClosed

    return TransportClosed()
