"""``qrscp --config FILE``: the archive's settings and peers in one TOML file.

Theory of operation
-------------------
Every command-line option of ``qrscp`` has a key of the same name (``--max-associations`` is
``max_associations``, ``-aet`` is ``aet``), at the top level of the file; options given on the
command line win over the file. Known peers are an array of tables::

    port = 11112
    bind = "0.0.0.0"
    aet = "ARCHIVE"
    storage = "/var/lib/dicomnet"
    audit_log = "/var/log/dicomnet/audit.jsonl"
    destination = ["VIEWER=10.0.0.7:104"]

    [[peer]]
    aet = "CT1"                      # calling AE title
    hosts = ["10.0.1.0/24"]          # networks it connects from (default: anywhere)
    tls_subject = "CN=ct1.example"   # required client certificate subject (optional)
    may = ["echo", "store", "find"]  # echo, store, find, get, move, n (default: all)
    move_to = ["VIEWER"]             # C-MOVE destinations it may use (default: all)
    max_associations = 4             # its simultaneous associations (optional)
    port = 104                       # also a C-MOVE destination at its first host, which
                                     # must then be one address (optional)

:func:`load` checks every key and value and says which one is wrong. A file named ``*.ini`` is
pynetdicom's qrscp configuration instead (:mod:`dicomnet.cli.qrscp_ini`).
"""

from __future__ import annotations

import argparse
import tomllib

from dicomnet.archive.access import Peer

__all__ = ["load", "peers_from"]

_PEER_KEYS = {"aet", "hosts", "may", "move_to", "tls_subject", "max_associations", "port"}


# keys whose option is not "--" + the key with dashes
_OPTION = {"aet": "--aetitle"}


def load(path: str, parser: argparse.ArgumentParser) -> tuple[list[str], list[Peer]]:
    """(command-line arguments equivalent to the file's options, peers) from the TOML file at
    ``path``: put the arguments *before* the real command line, so that what is given there
    wins. ValueError naming the file and the key on any problem."""
    if path.endswith(".ini"):  # pynetdicom's qrscp configuration
        # lazy: configparser and the INI reading, only for pynetdicom's files
        from dicomnet.cli.qrscp_ini import load_ini

        return load_ini(path), []
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    known = set(vars(parser.parse_args([]))) - {"config"}
    peers = peers_from(data.pop("peer", []), path)
    argv: list[str] = []
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))}, "
                             "[[peer]])")  # fmt: skip
        option = _OPTION.get(key, "--" + key.replace("_", "-"))
        if isinstance(value, bool):
            if value:
                argv.append(option)
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict | list):
                raise ValueError(f"{path}: {key}: a value or a list of values expected")
            argv += [option, str(item)]
    return argv, peers


def peers_from(entries: object, path: str = "config") -> list[Peer]:
    """The peers of the ``[[peer]]`` array of tables (TOML values, checked here)."""
    if not isinstance(entries, list):
        raise ValueError(f"{path}: [[peer]] entries expected")
    peers = []
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: peer {n} is not a table")
        unknown = set(entry) - _PEER_KEYS
        if unknown:
            raise ValueError(f"{path}: peer {n}: unknown key(s) {sorted(unknown)}; "
                             f"known: {sorted(_PEER_KEYS)}")  # fmt: skip
        if "aet" not in entry:
            raise ValueError(f"{path}: peer {n} has no aet")
        try:
            peers.append(Peer(
                str(entry["aet"]),
                [str(h) for h in entry.get("hosts", [])],
                may=entry.get("may", ("echo", "store", "find", "get", "move", "n")),
                move_to=entry.get("move_to"),
                tls_subject=entry.get("tls_subject"),
                max_associations=entry.get("max_associations"),
                port=entry.get("port"),
            ))  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: peer {n} ({entry.get('aet')}): {exc}") from exc
    return peers
