"""UID constants and UID syntax validation (PS3.5 section 9.1, PS3.6 Annex A).

Theory of operation
-------------------
Plain module constants, so importing this module costs nothing beyond the parse of this file:
no pydicom import, no dictionary walk at start-up. The transfer syntax and storage SOP class
tables were generated once from the standard's UID registry (PS3.6 Annex A, via pydicom's copy
of it) with a throw-away script and pasted here as literal text; regenerate them the same way
when a new edition adds UIDs.

:func:`is_valid_uid` implements the UID encoding rules of PS3.5 section 9.1: only the digits
0-9 and ".", each component non-empty and without a leading zero (unless the component is
exactly "0"), at most 64 characters. It is the gate that keeps peer-supplied UIDs (for example
an Affected SOP Instance UID that later names a file) from ever containing "/", "..", "\\" or
NUL.
"""

from __future__ import annotations

import re
from typing import Final

# PS3.5 section 9.1: components are "0" or a digit string not starting with 0, dot-separated.
_UID_RE: Final = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


# UIDs that passed, so the same UID checked again (by the DIMSE layer, then the storage
# handler, then the path builder) costs a dict lookup. Only valid UIDs go in; the memo is
# emptied whenever it is full, so a peer sending endless distinct UIDs bounds its size.
_KNOWN_VALID: dict[str, None] = {}
_KNOWN_VALID_MAX = 4096


class UIDValue(str):
    """A UID parameter of a request as an event handler sees it (``event.request``): the
    string itself, which also answers what a ``pydicom.uid.UID`` answers (``name``,
    ``keyword``, ``is_transfer_syntax``, ``is_valid``...), as pynetdicom programs expect of
    it. Those come from pydicom on first use (imported then), so a UID that nobody asks about
    costs a string; equality and hashing are the string's."""

    __slots__ = ()

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):  # copy, pickle and friends probe dunders: not pydicom's
            raise AttributeError(name)
        from pydicom.uid import UID  # lazy: pydicom only when a handler asks

        return getattr(UID(str(self), validation_mode=0), name)


def is_valid_uid(s: object) -> bool:
    """True when ``s`` is a str obeying the PS3.5 section 9.1 UID rules (no padding allowed)."""
    exact = type(s) is str or type(s) is UIDValue  # no subclass with its own __eq__/__hash__
    if exact and s in _KNOWN_VALID:
        return True
    if not (isinstance(s, str) and 0 < len(s) <= 64 and _UID_RE.fullmatch(s) is not None):
        return False
    if exact:
        if len(_KNOWN_VALID) >= _KNOWN_VALID_MAX:
            _KNOWN_VALID.clear()
        _KNOWN_VALID[str(s)] = None
    return True


# --- application context, verification (PS3.7 Annex A.2.1, PS3.4 Annex A) ---------------------
APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
Verification = "1.2.840.10008.1.1"
VerificationSOPClass = Verification

# --- query/retrieve (PS3.4 Annex C.6) and worklist (PS3.4 Annex K.6) ---------------------------
PatientRootQueryRetrieveInformationModelFind = "1.2.840.10008.5.1.4.1.2.1.1"
PatientRootQueryRetrieveInformationModelMove = "1.2.840.10008.5.1.4.1.2.1.2"
PatientRootQueryRetrieveInformationModelGet = "1.2.840.10008.5.1.4.1.2.1.3"
StudyRootQueryRetrieveInformationModelFind = "1.2.840.10008.5.1.4.1.2.2.1"
StudyRootQueryRetrieveInformationModelMove = "1.2.840.10008.5.1.4.1.2.2.2"
StudyRootQueryRetrieveInformationModelGet = "1.2.840.10008.5.1.4.1.2.2.3"
PatientStudyOnlyQueryRetrieveInformationModelFind = "1.2.840.10008.5.1.4.1.2.3.1"  # retired
PatientStudyOnlyQueryRetrieveInformationModelMove = "1.2.840.10008.5.1.4.1.2.3.2"  # retired
PatientStudyOnlyQueryRetrieveInformationModelGet = "1.2.840.10008.5.1.4.1.2.3.3"  # retired
ModalityWorklistInformationModelFind = "1.2.840.10008.5.1.4.31"

