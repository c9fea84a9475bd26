"""Exceptions raised by dicomnet.

Theory of operation
-------------------
Everything dicomnet raises derives from :class:`DicomNetError`. Protocol errors (PS3.8 section 9,
PS3.7 section 9) say *who* broke the rules: ``local=False`` means the peer sent something the
standard forbids; ``local=True`` means our own caller asked for something illegal. A remote
protocol error carries the A-ABORT source/reason (PS3.8 section 9.3.8) or, during association
establishment, the A-ASSOCIATE-RJ result/source/reason (PS3.8 section 9.3.4) that it implies, so
the layer that catches it can answer the peer without re-deriving the reaction.
"""

from __future__ import annotations

__all__ = [
    "AssociationNotEstablishedError",
    "AssociationRejectedError",
    "DicomNetError",
    "DimseError",
    "EncodeError",
    "NegotiationError",
    "NoPresentationContextError",
    "NoRequestedContextsError",
    "PDUDecodeError",
    "ProtocolError",
    "TimeoutError_",
]


class DicomNetError(Exception):
    """Root of every exception dicomnet raises."""


class ProtocolError(DicomNetError):
    """A violation of the DICOM network protocol.

    ``abort_source``/``abort_reason`` give the A-ABORT that answers it (source 2 = service
    provider; reasons per PS3.8 Table 9-26: 0 not specified, 1 unrecognized PDU, 2 unexpected PDU,
    4 unrecognized PDU parameter, 5 unexpected PDU parameter, 6 invalid PDU parameter value).
    """

    def __init__(
        self,
        message: str,
        *,
        local: bool = False,
        abort_source: int = 2,
        abort_reason: int = 0,
    ) -> None:
        super().__init__(message)
        self.local = local
        self.abort_source = abort_source
        self.abort_reason = abort_reason


class PDUDecodeError(ProtocolError):
    """Bytes received from the peer that do not form a valid PDU or item (A-ABORT 2/x)."""


class NegotiationError(DicomNetError):
    """Association negotiation failed; carries the A-ASSOCIATE-RJ result/source/reason."""

    def __init__(self, message: str, *, result: int, source: int, reason: int) -> None:
        super().__init__(message)
        self.result = result
        self.source = source
        self.reason = reason


class AssociationRejectedError(NegotiationError):
    """The peer answered our A-ASSOCIATE-RQ with an A-ASSOCIATE-RJ."""


class DimseError(DicomNetError):
    """A DIMSE message or primitive is invalid (encoding, decoding or parameter validation)."""


class EncodeError(DimseError, ValueError):
    """A data set that cannot be encoded in the transfer syntax it is to be sent in (a value
    pydicom cannot write, an ambiguous VR it cannot resolve). A ``ValueError`` too, as
    pynetdicom raises for a data set given to ``send_*`` that it cannot encode."""


class TimeoutError_(DicomNetError, TimeoutError):
    """A DIMSE, ACSE (ARTIM) or network timeout expired."""


class AssociationNotEstablishedError(DicomNetError, RuntimeError):
    """An operation was invoked on an association that is not (or no longer) established."""


class NoPresentationContextError(DicomNetError, ValueError):
    """No accepted presentation context fits the requested operation (SOP class, transfer
    syntax and role). A ``ValueError`` too, as pynetdicom users expect.

    ``role_refused`` is True when contexts for the SOP class were accepted, but none with the
    role the operation needs (role selection, PS3.7 D.3.3.4): e.g. a C-GET requestor that
    proposed a storage class without the SCP role cannot receive C-STOREs of it.
    """

    def __init__(self, message: str, *, role_refused: bool = False) -> None:
        super().__init__(message)
        self.role_refused = role_refused


class NoRequestedContextsError(DicomNetError, RuntimeError, ValueError):
    """An association was requested with no presentation context to propose (a
    RuntimeError as pynetdicom raises, and a ValueError as dicomnet raised before)."""
