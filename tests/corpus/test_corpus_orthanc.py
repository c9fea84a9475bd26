"""Real files, every transfer syntax, with Orthanc as the peer (issue 11, part d).

* ``dicomnet storescu`` into Orthanc stores at least every instance DCMTK's ``storescu`` stores
  into another Orthanc from the same files, each the same instance;
* Orthanc's own C-STORE SCU (``/modalities/{id}/store``, transcoding on, as configured by
  default) sending everything it holds into ``dicomnet qrscp`` gets at least what it gets into
  DCMTK's ``storescp +xa``;
* every instance of the archive comes back to Orthanc through C-MOVE, as it is stored (Orthanc
  accepts every syntax).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_tool
from tests.conftest import free_port
from tests.corpus.conftest import Peers
from tests.corpus.helpers import (
    check_received,
    dcmtk,
    read,
    refused_by_design,
    same_instance,
    stored_files,
)
from tests.corpus.orthanc import Orthanc, available

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not available(), reason="Orthanc is not installed"),
]


@pytest.fixture(scope="module")
def orthancs(tmp_path_factory: pytest.TempPathFactory, peers: Peers) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("orthanc-corpus")
    xa = peers.dcmtk_storescp("+xa", aet="XA")
    ours = Orthanc(tmp / "ours", aet="ORTHANC1")
    theirs = Orthanc(tmp / "theirs", aet="ORTHANC2")
    # the sender: knows our archive, DCMTK's storescp +xa, and is our archive's move target
    archive_port = free_port()
    sender = Orthanc(tmp / "sender", aet="ORTHANC3",
                     modalities={"DICOMNET": archive_port, "XA": xa.port})  # fmt: skip
    made = [ours, theirs, sender]
    try:
        yield {"ours": ours, "theirs": theirs, "sender": sender, "xa": xa,
               "archive_port": archive_port}  # fmt: skip
    finally:
        for o in made:
            o.stop()


def _stored(orthanc: Orthanc, into: Path) -> dict[str, Any]:
    into.mkdir(parents=True, exist_ok=True)
    for iid in orthanc.instances().values():
        (into / f"{iid}.dcm").write_bytes(orthanc.file(iid))
    return stored_files(into)


def test_storescu_into_orthanc(corpus: dict[str, Any], orthancs: dict[str, Any],
                               tmp_path: Path) -> None:  # fmt: skip
    ours, theirs = orthancs["ours"], orthancs["theirs"]
    r = dcmtk("storescu", "-nh", "+sd", "+r", "-aec", theirs.aet, "127.0.0.1", str(theirs.port),
              str(corpus["root"]))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    mine = run_tool(["storescu", "-r", "-aec", ours.aet, "127.0.0.1", str(ours.port),
                     str(corpus["root"])], timeout=300)  # fmt: skip
    assert "requesting a new association" not in mine.stderr
    got_theirs = _stored(theirs, tmp_path / "theirs")
    got_ours = _stored(ours, tmp_path / "ours")
    missing = set(got_theirs) - set(got_ours)
    assert not missing, [got_theirs[u].path.name for u in missing]
    # Orthanc accepts compressed syntaxes, which DCMTK's storescu does not even propose unless
    # told to: ours proposes each file's own syntax and sends it as it is
    assert len(got_ours) > len(got_theirs)
    assert check_received(got_ours, corpus["sources"]) == []


@pytest.fixture(scope="module")
def sender_loaded(corpus: dict[str, Any], orthancs: dict[str, Any]) -> dict[str, str]:
    sender: Orthanc = orthancs["sender"]
    for path in corpus["files"]:
        sender.upload(path)
    held = sender.instances()
    assert len(held) >= 140
    return held


@pytest.fixture(scope="module")
def archive_from_orthanc(orthancs: dict[str, Any], sender_loaded: dict[str, str],
                         peers: Peers) -> Any:  # fmt: skip
    """Our archive and DCMTK's storescp +xa, each sent everything Orthanc holds."""
    sender: Orthanc = orthancs["sender"]
    archive = peers.qrscp({"ORTHANC3": sender.port}, port=orthancs["archive_port"])
    for modality in ("dicomnet", "xa"):
        # Orthanc stops a store job at the first failure: one request per instance
        for iid in sender_loaded.values():
            try:
                sender.rest("POST", f"/modalities/{modality}/store",
                            f'{{"Resources": ["{iid}"], "Synchronous": true}}'.encode())
            except Exception:
                pass  # counted by what arrived
    return archive


def test_orthanc_sends_everything_into_qrscp(orthancs: dict[str, Any],
                                             archive_from_orthanc: Any) -> None:  # fmt: skip
    ours = stored_files(archive_from_orthanc.directory)
    theirs = stored_files(orthancs["xa"].directory)
    assert len(theirs) >= 140
    missing = set(theirs) - set(ours)
    reasons = {uid: refused_by_design(theirs[uid].path) for uid in missing}
    assert all(reasons.values()), {u: theirs[u].path.name for u, r in reasons.items() if not r}
    for uid, mine in ours.items():
        if uid in theirs:  # the same bytes from the same sender, stored as received
            assert same_instance(theirs[uid].path, mine.path) is None, mine.path.name


def test_everything_back_to_orthanc_by_c_move(orthancs: dict[str, Any],
                                              archive_from_orthanc: Any) -> None:  # fmt: skip
    archive = archive_from_orthanc
    sender: Orthanc = orthancs["sender"]
    archived = stored_files(archive.directory)
    # clear Orthanc, then move every study back into it from the archive
    for iid in sender.rest("GET", "/instances"):  # every one (several may share a UID)
        sender.rest("DELETE", f"/instances/{iid}")
    assert sender.rest("GET", "/instances") == []
    studies = set()
    for s in archived.values():
        ds = read(s.path, stop_before_pixels=True)
        assert ds is not None
        studies.add(str(ds.StudyInstanceUID))
    for study in sorted(studies):
        r = dcmtk("movescu", "-S", "-aec", archive.aet, "-aem", sender.aet, "-k",
                  "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "127.0.0.1",
                  str(archive.port))  # fmt: skip
        assert r.returncode == 0, r.stderr[-1000:]
    with tempfile.TemporaryDirectory() as d:
        back = _stored(sender, Path(d))
        assert set(back) == set(archived)
        for uid, s in back.items():
            assert s.transfer_syntax == archived[uid].transfer_syntax  # Orthanc takes them all
            assert same_instance(archived[uid].path, s.path) is None, archived[uid].path.name
