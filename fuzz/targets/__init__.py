"""The fuzz targets: name -> module exposing ``test_one_input(data: bytes) -> None``.

Theory of operation
-------------------
Importing this package imports no dicomnet module, so :mod:`fuzz.run` can import the chosen
target (and with it the dicomnet modules it exercises) inside ``atheris.instrument_imports``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["TARGETS", "load"]

#: target name -> (module under fuzz.targets, entry point function, libFuzzer -max_len)
TARGETS: dict[str, tuple[str, str, int]] = {
    "pdu": ("pdu", "test_one_input", 32768),
    "ul_acceptor": ("ul", "test_one_input_acceptor", 32768),
    "ul_requestor": ("ul", "test_one_input_requestor", 32768),
    "dimse": ("dimse", "test_one_input", 32768),
    "part10": ("part10", "test_one_input", 16384),
}


def load(name: str) -> Callable[[bytes], Any]:
    """Import target ``name`` and return its entry point."""
    module_name, function, _ = TARGETS[name]
    module = importlib.import_module(f"fuzz.targets.{module_name}")
    entry: Callable[[bytes], Any] = getattr(module, function)
    return entry
