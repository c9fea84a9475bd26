"""``qrscp --config FILE.ini``: pynetdicom's qrscp configuration file, read as dicomnet's.

Theory of operation
-------------------
pynetdicom's ``qrscp`` app is configured by an INI file (its ``default.ini``): application
settings in ``[DEFAULT]`` and one section per C-MOVE destination, named by the destination's AE
title, with ``address`` and ``port``::

    [DEFAULT]
        ae_title: QRSCP
        port: 11112
        max_pdu: 16382
        acse_timeout: 30
        dimse_timeout: 30
        network_timeout: 30
        bind_address:
        instance_location: instances
        database_location: instances.sqlite
        log_identifier: True

    [STORESCP]
        address: 127.0.0.1
        port: 11113

:func:`load_ini` turns such a file into the equivalent ``qrscp`` command-line arguments, which
:mod:`dicomnet.cli.qrscp_config` puts before the real command line (so options given there
win): ``ae_title`` -> ``-aet``, ``port``, ``max_pdu``, the three timeouts, ``bind_address`` ->
``--bind``, ``instance_location`` -> ``--storage``, ``database_location`` -> ``--db`` (a SQLite
file), each section -> ``--destination AET=ADDRESS:PORT``. Relative paths are relative to the
working directory, as for every other option. Two readings differ from pynetdicom's on purpose:
an empty ``bind_address`` keeps the archive's default (this host only: listening on every
interface needs known peers or ``--allow-any``, :mod:`dicomnet.archive.access`), and
``log_identifier`` is accepted and ignored. Any other key is an error that names it.
"""

from __future__ import annotations

import configparser

__all__ = ["load_ini"]

# [DEFAULT] key -> qrscp option ("" = accepted, no option)
_OPTIONS = {
    "ae_title": "--aetitle",
    "port": "--port",
    "max_pdu": "--max-pdu",
    "acse_timeout": "--acse-timeout",
    "dimse_timeout": "--dimse-timeout",
    "network_timeout": "--network-timeout",
    "bind_address": "--bind",
    "instance_location": "--storage",
    "database_location": "--db",
    "log_identifier": "",
}
_SECTION_KEYS = {"address", "port"}


def load_ini(path: str) -> list[str]:
    """The qrscp arguments equivalent to pynetdicom's INI file at ``path``; ValueError naming
    the file, section and key on any problem."""
    # No inherited defaults: [DEFAULT] is read as a section like the others, so that a
    # destination without its own port is an error, not the archive's own listen port.
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00")
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from exc
    except configparser.Error as exc:
        raise ValueError(f"{path}: {exc}") from exc
    argv: list[str] = []
    for section in parser.sections():
        values = {key: value.strip() for key, value in parser.items(section)}
        if section == "DEFAULT":
            argv += _settings(path, values)
            continue
        unknown = set(values) - _SECTION_KEYS
        if unknown:
            raise ValueError(f"{path}: [{section}]: unknown key(s) {sorted(unknown)} "
                             "(known: address, port)")  # fmt: skip
        missing = [key for key in sorted(_SECTION_KEYS) if not values.get(key)]
        if missing:
            raise ValueError(f"{path}: [{section}]: no {' and no '.join(missing)}")
        argv += ["--destination", f"{section.strip()}={values['address']}:{values['port']}"]
    return argv


def _settings(path: str, values: dict[str, str]) -> list[str]:
    argv: list[str] = []
    for key, value in values.items():
        if key not in _OPTIONS:
            raise ValueError(f"{path}: [DEFAULT]: unknown key {key!r} (known: "
                             f"{', '.join(sorted(_OPTIONS))})")  # fmt: skip
        if _OPTIONS[key] and value:
            argv += [_OPTIONS[key], value]
    return argv
