"""The DICOM Message Service Element (PS3.7), sans-IO: commands, messages, primitives,
fragmentation/reassembly and the DIMSEServiceProvider.

The package itself offers what the API it implements names ``dimse``: the provider
(:class:`DIMSEServiceProvider`), the message classes (``C_STORE_RQ`` ... ``N_DELETE_RSP``,
:class:`DIMSEMessage`) and the service primitives (``C_STORE`` ... ``N_DELETE``). Every
association imports these anyway, so importing them here costs a client nothing more.
"""

from __future__ import annotations

from dicomnet.dimse.messages import *  # noqa: F403 - the message classes, re-exported
from dicomnet.dimse.messages import __all__ as _messages_all
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
from dicomnet.dimse.provider import DIMSEServiceProvider

__all__ = [
    *_messages_all,
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
    "DIMSEServiceProvider",
]
