"""Fuzz target ``pdu``: the PDU codec and the receive buffer (PS3.8 section 9.3).

Theory of operation
-------------------
Input layout (read with :class:`fuzz._stream.Stream`)::

    cfg u8 | nsizes u8 | size u8 * (nsizes % 9) | byte stream ...

``cfg`` picks the :class:`~dicomnet.ul.buffer.ReceiveBuffer` limits (Maximum Length, the
A-ASSOCIATE cap, the header scratch size). The byte stream is

1. decoded as one whole PDU with :func:`~dicomnet.ul.codec.decode_pdu`, and
2. fed to a ReceiveBuffer in chunks whose sizes cycle through ``size``; a size of 0 means
   "use the ``get_write_buffer``/``commit`` path" (what ``recv_into`` does), with ``size`` of
   the next entry as the size hint.

Allowed: :class:`~dicomnet.errors.PDUDecodeError` from decoding and from the buffer. Checked on
top (any failure is a crash): the PDUs the buffer hands out are exactly the leading bytes of the
stream, each with a header whose length matches; every PDU that decodes re-encodes
(``encode_pdu`` may refuse only with a local ProtocolError) to something that decodes to an
equal PDU.
"""

from __future__ import annotations

from dicomnet.errors import PDUDecodeError, ProtocolError
from dicomnet.ul.buffer import ReceiveBuffer
from dicomnet.ul.codec import PDU_HEADER, decode_pdu, encode_pdu
from fuzz._stream import Stream

__all__ = ["check_decode", "test_one_input"]

_MAX_PDATA = (0, 16384, 1024, 6)
_MAX_ASSOCIATE = (1 << 20, 4096, 80, 0)
_HEADER_READ = (1024, 6, 7, 100)


def check_decode(data: bytes | memoryview) -> None:
    """Decode one PDU; if it decodes, it must survive an encode/decode round trip."""
    try:
        pdu = decode_pdu(data)
    except PDUDecodeError:
        return
    try:
        encoded = encode_pdu(pdu)
    except ProtocolError as exc:
        if not exc.local:
            raise
        return
    again = decode_pdu(encoded)
    if again != pdu:
        raise AssertionError(f"round trip changed the PDU:\n{pdu!r}\n{again!r}")


def _drain(buf: ReceiveBuffer, delivered: list[bytes]) -> None:
    while (view := buf.next_pdu()) is not None:
        length = PDU_HEADER.unpack_from(view, 0)[1]
        if length != len(view) - 6:
            raise AssertionError(f"buffer delivered {len(view)} bytes for PDU-length {length}")
        delivered.append(bytes(view))
        check_decode(view)


def test_one_input(data: bytes) -> None:
    s = Stream(data)
    cfg = s.u8()
    sizes = [s.u8() for _ in range(s.u8() % 9)] or [1]
    stream = s.rest()

    check_decode(stream)

    buf = ReceiveBuffer(
        _MAX_PDATA[cfg & 3],
        _MAX_ASSOCIATE[cfg >> 2 & 3],
        header_read_size=_HEADER_READ[cfg >> 4 & 3],
    )
    delivered: list[bytes] = []
    pos = 0
    step = 0
    failed = False
    try:
        while pos < len(stream):
            size = sizes[step % len(sizes)]
            step += 1
            if size == 0:
                hint = sizes[step % len(sizes)] or -1
                window = buf.get_write_buffer(hint)
                n = min(len(window), len(stream) - pos)
                window[:n] = stream[pos : pos + n]
                buf.commit(n)
            else:
                n = size
                buf.feed(stream[pos : pos + n])
            pos += n
            _drain(buf, delivered)
    except PDUDecodeError:
        failed = True
        # The PDUs completed before the refused header are still handed out, then the error.
        try:
            _drain(buf, delivered)
        except PDUDecodeError:
            pass
        else:
            raise AssertionError("next_pdu() forgot the sticky error") from None
    joined = b"".join(delivered)
    if stream[: len(joined)] != joined:
        raise AssertionError("the buffer's PDUs are not the leading bytes of the stream")
    if not failed and len(joined) + buf.pending_bytes != len(stream):
        raise AssertionError(
            f"{len(stream)} bytes fed, {len(joined)} delivered, {buf.pending_bytes} pending"
        )
