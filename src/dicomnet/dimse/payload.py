"""The data set payload of a DIMSE message, and where received payloads are kept.

Theory of operation
-------------------
A DIMSE message (PS3.7 section 6.3) carries an optional data set encoded in the transfer syntax
accepted for its presentation context. The message layer never needs the data set as a pydicom
``Dataset``: it needs its *encoded bytes*, in pieces, without copying them. :class:`Payload` is
that, with no I/O at all:

* ``Payload.from_bytes(b)`` wraps bytes/bytearray/memoryview without copying;
* ``Payload.from_dataset(ds, ts)`` keeps a pydicom ``Dataset`` and encodes it on first use
  (:func:`~dicomnet.dimse.dataset.encode_dataset`: PS3.5 section 10, no File Meta Information
  -- PS3.7 section 6.3.1);
* ``iter_chunks(n)`` yields the payload as memoryview slices of exactly ``n`` bytes (the last
  may be shorter; no copy), ``getbuffer()`` the whole view, ``read()`` a copy, ``decode(ts)`` a
  pydicom ``Dataset``.

Payloads held in files -- a Part 10 file to send, a large received data set spooled to disk --
are :class:`dicomnet.datasource.DataSource`, a subclass that lives outside the sans-IO layers
(it opens, reads, renames and deletes files; it declares its bytes held in a file with
:meth:`Payload.set_elsewhere`). It answers ``is_file`` True, has a ``path`` and an ``offset``,
may own its file (``owned``: deleted on ``close``), and its ``iter_regions(n)`` yields
``FileRegion`` pieces a transport can ``sendfile``. For a plain :class:`Payload` those answer
False / None / 0 / False and ``iter_regions`` raises DimseError, so the fragmenter
(:mod:`dicomnet.dimse.fragment`) handles both through this one interface.

Receiving: where a data set goes
--------------------------------
The :class:`~dicomnet.dimse.fragment.Reassembler` keeps a received data set in memory up to its
``spool_threshold``. Above it, the bytes must go somewhere else -- but opening a file is not
this layer's business, so the reassembler is given a :class:`PayloadFactory` by the application
side (for an association: :class:`dicomnet.datasource.SpoolingFactory`, spool files in the AE's
``spool_dir`` behind an optional Part 10 header). The factory makes

* ``memory(data, ts)``: the payload of a data set completed in memory (the factory picks the
  class, so that an application handler can still ``move_to`` an in-memory data set);
* ``spool(context_id, command)``: a :class:`DataSink` opened when the threshold is crossed, given
  the command set so that it may prepare for the data set (the storage SCP writes the Part 10
  header the file will carry). The reassembler writes every fragment into it and then
  takes ``finish(ts)``, the finished payload; ``discard()`` drops it (abort, refused message).
  A sink raises :class:`~dicomnet.errors.DimseError` when it cannot keep the bytes (disk full):
  that is a local failure, answered A700H (out of resources, PS3.4 e.g. B.2.3), not an abort.

Without a factory the reassembler keeps every data set in memory as a plain :class:`Payload`
(bounded by its ``max_message_size``).

Pydicom is imported lazily, only by the functions that need a ``Dataset``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from dicomnet.dimse.dataset import decode_dataset, encode_dataset
from dicomnet.errors import DimseError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.dimse.checker import DataSetChecker

__all__ = ["DataSink", "Payload", "PayloadFactory"]


_KIND_BYTES = 0
_KIND_ELSEWHERE = 1  # the bytes are kept by a subclass (a file): see Payload.set_elsewhere
_KIND_DATASET = 2


class Payload:
    """An encoded data set payload (see the module docstring).

    For subclasses that keep the bytes themselves (:class:`dicomnet.datasource.DataSource`:
    a file): :meth:`set_elsewhere` declares it, after which ``is_file`` is True, ``size`` is
    the size given and ``getbuffer()`` None; the subclass then provides ``iter_chunks``,
    ``read``, ``iter_regions``, ``detach``, ``close`` and the ``path``/``offset``/``owned``
    attributes for that state. ``size``, ``getbuffer`` and ``is_file`` are not overridden:
    they are on the per-message hot path and stay one attribute test.
    """

    __slots__ = ("_data", "_dataset", "_kind", "_size", "check", "transfer_syntax")

    def __init__(
        self,
        *,
        data: bytes | bytearray | memoryview | None = None,
        transfer_syntax: str | None = None,
    ) -> None:
        self.transfer_syntax = transfer_syntax
        #: A received data set's check (a :class:`~dicomnet.dimse.checker.DataSetChecker`
        #: after ``finish()``: its ``problem`` says why it is not well-formed), or None.
        self.check: DataSetChecker | None = None
        self._dataset: Dataset | None = None
        if data is not None:
            self._kind = _KIND_BYTES
            view = data if isinstance(data, memoryview) else memoryview(data)
            if view.ndim != 1 or view.itemsize != 1:
                view = view.cast("B")
            self._data: memoryview | None = view
            self._size: int | None = view.nbytes
        else:
            # A Dataset (``from_dataset``) encoded on first use.
            self._kind = _KIND_DATASET
            self._data = None
            self._size = None

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, transfer_syntax: str | None = None
    ) -> Self:
        """Wrap already encoded bytes (no copy)."""
        return cls(data=data, transfer_syntax=transfer_syntax)

    @classmethod
    def from_dataset(cls, dataset: Dataset, transfer_syntax: str) -> Self:
        """A pydicom ``Dataset``, encoded in ``transfer_syntax`` on first use."""
        src = cls(transfer_syntax=transfer_syntax)
        src._dataset = dataset
        return src

    def set_elsewhere(self, size: int) -> None:
        """For subclasses: from now on the payload's ``size`` bytes are kept by the subclass
        (in a file), not in memory; bytes held so far are released (a Dataset stays
        available as ``dataset``)."""
        self._kind = _KIND_ELSEWHERE
        self._data = None
        self._size = size

    # -- payload access ----------------------------------------------------------------------

    def _encode(self) -> memoryview:
        if self._data is None:
            if self._kind == _KIND_ELSEWHERE:
                raise DimseError(f"{type(self).__name__}: the bytes are not in memory")
            if self._dataset is None or self.transfer_syntax is None:
                raise DimseError(f"this {type(self).__name__} was closed")
            self._data = memoryview(encode_dataset(self._dataset, self.transfer_syntax))
            self._size = self._data.nbytes
        return self._data

    @property
    def size(self) -> int:
        """Payload length in bytes (a Dataset payload is encoded to learn it)."""
        if self._size is None:
            self._encode()
        assert self._size is not None
        return self._size

    @property
    def dataset(self) -> Dataset | None:
        """The pydicom Dataset this payload was built from, if any."""
        return self._dataset

    @property
    def is_file(self) -> bool:
        """True for a file-backed payload (its bytes are read lazily from ``path``)."""
        return self._kind == _KIND_ELSEWHERE

    @property
    def path(self) -> str | None:
        """The file holding the payload (None: in memory)."""
        return None

    @property
    def offset(self) -> int:
        """Where the payload starts in its file (0 in memory)."""
        return 0

    @property
    def owned(self) -> bool:
        """True while ``close()`` will delete the backing file (never, in memory)."""
        return False

    def iter_chunks(self, chunk_size: int) -> Iterator[memoryview | bytes]:
        """The payload as chunks of ``chunk_size`` bytes (the last may be shorter): memoryview
        slices, no copy."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        data = self._encode()
        n = data.nbytes
        for start in range(0, n, chunk_size):
            yield data[start : start + chunk_size]

    def iter_regions(self, chunk_size: int) -> Iterator[Sized]:
        """File regions for ``sendfile``: only a file-backed payload has them (DimseError)."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        raise DimseError(f"iter_regions needs a file-backed payload, not {self!r}")
        yield  # pragma: no cover - makes this a generator: it raises when iterated, as before

    def read(self) -> bytes:
        """The whole payload as bytes (a copy)."""
        return bytes(self._encode())

    def getbuffer(self) -> memoryview | None:
        """The in-memory payload without copying (None for a file-backed payload)."""
        return None if self._kind == _KIND_ELSEWHERE else self._encode()

    def decode(self, transfer_syntax: str | None = None) -> Dataset:
        """Decode into a pydicom ``Dataset`` (defaults to the known transfer syntax)."""
        if self._dataset is not None and (
            transfer_syntax is None or transfer_syntax == self.transfer_syntax
        ):
            return self._dataset
        ts = transfer_syntax or self.transfer_syntax
        if ts is None:
            raise DimseError("decode: the transfer syntax of this data set is unknown")
        return decode_dataset(self.read(), ts)

    # -- life cycle --------------------------------------------------------------------------

    def detach(self) -> str | None:
        """Stop owning a backing file and return its path (in memory: nothing, None)."""
        return None

    def close(self) -> None:
        """Release what the payload holds outside memory (a subclass's file). Bytes in memory
        are left to the object's own lifetime: dropped here they would be freed no sooner (the
        message that carries them goes once it is answered) unless someone keeps the object
        -- an application that keeps an event to read its data set after the handler
        returned, which pynetdicom's events allow and programs written for it do."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = ("bytes", "file", "dataset")[self._kind]
        return (
            f"{type(self).__name__}({kind}, size={self._size}, path={self.path!r}, "
            f"offset={self.offset}, transfer_syntax={self.transfer_syntax!r})"
        )


class DataSink(Protocol):
    """Where the reassembler writes a received data set too large to keep in memory."""

    def write(self, data: bytes | memoryview) -> None:
        """Append data set bytes; DimseError when they cannot be kept (a local failure)."""
        ...

    def finish(self, transfer_syntax: str | None) -> Payload:
        """Every fragment was written: the payload holding them."""
        ...

    def discard(self) -> None:
        """Drop what was written (an aborted or refused message)."""
        ...


class PayloadFactory(Protocol):
    """Makes the payloads of received data sets (see the module docstring)."""

    def memory(self, data: bytes | memoryview, transfer_syntax: str | None) -> Payload:
        """The payload of a data set received in memory (``data`` is not copied)."""
        ...

    def spool(self, context_id: int, command: bytes) -> DataSink:
        """A sink for the data set of the message whose command set is ``command``."""
        ...
