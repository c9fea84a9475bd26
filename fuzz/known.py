"""Known, reported bugs that the fuzz targets tolerate until their owner fixes them.

Theory of operation
-------------------
A crash the fuzzers found in code outside ``fuzz/`` and ``tests/`` becomes a strict-xfail test
in ``tests/fuzz/test_regressions.py`` and an entry in :data:`KNOWN`. While an entry exists, the
target checks named by it return quietly instead of raising, so the CI short runs keep
looking for *new* problems rather than re-finding the reported one every second. The
regression tests run the targets with ``strict`` on (or ``DICOMNET_FUZZ_STRICT=1`` for a
fuzzing run), which ignores :data:`KNOWN`; once the owner fixes the bug the xfail turns into
a strict XPASS failure, and both the xfail marker and the entry here are removed.
"""

from __future__ import annotations

import os

__all__ = ["KNOWN", "STRICT", "tolerated"]

#: check name -> short description of the reported bug (see tests/fuzz/test_regressions.py)
KNOWN: dict[str, str] = {}

#: Ignore KNOWN (regression tests, or a run that wants to see every failure).
STRICT = os.environ.get("DICOMNET_FUZZ_STRICT") == "1"


def tolerated(check: str) -> bool:
    """True if a failure of ``check`` is a known, reported bug and we are not strict."""
    return not STRICT and check in KNOWN
