"""SOP class UIDs that know their service class, under the names pynetdicom programs import
(PS3.4 service classes, PS3.6 Annex A UIDs and keywords).

Theory of operation
-------------------
Every SOP class belongs to one service class of PS3.4 (CT Image Storage to the Storage service
class of Annex B, Study Root Find to Query/Retrieve of Annex C, ...). This module offers:

* the service classes as small marker classes (:class:`ServiceClass` and one subclass per
  PS3.4 service class, named and nested as pynetdicom names them, e.g.
  :class:`QueryRetrieveServiceClass` > :class:`HangingProtocolQueryRetrieveServiceClass`). They
  carry no behaviour: dicomnet dispatches requests by DIMSE message, not by service class; they
  exist so that ``register_uid(..., StorageServiceClass)``, ``uid_to_service_class(uid) is
  StorageServiceClass`` and ``issubclass`` checks mean what they mean in pynetdicom. ``uid`` is
  the Service Class UID where PS3.6 assigns one (Storage, Unified Procedure Step), else None.
* one module attribute per SOP class, named by its PS3.6 keyword (``CTImageStorage``), whose
  value is a :class:`SOPClass`: a :class:`pydicom.uid.UID` (so a ``str``, equal to and hashing
  like the plain UID) with a ``service_class`` property. The data comes from
  :data:`dicomnet.presentation_lists.SERVICE_SOP_CLASSES` (the PS3.4 grouping, built from the
  PS3.6 registry) and the retired storage classes of :mod:`dicomnet.uid`. The well-known SOP
  instances (``PrinterInstance`` ...) are plain UIDs.
* the handful of names pynetdicom spells differently from PS3.6 (a typo such as
  ``PseudoColorSoftcopyPresentationStageStorage``, an older keyword such as
  ``ModalityWorklistInformationFind``) as aliases of the standard ones, so both work.
* a registry, ``{uid: service class}``, behind :func:`uid_to_service_class`,
  :func:`uid_to_sop_class` and :func:`registered_sop_classes`; :func:`register_uid` adds a
  private SOP class to it and makes its keyword an attribute of this module, as pynetdicom's
  does. A UID nobody registered belongs to the base :class:`ServiceClass`.

Cost: importing this module imports pydicom (``SOPClass`` is a pydicom ``UID``), some 150 ms,
and makes ~300 UID objects (under a millisecond). Nothing a client tool imports at start-up
imports it; :mod:`dicomnet.uid` has the same UIDs as plain strings for dicomnet's own code.
"""

from __future__ import annotations

from keyword import iskeyword
from typing import ClassVar, Final, cast

from pydicom.uid import UID

from dicomnet.presentation_lists import SERVICE_SOP_CLASSES, WELL_KNOWN_INSTANCES
from dicomnet.uid import RETIRED_STORAGE_SOP_CLASSES

__all__ = [
    "ApplicationEventLoggingServiceClass",
    "BasicWorklistManagementServiceClass",
    "ColorPaletteQueryRetrieveServiceClass",
    "DefinedProcedureProtocolQueryRetrieveServiceClass",
    "DisplaySystemInstance",
    "DisplaySystemManagementServiceClass",
    "HangingProtocolQueryRetrieveServiceClass",
    "ImplantTemplateQueryRetrieveServiceClass",
    "InstanceAvailabilityNotificationServiceClass",
    "InventoryQueryRetrieveServiceClass",
    "MediaCreationManagementServiceClass",
    "NonPatientObjectStorageServiceClass",
    "PrintManagementServiceClass",
    "PrinterConfigurationRetrievalInstance",
    "PrinterInstance",
    "ProceduralEventLoggingInstance",
    "ProcedureStepServiceClass",
    "ProtocolApprovalQueryRetrieveServiceClass",
    "QueryRetrieveServiceClass",
    "RTMachineVerificationServiceClass",
    "RelevantPatientInformationQueryServiceClass",
    "SOPClass",
    "ServiceClass",
    "StorageCommitmentPushModelInstance",
    "StorageCommitmentServiceClass",
    "StorageManagementInstance",
    "StorageManagementServiceClass",
    "StorageServiceClass",
    "SubstanceAdministrationLoggingInstance",
    "SubstanceAdministrationQueryServiceClass",
    "UPSFilteredGlobalSubscriptionInstance",
    "UPSGlobalSubscriptionInstance",
    "UnifiedProcedureStepServiceClass",
    "VerificationServiceClass",
    "register_uid",
    "registered_sop_classes",
    "uid_to_service_class",
    "uid_to_sop_class",
]  # the SOP class keywords are appended below, as they are made


