"""pynetdicom's own documentation examples run on dicomnet after ``s/pynetdicom/dicomnet/g``.

The claim under test: *a pynetdicom program runs after ``sed s/pynetdicom/dicomnet/`` and
nothing else.* The programs are the ``.. code-block:: python`` blocks of pynetdicom's
``docs/examples/*.rst``, read at test time from pynetdicom's sdist (``scripts/test`` downloads it
into the git-ignored ``.cache/pynetdicom-sdist/``; ``DICOMNET_PYNETDICOM_SDIST`` may name the
``.tar.gz``, the extracted sdist or its ``docs/examples`` directory instead). No pynetdicom code
is kept in this repository. Without the sdist every test here skips.

Each block, ``<page>-<n>`` (the n-th Python block of ``<page>.rst``, from 1), is changed by the
sed and then only by what any user of the example would also change (in its run function below,
the less obvious ones also in its :class:`Spec` note; every replaced text must be in the block,
so that changed docs show up):

* the port ``11112`` (and ``11120``) -> a free loopback port;
* placeholder paths (``'path/to/dataset'``, ``'/path/to/directory'``, ...) -> copies of pydicom's
  test files in ``tmp_path``, patient / study / series values set to the ones the examples ask
  for (``CITIZEN^Jan``, ``1234567``, ``1.2.3``, ``1.2.3.4``);
* functions the example says the user writes (``get_known_aet()``, ``create_template()``,
  ``my_code.create_attribute_list()``) -> small implementations, imported by one added line;
* doc slips that fail on pynetdicom too (noted per example).

Each runnable example then runs as its own process against a real peer: DCMTK (``storescp``,
``dcmqrscp``, ``wlmscpfs``; ``echoscu``, ``storescu``, ``findscu``, ``getscu``, ``movescu``) or
the real pynetdicom (the matching example of the same docs, unchanged but for the port and
paths, or ``pynetdicom_print_scp.py``). SCP examples are driven by a client and killed at the
end. What the example prints or does is checked. Fragments (no connection) are executed and must
not raise.

``SPECS`` is the table of examples: id, kind (SCU, SCP, fragment, continuation), peer, note.

``DICOMNET_EXAMPLES_LIB=pynetdicom`` runs the examples without the sed, on pynetdicom itself:
a check of this harness (everything passes there).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import dcmtk_tool, free_port

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
SDIST_VERSION = "3.0.4"
CACHE = ROOT / ".cache" / "pynetdicom-sdist"
LIB = os.environ.get("DICOMNET_EXAMPLES_LIB", "dicomnet")
HERE = Path(__file__).resolve().parent
PRINT_SCP = HERE / "pynetdicom_print_scp.py"

# the values the QR / worklist examples query for
PATIENT_NAME = "CITIZEN^Jan"
PATIENT_ID = "1234567"
STUDY_UID = "1.2.3"
SERIES_UID = "1.2.3.4"

DCMTK_TOOLS = ("storescp", "dcmqrscp", "wlmscpfs", "echoscu", "storescu", "findscu", "getscu",
               "movescu")  # fmt: skip
CLIENT_TIMEOUT = 15.0  # seconds for one client process (example or peer) to finish
DCMTK_TIMEOUTS = ["-to", "5", "-ta", "5", "-td", "5"]


# --------------------------------------------------------------------------------------------
# Reading the examples out of the sdist


def _examples_from_dir(d: Path) -> dict[str, str] | None:
    for candidate in (d, d / "docs" / "examples", *sorted(d.glob("pynetdicom-*/docs/examples"))):
        if (candidate / "verification.rst").is_file():
            return {p.stem: p.read_text() for p in sorted(candidate.glob("*.rst"))}
    for tarball in sorted(d.glob("pynetdicom-*.tar.gz"), reverse=True):
        found = _examples_from_tar(tarball)
        if found:
            return found
    return None


def _examples_from_tar(path: Path) -> dict[str, str] | None:
    try:
        with tarfile.open(path) as tar:
            out = {}
            for member in tar.getmembers():
                parts = member.name.split("/")
                if parts[-3:-1] == ["docs", "examples"] and parts[-1].endswith(".rst"):
                    f = tar.extractfile(member)
                    if f is not None:
                        out[parts[-1][:-4]] = f.read().decode()
            return out or None
    except (OSError, tarfile.TarError):
        return None


def rst_pages() -> tuple[dict[str, str] | None, str]:
    """The ``docs/examples`` pages (name -> text) and where they came from, or None and why."""
    env = os.environ.get("DICOMNET_PYNETDICOM_SDIST")
    source = Path(env) if env else CACHE
    if source.is_file():
        pages = _examples_from_tar(source)
    elif source.is_dir():
        pages = _examples_from_dir(source)
    else:
        pages = None
    if pages is None:
        if env:
            return None, f"DICOMNET_PYNETDICOM_SDIST={env}: no pynetdicom docs/examples/*.rst there"
        return None, (f"pynetdicom {SDIST_VERSION}'s sdist is not in {source} (scripts/test "
                      "downloads it; offline?)")  # fmt: skip
    return pages, str(source)


_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block::\s*python\s*$")


def code_blocks(rst: str) -> list[list[str]]:
    """The raw (still indented) lines of each ``.. code-block:: python`` of ``rst``."""
    lines = rst.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        i += 1
        if not m:
            continue
        indent = len(m.group(1))
        body = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            body.append(lines[i])
            i += 1
        # directive options (":linenos:") come first, before the blank line
        while body and body[0].strip().startswith(":"):
            body.pop(0)
        blocks.append(body)
    return blocks


def to_source(raw: list[str]) -> tuple[str, bool]:
    """The block as Python source (dedented), and whether it had to be re-indented: a few
    blocks mix 3- and 4-space indentation at their top level (an IndentationError for anyone
    copying them); such a block gets its 3-space lines moved to 4 spaces, as a user would."""
    src = textwrap.dedent("\n".join(raw)).strip("\n") + "\n"
    try:
        compile(src, "example.py", "exec")
        return src, False
    except IndentationError:
        fixed = [(" " + line) if re.match(r"^ {3}\S", line) else line for line in raw]
        return textwrap.dedent("\n".join(fixed)).strip("\n") + "\n", True
    except SyntaxError:
        return src, False


@dataclass
class Examples:
    source: str
    code: dict[str, str]  # id -> source
    reindented: set[str]


def load_examples() -> tuple[Examples | None, str]:
    pages, where = rst_pages()
    if pages is None:
        return None, where
    code, reindented = {}, set()
    for page, text in sorted(pages.items()):
        for n, raw in enumerate(code_blocks(text), 1):
            ex_id = f"{page}-{n}"
            code[ex_id], fixed = to_source(raw)
            if fixed:
                reindented.add(ex_id)
    return Examples(where, code, reindented), ""


# --------------------------------------------------------------------------------------------
# Processes


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def last_exception(text: str) -> str | None:
    """``file:line: code -> ExceptionType: message`` of the last traceback in ``text``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last):" in line]
    if not starts:
        return None
    tb = lines[starts[-1] + 1 :]
    where = ""
    for i, line in enumerate(tb):
        m = re.match(r'\s*File "([^"]+)", line (\d+)', line)
        if m and ("example" in Path(m.group(1)).name or "peer" in Path(m.group(1)).name):
            code = tb[i + 1].strip() if i + 1 < len(tb) else ""
            where = f"{Path(m.group(1)).name}:{m.group(2)}: {code} -> "
    exc = next((line for line in tb if line and not line.startswith((" ", "\t"))), "?")
    return where + exc


