"""pynetdicom's own applications run on dicomnet after ``s/pynetdicom/dicomnet/g``.

pynetdicom ships eight command-line programs (``pynetdicom.apps``: echoscu, echoscp, storescu,
storescp, findscu, getscu, movescu, qrscp), the most used pynetdicom programs there are and a
wide sample of its API (AE set-up, contexts and roles, every C-service, extended negotiation,
handlers, ``_globals``, ``utils.set_ae``, ``assoc._get_valid_context``). Each test takes them
from the installed pynetdicom (a test dependency; no pynetdicom code is kept in this
repository), applies the sed to a copy and runs it as its own process against a real peer:
DCMTK's tools, or dicomnet's archive. The apps import their shared module as
``dicomnet.apps.common`` after the sed, so the launcher adds the copy's folder to
``dicomnet.__path__`` (a package pynetdicom's programs expect, not one dicomnet ships).

Found this way and fixed: ``findscu -w`` wrote "1" as the Transfer Syntax UID of every
response file (pynetdicom's ``cx.transfer_syntax`` is a one-item list; dicomnet's is the UID,
now an :class:`~dicomnet.presentation.AcceptedSyntax` whose ``[0]`` is the UID), and
``_globals`` / ``utils`` did not exist.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import UID

from tests.cli.conftest import Server, kill_quietly
from tests.cli.helpers import env, make_files, same_dataset, wait_port
from tests.conftest import free_port, require_dcmtk

_LAUNCHER = """\
import runpy, sys
import dicomnet
dicomnet.__path__.append({overlay!r})
app = sys.argv[1]
sys.argv = [app] + sys.argv[2:]
runpy.run_module(f"dicomnet.apps.{{app}}.{{app}}", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pynetdicom's apps after the sed, and a launcher: ``python run.py APP ARGS...``."""
    spec = importlib.util.find_spec("pynetdicom")
    if spec is None or spec.origin is None:
        pytest.skip("pynetdicom is not installed")
    source = Path(spec.origin).parent / "apps"
    root = tmp_path_factory.mktemp("pynetdicom-apps")
    overlay = root / "dicomnet"
    shutil.copytree(source, overlay / "apps",
                    ignore=shutil.ignore_patterns("tests", "__pycache__"))  # fmt: skip
    for path in (overlay / "apps").rglob("*"):
        if path.suffix in (".py", ".ini"):
            path.write_text(path.read_text().replace("pynetdicom", "dicomnet"))
    (root / "run.py").write_text(_LAUNCHER.format(overlay=str(overlay)))
    return root


def _run(apps: Path, app: str, *args: str, cwd: Path,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([sys.executable, str(apps / "run.py"), app, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env())  # fmt: skip


def _start(apps: Path, app: str, port: int, *args: str, cwd: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, str(apps / "run.py"), app, str(port),
                             "--bind-address", "127.0.0.1", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env())  # fmt: skip
    wait_port(port, proc)
    return proc


def _check(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_echoscu_and_storescu_to_dcmtk(apps: Path, tmp_path: Path,
                                       dcmtk_storescp: Callable[..., Server]) -> None:  # fmt: skip
    scp = dcmtk_storescp(extra=["-v"])
    _check(_run(apps, "echoscu", "127.0.0.1", str(scp.port), "-aec", scp.aet, cwd=tmp_path))
    files = make_files(tmp_path / "in", 3)
    _check(_run(apps, "storescu", "127.0.0.1", str(scp.port), "-aec", scp.aet,
                str(tmp_path / "in"), "--recurse", cwd=tmp_path))  # fmt: skip
    scp.stop()
    assert "Received Echo Request" in "".join(scp.output)
    received = sorted(scp.directory.iterdir())
    assert len(received) == 3
    by_uid = {str(dcmread(p).SOPInstanceUID): p for p in received}
    for f in files:
        assert same_dataset(f, by_uid[str(dcmread(f).SOPInstanceUID)])


def test_findscu_getscu_movescu_against_the_archive(
    apps: Path, tmp_path: Path, qrscp: Callable[..., Server],
    dcmtk_storescp: Callable[..., Server],
) -> None:  # fmt: skip
    dest = dcmtk_storescp()
    arc = qrscp(destinations={dest.aet: dest.port})
    files = make_files(tmp_path / "in", 2, patient_id="APPS1", patient_name="APPS^ONE")
    storescu = require_dcmtk("storescu")
    subprocess.run([storescu, "-aec", arc.aet, "127.0.0.1", str(arc.port), *map(str, files)],
                   check=True, capture_output=True, env=env())  # fmt: skip
    study = str(dcmread(files[0]).StudyInstanceUID)
    where = ["127.0.0.1", str(arc.port), "-aec", arc.aet]

    found = tmp_path / "found"
    found.mkdir()
    _check(_run(apps, "findscu", *where, "-S", "-k", "QueryRetrieveLevel=STUDY",
                "-k", "PatientName=APPS*", "-k", "StudyInstanceUID=", "-w", cwd=found))  # fmt: skip
    (response,) = found.iterdir()
    rsp = dcmread(response)
    assert str(rsp.StudyInstanceUID) == study and str(rsp.PatientName) == "APPS^ONE"
    # the accepted transfer syntax, whole (pynetdicom's apps take cx.transfer_syntax[0])
    assert UID(str(rsp.file_meta.TransferSyntaxUID)).is_transfer_syntax

    got = tmp_path / "got"
    got.mkdir()
    _check(_run(apps, "getscu", *where, "-S", "-k", "QueryRetrieveLevel=STUDY",
                "-k", f"StudyInstanceUID={study}", cwd=got))  # fmt: skip
    fetched = {str(dcmread(p).SOPInstanceUID): p for p in got.iterdir()}
    assert sorted(fetched) == sorted(str(dcmread(f).SOPInstanceUID) for f in files)
    for f in files:
        assert same_dataset(f, fetched[str(dcmread(f).SOPInstanceUID)])

    _check(_run(apps, "movescu", *where, "-aem", dest.aet, "-S", "-k",
                "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", cwd=tmp_path))  # fmt: skip
    moved = {str(dcmread(p).SOPInstanceUID) for p in dest.directory.iterdir()}
    assert moved == set(fetched)


def test_echoscp_and_storescp_serve_dcmtk(apps: Path, tmp_path: Path,
                                          procs: list[subprocess.Popen[bytes]]) -> None:  # fmt: skip
    echoscu, storescu = require_dcmtk("echoscu"), require_dcmtk("storescu")
    port = free_port()
    procs.append(_start(apps, "echoscp", port, cwd=tmp_path))
    echo = subprocess.run([echoscu, "127.0.0.1", str(port)], capture_output=True, env=env())
    assert echo.returncode == 0, echo.stderr
    kill_quietly(procs[-1])

    out = tmp_path / "stored"
    port = free_port()
    procs.append(_start(apps, "storescp", port, "--output-directory", str(out), cwd=tmp_path))
    files = make_files(tmp_path / "in", 2)
    store = subprocess.run([storescu, "127.0.0.1", str(port), *map(str, files)],
                           capture_output=True, env=env())  # fmt: skip
    assert store.returncode == 0, store.stderr
    stored = {str(dcmread(p).SOPInstanceUID): p for p in out.iterdir()}
    for f in files:
        assert same_dataset(f, stored[str(dcmread(f).SOPInstanceUID)])


def _qrscp_session(command: list[str], tmp_path: Path,
                   procs: list[subprocess.Popen[bytes]]) -> tuple[list[str], dict[str, Path]]:  # fmt: skip
    """Start a Q/R SCP app (``command`` + its config), store two instances of one study into
    it with DCMTK storescu, find the study and get it back with DCMTK findscu / getscu, move it
    to a DCMTK storescp with movescu; the Study Instance UIDs of the C-FIND answers and the
    files got back, by SOP Instance UID."""
    storescu, findscu, getscu, movescu, storescp = (
        require_dcmtk(t) for t in ("storescu", "findscu", "getscu", "movescu", "storescp"))
    port, dest_port = free_port(), free_port()
    moved = tmp_path / "moved"
    moved.mkdir()
    dest = subprocess.Popen([storescp, "-aet", "MOVEDEST", "-od", str(moved), str(dest_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())  # fmt: skip
    procs.append(dest)
    wait_port(dest_port, dest)
    config = tmp_path / "qrscp.ini"
    config.write_text(textwrap.dedent(f"""\
        [DEFAULT]
            ae_title: QRSCP
            port: {port}
            max_pdu: 16382
            acse_timeout: 30
            dimse_timeout: 30
            network_timeout: 30
            bind_address: 127.0.0.1
            instance_location: {tmp_path / "instances"}
            database_location: {tmp_path / "instances.sqlite"}

        [MOVEDEST]
            address: 127.0.0.1
            port: {dest_port}
        """))  # fmt: skip
    proc = subprocess.Popen([*command, "-c", str(config)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env())  # fmt: skip
    procs.append(proc)
    wait_port(port, proc)
    files = make_files(tmp_path / "in", 2, patient_id="APPS2")
    done = subprocess.run([storescu, "-aec", "QRSCP", "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, env=env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    study = str(dcmread(files[0]).StudyInstanceUID)
    answers = tmp_path / "answers"
    answers.mkdir()
    found = subprocess.run([findscu, "-aec", "QRSCP", "-S", "-k", "QueryRetrieveLevel=STUDY",
                            "-k", "PatientID=APPS2", "-k", "StudyInstanceUID", "-X", "-od",
                            str(answers), "127.0.0.1", str(port)],
                           capture_output=True, text=True, env=env())  # fmt: skip
    assert found.returncode == 0, found.stderr
    got = tmp_path / "got"
    got.mkdir()
    fetched = subprocess.run([getscu, "-aec", "QRSCP", "-S", "-k", "QueryRetrieveLevel=STUDY",
                              "-k", f"StudyInstanceUID={study}", "-od", str(got), "127.0.0.1",
                              str(port)], capture_output=True, text=True, env=env())  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    back = {str(dcmread(p).SOPInstanceUID): p for p in got.iterdir()}
    for f in files:
        assert same_dataset(f, back[str(dcmread(f).SOPInstanceUID)])
    sent = subprocess.run([movescu, "-aec", "QRSCP", "-aem", "MOVEDEST", "-S", "-k",
                           "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                           "127.0.0.1", str(port)], capture_output=True, text=True, env=env())  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    arrived = {str(dcmread(p).SOPInstanceUID): p for p in moved.iterdir()}
    assert sorted(arrived) == sorted(back)
    for f in files:
        assert same_dataset(f, arrived[str(dcmread(f).SOPInstanceUID)])
    return [str(dcmread(p).StudyInstanceUID) == study for p in sorted(answers.iterdir())], back


def test_qrscp_serves_dcmtk(apps: Path, tmp_path: Path,
                            procs: list[subprocess.Popen[bytes]]) -> None:  # fmt: skip
    """pynetdicom's Q/R SCP app (its database in SQLAlchemy) on dicomnet: DCMTK stores into
    it, finds and gets back, with the answers pynetdicom's own run of the app gives (one C-FIND
    answer per stored instance at STUDY level: the app's database, not the library). Found
    this way: the app reads ``event.request.AffectedSOPClassUID.keyword``, a pydicom UID
    property (dicomnet handed handlers plain strings), and its C-MOVE handler puts presentation
    contexts in a set (dicomnet's were not hashable: every C-MOVE failed with C511)."""
    pytest.importorskip("sqlalchemy")
    (tmp_path / "dicomnet").mkdir()
    (tmp_path / "pynetdicom").mkdir()
    ours, _ = _qrscp_session([sys.executable, str(apps / "run.py"), "qrscp"],
                             tmp_path / "dicomnet", procs)  # fmt: skip
    theirs, _ = _qrscp_session([sys.executable, "-m", "pynetdicom", "qrscp"],
                               tmp_path / "pynetdicom", procs)  # fmt: skip
    assert ours == theirs and ours and all(ours)
