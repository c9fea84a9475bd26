"""``qrscp --config FILE`` (TOML): every command-line option has a key, the command line wins
over the file, mistakes are named, and an archive listening beyond this host must say whom
it serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomnet.archive.access import Peer, PeerPolicy
from dicomnet.cli import qrscp
from dicomnet.cli.qrscp_config import load
from dicomnet.monitor import AssociationInfo
from tests.cli.helpers import run_tool

# a valid value per option whose type checks its value; the others take any string
SAMPLES: dict[str, object] = {
    "aet": "ARCH", "max_pdu": 32768, "acse_timeout": 5, "dimse_timeout": 5,
    "network_timeout": 5, "port": 104, "destination": ["VIEWER=10.0.0.7:104"], "max_ops": 4,
    "max_associations": 10, "durability": "fast", "max_associations_per_peer": 3,
    "workers": 2, "metrics": "127.0.0.1:9100", "audit_syslog": "udp://127.0.0.1:514",
    "study_conflict": "accept", "ian": ["VIEWER=10.0.0.7:104"], "ian_quiet": 5,
    "mpps_forward": ["VIEWER=10.0.0.7:104"], "commitment_attempts": 3, "log_level": "info",
}  # fmt: skip
# options that take AET=HOST:PORT destinations
DESTINATIONS = {"destination", "ian", "mpps_forward"}


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f'"{value}"'


def test_every_option_has_a_key(tmp_path: Path) -> None:
    parser = qrscp.build_parser()
    defaults = vars(parser.parse_args([]))
    assert len(defaults) > 25
    for dest, default in defaults.items():
        if dest == "config":
            continue
        flag = default is False  # the store_true options
        value = True if flag else SAMPLES.get(dest, "x")
        path = tmp_path / f"{dest}.toml"
        path.write_text(f"{dest} = {_toml(value)}\n")
        argv, peers = load(str(path), parser)
        got = getattr(parser.parse_args(argv), dest)
        if flag:
            assert got is True, dest
        elif dest in DESTINATIONS:
            assert got == [("VIEWER", "10.0.0.7", 104)]
        else:
            assert str(got) == str(value) or got == value, (dest, got)
        assert peers == []


def test_command_line_wins_and_peers_are_read(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('port = 104\naet = "FROMFILE"\n\n[[peer]]\naet = "CT1"\n'
                    'hosts = ["10.0.1.0/24"]\nmay = ["store"]\n')  # fmt: skip
    args = qrscp.parse(["--config", str(path), "--port", "4242"])
    assert args.port == 4242 and args.aet == "FROMFILE"
    assert [p.ae_title for p in args.peers] == ["CT1"]
    assert args.peers[0].may == {"store"}


@pytest.mark.parametrize("text, words", [
    ("prot = 104\n", ["unknown key 'prot'"]),
    ("port = [\n", ["a.toml"]),
    ('[[peer]]\nhosts = ["10.0.0.1"]\n', ["peer 1 has no aet"]),
    ('[[peer]]\naet = "X"\nmay = ["delete"]\n', ["unknown operation", "delete"]),
    ('[[peer]]\naet = "X"\nhosts = ["not-a-net"]\n', ["peer 1 (X)"]),
    ('[[peer]]\naet = "X"\nhosts = ["10.0.0.0/8"]\nport = 104\n', ["one address"]),
    ('[[peer]]\naet = "X"\ncolour = "red"\n', ["unknown key", "colour"]),
])  # fmt: skip
def test_mistakes_are_named(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "a.toml"
    path.write_text(text)
    r = run_tool(["qrscp", "--config", str(path)])
    assert r.returncode == 2, r.stderr
    for word in words:
        assert word in r.stderr, r.stderr


def test_listening_beyond_this_host_needs_peers_or_allow_any(tmp_path: Path) -> None:
    r = run_tool(["qrscp", "--bind", "0.0.0.0", "--port", "0", "--storage", str(tmp_path / "s")])
    assert r.returncode == 2
    assert "--allow-any" in r.stderr and "[[peer]]" in r.stderr


def test_policy_table() -> None:
    """The admission rules without a network: called AE, unknown caller, networks, caps."""
    policy = PeerPolicy("ARCH", [Peer("CT1", ["10.0.1.0/24"], may=["store"], max_associations=2),
                                 Peer("WS", tls_subject="CN=ws")], max_per_ae=5)  # fmt: skip

    def admit(calling: str, address: str = "10.0.1.5", called: str = "ARCH",
              subject: str | None = None, open_: int = 0) -> object:  # fmt: skip
        return policy.admit(AssociationInfo(address, 1000, calling, called, subject, open_))

    assert admit("CT1") is None
    assert admit("CT1", called="OTHER") == (1, 1, 7)
    assert admit("CT1", address="10.0.2.5") == (1, 1, 3)  # outside its network
    assert admit("NOBODY") == (1, 1, 3)
    assert admit("CT1", open_=2) == (2, 3, 2)
    assert admit("WS", subject="CN=ws") is None
    assert admit("WS", subject="CN=other") == (1, 1, 3)
    assert admit("WS") == (1, 1, 3)
    open_policy = PeerPolicy("ARCH", [], allow_any=True, max_per_ae=1)
    assert open_policy.admit(AssociationInfo("1.2.3.4", 1, "ANY", "ARCH", None, 0)) is None
    assert open_policy.admit(AssociationInfo("1.2.3.4", 1, "ANY", "ARCH", None, 1)) == (2, 3, 2)
    lax = PeerPolicy("ARCH", [], allow_any=True, check_called=False)
    assert lax.admit(AssociationInfo("1.2.3.4", 1, "ANY", "WHATEVER", None, 0)) is None
