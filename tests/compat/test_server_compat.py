"""``AE.start_server`` as pynetdicom programs use it: a blocking server run in a thread is
the AE's while it serves (its associations in ``ae.active_associations``, stopped by
``ae.shutdown()`` from another thread, its port freed), and an AE without supported contexts
refuses to serve, as pynetdicom's does (ValueError)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from dicomnet.ae import AE
from tests.conftest import free_port

VERIFICATION = "1.2.840.10008.1.1"


def test_blocking_server_in_a_thread_is_the_aes() -> None:
    ae = AE("SCP")
    ae.add_supported_context(VERIFICATION)
    port = free_port()
    thread = threading.Thread(target=ae.start_server, args=(("127.0.0.1", port),), daemon=True)
    thread.start()
    scu = AE("SCU")
    scu.add_requested_context(VERIFICATION)
    deadline = time.monotonic() + 10
    while True:  # the server thread needs a moment to listen
        assoc = scu.associate("127.0.0.1", port)
        if assoc.is_established or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0
    deadline = time.monotonic() + 5
    while not ae.active_associations and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(ae.active_associations) == 1
    ae.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    assert ae.active_associations == []
    assert len(assoc.send_c_echo()) == 0  # aborted by the shutdown: no status
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))


def test_no_supported_contexts_is_refused_as_pynetdicom_refuses_it() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    for ae_class in (pynetdicom.AE, AE):
        with pytest.raises(ValueError, match="No supported Presentation Contexts"):
            ae_class().start_server(("127.0.0.1", 0), block=False)