QR_FIND_SOP_CLASSES: Final[frozenset[str]] = frozenset(
    {
        PatientRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelFind,
        PatientStudyOnlyQueryRetrieveInformationModelFind,
    }
)
QR_MOVE_SOP_CLASSES: Final[frozenset[str]] = frozenset(
    {
        PatientRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelMove,
        PatientStudyOnlyQueryRetrieveInformationModelMove,
    }
)
QR_GET_SOP_CLASSES: Final[frozenset[str]] = frozenset(
    {
        PatientRootQueryRetrieveInformationModelGet,
        StudyRootQueryRetrieveInformationModelGet,
        PatientStudyOnlyQueryRetrieveInformationModelGet,
    }
)

# --- a few DIMSE-N SOP classes used by tests and services (PS3.4 Annex J, H, F) ----------------
StorageCommitmentPushModel = "1.2.840.10008.1.20.1"
ModalityPerformedProcedureStep = "1.2.840.10008.3.1.2.3.3"
BasicGrayscalePrintManagementMeta = "1.2.840.10008.5.1.1.9"
PrinterSOPClass = "1.2.840.10008.5.1.1.16"
PrinterSOPInstance = "1.2.840.10008.5.1.1.17"

# Compressed transfer syntaxes: everything except the native (uncompressed) ones below.
NATIVE_TRANSFER_SYNTAXES: Final[frozenset[str]] = frozenset(
    {
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.1.99",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.98",
    }
)

# --- transfer syntaxes (PS3.5 section 10, PS3.6 Annex A) ------------------------------
ImplicitVRLittleEndian = "1.2.840.10008.1.2"
ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
EncapsulatedUncompressedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.98"
DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
ExplicitVRBigEndian = "1.2.840.10008.1.2.2"
JPEGBaseline8Bit = "1.2.840.10008.1.2.4.50"
JPEGExtended12Bit = "1.2.840.10008.1.2.4.51"
JPEGExtended35 = "1.2.840.10008.1.2.4.52"
JPEGSpectralSelectionNonHierarchical68 = "1.2.840.10008.1.2.4.53"
JPEGSpectralSelectionNonHierarchical79 = "1.2.840.10008.1.2.4.54"
JPEGFullProgressionNonHierarchical1012 = "1.2.840.10008.1.2.4.55"
JPEGFullProgressionNonHierarchical1113 = "1.2.840.10008.1.2.4.56"
JPEGLossless = "1.2.840.10008.1.2.4.57"
JPEGLosslessNonHierarchical15 = "1.2.840.10008.1.2.4.58"
JPEGExtendedHierarchical1618 = "1.2.840.10008.1.2.4.59"
JPEGExtendedHierarchical1719 = "1.2.840.10008.1.2.4.60"
JPEGSpectralSelectionHierarchical2022 = "1.2.840.10008.1.2.4.61"
JPEGSpectralSelectionHierarchical2123 = "1.2.840.10008.1.2.4.62"
JPEGFullProgressionHierarchical2426 = "1.2.840.10008.1.2.4.63"
JPEGFullProgressionHierarchical2527 = "1.2.840.10008.1.2.4.64"
JPEGLosslessHierarchical28 = "1.2.840.10008.1.2.4.65"
JPEGLosslessHierarchical29 = "1.2.840.10008.1.2.4.66"
JPEGLosslessSV1 = "1.2.840.10008.1.2.4.70"
JPEGLSLossless = "1.2.840.10008.1.2.4.80"
JPEGLSNearLossless = "1.2.840.10008.1.2.4.81"
JPEG2000Lossless = "1.2.840.10008.1.2.4.90"
JPEG2000 = "1.2.840.10008.1.2.4.91"
JPEG2000MCLossless = "1.2.840.10008.1.2.4.92"
JPEG2000MC = "1.2.840.10008.1.2.4.93"
JPIPReferenced = "1.2.840.10008.1.2.4.94"
JPIPReferencedDeflate = "1.2.840.10008.1.2.4.95"
MPEG2MPML = "1.2.840.10008.1.2.4.100"
MPEG2MPMLF = "1.2.840.10008.1.2.4.100.1"
MPEG2MPHL = "1.2.840.10008.1.2.4.101"
MPEG2MPHLF = "1.2.840.10008.1.2.4.101.1"
MPEG4HP41 = "1.2.840.10008.1.2.4.102"
MPEG4HP41F = "1.2.840.10008.1.2.4.102.1"
MPEG4HP41BD = "1.2.840.10008.1.2.4.103"
MPEG4HP41BDF = "1.2.840.10008.1.2.4.103.1"
MPEG4HP422D = "1.2.840.10008.1.2.4.104"
MPEG4HP422DF = "1.2.840.10008.1.2.4.104.1"
MPEG4HP423D = "1.2.840.10008.1.2.4.105"
MPEG4HP423DF = "1.2.840.10008.1.2.4.105.1"
MPEG4HP42STEREO = "1.2.840.10008.1.2.4.106"
MPEG4HP42STEREOF = "1.2.840.10008.1.2.4.106.1"
HEVCMP51 = "1.2.840.10008.1.2.4.107"
HEVCM10P51 = "1.2.840.10008.1.2.4.108"
HTJ2KLossless = "1.2.840.10008.1.2.4.201"
HTJ2KLosslessRPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
JPIPHTJ2KReferenced = "1.2.840.10008.1.2.4.204"
JPIPHTJ2KReferencedDeflate = "1.2.840.10008.1.2.4.205"
RLELossless = "1.2.840.10008.1.2.5"
SMPTEST211020UncompressedProgressiveActiveVideo = "1.2.840.10008.1.2.7.1"
SMPTEST211020UncompressedInterlacedActiveVideo = "1.2.840.10008.1.2.7.2"
SMPTEST211030PCMDigitalAudio = "1.2.840.10008.1.2.7.3"

