"""Splitting the received byte stream into whole PDUs (PS3.8 section 9.3.1), sans-IO.

Theory of operation
-------------------
A PDU starts with a 6-byte header: type (1), reserved (1), length (4, big endian). The
:class:`ReceiveBuffer` is a two-phase reader:

1. *header phase*: bytes are gathered until the 6 header bytes are known. Then, before a single
   byte of the body is stored, the header is checked (PS3.8 section 9.3.1 and the hostile-input
   rules of the project): an unknown PDU type is A-ABORT reason 1; an A-ASSOCIATE-RJ / release /
   A-ABORT whose length is not 4, a P-DATA-TF longer than our Maximum Length (PS3.8 Annex D.1,
   which bounds the PDU-length field) or an A-ASSOCIATE PDU above the local cap are reason 6.
   Only then is one buffer of exactly ``6 + length`` bytes allocated for that PDU: a
   ``bytearray`` for ordinary sizes, an anonymous private ``mmap`` above ``_MMAP_THRESHOLD``.
   The kernel backs a mapping with memory only as bytes are written into it, so even with no
   limit (``max_pdata_length=0``) a header announcing 4 GB costs address space, not RAM, until
   the peer really sends the bytes (and a large body is not zero-filled first).
2. *body phase*: the body is written straight into that PDU's own bytearray. With
   :meth:`get_write_buffer`/:meth:`commit` (for ``socket.recv_into`` and
   ``asyncio.BufferedProtocol``) the kernel copies into it directly: large P-DATA bodies are never
   copied again. The finished PDU is handed out by :meth:`next_pdu` as a ``memoryview`` of its
   own bytearray, so it stays valid whatever happens to the buffer later.

In the header phase :meth:`get_write_buffer` hands out a small scratch area (``header_read_size``
bytes, 16 KiB by default) rather than exactly the missing header bytes: one ``recv`` then picks
up whole small PDUs (C-ECHO, A-ASSOCIATE, release, small C-STOREs, several pipelined requests)
at once, and at most that many bytes of a large PDU go through the scratch area and are copied. A PDU whose header (checked first, as above)
and body are both in the received chunk is copied out of it in one piece.

Errors are sticky: once a header is refused, the error is raised by the call that saw it and by
every later :meth:`feed`/:meth:`commit`/:meth:`get_write_buffer`; :meth:`next_pdu` still returns
the PDUs completed before the bad header, then raises the same error.
"""

from __future__ import annotations

import mmap
from collections import deque

from dicomnet.errors import PDUDecodeError, ProtocolError
from dicomnet.ul.codec import PDU_HEADER
from dicomnet.ul.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
)

__all__ = ["MAX_PDU_LENGTH", "ReceiveBuffer"]

MAX_PDU_LENGTH = 0xFFFFFFFF
"""The largest value of the 32-bit PDU-length field: the cap when Maximum Length is 0."""

_FIXED_4 = frozenset((A_ASSOCIATE_RJ, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT))
_ASSOCIATE = frozenset((A_ASSOCIATE_RQ, A_ASSOCIATE_AC))
_UNPACK_HEADER = PDU_HEADER.unpack_from
# Above this a PDU body gets a lazily backed mmap (a forged huge length costs no RAM); below it a
# bytearray, which the allocator recycles: measured 39 us per 1 MiB PDU against 400 us for a
# fresh mapping (page faults on every PDU). 4 MiB + header covers every Maximum Length we
# announce and the 4 MiB cap we send with when a peer announces "unlimited".
_MMAP_THRESHOLD = (4 << 20) + 7


def _allocate(size: int) -> bytearray | mmap.mmap:
    """A zeroed writable buffer of ``size`` bytes (lazily backed when large, see above)."""
    if size < _MMAP_THRESHOLD:
        return bytearray(size)
    try:
        if hasattr(mmap, "MAP_ANONYMOUS"):
            return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        return mmap.mmap(-1, size)  # pragma: no cover - Windows: pagefile-backed, lazy
    except (OSError, OverflowError, ValueError) as exc:
        # Out of address space for a length the limits allowed: abort, reason not specified.
        raise PDUDecodeError(f"cannot allocate a {size}-byte PDU: {exc}", abort_reason=0) from None