# --- service classes (PS3.4) --------------------------------------------------------------------


class ServiceClass:
    """A DICOM service class (PS3.4); the base class is "no known service"."""

    uid: ClassVar[str | None] = None
    """The Service Class UID (PS3.6 Annex A), where the standard assigns one."""


class VerificationServiceClass(ServiceClass):
    """PS3.4 Annex A."""


class StorageServiceClass(ServiceClass):
    """PS3.4 Annex B."""

    uid: ClassVar[str | None] = "1.2.840.10008.4.2"


class NonPatientObjectStorageServiceClass(StorageServiceClass):
    """PS3.4 Annex GG (no Service Class UID of its own)."""

    uid = None


class QueryRetrieveServiceClass(ServiceClass):
    """PS3.4 Annex C."""


class BasicWorklistManagementServiceClass(QueryRetrieveServiceClass):
    """PS3.4 Annex K."""


class HangingProtocolQueryRetrieveServiceClass(QueryRetrieveServiceClass):
    """PS3.4 Annex U."""


class ColorPaletteQueryRetrieveServiceClass(QueryRetrieveServiceClass):
    """PS3.4 Annex X."""


class DefinedProcedureProtocolQueryRetrieveServiceClass(QueryRetrieveServiceClass):
    """PS3.4 Annex HH."""


class ImplantTemplateQueryRetrieveServiceClass(QueryRetrieveServiceClass):
    """PS3.4 Annex BB."""


class ProtocolApprovalQueryRetrieveServiceClass(QueryRetrieveServiceClass):
    """PS3.4 Annex II."""


class InventoryQueryRetrieveServiceClass(QueryRetrieveServiceClass):
    """PS3.4 Annex KK."""


class SubstanceAdministrationQueryServiceClass(QueryRetrieveServiceClass):
    """PS3.4 Annex V."""


class RelevantPatientInformationQueryServiceClass(ServiceClass):
    """PS3.4 Annex Q."""


class StorageCommitmentServiceClass(ServiceClass):
    """PS3.4 Annex J."""


class ProcedureStepServiceClass(ServiceClass):
    """PS3.4 Annex F (Modality Performed Procedure Step)."""


class PrintManagementServiceClass(ServiceClass):
    """PS3.4 Annex H."""


class MediaCreationManagementServiceClass(ServiceClass):
    """PS3.4 Annex S."""


class InstanceAvailabilityNotificationServiceClass(ServiceClass):
    """PS3.4 Annex R."""


class ApplicationEventLoggingServiceClass(ServiceClass):
    """PS3.4 Annex P."""


class DisplaySystemManagementServiceClass(ServiceClass):
    """PS3.4 Annex EE."""


class RTMachineVerificationServiceClass(ServiceClass):
    """PS3.4 Annex DD."""


class StorageManagementServiceClass(ServiceClass):
    """PS3.4 Annex KK (Inventory Creation)."""


class UnifiedProcedureStepServiceClass(ServiceClass):
    """PS3.4 Annex CC."""

    uid: ClassVar[str | None] = "1.2.840.10008.5.1.4.34.6"


_SERVICE_CLASSES: Final[dict[str, type[ServiceClass]]] = {
    cls.__name__: cls
    for cls in (
        VerificationServiceClass,
        StorageServiceClass,
        NonPatientObjectStorageServiceClass,
        QueryRetrieveServiceClass,
        BasicWorklistManagementServiceClass,
        HangingProtocolQueryRetrieveServiceClass,
        ColorPaletteQueryRetrieveServiceClass,
        DefinedProcedureProtocolQueryRetrieveServiceClass,
        ImplantTemplateQueryRetrieveServiceClass,
        ProtocolApprovalQueryRetrieveServiceClass,
        InventoryQueryRetrieveServiceClass,
        SubstanceAdministrationQueryServiceClass,
        RelevantPatientInformationQueryServiceClass,
        StorageCommitmentServiceClass,
        ProcedureStepServiceClass,
        PrintManagementServiceClass,
        MediaCreationManagementServiceClass,
        InstanceAvailabilityNotificationServiceClass,
        ApplicationEventLoggingServiceClass,
        DisplaySystemManagementServiceClass,
        RTMachineVerificationServiceClass,
        StorageManagementServiceClass,
        UnifiedProcedureStepServiceClass,
    )
}
# the media storage group (PS3.4 Annex I: files, not a network service) has no class of its own
_SERVICE_CLASSES["MediaStorage"] = ServiceClass


# --- SOP classes ----------------------------------------------------------------------------------


