"""The TLS presentation language as RFC 9420 uses it (sections 2.1 and 2.1.2).

A :class:`Reader` pulls fixed-width integers, variable-length vectors and
optional values from bytes; a :class:`Writer` pushes them. Decoding is strict:

- the variable-length prefix must use its shortest form (:class:`NonMinimalLength`),
  and the reserved two-bit prefix ``0b11`` is refused (:class:`LengthTooLarge`);
- a length beyond the field's bound is refused before anything is read
  (:class:`LengthTooLarge`); a length beyond the input is :class:`Truncated`;
- a vector's items must consume its bytes exactly, and :func:`decode_exact`
  refuses bytes left after the outermost structure (:class:`TrailingBytes`).

Wire structures are frozen dataclasses deriving from :class:`Struct`, each with
``encode(w)`` and ``decode(r)`` beside its fields.
"""

from __future__ import annotations

import struct as _struct
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Self, TypeVar

from .errors import InvalidValue, LengthTooLarge, NonMinimalLength, TrailingBytes, Truncated

__all__ = [
    "Reader",
    "Writer",
    "Struct",
    "decode_exact",
    "encode_varint",
    "MAX_VECTOR",
]

T = TypeVar("T")

#: Default bound on any one variable-length field (bytes). Individual fields may pass a smaller one.
MAX_VECTOR = 16 * 1024 * 1024
_VARINT_MAX = (1 << 30) - 1

_U16 = _struct.Struct(">H")
_U32 = _struct.Struct(">I")
_U64 = _struct.Struct(">Q")


def encode_varint(n: int) -> bytes:
    """The RFC 9420 section 2.1.2 length prefix for ``n`` (shortest form)."""
    if n < 0 or n > _VARINT_MAX:
        raise ValueError(f"length {n} cannot be encoded as an MLS varint")
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return _U16.pack(0x4000 | n)
    return _U32.pack(0x80000000 | n)


class Reader:
    """A cursor over bytes. Every ``pull`` raises a :class:`DecodeError` subclass on bad input."""

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self._data = bytes(data) if not isinstance(data, bytes) else data
        self._pos = start
        self._end = len(self._data) if end is None else end

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    @property
    def position(self) -> int:
        return self._pos

    def read(self, n: int) -> bytes:
        if n > self._end - self._pos:
            raise Truncated(f"needed {n} bytes, {self._end - self._pos} left")
        start = self._pos
        self._pos += n
        return self._data[start : self._pos]

    def u8(self) -> int:
        return self.read(1)[0]

    def u16(self) -> int:
        return _U16.unpack(self.read(2))[0]

    def u32(self) -> int:
        return _U32.unpack(self.read(4))[0]

    def u64(self) -> int:
        return _U64.unpack(self.read(8))[0]

    def boolean(self) -> bool:
        v = self.u8()
        if v > 1:
            raise InvalidValue(f"boolean byte {v}")
        return v == 1

    def varint(self) -> int:
        first = self.u8()
        prefix = first >> 6
        if prefix == 0:
            return first
        if prefix == 1:
            v = ((first & 0x3F) << 8) | self.u8()
            if v < 1 << 6:
                raise NonMinimalLength("two-byte length below 64")
            return v
        if prefix == 2:
            v = ((first & 0x3F) << 24) | int.from_bytes(self.read(3), "big")
            if v < 1 << 14:
                raise NonMinimalLength("four-byte length below 16384")
            return v
        raise LengthTooLarge("reserved length prefix 0b11")

    def _length(self, max_len: int) -> int:
        n = self.varint()
        if n > max_len:
            raise LengthTooLarge(f"length {n} exceeds bound {max_len}")
        if n > self.remaining:
            raise Truncated(f"length {n} exceeds the {self.remaining} bytes left")
        return n

    def opaque(self, max_len: int = MAX_VECTOR) -> bytes:
        """``opaque data<V>``: a variable-length byte string."""
        return self.read(self._length(max_len))

    def vector(self, item: Callable[[Reader], T], max_len: int = MAX_VECTOR) -> list[T]:
        """``T items<V>``: items decoded until the vector's bytes are consumed exactly."""
        n = self._length(max_len)
        sub = Reader(self._data, self._pos, self._pos + n)
        self._pos += n
        out = []
        while sub.remaining:
            out.append(item(sub))
        return out

    def optional(self, item: Callable[[Reader], T]) -> T | None:
        """``optional<T>``: a presence byte (0 or 1) then the value."""
        return item(self) if self.boolean() else None

    def finish(self) -> None:
        if self._pos != self._end:
            raise TrailingBytes(f"{self._end - self._pos} bytes after the structure")


class Writer:
    """Accumulates an encoding; :meth:`getvalue` returns the bytes."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def write(self, data: bytes) -> None:
        self._parts.append(bytes(data))

    def u8(self, v: int) -> None:
        self._parts.append(bytes((v,)))

    def u16(self, v: int) -> None:
        self._parts.append(_U16.pack(v))

    def u32(self, v: int) -> None:
        self._parts.append(_U32.pack(v))

    def u64(self, v: int) -> None:
        self._parts.append(_U64.pack(v))

    def boolean(self, v: bool) -> None:
        self._parts.append(b"\x01" if v else b"\x00")

    def varint(self, n: int) -> None:
        self._parts.append(encode_varint(n))

    def opaque(self, data: bytes) -> None:
        self._parts.append(encode_varint(len(data)))
        self._parts.append(bytes(data))

    def vector(self, items: Iterable[T], item: Callable[[Writer, T], Any]) -> None:
        sub = Writer()
        for x in items:
            item(sub, x)
        self.opaque(sub.getvalue())

    def optional(self, value: T | None, item: Callable[[Writer, T], Any]) -> None:
        if value is None:
            self.u8(0)
        else:
            self.u8(1)
            item(self, value)


def decode_exact(data: bytes, item: Callable[[Reader], T]) -> T:
    """Decode one value from ``data`` and refuse trailing bytes."""
    r = Reader(data)
    value = item(r)
    r.finish()
    return value


class Struct:
    """Base of every wire structure: ``encode``/``decode`` plus whole-buffer helpers."""

    __slots__ = ()
    _wire_name: ClassVar[str] = ""

    def encode(self, w: Writer) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def decode(cls, r: Reader) -> Self:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return decode_exact(data, cls.decode)

    @staticmethod
    def write_item(w: Writer, item: Struct) -> None:
        """Adapter for :meth:`Writer.vector` and :meth:`Writer.optional` over structures."""
        item.encode(w)
