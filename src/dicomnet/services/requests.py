"""The request primitive of each SCU operation, built against an association's contexts.

Theory of operation
-------------------
Every operation starts the same way: pick an accepted presentation context on which we are
SCU for the SOP class (``find_context``; PS3.8 section 7.1.1.13, roles PS3.7 D.3.3.4), and
build the request primitive (PS3.7 sections 9.1 and 10.1) with its data set encoded in that
context's transfer syntax. The builders here do that and return a :class:`Built` request; the
Message ID is set when it is sent (:mod:`dicomnet.dimse.router`).

An :class:`Outgoing` is a request not built yet: the association decides when to build it.
Building fails with :class:`~dicomnet.errors.NoPresentationContextError` when no context fits,
and a blocking association builds at once, a generator operation (C-FIND...) on its first
step, and the asyncio association when the operation is awaited, in a worker thread when
``blocking`` (a C-STORE reads and may convert a file).

C-STORE payloads (:mod:`dicomnet.services.sending`): a Part 10 file is sent from its own bytes
(meta header skipped, no decoding) when a context was accepted with its transfer syntax, and
converted (:mod:`dicomnet.transcode`) into the best accepted syntax otherwise; a pydicom
``Dataset`` is encoded in the best accepted syntax; a
:class:`~dicomnet.datasource.DataSource` is sent as it is or converted the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dicomnet.datasource import DataSource
from dicomnet.dimse import primitives as P
from dicomnet.dimse.textenc import with_character_set
from dicomnet.errors import NoPresentationContextError
from dicomnet.presentation import VERIFICATION
from dicomnet.services.payloads import DataSetLike, as_payload
from dicomnet.sop_sets import query_model_uid

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.services.contract import ServiceAssociation
    from dicomnet.services.sending import StoreInput

__all__ = [
    "Built",
    "Outgoing",
    "echo",
    "n_request",
    "query",
    "store",
]

_ECHO_PARAMS = {"AffectedSOPClassUID": VERIFICATION}  # a constant, valid UID


class Built:
    """A request ready to send: the primitive (no Message ID yet), its context, and a
    converted payload the sender owns (closed once sent), if any."""

    __slots__ = ("context_id", "owned", "primitive")

    def __init__(self, primitive: P.DIMSEPrimitive, context_id: int,
                 owned: DataSource | None = None) -> None:  # fmt: skip
        self.primitive = primitive
        self.context_id = context_id
        self.owned = owned

    def sent(self) -> None:
        """The request was sent (or failed): a conversion's spool file is deleted."""
        owned, self.owned = self.owned, None
        if owned is not None:
            owned.close()


class Outgoing:
    """A request to build later (see the module docstring); ``blocking``: building reads or
    converts files."""

    __slots__ = ("blocking", "build")

    def __init__(self, build: Callable[[], Built], blocking: bool = False) -> None:
        self.build = build
        self.blocking = blocking


def _context_id(assoc: ServiceAssociation, abstract_syntax: str) -> tuple[int, str | None]:
    cx = assoc.find_context(abstract_syntax)
    assert cx.context_id is not None
    return cx.context_id, cx.accepted_syntax


def echo(assoc: ServiceAssociation) -> Built:
    """C-ECHO-RQ (PS3.7 9.1.5; Verification, PS3.4 Annex A)."""
    context_id, _ = _context_id(assoc, VERIFICATION)
    return Built(P.C_ECHO.from_checked(_ECHO_PARAMS), context_id)


def store(
    assoc: ServiceAssociation,
    dataset: StoreInput,
    priority: int = 2,
    originator_aet: str | None = None,
    originator_id: int | None = None,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
    preferred: Sequence[str] = (),
) -> Built:
    """C-STORE-RQ (PS3.7 9.1.1) of ``dataset`` (a pydicom Dataset, a Part 10 file path or a
    DataSource): converted when its syntax was not accepted (any thread; see the module
    docstring). ``originator_aet``/``originator_id``: set for a C-MOVE sub-operation."""
    # lazy: the sender pulls in the transcoder (~5 ms of imports), which clients that never
    # send instances (echoscu, findscu) do not need
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
    prim: P.C_STORE = P.C_STORE.from_checked(params)
    if priority not in (0, 1, 2):
        prim.Priority = priority  # validated: raises
    if originator_aet is not None:
        prim.MoveOriginatorApplicationEntityTitle = originator_aet
    if originator_id is not None:
        prim.MoveOriginatorMessageID = originator_id
    return Built(prim, ready.context_id, ready.payload if ready.owned else None)


def query(
    assoc: ServiceAssociation,
    kind: type[P.C_FIND] | type[P.C_GET] | type[P.C_MOVE],
    identifier: Dataset,
    query_model: str,
    priority: int = 2,
    move_destination: str | bytes | None = None,
) -> Built:
    """C-FIND/C-GET/C-MOVE-RQ (PS3.7 9.1.2-9.1.4) with ``identifier`` for ``query_model``
    (a SOP class UID or a pynetdicom-style model letter); the identifier gets a Specific
    Character Set when it needs one (ISO_IR 192 for non-ASCII values, PS3.5 6.1)."""
    operation = {P.C_FIND: "find", P.C_GET: "get", P.C_MOVE: "move"}[kind]
    sop_class = query_model_uid(query_model, operation)
    context_id, ts = _context_id(assoc, sop_class)
    prim = kind(Priority=priority)
    if isinstance(prim, P.C_MOVE):
        if isinstance(move_destination, bytes):
            move_destination = move_destination.decode("ascii")
        prim.MoveDestination = str(move_destination or "").strip()
    prim.AffectedSOPClassUID = sop_class
    prim.Identifier = as_payload(with_character_set(identifier), ts)
    return Built(prim, context_id)


def n_request(
    assoc: ServiceAssociation,
    prim: P.DIMSEPrimitive,
    abstract_syntax: str,
    payload_field: str | None = None,
    payload: DataSetLike | None = None,
) -> Built:
    """A DIMSE-N request (PS3.7 10.1) on a context of ``abstract_syntax`` (the SOP class, or
    the Meta SOP class it belongs to), with ``payload`` as its ``payload_field``.

    An N-EVENT-REPORT is sent by the SOP class's SCP to its SCU (PS3.7 10.1.1; e.g. a Storage
    Commitment report, PS3.4 J.3.3): it goes on a context where we play the SCP role, and only
    without one on a context where we are SCU (a peer that negotiated no roles)."""
    if isinstance(prim, P.N_EVENT_REPORT):
        try:
            cx = assoc.find_context(abstract_syntax, role="scp")
        except NoPresentationContextError:
            cx = assoc.find_context(abstract_syntax)
        assert cx.context_id is not None
        context_id, ts = cx.context_id, cx.accepted_syntax
    else:
        context_id, ts = _context_id(assoc, abstract_syntax)
    if payload_field is not None and payload is not None:
        setattr(prim, payload_field, as_payload(payload, ts))
    return Built(prim, context_id)
