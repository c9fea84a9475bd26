"""Events a :class:`dicomnet.ul.connection.ULConnection` hands to its user.

Theory of operation
-------------------
Each event is the sans-IO form of an Upper Layer *indication* or *confirmation* primitive
(PS3.8 section 7) or of an instruction to the transport driver. The connection queues them in
the order the state machine produced them; the user pulls them with ``next_event()``.

The events are frozen :class:`dicomnet._record.Record` value classes (equality, hashing and
``repr`` as dataclasses would have them, without their import-time cost).

=========================  ================================================================
event                      PS3.8 primitive / meaning
=========================  ================================================================
AssociationRequested       A-ASSOCIATE indication (acceptor, AE-6 accepted by the provider)
AssociationAccepted        A-ASSOCIATE confirmation, accept (requestor, AE-3)
AssociationRejected        A-ASSOCIATE confirmation, reject (requestor, AE-4); ``local=True``
                           when *our* provider rejected an incoming request (AE-6)
PDataReceived              P-DATA indication (DT-2, AR-6)
ReleaseRequested           A-RELEASE indication (AR-2; ``collision=True`` for AR-8)
ReleaseConfirmed           A-RELEASE confirmation (AR-3, AR-10)
Aborted                    A-ABORT / A-P-ABORT indication (AA-3, AA-4, AA-8, ...)
TransportShouldClose       the driver must flush ``data_to_send()`` and close the socket
TransportClosed            the transport is gone; the connection is back in Sta1
=========================  ================================================================
"""

from __future__ import annotations

from dicomnet._record import Record
from dicomnet.ul.pdu import AAssociateAC, AAssociateRJ, AAssociateRQ, PDataTF

__all__ = [
    "Aborted",
    "AssociationAccepted",
    "AssociationRejected",
    "AssociationRequested",
    "PDataReceived",
    "ReleaseConfirmed",
    "ReleaseRequested",
    "TransportClosed",
    "TransportShouldClose",
    "ULEvent",
]

_set = object.__setattr__  # frozen records assign their slots past their own __setattr__


class AssociationRequested(Record):
    """A-ASSOCIATE indication: the peer's A-ASSOCIATE-RQ; answer with accept() or reject()."""

    __slots__ = ("pdu",)
    pdu: AAssociateRQ

    def __init__(self, pdu: AAssociateRQ) -> None:
        _set(self, "pdu", pdu)


class AssociationAccepted(Record):
    """A-ASSOCIATE confirmation (accept): the peer's A-ASSOCIATE-AC."""

    __slots__ = ("pdu",)
    pdu: AAssociateAC

    def __init__(self, pdu: AAssociateAC) -> None:
        _set(self, "pdu", pdu)


class AssociationRejected(Record):
    """A-ASSOCIATE confirmation (reject).

    ``local=False``: the peer answered our request with this A-ASSOCIATE-RJ.
    ``local=True``: our service provider rejected the peer's request with it (AE-6).
    """

    __slots__ = ("local", "pdu")
    pdu: AAssociateRJ
    local: bool

    def __init__(self, pdu: AAssociateRJ, local: bool = False) -> None:
        _set(self, "pdu", pdu)
        _set(self, "local", local)


class PDataReceived(Record):
    """P-DATA indication. PDV data are memoryviews into the receive buffer (no copy)."""

    __slots__ = ("pdu",)
    pdu: PDataTF

    def __init__(self, pdu: PDataTF) -> None:
        _pdatareceived_pdu(self, pdu)


_pdatareceived_pdu = PDataReceived.__dict__["pdu"].__set__


class ReleaseRequested(Record):
    """A-RELEASE indication; answer with release_response(). ``collision``: AR-8."""

    __slots__ = ("collision",)
    collision: bool

    def __init__(self, collision: bool = False) -> None:
        _set(self, "collision", collision)


class ReleaseConfirmed(Record):
    """A-RELEASE confirmation: the peer sent A-RELEASE-RP."""

    __slots__ = ()


class Aborted(Record):
    """A-ABORT or A-P-ABORT indication.

    ``source``/``reason`` as in the A-ABORT PDU (PS3.8 Table 9-26): source 0 service-user,
    2 service-provider. ``local=True``: we detected the peer's protocol error and sent this
    A-ABORT ourselves. ``local=False`` with source 2, reason 0 and a following
    :class:`TransportClosed`: the transport connection was lost (AA-4).
    """

    __slots__ = ("local", "reason", "source")
    source: int
    reason: int
    local: bool

    def __init__(self, source: int, reason: int, local: bool) -> None:
        _set(self, "source", source)
        _set(self, "reason", reason)
        _set(self, "local", local)


class TransportShouldClose(Record):
    """Flush ``data_to_send()``, then close the transport and call ``transport_closed()``."""

    __slots__ = ()


class TransportClosed(Record):
    """The transport connection is closed; the connection is in Sta1."""

    __slots__ = ()


ULEvent = (
    AssociationRequested
    | AssociationAccepted
    | AssociationRejected
    | PDataReceived
    | ReleaseRequested
    | ReleaseConfirmed
    | Aborted
    | TransportShouldClose
    | TransportClosed
)
