"""``qrscp -c FILE.ini``: pynetdicom's qrscp configuration file (its ``default.ini``) runs
dicomnet's archive, so ``python -m pynetdicom qrscp -c my.ini`` keeps working renamed.

The file is pynetdicom's own, read from the installed pynetdicom (a test dependency): its
settings become qrscp options, its destination sections C-MOVE destinations, and pynetdicom's
command-line overrides (``--ae-title``, ``--port``, ``--database-location``,
``--instance-location``) win over the file. Checked end to end with DCMTK: storescu stores into
the archive, movescu moves to the file's destination (a DCMTK storescp).
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomnet.cli import qrscp
from dicomnet.cli.qrscp_config import load
from tests.cli.conftest import Server, read_banner
from tests.cli.helpers import env, make_files, same_dataset, start_tool
from tests.conftest import free_port, require_dcmtk


def _pynetdicom_ini() -> str:
    spec = importlib.util.find_spec("pynetdicom")
    if spec is None or spec.origin is None:
        pytest.skip("pynetdicom is not installed")
    return (Path(spec.origin).parent / "apps" / "qrscp" / "default.ini").read_text()


def test_pynetdicom_default_ini_reads_as_options(tmp_path: Path) -> None:
    path = tmp_path / "default.ini"
    path.write_text(_pynetdicom_ini())
    argv, peers = load(str(path), qrscp.build_parser())
    assert peers == []
    assert argv == [
        "--aetitle", "QRSCP", "--port", "11112", "--max-pdu", "16382",
        "--acse-timeout", "30", "--dimse-timeout", "30", "--network-timeout", "30",
        "--storage", "instances", "--db", "instances.sqlite",
        "--destination", "STORESCP=127.0.0.1:11113",
    ]  # fmt: skip
    args = qrscp.parse(["-c", str(path), "--ae-title", "OVERRIDE", "--database-location", "x.db"])
    assert (args.aet, args.port, args.max_pdu, args.db, args.storage, args.bind) == (
        "OVERRIDE", 11112, 16382, "x.db", "instances", "127.0.0.1"
    )
    assert args.destination == [("STORESCP", "127.0.0.1", 11113)]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[DEFAULT]\nae_titel: X\n", ["[DEFAULT]", "ae_titel"]),
        ("[DEFAULT]\nport: 104\n[VIEWER]\naddress: 10.0.0.7\n", ["[VIEWER]", "no port"]),
        ("[VIEWER]\naddress: 10.0.0.7\nport: 104\nhost: x\n", ["[VIEWER]", "host"]),
        ("port = 104\n", ["section"]),
    ],
)
def test_ini_mistakes_are_named(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load(str(path), qrscp.build_parser())
    assert all(w in str(info.value) for w in words), str(info.value)


def test_qrscp_runs_on_pynetdicoms_ini_with_dcmtk(
    tmp_path: Path, servers: list[Server], dcmtk_storescp: Callable[..., Server]
) -> None:
    dest = dcmtk_storescp(aet="STORESCP")
    port = free_port()
    ini = _pynetdicom_ini().replace("port: 11112", f"port: {port}").replace(
        "port: 11113", f"port: {dest.port}"
    )
    assert f"port: {port}" in ini and f"port: {dest.port}" in ini
    (tmp_path / "qrscp.ini").write_text(ini)
    proc = start_tool(["qrscp", "-c", "qrscp.ini", "--instance-location", "stored"],
                      cwd=tmp_path)  # fmt: skip
    arc = Server(port, tmp_path / "stored", proc, "QRSCP")
    servers.append(arc)
    read_banner(proc)

    files = make_files(tmp_path / "in", 2, patient_id="INI1")
    where = ["-aec", "QRSCP", "127.0.0.1", str(port)]
    store = subprocess.run([require_dcmtk("storescu"), *where, *map(str, files)],
                           capture_output=True, text=True, env=env())  # fmt: skip
    assert store.returncode == 0, store.stderr
    move = subprocess.run([require_dcmtk("movescu"), "-P", "-aem", "STORESCP", "-k",
                           "QueryRetrieveLevel=PATIENT", "-k", "PatientID=INI1", *where],
                          capture_output=True, text=True, env=env())  # fmt: skip
    assert move.returncode == 0, move.stderr
    dest.stop()
    moved = {str(dcmread(p).SOPInstanceUID): p for p in dest.directory.iterdir()}
    assert sorted(moved) == sorted(str(dcmread(f).SOPInstanceUID) for f in files)
    for f in files:
        assert same_dataset(f, moved[str(dcmread(f).SOPInstanceUID)])
    # the file's database_location, the command line's instance location
    assert (tmp_path / "instances.sqlite").is_file()
    assert any(p.suffix == ".dcm" for p in (tmp_path / "stored").rglob("*"))
    assert not (tmp_path / "instances").exists()
