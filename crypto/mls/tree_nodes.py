"""Ratchet tree nodes and UpdatePath (RFC 9420 sections 7.1, 7.6 and 12.4.3.3).

:func:`decode_ratchet_tree` checks the structure of a ``ratchet_tree`` vector:
it is non-empty, its last entry is not blank (:class:`BlankLastNode`), and
leaves sit at even positions, parents at odd ones (:class:`NodeTypeMismatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..codec import Reader, Struct, Writer, decode_exact
from .leaf_node import LeafNode
from .wire_errors import BlankLastNode, NodeTypeMismatch, enum_value

__all__ = [
    "NodeType",
    "ParentNode",
    "Node",
    "HPKECiphertext",
    "UpdatePathNode",
    "UpdatePath",
    "encode_ratchet_tree",
    "read_ratchet_tree",
    "decode_ratchet_tree",
]


class NodeType(IntEnum):
    LEAF = 1
    PARENT = 2


def _u32(w: Writer, v: int) -> None:
    w.u32(v)


@dataclass(frozen=True, slots=True)
class ParentNode(Struct):
    encryption_key: bytes
    parent_hash: bytes = b""
    unmerged_leaves: tuple[int, ...] = ()

    def encode(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.parent_hash)
        w.vector(self.unmerged_leaves, _u32)

    @classmethod
    def decode(cls, r: Reader) -> ParentNode:
        return cls(r.opaque(), r.opaque(), tuple(r.vector(Reader.u32)))


@dataclass(frozen=True, slots=True)
class Node(Struct):
    """A non-blank tree node: ``value`` is a :class:`LeafNode` or a :class:`ParentNode`."""

    value: LeafNode | ParentNode

    @property
    def node_type(self) -> NodeType:
        return NodeType.LEAF if isinstance(self.value, LeafNode) else NodeType.PARENT

    @property
    def leaf_node(self) -> LeafNode | None:
        return self.value if isinstance(self.value, LeafNode) else None

    @property
    def parent_node(self) -> ParentNode | None:
        return self.value if isinstance(self.value, ParentNode) else None

    def encode(self, w: Writer) -> None:
        w.u8(self.node_type)
        self.value.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Node:
        if enum_value(NodeType, r.u8()) == NodeType.LEAF:
            return cls(LeafNode.decode(r))
        return cls(ParentNode.decode(r))


def _write_optional_node(w: Writer, node: Node | None) -> None:
    w.optional(node, Struct.write_item)


def _read_optional_node(r: Reader) -> Node | None:
    return r.optional(Node.decode)


def encode_ratchet_tree(nodes: list[Node | None] | tuple[Node | None, ...]) -> bytes:
    """``optional<Node> ratchet_tree<V>`` for the nodes in array order (None for blank)."""
    w = Writer()
    w.vector(nodes, _write_optional_node)
    return w.getvalue()


def read_ratchet_tree(r: Reader) -> list[Node | None]:
    """Pull a ``ratchet_tree`` vector from ``r`` and check its structure (see module doc)."""
    nodes = r.vector(_read_optional_node)
    if not nodes or nodes[-1] is None:
        raise BlankLastNode("ratchet_tree is empty or ends with a blank node")
    for i, node in enumerate(nodes):
        if node is not None and (node.node_type == NodeType.LEAF) != (i % 2 == 0):
            raise NodeTypeMismatch(f"{node.node_type.name.lower()} node at position {i}")
    return nodes


def decode_ratchet_tree(data: bytes) -> list[Node | None]:
    """Decode a whole ``ratchet_tree`` encoding; trailing bytes are refused."""
    return decode_exact(data, read_ratchet_tree)


@dataclass(frozen=True, slots=True)
class HPKECiphertext(Struct):
    kem_output: bytes
    ciphertext: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.kem_output)
        w.opaque(self.ciphertext)

    @classmethod
    def decode(cls, r: Reader) -> HPKECiphertext:
        return cls(r.opaque(), r.opaque())


@dataclass(frozen=True, slots=True)
class UpdatePathNode(Struct):
    encryption_key: bytes
    encrypted_path_secret: tuple[HPKECiphertext, ...] = ()

    def encode(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.vector(self.encrypted_path_secret, Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> UpdatePathNode:
        return cls(r.opaque(), tuple(r.vector(HPKECiphertext.decode)))


@dataclass(frozen=True, slots=True)
class UpdatePath(Struct):
    leaf_node: LeafNode
    nodes: tuple[UpdatePathNode, ...] = ()

    def encode(self, w: Writer) -> None:
        self.leaf_node.encode(w)
        w.vector(self.nodes, Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> UpdatePath:
        return cls(LeafNode.decode(r), tuple(r.vector(UpdatePathNode.decode)))
