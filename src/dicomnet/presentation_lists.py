"""SOP classes grouped by service class, and the ready-made context lists built from them.

Theory of operation
-------------------
PS3.4 defines each service class in an annex (Verification A, Storage B, Query/Retrieve C,
Procedure Step F, Print Management H, Media Storage I, Storage Commitment J, Basic Worklist
Management K, ...) and PS3.6 Annex A assigns every SOP class of those annexes a UID and a
keyword. :data:`SERVICE_SOP_CLASSES` is that grouping as plain data: service class name ->
{PS3.6 keyword: UID}. It was written once with a throw-away script that looked the UIDs up in
pydicom's copy of the PS3.6 registry (so the keywords are the standard's), and the storage group
is derived from :data:`dicomnet.uid.STORAGE_SOP_CLASSES` rather than repeated. The group names
are the service class names pynetdicom programs use (``StorageServiceClass`` ...), so that
:mod:`dicomnet.sop_class` can map them to its service class objects by name.

The same data gives the pynetdicom-style ``*PresentationContexts`` lists that
:mod:`dicomnet.presentation` serves on first access (:func:`abstract_syntaxes`): each list is one
group's UIDs in string order, proposed with the four uncompressed transfer syntaxes of
:data:`CONTEXT_LIST_TRANSFER_SYNTAXES`. Two lists are not a whole group:

* ``StoragePresentationContexts`` must fit an A-ASSOCIATE-RQ next to a few other contexts:
  context IDs are the odd numbers 1-255 (PS3.8 section 9.3.2.2), so at most 128 contexts, and the
  list keeps 120 of them: :data:`DEFAULT_STORAGE_KEYWORDS`, the long-established image, SR and
  waveform classes plus the retired ones old modalities still send.
* ``AllStoragePresentationContexts`` is every current Storage SOP class of PS3.4 Table B.5-1
  except the DICOS (security screening, ``...1.1.501.x``) and DICONDE (eddy current testing,
  ``...1.1.601.x``) classes; too long for one association, it is meant for an acceptor's
  supported contexts.

This module imports nothing heavier than :mod:`dicomnet.uid`; it does not import pydicom, so
reading a list does not cost a pydicom import.
"""

from __future__ import annotations

from typing import Final

from dicomnet.uid import RETIRED_STORAGE_SOP_CLASSES, STORAGE_SOP_CLASSES

__all__ = [
    "CONTEXT_LISTS",
    "CONTEXT_LIST_TRANSFER_SYNTAXES",
    "DEFAULT_STORAGE_KEYWORDS",
    "NEWER_STORAGE_SOP_CLASSES",
    "SERVICE_SOP_CLASSES",
    "WELL_KNOWN_INSTANCES",
    "abstract_syntaxes",
]

CONTEXT_LIST_TRANSFER_SYNTAXES: Final[tuple[str, ...]] = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still seen)
)
"""Transfer syntaxes of every context in the ready-made lists: the uncompressed syntaxes of
PS3.5 section 10 (Implicit VR LE, the default one, first), as pynetdicom proposes them."""

# Storage SOP classes added to PS3.6 after the edition dicomnet.uid's table was generated from.
NEWER_STORAGE_SOP_CLASSES: Final[dict[str, str]] = {
    "LabelMapSegmentationStorage": "1.2.840.10008.5.1.4.1.1.66.7",
    "HeightMapSegmentationStorage": "1.2.840.10008.5.1.4.1.1.66.8",
    "WaveformPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.9.100.1",
    "WaveformAcquisitionPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.9.100.2",
}

_MEDIA_STORAGE = {"MediaStorageDirectoryStorage": "1.2.840.10008.1.3.10"}  # PS3.4 Annex I

