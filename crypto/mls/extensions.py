"""MLS extensions (RFC 9420 sections 13.4, 12.1.7 and 17.3).

An :class:`Extension` is a type and opaque data; the typed payloads that
Confide interprets live beside it. Unknown types are carried untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..codec import Reader, Struct, Writer
from ..errors import InvalidValue

__all__ = ["ExtensionType", "Extension", "find_extension", "check_unique_extensions"]


class ExtensionType(IntEnum):
    APPLICATION_ID = 0x0001
    RATCHET_TREE = 0x0002
    REQUIRED_CAPABILITIES = 0x0003
    EXTERNAL_PUB = 0x0004
    EXTERNAL_SENDERS = 0x0005
    LAST_RESORT = 0x000A  # RFC 9420 section 17.3 registry (draft-ietf-mls-extensions)


@dataclass(frozen=True, slots=True)
class Extension(Struct):
    extension_type: int
    extension_data: bytes

    def encode(self, w: Writer) -> None:
        w.u16(self.extension_type)
        w.opaque(self.extension_data)

    @classmethod
    def decode(cls, r: Reader) -> Extension:
        return cls(r.u16(), r.opaque())


def find_extension(extensions: tuple[Extension, ...] | list[Extension], ext_type: int) -> Extension | None:
    for ext in extensions:
        if ext.extension_type == ext_type:
            return ext
    return None


def check_unique_extensions(extensions: tuple[Extension, ...] | list[Extension]) -> None:
    """RFC 9420 section 13.4: an extension type appears at most once in a list."""
    seen = set()
    for ext in extensions:
        if ext.extension_type in seen:
            raise InvalidValue(f"duplicate extension type {ext.extension_type:#06x}")
        seen.add(ext.extension_type)
