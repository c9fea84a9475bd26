"""Modality Performed Procedure Step SCP (PS3.4 Annex F.7): N-CREATE and N-SET of performed
procedure steps, kept durably in SQLite, queryable, optionally forwarded to other SCPs.

Theory of operation
-------------------
A modality reports the work it does as a *performed procedure step* (PS3.4 F.1): it creates
the step with N-CREATE when it starts (Performed Procedure Step Status "IN PROGRESS"), updates
it with N-SET while it works, and ends it with an N-SET to "COMPLETED" or "DISCONTINUED"
(PS3.4 Table F.1-4). A step in one of those two final states can no longer be changed.
:class:`MPPSStore` keeps the steps in ``<storage>/workflow.sqlite`` (or the PostgreSQL database
archive nodes share), each request checked and committed to disk before it is answered; :func:`mpps_handlers` serves it to an AE.

The modules, from the bottom up (each imports only those before it):

* :mod:`~dicomnet.archive.mpps.rules`: the SOP class, the states, the attributes of PS3.4
  Table F.7.2-1 and the checks of a request, each refusal an :class:`MPPSError` with its
  status (the table of conditions and statuses is there);
* :mod:`~dicomnet.archive.mpps.attributes`: the stored form of a step's attributes (DICOM
  JSON Model, Unicode, Specific Character Set);
* :mod:`~dicomnet.archive.mpps.forward`: the forwarding outbox and its sender thread;
* :mod:`~dicomnet.archive.mpps.store`: :class:`MPPSStore`, the database, N-CREATE, N-SET,
  the listings (:class:`StepRecord`);
* :mod:`~dicomnet.archive.mpps.handlers`: the EVT_N_CREATE and EVT_N_SET handlers.

The logger of every module is ``dicomnet.archive.mpps``.
"""

from dicomnet.archive.mpps.handlers import MPPSCreateHandler, MPPSSetHandler, mpps_handlers
from dicomnet.archive.mpps.rules import (
    COMPLETED,
    DISCONTINUED,
    ERROR_ID_NO_LONGER_UPDATABLE,
    ERROR_NO_LONGER_UPDATABLE,
    FINAL_STATES,
    IN_PROGRESS,
    MPPS_SOP_CLASS,
    MPPSError,
)
from dicomnet.archive.mpps.store import MPPSStore, StepRecord
from dicomnet.archive.workflow_db import WORKFLOW_DB

# isort: split
# the other public names of the module this package was: importable, not in __all__
from dicomnet.archive.mpps.forward import Destination as Destination
from dicomnet.archive.mpps.store import LOG as LOG

__all__ = [
    "COMPLETED",
    "DISCONTINUED",
    "ERROR_ID_NO_LONGER_UPDATABLE",
    "ERROR_NO_LONGER_UPDATABLE",
    "FINAL_STATES",
    "IN_PROGRESS",
    "MPPS_SOP_CLASS",
    "WORKFLOW_DB",
    "MPPSCreateHandler",
    "MPPSError",
    "MPPSSetHandler",
    "MPPSStore",
    "StepRecord",
    "mpps_handlers",
]
