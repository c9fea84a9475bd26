"""dicomnet peer for the benchmark, through the library API.

    python dn.py store HOST PORT LISTFILE [--window N]   C-STORE every file, one association
    python dn.py echo HOST PORT N                        N C-ECHOs on one association
    python dn.py echo-assocs HOST PORT N                 N associations of one C-ECHO each

Prints one JSON line: {"seconds": <association + operations + release>}. Files are sent from
their Part 10 bytes (no decoding) — what a dicomnet user gets by passing a path.
"""

from __future__ import annotations

import json
import sys
import time

import pydicom.dataset  # noqa: F401  (start-up: the status Datasets need it; not timed)

from dicomnet import AE
from dicomnet.cli.storescu import read_part10_info

VERIFICATION = "1.2.840.10008.1.1"
TS = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


def store(host: str, port: int, listfile: str, window: int) -> None:
    with open(listfile) as f:
        files = [line.strip() for line in f if line.strip()]
    infos = [read_part10_info(f) for f in files]
    ae = AE(ae_title="DNSCU")
    for uid in sorted({i.sop_class_uid for i in infos if i is not None}):
        ae.add_requested_context(uid, TS)
    kw = {"max_operations_invoked": window} if window > 1 else {}
    t0 = time.perf_counter()
    assoc = ae.associate(host, port, ae_title="ANY-SCP", **kw)
    assert assoc.is_established, assoc.failure_reason or assoc.rejection_text
    failures = 0
    if window > 1:
        for _item, status in assoc.store_many(files):
            failures += int(getattr(status, "Status", 1) != 0)
    else:
        for path in files:
            status = assoc.send_c_store(path)
            failures += int(getattr(status, "Status", 1) != 0)
    assoc.release()
    print(json.dumps({"seconds": time.perf_counter() - t0, "failures": failures}))


def echo(host: str, port: int, n: int, assocs: bool) -> None:
    ae = AE(ae_title="DNSCU")
    ae.add_requested_context(VERIFICATION)
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
    if mode == "store":
        w = int(sys.argv[sys.argv.index("--window") + 1]) if "--window" in sys.argv else 0
        store(sys.argv[2], int(sys.argv[3]), sys.argv[4], w)
    elif mode in ("echo", "echo-assocs"):
        echo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), mode == "echo-assocs")
    else:
        raise SystemExit(__doc__)
