"""``dicomnet storescu --parallel N`` and ``--max-ops N`` against our storescp and DCMTK's.

Every test sends real files from real processes and checks what arrived: the received files
carry the same data sets (element by element) and every file arrives exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dicomnet.cli.storescu import read_part10_info, split
from tests.cli.helpers import by_sop_uid, dcm_files, make_files, run_tool, same_dataset


def _check_received(sent: list[Path], received_dir: Path) -> None:
    received = dcm_files(received_dir)
    assert len(received) == len(sent)
    got = by_sop_uid(received)
    want = by_sop_uid(sent)
    assert set(got) == set(want)
    for uid, path in want.items():
        assert same_dataset(path, got[uid]), uid


def test_split_deals_every_file_once() -> None:
    items = list(range(10))
    parts = split(items, 3)  # type: ignore[arg-type]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sorted(x for p in parts for x in p) == items  # type: ignore[type-var]
    assert split(items[:2], 8) == [[0], [1]]  # type: ignore[arg-type]
    assert split(items[:1], 1) == [[0]]  # type: ignore[arg-type]


@pytest.mark.parametrize("parallel", ["1", "3"])
def test_parallel_to_our_storescp(storescp: Any, tmp_path: Path, parallel: str) -> None:
    srv = storescp()
    files = make_files(tmp_path / "src", 12)
    res = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", srv.aet,
                    "--parallel", parallel, *map(str, files)])
    assert res.returncode == 0, res.stderr
    assert "12 stored" in res.stdout
    _check_received(files, srv.directory)


def test_parallel_more_associations_than_files(storescp: Any, tmp_path: Path) -> None:
    srv = storescp()
    files = make_files(tmp_path / "src", 2)
    res = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", srv.aet, "--parallel", "5",
                    *map(str, files)])
    assert res.returncode == 0, res.stderr
    _check_received(files, srv.directory)


def test_window_granted_by_our_storescp(storescp: Any, tmp_path: Path) -> None:
    """storescp grants a window of 4; storescu proposes 8 and keeps up to 4 outstanding."""
    srv = storescp(extra=["--max-ops", "4"])
    files = make_files(tmp_path / "src", 20)
    res = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", srv.aet, "--max-ops", "8",
                    "-v", *map(str, files)])
    assert res.returncode == 0, res.stderr
    assert "20 stored" in res.stdout
    assert "asynchronous operations window: 4" in res.stderr  # min(8 proposed, 4 granted)
    _check_received(files, srv.directory)


def test_window_and_parallel_together(storescp: Any, tmp_path: Path) -> None:
    srv = storescp(extra=["--max-ops", "0"])
    files = make_files(tmp_path / "src", 15)
    res = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", srv.aet, "--max-ops", "4",
                    "--parallel", "2", *map(str, files)])
    assert res.returncode == 0, res.stderr
    assert "15 stored" in res.stdout
    _check_received(files, srv.directory)


def test_window_failure_counted_per_file(storescp: Any, tmp_path: Path) -> None:
    """An object the peer cannot take, among windowed stores, is counted as a failure and the
    others are all stored."""
    srv = storescp(extra=["--max-ops", "4"])
    files = make_files(tmp_path / "src", 6)
    # a SOP class storescp does not support: its context is refused, the file fails
    bad = make_files(tmp_path / "bad", 1, sop_class="1.2.826.0.1.3680043.9.9999.1")
    res = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", srv.aet, "--max-ops", "4",
                    *map(str, [*files[:3], *bad, *files[3:]])])
    assert res.returncode == 1
    assert "6 stored" in res.stdout and "1 failed" in res.stdout
    _check_received(files, srv.directory)


@pytest.mark.parametrize("extra", [[], ["--max-ops", "4"]])
def test_parallel_to_dcmtk_storescp(dcmtk_storescp: Any, tmp_path: Path, extra: list[str]) -> None:
    """DCMTK's storescp grants no window (53H is left out): --max-ops falls back to one
    outstanding request; --parallel 3 opens three associations it serves one after another
    or at once (DCMTK forks per association only with --fork, so they queue)."""
    srv = dcmtk_storescp()
    files = make_files(tmp_path / "src", 9)
    res = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", srv.aet, "--parallel", "3",
                    "-v", *extra, *map(str, files)])
    assert res.returncode == 0, res.stderr
    if extra:
        assert "asynchronous operations window: 1" in res.stderr
    assert "9 stored" in res.stdout
    _check_received(files, srv.directory)
    assert read_part10_info(str(files[0])) is not None
