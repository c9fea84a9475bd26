"""Constants under the module name pynetdicom programs import them from (``from
dicomnet._globals import ALL_TRANSFER_SYNTAXES, DEFAULT_MAX_LENGTH``).

Theory of operation
-------------------
Values only, each defined once elsewhere in dicomnet or a fact of the standard:

* ``DEFAULT_MAX_LENGTH``: 16382, the Maximum Length (PS3.8 D.1) that pynetdicom proposes by
  default and its applications use as their ``--max-pdu`` default; a program passing it gets
  the PDUs it got before. dicomnet's own default is larger
  (:attr:`dicomnet.settings.Settings.maximum_pdu_size`, see docs/migrating-from-pynetdicom.md).
* ``APPLICATION_CONTEXT_NAME``: the DICOM Application Context Name (PS3.7 A.2.1).
* ``DEFAULT_TRANSFER_SYNTAXES`` / ``ALL_TRANSFER_SYNTAXES``: :mod:`dicomnet.presentation`'s.
* ``MODE_*``: the words for an association's side; ``STATUS_*``: :mod:`dicomnet.status`'s
  status categories.
"""

from __future__ import annotations

from pydicom.uid import UID

from dicomnet.presentation import ALL_TRANSFER_SYNTAXES, DEFAULT_TRANSFER_SYNTAXES
from dicomnet.status import (
    STATUS_CANCEL,
    STATUS_FAILURE,
    STATUS_PENDING,
    STATUS_SUCCESS,
    STATUS_UNKNOWN,
    STATUS_WARNING,
)
from dicomnet.uid import APPLICATION_CONTEXT_NAME

__all__ = [
    "ALL_TRANSFER_SYNTAXES",
    "APPLICATION_CONTEXT_NAME",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_TRANSFER_SYNTAXES",
    "MODE_ACCEPTOR",
    "MODE_REQUESTOR",
    "STATUS_CANCEL",
    "STATUS_FAILURE",
    "STATUS_PENDING",
    "STATUS_SUCCESS",
    "STATUS_UNKNOWN",
    "STATUS_WARNING",
    "OptionalUIDType",
]

DEFAULT_MAX_LENGTH: int = 16382

MODE_ACCEPTOR: str = "acceptor"
MODE_REQUESTOR: str = "requestor"


OptionalUIDType = str | bytes | UID | None
