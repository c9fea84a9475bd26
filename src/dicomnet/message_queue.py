"""The message queue of an association's DIMSE provider: a real ``queue.Queue``.

Theory of operation
-------------------
PS3.7's service provider hands received messages to the service user in order; the DIMSE
provider (:mod:`dicomnet.dimse.provider`) keeps them in ``msg_queue``, which the API it
implements describes as a ``queue.Queue`` of ``(context ID, primitive)``. The provider is
sans-IO and single-threaded, so it appends to the queue's deque directly and takes no lock per
message; :meth:`MessageQueue.wake`, called after each append, notifies a thread blocked in
``msg_queue.get()`` -- and costs one integer test when none is, which is always the case for
dicomnet's own code (it waits through ``get_msg(block=True)``, which drives the connection).

Everything else is ``queue.Queue``'s own: ``put``/``get`` (blocking, with timeouts),
``get_nowait``, ``empty``, ``qsize`` and ``queue``. ``task_done``/``join`` count only what was
``put`` by an application, not what the provider appended.
"""

from __future__ import annotations

import queue
from collections import deque

from dicomnet.dimse.provider import QueueItem

__all__ = ["MessageQueue"]


class MessageQueue(queue.Queue[QueueItem]):
    """``queue.Queue`` of ``(context_id, primitive)`` pairs for a DIMSE provider."""

    def __init__(self, items: deque[QueueItem] | None = None) -> None:
        super().__init__()
        if items is not None:
            self.queue = items  # the provider's deque of received messages
        self.waiting = 0  # threads blocked in get()

    def get(self, block: bool = True, timeout: float | None = None) -> QueueItem:
        if not block:
            return super().get(False)
        with self.mutex:
            self.waiting += 1
        try:
            return super().get(True, timeout)
        finally:
            with self.mutex:
                self.waiting -= 1

    def wake(self) -> None:
        """The provider appended a message: wake a thread blocked in :meth:`get`, if any."""
        if self.waiting:
            with self.not_empty:
                self.not_empty.notify()
