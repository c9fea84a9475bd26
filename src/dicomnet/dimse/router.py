"""Message ID routing: which outstanding request a received response answers.

Theory of operation
-------------------
Every DIMSE request carries a Message ID, unique among the requests its sender has outstanding
on the association (PS3.7 section 9.1.1.1.1: 1..65535); every response carries the Message ID
Being Responded To (PS3.7 section 9.1.1.1.2). With an asynchronous operations window (PS3.7
D.3.3.3) several requests are outstanding at once, and responses arrive in any order; a
C-FIND/C-GET/C-MOVE gets any number of Pending responses (FF00/FF01, PS3.7 Annex C.2) before
its final one.

:class:`MessageRouter` is that bookkeeping and nothing else: it hands out free Message IDs,
remembers one *handle* per outstanding request (whatever the caller waits with: a queue of
responses for a blocking association, an ``asyncio.Queue`` or a future for the event loop),
and tells for each response which handle it belongs to and whether it was the final one (the
handle is then forgotten). It does no I/O and no locking: the blocking association calls it
under its own lock, the asyncio association and the server on the loop thread.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Generic, TypeVar

from dicomnet.dimse.primitives import DIMSEPrimitive
from dicomnet.dimse.status import PENDING_STATUSES
from dicomnet.errors import DicomNetError

__all__ = ["MAX_MESSAGE_ID", "MessageRouter", "is_final"]

MAX_MESSAGE_ID = 0xFFFF
"""Message IDs are US values (PS3.7 Annex E); 0 is not used."""

H = TypeVar("H")


def is_final(rsp: DIMSEPrimitive) -> bool:
    """True unless ``rsp`` is a Pending response (more follow; PS3.7 Annex C.2)."""
    return rsp.Status not in PENDING_STATUSES


class MessageRouter(Generic[H]):
    """Outstanding requests by Message ID (see the module docstring)."""

    __slots__ = ("_last", "outstanding")

    def __init__(self) -> None:
        self._last = 0
        #: Message ID -> handle of each request still waiting for its final response.
        self.outstanding: dict[int, H] = {}

    def __len__(self) -> int:
        return len(self.outstanding)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self.outstanding

    def new_id(self, taken: Container[int] = ()) -> int:
        """A Message ID not used by an outstanding request (nor in ``taken``), counting up
        from the last one given out (1..65535, then 1 again)."""
        outstanding = self.outstanding
        last = self._last
        for _ in range(MAX_MESSAGE_ID):
            last = last % MAX_MESSAGE_ID + 1
            if last not in outstanding and last not in taken:
                self._last = last
                return last
        raise DicomNetError("no free Message ID: 65535 requests are outstanding")

    def open(self, msg_id: int, handle: H) -> None:
        """Remember ``handle`` for the request ``msg_id`` (ValueError if it is outstanding)."""
        if msg_id in self.outstanding:
            raise ValueError(f"Message ID {msg_id} is already outstanding")
        self.outstanding[msg_id] = handle

    def route(self, rsp: DIMSEPrimitive) -> tuple[H, bool] | None:
        """``(handle, final)`` of the request ``rsp`` answers; a final response closes it.
        None when no outstanding request has that Message ID (the caller drops it)."""
        mid = rsp.MessageIDBeingRespondedTo
        if mid is None:
            return None
        handle = self.outstanding.get(mid)
        if handle is None:
            return None
        final = rsp.Status not in PENDING_STATUSES
        if final:
            del self.outstanding[mid]
        return handle, final

    def expects(self, rsp: DIMSEPrimitive) -> bool:
        """True when ``rsp`` answers an outstanding request of this router."""
        return rsp.MessageIDBeingRespondedTo in self.outstanding

    def close(self, msg_id: int) -> H | None:
        """Forget the request ``msg_id`` (answered or given up); its handle, or None."""
        return self.outstanding.pop(msg_id, None)

    def drain(self) -> list[H]:
        """Forget every outstanding request (the association is gone); their handles."""
        handles = list(self.outstanding.values())
        self.outstanding.clear()
        return handles
