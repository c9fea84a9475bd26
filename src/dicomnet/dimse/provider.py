"""The DIMSE service provider of one association (PS3.7 sections 6, 9.1 and 10.1).

Theory of operation
-------------------
:class:`DIMSEServiceProvider` sits between the service classes (which speak in primitives:
``C_STORE``, ``C_FIND``, ...) and the Upper Layer (which speaks in P-DATA-TF PDUs). It owns no
socket and no thread:

* **sending** -- :meth:`~DIMSEServiceProvider.send_msg` turns a primitive into its message
  (``message_from_primitive``), encodes the command set, cuts command and data set into PDUs no
  larger than the peer's Maximum Length (:func:`dicomnet.dimse.fragment.fragment`) and hands
  each PDU, as a scatter-gather list of buffers, to ``assoc.dul.send_pdata_chunks``;
* **receiving** -- the driver that reads the socket calls
  :meth:`~DIMSEServiceProvider.receive_pdata` with every P-DATA-TF it decodes. The PDVs go
  through a :class:`~dicomnet.dimse.fragment.Reassembler`; each completed message is decoded
  and checked once (``decode_primitive``: the message and its primitive, built from the
  checked values) and the primitive is appended to :attr:`msg_queue`, except
  C-CANCEL requests, which go to :attr:`cancel_rq` so that a running C-FIND/C-GET/C-MOVE
  handler sees them at once (PS3.7 9.3.2.3 ff.);
* **waiting** -- :meth:`~DIMSEServiceProvider.get_msg` pops the queue; with ``block=True`` it
  drives the I/O itself through ``assoc.dul.wait_for_activity(deadline)``, see below.

Everything the provider needs besides the association's ``AssociationLike`` core is passed to
its constructor explicitly -- above all the :class:`~dicomnet.dimse.payload.PayloadFactory`
that decides where received data sets are kept (the association gives a
:class:`dicomnet.datasource.SpoolingFactory`: spool files above ``spool_threshold``, behind the
storage SCP's Part 10 header). The provider and the reassembler never open a file: data sets to
send are payloads (:class:`~dicomnet.dimse.payload.Payload`; a file-backed
:class:`dicomnet.datasource.DataSource` reads itself, or hands ``FileRegion`` items to a
transport that can ``sendfile``), received ones are what the factory makes.

Memory stays bounded on send only if ``dul.send_pdata_chunks`` transmits (or blocks/applies
back-pressure) before returning: ``send_msg`` produces the PDUs of a file-backed data set
lazily, one at a time, and would otherwise pile a whole 1 GB file up in the driver's queue.

The message queue
-----------------
:attr:`msg_queue` has the interface of a ``queue.Queue`` (``put``, ``get``, ``get_nowait``,
``empty``, ``qsize``, and ``queue``, the deque of ``(context_id, primitive)`` pairs). The
provider itself only ever touches that deque (:attr:`queued`): everything here runs in the one
thread (or event-loop task) that drives the association, so the hot path takes no lock. An
association passes a real ``queue.Queue`` (:class:`dicomnet.message_queue.MessageQueue`, whose
``wake`` notifies a thread blocked in ``msg_queue.get()``); this layer cannot create one
(``queue`` means threads), so on its own it uses :class:`LocalQueue`, the same interface for
one thread.

How ``get_msg(block=True)`` is driven
-------------------------------------
The provider cannot read the network itself (sans-IO). ``assoc.dul`` is the driver-side object
that can (``DULLike``). ``get_msg(block=True)`` computes a deadline ``assoc.clock() +
assoc.dimse_timeout`` (none when the timeout is None) and, while the queue is empty, calls
``assoc.dul.wait_for_activity(deadline)``. That call must block until at least one PDU has been
received *and processed* -- for a P-DATA-TF that means the driver has already called
:meth:`receive_pdata` on this provider -- and return True; or return False once the
deadline has passed or the association is gone (A-ABORT received or sent, transport closed).
After each True the queue is checked again (a PDU may hold only part of a message, or a
C-CANCEL); on False, or when ``assoc.dul.is_alive`` is False, ``get_msg`` returns
``(None, None)``. Messages already queued are always returned first, even after an abort, so
nothing received is silently lost. There is no polling and no sleep anywhere: the wait is the
driver's ``select``/``poll``/``await``.

Operations and C-CANCEL
-----------------------
A C-CANCEL-RQ (PS3.7 section 9.3.2.3) names the request it cancels by its Message ID. The
code that serves requests calls :meth:`start_operation` when it takes a request out of the
queue and :meth:`end_operation` when the request got its final response; a C-CANCEL for an
operation in between -- or for a request still waiting in the queue -- makes
:meth:`is_cancelled` True for that Message ID until the operation ends. A cancel for an unknown
or finished operation is ignored, as PS3.7 requires. :attr:`cancel_rq` keeps the last
:data:`MAX_CANCEL_RQ` C-CANCEL primitives received, by Message ID Being Responded To, for
inspection.

Serving code on other threads
-----------------------------
:meth:`take` removes the queued messages a predicate selects (a server takes the *requests*
and leaves the responses for the thread waiting on them). :attr:`send_hook`, when set,
receives every message about to be sent instead of the driver, and calls
:meth:`write_message` itself -- a server uses it to serialize messages sent from several
threads (PS3.8 9.3.5: the fragments of two messages never interleave) and to observe them.

Received commands that are wrong
--------------------------------
* A command set that cannot be parsed, an unknown Command Field, a request without Message ID,
  a response without Message ID Being Responded To (``DimseProtocolError``), and every rule of
  the reassembler: :class:`~dicomnet.errors.ProtocolError` propagates out of
  :meth:`receive_pdata`, with the A-ABORT reason it implies (2/6 for an unparseable
  command); the driver aborts the association.
* A known **request** with a missing or malformed mandatory element (``DimseCommandError``)
  is **not queued**: the provider answers it itself at once with the failure response the
  message layer builds (status 0120H missing attribute / 0212H mistyped argument, with
  Offending Element and Error Comment), on the same presentation context, and goes on. The
  service classes never see a request they could not act on, and the peer gets its answer.
  A faulty **response** or C-CANCEL (nothing to answer) is dropped; the
  :attr:`on_invalid_message` hook is called with the error either way.
* A request whose data set could not be kept locally (disk full while spooling,
  :class:`~dicomnet.dimse.fragment.ReassemblyResourceError`) is answered with A700H (out of
  resources) the same way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dicomnet.dimse.commands import decode_command
from dicomnet.dimse.fragment import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_SPOOL_THRESHOLD,
    CommandInfo,
    DataSetCheckFactory,
    Reassembler,
    ReassemblyResourceError,
    fragment,
    uses_file_regions,
)
from dicomnet.dimse.messages import (
    MESSAGE_TYPES,
    DimseCommandError,
    DIMSEMessage,
    decode_primitive,
    message_from_primitive,
)
from dicomnet.dimse.payload import Payload, PayloadFactory
from dicomnet.dimse.primitives import C_CANCEL, DIMSEPrimitive
from dicomnet.errors import DicomNetError, DimseError, ProtocolError
from dicomnet.ul.pdu import PDataTF

if TYPE_CHECKING:
    from dicomnet.ul.primitives import P_DATA

__all__ = [
    "MAX_CANCEL_RQ",
    "AssociationLike",
    "DIMSEServiceProvider",
    "DULLike",
]

#: At most this many C-CANCEL requests are remembered (the oldest is dropped).
MAX_CANCEL_RQ = 10
#: Status sent when a request's data set could not be stored locally (PS3.4 e.g. B.2.3: A7xx;
#: ``dimse.status.Status.OUT_OF_RESOURCES``, not imported: a client never needs that table).
OUT_OF_RESOURCES = 0xA700

_MESSAGE_ID = 0x0110
_MESSAGE_ID_RSP = 0x0120
_STATUS = 0x0900
_ERROR_COMMENT = 0x0902
_AFFECTED_CLASS = 0x0002


class DULLike(Protocol):
    """What the provider needs from the driver-side Upper Layer object."""

    @property
    def is_alive(self) -> bool: ...

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None: ...

    def wait_for_activity(self, deadline: float | None) -> bool: ...

    def send_pdata_many(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        """Several PDUs of one message held in memory, in as few writes as possible."""
        ...

    @property
    def sends_file_regions(self) -> bool:
        """True when PDU chunks may be file regions the driver sends with ``sendfile``."""
        ...


class AssociationLike(Protocol):
    """What the provider needs from an association."""

    @property
    def dul(self) -> DULLike: ...

    @property
    def dimse_timeout(self) -> float | None: ...

    @property
    def peer_max_pdata_length(self) -> int: ...

    @property
    def accepted_context_ids(self) -> set[int] | frozenset[int]: ...

    def clock(self) -> float: ...


MessageHook = Callable[[DIMSEMessage], None]


QueueItem = tuple[int, DIMSEPrimitive]


class MessageQueueLike(Protocol):
    """What the provider needs of its message queue: the deque it appends to, and ``wake``,
    called after each append (a thread-safe queue notifies its waiters there)."""

    @property
    def queue(self) -> deque[QueueItem]: ...

    def wake(self) -> None: ...


MessageQueueFactory = Callable[[deque[QueueItem]], MessageQueueLike]
"""Makes ``msg_queue`` around the provider's deque of received messages."""


