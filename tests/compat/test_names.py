"""A pynetdicom program must run after ``sed s/pynetdicom/dicomnet/``: every public name of
pynetdicom's ``sop_class``, ``status`` and ``presentation`` modules exists in the dicomnet module
of the same name, with the same value.

The cases are generated from the installed pynetdicom at collection time, so a pynetdicom
release that adds a name adds a failing case here. A name is "public" when it does not start
with ``_`` and pynetdicom defines it (or re-exports it from another pynetdicom module); what a
module merely imports from elsewhere (``typing``, ``logging``, pydicom's ``UID``/``Dataset``,
``enum.IntEnum``, modules) is not its API. Values compare as follows: UIDs as strings (and SOP
classes by service class name too), context lists by abstract syntaxes and transfer syntaxes in
order, status tables by codes and categories, everything else with ``==``.

Nothing is skipped silently: the names dicomnet does not provide are in ``NOT_PROVIDED`` with the
reason, and the places where dicomnet deliberately gives another value than pynetdicom are
strict ``xfail`` cases or explicit exception lists saying what the standard says.
"""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
import types
from typing import Any

import pytest

pynetdicom = pytest.importorskip("pynetdicom")

import pynetdicom._globals as p_globals  # noqa: E402
import pynetdicom.presentation as p_presentation  # noqa: E402
import pynetdicom.sop_class as p_sop_class  # noqa: E402
import pynetdicom.status as p_status  # noqa: E402
from pydicom._uid_dict import UID_dictionary  # noqa: E402
from pydicom.uid import UID  # noqa: E402

import dicomnet.presentation as d_presentation  # noqa: E402
import dicomnet.sop_class as d_sop_class  # noqa: E402
import dicomnet.status as d_status  # noqa: E402
from dicomnet.presentation import PresentationContext  # noqa: E402

MODULES = {
    "sop_class": (p_sop_class, d_sop_class),
    "status": (p_status, d_status),
    "presentation": (p_presentation, d_presentation),
}

# Public pynetdicom names dicomnet does not offer, and why.
NOT_PROVIDED: dict[tuple[str, str], str] = {
    ("sop_class", "LOGGER"): "pynetdicom's module logger; dicomnet logs under its own names",
    ("presentation", "LOGGER"): "pynetdicom's module logger; dicomnet logs under its own names",
    ("presentation", "SOP_CLASS_MODULE"): "a reference to pynetdicom's sop_class module",
    # role negotiation (PS3.7 D.3.3.4) is done by dicomnet.ul.negotiation with its own tables
    ("presentation", "BOTH_SCU_SCP_ROLE"): "internal role-negotiation outcome constant",
    ("presentation", "CONTEXT_REJECTED"): "internal role-negotiation outcome constant",
    ("presentation", "DEFAULT_ROLE"): "internal role-negotiation outcome constant",
    ("presentation", "INVERTED_ROLE"): "internal role-negotiation outcome constant",
    ("presentation", "SCP_SCU_ROLES"): "internal role-negotiation table",
    ("presentation", "CXNegotiationReturn"): "type alias of pynetdicom's negotiation internals",
    ("presentation", "ListCXType"): "type alias of pynetdicom's negotiation internals",
    ("presentation", "RoleType"): "type alias of pynetdicom's negotiation internals",
    ("presentation", "set_uid"): "pynetdicom.utils helper re-exported by accident of import",
    ("presentation", "validate_uid"): "pynetdicom.utils helper re-exported by accident of import",
}

# Same name, deliberately another value: strict xfail, so the day the values agree it shows.
DIFFERENT_VALUE: dict[tuple[str, str], str] = {
}


def _kind(name: str, value: object) -> str:
    """'import' (not the module's API), 'api' (a pynetdicom class or function), 'alias' (a
    type alias), 'logger' or 'value'."""
    if isinstance(value, types.ModuleType) or name == "TYPE_CHECKING":
        return "import"
    if isinstance(value, logging.Logger):
        return "logger"
    if isinstance(value, types.GenericAlias | types.UnionType):
        return "alias"
    if type(value).__module__ == "typing":  # Optional, Dict, Any ...
        return "import"
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType):
        module = getattr(value, "__module__", None) or ""
        return "api" if module.startswith("pynetdicom") else "import"
    return "value"