# PS3.4 Annex GG: instances not about a patient, stored with the Non-Patient Object Storage
# service class (the performed procedure protocols, patient data, stay in Storage).
_NON_PATIENT_OBJECT_STORAGE = {
    "CTDefinedProcedureProtocolStorage": "1.2.840.10008.5.1.4.1.1.200.1",
    "ProtocolApprovalStorage": "1.2.840.10008.5.1.4.1.1.200.3",
    "XADefinedProcedureProtocolStorage": "1.2.840.10008.5.1.4.1.1.200.7",
    "InventoryStorage": "1.2.840.10008.5.1.4.1.1.201.1",
    "HangingProtocolStorage": "1.2.840.10008.5.1.4.38.1",
    "ColorPaletteStorage": "1.2.840.10008.5.1.4.39.1",
    "GenericImplantTemplateStorage": "1.2.840.10008.5.1.4.43.1",
    "ImplantAssemblyTemplateStorage": "1.2.840.10008.5.1.4.44.1",
    "ImplantTemplateGroupStorage": "1.2.840.10008.5.1.4.45.1",
}

_NOT_STORAGE = {*_MEDIA_STORAGE.values(), *_NON_PATIENT_OBJECT_STORAGE.values()}

SERVICE_SOP_CLASSES: Final[dict[str, dict[str, str]]] = {
    # PS3.4 Annex A
    "VerificationServiceClass": {
        "Verification": "1.2.840.10008.1.1",
    },
    # PS3.4 Annex B, Table B.5-1 (current classes; the retired ones are in dicomnet.uid)
    "StorageServiceClass": {
        **{k: v for k, v in STORAGE_SOP_CLASSES.items() if v not in _NOT_STORAGE},
        **NEWER_STORAGE_SOP_CLASSES,
    },
    # PS3.4 Annex C (C.6 information models; Repository Query, C.6.4; Patient/Study Only is
    # retired but still answered by many archives)
    "QueryRetrieveServiceClass": {
        "RepositoryQuery": "1.2.840.10008.5.1.4.1.1.201.6",
        "PatientRootQueryRetrieveInformationModelFind": "1.2.840.10008.5.1.4.1.2.1.1",
        "PatientRootQueryRetrieveInformationModelMove": "1.2.840.10008.5.1.4.1.2.1.2",
        "PatientRootQueryRetrieveInformationModelGet": "1.2.840.10008.5.1.4.1.2.1.3",
        "StudyRootQueryRetrieveInformationModelFind": "1.2.840.10008.5.1.4.1.2.2.1",
        "StudyRootQueryRetrieveInformationModelMove": "1.2.840.10008.5.1.4.1.2.2.2",
        "StudyRootQueryRetrieveInformationModelGet": "1.2.840.10008.5.1.4.1.2.2.3",
        "PatientStudyOnlyQueryRetrieveInformationModelFind": "1.2.840.10008.5.1.4.1.2.3.1",
        "PatientStudyOnlyQueryRetrieveInformationModelMove": "1.2.840.10008.5.1.4.1.2.3.2",
        "PatientStudyOnlyQueryRetrieveInformationModelGet": "1.2.840.10008.5.1.4.1.2.3.3",
        "CompositeInstanceRootRetrieveMove": "1.2.840.10008.5.1.4.1.2.4.2",
        "CompositeInstanceRootRetrieveGet": "1.2.840.10008.5.1.4.1.2.4.3",
        "CompositeInstanceRetrieveWithoutBulkDataGet": "1.2.840.10008.5.1.4.1.2.5.3",
    },
    # PS3.4 Annex K
    "BasicWorklistManagementServiceClass": {
        "ModalityWorklistInformationModelFind": "1.2.840.10008.5.1.4.31",
    },
    # PS3.4 Annex J (the Pull Model is retired)
    "StorageCommitmentServiceClass": {
        "StorageCommitmentPushModel": "1.2.840.10008.1.20.1",
    },
    # PS3.4 Annex F
    "ProcedureStepServiceClass": {
        "ModalityPerformedProcedureStep": "1.2.840.10008.3.1.2.3.3",
        "ModalityPerformedProcedureStepRetrieve": "1.2.840.10008.3.1.2.3.4",
        "ModalityPerformedProcedureStepNotification": "1.2.840.10008.3.1.2.3.5",
    },
    # PS3.4 Annex H (the two Meta SOP classes and the SOP classes they group)
    "PrintManagementServiceClass": {
        "BasicFilmSession": "1.2.840.10008.5.1.1.1",
        "BasicFilmBox": "1.2.840.10008.5.1.1.2",
        "BasicGrayscaleImageBox": "1.2.840.10008.5.1.1.4",
        "BasicColorImageBox": "1.2.840.10008.5.1.1.4.1",
        "BasicGrayscalePrintManagementMeta": "1.2.840.10008.5.1.1.9",
        "PrintJob": "1.2.840.10008.5.1.1.14",
        "BasicAnnotationBox": "1.2.840.10008.5.1.1.15",
        "Printer": "1.2.840.10008.5.1.1.16",
        "PrinterConfigurationRetrieval": "1.2.840.10008.5.1.1.16.376",
        "BasicColorPrintManagementMeta": "1.2.840.10008.5.1.1.18",
        "PresentationLUT": "1.2.840.10008.5.1.1.23",
    },
    # PS3.4 Annex I: a DICOMDIR is a file, not a network service
    "MediaStorage": dict(_MEDIA_STORAGE),
    # PS3.4 Annex S
    "MediaCreationManagementServiceClass": {
        "MediaCreationManagement": "1.2.840.10008.5.1.1.33",
    },
    # PS3.4 Annex R
    "InstanceAvailabilityNotificationServiceClass": {
        "InstanceAvailabilityNotification": "1.2.840.10008.5.1.4.33",
    },
    # PS3.4 Annex P
    "ApplicationEventLoggingServiceClass": {
        "ProceduralEventLogging": "1.2.840.10008.1.40",
        "SubstanceAdministrationLogging": "1.2.840.10008.1.42",
    },
    # PS3.4 Annex EE
    "DisplaySystemManagementServiceClass": {
        "DisplaySystem": "1.2.840.10008.5.1.1.40",
    },
    # PS3.4 Annex U
    "HangingProtocolQueryRetrieveServiceClass": {
        "HangingProtocolInformationModelFind": "1.2.840.10008.5.1.4.38.2",
        "HangingProtocolInformationModelMove": "1.2.840.10008.5.1.4.38.3",
        "HangingProtocolInformationModelGet": "1.2.840.10008.5.1.4.38.4",
    },
    # PS3.4 Annex X
    "ColorPaletteQueryRetrieveServiceClass": {
        "ColorPaletteQueryRetrieveInformationModelFind": "1.2.840.10008.5.1.4.39.2",
        "ColorPaletteQueryRetrieveInformationModelMove": "1.2.840.10008.5.1.4.39.3",
        "ColorPaletteQueryRetrieveInformationModelGet": "1.2.840.10008.5.1.4.39.4",
    },
    # PS3.4 Annex HH
    "DefinedProcedureProtocolQueryRetrieveServiceClass": {
        "DefinedProcedureProtocolInformationModelFind": "1.2.840.10008.5.1.4.20.1",
        "DefinedProcedureProtocolInformationModelMove": "1.2.840.10008.5.1.4.20.2",
        "DefinedProcedureProtocolInformationModelGet": "1.2.840.10008.5.1.4.20.3",
    },
    # PS3.4 Annex BB
    "ImplantTemplateQueryRetrieveServiceClass": {
        "GenericImplantTemplateInformationModelFind": "1.2.840.10008.5.1.4.43.2",
        "GenericImplantTemplateInformationModelMove": "1.2.840.10008.5.1.4.43.3",
        "GenericImplantTemplateInformationModelGet": "1.2.840.10008.5.1.4.43.4",
        "ImplantAssemblyTemplateInformationModelFind": "1.2.840.10008.5.1.4.44.2",
        "ImplantAssemblyTemplateInformationModelMove": "1.2.840.10008.5.1.4.44.3",
        "ImplantAssemblyTemplateInformationModelGet": "1.2.840.10008.5.1.4.44.4",
        "ImplantTemplateGroupInformationModelFind": "1.2.840.10008.5.1.4.45.2",
        "ImplantTemplateGroupInformationModelMove": "1.2.840.10008.5.1.4.45.3",
        "ImplantTemplateGroupInformationModelGet": "1.2.840.10008.5.1.4.45.4",
    },
    # PS3.4 Annex II
    "ProtocolApprovalQueryRetrieveServiceClass": {
        "ProtocolApprovalInformationModelFind": "1.2.840.10008.5.1.4.1.1.200.4",
        "ProtocolApprovalInformationModelMove": "1.2.840.10008.5.1.4.1.1.200.5",
        "ProtocolApprovalInformationModelGet": "1.2.840.10008.5.1.4.1.1.200.6",
    },
    # PS3.4 Annex KK (Inventory query/retrieve and Storage Management)
    "InventoryQueryRetrieveServiceClass": {
        "InventoryFind": "1.2.840.10008.5.1.4.1.1.201.2",
        "InventoryMove": "1.2.840.10008.5.1.4.1.1.201.3",
        "InventoryGet": "1.2.840.10008.5.1.4.1.1.201.4",
    },
    "StorageManagementServiceClass": {
        "InventoryCreation": "1.2.840.10008.5.1.4.1.1.201.5",
    },
    # PS3.4 Annex GG
    "NonPatientObjectStorageServiceClass": dict(_NON_PATIENT_OBJECT_STORAGE),
    # PS3.4 Annex Q
    "RelevantPatientInformationQueryServiceClass": {
        "GeneralRelevantPatientInformationQuery": "1.2.840.10008.5.1.4.37.1",
        "BreastImagingRelevantPatientInformationQuery": "1.2.840.10008.5.1.4.37.2",
        "CardiacRelevantPatientInformationQuery": "1.2.840.10008.5.1.4.37.3",
    },
    # PS3.4 Annex V
    "SubstanceAdministrationQueryServiceClass": {
        "ProductCharacteristicsQuery": "1.2.840.10008.5.1.4.41",
        "SubstanceApprovalQuery": "1.2.840.10008.5.1.4.42",
    },
    # PS3.4 Annex DD
    "RTMachineVerificationServiceClass": {
        "RTConventionalMachineVerification": "1.2.840.10008.5.1.4.34.8",
        "RTIonMachineVerification": "1.2.840.10008.5.1.4.34.9",
    },
    # PS3.4 Annex CC
    "UnifiedProcedureStepServiceClass": {
        "UnifiedProcedureStepPush": "1.2.840.10008.5.1.4.34.6.1",
        "UnifiedProcedureStepWatch": "1.2.840.10008.5.1.4.34.6.2",
        "UnifiedProcedureStepPull": "1.2.840.10008.5.1.4.34.6.3",
        "UnifiedProcedureStepEvent": "1.2.840.10008.5.1.4.34.6.4",
        "UnifiedProcedureStepQuery": "1.2.840.10008.5.1.4.34.6.5",
    },
}
"""Service class name -> {PS3.6 keyword: SOP class UID} (see the module docstring)."""

