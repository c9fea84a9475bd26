"""Real files, every transfer syntax, through real DCMTK peers (issue 11).

(a) ``dicomnet storescu`` into a default DCMTK ``storescp`` (uncompressed syntaxes only) gets
    across at least every instance DCMTK's own ``storescu`` gets across with the same files,
    and more: Debian's DCMTK storescu cannot decompress (its codecs are not built in), ours
    converts; what arrives is the same instance (element-identical where the syntax was kept,
    pixels compared decoded where it was converted).
(b) DCMTK ``storescu`` (by default, and once per ``-x?`` option so that every compressed file is
    sent as it is) into ``dicomnet qrscp`` stores at least what it stores into DCMTK
    ``storescp +xa``, element-identical.
(c) Every instance the archive acknowledged comes back through DCMTK ``getscu`` and through
    C-MOVE into a default DCMTK ``storescp``, both accepting uncompressed data only: the archive
    converts. Only instances whose compressed pixel data the installed codecs cannot decode may
    stay behind, and those are reported as failed sub-operations (B000, Failed SOP Instance UID
    List), not as a refused retrieve.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_tool
from tests.corpus.conftest import Peers
from tests.corpus.helpers import (
    NATIVE,
    Stored,
    check_received,
    dcmtk,
    decodable,
    nonpatient,
    read,
    refused_by_design,
    stored_files,
)

pytestmark = pytest.mark.interop

# DCMTK storescu's options that propose a compressed (or big endian, deflated) syntax: one run
# per option sends the corpus's files of that syntax as they are (PS3.5 Annex A)
DCMTK_PROPOSE = ["", "-xb", "-xd", "-xy", "-xx", "-xs", "-xv", "-xw", "-xt", "-xu", "-xr"]


# --- (a) dicomnet storescu -> default DCMTK storescp ------------------------------------------


def test_storescu_into_default_dcmtk_storescp(corpus: dict[str, Any], peers: Peers) -> None:
    theirs_srv = peers.dcmtk_storescp()
    ours_srv = peers.dcmtk_storescp()
    r = dcmtk("storescu", "-nh", "+sd", "+r", "127.0.0.1", str(theirs_srv.port),
              str(corpus["root"]))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    mine = run_tool(["storescu", "-r", "127.0.0.1", str(ours_srv.port), str(corpus["root"])],
                    timeout=300)  # fmt: skip
    theirs, ours = stored_files(theirs_srv.directory), stored_files(ours_srv.directory)
    missing = sorted(set(theirs) - set(ours))
    assert not missing, [theirs[u].path.name for u in missing]
    # DCMTK's storescu (no codecs in Debian's build) cannot send compressed files to a peer
    # that accepts only uncompressed data; ours decompresses them
    assert len(ours) >= len(theirs) + 20, (len(ours), len(theirs))
    assert check_received(ours, corpus["sources"]) == []
    # the run went through every file: failures reported one per line, counted in the summary
    summary = re.search(r"(\d+) object\(s\).*: (\d+) stored, (\d+) with warnings, (\d+) failed, "
                        r"(\d+) skipped", mine.stdout)  # fmt: skip
    assert summary is not None, mine.stdout
    total, stored, warned, failed, skipped = map(int, summary.groups())
    assert total == len(corpus["files"]) == stored + warned + failed + skipped
    assert mine.returncode == 1  # some corpus files cannot be sent at all (no SOP Class UID...)
    errors = [ln for ln in mine.stderr.splitlines() if ln.startswith("E: ")]
    assert len(errors) == failed and all(str(corpus["root"]) in ln for ln in errors)
    # nothing made the peer drop the association (odd lengths, truncated files are caught)
    assert "requesting a new association" not in mine.stderr


# --- (b) DCMTK storescu -> dicomnet qrscp ---------------------------------------------------------


@pytest.fixture(scope="module")
def archive(corpus: dict[str, Any], peers: Peers) -> dict[str, Any]:
    """Our archive loaded by DCMTK's storescu, next to DCMTK's storescp +xa loaded the same
    way; a default DCMTK storescp is registered as the archive's C-MOVE destination."""
    dest = peers.dcmtk_storescp(aet="MOVEDEST")
    # each round re-sends every file with other proposals: --overwrite keeps the last copy, so
    # that what is archived is what the last round sent (the default keeps the first)
    qr = peers.qrscp({"MOVEDEST": dest.port}, extra=("--overwrite",))
    xa = peers.dcmtk_storescp("+xa")
    for option in DCMTK_PROPOSE:
        for srv in (qr, xa):
            args = [a for a in (option,) if a]
            r = dcmtk("storescu", "-nh", *args, "-aec", srv.aet, "+sd", "+r", "127.0.0.1",
                      str(srv.port), str(corpus["root"]))  # fmt: skip
            assert r.returncode == 0, r.stderr[-2000:]
    return {"qr": qr, "dest": dest, "archived": stored_files(qr.directory),
            "xa": stored_files(xa.directory)}


