"""Storage Commitment Push Model (PS3.4 Annex J): the SCP over the archive
(:class:`CommitmentService`) and the codec an SCU needs (:func:`encode_request`,
:class:`CommitmentReport`).

Theory of operation
-------------------
An SCU's N-ACTION-RQ is stored before it is answered, its references are checked against the
archive by workers, and the result goes back as an N-EVENT-REPORT-RQ, on the request's
association or a new one, retried until delivered. The modules, from the bottom up (each
imports only those before it):

* :mod:`~dicomnet.archive.commitment.codec`: the wire format -- the streaming reader of
  requests and reports (element headers walked, never a Dataset), and the small encoder of
  both, spooled to a file when large;
* :mod:`~dicomnet.archive.commitment.check`: the archive as the check sees it (what is
  stored, :class:`InstanceLookup`), the per-instance verdict and the Failure Reasons;
* :mod:`~dicomnet.archive.commitment.store`: the commitments and their references in the
  workflow database (``workflow.sqlite`` or the nodes' PostgreSQL database), ownership of
  pending work across processes, nodes and restarts;
* :mod:`~dicomnet.archive.commitment.event_report`: the N-EVENT-REPORT sent as the SCP
  (:func:`send_event_report`), and waiting for our N-ACTION-RSP on the request's association;
* :mod:`~dicomnet.archive.commitment.service`: :class:`CommitmentService` -- the N-ACTION
  handler, delivery on the same association or a new one, the retry scheduler, resume.
"""

from dicomnet.archive.commitment.check import (
    FailureReason,
    InstanceLookup,
    StoredInstance,
    file_problem,
    instance_lookup,
)
from dicomnet.archive.commitment.codec import (
    SOP_CLASS,
    WELL_KNOWN_INSTANCE,
    CommitmentReport,
    CommitmentRequest,
    MalformedRequest,
    ReportItem,
    encode_request,
    new_transaction_uid,
)
from dicomnet.archive.commitment.event_report import send_event_report
from dicomnet.archive.commitment.service import CommitmentService

# isort: split
# the other public names of the module this package was: importable, not in __all__
from dicomnet.archive.commitment.codec import EVENT_FAILURES as EVENT_FAILURES
from dicomnet.archive.commitment.codec import EVENT_SUCCESS as EVENT_SUCCESS
from dicomnet.archive.commitment.codec import FAILED_SOP_SEQUENCE as FAILED_SOP_SEQUENCE
from dicomnet.archive.commitment.codec import FAILURE_REASON as FAILURE_REASON
from dicomnet.archive.commitment.codec import REFERENCED_SOP_CLASS_UID as REFERENCED_SOP_CLASS_UID
from dicomnet.archive.commitment.codec import (
    REFERENCED_SOP_INSTANCE_UID as REFERENCED_SOP_INSTANCE_UID,
)
from dicomnet.archive.commitment.codec import REFERENCED_SOP_SEQUENCE as REFERENCED_SOP_SEQUENCE
from dicomnet.archive.commitment.codec import REPORT_SYNTAXES as REPORT_SYNTAXES
from dicomnet.archive.commitment.codec import REQUEST_COMMITMENT as REQUEST_COMMITMENT
from dicomnet.archive.commitment.codec import RETRIEVE_AE_TITLE as RETRIEVE_AE_TITLE
from dicomnet.archive.commitment.codec import TRANSACTION_UID as TRANSACTION_UID
from dicomnet.archive.commitment.service import DEFAULT_CONNECT_TIMEOUT as DEFAULT_CONNECT_TIMEOUT
from dicomnet.archive.commitment.service import LOG as LOG

__all__ = [
    "SOP_CLASS",
    "WELL_KNOWN_INSTANCE",
    "CommitmentReport",
    "CommitmentRequest",
    "CommitmentService",
    "FailureReason",
    "InstanceLookup",
    "MalformedRequest",
    "ReportItem",
    "StoredInstance",
    "encode_request",
    "file_problem",
    "instance_lookup",
    "new_transaction_uid",
    "send_event_report",
]