class SOPClass(UID):
    """A SOP class UID: a :class:`pydicom.uid.UID` (so a ``str``) with its service class."""

    def __new__(cls, val: str) -> SOPClass:
        # pydicom annotates UID.__new__ as returning UID; the object is of this class
        return cast(SOPClass, super().__new__(cls, val))

    @property
    def service_class(self) -> type[ServiceClass]:
        """The service class this SOP class belongs to (:func:`uid_to_service_class`)."""
        return uid_to_service_class(self)


_SERVICE_OF: dict[str, type[ServiceClass]] = {}  # SOP class UID -> service class
_DIMSE_OF: dict[str, str] = {}  # query/retrieve family SOP class UID -> C-FIND, C-GET or C-MOVE
_SOP_CLASSES: dict[str, SOPClass] = {}  # SOP class UID -> its module attribute

# Service Class UIDs (PS3.6 Annex A) answered by uid_to_service_class too
_BY_SERVICE_UID: Final[dict[str, type[ServiceClass]]] = {
    "1.2.840.10008.4.2": StorageServiceClass,
    "1.2.840.10008.5.1.4.34.6": UnifiedProcedureStepServiceClass,
}

# pynetdicom name -> PS3.6 keyword, for the names pynetdicom spells its own way
_PYNETDICOM_SPELLINGS: Final[dict[str, str]] = {
    "ModalityWorklistInformationFind": "ModalityWorklistInformationModelFind",
    "ColorPaletteInformationModelFind": "ColorPaletteQueryRetrieveInformationModelFind",
    "ColorPaletteInformationModelMove": "ColorPaletteQueryRetrieveInformationModelMove",
    "ColorPaletteInformationModelGet": "ColorPaletteQueryRetrieveInformationModelGet",
    "PseudoColorSoftcopyPresentationStageStorage": "PseudoColorSoftcopyPresentationStateStorage",
    "VariableModalityLUTSoftcopyPresentationStageStorage": (
        "VariableModalityLUTSoftcopyPresentationStateStorage"
    ),
    "OphthlamicOpticalCoherenceTomographyBscanVolumeAnalysisStorage": (
        "OphthalmicOpticalCoherenceTomographyBscanVolumeAnalysisStorage"
    ),
    "RoboticArmRadiationRecordStorage": "RoboticRadiationRecordStorage",
    "RTBrachyApplicationSetupDeliveryInstructionsStorage": (
        "RTBrachyApplicationSetupDeliveryInstructionStorage"
    ),
}


def _dimse_of(keyword: str) -> str | None:
    """The DIMSE-C service of a query/retrieve family SOP class, from its PS3.6 keyword."""
    for suffix, message in (("Find", "C-FIND"), ("Get", "C-GET"), ("Move", "C-MOVE")):
        if keyword.endswith(suffix):
            return message
    return "C-FIND" if keyword.endswith("Query") else None


def _add(keyword: str, uid: str, service_class: type[ServiceClass], dimse: str | None) -> None:
    sop_class = SOPClass(uid)
    _SERVICE_OF[uid] = service_class
    _SOP_CLASSES[uid] = sop_class
    if dimse is not None:
        _DIMSE_OF[uid] = dimse
    if keyword not in globals():
        __all__.append(keyword)
    globals()[keyword] = sop_class


for _group, _table in SERVICE_SOP_CLASSES.items():
    _cls = _SERVICE_CLASSES[_group]
    for _keyword, _uid in _table.items():
        _qr = issubclass(_cls, QueryRetrieveServiceClass)
        _add(_keyword, _uid, _cls, _dimse_of(_keyword) if _qr else None)
for _keyword, _uid in RETIRED_STORAGE_SOP_CLASSES.items():
    _add(_keyword, _uid, StorageServiceClass, None)
for _alias, _keyword in _PYNETDICOM_SPELLINGS.items():
    globals()[_alias] = globals()[_keyword]
    __all__.append(_alias)
del _group, _table, _cls, _keyword, _uid, _qr, _alias

# PS3.6 Annex A well-known SOP instances: plain UIDs, like pynetdicom's
StorageCommitmentPushModelInstance: Final = UID(
    WELL_KNOWN_INSTANCES["StorageCommitmentPushModelInstance"]
)
ProceduralEventLoggingInstance: Final = UID(WELL_KNOWN_INSTANCES["ProceduralEventLoggingInstance"])
SubstanceAdministrationLoggingInstance: Final = UID(
    WELL_KNOWN_INSTANCES["SubstanceAdministrationLoggingInstance"]
)
PrinterInstance: Final = UID(WELL_KNOWN_INSTANCES["PrinterInstance"])
PrinterConfigurationRetrievalInstance: Final = UID(
    WELL_KNOWN_INSTANCES["PrinterConfigurationRetrievalInstance"]
)
DisplaySystemInstance: Final = UID(WELL_KNOWN_INSTANCES["DisplaySystemInstance"])
StorageManagementInstance: Final = UID(WELL_KNOWN_INSTANCES["StorageManagementInstance"])
UPSGlobalSubscriptionInstance: Final = UID(WELL_KNOWN_INSTANCES["UPSGlobalSubscriptionInstance"])
UPSFilteredGlobalSubscriptionInstance: Final = UID(
    WELL_KNOWN_INSTANCES["UPSFilteredGlobalSubscriptionInstance"]
)