def _public(module: types.ModuleType) -> dict[str, str]:
    return {
        name: _kind(name, getattr(module, name))
        for name in dir(module)
        if not name.startswith("_") and _kind(name, getattr(module, name)) != "import"
    }


def _cases() -> list[Any]:
    cases = []
    for mod, (p_mod, _) in MODULES.items():
        for name, kind in sorted(_public(p_mod).items()):
            key = (mod, name)
            if key in NOT_PROVIDED:
                continue
            marks = []
            if key in DIFFERENT_VALUE:
                marks.append(pytest.mark.xfail(strict=True, reason=DIFFERENT_VALUE[key]))
            cases.append(pytest.param(mod, name, kind, marks=marks, id=f"{mod}.{name}"))
    return cases


def _same_contexts(p_list: list[Any], d_list: object) -> None:
    assert isinstance(d_list, list)
    assert all(isinstance(cx, PresentationContext) for cx in d_list)
    assert [cx.abstract_syntax for cx in d_list] == [str(cx.abstract_syntax) for cx in p_list]
    for p_cx, d_cx in zip(p_list, d_list, strict=True):
        assert d_cx.transfer_syntaxes == [str(ts) for ts in p_cx.transfer_syntax], d_cx
        assert d_cx.context_id is None and p_cx.context_id is None


def _same_status_table(p_table: dict[int, tuple[str, str]], d_table: object) -> None:
    # codes and categories must agree; the meaning texts are prose (dicomnet paraphrases the
    # standard in its own words), not something a program compares
    assert isinstance(d_table, dict)
    assert sorted(d_table) == sorted(p_table)
    assert all(type(code) is int for code in d_table)
    wrong = {
        hex(c): (p_table[c][0], d_table[c][0]) for c in p_table if p_table[c][0] != d_table[c][0]
    }
    assert wrong == {}


def _same_value(name: str, p_value: object, d_value: object) -> None:
    if isinstance(p_value, str):
        assert isinstance(d_value, str) and str(d_value) == str(p_value)
        if hasattr(p_value, "service_class"):  # a SOPClass
            assert isinstance(d_value, UID) and isinstance(d_value, d_sop_class.SOPClass)
            assert d_value.service_class.__name__ == p_value.service_class.__name__
        elif isinstance(p_value, UID):
            assert isinstance(d_value, UID)
    elif name.endswith("PresentationContexts"):
        _same_contexts(p_value, d_value)  # type: ignore[arg-type]
    elif isinstance(p_value, dict) and name.endswith("STATUS"):
        _same_status_table(p_value, d_value)
    elif isinstance(p_value, list | tuple) and all(isinstance(v, str) for v in p_value):
        assert isinstance(d_value, list | tuple)
        assert [str(v) for v in d_value] == [str(v) for v in p_value]
    else:
        assert d_value == p_value


@pytest.mark.parametrize(("mod", "name", "kind"), _cases())
def test_name_exists_with_the_same_value(mod: str, name: str, kind: str) -> None:
    p_mod, d_mod = MODULES[mod]
    assert hasattr(d_mod, name), f"dicomnet.{mod} has no {name}"
    p_value, d_value = getattr(p_mod, name), getattr(d_mod, name)
    if kind == "api":
        if isinstance(p_value, type):
            assert isinstance(d_value, type), f"dicomnet.{mod}.{name} is not a class"
        else:
            assert callable(d_value)
            # every parameter a pynetdicom program may pass by name is accepted by name
            p_params = inspect.signature(p_value).parameters
            d_params = inspect.signature(d_value).parameters
            assert set(p_params) <= set(d_params), (list(p_params), list(d_params))
    elif kind == "alias":
        assert d_value == p_value
    elif kind == "logger":
        pytest.fail(f"{mod}.{name} is a logger: list it in NOT_PROVIDED or provide it")
    else:
        _same_value(name, p_value, d_value)