def test_dcmtk_storescu_into_qrscp(corpus: dict[str, Any], archive: dict[str, Any]) -> None:
    ours, theirs = archive["archived"], archive["xa"]
    missing = set(theirs) - set(ours)
    reasons = {uid: refused_by_design(theirs[uid].path) for uid in missing}
    assert all(reasons.values()), {u: theirs[u].path.name for u, r in reasons.items() if not r}
    assert len(ours) >= 140
    # stored as received: each archived file is one of the corpus files with its UID, element
    # for element (DCMTK's storescu re-encodes native files itself: compared across syntaxes)
    assert check_received(ours, corpus["sources"]) == []
    # compressed files arrive and stay compressed (as DCMTK's storescp +xa keeps them)
    compressed = {t.transfer_syntax for u, t in theirs.items() if u not in reasons} - NATIVE
    assert compressed and {s.transfer_syntax for s in ours.values()} >= compressed


# --- (c) everything back out of the archive ---------------------------------------------------


def _studies(archived: dict[str, Stored]) -> set[str]:
    out = set()
    for s in archived.values():
        ds = read(s.path, stop_before_pixels=True)
        assert ds is not None
        if "StudyInstanceUID" in ds:
            out.add(str(ds.StudyInstanceUID))
    return out


def _outside_patients(archived: dict[str, Stored]) -> list[str]:
    """The SOP Instance UIDs of the archived objects outside the patient hierarchy (Color
    Palettes of pydicom-data): retrieved by SOP Instance UID (Composite Instance Root)."""
    return sorted(uid for uid, s in archived.items() if nonpatient(s.path))


def _failed_counts(logs: str) -> int:
    """The sum of the final responses' Number of Failed Suboperations (DCMTK -v output)."""
    total = 0
    for report in logs.split("Final status report")[1:]:
        m = re.search(r"Number of Failed Suboperations\s*:\s*(\d+)", report)
        assert m is not None, report[:500]
        total += int(m.group(1))
    return total


def _check_back(archived: dict[str, Stored], got: dict[str, Stored], logs: str) -> None:
    not_back = set(archived) - set(got)
    # only what the installed codecs cannot decode may stay behind (the peer accepts no
    # compressed syntax), and each of those is reported as a failed sub-operation
    undecodable = {uid for uid in not_back if not decodable(archived[uid].path)}
    assert not_back == undecodable, [archived[u].path.name for u in not_back - undecodable]
    assert _failed_counts(logs) == len(not_back)
    assert all(s.transfer_syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                     "1.2.840.10008.1.2.2") for s in got.values())  # fmt: skip
    problems = check_received(got, {uid: [s.path] for uid, s in archived.items()})
    assert problems == []


def test_everything_back_through_dcmtk_getscu(archive: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "got"
    out.mkdir()
    logs = []
    qr = archive["qr"]
    for study in sorted(_studies(archive["archived"])):
        r = dcmtk("getscu", "-v", "-S", "-aec", qr.aet, "-od", str(out), "-k",
                  "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "127.0.0.1",
                  str(qr.port))  # fmt: skip
        logs.append(r.stdout + r.stderr)
        # never "refused: out of resources": a sub-operation the archive cannot convert for
        # this peer is a failed sub-operation (B000) with the reason in the Error Comment
        assert "Out of Resources" not in r.stdout + r.stderr
    # the objects outside the patient hierarchy: DCMTK's getscu has no Composite Instance Root
    # model, ours does (-C, PS3.4 Annex Y)
    for uid in _outside_patients(archive["archived"]):
        r = run_tool(["getscu", "127.0.0.1", str(qr.port), "-aec", qr.aet, "-C", "-od",
                      str(out), "-k", f"SOPInstanceUID={uid}"])  # fmt: skip
        assert r.returncode == 0, r.stderr
        logs.append("Final status report\nNumber of Failed Suboperations : 0\n")
    got = stored_files(out)
    _check_back(archive["archived"], got, "\n".join(logs))


def test_everything_back_through_c_move(archive: dict[str, Any]) -> None:
    qr, dest = archive["qr"], archive["dest"]
    logs = []
    for study in sorted(_studies(archive["archived"])):
        r = dcmtk("movescu", "-v", "-S", "-aec", qr.aet, "-aem", dest.aet, "-k",
                  "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "127.0.0.1",
                  str(qr.port))  # fmt: skip
        logs.append(r.stdout + r.stderr)
        assert "Out of Resources" not in r.stdout + r.stderr
    for uid in _outside_patients(archive["archived"]):
        r = run_tool(["movescu", "127.0.0.1", str(qr.port), "-aec", qr.aet, "-C", "-aem",
                      dest.aet, "-k", f"SOPInstanceUID={uid}"])  # fmt: skip
        assert r.returncode == 0, r.stderr
        logs.append("Final status report\nNumber of Failed Suboperations : 0\n")
    got = stored_files(dest.directory)
    _check_back(archive["archived"], got, "\n".join(logs))
