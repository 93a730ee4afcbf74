"""GroupContext (RFC 9420 section 8.1): the summary of a group's state that every key derives from."""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import Reader, Struct, Writer
from ..errors import InvalidValue
from .extensions import Extension

__all__ = ["PROTOCOL_VERSION_MLS10", "GroupContext"]

PROTOCOL_VERSION_MLS10 = 1


@dataclass(frozen=True, slots=True)
class GroupContext(Struct):
    cipher_suite: int
    group_id: bytes
    epoch: int
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    extensions: tuple[Extension, ...] = ()
    version: int = PROTOCOL_VERSION_MLS10

    def encode(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.opaque(self.tree_hash)
        w.opaque(self.confirmed_transcript_hash)
        w.vector(self.extensions, Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> GroupContext:
        version = r.u16()
        if version != PROTOCOL_VERSION_MLS10:
            raise InvalidValue(f"protocol version {version}")
        return cls(
            version=version,
            cipher_suite=r.u16(),
            group_id=r.opaque(),
            epoch=r.u64(),
            tree_hash=r.opaque(),
            confirmed_transcript_hash=r.opaque(),
            extensions=tuple(r.vector(Extension.decode)),
        )
