"""dicomnet: a fast, hardened DICOM networking stack for Python.

Layers, bottom up: :mod:`dicomnet.ul` (PS3.8 Upper Layer, sans-IO), :mod:`dicomnet.dimse`
(PS3.7 message exchange, sans-IO), :mod:`dicomnet.transport` (sockets, TLS, asyncio), the
application layer (:mod:`dicomnet.ae`, :mod:`dicomnet.association`, :mod:`dicomnet.services`,
the server), :mod:`dicomnet.archive` and the ``dicomnet`` command-line tools; see
docs/architecture.md.

The package root offers the names a pynetdicom program imports from its root (``AE``,
``evt``, ``debug_logger``, ``build_context``, the ``*PresentationContexts`` lists, ...), so
that such a program runs after replacing ``pynetdicom`` with ``dicomnet``. They are resolved
on first use (PEP 562): every command-line tool imports this package, and ``dicomnet
--version`` or a usage error should not pay for the association machinery or the context
lists. Type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dicomnet import events as evt
    from dicomnet.ae import AE
    from dicomnet.ae import AE as ApplicationEntity
    from dicomnet.association import Association
    from dicomnet.presentation import (
        ALL_TRANSFER_SYNTAXES,
        DEFAULT_TRANSFER_SYNTAXES,
        build_context,
        build_role,
    )
    from dicomnet.settings import IMPLEMENTATION_CLASS_UID as PYNETDICOM_IMPLEMENTATION_UID
    from dicomnet.settings import (
        IMPLEMENTATION_VERSION_NAME as PYNETDICOM_IMPLEMENTATION_VERSION,
    )
    from dicomnet.sop_class import register_uid

__version__ = "0.1.0"

#: The UID root of dicomnet's UIDs (UUID-derived, PS3.5 B.2), under the name pynetdicom
#: programs read it by; the implementation identity it sends (PS3.7 D.3.3.2) is
#: ``PYNETDICOM_IMPLEMENTATION_UID``/``_VERSION`` (from :mod:`dicomnet.settings`).
PYNETDICOM_UID_PREFIX = "2.25."

#: name -> (module, attribute) it is (imported on first use, see the module docstring)
_WHERE = {
    "AE": ("dicomnet.ae", "AE"),
    "ApplicationEntity": ("dicomnet.ae", "AE"),
    "Association": ("dicomnet.association", "Association"),
    "ALL_TRANSFER_SYNTAXES": ("dicomnet.presentation", "ALL_TRANSFER_SYNTAXES"),
    "DEFAULT_TRANSFER_SYNTAXES": ("dicomnet.presentation", "DEFAULT_TRANSFER_SYNTAXES"),
    "build_context": ("dicomnet.presentation", "build_context"),
    "build_role": ("dicomnet.presentation", "build_role"),
    "register_uid": ("dicomnet.sop_class", "register_uid"),
    "PYNETDICOM_IMPLEMENTATION_UID": ("dicomnet.settings", "IMPLEMENTATION_CLASS_UID"),
    "PYNETDICOM_IMPLEMENTATION_VERSION": ("dicomnet.settings", "IMPLEMENTATION_VERSION_NAME"),
}
_LISTS = (
    "AllStoragePresentationContexts",
    "ApplicationEventLoggingPresentationContexts",
    "BasicWorklistManagementPresentationContexts",
    "ColorPalettePresentationContexts",
    "DefinedProcedureProtocolPresentationContexts",
    "DisplaySystemPresentationContexts",
    "HangingProtocolPresentationContexts",
    "ImplantTemplatePresentationContexts",
    "InstanceAvailabilityPresentationContexts",
    "MediaCreationManagementPresentationContexts",
    "MediaStoragePresentationContexts",
    "ModalityPerformedPresentationContexts",
    "NonPatientObjectPresentationContexts",
    "PrintManagementPresentationContexts",
    "ProcedureStepPresentationContexts",
    "ProtocolApprovalPresentationContexts",
    "QueryRetrievePresentationContexts",
    "RelevantPatientInformationPresentationContexts",
    "RTMachineVerificationPresentationContexts",
    "StoragePresentationContexts",
    "StorageCommitmentPresentationContexts",
    "SubstanceAdministrationPresentationContexts",
    "UnifiedProcedurePresentationContexts",
    "VerificationPresentationContexts",
)
_WHERE.update({name: ("dicomnet.presentation", name) for name in _LISTS})

__all__ = [
    "ALL_TRANSFER_SYNTAXES",
    "AE",
    "DEFAULT_TRANSFER_SYNTAXES",
    "PYNETDICOM_IMPLEMENTATION_UID",
    "PYNETDICOM_IMPLEMENTATION_VERSION",
    "PYNETDICOM_UID_PREFIX",
    "ApplicationEntity",
    "Association",
    "__version__",
    "build_context",
    "build_role",
    "debug_logger",
    "evt",
    "register_uid",
    *_LISTS,
]


def debug_logger() -> None:
    """Log everything dicomnet logs (DEBUG and up) to stderr, one letter for the level."""
    # lazy: logging is not needed to import the package (see the module docstring)
    import logging

    from dicomnet import _config  # lazy: as above

    logger = logging.getLogger("dicomnet")
    logger.handlers = []
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname).1s: %(message)s"))
    logger.addHandler(handler)
    quiet = str(_config.LOG_HANDLER_LEVEL).lower() == "none"
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG)


def __getattr__(name: str) -> object:
    if name == "evt":
        from dicomnet import events  # lazy: see the module docstring

        return events
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'dicomnet' has no attribute {name!r}")
    # lazy: see the module docstring
    from importlib import import_module

    value: object = getattr(import_module(where[0]), where[1])
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
