"""The Storage Commitment wire format (PS3.4 Tables J.3-1, J.3-2): a streaming reader of
requests and reports, and the one small encoder that writes both.

Theory of operation
-------------------
A Storage Commitment request (the Action Information of an N-ACTION-RQ, Action Type ID 1,
PS3.4 J.3.2.1) is a Transaction UID (0008,1195) and a Referenced SOP Sequence (0008,1199) of
(Referenced SOP Class UID, Referenced SOP Instance UID) items; its result (the Event
Information of an N-EVENT-REPORT-RQ, PS3.4 J.3.3.1) adds a Failed SOP Sequence (0008,1198)
whose items carry a Failure Reason (0008,1197), and optionally a Retrieve AE Title
(0008,0054). Either may hold 100 000 items, so neither is ever one pydicom Dataset.

**Reading** (:class:`CommitmentRequest`, :class:`CommitmentReport`) walks element headers
(PS3.5 7.1, 7.5) over the payload's chunks -- inflated on the fly for the Deflated syntax
(PS3.5 A.5), with Explicit VR framing for every encapsulated syntax (PS3.5 A.4) -- keeping
only the few values it was asked for (the UIDs of each item, the top-level Transaction UID)
and skipping everything else by its length, or item by item for an undefined length (with
a bounded nesting depth and value size: a hostile peer can neither recurse nor make us
buffer). Items are yielded one at a time. What is wrong with a request is raised as a
:class:`MalformedRequest` carrying its PS3.7 Annex C status: a missing Type 1 UID is 0120H
(Missing Attribute), an empty one 0121H (Missing Attribute Value), a value that is not a UID
0115H (Invalid Argument Value); a truncated or mis-framed data set is 0110H.

**Writing** (:class:`Writer`, :func:`encode_request`, :func:`encode_report`) emits a flat
data set with undefined-length sequences of short explicit-length items, in memory up to
1 MiB and in a spool file beyond (``.commitment-<pid>-*.tmp``, :data:`SPOOL_PREFIX`; the
returned :class:`~dicomnet.datasource.DataSource` owns it), deflated on the fly for the
Deflated syntax.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import struct
import tempfile
import uuid
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, NamedTuple

from dicomnet.datasource import DataSource
from dicomnet.dimse.status import Status
from dicomnet.uid import is_valid_uid

__all__ = [
    "EVENT_FAILURES",
    "EVENT_SUCCESS",
    "FAILED_SOP_SEQUENCE",
    "FAILURE_REASON",
    "IMPLICIT_LE",
    "REFERENCED_SOP_CLASS_UID",
    "REFERENCED_SOP_INSTANCE_UID",
    "REFERENCED_SOP_SEQUENCE",
    "REPORT_SYNTAXES",
    "REQUEST_COMMITMENT",
    "RETRIEVE_AE_TITLE",
    "SOP_CLASS",
    "SPOOL_PREFIX",
    "TRANSACTION_UID",
    "WELL_KNOWN_INSTANCE",
    "CommitmentReport",
    "CommitmentRequest",
    "MalformedRequest",
    "ReportItem",
    "Writer",
    "encode_report",
    "encode_request",
    "new_transaction_uid",
]

SOP_CLASS = "1.2.840.10008.1.20.1"
#: Its well-known SOP Instance, the one every request names (PS3.4 J.3.5).
WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"
#: Action Type ID of "Request Storage Commitment" (PS3.4 J.3.2.1, Table J.3-1).
REQUEST_COMMITMENT = 1
#: Event Type IDs of the Storage Commitment Result (PS3.4 J.3.3.1, Table J.3-2).
EVENT_SUCCESS = 1
EVENT_FAILURES = 2


# --- tags (PS3.3 C.14, PS3.4 Tables J.3-1 / J.3-2) ------------------------------------------
RETRIEVE_AE_TITLE = 0x00080054
TRANSACTION_UID = 0x00081195
FAILED_SOP_SEQUENCE = 0x00081198
REFERENCED_SOP_SEQUENCE = 0x00081199
REFERENCED_SOP_CLASS_UID = 0x00081150
REFERENCED_SOP_INSTANCE_UID = 0x00081155
FAILURE_REASON = 0x00081197
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF

#: Implicit VR Little Endian: the syntax of a report when its context names none (PS3.5 10.1).
IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_DEFLATED_LE = "1.2.840.10008.1.2.1.99"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
#: What we propose for the report's association (PS3.5 10.1: every SCP accepts Implicit VR LE).
REPORT_SYNTAXES = (_EXPLICIT_LE, IMPLICIT_LE)

# PS3.5 7.1.2: explicit VRs with a 32-bit length after two reserved bytes
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_MAX_VALUE = 1024  # longest UID/US/AE value we read (a UID is at most 64 bytes, PS3.5 9.1)
_MAX_DEPTH = 32  # nested undefined-length sequences skipped (a hostile peer cannot recurse)
_READ_CHUNK = 1 << 16
_SPOOL_ABOVE = 1 << 20  # an encoded report or request larger than this goes to a file
#: A spool file of an encoded request or report is named ``<SPOOL_PREFIX><pid>-*.tmp``.
SPOOL_PREFIX = ".commitment-"


class MalformedRequest(Exception):
    """A request (or report) we cannot process: ``status`` is the PS3.7 Annex C status to
    answer with, ``tag`` the offending element when known."""

    def __init__(self, status: int, reason: str, tag: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.tag = tag


def new_transaction_uid() -> str:
    """A fresh Transaction UID (PS3.5 B.2: a UUID as a ``2.25.`` UID)."""
    return f"2.25.{uuid.uuid4().int}"


# --- reading: a streaming walk over element headers (PS3.5 7.1, 7.5) ------------------------


class _Syntax(NamedTuple):
    little: bool
    implicit: bool
    deflated: bool


def _syntax(transfer_syntax: str | None) -> _Syntax:
    """How a data set is framed: every encapsulated (compressed) syntax frames the data set as
    Explicit VR Little Endian (PS3.5 A.4); deflate wraps Explicit VR LE (PS3.5 A.5)."""
    if transfer_syntax == IMPLICIT_LE:
        return _Syntax(True, True, False)
    if transfer_syntax == _EXPLICIT_BE:
        return _Syntax(False, False, False)
    if transfer_syntax == _DEFLATED_LE:
        return _Syntax(True, False, True)
    return _Syntax(True, False, False)


_IMPLICIT = _Syntax(True, True, False)  # the content of a UN sequence (PS3.5 6.2.2 Note)


class _Stream:
    """Sequential reads over a payload's chunks (inflated on the fly for deflate), holding at
    most one chunk and a partial element."""

    __slots__ = ("_buf", "_chunks", "_done", "_inflate", "_pos", "offset")

    def __init__(self, chunks: Iterator[bytes | memoryview], deflated: bool) -> None:
        self._chunks = chunks
        self._inflate = zlib.decompressobj(-15) if deflated else None
        self._done = False
        self._buf = b""
        self._pos = 0
        self.offset = 0  # bytes consumed, from the start of the (inflated) data set

    def _piece(self) -> bytes | None:
        z = self._inflate
        if z is None:
            chunk = next(self._chunks, None)
            return None if chunk is None else bytes(chunk)
        while not self._done:
            if z.eof:  # the deflated stream ended; what follows is PS3.5 A.5 padding
                self._done = True
                return None
            if z.unconsumed_tail:
                data = z.unconsumed_tail
            else:
                chunk = next(self._chunks, None)
                if chunk is None:
                    self._done = True
                    return z.flush() or None
                data = bytes(chunk)
            out = z.decompress(data, _READ_CHUNK)  # bounded: a deflate bomb streams too
            if out:
                return out
        return None

    def _fill(self, n: int) -> bool:
        while len(self._buf) - self._pos < n:
            piece = self._piece()
            if piece is None:
                return False
            self._buf = self._buf[self._pos :] + piece
            self._pos = 0
        return True

    def at_end(self) -> bool:
        return not self._fill(1)

    def read(self, n: int) -> bytes:
        if not self._fill(n):
            raise MalformedRequest(Status.PROCESSING_FAILURE, "the data set is truncated")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        self.offset += n
        return out

    def skip(self, n: int) -> None:
        available = len(self._buf) - self._pos
        while n > available:
            n -= available
            self.offset += available
            piece = self._piece()
            if piece is None:
                raise MalformedRequest(Status.PROCESSING_FAILURE, "the data set is truncated")
            self._buf, self._pos, available = piece, 0, len(piece)
        self._pos += n
        self.offset += n


def _header(s: _Stream, syn: _Syntax) -> tuple[int, bytes | None, int]:
    """(tag, VR or None, value length) of the next element (PS3.5 7.1.1-7.1.3; items and
    delimiters, group FFFE, never have a VR, PS3.5 7.5)."""
    raw = s.read(8)
    order = "<" if syn.little else ">"
    group, element = struct.unpack(order + "HH", raw[:4])
    tag = group << 16 | element
    if group == 0xFFFE or syn.implicit:
        return tag, None, struct.unpack(order + "I", raw[4:])[0]
    vr = raw[4:6]
    if vr in _LONG_VRS:
        return tag, vr, struct.unpack(order + "I", s.read(4))[0]
    return tag, vr, struct.unpack(order + "H", raw[6:])[0]


def _skip(s: _Stream, syn: _Syntax, vr: bytes | None, length: int, depth: int = 0) -> None:
    """Skip a value: by its length, or item by item up to the Sequence Delimitation Item when
    it has an undefined length (a sequence, or encapsulated pixel data; PS3.5 7.5.2, A.4)."""
    if length != _UNDEFINED:
        s.skip(length)
        return
    if depth > _MAX_DEPTH:
        raise MalformedRequest(Status.PROCESSING_FAILURE, "sequences nested too deeply")
    inner = _IMPLICIT if vr == b"UN" else syn
    while True:
        tag, _, item_length = _header(s, inner)
        if tag == _SEQUENCE_END:
            return
        if tag != _ITEM:
            raise MalformedRequest(Status.PROCESSING_FAILURE, f"({tag >> 16:04X},{tag & 0xFFFF:04X}) "
                                   "where a sequence item was expected")  # fmt: skip
        if item_length != _UNDEFINED:
            s.skip(item_length)
            continue
        while True:
            etag, evr, elength = _header(s, inner)
            if etag == _ITEM_END:
                break
            _skip(s, inner, evr, elength, depth + 1)


def _walk(
    s: _Stream,
    syn: _Syntax,
    sequences: frozenset[int],
    top_tags: frozenset[int],
    item_tags: frozenset[int],
    top: dict[int, bytes],
) -> Iterator[tuple[int, dict[int, bytes]]]:
    """The items of the ``sequences`` at the top level of the data set, as (sequence tag,
    {tag: raw value} of the ``item_tags`` found in the item), in order; the raw values of the
    top-level ``top_tags`` are put in ``top`` as they pass (before the sequences that follow
    them in tag order, PS3.5 7.1), and each of the ``sequences`` present, even empty, with an
    empty value. Everything else is skipped by its length."""
    while not s.at_end():
        tag, vr, length = _header(s, syn)
        if tag in sequences:
            if vr not in (None, b"SQ", b"UN"):
                raise MalformedRequest(Status.INVALID_ARGUMENT_VALUE,
                                       f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not a sequence",
                                       tag)  # fmt: skip
            top[tag] = b""
            yield from _items(s, _IMPLICIT if vr == b"UN" else syn, tag, length, item_tags)
        elif tag in top_tags:
            if length == _UNDEFINED or length > _MAX_VALUE:
                raise MalformedRequest(Status.INVALID_ARGUMENT_VALUE,
                                       f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is too long", tag)  # fmt: skip
            top[tag] = s.read(length)
        elif tag >> 16 == 0xFFFE:
            raise MalformedRequest(Status.PROCESSING_FAILURE, "a delimiter outside any sequence")
        else:
            _skip(s, syn, vr, length)


def _items(
    s: _Stream, syn: _Syntax, seq_tag: int, length: int, item_tags: frozenset[int]
) -> Iterator[tuple[int, dict[int, bytes]]]:
    end = None if length == _UNDEFINED else s.offset + length
    while end is None or s.offset < end:
        tag, _, item_length = _header(s, syn)
        if tag == _SEQUENCE_END and end is None:
            return
        if tag != _ITEM:
            raise MalformedRequest(Status.PROCESSING_FAILURE, "a sequence holds something other "
                                   "than items", seq_tag)  # fmt: skip
        item_end = None if item_length == _UNDEFINED else s.offset + item_length
        values: dict[int, bytes] = {}
        while item_end is None or s.offset < item_end:
            etag, evr, elength = _header(s, syn)
            if etag == _ITEM_END and item_end is None:
                break
            if etag in item_tags and elength != _UNDEFINED:
                if elength > _MAX_VALUE:
                    raise MalformedRequest(Status.INVALID_ARGUMENT_VALUE, f"({etag >> 16:04X},"
                                           f"{etag & 0xFFFF:04X}) is too long", etag)  # fmt: skip
                values[etag] = s.read(elength)
            else:
                _skip(s, syn, evr, elength)
        if item_end is not None and s.offset != item_end:
            raise MalformedRequest(Status.PROCESSING_FAILURE, "an item overruns its length")
        yield seq_tag, values
    if s.offset != end:
        raise MalformedRequest(Status.PROCESSING_FAILURE, "a sequence overruns its length")


def _text(raw: bytes | None) -> str | None:
    """A UI/AE value without its padding (PS3.5 6.2); None when absent."""
    if raw is None:
        return None
    return raw.decode("ascii", "replace").strip("\0 ")


def _uid(raw: bytes | None, tag: int, what: str) -> str:
    """A Type 1 UID of the request (PS3.4 Table J.3-1): present, not empty, a UID."""
    if raw is None:
        raise MalformedRequest(Status.MISSING_ATTRIBUTE, f"{what} missing", tag)
    value = _text(raw)
    if not value:
        raise MalformedRequest(Status.MISSING_ATTRIBUTE_VALUE, f"{what} empty", tag)
    if not is_valid_uid(value):
        raise MalformedRequest(Status.INVALID_ARGUMENT_VALUE, f"{what} is not a UID", tag)
    return value


def _chunks(source: DataSource) -> Iterator[bytes | memoryview]:
    return source.iter_chunks(_READ_CHUNK)


class CommitmentRequest:
    """The Action Information of a Storage Commitment Request (PS3.4 Table J.3-1), read as a
    stream: :meth:`items` yields (Referenced SOP Class UID, Referenced SOP Instance UID) one
    item at a time; :attr:`transaction_uid` is known from the first item on (it precedes the
    sequence in tag order) and, whatever the order, once :meth:`items` is exhausted.
    :class:`MalformedRequest` says what is wrong, with its status."""

    def __init__(self, source: DataSource, transfer_syntax: str | None) -> None:
        self._syntax = _syntax(transfer_syntax)
        self._stream = _Stream(_chunks(source), self._syntax.deflated)
        self._top: dict[int, bytes] = {}
        self.count = 0

    @property
    def saw_sequence(self) -> bool:
        """Whether the Referenced SOP Sequence was there (possibly empty)."""
        return REFERENCED_SOP_SEQUENCE in self._top

    @property
    def transaction_uid(self) -> str:
        return _uid(self._top.get(TRANSACTION_UID), TRANSACTION_UID, "Transaction UID (0008,1195)")

    def items(self) -> Iterator[tuple[str, str]]:
        for _seq, values in _walk(self._stream, self._syntax,
                                  frozenset({REFERENCED_SOP_SEQUENCE}),
                                  frozenset({TRANSACTION_UID}),
                                  frozenset({REFERENCED_SOP_CLASS_UID,
                                             REFERENCED_SOP_INSTANCE_UID}), self._top):  # fmt: skip
            self.count += 1
            n = self.count
            yield (
                _uid(values.get(REFERENCED_SOP_CLASS_UID), REFERENCED_SOP_CLASS_UID,
                     f"item {n}: Referenced SOP Class UID (0008,1150)"),
                _uid(values.get(REFERENCED_SOP_INSTANCE_UID), REFERENCED_SOP_INSTANCE_UID,
                     f"item {n}: Referenced SOP Instance UID (0008,1155)"),
            )  # fmt: skip


class ReportItem(NamedTuple):
    """One reference of a Storage Commitment Result; ``failure_reason`` None when committed."""

    sop_class_uid: str
    sop_instance_uid: str
    failure_reason: int | None


class CommitmentReport:
    """The Event Information of a Storage Commitment Result (PS3.4 Table J.3-2), read as a
    stream (for an SCU): :attr:`transaction_uid` and :attr:`retrieve_ae_title` once the first
    item was read (or :meth:`items` exhausted), :meth:`items` one :class:`ReportItem` at a time
    (failed ones first, as encoded)."""

    def __init__(self, source: DataSource, transfer_syntax: str | None) -> None:
        self._syntax = _syntax(transfer_syntax)
        self._stream = _Stream(_chunks(source), self._syntax.deflated)
        self._top: dict[int, bytes] = {}

    @property
    def transaction_uid(self) -> str | None:
        return _text(self._top.get(TRANSACTION_UID))

    @property
    def retrieve_ae_title(self) -> str | None:
        return _text(self._top.get(RETRIEVE_AE_TITLE))

    def items(self) -> Iterator[ReportItem]:
        order = "<" if self._syntax.little else ">"
        for seq, values in _walk(self._stream, self._syntax,
                                 frozenset({FAILED_SOP_SEQUENCE, REFERENCED_SOP_SEQUENCE}),
                                 frozenset({TRANSACTION_UID, RETRIEVE_AE_TITLE}),
                                 frozenset({REFERENCED_SOP_CLASS_UID, REFERENCED_SOP_INSTANCE_UID,
                                            FAILURE_REASON}), self._top):  # fmt: skip
            reason: int | None = None
            if seq == FAILED_SOP_SEQUENCE:
                raw = values.get(FAILURE_REASON, b"")
                # a failed item without a usable reason is still a failure (0110H)
                reason = struct.unpack(order + "H", raw)[0] if len(raw) == 2 else 0x0110
            yield ReportItem(_text(values.get(REFERENCED_SOP_CLASS_UID)) or "",
                             _text(values.get(REFERENCED_SOP_INSTANCE_UID)) or "", reason)  # fmt: skip


# --- writing: one small encoder for requests and reports ------------------------------------


class Writer:
    """Encodes a flat data set with sequences of short items, in memory up to
    :data:`_SPOOL_ABOVE` bytes and in a spool file beyond (deflated on the fly for the
    Deflated syntax); :meth:`finish` gives the :class:`DataSource` to send."""

    def __init__(self, transfer_syntax: str, spool_dir: str | None = None) -> None:
        self._ts = transfer_syntax
        syn = self._syn = _syntax(transfer_syntax)
        o = "<" if syn.little else ">"
        self._short = struct.Struct(o + "HH2sH")
        self._long = struct.Struct(o + "HH2s2xI")
        self._plain = struct.Struct(o + "HHI")  # implicit VR; items and delimiters
        self._us = struct.Struct(o + "H")
        self._z = zlib.compressobj(6, zlib.DEFLATED, -15) if syn.deflated else None
        self._deflated = 0  # bytes of deflated stream so far (PS3.5 A.5: padded to even)
        self._spool_dir = spool_dir
        self._mem = bytearray()
        self._file: IO[bytes] | None = None
        self._path: str | None = None

    def _out(self, data: bytes) -> None:
        if self._z is not None:
            data = self._z.compress(data)
            self._deflated += len(data)
            if not data:
                return
        if self._file is not None:
            self._file.write(data)
            return
        self._mem += data
        if len(self._mem) > _SPOOL_ABOVE:
            fd, self._path = tempfile.mkstemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-",
                                              suffix=".tmp", dir=self._spool_dir)  # fmt: skip
            self._file = os.fdopen(fd, "wb")
            self._file.write(self._mem)
            self._mem = bytearray()

    def encode(self, tag: int, vr: bytes, value: str | int) -> bytes:
        """One element: UI padded with NUL, AE with a space (PS3.5 6.2), US binary."""
        if vr == b"US":
            raw = self._us.pack(int(value))
        else:
            raw = str(value).encode("ascii")
            if len(raw) & 1:
                raw += b"\0" if vr == b"UI" else b" "
        if self._syn.implicit:
            return self._plain.pack(tag >> 16, tag & 0xFFFF, len(raw)) + raw
        return self._short.pack(tag >> 16, tag & 0xFFFF, vr, len(raw)) + raw

    def element(self, tag: int, vr: bytes, value: str | int) -> None:
        self._out(self.encode(tag, vr, value))

    def begin_sequence(self, tag: int) -> None:
        """A sequence of undefined length (PS3.5 7.5.2), closed by :meth:`end_sequence`."""
        if self._syn.implicit:
            self._out(self._plain.pack(tag >> 16, tag & 0xFFFF, _UNDEFINED))
        else:
            self._out(self._long.pack(tag >> 16, tag & 0xFFFF, b"SQ", _UNDEFINED))

    def item(self, body: bytes) -> None:
        """One item of explicit length holding the encoded ``body``."""
        self._out(self._plain.pack(0xFFFE, 0xE000, len(body)) + body)

    def end_sequence(self) -> None:
        self._out(self._plain.pack(0xFFFE, 0xE0DD, 0))

    def reference(self, sop_class: str, sop_instance: str, reason: int | None = None) -> None:
        """One item of the SOP Instance Reference Macro (PS3.3 Table 10-11), with a Failure
        Reason when given (Failed SOP Sequence, PS3.4 Table J.3-2)."""
        body = (self.encode(REFERENCED_SOP_CLASS_UID, b"UI", sop_class)
                + self.encode(REFERENCED_SOP_INSTANCE_UID, b"UI", sop_instance))  # fmt: skip
        if reason is not None:
            body += self.encode(FAILURE_REASON, b"US", reason)
        self.item(body)

    def finish(self) -> DataSource:
        if self._z is not None:
            tail = self._z.flush()
            self._z = None
            if (self._deflated + len(tail)) & 1:
                tail += b"\0"  # PS3.5 A.5: an odd deflated stream gets one trailing NUL
            if tail:
                self._out(tail)
        f, path = self._file, self._path
        if f is None or path is None:
            return DataSource.from_bytes(bytes(self._mem), self._ts)
        self._file = self._path = None
        f.close()
        return DataSource(path=path, transfer_syntax=self._ts, owned=True)

    def discard(self) -> None:
        f, path = self._file, self._path
        self._file = self._path = None
        if f is not None:
            f.close()
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)


def encode_request(
    transaction_uid: str,
    items: Iterable[tuple[str, str]],
    transfer_syntax: str,
    *,
    spool_dir: str | None = None,
) -> DataSource:
    """The Action Information of a Storage Commitment Request (PS3.4 Table J.3-1) for
    (SOP Class UID, SOP Instance UID) pairs, encoded in ``transfer_syntax`` as a stream (a
    large request goes to a spool file the returned DataSource owns)."""
    w = Writer(transfer_syntax, spool_dir)
    try:
        w.element(TRANSACTION_UID, b"UI", transaction_uid)
        w.begin_sequence(REFERENCED_SOP_SEQUENCE)
        for sop_class, sop_instance in items:
            w.reference(sop_class, sop_instance)
        w.end_sequence()
        return w.finish()
    except BaseException:
        w.discard()
        raise


def _sequence(w: Writer, tag: int, references: Iterable[tuple[str, str, int | None]]) -> None:
    """A sequence of references, written only when there is at least one."""
    it = iter(references)
    first = next(it, None)
    if first is None:
        return
    w.begin_sequence(tag)
    for sop_class, sop_instance, reason in itertools.chain((first,), it):
        w.reference(sop_class, sop_instance, reason)
    w.end_sequence()


def encode_report(
    transaction_uid: str,
    failed: Iterable[tuple[str, str, int]],
    committed: Iterable[tuple[str, str]],
    transfer_syntax: str,
    *,
    retrieve_ae_title: str | None = None,
    spool_dir: str | None = None,
) -> DataSource:
    """The Event Information of a Storage Commitment Result (PS3.4 Table J.3-2): the
    ``failed`` (class, instance, Failure Reason) references in the Failed SOP Sequence, the
    ``committed`` (class, instance) ones in the Referenced SOP Sequence (each sequence only
    when not empty), encoded in ``transfer_syntax`` as a stream like :func:`encode_request`."""
    w = Writer(transfer_syntax, spool_dir)
    try:
        if retrieve_ae_title:
            w.element(RETRIEVE_AE_TITLE, b"AE", retrieve_ae_title)
        w.element(TRANSACTION_UID, b"UI", transaction_uid)
        _sequence(w, FAILED_SOP_SEQUENCE, failed)
        _sequence(w, REFERENCED_SOP_SEQUENCE, ((c, i, None) for c, i in committed))
        return w.finish()
    except BaseException:
        w.discard()
        raise
