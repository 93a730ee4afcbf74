"""RFC 9162 section 2.1 Merkle tree: tree hash, inclusion and consistency proofs.

The tree is the RFC's binary Merkle hash tree over SHA-256 with domain
separation: a leaf hash is ``SHA-256(0x00 || entry)``, an interior node is
``SHA-256(0x01 || left || right)``, and the empty tree hashes to ``SHA-256()``.

Storage model. A log stores the hash of every *complete* subtree: the node at
``MerkleNode(level, index)`` is the Merkle Tree Hash of leaves
``[index * 2**level, (index + 1) * 2**level)``. Level 0 holds the leaf hashes.
Every hash a proof needs is either such a stored node or the hash of a range
``[lo, hi)`` whose right edge is the tree size; the latter is folded from the
stored nodes of :func:`range_nodes`.

Proof generation is split in two pure steps so that the I/O shell can fetch
hashes however it likes (one SQL query, tiles over HTTP, a dict):

1. :func:`inclusion_plan` / :func:`consistency_plan` say which stored nodes are
   needed (``plan.nodes``);
2. ``plan.assemble(hashes)`` turns the hashes read, in that order, into the proof.

:func:`inclusion_proof` and :func:`consistency_proof` do both through a
synchronous :class:`HashReader`. Verification is by small pure functions
(:func:`root_from_inclusion_proof`, :func:`verify_inclusion`,
:func:`verify_consistency`) following RFC 9162 sections 2.1.3.2 and 2.1.4.2.

Errors: :class:`InvalidProof` (the proof cannot be right for these sizes: wrong
length, bad hash size, index out of range), :class:`RootMismatch` (the proof is
well formed but the root it yields is not the expected one), :class:`InvalidTreeSize`
(a caller asked for a proof that does not exist, e.g. index >= size).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from .errors import CryptoError

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "MerkleNode",
    "HashReader",
    "ProofPlan",
    "MerkleError",
    "InvalidProof",
    "RootMismatch",
    "InvalidTreeSize",
    "leaf_hash",
    "node_hash",
    "tree_hash",
    "range_nodes",
    "fold_range",
    "inclusion_plan",
    "consistency_plan",
    "inclusion_proof",
    "consistency_proof",
    "root_from_inclusion_proof",
    "verify_inclusion",
    "verify_consistency",
    "Frontier",
]

HASH_SIZE = 32
#: Maximum number of hashes in any proof this module accepts (trees up to 2**63 leaves).
MAX_PROOF_LEN = 64


class MerkleError(CryptoError):
    code = "merkle_error"


class InvalidProof(MerkleError):
    """The proof is malformed for the sizes given (length, hash size, indexes)."""

    code = "invalid_proof"


class RootMismatch(MerkleError):
    """A well-formed proof leads to a root different from the expected one."""

    code = "root_mismatch"


class InvalidTreeSize(MerkleError):
    """A proof was requested for an index or sizes that do not describe one."""

    code = "invalid_tree_size"


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)`` (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleNode(NamedTuple):
    """A complete subtree: leaves ``[index << level, (index + 1) << level)``."""

    level: int
    index: int


class HashReader(Protocol):
    """Reads stored node hashes; must return one 32-byte hash per node, in order."""

    def read_hashes(self, nodes: Sequence[MerkleNode]) -> Sequence[bytes]: ...


def _largest_pow2_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(lo: int, hi: int) -> list[MerkleNode]:
    """The complete subtrees that make up ``[lo, hi)``, left to right.

    ``lo`` must be a multiple of the largest power of two not larger than
    ``hi - lo`` rounded up (as for every range RFC 9162 recursion produces, and
    for ``lo == 0``). Raises :class:`InvalidTreeSize` otherwise.
    """
    if not 0 <= lo < hi:
        raise InvalidTreeSize(f"empty or negative range [{lo}, {hi})")
    nodes: list[MerkleNode] = []
    pos = lo
    size = hi - lo
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            if pos % (1 << level):
                raise InvalidTreeSize(f"range [{lo}, {hi}) is not aligned")
            nodes.append(MerkleNode(level, pos >> level))
            pos += 1 << level
    return nodes


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of a range from the hashes of its :func:`range_nodes`."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def tree_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """The root of the tree over the given leaf hashes (RFC 9162 section 2.1.2 stack)."""
    frontier = Frontier()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


@dataclass(frozen=True)
class ProofPlan:
    """Which stored nodes a proof needs, and how they fold into proof hashes.

    ``ranges`` are the ``[lo, hi)`` ranges whose Merkle Tree Hashes form the
    proof, in proof order; ``nodes`` is the concatenation of their
    :func:`range_nodes`.
    """

    ranges: tuple[tuple[int, int], ...]
    nodes: tuple[MerkleNode, ...]

    @classmethod
    def of_ranges(cls, ranges: Sequence[tuple[int, int]]) -> ProofPlan:
        nodes: list[MerkleNode] = []
        for lo, hi in ranges:
            nodes.extend(range_nodes(lo, hi))
        return cls(tuple(ranges), tuple(nodes))

    def assemble(self, hashes: Sequence[bytes]) -> list[bytes]:
        """The proof from the hashes of ``self.nodes`` (same order).

        Raises :class:`InvalidProof` if the count or a hash size is wrong (a
        broken reader), never returns a partial proof.
        """
        if len(hashes) != len(self.nodes):
            raise InvalidProof(f"expected {len(self.nodes)} stored hashes, got {len(hashes)}")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise InvalidProof("stored hash of the wrong size")
        proof: list[bytes] = []
        pos = 0
        for lo, hi in self.ranges:
            count = len(range_nodes(lo, hi))
            proof.append(fold_range(hashes[pos : pos + count]))
            pos += count
        return proof


def _path_ranges(m: int, lo: int, hi: int, out: list[tuple[int, int]]) -> None:
    """RFC 9162 2.1.3.1 PATH(m, D[lo:hi]) as ranges, leaf-to-root order."""
    n = hi - lo
    if n == 1:
        return
    k = _largest_pow2_below(n)
    if m < k:
        _path_ranges(m, lo, lo + k, out)
        out.append((lo + k, hi))
    else:
        _path_ranges(m - k, lo + k, hi, out)
        out.append((lo, lo + k))


def _subproof_ranges(m: int, lo: int, hi: int, complete: bool, out: list[tuple[int, int]]) -> None:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[lo:hi], b) as ranges."""
    n = hi - lo
    if m == n:
        if not complete:
            out.append((lo, hi))
        return
    k = _largest_pow2_below(n)
    if m <= k:
        _subproof_ranges(m, lo, lo + k, complete, out)
        out.append((lo + k, hi))
    else:
        _subproof_ranges(m - k, lo + k, hi, False, out)
        out.append((lo, lo + k))


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """Plan the inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

    Raises :class:`InvalidTreeSize` unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise InvalidTreeSize(f"index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    _path_ranges(index, 0, size, ranges)
    return ProofPlan.of_ranges(ranges)


def consistency_plan(old_size: int, new_size: int) -> ProofPlan:
    """Plan the consistency proof from ``old_size`` to ``new_size``.

    The proof is empty when ``old_size`` is 0 or equal to ``new_size``.
    Raises :class:`InvalidTreeSize` unless ``0 <= old_size <= new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise InvalidTreeSize(f"no consistency proof from size {old_size} to {new_size}")
    ranges: list[tuple[int, int]] = []
    if 0 < old_size < new_size:
        _subproof_ranges(old_size, 0, new_size, True, ranges)
    return ProofPlan.of_ranges(ranges)


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    plan = inclusion_plan(index, size)
    return plan.assemble(reader.read_hashes(plan.nodes))


