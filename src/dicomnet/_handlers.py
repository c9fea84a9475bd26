"""A module under the name pynetdicom programs reach for to quiet its per-message log output.

Theory of operation
-------------------
pynetdicom logs each DIMSE message it sends or receives through private functions of its
``_handlers`` module, and programs that find that too verbose replace them (pynetdicom's own
Q/R SCP application assigns ``_handlers._send_c_find_rsp = ...`` and four more at import).
dicomnet's logging has no per-message functions to replace -- at ``-d`` it logs negotiation and
failures, and a program that wants each message binds ``evt.EVT_DIMSE_RECV``/``SENT`` -- so
such a program's assignments land here and change nothing, which is what they were for.
"""

from __future__ import annotations

__all__: list[str] = []
