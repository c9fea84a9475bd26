"""Which SOP classes a tool proposes: the query/retrieve information models by short name, and
the storage SOP classes with ready-made presentation contexts for them.

Theory of operation
-------------------
* Query/retrieve (PS3.4 Annex C.6, Modality Worklist K.6): each information model has one SOP
  class per operation (C-FIND, C-MOVE, C-GET). Tools name a model the way DCMTK's and
  pynetdicom's do -- ``"P"`` patient root, ``"S"`` study root, ``"O"`` patient/study only
  (retired), ``"W"`` worklist, ``"C"`` composite instance root, ``"CB"`` without bulk data --
  or by pydicom keyword or UID; :func:`query_model_uid` turns any of these into the SOP class.
* Storage (PS3.4 Annex B.5): :func:`storage_sop_classes` lists every non-retired Storage SOP
  class with the most common first, so that a requestor limited to 128 presentation contexts
  (PS3.8 9.3.2.2) proposes the ones that matter; :func:`storage_contexts` builds contexts for
  them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dicomnet.presentation import (
    PREFERRED_TRANSFER_SYNTAXES,
    PresentationContext,
    build_context,
    check_uid,
)

__all__ = ["QR_MODELS", "query_model_uid", "storage_contexts", "storage_sop_classes"]

# --- query/retrieve information models (PS3.4 Annex C.3, K.6) ----------------------------------

_QR = "1.2.840.10008.5.1.4.1.2."
QR_MODELS: dict[str, dict[str, str]] = {
    # short name -> operation -> SOP class UID
    "P": {"find": _QR + "1.1", "move": _QR + "1.2", "get": _QR + "1.3"},  # Patient Root
    "S": {"find": _QR + "2.1", "move": _QR + "2.2", "get": _QR + "2.3"},  # Study Root
    "O": {"find": _QR + "3.1", "move": _QR + "3.2", "get": _QR + "3.3"},  # Patient/Study Only (retired)
    "W": {"find": "1.2.840.10008.5.1.4.31"},  # Modality Worklist
    "C": {"move": _QR + "4.2", "get": _QR + "4.3"},  # Composite Instance Root
    "CB": {"get": _QR + "5.3"},  # Composite Instance Retrieve Without Bulk Data
}
_LONG_NAMES = {
    "PatientRootQueryRetrieveInformationModel": "P",
    "StudyRootQueryRetrieveInformationModel": "S",
    "PatientStudyOnlyQueryRetrieveInformationModel": "O",
    "ModalityWorklistInformationModel": "W",
    "CompositeInstanceRootRetrieve": "C",
    "CompositeInstanceRetrieveWithoutBulkData": "CB",
}
_OP_SUFFIX = {"find": "Find", "move": "Move", "get": "Get"}


def query_model_uid(model: str, operation: str) -> str:
    """The SOP class UID for a query/retrieve model.

    ``model`` is a UID, a short name (``"P"`` patient root, ``"S"`` study root, ``"O"``
    patient/study only, ``"W"`` modality worklist, ``"C"`` composite instance root, ``"CB"``
    without bulk data) or a pydicom keyword such as
    ``"PatientRootQueryRetrieveInformationModelFind"``. ``operation`` is find, get or move.
    """
    operation = operation.lower()
    model = str(model)
    if model and model[0].isdigit():
        return check_uid(model, "query model")
    short = model
    if model not in QR_MODELS:
        for long_name, s in _LONG_NAMES.items():
            if model in (long_name, long_name + _OP_SUFFIX.get(operation, "")):
                short = s
                break
        else:
            raise ValueError(f"unknown query/retrieve information model {model!r}")
    try:
        return QR_MODELS[short][operation]
    except KeyError:
        raise ValueError(f"model {model!r} has no {operation.upper()} SOP class") from None


# --- storage (PS3.4 Annex B.5) -------------------------------------------------------------------

_COMMON_STORAGE = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray for processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography for presentation
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT Plan
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.66",  # Raw Data
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
)


def storage_sop_classes() -> list[str]:
    """Every non-retired Storage SOP class (PS3.4 Table B.5-1), most common ones first."""
    # lazy: the UID tables are only needed by a storage SCP's context list, not by a client
    from dicomnet.uid import STORAGE_SOP_CLASSES

    rest = [
        uid
        for uid in STORAGE_SOP_CLASSES.values()
        if uid not in _COMMON_STORAGE and uid != "1.2.840.10008.1.3.10"  # not a media SOP class
    ]
    return list(_COMMON_STORAGE) + rest


def storage_contexts(
    transfer_syntaxes: Sequence[str] | None = None,
    limit: int = 120,
    sop_classes: Iterable[str] | None = None,
) -> list[PresentationContext]:
    """Presentation contexts for storage SOP classes (at most ``limit``; PS3.8 allows 128)."""
    classes = list(sop_classes) if sop_classes is not None else storage_sop_classes()
    syntaxes = PREFERRED_TRANSFER_SYNTAXES if transfer_syntaxes is None else transfer_syntaxes
    return [build_context(uid, syntaxes) for uid in classes[:limit]]
