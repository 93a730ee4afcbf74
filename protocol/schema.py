"""A small strict schema layer for msgpack-decoded request and response bodies.

A :class:`Message` is a frozen dataclass whose ``SCHEMA`` maps each field to
a check. :meth:`Message.from_wire` accepts exactly the field names of the
dataclass (unknown names are refused, fields without a default are required),
checks each value's type and bound, and builds the instance;
:meth:`Message.to_wire` gives the dict to pack. Every failure raises
:class:`~protocol.errors.MalformedBody` naming the field, never anything else.

:func:`unpack_body` turns body bytes into a value with msgpack's own size caps
(:class:`MalformedBody` for anything that is not exactly one msgpack value).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, ClassVar, Self, TypeVar

import msgpack

from .errors import ApiError, MalformedBody

__all__ = [
    "Check",
    "Message",
    "text",
    "blob",
    "uint",
    "boolean",
    "nullable",
    "list_of",
    "nested",
    "parsed",
    "unpack_body",
    "pack_body",
    "decode_body",
]

Check = Callable[[Any, str], Any]
M = TypeVar("M", bound="Message")

_MAX_U63 = (1 << 63) - 1


def text(max_bytes: int, min_bytes: int = 1) -> Check:
    """A str of ``min_bytes..max_bytes`` UTF-8 bytes without control characters."""

    def check(v: Any, where: str) -> str:
        if type(v) is not str:
            raise MalformedBody(f"{where}: expected a string")
        n = len(v.encode("utf-8", "surrogatepass"))
        if not min_bytes <= n <= max_bytes:
            raise MalformedBody(f"{where}: length must be {min_bytes}..{max_bytes} bytes")
        if any(ch < " " or ch == "\x7f" for ch in v):
            raise MalformedBody(f"{where}: control character")
        return v

    return check


def blob(max_bytes: int, min_bytes: int = 0, exact: int | None = None) -> Check:
    """A msgpack bin of ``min_bytes..max_bytes`` (or ``exact``) bytes."""

    def check(v: Any, where: str) -> bytes:
        if type(v) is not bytes:
            raise MalformedBody(f"{where}: expected bytes")
        if exact is not None and len(v) != exact:
            raise MalformedBody(f"{where}: must be exactly {exact} bytes")
        if not min_bytes <= len(v) <= max_bytes:
            raise MalformedBody(f"{where}: length must be {min_bytes}..{max_bytes} bytes")
        return v

    return check


def uint(max_value: int = _MAX_U63) -> Check:
    def check(v: Any, where: str) -> int:
        if type(v) is not int or not 0 <= v <= max_value:
            raise MalformedBody(f"{where}: expected an integer 0..{max_value}")
        return v

    return check


def boolean() -> Check:
    def check(v: Any, where: str) -> bool:
        if type(v) is not bool:
            raise MalformedBody(f"{where}: expected a boolean")
        return v

    return check


def nullable(inner: Check) -> Check:
    def check(v: Any, where: str) -> Any:
        return None if v is None else inner(v, where)

    return check


def list_of(item: Check, max_items: int, min_items: int = 0) -> Check:
    """An array of ``min_items..max_items`` values, each checked; returned as a tuple."""

    def check(v: Any, where: str) -> tuple:
        if type(v) is not list:
            raise MalformedBody(f"{where}: expected an array")
        if not min_items <= len(v) <= max_items:
            raise MalformedBody(f"{where}: must hold {min_items}..{max_items} items")
        return tuple(item(x, f"{where}[{i}]") for i, x in enumerate(v))

    return check


def nested(cls: type[Message]) -> Check:
    def check(v: Any, where: str) -> Message:
        return cls.from_wire(v, where)

    return check


def parsed(parse: Callable[[Any], Any], max_bytes: int = 255) -> Check:
    """A string checked by ``parse`` (e.g. ``UserId.parse``); its typed error passes through."""
    base = text(max_bytes)

    def check(v: Any, where: str) -> Any:
        base(v, where)
        try:
            return parse(v)
        except ApiError as exc:
            raise type(exc)(f"{where}: {exc.message}") from None

    return check


def _short(key: Any) -> str:
    r = repr(key)
    return r if len(r) <= 40 else r[:37] + "..."


class Message:
    """Base of every request and response body (a frozen dataclass subclass)."""

    SCHEMA: ClassVar[dict[str, Check]]

    @classmethod
    def from_wire(cls, obj: Any, where: str = "body") -> Self:
        """Build from a msgpack-decoded value; raises :class:`MalformedBody` (or a typed
        identifier error) for anything but exactly this schema."""
        if type(obj) is not dict:
            raise MalformedBody(f"{where}: expected a map")
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        for key in obj:
            if type(key) is not str or key not in known:
                raise MalformedBody(f"{where}: unknown field {_short(key)}")
        kwargs = {}
        for name, f in known.items():
            if name in obj:
                kwargs[name] = cls.SCHEMA[name](obj[name], f"{where}.{name}")
            elif f.default is MISSING and f.default_factory is MISSING:
                raise MalformedBody(f"{where}: missing field {name!r}")
        return cls(**kwargs)

    def to_wire(self) -> dict[str, Any]:
        return {f.name: _to_wire(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def _to_wire(v: Any) -> Any:
    if isinstance(v, Message):
        return v.to_wire()
    if isinstance(v, tuple | list):
        return [_to_wire(x) for x in v]
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, bool | int | bytes | str) or v is None:
        return v
    return str(v)  # identifiers (UserId, DeviceId, RoomId) travel as their string form


def unpack_body(data: bytes) -> Any:
    """Exactly one msgpack value (no ext types, str keys); raises :class:`MalformedBody`."""
    n = len(data)
    try:
        return msgpack.unpackb(
            bytes(data), raw=False, use_list=True, strict_map_key=True,
            max_str_len=n, max_bin_len=n, max_array_len=n, max_map_len=n, max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises ValueError, TypeError, StackError, ExtraData...
        raise MalformedBody(f"body is not one msgpack value ({type(exc).__name__})") from None


def pack_body(obj: Any) -> bytes:
    """The msgpack encoding of a body (``Message`` or plain value)."""
    return msgpack.packb(obj.to_wire() if isinstance(obj, Message) else obj, use_bin_type=True)


def decode_body(data: bytes, cls: type[M]) -> M:
    """:func:`unpack_body` then ``cls.from_wire``; raises :class:`MalformedBody` or an identifier error."""
    return cls.from_wire(unpack_body(data))
