"""``msg_queue`` is a ``queue.Queue`` (the founding document's type) without a lock on the
provider's path: a thread blocked in ``msg_queue.get()`` is woken by a received message, and an
association's provider carries such a queue."""

from __future__ import annotations

import queue
import threading

from dicomnet.ae import AE
from dicomnet.dimse.primitives import C_ECHO
from dicomnet.dimse.provider import DIMSEServiceProvider
from dicomnet.message_queue import MessageQueue
from tests.dimse.test_provider import FakeAssoc, echo_rq, pdus_for


def test_a_blocked_get_wakes_when_a_message_is_received() -> None:
    entered = threading.Event()

    class Probe(MessageQueue):
        def wake(self) -> None:
            # the consumer counted itself as waiting before this message arrived
            assert self.waiting == 1
            super().wake()

        def _qsize(self) -> int:  # called by Queue.get under the lock, before it waits
            entered.set()
            return super()._qsize()

    p = DIMSEServiceProvider(FakeAssoc(), msg_queue=Probe)  # type: ignore[arg-type]
    q = p.msg_queue
    assert isinstance(q, Probe)
    got: list[object] = []

    def consumer() -> None:
        got.append(q.get(timeout=10))

    t = threading.Thread(target=consumer)
    t.start()
    assert entered.wait(10)
    for pdu in pdus_for(1, echo_rq(4)):
        p.receive_pdata(pdu)
    t.join(10)
    assert not t.is_alive()
    [(context_id, prim)] = got  # type: ignore[misc]
    assert context_id == 1 and isinstance(prim, C_ECHO) and prim.MessageID == 4
    assert q.waiting == 0 and q.empty()


def test_queue_interface() -> None:
    p = DIMSEServiceProvider(FakeAssoc(), msg_queue=MessageQueue)  # type: ignore[arg-type]
    for pdu in pdus_for(1, echo_rq(1)):
        p.receive_pdata(pdu)  # before anyone asked for msg_queue: kept in the deque
    q = p.msg_queue  # made now, around the same deque
    assert isinstance(q, queue.Queue) and isinstance(q, MessageQueue)
    assert q.qsize() == 1 and p.msg_queue is q
    for pdu in pdus_for(1, echo_rq(2)):
        p.receive_pdata(pdu)
    assert q.qsize() == 2 and not q.empty() and len(q.queue) == 2
    assert q.get_nowait()[1].MessageID == 1  # type: ignore[attr-defined]
    assert p.get_msg()[1].MessageID == 2  # type: ignore[union-attr]
    try:
        q.get_nowait()
    except queue.Empty:
        pass
    else:
        raise AssertionError("an empty queue.Queue raises queue.Empty")


def test_an_associations_provider_has_a_queue_queue() -> None:
    from dicomnet.association import Association

    assoc = Association(AE(), "requestor")
    assert isinstance(assoc.dimse.msg_queue, queue.Queue)
    assert isinstance(assoc.dimse, DIMSEServiceProvider)
