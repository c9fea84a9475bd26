"""Who may talk to the archive and do what, and the audit trail of it (issue 12).

``qrscp --config`` (TOML) names the known peers; each permission of the table is tried with
Debian's DCMTK tools by a peer allowed to and by one that is not: the refused operation gets
0124H "Refused: Not Authorized" (PS3.7 Annex C) and has no effect, an unknown calling AE title
gets A-ASSOCIATE-RJ 1/1/3 and a wrong called AE title 1/1/7 (PS3.8 Table 9-21), a peer over
its association cap 2/3/2. A peer bound to a TLS certificate subject is admitted only with
that certificate. Every association and operation leaves one JSON line in the audit log,
checked field by field, and the same events reach a syslog collector as DICOM audit messages
(PS3.15 A.5) in RFC 5424 frames.
"""

from __future__ import annotations

import json
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from dicomnet import AE
from tests.cli.helpers import make_files
from tests.conftest import free_port, require_dcmtk
from tests.hostile.harness import ServerProcess, wait_until

CT = "1.2.840.10008.5.1.4.1.1.2"
ENV = {"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}


class Site:
    """The archive (with its config file and audit log), a DCMTK storescp as the C-MOVE
    destination VIEWER, a UDP syslog collector, and the data stored in the archive."""

    def __init__(self, root: Path, pki: dict[str, Path], tls: bool = False) -> None:
        self.root = root
        self.pki = pki
        self.use_tls = tls
        self.dest_port = free_port()
        self.dest_dir = root / "viewer"
        self.dest_dir.mkdir()
        self.syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.syslog.bind(("127.0.0.1", 0))
        self.syslog.settimeout(5)
        self.audit = root / "audit.jsonl"
        self.metrics = free_port()
        config = root / "archive.toml"
        config.write_text(f"""
aet = "ARCHIVE"
bind = "127.0.0.1"
storage = "{root / 'storage'}"
audit_log = "{self.audit}"
audit_syslog = "udp://127.0.0.1:{self.syslog.getsockname()[1]}"
metrics = "127.0.0.1:{self.metrics}"
tls = {"true" if tls else "false"}
tls_cert = "{pki['server_pem']}"
tls_key = "{pki['server_key']}"
tls_ca = "{pki['ca_pem']}"

[[peer]]
aet = "STORER"
hosts = ["127.0.0.0/8"]
may = ["echo", "store"]

[[peer]]
aet = "VIEWER"
hosts = ["127.0.0.1"]
may = ["echo", "find", "get", "move"]
move_to = ["VIEWER"]
port = {self.dest_port}

[[peer]]
aet = "READER"
may = ["find"]
max_associations = 1

[[peer]]
aet = "MODALITY"
tls_subject = "CN=client"
may = ["echo", "store"]
""")
        self.server = ServerProcess("qrscp", root, ["--config", str(config)])
        self.viewer = subprocess.Popen(
            [require_dcmtk("storescp"), "-aet", "VIEWER", "-od", str(self.dest_dir),
             str(self.dest_port)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def tls(self, who: str = "client") -> list[str]:
        if not self.use_tls:
            return []
        return ["+tls", str(self.pki[f"{who}_key"]), str(self.pki[f"{who}_pem"]),
                "+cf", str(self.pki["ca_pem"])]  # fmt: skip

    def dcmtk(self, tool: str, aet: str, *args: str, who: str = "client", aec: str = "ARCHIVE",
              files: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:  # fmt: skip
        cmd = [require_dcmtk(tool), "-aet", aet, "-aec", aec, *self.tls(who), *args,
               "127.0.0.1", str(self.server.port), *map(str, files)]  # fmt: skip
        return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=60)

    def records(self) -> list[dict[str, Any]]:
        # The server appends while we read: a line it is still writing (one write(2), but a
        # reader may see it cut at a page boundary) has no newline yet and is left for later.
        *complete, _partial = self.audit.read_text().split("\n")
        return [json.loads(line) for line in complete]

    def stop(self) -> None:
        self.server.stop()
        self.viewer.kill()
        self.viewer.wait(timeout=10)
        self.syslog.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("site"), pki)
    try:
        s.server.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[Site]:
    """The same archive over TLS (client certificates verified by the test CA)."""
    s = Site(tmp_path_factory.mktemp("tls-site"), pki, tls=True)
    try:
        s.server.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def study(site: Site, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Path]]:
    """Two CT stored by STORER."""
    files = make_files(tmp_path_factory.mktemp("ct"), 2, patient_id="ACCESS", rows=8, columns=8)
    r = site.dcmtk("storescu", "STORER", files=tuple(files))
    assert r.returncode == 0, r.stderr
    return str(dcmread(files[0]).StudyInstanceUID), files


def _last(site: Site, **match: Any) -> dict[str, Any]:
    """The last audit record with these fields (the log is flushed per line)."""
    found: list[dict[str, Any]] = []

    def look() -> bool:
        found[:] = [r for r in site.records() if all(r.get(k) == v for k, v in match.items())]
        return bool(found)

    assert wait_until(look, 5.0), f"no audit record {match}"
    return found[-1]


def test_store_allowed_and_refused(site: Site, study: tuple[str, list[Path]],
                                   tmp_path: Path) -> None:  # fmt: skip
    uid, files = study
    rec = _last(site, type="operation", operation="C-STORE", calling_ae="STORER",
                sop_instance=str(dcmread(files[0]).SOPInstanceUID))  # fmt: skip
    assert rec["called_ae"] == "ARCHIVE" and rec["peer"] == "127.0.0.1"
    assert rec["status"] == "0x0000" and rec["result"] == "success"
    assert rec["sop_class"] == CT and rec["study"] == uid
    assert rec["bytes"] > 8 * 8 * 2 and rec["duration_ms"] >= 0
    assert rec["tls_identity"] is None
    # VIEWER may not store: 0124H, nothing stored
    other = make_files(tmp_path, 1, patient_id="NOTALLOWED")[0]
    site.dcmtk("storescu", "VIEWER", files=(other,))
    rec = _last(site, type="operation", operation="C-STORE", calling_ae="VIEWER")
    assert rec["status"] == "0x0124" and rec["result"] == "failure"
    assert "may not store" in rec["comment"]
    stored = site.root / "storage"
    assert not [p for p in stored.rglob("*.dcm")
                if str(dcmread(p).SOPInstanceUID) == str(dcmread(other).SOPInstanceUID)]


def test_echo_allowed_and_refused(site: Site) -> None:
    assert site.dcmtk("echoscu", "STORER").returncode == 0
    _last(site, operation="C-ECHO", calling_ae="STORER", status="0x0000")
    r = site.dcmtk("echoscu", "READER")  # READER may only find
    rec = _last(site, operation="C-ECHO", calling_ae="READER")
    assert rec["status"] == "0x0124", (rec, r.stderr)


def test_find_allowed_and_refused(site: Site, study: tuple[str, list[Path]]) -> None:
    uid, _ = study
    keys = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]
    r = site.dcmtk("findscu", "READER", *keys)
    assert r.returncode == 0, r.stderr
    rec = _last(site, operation="C-FIND", calling_ae="READER", status="0x0000")
    assert rec["matches"] == 1 and rec["study"] == uid
    site.dcmtk("findscu", "STORER", *keys)
    assert _last(site, operation="C-FIND", calling_ae="STORER")["status"] == "0x0124"