def test_the_cases_were_generated() -> None:
    # the generator found the names it is about (a filter bug would make every case vanish)
    names = {(c.values[0], c.values[1]) for c in _cases()}
    assert len(names) > 300
    assert ("sop_class", "CTImageStorage") in names and ("status", "code_to_category") in names
    assert ("presentation", "StoragePresentationContexts") in names


def test_not_provided_list_is_current() -> None:
    for mod, name in NOT_PROVIDED:
        assert hasattr(MODULES[mod][0], name), f"pynetdicom.{mod}.{name} is gone: drop it"


# --- sop_class ------------------------------------------------------------------------------------

# pynetdicom names whose spelling differs from the PS3.6 keyword of the same UID. dicomnet has
# both: the pynetdicom name (checked above) and the standard keyword, as the same object.
PYNETDICOM_SPELLINGS = {
    # PS3.6 keyword "ModalityWorklistInformationModelFind" (pynetdicom keeps an older name)
    "ModalityWorklistInformationFind": "ModalityWorklistInformationModelFind",
    # PS3.6: "Color Palette Query/Retrieve Information Model - FIND/MOVE/GET"
    "ColorPaletteInformationModelFind": "ColorPaletteQueryRetrieveInformationModelFind",
    "ColorPaletteInformationModelMove": "ColorPaletteQueryRetrieveInformationModelMove",
    "ColorPaletteInformationModelGet": "ColorPaletteQueryRetrieveInformationModelGet",
    # typo "Stage" for "State": PS3.6 "Pseudo-Color Softcopy Presentation State Storage"
    "PseudoColorSoftcopyPresentationStageStorage": "PseudoColorSoftcopyPresentationStateStorage",
    # typo: PS3.6 "Variable Modality LUT Softcopy Presentation State Storage"
    "VariableModalityLUTSoftcopyPresentationStageStorage": (
        "VariableModalityLUTSoftcopyPresentationStateStorage"
    ),
    # typo "Ophthlamic": PS3.6 "Ophthalmic Optical Coherence Tomography B-scan Volume Analysis"
    "OphthlamicOpticalCoherenceTomographyBscanVolumeAnalysisStorage": (
        "OphthalmicOpticalCoherenceTomographyBscanVolumeAnalysisStorage"
    ),
    # PS3.6 "Robotic Radiation Record Storage" (no "Arm", unlike Robotic-Arm Radiation Storage)
    "RoboticArmRadiationRecordStorage": "RoboticRadiationRecordStorage",
    # PS3.6 "RT Brachy Application Setup Delivery Instruction Storage" (singular)
    "RTBrachyApplicationSetupDeliveryInstructionsStorage": (
        "RTBrachyApplicationSetupDeliveryInstructionStorage"
    ),
}

