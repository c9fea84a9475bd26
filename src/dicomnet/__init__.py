"""dicomnet: a fast, hardened DICOM networking stack for Python.

Layers, bottom up: :mod:`dicomnet.ul` (PS3.8 Upper Layer, sans-IO), :mod:`dicomnet.dimse`
(PS3.7 message exchange, sans-IO), :mod:`dicomnet.transport` (sockets, TLS, asyncio),
``AE``/``Association`` (the application API), :mod:`dicomnet.services`, :mod:`dicomnet.archive`
and the ``dicomnet`` command-line tools.

The package root imports lazily so that ``dicomnet --version`` and ``dicomnet echoscu`` do not
pay for pydicom or numpy.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "AE": ("dicomnet.ae", "AE"),
    "ApplicationEntity": ("dicomnet.ae", "AE"),
    "Association": ("dicomnet.association", "Association"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'dicomnet' has no attribute {name!r}")
