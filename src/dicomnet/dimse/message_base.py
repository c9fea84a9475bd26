"""The DIMSE message base: :class:`CommandSet`, :class:`DIMSEMessage` and the command errors
(PS3.7 sections 6.3, 9.3, 10.3 and Annex C.5).

Theory of operation
-------------------
A DIMSE message is a command set plus an optional data set (PS3.7 section 6.3). This module
holds what every message class shares; the classes themselves, one per message of PS3.7
sections 9.3 and 10.3, and the decoder live in :mod:`dicomnet.dimse.messages`, which is where
users import all of these names from.

* :class:`CommandSet` is a thin keyword view (``cs.MessageID``) over the ``{tag: value}`` dict
  that :mod:`dicomnet.dimse.commands` encodes and decodes.
* :class:`DIMSEMessage` is the base of the message classes. A subclass states its Command
  Field, its primitive, and the command elements its PS3.7 table makes mandatory (M) or allows
  (U/C) as class keywords; ``__init_subclass__`` turns them, once, into the tables decoding
  uses (``PARAMS``: the elements that are primitive parameters; ``CHECKS``: those with their
  validators, None where a decoded value cannot be wrong; ``MUST_HAVE``: what a decoded
  command set must hold so that the common, complete case costs one subset test).
* :class:`DimseCommandError` (and its two kinds, 0120H Missing attribute and 0212H Mistyped
  argument, PS3.7 Annex C.5) carries the status to answer with and builds the failure response.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Final

from dicomnet.dimse import primitives as P
from dicomnet.dimse.commands import ELEMENTS, KEYWORD_TO_TAG
from dicomnet.dimse.commands import encode_command as _encode_elements
from dicomnet.errors import DimseError

__all__ = [
    "DATASET_PRESENT",
    "NO_DATASET",
    "TAG_AFFECTED_CLASS",
    "TAG_COMMAND_FIELD",
    "TAG_DATASET_TYPE",
    "TAG_ERROR_COMMENT",
    "TAG_MESSAGE_ID",
    "TAG_MESSAGE_ID_RSP",
    "TAG_OFFENDING",
    "TAG_STATUS",
    "CommandSet",
    "DIMSEMessage",
    "DimseCommandError",
    "InvalidCommandElementError",
    "MissingCommandElementError",
]

NO_DATASET: Final = 0x0101  # Command Data Set Type "no dataset" (PS3.7 Table E.1-1)
DATASET_PRESENT: Final = 0x0001

_T = KEYWORD_TO_TAG
TAG_COMMAND_FIELD = 0x0100
TAG_MESSAGE_ID = 0x0110
TAG_MESSAGE_ID_RSP = 0x0120
TAG_DATASET_TYPE = 0x0800
TAG_STATUS = 0x0900
TAG_AFFECTED_CLASS = 0x0002
TAG_OFFENDING = 0x0901
TAG_ERROR_COMMENT = 0x0902

# Command elements that are message mechanics, not primitive parameters.
_NOT_PRIMITIVE: Final = frozenset({TAG_COMMAND_FIELD, TAG_DATASET_TYPE})


class CommandSet:
    """Keyword attribute access over a command set's ``{tag: value}`` dict.

    Reading a known keyword that is absent gives None; assigning None removes the element.
    ``elements`` is the underlying dict (what :func:`encode_command` takes).
    """

    __slots__ = ("elements",)

    def __init__(self, elements: dict[int, object] | None = None) -> None:
        object.__setattr__(self, "elements", {} if elements is None else elements)

    elements: dict[int, object]

    def __getattr__(self, name: str) -> Any:
        tag = _T.get(name)
        if tag is None:
            raise AttributeError(f"no command element with keyword {name!r}")
        return self.elements.get(tag)

    def __setattr__(self, name: str, value: object) -> None:
        tag = _T.get(name)
        if tag is None:
            raise AttributeError(f"no command element with keyword {name!r}")
        if value is None:
            self.elements.pop(tag, None)
        else:
            self.elements[tag] = value

    def __contains__(self, keyword: object) -> bool:
        tag = _T.get(keyword) if isinstance(keyword, str) else None
        return tag is not None and tag in self.elements

    def __iter__(self) -> Iterator[str]:
        for tag in sorted(self.elements):
            info = ELEMENTS.get(tag)
            if info is not None:
                yield info.keyword

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CommandSet):
            return NotImplemented
        a = {k: v for k, v in self.elements.items() if k != 0}
        b = {k: v for k, v in other.elements.items() if k != 0}
        return a == b

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "CommandSet(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self) + ")"


class DimseCommandError(DimseError):
    """A known command with a missing or malformed element: answer it with ``status``.

    ``protocol`` is False: the association survives; send :meth:`response` (when not None).
    """

    protocol: bool = False
    status: int = 0x0110

    def __init__(
        self,
        message: str,
        *,
        message_class: type[DIMSEMessage],
        tag: int,
        elements: Mapping[int, object],
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message_class = message_class
        self.tag = tag
        self.elements = dict(elements)
        mid = elements.get(TAG_MESSAGE_ID)
        self.message_id: int | None = mid if isinstance(mid, int) else None

    def response(self) -> DIMSEMessage | None:
        """The failure response to send for a faulty request, or None (responses, C-CANCEL)."""
        rsp_cls = self.message_class.RESPONSE
        if rsp_cls is None or self.message_id is None:
            return None
        rsp = rsp_cls()
        cs = rsp.command_set.elements
        cs[TAG_MESSAGE_ID_RSP] = self.message_id
        cs[TAG_STATUS] = self.status
        cs[TAG_OFFENDING] = (self.tag,)
        cs[TAG_ERROR_COMMENT] = str(self)[:64].replace("\\", "/")
        sop_class = self.elements.get(TAG_AFFECTED_CLASS)
        if TAG_AFFECTED_CLASS in rsp.OPTIONAL and isinstance(sop_class, str):
            try:
                cs[TAG_AFFECTED_CLASS] = P.VALIDATORS["AffectedSOPClassUID"]("x", sop_class)
            except DimseError:
                pass
        return rsp


class MissingCommandElementError(DimseCommandError):
    """A mandatory command element is absent: status 0120H Missing attribute (PS3.7 C.5)."""

    status = 0x0120


class InvalidCommandElementError(DimseCommandError):
    """A command element has a malformed value: status 0212H Mistyped argument (PS3.7 C.5)."""

    status = 0x0212


class DIMSEMessage:
    """Base of the message classes: a command set, an optional dataset, a context ID."""

    __slots__ = ("command_set", "context_id", "data_set")

    COMMAND_FIELD: ClassVar[int] = -1
    IS_REQUEST: ClassVar[bool] = True
    PRIMITIVE: ClassVar[type[P.DIMSEPrimitive]] = P.DIMSEPrimitive
    #: mandatory command elements (tags), Command Group Length excluded
    REQUIRED: ClassVar[tuple[int, ...]] = ()
    #: optional and conditional command elements (tags)
    OPTIONAL: ClassVar[tuple[int, ...]] = ()
    #: the primitive parameter holding the dataset, None when the message never has one
    DATASET: ClassVar[str | None] = None
    #: True when PS3.7 makes the dataset mandatory (M) for this message
    DATASET_REQUIRED: ClassVar[bool] = False
    #: a request's response message class (set by :mod:`dicomnet.dimse.messages`), else None
    RESPONSE: ClassVar[type[DIMSEMessage] | None] = None
    #: (tag, keyword) of the command elements that are primitive parameters (built once)
    PARAMS: ClassVar[tuple[tuple[int, str], ...]] = ()
    #: (tag, keyword, validator or None) used by :func:`decode_message`: None where the decoded
    #: value cannot be wrong (``primitives.RANGE_ONLY``)
    CHECKS: ClassVar[tuple[tuple[int, str, P.Validator | None], ...]] = ()
    REQUIRED_SET: ClassVar[frozenset[int]] = frozenset()
    #: the element a request (Message ID) or a response / C-CANCEL (Message ID Being
    #: Responded To) cannot do without
    ID_TAG: ClassVar[int] = TAG_MESSAGE_ID
    #: what a decoded command set must hold: REQUIRED, Command Data Set Type and ID_TAG
    MUST_HAVE: ClassVar[frozenset[int]] = frozenset()

    command_set: CommandSet
    data_set: object | None
    context_id: int | None

    def __init_subclass__(
        cls,
        *,
        field: int,
        primitive: type[P.DIMSEPrimitive],
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
        dataset: str | None = None,
        dataset_required: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.COMMAND_FIELD = field
        cls.IS_REQUEST = not field & 0x8000
        cls.PRIMITIVE = primitive
        cls.REQUIRED = tuple(_T[k] for k in required)
        cls.OPTIONAL = tuple(_T[k] for k in optional)
        cls.DATASET = dataset
        cls.DATASET_REQUIRED = dataset_required
        params = [
            (tag, ELEMENTS[tag].keyword)
            for tag in cls.REQUIRED + cls.OPTIONAL
            if tag not in _NOT_PRIMITIVE
        ]
        cls.PARAMS = tuple(params)
        cls.CHECKS = tuple(
            (tag, kw, None if kw in P.RANGE_ONLY else P.VALIDATORS.get(kw)) for tag, kw in params
        )
        cls.REQUIRED_SET = frozenset(cls.REQUIRED)
        cls.ID_TAG = TAG_MESSAGE_ID if cls.IS_REQUEST and field != 0x0FFF else TAG_MESSAGE_ID_RSP
        cls.MUST_HAVE = cls.REQUIRED_SET | {TAG_DATASET_TYPE, cls.ID_TAG}

    def __init__(
        self,
        command_set: CommandSet | dict[int, object] | None = None,
        data_set: object | None = None,
        context_id: int | None = None,
    ) -> None:
        if not isinstance(command_set, CommandSet):
            command_set = CommandSet(command_set)
        command_set.elements[TAG_COMMAND_FIELD] = self.COMMAND_FIELD
        self.command_set = command_set
        self.data_set = data_set
        self.context_id = context_id

    def __repr__(self) -> str:
        ds = "" if self.data_set is None else ", data_set=..."
        return f"{type(self).__name__}({self.command_set!r}{ds})"

    @property
    def has_data_set(self) -> bool:
        """Whether the command set announces a dataset (any value but 0101H, PS3.7 E.1)."""
        value = self.command_set.elements.get(TAG_DATASET_TYPE)
        if value is None:
            return self.data_set is not None
        return value != NO_DATASET

    def encode_command(self) -> bytes:
        """The command set bytes (group length first), Command Data Set Type made consistent."""
        elements = self.command_set.elements
        elements[TAG_COMMAND_FIELD] = self.COMMAND_FIELD
        current = elements.get(TAG_DATASET_TYPE)
        if self.data_set is None:
            elements[TAG_DATASET_TYPE] = NO_DATASET
        elif current is None or current == NO_DATASET:
            elements[TAG_DATASET_TYPE] = DATASET_PRESENT
        if not elements.keys() >= self.REQUIRED_SET or None in elements.values():
            for tag in self.REQUIRED:
                if elements.get(tag) is None:
                    raise DimseError(
                        f"{type(self).__name__}: mandatory {ELEMENTS[tag].keyword} is not set"
                    )
        return _encode_elements(elements)

    def to_primitive(self) -> P.DIMSEPrimitive:
        """The service primitive carrying this message's parameters (validated)."""
        prim = self.PRIMITIVE()
        elements = self.command_set.elements
        for tag, keyword in self.PARAMS:
            value = elements.get(tag)
            if value is not None:
                setattr(prim, keyword, value)
        if self.DATASET is not None and self.data_set is not None:
            setattr(prim, self.DATASET, self.data_set)
        return prim