# UIDs pynetdicom maps to its base ServiceClass that dicomnet maps to StorageServiceClass.
STORAGE_HERE_NOT_IN_PYNETDICOM = {
    # PS3.4 Table B.5-1 lists the DICOS (security screening) and DICONDE (eddy current) classes
    # among the Storage SOP classes; pynetdicom has no names for them
    "1.2.840.10008.5.1.4.1.1.501.1": "DICOSCTImageStorage",
    "1.2.840.10008.5.1.4.1.1.501.2.1": "DICOSDigitalXRayImageStorageForPresentation",
    "1.2.840.10008.5.1.4.1.1.501.2.2": "DICOSDigitalXRayImageStorageForProcessing",
    "1.2.840.10008.5.1.4.1.1.501.3": "DICOSThreatDetectionReportStorage",
    "1.2.840.10008.5.1.4.1.1.501.4": "DICOS2DAITStorage",
    "1.2.840.10008.5.1.4.1.1.501.5": "DICOS3DAITStorage",
    "1.2.840.10008.5.1.4.1.1.501.6": "DICOSQuadrupoleResonanceStorage",
    "1.2.840.10008.5.1.4.1.1.601.1": "EddyCurrentImageStorage",
    "1.2.840.10008.5.1.4.1.1.601.2": "EddyCurrentMultiFrameImageStorage",
    # PS3.6 lists these as retired Storage SOP classes; pynetdicom's own
    # StoragePresentationContexts proposes 14 of them, yet maps them to no service
    "1.2.840.10008.5.1.1.27": "StoredPrintStorage",
    "1.2.840.10008.5.1.1.29": "HardcopyGrayscaleImageStorage",
    "1.2.840.10008.5.1.1.30": "HardcopyColorImageStorage",
    "1.2.840.10008.5.1.4.1.1.10": "StandaloneModalityLUTStorage",
    "1.2.840.10008.5.1.4.1.1.11": "StandaloneVOILUTStorage",
    "1.2.840.10008.5.1.4.1.1.12.3": "XRayAngiographicBiPlaneImageStorage",
    "1.2.840.10008.5.1.4.1.1.129": "StandalonePETCurveStorage",
    "1.2.840.10008.5.1.4.1.1.3": "UltrasoundMultiFrameImageStorageRetired",
    "1.2.840.10008.5.1.4.1.1.5": "NuclearMedicineImageStorageRetired",
    "1.2.840.10008.5.1.4.1.1.6": "UltrasoundImageStorageRetired",
    "1.2.840.10008.5.1.4.1.1.77.1": "VLImageStorageTrial",
    "1.2.840.10008.5.1.4.1.1.77.2": "VLMultiFrameImageStorageTrial",
    "1.2.840.10008.5.1.4.1.1.8": "StandaloneOverlayStorage",
    "1.2.840.10008.5.1.4.1.1.88.1": "TextSRStorageTrial",
    "1.2.840.10008.5.1.4.1.1.88.2": "AudioSRStorageTrial",
    "1.2.840.10008.5.1.4.1.1.88.3": "DetailSRStorageTrial",
    "1.2.840.10008.5.1.4.1.1.88.4": "ComprehensiveSRStorageTrial",
    "1.2.840.10008.5.1.4.1.1.9": "StandaloneCurveStorage",
    "1.2.840.10008.5.1.4.1.1.9.1": "WaveformStorageTrial",
    "1.2.840.10008.5.1.4.34.1": "RTBeamsDeliveryInstructionStorageTrial",
}


def test_pynetdicom_spellings_are_aliases_of_the_ps36_keywords() -> None:
    p_names = {n for n, k in _public(p_sop_class).items() if k == "value"}
    # the list is complete: every other pynetdicom SOP class name is the PS3.6 keyword
    # (or a UID newer than pydicom's copy of PS3.6)
    odd = {
        n
        for n in p_names
        if str(getattr(p_sop_class, n)) in UID_dictionary
        and UID_dictionary[str(getattr(p_sop_class, n))][4] != n
    }
    assert odd == set(PYNETDICOM_SPELLINGS)
    for alias, keyword in PYNETDICOM_SPELLINGS.items():
        uid = str(getattr(p_sop_class, alias))
        assert UID_dictionary[uid][4] == keyword
        assert getattr(d_sop_class, alias) is getattr(d_sop_class, keyword)


def test_sop_class_names_are_the_ps36_keywords() -> None:
    # every SOP class name dicomnet makes is the PS3.6 keyword of its UID (per pydicom's copy
    # of the registry), bar the pynetdicom spellings and UIDs newer than that copy
    made = {n: v for n, v in vars(d_sop_class).items() if isinstance(v, UID) and n[0] != "_"}
    assert len(made) > 290
    for name, uid in made.items():
        if name in PYNETDICOM_SPELLINGS:
            continue
        entry = UID_dictionary.get(str(uid))
        if entry is not None:
            assert entry[4] == name, (name, str(uid), entry[4])
            assert entry[1] in ("SOP Class", "Meta SOP Class", "Well-known SOP Instance")


