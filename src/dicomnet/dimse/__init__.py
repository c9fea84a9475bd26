"""The DICOM Message Service Element (PS3.7), sans-IO: commands, messages, primitives,
fragmentation/reassembly and the DIMSEServiceProvider.

The package itself offers what the API it implements names ``dimse``: the provider
(:class:`DIMSEServiceProvider`), the message classes (``C_STORE_RQ`` ... ``N_DELETE_RSP``,
:class:`DIMSEMessage`) and the service primitives (``C_STORE`` ... ``N_DELETE``). Every
association imports these anyway, so importing them here costs a client nothing more.
"""

from __future__ import annotations

from dicomnet.dimse import messages as _messages
from dicomnet.dimse import primitives as _primitives
from dicomnet.dimse.messages import *  # noqa: F403 - the message classes, re-exported
from dicomnet.dimse.primitives import *  # noqa: F403 - the service primitives, re-exported
from dicomnet.dimse.provider import DIMSEServiceProvider

__all__ = [*_messages.__all__, *_primitives.__all__, "DIMSEServiceProvider"]