def test_get_allowed_and_refused(site: Site, study: tuple[str, list[Path]],
                                 tmp_path: Path) -> None:  # fmt: skip
    uid, files = study
    keys = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]
    allowed, refused = tmp_path / "viewer", tmp_path / "reader"
    allowed.mkdir()
    refused.mkdir()
    r = site.dcmtk("getscu", "VIEWER", *keys, "-od", str(allowed))
    assert r.returncode == 0, r.stderr
    assert len(list(allowed.iterdir())) == len(files)
    rec = _last(site, operation="C-GET", calling_ae="VIEWER", status="0x0000")
    assert rec["completed"] == len(files) and rec["failed"] == 0
    site.dcmtk("getscu", "READER", *keys, "-od", str(refused))
    assert _last(site, operation="C-GET", calling_ae="READER")["status"] == "0x0124"
    assert not list(refused.iterdir())


def test_move_destinations(site: Site, study: tuple[str, list[Path]]) -> None:
    uid, files = study
    keys = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]
    r = site.dcmtk("movescu", "VIEWER", "-aem", "VIEWER", *keys)
    assert r.returncode == 0, r.stderr
    rec = _last(site, operation="C-MOVE", calling_ae="VIEWER", status="0x0000")
    assert rec["completed"] == len(files)
    assert wait_until(lambda: len(list(site.dest_dir.iterdir())) == len(files), 10)
    # a destination VIEWER may not use, and a peer that may not move at all
    site.dcmtk("movescu", "VIEWER", "-aem", "STORER", *keys)
    rec = _last(site, operation="C-MOVE", calling_ae="VIEWER", status="0x0124")
    assert "may not move to STORER" in rec["comment"]
    site.dcmtk("movescu", "STORER", "-aem", "VIEWER", *keys)
    assert _last(site, operation="C-MOVE", calling_ae="STORER")["status"] == "0x0124"
    assert len(list(site.dest_dir.iterdir())) == len(files)


def _rejection(site: Site, **kw: Any) -> str:
    return str(_last(site, type="association", outcome="rejected", **kw)["rejection"])


def test_unknown_caller_and_wrong_called_ae_are_rejected(site: Site) -> None:
    r = site.dcmtk("echoscu", "NOBODY")
    assert r.returncode != 0
    assert _rejection(site, calling_ae="NOBODY") == "1/1/3"
    r = site.dcmtk("echoscu", "STORER", aec="SOMEONE-ELSE")
    assert r.returncode != 0
    assert _rejection(site, calling_ae="STORER", called_ae="SOMEONE-ELSE") == "1/1/7"


