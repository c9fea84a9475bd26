"""dicomnet: a fast, hardened DICOM networking stack for Python.

Layers, bottom up: :mod:`dicomnet.ul` (PS3.8 Upper Layer, sans-IO), :mod:`dicomnet.dimse`
(PS3.7 message exchange, sans-IO), :mod:`dicomnet.transport` (sockets, TLS, asyncio), the
application layer (:mod:`dicomnet.ae`, :mod:`dicomnet.association`, :mod:`dicomnet.services`,
the server), :mod:`dicomnet.archive` and the ``dicomnet`` command-line tools; see
docs/architecture.md.

The package root resolves ``AE``/``Association`` on first use (PEP 562): every command-line
tool imports this package, and ``dicomnet --version`` or a usage error should not pay for the
association machinery. Type checkers see the names through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dicomnet.ae import AE
    from dicomnet.ae import AE as ApplicationEntity
    from dicomnet.association import Association

__all__ = ["AE", "ApplicationEntity", "Association", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name in ("AE", "ApplicationEntity"):
        from dicomnet.ae import AE  # lazy: see the module docstring

        return AE
    if name == "Association":
        from dicomnet.association import Association  # lazy: see the module docstring

        return Association
    raise AttributeError(f"module 'dicomnet' has no attribute {name!r}")