def test_uid_to_service_class_agrees() -> None:
    uids = {str(getattr(p_sop_class, n)) for n, k in _public(p_sop_class).items() if k == "value"}
    uids |= {u for u, e in UID_dictionary.items() if e[1] in ("SOP Class", "Meta SOP Class")}
    uids |= {str(cx.abstract_syntax) for cx in p_presentation.StoragePresentationContexts}
    uids |= {"1.2.840.10008.4.2", "1.2.840.10008.5.1.4.34.6", "1.2.3.4", ""}  # service classes
    differ = {}
    for uid in sorted(uids):
        p_name = p_sop_class.uid_to_service_class(uid).__name__
        d_name = d_sop_class.uid_to_service_class(uid).__name__
        if p_name != d_name:
            differ[uid] = (p_name, d_name)
    expected = {u: ("ServiceClass", "StorageServiceClass") for u in STORAGE_HERE_NOT_IN_PYNETDICOM}
    assert differ == expected


def test_service_class_hierarchy_is_pynetdicoms() -> None:
    p_classes = {
        n: v
        for n, v in vars(p_sop_class).items()
        if isinstance(v, type) and issubclass(v, p_sop_class.ServiceClass)
    }
    assert len(p_classes) > 20
    for a, pa in p_classes.items():
        for b, pb in p_classes.items():
            da, db = getattr(d_sop_class, a), getattr(d_sop_class, b)
            assert issubclass(da, db) == issubclass(pa, pb), (a, b)


def test_sop_class_objects() -> None:
    ct = d_sop_class.CTImageStorage
    assert isinstance(ct, UID) and isinstance(ct, str)
    assert ct == "1.2.840.10008.5.1.4.1.1.2" and hash(ct) == hash("1.2.840.10008.5.1.4.1.1.2")
    assert ct.service_class is d_sop_class.StorageServiceClass
    assert ct.name == "CT Image Storage" and ct.keyword == "CTImageStorage"
    assert d_sop_class.uid_to_sop_class("1.2.840.10008.5.1.4.1.1.2") is ct
    other = d_sop_class.uid_to_sop_class("1.2.3.4")
    assert other == "1.2.3.4" and other.service_class is d_sop_class.ServiceClass
    assert d_sop_class.StorageServiceClass.uid == "1.2.840.10008.4.2"
    find = d_sop_class.registered_sop_classes(d_sop_class.QueryRetrieveServiceClass, "C-FIND")
    assert d_sop_class.StudyRootQueryRetrieveInformationModelFind in find
    assert d_sop_class.StudyRootQueryRetrieveInformationModelMove not in find


def test_register_uid() -> None:
    sc = d_sop_class
    sc.register_uid("1.2.246.352.70.1.70", "CompatTestFooStorage", sc.StorageServiceClass)
    from dicomnet.sop_class import CompatTestFooStorage  # type: ignore[attr-defined]

    assert CompatTestFooStorage == "1.2.246.352.70.1.70"
    assert isinstance(CompatTestFooStorage, sc.SOPClass)
    assert CompatTestFooStorage.service_class is sc.StorageServiceClass
    assert sc.uid_to_service_class("1.2.246.352.70.1.70") is sc.StorageServiceClass
    assert CompatTestFooStorage in sc.registered_sop_classes(sc.StorageServiceClass)
    assert "CompatTestFooStorage" in dir(sc) and "CompatTestFooStorage" in sc.__all__

    sc.register_uid(
        "1.2.246.352.70.1.71", "CompatTestBarGet", sc.QueryRetrieveServiceClass, "C-GET"
    )
    assert sc.uid_to_service_class("1.2.246.352.70.1.71") is sc.QueryRetrieveServiceClass
    gets = sc.registered_sop_classes(sc.QueryRetrieveServiceClass, "C-GET")
    assert "1.2.246.352.70.1.71" in gets
    sc.register_uid(
        "1.2.246.352.70.1.72", "CompatTestHPFind", sc.HangingProtocolQueryRetrieveServiceClass
    )
    hp_find = sc.registered_sop_classes(sc.HangingProtocolQueryRetrieveServiceClass, "C-FIND")
    assert "1.2.246.352.70.1.72" in hp_find

    # pynetdicom's checks, with pynetdicom's exception types
    with pytest.raises(ValueError):
        sc.register_uid("1.2.3", "not a name", sc.StorageServiceClass)
    with pytest.raises(ValueError):
        sc.register_uid("1.2.3", "class", sc.StorageServiceClass)
    with pytest.raises(TypeError):
        sc.register_uid("1.2.3", "CompatTestX", sc.StorageServiceClass())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sc.register_uid("1.2.3", "CompatTestX", int)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sc.register_uid("1.2.3", "CompatTestX", sc.QueryRetrieveServiceClass)
    # and dicomnet's own: no overwriting the module's API, no non-UIDs
    with pytest.raises(ValueError):
        sc.register_uid("1.2.3", "register_uid", sc.StorageServiceClass)
    with pytest.raises(ValueError):
        sc.register_uid("1.2.x", "CompatTestX", sc.StorageServiceClass)


