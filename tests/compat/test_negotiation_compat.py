"""Negotiation outcomes a pynetdicom program sees, compared with pynetdicom itself.

* Role selection (PS3.7 D.3.3.4) that would leave the requestor neither role: the context
  is rejected (user-rejection, result 1) by our SCP as by pynetdicom's.
* An association whose presentation contexts were all rejected is ended with an A-ABORT by
  the requestor (``is_established`` False, ``is_aborted`` True), for pynetdicom's SCU and ours
  against a real DCMTK ``storescp``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from dicomnet.ae import AE
from dicomnet.presentation import build_role
from tests.compat.side_by_side import run_both

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"


def _serve(ae_class: Any) -> Any:
    ae = ae_class()
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(CT, scu_role=True, scp_role=False)
    return ae.start_server(("127.0.0.1", 0), block=False)


def _ct_result(port: int) -> tuple[bool, int | None]:
    ae = AE()
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT)
    # the requestor offers only the SCP role for CT, which the acceptor does not grant
    assoc = ae.associate("127.0.0.1", port, ext_neg=[build_role(CT, scp_role=True)])
    try:
        ct = [cx for cx in assoc.accepted_contexts + assoc.rejected_contexts
              if cx.abstract_syntax == CT]  # fmt: skip
        return assoc.is_established, ct[0].result
    finally:
        assoc.release()


def test_a_context_without_any_role_is_rejected_as_pynetdicom_rejects_it() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    theirs, ours = _serve(pynetdicom.AE), _serve(AE)
    try:
        assert _ct_result(theirs.server_address[1]) == (True, 1)
        assert _ct_result(ours.server_address[1]) == (True, 1)
    finally:
        theirs.shutdown()
        ours.shutdown()


PROGRAM = """
import sys
from pynetdicom import AE
ae = AE()
ae.add_requested_context("1.2.3.4.5.6.7")  # storescp supports no such abstract syntax
assoc = ae.associate("127.0.0.1", int(sys.argv[1]))
print(assoc.is_established, assoc.is_aborted, [cx.result for cx in assoc.rejected_contexts])
"""


@pytest.mark.interop
def test_no_accepted_context_ends_with_an_abort_as_pynetdicoms(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    theirs, ours, _port = run_both(PROGRAM, procs, tmp_path)
    assert theirs == ["False True [3]"]
    assert ours == theirs
