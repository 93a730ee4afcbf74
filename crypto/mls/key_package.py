"""KeyPackage (RFC 9420 section 10).

Decoding refuses a version other than mls10 (:class:`UnsupportedProtocolVersion`):
this codec knows no other version's layout. The cipher suite is carried as a
u16 and not checked here; validation against supported suites belongs to the
caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import Reader, Struct, Writer
from .extensions import Extension
from .group_context import PROTOCOL_VERSION_MLS10
from .leaf_node import LeafNode
from .wire_errors import UnsupportedProtocolVersion

__all__ = ["KeyPackageTBS", "KeyPackage", "decode_protocol_version"]


def decode_protocol_version(r: Reader) -> int:
    """A ProtocolVersion that must be mls10; otherwise :class:`UnsupportedProtocolVersion`."""
    version = r.u16()
    if version != PROTOCOL_VERSION_MLS10:
        raise UnsupportedProtocolVersion(f"protocol version {version}")
    return version


@dataclass(frozen=True, slots=True)
class KeyPackageTBS(Struct):
    cipher_suite: int
    init_key: bytes
    leaf_node: LeafNode
    extensions: tuple[Extension, ...] = ()
    version: int = PROTOCOL_VERSION_MLS10

    def encode(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.opaque(self.init_key)
        self.leaf_node.encode(w)
        w.vector(self.extensions, Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> KeyPackageTBS:
        version = decode_protocol_version(r)
        return cls(
            version=version,
            cipher_suite=r.u16(),
            init_key=r.opaque(),
            leaf_node=LeafNode.decode(r),
            extensions=tuple(r.vector(Extension.decode)),
        )


@dataclass(frozen=True, slots=True)
class KeyPackage(Struct):
    cipher_suite: int
    init_key: bytes
    leaf_node: LeafNode
    extensions: tuple[Extension, ...] = ()
    signature: bytes = b""
    version: int = PROTOCOL_VERSION_MLS10

    def tbs(self) -> KeyPackageTBS:
        return KeyPackageTBS(self.cipher_suite, self.init_key, self.leaf_node, self.extensions,
                             self.version)

    def tbs_bytes(self) -> bytes:
        """The encoded KeyPackageTBS, the content of SignWithLabel(., "KeyPackageTBS", .)."""
        return self.tbs().to_bytes()

    def encode(self, w: Writer) -> None:
        self.tbs().encode(w)
        w.opaque(self.signature)

    @classmethod
    def decode(cls, r: Reader) -> KeyPackage:
        t = KeyPackageTBS.decode(r)
        return cls(t.cipher_suite, t.init_key, t.leaf_node, t.extensions, r.opaque(), t.version)