# --- status ---------------------------------------------------------------------------------------

# PS3.7 Annex C: "Failure: Axxx or Cxxx or 01xx (except 0107 and 0116) or 02xx". pynetdicom says
# "Unknown" for the 01xx/02xx codes that no table names; dicomnet says "Failure", as the class
# convention does. Everything else outside the classes is "Unknown" in both.
FAILURE_HERE_UNKNOWN_IN_PYNETDICOM = [
    (0x0100, 0x0104),
    (0x0108, 0x010F),
    (0x011A, 0x011F),
    (0x0125, 0x020F),
    (0x0214, 0x02FF),
]


def test_code_to_category_over_every_code() -> None:
    differ: dict[int, tuple[str, str]] = {}
    for code in range(0x10000):
        p, d = p_status.code_to_category(code), d_status.code_to_category(code)
        if p != d:
            differ[code] = (p, d)
    expected = {
        code: ("Unknown", "Failure")
        for low, high in FAILURE_HERE_UNKNOWN_IN_PYNETDICOM
        for code in range(low, high + 1)
    }
    assert differ == expected
    for bad in (-1, 1.5):
        with pytest.raises(ValueError):
            p_status.code_to_category(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            d_status.code_to_category(bad)  # type: ignore[arg-type]


def test_status_tables_agree_with_code_to_category() -> None:
    for name in d_status.__all__:
        if name.endswith("STATUS"):
            table = getattr(d_status, name)
            assert all(d_status.code_to_category(c) == v[0] for c, v in table.items()), name


def test_status_enum_members() -> None:
    for member in p_status.Status:
        assert getattr(d_status.Status, member.name) == member.value


def test_code_to_status() -> None:
    for code in (0x0000, 0xA700, 0xB000, 0xC123, 0xFE00, 0xFF00, 0xFFFF):
        ds = d_status.code_to_status(code)
        assert ds.Status == code == p_status.code_to_status(code).Status
        assert list(ds.keys()) == list(p_status.code_to_status(code).keys())
    with pytest.raises(ValueError):
        d_status.code_to_status(-1)


# --- presentation ---------------------------------------------------------------------------------


def test_all_transfer_syntaxes() -> None:
    expected = [str(t) for t in p_globals.ALL_TRANSFER_SYNTAXES]
    assert d_presentation.ALL_TRANSFER_SYNTAXES == expected == pynetdicom.ALL_TRANSFER_SYNTAXES
    # Against PS3.6 (pydicom's copy): every non-retired transfer syntax is there except
    # Encapsulated Uncompressed Explicit VR Little Endian (1.2.840.10008.1.2.1.98, PS3.5
    # A.4.11), which pynetdicom leaves out and dicomnet keeps out with it. (A pydicom update
    # that adds a transfer syntax shows up here on purpose.)
    current = {u for u, e in UID_dictionary.items() if e[1] == "Transfer Syntax" and not e[3]}
    assert current - set(d_presentation.ALL_TRANSFER_SYNTAXES) == {"1.2.840.10008.1.2.1.98"}


def test_every_context_list_is_there() -> None:
    p_lists = {n for n in dir(p_presentation) if n.endswith("PresentationContexts")}
    d_lists = {n for n in d_presentation.__all__ if n.endswith("PresentationContexts")}
    assert p_lists == d_lists
    # the storage list fits one association next to a few others (PS3.8 9.3.2.2: <= 128)
    assert len(d_presentation.StoragePresentationContexts) == 120
    assert len(p_presentation.StoragePresentationContexts) == 120


def test_build_context_accepts_what_pynetdicoms_accepts() -> None:
    ct = "1.2.840.10008.5.1.4.1.1.2"
    for args, kwargs in (
        ((UID(ct),), {}),
        ((ct, "1.2.840.10008.1.2"), {}),
        ((ct, ["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50"]), {}),
        ((ct,), {"transfer_syntax": ["1.2.840.10008.1.2"]}),
        ((ct,), {"transfer_syntax": "1.2.840.10008.1.2.1"}),
        ((d_sop_class.CTImageStorage, [UID("1.2.840.10008.1.2")]), {}),
    ):
        p_cx = p_presentation.build_context(*args, **kwargs)
        d_cx = d_presentation.build_context(*args, **kwargs)
        assert d_cx.abstract_syntax == str(p_cx.abstract_syntax)
        assert d_cx.transfer_syntaxes == [str(t) for t in p_cx.transfer_syntax]
    with pytest.raises(TypeError):
        d_presentation.build_context(ct, "1.2.840.10008.1.2", transfer_syntax="1.2.840.10008.1.2")


def test_build_role_accepts_what_pynetdicoms_accepts() -> None:
    for kwargs in (
        {},
        {"scu_role": True},
        {"scp_role": True},
        {"scu_role": True, "scp_role": True},
    ):
        p_role = p_presentation.build_role(d_sop_class.CTImageStorage, **kwargs)
        d_role = d_presentation.build_role(d_sop_class.CTImageStorage, **kwargs)
        assert d_role.sop_class_uid == str(p_role.sop_class_uid)
        assert bool(d_role.scu_role) == p_role.scu_role and bool(d_role.scp_role) == p_role.scp_role


def test_presentation_context_transfer_syntax_attribute() -> None:
    """Before negotiation ``transfer_syntax`` reads as pynetdicom's list (the very list
    ``transfer_syntaxes`` is); once accepted, it is the accepted UID, which compares equal to
    pynetdicom's one-item list of it as well as to the UID."""
    p_cx = p_presentation.build_context("1.2.840.10008.1.1")
    d_cx = d_presentation.build_context("1.2.840.10008.1.1", list(p_cx.transfer_syntax))
    assert d_cx.transfer_syntax == p_cx.transfer_syntax
    assert d_cx.transfer_syntax is d_cx.transfer_syntaxes
    d_cx.transfer_syntax = ["1.2.840.10008.1.2"]
    assert d_cx.transfer_syntaxes == ["1.2.840.10008.1.2"]
    d_cx.context_id, d_cx.result = 1, 0
    d_cx.transfer_syntax = d_presentation.AcceptedSyntax("1.2.840.10008.1.2")
    assert d_cx.transfer_syntax == ["1.2.840.10008.1.2"] == [d_cx.transfer_syntax[0]]
    assert d_cx.transfer_syntax == "1.2.840.10008.1.2"
    assert d_cx.transfer_syntax != ["1.2.840.10008.1.2.1"]
    assert d_cx.transfer_syntax != ["1.2.840.10008.1.2", "1.2.840.10008.1.2"]
    d_cx.transfer_syntax = None
    assert d_cx.transfer_syntax is None  # rejected: nothing accepted


# --- import cost ----------------------------------------------------------------------------------


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_the_lists_cost_nothing_until_read() -> None:
    mods = _modules_after("import dicomnet.presentation")
    assert "dicomnet.presentation_lists" not in mods and "pydicom" not in mods
    mods = _modules_after("from dicomnet.presentation import AllStoragePresentationContexts")
    assert "dicomnet.presentation_lists" in mods and "pydicom" not in mods
    mods = _modules_after("import dicomnet.status")
    assert "pydicom" not in mods
