"""Small behaviours a pynetdicom program sees, each checked against pynetdicom itself:
AE title validation, ``Status.add``, and a library that stays quiet on stderr when the
program configured no logging."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from dicomnet.ae import AE
from dicomnet.status import Status


def _title(ae_class: Any, value: object) -> str:
    try:
        ae = ae_class()
        ae.ae_title = value
        return repr(ae.ae_title)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__


@pytest.mark.parametrize("value", ["NL\n", "TAB\t", None, 123, "A" * 17, "", "\\X", "OK"])
def test_ae_title_validation_as_pynetdicoms(value: object) -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    assert _title(AE, value) == _title(pynetdicom.AE, value)


def test_status_add() -> None:
    Status.add("MY_UNABLE_TO_PROCESS", 0xC0DE)
    assert Status.MY_UNABLE_TO_PROCESS == 0xC0DE  # type: ignore[attr-defined]
    assert Status.SUCCESS == 0 and Status.PENDING == 0xFF00


QUIET = """
import time
from dicomnet import AE, evt
scp = AE("SCP")
scp.add_supported_context("1.2.840.10008.1.1")
server = scp.start_server(("127.0.0.1", 0), block=False,
                          evt_handlers=[(evt.EVT_C_ECHO, lambda e: time.sleep(1.5) or 0)])
ae = AE()
ae.dimse_timeout = 0.3
ae.add_requested_context("1.2.840.10008.1.1")
assoc = ae.associate("127.0.0.1", server.server_address[1])
status = assoc.send_c_echo()  # no answer in time: a WARNING record, then an abort
print("established", assoc.is_established, "status", len(status))
server.shutdown()
"""


def test_nothing_on_stderr_without_logging_configured() -> None:
    out = subprocess.run([sys.executable, "-c", QUIET], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.stdout.strip() == "established False status 0"
    assert out.stderr == ""
