"""``dicomnet.service_class``: the DIMSE-C service classes (PS3.4) under the module name
pynetdicom programs import them from, e.g. for ``register_uid(uid, keyword,
StorageServiceClass)``. In dicomnet they are markers naming a SOP class's service
(:mod:`dicomnet.sop_class`); serving is done by the handlers bound to an AE's server."""

from __future__ import annotations

from dicomnet.sop_class import (
    BasicWorklistManagementServiceClass,
    ColorPaletteQueryRetrieveServiceClass,
    DefinedProcedureProtocolQueryRetrieveServiceClass,
    HangingProtocolQueryRetrieveServiceClass,
    ImplantTemplateQueryRetrieveServiceClass,
    InventoryQueryRetrieveServiceClass,
    NonPatientObjectStorageServiceClass,
    ProtocolApprovalQueryRetrieveServiceClass,
    QueryRetrieveServiceClass,
    RelevantPatientInformationQueryServiceClass,
    ServiceClass,
    StorageServiceClass,
    SubstanceAdministrationQueryServiceClass,
    VerificationServiceClass,
)

__all__ = [
    "BasicWorklistManagementServiceClass",
    "ColorPaletteQueryRetrieveServiceClass",
    "DefinedProcedureProtocolQueryRetrieveServiceClass",
    "HangingProtocolQueryRetrieveServiceClass",
    "ImplantTemplateQueryRetrieveServiceClass",
    "InventoryQueryRetrieveServiceClass",
    "NonPatientObjectStorageServiceClass",
    "ProtocolApprovalQueryRetrieveServiceClass",
    "QueryRetrieveServiceClass",
    "RelevantPatientInformationQueryServiceClass",
    "ServiceClass",
    "StorageServiceClass",
    "SubstanceAdministrationQueryServiceClass",
    "VerificationServiceClass",
]