def test_tls_subject_binds_a_peer_to_its_certificate(site: Site, tls_site: Site) -> None:
    # MODALITY must present CN=client: with it, admitted; with CN=server (same CA) or
    # without TLS, refused
    assert tls_site.dcmtk("echoscu", "MODALITY").returncode == 0
    rec = _last(tls_site, operation="C-ECHO", calling_ae="MODALITY")
    assert rec["tls_identity"] == "CN=client" and rec["status"] == "0x0000"
    assert tls_site.dcmtk("echoscu", "MODALITY", who="server").returncode != 0
    rec = _last(tls_site, type="association", outcome="rejected", calling_ae="MODALITY")
    assert rec["rejection"] == "1/1/3" and rec["tls_identity"] == "CN=server"
    assert site.dcmtk("echoscu", "MODALITY").returncode != 0
    assert _rejection(site, calling_ae="MODALITY") == "1/1/3"
    # a peer without a certificate rule is admitted over TLS too, its identity recorded
    assert tls_site.dcmtk("echoscu", "STORER", who="server").returncode == 0
    rec = _last(tls_site, operation="C-ECHO", calling_ae="STORER")
    assert rec["tls_identity"] == "CN=server"


def test_association_cap_per_peer(site: Site) -> None:
    """READER may hold one association: the second gets 2/3/2 while the first is open."""
    ae = AE(ae_title="READER")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.2.2.1")
    first = ae.associate("127.0.0.1", site.server.port, ae_title="ARCHIVE")
    assert first.is_established
    try:
        second = ae.associate("127.0.0.1", site.server.port, ae_title="ARCHIVE")
        assert not second.is_established
        assert _rejection(site, calling_ae="READER") == "2/3/2"
    finally:
        first.release()


def test_association_records(site: Site) -> None:
    assert site.dcmtk("echoscu", "STORER").returncode == 0
    rec = _last(site, type="association", outcome="released", calling_ae="STORER")
    assert set(rec) >= {"time", "peer", "port", "calling_ae", "called_ae", "tls_identity",
                        "duration_ms"}  # fmt: skip
    assert rec["called_ae"] == "ARCHIVE" and rec["tls_identity"] is None
    assert isinstance(rec["port"], int) and rec["port"] > 0
    # no line is longer than a few KB, whatever the peer sent
    assert max(len(line) for line in site.audit.read_text().splitlines()) < 4096


def test_dicom_audit_messages_reach_syslog(site: Site, study: tuple[str, list[Path]]) -> None:
    """RFC 5424 frames: PRI 85 (facility 10, notice) or 84 (warning), MSGID DICOM+RFC3881,
    a UTF-8 BOM, then a PS3.15 A.5 AuditMessage."""
    assert site.dcmtk("echoscu", "NOBODY").returncode != 0  # a Security Alert at least
    events: dict[str, ET.Element] = {}
    while True:
        try:
            frame = site.syslog.recv(65536)
        except TimeoutError:
            break
        head, _, body = frame.partition(b" \xef\xbb\xbf")
        assert head.startswith((b"<85>1 ", b"<84>1 ")), head
        assert head.split()[5] == b"DICOM+RFC3881"
        root = ET.fromstring(body)
        assert root.tag == "AuditMessage"
        event = root.find("EventIdentification/EventID")
        assert event is not None
        events[event.get("csd-code", "")] = root
    # Application Activity, Instances Transferred, Query, Security Alert (PS3.15 A.5.3)
    assert {"110100", "110104", "110112", "110113"} <= set(events), sorted(events)
    stored = events["110104"]
    assert stored.find("AuditSourceIdentification").get("AuditSourceID") == "ARCHIVE"  # type: ignore[union-attr]


def test_metrics_count_what_happened(site: Site, study: tuple[str, list[Path]]) -> None:
    """The Prometheus endpoint (prometheus-client's text format) agrees with the audit log."""
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{site.metrics}/metrics", timeout=5) as r:
        text = r.read().decode()
    samples = {m.group(1): float(m.group(2))
               for m in re.finditer(r"^(dicomnet_[^ ]+) (\S+)$", text, re.M)}  # fmt: skip
    records = site.records()

    def audited(operation: str, result: str) -> int:
        return sum(1 for r in records if r.get("operation") == operation
                   and r.get("result") == result)  # fmt: skip

    for operation in ("C-STORE", "C-FIND", "C-ECHO"):
        for result in ("success", "failure"):
            key = f'dicomnet_operations_total{{operation="{operation}",result="{result}"}}'
            assert samples.get(key, 0) == audited(operation, result), key
    rejected = sum(1 for r in records if r.get("outcome") == "rejected")
    assert samples['dicomnet_associations_total{outcome="rejected"}'] == rejected
    assert samples["dicomnet_received_bytes_total"] >= sum(
        r["bytes"] for r in records if r.get("operation") == "C-STORE" and r["status"] == "0x0000")
    assert samples["dicomnet_associations_active"] == 0
    assert samples["dicomnet_sent_instances_total"] >= 4  # C-GET and C-MOVE of 2 each
