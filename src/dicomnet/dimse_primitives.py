"""``dicomnet.dimse_primitives``: the DIMSE service primitives (PS3.7 sections 9.1 and 10.1)
under the module name pynetdicom programs import them from; they are those of
:mod:`dicomnet.dimse.primitives`."""

from __future__ import annotations

from dicomnet.dimse.primitives import (
    C_CANCEL,
    C_ECHO,
    C_FIND,
    C_GET,
    C_MOVE,
    C_STORE,
    N_ACTION,
    N_CREATE,
    N_DELETE,
    N_EVENT_REPORT,
    N_GET,
    N_SET,
    DIMSEPrimitive,
)

__all__ = [
    "C_CANCEL",
    "C_ECHO",
    "C_FIND",
    "C_GET",
    "C_MOVE",
    "C_STORE",
    "N_ACTION",
    "N_CREATE",
    "N_DELETE",
    "N_EVENT_REPORT",
    "N_GET",
    "N_SET",
    "DIMSEPrimitive",
]
