"""Peers and client of ``test_query_compare.py``: our archive and DCMTK's ``dcmqrscp`` on free
loopback ports with their storage in tmp, one corpus file per instance to load into them, and
DCMTK's ``findscu`` whose answers are read back from the response files it writes (``-X``), each
decoded by pydicom with its own Specific Character Set."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.charset import convert_encodings, encode_string
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from tests.cli.conftest import Server
from tests.cli.helpers import DICOMNET, env, wait_port
from tests.conftest import dcmtk_tool, free_port
from tests.corpus.helpers import NATIVE, read

FINDSCU = dcmtk_tool("findscu") or "findscu"


def start_dicomnet(tmp: Path) -> Server:
    """``dicomnet qrscp`` with its default query behaviour (relational shapes answered)."""
    port = free_port()
    storage = tmp / "dicomnet"
    log = open(tmp / "dicomnet.log", "wb")  # noqa: SIM115 - the child holds it, closed below
    proc = subprocess.Popen([*DICOMNET, "qrscp", "--port", str(port), "--bind", "127.0.0.1",
                             "--storage", str(storage), "-aet", "DICOMNET", "--durability",
                             "fast"], stdout=log, stderr=subprocess.STDOUT, env=env())  # fmt: skip
    log.close()
    server = Server(port, storage, proc, "DICOMNET")
    try:
        wait_port(port, proc)
    except RuntimeError:
        server.stop()
        raise
    return server


def start_dcmqrscp(tmp: Path) -> Server:
    """DCMTK's ``dcmqrscp``: one read/write storage area ``DCMQR`` open to any AE title, room for
    5000 studies of up to 1 GB each (a full area would make it delete the oldest studies)."""
    exe = dcmtk_tool("dcmqrscp")
    assert exe is not None
    port = free_port()
    db = tmp / "dcmqr"
    db.mkdir()
    cfg = tmp / "dcmqrscp.cfg"
    cfg.write_text(f"NetworkTCPPort = {port}\nMaxPDUSize = 65536\nMaxAssociations = 16\n\n"
                   "HostTable BEGIN\nHostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
                   f"AETable BEGIN\nDCMQR {db} RW (5000, 1024mb) ANY\nAETable END\n")  # fmt: skip
    log = open(tmp / "dcmqrscp.log", "wb")  # noqa: SIM115 - the child holds it, closed below
    proc = subprocess.Popen([exe, "-c", str(cfg), str(port)], cwd=tmp, stdout=log,
                            stderr=subprocess.STDOUT, env=env())  # fmt: skip
    log.close()
    server = Server(port, db, proc, "DCMQR")
    try:
        wait_port(port, proc)
    except RuntimeError:
        server.stop()
        raise
    return server


_REQUIRED = ("SOPInstanceUID", "StudyInstanceUID", "SOPClassUID")


def one_per_instance(files: list[Path], dest: Path) -> list[Path]:
    """One copy under ``dest`` of each storable instance of ``files`` (a SOP Class, SOP Instance
    and Study Instance UID; no DICOMDIR): several corpus files carry the same instance in other
    encodings, and archives differ on which copy they keep. A complete, uncompressed copy is
    preferred."""
    by_uid: dict[str, list[Path]] = {}
    for p in files:
        ds = read(p, stop_before_pixels=True)
        if ds is None or "DirectoryRecordSequence" in ds:
            continue
        with warnings.catch_warnings():  # the corpus's invalid UIDs
            warnings.simplefilter("ignore")
            uids = [str(ds.get(k, "")) for k in _REQUIRED]
        if all(uids):
            by_uid.setdefault(uids[0], []).append(p)

    def rank(p: Path) -> tuple[bool, bool, str]:
        ds = read(p)
        meta = getattr(ds, "file_meta", None)
        ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
        return ds is None, ts not in NATIVE, p.name

    dest.mkdir(parents=True)
    out = []
    for n, (_, paths) in enumerate(sorted(by_uid.items())):
        best = min(paths, key=rank)
        out.append(dest / f"{n:04d}_{best.name}")
        shutil.copyfile(best, out[-1])
    return out


@dataclass
class Answer:
    """What one C-FIND came back with: the final status and the pending responses."""

    status: str
    responses: list[Dataset] = field(default_factory=list)
    log: str = ""

    @property
    def success(self) -> bool:
        return self.status == "Success"


_FINAL = re.compile(r"Received Final Find Response \(([^)]*)\)")


def encoded(value: str, keyword: str, charset: str | None) -> bytes:
    """``value`` in ``charset`` as a peer would send it: by pydicom's codecs, person names
    of an ISO 2022 character set with the escape sequences reset at each delimiter
    (PS3.5 6.1.2.5.3)."""
    if not charset:
        return value.encode("ascii")
    encodings = convert_encodings(charset.split("\\"))
    if "ISO 2022" in charset and dictionary_VR(keyword) == "PN":
        return PersonName(value, encodings).encode()
    return encode_string(value, encodings)


def findscu(port: int, aet: str, model: str, level: str, keys: dict[str, str],
            charset: str | None = None) -> Answer:  # fmt: skip
    """DCMTK ``findscu`` (``model``: ``-P`` or ``-S``) with ``keys`` by keyword, their values
    encoded in ``charset`` (sent as the request's Specific Character Set) on the command line."""
    with tempfile.TemporaryDirectory() as d:
        args = [FINDSCU, "-v", model, "-aec", aet, "-X", "-od", d,
                "-k", f"QueryRetrieveLevel={level}"]  # fmt: skip
        if charset:
            args += ["-k", f"SpecificCharacterSet={charset}"]
        argv = [a.encode() for a in args]
        for k, v in keys.items():
            argv += [b"-k", k.encode() + b"=" + encoded(v, k, charset) if v else k.encode()]
        r = subprocess.run([*argv, b"127.0.0.1", str(port).encode()], capture_output=True,
                           timeout=60, env=env())  # fmt: skip
        log = (r.stdout + r.stderr).decode("utf-8", "replace")
        final = _FINAL.search(log)
        status = final.group(1) if final else f"no final response (exit {r.returncode})"
        responses: list[Dataset] = []
        for f in sorted(Path(d).glob("rsp*.dcm")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                responses.append(pydicom.dcmread(f, force=True))
        return Answer(status, responses, log)
