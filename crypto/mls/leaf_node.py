"""LeafNode and its parts (RFC 9420 section 7.2).

Keys are opaque bytes (``HPKEPublicKey``/``SignaturePublicKey`` are ``opaque<V>``),
so decoding does not depend on the cipher suite. Capability lists are plain
u16 values: unknown and GREASE code points are carried untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..codec import Reader, Struct, Writer
from ..errors import InternalError
from .credential import Credential
from .extensions import Extension
from .wire_errors import enum_value

__all__ = ["LeafNodeSource", "Capabilities", "Lifetime", "LeafNode"]


class LeafNodeSource(IntEnum):
    KEY_PACKAGE = 1
    UPDATE = 2
    COMMIT = 3


def _u16(w: Writer, v: int) -> None:
    w.u16(v)


def _u16s(r: Reader) -> tuple[int, ...]:
    return tuple(r.vector(Reader.u16))


@dataclass(frozen=True, slots=True)
class Capabilities(Struct):
    versions: tuple[int, ...] = ()
    cipher_suites: tuple[int, ...] = ()
    extensions: tuple[int, ...] = ()
    proposals: tuple[int, ...] = ()
    credentials: tuple[int, ...] = ()

    def encode(self, w: Writer) -> None:
        for values in (self.versions, self.cipher_suites, self.extensions, self.proposals,
                       self.credentials):
            w.vector(values, _u16)

    @classmethod
    def decode(cls, r: Reader) -> Capabilities:
        return cls(_u16s(r), _u16s(r), _u16s(r), _u16s(r), _u16s(r))


@dataclass(frozen=True, slots=True)
class Lifetime(Struct):
    not_before: int
    not_after: int

    def encode(self, w: Writer) -> None:
        w.u64(self.not_before)
        w.u64(self.not_after)

    @classmethod
    def decode(cls, r: Reader) -> Lifetime:
        return cls(r.u64(), r.u64())


@dataclass(frozen=True, slots=True)
class LeafNode(Struct):
    """A member's leaf. ``lifetime`` is set iff the source is key_package,
    ``parent_hash`` iff it is commit.

    Decoding raises :class:`UnknownEnumValue` for an unknown leaf_node_source and
    :class:`UnknownCredentialType` for an unknown credential.
    """

    encryption_key: bytes
    signature_key: bytes
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: LeafNodeSource
    lifetime: Lifetime | None = None
    parent_hash: bytes | None = None
    extensions: tuple[Extension, ...] = ()
    signature: bytes = b""

    def __post_init__(self) -> None:
        if (self.lifetime is not None) != (self.leaf_node_source == LeafNodeSource.KEY_PACKAGE):
            raise InternalError("LeafNode.lifetime is set iff leaf_node_source is key_package")
        if (self.parent_hash is not None) != (self.leaf_node_source == LeafNodeSource.COMMIT):
            raise InternalError("LeafNode.parent_hash is set iff leaf_node_source is commit")

    def _encode_body(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.signature_key)
        self.credential.encode(w)
        self.capabilities.encode(w)
        w.u8(self.leaf_node_source)
        if self.lifetime is not None:
            self.lifetime.encode(w)
        if self.parent_hash is not None:
            w.opaque(self.parent_hash)
        w.vector(self.extensions, Struct.write_item)

    def encode(self, w: Writer) -> None:
        self._encode_body(w)
        w.opaque(self.signature)

    def tbs_bytes(self, group_id: bytes | None = None, leaf_index: int | None = None) -> bytes:
        """The encoded LeafNodeTBS, the content of SignWithLabel(., "LeafNodeTBS", .).

        ``group_id`` and ``leaf_index`` are required for update and commit sources
        and must be absent for key_package (an :class:`InternalError` otherwise).
        """
        w = Writer()
        self._encode_body(w)
        in_group = self.leaf_node_source != LeafNodeSource.KEY_PACKAGE
        if in_group != (group_id is not None) or in_group != (leaf_index is not None):
            raise InternalError("LeafNodeTBS needs group_id and leaf_index iff source is update/commit")
        if group_id is not None and leaf_index is not None:
            w.opaque(group_id)
            w.u32(leaf_index)
        return w.getvalue()

    @classmethod
    def decode(cls, r: Reader) -> LeafNode:
        encryption_key = r.opaque()
        signature_key = r.opaque()
        credential = Credential.decode(r)
        capabilities = Capabilities.decode(r)
        source = enum_value(LeafNodeSource, r.u8())
        lifetime = Lifetime.decode(r) if source == LeafNodeSource.KEY_PACKAGE else None
        parent_hash = r.opaque() if source == LeafNodeSource.COMMIT else None
        return cls(
            encryption_key=encryption_key,
            signature_key=signature_key,
            credential=credential,
            capabilities=capabilities,
            leaf_node_source=source,
            lifetime=lifetime,
            parent_hash=parent_hash,
            extensions=tuple(r.vector(Extension.decode)),
            signature=r.opaque(),
        )
