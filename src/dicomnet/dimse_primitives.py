"""``dicomnet.dimse_primitives``: the DIMSE service primitives (PS3.7 sections 9.1 and 10.1)
under the module name pynetdicom programs import them from; they are those of
:mod:`dicomnet.dimse.primitives`, re-exported by its ``__all__``."""

from __future__ import annotations

from dicomnet.dimse import primitives as _primitives
from dicomnet.dimse.primitives import *  # noqa: F403 - the same names, re-exported

__all__ = list(_primitives.__all__)
