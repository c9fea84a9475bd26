"""Shared CLI pieces: argument validation, rejection texts, status formatting, the progress bar
(terminal only), exit-code mapping; and, over the network: TLS, several associations when the
contexts exceed 128, and scripts/serve."""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from dicomnet.cli import common
from dicomnet.cli.common import ExitCode, Progress, ToolError
from dicomnet.errors import AssociationRejectedError
from dicomnet.uid import STORAGE_SOP_CLASSES
from tests.cli.conftest import read_banner
from tests.cli.helpers import ROOT, by_sop_uid, dcm_files, env, make_dataset, run_tool, write_part10
from tests.conftest import free_port


def test_parse_destination() -> None:
    assert common.parse_destination("STORE=10.0.0.1:104") == ("STORE", "10.0.0.1", 104)
    assert common.parse_destination("X=[::1]:11112") == ("X", "::1", 11112)
    for bad in ("STORE", "STORE=host", "STORE=host:0", "=h:1", "A" * 17 + "=h:1", "S=h:x"):
        with pytest.raises(argparse.ArgumentTypeError):
            common.parse_destination(bad)


def test_parser_validates_pdu_and_titles() -> None:
    p = common.tool_parser("echoscu", "x")
    args = p.parse_args(["-aet", "ME", "-aec", "YOU", "-pdu", "4096", "-td", "5"])
    assert (args.aet, args.aec, args.max_pdu, args.dimse_timeout) == ("ME", "YOU", 4096, 5.0)
    assert p.parse_args(["--max-pdu", "0"]).max_pdu == 0
    for bad in (["-pdu", "100"], ["-aet", "A" * 17], ["-ta", "-1"], ["-v", "-q"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)


def test_describe_rejection() -> None:
    text = common.describe_rejection(1, 1, 7)
    assert "rejected-permanent" in text and "called AE title not recognized" in text
    assert "(1/1/7)" in text
    assert "local limit exceeded" in common.describe_rejection(2, 3, 2)
    assert "reason 9" in common.describe_rejection(1, 2, 9)


@pytest.mark.parametrize(
    ("code", "category"),
    [(0, "Success"), (0xFF00, "Pending"), (0xFF01, "Pending"), (0xFE00, "Cancel"),
     (0xB000, "Warning"), (0x0107, "Warning"), (0xA700, "Failure"), (0xC000, "Failure"),
     (0x0122, "Failure")],
)
def test_status_category(code: int, category: str) -> None:
    assert common.status_category(code) == category
    assert common.format_status(code).startswith(f"0x{code:04X} ({category}")


def test_run_maps_errors_to_one_line_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    def raises(exc: BaseException) -> Any:
        def body() -> int:
            raise exc

        return body

    cases = [
        (ToolError("bad thing\nsecond line", ExitCode.FAILURE), 1, "error: bad thing second line"),
        (AssociationRejectedError("x", result=1, source=1, reason=3), 4, "calling AE title"),
        (ConnectionRefusedError(), 3, "connection refused"),
        (TimeoutError("slow"), 6, "timed out"),
    ]
    for exc, code, text in cases:
        assert common.run(raises(exc)) == code
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and text in err


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_progress_only_on_a_terminal() -> None:
    quiet = _Stream(tty=False)
    p = Progress(3, 3000, stream=quiet)
    for _ in range(3):
        p.advance(1000)
    p.close()
    assert quiet.getvalue() == ""
    tty = _Stream(tty=True)
    p = Progress(3, 3000, stream=tty)
    for _ in range(3):
        p.advance(1000)
    p.close()
    out = tty.getvalue()
    assert out.startswith("\r[") and out.endswith("\n")
    assert "3/3" in out and "2.9 KB/2.9 KB" in out and "/s" in out


def test_storescu_splits_over_128_contexts(storescp: Any, tmp_path: Path) -> None:
    """70 SOP classes x 2 contexts = 140 > 128: two associations, every object stored."""
    srv = storescp()
    classes = [u for u in STORAGE_SOP_CLASSES.values() if u != "1.2.840.10008.1.3.10"][:70]
    for i, uid in enumerate(classes):
        write_part10(make_dataset(sop_class=uid, rows=2, columns=2), tmp_path / "src" / f"{i}.dcm")
    r = run_tool(["storescu", "127.0.0.1", str(srv.port), "-v", str(tmp_path / "src")])
    assert r.returncode == 0, r.stderr
    assert "70 file(s), 2 association(s)" in r.stderr
    assert len(dcm_files(srv.directory)) == 70


def _openssl_cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def test_tls_echo_store_and_plaintext_refused(qrscp: Any, tmp_path: Path) -> None:
    if not os.access("/usr/bin/openssl", os.X_OK):
        pytest.skip("openssl not installed")
    cert, key = _openssl_cert(tmp_path)
    srv = qrscp(extra=["--tls", "--tls-cert", str(cert), "--tls-key", str(key)])
    tls = ["--tls", "--tls-ca", str(cert)]
    r = run_tool(["echoscu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", *tls])
    assert r.returncode == 0, r.stderr
    ds = make_dataset()
    f = write_part10(ds, tmp_path / "x.dcm")
    r = run_tool(["storescu", "127.0.0.1", str(srv.port), "-aec", "DICOMNET", *tls, str(f)])
    assert r.returncode == 0, r.stderr
    # a client that does not trust the certificate, and a plaintext client: both refused
    r = run_tool(["echoscu", "127.0.0.1", str(srv.port), "--tls", "-ta", "5"])
    assert r.returncode == 3, r.stderr
    r = run_tool(["echoscu", "127.0.0.1", str(srv.port), "-ta", "3"])
    assert r.returncode != 0
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error:")]) == 1


def test_scripts_serve(tmp_path: Path) -> None:
    """scripts/serve starts the archive (using the existing venv), prints how to use it."""
    port = free_port()
    e = env()
    e.update(DICOMNET_VENV=str(ROOT / ".venv"), PORT=str(port), STORAGE=str(tmp_path / "arc"))
    proc = subprocess.Popen([str(ROOT / "scripts" / "serve"), "--bind", "127.0.0.1"], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        banner = read_banner(proc).decode()
        assert "storescu" in banner and "findscu" in banner and f"{port}" in banner
        uid = generate_uid()
        f = write_part10(make_dataset(sop_uid=uid), tmp_path / "one.dcm")
        assert run_tool(["storescu", "127.0.0.1", str(port), "-aec", "DICOMNET", str(f)]).returncode == 0
        assert uid in by_sop_uid(dcm_files(tmp_path / "arc"))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        if proc.stdout:
            proc.stdout.close()
