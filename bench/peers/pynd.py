"""pynetdicom peer for the benchmark: its library API (not its logging-heavy apps).

    python pynd.py scp PORT OUTDIR          storage SCP writing each dataset as received
    python pynd.py store HOST PORT LISTFILE C-STORE every file named in LISTFILE, one association
    python pynd.py echo HOST PORT N         N C-ECHOs on one association
    python pynd.py echo-assocs HOST PORT N  N associations of one C-ECHO each

Client modes print one JSON line: {"seconds": <association + operations + release>}.
"""

from __future__ import annotations

import json
import os
import sys
import time

from pydicom import dcmread
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification


def scp(port: int, outdir: str) -> None:
    def on_store(event):  # type: ignore[no-untyped-def]
        path = os.path.join(outdir, event.request.AffectedSOPInstanceUID + ".dcm")
        with open(path, "wb") as f:
            f.write(event.encoded_dataset(include_meta=True))
        return 0x0000

    ae = AE(ae_title="PYND")
    ae.maximum_pdu_size = 0
    ae.supported_contexts = StoragePresentationContexts
    ae.add_supported_context(Verification)
    ae.maximum_associations = 64
    ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])


def store(host: str, port: int, listfile: str) -> None:
    with open(listfile) as f:
        files = [line.strip() for line in f if line.strip()]
    classes = sorted({str(dcmread(files[0], stop_before_pixels=True).SOPClassUID)})
    ae = AE(ae_title="PYNDSCU")
    for uid in classes:
        ae.add_requested_context(uid, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    t0 = time.perf_counter()
    assoc = ae.associate(host, port, ae_title="ANY-SCP")
    assert assoc.is_established, "association failed"
    failures = 0
    for path in files:
        status = assoc.send_c_store(dcmread(path))
        if not status or status.Status != 0:
            failures += 1
    assoc.release()
    print(json.dumps({"seconds": time.perf_counter() - t0, "failures": failures}))


def echo(host: str, port: int, n: int, assocs: bool) -> None:
    ae = AE(ae_title="PYNDSCU")
    ae.add_requested_context(Verification)
    t0 = time.perf_counter()
    if assocs:
        for _ in range(n):
            assoc = ae.associate(host, port)
            assoc.send_c_echo()
            assoc.release()
    else:
        assoc = ae.associate(host, port)
        for _ in range(n):
            assoc.send_c_echo()
        assoc.release()
    print(json.dumps({"seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "scp":
        scp(int(sys.argv[2]), sys.argv[3])
    elif mode == "store":
        store(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode in ("echo", "echo-assocs"):
        echo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), mode == "echo-assocs")
    else:
        raise SystemExit(__doc__)
