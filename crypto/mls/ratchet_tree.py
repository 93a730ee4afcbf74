"""The public ratchet tree (RFC 9420 sections 4.1, 7.1, 7.7, 7.8 and 7.9).

A :class:`RatchetTree` is the array of ``2n - 1`` optional nodes of a tree of
``n`` leaves, ``n`` always a power of two (7.7: the tree is extended by
doubling and truncated by halving). It holds public state only; private keys
live in :class:`crypto.mls.treekem.TreePrivateKeys`.

It is mutable: the proposal operations (:meth:`RatchetTree.add_leaf`,
:meth:`~RatchetTree.update_leaf`, :meth:`~RatchetTree.remove_leaf`) change it
in place, so a caller that stages changes works on :meth:`~RatchetTree.copy`.

Leaves are addressed by :class:`LeafIndex`, nodes by :class:`NodeIndex`.
Operations on a leaf outside the tree raise :class:`LeafIndexOutOfRange`; an
Update or Remove of a blank leaf raises :class:`BlankLeafError`.
:meth:`RatchetTree.verify_parent_hashes` raises :class:`ParentHashMismatch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from ..codec import Reader, Struct, Writer, decode_exact
from ..errors import InternalError
from .ciphersuite import CipherSuite
from .leaf_node import LeafNode
from .tree_errors import BlankLeafError, LeafIndexOutOfRange, ParentHashMismatch
from .tree_math import (
    LeafIndex,
    NodeIndex,
    copath,
    direct_path,
    is_leaf,
    left,
    node_width,
    right,
    root,
    subtree_leaves,
)
from .tree_nodes import Node, NodeType, ParentNode, encode_ratchet_tree, read_ratchet_tree

__all__ = ["RatchetTree"]


def _leaves_for_width(width: int) -> int:
    """The smallest power-of-two leaf count whose tree has at least ``width`` nodes."""
    n = 1
    while node_width(n) < width:
        n *= 2
    return n


class RatchetTree:
    """The public ratchet tree of one group (see the module docstring)."""

    __slots__ = ("suite", "_nodes", "_hashes")

    def __init__(self, suite: CipherSuite, nodes: Iterable[Node | None]) -> None:
        """``nodes`` in array order, possibly without trailing blanks; padded to a full tree.

        Raises :class:`InternalError` for an empty list or a node at a position of the
        wrong kind (decoders check these first and raise typed decode errors).
        """
        nodes = list(nodes)
        if not nodes:
            raise InternalError("a ratchet tree has at least one leaf")
        for i, node in enumerate(nodes):
            if node is not None and (node.node_type == NodeType.LEAF) != is_leaf(i):
                raise InternalError(f"{node.node_type.name.lower()} node at position {i}")
        width = node_width(_leaves_for_width(len(nodes)))
        nodes.extend([None] * (width - len(nodes)))
        self.suite = suite
        self._nodes: list[Node | None] = nodes
        self._hashes: dict[int, bytes] = {}

    # -- construction and encoding ------------------------------------------------

    @classmethod
    def one_member(cls, suite: CipherSuite, leaf_node: LeafNode) -> RatchetTree:
        """The tree of a new group: its creator at leaf 0."""
        return cls(suite, [Node(leaf_node)])

    @classmethod
    def from_nodes(cls, suite: CipherSuite, nodes: Iterable[Node | None]) -> RatchetTree:
        return cls(suite, nodes)

    @classmethod
    def read(cls, suite: CipherSuite, r: Reader) -> RatchetTree:
        """Pull an ``optional<Node> ratchet_tree<V>`` from ``r``.

        Raises :class:`~crypto.mls.wire_errors.BlankLastNode` when the vector is empty or
        ends with a blank node, :class:`~crypto.mls.wire_errors.NodeTypeMismatch` for a
        node at a position of the other kind, and other DecodeErrors for bad bytes.
        """
        return cls(suite, read_ratchet_tree(r))

    @classmethod
    def from_bytes(cls, suite: CipherSuite, data: bytes) -> RatchetTree:
        """Decode a whole ``ratchet_tree`` encoding (errors as :meth:`read`, plus TrailingBytes)."""
        return decode_exact(data, lambda r: cls.read(suite, r))

    def to_nodes(self) -> list[Node | None]:
        """The nodes in array order without trailing blank nodes (as sent on the wire)."""
        end = len(self._nodes)
        while end > 1 and self._nodes[end - 1] is None:
            end -= 1
        return self._nodes[:end]

    def encode(self, w: Writer) -> None:
        w.write(self.to_bytes())

    def to_bytes(self) -> bytes:
        return encode_ratchet_tree(self.to_nodes())

    def copy(self) -> RatchetTree:
        other = RatchetTree.__new__(RatchetTree)
        other.suite = self.suite
        other._nodes = list(self._nodes)
        other._hashes = dict(self._hashes)
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RatchetTree):
            return NotImplemented
        return self.suite.id == other.suite.id and self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        shape = "".join("_" if n is None else ("L" if is_leaf(i) else "P")
                        for i, n in enumerate(self._nodes))
        return f"RatchetTree(suite={self.suite.id}, n_leaves={self.n_leaves}, {shape})"

    # -- shape and access ---------------------------------------------------------

    @property
    def n_leaves(self) -> int:
        return (len(self._nodes) + 1) // 2

    @property
    def width(self) -> int:
        return len(self._nodes)

    @property
    def root(self) -> NodeIndex:
        return root(self.n_leaves)

    def _check_leaf(self, i: int) -> LeafIndex:
        if not 0 <= i < self.n_leaves:
            raise LeafIndexOutOfRange(f"leaf {int(i)} outside a tree of {self.n_leaves} leaves")
        return LeafIndex(i)

    def _check_node(self, x: int) -> NodeIndex:
        if not 0 <= x < len(self._nodes):
            raise LeafIndexOutOfRange(f"node {int(x)} outside a tree of {len(self._nodes)} nodes")
        return NodeIndex(x)

    def node(self, x: int) -> Node | None:
        """The node at array position ``x`` (None when blank)."""
        return self._nodes[self._check_node(x)]

    def leaf(self, i: int) -> LeafNode | None:
        """The LeafNode at leaf ``i`` (None when blank); LeafIndexOutOfRange outside the tree."""
        node = self._nodes[2 * self._check_leaf(i)]
        return None if node is None else node.leaf_node

    def parent_node(self, x: int) -> ParentNode | None:
        """The ParentNode at (odd) node ``x`` (None when blank)."""
        if is_leaf(x):
            raise InternalError(f"node {int(x)} is a leaf position")
        node = self._nodes[self._check_node(x)]
        return None if node is None else node.parent_node

    def is_blank(self, x: int) -> bool:
        return self._nodes[self._check_node(x)] is None

    def encryption_key(self, x: int) -> bytes | None:
        """The HPKE public key of node ``x``, None when blank."""
        node = self._nodes[self._check_node(x)]
        return None if node is None else node.value.encryption_key

    def members(self) -> list[tuple[LeafIndex, LeafNode]]:
        """The non-blank leaves, in leaf order."""
        return [(LeafIndex(i // 2), n.value) for i, n in enumerate(self._nodes)
                if n is not None and is_leaf(i)]  # type: ignore[misc]

    def find_leaf(self, predicate: Callable[[LeafNode], bool]) -> LeafIndex | None:
        """The first non-blank leaf for which ``predicate`` holds, or None."""
        for i, leaf in self.members():
            if predicate(leaf):
                return i
        return None

    def parents(self) -> list[tuple[NodeIndex, ParentNode]]:
        """The non-blank parent nodes, in array order."""
        return [(NodeIndex(i), n.value) for i, n in enumerate(self._nodes)
                if n is not None and not is_leaf(i)]  # type: ignore[misc]

    # -- mutation -------------------------------------------------------------------

    def _set(self, x: int, node: Node | None) -> None:
        self._nodes[x] = node
        self._hashes.clear()

    def set_leaf(self, i: int, leaf_node: LeafNode | None) -> None:
        """Put ``leaf_node`` (or a blank) at leaf ``i``, touching nothing else."""
        self._set(2 * self._check_leaf(i), None if leaf_node is None else Node(leaf_node))

    def set_parent(self, x: int, parent_node: ParentNode | None) -> None:
        """Put ``parent_node`` (or a blank) at parent position ``x``, touching nothing else."""
        if is_leaf(x):
            raise InternalError(f"node {int(x)} is a leaf position")
        self._set(self._check_node(x), None if parent_node is None else Node(parent_node))

    def blank_direct_path(self, i: int) -> None:
        """Blank every parent node on the direct path of leaf ``i``."""
        for x in direct_path(2 * self._check_leaf(i), self.n_leaves):
            self._set(x, None)

    def extend(self) -> None:
        """Double the number of leaves: a new blank root over the old tree and a blank right subtree."""
        self._nodes.extend([None] * (len(self._nodes) + 1))
        self._hashes.clear()

    def truncate(self) -> None:
        """Halve the tree while its right half has no non-blank leaf (7.7)."""
        while self.n_leaves > 1:
            half = self.n_leaves // 2
            if any(self._nodes[2 * i] is not None for i in range(half, self.n_leaves)):
                break
            del self._nodes[node_width(half):]
            self._hashes.clear()

    def add_leaf(self, leaf_node: LeafNode) -> LeafIndex:
        """Add a member (12.1.1): the leftmost blank leaf, else extend; the new leaf becomes an
        unmerged leaf of every non-blank parent on its direct path. Returns its index."""
        index = next((LeafIndex(i) for i in range(self.n_leaves) if self._nodes[2 * i] is None), None)
        if index is None:
            index = LeafIndex(self.n_leaves)
            self.extend()
        self._set(2 * index, Node(leaf_node))
        for x in direct_path(2 * index, self.n_leaves):
            parent = self.parent_node(x)
            if parent is not None:
                unmerged = tuple(sorted({*parent.unmerged_leaves, int(index)}))
                self._set(x, Node(replace(parent, unmerged_leaves=unmerged)))
        return index

    def update_leaf(self, i: int, leaf_node: LeafNode) -> None:
        """Apply an Update (12.1.2): replace the leaf and blank its direct path.

        Raises :class:`BlankLeafError` when leaf ``i`` is blank.
        """
        if self.leaf(i) is None:
            raise BlankLeafError(f"update of blank leaf {int(i)}")
        self._set(2 * i, Node(leaf_node))
        self.blank_direct_path(i)

    def remove_leaf(self, i: int) -> None:
        """Apply a Remove (12.1.3): blank the leaf and its direct path, then truncate.

        Raises :class:`BlankLeafError` when leaf ``i`` is already blank.
        """
        if self.leaf(i) is None:
            raise BlankLeafError(f"removal of blank leaf {int(i)}")
        self._set(2 * i, None)
        self.blank_direct_path(i)
        self.truncate()

    # -- resolution and paths -------------------------------------------------------

    def resolution(self, x: int, exclude: Iterable[int] = ()) -> list[NodeIndex]:
        """The resolution of node ``x`` (4.1.1), leaving out the leaves in ``exclude``
        (leaf indexes; new members of the current Commit, 7.6)."""
        excluded = {2 * int(i) for i in exclude}
        out: list[NodeIndex] = []
        self._resolve(self._check_node(x), excluded, out)
        return out

    def _resolve(self, x: int, excluded: set[int], out: list[NodeIndex]) -> None:
        node = self._nodes[x]
        if node is None:
            if not is_leaf(x):
                self._resolve(left(x), excluded, out)
                self._resolve(right(x), excluded, out)
            return
        if x not in excluded:
            out.append(NodeIndex(x))
        if not is_leaf(x):
            out.extend(NodeIndex(2 * u) for u in node.value.unmerged_leaves  # type: ignore[union-attr]
                       if 2 * u not in excluded)

    def filtered_direct_path_pairs(self, i: int) -> list[tuple[NodeIndex, NodeIndex]]:
        """(parent, copath child) for each node of leaf ``i``'s filtered direct path (4.1.2)."""
        x = 2 * self._check_leaf(i)
        n = self.n_leaves
        return [(p, s) for p, s in zip(direct_path(x, n), copath(x, n), strict=True)
                if self.resolution(s)]

    def filtered_direct_path(self, i: int) -> list[NodeIndex]:
        """Leaf ``i``'s direct path without the nodes whose copath child has an empty resolution."""
        return [p for p, _ in self.filtered_direct_path_pairs(i)]

    # -- tree hashes (7.8) -------------------------------------------------------------

    def tree_hash(self, x: int | None = None) -> bytes:
        """The tree hash of node ``x`` (of the root when omitted)."""
        x = self.root if x is None else self._check_node(x)
        return self._tree_hash(x, frozenset())

    def tree_hashes(self) -> list[bytes]:
        """The tree hash of every node, in array order."""
        self._tree_hash(self.root, frozenset())
        return [self._hashes[i] for i in range(len(self._nodes))]

    def _tree_hash(self, x: int, excluded: frozenset[int]) -> bytes:
        """TreeHashInput hash of node ``x`` with the leaves in ``excluded`` treated as blank and
        dropped from every unmerged_leaves list (the "original" tree of 7.9)."""
        if not excluded:
            cached = self._hashes.get(x)
            if cached is not None:
                return cached
        w = Writer()
        node = self._nodes[x]
        if is_leaf(x):
            w.u8(NodeType.LEAF)
            w.u32(x // 2)
            leaf = None if node is None or x // 2 in excluded else node.value
            w.optional(leaf, Struct.write_item)
        else:
            w.u8(NodeType.PARENT)
            parent = None if node is None else node.value
            if parent is not None and excluded and not excluded.isdisjoint(parent.unmerged_leaves):  # type: ignore[union-attr]
                kept = tuple(u for u in parent.unmerged_leaves if u not in excluded)  # type: ignore[union-attr]
                parent = replace(parent, unmerged_leaves=kept)  # type: ignore[type-var]
            w.optional(parent, Struct.write_item)
            lx, rx = left(x), right(x)
            w.opaque(self._tree_hash(lx, excluded & set(subtree_leaves(lx))))
            w.opaque(self._tree_hash(rx, excluded & set(subtree_leaves(rx))))
        digest = self.suite.hash(w.getvalue())
        if not excluded:
            self._hashes[x] = digest
        return digest

    # -- parent hashes (7.9) -----------------------------------------------------------

    def original_sibling_tree_hash(self, p: int, s: int) -> bytes:
        """Tree hash of ``s`` with the unmerged leaves of parent ``p`` blanked and unlisted."""
        parent = self.parent_node(p)
        if parent is None:
            raise InternalError(f"parent hash of blank node {int(p)}")
        below = set(subtree_leaves(s))
        return self._tree_hash(s, frozenset(u for u in parent.unmerged_leaves if u in below))

    def parent_hash(self, p: int, s: int) -> bytes:
        """The parent hash of non-blank parent ``p`` with copath child ``s`` (ParentHashInput)."""
        parent = self.parent_node(p)
        if parent is None:
            raise InternalError(f"parent hash of blank node {int(p)}")
        w = Writer()
        w.opaque(parent.encryption_key)
        w.opaque(parent.parent_hash)
        w.opaque(self.original_sibling_tree_hash(p, s))
        return self.suite.hash(w.getvalue())

    def set_path_parent_hashes(self, i: int) -> bytes:
        """Fill the ``parent_hash`` of each node on leaf ``i``'s filtered direct path, root first
        (the root gets the empty string), and return the parent hash that leaf ``i`` must carry.

        Used when an UpdatePath is created or merged (7.9): the path nodes then have no
        unmerged leaves, so original sibling hashes are current tree hashes.
        """
        value = b""
        for p, s in reversed(self.filtered_direct_path_pairs(i)):
            parent = self.parent_node(p)
            if parent is None:
                raise InternalError(f"filtered direct path node {int(p)} is blank")
            self._set(p, Node(replace(parent, parent_hash=value)))
            value = self.parent_hash(p, s)
        return value

    def _node_parent_hash(self, x: int) -> bytes | None:
        node = self.node(x)  # an unmerged leaf outside the tree: LeafIndexOutOfRange
        return None if node is None else node.value.parent_hash

    def parent_hash_valid_children(self, p: int) -> list[NodeIndex]:
        """The descendants D of non-blank parent ``p`` whose parent hash is valid with respect to
        ``p`` (7.9.2): D is in the resolution of a child C of ``p``, D.parent_hash equals the
        parent hash of ``p`` with the other child S, and ``p``'s unmerged leaves below C are
        exactly the resolution of C without D."""
        parent = self.parent_node(p)
        if parent is None:
            raise InternalError(f"parent hash check of blank node {int(p)}")
        found = []
        for c, s in ((left(p), right(p)), (right(p), left(p))):
            res = self.resolution(c)
            if not res:
                continue
            below = set(subtree_leaves(c))
            unmerged_here = {2 * u for u in parent.unmerged_leaves if u in below}
            expected = self.parent_hash(p, s)
            for d in res:
                if self._node_parent_hash(d) == expected and set(res) - {d} == unmerged_here:
                    found.append(d)
        return found

    def verify_parent_hashes(self) -> None:
        """Check that every non-blank parent node is parent-hash valid (7.9.2, "top down"):
        exactly one descendant's parent hash is valid with respect to it.

        Raises :class:`ParentHashMismatch` naming the first node that is not.
        """
        for p, _ in self.parents():
            valid = self.parent_hash_valid_children(p)
            if len(valid) != 1:
                raise ParentHashMismatch(
                    f"parent node {int(p)} is not parent-hash valid "
                    f"({len(valid)} descendants link to it)")