TRANSFER_SYNTAXES: Final[frozenset[str]] = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        EncapsulatedUncompressedExplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGExtended35,
        JPEGSpectralSelectionNonHierarchical68,
        JPEGSpectralSelectionNonHierarchical79,
        JPEGFullProgressionNonHierarchical1012,
        JPEGFullProgressionNonHierarchical1113,
        JPEGLossless,
        JPEGLosslessNonHierarchical15,
        JPEGExtendedHierarchical1618,
        JPEGExtendedHierarchical1719,
        JPEGSpectralSelectionHierarchical2022,
        JPEGSpectralSelectionHierarchical2123,
        JPEGFullProgressionHierarchical2426,
        JPEGFullProgressionHierarchical2527,
        JPEGLosslessHierarchical28,
        JPEGLosslessHierarchical29,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEGLSNearLossless,
        JPEG2000Lossless,
        JPEG2000,
        JPEG2000MCLossless,
        JPEG2000MC,
        JPIPReferenced,
        JPIPReferencedDeflate,
        MPEG2MPML,
        MPEG2MPMLF,
        MPEG2MPHL,
        MPEG2MPHLF,
        MPEG4HP41,
        MPEG4HP41F,
        MPEG4HP41BD,
        MPEG4HP41BDF,
        MPEG4HP422D,
        MPEG4HP422DF,
        MPEG4HP423D,
        MPEG4HP423DF,
        MPEG4HP42STEREO,
        MPEG4HP42STEREOF,
        HEVCMP51,
        HEVCM10P51,
        HTJ2KLossless,
        HTJ2KLosslessRPCL,
        HTJ2K,
        JPIPHTJ2KReferenced,
        JPIPHTJ2KReferencedDeflate,
        RLELossless,
        SMPTEST211020UncompressedProgressiveActiveVideo,
        SMPTEST211020UncompressedInterlacedActiveVideo,
        SMPTEST211030PCMDigitalAudio,
    }
)

