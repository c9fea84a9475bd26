"""Events a :class:`dicomnet.ul.connection.ULConnection` hands to its user.

Theory of operation
-------------------
Each event is the sans-IO form of an Upper Layer *indication* or *confirmation* primitive
(PS3.8 section 7) or of an instruction to the transport driver. The connection queues them in
the order the state machine produced them; the user pulls them with ``next_event()``.

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

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class AssociationRequested:
    """A-ASSOCIATE indication: the peer's A-ASSOCIATE-RQ; answer with accept() or reject()."""

    pdu: AAssociateRQ


@dataclass(frozen=True, slots=True)
class AssociationAccepted:
    """A-ASSOCIATE confirmation (accept): the peer's A-ASSOCIATE-AC."""

    pdu: AAssociateAC


@dataclass(frozen=True, slots=True)
class AssociationRejected:
    """A-ASSOCIATE confirmation (reject).

    ``local=False``: the peer answered our request with this A-ASSOCIATE-RJ.
    ``local=True``: our service provider rejected the peer's request with it (AE-6).
    """

    pdu: AAssociateRJ
    local: bool = False


@dataclass(frozen=True, slots=True)
class PDataReceived:
    """P-DATA indication. PDV data are memoryviews into the receive buffer (no copy)."""

    pdu: PDataTF


@dataclass(frozen=True, slots=True)
class ReleaseRequested:
    """A-RELEASE indication; answer with release_response(). ``collision``: AR-8."""

    collision: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseConfirmed:
    """A-RELEASE confirmation: the peer sent A-RELEASE-RP."""


@dataclass(frozen=True, slots=True)
class Aborted:
    """A-ABORT or A-P-ABORT indication.

    ``source``/``reason`` as in the A-ABORT PDU (PS3.8 Table 9-26): source 0 service-user,
    2 service-provider. ``local=True``: we detected the peer's protocol error and sent this
    A-ABORT ourselves. ``local=False`` with source 2, reason 0 and a following
    :class:`TransportClosed`: the transport connection was lost (AA-4).
    """

    source: int
    reason: int
    local: bool


@dataclass(frozen=True, slots=True)
class TransportShouldClose:
    """Flush ``data_to_send()``, then close the transport and call ``transport_closed()``."""


@dataclass(frozen=True, slots=True)
class TransportClosed:
    """The transport connection is closed; the connection is in Sta1."""


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
