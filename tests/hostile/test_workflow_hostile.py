"""Hostile data sets on the workflow services' paths (MPPS N-CREATE / N-SET, Storage
Commitment N-ACTION) sent to a real ``qrscp --mpps --commitment``: each is answered with a
failure status, nothing is stored, and the association (and the server) go on working."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from dicomnet.ae import AE
from tests.cli.conftest import Server, qrscp, servers  # noqa: F401 - the fixtures

MPPS = "1.2.840.10008.3.1.2.3.3"
COMMITMENT = "1.2.840.10008.1.20.1"
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
VERIFICATION = "1.2.840.10008.1.1"


def _explicit(tag: int, vr: bytes, value: bytes) -> bytes:
    group, element = tag >> 16, tag & 0xFFFF
    if vr in (b"OB", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2s2xI", group, element, vr, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


HOSTILE = {
    # a value length that runs past the end of the data set
    "overrun": struct.pack("<HH2sH", 0x0010, 0x0020, b"LO", 200) + b"PID",
    # an undefined-length sequence that is never closed
    "open sequence": struct.pack("<HH2s2xI", 0x0008, 0x1199, b"SQ", 0xFFFFFFFF)
    + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF),
    # an unknown VR
    "bad VR": struct.pack("<HH2sH", 0x0010, 0x0010, b"ZZ", 4) + b"Doe^",
    # a UID element with VR SQ
    "UID as SQ": struct.pack("<HH2s2xI", 0x0008, 0x1195, b"SQ", 0),
    # an odd value length
    "odd length": _explicit(0x0010, b"LO", b"ABC"),
    # not a data set at all
    "garbage": bytes(range(256)) * 4,
}


@pytest.fixture
def assoc(qrscp: Callable[..., Server]):  # type: ignore[no-untyped-def]  # noqa: F811
    arc = qrscp(extra=["--mpps", "--commitment"])
    ae = AE(ae_title="HOSTILE")
    for uid in (MPPS, COMMITMENT, VERIFICATION):
        ae.add_requested_context(uid, "1.2.840.10008.1.2.1")
    a = ae.associate("127.0.0.1", arc.port, ae_title=arc.aet)
    assert a.is_established
    yield a
    if a.is_established:
        a.release()


def _status(result: object) -> int:
    status = result[0] if isinstance(result, tuple) else result
    assert status is not None and "Status" in status, "no response"
    return int(status.Status)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_data_sets_are_refused(assoc, name: str) -> None:  # type: ignore[no-untyped-def]
    raw = HOSTILE[name]
    created = _status(assoc.send_n_create(raw, MPPS, "2.25.1234"))
    assert created not in (0x0000, 0x0001), f"N-CREATE {name}: {created:04X}"
    updated = _status(assoc.send_n_set(raw, MPPS, "2.25.1234"))
    assert updated not in (0x0000, 0x0001), f"N-SET {name}: {updated:04X}"
    action = _status(assoc.send_n_action(raw, 1, COMMITMENT, COMMITMENT_INSTANCE))
    assert action not in (0x0000, 0x0001), f"N-ACTION {name}: {action:04X}"
    # the association and the server are fine
    assert assoc.is_established and int(assoc.send_c_echo().Status) == 0
