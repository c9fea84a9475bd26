"""The requestor's connection events, as pynetdicom fires them: EVT_CONN_OPEN when the TCP
connection is up (``event.address``: the peer's (host, port)), EVT_REQUESTED once the
A-ASSOCIATE-RQ is sent, EVT_CONN_CLOSE when the connection is closed -- after a release or an
abort. (pynetdicom's threads fire them in no fixed order; the program compares the sets.) One pynetdicom program runs as written and after
``s/pynetdicom/dicomnet/`` against a real DCMTK ``storescp``; both must print the same.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.compat.side_by_side import run_both

PROGRAM = """
import sys
from pynetdicom import AE, evt

port = int(sys.argv[1])
seen = []

def note(event):
    address = event.address if event.event.name != "EVT_REQUESTED" else None
    seen.append((event.event.name, address))

handlers = [(e, note) for e in (evt.EVT_CONN_OPEN, evt.EVT_REQUESTED, evt.EVT_CONN_CLOSE)]
ae = AE()
ae.add_requested_context("1.2.840.10008.1.1")
for how in ("release", "abort"):
    seen.clear()
    assoc = ae.associate("127.0.0.1", port, evt_handlers=handlers)
    if how == "release":
        assoc.release()
    else:
        assoc.abort()
    print(how, sorted(seen))
"""


@pytest.mark.interop
def test_requestor_connection_events_as_pynetdicom_fires_them(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    theirs, ours, port = run_both(PROGRAM, procs, tmp_path)
    peer = f"('127.0.0.1', {port})"
    events = f"[('EVT_CONN_CLOSE', {peer}), ('EVT_CONN_OPEN', {peer}), ('EVT_REQUESTED', None)]"
    assert theirs == [f"release {events}", f"abort {events}"]
    assert ours == theirs
