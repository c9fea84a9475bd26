"""Debian's Orthanc as a test peer: started with a generated configuration on free loopback ports
(DICOM and HTTP), storage in tmp, driven through its REST API (urllib, loopback only)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from tests.cli.helpers import env, wait_port
from tests.conftest import free_port

ORTHANC = "/usr/sbin/Orthanc"


def available() -> bool:
    return os.access(ORTHANC, os.X_OK)


class Orthanc:
    """One Orthanc process; ``modalities`` maps an AE title to its port on 127.0.0.1."""

    def __init__(self, tmp: Path, aet: str = "ORTHANC",
                 modalities: dict[str, int] | None = None) -> None:  # fmt: skip
        tmp.mkdir(parents=True, exist_ok=True)
        self.aet = aet
        self.port, self.http_port = free_port(), free_port()
        config = {
            "Name": f"dicomnet-test-{aet}",
            "StorageDirectory": str(tmp / "storage"),
            "IndexDirectory": str(tmp / "index"),
            "StorageCompression": False,
            "Plugins": [],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": aet,
            "DicomPort": self.port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomModalities": {
                name.lower(): [name, "127.0.0.1", port] for name, port in (modalities or {}).items()
            },
            "DicomAssociationCloseDelay": 0,
            "SaveJobs": False,
            "ConcurrentJobs": 1,
            "StableAge": 1,
        }
        cfg = tmp / "orthanc.json"
        cfg.write_text(json.dumps(config))
        self.log = open(tmp / "orthanc.log", "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env(), cwd=tmp)  # fmt: skip
        try:
            wait_port(self.port, self.proc, timeout=30)
            wait_port(self.http_port, self.proc, timeout=30)
        except BaseException:  # started but never listening: do not leave it running
            self.stop()
            raise

    def rest(self, method: str, path: str, body: bytes | None = None,
             timeout: float = 300) -> Any:  # fmt: skip
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body,
                                     method=method)  # fmt: skip
        with urllib.request.urlopen(req, timeout=timeout) as rsp:
            data = rsp.read()
        return json.loads(data) if data else None

    def instances(self) -> dict[str, str]:
        """{SOP Instance UID: Orthanc instance ID} of everything stored."""
        out = {}
        for item in self.rest("GET", "/instances?expand"):
            out[item["MainDicomTags"]["SOPInstanceUID"]] = item["ID"]
        return out

    def upload(self, path: Path) -> str | None:
        """POST a file to /instances; its Orthanc ID, or None when Orthanc refuses it."""
        try:
            answer = self.rest("POST", "/instances", path.read_bytes())
        except Exception:
            return None
        if isinstance(answer, dict) and answer.get("ID"):
            return str(answer["ID"])
        return None

    def file(self, instance_id: str) -> bytes:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/instances/{instance_id}/file"
        )
        with urllib.request.urlopen(req, timeout=60) as rsp:
            return bytes(rsp.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
