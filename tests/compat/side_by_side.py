"""Run one small pynetdicom program twice -- as written, under pynetdicom, and after
``s/pynetdicom/dicomnet/`` -- against a real DCMTK ``storescp`` (:func:`run_both`) or on its
own (:func:`run_both_alone`); the tests compare what both print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_dcmtk
from tests.interop.test_scu_dcmtk import start_storescp


def run_program(program: str, port: int, cwd: Path) -> list[str]:
    """The lines ``program`` prints, run with the peer's port as its argument."""
    script = cwd / "program.py"
    script.write_text(program)
    done = subprocess.run([sys.executable, str(script), str(port)], capture_output=True,
                          text=True, timeout=60, cwd=cwd)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def run_both(
    program: str, procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> tuple[list[str], list[str], int]:
    """(pynetdicom's lines, dicomnet's lines, the storescp port) for ``program``."""
    pytest.importorskip("pynetdicom")
    require_dcmtk("storescp")
    port = start_storescp(procs, tmp_path / "out")
    theirs = run_program(program, port, tmp_path)
    ours = run_program(program.replace("pynetdicom", "dicomnet"), port, tmp_path)
    return theirs, ours, port


def run_both_alone(program: str, tmp_path: Path) -> tuple[list[str], list[str]]:
    """(pynetdicom's lines, dicomnet's lines) for a ``program`` that needs no peer (its own
    server and client over loopback)."""
    pytest.importorskip("pynetdicom")
    theirs = run_program(program, 0, tmp_path)
    ours = run_program(program.replace("pynetdicom", "dicomnet"), 0, tmp_path)
    return theirs, ours
