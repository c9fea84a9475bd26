"""``dicomnet.evt``: the events module under the name pynetdicom programs import
(``from dicomnet import evt``; ``evt.EVT_C_STORE``, ``evt.Event``). It *is*
:mod:`dicomnet.events`: importing this module returns that one, so both names give the same
objects."""

from __future__ import annotations

import sys

from dicomnet import events

sys.modules[__name__] = events
