"""``python -m tests.hostile.capped_server TOOL ARGS...``: a dicomnet server with a small DIMSE
message cap.

Theory of operation
-------------------
The CLI has no flag for the server's cap on one received DIMSE message (``AE.max_message_size``,
checked by the reassembler as fragments arrive, PS3.7 Annex E / PS3.8 9.3.5), and the library
default is 4 GiB, too large to exceed in a test. This wrapper sets the cap from the environment
variable ``DICOMNET_TEST_MAX_MESSAGE`` on every AE the tool creates, then runs the ordinary CLI
entry point: the process is otherwise exactly ``dicomnet TOOL ARGS...``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from dicomnet import ae as _ae
from dicomnet.cli.main import main

_CAP = int(os.environ["DICOMNET_TEST_MAX_MESSAGE"])
_original_init = _ae.AE.__init__


def _capped_init(self: _ae.AE, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self.max_message_size = _CAP


_ae.AE.__init__ = _capped_init  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
