"""``dicomnet.dimse_messages``: the DIMSE message classes (PS3.7 sections 9.3 and 10.3) under
the module name pynetdicom programs import them from; they are those of
:mod:`dicomnet.dimse.messages`."""

from __future__ import annotations

from dicomnet.dimse.messages import *  # noqa: F403 - the same names, re-exported
from dicomnet.dimse.messages import __all__ as _messages_all
from dicomnet.ul.primitives import P_DATA

__all__ = [*_messages_all, "P_DATA"]
