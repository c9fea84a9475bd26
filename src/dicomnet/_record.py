"""Value classes without :mod:`dataclasses`: a generic base that costs nothing at import.

Theory of operation
-------------------
``@dataclass`` writes each class's ``__init__``/``__eq__``/``__repr__``/... as source text and
``exec``-s it while the module is imported (about half a millisecond per class), and importing
:mod:`dataclasses` itself pulls in :mod:`inspect`, :mod:`ast` and :mod:`dis`. The PDUs, Upper
Layer events and similar small value classes sit on the import path of every command-line tool
(``dicomnet echoscu`` must start about as fast as DCMTK's), so they subclass :class:`Record`
instead:

* a subclass declares its fields in ``__slots__`` and writes its own ``__init__`` with the same
  parameters a dataclass would have; the field order (for ``repr``, ``__match_args__``,
  pickling) is the order of those parameters, and every slot must be one. A frozen record
  assigns its fields with ``object.__setattr__`` (or, on hot paths, with the slot descriptors'
  ``__set__``) because its own ``__setattr__`` refuses assignment;
* :class:`Record` derives, once per subclass in ``__init_subclass__``, what ``@dataclass``
  would generate: ``__eq__`` (same class and equal fields), ``__hash__`` (frozen records only;
  mutable ones are unhashable, like ``@dataclass(eq=True)``), ``__repr__``
  (``Name(field=value, ...)``), ``__match_args__``, pickling/copying via ``__reduce__``, and a
  ``replace(**changes)`` method. Fields named in ``_uncompared`` are left out of equality,
  hashing and ``repr`` (``field(compare=False, repr=False)``);
* ``class X(Record, frozen=False)`` gives a mutable record (ordinary attribute assignment).

Compatibility with code that treats these classes as dataclasses
(``dataclasses.replace``/``fields``/``asdict``/``is_dataclass``): ``__dataclass_fields__`` is a
lazy class attribute. On first access (by which time the caller has imported
:mod:`dataclasses` anyway) it builds the equivalent ``dataclasses.Field`` objects from the
class's ``__slots__``, annotations and ``__init__`` defaults, with the public
:func:`dataclasses.make_dataclass`, and caches them on the class.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable
    from dataclasses import Field
    from typing import Any, Self, TypeAlias

    # as typeshed's DataclassInstance protocol has it (dict is invariant: not Field[object])
    _Fields: TypeAlias = dict[str, Field[Any]]

__all__ = ["Record"]

def _no_fields(_obj: object) -> tuple[()]:
    return ()


class _LazyDataclassFields:
    """The ``__dataclass_fields__`` class attribute, computed on first access (see above)."""

    def __get__(self, obj: object, cls: type[Record]) -> _Fields:
        # lazy: the point of Record (see above) -- dataclasses and inspect cost milliseconds
        # at start-up; only code asking for dataclass fields pays for them
        import dataclasses
        import inspect

        params = inspect.signature(cls.__init__).parameters
        annotations = inspect.get_annotations(cls)
        specs: list[tuple[str, object, Field[object]]] = []
        for name in cls._fields:
            shown = name not in cls._uncompared
            default = params[name].default if name in params else inspect.Parameter.empty
            if default is inspect.Parameter.empty:
                spec = dataclasses.field(compare=shown, repr=shown)
            else:
                spec = dataclasses.field(default=default, compare=shown, repr=shown)
            specs.append((name, annotations.get(name, "Any"), spec))
        shadow = dataclasses.make_dataclass(cls.__name__, specs, frozen=cls._frozen)
        fields: _Fields = getattr(shadow, "__dataclass_fields__")  # noqa: B009
        type.__setattr__(cls, "__dataclass_fields__", fields)  # cache: shadows this descriptor
        return fields


class Record:
    """Base class of the slotted value classes (see the module docstring)."""

    __slots__ = ()

    _fields: ClassVar[tuple[str, ...]] = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    _uncompared: ClassVar[frozenset[str]] = frozenset()
    _frozen: ClassVar[bool] = True
    # a staticmethod: the compared field values (a tuple; the bare value for a single field)
    _key: ClassVar[Callable[[object], object]] = staticmethod(_no_fields)

    if TYPE_CHECKING:
        __dataclass_fields__: ClassVar[_Fields]
    else:
        __dataclass_fields__ = _LazyDataclassFields()

    def __init_subclass__(cls, *, frozen: bool | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__ or "__slots__" in cls.__dict__:
            slots: set[str] = set()
            for klass in cls.__mro__:
                names = klass.__dict__.get("__slots__", ())
                slots.update((names,) if isinstance(names, str) else names)
            code = getattr(cls.__init__, "__code__", None)  # None: object.__init__
            # the fields: the positional parameters after self, in order
            fields = code.co_varnames[1 : code.co_argcount] if code is not None else ()
            if set(fields) != slots:
                raise TypeError(
                    f"{cls.__name__}: __slots__ must name exactly the __init__ parameters"
                )
            cls._fields = fields
            cls.__match_args__ = fields  # type: ignore[misc]
            cls._key = staticmethod(_getter(tuple(n for n in fields if n not in cls._uncompared)))
        # else: a plain subclass keeps its parent's fields, like a subclass of a dataclass
        if frozen is not None:
            cls._frozen = frozen
        if not cls._frozen:
            if "__setattr__" not in cls.__dict__:  # a class may adapt assignments itself
                cls.__setattr__ = object.__setattr__  # type: ignore[method-assign,assignment]
            cls.__delattr__ = object.__delattr__  # type: ignore[method-assign]
            if "__hash__" not in cls.__dict__:  # a class may define its own (on stable fields)
                cls.__hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            key = self.__class__._key
            result: bool = key(self) == key(other)
            return result
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.__class__._key(self))

    def __repr__(self) -> str:
        cls = self.__class__
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in cls._fields if name not in cls._uncompared
        )
        return f"{cls.__qualname__}({shown})"

    def __reduce__(self) -> tuple[type[Self], tuple[object, ...]]:
        return self.__class__, tuple(getattr(self, name) for name in self._fields)

    def replace(self, **changes: object) -> Self:
        """A copy with some fields changed (like :func:`dataclasses.replace`)."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return self.__class__(**values)


def _getter(names: tuple[str, ...]) -> Callable[[object], object]:
    """A fast ``obj -> tuple of attributes`` (a bare value for one name: same eq/hash use)."""
    if not names:
        return _no_fields
    return attrgetter(*names)