class Proc:
    """A process with its stdout / stderr in files (never a full pipe)."""

    def __init__(self, name: str, argv: Sequence[str], cwd: Path, logs: Path, *,
                 stdin: int | None = None) -> None:  # fmt: skip
        self.name = name
        self.out_path = logs / f"{name}.out"
        self.err_path = logs / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.popen = subprocess.Popen(
                list(argv), cwd=cwd, stdout=out, stderr=err, env=_env(),
                stdin=subprocess.DEVNULL if stdin is None else stdin,
            )  # fmt: skip
        self.timed_out = False

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    @property
    def rc(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.stop()
            return None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            self.popen.stdin.close()

    def describe(self) -> str:
        state = ("timed out (killed)" if self.timed_out
                 else "running" if self.rc is None else f"exit {self.rc}")  # fmt: skip
        exc = last_exception(self.err) or last_exception(self.out)
        head = f"[{self.name}: {state}" + (f"; raised {exc}" if exc else "") + "]"
        tail_err = "\n".join(self.err.splitlines()[-25:])
        tail_out = "\n".join(self.out.splitlines()[-15:])
        return f"{head}\n--- stdout (tail)\n{tail_out}\n--- stderr (tail)\n{tail_err}"


def _listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (from /proc: no probe connection, which an
    SCP would log as an aborted association; elsewhere, a connection)."""
    if not os.path.exists("/proc/net/tcp"):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[1].endswith(want) and cols[3] == "0A":
                        return True
        except (OSError, StopIteration):
            continue
    return False


class Failed(AssertionError):
    pass


@dataclass
class Harness:
    """What one example's run gets: its tmp dir, processes (all stopped at the end), data."""

    tmp: Path
    examples: Examples
    ex_id: str
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.data = self.tmp / "data"
        self.data.mkdir()

    # ---- data

    def ct(self) -> Path:
        """A copy of pydicom's CT_small.dcm."""
        dest = self.data / "CT_small.dcm"
        if not dest.exists():
            shutil.copyfile(get_testdata_file("CT_small.dcm"), dest)
        return dest

    def mr(self) -> Path:
        dest = self.data / "MR_small.dcm"
        if not dest.exists():
            shutil.copyfile(get_testdata_file("MR_small.dcm"), dest)
        return dest

    def qr_dir(self) -> Path:
        """A directory with one instance of the patient / study / series the QR examples
        query for: CT_small with those values."""
        d = self.data / "qr"
        if not d.exists():
            d.mkdir()
            ds = dcmread(get_testdata_file("CT_small.dcm"))
            ds.PatientName = PATIENT_NAME
            ds.PatientID = PATIENT_ID
            ds.StudyInstanceUID = STUDY_UID
            ds.SeriesInstanceUID = SERIES_UID
            ds.save_as(d / "citizen_ct.dcm", enforce_file_format=True)
        return d

    def qr_instance(self) -> Dataset:
        return dcmread(self.qr_dir() / "citizen_ct.dcm")

    # ---- programs

    def program(self, ex_id: str, lib: str, subs: dict[str, str] | None = None,
                prepend: str = "") -> str:  # fmt: skip
        """Example ``ex_id`` as run on ``lib`` ("dicomnet": after the sed), with ``subs``
        (each must be in the block) and ``prepend`` (an added import line) before it."""
        src = self.examples.code[ex_id]
        if lib == "dicomnet":
            src = src.replace("pynetdicom", "dicomnet")
        for old, new in (subs or {}).items():
            if old not in src:
                raise Failed(f"docs changed: {old!r} not in {ex_id}")
            src = src.replace(old, new)
        return prepend + src

    def start(self, name: str, argv: Sequence[str], cwd: Path | None = None, *,
              stdin: int | None = None) -> Proc:  # fmt: skip
        p = Proc(name, argv, cwd or self.tmp, self.logs, stdin=stdin)
        self.procs.append(p)
        return p

    def start_python(self, name: str, code: str, cwd: Path, *,
                     stdin: int | None = None) -> Proc:  # fmt: skip
        cwd.mkdir(parents=True, exist_ok=True)
        script = cwd / f"{name}.py"
        script.write_text(code)
        return self.start(name, [sys.executable, script.name], cwd, stdin=stdin)

    def run_python(self, name: str, code: str, cwd: Path) -> Proc:
        p = self.start_python(name, code, cwd)
        p.wait(CLIENT_TIMEOUT)
        return p

    def dcmtk(self, tool: str) -> str:
        path = dcmtk_tool(tool)
        if path is None:
            pytest.skip(f"DCMTK {tool} not installed")
        return path

    def run_dcmtk(self, tool: str, args: Sequence[str], cwd: Path | None = None) -> Proc:
        p = self.start(tool, [self.dcmtk(tool), *args], cwd)
        p.wait(CLIENT_TIMEOUT)
        return p

    def wait_listening(self, port: int, proc: Proc, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _listening(port):
                return
            if proc.rc is not None:
                self.fail(f"{proc.name} exited before listening on {port}", proc)
            time.sleep(0.02)
        self.fail(f"{proc.name} not listening on {port} after {timeout} s", proc)

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()

    # ---- checks

    def fail(self, what: str, *procs: Proc) -> None:
        """Stop everything, raise with ``procs``' output and the others' state."""
        self.stop_all()
        shown = list(dict.fromkeys(procs or self.procs))
        others = [p.describe().splitlines()[0] for p in self.procs if p not in shown]
        raise Failed("\n\n".join([what, *(p.describe() for p in shown), *others]))

    def check(self, ok: object, what: str, *procs: Proc) -> None:
        if not ok:
            self.fail(what, *procs)

    def ran_ok(self, p: Proc, *also: Proc) -> None:
        """``p`` exited 0. (A traceback it merely logged does not count: pynetdicom itself logs
        one in display-1, from its own debug handler.)"""
        self.check(p.rc == 0, f"{p.name} did not run cleanly", p, *also)

    def printed(self, p: Proc, *lines: str) -> None:
        """``p`` exited 0 and printed ``lines`` (in that order) to stdout."""
        self.ran_ok(p)
        out = p.out.splitlines()
        pos = 0
        for want in lines:
            try:
                pos = out.index(want, pos) + 1
            except ValueError:
                self.fail(f"{p.name} did not print {want!r} (in order {lines})", p)

    def still_serving(self, scp: Proc, *clients: Proc) -> None:
        self.check(scp.rc is None, f"{scp.name} (an SCP) exited", scp, *clients)


@dataclass
class Spec:
    ex_id: str  # the test id: the block's id, or "<block>+fix" for a block with a doc slip fixed
    kind: str  # "SCU", "SCP", "fragment", "continuation"
    peer: str
    run: Callable[[Harness], None]
    note: str = ""
    timeout: int = 40

    @property
    def block(self) -> str:
        return self.ex_id.split("+")[0]


SPECS: dict[str, Spec] = {}


def example(ex_id: str, kind: str, peer: str, note: str = ""
            ) -> Callable[[Callable[[Harness], None]], Callable[[Harness], None]]:  # fmt: skip
    def register(fn: Callable[[Harness], None]) -> Callable[[Harness], None]:
        SPECS[ex_id] = Spec(ex_id, kind, peer, fn, note)
        return fn

    return register


def _order(ex_id: str) -> tuple[str, int, str]:
    page, _, rest = ex_id.rpartition("-")
    n, _, fix = rest.partition("+")
    return page, int(n), fix


def port_subs(port: int, old: str = "11112") -> dict[str, str]:
    return {old: str(port)}


def q(path: Path) -> str:
    return repr(str(path))


# --------------------------------------------------------------------------------------------
# Peers


def start_storescp(h: Harness, aet: str | None = None) -> tuple[Proc, int, Path]:
    port = free_port()
    out = h.tmp / f"storescp_{aet or 'any'}"
    out.mkdir()
    args = ["-v", "-od", str(out), *(["-aet", aet] if aet else []), str(port)]
    p = h.start(f"storescp_{aet or 'any'}", [h.dcmtk("storescp"), *args])
    h.wait_listening(port, p)
    return p, port, out


def start_dcmqrscp(h: Harness, hosts: dict[str, int] | None = None) -> tuple[Proc, int]:
    """DCMTK's dcmqrscp with the QR instance indexed, its storage area called ``ANY-SCP``
    (pynetdicom's default Called AE Title) and ``hosts`` (AE title -> port) as move
    destinations."""
    exe = h.dcmtk("dcmqrscp")
    index = h.dcmtk("dcmqridx")
    db = h.tmp / "dcmqr"
    db.mkdir()
    inst = db / "citizen_ct.dcm"
    shutil.copyfile(h.qr_dir() / "citizen_ct.dcm", inst)
    subprocess.run([index, str(db), str(inst)], check=True, capture_output=True)
    port = free_port()
    table = "".join(f"{aet} = ({aet}, 127.0.0.1, {p})\n" for aet, p in (hosts or {}).items())
    cfg = h.tmp / "dcmqrscp.cfg"
    cfg.write_text(f"NetworkTCPPort = {port}\nMaxPDUSize = 65536\nMaxAssociations = 16\n\n"
                   f"HostTable BEGIN\n{table}HostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
                   f"AETable BEGIN\nANY-SCP {db} RW (100, 1024mb) ANY\nAETable END\n")  # fmt: skip
    p = h.start("dcmqrscp", [exe, "-v", "-s", "-c", str(cfg), str(port)], h.tmp)
    h.wait_listening(port, p)
    return p, port


def write_worklist(d: Path) -> None:
    """One worklist item for the example's query (station CTSCANNER, 2018-10-05, CT)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.AccessionNumber = "00001"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = STUDY_UID
    ds.RequestedProcedureDescription = "CT HEAD"
    ds.RequestedProcedureID = "RP1"
    ds.RequestedProcedurePriority = "LOW"
    ds.ReferringPhysicianName = "WHO^DR"
    sps = Dataset()
    sps.Modality = "CT"
    sps.ScheduledStationAETitle = "CTSCANNER"
    sps.ScheduledProcedureStepStartDate = "20181005"
    sps.ScheduledProcedureStepStartTime = "090000"
    sps.ScheduledPerformingPhysicianName = "SMITH"
    sps.ScheduledProcedureStepDescription = "HEAD"
    sps.ScheduledProcedureStepID = "SPS1"
    sps.ScheduledStationName = "CT1"
    sps.ScheduledProcedureStepLocation = "ROOM1"
    ds.ScheduledProcedureStepSequence = [sps]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.31"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    d.mkdir(parents=True)
    (d / "lockfile").write_bytes(b"")
    ds.save_as(d / "wklist1.wl", enforce_file_format=True)


USER_CODE = '''"""What the examples leave to their user (written by the test harness)."""
from pydicom.dataset import Dataset

KNOWN = {known!r}


def get_known_aet():
    """qr_move: AE title -> (address, port) of the move destinations."""
    return KNOWN


def create_template(instance, query):
    """relevant_patient: the response identifier for the requested template."""
    ds = Dataset()
    ds.PatientName = instance.PatientName
    ds.PatientID = instance.PatientID
    ds.ContentTemplateSequence = query.ContentTemplateSequence
    return ds


def create_attribute_list(attr):
    """display (as my_code.create_attribute_list): the N-GET attribute list."""
    ds = Dataset()
    ds.Manufacturer = "DICOMNET-TEST"
    return ds
'''


def user_code(d: Path, known: dict[str, tuple[str, int]] | None = None) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "_user_code.py").write_text(USER_CODE.format(known=known or {}))
    (d / "my_code.py").write_text("from _user_code import create_attribute_list  # noqa\n")


USER_IMPORT = "from _user_code import {}  # harness: the function the example leaves to its user\n"


def stored_instance_uids(d: Path) -> list[str]:
    out = []
    for p in sorted(d.iterdir()):
        if p.is_file() and p.suffix not in (".py",):
            try:
                out.append(str(dcmread(p).SOPInstanceUID))
            except Exception:  # not a DICOM file
                continue
    return out


# --------------------------------------------------------------------------------------------
# The examples


def run_fragment(h: Harness, prepend: str = "") -> None:
    p = h.run_python("example", h.program(h.ex_id, LIB, prepend=prepend), h.tmp / "run")
    h.ran_ok(p)


DATASET_IMPORT = "from pydicom.dataset import Dataset  # harness: the page's import\n"

for _id in ("verification-2", "storage-2"):
    example(_id, "fragment", "none (exec'd)")(run_fragment)

for _id in ("qr_find-2", "qr_find-3", "qr_get-2", "qr_move-3", "relevant_patient-2"):
    example(_id, "fragment", "none (exec'd)",
            "builds an Identifier only; uses Dataset without importing it: the page's import is "
            "prepended")(lambda h: run_fragment(h, DATASET_IMPORT))  # fmt: skip


@example("verification-1", "SCU", "DCMTK storescp")
def _verification_scu(h: Harness) -> None:
    _, port, _ = start_storescp(h)
    p = h.run_python("example", h.program(h.ex_id, LIB, port_subs(port)), h.tmp / "run")
    h.printed(p, "C-ECHO request status: 0x0000")


@example("verification-3", "SCP", "DCMTK echoscu",
         "doc block mixes 3- and 4-space indentation: re-indented")  # fmt: skip
@example("verification-4", "SCP", "DCMTK echoscu")
def _verification_scp(h: Harness) -> None:
    port = free_port()
    scp = h.start_python("example", h.program(h.ex_id, LIB, port_subs(port)), h.tmp / "run")
    h.wait_listening(port, scp)
    echo = h.run_dcmtk("echoscu", ["-v", *DCMTK_TIMEOUTS, "127.0.0.1", str(port)])
    h.check(echo.rc == 0 and "Received Echo Response (Success)" in echo.err + echo.out,
            "echoscu got no successful C-ECHO response", echo, scp)  # fmt: skip
    h.still_serving(scp, echo)


@example("storage-1", "SCU", "DCMTK storescp")
def _storage_scu(h: Harness) -> None:
    scp, port, out = start_storescp(h)
    subs = {**port_subs(port), "'path/to/dataset'": q(h.ct())}
    p = h.run_python("example", h.program(h.ex_id, LIB, subs), h.tmp / "run")
    h.printed(p, "C-STORE request status: 0x0000")
    scp.stop()
    want = str(dcmread(h.ct()).SOPInstanceUID)
    h.check(stored_instance_uids(out) == [want], "storescp did not store the CT", scp, p)


@example("storage-3", "SCU", "DCMTK storescp")
def _storage_scu_contexts(h: Harness) -> None:
    scp, port, _ = start_storescp(h)
    p = h.run_python("example", h.program(h.ex_id, LIB, port_subs(port)), h.tmp / "run")
    h.ran_ok(p, scp)
    scp.stop()
    log = scp.out + scp.err
    h.check(log.count("Association Acknowledged") == 2 and log.count("Association Release") == 2,
            "storescp did not see two associations, each released", scp, p)  # fmt: skip


def _send_ct(h: Harness, port: int) -> Proc:
    return h.run_dcmtk("storescu", ["-v", *DCMTK_TIMEOUTS, "127.0.0.1", str(port), str(h.ct())])


def _stored_ok(h: Harness, scu: Proc, scp: Proc) -> None:
    h.check(scu.rc == 0 and "Received Store Response (Success)" in scu.err + scu.out,
            "storescu got no successful C-STORE response", scu, scp)  # fmt: skip


@example("storage-4", "SCP", "DCMTK storescu")
@example("storage-5", "SCP", "DCMTK storescu")
@example("storage-6", "SCP", "DCMTK storescu")
def _storage_scp(h: Harness) -> None:
    port = free_port()
    run = h.tmp / "run"
    scp = h.start_python("example", h.program(h.ex_id, LIB, port_subs(port)), run)
    h.wait_listening(port, scp)
    scu = _send_ct(h, port)
    _stored_ok(h, scu, scp)
    h.still_serving(scp, scu)
    want = str(dcmread(h.ct()).SOPInstanceUID)
    if h.ex_id == "storage-4":  # saved as <SOP Instance UID>, a Part 10 file
        f = run / want
        h.check(f.is_file() and dcmread(f).file_meta.TransferSyntaxUID, "no file " + want, scp)
    elif h.ex_id == "storage-5":  # a uuid4-named Part 10 file
        h.check(stored_instance_uids(run) == [want], "no Part 10 file of the CT written", scp)


@example("storage-7", "SCP", "DCMTK storescu",
         "doc block calls time.sleep(60) without importing time (NameError on pynetdicom too): "
         "the 60 s sleep is replaced by waiting for stdin to close, then scp.shutdown() runs")
def _storage_scp_nonblocking(h: Harness) -> None:
    port = free_port()
    subs = {**port_subs(port), "time.sleep(60)": "__import__('sys').stdin.read()  # harness"}
    scp = h.start_python("example", h.program(h.ex_id, LIB, subs), h.tmp / "run",
                         stdin=subprocess.PIPE)  # fmt: skip
    h.wait_listening(port, scp)
    scu = _send_ct(h, port)
    _stored_ok(h, scu, scp)
    h.still_serving(scp, scu)
    assert scp.popen.stdin is not None
    scp.popen.stdin.close()  # the "Zzzz" is over: shutdown() and exit
    scp.wait(10)
    h.ran_ok(scp, scu)


@example("qr_find-1", "SCU", "DCMTK dcmqrscp")
def _find_scu(h: Harness) -> None:
    _, port = start_dcmqrscp(h)
    p = h.run_python("example", h.program(h.ex_id, LIB, port_subs(port)), h.tmp / "run")
    h.printed(p, "C-FIND query status: 0xff00", "C-FIND query status: 0x0000")


@example("qr_find-4", "SCP", "DCMTK findscu",
         "doc block mixes 3- and 4-space indentation: re-indented")  # fmt: skip
def _find_scp(h: Harness) -> None:
    port = free_port()
    subs = {**port_subs(port), "'/path/to/directory'": q(h.qr_dir())}
    scp = h.start_python("example", h.program(h.ex_id, LIB, subs), h.tmp / "run")
    h.wait_listening(port, scp)
    rsp = h.tmp / "findscu"
    rsp.mkdir()
    find = h.run_dcmtk("findscu", ["-v", *DCMTK_TIMEOUTS, "-P", "-X", "-k",
                                   "QueryRetrieveLevel=PATIENT", "-k", f"PatientName={PATIENT_NAME}",
                                   "127.0.0.1", str(port)], rsp)  # fmt: skip
    names = [str(dcmread(f).PatientName) for f in sorted(rsp.glob("rsp*.dcm"))]
    h.check(find.rc == 0 and names == [PATIENT_NAME],
            f"findscu got {names}, not one {PATIENT_NAME} match", find, scp)  # fmt: skip
    h.still_serving(scp, find)


@example("qr_get-1", "SCU", "DCMTK dcmqrscp")
def _get_scu(h: Harness) -> None:
    _, port = start_dcmqrscp(h)
    run = h.tmp / "run"
    p = h.run_python("example", h.program(h.ex_id, LIB, port_subs(port)), run)
    h.printed(p, "C-GET query status: 0x0000")
    want = str(h.qr_instance().SOPInstanceUID)
    h.check((run / want).is_file(), f"the C-GET's C-STORE did not write {want}", p)


@example("qr_get-3", "SCP", "DCMTK getscu")
def _get_scp(h: Harness) -> None:
    port = free_port()
    subs = {**port_subs(port), "'/path/to/directory'": q(h.qr_dir())}
    scp = h.start_python("example", h.program(h.ex_id, LIB, subs), h.tmp / "run")
    h.wait_listening(port, scp)
    out = h.tmp / "getscu"
    out.mkdir()
    get = h.run_dcmtk("getscu", ["-v", *DCMTK_TIMEOUTS, "-P", "-k", "QueryRetrieveLevel=PATIENT",
                                 "-k", f"PatientID={PATIENT_ID}", "-od", str(out),
                                 "127.0.0.1", str(port)])  # fmt: skip
    got = stored_instance_uids(out)
    h.check(get.rc == 0 and got == [str(h.qr_instance().SOPInstanceUID)],
            f"getscu received {got}", get, scp)  # fmt: skip
    h.still_serving(scp, get)


@example("qr_move-1", "SCU", "DCMTK dcmqrscp (move destination: DCMTK storescp STORE_SCP)")
def _move_scu(h: Harness) -> None:
    store, sport, out = start_storescp(h, "STORE_SCP")
    _, port = start_dcmqrscp(h, {"STORE_SCP": sport})
    p = h.run_python("example", h.program(h.ex_id, LIB, port_subs(port)), h.tmp / "run")
    h.printed(p, "C-MOVE query status: 0x0000")
    store.stop()
    h.check(stored_instance_uids(out) == [str(h.qr_instance().SOPInstanceUID)],
            "STORE_SCP did not receive the instance", store, p)  # fmt: skip


@example("qr_move-2", "SCU", "DCMTK dcmqrscp (move destination: the example's own SCP)",
         "port 11120 of the example's Storage SCP -> a free port too")
def _move_scu_own_scp(h: Harness) -> None:
    sport = free_port()
    _, port = start_dcmqrscp(h, {"OUR_STORE_SCP": sport})
    subs = {**port_subs(port), **port_subs(sport, "11120")}
    p = h.run_python("example", h.program(h.ex_id, LIB, subs), h.tmp / "run")
    h.printed(p, "C-MOVE query status: 0xff00", "C-MOVE query status: 0x0000")


@example("qr_move-4", "SCP", "DCMTK movescu (destination: DCMTK storescp STORE_SCP)",
         "get_known_aet() (left to the user) -> {'STORE_SCP': ('127.0.0.1', port)}")
def _move_scp(h: Harness) -> None:
    store, sport, out = start_storescp(h, "STORE_SCP")
    port = free_port()
    run = h.tmp / "run"
    user_code(run, {"STORE_SCP": ("127.0.0.1", sport)})
    subs = {**port_subs(port), "'/path/to/directory'": q(h.qr_dir())}
    code = h.program(h.ex_id, LIB, subs, prepend=USER_IMPORT.format("get_known_aet"))
    scp = h.start_python("example", code, run)
    h.wait_listening(port, scp)
    move = h.run_dcmtk("movescu", ["-v", *DCMTK_TIMEOUTS, "-P", "-aem", "STORE_SCP",
                                   "-k", "QueryRetrieveLevel=PATIENT",
                                   "-k", f"PatientID={PATIENT_ID}", "127.0.0.1", str(port)])  # fmt: skip
    h.check(move.rc == 0 and "Received Final Move Response (Success)" in move.err + move.out,
            "movescu got no successful final C-MOVE response", move, scp)  # fmt: skip
    h.still_serving(scp, move)
    store.stop()
    h.check(stored_instance_uids(out) == [str(h.qr_instance().SOPInstanceUID)],
            "STORE_SCP did not receive the instance", store, scp)  # fmt: skip


@example("basic_worklist-1", "SCU", "DCMTK wlmscpfs")
def _worklist_scu(h: Harness) -> None:
    wl = h.tmp / "worklists"
    write_worklist(wl / "ANY-SCP")  # pynetdicom's default Called AE Title
    port = free_port()
    scp = h.start("wlmscpfs", [h.dcmtk("wlmscpfs"), "-v", "-s", "-dfp", str(wl), str(port)])
    h.wait_listening(port, scp)
    p = h.run_python("example", h.program(h.ex_id, LIB, port_subs(port)), h.tmp / "run")
    h.printed(p, "C-FIND query status: 0xff00", "C-FIND query status: 0x0000")


# The examples whose peer is the matching example of the same docs, on the real pynetdicom:
# test id -> (the SCU's blocks, run as one program; the SCP's block; which side is under test;
# what the SCU prints)
_FIND = ["C-FIND query status: 0xff00", "C-FIND query status: 0x0000"]
_MPPS = ["N-CREATE request status: 0x0000", "N-SET request status: 0x0000",
         "Final N-SET request status: 0x0000"]  # fmt: skip
PAIRS = {
    "relevant_patient-1": (["relevant_patient-1"], "relevant_patient-3", "scu", _FIND),
    "relevant_patient-3": (["relevant_patient-1"], "relevant_patient-3", "scp", _FIND),
    "display-1": (["display-1"], "display-2", "scu", ["N-GET request status: 0x0000"]),
    "display-2": (["display-1"], "display-2", "scp", ["N-GET request status: 0x0000"]),
    "mpps-1": (["mpps-1"], "mpps-3", "scu", _MPPS[:1]),
    "mpps-2": (["mpps-1", "mpps-2"], "mpps-3", "scu", _MPPS),
    "mpps-3": (["mpps-1", "mpps-2"], "mpps-3", "scp", _MPPS),
}


def _pair_program(h: Harness, ex_ids: list[str], lib: str, port: int, cwd: Path) -> str:
    """The blocks ``ex_ids`` as one program on ``lib``, with the harness's changes (the same
    for both libraries)."""
    user_code(cwd)
    parts = []
    for ex_id in ex_ids:
        subs = port_subs(port) if "11112" in h.examples.code[ex_id] else {}
        prepend = ""
        if ex_id == "relevant_patient-3":
            subs["'/path/to/directory'"] = q(h.qr_dir())
            prepend = USER_IMPORT.format("create_template")
        parts.append(h.program(ex_id, lib, subs, prepend=prepend))
    return "\n".join(parts)


def _run_pair(h: Harness) -> None:
    scu_ids, scp_id, under_test, expect = PAIRS[h.ex_id]
    port = free_port()
    scu_lib, scp_lib = (LIB, "pynetdicom") if under_test == "scu" else ("pynetdicom", LIB)
    scp_name, scu_name = ("peer", "example") if under_test == "scu" else ("example", "peer")
    scp_dir, scu_dir = h.tmp / "scp", h.tmp / "scu"
    scp = h.start_python(scp_name, _pair_program(h, [scp_id], scp_lib, port, scp_dir), scp_dir)
    h.wait_listening(port, scp)
    scu = h.run_python(scu_name, _pair_program(h, scu_ids, scu_lib, port, scu_dir), scu_dir)
    h.printed(scu, *expect)
    if scu_ids == ["display-1"]:
        h.check("DICOMNET-TEST" in scu.out, "the N-GET attribute list was not printed", scu)
    h.still_serving(scp, scu)


example("relevant_patient-1", "SCU", "pynetdicom: relevant_patient-3",
        "the peer needs create_template() (left to the user)")(_run_pair)  # fmt: skip
example("relevant_patient-3", "SCP", "pynetdicom: relevant_patient-1",
        "create_template() (left to the user) -> the patient's name/ID and the template")(
    _run_pair)  # fmt: skip
example("display-1", "SCU", "pynetdicom: display-2",
        "the peer needs my_code.create_attribute_list() (left to the user)")(_run_pair)  # fmt: skip
example("display-2", "SCP", "pynetdicom: display-1",
        "my_code.create_attribute_list() (left to the user) -> Manufacturer")(_run_pair)  # fmt: skip
example("mpps-1", "SCU", "pynetdicom: mpps-3")(_run_pair)
example("mpps-2", "continuation", "pynetdicom: mpps-3",
        "continues mpps-1 ('Continuing on from the previous example'): run as mpps-1 + mpps-2")(
    _run_pair)  # fmt: skip
example("mpps-3", "SCP", "pynetdicom: mpps-1 + mpps-2")(_run_pair)


@example("print-1", "SCU", "pynetdicom: tests/compat/pynetdicom_print_scp.py",
         "the example's printer check is inverted: with a NORMAL printer (and with any other "
         "answer) it prints 'Failed to get the printer status' and exits after the N-GET, on "
         "pynetdicom too; the rest (film session/box, N-SET, N-ACTION, N-DELETE) is unreachable")
def _print_scu(h: Harness) -> None:
    port = free_port()
    scp = h.start("peer", [sys.executable, str(PRINT_SCP), str(port)], h.tmp)
    h.wait_listening(port, scp)
    subs = {**port_subs(port), "'path/to/file.dcm'": q(h.mr())}
    if h.ex_id.endswith("+fix"):
        subs[PRINTER_CHECK] = PRINTER_CHECK_FIXED
        subs[N_DELETE] = N_DELETE_FIXED
    p = h.run_python("example", h.program("print-1", LIB, subs), h.tmp / "run")
    if not h.ex_id.endswith("+fix"):
        h.printed(p, "Failed to get the printer status")
        h.check(scp.out.splitlines() == [f"N-GET {PRINTER}"],
                "the print SCP did not get (only) the Printer N-GET", scp, p)  # fmt: skip
        return
    h.printed(p, "Printer ready", "Film Session created", "Film Box created",
              "Updated the Image Box with the image data", "Print command sent successfully")
    h.check(scp.out.splitlines() == [f"N-GET {PRINTER}", f"N-CREATE {FILM_SESSION}",
                                     f"N-CREATE {FILM_BOX}", f"N-SET {IMAGE_BOX}",
                                     f"N-ACTION {FILM_BOX}", f"N-DELETE {FILM_BOX}"],
            "the print SCP did not get N-GET, N-CREATE x2, N-SET, N-ACTION, N-DELETE", scp, p)


PRINTER = "1.2.840.10008.5.1.1.16"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
FILM_BOX = "1.2.840.10008.5.1.1.2"
IMAGE_BOX = "1.2.840.10008.5.1.1.4"
# the inverted printer check of print-1 (both branches exit) and the fix any user makes
PRINTER_CHECK = """            sys.exit()
        else:
            print("Failed to get the printer status")
            assoc.release()
            sys.exit()
    else:
"""
PRINTER_CHECK_FIXED = """            sys.exit()
    else:
"""
# and its N-DELETE, the only request without meta_uid: pynetdicom raises ValueError ("No
# presentation context for 'Basic Film Box SOP Class' ...") and then hangs (its association
# thread keeps running)
N_DELETE = """        film_box.SOPInstanceUID
    )