WELL_KNOWN_INSTANCES: Final[dict[str, str]] = {
    # PS3.6 Annex A, "Well-known SOP Instance"
    "StorageCommitmentPushModelInstance": "1.2.840.10008.1.20.1.1",
    "ProceduralEventLoggingInstance": "1.2.840.10008.1.40.1",
    "SubstanceAdministrationLoggingInstance": "1.2.840.10008.1.42.1",
    "PrinterInstance": "1.2.840.10008.5.1.1.17",
    "PrinterConfigurationRetrievalInstance": "1.2.840.10008.5.1.1.17.376",
    "DisplaySystemInstance": "1.2.840.10008.5.1.1.40.1",
    "StorageManagementInstance": "1.2.840.10008.5.1.4.1.1.201.1.1",
    "UPSGlobalSubscriptionInstance": "1.2.840.10008.5.1.4.34.5",
    "UPSFilteredGlobalSubscriptionInstance": "1.2.840.10008.5.1.4.34.5.1",
}
"""SOP instances with a fixed UID (the N-service SCP's single instance), PS3.6 keyword -> UID."""

DEFAULT_STORAGE_KEYWORDS: Final[tuple[str, ...]] = (
    "StoredPrintStorage", "HardcopyGrayscaleImageStorage", "HardcopyColorImageStorage",
    "ComputedRadiographyImageStorage", "DigitalXRayImageStorageForPresentation",
    "DigitalXRayImageStorageForProcessing", "DigitalMammographyXRayImageStorageForPresentation",
    "DigitalMammographyXRayImageStorageForProcessing",
    "DigitalIntraOralXRayImageStorageForPresentation",
    "DigitalIntraOralXRayImageStorageForProcessing", "StandaloneModalityLUTStorage",
    "EncapsulatedPDFStorage", "EncapsulatedCDAStorage", "StandaloneVOILUTStorage",
    "GrayscaleSoftcopyPresentationStateStorage", "ColorSoftcopyPresentationStateStorage",
    "PseudoColorSoftcopyPresentationStateStorage", "BlendingSoftcopyPresentationStateStorage",
    "XAXRFGrayscaleSoftcopyPresentationStateStorage", "XRayAngiographicImageStorage",
    "EnhancedXAImageStorage", "XRayRadiofluoroscopicImageStorage", "EnhancedXRFImageStorage",
    "XRayAngiographicBiPlaneImageStorage", "PositronEmissionTomographyImageStorage",
    "LegacyConvertedEnhancedPETImageStorage", "StandalonePETCurveStorage",
    "XRay3DAngiographicImageStorage", "XRay3DCraniofacialImageStorage",
    "BreastTomosynthesisImageStorage", "EnhancedPETImageStorage", "BasicStructuredDisplayStorage",
    "IntravascularOpticalCoherenceTomographyImageStorageForPresentation",
    "IntravascularOpticalCoherenceTomographyImageStorageForProcessing", "CTImageStorage",
    "EnhancedCTImageStorage", "LegacyConvertedEnhancedCTImageStorage",
    "NuclearMedicineImageStorage", "UltrasoundMultiFrameImageStorageRetired",
    "UltrasoundMultiFrameImageStorage", "MRImageStorage", "EnhancedMRImageStorage",
    "MRSpectroscopyStorage", "EnhancedMRColorImageStorage",
    "LegacyConvertedEnhancedMRImageStorage", "RTImageStorage", "RTDoseStorage",
    "RTStructureSetStorage", "RTBeamsTreatmentRecordStorage", "RTPlanStorage",
    "RTBrachyTreatmentRecordStorage", "RTTreatmentSummaryRecordStorage", "RTIonPlanStorage",
    "RTIonBeamsTreatmentRecordStorage", "NuclearMedicineImageStorageRetired",
    "UltrasoundImageStorageRetired", "UltrasoundImageStorage", "EnhancedUSVolumeStorage",
    "RawDataStorage", "SpatialRegistrationStorage", "SpatialFiducialsStorage",
    "DeformableSpatialRegistrationStorage", "SegmentationStorage", "SurfaceSegmentationStorage",
    "RealWorldValueMappingStorage", "SurfaceScanMeshStorage", "SurfaceScanPointCloudStorage",
    "SecondaryCaptureImageStorage", "MultiFrameSingleBitSecondaryCaptureImageStorage",
    "MultiFrameGrayscaleByteSecondaryCaptureImageStorage",
    "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
    "MultiFrameTrueColorSecondaryCaptureImageStorage", "VLImageStorageTrial",
    "VLEndoscopicImageStorage", "VideoEndoscopicImageStorage", "VLMicroscopicImageStorage",
    "VideoMicroscopicImageStorage", "VLSlideCoordinatesMicroscopicImageStorage",
    "VLPhotographicImageStorage", "VideoPhotographicImageStorage",
    "OphthalmicPhotography8BitImageStorage", "OphthalmicPhotography16BitImageStorage",
    "StereometricRelationshipStorage", "OphthalmicTomographyImageStorage",
    "VLWholeSlideMicroscopyImageStorage", "VLMultiFrameImageStorageTrial",
    "LensometryMeasurementsStorage", "AutorefractionMeasurementsStorage",
    "KeratometryMeasurementsStorage", "SubjectiveRefractionMeasurementsStorage",
    "VisualAcuityMeasurementsStorage", "SpectaclePrescriptionReportStorage",
    "OphthalmicAxialMeasurementsStorage", "IntraocularLensCalculationsStorage",
    "MacularGridThicknessAndVolumeReportStorage", "StandaloneOverlayStorage",
    "OphthalmicVisualFieldStaticPerimetryMeasurementsStorage", "OphthalmicThicknessMapStorage",
    "BasicTextSRStorage", "EnhancedSRStorage", "ComprehensiveSRStorage",
    "Comprehensive3DSRStorage", "ProcedureLogStorage", "MammographyCADSRStorage",
    "KeyObjectSelectionDocumentStorage", "ChestCADSRStorage", "XRayRadiationDoseSRStorage",
    "ColonCADSRStorage", "ImplantationPlanSRStorage", "StandaloneCurveStorage",
    "TwelveLeadECGWaveformStorage", "GeneralECGWaveformStorage", "AmbulatoryECGWaveformStorage",
    "HemodynamicWaveformStorage", "CardiacElectrophysiologyWaveformStorage",
    "BasicVoiceAudioWaveformStorage", "GeneralAudioWaveformStorage",
    "ArterialPulseWaveformStorage", "RespiratoryWaveformStorage",
    "RTBeamsDeliveryInstructionStorage",
)  # fmt: skip
"""The 120 storage classes of ``StoragePresentationContexts`` (PS3.6 keywords; the retired
ones as :data:`dicomnet.uid.RETIRED_STORAGE_SOP_CLASSES` spells them)."""