def consistency_proof(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    plan = consistency_plan(old_size, new_size)
    return plan.assemble(reader.read_hashes(plan.nodes))


def _check_hashes(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF_LEN:
        raise InvalidProof("proof longer than any tree allows")
    for h in proof:
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise InvalidProof("proof hash of the wrong size")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` yields for leaf hash ``leaf`` at ``index`` (RFC 9162 2.1.3.2).

    Raises :class:`InvalidProof` if ``index >= size``, a hash has the wrong size,
    or the proof has the wrong length for this index and size.
    """
    if not 0 <= index < size:
        raise InvalidProof(f"index {index} is not in a tree of size {size}")
    _check_hashes(proof)
    if len(leaf) != HASH_SIZE:
        raise InvalidProof("leaf hash of the wrong size")
    fn, sn = index, size - 1
    r = bytes(leaf)
    for p in proof:
        if sn == 0:
            raise InvalidProof("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("inclusion proof too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise unless ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``.

    :class:`InvalidProof` for a malformed proof, :class:`RootMismatch` when it
    leads to another root.
    """
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise RootMismatch(f"inclusion proof of index {index} does not lead to the root of size {size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise unless ``proof`` shows tree ``(old_size, old_root)`` is a prefix of ``(new_size, new_root)``.

    RFC 9162 section 2.1.4.2, extended to the edge cases as tlog-witness does:
    from size 0 the proof must be empty (the empty tree is a prefix of every
    tree); between equal sizes it must be empty and the roots equal.
    Raises :class:`InvalidProof` or :class:`RootMismatch`.
    """
    _check_hashes(proof)
    if len(old_root) != HASH_SIZE or len(new_root) != HASH_SIZE:
        raise InvalidProof("root hash of the wrong size")
    if not 0 <= old_size <= new_size:
        raise InvalidProof(f"no consistency from size {old_size} to {new_size}")
    if old_size == 0:
        if proof:
            raise InvalidProof("consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise RootMismatch("the empty tree's root is SHA-256 of the empty string")
        return
    if old_size == new_size:
        if proof:
            raise InvalidProof("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise RootMismatch(f"two different roots for tree size {old_size}")
        return
    if not proof:
        raise InvalidProof("empty consistency proof")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProof("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("consistency proof too short")
    if fr != old_root:
        raise RootMismatch(f"consistency proof does not lead to the root of size {old_size}")
    if sr != new_root:
        raise RootMismatch(f"consistency proof does not lead to the root of size {new_size}")


class Frontier:
    """The right edge of a growing tree: the hashes of :func:`range_nodes(0, size)`.

    ``append(leaf)`` returns the stored nodes the new leaf completes (its own
    level-0 node first, then each parent it closes), so a log can write them in
    the same batch as the entry. Not frozen: this is the log's running state.
    """

    __slots__ = ("size", "_hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        expected = len(range_nodes(0, size)) if size else 0
        if len(hashes) != expected:
            raise InvalidTreeSize(f"a frontier of size {size} has {expected} hashes")
        self.size = size
        self._hashes = list(hashes)

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> list[tuple[MerkleNode, bytes]]:
        index = self.size
        new = [(MerkleNode(0, index), leaf)]
        h = leaf
        level = 0
        i = index
        while i & 1:
            h = node_hash(self._hashes.pop(), h)
            level += 1
            i >>= 1
            new.append((MerkleNode(level, i), h))
        self._hashes.append(h)
        self.size += 1
        return new

    def root(self) -> bytes:
        return fold_range(self._hashes) if self._hashes else EMPTY_ROOT
