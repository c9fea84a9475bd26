"""Hypothesis strategies for the DIMSE primitives and command values (reusable by other tests).

``primitives_for(C_STORE_RQ)`` draws a primitive holding exactly the parameters that message
carries (mandatory ones always, optional ones sometimes), with values that survive an encode /
decode round trip unchanged (no padding-like leading/trailing spaces in strings).
``PRIMITIVES`` maps message class names to those strategies; ``any_primitive()`` draws any.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

from dicomnet.dimse import messages as M
from dicomnet.dimse import primitives as P
from dicomnet.dimse.commands import ELEMENTS

_component = st.one_of(st.just("0"), st.integers(1, 10**15).map(str))
uids = st.lists(_component, min_size=2, max_size=10).map(".".join).filter(lambda s: len(s) <= 64)
us_values = st.integers(0, 0xFFFF)
message_ids = us_values
priorities = st.sampled_from((0, 1, 2))
statuses = us_values
_printable = "".join(c for c in string.printable if c.isprintable() and c != "\\")
ae_titles = st.text(_printable, min_size=1, max_size=16).map(str.strip).filter(bool)
error_comments = st.text(_printable, max_size=64).map(str.strip)
tags = st.integers(0, 0xFFFFFFFF)
tag_lists = st.lists(tags, min_size=1, max_size=6).map(tuple)
datasets = st.binary(min_size=2, max_size=32)

VALUE_STRATEGIES: dict[str, st.SearchStrategy[object]] = {
    "MessageID": message_ids,
    "MessageIDBeingRespondedTo": message_ids,
    "AffectedSOPClassUID": uids,
    "AffectedSOPInstanceUID": uids,
    "RequestedSOPClassUID": uids,
    "RequestedSOPInstanceUID": uids,
    "Priority": priorities,
    "MoveDestination": ae_titles,
    "MoveOriginatorApplicationEntityTitle": ae_titles,
    "MoveOriginatorMessageID": message_ids,
    "Status": statuses,
    "OffendingElement": tag_lists,
    "ErrorComment": error_comments,
    "ErrorID": us_values,
    "EventTypeID": us_values,
    "ActionTypeID": us_values,
    "AttributeIdentifierList": tag_lists,
    "NumberOfRemainingSuboperations": us_values,
    "NumberOfCompletedSuboperations": us_values,
    "NumberOfFailedSuboperations": us_values,
    "NumberOfWarningSuboperations": us_values,
}

_MECHANICS = {"CommandField", "CommandDataSetType"}


@st.composite
def _primitive(draw: st.DrawFn, cls: type[M.DIMSEMessage]) -> P.DIMSEPrimitive:
    prim = cls.PRIMITIVE()
    for tag in cls.REQUIRED:
        keyword = ELEMENTS[tag].keyword
        if keyword not in _MECHANICS:
            setattr(prim, keyword, draw(VALUE_STRATEGIES[keyword]))
    for tag in cls.OPTIONAL:
        keyword = ELEMENTS[tag].keyword
        if draw(st.booleans()):
            setattr(prim, keyword, draw(VALUE_STRATEGIES[keyword]))
    if cls.DATASET is not None and (cls.DATASET_REQUIRED or draw(st.booleans())):
        setattr(prim, cls.DATASET, draw(datasets))
    return prim


def primitives_for(cls: type[M.DIMSEMessage]) -> st.SearchStrategy[P.DIMSEPrimitive]:
    """Primitives that map to message class ``cls`` (requests have no Status, responses do)."""
    return _primitive(cls)


PRIMITIVES: dict[str, st.SearchStrategy[P.DIMSEPrimitive]] = {
    cls.__name__: primitives_for(cls) for cls in M.MESSAGE_TYPES.values()
}


def any_primitive() -> st.SearchStrategy[P.DIMSEPrimitive]:
    return st.one_of(*PRIMITIVES.values())