# --- storage SOP classes (PS3.4 Annex B.5, Table B.5-1; non-retired) --------------------
STORAGE_SOP_CLASSES: Final[dict[str, str]] = {
    "MediaStorageDirectoryStorage": "1.2.840.10008.1.3.10",
    "ComputedRadiographyImageStorage": "1.2.840.10008.5.1.4.1.1.1",
    "DigitalXRayImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.1.1",
    "DigitalXRayImageStorageForProcessing": "1.2.840.10008.5.1.4.1.1.1.1.1",
    "DigitalMammographyXRayImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.1.2",
    "DigitalMammographyXRayImageStorageForProcessing": "1.2.840.10008.5.1.4.1.1.1.2.1",
    "DigitalIntraOralXRayImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.1.3",
    "DigitalIntraOralXRayImageStorageForProcessing": "1.2.840.10008.5.1.4.1.1.1.3.1",
    "CTImageStorage": "1.2.840.10008.5.1.4.1.1.2",
    "EnhancedCTImageStorage": "1.2.840.10008.5.1.4.1.1.2.1",
    "LegacyConvertedEnhancedCTImageStorage": "1.2.840.10008.5.1.4.1.1.2.2",
    "UltrasoundMultiFrameImageStorage": "1.2.840.10008.5.1.4.1.1.3.1",
    "MRImageStorage": "1.2.840.10008.5.1.4.1.1.4",
    "EnhancedMRImageStorage": "1.2.840.10008.5.1.4.1.1.4.1",
    "MRSpectroscopyStorage": "1.2.840.10008.5.1.4.1.1.4.2",
    "EnhancedMRColorImageStorage": "1.2.840.10008.5.1.4.1.1.4.3",
    "LegacyConvertedEnhancedMRImageStorage": "1.2.840.10008.5.1.4.1.1.4.4",
    "UltrasoundImageStorage": "1.2.840.10008.5.1.4.1.1.6.1",
    "EnhancedUSVolumeStorage": "1.2.840.10008.5.1.4.1.1.6.2",
    "PhotoacousticImageStorage": "1.2.840.10008.5.1.4.1.1.6.3",
    "SecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7",
    "MultiFrameSingleBitSecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7.1",
    "MultiFrameGrayscaleByteSecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7.2",
    "MultiFrameGrayscaleWordSecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7.3",
    "MultiFrameTrueColorSecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7.4",
    "TwelveLeadECGWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.1.1",
    "GeneralECGWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.1.2",
    "AmbulatoryECGWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.1.3",
    "General32bitECGWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.1.4",
    "HemodynamicWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.2.1",
    "CardiacElectrophysiologyWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.3.1",
    "BasicVoiceAudioWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.4.1",
    "GeneralAudioWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.4.2",
    "ArterialPulseWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.5.1",
    "RespiratoryWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.6.1",
    "MultichannelRespiratoryWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.6.2",
    "RoutineScalpElectroencephalogramWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.7.1",
    "ElectromyogramWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.7.2",
    "ElectrooculogramWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.7.3",
    "SleepElectroencephalogramWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.7.4",
    "BodyPositionWaveformStorage": "1.2.840.10008.5.1.4.1.1.9.8.1",
    "GrayscaleSoftcopyPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.1",
    "ColorSoftcopyPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.2",
    "PseudoColorSoftcopyPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.3",
    "BlendingSoftcopyPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.4",
    "XAXRFGrayscaleSoftcopyPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.5",
    "GrayscalePlanarMPRVolumetricPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.6",
    "CompositingPlanarMPRVolumetricPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.7",
    "AdvancedBlendingPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.8",
    "VolumeRenderingVolumetricPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.9",
    "SegmentedVolumeRenderingVolumetricPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.10",
    "MultipleVolumeRenderingVolumetricPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.11",
    "VariableModalityLUTSoftcopyPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.12",
    "XRayAngiographicImageStorage": "1.2.840.10008.5.1.4.1.1.12.1",
    "EnhancedXAImageStorage": "1.2.840.10008.5.1.4.1.1.12.1.1",
    "XRayRadiofluoroscopicImageStorage": "1.2.840.10008.5.1.4.1.1.12.2",
    "EnhancedXRFImageStorage": "1.2.840.10008.5.1.4.1.1.12.2.1",
    "XRay3DAngiographicImageStorage": "1.2.840.10008.5.1.4.1.1.13.1.1",
    "XRay3DCraniofacialImageStorage": "1.2.840.10008.5.1.4.1.1.13.1.2",
    "BreastTomosynthesisImageStorage": "1.2.840.10008.5.1.4.1.1.13.1.3",
    "BreastProjectionXRayImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.13.1.4",
    "BreastProjectionXRayImageStorageForProcessing": "1.2.840.10008.5.1.4.1.1.13.1.5",
    "IntravascularOpticalCoherenceTomographyImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.14.1",
    "IntravascularOpticalCoherenceTomographyImageStorageForProcessing": "1.2.840.10008.5.1.4.1.1.14.2",
    "NuclearMedicineImageStorage": "1.2.840.10008.5.1.4.1.1.20",
    "ParametricMapStorage": "1.2.840.10008.5.1.4.1.1.30",
    "RawDataStorage": "1.2.840.10008.5.1.4.1.1.66",
    "SpatialRegistrationStorage": "1.2.840.10008.5.1.4.1.1.66.1",
    "SpatialFiducialsStorage": "1.2.840.10008.5.1.4.1.1.66.2",
    "DeformableSpatialRegistrationStorage": "1.2.840.10008.5.1.4.1.1.66.3",
    "SegmentationStorage": "1.2.840.10008.5.1.4.1.1.66.4",
    "SurfaceSegmentationStorage": "1.2.840.10008.5.1.4.1.1.66.5",
    "TractographyResultsStorage": "1.2.840.10008.5.1.4.1.1.66.6",
    "RealWorldValueMappingStorage": "1.2.840.10008.5.1.4.1.1.67",
    "SurfaceScanMeshStorage": "1.2.840.10008.5.1.4.1.1.68.1",
    "SurfaceScanPointCloudStorage": "1.2.840.10008.5.1.4.1.1.68.2",
    "VLEndoscopicImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.1",
    "VideoEndoscopicImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.1.1",
    "VLMicroscopicImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.2",
    "VideoMicroscopicImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.2.1",
    "VLSlideCoordinatesMicroscopicImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.3",
    "VLPhotographicImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.4",
    "VideoPhotographicImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.4.1",
    "OphthalmicPhotography8BitImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.5.1",
    "OphthalmicPhotography16BitImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.5.2",
    "StereometricRelationshipStorage": "1.2.840.10008.5.1.4.1.1.77.1.5.3",
    "OphthalmicTomographyImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.5.4",
    "WideFieldOphthalmicPhotographyStereographicProjectionImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.5.5",
    "WideFieldOphthalmicPhotography3DCoordinatesImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.5.6",
    "OphthalmicOpticalCoherenceTomographyEnFaceImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.5.7",
    "OphthalmicOpticalCoherenceTomographyBscanVolumeAnalysisStorage": "1.2.840.10008.5.1.4.1.1.77.1.5.8",
    "VLWholeSlideMicroscopyImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.6",
    "DermoscopicPhotographyImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.7",
    "ConfocalMicroscopyImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.8",
    "ConfocalMicroscopyTiledPyramidalImageStorage": "1.2.840.10008.5.1.4.1.1.77.1.9",
    "LensometryMeasurementsStorage": "1.2.840.10008.5.1.4.1.1.78.1",
    "AutorefractionMeasurementsStorage": "1.2.840.10008.5.1.4.1.1.78.2",
    "KeratometryMeasurementsStorage": "1.2.840.10008.5.1.4.1.1.78.3",
    "SubjectiveRefractionMeasurementsStorage": "1.2.840.10008.5.1.4.1.1.78.4",
    "VisualAcuityMeasurementsStorage": "1.2.840.10008.5.1.4.1.1.78.5",
    "SpectaclePrescriptionReportStorage": "1.2.840.10008.5.1.4.1.1.78.6",
    "OphthalmicAxialMeasurementsStorage": "1.2.840.10008.5.1.4.1.1.78.7",
    "IntraocularLensCalculationsStorage": "1.2.840.10008.5.1.4.1.1.78.8",
    "MacularGridThicknessAndVolumeReportStorage": "1.2.840.10008.5.1.4.1.1.79.1",
    "OphthalmicVisualFieldStaticPerimetryMeasurementsStorage": "1.2.840.10008.5.1.4.1.1.80.1",
    "OphthalmicThicknessMapStorage": "1.2.840.10008.5.1.4.1.1.81.1",
    "CornealTopographyMapStorage": "1.2.840.10008.5.1.4.1.1.82.1",
    "BasicTextSRStorage": "1.2.840.10008.5.1.4.1.1.88.11",
    "EnhancedSRStorage": "1.2.840.10008.5.1.4.1.1.88.22",
    "ComprehensiveSRStorage": "1.2.840.10008.5.1.4.1.1.88.33",
    "Comprehensive3DSRStorage": "1.2.840.10008.5.1.4.1.1.88.34",
    "ExtensibleSRStorage": "1.2.840.10008.5.1.4.1.1.88.35",
    "ProcedureLogStorage": "1.2.840.10008.5.1.4.1.1.88.40",
    "MammographyCADSRStorage": "1.2.840.10008.5.1.4.1.1.88.50",
    "KeyObjectSelectionDocumentStorage": "1.2.840.10008.5.1.4.1.1.88.59",
    "ChestCADSRStorage": "1.2.840.10008.5.1.4.1.1.88.65",
    "XRayRadiationDoseSRStorage": "1.2.840.10008.5.1.4.1.1.88.67",
    "RadiopharmaceuticalRadiationDoseSRStorage": "1.2.840.10008.5.1.4.1.1.88.68",
    "ColonCADSRStorage": "1.2.840.10008.5.1.4.1.1.88.69",
    "ImplantationPlanSRStorage": "1.2.840.10008.5.1.4.1.1.88.70",
    "AcquisitionContextSRStorage": "1.2.840.10008.5.1.4.1.1.88.71",
    "SimplifiedAdultEchoSRStorage": "1.2.840.10008.5.1.4.1.1.88.72",
    "PatientRadiationDoseSRStorage": "1.2.840.10008.5.1.4.1.1.88.73",
    "PlannedImagingAgentAdministrationSRStorage": "1.2.840.10008.5.1.4.1.1.88.74",
    "PerformedImagingAgentAdministrationSRStorage": "1.2.840.10008.5.1.4.1.1.88.75",
    "EnhancedXRayRadiationDoseSRStorage": "1.2.840.10008.5.1.4.1.1.88.76",
    "WaveformAnnotationSRStorage": "1.2.840.10008.5.1.4.1.1.88.77",
    "ContentAssessmentResultsStorage": "1.2.840.10008.5.1.4.1.1.90.1",
    "MicroscopyBulkSimpleAnnotationsStorage": "1.2.840.10008.5.1.4.1.1.91.1",
    "EncapsulatedPDFStorage": "1.2.840.10008.5.1.4.1.1.104.1",
    "EncapsulatedCDAStorage": "1.2.840.10008.5.1.4.1.1.104.2",
    "EncapsulatedSTLStorage": "1.2.840.10008.5.1.4.1.1.104.3",
    "EncapsulatedOBJStorage": "1.2.840.10008.5.1.4.1.1.104.4",
    "EncapsulatedMTLStorage": "1.2.840.10008.5.1.4.1.1.104.5",
    "PositronEmissionTomographyImageStorage": "1.2.840.10008.5.1.4.1.1.128",
    "LegacyConvertedEnhancedPETImageStorage": "1.2.840.10008.5.1.4.1.1.128.1",
    "EnhancedPETImageStorage": "1.2.840.10008.5.1.4.1.1.130",
    "BasicStructuredDisplayStorage": "1.2.840.10008.5.1.4.1.1.131",
    "CTDefinedProcedureProtocolStorage": "1.2.840.10008.5.1.4.1.1.200.1",
    "CTPerformedProcedureProtocolStorage": "1.2.840.10008.5.1.4.1.1.200.2",
    "ProtocolApprovalStorage": "1.2.840.10008.5.1.4.1.1.200.3",
    "XADefinedProcedureProtocolStorage": "1.2.840.10008.5.1.4.1.1.200.7",
    "XAPerformedProcedureProtocolStorage": "1.2.840.10008.5.1.4.1.1.200.8",
    "InventoryStorage": "1.2.840.10008.5.1.4.1.1.201.1",
    "RTImageStorage": "1.2.840.10008.5.1.4.1.1.481.1",
    "RTDoseStorage": "1.2.840.10008.5.1.4.1.1.481.2",
    "RTStructureSetStorage": "1.2.840.10008.5.1.4.1.1.481.3",
    "RTBeamsTreatmentRecordStorage": "1.2.840.10008.5.1.4.1.1.481.4",
    "RTPlanStorage": "1.2.840.10008.5.1.4.1.1.481.5",
    "RTBrachyTreatmentRecordStorage": "1.2.840.10008.5.1.4.1.1.481.6",
    "RTTreatmentSummaryRecordStorage": "1.2.840.10008.5.1.4.1.1.481.7",
    "RTIonPlanStorage": "1.2.840.10008.5.1.4.1.1.481.8",
    "RTIonBeamsTreatmentRecordStorage": "1.2.840.10008.5.1.4.1.1.481.9",
    "RTPhysicianIntentStorage": "1.2.840.10008.5.1.4.1.1.481.10",
    "RTSegmentAnnotationStorage": "1.2.840.10008.5.1.4.1.1.481.11",
    "RTRadiationSetStorage": "1.2.840.10008.5.1.4.1.1.481.12",
    "CArmPhotonElectronRadiationStorage": "1.2.840.10008.5.1.4.1.1.481.13",
    "TomotherapeuticRadiationStorage": "1.2.840.10008.5.1.4.1.1.481.14",
    "RoboticArmRadiationStorage": "1.2.840.10008.5.1.4.1.1.481.15",
    "RTRadiationRecordSetStorage": "1.2.840.10008.5.1.4.1.1.481.16",
    "RTRadiationSalvageRecordStorage": "1.2.840.10008.5.1.4.1.1.481.17",
    "TomotherapeuticRadiationRecordStorage": "1.2.840.10008.5.1.4.1.1.481.18",
    "CArmPhotonElectronRadiationRecordStorage": "1.2.840.10008.5.1.4.1.1.481.19",
    "RoboticRadiationRecordStorage": "1.2.840.10008.5.1.4.1.1.481.20",
    "RTRadiationSetDeliveryInstructionStorage": "1.2.840.10008.5.1.4.1.1.481.21",
    "RTTreatmentPreparationStorage": "1.2.840.10008.5.1.4.1.1.481.22",
    "EnhancedRTImageStorage": "1.2.840.10008.5.1.4.1.1.481.23",
    "EnhancedContinuousRTImageStorage": "1.2.840.10008.5.1.4.1.1.481.24",
    "RTPatientPositionAcquisitionInstructionStorage": "1.2.840.10008.5.1.4.1.1.481.25",
    "DICOSCTImageStorage": "1.2.840.10008.5.1.4.1.1.501.1",
    "DICOSDigitalXRayImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.501.2.1",
    "DICOSDigitalXRayImageStorageForProcessing": "1.2.840.10008.5.1.4.1.1.501.2.2",
    "DICOSThreatDetectionReportStorage": "1.2.840.10008.5.1.4.1.1.501.3",
    "DICOS2DAITStorage": "1.2.840.10008.5.1.4.1.1.501.4",
    "DICOS3DAITStorage": "1.2.840.10008.5.1.4.1.1.501.5",
    "DICOSQuadrupoleResonanceStorage": "1.2.840.10008.5.1.4.1.1.501.6",
    "EddyCurrentImageStorage": "1.2.840.10008.5.1.4.1.1.601.1",
    "EddyCurrentMultiFrameImageStorage": "1.2.840.10008.5.1.4.1.1.601.2",
    "RTBeamsDeliveryInstructionStorage": "1.2.840.10008.5.1.4.34.7",
    "RTBrachyApplicationSetupDeliveryInstructionStorage": "1.2.840.10008.5.1.4.34.10",
    "HangingProtocolStorage": "1.2.840.10008.5.1.4.38.1",
    "ColorPaletteStorage": "1.2.840.10008.5.1.4.39.1",
    "GenericImplantTemplateStorage": "1.2.840.10008.5.1.4.43.1",
    "ImplantAssemblyTemplateStorage": "1.2.840.10008.5.1.4.44.1",
    "ImplantTemplateGroupStorage": "1.2.840.10008.5.1.4.45.1",
}

