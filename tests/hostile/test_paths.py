"""Path traversal through UIDs (the CVE-2022-2119/2120 family): never a path, always a failure.

Theory of operation
-------------------
A store SCP that builds file names from SOP Instance / Study / Series Instance UIDs turns a
hostile UID into a write anywhere on disk. A UID is digits and dots, at most 64 characters
(PS3.5 section 9.1), so every value below is invalid and must be refused with a failure status
(PS3.4 Table B.2-1) before any path exists. The test snapshots every file under the test's
temporary tree (the server's storage folder's parents) and a few absolute targets before and
after, and asserts that nothing appeared outside the storage folder and that no ``.dcm`` file
appeared at all; a valid store on the same association is the positive control.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile.conftest import ServerFactory
from tests.hostile.harness import (
    Peer,
    ServerProcess,
    assert_still_serving,
    dcm_files,
    files_under,
    is_failure,
    pixel_element,
    sc_dataset,
    uid,
)

pytestmark = pytest.mark.interop

HOSTILE_UIDS = [
    "../../../../../../tmp/dicomnet_evil_rel",
    "1.2.3/../../dicomnet_evil",
    "..",
    "../",
    "1.2.3/4",
    "..\\..\\dicomnet_evil",
    "1.2.3\\4",
    "1.2.3\x00/../../dicomnet_evil",
    "1.2\x003",  # NUL inside (not only trailing padding)
    "1.2.3\x00",  # trailing NUL is UI padding: valid, must be stored as 1.2.3
    "/tmp/dicomnet_evil_abs",
    "/etc/dicomnet_evil",
    "C:\\dicomnet_evil",
    "1." + "2" * 70,  # syntactically digits and dots, 72 characters
    "1.2.3." + "4" * 59,  # 65 characters
    "",  # empty
    "1.2.3 ",  # trailing space is padding on the wire; inner would be invalid
    "1..2",
]
ABSOLUTE_TARGETS = [
    Path("/tmp/dicomnet_evil_abs"),
    Path("/tmp/dicomnet_evil_rel"),
    Path("/etc/dicomnet_evil"),
]
# trailing padding is legitimately stripped, so "1.2.3 " and "1.2.3\x00" as a whole are valid
_PADDING_ONLY = {"1.2.3 ", "1.2.3\x00"}


def _absolute_state() -> dict[Path, bool]:
    return {p: p.exists() or any(p.parent.glob(p.name + "*")) for p in ABSOLUTE_TARGETS}


def _check_nothing_escaped(
    server: ServerProcess, root: Path, before: set[Path], abs_before: dict[Path, bool]
) -> None:
    storage = server.workdir / "storage"
    new = files_under(root) - before
    outside = [p for p in new if storage not in p.parents and p != server.log]
    assert not outside, f"files created outside the storage folder: {outside}"
    assert not [p for p in new if "evil" in str(p)], new
    assert _absolute_state() == abs_before
    assert not list(root.parent.glob("*dicomnet_evil*"))


def _store(peer: Peer, sop: str, study: str, series: str, data_sop: str | None = None) -> int:
    data = sc_dataset(data_sop if data_sop is not None else sop, study, series)
    return peer.store(sop, data + pixel_element(2) + b"\0\0")


@pytest.mark.parametrize("tool", ["storescp", "qrscp"])
def test_hostile_sop_instance_uid(server_factory: ServerFactory, tmp_path: Path, tool: str) -> None:
    server = server_factory(tool)
    before, abs_before = files_under(tmp_path), _absolute_state()
    study, series = uid(30, 1), uid(30, 1, 1)
    refused: list[str] = []
    with Peer(server.port) as peer:
        peer.associate()
        for n, bad in enumerate(HOSTILE_UIDS):
            if bad in _PADDING_ONLY:
                continue
            status = _store(peer, bad, study, series)
            assert is_failure(status), f"{bad!r} got status {status:#06x}"
            refused.append(bad)
            # also when only the data set's (0008,0018) is hostile and the command's is valid
            status = _store(peer, uid(30, 1, 1, 500 + n), study, series, data_sop=bad)
            if tool == "qrscp":  # the archive reads the data set; storescp keeps it opaque
                assert is_failure(status), f"data set SOP UID {bad!r}: {status:#06x}"
        good = uid(30, 1, 1, 1)
        assert _store(peer, good, study, series) == 0x0000  # positive control
        peer.release()
    assert len(refused) == len(HOSTILE_UIDS) - len(_PADDING_ONLY)
    _check_nothing_escaped(server, tmp_path, before, abs_before)
    stored = dcm_files(server.workdir / "storage")
    names = {p.name for p in stored}
    assert f"{good}.dcm" in names
    for p in stored:
        assert p.resolve().is_relative_to((server.workdir / "storage").resolve())
    assert_still_serving(server)


@pytest.mark.parametrize("field", ["study", "series"])
def test_hostile_study_and_series_uids(
    server_factory: ServerFactory, tmp_path: Path, field: str
) -> None:
    """The archive's layout is <Study>/<Series>/<SOP>.dcm: hostile Study/Series UIDs in the
    data set must be refused too."""
    server = server_factory("qrscp")
    before, abs_before = files_under(tmp_path), _absolute_state()
    with Peer(server.port) as peer:
        peer.associate()
        for n, bad in enumerate(HOSTILE_UIDS):
            if bad in _PADDING_ONLY:
                continue
            sop = uid(31, 1, 1, n)
            study, series = (bad, uid(31, 1, 1)) if field == "study" else (uid(31, 1), bad)
            status = _store(peer, sop, study, series)
            assert is_failure(status), f"{field} {bad!r} got status {status:#06x}"
        peer.release()
    _check_nothing_escaped(server, tmp_path, before, abs_before)
    assert not dcm_files(server.workdir / "storage")
    leftovers = [
        p for p in files_under(server.workdir / "storage")
        if ".tmp" in p.parts
    ]
    assert not leftovers, f"temp files left: {leftovers}"
    assert os.path.isdir(server.workdir / "storage")
    assert_still_serving(server)