class ReceiveBuffer:
    """Reassembles whole PDUs from arbitrary chunks of a byte stream (see module docstring).

    ``max_pdata_length``: the largest P-DATA-TF PDU-length we accept (our Maximum Length,
    PS3.8 D.1); 0 = no limit other than the 32-bit field. ``max_associate_length``: cap on the
    PDU-length of A-ASSOCIATE-RQ/AC.
    """

    __slots__ = (
        "_body_view",
        "_error",
        "_filled",
        "_header",
        "_header_filled",
        "_max_associate",
        "_max_pdata",
        "_ready",
        "_scratch",
        "_scratch_view",
    )

    def __init__(
        self,
        max_pdata_length: int,
        max_associate_length: int = 1 << 20,
        *,
        header_read_size: int = 16384,
    ) -> None:
        if max_pdata_length < 0 or max_associate_length < 0 or header_read_size < 6:
            raise ValueError("limits must be >= 0 and header_read_size >= 6")
        self._max_pdata = max_pdata_length if max_pdata_length else MAX_PDU_LENGTH
        self._max_associate = min(max_associate_length, MAX_PDU_LENGTH)
        self._header = bytearray(6)
        self._header_filled = 0
        self._body_view: memoryview | None = None  # the current PDU, header included
        self._filled = 0  # bytes of _body written so far
        self._ready: deque[memoryview] = deque()
        self._scratch = bytearray(header_read_size)
        self._scratch_view = memoryview(self._scratch)
        self._error: PDUDecodeError | None = None

    # --- header checks (before anything is allocated) ---------------------------------------

    def _check_header(self) -> int:
        pdu_type, length = _UNPACK_HEADER(self._header, 0)
        if pdu_type == P_DATA_TF:
            if length > self._max_pdata:
                # PS3.8 D.1: the peer must not exceed our Maximum Length; A-ABORT 2/6.
                raise PDUDecodeError(
                    f"P-DATA-TF length {length} above the maximum {self._max_pdata}",
                    abort_reason=6,
                )
        elif pdu_type in _ASSOCIATE:
            if length > self._max_associate:
                raise PDUDecodeError(
                    f"A-ASSOCIATE length {length} above the cap {self._max_associate}",
                    abort_reason=6,
                )
        elif pdu_type in _FIXED_4:
            if length != 4:
                # PS3.8 9.3.4, 9.3.6-9.3.8: these PDUs always have PDU-length 4.
                raise PDUDecodeError(
                    f"PDU type {pdu_type:02X}H with length {length} instead of 4", abort_reason=6
                )
        else:
            # PS3.8 9.3.1 / Table 9-26: unrecognized PDU (e.g. an HTTP request); never allocate.
            raise PDUDecodeError(f"unrecognized PDU type {pdu_type:02X}H", abort_reason=1)
        return int(length)

    def _start_body(self) -> None:
        try:
            length = self._check_header()
            body = _allocate(6 + length)
        except PDUDecodeError as exc:
            self._error = exc
            raise
        view = memoryview(body)
        view[:6] = self._header
        self._header_filled = 0
        if length == 0:
            self._ready.append(view)
            return
        self._body_view = view
        self._filled = 6

    def _finish_body(self) -> None:
        assert self._body_view is not None
        self._ready.append(self._body_view)
        self._body_view = None
        self._filled = 0

    def _consume(self, data: memoryview) -> None:
        """Copy ``data`` into header / PDU bodies, completing as many PDUs as it holds."""
        pos = 0
        end = len(data)
        while pos < end:
            body_view = self._body_view
            if body_view is None:
                hf = self._header_filled
                if hf == 0 and end - pos >= 6:
                    # A whole header at hand: check it (the same rules, before anything is
                    # allocated); when the whole PDU is here too (a C-ECHO, a small C-STORE,
                    # a release) its buffer is a copy of exactly those bytes.
                    self._header[:] = data[pos : pos + 6]
                    try:
                        total = 6 + self._check_header()
                    except PDUDecodeError as exc:
                        self._error = exc
                        raise
                    if total <= end - pos and total < _MMAP_THRESHOLD:
                        self._ready.append(memoryview(bytearray(data[pos : pos + total])))
                        pos += total
                        continue
                    self._header_filled = 6
                    pos += 6
                    self._start_body()
                    continue
                take = min(6 - hf, end - pos)
                self._header[hf : hf + take] = data[pos : pos + take]
                self._header_filled = hf + take
                pos += take
                if self._header_filled == 6:
                    self._start_body()
            else:
                filled = self._filled
                take = min(len(body_view) - filled, end - pos)
                body_view[filled : filled + take] = data[pos : pos + take]
                self._filled = filled + take
                pos += take
                if self._filled == len(body_view):
                    self._finish_body()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # --- public API ---------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes (copied). Raises PDUDecodeError on a refused header."""
        self._raise_if_failed()
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        self._consume(view)

    def get_write_buffer(self, sizehint: int = -1) -> memoryview:
        """A writable view to receive into; call :meth:`commit` with the bytes written.

        Once a PDU header is known this is the unfilled part of that PDU's own buffer (capped
        at ``sizehint`` when positive); before that, a small scratch area.
        """
        self._raise_if_failed()
        body_view = self._body_view
        if body_view is not None:
            stop = len(body_view)
            if sizehint > 0:
                stop = min(stop, self._filled + sizehint)
            return body_view[self._filled : stop]
        return self._scratch_view

    def commit(self, nbytes: int) -> None:
        """Account for ``nbytes`` written into the view given by :meth:`get_write_buffer`."""
        self._raise_if_failed()
        if nbytes < 0:
            raise ProtocolError("negative commit", local=True)
        if nbytes == 0:
            return
        body_view = self._body_view
        if body_view is not None:
            if self._filled + nbytes > len(body_view):
                raise ProtocolError("commit beyond the write buffer", local=True)
            self._filled += nbytes
            if self._filled == len(body_view):
                self._finish_body()
            return
        if nbytes > len(self._scratch):
            raise ProtocolError("commit beyond the write buffer", local=True)
        self._consume(self._scratch_view[:nbytes])

    def next_pdu(self) -> memoryview | None:
        """The next whole PDU (header included) or None; the view stays valid afterwards."""
        if self._ready:
            return self._ready.popleft()
        if self._error is not None:
            raise self._error
        return None

    @property
    def pending_bytes(self) -> int:
        """Bytes received of the PDU in progress (header included); 0 between PDUs."""
        return self._filled if self._body_view is not None else self._header_filled