# Retired storage SOP classes (PS3.6 Annex A, "Retired"): old modalities and files still carry
# them (e.g. the 1994 Ultrasound Image Storage); storage SCPs accept them, SCUs never propose
# them unless a file needs them.
RETIRED_STORAGE_SOP_CLASSES: Final[dict[str, str]] = {
    "StoredPrintStorage": "1.2.840.10008.5.1.1.27",
    "HardcopyGrayscaleImageStorage": "1.2.840.10008.5.1.1.29",
    "HardcopyColorImageStorage": "1.2.840.10008.5.1.1.30",
    "StandaloneModalityLUTStorage": "1.2.840.10008.5.1.4.1.1.10",
    "StandaloneVOILUTStorage": "1.2.840.10008.5.1.4.1.1.11",
    "XRayAngiographicBiPlaneImageStorage": "1.2.840.10008.5.1.4.1.1.12.3",
    "StandalonePETCurveStorage": "1.2.840.10008.5.1.4.1.1.129",
    "UltrasoundMultiFrameImageStorageRetired": "1.2.840.10008.5.1.4.1.1.3",
    "NuclearMedicineImageStorageRetired": "1.2.840.10008.5.1.4.1.1.5",
    "UltrasoundImageStorageRetired": "1.2.840.10008.5.1.4.1.1.6",
    "VLImageStorageTrial": "1.2.840.10008.5.1.4.1.1.77.1",
    "VLMultiFrameImageStorageTrial": "1.2.840.10008.5.1.4.1.1.77.2",
    "StandaloneOverlayStorage": "1.2.840.10008.5.1.4.1.1.8",
    "TextSRStorageTrial": "1.2.840.10008.5.1.4.1.1.88.1",
    "AudioSRStorageTrial": "1.2.840.10008.5.1.4.1.1.88.2",
    "DetailSRStorageTrial": "1.2.840.10008.5.1.4.1.1.88.3",
    "ComprehensiveSRStorageTrial": "1.2.840.10008.5.1.4.1.1.88.4",
    "StandaloneCurveStorage": "1.2.840.10008.5.1.4.1.1.9",
    "WaveformStorageTrial": "1.2.840.10008.5.1.4.1.1.9.1",
    "RTBeamsDeliveryInstructionStorageTrial": "1.2.840.10008.5.1.4.34.1",
}

COMPRESSED_TRANSFER_SYNTAXES: Final[frozenset[str]] = TRANSFER_SYNTAXES - NATIVE_TRANSFER_SYNTAXES
STORAGE_SOP_CLASS_UIDS: Final[frozenset[str]] = frozenset(STORAGE_SOP_CLASSES.values())
