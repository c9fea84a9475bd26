"""A response's status as the pydicom ``Dataset`` the application gets.

Theory of operation
-------------------
Operations report a response's status as a pydicom ``Dataset`` holding ``Status`` and whatever
status elements the peer sent (ErrorComment, OffendingElement, ErrorID, sub-operation counts,
...; PS3.7 Annex C), as pynetdicom users expect; an **empty** ``Dataset`` means no response
came. :func:`status_dataset` builds it once per response, so it is built cheaply: the Dataset is
a copy of a blank one's attribute state (:func:`blank_dataset`, skipping the dozen pydicom
``__setattr__`` calls of ``Dataset.__init__``), and its elements are ``DataElement``s made with
the command dictionary's VRs (PS3.7 Annex E) straight into the element store, skipping the
keyword lookup and a second validation of values the primitive validated already. The (keyword,
tag, VR) list of each primitive class is built once.

This leans on pydicom's internal layout (``Dataset._dict``, the ``already_converted`` and
``validation_mode`` arguments of ``DataElement``): tests/test_fastpath_services.py pins that the
result equals the Dataset built the ordinary way, and another layout falls back to
``ds[tag] = elem``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dicomnet.dimse.commands import ELEMENTS, KEYWORD_TO_TAG
from dicomnet.dimse.primitives import DIMSEPrimitive

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag
    from pydicom.uid import UID

__all__ = ["blank_dataset", "status_dataset"]

_NUMERIC_VRS = frozenset(("US", "UL", "SS", "SL"))
_NUMERIC, _UID_VALUE, _OTHER = 1, 2, 0

StatusField = tuple[str, "BaseTag", str, int]
# primitive class -> ((keyword, pydicom tag, VR, _NUMERIC / _UID_VALUE / _OTHER), ...)
_STATUS_FIELDS: dict[type[DIMSEPrimitive], tuple[StatusField, ...]] = {}


class _Pydicom:
    """The pydicom names used here, imported on first use (pydicom costs clients that never
    build a status Dataset -- echoscu -- ~150 ms of start-up)."""

    loaded = False
    data_element: type[DataElement]
    uid_class: type[UID]
    base_tag: type[BaseTag]
    dataset_class: type[Dataset]
    # the state of a blank Dataset, and the keys of its mutable containers
    state: dict[str, object]
    mutable: tuple[str, ...]
    # str -> pydicom UID of the SOP class UIDs seen in responses (UID objects are immutable
    # str subclasses, so one can be shared); bounded, emptied when full
    uids: dict[str, UID] = {}

    @classmethod
    def load(cls) -> None:
        # lazy: see the class docstring
        from pydicom.dataelem import DataElement
        from pydicom.dataset import Dataset
        from pydicom.tag import BaseTag
        from pydicom.uid import UID

        cls.data_element, cls.uid_class, cls.base_tag = DataElement, UID, BaseTag
        cls.dataset_class = Dataset
        cls.state = dict(vars(Dataset()))
        cls.mutable = tuple(k for k, v in cls.state.items() if isinstance(v, dict | list | set))
        cls.loaded = True


def blank_dataset() -> Dataset:
    """A new empty Dataset (see the module docstring): the attribute state of a ``Dataset()``
    made once, copied, its mutable containers copied one level."""
    if not _Pydicom.loaded:
        _Pydicom.load()
    cls = _Pydicom.dataset_class
    ds = cls.__new__(cls)
    d = ds.__dict__
    state = _Pydicom.state
    d.update(state)
    for key in _Pydicom.mutable:
        container = state[key]
        assert isinstance(container, dict | list | set)
        d[key] = container.copy()
    return ds


def _status_fields(kind: type[DIMSEPrimitive]) -> tuple[StatusField, ...]:
    """The status-relevant parameters of a primitive class: every command element parameter
    but the message IDs and the data set parameters (PS3.7 Annex E)."""
    skip = {"MessageID", "MessageIDBeingRespondedTo", *kind.DATASET_FIELDS}
    out = []
    for keyword in kind.FIELDS:
        tag = KEYWORD_TO_TAG.get(keyword)
        if keyword in skip or tag is None:
            continue
        vr = ELEMENTS[tag].vr
        fast = _NUMERIC if vr in _NUMERIC_VRS else _UID_VALUE if vr == "UI" else _OTHER
        out.append((keyword, _Pydicom.base_tag(tag), vr, fast))
    fields = _STATUS_FIELDS[kind] = tuple(out)
    return fields


def status_dataset(rsp: DIMSEPrimitive | None) -> Dataset:
    """A response's status elements as a pydicom Dataset (empty for None: no response)."""
    ds = blank_dataset()
    if rsp is None:
        return ds
    fields = _STATUS_FIELDS.get(type(rsp))
    if fields is None:
        fields = _status_fields(type(rsp))
    elements = ds.__dict__.get("_dict")  # pydicom's element store: skips __setitem__'s checks
    make = _Pydicom.data_element
    uids = _Pydicom.uids
    for keyword, tag, vr, fast in fields:
        value = getattr(rsp, keyword)
        if value is None:
            continue
        if fast == _NUMERIC and type(value) is int:
            # the primitive validated it already (dimse.primitives): no second conversion and
            # validation by pydicom
            elem = make(tag, vr, value, already_converted=True, validation_mode=0)
        elif fast == _UID_VALUE and type(value) is str:
            uid = uids.get(value)
            if uid is None:
                if len(uids) >= 256:
                    uids.clear()
                uid = uids[value] = _Pydicom.uid_class(value, 0)
            elem = make(tag, vr, uid, already_converted=True, validation_mode=0)
        else:
            if isinstance(value, tuple):
                value = list(value)
            elem = make(tag, vr, value)
        if isinstance(elements, dict):
            elements[tag] = elem
        else:  # pragma: no cover - another pydicom layout
            ds[tag] = elem
    return ds
