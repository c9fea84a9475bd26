"""``dicomnet.service_class_n``: the DIMSE-N service classes (PS3.4) under the module name
pynetdicom programs import them from (see :mod:`dicomnet.service_class`)."""

from __future__ import annotations

from dicomnet.sop_class import (
    ApplicationEventLoggingServiceClass,
    DisplaySystemManagementServiceClass,
    InstanceAvailabilityNotificationServiceClass,
    MediaCreationManagementServiceClass,
    PrintManagementServiceClass,
    ProcedureStepServiceClass,
    RTMachineVerificationServiceClass,
    ServiceClass,
    StorageCommitmentServiceClass,
    StorageManagementServiceClass,
    UnifiedProcedureStepServiceClass,
)

__all__ = [
    "ApplicationEventLoggingServiceClass",
    "DisplaySystemManagementServiceClass",
    "InstanceAvailabilityNotificationServiceClass",
    "MediaCreationManagementServiceClass",
    "PrintManagementServiceClass",
    "ProcedureStepServiceClass",
    "RTMachineVerificationServiceClass",
    "ServiceClass",
    "StorageCommitmentServiceClass",
    "StorageManagementServiceClass",
    "UnifiedProcedureStepServiceClass",
]
