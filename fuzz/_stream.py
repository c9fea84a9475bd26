"""A tiny byte-stream reader/writer shared by the fuzz targets and the seed generator.

Theory of operation
-------------------
libFuzzer mutates flat byte strings. The targets read them as a sequence of small fields
(``u8``, big-endian ``u16``, length-prefixed blobs) with :class:`Stream`; reading past the end
yields zeros / empty bytes, so every byte string is a valid program and truncation by the
mutator is harmless. :class:`Writer` produces the same layout, so ``fuzz/make_seeds.py`` can turn
captured real-peer PDUs into meaningful seed programs.
"""

from __future__ import annotations

__all__ = ["Stream", "Writer"]


class Stream:
    """Sequential reader over fuzzer bytes; exhausted reads return 0 / b""."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def exhausted(self) -> bool:
        return self._pos >= len(self._data)

    def u8(self) -> int:
        pos = self._pos
        if pos >= len(self._data):
            return 0
        self._pos = pos + 1
        return self._data[pos]

    def u16(self) -> int:
        return self.u8() << 8 | self.u8()

    def take(self, n: int) -> bytes:
        pos = self._pos
        out = self._data[pos : pos + n]
        self._pos = pos + len(out)
        return out

    def blob(self) -> bytes:
        """A u16 length followed by that many bytes (fewer at the end of the input)."""
        return self.take(self.u16())

    def rest(self) -> bytes:
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out


class Writer:
    """Builds inputs in the layout :class:`Stream` reads."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(bytes((value & 0xFF,)))
        return self

    def u16(self, value: int) -> Writer:
        self._parts.append((value & 0xFFFF).to_bytes(2, "big"))
        return self

    def raw(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def blob(self, data: bytes) -> Writer:
        if len(data) > 0xFFFF:
            raise ValueError("blob longer than 65535 bytes")
        return self.u16(len(data)).raw(data)

    def build(self) -> bytes:
        return b"".join(self._parts)