def __getattr__(name: str) -> SOPClass:
    """Only for type checkers: the SOP class names are made at import and by
    :func:`register_uid`, so a checker cannot see them; this tells it their type."""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- look-ups and registration ----------------------------------------------------------------


def uid_to_service_class(uid: str) -> type[ServiceClass]:
    """The service class of a SOP class UID (or of a Service Class UID); :class:`ServiceClass`
    itself for a UID no service class knows."""
    uid = str(uid)
    return _SERVICE_OF.get(uid) or _BY_SERVICE_UID.get(uid) or ServiceClass


def uid_to_sop_class(uid: str) -> SOPClass:
    """The :class:`SOPClass` for ``uid``: this module's object when the UID is known, else a new
    one (whose ``service_class`` is :class:`ServiceClass`)."""
    known = _SOP_CLASSES.get(str(uid))
    return known if known is not None else SOPClass(str(uid))


def registered_sop_classes(
    service_class: type[ServiceClass], dimse_msg_type: str | None = None
) -> list[SOPClass]:
    """The SOP classes registered with exactly ``service_class`` (the standard's and those of
    :func:`register_uid`); for the query/retrieve family, ``dimse_msg_type`` (``"C-FIND"``,
    ``"C-GET"``, ``"C-MOVE"``) keeps those of one DIMSE service."""
    return [
        _SOP_CLASSES[uid]
        for uid, cls in _SERVICE_OF.items()
        if cls is service_class and (dimse_msg_type is None or _DIMSE_OF.get(uid) == dimse_msg_type)
    ]


def register_uid(
    uid: str,
    keyword: str,
    service_class: type[ServiceClass],
    dimse_msg_type: str | None = None,
) -> None:
    """Register a (private or newer) SOP class ``uid`` with ``service_class``.

    Afterwards ``keyword`` is an attribute of this module (``from dicomnet.sop_class import
    keyword`` works), :func:`uid_to_service_class` returns ``service_class`` for ``uid`` and
    :func:`registered_sop_classes` lists it. ``keyword`` must be a Python identifier that is not
    a Python keyword nor one of this module's functions or classes; registering a keyword again
    replaces it. With :class:`QueryRetrieveServiceClass` itself, ``dimse_msg_type`` says which
    service the UID is for (``"C-FIND"``, ``"C-GET"`` or ``"C-MOVE"``); the other query/retrieve
    family classes are C-FIND.

    Raises :class:`ValueError` for a bad keyword, UID or ``dimse_msg_type`` and
    :class:`TypeError` when ``service_class`` is not a :class:`ServiceClass` subclass.
    """
    if not keyword.isidentifier() or iskeyword(keyword) or keyword in _NOT_KEYWORDS:
        raise ValueError(f"{keyword!r} cannot be used as a SOP class keyword")
    if not isinstance(service_class, type):
        raise TypeError("'service_class' must be a class, not an instance")
    if not issubclass(service_class, ServiceClass):
        raise TypeError(f"{service_class!r} is not a ServiceClass subclass")
    uid = str(uid)
    if not 0 < len(uid) <= 64 or any(c not in "0123456789." for c in uid):
        raise ValueError(f"{uid!r} is not a UID (PS3.5 section 9.1)")
    dimse: str | None = None
    if service_class is QueryRetrieveServiceClass:
        if dimse_msg_type not in ("C-FIND", "C-GET", "C-MOVE"):
            raise ValueError(
                "'dimse_msg_type' must be 'C-FIND', 'C-GET' or 'C-MOVE' for a UID registered "
                "with QueryRetrieveServiceClass"
            )
        dimse = dimse_msg_type
    elif issubclass(service_class, QueryRetrieveServiceClass):
        dimse = "C-FIND"
    _add(keyword, uid, service_class, dimse)


# names register_uid must not take: this module's functions, classes and imports
_NOT_KEYWORDS: Final = frozenset(
    name for name, value in globals().items() if not isinstance(value, UID)
)
