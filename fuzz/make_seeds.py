"""Build the seed corpora ``fuzz/corpus/<target>/`` from the captured real-peer vectors.

Theory of operation
-------------------
The captured PDUs (``tests/data/pdus/<scenario>/<n>-<seq>-<rq|ac>-<pdu>.bin``, one PDU per file,
in wire order per direction) and DIMSE command sets (``tests/data/dimse/*.bin``) are turned into
inputs in each target's layout (see the target modules), so the fuzzer starts from real
conversations instead of random bytes:

* ``pdu``: every distinct captured PDU, and each direction of each scenario as one stream;
* ``ul_acceptor`` / ``ul_requestor``: programs that connect, associate with the captured
  A-ASSOCIATE-RQ/AC, feed the peer's captured PDUs (whole, split, through the recv_into path),
  release or abort; plus short programs reaching every state with canned PDUs;
* ``dimse``: the PDVs of every captured P-DATA-TF, and every captured command set as one or
  two command fragments followed, when it announces one, by a small data set;
* ``part10``: Part 10 files wrapping the captured C-STORE data sets, in the layouts PS3.10
  section 7.1 allows (and a raw data set without meta header).

The output is deterministic (so a test can check the committed corpus is current) and small.
Run: ``.venv/bin/python fuzz/make_seeds.py`` (``--check`` only compares).
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
ROOT = FUZZ_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dicomnet.dimse.commands import decode_command  # noqa: E402
from dicomnet.ul.codec import decode_pdu, encode_pdu  # noqa: E402
from dicomnet.ul.pdu import (  # noqa: E402
    AAssociateRQ,
    AsyncOpsWindow,
    MaximumLength,
    PDataTF,
    PresentationContextRQ,
    RoleSelection,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
    UserInformation,
)
from fuzz._stream import Writer  # noqa: E402
from fuzz.targets.ul import CT_STORAGE, EVLE, IVLE, OP, VERIFICATION  # noqa: E402

PDUS = ROOT / "tests" / "data" / "pdus"
DIMSE = ROOT / "tests" / "data" / "dimse"
CORPUS = FUZZ_DIR / "corpus"

Scenario = dict[str, list[tuple[str, bytes]]]  # direction ("rq"/"ac") -> [(pdu kind, bytes)]


def load_scenarios() -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {}
    for directory in sorted(p for p in PDUS.iterdir() if p.is_dir()):
        scenario: Scenario = {"rq": [], "ac": []}
        for f in sorted(directory.glob("*.bin")):
            # <connection>-<sequence>-<direction>-<pdu>.bin
            _, _, direction, kind = f.stem.split("-", 3)
            scenario[direction].append((kind, f.read_bytes()))
        scenarios[directory.name] = scenario
    return scenarios


# --- pdu ---------------------------------------------------------------------------------------


def seeds_pdu(scenarios: dict[str, Scenario]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    seen: set[bytes] = set()
    for name, scenario in scenarios.items():
        for direction, pdus in scenario.items():
            for i, (kind, pdu) in enumerate(pdus):
                if pdu in seen:
                    continue
                seen.add(pdu)
                # cfg 0: no P-DATA limit; one size entry 0: the recv_into path.
                out[f"{name}-{direction}-{i}-{kind}"] = bytes((0x00, 1, 0)) + pdu
            stream = b"".join(pdu for _, pdu in pdus)
            if stream:
                # cfg 0x01: Maximum Length 16384; chunk sizes 7, recv_into, 200.
                out[f"{name}-{direction}-stream"] = bytes((0x01, 3, 7, 0, 200)) + stream
    return out


# --- ul_acceptor / ul_requestor ------------------------------------------------------------------


# cfg byte per feeding style: default; strict AE title policy; nothing supported + provider
# check + unlimited Maximum Length (acceptor) / no ARTIM, unlimited Maximum Length (requestor).
_ACCEPTOR_CFG = (0x00, 0x40, 0x89)
_REQUESTOR_CFG = (0x00, 0x04, 0x01)


def _feed(w: Writer, pdu: bytes, style: int) -> None:
    if style == 0:
        w.u8(OP["FEED"]).blob(pdu)
    elif style == 1:
        w.u8(OP["FEED_INTO"]).u8(0).blob(pdu)
    else:
        half = len(pdu) // 2
        w.u8(OP["FEED"]).blob(pdu[:half]).u8(OP["FEED"]).blob(pdu[half:])


def seeds_ul_acceptor(scenarios: dict[str, Scenario]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, scenario in scenarios.items():
        for style, cfg in enumerate(_ACCEPTOR_CFG):
            w = Writer().u8(cfg).u8(OP["CONNECT"])
            for kind, pdu in scenario["rq"]:
                _feed(w, pdu, style)
                if kind == "associate-rq":
                    w.u8(OP["ASSOCIATE"])
                elif kind == "release-rq":
                    w.u8(OP["RELEASE_RP"])
            w.u8(OP["CLOSED"])
            out[f"{name}-{style}"] = w.build()
    canned = {
        # Sta7 -> peer RQ: Sta10 (AR-8) -> peer RP: Sta12 (AR-10) -> respond: Sta13 (AR-4)
        "release-collision": [2, 12, 0, 3, 7, 12, 4, 12, 5, 8, 11],
        # peer release RQ: Sta8, then a P-DATA request there (AR-7), then respond
        "send-in-sta8": [2, 12, 0, 3, 12, 4, 5, 1, 3, 0, 2, 0, 0, 8, 11],
        "peer-abort": [2, 12, 0, 3, 12, 6],
        "artim-expiry": [2, 10, 40],
        "reject": [2, 12, 0, 4, 10, 40],
        "local-abort": [2, 12, 0, 3, 9, 2, 10, 40],
        "send": [2, 12, 0, 3, 5, 1, 3, 0, 2, 0, 0, 6, 1, 3, 0, 2, 0, 0, 7, 12, 5],
    }
    for label, program in canned.items():
        out[f"canned-{label}"] = bytes((0, *program))
    # Requests that reach the rarer negotiation branches: a refused user identity, SOP class
    # extended negotiation and role selection on accepted contexts.
    for label, rq in _negotiation_rqs().items():
        w = Writer().u8(0).u8(OP["CONNECT"]).u8(OP["FEED"]).blob(encode_pdu(rq))
        out[f"negotiation-{label}"] = w.u8(OP["ASSOCIATE"]).u8(OP["CLOSED"]).build()
    return out


def _negotiation_rqs() -> dict[str, AAssociateRQ]:
    contexts = (
        PresentationContextRQ(1, VERIFICATION, (IVLE,)),
        PresentationContextRQ(3, CT_STORAGE, (EVLE, IVLE)),
    )
    return {
        "identity-refused": AAssociateRQ(
            "ACCEPTOR", "REQUESTOR", contexts, UserInformation((UserIdentityRQ(1, 1, b"nobody"),))
        ),
        "extended-and-roles": AAssociateRQ(
            "ACCEPTOR",
            "REQUESTOR",
            contexts,
            UserInformation(
                (
                    MaximumLength(16384),
                    AsyncOpsWindow(0, 3),
                    RoleSelection(CT_STORAGE, 1, 1),
                    SOPClassExtendedNegotiation(CT_STORAGE, b"\x01\x00\x01\x00"),
                    UserIdentityRQ(2, 0, b"user", b"secret"),
                )
            ),
        ),
    }


def seeds_ul_requestor(scenarios: dict[str, Scenario]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, scenario in scenarios.items():
        for style, cfg in enumerate(_REQUESTOR_CFG):
            w = Writer().u8(cfg).u8(OP["ASSOCIATE"]).u8(OP["CONNECT"])
            for kind, pdu in scenario["ac"]:
                if kind == "release-rp":
                    w.u8(OP["RELEASE_RQ"])
                _feed(w, pdu, style)
            w.u8(OP["CLOSED"])
            out[f"{name}-{style}"] = w.build()
    canned = {
        # Sta7 -> peer RQ: Sta9 (AR-8) -> respond: Sta11 (AR-9) -> peer RP: Sta1 (AR-3)
        "release-collision": [3, 2, 12, 1, 7, 12, 4, 8, 12, 5, 11],
        "send-in-sta8": [3, 2, 12, 1, 12, 4, 5, 1, 3, 0, 2, 0, 0, 8, 11],
        "rejected": [3, 2, 12, 2, 11],
        "peer-abort": [3, 2, 12, 1, 12, 6],
        "artim": [3, 2, 12, 1, 7, 12, 5, 10, 40],
        "send": [3, 2, 12, 1, 5, 1, 3, 0, 2, 0, 0, 12, 3, 9, 0],
    }
    for label, program in canned.items():
        out[f"canned-{label}"] = bytes((0, *program))
    return out


# --- dimse --------------------------------------------------------------------------------------

# A small Implicit VR LE data set: (0008,0016) SOP Class UID, (0010,0010) Patient's Name.
SMALL_DATASET = (
    b"\x08\x00\x16\x00\x1a\x00\x00\x00" + b"1.2.840.10008.5.1.4.1.1.7\x00"
    b"\x10\x00\x10\x00\x08\x00\x00\x00" + b"DOE^JOHN"
)


def _pdv_record(w: Writer, context_id: int, control: int, data: bytes | memoryview) -> None:
    w.u8(context_id).u8(control).blob(bytes(data))


def seeds_dimse(scenarios: dict[str, Scenario]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, scenario in scenarios.items():
        for direction, pdus in scenario.items():
            w = Writer().u8(0).u8(0)
            n = 0
            for kind, pdu in pdus:
                if kind != "p-data":
                    continue
                decoded = decode_pdu(pdu)
                assert isinstance(decoded, PDataTF)
                for pdv in decoded.pdvs:
                    _pdv_record(w, pdv.context_id, pdv.control, pdv.data)
                    n += 1
            if n:
                out[f"{name}-{direction}"] = w.build()
    for f in sorted(DIMSE.glob("*.bin")):
        command = f.read_bytes()
        has_data = decode_command(command).get(0x0800) != 0x0101
        for split in (False, True):
            w = Writer().u8(0).u8(0)
            if split:
                _pdv_record(w, 1, 0x01, command[:20])
                _pdv_record(w, 1, 0x03, command[20:])
            else:
                _pdv_record(w, 1, 0x03, command)
            if has_data:
                _pdv_record(w, 1, 0x00, SMALL_DATASET[:16])
                _pdv_record(w, 1, 0x02, SMALL_DATASET[16:])
            out[f"{f.stem}{'-split' if split else ''}"] = w.build()
    return out


# --- part10 -------------------------------------------------------------------------------------

_EXPLICIT_SHORT = struct.Struct("<HH2sH")


def _meta_element(elem: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00" if vr == b"UI" else b" "
    if vr in (b"OB",):
        return struct.pack("<HH2sHI", 2, elem, vr, 0, len(value)) + value
    return _EXPLICIT_SHORT.pack(2, elem, vr, len(value)) + value


def part10_file(
    sop_class: str, sop_instance: str, ts: str, dataset: bytes, *, preamble: bool = True
) -> bytes:
    """A PS3.10 file: preamble, "DICM", group 0002 (with its group length), the data set."""
    body = b"".join(
        (
            _meta_element(0x0001, b"OB", b"\x00\x01"),
            _meta_element(0x0002, b"UI", sop_class.encode()),
            _meta_element(0x0003, b"UI", sop_instance.encode()),
            _meta_element(0x0010, b"UI", ts.encode()),
            _meta_element(0x0012, b"UI", b"2.25.1234"),
        )
    )
    meta = _meta_element(0x0000, b"UL", struct.pack("<I", len(body))) + body
    head = b"\x00" * 128 + b"DICM" if preamble else b""
    return head + meta + dataset


def seeds_part10(scenarios: dict[str, Scenario]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in ("dcmtk_store", "dcmtk_store_pdu4096"):
        command = bytearray()
        dataset = bytearray()
        for kind, pdu in scenarios[name]["rq"]:
            if kind != "p-data":
                continue
            decoded = decode_pdu(pdu)
            assert isinstance(decoded, PDataTF)
            for pdv in decoded.pdvs:
                (command if pdv.control & 1 else dataset).extend(pdv.data)
        elements = decode_command(bytes(command))
        sop_class, sop_instance = str(elements[0x0002]), str(elements[0x1000])
        # storescu sends the data set in the transfer syntax of the file (DCMTK: implicit LE).
        ts = "1.2.840.10008.1.2"
        data = bytes(dataset)
        out[f"{name}-part10"] = part10_file(sop_class, sop_instance, ts, data)
        out[f"{name}-raw"] = data
    sop_class, ts = "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.1.2.1"
    out["small-explicit"] = part10_file(sop_class, "1.2.3.4", ts, SMALL_DATASET)
    out["small-no-preamble"] = part10_file(sop_class, "1.2.3.4", ts, SMALL_DATASET, preamble=False)
    out["small-dicm-only"] = b"DICM" + part10_file(
        sop_class, "1.2.3.4", ts, SMALL_DATASET, preamble=False
    )
    return out


def build() -> dict[str, dict[str, bytes]]:
    """target -> {seed file name: content}."""
    scenarios = load_scenarios()
    return {
        "pdu": seeds_pdu(scenarios),
        "ul_acceptor": seeds_ul_acceptor(scenarios),
        "ul_requestor": seeds_ul_requestor(scenarios),
        "dimse": seeds_dimse(scenarios),
        "part10": seeds_part10(scenarios),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="(Re)build fuzz/corpus/<target>/")
    parser.add_argument("--check", action="store_true", help="only report differences")
    parser.add_argument("--out", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    stale = 0
    for target, seeds in build().items():
        directory = args.out / target
        existing = {p.name: p for p in directory.glob("*")} if directory.is_dir() else {}
        for name, content in seeds.items():
            path = directory / name
            if name in existing and existing[name].read_bytes() == content:
                continue
            stale += 1
            if not args.check:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
        for name in set(existing) - set(seeds):
            stale += 1
            if not args.check:
                existing[name].unlink()
        total = sum(len(c) for c in seeds.values())
        print(f"{target}: {len(seeds)} seeds, {total} bytes")
    if args.check and stale:
        print(f"{stale} seed files differ from make_seeds.py's output")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
