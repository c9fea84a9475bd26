"""Our tools take the options of pynetdicom's apps, so ``python -m pynetdicom TOOL ...`` keeps
working after ``s/pynetdicom/dicomnet/`` (which turns it into ``python -m dicomnet TOOL ...``).

pynetdicom's apps share ``-ll``/``--log-level`` and ``--version``; echoscu has ``-xe/-xb/-xi``
(propose that syntax only) and ``--abort``; storescu ``-cx``; storescp ``-ba``, ``-x=``/``-xe``/
``-xb``/``-xi``, ``--ignore`` and ``--no-echo``; findscu ``-w`` (write the matches) and ``-f``
(identifier from a file), as getscu/movescu (which also have ``--ignore``; movescu ``--store``
and ``--store-aet``); and there is an ``echoscp``. Each is checked here against a real peer
(DCMTK's tools, or our archive loaded by DCMTK's storescu), on what the peer saw or received.
Found this way: pynetdicom's ``python -m pynetdicom echoscp`` had no counterpart at all.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomnet import __version__
from tests.cli.conftest import Server, read_banner
from tests.cli.helpers import dcm_files, env, make_files, run_tool, same_dataset, start_tool
from tests.conftest import free_port, require_dcmtk

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


@pytest.fixture
def echoscp(servers: list[Server], tmp_path: Path) -> Callable[..., Server]:
    """Our echoscp on a free port: echoscp(extra=[...])."""

    def start(extra: list[str] | None = None) -> Server:
        port = free_port()
        proc = start_tool(["echoscp", str(port), "-ba", "127.0.0.1", *(extra or [])])
        server = Server(port, tmp_path, proc, "ECHOSCP")
        servers.append(server)
        read_banner(proc)
        return server

    return start


@pytest.fixture
def loaded(tmp_path: Path, qrscp: Callable[..., Server],
           servers: list[Server]) -> Iterator[tuple[Server, list[Path]]]:  # fmt: skip
    """Our archive holding two instances of one study (patient PYOPT1), stored by DCMTK."""
    arc = qrscp()
    files = make_files(tmp_path / "in", 2, patient_id="PYOPT1", patient_name="PY^OPTIONS")
    subprocess.run([require_dcmtk("storescu"), "-aec", arc.aet, "127.0.0.1", str(arc.port),
                    *map(str, files)], check=True, capture_output=True, env=env())  # fmt: skip
    yield arc, files


def test_echoscp_answers_dcmtk_echoscu_and_refuses_storage(
    echoscp: Callable[..., Server], tmp_path: Path
) -> None:
    scp = echoscp(["-v"])
    where = ["127.0.0.1", str(scp.port)]
    echo = subprocess.run([require_dcmtk("echoscu"), "-aet", "DCMTKECHO", *where],
                          capture_output=True, env=env())  # fmt: skip
    assert echo.returncode == 0, echo.stderr
    (file,) = make_files(tmp_path / "in", 1)
    store = subprocess.run([require_dcmtk("storescu"), *where, str(file)],
                           capture_output=True, text=True, env=env())  # fmt: skip
    assert store.returncode != 0
    assert "No Acceptable Presentation Contexts" in store.stderr
    assert scp.stop() == 0
    assert "C-ECHO from DCMTKECHO" in "".join(scp.output)


@pytest.mark.parametrize(
    ("scp_option", "scu_option", "ok"),
    [
        ("-xi", "-xi", True),
        ("-xi", "-xe", False),  # the peer accepts Implicit VR LE only, we propose Explicit only
        ("-xi", "--request-big", False),
        ("-xb", "--request-big", True),
        ("-x=", "-xb", False),
        (None, "-xb", True),  # by default echoscp accepts pynetdicom's four syntaxes
    ],
)
def test_echoscu_proposes_only_the_syntax_named(
    echoscp: Callable[..., Server], scp_option: str | None, scu_option: str, ok: bool
) -> None:
    scp = echoscp([scp_option] if scp_option else [])
    r = run_tool(["echoscu", "127.0.0.1", str(scp.port), scu_option])
    assert r.returncode == (0 if ok else 4), r.stderr  # 4: no context accepted
    if not ok:
        assert "accepted none of the proposed presentation contexts" in r.stderr


def test_echoscu_abort_ends_the_association_with_an_a_abort(
    dcmtk_storescp: Callable[..., Server],
) -> None:
    scp = dcmtk_storescp(extra=["-v"])
    r = run_tool(["echoscu", "127.0.0.1", str(scp.port), "-aec", scp.aet, "--abort"])
    assert r.returncode == 0, r.stderr
    r = run_tool(["echoscu", "127.0.0.1", str(scp.port), "-aec", scp.aet])
    assert r.returncode == 0, r.stderr
    scp.stop()
    log = "".join(scp.output)
    # DCMTK's storescp saw one association aborted, the other released
    assert log.count("Association Aborted") == 1
    assert log.count("Association Release") == 1


def test_log_level_and_version(echoscp: Callable[..., Server]) -> None:
    scp = echoscp()
    where = ["127.0.0.1", str(scp.port)]
    for tool in ("echoscu", "storescu", "findscu", "getscu", "movescu", "storescp", "echoscp",
                 "qrscp"):  # fmt: skip
        r = run_tool([tool, "--version"])
        assert (r.returncode, r.stdout.strip()) == (0, f"dicomnet {tool} {__version__}")
    # (echoscp has no C-FIND: the association fails after the identifier was logged)
    debug = run_tool(["findscu", *where, "-S", "-k", "PatientName=", "-ll", "debug"])
    assert debug.returncode == 4
    assert "D: identifier:" in debug.stderr
    info = run_tool(["echoscu", *where, "--log-level", "INFO"])
    assert "I: C-ECHO 1: success" in info.stderr
    assert not any(line.startswith("D: ") for line in info.stderr.splitlines())
    # the level wins over -v, and "error" keeps a successful run silent on stderr
    quiet = run_tool(["echoscu", *where, "-v", "-ll", "error"])
    assert (quiet.returncode, quiet.stderr) == (0, "")
    bad = run_tool(["echoscu", *where, "-ll", "loud"])
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    # -q still gives the one-line reason of a failure, as DCMTK's -q prints its fatal line
    # (pynetdicom's prints nothing: the migration guide lists it)
    closed = ["127.0.0.1", str(free_port())]
    ours = run_tool(["echoscu", *closed, "-q"])
    assert ours.returncode == 3 and ours.stderr.startswith("error: cannot associate")
    assert ours.stdout == ""
    dcmtk = subprocess.run([require_dcmtk("echoscu"), "-q", *closed], capture_output=True,
                           text=True, env=env())  # fmt: skip
    assert dcmtk.returncode != 0 and dcmtk.stderr.startswith("F: Association Request Failed")


def test_storescp_ignore_and_no_echo(storescp: Callable[..., Server], tmp_path: Path) -> None:
    scp = storescp(extra=["--ignore", "--no-echo"])
    where = ["-aec", scp.aet, "127.0.0.1", str(scp.port)]
    files = make_files(tmp_path / "in", 2)
    store = subprocess.run([require_dcmtk("storescu"), *where, *map(str, files)],
                           capture_output=True, text=True, env=env())  # fmt: skip
    assert store.returncode == 0, store.stderr  # both answered Success ...
    echo = subprocess.run([require_dcmtk("echoscu"), *where], capture_output=True, env=env())
    assert echo.returncode != 0  # ... and Verification is refused
    scp.stop()
    assert not scp.directory.exists() or not list(scp.directory.glob("*.dcm"))  # ... none kept


def test_storescp_pynetdicom_syntax_option(storescp: Callable[..., Server], tmp_path: Path) -> None:
    """``-xi`` (pynetdicom's spelling of DCMTK's ``+xi``): Implicit VR Little Endian only; the
    file arrives converted from the Explicit VR it was proposed in, identical in content."""
    scp = storescp(extra=["-xi", "-ba", "127.0.0.1"])
    (file,) = make_files(tmp_path / "in", 1)
    store = subprocess.run([require_dcmtk("storescu"), "-aec", scp.aet, "127.0.0.1",
                            str(scp.port), str(file)], capture_output=True, text=True,
                           env=env())  # fmt: skip
    assert store.returncode == 0, store.stderr
    scp.stop()
    (received,) = scp.directory.glob("*.dcm")
    assert dcmread(received).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert same_dataset(file, received)


def test_findscu_write_and_query_file(loaded: tuple[Server, list[Path]], tmp_path: Path) -> None:
    arc, files = loaded
    study = str(dcmread(files[0]).StudyInstanceUID)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "PY^OPT*"
    query.StudyInstanceUID = ""
    # a bare data set without a File Meta header (as DCMTK's dump2dcm -F writes it)
    query.save_as(tmp_path / "query.dcm", implicit_vr=False, little_endian=True)
    where = ["127.0.0.1", str(arc.port), "-aec", arc.aet, "-S", "-f", str(tmp_path / "query.dcm")]

    ours, theirs = tmp_path / "ours", tmp_path / "dcmtk"
    ours.mkdir()
    theirs.mkdir()
    # -f FILE, with a -k key added to it; -w writes rsp000001.dcm (pynetdicom's name)
    r = run_tool(["findscu", *where, "-k", "PatientID=", "-w"], cwd=ours)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in ours.iterdir()) == ["rsp000001.dcm"]
    rsp = dcmread(ours / "rsp000001.dcm")
    assert (str(rsp.StudyInstanceUID), rsp.PatientID) == (study, "PYOPT1")
    assert rsp.file_meta.MediaStorageSOPClassUID == STUDY_ROOT_FIND
    # -X writes DCMTK's names: compare with DCMTK's findscu -X on the same query file
    r = run_tool(["findscu", *where, "-X"], cwd=ours)
    assert r.returncode == 0, r.stderr
    dcmtk = subprocess.run([require_dcmtk("findscu"), "-S", "-X", "-aec", arc.aet, "127.0.0.1",
                            str(arc.port), str(tmp_path / "query.dcm")], cwd=theirs,
                           capture_output=True, env=env())  # fmt: skip
    assert dcmtk.returncode == 0, dcmtk.stderr
    assert sorted(p.name for p in theirs.iterdir()) == ["rsp0001.dcm"]
    assert (ours / "rsp0001.dcm").exists()
    assert str(dcmread(ours / "rsp0001.dcm").StudyInstanceUID) == study
    assert str(dcmread(theirs / "rsp0001.dcm").StudyInstanceUID) == study

    missing = run_tool(["findscu", "127.0.0.1", str(arc.port), "-S", "-f", str(tmp_path / "no")])
    assert missing.returncode == 2 and "-f" in missing.stderr


def test_getscu_patient_root_by_default_and_ignore(loaded: tuple[Server, list[Path]],
                                                   tmp_path: Path) -> None:  # fmt: skip
    arc, files = loaded
    keys = ["-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=PYOPT1"]
    where = ["127.0.0.1", str(arc.port), "-aec", arc.aet]
    ignored, kept = tmp_path / "ignored", tmp_path / "kept"
    r = run_tool(["getscu", *where, *keys, "--ignore", "-od", str(ignored)])
    assert r.returncode == 0, r.stderr
    assert "2 completed, 0 failed" in r.stdout
    assert not ignored.exists()  # not even created
    r = run_tool(["getscu", *where, *keys, "--relational-retrieval", "-od", str(kept)])
    assert r.returncode == 0, r.stderr
    got = {str(dcmread(p).SOPInstanceUID): p for p in dcm_files(kept)}
    for f in files:
        assert same_dataset(f, got[str(dcmread(f).SOPInstanceUID)])


def test_movescu_store_and_store_aet(tmp_path: Path, qrscp: Callable[..., Server]) -> None:
    store_port = free_port()
    arc = qrscp(destinations={"PYMOVEDEST": store_port})
    files = make_files(tmp_path / "in", 2, patient_id="PYOPT2")
    subprocess.run([require_dcmtk("storescu"), "-aec", arc.aet, "127.0.0.1", str(arc.port),
                    *map(str, files)], check=True, capture_output=True, env=env())  # fmt: skip
    out = tmp_path / "moved"
    # no -aem: the destination is the --store-aet, served by --store on --store-port
    r = run_tool(["movescu", "127.0.0.1", str(arc.port), "-aec", arc.aet, "--store",
                  "--store-port", str(store_port), "--store-aet", "PYMOVEDEST",
                  "--store-bind", "127.0.0.1", "-od", str(out),
                  "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=PYOPT2"])  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = {str(dcmread(p).SOPInstanceUID): p for p in dcm_files(out)}
    assert sorted(got) == sorted(str(dcmread(f).SOPInstanceUID) for f in files)


def test_storescu_pynetdicom_spellings(dcmtk_storescp: Callable[..., Server],
                                       tmp_path: Path) -> None:  # fmt: skip
    """``-cx`` (only the contexts the files need: what storescu always proposes) and
    ``--request-implicit`` (pynetdicom's name for ``-xi``) into DCMTK's storescp, which
    writes what it received in the syntax it received it in."""
    scp = dcmtk_storescp()
    files = make_files(tmp_path / "in", 2)
    r = run_tool(["storescu", "127.0.0.1", str(scp.port), "-aec", scp.aet, "-cx",
                  "--request-implicit", *map(str, files)])  # fmt: skip
    assert r.returncode == 0, r.stderr
    scp.stop()
    received = list(scp.directory.iterdir())
    assert len(received) == 2
    assert {str(dcmread(p).file_meta.TransferSyntaxUID) for p in received} == {"1.2.840.10008.1.2"}


@pytest.mark.parametrize(
    ("option", "accepted"),
    [
        (None, "1.2.840.10008.1.2.1"),
        ("-xb", "1.2.840.10008.1.2.2"),  # pynetdicom's spelling of +xb
        ("+xi", "1.2.840.10008.1.2"),
        ("-x=", "1.2.840.10008.1.2.1"),
    ],
)
def test_storescp_answers_verification_in_its_preferred_syntax(
    storescp: Callable[..., Server], option: str | None, accepted: str
) -> None:
    """A C-ECHO is accepted in the transfer syntax the ``-x?``/``+x?`` option prefers, as
    DCMTK's storescp does (and as pynetdicom's storescp tests check): the requestor proposes
    Explicit LE, Implicit LE and Explicit BE in one context."""
    from dicomnet import AE

    scp = storescp(extra=[option] if option else [])
    ae = AE(ae_title="ECHOER")
    ae.add_requested_context("1.2.840.10008.1.1", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2",
                                                   "1.2.840.10008.1.2.2"])  # fmt: skip
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=scp.aet)
    assert assoc.is_established
    try:
        (cx,) = assoc.accepted_contexts
        assert cx.accepted_syntax == accepted
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def test_findscu_queries_patient_root_without_a_model_option(
    loaded: tuple[Server, list[Path]], echoscp: Callable[..., Server]
) -> None:
    """pynetdicom's findscu default (``python -m pynetdicom findscu HOST PORT -k ...``); DCMTK's
    findscu defaults to Worklist, so worklist-looking keys without ``-W`` get a warning."""
    arc, _ = loaded
    r = run_tool(["findscu", "127.0.0.1", str(arc.port), "-aec", arc.aet, "--json",
                  "-k", "PatientID=PYOPT1", "-k", "PatientName="])  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert '"PY^OPTIONS"' in r.stdout and '"PATIENT"' in r.stdout
    assert "worklist" not in r.stderr
    scp = echoscp()  # no C-FIND there: the association fails after the identifier was built
    worklist = run_tool(["findscu", "127.0.0.1", str(scp.port),
                         "-k", "ScheduledProcedureStepSequence[0].Modality=MR"])  # fmt: skip
    assert worklist.returncode == 4
    assert "add -W" in worklist.stderr