def _nothing() -> None:
    """No queue object yet: nobody can be waiting on it."""


class LocalQueueEmpty(Exception):
    """:meth:`LocalQueue.get` on an empty queue (``queue.Empty`` for a real queue)."""


class LocalQueue:
    """``queue.Queue``'s interface over a deque, for a single thread (nothing to wait for:
    ``get`` on an empty queue raises :class:`LocalQueueEmpty`)."""

    __slots__ = ("queue",)

    def __init__(self, items: deque[QueueItem] | None = None) -> None:
        self.queue: deque[QueueItem] = deque() if items is None else items

    def wake(self) -> None:
        """Nothing waits on a single-thread queue."""

    def put(self, item: QueueItem, block: bool = True, timeout: float | None = None) -> None:
        self.queue.append(item)

    def put_nowait(self, item: QueueItem) -> None:
        self.queue.append(item)

    def get(self, block: bool = True, timeout: float | None = None) -> QueueItem:
        if not self.queue:
            raise LocalQueueEmpty
        return self.queue.popleft()

    def get_nowait(self) -> QueueItem:
        return self.get(False)

    def empty(self) -> bool:
        return not self.queue

    def full(self) -> bool:
        return False

    def qsize(self) -> int:
        return len(self.queue)


class DIMSEServiceProvider:
    """The DIMSE service provider of one association (see the module docstring).

    The keyword arguments configure reception (see
    :class:`~dicomnet.dimse.fragment.Reassembler`): ``payloads`` makes the received data sets
    (None: all kept in memory; an association passes a
    :class:`dicomnet.datasource.SpoolingFactory`, which spools those above ``spool_threshold``
    bytes to files), ``max_message_size`` caps a received message (None: the default),
    ``check_dataset`` checks data sets as they arrive, and ``transfer_syntax_of(context_id) ->
    str | None`` labels received data sets and encodes the pydicom ``Dataset`` payloads given to
    :meth:`send_msg`.
    """

    def __init__(
        self,
        assoc: AssociationLike,
        *,
        payloads: PayloadFactory | None = None,
        spool_threshold: int = DEFAULT_SPOOL_THRESHOLD,
        max_message_size: int | None = None,
        check_dataset: DataSetCheckFactory | None = None,
        transfer_syntax_of: Callable[[int], str | None] | None = None,
        msg_queue: MessageQueueFactory | None = None,
    ) -> None:
        self._assoc = assoc
        # The received messages: a deque the provider appends to, wrapped in a queue object
        # only when someone asks for msg_queue (see the module docstring).
        self._queued: deque[QueueItem] = deque()
        self._msg_queue: MessageQueueLike | None = None
        self._msg_queue_factory: MessageQueueFactory = (
            LocalQueue if msg_queue is None else msg_queue
        )
        self._wake: Callable[[], None] = _nothing
        #: {MessageIDBeingRespondedTo: C_CANCEL}, at most MAX_CANCEL_RQ entries (also
        #: reachable as ``cancel_req``).
        self.cancel_rq: dict[int, C_CANCEL] = {}
        #: Called with each message decoded from the peer, before it is queued (logging).
        self.on_receive_dimse_message: MessageHook | None = None
        #: Called with each message about to be sent (logging).
        self.on_send_dimse_message: MessageHook | None = None
        #: Called with the DimseError of a received message that was answered or dropped.
        self.on_invalid_message: Callable[[DimseError], None] | None = None
        #: When set, every message to send goes to ``send_hook(msg, context_id)``, which
        #: calls :meth:`write_message` (see the module docstring).
        self.send_hook: Callable[[DIMSEMessage, int], None] | None = None
        self._operations: set[int] = set()  # Message IDs of the requests being served
        self._cancelled: set[int] = set()  # ... of those (or queued ones) a C-CANCEL named
        self._transfer_syntax_of = transfer_syntax_of
        self._reassembler = Reassembler(
            self._is_accepted,
            spool_threshold=spool_threshold,
            max_message_size=(
                DEFAULT_MAX_MESSAGE_SIZE if max_message_size is None else max_message_size
            ),
            payloads=payloads,
            transfer_syntax_of=transfer_syntax_of,
            check_dataset=check_dataset,
        )

    # -- properties of the founding API ------------------------------------------------------

    @property
    def assoc(self) -> AssociationLike:
        """The association this provider serves."""
        return self._assoc

    @property
    def dimse_timeout(self) -> float | None:
        """Seconds ``get_msg(block=True)`` waits for a message (None: forever)."""
        value = self._assoc.dimse_timeout
        return None if value is None else float(value)

    @property
    def dul(self) -> DULLike:
        """The association's Upper Layer driver object."""
        return self._assoc.dul

    @property
    def maximum_pdu_size(self) -> int:
        """The peer's Maximum Length for P-DATA-TF (0: unlimited, capped locally on send)."""
        return int(self._assoc.peer_max_pdata_length)

    @property
    def message(self) -> CommandInfo | None:
        """The DIMSE message currently being received: what is known of its command set
        (context, command field, message ID, whether a data set follows) once its command
        fragments are complete, or None between messages."""
        return self._reassembler.command_info

    @property
    def reassembler(self) -> Reassembler:
        """The reassembler of incoming PDVs (its limits can be tuned)."""
        return self._reassembler

    @property
    def msg_queue(self) -> MessageQueueLike:
        """Received ``(context_id, primitive)`` pairs, oldest first (C-CANCEL excepted): a
        ``queue.Queue``-like object over :attr:`queued`, made on first use."""
        queue = self._msg_queue
        if queue is None:
            queue = self._msg_queue = self._msg_queue_factory(self._queued)
            self._wake = queue.wake
        return queue

    @property
    def cancel_req(self) -> dict[int, C_CANCEL]:
        """:attr:`cancel_rq` under its other spelling."""
        return self.cancel_rq

    @property
    def queued(self) -> deque[QueueItem]:
        """The received ``(context_id, primitive)`` pairs, oldest first (``msg_queue.queue``)."""
        return self._queued

    def _is_accepted(self, context_id: int) -> bool:
        return context_id in self._assoc.accepted_context_ids

    # -- operations --------------------------------------------------------------------------

    def start_operation(self, message_id: int) -> None:
        """The request ``message_id`` is being served: a C-CANCEL naming it now cancels it
        (one that arrived while the request waited in the queue already did)."""
        self._operations.add(message_id)

    def end_operation(self, message_id: int) -> None:
        """The request ``message_id`` got its final response: later C-CANCELs naming it are
        ignored (PS3.7 9.3.2.3), and the Message ID may be used again."""
        self._operations.discard(message_id)
        self._cancelled.discard(message_id)

    def is_cancelled(self, message_id: int | None) -> bool:
        """True once a C-CANCEL-RQ named the request ``message_id`` while it was queued or
        being served (until :meth:`end_operation`)."""
        return message_id in self._cancelled

    def take(
        self, select: Callable[[DIMSEPrimitive], bool]
    ) -> list[tuple[int, DIMSEPrimitive]]:
        """Remove and return the queued ``(context_id, primitive)`` pairs ``select`` picks,
        oldest first; the others stay queued in their order."""
        queue = self._queued
        taken: list[tuple[int, DIMSEPrimitive]] = []
        kept: list[tuple[int, DIMSEPrimitive]] = []
        for item in queue:  # one pass, ``select`` called once per item
            (taken if select(item[1]) else kept).append(item)
        if taken:
            queue.clear()
            if kept:
                queue.extend(kept)
        return taken

    # -- receiving ---------------------------------------------------------------------------

    def get_msg(self, block: bool = False) -> tuple[int, DIMSEPrimitive] | tuple[None, None]:
        """The oldest received ``(context_id, primitive)``, or ``(None, None)``.

        ``block=True`` waits up to ``dimse_timeout`` by driving ``dul.wait_for_activity`` (see
        the module docstring); ``(None, None)`` then means timeout, abort or closed transport.
        """
        queue = self._queued
        if queue:
            return queue.popleft()
        if not block:
            return None, None
        timeout = self.dimse_timeout
        deadline = None if timeout is None else self._assoc.clock() + timeout
        dul = self._assoc.dul
        while not queue:
            if not dul.is_alive or not dul.wait_for_activity(deadline):
                break
            if deadline is not None and not queue and self._assoc.clock() >= deadline:
                break
        if queue:
            return queue.popleft()
        return None, None

    def peek_msg(self) -> tuple[int, DIMSEPrimitive] | tuple[None, None]:
        """The oldest received ``(context_id, primitive)`` without removing it."""
        if self._queued:
            return self._queued[0]
        return None, None

    def receive_pdata(self, pdu: PDataTF) -> None:
        """Feed one received P-DATA-TF; completed messages are queued (or answered).

        Raises ProtocolError (remote, with the A-ABORT reason) on a protocol violation.
        """
        feed = self._reassembler.feed_pdv
        for pdv in pdu.pdvs:
            try:
                done = feed(pdv)
            except ReassemblyResourceError as exc:
                self._answer_failure(exc.context_id, exc.command, OUT_OF_RESOURCES, exc)
                continue
            if done is not None:
                self._deliver(*done)

    def receive_primitive(self, primitive: P_DATA | PDataTF) -> None:
        """Feed one received P-DATA primitive (PS3.8 section 7.6: ``[context ID, control
        header + fragment]`` values) or P-DATA-TF PDU; as :meth:`receive_pdata`."""
        # lazy: the P-DATA primitive class is for callers of this API; drivers pass PDUs
        from dicomnet.ul.primitives import P_DATA

        if isinstance(primitive, P_DATA):
            try:
                primitive = primitive.to_pdu()
            except DicomNetError as exc:  # a malformed PDV: invalid PDU parameter value (6)
                raise ProtocolError(str(exc), abort_reason=6) from exc
        self.receive_pdata(primitive)

    def connection_lost(self) -> None:
        """The association ended (release, abort, closed transport): drop the partial message
        being received and delete its spool file. Queued messages stay readable."""
        self._reassembler.reset()

    def _deliver(self, context_id: int, command: bytes, data_set: Payload | None) -> None:
        try:
            # One pass: decode, check each element once, build the primitive from the checked
            # values (PS3.7 9.3 / 10.3 tables via the message classes).
            msg, prim = decode_primitive(
                command, data_set, self._reassembler.take_command_elements()
            )
        except DimseCommandError as exc:
            if data_set is not None:
                data_set.close()
            rsp = exc.response()
            if rsp is not None:
                try:
                    self.send_message(rsp, context_id)
                except DimseError as send_exc:
                    # e.g. the peer announced a Maximum Length too small for any PDV: it can
                    # be given no answer at all, so the association ends (A-ABORT 2/0).
                    raise ProtocolError(
                        f"cannot answer an invalid request: {send_exc}",
                        abort_source=2,
                        abort_reason=0,
                    ) from send_exc
            if self.on_invalid_message is not None:
                self.on_invalid_message(exc)
            return
        except DimseError as exc:  # DimseProtocolError and anything else unparseable
            if data_set is not None:
                data_set.close()
            raise ProtocolError(
                f"invalid DIMSE command: {exc}", abort_source=2, abort_reason=6
            ) from exc
        msg.context_id = context_id
        if self.on_receive_dimse_message is not None:
            self.on_receive_dimse_message(msg)
        if type(prim) is C_CANCEL:
            self._cancel(prim)
            return
        self._queued.append((context_id, prim))
        self._wake()

    def _cancel(self, prim: C_CANCEL) -> None:
        mid = prim.MessageIDBeingRespondedTo
        if mid is None:  # pragma: no cover - decode_primitive requires it
            return
        cancels = self.cancel_rq
        cancels.pop(mid, None)  # a repeated cancel becomes the newest
        cancels[mid] = prim
        while len(cancels) > MAX_CANCEL_RQ:
            del cancels[next(iter(cancels))]
        if mid in self._operations or any(
            p.MessageID == mid and p.Status is None for _, p in self._queued
        ):
            self._cancelled.add(mid)

    def _answer_failure(
        self, context_id: int, command: bytes, status: int, exc: DimseError
    ) -> None:
        """Answer a request we could not take in with a bare failure response."""
        try:
            elements = decode_command(command)
        except DimseError:
            elements = {}
        field = elements.get(0x0100)
        is_request = isinstance(field, int) and not field & 0x8000 and field != 0x0FFF
        rsp_cls = MESSAGE_TYPES.get(field | 0x8000) if is_request else None  # type: ignore[operator]
        mid = elements.get(_MESSAGE_ID)
        if rsp_cls is not None and isinstance(mid, int):
            rsp = rsp_cls()
            cs = rsp.command_set.elements
            cs[_MESSAGE_ID_RSP] = mid
            cs[_STATUS] = status
            cs[_ERROR_COMMENT] = str(exc)[:64].replace("\\", "/")
            sop_class = elements.get(_AFFECTED_CLASS)
            if _AFFECTED_CLASS in rsp_cls.OPTIONAL and isinstance(sop_class, str):
                cs[_AFFECTED_CLASS] = sop_class
            try:
                self.send_message(rsp, context_id)
            except DimseError:
                pass  # e.g. an unencodable echoed value: the peer will time out instead
        if self.on_invalid_message is not None:
            self.on_invalid_message(exc)

    # -- sending -----------------------------------------------------------------------------

    def send_msg(self, primitive: DIMSEPrimitive, context_id: int) -> None:
        """Encode ``primitive`` as its DIMSE message and send it on ``context_id``."""
        self.send_message(message_from_primitive(primitive), context_id)

    def send_message(self, msg: DIMSEMessage, context_id: int) -> None:
        """Send an encoded message: through :attr:`send_hook` when one is set, else at once
        (:meth:`write_message`)."""
        hook = self.send_hook
        if hook is not None:
            hook(msg, context_id)
        else:
            self.write_message(msg, context_id)

    def message_pdus(
        self, primitive: DIMSEPrimitive, context_id: int
    ) -> tuple[DIMSEMessage, Iterator[list[Any]]]:
        """``primitive``'s message and its P-DATA-TF PDUs on ``context_id`` (lists of buffers,
        produced lazily, a file-backed data set read one PDU at a time), *not sent*: for a
        sender that paces them itself (the server's event-loop services write them as the
        peer reads). The same encoding as :meth:`send_msg`."""
        msg = message_from_primitive(primitive)
        msg.context_id = context_id
        data = msg.data_set
        if data is not None and not isinstance(data, Payload):
            msg.data_set = self._as_source(data, context_id)
        if self.on_send_dimse_message is not None:
            self.on_send_dimse_message(msg)
        command = msg.encode_command()
        source = msg.data_set
        assert source is None or isinstance(source, Payload)
        if source is not None:
            source.size  # noqa: B018 - a data set is encoded before its command goes (see write_message)
        return msg, fragment(context_id, command, source, int(self._assoc.peer_max_pdata_length))

    def repeated_pdus(
        self, primitive: DIMSEPrimitive, context_id: int
    ) -> Callable[[Payload], tuple[DIMSEMessage, list[list[Any]]]] | None:
        """For many responses that differ only in their data set (the pending C-FIND responses
        of one request): a function ``data -> (message, PDUs)`` that reuses ``primitive``'s
        command set, encoded once (it must announce a data set). None when every message must
        be built on its own (an ``on_send_dimse_message`` hook is set)."""
        if self.on_send_dimse_message is not None:
            return None
        msg = message_from_primitive(primitive)
        msg.context_id = context_id
        msg.data_set = Payload.from_bytes(b"", None)  # "a data set follows"
        command = msg.encode_command()
        max_pdata = int(self._assoc.peer_max_pdata_length)

        def pdus(data: Payload) -> tuple[DIMSEMessage, list[list[Any]]]:
            return msg, list(fragment(context_id, command, data, max_pdata))

        return pdus

    def write_message(self, msg: DIMSEMessage, context_id: int) -> None:
        """Fragment ``msg`` into P-DATA-TF PDUs no larger than the peer's Maximum Length and
        hand them to the driver (PS3.8 9.3.5, PS3.7 Annex F); the send hook, if any, is not
        consulted."""
        msg.context_id = context_id
        data = msg.data_set
        if data is not None and not isinstance(data, Payload):
            msg.data_set = self._as_source(data, context_id)
        if self.on_send_dimse_message is not None:
            self.on_send_dimse_message(msg)
        command = msg.encode_command()
        assoc = self._assoc
        dul = assoc.dul
        data = msg.data_set
        assert data is None or isinstance(data, Payload)
        if data is not None:
            # A pydicom data set is encoded now, before its command set is queued: one that
            # cannot be encoded raises with nothing sent (after a queued command the peer
            # would wait for a data set that never comes, PS3.7 Annex F). Free otherwise: the
            # encoding is kept for the fragments; bytes and files know their size.
            data.size  # noqa: B018
        max_pdata = int(assoc.peer_max_pdata_length)  # maximum_pdu_size
        regions = uses_file_regions(data, max_pdata, dul.sends_file_regions)
        pdus = fragment(context_id, command, data, max_pdata, file_regions=regions)
        if not regions:
            # In memory, or read from a file block by block (each chunk an immutable slice of
            # its own block): the PDUs go to the transport in batches (few scatter-gather
            # writes, few wake-ups). FileRegion items (sendfile) go PDU by PDU.
            dul.send_pdata_many(pdus)
            return
        send = dul.send_pdata_chunks
        for chunks in pdus:
            send(chunks)

    def _as_source(self, payload: object, context_id: int) -> Payload | None:
        if payload is None or isinstance(payload, Payload):
            return payload
        if isinstance(payload, bytes | bytearray | memoryview):
            return Payload.from_bytes(payload)
        ts = self._transfer_syntax_of(context_id) if self._transfer_syntax_of else None
        if ts is None:
            raise DimseError(
                f"cannot encode a {type(payload).__name__} payload: the transfer syntax of "
                f"context {context_id} is unknown (give a DataSource or bytes)"
            )
        try:
            from pydicom.dataset import Dataset
        except ImportError as exc:  # pragma: no cover - pydicom is a dependency
            raise DimseError("pydicom is needed to encode a Dataset") from exc
        if not isinstance(payload, Dataset):
            raise DimseError(f"unsupported data set payload {type(payload).__name__}")
        return Payload.from_dataset(payload, ts)
