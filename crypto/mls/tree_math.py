"""Array-based tree arithmetic (RFC 9420 section 4.2 and Appendix C).

Leaves and nodes are indexed differently: a :class:`LeafIndex` ``L`` sits at
:class:`NodeIndex` ``2L``. The two are distinct types so that one cannot be
passed where the other belongs. A tree of ``n`` leaves (``n`` a power of two
in RFC 9420) has ``2n - 1`` nodes. Functions raise :class:`TreeMathError` when
asked for a node that does not exist (the left child of a leaf, the parent of
the root).
"""

from __future__ import annotations

from ..errors import CryptoError

__all__ = [
    "LeafIndex",
    "NodeIndex",
    "TreeMathError",
    "log2",
    "level",
    "node_width",
    "root",
    "left",
    "right",
    "parent",
    "sibling",
    "direct_path",
    "copath",
    "filtered_direct_path_base",
    "common_ancestor",
    "is_leaf",
    "subtree_leaves",
]


class TreeMathError(CryptoError):
    code = "tree_math"


class LeafIndex(int):
    """Index of a leaf among the leaves (0, 1, 2, ...)."""

    __slots__ = ()

    def node(self) -> NodeIndex:
        return NodeIndex(2 * self)

    def __repr__(self) -> str:
        return f"LeafIndex({int(self)})"


class NodeIndex(int):
    """Index of a node in the array representation (leaves even, parents odd)."""

    __slots__ = ()

    def leaf(self) -> LeafIndex:
        if self & 1:
            raise TreeMathError(f"node {int(self)} is not a leaf")
        return LeafIndex(self >> 1)

    def __repr__(self) -> str:
        return f"NodeIndex({int(self)})"


def log2(x: int) -> int:
    return 0 if x == 0 else x.bit_length() - 1


def level(x: int) -> int:
    """Number of trailing one bits: 0 for leaves."""
    k = 0
    while (x >> k) & 1:
        k += 1
    return k


def is_leaf(x: int) -> bool:
    return x & 1 == 0


def node_width(n_leaves: int) -> int:
    return 0 if n_leaves == 0 else 2 * (n_leaves - 1) + 1


def root(n_leaves: int) -> NodeIndex:
    if n_leaves == 0:
        raise TreeMathError("empty tree has no root")
    return NodeIndex((1 << log2(node_width(n_leaves))) - 1)


def left(x: int) -> NodeIndex:
    k = level(x)
    if k == 0:
        raise TreeMathError("leaf has no children")
    return NodeIndex(x ^ (1 << (k - 1)))


def right(x: int) -> NodeIndex:
    k = level(x)
    if k == 0:
        raise TreeMathError("leaf has no children")
    return NodeIndex(x ^ (3 << (k - 1)))


def parent(x: int, n_leaves: int) -> NodeIndex:
    if x == root(n_leaves):
        raise TreeMathError("root has no parent")
    if x >= node_width(n_leaves):
        raise TreeMathError(f"node {x} outside a tree of {n_leaves} leaves")
    k = level(x)
    b = (x >> (k + 1)) & 1
    return NodeIndex((x | (1 << k)) ^ (b << (k + 1)))


def sibling(x: int, n_leaves: int) -> NodeIndex:
    p = parent(x, n_leaves)
    return right(p) if x < p else left(p)


def direct_path(x: int, n_leaves: int) -> list[NodeIndex]:
    """Ancestors of ``x`` from its parent up to and including the root."""
    r = root(n_leaves)
    if x == r:
        return []
    out = []
    while x != r:
        x = parent(x, n_leaves)
        out.append(x)
    return out


def copath(x: int, n_leaves: int) -> list[NodeIndex]:
    """Siblings of ``x`` and of each of its ancestors below the root."""
    r = root(n_leaves)
    if x == r:
        return []
    path = [NodeIndex(x)] + direct_path(x, n_leaves)[:-1]
    return [sibling(y, n_leaves) for y in path]


def filtered_direct_path_base(x: int, n_leaves: int) -> list[tuple[NodeIndex, NodeIndex]]:
    """Pairs (ancestor, copath child) along the direct path; filtering needs the tree's resolutions."""
    return list(zip(direct_path(x, n_leaves), copath(x, n_leaves), strict=True))


def common_ancestor(x: int, y: int) -> NodeIndex:
    """The lowest common ancestor of two nodes (RFC 9420 Appendix C, ``common_ancestor_semantic``)."""
    lx, ly = level(x) + 1, level(y) + 1
    if lx <= ly and x >> ly == y >> ly:
        return NodeIndex(y)
    if ly <= lx and x >> lx == y >> lx:
        return NodeIndex(x)
    xn, yn, k = x, y, 0
    while xn != yn:
        xn >>= 1
        yn >>= 1
        k += 1
    return NodeIndex((xn << k) + (1 << (k - 1)) - 1)


def subtree_leaves(x: int) -> range:
    """The leaf indexes below node ``x`` (inclusive)."""
    k = level(x)
    first = (x - ((1 << k) - 1)) >> 1
    return range(first, first + (1 << k))