# list name -> the service group it is made of (the two storage lists are special, see above)
CONTEXT_LISTS: Final[dict[str, str]] = {
    "VerificationPresentationContexts": "VerificationServiceClass",
    "StoragePresentationContexts": "",
    "AllStoragePresentationContexts": "",
    "QueryRetrievePresentationContexts": "QueryRetrieveServiceClass",
    "BasicWorklistManagementPresentationContexts": "BasicWorklistManagementServiceClass",
    "RelevantPatientInformationPresentationContexts": (
        "RelevantPatientInformationQueryServiceClass"
    ),
    "SubstanceAdministrationPresentationContexts": "SubstanceAdministrationQueryServiceClass",
    "DisplaySystemPresentationContexts": "DisplaySystemManagementServiceClass",
    "HangingProtocolPresentationContexts": "HangingProtocolQueryRetrieveServiceClass",
    "DefinedProcedureProtocolPresentationContexts": (
        "DefinedProcedureProtocolQueryRetrieveServiceClass"
    ),
    "ColorPalettePresentationContexts": "ColorPaletteQueryRetrieveServiceClass",
    "ImplantTemplatePresentationContexts": "ImplantTemplateQueryRetrieveServiceClass",
    "ProtocolApprovalPresentationContexts": "ProtocolApprovalQueryRetrieveServiceClass",
    "NonPatientObjectPresentationContexts": "NonPatientObjectStorageServiceClass",
    "UnifiedProcedurePresentationContexts": "UnifiedProcedureStepServiceClass",
    "ModalityPerformedPresentationContexts": "ProcedureStepServiceClass",
    "ProcedureStepPresentationContexts": "ProcedureStepServiceClass",
    "StorageCommitmentPresentationContexts": "StorageCommitmentServiceClass",
    "PrintManagementPresentationContexts": "PrintManagementServiceClass",
    "MediaStoragePresentationContexts": "MediaStorage",
    "MediaCreationManagementPresentationContexts": "MediaCreationManagementServiceClass",
    "InstanceAvailabilityPresentationContexts": "InstanceAvailabilityNotificationServiceClass",
    "ApplicationEventLoggingPresentationContexts": "ApplicationEventLoggingServiceClass",
    "RTMachineVerificationPresentationContexts": "RTMachineVerificationServiceClass",
}

# DICOS (PS3.4 B.5, security screening) and DICONDE (eddy current testing): not in the list
_NOT_IN_ALL_STORAGE = ("1.2.840.10008.5.1.4.1.1.501.", "1.2.840.10008.5.1.4.1.1.601.")


def abstract_syntaxes(list_name: str) -> list[str]:
    """The abstract syntaxes of the context list ``list_name``, in list order (string order
    of the UIDs). Raises :class:`KeyError` for a name not in :data:`CONTEXT_LISTS`."""
    group = CONTEXT_LISTS[list_name]
    storage = SERVICE_SOP_CLASSES["StorageServiceClass"]
    if list_name == "StoragePresentationContexts":
        known = {**storage, **RETIRED_STORAGE_SOP_CLASSES}
        uids = [known[keyword] for keyword in DEFAULT_STORAGE_KEYWORDS]
    elif list_name == "AllStoragePresentationContexts":
        uids = [uid for uid in storage.values() if not uid.startswith(_NOT_IN_ALL_STORAGE)]
    else:
        uids = list(SERVICE_SOP_CLASSES[group].values())
    return sorted(uids)