"""
N_DELETE_FIXED = """        film_box.SOPInstanceUID,
        meta_uid=BasicGrayscalePrintManagementMeta  # harness: doc slip fixed
    )
"""
example("print-1+fix", "SCU", "pynetdicom: tests/compat/pynetdicom_print_scp.py",
        "print-1 with its two slips fixed so that the whole print sequence runs: the printer "
        "check's inner else (exits for a NORMAL printer) removed, and meta_uid added to the "
        "N-DELETE (without it: ValueError on pynetdicom, then a hang)")(_print_scu)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def examples() -> Examples:
    found, why = load_examples()
    if found is None:
        pytest.skip(why)
    return found


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path, examples: Examples
            ) -> Iterator[Harness]:  # fmt: skip
    ex_id = request.node.callspec.params["ex_id"]
    if SPECS[ex_id].block not in examples.code:
        pytest.fail(f"{ex_id} is not a Python block of pynetdicom's docs/examples any more")
    h = Harness(tmp_path, examples, ex_id)
    try:
        yield h
    finally:
        h.stop_all()


@pytest.mark.parametrize(
    "ex_id",
    [pytest.param(s.ex_id, id=s.ex_id, marks=pytest.mark.timeout(s.timeout))
     for s in sorted(SPECS.values(), key=lambda s: _order(s.ex_id))],
)  # fmt: skip
def test_example(ex_id: str, harness: Harness) -> None:
    """Example ``ex_id`` runs on dicomnet after the sed (see the module docstring)."""
    spec = SPECS[ex_id]
    for tool in DCMTK_TOOLS:
        if tool in spec.peer:
            harness.dcmtk(tool)  # skips if missing
    spec.run(harness)


def test_every_example_is_covered(examples: Examples) -> None:
    """Every Python block of the docs has a Spec here, and the re-indented ones are noted."""
    assert sorted(examples.code) == sorted({s.block for s in SPECS.values()})
    noted = {i for i, s in SPECS.items() if "re-indented" in s.note}
    assert examples.reindented == noted
